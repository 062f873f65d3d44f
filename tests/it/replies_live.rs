//! Replies through the real binary: the SMPP simulator takes tidings' SMS and sends the
//! subscribers' messages (MO), which tidings writes as `reply` events and feeds back to its live
//! engine. Each default unsubscribe keyword, as typed on a handset, refuses what it should from
//! its own moment on; with `scope = "campaign"` only the answered campaign; an offer accepted by
//! reply reaches the order interface once across a SIGKILL; ignored offers stop the campaign
//! (`suppress_after`) until the pause ends. And over the shipped pack: the footer is on every
//! marketing SMS and on no transactional one.

use crate::delivery::{Dir, at, lines, port, send};
use crate::orders::start_desk_on;
use crate::smpp::{Sim, new_log};
use crate::unsubscribe::RULES;
use crate::unsubscribe::live::{bound, config_for, crm_line, decision, smsc, start, wait_until};
use std::path::PathBuf;

/// A live tidings reading stdin and sending over a fresh SMPP simulator it is bound to.
struct Live {
    dir: Dir,
    sim: Sim,
    cfg: PathBuf,
    /// tidings' stderr.
    err: PathBuf,
    engine: crate::delivery::Running,
    stdin: std::process::ChildStdin,
}

/// Starts [`Live`] in a directory named `name` with `rules`, `engine` lines for `[engine]` and
/// `extra` sections, and waits until tidings binds to the simulator.
fn boot(name: &str, rules: &str, engine: &str, extra: &str) -> Live {
    let dir = Dir::new(name);
    let sim = smsc(&new_log());
    let cfg = config_for(&dir.0, sim.port, rules, engine, extra);
    let err = dir.0.join("err");
    let (engine, stdin) = start(&cfg, &err);
    wait_until("tidings binds to the SMSC", &err, || bound(&sim));
    Live { dir, sim, cfg, err, engine, stdin }
}
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const FOOTER: &str = "拒收请回复R";

/// Subscribers' numbers start 135: the simulator fails deliveries to 1390000... and throttles
/// 1391111...
///
/// The subscriber `msisdn` sends `text` to the service number `to` from their handset.
fn mo(sim: &Sim, msisdn: &str, to: &str, text: &str) {
    let answer = sim.control(json!({"cmd": "mo", "from": format!("86{msisdn}"), "to": to, "text": text, "coding": 8}));
    assert_eq!(answer["ok"], true, "the simulator takes the MO: {answer}");
}

/// (outcome, reason, detail) of a decision.
fn fate(d: &Value) -> (&str, &str, &str) {
    let s = |k: &str| d[k].as_str().unwrap_or("");
    (s("outcome"), s("reason"), s("detail"))
}

/// The events `(rule, id)` were all decided.
fn all_decided(dir: &Path, wanted: &[(&str, String)]) -> bool {
    wanted.iter().all(|(rule, id)| decision(dir, rule, id).is_some())
}

/// The outcome events in outcomes.jsonl for the action `id`.
fn outcomes_of(dir: &Path, id: &str) -> Vec<Value> {
    lines(&dir.join("outcomes.jsonl")).into_iter().filter(|o| o["kind"] == "outcome" && o["action_id"] == id).collect()
}

