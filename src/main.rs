//! The `tidings` command: run, validate, test, replay, gen. The only place `anyhow` lives.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tidings::config::{Config, SourceKind};
use tidings::engine::{self, EngineOptions};
use tidings::event::{DeadLetter, Decoder, Event};
use tidings::generator::{self, GenOptions};
use tidings::refdata::{RefData, Subscribers};
use tidings::rules::{self, LoadOptions};
use tidings::sink::{Fanout, JsonlDir, Sink, Stdout};
use tidings::source::{self, StreamPos, Tracker};
use tidings::state::checkpoint::{self, CheckpointConfig, Loaded, Writer};

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

#[derive(Parser)]
#[command(name = "tidings", version, about = "Real-time care and marketing trigger engine for mobile operators")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// What `replay` and `explain` read: recorded streams, the data and rules they ran with, and
/// the config whose policy applied (the same as live, so a replay decides alike).
#[derive(clap::Args)]
struct Recorded {
    /// Event files (JSON Lines); several are merged by event time.
    #[arg(long, required = true, num_args = 1..)]
    events: Vec<PathBuf>,
    /// Reference data directory.
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, default_value = "rules")]
    rules: Vec<PathBuf>,
    /// Engine config for contact policy and time settings.
    #[arg(long, default_value = "config/tidings.toml")]
    config: PathBuf,
    /// Advance event time to this RFC 3339 time at the end (fires timers due by then).
    #[arg(long)]
    until: Option<String>,
    /// A live run's dead letters (`dead_letters.jsonl`): the lines it refused as stamped ahead
    /// of the host's clock (reason `future`) are refused here too, so that the replay decides
    /// what the live run decided.
    #[arg(long)]
    refused: Vec<PathBuf>,
}

impl Recorded {
    /// The decoder for the recorded streams: it refuses what the live run refused by its clock.
    fn decoder(&self) -> Result<Decoder> {
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
    fn options(&self, cfg: &Config, trace: Option<tidings::util::Msisdn>) -> Result<EngineOptions> {
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
            clock_start: tidings::util::Millis::MIN,
            slice: cfg.slice().map_err(anyhow::Error::msg)?,
            heartbeat: None,
            requests_only: None,
        })
    }

    fn until(&self) -> Result<Option<tidings::util::Millis>> {
        self.until.as_deref().map(|u| tidings::util::parse_ts(u).map_err(anyhow::Error::msg)).transpose()
    }
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
    Replay {
        #[command(flatten)]
        recorded: Recorded,
        /// Output directory for actions.jsonl, decisions.jsonl, dead_letters.jsonl.
        #[arg(long, default_value = "out/replay")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        shards: usize,
        #[arg(long, default_value_t = 1024)]
        batch: usize,
        /// Allowed lateness, e.g. 2m.
        #[arg(long, default_value = "2m")]
        lateness: String,
        /// Local UTC offset of the subscribers.
        #[arg(long, default_value = "+08:00")]
        utc_offset: String,
        /// Also write the campaign report: one self-contained HTML page (totals, per rule and
        /// campaign, hourly timeline, contacts per subscriber, outcomes, lift).
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Run the same recorded stream through two rule packs and show which subscribers gain or
    /// lose which contacts, per rule (`--rules OLD --rules NEW`).
    Diff {
        /// The old pack, then the new one (a rule file or directory each).
        #[arg(long, required = true, num_args = 1)]
        rules: Vec<PathBuf>,
        /// Event files (JSON Lines); several are merged by event time.
        #[arg(long, required = true, num_args = 1..)]
        events: Vec<PathBuf>,
        /// Reference data directory.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Engine config for contact policy and time settings.
        #[arg(long, default_value = "config/tidings.toml")]
        config: PathBuf,
        /// Advance event time to this RFC 3339 time at the end (fires timers due by then).
        #[arg(long)]
        until: Option<String>,
        /// Output directory for diff.html and diff.json.
        #[arg(long, default_value = "out/diff")]
        out: PathBuf,
        /// Also print the diff as JSON on stdout (full numbers: for tools, not for logs).
        #[arg(long)]
        json: bool,
    },
    /// Replay events and tell, in plain words, what happened to one subscriber and why.
    Explain {
        /// The subscriber number.
        msisdn: String,
        #[command(flatten)]
        recorded: Recorded,
    },
    /// Measure the engine: events/s, decision latency percentiles, memory per subscriber.
    Bench {
        /// Events file (default: generate one with --subscribers/--count).
        #[arg(long)]
        events: Option<PathBuf>,
        /// Reference data directory for --events.
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long, default_value_t = 1_000_000)]
        subscribers: usize,
        /// Events to generate when no file is given.
        #[arg(long, default_value_t = 2_000_000)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        shards: usize,
        #[arg(long, default_value = "rules")]
        rules: Vec<PathBuf>,
        /// Time every Nth event's processing.
        #[arg(long, default_value_t = 4)]
        sample: u32,
        /// Events per batch handed to the shards (`[engine] batch`).
        #[arg(long, default_value_t = 4096)]
        batch: usize,
        /// Add this many synthetic campaign rules to the pack (rule-count scaling).
        #[arg(long, default_value_t = 0)]
        synthetic_rules: usize,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Take checkpoints during the run (into a temporary directory) and report the longest
        /// pause they caused and their size and write time.
        #[arg(long)]
        checkpoint: bool,
        /// With --checkpoint: take one every this many events.
        #[arg(long, default_value_t = 500_000)]
        checkpoint_every: u64,
        /// With --checkpoint: the longest a shard copies state between two batches, e.g. 1ms.
        #[arg(long, default_value = "1ms")]
        checkpoint_slice: String,
    },
    /// Write synthetic reference data and events (subscribers.jsonl, cells.jsonl, calendar.jsonl, stores.jsonl, events.jsonl).
    Gen {
        #[arg(long, default_value = "out/gen")]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// First local day (YYYY-MM-DD).
        #[arg(long, default_value = "2026-11-24")]
        start: String,
        #[arg(long, default_value_t = 1)]
        days: u32,
        /// A live feed instead of files: print the events to stdout at --rate lines a second,
        /// each stamped with the current time (write the reference data with a plain `gen` of
        /// the same --seed and --subscribers first).
        #[arg(long)]
        follow: bool,
        /// Lines a second for --follow.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
    },
}

