//! Derived attributes: values a pack computes per subscriber from state and reference data
//! (`derive:` items) — the value tier from revenue and cost, a churn score, the channel a
//! subscriber answers on — kept in the subscriber's state and read by conditions and templates
//! as `derived.NAME`, like a profile field.
//!
//! A derive runs on events of its kinds (after the event is counted into windows, before the
//! rules see it) or daily at its time for every subscriber (before the daily rules of that
//! minute). With `snapshot: month` (or `week`, `day`) a value once computed holds until the
//! period ends: the segment a subscriber is in for the month does not change mid-month. With
//! `for:` a condition, it is computed only for the subscribers it holds for when it runs; anyone
//! else has no value (one held from before is dropped), so `derived.NAME` reads as missing.

use super::RuleSet;
use super::eval::Scene;
use super::expr::schema::{SymTy, Ty};
use super::expr::{Calc, Calced, Cond, Ctx, Local, Value, WindowRead, window_or_steady_reads, window_reads};
use crate::event::KindSet;
use crate::state::table::Subscriber;
use crate::state::{DVal, Derived, SubState};
use chrono::Datelike;

/// How long a computed value holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        Some(match s {
            "day" => Period::Day,
            "week" => Period::Week,
            "month" => Period::Month,
            _ => return None,
        })
    }

    /// The period of index `i` in words (`2026-11`, `the week of 2026-11-23`, `2026-11-24`).
    pub fn describe(self, i: i32) -> String {
        match self {
            Period::Month => format!("{}-{:02}", i.div_euclid(12), i.rem_euclid(12) + 1),
            Period::Day | Period::Week => {
                let d =
                    chrono::NaiveDate::from_num_days_from_ce_opt(i).map_or_else(|| i.to_string(), |d| d.to_string());
                if self == Period::Week { format!("the week of {d}") } else { d }
            }
        }
    }

    /// The index of the local period `local` is in (days, ISO weeks from Monday, months).
    pub fn index(self, local: &Local) -> i64 {
        let d = local.date;
        match self {
            Period::Day => i64::from(d.num_days_from_ce()),
            Period::Week => i64::from(d.num_days_from_ce() - d.weekday().num_days_from_monday() as i32),
            Period::Month => i64::from(d.year()) * 12 + i64::from(d.month0()),
        }
    }
}

/// What a derive computes: one expression, or cases tried in order (`when` / `then`, the last
/// `then` alone the default).
#[derive(Clone, Debug)]
pub enum Computed {
    Expr(Calc),
    Cases(Vec<(Option<super::expr::Cond>, Calc)>),
}

/// The first derived attribute of a daily pass that changes for a subscriber: its place in
/// the pass's slots, its new value and the period it is computed in.
pub struct FirstChange {
    at: usize,
    /// `None`: the value is dropped (its `for:` does not hold).
    value: Option<DVal>,
    period: i32,
}

/// A compiled `derive:` item.
#[derive(Clone, Debug)]
pub struct DeriveDef {
    pub name: Box<str>,
    pub desc: Box<str>,
    pub file: Box<str>,
    pub line: usize,
    pub ty: Ty,
    /// The events it runs on; empty for a daily one.
    pub on: KindSet,
    /// A daily one's local minute of the day.
    pub schedule: Option<u32>,
    pub value: Computed,
    pub snapshot: Option<Period>,
    /// Whom it is computed for (`for:`); `None`: everyone.
    pub for_whom: Option<Cond>,
    /// For a daily one that is no snapshot, reads only windows, timeless record fields and
    /// constants, and whose `for:` reads only those and derived values: the windows both read
    /// (its value, and whom it is for, stay put until one of them moves, see
    /// [`super::expr::window_reads`]); `None` otherwise.
    pub settles: Option<Box<[WindowRead]>>,
    /// For a daily one that reads windows: its value as it reads for a subscriber with no
    /// window buckets at all, worked out as far as that goes (see [`super::expr::bare`]).
    pub bare: Option<Computed>,
    /// The item as written, its name, description and former names aside (`schedule: 00:10;
    /// value: ...`, whitespace collapsed): a reload tells a derive whose definition changed by it.
    pub definition: Box<str>,
    /// The macros and lists it reads, as `macro NAME: ...` or `list NAME: ...` with what they
    /// say: a change there redefines it as well.
    pub consulted: Box<[String]>,
    /// Its former names (`was:`).
    pub was: Box<[super::former::Former]>,
}

