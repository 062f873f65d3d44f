//! Per-stage benches (criterion): decode, route, state update, condition evaluation, policy,
//! and the whole engine over a generated stream. `cargo bench --bench stages`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tidings::engine::{self, EngineOptions, Shard, ShardStats};
use tidings::event::{Decoder, Event};
use tidings::generator::{self, GenOptions};
use tidings::policy::ContactPolicy;
use tidings::refdata::RefData;
use tidings::rules::{self, LoadOptions, RuleSet};

struct Fixture {
    lines: Vec<String>,
    events: Vec<Event>,
    rules: Arc<RuleSet>,
    refdata: Arc<RefData>,
    subs: tidings::refdata::Subscribers,
}

fn fixture() -> Fixture {
    let opts = GenOptions { subscribers: 20_000, events: 100_000, days: 2, ..GenOptions::default() };
    let dir = std::env::temp_dir().join(format!("tidings-stages-{}", std::process::id()));
    generator::write_dir(&opts, &dir).expect("generate");
    let (rd, subs) = RefData::load_dir(&dir).expect("refdata");
    let rules = rules::load(&["rules".into()], Some(&rd), &LoadOptions::default()).rules.expect("rules");
    let lines: Vec<String> =
        std::fs::read_to_string(dir.join("events.jsonl")).expect("events").lines().map(str::to_string).collect();
    let d = Decoder::default();
    let events = lines.iter().filter_map(|l| d.decode(l.as_bytes(), "b", 0)).filter_map(Result::ok).collect();
    let _ = std::fs::remove_dir_all(&dir);
    Fixture { lines, events, rules: Arc::new(rules), refdata: Arc::new(rd), subs }
}

fn shard(f: &Fixture) -> Shard {
    let offset = EngineOptions::default().offset;
    let policy = Arc::new(ContactPolicy::new(Default::default(), Arc::clone(&f.rules), offset));
    Shard::new(Arc::clone(&f.rules), Arc::clone(&f.refdata), policy, f.subs.clone(), offset)
}

fn stages(c: &mut Criterion) {
    let f = fixture();
    let n = 10_000;
    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);

    let d = Decoder::default();
    g.bench_function("decode", |b| {
        b.iter(|| {
            for l in &f.lines[..n] {
                black_box(d.decode(l.as_bytes(), "b", 0));
            }
        })
    });

    g.bench_function("route", |b| {
        b.iter(|| {
            for e in &f.events[..n] {
                black_box(engine::shard_of(e.msisdn, 8));
            }
        })
    });

    // State, rules and policy together, per event, on a warmed-up shard.
    let mut warm = shard(&f);
    let mut stats = ShardStats::default();
    let mut out = Vec::new();
    for (i, e) in f.events[..50_000].iter().enumerate() {
        warm.process(i as u64, e, &mut out, &mut stats);
    }
    let mut pos = 50_000u64;
    g.bench_function("shard_process", |b| {
        b.iter(|| {
            for e in &f.events[50_000..50_000 + n] {
                out.clear();
                warm.process(pos, e, &mut out, &mut stats);
                pos += 1;
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("end_to_end");
    g.throughput(Throughput::Elements(f.lines.len() as u64));
    g.sample_size(10);
    g.bench_function("lines_to_decisions_1_shard", |b| {
        b.iter(|| {
            let d = Decoder::default();
            let input = f.lines.iter().filter_map(|l| d.decode(l.as_bytes(), "b", 0));
            let mut sink = tidings::sink::Memory::default();
            engine::run(
                input,
                Arc::clone(&f.rules),
                Arc::clone(&f.refdata),
                f.subs.clone(),
                &EngineOptions::default(),
                &mut sink,
                &AtomicBool::new(false),
            )
            .expect("run")
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
