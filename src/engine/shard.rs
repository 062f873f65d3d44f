//! A shard: the single owner of a set of subscribers, and the one place an event meets them.
//!
//! `process` is a plain synchronous function of (state, event) -> decisions; threads and
//! channels live in the pipeline, so the rule tests and the one-shard path call it directly.
//! The shard only orchestrates, in this order: the event's facts go into the subscriber's
//! state (`state::table`), the rules observe it, cancel the timers it answers and propose
//! contacts and timers (`rules::eval`), and contact policy decides the contacts — on the
//! subscriber's own state, so nothing locks. Timers and daily ticks ([`ticks`]) come back
//! through the same steps. Explain (`engine::explain`), checkpoints ([`snapshot`]) and hot
//! reload ([`reload`]) have files of their own.

use super::decision::{Decision, OrderKey, Outcome, Suppression, action_id};
use super::explain::{describe_event, describe_subscriber, explain_line};
use crate::event::{Body, Event};
use crate::policy::{ContactLog, ContactRec, GlobalPolicy, QuietFate, in_control_group};
use crate::refdata::{Channel, Names, Profile, RefData, Subscribers};
use crate::rules::eval::{Match, Proposal, Scene, Scratch};
use crate::rules::expr::Local;
use crate::rules::{Rule, RuleSet};
use crate::state::table::{SubTable, Subscriber};
use crate::state::{Deferred, PendingTimer, TriggerRef};
use crate::util::{MINUTE, Millis, Msisdn, format_ts, stable_hash};
use std::collections::BTreeSet;
use std::sync::Arc;

mod reload;
mod snapshot;
mod stats;
mod ticks;

pub use stats::ShardStats;
use ticks::Ticks;

/// Timer index entry: see [`PendingTimer::index_key`].
type TimerKey = (Millis, u64, u32, u64, bool);

/// Policy settings every shard shares, prepared once per run.
#[derive(Clone, Debug, Default)]
pub struct PolicySetup {
    pub global: GlobalPolicy,
    /// How long contact history is kept (the longest cap window).
    pub keep: i64,
}

impl PolicySetup {
    pub fn new(global: GlobalPolicy, rules: &RuleSet) -> PolicySetup {
        let rule_caps = rules.rules.iter().flat_map(|r| r.policy.caps.iter());
        let campaign_caps = rules.campaigns.iter().flat_map(|c| c.caps.iter());
        let keep = global.history_reach(rule_caps.chain(campaign_caps));
        PolicySetup { global, keep }
    }
}

pub struct Shard {
    pub rules: Arc<RuleSet>,
    pub refdata: Arc<RefData>,
    pub policy: Arc<PolicySetup>,
    pub subs: SubTable,
    /// The strings of this shard's subscriber records.
    pub names: Names,
    timers: BTreeSet<TimerKey>,
    pub offset: chrono::FixedOffset,
    /// Rule evaluation's buffers, reused per event to avoid allocating.
    scratch: Scratch,
    /// What the rules an event triggers want (drained per event).
    matched: Vec<Match>,
    /// What a daily tick's rules propose to one subscriber (drained per subscriber).
    proposed: Vec<Proposal>,
    /// The local calendar facts of the last minute seen: events come in time order, so most
    /// events reuse them.
    local_cache: (Millis, Local),
    /// When set, a plain-words account of everything that happens to this subscriber.
    pub trace: Option<(Msisdn, Vec<String>)>,
    /// Daily rule times, started from the input's first event time.
    ticks: Ticks,
    /// The would-be contacts of shadow rules, per subscriber (see [`decide_shadow`]). Kept
    /// beside the subscriber state, not in it: live policy never reads it, and a checkpoint of
    /// the live state has no part of it.
    shadow_contacts: ShadowContacts,
    /// A checkpoint this shard is copying its subscribers into.
    snapshot: Option<snapshot::SnapJob>,
}

/// Shadow rules' would-be contact history, by subscriber number.
pub type ShadowContacts = std::collections::HashMap<u64, ContactLog>;

