//! Steps 1 and 2: who may not be contacted. Exclusions (statuses, segments, tiers; global and
//! per rule, a rule lifting global ones with `include`; a rule's own may name the pack's
//! derived attributes, read from the subscriber's state) -> `excluded`; then do-not-disturb, the
//! operator's opt-out list, the refusals the subscriber made by reply (`TD`: from the reply's
//! event time on, never for transactional messages) and the subscriber's own opt-out of the
//! channel (transactional messages too, unless the rule says `ignore_dnd`) -> `dnd`.

use super::ContactPolicy;
use crate::contact::{Decision, OptOut, Suppression};
use crate::refdata::{Profile, RefData};
use crate::rules::Rule;
use crate::state::SubState;

impl ContactPolicy {
    /// Step 1: the first exclusion, global (unless the rule lifts it) or the rule's own, that
    /// applies to `sub`, whose derived attributes are read from `st` (only by an exclusion of
    /// one: the list is not fetched for the others).
    pub(super) fn excluded(&self, rule: &Rule, sub: &Profile, st: &SubState) -> Option<(Suppression, String)> {
        let p = &rule.policy;
        let derives = &self.rules.derives;
        for x in self.global.exclude.iter().filter(|x| !p.include.contains(x)) {
            if x.applies(sub, st) {
                return Some((Suppression::Excluded, format!("excluded for everyone: {}", x.name(derives))));
            }
        }
        for x in &p.exclude {
            if x.applies(sub, st) {
                return Some((Suppression::Excluded, format!("excluded by the rule: {}", x.name(derives))));
            }
        }
        None
    }

    /// Step 2: do-not-disturb on `channel`, from the operator's opt-out list in `refdata` or
    /// the subscriber's own record.
    pub(super) fn dnd(
        &self,
        rule: &Rule,
        d: &Decision,
        sub: &Profile,
        refdata: &RefData,
        optouts: &[OptOut],
    ) -> Option<(Suppression, String)> {
        let p = &rule.policy;
        let channel = d.channel;
        if p.transactional && p.ignore_dnd {
            return None;
        }
        if refdata.optout.contains(&sub.msisdn) {
            return Some((Suppression::Dnd, "on the operator's opt-out list".to_string()));
        }
        // Refusals by reply: this run's (in the state) and earlier runs' (the journal).
        let journaled = refdata.optout_journal.read(sub.msisdn);
        let refused = optouts.iter().chain(journaled).find(|o| o.covers(d.ts, channel, &d.campaign, p.transactional));
        if let Some(o) = refused {
            return Some((Suppression::Dnd, o.describe()));
        }
        if sub.dnd().blocks(channel) {
            let scope = if sub.dnd().all { "all channels".to_string() } else { format!("{channel}") };
            return Some((Suppression::Dnd, format!("the subscriber opted out of {scope}")));
        }
        None
    }
}
