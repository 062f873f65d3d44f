//! What a hot reload from one rule set to another carries over and what it starts afresh, said
//! before it happens: `tidings diff`, a deploy's checks and the reload's own answer show it.
//!
//! A reload keeps every subscriber's state, matching parts by name (rules, campaigns, journey
//! steps, derived attributes) or by definition (windows, sequences, distinct counts; see
//! [`crate::state::checkpoint::RuleShape`]). What matches nothing is dropped: journey instances
//! waiting at a step that is gone end, a rule's pending timers go with the rule, a window the new
//! pack defines afresh starts empty and fills over its length. An empty window reads as "no
//! events", so a test that no events makes true (`count(topup, 30d) == 0`, `sum(...) < 10 CNY`)
//! holds for every subscriber until the window has filled: a pack that adds such a rule with a
//! new window would contact everyone it listens to. Those are the warnings.

use super::RuleSet;
use super::expr::{CmpOp, Ir};
use crate::state::checkpoint::RuleShape;
use crate::time::format_duration;
use serde::Serialize;

/// What a reload from one rule set to another drops and starts afresh (see the module).
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Carry {
    /// Parts the new pack has under another name, which carry over by their former name
    /// (`was:`): `rule a → b`, `journey step j.s → k.s`, `derived x → y`.
    pub renamed: Vec<String>,
    /// Journey steps (`journey.step`) the new pack does not have: instances there end.
    pub ended_steps: Vec<String>,
    /// Rules with timers the new pack does not have: their pending timers are dropped.
    pub dropped_timers: Vec<String>,
    /// Rules whose timers the new pack reads `armed.PATH` values of that timers armed under the
    /// old rules did not keep (`rule: armed.PATH, ...`): those read null until they fire.
    pub unkept: Vec<String>,
    /// Derived attributes the new pack does not have, or has with another type (said so).
    pub dropped_derived: Vec<String>,
    /// Derived attributes new in the new pack: no subscriber has a value until it is computed.
    pub new_derived: Vec<String>,
    /// Derived attributes whose definition changed (name and type kept): each with how long
    /// the values computed under the old definition go on being read.
    pub redefined_derived: Vec<String>,
    /// Windows, sequences and distinct counts of the new pack no old one carries into.
    pub restarted: Vec<Restarted>,
    /// Windows carried over that the new pack reads further back than the old pack kept.
    pub lengthened: Vec<Restarted>,
    /// Tests an empty window makes hold, on windows that start empty (see the module).
    pub warnings: Vec<String>,
}

/// A window (or sequence, or distinct count) a reload starts empty or keeps too short.
#[derive(Debug, Serialize, PartialEq)]
pub struct Restarted {
    /// As the rules write it: `count(usage where service == data, 60d)`.
    pub slot: String,
    /// The rules, journeys and derived attributes that read it (`rule NAME (file:line)`).
    pub read_by: Vec<String>,
    /// How long after the reload it holds all it reads again (`60d`).
    pub full_after: String,
}

/// A slot of a rule set that expressions read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Agg(u32),
    Seq(u32),
    Distinct(u32),
}

impl Carry {
    /// Nothing is dropped or started afresh.
    pub fn is_empty(&self) -> bool {
        *self == Carry::default()
    }

    /// What a reload from `old` to `new` drops and starts afresh.
    pub fn between(old: &RuleSet, new: &RuleSet) -> Carry {
        Carry::across(&old.shape(), Some(old), new)
    }

    /// What state kept under rules of shape `was` (a checkpoint's) loses under `new`: as
    /// [`Carry::between`], less what only the old rules themselves tell (which gone rules had
    /// timers — every gone rule is listed —, windows read further back, derives redefined).
    pub fn from_shape(was: &RuleShape, new: &RuleSet) -> Carry {
        Carry::across(was, None, new)
    }

