//! The pipeline: route events by msisdn to shards, keep event time, and write decisions in a
//! deterministic order.
//!
//! Event time: the watermark is the latest event time seen minus the allowed lateness; a
//! timer fires once the watermark passes it, never by the wall clock. Every event carries a
//! firing threshold — the watermark, advanced as far as the event's own time allows — and the
//! timers due by then fire just before the event, so a shard fires exactly the timers a
//! one-shard run would have fired at that point, whatever the shard count or batch size.
//!
//! Shards are OS threads (they are CPU-bound and own their state); the router takes the decoded
//! events a source hands it ([`Input`]), guards event time against a stray far-future stamp
//! ([`clock`]) and batches on the calling thread, and collects each batch's decisions from every
//! shard before writing them sorted by [`OrderKey`] to a [`Sink`].
//!
//! Files: `batch` (what a shard does with a batch), [`shard`] (the owner of a set of
//! subscribers: it orchestrates state, rules and policy per event), `write` (the write side:
//! capacity, budgets, counts, the sink), [`funnel`] (the live funnel's counts), [`explain`],
//! `durable` (checkpoints during a run), `summary` (what a run did), `output` (the [`Sink`]
//! trait).

mod batch;
pub mod board;
pub mod clock;
mod durable;
pub mod explain;
pub mod funnel;
mod output;
mod pool;
pub mod shard;
mod summary;
mod write;

pub use clock::GuardConfig;
pub use shard::{Shard, ShardStats, TickCost};
pub use summary::{Summary, kind_counts, render_summary};

use batch::{Batch, run_batch};
pub use durable::Durable;
use durable::{Ckpt, Take};
pub use output::Sink;
use pool::Spare;
use write::Out;

use crate::contact::Decision;
use crate::event::{DeadLetter, Event, Kind};
use crate::policy::ContactPolicy;
use crate::refdata::{RefData, Subscribers};
use crate::rules::RuleSet;
use crate::rules::policy::GlobalPolicy;
use crate::state::checkpoint::{self, RouterState};
use crate::time::Millis;
use crate::util::{Msisdn, mix64};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub shards: usize,
    /// Events per batch handed to the shards.
    pub batch: usize,
    /// How late (in event time) an event may arrive and still be ordered before timers.
    pub lateness: i64,
    /// The subscribers' local time offset (quiet hours, birthdays, `local.hour`).
    pub offset: chrono::FixedOffset,
    /// At the end of input, advance the watermark to at least this time (fires timers due by
    /// then). The watermark always advances to the latest event time at the end.
    pub until: Option<Millis>,
    /// Contact policy from the config (rules and campaigns bring their own).
    pub policy: GlobalPolicy,
    /// Channel capacity (count per milliseconds), indexed by `Channel as usize`.
    pub capacity: crate::policy::Capacities,
    /// Keep a plain-words account of everything that happens to this subscriber (`explain`).
    pub trace: Option<Msisdn>,
    /// Time the processing of every Nth event (0: never), for `tidings bench`.
    pub latency_sample: u32,
    /// SCHED_FIFO priority for the engine's threads (0: the ordinary scheduler); see
    /// [`crate::util::realtime`].
    pub realtime: u8,
    /// How far one event may move event time on by itself ([`clock`]).
    pub guard: GuardConfig,
    /// Where event time stands before the first event, for the guard: a live run's host clock
    /// at start (`Millis::MIN`: nowhere, the first events must agree among themselves).
    pub clock_start: Millis,
    /// A step of event time larger than this (a stream resumed after hours) is worked through in
    /// slices of it, with a stop, an IVR answer or an explain served between two slices.
    pub slice: i64,
    /// The engine's pulse for `/readyz` and `tidings_engine_stalled_seconds`.
    pub heartbeat: Option<Arc<crate::telemetry::Heartbeat>>,
    /// A live source's switch: while it is set, the source hands over only requests (IVR,
    /// explain, reload) and says `Idle` when none waits. The engine sets it between the slices of
    /// a long step of event time, so that callers are not kept waiting behind it.
    pub requests_only: Option<Arc<AtomicBool>>,
    /// This instance's share of every campaign budget (1: the whole; `[scale]` sets less).
    pub budget_share: f64,
    /// Where the write side publishes the campaigns and their budgets spent (`GET /v1/campaigns`).
    pub campaigns: Option<Arc<crate::policy::budget::CampaignBook>>,
    /// Where it publishes the funnel's counts (`GET /v1/funnel`), and how many days it keeps.
    pub funnel: Option<Arc<funnel::FunnelBook>>,
    /// Where the shards publish their journey instances by step (`GET /v1/journeys`).
    pub journeys: Option<Arc<board::JourneyBoard>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            shards: 1,
            batch: 1024,
            lateness: 0,
            offset: chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset"),
            until: None,
            policy: GlobalPolicy::default(),
            capacity: [None; crate::contact::Channel::COUNT],
            trace: None,
            latency_sample: 0,
            realtime: 0,
            guard: GuardConfig::OFF,
            clock_start: Millis::MIN,
            slice: crate::time::HOUR,
            heartbeat: None,
            requests_only: None,
            budget_share: 1.0,
            campaigns: None,
            funnel: None,
            journeys: None,
        }
    }
}

