//! End-to-end throughput: generated events (JSON lines) -> decode -> shards -> rules ->
//! decisions, with the shipped rule pack. Prints events/s for 1 and 2 shards.
//!
//! `cargo bench --bench pipeline` (sizes: TIDINGS_BENCH_SUBS, TIDINGS_BENCH_EVENTS).
//! Per-stage criterion benches and the peer comparison come with the performance issue.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tidings::engine::Sink;
use tidings::engine::{self, EngineOptions};
use tidings::event::Decoder;
use tidings::generator::{self, GenOptions};
use tidings::refdata::RefData;
use tidings::rules::{self, LoadOptions};

struct Count(u64);
impl Sink for Count {
    fn decision(&mut self, _d: &tidings::contact::Decision) -> std::io::Result<()> {
        self.0 += 1;
        Ok(())
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let subs = env("TIDINGS_BENCH_SUBS", 100_000);
    let events = env("TIDINGS_BENCH_EVENTS", 1_000_000);
    let opts = GenOptions { subscribers: subs, events, days: 4, ..GenOptions::default() };
    let dir = std::env::temp_dir().join(format!("tidings-bench-{}", std::process::id()));
    let t = Instant::now();
    generator::write_dir(&opts, &dir).expect("generate");
    eprintln!("generated {events} events for {subs} subscribers in {:.1}s", t.elapsed().as_secs_f64());
    let bytes = std::fs::metadata(dir.join("events.jsonl")).map(|m| m.len()).unwrap_or(0);
    for shards in [1, 2] {
        let (rd, subscribers) = RefData::load_dir(&dir).expect("refdata");
        let set = rules::load(&["rules".into()], Some(&rd), &LoadOptions::default()).rules.expect("rules");
        let input = tidings::source::file(&dir.join("events.jsonl"), Decoder::default()).expect("events");
        let eopts = EngineOptions { shards, batch: 4096, lateness: 120_000, ..EngineOptions::default() };
        let mut sink = Count(0);
        let t = Instant::now();
        let s =
            engine::run(input, Arc::new(set), Arc::new(rd), subscribers, &eopts, &mut sink, &AtomicBool::new(false))
                .expect("run");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "shards {shards}: {} events in {secs:.2}s = {:.0} events/s ({:.0} MB/s), {} decisions",
            s.events,
            s.events as f64 / secs,
            bytes as f64 / secs / 1e6,
            sink.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