/// Events are decoded on one thread and dropped on another; glibc's allocator spends a fifth of
/// the run on that pattern (measured with perf), mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn real_main() -> Result<i32> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run { config, shards, quiet } => run(&config, shards, quiet),
        Cmd::Deliver { config } => deliver_only(&config),
        Cmd::Validate { paths, format, data, config } => {
            if let Some(c) = config {
                if let Err(e) = Config::load(&c) {
                    eprintln!("{e}");
                    return Ok(1);
                }
            }
            validate(&paths, format, data.as_deref())
        }
        Cmd::Bench {
            events,
            data,
            subscribers,
            count,
            shards,
            mut rules,
            sample,
            batch,
            synthetic_rules,
            json,
            checkpoint,
            checkpoint_every,
            checkpoint_slice,
        } => {
            if synthetic_rules > 0 {
                let path = std::env::temp_dir().join(format!("tidings-synthetic-{}.yaml", std::process::id()));
                std::fs::write(&path, synthetic_pack(synthetic_rules))?;
                rules.push(path);
            }
            let checkpoints = match checkpoint {
                true => {
                    let slice = tidings::util::parse_duration(&checkpoint_slice).map_err(anyhow::Error::msg)?;
                    Some(CheckpointConfig {
                        dir: std::env::temp_dir().join(format!("tidings-bench-ckpt-{}", std::process::id())),
                        every_events: checkpoint_every,
                        every: std::time::Duration::ZERO,
                        keep: 2,
                        slice: std::time::Duration::from_millis(slice.max(0) as u64),
                    })
                }
                false => None,
            };
            bench(events, data, subscribers, count, (shards, batch), &rules, sample, json, checkpoints)
        }
        Cmd::Explain { msisdn, recorded } => explain(&msisdn, &recorded),
        Cmd::Test { paths } => test(&paths),
        Cmd::Diff { rules, events, data, config, until, out, json } => {
            let [old, new] = <[PathBuf; 2]>::try_from(rules)
                .map_err(|r| anyhow::anyhow!("diff takes two rule packs, --rules OLD --rules NEW (got {})", r.len()))?;
            let recorded = Recorded { events, data, rules: Vec::new(), config, until, refused: Vec::new() };
            diff(&recorded, &old, &new, &out, json)
        }
        Cmd::Replay { recorded, out, shards, batch, lateness, utc_offset, report } => {
            let offset = tidings::config::parse_offset(&utc_offset).context("--utc-offset must look like +08:00")?;
            let lateness = tidings::util::parse_duration(&lateness).map_err(anyhow::Error::msg)?;
            let cfg = config_or_default(&recorded.config)?;
            let opts = EngineOptions {
                shards,
                batch,
                lateness,
                offset,
                until: recorded.until()?,
                policy: cfg.resolved_policy.clone(),
                capacity: cfg.capacity,
                trace: None,
                latency_sample: 0,
                realtime: 0,
                guard: cfg.guard().map_err(anyhow::Error::msg)?,
                clock_start: tidings::util::Millis::MIN,
                slice: cfg.slice().map_err(anyhow::Error::msg)?,
                heartbeat: None,
                requests_only: None,
            };
            replay(&recorded, &cfg, &out, &opts, report.as_deref())
        }
        Cmd::Gen { out, seed, subscribers, events, start, days, follow, rate } => {
            let cfg = Config {
                source: tidings::config::SourceSection {
                    generator: tidings::config::GeneratorSection { seed, subscribers, events, start, days },
                    ..Default::default()
                },
                ..toml::from_str("")?
            };
            let opts = gen_options(&cfg)?;
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
    }
}

fn gen_options(cfg: &Config) -> Result<GenOptions> {
    let g = &cfg.source.generator;
    Ok(GenOptions {
        seed: g.seed,
        subscribers: g.subscribers,
        events: g.events,
        start: cfg.generator_start().map_err(anyhow::Error::msg)?,
        days: g.days.max(1),
        offset_secs: cfg.offset().map_err(anyhow::Error::msg)?.local_minus_utc(),
    })
}

fn load_rules(paths: &[PathBuf], refdata: &RefData, max_window: i64) -> Result<rules::RuleSet> {
    let loaded = rules::load(paths, Some(refdata), &LoadOptions { max_window });
    for d in &loaded.diagnostics {
        eprint!("{}", d.render());
    }
    let errors = loaded.errors();
    loaded.rules.with_context(|| format!("the rule pack has {errors} error(s); nothing was run"))
}

fn generated_refdata(opts: &GenOptions) -> Result<(RefData, Subscribers)> {
    let files = generator::reference(opts);
    let dir = std::env::temp_dir().join(format!("tidings-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for (name, lines) in [
        ("subscribers.jsonl", &files.subscribers),
        ("cells.jsonl", &files.cells),
        ("calendar.jsonl", &files.calendar),
        ("stores.jsonl", &files.stores),
        ("countries.jsonl", &files.countries),
    ] {
        std::fs::write(dir.join(name), lines.join("\n"))?;
    }
    let r = RefData::load_dir(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(r?)
}

fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    // Ctrl-C or SIGTERM: stop reading, finish the batch in hand (and take a checkpoint when
    // they are on), flush outputs and print the summary.
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
        std::thread::spawn(move || {
            rt.block_on(async {
                let term = async {
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                        Ok(mut t) => t.recv().await,
                        Err(_) => std::future::pending().await,
                    }
                };
                let how = tokio::select! {
                    r = tokio::signal::ctrl_c() => r.is_ok().then_some("interrupted"),
                    _ = term => Some("terminated"),
                };
                if let Some(how) = how {
                    eprintln!("{how}: finishing the current batch");
                    s.store(true, Ordering::Relaxed);
                }
            })
        });
    }
    stop
}

/// A run's checkpoints: the writer, and the last good checkpoint to resume from.
struct Resume {
    writer: Writer,
    cfg: CheckpointConfig,
    loaded: Option<Loaded>,
}

impl Resume {
    fn open(cfg: &Config) -> Result<Option<Resume>> {
        let Some(c) = &cfg.checkpoint else { return Ok(None) };
        let writer =
            Writer::start(c).with_context(|| format!("opening the checkpoint directory {}", c.dir.display()))?;
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
        Ok(Some(Resume { writer, cfg: c.clone(), loaded }))
    }

    /// Where the sources start.
    fn positions(&self) -> &[StreamPos] {
        self.loaded.as_ref().map_or(&[], |l| &l.meta.sources)
    }
}

/// Runs the engine, with checkpoints when `resume` is set (waiting for the last one to be
/// written before returning).
#[allow(clippy::too_many_arguments)]
fn run_engine(
    input: impl Iterator<Item = engine::Input>,
    tracker: Option<Arc<Tracker>>,
    resume: Option<Resume>,
    rules: Arc<rules::RuleSet>,
    refdata: Arc<RefData>,
    subs: Subscribers,
    opts: &EngineOptions,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
) -> Result<engine::Summary> {
    let Some(mut r) = resume else {
        return Ok(engine::run(input, rules, refdata, subs, opts, sink, stop)?);
    };
    let positions = move || tracker.as_ref().map_or_else(Vec::new, |t| t.positions());
    let durable = engine::Durable::new(&r.writer, &r.cfg, &positions, r.loaded.take());
    let summary = engine::run_durable(input, rules, refdata, subs, opts, sink, stop, Some(durable));
    r.writer.finish();
    Ok(summary?)
}

