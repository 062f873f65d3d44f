//! The store survey: an SMS says what it asks about (`about:`, the store), a reply reads it back
//! as `event.in_reply_to.about`, and a low score becomes a call-back task to that store's care
//! queue: in the engine, in the rule compiler's diagnostics, and through the real binary with
//! the SMPP simulator sending the subscriber's score and a call-centre task API taking the call.

use crate::delivery::{Dir, files, lines, start_centre};
use crate::smpp::{Sim, new_log};
use crate::support::{SUB, ev, run};
use crate::unsubscribe::live::{start, wait_until};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

const PACK: &str = r#"
- rule: store_satisfaction
  on: [crm]
  condition: event.event == store_visit
  action:
    channel: sms
    template: "请回复1-5为本次服务打分"
    about: "{event.attrs.store}"
  campaign: service_survey
  policy: { transactional: true, quiet_hours: ignore }

- rule: store_low_score_callback
  on: [reply]
  condition: event.in_reply_to.rule == "store_satisfaction" and event.keyword in ("1", "2")
  action:
    channel: call
    script: "客户对营业厅（{event.in_reply_to.about|default:未知}）的服务打了{event.keyword}分"
    queue: "store_care_{event.in_reply_to.about|default:general}"
  campaign: service_survey
  policy: { transactional: true, quiet_hours: ignore }
"#;

