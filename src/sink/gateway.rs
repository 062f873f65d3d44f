//! What a gateway (SMPP, Kannel, the call centre's task API) answers when the delivery side
//! offers it an action ([`crate::contact::Action`]). The engine decides actions; the outbox
//! keeps them on disk; a dispatcher takes each pending action and offers it to the gateway of
//! its channel. The gateways share these types so the dispatcher treats them alike: it never
//! knows PDUs or HTTP.

pub use crate::event::OutcomeStatus;
use std::time::Duration;

/// A gateway's answer to one offered action.
#[derive(Clone, Debug, PartialEq)]
pub enum Sent {
    /// The gateway took it. `gateway_ids` are its own ids (SMPP: one `message_id` per part of
    /// a long message; Kannel and the call centre: none or one), kept in the ledger so that
    /// delivery reports can be matched back to the action.
    Accepted { gateway_ids: Vec<String> },
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

/// A report on its way to the dispatcher, holding back the gateway's acknowledgement until it is
/// on disk: SMPP answers `deliver_sm_resp`, and the HTTP callback 200, only when the consumer
/// calls [`Incoming::done`], which the dispatcher does after the ledger is synced. Dropped
/// without `done` (a crash, a shutdown), the report stays unacknowledged and the gateway sends
/// it again later — a report is never lost with the process.
#[derive(Debug)]
pub struct Incoming {
    pub report: Report,
    ack: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Incoming {
    /// A report nobody waits on.
    pub fn new(report: Report) -> Incoming {
        Incoming { report, ack: None }
    }

    /// A report and the receiver that learns when it is safe to acknowledge it.
    pub fn with_ack(report: Report) -> (Incoming, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Incoming { report, ack: Some(tx) }, rx)
    }

    /// The report is safe: let the gateway have its acknowledgement.
    pub fn done(mut self) {
        if let Some(ack) = self.ack.take() {
            let _ = ack.send(());
        }
    }
}
