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
//! replaced (reload, restore), entries move (an unknown subscriber forgotten) or a bucket falls
//! out of a column's reach ([`Column`]): the next pass builds it again. An entry added since it
//! was built has a bucket of a slot only if an event was counted into it since, which the index
//! saw. A filter only: each entry named is evaluated in full.

use crate::rules::RuleSet;
use crate::rules::expr::{Activity, ActivityAt};
use crate::state::table::SubTable;
use crate::time::Millis;

/// No bucket (in a [`Column`]).
const NONE: u16 = 0;

/// An activity term on an indexed slot at the pass's time, with the slot's column.
type Term<'a> = (ActivityAt, &'a Column);

/// The newest bucket of the indexed slots, per table entry (see the module).
#[derive(Default)]
pub(super) struct ActivityIndex {
    /// `None`: not built, or out of date.
    built: Option<Built>,
}

/// One indexed slot's newest bucket of each table entry, in two bytes: the bucket's distance
/// from a base bucket. A quarter of eight bytes an entry (10 M subscribers: 20 MB a slot, not
/// 80). Buckets reach `u16::MAX - 1` widths past the base, which the first bucket puts half that
/// far back (half-day buckets: 45 years either side of it); one out of reach makes the index be
/// built again around the buckets the states hold then.
#[derive(Default)]
struct Column {
    /// Bucket `base + n - 1` is stored as `n`; `None` until the first bucket sets it.
    base: Option<i64>,
    newest: Vec<u16>,
}

impl Column {
    /// Bucket `idx` as stored (`None`: out of reach). The first sets the base half the reach
    /// back, leaving room for late events' older buckets.
    fn code(&mut self, idx: i64) -> Option<u16> {
        let base = *self.base.get_or_insert(idx.saturating_sub(i64::from(u16::MAX / 2)));
        u16::try_from(idx.checked_sub(base)?.checked_add(1)?).ok().filter(|n| *n != NONE)
    }

    /// Entry `i`'s newest bucket (`None`: none).
    fn get(&self, i: usize) -> Option<i64> {
        let n = self.newest.get(i).copied().filter(|n| *n != NONE)?;
        Some(self.base? + i64::from(n) - 1)
    }

    /// Entry `i` has bucket `idx`: kept when newer than the one held. `false`: out of reach.
    fn set(&mut self, i: usize, idx: i64) -> bool {
        let Some(code) = self.code(idx) else { return false };
        if self.newest.len() <= i {
            self.newest.resize(i + 1, NONE);
        }
        self.newest[i] = self.newest[i].max(code);
        true
    }
}

struct Built {
    /// The slots indexed with their bucket widths, and each one's column.
    slots: Vec<(u32, i64)>,
    columns: Vec<Column>,
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
            if !b.columns[c].set(i as usize, ts.div_euclid(b.slots[c].1)) {
                self.built = None;
                return;
            }
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
                let col = |slot: u32| b.slots.iter().position(|(s, _)| *s == slot).map(|c| &b.columns[c]);
                terms.iter().filter_map(|a| Some((a.at(now), col(a.slot)?))).collect()
            })
            .collect();
        let holds = |(a, col): &Term, i: usize| a.may_hold(col.get(i));
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

    /// Builds the index from every state's windows. A column's base is put where a first event
    /// would put it, or at the oldest bucket when that is older; when a slot's newest buckets lie
    /// further apart than a column reaches (an entry last active decades before another), there
    /// is no index and passes visit everyone.
    fn build(&mut self, set: &RuleSet, subs: &SubTable) {
        let mut columns = Vec::new();
        for slot in set.activity_slots() {
            let newest: Vec<Option<i64>> = (0..subs.len() as u32).map(|i| subs.state(i).agg_newest(slot)).collect();
            let (lo, hi) = (newest.iter().flatten().min(), newest.iter().flatten().max());
            let base = lo.zip(hi).map(|(lo, hi)| (*lo).min(hi.saturating_sub(i64::from(u16::MAX / 2))));
            let mut col = Column { base, newest: Vec::with_capacity(newest.len()) };
            for (i, n) in newest.iter().enumerate() {
                if n.is_some_and(|idx| !col.set(i, idx)) {
                    self.built = None;
                    return;
                }
            }
            columns.push(col);
        }
        self.built = Some(Built::new(set, columns, subs));
    }
}

impl Built {
    /// The index of the rules' activity slots with the columns `columns` (none: no entry has a
    /// bucket yet).
    fn new(set: &RuleSet, mut columns: Vec<Column>, subs: &SubTable) -> Built {
        let slots: Vec<(u32, i64)> = set
            .activity_slots()
            .into_iter()
            .map(|slot| (slot, set.aggs.get(slot as usize).map_or(1, |d| d.bucket)))
            .collect();
        columns.resize_with(slots.len(), Column::default);
        Built { slots, columns, removals: subs.removals() }
    }
}

#[cfg(test)]
mod tests {
    use super::Column;

    #[test]
    fn a_column_keeps_each_entrys_newest_bucket_within_its_reach() {
        let mut c = Column::default();
        let first = 40_000;
        assert!(c.set(3, first));
        assert_eq!((c.get(0), c.get(3), c.get(9)), (None, Some(first), None));
        // A late event's older bucket does not replace the newest; a newer one does.
        assert!(c.set(3, first - 5) && c.get(3) == Some(first));
        assert!(c.set(3, first + 7) && c.get(3) == Some(first + 7));
        // Half the reach back from the first bucket and the rest of it forward.
        let back = i64::from(u16::MAX / 2);
        assert!(c.set(1, first - back) && c.get(1) == Some(first - back));
        assert!(!c.set(1, first - back - 1), "older than the base");
        let last = first - back + i64::from(u16::MAX) - 1;
        assert!(c.set(2, last) && c.get(2) == Some(last));
        assert!(!c.set(2, last + 1), "past the reach");
        // Buckets of any time: no overflow.
        assert!(!c.set(2, i64::MIN) && !c.set(2, i64::MAX));
        let mut far = Column::default();
        assert!(far.set(0, i64::MIN) && far.get(0) == Some(i64::MIN));
        assert!(!far.set(1, 0));
    }
}