fn run(config: &Path, shards: Option<usize>, quiet: bool) -> Result<i32> {
    let cfg = Config::load(config)?;
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    // A live stream (standard input, Fluvio topics followed as they grow): events are checked
    // against the host's clock as they come.
    let live = match cfg.source.kind {
        SourceKind::Stdin => true,
        SourceKind::Fluvio => !cfg.fluvio.as_ref().is_some_and(|f| f.until_end),
        SourceKind::Generator | SourceKind::Files => false,
    };
    let decoder = Decoder {
        max_line: cfg.engine.max_line_bytes,
        max_ahead_of_wall: if live { cfg.max_ahead_of_wall().map_err(anyhow::Error::msg)? } else { None },
        ..Decoder::default()
    };
    let gen_opts = gen_options(&cfg)?;
    let (refdata, subs) = match (&cfg.data.dir, &cfg.source.kind) {
        (Some(dir), _) => RefData::load_dir(dir)?,
        (None, SourceKind::Generator) => generated_refdata(&gen_opts)?,
        (None, _) => Default::default(),
    };
    let mut subs = own_share(&cfg, subs);
    subs.unknown_cap = Some(cfg.engine.unknown_subscribers);
    let max_window = cfg.max_window().map_err(anyhow::Error::msg)?;
    let rules = load_rules(&cfg.rules.paths, &refdata, max_window)?;
    let refdata = Arc::new(refdata);
    eprintln!(
        "tidings: {} rules ({} windows, {} sequences) version {}, {} subscribers, {} cells",
        rules.rules.len(),
        rules.aggs.len(),
        rules.seqs.len(),
        rules.version,
        subs.profiles.len(),
        refdata.cells.len()
    );
    let mut opts = EngineOptions {
        shards: shards.unwrap_or_else(|| cfg.shards()),
        batch: cfg.engine.batch,
        lateness: cfg.lateness().map_err(anyhow::Error::msg)?,
        offset,
        until: None,
        policy: cfg.resolved_policy.clone(),
        capacity: cfg.capacity,
        trace: None,
        // With the API up, time every 16th event for the latency histogram on /metrics.
        latency_sample: if cfg.api.is_some() { 16 } else { 0 },
        realtime: cfg.engine.realtime_priority,
        guard: cfg.guard().map_err(anyhow::Error::msg)?,
        // A live stream's event time starts at the host's clock: its first events need no
        // other subscribers to agree with them (a replay of it agrees: see README).
        clock_start: if live { tidings::util::wall_ms() } else { tidings::util::Millis::MIN },
        slice: cfg.slice().map_err(anyhow::Error::msg)?,
        heartbeat: Some(Arc::default()),
        requests_only: None,
    };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if !cfg.output.dir.as_os_str().is_empty() {
        sinks.push(Box::new(
            JsonlDir::create(&cfg.output.dir, offset)
                .with_context(|| format!("creating {}", cfg.output.dir.display()))?,
        ));
    }
    if cfg.output.stdout && !quiet {
        sinks.push(Box::new(Stdout::new(offset)));
    }
    let stop = stop_flag();
    let resume = Resume::open(&cfg)?;
    let from = resume.as_ref().map_or(&[][..], |r| r.positions());
    let mut tracker = None;
    // A live stream: what it brings is decided at once (no waiting for a full batch), and outcome
    // events and IVR requests flow into it as they come.
    let mut feedback = None;
    let mut asks = None;
    let mut explain = None;
    let mut reloader = None;
    // Why the source stopped before the end of its input, if it did: the run fails with it.
    let mut read_failure = None;
    let input: Box<dyn Iterator<Item = engine::Input>> = match cfg.source.kind {
        SourceKind::Generator => {
            let skip = from.iter().find(|p| p.stream == "generator").map_or(0, |p| p.records);
            let t = Tracker::new(vec![StreamPos { stream: "generator".into(), offset: 0, records: skip }]);
            tracker = Some(Arc::clone(&t));
            Box::new(source::generated_from(&gen_opts, decoder, skip, Some(t)).map(engine::Input::from))
        }
        SourceKind::Stdin => {
            if resume.as_ref().is_some_and(|r| r.loaded.is_some()) {
                eprintln!(
                    "tidings: standard input cannot be rewound: state resumes from the checkpoint, input from what comes next"
                );
            }
            let (mut live, tx) = source::Live::new(std::io::stdin(), "stdin", decoder);
            live.stop_on(Arc::clone(&stop));
            opts.requests_only = Some(live.requests_only());
            if cfg.api.is_some() {
                explain = Some(tidings::api::admin::Explain { requests: live.explain_requests(), wake: tx.clone() });
                reloader = Some(Arc::new(tidings::api::admin::Reloader {
                    paths: cfg.rules.paths.clone(),
                    refdata: Arc::clone(&refdata),
                    opts: LoadOptions { max_window },
                    requests: live.reloads(),
                    wake: tx.clone(),
                    current: std::sync::Mutex::new(tidings::api::admin::RulesInfo {
                        version: rules.version.to_string(),
                        files: rules.files.iter().map(|f| f.to_string()).collect(),
                        rules: rules.rules.len(),
                        loaded_at: chrono::Utc::now().to_rfc3339(),
                    }),
                }));
            }
            if let Some(api) = &cfg.api {
                let a = tidings::api::ivr::Asks::new(live.priority(), tx.clone(), Some(&api.ivr_log))
                    .with_context(|| format!("opening {}", api.ivr_log.display()))?;
                let on_take = a.clone();
                live.on_take(move |src| {
                    if src == tidings::api::ivr::SOURCE {
                        on_take.taken();
                    }
                });
                sinks.push(Box::new(tidings::api::ivr::Replies(a.clone())));
                asks = Some(a);
            }
            feedback = Some(tx);
            Box::new(live)
        }
        SourceKind::Files => {
            let (input, t) = open_events_at(&cfg.source.files, decoder, from)?;
            tracker = Some(t);
            Box::new(input.map(engine::Input::from))
        }
        SourceKind::Fluvio => {
            let (input, t, failure) = fluvio_source(&cfg, decoder, from, &stop)?;
            tracker = Some(t);
            read_failure = Some(failure);
            input
        }
    };
    // Sources every instance reads whole: keep this instance's share.
    let mut skipped = None;
    let input: Box<dyn Iterator<Item = engine::Input>> =
        if cfg.scale.is_shared() && !matches!(cfg.source.kind, SourceKind::Fluvio) {
            let owned = source::Owned::new(input, cfg.scale.owner(), cfg.scale.instance == 0);
            skipped = Some(owned.skipped.clone());
            Box::new(owned)
        } else {
            input
        };
    if let Some(f) = cfg
        .fluvio
        .as_ref()
        .filter(|f| !f.actions_topic.is_empty() || !f.decisions_topic.is_empty() || !f.dead_letters_topic.is_empty())
    {
        sinks.push(fluvio_sink(f, offset)?);
    }
    let delivery = match &cfg.delivery {
        Some(d) => {
            let notify = Arc::new(tokio::sync::Notify::new());
            sinks.push(Box::new(
                tidings::sink::OutboxSink::open(&d.outbox, offset, Some(notify.clone()))
                    .with_context(|| format!("opening the outbox {}", d.outbox.display()))?,
            ));
            Some(Delivery::start(d.clone(), offset, notify, stop.clone(), feedback)?)
        }
        None => None,
    };
    let api = match &cfg.api {
        Some(a) => Some(ApiServer::start(a, &rules, asks, explain, reloader, &cfg, opts.heartbeat.clone())?),
        None => None,
    };
    let mut sink = Fanout(sinks);
    let t0 = std::time::Instant::now();
    let summary = match run_engine(input, tracker, resume, Arc::new(rules), refdata, subs, &opts, &mut sink, &stop) {
        Ok(summary) => summary,
        Err(e) => {
            // A fatal error (a disk full): the submits in flight are answered and recorded first.
            stop.store(true, Ordering::Relaxed);
            if let Some(Err(d)) = delivery.map(Delivery::finish) {
                eprintln!("tidings: {d:#}");
            }
            return Err(e);
        }
    };
    eprintln!("{}", tidings::telemetry::render_summary(&summary, t0.elapsed(), offset));
    if let Some(n) = skipped {
        eprintln!("scale         {} events left to the other instances", n.load(Ordering::Relaxed));
    }
    if !cfg.output.dir.as_os_str().is_empty() {
        eprintln!("output        {}/actions.jsonl, decisions.jsonl, dead_letters.jsonl", cfg.output.dir.display());
    }
    drop(sink);
    if let Some(d) = delivery {
        d.finish()?;
    }
    drop(api);
    if let Some(why) = read_failure.as_ref().and_then(|f| f.get()) {
        anyhow::bail!("{why} (reading stopped there)");
    }
    Ok(0)
}

