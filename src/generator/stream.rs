//! The event stream: background ticks and episode lines merged by time into exactly `events`
//! lines, with the little state kept per subscriber (a prepaid balance and a few flags).
//!
//! The background clock's ticks are quantiles of the diurnal density below; every line an
//! episode schedules goes into a min-heap and is paid for by skipping one background tick.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::episodes::{self, Clock};
use super::records::Ev;
use super::rng::Rng;
use super::subscribers::{PEER_PREFIXES, Sub};
use super::{GenOptions, Model};
use crate::util::{Millis, SECOND};

/// Relative traffic per local hour: quiet at night, peaks mid-morning and evening.
const DIURNAL: [f64; 24] = [
    2.0, 0.8, 0.5, 0.4, 0.4, 0.7, 1.8, 3.5, 5.0, 6.0, 6.5, 6.2, 5.5, 5.3, 5.6, 5.8, 5.8, 6.0, 6.2, 6.8, 7.0, 6.5, 5.0,
    3.5,
];

#[derive(Clone, Copy)]
pub(super) enum What {
    /// An episode clock's next start.
    Start {
        clock: u8,
        day: u32,
        idx: u32,
    },
    Line {
        sub: u32,
        ev: Ev,
        clear: u8,
    },
}

pub(super) struct Item {
    pub(super) t: Millis,
    pub(super) seq: u64,
    pub(super) what: What,
}

// Reversed so that BinaryHeap (a max-heap) pops the earliest; seq breaks ties deterministically.
impl Ord for Item {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.t, other.seq).cmp(&(self.t, self.seq))
    }
}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        (self.t, self.seq) == (other.t, other.seq)
    }
}
impl Eq for Item {}

/// Never top up: the "low balance and no top-up since" story.
pub(super) const F_NO_TOPUP: u8 = 1;
/// In an episode that fixes where they are (a venue, a station, abroad): the background leaves
/// them alone, or its home/work cells would interleave with the episode's and break dwell times.
pub(super) const F_BUSY: u8 = 2;
/// No background top-up until the episode's own line clears it.
pub(super) const F_HOLD: u8 = 4;
const BALANCE_UNSET: i32 = i32::MIN;

/// The event stream; see [`events`].
pub struct Events {
    pub(super) m: Model,
    pub(super) rng: Rng,
    pub(super) balance: Vec<i32>,
    pub(super) flags: Vec<u8>,
    pub(super) heap: BinaryHeap<Item>,
    pub(super) clocks: Vec<Clock>,
    pub(super) seq: u64,
    /// Episode lines scheduled but not yet paid for by a skipped background tick.
    pub(super) debt: u64,
    pub(super) emitted: usize,
    pub(super) serial: u64,
    /// Cumulative diurnal weight at each hour boundary of the window.
    pub(super) cum: Vec<f64>,
    pub(super) slot: u64,
    pub(super) slot_time: Option<Millis>,
    pub(super) hour_ptr: usize,
    pub(super) ts_sec: i64,
    pub(super) ts_str: String,
}

impl Events {
    pub(super) fn new(opts: &GenOptions) -> Events {
        Events::with_model(Model::new(opts))
    }

    pub(super) fn with_model(m: Model) -> Events {
        let n = m.n as usize;
        let mut rng = Rng::new(m.seed ^ 0xE7E7_E7E7);
        let mut cum = Vec::with_capacity(m.cal.days as usize * 24 + 1);
        cum.push(0.0);
        let mut acc = 0.0;
        for _ in 0..m.cal.days {
            let day_factor = 0.92 + 0.16 * rng.unit();
            for w in DIURNAL {
                acc += w * day_factor;
                cum.push(acc);
            }
        }
        let clocks = episodes::clocks(&m);
        let mut ev = Events {
            m,
            rng,
            balance: vec![BALANCE_UNSET; n],
            flags: vec![0; n],
            heap: BinaryHeap::new(),
            clocks,
            seq: 0,
            debt: 0,
            emitted: 0,
            serial: 0,
            cum,
            slot: 0,
            slot_time: None,
            hour_ptr: 0,
            ts_sec: i64::MIN,
            ts_str: String::new(),
        };
        for c in 0..ev.clocks.len() {
            ev.schedule_clock(c as u8, 0, 0);
        }
        ev
    }

