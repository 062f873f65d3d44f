//! The shard's index of its subscribers' journey instances: when each is next due (the order
//! the shard moves them in), and how many wait at each step — what operations staff watch on
//! `/metrics` as `tidings_journey_instances{journey,step,shard}` ("how many of those who asked
//! to leave are still waiting for the call's result").
//!
//! Both change together: every move the rules hand back ([`JourneyMove`]) goes through
//! [`JourneyIndex::apply`], an instance restored or carried over a reload through
//! [`JourneyIndex::add`].

use super::stats::ShardStats;
use crate::rules::RuleSet;
use crate::rules::journey::JourneyMove;
use crate::time::Millis;
use std::collections::BTreeSet;

/// Journey index entry: (due, msisdn, journey), one per instance.
pub(super) type JourneyKey = (Millis, u64, u16);

#[derive(Default)]
pub(super) struct JourneyIndex {
    /// When each instance is next due.
    due: BTreeSet<JourneyKey>,
    /// Instances at each step (an index into the rule set's steps).
    at_step: Vec<u64>,
    /// Nothing changed since the counts were last exported (false at first: every step is
    /// exported once, zeros included).
    quiet: bool,
    /// The labels exported, (journey, step) by step, the version of the rules they are of,
    /// and the count each step's gauge was last given.
    labels: Vec<(String, String)>,
    labels_of: String,
    sent: Vec<Option<u64>>,
}

impl JourneyIndex {
    /// Instances in the index.
    pub(super) fn len(&self) -> usize {
        self.due.len()
    }

    /// The instance due first.
    pub(super) fn first(&self) -> Option<&JourneyKey> {
        self.due.first()
    }

    /// Takes the instance due first out of the due order; it stays counted at its step until a
    /// move says where it went, or [`JourneyIndex::requeue`] puts it back.
    pub(super) fn pop_first(&mut self) -> Option<JourneyKey> {
        self.due.pop_first()
    }

    /// Puts an instance taken out by [`JourneyIndex::pop_first`] back at a due time, at the same step.
    pub(super) fn requeue(&mut self, key: JourneyKey) {
        self.due.insert(key);
    }

    /// Forgets every instance (a reload indexes them again under the new rules).
    pub(super) fn clear(&mut self) {
        self.due.clear();
        self.at_step.iter_mut().for_each(|n| *n = 0);
        self.quiet = false;
    }

    /// An instance at `step` due at `key`'s time (restored, or carried over a reload).
    pub(super) fn add(&mut self, key: JourneyKey, step: u32) {
        self.due.insert(key);
        self.count(step, 1);
    }

    /// The moves of subscriber `raw`'s instances, as the rules handed them back.
    pub(super) fn apply(&mut self, raw: u64, moves: &[JourneyMove], stats: &mut ShardStats) {
        for m in moves {
            if let Some(old) = m.old_due {
                self.due.remove(&(old, raw, m.journey));
            }
            match m.new_due {
                Some(new) => {
                    self.due.insert((new, raw, m.journey));
                    stats.journey_steps += 1;
                }
                None => stats.journeys_ended += 1,
            }
            if m.from != m.to {
                if let Some(s) = m.from {
                    self.count(s, -1);
                }
                if let Some(s) = m.to {
                    self.count(s, 1);
                }
            }
        }
    }

    fn count(&mut self, step: u32, by: i64) {
        let i = step as usize;
        if self.at_step.len() <= i {
            self.at_step.resize(i + 1, 0);
        }
        self.at_step[i] = self.at_step[i].saturating_add_signed(by);
        self.quiet = false;
    }

    /// The labels of the steps last exported (journey, step) and the instances at each.
    pub(super) fn picture(&self) -> (&[(String, String)], &[u64]) {
        (&self.labels, &self.at_step)
    }

