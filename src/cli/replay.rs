//! `tidings replay`: recorded event files through the engine in event time, into actions,
//! decisions and dead letters, and on request the campaign report.

use super::progress::Progress;
use super::recorded::Recorded;
use super::{config_or_default, load_data, load_rules, with_journal};
use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tidings::config::Config;
use tidings::engine::{self, EngineOptions};
use tidings::sink::JsonlDir;
use tidings::topology::{Parts, Resume, run_engine, sources, stop_flag};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub recorded: Recorded,
    /// Output directory for actions.jsonl, decisions.jsonl, dead_letters.jsonl.
    #[arg(long, default_value = "out/replay")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// Allowed lateness, e.g. 2m.
    #[arg(long, default_value = "2m")]
    pub lateness: String,
    /// Local UTC offset of the subscribers.
    #[arg(long, default_value = "+08:00")]
    pub utc_offset: String,
    /// Also write the campaign report: one self-contained HTML page (totals, per rule and
    /// campaign, hourly timeline, contacts per subscriber, outcomes, lift).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

pub fn replay(args: Args) -> Result<i32> {
    let Args { recorded, out, shards, batch, lateness, utc_offset, report } = args;
    let offset = tidings::time::parse_offset(&utc_offset).context("--utc-offset must look like +08:00")?;
    let lateness = tidings::time::parse_duration(&lateness).map_err(anyhow::Error::msg)?;
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
        clock_start: tidings::time::Millis::MIN,
        slice: cfg.slice().map_err(anyhow::Error::msg)?,
        heartbeat: None,
        requests_only: None,
        budget_share: 1.0,
        campaigns: None,
        funnel: None,
        journeys: None,
    };
    run(&recorded, &cfg, &out, &opts, report.as_deref())
}

fn run(recorded: &Recorded, cfg: &Config, out: &Path, opts: &EngineOptions, report: Option<&Path>) -> Result<i32> {
    use tidings::report::{Collector, Context, Observer, html};
    let (refdata, subs) = load_data(recorded.data.as_deref(), cfg.engine.unknown_subscribers)?;
    let refdata = with_journal(refdata, cfg, opts.offset)?;
    // Which journal of refusals the replay held to: it is found by the config (the output or
    // checkpoint directory), so a replay run where a live one ran reads that run's refusals.
    let journal = cfg.optout_journal().map(|path| match path.exists() {
        true => {
            let (refusals, subscribers) = refdata.optout_journal.counts();
            format!(
                "opt-outs      {refusals} refusal(s) of {subscribers} subscriber(s) read from {} (refusals made live hold here too)",
                path.display()
            )
        }
        false => format!("opt-outs      no journal at {}: only the replies in the input refuse", path.display()),
    });
    let rules = load_rules(&recorded.rules, &refdata, &cfg.load_options().map_err(anyhow::Error::msg)?)?;
    let (mut observer, responses) = Observer::new(&cfg.report, &rules).map_err(anyhow::Error::msg)?;
    let mut collector = Collector::new(&rules, opts.offset);
    let version = rules.version.clone();
    // What each rule's SMS asks the subscriber to reply: the report ties replies as policy does.
    let asks: std::collections::HashMap<Arc<str>, Box<[Box<str>]>> = rules
        .rules
        .iter()
        .map(|r| (r.name.clone(), tidings::policy::replies::sms_asks(r, &opts.policy.unsubscribe)))
        .collect();
    let mut files = JsonlDir::create(out, opts.offset)?;
    let mut sink = tidings::sink::Tee(&mut files, &mut collector);
    let mut progress = Progress::new(&recorded.events, "replay");
    let watch = report.is_some();
    // A replay with checkpoints on resumes where the last one left off (the report then covers
    // what this run read).
    let mut resume = Resume::open(cfg)?;
    let from = resume.as_ref().map_or(&[][..], |r| r.positions());
    let (input, tracker) = sources::open_events_at(&recorded.events, recorded.decoder()?, from)?;
    if let Some(r) = resume.as_mut() {
        r.tracker = Some(tracker);
    }
    let input = input.inspect(|item| {
        progress.tick();
        if let (true, Ok(ev)) = (watch, item) {
            observer.event(ev);
        }
    });
    let t0 = std::time::Instant::now();
    let parts = Parts { rules: Arc::new(rules), refdata: Arc::new(refdata), subscribers: subs };
    let summary = run_engine(input.map(engine::Input::from), parts, resume, opts, &mut sink, &stop_flag())?;
    progress.finish();
    println!("{}", tidings::engine::render_summary(&summary, t0.elapsed(), opts.offset));
    if let Some(j) = journal {
        println!("{j}");
    }
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
            ties: tidings::report::replies::Ties {
                reply_window: opts.policy.reply_window,
                unsubscribe: &opts.policy.unsubscribe,
                asks: &asks,
            },
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
