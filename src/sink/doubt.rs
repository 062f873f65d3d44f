//! SMS in doubt, and the rule that keeps each one recognisable.
//!
//! An SMS is *in doubt* when a gateway may have it but never said so: its submit went out and no
//! answer came (the connection dropped, the response timed out), or the process died between the
//! ledger's `sending` line and the answer. Offering it again at once could reach the subscriber
//! twice, so the dispatcher waits `in_doubt_grace` for a report that settles it ([`Doubts`]), and
//! offers it again only when none came: then the gateway never had it, or lost it.
//!
//! What a report can name differs by gateway. Kannel's name the action id. SMPP receipts name
//! the subscriber and the 16-bit `user_message_reference` the submit carried, derived from the
//! action id. CMPP status reports echo nothing of the submit but the gateway's own `Msg_Id` —
//! which an answer that never came, or a crashed process, never recorded — and the subscriber
//! (`Dest_terminal_Id`): so a report that names a subscriber and no reference settles that
//! subscriber's SMS in doubt.
//!
//! That is only sound when the subscriber has one SMS the report could be about, so the dispatcher
//! keeps at most one SMS per subscriber unanswered at a time — in flight, waiting to retry, or in
//! doubt ([`Turns`]) — and the ledger never holds two unanswered `sending` lines for one
//! subscriber. The next SMS to that subscriber waits for the answer: a round trip, or the grace
//! when it is in doubt (a marketing engine rarely has two messages for one subscriber within
//! that). A report of an SMS already recorded must not settle another either: the ledger knows
//! those gateway ids (`Ledger::is_repeat`), and the dispatcher asks it first.
//!
//! What is left: two SMS to one subscriber in doubt at once can only come from a ledger written
//! without this rule (an older tidings). A report without reference cannot tell them apart, so
//! both wait the grace and go again — at least once, not exactly once, for that subscriber.
//!
//! A long message is settled only when every part has its report (the part count comes from the
//! gateway in use, [`super::sms::SmsGateway::parts`]): a part that never reached the gateway would
//! leave the subscriber with half a message. The report of one part is recorded in the ledger (a
//! `part` line) and acknowledged: a gateway answers a window of reports at a time (an SGIP SMG
//! sends 16 and waits), and parts held unanswered until the last came would stop the last behind
//! them. The ledger gives the recorded parts back after a restart. A report for an SMS in doubt
//! whose outbox line has not been read yet (the first moments after a restart) settles nothing:
//! it waits, unacknowledged, until the line is read and the part count is known.

use super::gateway::Report;
use super::outbox::{InDoubt, id_key};
use crate::contact::Action;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// An action and the attempt it is on.
pub type Attempt = (Action, u32);

/// One SMS in doubt.
struct Doubt {
    id: String,
    msisdn: String,
    reference: u16,
    /// The action once its outbox line is read, with its next attempt number.
    action: Option<Attempt>,
    /// When to stop waiting for a report and offer it again.
    until: Instant,
    /// The gateway ids of the reports counted so far (one per part), recorded in the ledger.
    receipts: Vec<String>,
}

/// What a report settled: the action the gateway had, and its parts' gateway ids.
#[derive(Debug)]
pub struct Settled {
    pub action: Action,
    pub gateway_ids: Vec<String>,
}

/// What a report naming an SMS in doubt did.
#[derive(Debug)]
pub enum Tally {
    /// Every part has its report now: the gateway had the SMS.
    Settled(Box<Settled>),
    /// One more part of SMS `id` has its report, with this gateway id: record it, then the report
    /// can be acknowledged.
    Part { id: String, gateway_id: String },
    /// A part counted already (the gateway sent its report again).
    Again,
}

/// An SMS whose grace ran out: offer it again (`action`), or — its line never read — drop it.
#[derive(Debug)]
pub struct Released {
    pub key: u64,
    pub msisdn: String,
    pub action: Option<Attempt>,
}

/// The SMS in doubt, by id key and by subscriber.
#[derive(Default)]
pub struct Doubts {
    by_id: HashMap<u64, Doubt>,
    by_subscriber: HashMap<String, Vec<u64>>,
}

