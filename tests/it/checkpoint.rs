//! Checkpoints through the engine: a run stopped after any item and resumed from its checkpoint
//! decides exactly (same decisions, same order) what one run over the whole input decides — with
//! several shards, timers, quiet-hours deferrals and a channel-capacity queue in flight — and a
//! checkpoint taken under other rules carries the state over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tidings::engine::{self, Durable, EngineOptions, Input};
use tidings::event::Decoder;
use tidings::generator::{self, GenOptions};
use tidings::refdata::RefData;
use tidings::rules::{self, LoadOptions, RuleSet};
use tidings::sink::Memory;
use tidings::state::checkpoint::{self, CheckpointConfig, Writer};

fn opts(shards: usize) -> EngineOptions {
    // SMS capacity tight enough that contacts queue (and some expire) across the stop.
    EngineOptions {
        shards,
        batch: 512,
        lateness: 120_000,
        capacity: [Some((1, 300_000)), None, None, None],
        ..Default::default()
    }
}

struct Fixture {
    dir: std::path::PathBuf,
    lines: Vec<String>,
}

fn fixture(name: &str) -> Fixture {
    let g = GenOptions { subscribers: 2_000, events: 40_000, days: 3, ..GenOptions::default() };
    let dir = std::env::temp_dir().join(format!("tidings-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    generator::write_dir(&g, &dir).expect("generate");
    let lines = std::fs::read_to_string(dir.join("events.jsonl")).unwrap().lines().map(str::to_owned).collect();
    Fixture { dir, lines }
}

fn rules_for(rd: &RefData) -> RuleSet {
    rules::load(&["rules".into()], Some(rd), &LoadOptions::default()).rules.expect("rules load")
}

fn input(lines: &[String]) -> impl Iterator<Item = Input> + '_ {
    let decoder = Decoder::default();
    lines
        .iter()
        .enumerate()
        .filter_map(move |(i, l)| decoder.decode(l.as_bytes(), "events", i as u64 + 1))
        .map(Input::from)
}

/// One run over `lines` (from the checkpoint in `ckpt` when there is one), stopped after
/// `stop_after` items; its decision log.
fn part(
    f: &Fixture,
    ckpt: &std::path::Path,
    lines: &[String],
    stop_after: Option<usize>,
    shards: usize,
) -> Vec<String> {
    let (rd, subs) = RefData::load_dir(&f.dir).expect("refdata");
    let set = rules_for(&rd);
    let cfg = CheckpointConfig {
        dir: ckpt.to_owned(),
        every_events: 5_000,
        every: Duration::ZERO,
        keep: 2,
        slice: Duration::from_micros(50),
    };
    let writer = Writer::start(&cfg).unwrap();
    let loaded = checkpoint::load_latest(ckpt, &mut |m| panic!("{m}")).unwrap();
    let from = loaded.as_ref().map_or(0, |l| l.meta.router.pos as usize);
    let stop = AtomicBool::new(false);
    let taken = std::cell::Cell::new(0usize);
    let items = input(&lines[from..]).inspect(|_| {
        taken.set(taken.get() + 1);
        if Some(taken.get()) == stop_after {
            stop.store(true, Ordering::Relaxed);
        }
    });
    let none = Vec::new;
    let durable = Durable::new(&writer, &cfg, &none, loaded);
    let mut sink = Memory::default();
    let o = opts(shards);
    engine::run_durable(items, setup(set, rd, subs), &o, &mut sink, &stop, Some(durable)).expect("run");
    writer.finish();
    sink.decisions.iter().map(|d| d.to_log_json(o.offset)).collect()
}

#[test]
fn stopped_and_resumed_from_its_checkpoint_decides_exactly_what_one_run_decides() {
    let f = fixture("stop");
    let (rd, subs) = RefData::load_dir(&f.dir).expect("refdata");
    let mut sink = Memory::default();
    let o = opts(1);
    let all = input(&f.lines);
    engine::run(all, Arc::new(rules_for(&rd)), Arc::new(rd), subs, &o, &mut sink, &AtomicBool::new(false)).unwrap();
    let whole: Vec<String> = sink.decisions.iter().map(|d| d.to_log_json(o.offset)).collect();
    let capacity = whole.iter().filter(|l| l.contains(r#""reason":"capacity""#)).count();
    let deferred = whole.iter().filter(|l| l.contains(r#""outcome":"deferred""#)).count();
    // Journeys are in flight across the stops: calls made, offers sent the morning after.
    let journeys = ["retention_disconnect.call", "retention_disconnect.offer"]
        .map(|step| whole.iter().filter(|l| l.contains(&format!(r#""rule":"{step}""#))).count());
    assert!(
        whole.len() > 500 && capacity > 0 && deferred > 0 && journeys.iter().all(|n| *n > 0),
        "{} decisions, {capacity} capacity, {deferred} deferred, journey steps {journeys:?}",
        whole.len()
    );

    // Stop at a few points (mid-batch, between checkpoints), on one and on three shards.
    for (shards, stops) in [(1, vec![7_777, 21_000]), (3, vec![1, 12_345, 33_333])] {
        let ckpt = f.dir.join(format!("ckpt-{shards}"));
        let _ = std::fs::remove_dir_all(&ckpt);
        let mut got = Vec::new();
        let mut done = 0;
        for s in &stops {
            got.extend(part(&f, &ckpt, &f.lines, Some(s - done), shards));
            done = *s;
        }
        got.extend(part(&f, &ckpt, &f.lines, None, shards));
        assert_eq!(got.len(), whole.len(), "shards {shards}, stops {stops:?}: decision count");
        if let Some(i) = got.iter().zip(&whole).position(|(a, b)| a != b) {
            panic!(
                "shards {shards}, stops {stops:?}: decision {i} differs:\n resumed: {}\n one run: {}",
                got[i], whole[i]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&f.dir);
}

/// Decisions, and how many there were at the end of each batch.
#[derive(Default)]
struct Batches {
    decisions: Vec<String>,
    ends: Vec<usize>,
}

impl tidings::engine::Sink for Batches {
    fn decision(&mut self, d: &tidings::contact::Decision) -> std::io::Result<()> {
        self.decisions.push(d.to_log_json(opts(1).offset));
        Ok(())
    }
    fn batch_end(&mut self) -> std::io::Result<()> {
        self.ends.push(self.decisions.len());
        Ok(())
    }
}

/// A run over everything with checkpoints every 5,000 events (taken while batches go on
/// changing subscribers), then resumed from each periodic checkpoint in turn as if the process
/// had died just after it: what was written up to the checkpoint's batch plus what the resumed
/// run writes is exactly the one run's output.
#[test]
fn resumed_from_a_checkpoint_taken_mid_run_decides_exactly_what_one_run_decides() {
    let f = fixture("mid");
    let shards = 2;
    let ckpt = f.dir.join("ckpt-mid");
    let _ = std::fs::remove_dir_all(&ckpt);
    let run = |restore: Option<checkpoint::Stored>, keep: usize| -> Batches {
        let (rd, subs) = RefData::load_dir(&f.dir).expect("refdata");
        let cfg = CheckpointConfig {
            dir: ckpt.clone(),
            every_events: 5_000,
            every: Duration::ZERO,
            keep,
            slice: Duration::from_micros(20),
        };
        let writer = Writer::start(&cfg).unwrap();
        let from = restore.as_ref().map_or(0, |l| l.meta.router.pos as usize);
        let none = Vec::new;
        let durable = Durable::new(&writer, &cfg, &none, restore);
        let mut sink = Batches::default();
        let (o, stop) = (opts(shards), AtomicBool::new(false));
        let set = Arc::new(rules_for(&rd));
        engine::run_durable(
            input(&f.lines[from..]),
            engine::Setup { rules: set, refdata: Arc::new(rd), subscribers: subs },
            &o,
            &mut sink,
            &stop,
            Some(durable),
        )
        .expect("run");
        writer.finish();
        sink
    };
    let whole = run(None, 100);
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&ckpt).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    // How many are taken depends on how fast the writer keeps up (one that falls due while the
    // one before is still being written is skipped); there is always at least one mid-run.
    assert!(files.len() >= 2, "periodic checkpoints: {files:?}");
    // Resume from up to four of them (not the last: it is the end of input).
    let step = (files.len() / 4).max(1);
    for p in files.iter().take(files.len() - 1).step_by(step) {
        let l = checkpoint::read(p).unwrap();
        let cut = whole.ends[l.meta.id as usize];
        let rest = run(Some(l), 100);
        let got: Vec<&String> = whole.decisions[..cut].iter().chain(&rest.decisions).collect();
        assert_eq!(got.len(), whole.decisions.len(), "resumed from {}: decision count", p.display());
        if let Some(i) = got.iter().zip(&whole.decisions).position(|(a, b)| *a != b) {
            panic!(
                "resumed from {}: decision {i} differs:\n resumed: {}\n one run: {}",
                p.display(),
                got[i],
                whole.decisions[i]
            );
        }
        // The resumed run wrote checkpoints of its own into the directory: put the list back.
        for e in std::fs::read_dir(&ckpt).unwrap() {
            let e = e.unwrap().path();
            if !files.contains(&e) {
                std::fs::remove_file(e).unwrap();
            }
        }
    }
    let _ = std::fs::remove_dir_all(&f.dir);
}

/// A checkpoint taken under one rule pack, resumed under a changed one (a rule added in front,
/// so every index moves; another removed): the contact history carries over by rule name, so a
/// cap reached before the restart still holds after it, and the log says what happened.
#[test]
fn a_checkpoint_taken_under_other_rules_carries_caps_over_by_name() {
    use crate::support::{SUB, ev, refdata, subscriber};
    let visit = r#"
- rule: visit
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "thanks" }
  campaign: visits
  policy: { cap: "1 per month" }
"#;
    let gone = "
- rule: gone
  on: [crm]
  condition: event.event == complaint_closed
  action: { channel: sms, template: \"sorry\" }
  campaign: care
";
    let added = "
- rule: added
  on: [usage]
  condition: event.service == data
  action: { channel: sms, template: \"data\" }
  campaign: data
";
    let dir = std::env::temp_dir().join(format!("tidings-ckpt-rules-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |pack: String, lines: Vec<String>| -> Vec<String> {
        let rd = refdata();
        let loaded = rules::compile(vec![("t.yaml".into(), pack)], Some(&rd), &LoadOptions::default());
        let set = loaded.rules.expect("rules compile");
        let mut subs = tidings::refdata::Subscribers::new();
        subs.insert(&subscriber(SUB));
        let cfg = CheckpointConfig {
            dir: dir.clone(),
            every_events: 0,
            every: Duration::ZERO,
            keep: 2,
            slice: Duration::from_millis(1),
        };
        let writer = Writer::start(&cfg).unwrap();
        let restore = checkpoint::load_latest(&dir, &mut |m| panic!("{m}")).unwrap();
        let none = Vec::new;
        let durable = Durable { every_events: 0, ..Durable::new(&writer, &cfg, &none, restore) };
        let mut sink = Memory::default();
        let o = EngineOptions {
            policy: tidings::rules::policy::GlobalPolicy { quiet_hours: None, ..Default::default() },
            ..Default::default()
        };
        let stop = AtomicBool::new(false);
        engine::run_durable(input(&lines), setup(set, rd, subs), &o, &mut sink, &stop, Some(durable)).expect("run");
        writer.finish();
        sink.decisions
            .iter()
            .map(|d| format!("{} {}", d.rule_name, d.suppression().map_or("sent", |s| s.as_str())))
            .collect()
    };
    let visit_at = |t: &str| ev("crm", t, r#""event":"store_visit""#);
    let first = run(format!("{gone}{visit}"), vec![visit_at("10:00:00")]);
    assert_eq!(first, ["visit sent"]);
    let second = run(format!("{added}{visit}"), vec![visit_at("11:00:00")]);
    assert_eq!(second, ["visit cap"], "the cap reached before the restart holds after it");
    let _ = std::fs::remove_dir_all(&dir);
}

fn setup(
    set: tidings::rules::RuleSet,
    rd: tidings::refdata::RefData,
    subs: tidings::refdata::Subscribers,
) -> engine::Setup {
    engine::Setup { rules: Arc::new(set), refdata: Arc::new(rd), subscribers: subs }
}
