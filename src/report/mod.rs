//! The campaign report: what a rule pack did to a recorded stream (`tidings replay --report`),
//! and what two packs do differently ([`diff`]).
//!
//! The report's figures come from the decisions the replay writes, in the same pass: a
//! [`Collector`] is one more [`Sink`] beside the files, and an [`Observer`] looks at the input
//! on its way into the engine for what decisions do not carry (delivery outcomes, responses).
//! Nothing runs the engine a second time, so the page and `decisions.jsonl` cannot disagree.
//!
//! Layout: [`lift`] (the statistics), [`replies`] (reply, opt-out and acceptance rates, survey
//! scores), [`html`] (the page and its inline SVG charts), [`diff`].

pub mod diff;
pub mod html;
pub mod lift;
pub mod replies;

use crate::contact::{Channel, Decision, Outcome, Suppression};
use crate::engine::Sink;
use crate::engine::Summary;
use crate::event::{Body, Event, Kind, OutcomeStatus};
use crate::refdata::ProfileChange;
use crate::rules::RuleSet;
use crate::time::{HOUR, Millis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// A count per channel, indexed by `Channel as usize`.
pub type PerChannel = [u64; Channel::COUNT];

/// Every suppression reason, in policy order (report columns).
pub const REASONS: [Suppression; 10] = [
    Suppression::CampaignOff,
    Suppression::Excluded,
    Suppression::Dnd,
    Suppression::Cap,
    Suppression::SuppressedAfter,
    Suppression::ControlGroup,
    Suppression::Arbitration,
    Suppression::QuietHours,
    Suppression::Capacity,
    Suppression::Budget,
];

fn reason_idx(r: Suppression) -> usize {
    REASONS.iter().position(|x| *x == r).unwrap_or(0)
}

/// `[report]` in the engine config: what counts as a response to a campaign, for the lift
/// against its control group.
///
/// ```toml
/// [report.response]                 # every campaign with a control group, unless named below
/// kind = "topup"                    # a top-up ...
/// within = "24h"                    # ... within 24 hours of the contact
///
/// [report.campaigns.ip_12593]       # this campaign: the offered service taken up
/// kind = "profile"
/// service = "12593"
/// within = "7d"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// The response for every campaign not named in `campaigns` (default: a top-up within 24h).
    pub response: ResponseConfig,
    /// Per campaign, by name.
    pub campaigns: BTreeMap<String, ResponseConfig>,
}

/// One response definition: an event of `kind` for the same subscriber, after the contact and
/// within `within`, that passes the optional filters of that kind.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// `topup`, `crm`, `usage` or `profile`.
    pub kind: String,
    /// How long after the contact a response counts, e.g. "24h".
    pub within: String,
    /// `topup`: at least this amount, fen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_amount_fen: Option<i64>,
    /// `crm`: the business event, e.g. "service_subscribed".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `crm`: attributes that must equal these values, e.g. `{ service = "12593" }`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
    /// `usage`: dialled through this access code (`via`), e.g. "12593".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// `profile`: the subscriber took this service (`add` or `set` of `services`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        ResponseConfig {
            kind: "topup".into(),
            within: "24h".into(),
            min_amount_fen: None,
            event: None,
            attrs: BTreeMap::new(),
            via: None,
            service: None,
        }
    }
}

/// A checked response definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub config: ResponseConfig,
    pub kind: Kind,
    pub within: Millis,
}

