//! The `tidings` command: its arguments, and the subcommand (one file each under `cli/`) they
//! call. The binary (this file and `cli/`) is the only place `anyhow` lives.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `println!` that survives a closed standard output (`tidings replay … | head -1`): std's
/// panics on a broken pipe, with a backtrace, before the files still to come are written. The
/// reader went away, so what it would have read is dropped quietly and the run goes on to finish
/// its files and exit as it would have.
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod cli;

use cli::recorded::Recorded;
use cli::validate::Format;

#[derive(Parser)]
#[command(name = "tidings", version, about = "Real-time care and marketing trigger engine for mobile operators")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the engine as the config says (default: the embedded generator and the shipped rules).
    Run {
        #[arg(long, default_value = "config/tidings.toml")]
        config: PathBuf,
        /// Override the number of shards.
        #[arg(long)]
        shards: Option<usize>,
        /// Do not print actions to stdout (files only).
        #[arg(long)]
        quiet: bool,
    },
    /// Deliver what the outbox holds (the config's `[delivery]`) and exit when it is drained:
    /// after a crash, or to send actions a `run` left behind.
    Deliver {
        #[arg(long, default_value = "config/tidings.toml")]
        config: PathBuf,
    },
    /// Check rule files; exit 1 when there are errors.
    Validate {
        /// Rule files or directories.
        #[arg(default_value = "rules")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Reference data directory, to check cell tags and calendar names too.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Also check an engine config (its policy section).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the rule pack's own test cases (`*.tests.yaml`).
    Test {
        #[arg(default_value = "rules")]
        paths: Vec<PathBuf>,
    },
    /// Process recorded event files in event time and write actions and decisions.
    Replay(cli::replay::Args),
    /// Run the same recorded stream through two rule packs and show which subscribers gain or
    /// lose which contacts, per rule (`--rules OLD --rules NEW`).
    Diff(cli::diff::Args),
    /// Replay events and tell, in plain words, what happened to one subscriber and why.
    Explain {
        /// The subscriber number.
        msisdn: String,
        #[command(flatten)]
        recorded: Recorded,
    },
    /// Measure the engine: events/s, decision latency percentiles, memory per subscriber.
    Bench(cli::bench::Args),
    /// Write synthetic reference data and events (subscribers.jsonl, cells.jsonl, calendar.jsonl, stores.jsonl, events.jsonl).
    Gen(cli::generate::Args),
    /// Hash a password for `[[api.users]] password_hash` (reads it from the first line of
    /// standard input, so it stays out of the shell history).
    Passwd {
        /// PBKDF2 iterations (the default is OWASP's figure for PBKDF2-HMAC-SHA256).
        #[arg(long, default_value_t = tidings::api::users::DEFAULT_ITERATIONS)]
        iterations: u32,
    },
}

/// Events are decoded on one thread and dropped on another; glibc's allocator spends a fifth of
/// the run on that pattern (measured with perf), mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc gives freed memory back to the system after a second (v3's `purge_delay`); a
/// shard's state lists change size all the time, so the same memory was taken back at once,
/// each page faulted in and zeroed again (with transparent huge pages, which the build now
/// leaves off, 2 MiB at a time: a tenth of a run, perf on `tidings bench`). Ten seconds lets the
/// churn reuse it; memory still goes back when a run shrinks for good.
fn keep_freed_memory_longer() {
    use std::ffi::{c_int, c_long};
    unsafe extern "C" {
        fn mi_option_get(option: c_int) -> c_long;
        fn mi_option_set(option: c_int, value: c_long);
    }
    // `mi_option_purge_delay` in mimalloc v3's numbering (the bindings name only v2's).
    const PURGE_DELAY: c_int = 15;
    // SAFETY: both read or write one option; mimalloc has initialised its options before `main`.
    // Only when the option there holds the purge delay's default: another version's numbering,
    // or a value the operator set in MIMALLOC_PURGE_DELAY, is left alone.
    unsafe {
        if mi_option_get(PURGE_DELAY) == 1000 {
            mi_option_set(PURGE_DELAY, 10_000);
        }
    }
}

fn main() {
    keep_freed_memory_longer();
    let code = match real_main() {
        Ok(code) => code,
        Err(e) => {
            // Every mistake in a config, one a line.
            match e.downcast_ref::<tidings::topology::ConfigErrors>() {
                Some(errors) => errors.iter().for_each(|e| eprintln!("error: {e}")),
                None => eprintln!("error: {e:#}"),
            }
            2
        }
    };
    std::process::exit(code);
}

fn real_main() -> Result<i32> {
    match Cli::parse().cmd {
        Cmd::Run { config, shards, quiet } => cli::run::run(&config, tidings::topology::Overrides { shards, quiet }),
        Cmd::Deliver { config } => cli::run::deliver(&config),
        Cmd::Validate { paths, format, data, config } => {
            cli::validate::validate(&paths, format, data.as_deref(), config)
        }
        Cmd::Test { paths } => cli::validate::test(&paths),
        Cmd::Replay(args) => cli::replay::replay(args),
        Cmd::Diff(args) => cli::diff::diff(args),
        Cmd::Explain { msisdn, recorded } => cli::explain::explain(&msisdn, &recorded),
        Cmd::Bench(args) => cli::bench::bench(args),
        Cmd::Gen(args) => cli::generate::generate(args),
        Cmd::Passwd { iterations } => passwd(iterations),
    }
}

/// `tidings passwd`: a password hash for the config, printed on standard output.
fn passwd(iterations: u32) -> Result<i32> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.len() < 8 {
        anyhow::bail!("a password is at least 8 characters");
    }
    if iterations < 1000 {
        anyhow::bail!("at least 1000 iterations");
    }
    println!("{}", tidings::api::users::PasswordHash::make(password, iterations).map_err(anyhow::Error::msg)?);
    Ok(0)
}
