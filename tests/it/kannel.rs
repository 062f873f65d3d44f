//! SMS through Kannel (Debian's `kannel`: `bearerbox` and `smsbox`, started here by PID and
//! stopped on drop) to the SMPP simulator: tidings calls `sendsms` with a `dlr-url` pointing at
//! its own endpoint, Kannel submits over SMPP, and the simulator's receipts come back through
//! Kannel's delivery-report callback as outcome events.

use crate::delivery::{Dir, files, lines, port as free_port, run_to_end, tidings};
use crate::smpp::Sim;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("`{name}` is missing: Kannel is installed by `bash scripts/test` (apt-get install kannel)");
}

/// A plain HTTP GET over a std socket (Kannel's admin status), body as text.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// bearerbox and smsbox, connected to an SMSC on `smsc_port`; subscribers' messages go to the
/// `get-url` of tidings' delivery endpoint on `tidings` (`host:port`).
pub struct Kannel {
    boxes: Vec<Child>,
    pub sendsms: u16,
    dir: PathBuf,
}

impl Kannel {
    pub fn start(dir: &Path, smsc_port: u16, tidings: &str) -> Kannel {
        let (admin, smsbox_port, sendsms) = (free_port(), free_port(), free_port());
        let conf = dir.join("kannel.conf");
        std::fs::write(
            &conf,
            format!(
                r#"group = core
admin-port = {admin}
admin-password = secret
admin-allow-ip = "127.0.0.1"
smsbox-port = {smsbox_port}
box-allow-ip = "127.0.0.1"
log-file = "{dir}/bearerbox.log"
log-level = 1
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = {smsc_port}
transceiver-mode = true
smsc-username = kannel
smsc-password = secret
system-type = ""
msg-id-type = 0x03
reconnect-delay = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox_port}
sendsms-port = {sendsms}
log-file = "{dir}/smsbox.log"
log-level = 1
http-request-retry = 10
http-queue-delay = 1

group = sendsms-user
username = tidings
password = kannel-secret
max-messages = 10
concatenation = true

group = sms-service
keyword-regex = .*
catch-all = true
max-messages = 0
get-url = "http://{tidings}/v1/mo/kannel?id=%I&from=%p&to=%P&text=%b&coding=%c&charset=%C&ts=%T"
"#,
                dir = dir.display()
            ),
        )
        .unwrap();
        let spawn = |name: &str| {
            Command::new(program(name))
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap())
                .spawn()
                .unwrap()
        };
        let mut k = Kannel { boxes: vec![spawn("bearerbox")], sendsms, dir: dir.to_path_buf() };
        // smsbox once bearerbox listens for boxes and its SMSC link is up.
        k.wait("bearerbox's SMSC link online", || {
            http_get(admin, "/status.txt?password=secret").is_some_and(|s| s.contains("(online"))
        });
        k.boxes.push(spawn("smsbox"));
        k.wait("smsbox's sendsms port", || std::net::TcpStream::connect(("127.0.0.1", sendsms)).is_ok());
        k
    }

    fn wait(&self, what: &str, ready: impl Fn() -> bool) {
        let t0 = Instant::now();
        while !ready() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "Kannel: no {what} after 30 s; bearerbox.log:\n{}",
                std::fs::read_to_string(self.dir.join("bearerbox.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Kannel {
    fn drop(&mut self) {
        // smsbox first, then bearerbox; by PID.
        for c in self.boxes.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An outbox line as an older tidings wrote it, with no sender: it goes from Kannel's configured
/// `from`.
const OLD_LINE: &str = r#"{"id":"old000000000001","ts":"2026-11-24T10:00:00+08:00","msisdn":"13800138000","rule":"r","campaign":"c","channel":"sms","priority":50,"text":"from before senders","trigger":{"kind":"usage","id":"e1","ts":"2026-11-24T10:00:00+08:00"}}"#;

#[test]
fn sms_through_kannel_reach_the_smsc_once_each_and_delivery_reports_come_back_as_outcomes() {
    let dir = Dir::new("kannel");
    std::fs::create_dir_all(dir.0.join("outbox")).unwrap();
    std::fs::write(dir.0.join("outbox/outbox.jsonl"), format!("{OLD_LINE}\n")).unwrap();
    let sim = Sim::start(&["--system-id", "kannel", "--password", "secret"]);
    let listen = format!("127.0.0.1:{}", free_port());
    let kannel = Kannel::start(&dir.0, sim.port, &listen);
    let cfg = dir.0.join("tidings.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[source]
kind = "generator"
[source.generator]
subscribers = 600
events = 12000
days = 2

[policy]
sender = "10658888"

{files}
listen = "{listen}"
sms_tps = 400
linger = "20s"
honour_expiry = false

[delivery.kannel]
url = "http://127.0.0.1:{sendsms}/cgi-bin/sendsms"
username = "tidings"
password = "kannel-secret"
from = "10086"
"#,
            files = files(&dir.0),
            sendsms = kannel.sendsms,
        ),
    )
    .unwrap();
    let err = run_to_end(tidings(&cfg));

    let mut actions: Vec<_> =
        lines(&dir.0.join("out/actions.jsonl")).into_iter().filter(|a| a["channel"] == "sms").collect();
    assert!(actions.len() >= 30, "the run decides SMS ({})", actions.len());
    assert!(actions.iter().all(|a| a["sender"] == "10658888"), "each decided SMS names the [policy] sender");
    actions.push(serde_json::from_str(OLD_LINE).unwrap());
    // An SMS by number, text and the number it comes from: its sender, else Kannel's `from`.
    let key = |to: &Value, text: &Value, from: &str| -> (String, String, String) {
        (to.as_str().unwrap().into(), text.as_str().unwrap().into(), from.into())
    };
    let mut want: BTreeMap<_, usize> = BTreeMap::new();
    for a in &actions {
        *want.entry(key(&a["msisdn"], &a["text"], a["sender"].as_str().unwrap_or("10086"))).or_default() += 1;
    }
    let mut got: BTreeMap<_, usize> = BTreeMap::new();
    let messages: Vec<_> = sim.lines().into_iter().filter(|l| l["event"] == "message").collect();
    for m in &messages {
        *got.entry(key(&m["dest"], &m["text"], m["src"].as_str().unwrap_or_default())).or_default() += 1;
    }
    assert_eq!(
        got, want,
        "every SMS reached the SMSC through Kannel once, from its sender (the older line from `from`), its \
         Chinese text whole:\n{err}"
    );
    assert!(
        messages.iter().any(|m| m["parts"].as_u64() > Some(1)),
        "Kannel split the long ones (UDH) and the SMSC reassembled them"
    );

    let outcomes = lines(&dir.0.join("outcomes.jsonl"));
    let delivered: std::collections::BTreeSet<&str> =
        outcomes.iter().filter(|o| o["status"] == "delivered").filter_map(|o| o["action_id"].as_str()).collect();
    let ids: std::collections::BTreeSet<&str> = actions.iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(delivered, ids, "Kannel's delivery report for every SMS came back as an outcome:\n{err}");
}