    fn across(was: &RuleShape, old: Option<&RuleSet>, new: &RuleSet) -> Carry {
        let now = new.shape();
        let remap = was.remap_to_with(&now, &new.formerly());
        fn gone<T>(names: &[String], map: &[Option<T>]) -> Vec<String> {
            names.iter().zip(map).filter(|(_, m)| m.is_none()).map(|(n, _)| n.clone()).collect()
        }
        let carried = |len: usize, map: &[Option<u32>]| {
            let mut into = vec![None; len];
            for (from, to) in map.iter().enumerate() {
                if let Some(t) = to.and_then(|t| into.get_mut(t as usize)) {
                    *t = Some(from);
                }
            }
            into
        };
        let readers = Readers::in_set(new);
        let mut carry = Carry {
            ended_steps: gone(&was.steps, &remap.steps),
            dropped_timers: match old {
                Some(old) => old
                    .rules
                    .iter()
                    .zip(&remap.rules)
                    .filter(|(r, m)| r.timer.is_some() && m.is_none())
                    .map(|(r, _)| r.name.to_string())
                    .collect(),
                None => gone(&was.rules, &remap.rules),
            },
            dropped_derived: gone(&was.derived, &remap.derived)
                .iter()
                .map(|d| match now.derived.iter().any(|n| name_of(n) == name_of(d)) {
                    true => format!("{} (its type changed: values start afresh)", name_of(d)),
                    false => name_of(d).to_string(),
                })
                .collect(),
            new_derived: now
                .derived
                .iter()
                .enumerate()
                .filter(|(i, d)| {
                    let carried = remap.derived.iter().any(|m| m.is_some_and(|t| usize::from(t) == *i));
                    !carried && !was.derived.iter().any(|w| name_of(w) == name_of(d))
                })
                .map(|(_, d)| name_of(d).to_string())
                .collect(),
            ..Carry::default()
        };
        carry.redefined_derived = old.map(|old| redefined(old, new)).unwrap_or_default();
        carry.unkept = old.map(|old| unkept(old, new, &remap.rules)).unwrap_or_default();
        // Parts that kept their state under a name of the new pack's other than their own.
        let moved = |what: &str, names: &[String], map: &[Option<usize>], to: &[String], out: &mut Vec<String>| {
            for (n, m) in names.iter().zip(map) {
                if let Some(t) = m.and_then(|t| to.get(t)).filter(|t| *t != n) {
                    out.push(format!("{what} {} → {}", name_of(n), name_of(t)));
                }
            }
        };
        let index = |m: &[Option<u32>]| m.iter().map(|x| x.map(|i| i as usize)).collect::<Vec<_>>();
        let derived: Vec<Option<usize>> = remap.derived.iter().map(|x| x.map(usize::from)).collect();
        let steps_moved = index(&remap.steps);
        // A step's own rule is renamed with it: said once, as the step.
        let rules: Vec<Option<usize>> =
            index(&remap.rules).into_iter().zip(&was.rules).map(|(m, n)| m.filter(|_| !n.contains('.'))).collect();
        moved("rule", &was.rules, &rules, &now.rules, &mut carry.renamed);
        moved("journey step", &was.steps, &steps_moved, &now.steps, &mut carry.renamed);
        moved("derived", &was.derived, &derived, &now.derived, &mut carry.renamed);
        let text = &new.slot_text;
        let mut fresh = Vec::new();
        for (i, from) in carried(new.aggs.len(), &remap.aggs).into_iter().enumerate() {
            let def = &new.aggs[i];
            let slot = Slot::Agg(i as u32);
            // A calendar month's read is whole again once the month it reads began after the
            // reload: this month's from the next 1st, last month's a month later.
            let full_after = |full: i64| match text.aggs.get(i).and_then(|(_, m)| m.as_deref()) {
                Some("last_month") => "2 calendar months at most".to_string(),
                Some(_) => "1 calendar month at most".to_string(),
                None => format_duration(full),
            };
            let row = |full: i64| Restarted {
                slot: text.agg(i, &new.aggs),
                read_by: readers.of(slot),
                full_after: full_after(full),
            };
            let kept = |f: usize| old.and_then(|o| o.aggs.get(f)).map(|d| d.window);
            match from {
                None => {
                    fresh.push(slot);
                    carry.restarted.push(row(def.window));
                }
                Some(f) => match kept(f) {
                    Some(w) if def.window > w => carry.lengthened.push(row(def.window - w)),
                    _ => {}
                },
            }
        }
        for (i, from) in carried(new.seqs.len(), &remap.seqs).into_iter().enumerate() {
            if from.is_none() {
                let slot = Slot::Seq(i as u32);
                let full = format_duration(new.seqs[i].within);
                let name = text.seqs.get(i).cloned().unwrap_or_else(|| format!("sequence {i}"));
                carry.restarted.push(Restarted { slot: name, read_by: readers.of(slot), full_after: full });
            }
        }
        for (i, from) in carried(new.distinct.len(), &remap.distinct).into_iter().enumerate() {
            if from.is_none() {
                let slot = Slot::Distinct(i as u32);
                fresh.push(slot);
                let full = format_duration(new.distinct[i].window);
                let name = text.distinct.get(i).cloned().unwrap_or_else(|| format!("distinct count {i}"));
                carry.restarted.push(Restarted { slot: name, read_by: readers.of(slot), full_after: full });
            }
        }
        carry.warnings = readers.empty_holds(new, &fresh);
        carry
    }

