//! `tidings diff`: the same recorded stream through two rule packs, compared contact by
//! contact.

use super::progress::Progress;
use super::recorded::Recorded;
use super::{config_or_default, load_data, load_rules};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tidings::topology::{sources, stop_flag};

#[derive(clap::Args)]
pub struct Args {
    /// The old pack, then the new one (a rule file or directory each).
    #[arg(long, required = true, num_args = 1)]
    pub rules: Vec<PathBuf>,
    /// Event files (JSON Lines); several are merged by event time. Without any, only what a
    /// hot reload from the old pack to the new one would drop and start afresh is said.
    #[arg(long, num_args = 1..)]
    pub events: Vec<PathBuf>,
    /// Reference data directory.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Engine config for contact policy and time settings.
    #[arg(long, default_value = "config/tidings.toml")]
    pub config: PathBuf,
    /// Advance event time to this RFC 3339 time at the end (fires timers due by then).
    #[arg(long)]
    pub until: Option<String>,
    /// Output directory for diff.html and diff.json.
    #[arg(long, default_value = "out/diff")]
    pub out: PathBuf,
    /// Also print the diff as JSON on stdout (full numbers: for tools, not for logs).
    #[arg(long)]
    pub json: bool,
}

pub fn diff(args: Args) -> Result<i32> {
    let Args { rules, events, data, config, until, out, json } = args;
    let [old, new] = <[PathBuf; 2]>::try_from(rules)
        .map_err(|r| anyhow::anyhow!("diff takes two rule packs, --rules OLD --rules NEW (got {})", r.len()))?;
    let recorded = Recorded { events, data, rules: Vec::new(), config, until, refused: Vec::new() };
    if recorded.events.is_empty() {
        return reload_only(&recorded, &old, &new, json);
    }
    compare(&recorded, &old, &new, &out, json)
}

/// `tidings diff` without events: the two packs compiled, and what a hot reload from the old
/// to the new would drop and start afresh (no replay).
fn reload_only(recorded: &Recorded, old: &Path, new: &Path, json: bool) -> Result<i32> {
    let cfg = config_or_default(&recorded.config)?;
    let (refdata, _) = load_data(recorded.data.as_deref(), cfg.engine.unknown_subscribers)?;
    let load_opts = cfg.load_options().map_err(anyhow::Error::msg)?;
    let load = |label: &str, pack: &Path| {
        load_rules(&[pack.to_path_buf()], &refdata, &load_opts)
            .with_context(|| format!("the {label} pack {}", pack.display()))
    };
    let carry = tidings::rules::carry::Carry::between(&load("old", old)?, &load("new", new)?);
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"reload": carry.report()}))?);
    } else {
        print_reload(&carry);
    }
    Ok(0)
}

/// What a reload from the old pack to the new one drops, for a person.
fn print_reload(carry: &tidings::rules::carry::Carry) {
    match carry.lines() {
        lines if lines.is_empty() => println!("a reload from old to new carries everything over"),
        lines => {
            println!("a reload from old to new:");
            for l in lines {
                println!("  {l}");
            }
        }
    }
}

/// `tidings diff`: the same input through two packs, compared contact by contact.
fn compare(recorded: &Recorded, old: &Path, new: &Path, out: &Path, json: bool) -> Result<i32> {
    use tidings::report::diff;
    let cfg = config_or_default(&recorded.config)?;
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    let opts = recorded.options(&cfg, None)?;
    let (refdata, subs) = load_data(recorded.data.as_deref(), cfg.engine.unknown_subscribers)?;
    let refdata = Arc::new(refdata);
    let load_opts = cfg.load_options().map_err(anyhow::Error::msg)?;
    let stop = stop_flag();
    let replay = diff::Replay { refdata: Arc::clone(&refdata), subscribers: &subs, opts: &opts, stop: &stop };
    let (mut sides, mut sets) = (Vec::new(), Vec::new());
    for (label, pack) in [("old", old), ("new", new)] {
        let rules = Arc::new(
            load_rules(&[pack.to_path_buf()], &refdata, &load_opts)
                .with_context(|| format!("the {label} pack {}", pack.display()))?,
        );
        let mut progress = Progress::new(&recorded.events, label);
        let input = sources::open_events(&recorded.events, recorded.decoder()?)?.inspect(|_| progress.tick());
        sides.push(replay.side(input, Arc::clone(&rules))?);
        sets.push(rules);
        progress.finish();
    }
    let inputs = recorded.events.iter().map(|p| p.display().to_string()).collect();
    let mut d =
        diff::diff(&sides[0], &sides[1], (old.display().to_string(), new.display().to_string()), inputs, offset);
    d.reload = tidings::rules::carry::Carry::between(&sets[0], &sets[1]);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let text = serde_json::to_string_pretty(&d)?;
    std::fs::write(out.join("diff.json"), &text)?;
    std::fs::write(out.join("diff.html"), diff::render(&d))?;
    if json {
        println!("{text}");
    } else {
        let rules: Vec<_> = d.rules.iter().map(|r| (r.rule.as_str(), &r.counts)).collect();
        let campaigns = d.campaigns.iter().map(|c| (c.campaign.as_str(), &c.counts)).collect();
        for (what, rows) in [("rule", rules), ("campaign", campaigns)] {
            println!("{what:<32} {:>9} {:>9} {:>8} {:>8}", "old sends", "new sends", "gained", "lost");
            for (key, c) in rows {
                println!("{key:<32} {:>9} {:>9} {:>8} {:>8}", c.old_sent, c.new_sent, c.gained, c.lost);
            }
        }
        println!(
            "total: old {} sends, new {}; {} gained, {} lost",
            d.old_sent,
            d.new_sent,
            d.gained.len(),
            d.lost.len()
        );
        print_reload(&d.reload);
        println!("output        {}/diff.html, diff.json", out.display());
    }
    Ok(0)
}
