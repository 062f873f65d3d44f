//! The subscriber table's index: where in the table each subscriber number is.

/// Positions in the subscriber vectors by number: open addressing with linear probing over
/// `u32` slots, at most three quarters full. A number's first slot follows from its hash alone,
/// so the pipeline can fetch it, and then the entry it points at, into the cache a few events
/// before they are needed (a general hash table's lookup would itself stall on those misses).
/// Beside each slot, eight more bits of its number's hash (its tag): the entry a number's slot
/// holds is known without reading the entry, so the fetch ahead finds a number that probed
/// past its first slot (a quarter of them at this fill), and a lookup reads no other
/// subscriber's record on the way. Slots and their tags lie in groups of twelve, one cache line
/// each: a lookup's first probe is one line to fetch, not a slot's and a tag's. 5⅓ bytes a
/// slot: 7 to 14 bytes a subscriber.
pub(super) struct NumberIndex {
    groups: Vec<Group>,
    /// Slots in all: twelve a group.
    n: usize,
    len: usize,
}

/// Slots in a group.
const GROUP: usize = 12;

/// Twelve slots and their tags: one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Group {
    slots: [u32; GROUP],
    tags: [u8; GROUP],
}

const EMPTY: u32 = u32::MAX;

const EMPTY_GROUP: Group = Group { slots: [EMPTY; GROUP], tags: [0; GROUP] };

/// The bits of a hash the tag keeps: the top ones (the slot is chosen by the bottom ones).
#[inline]
fn tag(h: u64) -> u8 {
    (h >> 56) as u8
}

/// How far the fetch ahead follows a probe sequence before it gives up on a number.
const GUESS_PROBES: usize = 8;

impl Default for NumberIndex {
    fn default() -> Self {
        NumberIndex::with_capacity(0)
    }
}

impl NumberIndex {
    pub(super) fn with_capacity(n: usize) -> NumberIndex {
        Self::with_groups((n * 4 / 3 + 1).next_power_of_two().div_ceil(GROUP).max(2))
    }

    fn with_groups(g: usize) -> NumberIndex {
        NumberIndex { groups: vec![EMPTY_GROUP; g], n: g * GROUP, len: 0 }
    }

