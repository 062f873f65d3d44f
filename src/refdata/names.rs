//! The strings of subscriber records, stored once per table instead of once per subscriber:
//! ids (`customer_id`, `account_id`) in one arena addressed by `u32` offsets, and the list
//! fields (`services`, `prefs`) as bit sets over a vocabulary interned at load.
//!
//! Why: a heap string costs its pointer and length (16 bytes) plus an allocation of at least
//! 16 bytes, and a list of them a vector on top; with tens of millions of subscribers that was
//! most of a record. An operator's vocabularies are small (tens of services and preferences),
//! so a set of them fits a `u64`; more than 64 distinct values spill to a boxed bit vector.
//!
//! Each shard owns its own table (subscribers never move between shards), so nothing here
//! locks. Bits mean something only with the table that made them; a list reads back in byte
//! order of its values, the same whatever the shard count.

use std::collections::HashMap;

/// A string in a [`Names`] arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StrRef(u32);

/// A small interned vocabulary (service or preference names), and the sets of more than 63 of
/// its names that do not fit a [`Labels`] word.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vocab {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32, foldhash::fast::FixedState>,
    /// Bit vectors of the sets that spilled, by the index their `Labels` holds. A spilled set
    /// is copied on change, never edited in place, so cloned records stay independent; the old
    /// copy stays (only a vocabulary of over 63 names ever spills, and then rarely changes).
    spill: Vec<Box<[u64]>>,
}

impl Vocab {
    pub fn id(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.id(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }

    /// The words of a set.
    fn words<'a>(&'a self, l: &'a Labels) -> &'a [u64] {
        match l.spilled() {
            Some(i) => self.spill.get(i).map_or(&[], |w| w),
            None => std::slice::from_ref(&l.0),
        }
    }

    pub fn contains(&self, l: &Labels, id: u32) -> bool {
        self.words(l).get(id as usize / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Adds (`on`) or removes a name from a set.
    pub fn set(&mut self, l: &mut Labels, id: u32, on: bool) {
        if l.spilled().is_none() && id < 63 {
            if on {
                l.0 |= 1 << id;
            } else {
                l.0 &= !(1 << id);
            }
            return;
        }
        if !on && !self.contains(l, id) {
            return;
        }
        let mut words = self.words(l).to_vec();
        if words.len() <= id as usize / 64 {
            words.resize(id as usize / 64 + 1, 0);
        }
        if on {
            words[id as usize / 64] |= 1 << (id % 64);
        } else {
            words[id as usize / 64] &= !(1 << (id % 64));
        }
        *l = Labels(SPILLED | self.spill.len() as u64);
        self.spill.push(words.into_boxed_slice());
    }

    /// A set of these names, interning the new ones.
    pub fn set_of<S: AsRef<str>>(&mut self, items: &[S]) -> Labels {
        let mut l = Labels::default();
        for s in items {
            let id = self.intern(s.as_ref());
            self.set(&mut l, id, true);
        }
        l
    }

    /// Whether `labels` holds the name (false for a name no subscriber ever had).
    pub fn has(&self, labels: &Labels, name: &str) -> bool {
        // A subscriber holds a few names (none to five in an operator's data): comparing each
        // with `name` costs less than hashing it to find its id. A spilled set asks the index.
        if labels.spilled().is_none() && labels.0.count_ones() <= 4 {
            let mut w = labels.0;
            while w != 0 {
                if self.name(w.trailing_zeros()) == name {
                    return true;
                }
                w &= w - 1;
            }
            return false;
        }
        self.id(name).is_some_and(|id| self.contains(labels, id))
    }

    /// Calls `f` with each name in `labels`, in id order, allocating nothing (checkpoints).
    pub fn each_name(&self, labels: &Labels, mut f: impl FnMut(&str)) {
        for (i, &w) in self.words(labels).iter().enumerate() {
            let mut w = w;
            while w != 0 {
                let b = w.trailing_zeros();
                w &= w - 1;
                f(self.name(i as u32 * 64 + b));
            }
        }
    }

    /// The names in `labels`, in byte order.
    pub fn names_of(&self, labels: &Labels) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .words(labels)
            .iter()
            .enumerate()
            .flat_map(|(i, &w)| (0..64u32).filter(move |b| w & (1 << b) != 0).map(move |b| i as u32 * 64 + b))
            .map(|id| self.name(id))
            .collect();
        v.sort_unstable();
        v
    }
}

/// Marks a [`Labels`] word that holds an index into [`Vocab::spill`] instead of bits.
const SPILLED: u64 = 1 << 63;

/// A set of vocabulary ids in one word: bits for the first 63 names; past them, an index into
/// the vocabulary's spilled sets. Read and changed through its [`Vocab`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Labels(u64);

impl Labels {
    fn spilled(self) -> Option<usize> {
        (self.0 & SPILLED != 0).then_some((self.0 & !SPILLED) as usize)
    }
}

/// The string table of a set of subscriber records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Names {
    /// Each string as a LEB128 length and its bytes. Offset 0 is the empty string.
    arena: Vec<u8>,
    /// Bytes no record points at any more (replaced by a `profile` event).
    garbage: usize,
    pub services: Vocab,
    pub prefs: Vocab,
}

impl Names {
    pub fn new() -> Names {
        Names { arena: vec![0], ..Names::default() }
    }

