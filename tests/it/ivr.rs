//! The IVR personalisation endpoint over real HTTP, against a live engine with two shards and
//! full batches: answers follow the caller's IVR history as it arrives, contact policy counts an
//! IVR offer like an SMS, unknown callers get the default menu, and bad requests are refused.

use crate::delivery::{Dir, at, http_get, lines, port as free_port, send, start_live};
use serde_json::Value;
use std::time::{Duration, Instant};

/// (status, JSON body); status 0 when nothing listens yet.
fn get(port: u16, path: &str, token: Option<&str>) -> (u16, Value) {
    let (status, body) = http_get(port, path, token);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn ask(port: u16, msisdn: &str, session: &str) -> Value {
    let (status, body) = get(port, &format!("/v1/ivr/{msisdn}?session={session}"), Some("ivr-token"));
    assert_eq!(status, 200, "{body}");
    assert!(body.get("degraded").is_none(), "the engine answered in time: {body}");
    body
}

/// Waits until the engine has taken `n` events (the admin metrics say so).
fn wait_taken(port: u16, n: f64) {
    let t0 = Instant::now();
    loop {
        let (_, body) = http_get(port, "/metrics", Some("adm"));
        let total: f64 = body
            .lines()
            .filter(|l| l.starts_with("tidings_events_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if total >= n {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the engine took {total} of {n} events");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ivr_answers_follow_the_callers_history_count_against_caps_and_refuse_bad_requests() {
    let dir = Dir::new("ivr");
    let port = free_port();
    let cfg = dir.0.join("tidings.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
# Full batches on two shards: an IVR request must still be answered at once.
[engine]
shards = 2
batch = 1024

[source]
kind = "stdin"

[policy]
quiet_hours = ""
caps = ["1 per day"]

[output]
dir = "{out}"
stdout = false

[api]
listen = "127.0.0.1:{port}"
admin_token = "adm"
ivr_token = "ivr-token"
ivr_log = "{log}"
"#,
            out = dir.0.join("out").display(),
            log = dir.0.join("ivr_requests.jsonl").display(),
        ),
    )
    .unwrap();
    let (engine, mut stdin) = start_live(&cfg, port);

    // Refused: no token, the admin token, a malformed number or session.
    assert_eq!(get(port, "/v1/ivr/13800000001?session=s1", None).0, 401);
    assert_eq!(get(port, "/v1/ivr/13800000001?session=s1", Some("adm")).0, 401, "the IVR has its own token");
    let (status, body) = get(port, "/v1/ivr/138abc?session=s1", Some("ivr-token"));
    assert_eq!((status, body["error"].is_string()), (400, true), "{body}");
    assert_eq!(get(port, "/v1/ivr/13800000001?session=a%20b", Some("ivr-token")).0, 400);
    assert_eq!(get(port, "/v1/ivr/13800000001", Some("ivr-token")).0, 400, "a session is required");

    // An unknown caller: the default menu, no offer, not an error.
    let a = ask(port, "13800000001", "s1");
    assert_eq!(a["menu"], serde_json::json!(["1", "2", "3", "4", "5", "0"]));
    assert!(a["offer"].is_null(), "{a}");

    // A caller with no agent history gets no personalisation; once their last session reached an
    // agent from node 3-1, the next call starts at 3.
    let m = "13800000002";
    assert!(ask(port, m, "s2")["offer"].is_null());
    send(
        &mut stdin,
        &[
            format!(r#"{{"kind":"ivr","ts":"{}","msisdn":"{m}","session":"s3","step":"enter"}}"#, at(-10)),
            format!(r#"{{"kind":"ivr","ts":"{}","msisdn":"{m}","session":"s3","step":"menu","node":"3-1"}}"#, at(-9)),
            format!(r#"{{"kind":"ivr","ts":"{}","msisdn":"{m}","session":"s3","step":"agent","node":"3-1"}}"#, at(-8)),
            format!(r#"{{"kind":"ivr","ts":"{}","msisdn":"{m}","session":"s3","step":"exit"}}"#, at(-5)),
        ],
    );
    wait_taken(port, 6.0);
    let b = ask(port, m, "s4");
    assert_eq!(b["offer"]["rule"], "ivr_menu_personalise", "{b}");
    assert_eq!(b["prompt"], "3-1");
    assert_eq!(b["menu"][0], "3", "the node of the last agent call first: {b}");
    // The offer counted: a second call today meets the daily cap.
    let c = ask(port, m, "s5");
    assert!(c["offer"].is_null(), "{c}");
    assert_eq!(c["suppressed"][0]["reason"], "cap", "{c}");

    // Caps across channels: a survey SMS today uses the caller's one contact of the day, so the
    // IVR personalisation is held back. "Today" in the subscribers' time: just after local
    // midnight the events stay after it (the daily cap starts afresh at midnight).
    let s = "13800000003";
    let local = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
    let since_midnight = i64::from(chrono::Timelike::num_seconds_from_midnight(&local.time()) / 60);
    let today = |min: i64| at(-min.min(since_midnight));
    send(
        &mut stdin,
        &[
            format!(
                r#"{{"kind":"profile","ts":"{}","msisdn":"{s}","set":{{"status":"active","tier":"valuable"}}}}"#,
                today(30)
            ),
            format!(
                r#"{{"kind":"crm","ts":"{}","msisdn":"{s}","event":"store_visit","attrs":{{"store":"S1"}}}}"#,
                today(20)
            ),
            format!(r#"{{"kind":"ivr","ts":"{}","msisdn":"{s}","session":"t1","step":"agent","node":"2"}}"#, today(10)),
        ],
    );
    wait_taken(port, 11.0);
    let d = ask(port, s, "t2");
    assert!(d["offer"].is_null(), "{d}");
    assert_eq!(d["suppressed"][0]["rule"], "ivr_menu_personalise");
    assert_eq!(d["suppressed"][0]["reason"], "cap", "{d}");

    // Explain, live: the subscriber as the owning shard holds them now, number masked.
    assert_eq!(get(port, &format!("/v1/explain/{s}"), None).0, 401);
    assert_eq!(get(port, "/v1/explain/12x", Some("adm")).0, 400);
    let (status, e) = get(port, &format!("/v1/explain/{s}"), Some("adm"));
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["msisdn"], "138****0003");
    assert_eq!((e["known"].as_bool(), e["profile"]["tier"].as_str()), (Some(true), Some("valuable")), "{e}");
    assert_eq!(e["state"]["ivr_last_node"], "2", "{e}");
    let contacts: Vec<&str> = e["contacts"].as_array().unwrap().iter().filter_map(|c| c["rule"].as_str()).collect();
    assert_eq!(contacts, ["store_satisfaction"], "the survey SMS is in the contact history caps count: {e}");
    assert!(!e.to_string().contains(s), "no full number in the answer");
    let (status, u) = get(port, "/v1/explain/13999999999", Some("adm"));
    assert_eq!((status, u["known"].as_bool()), (200, Some(false)), "{u}");
    // Where the answers' time went, as a histogram over the run: five requests asked and answered.
    let count = |stage: &str| -> Option<f64> {
        let m = http_get(port, "/metrics", Some("adm")).1;
        let key = format!("tidings_ivr_seconds_count{{stage=\"{stage}\"}} ");
        m.lines().find_map(|l| l.strip_prefix(key.as_str())?.trim().parse().ok())
    };
    assert_eq!((count("queued"), count("answered")), (Some(5.0), Some(5.0)));
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sms = lines(&dir.0.join("out/actions.jsonl"))
        .into_iter()
        .filter(|a| a["msisdn"] == s && a["channel"] == "sms")
        .count();
    assert_eq!(sms, 1, "the survey SMS went out");
    // Every request is in the IVR log as an event, for replay.
    let logged = lines(&dir.0.join("ivr_requests.jsonl"));
    assert_eq!(logged.len(), 5, "one line per answered request: {logged:?}");
    assert!(logged.iter().all(|l| l["kind"] == "ivr" && l["id"].as_str().is_some_and(|i| i.starts_with("ivr-"))));
}

/// Asks `/v1/ivr/{msisdn}` for each number over one keep-alive connection; every answer is 200.
fn ask_all(port: u16, numbers: impl Iterator<Item = u64>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for n in numbers {
        write!(w, "GET /v1/ivr/{n}?session=s{n} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ivr-token\r\n\r\n")
            .unwrap();
        let (mut status, mut len, mut line) = (String::new(), 0usize, String::new());
        r.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
    }
}

#[test]
fn unknown_ivr_callers_are_held_up_to_the_bound_and_forgotten_past_it() {
    let dir = Dir::new("ivr-unknown");
    let port = free_port();
    let cfg = dir.0.join("tidings.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[engine]
shards = 2
unknown_subscribers = 200

[source]
kind = "stdin"

[output]
dir = "{out}"
stdout = false

[api]
listen = "127.0.0.1:{port}"
admin_token = "adm"
ivr_token = "ivr-token"
rate_per_client = 1000000
ivr_log = "{log}"
"#,
            out = dir.0.join("out").display(),
            log = dir.0.join("ivr_requests.jsonl").display(),
        ),
    )
    .unwrap();
    let (_engine, _stdin) = start_live(&cfg, port);
    // 4,000 numbers the engine has never seen, from 16 clients.
    let clients: Vec<_> = (0..16u64)
        .map(|c| std::thread::spawn(move || ask_all(port, (0..250u64).map(move |i| 13_900_000_000 + c * 250 + i))))
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    wait_taken(port, 4_000.0);
    let (_, metrics) = http_get(port, "/metrics", Some("adm"));
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    let held = value("tidings_unknown_subscribers").unwrap_or(f64::NAN);
    assert!(held <= 200.0, "at most the bound is held: {held}");
    let forgotten = value("tidings_unknown_subscribers_forgotten_total").unwrap_or(0.0);
    assert!(forgotten >= 3_800.0, "the rest are forgotten: {forgotten}");
    // A forgotten caller asks again: answered as any caller.
    assert_eq!(ask(port, "13900000000", "again")["menu"].as_array().map(Vec::len), Some(6));
}