/// The subscribers this instance owns (`[scale]`); all of them when it works alone.
fn own_share(cfg: &Config, subs: tidings::refdata::Subscribers) -> tidings::refdata::Subscribers {
    if !cfg.scale.is_shared() {
        return subs;
    }
    let owner = cfg.scale.owner();
    let total = subs.profiles.len();
    let mine = subs.split(2, |m| usize::from(!owner(m))).swap_remove(0);
    eprintln!(
        "scale         instance {} of {}: partitions {:?} of {}, {} of {} subscribers",
        cfg.scale.instance,
        cfg.scale.instances,
        cfg.scale.owned_partitions(),
        cfg.scale.partitions,
        mine.profiles.len(),
        total
    );
    mine
}

/// The Fluvio source, each partition resumed at its checkpointed offset (else as configured),
/// with the tracker the checkpoints read its positions from and where it says why it stopped
/// early (raising `stop` when it does).
#[cfg(feature = "fluvio")]
fn fluvio_source(cfg: &Config, decoder: Decoder, from: &[StreamPos], stop: &Arc<AtomicBool>) -> Result<FluvioInput> {
    let f = cfg.fluvio.as_ref().context("source.kind = \"fluvio\" needs a [fluvio] section")?;
    let owned = cfg.scale.owned_partitions();
    let (src, starts) = source::fluvio::FluvioSource::start(f, &owned, cfg.scale.partitions, decoder, from)
        .map_err(anyhow::Error::msg)?;
    let src = src.stopping(Arc::clone(stop));
    let failure = src.failure();
    eprintln!("fluvio        reading {:?} partitions {owned:?} from {}", f.topics, f.endpoint);
    let at = |s: &tidings::config::PartitionStart| {
        s.offset.map_or_else(
            || format!("{}/{} at its {}", s.topic, s.partition, f.start),
            |o| format!("{}/{} at {o}", s.topic, s.partition),
        )
    };
    let (resumed, configured): (Vec<_>, Vec<_>) = starts.iter().partition(|s| s.from_checkpoint);
    if !resumed.is_empty() {
        eprintln!(
            "fluvio        resuming from the checkpoint (its offsets win over [[fluvio.offsets]] and fluvio.start): {}",
            resumed.iter().map(|s| at(s)).collect::<Vec<_>>().join(", ")
        );
    }
    if !configured.is_empty() && !from.is_empty() {
        eprintln!(
            "fluvio        not in the checkpoint, started as configured: {}",
            configured.iter().map(|s| at(s)).collect::<Vec<_>>().join(", ")
        );
    }
    let tracker = src.tracker();
    Ok((Box::new(src), tracker, failure))
}

/// The Fluvio source, its tracker, and why it stopped early if it did.
type FluvioInput = (EngineInput, Arc<Tracker>, Arc<std::sync::OnceLock<String>>);

#[cfg(not(feature = "fluvio"))]
fn fluvio_source(_: &Config, _: Decoder, _: &[StreamPos], _: &Arc<AtomicBool>) -> Result<FluvioInput> {
    anyhow::bail!(NO_FLUVIO)
}

#[cfg(feature = "fluvio")]
fn fluvio_sink(f: &tidings::config::FluvioSection, offset: chrono::FixedOffset) -> Result<Box<dyn Sink>> {
    Ok(Box::new(tidings::sink::fluvio::FluvioSink::start(f, offset).map_err(anyhow::Error::msg)?))
}

#[cfg(not(feature = "fluvio"))]
fn fluvio_sink(_: &tidings::config::FluvioSection, _: chrono::FixedOffset) -> Result<Box<dyn Sink>> {
    anyhow::bail!(NO_FLUVIO)
}

#[cfg(not(feature = "fluvio"))]
const NO_FLUVIO: &str = "this build has no Fluvio transport: build with `cargo build --release --features fluvio`";

/// A tokio runtime of `workers` named threads, beside the engine's own.
fn runtime(workers: usize, name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    runtime_with(workers, name, 0)
}

/// [`runtime`], its threads at SCHED_FIFO `realtime` (0: the ordinary scheduler).
fn runtime_with(workers: usize, name: &str, realtime: u8) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .on_thread_start(move || tidings::util::realtime(realtime, "api"))
        .enable_all()
        .build()
}

/// The admin endpoint on a small runtime of its own, for the life of a run.
struct ApiServer {
    rt: Option<tokio::runtime::Runtime>,
    stop: Arc<tokio::sync::Notify>,
}

