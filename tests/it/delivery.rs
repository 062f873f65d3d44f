//! Real delivery through the real binary: call tasks to a call-centre task API (an HTTP server
//! in the test that records tasks, deduplicates on the idempotency key and posts results back),
//! retries while it is down, the outbox and ledger on disk, and a `kill -9` mid-send.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidings::http;
use tidings::http::{Request, Response};

/// What the call centre saw.
#[derive(Default)]
pub struct Centre {
    /// Every POST, in arrival order: (idempotency key, body).
    pub posts: Vec<(String, Value)>,
    /// Tasks created, by key (a repeated key returns the task it already has).
    pub tasks: BTreeMap<String, Value>,
    /// Answer 503 to this many requests first.
    pub refuse_first: usize,
    /// Report this result for every task instead of [`result_for`]'s.
    pub always: Option<&'static str>,
    /// Hold every answer back this long (a slow task API; the POST is recorded when it arrives).
    pub answer_after: Duration,
}

/// The centre's handler, its answers held back by [`Centre::answer_after`].
struct Slow<H>(H, Arc<Mutex<Centre>>);

impl<H: Fn(Request) -> Response + Send + Sync + 'static> http::Handler for Slow<H> {
    fn handle(&self, req: Request) -> http::Reply {
        let resp = (self.0)(req);
        let wait = self.1.lock().unwrap().answer_after;
        Box::pin(async move {
            tokio::time::sleep(wait).await;
            resp
        })
    }
}

/// The result the centre reports for a task: answered, no answer or busy, by the key.
fn result_for(key: &str) -> &'static str {
    match key.bytes().map(u32::from).sum::<u32>() % 3 {
        0 => "answered",
        1 => "no_answer",
        _ => "busy",
    }
}

