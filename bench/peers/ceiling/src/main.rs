//! Peer harness: the ceiling. A hand-written loop, no engine: read a line, parse it with
//! serde_json into a borrowed struct (every other field is still scanned and validated, as
//! `IgnoredAny`), apply the two rules as plain `if`s, keep the per-msisdn sliding 30-day
//! count in a HashMap<u64, VecDeque<i64>>. Whatever an engine adds on top of this is its cost.
//!
//! Usage: peer-ceiling EVENTS.jsonl  -> one JSON object on stdout.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, BufReader};
use std::time::Instant;

use serde::Deserialize;

#[path = "../../common/peer_common.rs"]
mod common;
use common::{parse_ts, Hist};

const WINDOW_S: i64 = 30 * 86_400;
const THRESHOLD: usize = 3;
const STATION_PREFIX: &str = "460-00-4125-";

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    msisdn: Cow<'a, str>,
    #[serde(borrow, default)]
    service: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    direction: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    scope: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    cell: Option<Cow<'a, str>>,
}

/// msisdns are 11 digits: the key is the number itself, hashed by one multiply.
#[derive(Default)]
struct MulHasher(u64);
impl Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: peer-ceiling EVENTS.jsonl");
    let start = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, File::open(&path).expect("open events"));
    let mut line = Vec::with_capacity(1024);
    let mut windows: HashMap<u64, VecDeque<i64>, BuildHasherDefault<MulHasher>> =
        HashMap::default();
    let mut hist = Hist::default();
    let (mut events, mut bad, mut matches, mut station) = (0u64, 0u64, 0u64, 0u64);
    loop {
        line.clear();
        let t0 = Instant::now();
        if reader.read_until(b'\n', &mut line).expect("read") == 0 {
            break;
        }
        events += 1;
        let ev: Event = match serde_json::from_slice(&line) {
            Ok(ev) => ev,
            Err(_) => {
                bad += 1;
                continue;
            }
        };
        // Every event's time is decoded (an event-time engine does), not only the calls'.
        let Some(ts) = parse_ts(&ev.ts) else {
            bad += 1;
            continue;
        };
        match &*ev.kind {
            "usage"
                if ev.service.as_deref() == Some("voice")
                    && ev.direction.as_deref() == Some("mo")
                    && matches!(ev.scope.as_deref(), Some("long_distance" | "roaming_domestic")) =>
            {
                match ev.msisdn.parse::<u64>() {
                    Ok(key) => {
                        let w = windows.entry(key).or_default();
                        while w.front().is_some_and(|&t| t <= ts - WINDOW_S) {
                            w.pop_front();
                        }
                        w.push_back(ts);
                        if w.len() >= THRESHOLD {
                            matches += 1;
                        }
                    }
                    _ => bad += 1,
                }
            }
            "location" if ev.cell.as_deref().is_some_and(|c| c.starts_with(STATION_PREFIX)) => {
                station += 1
            }
            _ => {}
        }
        hist.record(t0.elapsed().as_nanos() as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"engine\":\"ceiling\",\"events\":{events},\"bad\":{bad},\"seconds\":{secs:.4},\"events_per_s\":{:.0},\"p99_us\":{:.2},\"matches_12593\":{matches},\"station_hits\":{station},\"keys\":{}}}",
        events as f64 / secs,
        hist.quantile(0.99) as f64 / 1000.0,
        windows.len()
    );
}
