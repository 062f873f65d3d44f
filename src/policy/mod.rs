//! Contact policy: what stands between a candidate contact a rule produced and an action.
//!
//! The shard hands [`ContactPolicy::decide`] the candidates of one trigger (an event, a timer
//! that fired, a daily tick) and the subscriber they are for. Every candidate goes through the
//! same steps, in event time, on that subscriber's own state (so no lock, and replay decides
//! as live did), each step in a file of its own:
//!
//! 0. the campaign's plan: outside its dates, or `paused` / `ended` -> `campaign_off`
//!    ([`campaign`])
//! 1. exclusions (statuses, segments, tiers; global and per rule, a rule's also derived
//!    attributes) -> `excluded` ([`exclusions`])
//! 2. do-not-disturb of the channel (transactional messages too, unless the rule says
//!    `ignore_dnd`), the operator's opt-out list and the refusals the subscriber made by reply
//!    (from the reply's moment; never for transactional messages) -> `dnd` ([`exclusions`])
//! 3. frequency caps: per rule, per campaign, per channel and across all touchpoints, in
//!    calendar or rolling windows, and the campaign's streak of consecutive months -> `cap`
//!    (transactional rules pass all but their own rule caps) ([`caps`]); then the rule's and
//!    its campaign's `suppress_after`: offers the subscriber kept ignoring stop for a while ->
//!    `suppressed_after` (never a transactional message) ([`suppress`])
//! 4. the campaign's control group (deterministic hash of msisdn and campaign) ->
//!    `control_group` ([`control`]); never for a contact that answers the subscriber's own
//!    request (`request: true`), which passes its campaign's caps, streak and
//!    `suppress_after` too
//! 5. arbitration: one contact per subscriber per trigger whatever the channel (two on
//!    different channels when a rule says `alongside: true`), and one per channel per
//!    `arbitration_window`, highest priority first -> `arbitration`, naming the winner
//!    ([`arbitration`])
//! 6. quiet hours in local time: `defer` (the shard holds the contact as a timer of the
//!    subscriber and decides it again when they end; `quiet_hours` if it would expire first),
//!    `drop` (`quiet_hours`) or `ignore` ([`quiet`])
//!
//! A contact that passes is recorded in the subscriber's contact history
//! ([`crate::state::ContactLog`]), which the caps count. Shadow rules go through the same steps
//! beside the live ones without changing anything live ([`shadow`]).
//!
//! Replies ([`replies`]) come to policy too, before the rules see them: policy ties a reply to
//! the SMS it answers by each rule's sender number (it owns the contact history), records the
//! refusal an unsubscribe keyword makes, and puts the unsubscribe footer on every marketing SMS
//! it lets go.
//!
//! Channel capacity (gateway submissions per second, call tasks per minute) is global, so it
//! cannot be decided per subscriber: the engine's write side offers every decision, in output
//! order after the shards, to [`capacity::Capacity`]: over capacity a contact waits while it is
//! valid and is recorded as `capacity` if it expires. A campaign's budget is global too: what
//! capacity lets go is offered, in the same order, to [`budget::Budgets`], which stops a contact
//! that would overspend its campaign -> `budget`.
//!
//! An order (channel `order`: an offer the subscriber accepted, by reply, passed to the
//! operator's order interface) is the subscriber's own request, not a contact. It goes through
//! exclusions (a cancelled or suspended subscriber cannot order), its own rule's caps and
//! arbitration among the order rules of one trigger (two rules reading the same reply place one
//! order); it is not subject to do-not-disturb or the opt-out list, the control group,
//! campaign, channel or touchpoint caps, the arbitration window, quiet hours or capacity, and
//! it is recorded in the contact history only for its rule's caps (it counts toward no other).
//!
//! What each step applies is declared in the engine config ([`GlobalPolicy`]) and the rule
//! files ([`RulePolicy`](crate::rules::policy::RulePolicy),
//! [`CampaignPolicy`](crate::rules::policy::CampaignPolicy)); those declarations and their
//! parsers are in [`crate::rules::policy`], where the rule compiler and the config build them.

mod arbitration;
pub mod budget;
mod campaign;
pub mod capacity;
mod caps;
mod control;
mod exclusions;
mod quiet;
pub mod replies;
mod shadow;
mod suppress;

pub use capacity::{Capacities, parse_rate};
pub use control::in_control_group;
pub use shadow::ShadowContacts;

use crate::contact::{Candidate, Channel, Decision, Outcome, action_id};
use crate::refdata::{Profile, RefData};
use crate::rules::policy::{CalendarUnit, Cap, GlobalPolicy, period};
use crate::rules::{Rule, RuleSet};
use crate::state::table::Subscriber;
use crate::state::{ContactLog, ContactRec, SubState};
use crate::util::{Msisdn, stable_hash};
use std::sync::Arc;

