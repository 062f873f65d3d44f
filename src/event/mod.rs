//! The event kinds of DESIGN.md §2 and their decoding from JSON Lines.
//!
//! Decoding is the first boundary: a line either becomes a typed [`Event`] or a
//! [`DeadLetter`] that says why, and nothing in between can panic. Enumerated fields are Rust
//! enums so that rules compare small integers, not strings, on the hot path.

mod dead;
mod decode;
mod encode;

pub use dead::{DeadLetter, DeadReason, RAW_KEEP};
pub use decode::{Decoder, MAX_LINE_BYTES};

use crate::time::Millis;
use crate::util::{Msisdn, symbols};

symbols!(
    /// The stream an event comes from.
    Kind {
        Usage = "usage",
        Topup = "topup",
        Ivr = "ivr",
        Location = "location",
        Crm = "crm",
        Profile = "profile",
        Outcome = "outcome",
        Reply = "reply",
    }
);
symbols!(Service { Voice = "voice", Sms = "sms", Mms = "mms", Data = "data" });
symbols!(Direction { Mo = "mo", Mt = "mt" });
symbols!(Scope {
    Local = "local",
    LongDistance = "long_distance",
    International = "international",
    RoamingDomestic = "roaming_domestic",
    RoamingInternational = "roaming_international",
});
symbols!(TopupChannel { Card = "card", Online = "online", Store = "store", Bank = "bank", Ussd = "ussd", Agent = "agent" });
symbols!(IvrStep { Enter = "enter", Menu = "menu", Agent = "agent", Exit = "exit" });
symbols!(
    /// What became of a contact, as a gateway reported it (an `outcome` event); `accepted` and
    /// `rejected` are the order interface's answer to an order.
    OutcomeStatus {
        Delivered = "delivered",
        Failed = "failed",
        Answered = "answered",
        Busy = "busy",
        NoAnswer = "no_answer",
        Refused = "refused",
        Expired = "expired",
        Accepted = "accepted",
        Rejected = "rejected",
    }
);
symbols!(LocTrigger { Attach = "attach", Handover = "handover", Periodic = "periodic", Detach = "detach" });

