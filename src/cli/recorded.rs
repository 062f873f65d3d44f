//! What `replay`, `explain` and `diff` read: recorded event files, the reference data and
//! rules they ran with, and the config whose policy and time settings applied.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use tidings::config::Config;
use tidings::engine::EngineOptions;
use tidings::event::Decoder;

/// What `replay` and `explain` read: recorded streams, the data and rules they ran with, and
/// the config whose policy applied (the same as live, so a replay decides alike).
#[derive(clap::Args)]
pub struct Recorded {
    /// Event files (JSON Lines); several are merged by event time.
    #[arg(long, required = true, num_args = 1..)]
    pub events: Vec<PathBuf>,
    /// Reference data directory.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, default_value = "rules")]
    pub rules: Vec<PathBuf>,
    /// Engine config for contact policy and time settings.
    #[arg(long, default_value = "config/tidings.toml")]
    pub config: PathBuf,
    /// Advance event time to this RFC 3339 time at the end (fires timers due by then).
    #[arg(long)]
    pub until: Option<String>,
    /// A live run's dead letters (`dead_letters.jsonl`): the lines it refused as stamped ahead
    /// of the host's clock (reason `future`) are refused here too, so that the replay decides
    /// what the live run decided.
    #[arg(long)]
    pub refused: Vec<PathBuf>,
}

impl Recorded {
    /// The decoder for the recorded streams: it refuses what the live run refused by its clock.
    pub fn decoder(&self) -> Result<Decoder> {
        let mut lines = std::collections::HashSet::new();
        for path in &self.refused {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let dl: serde_json::Value = serde_json::from_str(line)
                    .with_context(|| format!("{}:{}: not a dead letter (JSON)", path.display(), i + 1))?;
                if dl["reason"] == "future" && dl["truncated"] != true {
                    if let Some(raw) = dl["raw"].as_str() {
                        lines.insert(raw.as_bytes().into());
                    }
                }
            }
        }
        Ok(Decoder { refused: (!lines.is_empty()).then(|| Arc::new(lines)), ..Decoder::default() })
    }

    /// One shard, the config's policy and time settings; `trace` for `explain`.
    pub fn options(&self, cfg: &Config, trace: Option<tidings::util::Msisdn>) -> Result<EngineOptions> {
        Ok(EngineOptions {
            shards: 1,
            batch: cfg.engine.batch,
            lateness: cfg.lateness().map_err(anyhow::Error::msg)?,
            offset: cfg.offset().map_err(anyhow::Error::msg)?,
            until: self.until()?,
            policy: cfg.resolved_policy.clone(),
            capacity: cfg.capacity,
            trace,
            latency_sample: 0,
            realtime: 0,
            guard: cfg.guard().map_err(anyhow::Error::msg)?,
            clock_start: tidings::time::Millis::MIN,
            slice: cfg.slice().map_err(anyhow::Error::msg)?,
            heartbeat: None,
            requests_only: None,
            budget_share: 1.0,
            campaigns: None,
            funnel: None,
            journeys: None,
        })
    }

    pub fn until(&self) -> Result<Option<tidings::time::Millis>> {
        self.until.as_deref().map(|u| tidings::time::parse_ts(u).map_err(anyhow::Error::msg)).transpose()
    }
}