/// Contact policy as a run applies it: the global policy, and the rule pack whose rules and
/// campaigns declare their own. Built once per pack (again on reload) and shared by the
/// shards; everything that changes as it decides is the subscriber's or the caller's.
#[derive(Debug)]
pub struct ContactPolicy {
    global: GlobalPolicy,
    rules: Arc<RuleSet>,
    /// The engine's offset: calendar caps and quiet hours are in local time.
    offset: chrono::FixedOffset,
    /// How long contact history is kept (the longest cap window, the reply window).
    keep: i64,
    /// How long a record of each rule (by index) stays in the history: see [`ContactPolicy::new`].
    keeps: Vec<i64>,
    /// The number each rule's SMS go out from (its own `sender`, its campaign's, the global
    /// one), by rule index.
    senders: Vec<Arc<str>>,
    /// The keywords each rule's SMS asks the subscriber to reply, by rule index
    /// ([`replies::sms_asks`]): its text's (`回复KTBY`), and on a marketing SMS every
    /// unsubscribe keyword.
    asks: Vec<Box<[Box<str>]>>,
}

/// The subscriber a candidate is for, as the screening steps see them: their record, the
/// run's reference data (the operator's opt-out list, the opt-out journal), the refusals
/// they made by reply and their state (whose derived attributes a rule may exclude).
struct Who<'a> {
    sub: &'a Profile,
    refdata: &'a RefData,
    optouts: &'a [crate::contact::OptOut],
    state: &'a SubState,
}

/// What one call of [`ContactPolicy::decide`] works with besides the candidates and the
/// subscriber: the caller's, not the policy's.
pub struct DecideCtx<'a> {
    /// The run's reference data (the operator's opt-out list).
    pub refdata: &'a RefData,
    /// Shadow rules' would-be contacts (see [`shadow`]), kept by the caller beside the
    /// subscribers' state.
    pub shadow: &'a mut ShadowContacts,
}

impl ContactPolicy {
    pub fn new(global: GlobalPolicy, rules: Arc<RuleSet>, offset: chrono::FixedOffset) -> ContactPolicy {
        let rule_caps = rules.rules.iter().flat_map(|r| r.policy.caps.iter());
        let campaign_caps = rules.campaigns.iter().flat_map(|c| c.caps.iter());
        let suppress = rules.rules.iter().filter_map(|r| r.policy.suppress_after.as_ref());
        let suppress = suppress.chain(rules.campaigns.iter().filter_map(|c| c.suppress_after.as_ref()));
        let suppress_reach = suppress.map(|s| s.reach(global.reply_window)).max().unwrap_or(0);
        let keep = global.history_reach(rule_caps.chain(campaign_caps)).max(suppress_reach);
        let global_sender: Arc<str> = Arc::from(&*global.sender);
        let senders = rules
            .rules
            .iter()
            .map(|r| {
                let campaign = &rules.campaigns[r.campaign_idx as usize];
                match r.policy.sender.as_deref().or(campaign.sender.as_deref()) {
                    Some(s) => Arc::from(s),
                    None => Arc::clone(&global_sender),
                }
            })
            .collect();
        // How long each rule's records can be read: a marketing contact as long as any cap or
        // `suppress_after` looks back; a transactional message or an order as long as its own
        // caps, the arbitration window (contacts) and the reply window (SMS) do.
        let keeps = rules
            .rules
            .iter()
            .map(|r| {
                let contact = r.channel.is_contact();
                if contact && !r.policy.transactional {
                    return keep;
                }
                let own = r.policy.caps.iter().map(Cap::reach).max().unwrap_or(0);
                let arbitration = if contact { global.arbitration_window } else { 0 };
                let reply = if r.channel == Channel::Sms { global.reply_window } else { 0 };
                own.max(arbitration).max(reply)
            })
            .collect();
        let asks = rules.rules.iter().map(|r| replies::sms_asks(r, &global.unsubscribe)).collect();
        ContactPolicy { global, rules, offset, keep, keeps, senders, asks }
    }

    /// The same global policy over a new rule pack (reload).
    pub fn with_rules(&self, rules: Arc<RuleSet>) -> ContactPolicy {
        ContactPolicy::new(self.global.clone(), rules, self.offset)
    }

    /// How long contact history is kept: the longest window a cap, arbitration, the reply
    /// window or a `suppress_after` (D + P + its response window) looks back.
    pub fn keep(&self) -> i64 {
        self.keep
    }

    /// Decides the candidates of one trigger for `subscriber` (their record and state): the
    /// live rules' first, then the shadow rules' beside them. Every candidate becomes one
    /// decision in `out`; a contact made is recorded in the state's contact history. A contact
    /// deferred by quiet hours is the caller's to hold until the time its outcome names.
    pub fn decide(
        &self,
        cx: &mut DecideCtx,
        cands: Vec<Candidate>,
        subscriber: &mut Subscriber,
        out: &mut Vec<Decision>,
    ) {
        let (sub, state) = (&*subscriber.sub, &mut *subscriber.state);
        if !self.rules.has_shadow {
            return self.live(cx, cands, sub, state, out);
        }
        let (shadow, live): (Vec<Candidate>, Vec<Candidate>) =
            cands.into_iter().partition(|c| self.rules.rules[c.rule as usize].shadow);
        let first = out.len();
        self.live(cx, live, sub, state, out);
        if !shadow.is_empty() {
            // This trigger's live decisions (a copy: only on the shadow path).
            let live_now: Vec<Decision> = out[first..].to_vec();
            self.shadow(cx, shadow, &live_now, sub, state, out);
        }
    }

