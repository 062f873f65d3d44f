//! The live funnel over real HTTP against the running binary (issue 21 §3): `GET /v1/funnel`
//! equals the funnel counted here from `decisions.jsonl` and the events fed (triggered from the
//! events each rule's index lets through, matched from the decisions' ids, sent and suppressed
//! from their outcomes, delivered / answered / accepted from the outcome events, replied from the
//! replies tied to the SMS they answer); after a SIGKILL and a restart from the checkpoint it is the
//! same, and new events add on top. In the engine itself: timers, daily rules and contacts held
//! for quiet hours, counted alike on any shard count and batch size.

use crate::delivery::{Dir, Running, at, lines, port, send, start_live};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ADM: &str = "Bearer adm";
const VIEWER: &str = "Bearer zhao-viewer-token-01";

/// Three rules, each let through its kind's index by one requirement on the event (so triggered
/// is every event of that kind and value) and matching on the subscriber's tier.
const RULES: &str = r#"
- campaign: winter_care
  owner: 市场部

- rule: visit_sms
  on: [crm]
  condition: event.event == store_visit and subscriber.tier == high
  action: { channel: sms, template: "感谢您光临营业厅" }
  campaign: winter_care
  policy: { cap: "1 per day" }

- rule: voice_call
  on: [usage]
  condition: event.service == voice and subscriber.tier in (high, valuable)
  action: { channel: call, script: "回访", queue: care }
  campaign: winter_care

- rule: topup_thanks
  on: [topup]
  condition: subscriber.tier == high
  action: { channel: sms, template: "充值成功,谢谢" }
"#;

fn setup(dir: &Dir, port: u16) -> PathBuf {
    let rules = dir.0.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("care.yaml"), RULES).unwrap();
    let more = format!(
        r#"
[[api.users]]
name = "zhao"
role = "viewer"
token = "zhao-viewer-token-01"

[checkpoint]
dir = "{ckpt}"
every_events = 1
every = "0s"
"#,
        ckpt = dir.0.join("ckpt").display()
    );
    crate::support::live_config(&dir.0, &rules, port, &more)
}

fn get(port: u16, path: &str, auth: &str) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = format!("http://127.0.0.1:{port}{path}");
    let headers = [("authorization", auth.to_string())];
    let r = rt
        .block_on(tidings::http::client::request(hyper::Method::GET, &url, &headers, None, Duration::from_secs(30)))
        .unwrap();
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

