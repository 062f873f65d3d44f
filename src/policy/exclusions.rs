//! Steps 1 and 2: who may not be contacted. Exclusions (statuses, segments, tiers; global and
//! per rule, a rule lifting global ones with `include`) -> `excluded`; then do-not-disturb, the
//! operator's opt-out list and the subscriber's own opt-out of the channel (transactional
//! messages too, unless the rule says `ignore_dnd`) -> `dnd`.

use super::ContactPolicy;
use crate::contact::{Channel, Suppression};
use crate::refdata::{Profile, RefData};
use crate::rules::Rule;

impl ContactPolicy {
    /// Step 1: the first exclusion, global (unless the rule lifts it) or the rule's own, that
    /// applies to `sub`.
    pub(super) fn excluded(&self, rule: &Rule, sub: &Profile) -> Option<(Suppression, String)> {
        let p = &rule.policy;
        for x in self.global.exclude.iter().filter(|x| !p.include.contains(x)) {
            if x.applies(sub) {
                return Some((Suppression::Excluded, format!("excluded for everyone: {}", x.name())));
            }
        }
        for x in &p.exclude {
            if x.applies(sub) {
                return Some((Suppression::Excluded, format!("excluded by the rule: {}", x.name())));
            }
        }
        None
    }

    /// Step 2: do-not-disturb on `channel`, from the operator's opt-out list in `refdata` or
    /// the subscriber's own record.
    pub(super) fn dnd(
        &self,
        rule: &Rule,
        channel: Channel,
        sub: &Profile,
        refdata: &RefData,
    ) -> Option<(Suppression, String)> {
        let p = &rule.policy;
        if p.transactional && p.ignore_dnd {
            return None;
        }
        if refdata.optout.contains(&sub.msisdn) {
            return Some((Suppression::Dnd, "on the operator's opt-out list".to_string()));
        }
        if sub.dnd.blocks(channel) {
            let scope = if sub.dnd.all { "all channels".to_string() } else { format!("{channel}") };
            return Some((Suppression::Dnd, format!("the subscriber opted out of {scope}")));
        }
        None
    }
}
