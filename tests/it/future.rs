//! Event time that one record cannot hijack, through the real binary: an event stamped far in
//! the future (an upstream clock error) is a dead letter and changes no action, in a replay and
//! in a live run; a stream resumed after a long gap still decides its daily rules; the live
//! engine answers SIGTERM and says on `/readyz` when it is stalled.

use crate::delivery::{Dir, Running, at, http_get, lines, port, send, start_live};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tidings() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tidings"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn ok(mut c: Command) -> String {
    let out = c.output().expect("run tidings");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "tidings failed: {text}");
    text
}

/// Six days of generated traffic for 400 subscribers (birthdays, daily rules, timers).
fn generated(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let mut c = tidings();
    c.args(["gen", "--subscribers", "400", "--events", "30000", "--days", "6", "--seed", "16", "--out"]).arg(&data);
    ok(c);
    data
}

/// A config with `engine` settings added to the shipped pack's policy.
fn config(dir: &Path, name: &str, engine: &str) -> PathBuf {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tidings.toml")).expect("config");
    // The given settings take the place of the shipped ones of the same name.
    let keys: Vec<&str> = engine.lines().filter_map(|l| l.split('=').next()).map(str::trim).collect();
    let kept: Vec<&str> =
        shipped.lines().filter(|l| !keys.iter().any(|k| l.split('=').next().map(str::trim) == Some(*k))).collect();
    let text = kept.join("\n").replacen("[engine]\n", &format!("[engine]\n{engine}\n"), 1);
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write config");
    p
}

/// `tidings replay` of `events` with `cfg`: its actions file and dead letters.
fn replay(dir: &Path, data: &Path, events: &Path, cfg: &Path, out: &str) -> (String, Vec<Value>) {
    let out = dir.join(out);
    let mut c = tidings();
    c.arg("replay").arg("--events").arg(events).arg("--data").arg(data).arg("--config").arg(cfg).arg("--out").arg(&out);
    ok(c);
    let actions = std::fs::read_to_string(out.join("actions.jsonl")).expect("actions");
    (actions, lines(&out.join("dead_letters.jsonl")))
}

fn event_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).expect("events").lines().map(str::to_string).collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write events");
}

fn ts_of(line: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let v: Value = serde_json::from_str(line).expect("event");
    chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().expect("ts")).expect("rfc3339")
}

/// A top-up by a subscriber of the data, stamped `ts`.
fn topup(msisdn: &str, ts: &str) -> String {
    format!(
        r#"{{"kind":"topup","ts":"{ts}","msisdn":"{msisdn}","amount_fen":5000,"channel":"card","id":"from-the-future"}}"#
    )
}

#[test]
fn an_event_from_far_in_the_future_is_a_dead_letter_and_changes_no_action_in_a_replay() {
    let dir = Dir::new("future-replay");
    let data = generated(&dir.0);
    let cfg = config(&dir.0, "tidings.toml", "");
    let events = data.join("events.jsonl");
    let (baseline, dead) = replay(&dir.0, &data, &events, &cfg, "baseline");
    assert!(dead.is_empty(), "the generated stream is clean: {dead:?}");
    assert!(baseline.lines().count() > 100, "the pack decides something on the generated stream");

    let all = event_lines(&events);
    let middle = all.len() / 2;
    let when = ts_of(&all[middle]);
    let msisdn =
        serde_json::from_str::<Value>(&all[middle]).expect("event")["msisdn"].as_str().expect("msisdn").to_string();
    let cases = [
        ("year-9999", "9999-12-31T23:59:59+08:00".to_string(), middle),
        ("a-century-ahead", (when + chrono::Duration::days(36_525)).to_rfc3339(), middle),
        ("a-month-ahead", (when + chrono::Duration::days(31)).to_rfc3339(), middle),
        // The very first event is the absurd one: it must not set event time for the rest.
        ("first-of-all", "9999-12-31T23:59:59+08:00".to_string(), 0),
    ];
    for (name, ts, pos) in cases {
        let mut mangled = all.clone();
        let line = topup(&msisdn, &ts);
        mangled.insert(pos, line.clone());
        let path = dir.0.join(format!("{name}.jsonl"));
        write_lines(&path, &mangled);
        let (actions, dead) = replay(&dir.0, &data, &path, &cfg, name);
        assert!(actions == baseline, "{name}: the actions differ from the stream without the event");
        assert_eq!(dead.len(), 1, "{name}: one dead letter: {dead:?}");
        assert_eq!(dead[0]["reason"], "future", "{name}");
        // Kept whole: the dead letter holds the event, which reads back as the same event.
        let raw: Value = serde_json::from_str(dead[0]["raw"].as_str().expect("raw")).expect("the event, whole");
        let sent: Value = serde_json::from_str(&line).expect("event");
        assert_eq!(raw["id"], sent["id"], "{name}");
        assert_eq!(raw["msisdn"], sent["msisdn"], "{name}");
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(raw["ts"].as_str().expect("ts")).expect("ts"),
            chrono::DateTime::parse_from_rfc3339(&ts).expect("ts"),
            "{name}"
        );
    }
}

