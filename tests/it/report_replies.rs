//! The report's reply figures through the real binary: reply, opt-out and acceptance rates per
//! rule and campaign, and survey scores per store, checked against `decisions.jsonl` (where a
//! shadow rule on every reply writes down which SMS the engine tied it to) and the order
//! results replayed with the stream.

use crate::delivery::{Dir, lines};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;

const PACK: &str = r#"
- rule: offer
  on: [crm]
  condition: event.event == "offer"
  action: { channel: sms, template: "回复KT开通流量包" }
  campaign: promo
  policy: { quiet_hours: ignore }

- rule: survey
  on: [crm]
  condition: event.event == "store_visit"
  action: { channel: sms, template: "请回复1-5为本次服务打分", about: "{event.attrs.store}" }
  campaign: service_survey
  policy: { transactional: true, quiet_hours: ignore }

- rule: take
  on: [reply]
  condition: event.keyword == "KT" and event.in_reply_to.campaign == "promo"
  action: { channel: order, offer: "data_pack" }
  campaign: promo

# Writes down, for every reply, the SMS the engine tied it to (never sent: shadow).
- rule: tie
  mode: shadow
  on: [reply]
  condition: "true"
  action: { channel: sms, template: "{event.in_reply_to.action_id|default:none}" }
  campaign: audit
  policy: { transactional: true, quiet_hours: ignore }
"#;

fn msisdn(i: usize) -> String {
    format!("1390000{i:04}")
}

