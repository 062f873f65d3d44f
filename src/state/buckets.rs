//! A subscriber's window buckets changed by an event: where a slot's buckets are in the list,
//! and adding an amount to one (a bucket opened, those that left the window dropped), on the
//! subscriber's own list or on a copy of it.

use super::AggBucket;
use crate::time::Millis;
use crate::util::ThinSlice;

/// A copy of a subscriber's window buckets that [`SubState::agg_add_all`] edits, kept by the
/// caller from event to event (no allocation for it per event).
#[derive(Default)]
pub struct AggBuf(pub(super) Vec<AggBucket>);

/// The range of `list` (window buckets sorted by slot and bucket) holding `slot`'s buckets.
pub(super) fn slot_range(list: &[AggBucket], slot: u32) -> std::ops::Range<usize> {
    let lo = u64::from(slot) << 48;
    let start = list.partition_point(|b| b.key < lo);
    // A slot holds a few buckets: walking them beats a second search.
    let end = start + list[start..].iter().take_while(|b| b.slot() == slot).count();
    start..end
}

/// Adds `amount` at `ts` to aggregate `slot` of the list `v` (window buckets sorted by slot and
/// bucket, then distinct counts), dropping buckets that left the window. Whether it made a new
/// bucket.
pub(super) fn agg_add_to(v: &mut dyn BucketList, slot: u32, ts: Millis, amount: i64, bucket: i64, window: i64) -> bool {
    let idx = ts.div_euclid(bucket);
    let range = slot_range(v, slot);
    let found = v[range.clone()].binary_search_by_key(&idx, AggBucket::idx);
    // A bucket is dead once its end is at or before the window start of the newest one.
    let newest = match found {
        Err(i) if range.start + i == range.end => idx,
        _ => v[range.end - 1].idx(),
    };
    let oldest_live = (newest * bucket - window).div_euclid(bucket);
    let dead = v[range.clone()].iter().take_while(|b| b.idx() < oldest_live).count();
    let dead_range = range.start..range.start + dead;
    let made = match found {
        Ok(i) => {
            v[range.start + i].sum += amount;
            false
        }
        // Already out of the window: nothing to keep.
        Err(_) if idx < oldest_live => false,
        // The dead ones are all before the new one (they are older than the window).
        Err(i) => {
            v.put(range.start + i, AggBucket::new(slot, idx, amount));
            true
        }
    };
    if !dead_range.is_empty() {
        v.cut(dead_range);
    }
    made
}

/// A list of window buckets [`agg_add_to`] changes: a subscriber's own (resized in place where
/// the allocator can) or a copy of it.
pub(super) trait BucketList: std::ops::DerefMut<Target = [AggBucket]> {
    fn put(&mut self, at: usize, b: AggBucket);
    fn cut(&mut self, range: std::ops::Range<usize>);
}

impl BucketList for Vec<AggBucket> {
    fn put(&mut self, at: usize, b: AggBucket) {
        self.insert(at, b);
    }
    fn cut(&mut self, range: std::ops::Range<usize>) {
        self.drain(range);
    }
}

impl BucketList for ThinSlice<AggBucket> {
    fn put(&mut self, at: usize, b: AggBucket) {
        self.splice(at..at, &[b]);
    }
    fn cut(&mut self, range: std::ops::Range<usize>) {
        self.splice(range, &[]);
    }
}
