//! The shipped pack against the embedded default: no dead rule.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tidings::config::Config;
use tidings::engine::{self, EngineOptions};
use tidings::event::Decoder;
use tidings::generator::{self, GenOptions};
use tidings::refdata::RefData;
use tidings::rules::{self, LoadOptions};
use tidings::sink::Memory;

#[test]
fn every_shipped_rule_fires_on_the_default_run() {
    let cfg = Config::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tidings.toml"))).unwrap();
    let g = &cfg.source.generator;
    let opts = GenOptions {
        seed: g.seed,
        subscribers: g.subscribers,
        events: g.events,
        start: cfg.generator_start().unwrap(),
        days: g.days,
        offset_secs: cfg.offset().unwrap().local_minus_utc(),
    };
    let dir = std::env::temp_dir().join(format!("tidings-pack-{}", std::process::id()));
    generator::write_dir(&opts, &dir).unwrap();
    let (rd, subs) = RefData::load_dir(&dir).unwrap();
    let loaded = rules::load(&cfg.rules.paths, Some(&rd), &LoadOptions::default());
    let warnings: Vec<String> = loaded.diagnostics.iter().map(|d| d.render()).collect();
    assert!(warnings.is_empty(), "the pack is clean against the generated reference data:\n{}", warnings.join(""));
    let set = loaded.rules.unwrap();
    let names: BTreeSet<String> = set.rules.iter().map(|r| r.name.to_string()).collect();
    let input = tidings::source::file(&dir.join("events.jsonl"), Decoder::default()).unwrap();
    let eopts = EngineOptions {
        shards: 2,
        lateness: cfg.lateness().unwrap(),
        policy: cfg.resolved_policy.clone(),
        capacity: cfg.capacity,
        ..EngineOptions::default()
    };
    let mut sink = Memory::default();
    engine::run(input, Arc::new(set), Arc::new(rd), subs, &eopts, &mut sink, &AtomicBool::new(false)).unwrap();
    let fired: BTreeSet<String> =
        sink.decisions.iter().filter(|d| d.is_sent()).map(|d| d.rule_name.to_string()).collect();
    let dead: Vec<&String> = names.difference(&fired).collect();
    assert!(dead.is_empty(), "rules that never sent anything on the default run: {dead:?}");
    // Regression: daily rules share one trigger (`09:00@day`) across subscribers; the action id,
    // the gateways' idempotency key, must still differ per subscriber.
    let mut ids = std::collections::HashSet::new();
    let dup = sink.decisions.iter().filter(|d| d.is_sent()).find(|d| !ids.insert(d.id.clone()));
    assert!(dup.is_none(), "two actions share an id: {:?}", dup.map(|d| (&d.id, &d.rule_name)));
    let _ = std::fs::remove_dir_all(&dir);
}
