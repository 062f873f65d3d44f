//! Hot reload on a shard: a new rule set swapped in between two batches, every subscriber's
//! state carried over.

use super::{Shard, ShardStats};
use crate::rules::RuleSet;
use crate::time::Millis;
use std::sync::Arc;

impl Shard {
    /// Swaps in a new rule set between two batches (hot reload), carrying every subscriber's
    /// state over: rules and campaigns are matched by name (or a former name, `was:`), windows and sequences by their
    /// definition; what is gone is dropped (timers) or retired (contact history keeps counting
    /// toward caps across all touchpoints). `now` is the watermark: new daily rules start ticking
    /// after it. What the new rules no longer have room for is counted in `stats` (the run
    /// summary says how many journeys a reload ended and timers it dropped).
    pub fn reload(&mut self, new: Arc<RuleSet>, now: Millis, stats: &mut ShardStats) {
        let remap = self.rules.shape().remap_to_with(&new.shape(), &new.formerly());
        self.snapshot_finish();
        self.timers.clear();
        self.journey_due.clear();
        let before = (stats.journeys_dropped_on_reload, stats.timers_dropped_on_reload);
        for e in self.subs.iter_mut() {
            let (journeys, timers) = (e.state.journeys().len(), e.state.timers().len());
            e.state.remap(&remap);
            stats.journeys_dropped_on_reload += (journeys - e.state.journeys().len()) as u64;
            stats.timers_dropped_on_reload += (timers - e.state.timers().len()) as u64;
            let raw = e.sub.msisdn.raw();
            for t in e.state.timers() {
                self.timers.insert(t.index_key(raw));
            }
            // Journeys carry over by name; a step's transitions may have changed, so its due time
            // is worked out again under the new rules.
            if !e.state.journeys().is_empty() {
                for j in e.state.journeys_mut() {
                    j.due = new.journey_next_due(j, self.offset);
                    if let Some(s) = new.steps.get(j.step as usize) {
                        self.journey_due.add((j.due, raw, s.journey), j.step);
                    }
                }
            }
        }
        crate::telemetry::reload_dropped(
            stats.journeys_dropped_on_reload - before.0,
            stats.timers_dropped_on_reload - before.1,
        );
        // Shadow rules' would-be history follows its rules by name (see `policy::shadow`).
        self.shadow_contacts.remap(&remap, &new);
        self.policy = Arc::new(self.policy.with_rules(Arc::clone(&new)));
        self.ticks.carry(&new, now, self.offset);
        self.pins.clear();
        self.held.clear();
        self.activity.clear();
        self.settled.clear();
        self.quiet.clear();
        // The funnel's counts under the old rules left with the batch (`funnel_flush`).
        self.funnel.set_rules(&new);
        self.scratch.triggered = vec![0; new.rules.len()];
        self.rules = new;
    }
}
