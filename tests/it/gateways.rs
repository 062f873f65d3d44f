//! The CMPP/SMGP/SGIP gateway simulator (`tests/gateways/sim.py`): checked against independent
//! implementations — PyPI's `pycmpp` (CMPP 2.0) and `cmppy` (CMPP 3.0) as clients, the SMGP 3.0
//! and SGIP 1.2 byte layouts of the protocol documents (`tests/gateways/check_sim.py`, which
//! installs the two clients into `tests/gateways/.pylib` when they are missing) — and [`Sim`], a
//! running simulator for the gateway tests (`cmpp.rs`).

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gateways")
}

#[test]
fn gateway_simulator_passes_the_independent_client_and_byte_layout_checks() {
    let out = Command::new("python3")
        .arg(dir().join("check_sim.py"))
        .output()
        .expect("python3 is needed for the gateway tests");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tests/gateways/check_sim.py failed:\n{stderr}");
    assert!(stderr.contains("\nOK"), "the checks did not report OK:\n{stderr}");
}

/// A running simulator for one protocol; killed on drop, its log removed unless the test failed.
pub struct Sim {
    child: Child,
    pub port: u16,
    pub control_port: u16,
    pub log: PathBuf,
    args: Vec<String>,
}

impl Sim {
    /// `protocol` is cmpp2, cmpp3, smgp or sgip; `args` go to sim.py as they are.
    pub fn start(protocol: &str, args: &[&str]) -> Sim {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("tidings-gw-{}-{n}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let mut all = vec!["--protocol".to_owned(), protocol.to_owned(), "--log".to_owned()];
        all.push(log.display().to_string());
        all.extend(args.iter().map(|a| a.to_string()));
        let (child, port, control_port) = Sim::spawn(&all, 0);
        Sim { child, port, control_port, log, args: all }
    }

    fn spawn(args: &[String], port: u16) -> (Child, u16, u16) {
        let mut child = Command::new("python3")
            .arg(dir().join("sim.py"))
            .args(args)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the gateway tests");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).expect("the simulator's first line");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["listening", p, "control", c] => (child, p.parse().expect("port"), c.parse().expect("control port")),
            _ => panic!("the simulator did not start: {line:?}"),
        }
    }

    /// SIGKILL, then the same simulator on the same port and log: a gateway restarted.
    pub fn restart_after_sigkill(&mut self) {
        self.kill();
        let (child, _, control_port) = Sim::spawn(&self.args, self.port);
        self.child = child;
        self.control_port = control_port;
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Sends one control command and returns the answer.
    pub fn control(&self, cmd: Value) -> Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.control_port)).expect("the control port");
        writeln!(s, "{cmd}").expect("send a control command");
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).expect("the control answer");
        serde_json::from_str(&line).expect("a JSON answer")
    }

    /// Waits (up to 30 s) until `pred` holds for the log's lines.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&[Value]) -> bool) {
        let t0 = Instant::now();
        while !pred(&self.lines()) {
            assert!(t0.elapsed() < Duration::from_secs(30), "the simulator never logged {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
