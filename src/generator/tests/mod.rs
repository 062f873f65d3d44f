//! The generator's tests: determinism, exact counts, well-formed and ordered lines (here), the
//! reference files (`reference`), and that each story the rule pack looks for occurs in a
//! default run (`stories`).

mod reference;
mod stories;

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::*;
use crate::time::{DAY, format_ts};

pub(super) fn small() -> GenOptions {
    GenOptions { subscribers: 500, events: 20_000, ..GenOptions::default() }
}

pub(super) fn obj(line: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => m,
        other => panic!("not a JSON object: {line} ({other:?})"),
    }
}

pub(super) fn s<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn num(m: &Map<String, Value>, k: &str) -> i64 {
    m.get(k).and_then(Value::as_i64).unwrap_or(i64::MIN)
}

pub(super) fn has_str(m: &Map<String, Value>, list: &str, item: &str) -> bool {
    m.get(list).and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v.as_str() == Some(item)))
}

pub(super) fn ms(ts: &str) -> i64 {
    crate::time::parse_ts(ts).expect("ts parses")
}

/// Local "HH:MM" of an RFC 3339 string written in the local offset.
pub(super) fn hm(ts: &str) -> &str {
    &ts[11..16]
}

/// Cell id -> tags, from the reference cells.
pub(super) fn cell_tags(r: &RefFiles) -> HashMap<String, Vec<String>> {
    r.cells
        .iter()
        .map(|l| obj(l))
        .map(|m| {
            let tags = m
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(String::from))
                .collect();
            (s(&m, "id").to_string(), tags)
        })
        .collect()
}

#[test]
fn follow_stamps_every_line_with_the_time_it_is_written() {
    let o = GenOptions { subscribers: 50, events: 300, ..GenOptions::default() };
    let before = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::new();
    assert_eq!(follow(&o, 100_000, &mut out).expect("written"), 300);
    let after = chrono::Utc::now().timestamp_millis();
    let text = String::from_utf8(out).expect("utf-8");
    let originals: Vec<String> = events(&o).collect();
    assert_eq!(text.lines().count(), 300);
    for (line, orig) in text.lines().zip(&originals) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let ts = crate::time::parse_ts(v["ts"].as_str().expect("ts")).expect("rfc 3339");
        assert!(before <= ts && ts <= after, "{ts} outside {before}..{after}");
        // Everything but the time is the generated line.
        let mut o: serde_json::Value = serde_json::from_str(orig).expect("json");
        o["ts"] = v["ts"].clone();
        assert_eq!(v, o);
    }
}

#[test]
fn default_start_is_local_midnight() {
    let o = GenOptions::default();
    let off = chrono::FixedOffset::east_opt(o.offset_secs).expect("offset");
    assert_eq!(format_ts(o.start, off), "2026-11-24T00:00:00+08:00");
}

#[test]
fn same_options_same_bytes() {
    let a: Vec<String> = events(&small()).collect();
    let b: Vec<String> = events(&small()).collect();
    assert_eq!(a, b);
    let (ra, rb) = (reference(&small()), reference(&small()));
    assert_eq!(ra.subscribers, rb.subscribers);
    assert_eq!(ra.cells, rb.cells);
    assert_eq!(ra.calendar, rb.calendar);
    assert_eq!(ra.stores, rb.stores);
    assert_eq!(ra.countries, rb.countries);
    let c: Vec<String> = events(&GenOptions { seed: 8, ..small() }).collect();
    assert_ne!(a, c);
}

#[test]
fn exact_event_count() {
    for (subs, n, days) in
        [(50, 1000, 1), (50, 0, 1), (50, 7, 2), (1000, 30_000, 3), (10_000, 200_000, 1), (3000, 50_000, 0)]
    {
        let o = GenOptions { subscribers: subs, events: n, days, ..GenOptions::default() };
        assert_eq!(events(&o).count(), n, "subs {subs} events {n} days {days}");
    }
}

