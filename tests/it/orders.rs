//! Orders through the real binary: a subscriber's reply accepts an offer, a rule on it decides an
//! order, and delivery POSTs it to a test order endpoint (an HTTP server in the test that records
//! every POST by its Idempotency-Key, places one order per key and answers a repeated key with
//! 409 and the result it gave). The endpoint's answer comes back as an `outcome` event, into a
//! live engine too; a `kill -9` with orders in flight loses none and places none twice.

use crate::delivery::{Dir, Running, at, files, lines, port, run_to_end, send, tidings};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidings::http::{self, Request, Response};

/// What the order endpoint saw and did.
#[derive(Default)]
pub(crate) struct Desk {
    /// Every POST, in arrival order: (Idempotency-Key, body).
    pub(crate) posts: Vec<(String, Value)>,
    /// Orders placed, by key: one per key, whatever the repeats.
    pub(crate) orders: BTreeMap<String, Value>,
    /// The answer given for each order placed (a repeat gets it again, with 409).
    answers: BTreeMap<String, Value>,
    /// Hold each answer back this long (a slow BOSS: orders are in flight when tidings dies).
    answer_after: Duration,
}

/// The answer for an order: offer `closed_offer` is refused by the BOSS, `nonexistent` is not an
/// offer at all (a 422), any other is accepted.
fn decide(order: &Value) -> (u16, Value) {
    match order["offer"].as_str() {
        Some("closed_offer") => (200, json!({"result": "rejected", "reason": "offer closed to prepaid subscribers"})),
        Some("nonexistent") => (422, json!("unknown offer nonexistent")),
        _ => (200, json!({"result": "accepted", "order_id": format!("B-{}", order["id"].as_str().unwrap_or(""))})),
    }
}

struct Endpoint(Arc<Mutex<Desk>>);

impl http::Handler for Endpoint {
    fn handle(&self, req: Request) -> http::Reply {
        let desk = self.0.clone();
        Box::pin(async move {
            let (resp, wait) = take(&desk, &req);
            tokio::time::sleep(wait).await;
            resp
        })
    }
}

/// Records one POST and answers it (held back by the desk's `answer_after`).
fn take(desk: &Mutex<Desk>, req: &Request) -> (Response, Duration) {
    let mut d = desk.lock().unwrap();
    let wait = d.answer_after;
    if req.header("authorization") != Some("Bearer bo-secret") {
        return (Response::error(401, "bad token"), wait);
    }
    let key = req.header("idempotency-key").unwrap_or("").to_owned();
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return (Response::error(400, "bad json"), wait);
    };
    d.posts.push((key.clone(), body.clone()));
    if let Some(known) = d.answers.get(&key) {
        return (Response::json(409, known), wait);
    }
    let (status, answer) = decide(&body);
    d.orders.insert(key.clone(), body);
    if status != 200 {
        return (Response::text(status, answer.as_str().unwrap_or("")), wait);
    }
    d.answers.insert(key, answer.clone());
    (Response::json(200, &answer), wait)
}

/// Starts the order endpoint on any port in its own runtime: its address and its record.
fn start_desk(answer_after: Duration) -> (String, Arc<Mutex<Desk>>, tokio::runtime::Runtime) {
    start_desk_on("127.0.0.1:0", answer_after)
}

/// [`start_desk`] on `addr` (an order interface that comes up at an address tidings already
/// has in its config).
pub(crate) fn start_desk_on(addr: &str, answer_after: Duration) -> (String, Arc<Mutex<Desk>>, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (listener, bound) = rt.block_on(http::bind(addr)).unwrap();
    let desk = Arc::new(Mutex::new(Desk { answer_after, ..Desk::default() }));
    rt.spawn(http::serve(listener, Arc::new(Endpoint(desk.clone())), http::Limits::default(), std::future::pending()));
    (bound.to_string(), desk, rt)
}

