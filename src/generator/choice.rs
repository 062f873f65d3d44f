//! Who an event is about and where they are: a draw skewed toward heavy users for the
//! background, a subscriber who fits the story for an episode, the cell someone plausibly is in
//! at an hour, and the other party of a call.

use super::base::PEER_PREFIXES;
use super::stream::{Events, F_BUSY};
use super::subscribers::Sub;
use crate::time::Millis;

impl Events {
    /// A subscriber for ordinary traffic: skewed toward heavy users, mostly active ones.
    pub(super) fn draw(&mut self, t: Millis) -> Sub {
        let n = u64::from(self.m.n);
        let late = self.m.cal.days >= 2 && self.m.cal.day_of(t) as u64 * 2 >= u64::from(self.m.cal.days);
        let mut attempt = 0;
        loop {
            // Heavy users: 15% of traffic from the top 2% of ranks, 25% from the top 20%.
            let span = match self.rng.weighted(&[15, 25, 60]) {
                0 => n.div_ceil(50),
                1 => n.div_ceil(5),
                _ => n,
            };
            let rank = self.rng.below(span);
            let i = self.m.base.ranked(rank);
            let s = self.sub(i);
            attempt += 1;
            if attempt >= 6 {
                return s;
            }
            if self.flag(i) & F_BUSY != 0 {
                continue;
            }
            if !s.active() && self.rng.chance(0.7) {
                continue;
            }
            if s.fading && late && self.rng.chance(0.9) {
                continue;
            }
            // A churner who has stopped is gone from ordinary traffic too.
            if s.churner && self.m.cal.day_of(t) as u64 >= u64::from(self.m.base.churn_stop(i)) {
                continue;
            }
            return s;
        }
    }

    /// A subscriber who fits an episode; uniform over the base, bounded search. Churners have
    /// their own story and are left out of the others.
    pub(super) fn pick(&mut self, want: impl Fn(&Sub) -> bool) -> Sub {
        let n = u64::from(self.m.n);
        let mut last = self.sub(0);
        for _ in 0..4000 {
            let i = self.rng.below(n) as u32;
            last = self.sub(i);
            if want(&last) && !last.churner && self.flag(i) & F_BUSY == 0 {
                return last;
            }
        }
        last
    }

    /// Where the subscriber plausibly is at time t: work on working hours, home otherwise.
    pub(super) fn cell_for(&mut self, s: &Sub, t: Millis) -> u32 {
        let r = self.rng.unit();
        if r < 0.01 {
            return self.rng.pick(&self.m.world.landmarks, s.home);
        }
        if r < 0.09 {
            let pool = if self.rng.chance(0.5) { &self.m.world.business } else { &self.m.world.residential };
            return self.rng.pick(pool, s.home);
        }
        let hour = self.m.cal.hour_of(t);
        let workday = self.m.cal.info.get(self.m.cal.day_of(t)).is_some_and(|d| d.workday);
        let at_work = workday && (9..18).contains(&hour);
        if self.rng.chance(0.85) == at_work { s.work } else { s.home }
    }

    pub(super) fn ordinary_cell(&mut self, s: &Sub) -> u32 {
        if self.rng.chance(0.5) { s.home } else { s.work }
    }

    pub(super) fn peer(&mut self, own: bool) -> u64 {
        if own && self.rng.chance(0.5) {
            let j = self.rng.below(u64::from(self.m.n)) as u32;
            return self.m.base.msisdn(j);
        }
        let prefix = self.rng.pick(&PEER_PREFIXES, 130);
        prefix * 100_000_000 + self.rng.below(100_000_000)
    }
}
