//! Exactly once across kills, for each operator gateway (issue 18): a written outbox of a few
//! hundred SMS — some subscribers get two or three in a row, some texts are 200 Chinese characters
//! (three parts), some 150 ASCII characters (two parts in CMPP's 140 octets, one in SMPP's 160
//! septets), some half Chinese and half ASCII (two parts in GBK, three in UCS-2), some go to the
//! numbers the simulator fails — delivered by the real binary (`tidings deliver`) to the gateway
//! simulator (`tests/gateways/sim.py`), which answers every submit late (`--resp-delay-ms`), so a
//! kill always finds submits the gateway has taken and not answered: SMS in doubt.
//!
//! - The gateway SIGKILLed mid-stream and restarted on the same port and store: it delivers the
//!   reports it still owes, and those settle the SMS its death left in doubt.
//! - tidings SIGKILLed mid-send and restarted on the same outbox and ledger: the same.
//!
//! Either way every SMS reaches the simulator exactly once, whole, from the number it names (a
//! third of the outbox carries a sender, as its rule's; the rest, like lines an older tidings
//! wrote, none: those go from the configured source), and has one outcome, delivered or failed as
//! the simulator's number rules say. A gateway is one row of [`gateways!`]: the
//! simulator's protocol and the `[delivery.*]` section the binary gets.

use crate::delivery::{Dir, Running, lines, port};
use crate::gateways::Sim;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tidings::contact::{Action, Channel, TriggerJson};

/// One gateway under test.
pub struct Gateway {
    /// `sim.py --protocol`.
    protocol: &'static str,
    /// The `[delivery.*]` section; `{port}` is the simulator's port, `{listen}` one of tidings'
    /// own (where SGIP's SMG connects to deliver).
    section: &'static str,
    /// More simulator arguments, with the same placeholders.
    sim_args: &'static [&'static str],
    /// The source the section configures: what an SMS without a sender goes out from.
    source: &'static str,
}

/// Each gateway's two tests: `gateway_kill::<name>::...`.
macro_rules! gateways {
    ($($name:ident => $gateway:expr,)*) => {$(
        mod $name {
            use super::*;

            #[test]
            fn the_gateway_killed_mid_stream_and_restarted_gets_every_sms_once_and_every_report_back() {
                gateway_killed(&$gateway);
            }

            #[test]
            fn tidings_sigkilled_mid_send_and_restarted_sends_every_sms_once_and_every_report_back() {
                tidings_killed(&$gateway);
            }

            #[test]
            fn flow_control_through_the_binary_every_sms_accepted_in_the_end_none_twice() {
                flow_controlled(&$gateway);
            }

            #[test]
            fn a_bad_secret_through_the_binary_sends_nothing_and_every_sms_fails_saying_why() {
                bad_secret(&$gateway);
            }
        }
    )*};
}

gateways! {
    cmpp2 => Gateway { protocol: "cmpp2", section: CMPP2, sim_args: &[], source: "10690001" },
    cmpp3 => Gateway { protocol: "cmpp3", section: CMPP3_GBK, sim_args: &[], source: "10690001" },
    smgp => Gateway { protocol: "smgp", section: SMGP, sim_args: &["--account", "90123456"], source: "10620001" },
    sgip => Gateway {
        protocol: "sgip",
        section: SGIP,
        // An SMG window of 2: two reports left unanswered stop the rest (a real SMG's is often 16).
        sim_args: &["--account", "tidings", "--sp", "127.0.0.1:{listen}", "--sp-login", "smg", "--sp-password", "smgpw", "--sp-window", "2"],
        source: "10655001",
    },
}

const CMPP2: &str = r#"
[delivery.cmpp]
version = "2.0"
host = "127.0.0.1"
port = {port}
account = "901234"
secret = "s3cret"
service_id = "TIDINGS"
src_id = "10690001"
reconnect_min = "100ms"
reconnect_max = "500ms"
response_timeout = "5s"
"#;