/// The test's rule pack: a reply `KT<code>` orders that offer (`KTCLOSED` one the BOSS refuses,
/// `KTNONE` one it does not know); an accepted order (an `outcome` event) is confirmed by SMS.
const RULES: &str = r#"
- rule: accept_12593
  desc: A subscriber takes the 12593 IP long-distance service by replying KT12593
  on: [reply]
  condition: event.text == "KT12593"
  action: { channel: order, offer: "12593" }
  campaign: offers
- rule: accept_closed
  on: [reply]
  condition: event.text == "KTCLOSED"
  action: { channel: order, offer: closed_offer }
  campaign: offers
- rule: accept_none
  on: [reply]
  condition: event.text == "KTNONE"
  action: { channel: order, offer: nonexistent }
  campaign: offers
- rule: order_confirmed
  on: [outcome]
  condition: event.contact_channel == order and event.status == accepted
  action: { channel: sms, template: "您已成功开通" }
  campaign: offers
  policy: { transactional: true }
"#;

/// A test directory with the rule pack, subscribers `13800000000`..`+n` (active), and a config
/// delivering orders to `desk`; `source` is the `[source]` section.
fn setup(dir: &Path, desk: &str, source: &str, n: usize) -> PathBuf {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("rules/orders.yaml"), RULES).unwrap();
    let subs: String = (0..n)
        .map(|i| {
            format!("{{\"msisdn\":\"{}\",\"brand\":\"gotone\",\"tier\":\"high\",\"status\":\"active\"}}\n", msisdn(i))
        })
        .collect();
    std::fs::write(dir.join("data/subscribers.jsonl"), subs).unwrap();
    let text = format!(
        r#"
[engine]
batch = 1
shards = 1

{source}

[rules]
paths = ["{rules}"]

[data]
dir = "{data}"

[policy]
quiet_hours = ""

{files}
listen = "127.0.0.1:{listen}"
retry_min = "50ms"
retry_max = "400ms"
linger = "2s"
honour_expiry = false
window = 8

[delivery.order]
url = "http://{desk}/v1/orders"
token = "bo-secret"
timeout = "5s"
"#,
        rules = dir.join("rules").display(),
        data = dir.join("data").display(),
        files = files(dir),
        listen = port(),
    );
    let p = dir.join("tidings.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn msisdn(i: usize) -> String {
    format!("138{:08}", i)
}

/// A subscriber's reply, at `ts`.
fn reply(i: usize, ts: &str, text: &str) -> String {
    format!(
        r#"{{"kind":"reply","id":"r{i}-{text}","ts":"{ts}","msisdn":"{}","text":"{text}","to":"10086","gateway":"smpp"}}"#,
        msisdn(i)
    )
}

/// The outcome events of orders, by action id.
fn order_outcomes(dir: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for o in lines(&dir.join("outcomes.jsonl")).into_iter().filter(|o| o["channel"] == "order") {
        by.entry(o["action_id"].as_str().unwrap().to_owned()).or_default().push(o);
    }
    by
}

/// The order actions the engine decided, by id.
fn order_actions(dir: &Path) -> BTreeMap<String, Value> {
    lines(&dir.join("out/actions.jsonl"))
        .into_iter()
        .filter(|a| a["channel"] == "order")
        .map(|a| (a["id"].as_str().unwrap().to_owned(), a))
        .collect()
}