/// One item of the engine's input: an event (or the dead letter its line became), or word from a
/// live source that nothing more is ready just now — the batch in hand is then written out
/// rather than held until more events come.
pub enum Input {
    Item(Result<Event, DeadLetter>),
    /// An event someone waits on (an IVR request): the batch is cut right after it and every
    /// decision so far written out.
    Urgent(Result<Event, DeadLetter>),
    Idle,
    /// Describe one subscriber as the engine holds them after everything before this point.
    Explain(ExplainRequest),
    /// From here on, decide with this rule set (hot reload); subscriber state carries over.
    Reload(Arc<RuleSet>),
}

/// A request for one subscriber's state (`GET /v1/explain/{msisdn}`), answered by the shard
/// that owns them between two batches: no lock, no copy of the state kept elsewhere.
#[derive(Debug)]
pub struct ExplainRequest {
    pub msisdn: Msisdn,
    pub reply: mpsc::Sender<serde_json::Value>,
}

impl Input {
    /// What a control item hands a batch: the explain request to answer or the rule set to swap
    /// in after its events (nothing for an event or `Idle`).
    fn control_parts(self) -> (Vec<ExplainRequest>, Option<Arc<RuleSet>>) {
        match self {
            Input::Explain(r) => (vec![r], None),
            Input::Reload(rules) => (Vec::new(), Some(rules)),
            Input::Item(_) | Input::Urgent(_) | Input::Idle => (Vec::new(), None),
        }
    }
}

impl From<Result<Event, DeadLetter>> for Input {
    fn from(item: Result<Event, DeadLetter>) -> Input {
        Input::Item(item)
    }
}

/// A batch's event: position, firing threshold, event.
type Item = (u64, Millis, Event);
type Items = Vec<Item>;

/// Puts a batch's decisions in output order. One shard decides them in that order already, and
/// a stable sort of 300-byte decisions takes fresh scratch memory every time (the kernel zeroed
/// it: 4 % of a replay).
fn in_order(ds: &mut [Decision]) {
    if !ds.is_sorted_by_key(|d| d.key) {
        ds.sort_by_key(|d| d.key);
    }
}

pub fn shard_of(msisdn: crate::util::Msisdn, shards: usize) -> usize {
    (mix64(msisdn.raw()) % shards as u64) as usize
}

/// Runs decoded input through the rules until it ends or `stop` is set.
pub fn run<I: Into<Input>>(
    input: impl Iterator<Item = I>,
    rules: Arc<RuleSet>,
    refdata: Arc<RefData>,
    subscribers: Subscribers,
    opts: &EngineOptions,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
) -> std::io::Result<Summary> {
    run_durable(input, Setup { rules, refdata, subscribers }, opts, sink, stop, None)
}

/// What a run starts from: the compiled rules, the reference data and the subscribers.
pub struct Setup {
    pub rules: Arc<RuleSet>,
    pub refdata: Arc<RefData>,
    pub subscribers: Subscribers,
}

