//! The subscriber table: every subscriber a shard owns, record and state, found by number.
//!
//! It is the one place a shard keeps subscribers, so it is built for the event path: records
//! and states sit in two vectors that never move what they hold ([`grown`]), a compact index
//! finds a number's position ([`index`]), and the pipeline fetches the index slot, then the
//! record and state, then the state's lists into the cache a few events ahead ([`SubTable::
//! prefetch_slot`] and the two after it). A checkpoint copies the table while events go on
//! changing it: whatever is about to change is copied first ([`snap`]). Subscribers the
//! reference data does not know are held up to a bound ([`unknown`]).
//!
//! A [`Subscriber`] is one entry: the record and the state, borrowed together; it takes in
//! what an event states about the subscriber ([`Subscriber::apply`]).

mod grown;
mod index;
mod snap;
mod unknown;

use super::SubState;
use crate::event::{Body, Event, LocTrigger};
use crate::refdata::{Names, Profile, RefData};
use crate::util::{Msisdn, mix64};
use grown::Grown;
use index::NumberIndex;
use snap::SnapMarks;

/// One subscriber of a shard: its record and its state.
pub struct Subscriber<'s> {
    pub sub: &'s mut Profile,
    pub state: &'s mut SubState,
}

impl Subscriber<'_> {
    /// Takes in the facts `ev` states about the subscriber: its record changes, balance,
    /// top-up, IVR step, place and usage (the rules read them next). `names` holds the record's
    /// strings.
    #[inline]
    pub fn apply(&mut self, ev: &Event, names: &mut Names, refdata: &RefData) {
        let st = &mut self.state;
        st.begin(ev.ts, ev.balance_fen());
        match &ev.body {
            Body::Profile(p) => {
                for c in &p.set {
                    self.sub.apply(c, names);
                }
                for f in &p.unset {
                    self.sub.unset(*f, names);
                }
                self.sub.set_known();
            }
            Body::Topup(t) => st.record_topup(ev.ts, t.amount_fen),
            Body::Ivr(i) => st.record_ivr(ev.ts, i.step, i.node.as_deref().map(Box::from)),
            Body::Location(l) => {
                let cell = (l.trigger != LocTrigger::Detach).then_some(&*l.cell);
                st.move_to(cell, ev.ts, refdata);
                st.set_country(l.country.as_deref().filter(|c| *c != "CN").map(Box::from));
            }
            Body::Usage(u) => {
                st.record_usage(ev.ts);
                if let Some(c) = &u.cell {
                    st.move_to(Some(c), ev.ts, refdata);
                }
            }
            Body::Crm(_) | Body::Outcome(_) | Body::Reply(_) => {}
        }
    }
}

/// A shard's subscribers: records and states in two vectors side by side (the loaded records
/// become the first one as they are, without a copy), found by number through a
/// [`NumberIndex`].
#[derive(Default)]
pub struct SubTable {
    profiles: Grown<Profile>,
    states: Grown<SubState>,
    index: NumberIndex,
    /// Set while a checkpoint copies this table (see [`SubTable::snapshot_copy`]).
    snap: Option<Box<SnapMarks>>,
    /// Subscribers the reference data does not know, held up to a bound ([`unknown`]).
    unknown: unknown::Unknown,
}

/// [`prefetch`] of both ends of `*p`: a state (128 bytes) spans two cache lines, and the fields
/// in the second are read as well; for a record (one line of 64) both ends are the same line.
#[inline(always)]
fn prefetch_whole<T>(p: *const T) {
    let b = p.cast::<u8>();
    prefetch(b);
    prefetch(b.wrapping_add(std::mem::size_of::<T>() - 1));
}

use crate::util::prefetch;

impl SubTable {
    fn hash(m: Msisdn) -> u64 {
        mix64(m.raw())
    }

