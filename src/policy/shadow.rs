//! Shadow rules (`mode: shadow`): their candidates are decided by the same steps in the same
//! order as live ones, so a shadow decision says what the rule would do if it were deployed
//! beside the live rules as they stand. What it must not do is change anything live:
//!
//! - caps count the live contact history *plus* the shadow rules' own would-be contacts (kept
//!   in [`ShadowContacts`], never in the subscriber's state): a shadow rule meets the live
//!   rules' caps and its own, while live rules never see a shadow contact — no live cap slot
//!   is taken;
//! - arbitration: the live contacts of this trigger keep it; a shadow candidate they compete with and
//!   that they outrank loses (`arbitration`, naming the live winner), one that outranks them is a
//!   would-be action beside them (the live one still goes: live decisions are final);
//! - quiet hours defer as live (a shadow timer in the state, decided again as shadow when it
//!   ends);
//! - channel capacity is not applied: the rate limiter is the live gateway's budget, and a
//!   shadow decision bypasses it (see [`super::capacity::Capacity::offer`]) rather than delay
//!   live contacts.

use super::{ContactPolicy, DecideCtx};
use crate::contact::{Candidate, Decision, Outcome};
use crate::refdata::Profile;
use crate::rules::RuleSet;
use crate::state::{ContactLog, Remap, SubState};
use std::collections::HashMap;

/// Shadow rules' would-be contact history, by subscriber number. Kept beside the subscribers'
/// state, not in it: live policy never reads it, and a checkpoint of the live state has no
/// part of it.
#[derive(Default)]
pub struct ShadowContacts(HashMap<u64, ContactLog>);

impl ShadowContacts {
    pub fn new() -> ShadowContacts {
        ShadowContacts::default()
    }

    /// Carries the would-be history over to a new rule set (reload). It follows its rules by
    /// name; a rule that left the pack or went live takes its would-be contacts with it (live
    /// caps never counted them).
    pub fn remap(&mut self, remap: &Remap, new: &RuleSet) {
        self.0.retain(|_, log| {
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
    }
}

impl ContactPolicy {
    /// Shadow rules' candidates of one trigger, decided after `live`, this trigger's live
    /// decisions; `state` is the subscriber's live state (its contact history, its refusals).
    pub(super) fn shadow(
        &self,
        cx: &mut DecideCtx,
        cands: Vec<Candidate>,
        live: &[Decision],
        sub: &Profile,
        state: &SubState,
        out: &mut Vec<Decision>,
    ) {
        let raw = sub.msisdn.raw();
        let mut log = state.contacts().clone();
        if let Some(own) = cx.shadow.0.get(&raw) {
            log.recent.edit(|v| {
                v.extend(own.recent.iter().copied());
                v.sort_by_key(|r| r.ts);
            });
            log.streaks.edit(|v| {
                for s in own.streaks.iter() {
                    match v.iter_mut().find(|x| x.0 == s.0) {
                        Some(x) if x.1 < s.1 => *x = *s,
                        Some(_) => {}
                        None => v.push(*s),
                    }
                }
            });
        }
        let who = super::Who { sub, refdata: cx.refdata, optouts: state.optouts(), state };
        let survivors = self.screen(cands, &who, &log, out);
        let live_held: Vec<&Decision> =
            live.iter().filter(|w| matches!(w.outcome, Outcome::Sent | Outcome::Deferred(_))).collect();
        let winners = self.arbitrate(survivors, &live_held, &log, out);
        self.make_contacts(winners, cx.shadow.0.entry(raw).or_default(), out);
    }
}
