//! Who a daily pass of activity terms may concern (see [`Activity`]): for each window slot the
//! daily rules' terms read, every subscriber's newest bucket, by table entry. A pass whose
//! every rule has such a term ("no SMS in 30 days, 3 or more in 60") visits only the entries
//! for which one of its rules may hold, instead of everyone.
//!
//! Kept up to date as events are counted into windows (the newest bucket only moves then, to the
//! event's bucket when that is newer: a late event older than the window keeps nothing): an event
//! that makes a new bucket of an indexed slot marks its entry (a bit), and the next pass reads
//! the marked entries' newest buckets from their states before it filters, so the event path
//! writes no column of a million entries. Built by one look at every state the first time a pass
//! needs it, and forgotten when the rules or
//! the states are replaced (reload, restore) or entries move (an unknown subscriber forgotten):
//! the next pass builds it again. An entry added since it was built has a bucket of a slot only
//! if an event was counted into it since, which the index saw. A filter only: each entry named
//! is evaluated in full.

use crate::rules::RuleSet;
use crate::rules::expr::Activity;
use crate::state::table::SubTable;
use crate::time::Millis;

/// No bucket.
const NONE: i64 = i64::MIN;

/// How many marked entries ahead their states and lists are fetched.
const AHEAD: usize = 8;

/// An activity term with the index's column of its slot (`None`: not indexed, no filter).
type Term<'a> = (Activity, Option<&'a [i64]>);

/// The newest bucket of the indexed slots, per table entry (see the module).
#[derive(Default)]
pub(super) struct ActivityIndex {
    /// `None`: not built, or out of date.
    built: Option<Built>,
}

struct Built {
    /// The slots indexed, and each entry's newest bucket of each (its index; [`NONE`]: no
    /// bucket; past the end: none).
    slots: Vec<u32>,
    newest: Vec<Vec<i64>>,
    /// By table entry, a bit each: a new bucket of an indexed slot since the columns were read.
    marked: Vec<u64>,
    /// The table's removals when built: entries moved since if it changed.
    removals: u64,
}

impl ActivityIndex {
    /// Forgets the index (new rules, states restored): the next pass builds it again.
    pub(super) fn clear(&mut self) {
        self.built = None;
    }

    /// Entry `i` had an event at `ts` counted into windows, making new buckets in the slots
    /// `new_buckets` (a bucket that already was is no newer than the newest).
    #[inline]
    pub(super) fn counted(&mut self, i: u32, new_buckets: &[u32]) {
        let Some(b) = &mut self.built else { return };
        if new_buckets.iter().any(|slot| b.slots.contains(slot)) {
            let word = (i / 64) as usize;
            if b.marked.len() <= word {
                b.marked.resize(word + 1, 0);
            }
            b.marked[word] |= 1 << (i % 64);
        }
    }

    /// The table entries (in order) for which one of `rules` (each a list of activity terms, all
    /// of which must hold) may hold at `now`.
    pub(super) fn named(&mut self, rules: &[Vec<Activity>], now: Millis, set: &RuleSet, subs: &SubTable) -> Vec<u32> {
        if self.built.as_ref().is_none_or(|b| b.removals != subs.removals()) {
            self.build(set, subs);
        }
        let Some(b) = &mut self.built else { return (0..subs.len() as u32).collect() };
        b.read_marked(subs);
        let b = &*b;
        // Each term with the column it reads (a term on a slot not indexed cannot filter).
        let rules: Vec<Vec<Term>> = rules
            .iter()
            .map(|terms| {
                let col = |slot: u32| b.slots.iter().position(|s| *s == slot).map(|c| b.newest[c].as_slice());
                terms.iter().map(|a| (*a, col(a.slot))).collect()
            })
            .collect();
        let may_hold = |i: usize| {
            rules.iter().any(|terms| {
                terms.iter().all(|(a, col)| match col {
                    Some(col) => a.may_hold(col.get(i).copied().filter(|n| *n != NONE), now),
                    None => true,
                })
            })
        };
        (0..subs.len()).filter(|i| may_hold(*i)).map(|i| i as u32).collect()
    }

    /// Builds the index now if it is not (at the start of a run, while states are still few:
    /// built later it reads every state's windows once).
    pub(super) fn prepare(&mut self, set: &RuleSet, subs: &SubTable) {
        if self.built.is_none() && !set.activity_slots().is_empty() {
            self.build(set, subs);
        }
    }

    fn build(&mut self, set: &RuleSet, subs: &SubTable) {
        let slots = set.activity_slots();
        let newest = slots
            .iter()
            .map(|slot| (0..subs.len() as u32).map(|i| subs.state(i).agg_newest(*slot).unwrap_or(NONE)).collect())
            .collect();
        self.built = Some(Built { slots, newest, marked: Vec::new(), removals: subs.removals() });
    }
}

impl Built {
    /// Reads the newest buckets of the entries marked since the last read from their states.
    fn read_marked(&mut self, subs: &SubTable) {
        let mut marked = Vec::new();
        for (word, bits) in self.marked.iter_mut().enumerate() {
            let mut rest = std::mem::take(bits);
            while rest != 0 {
                let i = word * 64 + rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if i < subs.len() {
                    marked.push(i as u32);
                }
            }
        }
        // Spread over the table: each state and then its buckets are fetched ahead.
        for (k, &i) in marked.iter().enumerate() {
            if let Some(&ahead) = marked.get(k + 2 * AHEAD) {
                subs.prefetch_state_at(ahead);
            }
            if let Some(&ahead) = marked.get(k + AHEAD) {
                subs.prefetch_lists_at(ahead);
            }
            let st = subs.state(i);
            let i = i as usize;
            for (col, slot) in self.newest.iter_mut().zip(&self.slots) {
                if col.len() <= i {
                    col.resize(i + 1, NONE);
                }
                col[i] = st.agg_newest(*slot).unwrap_or(NONE);
            }
        }
    }
}
