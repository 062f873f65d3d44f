//! The stories: each one the rule pack looks for occurs in a default run, as the rules will
//! see it (from the lines alone, with the reference files).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::*;
use crate::generator::model::Model;
use crate::generator::subscribers::subscriber_line;
use crate::time::{DAY, HOUR, MINUTE, SECOND};

#[test]
fn episodes_occur_in_default_run() {
    let o = GenOptions::default();
    let r = reference(&o);
    let subs: HashMap<String, Map<String, Value>> =
        r.subscribers.iter().map(|l| obj(l)).map(|m| (s(&m, "msisdn").to_string(), m)).collect();
    let cell_tags = cell_tags(&r);
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
    // churn risk as the pack's old churn warning read it, checked daily at 10:00: 28 days of 100 CNY or more, then a week under a
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
    // A churner only after they have stopped, never while they still spend. Ordinary traffic
    // may look like it now and then (one long international call, then a quiet week: the old
    // rule's reading of risk), but rarely: at most one in ten of the churners' number.
    let stop: HashMap<String, i64> =
        m.base.churners.iter().map(|&i| (m.base.msisdn(i).to_string(), i64::from(m.base.churn_stop(i)))).collect();
    let mut ordinary = 0;
    for (who, d) in &warned {
        match stop.get(who) {
            Some(s) => assert!(*d >= s + 3 && *d >= 29, "churner {who} warned on day {d}, stopped on day {s}"),
            None => ordinary += 1,
        }
    }
    assert!(ordinary * 10 <= churners.len().max(20), "{ordinary} ordinary subscribers look like churners: {warned:?}");
}

/// The offers' answers: over the embedded default's 40 days, subscribers answer each keyword the
/// pack's offers ask for (rules/replies.yaml), each answer after the moment its offer goes out:
/// a package renewal the morning of the 7-days-ahead warning, a contract question the day of the
/// 30-days-ahead one, the silence gift's claim more than 30 days after the last usage.
/// A profile update that sets the preferences again keeps the artist a fan follows.
#[test]
fn offers_are_answered_and_fans_keep_their_artist() {
    let o = GenOptions { events: 400_000, days: 40, ..GenOptions::default() };
    let r = reference(&o);
    let subs: HashMap<String, Map<String, Value>> =
        r.subscribers.iter().map(|l| obj(l)).map(|m| (s(&m, "msisdn").to_string(), m)).collect();
    let date = |m: &Map<String, Value>, k: &str| chrono::NaiveDate::parse_from_str(s(m, k), "%Y-%m-%d").ok();
    let mut answers: HashMap<String, usize> = HashMap::new();
    let mut last_use: HashMap<String, i64> = HashMap::new();
    let (mut prefs_set, mut fans_kept) = (0, 0);
    for l in events(&o) {
        let m = obj(&l);
        let who = s(&m, "msisdn").to_string();
        let sub = &subs[&who];
        let t = ms(s(&m, "ts"));
        let day = chrono::DateTime::from_timestamp_millis(t + 8 * HOUR).map(|d| d.date_naive());
        match s(&m, "kind") {
            "usage" => {
                last_use.insert(who, t);
            }
            "reply" => {
                let text = s(&m, "text");
                match text {
                    "xd" => {
                        let warned =
                            date(sub, "package_expires").and_then(|d| d.checked_sub_days(chrono::Days::new(7)));
                        assert_eq!(day, warned, "XD the morning of the warning: {l}");
                        assert!(("09:00".."12:00").contains(&hm(s(&m, "ts"))), "{l}");
                    }
                    "XY" => {
                        let warned =
                            date(sub, "contract_expires").and_then(|d| d.checked_sub_days(chrono::Days::new(30)));
                        assert_eq!(day, warned, "XY the day of the warning: {l}");
                    }
                    "LL" => {
                        let since = last_use.get(&who).copied().unwrap_or(i64::MIN);
                        assert!(t - since > 30 * DAY, "LL more than 30 days after the last usage: {l}");
                    }
                    _ => {}
                }
                *answers.entry(text.to_string()).or_default() += 1;
            }
            "profile" => {
                let Some(prefs) = m.get("set").and_then(|v| v.get("prefs")).and_then(Value::as_array) else {
                    continue;
                };
                let fan = |p: &[Value]| p.iter().any(|v| v.as_str() == Some("artist:周杰伦"));
                let record = sub.get("prefs").and_then(Value::as_array).is_some_and(|p| fan(p));
                let music = prefs.iter().any(|v| v.as_str() == Some("music"));
                prefs_set += 1;
                if record && music {
                    assert!(fan(prefs), "a fan's profile update drops the artist: {l}");
                    fans_kept += 1;
                }
            }
            _ => {}
        }
    }
    for kw in ["BL", "LL", "xd", "XY", "KTBY", "TQ"] {
        assert!(answers.get(kw).copied().unwrap_or(0) > 0, "nobody answers {kw}: {answers:?}");
    }
    assert!(prefs_set > 0 && fans_kept > 0, "{prefs_set} preference updates, {fans_kept} of fans");
}