/// Every default keyword (and full-width and lower-case variants), each sent from a different
/// handset to one running engine: each refuses the next marketing SMS with reason `dnd` naming
/// the reply, a bill still goes, and a call goes unless the keyword was `0000`.
#[test]
fn every_default_keyword_typed_on_a_handset_refuses_marketing_from_then_on_and_bills_still_go() {
    // (what the subscriber types, the keyword tidings reads, what it refuses)
    let cases = [
        ("TD", "TD", "marketing"),
        ("T", "T", "marketing"),
        ("R", "R", "marketing"),
        ("退订", "退订", "marketing"),
        ("QXTD", "QXTD", "marketing"),
        ("0000", "0000", "all"),
        ("ＴＤ", "TD", "marketing"),
        ("td", "TD", "marketing"),
        ("qxtd", "QXTD", "marketing"),
    ];
    let m = |i: usize| format!("1350000{i:04}");
    let Live { dir, sim, err, engine, mut stdin, .. } = boot("replies-live-keywords", RULES, "", "");

    // An offer to each: the keyword answers it.
    let first: Vec<(&str, String)> = (0..cases.len()).map(|i| ("offer", format!("o1-{i}"))).collect();
    send(&mut stdin, &(0..cases.len()).map(|i| crm_line(&m(i), &first[i].1, &at(0), "offer")).collect::<Vec<_>>());
    wait_until("the first offers are decided", &err, || all_decided(&dir.0, &first));
    for (_, id) in &first {
        assert_eq!(fate(&decision(&dir.0, "offer", id).unwrap()).0, "sent", "{id}");
    }

    for (i, (typed, _, _)) in cases.iter().enumerate() {
        mo(&sim, &m(i), "10086", typed);
    }
    let journal = dir.0.join("out/optouts.jsonl");
    wait_until("every refusal is journaled", &err, || lines(&journal).len() >= cases.len());
    let refused: BTreeMap<String, Value> =
        lines(&journal).into_iter().map(|j| (j["msisdn"].as_str().unwrap_or("").to_string(), j)).collect();

    let mut next = Vec::new();
    let mut wanted = Vec::new();
    for i in 0..cases.len() {
        for (rule, what, id) in [("offer", "offer", "o2"), ("bill", "bill", "b"), ("callback", "call", "c")] {
            let id = format!("{id}-{i}");
            next.push(crm_line(&m(i), &id, &at(0), what));
            wanted.push((rule, id));
        }
    }
    send(&mut stdin, &next);
    wait_until("the offers, bills and calls after the refusals are decided", &err, || all_decided(&dir.0, &wanted));

    for (i, (typed, keyword, scope)) in cases.iter().enumerate() {
        let j = refused.get(&m(i)).unwrap_or_else(|| panic!("{typed:?}: no refusal journaled: {refused:?}"));
        assert_eq!((j["keyword"].as_str(), j["scope"].as_str()), (Some(*keyword), Some(*scope)), "{typed:?}: {j}");
        let reply = j["reply"].as_str().unwrap();
        let offer = decision(&dir.0, "offer", &format!("o2-{i}")).unwrap();
        let (outcome, reason, detail) = fate(&offer);
        assert_eq!((outcome, reason), ("suppressed", "dnd"), "{typed:?}: {offer}");
        assert!(detail.ends_with(&format!("by reply \"{keyword}\" to 10086 (event {reply})")), "{typed:?}: {detail}");
        let bill = decision(&dir.0, "bill", &format!("b-{i}")).unwrap();
        assert_eq!(fate(&bill).0, "sent", "{typed:?}: a bill still goes: {bill}");
        let call = decision(&dir.0, "callback", &format!("c-{i}")).unwrap();
        if *scope == "all" {
            assert_eq!(fate(&call).0, "suppressed", "{typed:?} refuses calls too: {call}");
            assert!(fate(&call).2.starts_with("opted out of every non-transactional contact"), "{call}");
        } else {
            assert_eq!(fate(&call).0, "sent", "{typed:?} refuses marketing SMS, not the call centre: {call}");
        }
    }
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap_or_default());
    assert_eq!(lines(&journal).len(), cases.len(), "one refusal each");
}

