//! The subcommands of `tidings`, one file each; `main.rs` parses the arguments and calls them.
//! They are modules of the binary, not of the library: they print to the terminal, exit with
//! codes, and carry their errors as `anyhow` (the binary's edge), and nothing in the library
//! needs them. A run of the config (`run`) is the library's [`tidings::topology::Topology`];
//! the others build their own small runs from its parts.

pub mod bench;
pub mod diff;
pub mod explain;
pub mod generate;
pub mod progress;
pub mod recorded;
pub mod replay;
pub mod run;
pub mod validate;

use anyhow::Result;
use std::path::{Path, PathBuf};
use tidings::config::Config;
use tidings::refdata::{RefData, Subscribers};
use tidings::rules::{LoadOptions, RuleSet};
use tidings::topology::{Said, compile_rules};

/// The rule pack compiled against `refdata`, its diagnostics printed.
pub fn load_rules(paths: &[PathBuf], refdata: &RefData, opts: &LoadOptions) -> Result<RuleSet> {
    compile_rules(paths, Some(refdata), opts, Said::All).map_err(anyhow::Error::msg)
}

/// Reference data from a directory, or none; `unknown` is `[engine] unknown_subscribers`
/// (the same as live, so a replay forgets what live forgot).
pub fn load_data(dir: Option<&Path>, unknown: usize) -> Result<(RefData, Subscribers)> {
    let (refdata, mut subs) = match dir {
        Some(d) => RefData::load_dir(d)?,
        None => Default::default(),
    };
    subs.unknown_cap = Some(unknown);
    Ok((refdata, subs))
}

/// `refdata` with the config's opt-out journal read (never written: a replay or an explain
/// must not add what-if refusals to the live journal), so refusals made live hold here too.
pub fn with_journal(mut refdata: RefData, cfg: &Config, offset: chrono::FixedOffset) -> Result<RefData> {
    if let Some(path) = cfg.optout_journal().filter(|p| p.exists()) {
        refdata.optout_journal = tidings::refdata::OptOutJournal::open(&path, offset)?.read_only();
    }
    Ok(refdata)
}

/// The config at `path`, or the defaults when there is none (replay and explain of a bare
/// directory of files).
pub fn config_or_default(path: &Path) -> Result<Config> {
    if path.exists() {
        return Ok(Config::load(path)?);
    }
    Ok(toml::from_str("")?)
}
