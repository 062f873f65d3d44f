//! Campaigns' plans in event time: dates and status (`campaign_off`), budgets by contacts and by
//! cost (`budget`), the control group not counted, the budget spent carried across a checkpoint
//! and restart, the same on any shard count and batch size, and the plan's diagnostics.

use crate::support::{M, SUB, ev, no_footer, refdata, run, run_with, subscriber};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tidings::engine::{self, Durable, EngineOptions, Input};
use tidings::event::Decoder;
use tidings::rules::{self, LoadOptions};
use tidings::sink::Memory;
use tidings::state::checkpoint::{self, CheckpointConfig, Writer};

/// One SMS rule on store visits, in campaign `winter` with the plan `plan` (YAML lines of the
/// `campaign:` item, indented two spaces).
fn pack(plan: &str) -> String {
    format!(
        r#"
- campaign: winter
  owner: 市场部
{plan}

- rule: visit
  on: [crm]
  condition: event.event == store_visit
  action: {{ channel: sms, template: "冬季流量包上线了" }}
  campaign: winter
"#
    )
}

fn outcomes(r: &crate::support::Run) -> Vec<&'static str> {
    r.decisions.iter().map(word).collect()
}

fn word(d: &tidings::contact::Decision) -> &'static str {
    match d.outcome {
        tidings::contact::Outcome::Deferred(_) => "deferred",
        _ => d.suppression().map_or("sent", |s| s.as_str()),
    }
}

