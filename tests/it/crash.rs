//! Crash recovery through the real binary: a generated stream of a million events, processed
//! with checkpoints on and actions delivered to a recording gateway (Kannel's `sendsms` for SMS,
//! the call centre's task API for calls), killed with SIGKILL at 20 seeded random points and
//! restarted each time until it finishes. What the gateway received must be exactly the actions
//! of one clean run: none missing, none sent twice. Then the same with the newest checkpoint
//! corrupted (bytes flipped, or cut short) before every restart.
//!
//! The seed is printed; `TIDINGS_CRASH_SEED=<n>` repeats a run.

use crate::delivery::{Dir, Running, lines, port, tidings};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidings::http;
use tidings::http::{Request, Response};

const EVENTS: usize = 1_000_000;
const KILLS: usize = 20;

/// What the gateway took: SMS accepted per action id (each one a message to a phone), and call
/// tasks offered per idempotency key (the call centre creates one task per key).
#[derive(Default)]
struct Received {
    sms: BTreeMap<String, u32>,
    calls: BTreeMap<String, u32>,
}

/// Kannel's `sendsms` and the call centre's task API on one port. Every SMS gets its delivery
/// report (as Kannel would send it), retried until tidings' endpoint answers: a report sent while
/// the engine is down reaches the restarted one, which settles the SMS a kill left in doubt.
fn start_gateway() -> (String, Arc<Mutex<Received>>, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (listener, addr) = rt.block_on(http::bind("127.0.0.1:0")).unwrap();
    let got = Arc::new(Mutex::new(Received::default()));
    let g = got.clone();
    let handler = move |req: Request| -> Response {
        match req.path.as_str() {
            "/cgi-bin/sendsms" => {
                let id = req.header("x-tidings-action-id").unwrap_or("").to_owned();
                *g.lock().unwrap().sms.entry(id).or_default() += 1;
                let dlr = req
                    .param("dlr-url")
                    .unwrap_or("")
                    .replace("%d", "1")
                    .replace("%A", "id%3Asim+stat%3ADELIVRD")
                    .replace("%T", &chrono::Utc::now().timestamp().to_string());
                tokio::spawn(async move {
                    for _ in 0..600 {
                        let r =
                            http::client::request(hyper::Method::GET, &dlr, &[], None, Duration::from_secs(2)).await;
                        if matches!(r, Ok(ref r) if r.status == 200) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
                Response::text(202, "0: Accepted for delivery")
            }
            "/v1/tasks" => {
                if req.header("authorization") != Some("Bearer cc-secret") {
                    return Response::error(401, "bad token");
                }
                let key = req.header("idempotency-key").unwrap_or("").to_owned();
                *g.lock().unwrap().calls.entry(key.clone()).or_default() += 1;
                Response::json(201, &serde_json::json!({ "task_id": format!("T-{key}") }))
            }
            _ => Response::error(404, "no such endpoint"),
        }
    };
    rt.spawn(http::serve(listener, Arc::new(handler), http::Limits::default(), std::future::pending()));
    (addr.to_string(), got, rt)
}

/// splitmix64: a seeded sequence of kill points, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The engine, source and output sections both runs share.
fn common(data: &Path, out: &Path) -> String {
    format!(
        r#"
[engine]
shards = 2

[source]
kind = "files"
files = ["{events}"]

[data]
dir = "{gen}"

[output]
dir = "{out}"
stdout = false
"#,
        events = data.join("events.jsonl").display(),
        gen = data.display(),
        out = out.display()
    )
}

/// Checkpoints every 100,000 events; actions delivered to `gateway`.
fn crash_config(dir: &Path, data: &Path, gateway: &str, listen: u16) -> PathBuf {
    let text = format!(
        r#"{common}
[checkpoint]
dir = "{ckpt}"
every_events = 100000
keep = 3

[delivery]
outbox = "{outbox}"
outcomes = "{outcomes}"
listen = "127.0.0.1:{listen}"
sms_tps = 1000000
calls_per_minute = 60000000
window = 16
retry_min = "50ms"
retry_max = "400ms"
in_doubt_grace = "3s"
linger = "1s"
honour_expiry = false

[delivery.kannel]
url = "http://{gateway}/cgi-bin/sendsms"
username = "tidings"
password = "kannel-secret"

[delivery.call_centre]
url = "http://{gateway}/v1/tasks"
token = "cc-secret"
timeout = "2s"
"#,
        common = common(data, &dir.join("out")),
        ckpt = dir.join("ckpt").display(),
        outbox = dir.join("outbox").display(),
        outcomes = dir.join("outcomes.jsonl").display(),
    );
    let p = dir.join("tidings.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn count_lines(p: &Path) -> usize {
    std::fs::read(p).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
}

/// The newest checkpoint file, if any.
fn newest_checkpoint(dir: &Path) -> Option<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
        .collect();
    v.sort();
    v.pop()
}

/// Damages a checkpoint file: bytes flipped in its middle, or the second half cut off.
fn corrupt(p: &Path, flip: bool) -> String {
    let mut b = std::fs::read(p).unwrap();
    if flip {
        let mid = b.len() / 2;
        for x in &mut b[mid..mid + 16] {
            *x ^= 0x5a;
        }
    } else {
        b.truncate(b.len() / 2);
    }
    std::fs::write(p, &b).unwrap();
    format!("{} {}", if flip { "flipped 16 bytes of" } else { "cut in half" }, p.display())
}

/// Runs the stream to the end through kills at `points` (outbox sizes at which to kill); returns
/// the number of runs it took and their logs.
fn run_with_kills(
    cfg: &Path,
    dir: &Path,
    points: &[(usize, u64)],
    damage: bool,
    rng: &mut Rng,
) -> (usize, Vec<String>) {
    let outbox = dir.join("outbox/outbox.jsonl");
    let mut logs = Vec::new();
    let mut kills = points.iter();
    let mut runs = 0;
    loop {
        runs += 1;
        let log = dir.join(format!("run-{runs}.log"));
        let mut cmd = tidings(cfg);
        cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
        let mut child = Running::spawn(cmd);
        let kill_at = kills.next();
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.child().try_wait().unwrap() {
                break Some(s);
            }
            if let Some((at, jitter)) = kill_at {
                if count_lines(&outbox) >= *at {
                    std::thread::sleep(Duration::from_millis(*jitter));
                    // SIGKILL: no chance to flush, sync or say goodbye.
                    child.child().kill().unwrap();
                    child.child().wait().unwrap();
                    break None;
                }
            }
            assert!(t0.elapsed() < Duration::from_secs(600), "run {runs} did not finish in 10 minutes");
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match status {
            Some(s) => {
                assert!(s.success(), "run {runs} failed:\n{text}");
                logs.push(text);
                return (runs, logs);
            }
            None => {
                let what = if damage {
                    newest_checkpoint(&dir.join("ckpt")).map(|p| corrupt(&p, rng.below(2) == 0))
                } else {
                    None
                };
                eprintln!(
                    "crash: killed run {runs} at outbox size {} (after {:.1} s){}",
                    count_lines(&outbox),
                    t0.elapsed().as_secs_f64(),
                    what.map(|w| format!("; {w}")).unwrap_or_default()
                );
                logs.push(text);
            }
        }
    }
}

/// Ids in `a` not in `b`, at most 20 of them, for a failure message.
fn some(a: &BTreeSet<String>, b: &BTreeSet<String>) -> (usize, Vec<String>) {
    let d: Vec<String> = a.difference(b).cloned().collect();
    (d.len(), d.into_iter().take(20).collect())
}

fn check(clean: &BTreeMap<String, String>, dir: &Path, got: &Received, label: &str) {
    // The outbox: every action of the clean run, each once.
    let outbox = lines(&dir.join("outbox/outbox.jsonl"));
    let mut per_id: BTreeMap<String, u32> = BTreeMap::new();
    for a in &outbox {
        *per_id.entry(a["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let twice: Vec<&String> = per_id.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).take(20).collect();
    assert!(twice.is_empty(), "{label}: ids written to the outbox twice: {twice:?}");
    let expected: BTreeSet<String> = clean.keys().cloned().collect();
    let in_outbox: BTreeSet<String> = per_id.keys().cloned().collect();
    let (missing, m) = some(&expected, &in_outbox);
    let (extra, x) = some(&in_outbox, &expected);
    assert!(
        missing == 0 && extra == 0,
        "{label}: the outbox differs from the clean run: {missing} missing {m:?}, {extra} not in the clean run {x:?}"
    );
    // The gateway: every SMS and call action once.
    let want = |ch: &str| -> BTreeSet<String> {
        clean.iter().filter(|(_, c)| c.as_str() == ch).map(|(id, _)| id.clone()).collect()
    };
    let sms: BTreeSet<String> = got.sms.keys().cloned().collect();
    let calls: BTreeSet<String> = got.calls.keys().cloned().collect();
    let dup: Vec<(&String, &u32)> = got.sms.iter().filter(|(_, n)| **n > 1).take(20).collect();
    let dups = got.sms.values().filter(|n| **n > 1).count();
    for (ch, want, have) in [("sms", want("sms"), &sms), ("call", want("call"), &calls)] {
        let (missing, m) = some(&want, have);
        let (extra, x) = some(have, &want);
        assert!(
            missing == 0 && extra == 0,
            "{label}: {ch}: {missing} missing {m:?}, {extra} not in the clean run {x:?} ({} expected)",
            want.len()
        );
    }
    assert_eq!(dups, 0, "{label}: {dups} SMS sent more than once (id, times): {dup:?}");
    // A call task in flight at a kill is offered again with the same Idempotency-Key (the call
    // centre keeps one task per key): counted, for the record.
    let again = got.calls.values().filter(|n| **n > 1).count();
    eprintln!(
        "crash: {label}: {} SMS and {} call tasks, each once; {again} call task(s) offered again by key",
        sms.len(),
        calls.len()
    );
}

#[test]
fn sigkill_at_twenty_random_points_loses_nothing_and_sends_nothing_twice() {
    let dir = Dir::new("crash");
    let seed = std::env::var("TIDINGS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64);
    eprintln!("crash: seed {seed} (TIDINGS_CRASH_SEED={seed} repeats it)");
    let mut rng = Rng(seed);
    let data = dir.0.join("gen");
    let t0 = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["gen", "--seed", "11", "--subscribers", "20000", "--days", "4", "--events"])
        .arg(EVENTS.to_string())
        .arg("--out")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // One clean run: no checkpoints, no kills.
    let clean_dir = dir.0.join("clean");
    std::fs::create_dir_all(&clean_dir).unwrap();
    let cfg = clean_dir.join("tidings.toml");
    std::fs::write(&cfg, common(&data, &clean_dir.join("out"))).unwrap();
    crate::delivery::run_to_end(tidings(&cfg));
    let clean: BTreeMap<String, String> = lines(&clean_dir.join("out/actions.jsonl"))
        .into_iter()
        .map(|a: Value| (a["id"].as_str().unwrap().to_owned(), a["channel"].as_str().unwrap().to_owned()))
        .collect();
    let n = clean.len();
    assert!(n > 10_000, "the stream decides plenty of actions ({n})");
    eprintln!("crash: clean run: {n} actions ({:.0} s so far)", t0.elapsed().as_secs_f64());

    for (label, damage) in [("kills", false), ("kills with a corrupt checkpoint", true)] {
        let run_dir = dir.0.join(if damage { "damaged" } else { "killed" });
        std::fs::create_dir_all(&run_dir).unwrap();
        let (gateway, got, _rt) = start_gateway();
        let cfg = crash_config(&run_dir, &data, &gateway, port());
        // Kill points: outbox sizes spread over the run (the last one can fall in the delivery
        // tail, after the engine has decided everything), each with a jitter of up to 0.3 s.
        let mut points: Vec<(usize, u64)> =
            (0..KILLS).map(|_| (rng.below(n as u64) as usize, rng.below(300))).collect();
        points.sort_unstable();
        eprintln!("crash: {label}: kill at outbox sizes (+ms) {points:?}");
        let (runs, logs) = run_with_kills(&cfg, &run_dir, &points, damage, &mut rng);
        let all = logs.join("\n");
        let resumed = all.matches("tidings: resuming from checkpoint").count();
        let written = all.matches("tidings: checkpoint ").count();
        eprintln!(
            "crash: {label}: {runs} runs, {resumed} resumed from a checkpoint, {written} checkpoint log lines ({:.0} s so far)",
            t0.elapsed().as_secs_f64()
        );
        assert!(resumed > 0, "{label}: some restart resumed from a checkpoint:\n{all}");
        if damage {
            assert!(all.contains("skipped (set aside as"), "{label}: a corrupt checkpoint was detected:\n{all}");
        }
        check(&clean, &run_dir, &got.lock().unwrap(), label);
        let left: Vec<_> = std::fs::read_dir(run_dir.join("ckpt"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tmp"))
            .collect();
        assert!(left.is_empty(), "{label}: checkpoints a kill cut short are cleared on the next start: {left:?}");
    }
}

/// SIGTERM: the engine finishes the batch in hand, takes a checkpoint there and exits cleanly;
/// the next run resumes from it. What the two runs wrote, one after the other, is byte for byte
/// what one run writes.
#[test]
fn sigterm_takes_a_checkpoint_and_the_next_run_goes_on_from_it() {
    let dir = Dir::new("sigterm");
    let data = dir.0.join("gen");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["gen", "--seed", "5", "--subscribers", "20000", "--days", "3", "--events", "600000", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let clean_cfg = dir.0.join("clean.toml");
    std::fs::write(&clean_cfg, common(&data, &dir.0.join("clean"))).unwrap();
    crate::delivery::run_to_end(tidings(&clean_cfg));
    let clean = std::fs::read_to_string(dir.0.join("clean/decisions.jsonl")).unwrap();

    let cfg = dir.0.join("tidings.toml");
    let ckpt = dir.0.join("ckpt");
    let section = format!("\n[checkpoint]\ndir = \"{}\"\nevery_events = 0\nevery = \"0s\"\n", ckpt.display());
    std::fs::write(&cfg, common(&data, &dir.0.join("out")) + &section).unwrap();
    let mut cmd = tidings(&cfg);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut first = Running::spawn(cmd);
    let decisions = dir.0.join("out/decisions.jsonl");
    let t0 = Instant::now();
    while std::fs::metadata(&decisions).map_or(0, |m| m.len()) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the first run writes decisions");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = first.child().id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = first.output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a SIGTERM is a clean stop:\n{err}");
    assert!(err.contains("terminated: finishing the current batch"), "{err}");
    assert!(err.contains("tidings: checkpoint"), "a checkpoint on the way out:\n{err}");
    let part1 = std::fs::read_to_string(&decisions).unwrap();
    assert!(part1.len() < clean.len(), "stopped before the end ({} of {} bytes)", part1.len(), clean.len());

    let err = crate::delivery::run_to_end(tidings(&cfg));
    assert!(err.contains("tidings: resuming from checkpoint"), "{err}");
    let part2 = std::fs::read_to_string(&decisions).unwrap();
    let both = part1 + &part2;
    if both != clean {
        let (a, b): (Vec<&str>, Vec<&str>) = (both.lines().collect(), clean.lines().collect());
        let i = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        panic!(
            "the two runs' decisions differ from one run's at line {i} ({} lines against {}):\n two runs: {:?}\n one run:  {:?}",
            a.len(),
            b.len(),
            a.get(i),
            b.get(i)
        );
    }
}