/// CMPP 3.0 with Chinese text in GBK, where a long message takes fewer parts than in UCS-2.
const CMPP3_GBK: &str = r#"
[delivery.cmpp]
version = "3.0"
host = "127.0.0.1"
port = {port}
account = "901234"
secret = "s3cret"
service_id = "TIDINGS"
src_id = "10690001"
coding = "gbk"
reconnect_min = "100ms"
reconnect_max = "500ms"
response_timeout = "5s"
"#;

/// SMGP 3.0 (an 8-character ClientID: the simulator's `--account` is overridden in its row).
const SMGP: &str = r#"
[delivery.smgp]
host = "127.0.0.1"
port = {port}
account = "90123456"
secret = "s3cret"
service_id = "TIDINGS"
src_term_id = "10620001"
reconnect_min = "100ms"
reconnect_max = "500ms"
response_timeout = "5s"
"#;

/// SGIP 1.2: tidings binds to the SMG at `{port}` and listens at `{listen}` for the SMG's own
/// connection, which brings the reports.
const SGIP: &str = r#"
[delivery.sgip]
host = "127.0.0.1"
port = {port}
login_name = "tidings"
login_password = "s3cret"
listen = "127.0.0.1:{listen}"
smg_login = "smg"
smg_password = "smgpw"
node_id = 3010099999
sp_number = "10655001"
reconnect_min = "100ms"
reconnect_max = "500ms"
response_timeout = "5s"
"#;

/// The login every simulator checks, and the pace: each submit answered 200 ms late, each report
/// due 400 ms after the submit (after its answer, as real gateways do).
const SIM: [&str; 8] =
    ["--account", "901234", "--secret", "s3cret", "--resp-delay-ms", "200", "--report-delay-ms", "400"];

/// How many whole messages the simulator has when a kill comes.
const KILL_AT: usize = 80;

/// A test's directory, simulator and config.
struct Setup {
    dir: Dir,
    sim: Sim,
    config: PathBuf,
    /// (number, text) -> the SMS, for every SMS in the outbox.
    sms: BTreeMap<(String, String), Sms>,
}

/// An SMS of the outbox: its action id and the number it must arrive from.
struct Sms {
    id: String,
    from: &'static str,
}

/// The sender a third of the outbox names.
const SENDER: &str = "10658888";

fn setup(gateway: &Gateway, name: &str) -> Setup {
    setup_with(gateway, name, &[], "")
}

