//! The reference files: subscribers, cells, stores, calendar and roaming countries.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::*;
use crate::generator::model::Model;
use crate::generator::world::FOREIGN;

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
    // Every concert names its artist, whose fan event follows; cut-overs are calendar entries.
    assert!(concerts.iter().all(|m| s(m, "artist") == "周杰伦"));
    let kinds = |k: &str| r.calendar.iter().map(|l| obj(l)).filter(|m| s(m, "kind") == k).count();
    assert_eq!((kinds("cutover"), kinds("fan_event")), (2, 1));
    // The record's optional dates: some subscribers have each, and every line still loads.
    for f in ["package_expires", "contract_expires", "lease_expires", "stay_until"] {
        assert!(r.subscribers.iter().any(|l| l.contains(f)), "no {f}");
    }
    for line in &r.subscribers {
        crate::refdata::SubscriberRecord::from_json_line(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
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
