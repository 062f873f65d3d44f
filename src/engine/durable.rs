//! Checkpoints during a run: when the router takes the next one, and what it records.

use crate::rules::RuleSet;
use crate::state::checkpoint::StreamPos;
use crate::state::checkpoint::{self, Meta, Part, RouterState};
use std::sync::{Arc, mpsc};

/// Checkpoints during a run, and the checkpoint it resumes from.
pub struct Durable<'a> {
    pub writer: &'a checkpoint::Writer,
    /// Take one after this many events (0: not by count).
    pub every_events: u64,
    /// Take one after this much wall time (zero: not by time).
    pub every: std::time::Duration,
    /// Longest a shard copies state between two batches while one is being taken.
    pub slice: std::time::Duration,
    /// The sources' positions just after the last item the engine took.
    pub positions: &'a dyn Fn() -> Vec<StreamPos>,
    /// The checkpoint to start from (its sources are already positioned by the caller).
    pub restore: Option<checkpoint::Stored>,
}

impl<'a> Durable<'a> {
    /// Checkpoints into `writer` as often as `cfg` says.
    pub fn new(
        writer: &'a checkpoint::Writer,
        cfg: &checkpoint::CheckpointConfig,
        positions: &'a dyn Fn() -> Vec<StreamPos>,
        restore: Option<checkpoint::Stored>,
    ) -> Durable<'a> {
        Durable { writer, every_events: cfg.every_events, every: cfg.every, slice: cfg.slice, positions, restore }
    }
}

/// The router's side of checkpointing: when the next one is due and what it records.
pub(super) struct Ckpt<'a> {
    pub(super) to: mpsc::Sender<Part>,
    pub(super) writer: &'a checkpoint::Writer,
    pub(super) every_events: u64,
    pub(super) every: std::time::Duration,
    pub(super) positions: &'a dyn Fn() -> Vec<StreamPos>,
    pub(super) shards: usize,
    pub(super) rules: Arc<RuleSet>,
    pub(super) last_pos: u64,
    pub(super) last_at: std::time::Instant,
}

impl Ckpt<'_> {
    pub(super) fn due(&self, pos: u64) -> bool {
        pos > self.last_pos
            && !self.writer.busy()
            && ((self.every_events > 0 && pos - self.last_pos >= self.every_events)
                || (!self.every.is_zero() && self.last_at.elapsed() >= self.every))
    }

    /// Starts checkpoint `no` (taken after that batch); returns what the shards need and the
    /// part of its meta known now.
    pub(super) fn begin(&mut self, no: u64, router: RouterState) -> (mpsc::Sender<Part>, Box<Meta>) {
        self.last_pos = router.pos;
        self.last_at = std::time::Instant::now();
        self.writer.begin(no, self.shards);
        let meta = Meta {
            id: no,
            router,
            sources: (self.positions)(),
            rules_version: self.rules.version.to_string(),
            rules: self.rules.shape(),
            ..Meta::default()
        };
        (self.to.clone(), Box::new(meta))
    }
}

/// Whether a batch ends with a checkpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    /// When one is due (by events or by time).
    IfDue,
    /// Now (the last one before the end of input).
    Now,
    /// Not after this batch.
    Never,
}
