//! The contact history a subscriber's state keeps: only what the declared caps need (records
//! older than the longest cap window are dropped) plus, per campaign with a streak cap, the
//! last month reached and the length of the run.

use super::{CalendarUnit, Cap, CapWindow, period};
use crate::contact::Channel;
use crate::state::ThinSlice;
use crate::time::Millis;

/// One decided contact. 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContactRec {
    pub ts: Millis,
    /// Low 64 bits of the action id's hash (arbitration names the winner by it).
    pub id: u64,
    pub rule: u16,
    pub campaign: u16,
    pub channel: Channel,
    pub transactional: bool,
}

/// Exact-size lists behind thin pointers: most subscribers with a history have one or two
/// contacts in it.
#[derive(Clone, Debug, Default)]
pub struct ContactLog {
    pub recent: ThinSlice<ContactRec>,
    /// (campaign, local month index last reached, consecutive months up to it)
    pub streaks: ThinSlice<(u16, i64, u32)>,
}

impl ContactLog {
    /// Contacts matching `pred` that fall in the cap's window ending at `now`.
    pub fn count(
        &self,
        cap: &Cap,
        now: Millis,
        offset: chrono::FixedOffset,
        pred: impl Fn(&ContactRec) -> bool,
    ) -> u32 {
        let in_window = |r: &ContactRec| match cap.window {
            CapWindow::Rolling(w) => r.ts > now.saturating_sub(w) && r.ts <= now,
            CapWindow::Calendar(u) => r.ts <= now && period(r.ts, u, offset) == period(now, u, offset),
        };
        self.recent.iter().filter(|r| pred(r) && in_window(r)).count() as u32
    }

    /// Whether reaching `campaign` at `now` would make more than `max` consecutive months.
    pub fn streak_exceeded(&self, campaign: u16, max: u32, now: Millis, offset: chrono::FixedOffset) -> Option<u32> {
        let month = period(now, CalendarUnit::Month, offset);
        let (_, last, run) = *self.streaks.iter().find(|s| s.0 == campaign)?;
        let next = if last == month {
            return None;
        } else if last == month - 1 {
            run + 1
        } else {
            1
        };
        (next > max).then_some(run)
    }

    /// Records a decided contact; forgets what no cap can see any more.
    pub fn record(&mut self, rec: ContactRec, keep: i64, streak: bool, offset: chrono::FixedOffset) {
        if streak {
            let month = period(rec.ts, CalendarUnit::Month, offset);
            match self.streaks.iter_mut().find(|s| s.0 == rec.campaign) {
                Some(s) if s.1 == month => {}
                Some(s) => {
                    s.2 = if s.1 == month - 1 { s.2 + 1 } else { 1 };
                    s.1 = month;
                }
                None => self.streaks.edit(|v| v.push((rec.campaign, month, 1))),
            }
        }
        let newest = self.recent.iter().map(|r| r.ts).max().unwrap_or(rec.ts).max(rec.ts);
        self.recent.edit(|v| {
            v.retain(|r| r.ts > newest.saturating_sub(keep));
            if keep > 0 {
                v.push(rec);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows come from rules (at most 100 years since issue 16), but a sum that wrapped would
    /// turn "within the window" into "never" or "always": the arithmetic saturates.
    #[test]
    fn a_window_reaching_past_the_start_of_time_does_not_wrap() {
        let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let rec = |ts| ContactRec { ts, id: 1, rule: 0, campaign: 0, channel: Channel::Sms, transactional: false };
        let mut log = ContactLog::default();
        log.record(rec(-5_000), i64::MAX, false, offset);
        log.record(rec(1_000), i64::MAX, false, offset);
        assert_eq!(log.recent.iter().count(), 2, "nothing is old enough to forget");
        let cap = Cap { max: 1, window: CapWindow::Rolling(i64::MAX), text: String::new() };
        assert_eq!(log.count(&cap, 2_000, offset, |_| true), 2);
    }
}
