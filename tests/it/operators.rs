//! The operators' own gateway protocols — CMPP 2.0 and 3.0 (China Mobile), SMGP 3.0 (China
//! Telecom) — against the gateway simulator (`tests/gateways/sim.py`, itself checked against
//! PyPI's CMPP clients and the protocol documents' byte layouts in `gateways.rs`): the client
//! alone — login good and bad, a submit and its status report, a 200-character Chinese message
//! split and reassembled, flow control, heartbeats, the gateway killed and restarted, a
//! subscriber's reply — and the real binary delivering a generated run, every SMS once and every
//! report an outcome.

use crate::delivery::sms_action as action;
use crate::delivery::{Dir, Running, files, lines, run_to_end, tidings};
use crate::gateways::Sim;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tidings::contact::Action;
use tidings::sink::cmpp::pdu::Version;
use tidings::sink::cmpp::{CmppClient, CmppConfig};
use tidings::sink::gateway::{Inbound, Incoming, OutcomeStatus, Reply, Report, Sent};
use tidings::sink::smgp::{SmgpClient, SmgpConfig};
use tokio::sync::mpsc;

/// The protocols under test, by the simulator's name for them.
const PROTOCOLS: [&str; 3] = ["cmpp2", "cmpp3", "smgp"];

/// The simulator's login for CMPP (a 6-character enterprise code) and SMGP (8-character ClientID).
fn login(protocol: &str) -> Vec<&'static str> {
    let account = if protocol == "smgp" { "90123456" } else { "901234" };
    vec!["--account", account, "--secret", "s3cret"]
}

/// The status report detail the simulator's DELIVRD / UNDELIV come back as.
fn detail(protocol: &str, stat: &str) -> String {
    match (protocol, stat) {
        ("smgp", "DELIVRD") => "stat:DELIVRD err:000".into(),
        ("smgp", s) => format!("stat:{s} err:001"),
        (_, s) => format!("stat:{s}"),
    }
}

/// A client of any of the protocols, as the tests drive it.
#[derive(Clone)]
enum Client {
    Cmpp(CmppClient),
    Smgp(SmgpClient),
}

/// What a test changes from the defaults.
#[derive(Clone, Copy, Default)]
struct Tweak {
    active_test: Option<Duration>,
    no_reports: bool,
}

fn cmpp_config(port: u16, version: Version, secret: &str) -> CmppConfig {
    CmppConfig {
        version,
        port,
        account: "901234".into(),
        secret: secret.into(),
        service_id: "TIDINGS".into(),
        src_id: "10690001".into(),
        response_timeout: Duration::from_secs(2),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(300),
        flow_control_retry_after: Duration::from_millis(100),
        ..CmppConfig::default()
    }
}

impl Client {
    fn start(protocol: &str, port: u16, secret: &str, t: Tweak) -> (Client, mpsc::Receiver<Incoming>) {
        if protocol == "smgp" {
            let mut cfg = SmgpConfig {
                port,
                account: "90123456".into(),
                secret: secret.into(),
                service_id: "TIDINGS".into(),
                src_term_id: "10620001".into(),
                response_timeout: Duration::from_secs(2),
                reconnect_min: Duration::from_millis(50),
                reconnect_max: Duration::from_millis(300),
                flow_control_retry_after: Duration::from_millis(100),
                need_report: !t.no_reports,
                ..SmgpConfig::default()
            };
            cfg.active_test = t.active_test.unwrap_or(cfg.active_test);
            let (c, r) = SmgpClient::start(cfg).expect("config");
            return (Client::Smgp(c), r);
        }
        let version = if protocol == "cmpp2" { Version::V20 } else { Version::V30 };
        let mut cfg = cmpp_config(port, version, secret);
        cfg.active_test = t.active_test.unwrap_or(cfg.active_test);
        cfg.registered_delivery = !t.no_reports;
        let (c, r) = CmppClient::start(cfg).expect("config");
        (Client::Cmpp(c), r)
    }