impl Kind {
    /// Bit for this kind in a [`KindSet`].
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of event kinds, as a bit mask (a rule's `on:` list).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindSet(pub u8);

impl KindSet {
    pub fn contains(self, k: Kind) -> bool {
        self.0 & k.bit() != 0
    }
    pub fn insert(&mut self, k: Kind) {
        self.0 |= k.bit();
    }
    pub fn iter(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.iter().copied().filter(move |k| self.contains(*k))
    }
}

/// One decoded event.
#[derive(Clone, Debug)]
pub struct Event {
    pub ts: Millis,
    pub msisdn: Msisdn,
    /// The event id from the record, or one derived from a hash of the raw line.
    pub id: crate::util::SmallStr,
    pub body: Body,
}

impl Event {
    pub fn kind(&self) -> Kind {
        match &self.body {
            Body::Usage(_) => Kind::Usage,
            Body::Topup(_) => Kind::Topup,
            Body::Ivr(_) => Kind::Ivr,
            Body::Location(_) => Kind::Location,
            Body::Crm(_) => Kind::Crm,
            Body::Profile(_) => Kind::Profile,
            Body::Outcome(_) => Kind::Outcome,
            Body::Reply(_) => Kind::Reply,
        }
    }

    /// The cell this event places the subscriber in, if it says.
    pub fn cell(&self) -> Option<&str> {
        match &self.body {
            Body::Location(l) => Some(&l.cell),
            Body::Usage(u) => u.cell.as_deref(),
            _ => None,
        }
    }

    /// The balance after this event, if it reports one.
    pub fn balance_fen(&self) -> Option<i64> {
        match &self.body {
            Body::Usage(u) => u.balance_fen,
            Body::Topup(t) => t.balance_fen,
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Body {
    Usage(Usage),
    Topup(Topup),
    Ivr(Ivr),
    Location(Location),
    Crm(Crm),
    Profile(ProfileUpdate),
    Outcome(ContactOutcome),
    Reply(SubscriberReply),
}

#[derive(Clone, Debug)]
pub struct Usage {
    pub service: Service,
    pub direction: Direction,
    pub scope: Scope,
    pub peer: Option<crate::util::SmallStr>,
    pub duration_s: i64,
    pub volume_kb: i64,
    pub count: i64,
    pub charge_fen: i64,
    pub balance_fen: Option<i64>,
    pub cell: Option<crate::util::SmallStr>,
    pub via: Option<Box<str>>,
}

#[derive(Clone, Debug)]
pub struct Topup {
    pub amount_fen: i64,
    pub balance_fen: Option<i64>,
    pub channel: TopupChannel,
    pub store: Option<crate::util::SmallStr>,
}

#[derive(Clone, Debug)]
pub struct Ivr {
    pub session: crate::util::SmallStr,
    pub step: IvrStep,
    pub node: Option<crate::util::SmallStr>,
    pub hotline: crate::util::SmallStr,
}

#[derive(Clone, Debug)]
pub struct Location {
    pub cell: crate::util::SmallStr,
    pub trigger: LocTrigger,
    pub country: Option<crate::util::SmallStr>,
}

#[derive(Clone, Debug)]
pub struct Crm {
    pub event: crate::util::SmallStr,
    pub attrs: serde_json::Map<String, serde_json::Value>,
}

/// What became of a contact tidings decided: a delivery report or a call result that came back
/// from a gateway (the delivery side writes these; they replay like any other event).
#[derive(Clone, Debug)]
pub struct ContactOutcome {
    /// The id of the action it reports on.
    pub action_id: Box<str>,
    pub channel: crate::contact::Channel,
    pub status: OutcomeStatus,
    pub rule: Box<str>,
    pub campaign: Box<str>,
    pub detail: Option<Box<str>>,
}

/// A subscriber's message to the operator (an MO SMS that came back through any gateway: the
/// delivery side writes these beside the outcomes; they replay like any other event).
#[derive(Clone, Debug)]
pub struct SubscriberReply {
    /// The text as the subscriber wrote it (decoded from UCS-2, GBK or ASCII by the gateway).
    pub text: Box<str>,
    /// The service number it was sent to (the SP's long number, `1065…`).
    pub to: crate::util::SmallStr,
    /// Which gateway brought it (`smpp`, `kannel`, `cmpp`, ...), when the line says.
    pub gateway: Option<crate::util::SmallStr>,
    /// The text's first word, normalised ([`keyword`]): what rules and unsubscribe match on.
    pub keyword: crate::util::SmallStr,
    /// What the engine made of it on the subscriber's own shard (never read from the line):
    /// the SMS it answers, and the refusal it makes when its keyword unsubscribes.
    pub in_reply_to: Option<Box<InReplyTo>>,
    pub unsubscribe: Option<crate::contact::OptOutScope>,
}

/// The SMS a reply answers: the latest sent to the subscriber from the number the reply was
/// sent to, within the reply window.
#[derive(Clone, Debug, PartialEq)]
pub struct InReplyTo {
    pub rule: std::sync::Arc<str>,
    pub campaign: std::sync::Arc<str>,
    pub action_id: String,
    /// How long after the SMS the reply came.
    pub age: crate::time::Millis,
    /// What the SMS was about, when its rule said (`about:`, e.g. the store a survey asks about).
    pub about: Option<std::sync::Arc<str>>,
}

/// A reply's keyword: its first word with full-width letters, digits and spaces made
/// half-width (`ＴＤ` -> `TD`, the ideographic space a separator), Latin letters upper-cased
/// (`td` -> `TD`) and surrounding punctuation-free whitespace trimmed. Chinese stays as written
/// (`退订`).
pub fn keyword(text: &str) -> crate::util::SmallStr {
    let half: String = text
        .chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .collect();
    let first = half.split_whitespace().next().unwrap_or("");
    crate::util::SmallStr::from(first.to_uppercase().as_str())
}

/// A change to the subscriber's master data. Fields are checked at decode time against the
/// subscriber schema, so applying one never fails.
#[derive(Clone, Debug)]
pub struct ProfileUpdate {
    pub set: Vec<crate::refdata::ProfileChange>,
    pub unset: Vec<crate::refdata::ProfileField>,
}
