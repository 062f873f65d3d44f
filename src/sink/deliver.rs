//! The dispatcher: takes pending actions from the outbox, offers each to its channel's gateway
//! within the gateway's rate and window, retries what can be retried with back-off, records
//! every step in the ledger, and turns what gateways send back into events: reports into
//! `outcome` events, subscribers' messages into `reply` events ([`super::reply`]).
//!
//! Memory stays bounded whatever the gateways do: the dispatcher holds at most `backlog`
//! actions (queued, in flight or waiting to retry); the rest wait in the outbox file.
//!
//! An action sent without an answer — the connection dropped, the response timed out, or the
//! process died after the ledger's `sending` line — is *in doubt*: the gateway may have it. An
//! SMS in doubt waits `in_doubt_grace` for a report that settles it before it is offered again,
//! and at most one SMS per subscriber is unanswered at a time so that a report naming only the
//! subscriber (CMPP's) can settle it ([`super::doubt`] says how, and where that stops being
//! exactly once). The call centre and the order interface deduplicate on the idempotency key, so
//! in-doubt call tasks and orders are offered again at once. An order's answer is its outcome
//! (`accepted`, `rejected`): it is written at once, in one ledger line that also finishes it.

pub use super::callback::callback_handler;
use super::calls::CallCentre;
pub use super::delivery_config::DeliveryConfig;
use super::doubt::{Attempt, Doubts, Released, Tally, Turns};
use super::gateway::{Inbound, Incoming, OutcomeStatus, Reply, Report, Sent};
use super::orders::OrderDesk;
use super::outbox::{Entry, InDoubt, Ledger, Open, OutboxReader, id_key};
use super::reply::{Verdict, judge};
pub use super::sms::{SmsChoice, SmsGateway};
use crate::contact::{Action, Channel};
use chrono::Offset;
use governor::{Quota, RateLimiter};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

/// Reports kept while they match no accepted action yet, and for how long.
const EARLY_MAX: usize = 100_000;
const EARLY_KEEP: Duration = Duration::from_secs(120);

/// What a run of the dispatcher did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DeliveryStats {
    pub accepted: u64,
    pub rejected: u64,
    pub expired: u64,
    pub retries: u64,
    pub outcomes: u64,
    /// Offers left in doubt (sent, no answer).
    pub in_doubt: u64,
    /// In-doubt actions settled by a report (not sent again).
    pub settled_in_doubt: u64,
    /// Outbox lines that did not parse.
    pub bad_lines: u64,
    /// Actions of a channel with no gateway configured (left in the outbox).
    pub no_gateway: u64,
    /// Reports that matched no action.
    pub unmatched_reports: u64,
    /// Reports of what was already recorded (a redelivery, a later part of a long message):
    /// acknowledged, nothing more.
    pub repeated_reports: u64,
    /// Submits answered while stopping (waited for, recorded: not sent again after a restart).
    pub answered_at_stop: u64,
    /// Submits still unanswered when `drain_timeout` ran out (left in doubt for the next start).
    pub unanswered_at_stop: u64,
    /// Subscribers' replies written as `reply` events.
    pub replies: u64,
    /// Replies delivered again after they were recorded (passed over).
    pub replies_again: u64,
    /// Replies from a sender that is no subscriber number (acknowledged, not written).
    pub unreadable_replies: u64,
}

type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::DefaultClock,
    governor::middleware::NoOpMiddleware,
>;

struct Retrying {
    action: Action,
    attempt: u32,
}

/// What a send task hands back: the action, its attempt, and the gateway's answer (`None`: the
/// dispatcher was stopping before the task reached the gateway, so nothing went out).
type Offered = (Action, u32, Option<Sent>);

/// Why delivery could not start or had to stop. Each names what it was doing and, for files,
/// where.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The `[delivery]` section asks for something that cannot be (two SMS gateways, a bad
    /// gateway setting).
    #[error("{0}")]
    Config(String),
    #[error("{what} {}: {source}", path.display())]
    Open { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("reading the outbox: {0}")]
    Outbox(std::io::Error),
    #[error("writing the ledger: {0}")]
    Ledger(std::io::Error),
    #[error("syncing the ledger: {0}")]
    LedgerSync(std::io::Error),
    #[error("writing outcomes {}: {source}", path.display())]
    Outcomes { path: PathBuf, source: std::io::Error },
    #[error("a send task failed: {0}")]
    Task(tokio::task::JoinError),
}

