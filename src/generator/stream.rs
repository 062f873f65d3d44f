//! The event stream: background ticks and episode lines merged by time into exactly `events`
//! lines, with the little state kept per subscriber (a prepaid balance and a few flags).
//!
//! The background clock's ticks are quantiles of the diurnal density below; every line an
//! episode schedules goes into a min-heap and is paid for by skipping one background tick.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::clocks::{self, Clock};
use super::model::{GenOptions, Model};
use super::records::Ev;
use super::rng::Rng;
use super::subscribers::Sub;
use crate::time::{DAY, Millis, SECOND};

/// Relative traffic per local hour: quiet at night, peaks mid-morning and evening.
const DIURNAL: [f64; 24] = [
    2.0, 0.8, 0.5, 0.4, 0.4, 0.7, 1.8, 3.5, 5.0, 6.0, 6.5, 6.2, 5.5, 5.3, 5.6, 5.8, 5.8, 6.0, 6.2, 6.8, 7.0, 6.5, 5.0,
    3.5,
];

/// What waits in the heap.
#[derive(Clone, Copy)]
enum What {
    /// An episode clock's next start.
    Start { clock: u8, day: u32, idx: u32 },
    /// An episode's line, for subscriber `sub`; `clear` leaves their flags when it is written.
    /// `paid`: a background tick was skipped for it when it was scheduled; otherwise the tick
    /// after it is, when it is written.
    Line { sub: u32, ev: Ev, clear: u8, paid: bool },
}

/// A heap entry: what happens at `t`; `seq` is the order it was scheduled in.
struct Item {
    t: Millis,
    seq: u64,
    what: What,
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
/// The subscriber's 12593 last-calendar-month calls are scheduled.
pub(super) const F_LD_MONTH: u8 = 8;
const BALANCE_UNSET: i32 = i32::MIN;

/// The event lines of a run, in time order; made by [`events`](super::events).
pub struct Events {
    pub(super) m: Model,
    pub(super) rng: Rng,
    balance: Vec<i32>,
    flags: Vec<u8>,
    /// Each subscriber's last usage day so far, plus one (0: none yet), and the last day the
    /// silence watch looked at ([`answers`](super::answers)).
    pub(super) last_use: Vec<u16>,
    pub(super) silence_day: usize,
    heap: BinaryHeap<Item>,
    clocks: Vec<Clock>,
    seq: u64,
    /// Episode lines scheduled but not yet paid for by a skipped background tick.
    pub(super) debt: u64,
    /// Lines written so far; a line's id is `e` and its number.
    pub(super) emitted: usize,
    /// The last IVR session, order or complaint number given out.
    pub(super) serial: u64,
    /// Cumulative diurnal weight at each hour boundary of the window.
    cum: Vec<f64>,
    /// The background tick due next, its time once drawn, and the hour it falls in.
    slot: u64,
    slot_time: Option<Millis>,
    hour_ptr: usize,
    /// The last `ts` string written and its second: consecutive lines mostly share one.
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
        let clocks = clocks::clocks(&m);
        let mut ev = Events {
            m,
            rng,
            balance: vec![BALANCE_UNSET; n],
            flags: vec![0; n],
            last_use: vec![0; n],
            silence_day: 0,
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
        ev.expiry_answers();
        ev
    }

    /// Schedules the start of episode `idx` of day `day` of clock `clock` (the next day's first
    /// once the day's are all started).
    fn schedule_clock(&mut self, clock: u8, mut day: u32, mut idx: u32) {
        let Some(c) = self.clocks.get(clock as usize) else {
            return;
        };
        let (per_day, from, to) = (c.per_day.max(1), c.from, c.to);
        if idx >= per_day {
            day += 1;
            idx = 0;
        }
        if day >= self.m.cal.days {
            return;
        }
        let frac = (f64::from(idx) + self.rng.unit()) / f64::from(per_day);
        let t = self.m.cal.start + i64::from(day) * DAY + from + ((to - from) as f64 * frac) as i64;
        let t = t - t.rem_euclid(SECOND);
        self.seq += 1;
        self.heap.push(Item { t, seq: self.seq, what: What::Start { clock, day, idx } });
    }

    /// Schedules one line of an episode, clearing `clear` from the subscriber's flags when it
    /// is written; lines past the window are dropped, not clamped. Whether it was scheduled.
    #[inline]
    pub(super) fn push(&mut self, t: Millis, sub: u32, ev: Ev, clear: u8) -> bool {
        if t >= self.m.cal.end() {
            return false;
        }
        self.seq += 1;
        self.debt += 1;
        self.heap.push(Item {
            t: t - t.rem_euclid(SECOND),
            seq: self.seq,
            what: What::Line { sub, ev, clear, paid: true },
        });
        true
    }

    /// Schedules a line long before its time (days ahead): the background tick it replaces is the
    /// one after it, not the next one now, so the stream's density stays where it was.
    pub(super) fn push_later(&mut self, t: Millis, sub: u32, ev: Ev) -> bool {
        if t >= self.m.cal.end() {
            return false;
        }
        self.seq += 1;
        let what = What::Line { sub, ev, clear: 0, paid: false };
        self.heap.push(Item { t: t - t.rem_euclid(SECOND), seq: self.seq, what });
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

    /// SubscriberRecord `i`'s profile, derived again (profiles are not stored).
    #[inline]
    pub(super) fn sub(&self, i: u32) -> Sub {
        Sub::derive(&self.m, i)
    }

    /// The running balance, starting from the profile's.
    #[inline]
    pub(super) fn balance_mut(&mut self, s: &Sub) -> Option<&mut i32> {
        let b = self.balance.get_mut(s.idx as usize)?;
        if *b == BALANCE_UNSET {
            *b = s.balance0;
        }
        Some(b)
    }

    #[inline]
    pub(super) fn flag(&self, i: u32) -> u8 {
        self.flags.get(i as usize).copied().unwrap_or(0)
    }

    #[inline]
    pub(super) fn set_flag(&mut self, i: u32, f: u8) {
        if let Some(x) = self.flags.get_mut(i as usize) {
            *x |= f;
        }
    }

    /// The next line: the heap's earliest entry or the next background tick, whichever comes
    /// first (an episode start schedules its lines and the loop goes on; a tick owed to an
    /// episode line is skipped).
    fn step(&mut self) -> Option<String> {
        while self.emitted < self.m.events {
            let bg = self.peek_slot();
            // A new day: who has been silent long enough to answer the silence gift.
            let next = match (self.heap.peek(), bg) {
                (Some(it), Some(b)) => Some(it.t.min(b)),
                (Some(it), None) => Some(it.t),
                (None, b) => b,
            };
            if let Some(next) = next.filter(|t| self.m.cal.day_of(*t) > self.silence_day) {
                self.watch_silence(next);
            }
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
                    What::Line { sub, ev, clear, paid } => {
                        if !paid {
                            // Scheduled days ahead: what it answers may no longer be so.
                            if !self.still_due(sub, &ev, it.t) {
                                continue;
                            }
                            self.debt += 1;
                        }
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
