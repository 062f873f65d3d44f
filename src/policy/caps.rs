//! Step 3, frequency caps: per rule, per campaign, per channel and across all touchpoints, in
//! calendar or rolling windows, and the campaign's streak of consecutive months -> `cap`.
//! Transactional rules and orders pass all but their own rule caps, and only marketing contacts
//! count toward the shared caps. A contact answering the subscriber's own request
//! (`request: true`) passes its campaign's caps and streak and counts toward neither. Caps count the contact history the subscriber's state keeps
//! ([`ContactLog`]).

use super::ContactPolicy;
use crate::contact::{Decision, Suppression};
use crate::rules::Rule;
use crate::rules::policy::{CalendarUnit, Cap, CapWindow, period};
use crate::state::{ContactLog, ContactRec};
use crate::time::Millis;

impl Cap {
    /// Contacts of `log` matching `pred` that fall in this cap's window ending at `now`.
    pub fn count(
        &self,
        log: &ContactLog,
        now: Millis,
        offset: chrono::FixedOffset,
        pred: impl Fn(&ContactRec) -> bool,
    ) -> u32 {
        let in_window = |r: &ContactRec| match self.window {
            CapWindow::Rolling(w) => r.ts > now.saturating_sub(w) && r.ts <= now,
            CapWindow::Calendar(u) => r.ts <= now && period(r.ts, u, offset) == period(now, u, offset),
        };
        log.recent.iter().filter(|r| pred(r) && in_window(r)).count() as u32
    }
}

/// Whether reaching `campaign` at `now` would make more than `max` consecutive months: the run
/// so far, if so.
fn streak_exceeded(log: &ContactLog, campaign: u16, max: u32, now: Millis, offset: chrono::FixedOffset) -> Option<u32> {
    let month = period(now, CalendarUnit::Month, offset);
    let (_, last, run) = *log.streaks.iter().find(|s| s.0 == campaign)?;
    let next = if last == month {
        return None;
    } else if last == month - 1 {
        run + 1
    } else {
        1
    };
    (next > max).then_some(run)
}

impl ContactPolicy {
    /// The first cap `d` would break, counted over `log`: the rule's own, then (unless
    /// transactional or an order) the campaign's, its streak, the channel's and the global ones.
    pub(super) fn caps(&self, rule: &Rule, ri: u32, d: &Decision, log: &ContactLog) -> Option<(Suppression, String)> {
        let (p, global, offset) = (&rule.policy, &self.global, self.offset);
        let now = d.ts;
        // Whose cap it is, in words, only for one that is reached.
        let full = |cap: &Cap, n: u32, whose: &dyn std::fmt::Display| {
            (n >= cap.max).then(|| (Suppression::Cap, format!("cap \"{}\" of {whose} reached ({n} already)", cap.text)))
        };
        for cap in &p.caps {
            let n = cap.count(log, now, offset, |r| u32::from(r.rule) == ri);
            if let Some(s) = full(cap, n, &format_args!("rule {}", rule.name)) {
                return Some(s);
            }
        }
        if p.transactional || !d.channel.is_contact() {
            return None;
        }
        let campaign = &self.rules.campaigns[rule.campaign_idx as usize];
        // The subscriber's own request is not held to the campaign's limits on its offers.
        let offer = !p.request;
        for cap in campaign.caps.iter().filter(|_| offer) {
            let n = cap.count(log, now, offset, |r| r.campaign == rule.campaign_idx && r.counts_toward_campaign());
            if let Some(s) = full(cap, n, &format_args!("campaign {}", campaign.name)) {
                return Some(s);
            }
        }
        if let Some(k) = campaign.streak_months.filter(|_| offer) {
            if let Some(run) = streak_exceeded(log, rule.campaign_idx, k, now, offset) {
                return Some((
                    Suppression::Cap,
                    format!(
                        "streak: campaign {} reached the subscriber {run} months in a row (at most {k})",
                        campaign.name
                    ),
                ));
            }
        }
        for cap in &global.channel_caps[d.channel as usize] {
            let n = cap.count(log, now, offset, |r| r.channel == d.channel && r.counts_toward_shared_caps());
            if let Some(s) = full(cap, n, &format_args!("channel {}", d.channel)) {
                return Some(s);
            }
        }
        for cap in &global.caps {
            let n = cap.count(log, now, offset, |r| r.counts_toward_shared_caps());
            if let Some(s) = full(cap, n, &"all touchpoints") {
                return Some(s);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::Channel;

    fn cst() -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(8 * 3600).unwrap()
    }

    #[test]
    fn a_window_reaching_past_the_start_of_time_does_not_wrap() {
        let rec =
            |ts| ContactRec { ts, id: 1, rule: 0, campaign: 0, channel: Channel::Sms, transactional: false, flags: 0 };
        let mut log = ContactLog::default();
        log.record(rec(-5_000), i64::MAX, None);
        log.record(rec(1_000), i64::MAX, None);
        let cap = Cap { max: 1, window: CapWindow::Rolling(i64::MAX), text: String::new() };
        assert_eq!(cap.count(&log, 2_000, cst(), |_| true), 2);
    }

    #[test]
    fn a_streak_is_exceeded_only_by_one_more_consecutive_month() {
        let rec =
            |ts| ContactRec { ts, id: 1, rule: 0, campaign: 7, channel: Channel::Sms, transactional: false, flags: 0 };
        let month = |s: &str| crate::time::parse_ts(s).unwrap();
        let mut log = ContactLog::default();
        for t in ["2026-09-10T10:00:00+08:00", "2026-10-10T10:00:00+08:00"] {
            log.record(rec(month(t)), 100 * crate::time::DAY, Some(period(month(t), CalendarUnit::Month, cst())));
        }
        let at = |s| streak_exceeded(&log, 7, 2, month(s), cst());
        assert_eq!(at("2026-11-01T00:00:00+08:00"), Some(2), "a third month in a row");
        assert_eq!(at("2026-10-31T23:00:00+08:00"), None, "the same month again");
        assert_eq!(at("2026-12-01T00:00:00+08:00"), None, "after a month's gap the run starts again");
        assert_eq!(streak_exceeded(&log, 8, 2, month("2026-11-01T00:00:00+08:00"), cst()), None, "another campaign");
    }
}
