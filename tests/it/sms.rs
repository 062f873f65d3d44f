//! SMS through the real binary to an independent SMSC (the `smpp` npm package's server in
//! `tests/smpp/sim.js`): every SMS action reaches the SMSC exactly once — counted at the
//! simulator, long Chinese messages reassembled whole — and receipts come back as outcome
//! events; also when the SMSC is killed mid-stream and when tidings itself is SIGKILLed.

use crate::delivery::{Dir, Running, files, lines, run_to_end, tidings};
use crate::smpp::{Sim, new_log};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let text = format!(
        r#"
[source]
kind = "generator"
[source.generator]
subscribers = 1500
events = 30000
days = 2

[policy]
sender = "10658888"

{files}
listen = "127.0.0.1:0"
sms_tps = 100000
retry_min = "50ms"
retry_max = "500ms"
linger = "15s"
in_doubt_grace = "3s"
honour_expiry = false
{extra}

[delivery.smpp]
host = "127.0.0.1"
port = {port}
system_id = "tidings"
password = "secret"
source_addr = "10086"
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

/// An SMS by where it goes, what it says and where it comes from.
type Key = (String, String, String);

fn key(to: &Value, text: &Value, from: &Value) -> Key {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (s(to), s(text), s(from))
}

/// (number, text, sender) -> how many times, for the run's SMS actions. Every one names the
/// `[policy] sender` of the config (10658888), not the SMPP section's `source_addr` (10086).
fn sms_actions(dir: &Path) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for a in lines(&dir.join("out/actions.jsonl")).into_iter().filter(|a| a["channel"] == "sms") {
        assert_eq!(a["sender"], "10658888", "the action names its sender");
        *m.entry(key(&a["msisdn"], &a["text"], &a["sender"])).or_default() += 1;
    }
    m
}

/// (number, text, source_addr) -> how many times, for whole messages the SMSC received.
fn at_smsc(sim: &Sim) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for l in sim.lines().into_iter().filter(|l| l["event"] == "message") {
        *m.entry(key(&l["dest"], &l["text"], &l["src"])).or_default() += 1;
    }
    m
}

fn check_exactly_once(dir: &Path, sim: &Sim, err: &str) {
    let want = sms_actions(dir);
    assert!(want.len() >= 50, "the run decides SMS ({})", want.len());
    let got = at_smsc(sim);
    let missing: Vec<_> = want.iter().filter(|(k, n)| got.get(*k) != Some(n)).take(3).collect();
    let extra: Vec<_> = got.iter().filter(|(k, n)| want.get(*k) != Some(n)).take(3).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "each SMS action reaches the SMSC exactly once, from its sender: {} actions, {} at the SMSC; e.g. missing {missing:?}, \
         extra {extra:?}\n{err}",
        want.values().sum::<usize>(),
        got.values().sum::<usize>()
    );
    // Long Chinese messages went out in parts and were put back together whole.
    let long = sim.lines().into_iter().filter(|l| l["event"] == "message" && l["parts"].as_u64() > Some(1)).count();
    assert!(long > 0, "some messages are long enough to be split");
    // Every SMS has its receipt as an outcome event.
    let ids: std::collections::BTreeSet<String> = lines(&dir.join("out/actions.jsonl"))
        .into_iter()
        .filter(|a| a["channel"] == "sms")
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let all: Vec<String> = lines(&dir.join("outcomes.jsonl"))
        .into_iter()
        .filter(|o| o["channel"] == "sms" && o["status"] == "delivered")
        .map(|o| o["action_id"].as_str().unwrap().to_owned())
        .collect();
    let outcomes: std::collections::BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(outcomes.len(), all.len(), "one outcome per SMS at most");
    // Receipts are acknowledged to the SMSC only once they are on disk, so none is lost with a
    // killed process: the SMSC sends it again.
    assert_eq!(outcomes, ids, "a delivered outcome for every SMS:\n{err}");
}