    /// An empty table with the same vocabularies (so that label sets stay valid in it).
    pub fn vocabularies(&self) -> Names {
        Names { services: self.services.clone(), prefs: self.prefs.clone(), ..Names::new() }
    }

    pub fn add(&mut self, s: &str) -> StrRef {
        if s.is_empty() {
            return StrRef(0);
        }
        if self.arena.is_empty() {
            self.arena.push(0);
        }
        let at = self.arena.len();
        let mut n = s.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.arena.push(b);
                break;
            }
            self.arena.push(b | 0x80);
        }
        self.arena.extend_from_slice(s.as_bytes());
        // Offsets are u32: a table past 4 GiB is compacted by the shard before it gets there
        // (see `needs_compaction`); this only guards a corrupt offset.
        StrRef(u32::try_from(at).unwrap_or(0))
    }

    pub fn get(&self, r: StrRef) -> &str {
        let mut at = r.0 as usize;
        let (mut n, mut shift) = (0usize, 0);
        while let Some(&b) = self.arena.get(at) {
            at += 1;
            n |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        self.arena.get(at..at + n).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("")
    }

    /// Replaces the string at `r` (a `profile` change): the old bytes become garbage.
    pub fn replace(&mut self, r: &mut StrRef, s: &str) {
        let old = self.get(*r).len();
        if old > 0 {
            self.garbage += old + 1;
        }
        *r = self.add(s);
    }

    /// True when replaced strings take more room than live ones, or the arena nears the limit
    /// of its offsets: time to [`Names::compact`].
    pub fn needs_compaction(&self) -> bool {
        (self.garbage > 4096 && self.garbage * 2 > self.arena.len())
            || self.arena.len() > (u32::MAX as usize) - (1 << 20)
    }

    /// Copies the strings `refs` point at into a fresh arena and updates them.
    pub fn compact<'a>(&mut self, refs: impl Iterator<Item = &'a mut StrRef>) {
        let old = std::mem::take(&mut self.arena);
        let old = Names { arena: old, ..Names::default() };
        self.arena.push(0);
        self.garbage = 0;
        for r in refs {
            let s = old.get(*r);
            *r = self.add(s);
        }
        self.arena.shrink_to_fit();
    }

    /// Bytes held (for memory accounting).
    pub fn bytes(&self) -> usize {
        self.arena.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_compact() {
        let mut n = Names::new();
        let long = "x".repeat(300);
        let mut a = n.add("C00000001");
        let b = n.add(&long);
        assert_eq!((n.get(a), n.get(b), n.get(StrRef(0))), ("C00000001", &*long, ""));
        n.replace(&mut a, "C2");
        let mut refs = [a, b];
        n.compact(refs.iter_mut());
        assert_eq!((n.get(refs[0]), n.get(refs[1])), ("C2", &*long));
    }

    #[test]
    fn labels_spill_past_64_names() {
        let mut v = Vocab::default();
        let names: Vec<String> = (0..70).map(|i| format!("s{i:02}")).collect();
        let all = v.set_of(&names);
        assert!(names.iter().all(|s| v.has(&all, s)));
        let mut l = v.set_of(&["s69", "s01"]);
        let copy = l;
        assert_eq!(v.names_of(&l), ["s01", "s69"]);
        v.set(&mut l, 69, false);
        assert!(!v.has(&l, "s69") && v.has(&l, "s01") && !v.has(&l, "unknown"));
        assert!(v.has(&copy, "s69"), "a copy is not changed with the original");
    }

    #[test]
    fn has_answers_as_the_index_for_sets_of_every_size() {
        let mut v = Vocab::default();
        let names: Vec<String> = ["call_notify", "12593", "music_club", "weather", "call", "c", "ringback:周杰伦"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Sets of every size up to all seven: the few-names scan and the index past it.
        for n in 0..=names.len() {
            for start in 0..names.len() {
                let items: Vec<&String> = names.iter().cycle().skip(start).take(n).collect();
                let l = v.set_of(&items);
                for s in names.iter().map(String::as_str).chain(["", "call_notif", "call_notify ", "unknown"]) {
                    let by_index = v.id(s).is_some_and(|id| v.contains(&l, id));
                    assert_eq!(v.has(&l, s), by_index, "{s:?} in {items:?}");
                    assert_eq!(by_index, items.iter().any(|i| *i == s), "{s:?} in {items:?}");
                }
            }
        }
    }
}
