//! SGIP 1.2 against the gateway simulator (`tests/gateways/sim.py` as China Unicom's SMG, itself
//! checked against the document's byte layouts in `gateways.rs`). The SMG sends reports and
//! subscribers' messages over a connection of its own to the SP, so every test starts the
//! simulator with `--sp` pointing at the client's listener. The client alone — login good and
//! bad (both ways: ours to the SMG, the SMG's to us), a submit and its report, a 200-character
//! Chinese message split and reassembled, flow control, the idle link closed and bound again, the
//! SMG killed and restarted, a subscriber's message — and the real binary delivering a generated
//! run, every SMS once and every report an outcome.

use crate::delivery::sms_action as action;
use crate::delivery::{Dir, files, lines, run_to_end, tidings};
use crate::gateways::Sim;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tidings::contact::Action;
use tidings::sink::gateway::{Inbound, Incoming, OutcomeStatus, Report, Sent};
use tidings::sink::sgip::{SgipClient, SgipConfig};
use tokio::sync::mpsc;

/// The SP's login at the SMG, and the SMG's at the SP.
const LOGIN: [&str; 4] = ["--account", "tidings", "--secret", "s3cret"];
const SMG_LOGIN: [&str; 4] = ["--sp-login", "smg", "--sp-password", "smgpw"];

/// A port nobody listens on now, for the client's listener: the simulator must be told where
/// the SP listens before the client (which must be told where the SMG listens) starts.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

/// A simulated SMG that delivers to an SP listening on `sp_port`.
fn smg(sp_port: u16, extra: &[&str]) -> Sim {
    let sp = format!("127.0.0.1:{sp_port}");
    let args: Vec<&str> = [&LOGIN[..], &SMG_LOGIN[..], &["--sp", &sp], extra].concat();
    Sim::start("sgip", &args)
}