/// A contact a rule wants to make, before policy.
struct Candidate {
    rule: u32,
    ts: Millis,
    key: OrderKey,
    trigger: TriggerRef,
    /// Due time of the timer that produced it (part of the action id).
    due: Option<Millis>,
    text: Option<String>,
    script: Option<String>,
    /// Set when this is a contact deferred by quiet hours, now due.
    deferred: Option<Deferred>,
}

impl Shard {
    pub fn new(
        rules: Arc<RuleSet>,
        refdata: Arc<RefData>,
        policy: Arc<PolicySetup>,
        subscribers: Subscribers,
        offset: chrono::FixedOffset,
    ) -> Shard {
        let unknown_cap = subscribers.unknown_cap.unwrap_or(crate::refdata::DEFAULT_UNKNOWN);
        Shard {
            rules,
            refdata,
            policy,
            subs: SubTable::new(subscribers.profiles, unknown_cap),
            names: subscribers.names,
            timers: BTreeSet::new(),
            offset,
            scratch: Scratch::default(),
            matched: Vec::new(),
            proposed: Vec::new(),
            local_cache: (Millis::MIN, Local::at(0, offset)),
            trace: None,
            ticks: Ticks::default(),
            shadow_contacts: ShadowContacts::new(),
            snapshot: None,
        }
    }

