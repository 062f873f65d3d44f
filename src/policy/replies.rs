//! Replies: what a subscriber's message answers, what it refuses, and the footer that tells
//! them how to refuse. Contact policy owns this because it owns the contact history a reply
//! is matched against and the do-not-disturb a refusal feeds: the shard hands it the reply on
//! the subscriber's own state, in event time, so a replay ties and refuses as live did.
//!
//! - A reply answers the latest SMS sent to the subscriber from the number it was sent to
//!   (each rule's sender: its own, its campaign's or the global one) within the reply window
//!   that asked for its keyword (`回复KTBY`; on a marketing SMS, which carries the footer,
//!   every unsubscribe keyword); when none did, the latest SMS from that number. A welcome
//!   abroad that offers `KTBY`, then a welcome home: `KTBY` answers the first; a marketing
//!   offer, then a top-up receipt: `TD` refuses the offer's campaign.
//! - A reply whose keyword is an unsubscribe keyword refuses, from its event time on, what
//!   `[policy.unsubscribe]` says: the answered SMS's campaign, all marketing SMS, or every
//!   non-transactional contact (`0000`); one that answers nothing refuses all marketing.
//! - Every marketing (non-transactional) SMS carries the footer (`拒收请回复R`) before it is
//!   sent, so its length and parts are counted with it.

use super::ContactPolicy;
use crate::contact::{Channel, Decision, OptOut, OptOutScope};
use crate::event::{InReplyTo, SubscriberReply};
use crate::rules::Rule;
use crate::rules::policy::Unsubscribe;
use crate::state::SubState;
use crate::time::Millis;

/// The keywords `rule`'s SMS asks the subscriber to reply: its text's (`回复KTBY`), and on a
/// marketing SMS, which carries the unsubscribe footer (`拒收请回复R`), every unsubscribe
/// keyword (`TD` refuses it as `R` does). Nothing for a rule on another channel. What a reply
/// is tied to, here and in the report.
pub fn sms_asks(rule: &Rule, unsubscribe: &Unsubscribe) -> Box<[Box<str>]> {
    let mut words: Vec<Box<str>> = rule.asks.to_vec();
    if rule.channel == Channel::Sms && !rule.policy.transactional {
        let refusals = crate::rules::asks::keywords(&unsubscribe.footer);
        for k in refusals.into_iter().chain(unsubscribe.refusals().cloned()) {
            if !words.contains(&k) {
                words.push(k);
            }
        }
    }
    words.into()
}

/// Of the SMS a reply may answer, newest first, the one it answers: the first that `asked`
/// for its keyword, else the first. Contact policy and the report choose alike.
pub fn answered_of<T>(mut newest_first: impl Iterator<Item = T>, asked: impl Fn(&T) -> bool) -> Option<T> {
    let latest = newest_first.next()?;
    if asked(&latest) {
        return Some(latest);
    }
    Some(newest_first.find(|s| asked(s)).unwrap_or(latest))
}

impl ContactPolicy {
    /// Reads reply `r` (event `id` at `ts`) on the subscriber's `state`: fills its
    /// `in_reply_to` and `unsubscribe`, marks the SMS it answers as answered (for
    /// `suppress_after`), and returns the refusal it makes, if any, with whether it is new. A
    /// new one (not already in force in `state` or in `journaled`, the refusals earlier runs
    /// journaled) is recorded in `state`, for the caller to journal.
    pub fn read_reply(
        &self,
        (ts, id): (Millis, &str),
        r: &mut SubscriberReply,
        state: &mut SubState,
        journaled: &[OptOut],
    ) -> Option<(OptOut, bool)> {
        r.in_reply_to = self.answered(ts, (&r.to, &r.keyword), state).map(Box::new);
        if let Some(id) = r.in_reply_to.as_ref().and_then(|l| super::suppress::id_bits(&l.action_id)) {
            // Answered, so not ignored (`suppress_after`).
            state.contacts_mut().mark(id, crate::state::ContactRec::ANSWERED);
        }
        let u = &self.global.unsubscribe;
        let scope = u.scope_of(&r.keyword, r.in_reply_to.is_some())?;
        r.unsubscribe = Some(scope);
        let o = OptOut {
            ts,
            scope,
            campaign: match (scope, &r.in_reply_to) {
                (OptOutScope::Campaign, Some(l)) => Some(l.campaign.as_ref().into()),
                _ => None,
            },
            keyword: r.keyword.as_str().into(),
            to: r.to.as_str().into(),
            reply: id.into(),
        };
        let new = !journaled.iter().any(|k| k.includes(&o)) && state.add_optout(o.clone());
        Some((o, new))
    }

    /// The latest SMS sent from `to` within the reply window before `ts` that asked for
    /// `keyword`, else the latest SMS sent from `to` in that time.
    fn answered(&self, ts: Millis, (to, keyword): (&str, &str), state: &SubState) -> Option<InReplyTo> {
        let since = ts.saturating_sub(self.global.reply_window);
        let sent = state.contacts().recent.iter().rev().filter(|c| {
            c.channel == Channel::Sms
                && (since..=ts).contains(&c.ts)
                && self.senders.get(c.rule as usize).is_some_and(|s| &**s == to)
        });
        let asked = |c: &&crate::state::ContactRec| {
            !keyword.is_empty() && self.asks.get(c.rule as usize).is_some_and(|a| a.iter().any(|k| &**k == keyword))
        };
        let rec = answered_of(sent, asked)?;
        let rule = &self.rules.rules[rec.rule as usize];
        Some(InReplyTo {
            rule: rule.name.clone(),
            campaign: rule.campaign.clone(),
            action_id: format!("a{:016x}", rec.id),
            age: ts - rec.ts,
            about: state.contacts().about(rec.id).map(Into::into),
        })
    }

    /// Appends the unsubscribe footer to a marketing SMS about to be sent (not to a
    /// transactional one, nor twice).
    pub(super) fn add_footer(&self, d: &mut Decision, rule: &Rule) {
        let footer = &*self.global.unsubscribe.footer;
        if d.channel != Channel::Sms || rule.policy.transactional || footer.is_empty() {
            return;
        }
        if let Some(text) = &mut d.text {
            if !text.contains(footer) {
                text.push_str(footer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::answered_of;

    #[test]
    fn the_newest_that_asked_else_the_newest() {
        let newest_first = || [3, 2, 1].into_iter();
        assert_eq!(answered_of(newest_first(), |n| *n == 2), Some(2));
        assert_eq!(answered_of(newest_first(), |n| *n <= 3), Some(3));
        assert_eq!(answered_of(newest_first(), |_| false), Some(3));
        assert_eq!(answered_of(std::iter::empty::<i32>(), |_| true), None);
    }
}
