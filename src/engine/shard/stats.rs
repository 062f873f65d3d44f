//! The counters a shard keeps for the run summary and `bench`.

use crate::time::Millis;

/// What one daily tick cost a shard: the walk over the subscribers it visited, with their
/// derived attributes, journeys and contacts (`tidings bench` reports them by tick, so an
/// operator sees what a scheduled rule costs at their number of subscribers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickCost {
    /// The tick's time (event time, a local minute some scheduled item names).
    pub at: Millis,
    pub visits: u64,
    /// Decisions the tick wrote for the subscribers visited (sent, suppressed or held).
    pub decisions: u64,
    /// Wall time on the shard's thread, in nanoseconds.
    pub ns: u64,
}

/// Counters a shard keeps for the run summary.
#[derive(Default, Clone, Debug)]
pub struct ShardStats {
    pub timers_armed: u64,
    pub timers_cancelled: u64,
    pub timers_fired: u64,
    pub rechecks_failed: u64,
    pub deferred: u64,
    /// Journey steps entered (a start counts as one) and journeys ended.
    pub journey_steps: u64,
    pub journeys_ended: u64,
    /// Journey instances a hot reload ended because their step (or journey) is gone, and
    /// pending timers it dropped because their rule is.
    pub journeys_dropped_on_reload: u64,
    pub timers_dropped_on_reload: u64,
    /// Subscribers the daily ticks visited (each tick visits a subscriber at most once).
    pub daily_visits: u64,
    /// Subscribers a daily tick computed derived attributes for (not those whose values of
    /// derives that read only windows stayed put).
    pub derives_computed: u64,
    /// Subscribers a daily tick evaluated journeys' start conditions for (not those for whom
    /// the conditions' steady parts stayed false).
    pub starts_evaluated: u64,
    /// Each daily tick that had work, in the order they ran.
    pub daily_ticks: Vec<TickCost>,
    /// Sampled per-event processing times in nanoseconds (`EngineOptions::latency_sample`).
    pub latency_ns: Vec<u32>,
    /// The longest a checkpoint held this shard between two batches (copying a slice of its
    /// state), and the total, in nanoseconds.
    pub snapshot_pause_max_ns: u64,
    pub snapshot_pause_total_ns: u64,
    /// Every such pause, in microseconds (at most a million kept), for percentiles.
    pub snapshot_pauses_us: Vec<u32>,
    /// The longest a checkpoint still in progress was finished at once (a new one beginning at
    /// the end of the input), in nanoseconds.
    pub snapshot_finish_max_ns: u64,
}

impl ShardStats {
    /// Adds another shard's figures to these.
    pub fn absorb(&mut self, o: ShardStats) {
        self.timers_armed += o.timers_armed;
        self.timers_cancelled += o.timers_cancelled;
        self.timers_fired += o.timers_fired;
        self.rechecks_failed += o.rechecks_failed;
        self.deferred += o.deferred;
        self.journey_steps += o.journey_steps;
        self.journeys_ended += o.journeys_ended;
        self.journeys_dropped_on_reload += o.journeys_dropped_on_reload;
        self.timers_dropped_on_reload += o.timers_dropped_on_reload;
        self.daily_visits += o.daily_visits;
        self.derives_computed += o.derives_computed;
        self.starts_evaluated += o.starts_evaluated;
        self.daily_ticks.extend(o.daily_ticks);
        self.latency_ns.extend(o.latency_ns);
        self.snapshot_pause_max_ns = self.snapshot_pause_max_ns.max(o.snapshot_pause_max_ns);
        self.snapshot_pause_total_ns += o.snapshot_pause_total_ns;
        self.snapshot_pauses_us.extend(o.snapshot_pauses_us);
        self.snapshot_finish_max_ns = self.snapshot_finish_max_ns.max(o.snapshot_finish_max_ns);
    }

    /// Time spent on a checkpoint between two batches.
    pub fn snapshot_pause(&mut self, took: std::time::Duration) {
        let ns = took.as_nanos() as u64;
        self.snapshot_pause_max_ns = self.snapshot_pause_max_ns.max(ns);
        self.snapshot_pause_total_ns += ns;
        if self.snapshot_pauses_us.len() < 1_000_000 {
            self.snapshot_pauses_us.push((ns / 1000).min(u64::from(u32::MAX)) as u32);
        }
    }
}