impl ApiServer {
    fn start(
        cfg: &tidings::api::admin::ApiConfig,
        rules: &rules::RuleSet,
        asks: Option<Arc<tidings::api::ivr::Asks>>,
        explain: Option<tidings::api::admin::Explain>,
        reloader: Option<Arc<tidings::api::admin::Reloader>>,
        run: &Config,
        heartbeat: Option<Arc<tidings::telemetry::Heartbeat>>,
    ) -> Result<ApiServer> {
        let (scale, realtime) = (&run.scale, run.engine.realtime_priority);
        let metrics = tidings::telemetry::install_prometheus().map_err(anyhow::Error::msg)?;
        let info = tidings::api::admin::RulesInfo {
            version: rules.version.to_string(),
            files: rules.files.iter().map(|f| f.to_string()).collect(),
            rules: rules.rules.len(),
            loaded_at: chrono::Utc::now().to_rfc3339(),
        };
        let mut admin = tidings::api::admin::Admin::new(cfg, metrics, info);
        if let Some(a) = asks {
            admin = admin.with_ivr(cfg, a);
            if scale.is_shared() {
                let (owns, partitions) = (scale.owner(), scale.partitions);
                admin = admin.with_elsewhere(Arc::new(move |m| {
                    (!owns(m)).then(|| tidings::config::scale::partition_of(m, partitions))
                }));
            }
        }
        if let Some(e) = explain {
            admin = admin.with_explain(e);
        }
        if let Some(r) = &reloader {
            admin = admin.with_reloader(r.clone());
        }
        if let Some(h) = heartbeat {
            admin = admin.with_heartbeat(h, run.stall_after().map_err(anyhow::Error::msg)?);
        }
        let rt = runtime_with(1, "tidings-api", realtime)?;
        let (listener, addr) = rt
            .block_on(tidings::api::bind(&cfg.listen))
            .with_context(|| format!("listening on {} for the admin API", cfg.listen))?;
        if cfg.admin_token.is_empty() {
            eprintln!("api           no admin_token configured: /metrics and /v1/* refuse every request");
        }
        eprintln!("api           http://{addr} (/metrics, /healthz, /readyz, /v1/rules)");
        admin.ready.store(true, Ordering::Relaxed);
        let stop = Arc::new(tokio::sync::Notify::new());
        let s = stop.clone();
        rt.spawn(tidings::api::serve(listener, Arc::new(admin), cfg.limits(), async move { s.notified().await }));
        if let Some(r) = reloader {
            // Hot reload on SIGHUP and when a rule file changes.
            rt.spawn(tidings::api::admin::watch_rules(r, std::time::Duration::from_secs(2)));
        }
        Ok(ApiServer { rt: Some(rt), stop })
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
        }
    }
}

/// The delivery side of a run: the dispatcher and the report endpoint on a tokio runtime of
/// their own, beside the engine's threads.
struct Delivery {
    rt: tokio::runtime::Runtime,
    closed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<tidings::sink::deliver::DeliveryStats, String>>,
    server_stop: Arc<tokio::sync::Notify>,
}

impl Delivery {
    fn start(
        cfg: tidings::sink::deliver::DeliveryConfig,
        offset: chrono::FixedOffset,
        more: Arc<tokio::sync::Notify>,
        stop: Arc<AtomicBool>,
        feedback: Option<tidings::source::Feed>,
    ) -> Result<Delivery> {
        use tidings::sink::deliver::{Dispatcher, callback_handler};
        let rt = runtime(2, "tidings-delivery")?;
        let (listener, addr) = rt
            .block_on(tidings::api::bind(&cfg.listen))
            .with_context(|| format!("listening on {} for delivery reports", cfg.listen))?;
        let mut cfg = cfg;
        if cfg.public_url.is_none() {
            cfg.public_url = Some(format!("http://{addr}"));
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut dispatcher = {
            let _in_runtime = rt.enter();
            Dispatcher::new(cfg.clone(), tx.clone()).map_err(anyhow::Error::msg)?
        };
        dispatcher.set_offset(offset);
        if let Some(tx) = feedback {
            dispatcher.feed_live(move |line| {
                let _ = tx.send(Some(("outcomes", line.into_bytes())));
            });
        }
        eprintln!("delivery      reports on http://{addr}, outbox {}", cfg.outbox.display());
        let server_stop = Arc::new(tokio::sync::Notify::new());
        let s = server_stop.clone();
        rt.spawn(tidings::api::serve(
            listener,
            Arc::new(callback_handler(tx)),
            tidings::api::Limits::default(),
            async move { s.notified().await },
        ));
        let closed = Arc::new(AtomicBool::new(false));
        let task = rt.spawn(dispatcher.run(rx, more, closed.clone(), stop));
        Ok(Delivery { rt, closed, task, server_stop })
    }

    /// The input has ended: wait until the outbox is drained and reports are in.
    fn finish(self) -> Result<()> {
        self.closed.store(true, Ordering::Relaxed);
        let stats = self.rt.block_on(self.task)?.map_err(anyhow::Error::msg)?;
        self.server_stop.notify_one();
        eprintln!(
            "delivery      accepted {}, rejected {}, expired {}, retries {}, outcomes {}, in doubt settled {}{}",
            stats.accepted,
            stats.rejected,
            stats.expired,
            stats.retries,
            stats.outcomes,
            stats.settled_in_doubt,
            if stats.no_gateway > 0 {
                format!(", {} with no gateway configured", stats.no_gateway)
            } else {
                String::new()
            }
        );
        self.rt.shutdown_timeout(std::time::Duration::from_secs(1));
        Ok(())
    }
}

fn deliver_only(config: &Path) -> Result<i32> {
    let cfg = Config::load(config)?;
    let Some(d) = cfg.delivery.clone() else {
        anyhow::bail!("{}: no [delivery] section: nothing to deliver to", config.display());
    };
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    let delivery = Delivery::start(d, offset, Arc::new(tokio::sync::Notify::new()), stop_flag(), None)?;
    delivery.finish()?;
    Ok(0)
}

fn validate(paths: &[PathBuf], format: Format, data: Option<&Path>) -> Result<i32> {
    let refdata = data.map(RefData::load_dir).transpose()?.map(|(r, _)| r);
    let loaded = rules::load(paths, refdata.as_ref(), &LoadOptions::default());
    match format {
        Format::Text => {
            for d in &loaded.diagnostics {
                eprint!("{}", d.render());
            }
            let warnings = loaded.diagnostics.len() - loaded.errors();
            match &loaded.rules {
                Some(r) => {
                    let shadow = r.rules.iter().filter(|r| r.shadow).count();
                    let shadow =
                        if shadow > 0 { format!(" ({shadow} in shadow mode: never sent)") } else { String::new() };
                    eprintln!("ok: {} rules in {} files{shadow}, {} warning(s)", r.rules.len(), r.files.len(), warnings)
                }
                None => eprintln!("{} error(s), {} warning(s)", loaded.errors(), warnings),
            }
        }
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": loaded.rules.is_some(),
                "errors": loaded.errors(),
                "diagnostics": loaded.diagnostics,
            }))?
        ),
    }
    Ok(if loaded.rules.is_some() { 0 } else { 1 })
}

