//! The words every stage shares about a contact, at the bottom so that every stage can use
//! them: rules propose a [`Candidate`], contact policy turns it into a [`Decision`] with an
//! [`Outcome`] (or a [`Suppression`] saying why not), the engine orders decisions by
//! [`OrderKey`], sinks write them, and the delivery side hands an [`Action`] to a gateway.
//!
//! Layer 2 of `src/lib.rs` (it imports only `util` and `time`), so `event`, `refdata`, `state`
//! and everything above may name a channel or a decision without reaching up into the engine or
//! the sinks.

mod action;
mod decision;
mod length;

pub use action::{Action, TriggerJson};
pub use decision::Decision;
pub use length::{sms_length, sms_parts};

use crate::time::Millis;
use crate::util::{Msisdn, symbols};
use serde::Serialize;

symbols!(
    /// A contact channel. `order` is not a contact but the subscriber's own request (an offer
    /// accepted by reply) passed to the operator's order interface; contact policy treats it
    /// apart (see `policy`).
    Channel { Sms = "sms", Call = "call", Ivr = "ivr", Order = "order" }
);

impl Channel {
    /// How many channels there are: the length of every array indexed by `Channel as usize`.
    pub const COUNT: usize = Channel::ALL.len();

    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Whether a decision on this channel contacts the subscriber (SMS, call, IVR answer), as
    /// opposed to carrying out their own request (an order): only contacts are subject to
    /// do-not-disturb, quiet hours, control groups, channel and touchpoint caps and capacity.
    pub fn is_contact(self) -> bool {
        self != Channel::Order
    }
}

symbols!(
    /// What an unsubscribe reply refuses: the campaign of the SMS it answers, every marketing
    /// (non-transactional) SMS, or every non-transactional contact on any channel (`0000`).
    OptOutScope { Campaign = "campaign", Marketing = "marketing", All = "all" }
);

/// A subscriber's refusal of further contacts, made by a reply (`TD`, `退订`, ...): in their
/// state from the reply on, and in the opt-out journal, so that the refusal outlives a restart
/// and a replay decides as live did (it counts from `ts`, in event time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptOut {
    /// Event time of the reply.
    pub ts: Millis,
    pub scope: OptOutScope,
    /// The campaign refused, for [`OptOutScope::Campaign`].
    pub campaign: Option<Box<str>>,
    /// The reply's keyword as normalised (`TD`) and the number it was sent to.
    pub keyword: Box<str>,
    pub to: Box<str>,
    /// The reply event's id.
    pub reply: Box<str>,
}

impl OptOut {
    /// Whether this refusal stops a contact on `channel` of `campaign` at `ts`. Transactional
    /// messages are never refused: the subscriber still needs their bill and their balance.
    pub fn covers(&self, ts: Millis, channel: Channel, campaign: &str, transactional: bool) -> bool {
        if transactional || ts < self.ts {
            return false;
        }
        match self.scope {
            // An IVR answer is the subscriber's own call being answered, not a contact.
            OptOutScope::All => channel != Channel::Ivr,
            OptOutScope::Marketing => channel == Channel::Sms,
            OptOutScope::Campaign => channel == Channel::Sms && self.campaign.as_deref() == Some(campaign),
        }
    }

    /// Whether `self` refuses everything `other` does (so `other` adds nothing).
    pub fn includes(&self, other: &OptOut) -> bool {
        match (self.scope, other.scope) {
            (OptOutScope::All, _) | (OptOutScope::Marketing, OptOutScope::Marketing | OptOutScope::Campaign) => true,
            (OptOutScope::Campaign, OptOutScope::Campaign) => self.campaign == other.campaign,
            _ => false,
        }
    }

    /// In words, for a decision's detail and explain: `opted out of marketing by reply "TD" to
    /// 10086 (reply r12…)`.
    pub fn describe(&self) -> String {
        let what = match (self.scope, &self.campaign) {
            (OptOutScope::Campaign, Some(c)) => format!("campaign {c}"),
            (OptOutScope::Campaign, None) | (OptOutScope::Marketing, _) => "marketing SMS".to_string(),
            (OptOutScope::All, _) => "every non-transactional contact".to_string(),
        };
        format!("opted out of {what} by reply \"{}\" to {} (event {})", self.keyword, self.to, self.reply)
    }
}

/// The event that caused a decision, as actions report it.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerRef {
    /// The event kind (`usage`, ...), or `schedule` for a daily rule.
    pub kind: &'static str,
    pub id: std::sync::Arc<str>,
    pub ts: Millis,
}

/// A contact held for the end of quiet hours: the action id it was decided with and its
/// expiry, so that it is decided again as the same contact when they end.
#[derive(Clone, Debug, PartialEq)]
pub struct Deferred {
    pub id: String,
    pub expires: Option<Millis>,
}