/// With `[policy.unsubscribe] scope = "campaign"`, a TD answering campaign A's SMS refuses A and
/// not B, both ways round: one subscriber answers the music club SMS (from 10658888), another
/// the data offer (from 10086).
#[test]
fn with_scope_campaign_a_td_from_a_handset_refuses_the_answered_campaign_only() {
    let Live { dir, sim, err, engine, mut stdin, .. } =
        boot("replies-live-scope", RULES, "", "[policy.unsubscribe]\nscope = \"campaign\"\n");
    let (x, y) = ("13500001001", "13500001002");
    send(&mut stdin, &[crm_line(x, "x1", &at(0), "music"), crm_line(y, "y1", &at(0), "offer")]);
    let first = [("music", "x1".to_string()), ("offer", "y1".to_string())];
    wait_until("the first SMS are decided", &err, || all_decided(&dir.0, &first));

    mo(&sim, x, "10658888", "TD");
    mo(&sim, y, "10086", "td");
    let journal = dir.0.join("out/optouts.jsonl");
    wait_until("both refusals are journaled", &err, || lines(&journal).len() >= 2);
    let by: BTreeMap<String, (String, String)> = lines(&journal)
        .iter()
        .map(|j| {
            let s = |k: &str| j[k].as_str().unwrap_or("").to_string();
            (s("msisdn"), (s("scope"), s("campaign")))
        })
        .collect();
    assert_eq!(by[x], ("campaign".to_string(), "music_club".to_string()));
    assert_eq!(by[y], ("campaign".to_string(), "data_offer".to_string()));

    let next = ["x2", "x3", "y2", "y3"];
    send(
        &mut stdin,
        &[
            crm_line(x, next[0], &at(0), "music"),
            crm_line(x, next[1], &at(0), "offer"),
            crm_line(y, next[2], &at(0), "offer"),
            crm_line(y, next[3], &at(0), "music"),
        ],
    );
    let wanted = [
        ("music", next[0].to_string()),
        ("offer", next[1].to_string()),
        ("offer", next[2].to_string()),
        ("music", next[3].to_string()),
    ];
    wait_until("the SMS after the refusals are decided", &err, || all_decided(&dir.0, &wanted));
    let got: Vec<(String, String, String)> = wanted
        .iter()
        .map(|(rule, id)| {
            let d = decision(&dir.0, rule, id).unwrap();
            let (o, r, detail) = fate(&d);
            (o.to_string(), r.to_string(), detail.split(" by reply").next().unwrap_or("").to_string())
        })
        .collect();
    let want = [
        ("suppressed", "dnd", "opted out of campaign music_club"),
        ("sent", "", ""),
        ("suppressed", "dnd", "opted out of campaign data_offer"),
        ("sent", "", ""),
    ];
    let want: Vec<(String, String, String)> =
        want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(got, want, "(x music, x offer, y offer, y music)");
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap_or_default());
}

/// The issue's test through the binary: the subscriber's `TD` comes from the SMSC and gets the
/// host's clock as its event time; a marketing SMS stamped one second after it is refused
/// (`dnd`, naming the reply) and a bill stamped the same second goes.
#[test]
fn a_marketing_sms_one_second_after_a_td_from_the_smsc_is_refused_naming_the_reply_and_a_bill_goes() {
    let Live { dir, sim, err, engine, mut stdin, .. } = boot("replies-live-second", RULES, "", "");
    let m = "13500002001";
    mo(&sim, m, "10086", "TD");
    let replies = || -> Vec<Value> {
        lines(&dir.0.join("outcomes.jsonl")).into_iter().filter(|r| r["kind"] == "reply" && r["msisdn"] == m).collect()
    };
    wait_until("the reply is written", &err, || !replies().is_empty());
    let reply = replies().remove(0);
    let reply_id = reply["id"].as_str().unwrap().to_string();
    let reply_ts = chrono::DateTime::parse_from_rfc3339(reply["ts"].as_str().unwrap()).expect("an RFC 3339 time");
    // The engine has read it once it confirmed it (a live engine decides in arrival order).
    wait_until("the reply is confirmed", &err, || decision(&dir.0, "confirm", &reply_id).is_some());

    let next = (reply_ts + chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    send(&mut stdin, &[crm_line(m, "o1", &next, "offer"), crm_line(m, "b1", &next, "bill")]);
    let wanted = [("offer", "o1".to_string()), ("bill", "b1".to_string())];
    wait_until("the offer and the bill are decided", &err, || all_decided(&dir.0, &wanted));
    let offer = decision(&dir.0, "offer", "o1").unwrap();
    let at_ts = |d: &Value| chrono::DateTime::parse_from_rfc3339(d["ts"].as_str().unwrap()).unwrap();
    assert_eq!(at_ts(&offer) - reply_ts, chrono::Duration::seconds(1), "{offer}");
    assert_eq!(
        fate(&offer),
        (
            "suppressed",
            "dnd",
            format!("opted out of marketing SMS by reply \"TD\" to 10086 (event {reply_id})").as_str()
        )
    );
    let bill = decision(&dir.0, "bill", "b1").unwrap();
    assert_eq!((fate(&bill).0, at_ts(&bill)), ("sent", at_ts(&offer)), "a bill the same second goes: {bill}");
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap_or_default());
}

