//! A daily tick on a shard: the derived attributes, daily journeys and daily rules of one local
//! minute, in one walk over the subscribers it must visit (issue 22 §3).
//!
//! Each subscriber is visited once a tick, and gets the three steps in the order they always
//! had: derived attributes first (the rules read them fresh), then the journeys that start,
//! then the rules' contacts. Subscribers share nothing in a tick (caps, history and journeys
//! are their own; channel capacity and budgets are applied after the shards, in output order),
//! so one walk decides what three walks did.
//!
//! Who is visited: everyone, unless every journey and rule of the tick is pinned to a day of
//! the subscriber's record (birthdays, anniversaries, expiry warnings: see [`Pin`]) and no
//! derived attribute is due — then only those an index of record days names, plus those whose
//! record changed since the index was built. The index is a filter only: each one visited is
//! evaluated in full, so a pass over the named decides exactly what a pass over all did.
//!
//! A tick whose rules each need events in a window or none (and nothing else) visits only
//! whom an index of newest window buckets says one of them may hold for ([`super::activity`]).
//! A tick that only computes derived attributes held for a period (`snapshot: month`) walks
//! over everyone once a period; its later ticks of the period visit only whom that walk left
//! without a value and subscribers added since ([`HeldSnapshots`]).

use super::{DailyParts, Shard, candidate, hold_deferred};
use crate::contact::{Candidate, Decision, OrderKey};
use crate::policy::{ContactPolicy, DecideCtx};
use crate::rules::RuleSet;
use crate::rules::eval::{DailyPass, Proposal, Scene};
use crate::rules::expr::{Local, Pin, Stretch};
use crate::state::table::SubTable;
use crate::time::{Millis, format_ts};
use crate::util::Msisdn;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::Arc;

use super::{ShardStats, TickCost};
use crate::engine::explain::explain_line;

/// How many entries ahead a walk over everyone fetches the lists of (window buckets, the rare
/// part): far enough for memory to answer before the walk gets there.
const PASS_AHEAD: u32 = 8;

/// How many local days an index of record days covers from the day it is built.
const SPAN_DAYS: i64 = 31;

/// Who each pin names on each local day of a stretch of days, from one look at every record.
#[derive(Default)]
pub(super) struct PinIndex {
    /// The pins indexed and the days `[from, to)` covered; `None`: not built, or out of date.
    built: Option<(Vec<Pin>, NaiveDate, NaiveDate)>,
    /// By pin (its place in `built`'s pins) and day from the first: whom it names then.
    named: Vec<Vec<u64>>,
    /// Subscribers whose record changed (or who were added) since it was built: named on every
    /// day until it is built again.
    touched: Vec<u64>,
}

impl PinIndex {
    /// Forgets the index (new rules, records restored): the next pinned tick builds it again.
    pub(super) fn clear(&mut self) {
        *self = PinIndex::default();
    }

    /// Subscriber `m`'s record changed.
    #[inline]
    pub(super) fn touched(&mut self, m: Msisdn) {
        if self.built.is_some() {
            self.touched.push(m.raw());
        }
    }

    /// The subscribers `pins` may name on local day `today` (sorted, each once): a superset of
    /// those for whom a pinned condition can hold. Builds the index for `all` first when it
    /// does not cover them or the day, or when many records changed since.
    fn named(&mut self, pins: &[Pin], all: &[Pin], today: NaiveDate, subs: &SubTable) -> Vec<u64> {
        let covers = |(p, from, to): &(Vec<Pin>, NaiveDate, NaiveDate)| {
            pins.iter().all(|x| p.contains(x)) && *from <= today && today < *to
        };
        if !self.built.as_ref().is_some_and(covers) || self.touched.len() > subs.len() / 64 + 1024 {
            self.build(all, today, subs);
        }
        let Some((built, from, _)) = &self.built else { return Vec::new() };
        let list = |p: &Pin| built.iter().position(|b| b == p).and_then(|k| self.named.get(at(k, *from, today)));
        let mut out: Vec<u64> = pins.iter().filter_map(list).flatten().chain(&self.touched).copied().collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn build(&mut self, pins: &[Pin], from: NaiveDate, subs: &SubTable) {
        let to = from + chrono::TimeDelta::days(SPAN_DAYS);
        self.named.clear();
        self.named.resize_with(pins.len() * SPAN_DAYS as usize, Vec::new);
        self.touched.clear();
        let stretch = Stretch::new(from, to);
        for i in 0..subs.len() as u32 {
            let p = subs.profile(i);
            for (k, pin) in pins.iter().enumerate() {
                if let Some(day) = pin.day_in(p, &stretch) {
                    self.named[at(k, from, day)].push(p.msisdn.raw());
                }
            }
        }
        self.built = Some((pins.to_vec(), from, to));
    }
}

/// The place in [`PinIndex`]'s lists of the `k`th pin's list for `day` of a stretch from `from`.
fn at(k: usize, from: NaiveDate, day: NaiveDate) -> usize {
    k * SPAN_DAYS as usize + (day - from).num_days() as usize
}

/// The snapshot derived attributes of a tick that computes nothing else (the month's value
/// tier at 00:10): a value holds for its period, so once a walk gave everyone theirs, the
/// period's later ticks need visit only whom that walk left without one (no value could be
/// computed) and whoever was added since. Forgotten on reload and restore (the next tick walks
/// everyone). A filter only: each one visited is derived in full.
#[derive(Default)]
pub(super) struct HeldSnapshots {
    /// By the tick's derives: the period of each at its last walk, who it left without a
    /// value, and how much of `added` it had seen.
    walks: HashMap<Vec<u16>, (Vec<i32>, Vec<u64>, usize)>,
    /// Subscribers added to the shard since the walks, in order.
    added: Vec<u64>,
}

impl HeldSnapshots {
    pub(super) fn clear(&mut self) {
        *self = HeldSnapshots::default();
    }