impl ResponseConfig {
    /// Checks the kind, the window and that each filter belongs to the kind; `at` names the
    /// config key in errors.
    pub fn compile(&self, at: &str) -> Result<Response, String> {
        let kind = Kind::parse(&self.kind)
            .filter(|k| matches!(k, Kind::Topup | Kind::Crm | Kind::Usage | Kind::Profile))
            .ok_or_else(|| format!("{at}.kind: `{}` is not a response kind (topup, crm, usage, profile)", self.kind))?;
        let within = crate::time::parse_duration(&self.within).map_err(|e| format!("{at}.within: {e}"))?;
        if within <= 0 {
            return Err(format!("{at}.within: must be longer than zero"));
        }
        let stray = |key: &str, set: bool, wants: Kind| -> Result<(), String> {
            if set && kind != wants {
                return Err(format!("{at}.{key}: only a `{wants}` response has `{key}`"));
            }
            Ok(())
        };
        stray("min_amount_fen", self.min_amount_fen.is_some(), Kind::Topup)?;
        stray("event", self.event.is_some(), Kind::Crm)?;
        stray("attrs", !self.attrs.is_empty(), Kind::Crm)?;
        stray("via", self.via.is_some(), Kind::Usage)?;
        stray("service", self.service.is_some(), Kind::Profile)?;
        Ok(Response { config: self.clone(), kind, within })
    }
}

impl ReportConfig {
    /// Every definition checked (errors name the config key).
    pub fn check(&self) -> Result<(), String> {
        self.response.compile("report.response")?;
        for (name, r) in &self.campaigns {
            r.compile(&format!("report.campaigns.{name}"))?;
        }
        Ok(())
    }
}

impl Response {
    /// In words, for the page: "topup within 24h".
    pub fn describe(&self) -> String {
        let c = &self.config;
        let mut s = c.kind.clone();
        if let Some(e) = &c.event {
            s += &format!(" {e}");
        }
        for (k, v) in &c.attrs {
            s += &format!(" {k}={v}");
        }
        if let Some(a) = c.min_amount_fen {
            s += &format!(" ≥ {}.{:02} CNY", a / 100, a % 100);
        }
        if let Some(v) = &c.via {
            s += &format!(" via {v}");
        }
        if let Some(v) = &c.service {
            s += &format!(": service {v} taken");
        }
        s + &format!(" within {}", c.within)
    }

    pub fn matches(&self, ev: &Event) -> bool {
        let c = &self.config;
        match &ev.body {
            Body::Topup(t) if self.kind == Kind::Topup => c.min_amount_fen.is_none_or(|m| t.amount_fen >= m),
            Body::Crm(x) if self.kind == Kind::Crm => {
                c.event.as_deref().is_none_or(|e| *x.event == *e)
                    && c.attrs.iter().all(|(k, v)| x.attrs.get(k).is_some_and(|a| attr_is(a, v)))
            }
            Body::Usage(u) if self.kind == Kind::Usage => c.via.as_deref().is_none_or(|v| u.via.as_deref() == Some(v)),
            Body::Profile(p) if self.kind == Kind::Profile => match &c.service {
                None => true,
                Some(want) => p.set.iter().any(|ch| match ch {
                    ProfileChange::AddServices(s) | ProfileChange::Services(s) => s.iter().any(|x| **x == **want),
                    _ => false,
                }),
            },
            _ => false,
        }
    }
}

/// A CRM attribute equals the configured text: a string as it is, a number or a boolean as
/// written in the config.
fn attr_is(a: &serde_json::Value, v: &str) -> bool {
    use serde_json::Value;
    match a {
        Value::String(s) => s == v,
        Value::Number(n) => v.parse::<f64>().ok() == n.as_f64(),
        Value::Bool(b) => v.parse::<bool>().ok() == Some(*b),
        _ => false,
    }
}

/// What the input says beyond the decisions: delivery reports and call results, and the
/// responses the lift needs. Call [`Observer::event`] on every event going into the engine.
pub struct Observer {
    /// The distinct response definitions in use; campaigns point into it.
    pub responses: Vec<Response>,
    /// Per definition: the times of matching events, by subscriber.
    seen: Vec<HashMap<u64, Vec<Millis>>>,
    /// Outcome events by channel and status.
    pub outcomes: BTreeMap<(Channel, OutcomeStatus), u64>,
    /// Replies and order results, for the reply figures.
    pub inbox: replies::Inbox,
}

