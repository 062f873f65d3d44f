//! Distinct counts (`distinct(location.cell, 1d)`): how many different values of an event field
//! a subscriber showed within a window.
//!
//! A distinct count needs the values themselves, not buckets: each slot keeps a small set of
//! (value hash, last seen). The entries live in the window buckets' thin slice
//! (`SubState::aggs`), under slot numbers above every window's ([`DISTINCT_BASE`] + slot), so a
//! subscriber no distinct count ever matched pays nothing (not even the 8 bytes of another list
//! in the packed state), and the entries travel through checkpoints and reloads with the
//! buckets. An entry is an [`AggBucket`] read differently: the low 48 bits of its key are the
//! value's stable hash (two of one subscriber's values colliding is about a 1 in 10^13 chance),
//! its `sum` the time the value was last seen.
//!
//! A set keeps at most [`DISTINCT_CAP`] values: past that, the value seen longest ago gives way,
//! so a count saturates at the cap (it never reads more than [`DISTINCT_CAP`]).

use super::{AggBucket, SubState};
use crate::time::{DAY, Millis};

/// How many distinct counts a rule pack may use: every one may hold up to [`DISTINCT_CAP`]
/// entries for a busy subscriber.
pub const MAX_DISTINCT: usize = 64;
/// How many values one subscriber's distinct count keeps (16 bytes each); a count saturates here.
pub const DISTINCT_CAP: usize = 64;
/// The longest window a distinct count may have: a value is kept as long as the window, and a
/// month is as far back as the care and marketing scenarios look at places or numbers.
pub const MAX_DISTINCT_WINDOW: i64 = 35 * DAY;
/// The state slot of distinct count 0: the top of the slot space, above every window's.
pub const DISTINCT_BASE: u32 = super::MAX_WINDOWS as u32;
const LOW48: u64 = (1 << 48) - 1;

fn entry_key(state_slot: u32, hash: u64) -> u64 {
    (u64::from(state_slot) << 48) | (hash & LOW48)
}

impl SubState {
    /// Records that value `hash` of distinct count `slot` was seen at `ts`: its last-seen time
    /// moves up, or it joins the set. Values no window read can count any more (last seen a
    /// whole window before the newest sighting) leave; past [`DISTINCT_CAP`] the value seen
    /// longest ago leaves.
    pub fn distinct_see(&mut self, slot: u32, hash: u64, ts: Millis, window: i64) {
        let state_slot = DISTINCT_BASE + slot;
        let key = entry_key(state_slot, hash);
        let range = self.agg_range(state_slot);
        let set = &self.aggs[range.clone()];
        let newest = set.iter().fold(ts, |n, e| n.max(e.sum));
        let horizon = newest - window;
        let stale = set.iter().any(|e| e.sum <= horizon);
        let found = set.binary_search_by_key(&key, |e| e.key);
        if let (Ok(i), false) = (found, stale) {
            // The common case, a value seen again: no allocation.
            let e = &mut self.aggs[range.start + i];
            e.sum = e.sum.max(ts);
            return;
        }
        if found.is_err() && !stale && ts <= horizon {
            return; // too late to count in any window still read
        }
        if let (Err(i), false) = (found, stale) {
            if range.len() < DISTINCT_CAP {
                // A new value and nothing to drop: in it goes, the list resized in place.
                let at = range.start + i;
                self.aggs.splice(at..at, &[AggBucket { key, sum: ts }]);
                return;
            }
        }
        // Values to drop, or a full set: the slot's set (at most `DISTINCT_CAP` + 1 values)
        // rebuilt and put back in one splice.
        let mut set: Vec<AggBucket> = self.aggs[range.clone()].iter().copied().filter(|e| e.sum > horizon).collect();
        match set.binary_search_by_key(&key, |e| e.key) {
            Ok(i) => set[i].sum = set[i].sum.max(ts),
            Err(i) if ts > horizon => set.insert(i, AggBucket { key, sum: ts }),
            Err(_) => {}
        }
        if set.len() > DISTINCT_CAP {
            // Seen longest ago; among equals the smallest hash, so every run drops the same.
            let oldest = set.iter().enumerate().min_by_key(|(_, e)| (e.sum, e.key)).map(|(i, _)| i);
            if let Some(i) = oldest {
                set.remove(i);
            }
        }
        self.aggs.splice(range, &set);
    }

    /// How many different values distinct count `slot` saw within `window` up to `now`.
    pub fn distinct_count(&self, slot: u32, now: Millis, window: i64) -> i64 {
        let lo = now - window;
        self.aggs[self.agg_range(DISTINCT_BASE + slot)].iter().filter(|e| e.sum > lo).count() as i64
    }
}

