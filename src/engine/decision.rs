//! A decision: a candidate contact a rule produced, and what became of it.

use crate::refdata::Channel;
use crate::state::TriggerRef;
use crate::util::{Millis, Msisdn, action_hash, format_ts};
use serde::Serialize;

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
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::Dnd => "dnd",
            Suppression::QuietHours => "quiet_hours",
            Suppression::Cap => "cap",
            Suppression::Excluded => "excluded",
            Suppression::ControlGroup => "control_group",
            Suppression::Arbitration => "arbitration",
            Suppression::Capacity => "capacity",
        }
    }
}

/// What became of a candidate contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

#[derive(Clone, Debug)]
pub struct Decision {
    pub key: OrderKey,
    pub id: String,
    pub ts: Millis,
    pub msisdn: Msisdn,
    pub rule: u32,
    /// Shared with the rule: cloning a decision's names costs no allocation.
    pub rule_name: std::sync::Arc<str>,
    pub campaign: std::sync::Arc<str>,
    pub channel: Channel,
    pub priority: i32,
    pub text: Option<String>,
    pub script: Option<String>,
    pub queue: Option<Box<str>>,
    pub trigger: TriggerRef,
    pub outcome: Outcome,
    /// The policy item that decided, in words (`cap "3 per month" of campaign ip_12593`).
    pub detail: Option<String>,
    /// For `arbitration`: the id of the contact that won.
    pub winner: Option<String>,
    /// The contact is worthless after this time (`expire_after` from its trigger).
    pub expires: Option<Millis>,
    /// Decided by a rule in `mode: shadow`: recorded and reported, never sent. A shadow
    /// decision with outcome `Sent` is a would-be action.
    pub shadow: bool,
}

impl Decision {
    /// A contact to make: sent by a live rule. Every sink that sends (actions, stdout, the
    /// outbox, IVR answers) goes by this, so a shadow rule's would-be actions reach none.
    pub fn is_sent(&self) -> bool {
        self.outcome == Outcome::Sent && !self.shadow
    }

    /// Sent, or would have been sent had the rule been live.
    pub fn would_send(&self) -> bool {
        self.outcome == Outcome::Sent
    }

    /// `live` or `shadow` (decision log, metrics label, report).
    pub fn mode(&self) -> &'static str {
        if self.shadow { "shadow" } else { "live" }
    }

    pub fn suppression(&self) -> Option<Suppression> {
        match self.outcome {
            Outcome::Suppressed(r) => Some(r),
            _ => None,
        }
    }
}

/// The deterministic action id: the same trigger decides the same id on every replay. The
/// subscriber is part of it: a daily rule's trigger (`09:00@2026-11-24`) is the same for every
/// subscriber, and the id is the idempotency key at the gateways.
pub fn action_id(rule: &str, msisdn: Msisdn, trigger: &TriggerRef, due: Option<Millis>) -> String {
    format!("a{:016x}", action_hash(rule, msisdn, trigger.kind, &trigger.id, due))
}

#[derive(Serialize)]
struct TriggerJson<'a> {
    kind: &'a str,
    id: &'a str,
    ts: String,
}

#[derive(Serialize)]
struct DecisionJson<'a> {
    id: &'a str,
    ts: String,
    msisdn: String,
    rule: &'a str,
    campaign: &'a str,
    channel: Channel,
    priority: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<&'a str>,
    trigger: TriggerJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

#[derive(Serialize)]
struct DecisionLogJson<'a> {
    #[serde(flatten)]
    action: DecisionJson<'a>,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Suppression>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    winner: Option<&'a str>,
    /// `"shadow"` for a shadow rule's decision; absent for live ones (their lines stay as
    /// they were).
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
}

impl Decision {
    /// The action object of DESIGN.md §2, one line of JSON. Carries the full number: it is
    /// addressed to a gateway. Never log it.
    pub fn to_json(&self, offset: chrono::FixedOffset) -> String {
        serde_json::to_string(&self.json(offset)).unwrap_or_default()
    }

    /// The decision log line: the action plus its outcome, reason and the deciding policy item.
    pub fn to_log_json(&self, offset: chrono::FixedOffset) -> String {
        let (outcome, reason, until) = match self.outcome {
            Outcome::Sent => ("sent", None, None),
            Outcome::Suppressed(r) => ("suppressed", Some(r), None),
            Outcome::Deferred(t) => ("deferred", None, Some(format_ts(t, offset))),
        };
        let j = DecisionLogJson {
            action: self.json(offset),
            outcome,
            reason,
            until,
            detail: self.detail.as_deref(),
            winner: self.winner.as_deref(),
            mode: self.shadow.then_some("shadow"),
        };
        serde_json::to_string(&j).unwrap_or_default()
    }

    /// The action as the outbox and the gateways take it.
    pub fn action(&self, offset: chrono::FixedOffset) -> crate::sink::gateway::Action {
        use crate::sink::gateway::{Action, TriggerJson};
        Action {
            id: self.id.clone(),
            ts: format_ts(self.ts, offset),
            msisdn: self.msisdn.full(),
            rule: self.rule_name.to_string(),
            campaign: self.campaign.to_string(),
            channel: self.channel,
            priority: self.priority,
            text: self.text.clone(),
            script: self.script.clone(),
            queue: self.queue.as_deref().map(str::to_owned),
            trigger: TriggerJson {
                kind: self.trigger.kind.to_owned(),
                id: self.trigger.id.to_string(),
                ts: format_ts(self.trigger.ts, offset),
            },
            expires: self.expires.map(|t| format_ts(t, offset)),
        }
    }

    fn json(&self, offset: chrono::FixedOffset) -> DecisionJson<'_> {
        DecisionJson {
            id: &self.id,
            ts: format_ts(self.ts, offset),
            msisdn: self.msisdn.full(),
            rule: &self.rule_name,
            campaign: &self.campaign,
            channel: self.channel,
            priority: self.priority,
            text: self.text.as_deref(),
            script: self.script.as_deref(),
            queue: self.queue.as_deref(),
            trigger: TriggerJson {
                kind: self.trigger.kind,
                id: &self.trigger.id,
                ts: format_ts(self.trigger.ts, offset),
            },
            expires: self.expires.map(|t| format_ts(t, offset)),
        }
    }
}
