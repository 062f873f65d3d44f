//! Subscribers answering the pack's offers whose moment the stream can tell without the
//! engine: the package and contract expiry warnings (the record's dates say the day) and the
//! silence gift (thirty days after a subscriber's last usage line). The other answers are
//! written by the episodes that lead to the offer (roaming, weather, churn, retention calls).
//! None of them draws from the random stream: every other line stays where it was.

use super::records::{Ev, R_LL, R_XD, R_XY};
use super::stream::Events;
use super::subscribers::contract_dates;
use crate::time::{DAY, HOUR, MINUTE, Millis};
use crate::util::mix64;

/// The pack's silence gift goes 30 days after the last usage, at 10:00; whoever still has none
/// the day after that may answer it that evening.
const SILENT_DAYS: usize = 31;

impl Events {
    /// One subscriber in eight warned that their package ends in 7 days (09:00) renews it by
    /// reply that morning; one in eight told their contract ends in 30 days asks about the
    /// renewal in the afternoon.
    pub(super) fn expiry_answers(&mut self) {
        let Some(first) = self.m.cal.info.first().map(|d| d.date) else { return };
        let days = i64::from(self.m.cal.days);
        for i in 0..self.m.n {
            let h = mix64(self.m.seed ^ 0xE8D1_2E57 ^ u64::from(i));
            if !h.is_multiple_of(8) {
                continue;
            }
            let [package, contract, _] = contract_dates(&self.m, i);
            let warned = |date: Option<chrono::NaiveDate>, ahead: i64| {
                let day = (date? - first).num_days() - ahead;
                (0..days).contains(&day).then_some(day)
            };
            if let Some(day) = warned(package, 7) {
                let at = self.day_start(day) + 9 * HOUR + (10 + (h >> 8) % 170) as i64 * MINUTE;
                self.push_later(at, i, Ev::Reply { text: R_XD });
            }
            if let Some(day) = warned(contract, 30) {
                let at = self.day_start(day) + 12 * HOUR + ((h >> 20) % 480) as i64 * MINUTE;
                self.push_later(at, i, Ev::Reply { text: R_XY });
            }
        }
    }

    /// A usage line for subscriber `i` at `t`: the day it falls on is their last usage so far.
    #[inline]
    pub(super) fn used(&mut self, i: u32, t: Millis) {
        let day = self.m.cal.day_of(t) as u16 + 1;
        if let Some(d) = self.last_use.get_mut(i as usize) {
            *d = day;
        }
    }

    /// Before the first line at `t`: for each day begun since the last look, three in four of those
    /// whose last usage was 31 days before (silent since, so the gift has gone) answer it in the
    /// evening.
    pub(super) fn watch_silence(&mut self, t: Millis) {
        let day = self.m.cal.day_of(t);
        while self.silence_day < day {
            self.silence_day += 1;
            let d = self.silence_day;
            if d < SILENT_DAYS {
                continue;
            }
            let since = (d - SILENT_DAYS + 1) as u16;
            let evening = self.day_start(d as i64) + 18 * HOUR;
            for i in 0..self.m.n {
                if self.last_use.get(i as usize) != Some(&since) {
                    continue;
                }
                let h = mix64(self.m.seed ^ 0x5113_0CE1 ^ u64::from(i));
                if !h.is_multiple_of(4) {
                    self.push_later(evening + ((h >> 8) % 120) as i64 * MINUTE, i, Ev::Reply { text: R_LL });
                }
            }
        }
    }

    /// Whether an answer scheduled days ahead (`push_later`) still answers something at `t`: the
    /// silence gift's claim only while the subscriber has stayed silent (no usage line since).
    pub(super) fn still_due(&self, i: u32, ev: &Ev, t: Millis) -> bool {
        match ev {
            Ev::Reply { text: R_LL } => {
                let last = self.last_use.get(i as usize).copied().unwrap_or(0);
                (last as usize) + SILENT_DAYS <= self.m.cal.day_of(t) + 1
            }
            _ => true,
        }
    }

    /// Local midnight of day `day` of the window.
    pub(super) fn day_start(&self, day: i64) -> Millis {
        self.m.cal.start + day * DAY
    }
}