/// Where an entry of the slice goes in a new rule set: windows by `aggs`, distinct counts by
/// `distinct` (`None`: its definition is gone).
pub(super) fn remap_slot(slot: u32, r: &super::Remap) -> Option<u32> {
    match slot.checked_sub(DISTINCT_BASE) {
        None => r.aggs.get(slot as usize).copied().flatten(),
        Some(d) => r.distinct.get(d as usize).copied().flatten().map(|d| DISTINCT_BASE + d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{DAY, HOUR};

    #[test]
    fn a_value_counts_once_and_leaves_with_the_window() {
        let mut s = SubState::default();
        s.agg_add(0, HOUR, 1, HOUR, DAY);
        for (h, v) in [(1, 10), (2, 11), (3, 10), (4, 12)] {
            s.distinct_see(0, v, h * HOUR, DAY);
        }
        assert_eq!(s.distinct_count(0, 4 * HOUR, DAY), 3, "10 again is not new");
        assert_eq!(s.distinct_count(1, 4 * HOUR, DAY), 0, "an untouched slot is empty");
        // 11 was last seen at 2h: a day later it has left the window; 10 (last at 3h) has not.
        assert_eq!(s.distinct_count(0, DAY + 2 * HOUR, DAY), 2);
        assert_eq!(s.distinct_count(0, 2 * DAY, DAY), 0);
        // A sighting a day on drops what no window can count any more; the window slot is kept.
        s.distinct_see(0, 13, DAY + 3 * HOUR + 1, DAY);
        assert_eq!(s.agg_buckets(), 1 + 2, "the count's bucket, 12 and 13");
        assert_eq!(s.agg_value_window(0, 4 * HOUR, HOUR, DAY), 1, "the window is untouched");
    }

    #[test]
    fn a_set_saturates_at_the_cap_dropping_the_value_seen_longest_ago() {
        let mut s = SubState::default();
        for v in 0..DISTINCT_CAP as u64 + 10 {
            s.distinct_see(2, v * 7919, v as i64 * 1000, DAY);
        }
        assert_eq!(s.distinct_count(2, DAY / 2, DAY), DISTINCT_CAP as i64);
        // The first ten went (0..9, seen at 0 s..9 s). Value 0 seen again is new, the newest,
        // and value 10 (seen at 10 s), now the oldest, gives way: 11..73 and 0 are left.
        s.distinct_see(2, 0, DAY / 2, DAY);
        assert_eq!(s.distinct_count(2, DAY / 2, DAY), DISTINCT_CAP as i64);
        assert_eq!(s.distinct_count(2, DAY + 10_500, DAY), DISTINCT_CAP as i64, "11..73 and 0");
        assert_eq!(s.distinct_count(2, DAY + 11_500, DAY), DISTINCT_CAP as i64 - 1, "11 is the oldest");
        assert_eq!(s.distinct_count(2, DAY / 2 + DAY - 1, DAY), 1, "0 was seen last");
        assert_eq!(s.agg_buckets(), DISTINCT_CAP);
    }

    #[test]
    fn a_late_sighting_keeps_the_latest_time_and_one_too_late_is_not_kept() {
        let mut s = SubState::default();
        s.distinct_see(0, 1, 10 * HOUR, HOUR);
        s.distinct_see(0, 1, 9 * HOUR + 30 * 60_000, HOUR);
        assert_eq!(s.distinct_count(0, 10 * HOUR + 45 * 60_000, HOUR), 1, "still last seen at 10h");
        s.distinct_see(0, 2, 8 * HOUR, HOUR);
        assert_eq!(s.agg_buckets(), 1, "seen a window before the newest: not kept");
    }

    #[test]
    fn a_set_reads_back_from_a_checkpoint() {
        let rd = crate::refdata::RefData::default();
        let mut s = SubState::default();
        s.distinct_see(0, 5, HOUR, DAY);
        s.distinct_see(0, 6, 2 * HOUR, DAY);
        let mut e = crate::codec::Enc::default();
        s.encode(&mut e, &rd);
        let back = SubState::decode(&mut crate::codec::Dec::new(&e.buf), &rd).expect("a state decodes");
        assert_eq!(back.distinct_count(0, 2 * HOUR, DAY), 2);
        assert_eq!(back.distinct_count(0, DAY + HOUR + 1, DAY), 1, "5 left the window, 6 did not");
    }

    #[test]
    fn a_reload_moves_a_set_to_its_new_slot_or_drops_it() {
        let mut s = SubState::default();
        s.agg_add(0, HOUR, 4, HOUR, DAY);
        s.distinct_see(0, 5, HOUR, DAY);
        s.distinct_see(1, 6, HOUR, DAY);
        s.distinct_see(1, 7, HOUR, DAY);
        // Window 0 stays; distinct 0 is gone, distinct 1 becomes 0.
        s.remap(&super::super::Remap { aggs: vec![Some(0)], distinct: vec![None, Some(0)], ..Default::default() });
        assert_eq!(s.agg_value_window(0, HOUR, HOUR, DAY), 4);
        assert_eq!((s.distinct_count(0, HOUR, DAY), s.distinct_count(1, HOUR, DAY)), (2, 0));
        s.remap(&super::super::Remap { aggs: vec![None], distinct: vec![Some(3)], ..Default::default() });
        assert_eq!((s.agg_buckets(), s.distinct_count(3, HOUR, DAY)), (2, 2));
    }
}
