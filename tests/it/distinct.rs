//! Distinct counts through the engine (`distinct(location.cell, 1d)`): a rule fires at the Nth
//! different value, not on a value seen again; values leave with the window; the values seen
//! survive a hot reload (by the count's definition, whatever its slot) and a checkpoint; explain
//! shows them; the same decisions on any number of shards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tidings::engine::{self, Durable, EngineOptions, ExplainRequest, Input};
use tidings::event::Decoder;
use tidings::refdata::RefData;
use tidings::rules::{self, LoadOptions, RuleSet};
use tidings::sink::Memory;
use tidings::state::checkpoint::{self, CheckpointConfig, Writer};
use tidings::util::Msisdn;

const M: &str = "13800138000";

const PACK: &str = r#"
- rule: three_cells
  on: [location]
  condition: distinct(location.cell where trigger != detach, 1d) >= 3
  action: {channel: sms, template: "cells {distinct(location.cell where trigger != detach, 1d)}"}
  policy: {quiet_hours: ignore, transactional: true}
"#;

/// Another distinct count ahead of the pack's: after a reload to it, the pack's count has
/// another slot.
const AHEAD: &str = r#"
- rule: many_callees
  on: [usage]
  condition: distinct(usage.peer where service == voice, 7d) >= 20
  action: {channel: sms, template: "callees"}
"#;

fn set(text: &str) -> RuleSet {
    let loaded = rules::compile(vec![("d.yaml".into(), text.into())], None, &LoadOptions::default());
    loaded.rules.unwrap_or_else(|| panic!("the pack compiles: {:?}", loaded.diagnostics))
}