    /// Schedules the daily rules' first ticks after `origin`, the input's first event time.
    pub fn start_ticks(&mut self, origin: Millis) {
        self.ticks.start(&self.rules, origin, self.offset);
    }

    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Subscriber `m` as this shard holds them at `now`, for `GET /v1/explain/{msisdn}` (see
    /// [`describe_subscriber`]).
    pub fn describe(&mut self, m: Msisdn, now: Millis) -> serde_json::Value {
        let e = self.subs.get_mut(m);
        describe_subscriber(e.as_ref(), &self.rules, &self.refdata, self.offset, now)
    }

    fn tracing(&self, m: Msisdn) -> bool {
        self.trace.as_ref().is_some_and(|(t, _)| *t == m)
    }

    fn note(&mut self, m: Msisdn, line: impl FnOnce() -> String) {
        if let Some((t, lines)) = &mut self.trace {
            if *t == m {
                lines.push(line());
            }
        }
    }

    /// Processes one event at input position `pos`, appending decisions to `out`.
    pub fn process(&mut self, pos: u64, ev: &Event, out: &mut Vec<Decision>, stats: &mut ShardStats) {
        let kind = ev.kind();
        let rules = Arc::clone(&self.rules);
        let refdata = Arc::clone(&self.refdata);
        let offset = self.offset;
        let tracing = self.tracing(ev.msisdn);
        if tracing {
            let at = format_ts(ev.ts, offset);
            self.note(ev.msisdn, || format!("{at}  {kind} event {}{}", ev.id, describe_event(ev)));
        }
        if matches!(ev.body, Body::Profile(_)) && self.names.needs_compaction() {
            self.snapshot_finish();
            self.names.compact(self.subs.iter_mut().flat_map(|e| [&mut e.sub.customer_id, &mut e.sub.account_id]));
        }
        let minute = ev.ts.div_euclid(MINUTE);
        if self.local_cache.0 != minute {
            self.local_cache = (minute, Local::at(ev.ts, offset));
        }
        let local = self.local_cache.1;
        let mut entry = self.subs.get_or_insert(ev.msisdn, || Profile::unknown(ev.msisdn));

        // 1. Facts the event states about the subscriber.
        entry.apply(ev, &mut self.names, &refdata);

        // 2. Windows and sequences.
        let scene = Scene { event: Some(ev), now: ev.ts, local, refdata: &refdata, names: &self.names, offset };
        rules.observe(&scene, &mut entry, &mut self.scratch);

        // 3. Cancel absence timers this event answers.
        let mut trace = Vec::new();
        for i in rules.cancels(&scene, &entry).into_iter().rev() {
            let t = entry.state.timers_mut().remove(i);
            self.timers.remove(&t.index_key(ev.msisdn.raw()));
            stats.timers_cancelled += 1;
            if tracing {
                trace.push(format!(
                    "  rule {}: its pending timer is cancelled by this event",
                    rules.rules[t.rule as usize].name
                ));
            }
        }

        // 4. Rules propose: timers are armed, contacts go to policy.
        rules.propose(&scene, &entry, pos, &mut self.scratch, &mut self.matched);
        let mut cands: Vec<Candidate> = Vec::new();
        for m in self.matched.drain(..) {
            match m {
                Match::Contact(Proposal { rule, trigger, text, script }) => {
                    if tracing {
                        trace.push(format!("  rule {} matched", rules.rules[rule as usize].name));
                    }
                    cands.push(Candidate {
                        rule,
                        ts: ev.ts,
                        key: OrderKey { pos, phase: 1, due: 0, msisdn: 0, rule },
                        trigger,
                        due: None,
                        text,
                        script,
                        deferred: None,
                    });
                }
                Match::Timer(t) => {
                    if tracing {
                        let (name, due) = (&rules.rules[t.rule as usize].name, format_ts(t.due, offset));
                        trace.push(format!("  rule {name} matched: timer set for {due}"));
                    }
                    self.timers.insert(t.index_key(ev.msisdn.raw()));
                    entry.state.timers_mut().push(t);
                    stats.timers_armed += 1;
                }
                Match::Running(ri) if tracing => {
                    trace.push(format!(
                        "  rule {} matched; its timer is already running",
                        rules.rules[ri as usize].name
                    ));
                }
                Match::Running(_) => {}
            }
        }
        let first = out.len();
        decide(
            &rules,
            &self.policy,
            &refdata,
            offset,
            &mut entry,
            cands,
            pos,
            out,
            stats,
            &mut self.shadow_contacts,
            &mut self.timers,
        );
        if tracing {
            trace.extend(out[first..].iter().map(|d| explain_line(d, offset)));
            if let Some((_, lines)) = &mut self.trace {
                lines.append(&mut trace);
            }
        }
        // Past the bound on unknown subscribers, the one seen least recently is forgotten.
        self.subs.forget_unknown(ev.ts, self.policy.keep);
    }

    /// Fires every timer (and daily tick) due at or before `wm`. `place(due, not_before)` gives
    /// the input position a timer logically fires just before (see [`OrderKey`]).
    pub fn fire_timers(
        &mut self,
        wm: Millis,
        place: &dyn Fn(Millis, u64) -> u64,
        out: &mut Vec<Decision>,
        stats: &mut ShardStats,
    ) {
        loop {
            let next_timer = self.timers.first().map(|k| k.0).filter(|t| *t <= wm);
            let next_tick = self.ticks.next_due().filter(|t| *t <= wm);
            match (next_timer, next_tick) {
                (_, Some(tick)) if next_timer.is_none_or(|t| tick < t) => {
                    self.tick(tick, place, out, stats);
                    continue;
                }
                (Some(_), _) => {}
                _ => break,
            }
            let Some((due, raw, rule_idx, armed_at, is_deferred)) = self.timers.pop_first() else { break };
            let rules = Arc::clone(&self.rules);
            let refdata = Arc::clone(&self.refdata);
            let offset = self.offset;
            let msisdn = Msisdn::from_raw(raw);
            let tracing = self.tracing(msisdn);
            let Some(mut entry) = self.subs.get_mut(msisdn) else { continue };
            let Some(i) = entry
                .state
                .timers()
                .iter()
                .position(|t| t.index_key(raw) == (due, raw, rule_idx, armed_at, is_deferred))
            else {
                continue;
            };
            let timer = entry.state.timers_mut().remove(i);
            let rule = &rules.rules[rule_idx as usize];
            let mut trace = Vec::new();
            if tracing {
                let what = if is_deferred { "the quiet-hours hold ends" } else { "timer fires" };
                trace.push(format!("{}  rule {}: {what}", format_ts(due, offset), rule.name));
            }
            if timer.deferred.is_none() {
                stats.timers_fired += 1;
                let local = Local::at(due, offset);
                let scene = Scene { event: None, now: due, local, refdata: &refdata, names: &self.names, offset };
                if !rules.still_holds(rule_idx, &scene, &entry) {
                    stats.rechecks_failed += 1;
                    if tracing {
                        trace.push("  the recheck no longer holds: no contact".to_string());
                        if let Some((_, lines)) = &mut self.trace {
                            lines.append(&mut trace);
                        }
                    }
                    continue;
                }
            }
            let pos = place(due, armed_at + 1);
            let cand = Candidate {
                rule: rule_idx,
                ts: due,
                key: OrderKey { pos, phase: 0, due, msisdn: raw, rule: rule_idx },
                due: if timer.deferred.is_some() { None } else { Some(due) },
                trigger: timer.trigger,
                text: timer.text,
                script: timer.script,
                deferred: timer.deferred,
            };
            let first = out.len();
            decide(
                &rules,
                &self.policy,
                &refdata,
                offset,
                &mut entry,
                vec![cand],
                pos,
                out,
                stats,
                &mut self.shadow_contacts,
                &mut self.timers,
            );
            if tracing {
                trace.extend(out[first..].iter().map(|d| explain_line(d, offset)));
                if let Some((_, lines)) = &mut self.trace {
                    lines.append(&mut trace);
                }
            }
        }
    }
}

impl Shard {
    /// A daily tick at `at`: every scheduled rule of that minute, for every subscriber.
    fn tick(
        &mut self,
        at: Millis,
        place: &dyn Fn(Millis, u64) -> u64,
        out: &mut Vec<Decision>,
        stats: &mut ShardStats,
    ) {
        let minutes = self.ticks.take(at);
        let rules = Arc::clone(&self.rules);
        let refdata = Arc::clone(&self.refdata);
        let offset = self.offset;
        let local = Local::at(at, offset);
        let scene = Scene { event: None, now: at, local, refdata: &refdata, names: &self.names, offset };
        let Some(pass) = rules.daily_pass(&minutes, &scene) else { return };
        let pos = place(at, 0);
        let trace_m = self.trace.as_ref().map(|t| t.0);
        let mut trace = Vec::new();
        // Every subscriber is read; only those with a contact to decide are changed (so a
        // checkpoint in progress copies just those first, see `SubTable::at`).
        for i in 0..self.subs.len() as u32 {
            let entry = self.subs.read(i);
            rules.propose_daily(&pass, &scene, &entry, &mut self.proposed);
            if self.proposed.is_empty() {
                continue;
            }
            let m = entry.sub.msisdn;
            let cands: Vec<Candidate> = self
                .proposed
                .drain(..)
                .map(|p| Candidate {
                    rule: p.rule,
                    ts: at,
                    key: OrderKey { pos, phase: 0, due: at, msisdn: m.raw(), rule: p.rule },
                    trigger: p.trigger,
                    due: None,
                    text: p.text,
                    script: p.script,
                    deferred: None,
                })
                .collect();
            let mut entry = self.subs.at(i);
            let first = out.len();
            let names: Vec<String> = cands.iter().map(|c| rules.rules[c.rule as usize].name.to_string()).collect();
            decide(
                &rules,
                &self.policy,
                &refdata,
                offset,
                &mut entry,
                cands,
                pos,
                out,
                stats,
                &mut self.shadow_contacts,
                &mut self.timers,
            );
            if trace_m == Some(m) {
                trace.push(format!("{}  daily rules at {}", format_ts(at, offset), pass.label()));
                trace.extend(names.iter().map(|n| format!("  rule {n} matched")));
                trace.extend(out[first..].iter().map(|d| explain_line(d, offset)));
            }
        }
        if let Some((_, lines)) = &mut self.trace {
            lines.append(&mut trace);
        }
    }
}

/// Runs contact policy over the candidates of one trigger: the live rules' first, then the
/// shadow rules' beside them. Contacts deferred by quiet hours become timers of the subscriber,
/// armed here (in their state and in the shard's `timers` index).
#[allow(clippy::too_many_arguments)]
fn decide(
    rules: &RuleSet,
    setup: &PolicySetup,
    refdata: &RefData,
    offset: chrono::FixedOffset,
    entry: &mut Subscriber,
    cands: Vec<Candidate>,
    pos: u64,
    out: &mut Vec<Decision>,
    stats: &mut ShardStats,
    shadow: &mut ShadowContacts,
    timers: &mut BTreeSet<TimerKey>,
) {
    let armed = if !rules.has_shadow {
        decide_live(rules, setup, refdata, offset, entry, cands, pos, out, stats)
    } else {
        let (shadow_cands, cands): (Vec<Candidate>, Vec<Candidate>) =
            cands.into_iter().partition(|c| rules.rules[c.rule as usize].shadow);
        let first = out.len();
        let mut armed = decide_live(rules, setup, refdata, offset, entry, cands, pos, out, stats);
        if !shadow_cands.is_empty() {
            // This trigger's live decisions (a copy: only on the shadow path).
            let live_now: Vec<Decision> = out[first..].to_vec();
            armed.extend(decide_shadow(
                rules,
                setup,
                refdata,
                offset,
                entry,
                shadow_cands,
                &live_now,
                pos,
                out,
                shadow,
            ));
        }
        armed
    };
    let raw = entry.sub.msisdn.raw();
    for t in armed {
        timers.insert(t.index_key(raw));
        entry.state.timers_mut().push(t);
    }
}

/// The live rules' candidates of one trigger.
#[allow(clippy::too_many_arguments)]
fn decide_live(
    rules: &RuleSet,
    setup: &PolicySetup,
    refdata: &RefData,
    offset: chrono::FixedOffset,
    entry: &mut Subscriber,
    cands: Vec<Candidate>,
    pos: u64,
    out: &mut Vec<Decision>,
    stats: &mut ShardStats,
) -> Vec<PendingTimer> {
    let mut armed = Vec::new();
    if cands.is_empty() {
        return armed;
    }
    // Steps 1-4 per candidate; survivors go on to arbitration.
    let mut survivors: Vec<Decision> = Vec::new();
    for c in cands {
        let rule = &rules.rules[c.rule as usize];
        let mut d = candidate_decision(rule, &c, entry.sub.msisdn);
        match check(rules, setup, refdata, offset, rule, c.rule, &d, entry.sub, entry.state.contacts()) {
            Some((reason, detail)) => {
                d.outcome = Outcome::Suppressed(reason);
                d.detail = Some(detail);
                out.push(d);
            }
            None => survivors.push(d),
        }
    }
    let winners = arbitrate(setup, survivors, &[], entry.state.contacts(), out);
    make_contacts(rules, setup, offset, winners, pos, out, stats, &mut armed, entry.state.contacts_mut());
    armed
}

/// Step 5: arbitration — one contact per channel, highest priority, then pack order. `held`
/// are contacts of this trigger that already hold their channel (the live ones, when shadow
/// rules are decided); `log` is the history the arbitration window looks at. Returns the
/// winners; the losers go to `out`.
fn arbitrate(
    setup: &PolicySetup,
    mut survivors: Vec<Decision>,
    held: &[&Decision],
    log: &ContactLog,
    out: &mut Vec<Decision>,
) -> Vec<Decision> {
    let rank = |d: &Decision| (d.channel as u8, std::cmp::Reverse(d.priority), d.rule);
    survivors.sort_by_key(rank);
    let mut winners: Vec<Decision> = Vec::new();
    for mut d in survivors {
        let beaten = held.iter().copied().find(|w| w.channel == d.channel && rank(w) < rank(&d));
        if let Some(w) = beaten.or_else(|| winners.iter().find(|w| w.channel == d.channel)) {
            d.outcome = Outcome::Suppressed(Suppression::Arbitration);
            d.detail =
                Some(format!("rule {} (priority {}) won this trigger on {}", w.rule_name, w.priority, d.channel));
            d.winner = Some(w.id.clone());
            out.push(d);
            continue;
        }
        if let Some(r) = recent_on_channel(log, setup, &d) {
            d.outcome = Outcome::Suppressed(Suppression::Arbitration);
            d.detail = Some(format!("another {} contact went out within the arbitration window", d.channel));
            d.winner = Some(format!("a{:016x}", r.id));
            out.push(d);
            continue;
        }
        winners.push(d);
    }
    winners
}

/// Step 6: quiet hours, then the contact is made and recorded in `log`.
#[allow(clippy::too_many_arguments)]
fn make_contacts(
    rules: &RuleSet,
    setup: &PolicySetup,
    offset: chrono::FixedOffset,
    winners: Vec<Decision>,
    pos: u64,
    out: &mut Vec<Decision>,
    stats: &mut ShardStats,
    armed: &mut Vec<PendingTimer>,
    log: &mut ContactLog,
) {
    for mut d in winners {
        if quiet_hours(rules, setup, offset, &mut d, pos, stats, armed) {
            out.push(d);
            continue;
        }
        let rule = &rules.rules[d.rule as usize];
        let streak = rules.campaigns[rule.campaign_idx as usize].streak_months.is_some();
        log.record(contact_rec(&d, rule), setup.keep, streak, offset);
        out.push(d);
    }
}

/// The contact on `d`'s channel inside the arbitration window before it, if any.
fn recent_on_channel<'l>(log: &'l ContactLog, setup: &PolicySetup, d: &Decision) -> Option<&'l ContactRec> {
    let window = setup.global.arbitration_window;
    (window > 0)
        .then(|| {
            log.recent
                .iter()
                .rev()
                .find(|r| r.channel == d.channel && r.ts > d.ts.saturating_sub(window) && r.ts <= d.ts)
        })
        .flatten()
}

