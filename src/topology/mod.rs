//! A whole run built from a config, then run (Vector's topology builder; ripgrep's
//! `LowArgs` -> `HiArgs`). [`Topology::build`] reads and checks everything a run needs — the
//! config's values, the reference data, the rule pack, the source files — collecting every
//! mistake at once, each at its place in the config file; it starts nothing: no thread, no
//! socket, no output opened (only the generator's reference data passes through a scratch
//! directory, and only for a config found right). [`Topology::run`] then opens the sources and the sinks,
//! starts delivery and the API, resumes from the last checkpoint and runs the engine to the end
//! of its input (or a signal), and closes everything in order.
//!
//! Its parts are also what the CLI's other commands (replay, bench) build their runs from:
//! [`sources`] opens event files where a checkpoint left them, [`resume`] runs the engine with
//! checkpoints.

mod api;
mod config_file;
mod delivery;
mod error;
pub mod resume;
pub mod sources;

pub use config_file::ConfigFile;
pub use delivery::Delivery;
pub use error::{ConfigError, ConfigErrors, Error};
pub use resume::{Parts, Resume, run_engine};

use crate::config::{Config, SourceKind};
use crate::engine::Sink;
use crate::engine::{self, EngineOptions};
use crate::event::Decoder;
use crate::generator::GenOptions;
use crate::refdata::{OptOutJournal, RefData, Subscribers};
use crate::rules::{self, LoadOptions, RuleSet};
use crate::sink::{Fanout, JsonlDir, Stdout};
use crate::source::{self, Tracker};
use crate::state::checkpoint::StreamPos;
use api::{ApiServer, Services};
use error::doing;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the command line says over the config (`tidings run --shards 4 --quiet`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// The number of shards instead of `[engine] shards`.
    pub shards: Option<usize>,
    /// No actions on standard output, whatever `[output] stdout` says.
    pub quiet: bool,
}

/// A run, built and checked, ready to start.
pub struct Topology {
    cfg: Config,
    quiet: bool,
    offset: chrono::FixedOffset,
    decoder: Decoder,
    gen_opts: GenOptions,
    refdata: Arc<RefData>,
    subs: Subscribers,
    rules: RuleSet,
    max_window: i64,
    opts: EngineOptions,
}

impl Topology {
    /// Reads the config at `path` and builds the run it describes: every mistake at once.
    pub fn load(path: &Path, overrides: Overrides) -> Result<Topology, ConfigErrors> {
        let file = ConfigFile::read(path)?;
        let (cfg, errors) = file.parse();
        let Some(cfg) = cfg else { return Err(ConfigErrors(errors)) };
        match Topology::build(&cfg, &file, overrides) {
            Ok(topology) if errors.is_empty() => Ok(topology),
            // Built from a config whose bad keys took their defaults: it started nothing.
            Ok(_) => Err(ConfigErrors(errors)),
            Err(more) => Err(ConfigErrors(errors.into_iter().chain(more.0).collect()).sorted()),
        }
    }

