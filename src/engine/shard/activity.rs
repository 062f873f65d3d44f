//! Who a daily pass of activity terms may concern (see [`Activity`]): for each window slot the
//! daily rules' terms read, every subscriber's newest bucket, by table entry. A pass whose
//! every rule has such a term ("no SMS in 30 days, 3 or more in 60") visits only the entries
//! for which one of its rules may hold, instead of everyone.
//!
//! Kept up to date as events are counted into windows: the newest bucket only moves then, to the
//! event's bucket when that is newer (a late event older than the window keeps nothing, and
//! buckets leave a window only from its old end), so an event that makes a new bucket of an
//! indexed slot writes the later of the two into its entry's place in the column (a store the
//! event path does not wait for; reading the states back at the pass waited for each). Built
//! when the run starts (from nothing when no state has changed yet) or by one look at every
//! state the first time a pass needs it, and forgotten when the rules or the states are
//! replaced (reload, restore) or entries move (an unknown subscriber forgotten): the next pass
//! builds it again. An entry added since it was built has a bucket of a slot only if an event
//! was counted into it since, which the index saw. A filter only: each entry named is
//! evaluated in full.

use crate::rules::RuleSet;
use crate::rules::expr::{Activity, ActivityAt};
use crate::state::table::SubTable;
use crate::time::Millis;

/// No bucket.
const NONE: i64 = i64::MIN;

/// An activity term on an indexed slot at the pass's time, with the slot's column.
type Term<'a> = (ActivityAt, &'a [i64]);

/// The newest bucket of the indexed slots, per table entry (see the module).
#[derive(Default)]
pub(super) struct ActivityIndex {
    /// `None`: not built, or out of date.
    built: Option<Built>,
}

struct Built {
    /// The slots indexed with their bucket widths, and each entry's newest bucket of each (its
    /// index; [`NONE`]: no bucket; past the end: none).
    slots: Vec<(u32, i64)>,
    newest: Vec<Vec<i64>>,
    /// The table's removals when built: entries moved since if it changed.
    removals: u64,
}

impl ActivityIndex {
    /// Forgets the index (new rules, states restored): the next pass builds it again.
    pub(super) fn clear(&mut self) {
        self.built = None;
    }

    /// Entry `i` had an event at `ts` counted into windows, making new buckets (the event's) in
    /// the slots `new_buckets` (a bucket that already was is no newer than the newest).
    #[inline]
    pub(super) fn counted(&mut self, i: u32, ts: Millis, new_buckets: &[u32]) {
        let Some(b) = &mut self.built else { return };
        for slot in new_buckets {
            let Some(c) = b.slots.iter().position(|(s, _)| s == slot) else { continue };
            let (col, i) = (&mut b.newest[c], i as usize);
            if col.len() <= i {
                col.resize(i + 1, NONE);
            }
            col[i] = col[i].max(ts.div_euclid(b.slots[c].1));
        }
    }

    /// The table entries (in order) for which one of `rules` (each a list of activity terms, all
    /// of which must hold) may hold at `now`.
    pub(super) fn named(&mut self, rules: &[Vec<Activity>], now: Millis, set: &RuleSet, subs: &SubTable) -> Vec<u32> {
        if self.built.as_ref().is_none_or(|b| b.removals != subs.removals()) {
            self.build(set, subs);
        }
        let Some(b) = &self.built else { return (0..subs.len() as u32).collect() };
        // Each term with the column it reads (a term on a slot not indexed cannot filter).
        let rules: Vec<Vec<Term>> = rules
            .iter()
            .map(|terms| {
                let col = |slot: u32| b.slots.iter().position(|(s, _)| *s == slot).map(|c| b.newest[c].as_slice());
                terms.iter().filter_map(|a| Some((a.at(now), col(a.slot)?))).collect()
            })
            .collect();
        let holds = |(a, col): &Term, i: usize| a.may_hold(col.get(i).copied().filter(|n| *n != NONE));
        (0..subs.len())
            .filter(|&i| rules.iter().any(|terms| terms.iter().all(|t| holds(t, i))))
            .map(|i| i as u32)
            .collect()
    }

    /// Builds the index now if it is not (at the start of a run: built later it reads every
    /// state's windows once). `pristine`: no state has changed since the table was loaded, so
    /// none has a bucket (nothing to read).
    pub(super) fn prepare(&mut self, set: &RuleSet, subs: &SubTable, pristine: bool) {
        if self.built.is_none() && !set.activity_slots().is_empty() {
            match pristine {
                true => self.built = Some(Built::new(set, Vec::new(), subs)),
                false => self.build(set, subs),
            }
        }
    }

    fn build(&mut self, set: &RuleSet, subs: &SubTable) {
        let newest = set
            .activity_slots()
            .iter()
            .map(|slot| (0..subs.len() as u32).map(|i| subs.state(i).agg_newest(*slot).unwrap_or(NONE)).collect())
            .collect();
        self.built = Some(Built::new(set, newest, subs));
    }
}

impl Built {
    /// The index of the rules' activity slots with the columns `newest` (none: no entry has a
    /// bucket yet).
    fn new(set: &RuleSet, mut newest: Vec<Vec<i64>>, subs: &SubTable) -> Built {
        let slots: Vec<(u32, i64)> = set
            .activity_slots()
            .into_iter()
            .map(|slot| (slot, set.aggs.get(slot as usize).map_or(1, |d| d.bucket)))
            .collect();
        newest.resize_with(slots.len(), Vec::new);
        Built { slots, newest, removals: subs.removals() }
    }
}
