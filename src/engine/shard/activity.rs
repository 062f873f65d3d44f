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

/// An activity term on an indexed slot at the pass's time, asked of the slot's column as it
/// stores them: whether the term may hold for an entry whose newest bucket is stored as `code`
/// ([`ActivityAt::may_hold`] of the bucket, without working the bucket out of the code).
#[derive(Clone, Copy, Debug)]
struct Term<'a> {
    col: &'a [u16],
    /// The codes `lo..=hi` are the buckets the term reads (from its window's first bucket to its
    /// last, or to the column's end); it may hold when the newest is among them (`inside`) or
    /// when it is not.
    lo: i64,
    hi: i64,
    inside: bool,
    /// Whether it may hold for an entry with no bucket.
    none: bool,
}

impl<'a> Term<'a> {
    fn new(a: ActivityAt, col: &'a Column) -> Term<'a> {
        // Bucket `base + code - 1` is stored as `code`; with no base no entry has a code.
        let base = col.base.unwrap_or(0);
        let code = |idx: i64| idx.saturating_sub(base).saturating_add(1);
        let (first, last, some) = a.parts();
        Term {
            col: &col.newest,
            lo: code(first),
            hi: if some { i64::MAX } else { code(last) },
            inside: some,
            none: !some,
        }
    }

    /// Whether it may hold for entry `i`.
    #[inline]
    fn holds(&self, i: usize) -> bool {
        self.holds_code(self.col.get(i).copied().unwrap_or(NONE))
    }

    /// Whether it may hold for an entry whose newest bucket is stored as `code`.
    #[inline]
    fn holds_code(&self, code: u16) -> bool {
        match code {
            NONE => self.none,
            code => (self.lo <= i64::from(code) && i64::from(code) <= self.hi) == self.inside,
        }
    }
}

/// Whether all of `terms` may hold, by stored code: each term's codes marked off as ranges.
fn table(terms: &[Term]) -> Box<[bool; 1 << 16]> {
    let mut ok = Box::new([true; 1 << 16]);
    for t in terms {
        ok[usize::from(NONE)] &= t.none;
        // The codes of buckets, `1..=u16::MAX`, the term's range holds of.
        let (start, end) = (t.lo.max(1), t.hi.min(i64::from(u16::MAX)));
        let (a, b) = (start as usize, end as usize);
        match (t.inside, start <= end) {
            (true, true) => {
                ok[1..a].fill(false);
                ok[b + 1..].fill(false);
            }
            (true, false) => ok[1..].fill(false),
            (false, true) => ok[a..=b].fill(false),
            (false, false) => {}
        }
    }
    ok
}

/// One rule's terms at the pass's time, asked of each entry: all of them may hold.
enum RuleTerms<'a> {
    /// Every term reads the same column: whether they all may hold, by stored code, worked out
    /// once for every code (a look-up an entry instead of each term's test).
    OneColumn(&'a [u16], Box<[bool; 1 << 16]>),
    Terms(Vec<Term<'a>>),
}

impl<'a> RuleTerms<'a> {
    fn new(terms: Vec<Term<'a>>) -> RuleTerms<'a> {
        match terms.first().filter(|t| terms.iter().all(|u| std::ptr::eq(u.col, t.col))) {
            Some(t) => RuleTerms::OneColumn(t.col, table(&terms)),
            None => RuleTerms::Terms(terms),
        }
    }

    /// Marks in `hit` (by entry) those it may hold for.
    fn mark(&self, hit: &mut [bool]) {
        match self {
            RuleTerms::OneColumn(col, table) => {
                let k = col.len().min(hit.len());
                for (h, &code) in hit[..k].iter_mut().zip(&col[..k]) {
                    *h |= table[usize::from(code)];
                }
                // Entries past the column's end have no bucket.
                if table[usize::from(NONE)] {
                    hit[k..].fill(true);
                }
            }
            RuleTerms::Terms(terms) => {
                for (i, h) in hit.iter_mut().enumerate().filter(|(_, h)| !**h) {
                    *h = terms.iter().all(|t| t.holds(i));
                }
            }
        }
    }

    #[cfg(test)]
    fn holds(&self, i: usize) -> bool {
        let mut hit = vec![false; i + 1];
        self.mark(&mut hit);
        hit[i]
    }
}

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
    #[cfg(test)]
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
        let rules: Vec<RuleTerms> = rules
            .iter()
            .map(|terms| {
                let col = |slot: u32| b.slots.iter().position(|(s, _)| *s == slot).map(|c| &b.columns[c]);
                RuleTerms::new(terms.iter().filter_map(|a| Some(Term::new(a.at(now), col(a.slot)?))).collect())
            })
            .collect();
        let mut hit = vec![false; subs.len()];
        for r in &rules {
            r.mark(&mut hit);
        }
        hit.iter().enumerate().filter(|(_, h)| **h).map(|(i, _)| i as u32).collect()
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
    use super::{Column, Term};
    use crate::rules::expr::Activity;

    #[test]
    fn a_term_asked_of_stored_codes_says_what_it_says_of_the_buckets() {
        let mut c = Column::default();
        let first = 40_000;
        // Entries with buckets around the first, and one with none (entry 20).
        for (i, idx) in (first - 12..first + 8).enumerate() {
            assert!(c.set(if i == 20 { 21 } else { i }, idx));
        }
        for some in [true, false] {
            for window in [1, 3, 7, 30] {
                for now in (first - 15..first + 12).map(|b| b * 10 + 3) {
                    let term = Activity { slot: 0, bucket: 10, window: window * 10, some }.at(now);
                    let t = Term::new(term, &c);
                    for i in 0..24 {
                        assert_eq!(
                            t.holds(i),
                            term.may_hold(c.get(i)),
                            "some {some} window {window} now {now} entry {i}"
                        );
                    }
                }
            }
        }
        // Two terms on one column (the pack's "none in 30 days, some in 60") by a table of codes,
        // as each term says; and terms on two columns each asked.
        let mut d = Column::default();
        assert!(d.set(0, first - 40) && d.set(1, first));
        for now in (first - 5..first + 70).map(|b| b * 10 + 3) {
            let none = Term::new(Activity { slot: 0, bucket: 10, window: 300, some: false }.at(now), &c);
            let some = Term::new(Activity { slot: 0, bucket: 10, window: 600, some: true }.at(now), &c);
            let other = Term::new(Activity { slot: 1, bucket: 10, window: 300, some: true }.at(now), &d);
            let one = super::RuleTerms::new(vec![none, some]);
            let super::RuleTerms::OneColumn(_, table) = &one else { panic!("one column") };
            for code in 0..=u16::MAX {
                assert_eq!(table[usize::from(code)], none.holds_code(code) && some.holds_code(code), "code {code}");
            }
            let two = super::RuleTerms::new(vec![none, other]);
            assert!(matches!(two, super::RuleTerms::Terms(..)));
            for i in 0..24 {
                assert_eq!(one.holds(i), none.holds(i) && some.holds(i), "now {now} entry {i}");
                assert_eq!(two.holds(i), none.holds(i) && other.holds(i), "now {now} entry {i}");
            }
        }
        // Ranges past either end of the codes, empty ones, and both kinds of term.
        let col = [0u16; 1];
        for (lo, hi) in [(i64::MIN, -5), (-5, 3), (2, 9), (9, 2), (60_000, 70_000), (70_000, i64::MAX), (1, 65_535)] {
            for inside in [true, false] {
                let t = Term { col: &col, lo, hi, inside, none: !inside };
                let u = Term { col: &col, lo: 5, hi: 40_000, inside: true, none: false };
                let table = super::table(&[t, u]);
                for code in 0..=u16::MAX {
                    let want = t.holds_code(code) && u.holds_code(code);
                    assert_eq!(table[usize::from(code)], want, "{lo}..={hi} inside {inside} code {code}");
                }
            }
        }
        // A column nothing was set in: no entry has a bucket.
        let empty = Column::default();
        let term = Activity { slot: 0, bucket: 10, window: 30, some: true }.at(400_000);
        assert!(!Term::new(term, &empty).holds(0));
    }

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