fn visit(t: &str, store: &str) -> String {
    ev("crm", t, &format!(r#""event":"store_visit","attrs":{{"store":"{store}"}}"#))
}

fn reply(t: &str, text: &str) -> String {
    ev("reply", t, &format!(r#""text":"{text}","to":"10086""#))
}

/// Each score answers the latest survey: the call-back goes to the queue of the store that
/// survey asked about, and names it; a good score calls nobody.
#[test]
fn a_low_score_calls_back_from_the_care_queue_of_the_store_the_answered_survey_asked_about() {
    let r = run(
        PACK,
        &[SUB],
        &[
            visit("10:00:00", "S001"),
            reply("10:10:00", "２"),
            visit("11:00:00", "S002"),
            reply("11:05:00", "1"),
            reply("11:06:00", "5"),
        ],
    );
    assert!(r.dead.is_empty(), "{:?}", r.dead);
    let surveys: Vec<_> = r.decisions.iter().filter(|d| d.rule_name.as_ref() == "store_satisfaction").collect();
    let abouts: Vec<_> = surveys.iter().map(|d| d.about.as_deref()).collect();
    assert_eq!(abouts, [Some("S001"), Some("S002")], "each survey carries its store");
    let calls: Vec<(Option<&str>, Option<&str>)> = r
        .decisions
        .iter()
        .filter(|d| d.rule_name.as_ref() == "store_low_score_callback")
        .map(|d| (d.queue.as_deref(), d.script.as_deref()))
        .collect();
    assert_eq!(
        calls,
        [
            (Some("store_care_S001"), Some("客户对营业厅（S001）的服务打了2分")),
            (Some("store_care_S002"), Some("客户对营业厅（S002）的服务打了1分")),
        ]
    );
}

/// `about` belongs on an SMS; elsewhere it is refused at its place, and a misspelt
/// `in_reply_to.about` gets the usual hint.
#[test]
fn about_is_refused_off_an_sms_and_a_misspelt_field_gets_a_hint() {
    let src = "- rule: c\n  on: [crm]\n  condition: \"true\"\n  action: { channel: call, script: hi, about: x }\n- rule: r\n  on: [reply]\n  condition: event.in_reply_to.abut == \"S001\"\n  action: { channel: sms, template: hi }\n";
    let loaded =
        tidings::rules::compile(vec![("a.yaml".into(), src.into())], None, &tidings::rules::LoadOptions::default());
    assert!(loaded.rules.is_none());
    let rendered: String = loaded.diagnostics.iter().map(|d| d.render()).collect();
    let got: Vec<(String, usize, usize, String)> =
        loaded.diagnostics.iter().map(|d| (format!("{:?}", d.code), d.line, d.col, d.message.clone())).collect();
    assert!(got.contains(&("E005".into(), 4, 47, "a call action has no `about`".into())), "{rendered}");
    assert!(rendered.contains("only SMS actions take it"), "{rendered}");
    assert!(rendered.contains("a.yaml:7:") && rendered.contains("event.in_reply_to.about"), "{rendered}");
}

fn config(dir: &Path, smsc: u16, centre: &str) -> PathBuf {
    std::fs::write(dir.join("rules.yaml"), PACK).unwrap();
    let text = format!(
        "[engine]\nbatch = 1\nshards = 1\nallowed_lateness = \"0s\"\n\n[rules]\npaths = [\"{rules}\"]\n\n[source]\nkind = \"stdin\"\n\n{files}\n\
         listen = \"127.0.0.1:0\"\nlinger = \"1s\"\nretry_min = \"50ms\"\nretry_max = \"200ms\"\n\n\
         [delivery.smpp]\nhost = \"127.0.0.1\"\nport = {smsc}\nsystem_id = \"tidings\"\npassword = \"secret\"\n\
         reconnect_min = \"50ms\"\nreconnect_max = \"200ms\"\n\n\
         [delivery.call_centre]\nurl = \"http://{centre}/v1/tasks\"\ntoken = \"cc-secret\"\ntimeout = \"2s\"\n",
        rules = dir.join("rules.yaml").display(),
        files = files(dir),
    );
    let p = dir.join("tidings.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Through the binary: a store visit (stdin) -> the survey SMS over SMPP -> the subscriber's
/// `２` comes back from the simulator as an MO message -> a call task reaches the call centre
/// in the queue of the store visited.
#[test]
fn a_low_score_sent_from_the_phone_reaches_the_call_centre_in_the_stores_queue() {
    let dir = Dir::new("survey-live");
    let log = new_log();
    let sim = Sim::start_on(0, &log, &["--system-id", "tidings", "--password", "secret"]);
    let (centre_addr, centre, _rt) = start_centre("127.0.0.1:0", 0);
    let cfg = config(&dir.0, sim.port, &centre_addr);
    let err = dir.0.join("err");
    let (engine, mut stdin) = start(&cfg, &err);
    wait_until("tidings binds to the SMSC", &err, || {
        sim.control(json!({"cmd": "state"}))["sessions"].as_u64() >= Some(1)
    });

    let now = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
    let ts = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    writeln!(
        stdin,
        r#"{{"kind":"crm","id":"v1","ts":"{ts}","msisdn":"13800138000","event":"store_visit","attrs":{{"store":"S002"}}}}"#
    )
    .unwrap();
    stdin.flush().unwrap();
    wait_until("the survey reaches the SMSC", &err, || {
        sim.lines().iter().any(|l| l["event"] == "message" && l["text"].as_str().is_some_and(|t| t.contains("打分")))
    });
    sim.control(json!({"cmd": "mo", "from": "8613800138000", "to": "10086", "text": "２", "coding": 8}));
    wait_until("the call-back reaches the call centre", &err, || !centre.lock().unwrap().posts.is_empty());
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap_or_default());

    let c = centre.lock().unwrap();
    assert_eq!(c.tasks.len(), 1, "one call task: {:?}", c.posts);
    let task = c.tasks.values().next().unwrap();
    assert_eq!(task["queue"], "store_care_S002", "{task}");
    assert!(task["script"].as_str().unwrap().contains("营业厅（S002）的服务打了2分"), "{task}");
    let decisions = lines(&dir.0.join("out/decisions.jsonl"));
    let survey = decisions.iter().find(|d| d["rule"] == "store_satisfaction").expect("the survey's decision");
    assert_eq!(survey["about"], "S002", "the decision line says what the survey asked about");
}

/// `explain` says what each survey asked about and which queue the call-back went to.
#[test]
fn explain_names_the_store_a_survey_asked_about_and_the_queue_of_the_call_back() {
    let dir = Dir::new("survey-explain");
    std::fs::write(dir.0.join("rules.yaml"), PACK).unwrap();
    let events = dir.0.join("events.jsonl");
    std::fs::write(&events, [visit("10:00:00", "S001"), reply("10:10:00", "1")].join("\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["explain", "13800138000", "--config", "/nonexistent.toml", "--rules"])
        .arg(dir.0.join("rules.yaml"))
        .arg("--events")
        .arg(&events)
        .output()
        .unwrap();
    let told = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(told.contains("SMS sent by rule store_satisfaction") && told.contains("[about S001] 请回复1-5"), "{told}");
    assert!(
        told.contains("call task sent by rule store_low_score_callback") && told.contains("[queue store_care_S001]"),
        "{told}"
    );
}
