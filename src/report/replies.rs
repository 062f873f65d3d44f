//! Replies in the report: what share of each rule's and campaign's SMS the subscribers
//! answered, answered with a refusal (an unsubscribe keyword), and answered by taking the offer
//! (an order the reply placed that the order interface accepted); and the scores survey answers
//! gave, per thing the survey asked about (a store, from the rule's `about:`).
//!
//! A reply is tied as contact policy ties it: to the latest live SMS sent to the subscriber
//! from the number the reply went to, within the reply window, that asked for its keyword
//! ([`crate::policy::replies::sms_asks`], by rule name), else the latest such SMS. The [`Inbox`] takes the replies
//! and the order results on their way into the engine, the [`Outbox`] the SMS and orders as
//! they are decided; [`figures`] ties them once the run has ended.

use crate::contact::{Channel, Decision};
use crate::event::{Body, Event, OutcomeStatus};
use crate::rules::policy::Unsubscribe;
use crate::time::Millis;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A subscriber's reply as it came in.
struct Seen {
    msisdn: u64,
    ts: Millis,
    id: Box<str>,
    to: Box<str>,
    keyword: Box<str>,
}

/// What the input says: the replies, and what became of each order (by action id).
#[derive(Default)]
pub struct Inbox {
    replies: Vec<Seen>,
    orders: HashMap<Box<str>, OutcomeStatus>,
}

impl Inbox {
    pub fn event(&mut self, ev: &Event) {
        match &ev.body {
            Body::Reply(r) => self.replies.push(Seen {
                msisdn: ev.msisdn.raw(),
                ts: ev.ts,
                id: ev.id.as_str().into(),
                to: r.to.as_str().into(),
                keyword: r.keyword.as_str().into(),
            }),
            Body::Outcome(o) if o.channel == Channel::Order => {
                self.orders.insert(o.action_id.clone(), o.status);
            }
            _ => {}
        }
    }
}

/// A live SMS as it was sent.
struct Sms {
    ts: Millis,
    sender: Arc<str>,
    rule: Arc<str>,
    campaign: Arc<str>,
    about: Option<Box<str>>,
}

/// What the decisions say: the live SMS by subscriber, and the orders by the event that
/// placed them.
#[derive(Default)]
pub struct Outbox {
    sms: HashMap<u64, Vec<Sms>>,
    orders: HashMap<Arc<str>, Vec<String>>,
}

impl Outbox {
    pub fn decision(&mut self, d: &Decision) {
        if !d.is_sent() {
            return;
        }
        match d.channel {
            Channel::Sms => self.sms.entry(d.msisdn.raw()).or_default().push(Sms {
                ts: d.ts,
                sender: d.sender.clone().unwrap_or_else(|| Arc::from("")),
                rule: d.rule_name.clone(),
                campaign: d.campaign.clone(),
                about: d.about.clone(),
            }),
            Channel::Order => self.orders.entry(d.trigger.id.clone()).or_default().push(d.id.clone()),
            Channel::Call | Channel::Ivr => {}
        }
    }
}

/// The replies to one rule's or campaign's live SMS.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ReplyRow {
    pub name: String,
    /// Live SMS sent.
    pub sms: u64,
    /// SMS answered by at least one reply.
    pub replied: u64,
    /// SMS answered by a refusal (an unsubscribe keyword).
    pub opted_out: u64,
    /// SMS answered by a reply that placed an order the order interface accepted.
    pub accepted: u64,
    pub reply_rate: Option<f64>,
    pub opt_out_rate: Option<f64>,
    pub acceptance_rate: Option<f64>,
}

/// The scores given in answer to one rule's SMS about one thing (a store).
#[derive(Debug, Serialize, PartialEq)]
pub struct ScoreRow {
    pub rule: String,
    pub about: String,
    pub answers: u64,
    pub mean: f64,
    /// Answers per score.
    pub scores: BTreeMap<u8, u64>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ReplyFigures {
    /// Replies read.
    pub replies: u64,
    /// Replies that answered no SMS of this stream within the reply window.
    pub untied: u64,
    /// Refusals among those (an untied refusal refuses all marketing).
    pub untied_opt_outs: u64,
    /// Rules with live SMS, by name.
    pub rules: Vec<ReplyRow>,
    /// Campaigns with live SMS, by name.
    pub campaigns: Vec<ReplyRow>,
    pub scores: Vec<ScoreRow>,
}

/// The flags of one SMS's answers.
#[derive(Default, Clone, Copy)]
struct Answered {
    replied: bool,
    opted_out: bool,
    accepted: bool,
}

/// A score: a reply that is a whole number from 0 to 10.
fn score(keyword: &str) -> Option<u8> {
    keyword.parse::<u8>().ok().filter(|n| *n <= 10 && keyword.len() <= 2)
}

/// How replies are tied and read: contact policy's reply window and unsubscribe keywords, and
/// the keywords each rule's SMS asks for, by rule name.
pub struct Ties<'a> {
    pub reply_window: Millis,
    pub unsubscribe: &'a Unsubscribe,
    pub asks: &'a HashMap<Arc<str>, Box<[Box<str>]>>,
}

