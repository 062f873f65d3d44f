//! What the engine writes its output to: a [`Sink`] takes decisions in output order and dead
//! letters, and is told where batches end (a durable sink syncs there). The implementations are
//! in [`crate::sink`] (files, stdout, the outbox), [`crate::api`] (IVR answers) and tests.

use crate::contact::Decision;
use crate::event::DeadLetter;

/// A destination for decisions. One required method; the rest default to nothing.
pub trait Sink {
    fn decision(&mut self, d: &Decision) -> std::io::Result<()>;
    fn dead_letter(&mut self, _d: &DeadLetter) -> std::io::Result<()> {
        Ok(())
    }
    /// The end of one batch of decisions: a point where a durable sink makes what it took
    /// safe (the outbox syncs here).
    fn batch_end(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    /// How far a durable sink has written (the outbox's length in bytes), for checkpoints.
    fn position(&self) -> Option<u64> {
        None
    }
}
