//! What a gateway (SMPP, Kannel, the call centre's task API, the order interface) answers when the delivery side
//! offers it an action ([`crate::contact::Action`]). The engine decides actions; the outbox
//! keeps them on disk; a dispatcher takes each pending action and offers it to the gateway of
//! its channel. The gateways share these types so the dispatcher treats them alike: it never
//! knows PDUs or HTTP.

use crate::contact::Action;
pub use crate::event::OutcomeStatus;
use std::time::Duration;

/// The field an SMS's sender number goes in at a gateway, for [`source`]: its name as the
/// protocol's document spells it (`Src_Id`) and how many digits it holds.
#[derive(Clone, Copy, Debug)]
pub struct SourceField {
    pub name: &'static str,
    pub max: usize,
}

/// The number an SMS goes out from: the action's `sender` (its rule's, its campaign's or the
/// global one; a reply is tied to the SMS by it) when it has one, else the gateway's `configured`
/// source — outbox lines written before actions carried a sender have none. A sender that is not
/// digits or does not fit `field` is the action's failure, in words naming the field: never cut
/// to fit (a cut number is someone else's, and the reply would tie to nothing). The configured
/// source is the operator's own and checked with the config.
pub fn source<'a>(action: &'a Action, configured: &'a str, field: SourceField) -> Result<&'a str, String> {
    let Some(sender) = action.sender.as_deref() else { return Ok(configured) };
    if sender.is_empty() || !sender.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("sender {sender:?} is not a number: {} takes digits only", field.name));
    }
    if sender.len() > field.max {
        return Err(format!(
            "sender {sender:?} is {} digits: {} holds at most {}",
            sender.len(),
            field.name,
            field.max
        ));
    }
    Ok(sender)
}

/// A gateway's answer to one offered action.
#[derive(Clone, Debug, PartialEq)]
pub enum Sent {
    /// The gateway took it. `gateway_ids` are its own ids (SMPP: one `message_id` per part of
    /// a long message; Kannel and the call centre: none or one), kept in the ledger so that
    /// delivery reports can be matched back to the action.
    Accepted { gateway_ids: Vec<String> },
    /// The gateway took it and its answer is already the outcome (the order interface:
    /// `accepted`, or `rejected` with its reason in `detail`); no report will follow.
    Answered { status: OutcomeStatus, detail: String },
    /// Not now (throttled, queue full, connection down, timeout): offer it again later, after
    /// `after` if the gateway said how long.
    Retry { reason: String, after: Option<Duration> },
    /// Never (bad number, message refused, bad request): give up and record why.
    Rejected { reason: String },
    /// It went out and no answer came (the connection dropped or the response timed out after
    /// the request was written): the gateway may have it. Offering it again at once could reach
    /// the subscriber twice, so the dispatcher first waits a while for a report that settles it.
    InDoubt { reason: String },
}

/// A report that came back from a gateway (SMPP `deliver_sm` receipt, Kannel DLR callback, call
/// result callback). Either the action id is known (Kannel and the call centre echo it) or the
/// gateway's own id is (SMPP receipts), and the ledger resolves it.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub action_id: Option<String>,
    pub gateway_id: Option<String>,
    /// The subscriber and the 16-bit reference the submit carried (SMPP receipts that echo
    /// `user_message_reference`): how an action left in doubt by a crash is recognised.
    pub msisdn: Option<String>,
    pub reference: Option<u16>,
    pub status: OutcomeStatus,
    /// The gateway's own words (`stat:UNDELIV err:001`, `busy`), kept for explain and reports.
    pub detail: String,
    /// When the gateway says it happened (ms since the epoch), else when it arrived.
    pub at_ms: i64,
}

/// A subscriber's message to the service (an MO message: a CMPP/SMGP deliver that is not a status
/// report, an SGIP Deliver, an SMPP `deliver_sm` that is not a receipt, Kannel's MO `get-url`).
/// It becomes a `reply` event.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// Who sent it.
    pub msisdn: String,
    /// The service number it was sent to (the SP's long number, `1069…`).
    pub to: String,
    /// The text, decoded (UCS-2, GBK or ASCII); a message that came in parts is reassembled
    /// where the gateway's sink joins them (an SMPP part is a reply of its own).
    pub text: String,
    /// Which gateway brought it: `cmpp`, `smgp`, `sgip`, `smpp`, `kannel`.
    pub gateway: &'static str,
    /// The gateway's own id of the message when it has one (CMPP/SMGP `Msg_Id`, SGIP sequence
    /// number, Kannel's `%I`): a redelivery carries the same id and is recorded once.
    pub gateway_id: Option<String>,
    /// When the gateway says it was sent (ms since the epoch), else when it arrived.
    pub at_ms: i64,
}