/// The stream: an offer to everyone at 10:00, a store survey to every third subscriber at
/// 10:05 (so their reply answers the survey), and replies of every sort.
fn stream() -> (Vec<String>, HashMap<String, String>) {
    let mut out = Vec::new();
    let mut keywords = HashMap::new();
    let crm = |m: &str, t: &str, what: &str, attrs: &str| {
        format!(r#"{{"kind":"crm","ts":"2026-11-24T{t}+08:00","msisdn":"{m}","event":"{what}","attrs":{attrs}}}"#)
    };
    let replies = ["kt", "KT", "td", "0000", "hello", "1", "2", "5", "3", "r", "kt", "ok", "4"];
    for i in 0..48 {
        let m = msisdn(i);
        out.push(crm(&m, "10:00:00", "offer", "{}"));
        if i % 3 == 0 {
            out.push(crm(&m, "10:05:00", "store_visit", &format!(r#"{{"store":"S00{}"}}"#, i % 2 + 1)));
        }
        if i % 8 == 7 {
            continue; // no reply at all
        }
        let text = replies[i % replies.len()];
        // Every fifth writes to another number, every eleventh a week later: they answer nothing.
        let (day, to) = match i {
            _ if i % 5 == 4 => ("24", "10658888"),
            _ if i % 11 == 10 => ("30", "10086"),
            _ => ("24", "10086"),
        };
        let id = format!("r{i}");
        keywords.insert(id.clone(), text.to_uppercase());
        out.push(format!(
            r#"{{"kind":"reply","id":"{id}","ts":"2026-11-{day}T10:30:00+08:00","msisdn":"{m}","text":"{text}","to":"{to}"}}"#
        ));
    }
    // In event time, as a recorded stream is.
    let ts = |l: &String| l[l.find("\"ts\":").unwrap()..].to_string();
    out.sort_by_key(ts);
    (out, keywords)
}

fn replay(dir: &Path, out: &str, events: &[&Path], report: bool) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tidings"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["replay", "--config", "/nonexistent.toml", "--rules"])
        .arg(dir.join("rules.yaml"))
        .arg("--events")
        .args(events)
        .arg("--out")
        .arg(dir.join(out));
    if report {
        c.arg("--report").arg(dir.join("report.html"));
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[derive(Debug, Default, PartialEq)]
struct Expect {
    sms: u64,
    replied: u64,
    opted_out: u64,
    accepted: u64,
}

#[test]
fn reply_opt_out_and_acceptance_rates_and_store_scores_match_the_decisions_and_the_order_results() {
    let dir = Dir::new("report-replies");
    std::fs::write(dir.0.join("rules.yaml"), PACK).unwrap();
    let (stream, keywords) = stream();
    let events = dir.0.join("events.jsonl");
    std::fs::write(&events, stream.join("\n")).unwrap();

    // The orders the replies placed; the order interface accepts every other one.
    replay(&dir.0, "first", &[&events], false);
    let orders: Vec<Value> = lines(&dir.0.join("first/decisions.jsonl"))
        .into_iter()
        .filter(|d| d["rule"] == "take" && d["outcome"] == "sent")
        .collect();
    assert!(orders.len() >= 4, "the stream places orders: {}", orders.len());
    let mut accepted: HashSet<String> = HashSet::new();
    let results: Vec<String> = orders
        .iter()
        .enumerate()
        .map(|(n, d)| {
            let (id, status) = (d["id"].as_str().unwrap(), if n % 2 == 0 { "accepted" } else { "rejected" });
            if status == "accepted" {
                accepted.insert(id.to_string());
            }
            format!(
                r#"{{"kind":"outcome","ts":"2026-11-24T10:31:00+08:00","msisdn":"{}","action_id":"{id}","channel":"order","status":"{status}","rule":"take","campaign":"promo"}}"#,
                d["msisdn"].as_str().unwrap()
            )
        })
        .collect();
    let outcomes = dir.0.join("outcomes.jsonl");
    std::fs::write(&outcomes, results.join("\n")).unwrap();
    replay(&dir.0, "out", &[&events, &outcomes], true);

    // What decisions.jsonl says: the live SMS, which SMS each reply answered, the orders.
    let decisions = lines(&dir.0.join("out/decisions.jsonl"));
    let mut sms: BTreeMap<String, (String, String, Option<String>)> = BTreeMap::new();
    let mut placed: HashMap<String, Vec<String>> = HashMap::new();
    for d in &decisions {
        let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
        match (s("rule").as_str(), s("outcome").as_str(), d.get("mode").is_some()) {
            (_, "sent", false) if s("channel") == "sms" => {
                sms.insert(
                    s("id"),
                    (s("rule"), s("campaign"), d.get("about").and_then(|a| a.as_str()).map(Into::into)),
                );
            }
            ("take", "sent", false) => {
                placed.entry(d["trigger"]["id"].as_str().unwrap().into()).or_default().push(s("id"))
            }
            _ => {}
        }
    }
    let tied: Vec<(String, String)> = decisions
        .iter()
        .filter(|d| d["rule"] == "tie")
        .map(|d| (d["trigger"]["id"].as_str().unwrap().to_string(), d["text"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(tied.len(), keywords.len(), "the shadow rule decided every reply once");

    let unsubscribe = ["TD", "T", "R", "退订", "QXTD", "0000"];
    let mut per_sms: HashMap<&str, (bool, bool, bool)> = HashMap::new();
    let (mut untied, mut untied_opt_outs) = (0, 0);
    let mut scores: BTreeMap<(String, String), BTreeMap<String, u64>> = BTreeMap::new();
    for (reply, action) in &tied {
        let kw = keywords[reply].as_str();
        let refuses = unsubscribe.contains(&kw);
        if action == "none" {
            untied += 1;
            untied_opt_outs += u64::from(refuses);
            continue;
        }
        let (rule, _, about) = sms.get(action).unwrap_or_else(|| panic!("{reply} tied to {action}, not a live SMS"));
        let took = placed.get(reply).is_some_and(|ids| ids.iter().any(|id| accepted.contains(id)));
        let e = per_sms.entry(action.as_str()).or_default();
        *e = (true, e.1 || refuses, e.2 || took);
        // A score: a whole number from 0 to 10 as written (`0000` is a refusal, not a zero).
        if let (Some(about), Some(n)) = (about, kw.parse::<u8>().ok().filter(|n| *n <= 10 && kw.len() <= 2)) {
            *scores.entry((rule.clone(), about.clone())).or_default().entry(n.to_string()).or_default() += 1;
        }
    }
    let mut by_rule: BTreeMap<String, Expect> = BTreeMap::new();
    let mut by_campaign: BTreeMap<String, Expect> = BTreeMap::new();
    for (id, (rule, campaign, _)) in &sms {
        let (r, o, a) = per_sms.get(id.as_str()).copied().unwrap_or_default();
        for e in [by_rule.entry(rule.clone()).or_default(), by_campaign.entry(campaign.clone()).or_default()] {
            e.sms += 1;
            e.replied += u64::from(r);
            e.opted_out += u64::from(o);
            e.accepted += u64::from(a);
        }
    }
    // The stream exercises every figure (the test can fail).
    let promo = &by_campaign["promo"];
    assert!(promo.replied > 0 && promo.opted_out > 0 && promo.accepted > 0 && untied > 0, "{by_campaign:?}");
    assert!(promo.accepted < promo.replied, "rejected orders are not acceptances");
    assert!(scores.len() == 2 && scores.values().all(|s| s.len() >= 2), "both stores scored, variously: {scores:?}");

    // What the report says.
    let html = std::fs::read_to_string(dir.0.join("report.html")).unwrap();
    let f = &crate::report::embedded(&html, "report-data")["replies"];
    assert_eq!(f["replies"], keywords.len() as u64);
    assert_eq!((f["untied"].as_u64(), f["untied_opt_outs"].as_u64()), (Some(untied), Some(untied_opt_outs)));
    let rows = |v: &Value| -> BTreeMap<String, Expect> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let n = |k: &str| r[k].as_u64().unwrap();
                let rate = r["reply_rate"].as_f64().unwrap();
                assert!((rate - n("replied") as f64 / n("sms") as f64).abs() < 1e-9, "{r}");
                let e =
                    Expect { sms: n("sms"), replied: n("replied"), opted_out: n("opted_out"), accepted: n("accepted") };
                (r["name"].as_str().unwrap().to_string(), e)
            })
            .collect()
    };
    assert_eq!(rows(&f["rules"]), by_rule, "per rule");
    assert_eq!(rows(&f["campaigns"]), by_campaign, "per campaign");
    let got: BTreeMap<(String, String), BTreeMap<String, u64>> = f["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let key = (s["rule"].as_str().unwrap().to_string(), s["about"].as_str().unwrap().to_string());
            let spread =
                s["scores"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
            (key, spread)
        })
        .collect();
    assert_eq!(got, scores, "survey scores per store");
    // The page shows them: a row per campaign with its rates.
    assert!(html.contains("<table id=\"reply-campaigns\"") && html.contains("<table id=\"scores\""));
}
