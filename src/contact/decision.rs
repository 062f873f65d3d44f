//! A decision: a candidate contact a rule produced, what became of it, and the lines that
//! carry it out (the action object of DESIGN.md §2 and the decision log).

use super::{Channel, OrderKey, Outcome, Suppression, TriggerRef};
use crate::time::{Millis, format_ts};
use crate::util::Msisdn;
use serde::Serialize;

/// A candidate contact and what contact policy made of it.
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
    /// The rendered template: the SMS or IVR text, or an order's offer code (see
    /// [`Decision::message`] and [`Decision::offer`] for which).
    pub text: Option<String>,
    pub script: Option<String>,
    pub queue: Option<Box<str>>,
    /// What a reply to this SMS is about (the rule's `about:`, e.g. a store id).
    pub about: Option<Box<str>>,
    /// The number an SMS goes out from (the rule's, its campaign's or the global `sender`):
    /// what a reply is sent back to, and so how it is tied to this SMS.
    pub sender: Option<std::sync::Arc<str>>,
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

    /// The messages its SMS takes as sent (each part of a long one is billed as one); 0 on
    /// another channel.
    pub fn sms_messages(&self) -> u64 {
        match (self.channel, self.text.as_deref()) {
            (super::Channel::Sms, Some(t)) => super::sms_parts(t) as u64,
            _ => 0,
        }
    }

    /// `live` or `shadow` (decision log, metrics label, report).
    pub fn mode(&self) -> &'static str {
        if self.shadow { "shadow" } else { "live" }
    }

    /// What the rule wrote for this contact, for holding it to the end of quiet hours.
    pub fn written(&self) -> super::Written {
        super::Written {
            text: self.text.as_deref().map(Into::into),
            script: self.script.as_deref().map(Into::into),
            queue: self.queue.clone(),
            about: self.about.clone(),
        }
    }

    /// The message an SMS or IVR answer says (`text` of the action line).
    pub fn message(&self) -> Option<&str> {
        self.text.as_deref().filter(|_| self.channel != Channel::Order)
    }

    /// The offer an order asks the order interface for (`offer` of the action line).
    pub fn offer(&self) -> Option<&str> {
        self.text.as_deref().filter(|_| self.channel == Channel::Order)
    }

    pub fn suppression(&self) -> Option<Suppression> {
        match self.outcome {
            Outcome::Suppressed(r) => Some(r),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct TriggerOut<'a> {
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
    #[serde(skip_serializing_if = "Option::is_none")]
    sender: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    about: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offer: Option<&'a str>,
    trigger: TriggerOut<'a>,
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

    fn json(&self, offset: chrono::FixedOffset) -> DecisionJson<'_> {
        DecisionJson {
            id: &self.id,
            ts: format_ts(self.ts, offset),
            msisdn: self.msisdn.full(),
            rule: &self.rule_name,
            campaign: &self.campaign,
            channel: self.channel,
            priority: self.priority,
            text: self.message(),
            script: self.script.as_deref(),
            queue: self.queue.as_deref(),
            sender: self.sender.as_deref(),
            about: self.about.as_deref(),
            offer: self.offer(),
            trigger: TriggerOut {
                kind: self.trigger.kind,
                id: &self.trigger.id,
                ts: format_ts(self.trigger.ts, offset),
            },
            expires: self.expires.map(|t| format_ts(t, offset)),
        }
    }
}