#[test]
fn events_well_formed_and_ordered() {
    for o in [GenOptions::default(), GenOptions { subscribers: 50, events: 5000, days: 3, ..GenOptions::default() }] {
        let end = o.start + i64::from(o.days.max(1)) * DAY;
        let mut last = i64::MIN;
        let mut ids = HashSet::new();
        let mut kinds: HashMap<String, usize> = HashMap::new();
        let mut bytes = 0usize;
        for line in events(&o) {
            bytes += line.len();
            let m = obj(&line);
            let t = ms(s(&m, "ts"));
            assert!(t >= last, "out of order: {line}");
            assert!(t >= o.start && t < end, "outside window: {line}");
            last = t;
            assert!(ids.insert(s(&m, "id").to_string()), "duplicate id: {line}");
            let msisdn = s(&m, "msisdn");
            assert!(msisdn.len() == 11 && msisdn.bytes().all(|b| b.is_ascii_digit()), "{line}");
            let kind = s(&m, "kind").to_string();
            let need: &[&str] = match kind.as_str() {
                "usage" => &["service", "direction", "scope", "charge_fen", "balance_fen", "cell"],
                "topup" => &["amount_fen", "balance_fen", "channel"],
                "ivr" => &["session", "step", "hotline"],
                "location" => &["cell", "trigger"],
                "crm" => &["event", "attrs"],
                "profile" => &["set"],
                "outcome" => &["action_id", "channel", "status", "rule"],
                "reply" => &["text", "to"],
                other => panic!("unknown kind {other}: {line}"),
            };
            for f in need {
                assert!(m.contains_key(*f), "missing {f}: {line}");
            }
            match kind.as_str() {
                "usage" => {
                    let svc = s(&m, "service");
                    assert!(["voice", "sms", "mms", "data"].contains(&svc));
                    assert_eq!(m.contains_key("duration_s"), svc == "voice", "{line}");
                    assert_eq!(m.contains_key("volume_kb"), svc == "data", "{line}");
                    assert_eq!(m.contains_key("count"), svc == "sms" || svc == "mms", "{line}");
                    assert!(num(&m, "balance_fen") >= 0, "{line}");
                }
                "topup" => {
                    assert_eq!(m.contains_key("store"), s(&m, "channel") == "store", "{line}");
                }
                "crm" => assert!(m.get("attrs").is_some_and(Value::is_object), "{line}"),
                "profile" => assert!(m.get("set").is_some_and(Value::is_object), "{line}"),
                _ => {}
            }
            *kinds.entry(kind).or_default() += 1;
        }
        if o.events >= 100_000 {
            let share = |k: &str| kinds.get(k).copied().unwrap_or(0) as f64 / o.events as f64;
            assert!((0.33..0.47).contains(&share("location")), "{kinds:?}");
            assert!((0.38..0.52).contains(&share("usage")), "{kinds:?}");
            for k in ["topup", "ivr", "crm"] {
                assert!((0.025..0.08).contains(&share(k)), "{k} {kinds:?}");
            }
            assert!((0.003..0.02).contains(&share("profile")), "{kinds:?}");
            let avg = bytes / o.events;
            assert!((120..260).contains(&avg), "average line {avg} bytes");
        }
    }
}

#[test]
fn diurnal_shape() {
    let mut per_hour = [0usize; 24];
    for line in events(&GenOptions::default()) {
        let m = obj(&line);
        let h: usize = s(&m, "ts")[11..13].parse().unwrap_or(0);
        per_hour[h] += 1;
    }
    let night: usize = per_hour[1..6].iter().sum();
    assert!(night * 5 < per_hour[10] * 4, "{per_hour:?}");
    assert!(per_hour[20] > per_hour[4] * 8, "{per_hour:?}");
}

#[test]
fn write_dir_writes_all_files() {
    let dir = std::env::temp_dir().join(format!("tidings-gen-test-{}", std::process::id()));
    let o = GenOptions { subscribers: 60, events: 500, ..GenOptions::default() };
    write_dir(&o, &dir).expect("write");
    for f in ["subscribers.jsonl", "cells.jsonl", "calendar.jsonl", "stores.jsonl", "countries.jsonl"] {
        assert!(std::fs::metadata(dir.join(f)).is_ok_and(|m| m.len() > 0), "{f}");
    }
    let ev = std::fs::read_to_string(dir.join("events.jsonl")).expect("read");
    assert_eq!(ev.lines().count(), 500);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Thousands of records wait in the stream's heap: a new record kind must not make them all larger.
#[test]
fn records_stay_40_bytes() {
    assert!(std::mem::size_of::<super::records::Ev>() <= 40, "{}", std::mem::size_of::<super::records::Ev>());
}