    /// The report as an API answers it: each list, and `lines` as [`Carry::lines`] says them.
    pub fn report(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["lines"] = serde_json::json!(self.lines());
        v
    }

    /// The report written to the log (standard error), a line each as `tidings: WHEN: ...`:
    /// `reload` after a hot reload, `restored` after a restore under other rules.
    pub fn log(&self, when: &str) {
        for l in self.lines() {
            eprintln!("tidings: {when}: {l}");
        }
    }

    /// The report in lines for a console or a log (nothing when nothing is dropped).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let list = |out: &mut Vec<String>, what: &str, xs: &[String]| {
            if !xs.is_empty() {
                out.push(format!("{what}: {}", xs.join(", ")));
            }
        };
        list(&mut out, "carried over under a new name", &self.renamed);
        list(&mut out, "journey steps gone (instances waiting there end)", &self.ended_steps);
        list(&mut out, "rules gone with their pending timers", &self.dropped_timers);
        list(&mut out, "values pending timers did not keep (read as null until they fire)", &self.unkept);
        list(&mut out, "derived attributes dropped", &self.dropped_derived);
        list(&mut out, "derived attributes new (no value until computed)", &self.new_derived);
        out.extend(self.redefined_derived.iter().map(|d| format!("derived attribute redefined: {d}")));
        let rows = |out: &mut Vec<String>, what: &str, xs: &[Restarted], after: &str| {
            for r in xs {
                let by =
                    if r.read_by.is_empty() { String::new() } else { format!(" (read by {})", r.read_by.join(", ")) };
                out.push(format!("{what}: {}{by}; {after} {}", r.slot, r.full_after));
            }
        };
        rows(&mut out, "starts empty", &self.restarted, "full again after");
        rows(&mut out, "kept shorter than read", &self.lengthened, "full again after");
        out.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        out
    }
}

/// The derives of `new` whose definition differs from the one of the same name and type in
/// `old`, each with how long values computed under the old definition are read: a snapshot's
/// until its period ends, a daily one's until its time, an event one's until each subscriber's
/// next event of its kinds.
fn redefined(old: &RuleSet, new: &RuleSet) -> Vec<String> {
    let mut out = Vec::new();
    for d in &new.derives {
        let named = |o: &&super::derive::DeriveDef| o.name == d.name || d.was.iter().any(|f| f.name == o.name);
        let Some(was) = old.derives.iter().filter(|o| o.ty == d.ty).find(named) else { continue };
        if was.definition == d.definition && was.consulted == d.consulted {
            continue;
        }
        // Its own words the same: say which macro or list changed under it.
        let mut through: Vec<&str> = Vec::new();
        if was.definition == d.definition {
            for c in d.consulted.iter().chain(&*was.consulted) {
                let changed = !(was.consulted.contains(c) && d.consulted.contains(c));
                let what = c.split_once(':').map_or(c.as_str(), |(what, _)| what);
                if changed && !through.contains(&what) {
                    through.push(what);
                }
            }
        }
        let until = match (d.snapshot, d.schedule) {
            (Some(p), _) => {
                let p = match p {
                    super::derive::Period::Day => "day",
                    super::derive::Period::Week => "week",
                    super::derive::Period::Month => "month",
                };
                format!("the values of this {p}, computed under the old definition, hold until the {p} ends")
            }
            (None, Some(m)) => format!("the old definition's values are read until {:02}:{:02}", m / 60, m % 60),
            (None, None) => {
                let kinds: Vec<&str> = d.on.iter().map(|k| k.as_str()).collect();
                format!("each subscriber's old value is read until their next {} event", kinds.join(" or "))
            }
        };
        let through = match through.is_empty() {
            true => String::new(),
            false => format!(" (through {} it reads)", through.join(", ")),
        };
        out.push(format!("{} ({}:{}){through}: {until}", d.name, d.file, d.line));
    }
    out
}

