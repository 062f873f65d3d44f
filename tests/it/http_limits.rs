//! The HTTP endpoint defends itself, through the real binary: idle keep-alive connections and
//! request heads dripped a byte at a time are closed, a flood of connections beyond the cap or
//! up to the process's descriptor limit does not stop `/healthz` or IVR answers, and the accept
//! loop does not spin at the limit. No token is needed for any of the floods.

use crate::delivery::{Dir, Running, http_get, port as free_port, tidings};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A live engine reading stdin with the API on `port` and `limits` in its `[api]` section,
/// started with at most `nofile` descriptors when given; returns once `/readyz` answers.
fn engine(dir: &Path, port: u16, limits: &str, nofile: Option<u64>) -> (Running, std::process::ChildStdin) {
    let cfg = dir.join("tidings.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[engine]
shards = 1

[source]
kind = "stdin"

[output]
dir = "{out}"
stdout = false

[api]
listen = "127.0.0.1:{port}"
admin_token = "adm"
ivr_token = "ivr-token"
ivr_log = "{log}"
rate_per_client = 1000000
{limits}
"#,
            out = dir.join("out").display(),
            log = dir.join("ivr_requests.jsonl").display(),
        ),
    )
    .unwrap();
    let mut cmd = tidings(&cfg);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(n) = nofile {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut running = Running::spawn(cmd);
    let stdin = running.child().stdin.take().expect("piped stdin");
    let t0 = Instant::now();
    while http_get(port, "/readyz", None).0 != 200 {
        assert!(t0.elapsed() < Duration::from_secs(20), "the API comes up");
        std::thread::sleep(Duration::from_millis(50));
    }
    (running, stdin)
}

fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).expect("connect")
}