    /// Subscriber `m` is new on this shard.
    #[inline]
    pub(super) fn added(&mut self, m: Msisdn) {
        if !self.walks.is_empty() {
            self.added.push(m.raw());
        }
    }

    /// Who a tick of `derives` in `periods` must visit, if a walk of the same periods holds for
    /// the rest (sorted, each once); `None`: everyone.
    fn named(&mut self, derives: &[u16], periods: &[i32], subs: &SubTable) -> Option<Vec<u64>> {
        if self.added.len() > subs.len() / 64 + 1024 {
            self.clear();
            return None;
        }
        let (held, missing, seen) = self.walks.get(derives)?;
        if held != periods {
            return None;
        }
        let mut out: Vec<u64> = missing.iter().chain(&self.added[*seen..]).copied().collect();
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    /// A tick of `derives` in `periods` visited everyone it had to; `missing` lack a value.
    fn walked(&mut self, derives: &[u16], periods: Vec<i32>, missing: Vec<u64>) {
        self.walks.insert(derives.to_vec(), (periods, missing, self.added.len()));
    }
}

/// What one tick does to each subscriber it visits.
struct TickWork {
    at: Millis,
    /// The input position its contacts are placed at.
    pos: u64,
    derives: Vec<u16>,
    journeys: Vec<u16>,
    pass: Option<DailyPass>,
}

impl Shard {
    /// A daily tick at `at`: the derived attributes, journeys and rules of that minute, for
    /// every subscriber they may concern.
    pub(super) fn tick(
        &mut self,
        at: Millis,
        place: &dyn Fn(Millis, u64) -> u64,
        out: &mut Vec<Decision>,
        stats: &mut ShardStats,
    ) {
        let minutes = self.ticks.take(at);
        // The funnel's `triggered`: every subscriber, whomever the tick then visits.
        self.funnel.daily(&minutes, at, self.subs.len());
        let rules = Arc::clone(&self.rules);
        let refdata = Arc::clone(&self.refdata);
        let policy = Arc::clone(&self.policy);
        let offset = self.offset;
        let local = Local::at(at, offset);
        let scene = Scene { event: None, now: at, local, refdata: &refdata, names: &self.names, offset };
        let work = TickWork {
            at,
            pos: 0,
            derives: rules.daily_derives(&minutes),
            journeys: rules.daily_journeys(&minutes),
            // Parts of a condition that are the same for everyone are checked once here.
            pass: rules.daily_pass(&minutes, &scene),
        };
        if work.derives.is_empty() && work.journeys.is_empty() && work.pass.is_none() {
            return;
        }
        let started = std::time::Instant::now();
        let decided = out.len();
        let work = TickWork { pos: place(at, 0), ..work };
        let pins = match (&work.pass, work.derives.is_empty()) {
            (_, false) => None,
            (None, true) => rules.journey_pins(&work.journeys),
            (Some(pass), true) => rules.journey_pins(&work.journeys).and_then(|mut j| {
                j.extend(rules.pass_pins(pass)?);
                Some(j)
            }),
        };
        let mut parts = DailyParts {
            subs: &mut self.subs,
            journey_due: &mut self.journey_due,
            timers: &mut self.timers,
            shadow: &mut self.shadow_contacts,
            trace: &mut self.trace,
            proposed: &mut self.proposed,
            funnel: &mut self.funnel,
            settled: &mut self.settled,
            settled_walk: None,
            quiet: &mut self.quiet,
            quiet_walk: None,
        };
        if !work.journeys.is_empty() && rules.journeys_steady(&work.journeys) {
            parts.quiet_walk = Some(parts.quiet.walk(&work.journeys, parts.subs));
        }
        if let Some(reads) = rules.settling_reads(&work.derives) {
            parts.settled_walk = Some(parts.settled.walk(&work.derives, reads, parts.subs));
        }
        // Who the tick visits, in table order: see the module.
        let active = match (&pins, &work.pass) {
            (None, Some(pass)) if work.derives.is_empty() && work.journeys.is_empty() => rules.pass_activity(pass),
            _ => None,
        };
        let snapshots = (pins.is_none() && work.journeys.is_empty() && work.pass.is_none())
            .then(|| rules.snapshot_periods(&work.derives, &local))
            .flatten();
        let everyone = |subs: &SubTable| (0..subs.len() as u32).collect();
        let slots: Vec<u32> = if let Some(terms) = active {
            self.activity.named(&terms, at, &rules, parts.subs)
        } else if let Some(periods) = &snapshots {
            match self.held.named(&work.derives, periods, parts.subs) {
                Some(named) => table_order(&named, parts.subs),
                None => everyone(parts.subs),
            }
        } else if let Some(pins) = pins {
            table_order(&self.pins.named(&pins, &rules.daily_pins(), local.date, parts.subs), parts.subs)
        } else {
            everyone(parts.subs)
        };
        stats.daily_visits += slots.len() as u64;
        let cells_ahead = work.pass.as_ref().is_some_and(DailyPass::reads_cells);
        // A pack with derived attributes reads them in most ticks (a derive's held value, whom
        // it is for, a condition on one).
        let derived_ahead = !rules.derives.is_empty();
        // Those a tick of snapshots leaves without a value.
        let mut missing = Vec::new();
        for (k, &i) in slots.iter().enumerate() {
            // The state twice as far ahead, so that finding the lists below does not wait on it
            // (a tick that visits a few subscribers spread over the table misses on every one).
            if let Some(&further) = slots.get(k + 2 * PASS_AHEAD as usize) {
                parts.subs.prefetch_state_at(further);
            }
            if let Some(&ahead) = slots.get(k + PASS_AHEAD as usize) {
                parts.subs.prefetch_lists_at(ahead);
                if cells_ahead {
                    parts.subs.prefetch_cells_at(ahead);
                }
                if derived_ahead {
                    parts.subs.prefetch_derived_at(ahead);
                }
            }
            parts.visit(i, &rules, &policy, &work, &scene, out, stats);
            if let Some(periods) = &snapshots {
                let e = parts.subs.read(i);
                let held = |(slot, p): (&u16, &i32)| e.state.derived_value(*slot).is_some_and(|d| d.period == *p);
                if !work.derives.iter().zip(periods).all(held) {
                    missing.push(e.sub.msisdn.raw());
                }
            }
        }
        if let Some(periods) = snapshots {
            self.held.walked(&work.derives, periods, missing);
        }
        // A tick of derives visits everyone; were it to visit fewer, those it did not would stay
        // touched.
        if let Some(k) = parts.settled_walk.filter(|_| slots.len() == parts.subs.len()) {
            parts.settled.walked(k).done();
        }
        stats.daily_ticks.push(TickCost {
            at,
            visits: slots.len() as u64,
            decisions: (out.len() - decided) as u64,
            ns: started.elapsed().as_nanos() as u64,
        });
    }
}

impl DailyParts<'_> {
    /// Subscriber `i`'s part of a tick: derived attributes, then journeys, then rules. Only
    /// what changes is written (a checkpoint in progress copies just those, see
    /// [`SubTable::at`]).
    #[allow(clippy::too_many_arguments)]
    fn visit(
        &mut self,
        i: u32,
        rules: &RuleSet,
        policy: &ContactPolicy,
        work: &TickWork,
        scene: &Scene,
        out: &mut Vec<Decision>,
        stats: &mut ShardStats,
    ) {
        let (at, pos, offset) = (work.at, work.pos, scene.offset);
        let traced = self.trace.as_ref().is_some_and(|(m, _)| *m == self.subs.profile(i).msisdn);
        let mut lines = Vec::new();
        let settled = self.settled_walk.map(|k| self.settled.walked(k));
        if !work.derives.is_empty() && !settled.as_ref().is_some_and(|s| s.holds(i, at)) {
            stats.derives_computed += 1;
            let e = self.subs.read(i);
            if let Some(settled) = settled {
                settled.computed(i, rules.settled_until(&work.derives, e.state, at).unwrap_or(Millis::MIN));
            }
            if let Some(first) = rules.first_change(&work.derives, scene, e.sub, e.state) {
                let mut notes = Vec::new();
                rules.derive_from(first, &work.derives, scene, &mut self.subs.at(i), traced.then_some(&mut notes));
                self.quiet.stirred(i);
                self.settled.derived_changed(i);
                if !notes.is_empty() {
                    let local = scene.local;
                    lines.push(format!(
                        "{}  derived attributes at {:02}:{:02}",
                        format_ts(at, offset),
                        local.hour,
                        local.minute
                    ));
                    lines.append(&mut notes);
                }
            }
        }
        let quiet = self.quiet_walk.is_some_and(|k| self.quiet.is_quiet(k, i));
        if !work.journeys.is_empty() && !quiet {
            stats.starts_evaluated += 1;
            let (starts, stays_quiet) = rules.daily_starts(&work.journeys, scene, &self.subs.read(i));
            if let Some(k) = self.quiet_walk {
                self.quiet.evaluated(k, i, stays_quiet);
            }
            if !starts.is_empty() {
                let mut entry = self.subs.at(i);
                let raw = entry.sub.msisdn.raw();
                let (mut proposed, mut moves) = (Vec::new(), Vec::new());
                rules.start_daily(&starts, scene, &mut entry, pos, &mut proposed, &mut moves, traced);
                self.journey_due.apply(raw, &moves, stats);
                let first = out.len();
                let cands = candidates(proposed, at, pos, raw);
                self.funnel.matched(&cands, true);
                let cx = &mut DecideCtx { refdata: scene.refdata, shadow: &mut *self.shadow };
                policy.decide(cx, cands, &mut entry, out);
                hold_deferred(&out[first..], pos, &mut entry, self.timers, stats);
                if traced {
                    lines.push(format!("{}  daily journeys", format_ts(at, offset)));
                    lines.extend(moves.iter().map(|m| format!("  {}", m.note)));
                    lines.extend(out[first..].iter().map(|d| explain_line(d, offset)));
                }
            }
        }
        if let Some(pass) = &work.pass {
            rules.propose_daily(pass, scene, &self.subs.read(i), self.proposed);
            if !self.proposed.is_empty() {
                let mut entry = self.subs.at(i);
                let raw = entry.sub.msisdn.raw();
                let names: Vec<String> =
                    self.proposed.iter().map(|p| rules.rules[p.rule as usize].name.to_string()).collect();
                let cands = candidates(self.proposed.drain(..), at, pos, raw);
                self.funnel.matched(&cands, false);
                let first = out.len();
                let cx = &mut DecideCtx { refdata: scene.refdata, shadow: &mut *self.shadow };
                policy.decide(cx, cands, &mut entry, out);
                hold_deferred(&out[first..], pos, &mut entry, self.timers, stats);
                if traced {
                    lines.push(format!("{}  daily rules at {}", format_ts(at, offset), pass.label()));
                    lines.extend(names.iter().map(|n| format!("  rule {n} matched")));
                    lines.extend(out[first..].iter().map(|d| explain_line(d, offset)));
                }
            }
        }
        if let Some((_, trace)) = self.trace.as_mut().filter(|_| !lines.is_empty()) {
            trace.append(&mut lines);
        }
    }
}

/// The entries of the subscribers `named` in table order, as a walk over everyone meets them
/// (those no longer on the shard left out).
fn table_order(named: &[u64], subs: &SubTable) -> Vec<u32> {
    let mut slots: Vec<u32> = named.iter().filter_map(|m| subs.slot_of(Msisdn::from_raw(*m))).collect();
    slots.sort_unstable();
    slots
}

/// A tick's proposals to one subscriber as policy takes them.
fn candidates(proposed: impl IntoIterator<Item = Proposal>, at: Millis, pos: u64, raw: u64) -> Vec<Candidate> {
    proposed
        .into_iter()
        .map(|p| {
            let key = OrderKey { pos, phase: 0, due: at, msisdn: raw, rule: p.rule };
            candidate(p, at, key, None)
        })
        .collect()
}