/// The rules kept over the reload whose new timer reads `armed.` paths the old one did not keep:
/// `rule: armed.PATH, ...`.
fn unkept(old: &RuleSet, new: &RuleSet, remap: &[Option<u32>]) -> Vec<String> {
    let mut out = Vec::new();
    for (r, to) in old.rules.iter().zip(remap) {
        let (Some(was), Some(to)) = (&r.timer, to) else { continue };
        let Some(now) = new.rules.get(*to as usize) else { continue };
        let Some(t) = &now.timer else { continue };
        let missing: Vec<String> = t
            .armed
            .iter()
            .filter(|(p, _)| !was.armed.iter().any(|(q, _)| q == p))
            .map(|(p, _)| format!("armed.{p}"))
            .collect();
        if !missing.is_empty() {
            out.push(format!("{}: {}", now.name, missing.join(", ")));
        }
    }
    out
}

/// A derived attribute's name from its place in a rule shape (`name: type`).
fn name_of(shape: &str) -> &str {
    shape.split_once(": ").map_or(shape, |(name, _)| name)
}

/// Who reads each slot of a rule set: its rules, journeys and derived attributes, each with
/// the conditions whose `and` terms an empty window may decide.
struct Readers<'a> {
    /// Each reader's name (`rule NAME (file:line)`), the slots it reads, and its conditions.
    items: Vec<(String, Vec<Slot>, Vec<&'a Ir>)>,
}