    /// The live rules' candidates of one trigger.
    fn live(
        &self,
        cx: &mut DecideCtx,
        cands: Vec<Candidate>,
        sub: &Profile,
        state: &mut SubState,
        out: &mut Vec<Decision>,
    ) {
        if cands.is_empty() {
            return;
        }
        let who = Who { sub, refdata: cx.refdata, optouts: state.optouts(), state };
        let survivors = self.screen(cands, &who, state.contacts(), out);
        let winners = self.arbitrate(survivors, &[], state.contacts(), out);
        self.make_contacts(winners, state.contacts_mut(), out);
    }

    /// Steps 0-4 (and 3's `suppress_after`) for each candidate, counting caps over `log`: one stopped goes to `out` with
    /// the reason; the others are returned for arbitration.
    fn screen(&self, cands: Vec<Candidate>, who: &Who, log: &ContactLog, out: &mut Vec<Decision>) -> Vec<Decision> {
        let (sub, refdata, optouts) = (who.sub, who.refdata, who.optouts);
        let mut survivors = Vec::new();
        for c in cands {
            let ri = c.rule;
            let rule = &self.rules.rules[ri as usize];
            let mut d = candidate_decision(rule, c, sub.msisdn);
            if d.channel == Channel::Sms {
                d.sender = Some(Arc::clone(&self.senders[ri as usize]));
            }
            let contact = d.channel.is_contact();
            let stop = self
                .campaign_off(rule, &d)
                .or_else(|| self.excluded(rule, sub, who.state))
                .or_else(|| contact.then(|| self.dnd(rule, &d, sub, refdata, optouts)).flatten())
                .or_else(|| self.caps(rule, ri, &d, log))
                .or_else(|| self.suppressed_after(rule, ri, &d, log))
                .or_else(|| contact.then(|| self.held_out(rule, sub)).flatten());
            match stop {
                Some((reason, detail)) => {
                    d.outcome = Outcome::Suppressed(reason);
                    d.detail = Some(detail);
                    out.push(d);
                }
                None => survivors.push(d),
            }
        }
        survivors
    }

    /// Step 6, quiet hours, for the winners of arbitration; a contact that goes now is made and
    /// recorded in `log`.
    fn make_contacts(&self, winners: Vec<Decision>, log: &mut ContactLog, out: &mut Vec<Decision>) {
        for mut d in winners {
            if self.quiet_hours(&mut d) {
                out.push(d);
                continue;
            }
            let rule = &self.rules.rules[d.rule as usize];
            self.add_footer(&mut d, rule);
            let streak = d.channel.is_contact()
                && !rule.policy.request
                && self.rules.campaigns[rule.campaign_idx as usize].streak_months.is_some();
            let month = streak.then(|| period(d.ts, CalendarUnit::Month, self.offset));
            let rec = contact_rec(&d, rule);
            let keep = |rule: u16| self.keeps.get(usize::from(rule)).copied().unwrap_or(self.keep);
            log.record_kept(rec, keep, month);
            if let Some(about) = &d.about {
                log.record_about(rec.id, about);
            }
            out.push(d);
        }
    }
}

/// The decision a candidate starts as: sent, until a step says otherwise. A contact held for
/// quiet hours keeps the id and expiry it was first decided with.
fn candidate_decision(rule: &Rule, c: Candidate, msisdn: Msisdn) -> Decision {
    let (id, expires) = match c.deferred {
        Some(d) => (d.id, d.expires),
        None => {
            (action_id(&rule.name, msisdn, &c.trigger, c.due), rule.policy.expire_after.map(|e| c.ts.saturating_add(e)))
        }
    };
    // What the rule wrote moves into the decision (no copy of the text).
    Decision {
        key: c.key,
        id,
        ts: c.ts,
        msisdn,
        rule: c.rule,
        rule_name: rule.name.clone(),
        campaign: rule.campaign.clone(),
        channel: rule.channel,
        priority: rule.priority,
        text: c.written.text.map(String::from),
        script: c.written.script.map(String::from),
        queue: c.written.queue,
        about: c.written.about,
        sender: None,
        trigger: c.trigger,
        outcome: Outcome::Sent,
        detail: None,
        winner: None,
        expires,
        shadow: rule.shadow,
    }
}

/// The contact history record of a contact made.
fn contact_rec(d: &Decision, rule: &Rule) -> ContactRec {
    let id_hash = suppress::id_bits(&d.id).unwrap_or_else(|| stable_hash(d.id.as_bytes()));
    ContactRec {
        ts: d.ts,
        id: id_hash,
        rule: d.rule as u16,
        campaign: rule.campaign_idx,
        channel: d.channel,
        transactional: rule.policy.transactional,
        flags: if rule.policy.request { ContactRec::REQUEST } else { 0 },
    }
}
