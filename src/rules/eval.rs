//! Rules evaluate themselves: what an event, a timer or a daily tick makes of the pack for one
//! subscriber.
//!
//! The shard owns the subscriber and calls these in a fixed order for each event: the event's
//! facts go into the state first (`state::table::Subscriber::apply`), then
//! [`RuleSet::observe`] counts it into windows and sequences, [`RuleSet::cancels`] names the
//! absence timers it answers, and [`RuleSet::propose`] says what each rule it triggers wants:
//! a contact now or a timer. A timer firing asks [`RuleSet::still_holds`]; a daily tick asks
//! [`RuleSet::daily_pass`] once and [`RuleSet::propose_daily`] per subscriber. What becomes
//! of a proposed contact is contact policy's business, not the rules'.
//!
//! Rules are visited in pack order, and the order is part of the output (decision order and
//! action ids follow it). Nothing here allocates per event beyond what it hands back (the
//! rendered messages, the triggers, the timers cancelled): its buffers are the shard's
//! [`Scratch`], reused.

use super::expr::kept::keep;
use super::expr::{Activity, Ctx, Local, Pin, Value};
use super::template::Template;
use super::{Rule, RuleSet};
use crate::contact::{TriggerRef, Written};
use crate::event::Event;
use crate::refdata::{Names, Profile, RefData};
use crate::state::kept::Kept;
use crate::state::table::Subscriber;
use crate::state::{AggCap, PendingTimer, SubState};
use crate::time::Millis;
use crate::util::Msisdn;
use std::sync::Arc;

/// Everything a condition reads but the subscriber: the event (none when a timer fires or a
/// daily tick runs), the time, and the shard's reference data.
#[derive(Clone, Copy)]
pub struct Scene<'a> {
    pub event: Option<&'a Event>,
    pub now: Millis,
    pub local: Local,
    pub refdata: &'a RefData,
    /// The strings of the shard's records.
    pub names: &'a Names,
    pub offset: chrono::FixedOffset,
}

impl<'a> Scene<'a> {
    /// The evaluation context of subscriber `s` in this scene.
    #[inline]
    pub fn ctx<'b>(&self, s: &'b Subscriber<'_>) -> Ctx<'b>
    where
        'a: 'b,
    {
        self.ctx_of(s.sub, s.state)
    }

    /// The evaluation context of a record and state read apart (a daily pass reads before it
    /// writes).
    #[inline]
    pub(super) fn ctx_of<'b>(&self, sub: &'b Profile, state: &'b SubState) -> Ctx<'b>
    where
        'a: 'b,
    {
        let Scene { event, now, local, refdata, names, offset } = *self;
        Ctx { event, now, local, sub, names, state, refdata, offset, armed: &[] }
    }
}

/// Buffers reused from event to event, so evaluating allocates nothing of its own.
#[derive(Default)]
pub struct Scratch {
    /// Window increments of the event: (slot, amount).
    aggs: Vec<(u32, i64)>,
    /// The window slots the event made a new bucket in.
    new_buckets: Vec<u32>,
    /// The copy of a subscriber's window buckets an event that opens or drops one edits.
    agg_buf: crate::state::AggBuf,
    /// Distinct-count sightings of the event: (slot, value hash).
    distinct: Vec<(u32, u64)>,
    /// Step matches of every sequence slot the event touches, back to back, and per slot
    /// (slot, start, len) into it.
    seq: Vec<bool>,
    seq_slots: Vec<(u32, usize, usize)>,
    /// The rules an event may match.
    rules: Vec<u32>,
    /// Per rule: times [`RuleSet::propose`] evaluated it (visited and enabled) since the shard
    /// last took the counts for the funnel's `triggered` (sized by the shard to its rules).
    pub triggered: Vec<u32>,
}

impl Scratch {
    /// The window slots the last observed event made a new bucket in (the newest bucket of a
    /// slot moves only then).
    pub fn new_buckets(&self) -> &[u32] {
        &self.new_buckets
    }

    /// The window slots the last observed event was counted into.
    pub fn counted(&self) -> impl Iterator<Item = u32> + Clone + '_ {
        self.aggs.iter().map(|(slot, _)| *slot)
    }
}

