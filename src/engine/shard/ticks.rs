//! Daily ticks: when a shard next runs each local minute of day its daily rules name.
//!
//! Ticks start from the input's first event time, the same for every shard, so every shard
//! count ticks alike; they are carried across a reload (a minute still scheduled keeps its next
//! tick) and kept in checkpoints.

use crate::rules::RuleSet;
use crate::time::{DAY, Millis, next_local_minute};

/// The daily rules' next ticks: (next due, local minute of day), once started.
#[derive(Default)]
pub(super) struct Ticks {
    next: Vec<(Millis, u32)>,
    started: bool,
}

impl Ticks {
    /// Schedules the daily rules' first ticks after `origin`, the input's first event time
    /// (once: later calls do nothing).
    pub(super) fn start(&mut self, rules: &RuleSet, origin: Millis, offset: chrono::FixedOffset) {
        if self.started {
            return;
        }
        self.started = true;
        for m in rules.daily_minutes() {
            self.next.push((next_local_minute(m, origin, offset), m));
        }
    }

    /// When the next tick is due.
    #[inline]
    pub(super) fn next_due(&self) -> Option<Millis> {
        self.next.iter().map(|t| t.0).min()
    }

    /// Takes the tick at `at`: its local minutes of day, each due again a day later.
    pub(super) fn take(&mut self, at: Millis) -> Vec<u32> {
        let minutes: Vec<u32> = self.next.iter().filter(|t| t.0 == at).map(|t| t.1).collect();
        for t in self.next.iter_mut().filter(|t| t.0 == at) {
            t.0 += DAY;
        }
        minutes
    }

    /// The ticks as a checkpoint keeps them.
    pub(super) fn saved(&self) -> (Vec<(Millis, u32)>, bool) {
        (self.next.clone(), self.started)
    }

    /// Ticks for `rules` from `old` (a checkpoint's, or those of the rule set before a reload):
    /// times still scheduled keep their next tick; new ones start after `now`.
    pub(super) fn set(
        &mut self,
        old: Vec<(Millis, u32)>,
        started: bool,
        rules: &RuleSet,
        now: Millis,
        offset: chrono::FixedOffset,
    ) {
        self.started = started;
        if started {
            self.next = rules
                .daily_minutes()
                .into_iter()
                .map(|m| old.iter().copied().find(|t| t.1 == m).unwrap_or((next_local_minute(m, now + 1, offset), m)))
                .collect();
        }
    }

    /// Carries the ticks over to `rules` (a reload at watermark `now`).
    pub(super) fn carry(&mut self, rules: &RuleSet, now: Millis, offset: chrono::FixedOffset) {
        let old = std::mem::take(&mut self.next);
        self.set(old, self.started, rules, now, offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daily_minute_falls_on_the_next_local_day_boundary_plus_the_minute() {
        let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("a valid offset");
        // 2024-03-01 00:00 in Beijing is 2024-02-29 16:00 UTC.
        let midnight = 1_709_222_400_000;
        let nine = 9 * 60;
        assert_eq!(next_local_minute(nine, midnight, beijing), midnight + 9 * 3_600_000);
        assert_eq!(next_local_minute(nine, midnight + 9 * 3_600_000, beijing), midnight + 9 * 3_600_000, "at is at");
        assert_eq!(next_local_minute(nine, midnight + 9 * 3_600_000 + 1, beijing), midnight + DAY + 9 * 3_600_000);
        assert_eq!(next_local_minute(0, midnight - 1, beijing), midnight);
    }

    #[test]
    fn taking_a_tick_yields_its_minutes_and_moves_them_a_day_on() {
        let mut t = Ticks { next: vec![(100, 540), (200, 600), (100, 545)], started: true };
        assert_eq!(t.next_due(), Some(100));
        assert_eq!(t.take(100), vec![540, 545]);
        assert_eq!(t.next_due(), Some(200));
        assert_eq!(t.saved(), (vec![(100 + DAY, 540), (200, 600), (100 + DAY, 545)], true));
    }
}