    /// The table of `profiles`; a later record for the same number replaces an earlier one.
    /// It holds at most `unknown_cap` subscribers the reference data does not know.
    pub fn new(mut profiles: Vec<Profile>, unknown_cap: usize) -> SubTable {
        let mut index = NumberIndex::with_capacity(profiles.len());
        let mut kept = 0;
        for i in 0..profiles.len() {
            let m = profiles[i].msisdn;
            let ps = &profiles[..kept];
            match index.find(Self::hash(m), |j| ps[j as usize].msisdn == m) {
                Ok(j) => profiles.swap(j as usize, i),
                Err(at) => {
                    // Sized for every record: no growth here.
                    index.insert(at, kept as u32, Self::hash(m));
                    profiles.swap(kept, i);
                    kept += 1;
                }
            }
        }
        profiles.truncate(kept);
        let states: Vec<SubState> = std::iter::repeat_with(SubState::default).take(kept).collect();
        let mut unknown = unknown::Unknown::default();
        unknown.cap = unknown_cap;
        SubTable { profiles: profiles.into(), states: states.into(), index, snap: None, unknown }
    }

    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.len() == 0
    }

    /// The record of entry `i`.
    #[inline]
    pub fn profile(&self, i: u32) -> &Profile {
        &self.profiles[i as usize]
    }

    /// The state of entry `i`, to read.
    #[inline]
    pub fn state(&self, i: u32) -> &SubState {
        &self.states[i as usize]
    }

    /// The entry of `m`, if it has one.
    pub fn slot_of(&self, m: Msisdn) -> Option<u32> {
        let ps = &self.profiles;
        self.index.find(Self::hash(m), |i| ps[i as usize].msisdn == m).ok()
    }

    /// Entry `i` to read only: a checkpoint in progress does not copy it first (whatever is
    /// changed must go through [`SubTable::at`]).
    #[inline]
    pub fn read(&mut self, i: u32) -> Subscriber<'_> {
        Subscriber { sub: &mut self.profiles[i as usize], state: &mut self.states[i as usize] }
    }

    /// Entry `i`, to change.
    #[inline]
    pub fn at(&mut self, i: u32) -> Subscriber<'_> {
        // About to be changed: a checkpoint in progress keeps the state as it was first.
        if let Some(s) = &mut self.snap {
            if !s.is_copied(i) {
                s.mark(i);
                s.saved.push((self.profiles[i as usize].clone(), self.states[i as usize].clone()));
            }
        }
        Subscriber { sub: &mut self.profiles[i as usize], state: &mut self.states[i as usize] }
    }

    #[inline]
    pub fn get_mut(&mut self, m: Msisdn) -> Option<Subscriber<'_>> {
        let ps = &self.profiles;
        let i = self.index.find(Self::hash(m), |i| ps[i as usize].msisdn == m).ok()?;
        Some(self.at(i))
    }

    /// The entry of `m`, with the record `make` gives when there is none.
    #[inline]
    pub fn get_or_insert(&mut self, m: Msisdn, make: impl FnOnce() -> Profile) -> Subscriber<'_> {
        self.get_or_insert_at(m, make).1
    }

    /// [`SubTable::get_or_insert`], with the entry's place in the table.
    #[inline]
    pub fn get_or_insert_at(&mut self, m: Msisdn, make: impl FnOnce() -> Profile) -> (u32, Subscriber<'_>) {
        let h = Self::hash(m);
        let ps = &self.profiles;
        let i = match self.index.find(h, |i| ps[i as usize].msisdn == m) {
            Ok(i) => i,
            Err(mut at) => {
                let i = self.profiles.len() as u32;
                if !self.index.insert(at, i, h) {
                    self.index.grow(|j| Self::hash(ps[j as usize].msisdn));
                    at = self.index.find(h, |_| false).expect_err("an empty slot after growing");
                    self.index.insert(at, i, h);
                }
                let p = make();
                if !p.known() {
                    self.unknown.added(m, 1);
                }
                self.profiles.push(p);
                self.states.push(SubState::default());
                i
            }
        };
        (i, self.at(i))
    }

    /// Fetches the first index slot of `m` and its tag into the cache (for an event some way
    /// ahead).
    pub fn prefetch_slot(&self, m: Msisdn) {
        prefetch(self.index.line_of(self.index.first(Self::hash(m))));
    }

    /// Fetches the record and state of `m`'s entry as the index's tags tell (for an event a few
    /// places ahead, its slot fetched by [`SubTable::prefetch_slot`] earlier). A wrong guess (a
    /// tag shared, a number not in the table) costs a wasted fetch, nothing else.
    pub fn prefetch_entry(&self, m: Msisdn) {
        self.prefetch_record_and_state(self.guess(m));
    }

    /// Fetches the lists of the state of `m`'s entry as the tags tell (window buckets,
    /// the rare part, and with `cells` the recent cells, which a move to another cell edits),
    /// for an event a few places ahead whose state was fetched earlier
    /// ([`SubTable::prefetch_entry`]).
    pub fn prefetch_lists(&self, m: Msisdn, cells: bool) {
        let p = self.guess(m);
        self.prefetch_lists_of(p);
        if cells {
            self.prefetch_part(p, SubState::cells_addr);
        }
    }

    /// Fetches the record and state of entry `i`, for a pass over entries spread over the table:
    /// its lists are fetched a few entries later ([`SubTable::prefetch_lists_at`]), which reads
    /// the state to find them.
    #[inline]
    pub fn prefetch_state_at(&self, i: u32) {
        self.prefetch_record_and_state(i as usize);
    }

    #[inline]
    fn prefetch_record_and_state(&self, p: usize) {
        if let (Some(sub), Some(st)) = (self.profiles.get(p), self.states.get(p)) {
            prefetch_whole(sub);
            prefetch_whole(st);
        }
    }

    /// Fetches the recent cells of entry `i`, for a daily pass whose rules read them.
    #[inline]
    pub fn prefetch_cells_at(&self, i: u32) {
        self.prefetch_part(i as usize, SubState::cells_addr);
    }

    /// Fetches the derived attributes of entry `i`, for a daily pass that reads them.
    #[inline]
    pub fn prefetch_derived_at(&self, i: u32) {
        self.prefetch_part(i as usize, SubState::derived_addr);
    }

    /// Fetches the list `addr` finds in the state of entry `p` (its state fetched earlier).
    #[inline]
    fn prefetch_part(&self, p: usize, addr: fn(&SubState) -> Option<*const u8>) {
        if let Some(a) = self.states.get(p).and_then(addr) {
            prefetch(a);
        }
    }

    /// Fetches the lists of entry `i` (window buckets, the rare part), for a daily pass that
    /// walks the table in order: the entries come in sequence, their lists from anywhere.
    #[inline]
    pub fn prefetch_lists_at(&self, i: u32) {
        self.prefetch_lists_of(i as usize);
    }

    fn prefetch_lists_of(&self, p: usize) {
        if let Some(st) = self.states.get(p) {
            for a in st.list_addrs().into_iter().flatten() {
                prefetch(a);
            }
        }
    }

    /// The entry of `m` as far as the index's tags tell (past the end when none).
    fn guess(&self, m: Msisdn) -> usize {
        self.index.guess(Self::hash(m)).map_or(usize::MAX, |p| p as usize)
    }

    /// Every entry, to change. A checkpoint in progress must be finished first (see
    /// [`SubTable::snapshot_copy`]): the entries are not copied one by one here.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = Subscriber<'_>> {
        debug_assert!(self.snap.is_none(), "a checkpoint in progress is finished before a sweep");
        self.profiles.iter_mut().zip(self.states.iter_mut()).map(|(sub, state)| Subscriber { sub, state })
    }

    /// Memory held by the table itself (records and states inline, index slots), for accounting.
    pub fn bytes(&self) -> usize {
        self.profiles.bytes() + self.states.bytes() + self.index.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::grown::BLOCK;
    use super::*;

    #[test]
    fn subscriber_table_grows_keeps_the_last_duplicate_and_finds_everyone() {
        let m = |i: u64| Msisdn::from_raw(13_800_000_000 + i * 7);
        let mut loaded: Vec<Profile> = (0..100).map(|i| Profile::unknown(m(i))).collect();
        let again =
            crate::refdata::SubscriberRecord { arpu_fen: 42, ..crate::refdata::SubscriberRecord::unknown(m(5)) };
        loaded.push(Profile::new(&again, true, &mut crate::refdata::Names::default()));
        let mut t = SubTable::new(loaded, usize::MAX);
        assert_eq!(t.len(), 100);
        assert_eq!(t.get_mut(m(5)).map(|e| e.sub.arpu_fen()), Some(42), "a later record replaces an earlier one");
        // Past two blocks of added entries: the loaded ones never move.
        let n = 100 + 2 * BLOCK as u64 + 7;
        let first = &t.profiles[0] as *const Profile;
        for i in 100..n {
            t.get_or_insert(m(i), || Profile::unknown(m(i)));
            if let Some(e) = t.get_mut(m(i)) {
                e.state.begin(0, Some(i as i64));
            }
        }
        assert_eq!(t.len(), n as usize);
        assert!(std::ptr::eq(first, &t.profiles[0]), "the loaded records stay where they are");
        assert!((0..n).all(|i| t.get_mut(m(i)).is_some_and(|e| e.sub.msisdn == m(i))));
        assert!((100..n).all(|i| t.get_mut(m(i)).is_some_and(|e| e.state.balance() == Some(i as i64))));
        assert!(t.get_mut(m(n)).is_none());
        assert_eq!(t.iter_mut().count(), n as usize);
        assert!(t.iter_mut().all(|e| e.state.balance().is_none_or(|b| e.sub.msisdn == m(b as u64))));
        t.prefetch_slot(m(9_999));
        t.prefetch_entry(m(9_999));
    }
}