#[test]
fn a_stream_resumed_after_a_12_hour_gap_still_decides_exactly_its_daily_rules() {
    let dir = Dir::new("future-gap");
    let data = generated(&dir.0);
    let events = data.join("events.jsonl");
    let all = event_lines(&events);
    // Twelve hours of nothing on the third day, over the 09:00 daily rules (birthdays).
    let day3 = ts_of(&all[0]).date_naive() + chrono::Duration::days(2);
    let from = day3.and_hms_opt(0, 0, 0).expect("time").and_local_timezone(ts_of(&all[0]).timezone()).unwrap();
    let to = from + chrono::Duration::hours(12);
    let kept: Vec<String> = all.iter().filter(|l| !(from..to).contains(&ts_of(l))).cloned().collect();
    assert!(kept.len() < all.len(), "the gap removed events");
    let gapped = dir.0.join("gapped.jsonl");
    write_lines(&gapped, &kept);
    // The guard and the slices against an engine with neither.
    let guarded = config(&dir.0, "guarded.toml", "");
    let unguarded = config(&dir.0, "unguarded.toml", "max_ahead = \"off\"\nslice = \"1000d\"");
    let (with, dead) = replay(&dir.0, &data, &gapped, &guarded, "guarded");
    let (without, _) = replay(&dir.0, &data, &gapped, &unguarded, "unguarded");
    assert!(dead.is_empty(), "nothing refused: {dead:?}");
    assert!(with == without, "the guarded, sliced replay decides what an unguarded one does");
    let birthdays_in_gap = with
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("action"))
        .filter(|a| a["rule"] == "birthday_greeting")
        .filter(|a| {
            let t = chrono::DateTime::parse_from_rfc3339(a["ts"].as_str().expect("ts")).expect("ts");
            (from..to).contains(&t)
        })
        .count();
    assert!(birthdays_in_gap > 0, "the 09:00 birthday greetings of the gap's day are decided when the stream resumes");
}

/// Four active GoTone subscribers, 13900000001 to 13900000004.
fn subscribers(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let subs: Vec<String> = (1..=4)
        .map(|i| format!(r#"{{"msisdn":"1390000000{i}","brand":"gotone","tier":"high","status":"active"}}"#))
        .collect();
    write_lines(&data.join("subscribers.jsonl"), &subs);
    data
}

/// A top-up (a payment) by `msisdn` at `ts`: the shipped pack confirms it by SMS at once
/// (topup_confirmation; CRM's `payment_posted` is confirmed two minutes on, in event time).
fn payment(msisdn: &str, ts: &str) -> String {
    format!(
        r#"{{"kind":"topup","ts":"{ts}","msisdn":"{msisdn}","amount_fen":5000,"balance_fen":6230,"channel":"bank"}}"#
    )
}

/// A live engine on stdin with the API, the shipped pack, four subscribers and a stall bound of
/// a second.
fn live_config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let data = subscribers(dir);
    let p = dir.join("live.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[engine]
batch = 1
shards = 1
stall_after = "1s"
{extra}

[source]
kind = "stdin"

[data]
dir = "{data}"

[policy]
quiet_hours = ""

[output]
dir = "{out}"
stdout = true

[api]
listen = "127.0.0.1:{port}"
admin_token = "adm"
"#,
            out = dir.join("out").display(),
            data = data.display(),
        ),
    )
    .expect("write config");
    p
}

