//! Hot reload on a shard: a new rule set swapped in between two batches, every subscriber's
//! state carried over.

use super::{PolicySetup, Shard};
use crate::rules::RuleSet;
use crate::util::Millis;
use std::sync::Arc;

impl Shard {
    /// Swaps in a new rule set between two batches (hot reload), carrying every subscriber's
    /// state over: rules and campaigns are matched by name, windows and sequences by their
    /// definition; what is gone is dropped (timers) or retired (contact history keeps counting
    /// toward caps across all touchpoints). `now` is the watermark: new daily rules start ticking
    /// after it.
    pub fn reload(&mut self, new: Arc<RuleSet>, now: Millis) {
        use crate::state::checkpoint::RuleShape;
        let remap = RuleShape::of(&self.rules).remap_to(&RuleShape::of(&new));
        self.snapshot_finish();
        self.timers.clear();
        for e in self.subs.iter_mut() {
            e.state.remap(&remap);
            let raw = e.sub.msisdn.raw();
            for t in e.state.timers() {
                self.timers.insert(t.index_key(raw));
            }
        }
        // Shadow rules' would-be history follows its rules by name; a rule that left the pack or
        // went live takes its would-be contacts with it (live caps never counted them).
        self.shadow_contacts.retain(|_, log| {
            log.recent.edit(|v| {
                v.retain_mut(|c| {
                    let Some(r) = remap.rules.get(usize::from(c.rule)).copied().flatten() else { return false };
                    let Some(camp) = remap.campaigns.get(usize::from(c.campaign)).copied().flatten() else {
                        return false;
                    };
                    (c.rule, c.campaign) = (r as u16, camp);
                    new.rules[r as usize].shadow
                })
            });
            log.streaks.edit(|v| {
                v.retain_mut(|s| match remap.campaigns.get(usize::from(s.0)).copied().flatten() {
                    Some(c) => {
                        s.0 = c;
                        true
                    }
                    None => false,
                })
            });
            !log.recent.is_empty() || !log.streaks.is_empty()
        });
        self.policy = Arc::new(PolicySetup::new(self.policy.global.clone(), &new));
        self.ticks.carry(&new, now, self.offset);
        self.rules = new;
    }
}
