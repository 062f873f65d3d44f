//! Step 5, arbitration: one contact per channel per trigger (and per `arbitration_window`),
//! highest priority first, then pack order -> `arbitration`, naming the winner. Orders compete
//! only with the other orders of their trigger.

use super::ContactPolicy;
use crate::contact::{Decision, Outcome, Suppression};
use crate::state::{ContactLog, ContactRec};

impl ContactPolicy {
    /// Returns the winners among `survivors`; the losers go to `out`. `held` are contacts of
    /// this trigger that already hold their channel (the live ones, when shadow rules are
    /// decided); `log` is the history the arbitration window looks at.
    pub(super) fn arbitrate(
        &self,
        mut survivors: Vec<Decision>,
        held: &[&Decision],
        log: &ContactLog,
        out: &mut Vec<Decision>,
    ) -> Vec<Decision> {
        let rank = |d: &Decision| (d.channel as u8, std::cmp::Reverse(d.priority), d.rule);
        survivors.sort_by_key(rank);
        let mut winners: Vec<Decision> = Vec::new();
        for mut d in survivors {
            let beaten = held.iter().copied().find(|w| w.channel == d.channel && rank(w) < rank(&d));
            if let Some(w) = beaten.or_else(|| winners.iter().find(|w| w.channel == d.channel)) {
                d.outcome = Outcome::Suppressed(Suppression::Arbitration);
                d.detail =
                    Some(format!("rule {} (priority {}) won this trigger on {}", w.rule_name, w.priority, d.channel));
                d.winner = Some(w.id.clone());
                out.push(d);
                continue;
            }
            if let Some(r) = self.recent_on_channel(log, &d) {
                d.outcome = Outcome::Suppressed(Suppression::Arbitration);
                d.detail = Some(format!("another {} contact went out within the arbitration window", d.channel));
                d.winner = Some(format!("a{:016x}", r.id));
                out.push(d);
                continue;
            }
            winners.push(d);
        }
        winners
    }

    /// The contact on `d`'s channel inside the arbitration window before it, if any. Orders
    /// have no window: the subscriber's requests are not contacts to space out.
    fn recent_on_channel<'l>(&self, log: &'l ContactLog, d: &Decision) -> Option<&'l ContactRec> {
        let window = if d.channel.is_contact() { self.global.arbitration_window } else { 0 };
        (window > 0)
            .then(|| {
                log.recent
                    .iter()
                    .rev()
                    .find(|r| r.channel == d.channel && r.ts > d.ts.saturating_sub(window) && r.ts <= d.ts)
            })
            .flatten()
    }
}
