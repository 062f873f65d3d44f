//! Step 6, quiet hours: in the subscriber's local time a contact is deferred to their end
//! (`quiet_hours` if it would expire first), dropped, or sent anyway, as its rule says. IVR
//! answers are never held: the caller is on the line; nor are orders: the subscriber asked. A deferred contact is held by the shard
//! as a timer of the subscriber and decided again, as the same action, when they end.

use super::ContactPolicy;
use crate::contact::{Channel, Decision, Outcome, Suppression};
use crate::rules::expr::Local;
use crate::rules::policy::QuietFate;
use crate::time::format_ts;

impl ContactPolicy {
    /// True when quiet hours decided `d` (dropped, expired, or deferred to their end); false
    /// when the contact goes now.
    pub(super) fn quiet_hours(&self, d: &mut Decision) -> bool {
        let p = &self.rules.rules[d.rule as usize].policy;
        let quiet = p.quiet_hours.or(self.global.quiet_hours);
        let local = Local::at(d.ts, self.offset);
        let minute = |l: Local| l.hour * 60 + l.minute;
        let in_quiet = !matches!(d.channel, Channel::Ivr | Channel::Order)
            && p.quiet != QuietFate::Ignore
            && quiet.is_some_and(|q| {
                q.contains(minute(local))
                    && (!p.quiet_at_trigger || q.contains(minute(Local::at(d.trigger.ts, self.offset))))
            });
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