/// Step 6, quiet hours: true when they decided `d` (dropped, expired, or deferred with a
/// timer pushed onto `armed`); false when the contact goes now.
fn quiet_hours(
    rules: &RuleSet,
    setup: &PolicySetup,
    offset: chrono::FixedOffset,
    d: &mut Decision,
    pos: u64,
    stats: &mut ShardStats,
    armed: &mut Vec<PendingTimer>,
) -> bool {
    let p = &rules.rules[d.rule as usize].policy;
    let quiet = p.quiet_hours.or(setup.global.quiet_hours);
    let local = Local::at(d.ts, offset);
    let in_quiet = d.channel != Channel::Ivr
        && p.quiet != QuietFate::Ignore
        && quiet.is_some_and(|q| q.contains(local.hour * 60 + local.minute));
    let (true, Some(q)) = (in_quiet, quiet) else { return false };
    let window = format!("{:02}:{:02}-{:02}:{:02}", q.from / 60, q.from % 60, q.to / 60, q.to % 60);
    if p.quiet == QuietFate::Drop {
        d.outcome = Outcome::Suppressed(Suppression::QuietHours);
        d.detail = Some(format!("quiet hours {window}: this rule drops contacts then"));
        return true;
    }
    let end = q.end_after(d.ts, offset);
    if d.expires.is_some_and(|e| e < end) {
        d.outcome = Outcome::Suppressed(Suppression::QuietHours);
        d.detail = Some(format!(
            "quiet hours {window}: the contact expires at {}, before they end",
            format_ts(d.expires.unwrap_or_default(), offset)
        ));
        return true;
    }
    stats.deferred += 1;
    armed.push(PendingTimer {
        due: end,
        rule: d.rule,
        trigger: d.trigger.clone(),
        armed_at: pos,
        text: d.text.clone(),
        script: d.script.clone(),
        deferred: Some(Deferred { id: d.id.clone(), expires: d.expires }),
    });
    d.outcome = Outcome::Deferred(end);
    d.detail = Some(format!("quiet hours {window}: held until they end"));
    true
}

