//! The generator's tests: determinism, exact counts, well-formed lines, and that each story
//! the rule pack looks for occurs in a default run.

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
        let ts = crate::util::parse_ts(v["ts"].as_str().expect("ts")).expect("rfc 3339");
        assert!(before <= ts && ts <= after, "{ts} outside {before}..{after}");
        // Everything but the time is the generated line.
        let mut o: serde_json::Value = serde_json::from_str(orig).expect("json");
        o["ts"] = v["ts"].clone();
        assert_eq!(v, o);
    }
}

use super::world::FOREIGN;
use super::*;
use crate::util::{DAY, HOUR, MINUTE, SECOND, format_ts};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

fn small() -> GenOptions {
    GenOptions { subscribers: 500, events: 20_000, ..GenOptions::default() }
}

fn obj(line: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => m,
        other => panic!("not a JSON object: {line} ({other:?})"),
    }
}

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

fn num(m: &Map<String, Value>, k: &str) -> i64 {
    m.get(k).and_then(Value::as_i64).unwrap_or(i64::MIN)
}

fn has_str(m: &Map<String, Value>, list: &str, item: &str) -> bool {
    m.get(list).and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v.as_str() == Some(item)))
}

fn ms(ts: &str) -> i64 {
    crate::util::parse_ts(ts).expect("ts parses")
}

