//! Journeys: a workflow a rule pack runs for one subscriber at a time — named steps, each with
//! an optional contact, and transitions on what comes of it (a call's outcome, a reply, an
//! event, time in the step, a local time of day), with an overall expiry.
//!
//! A journey compiles to definitions here ([`JourneyDef`], [`StepDef`]) and one generated rule
//! per step that contacts (named `journey.step`), so a step's contact is decided by contact
//! policy, written, counted and reported like any rule's. What a subscriber is doing in a
//! journey is per-subscriber state ([`crate::state::JourneyInst`]): which step, since when,
//! when its next time transition is due, and what it kept on the way (`keep:`).
//!
//! The shard calls [`RuleSet::journeys_on_event`] for every event after the rules proposed,
//! and [`RuleSet::journey_due`] when an instance's due time comes; both hand back the contacts
//! the steps entered make (for policy) and the instances' new due times (for the shard's index).
//! A subscriber is in at most one instance of a journey; a journey in progress is not started
//! again by the event that moves it.

use super::RuleSet;
use super::eval::{Proposal, Scene, write};
use super::expr::Cond;
use super::template::Template;
use crate::contact::TriggerRef;
use crate::event::{Body, Event, Kind, KindSet, OutcomeStatus};
use crate::state::JourneyInst;
use crate::state::table::Subscriber;
use crate::time::{Millis, format_duration, format_ts, next_local_minute};
use crate::util::SmallStr;
use std::sync::Arc;

/// A compiled journey.
#[derive(Clone, Debug)]
pub struct JourneyDef {
    pub name: Arc<str>,
    pub desc: Box<str>,
    pub file: Box<str>,
    pub line: usize,
    pub campaign: Arc<str>,
    /// The events that may start it (none for a daily one), and the condition they must meet.
    pub start_on: KindSet,
    pub start: Cond,
    /// A daily one's steady part of `start` (see [`crate::rules::expr::steady_part`]): when it
    /// is false the start condition is, until the record or a derived value changes.
    pub start_steady: Option<Cond>,
    /// A daily one's local minute of the day: it starts for whoever the condition holds for then.
    pub schedule: Option<u32>,
    /// How long an instance lasts at most, from its start.
    pub expire_after: i64,
    /// Its steps are `steps[first..first + len]` of the rule set; the first is where it starts.
    pub first: u32,
    pub len: u32,
    pub enabled: bool,
    /// Its former names (`was:`).
    pub was: Box<[super::former::Former]>,
}

/// One step of a journey.
#[derive(Clone, Debug)]
pub struct StepDef {
    /// Index of its journey in [`RuleSet::journeys`].
    pub journey: u16,
    pub name: Box<str>,
    /// The generated rule that makes its contact, if it makes one.
    pub rule: Option<u32>,
    /// Its transitions, in the order written: the first that matches is taken.
    pub next: Vec<Transition>,
    /// Its former names as `journey.step` (the step's own and its journey's, crossed).
    pub was: Box<[super::former::Former]>,
}

/// Where a transition goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goto {
    /// A step of the same journey (its index in the journey).
    Step(u32),
    /// The journey ends.
    End,
}

#[derive(Clone, Debug)]
pub struct Transition {
    pub when: When,
    pub goto: Goto,
    /// Values kept in the instance when it is taken (`keep: {reason: "{event.detail}"}`).
    pub keep: Vec<(Box<str>, Template)>,
}

/// What takes a transition.
#[derive(Clone, Debug)]
pub enum When {
    /// At once, on entering the step (after its contact).
    Now,
    /// An outcome of the step's own contact with one of these statuses (bit mask).
    Outcome(u16),
    /// A reply to the step's SMS; with keywords, one of them.
    Reply(Option<Box<[SmallStr]>>),
    /// Any event of these kinds for which the condition holds.
    Event { on: KindSet, cond: Option<Cond> },
    /// This long in the step.
    After(i64),
    /// The first time this local minute of the day comes after entering the step.
    At(u32),
}