    /// Builds the run `cfg` describes (`file` is where its keys are written, for the errors'
    /// places): reference data read, rules compiled, sources checked. Opens nothing for
    /// writing and starts nothing.
    pub fn build(cfg: &Config, file: &ConfigFile, overrides: Overrides) -> Result<Topology, ConfigErrors> {
        let mut found = Found { file, errors: file.check(cfg) };
        let offset = cfg.offset().ok();
        let max_window = cfg.max_window().ok();
        let live = match cfg.source.kind {
            SourceKind::Stdin => true,
            SourceKind::Fluvio => !cfg.fluvio.as_ref().is_some_and(|f| f.until_end),
            SourceKind::Generator | SourceKind::Files => false,
        };
        let max_ahead_of_wall = if live { cfg.max_ahead_of_wall().ok().flatten() } else { None };
        let decoder = Decoder { max_line: cfg.engine.max_line_bytes, max_ahead_of_wall, ..Decoder::default() };
        #[cfg(not(feature = "fluvio"))]
        {
            let sinks = cfg.fluvio.as_ref().is_some_and(|f| {
                !f.actions_topic.is_empty() || !f.decisions_topic.is_empty() || !f.dead_letters_topic.is_empty()
            });
            if matches!(cfg.source.kind, SourceKind::Fluvio) {
                found.check("source.kind", Err::<(), _>(sources::NO_FLUVIO.into()));
            } else if sinks {
                found.check("fluvio", Err::<(), _>(sources::NO_FLUVIO.into()));
            }
        }
        if matches!(cfg.source.kind, SourceKind::Files) {
            for f in &cfg.source.files {
                found
                    .check("source.files", std::fs::File::open(f).map_err(|e| format!("opening {}: {e}", f.display())));
            }
        }
        // Read whatever the source (a bad start date fails a run of files too, as it always has).
        let gen_opts = found.check("source.generator.start", gen_options(cfg));
        let data = match (&cfg.data.dir, &cfg.source.kind, &gen_opts) {
            (Some(dir), _, _) => found.check("data.dir", RefData::load_dir(dir).map_err(|e| e.to_string())),
            // The generator's own reference data is made and read back: only for a config that
            // is otherwise right (the rules are then checked without reference data).
            (None, SourceKind::Generator, Some(g)) if found.errors.is_empty() => {
                found.check("source.generator", sources::generated_refdata(g).map_err(|e| e.to_string()))
            }
            (None, SourceKind::Generator, _) => None,
            (None, _, _) => Some(Default::default()),
        };
        let data = data.map(|(refdata, subs)| (refdata, own_share(cfg, subs)));
        let opts = cfg.load_options_with(max_window.unwrap_or(LoadOptions::default().max_window));
        // Beside mistakes in the config, the pack's warnings (often about reference data the
        // config failed to name) are noise: only its errors are said.
        let said = if found.errors.is_empty() { Said::All } else { Said::Errors };
        if let Some(api) = &cfg.api {
            found.check("api.users", crate::api::users::Users::new(&api.admin_token, &api.users).map(|_| ()));
        }
        // With governed deploys the version last deployed runs, not the files of `rules.paths`
        // (those are only the first version, imported at the first start).
        let deployed = found.check("api.deploy", deployed_pack(cfg)).flatten();
        if let Some(dir) = &deployed {
            eprintln!("tidings: rules from the deployed version {}", dir.display());
        }
        let rule_paths = deployed.map_or_else(|| cfg.rules.paths.clone(), |d| vec![d]);
        let rules = found.check("rules.paths", compile_rules(&rule_paths, data.as_ref().map(|(r, _)| r), &opts, said));
        let (Some(rules), Some((refdata, mut subs)), Some(offset), Some(max_window), Some(gen_opts), true) =
            (rules, data, offset, max_window, gen_opts, found.errors.is_empty())
        else {
            return Err(found.into_errors());
        };
        subs.unknown_cap = Some(cfg.engine.unknown_subscribers);
        let mut refdata = refdata;
        if let Some(path) = cfg.optout_journal() {
            let journal = OptOutJournal::open(&path, offset).map_err(|e| e.to_string());
            refdata.optout_journal = unchecked(journal)?;
        }
        eprintln!(
            "tidings: {} rules ({} windows, {} distinct counts, {} sequences) version {}, {} subscribers, {} cells",
            rules.rules.len(),
            rules.aggs.len(),
            rules.distinct.len(),
            rules.seqs.len(),
            rules.version,
            subs.profiles.len(),
            refdata.cells.len()
        );
        let opts = EngineOptions {
            shards: overrides.shards.unwrap_or_else(|| cfg.shards()),
            batch: cfg.engine.batch,
            lateness: unchecked(cfg.lateness())?,
            offset,
            until: None,
            policy: cfg.resolved_policy.clone(),
            capacity: cfg.capacity,
            trace: None,
            // With the API up, time every 16th event for the latency histogram on /metrics.
            latency_sample: if cfg.api.is_some() { 16 } else { 0 },
            realtime: cfg.engine.realtime_priority,
            guard: unchecked(cfg.guard())?,
            // A live stream's event time starts at the host's clock: its first events need no
            // other subscribers to agree with them (a replay of it agrees: see README).
            clock_start: if live { crate::time::wall_ms() } else { crate::time::Millis::MIN },
            slice: unchecked(cfg.slice())?,
            heartbeat: Some(Arc::default()),
            requests_only: None,
            budget_share: if cfg.scale.is_shared() { cfg.scale.share() } else { 1.0 },
            campaigns: Some(Arc::default()),
            funnel: Some(Arc::new(crate::engine::funnel::FunnelBook::new(cfg.engine.funnel_days))),
            journeys: Some(Arc::default()),
        };
        Ok(Topology {
            cfg: cfg.clone(),
            quiet: overrides.quiet,
            offset,
            decoder,
            gen_opts,
            refdata: Arc::new(refdata),
            subs,
            rules,
            max_window,
            opts,
        })
    }

