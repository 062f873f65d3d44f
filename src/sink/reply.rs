//! A subscriber's reply, whichever gateway brought it, becomes one `reply` event line in
//! `outcomes.jsonl` (beside the outcomes, fed to a live engine as they are) — once, however often
//! the gateway delivers it.
//!
//! Gateways deliver a message again when its acknowledgement does not come, and tidings
//! acknowledges a reply only once its line is on disk: a crash between the two means a
//! redelivery. Which deliveries are the same reply:
//!
//! - when the gateway gives the message an id (CMPP/SMGP `Msg_Id`, the SGIP sequence number,
//!   Kannel's `%I`), the same id from the same gateway, for a day;
//! - when it gives none (an SMPP `deliver_sm`), the same number, service number and text from the
//!   same gateway within ten minutes; later, the same words are a new reply (a subscriber who
//!   sends 退订 again the next day means it again).
//!
//! The event id is `r` and 16 hex digits of a stable hash of the gateway and its id, or, without
//! one, of the gateway, number, service number, text and the time the reply was first recorded.
//! Ids must differ between replies, not only between deliveries: the engine derives action ids
//! from their trigger's id, so two replies with one id could trigger a rule only once.
//!
//! What was recorded goes into the ledger (`{"st":"reply","id":…,"key":…,"until":…}`), so a
//! redelivery after a restart is recognised too; an entry is forgotten once its window has
//! passed (when the ledger is opened, and as new replies come), so memory holds a day of
//! replies at most.
//!
//! Numbers are normalised to the subscriber's: a leading `+` or `00` and the country code `86`
//! before an 11-digit mainland number go (`+8613800138000` is `13800138000`), as subscriber
//! records hold them. A sender that is still not 5 to 15 digits (an alphanumeric sender) is no
//! subscriber: the reply is acknowledged and counted, not written.

use super::gateway::Reply;
use super::ledger::Entry;
use crate::util::{Msisdn, stable_hash};
use std::collections::HashMap;

/// How long a reply with the gateway's id is remembered.
pub const BY_ID_MS: i64 = 24 * 3600 * 1000;
/// How long a reply without one is: the same words after this are a new reply.
pub const BY_CONTENT_MS: i64 = 10 * 60 * 1000;
/// Forgotten entries are swept out at most this often.
const SWEEP_MS: i64 = 60 * 1000;

/// The replies recorded lately, by the key their redeliveries carry, with when each may be
/// forgotten.
#[derive(Debug, Default)]
pub struct Recorded {
    until: HashMap<u64, i64>,
    swept_at: i64,
}

impl Recorded {
    pub fn contains(&self, key: u64, now_ms: i64) -> bool {
        self.until.get(&key).is_some_and(|u| *u > now_ms)
    }

    /// Remembers `key` until `until`, and forgets what has run out (at most once a minute).
    pub fn insert(&mut self, key: u64, until: i64, now_ms: i64) {
        if until > now_ms {
            self.until.insert(key, until);
        }
        if now_ms - self.swept_at >= SWEEP_MS {
            self.until.retain(|_, u| *u > now_ms);
            self.swept_at = now_ms;
        }
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

/// What becomes of a reply that came in.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// New: its ledger entry and its event line.
    New { entry: Entry, line: String },
    /// A redelivery of one recorded already.
    Again,
    /// Not from a subscriber's number (the sender as the gateway gave it, masked).
    Unreadable(String),
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::New { .. } => "recorded",
            Verdict::Again => "again",
            Verdict::Unreadable(_) => "unreadable",
        }
    }
}

/// Judges `r` against what was `recorded`; times of the event line in `offset`.
pub fn judge(r: &Reply, recorded: &Recorded, offset: chrono::FixedOffset, now_ms: i64) -> Verdict {
    let Some(msisdn) = subscriber_number(&r.msisdn) else {
        return Verdict::Unreadable(mask_sender(&r.msisdn));
    };
    let number = msisdn.full();
    let (key, id, keep) = match r.gateway_id.as_deref().filter(|g| !g.is_empty()) {
        Some(g) => {
            let key = stable_hash(format!("{}\0{g}", r.gateway).as_bytes());
            (key, format!("r{key:016x}"), BY_ID_MS)
        }
        None => {
            let same = format!("{}\0{number}\0{}\0{}", r.gateway, r.to, r.text);
            let key = stable_hash(same.as_bytes());
            (key, format!("r{:016x}", stable_hash(format!("{same}\0{now_ms}").as_bytes())), BY_CONTENT_MS)
        }
    };
    if recorded.contains(key, now_ms) {
        return Verdict::Again;
    }
    let line = serde_json::json!({
        "kind": "reply",
        "id": id,
        "ts": crate::time::format_ts(r.at_ms, offset),
        "msisdn": number,
        "text": r.text,
        "to": r.to,
        "gateway": r.gateway,
    })
    .to_string();
    Verdict::New { entry: Entry::Reply { id, key: format!("{key:016x}"), at: now_ms, until: now_ms + keep }, line }
}