fn line(kind: &str, t: i64, m: &str, rest: &str) -> String {
    format!(r#"{{"kind":"{kind}","ts":"{}","msisdn":"{m}",{rest}}}"#, at(t))
}

fn profile(t: i64, m: &str, tier: &str) -> String {
    line("profile", t, m, &format!(r#""set":{{"status":"active","tier":"{tier}"}}"#))
}

fn visit(t: i64, m: &str) -> String {
    line("crm", t, m, r#""event":"store_visit","attrs":{"store":"S1"}"#)
}

fn call(t: i64, m: &str, service: &str) -> String {
    line("usage", t, m, &format!(r#""service":"{service}","direction":"mo","scope":"local","duration_s":90"#))
}

fn topup(t: i64, m: &str) -> String {
    line("topup", t, m, r#""amount_fen":5000,"channel":"online""#)
}

fn outcome(t: i64, d: &Value, status: &str) -> String {
    let (id, channel, rule) = (d["id"].as_str().unwrap(), d["channel"].as_str().unwrap(), d["rule"].as_str().unwrap());
    let m = d["msisdn"].as_str().unwrap();
    line(
        "outcome",
        t,
        m,
        &format!(r#""action_id":"{id}","channel":"{channel}","status":"{status}","rule":"{rule}","campaign":"x""#),
    )
}

fn reply(t: i64, m: &str) -> String {
    line("reply", t, m, r#""text":"好的","to":"10086""#)
}

/// The local day of a timestamp as the engine writes it (`+08:00`).
fn day(ts: &str) -> String {
    ts[..10].to_string()
}

/// The funnel of `decisions` and the `fed` events, counted here as `GET /v1/funnel` says it
/// counts (see its module): {day: {rule: {stage: n}}} (suppressions as `suppressed.<reason>`).
fn expected(decisions: &[Value], fed: &[Value]) -> BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>> {
    let mut f: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>> = BTreeMap::new();
    let mut add = |day: String, rule: &str, stage: String| {
        *f.entry(day).or_default().entry(rule.to_string()).or_default().entry(stage).or_default() += 1;
    };
    let mut seen = std::collections::HashSet::new();
    for d in decisions {
        let (rule, ts) = (d["rule"].as_str().unwrap(), d["ts"].as_str().unwrap());
        if seen.insert(d["id"].as_str().unwrap().to_string()) {
            add(day(ts), rule, "matched".into());
        }
        match d["outcome"].as_str().unwrap() {
            "sent" => add(day(ts), rule, "sent".into()),
            "suppressed" => add(day(ts), rule, format!("suppressed.{}", d["reason"].as_str().unwrap())),
            // A hold for quiet hours: counted when it is decided again.
            _ => {}
        }
    }
    for e in fed {
        let ts = e["ts"].as_str().unwrap();
        match e["kind"].as_str().unwrap() {
            "crm" if e["event"] == "store_visit" => add(day(ts), "visit_sms", "triggered".into()),
            "usage" if e["service"] == "voice" => add(day(ts), "voice_call", "triggered".into()),
            "topup" => add(day(ts), "topup_thanks", "triggered".into()),
            "outcome" => {
                let stage = match e["status"].as_str().unwrap() {
                    "delivered" => "delivered",
                    "answered" => "answered",
                    "accepted" => "accepted",
                    _ => continue,
                };
                let rule = e["rule"].as_str().unwrap();
                if RULES.contains(&format!("rule: {rule}\n")) {
                    add(day(ts), rule, stage.into());
                }
            }
            // Tied to the latest SMS sent to the subscriber before it (every SMS here goes out
            // from 10086, the default sender, well within the reply window).
            "reply" => {
                let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
                let answered = decisions
                    .iter()
                    .filter(|d| d["msisdn"] == e["msisdn"] && d["channel"] == "sms" && d["outcome"] == "sent")
                    .filter(|d| parse(d["ts"].as_str().unwrap()) <= parse(ts))
                    .max_by_key(|d| parse(d["ts"].as_str().unwrap()));
                if let Some(d) = answered {
                    add(day(ts), d["rule"].as_str().unwrap(), "replied".into());
                }
            }
            _ => {}
        }
    }
    f
}

/// `GET /v1/funnel`'s rules in the same form, checking the shape on the way: every stage
/// present, suppressions by reason, the campaign's rows the sum of its rules'.
fn served(v: &Value) -> BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>> {
    let mut f: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>> = BTreeMap::new();
    let stages = ["triggered", "matched", "sent", "delivered", "replied", "answered", "accepted"];
    let mut last = String::new();
    for d in v["days"].as_array().unwrap() {
        let dd = d["day"].as_str().unwrap().to_string();
        assert!(dd > last, "days ascending: {v}");
        last = dd.clone();
        let mut sums: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let rules = d["rules"].as_array().unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r["rule"].as_str().unwrap()).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "rules by name: {names:?}");
        for r in rules {
            let name = r["rule"].as_str().unwrap();
            let campaign = match name {
                "visit_sms" | "voice_call" => json!("winter_care"),
                _ => Value::Null,
            };
            assert_eq!(r["campaign"], campaign, "{r}");
            let mut counts = BTreeMap::new();
            for s in stages {
                let n = r[s].as_u64().unwrap_or_else(|| panic!("{s} in {r}"));
                if n > 0 {
                    counts.insert(s.to_string(), n);
                }
            }
            for (reason, n) in r["suppressed"].as_object().unwrap() {
                assert!(n.as_u64().unwrap() > 0, "only reasons with a count: {r}");
                counts.insert(format!("suppressed.{reason}"), n.as_u64().unwrap());
            }
            if let Some(c) = r["campaign"].as_str() {
                for (k, n) in &counts {
                    *sums.entry(c.to_string()).or_default().entry(k.clone()).or_default() += n;
                }
            }
            f.entry(dd.clone()).or_default().insert(name.to_string(), counts);
        }
        let mut campaigns: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for c in d["campaigns"].as_array().unwrap() {
            let mut counts = BTreeMap::new();
            for s in stages {
                let n = c[s].as_u64().unwrap();
                if n > 0 {
                    counts.insert(s.to_string(), n);
                }
            }
            for (reason, n) in c["suppressed"].as_object().unwrap() {
                counts.insert(format!("suppressed.{reason}"), n.as_u64().unwrap());
            }
            campaigns.insert(c["campaign"].as_str().unwrap().to_string(), counts);
        }
        assert_eq!(campaigns, sums, "a campaign's row adds up its rules': {d}");
    }
    f
}

/// Waits until the funnel served equals the one counted from the files and `fed`, with
/// `decided` decisions written in this run; returns what is served.
fn settle(port: u16, out: &Path, earlier: &[Value], fed: &[String], decided: usize) -> Value {
    let fed: Vec<Value> = fed.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let t0 = Instant::now();
    loop {
        let now = lines(&out.join("decisions.jsonl"));
        let all: Vec<Value> = earlier.iter().cloned().chain(now.iter().cloned()).collect();
        let want = expected(&all, &fed);
        let (status, v) = get(port, "/v1/funnel", VIEWER);
        assert_eq!(status, 200, "{v}");
        if now.len() == decided && served(&v) == want {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the funnel never matched ({} of {decided} decisions):\nserved {:#?}\nwanted {want:#?}",
            now.len(),
            served(&v)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Feeds profile events (no rule reads them) until the latest checkpoint holds every event fed
/// before them, so that a SIGKILL loses none of those. (A checkpoint is complete once the shards
/// have copied their state, between the batches after it: the fillers are those batches.)
fn checkpointed(stdin: &mut std::process::ChildStdin, ckpt: &Path, fed: &mut Vec<String>) {
    let need = fed.len() as u64;
    let t0 = Instant::now();
    loop {
        let latest = tidings::state::checkpoint::load_latest(ckpt, &mut |m| panic!("{m}")).unwrap();
        let pos = latest.map(|c| c.meta.router.pos);
        if pos.is_some_and(|p| p >= need) {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no checkpoint holds the {need} events: {pos:?}");
        let filler = profile(-20, "13800000009", "valuable");
        send(stdin, std::slice::from_ref(&filler));
        fed.push(filler);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_funnel_equals_the_decisions_and_outcomes_and_survives_a_restart_from_the_checkpoint() {
    let dir = Dir::new("funnel");
    let port = port();
    let cfg = setup(&dir, port);
    let out = dir.0.join("out");
    let (mut engine, mut stdin) = start_live(&cfg, port);

    let (a, b, c) = ("13800000001", "13800000002", "13800000003");
    // a and b high, c valuable; a visits twice (capped), c once (no match); voice calls and a
    // data session (not a voice call: not triggered); top-ups by all three.
    let mut fed = vec![
        profile(-50, a, "high"),
        profile(-50, b, "high"),
        profile(-50, c, "valuable"),
        visit(-45, a),
        visit(-44, a),
        visit(-43, b),
        visit(-42, c),
        call(-41, a, "voice"),
        call(-40, c, "voice"),
        call(-39, b, "data"),
        topup(-38, a),
        topup(-37, b),
        topup(-36, c),
    ];
    send(&mut stdin, &fed);
    // visit a, a (cap), b, voice a, c, top-ups a, b.
    settle(port, &out, &[], &fed, 7);

    // What came of them: delivery reports, a call answered, replies (one to nothing: b has
    // an SMS, c has none), an offer accepted, a failure (not a stage), an unknown rule.
    let decided = lines(&out.join("decisions.jsonl"));
    let sent = |rule: &str, m: &str| {
        decided.iter().find(|d| d["rule"] == rule && d["msisdn"] == m && d["outcome"] == "sent").unwrap().clone()
    };
    let mut unknown = sent("topup_thanks", b);
    unknown["rule"] = json!("gone_rule");
    let later = vec![
        outcome(-30, &sent("visit_sms", a), "delivered"),
        outcome(-30, &sent("visit_sms", b), "delivered"),
        outcome(-29, &sent("topup_thanks", a), "delivered"),
        outcome(-29, &sent("topup_thanks", b), "failed"),
        outcome(-28, &sent("voice_call", a), "answered"),
        outcome(-28, &sent("voice_call", c), "no_answer"),
        outcome(-27, &sent("visit_sms", a), "accepted"),
        outcome(-27, &unknown, "delivered"),
        reply(-26, a),
        reply(-25, b),
        reply(-25, c),
    ];
    send(&mut stdin, &later);
    fed.extend(later);
    let before = settle(port, &out, &[], &fed, 7);
    let (s, r) = get(port, "/v1/funnel?from=2026-13-01", ADM);
    assert_eq!(s, 400, "{r}");
    assert_eq!(get(port, "/v1/funnel", "Bearer nobody").0, 401);
    let one = get(port, "/v1/funnel?rule=voice_call", ADM).1;
    let days = one["days"].as_array().unwrap();
    assert!(days.iter().all(|d| d["rules"].as_array().unwrap().iter().all(|r| r["rule"] == "voice_call")), "{one}");
    assert!(!days.is_empty());
    let none = get(port, "/v1/funnel?from=2000-01-01&to=2000-01-02", ADM).1;
    assert_eq!(none, json!({"days": []}));
    let by_campaign = get(port, "/v1/funnel?campaign=winter_care", ADM).1;
    let names: Vec<&str> = by_campaign["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["rules"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()))
        .collect();
    assert!(!names.is_empty() && !names.contains(&"topup_thanks"), "{by_campaign}");

    // A SIGKILL once a checkpoint holds every event, and a restart: the checkpoint brings the
    // same funnel back (the output files start afresh; what the first run decided is kept here).
    checkpointed(&mut stdin, &dir.0.join("ckpt"), &mut fed);
    assert_eq!(get(port, "/v1/funnel", VIEWER).1, before, "profile events change no count");
    engine.child().kill().unwrap();
    let _ = engine.child().wait();
    drop(stdin);
    let first_run = lines(&out.join("decisions.jsonl"));
    let (engine, mut stdin) = start_live(&cfg, port);
    // The API may answer a moment before the engine has put the checkpoint back.
    let t0 = Instant::now();
    loop {
        let (_, after) = get(port, "/v1/funnel", VIEWER);
        if after == before {
            break;
        }
        assert!(
            after == json!({"days": []}) && t0.elapsed() < Duration::from_secs(20),
            "the same numbers after the restart:\n{after:#}\nbefore:\n{before:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // New events add on top (a's visit is capped if the day has not turned since).
    let more = vec![visit(-10, a), topup(-9, c), call(-8, b, "voice"), reply(-7, b)];
    send(&mut stdin, &more);
    fed.extend(more);
    // visit a (capped), voice b.
    settle(port, &out, &first_run, &fed, 2);
    drop(stdin);
    let done: Running = engine;
    let o = done.output();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Funnel rows for the counts of another test's rules: {day: {rule: {stage: n}}}.
type Counts = BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>;

/// In the engine itself: a timer's contact is matched when it fires, a contact held for quiet
/// hours is matched once (the day it was held) and sent the day it goes, a daily rule is
/// triggered once per subscriber at its tick — the same on one shard and three, in batches of
/// any size.
#[test]
fn timers_daily_rules_and_held_contacts_count_alike_on_any_shard_count() {
    use crate::support::{ev, no_footer, run_with};
    let rules = r#"
- rule: callback
  on: [crm]
  condition: event.event == complaint_closed
  timer: { after: 4h }
  action: { channel: call, script: "回访", queue: care }

- rule: night_offer
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "夜间优惠" }
  policy: { quiet_hours: defer }

- rule: morning
  schedule: "09:00"
  condition: subscriber.tier == high
  action: { channel: sms, template: "早上好" }
"#;
    let subs: Vec<String> = (0..6)
        .map(|i| format!(r#"{{"msisdn":"1390000{i:04}","brand":"gotone","tier":"{}"}}"#, ["high", "sub"][i % 2]))
        .collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let of = |i: usize, line: String| line.replace(crate::support::M, &format!("1390000{i:04}"));
    let crm = |i: usize, t: &str, what: &str| of(i, ev("crm", t, &format!(r#""event":"{what}""#)));
    let lines = vec![
        crm(0, "10:00:00", "complaint_closed"),
        crm(1, "11:00:00", "complaint_closed"),
        crm(1, "12:00:00", "store_visit"),
        crm(2, "23:00:00", "store_visit"),
        crm(3, "23:30:00", "store_visit"),
        crm(4, "2026-11-25T10:00:00+08:00", "complaint_closed"),
        crm(5, "2026-11-25T20:00:00+08:00", "store_visit"),
    ];
    let funnel = |shards: usize, batch: usize| -> (Counts, Vec<tidings::contact::Decision>) {
        let book = std::sync::Arc::new(tidings::engine::funnel::FunnelBook::default());
        let opts = tidings::engine::EngineOptions { shards, batch, funnel: Some(book.clone()), ..no_footer() };
        let r = run_with(rules, &subs, &lines, opts);
        let v = book.read(|t| tidings::api::funnel::view(t, &tidings::api::funnel::Query::default()));
        (served(&v), r.decisions)
    };
    let (one, decisions) = funnel(1, 1024);
    let offset = no_footer().offset;
    let decided: Vec<Value> = decisions.iter().map(|d| serde_json::from_str(&d.to_log_json(offset)).unwrap()).collect();
    let mut want = expected(&decided, &[]);
    let mut add = |day: &str, rule: &str, n: u64| {
        *want.entry(day.into()).or_default().entry(rule.into()).or_default().entry("triggered".into()).or_default() +=
            n;
    };
    add("2026-11-24", "callback", 2);
    add("2026-11-24", "night_offer", 3);
    add("2026-11-25", "callback", 1);
    add("2026-11-25", "night_offer", 1);
    // The tick at 09:00 on the 25th (ticks start after the first event): every subscriber.
    add("2026-11-25", "morning", subs.len() as u64);
    assert_eq!(one, want, "{decided:#?}");
    let day =
        |d: &str, rule: &str, stage: &str| one.get(d).and_then(|r| r.get(rule)).and_then(|s| s.get(stage)).copied();
    assert_eq!(day("2026-11-24", "night_offer", "matched"), Some(3));
    assert_eq!(day("2026-11-24", "night_offer", "sent"), Some(1), "the 12:00 visit");
    assert_eq!(day("2026-11-25", "night_offer", "matched"), Some(1));
    assert_eq!(day("2026-11-25", "night_offer", "sent"), Some(3), "the two held overnight at 08:00, and 20:00's");
    assert_eq!(day("2026-11-25", "morning", "matched"), Some(3), "the high-tier half");
    assert!(!one["2026-11-25"]["night_offer"].contains_key("suppressed.quiet_hours"), "20:00 is no quiet hour");
    for (shards, batch) in [(3, 1024), (2, 1), (3, 2)] {
        assert_eq!(funnel(shards, batch).0, one, "{shards} shards, batches of {batch}");
    }
}