impl<'a> Readers<'a> {
    fn in_set(set: &'a RuleSet) -> Readers<'a> {
        let mut items = Vec::new();
        let steps = |r: u32| set.steps.iter().find(|s| s.rule == Some(r));
        for (i, r) in set.rules.iter().enumerate() {
            let name = match steps(i as u32) {
                Some(s) => format!("journey {} step {}", set.journeys[s.journey as usize].name, s.name),
                None => format!("rule {} ({}:{})", r.name, r.file, r.line),
            };
            let mut conds = vec![r.condition.ir()];
            if let Some(t) = &r.timer {
                conds.extend(t.recheck.iter().chain(&t.cancel_if).map(|c| c.ir()));
            }
            items.push((name, conds));
        }
        for (ji, j) in set.journeys.iter().enumerate() {
            let mut conds = vec![j.start.ir()];
            let steps = set.steps.iter().filter(|s| s.journey as usize == ji);
            for t in steps.flat_map(|s| &s.next) {
                if let super::journey::When::Event { cond: Some(c), .. } = &t.when {
                    conds.push(c.ir());
                }
            }
            items.push((format!("journey {} ({}:{})", j.name, j.file, j.line), conds));
        }
        for d in &set.derives {
            let mut conds: Vec<&Ir> = d.for_whom.iter().map(|c| c.ir()).collect();
            match &d.value {
                super::derive::Computed::Expr(c) => conds.push(c.ir()),
                super::derive::Computed::Cases(cases) => {
                    for (when, c) in cases {
                        conds.extend(when.iter().map(|w| w.ir()));
                        conds.push(c.ir());
                    }
                }
            }
            items.push((format!("derived.{} ({}:{})", d.name, d.file, d.line), conds));
        }
        let items = items
            .into_iter()
            .map(|(name, conds)| {
                let mut slots = Vec::new();
                for c in &conds {
                    slots_read(c, &mut slots);
                }
                (name, slots, conds)
            })
            .collect();
        Readers { items }
    }

    /// Who reads `slot`.
    fn of(&self, slot: Slot) -> Vec<String> {
        self.items.iter().filter(|(_, slots, _)| slots.contains(&slot)).map(|(name, _, _)| name.clone()).collect()
    }

    /// The conditions whose `and` terms on the `fresh` slots an empty slot makes hold, every
    /// one of them (a term an empty slot makes false guards the rest), in words. A term may be
    /// an `or` (it holds when one of its branches does) or a `not`.
    fn empty_holds(&self, set: &RuleSet, fresh: &[Slot]) -> Vec<String> {
        let mut out = Vec::new();
        for (name, _, conds) in &self.items {
            for &c in conds {
                let terms = match c {
                    Ir::And(xs) => xs.iter().collect(),
                    x => vec![x],
                };
                let mut tests = Vec::new();
                let mut guarded = false;
                for t in terms {
                    match on_empty(t, fresh) {
                        Empty::Holds(ts) => tests.extend(ts),
                        Empty::Fails => guarded = true,
                        Empty::Depends => {}
                    }
                }
                if tests.is_empty() || guarded {
                    continue;
                }
                let said: Vec<String> = tests.iter().map(|t| t.text(set)).collect();
                let window =
                    tests.iter().map(|t| t.window.unwrap_or_else(|| window_of(set, t.slot))).max().unwrap_or(0);
                out.push(format!(
                    "{name}: {} holds for every subscriber while the window is empty (it fills over {})",
                    said.join(" and "),
                    format_duration(window)
                ));
            }
        }
        out
    }
}

/// What a condition is for everyone while the `fresh` slots are empty.
enum Empty {
    /// True, by these tests on fresh slots.
    Holds(Vec<Test>),
    /// False.
    Fails,
    /// It depends on more than the fresh slots.
    Depends,
}

fn on_empty(ir: &Ir, fresh: &[Slot]) -> Empty {
    match ir {
        Ir::Not(x) => match on_empty(x, fresh) {
            Empty::Holds(_) => Empty::Fails,
            // A negated test holds by the same test (written the other way round).
            Empty::Fails => match against_constant(x).filter(|t| fresh.contains(&t.slot)) {
                Some(t) => Empty::Holds(vec![Test { op: t.op.negated(), ..t }]),
                None => Empty::Depends,
            },
            Empty::Depends => Empty::Depends,
        },
        Ir::Or(bs) => {
            let mut all_fail = true;
            for b in bs.iter() {
                match on_empty(b, fresh) {
                    Empty::Holds(ts) => return Empty::Holds(ts),
                    Empty::Fails => {}
                    Empty::Depends => all_fail = false,
                }
            }
            if all_fail { Empty::Fails } else { Empty::Depends }
        }
        Ir::And(ts) => {
            let mut held = Vec::new();
            let mut all_hold = true;
            for t in ts.iter() {
                match on_empty(t, fresh) {
                    Empty::Holds(x) => held.extend(x),
                    Empty::Fails => return Empty::Fails,
                    Empty::Depends => all_hold = false,
                }
            }
            if all_hold && !held.is_empty() { Empty::Holds(held) } else { Empty::Depends }
        }
        x => match against_constant(x).filter(|t| fresh.contains(&t.slot)) {
            Some(t) if holds(t.op, 0, t.n) => Empty::Holds(vec![t]),
            Some(_) => Empty::Fails,
            None => Empty::Depends,
        },
    }
}

/// The slots `ir` reads, added to `out` once each.
fn slots_read(ir: &Ir, out: &mut Vec<Slot>) {
    let slot = match ir {
        Ir::Agg { slot, .. } | Ir::AggMonth { slot, .. } => Some(Slot::Agg(*slot)),
        Ir::Distinct { slot, .. } => Some(Slot::Distinct(*slot)),
        Ir::Seq(slot) => Some(Slot::Seq(*slot)),
        _ => None,
    };
    if let Some(s) = slot.filter(|s| !out.contains(s)) {
        out.push(s);
    }
    for p in ir.parts() {
        slots_read(p, out);
    }
}

/// A comparison of a window or distinct count read with a constant, the read on the left.
struct Test {
    slot: Slot,
    /// The window read (`None`: a calendar month's, or the slot's own).
    window: Option<i64>,
    op: CmpOp,
    n: i64,
}

impl Test {
    /// In words: `count(topup, 30d) == 0`.
    fn text(&self, set: &RuleSet) -> String {
        let what = match self.slot {
            Slot::Agg(i) => set.slot_text.agg_read(i as usize, &set.aggs, self.window),
            Slot::Distinct(i) => set.slot_text.distinct.get(i as usize).cloned().unwrap_or_default(),
            Slot::Seq(i) => set.slot_text.seqs.get(i as usize).cloned().unwrap_or_default(),
        };
        let op = match self.op {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        };
        format!("`{what} {op} {}`", self.n)
    }
}

fn against_constant(ir: &Ir) -> Option<Test> {
    let Ir::Cmp(op, a, b) = ir else { return None };
    let read = |x: &Ir| match x {
        Ir::Agg { slot, window, .. } => Some((Slot::Agg(*slot), Some(*window))),
        Ir::AggMonth { slot, .. } => Some((Slot::Agg(*slot), None)),
        Ir::Distinct { slot, window } => Some((Slot::Distinct(*slot), Some(*window))),
        _ => None,
    };
    let ((slot, window), op, n) = match (a.as_ref(), b.as_ref()) {
        (x, Ir::Int(n)) => (read(x)?, *op, *n),
        (Ir::Int(n), x) => (read(x)?, op.flipped(), *n),
        _ => return None,
    };
    Some(Test { slot, window, op, n })
}

fn holds(op: CmpOp, v: i64, n: i64) -> bool {
    match op {
        CmpOp::Eq => v == n,
        CmpOp::Ne => v != n,
        CmpOp::Lt => v < n,
        CmpOp::Le => v <= n,
        CmpOp::Gt => v > n,
        CmpOp::Ge => v >= n,
    }
}

fn window_of(set: &RuleSet, slot: Slot) -> i64 {
    match slot {
        Slot::Agg(i) => set.aggs.get(i as usize).map_or(0, |d| d.window),
        Slot::Distinct(i) => set.distinct.get(i as usize).map_or(0, |d| d.window),
        Slot::Seq(i) => set.seqs.get(i as usize).map_or(0, |d| d.within),
    }
}

#[cfg(test)]
mod tests {
    use super::Carry;
    use crate::rules::{LoadOptions, RuleSet, compile};