fn test(paths: &[PathBuf]) -> Result<i32> {
    let report = rules::testing::run(paths, &LoadOptions::default());
    for d in &report.diagnostics {
        eprint!("{}", d.render());
    }
    for l in &report.lines {
        println!("{l}");
    }
    println!("{} passed, {} failed", report.passed, report.failed);
    if report.passed + report.failed == 0 {
        bail!(
            "no test cases found under {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(if report.failed == 0 { 0 } else { 1 })
}

fn replay(recorded: &Recorded, cfg: &Config, out: &Path, opts: &EngineOptions, report: Option<&Path>) -> Result<i32> {
    use tidings::report::{Collector, Context, Observer, html};
    let (refdata, subs) = load_data(recorded.data.as_deref(), cfg.engine.unknown_subscribers)?;
    let rules = load_rules(&recorded.rules, &refdata, cfg.max_window().map_err(anyhow::Error::msg)?)?;
    let (mut observer, responses) = Observer::new(&cfg.report, &rules).map_err(anyhow::Error::msg)?;
    let mut collector = Collector::new(&rules, opts.offset);
    let version = rules.version.clone();
    let mut files = JsonlDir::create(out, opts.offset)?;
    let mut sink = tidings::sink::Tee(&mut files, &mut collector);
    let mut progress = Progress::new(&recorded.events, "replay");
    let watch = report.is_some();
    // A replay with checkpoints on resumes where the last one left off (the report then covers
    // what this run read).
    let resume = Resume::open(cfg)?;
    let from = resume.as_ref().map_or(&[][..], |r| r.positions());
    let (input, tracker) = open_events_at(&recorded.events, recorded.decoder()?, from)?;
    let input = input.inspect(|item| {
        progress.tick();
        if let (true, Ok(ev)) = (watch, item) {
            observer.event(ev);
        }
    });
    let t0 = std::time::Instant::now();
    let summary = run_engine(
        input.map(engine::Input::from),
        Some(tracker),
        resume,
        Arc::new(rules),
        Arc::new(refdata),
        subs,
        opts,
        &mut sink,
        &stop_flag(),
    )?;
    progress.finish();
    println!("{}", tidings::telemetry::render_summary(&summary, t0.elapsed(), opts.offset));
    println!("output        {}/actions.jsonl, decisions.jsonl, dead_letters.jsonl", out.display());
    if let Some(path) = report {
        let inputs = recorded.events.iter().map(|p| p.display().to_string()).collect();
        let cx = Context {
            title: "tidings campaign report".into(),
            inputs,
            rules_version: version,
            summary: &summary,
            observer: &observer,
            responses: &responses,
        };
        let page = html::render(&collector.finish(&cx));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        println!("report        {}", path.display());
    }
    Ok(0)
}

/// A progress bar with rate and ETA on stderr when it is a terminal; nothing otherwise (CI,
/// pipes, tests). The total is the input's line count, counted first only when there is a
/// terminal to show it on.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    n: u64,
}

impl Progress {
    fn new(files: &[PathBuf], label: &str) -> Progress {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None, n: 0 };
        }
        let total = files.iter().map(|f| count_lines(f).unwrap_or(0)).sum();
        let bar =
            indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr_with_hz(4));
        let style = indicatif::ProgressStyle::with_template(
            "{msg:8} [{bar:32}] {human_pos}/{human_len} lines  {per_sec}  ETA {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(label.to_string());
        Progress { bar: Some(bar), n: 0 }
    }

    /// One more input line; the bar is told every 4,096 (it costs a lock).
    fn tick(&mut self) {
        self.n += 1;
        if self.n & 4095 == 0 {
            if let Some(b) = &self.bar {
                b.set_position(self.n);
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn count_lines(path: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += buf[..k].iter().filter(|b| **b == b'\n').count() as u64;
    }
}

/// `tidings diff`: the same input through two packs, compared contact by contact.
fn diff(recorded: &Recorded, old: &Path, new: &Path, out: &Path, json: bool) -> Result<i32> {
    use tidings::report::diff::{self, Side};
    let cfg = config_or_default(&recorded.config)?;
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    let opts = recorded.options(&cfg, None)?;
    let (refdata, subs) = load_data(recorded.data.as_deref(), cfg.engine.unknown_subscribers)?;
    let refdata = Arc::new(refdata);
    let max_window = cfg.max_window().map_err(anyhow::Error::msg)?;
    let mut sides = Vec::new();
    for (label, pack) in [("old", old), ("new", new)] {
        let rules = load_rules(&[pack.to_path_buf()], &refdata, max_window)
            .with_context(|| format!("the {label} pack {}", pack.display()))?;
        let mut side = Side::default();
        let mut progress = Progress::new(&recorded.events, label);
        let input = open_events(&recorded.events, recorded.decoder()?)?.inspect(|_| progress.tick());
        engine::run(input, Arc::new(rules), Arc::clone(&refdata), subs.clone(), &opts, &mut side, &stop_flag())?;
        progress.finish();
        sides.push(side);
    }
    let inputs = recorded.events.iter().map(|p| p.display().to_string()).collect();
    let d = diff::diff(&sides[0], &sides[1], (old.display().to_string(), new.display().to_string()), inputs, offset);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let text = serde_json::to_string_pretty(&d)?;
    std::fs::write(out.join("diff.json"), &text)?;
    std::fs::write(out.join("diff.html"), diff::render(&d))?;
    if json {
        println!("{text}");
    } else {
        println!("{:<32} {:>9} {:>9} {:>8} {:>8}", "rule", "old sends", "new sends", "gained", "lost");
        for r in &d.rules {
            println!("{:<32} {:>9} {:>9} {:>8} {:>8}", r.rule, r.old_sent, r.new_sent, r.gained, r.lost);
        }
        println!(
            "total: old {} sends, new {}; {} gained, {} lost",
            d.old_sent,
            d.new_sent,
            d.gained.len(),
            d.lost.len()
        );
        println!("output        {}/diff.html, diff.json", out.display());
    }
    Ok(0)
}

/// Reference data from a directory, or none; `unknown` is `[engine] unknown_subscribers`
/// (the same as live, so a replay forgets what live forgot).
fn load_data(dir: Option<&Path>, unknown: usize) -> Result<(RefData, Subscribers)> {
    let (refdata, mut subs) = match dir {
        Some(d) => RefData::load_dir(d)?,
        None => Default::default(),
    };
    subs.unknown_cap = Some(unknown);
    Ok((refdata, subs))
}

/// The config at `path`, or the defaults when there is none (replay and explain of a bare
/// directory of files).
fn config_or_default(path: &Path) -> Result<Config> {
    if path.exists() {
        return Ok(Config::load(path)?);
    }
    Ok(toml::from_str("")?)
}

fn explain(msisdn: &str, recorded: &Recorded) -> Result<i32> {
    let m = tidings::util::Msisdn::parse(msisdn).context("the subscriber number must be 5 to 15 digits")?;
    let cfg = config_or_default(&recorded.config)?;
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    let (refdata, subs) = load_data(recorded.data.as_deref(), cfg.engine.unknown_subscribers)?;
    match subs.get(&m) {
        Some(s) => println!(
            "{} — {} {}, {}, services [{}], dnd {}",
            m.full(),
            s.brand,
            s.tier,
            s.status,
            s.services.iter().map(|x| &**x).collect::<Vec<_>>().join(", "),
            if s.dnd.any() { "yes" } else { "no" }
        ),
        None => println!("{} — not in the reference data", m.full()),
    }
    let rules = load_rules(&recorded.rules, &refdata, cfg.max_window().map_err(anyhow::Error::msg)?)?;
    let opts = recorded.options(&cfg, Some(m))?;
    let mut sink = tidings::sink::Memory::default();
    let summary = engine::run(
        open_events(&recorded.events, recorded.decoder()?)?,
        Arc::new(rules),
        Arc::new(refdata),
        subs,
        &opts,
        &mut sink,
        &stop_flag(),
    )?;
    if summary.trace.is_empty() {
        println!("no events for this subscriber");
    }
    for line in &summary.trace {
        println!("{line}");
    }
    // Capacity acts after the shards: say what it did to this subscriber's contacts.
    for d in sink
        .decisions
        .iter()
        .filter(|d| d.msisdn == m && d.suppression() == Some(tidings::engine::Suppression::Capacity))
    {
        println!("{}", tidings::engine::explain::explain_line(d, offset));
    }
    Ok(0)
}

/// Resident and peak resident memory of this process, bytes (Linux `/proc/self/status`).
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[allow(clippy::too_many_arguments)]
fn bench(
    events: Option<PathBuf>,
    data: Option<PathBuf>,
    subscribers: usize,
    count: usize,
    (shards, batch): (usize, usize),
    rule_paths: &[PathBuf],
    sample: u32,
    json: bool,
    checkpoints: Option<CheckpointConfig>,
) -> Result<i32> {
    let (rss_start, _) = memory();
    let tmp = std::env::temp_dir().join(format!("tidings-bench-{}", std::process::id()));
    let (events, data) = match events {
        Some(e) => (e, data),
        None => {
            let cfg: Config = toml::from_str("")?;
            let opts = GenOptions {
                subscribers,
                events: count,
                days: 4,
                start: cfg.generator_start().map_err(anyhow::Error::msg)?,
                ..GenOptions::default()
            };
            eprintln!("generating {count} events for {subscribers} subscribers in {}", tmp.display());
            generator::write_dir(&opts, &tmp)?;
            (tmp.join("events.jsonl"), Some(tmp.clone()))
        }
    };
    let (refdata, subs) = load_data(data.as_deref(), tidings::refdata::DEFAULT_UNKNOWN)?;
    let rules = load_rules(rule_paths, &refdata, LoadOptions::default().max_window)?;
    let n_rules = rules.rules.len();
    let bytes = std::fs::metadata(&events).map(|m| m.len()).unwrap_or(0);
    let (input, tracker) = open_events_at(std::slice::from_ref(&events), Decoder::default(), &[])?;
    // The event-time guard as a run has it by default (its check is on every event's path).
    let guard = toml::from_str::<Config>("")?.guard().map_err(anyhow::Error::msg)?;
    let opts =
        EngineOptions { shards, batch, lateness: 120_000, latency_sample: sample, guard, ..EngineOptions::default() };
    struct Count(u64);
    impl Sink for Count {
        fn decision(&mut self, _d: &engine::Decision) -> std::io::Result<()> {
            self.0 += 1;
            Ok(())
        }
    }
    let mut sink = Count(0);
    let ckpt_dir = checkpoints.as_ref().map(|c| c.dir.clone());
    let resume = match checkpoints {
        Some(cfg) => Some(Resume { writer: Writer::start(&cfg)?, cfg, loaded: None }),
        None => None,
    };
    let t0 = std::time::Instant::now();
    let summary = run_engine(
        input.map(engine::Input::from),
        Some(tracker),
        resume,
        Arc::new(rules),
        Arc::new(refdata),
        subs,
        &opts,
        &mut sink,
        &AtomicBool::new(false),
    )?;
    // Events/s over the replay itself: from the first event taken to the last decision written.
    // Building the subscriber tables before it and freeing them after it are once per run, not
    // per event (`wall_seconds` has them).
    let wall = t0.elapsed().as_secs_f64();
    let secs = summary.replay.as_secs_f64();
    let ckpt_bytes = ckpt_dir.as_ref().map_or(0, |d| {
        std::fs::read_dir(d)
            .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).max().unwrap_or(0))
            .unwrap_or(0)
    });
    if let Some(d) = &ckpt_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    let (rss_end, peak) = memory();
    let mut pauses = summary.stats.snapshot_pauses_us.clone();
    pauses.sort_unstable();
    let pause_pct = |p: f64| -> f64 {
        let i = ((pauses.len() as f64 * p).ceil() as usize).clamp(1, pauses.len().max(1)) - 1;
        pauses.get(i).map_or(0.0, |v| f64::from(*v) / 1000.0)
    };
    let mut lat = summary.stats.latency_ns.clone();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        f64::from(lat[i]) / 1000.0
    };
    // From the peak: by the time `run` returns the shards (and every subscriber's state) are
    // gone, and what the process still holds then is only what the allocator has not yet
    // given back. The peak is what a machine must have; it includes the load.
    let per_sub = if summary.subscribers > 0 { peak.saturating_sub(rss_start) / summary.subscribers as u64 } else { 0 };
    let result = serde_json::json!({
        "events": summary.events,
        "seconds": secs,
        "wall_seconds": wall,
        "events_per_s": summary.events as f64 / secs,
        "mb_per_s": bytes as f64 / secs / 1e6,
        "shards": shards,
        "rules": n_rules,
        "decisions": sink.0,
        "subscribers": summary.subscribers,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "p999_us": pct(0.999),
        "max_us": lat.last().map_or(0.0, |v| f64::from(*v) / 1000.0),
        "latency_samples": lat.len(),
        "rss_bytes": rss_end,
        "peak_rss_bytes": peak,
        "bytes_per_subscriber": per_sub,
        "checkpoint_pause_max_ms": summary.stats.snapshot_pause_max_ns as f64 / 1e6,
        "checkpoint_pause_total_ms": summary.stats.snapshot_pause_total_ns as f64 / 1e6,
        "checkpoint_finish_at_end_ms": summary.stats.snapshot_finish_max_ns as f64 / 1e6,
        "checkpoint_pauses": pauses.len(),
        "checkpoint_pause_p99_ms": pause_pct(0.99),
        "checkpoint_pause_p999_ms": pause_pct(0.999),
        "checkpoint_bytes": ckpt_bytes,
    });
    if json {
        println!("{result}");
    } else {
        println!("| metric | value |\n| --- | --- |");
        println!(
            "| events | {} in {secs:.2} s ({wall:.2} s with building the subscriber tables and freeing them) |",
            summary.events
        );
        println!(
            "| throughput | {:.0} events/s ({:.0} MB/s), {shards} shard(s), {n_rules} rules |",
            summary.events as f64 / secs,
            bytes as f64 / secs / 1e6
        );
        println!(
            "| decision latency | p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs ({} samples) |",
            pct(0.5),
            pct(0.99),
            pct(0.999),
            lat.len()
        );
        println!(
            "| memory | {} subscribers with state, {} bytes each (peak RSS growth, reference data included), peak RSS {} MiB |",
            summary.subscribers,
            per_sub,
            peak >> 20
        );
        println!("| decisions | {} |", sink.0);
        if ckpt_dir.is_some() {
            println!(
                "| checkpoints | pauses between two batches: {} of them, p99 {:.2} ms, p99.9 {:.2} ms, longest {:.2} ms, {:.0} ms in all; at the end of input, finishing the one in progress took {:.0} ms; largest file {:.1} MB (write times in the log above) |",
                pauses.len(),
                pause_pct(0.99),
                pause_pct(0.999),
                summary.stats.snapshot_pause_max_ns as f64 / 1e6,
                summary.stats.snapshot_pause_total_ns as f64 / 1e6,
                summary.stats.snapshot_finish_max_ns as f64 / 1e6,
                ckpt_bytes as f64 / 1e6
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(0)
}

type Input = Box<dyn Iterator<Item = Result<Event, DeadLetter>>>;
/// What the engine reads.
type EngineInput = Box<dyn Iterator<Item = engine::Input>>;

/// Event files as one stream: a single file is decoded on a thread of its own (when there is a
/// core to spare: on one core the hand-off only costs); several are merged by event time.
fn open_events(files: &[PathBuf], decoder: Decoder) -> Result<Input> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let open = |f: &PathBuf| std::fs::File::open(f).with_context(|| format!("opening {}", f.display()));
    Ok(match files {
        [one] if cores > 1 => Box::new(source::ParallelDecode::new(open(one)?, &one.display().to_string(), decoder, 1)),
        [one] => Box::new(source::Lines::new(open(one)?, &one.display().to_string(), decoder)),
        _ => {
            let streams = files
                .iter()
                .map(|f| source::file(f, decoder.clone()).with_context(|| format!("opening {}", f.display())))
                .collect::<Result<Vec<_>>>()?;
            Box::new(source::Merge::new(streams))
        }
    })
}

/// [`open_events`] resumed at checkpointed positions (files not named there start at their
/// beginning), with a tracker of where each file has been read to.
fn open_events_at(files: &[PathBuf], decoder: Decoder, from: &[StreamPos]) -> Result<(Input, Arc<Tracker>)> {
    use std::io::{Seek, SeekFrom};
    let starts: Vec<StreamPos> = files
        .iter()
        .map(|f| {
            let name = source::file_stream(f);
            from.iter().find(|p| p.stream == name).cloned().unwrap_or(StreamPos { stream: name, offset: 0, records: 0 })
        })
        .collect();
    // A stream the checkpoint read that this run does not (a file renamed, or its path written
    // differently) would be read again from its start into state that already holds it.
    let gone: Vec<String> = from
        .iter()
        .filter(|p| !starts.iter().any(|s| s.stream == p.stream))
        .map(|p| format!("{} (read to byte {})", p.stream, p.offset))
        .collect();
    if !gone.is_empty() {
        bail!(
            "the checkpoint was taken reading {}, which this run does not read: name the same files (the same paths), or move the checkpoint directory away to start over",
            gone.join(", ")
        );
    }
    for s in starts.iter().filter(|s| !from.is_empty() && !from.iter().any(|p| p.stream == s.stream)) {
        eprintln!("tidings: {} is not in the checkpoint: read from its start", s.stream);
    }
    let tracker = Tracker::new(starts.clone());
    let open = |f: &PathBuf, at: &StreamPos| -> Result<std::fs::File> {
        let mut file = std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
        let len = file.metadata()?.len();
        if at.offset > len {
            bail!(
                "{}: the checkpoint says {} bytes of it were read, but it has {len}: was it replaced? (move the checkpoint directory away to start over)",
                f.display(),
                at.offset
            );
        }
        file.seek(SeekFrom::Start(at.offset))?;
        Ok(file)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let input: Input = match (files, &starts[..]) {
        ([one], [at]) if cores > 1 => Box::new(source::ParallelDecode::resumed(
            open(one, at)?,
            &one.display().to_string(),
            decoder,
            1,
            at,
            Some(Arc::clone(&tracker)),
        )),
        ([one], [at]) => Box::new(
            source::Lines::new(open(one, at)?, &one.display().to_string(), decoder)
                .resumed(at)
                .tracked(Arc::clone(&tracker), 0),
        ),
        _ => {
            let streams = files
                .iter()
                .zip(&starts)
                .map(|(f, at)| {
                    Ok(source::Lines::new(open(f, at)?, &f.display().to_string(), decoder.clone()).resumed(at))
                })
                .collect::<Result<Vec<_>>>()?;
            Box::new(source::Merge::new(streams).tracked(Arc::clone(&tracker)))
        }
    };
    Ok((input, tracker))
}

/// `n` plausible campaign rules that the generated traffic seldom satisfies: most keyed to a
/// CRM business event of their own, some to a usage service or an IVR step with a threshold.
fn synthetic_pack(n: usize) -> String {
    let mut y = String::from("# synthetic rules for `tidings bench --synthetic-rules`\n");
    let services = ["voice", "sms", "mms", "data"];
    for i in 0..n {
        let (on, cond) = match i % 10 {
            0 | 1 => (
                "usage",
                format!(
                    "event.service == {} and event.charge_fen > {} CNY and subscriber.tier == high",
                    services[i % 4],
                    1000 + i
                ),
            ),
            2 => ("ivr", format!("event.step == menu and event.node == \"9-{i}\"")),
            _ => ("crm", format!("event.event == promo_{i} and subscriber.tier in (high, valuable)")),
        };
        y.push_str(&format!(
            "- rule: synthetic_{i}\n  on: [{on}]\n  condition: {cond}\n  action: {{ channel: sms, template: \"offer {i}\" }}\n  campaign: synthetic_{}\n  priority: {}\n",
            i % 50,
            i % 100
        ));
    }
    y
}