/// Runs delivery until `closed` is set (the engine's input ended), the outbox is drained, and
/// reports have had `linger` to arrive; or until `stop` is set. On a stop (or a fatal error) it
/// takes nothing new from the outbox and waits up to `drain_timeout` for the answers to the
/// submits already out, recording them, so a restart sends none of them again; what is still
/// unanswered then stays in doubt, as after a crash.
pub struct Dispatcher {
    cfg: DeliveryConfig,
    ledger: Ledger,
    reader: OutboxReader,
    sms: Option<Arc<SmsGateway>>,
    call: Option<Arc<CallCentre>>,
    order: Option<Arc<OrderDesk>>,
    sms_limit: Arc<Limiter>,
    call_limit: Arc<Limiter>,
    outcomes: std::io::BufWriter<std::fs::File>,
    /// The outcomes file's length with every line written so far.
    outcomes_len: u64,
    /// Whether the ledger's last mark holds every line written (else the next sync writes one).
    marked: bool,
    /// Every outcome and reply event line also goes here (a live engine's input), when set.
    live: Option<Box<dyn Fn(String) + Send>>,
    /// Outcome and reply event times are written in this offset (the engine's).
    offset: chrono::FixedOffset,
    /// Reports that matched nothing yet, with when they came.
    early: VecDeque<(Instant, Incoming)>,
    /// Reports and replies handled since the last ledger sync: acknowledged to their gateway
    /// after it.
    unsynced: Vec<Incoming>,
    p: Pending,
    /// Set when stopping: send tasks still waiting for their turn (the rate limit) give up.
    halt: tokio::sync::watch::Sender<bool>,
    pub stats: DeliveryStats,
}

/// The actions the dispatcher holds (at most `backlog`): queued, retrying, waiting, in doubt.
#[derive(Default)]
struct Pending {
    queue: VecDeque<Attempt>,
    retry: BTreeMap<(Instant, u64), Retrying>,
    retry_seq: u64,
    /// Every action held, queued, in flight, waiting or in doubt, by id key.
    holding: HashSet<u64>,
    doubts: Doubts,
    /// SMS waiting for their subscriber's turn.
    turns: Turns,
}

impl Dispatcher {
    /// Builds the gateways the config names. Must run inside a tokio runtime (an SMPP or CMPP
    /// session starts at once); their reports are forwarded to `reports`.
    pub fn new(cfg: DeliveryConfig, reports: mpsc::UnboundedSender<Incoming>) -> Result<Dispatcher, DeliveryError> {
        let public = cfg.public_url.clone().unwrap_or_else(|| format!("http://{}", cfg.listen));
        let DeliveryConfig { kannel, smpp, cmpp, smgp, sgip, .. } = cfg.clone();
        let sms = SmsGateway::start(SmsChoice { kannel, smpp, cmpp, smgp, sgip }, &public, reports)
            .map_err(DeliveryError::Config)?
            .map(Arc::new);
        let call = match cfg.call_centre.clone() {
            Some(c) => Some(Arc::new(CallCentre::new(c, &public).map_err(DeliveryError::Config)?)),
            None => None,
        };
        Self::with_gateways(cfg, sms, call)
    }