    async fn submit(&self, a: &Action) -> Sent {
        match self {
            Client::Cmpp(c) => c.submit(a).await,
            Client::Smgp(c) => c.submit(a).await,
        }
    }

    fn is_logged_in(&self) -> bool {
        match self {
            Client::Cmpp(c) => c.is_logged_in(),
            Client::Smgp(c) => c.is_logged_in(),
        }
    }

    async fn shutdown(&self) {
        match self {
            Client::Cmpp(c) => c.shutdown().await,
            Client::Smgp(c) => c.shutdown().await,
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

async fn logged_in(client: &Client) {
    let t0 = Instant::now();
    while !client.is_logged_in() {
        assert!(t0.elapsed() < Duration::from_secs(10), "the client never logged in");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn next_report(reports: &mut mpsc::Receiver<Incoming>) -> Report {
    let incoming =
        tokio::time::timeout(Duration::from_secs(10), reports.recv()).await.expect("a report in time").expect("open");
    let report = incoming.report().expect("a report, not a reply").clone();
    incoming.done();
    report
}

fn messages(sim: &Sim) -> Vec<Value> {
    sim.lines().into_iter().filter(|l| l["event"] == "message").collect()
}

#[test]
fn login_submit_report_and_a_200_character_chinese_message_in_every_protocol() {
    let text: String = "尊敬的客户您好余额不足请及时充值".chars().cycle().take(200).collect();
    for protocol in PROTOCOLS {
        let sim = Sim::start(protocol, &login(protocol));
        runtime().block_on(async {
            let (client, mut reports) = Client::start(protocol, sim.port, "s3cret", Tweak::default());
            logged_in(&client).await;
            let Sent::Accepted { gateway_ids } = client.submit(&action("a-1", "13800138000", &text)).await else {
                panic!("{protocol}: the long message is accepted")
            };
            assert_eq!(gateway_ids.len(), 3, "{protocol}: 200 characters of UCS-2 are three parts");
            let mut reported = BTreeSet::new();
            for _ in 0..3 {
                let r = next_report(&mut reports).await;
                assert_eq!((r.status, r.detail), (OutcomeStatus::Delivered, detail(protocol, "DELIVRD")));
                assert_eq!(r.msisdn.as_deref(), Some("13800138000"), "{protocol}: the report names the subscriber");
                reported.insert(r.gateway_id.expect("a report names the submit's id"));
            }
            assert_eq!(reported, gateway_ids.iter().cloned().collect(), "{protocol}: one report per part");
            // A failed delivery reports as failed. This one names its sender (its rule's): it goes
            // out from that number, not the configured Src_Id / SrcTermID.
            let ruled = Action { sender: Some("10658888".into()), ..action("a-2", "13900001234", "hello") };
            let Sent::Accepted { gateway_ids } = client.submit(&ruled).await else { panic!("{protocol}: accepted") };
            let r = next_report(&mut reports).await;
            assert_eq!((r.status, r.gateway_id.as_ref()), (OutcomeStatus::Failed, gateway_ids.first()));
            assert_eq!(r.detail, detail(protocol, "UNDELIV"));
            // Every report was acknowledged once made safe (`done`), before the session ends.
            sim.wait_for("4 acknowledged reports", |ls| ls.iter().filter(|l| l.get("done").is_some()).count() == 4);
            client.shutdown().await;
        });
        let got = messages(&sim);
        assert_eq!(got.len(), 2, "{protocol}: two messages at the gateway");
        assert_eq!((got[0]["text"].as_str(), got[0]["parts"].as_u64()), (Some(text.as_str()), Some(3)));
        assert_eq!(got[0]["fmt"], 8);
        assert_eq!((got[1]["text"].as_str(), got[1]["fmt"].as_u64()), (Some("hello"), Some(0)));
        let configured = if protocol == "smgp" { "10620001" } else { "10690001" };
        let from: Vec<&str> = got.iter().filter_map(|m| m["src"].as_str()).collect();
        assert_eq!(from, [configured, "10658888"], "{protocol}: no sender, the configured source; else the sender");
        let goodbye = if protocol == "smgp" { "exit" } else { "terminate" };
        sim.wait_for("a goodbye", |ls| ls.iter().any(|l| l["cmd"] == goodbye));
    }
}

#[test]
fn a_bad_secret_is_not_logged_in_and_says_why_in_every_protocol() {
    for (protocol, why) in [
        ("cmpp3", "authentication failed (status 3)"),
        ("cmpp2", "authentication failed (status 3)"),
        ("smgp", "authentication failed (status 21)"),
    ] {
        let sim = Sim::start(protocol, &login(protocol));
        runtime().block_on(async {
            let (client, _reports) = Client::start(protocol, sim.port, "wrong", Tweak::default());
            let t0 = Instant::now();
            loop {
                match client.submit(&action("a-1", "13800138000", "hi")).await {
                    Sent::Retry { reason, .. } if reason.contains(why) => break,
                    Sent::Retry { .. } => {}
                    other => panic!("{protocol}: a refused login is a retry, got {other:?}"),
                }
                assert!(t0.elapsed() < Duration::from_secs(10), "{protocol}: the refusal reaches the answer");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(!client.is_logged_in());
        });
        assert!(messages(&sim).is_empty());
    }
}

#[test]
fn flow_control_is_a_retry_and_the_retry_is_taken_once_in_every_protocol() {
    for (protocol, why) in [
        ("cmpp2", "cmpp: flow control (Result 8)"),
        ("cmpp3", "cmpp: flow control (Result 8)"),
        ("smgp", "smgp: flow control (Result 1)"),
    ] {
        let sim = Sim::start(protocol, &login(protocol));
        runtime().block_on(async {
            let (client, _reports) = Client::start(protocol, sim.port, "s3cret", Tweak::default());
            logged_in(&client).await;
            sim.control(json!({"cmd": "throttle", "n": 1}));
            let a = action("a-1", "13800138000", "hi");
            match client.submit(&a).await {
                Sent::Retry { reason, after } => {
                    assert_eq!(reason, why);
                    assert_eq!(after, Some(Duration::from_millis(100)));
                }
                other => panic!("{protocol}: flow control is a retry, got {other:?}"),
            }
            assert!(matches!(client.submit(&a).await, Sent::Accepted { .. }));
        });
        assert_eq!(messages(&sim).len(), 1, "{protocol}: the throttled submit was not taken, the retry was");
    }
}

/// A subscriber's message (MO) sent by the gateway arrives as one Reply with its Chinese text
/// intact, in UCS-2 and in GBK, and is acknowledged only once the consumer has it safe.
#[test]
fn a_subscribers_reply_arrives_with_chinese_intact_in_every_protocol() {
    for protocol in PROTOCOLS {
        let sim = Sim::start(protocol, &login(protocol));
        runtime().block_on(async {
            let (client, mut reports) = Client::start(protocol, sim.port, "s3cret", Tweak::default());
            logged_in(&client).await;
            for (fmt, text) in [(8, "退订 谢谢"), (15, "我要办理流量包"), (0, "TD")] {
                sim.control(json!({"cmd": "mo", "from": "13800138000", "to": "10690001", "text": text, "fmt": fmt}));
                let incoming = tokio::time::timeout(Duration::from_secs(10), reports.recv())
                    .await
                    .expect("a reply in time")
                    .expect("open");
                let Inbound::Reply(Reply { msisdn, to, text: got, gateway, gateway_id, .. }) = &incoming.item else {
                    panic!("{protocol}: a reply, got {:?}", incoming.item)
                };
                assert_eq!((msisdn.as_str(), to.as_str(), got.as_str()), ("13800138000", "10690001", text));
                assert_eq!(*gateway, if protocol == "smgp" { "smgp" } else { "cmpp" });
                assert!(gateway_id.as_deref().is_some_and(|id| !id.is_empty()), "{protocol}: the MO's id");
                let acked = |ls: &[Value]| ls.iter().filter(|l| l.get("done").is_some()).count();
                let before = acked(&sim.lines());
                incoming.done();
                sim.wait_for("the reply acknowledged", |ls| acked(ls) == before + 1);
            }
            client.shutdown().await;
        });
    }
}

/// The `[delivery.*]` section for the binary.
fn section(protocol: &str, port: u16) -> String {
    let common = format!(
        "host = \"127.0.0.1\"\nport = {port}\nsecret = \"s3cret\"\nservice_id = \"TIDINGS\"\n\
         reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\nresponse_timeout = \"2s\"\n"
    );
    match protocol {
        "smgp" => format!("[delivery.smgp]\n{common}account = \"90123456\"\nsrc_term_id = \"10620001\"\n"),
        v => {
            let version = if v == "cmpp2" { "2.0" } else { "3.0" };
            format!("[delivery.cmpp]\n{common}version = \"{version}\"\naccount = \"901234\"\nsrc_id = \"10690001\"\n")
        }
    }
}

fn run_config(dir: &Path, protocol: &str, port: u16) -> PathBuf {
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

{section}
"#,
        files = files(dir),
        section = section(protocol, port),
    );
    let p = dir.join("tidings.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Every SMS action reached the gateway exactly once, whole, and has a delivered outcome.
fn check_exactly_once(dir: &Path, sim: &Sim, err: &str) {
    let mut want: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for a in lines(&dir.join("out/actions.jsonl")).into_iter().filter(|a| a["channel"] == "sms") {
        *want.entry((a["msisdn"].as_str().unwrap().into(), a["text"].as_str().unwrap().into())).or_default() += 1;
        ids.insert(a["id"].as_str().unwrap().to_owned());
    }
    assert!(want.len() >= 50, "the run decides SMS ({})", want.len());
    let mut got: BTreeMap<(String, String), usize> = BTreeMap::new();
    for m in messages(sim) {
        *got.entry((m["dest"].as_str().unwrap().into(), m["text"].as_str().unwrap().into())).or_default() += 1;
    }
    assert_eq!(got, want, "every SMS action reaches the gateway exactly once, whole\n{err}");
    assert!(messages(sim).iter().any(|m| m["parts"].as_u64() > Some(1)), "some messages are long enough to split");
    let delivered: Vec<String> = lines(&dir.join("outcomes.jsonl"))
        .into_iter()
        .filter(|o| o["channel"] == "sms" && o["status"] == "delivered")
        .map(|o| o["action_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered.iter().cloned().collect::<BTreeSet<_>>(), ids, "a delivered outcome for every SMS\n{err}");
    assert_eq!(delivered.len(), ids.len(), "one outcome per SMS");
}

#[test]
fn through_the_binary_every_sms_once_long_chinese_whole_and_reports_as_outcomes() {
    for protocol in PROTOCOLS {
        let dir = Dir::new(protocol);
        let sim = Sim::start(protocol, &login(protocol));
        let err = run_to_end(tidings(&run_config(&dir.0, protocol, sim.port)));
        check_exactly_once(&dir.0, &sim, &err);
    }
}

/// A subscriber's reply through the real binary: one `reply` line in outcomes.jsonl with the
/// Chinese intact. Its acknowledgement is lost (the simulator's `lose_acks`: to the gateway it
/// is as if tidings died between writing the reply and answering), tidings is SIGKILLed and
/// restarted, the gateway delivers the reply again — and it is recorded once.
#[test]
fn a_reply_through_the_binary_is_recorded_once_across_a_sigkill_before_its_acknowledgement() {
    for protocol in ["cmpp2", "cmpp3", "smgp", "sgip"] {
        let dir = Dir::new(&format!("reply-{protocol}"));
        // SGIP's SMG delivers over a connection of its own, to tidings' `listen`.
        let listen = crate::delivery::port();
        let sp = format!("127.0.0.1:{listen}");
        let sim = match protocol {
            "sgip" => Sim::start(
                "sgip",
                &[
                    "--account",
                    "tidings",
                    "--secret",
                    "s3cret",
                    "--sp",
                    &sp,
                    "--sp-login",
                    "smg",
                    "--sp-password",
                    "smgpw",
                ],
            ),
            _ => Sim::start(protocol, &login(protocol)),
        };
        let section = match protocol {
            "sgip" => format!(
                "[delivery.sgip]\nhost = \"127.0.0.1\"\nport = {}\nlogin_name = \"tidings\"\nlogin_password = \"s3cret\"\n\
                 listen = \"{sp}\"\nsmg_login = \"smg\"\nsmg_password = \"smgpw\"\nnode_id = 3010099999\n\
                 sp_number = \"10690001\"\nreconnect_min = \"100ms\"\n",
                sim.port
            ),
            _ => section(protocol, sim.port),
        };
        let cfg = dir.0.join("tidings.toml");
        let text = format!(
            "[source]\nkind = \"stdin\"\n\n{files}\nlisten = \"127.0.0.1:0\"\nlinger = \"1s\"\n\n{section}",
            files = files(&dir.0),
        );
        std::fs::write(&cfg, text).unwrap();
        let start = || {
            let mut cmd = tidings(&cfg);
            cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null());
            Running::spawn(cmd)
        };
        let logins = |ls: &[Value]| {
            let login = |c: &Value| c == "connect" || c == "login" || c == "bind";
            ls.iter().filter(|l| l["dir"] == "in" && login(&l["cmd"])).count()
        };
        let mut engine = start();
        sim.wait_for("tidings logged in", |ls| logins(ls) == 1);
        sim.control(json!({"cmd": "lose_acks", "n": 1}));
        sim.control(json!({"cmd": "mo", "from": "13800138000", "to": "10690001", "text": "退订 谢谢", "fmt": 8}));
        let outcomes = dir.0.join("outcomes.jsonl");
        let replies = || lines(&outcomes).into_iter().filter(|l| l["kind"] == "reply").collect::<Vec<_>>();
        let t0 = Instant::now();
        while replies().is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(20), "{protocol}: the reply reaches outcomes.jsonl");
            std::thread::sleep(Duration::from_millis(20));
        }
        sim.wait_for("the acknowledgement lost", |ls| ls.iter().any(|l| l["event"] == "ack_lost"));
        engine.child().kill().expect("SIGKILL tidings");
        let _ = engine.child().wait();
        drop(engine);
        let engine = start();
        sim.wait_for("the redelivered reply acknowledged", |ls| ls.iter().any(|l| l.get("done").is_some()));
        drop(engine);
        let got = replies();
        assert_eq!(got.len(), 1, "{protocol}: the reply recorded once: {got:?}");
        let r = &got[0];
        assert_eq!(
            (r["msisdn"].as_str(), r["to"].as_str(), r["text"].as_str()),
            (Some("13800138000"), Some("10690001"), Some("退订 谢谢"))
        );
        assert_eq!(r["gateway"], protocol.trim_end_matches(['2', '3']));
        assert!(logins(&sim.lines()) >= 2, "{protocol}: the second tidings logged in and took the redelivery");
    }
}

/// The gateway SIGKILLed while it still owes a report, and restarted on the same port and store:
/// the client logs in again by itself and the report comes, once.
#[test]
fn the_gateway_killed_and_restarted_the_client_logs_in_again_and_gets_the_owed_report() {
    for protocol in PROTOCOLS {
        let mut sim = Sim::start(protocol, &[&login(protocol)[..], &["--hold-reports"]].concat());
        let rt = runtime();
        let (client, mut reports) = rt.block_on(async {
            let (client, reports) = Client::start(protocol, sim.port, "s3cret", Tweak::default());
            logged_in(&client).await;
            (client, reports)
        });
        let Sent::Accepted { gateway_ids } = rt.block_on(client.submit(&action("a-1", "13800138000", "hi"))) else {
            panic!("{protocol}: accepted")
        };
        sim.restart_after_sigkill();
        sim.control(json!({"cmd": "release"})); // it comes back holding, as started
        rt.block_on(async {
            let r = next_report(&mut reports).await;
            assert_eq!(r.gateway_id.as_ref(), gateway_ids.first());
            assert!(client.is_logged_in());
        });
        let logins =
            sim.lines().iter().filter(|l| l["dir"] == "in" && (l["cmd"] == "connect" || l["cmd"] == "login")).count();
        assert_eq!(logins, 2, "{protocol}: one login before the kill, one after");
        sim.wait_for("the report acknowledged", |ls| ls.iter().any(|l| l.get("done").is_some()));
    }
}

/// An idle link stays up, kept by either side's heartbeat (CMPP_ACTIVE_TEST, SMGP Active_Test).
/// The gateway drops a connection silent for 400 ms (--idle-timeout-ms). First the client's own
/// heartbeat (after 100 ms without sending) keeps it; then the gateway sends one every 150 ms of
/// quiet (--active-test-ms) and the client, whose own would come only after 10 s, answers them.
/// Each time, after 1.5 s without a message, the first session still carries a submit.
#[test]
fn heartbeats_both_ways_keep_an_idle_link_up() {
    for protocol in PROTOCOLS {
        for (ours, theirs, cmd) in [(100, "0", "active_test"), (10_000, "150", "active_test_resp")] {
            let args = ["--idle-timeout-ms", "400", "--active-test-ms", theirs];
            let sim = Sim::start(protocol, &[&login(protocol)[..], &args].concat());
            runtime().block_on(async {
                let tweak = Tweak { active_test: Some(Duration::from_millis(ours)), ..Tweak::default() };
                let (client, _reports) = Client::start(protocol, sim.port, "s3cret", tweak);
                logged_in(&client).await;
                tokio::time::sleep(Duration::from_millis(1500)).await;
                assert!(matches!(client.submit(&action("a-1", "13800138000", "hi")).await, Sent::Accepted { .. }));
            });
            let ls = sim.lines();
            let count = |cmd: &str| ls.iter().filter(|l| l["dir"] == "in" && l["cmd"] == cmd).count();
            let logins = count("connect") + count("login");
            assert_eq!(logins, 1, "{protocol}: one login: the link never dropped ({cmd})");
            assert!(!ls.iter().any(|l| l["event"] == "idle_close"), "{protocol}: never found idle ({cmd})");
            assert!(count(cmd) >= 3, "{protocol}: heartbeats: {} {cmd} from the client", count(cmd));
        }
    }
}

/// Throughput of one CMPP link against the simulator, with the default window of 16: 64 callers
/// submit 3,000 one-part messages without status reports. A measurement, not a check (the Python
/// simulator sets the pace): `cargo nextest run --run-ignored only -E 'test(cmpp_link_throughput)'
/// --no-capture`; the figure goes to BENCHMARKS.md.
#[test]
#[ignore]
fn cmpp_link_throughput_with_a_window_of_16() {
    let sim = Sim::start("cmpp3", &login("cmpp3"));
    let n = 3_000;
    let elapsed = runtime().block_on(async {
        let tweak = Tweak { no_reports: true, ..Tweak::default() };
        let (client, _reports) = Client::start("cmpp3", sim.port, "s3cret", tweak);
        logged_in(&client).await;
        let t0 = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for caller in 0..64 {
            let client = client.clone();
            tasks.spawn(async move {
                for i in (caller..n).step_by(64) {
                    let a = action(&format!("a-{i}"), "13800138000", "hello from tidings");
                    assert!(matches!(client.submit(&a).await, Sent::Accepted { .. }));
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("a caller");
        }
        t0.elapsed()
    });
    assert_eq!(messages(&sim).len(), n);
    println!("cmpp 3.0, window 16: {n} submits in {elapsed:?} = {:.0} submits/s", n as f64 / elapsed.as_secs_f64());
}