impl When {
    /// The transition's due time for a step entered at `since`, if time takes it.
    fn due(&self, since: Millis, offset: chrono::FixedOffset) -> Option<Millis> {
        match self {
            When::After(d) => Some(since.saturating_add(*d)),
            When::At(m) => Some(next_local_minute(*m, since.saturating_add(1), offset)),
            _ => None,
        }
    }

    /// In words, for explain: "an answered call", "3d in the step".
    pub fn describe(&self) -> String {
        match self {
            When::Now => "nothing (at once)".into(),
            When::Outcome(mask) => {
                let s: Vec<&str> =
                    OutcomeStatus::ALL.iter().filter(|s| mask & (1 << **s as u16) != 0).map(|s| s.as_str()).collect();
                format!("an outcome {}", s.join("/"))
            }
            When::Reply(None) => "a reply".into(),
            When::Reply(Some(k)) => format!("a reply {}", k.iter().map(|k| k.as_str()).collect::<Vec<_>>().join("/")),
            When::Event { on, .. } => {
                format!("a {} event", on.iter().map(|k| k.as_str()).collect::<Vec<_>>().join("/"))
            }
            When::After(d) => format!("{} in the step", format_duration(*d)),
            When::At(m) => format!("{:02}:{:02}", m / 60, m % 60),
        }
    }
}

/// What a journey did for a subscriber: the shard moves the instance's entry in its due-time
/// index (`None`: not there), and the trace says `note` (empty when no trace asked for it).
pub struct JourneyMove {
    pub journey: u16,
    pub old_due: Option<Millis>,
    pub new_due: Option<Millis>,
    /// The step it was at (`None`: it starts) and the one it is at now (`None`: it ended).
    pub from: Option<u32>,
    pub to: Option<u32>,
    pub note: String,
}

/// A transition an event or a due time takes, found before the state changes.
struct Taken<'a> {
    /// Index of the instance in the subscriber's journeys, or `None` to start the journey.
    inst: Option<usize>,
    journey: u16,
    goto: Goto,
    kept: Vec<(Box<str>, Box<str>)>,
    why: Why<'a>,
}

