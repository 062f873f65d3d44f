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
use tidings::source;

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
}

impl Recorded {
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
        /// Add this many synthetic campaign rules to the pack (rule-count scaling).
        #[arg(long, default_value_t = 0)]
        synthetic_rules: usize,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
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
        Cmd::Bench { events, data, subscribers, count, shards, mut rules, sample, synthetic_rules, json } => {
            if synthetic_rules > 0 {
                let path = std::env::temp_dir().join(format!("tidings-synthetic-{}.yaml", std::process::id()));
                std::fs::write(&path, synthetic_pack(synthetic_rules))?;
                rules.push(path);
            }
            bench(events, data, subscribers, count, shards, &rules, sample, json)
        }
        Cmd::Explain { msisdn, recorded } => explain(&msisdn, &recorded),
        Cmd::Test { paths } => test(&paths),
        Cmd::Replay { recorded, out, shards, batch, lateness, utc_offset } => {
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
            };
            replay(&recorded, &cfg, &out, &opts)
        }
        Cmd::Gen { out, seed, subscribers, events, start, days } => {
            let cfg = Config {
                source: tidings::config::SourceSection {
                    generator: tidings::config::GeneratorSection { seed, subscribers, events, start, days },
                    ..Default::default()
                },
                ..toml::from_str("")?
            };
            let opts = gen_options(&cfg)?;
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
    // Ctrl-C: stop reading, finish the batch in hand, flush outputs and print the summary.
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
        std::thread::spawn(move || {
            rt.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("interrupted: finishing the current batch");
                    s.store(true, Ordering::Relaxed);
                }
            })
        });
    }
    stop
}

