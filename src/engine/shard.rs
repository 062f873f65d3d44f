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

use super::explain::{describe_event, describe_subscriber, explain_line};
use super::funnel::{Counter, Inbox};
use crate::contact::{Candidate, Decision, Deferred, OrderKey, Outcome};
use crate::event::{Body, Event};
use crate::policy::{ContactPolicy, DecideCtx, ShadowContacts};
use crate::refdata::{Names, Profile, RefData, Subscribers};
use crate::rules::RuleSet;
use crate::rules::eval::{Match, Proposal, Scene, Scratch};
use crate::rules::expr::Local;
use crate::state::PendingTimer;
use crate::state::table::{SubTable, Subscriber};
use crate::time::{MINUTE, Millis, format_ts};
use crate::util::Msisdn;
use std::collections::BTreeSet;
use std::sync::Arc;

mod activity;
mod daily;
mod journeys;
mod quiet;
mod reload;
mod settled;
mod snapshot;
mod stats;
mod ticks;

use journeys::JourneyIndex;
pub use stats::{ShardStats, TickCost};
use ticks::Ticks;

/// Timer index entry: see [`PendingTimer::index_key`].
type TimerKey = (Millis, u64, u32, u64, bool);

pub struct Shard {
    pub rules: Arc<RuleSet>,
    pub refdata: Arc<RefData>,
    pub policy: Arc<ContactPolicy>,
    pub subs: SubTable,
    /// The strings of this shard's subscriber records.
    pub names: Names,
    timers: BTreeSet<TimerKey>,
    /// When each journey instance of the shard's subscribers is next due, and how many wait
    /// at each step.
    journey_due: JourneyIndex,
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
    /// Who the daily rules pinned to a day of the record may concern, by day (see [`daily`]).
    pins: daily::PinIndex,
    /// Who a tick of snapshot derived attributes alone must visit (see [`daily`]).
    held: daily::HeldSnapshots,
    /// Each subscriber's newest bucket of the windows daily rules need activity in, or none.
    activity: activity::ActivityIndex,
    /// How long each subscriber's daily derived values that read only windows stay put.
    settled: settled::SettledDerives,
    /// Whom each tick of daily journeys' start conditions stays false for.
    quiet: quiet::QuietStarts,
    /// No state has changed since the table was loaded (no event yet, nothing restored).
    pristine: bool,
    /// The funnel's counts of the batch in hand (see `engine::funnel`).
    funnel: Counter,
}

/// The parts of a shard a daily tick changes while its scene reads the shard's strings.
struct DailyParts<'a> {
    subs: &'a mut SubTable,
    journey_due: &'a mut JourneyIndex,
    timers: &'a mut BTreeSet<TimerKey>,
    shadow: &'a mut ShadowContacts,
    trace: &'a mut Option<(Msisdn, Vec<String>)>,
    /// What the daily rules propose to one subscriber (drained per subscriber).
    proposed: &'a mut Vec<Proposal>,
    funnel: &'a mut Counter,
    /// How long each entry's daily derived values stay put, and the tick's walk of them when
    /// every derived attribute of the tick settles.
    settled: &'a mut settled::SettledDerives,
    settled_walk: Option<usize>,
    /// Whom daily journeys' start conditions stay false for, and the tick's walk of them when
    /// each of its journeys' conditions stays put.
    quiet: &'a mut quiet::QuietStarts,
    quiet_walk: Option<usize>,
}

impl Shard {
    pub fn new(
        rules: Arc<RuleSet>,
        refdata: Arc<RefData>,
        policy: Arc<ContactPolicy>,
        subscribers: Subscribers,
        offset: chrono::FixedOffset,
    ) -> Shard {
        let unknown_cap = subscribers.unknown_cap.unwrap_or(crate::refdata::DEFAULT_UNKNOWN);
        let mut scratch = Scratch::default();
        scratch.triggered = vec![0; rules.rules.len()];
        Shard {
            funnel: Counter::new(&rules, offset),
            rules,
            refdata,
            policy,
            subs: SubTable::new(subscribers.profiles, unknown_cap),
            names: subscribers.names,
            timers: BTreeSet::new(),
            journey_due: JourneyIndex::default(),
            offset,
            scratch,
            matched: Vec::new(),
            proposed: Vec::new(),
            local_cache: (Millis::MIN, Local::at(0, offset)),
            trace: None,
            ticks: Ticks::default(),
            shadow_contacts: ShadowContacts::new(),
            snapshot: None,
            pins: daily::PinIndex::default(),
            held: daily::HeldSnapshots::default(),
            activity: activity::ActivityIndex::default(),
            settled: settled::SettledDerives::default(),
            quiet: quiet::QuietStarts::default(),
            pristine: true,
        }
    }