/// Why a transition was taken, put in words only for a trace.
enum Why<'a> {
    /// An event of this kind and id moved the instance, or started the journey.
    Event(Kind, &'a str),
    Started(Kind, &'a str),
    /// A daily start at this local time.
    StartedAt(&'a str),
    Expired,
    When(&'a When),
}

impl Why<'_> {
    fn words(&self) -> String {
        match self {
            Why::Event(kind, id) => format!("{kind} event {id}"),
            Why::Started(kind, id) => format!("started by {kind} event {id}"),
            Why::StartedAt(label) => format!("started at {label}"),
            Why::Expired => "it expired".into(),
            Why::When(w) => w.describe(),
        }
    }
}

impl RuleSet {
    /// The journey a step belongs to.
    pub fn journey_of(&self, step: u32) -> Option<&JourneyDef> {
        let s = self.steps.get(step as usize)?;
        self.journeys.get(s.journey as usize)
    }

    /// When an instance's next time transition (or its expiry) is due.
    pub fn journey_next_due(&self, inst: &JourneyInst, offset: chrono::FixedOffset) -> Millis {
        let Some((j, step)) = self.journey_of(inst.step).zip(self.steps.get(inst.step as usize)) else {
            return inst.started;
        };
        let expires = inst.started.saturating_add(j.expire_after);
        step.next.iter().filter_map(|t| t.when.due(inst.since, offset)).fold(expires, Millis::min)
    }

    /// In words, for explain: "step 2 of 4 of retention_disconnect (sms_offer) since …,
    /// waiting for a reply, 3d in the step".
    pub fn describe_journey(&self, inst: &JourneyInst, offset: chrono::FixedOffset) -> String {
        let (Some(j), Some(step)) = (self.journey_of(inst.step), self.steps.get(inst.step as usize)) else {
            return "a journey no longer in the rules".into();
        };
        let waiting: Vec<String> = step.next.iter().map(|t| t.when.describe()).collect();
        let kept: String = inst.kept.iter().map(|(k, v)| format!(", {k}: {v}")).collect();
        format!(
            "step {} of {} of {} ({}) since {}, waiting for {}; ends {} at the latest{kept}",
            inst.step - j.first + 1,
            j.len,
            j.name,
            step.name,
            format_ts(inst.since, offset),
            if waiting.is_empty() { "nothing".into() } else { waiting.join(", ") },
            format_ts(inst.started.saturating_add(j.expire_after), offset),
        )
    }

    /// What the scene's event does to the subscriber's journeys: instances it moves, journeys
    /// it starts (each move with a note in words when `notes`, for a trace). The contacts of the steps entered go to `out`; the instances' new due times
    /// to `moves`. `pos` is the event's input position.
    #[allow(clippy::too_many_arguments)]
    pub fn journeys_on_event(
        &self,
        scene: &Scene,
        s: &mut Subscriber,
        pos: u64,
        out: &mut Vec<Proposal>,
        moves: &mut Vec<JourneyMove>,
        notes: bool,
    ) {
        let Some(ev) = scene.event else { return };
        if self.journeys.is_empty() {
            return;
        }
        let kind = ev.kind();
        let starts = &self.journeys_by_kind[kind as usize];
        if starts.is_empty() && s.state.journeys().is_empty() {
            return;
        }
        let mut taken = Vec::new();
        {
            let cx = scene.ctx(s);
            for (i, inst) in s.state.journeys().iter().enumerate() {
                let Some(step) = self.steps.get(inst.step as usize) else { continue };
                let Some(t) = step.next.iter().find(|t| self.event_takes(step, t, ev, &cx)) else { continue };
                let kept = t.keep.iter().map(|(k, v)| (k.clone(), v.render(&cx).into_boxed_str())).collect();
                taken.push(Taken {
                    inst: Some(i),
                    journey: step.journey,
                    goto: t.goto,
                    kept,
                    why: Why::Event(kind, &ev.id),
                });
            }
            for &ji in starts {
                let j = &self.journeys[ji as usize];
                let running = |inst: &JourneyInst| self.steps.get(inst.step as usize).is_some_and(|s| s.journey == ji);
                if j.enabled && !s.state.journeys().iter().any(running) && j.start.holds(&cx) {
                    let why = Why::Started(kind, &ev.id);
                    taken.push(Taken { inst: None, journey: ji, goto: Goto::Step(0), kept: Vec::new(), why });
                }
            }
        }
        if taken.is_empty() {
            return;
        }
        let trigger = TriggerRef { kind: kind.as_str(), id: ev.id.as_str().into(), ts: ev.ts };
        self.apply(scene, s, pos, taken, &trigger, out, moves, notes);
    }

    /// The subscriber's instance of journey `journey` is due at the scene's time: it expires,
    /// or the time transition due first is taken.
    #[allow(clippy::too_many_arguments)]
    pub fn journey_due(
        &self,
        scene: &Scene,
        s: &mut Subscriber,
        journey: u16,
        pos: u64,
        out: &mut Vec<Proposal>,
        moves: &mut Vec<JourneyMove>,
        notes: bool,
    ) {
        let of_it = |inst: &JourneyInst| self.steps.get(inst.step as usize).is_some_and(|s| s.journey == journey);
        let Some(i) = s.state.journeys().iter().position(of_it) else { return };
        let inst = &s.state.journeys()[i];
        let (Some(j), Some(step)) = (self.journeys.get(journey as usize), self.steps.get(inst.step as usize)) else {
            return;
        };
        let now = scene.now;
        let taken = if inst.started.saturating_add(j.expire_after) <= now {
            Taken { inst: Some(i), journey, goto: Goto::End, kept: Vec::new(), why: Why::Expired }
        } else {
            let due = |t: &Transition| t.when.due(inst.since, scene.offset).filter(|d| *d <= now);
            // The transition due first (the first written among those due alike).
            let Some((_, t)) = step.next.iter().filter_map(|t| due(t).map(|d| (d, t))).min_by_key(|(d, _)| *d) else {
                return;
            };
            Taken { inst: Some(i), journey, goto: t.goto, kept: Vec::new(), why: Why::When(&t.when) }
        };
        let trigger = TriggerRef { kind: "journey", id: format!("{}@{now}", j.name).into(), ts: now };
        self.apply(scene, s, pos, vec![taken], &trigger, out, moves, notes);
    }

    /// The journeys a daily tick at these local minutes may start.
    pub fn daily_journeys(&self, minutes: &[u32]) -> Vec<u16> {
        (0..self.journeys.len() as u16)
            .filter(|j| self.journeys[*j as usize].schedule.is_some_and(|m| minutes.contains(&m)))
            .collect()
    }

    /// The pins of `journeys`' start conditions (see [`super::expr::Pin`]): `None` unless each
    /// one that is enabled has one.
    pub fn journey_pins(&self, journeys: &[u16]) -> Option<Vec<super::expr::Pin>> {
        journeys.iter().map(|j| &self.journeys[*j as usize]).filter(|j| j.enabled).map(|j| j.start.pin()).collect()
    }

    /// Which of `journeys` start for the subscriber at the scene's time (enabled, not already
    /// running, their condition holding), and whether each was found false by its steady part
    /// alone (none running): then none starts until the record or a derived value changes.
    pub fn daily_starts(&self, journeys: &[u16], scene: &Scene, s: &Subscriber) -> (Vec<u16>, bool) {
        let cx = scene.ctx(s);
        let mut quiet = true;
        let starts = journeys
            .iter()
            .copied()
            .filter(|&ji| {
                let j = &self.journeys[ji as usize];
                if !j.enabled {
                    return false;
                }
                let running = |i: &JourneyInst| self.steps.get(i.step as usize).is_some_and(|s| s.journey == ji);
                if s.state.journeys().iter().any(running) {
                    quiet = false;
                    return false;
                }
                if j.start_steady.as_ref().is_some_and(|c| !c.holds(&cx)) {
                    return false;
                }
                quiet = false;
                j.start.holds(&cx)
            })
            .collect();
        (starts, quiet)
    }

    /// Whether each of daily journeys `journeys` has a steady part of its start condition.
    pub fn journeys_steady(&self, journeys: &[u16]) -> bool {
        journeys.iter().all(|&ji| self.journeys[ji as usize].start_steady.is_some())
    }

    /// Starts `journeys` (from [`RuleSet::daily_starts`]) for the subscriber at a daily tick.
    #[allow(clippy::too_many_arguments)]
    pub fn start_daily(
        &self,
        journeys: &[u16],
        scene: &Scene,
        s: &mut Subscriber,
        pos: u64,
        out: &mut Vec<Proposal>,
        moves: &mut Vec<JourneyMove>,
        notes: bool,
    ) {
        let label = format!("{:02}:{:02}", scene.local.hour, scene.local.minute);
        let taken = journeys
            .iter()
            .map(|&ji| Taken {
                inst: None,
                journey: ji,
                goto: Goto::Step(0),
                kept: Vec::new(),
                why: Why::StartedAt(&label),
            })
            .collect();
        let trigger =
            TriggerRef { kind: "schedule", id: format!("{label}@{}", scene.local.date).into(), ts: scene.now };
        self.apply(scene, s, pos, taken, &trigger, out, moves, notes);
    }

    /// Whether event `ev` takes transition `t` of `step` (the context is the event's).
    fn event_takes(&self, step: &StepDef, t: &Transition, ev: &Event, cx: &super::expr::Ctx) -> bool {
        let own = |rule: &str| step.rule.is_some_and(|r| *self.rules[r as usize].name == *rule);
        match (&t.when, &ev.body) {
            (When::Outcome(mask), Body::Outcome(o)) => mask & (1 << o.status as u16) != 0 && own(&o.rule),
            (When::Reply(kws), Body::Reply(r)) => {
                r.in_reply_to.as_ref().is_some_and(|i| own(&i.rule))
                    && kws.as_ref().is_none_or(|k| k.contains(&r.keyword))
            }
            (When::Event { on, cond }, _) => on.contains(ev.kind()) && cond.as_ref().is_none_or(|c| c.holds(cx)),
            _ => false,
        }
    }

    /// Takes the transitions found, then renders the contacts of the steps entered (against
    /// the state as it is now).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        scene: &Scene,
        s: &mut Subscriber,
        pos: u64,
        taken: Vec<Taken>,
        trigger: &TriggerRef,
        out: &mut Vec<Proposal>,
        moves: &mut Vec<JourneyMove>,
        notes: bool,
    ) {
        let now = scene.now;
        let mut entered: Vec<u32> = Vec::new();
        let mut ended: Vec<usize> = Vec::new();
        for t in taken {
            let j = &self.journeys[t.journey as usize];
            let (mut inst, old_due) = match t.inst {
                Some(i) => {
                    let inst = s.state.journeys()[i].clone();
                    let due = inst.due;
                    (inst, Some(due))
                }
                None => (
                    JourneyInst { step: j.first, started: now, since: now, armed_at: pos, due: now, kept: Vec::new() },
                    None,
                ),
            };
            for (k, v) in t.kept {
                match inst.kept.iter_mut().find(|(n, _)| *n == k) {
                    Some(slot) => slot.1 = v,
                    None => inst.kept.push((k, v)),
                }
            }
            let mut goto = t.goto;
            let mut path = Vec::new();
            // Immediate transitions are followed (at most once around the journey: `validate`
            // refuses a loop of them).
            for _ in 0..=j.len {
                let Goto::Step(local) = goto else { break };
                let step = j.first + local;
                inst.step = step;
                inst.since = now;
                inst.armed_at = pos;
                entered.push(step);
                if notes {
                    path.push(self.steps[step as usize].name.to_string());
                }
                match self.steps[step as usize].next.iter().find(|t| matches!(t.when, When::Now)) {
                    Some(n) => goto = n.goto,
                    None => break,
                }
            }
            let ends = goto == Goto::End;
            if !ends {
                inst.due = self.journey_next_due(&inst, scene.offset);
            }
            let note = match (notes, ends) {
                (false, _) => String::new(),
                (true, true) => {
                    let via = if path.is_empty() { String::new() } else { format!(" through {}", path.join(", ")) };
                    format!("journey {}: ends{via} ({})", j.name, t.why.words())
                }
                (true, false) => {
                    format!("journey {}: {} — {}", j.name, t.why.words(), self.describe_journey(&inst, scene.offset))
                }
            };
            let from = t.inst.map(|i| s.state.journeys()[i].step);
            moves.push(JourneyMove {
                journey: t.journey,
                old_due,
                new_due: (!ends).then_some(inst.due),
                from,
                to: (!ends).then_some(inst.step),
                note,
            });
            match (t.inst, ends) {
                (Some(i), true) => ended.push(i),
                (Some(i), false) => s.state.journeys_mut()[i] = inst,
                (None, true) => {}
                (None, false) => s.state.journeys_mut().push(inst),
            }
        }
        ended.sort_unstable();
        for i in ended.into_iter().rev() {
            s.state.end_journey(i);
        }
        let cx = scene.ctx(s);
        for step in entered {
            let Some(ri) = self.steps[step as usize].rule else { continue };
            let rule = &self.rules[ri as usize];
            if rule.enabled {
                out.push(Proposal { rule: ri, trigger: trigger.clone(), written: write(rule, &cx) });
            }
        }
    }
}
