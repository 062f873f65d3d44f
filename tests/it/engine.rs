//! State and time: windows, dwell, entering a tag, absence and delay timers, sequences and
//! live profile changes, all in event time.

use super::support::*;
use tidings::engine::EngineOptions;

#[test]
fn windowed_count_and_sum_slide_with_event_time() {
    let rules = r#"
- rule: three_in_a_day
  on: [usage]
  condition: count(usage where service == sms, 1d) >= 3
  action: { channel: sms, template: "{sum(usage.charge_fen where service == sms, 1d)|cny}" }
"#;
    let sms = |t: &str| ev("usage", t, r#""service":"sms","direction":"mo","scope":"local","count":1,"charge_fen":10"#);
    let lines = vec![
        sms("2026-11-23T08:00:00+08:00"),
        sms("2026-11-23T20:00:00+08:00"),
        // The first is more than a day old by now: only two in the window.
        sms("2026-11-24T09:00:00+08:00"),
        sms("2026-11-24T10:00:00+08:00"),
    ];
    let r = run(rules, &[SUB], &lines);
    let texts: Vec<_> = r.decisions.iter().map(|d| d.text.clone().unwrap_or_default()).collect();
    assert_eq!(texts, ["0.30"], "fires once, at the fourth message, with three in the window");
    assert_eq!(r.rules_fired()[0].1, "2026-11-24T10:00:00+08:00");
}

#[test]
fn entering_a_tag_and_dwell_time_across_cells() {
    let rules = r#"
- rule: arrived
  on: [location]
  condition: entered("railway_station")
  action: { channel: sms, template: "arrived {cell.name}" }
- rule: stayed
  on: [location]
  condition: dwell("venue:wukesong") >= 60m
  action: { channel: sms, template: "stayed {dwell(\"venue:wukesong\")|minutes}" }
"#;
    let loc = |t: &str, cell: &str, trig: &str| ev("location", t, &format!(r#""cell":"{cell}","trigger":"{trig}""#));
    let lines = vec![
        loc("09:00:00", "home", "attach"),
        loc("09:30:00", "station1", "handover"),
        loc("09:40:00", "station2", "handover"), // still the station: not a new arrival
        loc("10:00:00", "home", "handover"),
        loc("11:00:00", "station2", "handover"), // back again: a new arrival
        loc("19:00:00", "venue1", "handover"),
        loc("19:40:00", "venue2", "handover"), // another venue cell: dwell continues
        loc("20:05:00", "venue2", "periodic"),
    ];
    let r = run(rules, &[SUB], &lines);
    let texts: Vec<_> = r.decisions.iter().map(|d| d.text.clone().unwrap_or_default()).collect();
    assert_eq!(texts, ["arrived 北京西站-1", "arrived 北京西站-2", "stayed 65"]);
}

#[test]
fn absence_timer_fires_by_event_time_unless_cancelled() {
    let rules = r#"
- rule: no_topup
  on: [usage]
  condition: state.balance < 5 CNY and state.prev_balance >= 5 CNY
  timer: { after: 3d, cancel_on: [topup], cancel_if: event.amount_fen >= 10 CNY }
  action: { channel: sms, template: "please top up" }
"#;
    let use_ = |t: &str, bal: i64| {
        ev(
            "usage",
            t,
            &format!(r#""service":"data","direction":"mo","scope":"local","volume_kb":1,"balance_fen":{bal}"#),
        )
    };
    let top = |t: &str, amt: i64| {
        ev("topup", t, &format!(r#""amount_fen":{amt},"balance_fen":{},"channel":"card""#, 400 + amt))
    };
    // A top-up of 5 CNY does not cancel (cancel_if), so the timer fires 3 days later.
    let r = run(
        rules,
        &[SUB],
        &[
            use_("2026-11-20T10:00:00+08:00", 900),
            use_("2026-11-20T11:00:00+08:00", 400),
            top("2026-11-21T11:00:00+08:00", 500),
            use_("2026-11-24T09:00:00+08:00", 800),
        ],
    );
    assert_eq!(r.rules_fired(), [("no_topup".to_string(), "2026-11-23T11:00:00+08:00".to_string())]);
    assert_eq!(r.decisions[0].trigger.ts, tidings::time::parse_ts("2026-11-20T11:00:00+08:00").unwrap());
    // A real top-up cancels it.
    let r = run(
        rules,
        &[SUB],
        &[
            use_("2026-11-20T10:00:00+08:00", 900),
            use_("2026-11-20T11:00:00+08:00", 400),
            top("2026-11-21T11:00:00+08:00", 5000),
            use_("2026-11-24T09:00:00+08:00", 800),
        ],
    );
    assert!(r.decisions.is_empty());
    assert_eq!(r.summary.stats.timers_cancelled, 1);
    // Event time has not reached the deadline: nothing yet, the timer stays pending.
    let r = run(rules, &[SUB], &[use_("2026-11-20T10:00:00+08:00", 900), use_("2026-11-20T11:00:00+08:00", 400)]);
    assert!(r.decisions.is_empty());
    assert_eq!(r.summary.pending_timers, 1);
    // ... until the clock is moved past it.
    let until = Some(tidings::time::parse_ts("2026-11-23T12:00:00+08:00").unwrap());
    let r = run_with(
        rules,
        &[SUB],
        &[use_("2026-11-20T10:00:00+08:00", 900), use_("2026-11-20T11:00:00+08:00", 400)],
        EngineOptions { until, ..EngineOptions::default() },
    );
    assert_eq!(r.decisions.len(), 1);
}

#[test]
fn timers_wait_for_the_watermark_not_the_next_event() {
    // With 10 minutes of allowed lateness, a timer due at 13:00 fires only once events at or
    // after 13:10 have been seen; a late event before then still counts.
    let rules = r#"
- rule: callback
  on: [crm]
  condition: event.event == complaint_closed
  timer: { after: 4h, recheck: subscriber.status == active }
  action: { channel: call, script: "call back", queue: care }
"#;
    let crm = |t: &str| ev("crm", t, r#""event":"complaint_closed""#);
    let suspend = |t: &str| ev("profile", t, r#""set":{"status":"suspended"}"#);
    let other = |t: &str| {
        r#"{"kind":"crm","ts":"2026-11-24T__+08:00","msisdn":"13911112222","event":"store_visit"}"#.replace("__", t)
    };
    let opts = EngineOptions { lateness: 10 * 60_000, ..EngineOptions::default() };
    // Suspension at 12:59 arrives late (after an event at 13:05) but within the lateness: no call.
    let r = run_with(
        rules,
        &[SUB],
        &[crm("09:00:00"), other("13:05:00"), suspend("12:59:00"), other("13:20:00")],
        opts.clone(),
    );
    assert!(r.decisions.is_empty(), "{:?}", r.rules_fired());
    // Without the suspension the call is decided at 13:00.
    let r = run_with(rules, &[SUB], &[crm("09:00:00"), other("13:05:00"), other("13:20:00")], opts);
    assert_eq!(r.rules_fired(), [("callback".to_string(), "2026-11-24T13:00:00+08:00".to_string())]);
    assert_eq!(r.decisions[0].queue.as_deref(), Some("care"));
}

#[test]
fn sequence_within_a_window() {
    let rules = r#"
- rule: menu3_then_agent
  on: [ivr]
  condition: seq(ivr where step == menu and node startswith "3", ivr where step == agent, within 60s)
  action: { channel: sms, template: "care" }
"#;
    let ivr =
        |t: &str, step: &str, node: &str| ev("ivr", t, &format!(r#""session":"s","step":"{step}","node":"{node}""#));
    let r = run(
        rules,
        &[SUB],
        &[
            ivr("10:00:00", "menu", "3-2"),
            ivr("10:00:50", "agent", "3-2"), // within 60 s: fires
            ivr("11:00:00", "menu", "1"),
            ivr("11:00:10", "agent", "1"), // menu 1: no
            ivr("12:00:00", "menu", "3"),
            ivr("12:01:30", "agent", "3"), // 90 s: no
            ivr("13:00:00", "agent", "3"), // agent before any menu: no
        ],
    );
    assert_eq!(r.rules_fired(), [("menu3_then_agent".to_string(), "2026-11-24T10:00:50+08:00".to_string())]);
}

#[test]
fn profile_events_change_the_subscriber_live() {
    let rules = r#"
- rule: weather_offer
  on: [location]
  condition: not "weather" in subscriber.services and subscriber.tier == high and not subscriber.dnd
  action: { channel: sms, template: "offer" }
"#;
    let loc = |t: &str| ev("location", t, r#""cell":"home","trigger":"periodic""#);
    let r = run(
        rules,
        &[SUB],
        &[
            loc("09:00:00"),
            ev("profile", "09:10:00", r#""add":{"services":["weather"]}"#),
            loc("09:20:00"),
            ev("profile", "09:30:00", r#""remove":{"services":["weather"]},"set":{"dnd":["sms"]}"#),
            loc("09:40:00"),
            ev("profile", "09:50:00", r#""unset":["dnd"],"set":{"tier":"valuable"}"#),
            loc("10:00:00"),
            ev("profile", "10:10:00", r#""set":{"tier":"high"}"#),
            loc("10:20:00"),
        ],
    );
    let at: Vec<String> = r.rules_fired().into_iter().map(|(_, t)| t).collect();
    assert_eq!(at, ["2026-11-24T09:00:00+08:00", "2026-11-24T10:20:00+08:00"]);
}

#[test]
fn unknown_subscribers_get_no_profile_based_contact() {
    let rules = r#"
- rule: high_only
  on: [location]
  condition: subscriber.tier == high
  action: { channel: sms, template: "x" }
- rule: anyone
  on: [location]
  condition: not subscriber.known
  action: { channel: sms, template: "{subscriber.msisdn|mask}" }
"#;
    let r = run(rules, &[], &[ev("location", "09:00:00", r#""cell":"nowhere","trigger":"attach""#)]);
    assert_eq!(r.decisions.len(), 1);
    assert_eq!(r.decisions[0].text.as_deref(), Some("138****8000"));
}

#[test]
fn action_ids_are_deterministic_and_distinct() {
    let rules = r#"
- rule: a
  on: [crm]
  condition: "true"
  action: { channel: sms, template: "x" }
"#;
    let lines = vec![
        ev("crm", "09:00:00", r#""id":"e1","event":"store_visit""#),
        ev("crm", "09:01:00", r#""id":"e2","event":"store_visit""#),
    ];
    let r1 = run(rules, &[SUB], &lines);
    let r2 = run(rules, &[SUB], &lines);
    let ids = |r: &Run| r.decisions.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&r1), ids(&r2));
    assert_ne!(ids(&r1)[0], ids(&r1)[1]);
    let json = r1.decisions[0].to_json(EngineOptions::default().offset);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["msisdn"], "13800138000");
    assert_eq!(v["trigger"]["id"], "e1");
    assert_eq!(v["trigger"]["kind"], "crm");
    assert_eq!(v["ts"], "2026-11-24T09:00:00+08:00");
}

#[test]
fn rules_are_visited_only_for_the_values_they_require() {
    let rules = r#"
- rule: closed
  on: [crm]
  condition: event.event == complaint_closed
  action: { channel: sms, template: "a" }
- rule: orders
  on: [crm]
  condition: event.event in (order_placed, payment_posted) and subscriber.tier == high
  action: { channel: sms, template: "b" }
- rule: any_crm
  on: [crm]
  condition: not subscriber.corporate
  action: { channel: sms, template: "c" }
- rule: voice
  on: [usage]
  condition: event.service == voice and event.duration_s > 1m
  action: { channel: sms, template: "d" }
- rule: menu_1_2
  on: [ivr]
  condition: event.step == menu and event.node in ("1-2", "1-3")
  action: { channel: sms, template: "e" }
- rule: menu_any
  on: [ivr]
  condition: event.step == menu and event.node != "0"
  action: { channel: sms, template: "f" }
"#;
    let set = tidings::rules::compile(vec![("i.yaml".into(), rules.into())], None, &Default::default()).rules.unwrap();
    let d = tidings::event::Decoder::default();
    let visited = |line: &str| {
        let ev = d.decode(line.as_bytes(), "t", 1).unwrap().unwrap();
        let mut v = Vec::new();
        set.by_kind[ev.kind() as usize].visit(&ev, &mut Vec::new(), |r| v.push(set.rules[r as usize].name.to_string()));
        v
    };
    assert_eq!(visited(&ev("crm", "09:00:00", r#""event":"payment_posted""#)), ["orders", "any_crm"]);
    assert_eq!(visited(&ev("crm", "09:00:00", r#""event":"complaint_closed""#)), ["closed", "any_crm"]);
    assert_eq!(visited(&ev("crm", "09:00:00", r#""event":"store_visit""#)), ["any_crm"]);
    assert_eq!(
        visited(&ev("usage", "09:00:00", r#""service":"data","direction":"mo","scope":"local""#)),
        Vec::<String>::new()
    );
    // Below the rule's threshold (or without the field) the voice rule is not visited either.
    let voice =
        |extra: &str| ev("usage", "09:00:00", &format!(r#""service":"voice","direction":"mo","scope":"local"{extra}"#));
    assert_eq!(visited(&voice("")), Vec::<String>::new());
    assert_eq!(visited(&voice(r#","duration_s":60"#)), Vec::<String>::new());
    assert_eq!(visited(&voice(r#","duration_s":61"#)), ["voice"]);
    assert_eq!(
        visited(&ev("ivr", "09:00:00", r#""session":"s","step":"menu","node":"1-2","hotline":"10086""#)),
        ["menu_1_2", "menu_any"]
    );
    assert_eq!(
        visited(&ev("ivr", "09:00:00", r#""session":"s","step":"menu","node":"9","hotline":"10086""#)),
        ["menu_any"]
    );
}

#[test]
fn a_29_february_birthday_is_kept_on_the_28th_in_common_years() {
    let rules = r#"
- rule: bday
  schedule: "09:00"
  condition: subscriber.is_birthday and subscriber.days_to_birthday == 0
  action: { channel: sms, template: "生日快乐" }
"#;
    let leapling = r#"{"msisdn":"13800138000","brand":"gotone","tier":"high","birthday":"02-29"}"#;
    let start =
        r#"{"kind":"crm","ts":"2027-02-27T08:00:00+08:00","msisdn":"13999999999","event":"store_visit"}"#.to_string();
    let until = Some(tidings::time::parse_ts("2027-03-02T12:00:00+08:00").unwrap());
    let r = run_with(rules, &[leapling], &[start], EngineOptions { until, ..EngineOptions::default() });
    assert_eq!(r.rules_fired(), [("bday".to_string(), "2027-02-28T09:00:00+08:00".to_string())]);
}

/// A daily pass of birthday rules only looks at each record's birthday and passes the others
/// over; with another daily rule due at the same time, everyone is evaluated as before. Either
/// way the greetings go to exactly those whose birthday it is, and only when the rest holds.
#[test]
fn the_birthday_pass_greets_exactly_those_whose_birthday_it_is() {
    let rules = |also_at_nine: &str| {
        format!(
            r#"
- rule: bday
  schedule: "09:00"
  condition: subscriber.is_birthday and subscriber.tier == high
  action: {{ channel: sms, template: "生日快乐" }}
- rule: morning
  schedule: "{also_at_nine}"
  condition: subscriber.tier == high and subscriber.brand == mzone
  action: {{ channel: sms, template: "早上好" }}
"#
        )
    };
    let subs = [
        r#"{"msisdn":"13800000001","brand":"gotone","tier":"high","birthday":"02-27"}"#,
        r#"{"msisdn":"13800000002","brand":"gotone","tier":"high","birthday":"02-28"}"#,
        r#"{"msisdn":"13800000003","brand":"gotone","tier":"sub","birthday":"02-27"}"#,
        r#"{"msisdn":"13800000004","brand":"mzone","tier":"high"}"#,
    ];
    let start =
        r#"{"kind":"crm","ts":"2027-02-26T08:00:00+08:00","msisdn":"13999999999","event":"store_visit"}"#.to_string();
    let until = Some(tidings::time::parse_ts("2027-02-28T12:00:00+08:00").unwrap());
    for at in ["10:00", "09:00"] {
        let r = run_with(
            &rules(at),
            &subs,
            std::slice::from_ref(&start),
            EngineOptions { until, ..EngineOptions::default() },
        );
        let sent = |rule: &str| -> Vec<(String, String)> {
            r.decisions
                .iter()
                .filter(|d| &*d.rule_name == rule)
                .map(|d| (d.msisdn.full(), tidings::time::format_ts(d.ts, EngineOptions::default().offset)))
                .collect()
        };
        assert_eq!(
            sent("bday"),
            [
                ("13800000001".to_string(), "2027-02-27T09:00:00+08:00".to_string()),
                ("13800000002".to_string(), "2027-02-28T09:00:00+08:00".to_string()),
            ],
            "morning rule at {at}"
        );
        assert_eq!(sent("morning").len(), 3, "the other daily rule still visits everyone ({at})");
        assert!(sent("morning").iter().all(|(m, _)| m == "13800000004"));
    }
}

#[test]
fn a_request_someone_waits_on_is_decided_ahead_of_the_events_in_hand() {
    let rules = r#"
- rule: each_usage
  on: [usage]
  condition: event.charge_fen >= 0 fen
  action: { channel: sms, template: "usage" }
- rule: each_call
  on: [ivr]
  condition: event.step == "enter"
  action: { channel: ivr, template: "offer" }
"#;
    let usage = |id: &str, t: &str| {
        ev(
            "usage",
            t,
            &format!(r#""id":"{id}","service":"sms","direction":"mo","scope":"local","count":1,"charge_fen":10"#),
        )
    };
    let call = ev("ivr", "10:00:02", r#""id":"r1","session":"s1","step":"enter","hotline":"10086""#);
    let order = |urgent: bool| {
        let lines = vec![
            (usage("u1", "10:00:00"), false),
            (usage("u2", "10:00:01"), false),
            (call.clone(), urgent),
            (usage("u3", "10:00:03"), false),
        ];
        let r = run_marked(rules, &[SUB], &lines);
        r.decisions.iter().map(|d| d.trigger.id.to_string()).collect::<Vec<_>>()
    };
    // In the stream's order when nobody waits; a waiting caller's request goes ahead of the two
    // events read but not decided yet (the batch in hand), and nothing is lost or doubled.
    assert_eq!(order(false), ["u1", "u2", "r1", "u3"]);
    assert_eq!(order(true), ["r1", "u1", "u2", "u3"]);
}

/// A live stream goes quiet on several shards: the decisions of the batches still in flight are
/// written at the idle tick, not held until the next event comes (with one event a batch, the
/// last two batches always were).
#[test]
fn a_quiet_stream_on_several_shards_writes_what_is_in_flight() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    use tidings::engine::{self, Input};
    use tidings::event::Decoder;
    use tidings::refdata::RefData;
    use tidings::rules::{self, LoadOptions};
    struct Tell(mpsc::Sender<String>);
    impl tidings::engine::Sink for Tell {
        fn decision(&mut self, d: &tidings::contact::Decision) -> std::io::Result<()> {
            let _ = self.0.send(d.msisdn.full());
            Ok(())
        }
    }
    let pack = "- rule: hi\n  on: [topup]\n  condition: \"true\"\n  action: { channel: sms, template: \"hi\" }\n  \
                policy: { quiet_hours: ignore, transactional: true }\n";
    let rules = Arc::new(
        rules::compile(vec![("r.yaml".into(), pack.into())], None, &LoadOptions::default()).rules.expect("a pack"),
    );
    let (in_tx, in_rx) = mpsc::channel::<Input>();
    let (out_tx, out_rx) = mpsc::channel();
    let engine = std::thread::spawn(move || {
        let opts = EngineOptions { shards: 2, batch: 1, ..EngineOptions::default() };
        let subs = tidings::refdata::Subscribers::new();
        let stop = AtomicBool::new(false);
        engine::run(in_rx.into_iter(), rules, Arc::new(RefData::default()), subs, &opts, &mut Tell(out_tx), &stop)
            .map(|s| s.events)
    });
    let numbers = ["13800138000", "13900139001", "13700137002"];
    for (i, m) in numbers.iter().enumerate() {
        let line = format!(
            r#"{{"kind":"topup","ts":"2026-11-24T10:0{i}:00+08:00","msisdn":"{m}","amount_fen":1000,"channel":"card"}}"#
        );
        in_tx.send(Input::Item(Decoder::default().decode(line.as_bytes(), "t", 1).expect("a line"))).expect("sent");
    }
    in_tx.send(Input::Idle).expect("sent");
    // Nothing more comes in: all three are written anyway.
    let mut got: Vec<String> = (0..3)
        .map(|_| out_rx.recv_timeout(std::time::Duration::from_secs(30)).expect("a decision written at the idle tick"))
        .collect();
    got.sort();
    assert_eq!(got, ["13700137002", "13800138000", "13900139001"]);
    drop(in_tx);
    assert_eq!(engine.join().expect("the engine").expect("a run"), 3);
}