    /// Runs to the end of the input (or until a signal), then closes the sinks, drains delivery
    /// and stops the API.
    pub fn run(self) -> Result<(), Error> {
        let Topology { cfg, quiet, offset, decoder, gen_opts, refdata, subs, rules, max_window, mut opts } = self;
        let rules = Arc::new(rules);
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        if !cfg.output.dir.as_os_str().is_empty() {
            sinks.push(Box::new(
                JsonlDir::create(&cfg.output.dir, offset)
                    .map_err(doing(|| format!("creating {}", cfg.output.dir.display())))?,
            ));
        }
        if cfg.output.stdout && !quiet {
            sinks.push(Box::new(Stdout::new(offset)));
        }
        let stop = stop_flag();
        let mut resume = Resume::open(&cfg)?;
        if resume.as_ref().is_none_or(|r| r.loaded.is_none()) {
            // No history: every window starts empty, as after a reload that adds them all.
            for w in crate::rules::carry::Carry::between(&RuleSet::default(), &rules).warnings {
                eprintln!("tidings: starting with no history: warning: {w}");
            }
        }
        let from = resume.as_ref().map_or(&[][..], |r| r.positions());
        let mut services = Services {
            heartbeat: opts.heartbeat.clone(),
            campaigns: opts.campaigns.clone(),
            funnel: opts.funnel.clone(),
            journeys: opts.journeys.clone(),
            ..Services::default()
        };
        // A live stream: what it brings is decided at once (no waiting for a full batch), and
        // outcome events and IVR requests flow into it as they come.
        let mut feedback = None;
        let mut tracker = None;
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
                    services.explain =
                        Some(crate::api::admin::Explain { requests: live.explain_requests(), wake: tx.clone() });
                    services.reloader = Some(Arc::new(crate::api::reload::Reloader {
                        paths: cfg.rules.paths.clone(),
                        refdata: Arc::clone(&refdata),
                        opts: cfg.load_options_with(max_window),
                        requests: live.reloads(),
                        wake: tx.clone(),
                        current: std::sync::Mutex::new((api::rules_info(&rules), Arc::clone(&rules))),
                    }));
                }
                if let (Some(api), Some(r)) = (&cfg.api, &services.reloader) {
                    services.deploy = open_deploy(&cfg, api, r, &opts, &refdata, max_window)?;
                }
                if let Some(api) = &cfg.api {
                    let a = crate::api::ivr::Asks::new(live.priority(), tx.clone(), Some(&api.ivr_log))
                        .map_err(doing(|| format!("opening {}", api.ivr_log.display())))?;
                    let on_take = a.clone();
                    live.on_take(move |src| {
                        if src == crate::api::ivr::SOURCE {
                            on_take.taken();
                        }
                    });
                    sinks.push(Box::new(crate::api::ivr::Replies(a.clone())));
                    services.asks = Some(a);
                }
                feedback = Some(tx);
                Box::new(live)
            }
            SourceKind::Files => {
                let (input, t) = sources::open_events_at(&cfg.source.files, decoder, from)?;
                tracker = Some(t);
                Box::new(input.map(engine::Input::from))
            }
            SourceKind::Fluvio => {
                let (input, t, failure) = sources::fluvio_source(&cfg, decoder, from, &stop)?;
                tracker = Some(t);
                read_failure = Some(failure);
                input
            }
        };
        if let Some(r) = resume.as_mut() {
            r.tracker = tracker;
        }
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
        if let Some(f) = cfg.fluvio.as_ref().filter(|f| {
            !f.actions_topic.is_empty() || !f.decisions_topic.is_empty() || !f.dead_letters_topic.is_empty()
        }) {
            sinks.push(sources::fluvio_sink(f, offset)?);
        }
        let delivery = match &cfg.delivery {
            Some(d) => {
                let notify = Arc::new(tokio::sync::Notify::new());
                sinks.push(Box::new(
                    crate::sink::OutboxSink::open(&d.outbox, offset, Some(notify.clone()))
                        .map_err(doing(|| format!("opening the outbox {}", d.outbox.display())))?,
                ));
                Some(Delivery::start(d.clone(), offset, notify, stop.clone(), feedback)?)
            }
            None => None,
        };
        let api = match &cfg.api {
            Some(a) => Some(ApiServer::start(a, &rules, services, &cfg)?),
            None => None,
        };
        let mut sink = Fanout(sinks);
        let t0 = std::time::Instant::now();
        let parts = Parts { rules, refdata, subscribers: subs };
        let summary = match run_engine(input, parts, resume, &opts, &mut sink, &stop) {
            Ok(summary) => summary,
            Err(e) => {
                // A fatal error (a disk full): the submits in flight are answered and recorded first.
                stop.store(true, Ordering::Relaxed);
                if let Some(Err(d)) = delivery.map(Delivery::finish) {
                    eprintln!("tidings: {}", chain(&d));
                }
                return Err(e);
            }
        };
        eprintln!("{}", crate::engine::render_summary(&summary, t0.elapsed(), offset));
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
            return Err(Error::Refused(format!("{why} (reading stopped there)")));
        }
        Ok(())
    }
}