fn wait_messages(sim: &Sim, n: usize) {
    let t0 = Instant::now();
    while sim.lines().iter().filter(|l| l["event"] == "message").count() < n {
        assert!(t0.elapsed() < Duration::from_secs(60), "the SMSC receives messages");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A simulator that keeps unacknowledged receipts in its log (`--state` = `--log`), so a message
/// it took and the receipt it owes are written together.
fn smsc(args: &[&str]) -> Sim {
    let log = new_log();
    let mut all = args.to_vec();
    all.extend(["--state", log.to_str().unwrap()]);
    Sim::start_on(0, &log, &all)
}

#[test]
fn every_sms_reaches_the_smsc_once_with_long_chinese_whole_and_receipts_as_outcomes() {
    let dir = Dir::new("sms");
    let sim = smsc(&["--system-id", "tidings", "--password", "secret"]);
    let err = run_to_end(tidings(&config(&dir.0, sim.port, "")));
    check_exactly_once(&dir.0, &sim, &err);
}

#[test]
fn the_smsc_killed_mid_stream_and_restarted_still_gets_every_sms_exactly_once() {
    let dir = Dir::new("sms-smsc-killed");
    let log = new_log();
    // The SMSC's store is its log: a message taken and the receipt it is owed are one write.
    let args = ["--tps", "200", "--state", log.to_str().unwrap()];
    let mut sim = Sim::start_on(0, &log, &args);
    let port = sim.port;
    let mut cmd = tidings(&config(&dir.0, port, ""));
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = Running::spawn(cmd);
    wait_messages(&sim, 40);
    // SIGKILL the SMSC: submits in flight get no answer; it keeps what it had taken.
    sim.kill();
    std::thread::sleep(Duration::from_millis(800));
    let sim = Sim::start_on(port, &log, &args);
    let out = child.output();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    check_exactly_once(&dir.0, &sim, &err);
}

#[test]
fn tidings_killed_with_sigkill_mid_send_and_restarted_sends_no_sms_twice_and_none_missing() {
    let dir = Dir::new("sms-engine-killed");
    let sim = smsc(&["--tps", "200"]);
    let cfg = config(&dir.0, sim.port, "");
    let mut cmd = tidings(&cfg);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = Running::spawn(cmd);
    wait_messages(&sim, 40);
    child.child().kill().unwrap();
    child.child().wait().unwrap();
    let sent_before = at_smsc(&sim).values().sum::<usize>();
    let err = run_to_end(tidings(&cfg));
    assert!(sent_before < sms_actions(&dir.0).values().sum::<usize>(), "the kill came mid-send");
    check_exactly_once(&dir.0, &sim, &err);
}

/// A slow SMSC (each submit answered 1.5 s late) and no receipts asked for, so nothing but the
/// submit's answer settles it: a SIGTERM mid-send waits for the answers to the submits out and
/// records them, so the restart sends none of them again (before, each SIGTERM left a window of
/// submits unanswered, sent again after the restart's in-doubt grace).
#[test]
fn sigterm_mid_send_to_a_slow_smsc_waits_for_the_answers_and_the_restart_sends_nothing_twice() {
    let dir = Dir::new("sms-sigterm");
    let log = new_log();
    let mut sim = Sim::start_on(0, &log, &["--resp-delay-ms", "1500"]);
    let port = sim.port;
    let cfg = config(&dir.0, port, "drain_timeout = \"20s\"\nwindow = 10");
    let text = std::fs::read_to_string(&cfg).unwrap().replace("linger = \"15s\"", "linger = \"1s\"");
    std::fs::write(&cfg, text + "registered_delivery = false\n").unwrap();
    let mut cmd = tidings(&cfg);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = Running::spawn(cmd);
    let submits = |sim: &Sim| sim.lines().iter().filter(|l| l["dir"] == "in" && l["command"] == "submit_sm").count();
    let t0 = Instant::now();
    while submits(&sim) < 15 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the SMSC receives submits");
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::delivery::sigterm(child.child());
    let out = child.output();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "a SIGTERM is a clean stop:\n{err}");
    assert!(err.contains("stopping: waiting up to 20s for the answers to"), "submits were in flight:\n{err}");
    assert!(err.contains(", 0 submits unanswered"), "{err}");
    let sent_before = at_smsc(&sim).values().sum::<usize>();
    // The same SMSC, quick now.
    sim.kill();
    let sim = Sim::start_on(port, &log, &[]);
    let err = run_to_end(tidings(&cfg));
    let want = sms_actions(&dir.0);
    assert!(sent_before < want.values().sum::<usize>(), "stopped mid-send");
    let got = at_smsc(&sim);
    let twice: Vec<_> = got.iter().filter(|(k, n)| want.get(*k).is_some_and(|w| *n > w)).take(3).collect();
    assert!(twice.is_empty(), "no SMS reaches the SMSC more often than it was decided: e.g. {twice:?}\n{err}");
    assert_eq!(got, want, "each SMS action reaches the SMSC exactly once\n{err}");
}