    /// Schedules the daily rules' first ticks after `origin`, the input's first event time.
    pub fn start_ticks(&mut self, origin: Millis) {
        self.ticks.start(&self.rules, origin, self.offset);
        self.activity.prepare(&self.rules, &self.subs, self.pristine);
        self.pristine = false;
    }

    /// The funnel's counts go to `inbox`, batch by batch.
    pub fn count_into(&mut self, inbox: Arc<Inbox>) {
        self.funnel.connect(inbox);
    }

    /// The end of batch `no`: the funnel's counts of it go to the write side.
    pub fn funnel_flush(&mut self, no: u64) {
        self.funnel.flush(no, &mut self.scratch.triggered);
    }

    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Journey instances in progress on this shard.
    pub fn journeys_in_progress(&self) -> usize {
        self.journey_due.len()
    }

    /// Puts the shard's journey instances by step on `/metrics`, and on `board` when given,
    /// when they changed.
    pub fn export_journeys(&mut self, shard: usize, board: Option<&super::board::JourneyBoard>) {
        let changed = self.journey_due.changed_counts(&self.rules);
        if changed.is_empty() {
            return;
        }
        if let Some(b) = board {
            let (labels, counts) = self.journey_due.picture();
            b.publish(shard, labels, counts);
        }
        for (journey, step, n) in changed {
            crate::telemetry::journey_instances(shard, journey, step, n);
        }
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
        self.pristine = false;
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
            // A new local day begins on a minute's turn, so the funnel need only look then.
            self.funnel.event_day(ev.ts, &mut self.scratch.triggered);
        }
        let local = self.local_cache.1;
        let day = self.funnel.day();
        let known = self.subs.len();
        let (at, mut entry) = self.subs.get_or_insert_at(ev.msisdn, || Profile::unknown(ev.msisdn));
        let mut trace = Vec::new();

        // 1. Facts the event states about the subscriber.
        entry.apply(ev, &mut self.names, &refdata);
        if matches!(ev.body, Body::Profile(_)) {
            self.pins.touched(ev.msisdn);
        }

        // A reply: the SMS it answers and what it refuses, read by policy on this
        // subscriber's contact history before the rules see it; an outcome: what came of the
        // contact it reports on (for `suppress_after`).
        let replied;
        let ev = match &ev.body {
            Body::Reply(r) => {
                let mut r = r.clone();
                let journaled = refdata.optout_journal.read(ev.msisdn);
                if let Some((o, new)) = self.policy.read_reply((ev.ts, &ev.id), &mut r, entry.state, journaled) {
                    if new {
                        crate::telemetry::optout(o.scope);
                        if let Err(e) = refdata.optout_journal.append(ev.msisdn, &o) {
                            crate::telemetry::optout_journal_error(ev.msisdn, &e);
                        }
                    }
                    if tracing {
                        let already = match new {
                            true => "",
                            false if journaled.iter().any(|k| k.reply == o.reply) => " (as journaled)",
                            false => " (already in force)",
                        };
                        trace.push(format!("  {}{already}", o.describe()));
                    }
                }
                self.funnel.reply(day, &r);
                replied = Event { body: Body::Reply(r), ..ev.clone() };
                &replied
            }
            Body::Outcome(o) => {
                self.policy.read_outcome(o, entry.state);
                self.funnel.outcome(day, o);
                ev
            }
            _ => ev,
        };

