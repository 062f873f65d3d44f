//! IVR personalisation: while the caller is on the line, the 10086 IVR asks what to play first.
//!
//! A request is an IVR event like any other: `GET /v1/ivr/{msisdn}?session=..&node=..` becomes
//! an `ivr` event (`enter`, or `menu` at `node`) put into the live stream, so the rules with
//! channel `ivr` decide from the caller's current state, and contact policy (caps across SMS,
//! calls and IVR, DND of the `ivr` channel, control groups, arbitration) applies as to any
//! other contact — an offer made here counts. The request goes ahead of the stream's backlog,
//! the engine cuts its batch at it and
//! writes its decisions at once; this module collects them and answers. Every request is also
//! appended to a log file, so a replay with that file decides what the live run decided.
//!
//! Unknown subscribers, callers no rule speaks to and a stalled engine all get the default menu:
//! the IVR must never wait on us.

use crate::contact::{Decision, Outcome};
use crate::http::{Reply, Request, Response};
use crate::util::Msisdn;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// The source name IVR requests carry in the engine's input.
pub const SOURCE: &str = "ivr";

/// One decision made for a request, as the answer reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Answered {
    pub id: String,
    pub rule: String,
    pub campaign: String,
    pub priority: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `sent`, or the suppression reason.
    pub outcome: String,
}

struct Waiting {
    reply: oneshot::Sender<Vec<Answered>>,
    got: Vec<Answered>,
    asked: std::time::Instant,
}

#[derive(Default)]
struct Inner {
    /// Asked and put into the stream, not yet taken by the engine (in stream order).
    asked: VecDeque<String>,
    /// Taken by the engine: answered at the end of the batch that holds them.
    taken: Vec<String>,
    waiting: HashMap<String, Waiting>,
    log: Option<std::io::BufWriter<std::fs::File>>,
}

/// The requests in flight, shared by the HTTP side, the live source and the engine's sink.
pub struct Asks {
    inner: Mutex<Inner>,
    /// The live source's priority lane: a caller is waiting, so a request does not queue behind
    /// the stream's backlog.
    feed: std::sync::mpsc::SyncSender<(&'static str, Vec<u8>)>,
    /// The stream's own feed, to wake the source when it waits (a blank line).
    wake: crate::source::Feed,
    seq: AtomicU64,
}

impl Asks {
    /// `feed` is the live source's priority lane (the engine cuts its batch at each line from
    /// it), `wake` its stream feed; requests are appended to `log`.
    pub fn new(
        feed: std::sync::mpsc::SyncSender<(&'static str, Vec<u8>)>,
        wake: crate::source::Feed,
        log: Option<&std::path::Path>,
    ) -> std::io::Result<Arc<Asks>> {
        let log = match log {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                Some(std::io::BufWriter::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?))
            }
            None => None,
        };
        Ok(Arc::new(Asks { inner: Mutex::new(Inner { log, ..Inner::default() }), feed, wake, seq: AtomicU64::new(0) }))
    }

    /// Puts a request into the stream; the receiver gets the decisions made for it.
    fn ask(
        &self,
        msisdn: Msisdn,
        session: &str,
        node: Option<&str>,
    ) -> Result<oneshot::Receiver<Vec<Answered>>, String> {
        let now = chrono::Utc::now();
        let id = format!("ivr-{:x}-{}", now.timestamp_millis(), self.seq.fetch_add(1, Ordering::Relaxed));
        let mut line = serde_json::json!({
            "kind": "ivr",
            "id": id,
            "ts": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "msisdn": msisdn.full(),
            "session": session,
            "step": if node.is_some() { "menu" } else { "enter" },
            "hotline": "10086",
        });
        if let Some(n) = node {
            line["node"] = serde_json::Value::from(n);
        }
        let line = line.to_string().into_bytes();
        let (tx, rx) = oneshot::channel();
        let mut inner = self.inner.lock().map_err(|_| "ivr: lock poisoned".to_owned())?;
        // Under the lock: the stream order of requests is the order of `asked`.
        self.feed.try_send((SOURCE, line.clone())).map_err(|_| "the engine is not taking events".to_owned())?;
        // Wakes the source if it waits for the stream; a full feed means it is not waiting.
        let _ = self.wake.try_send(Some(("control", Vec::new())));
        if let Some(log) = &mut inner.log {
            let _ = log.write_all(&line).and_then(|_| log.write_all(b"\n")).and_then(|_| log.flush());
        }
        inner.asked.push_back(id.clone());
        inner.waiting.insert(id, Waiting { reply: tx, got: Vec::new(), asked: std::time::Instant::now() });
        Ok(rx)
    }

