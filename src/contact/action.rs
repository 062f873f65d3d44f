//! The action: a contact to make, as the outbox keeps it on disk and the delivery side offers
//! it to the gateway of its channel (SMPP, Kannel, the call centre's task API, the operator's
//! order interface).

use super::{Channel, Decision};
use crate::time::format_ts;
use serde::{Deserialize, Serialize};

/// An action as the outbox holds it: the action object of DESIGN.md §2 (the line
/// `actions.jsonl` carries), plus the expiry when the rule set one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Deterministic id: the idempotency key at every gateway.
    pub id: String,
    /// Event time of the decision (RFC 3339 with the engine's offset).
    pub ts: String,
    /// The full number: actions address the subscriber. Never log it.
    pub msisdn: String,
    pub rule: String,
    pub campaign: String,
    pub channel: Channel,
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The number an SMS goes out from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// What a reply to this SMS is about (the rule's `about:`, e.g. a store id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    /// An order's offer or product code, as the order interface knows it (`12593`,
    /// `music_club`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    pub trigger: TriggerJson,
    /// After this time (RFC 3339) the contact is worthless and must not be made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerJson {
    pub kind: String,
    pub id: String,
    pub ts: String,
}

impl Decision {
    /// The action as the outbox and the gateways take it.
    pub fn action(&self, offset: chrono::FixedOffset) -> Action {
        Action {
            id: self.id.clone(),
            ts: format_ts(self.ts, offset),
            msisdn: self.msisdn.full(),
            rule: self.rule_name.to_string(),
            campaign: self.campaign.to_string(),
            channel: self.channel,
            priority: self.priority,
            text: self.message().map(str::to_owned),
            script: self.script.clone(),
            queue: self.queue.as_deref().map(str::to_owned),
            sender: self.sender.as_deref().map(str::to_owned),
            about: self.about.as_deref().map(str::to_owned),
            offer: self.offer().map(str::to_owned),
            trigger: TriggerJson {
                kind: self.trigger.kind.to_owned(),
                id: self.trigger.id.to_string(),
                ts: format_ts(self.trigger.ts, offset),
            },
            expires: self.expires.map(|t| format_ts(t, offset)),
        }
    }
}