    pub fn with_gateways(
        cfg: DeliveryConfig,
        sms: Option<Arc<SmsGateway>>,
        call: Option<Arc<CallCentre>>,
    ) -> Result<Dispatcher, DeliveryError> {
        let io =
            |what: &'static str, p: &Path, e: std::io::Error| DeliveryError::Open { what, path: p.into(), source: e };
        let mut ledger = Ledger::open(&cfg.outbox).map_err(|e| io("opening the ledger in", &cfg.outbox, e))?;
        let reader = OutboxReader::open(&cfg.outbox).map_err(|e| io("opening the outbox in", &cfg.outbox, e))?;
        if let Some(parent) = cfg.outcomes.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
        }
        let (outcomes, outcomes_len) = super::outbox::open_outcomes(&cfg.outcomes, ledger.outcomes_mark)
            .map_err(|e| io("opening", &cfg.outcomes, e))?;
        // The first mark of a ledger an older tidings wrote, or of a new one.
        if ledger.outcomes_mark != Some(outcomes_len) {
            ledger.write(Entry::Mark { outcomes: outcomes_len, at: now_ms() }).map_err(DeliveryError::Ledger)?;
            ledger.sync().map_err(DeliveryError::LedgerSync)?;
        }
        let order = match cfg.order.clone() {
            Some(o) => Some(Arc::new(OrderDesk::new(o).map_err(DeliveryError::Config)?)),
            None => None,
        };
        let per_second = NonZeroU32::new(cfg.sms_tps.max(1)).unwrap_or(NonZeroU32::MIN);
        let per_minute = NonZeroU32::new(cfg.calls_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Ok(Dispatcher {
            sms_limit: Arc::new(RateLimiter::direct(Quota::per_second(per_second))),
            call_limit: Arc::new(RateLimiter::direct(Quota::per_minute(per_minute))),
            cfg,
            ledger,
            reader,
            sms,
            call,
            order,
            outcomes: std::io::BufWriter::new(outcomes),
            outcomes_len,
            marked: true,
            live: None,
            early: VecDeque::new(),
            unsynced: Vec::new(),
            p: Pending::default(),
            halt: tokio::sync::watch::Sender::new(false),
            offset: chrono::FixedOffset::east_opt(8 * 3600).unwrap_or(chrono::Utc.fix()),
            stats: DeliveryStats::default(),
        })
    }

    /// Writes outcome and reply event times in this offset (the engine's `utc_offset`).
    pub fn set_offset(&mut self, offset: chrono::FixedOffset) {
        self.offset = offset;
    }

    /// Also hand every outcome and reply event line to a live engine's input.
    pub fn feed_live(&mut self, feed: impl Fn(String) + Send + 'static) {
        self.live = Some(Box::new(feed));
    }

    fn gateway_for(&self, ch: Channel) -> Option<Gate> {
        match ch {
            Channel::Sms => self.sms.clone().map(|g| Gate::Sms(g, self.sms_limit.clone())),
            Channel::Call => self.call.clone().map(|g| Gate::Call(g, self.call_limit.clone())),
            // IVR contacts are answers to the IVR's own requests, not sent.
            Channel::Ivr => None,
            // Orders are the subscriber's own requests: no contact rate holds them back.
            Channel::Order => self.order.clone().map(Gate::Order),
        }
    }

    pub async fn run(
        mut self,
        mut reports: mpsc::UnboundedReceiver<Incoming>,
        more: Arc<Notify>,
        closed: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
    ) -> Result<DeliveryStats, DeliveryError> {
        let grace_end = Instant::now() + self.cfg.in_doubt_grace;
        for d in std::mem::take(&mut self.ledger.in_doubt) {
            // Its subscriber's turn from the start: an SMS read before its line waits for it.
            self.p.turns.hold(&d.msisdn, id_key(&d.id));
            self.p.doubts.insert(d, None, grace_end);
        }
        let mut inflight: JoinSet<Offered> = JoinSet::new();
        let ran = self.rounds(&mut inflight, &mut reports, &more, &closed, &stop).await;
        // Stopped, or a fatal error: what is out is answered (or left in doubt) before exiting.
        let drained = self.drain(&mut inflight, &mut reports).await;
        ran?;
        drained?;
        // Reports that already arrived.
        while let Ok(inc) = reports.try_recv() {
            self.take(inc)?;
        }
        self.sync()?;
        if let Some(g) = self.sms.as_deref() {
            g.shutdown().await;
        }
        Ok(self.stats)
    }