impl Observer {
    /// Watches for the responses of the campaigns with a control group in `rules`.
    pub fn new(cfg: &ReportConfig, rules: &RuleSet) -> Result<(Observer, BTreeMap<String, usize>), String> {
        let mut responses: Vec<Response> = Vec::new();
        let mut by_campaign = BTreeMap::new();
        for c in rules.campaigns.iter().filter(|c| c.control_group.is_some()) {
            let r = match cfg.campaigns.get(&*c.name) {
                Some(r) => r.compile(&format!("report.campaigns.{}", c.name))?,
                None => cfg.response.compile("report.response")?,
            };
            let i = responses.iter().position(|x| *x == r).unwrap_or_else(|| {
                responses.push(r);
                responses.len() - 1
            });
            by_campaign.insert(c.name.to_string(), i);
        }
        let seen = responses.iter().map(|_| HashMap::new()).collect();
        Ok((Observer { responses, seen, outcomes: BTreeMap::new(), inbox: replies::Inbox::default() }, by_campaign))
    }

    pub fn event(&mut self, ev: &Event) {
        if let Body::Outcome(o) = &ev.body {
            *self.outcomes.entry((o.channel, o.status)).or_default() += 1;
        }
        self.inbox.event(ev);
        for (r, seen) in self.responses.iter().zip(self.seen.iter_mut()) {
            if r.matches(ev) {
                seen.entry(ev.msisdn.raw()).or_default().push(ev.ts);
            }
        }
    }

    /// Whether subscriber `m` responded (definition `def`) after `t` and within its window.
    fn responded(&self, def: usize, m: u64, t: Millis) -> bool {
        let w = self.responses[def].within;
        self.seen[def].get(&m).is_some_and(|ts| ts.iter().any(|r| *r > t && *r <= t + w))
    }
}

/// Decisions of one rule or campaign.
#[derive(Debug, Default)]
pub struct Counts {
    /// Candidate contacts: each counted once, however often quiet hours deferred it.
    pub fired: u64,
    pub sent: u64,
    /// The messages the SMS sent take (each part of a long one is billed).
    pub messages: u64,
    pub suppressed: [u64; REASONS.len()],
    /// Still held for the end of quiet hours when the input ended.
    pub deferred: u64,
    /// Subscribers sent to (would-be, for a shadow rule).
    subs: HashSet<u64>,
}

impl Counts {
    fn add(&mut self, d: &Decision) {
        self.fired += 1;
        match d.outcome {
            Outcome::Sent => {
                self.sent += 1;
                self.messages += d.sms_messages();
                self.subs.insert(d.msisdn.raw());
            }
            Outcome::Suppressed(r) => self.suppressed[reason_idx(r)] += 1,
            Outcome::Deferred(_) => self.deferred += 1,
        }
    }
}

/// One arm of a campaign: subscribers and the time of their first decision in it.
#[derive(Debug, Default)]
struct Arm {
    first: HashMap<u64, Millis>,
    contacted: HashSet<u64>,
}

/// Collects the report's figures from the decisions as the engine writes them (a [`Sink`]).
pub struct Collector {
    pub offset: chrono::FixedOffset,
    /// Per rule: channel, campaign, shadow, description (from the pack).
    rules: BTreeMap<Arc<str>, (Channel, Arc<str>, bool, String)>,
    by_rule: BTreeMap<Arc<str>, Counts>,
    /// Per campaign and mode (live false / shadow true).
    by_campaign: BTreeMap<(Arc<str>, bool), Counts>,
    /// Decisions deferred by quiet hours and not yet decided again, by id.
    pending: HashMap<String, Decision>,
    /// Live actions per local hour (hours since the epoch, local) and channel.
    hourly: BTreeMap<i64, PerChannel>,
    /// Shadow would-be actions per local hour and channel.
    hourly_shadow: BTreeMap<i64, PerChannel>,
    actions_by_channel: PerChannel,
    shadow_by_channel: PerChannel,
    suppressed: [u64; REASONS.len()],
    /// Live actions per subscriber.
    per_sub: HashMap<u64, u32>,
    /// Campaigns with a control group (live): treatment and control arms.
    arms: BTreeMap<Arc<str>, (Arm, Arm)>,
    controlled: HashSet<Arc<str>>,
    /// Live SMS and orders, for the reply figures.
    outbox: replies::Outbox,
}

