//! Phase 4 of compiling a rule pack, assembling: the compiled rules and the per-subscriber
//! slots (windows, sequences) they need, indexed by the event kind that concerns them, so that
//! nothing on the event path parses text or looks a rule up by name. The types here are what
//! the rest of the engine sees of a pack.

use super::derive::DeriveDef;
use super::expr::Cond;
use super::expr::check::{AggDef, DistinctDef, SeqDef, SlotText, Slots};
pub use super::former::Former;
use super::index;
use super::journey::{JourneyDef, StepDef};
use super::template::Template;
use crate::contact::Channel;
use crate::event::{Kind, KindSet};
use crate::rules::policy::{CampaignPolicy, RulePolicy};
use crate::state::checkpoint::CAPPED;

/// A rule's delay or absence timer.
#[derive(Clone, Debug)]
pub struct TimerDef {
    pub after: i64,
    /// Events of these kinds (passing `cancel_if`) cancel the pending timer: absence.
    pub cancel_on: KindSet,
    pub cancel_if: Option<Cond>,
    /// Checked again when the timer fires, against the state then.
    pub recheck: Option<Cond>,
    /// Every trigger arms a timer of its own (`each: true`; at most [`TimerDef::MAX_EACH`]
    /// pending a subscriber), and a cancelling event cancels one of them, the oldest it
    /// matches; otherwise one timer waits, and a trigger while it waits changes nothing.
    pub each: bool,
    /// What `cancel_if` and `recheck` read as `armed.PATH`: each path and how to read it in the
    /// rule's own scope, read when the timer is armed and kept with it.
    pub armed: Box<[(std::sync::Arc<str>, crate::rules::expr::Ir)]>,
}

impl TimerDef {
    /// The most timers of one `each: true` rule a subscriber may have pending at once: a
    /// trigger past it changes nothing (as one of a rule that is not `each`).
    pub const MAX_EACH: usize = 8;

    /// How many of the rule's timers a subscriber may have pending at once.
    pub fn room(&self) -> usize {
        if self.each { TimerDef::MAX_EACH } else { 1 }
    }
}

/// A compiled rule: when it runs, its condition, its action, its timer and its policy.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: std::sync::Arc<str>,
    pub desc: Box<str>,
    pub file: Box<str>,
    pub line: usize,
    pub on: KindSet,
    pub condition: Cond,
    pub channel: Channel,
    pub template: Option<Template>,
    pub script: Option<Template>,
    /// A call's queue: a template, so that it may name the store a reply is about.
    pub queue: Option<Template>,
    /// What a reply to this SMS is about (`about: "{event.attrs.store}"`): kept with the
    /// contact, read back by a reply as `event.in_reply_to.about`.
    pub about: Option<Template>,
    /// The keywords its SMS text asks the subscriber to reply (`回复KTBY` → `KTBY`),
    /// normalised as replies are: a reply with one of them answers this SMS before a later one
    /// that did not ask for it.
    pub asks: Box<[Box<str>]>,
    /// An order's offer code (rendered into the decision's `text`, its one rendered body).
    pub offer: Option<Template>,
    /// The messages its SMS may take (`parts:`, 1 unless said): `tidings test` fails a case
    /// that renders a longer one.
    pub parts: u8,
    pub campaign: std::sync::Arc<str>,
    /// Index into [`RuleSet::campaigns`].
    pub campaign_idx: u16,
    pub priority: i32,
    pub timer: Option<TimerDef>,
    /// A daily rule: evaluated for every subscriber at this local minute of the day (no event).
    pub schedule: Option<u32>,
    pub policy: RulePolicy,
    pub enabled: bool,
    /// `mode: shadow`: evaluated and decided like a live rule, its decisions written and
    /// counted, but nothing it decides is ever sent (see `policy::shadow`).
    pub shadow: bool,
    /// Its former names (a journey step's rule: the step's, `journey.step`).
    pub was: Box<[Former]>,
}

/// A compiled rule pack.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Rule indexes per event kind, filed by the values they require (see [`index`]).
    pub by_kind: [index::KindIndex; Kind::ALL.len()],
    pub aggs: Vec<AggDef>,
    /// By window slot: the events its newest kept buckets must hold, 0 for all of the window
    /// (see [`crate::state::AggCap`]).
    pub agg_caps: Vec<i64>,
    pub seqs: Vec<SeqDef>,
    pub aggs_by_kind: [Vec<u32>; Kind::ALL.len()],
    pub seqs_by_kind: [Vec<u32>; Kind::ALL.len()],
    /// Distinct counts (`distinct(location.cell, 1d)`), and those each event kind feeds.
    pub distinct: Vec<DistinctDef>,
    pub distinct_by_kind: [Vec<u32>; Kind::ALL.len()],
    /// The window, sequence and distinct-count slots as the rules wrote them (for reports).
    pub slot_text: SlotText,
    /// Kinds that may cancel some rule's pending timer.
    pub cancel_kinds: KindSet,
    /// Every campaign the rules name, with its policy.
    pub campaigns: Vec<CampaignPolicy>,
    /// Daily rules (indexes), evaluated at their local time for every subscriber.
    pub scheduled: Vec<u32>,
    /// Whether any rule is in `mode: shadow` (the live path skips the shadow split without).
    pub has_shadow: bool,
    /// Journeys ([`super::journey`]), and all their steps, journey after journey.
    pub journeys: Vec<JourneyDef>,
    /// The journeys each event kind may start (indexes, in order).
    pub journeys_by_kind: [Vec<u16>; Kind::ALL.len()],
    pub steps: Vec<StepDef>,
    /// Derived attributes ([`super::derive`]), and those each event kind recomputes.
    pub derives: Vec<DeriveDef>,
    pub derives_by_kind: [Vec<u16>; Kind::ALL.len()],
    /// How many derives are daily and for everyone (no `for:`): the room a subscriber's first
    /// derived value makes (every subscriber gets each such value).
    pub daily_derive_room: usize,
    /// Checksum of the files that made the set (hex).
    pub version: String,
    pub files: Vec<String>,
}