    fn set(text: &str) -> RuleSet {
        let loaded = compile(vec![("p.yaml".into(), text.into())], None, &LoadOptions::default());
        assert_eq!(loaded.errors(), 0, "{:?}", loaded.diagnostics);
        loaded.rules.expect("a rule set")
    }

    const SILENT: &str = r#"
- rule: silent_data
  on: [usage]
  condition: count(usage where service == data, 30d) == 0 and count(usage where service == data, 60d) >= 3
  action: { channel: sms, template: "流量" }
"#;

    const JOURNEY: &str = r#"
- journey: keep
  start:
    on: [crm]
    condition: event.event == disconnect_requested
  expire_after: 7d
  steps:
    - step: call
      action: { channel: call, script: "挽留", queue: retention }
      next:
        - {outcome: answered, goto: end}
        - {after: 2h, goto: offer}
    - step: offer
      action: { channel: sms, template: "保号优惠" }
      next:
        - {goto: end}
"#;

    const TIMER: &str = r#"
- rule: no_topup_after_low
  on: [usage]
  condition: state.balance < 5 CNY
  timer: { after: 3d, cancel_on: [topup] }
  action: { channel: sms, template: "充值" }
"#;

    #[test]
    fn a_window_read_further_back_than_the_old_pack_kept_fills_over_the_difference() {
        let old = set(&SILENT.replace("60d", "40d"));
        let c = Carry::between(&old, &set(SILENT));
        assert!(c.restarted.is_empty(), "{:?}", c.restarted);
        assert_eq!(c.lengthened.len(), 1, "{c:?}");
        assert_eq!(c.lengthened[0].slot, "count(usage where service == data, 60d)");
        assert_eq!(c.lengthened[0].full_after, "20d");
        assert_eq!(
            c.lines(),
            [
                "kept shorter than read: count(usage where service == data, 60d) (read by rule silent_data (p.yaml:2)); full again after 20d"
            ]
        );
    }