impl Doubts {
    /// `d` is in doubt until `until`; `action` when its outbox line is already in hand.
    pub fn insert(&mut self, d: InDoubt, action: Option<Attempt>, until: Instant) {
        let key = id_key(&d.id);
        let keys = self.by_subscriber.entry(national(&d.msisdn).to_owned()).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
        let doubt = Doubt { id: d.id, msisdn: d.msisdn, reference: d.reference, action, until, receipts: d.receipts };
        self.by_id.insert(key, doubt);
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The outbox line of an SMS in doubt was read: it waits with the doubt. Given back when it
    /// is not in doubt.
    pub fn attach(&mut self, a: Action, attempt: u32) -> Option<Attempt> {
        match self.by_id.get_mut(&id_key(&a.id)) {
            Some(d) => {
                d.action = Some((a, attempt));
                None
            }
            None => Some((a, attempt)),
        }
    }

    /// Stops treating `key` as in doubt (it is not an SMS, or it was settled); its subscriber.
    pub fn remove(&mut self, key: u64) -> Option<String> {
        let d = self.by_id.remove(&key)?;
        let national = national(&d.msisdn);
        if let Some(keys) = self.by_subscriber.get_mut(national) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                self.by_subscriber.remove(national);
            }
        }
        Some(d.msisdn)
    }

    /// Counts `r` for the SMS in doubt it names, if any (see the module docs); `None` when it
    /// names none whose outbox line is read. `parts` is the gateway's part count of an action.
    pub fn settle(&mut self, r: &Report, parts: impl Fn(&Action) -> usize) -> Option<Tally> {
        let key = self.named(r)?;
        let d = self.by_id.get_mut(&key)?;
        let (a, _) = d.action.as_ref()?;
        // Kannel's report names the action: one settles it. The others count the parts.
        if r.action_id.is_none() {
            let g = r.gateway_id.as_ref()?;
            if d.receipts.contains(g) {
                return Some(Tally::Again);
            }
            d.receipts.push(g.clone());
            if d.receipts.len() < parts(a) {
                return Some(Tally::Part { id: d.id.clone(), gateway_id: g.clone() });
            }
        }
        let gateway_ids = std::mem::take(&mut d.receipts);
        let (action, _) = d.action.take()?;
        self.remove(key);
        Some(Tally::Settled(Box::new(Settled { action, gateway_ids })))
    }

    /// The SMS in doubt a report names: by action id; else by subscriber and reference; else by
    /// subscriber alone when the subscriber has exactly one.
    fn named(&self, r: &Report) -> Option<u64> {
        if let Some(id) = &r.action_id {
            let key = id_key(id);
            return self.by_id.contains_key(&key).then_some(key);
        }
        let keys = self.by_subscriber.get(national(r.msisdn.as_deref()?))?;
        match (r.reference, keys.as_slice()) {
            (Some(rf), _) => keys.iter().copied().find(|k| self.by_id.get(k).is_some_and(|d| d.reference == rf)),
            (None, [key]) => Some(*key),
            // Two or more: the report cannot tell them apart.
            (None, _) => None,
        }
    }

    /// The SMS whose grace ran out by `now`.
    pub fn due(&mut self, now: Instant) -> Vec<Released> {
        if !self.by_id.values().any(|d| d.until <= now) {
            return Vec::new();
        }
        let due: Vec<u64> = self.by_id.iter().filter(|(_, d)| d.until <= now).map(|(k, _)| *k).collect();
        let mut out = Vec::with_capacity(due.len());
        for key in due {
            let action = self.by_id.get_mut(&key).and_then(|d| d.action.take());
            if let Some(msisdn) = self.remove(key) {
                out.push(Released { key, msisdn, action });
            }
        }
        out
    }
}

/// A number as a subscriber's key: gateways may report it with the country code (`86…`,
/// `+86…`) where the action had the national 11 digits.
fn national(msisdn: &str) -> &str {
    let digits = msisdn.strip_prefix('+').unwrap_or(msisdn);
    match digits.strip_prefix("86") {
        Some(rest) if rest.len() == 11 && rest.starts_with('1') => rest,
        _ => digits,
    }
}

/// At most one SMS per subscriber unanswered at a time: the subscriber's *turn* is held by the
/// SMS that is in flight, waiting to retry or in doubt, and the next SMS to that subscriber waits
/// here until it is answered for good (see the module docs for why).
#[derive(Default)]
pub struct Turns {
    /// Subscriber -> the id key of the SMS holding the turn.
    holder: HashMap<String, u64>,
    /// Subscriber -> SMS waiting for the turn, in order.
    waiting: HashMap<String, VecDeque<Attempt>>,
}

impl Turns {
    /// `a` goes now (and holds its subscriber's turn), or waits for the SMS that holds it: `None`.
    pub fn go(&mut self, a: Action, attempt: u32) -> Option<Attempt> {
        let key = id_key(&a.id);
        let holder = *self.holder.entry(national(&a.msisdn).to_owned()).or_insert(key);
        if holder == key {
            return Some((a, attempt));
        }
        self.waiting.entry(national(&a.msisdn).to_owned()).or_default().push_back((a, attempt));
        None
    }

