//! The same input gives byte-identical actions whatever the shard count and batch size.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tidings::engine::{self, EngineOptions};
use tidings::event::Decoder;
use tidings::generator::{self, GenOptions};
use tidings::refdata::RefData;
use tidings::rules::{self, LoadOptions};
use tidings::sink::Memory;

fn day() -> (GenOptions, std::path::PathBuf) {
    let opts = GenOptions { subscribers: 3_000, events: 60_000, days: 4, ..GenOptions::default() };
    let dir = std::env::temp_dir().join(format!("tidings-det-{}", std::process::id()));
    generator::write_dir(&opts, &dir).expect("generate");
    (opts, dir)
}

fn actions(dir: &std::path::Path, shards: usize, batch: usize) -> Vec<String> {
    let (rd, subs) = RefData::load_dir(dir).expect("refdata");
    let set = rules::load(&["rules".into()], Some(&rd), &LoadOptions::default()).rules.expect("rules load");
    let decoder = Decoder::default();
    let input = tidings::source::file(&dir.join("events.jsonl"), decoder).expect("events");
    let opts = EngineOptions { shards, batch, lateness: 120_000, ..EngineOptions::default() };
    let mut sink = Memory::default();
    engine::run(input, Arc::new(set), Arc::new(rd), subs, &opts, &mut sink, &AtomicBool::new(false)).expect("run");
    sink.decisions.iter().map(|d| d.to_json(opts.offset)).collect()
}

#[test]
fn identical_actions_across_shard_counts_and_batch_sizes() {
    let (_, dir) = day();
    let base = actions(&dir, 1, 1024);
    assert!(base.len() > 50, "the generated days should trigger plenty of actions, got {}", base.len());
    let rules_seen: std::collections::BTreeSet<String> = base
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["rule"].as_str().unwrap().to_string())
        .collect();
    assert!(rules_seen.len() >= 5, "several rules fire: {rules_seen:?}");
    // Journeys too: their steps move on outcomes and on time, on whichever shard.
    for step in ["retention_disconnect.call", "retention_disconnect.offer"] {
        assert!(rules_seen.contains(step), "{step} fires: {rules_seen:?}");
    }
    for (shards, batch) in [(2, 1024), (4, 1), (3, 97), (1, 5000)] {
        let other = actions(&dir, shards, batch);
        assert_eq!(other.len(), base.len(), "shards {shards}, batch {batch}");
        assert!(other == base, "shards {shards}, batch {batch}: output differs");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
