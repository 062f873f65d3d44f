//! One batch of events and what a shard does with it: the timers due before each event, the
//! event, then explain requests, a reload and a checkpoint's start after them.

use super::pool::Spare;
use super::{ExplainRequest, Items, Shard, ShardStats};
use crate::contact::Decision;
use crate::rules::RuleSet;
use crate::state::checkpoint::Part;
use crate::time::Millis;
use std::sync::{Arc, mpsc};

pub(super) struct Batch {
    pub(super) no: u64,
    /// Event time of the input's first event: where daily rules start ticking.
    pub(super) origin: Millis,
    pub(super) start: u64,
    /// Each event's firing threshold (index = pos - start): timers due at or before it fire
    /// just before that event is processed.
    pub(super) wms: Arc<Vec<Millis>>,
    pub(super) end_wm: Millis,
    pub(super) events: Items,
    /// Answered after the events, by the shard that owns each subscriber.
    pub(super) explain: Vec<ExplainRequest>,
    /// Swapped in after the events (hot reload).
    pub(super) reload: Option<Arc<RuleSet>>,
    /// Take a checkpoint after this batch: where its records go.
    pub(super) checkpoint: Option<mpsc::Sender<Part>>,
}

/// Latency samples a run keeps in memory at most (40 MB).
const LATENCY_KEEP: usize = 10_000_000;

pub(super) fn run_batch(
    shard: &mut Shard,
    b: Batch,
    stats: &mut ShardStats,
    sample: u32,
    slice: std::time::Duration,
    spare: &Spare,
) -> Vec<Decision> {
    let mut out = spare.decisions.take(0);
    // A checkpoint in progress: one more slice of it before the batch.
    if shard.snapshotting() {
        let t0 = std::time::Instant::now();
        shard.snapshot_step(slice);
        stats.snapshot_pause(t0.elapsed());
    }
    let wms = Arc::clone(&b.wms);
    let start = b.start;
    // A timer fires just before the first event whose threshold reaches it (or after the
    // batch, which is just before the next batch's first event), never before `not_before`.
    let place = move |due: Millis, not_before: u64| -> u64 {
        let i = wms.partition_point(|w| *w < due);
        (start + i as u64).max(not_before)
    };
    if b.origin != Millis::MIN {
        shard.start_ticks(b.origin);
    }
    // Fetch ahead: the index slot of the event `FAR` places on, the entry of the one `NEAR` on
    // (its slot fetched earlier) and the lists of the one `LISTS` on (its entry fetched earlier),
    // so that their cache misses overlap with the work in between.
    const FAR: usize = 16;
    const NEAR: usize = 8;
    const LISTS: usize = 4;
    let latency = crate::telemetry::decision_latency();
    for (k, (pos, threshold, ev)) in b.events.iter().enumerate() {
        if let Some((_, _, far)) = b.events.get(k + FAR) {
            shard.subs.prefetch_slot(far.msisdn);
        }
        if let Some((_, _, near)) = b.events.get(k + NEAR) {
            shard.subs.prefetch_entry(near.msisdn);
        }
        if let Some((_, _, next)) = b.events.get(k + LISTS) {
            let cell = next.cell();
            shard.subs.prefetch_lists(next.msisdn, cell.is_some());
            if let Some(c) = cell {
                shard.refdata.prefetch_cell(c);
            }
        }
        // Event decoded -> decided: the timers due before it and the event itself.
        let timed = sample != 0 && pos % u64::from(sample) == 0;
        let t0 = timed.then(std::time::Instant::now);
        shard.fire_timers(*threshold, &place, &mut out, stats);
        shard.process(*pos, ev, &mut out, stats);
        if let Some(t0) = t0 {
            let ns = t0.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32;
            // Kept for `bench`'s percentiles, up to a bound: a live engine runs for months (the
            // metrics histogram has them all).
            if stats.latency_ns.len() < LATENCY_KEEP {
                stats.latency_ns.push(ns);
            }
            latency.record(f64::from(ns) * 1e-9);
        }
    }
    shard.fire_timers(b.end_wm, &place, &mut out, stats);
    // Before a reload: the counts are of the rules they were counted under.
    shard.funnel_flush(b.no);
    spare.events.give(b.events);
    if let Some(rules) = b.reload {
        shard.reload(rules, b.end_wm, stats);
    }
    for r in b.explain {
        let _ = r.reply.send(shard.describe(r.msisdn, b.end_wm));
    }
    if let Some(to) = b.checkpoint {
        let t0 = std::time::Instant::now();
        let finishing = shard.snapshot_begin(b.no, to);
        stats.snapshot_pause(t0.elapsed() - finishing);
        stats.snapshot_finish_max_ns = stats.snapshot_finish_max_ns.max(finishing.as_nanos() as u64);
    }
    out
}
