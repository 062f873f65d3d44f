//! Contact policy, driven by a controllable event-time clock: caps across day, week, month and
//! year boundaries and time zones, streaks, do-not-disturb changed live, quiet hours, exclusions,
//! control groups, arbitration and capacity.

use super::support::*;
use tidings::contact::{Decision, Outcome, Suppression};
use tidings::engine::EngineOptions;
use tidings::rules::policy;
use tidings::rules::policy::GlobalPolicy;

fn outcomes(r: &Run) -> Vec<(String, String)> {
    r.decisions
        .iter()
        .map(|d| {
            let o = match d.outcome {
                Outcome::Sent => "sent".to_string(),
                Outcome::Suppressed(s) => s.as_str().to_string(),
                Outcome::Deferred(t) => {
                    format!("deferred {}", tidings::time::format_ts(t, EngineOptions::default().offset))
                }
            };
            (tidings::time::format_ts(d.ts, EngineOptions::default().offset), o)
        })
        .collect()
}

/// The outcomes alone, in order.
fn reasons(r: &Run) -> Vec<String> {
    outcomes(r).into_iter().map(|(_, o)| o).collect()
}

fn sent(r: &Run) -> Vec<&Decision> {
    r.decisions.iter().filter(|d| d.is_sent()).collect()
}