impl Collector {
    pub fn new(rules: &RuleSet, offset: chrono::FixedOffset) -> Collector {
        let meta = rules
            .rules
            .iter()
            .map(|r| (r.name.clone(), (r.channel, r.campaign.clone(), r.shadow, r.desc.to_string())))
            .collect();
        Collector {
            offset,
            rules: meta,
            by_rule: BTreeMap::new(),
            by_campaign: BTreeMap::new(),
            pending: HashMap::new(),
            hourly: BTreeMap::new(),
            hourly_shadow: BTreeMap::new(),
            actions_by_channel: [0; Channel::COUNT],
            shadow_by_channel: [0; Channel::COUNT],
            suppressed: [0; REASONS.len()],
            per_sub: HashMap::new(),
            arms: BTreeMap::new(),
            controlled: rules
                .campaigns
                .iter()
                .filter(|c| c.control_group.is_some())
                .map(|c| Arc::from(&*c.name))
                .collect(),
            outbox: replies::Outbox::default(),
        }
    }

    /// A candidate's final decision (or its deferral still pending at the end).
    fn settle(&mut self, d: &Decision) {
        self.by_rule.entry(d.rule_name.clone()).or_default().add(d);
        self.by_campaign.entry((d.campaign.clone(), d.shadow)).or_default().add(d);
    }

    fn arms(&mut self, d: &Decision) {
        if d.shadow || !self.controlled.contains(&d.campaign) {
            return;
        }
        // Intention to treat: the treatment arm is every candidate that passed the control-group
        // step (sent, deferred, or stopped by a later step — arbitration, quiet hours, capacity, budget),
        // so both arms are drawn from the same population; the control arm is those held out.
        let arm = match d.outcome {
            Outcome::Suppressed(Suppression::ControlGroup) => false,
            Outcome::Suppressed(
                Suppression::CampaignOff | Suppression::Excluded | Suppression::Dnd | Suppression::Cap,
            ) => return,
            _ => true,
        };
        let (t, c) = self.arms.entry(d.campaign.clone()).or_default();
        let a = if arm { t } else { c };
        let m = d.msisdn.raw();
        a.first.entry(m).or_insert(d.ts);
        if d.outcome == Outcome::Sent {
            a.contacted.insert(m);
        }
    }

    fn local_hour(&self, t: Millis) -> i64 {
        (t + i64::from(self.offset.local_minus_utc()) * 1000).div_euclid(HOUR)
    }
}

impl Sink for Collector {
    fn decision(&mut self, d: &Decision) -> std::io::Result<()> {
        self.arms(d);
        if let Outcome::Deferred(_) = d.outcome {
            self.pending.insert(d.id.clone(), d.clone());
            return Ok(());
        }
        self.pending.remove(&d.id);
        self.settle(d);
        self.outbox.decision(d);
        let ch = d.channel as usize;
        match (d.outcome, d.shadow) {
            (Outcome::Sent, false) => {
                self.actions_by_channel[ch] += 1;
                self.hourly.entry(self.local_hour(d.ts)).or_default()[ch] += 1;
                *self.per_sub.entry(d.msisdn.raw()).or_default() += 1;
            }
            (Outcome::Sent, true) => {
                self.shadow_by_channel[ch] += 1;
                self.hourly_shadow.entry(self.local_hour(d.ts)).or_default()[ch] += 1;
            }
            (Outcome::Suppressed(r), false) => self.suppressed[reason_idx(r)] += 1,
            _ => {}
        }
        Ok(())
    }
}

