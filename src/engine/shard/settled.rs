//! Daily derived attributes that stay put: a derive that reads only windowed sums and counts,
//! timeless fields of the record and constants (the churn score) has the value it had at its
//! last tick for a subscriber who had no event since and whose windows did not move (no bucket
//! left or entered one of them). A tick of such derives computes only for the others: those
//! touched since (an event, which may also change the record), those whose windows moved, and
//! those it never computed for.
//!
//! A derive computed `for:` some subscribers only (a condition on the record and derived
//! values) stays put the same way: whom it is for changes only with the record or a derived
//! value, and a change of a derived value touches the entry like a change of the record.
//!
//! Kept per tick (its derives): each entry's time its values stay put until, and a bit per
//! entry for "touched since the tick": an event counted into a window the derives read, or a
//! change of the record or of a derived value (an event of another kind changes neither).
//! Forgotten when the rules or the states are replaced (reload, restore) or entries move (an
//! unknown subscriber forgotten): the next tick computes for everyone. A filter only: each
//! entry computed is computed in full.

use crate::state::table::SubTable;
use crate::time::Millis;

/// Compute at the next tick.
const COMPUTE: Millis = Millis::MIN;

#[derive(Default)]
pub(super) struct SettledDerives {
    walks: Vec<Settled>,
}

/// One tick's derives and how long each entry's values of them stay put.
pub(super) struct Settled {
    derives: Vec<u16>,
    /// The window slots they read (sorted).
    reads: Vec<u32>,
    /// By table entry: the values computed at the last tick stay put before this time.
    until: Vec<Millis>,
    /// By table entry, a bit each: touched since the last tick.
    touched: Vec<u64>,
    /// The table's removals when the times were taken: entries moved since if it changed.
    removals: u64,
}

impl SettledDerives {
    /// Forgets every time (new rules, states restored): the next ticks compute for everyone.
    pub(super) fn clear(&mut self) {
        self.walks.clear();
    }

    /// Entry `i` had an event, counted into window slots `counted`, that changed its record
    /// (or a derived value) or not.
    #[inline]
    pub(super) fn touched(&mut self, i: u32, counted: impl Iterator<Item = u32> + Clone, record: bool) {
        let (word, bit) = ((i / 64) as usize, i % 64);
        for w in &mut self.walks {
            if !record && !counted.clone().any(|s| w.reads.binary_search(&s).is_ok()) {
                continue;
            }
            if w.touched.len() <= word {
                w.touched.resize(word + 1, 0);
            }
            w.touched[word] |= 1 << bit;
        }
    }

    /// Entry `i`'s derived values changed (in a tick): each walk computes its values again.
    #[inline]
    pub(super) fn derived_changed(&mut self, i: u32) {
        self.touched(i, std::iter::empty(), true);
    }

    /// The times of a tick of `derives` (each of which settles, reading window slots
    /// `reads`), begun if this is its first: its place, for [`SettledDerives::walked`].
    pub(super) fn walk(&mut self, derives: &[u16], reads: Vec<u32>, subs: &SubTable) -> usize {
        let k = match self.walks.iter().position(|w| w.derives == derives) {
            Some(k) => k,
            None => {
                let removals = subs.removals();
                self.walks.push(Settled {
                    derives: derives.to_vec(),
                    reads,
                    until: Vec::new(),
                    touched: Vec::new(),
                    removals,
                });
                self.walks.len() - 1
            }
        };
        let w = &mut self.walks[k];
        if w.removals != subs.removals() {
            w.until.clear();
            w.removals = subs.removals();
        }
        k
    }

    /// The walk [`SettledDerives::walk`] gave place `k`.
    #[inline]
    pub(super) fn walked(&mut self, k: usize) -> &mut Settled {
        &mut self.walks[k]
    }
}

impl Settled {
    /// Whether entry `i`'s values computed at the last tick still hold at `now`.
    #[inline]
    pub(super) fn holds(&self, i: u32, now: Millis) -> bool {
        let touched = self.touched.get((i / 64) as usize).is_some_and(|w| w >> (i % 64) & 1 == 1);
        !touched && self.until.get(i as usize).is_some_and(|u| now < *u)
    }

    /// Entry `i`'s values were computed; they stay put before `until`.
    #[inline]
    pub(super) fn computed(&mut self, i: u32, until: Millis) {
        let i = i as usize;
        if self.until.len() <= i {
            self.until.resize(i + 1, COMPUTE);
        }
        self.until[i] = until;
    }

    /// The tick visited every entry: nothing is touched since it (a tick that visits fewer
    /// leaves the bits as they are).
    pub(super) fn done(&mut self) {
        self.touched.fill(0);
    }
}