/// The contact history record of a contact made.
fn contact_rec(d: &Decision, rule: &Rule) -> ContactRec {
    let id_hash =
        u64::from_str_radix(d.id.trim_start_matches('a'), 16).unwrap_or_else(|_| stable_hash(d.id.as_bytes()));
    ContactRec {
        ts: d.ts,
        id: id_hash,
        rule: d.rule as u16,
        campaign: rule.campaign_idx,
        channel: d.channel,
        transactional: rule.policy.transactional,
    }
}

/// Shadow rules' candidates of one trigger, decided by the same steps in the same order as
/// live ones, so a shadow decision says what the rule would do if it were deployed beside the
/// live rules as they stand. What it must not do is change anything live:
///
/// - caps count the live contact history *plus* the shadow rules' own would-be contacts (kept
///   in `shadow`, never in the subscriber's state): a shadow rule meets the live rules' caps and
///   its own, while live rules never see a shadow contact — no live cap slot is taken;
/// - arbitration: the live contacts of this trigger keep their channel; a shadow candidate they
///   outrank loses (`arbitration`, naming the live winner), one that outranks them is a
///   would-be action beside them (the live one still goes: live decisions are final);
/// - quiet hours defer as live (a shadow timer in the state, decided again as shadow when it ends);
/// - channel capacity is not applied: the rate limiter is the live gateway's budget, and a
///   shadow decision bypasses it (see `engine::Out::write`) rather than delay live contacts.
#[allow(clippy::too_many_arguments)]
fn decide_shadow(
    rules: &RuleSet,
    setup: &PolicySetup,
    refdata: &RefData,
    offset: chrono::FixedOffset,
    entry: &mut Subscriber,
    cands: Vec<Candidate>,
    live: &[Decision],
    pos: u64,
    out: &mut Vec<Decision>,
    shadow: &mut ShadowContacts,
) -> Vec<PendingTimer> {
    let mut armed = Vec::new();
    // The run's counters (deferrals) are the live rules'; a shadow deferral is in its decision.
    let mut stats = ShardStats::default();
    let raw = entry.sub.msisdn.raw();
    let mut log = entry.state.contacts().clone();
    if let Some(own) = shadow.get(&raw) {
        log.recent.edit(|v| {
            v.extend(own.recent.iter().copied());
            v.sort_by_key(|r| r.ts);
        });
        log.streaks.edit(|v| {
            for s in own.streaks.iter() {
                match v.iter_mut().find(|x| x.0 == s.0) {
                    Some(x) if x.1 < s.1 => *x = *s,
                    Some(_) => {}
                    None => v.push(*s),
                }
            }
        });
    }
    let mut survivors: Vec<Decision> = Vec::new();
    for c in cands {
        let rule = &rules.rules[c.rule as usize];
        let mut d = candidate_decision(rule, &c, entry.sub.msisdn);
        match check(rules, setup, refdata, offset, rule, c.rule, &d, entry.sub, &log) {
            Some((reason, detail)) => {
                d.outcome = Outcome::Suppressed(reason);
                d.detail = Some(detail);
                out.push(d);
            }
            None => survivors.push(d),
        }
    }
    let live_held: Vec<&Decision> =
        live.iter().filter(|w| matches!(w.outcome, Outcome::Sent | Outcome::Deferred(_))).collect();
    let winners = arbitrate(setup, survivors, &live_held, &log, out);
    make_contacts(rules, setup, offset, winners, pos, out, &mut stats, &mut armed, shadow.entry(raw).or_default());
    armed
}