    /// The rounds of delivery, until the input ended and all is done, or `stop` is set.
    async fn rounds(
        &mut self,
        inflight: &mut JoinSet<Offered>,
        reports: &mut mpsc::UnboundedReceiver<Incoming>,
        more: &Notify,
        closed: &AtomicBool,
        stop: &AtomicBool,
    ) -> Result<(), DeliveryError> {
        let mut eof = false;
        let mut drained_at: Option<Instant> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            eof = self.fill()?.unwrap_or(eof);
            self.release_doubts();
            self.launch(inflight)?;
            // Done?
            let p = &self.p;
            let idle = p.queue.is_empty()
                && p.retry.is_empty()
                && inflight.is_empty()
                && p.doubts.is_empty()
                && p.turns.none_waiting();
            if idle && eof && closed.load(Ordering::Relaxed) {
                let since = *drained_at.get_or_insert_with(Instant::now);
                if self.ledger.open_by_id.is_empty() || since.elapsed() >= self.cfg.linger {
                    break;
                }
            } else {
                drained_at = None;
            }
            let next_retry = self.p.retry.keys().next().map(|k| k.0);
            let wake = next_retry.map_or(Duration::from_millis(100), |t| {
                t.saturating_duration_since(Instant::now()).min(Duration::from_millis(100))
            });
            tokio::select! {
                Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                    let (a, attempt, sent) = done.map_err(DeliveryError::Task)?;
                    self.on_sent(a, attempt, sent)?;
                }
                Some(inc) = reports.recv() => self.take(inc)?,
                _ = more.notified() => {}
                _ = tokio::time::sleep(wake) => {}
            }
            // Take whatever else is ready before the one sync of this round.
            for _ in 0..1024 {
                match inflight.try_join_next() {
                    Some(done) => {
                        let (a, attempt, sent) = done.map_err(DeliveryError::Task)?;
                        self.on_sent(a, attempt, sent)?;
                    }
                    None => break,
                }
            }
            while self.unsynced.len() < 1024 {
                let Ok(inc) = reports.try_recv() else { break };
                self.take(inc)?;
            }
            // Due retries go back to the queue.
            let now = Instant::now();
            while let Some(entry) = self.p.retry.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let r = entry.remove();
                self.p.queue.push_back((r.action, r.attempt));
            }
            crate::telemetry::outbox_held(self.p.holding.len());
            // One sync for the round; then the receipts it covers may be acknowledged.
            self.sync()?;
        }
        Ok(())
    }

    /// Stopping: nothing new goes out (tasks still waiting for the rate limit give up), and the
    /// submits already out get `drain_timeout` to be answered; their answers, and the reports
    /// that come meanwhile, are recorded as usual. Tasks still unanswered then are dropped:
    /// their `sending` lines leave them in doubt for the next start.
    async fn drain(
        &mut self,
        inflight: &mut JoinSet<Offered>,
        reports: &mut mpsc::UnboundedReceiver<Incoming>,
    ) -> Result<(), DeliveryError> {
        self.halt.send_replace(true);
        if inflight.is_empty() {
            return Ok(());
        }
        eprintln!(
            "tidings: delivery: stopping: waiting up to {:?} for the answers to {} submits in flight",
            self.cfg.drain_timeout,
            inflight.len()
        );
        let deadline = tokio::time::Instant::now() + self.cfg.drain_timeout;
        let mut answered = 0;
        while !inflight.is_empty() {
            tokio::select! {
                Some(done) = inflight.join_next() => {
                    let (a, attempt, sent) = done.map_err(DeliveryError::Task)?;
                    answered += u64::from(sent.is_some());
                    self.on_sent(a, attempt, sent)?;
                }
                Some(inc) = reports.recv() => self.take(inc)?,
                _ = tokio::time::sleep_until(deadline) => break,
            }
            self.sync()?;
        }
        let left = inflight.len() as u64;
        inflight.abort_all();
        self.stats.answered_at_stop += answered;
        self.stats.unanswered_at_stop += left;
        self.stats.in_doubt += left;
        eprintln!(
            "tidings: delivery: stopping: {answered} answers recorded, {left} submits unanswered (in doubt at the next start)"
        );
        Ok(())
    }

    /// Makes the round's entries durable — its event lines, then the mark that ends it (see
    /// [`super::outbox`]) — then acknowledges the reports they hold.
    fn sync(&mut self) -> Result<(), DeliveryError> {
        if !self.marked {
            self.outcomes
                .flush()
                .map_err(|e| DeliveryError::Outcomes { path: self.cfg.outcomes.clone(), source: e })?;
            let mark = Entry::Mark { outcomes: self.outcomes_len, at: now_ms() };
            self.ledger.write(mark).map_err(DeliveryError::Ledger)?;
            self.marked = true;
        }
        self.ledger.sync().map_err(DeliveryError::LedgerSync)?;
        self.unsynced.drain(..).for_each(Incoming::done);
        Ok(())
    }

    /// One report from a gateway. A report that names nothing known yet can overtake the
    /// gateway's own answer (a receipt before the submit's response is handled, a call result
    /// posted before the task API's 201 arrives): it is kept, unacknowledged, and tried again
    /// when the next action is accepted — so a crash meanwhile loses nothing, the gateway sends
    /// it again.
    fn take(&mut self, inc: Incoming) -> Result<(), DeliveryError> {
        let report = match &inc.item {
            Inbound::Report(r) => r.clone(),
            Inbound::Reply(r) => {
                self.reply(r)?;
                self.unsynced.push(inc);
                return Ok(());
            }
        };
        if self.report(report)? {
            self.unsynced.push(inc);
        } else if self.early.len() < EARLY_MAX {
            self.early.push_back((Instant::now(), inc));
        } else {
            self.stats.unmatched_reports += 1;
            self.unsynced.push(inc);
        }
        Ok(())
    }

    /// Reads the outbox while there is room. `Some(eof)` when it read.
    fn fill(&mut self) -> Result<Option<bool>, DeliveryError> {
        let mut eof = None;
        let mut attached = false;
        while self.p.holding.len() < self.cfg.backlog {
            let room = (self.cfg.backlog - self.p.holding.len()).min(256);
            let batch = self.reader.next_batch(room).map_err(DeliveryError::Outbox)?;
            if batch.is_empty() {
                eof = Some(true);
                break;
            }
            eof = Some(false);
            for item in batch {
                let a = match item {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("tidings: delivery: skipping a bad outbox line: {e}");
                        self.stats.bad_lines += 1;
                        continue;
                    }
                };
                let key = id_key(&a.id);
                if self.ledger.is_finished(&a.id) || self.p.holding.contains(&key) {
                    continue;
                }
                if self.gateway_for(a.channel).is_none() {
                    self.stats.no_gateway += 1;
                    continue;
                }
                self.p.holding.insert(key);
                let a = match a.channel {
                    Channel::Sms => match self.p.doubts.attach(a, 1) {
                        // In doubt: it waits with its doubt; reports that came before it count now.
                        None => {
                            attached = true;
                            continue;
                        }
                        Some((a, _)) => a,
                    },
                    // A call task or an order in doubt goes again at once: the other side
                    // deduplicates on the key.
                    _ => {
                        if self.p.doubts.remove(key).is_some() {
                            self.answered(&a);
                        }
                        a
                    }
                };
                self.p.queue.push_back((a, 1));
            }
        }
        if attached {
            self.retry_early()?;
        }
        Ok(eof)
    }

    /// In-doubt SMS whose grace ran out go again (no report came: the gateway never had them, or
    /// lost them); one whose outbox line was never read is let go, and its subscriber's turn.
    fn release_doubts(&mut self) {
        for Released { key, msisdn, action } in self.p.doubts.due(Instant::now()) {
            match action {
                // It keeps its subscriber's turn.
                Some(a) => self.p.queue.push_back(a),
                None => {
                    self.p.holding.remove(&key);
                    self.pass_turn(&msisdn, key);
                }
            }
        }
    }

    /// `a` is answered, settled or given up: the next SMS to its subscriber may go.
    fn answered(&mut self, a: &Action) {
        self.pass_turn(&a.msisdn, id_key(&a.id));
    }

    /// If `key` held `msisdn`'s turn, the next SMS waiting for it goes first.
    fn pass_turn(&mut self, msisdn: &str, key: u64) {
        if let Some(next) = self.p.turns.done(msisdn, key) {
            self.p.queue.push_front(next);
        }
    }

    /// Offers what is queued, within the window; expired actions are dropped here.
    fn launch(&mut self, inflight: &mut JoinSet<Offered>) -> Result<(), DeliveryError> {
        let mut launch = Vec::new();
        while inflight.len() + launch.len() < self.cfg.window {
            let Some((a, attempt)) = self.p.queue.pop_front() else { break };
            if self.expired(&a) {
                self.finish_expired(&a)?;
                continue;
            }
            let Some(gate) = self.gateway_for(a.channel) else { continue };
            let (a, attempt) = match a.channel {
                // It waits while another SMS to its subscriber is unanswered.
                Channel::Sms => match self.p.turns.go(a, attempt) {
                    Some(go) => go,
                    None => continue,
                },
                _ => (a, attempt),
            };
            // Once per action: later attempts leave it just as much in doubt, and the ledger
            // must not grow with retries while a gateway is down.
            if attempt == 1 {
                self.ledger
                    .write(Entry::Sending {
                        id: a.id.clone(),
                        attempt,
                        reference: reference(&a.id),
                        msisdn: a.msisdn.clone(),
                        at: now_ms(),
                    })
                    .map_err(DeliveryError::Ledger)?;
            }
            launch.push((a, attempt, gate));
        }
        if !launch.is_empty() {
            // The `sending` lines are on disk before any gateway sees the actions.
            self.ledger.sync().map_err(DeliveryError::LedgerSync)?;
            for (a, attempt, gate) in launch {
                let mut halt = self.halt.subscribe();
                inflight.spawn(async move {
                    let sent = gate.offer(&a, &mut halt).await;
                    (a, attempt, sent)
                });
            }
        }
        Ok(())
    }

    /// What a gateway answered to one offer (`None`: stopping, it never reached the gateway; its
    /// `sending` line leaves it in doubt, so the next start treats it as it would after a crash).
    fn on_sent(&mut self, a: Action, attempt: u32, sent: Option<Sent>) -> Result<(), DeliveryError> {
        let Some(sent) = sent else { return Ok(()) };
        let result = match &sent {
            Sent::Accepted { .. } | Sent::Answered { .. } => "accepted",
            Sent::Retry { .. } => "retry",
            Sent::Rejected { .. } => "rejected",
            Sent::InDoubt { .. } => "in_doubt",
        };
        crate::telemetry::delivery(a.channel.as_str(), result);
        match sent {
            Sent::Accepted { gateway_ids } => {
                self.stats.accepted += 1;
                self.p.holding.remove(&id_key(&a.id));
                self.answered(&a);
                self.ledger.write(accepted(&a, gateway_ids)).map_err(DeliveryError::Ledger)?;
                self.retry_early()?;
            }
            Sent::Answered { status, detail } => {
                // The answer is the outcome: one ledger line finishes the action (a crash before
                // it is synced leaves it in doubt, and the repeat gets the same answer back).
                self.stats.accepted += 1;
                self.p.holding.remove(&id_key(&a.id));
                self.answered(&a);
                let at = now_ms();
                let entry = Entry::Outcome { id: a.id.clone(), status, detail: detail.clone(), at };
                self.ledger.write(entry).map_err(DeliveryError::Ledger)?;
                self.outcome(&Open::of(&a), status, &detail, at)?;
            }
            Sent::Retry { reason, after } => {
                // It keeps its subscriber's turn: its `sending` line stays unanswered till then.
                self.stats.retries += 1;
                if self.cfg.max_attempts > 0 && attempt >= self.cfg.max_attempts {
                    self.reject(&a, &format!("gave up after {attempt} attempts: {reason}"))?;
                } else {
                    let backoff = self.backoff(attempt).max(after.unwrap_or_default());
                    self.p.retry_seq += 1;
                    self.p.retry.insert(
                        (Instant::now() + backoff, self.p.retry_seq),
                        Retrying { action: a, attempt: attempt + 1 },
                    );
                }
            }
            Sent::Rejected { reason } => self.reject(&a, &reason)?,
            Sent::InDoubt { reason } => {
                self.stats.in_doubt += 1;
                eprintln!(
                    "tidings: delivery: {} to {} in doubt ({reason}): waiting {:?} for a report",
                    a.id,
                    mask(&a.msisdn),
                    self.cfg.in_doubt_grace
                );
                // It keeps its subscriber's turn while in doubt.
                let d = InDoubt {
                    id: a.id.clone(),
                    msisdn: a.msisdn.clone(),
                    reference: reference(&a.id),
                    receipts: Vec::new(),
                };
                self.p.doubts.insert(d, Some((a, attempt + 1)), Instant::now() + self.cfg.in_doubt_grace);
            }
        }
        Ok(())
    }

    /// Offers the reports that came early once more; drops those kept too long.
    fn retry_early(&mut self) -> Result<(), DeliveryError> {
        let now = Instant::now();
        for (at, inc) in std::mem::take(&mut self.early) {
            let Some(r) = inc.report().cloned() else { continue };
            if self.report(r)? {
                self.unsynced.push(inc);
            } else if now.duration_since(at) < EARLY_KEEP {
                self.early.push_back((at, inc));
            } else {
                // Kept long enough: acknowledge it and let it go.
                self.stats.unmatched_reports += 1;
                self.unsynced.push(inc);
            }
        }
        Ok(())
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let f = 1u32 << attempt.saturating_sub(1).min(16);
        self.cfg.retry_min.saturating_mul(f).min(self.cfg.retry_max)
    }

    fn expired(&self, a: &Action) -> bool {
        self.cfg.honour_expiry
            && a.expires
                .as_deref()
                .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                .is_some_and(|e| e.timestamp_millis() < now_ms())
    }

    fn finish_expired(&mut self, a: &Action) -> Result<(), DeliveryError> {
        self.stats.expired += 1;
        self.p.holding.remove(&id_key(&a.id));
        self.answered(a);
        self.ledger.write(Entry::Expired { id: a.id.clone(), at: now_ms() }).map_err(DeliveryError::Ledger)?;
        self.outcome(&Open::of(a), OutcomeStatus::Expired, "expired before a gateway took it", now_ms())
    }

    fn reject(&mut self, a: &Action, reason: &str) -> Result<(), DeliveryError> {
        self.stats.rejected += 1;
        self.p.holding.remove(&id_key(&a.id));
        self.answered(a);
        eprintln!("tidings: delivery: {} to {} refused: {reason}", a.id, mask(&a.msisdn));
        self.ledger
            .write(Entry::Rejected { id: a.id.clone(), reason: reason.to_owned(), at: now_ms() })
            .map_err(DeliveryError::Ledger)?;
        // An order that could not be placed failed; it was not refused by the order interface
        // (that answer is `rejected`, recorded as it came).
        let status = match a.channel {
            Channel::Sms | Channel::Order => OutcomeStatus::Failed,
            Channel::Call | Channel::Ivr => OutcomeStatus::Expired,
        };
        self.outcome(&Open::of(a), status, reason, now_ms())
    }

    /// Records a report; `false` when it names nothing known (yet): no accepted action, no SMS
    /// in doubt it can settle, nothing already recorded.
    fn report(&mut self, r: Report) -> Result<bool, DeliveryError> {
        // What is open is asked first, then what is recorded: a report of either must not be
        // taken for one of an SMS in doubt (the module docs of `doubt` say why).
        let (action_id, gateway_id) = (r.action_id.as_deref(), r.gateway_id.as_deref());
        let open = match self.ledger.resolve(action_id, gateway_id) {
            Some(open) => open,
            None if self.ledger.is_repeat(action_id, gateway_id) => {
                self.stats.repeated_reports += 1;
                return Ok(true);
            }
            None => {
                let sms = self.sms.as_deref();
                let settled = match self.p.doubts.settle(&r, |a| sms.map_or(1, |g| g.parts(a))) {
                    None => return Ok(false),
                    Some(Tally::Again) => return Ok(true),
                    Some(Tally::Part { id, gateway_id }) => {
                        let part = Entry::Part { id, gateway_id, at: now_ms() };
                        self.ledger.write(part).map_err(DeliveryError::Ledger)?;
                        return Ok(true);
                    }
                    Some(Tally::Settled(settled)) => settled,
                };
                let a = settled.action;
                self.stats.settled_in_doubt += 1;
                self.p.holding.remove(&id_key(&a.id));
                self.answered(&a);
                self.ledger.write(accepted(&a, settled.gateway_ids)).map_err(DeliveryError::Ledger)?;
                let Some(open) = self.ledger.resolve(action_id, gateway_id) else { return Ok(false) };
                open
            }
        };
        self.ledger
            .write(Entry::Outcome { id: open.id.clone(), status: r.status, detail: r.detail.clone(), at: r.at_ms })
            .map_err(DeliveryError::Ledger)?;
        self.outcome(&open, r.status, &r.detail, r.at_ms)?;
        Ok(true)
    }

    /// A subscriber's reply: a `reply` event, unless it was recorded already (a redelivery).
    fn reply(&mut self, r: &Reply) -> Result<(), DeliveryError> {
        let verdict = judge(r, &self.ledger.replies, self.offset, now_ms());
        crate::telemetry::reply(r.gateway, verdict.as_str());
        match verdict {
            Verdict::New { entry, line } => {
                self.stats.replies += 1;
                self.ledger.write(entry).map_err(DeliveryError::Ledger)?;
                self.emit(line)?;
            }
            Verdict::Again => self.stats.replies_again += 1,
            Verdict::Unreadable(sender) => {
                self.stats.unreadable_replies += 1;
                eprintln!(
                    "tidings: delivery: a reply through {} from {sender}, no subscriber number: dropped",
                    r.gateway
                );
            }
        }
        Ok(())
    }

    /// Writes the outcome event of an action (and hands it to a live engine).
    fn outcome(&mut self, of: &Open, status: OutcomeStatus, detail: &str, at_ms: i64) -> Result<(), DeliveryError> {
        self.stats.outcomes += 1;
        crate::telemetry::outcome(&of.channel, status.as_str());
        let action_id = &of.id;
        let ts = crate::time::format_ts(at_ms, self.offset);
        let id = format!("o{:016x}", crate::util::stable_hash(format!("{action_id}\0{}", status.as_str()).as_bytes()));
        let line = serde_json::json!({
            "kind": "outcome",
            "id": id,
            "ts": ts,
            "msisdn": of.msisdn,
            "action_id": action_id,
            "channel": of.channel,
            "status": status.as_str(),
            "rule": of.rule,
            "campaign": of.campaign,
            "detail": detail,
        })
        .to_string();
        self.emit(line)
    }

    /// One event line into `outcomes.jsonl` (flushed with the ledger at the end of the round,
    /// `sync`) and to a live engine.
    fn emit(&mut self, line: String) -> Result<(), DeliveryError> {
        writeln!(self.outcomes, "{line}")
            .map_err(|e| DeliveryError::Outcomes { path: self.cfg.outcomes.clone(), source: e })?;
        self.outcomes_len += line.len() as u64 + 1;
        self.marked = false;
        if let Some(feed) = &self.live {
            feed(line);
        }
        Ok(())
    }
}