/// Local "HH:MM" of an RFC 3339 string written in the local offset.
fn hm(ts: &str) -> &str {
    &ts[11..16]
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
fn reference_well_formed() {
    let o = GenOptions { days: 2, ..GenOptions::default() };
    let r = reference(&o);
    assert_eq!(r.subscribers.len(), o.subscribers);
    let mut msisdns = HashSet::new();
    let mut tiers: HashMap<String, usize> = HashMap::new();
    let mut birthdays = HashMap::<String, usize>::new();
    for line in &r.subscribers {
        let m = obj(line);
        for f in [
            "msisdn",
            "customer_id",
            "account_id",
            "brand",
            "tier",
            "arpu_fen",
            "join_date",
            "birthday",
            "corporate",
            "foreign",
            "employee",
            "services",
            "dnd",
            "status",
            "prefs",
            "channel_pref",
        ] {
            assert!(m.contains_key(f), "missing {f}: {line}");
        }
        let msisdn = s(&m, "msisdn");
        assert!(
            msisdn.len() == 11 && msisdn.starts_with('1') && matches!(&msisdn[1..2], "3" | "4" | "5" | "7" | "8" | "9"),
            "{line}"
        );
        assert!(msisdns.insert(msisdn.to_string()), "duplicate msisdn {msisdn}");
        if s(&m, "tier") == "high" {
            assert!(num(&m, "arpu_fen") >= 5000, "{line}");
        }
        *tiers.entry(s(&m, "tier").to_string()).or_default() += 1;
        *birthdays.entry(s(&m, "birthday").to_string()).or_default() += 1;
    }
    let high = tiers.get("high").copied().unwrap_or(0);
    assert!((700..1300).contains(&high), "{tiers:?}");
    assert!(birthdays.get("11-24").copied().unwrap_or(0) >= 5);
    assert!(birthdays.get("11-25").copied().unwrap_or(0) >= 5);
    // msisdns stay unique at a million subscribers (checked on the number function alone).
    let m = Model::new(&GenOptions { subscribers: 1_000_000, ..GenOptions::default() });
    let mut seen = HashSet::new();
    for i in 0..1_000_000 {
        let x = m.base.msisdn(i);
        assert!((13_000_000_000..20_000_000_000).contains(&x));
        assert!(seen.insert(x));
    }

    let mut ids = HashSet::new();
    let mut tags: HashMap<String, usize> = HashMap::new();
    for line in &r.cells {
        let m = obj(line);
        assert!(ids.insert(s(&m, "id").to_string()), "duplicate cell {line}");
        assert!(m.get("lat").is_some_and(Value::is_f64) && m.get("lon").is_some_and(Value::is_f64), "{line}");
        for t in m.get("tags").and_then(Value::as_array).into_iter().flatten() {
            *tags.entry(t.as_str().unwrap_or("").to_string()).or_default() += 1;
        }
    }
    assert!((200..=5100).contains(&r.cells.len()));
    assert!(tags.get("railway_station").copied().unwrap_or(0) >= 6);
    assert!(tags.get("airport").copied().unwrap_or(0) >= 1);
    assert_eq!(tags.get("venue:wukesong").copied(), Some(3));
    assert_eq!(tags.get("store:S001").copied(), Some(1));
    assert!((10..=20).contains(&r.stores.len()));
    for line in &r.stores {
        let m = obj(line);
        assert!(["id", "name", "address", "lat", "lon"].iter().all(|f| m.contains_key(*f)), "{line}");
    }
    let concerts: Vec<_> = r.calendar.iter().map(|l| obj(l)).filter(|m| s(m, "kind") == "concert").collect();
    assert_eq!(concerts.len(), 2);
    assert_eq!(s(&concerts[0], "start"), "2026-11-24T19:30:00+08:00");
    assert_eq!(s(&concerts[1], "end"), "2026-11-25T22:30:00+08:00");
    assert!(r.calendar.iter().any(|l| l.contains("\"festival\"")));
}

#[test]
fn episodes_occur_in_default_run() {
    let o = GenOptions::default();
    let r = reference(&o);
    let subs: HashMap<String, Map<String, Value>> =
        r.subscribers.iter().map(|l| obj(l)).map(|m| (s(&m, "msisdn").to_string(), m)).collect();
    let cell_tags: HashMap<String, Vec<String>> = r
        .cells
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
        .collect();
    let tagged = |cell: &str, tag: &str| cell_tags.get(cell).is_some_and(|t| t.iter().any(|x| x == tag));
    let ordinary = |cell: &str| tagged(cell, "residential") || tagged(cell, "business");
    let lines: Vec<Map<String, Value>> = events(&o).map(|l| obj(&l)).collect();

    let mut last_balance: HashMap<String, i64> = HashMap::new();
    let mut last_cell: HashMap<String, String> = HashMap::new();
    let (mut station, mut airport) = (0, 0);
    let mut ld: HashMap<String, usize> = HashMap::new();
    let mut venue: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    let mut sessions: HashMap<String, Vec<(i64, String, String, String)>> = HashMap::new();
    let mut low: HashMap<String, i64> = HashMap::new();
    let mut topups: HashMap<String, Vec<i64>> = HashMap::new();
    let mut crm_events = HashSet::new();
    let mut cash_low_value = 0;
    let mut roaming_intl = 0;
    for m in &lines {
        let who = s(m, "msisdn").to_string();
        let sub = subs.get(&who).expect("event for a known subscriber");
        let ts = s(m, "ts");
        let t = ms(ts);
        match s(m, "kind") {
            "usage" => {
                let bal = num(m, "balance_fen");
                last_balance.insert(who.clone(), bal);
                if bal < 500 {
                    low.entry(who.clone()).or_insert(t);
                }
                let scope = s(m, "scope");
                if s(m, "service") == "voice"
                    && s(m, "direction") == "mo"
                    && (scope == "long_distance" || scope == "roaming_domestic")
                    && !has_str(sub, "services", "12593")
                    && ("09:00".."21:00").contains(&hm(ts))
                {
                    *ld.entry(who.clone()).or_default() += 1;
                }
            }
            "topup" => topups.entry(who.clone()).or_default().push(t),
            "location" => {
                let cell = s(m, "cell").to_string();
                let hub = tagged(&cell, "railway_station") || tagged(&cell, "airport");
                let trig = s(m, "trigger");
                if hub
                    && (trig == "attach" || trig == "handover")
                    && s(sub, "tier") == "high"
                    && !has_str(sub, "services", "call_notify")
                    && last_balance.get(&who).is_some_and(|b| *b < 1000)
                    && last_cell.get(&who).is_some_and(|c| ordinary(c))
                {
                    if tagged(&cell, "airport") { airport += 1 } else { station += 1 }
                }
                if tagged(&cell, "venue:wukesong")
                    && has_str(sub, "prefs", "music")
                    && !has_str(sub, "services", "music_club")
                {
                    venue.entry(who.clone()).or_default().push((t, ts.to_string()));
                }
                if m.contains_key("country") && !cell.starts_with("460-") {
                    roaming_intl += 1;
                }
                last_cell.insert(who.clone(), cell);
            }
            "ivr" => {
                sessions.entry(s(m, "session").to_string()).or_default().push((
                    t,
                    who.clone(),
                    s(m, "step").to_string(),
                    s(m, "node").to_string(),
                ));
            }
            "crm" => {
                let ev = s(m, "event").to_string();
                if ev == "store_visit" {
                    let attrs = m.get("attrs").and_then(Value::as_object).expect("attrs");
                    if s(attrs, "payment") == "cash" && matches!(s(sub, "tier"), "sub" | "negative") {
                        cash_low_value += 1;
                    }
                }
                crm_events.insert(ev);
            }
            _ => {}
        }
    }
    assert!(station >= 3, "railway station episodes: {station}");
    assert!(airport >= 1, "airport episodes: {airport}");
    assert!(ld.values().filter(|&&c| c >= 3).count() >= 3, "12593 episodes");
    let fans = venue
        .values()
        .filter(|v| {
            let first = &v[0];
            ("19:00".."19:46").contains(&hm(&first.1)) && v.len() >= 5 && v[v.len() - 1].0 - first.0 >= 70 * MINUTE
        })
        .count();
    assert!(fans >= 3, "concert episodes: {fans}");
    let mut agent_topic3: HashMap<String, usize> = HashMap::new();
    let mut without_agent = 0;
    for steps in sessions.values() {
        let enter = steps.iter().find(|x| x.2 == "enter").map(|x| x.0);
        let menu3 = steps.iter().any(|x| x.2 == "menu" && x.3 == "3");
        let agent = steps.iter().find(|x| x.2 == "agent");
        match (enter, agent) {
            (Some(e), Some(a)) if menu3 && a.3.starts_with('3') && a.0 - e <= 60 * SECOND => {
                *agent_topic3.entry(a.1.clone()).or_default() += 1;
            }
            (Some(_), None) => without_agent += 1,
            _ => {}
        }
    }
    assert!(agent_topic3.len() >= 3, "ivr menu 3 -> agent within 60 s");
    assert!(agent_topic3.values().any(|&c| c >= 2), "repeat agent callers");
    assert!(without_agent >= 3);
    let never = low.iter().filter(|(w, t)| !topups.get(*w).is_some_and(|v| v.iter().any(|x| x > *t))).count();
    let later = low
        .iter()
        .filter(|(w, t)| topups.get(*w).is_some_and(|v| v.iter().any(|x| *x > **t && *x - **t <= 6 * HOUR)))
        .count();
    assert!(never >= 3 && later >= 3, "low balance: never {never}, later {later}");
    for ev in [
        "complaint_closed",
        "payment_posted",
        "points_expiring",
        "contract_expiring",
        "disconnect_requested",
        "store_visit",
        "points_changed",
        "discount_credited",
    ] {
        assert!(crm_events.contains(ev), "crm {ev}");
    }
    assert!(cash_low_value >= 3);
    assert!(roaming_intl >= 2);
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
/// Cell id -> tags, from the reference cells.
fn cell_tags(r: &RefFiles) -> HashMap<String, Vec<String>> {
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
fn countries_cover_roaming_destinations() {
    let o = GenOptions::default();
    let r = reference(&o);
    let mut codes = HashSet::new();
    for line in &r.countries {
        let m = obj(line);
        let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "data_fen", "day_pack_fen", "name", "sms_fen", "voice_fen"], "{line}");
        for f in ["voice_fen", "sms_fen", "data_fen", "day_pack_fen"] {
            assert!(num(&m, f) > 0, "{f}: {line}");
        }
        assert!(!s(&m, "name").is_empty() && !s(&m, "name").is_ascii(), "a Chinese name: {line}");
        assert!(codes.insert(s(&m, "code").to_string()), "duplicate country: {line}");
    }
    for c in ["JP", "KR", "TH"] {
        assert!(codes.contains(c), "{c} in countries.jsonl");
    }
    // Every country a visited cell or a roaming event names has a line.
    for (country, ..) in FOREIGN {
        assert!(codes.contains(country), "{country}");
    }
    for line in events(&o) {
        let m = obj(&line);
        if m.contains_key("country") {
            assert!(codes.contains(s(&m, "country")), "{line}");
        }
    }
    let j = obj(&r.countries[0]);
    assert_eq!(s(&j, "code"), "JP");
    assert_eq!(s(&j, "name"), "日本");
    assert_eq!(num(&j, "voice_fen"), 99);
}

#[test]
fn discount_credited_in_daytime() {
    let mut n = 0;
    for line in events(&GenOptions::default()) {
        if !line.contains("\"discount_credited\"") {
            continue;
        }
        let m = obj(&line);
        assert_eq!(s(&m, "kind"), "crm", "{line}");
        let attrs = m.get("attrs").and_then(Value::as_object).expect("attrs");
        assert!(num(attrs, "amount_fen") > 0, "{line}");
        assert!(!s(attrs, "reason").is_empty(), "{line}");
        assert!(("08:00".."20:00").contains(&hm(s(&m, "ts"))), "{line}");
        n += 1;
    }
    // A modest share of the ~4 % CRM lines.
    assert!((100..2000).contains(&n), "discount_credited lines: {n}");
}

#[test]
fn weather_trips_occur_in_default_run() {
    let o = GenOptions::default();
    let r = reference(&o);
    let tags = cell_tags(&r);
    let tagged = |cell: &str, tag: &str| tags.get(cell).is_some_and(|t| t.iter().any(|x| x == tag));
    let tianjin = tags.values().filter(|t| t.iter().any(|x| x == "city:tianjin")).count();
    assert!(tianjin >= 3, "city:tianjin cells: {tianjin}");
    let alerts: Vec<(i64, i64)> = r
        .calendar
        .iter()
        .map(|l| obj(l))
        .filter(|m| s(m, "kind") == "weather_alert")
        .map(|m| {
            assert!(s(&m, "name").starts_with("weather_alert_tianjin_"), "{m:?}");
            assert_eq!(s(&m, "venue"), "city:tianjin");
            assert_eq!(s(&m, "title"), "暴雨蓝色预警");
            (ms(s(&m, "start")), ms(s(&m, "end")))
        })
        .collect();
    assert_eq!(alerts, [(o.start + 6 * HOUR, o.start + 30 * HOUR)]);
    let subs: HashMap<String, Map<String, Value>> =
        r.subscribers.iter().map(|l| obj(l)).map(|m| (s(&m, "msisdn").to_string(), m)).collect();
    // Cells as the engine tracks them: location and usage lines both move a subscriber.
    let mut cell: HashMap<String, String> = HashMap::new();
    let mut arrived: HashSet<String> = HashSet::new();
    let mut returned = 0;
    for line in events(&o) {
        let m = obj(&line);
        let Some(now) = m.get("cell").and_then(Value::as_str).map(String::from) else {
            continue;
        };
        let who = s(&m, "msisdn").to_string();
        let ts = s(&m, "ts");
        let t = ms(ts);
        let prev = cell.insert(who.clone(), now.clone()).unwrap_or_default();
        if s(&m, "kind") != "location" {
            continue;
        }
        let sub = subs.get(&who).expect("known subscriber");
        if tagged(&now, "city:tianjin")
            && tagged(&prev, "city:beijing")
            && alerts.iter().any(|(a, b)| (*a..*b).contains(&t))
            && ("09:00".."20:01").contains(&hm(ts))
            && s(sub, "status") == "active"
            && !has_str(sub, "services", "weather")
        {
            arrived.insert(who.clone());
        }
        if tagged(&now, "city:beijing") && tagged(&prev, "city:tianjin") && arrived.contains(&who) {
            returned += 1;
        }
    }
    assert!(arrived.len() >= 5, "weather trips: {}", arrived.len());
    assert!(returned >= 2, "trips back to Beijing: {returned}");
}

#[test]
fn churners_spend_then_stop() {
    // The shipped configuration's size: 40 days, long enough for the 35-day churn window.
    let o = GenOptions { events: 400_000, days: 40, ..GenOptions::default() };
    let m = Model::new(&o);
    assert!((10..=100).contains(&m.base.churners.len()), "{}", m.base.churners.len());
    for &i in &m.base.churners {
        assert!(m.base.is_churner(i));
        let sub = obj(&subscriber_line(&m, i));
        assert_eq!((s(&sub, "tier"), s(&sub, "status")), ("high", "active"), "{sub:?}");
        assert_eq!(sub.get("dnd"), Some(&Value::Bool(false)));
    }
    assert_eq!((0..m.n).filter(|&i| m.base.is_churner(i)).count(), m.base.churners.len());
    let r = reference(&o);
    let high: HashSet<String> = r
        .subscribers
        .iter()
        .map(|l| obj(l))
        .filter(|m| s(m, "tier") == "high" && s(m, "status") == "active")
        .map(|m| s(&m, "msisdn").to_string())
        .collect();
    let mut charges: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for line in events(&o) {
        let e = obj(&line);
        if s(&e, "kind") == "usage" && num(&e, "charge_fen") > 0 && high.contains(s(&e, "msisdn")) {
            charges.entry(s(&e, "msisdn").to_string()).or_default().push((ms(s(&e, "ts")), num(&e, "charge_fen")));
        }
    }
    // churn_warning, checked daily at 10:00: 28 days of 100 CNY or more, then a week under a
    // tenth of that.
    let sum = |v: &[(i64, i64)], from: i64, to: i64| -> i64 {
        v.iter().filter(|(t, _)| *t > from && *t <= to).map(|(_, c)| c).sum()
    };
    let mut warned: HashMap<String, i64> = HashMap::new();
    for d in 0..i64::from(o.days) {
        let at = o.start + d * DAY + 10 * HOUR;
        for (who, v) in &charges {
            let last7 = sum(v, at - 7 * DAY, at);
            let before = sum(v, at - 35 * DAY, at) - last7;
            if before >= 10_000 && last7 * 10 < before {
                warned.entry(who.clone()).or_insert(d);
            }
        }
    }
    let churners: HashSet<String> = m.base.churners.iter().map(|&i| m.base.msisdn(i).to_string()).collect();
    let hit = warned.keys().filter(|w| churners.contains(*w)).count();
    assert!(hit >= 10 && hit * 10 >= churners.len() * 9, "churners warned: {hit} of {}", churners.len());
    // Only after they have stopped: never on ordinary traffic, never while they still spend.
    let stop: HashMap<String, i64> =
        m.base.churners.iter().map(|&i| (m.base.msisdn(i).to_string(), i64::from(m.base.churn_stop(i)))).collect();
    for (who, d) in &warned {
        assert!(stop.get(who).is_some_and(|s| *d >= s + 3 && *d >= 29), "{who} on day {d}: {warned:?}");
    }
}