impl RuleSet {
    /// The set made of a pack's rules (which had no errors) and the slots they asked for,
    /// indexed by event kind.
    pub(super) fn assemble(
        files: &[(String, String)],
        rules: Vec<Rule>,
        slots: Slots,
        campaigns: Vec<CampaignPolicy>,
        (journeys, steps, derives): (Vec<JourneyDef>, Vec<StepDef>, Vec<DeriveDef>),
    ) -> RuleSet {
        let mut set = RuleSet {
            version: checksum(files),
            files: files.iter().map(|f| f.0.clone()).collect(),
            agg_caps: slots.agg_caps(),
            aggs: slots.aggs,
            seqs: slots.seqs,
            distinct: slots.distinct,
            slot_text: slots.text,
            campaigns,
            journeys,
            steps,
            derives,
            ..RuleSet::default()
        };
        for (i, r) in rules.iter().enumerate() {
            if r.schedule.is_some() {
                set.scheduled.push(i as u32);
            }
            let single = r.on.iter().count() == 1;
            for k in r.on.iter() {
                set.by_kind[k as usize].add(k, i as u32, &r.condition, single);
            }
            if let Some(t) = &r.timer {
                set.cancel_kinds.0 |= t.cancel_on.0;
            }
            set.has_shadow |= r.shadow;
        }
        // Room for the daily values everyone gets (not those computed for some only).
        set.daily_derive_room = set.derives.iter().filter(|d| d.schedule.is_some() && d.for_whom.is_none()).count();
        for (i, d) in set.derives.iter().enumerate() {
            for k in d.on.iter() {
                set.derives_by_kind[k as usize].push(i as u16);
            }
        }
        for (i, j) in set.journeys.iter().enumerate() {
            for k in j.start_on.iter() {
                set.journeys_by_kind[k as usize].push(i as u16);
            }
        }
        for (i, a) in set.aggs.iter().enumerate() {
            set.aggs_by_kind[a.kind as usize].push(i as u32);
        }
        for (i, d) in set.distinct.iter().enumerate() {
            set.distinct_by_kind[d.kind as usize].push(i as u32);
        }
        for (i, s) in set.seqs.iter().enumerate() {
            let mut kinds = KindSet::default();
            for (k, _) in &s.steps {
                kinds.insert(*k);
            }
            for k in kinds.iter() {
                set.seqs_by_kind[k as usize].push(i as u32);
            }
        }
        set.rules = rules;
        set
    }
}

/// The checksum of the files that made a set (names and texts), in hex: its version.
fn checksum(files: &[(String, String)]) -> String {
    let mut bytes = Vec::new();
    for (name, text) in files {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0);
    }
    format!("{:016x}", crate::util::stable_hash(&bytes))
}

impl RuleSet {
    /// The former names its rules, journey steps and derived attributes answer to when state
    /// carries over to it.
    pub fn formerly(&self) -> crate::state::checkpoint::Formerly {
        fn each<'a, T: 'a>(
            items: &'a [T],
            was: impl Fn(&T) -> &[Former] + 'a,
            name: impl Fn(&T, &Former) -> String + 'a,
        ) -> Vec<(String, usize)> {
            let all = items.iter().enumerate().flat_map(|(i, x)| was(x).iter().map(move |f| (x, f, i)));
            all.map(|(x, f, i)| (name(x, f), i)).collect()
        }
        crate::state::checkpoint::Formerly {
            rules: each(&self.rules, |r| &r.was, |_, f| f.name.to_string()),
            steps: each(&self.steps, |s| &s.was, |_, f| f.name.to_string()),
            derived: each(&self.derives, |d| &d.was, |d, f| format!("{}: {:?}", f.name, d.ty)),
        }
    }

    /// What a checkpoint or a reload matches another rule set's parts by: rules and campaigns by
    /// name, windows and sequences by their compiled definition.
    pub fn shape(&self) -> crate::state::checkpoint::RuleShape {
        crate::state::checkpoint::RuleShape {
            rules: self.rules.iter().map(|r| r.name.to_string()).collect(),
            campaigns: self.campaigns.iter().map(|c| c.name.to_string()).collect(),
            // The checker's output is deterministic, so equal definitions print alike.
            // A slot that keeps only its newest buckets says how many events they hold.
            aggs: self
                .aggs
                .iter()
                .zip(&self.agg_caps)
                .map(|(a, cap)| if *cap > 0 { format!("{a:?}{CAPPED}{cap}") } else { format!("{a:?}") })
                .collect(),
            seqs: self.seqs.iter().map(|s| format!("{s:?}")).collect(),
            steps: self
                .steps
                .iter()
                .map(|s| format!("{}.{}", self.journeys[s.journey as usize].name, s.name))
                .collect(),
            // A derive whose type changed starts afresh.
            derived: self.derives.iter().map(|d| format!("{}: {:?}", d.name, d.ty)).collect(),
            distinct: self.distinct.iter().map(|d| format!("{d:?}")).collect(),
        }
    }
}
