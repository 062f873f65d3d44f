//! The ledger's lines (`ledger.jsonl`, see [`super::outbox`]): what became of each action, the
//! outcomes gateways reported, the replies recorded ([`super::reply`]) and the marks that end a
//! round.

use super::gateway::OutcomeStatus;
use serde::{Deserialize, Serialize};

/// One line of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "st", rename_all = "snake_case")]
pub enum Entry {
    /// About to be offered to a gateway (attempt number, and the 16-bit reference an SMSC can
    /// echo in a receipt). Synced before sending: a crash after this line leaves the action
    /// "in doubt" until a receipt or the grace period settles it.
    Sending { id: String, attempt: u32, reference: u16, msisdn: String, at: i64 },
    /// A gateway took it. What an outcome report needs later is kept here.
    Accepted {
        id: String,
        gateway_ids: Vec<String>,
        msisdn: String,
        rule: String,
        campaign: String,
        channel: String,
        at: i64,
    },
    /// A gateway refused it for good.
    Rejected { id: String, reason: String, at: i64 },
    /// Its time ran out before a gateway took it.
    Expired { id: String, at: i64 },
    /// The report of one part of a long SMS in doubt (its gateway id): the SMS is settled when
    /// every part has one.
    Part { id: String, gateway_id: String, at: i64 },
    /// What the gateway reported afterwards.
    Outcome { id: String, status: OutcomeStatus, detail: String, at: i64 },
    /// A subscriber's reply written as event `id`: a redelivery carrying `key` (16 hex digits)
    /// is passed over until `until` (ms since the epoch).
    Reply { id: String, key: String, at: i64, until: i64 },
    /// The end of a round: the outcomes file is `outcomes` bytes long with its lines.
    Mark { outcomes: u64, at: i64 },
}

impl Entry {
    pub fn id(&self) -> &str {
        match self {
            Entry::Sending { id, .. }
            | Entry::Accepted { id, .. }
            | Entry::Rejected { id, .. }
            | Entry::Expired { id, .. }
            | Entry::Part { id, .. }
            | Entry::Outcome { id, .. }
            | Entry::Reply { id, .. } => id,
            Entry::Mark { .. } => "",
        }
    }

    /// Whether the entry goes with an event line in the outcomes file.
    pub fn writes_line(&self) -> bool {
        matches!(self, Entry::Rejected { .. } | Entry::Expired { .. } | Entry::Outcome { .. } | Entry::Reply { .. })
    }
}
