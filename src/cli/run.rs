//! `tidings run` and `tidings deliver`: the config's run, built (every mistake in the config
//! said at once) and then run; and the delivery of what an outbox holds.

use anyhow::Result;
use std::path::Path;
use std::sync::Arc;
use tidings::topology::{ConfigFile, Delivery, Overrides, Topology, stop_flag};

pub fn run(config: &Path, overrides: Overrides) -> Result<i32> {
    Topology::load(config, overrides)?.run()?;
    Ok(0)
}

/// Delivers what the outbox holds and returns when it is drained.
pub fn deliver(config: &Path) -> Result<i32> {
    let cfg = ConfigFile::load(config)?;
    let Some(d) = cfg.delivery.clone() else {
        anyhow::bail!("{}: no [delivery] section: nothing to deliver to", config.display());
    };
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    let delivery = Delivery::start(d, offset, Arc::new(tokio::sync::Notify::new()), stop_flag(), None)?;
    delivery.finish()?;
    Ok(0)
}