/// Waits (up to `limit`) for `check` to hold.
fn until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !check() {
        assert!(t0.elapsed() < limit, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_live_engine_refuses_events_from_the_future_and_stops_at_once_on_sigterm() {
    let dir = Dir::new("future-live");
    let port = port();
    let cfg = live_config(&dir.0, port, "");
    let (mut engine, mut stdin) = start_live(&cfg, port);
    let century = (chrono::Utc::now() + chrono::Duration::days(36_525)).to_rfc3339();
    send(
        &mut stdin,
        &[
            payment("13900000001", &at(0)),
            payment("13900000002", "9999-12-31T23:59:59+08:00"),
            payment("13900000003", &century),
            payment("13900000004", &at(0)),
        ],
    );
    until(Duration::from_secs(20), "two dead letters counted", || {
        http_get(port, "/metrics", Some("adm")).1.contains(r#"tidings_dead_letters_total{reason="future"} 2"#)
    });
    assert_eq!(http_get(port, "/readyz", None).0, 200, "not stalled");
    // SIGTERM with stdin still open: the engine stops (it ignored it while lost in year 9999).
    let pid = engine.child().id();
    let t0 = Instant::now();
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    let mut exited = None;
    while t0.elapsed() < Duration::from_secs(20) {
        if let Some(s) = engine.child().try_wait().expect("wait") {
            exited = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = exited.expect("the engine exits on SIGTERM");
    eprintln!("stopped {:?} after SIGTERM ({status})", t0.elapsed());
    drop(stdin);
    let dead = lines(&dir.0.join("out/dead_letters.jsonl"));
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().all(|d| d["reason"] == "future"), "{dead:?}");
    assert!(dead[0]["detail"].as_str().expect("detail").contains("host's clock"), "{dead:?}");
    assert!(dead[1]["raw"].as_str().expect("raw").contains("13900000003"), "kept whole: {dead:?}");
    let actions = lines(&dir.0.join("out/actions.jsonl"));
    let to: Vec<&str> = actions.iter().filter_map(|a| a["msisdn"].as_str()).collect();
    assert_eq!(to, ["13900000001", "13900000004"], "the payments of now are confirmed, the others not");
}

#[test]
fn readyz_fails_while_the_engine_is_stalled_and_recovers_when_it_moves_again() {
    let dir = Dir::new("future-stall");
    let port = port();
    let cfg = live_config(&dir.0, port, "");
    // Its stdout is a pipe nobody reads yet: once it is full, the engine blocks writing with
    // input waiting — stalled, as behind a stuck downstream.
    let mut cmd = tidings();
    cmd.arg("run").arg("--config").arg(&cfg);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut engine = Running::spawn(cmd);
    let mut stdin = engine.child().stdin.take().expect("stdin");
    let mut stdout = engine.child().stdout.take().expect("stdout");
    until(Duration::from_secs(20), "the API comes up", || http_get(port, "/readyz", None).0 == 200);
    // Payments, each confirmed by an SMS written to stdout (transactional: no cap holds them).
    let feed: Vec<String> = (0..3000).map(|i| payment(&format!("1390000000{}", 1 + i % 4), &at(0))).collect();
    let writer = std::thread::spawn(move || {
        send(&mut stdin, &feed);
        stdin
    });
    until(Duration::from_secs(30), "/readyz says stalled", || {
        let (status, body) = http_get(port, "/readyz", None);
        status == 503 && body.contains("stalled")
    });
    let (_, metrics) = http_get(port, "/metrics", Some("adm"));
    let stalled = metrics
        .lines()
        .find(|l| l.starts_with("tidings_engine_stalled_seconds"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("tidings_engine_stalled_seconds");
    assert!(stalled >= 1.0, "the metric says how long: {stalled}");
    // The downstream moves again: the engine catches up and is ready.
    let reader = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    until(Duration::from_secs(30), "/readyz recovers", || http_get(port, "/readyz", None).0 == 200);
    drop(writer.join().expect("writer"));
    let _ = engine.child().kill();
    let _ = reader.join();
}

#[test]
fn a_replay_given_the_live_runs_dead_letters_refuses_what_the_live_run_refused() {
    let dir = Dir::new("future-refused");
    let port = port();
    let cfg = live_config(&dir.0, port, "");
    let (engine, mut stdin) = start_live(&cfg, port);
    // Two hours ahead of the host's clock: past the live check (15 minutes), within a replay's
    // event-time bound (a day) — only the record of the live run's refusal makes them agree.
    let recorded: Vec<String> = [(0, "13900000001"), (1, "13900000002"), (120, "13900000003"), (2, "13900000004")]
        .iter()
        .map(|(min, m)| payment(m, &at(*min)))
        .collect();
    send(&mut stdin, &recorded);
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let live_dead = dir.0.join("out/dead_letters.jsonl");
    assert_eq!(lines(&live_dead).len(), 1, "the live run refused the event two hours ahead");
    let live_actions = std::fs::read_to_string(dir.0.join("out/actions.jsonl")).expect("actions");
    assert_eq!(live_actions.lines().count(), 3, "{live_actions}");
    let events = dir.0.join("recorded.jsonl");
    write_lines(&events, &recorded);
    let run = |name: &str, refused: bool| {
        let out = dir.0.join(name);
        let mut c = tidings();
        c.arg("replay").arg("--events").arg(&events).arg("--data").arg(dir.0.join("data"));
        c.arg("--config").arg(&cfg).arg("--out").arg(&out);
        if refused {
            c.arg("--refused").arg(&live_dead);
        }
        ok(c);
        (std::fs::read_to_string(out.join("actions.jsonl")).expect("actions"), lines(&out.join("dead_letters.jsonl")))
    };
    let (plain, plain_dead) = run("plain", false);
    let (given, given_dead) = run("given", true);
    assert!(plain_dead.is_empty(), "without the record, a replay believes the event: {plain_dead:?}");
    assert_eq!(plain.lines().count(), 4, "{plain}");
    assert_eq!(given_dead.len(), 1, "{given_dead:?}");
    assert_eq!(given_dead[0]["reason"], "future");
    assert_eq!(given, live_actions, "given the live run's dead letters, the replay decides what it decided");
}

/// A stream and an IVR lane, as the live source gives them: while the engine asks for requests
/// only (between two slices of a long step of event time) it gets the waiting request or `Idle`.
struct Lanes {
    stream: std::collections::VecDeque<tidings::engine::Input>,
    requests: std::collections::VecDeque<tidings::engine::Input>,
    only: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Iterator for Lanes {
    type Item = tidings::engine::Input;
    fn next(&mut self) -> Option<Self::Item> {
        if self.only.load(std::sync::atomic::Ordering::Relaxed) {
            return Some(self.requests.pop_front().unwrap_or(tidings::engine::Input::Idle));
        }
        self.stream.pop_front()
    }
}

#[test]
fn an_ivr_request_waiting_during_a_long_step_of_event_time_is_answered_between_two_slices() {
    use std::sync::{Arc, atomic::AtomicBool};
    use tidings::engine::{self, EngineOptions, Input};
    let rules = r#"
- rule: good_morning
  schedule: "09:00"
  condition: subscriber.known
  action: { channel: sms, template: "早上好" }
  campaign: morning
  policy: { quiet_hours: ignore }
- rule: ivr_hello
  on: [ivr]
  condition: event.step == enter
  action: { channel: ivr, template: "1" }
  campaign: ivr
  policy: { quiet_hours: ignore }
"#;
    let loaded = tidings::rules::compile(vec![("t.yaml".into(), rules.into())], None, &Default::default());
    let set = Arc::new(loaded.rules.expect("the rules compile"));
    let mut subs = tidings::refdata::Subscribers::new();
    subs.insert(&crate::support::subscriber(r#"{"msisdn":"13800138000","brand":"gotone","tier":"high"}"#));
    let decoder = tidings::event::Decoder::default();
    let line = |l: &str| decoder.decode(l.as_bytes(), "t", 1).expect("a line");
    let usage = |ts: &str| {
        format!(
            r#"{{"kind":"usage","ts":"{ts}","msisdn":"13800138000","service":"data","direction":"mo","scope":"local","volume_kb":1}}"#
        )
    };
    let run = |with_lane: bool| {
        let only = Arc::new(AtomicBool::new(false));
        let lanes = Lanes {
            // Three days of nothing, then the stream goes on: three 09:00 greetings fall due.
            stream: [usage("2026-11-24T10:00:00+08:00"), usage("2026-11-27T12:00:00+08:00")]
                .iter()
                .map(|l| Input::Item(line(l)))
                .collect(),
            requests: [r#"{"kind":"ivr","ts":"2026-11-27T12:00:00+08:00","msisdn":"13800138000","session":"s1","step":"enter"}"#]
                .iter()
                .map(|l| Input::Urgent(line(l)))
                .collect(),
            only: Arc::clone(&only),
        };
        let opts = EngineOptions { requests_only: with_lane.then_some(only), ..Default::default() };
        let mut sink = tidings::sink::Memory::default();
        engine::run(lanes, Arc::clone(&set), Arc::default(), subs.clone(), &opts, &mut sink, &AtomicBool::new(false))
            .expect("run");
        sink.decisions.iter().map(|d| d.rule_name.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(
        run(true),
        ["ivr_hello", "good_morning", "good_morning", "good_morning"],
        "the caller is answered between two slices, before the greetings the step makes due"
    );
    // Without the lane (a file source), nothing asks for requests between the slices.
    assert_eq!(run(false), ["good_morning", "good_morning", "good_morning"]);
}