/// The value of a sample of the engine's metrics (summed over label sets starting `prefix`).
fn metric(port: u16, prefix: &str) -> f64 {
    let (status, body) = http_get(port, "/metrics", Some("adm"));
    assert_eq!(status, 200, "{body}");
    body.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Reads until the server closes the connection: true on EOF or a reset, false if it is still
/// open after `guard` (a bound so that a failing test ends; not a speed requirement).
fn closed_by_server(s: &mut TcpStream, guard: Duration) -> bool {
    s.set_read_timeout(Some(guard)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Reads one `/healthz` answer (`ok\n`) off a keep-alive connection.
fn read_health(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\r\n\r\nok\n") {
        let n = s.read(&mut buf).expect("a health answer");
        assert!(n > 0, "the connection stays open for its answer: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
}

/// User + system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn two_thousand_idle_connections_are_held_while_healthz_answers_then_closed_after_the_idle_timeout() {
    let dir = Dir::new("http-idle");
    let port = free_port();
    let (_engine, _stdin) =
        engine(&dir.0, port, "header_read_timeout = \"60s\"\nidle_timeout = \"1s\"\nmax_connections = 4096", None);
    // 2,000 connections that say nothing: held (their header timeout is a minute away) while a
    // well-behaved client is answered.
    let mut conns: Vec<TcpStream> = (0..2000).map(|_| connect(port)).collect();
    assert_eq!(http_get(port, "/healthz", None).0, 200, "health answers while 2,000 connections are held");
    assert!(metric(port, "tidings_http_connections ") >= 2000.0, "the 2,000 are held");
    // Each asks once and keeps its connection alive: now idle, each is closed by the server
    // after the idle timeout.
    for c in &mut conns {
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: tidings\r\n\r\n").unwrap();
    }
    for c in &mut conns {
        read_health(c);
    }
    let still_open =
        conns.iter_mut().map(|c| closed_by_server(c, Duration::from_secs(20))).filter(|closed| !closed).count();
    assert_eq!(still_open, 0, "every idle keep-alive connection is closed by the server");
    assert!(metric(port, r#"tidings_http_connections_closed_total{reason="idle_timeout"}"#) >= 2000.0);
}

#[test]
fn request_heads_dripped_a_byte_at_a_time_are_closed_at_the_header_timeout() {
    let dir = Dir::new("http-drip");
    let port = free_port();
    let (_engine, _stdin) = engine(&dir.0, port, "header_read_timeout = \"1s\"\nidle_timeout = \"60s\"", None);
    let head = b"GET /healthz HTTP/1.1\r\nHost: tidings\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut conns: Vec<(TcpStream, usize, bool)> = (0..50)
        .map(|_| {
            let c = connect(port);
            c.set_nonblocking(true).unwrap();
            (c, 0, false)
        })
        .collect();
    // One byte every 200 ms on each: the whole head would take 17 s.
    while conns.iter().any(|(_, sent, closed)| !closed && *sent < head.len()) {
        for (c, sent, closed) in conns.iter_mut().filter(|(_, sent, closed)| !closed && *sent < head.len()) {
            let mut buf = [0u8; 256];
            match c.read(&mut buf) {
                Ok(0) => *closed = true,
                Ok(_) => panic!("an answer to a head never completed: {}", String::from_utf8_lossy(&buf)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => match c.write(&head[*sent..*sent + 1]) {
                    Ok(_) => *sent += 1,
                    Err(_) => *closed = true,
                },
                Err(_) => *closed = true,
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let finished = conns.iter().filter(|(_, sent, closed)| !closed && *sent == head.len()).count();
    assert_eq!(finished, 0, "no dripping connection lives to send its whole head");
    assert!(metric(port, r#"tidings_http_connections_closed_total{reason="header_timeout"}"#) >= 50.0);
    assert_eq!(http_get(port, "/healthz", None).0, 200);
}

#[test]
fn a_flood_beyond_the_connection_cap_closes_the_oldest_idle_and_health_and_ivr_still_answer() {
    let dir = Dir::new("http-cap");
    let port = free_port();
    let (_engine, _stdin) =
        engine(&dir.0, port, "header_read_timeout = \"60s\"\nidle_timeout = \"60s\"\nmax_connections = 64", None);
    let flood: Vec<TcpStream> = (0..1000).map(|_| connect(port)).collect();
    assert_eq!(http_get(port, "/healthz", None).0, 200, "health answers beyond the cap");
    let (status, body) = http_get(port, "/v1/ivr/13800000001?session=s1", Some("ivr-token"));
    assert_eq!(status, 200, "the IVR is answered beyond the cap: {body}");
    assert!(body.contains("\"menu\""), "{body}");
    assert!(metric(port, "tidings_http_connections ") <= 64.0, "the cap holds");
    assert!(metric(port, r#"tidings_http_connections_closed_total{reason="evicted"}"#) >= 900.0);
    // The oldest of the flood were the ones closed.
    let mut first = flood.into_iter().next().unwrap();
    assert!(closed_by_server(&mut first, Duration::from_secs(20)), "the oldest idle connection was closed");
}

#[test]
fn at_the_descriptor_limit_accept_backs_off_without_spinning_and_healthz_still_answers() {
    let dir = Dir::new("http-emfile");
    let port = free_port();
    let limit = 256;
    let (mut engine, _stdin) =
        engine(&dir.0, port, "header_read_timeout = \"60s\"\nidle_timeout = \"60s\"", Some(limit));
    let pid = engine.child().id();
    // A flood that keeps coming: a new connection every 2 ms, the newest 1,500 held, for as
    // long as the test runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooding = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut held = std::collections::VecDeque::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                    held.push_back(c);
                }
                if held.len() > 1500 {
                    held.pop_front();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    // Until the process has used up its descriptors.
    let t0 = Instant::now();
    while std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count() < limit as usize - 2 {
        assert!(t0.elapsed() < Duration::from_secs(30), "the flood reaches the descriptor limit");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(pid) - before;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    // A spinning accept loop burns a whole core (2 s in 2 s); backing off costs a fraction.
    assert!(spent < hz * 3 / 2, "the process is not spinning at the descriptor limit: {spent} ticks in 2 s");
    assert_eq!(http_get(port, "/healthz", None).0, 200, "health answers at the descriptor limit");
    assert!(metric(port, r#"tidings_http_accept_errors_total{kind="emfile"}"#) >= 1.0, "EMFILE was met and counted");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flooding.join().unwrap();
}