fn crm(ts: &str) -> String {
    ev("crm", ts, r#""event":"store_visit""#)
}

fn rule_with(policy: &str) -> String {
    format!(
        r#"
- rule: visit
  on: [crm]
  condition: event.event == store_visit
  action: {{ channel: sms, template: "thanks" }}
  campaign: visits
  policy: {policy}
"#
    )
}

fn no_quiet() -> EngineOptions {
    EngineOptions { policy: GlobalPolicy { quiet_hours: None, ..GlobalPolicy::default() }, ..EngineOptions::default() }
}

#[test]
fn calendar_month_cap_follows_local_time_across_month_and_year_ends() {
    let rules = rule_with(r#"{ cap: "2 per month" }"#);
    let r = run_with(
        &rules,
        &[SUB],
        &[
            crm("2026-11-29T10:00:00+08:00"),
            crm("2026-11-30T10:00:00+08:00"),
            // Still November locally: capped.
            crm("2026-11-30T23:59:00+08:00"),
            // 16:30 UTC on 30 November is 00:30 on 1 December in China: a new month.
            crm("2026-11-30T16:30:00Z"),
            crm("2026-12-31T23:00:00+08:00"),
            crm("2026-12-31T23:30:00+08:00"), // third in December
            crm("2027-01-01T00:10:00+08:00"), // new year, new month
        ],
        no_quiet(),
    );
    let o = reasons(&r);
    assert_eq!(o, ["sent", "sent", "cap", "sent", "sent", "cap", "sent"]);
    let capped = r.decisions.iter().find(|d| d.suppression() == Some(Suppression::Cap)).unwrap();
    assert_eq!(capped.detail.as_deref(), Some("cap \"2 per month\" of rule visit reached (2 already)"));
}

#[test]
fn rolling_day_and_week_caps() {
    let r = run_with(
        &rule_with(r#"{ cap: "1 per 7d" }"#),
        &[SUB],
        &[crm("2026-11-01T10:00:00+08:00"), crm("2026-11-08T09:59:00+08:00"), crm("2026-11-08T10:00:01+08:00")],
        no_quiet(),
    );
    assert_eq!(reasons(&r), ["sent", "cap", "sent"]);
    // Calendar week: Monday 2026-11-23 starts a new one.
    let r = run_with(
        &rule_with(r#"{ cap: ["1 per week", "5 per day"] }"#),
        &[SUB],
        &[crm("2026-11-22T21:00:00+08:00"), crm("2026-11-23T08:30:00+08:00"), crm("2026-11-29T20:00:00+08:00")],
        no_quiet(),
    );
    assert_eq!(reasons(&r), ["sent", "sent", "cap"]);
}

#[test]
fn streak_cap_over_five_months() {
    let rules = r#"
- campaign: visits
  policy: { streak: "3 months" }
- rule: visit
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "thanks" }
  campaign: visits
"#;
    let months = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"];
    let lines: Vec<String> = months.iter().map(|m| crm(&format!("{m}-15T10:00:00+08:00"))).collect();
    let r = run_with(rules, &[SUB], &lines, no_quiet());
    let o = reasons(&r);
    // Three months in a row, then a month off, then a new run.
    assert_eq!(o, ["sent", "sent", "sent", "cap", "sent", "sent"]);
    assert!(r.decisions[3].detail.as_deref().unwrap().starts_with("streak"));
}

#[test]
fn dnd_set_and_cleared_by_profile_events_mid_stream() {
    let rules = rule_with("{}");
    let r = run_with(
        &rules,
        &[SUB],
        &[
            crm("2026-11-24T10:00:00+08:00"),
            ev("profile", "2026-11-24T10:05:00+08:00", r#""set":{"dnd":["sms"]}"#),
            crm("2026-11-24T10:10:00+08:00"),
            ev("profile", "2026-11-24T10:15:00+08:00", r#""set":{"dnd":false}"#),
            crm("2026-11-24T10:20:00+08:00"),
            ev("profile", "2026-11-24T10:25:00+08:00", r#""set":{"dnd":["call"]}"#),
            crm("2026-11-24T10:30:00+08:00"), // call-only DND does not stop an SMS
        ],
        no_quiet(),
    );
    assert_eq!(reasons(&r), ["sent", "dnd", "sent", "sent"]);
}

#[test]
fn transactional_passes_caps_but_not_dnd_unless_told() {
    let rules = r#"
- rule: receipt
  on: [crm]
  condition: event.event == payment_posted
  action: { channel: sms, template: "paid" }
  policy: { transactional: true }
- rule: cutover
  on: [crm]
  condition: event.event == cutover_planned
  action: { channel: sms, template: "network work tonight" }
  policy: { transactional: true, ignore_dnd: true }
"#;
    let opts = EngineOptions {
        policy: GlobalPolicy {
            caps: vec![policy::parse_cap("1 per day").unwrap()],
            quiet_hours: None,
            ..GlobalPolicy::default()
        },
        ..EngineOptions::default()
    };
    let dnd_sub = r#"{"msisdn":"13800138000","brand":"gotone","tier":"high","dnd":true}"#;
    let pay = |t: &str| ev("crm", t, r#""event":"payment_posted""#);
    let r =
        run_with(rules, &[SUB], &[pay("2026-11-24T10:00:00+08:00"), pay("2026-11-24T11:00:00+08:00")], opts.clone());
    assert_eq!(sent(&r).len(), 2, "the global cap does not hold back receipts");
    let r = run_with(
        rules,
        &[dnd_sub],
        &[pay("2026-11-24T10:00:00+08:00"), ev("crm", "2026-11-24T10:05:00+08:00", r#""event":"cutover_planned""#)],
        opts,
    );
    assert_eq!(reasons(&r), ["dnd", "sent"]);
}

#[test]
fn quiet_hours_defer_drop_expire_and_ignore() {
    let rules = r#"
- rule: later
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "deferred" }
  policy: { quiet_hours: defer }
- rule: never_at_night
  on: [crm]
  condition: event.event == order_placed
  action: { channel: sms, template: "dropped" }
  policy: { quiet_hours: drop }
- rule: short_lived
  on: [crm]
  condition: event.event == complaint_closed
  action: { channel: sms, template: "expires" }
  policy: { quiet_hours: defer, expire_after: 20m }
- rule: urgent
  on: [crm]
  condition: event.event == service_failure
  action: { channel: sms, template: "now" }
  policy: { quiet_hours: ignore }
"#;
    let at = |t: &str, e: &str| ev("crm", t, &format!(r#""event":"{e}""#));
    let r = run_with(
        rules,
        &[SUB],
        &[
            at("2026-11-24T23:10:00+08:00", "store_visit"),
            at("2026-11-24T23:20:00+08:00", "order_placed"),
            at("2026-11-24T23:30:00+08:00", "complaint_closed"),
            at("2026-11-24T23:40:00+08:00", "service_failure"),
            // Event time moves past 08:00: the deferred contact goes out then.
            at("2026-11-25T09:00:00+08:00", "payment_posted"),
        ],
        EngineOptions::default(),
    );
    assert_eq!(
        outcomes(&r),
        [
            ("2026-11-24T23:10:00+08:00".to_string(), "deferred 2026-11-25T08:00:00+08:00".to_string()),
            ("2026-11-24T23:20:00+08:00".to_string(), "quiet_hours".to_string()),
            ("2026-11-24T23:30:00+08:00".to_string(), "quiet_hours".to_string()),
            ("2026-11-24T23:40:00+08:00".to_string(), "sent".to_string()),
            ("2026-11-25T08:00:00+08:00".to_string(), "sent".to_string()),
        ]
    );
    // The deferred contact keeps the id it was decided with.
    assert_eq!(r.decisions[0].id, r.decisions[4].id);
    assert!(r.decisions[2].detail.as_deref().unwrap().contains("expires at 2026-11-24T23:50:00+08:00"));
}

#[test]
fn deferred_contacts_still_answer_to_dnd_when_they_come_due() {
    let rules = rule_with("{ quiet_hours: defer }");
    let r = run_with(
        &rules,
        &[SUB],
        &[
            crm("2026-11-24T23:10:00+08:00"),
            ev("profile", "2026-11-25T07:00:00+08:00", r#""set":{"dnd":true}"#),
            crm("2026-11-25T09:00:00+08:00"),
        ],
        EngineOptions::default(),
    );
    let o = reasons(&r);
    assert_eq!(o, ["deferred 2026-11-25T08:00:00+08:00", "dnd", "dnd"]);
}

#[test]
fn exclusions_global_per_rule_and_lifted() {
    let rules = r#"
- rule: offer
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "offer" }
  policy: { exclude: [corporate, "tier:negative"] }
- rule: retention_call
  on: [crm]
  condition: event.event == disconnect_requested
  action: { channel: call, script: "please stay", queue: retention }
  policy: { include: [pre_cancel] }
"#;
    let subs = [
        r#"{"msisdn":"13800000001","brand":"gotone","tier":"high","status":"suspended"}"#,
        r#"{"msisdn":"13800000002","brand":"gotone","tier":"high","corporate":true}"#,
        r#"{"msisdn":"13800000003","brand":"gotone","tier":"negative"}"#,
        r#"{"msisdn":"13800000004","brand":"gotone","tier":"high","status":"pre_cancel"}"#,
    ];
    let line =
        |m: &str, e: &str| format!(r#"{{"kind":"crm","ts":"2026-11-24T10:00:00+08:00","msisdn":"{m}","event":"{e}"}}"#);
    let lines: Vec<String> = ["13800000001", "13800000002", "13800000003", "13800000004"]
        .iter()
        .flat_map(|m| [line(m, "store_visit"), line(m, "disconnect_requested")])
        .collect();
    let r = run_with(rules, &subs, &lines, no_quiet());
    let got: Vec<(String, String, String)> = r
        .decisions
        .iter()
        .map(|d| (d.msisdn.full(), d.rule_name.to_string(), d.suppression().map_or("sent", |s| s.as_str()).to_string()))
        .collect();
    let want = [
        ("13800000001", "offer", "excluded"),
        ("13800000001", "retention_call", "excluded"),
        ("13800000002", "offer", "excluded"),
        ("13800000002", "retention_call", "sent"),
        ("13800000003", "offer", "excluded"),
        ("13800000003", "retention_call", "sent"),
        ("13800000004", "offer", "excluded"),
        ("13800000004", "retention_call", "sent"),
    ];
    assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())));
    assert_eq!(r.decisions[0].detail.as_deref(), Some("excluded for everyone: suspended"));
}

#[test]
fn control_group_share_is_within_one_percent_and_stable() {
    for pct in [5.0, 10.0, 30.0] {
        let held = (0..100_000u64)
            .filter(|i| tidings::policy::in_control_group(&format!("138{:08}", i), "ip_12593", pct))
            .count();
        let share = held as f64 / 100_000.0 * 100.0;
        assert!((share - pct).abs() <= 1.0, "{pct}% declared, {share:.2}% held out");
    }
    // Different campaigns hold out different subscribers.
    let a: Vec<bool> =
        (0..1000u64).map(|i| tidings::policy::in_control_group(&format!("138{:08}", i), "a", 10.0)).collect();
    let b: Vec<bool> =
        (0..1000u64).map(|i| tidings::policy::in_control_group(&format!("138{:08}", i), "b", 10.0)).collect();
    assert_ne!(a, b);
    // Through the engine: the same subscribers are held out on every run and shard count.
    let rules = r#"
- campaign: visits
  policy: { control_group: "20%" }
- rule: visit
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "thanks" }
  campaign: visits
"#;
    let lines: Vec<String> = (0..500)
        .map(|i| {
            format!(r#"{{"kind":"crm","ts":"2026-11-24T10:00:00+08:00","msisdn":"139{:08}","event":"store_visit"}}"#, i)
        })
        .collect();
    let held = |shards: usize| -> Vec<String> {
        let r = run_with(rules, &[], &lines, EngineOptions { shards, ..no_quiet() });
        r.decisions
            .iter()
            .filter(|d| d.suppression() == Some(Suppression::ControlGroup))
            .map(|d| d.msisdn.full())
            .collect()
    };
    let one = held(1);
    assert!((70..=130).contains(&one.len()), "about 20% of 500: {}", one.len());
    assert_eq!(one, held(3));
}

#[test]
fn arbitration_one_contact_per_trigger_highest_priority_wins() {
    let rules = r#"
- rule: low
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "low" }
  priority: 10
- rule: high
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "high" }
  priority: 90
- rule: call
  on: [crm]
  condition: event.event == store_visit
  action: { channel: call, script: "hello", queue: q }
  priority: 5
  policy: { alongside: true }
"#;
    let r = run_with(rules, &[SUB], &[crm("2026-11-24T10:00:00+08:00")], no_quiet());
    let high = r.decisions.iter().find(|d| &*d.rule_name == "high").unwrap();
    let low = r.decisions.iter().find(|d| &*d.rule_name == "low").unwrap();
    let call = r.decisions.iter().find(|d| &*d.rule_name == "call").unwrap();
    assert!(high.is_sent() && call.is_sent());
    assert_eq!(low.suppression(), Some(Suppression::Arbitration));
    assert_eq!(low.winner.as_deref(), Some(high.id.as_str()));
    // With a window, a later trigger loses to the contact already made.
    let opts = EngineOptions {
        policy: GlobalPolicy { arbitration_window: 30 * 60_000, quiet_hours: None, ..GlobalPolicy::default() },
        ..EngineOptions::default()
    };
    let r = run_with(
        rules,
        &[SUB],
        &[crm("2026-11-24T10:00:00+08:00"), crm("2026-11-24T10:20:00+08:00"), crm("2026-11-24T10:40:00+08:00")],
        opts,
    );
    let sms: Vec<String> = r
        .decisions
        .iter()
        .filter(|d| &*d.rule_name == "high")
        .map(|d| d.suppression().map_or("sent", |s| s.as_str()).to_string())
        .collect();
    assert_eq!(sms, ["sent", "arbitration", "sent"]);
}

#[test]
fn capacity_queues_while_valid_and_records_expiry() {
    let rules = r#"
- rule: visit
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "thanks" }
  policy: { expire_after: 90s }
"#;
    // Two SMS a minute; five subscribers trigger in the same second.
    let lines: Vec<String> = (0..5)
        .map(|i| {
            format!(
                r#"{{"kind":"crm","ts":"2026-11-24T10:00:00+08:00","msisdn":"1390000000{i}","event":"store_visit"}}"#
            )
        })
        .collect();
    let opts = EngineOptions { capacity: [Some((2, 60_000)), None, None, None], ..no_quiet() };
    let r = run_with(rules, &[], &lines, opts);
    let got: Vec<(String, String)> = outcomes(&r);
    // Burst of two at 10:00, then one every 30 s; the fifth would go at 10:01:30 — still
    // valid (expires 10:01:30) — and nothing is lost.
    let sent_at: Vec<&str> = got.iter().filter(|(_, o)| o == "sent").map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        sent_at,
        [
            "2026-11-24T10:00:00+08:00",
            "2026-11-24T10:00:00+08:00",
            "2026-11-24T10:00:30+08:00",
            "2026-11-24T10:01:00+08:00",
            "2026-11-24T10:01:30+08:00"
        ]
    );
    // One a minute: the third expires before its slot and is recorded, not lost.
    let opts = EngineOptions { capacity: [Some((1, 60_000)), None, None, None], ..no_quiet() };
    let r = run_with(rules, &[], &lines, opts);
    let o = reasons(&r);
    assert_eq!(o.iter().filter(|o| *o == "sent").count(), 2);
    assert_eq!(o.iter().filter(|o| *o == "capacity").count(), 3);
    assert_eq!(r.decisions.len(), 5, "every candidate is accounted for");
}

/// The 12593 scenario end to end with the shipped pack: five months of long-distance callers.
/// At most 3 reminders a month, never more than 3 months in a row — exactly, for the heavy
/// callers; and the campaign's control group gets none.
#[test]
fn ip_12593_caps_hold_exactly_over_five_months() {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use tidings::refdata::{RefData, Subscribers};

    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let subs: Vec<String> = (0..300).map(|i| format!("1350000{:04}", i)).collect();
    let mut subscribers = Subscribers::new();
    for m in &subs {
        let s = subscriber(&format!(r#"{{"msisdn":"{m}","brand":"gotone","tier":"valuable"}}"#));
        subscribers.insert(&s);
    }
    // Heavy callers (even index) call long distance every other day; light ones now and then.
    let mut lines = Vec::new();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    for day in 0..153 {
        let date = start + chrono::Days::new(day);
        for (i, m) in subs.iter().enumerate() {
            let calls = if i % 2 == 0 { day % 2 == 0 } else { rnd(10) == 0 };
            if calls {
                let (h, min) = (9 + rnd(11), rnd(60));
                lines.push((
                    format!("{date}T{h:02}:{min:02}:00+08:00"),
                    format!(r#"{{"kind":"usage","ts":"{date}T{h:02}:{min:02}:00+08:00","msisdn":"{m}","service":"voice","direction":"mo","scope":"long_distance","duration_s":300}}"#),
                ));
            }
            // Heavy callers answer the day's reminder, so the campaign's `suppress_after` (two
            // ignored reminders) leaves them to the caps this test is about.
            if calls && i % 2 == 0 {
                lines.push((
                    format!("{date}T21:00:00+08:00"),
                    format!(
                        r#"{{"kind":"reply","ts":"{date}T21:00:00+08:00","msisdn":"{m}","text":"好的","to":"10086"}}"#
                    ),
                ));
            }
        }
    }
    lines.sort();
    let lines: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
    let set = tidings::rules::load(&["rules".into()], None, &Default::default()).rules.expect("the shipped pack loads");
    let decoder = tidings::event::Decoder::default();
    let input = lines.iter().enumerate().filter_map(|(i, l)| decoder.decode(l.as_bytes(), "12593", i as u64 + 1));
    let mut sink = tidings::sink::Memory::default();
    let opts = EngineOptions { shards: 2, ..EngineOptions::default() };
    tidings::engine::run(
        input,
        Arc::new(set),
        Arc::new(RefData::default()),
        subscribers,
        &opts,
        &mut sink,
        &AtomicBool::new(false),
    )
    .unwrap();

    let month = |ts: i64| tidings::rules::policy::period(ts, tidings::rules::policy::CalendarUnit::Month, opts.offset);
    let first = month(tidings::time::parse_ts("2026-09-01T00:00:00+08:00").unwrap());
    let mut per: BTreeMap<String, [u32; 5]> = BTreeMap::new();
    let mut held: BTreeMap<String, u32> = BTreeMap::new();
    for d in sink.decisions.iter().filter(|d| &*d.rule_name == "ip_long_distance_12593") {
        match d.outcome {
            Outcome::Sent => per.entry(d.msisdn.full()).or_default()[(month(d.ts) - first) as usize] += 1,
            Outcome::Suppressed(Suppression::ControlGroup) => *held.entry(d.msisdn.full()).or_default() += 1,
            _ => {}
        }
    }
    for (m, months) in &per {
        assert!(months.iter().all(|n| *n <= 3), "{m}: {months:?}");
        let longest = months
            .iter()
            .fold((0, 0), |(best, run), n| if *n > 0 { (best.max(run + 1), run + 1) } else { (best, 0) })
            .0;
        assert!(longest <= 3, "{m}: {months:?}");
        assert!(!held.contains_key(m), "{m} is in the control group and was contacted");
    }
    let heavy_treated: Vec<&String> = subs.iter().step_by(2).filter(|m| !held.contains_key(*m)).collect();
    assert!(heavy_treated.len() > 120, "most heavy callers are treated: {}", heavy_treated.len());
    for m in heavy_treated {
        assert_eq!(per.get(m).copied().unwrap_or_default(), [3, 3, 3, 0, 3], "{m}");
    }
    let share = held.len() as f64 / subs.len() as f64;
    assert!(share > 0.03 && share < 0.2, "about 10% held out: {share}");
}

#[test]
fn the_operator_opt_out_list_stops_every_channel() {
    let mut rd = refdata();
    rd.optout.insert(tidings::util::Msisdn::parse(M).unwrap());
    let rules = r#"
- rule: sms
  on: [crm]
  condition: "true"
  action: { channel: sms, template: "x" }
- rule: call
  on: [crm]
  condition: "true"
  action: { channel: call, script: "x", queue: q }
- rule: outage
  on: [crm]
  condition: event.event == service_failure
  action: { channel: sms, template: "we are fixing it" }
  policy: { transactional: true, ignore_dnd: true }
"#;
    let r = run_on(rd, rules, &[SUB], &[ev("crm", "10:00:00", r#""event":"service_failure""#)], no_quiet());
    let o: Vec<(String, String)> = r
        .decisions
        .iter()
        .map(|d| (d.rule_name.to_string(), d.suppression().map_or("sent", |s| s.as_str()).to_string()))
        .collect();
    assert_eq!(o, [("sms".into(), "dnd".into()), ("call".into(), "dnd".into()), ("outage".into(), "sent".into())]);
}

#[test]
fn channel_and_all_touchpoint_caps_span_rules_and_campaigns() {
    let rules = r#"
- rule: a
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "a" }
  campaign: one
- rule: b
  on: [crm]
  condition: event.event == order_placed
  action: { channel: sms, template: "b" }
  campaign: two
- rule: c
  on: [crm]
  condition: event.event == points_changed
  action: { channel: call, script: "c", queue: q }
  campaign: three
"#;
    let g = GlobalPolicy {
        caps: vec![policy::parse_cap("2 per day").unwrap()],
        channel_caps: [vec![policy::parse_cap("1 per day").unwrap()], vec![], vec![], vec![]],
        quiet_hours: None,
        ..GlobalPolicy::default()
    };
    let at = |t: &str, e: &str| ev("crm", t, &format!(r#""event":"{e}""#));
    let r = run_with(
        rules,
        &[SUB],
        &[
            at("09:00:00", "store_visit"),
            at("10:00:00", "order_placed"),
            at("11:00:00", "points_changed"),
            at("12:00:00", "points_changed"),
        ],
        EngineOptions { policy: g, ..EngineOptions::default() },
    );
    let o: Vec<(String, String)> = r
        .decisions
        .iter()
        .map(|d| (d.rule_name.to_string(), d.detail.clone().unwrap_or_else(|| "sent".into())))
        .collect();
    assert_eq!(
        o,
        [
            ("a".to_string(), "sent".to_string()),
            ("b".to_string(), "cap \"1 per day\" of channel sms reached (1 already)".to_string()),
            ("c".to_string(), "sent".to_string()),
            ("c".to_string(), "cap \"2 per day\" of all touchpoints reached (2 already)".to_string()),
        ]
    );
}

/// The outcome of each decision by rule: `sent` or the suppression reason.
fn by_rule(r: &Run) -> Vec<(String, String)> {
    r.decisions
        .iter()
        .map(|d| (d.rule_name.to_string(), d.suppression().map_or("sent", |s| s.as_str()).to_string()))
        .collect()
}

const ORDER_RULE: &str = r#"
- campaign: ip_12593
  policy: { control_group: "100%", cap: "1 per day", streak: "1 months" }
- rule: accept_12593
  on: [crm]
  condition: event.event == order_placed
  action: { channel: order, offer: "12593" }
  campaign: ip_12593
"#;

#[test]
fn an_order_is_not_held_by_dnd_quiet_hours_control_group_shared_caps_or_the_arbitration_window() {
    // Everything that stops a contact: do-not-disturb, the operator's opt-out list, the default
    // quiet hours (22:00-08:00), a campaign that holds out everyone with a cap and a streak of
    // one, a touchpoint cap and an arbitration window.
    let mut rd = refdata();
    rd.optout.insert(tidings::util::Msisdn::parse(M).unwrap());
    let dnd_sub = r#"{"msisdn":"13800138000","brand":"gotone","tier":"high","dnd":true}"#;
    let g = GlobalPolicy {
        caps: vec![policy::parse_cap("1 per day").unwrap()],
        arbitration_window: tidings::time::HOUR,
        ..GlobalPolicy::default()
    };
    let at = |t: &str| ev("crm", t, r#""event":"order_placed""#);
    let r = run_on(
        rd,
        ORDER_RULE,
        &[dnd_sub],
        &[at("23:00:00"), at("23:10:00"), at("2026-12-24T23:20:00+08:00")],
        EngineOptions { policy: g, ..EngineOptions::default() },
    );
    assert_eq!(reasons(&r), ["sent", "sent", "sent"], "{:?}", r.decisions);
    let d = &r.decisions[0];
    assert_eq!((d.offer(), d.message()), (Some("12593"), None));
    let line: serde_json::Value = serde_json::from_str(&d.to_json(EngineOptions::default().offset)).unwrap();
    assert_eq!((line["channel"].as_str(), line["offer"].as_str()), (Some("order"), Some("12593")));
    assert!(line.get("text").is_none(), "an order has no text: {line}");
}

#[test]
fn an_order_counts_only_toward_its_own_rule_caps() {
    let rules = r#"
- campaign: ip_12593
  policy: { cap: "1 per day" }
- rule: accept_12593
  on: [crm]
  condition: event.event == order_placed
  action: { channel: order, offer: "{event.attrs.offer}" }
  campaign: ip_12593
  policy: { cap: "1 per day" }
- rule: welcome
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "welcome" }
  campaign: ip_12593
"#;
    let g = GlobalPolicy {
        caps: vec![policy::parse_cap("1 per day").unwrap()],
        quiet_hours: None,
        ..GlobalPolicy::default()
    };
    let order = |t: &str| ev("crm", t, r#""event":"order_placed","attrs":{"offer":"12593"}"#);
    let r = run_with(
        rules,
        &[SUB],
        &[order("09:00:00"), order("10:00:00"), ev("crm", "11:00:00", r#""event":"store_visit""#)],
        EngineOptions { policy: g, ..EngineOptions::default() },
    );
    assert_eq!(
        by_rule(&r),
        [
            ("accept_12593".into(), "sent".into()),
            ("accept_12593".into(), "cap".into()),
            ("welcome".into(), "sent".into())
        ],
        "the order's rule cap holds; the campaign and touchpoint caps do not count the order"
    );
    assert_eq!(r.decisions[0].offer(), Some("12593"), "the offer is a template");
    assert_eq!(r.decisions[1].detail.as_deref(), Some("cap \"1 per day\" of rule accept_12593 reached (1 already)"));
}

#[test]
fn an_order_answers_to_exclusions_and_to_arbitration_among_the_orders_of_its_trigger() {
    let rules = r#"
- rule: accept_low
  on: [crm]
  condition: event.event == order_placed
  action: { channel: order, offer: call_notify }
  priority: 10
- rule: accept_high
  on: [crm]
  condition: event.event == order_placed
  action: { channel: order, offer: music_club }
  priority: 90
- rule: thanks
  on: [crm]
  condition: event.event == order_placed
  action: { channel: sms, template: "thanks" }
"#;
    let cancelled = r#"{"msisdn":"13800000009","brand":"gotone","tier":"high","status":"cancelled"}"#;
    let line =
        |m: &str| format!(r#"{{"kind":"crm","ts":"2026-11-24T10:00:00+08:00","msisdn":"{m}","event":"order_placed"}}"#);
    let r = run_with(rules, &[SUB, cancelled], &[line(M), line("13800000009")], no_quiet());
    let got: Vec<(String, String, String)> = r
        .decisions
        .iter()
        .map(|d| (d.msisdn.full(), d.rule_name.to_string(), d.suppression().map_or("sent", |s| s.as_str()).to_string()))
        .collect();
    let want = [
        (M, "accept_high", "sent"),
        (M, "accept_low", "arbitration"),
        (M, "thanks", "sent"),
        ("13800000009", "accept_low", "excluded"),
        ("13800000009", "accept_high", "excluded"),
        ("13800000009", "thanks", "excluded"),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want: Vec<(String, String, String)> =
        want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    want.sort();
    assert_eq!(got_sorted, want);
    let loser = r.decisions.iter().find(|d| d.rule_name.as_ref() == "accept_low" && d.msisdn.full() == M).unwrap();
    assert_eq!(loser.detail.as_deref(), Some("rule accept_high (priority 90) won this trigger on order"));
}

#[test]
fn an_order_action_needs_an_offer_and_takes_no_message() {
    let src = "- rule: r\n  on: [crm]\n  condition: \"true\"\n  action: { channel: order }\n- rule: s\n  on: [crm]\n  condition: \"true\"\n  action: { channel: order, offer: \"12593\", template: hi }\n- rule: t\n  on: [crm]\n  condition: \"true\"\n  action: { channel: sms, template: hi, offer: \"12593\" }\n- rule: u\n  on: [crm]\n  condition: \"true\"\n  action: { channel: order, offer: \"{evnt.id}\" }\n  policy: { quiet_hours: defer }\n";
    let loaded =
        tidings::rules::compile(vec![("o.yaml".into(), src.into())], None, &tidings::rules::LoadOptions::default());
    assert!(loaded.rules.is_none());
    let got: Vec<(String, usize, usize, String)> =
        loaded.diagnostics.iter().map(|d| (format!("{:?}", d.code), d.line, d.col, d.message.clone())).collect();
    let rendered: String = loaded.diagnostics.iter().map(|d| d.render()).collect();
    assert!(
        got.contains(&(
            "E004".into(),
            4,
            13,
            "an order action needs an `offer` (the offer or product code the order interface knows)".into()
        )),
        "{rendered}"
    );
    assert!(got.contains(&("E005".into(), 8, 55, "an order action has no `template`".into())), "{rendered}");
    assert!(got.contains(&("E005".into(), 12, 48, "an SMS action has no `offer`".into())), "{rendered}");
    assert!(got.iter().any(|g| g.1 == 16 && g.0 != "E004"), "the offer template is checked: {rendered}");
    assert!(got.iter().any(|g| g.0 == "E032" && g.1 == 17), "quiet hours cannot hold an order: {rendered}");
}

#[test]
fn config_refuses_caps_or_capacity_on_the_order_channel() {
    let dir = std::env::temp_dir().join(format!("tidings-order-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("order.toml");
    std::fs::write(&path, "[policy.channels.order]\ncapacity = \"10/s\"\n").unwrap();
    let err = tidings::config::Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("order.toml:1:") && err.contains("not a contact"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