/// [`run`], resuming from a checkpoint and taking checkpoints as `durable` says.
pub fn run_durable<I: Into<Input>>(
    input: impl Iterator<Item = I>,
    setup: Setup,
    opts: &EngineOptions,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
    durable: Option<Durable>,
) -> std::io::Result<Summary> {
    let Setup { rules, refdata, subscribers } = setup;
    let n = opts.shards.max(1);
    let parts = subscribers.split(n, |m| shard_of(m, n));
    let setup = Arc::new(ContactPolicy::new(opts.policy.clone(), Arc::clone(&rules), opts.offset));
    let mut shards: Vec<Shard> = parts
        .into_iter()
        .map(|p| {
            let mut s = Shard::new(Arc::clone(&rules), Arc::clone(&refdata), Arc::clone(&setup), p, opts.offset);
            s.trace = opts.trace.map(|m| (m, Vec::new()));
            s
        })
        .collect();
    let mut summary = Summary::default();
    let mut sink = Out::new(sink, &rules, opts);
    shards.iter_mut().for_each(|s| s.count_into(sink.funnel.inbox()));
    let mut start = RouterState::start();
    let slice = durable.as_ref().map_or(std::time::Duration::ZERO, |d| d.slice);
    let mut ckpt = None;
    if let Some(mut d) = durable {
        if let Some(loaded) = d.restore.take() {
            start = restore(&loaded, &rules, &refdata, &mut shards, &mut sink, &mut summary)?;
        }
        ckpt = Some(Ckpt {
            to: d.writer.sender(),
            writer: d.writer,
            every_events: d.every_events,
            every: d.every,
            positions: d.positions,
            shards: n,
            rules: Arc::clone(&rules),
            last_pos: start.pos,
            last_at: std::time::Instant::now(),
        });
    }
    sink.written = start.batch;
    if let Some(book) = &sink.book {
        sink.budgets.publish(book);
    }
    let sink = &mut sink;

    let spare = Spare::default();
    crate::util::realtime(opts.realtime, "engine");
    let began = std::time::Instant::now();
    // The shards and their figures when they are done; the shards are freed after the clock stops.
    let mut done: Vec<(Shard, ShardStats)> = Vec::with_capacity(n);
    if n == 1 {
        let mut shard = shards.pop().expect("one shard");
        let mut stats = ShardStats::default();
        route(input, Fixed { opts, stop, spare: &spare }, start, ckpt, &mut summary, sink, |batch, _urgent| {
            let Some(batch) = batch else { return Ok(Vec::new()) }; // one shard: none in flight
            let out = run_batch(&mut shard, batch, &mut stats, opts.latency_sample, slice, &spare);
            crate::telemetry::timers_pending(0, shard.pending_timers());
            shard.export_journeys(0, opts.journeys.as_deref());
            Ok(vec![out])
        })?;
        shard.snapshot_finish();
        done.push((shard, stats));
    } else {
        std::thread::scope(|scope| -> std::io::Result<()> {
            let (res_tx, res_rx) = mpsc::channel::<(u64, Vec<Decision>)>();
            let mut txs = Vec::new();
            let mut handles = Vec::new();
            let journeys = opts.journeys.as_deref();
            for (i, mut shard) in shards.drain(..).enumerate() {
                let (tx, rx) = mpsc::sync_channel::<Batch>(4);
                let res_tx = res_tx.clone();
                let sample = opts.latency_sample;
                let spare = spare.clone();
                txs.push(tx);
                let h = std::thread::Builder::new()
                    .name(format!("tidings-shard-{i}"))
                    .spawn_scoped(scope, move || {
                        crate::util::realtime(opts.realtime, "shard");
                        let mut stats = ShardStats::default();
                        for b in rx {
                            let no = b.no;
                            let out = run_batch(&mut shard, b, &mut stats, sample, slice, &spare);
                            crate::telemetry::timers_pending(i, shard.pending_timers());
                            shard.export_journeys(i, journeys);
                            if res_tx.send((no, out)).is_err() {
                                break;
                            }
                        }
                        shard.snapshot_finish();
                        (shard, stats)
                    })
                    .map_err(std::io::Error::other)?;
                handles.push(h);
            }
            drop(res_tx);
            let mut pending: HashMap<u64, (usize, Vec<Vec<Decision>>)> = HashMap::new();
            let mut next_out = start.batch;
            let mut ready: Vec<Vec<Decision>> = Vec::new();
            let mut collect = |block: bool, upto: u64, ready: &mut Vec<Vec<Decision>>| {
                // Gather results until every batch before `upto` is complete.
                loop {
                    while let Some((cnt, _)) = pending.get(&next_out) {
                        if *cnt < n {
                            break;
                        }
                        let (_, parts) = pending.remove(&next_out).expect("present");
                        let mut all = spare.decisions.take(0);
                        for mut p in parts {
                            all.append(&mut p);
                            spare.decisions.give(p);
                        }
                        ready.push(all);
                        next_out += 1;
                    }
                    if next_out >= upto {
                        return;
                    }
                    let msg = if block { res_rx.recv().ok() } else { res_rx.try_recv().ok() };
                    let Some((no, out)) = msg else { return };
                    let e = pending.entry(no).or_insert_with(|| (0, Vec::new()));
                    e.0 += 1;
                    e.1.push(out);
                }
            };
            let mut sent = start.batch;
            route(input, Fixed { opts, stop, spare: &spare }, start, ckpt, &mut summary, sink, |batch, urgent| {
                // A quiet stream: what is in flight is written now, not when the next event comes.
                let Some(batch) = batch else {
                    ready.clear();
                    collect(true, sent, &mut ready);
                    return Ok(std::mem::take(&mut ready));
                };
                let mut per: Vec<Items> = (0..n).map(|_| spare.events.take(opts.batch.max(1))).collect();
                let (no, origin, start, wms, end_wm) = (batch.no, batch.origin, batch.start, batch.wms, batch.end_wm);
                let mut all = batch.events;
                for item in all.drain(..) {
                    per[shard_of(item.2.msisdn, n)].push(item);
                }
                spare.events.give(all);
                let mut explain: Vec<Vec<ExplainRequest>> = (0..n).map(|_| Vec::new()).collect();
                for r in batch.explain {
                    explain[shard_of(r.msisdn, n)].push(r);
                }
                for ((tx, events), explain) in txs.iter().zip(per).zip(explain) {
                    let reload = batch.reload.clone();
                    let checkpoint = batch.checkpoint.clone();
                    let wms = Arc::clone(&wms);
                    tx.send(Batch { no, origin, start, wms, end_wm, events, explain, reload, checkpoint })
                        .map_err(|_| std::io::Error::other("a shard stopped"))?;
                }
                sent = no + 1;
                // Keep at most two batches in flight: write what is complete; or everything,
                // when someone waits on this batch's decisions.
                ready.clear();
                match urgent {
                    true => collect(true, sent, &mut ready),
                    false => collect(sent > 2, sent.saturating_sub(2), &mut ready),
                }
                Ok(std::mem::take(&mut ready))
            })?;
            drop(txs);
            let mut rest = Vec::new();
            collect(true, sent, &mut rest);
            for mut d in rest {
                in_order(&mut d);
                sink.write(&mut d, &mut summary)?;
            }
            for h in handles {
                done.push(h.join().map_err(|_| std::io::Error::other("a shard panicked"))?);
            }
            Ok(())
        })?;
    }
    for (shard, stats) in &mut done {
        summary.subscribers += shard.subs.len();
        summary.pending_timers += shard.pending_timers();
        summary.journeys_in_progress += shard.journeys_in_progress();
        summary.trace.extend(shard.trace.take().map(|t| t.1).unwrap_or_default());
        summary.stats.absorb(std::mem::take(stats));
    }
    // Stopped with checkpoints on: contacts waiting for capacity stay queued in the checkpoint
    // (released at the end they would be sent early, unlike in a run that went on).
    let drain = !(stop.load(Ordering::Relaxed) && sink.to.is_some());
    sink.finish(&mut summary, drain)?;
    summary.deferred = summary.stats.deferred;
    summary.replay = began.elapsed();
    drop(done);
    Ok(summary)
}

