//! The subscriber table's index: where in the table each subscriber number is.

/// Positions in the subscriber vectors by number: open addressing with linear probing over
/// `u32` slots, at most three quarters full. A number's first slot follows from its hash alone,
/// so the pipeline can fetch it, and then the entry it points at, into the cache a few events
/// before they are needed (a general hash table's lookup would itself stall on those misses).
/// 4 bytes a slot: 5 to 11 bytes a subscriber.
pub(super) struct NumberIndex {
    pub(super) slots: Vec<u32>,
    len: usize,
}

const EMPTY: u32 = u32::MAX;

impl Default for NumberIndex {
    fn default() -> Self {
        NumberIndex::with_capacity(0)
    }
}

impl NumberIndex {
    pub(super) fn with_capacity(n: usize) -> NumberIndex {
        NumberIndex { slots: vec![EMPTY; (n * 4 / 3 + 1).next_power_of_two().max(16)], len: 0 }
    }

    #[inline]
    pub(super) fn first(&self, h: u64) -> usize {
        h as usize & (self.slots.len() - 1)
    }

    /// The position `eq` accepts, or the empty slot where it would go.
    pub(super) fn find(&self, h: u64, eq: impl Fn(u32) -> bool) -> Result<u32, usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.first(h);
        loop {
            match self.slots[i] {
                EMPTY => return Err(i),
                p if eq(p) => return Ok(p),
                _ => i = (i + 1) & mask,
            }
        }
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
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
    }

    /// Puts `pos` in the empty slot `at` (from `find`); false when the table must grow first.
    pub(super) fn insert(&mut self, at: usize, pos: u32) -> bool {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            return false;
        }
        self.slots[at] = pos;
        self.len += 1;
        true
    }

    pub(super) fn grow(&mut self, hash_of: impl Fn(u32) -> u64) {
        let bigger = vec![EMPTY; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, bigger);
        for p in old.into_iter().filter(|p| *p != EMPTY) {
            if let Err(at) = self.find(hash_of(p), |_| false) {
                self.slots[at] = p;
            }
        }
    }
}