impl DeriveDef {
    /// Whether it is computed for the context's subscriber now (its `for:`).
    fn computed_for(&self, cx: &Ctx) -> bool {
        self.for_whom.as_ref().is_none_or(|w| w.holds(cx))
    }

    /// Its value for the context's subscriber now (`None`: no case holds, or the value is
    /// missing).
    fn compute(&self, cx: &Ctx) -> Option<DVal> {
        let value = match &self.bare {
            Some(bare) if cx.state.no_windows() => bare,
            _ => &self.value,
        };
        let ir = match value {
            Computed::Expr(ir) => ir,
            Computed::Cases(cases) => {
                let (_, then) = cases.iter().find(|(w, _)| w.as_ref().is_none_or(|w| w.holds(cx)))?;
                then
            }
        };
        let v = match ir.calc(cx) {
            Calced::Int(n) => return n.map(DVal::Int),
            Calced::Value(v) => v,
        };
        Some(match (self.ty, v) {
            (Ty::Bool, Value::Bool(b)) => DVal::Bool(b),
            (Ty::Sym(_), Value::Sym(v)) => DVal::Sym(v),
            (_, Value::Int(n)) => DVal::Int(n),
            // A CRM attribute takes the derive's `type:` (a whole number, or true/false).
            (Ty::Bool, Value::Json(j)) => DVal::Bool(j.as_bool()?),
            (Ty::Int | Ty::Money | Ty::Duration, Value::Json(j)) => DVal::Int(j.as_i64()?),
            _ => return None,
        })
    }

    /// The windows a daily derive of this shape reads, if its value stays put between the
    /// moments they move (see [`DeriveDef::settles`]).
    pub fn settling(
        schedule: Option<u32>,
        snapshot: Option<Period>,
        value: &Computed,
        for_whom: Option<&Cond>,
    ) -> Option<Box<[WindowRead]>> {
        if schedule.is_none() || snapshot.is_some() {
            return None;
        }
        let mut reads = Vec::new();
        // Whom it is for moves with the same things its value does: the windows it reads are
        // watched with the value's (`for: count(outcome where ..., 60d) >= 2`).
        if for_whom.is_some_and(|w| !window_or_steady_reads(w.ir(), &mut reads)) {
            return None;
        }
        let all = match value {
            Computed::Expr(ir) => window_reads(ir.ir(), &mut reads),
            Computed::Cases(cases) => cases.iter().all(|(when, then)| {
                when.as_ref().is_none_or(|w| window_reads(w.ir(), &mut reads)) && window_reads(then.ir(), &mut reads)
            }),
        };
        all.then(|| reads.into_boxed_slice())
    }

    /// [`DeriveDef::bare`] of a derive computing `value` at `schedule`.
    pub fn bare(schedule: Option<u32>, value: &Computed) -> Option<Computed> {
        schedule?;
        match value {
            Computed::Expr(ir) => Some(Computed::Expr(Calc::new(super::expr::bare(ir.ir())?))),
            Computed::Cases(cases) => {
                let mut windows = false;
                let mut fold = |ir: &super::expr::Ir| match super::expr::bare(ir) {
                    Some(b) => {
                        windows = true;
                        b
                    }
                    None => ir.clone(),
                };
                let cases: Vec<_> = cases
                    .iter()
                    .map(|(when, then)| (when.as_ref().map(|w| Cond::new(fold(w.ir()))), Calc::new(fold(then.ir()))))
                    .collect();
                windows.then_some(Computed::Cases(cases))
            }
        }
    }

