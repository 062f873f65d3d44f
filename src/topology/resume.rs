//! Checkpoints around a run: the writer, the last good checkpoint to resume from, and the
//! engine run that takes them (and waits for the last one to be written).

use super::error::{Error, doing};
use crate::config::Config;
use crate::engine::Sink;
use crate::engine::{self, EngineOptions, Summary};
use crate::refdata::{RefData, Subscribers};
use crate::rules::RuleSet;
use crate::source::Tracker;
use crate::state::checkpoint::StreamPos;
use crate::state::checkpoint::{self, CheckpointConfig, Stored, Writer};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// A run's checkpoints: the writer, the last good checkpoint to resume from, and where the
/// sources' positions are read from when one is taken.
pub struct Resume {
    pub writer: Writer,
    pub cfg: CheckpointConfig,
    pub loaded: Option<Stored>,
    pub tracker: Option<Arc<Tracker>>,
}

impl Resume {
    /// The config's checkpoints (`None` without a `[checkpoint]` section): opens the directory
    /// and reads the last good checkpoint in it, saying which.
    pub fn open(cfg: &Config) -> Result<Option<Resume>, Error> {
        let Some(c) = &cfg.checkpoint else { return Ok(None) };
        let writer =
            Writer::start(c).map_err(doing(|| format!("opening the checkpoint directory {}", c.dir.display())))?;
        let loaded = checkpoint::load_latest(&c.dir, &mut |msg| eprintln!("tidings: {msg}"))?;
        match &loaded {
            Some(l) => eprintln!(
                "tidings: resuming from checkpoint {} (after batch {}, input position {}, {} subscribers, taken {}; rules {})",
                l.path.display(),
                l.meta.id,
                l.meta.router.pos,
                l.meta.subscribers,
                chrono::DateTime::from_timestamp_millis(l.meta.taken_at).map_or_else(String::new, |t| t.to_rfc3339()),
                l.meta.rules_version
            ),
            None => eprintln!("tidings: no checkpoint in {}: starting from the beginning", c.dir.display()),
        }
        Ok(Some(Resume { writer, cfg: c.clone(), loaded, tracker: None }))
    }

    /// Checkpoints as `cfg` says into a writer of their own, starting afresh (`bench`).
    pub fn fresh(cfg: CheckpointConfig) -> Result<Resume, Error> {
        Ok(Resume { writer: Writer::start(&cfg)?, cfg, loaded: None, tracker: None })
    }

    /// Where the sources start.
    pub fn positions(&self) -> &[StreamPos] {
        self.loaded.as_ref().map_or(&[], |l| &l.meta.sources)
    }
}

/// What the engine computes with: the compiled rules, the reference data and the subscribers.
pub struct Parts {
    pub rules: Arc<RuleSet>,
    pub refdata: Arc<RefData>,
    pub subscribers: Subscribers,
}

/// Runs the engine, with checkpoints when `resume` is set (waiting for the last one to be
/// written before returning).
pub fn run_engine(
    input: impl Iterator<Item = engine::Input>,
    parts: Parts,
    resume: Option<Resume>,
    opts: &EngineOptions,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
) -> Result<Summary, Error> {
    let Parts { rules, refdata, subscribers } = parts;
    let Some(mut r) = resume else {
        return Ok(engine::run(input, rules, refdata, subscribers, opts, sink, stop)?);
    };
    let tracker = r.tracker.take();
    let positions = move || tracker.as_ref().map_or_else(Vec::new, |t| t.positions());
    let durable = engine::Durable::new(&r.writer, &r.cfg, &positions, r.loaded.take());
    let summary =
        engine::run_durable(input, engine::Setup { rules, refdata, subscribers }, opts, sink, stop, Some(durable));
    r.writer.finish();
    Ok(summary?)
}
