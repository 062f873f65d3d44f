//! `tidings bench`: events/s, decision latency percentiles, memory per subscriber and, with
//! checkpoints on, the pauses they cause. BENCHMARKS.md quotes what it prints: it measures and
//! prints the same way from one version to the next.

use super::{load_data, load_rules};
use anyhow::Result;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tidings::config::Config;
use tidings::engine::Sink;
use tidings::engine::{self, EngineOptions, TickCost};
use tidings::event::Decoder;
use tidings::generator::{self, GenOptions};
use tidings::rules::LoadOptions;
use tidings::state::checkpoint::CheckpointConfig;
use tidings::time::format_ts;
use tidings::topology::{Parts, Resume, run_engine, sources};

#[derive(clap::Args)]
pub struct Args {
    /// Events file (default: generate one with --subscribers/--count).
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Reference data directory for --events.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, default_value_t = 1_000_000)]
    pub subscribers: usize,
    /// Events to generate when no file is given.
    #[arg(long, default_value_t = 2_000_000)]
    pub count: usize,
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    #[arg(long, default_value = "rules")]
    pub rules: Vec<PathBuf>,
    /// Time every Nth event's processing.
    #[arg(long, default_value_t = 4)]
    pub sample: u32,
    /// Events per batch handed to the shards (`[engine] batch`; its default here too, so that
    /// the bench measures what a run does: a batch's events are written before the first is
    /// decided, and 1,024 of them stay in the core's cache where 4,096 do not).
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
    /// Add this many synthetic campaign rules to the pack (rule-count scaling).
    #[arg(long, default_value_t = 0)]
    pub synthetic_rules: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Take checkpoints during the run (into a temporary directory) and report the longest
    /// pause they caused and their size and write time.
    #[arg(long)]
    pub checkpoint: bool,
    /// With --checkpoint: take one every this many events.
    #[arg(long, default_value_t = 500_000)]
    pub checkpoint_every: u64,
    /// With --checkpoint: the longest a shard copies state between two batches, e.g. 1ms.
    #[arg(long, default_value = "1ms")]
    pub checkpoint_slice: String,
}

pub fn bench(args: Args) -> Result<i32> {
    let mut rules = args.rules.clone();
    if args.synthetic_rules > 0 {
        let path = std::env::temp_dir().join(format!("tidings-synthetic-{}.yaml", std::process::id()));
        std::fs::write(&path, synthetic_pack(args.synthetic_rules))?;
        rules.push(path);
    }
    let checkpoints = match args.checkpoint {
        true => {
            let slice = tidings::time::parse_duration(&args.checkpoint_slice).map_err(anyhow::Error::msg)?;
            Some(CheckpointConfig {
                dir: std::env::temp_dir().join(format!("tidings-bench-ckpt-{}", std::process::id())),
                every_events: args.checkpoint_every,
                every: std::time::Duration::ZERO,
                keep: 2,
                slice: std::time::Duration::from_millis(slice.max(0) as u64),
            })
        }
        false => None,
    };
    measure(&args, &rules, checkpoints)
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

/// The measurement itself: `rule_paths` is the pack with any synthetic rules added.
fn measure(args: &Args, rule_paths: &[PathBuf], checkpoints: Option<CheckpointConfig>) -> Result<i32> {
    let Args { ref events, ref data, subscribers, count, shards, sample, batch, json, .. } = *args;
    let (rss_start, _) = memory();
    let tmp = std::env::temp_dir().join(format!("tidings-bench-{}", std::process::id()));
    let (events, data) = match events.clone() {
        Some(e) => (e, data.clone()),
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
    let rules = load_rules(rule_paths, &refdata, &LoadOptions::default())?;
    let n_rules = rules.rules.len();
    let bytes = std::fs::metadata(&events).map(|m| m.len()).unwrap_or(0);
    let (input, tracker) = sources::open_events_at(std::slice::from_ref(&events), Decoder::default(), &[])?;
    // The event-time guard as a run has it by default (its check is on every event's path).
    let guard = toml::from_str::<Config>("")?.guard().map_err(anyhow::Error::msg)?;
    let opts =
        EngineOptions { shards, batch, lateness: 120_000, latency_sample: sample, guard, ..EngineOptions::default() };
    struct Count(u64);
    impl Sink for Count {
        fn decision(&mut self, _d: &tidings::contact::Decision) -> std::io::Result<()> {
            self.0 += 1;
            Ok(())
        }
    }
    let mut sink = Count(0);
    let ckpt_dir = checkpoints.as_ref().map(|c| c.dir.clone());
    let resume = match checkpoints {
        Some(cfg) => Some(Resume { tracker: Some(tracker), ..Resume::fresh(cfg)? }),
        None => None,
    };
    let t0 = std::time::Instant::now();
    let parts = Parts { rules: Arc::new(rules), refdata: Arc::new(refdata), subscribers: subs };
    let summary = run_engine(input.map(engine::Input::from), parts, resume, &opts, &mut sink, &AtomicBool::new(false))?;
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
    let ticks = by_tick(&summary.stats.daily_ticks);
    let tick_ms = |t: &TickCost| t.ns as f64 / 1e6;
    let ticks_ms: f64 = ticks.iter().map(tick_ms).sum();
    let tick_json: Vec<serde_json::Value> = ticks
        .iter()
        .map(|t| {
            serde_json::json!({
                "at": format_ts(t.at, opts.offset),
                "visits": t.visits,
                "decisions": t.decisions,
                "ms": tick_ms(t),
            })
        })
        .collect();
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
        "daily_ticks_ms": ticks_ms,
        "daily_visits": summary.stats.daily_visits,
        // Of the visits, those that worked out derived values (the others' had settled) and
        // those that evaluated a daily journey's start (the others' steady part was false).
        "daily_derives_computed": summary.stats.derives_computed,
        "daily_starts_evaluated": summary.stats.starts_evaluated,
        "daily_ticks": tick_json,
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
        if let Some(longest) = ticks.iter().max_by_key(|t| t.ns) {
            println!(
                "| daily ticks | {} ticks, {ticks_ms:.0} ms on the shards ({:.0} % of their time), {} subscribers visited ({} had derived values worked out, {} a journey's start evaluated); the longest {:.0} ms at {} ({} visited, {} decisions) |",
                ticks.len(),
                100.0 * ticks_ms / (secs * 1e3 * shards.max(1) as f64),
                summary.stats.daily_visits,
                summary.stats.derives_computed,
                summary.stats.starts_evaluated,
                tick_ms(longest),
                format_ts(longest.at, opts.offset),
                longest.visits,
                longest.decisions
            );
        }
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

/// The shards' costs of each daily tick added up by tick (a tick runs on every shard), in time
/// order.
fn by_tick(costs: &[TickCost]) -> Vec<TickCost> {
    let mut ticks: std::collections::BTreeMap<i64, TickCost> = std::collections::BTreeMap::new();
    for c in costs {
        let t = ticks.entry(c.at).or_insert(TickCost { at: c.at, visits: 0, decisions: 0, ns: 0 });
        t.visits += c.visits;
        t.decisions += c.decisions;
        t.ns += c.ns;
    }
    ticks.into_values().collect()
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
