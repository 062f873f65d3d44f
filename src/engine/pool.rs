//! The batches' vectors that go round between the router and the shards, so that none is made
//! fresh per batch.

use super::Item;
use crate::contact::Decision;
use crate::time::Millis;
use std::sync::Arc;

/// Emptied vectors, handed back for the next batches. A fresh vector per batch grows from
/// nothing each time, and its memory comes fresh from the kernel, zeroed page by page: with a
/// live stream's small batches that was a fifth of the engine's time for the events, and in a
/// replay 4 % for the decisions (about 300 bytes each).
pub(super) struct Pool<T>(Arc<std::sync::Mutex<Vec<Vec<T>>>>);

impl<T> Clone for Pool<T> {
    fn clone(&self) -> Self {
        Pool(Arc::clone(&self.0))
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool(Arc::default())
    }
}

impl<T> Pool<T> {
    /// Most vectors kept (a few batches in flight on each shard).
    const KEEP: usize = 32;

    /// The largest vector kept: a daily tick's batch makes tens of thousands of decisions at
    /// once, and a smaller vector would grow to hold them, copied at each doubling into memory
    /// fresh from the kernel, every day.
    pub(super) fn take(&self, capacity: usize) -> Vec<T> {
        let largest = |v: &mut Vec<Vec<T>>| {
            let k = (0..v.len()).max_by_key(|k| v[*k].capacity())?;
            Some(v.swap_remove(k))
        };
        self.0.lock().ok().and_then(|mut v| largest(&mut v)).unwrap_or_else(|| Vec::with_capacity(capacity))
    }

    pub(super) fn give(&self, mut v: Vec<T>) {
        v.clear();
        if let Ok(mut spare) = self.0.lock() {
            if spare.len() < Self::KEEP {
                spare.push(v);
            }
        }
    }
}

/// The batches' vectors that go round: events, their thresholds, and the decisions.
#[derive(Clone, Default)]
pub(super) struct Spare {
    pub(super) events: Pool<Item>,
    pub(super) wms: Pool<Millis>,
    pub(super) decisions: Pool<Decision>,
}
