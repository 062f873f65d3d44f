//! `tidings gen`: synthetic reference data and events written to a directory, or a live feed
//! of events on standard output.

use anyhow::{Context, Result};
use std::path::PathBuf;
use tidings::config::{Config, GeneratorSection, SourceSection};
use tidings::generator;
use tidings::topology::gen_options;

// The generator's settings, as `[source.generator]` has them.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "out/gen")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: usize,
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// First local day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-11-24")]
    pub start: String,
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// A live feed instead of files: print the events to stdout at --rate lines a second,
    /// each stamped with the current time (write the reference data with a plain `gen` of
    /// the same --seed and --subscribers first).
    #[arg(long)]
    pub follow: bool,
    /// Lines a second for --follow.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
}

pub fn generate(args: Args) -> Result<i32> {
    let Args { out, seed, subscribers, events, start, days, follow, rate } = args;
    let cfg = Config {
        source: SourceSection {
            generator: GeneratorSection { seed, subscribers, events, start, days },
            ..Default::default()
        },
        ..toml::from_str("")?
    };
    let opts = gen_options(&cfg).map_err(anyhow::Error::msg)?;
    if follow {
        let stdout = std::io::stdout();
        return match generator::follow(&opts, rate, &mut stdout.lock()) {
            Ok(_) => Ok(0),
            // The reader went away: a live feed ends there.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
            Err(e) => Err(e.into()),
        };
    }
    generator::write_dir(&opts, &out).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} subscribers and {} events to {}", subscribers, events, out.display());
    Ok(0)
}
