//! Step 0, the campaign's plan: a campaign that is not on decides nothing new -> `campaign_off`.
//! It is off before its `start`, from its `end` on (both local, in the engine's offset), and
//! whenever its `status` is `paused` or `ended`. The moment that counts is the contact's own
//! event time as policy decides it: a timer, a journey step or a contact held for quiet hours
//! that comes due outside the dates is suppressed `campaign_off`, never sent — whenever the
//! subscriber's trigger happened. Every candidate of the campaign stops here, orders and
//! requests (`request: true`) too: the campaign's owner switched it off.
//!
//! The budget is the other half of a campaign's plan, but it is counted over every shard at
//! once, after them ([`super::budget`]).

use super::ContactPolicy;
use crate::contact::{Decision, Suppression};
use crate::rules::Rule;
use crate::rules::policy::CampaignStatus;

impl ContactPolicy {
    /// Step 0: the rule's campaign is off at the decision's time.
    pub(super) fn campaign_off(&self, rule: &Rule, d: &Decision) -> Option<(Suppression, String)> {
        let c = &self.rules.campaigns[rule.campaign_idx as usize];
        if c.status != CampaignStatus::Active {
            return Some((Suppression::CampaignOff, format!("campaign {} is {}", c.name, c.status.as_str())));
        }
        if c.dates.is_open() {
            return None;
        }
        let side = c.dates.outside(d.ts, self.offset)?;
        let (start, end) = (c.dates.start_text.as_deref(), c.dates.end_text.as_deref());
        // An end written as a date is the whole of that day.
        let to = |e: &str| if e.len() == 10 { format!("through {e}") } else { format!("until {e}") };
        let runs = match (start, end) {
            (Some(s), Some(e)) => format!("runs {s} {}", to(e)),
            (Some(s), None) => format!("starts {s}"),
            (None, e) => format!("ran {}", to(e.unwrap_or(""))),
        };
        let at = crate::time::format_ts(d.ts, self.offset);
        let detail = format!("campaign {} {runs} (local); this contact at {at} is {side} it", c.name);
        Some((Suppression::CampaignOff, detail))
    }
}