/// Puts a checkpoint's state into the shards and the write side; returns the router's clock.
fn restore(
    loaded: &checkpoint::Stored,
    rules: &Arc<RuleSet>,
    refdata: &RefData,
    shards: &mut [Shard],
    out: &mut Out,
    summary: &mut Summary,
) -> std::io::Result<RouterState> {
    let meta = &loaded.meta;
    let bad = |what: &str, e: crate::codec::Bad| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {what}: {} (the file's checksum held: written by another build?)", loaded.path.display(), e.0),
        )
    };
    let now = rules.shape();
    let remap = (meta.rules_version != rules.version || meta.rules != now)
        .then(|| meta.rules.remap_to_with(&now, &rules.formerly()));
    let n = shards.len();
    let mut dropped = crate::state::Dropped::default();
    loaded
        .records(|d| {
            let m = Msisdn::from_raw(d.peek_u64()?);
            let shard = &mut shards[shard_of(m, n)];
            let p = crate::refdata::Profile::decode(d, shard.names_mut())?;
            let st = crate::state::SubState::decode(d, refdata)?;
            shard.restore_subscriber(p, st, remap.as_ref(), &mut dropped);
            Ok(())
        })
        .map_err(|e| bad("subscriber records", e))?;
    if remap.is_some() {
        eprintln!(
            "tidings: the checkpoint was taken under rules version {}, these are {}: state carried over as a reload does (rules and campaigns by name, windows and sequences by definition)",
            meta.rules_version, rules.version
        );
        let mut carry = crate::rules::carry::Carry::from_shape(&meta.rules, rules);
        // What the checkpoint held, counted: the timers and instances that were there to drop.
        let counted = |names: &[String], by: &std::collections::BTreeMap<u32, u64>, what: &str| {
            let name = |i: &u32| names.get(*i as usize).map_or("?", String::as_str);
            by.iter().map(|(i, k)| format!("{} ({k} {what})", name(i))).collect::<Vec<_>>()
        };
        carry.dropped_timers = counted(&meta.rules.rules, &dropped.timers, "pending");
        carry.ended_steps = counted(&meta.rules.steps, &dropped.steps, "waiting");
        carry.log("restored");
        crate::telemetry::reload_dropped(dropped.steps.values().sum(), dropped.timers.values().sum());
    }
    for s in shards.iter_mut() {
        s.restore_ticks(meta.ticks.clone(), meta.ticks_started, meta.router.wm);
    }
    out.budgets.restore(&meta.budgets).map_err(|e| bad("campaign budgets", e))?;
    out.funnel.restore(&meta.funnel).map_err(|e| bad("funnel", e))?;
    let orphans = out.capacity.restore(&meta.capacity, meta.format).map_err(|e| bad("capacity", e))?;
    if !orphans.is_empty() {
        out.write(&mut { orphans }, summary)?;
    }
    Ok(meta.router)
}