    /// A value of this attribute in words, for explain.
    pub fn show(&self, v: &DVal) -> String {
        match (v, self.ty) {
            (DVal::Sym(i), Ty::Sym(t)) => t.names().get(*i as usize).copied().unwrap_or("?").to_string(),
            (DVal::Int(n), Ty::Money) => {
                let sign = if *n < 0 { "-" } else { "" };
                format!("{sign}{}.{:02} CNY", n.abs() / 100, n.abs() % 100)
            }
            (DVal::Int(n), _) => n.to_string(),
            (DVal::Bool(b), _) => b.to_string(),
            (DVal::Sym(i), _) => i.to_string(),
        }
    }
}

/// `type:` of a derive: the words it may take.
pub fn type_named(s: &str) -> Option<Ty> {
    Some(match s {
        "number" => Ty::Int,
        "money" => Ty::Money,
        "duration" => Ty::Duration,
        "bool" => Ty::Bool,
        "tier" => Ty::Sym(SymTy::Tier),
        "channel" => Ty::Sym(SymTy::Channel),
        "brand" => Ty::Sym(SymTy::Brand),
        "status" => Ty::Sym(SymTy::Status),
        "service" => Ty::Sym(SymTy::Service),
        _ => return None,
    })
}

pub const TYPE_NAMES: &[&str] =
    &["number", "money", "duration", "bool", "tier", "channel", "brand", "status", "service"];

impl RuleSet {
    /// Recomputes the subscriber's derived attributes that `slots` name (those of the scene's
    /// event kind, or of a daily minute) whose snapshot period has ended; what changed, in
    /// words, goes to `notes` when tracing.
    pub fn derive(&self, slots: &[u16], scene: &Scene, s: &mut Subscriber, mut notes: Option<&mut Vec<String>>) {
        for &slot in slots {
            let def = &self.derives[slot as usize];
            let period = def.snapshot.map_or(0, |p| p.index(&scene.local)) as i32;
            let held = s.state.derived_value(slot).filter(|d| def.snapshot.is_some() && d.period == period);
            if held.is_some() {
                continue;
            }
            let cx = scene.ctx(s);
            let value = match def.computed_for(&cx) {
                true => match def.compute(&cx) {
                    Some(value) => Some(value),
                    None => continue,
                },
                // Not for this subscriber: a value held is dropped.
                false => None,
            };
            self.set_derived(slot, value, period, s, notes.as_deref_mut());
        }
    }

    /// Sets one derived attribute (`None`: drops it), saying what changed when tracing.
    fn set_derived(
        &self,
        slot: u16,
        value: Option<DVal>,
        period: i32,
        s: &mut Subscriber,
        notes: Option<&mut Vec<String>>,
    ) {
        let def = &self.derives[slot as usize];
        if let Some(n) = notes {
            let was = s.state.derived_value(slot).map(|d| def.show(&d.value()));
            let now = value.map(|v| def.show(&v));
            if was != now {
                let was = was.map_or(String::new(), |w| format!(" (was {w})"));
                n.push(match now {
                    Some(v) => format!("  derived.{} = {v}{was}", def.name),
                    None => format!("  derived.{}: none, not computed for this subscriber{was}", def.name),
                });
            }
        }
        match value {
            Some(value) => s.state.set_derived(Derived::new(slot, value, period), self.daily_derive_room),
            None => s.state.remove_derived(slot),
        }
    }

    /// A daily pass's derived attributes for one subscriber, once [`RuleSet::first_change`]
    /// found one that changes (each is computed once): that one is set, and the ones after it
    /// are recomputed in order (a later one may read it).
    pub fn derive_from(
        &self,
        first: FirstChange,
        slots: &[u16],
        scene: &Scene,
        s: &mut Subscriber,
        mut notes: Option<&mut Vec<String>>,
    ) {
        let FirstChange { at, value, period } = first;
        self.set_derived(slots[at], value, period, s, notes.as_deref_mut());
        self.derive(&slots[at + 1..], scene, s, notes);
    }