/// The report's figures, as the page shows them and as it embeds them (JSON).
#[derive(Debug, Serialize)]
pub struct Figures {
    pub title: String,
    pub inputs: Vec<String>,
    pub rules_version: String,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
    pub totals: Totals,
    pub dead_letters: BTreeMap<String, u64>,
    pub actions_by_channel: BTreeMap<String, u64>,
    pub shadow_by_channel: BTreeMap<String, u64>,
    pub suppressed: BTreeMap<String, u64>,
    pub rules: Vec<Row>,
    pub campaigns: Vec<Row>,
    /// Local hour start (RFC 3339) and live actions per channel [sms, call, ivr, order].
    pub timeline: Vec<(String, PerChannel)>,
    pub timeline_shadow: Vec<(String, PerChannel)>,
    /// Subscribers by number of live contacts: index = contacts.
    pub contacts_per_subscriber: Vec<u64>,
    pub outcomes: Outcomes,
    pub lift: Vec<LiftRow>,
    pub replies: replies::ReplyFigures,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub events: u64,
    pub events_by_kind: BTreeMap<String, u64>,
    pub dead_letters: u64,
    /// Candidate contacts of live rules (each once).
    pub candidates: u64,
    pub actions: u64,
    /// The messages the live SMS took: what the gateway bills (each part of a long one).
    pub sms_messages: u64,
    pub suppressed: u64,
    pub deferred_pending: u64,
    /// Would-be actions of shadow rules.
    pub shadow_actions: u64,
    pub subscribers: u64,
}

/// One rule or campaign.
#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'static str>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub desc: String,
    pub fired: u64,
    pub sent: u64,
    /// The messages its SMS sent took (0 on other channels).
    pub messages: u64,
    pub suppressed: BTreeMap<String, u64>,
    pub deferred: u64,
    pub subscribers: u64,
}

#[derive(Debug, Serialize, Default)]
pub struct Outcomes {
    /// By channel, then status.
    pub by_channel: BTreeMap<String, BTreeMap<String, u64>>,
    /// SMS delivered / (delivered + failed + expired), when there is any SMS report.
    pub delivery_rate: Option<f64>,
    /// Calls answered / call results.
    pub answer_rate: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct LiftRow {
    pub campaign: String,
    pub response: String,
    pub treatment: lift::Rate,
    pub control: lift::Rate,
    /// Treatment subscribers actually contacted (the rest lost arbitration, quiet hours, ...).
    pub contacted: u64,
    pub lift: Option<lift::Lift>,
}

fn reasons_map(a: &[u64; REASONS.len()]) -> BTreeMap<String, u64> {
    REASONS.iter().zip(a).map(|(r, n)| (r.as_str().to_string(), *n)).collect()
}

fn channels_map(a: &PerChannel) -> BTreeMap<String, u64> {
    Channel::ALL.iter().zip(a).map(|(c, n)| (c.as_str().to_string(), *n)).collect()
}

/// Everything the page needs, besides the collector.
pub struct Context<'a> {
    pub title: String,
    pub inputs: Vec<String>,
    pub rules_version: String,
    pub summary: &'a Summary,
    pub observer: &'a Observer,
    /// Campaign -> response definition index in the observer.
    pub responses: &'a BTreeMap<String, usize>,
    /// Contact policy's reply window, unsubscribe keywords and the keywords each rule's SMS
    /// asks for: replies are tied and read as the engine ties and reads them.
    pub ties: replies::Ties<'a>,
}