/// [`setup`] with more simulator arguments and more `[delivery]` lines (the last of a key wins).
fn setup_with(gateway: &Gateway, name: &str, more_sim_args: &[&str], more_delivery: &str) -> Setup {
    let dir = Dir::new(&format!("gwkill-{name}-{}", gateway.protocol));
    let listen = port().to_string();
    let fill = |s: &str, sim_port: &str| s.replace("{listen}", &listen).replace("{port}", sim_port);
    let args: Vec<String> = SIM.iter().chain(gateway.sim_args).chain(more_sim_args).map(|a| fill(a, "")).collect();
    let sim = Sim::start(gateway.protocol, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let text = format!(
        r#"
[delivery]
outbox = "{outbox}"
outcomes = "{outcomes}"
listen = "127.0.0.1:0"
sms_tps = 100000
window = 16
retry_min = "50ms"
retry_max = "500ms"
in_doubt_grace = "{grace}"
linger = "20s"
drain_timeout = "1s"
honour_expiry = false
{more_delivery}
{section}"#,
        outbox = dir.0.join("outbox").display(),
        outcomes = dir.0.join("outcomes.jsonl").display(),
        section = fill(gateway.section, &sim.port.to_string()),
        // How long an SMS in doubt waits for its report before it is sent again (tidings'
        // rule). The restarted simulator must come up, (for SGIP) connect back and deliver what
        // it owes within it: 10 s was not always enough on a loaded two-core machine, and an SMS
        // sent again then is a duplicate the test rightly counts.
        grace = "20s",
    );
    let config = dir.0.join("tidings.toml");
    std::fs::write(&config, text).expect("write the config");
    let sms = write_outbox(&dir.0.join("outbox"), gateway.source);
    Setup { dir, sim, config, sms }
}

/// The outbox: 300 SMS to 230 subscribers. Every text is its own (it carries its number), so a
/// message at the simulator names its action. Every third names [`SENDER`]; the others name none
/// and go from `configured`.
fn write_outbox(dir: &Path, configured: &'static str) -> BTreeMap<(String, String), Sms> {
    let chinese: Vec<char> =
        "尊敬的客户您好您本月的流量套餐即将用完回复一办理加油包回复二查询余额感谢您的支持".chars().collect();
    let text = |i: usize| -> String {
        let tag = format!("{i:03}");
        match i % 5 {
            // 200 Chinese characters with the tag: three parts in UCS-2 and in GBK.
            0 => tag.chars().chain(chinese.iter().copied().cycle().take(197)).collect(),
            // 150 ASCII characters: two parts in CMPP's 140 octets.
            1 => format!("{tag} Your data plan is almost used up. Reply 1 for an add-on pack, 2 for your balance. ")
                .chars()
                .cycle()
                .take(150)
                .collect(),
            // 70 Chinese and 70 ASCII: two parts in GBK, three in UCS-2.
            2 => chinese.iter().copied().cycle().take(70).chain(format!("{tag}{}", "x".repeat(67)).chars()).collect(),
            // One part.
            _ => format!("{tag} 尊敬的客户，您本月的流量已用完80%，回复1办理加油包。"),
        }
    };
    let mut actions = Vec::new();
    let mut subscriber = 0;
    while actions.len() < 300 {
        subscriber += 1;
        // Every eleventh subscriber's number is one the simulator fails (UNDELIV, EXPIRED).
        let msisdn = match subscriber % 11 {
            0 => format!("1390000{subscriber:04}"),
            5 => format!("1390001{subscriber:04}"),
            _ => format!("138{subscriber:08}"),
        };
        // Every seventh subscriber gets three SMS in a row, every fourth two.
        let n = if subscriber % 7 == 0 {
            3
        } else if subscriber % 4 == 0 {
            2
        } else {
            1
        };
        for _ in 0..n {
            let i = actions.len();
            let sender = (i % 3 == 0).then(|| SENDER.to_owned());
            actions.push(Action { sender, ..action(&format!("k{i:04}"), &msisdn, &text(i)) });
        }
    }
    std::fs::create_dir_all(dir).expect("the outbox directory");
    let body: String = actions.iter().map(|a| serde_json::to_string(a).expect("an action") + "\n").collect();
    std::fs::write(dir.join("outbox.jsonl"), body).expect("write the outbox");
    let from = |a: &Action| if a.sender.is_some() { SENDER } else { configured };
    actions
        .into_iter()
        .map(|a| (from(&a), a))
        .map(|(from, a)| ((a.msisdn, a.text.unwrap_or_default()), Sms { id: a.id, from }))
        .collect()
}

fn action(id: &str, msisdn: &str, text: &str) -> Action {
    Action {
        id: id.into(),
        ts: "2026-12-03T08:30:00+08:00".into(),
        msisdn: msisdn.into(),
        rule: "kill".into(),
        campaign: "c".into(),
        channel: Channel::Sms,
        priority: 50,
        text: Some(text.into()),
        script: None,
        queue: None,
        sender: None,
        about: None,
        offer: None,
        trigger: TriggerJson { kind: "usage".into(), id: "e1".into(), ts: "2026-12-03T08:30:00+08:00".into() },
        expires: None,
    }
}

/// `tidings deliver --config <config>`: sends what the outbox holds and exits when it is drained
/// and the reports are in.
fn deliver(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tidings"));
    c.current_dir(env!("CARGO_MANIFEST_DIR")).arg("deliver").arg("--config").arg(config);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn messages(sim: &Sim) -> Vec<Value> {
    sim.lines().into_iter().filter(|l| l["event"] == "message").collect()
}

/// Waits (up to a minute) until the simulator has `n` whole messages.
fn wait_messages(sim: &Sim, n: usize) {
    let t0 = Instant::now();
    while messages(sim).len() < n {
        assert!(t0.elapsed() < Duration::from_secs(60), "the gateway receives messages");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Submits the simulator has taken and not answered yet.
fn unanswered(sim: &Sim) -> usize {
    let ls = sim.lines();
    let count = |dir: &str, cmd: &str| ls.iter().filter(|l| l["dir"] == dir && l["cmd"] == cmd).count();
    count("in", "submit").saturating_sub(count("out", "submit_resp"))
}

/// "in doubt settled N" from the run's closing line.
fn settled(err: &str) -> u64 {
    err.split("in doubt settled ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or(0)
}

fn gateway_killed(gateway: &Gateway) {
    let Setup { dir, mut sim, config, sms } = setup(gateway, "gw");
    let tidings = Running::spawn(deliver(&config));
    wait_messages(&sim, KILL_AT);
    // SIGKILL the gateway: what it took is in its store with the report it owes; the submits it
    // had not answered get no answer.
    sim.kill();
    let in_flight = unanswered(&sim);
    std::thread::sleep(Duration::from_millis(300));
    sim.restart_after_sigkill();
    let out = tidings.output();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tidings failed:\n{err}");
    assert!(in_flight > 0, "the kill found submits taken and unanswered");
    assert!(err.contains("in doubt ("), "the kill left SMS in doubt:\n{err}");
    check(&dir.0, &sim, &sms, &err);
    assert!(settled(&err) > 0, "reports the restarted gateway owed settled SMS in doubt:\n{err}");
}

fn tidings_killed(gateway: &Gateway) {
    let Setup { dir, sim, config, sms } = setup(gateway, "tidings");
    let mut first = Running::spawn(deliver(&config));
    wait_messages(&sim, KILL_AT);
    // SIGKILL: no chance to record an answer, sync or say goodbye.
    first.child().kill().expect("SIGKILL tidings");
    first.child().wait().expect("reap tidings");
    let in_flight = unanswered(&sim);
    let before = messages(&sim).len();
    let out = deliver(&config).output().expect("run tidings again");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tidings failed after the restart:\n{err}");
    assert!(in_flight > 0 && before < sms.len(), "killed mid-send: {in_flight} submits unanswered, {before} sent");
    check(&dir.0, &sim, &sms, &err);
    assert!(settled(&err) > 0, "reports settled SMS the kill left in doubt:\n{err}");
}

/// The gateway allows 60 submits a second and answers the rest with its flow-control result
/// (CMPP 8, SMGP 1, SGIP 11): every SMS goes in the end, none twice, every report comes back.
fn flow_controlled(gateway: &Gateway) {
    let Setup { dir, sim, config, sms } = setup_with(gateway, "flow", &["--tps", "60"], "");
    let out = deliver(&config).output().expect("run tidings");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tidings failed:\n{err}");
    let throttled = sim
        .lines()
        .iter()
        .filter(|l| l["dir"] == "out" && l["cmd"] == "submit_resp")
        .filter(|l| [8, 1, 11].iter().any(|&code| l["result"] == code || l["status"] == code))
        .count();
    assert!(throttled > 0, "the gateway's flow control answered some submits");
    check(&dir.0, &sim, &sms, &err);
}

/// A wrong secret: the gateway refuses the login, nothing is sent, and each SMS, given up after
/// its attempts, is a `failed` outcome whose detail says the login was refused.
fn bad_secret(gateway: &Gateway) {
    let mut g = Gateway { ..*gateway };
    let section = gateway
        .section
        .replace("secret = \"s3cret\"", "secret = \"wrong\"")
        .replace("login_password = \"s3cret\"", "login_password = \"wrong\"");
    g.section = Box::leak(section.into_boxed_str());
    let Setup { dir, sim, config, sms } = setup_with(&g, "secret", &[], "max_attempts = 2");
    let out = deliver(&config).output().expect("run tidings");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tidings failed:\n{err}");
    assert!(messages(&sim).is_empty(), "nothing reached the gateway");
    let outcomes = lines(&dir.0.join("outcomes.jsonl"));
    assert_eq!(outcomes.len(), sms.len(), "an outcome for every SMS\n{err}");
    for o in &outcomes {
        assert_eq!(o["status"], "failed");
        let detail = o["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("login refused"), "the detail says why: {detail}");
    }
}

/// Every SMS at the simulator exactly once, whole and from its number, and one outcome for each:
/// failed for the numbers the simulator fails, delivered for the rest.
fn check(dir: &Path, sim: &Sim, sms: &BTreeMap<(String, String), Sms>, err: &str) {
    let mut got: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut wrong_source = Vec::new();
    for m in messages(sim) {
        // SGIP puts the country code before every number (`country_code`).
        let dest = m["dest"].as_str().unwrap_or_default();
        let dest = dest.strip_prefix("86").filter(|d| d.len() == 11).unwrap_or(dest);
        let key = (dest.to_owned(), m["text"].as_str().unwrap_or_default().to_owned());
        if let Some(s) = sms.get(&key).filter(|s| m["src"] != s.from) {
            wrong_source.push(format!("{} from {} (want {})", s.id, m["src"], s.from));
        }
        *got.entry(key).or_default() += 1;
    }
    assert!(wrong_source.is_empty(), "every SMS from its sender, else the configured source: {wrong_source:?}");
    assert!(sms.values().any(|s| s.from == SENDER) && sms.values().any(|s| s.from != SENDER), "both kinds went");
    let twice: Vec<&String> =
        got.iter().filter(|(_, n)| **n > 1).filter_map(|(k, _)| sms.get(k)).map(|s| &s.id).collect();
    let missing: Vec<&String> = sms.iter().filter(|(k, _)| !got.contains_key(*k)).map(|(_, s)| &s.id).collect();
    let strange: Vec<&(String, String)> = got.keys().filter(|k| !sms.contains_key(*k)).collect();
    assert!(
        twice.is_empty() && missing.is_empty() && strange.is_empty(),
        "every SMS at the gateway exactly once, whole: twice {twice:?}, missing {missing:?}, not sent {strange:?}\n{err}"
    );
    assert!(messages(sim).iter().any(|m| m["parts"].as_u64() == Some(3)), "long messages went in parts");
    // One outcome per SMS. An outcome line may be written twice with the same id when a kill
    // falls between it and the ledger's record of it (the report comes again): the same event.
    let mut outcomes: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for o in lines(&dir.join("outcomes.jsonl")) {
        let id = o["action_id"].as_str().unwrap_or_default().to_owned();
        let status = o["status"].as_str().unwrap_or_default().to_owned();
        outcomes.entry(id).or_default().insert(o["id"].as_str().unwrap_or_default().to_owned(), status);
    }
    for ((msisdn, _), Sms { id, .. }) in sms {
        let want = if msisdn.starts_with("1390000") || msisdn.starts_with("1390001") { "failed" } else { "delivered" };
        let Some(o) = outcomes.get(id) else { panic!("{id} to {msisdn} has no outcome\n{err}") };
        let statuses: Vec<&String> = o.values().collect();
        assert_eq!(statuses, [want], "{id} to {msisdn}: one outcome, {want}\n{err}");
    }
    assert_eq!(outcomes.len(), sms.len(), "outcomes only for the SMS sent");
}
