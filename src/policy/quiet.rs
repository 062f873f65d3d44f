//! Step 6, quiet hours: in the subscriber's local time a contact is deferred to their end
//! (`quiet_hours` if it would expire first), dropped, or sent anyway, as its rule says. IVR
//! answers are never held: the caller is on the line. A deferred contact is held by the shard
//! as a timer of the subscriber and decided again, as the same action, when they end.

use super::ContactPolicy;
use crate::contact::{Channel, Decision, Outcome, Suppression};
use crate::rules::expr::Local;
use crate::time::{DAY, MINUTE, Millis, format_ts};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QuietFate {
    /// Send when the quiet period ends (unless expired by then).
    #[default]
    Defer,
    Drop,
    /// Quiet hours do not apply (a reply the subscriber asked for, an IVR answer).
    Ignore,
}

/// Local quiet hours as minutes after midnight, `[from, to)`, wrapping midnight when from > to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub from: u32,
    pub to: u32,
}

impl QuietHours {
    /// `22:00-08:00`.
    pub fn parse(s: &str) -> Result<QuietHours, String> {
        let bad = || format!("`{s}` is not a quiet period; write e.g. `22:00-08:00`");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        Ok(QuietHours { from: hhmm(a).ok_or_else(bad)?, to: hhmm(b).ok_or_else(bad)? })
    }

    pub fn contains(self, minute_of_day: u32) -> bool {
        if self.from <= self.to {
            (self.from..self.to).contains(&minute_of_day)
        } else {
            minute_of_day >= self.from || minute_of_day < self.to
        }
    }

    /// The end of the quiet period that `now` falls in (local time via `offset`).
    pub fn end_after(self, now: Millis, offset: chrono::FixedOffset) -> Millis {
        let off = i64::from(offset.local_minus_utc()) * 1000;
        let local = now + off;
        let day_start = local.div_euclid(DAY) * DAY;
        let minute = (local - day_start) / MINUTE;
        let mut end = day_start + i64::from(self.to) * MINUTE;
        if self.from > self.to && minute >= i64::from(self.from) {
            end += DAY;
        }
        end - off
    }
}

/// `HH:MM` as minutes after midnight.
pub fn hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && m.to_string().len() <= 2).then_some(h * 60 + m)
}

impl ContactPolicy {
    /// True when quiet hours decided `d` (dropped, expired, or deferred to their end); false
    /// when the contact goes now.
    pub(super) fn quiet_hours(&self, d: &mut Decision) -> bool {
        let p = &self.rules.rules[d.rule as usize].policy;
        let quiet = p.quiet_hours.or(self.global.quiet_hours);
        let local = Local::at(d.ts, self.offset);
        let in_quiet = d.channel != Channel::Ivr
            && p.quiet != QuietFate::Ignore
            && quiet.is_some_and(|q| q.contains(local.hour * 60 + local.minute));
        let (true, Some(q)) = (in_quiet, quiet) else { return false };
        let window = format!("{:02}:{:02}-{:02}:{:02}", q.from / 60, q.from % 60, q.to / 60, q.to % 60);
        if p.quiet == QuietFate::Drop {
            d.outcome = Outcome::Suppressed(Suppression::QuietHours);
            d.detail = Some(format!("quiet hours {window}: this rule drops contacts then"));
            return true;
        }
        let end = q.end_after(d.ts, self.offset);
        if d.expires.is_some_and(|e| e < end) {
            d.outcome = Outcome::Suppressed(Suppression::QuietHours);
            d.detail = Some(format!(
                "quiet hours {window}: the contact expires at {}, before they end",
                format_ts(d.expires.unwrap_or_default(), self.offset)
            ));
            return true;
        }
        d.outcome = Outcome::Deferred(end);
        d.detail = Some(format!("quiet hours {window}: held until they end"));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_wrap_midnight_and_end_in_local_time() {
        let cst = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let q = QuietHours::parse("22:00-08:00").unwrap();
        assert!(q.contains(23 * 60) && q.contains(0) && q.contains(7 * 60 + 59) && !q.contains(8 * 60));
        let t = crate::time::parse_ts("2026-11-24T23:30:00+08:00").unwrap();
        assert_eq!(q.end_after(t, cst), crate::time::parse_ts("2026-11-25T08:00:00+08:00").unwrap());
        let t = crate::time::parse_ts("2026-11-25T06:00:00+08:00").unwrap();
        assert_eq!(q.end_after(t, cst), crate::time::parse_ts("2026-11-25T08:00:00+08:00").unwrap());
        assert!(QuietHours::parse("25:00-08:00").is_err());
        assert!(QuietHours::parse("22h").is_err());
    }
}
