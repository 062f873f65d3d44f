//! Peer harness: GoRules zen-engine (crate `zen-engine`).
//!
//! Per event: parse the JSON line into a zen `Variable`, evaluate a JDM decision (input ->
//! decision table -> output) that classifies the event as a qualifying 12593 call, a station
//! cell entry, or nothing. zen has no state across evaluations, so the per-msisdn sliding
//! 30-day count lives here in the harness (VecDeque of event times per msisdn).
//!
//! Usage: peer-zen EVENTS.jsonl  -> one JSON object on stdout.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use zen_engine::model::GraphContent;
use zen_engine::{Decision, Variable};

#[path = "../../common/peer_common.rs"]
mod common;
use common::{parse_ts, Hist};

const WINDOW_S: i64 = 30 * 86_400;
const THRESHOLD: usize = 3;

/// The rules as a JDM graph: first-hit decision table over kind/service/direction/scope/cell.
const JDM: &str = r#"{
  "nodes": [
    {"id": "in", "name": "event", "type": "inputNode", "content": {}},
    {"id": "table", "name": "classify", "type": "decisionTableNode", "content": {
      "hitPolicy": "first",
      "inputs": [
        {"id": "i_kind", "name": "kind", "field": "kind"},
        {"id": "i_service", "name": "service", "field": "service"},
        {"id": "i_direction", "name": "direction", "field": "direction"},
        {"id": "i_scope", "name": "scope", "field": "scope"},
        {"id": "i_cell", "name": "cell", "field": "cell"}
      ],
      "outputs": [{"id": "o_match", "name": "match", "field": "match"}],
      "rules": [
        {"_id": "r12593", "i_kind": "\"usage\"", "i_service": "\"voice\"", "i_direction": "\"mo\"",
         "i_scope": "\"long_distance\", \"roaming_domestic\"", "i_cell": "",
         "o_match": "\"call_12593\""},
        {"_id": "rstation", "i_kind": "\"location\"", "i_service": "", "i_direction": "",
         "i_scope": "", "i_cell": "startsWith($, \"460-00-4125-\")",
         "o_match": "\"station\""}
      ]
    }},
    {"id": "out", "name": "result", "type": "outputNode", "content": {}}
  ],
  "edges": [
    {"id": "e1", "sourceId": "in", "targetId": "table"},
    {"id": "e2", "sourceId": "table", "targetId": "out"}
  ]
}"#;

fn main() {
    let path = std::env::args().nth(1).expect("usage: peer-zen EVENTS.jsonl");
    let mut graph: GraphContent = serde_json::from_str(JDM).expect("JDM");
    graph.compile();
    let decision = Decision::from(graph);

    let start = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, File::open(&path).expect("open events"));
    let mut line = String::new();
    let mut windows: HashMap<String, VecDeque<i64>> = HashMap::new();
    let mut hist = Hist::default();
    let (mut events, mut bad, mut matches, mut station) = (0u64, 0u64, 0u64, 0u64);
    loop {
        line.clear();
        let t0 = Instant::now();
        if reader.read_line(&mut line).expect("read") == 0 {
            break;
        }
        events += 1;
        let ev: Variable = match serde_json::from_str(line.trim_end()) {
            Ok(v) => v,
            Err(_) => {
                bad += 1;
                continue;
            }
        };
        // Every event's time and key are decoded (an event-time engine does), not only the calls'.
        let ts = ev.dot("ts").as_ref().and_then(|v| v.as_str()).and_then(parse_ts);
        let msisdn_var = ev.dot("msisdn");
        let msisdn = msisdn_var.as_ref().and_then(|v| v.as_str());
        let (Some(ts), Some(msisdn)) = (ts, msisdn) else {
            bad += 1;
            continue;
        };
        let out = futures::executor::block_on(decision.evaluate(ev.shallow_clone()))
            .expect("evaluate");
        match out.result.dot("match").as_ref().and_then(|m| m.as_str()) {
            Some("call_12593") => {
                if !windows.contains_key(msisdn) {
                    windows.insert(msisdn.to_owned(), VecDeque::new());
                }
                let w = windows.get_mut(msisdn).expect("just inserted");
                while w.front().is_some_and(|&t| t <= ts - WINDOW_S) {
                    w.pop_front();
                }
                w.push_back(ts);
                if w.len() >= THRESHOLD {
                    matches += 1;
                }
            }
            Some("station") => station += 1,
            _ => {}
        }
        hist.record(t0.elapsed().as_nanos() as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"engine\":\"zen-engine\",\"events\":{events},\"bad\":{bad},\"seconds\":{secs:.4},\"events_per_s\":{:.0},\"p99_us\":{:.2},\"matches_12593\":{matches},\"station_hits\":{station},\"keys\":{}}}",
        events as f64 / secs,
        hist.quantile(0.99) as f64 / 1000.0,
        windows.len()
    );
}