/// Starts a call-centre task API on `addr` (port 0 = any) in its own runtime thread; returns its
/// address and its record.
pub fn start_centre(addr: &str, refuse_first: usize) -> (String, Arc<Mutex<Centre>>, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (listener, bound) = rt.block_on(http::bind(addr)).unwrap();
    let centre = Arc::new(Mutex::new(Centre { refuse_first, ..Centre::default() }));
    let c = centre.clone();
    let handler = move |req: Request| -> Response {
        if req.header("authorization") != Some("Bearer cc-secret") {
            return Response::error(401, "bad token");
        }
        let key = req.header("idempotency-key").unwrap_or("").to_owned();
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return Response::error(400, "bad json");
        };
        let mut c = c.lock().unwrap();
        c.posts.push((key.clone(), body.clone()));
        if c.refuse_first > 0 {
            c.refuse_first -= 1;
            return Response::error(503, "busy, try later");
        }
        if c.tasks.contains_key(&key) {
            return Response::json(200, &serde_json::json!({"task_id": format!("T-{key}"), "duplicate": true}));
        }
        c.tasks.insert(key.clone(), body.clone());
        let callback = body["callback_url"].as_str().unwrap_or_default().to_owned();
        let outcome = c.always.unwrap_or_else(|| result_for(&key));
        let result = serde_json::json!({"id": key, "result": outcome, "task_id": format!("T-{key}")});
        tokio::spawn(async move {
            for _ in 0..20 {
                let r = http::client::request(
                    hyper::Method::POST,
                    &callback,
                    &[],
                    Some(("application/json", bytes::Bytes::from(result.to_string()))),
                    Duration::from_secs(5),
                )
                .await;
                if matches!(r, Ok(ref r) if r.status == 200) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Response::json(201, &serde_json::json!({"task_id": format!("T-{key}")}))
    };
    rt.spawn(http::serve(
        listener,
        Arc::new(Slow(handler, centre.clone())),
        http::Limits::default(),
        std::future::pending(),
    ));
    (bound.to_string(), centre, rt)
}

pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("tidings-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // A failed test keeps what it wrote, for whoever reads the failure.
        if std::thread::panicking() {
            eprintln!("kept for the failure: {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `[output]` section and the start of `[delivery]` (outbox and outcomes) for a test
/// directory: actions in `out/`, the outbox in `outbox/`, outcome events in `outcomes.jsonl`.
pub fn files(dir: &Path) -> String {
    format!(
        "[output]\ndir = \"{}\"\nstdout = false\n\n[delivery]\noutbox = \"{}\"\noutcomes = \"{}\"",
        dir.join("out").display(),
        dir.join("outbox").display(),
        dir.join("outcomes.jsonl").display()
    )
}

/// A config: the generator (2,000 subscribers, 3 days), the shipped rules, delivery of call
/// tasks to `centre`.
fn config(dir: &Path, centre: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"
[source]
kind = "generator"
[source.generator]
subscribers = 2000
events = 60000
days = 3

{files}
listen = "{listen}"
calls_per_minute = 600000
retry_min = "50ms"
retry_max = "400ms"
linger = "10s"
honour_expiry = false
window = 8
{extra}

[delivery.call_centre]
url = "http://{centre}/v1/tasks"
token = "cc-secret"
timeout = "2s"
"#,
        files = files(dir),
        // A fixed address for the run's lifetime and its restarts: tasks carry it as their
        // callback URL.
        listen = listen_addr(dir),
    );
    let p = dir.join("tidings.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// An SMS action to `msisdn` saying `text`, as the outbox would hand it to a gateway.
pub fn sms_action(id: &str, msisdn: &str, text: &str) -> tidings::contact::Action {
    tidings::contact::Action {
        id: id.into(),
        ts: "2026-12-03T08:30:00+08:00".into(),
        msisdn: msisdn.into(),
        rule: "r".into(),
        campaign: "c".into(),
        channel: tidings::contact::Channel::Sms,
        priority: 50,
        text: Some(text.into()),
        script: None,
        queue: None,
        sender: None,
        about: None,
        offer: None,
        trigger: tidings::contact::TriggerJson {
            kind: "usage".into(),
            id: "e1".into(),
            ts: "2026-12-03T08:30:00+08:00".into(),
        },
        expires: None,
    }
}

/// `tidings run --config <config> --quiet` from the repository root.
pub fn tidings(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tidings"));
    c.current_dir(env!("CARGO_MANIFEST_DIR")).arg("run").arg("--config").arg(config).arg("--quiet");
    c
}

/// A child process killed by PID if the test ends first: a failing assertion must not leave an
/// engine running.
pub struct Running(Option<Child>);

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        Running(Some(cmd.spawn().expect("start tidings")))
    }
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }
    pub fn output(mut self) -> std::process::Output {
        self.0.take().expect("running").wait_with_output().expect("wait for tidings")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `tidings run --config <config>` reading a live stream on stdin, once its API on `port` is
/// ready: the engine and its stdin.
pub fn start_live(config: &Path, port: u16) -> (Running, std::process::ChildStdin) {
    let mut cmd = tidings(config);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut engine = Running::spawn(cmd);
    let stdin = engine.child().stdin.take().expect("piped stdin");
    let t0 = Instant::now();
    while http_get(port, "/readyz", None).0 != 200 {
        assert!(t0.elapsed() < Duration::from_secs(20), "the API comes up");
        std::thread::sleep(Duration::from_millis(50));
    }
    (engine, stdin)
}

/// Lines into a live engine's stdin.
pub fn send(stdin: &mut std::process::ChildStdin, lines: &[String]) {
    use std::io::Write as _;
    for l in lines {
        writeln!(stdin, "{l}").expect("write to the engine");
    }
    stdin.flush().expect("flush to the engine");
}

/// Now plus `offset_min` minutes, as an event time in +08:00.
pub fn at(offset_min: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(offset_min))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
        .to_rfc3339()
}

/// A JSON Lines file's objects (none when it does not exist yet).
pub fn lines(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all.iter()
        .enumerate()
        .filter_map(|(i, l)| match serde_json::from_str(l) {
            Ok(v) => Some(v),
            // A file still being written may end in a partial line; nothing else may be bad.
            Err(_) if i + 1 == all.len() && !text.ends_with('\n') => None,
            Err(e) => panic!("{}: {e}: {l}", p.display()),
        })
        .collect()
}

fn call_actions(dir: &Path) -> BTreeSet<String> {
    lines(&dir.join("out/actions.jsonl"))
        .into_iter()
        .filter(|a| a["channel"] == "call")
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs to the end; the run must succeed. Returns its stderr.
pub fn run_to_end(mut cmd: Command) -> String {
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tidings failed:\n{err}");
    err
}

/// Every call action reached the centre as exactly one task, with the right fields, and every
/// result came back as one outcome event.
fn check_delivered(dir: &Path, centre: &Centre) {
    let actions = call_actions(dir);
    assert!(actions.len() >= 20, "the run decides call tasks (got {})", actions.len());
    let tasks: BTreeSet<String> = centre.tasks.keys().cloned().collect();
    assert_eq!(tasks, actions, "every call action is one task at the call centre, and nothing else is");
    for (key, task) in &centre.tasks {
        assert_eq!(task["id"], key.as_str());
        assert_eq!(task["idempotency_key"], key.as_str());
        assert!(task["callee"].as_str().is_some_and(|c| c.len() == 11));
        let earliest = chrono::DateTime::parse_from_rfc3339(task["earliest"].as_str().unwrap()).unwrap();
        let latest = chrono::DateTime::parse_from_rfc3339(task["latest"].as_str().unwrap()).unwrap();
        assert!(earliest < latest, "{task}");
        let h = |t: chrono::DateTime<chrono::FixedOffset>| chrono::Timelike::hour(&t);
        assert!((9..21).contains(&h(earliest)), "calls start inside calling hours: {task}");
    }
    let outcomes = lines(&dir.join("outcomes.jsonl"));
    let mut by_action: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for o in &outcomes {
        assert_eq!(o["kind"], "outcome");
        by_action.entry(o["action_id"].as_str().unwrap().to_owned()).or_default().push(o);
    }
    assert_eq!(by_action.keys().cloned().collect::<BTreeSet<_>>(), actions, "one outcome per call task");
    for (id, os) in &by_action {
        assert_eq!(os.len(), 1, "one outcome for {id}");
        assert_eq!(os[0]["status"], result_for(id));
        assert_eq!(os[0]["channel"], "call");
    }
    // Outcome events are events: they decode as the contract says.
    let decoder = tidings::event::Decoder::default();
    for o in &outcomes {
        let ev = decoder.decode(o.to_string().as_bytes(), "outcomes", 1).unwrap();
        assert!(ev.is_ok(), "outcome decodes: {o}");
    }
}

#[test]
fn call_tasks_reach_the_call_centre_once_and_results_come_back_as_outcomes() {
    let dir = Dir::new("calls");
    // The centre refuses the first few requests (503): those tasks are retried, not lost.
    let (addr, centre, _rt) = start_centre("127.0.0.1:0", 5);
    let err = run_to_end(tidings(&config(&dir.0, &addr, "")));
    let c = centre.lock().unwrap();
    check_delivered(&dir.0, &c);
    assert!(c.posts.len() > c.tasks.len(), "refused requests were offered again");
    assert!(err.contains("retries 5"), "five 503s, five retries:\n{err}");

    // A second run over the same input decides the same actions: none is offered again.
    drop(c);
    let posts = centre.lock().unwrap().posts.len();
    let err = run_to_end(tidings(&config(&dir.0, &addr, "")));
    assert_eq!(centre.lock().unwrap().posts.len(), posts, "a replay offers nothing twice:\n{err}");
}

/// The report endpoint's address for a test directory: chosen once, kept across restarts.
fn listen_addr(dir: &Path) -> String {
    let f = dir.join("listen");
    if let Ok(a) = std::fs::read_to_string(&f) {
        return a;
    }
    let a = free_port();
    std::fs::write(&f, &a).unwrap();
    a
}

/// An address nothing listens on yet.
fn free_port() -> String {
    format!("127.0.0.1:{}", port())
}

/// A port nothing listens on yet.
pub fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET path` on 127.0.0.1:`port` with an optional bearer token: (status, body); status 0 when
/// nothing listens.
pub fn http_get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let headers: Vec<(&str, String)> = token.map(|t| ("authorization", format!("Bearer {t}"))).into_iter().collect();
    let url = format!("http://127.0.0.1:{port}{path}");
    match rt.block_on(http::client::request(hyper::Method::GET, &url, &headers, None, Duration::from_secs(5))) {
        Ok(r) => (r.status, String::from_utf8_lossy(&r.body).into_owned()),
        Err(e) => (0, e.to_string()),
    }
}

#[test]
fn a_call_centre_that_is_down_gets_everything_once_when_it_comes_back_and_memory_stays_bounded() {
    let dir = Dir::new("calls-down");
    let addr = free_port();
    let mut cmd = tidings(&config(&dir.0, &addr, "backlog = 16"));
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = Running::spawn(cmd);
    // While the centre is down the engine finishes deciding; the dispatcher keeps at most
    // `backlog` actions in hand, so the ledger holds at most that many `sending` lines.
    std::thread::sleep(Duration::from_secs(4));
    // (Besides them, the `mark` a start writes: no round has written an event line yet.)
    let ledger = lines(&dir.0.join("outbox/ledger.jsonl"));
    let sending = ledger.iter().filter(|e| e["st"] == "sending").count();
    assert!(sending > 0, "the dispatcher tried");
    assert!(sending <= 16, "the dispatcher holds at most the backlog while the gateway is down: {sending}");
    assert!(ledger.iter().all(|e| e["st"] == "sending" || e["st"] == "mark" && e["outcomes"] == 0), "{ledger:?}");
    let outbox = lines(&dir.0.join("outbox/outbox.jsonl"));
    assert!(outbox.len() > 100, "the backlog waits on disk ({} actions)", outbox.len());
    let (_, centre, _rt) = start_centre(&addr, 0);
    let status = wait(child.child(), Duration::from_secs(120));
    assert!(status.success());
    check_delivered(&dir.0, &centre.lock().unwrap());
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("tidings did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn killed_with_sigkill_mid_send_and_restarted_nothing_is_lost_and_nothing_is_created_twice() {
    let dir = Dir::new("calls-kill");
    let (addr, centre, _rt) = start_centre("127.0.0.1:0", 0);
    // A slow gateway (20 tasks a second) so the kill lands mid-send.
    let cfg = config(&dir.0, &addr, "").to_string_lossy().into_owned();
    let text = std::fs::read_to_string(&cfg).unwrap().replace("calls_per_minute = 600000", "calls_per_minute = 1200");
    std::fs::write(&cfg, text).unwrap();
    let mut cmd = tidings(Path::new(&cfg));
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = Running::spawn(cmd);
    let t0 = Instant::now();
    while centre.lock().unwrap().tasks.len() < 10 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the first tasks arrive");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: no chance to flush or say goodbye.
    child.child().kill().unwrap();
    child.child().wait().unwrap();
    let before = centre.lock().unwrap().tasks.len();
    // Restart: the engine decides the same actions again (the outbox refuses them by id); the
    // dispatcher resumes from the ledger.
    let err = run_to_end(tidings(Path::new(&cfg)));
    let c = centre.lock().unwrap();
    assert!(before < call_actions(&dir.0).len(), "killed mid-send: {before} tasks had gone");
    check_delivered(&dir.0, &c);
    // Offered twice at most for the few in flight at the kill; created once each.
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, _) in &c.posts {
        *per_key.entry(k.as_str()).or_default() += 1;
    }
    let repeated = per_key.values().filter(|n| **n > 1).count();
    assert!(repeated <= 8, "only the window in flight at the kill is offered again ({repeated}):\n{err}");
}

#[test]
fn outcomes_flow_back_into_a_live_engine_and_an_unanswered_call_back_is_tried_again() {
    use std::io::Write as _;
    let dir = Dir::new("calls-live");
    let (addr, centre, _rt) = start_centre("127.0.0.1:0", 0);
    centre.lock().unwrap().always = Some("no_answer");
    let text = format!(
        r#"
# Live and slow: each event is its own batch, decided at once on one shard (several shards keep
# two batches in flight, so a quiet stream would hold its last decisions back). The stream
# jumps two days ahead of the host's clock to stand for time passing: the guards against events
# from the future are off.
[engine]
batch = 1
shards = 1
max_ahead = "off"
max_ahead_of_wall = "off"

[source]
kind = "stdin"

[policy]
quiet_hours = ""

{files}
listen = "{listen}"
retry_min = "50ms"
linger = "5s"

[delivery.call_centre]
url = "http://{addr}/v1/tasks"
token = "cc-secret"
"#,
        files = files(&dir.0),
        listen = listen_addr(&dir.0),
    );
    let cfg = dir.0.join("tidings.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut cmd = tidings(&cfg);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = Running::spawn(cmd);
    let mut stdin = child.child().stdin.take().unwrap();
    let at = |offset_min: i64| {
        let t = chrono::Utc::now() + chrono::Duration::minutes(offset_min);
        t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).to_rfc3339()
    };
    let m = "13912345678";
    // A known, active subscriber; a complaint closed six hours ago; the stream moves on 4 h later:
    // the 4-hour call-back is decided and goes to the call centre, which reports no answer.
    for line in [
        format!(
            r#"{{"kind":"profile","ts":"{}","msisdn":"{m}","set":{{"status":"active","tier":"valuable"}}}}"#,
            at(-361)
        ),
        format!(
            r#"{{"kind":"crm","id":"c1","ts":"{}","msisdn":"{m}","event":"complaint_closed","attrs":{{"complaint_id":"K9"}}}}"#,
            at(-360)
        ),
        format!(
            r#"{{"kind":"usage","ts":"{}","msisdn":"{m}","service":"sms","direction":"mo","scope":"local","count":1}}"#,
            at(-110)
        ),
    ] {
        writeln!(stdin, "{line}").unwrap();
    }
    stdin.flush().unwrap();
    let t0 = Instant::now();
    while !lines(&dir.0.join("outcomes.jsonl")).iter().any(|o| o["status"] == "no_answer") {
        assert!(t0.elapsed() < Duration::from_secs(30), "the call-back's result comes back");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The outcome event went into the engine: two days on, the retry rule calls again.
    writeln!(
        stdin,
        r#"{{"kind":"usage","ts":"{}","msisdn":"{m}","service":"sms","direction":"mo","scope":"local","count":1}}"#,
        at(2 * 24 * 60)
    )
    .unwrap();
    drop(stdin);
    let out = child.output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let c = centre.lock().unwrap();
    let rules: Vec<&str> = c.tasks.values().map(|t| t["rule"].as_str().unwrap()).collect();
    assert_eq!(rules.len(), 2, "the call-back and its retry: {rules:?}\n{err}");
    assert!(rules.contains(&"complaint_callback") && rules.contains(&"complaint_callback_retry"), "{rules:?}");
    let retry = lines(&dir.0.join("out/actions.jsonl")).into_iter().find(|a| a["rule"] == "complaint_callback_retry");
    assert_eq!(retry.expect("the retry is an action")["trigger"]["kind"], "outcome", "the outcome event triggered it");
}

/// Each key's POSTs at the centre, for the keys posted more than once.
fn posted_twice(c: &Centre) -> BTreeMap<&str, usize> {
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, _) in &c.posts {
        *per_key.entry(k.as_str()).or_default() += 1;
    }
    per_key.retain(|_, n| *n > 1);
    per_key
}

/// SIGTERM to a running engine, by PID.
pub fn sigterm(child: &Child) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
}

/// A call centre that answers each task a second late: a SIGTERM mid-send waits for the answers
/// to the tasks out and records them, so the restart posts none of them again (before, the stop
/// left the window unanswered and the restart offered it again).
#[test]
fn sigterm_mid_send_to_a_slow_call_centre_waits_for_the_answers_and_the_restart_posts_nothing_twice() {
    let dir = Dir::new("calls-sigterm");
    let (addr, centre, _rt) = start_centre("127.0.0.1:0", 0);
    centre.lock().unwrap().answer_after = Duration::from_secs(1);
    let cfg = config(&dir.0, &addr, "drain_timeout = \"20s\"");
    let mut cmd = tidings(&cfg);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = Running::spawn(cmd);
    let t0 = Instant::now();
    while centre.lock().unwrap().posts.len() < 12 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the first tasks arrive");
        std::thread::sleep(Duration::from_millis(20));
    }
    sigterm(child.child());
    let out = child.output();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "a SIGTERM is a clean stop:\n{err}");
    assert!(err.contains("stopping: waiting up to 20s for the answers to"), "tasks were in flight:\n{err}");
    assert!(err.contains("submits unanswered") && err.contains(", 0 submits unanswered"), "{err}");
    let before = centre.lock().unwrap().posts.len();
    assert!(before < call_actions(&dir.0).len(), "stopped mid-send: {before} tasks had gone");
    centre.lock().unwrap().answer_after = Duration::ZERO;
    let err = run_to_end(tidings(&cfg));
    let c = centre.lock().unwrap();
    check_delivered(&dir.0, &c);
    assert_eq!(posted_twice(&c), BTreeMap::new(), "no task is offered twice:\n{err}");
}
