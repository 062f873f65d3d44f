//! A rule's pending timer, kept with its subscriber's state (checkpointed, explained, carried
//! over a reload by rule name).

use super::kept;
use crate::contact::{Deferred, TriggerRef, Written};
use crate::time::Millis;

/// A rule's pending timer (a delay or an absence check).
#[derive(Clone, Debug)]
pub struct PendingTimer {
    pub due: Millis,
    /// Index of the rule in the rule set that armed it.
    pub rule: u32,
    pub trigger: TriggerRef,
    /// Input position of the event that armed it; a timer never fires before that point.
    pub armed_at: u64,
    /// What the rule wrote when it fired (it may quote the triggering event).
    pub written: Written,
    /// A contact held for the end of quiet hours (not a rule's own timer): its action id and
    /// expiry.
    pub deferred: Option<Deferred>,
    /// What the rule's `cancel_if` and `recheck` read as `armed.PATH`: the values when armed.
    pub kept: kept::KeptValues,
}

impl PendingTimer {
    /// The key of this timer in the shard's due-time index.
    pub fn index_key(&self, msisdn: u64) -> (Millis, u64, u32, u64, bool) {
        (self.due, msisdn, self.rule, self.armed_at, self.deferred.is_some())
    }
}