    /// Schedules one line of an episode, clearing `clear` from the subscriber's flags when it
    /// is written; lines past the window are dropped, not clamped. Whether it was scheduled.
    pub(super) fn push(&mut self, t: Millis, sub: u32, ev: Ev, clear: u8) -> bool {
        if t >= self.m.cal.end() {
            return false;
        }
        self.seq += 1;
        self.debt += 1;
        self.heap.push(Item { t: t - t.rem_euclid(SECOND), seq: self.seq, what: What::Line { sub, ev, clear } });
        true
    }

    fn slots(&self) -> u64 {
        self.m.events as u64
    }

    /// Time of the current background tick: the slot's quantile of the diurnal density.
    fn peek_slot(&mut self) -> Option<Millis> {
        if self.slot >= self.slots() {
            return None;
        }
        if let Some(t) = self.slot_time {
            return Some(t);
        }
        let total = self.cum.last().copied().unwrap_or(0.0);
        let x = (self.slot as f64 + self.rng.unit()) / self.slots() as f64 * total;
        let hours = self.cum.len().saturating_sub(1);
        while self.hour_ptr + 1 < hours && self.cum[self.hour_ptr + 1] <= x {
            self.hour_ptr += 1;
        }
        let h = self.hour_ptr;
        let w = (self.cum[h + 1] - self.cum[h]).max(f64::MIN_POSITIVE);
        let within = ((x - self.cum[h]) / w).clamp(0.0, 0.999_999);
        let secs = h as i64 * 3600 + (within * 3600.0) as i64;
        let t = self.m.cal.start + secs * SECOND;
        self.slot_time = Some(t);
        Some(t)
    }

    pub(super) fn sub(&self, i: u32) -> Sub {
        Sub::derive(&self.m, i)
    }

    pub(super) fn balance_mut(&mut self, s: &Sub) -> Option<&mut i32> {
        let b = self.balance.get_mut(s.idx as usize)?;
        if *b == BALANCE_UNSET {
            *b = s.balance0;
        }
        Some(b)
    }

    pub(super) fn flag(&self, i: u32) -> u8 {
        self.flags.get(i as usize).copied().unwrap_or(0)
    }

    pub(super) fn set_flag(&mut self, i: u32, f: u8) {
        if let Some(x) = self.flags.get_mut(i as usize) {
            *x |= f;
        }
    }

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

    fn step(&mut self) -> Option<String> {
        while self.emitted < self.m.events {
            let bg = self.peek_slot();
            let take_heap = match (self.heap.peek(), bg) {
                (Some(it), Some(b)) => it.t <= b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            if take_heap {
                let it = self.heap.pop()?;
                match it.what {
                    What::Start { clock, day, idx } => {
                        self.schedule_clock(clock, day, idx + 1);
                        if let Some(ep) = self.clocks.get(clock as usize).map(|c| c.ep) {
                            self.episode(ep, it.t, day, idx);
                        }
                    }
                    What::Line { sub, ev, clear } => {
                        if let Some(f) = self.flags.get_mut(sub as usize) {
                            *f &= !clear;
                        }
                        let s = self.sub(sub);
                        return Some(self.render(it.t, &s, &ev));
                    }
                }
            } else {
                let t = bg?;
                self.slot += 1;
                self.slot_time = None;
                if self.debt > 0 {
                    self.debt -= 1;
                    continue;
                }
                if let Some(line) = self.background(t) {
                    return Some(line);
                }
            }
        }
        None
    }
}

impl Iterator for Events {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.step()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.m.events.saturating_sub(self.emitted);
        (0, Some(left))
    }
}
