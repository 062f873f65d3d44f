//! Step 3, frequency caps: per rule, per campaign, per channel and across all touchpoints, in
//! calendar or rolling windows, and the campaign's streak of consecutive months -> `cap`.
//! Transactional rules pass all but their own rule caps. Caps count the contact history the
//! subscriber's state keeps ([`ContactLog`]).

use super::ContactPolicy;
use crate::contact::{Decision, Suppression};
use crate::rules::Rule;
use crate::state::{ContactLog, ContactRec};
use crate::time::{DAY, Millis, parse_duration};
use chrono::Datelike;

/// How a frequency cap counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CapWindow {
    /// The same calendar day / week (Monday first) / month in the subscriber's local time.
    Calendar(CalendarUnit),
    /// The last N milliseconds.
    Rolling(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarUnit {
    Day,
    Week,
    Month,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cap {
    pub max: u32,
    pub window: CapWindow,
    /// The text as declared, for explain and decision details.
    pub text: String,
}

impl Cap {
    /// How far back this cap may look.
    pub fn reach(&self) -> i64 {
        match self.window {
            CapWindow::Rolling(w) => w,
            CapWindow::Calendar(CalendarUnit::Day) => DAY,
            CapWindow::Calendar(CalendarUnit::Week) => 7 * DAY,
            CapWindow::Calendar(CalendarUnit::Month) => 31 * DAY,
        }
    }

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

/// Local calendar period index of a time (for calendar caps and streaks).
pub fn period(ts: Millis, unit: CalendarUnit, offset: chrono::FixedOffset) -> i64 {
    let days = (ts + i64::from(offset.local_minus_utc()) * 1000).div_euclid(DAY);
    match unit {
        CalendarUnit::Day => days,
        // 1970-01-01 was a Thursday; shift so weeks start on Monday.
        CalendarUnit::Week => (days + 3).div_euclid(7),
        CalendarUnit::Month => {
            let d = chrono::DateTime::from_timestamp(days * 86_400, 0).map(|t| t.date_naive());
            d.map_or(0, |d| i64::from(d.year()) * 12 + i64::from(d.month0()))
        }
    }
}

/// `3 per month`, `1 per 7d`, `2 per day`, `5 per week`.
pub fn parse_cap(s: &str) -> Result<Cap, String> {
    let bad = || format!("`{s}` is not a cap; write e.g. `3 per month` or `1 per 7d`");
    let (n, w) = s.split_once(" per ").ok_or_else(bad)?;
    let max: u32 = n.trim().parse().map_err(|_| bad())?;
    let window = match w.trim() {
        "day" => CapWindow::Calendar(CalendarUnit::Day),
        "week" => CapWindow::Calendar(CalendarUnit::Week),
        "month" => CapWindow::Calendar(CalendarUnit::Month),
        other => CapWindow::Rolling(parse_duration(other).map_err(|_| bad())?),
    };
    if let CapWindow::Rolling(w) = window {
        if w <= 0 {
            return Err(bad());
        }
    }
    Ok(Cap { max, window, text: s.trim().to_string() })
}

/// `3 months`.
pub fn parse_streak(s: &str) -> Result<u32, String> {
    let bad = || format!("`{s}` is not a streak; write e.g. `3 months`");
    let n = s.trim().strip_suffix("months").or_else(|| s.trim().strip_suffix("month")).ok_or_else(bad)?;
    n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(bad)
}

impl ContactPolicy {
    /// The first cap `d` would break, counted over `log`: the rule's own, then (unless
    /// transactional) the campaign's, its streak, the channel's and the global ones.
    pub(super) fn caps(&self, rule: &Rule, ri: u32, d: &Decision, log: &ContactLog) -> Option<(Suppression, String)> {
        let (p, global, offset) = (&rule.policy, &self.global, self.offset);
        let now = d.ts;
        let full = |cap: &Cap, n: u32, whose: String| {
            (n >= cap.max).then(|| (Suppression::Cap, format!("cap \"{}\" of {whose} reached ({n} already)", cap.text)))
        };
        for cap in &p.caps {
            let n = cap.count(log, now, offset, |r| u32::from(r.rule) == ri);
            if let Some(s) = full(cap, n, format!("rule {}", rule.name)) {
                return Some(s);
            }
        }
        if p.transactional {
            return None;
        }
        let campaign = &self.rules.campaigns[rule.campaign_idx as usize];
        for cap in &campaign.caps {
            let n = cap.count(log, now, offset, |r| r.campaign == rule.campaign_idx && !r.transactional);
            if let Some(s) = full(cap, n, format!("campaign {}", campaign.name)) {
                return Some(s);
            }
        }
        if let Some(k) = campaign.streak_months {
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
            let n = cap.count(log, now, offset, |r| r.channel == d.channel && !r.transactional);
            if let Some(s) = full(cap, n, format!("channel {}", d.channel)) {
                return Some(s);
            }
        }
        for cap in &global.caps {
            let n = cap.count(log, now, offset, |r| !r.transactional);
            if let Some(s) = full(cap, n, "all touchpoints".to_string()) {
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
    fn periods_follow_local_calendar() {
        let p = |s: &str, u| period(crate::time::parse_ts(s).unwrap(), u, cst());
        // 2026-11-30 23:59 and 2026-12-01 00:00 local are different months, though both are
        // 2026-11-30 in UTC.
        assert_ne!(
            p("2026-11-30T23:59:00+08:00", CalendarUnit::Month),
            p("2026-12-01T00:00:00+08:00", CalendarUnit::Month)
        );
        assert_eq!(
            p("2026-12-01T00:00:00+08:00", CalendarUnit::Month),
            p("2026-12-31T23:59:00+08:00", CalendarUnit::Month)
        );
        assert_eq!(
            p("2026-12-31T23:00:00+08:00", CalendarUnit::Month) + 1,
            p("2027-01-01T00:30:00+08:00", CalendarUnit::Month)
        );
        // 2026-11-23 is a Monday.
        assert_eq!(
            p("2026-11-23T00:00:00+08:00", CalendarUnit::Week),
            p("2026-11-29T23:59:00+08:00", CalendarUnit::Week)
        );
        assert_ne!(
            p("2026-11-22T23:59:00+08:00", CalendarUnit::Week),
            p("2026-11-23T00:00:00+08:00", CalendarUnit::Week)
        );
    }

    /// Windows come from rules (at most 100 years since issue 16), but a sum that wrapped would
    /// turn "within the window" into "never" or "always": the arithmetic saturates.
    #[test]
    fn a_window_reaching_past_the_start_of_time_does_not_wrap() {
        let rec = |ts| ContactRec { ts, id: 1, rule: 0, campaign: 0, channel: Channel::Sms, transactional: false };
        let mut log = ContactLog::default();
        log.record(rec(-5_000), i64::MAX, None);
        log.record(rec(1_000), i64::MAX, None);
        let cap = Cap { max: 1, window: CapWindow::Rolling(i64::MAX), text: String::new() };
        assert_eq!(cap.count(&log, 2_000, cst(), |_| true), 2);
    }

    #[test]
    fn a_streak_is_exceeded_only_by_one_more_consecutive_month() {
        let rec = |ts| ContactRec { ts, id: 1, rule: 0, campaign: 7, channel: Channel::Sms, transactional: false };
        let month = |s: &str| crate::time::parse_ts(s).unwrap();
        let mut log = ContactLog::default();
        for t in ["2026-09-10T10:00:00+08:00", "2026-10-10T10:00:00+08:00"] {
            log.record(rec(month(t)), 100 * DAY, Some(period(month(t), CalendarUnit::Month, cst())));
        }
        let at = |s| streak_exceeded(&log, 7, 2, month(s), cst());
        assert_eq!(at("2026-11-01T00:00:00+08:00"), Some(2), "a third month in a row");
        assert_eq!(at("2026-10-31T23:00:00+08:00"), None, "the same month again");
        assert_eq!(at("2026-12-01T00:00:00+08:00"), None, "after a month's gap the run starts again");
        assert_eq!(streak_exceeded(&log, 8, 2, month("2026-11-01T00:00:00+08:00"), cst()), None, "another campaign");
    }

    #[test]
    fn declarations_parse() {
        assert_eq!(parse_cap("3 per month").unwrap().window, CapWindow::Calendar(CalendarUnit::Month));
        assert_eq!(parse_cap("1 per 7d").unwrap().window, CapWindow::Rolling(7 * DAY));
        assert!(parse_cap("3 a month").is_err());
        assert_eq!(parse_streak("3 months").unwrap(), 3);
    }
}
