//! Cell ids to their index in the reference cells: open addressing with linear probing, the id
//! kept inline in its slot. Every event that names a cell looks it up; the shard works out the
//! slot of an event a few places ahead and fetches it into the cache ([`CellIndex::prefetch`]),
//! where a general hash map's lookup would itself wait on that miss.

use super::CellId;
use crate::util::SmallStr;
use std::hash::BuildHasher;

#[derive(Debug, Clone)]
pub(super) struct CellIndex {
    /// A cell's id and index; `EMPTY` for none. At most half full.
    slots: Vec<(SmallStr, CellId)>,
    len: usize,
}

const EMPTY: CellId = CellId::MAX;

impl Default for CellIndex {
    fn default() -> Self {
        CellIndex { slots: vec![(SmallStr::from(""), EMPTY); 16], len: 0 }
    }
}

fn hash(id: &str) -> u64 {
    foldhash::fast::FixedState::default().hash_one(id)
}

impl CellIndex {
    fn first(&self, id: &str) -> usize {
        hash(id) as usize & (self.slots.len() - 1)
    }

    /// The slot holding `id`, or the empty one where it would go.
    fn slot(&self, id: &str) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.first(id);
        while self.slots[i].1 != EMPTY && self.slots[i].0.as_str() != id {
            i = (i + 1) & mask;
        }
        i
    }

    pub(super) fn get(&self, id: &str) -> Option<CellId> {
        let (_, c) = &self.slots[self.slot(id)];
        (*c != EMPTY).then_some(*c)
    }

    /// Puts `id` at `c` (replacing where it was).
    pub(super) fn insert(&mut self, id: &str, c: CellId) {
        if (self.len + 1) * 2 > self.slots.len() {
            let bigger = vec![(SmallStr::from(""), EMPTY); self.slots.len() * 2];
            for (k, v) in std::mem::replace(&mut self.slots, bigger).into_iter().filter(|(_, v)| *v != EMPTY) {
                let at = self.slot(k.as_str());
                self.slots[at] = (k, v);
            }
        }
        let at = self.slot(id);
        if self.slots[at].1 == EMPTY {
            self.len += 1;
        }
        self.slots[at] = (SmallStr::from(id), c);
    }

    /// Fetches the first slot of `id` into the cache (where it lies, mostly).
    #[inline]
    pub(super) fn prefetch(&self, id: &str) {
        crate::util::prefetch(&self.slots[self.first(id)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_id_put_in_after_growing_and_replacing_and_none_other() {
        let mut ix = CellIndex::default();
        let id = |i: u32| format!("460-00-{}-{}", 4100 + i % 17, 50_000 + i * 7);
        for i in 0..5_000 {
            ix.insert(&id(i), i);
        }
        ix.insert(&id(42), 9_999);
        assert_eq!(ix.len, 5_000);
        assert!((0..5_000).all(|i| ix.get(&id(i)) == Some(if i == 42 { 9_999 } else { i })));
        assert_eq!(ix.get("460-00-1-1"), None);
        assert_eq!(ix.get(""), None);
        // Ids longer than a small string keeps inline are found alike.
        let long = "a-cell-id-longer-than-twenty-two-bytes";
        ix.insert(long, 7);
        assert_eq!(ix.get(long), Some(7));
        ix.prefetch(long);
    }
}