/// The stable hash a distinct count keeps of a value (`None`: no value): the same value hashes
/// alike on every run and shard (a field's type is fixed, so values of two types never meet).
fn value_hash(v: &Value) -> Option<u64> {
    let mut b = [0u8; 9];
    let bytes: &[u8] = match v {
        Value::Str(s) => return Some(crate::util::stable_hash(s.as_bytes())),
        Value::Int(n) => {
            b[1..].copy_from_slice(&n.to_le_bytes());
            &b
        }
        Value::Sym(x) => {
            b[0] = 1;
            b[1] = *x;
            &b[..2]
        }
        Value::Bool(x) => {
            b[0] = 2;
            b[1] = u8::from(*x);
            &b[..2]
        }
        Value::Json(j) => return j.as_str().map(|s| crate::util::stable_hash(s.as_bytes())),
        Value::Null | Value::List(..) | Value::Tags(_) => return None,
    };
    Some(crate::util::stable_hash(bytes))
}

/// A contact a rule proposes: the rule, what triggered it, and its message rendered for the
/// subscriber.
pub struct Proposal {
    pub rule: u32,
    pub trigger: TriggerRef,
    pub written: Written,
}

/// What a rule an event triggers (its condition holding) wants.
pub enum Match {
    /// A contact now.
    Contact(Proposal),
    /// A timer to arm: a delay, or an absence check.
    Timer(PendingTimer),
    /// Nothing new: the rule's (index) timer is already running for this subscriber (one
    /// pending timer per rule and subscriber; a second trigger does not restart the clock).
    Running(u32),
}

/// The daily rules a tick runs, decided once for everyone.
pub struct DailyPass {
    rules: Vec<u32>,
    /// The tick's local time of day, `HH:MM`.
    label: String,
    /// Whether a rule of it reads the subscriber's recent cells (the day before a cut-over).
    reads_cells: bool,
}

impl DailyPass {
    /// The tick's local time of day, `HH:MM`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether a rule of the pass reads each subscriber's recent cells: the walk fetches them
    /// ahead (they live apart from the state, a cache miss each otherwise).
    pub fn reads_cells(&self) -> bool {
        self.reads_cells
    }
}

impl RuleSet {
    /// Counts the scene's event into the subscriber's windows and sequences: which ones it
    /// counts toward is decided on the state as it was, then applied.
    #[inline]
    pub fn observe(&self, scene: &Scene, s: &mut Subscriber, scratch: &mut Scratch) {
        let Some(ev) = scene.event else { return };
        let kind = ev.kind();
        scratch.aggs.clear();
        scratch.distinct.clear();
        scratch.seq.clear();
        scratch.seq_slots.clear();
        {
            let cx = scene.ctx(s);
            for &slot in &self.aggs_by_kind[kind as usize] {
                let def = &self.aggs[slot as usize];
                if def.filter.as_ref().is_none_or(|f| f.holds(&cx)) {
                    let amount = match def.value {
                        None => 1,
                        Some(field) => match field.read(&cx) {
                            Value::Int(n) => n,
                            _ => 0,
                        },
                    };
                    // A sum reads only amounts: nothing to add opens no bucket (most calls are
                    // free of charge), and leaves the values read from the window as they were.
                    if amount != 0 || def.value.is_none() {
                        scratch.aggs.push((slot, amount));
                    }
                }
            }
            for &slot in &self.distinct_by_kind[kind as usize] {
                let def = &self.distinct[slot as usize];
                if def.filter.as_ref().is_none_or(|f| f.holds(&cx)) {
                    // An event without the field shows no value.
                    if let Some(h) = value_hash(&def.field.read(&cx)) {
                        scratch.distinct.push((slot, h));
                    }
                }
            }
            for &slot in &self.seqs_by_kind[kind as usize] {
                let def = &self.seqs[slot as usize];
                let start = scratch.seq.len();
                for (k, f) in &def.steps {
                    scratch.seq.push(*k == kind && f.as_ref().is_none_or(|f| f.holds(&cx)));
                }
                if scratch.seq[start..].iter().any(|m| *m) {
                    scratch.seq_slots.push((slot, start, def.steps.len()));
                } else {
                    scratch.seq.truncate(start);
                }
            }
        }
        let st = &mut s.state;
        scratch.new_buckets.clear();
        let def = |slot: u32| {
            let (bucket, window) = self.aggs.get(slot as usize).map_or((1, 0), |d| (d.bucket, d.window));
            AggCap { bucket, window, cap: self.agg_caps.get(slot as usize).copied().unwrap_or(0) }
        };
        st.agg_add_all(&scratch.aggs, ev.ts, def, &mut scratch.agg_buf, &mut scratch.new_buckets);
        for &(slot, hash) in &scratch.distinct {
            st.distinct_see(slot, hash, ev.ts, self.distinct[slot as usize].window);
        }
        for &(slot, start, len) in &scratch.seq_slots {
            st.seq_step(slot, &scratch.seq[start..start + len], ev.ts, self.seqs[slot as usize].within);
        }
    }