/// What the router reads and never changes: the options, the stop flag, the spare vectors.
#[derive(Clone, Copy)]
struct Fixed<'a> {
    opts: &'a EngineOptions,
    stop: &'a AtomicBool,
    spare: &'a Spare,
}

/// Reads input, assigns positions and watermarks, and hands batches to `dispatch`, which
/// returns batches of decisions that are complete and ready to write (in order). `at` is where
/// the clock starts (a checkpoint's, or the beginning).
fn route<I: Into<Input>>(
    mut input: impl Iterator<Item = I>,
    run: Fixed<'_>,
    at: RouterState,
    ckpt: Option<Ckpt>,
    summary: &mut Summary,
    sink: &mut Out,
    dispatch: impl FnMut(Option<Batch>, bool) -> std::io::Result<Vec<Vec<Decision>>>,
) -> std::io::Result<()> {
    let Fixed { opts, stop, spare } = run;
    let size = opts.batch.max(1);
    let mut pos = at.pos;
    // Shared with `flush` (a checkpoint records them) and the loop.
    let max_ts = std::cell::Cell::new(at.max_ts);
    let ckpt = std::cell::RefCell::new(ckpt);
    let mut wm = at.wm;
    let mut no = at.batch;
    let mut events = Vec::with_capacity(size);
    let mut wms = Vec::with_capacity(size);
    let mut start = pos;
    let mut first_ts: Option<Millis> = at.first_ts;
    let mut counted = [0u64; Kind::ALL.len()];
    let dispatch = std::cell::RefCell::new(dispatch); // `None`: collect what is in flight
    let mut flush = |events: &mut Items,
                     wms: &mut Vec<Millis>,
                     start: u64,
                     end_wm: Millis,
                     summary: &mut Summary,
                     sink: &mut Out,
                     urgent: bool,
                     explain: Vec<ExplainRequest>,
                     reload: Option<Arc<RuleSet>>,
                     checkpoint: Take|
     -> std::io::Result<()> {
        if first_ts.is_none() {
            first_ts = events.first().map(|e| e.2.ts);
        }
        let next_pos = start + events.len() as u64;
        let mut ckpt = ckpt.borrow_mut();
        if let (Some(c), Some(r)) = (ckpt.as_mut(), &reload) {
            c.rules = Arc::clone(r);
        }
        if let Some(r) = &reload {
            sink.reloads.push_back((no, Arc::clone(r)));
        }
        // A checkpoint after this batch: the clock as it stands after it (`end_wm` is where
        // the next batch's timers start from).
        let checkpoint = match ckpt.as_mut() {
            Some(c) if checkpoint == Take::Now || (checkpoint == Take::IfDue && c.due(next_pos)) => {
                let clock = RouterState { pos: next_pos, max_ts: max_ts.get(), wm: end_wm, batch: no + 1, first_ts };
                let (to, meta) = c.begin(no, clock);
                sink.meta.push_back(meta);
                sink.to = Some(to.clone());
                Some(to)
            }
            _ => None,
        };
        drop(ckpt);
        let thresholds = Arc::new(std::mem::replace(wms, spare.wms.take(size)));
        let batch = Batch {
            no,
            origin: first_ts.unwrap_or(Millis::MIN),
            start,
            wms: Arc::clone(&thresholds),
            end_wm,
            events: std::mem::replace(events, spare.events.take(size)),
            explain,
            reload,
            checkpoint,
        };
        no += 1;
        // Metrics once per batch: events by kind since the last batch, and progress.
        for k in Kind::ALL {
            let i = *k as usize;
            crate::telemetry::events(*k, summary.by_kind[i] - counted[i]);
            counted[i] = summary.by_kind[i];
        }
        if let Some(t) = summary.last_ts {
            crate::telemetry::progress(t, end_wm);
        }
        for mut ds in (dispatch.borrow_mut())(Some(batch), urgent)? {
            in_order(&mut ds);
            sink.write(&mut ds, summary)?;
            spare.decisions.give(ds);
        }
        // Back when every shard is done with it (on one shard, always).
        if let Ok(v) = Arc::try_unwrap(thresholds) {
            spare.wms.give(v);
        }
        if let Some(h) = &opts.heartbeat {
            h.beat();
        }
        Ok(())
    };
    let mut guard = clock::Guard::new(opts.guard, opts.clock_start, opts.offset);
    // Events the guard let through after holding them, in input order, decided before the
    // next item is taken; and the ones it refused.
    let mut ready: VecDeque<clock::Taken> = VecDeque::new();
    let mut refused: Vec<DeadLetter> = Vec::new();
    let mut ended = false;
    let mut caught_up = true;
    let pulse = |yes: bool, caught_up: &mut bool| {
        if *caught_up != yes {
            *caught_up = yes;
            if let Some(h) = &opts.heartbeat {
                h.caught_up(yes);
            }
        }
    };
    // `stop` is checked before an item is taken, never after: a taken item is always processed
    // (a checkpoint's source position counts it as done) or, held by the guard, refused whole.
    loop {
        // No checkpoint while taken items wait (held or ready): it would count them as done.
        let may_take = |guard: &clock::Guard, ready: &VecDeque<clock::Taken>| match ready.is_empty() && !guard.holding()
        {
            true => Take::IfDue,
            false => Take::Never,
        };
        let (ev, urgent) = match ready.pop_front() {
            Some(taken) => taken,
            None => {
                if ended || stop.load(Ordering::Relaxed) {
                    break;
                }
                let Some(item) = input.next() else {
                    ended = true;
                    guard.finish(max_ts.get(), &mut ready, &mut refused);
                    dead_letters(&mut refused, summary, sink)?;
                    continue;
                };
                let mut urgent = false;
                let item = match item.into() {
                    Input::Item(item) => item,
                    Input::Urgent(item) => {
                        urgent = true;
                        item
                    }
                    // A quiet live stream: write out what is in hand instead of holding it.
                    Input::Idle => {
                        if !events.is_empty() {
                            let take = may_take(&guard, &ready);
                            flush(&mut events, &mut wms, start, wm, summary, sink, true, Vec::new(), None, take)?;
                        } else {
                            for mut ds in (dispatch.borrow_mut())(None, true)? {
                                in_order(&mut ds);
                                sink.write(&mut ds, summary)?;
                                spare.decisions.give(ds);
                            }
                        }
                        pulse(true, &mut caught_up);
                        continue;
                    }
                    // Answered (or swapped in) after what is in hand, before the next event.
                    control @ (Input::Explain(_) | Input::Reload(_)) => {
                        let (explain, reload) = control.control_parts();
                        if events.is_empty() {
                            start = pos;
                        }
                        let take = may_take(&guard, &ready);
                        flush(&mut events, &mut wms, start, wm, summary, sink, true, explain, reload, take)?;
                        continue;
                    }
                };
                pulse(false, &mut caught_up);
                let ev = match item {
                    Ok(ev) => ev,
                    Err(dl) => {
                        refused.push(dl);
                        dead_letters(&mut refused, summary, sink)?;
                        continue;
                    }
                };
                if !guard.passes(max_ts.get(), &ev) {
                    guard.admit(max_ts.get(), (ev, urgent), &mut ready, &mut refused);
                    dead_letters(&mut refused, summary, sink)?;
                    continue;
                }
                (ev, urgent)
            }
        };
        summary.events += 1;
        summary.by_kind[ev.kind() as usize] += 1;
        summary.first_ts = Some(summary.first_ts.map_or(ev.ts, |t| t.min(ev.ts)));
        if ev.ts < wm {
            summary.late += 1;
        }
        let wm_before = wm;
        max_ts.set(max_ts.get().max(ev.ts));
        summary.last_ts = Some(max_ts.get());
        wm = wm.max(max_ts.get().saturating_sub(opts.lateness));
        // Timers due up to this event's own time fire before it, as far as the watermark
        // allows: an event at 15:00 comes after a 09:00 timer, in event time as in output.
        let threshold = wm_before.max(wm.min(ev.ts));
        // A large step of event time (a stream resumed after hours): the timers and daily ticks
        // it makes due fire slice by slice before the event, each slice a batch of its own, so a
        // stop is honoured between two of them. They fire at this event's position either way,
        // so the decisions and their order are those of one step.
        if wm_before != Millis::MIN && threshold.saturating_sub(wm_before) > opts.slice {
            if !events.is_empty() {
                flush(&mut events, &mut wms, start, wm_before, summary, sink, false, Vec::new(), None, Take::Never)?;
            }
            let mut step = wm_before;
            while threshold.saturating_sub(step) > opts.slice {
                if stop.load(Ordering::Relaxed) {
                    // The event is taken and not decided: no checkpoint may count it. The last
                    // one stands; a restart from it decides the same again (sinks drop what was
                    // already sent, by action id).
                    return Ok(());
                }
                // Requests that came meanwhile (an IVR caller, explain, a reload) are served
                // between two slices, as if they had come just before this event.
                if let Some(only) = &opts.requests_only {
                    only.store(true, Ordering::Relaxed);
                    for _ in 0..REQUESTS_PER_SLICE {
                        match input.next().map(Into::into) {
                            Some(Input::Urgent(Ok(req))) => {
                                summary.events += 1;
                                summary.by_kind[req.kind() as usize] += 1;
                                max_ts.set(max_ts.get().max(req.ts));
                                let mut one = spare.events.take(1);
                                one.push((pos, step, req));
                                let mut one_wms = spare.wms.take(1);
                                one_wms.push(step);
                                flush(
                                    &mut one,
                                    &mut one_wms,
                                    pos,
                                    step,
                                    summary,
                                    sink,
                                    true,
                                    Vec::new(),
                                    None,
                                    Take::Never,
                                )?;
                                spare.events.give(one);
                                spare.wms.give(one_wms);
                                pos += 1;
                            }
                            Some(Input::Urgent(Err(dl)) | Input::Item(Err(dl))) => {
                                refused.push(dl);
                                dead_letters(&mut refused, summary, sink)?;
                            }
                            Some(control @ (Input::Explain(_) | Input::Reload(_))) => {
                                let (explain, reload) = control.control_parts();
                                flush(
                                    &mut events,
                                    &mut wms,
                                    pos,
                                    step,
                                    summary,
                                    sink,
                                    true,
                                    explain,
                                    reload,
                                    Take::Never,
                                )?;
                            }
                            // Not handed over while only requests are (a stream line): it comes
                            // after this event, through the guard like any other.
                            Some(Input::Item(Ok(later))) => match guard.passes(max_ts.get(), &later) {
                                true => ready.push_back((later, false)),
                                false => {
                                    guard.admit(max_ts.get(), (later, false), &mut ready, &mut refused);
                                    dead_letters(&mut refused, summary, sink)?;
                                }
                            },
                            Some(Input::Idle) | None => break,
                        }
                    }
                    only.store(false, Ordering::Relaxed);
                }
                step += opts.slice;
                flush(&mut events, &mut wms, pos, step, summary, sink, false, Vec::new(), None, Take::Never)?;
            }
        }
        if events.is_empty() {
            start = pos;
        } else if urgent {
            // A caller is waiting (IVR): the request goes ahead of the events in hand, which are
            // read but not decided yet, as if it had come just before them, so the answer does
            // not wait for them to be decided. It takes their first position and threshold (the
            // timers due before them fire before it), and they move one place on. No checkpoint
            // here: its source positions would count the events in hand as done.
            let first = events[0].1;
            for e in events.iter_mut() {
                e.0 += 1;
            }
            let mut one = spare.events.take(1);
            one.push((start, first, ev));
            let mut one_wms = spare.wms.take(1);
            one_wms.push(first);
            flush(&mut one, &mut one_wms, start, first, summary, sink, true, Vec::new(), None, Take::Never)?;
            // `flush` left spare vectors in `one` and `one_wms`: they go back.
            spare.events.give(one);
            spare.wms.give(one_wms);
            start += 1;
            pos += 1;
            continue;
        }
        events.push((pos, threshold, ev));
        wms.push(threshold);
        pos += 1;
        if events.len() == size || urgent {
            let take = may_take(&guard, &ready);
            flush(&mut events, &mut wms, start, wm, summary, sink, urgent, Vec::new(), None, take)?;
        }
    }
    if guard.holding() {
        guard.stop(max_ts.get(), &mut refused);
        dead_letters(&mut refused, summary, sink)?;
    }
    let max_ts = max_ts.get();
    summary.last_ts = (max_ts != Millis::MIN).then_some(max_ts);
    if events.is_empty() {
        start = pos;
    }
    let stopped = stop.load(Ordering::Relaxed);
    let last_pos = ckpt.borrow().as_ref().map(|c| c.last_pos);
    if let Some(last_pos) = last_pos {
        // The last checkpoint is taken at the ordinary watermark, before the end of input moves
        // event time on: a later run over more input (or after a stop) goes on from exactly
        // where a run that never stopped would be.
        let last = last_pos < pos;
        if last || !events.is_empty() {
            let take = if last { Take::Now } else { Take::IfDue };
            flush(&mut events, &mut wms, start, wm, summary, sink, false, Vec::new(), None, take)?;
        }
        if stopped {
            return Ok(());
        }
        start = pos;
    }
    // End of input: nothing later can arrive, so event time catches up with the last event.
    let mut end_wm = max_ts.max(wm);
    if let Some(u) = opts.until {
        end_wm = end_wm.max(u);
    }
    flush(&mut events, &mut wms, start, end_wm, summary, sink, false, Vec::new(), None, Take::IfDue)
}

/// Requests served between two slices at most (the rest wait for the next).
const REQUESTS_PER_SLICE: usize = 64;

/// Writes out and counts dead letters (a line that could not be read, an event the guard refused).
fn dead_letters(dls: &mut Vec<DeadLetter>, summary: &mut Summary, sink: &mut Out) -> std::io::Result<()> {
    for dl in dls.drain(..) {
        *summary.dead_letters.entry(dl.reason).or_default() += 1;
        crate::telemetry::dead_letter(dl.reason);
        sink.sink.dead_letter(&dl)?;
    }
    Ok(())
}