fn run(config: &Path, shards: Option<usize>, quiet: bool) -> Result<i32> {
    let cfg = Config::load(config)?;
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    let decoder = Decoder { max_line: cfg.engine.max_line_bytes };
    let gen_opts = gen_options(&cfg)?;
    let (refdata, subs) = match (&cfg.data.dir, &cfg.source.kind) {
        (Some(dir), _) => RefData::load_dir(dir)?,
        (None, SourceKind::Generator) => generated_refdata(&gen_opts)?,
        (None, _) => Default::default(),
    };
    let subs = own_share(&cfg, subs);
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
    let opts = EngineOptions {
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
    // A live stream: what it brings is decided at once (no waiting for a full batch), and outcome
    // events and IVR requests flow into it as they come.
    let mut feedback = None;
    let mut asks = None;
    let mut explain = None;
    let mut reloader = None;
    let input: Box<dyn Iterator<Item = engine::Input>> = match cfg.source.kind {
        SourceKind::Generator => Box::new(source::generated(&gen_opts, decoder).map(engine::Input::from)),
        SourceKind::Stdin => {
            let (mut live, tx) = source::Live::new(std::io::stdin(), "stdin", decoder);
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
        SourceKind::Files => Box::new(open_events(&cfg.source.files, decoder)?.map(engine::Input::from)),
        SourceKind::Fluvio => fluvio_source(&cfg, decoder)?,
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
        Some(a) => Some(ApiServer::start(a, &rules, asks, explain, reloader)?),
        None => None,
    };
    let mut sink = Fanout(sinks);
    let t0 = std::time::Instant::now();
    let summary = engine::run(input, Arc::new(rules), refdata, subs, &opts, &mut sink, &stop)?;
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

#[cfg(feature = "fluvio")]
fn fluvio_source(cfg: &Config, decoder: Decoder) -> Result<Box<dyn Iterator<Item = engine::Input>>> {
    let f = cfg.fluvio.as_ref().context("source.kind = \"fluvio\" needs a [fluvio] section")?;
    let owned = cfg.scale.owned_partitions();
    let src =
        source::fluvio::FluvioSource::start(f, &owned, cfg.scale.partitions, decoder).map_err(anyhow::Error::msg)?;
    eprintln!("fluvio        reading {:?} partitions {owned:?} from {}", f.topics, f.endpoint);
    Ok(Box::new(src))
}

#[cfg(not(feature = "fluvio"))]
fn fluvio_source(_: &Config, _: Decoder) -> Result<Box<dyn Iterator<Item = engine::Input>>> {
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
    ) -> Result<ApiServer> {
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
        }
        if let Some(e) = explain {
            admin = admin.with_explain(e);
        }
        if let Some(r) = &reloader {
            admin = admin.with_reloader(r.clone());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tidings-api")
            .enable_all()
            .build()?;
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
        rt.spawn(tidings::api::serve(listener, Arc::new(admin), async move { s.notified().await }));
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
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tidings-delivery")
            .enable_all()
            .build()?;
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
        rt.spawn(tidings::api::serve(listener, Arc::new(callback_handler(tx)), async move { s.notified().await }));
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
                Some(r) => eprintln!("ok: {} rules in {} files, {} warning(s)", r.rules.len(), r.files.len(), warnings),
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

fn replay(recorded: &Recorded, cfg: &Config, out: &Path, opts: &EngineOptions) -> Result<i32> {
    let (refdata, subs) = load_data(recorded.data.as_deref())?;
    let rules = load_rules(&recorded.rules, &refdata, cfg.max_window().map_err(anyhow::Error::msg)?)?;
    let mut sink = JsonlDir::create(out, opts.offset)?;
    let t0 = std::time::Instant::now();
    let summary = engine::run(
        open_events(&recorded.events, Decoder::default())?,
        Arc::new(rules),
        Arc::new(refdata),
        subs,
        opts,
        &mut sink,
        &stop_flag(),
    )?;
    println!("{}", tidings::telemetry::render_summary(&summary, t0.elapsed(), opts.offset));
    println!("output        {}/actions.jsonl, decisions.jsonl, dead_letters.jsonl", out.display());
    Ok(0)
}

/// Reference data from a directory, or none.
fn load_data(dir: Option<&Path>) -> Result<(RefData, Subscribers)> {
    Ok(match dir {
        Some(d) => RefData::load_dir(d)?,
        None => Default::default(),
    })
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
    let (refdata, subs) = load_data(recorded.data.as_deref())?;
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
    let opts = EngineOptions {
        shards: 1,
        batch: cfg.engine.batch,
        lateness: cfg.lateness().map_err(anyhow::Error::msg)?,
        offset,
        until: recorded.until()?,
        policy: cfg.resolved_policy.clone(),
        capacity: cfg.capacity,
        trace: Some(m),
        latency_sample: 0,
    };
    let mut sink = tidings::sink::Memory::default();
    let summary = engine::run(
        open_events(&recorded.events, Decoder::default())?,
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
        println!("{}", tidings::engine::shard::explain_line(d, offset));
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
    shards: usize,
    rule_paths: &[PathBuf],
    sample: u32,
    json: bool,
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
    let (refdata, subs) = load_data(data.as_deref())?;
    let rules = load_rules(rule_paths, &refdata, LoadOptions::default().max_window)?;
    let n_rules = rules.rules.len();
    let bytes = std::fs::metadata(&events).map(|m| m.len()).unwrap_or(0);
    let input = open_events(std::slice::from_ref(&events), Decoder::default())?;
    let opts =
        EngineOptions { shards, batch: 4096, lateness: 120_000, latency_sample: sample, ..EngineOptions::default() };
    struct Count(u64);
    impl Sink for Count {
        fn decision(&mut self, _d: &engine::Decision) -> std::io::Result<()> {
            self.0 += 1;
            Ok(())
        }
    }
    let mut sink = Count(0);
    let t0 = std::time::Instant::now();
    let summary =
        engine::run(input, Arc::new(rules), Arc::new(refdata), subs, &opts, &mut sink, &AtomicBool::new(false))?;
    let secs = t0.elapsed().as_secs_f64();
    let (rss_end, peak) = memory();
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
    });
    if json {
        println!("{result}");
    } else {
        println!("| metric | value |\n| --- | --- |");
        println!("| events | {} in {secs:.2} s |", summary.events);
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
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(0)
}

type Input = Box<dyn Iterator<Item = Result<Event, DeadLetter>>>;

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