    /// `key` holds `msisdn`'s turn from the start: an SMS left in doubt by a crash.
    pub fn hold(&mut self, msisdn: &str, key: u64) {
        self.holder.entry(national(msisdn).to_owned()).or_insert(key);
    }

    /// `key`'s SMS to `msisdn` is answered (or settled, or dropped): the turn passes to the next
    /// SMS waiting for it, which is returned to be queued. Nothing when `key` did not hold it.
    pub fn done(&mut self, msisdn: &str, key: u64) -> Option<Attempt> {
        let national = national(msisdn);
        if self.holder.get(national) != Some(&key) {
            return None;
        }
        self.holder.remove(national);
        let waiting = self.waiting.get_mut(national)?;
        let next = waiting.pop_front();
        if waiting.is_empty() {
            self.waiting.remove(national);
        }
        let (a, attempt) = next?;
        self.holder.insert(national.to_owned(), id_key(&a.id));
        Some((a, attempt))
    }

    /// Whether no SMS waits for its turn.
    pub fn none_waiting(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Channel, TriggerJson};
    use crate::sink::gateway::OutcomeStatus;
    use std::time::Duration;

    fn action(id: &str, msisdn: &str) -> Action {
        Action {
            id: id.into(),
            ts: "2026-12-03T08:30:00+08:00".into(),
            msisdn: msisdn.into(),
            rule: "r".into(),
            campaign: "c".into(),
            channel: Channel::Sms,
            priority: 50,
            text: Some("您好".into()),
            script: None,
            queue: None,
            sender: None,
            about: None,
            offer: None,
            trigger: TriggerJson { kind: "usage".into(), id: "e1".into(), ts: "2026-12-03T08:30:00+08:00".into() },
            expires: None,
        }
    }

    fn in_doubt(id: &str, msisdn: &str, reference: u16) -> InDoubt {
        InDoubt { id: id.into(), msisdn: msisdn.into(), reference, receipts: Vec::new() }
    }

    /// The SMS a report settled, if it settled one.
    fn settled(t: Option<Tally>) -> Option<Settled> {
        match t {
            Some(Tally::Settled(s)) => Some(*s),
            _ => None,
        }
    }

    /// The gateway id of the part a report counted, if it counted one (and not the last).
    fn part(t: Option<Tally>) -> Option<String> {
        match t {
            Some(Tally::Part { id, gateway_id }) => Some(format!("{id} {gateway_id}")),
            _ => None,
        }
    }