    /// The subscriber's pending absence timers the scene's event answers (positions in
    /// `timers()`, ascending): its kind cancels them and their `cancel_if` holds.
    #[inline]
    pub fn cancels(&self, scene: &Scene, s: &Subscriber) -> Vec<usize> {
        let Some(ev) = scene.event else { return Vec::new() };
        let kind = ev.kind();
        if !self.cancel_kinds.contains(kind) || s.state.timers().is_empty() {
            return Vec::new();
        }
        let cx = scene.ctx(s);
        // An `each` rule's timers are cancelled one an event: the oldest it matches.
        let mut each_cancelled: Vec<u32> = Vec::new();
        s.state
            .timers()
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                let Some(def) = self.rules[t.rule as usize].timer.as_ref() else { return false };
                let cancels = t.deferred.is_none()
                    && def.cancel_on.contains(kind)
                    && t.due > ev.ts
                    && !(def.each && each_cancelled.contains(&t.rule))
                    && def.cancel_if.as_ref().is_none_or(|c| c.holds(&Ctx { armed: &t.kept, ..cx }));
                if cancels && def.each {
                    each_cancelled.push(t.rule);
                }
                cancels
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// What the rules the scene's event triggers want, in pack order, onto `out`: contacts,
    /// and timers armed at input position `pos`.
    #[inline]
    pub fn propose(&self, scene: &Scene, s: &Subscriber, pos: u64, scratch: &mut Scratch, out: &mut Vec<Match>) {
        let Some(ev) = scene.event else { return };
        let kind = ev.kind();
        let cx = scene.ctx(s);
        let trigger = || TriggerRef { kind: kind.as_str(), id: ev.id.as_str().into(), ts: ev.ts };
        let first = out.len();
        let triggered = &mut scratch.triggered[..];
        self.by_kind[kind as usize].visit(ev, &mut scratch.rules, |ri| {
            let rule = &self.rules[ri as usize];
            if !rule.enabled {
                return;
            }
            if let Some(n) = triggered.get_mut(ri as usize) {
                *n += 1;
            }
            if !rule.condition.holds(&cx) {
                return;
            }
            match &rule.timer {
                Some(t) => {
                    // One pending timer per rule and subscriber (a few with `each`): a trigger
                    // while it waits does not restart the clock.
                    let waiting = |p: &PendingTimer| p.rule == ri && p.deferred.is_none();
                    let pending = cx.state.timers().iter().filter(|p| waiting(p)).count()
                        + out[first..].iter().filter(|m| matches!(m, Match::Timer(p) if waiting(p))).count();
                    if pending >= t.room() {
                        out.push(Match::Running(ri));
                        return;
                    }
                    let kept =
                        t.armed.iter().map(|(path, ir)| Kept { path: Arc::clone(path), value: keep(cx.eval(ir)) });
                    out.push(Match::Timer(PendingTimer {
                        due: ev.ts.saturating_add(t.after),
                        rule: ri,
                        trigger: trigger(),
                        armed_at: pos,
                        written: write(rule, &cx),
                        deferred: None,
                        kept: kept.collect(),
                    }));
                }
                None => {
                    out.push(Match::Contact(Proposal { rule: ri, trigger: trigger(), written: write(rule, &cx) }));
                }
            }
        });
    }

    /// Whether a rule's timer, firing now (the scene's time), still leads to a contact: its
    /// recheck, if it has one, holds against the state now (and what the timer kept).
    #[inline]
    pub fn still_holds(&self, timer: &PendingTimer, scene: &Scene, s: &Subscriber) -> bool {
        match self.rules[timer.rule as usize].timer.as_ref().and_then(|t| t.recheck.as_ref()) {
            Some(re) => re.holds(&Ctx { armed: &timer.kept, ..scene.ctx(s) }),
            None => true,
        }
    }

    /// The local minutes of day at which the set's daily rules run, each once, in order.
    pub fn daily_minutes(&self) -> Vec<u32> {
        let mut minutes: Vec<u32> = self.scheduled.iter().filter_map(|r| self.rules[*r as usize].schedule).collect();
        minutes.extend(self.derives.iter().filter_map(|d| d.schedule));
        minutes.extend(self.journeys.iter().filter_map(|j| j.schedule));
        minutes.sort_unstable();
        minutes.dedup();
        minutes
    }

    /// The daily rules of the tick at `minutes` (its local minutes of day) to run in the scene;
    /// `None` when there are none. Parts of a condition that are the same for everyone ("the
    /// day before the cut-over", "a festival today") are checked once here, and so is whether
    /// any calendar entry a `cutover.days_until == N` term needs exists; a rule they rule out
    /// visits no one.
    pub fn daily_pass(&self, minutes: &[u32], scene: &Scene) -> Option<DailyPass> {
        let (sub, state) = (Profile::unknown(Msisdn::from_raw(0)), SubState::default());
        let gate = scene.ctx_of(&sub, &state);
        let rules: Vec<u32> = self
            .scheduled
            .iter()
            .copied()
            .filter(|r| {
                let rule = &self.rules[*r as usize];
                rule.schedule.is_some_and(|m| minutes.contains(&m))
                    && rule.condition.global_parts().iter().all(|p| gate.eval_bool(p))
                    && rule.condition.calendar_may_hold(&gate)
            })
            .collect();
        if rules.is_empty() {
            return None;
        }
        let label = format!("{:02}:{:02}", scene.local.hour, scene.local.minute);
        let reads_cells = rules.iter().any(|r| self.rules[*r as usize].condition.ir().reads_recent_cells());
        Some(DailyPass { rules, label, reads_cells })
    }

    /// The pins of `pass`'s rules (see [`Pin`]): `None` unless each of them has one, in which
    /// case the pass need visit only whom the pins name.
    pub fn pass_pins(&self, pass: &DailyPass) -> Option<Vec<Pin>> {
        pass.rules.iter().map(|r| &self.rules[*r as usize]).filter(|r| r.enabled).map(|r| r.condition.pin()).collect()
    }

    /// The activity terms of each of `pass`'s rules (see [`Activity`]) on windows that count
    /// events: `None` unless each rule has one, in which case the pass need visit only those a
    /// shard's index of newest buckets says they may hold for.
    pub fn pass_activity(&self, pass: &DailyPass) -> Option<Vec<Vec<Activity>>> {
        let rules = pass.rules.iter().map(|r| &self.rules[*r as usize]).filter(|r| r.enabled);
        rules.map(|r| Some(self.counting(r.condition.activity())).filter(|a| !a.is_empty())).collect()
    }

    /// The window slots whose newest buckets a shard indexes: those the daily rules' activity
    /// terms read.
    pub fn activity_slots(&self) -> Vec<u32> {
        let terms = self.scheduled.iter().flat_map(|r| self.counting(self.rules[*r as usize].condition.activity()));
        let mut slots: Vec<u32> = terms.map(|a| a.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    }

    /// The terms on windows that count events (a sum's buckets may hold nothing).
    fn counting(&self, terms: Vec<Activity>) -> Vec<Activity> {
        terms.into_iter().filter(|a| self.aggs.get(a.slot as usize).is_some_and(|d| d.value.is_none())).collect()
    }

    /// Every pin of the daily rules and journeys (what a shard's index of record days keeps).
    pub fn daily_pins(&self) -> Vec<Pin> {
        let rules = self.scheduled.iter().filter_map(|r| self.rules[*r as usize].condition.pin());
        let journeys = self.journeys.iter().filter(|j| j.schedule.is_some()).filter_map(|j| j.start.pin());
        let mut pins: Vec<Pin> = rules.chain(journeys).collect();
        pins.sort_unstable();
        pins.dedup();
        pins
    }

    /// The contacts `pass`'s rules propose to subscriber `s`, in pack order, onto `out`.
    #[inline]
    pub fn propose_daily(&self, pass: &DailyPass, scene: &Scene, s: &Subscriber, out: &mut Vec<Proposal>) {
        let cx = scene.ctx(s);
        for &ri in &pass.rules {
            let rule = &self.rules[ri as usize];
            if !rule.enabled || !rule.condition.holds(&cx) {
                continue;
            }
            let id = format!("{}@{}", pass.label, scene.local.date).into();
            let trigger = TriggerRef { kind: "schedule", id, ts: scene.now };
            out.push(Proposal { rule: ri, trigger, written: write(rule, &cx) });
        }
    }
}

/// What the rule's action says for the context's subscriber and event: its message (or an
/// order's offer), a call's script and queue, what a reply to the SMS is about.
pub(super) fn write(rule: &Rule, cx: &Ctx) -> Written {
    let render = |t: &Option<Template>| t.as_ref().map(|t| t.render(cx).into_boxed_str());
    Written {
        text: render(if rule.offer.is_some() { &rule.offer } else { &rule.template }),
        script: render(&rule.script),
        queue: render(&rule.queue),
        about: render(&rule.about),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Decoder;
    use crate::rules::{LoadOptions, compile};

    const PACK: &str = r#"
- rule: later
  on: [usage]
  condition: state.balance < 5 CNY
  timer: { after: 1d, cancel_on: [topup] }
  action: { channel: sms, template: "later" }
- rule: now
  on: [usage]
  condition: state.balance < 5 CNY
  action: { channel: sms, template: "balance {state.balance|cny}" }
"#;

    fn pack() -> RuleSet {
        let loaded = compile(vec![("t.yaml".into(), PACK.into())], None, &LoadOptions::default());
        assert_eq!(loaded.errors(), 0, "{:?}", loaded.diagnostics);
        loaded.rules.expect("a rule set")
    }

    fn event(kind: &str, extra: &str) -> Event {
        let line = format!(r#"{{"kind":"{kind}","ts":"2026-11-24T10:00:00+08:00","msisdn":"13800138000",{extra}}}"#);
        Decoder::default().decode(line.as_bytes(), "t", 1).expect("a line").expect("an event")
    }

    #[test]
    fn a_rule_arms_one_timer_per_subscriber_and_the_rules_propose_in_pack_order() {
        let rules = pack();
        let (refdata, names) = (RefData::default(), Names::default());
        let usage =
            event("usage", r#""service":"data","direction":"mo","scope":"local","volume_kb":1,"balance_fen":300"#);
        let (mut sub, mut state) = (Profile::unknown(usage.msisdn), SubState::default());
        let s = Subscriber { sub: &mut sub, state: &mut state };
        s.state.begin(usage.ts, usage.balance_fen());
        let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("a valid offset");
        let local = Local::at(usage.ts, offset);
        let scene = Scene { event: Some(&usage), now: usage.ts, local, refdata: &refdata, names: &names, offset };
        let (mut scratch, mut out) = (Scratch::default(), Vec::new());
        rules.propose(&scene, &s, 7, &mut scratch, &mut out);
        let timer = match &out[..] {
            [Match::Timer(t), Match::Contact(p)] => {
                assert_eq!((t.rule, t.armed_at, t.due), (0, 7, usage.ts + crate::time::DAY));
                assert_eq!((p.rule, p.written.text.as_deref()), (1, Some("balance 3.00")));
                assert_eq!((p.trigger.kind, p.trigger.ts), ("usage", usage.ts));
                t.clone()
            }
            _ => panic!("a timer, then a contact"),
        };
        // The timer armed, the same event again proposes the contact only.
        s.state.push_timer(timer);
        out.clear();
        rules.propose(&scene, &s, 8, &mut scratch, &mut out);
        assert!(matches!(&out[..], [Match::Running(0), Match::Contact(p)] if p.rule == 1));
        // Usage does not cancel it; a top-up does.
        assert!(rules.cancels(&scene, &s).is_empty());
        let topup = event("topup", r#""amount_fen":1000,"balance_fen":1300,"channel":"card""#);
        let scene = Scene { event: Some(&topup), ..scene };
        assert_eq!(rules.cancels(&scene, &s), vec![0]);
    }
}