fn line(ts: &str, cell: &str) -> String {
    format!(r#"{{"ts":"{ts}","msisdn":"{M}","kind":"location","cell":"{cell}","trigger":"handover"}}"#)
}

fn item(l: &str) -> Input {
    Input::Item(Decoder::default().decode(l.as_bytes(), "t", 1).expect("a line"))
}

fn texts(sink: &Memory, opts: &EngineOptions) -> Vec<String> {
    let ts = |d: &tidings::contact::Decision| tidings::time::format_ts(d.ts, opts.offset);
    sink.decisions.iter().map(|d| format!("{} {}", ts(d), d.text.as_deref().unwrap_or(""))).collect()
}

#[test]
fn fires_at_the_third_cell_not_on_repeats_forgets_with_the_window_and_keeps_its_cells_over_a_reload() {
    let (tx, answer) = std::sync::mpsc::channel();
    let explain = Input::Explain(ExplainRequest { msisdn: Msisdn::parse(M).expect("a number"), reply: tx });
    let input = vec![
        item(&line("2026-11-25T09:00:00+08:00", "A")),
        item(&line("2026-11-25T09:10:00+08:00", "B")),
        // Back and forth between two cells: still two.
        item(&line("2026-11-25T09:20:00+08:00", "A")),
        item(&line("2026-11-25T09:30:00+08:00", "B")),
        item(&line("2026-11-25T09:40:00+08:00", "A")),
        // A detach is filtered out: its cell does not count.
        item(
            r#"{"ts":"2026-11-25T09:45:00+08:00","msisdn":"13800138000","kind":"location","cell":"Z","trigger":"detach"}"#,
        ),
        // The count moves to another slot; the cells seen stay.
        Input::Reload(Arc::new(set(&format!("{AHEAD}{PACK}")))),
        item(&line("2026-11-25T10:00:00+08:00", "C")),
        explain,
        // Two days on, A, B and C left the window: D and E make two, F three.
        item(&line("2026-11-27T10:00:00+08:00", "D")),
        item(&line("2026-11-27T10:10:00+08:00", "E")),
        item(&line("2026-11-27T10:20:00+08:00", "D")),
        item(&line("2026-11-27T10:30:00+08:00", "F")),
    ];
    let mut sink = Memory::default();
    let opts = EngineOptions::default();
    let rd = Arc::new(RefData::default());
    let subs = tidings::refdata::Subscribers::new();
    engine::run(input.into_iter(), Arc::new(set(PACK)), rd, subs, &opts, &mut sink, &AtomicBool::new(false))
        .expect("run");
    assert_eq!(texts(&sink, &opts), ["2026-11-25T10:00:00+08:00 cells 3", "2026-11-27T10:30:00+08:00 cells 3"]);
    let said = answer.recv().expect("an explain answer");
    let d = &said["state"]["distinct"];
    assert_eq!(
        (d[0]["kind"].as_str(), d[0]["field"].as_str(), d[0]["window"].as_str(), d[0]["value"].as_i64()),
        (Some("location"), Some("cell"), Some("1d"), Some(3)),
        "{said}"
    );
}

/// One run over `lines` from the checkpoint in `dir` (if any), stopped after `stop_after`
/// items; its messages and where it started.
fn part(dir: &std::path::Path, lines: &[String], stop_after: Option<usize>) -> (Vec<String>, usize) {
    let cfg = CheckpointConfig {
        dir: dir.to_owned(),
        every_events: 1_000,
        every: Duration::ZERO,
        keep: 2,
        slice: Duration::from_micros(50),
    };
    let writer = Writer::start(&cfg).expect("a checkpoint writer");
    let loaded = checkpoint::load_latest(dir, &mut |m| panic!("{m}")).expect("a readable checkpoint");
    let from = loaded.as_ref().map_or(0, |l| l.meta.router.pos as usize);
    let stop = AtomicBool::new(false);
    let taken = std::cell::Cell::new(0usize);
    let items = lines[from..].iter().map(|l| item(l)).inspect(|_| {
        taken.set(taken.get() + 1);
        if Some(taken.get()) == stop_after {
            stop.store(true, Ordering::Relaxed);
        }
    });
    let none = Vec::new;
    let durable = Durable::new(&writer, &cfg, &none, loaded);
    let setup = engine::Setup {
        rules: Arc::new(set(PACK)),
        refdata: Arc::new(RefData::default()),
        subscribers: tidings::refdata::Subscribers::new(),
    };
    let (mut sink, opts) = (Memory::default(), EngineOptions::default());
    engine::run_durable(items, setup, &opts, &mut sink, &stop, Some(durable)).expect("run");
    writer.finish();
    (texts(&sink, &opts), from)
}

#[test]
fn the_cells_seen_survive_a_checkpoint() {
    let dir = std::env::temp_dir().join(format!("tidings-distinct-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<String> = [("09:00", "A"), ("09:10", "B"), ("09:20", "A"), ("09:30", "C")]
        .iter()
        .map(|(t, c)| line(&format!("2026-11-25T{t}:00+08:00"), c))
        .collect();
    let (first, _) = part(&dir, &lines, Some(2));
    let (second, from) = part(&dir, &lines, None);
    assert!(first.is_empty(), "{first:?}");
    assert!((2..4).contains(&from), "resumed after A and B, from item {from}");
    assert_eq!(second, ["2026-11-25T09:30:00+08:00 cells 3"], "A and B came from the checkpoint");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over generated traffic (subscribers moving between cells, calling), the distinct counts
/// decide the same messages on one shard and on three.
#[test]
fn distinct_counts_decide_the_same_on_any_number_of_shards() {
    let g = tidings::generator::GenOptions { subscribers: 1_500, events: 30_000, days: 3, ..Default::default() };
    let dir = std::env::temp_dir().join(format!("tidings-distinct-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    tidings::generator::write_dir(&g, &dir).expect("generate");
    let pack = AHEAD.replace(">= 20", ">= 3").replace("\"callees\"", "\"callees {distinct(usage.peer, 7d)}\"") + PACK;
    let run = |shards: usize| -> Vec<String> {
        let (rd, subs) = RefData::load_dir(&dir).expect("refdata");
        let loaded = rules::compile(vec![("d.yaml".into(), pack.clone())], Some(&rd), &LoadOptions::default());
        let set = Arc::new(loaded.rules.unwrap_or_else(|| panic!("the pack compiles: {:?}", loaded.diagnostics)));
        let input = tidings::source::file(&dir.join("events.jsonl"), Decoder::default()).expect("events");
        let opts = EngineOptions { shards, batch: 257, lateness: 120_000, ..Default::default() };
        let mut sink = Memory::default();
        engine::run(input, set, Arc::new(rd), subs, &opts, &mut sink, &AtomicBool::new(false)).expect("run");
        sink.decisions.iter().map(|d| d.to_json(opts.offset)).collect()
    };
    let one = run(1);
    let fired = ["\"cells ", "\"callees "].map(|t| one.iter().filter(|l| l.contains(t)).count());
    assert!(fired.iter().all(|n| *n > 0), "both counts fire among {} messages: {fired:?}", one.len());
    assert!(one == run(3), "the same messages on three shards");
    let _ = std::fs::remove_dir_all(&dir);
}
