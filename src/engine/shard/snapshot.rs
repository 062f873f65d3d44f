//! Checkpoints on a shard: its subscribers encoded in slices between batches and sent to the
//! checkpoint writer, and put back from a checkpoint at start.
//!
//! The table keeps the copy consistent while batches go on changing it (see
//! `state::table`); here the copies are encoded and sent on in slices of about
//! [`SNAP_CHUNK`] bytes.

use super::Shard;
use crate::codec::Enc;
use crate::refdata::{Names, Profile};
use crate::state::SubState;
use crate::state::checkpoint::Part;
use crate::time::Millis;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// A checkpoint being taken by one shard: what is encoded and not yet sent, and where it goes.
pub(super) struct SnapJob {
    id: u64,
    enc: Enc,
    count: u32,
    ticks: (Vec<(Millis, u32)>, bool),
    to: Sender<Part>,
}

/// Encoded records sent to the writer in slices of about this many bytes. Small: a fresh
/// buffer's pages are faulted in as it fills, and 4 MiB of them cost a pause of several ms.
const SNAP_CHUNK: usize = 256 << 10;

impl Shard {
    /// Starts copying this shard's state into checkpoint `id` (at a batch boundary): the
    /// subscribers present now, as they are now. The copy proceeds in [`Shard::snapshot_step`]
    /// slices; a subscriber a later batch changes first is copied just before it changes.
    ///
    /// Returns the time spent finishing a checkpoint still in progress first (the last one of a
    /// run, taken at the end of the input whether or not the one before is done).
    pub fn snapshot_begin(&mut self, id: u64, to: Sender<Part>) -> Duration {
        let t0 = Instant::now();
        self.snapshot_finish();
        let finishing = t0.elapsed();
        self.subs.snapshot_begin();
        self.snapshot = Some(SnapJob { id, enc: Default::default(), count: 0, ticks: self.ticks.saved(), to });
        finishing
    }

    /// A checkpoint is being copied.
    pub fn snapshotting(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Copies subscribers into the checkpoint in progress for at most about `budget`; sends
    /// the shard's last slice when done. Returns whether a checkpoint is still in progress.
    pub fn snapshot_step(&mut self, budget: Duration) -> bool {
        let Some(job) = self.snapshot.as_mut() else { return false };
        let (names, refdata) = (&self.names, &self.refdata);
        let more = self.subs.snapshot_copy(budget, |p, st| {
            if job.enc.buf.is_empty() {
                job.enc.u32(0);
            }
            p.encode(&mut job.enc, names);
            st.encode(&mut job.enc, refdata);
            job.count += 1;
            if job.enc.buf.len() >= SNAP_CHUNK {
                send_slice(job);
            }
        });
        if more {
            return true;
        }
        // Every subscriber of the boundary is copied.
        send_slice(job);
        let _ = job.to.send(Part::ShardDone { id: job.id, ticks: job.ticks.clone() });
        self.snapshot = None;
        false
    }

    /// Finishes the checkpoint in progress at once (before a sweep over every subscriber, and
    /// at the end of the input).
    pub fn snapshot_finish(&mut self) {
        while self.snapshot_step(Duration::MAX) {}
    }

    /// Puts a subscriber back as a checkpoint holds it, replacing what the reference data
    /// loaded; `remap` carries state taken under another rule set over to this one, counting
    /// into `dropped` what it leaves behind.
    pub fn restore_subscriber(
        &mut self,
        p: Profile,
        st: SubState,
        remap: Option<&crate::state::Remap>,
        dropped: &mut crate::state::Dropped,
    ) {
        let m = p.msisdn;
        self.pristine = false;
        self.pins.clear();
        self.held.clear();
        self.activity.clear();
        self.settled.clear();
        self.quiet.clear();
        let e = self.subs.get_or_insert(m, || p.clone());
        *e.sub = p;
        *e.state = st;
        if let Some(r) = remap {
            r.count_dropped(e.state, dropped);
            e.state.remap(r);
        }
        for t in e.state.timers() {
            self.timers.insert(t.index_key(m.raw()));
        }
        if !e.state.journeys().is_empty() {
            for j in e.state.journeys_mut() {
                // As the rules say now (the checkpoint may have been taken under others).
                j.due = self.rules.journey_next_due(j, self.offset);
                if let Some(s) = self.rules.steps.get(j.step as usize) {
                    self.journey_due.add((j.due, m.raw(), s.journey), j.step);
                }
            }
        }
    }

    /// Puts the daily ticks back as a checkpoint holds them (rules added since start ticking
    /// after `now`).
    pub fn restore_ticks(&mut self, ticks: Vec<(Millis, u32)>, started: bool, now: Millis) {
        self.ticks.set(ticks, started, &self.rules, now, self.offset);
    }

    /// The strings of this shard's records, to decode checkpointed records into.
    pub fn names_mut(&mut self) -> &mut Names {
        &mut self.names
    }
}

fn send_slice(job: &mut SnapJob) {
    if job.enc.buf.is_empty() {
        return;
    }
    let mut bytes = std::mem::replace(&mut job.enc.buf, Vec::with_capacity(SNAP_CHUNK + (16 << 10)));
    bytes[..4].copy_from_slice(&job.count.to_le_bytes());
    job.count = 0;
    let _ = job.to.send(Part::Records { id: job.id, bytes });
}