        // 2. Windows and sequences.
        let scene = Scene { event: Some(ev), now: ev.ts, local, refdata: &refdata, names: &self.names, offset };
        rules.observe(&scene, &mut entry, &mut self.scratch);
        self.activity.counted(at, ev.ts, self.scratch.new_buckets());
        let profile = matches!(ev.body, Body::Profile(_));
        // Derived attributes this kind of event recomputes (rules then read them fresh).
        let derives = &rules.derives_by_kind[kind as usize];
        // A daily derive's `for:` may read the record or derived values.
        self.settled.touched(at, self.scratch.counted(), profile || !derives.is_empty());
        // A journey's steady start reads the record and derived values: only a profile event
        // or one that recomputes derived values can change what it says.
        if profile || !derives.is_empty() {
            self.quiet.stirred(at);
        }
        if !derives.is_empty() {
            rules.derive(derives, &scene, &mut entry, tracing.then_some(&mut trace));
        }

        // 3. Cancel absence timers this event answers.
        for i in rules.cancels(&scene, &entry).into_iter().rev() {
            let t = entry.state.take_timer(i);
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
                Match::Contact(Proposal { rule, trigger, written }) => {
                    if tracing {
                        trace.push(format!("  rule {} matched", rules.rules[rule as usize].name));
                    }
                    let key = OrderKey { pos, phase: 1, due: 0, msisdn: 0, rule };
                    cands.push(candidate(Proposal { rule, trigger, written }, ev.ts, key, None));
                }
                Match::Timer(t) => {
                    if tracing {
                        let (name, due) = (&rules.rules[t.rule as usize].name, format_ts(t.due, offset));
                        trace.push(format!("  rule {name} matched: timer set for {due}"));
                    }
                    self.timers.insert(t.index_key(ev.msisdn.raw()));
                    entry.state.push_timer(t);
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
        if !cands.is_empty() {
            self.funnel.matched(&cands, false);
        }
        // 5. Journeys: the event moves the subscriber's instances and may start one; the
        // contacts of the steps it enters go to policy with the rules' (after them).
        if !rules.journeys.is_empty() {
            let mut proposed = Vec::new();
            let mut moves = Vec::new();
            rules.journeys_on_event(&scene, &mut entry, pos, &mut proposed, &mut moves, tracing);
            self.journey_due.apply(ev.msisdn.raw(), &moves, stats);
            if tracing {
                trace.extend(moves.iter().map(|m| format!("  {}", m.note)));
            }
            if !proposed.is_empty() {
                let from = cands.len();
                cands.extend(proposed.into_iter().map(|p| {
                    let key = OrderKey { pos, phase: 1, due: 0, msisdn: 0, rule: p.rule };
                    candidate(p, ev.ts, key, None)
                }));
                self.funnel.matched(&cands[from..], true);
            }
        }
        let first = out.len();
        let cx = &mut DecideCtx { refdata: &refdata, shadow: &mut self.shadow_contacts };
        self.policy.decide(cx, cands, &mut entry, out);
        hold_deferred(&out[first..], pos, &mut entry, &mut self.timers, stats);
        if tracing {
            trace.extend(out[first..].iter().map(|d| explain_line(d, offset)));
            if let Some((_, lines)) = &mut self.trace {
                lines.append(&mut trace);
            }
        }
        if self.subs.len() != known {
            self.held.added(ev.msisdn);
        }
        // Past the bound on unknown subscribers, the one seen least recently is forgotten.
        self.subs.forget_unknown(ev.ts, self.policy.keep());
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
            let next_journey = self.journey_due.first().map(|k| k.0).filter(|t| *t <= wm);
            if let Some(j) = next_journey {
                if next_tick.is_none_or(|t| j < t) && next_timer.is_none_or(|t| j < t) {
                    self.journey_fires(place, out, stats);
                    continue;
                }
            }
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
            let timer = entry.state.take_timer(i);
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
                if !rules.still_holds(&timer, &scene, &entry) {
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
                written: timer.written,
                deferred: timer.deferred,
            };
            self.funnel.matched(std::slice::from_ref(&cand), false);
            let first = out.len();
            let cx = &mut DecideCtx { refdata: &refdata, shadow: &mut self.shadow_contacts };
            self.policy.decide(cx, vec![cand], &mut entry, out);
            hold_deferred(&out[first..], pos, &mut entry, &mut self.timers, stats);
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
    /// The journey instance due first moves: it expires, or a time transition is taken.
    fn journey_fires(&mut self, place: &dyn Fn(Millis, u64) -> u64, out: &mut Vec<Decision>, stats: &mut ShardStats) {
        let Some((due, raw, journey)) = self.journey_due.pop_first() else { return };
        let rules = Arc::clone(&self.rules);
        let refdata = Arc::clone(&self.refdata);
        let offset = self.offset;
        let msisdn = Msisdn::from_raw(raw);
        let tracing = self.tracing(msisdn);
        let Some(mut entry) = self.subs.get_mut(msisdn) else { return };
        let of_it =
            |i: &&crate::state::JourneyInst| rules.steps.get(i.step as usize).is_some_and(|s| s.journey == journey);
        let Some(armed_at) = entry.state.journeys().iter().find(of_it).filter(|i| i.due == due).map(|i| i.armed_at)
        else {
            return;
        };
        let pos = place(due, armed_at + 1);
        let scene = Scene {
            event: None,
            now: due,
            local: Local::at(due, offset),
            refdata: &refdata,
            names: &self.names,
            offset,
        };
        let (mut proposed, mut moves) = (Vec::new(), Vec::new());
        rules.journey_due(&scene, &mut entry, journey, pos, &mut proposed, &mut moves, tracing);
        // The instance's entry left the index above; it goes back at its new due time (or at
        // the one the rules give it now, when nothing was due after all).
        for m in &mut moves {
            m.old_due = None;
        }
        if moves.is_empty() {
            let of_it = |i: &&mut crate::state::JourneyInst| {
                i.due == due && rules.steps.get(i.step as usize).is_some_and(|s| s.journey == journey)
            };
            if let Some(i) = entry.state.journeys_mut().iter_mut().find(of_it) {
                i.due = rules.journey_next_due(i, offset).max(due + 1);
                self.journey_due.requeue((i.due, raw, journey));
            }
        }
        self.journey_due.apply(raw, &moves, stats);
        let cands: Vec<Candidate> = proposed
            .into_iter()
            .map(|p| {
                let key = OrderKey { pos, phase: 0, due, msisdn: raw, rule: p.rule };
                candidate(p, due, key, Some(due))
            })
            .collect();
        self.funnel.matched(&cands, true);
        let first = out.len();
        if !cands.is_empty() {
            let cx = &mut DecideCtx { refdata: &refdata, shadow: &mut self.shadow_contacts };
            self.policy.decide(cx, cands, &mut entry, out);
            hold_deferred(&out[first..], pos, &mut entry, &mut self.timers, stats);
        }
        if tracing {
            let mut trace = vec![format!("{}  journey due", format_ts(due, offset))];
            trace.extend(moves.iter().map(|m| format!("  {}", m.note)));
            trace.extend(out[first..].iter().map(|d| explain_line(d, offset)));
            if let Some((_, lines)) = &mut self.trace {
                lines.append(&mut trace);
            }
        }
    }
}

/// A proposed contact as policy takes it: decided at `ts`, placed in the output by `key`, `due`
/// when a timer or a journey's time brought it.
fn candidate(p: Proposal, ts: Millis, key: OrderKey, due: Option<Millis>) -> Candidate {
    Candidate { rule: p.rule, ts, key, trigger: p.trigger, due, written: p.written, deferred: None }
}

/// Holds every contact of `decided` (one trigger's decisions, at input position `pos`) that
/// policy deferred to the end of quiet hours: a timer of the subscriber, in their state and in
/// the shard's index, that brings it back to policy as the same action when they end.
fn hold_deferred(
    decided: &[Decision],
    pos: u64,
    entry: &mut Subscriber,
    index: &mut BTreeSet<TimerKey>,
    stats: &mut ShardStats,
) {
    let raw = entry.sub.msisdn.raw();
    for d in decided {
        let Outcome::Deferred(until) = d.outcome else { continue };
        let t = PendingTimer {
            due: until,
            rule: d.rule,
            trigger: d.trigger.clone(),
            armed_at: pos,
            written: d.written(),
            deferred: Some(Deferred { id: d.id.clone(), expires: d.expires }),
            kept: Default::default(),
        };
        index.insert(t.index_key(raw));
        entry.state.push_timer(t);
        // The run's count of deferrals is the live rules' (a shadow one is in its decision).
        if !d.shadow {
            stats.deferred += 1;
        }
    }
}