/// (a) A reply `KT12593` in a live engine: the endpoint gets one POST with the order's fields
/// and the action id as Idempotency-Key; `accepted` comes back as an outcome in outcomes.jsonl
/// and into the engine, whose confirmation rule answers it.
#[test]
fn an_order_rule_fires_one_post_reaches_the_order_endpoint_and_accepted_comes_back_as_an_outcome() {
    let dir = Dir::new("order-accepted");
    let (addr, desk, _rt) = start_desk(Duration::ZERO);
    let cfg = setup(&dir.0, &addr, "[source]\nkind = \"stdin\"", 2);
    let mut cmd = tidings(&cfg);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut engine = Running::spawn(cmd);
    let mut stdin = engine.child().stdin.take().expect("piped stdin");
    let ts = at(-1);
    send(&mut stdin, &[reply(0, &ts, "KT12593")]);
    let t0 = Instant::now();
    while order_outcomes(&dir.0).is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(30), "the order's outcome comes back");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Time moves on for the engine; then the stream ends.
    send(&mut stdin, &[reply(1, &at(0), "hello")]);
    drop(stdin);
    let out = engine.output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");

    let actions = order_actions(&dir.0);
    assert_eq!(actions.len(), 1, "one order: {actions:?}");
    let (id, action) = actions.iter().next().unwrap();
    assert_eq!((action["offer"].as_str(), action.get("text")), (Some("12593"), None), "{action}");
    let d = desk.lock().unwrap();
    assert_eq!(d.posts.len(), 1, "one POST: {:?}", d.posts);
    let (key, body) = &d.posts[0];
    assert_eq!(key, id, "the action id is the Idempotency-Key");
    assert_eq!(
        body,
        &json!({
            "id": id,
            "msisdn": msisdn(0),
            "offer": "12593",
            "rule": "accept_12593",
            "campaign": "offers",
            "ts": action["ts"],
            "trigger": action["trigger"],
        })
    );
    assert_eq!(
        (action["trigger"]["kind"].as_str(), action["trigger"]["id"].as_str()),
        (Some("reply"), Some("r0-KT12593"))
    );
    let outcomes = order_outcomes(&dir.0);
    let o = &outcomes[id];
    assert_eq!(o.len(), 1, "one outcome: {o:?}");
    assert_eq!((o[0]["status"].as_str(), o[0]["msisdn"].as_str()), (Some("accepted"), Some(msisdn(0).as_str())));
    assert_eq!((o[0]["rule"].as_str(), o[0]["campaign"].as_str()), (Some("accept_12593"), Some("offers")));
    let decoder = tidings::event::Decoder::default();
    assert!(decoder.decode(o[0].to_string().as_bytes(), "outcomes", 1).unwrap().is_ok(), "it decodes: {}", o[0]);
    // The outcome went into the engine: the confirmation was decided on it.
    let confirmed: Vec<Value> =
        lines(&dir.0.join("out/actions.jsonl")).into_iter().filter(|a| a["rule"] == "order_confirmed").collect();
    assert_eq!(confirmed.len(), 1, "{confirmed:?}\n{err}");
    assert_eq!(confirmed[0]["trigger"]["kind"], "outcome");
    assert_eq!(confirmed[0]["msisdn"].as_str(), Some(msisdn(0).as_str()));
    assert!(!err.contains(&msisdn(0)), "no full number in the log:\n{err}");
}

