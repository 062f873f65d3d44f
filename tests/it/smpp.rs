//! The SMPP client against an independent SMSC: `tests/smpp/sim.js`, built on the npm package
//! `smpp`. Each test starts its own simulator on a free port and reads the PDUs it logged.

use crate::delivery::sms_action as action;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tidings::contact::Action;
use tidings::sink::gateway::{Incoming, OutcomeStatus, Report, Sent};
use tidings::sink::smpp::{SmppClient, SmppConfig, user_message_reference};
use tokio::sync::mpsc;

pub fn sim_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smpp")
}

/// Installs the simulator's npm packages when they are missing.
pub fn ensure_node_modules() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| npm_ci(&sim_dir(), "smpp"));
}

/// Installs the npm packages of `dir` (a test's Node program) when `node_modules/{package}` is
/// missing. nextest runs each test in its own process, so an in-process lock is not enough:
/// each installer works in a private directory and renames the result into place; a rename onto
/// a complete `node_modules` fails harmlessly.
pub fn npm_ci(dir: &Path, package: &str) {
    if dir.join(format!("node_modules/{package}/package.json")).exists() {
        return;
    }
    let tmp = dir.join(format!(".install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("create install dir");
    for f in ["package.json", "package-lock.json"] {
        std::fs::copy(dir.join(f), tmp.join(f)).expect("copy package files");
    }
    eprintln!("installing {package}: npm ci --prefix {}", tmp.display());
    let ok = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&tmp)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "could not install {package} (npm ci in {}); run `bash scripts/test`", dir.display());
    let _ = std::fs::rename(tmp.join("node_modules"), dir.join("node_modules"));
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(dir.join("node_modules").join(package).exists(), "{}/node_modules is still missing", dir.display());
}

/// A running simulator; killed on drop.
pub struct Sim {
    pub child: Child,
    pub port: u16,
    /// Where it takes control commands (see sim.js: `mo` sends a subscriber's message).
    pub control_port: u16,
    pub log: PathBuf,
}

impl Sim {
    pub fn start(args: &[&str]) -> Sim {
        Sim::start_on(0, &new_log(), args)
    }

    pub fn start_on(port: u16, log: &Path, args: &[&str]) -> Sim {
        ensure_node_modules();
        let mut child = Command::new("node")
            .arg(sim_dir().join("sim.js"))
            .args(["--port", &port.to_string(), "--log"])
            .arg(log)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("node is needed for the SMPP tests");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read the simulator's first line");
        let (port, control_port) = match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["listening", p, "control", c] => (p.parse().ok(), c.parse().ok()),
            _ => (None, None),
        };
        let (Some(port), Some(control_port)) = (port, control_port) else {
            panic!("simulator did not start: {line:?}")
        };
        Sim { child, port, control_port, log: log.to_path_buf() }
    }

    /// Sends one control command and returns the answer.
    pub fn control(&self, cmd: Value) -> Value {
        use std::io::Write as _;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.control_port)).expect("the control port");
        writeln!(s, "{cmd}").expect("send a control command");
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).expect("the control answer");
        serde_json::from_str(&line).expect("a JSON answer")
    }

    pub fn lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Waits until the log holds a line for which `pred` holds.
    async fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = self.lines().into_iter().find(&pred) {
                return v;
            }
            assert!(Instant::now() < deadline, "simulator never logged {what}; log:\n{:#?}", self.lines());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill();
        // The PDU log is the evidence when a test fails; otherwise it goes.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