    #[test]
    fn a_derive_whose_definition_changed_says_how_long_the_old_values_are_read() {
        let tier = |cut: &str| {
            format!(
                "- derive: tier\n  desc: {cut}\n  schedule: \"00:10\"\n  type: tier\n  snapshot: month\n  value:\n    - when: subscriber.arpu_fen >= {cut} CNY\n      then: high\n    - then: valuable\n- derive: talks\n  on: [usage, ivr]\n  value: count(usage, {cut}d) > 3\n"
            )
        };
        let old = set(&tier("50"));
        // Spaced otherwise and described in other words, the same: nothing to say.
        let relaid = tier("50").replace(">= 50 CNY", " >=   50  CNY").replace("desc: 50", "desc: other words");
        assert!(Carry::between(&old, &set(&relaid)).is_empty());
        let c = Carry::between(&old, &set(&tier("60")));
        assert_eq!(
            c.redefined_derived,
            [
                "tier (p.yaml:1): the values of this month, computed under the old definition, hold until the month ends",
                "talks (p.yaml:10): each subscriber's old value is read until their next usage or ivr event",
            ]
        );
        assert!(c.lines()[0].starts_with("derived attribute redefined: tier (p.yaml:1): "), "{:?}", c.lines());
    }

    #[test]
    fn a_derive_whose_macro_or_list_changed_is_redefined_and_says_through_which() {
        let pack = |cut: &str, brands: &str| {
            format!(
                "- macro: big_spender\n  condition: subscriber.arpu_fen >= {cut} CNY\n- list: premium\n  items: [{brands}]\n- derive: vip\n  on: [usage]\n  value: big_spender and subscriber.brand in premium\n"
            )
        };
        let old = set(&pack("50", "gotone"));
        assert!(Carry::between(&old, &set(&pack("50", "gotone"))).is_empty());
        let c = Carry::between(&old, &set(&pack("80", "gotone")));
        assert_eq!(
            c.redefined_derived,
            [
                "vip (p.yaml:5) (through macro big_spender it reads): each subscriber's old value is read until their next usage event"
            ]
        );
        let c = Carry::between(&old, &set(&pack("50", "gotone, mzone")));
        assert!(c.redefined_derived[0].starts_with("vip (p.yaml:5) (through list premium it reads): "), "{c:?}");
    }

    #[test]
    fn a_checkpoints_shape_says_what_it_can_of_what_other_rules_drop() {
        let old = set(&[SILENT, JOURNEY, TIMER].concat());
        let lapsed = "- rule: lapsed\n  on: [usage]\n  condition: count(topup, 30d) == 0\n  action: { channel: sms, template: \"充值\" }\n";
        let new = set(&[SILENT, lapsed].concat());
        let c = Carry::from_shape(&old.shape(), &new);
        // Every gone rule: the shape does not say which had timers (the journey's steps' rules too).
        assert!(c.dropped_timers.contains(&"no_topup_after_low".to_string()), "{c:?}");
        assert_eq!(c.ended_steps, ["keep.call", "keep.offer"]);
        assert_eq!(c.restarted.len(), 1);
        assert_eq!(c.warnings.len(), 1, "{c:?}");
        // With the rules themselves, only the rule that had a timer.
        assert_eq!(Carry::between(&old, &new).dropped_timers, ["no_topup_after_low"]);
        assert!(Carry::from_shape(&new.shape(), &new).is_empty());
    }

    #[test]
    fn the_same_pack_carries_everything_over() {
        let pack = [SILENT, JOURNEY, TIMER].concat();
        let c = Carry::between(&set(&pack), &set(&pack));
        assert!(c.is_empty(), "{c:?}");
        assert!(c.lines().is_empty());
    }

    #[test]
    fn a_new_absence_test_on_a_window_that_starts_empty_is_warned_about_a_guarded_one_is_not() {
        let old = set(TIMER);
        let lapsed = r#"
- rule: lapsed_topup
  on: [usage]
  condition: count(topup where amount_fen >= 10 CNY, 30d) == 0 and state.balance < 5 CNY
  action: { channel: sms, template: "充值有礼" }
"#;
        let new = set(&[TIMER, SILENT, lapsed].concat());
        let c = Carry::between(&old, &new);
        let slots: Vec<&str> = c.restarted.iter().map(|r| r.slot.as_str()).collect();
        assert_eq!(slots, ["count(usage where service == data, 60d)", "count(topup where amount_fen >= 10 CNY, 30d)"]);
        assert_eq!(c.restarted[0].full_after, "60d");
        assert_eq!(c.restarted[0].read_by, ["rule silent_data (p.yaml:8)"]);
        // The silent rule also needs 3 events in the same window: an empty one cannot fire it.
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        let w = &c.warnings[0];
        assert!(w.starts_with("rule lapsed_topup (p.yaml:"), "{w}");
        assert!(w.contains("`count(topup where amount_fen >= 10 CNY, 30d) == 0` holds for every subscriber"), "{w}");
        assert!(w.ends_with("(it fills over 30d)"), "{w}");
        assert!(c.lines().iter().any(|l| l.starts_with("warning: rule lapsed_topup")), "{:?}", c.lines());
    }