fn config(port: u16, sp_port: u16, password: &str) -> SgipConfig {
    SgipConfig {
        port,
        login_name: "tidings".into(),
        login_password: password.into(),
        listen: format!("127.0.0.1:{sp_port}"),
        smg_login: "smg".into(),
        smg_password: "smgpw".into(),
        node_id: 3_010_099_999,
        sp_number: "10655001".into(),
        corp_id: "99999".into(),
        service_type: "TIDINGS".into(),
        response_timeout: Duration::from_secs(2),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(300),
        flow_control_retry_after: Duration::from_millis(100),
        ..SgipConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

async fn logged_in(client: &SgipClient) {
    let t0 = Instant::now();
    while !client.is_logged_in() {
        assert!(t0.elapsed() < Duration::from_secs(10), "the client never logged in");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn next(incoming: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(Duration::from_secs(10), incoming.recv()).await.expect("something in time").expect("open")
}

async fn next_report(incoming: &mut mpsc::Receiver<Incoming>) -> Report {
    let i = next(incoming).await;
    let report = i.report().expect("a report, not a reply").clone();
    i.done();
    report
}

fn messages(sim: &Sim) -> Vec<Value> {
    sim.lines().into_iter().filter(|l| l["event"] == "message").collect()
}

fn count(sim: &Sim, dir: &str, cmd: &str) -> usize {
    sim.lines().iter().filter(|l| l["dir"] == dir && l["cmd"] == cmd).count()
}

#[test]
fn sgip_login_submit_report_over_the_smgs_connection_and_a_200_character_chinese_message() {
    let text: String = "尊敬的客户您好余额不足请及时充值".chars().cycle().take(200).collect();
    let sp_port = free_port();
    let sim = smg(sp_port, &[]);
    runtime().block_on(async {
        let (client, mut incoming) = SgipClient::start(config(sim.port, sp_port, "s3cret")).expect("config");
        logged_in(&client).await;
        let Sent::Accepted { gateway_ids } = client.submit(&action("a-1", "13800138000", &text)).await else {
            panic!("the long message is accepted")
        };
        assert_eq!(gateway_ids.len(), 3, "200 characters of UCS-2 are three parts");
        assert!(
            gateway_ids.iter().all(|id| id.starts_with("3010099999-")),
            "named by our sequence numbers: {gateway_ids:?}"
        );
        let mut reported = BTreeSet::new();
        for _ in 0..3 {
            let r = next_report(&mut incoming).await;
            assert_eq!((r.status, r.detail.as_str()), (OutcomeStatus::Delivered, "state:0 err:0"));
            assert_eq!(r.msisdn.as_deref(), Some("13800138000"), "the country code is stripped");
            reported.insert(r.gateway_id.expect("a report names its Submit"));
        }
        assert_eq!(reported, gateway_ids.iter().cloned().collect(), "one report per part");
        // A failed delivery reports as failed. This one names its sender (its rule's): it goes
        // out from that number, not the configured SPNumber.
        let ruled = Action { sender: Some("10658888".into()), ..action("a-2", "13900001234", "hello") };
        let Sent::Accepted { gateway_ids } = client.submit(&ruled).await else { panic!("accepted") };
        let r = next_report(&mut incoming).await;
        assert_eq!((r.status, r.gateway_id.as_ref()), (OutcomeStatus::Failed, gateway_ids.first()));
        assert_eq!(r.detail, "state:2 err:1");
        // Every report was answered once made safe (`done`), over the SMG's own connections.
        sim.wait_for("4 answered reports", |ls| ls.iter().filter(|l| l.get("done").is_some()).count() == 4);
        client.shutdown().await;
    });
    assert!(std::net::TcpStream::connect(("127.0.0.1", sp_port)).is_err(), "the listener stopped with the client");
    let got = messages(&sim);
    assert_eq!(got.len(), 2, "two messages at the gateway");
    assert_eq!((got[0]["text"].as_str(), got[0]["parts"].as_u64()), (Some(text.as_str()), Some(3)));
    assert_eq!((got[0]["dest"].as_str(), got[0]["fmt"].as_u64()), (Some("8613800138000"), Some(8)));
    assert_eq!((got[1]["text"].as_str(), got[1]["fmt"].as_u64()), (Some("hello"), Some(0)));
    let submits: Vec<Value> = sim.lines().into_iter().filter(|l| l["dir"] == "in" && l["cmd"] == "submit").collect();
    assert!(submits.iter().all(|s| s["report_flag"] == 1 && s["corp_id"] == "99999"));
    let from: Vec<&str> = submits.iter().filter_map(|s| s["sp_number"].as_str()).collect();
    assert_eq!(
        from,
        ["10655001", "10655001", "10655001", "10658888"],
        "no sender: the configured SPNumber; else the sender"
    );
    assert_eq!((got[0]["src"].as_str(), got[1]["src"].as_str()), (Some("10655001"), Some("10658888")));
    assert!(count(&sim, "in", "bind_resp") >= 1, "the SMG bound to our listener");
    assert!(sim.lines().iter().all(|l| l["event"] != "sp_unreachable"), "and was never refused");
    sim.wait_for("our unbind", |ls| ls.iter().any(|l| l["dir"] == "in" && l["cmd"] == "unbind"));
}

#[test]
fn sgip_bad_password_is_not_logged_in_and_says_why() {
    let sp_port = free_port();
    let sim = smg(sp_port, &[]);
    runtime().block_on(async {
        let (client, _incoming) = SgipClient::start(config(sim.port, sp_port, "wrong")).expect("config");
        let t0 = Instant::now();
        loop {
            match client.submit(&action("a-1", "13800138000", "hi")).await {
                Sent::Retry { reason, .. } if reason.contains("login refused: illegal login (result 1)") => break,
                Sent::Retry { .. } => {}
                other => panic!("a refused login is a retry, got {other:?}"),
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "the refusal reaches the answer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!client.is_logged_in());
    });
    assert!(messages(&sim).is_empty());
}

/// The SMG binding to us with the wrong password is refused (Bind_Resp Result 1) and what it
/// owes stays owed; the right one is taken.
#[test]
fn sgip_the_smgs_bind_is_checked_a_wrong_password_is_refused() {
    let sp_port = free_port();
    let sim = Sim::start(
        "sgip",
        &[&LOGIN[..], &["--sp", &format!("127.0.0.1:{sp_port}")], &SMG_LOGIN[..2], &["--sp-password", "guess"]]
            .concat(),
    );
    runtime().block_on(async {
        let (_client, mut incoming) = SgipClient::start(config(sim.port, sp_port, "s3cret")).expect("config");
        sim.control(json!({"cmd": "mo", "from": "8613800138000", "to": "10655001", "text": "退订"}));
        sim.wait_for("a refused bind", |ls| ls.iter().any(|l| l["cmd"] == "bind_resp" && l["result"] == 1));
        sim.wait_for("the SMG giving up on us", |ls| ls.iter().any(|l| l["event"] == "sp_unreachable"));
        assert!(incoming.try_recv().is_err(), "nothing came in from an SMG that did not bind");
    });
    assert_eq!(sim.control(json!({"cmd": "state"}))["owed"], 1, "the message is still owed");
}

#[test]
fn sgip_flow_control_is_a_retry_and_the_retry_is_taken_once() {
    let sp_port = free_port();
    let sim = smg(sp_port, &[]);
    runtime().block_on(async {
        let (client, _incoming) = SgipClient::start(config(sim.port, sp_port, "s3cret")).expect("config");
        logged_in(&client).await;
        sim.control(json!({"cmd": "throttle", "n": 2}));
        let a = action("a-1", "13800138000", "hi");
        for _ in 0..2 {
            match client.submit(&a).await {
                Sent::Retry { reason, after } => {
                    assert_eq!(reason, "sgip: flow control (Result 11)");
                    assert_eq!(after, Some(Duration::from_millis(100)));
                }
                other => panic!("flow control is a retry, got {other:?}"),
            }
        }
        assert!(matches!(client.submit(&a).await, Sent::Accepted { .. }));
    });
    assert_eq!(messages(&sim).len(), 1, "the throttled submits were not taken, the retry was");
}

/// SGIP 1.2 has no heartbeat, so an idle link does not wait for the SMG to cut it: after
/// `idle_close` without traffic the client unbinds, and the next submit binds again and goes out.
#[test]
fn sgip_an_idle_link_unbinds_and_the_next_submit_binds_again() {
    let sp_port = free_port();
    let sim = smg(sp_port, &[]);
    runtime().block_on(async {
        let cfg = SgipConfig { idle_close: Duration::from_millis(300), ..config(sim.port, sp_port, "s3cret") };
        let (client, mut incoming) = SgipClient::start(cfg).expect("config");
        logged_in(&client).await;
        assert!(matches!(client.submit(&action("a-1", "13800138000", "hi")).await, Sent::Accepted { .. }));
        next_report(&mut incoming).await;
        sim.wait_for("an unbind after the link went idle", |ls| {
            ls.iter().any(|l| l["dir"] == "in" && l["cmd"] == "unbind")
        });
        assert!(!client.is_logged_in(), "unbound while idle");
        assert!(matches!(client.submit(&action("a-2", "13800138000", "again")).await, Sent::Accepted { .. }));
        assert_eq!(count(&sim, "in", "bind"), 2, "bound again for the second submit");
        assert!(count(&sim, "out", "unbind_resp") >= 1, "the SMG answered the idle unbind");
        next_report(&mut incoming).await;
    });
    assert_eq!(messages(&sim).len(), 2);
}

/// The SMG SIGKILLed mid-stream, still owing reports, and restarted on the same port and store:
/// the client binds again by itself, the rest of the stream goes out, and every report comes.
#[test]
fn sgip_smg_killed_and_restarted_mid_stream_every_message_once_every_report_back() {
    let sp_port = free_port();
    let mut sim = smg(sp_port, &["--hold-reports"]);
    let rt = runtime();
    let (client, mut incoming) = rt.block_on(async {
        let (client, incoming) = SgipClient::start(config(sim.port, sp_port, "s3cret")).expect("config");
        logged_in(&client).await;
        (client, incoming)
    });
    let submit_all = |range: std::ops::Range<usize>| {
        rt.block_on(async {
            let mut ids = Vec::new();
            for i in range {
                let a = action(&format!("a-{i}"), "13800138000", &format!("第{i}条消息"));
                let t0 = Instant::now();
                loop {
                    match client.submit(&a).await {
                        Sent::Accepted { gateway_ids } => break ids.extend(gateway_ids),
                        Sent::Retry { .. } => tokio::time::sleep(Duration::from_millis(50)).await,
                        other => panic!("{other:?}"),
                    }
                    assert!(t0.elapsed() < Duration::from_secs(10), "the client binds again");
                }
            }
            ids
        })
    };
    let mut ids = submit_all(0..5);
    sim.restart_after_sigkill();
    ids.extend(submit_all(5..10));
    sim.control(json!({"cmd": "release"})); // it comes back holding, as started
    let reported: BTreeSet<String> = rt.block_on(async {
        let mut got = BTreeSet::new();
        while got.len() < 10 {
            got.insert(next_report(&mut incoming).await.gateway_id.expect("named"));
        }
        got
    });
    assert_eq!(reported, ids.iter().cloned().collect(), "every report back, each naming its submit");
    assert_eq!(ids.len(), 10, "ten distinct sequence numbers, across the two connections");
    let texts: BTreeSet<String> = messages(&sim).iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!((messages(&sim).len(), texts.len()), (10, 10), "every message at the SMG once");
    assert_eq!(count(&sim, "in", "bind"), 2, "one bind before the kill, one after");
}

/// A subscriber's message comes over the SMG's connection as one Reply, Chinese intact (UCS-2 and
/// GBK), the number without its country code; it is answered once made safe.
#[test]
fn sgip_a_subscribers_message_arrives_as_a_reply_with_chinese_text_intact() {
    let sp_port = free_port();
    let sim = smg(sp_port, &[]);
    runtime().block_on(async {
        let (_client, mut incoming) = SgipClient::start(config(sim.port, sp_port, "s3cret")).expect("config");
        for (text, fmt) in [("退订，谢谢！", 8), ("查询余额", 15)] {
            let ask = json!({"cmd": "mo", "from": "8613800138000", "to": "10655001", "text": text, "fmt": fmt});
            sim.control(ask);
            let i = next(&mut incoming).await;
            let Inbound::Reply(r) = &i.item else { panic!("a reply, got {:?}", i.item) };
            assert_eq!((r.msisdn.as_str(), r.to.as_str(), r.text.as_str()), ("13800138000", "10655001", text));
            assert_eq!(r.gateway, "sgip");
            assert!(r.gateway_id.as_deref().is_some_and(|id| id.starts_with("3000012345-")), "{r:?}");
            let done_before = sim.lines().iter().filter(|l| l.get("done").is_some()).count();
            i.done();
            sim.wait_for("the deliver answered", |ls| {
                ls.iter().filter(|l| l.get("done").is_some()).count() > done_before
            });
        }
    });
}

/// A subscriber's message handed over and never answered — tidings stopped before it was on
/// disk — comes again to the next run with the same sequence number, its id: the SMG resends the
/// same Deliver, so the reply can be recorded once.
#[test]
fn sgip_a_reply_not_answered_comes_again_with_the_same_id() {
    let sp_port = free_port();
    let sim = smg(sp_port, &[]);
    let cfg = config(sim.port, sp_port, "s3cret");
    let first = runtime().block_on(async {
        let (client, mut incoming) = SgipClient::start(cfg.clone()).expect("config");
        sim.control(json!({"cmd": "mo", "from": "8613800138000", "to": "10655001", "text": "退订"}));
        let i = next(&mut incoming).await;
        client.shutdown().await; // before `done`: the Deliver stays unanswered
        i.item
    });
    assert!(!sim.lines().iter().any(|l| l.get("done").is_some()), "nothing answered");
    let again = runtime().block_on(async {
        let (_client, mut incoming) = SgipClient::start(cfg).expect("config");
        let i = next(&mut incoming).await;
        let item = i.item.clone();
        i.done();
        sim.wait_for("the deliver answered", |ls| ls.iter().any(|l| l.get("done").is_some()));
        item
    });
    let (Inbound::Reply(a), Inbound::Reply(b)) = (&first, &again) else { panic!("replies: {first:?} {again:?}") };
    assert_eq!(
        (a.gateway_id.as_ref(), a.text.as_str()),
        (b.gateway_id.as_ref(), "退订"),
        "the same message, the same id"
    );
}

fn run_config(dir: &Path, port: u16, sp_port: u16) -> PathBuf {
    let text = format!(
        r#"
[source]
kind = "generator"
[source.generator]
subscribers = 1500
events = 30000
days = 2

{files}
listen = "127.0.0.1:0"
sms_tps = 100000
retry_min = "50ms"
retry_max = "500ms"
linger = "15s"
honour_expiry = false

[delivery.sgip]
host = "127.0.0.1"
port = {port}
login_name = "tidings"
login_password = "s3cret"
listen = "127.0.0.1:{sp_port}"
smg_login = "smg"
smg_password = "smgpw"
node_id = 3010099999
sp_number = "10655001"
corp_id = "99999"
service_type = "TIDINGS"
reconnect_min = "100ms"
reconnect_max = "500ms"
response_timeout = "2s"
"#,
        files = files(dir),
    );
    let p = dir.join("tidings.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn sgip_through_the_binary_every_sms_once_long_chinese_whole_and_reports_as_outcomes() {
    let dir = Dir::new("sgip");
    let sp_port = free_port();
    // The SMG's default window of 16: the reports of a long message's later parts (its outcome
    // is recorded with the first) are answered as repeats, or they would fill it.
    let sim = smg(sp_port, &[]);
    let err = run_to_end(tidings(&run_config(&dir.0, sim.port, sp_port)));
    let mut want: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for a in lines(&dir.0.join("out/actions.jsonl")).into_iter().filter(|a| a["channel"] == "sms") {
        *want
            .entry((format!("86{}", a["msisdn"].as_str().unwrap()), a["text"].as_str().unwrap().into()))
            .or_default() += 1;
        ids.insert(a["id"].as_str().unwrap().to_owned());
    }
    assert!(want.len() >= 50, "the run decides SMS ({})", want.len());
    let mut got: BTreeMap<(String, String), usize> = BTreeMap::new();
    for m in messages(&sim) {
        *got.entry((m["dest"].as_str().unwrap().into(), m["text"].as_str().unwrap().into())).or_default() += 1;
    }
    assert_eq!(got, want, "every SMS action reaches the SMG exactly once, whole\n{err}");
    assert!(messages(&sim).iter().any(|m| m["parts"].as_u64() > Some(1)), "some messages are long enough to split");
    let delivered: Vec<String> = lines(&dir.0.join("outcomes.jsonl"))
        .into_iter()
        .filter(|o| o["channel"] == "sms" && o["status"] == "delivered")
        .map(|o| o["action_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered.iter().cloned().collect::<BTreeSet<_>>(), ids, "a delivered outcome for every SMS\n{err}");
    assert_eq!(delivered.len(), ids.len(), "one outcome per SMS");
}