pub fn new_log() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("tidings-smpp-{}-{n}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn config(port: u16) -> SmppConfig {
    SmppConfig {
        port,
        system_id: "tidings".into(),
        password: "secret".into(),
        response_timeout: Duration::from_secs(2),
        enquire_link: Duration::from_secs(5),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(300),
        throttle_retry_after: Duration::from_millis(200),
        ..SmppConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

async fn bound(client: &SmppClient) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.is_logged_in() {
        assert!(Instant::now() < deadline, "client never bound");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start(sim: &Sim) -> (SmppClient, mpsc::Receiver<Incoming>) {
    let (client, reports) = SmppClient::start(config(sim.port)).expect("config is valid");
    bound(&client).await;
    (client, reports)
}

async fn next_report(reports: &mut mpsc::Receiver<Incoming>) -> Report {
    let incoming =
        tokio::time::timeout(Duration::from_secs(10), reports.recv()).await.expect("a receipt in time").expect("open");
    let report = incoming.report().expect("a report, not a reply").clone();
    incoming.done();
    report
}

fn accepted(sent: Sent) -> Vec<String> {
    match sent {
        Sent::Accepted { gateway_ids } => gateway_ids,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[test]
fn bind_submit_and_delivered_receipt_round_trip() {
    runtime().block_on(async {
        let sim = Sim::start(&["--system-id", "tidings", "--password", "secret"]);
        let (client, mut reports) = start(&sim).await;
        let ids = accepted(client.submit(&action("a-1", "13800138000", "Hello from 10086")).await);
        assert_eq!(ids.len(), 1);
        let r = next_report(&mut reports).await;
        assert_eq!(r.gateway_id.as_deref(), Some(ids[0].as_str()));
        assert_eq!(r.status, OutcomeStatus::Delivered);
        let umr = user_message_reference("a-1");
        assert!(r.detail.starts_with("stat:DELIVRD err:000"), "{}", r.detail);
        assert!(r.detail.ends_with(&format!("ref:{umr}")), "{}", r.detail);
        let submit = sim.wait_for("submit_sm", |v| v["command"] == "submit_sm").await;
        assert_eq!(submit["user_message_reference"], umr);
        assert_eq!(submit["data_coding"], 0);
        let msg = sim.wait_for("the message", |v| v["event"] == "message").await;
        assert_eq!(msg["text"], "Hello from 10086");
        assert_eq!(msg["message_ids"][0], ids[0].as_str());
        // No sender on the action (an older outbox line): from the configured source_addr. With
        // one (its rule's), from that number, where the subscriber's reply will go.
        assert_eq!(msg["src"], "10086");
        let ruled = Action { sender: Some("10658888".into()), ..action("a-1s", "13800138000", "Hello from 10658888") };
        accepted(client.submit(&ruled).await);
        let msg = sim.wait_for("the ruled message", |v| v["text"] == "Hello from 10658888").await;
        assert_eq!((msg["src"].as_str(), msg["dest"].as_str()), (Some("10658888"), Some("13800138000")));
        client.shutdown().await;
    });
}

#[test]
fn bind_with_wrong_password_never_binds_and_submit_retries() {
    runtime().block_on(async {
        let sim = Sim::start(&["--system-id", "tidings", "--password", "other"]);
        let (client, _reports) = SmppClient::start(config(sim.port)).expect("config is valid");
        sim.wait_for("bind_transceiver_resp", |v| v["command"] == "bind_transceiver_resp").await;
        // The answer says why; the client may take a moment to record the refusal.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(!client.is_logged_in());
            let sent = client.submit(&action("a-1", "13800138000", "x")).await;
            let Sent::Retry { reason, .. } = &sent else { panic!("expected Retry, got {sent:?}") };
            assert!(reason.starts_with("smpp: not bound"), "{reason}");
            if reason.contains("bind refused: ESME_RBINDFAIL") {
                break;
            }
            assert!(Instant::now() < deadline, "reason never named the refusal: {reason}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn undeliverable_receipt_reports_failed() {
    runtime().block_on(async {
        let sim = Sim::start(&[]);
        let (client, mut reports) = start(&sim).await;
        let ids = accepted(client.submit(&action("a-2", "13900001234", "Hello")).await);
        let r = next_report(&mut reports).await;
        assert_eq!((r.gateway_id.as_deref(), r.status), (Some(ids[0].as_str()), OutcomeStatus::Failed));
        assert!(r.detail.starts_with("stat:UNDELIV err:001"), "{}", r.detail);
    });
}

#[test]
fn chinese_200_chars_split_and_reassembled_at_the_smsc() {
    runtime().block_on(async {
        let sim = Sim::start(&[]);
        let (client, mut reports) = start(&sim).await;
        let text: String =
            "尊敬的客户，您的手机余额仅剩3.50元，为了不影响您的通话，请及时充值。最近的营业厅：北京西站营业厅。"
                .chars()
                .cycle()
                .take(200)
                .collect();
        let ids = accepted(client.submit(&action("a-3", "13800138000", &text)).await);
        assert_eq!(ids.len(), 3);
        let msg = sim.wait_for("the reassembled message", |v| v["event"] == "message").await;
        assert_eq!(msg["text"], text.as_str());
        assert_eq!(msg["parts"], 3);
        let logged: Vec<&str> = msg["message_ids"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(logged, ids);
        let mut got: Vec<String> = Vec::new();
        for _ in 0..3 {
            got.push(next_report(&mut reports).await.gateway_id.unwrap_or_default());
        }
        got.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(got, want, "one receipt per part");
    });
}

#[test]
fn throttled_destination_is_retry_with_backoff_hint() {
    runtime().block_on(async {
        let sim = Sim::start(&[]);
        let (client, _reports) = start(&sim).await;
        match client.submit(&action("a-4", "13911110000", "Hello")).await {
            Sent::Retry { reason, after } => {
                assert!(reason.contains("ESME_RTHROTTLED"), "{reason}");
                assert_eq!(after, Some(Duration::from_millis(200)));
            }
            other => panic!("expected Retry, got {other:?}"),
        }
        // A long message whose first part is throttled is not half sent.
        let long = "x".repeat(400);
        assert!(matches!(client.submit(&action("a-5", "13911110000", &long)).await, Sent::Retry { .. }));
        assert!(!sim.lines().iter().any(|v| v["event"] == "message"));
    });
}

#[test]
fn tps_limit_retry_loop_gets_all_twenty_accepted() {
    runtime().block_on(async {
        let sim = Sim::start(&["--tps", "5"]);
        let (client, _reports) = start(&sim).await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let client = client.clone();
            tasks.spawn(async move {
                let a = action(&format!("tps-{i}"), &format!("138001{i:05}"), &format!("message {i}"));
                let mut retries = 0;
                loop {
                    match client.submit(&a).await {
                        Sent::Accepted { gateway_ids } => return (gateway_ids, retries),
                        Sent::Retry { after, .. } => {
                            retries += 1;
                            tokio::time::sleep(after.unwrap_or(Duration::from_millis(100))).await;
                        }
                        other => panic!("not accepted: {other:?}"),
                    }
                }
            });
        }
        let mut ids = Vec::new();
        let mut retries = 0;
        while let Some(r) = tasks.join_next().await {
            let (gateway_ids, n) = r.expect("task");
            ids.extend(gateway_ids);
            retries += n;
        }
        assert_eq!(ids.len(), 20);
        assert!(retries > 0, "the simulator never throttled");
        let messages: Vec<String> = sim
            .lines()
            .iter()
            .filter(|v| v["event"] == "message")
            .filter_map(|v| v["dest"].as_str().map(str::to_string))
            .collect();
        let mut dests = messages.clone();
        dests.sort();
        dests.dedup();
        assert_eq!((messages.len(), dests.len()), (20, 20), "every message reached the SMSC exactly once");
    });
}

#[test]
fn reconnects_after_the_smsc_restarts_and_retries_quickly_meanwhile() {
    runtime().block_on(async {
        let mut sim = Sim::start(&[]);
        let port = sim.port;
        let log = sim.log.clone();
        let (client, _reports) = start(&sim).await;
        accepted(client.submit(&action("r-1", "13800138000", "before")).await);
        sim.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while client.is_logged_in() {
            assert!(Instant::now() < deadline, "client did not notice the SMSC died");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let t0 = Instant::now();
        let sent = client.submit(&action("r-2", "13800138000", "during")).await;
        assert!(matches!(sent, Sent::Retry { .. }), "{sent:?}");
        assert!(t0.elapsed() < Duration::from_millis(500), "submit hung for {:?} while unbound", t0.elapsed());
        drop(sim);
        let sim = Sim::start_on(port, &log, &[]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client.submit(&action("r-3", "13800138000", "after")).await {
                Sent::Accepted { .. } => break,
                Sent::Retry { after, .. } => {
                    assert!(Instant::now() < deadline, "never reconnected");
                    tokio::time::sleep(after.unwrap_or(Duration::from_millis(50))).await;
                }
                other => panic!("{other:?}"),
            }
        }
        sim.wait_for("the message after the restart", |v| v["event"] == "message" && v["text"] == "after").await;
    });
}

#[test]
fn receipt_due_while_unbound_arrives_after_the_next_bind() {
    runtime().block_on(async {
        let sim = Sim::start(&["--dlr-delay-ms", "500"]);
        let (first, _dropped) = start(&sim).await;
        let ids = accepted(first.submit(&action("s-1", "13800138000", "stored")).await);
        first.shutdown().await;
        sim.wait_for("unbind_resp", |v| v["command"] == "unbind_resp").await;
        let after = first.submit(&action("s-2", "13800138000", "late")).await;
        assert!(matches!(&after, Sent::Retry { reason, .. } if reason.contains("shut down")), "{after:?}");
        tokio::time::sleep(Duration::from_millis(700)).await; // the receipt falls due with nobody bound
        let (_second, mut reports) = start(&sim).await;
        let r = next_report(&mut reports).await;
        assert_eq!((r.gateway_id.as_deref(), r.status), (Some(ids[0].as_str()), OutcomeStatus::Delivered));
    });
}