fn visit(time: &str) -> String {
    ev("crm", time, r#""event":"store_visit""#)
}

/// The n-th of many subscribers (for budgets: one contact each, no caps in the way).
fn sub(i: usize) -> String {
    format!(r#"{{"msisdn":"1390000{i:04}","brand":"gotone","tier":"high"}}"#)
}

fn visit_of(i: usize, time: &str) -> String {
    visit(time).replace(M, &format!("1390000{i:04}"))
}

#[test]
fn a_campaign_decides_nothing_before_its_start_or_from_its_end_on() {
    let p = pack("  start: 2026-11-24 10:00\n  end: 2026-11-25");
    let lines =
        [visit("09:59:00"), visit("10:00:00"), visit("2026-11-25T21:59:00+08:00"), visit("2026-11-26T00:00:00+08:00")];
    let r = run(&p, &[SUB], &lines);
    assert_eq!(outcomes(&r), ["campaign_off", "sent", "sent", "campaign_off"], "{:?}", r.decisions);
    let before = r.decisions[0].detail.as_deref().unwrap_or("");
    assert!(before.contains("runs 2026-11-24 10:00 through 2026-11-25") && before.contains("before"), "{before}");
    assert!(r.decisions[3].detail.as_deref().unwrap_or("").contains("after"));
    // Open on one side: only a start, only an end.
    let r = run(&pack("  start: 2026-11-24 12:00"), &[SUB], &[visit("11:00:00"), visit("2026-12-31T12:00:00+08:00")]);
    assert_eq!(outcomes(&r), ["campaign_off", "sent"]);
    let r = run(&pack("  end: 2026-11-24 12:00"), &[SUB], &[visit("11:00:00"), visit("12:00:00")]);
    assert_eq!(outcomes(&r), ["sent", "campaign_off"]);
}

#[test]
fn a_paused_or_ended_campaign_decides_nothing() {
    for status in ["paused", "ended"] {
        let r = run(&pack(&format!("  status: {status}")), &[SUB], &[visit("10:00:00")]);
        assert_eq!(outcomes(&r), ["campaign_off"], "{status}");
        assert_eq!(r.decisions[0].detail.as_deref(), Some(format!("campaign winter is {status}").as_str()));
    }
    let r = run(&pack("  status: active"), &[SUB], &[visit("10:00:00")]);
    assert_eq!(outcomes(&r), ["sent"]);
}

/// A timer armed while the campaign ran, coming due after its end, is suppressed then; so is a
/// contact held for quiet hours whose hold ends after it.
#[test]
fn a_timer_or_a_held_contact_due_after_the_end_is_not_sent() {
    let p = r#"
- campaign: callbacks
  end: 2026-11-24

- rule: callback
  on: [crm]
  condition: event.event == complaint_closed
  timer: { after: 4h }
  action: { channel: call, script: "回访", queue: care }
  campaign: callbacks

- rule: night_offer
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "优惠" }
  campaign: callbacks
  policy: { quiet_hours: defer }
"#;
    let closed = |t: &str| ev("crm", t, r#""event":"complaint_closed""#);
    // Due 15:00 (in) and 01:00 the next day (after the end); the visit at 23:00 is held for
    // quiet hours until 08:00 the next day.
    let next_day = ev("usage", "2026-11-25T09:00:00+08:00", r#""service":"data","direction":"mo","scope":"local""#);
    let lines = [closed("11:00:00"), closed("21:00:00"), visit("23:00:00"), next_day];
    let r = run(p, &[SUB], &lines);
    let got: Vec<(&str, &str)> = r.decisions.iter().map(|d| (&*d.rule_name, word(d))).collect();
    let want = [
        ("callback", "sent"),
        ("night_offer", "deferred"),
        ("callback", "campaign_off"),
        ("night_offer", "campaign_off"),
    ];
    assert_eq!(got, want, "{:?}", r.decisions);
    let d = r.decisions[3].detail.as_deref().unwrap_or("");
    assert!(d.contains("ran through 2026-11-24 (local)") && d.contains("2026-11-25T08:00:00+08:00 is after"), "{d}");
}

#[test]
fn a_budget_of_contacts_stops_the_campaign_once_spent() {
    let p = pack("  budget: { contacts: 2 }");
    let subs: Vec<String> = (0..4).map(sub).collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let lines: Vec<String> = (0..4).map(|i| visit_of(i, &format!("10:0{i}:00"))).collect();
    let r = run(&p, &subs, &lines);
    assert_eq!(outcomes(&r), ["sent", "sent", "budget", "budget"]);
    assert_eq!(r.decisions[2].detail.as_deref(), Some("budget of campaign winter spent: 2 of 2 contacts"));
    assert_eq!(r.summary.actions, 2, "a budget stop is not an action");
}

#[test]
fn a_budget_in_fen_counts_each_channel_at_its_cost() {
    let p = r#"
- campaign: winter
  budget: { cost_fen: { sms: 5, call: 150 }, limit_fen: 165 }

- rule: visit_sms
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "x" }
  campaign: winter

- rule: complaint_call
  on: [crm]
  condition: event.event == complaint_closed
  action: { channel: call, script: "回访", queue: care }
  campaign: winter
"#;
    let subs: Vec<String> = (0..5).map(sub).collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let closed = |i: usize, t: &str| visit_of(i, t).replace("store_visit", "complaint_closed");
    // 5 + 150 = 155; a second call (305) is over; two more SMS (160, 165) fit; the next is over.
    let lines = [
        visit_of(0, "10:00:00"),
        closed(1, "10:01:00"),
        closed(2, "10:02:00"),
        visit_of(3, "10:03:00"),
        visit_of(4, "10:04:00"),
        visit_of(0, "10:05:00"),
    ];
    let r = run(p, &subs, &lines);
    assert_eq!(outcomes(&r), ["sent", "sent", "budget", "sent", "sent", "budget"], "{:?}", r.decisions);
    let d = r.decisions[2].detail.as_deref().unwrap_or("");
    assert_eq!(d, "budget of campaign winter spent: 155 of 165 fen, and this call costs 150");
}

/// Every part of a long SMS is billed: an SMS of two messages (71 Chinese characters, with
/// `parts: 2`) spends its campaign's SMS price twice.
#[test]
fn a_long_sms_costs_its_price_for_each_message() {
    let p = format!(
        r#"
- campaign: winter
  budget: {{ cost_fen: {{ sms: 5 }}, limit_fen: 25 }}

- rule: visit_sms
  on: [crm]
  condition: event.event == store_visit
  action: {{ channel: sms, template: "{}", parts: 2 }}
  campaign: winter
  policy: {{ transactional: true }}
"#,
        "冬".repeat(71)
    );
    let subs: Vec<String> = (0..3).map(sub).collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    // 10 + 10 = 20; a third (30) is over 25.
    let lines = [visit_of(0, "10:00:00"), visit_of(1, "10:01:00"), visit_of(2, "10:02:00")];
    let r = run(&p, &subs, &lines);
    assert_eq!(outcomes(&r), ["sent", "sent", "budget"], "{:?}", r.decisions);
    let d = r.decisions[2].detail.as_deref().unwrap_or("");
    assert_eq!(d, "budget of campaign winter spent: 20 of 25 fen, and this sms costs 10 (2 messages)");
}

#[test]
fn the_control_group_and_suppressed_contacts_spend_no_budget() {
    let p = pack("  policy: { control_group: \"50%\", cap: \"1 per day\" }\n  budget: { contacts: 10 }");
    let n = 60;
    let subs: Vec<String> = (0..n).map(sub).collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    // Each subscriber visits twice: the second is capped, and spends nothing.
    let mut lines: Vec<String> = (0..n).map(|i| visit_of(i, "10:00:00")).collect();
    lines.extend((0..n).map(|i| visit_of(i, "11:00:00")));
    let r = run(&p, &subs, &lines);
    let o = outcomes(&r);
    let (first, second) = o.split_at(n);
    let count = |o: &[&str], what: &str| o.iter().filter(|x| **x == what).count();
    let held = count(first, "control_group");
    assert!(held > 10 && held < 50, "about half held out: {held}");
    assert_eq!(count(&o, "sent"), 10, "{o:?}");
    assert_eq!(count(first, "budget"), n - held - 10, "every treated contact past the tenth");
    // The second visits: held out again, or capped (a contact the budget stopped was decided
    // by the shard before the budget counted it: see README), never `budget` again.
    assert_eq!(count(second, "control_group"), held);
    assert_eq!(count(second, "cap"), n - held);
    // The ten sent are the first ten treated ones, in output order.
    let treated: Vec<&&str> = o[..n].iter().filter(|x| **x != "control_group").collect();
    assert!(treated[..10].iter().all(|x| **x == "sent") && treated[10..].iter().all(|x| **x == "budget"));
}

/// Budget, dates and a control group over many subscribers: byte for byte the same decisions on
/// 1, 2 and 3 shards and any batch size.
#[test]
fn budgets_decide_the_same_on_any_shard_count_and_batch_size() {
    let p = pack("  start: 2026-11-24 09:00\n  policy: { control_group: \"20%\" }\n  budget: { contacts: 37 }");
    let n = 200;
    let subs: Vec<String> = (0..n).map(sub).collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let lines: Vec<String> = (0..n).map(|i| visit_of(i, &format!("{:02}:{:02}:00", 8 + i / 60, i % 60))).collect();
    let out = |shards: usize, batch: usize| -> Vec<String> {
        let o = EngineOptions { shards, batch, ..no_footer() };
        let r = run_with(&p, &subs, &lines, o.clone());
        r.decisions.iter().map(|d| d.to_log_json(o.offset)).collect()
    };
    let one = out(1, 1024);
    let sent = one.iter().filter(|l| l.contains(r#""outcome":"sent""#)).count();
    assert_eq!(sent, 37, "the budget is spent exactly");
    assert!(one.iter().any(|l| l.contains(r#""reason":"budget""#)));
    assert!(one.iter().any(|l| l.contains(r#""reason":"campaign_off""#)));
    for (shards, batch) in [(2, 1024), (3, 7), (2, 1), (1, 13)] {
        assert_eq!(out(shards, batch), one, "{shards} shards, batches of {batch}");
    }
}

/// What the budget has spent is in the checkpoint: after a restart it goes on from there, and
/// the campaign's end is still read in event time.
#[test]
fn the_budget_spent_continues_across_a_checkpoint_and_restart() {
    let p = pack("  end: 2026-11-24 11:02\n  budget: { contacts: 3, cost_fen: { sms: 5 } }");
    let dir = std::env::temp_dir().join(format!("tidings-ckpt-budget-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |lines: Vec<String>| -> Vec<&'static str> {
        let rd = refdata();
        let loaded = rules::compile(vec![("t.yaml".into(), p.clone())], Some(&rd), &LoadOptions::default());
        let set = loaded.rules.expect("rules compile");
        let mut subs = tidings::refdata::Subscribers::new();
        for i in 0..6 {
            subs.insert(&subscriber(&sub(i)));
        }
        let cfg = CheckpointConfig {
            dir: dir.clone(),
            every_events: 0,
            every: Duration::ZERO,
            keep: 2,
            slice: Duration::from_millis(1),
        };
        let writer = Writer::start(&cfg).unwrap();
        let restore = checkpoint::load_latest(&dir, &mut |m| panic!("{m}")).unwrap();
        let none = Vec::new;
        let durable = Durable { every_events: 0, ..Durable::new(&writer, &cfg, &none, restore) };
        let mut sink = Memory::default();
        let o = no_footer();
        let stop = AtomicBool::new(false);
        let decoder = Decoder::default();
        let input = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| decoder.decode(l.as_bytes(), "t", i as u64 + 1))
            .map(Input::from);
        let setup = engine::Setup { rules: Arc::new(set), refdata: Arc::new(rd), subscribers: subs };
        engine::run_durable(input, setup, &o, &mut sink, &stop, Some(durable)).expect("run");
        writer.finish();
        sink.decisions.iter().map(|d| d.suppression().map_or("sent", |s| s.as_str())).collect()
    };
    assert_eq!(run(vec![visit_of(0, "10:00:00"), visit_of(1, "10:01:00")]), ["sent", "sent"]);
    let loaded = checkpoint::load_latest(&dir, &mut |m| panic!("{m}")).unwrap().expect("a checkpoint");
    assert!(!loaded.meta.budgets.is_empty(), "the checkpoint carries the budget");
    assert_eq!(
        run(vec![visit_of(2, "11:00:00"), visit_of(3, "11:01:00"), visit_of(4, "11:02:00")]),
        ["sent", "budget", "campaign_off"],
        "two spent before the restart, one left after it; the end at 11:02 holds after it too"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every bad value of a plan is a located diagnostic; all of them at once.
#[test]
fn a_bad_campaign_plan_is_refused_with_every_mistake_located() {
    let p = r#"- campaign: winter
  owner: 市场部
  start: 2026-12-10
  end: 2026-12-01
  status: pasued
  budgte: 3
  budget:
    contacts: -5
    cost_fen: { smss: 5, order: 1, call: -2 }
    limit_fen: 0

- campaign: summer
  start: 2026-06-01T09:00:00+08:00
  budget: { limit_fen: 100 }

- rule: visit
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "x" }
  campaign: winter

- rule: summer_visit
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "x" }
  campaign: summer
"#;
    let loaded = rules::compile(vec![("c.yaml".into(), p.into())], Some(&refdata()), &LoadOptions::default());
    assert!(loaded.rules.is_none(), "nothing loads");
    let got: Vec<String> = loaded.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render()).collect();
    let all = got.join("\n");
    let want = [
        ("c.yaml:4:8: error[E033]", "ends (`2026-12-01`) before it starts (`2026-12-10`)"),
        ("c.yaml:5:11: error[E005]", "unknown campaign status `pasued`"),
        ("c.yaml:6:3: error[E003]", "unknown key `budgte`"),
        ("c.yaml:8:15: error[E005]", "`contacts: -5` is negative"),
        ("c.yaml:9:17: error[E005]", "unknown channel `smss`"),
        ("c.yaml:9:26: error[E005]", "`order` is the subscriber's own request"),
        ("c.yaml:9:42: error[E005]", "`call: -2` is negative"),
        ("c.yaml:10:16: error[E033]", "a budget of 0 (`limit_fen`)"),
        ("c.yaml:13:10: error[E005]", "has an offset"),
        ("c.yaml:14:13: error[E004]", "`limit_fen` needs `cost_fen`"),
    ];
    for (at, msg) in want {
        assert!(got.iter().any(|g| g.starts_with(at) && g.contains(msg)), "missing {at} {msg} in:\n{all}");
    }
    assert!(all.contains("did you mean `paused`?") && all.contains("did you mean `budget`?"), "{all}");
    assert!(all.contains("did you mean `sms`?"), "{all}");
    assert_eq!(got.len(), want.len(), "{all}");
}

#[test]
fn a_budget_in_fen_must_price_every_channel_its_rules_use() {
    let p = r#"- campaign: winter
  budget: { cost_fen: { sms: 5 }, limit_fen: 1000 }

- rule: visit
  on: [crm]
  condition: event.event == store_visit
  action: { channel: call, script: "x", queue: q }
  campaign: winter
"#;
    let loaded = rules::compile(vec![("c.yaml".into(), p.into())], Some(&refdata()), &LoadOptions::default());
    let got: Vec<String> = loaded.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render()).collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("c.yaml:2:25: error[E033]") && got[0].contains("contacts by call"), "{}", got[0]);
}

/// `GET /v1/campaigns` on a live engine: each campaign's owner, dates, status, budget and what
/// it has spent so far, behind the admin token.
#[test]
fn the_admin_api_shows_each_campaigns_plan_and_budget_spent() {
    use crate::delivery::{Dir, at, http_get as get, port as free_port, send, start_live};
    let dir = Dir::new("campaigns-api");
    let rules = dir.0.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let plan = "  start: 2026-01-01\n  end: 2099-12-31 18:00\n  budget: { contacts: 2, cost_fen: { sms: 5 } }";
    std::fs::write(rules.join("winter.yaml"), pack(plan)).unwrap();
    let port = free_port();
    let cfg = dir.0.join("tidings.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[engine]
batch = 1
shards = 1

[source]
kind = "stdin"

[rules]
paths = ["{rules}"]

[policy]
quiet_hours = ""

[output]
dir = "{out}"
stdout = false

[api]
listen = "127.0.0.1:{port}"
admin_token = "adm-token"
"#,
            rules = rules.display(),
            out = dir.0.join("out").display()
        ),
    )
    .unwrap();
    let (_engine, mut stdin) = start_live(&cfg, port);
    assert_eq!(get(port, "/v1/campaigns", None).0, 401, "the admin token is needed");
    let (status, body) = get(port, "/v1/campaigns", Some("adm-token"));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let c = &v["campaigns"][0];
    assert_eq!(c["name"], "winter");
    assert_eq!(c["owner"], "市场部");
    assert_eq!((c["start"].as_str(), c["end"].as_str()), (Some("2026-01-01"), Some("2099-12-31 18:00")));
    assert_eq!(c["status"], "active");
    assert_eq!(c["budget"]["contacts"], 2);
    assert_eq!(c["budget"]["cost_fen"]["sms"], 5);
    assert_eq!(c["spent"]["contacts"], 0, "{body}");
    let lines: Vec<String> = (0..3)
        .map(|i| format!(r#"{{"kind":"crm","ts":"{}","msisdn":"1390000{i:04}","event":"store_visit"}}"#, at(0)))
        .collect();
    send(&mut stdin, &lines);
    let t0 = std::time::Instant::now();
    loop {
        let (_, body) = get(port, "/v1/campaigns", Some("adm-token"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let decided = crate::delivery::lines(&dir.0.join("out/decisions.jsonl"));
        if v["campaigns"][0]["spent"]["contacts"] == 2 && decided.len() == 3 {
            assert_eq!(v["campaigns"][0]["spent"]["fen"], 10, "{body}");
            let reasons: Vec<&str> = decided.iter().map(|d| d["reason"].as_str().unwrap_or("-")).collect();
            assert_eq!(reasons, ["-", "-", "budget"]);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the budget spent shows: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
}

/// A reload keeps what each campaign has spent (by name) and applies the new budget from the
/// point of the stream where it came: a raised budget lets the campaign go on.
#[test]
fn a_reload_keeps_the_budget_spent_and_a_raised_budget_lets_the_campaign_go_on() {
    let rd = refdata();
    let compile = |plan: &str| {
        let loaded = rules::compile(vec![("t.yaml".into(), pack(plan))], Some(&rd), &LoadOptions::default());
        Arc::new(loaded.rules.expect("rules compile"))
    };
    let mut subs = tidings::refdata::Subscribers::new();
    for i in 0..6 {
        subs.insert(&subscriber(&sub(i)));
    }
    let decoder = Decoder::default();
    let item = |i: usize, t: &str| Input::from(decoder.decode(visit_of(i, t).as_bytes(), "t", i as u64 + 1).unwrap());
    let mut input: Vec<Input> = (0..3).map(|i| item(i, &format!("10:0{i}:00"))).collect();
    input.push(Input::Reload(compile("  budget: { contacts: 4 }")));
    input.extend((3..6).map(|i| item(i, &format!("11:0{i}:00"))));
    for (shards, batch) in [(1, 1024), (2, 1), (3, 2)] {
        let o = EngineOptions { shards, batch, ..no_footer() };
        let mut sink = Memory::default();
        let rules = compile("  budget: { contacts: 2 }");
        let items: Vec<Input> = input
            .iter()
            .map(|i| match i {
                Input::Item(e) => Input::Item(e.clone()),
                Input::Reload(r) => Input::Reload(Arc::clone(r)),
                _ => unreachable!(),
            })
            .collect();
        engine::run(
            items.into_iter(),
            rules,
            Arc::new(refdata()),
            subs.clone(),
            &o,
            &mut sink,
            &AtomicBool::new(false),
        )
        .expect("run");
        let got: Vec<&str> = sink.decisions.iter().map(word).collect();
        assert_eq!(got, ["sent", "sent", "budget", "sent", "sent", "budget"], "{shards} shards, batches of {batch}");
    }
}