/// A contact a rule wants to make, before policy.
pub struct Candidate {
    /// Index of the rule in the rule set.
    pub rule: u32,
    pub ts: Millis,
    pub key: OrderKey,
    pub trigger: TriggerRef,
    /// Due time of the timer that produced it (part of the action id).
    pub due: Option<Millis>,
    pub written: Written,
    /// Set when this is a contact deferred by quiet hours, now due.
    pub deferred: Option<Deferred>,
}

/// What a rule wrote for one contact when it fired, from the triggering event and the
/// subscriber at that moment; a timer or a quiet-hours hold carries it (and a checkpoint with
/// them) to the moment policy decides. Boxed strings: a pending timer carries one, in every
/// subscriber state that has a timer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Written {
    /// An SMS or IVR text, or an order's offer code.
    pub text: Option<Box<str>>,
    /// A call's script: what the agent says.
    pub script: Option<Box<str>>,
    /// The call-centre queue a call goes to (`queue:`, which may name the store a reply is about).
    pub queue: Option<Box<str>>,
    /// What a reply to this SMS is about (`about:`, e.g. the store a survey asks about), read
    /// back as `event.in_reply_to.about`.
    pub about: Option<Box<str>>,
}

/// Why policy stopped a candidate contact (filled in by contact policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    Dnd,
    QuietHours,
    Cap,
    Excluded,
    ControlGroup,
    Arbitration,
    Capacity,
    /// The subscriber ignored the rule's or campaign's recent offers (`suppress_after`).
    SuppressedAfter,
    /// The campaign is not on: outside its `start` / `end`, or `paused` / `ended`.
    CampaignOff,
    /// The campaign's budget (contacts or fen) is spent.
    Budget,
}

impl Suppression {
    /// Every reason, in declaration order (`r as usize` is its place here).
    pub const ALL: [Suppression; 10] = [
        Suppression::Dnd,
        Suppression::QuietHours,
        Suppression::Cap,
        Suppression::Excluded,
        Suppression::ControlGroup,
        Suppression::Arbitration,
        Suppression::Capacity,
        Suppression::SuppressedAfter,
        Suppression::CampaignOff,
        Suppression::Budget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::Dnd => "dnd",
            Suppression::QuietHours => "quiet_hours",
            Suppression::Cap => "cap",
            Suppression::Excluded => "excluded",
            Suppression::ControlGroup => "control_group",
            Suppression::Arbitration => "arbitration",
            Suppression::Capacity => "capacity",
            Suppression::SuppressedAfter => "suppressed_after",
            Suppression::CampaignOff => "campaign_off",
            Suppression::Budget => "budget",
        }
    }
}

/// What became of a candidate contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// An action: the contact is made.
    Sent,
    /// Stopped by policy, for this reason.
    Suppressed(Suppression),
    /// Held for the end of quiet hours, until this time.
    Deferred(Millis),
}

/// Where a decision falls in the output: input position of the deciding point, then phase
/// (0 = a timer or daily tick that fired just before the event at `pos`, 1 = decided by that
/// event), then tie-breaks.
/// The same for any shard count and any batching, so output order is deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrderKey {
    pub pos: u64,
    pub phase: u8,
    pub due: Millis,
    pub msisdn: u64,
    pub rule: u32,
}

/// The deterministic action id: the same trigger decides the same id on every replay. The
/// subscriber is part of it: a daily rule's trigger (`09:00@2026-11-24`) is the same for every
/// subscriber, and the id is the idempotency key at the gateways.
pub fn action_id(rule: &str, msisdn: Msisdn, trigger: &TriggerRef, due: Option<Millis>) -> String {
    let h = crate::util::action_hash(rule, msisdn, trigger.kind, &trigger.id, due);
    // `a` and 16 lower-case hex digits (as `format!("a{h:016x}")`, without the formatter).
    let mut id = [b'a'; 17];
    for (k, digit) in id[1..].iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[((h >> (60 - 4 * k)) & 0xf) as usize];
    }
    std::str::from_utf8(&id).map_or_else(|_| format!("a{h:016x}"), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::{TriggerRef, action_id};
    use crate::util::{Msisdn, action_hash};

    #[test]
    fn an_action_id_is_a_and_sixteen_hex_digits_of_its_hash() {
        let m = Msisdn::parse("13800138000").expect("a number");
        let many: Vec<String> = (0..2_000).map(|i| format!("ev-{i}")).collect();
        let cases = [("birthday", "e1", None), ("topup_confirmation", "ev-99", Some(1_700_000_000_000))]
            .into_iter()
            .chain(many.iter().map(|id| ("points_changed", id.as_str(), None)));
        for (rule, id, due) in cases {
            let trigger = TriggerRef { kind: "usage", id: id.into(), ts: 5 };
            let h = action_hash(rule, m, "usage", id, due);
            assert_eq!(action_id(rule, m, &trigger, due), format!("a{h:016x}"));
        }
    }
}