    #[test]
    fn an_absence_test_inside_an_or_or_a_not_is_warned_about_too_a_failing_branch_is_not() {
        let rule = |name: &str, cond: &str| {
            format!(
                "- rule: {name}\n  on: [usage]\n  condition: {cond}\n  action: {{ channel: sms, template: \"充值有礼\" }}\n"
            )
        };
        let pack = [
            rule("either", "state.balance < 5 CNY and (count(topup, 30d) == 0 or subscriber.arpu_fen > 100 CNY)"),
            rule("negated", "not count(topup, 30d) > 0"),
            rule("both_ways", "(count(topup, 30d) >= 2 or count(topup, 30d) > 5) and state.balance < 5 CNY"),
            rule("guarded", "count(topup, 30d) == 0 and not (count(topup, 30d) == 0)"),
        ]
        .concat();
        let c = Carry::between(&set(TIMER), &set(&[TIMER, pack.as_str()].concat()));
        let warned: Vec<&str> = c.warnings.iter().filter_map(|w| w.split(' ').nth(1)).collect();
        assert_eq!(warned, ["either", "negated"], "{:?}", c.warnings);
        assert!(c.warnings[0].contains("`count(topup, 30d) == 0` holds"), "{:?}", c.warnings);
        assert!(c.warnings[1].contains("`count(topup, 30d) <= 0` holds"), "{:?}", c.warnings);
    }

    #[test]
    fn a_step_gone_ends_instances_a_rule_gone_drops_timers_and_a_longer_window_fills() {
        let derive = "- derive: spend\n  on: [usage]\n  value: sum(usage.charge_fen, 30d)\n";
        let old = set(&[derive, SILENT, JOURNEY, TIMER].concat());
        // The offer step is gone, the timer rule too, the derive renamed.
        let journey = JOURNEY.replace("goto: offer", "goto: end");
        let journey = &journey[..journey.find("    - step: offer").expect("the offer step")];
        let renamed = derive.replace("spend", "spent");
        let c = Carry::between(&old, &set(&[renamed.as_str(), SILENT, journey].concat()));
        assert_eq!(c.ended_steps, ["keep.offer"]);
        assert_eq!(c.dropped_timers, ["no_topup_after_low"]);
        assert_eq!(
            (c.dropped_derived.as_slice(), c.new_derived.as_slice()),
            (&["spend".to_string()][..], &["spent".to_string()][..])
        );
        // The data window carries over as it was.
        assert!(c.restarted.is_empty() && c.lengthened.is_empty(), "{c:?}");
        assert!(c.warnings.is_empty());
        // Renamed with `was:`, the derive keeps its values.
        let kept = derive.replace("spend", "spent").replace("  on: [usage]", "  was: spend\n  on: [usage]");
        let c = Carry::between(&old, &set(&[kept.as_str(), SILENT, JOURNEY, TIMER].concat()));
        assert_eq!(c.renamed, ["derived spend → spent"], "{c:?}");
        assert!(c.dropped_derived.is_empty() && c.new_derived.is_empty() && c.redefined_derived.is_empty(), "{c:?}");
        // Both names in the old pack: each keeps its own values, the former one is dropped
        // (two old values never land on one attribute).
        let both = set(&[derive, renamed.as_str(), SILENT].concat());
        let c = Carry::between(&both, &set(&[kept.as_str(), SILENT].concat()));
        assert!(c.renamed.is_empty(), "{c:?}");
        assert_eq!(c.dropped_derived, ["spend"], "{c:?}");
        // A derive whose type changed starts afresh under its name.
        let retyped = derive.replace("sum(usage.charge_fen, 30d)", "count(usage, 30d)");
        let c = Carry::between(&old, &set(&[retyped.as_str(), SILENT].concat()));
        assert_eq!(c.dropped_derived, ["spend (its type changed: values start afresh)"]);
        assert!(c.new_derived.is_empty());
        assert_eq!(c.restarted[0].read_by, ["derived.spend (p.yaml:1)"]);
    }
}