    /// The steps whose count changed since the last call, as (journey, step, count), with a
    /// zero for each step exported before that `rules` (after a reload) no longer has.
    pub(super) fn changed_counts(&mut self, rules: &RuleSet) -> Vec<(String, String, u64)> {
        if std::mem::replace(&mut self.quiet, true) {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.labels_of != *rules.version || self.labels.len() != rules.steps.len() {
            let labels: Vec<(String, String)> = rules
                .steps
                .iter()
                .map(|s| {
                    let journey = rules.journeys.get(s.journey as usize).map_or("", |j| &j.name);
                    (journey.to_string(), s.name.to_string())
                })
                .collect();
            for (j, s) in std::mem::take(&mut self.labels) {
                if !labels.contains(&(j.clone(), s.clone())) {
                    out.push((j, s, 0));
                }
            }
            self.sent = vec![None; labels.len()];
            self.labels = labels;
            self.labels_of = rules.version.to_string();
        }
        for (i, (j, s)) in self.labels.iter().enumerate() {
            let n = self.at_step.get(i).copied().unwrap_or(0);
            if self.sent[i] != Some(n) {
                self.sent[i] = Some(n);
                out.push((j.clone(), s.clone(), n));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::JourneyIndex;
    use crate::engine::shard::stats::ShardStats;
    use crate::rules::journey::JourneyMove;
    use crate::rules::{LoadOptions, RuleSet, compile};

    fn set(steps: &[&str]) -> RuleSet {
        // Each step goes on to the next after an hour; the last ends.
        let steps: String = steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let to = steps.get(i + 1).unwrap_or(&"end");
                format!("    - step: {s}\n      next:\n        - {{after: 1h, goto: {to}}}\n")
            })
            .collect();
        let text = format!(
            "- journey: keep\n  start:\n    on: [crm]\n    condition: event.event == disconnect_requested\n  expire_after: 7d\n  steps:\n{steps}"
        );
        let loaded = compile(vec![("p.yaml".into(), text)], None, &LoadOptions::default());
        assert_eq!(loaded.errors(), 0, "{:?}", loaded.diagnostics);
        loaded.rules.expect("a rule set")
    }

    fn mv(from: Option<u32>, to: Option<u32>) -> JourneyMove {
        let due = |s: Option<u32>| s.map(|s| 1000 + i64::from(s));
        JourneyMove { journey: 0, old_due: due(from), new_due: due(to), from, to, note: String::new() }
    }

    fn counts(ix: &mut JourneyIndex, rules: &RuleSet) -> Vec<(String, u64)> {
        let mut c: Vec<_> = ix.changed_counts(rules).into_iter().map(|(_, s, n)| (s, n)).collect();
        c.sort();
        c
    }

    #[test]
    fn counts_follow_starts_moves_and_ends_and_a_reload_zeroes_steps_it_took_away() {
        let rules = set(&["a", "b"]);
        let mut ix = JourneyIndex::default();
        let mut stats = ShardStats::default();
        ix.apply(1, &[mv(None, Some(0))], &mut stats);
        ix.apply(2, &[mv(None, Some(0))], &mut stats);
        ix.apply(2, &[mv(Some(0), Some(1))], &mut stats);
        assert_eq!(counts(&mut ix, &rules), vec![("a".into(), 1), ("b".into(), 1)]);
        assert!(ix.changed_counts(&rules).is_empty(), "nothing changed since");
        // An instance due that stays where it is (taken out of the due order and put back).
        let k = ix.pop_first().expect("one due");
        ix.requeue(k);
        assert!(ix.changed_counts(&rules).is_empty());
        ix.apply(1, &[mv(Some(0), None)], &mut stats);
        assert_eq!(counts(&mut ix, &rules), vec![("a".into(), 0)], "only the step that changed");
        assert_eq!((ix.len(), stats.journeys_ended), (1, 1));
        // A reload to rules without step b: its instance is dropped, its line goes to zero.
        let new = set(&["a", "c"]);
        ix.clear();
        assert_eq!(counts(&mut ix, &new), vec![("a".into(), 0), ("b".into(), 0), ("c".into(), 0)]);
        ix.add((5000, 3, 0), 1);
        assert_eq!(counts(&mut ix, &new), vec![("c".into(), 1)], "b is zeroed once");
    }
}