/// Steps 1-4: exclusions, do-not-disturb, caps (and streak), control group.
#[allow(clippy::too_many_arguments)]
fn check(
    rules: &RuleSet,
    setup: &PolicySetup,
    refdata: &RefData,
    offset: chrono::FixedOffset,
    rule: &Rule,
    ri: u32,
    d: &Decision,
    sub: &Profile,
    log: &ContactLog,
) -> Option<(Suppression, String)> {
    let p = &rule.policy;
    let global = &setup.global;
    for x in global.exclude.iter().filter(|x| !p.include.contains(x)) {
        if x.applies(sub) {
            return Some((Suppression::Excluded, format!("excluded for everyone: {}", x.name())));
        }
    }
    for x in &p.exclude {
        if x.applies(sub) {
            return Some((Suppression::Excluded, format!("excluded by the rule: {}", x.name())));
        }
    }
    if refdata.optout.contains(&sub.msisdn) && !(p.transactional && p.ignore_dnd) {
        return Some((Suppression::Dnd, "on the operator's opt-out list".to_string()));
    }
    if sub.dnd.blocks(d.channel) && !(p.transactional && p.ignore_dnd) {
        let scope = if sub.dnd.all { "all channels".to_string() } else { format!("{}", d.channel) };
        return Some((Suppression::Dnd, format!("the subscriber opted out of {scope}")));
    }
    let now = d.ts;
    let full = |cap: &crate::policy::Cap, n: u32, whose: String| {
        (n >= cap.max).then(|| (Suppression::Cap, format!("cap \"{}\" of {whose} reached ({n} already)", cap.text)))
    };
    for cap in &p.caps {
        let n = log.count(cap, now, offset, |r| u32::from(r.rule) == ri);
        if let Some(s) = full(cap, n, format!("rule {}", rule.name)) {
            return Some(s);
        }
    }
    let campaign = &rules.campaigns[rule.campaign_idx as usize];
    if !p.transactional {
        for cap in &campaign.caps {
            let n = log.count(cap, now, offset, |r| r.campaign == rule.campaign_idx && !r.transactional);
            if let Some(s) = full(cap, n, format!("campaign {}", campaign.name)) {
                return Some(s);
            }
        }
        if let Some(k) = campaign.streak_months {
            if let Some(run) = log.streak_exceeded(rule.campaign_idx, k, now, offset) {
                return Some((
                    Suppression::Cap,
                    format!(
                        "streak: campaign {} reached the subscriber {run} months in a row (at most {k})",
                        campaign.name
                    ),
                ));
            }
        }
        for cap in &global.channel_caps[d.channel as usize] {
            let n = log.count(cap, now, offset, |r| r.channel == d.channel && !r.transactional);
            if let Some(s) = full(cap, n, format!("channel {}", d.channel)) {
                return Some(s);
            }
        }
        for cap in &global.caps {
            let n = log.count(cap, now, offset, |r| !r.transactional);
            if let Some(s) = full(cap, n, "all touchpoints".to_string()) {
                return Some(s);
            }
        }
    }
    if let Some(pct) = campaign.control_group {
        if in_control_group(&sub.msisdn.full(), &campaign.name, pct) {
            return Some((
                Suppression::ControlGroup,
                format!("held out: control group of campaign {} ({pct}%)", campaign.name),
            ));
        }
    }
    None
}

fn candidate_decision(rule: &Rule, c: &Candidate, msisdn: Msisdn) -> Decision {
    let id = match &c.deferred {
        Some(d) => d.id.clone(),
        None => action_id(&rule.name, msisdn, &c.trigger, c.due),
    };
    let expires = match &c.deferred {
        Some(d) => d.expires,
        None => rule.policy.expire_after.map(|e| c.ts.saturating_add(e)),
    };
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
        text: c.text.clone(),
        script: c.script.clone(),
        queue: rule.queue.clone(),
        trigger: c.trigger.clone(),
        outcome: Outcome::Sent,
        detail: None,
        winner: None,
        expires,
        shadow: rule.shadow,
    }
}