    /// The first of `slots` whose value would change now, on the state as it is (a daily pass
    /// reads before it writes: most subscribers' values do not change).
    pub fn first_change(
        &self,
        slots: &[u16],
        scene: &Scene,
        sub: &crate::refdata::Profile,
        st: &SubState,
    ) -> Option<FirstChange> {
        let cx = scene.ctx_of(sub, st);
        slots.iter().enumerate().find_map(|(k, &slot)| {
            let def = &self.derives[slot as usize];
            let period = def.snapshot.map_or(0, |p| p.index(&scene.local)) as i32;
            let held = st.derived_value(slot);
            if held.is_some_and(|d| def.snapshot.is_some() && d.period == period) {
                return None;
            }
            if !def.computed_for(&cx) {
                return held.is_some().then_some(FirstChange { at: k, value: None, period });
            }
            let value = def.compute(&cx)?;
            let same = held.is_some_and(|d| d.value() == value && d.period == period);
            (!same).then_some(FirstChange { at: k, value: Some(value), period })
        })
    }

    /// The period each of `slots` is in at `local`, when every one of them is a snapshot (a
    /// value that holds for its period); `None` otherwise, or for none.
    pub fn snapshot_periods(&self, slots: &[u16], local: &Local) -> Option<Vec<i32>> {
        if slots.is_empty() {
            return None;
        }
        slots.iter().map(|&slot| Some(self.derives[slot as usize].snapshot?.index(local) as i32)).collect()
    }

    /// Until when the values of daily derives `slots` computed at `now` from state `st` stay
    /// put while no event is counted for the subscriber and their record does not change: the
    /// first moment a bucket leaves or enters a window one of them reads. `None` when one of
    /// them is not of that kind (it is computed at every tick).
    pub fn settled_until(&self, slots: &[u16], st: &SubState, now: crate::time::Millis) -> Option<crate::time::Millis> {
        let mut until = crate::time::Millis::MAX;
        for &slot in slots {
            let reads = self.derives[slot as usize].settles.as_deref()?;
            // No bucket to leave a window: only an event (which touches the entry) moves them.
            if st.no_windows() {
                continue;
            }
            for r in reads {
                until = until.min(st.agg_settled_until(r.slot, now, r.bucket, r.window));
            }
        }
        Some(until)
    }

    /// The window slots the daily derives `slots` read, when every one of them settles (see
    /// [`DeriveDef::settles`]): an event counted into none of them changes none of their values.
    pub fn settling_reads(&self, slots: &[u16]) -> Option<Vec<u32>> {
        let mut reads = Vec::new();
        for &s in slots {
            reads.extend(self.derives[s as usize].settles.as_deref()?.iter().map(|r| r.slot));
        }
        reads.sort_unstable();
        reads.dedup();
        Some(reads)
    }

    /// The derived attributes a daily tick at these local minutes recomputes.
    pub fn daily_derives(&self, minutes: &[u32]) -> Vec<u16> {
        (0..self.derives.len() as u16)
            .filter(|i| self.derives[*i as usize].schedule.is_some_and(|m| minutes.contains(&m)))
            .collect()
    }

    /// The subscriber's derived attributes, for explain: name -> value, with the period a
    /// snapshot holds for.
    pub fn describe_derived(&self, st: &SubState) -> serde_json::Map<String, serde_json::Value> {
        st.derived()
            .iter()
            .filter_map(|d| {
                let def = self.derives.get(d.slot as usize)?;
                let v = serde_json::json!({ "value": def.show(&d.value()), "for": def.snapshot.map(|p| p.describe(d.period)) });
                Some((def.name.to_string(), v))
            })
            .collect()
    }
}