/// Ties the replies in `inbox` to the SMS in `outbox` and counts what they say.
pub fn figures(inbox: &Inbox, outbox: &mut Outbox, ties: &Ties) -> ReplyFigures {
    let (reply_window, unsubscribe) = (ties.reply_window, ties.unsubscribe);
    for list in outbox.sms.values_mut() {
        list.sort_by_key(|s| s.ts);
    }
    let mut f = ReplyFigures { replies: inbox.replies.len() as u64, ..ReplyFigures::default() };
    // Answers per SMS, by (subscriber, index in their list).
    let mut answered: HashMap<(u64, usize), Answered> = HashMap::new();
    let mut scores: BTreeMap<(Arc<str>, Box<str>), BTreeMap<u8, u64>> = BTreeMap::new();
    for r in &inbox.replies {
        let refuses = unsubscribe.scope_of(&r.keyword, true).is_some();
        let list = outbox.sms.get(&r.msisdn).map_or(&[][..], |v| &v[..]);
        let since = r.ts.saturating_sub(reply_window);
        let sent = list.iter().enumerate().rev().filter(|(_, s)| (since..=r.ts).contains(&s.ts) && *s.sender == *r.to);
        let asked = |(_, s): &(usize, &Sms)| {
            !r.keyword.is_empty() && ties.asks.get(&s.rule).is_some_and(|a| a.contains(&r.keyword))
        };
        let Some((i, _)) = crate::policy::replies::answered_of(sent, asked) else {
            f.untied += 1;
            f.untied_opt_outs += u64::from(refuses);
            continue;
        };
        let a = answered.entry((r.msisdn, i)).or_default();
        a.replied = true;
        a.opted_out |= refuses;
        let placed = outbox.orders.get(&*r.id).map_or(&[][..], |v| &v[..]);
        a.accepted |= placed.iter().any(|id| inbox.orders.get(id.as_str()) == Some(&OutcomeStatus::Accepted));
        if let (Some(about), Some(n)) = (&list[i].about, score(&r.keyword)) {
            *scores.entry((list[i].rule.clone(), about.clone())).or_default().entry(n).or_default() += 1;
        }
    }
    let mut rules: BTreeMap<Arc<str>, ReplyRow> = BTreeMap::new();
    let mut campaigns: BTreeMap<Arc<str>, ReplyRow> = BTreeMap::new();
    for (m, list) in &outbox.sms {
        for (i, s) in list.iter().enumerate() {
            let a = answered.get(&(*m, i)).copied().unwrap_or_default();
            for row in [rules.entry(s.rule.clone()).or_default(), campaigns.entry(s.campaign.clone()).or_default()] {
                row.sms += 1;
                row.replied += u64::from(a.replied);
                row.opted_out += u64::from(a.opted_out);
                row.accepted += u64::from(a.accepted);
            }
        }
    }
    let rows = |m: BTreeMap<Arc<str>, ReplyRow>| -> Vec<ReplyRow> {
        m.into_iter()
            .map(|(name, mut r)| {
                let rate = |n: u64| (r.sms > 0).then(|| n as f64 / r.sms as f64);
                (r.reply_rate, r.opt_out_rate, r.acceptance_rate) =
                    (rate(r.replied), rate(r.opted_out), rate(r.accepted));
                r.name = name.to_string();
                r
            })
            .collect()
    };
    f.rules = rows(rules);
    f.campaigns = rows(campaigns);
    f.scores = scores
        .into_iter()
        .map(|((rule, about), scores)| {
            let answers: u64 = scores.values().sum();
            let total: u64 = scores.iter().map(|(s, n)| u64::from(*s) * n).sum();
            ScoreRow {
                rule: rule.to_string(),
                about: about.into(),
                answers,
                mean: total as f64 / answers as f64,
                scores,
            }
        })
        .collect();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_is_a_whole_number_from_zero_to_ten() {
        assert_eq!(
            ["0", "5", "10", "11", "05x", "TD", "-1", "007"].map(score),
            [Some(0), Some(5), Some(10), None, None, None, None, None]
        );
    }
}