    /// A CMPP status report: the subscriber and the gateway's id, no reference.
    fn report(msisdn: &str, gateway_id: &str) -> Report {
        Report {
            action_id: None,
            gateway_id: Some(gateway_id.into()),
            msisdn: Some(msisdn.into()),
            reference: None,
            status: OutcomeStatus::Delivered,
            detail: "stat:DELIVRD".into(),
            at_ms: 0,
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn a_report_naming_only_the_subscriber_settles_its_one_sms_in_doubt_once_every_part_is_in() {
        let mut d = Doubts::default();
        d.insert(in_doubt("a1", "13800138000", 7), Some((action("a1", "13800138000"), 2)), later());
        let three = |_: &Action| 3;
        assert!(d.settle(&report("13900139000", "m0"), three).is_none(), "another subscriber's report");
        assert_eq!(part(d.settle(&report("13800138000", "m1"), three)).as_deref(), Some("a1 m1"), "one of three");
        assert!(matches!(d.settle(&report("13800138000", "m1"), three), Some(Tally::Again)), "the same part again");
        let m2 = d.settle(&report("8613800138000", "m2"), three);
        assert_eq!(part(m2).as_deref(), Some("a1 m2"), "with the country code: two of three");
        let s = settled(d.settle(&report("13800138000", "m3"), three)).expect("every part reported");
        assert_eq!((s.action.id.as_str(), s.gateway_ids), ("a1", vec!["m1".into(), "m2".into(), "m3".into()]));
        assert!(d.is_empty());
    }

    #[test]
    fn parts_recorded_before_a_restart_count_toward_settling() {
        let mut d = Doubts::default();
        let before = InDoubt { receipts: vec!["m1".into(), "m2".into()], ..in_doubt("a1", "13800138000", 7) };
        d.insert(before, None, later());
        let three = |_: &Action| 3;
        assert!(d.settle(&report("13800138000", "m3"), three).is_none(), "its line is not read yet");
        assert!(d.attach(action("a1", "13800138000"), 1).is_none());
        assert!(matches!(d.settle(&report("13800138000", "m2"), three), Some(Tally::Again)), "recorded already");
        let s = settled(d.settle(&report("13800138000", "m3"), three)).expect("the last part settles it");
        assert_eq!(s.gateway_ids, ["m1", "m2", "m3"]);
    }

    #[test]
    fn two_sms_in_doubt_for_one_subscriber_are_told_apart_by_reference_or_not_at_all() {
        let mut d = Doubts::default();
        for (id, rf) in [("a1", 1), ("a2", 2)] {
            d.insert(in_doubt(id, "13800138000", rf), Some((action(id, "13800138000"), 2)), later());
        }
        let one = |_: &Action| 1;
        assert!(d.settle(&report("13800138000", "m1"), one).is_none(), "no reference: cannot tell which");
        let smpp = Report { reference: Some(2), ..report("13800138000", "m2") };
        assert_eq!(settled(d.settle(&smpp, one)).map(|s| s.action.id), Some("a2".into()));
        // Kannel names the action.
        let kannel = Report { action_id: Some("a1".into()), gateway_id: None, msisdn: None, ..report("", "") };
        assert_eq!(settled(d.settle(&kannel, one)).map(|s| s.action.id), Some("a1".into()));
    }

    #[test]
    fn a_report_before_the_outbox_line_is_read_waits_for_it_and_the_grace_releases_what_none_settled() {
        let mut d = Doubts::default();
        let now = Instant::now();
        d.insert(in_doubt("a1", "13800138000", 1), None, now);
        d.insert(in_doubt("a2", "13900139000", 2), None, later());
        assert!(d.settle(&report("13800138000", "m1"), |_| 1).is_none(), "the part count is not known yet");
        assert!(d.attach(action("a3", "13700137000"), 1).is_some(), "not in doubt: given back");
        assert!(d.attach(action("a2", "13900139000"), 1).is_none());
        let released = d.due(now);
        assert_eq!(released.len(), 1);
        assert_eq!((released[0].msisdn.as_str(), released[0].action.is_none()), ("13800138000", true));
        assert_eq!(settled(d.settle(&report("13900139000", "m2"), |_| 1)).map(|s| s.action.id), Some("a2".into()));
    }

    #[test]
    fn a_long_sms_released_unsettled_goes_again_and_its_counted_parts_settle_nothing_more() {
        let mut d = Doubts::default();
        let now = Instant::now();
        d.insert(in_doubt("a1", "13800138000", 7), Some((action("a1", "13800138000"), 2)), now);
        let three = |_: &Action| 3;
        assert!(part(d.settle(&report("13800138000", "m1"), three)).is_some());
        assert!(part(d.settle(&report("13800138000", "m2"), three)).is_some(), "two parts reached the gateway");
        let released = d.due(now);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].action.as_ref().map(|(a, n)| (a.id.as_str(), *n)), Some(("a1", 2)));
        assert!(d.is_empty());
        assert!(d.settle(&report("13800138000", "m3"), three).is_none(), "no longer in doubt");
    }

    #[test]
    fn one_sms_per_subscriber_goes_at_a_time_and_the_turn_passes_in_order() {
        let mut t = Turns::default();
        assert!(t.go(action("a1", "13800138000"), 1).is_some());
        assert!(t.go(action("b1", "13900139000"), 1).is_some(), "another subscriber goes at once");
        assert!(t.go(action("a2", "13800138000"), 1).is_none(), "waits for a1");
        assert!(t.go(action("a3", "13800138000"), 1).is_none());
        assert!(t.go(action("a1", "13800138000"), 2).is_some(), "a1 again (a retry) still holds the turn");
        assert!(t.done("13800138000", id_key("a2")).is_none(), "only the holder passes the turn");
        assert_eq!(t.done("13800138000", id_key("a1")).map(|(a, _)| a.id), Some("a2".into()));
        assert!(t.go(action("a4", "13800138000"), 1).is_none(), "a2 holds it now");
        assert_eq!(t.done("13800138000", id_key("a2")).map(|(a, _)| a.id), Some("a3".into()));
        assert_eq!(t.done("13800138000", id_key("a3")).map(|(a, _)| a.id), Some("a4".into()));
        assert!(t.done("13800138000", id_key("a4")).is_none());
        assert!(t.none_waiting());
        t.hold("13800138000", id_key("x"));
        assert!(t.go(action("a5", "13800138000"), 1).is_none(), "an SMS in doubt from before a crash holds it");
    }
}
