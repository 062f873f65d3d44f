//! Step 5, arbitration: one contact per subscriber per trigger, whatever the channel, highest
//! priority first, then pack order -> `arbitration`, naming the winner (DESIGN.md: a subscriber
//! who does one thing hears from us once). An SMS beside a call for the same trigger is a
//! choice a rule declares (`alongside: true`): two contacts on different channels both go when
//! either rule says so; two on one channel never do. The `arbitration_window` spaces contacts
//! on one channel across triggers. Orders compete only with the other orders of their trigger.

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
        // One contender and none holding a channel (most triggers): only the window can stop
        // it, and the list it came in is the list of winners.
        if let ([d], []) = (&mut survivors[..], held) {
            if let Some(r) = self.recent_on_channel(log, d) {
                Self::spaced_out(d, r.id);
                out.append(&mut survivors);
            }
            return survivors;
        }
        let rank = |d: &Decision| (std::cmp::Reverse(d.priority), d.rule, d.channel as u8);
        survivors.sort_by_key(rank);
        let mut winners: Vec<Decision> = Vec::new();
        for mut d in survivors {
            let beaten = held.iter().copied().find(|w| self.compete(w, &d) && rank(w) < rank(&d));
            if let Some(w) = beaten.or_else(|| winners.iter().find(|w| self.compete(w, &d))) {
                d.outcome = Outcome::Suppressed(Suppression::Arbitration);
                d.detail = Some(if w.channel == d.channel {
                    format!("rule {} (priority {}) won this trigger on {}", w.rule_name, w.priority, d.channel)
                } else {
                    format!(
                        "rule {} (priority {}) won this trigger with a {} (one contact per trigger; `alongside: true` lets a {} go beside it)",
                        w.rule_name, w.priority, w.channel, d.channel
                    )
                });
                d.winner = Some(w.id.clone());
                out.push(d);
                continue;
            }
            if let Some(r) = self.recent_on_channel(log, &d) {
                Self::spaced_out(&mut d, r.id);
                out.push(d);
                continue;
            }
            winners.push(d);
        }
        winners
    }

    /// `d` loses to contact `id` on its channel, made within the arbitration window.
    fn spaced_out(d: &mut Decision, id: u64) {
        d.outcome = Outcome::Suppressed(Suppression::Arbitration);
        d.detail = Some(format!("another {} contact went out within the arbitration window", d.channel));
        d.winner = Some(format!("a{id:016x}"));
    }

    /// Whether `a` and `b`, decided for one trigger, compete for it: on one channel always; on
    /// two contact channels unless either rule declares `alongside`; an order and a contact never.
    fn compete(&self, a: &Decision, b: &Decision) -> bool {
        if a.channel == b.channel {
            return true;
        }
        let alongside = |d: &Decision| self.rules.rules[d.rule as usize].policy.alongside;
        a.channel.is_contact() && b.channel.is_contact() && !alongside(a) && !alongside(b)
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