impl Collector {
    /// The figures, once the run has ended.
    pub fn finish(mut self, cx: &Context) -> Figures {
        let offset = self.offset;
        let mut pending: Vec<Decision> = self.pending.drain().map(|(_, d)| d).collect();
        pending.sort_by(|a, b| a.id.cmp(&b.id));
        for d in &pending {
            self.settle(d);
        }
        let row = |name: &str, c: &Counts, mode: bool| Row {
            name: name.to_string(),
            mode: if mode { "shadow" } else { "live" },
            campaign: None,
            channel: None,
            desc: String::new(),
            fired: c.fired,
            sent: c.sent,
            messages: c.messages,
            suppressed: reasons_map(&c.suppressed),
            deferred: c.deferred,
            subscribers: c.subs.len() as u64,
        };
        let empty = Counts::default();
        let rules: Vec<Row> = self
            .rules
            .iter()
            .map(|(name, (ch, campaign, shadow, desc))| {
                let mut r = row(name, self.by_rule.get(name).unwrap_or(&empty), *shadow);
                r.campaign = Some(campaign.to_string());
                r.channel = Some(ch.as_str());
                r.desc = desc.clone();
                r
            })
            .collect();
        let campaigns: Vec<Row> = self.by_campaign.iter().map(|((name, shadow), c)| row(name, c, *shadow)).collect();
        let live_fired: u64 = self.by_campaign.iter().filter(|((_, s), _)| !s).map(|(_, c)| c.fired).sum();
        let live_pending: u64 = self.by_campaign.iter().filter(|((_, s), _)| !s).map(|(_, c)| c.deferred).sum();
        let live_messages: u64 = self.by_campaign.iter().filter(|((_, s), _)| !s).map(|(_, c)| c.messages).sum();
        let hour = |h: &i64| crate::time::format_ts(h * HOUR - i64::from(offset.local_minus_utc()) * 1000, offset);
        let fill = |m: &BTreeMap<i64, PerChannel>, span: Option<(i64, i64)>| -> Vec<(String, PerChannel)> {
            let Some((a, b)) = span else { return Vec::new() };
            (a..=b).map(|h| (hour(&h), m.get(&h).copied().unwrap_or_default())).collect()
        };
        let span = match (cx.summary.first_ts, cx.summary.last_ts) {
            (Some(a), Some(b)) => {
                let keys = self.hourly.keys().chain(self.hourly_shadow.keys());
                let (lo, hi) =
                    keys.fold((self.local_hour(a), self.local_hour(b)), |(lo, hi), h| (lo.min(*h), hi.max(*h)));
                Some((lo, hi))
            }
            _ => None,
        };
        let subscribers = (cx.summary.subscribers as u64).max(self.per_sub.len() as u64);
        let most = self.per_sub.values().copied().max().unwrap_or(0) as usize;
        let mut dist = vec![0u64; most + 1];
        for n in self.per_sub.values() {
            dist[*n as usize] += 1;
        }
        dist[0] = subscribers - self.per_sub.len() as u64;
        let mut outcomes = Outcomes::default();
        for ((ch, st), n) in &cx.observer.outcomes {
            *outcomes.by_channel.entry(ch.as_str().into()).or_default().entry(st.as_str().into()).or_default() += n;
        }
        let get = |ch: Channel, st: OutcomeStatus| cx.observer.outcomes.get(&(ch, st)).copied().unwrap_or(0);
        let sms_total: u64 = [OutcomeStatus::Delivered, OutcomeStatus::Failed, OutcomeStatus::Expired]
            .iter()
            .map(|s| get(Channel::Sms, *s))
            .sum();
        outcomes.delivery_rate =
            (sms_total > 0).then(|| get(Channel::Sms, OutcomeStatus::Delivered) as f64 / sms_total as f64);
        let calls: u64 = cx.observer.outcomes.iter().filter(|((c, _), _)| *c == Channel::Call).map(|(_, n)| *n).sum();
        outcomes.answer_rate = (calls > 0).then(|| get(Channel::Call, OutcomeStatus::Answered) as f64 / calls as f64);
        let lift = self
            .arms
            .iter()
            .filter_map(|(campaign, (t, c))| {
                let def = *cx.responses.get(&**campaign)?;
                let rate = |a: &Arm| lift::Rate {
                    n: a.first.len() as u64,
                    responders: a.first.iter().filter(|(m, ts)| cx.observer.responded(def, **m, **ts)).count() as u64,
                };
                let (rt, rc) = (rate(t), rate(c));
                Some(LiftRow {
                    campaign: campaign.to_string(),
                    response: cx.observer.responses[def].describe(),
                    treatment: rt,
                    control: rc,
                    contacted: t.contacted.len() as u64,
                    lift: lift::lift(rt, rc, lift::Z95),
                })
            })
            .collect();
        let replies = replies::figures(&cx.observer.inbox, &mut self.outbox, &cx.ties);
        let s = cx.summary;
        Figures {
            title: cx.title.clone(),
            inputs: cx.inputs.clone(),
            rules_version: cx.rules_version.clone(),
            first_event: s.first_ts.map(|t| crate::time::format_ts(t, offset)),
            last_event: s.last_ts.map(|t| crate::time::format_ts(t, offset)),
            totals: Totals {
                events: s.events,
                events_by_kind: crate::engine::kind_counts(s)
                    .filter(|(_, n)| *n > 0)
                    .map(|(k, n)| (k.as_str().to_string(), n))
                    .collect(),
                dead_letters: s.dead_total(),
                candidates: live_fired,
                actions: self.actions_by_channel.iter().sum(),
                sms_messages: live_messages,
                suppressed: self.suppressed.iter().sum(),
                deferred_pending: live_pending,
                shadow_actions: self.shadow_by_channel.iter().sum(),
                subscribers,
            },
            dead_letters: s.dead_letters.iter().map(|(r, n)| (r.as_str().to_string(), *n)).collect(),
            actions_by_channel: channels_map(&self.actions_by_channel),
            shadow_by_channel: channels_map(&self.shadow_by_channel),
            suppressed: reasons_map(&self.suppressed),
            rules,
            campaigns,
            timeline: fill(&self.hourly, span),
            timeline_shadow: if self.hourly_shadow.is_empty() { Vec::new() } else { fill(&self.hourly_shadow, span) },
            contacts_per_subscriber: dist,
            outcomes,
            lift,
            replies,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Decoder;

    fn ev(line: &str) -> Event {
        Decoder::default().decode(line.as_bytes(), "t", 1).expect("a line").expect("an event")
    }

    #[test]
    fn response_definitions_are_checked_and_matched() {
        let cfg: ReportConfig = toml::from_str(
            r#"
[response]
kind = "topup"
min_amount_fen = 3000

[campaigns.ip_12593]
kind = "crm"
event = "service_subscribed"
attrs = { service = "12593" }
within = "7d"
"#,
        )
        .unwrap();
        cfg.check().unwrap();
        let topup = cfg.response.compile("report.response").unwrap();
        assert_eq!(topup.within, 24 * HOUR);
        let t = |fen: i64| {
            ev(&format!(
                r#"{{"kind":"topup","ts":"2026-11-24T10:00:00+08:00","msisdn":"13800138000","amount_fen":{fen},"channel":"card"}}"#
            ))
        };
        assert!(topup.matches(&t(3000)) && !topup.matches(&t(2999)));
        let crm = cfg.campaigns["ip_12593"].compile("x").unwrap();
        let c = |attrs: &str| {
            ev(&format!(
                r#"{{"kind":"crm","ts":"2026-11-24T10:00:00+08:00","msisdn":"13800138000","event":"service_subscribed","attrs":{attrs}}}"#
            ))
        };
        assert!(crm.matches(&c(r#"{"service":"12593"}"#)));
        assert!(crm.matches(&c(r#"{"service":12593}"#)), "a number attribute matches its text");
        assert!(!crm.matches(&c(r#"{"service":"12580"}"#)) && !crm.matches(&t(5000)));
        assert_eq!(crm.describe(), "crm service_subscribed service=12593 within 7d");

        let bad = |toml_text: &str| toml::from_str::<ReportConfig>(toml_text).unwrap().check().unwrap_err();
        assert!(bad("response = { kind = \"ivr\" }").contains("report.response.kind: `ivr` is not a response kind"));
        assert!(
            bad("response = { kind = \"topup\", via = \"12593\" }").contains("report.response.via: only a `usage`")
        );
        assert!(bad("[campaigns.x]\nkind = \"crm\"\nwithin = \"0s\"").contains("report.campaigns.x.within"));
        assert!(toml::from_str::<ReportConfig>("response = { kind = \"topup\", windw = \"1d\" }").is_err());
    }
}