/// An SMS offer as the pack's ip_12593 makes it, and the order its `KT12593` answer asks for.
const OFFER_RULES: &str = r#"
- rule: ip_offer
  on: [crm]
  condition: event.event == "offer"
  action: { channel: sms, template: "拨打长途前加拨12593，国内长途低至0.1元/分钟。回复KT12593开通。" }
  campaign: ip_12593
  policy: { quiet_hours: ignore }
- rule: accept_12593_by_reply
  on: [reply]
  condition: event.keyword == "KT12593" and event.in_reply_to.campaign == "ip_12593"
  action: { channel: order, offer: "12593" }
  campaign: ip_12593
  priority: 90
"#;

/// The SMS offer goes out through the SMSC; the subscriber answers `kt12593` from the handset;
/// the order is decided and in the outbox while the order interface is still down; tidings is
/// killed (SIGKILL) and restarted with the same config once the order interface is up: it gets
/// exactly one POST for the order's Idempotency-Key, and `accepted` is in outcomes.jsonl once.
#[test]
fn an_offer_accepted_by_a_reply_from_the_handset_is_ordered_once_across_a_sigkill() {
    let desk_addr = format!("127.0.0.1:{}", port());
    let order =
        format!("[delivery.order]\nurl = \"http://{desk_addr}/v1/orders\"\ntoken = \"bo-secret\"\ntimeout = \"5s\"\n");
    let Live { dir, sim, cfg, err, engine: mut first, mut stdin } = boot("replies-live-order", OFFER_RULES, "", &order);
    let m = "13500003001";
    send(&mut stdin, &[crm_line(m, "o1", &at(0), "offer")]);
    wait_until("the offer is decided", &err, || decision(&dir.0, "ip_offer", "o1").is_some());
    let offer = decision(&dir.0, "ip_offer", "o1").unwrap();
    assert_eq!(fate(&offer).0, "sent", "{offer}");
    let offer_id = offer["id"].as_str().unwrap().to_string();
    wait_until("the offer is delivered", &err, || {
        outcomes_of(&dir.0, &offer_id).iter().any(|o| o["status"] == "delivered")
    });
    let messages =
        || -> Vec<Value> { sim.lines().into_iter().filter(|l| l["event"] == "message" && l["dest"] == m).collect() };
    let sms = messages();
    assert_eq!(sms.len(), 1, "{sms:?}");
    let text = sms[0]["text"].as_str().unwrap_or("");
    assert!(text.contains("回复KT12593开通") && text.ends_with(FOOTER), "{text}");

    mo(&sim, m, "10086", "kt12593");
    let outbox = dir.0.join("outbox/outbox.jsonl");
    let orders = |p: &Path| -> Vec<Value> { lines(p).into_iter().filter(|a| a["channel"] == "order").collect() };
    wait_until("the order is in the outbox", &err, || !orders(&outbox).is_empty());
    first.child().kill().unwrap();
    first.child().wait().unwrap();
    drop(stdin);
    let decided = orders(&outbox);
    assert_eq!(decided.len(), 1, "{decided:?}");
    let id = decided[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        (decided[0]["offer"].as_str(), decided[0]["msisdn"].as_str(), decided[0]["trigger"]["kind"].as_str()),
        (Some("12593"), Some(m), Some("reply")),
        "{}",
        decided[0]
    );
    assert!(outcomes_of(&dir.0, &id).is_empty(), "the order interface was down: no answer yet");
    std::fs::rename(dir.0.join("out/actions.jsonl"), dir.0.join("actions-first.jsonl")).unwrap();

    let (_addr, desk, _rt) = start_desk_on(&desk_addr, Duration::ZERO);
    let err2 = dir.0.join("err2");
    let (second, stdin) = start(&cfg, &err2);
    wait_until("the order's answer comes back", &err2, || !outcomes_of(&dir.0, &id).is_empty());
    drop(stdin);
    let out = second.output();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err2).unwrap_or_default());

    let d = desk.lock().unwrap();
    let keys: Vec<&str> = d.posts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, [id.as_str()], "exactly one POST, with the order's id as Idempotency-Key");
    assert_eq!((d.orders.len(), d.orders[&id]["offer"].as_str()), (1, Some("12593")));
    let answered = outcomes_of(&dir.0, &id);
    let statuses: Vec<&str> = answered.iter().map(|o| o["status"].as_str().unwrap_or("")).collect();
    assert_eq!(statuses, ["accepted"], "{answered:?}");
    assert_eq!(orders(&dir.0.join("actions-first.jsonl")).len(), 1);
    assert!(orders(&dir.0.join("out/actions.jsonl")).is_empty(), "the restart decided no order of its own");
    assert_eq!(orders(&outbox).len(), 1);
    assert_eq!(messages().len(), 1, "the offer SMS went once");
}

