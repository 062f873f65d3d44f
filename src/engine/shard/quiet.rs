//! Daily journey starts that stay false: a start condition that reads only fields of the
//! subscriber's record that do not move with the date, derived attributes and constants (the
//! churn journey's "high value, reachable, churn score 50 or more") gives at a tick what it gave
//! at the last one, unless the subscriber had an event since that can change one of those (a
//! `profile` event, which changes the record, or an event of a kind that recomputes derived
//! values) or one of their derived values changed at a tick. A tick of such journeys evaluates
//! the condition only for the others: those it was not false for, those stirred since, and
//! those it never evaluated.
//!
//! Kept per tick (its journeys): a bit per entry for "false at the last tick and not stirred
//! since". Forgotten when the rules or the states are replaced (reload, restore) or entries move
//! (an unknown subscriber forgotten). A filter only: each entry evaluated is evaluated in full,
//! and a journey already running for the subscriber keeps its entry out of the quiet ones.

use crate::state::table::SubTable;

#[derive(Default)]
pub(super) struct QuietStarts {
    walks: Vec<Quiet>,
}

/// One tick's journeys and the entries their start conditions stay false for.
pub(super) struct Quiet {
    journeys: Vec<u16>,
    /// By table entry, a bit each: false at the last tick, nothing changed since.
    quiet: Vec<u64>,
    /// The table's removals when the bits were set: entries moved since if it changed.
    removals: u64,
}

impl QuietStarts {
    /// Forgets every bit (new rules, states restored): the next ticks evaluate for everyone.
    pub(super) fn clear(&mut self) {
        self.walks.clear();
    }

    /// Entry `i`'s record or a derived value of it may have changed: its conditions are
    /// evaluated at the next tick of each walk.
    #[inline]
    pub(super) fn stirred(&mut self, i: u32) {
        let (word, bit) = ((i / 64) as usize, i % 64);
        for w in &mut self.walks {
            if let Some(x) = w.quiet.get_mut(word) {
                *x &= !(1 << bit);
            }
        }
    }

    /// The walk of a tick of `journeys` (each of whose start conditions stays put), begun if
    /// this is its first.
    pub(super) fn walk(&mut self, journeys: &[u16], subs: &SubTable) -> usize {
        let k = match self.walks.iter().position(|w| w.journeys == journeys) {
            Some(k) => k,
            None => {
                self.walks.push(Quiet { journeys: journeys.to_vec(), quiet: Vec::new(), removals: subs.removals() });
                self.walks.len() - 1
            }
        };
        let w = &mut self.walks[k];
        if w.removals != subs.removals() {
            w.quiet.clear();
            w.removals = subs.removals();
        }
        k
    }

    /// Whether walk `k`'s conditions were false for entry `i` at its last tick and nothing they
    /// read changed since.
    #[inline]
    pub(super) fn is_quiet(&self, k: usize, i: u32) -> bool {
        self.walks[k].quiet.get((i / 64) as usize).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// Walk `k`'s conditions were evaluated for entry `i`: all false (`quiet`), or not.
    #[inline]
    pub(super) fn evaluated(&mut self, k: usize, i: u32, quiet: bool) {
        let (word, bit) = ((i / 64) as usize, i % 64);
        let q = &mut self.walks[k].quiet;
        if q.len() <= word {
            if !quiet {
                return;
            }
            q.resize(word + 1, 0);
        }
        if quiet {
            q[word] |= 1 << bit;
        } else {
            q[word] &= !(1 << bit);
        }
    }
}
