//! The subscriber table's index: where in the table each subscriber number is.

/// Positions in the subscriber vectors by number: open addressing with linear probing over
/// `u32` slots, at most three quarters full. A number's first slot follows from its hash alone,
/// so the pipeline can fetch it, and then the entry it points at, into the cache a few events
/// before they are needed (a general hash table's lookup would itself stall on those misses).
/// Beside each slot, eight more bits of its number's hash (`tags`): the entry a number's slot
/// holds is known without reading the entry, so the fetch ahead finds a number that probed
/// past its first slot (a quarter of them at this fill), and a lookup reads no other
/// subscriber's record on the way. 5 bytes a slot: 6 to 14 bytes a subscriber.
pub(super) struct NumberIndex {
    pub(super) slots: Vec<u32>,
    pub(super) tags: Vec<u8>,
    len: usize,
}

const EMPTY: u32 = u32::MAX;

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
        let n = (n * 4 / 3 + 1).next_power_of_two().max(16);
        NumberIndex { slots: vec![EMPTY; n], tags: vec![0; n], len: 0 }
    }

    #[inline]
    pub(super) fn first(&self, h: u64) -> usize {
        h as usize & (self.slots.len() - 1)
    }

    /// The position `eq` accepts, or the empty slot where it would go. `eq` is asked only of
    /// the positions whose tag is `h`'s.
    pub(super) fn find(&self, h: u64, eq: impl Fn(u32) -> bool) -> Result<u32, usize> {
        let (mask, t) = (self.slots.len() - 1, tag(h));
        let mut i = self.first(h);
        loop {
            match self.slots[i] {
                EMPTY => return Err(i),
                p if self.tags[i] == t && eq(p) => return Ok(p),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The position of the number of hash `h`, as far as the tags tell (a wrong one once in
    /// 256 probes): what the fetch ahead reads, its slots and tags fetched earlier.
    #[inline]
    pub(super) fn guess(&self, h: u64) -> Option<u32> {
        let (mask, t) = (self.slots.len() - 1, tag(h));
        let mut i = self.first(h);
        for _ in 0..GUESS_PROBES {
            match self.slots[i] {
                EMPTY => return None,
                p if self.tags[i] == t => return Some(p),
                _ => i = (i + 1) & mask,
            }
        }
        None
    }

    /// The slot holding the position `eq` accepts.
    pub(super) fn slot_of(&self, h: u64, eq: impl Fn(u32) -> bool) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.first(h);
        loop {
            match self.slots[i] {
                EMPTY => return Err(i),
                p if eq(p) => return Ok(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Takes position `pos` out, shifting back the entries after it that probed past its slot
    /// (no tombstones: lookups stay as short as they were).
    pub(super) fn remove(&mut self, pos: u32, hash_of: impl Fn(u32) -> u64) {
        let Ok(mut hole) = self.slot_of(hash_of(pos), |p| p == pos) else { return };
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let p = self.slots[j];
            if p == EMPTY {
                break;
            }
            let home = self.first(hash_of(p));
            // `p` may move to the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.slots[hole] = p;
                self.tags[hole] = self.tags[j];
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
    }

    /// Puts `pos`, of hash `h`, in the empty slot `at` (from `find`); false when the table must
    /// grow first.
    pub(super) fn insert(&mut self, at: usize, pos: u32, h: u64) -> bool {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            return false;
        }
        self.slots[at] = pos;
        self.tags[at] = tag(h);
        self.len += 1;
        true
    }

    pub(super) fn grow(&mut self, hash_of: impl Fn(u32) -> u64) {
        let n = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; n]);
        self.tags = vec![0; n];
        for p in old.into_iter().filter(|p| *p != EMPTY) {
            let h = hash_of(p);
            if let Err(at) = self.find(h, |_| false) {
                self.slots[at] = p;
                self.tags[at] = tag(h);
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
        for (i, &p) in ix.slots.iter().enumerate().filter(|(_, p)| **p != EMPTY) {
            assert_eq!(ix.tags[i], tag(hash(p)), "slot {i} holds {p}");
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
        let first_slot_only = (0..100_000).filter(|&p| ix.slots[ix.first(hash(p))] == p).count();
        // A wrong tag match ahead of the number, or a number eight slots or more from its first:
        // a few in a thousand. The first slot alone is right for about three in four.
        assert!(right >= 99_000, "{right} of 100,000 guessed right");
        assert!(first_slot_only < 90_000, "{first_slot_only}: the test table is not crowded enough to tell");
    }
}