/// A value [`ConfigFile::check`] has found right (for a config that did not pass it, the error).
fn unchecked<T>(r: Result<T, String>) -> Result<T, ConfigErrors> {
    r.map_err(|message| ConfigErrors::from(ConfigError { file: None, line_col: None, message }))
}

/// The mistakes found while building, each at its key in the config file.
struct Found<'a> {
    file: &'a ConfigFile,
    errors: Vec<ConfigError>,
}

impl Found<'_> {
    /// `r`'s value, or its error noted at `key` (once: the config's own checks may have said it).
    fn check<T>(&mut self, key: &str, r: Result<T, String>) -> Option<T> {
        let e = match r {
            Ok(v) => return Some(v),
            Err(message) => self.file.error_at(key, message),
        };
        if !self.errors.iter().any(|seen| seen.message == e.message) {
            self.errors.push(e);
        }
        None
    }

    /// The mistakes in the order of the file (those without a place after the others).
    fn into_errors(self) -> ConfigErrors {
        ConfigErrors(self.errors).sorted()
    }
}

/// An error and its causes on one line, `a: b: c`, as the command prints its errors.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Which of a rule pack's diagnostics [`compile_rules`] prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    All,
    Errors,
}

/// The rule pack at `paths` compiled, its diagnostics (`said`) printed to standard error as
/// `validate` prints them; the error says how many of them were errors.
pub fn compile_rules(
    paths: &[PathBuf],
    refdata: Option<&RefData>,
    opts: &LoadOptions,
    said: Said,
) -> Result<RuleSet, String> {
    let loaded = rules::load(paths, refdata, opts);
    for d in loaded.diagnostics.iter().filter(|d| said == Said::All || d.is_error()) {
        eprint!("{}", d.render());
    }
    let n = loaded.errors();
    loaded.rules.ok_or_else(|| format!("the rule pack has {n} error(s); nothing was run"))
}