/// A campaign that stops after 3 offers ignored within 30 days, for 20 days.
const SUPPRESS_RULES: &str = r#"
- rule: topup_offer
  on: [topup]
  condition: event.amount_fen >= 10 CNY
  action: { channel: sms, template: "充值有礼：回复KT开通10元流量包。" }
  campaign: c
  policy: { quiet_hours: ignore }

- campaign: c
  policy:
    suppress_after: { ignored: 3, within: 30d, for: 20d, response_window: 3d }
"#;

/// `suppress_after` through the binary, events stamped in the past on stdin, SMS delivered by
/// the simulator and never answered: offers 1 to 3 go, the 4th is `suppressed_after` with the
/// counts in its detail, so is one just before the pause ends, and one at its end goes again.
#[test]
fn ignored_offers_delivered_through_the_smsc_suppress_the_next_until_the_pause_ends() {
    // Event time steps by days between events: no bound on how far ahead it may move.
    let Live { dir, sim, err, engine, mut stdin, .. } =
        boot("replies-live-suppress", SUPPRESS_RULES, "max_ahead = \"off\"\n", "");
    let m = "13500004001";
    let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    const DAY: i64 = 86_400_000;
    let now = chrono::Utc::now().timestamp_millis();
    let base = now - now.rem_euclid(1000) - 40 * DAY;
    let pause_ends = base + 4 * DAY + 20 * DAY;
    let times = [base, base + 2 * DAY, base + 4 * DAY, base + 8 * DAY, pause_ends - 1000, pause_ends];
    let want = ["sent", "sent", "sent", "suppressed_after", "suppressed_after", "sent"];
    for (n, (t, want)) in times.iter().zip(want).enumerate() {
        let id = format!("t{n}");
        let ts = tidings::time::format_ts(*t, offset);
        let line = format!(
            r#"{{"kind":"topup","id":"{id}","ts":"{ts}","msisdn":"{m}","amount_fen":2000,"balance_fen":2500,"channel":"card"}}"#
        );
        send(&mut stdin, &[line]);
        wait_until(&format!("topup {n} is decided"), &err, || decision(&dir.0, "topup_offer", &id).is_some());
        let d = decision(&dir.0, "topup_offer", &id).unwrap();
        let (outcome, reason, detail) = fate(&d);
        assert_eq!(if outcome == "sent" { outcome } else { reason }, want, "topup {n} at {ts}: {d}");
        if want == "sent" {
            let action = d["id"].as_str().unwrap().to_string();
            wait_until(&format!("offer {n} is delivered"), &err, || {
                outcomes_of(&dir.0, &action).iter().any(|o| o["status"] == "delivered")
            });
        } else {
            let until = tidings::time::format_ts(pause_ends, offset);
            assert_eq!(
                detail,
                format!("ignored 3 of the last 3 offers of campaign c within 30d; not offered until {until}"),
                "topup {n}"
            );
        }
    }
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap_or_default());
    let delivered = sim.lines().into_iter().filter(|l| l["event"] == "message" && l["dest"] == m).count();
    assert_eq!(delivered, 4, "the SMSC took the four offers sent");
}