    /// The live source took the next request from the stream.
    pub fn taken(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            if let Some(id) = inner.asked.pop_front() {
                if let Some(w) = inner.waiting.get(&id) {
                    crate::telemetry::ivr_stage("queued", w.asked.elapsed());
                }
                inner.taken.push(id);
            }
        }
    }

    /// A decision the engine wrote: kept if it answers a request.
    pub fn decision(&self, d: &Decision) {
        // A shadow rule never answers the caller.
        if d.shadow || d.trigger.kind != "ivr" || !d.trigger.id.starts_with("ivr-") {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        if let Some(w) = inner.waiting.get_mut(&*d.trigger.id) {
            w.got.push(Answered {
                id: d.id.clone(),
                rule: d.rule_name.to_string(),
                campaign: d.campaign.to_string(),
                priority: d.priority,
                text: d.text.clone(),
                outcome: match d.outcome {
                    Outcome::Sent => "sent".into(),
                    Outcome::Suppressed(r) => r.as_str().into(),
                    Outcome::Deferred(_) => "deferred".into(),
                },
            });
        }
    }

    /// The end of a batch: every request the engine took has all its decisions.
    pub fn batch_end(&self) {
        let Ok(mut inner) = self.inner.lock() else { return };
        for id in std::mem::take(&mut inner.taken) {
            if let Some(w) = inner.waiting.remove(&id) {
                crate::telemetry::ivr_stage("answered", w.asked.elapsed());
                let _ = w.reply.send(w.got);
            }
        }
    }
}

/// The engine's side: a sink that hands IVR decisions to the waiting requests.
pub struct Replies(pub Arc<Asks>);

impl crate::engine::Sink for Replies {
    fn decision(&mut self, d: &Decision) -> std::io::Result<()> {
        self.0.decision(d);
        Ok(())
    }
    fn batch_end(&mut self) -> std::io::Result<()> {
        self.0.batch_end();
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.batch_end();
        Ok(())
    }
}

/// Session ids and menu nodes: short, and only characters an IVR uses.
fn valid(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.*#".contains(&b))
}

/// With several instances: `Some(partition)` for a caller another instance owns.
pub type Elsewhere = dyn Fn(Msisdn) -> Option<u32> + Send + Sync;

/// `GET /v1/ivr/{msisdn}?session=..&node=..` (the caller is already authenticated).
pub fn handle(
    asks: Arc<Asks>,
    menu: Vec<String>,
    wait: Duration,
    elsewhere: Option<&Elsewhere>,
    req: &Request,
) -> Reply {
    let number = req.path.trim_start_matches("/v1/ivr/");
    let Some(msisdn) = Msisdn::parse(number) else {
        return ready(Response::error(400, "msisdn must be 5 to 15 digits"));
    };
    // Another instance holds this caller's state and contact history: answering here would
    // decide without them. Say so at once (the IVR must not wait), with the partition to route by.
    if let Some(partition) = elsewhere.and_then(|f| f(msisdn)) {
        return ready(Response::json(
            421,
            &serde_json::json!({
                "error": "another instance owns this subscriber: ask the instance that owns its partition",
                "partition": partition,
            }),
        ));
    }
    let session = req.param("session").unwrap_or("");
    if !valid(session, 64) {
        return ready(Response::error(400, "session: 1 to 64 characters of A-Z a-z 0-9 - _ . * #"));
    }
    let node = req.param("node");
    if node.is_some_and(|n| !valid(n, 32)) {
        return ready(Response::error(400, "node: 1 to 32 characters of A-Z a-z 0-9 - _ . * #"));
    }
    let base = serde_json::json!({ "session": session, "node": node });
    let t0 = std::time::Instant::now();
    let asked = asks.ask(msisdn, session, node);
    crate::telemetry::ivr_stage("asking", t0.elapsed());
    Box::pin(async move {
        let got = match asked {
            Ok(rx) => match tokio::time::timeout(wait, rx).await {
                Ok(Ok(got)) => Some(got),
                _ => None,
            },
            Err(_) => None,
        };
        let r = Response::json(200, &answer(base, &menu, got));
        crate::telemetry::ivr_stage("handled", t0.elapsed());
        r
    })
}

/// The answer: the offer (the highest-priority contact sent), its text as the prompt, the menu
/// with the prompt's first node first, and what policy held back.
fn answer(mut base: serde_json::Value, menu: &[String], got: Option<Vec<Answered>>) -> serde_json::Value {
    let degraded = got.is_none();
    let got = got.unwrap_or_default();
    let offer = got.iter().filter(|a| a.outcome == "sent").max_by_key(|a| a.priority);
    let mut menu = menu.to_vec();
    if let Some(first) = offer.and_then(|o| o.text.as_deref()).and_then(|t| t.split('-').next()) {
        if let Some(i) = menu.iter().position(|m| m == first) {
            let m = menu.remove(i);
            menu.insert(0, m);
        }
    }
    base["menu"] = serde_json::json!(menu);
    base["prompt"] = serde_json::json!(offer.and_then(|o| o.text.clone()));
    base["offer"] = serde_json::to_value(offer).unwrap_or_default();
    let held: Vec<serde_json::Value> = got
        .iter()
        .filter(|a| a.outcome != "sent")
        .map(|a| serde_json::json!({"rule": a.rule, "reason": a.outcome}))
        .collect();
    base["suppressed"] = serde_json::json!(held);
    if degraded {
        base["degraded"] = serde_json::json!(true);
    }
    base
}

fn ready(r: Response) -> Reply {
    Box::pin(std::future::ready(r))
}