/// The generator's settings from the config's `[source.generator]` and time settings.
pub fn gen_options(cfg: &Config) -> Result<GenOptions, String> {
    let g = &cfg.source.generator;
    Ok(GenOptions {
        seed: g.seed,
        subscribers: g.subscribers,
        events: g.events,
        start: cfg.generator_start()?,
        days: g.days.max(1),
        offset_secs: cfg.offset()?.local_minus_utc(),
    })
}

/// The subscribers this instance owns (`[scale]`); all of them when it works alone.
fn own_share(cfg: &Config, subs: Subscribers) -> Subscribers {
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

/// The deploy store's live version, when deploys are governed and one was deployed.
fn deployed_pack(cfg: &Config) -> Result<Option<PathBuf>, String> {
    match cfg.deploy_dir() {
        Some(dir) => {
            crate::api::store::live_pack_dir(&dir).map_err(|e| format!("the deploy store {}: {e}", dir.display()))
        }
        None => Ok(None),
    }
}

/// The deploy flow of a live run with `[api.deploy]`: its store opened (the first start imports
/// the rule files as the first version) and its checks set up like the run.
fn open_deploy(
    cfg: &Config,
    api: &crate::api::admin::ApiConfig,
    reloader: &Arc<crate::api::reload::Reloader>,
    opts: &EngineOptions,
    refdata: &Arc<RefData>,
    max_window: i64,
) -> Result<Option<Arc<crate::api::deploy::Deploy>>, Error> {
    let (Some(d), Some(dir)) = (&api.deploy, cfg.deploy_dir()) else { return Ok(None) };
    let checks = crate::api::checks::Checks {
        refdata: Arc::clone(refdata),
        load: cfg.load_options_with(max_window),
        data_dir: cfg.data.dir.clone(),
        unknown_subscribers: cfg.engine.unknown_subscribers,
        opts: EngineOptions {
            shards: 1,
            until: None,
            trace: None,
            latency_sample: 0,
            realtime: 0,
            clock_start: crate::time::Millis::MIN,
            heartbeat: None,
            requests_only: None,
            // A check's engine publishes nothing: the live engine's campaigns and funnel are
            // what the API serves (a backtest used to overwrite them with its own).
            campaigns: None,
            funnel: None,
            journeys: None,
            ..opts.clone()
        },
        backtest: d.backtest.clone(),
    };
    let deploy = crate::api::deploy::Deploy::open(d, &dir, &cfg.rules.paths, Arc::clone(reloader), checks)
        .map_err(doing(|| format!("opening the deploy store {}", dir.display())))?;
    eprintln!("deploy        governed: versions and audit log in {} ({} approval(s))", dir.display(), d.approvals);
    // Approvals are given by approvers (and admins) other than the author: say so when there
    // are too few for any change to be approved.
    let approvers = api.users.iter().filter(|u| u.role >= crate::api::users::Role::Approver).count()
        + usize::from(!api.admin_token.is_empty());
    if d.approvals as usize > approvers {
        eprintln!(
            "deploy        warning: {} approval(s) from people other than the author, and {approvers} user(s) may approve",
            d.approvals
        );
    }
    Ok(Some(Arc::new(deploy)))
}

/// A flag raised by Ctrl-C or SIGTERM: the run stops reading, finishes the batch in hand (and
/// takes a checkpoint when they are on), flushes its outputs and prints its summary.
pub fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
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
