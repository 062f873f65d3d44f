//! The shape of a rule set as state kept under it remembers it (a checkpoint's, or the running
//! set's at a hot reload), and how another set's parts are matched to it: rules, campaigns,
//! journey steps and derived attributes by name (or a former name), windows, sequences and
//! distinct counts by their compiled definition.

use crate::codec::{Dec, DecResult, Enc, Persist};

/// How a rule set's parts are matched to another's when state carries over (hot reload, or a
/// checkpoint taken under other rules): rules and campaigns by name, windows and sequences by
/// their compiled definition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleShape {
    pub rules: Vec<String>,
    pub campaigns: Vec<String>,
    pub aggs: Vec<String>,
    pub seqs: Vec<String>,
    /// Journey steps, `journey.step`.
    pub steps: Vec<String>,
    /// Derived attributes, `name: type`.
    pub derived: Vec<String>,
    /// Distinct counts, by their compiled definition.
    pub distinct: Vec<String>,
}

/// The former names (`was:`) the parts of a rule set also answer to when state carries over:
/// a part of an old shape named as one of them lands on the part that names it (its own name
/// first: a part still called so keeps its state). Rules and journey steps by their shape's
/// names (`journey.step`), derived attributes as `name: type`; each with the part's place.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Formerly {
    pub rules: Vec<(String, usize)>,
    pub steps: Vec<(String, usize)>,
    pub derived: Vec<(String, usize)>,
}

impl RuleShape {
    /// Where each part of this shape is in `new` (`None`: gone).
    pub fn remap_to(&self, new: &RuleShape) -> crate::state::Remap {
        self.remap_to_with(new, &Formerly::default())
    }

    /// [`RuleShape::remap_to`], `new`'s parts also answering to their former names.
    pub fn remap_to_with(&self, new: &RuleShape, formerly: &Formerly) -> crate::state::Remap {
        use std::collections::HashMap;
        fn at(v: &[String]) -> HashMap<&str, usize> {
            v.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect()
        }
        // A part answers to a former name only while the old shape has no part of its own name:
        // two old parts never land on one new one (the one of its own name keeps its state).
        fn with<'a>(new: &'a [String], former: &'a [(String, usize)], old: &[String]) -> HashMap<&'a str, usize> {
            let mut names = at(new);
            for (name, i) in former {
                if new.get(*i).is_some_and(|n| !old.contains(n)) {
                    names.entry(name.as_str()).or_insert(*i);
                }
            }
            names
        }
        let rules = with(&new.rules, &formerly.rules, &self.rules);
        let (campaigns, seqs) = (at(&new.campaigns), at(&new.seqs));
        // A window's buckets are the same whatever window reads them: matched without it, so
        // that a slot a longer window came to share (kept longer) keeps its counts; two old
        // slots never land on one new one.
        // A slot that kept only its newest buckets carries over to one that needs no more
        // events than it kept (`cap`); one that kept the whole window, to any.
        let aggs: HashMap<String, (usize, i64)> = new
            .aggs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (def, cap) = agg_cap(s);
                (agg_buckets(def), (i, cap))
            })
            .collect();
        let mut taken = std::collections::HashSet::new();
        let steps = with(&new.steps, &formerly.steps, &self.steps);
        let derived = with(&new.derived, &formerly.derived, &self.derived);
        let distinct = at(&new.distinct);
        crate::state::Remap {
            rules: self.rules.iter().map(|r| rules.get(r.as_str()).map(|i| *i as u32)).collect(),
            campaigns: self.campaigns.iter().map(|c| campaigns.get(c.as_str()).map(|i| *i as u16)).collect(),
            aggs: self
                .aggs
                .iter()
                .map(|a| {
                    let (def, kept) = agg_cap(a);
                    aggs.get(&agg_buckets(def))
                        .filter(|(_, cap)| kept == 0 || (*cap > 0 && *cap <= kept))
                        .filter(|(i, _)| taken.insert(*i))
                        .map(|(i, _)| *i as u32)
                })
                .collect(),
            seqs: self.seqs.iter().map(|s| seqs.get(s.as_str()).map(|i| *i as u32)).collect(),
            steps: self.steps.iter().map(|s| steps.get(s.as_str()).map(|i| *i as u32)).collect(),
            derived: self.derived.iter().map(|s| derived.get(s.as_str()).map(|i| *i as u16)).collect(),
            distinct: self.distinct.iter().map(|s| distinct.get(s.as_str()).map(|i| *i as u32)).collect(),
        }
    }
}

/// What follows a window slot's definition in a [`RuleShape`] when it keeps only the newest
/// buckets holding that many events.
pub const CAPPED: &str = " keeping the newest ";

/// A window slot's definition in a [`RuleShape`] and the events its kept buckets hold (0: the
/// whole window).
fn agg_cap(def: &str) -> (&str, i64) {
    match def.rsplit_once(CAPPED) {
        // Unreadable: kept as if it carried over nowhere.
        Some((def, cap)) => (def, cap.parse().unwrap_or(-1)),
        None => (def, 0),
    }
}

/// A window slot's definition without the window it is kept for (`window: N, ` of its
/// description): what its buckets are.
fn agg_buckets(def: &str) -> String {
    let Some(at) = def.rfind("window: ") else { return def.to_string() };
    let rest = &def[at + "window: ".len()..];
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    format!("{}{}", &def[..at], rest[digits..].trim_start_matches(", "))
}

impl Persist for RuleShape {
    fn encode(&self, e: &mut Enc) {
        e.strs(&self.rules);
        e.strs(&self.campaigns);
        e.strs(&self.aggs);
        e.strs(&self.seqs);
        e.strs(&self.steps);
        e.strs(&self.derived);
        e.strs(&self.distinct);
    }

    fn decode(d: &mut Dec) -> DecResult<RuleShape> {
        let (rules, campaigns, aggs, seqs) = (d.strs()?, d.strs()?, d.strs()?, d.strs()?);
        let (steps, derived) = if d.at_least(4) { (d.strs()?, d.strs()?) } else { Default::default() };
        let distinct = if d.at_least(5) { d.strs()? } else { Vec::new() };
        Ok(RuleShape { rules, campaigns, aggs, seqs, steps, derived, distinct })
    }
}

/// What carrying state over with a [`crate::state::Remap`] leaves behind, by the old rule set's places:
/// pending timers of rules that are gone, journey instances at steps that are gone.
#[derive(Debug, Default)]
pub struct Dropped {
    pub timers: std::collections::BTreeMap<u32, u64>,
    pub steps: std::collections::BTreeMap<u32, u64>,
}

impl crate::state::Remap {
    /// Counts into `into` what [`crate::state::SubState::remap`] with this drops of `st`.
    pub fn count_dropped(&self, st: &crate::state::SubState, into: &mut Dropped) {
        for t in st.timers() {
            if self.rules.get(t.rule as usize).copied().flatten().is_none() {
                *into.timers.entry(t.rule).or_default() += 1;
            }
        }
        for j in st.journeys() {
            if self.steps.get(j.step as usize).copied().flatten().is_none() {
                *into.steps.entry(j.step).or_default() += 1;
            }
        }
    }
}
