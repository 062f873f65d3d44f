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
/// bucket, then distinct counts), dropping buckets that left the window, and — a count every
/// read of which compares it with a constant below `cap` (`cap > 0`, see [`AggCap`]) — the
/// buckets older than the newest ones that hold `cap` events between them. Whether it made a
/// new bucket.
pub(super) fn agg_add_to(v: &mut dyn BucketList, slot: u32, ts: Millis, amount: i64, def: AggCap) -> bool {
    let AggCap { bucket, window, cap } = def;
    let idx = ts.div_euclid(bucket);
    let range = slot_range(v, slot);
    let found = v[range.clone()].binary_search_by_key(&idx, AggBucket::idx);
    // A bucket is dead once its end is at or before the window start of the newest one.
    let newest = match found {
        Err(i) if range.start + i == range.end => idx,
        _ => v[range.end - 1].idx(),
    };
    let oldest_live = (newest * bucket - window).div_euclid(bucket);
    let mut dead = v[range.clone()].iter().take_while(|b| b.idx() < oldest_live).count();
    let made = match found {
        Ok(i) => {
            v[range.start + i].sum += amount;
            false
        }
        // Already out of the window: nothing to keep.
        Err(_) if idx < oldest_live => false,
        // The dead ones are all before the new one (they are older than the window).
        Err(i) => {
            if cap > 0 {
                // The newest buckets, the new one among them, that hold `cap` events: the
                // older ones can change no read (see `AggCap`).
                let mut held = 0;
                let mut keep = 0;
                for b in v[range.start + i..range.end]
                    .iter()
                    .rev()
                    .map(|b| b.sum)
                    .chain([amount])
                    .chain(v[range.start..range.start + i].iter().rev().map(|b| b.sum))
                {
                    keep += 1;
                    held += b;
                    if held >= cap {
                        break;
                    }
                }
                dead = dead.max((range.len() + 1).saturating_sub(keep));
            }
            let at = range.start + i;
            if dead > i {
                // A late event's bucket, older than the newest `cap` events: not kept.
                v.cut(range.start..range.start + dead - 1);
                return false;
            }
            if dead > 0 {
                // One in, some out: the new bucket takes the place the older ones leave (the
                // list is resized once at most, not grown and shrunk).
                v.copy_within(range.start + dead..at, range.start + dead - 1);
                v[at - 1] = AggBucket::new(slot, idx, amount);
                if dead > 1 {
                    v.cut(range.start..range.start + dead - 1);
                }
                return true;
            }
            v.put(at, AggBucket::new(slot, idx, amount));
            true
        }
    };
    if dead > 0 {
        v.cut(range.start..range.start + dead);
    }
    made
}

/// How a window slot keeps its buckets: their width, the longest window read from them and, for
/// a count that every read compares with a constant (`count(X, 60d) >= 3`, `== 0`), the fewest
/// events the newest kept buckets must hold (`cap`, 0: every bucket of the window is kept).
/// Such a read gives the same answer from the newest buckets holding `cap` events as from all:
/// the older ones either lie outside its window too, or the count is `cap` or more either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggCap {
    pub bucket: i64,
    pub window: i64,
    pub cap: i64,
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

#[cfg(test)]
mod tests {
    use super::{AggBuf, AggCap};
    use crate::state::SubState;
    use crate::time::{DAY, HOUR};

    #[test]
    fn a_count_keeping_its_newest_events_reads_as_the_whole_window_up_to_them() {
        // Three count slots in one list (bucket, window, events kept); events in order and late,
        // one slot at a time (the list changed in place) and several at once (through a copy).
        let defs = [
            AggCap { bucket: 12 * HOUR, window: 60 * DAY, cap: 3 },
            AggCap { bucket: HOUR, window: 2 * DAY, cap: 1 },
            AggCap { bucket: 3 * HOUR, window: 7 * DAY, cap: 5 },
        ];
        let whole = |slot: u32| AggCap { cap: 0, ..defs[slot as usize] };
        let (mut kept, mut all) = (SubState::default(), SubState::default());
        let (mut buf, mut made) = (AggBuf::default(), Vec::new());
        let (mut x, mut newest) = (11u64, 0i64);
        for step in 0..4_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let ts = match (x >> 8) % 8 {
                0 => newest - ((x >> 30) % (20 * DAY as u64)) as i64,
                _ => {
                    newest += ((x >> 20) % (30 * HOUR as u64)) as i64;
                    newest
                }
            };
            let adds: Vec<(u32, i64)> = match (x >> 56) % 4 {
                3 => vec![(0, 1), (1, 1), (2, 1)],
                n => vec![(n as u32 % 3, 1)],
            };
            kept.agg_add_all(&adds, ts, |s| defs[s as usize], &mut buf, &mut made);
            all.agg_add_all(&adds, ts, whole, &mut buf, &mut made);
            for (k, d) in defs.iter().enumerate() {
                for (now, window) in [(newest, d.window), (newest, d.window / 2), (newest + 3 * DAY, d.window)] {
                    let read = |s: &SubState| s.agg_value_window(k as u32, now, d.bucket, window).min(d.cap);
                    assert_eq!(read(&kept), read(&all), "slot {k} at step {step}, window {window}");
                }
            }
        }
        assert!(kept.agg_buckets() <= 3 + 1 + 5, "the newest events kept: {}", kept.agg_buckets());
        assert!(all.agg_buckets() > 20, "the whole windows kept: {}", all.agg_buckets());
    }
}