/// (b) The order interface refuses: its reason (in the answer's JSON, or the HTTP reason of a
/// 4xx) is the outcome's detail, and the order is not offered again.
#[test]
fn a_rejected_order_brings_its_reason_back_as_the_outcome_detail() {
    let dir = Dir::new("order-rejected");
    let (addr, desk, _rt) = start_desk(Duration::ZERO);
    let events = dir.0.join("events.jsonl");
    let ts = "2026-11-24T10:00:00+08:00";
    std::fs::write(&events, format!("{}\n{}\n", reply(0, ts, "KTCLOSED"), reply(1, ts, "KTNONE"))).unwrap();
    let source = format!("[source]\nkind = \"files\"\nfiles = [\"{}\"]", events.display());
    let cfg = setup(&dir.0, &addr, &source, 2);
    let err = run_to_end(tidings(&cfg));
    let actions = order_actions(&dir.0);
    assert_eq!(actions.len(), 2, "{err}");
    let outcomes = order_outcomes(&dir.0);
    let got: BTreeSet<(String, String, String)> = outcomes
        .values()
        .map(|o| {
            assert_eq!(o.len(), 1, "one outcome each: {o:?}");
            let s = |k: &str| o[0][k].as_str().unwrap_or_default().to_owned();
            (s("msisdn"), s("status"), s("detail"))
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = [
        (msisdn(0), "rejected", "offer closed to prepaid subscribers"),
        (msisdn(1), "rejected", "422 Unprocessable Entity: unknown offer nonexistent"),
    ]
    .into_iter()
    .map(|(m, s, d)| (m, s.to_owned(), d.to_owned()))
    .collect();
    assert_eq!(got, want, "{err}");
    assert_eq!(desk.lock().unwrap().posts.len(), 2, "a refusal is final: not offered again");
    assert!(
        lines(&dir.0.join("out/actions.jsonl")).iter().all(|a| a["rule"] != "order_confirmed"),
        "nothing to confirm"
    );
}

/// (c) `kill -9` while orders are in flight at a slow order interface, then a restart: every
/// order reaches the endpoint as exactly one order, every answer is one outcome.
#[test]
fn killed_with_orders_in_flight_and_restarted_every_order_is_placed_once_and_every_outcome_recorded() {
    let dir = Dir::new("order-kill");
    let (addr, desk, _rt) = start_desk(Duration::from_millis(150));
    let n = 120;
    let events = dir.0.join("events.jsonl");
    let text: String = (0..n)
        .map(|i| {
            let ts = format!("2026-11-24T10:{:02}:{:02}+08:00", i / 60, i % 60);
            let code = if i % 10 == 3 { "KTCLOSED" } else { "KT12593" };
            reply(i, &ts, code) + "\n"
        })
        .collect();
    std::fs::write(&events, text).unwrap();
    let source = format!("[source]\nkind = \"files\"\nfiles = [\"{}\"]", events.display());
    let cfg = setup(&dir.0, &addr, &source, n);
    let mut cmd = tidings(&cfg);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut engine = Running::spawn(cmd);
    let t0 = Instant::now();
    while desk.lock().unwrap().orders.len() < 20 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the first orders arrive");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SIGKILL with answers held back at the endpoint: the window is in flight.
    engine.child().kill().unwrap();
    engine.child().wait().unwrap();
    let before = desk.lock().unwrap().orders.len();
    assert!(before < n, "killed mid-stream: {before} orders had gone");
    desk.lock().unwrap().answer_after = Duration::ZERO;
    let err = run_to_end(tidings(&cfg));

    let actions = order_actions(&dir.0);
    assert_eq!(actions.len(), n, "one order decided per reply:\n{err}");
    let d = desk.lock().unwrap();
    let placed: BTreeSet<&String> = d.orders.keys().collect();
    assert_eq!(placed, actions.keys().collect::<BTreeSet<_>>(), "every order at the endpoint, and nothing else");
    for (key, body) in &d.orders {
        assert_eq!(body["id"].as_str(), Some(key.as_str()));
        assert_eq!(body["msisdn"], actions[key]["msisdn"]);
    }
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, _) in &d.posts {
        *per_key.entry(k.as_str()).or_default() += 1;
    }
    let repeated = per_key.values().filter(|c| **c > 1).count();
    assert!(
        (1..=8).contains(&repeated),
        "the window in flight at the kill, and only it, is offered again ({repeated}):\n{err}"
    );
    assert!(d.posts.len() > d.orders.len(), "repeats were answered 409 with the known result");
    let outcomes = order_outcomes(&dir.0);
    assert_eq!(outcomes.keys().collect::<BTreeSet<_>>(), actions.keys().collect(), "every outcome recorded");
    for (id, os) in &outcomes {
        assert_eq!(os.len(), 1, "one outcome for {id}: {os:?}");
        let want = if actions[id]["offer"] == "closed_offer" { "rejected" } else { "accepted" };
        assert_eq!(os[0]["status"].as_str(), Some(want), "{id}");
    }
}