#[derive(Clone)]
enum Gate {
    Sms(Arc<SmsGateway>, Arc<Limiter>),
    Call(Arc<CallCentre>, Arc<Limiter>),
    Order(Arc<OrderDesk>),
}

impl Gate {
    /// Waits for the channel's rate, then offers `a`; `None` when `halt` came first (stopping:
    /// nothing new goes out).
    async fn offer(&self, a: &Action, halt: &mut tokio::sync::watch::Receiver<bool>) -> Option<Sent> {
        let limit = match self {
            Gate::Sms(_, limit) | Gate::Call(_, limit) => Some(limit),
            Gate::Order(_) => None,
        };
        if let Some(limit) = limit {
            let halted = async {
                let _ = halt.wait_for(|h| *h).await;
            };
            tokio::select! {
                biased;
                _ = halted => return None,
                _ = limit.until_ready() => {}
            }
        }
        let halted = *halt.borrow();
        if halted {
            return None;
        }
        Some(match self {
            Gate::Sms(g, _) => g.submit(a).await,
            Gate::Call(g, _) => g.submit(a).await,
            Gate::Order(g) => g.submit(a).await,
        })
    }
}

/// The 16-bit reference an SMS carries (SMPP `user_message_reference`), from the action id.
pub fn reference(id: &str) -> u16 {
    super::smpp::user_message_reference(id)
}

/// The ledger entry of an action a gateway took: what a later report needs to become an
/// outcome event.
fn accepted(a: &Action, gateway_ids: Vec<String>) -> Entry {
    Entry::Accepted {
        id: a.id.clone(),
        gateway_ids,
        msisdn: a.msisdn.clone(),
        rule: a.rule.clone(),
        campaign: a.campaign.clone(),
        channel: a.channel.as_str().to_owned(),
        at: now_ms(),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn mask(msisdn: &str) -> String {
    crate::util::Msisdn::parse(msisdn).map_or_else(|| "<bad number>".to_owned(), |m| m.masked())
}