/// What came back from a gateway.
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    Report(Report),
    Reply(Reply),
}

impl From<Report> for Inbound {
    fn from(r: Report) -> Inbound {
        Inbound::Report(r)
    }
}

impl From<Reply> for Inbound {
    fn from(r: Reply) -> Inbound {
        Inbound::Reply(r)
    }
}

/// A report or reply on its way to the dispatcher, holding back the gateway's acknowledgement
/// until it is on disk: SMPP answers `deliver_sm_resp`, and the HTTP callback 200, only when the
/// consumer calls [`Incoming::done`], which the dispatcher does after the ledger is synced.
/// Dropped without `done` (a crash, a shutdown), it stays unacknowledged and the gateway sends it
/// again later — nothing is lost with the process.
#[derive(Debug)]
pub struct Incoming {
    pub item: Inbound,
    ack: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Incoming {
    /// One nobody waits on.
    pub fn new(item: impl Into<Inbound>) -> Incoming {
        Incoming { item: item.into(), ack: None }
    }

    /// One and the receiver that learns when it is safe to acknowledge it.
    pub fn with_ack(item: impl Into<Inbound>) -> (Incoming, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Incoming { item: item.into(), ack: Some(tx) }, rx)
    }

    /// The report it carries, if it is one.
    pub fn report(&self) -> Option<&Report> {
        match &self.item {
            Inbound::Report(r) => Some(r),
            Inbound::Reply(_) => None,
        }
    }

    /// The report or reply is safe: let the gateway have its acknowledgement.
    pub fn done(mut self) {
        if let Some(ack) = self.ack.take() {
            let _ = ack.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_sender(sender: Option<&str>) -> Action {
        let mut a: Action = serde_json::from_str(
            r#"{"id":"a1","ts":"2026-11-25T10:00:00+08:00","msisdn":"13800138000","rule":"r","campaign":"c",
                "channel":"sms","priority":1,"text":"hi","trigger":{"kind":"usage","id":"e","ts":"2026-11-25T10:00:00+08:00"}}"#,
        )
        .expect("an action without a sender, as older outbox lines are");
        a.sender = sender.map(str::to_owned);
        a
    }

    const SRC_ID: SourceField = SourceField { name: "Src_Id", max: 21 };

    #[test]
    fn an_sms_goes_out_from_its_sender_else_from_the_configured_source() {
        assert_eq!(source(&with_sender(Some("10658888")), "1069012345", SRC_ID), Ok("10658888"));
        assert_eq!(source(&with_sender(None), "1069012345", SRC_ID), Ok("1069012345"));
        let widest = "1".repeat(21);
        assert_eq!(source(&with_sender(Some(&widest)), "10086", SRC_ID), Ok(widest.as_str()));
    }

    #[test]
    fn a_sender_too_long_for_the_field_fails_naming_it_and_is_never_cut() {
        let long = "1".repeat(22);
        let action = with_sender(Some(&long));
        assert_eq!(
            source(&action, "10086", SRC_ID),
            Err(format!("sender \"{long}\" is 22 digits: Src_Id holds at most 21"))
        );
        let smpp = SourceField { name: "source_addr", max: 20 };
        let err = source(&with_sender(Some(&"9".repeat(21))), "10086", smpp).expect_err("21 digits are too many");
        assert!(err.contains("source_addr holds at most 20"), "{err}");
    }

    #[test]
    fn a_sender_that_is_not_digits_fails_naming_the_field() {
        for bad in ["1065 8888", "+8610658888", "BANK", "１０６５８８８８", ""] {
            let err = source(&with_sender(Some(bad)), "10086", SRC_ID).expect_err(bad);
            assert!(err.contains("is not a number: Src_Id takes digits only"), "{bad}: {err}");
        }
    }
}