/// The subscriber's number in a sender address: `+`, `00` and the country code 86 before an
/// 11-digit mainland number stripped.
pub fn subscriber_number(sender: &str) -> Option<Msisdn> {
    let s = sender.trim();
    let s = s.strip_prefix('+').or_else(|| s.strip_prefix("00")).unwrap_or(s);
    let s = match s.strip_prefix("86") {
        Some(rest) if rest.len() == 11 && rest.starts_with('1') => rest,
        _ => s,
    };
    Msisdn::parse(s)
}

/// A sender for a log line: a number masked, anything else by its length only.
pub fn mask_sender(sender: &str) -> String {
    subscriber_number(sender).map_or_else(|| format!("<{} characters>", sender.chars().count()), |m| m.masked())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(gateway_id: Option<&str>, text: &str) -> Reply {
        Reply {
            msisdn: "+8613800138000".into(),
            to: "10658888".into(),
            text: text.into(),
            gateway: "smpp",
            gateway_id: gateway_id.map(str::to_owned),
            at_ms: 1_764_000_000_000,
        }
    }

    fn offset() -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(8 * 3600).expect("offset")
    }

    /// Records what `judge` said is new, as the ledger does.
    fn record(seen: &mut Recorded, v: &Verdict, now: i64) {
        let Verdict::New { entry: Entry::Reply { key, until, .. }, .. } = v else { panic!("new: {v:?}") };
        seen.insert(u64::from_str_radix(key, 16).expect("hex key"), *until, now);
    }

    #[test]
    fn the_line_is_a_reply_event_with_the_subscribers_number_and_the_text_whole() {
        let Verdict::New { line, entry } = judge(&reply(Some("m1"), "退订 谢谢"), &Recorded::default(), offset(), 5)
        else {
            panic!("new")
        };
        let ev = crate::event::Decoder::default().decode(line.as_bytes(), "t", 1).expect("a line").expect("decodes");
        assert_eq!(ev.msisdn.full(), "13800138000");
        assert_eq!(crate::time::format_ts(ev.ts, offset()), "2025-11-25T00:00:00+08:00");
        let crate::event::Body::Reply(r) = &ev.body else { panic!("a reply: {line}") };
        assert_eq!((&*r.text, r.to.as_str(), r.gateway.as_deref()), ("退订 谢谢", "10658888", Some("smpp")));
        assert_eq!(entry.id(), ev.id.as_str());
        assert!(ev.id.starts_with('r') && ev.id.len() == 17, "{}", ev.id);
    }

    #[test]
    fn with_the_gateways_id_a_redelivery_is_the_same_reply_for_a_day() {
        let mut seen = Recorded::default();
        let first = judge(&reply(Some("m1"), "TD"), &seen, offset(), 0);
        record(&mut seen, &first, 0);
        assert_eq!(judge(&reply(Some("m1"), "TD"), &seen, offset(), BY_ID_MS - 1), Verdict::Again);
        assert!(matches!(judge(&reply(Some("m2"), "TD"), &seen, offset(), 1), Verdict::New { .. }), "another id");
        // The id alone decides: the event id does not depend on when it came.
        let later = judge(&reply(Some("m1"), "TD"), &seen, offset(), BY_ID_MS);
        let id = |v: &Verdict| match v {
            Verdict::New { entry, .. } => entry.id().to_owned(),
            _ => panic!("new: {v:?}"),
        };
        assert_eq!(id(&first), id(&later));
    }

    #[test]
    fn without_an_id_the_same_words_within_ten_minutes_are_one_reply_and_later_a_new_one() {
        let mut seen = Recorded::default();
        let first = judge(&reply(None, "退订"), &seen, offset(), 0);
        record(&mut seen, &first, 0);
        assert_eq!(judge(&reply(None, "退订"), &seen, offset(), BY_CONTENT_MS - 1), Verdict::Again);
        assert!(matches!(judge(&reply(None, "退订 TD"), &seen, offset(), 1), Verdict::New { .. }), "other words");
        let later = judge(&reply(None, "退订"), &seen, offset(), BY_CONTENT_MS);
        match (&first, &later) {
            (Verdict::New { entry: a, .. }, Verdict::New { entry: b, .. }) => assert_ne!(a.id(), b.id()),
            _ => panic!("both new: {first:?} {later:?}"),
        }
    }

    #[test]
    fn numbers_lose_their_country_code_and_a_sender_that_is_no_number_is_unreadable() {
        for s in ["13800138000", "8613800138000", "+8613800138000", "008613800138000"] {
            assert_eq!(subscriber_number(s).map(|m| m.full()).as_deref(), Some("13800138000"), "{s}");
        }
        assert_eq!(subscriber_number("86123").map(|m| m.full()).as_deref(), Some("86123"), "short codes stay");
        let mut r = reply(None, "hi");
        r.msisdn = "BANK".into();
        assert_eq!(judge(&r, &Recorded::default(), offset(), 0), Verdict::Unreadable("<4 characters>".into()));
    }

    #[test]
    fn what_ran_out_is_forgotten() {
        let mut seen = Recorded::default();
        seen.insert(1, 10, 0);
        seen.insert(2, SWEEP_MS * 3, 1);
        assert!(seen.contains(1, 9) && !seen.contains(1, 10));
        seen.insert(3, SWEEP_MS * 3, SWEEP_MS);
        assert_eq!(seen.len(), 2, "1 was swept out");
    }
}
