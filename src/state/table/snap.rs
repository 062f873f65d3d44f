//! Copying the table for a checkpoint while events go on changing it.
//!
//! A checkpoint holds the subscribers as they were at one batch boundary, but copying ten
//! million of them at once would hold the shard for seconds. So the copy goes in slices between
//! batches (copy-before-modify): the table marks which subscribers of the boundary are copied,
//! and one a batch is about to change before the slices reach it is copied first, as it was
//! ([`SubTable::at`]). What a copy is encoded into, and where it goes, is the shard's business.

use super::SubTable;
use crate::refdata::Profile;
use crate::state::SubState;
use std::time::{Duration, Instant};

/// Copy-before-modify for a checkpoint in progress: the subscribers that were in the table at
/// the checkpoint's batch boundary (`upto`), how far the background pass is (`cursor`), which
/// of them are copied already, and copies of those a batch was about to change before the
/// background pass reached them.
pub(super) struct SnapMarks {
    upto: u32,
    cursor: u32,
    copied: Vec<u64>,
    pub(super) saved: Vec<(Profile, SubState)>,
}

impl SnapMarks {
    pub(super) fn is_copied(&self, i: u32) -> bool {
        i >= self.upto || self.copied[i as usize / 64] & (1 << (i % 64)) != 0
    }
    pub(super) fn mark(&mut self, i: u32) {
        self.copied[i as usize / 64] |= 1 << (i % 64);
    }
}

impl SubTable {
    /// Starts copying the table for a checkpoint: the subscribers present now, as they are now.
    /// A copy still in progress must be finished first.
    pub fn snapshot_begin(&mut self) {
        let upto = self.len() as u32;
        self.snap = Some(Box::new(SnapMarks {
            upto,
            cursor: 0,
            copied: vec![0; (upto as usize).div_ceil(64)],
            saved: Vec::new(),
        }));
    }

    /// A checkpoint's copy is in progress.
    pub fn snapshotting(&self) -> bool {
        self.snap.is_some()
    }

    /// Hands the checkpoint's subscribers not copied yet to `copy`, for at most about
    /// `budget`: first those a batch saved before changing them, then the background pass in
    /// table order. Returns whether some are left; when none are, the copy is over.
    pub fn snapshot_copy(&mut self, budget: Duration, mut copy: impl FnMut(&Profile, &SubState)) -> bool {
        let Some(marks) = self.snap.as_mut() else { return false };
        let t0 = Instant::now();
        // Both within the budget (a subscriber is saved once at most, so the saved ones cannot
        // pile up past the table).
        let mut n = 0u32;
        while let Some((p, st)) = marks.saved.pop() {
            copy(&p, &st);
            n += 1;
            if n.is_multiple_of(64) && t0.elapsed() >= budget {
                return true;
            }
        }
        while marks.cursor < marks.upto {
            let i = marks.cursor;
            marks.cursor += 1;
            if marks.is_copied(i) {
                continue;
            }
            marks.mark(i);
            copy(&self.profiles[i as usize], &self.states[i as usize]);
            n += 1;
            if n.is_multiple_of(64) && t0.elapsed() >= budget {
                return true;
            }
        }
        // Every subscriber of the boundary is copied.
        self.snap = None;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Msisdn;
    use std::collections::HashMap;

    #[test]
    fn a_checkpoint_copy_holds_every_subscriber_once_as_at_the_boundary_though_batches_change_them() {
        let m = |i: u64| Msisdn::from_raw(13_900_000_000 + i * 11);
        let mut t = SubTable::new((0..1000).map(|i| Profile::unknown(m(i))).collect(), usize::MAX);
        for i in 0..1000 {
            if let Some(e) = t.get_mut(m(i)) {
                e.state.begin(0, Some(i as i64));
            }
        }
        t.snapshot_begin();
        assert!(t.snapshotting());
        let mut copied: HashMap<u64, Option<i64>> = HashMap::new();
        let mut take = |p: &Profile, st: &SubState| {
            assert!(copied.insert(p.msisdn.raw(), st.balance()).is_none(), "copied twice");
        };
        // A first slice, then a batch changes every tenth subscriber and adds new ones (not
        // part of this checkpoint), then the rest.
        assert!(t.snapshot_copy(Duration::ZERO, &mut take), "a zero budget stops after 64");
        for i in (0..1000).step_by(10) {
            if let Some(e) = t.get_mut(m(i)) {
                e.state.begin(1, Some(-1));
            }
        }
        for i in 1000..1100 {
            t.get_or_insert(m(i), || Profile::unknown(m(i))).state.begin(1, Some(-1));
        }
        while t.snapshot_copy(Duration::ZERO, &mut take) {}
        assert!(!t.snapshotting());
        assert_eq!(copied.len(), 1000, "the subscribers of the boundary, none added since");
        assert!((0..1000).all(|i| copied[&m(i).raw()] == Some(i as i64)), "each as it was at the boundary");
        assert_eq!(t.get_mut(m(10)).and_then(|e| e.state.balance()), Some(-1), "the table itself moved on");
    }
}