/// Whether each rule of the pack in `rules` is transactional, read from the YAML itself: the
/// rule's `policy: {transactional: ...}`, else its campaign's, else not.
fn transactional_by_rule(rules: &Path) -> BTreeMap<String, bool> {
    use yaml_rust2::{Yaml, YamlLoader};
    let mut items = Vec::new();
    for f in std::fs::read_dir(rules).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && !name.ends_with(".tests.yaml") {
            let docs = YamlLoader::load_from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            items.extend(docs.into_iter().flat_map(|d| d.into_vec().unwrap_or_default()));
        }
    }
    let flag = |item: &Yaml| item["policy"]["transactional"].as_bool();
    // A campaign's own item (`- campaign: ip_12593`), not a rule naming its campaign.
    let campaigns: BTreeMap<String, bool> = items
        .iter()
        .filter(|i| i["rule"].is_badvalue())
        .filter_map(|i| Some((i["campaign"].as_str()?.to_string(), flag(i)?)))
        .collect();
    let mut kinds: BTreeMap<String, bool> = items
        .iter()
        .filter_map(|i| {
            let rule = i["rule"].as_str()?;
            let campaign = i["campaign"].as_str().and_then(|c| campaigns.get(c).copied());
            Some((rule.to_string(), flag(i).or(campaign).unwrap_or(false)))
        })
        .collect();
    // A journey's steps that contact are rules named `journey.step`, in the journey's campaign.
    for j in items.iter().filter(|i| i["journey"].as_str().is_some()) {
        let campaign = j["campaign"].as_str().and_then(|c| campaigns.get(c).copied());
        for step in j["steps"].as_vec().into_iter().flatten().filter(|s| !s["action"].is_badvalue()) {
            let name = format!("{}.{}", j["journey"].as_str().unwrap_or(""), step["step"].as_str().unwrap_or(""));
            kinds.insert(name, flag(step).or(campaign).unwrap_or(false));
        }
    }
    kinds
}

/// The shipped rules and config over generated traffic (`tidings gen`, then `tidings replay`):
/// every SMS sent by a non-transactional rule ends with the footer, once; no transactional one
/// carries it. Rules are told apart from the pack's YAML, not from the engine's own reading.
#[test]
fn the_shipped_pack_puts_the_footer_on_every_marketing_sms_and_on_no_transactional_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kinds = transactional_by_rule(&root.join("rules"));
    assert!(kinds.values().any(|t| *t) && kinds.values().any(|t| !*t), "{kinds:?}");
    let dir = Dir::new("replies-live-footer");
    let data = dir.0.join("data");
    let tidings = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"));
        c.current_dir(root).stdout(std::process::Stdio::null());
        c
    };
    let out = tidings()
        .args(["gen", "--subscribers", "2000", "--events", "60000", "--days", "8", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tidings()
        .args(["replay", "--config", "config/tidings.toml", "--rules", "rules", "--events"])
        .arg(data.join("events.jsonl"))
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.0.join("out"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut seen: BTreeMap<bool, BTreeMap<String, usize>> = BTreeMap::new();
    for d in lines(&dir.0.join("out/decisions.jsonl")) {
        if d["outcome"] != "sent" || d["channel"] != "sms" {
            continue;
        }
        let rule = d["rule"].as_str().unwrap_or("");
        let text = d["text"].as_str().unwrap_or("");
        let transactional = *kinds.get(rule).unwrap_or_else(|| panic!("rule {rule} is not in the pack"));
        if transactional {
            assert!(!text.contains(FOOTER), "transactional {rule} carries the footer: {text}");
        } else {
            assert!(text.ends_with(FOOTER) && text.matches(FOOTER).count() == 1, "marketing {rule}: {text}");
        }
        *seen.entry(transactional).or_default().entry(rule.to_string()).or_default() += 1;
    }
    let rules_of = |t: bool| seen.get(&t).map_or(0, BTreeMap::len);
    assert!(rules_of(true) >= 4 && rules_of(false) >= 4, "SMS of both kinds, from several rules each: {seen:?}");
}