    /// The first slot of the number of hash `h` (from its bottom 32 bits, scaled to the slots).
    #[inline]
    pub(super) fn first(&self, h: u64) -> usize {
        (((h & 0xffff_ffff) * self.n as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.n { 0 } else { i + 1 }
    }

    /// Slot `i`'s position and tag.
    #[inline]
    fn at(&self, i: usize) -> (u32, u8) {
        let g = &self.groups[i / GROUP];
        (g.slots[i % GROUP], g.tags[i % GROUP])
    }

    #[inline]
    fn put(&mut self, i: usize, p: u32, t: u8) {
        let g = &mut self.groups[i / GROUP];
        g.slots[i % GROUP] = p;
        g.tags[i % GROUP] = t;
    }

    /// The position slot `i` holds (`u32::MAX`: none).
    #[cfg(test)]
    fn slot(&self, i: usize) -> u32 {
        self.at(i).0
    }

    /// Slot `i` (from [`NumberIndex::slot_of`]) to hold `p` instead, a number of the same hash.
    pub(super) fn set_slot(&mut self, i: usize, p: u32) {
        self.groups[i / GROUP].slots[i % GROUP] = p;
    }

    /// The address of the line slot `i` lies in, to fetch it ahead.
    #[inline]
    pub(super) fn line_of(&self, i: usize) -> *const u8 {
        self.groups.as_ptr().wrapping_add(i / GROUP).cast()
    }

    /// Bytes the index holds.
    pub(super) fn bytes(&self) -> usize {
        self.groups.len() * std::mem::size_of::<Group>()
    }

    /// The position `eq` accepts, or the empty slot where it would go. `eq` is asked only of
    /// the positions whose tag is `h`'s.
    pub(super) fn find(&self, h: u64, eq: impl Fn(u32) -> bool) -> Result<u32, usize> {
        let t = tag(h);
        let mut i = self.first(h);
        loop {
            match self.at(i) {
                (EMPTY, _) => return Err(i),
                (p, pt) if pt == t && eq(p) => return Ok(p),
                _ => i = self.next(i),
            }
        }
    }

    /// The position of the number of hash `h`, as far as the tags tell (a wrong one once in
    /// 256 probes): what the fetch ahead reads, its slots and tags fetched earlier.
    #[inline]
    pub(super) fn guess(&self, h: u64) -> Option<u32> {
        let t = tag(h);
        let mut i = self.first(h);
        for _ in 0..GUESS_PROBES {
            match self.at(i) {
                (EMPTY, _) => return None,
                (p, pt) if pt == t => return Some(p),
                _ => i = self.next(i),
            }
        }
        None
    }

    /// The slot holding the position `eq` accepts.
    pub(super) fn slot_of(&self, h: u64, eq: impl Fn(u32) -> bool) -> Result<usize, usize> {
        let mut i = self.first(h);
        loop {
            match self.at(i).0 {
                EMPTY => return Err(i),
                p if eq(p) => return Ok(i),
                _ => i = self.next(i),
            }
        }
    }

    /// Takes position `pos` out, shifting back the entries after it that probed past its slot
    /// (no tombstones: lookups stay as short as they were).
    pub(super) fn remove(&mut self, pos: u32, hash_of: impl Fn(u32) -> u64) {
        let Ok(mut hole) = self.slot_of(hash_of(pos), |p| p == pos) else { return };
        let mut j = hole;
        loop {
            j = self.next(j);
            let (p, t) = self.at(j);
            if p == EMPTY {
                break;
            }
            let home = self.first(hash_of(p));
            // `p` may move to the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.put(hole, p, t);
                hole = j;
            }
        }
        self.put(hole, EMPTY, 0);
        self.len -= 1;
    }

    /// Puts `pos`, of hash `h`, in the empty slot `at` (from `find`); false when the table must
    /// grow first.
    pub(super) fn insert(&mut self, at: usize, pos: u32, h: u64) -> bool {
        if (self.len + 1) * 4 > self.n * 3 {
            return false;
        }
        self.put(at, pos, tag(h));
        self.len += 1;
        true
    }

    pub(super) fn grow(&mut self, hash_of: impl Fn(u32) -> u64) {
        let g = self.groups.len() * 2;
        let old = std::mem::replace(self, Self::with_groups(g));
        self.len = old.len;
        for g in &old.groups {
            for &p in g.slots.iter().filter(|p| **p != EMPTY) {
                let h = hash_of(p);
                if let Err(at) = self.find(h, |_| false) {
                    self.put(at, p, tag(h));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(ix: &mut NumberIndex, p: u32, hash: impl Fn(u32) -> u64 + Copy) {
        let h = hash(p);
        let at = ix.find(h, |q| q == p).expect_err("not in yet");
        if !ix.insert(at, p, h) {
            ix.grow(hash);
            let at = ix.find(h, |_| false).expect_err("room after growing");
            assert!(ix.insert(at, p, h));
        }
    }

    #[test]
    fn tags_follow_their_slots_through_inserts_removals_and_growth() {
        // Five first slots for forty positions: long probe sequences, shifted by every removal;
        // the tags (top byte) all differ.
        let hash = |p: u32| (u64::from(p % 251) << 56) | u64::from(p % 5);
        let mut ix = NumberIndex::with_capacity(4);
        for p in 0..40 {
            put(&mut ix, p, hash);
        }
        let mut present: Vec<u32> = (0..40).collect();
        for p in (0..40).step_by(3) {
            ix.remove(p, hash);
            present.retain(|q| *q != p);
        }
        for p in 0..40 {
            assert_eq!(ix.find(hash(p), |q| q == p).is_ok(), present.contains(&p), "{p}");
        }
        for i in 0..ix.n {
            let (p, t) = ix.at(i);
            if p != EMPTY {
                assert_eq!(t, tag(hash(p)), "slot {i} holds {p}");
            }
        }
        // A tag shared with an earlier number in the sequence stops `find` only where `eq` agrees.
        let same_tag = |p: u32| (7u64 << 56) | u64::from(p % 2);
        let mut ix = NumberIndex::with_capacity(8);
        for p in 0..6 {
            put(&mut ix, p, same_tag);
        }
        assert!((0..6).all(|p| ix.find(same_tag(p), |q| q == p) == Ok(p)));
    }

    #[test]
    fn the_guess_names_the_entry_a_lookup_finds_for_nearly_every_number() {
        let hash = |p: u32| crate::util::mix64(u64::from(p) * 7 + 13_800_000_000);
        let mut ix = NumberIndex::with_capacity(100_000);
        for p in 0..100_000 {
            put(&mut ix, p, hash);
        }
        let right = (0..100_000).filter(|&p| ix.guess(hash(p)) == Some(p)).count();
        let first_slot_only = (0..100_000).filter(|&p| ix.slot(ix.first(hash(p))) == p).count();
        // A wrong tag match ahead of the number, or a number eight slots or more from its first:
        // a few in a thousand. The first slot alone is right for about three in four.
        assert!(right >= 99_000, "{right} of 100,000 guessed right");
        assert!(first_slot_only < 90_000, "{first_slot_only}: the test table is not crowded enough to tell");
    }
}
