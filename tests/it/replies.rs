//! Subscribers' replies (MO messages) as `reply` events: readable by rules, written once to
//! `outcomes.jsonl` by the real binary whichever gateway brought them (the SMPP simulator's
//! `deliver_sm`, Kannel's `get-url`), and recorded once when a gateway delivers one again after
//! tidings was killed before acknowledging it.

use crate::delivery::{Dir, Running, files, http_get, lines, port as free_port, tidings};
use crate::kannel::Kannel;
use crate::smpp::{Sim, new_log};
use crate::support::{SUB, ev, run};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A rule on `reply` reads `event.text`, `event.to` and `event.gateway`; the rule index files it
/// under its service number, so a reply to another number does not reach it.
#[test]
fn a_rule_reads_a_replys_text_service_number_and_gateway() {
    let rules = r#"
- rule: unsubscribe
  on: [reply]
  condition: event.to == "10658888" and event.text contains "退订" and event.gateway == smpp
  action: { channel: sms, template: "已为您退订 {event.text}" }
"#;
    let reply =
        |t: &str, to: &str, text: &str| ev("reply", t, &format!(r#""text":"{text}","to":"{to}","gateway":"smpp""#));
    let r = run(
        rules,
        &[SUB],
        &[
            reply("10:00:00", "10658888", "退订 谢谢"),
            reply("10:01:00", "10659999", "退订"),
            reply("10:02:00", "10658888", "你好"),
        ],
    );
    assert!(r.dead.is_empty(), "{:?}", r.dead);
    let texts: Vec<_> = r.decisions.iter().map(|d| d.text.clone().unwrap_or_default()).collect();
    assert_eq!(texts, ["已为您退订 退订 谢谢"], "only the unsubscribe to 10658888 matches");
    assert_eq!(r.decisions[0].trigger.kind, "reply");
}

/// A live engine (events on stdin, held open) delivering over `gateway` (a `[delivery.*]`
/// section), its delivery endpoint on `listen`.
fn live_config(dir: &Path, listen: &str, gateway: &str) -> PathBuf {
    let text = format!(
        r#"
[engine]
batch = 1
shards = 1

[source]
kind = "stdin"

{files}
listen = "{listen}"
linger = "1s"

{gateway}
"#,
        files = files(dir),
    );
    let p = dir.join("tidings.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `tidings run` on `config`, its stdin held open (a live stream that has not ended), its
/// stderr in `err`.
fn start(config: &Path, err: &Path) -> (Running, std::process::ChildStdin) {
    let mut cmd = tidings(config);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(std::fs::File::create(err).unwrap());
    let mut engine = Running::spawn(cmd);
    let stdin = engine.child().stdin.take().expect("piped stdin");
    (engine, stdin)
}

fn replies(dir: &Path) -> Vec<Value> {
    lines(&dir.join("outcomes.jsonl")).into_iter().filter(|l| l["kind"] == "reply").collect()
}

/// Waits (up to 30 s) until `ready` holds; `what` and `dir`'s stderr file say why not.
fn wait_until(what: &str, dir: &Path, ready: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !ready() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{what}: not after 30 s; tidings said:\n{}",
            std::fs::read_to_string(dir.join("err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn logged(sim: &Sim, event: &str, key: &Value) -> bool {
    sim.lines().iter().any(|l| l["event"] == event && l["key"] == *key)
}

/// The SMPP simulator sends a Chinese reply; tidings writes it and acknowledges it, but the
/// acknowledgement is lost (as when tidings is killed between the two) and tidings is SIGKILLed:
/// the simulator delivers it again to the restarted tidings, which passes it over. One reply
/// line, the text whole, the number the subscriber's.
#[test]
fn an_smpp_reply_is_one_reply_event_with_chinese_whole_and_survives_a_sigkill_before_its_ack() {
    let dir = Dir::new("reply-smpp");
    let log = new_log();
    let sim =
        Sim::start_on(0, &log, &["--system-id", "tidings", "--password", "secret", "--state", log.to_str().unwrap()]);
    let smpp = format!(
        "[delivery.smpp]\nhost = \"127.0.0.1\"\nport = {}\nsystem_id = \"tidings\"\npassword = \"secret\"\n\
         reconnect_min = \"50ms\"\nreconnect_max = \"200ms\"",
        sim.port
    );
    let cfg = live_config(&dir.0, "127.0.0.1:0", &smpp);
    let err = dir.0.join("err");
    let bound = || sim.control(json!({"cmd": "state"}))["sessions"].as_u64() >= Some(1);

    let (mut first, _stdin) = start(&cfg, &err);
    wait_until("tidings binds to the SMSC", &dir.0, bound);
    let answer = sim.control(json!({
        "cmd": "mo", "from": "8613800138000", "to": "10658888", "text": "退订 谢谢", "coding": 8, "lose_ack": 1
    }));
    let key = answer["key"].clone();
    assert!(key.is_string(), "{answer}");
    // On disk, then acknowledged (the simulator takes that acknowledgement as lost).
    wait_until("the reply is written and acknowledged", &dir.0, || {
        replies(&dir.0).len() == 1 && logged(&sim, "ack_lost", &key)
    });
    first.child().kill().unwrap();
    first.child().wait().unwrap();
    // The SMSC saw no acknowledgement: it delivers the message again once tidings is back.
    assert!(!logged(&sim, "mo_acked", &key));

    let (second, stdin) = start(&cfg, &err);
    wait_until("the redelivery is acknowledged", &dir.0, || logged(&sim, "mo_acked", &key));
    // A new reply after the restart is written as usual (GSM default alphabet).
    let key2 =
        sim.control(json!({"cmd": "mo", "from": "13900001111", "to": "10658888", "text": "TD", "coding": 0}))["key"]
            .clone();
    wait_until("the second reply is acknowledged", &dir.0, || logged(&sim, "mo_acked", &key2));
    drop(stdin);
    let out = second.output();
    let said = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(out.status.success(), "{said}");

    let got = replies(&dir.0);
    let texts: Vec<&str> = got.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["退订 谢谢", "TD"], "each reply once, the redelivery passed over:\n{said}");
    let r = &got[0];
    assert_eq!(
        (r["msisdn"].as_str(), r["to"].as_str(), r["gateway"].as_str()),
        (Some("13800138000"), Some("10658888"), Some("smpp"))
    );
    assert!(r["id"].as_str().is_some_and(|id| id.starts_with('r')) && r["ts"].is_string(), "{r}");
    assert!(said.contains("replies 1"), "the restarted run counts the new reply only:\n{said}");
}

/// Through real Kannel: the SMPP simulator sends a UCS-2 reply to Kannel's SMPP link, smsbox's
/// `sms-service` hands it to tidings' `get-url` (`%b`, decoded by `%C`), and it is one reply
/// event with its Chinese whole.
#[test]
fn a_reply_through_kannels_get_url_is_one_reply_event_with_chinese_whole() {
    let dir = Dir::new("reply-kannel");
    let sim = Sim::start(&["--system-id", "kannel", "--password", "secret"]);
    let listen = format!("127.0.0.1:{}", free_port());
    let kannel = Kannel::start(&dir.0, sim.port, &listen);
    let gateway = format!(
        "[delivery.kannel]\nurl = \"http://127.0.0.1:{}/cgi-bin/sendsms\"\nusername = \"tidings\"\npassword = \"kannel-secret\"",
        kannel.sendsms
    );
    let cfg = live_config(&dir.0, &listen, &gateway);
    let err = dir.0.join("err");
    let (engine, stdin) = start(&cfg, &err);
    let port: u16 = listen.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap();
    wait_until("tidings' delivery endpoint", &dir.0, || http_get(port, "/healthz", None).0 == 200);

    // 上 (U+4E0A) holds a newline octet in UCS-2: what Kannel's `%a` would have garbled.
    let text = "退订 上海 谢谢";
    let key = sim.control(json!({"cmd": "mo", "from": "13800138000", "to": "10658888", "text": text}))["key"].clone();
    wait_until("the reply reaches tidings through Kannel, which acknowledged the deliver_sm", &dir.0, || {
        !replies(&dir.0).is_empty() && logged(&sim, "mo_acked", &key)
    });
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap_or_default());
    let got = replies(&dir.0);
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(r["text"], text);
    assert_eq!(
        (r["msisdn"].as_str(), r["to"].as_str(), r["gateway"].as_str()),
        (Some("13800138000"), Some("10658888"), Some("kannel"))
    );
}

/// Through real Kannel, with tidings SIGKILLed between writing a reply and Kannel hearing the
/// answer: a proxy between smsbox and tidings passes the first `get-url` request on and drops
/// tidings' answer (as if tidings had died before sending it), tidings is SIGKILLed and
/// restarted, smsbox tries again (`http-request-retry`) with the same message id (`%I`), and the
/// restarted tidings passes it over. One reply line, its Chinese whole.
#[test]
fn a_kannel_reply_survives_a_sigkill_before_kannel_hears_the_answer_and_is_recorded_once() {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let dir = Dir::new("reply-kannel-kill");
    let sim = Sim::start(&["--system-id", "kannel", "--password", "secret"]);
    let listen = format!("127.0.0.1:{}", free_port());
    // The proxy: every request goes to tidings; the first answer is dropped.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").expect("a proxy port");
    let proxy_addr = proxy.local_addr().expect("its address").to_string();
    let requests: Arc<Mutex<Vec<String>>> = Arc::default();
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::spawn({
        let (requests, listen, killed) = (requests.clone(), listen.clone(), killed.clone());
        move || {
            for (n, conn) in proxy.incoming().enumerate() {
                let Ok(mut from_kannel) = conn else { continue };
                let head = read_head(&mut from_kannel);
                requests.lock().expect("requests").push(head.lines().next().unwrap_or_default().to_owned());
                let Ok(mut to_tidings) = std::net::TcpStream::connect(&listen) else { continue };
                let _ = to_tidings.write_all(head.as_bytes());
                let answer = read_head(&mut to_tidings);
                if n > 0 {
                    let _ = from_kannel.write_all(answer.as_bytes());
                } else {
                    // Kannel's first request fails only once tidings is gone, so that its retry
                    // meets the restarted tidings.
                    let t0 = Instant::now();
                    while !killed.load(std::sync::atomic::Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(30) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
    });
    /// An HTTP head (tidings' answers and Kannel's GETs have no body).
    fn read_head(s: &mut std::net::TcpStream) -> String {
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
            buf.push(byte[0]);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
    let kannel = Kannel::start(&dir.0, sim.port, &proxy_addr);
    let gateway = format!(
        "[delivery.kannel]\nurl = \"http://127.0.0.1:{}/cgi-bin/sendsms\"\nusername = \"tidings\"\npassword = \"kannel-secret\"",
        kannel.sendsms
    );
    let cfg = live_config(&dir.0, &listen, &gateway);
    let err = dir.0.join("err");
    let (mut engine, stdin) = start(&cfg, &err);
    let port: u16 = listen.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap();
    wait_until("tidings' delivery endpoint", &dir.0, || http_get(port, "/healthz", None).0 == 200);

    let text = "退订 上海 谢谢";
    let key = sim.control(json!({"cmd": "mo", "from": "13800138000", "to": "10658888", "text": text}))["key"].clone();
    wait_until("the reply written by the first tidings", &dir.0, || !replies(&dir.0).is_empty());
    engine.child().kill().expect("SIGKILL tidings");
    let _ = engine.child().wait();
    drop((engine, stdin));
    let (engine, stdin) = start(&cfg, &err);
    wait_until("the restarted tidings", &dir.0, || http_get(port, "/healthz", None).0 == 200);
    killed.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_until("smsbox tried again and the restarted tidings answered", &dir.0, || {
        requests.lock().expect("requests").len() >= 2 && logged(&sim, "mo_acked", &key)
    });
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap_or_default());
    let seen = requests.lock().expect("requests").clone();
    assert!(seen.len() >= 2 && seen.iter().all(|r| *r == seen[0]), "the same request again: {seen:?}");
    let got = replies(&dir.0);
    assert_eq!(got.len(), 1, "recorded once: {got:?}");
    assert_eq!((got[0]["text"].as_str(), got[0]["gateway"].as_str()), (Some(text), Some("kannel")));
}

/// The dispatcher alone: a reply delivered twice is written once, and once more delivered after
/// the ledger was closed and opened again (a restart) it is still passed over; every delivery is
/// acknowledged, the first only after its line is on disk.
#[test]
fn the_dispatcher_records_a_reply_once_across_a_reopen_of_the_ledger() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use tidings::sink::deliver::{DeliveryConfig, DeliveryStats, Dispatcher};
    use tidings::sink::gateway::{Incoming, Reply};

    let dir = Dir::new("reply-dispatcher");
    let cfg: DeliveryConfig = toml::from_str(&format!(
        "outbox = \"{}\"\noutcomes = \"{}\"",
        dir.0.join("outbox").display(),
        dir.0.join("outcomes.jsonl").display()
    ))
    .unwrap();
    let reply = |gateway_id: Option<&str>, text: &str| Reply {
        msisdn: "13800138000".into(),
        to: "10658888".into(),
        text: text.into(),
        gateway: "cmpp",
        gateway_id: gateway_id.map(str::to_owned),
        at_ms: 1_764_000_000_000,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let outcomes = dir.0.join("outcomes.jsonl");
    // One run of the dispatcher over `replies`; when each is acknowledged, what it carried is in
    // the file already.
    let run = |replies: Vec<Reply>| -> DeliveryStats {
        rt.block_on(async {
            let dispatcher = Dispatcher::with_gateways(cfg.clone(), None, None).unwrap();
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let mut acks = Vec::new();
            for r in replies {
                let text = r.text.clone();
                let (incoming, safe) = Incoming::with_ack(r);
                tx.send(incoming).unwrap();
                let outcomes = outcomes.clone();
                acks.push(tokio::spawn(async move {
                    safe.await.expect("every delivery is acknowledged");
                    let on_disk = std::fs::read_to_string(&outcomes).unwrap_or_default();
                    assert!(on_disk.contains(&format!(r#""text":"{text}""#)), "acknowledged before it was on disk");
                }));
            }
            let closed = Arc::new(AtomicBool::new(true));
            let stats = dispatcher
                .run(rx, Arc::new(tokio::sync::Notify::new()), closed, Arc::new(AtomicBool::new(false)))
                .await
                .unwrap();
            for ack in acks {
                ack.await.unwrap();
            }
            stats
        })
    };
    let first = run(vec![reply(Some("m1"), "退订"), reply(Some("m1"), "退订"), reply(None, "TD"), reply(None, "TD")]);
    assert_eq!((first.replies, first.replies_again), (2, 2));
    let written: Vec<Value> = replies(&dir.0);
    assert_eq!(written.iter().map(|r| r["text"].as_str().unwrap()).collect::<Vec<_>>(), ["退订", "TD"]);
    // A restart: the ledger is read again, and the same deliveries are redeliveries still.
    let again = run(vec![reply(Some("m1"), "退订"), reply(None, "TD"), reply(Some("m2"), "退订")]);
    assert_eq!((again.replies, again.replies_again), (1, 2), "only m2 is new");
    let texts: Vec<Value> = replies(&dir.0).iter().map(|r| r["id"].clone()).collect();
    assert_eq!(texts.len(), 3);
    assert_eq!(texts[..2], written.iter().map(|r| r["id"].clone()).collect::<Vec<_>>()[..]);
}
