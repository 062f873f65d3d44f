//! Derived attributes through the engine: computed daily or on events, a monthly snapshot that
//! holds until the month ends, read by conditions and templates; carried over a hot reload by
//! name; shown by explain; the same on any number of shards.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tidings::engine::{self, EngineOptions, ExplainRequest, Input};
use tidings::event::Decoder;
use tidings::rules::{self, LoadOptions, RuleSet};
use tidings::util::Msisdn;

const M: &str = "13800138000";

const PACK: &str = r#"
- derive: value
  schedule: "00:10"
  value: subscriber.arpu_fen - sum(usage.charge_fen where scope == international, 30d) - 8 CNY
  snapshot: month
- derive: tier
  schedule: "00:10"
  type: tier
  value:
    - {when: "derived.value < 0 fen", then: negative}
    - {when: "derived.value < 50 CNY", then: valuable}
    - {then: high}
  snapshot: month
- derive: calls_today
  on: [usage]
  value: count(usage, 1d)
- rule: thanks
  on: [topup]
  condition: derived.tier == high
  action: {channel: sms, template: "value {derived.value|cny} tier {derived.tier|code} calls {derived.calls_today}"}
  policy: {quiet_hours: ignore, transactional: true}
"#;

fn set(text: &str) -> Arc<RuleSet> {
    let loaded = rules::compile(vec![("d.yaml".into(), text.into())], None, &LoadOptions::default());
    Arc::new(loaded.rules.unwrap_or_else(|| panic!("the pack compiles: {:?}", loaded.diagnostics)))
}

fn ev(ts: &str, body: &str) -> Input {
    let l = format!(r#"{{"ts":"{ts}","msisdn":"{M}",{body}}}"#);
    Input::Item(Decoder::default().decode(l.as_bytes(), "t", 1).expect("a line"))
}

fn usage(ts: &str, scope: &str, fen: i64) -> Input {
    ev(
        ts,
        &format!(
            r#""kind":"usage","service":"voice","direction":"mo","scope":"{scope}","duration_s":60,"charge_fen":{fen}"#
        ),
    )
}

fn topup(ts: &str) -> Input {
    ev(ts, r#""kind":"topup","amount_fen":1000,"channel":"card""#)
}

#[test]
fn a_monthly_snapshot_holds_until_the_month_ends_and_carries_over_a_reload() {
    let (tx, answer) = std::sync::mpsc::channel();
    let explain = Input::Explain(ExplainRequest { msisdn: Msisdn::parse(M).expect("a number"), reply: tx });
    // Another derive ahead after the reload: every slot moves, the names do not.
    let reloaded = set(&format!("- derive: other\n  on: [crm]\n  value: 1\n{PACK}"));
    let input = vec![
        ev("2026-11-24T09:00:00+08:00", r#""kind":"profile","set":{"arpu_fen":8000}"#),
        usage("2026-11-25T08:00:00+08:00", "local", 0),
        // The 00:10 tick of the 25th found 80 - 8 = 72 CNY: high.
        topup("2026-11-25T12:00:00+08:00"),
        // 50 CNY of international calls would make it 22 CNY, but November's snapshot holds.
        usage("2026-11-26T10:00:00+08:00", "international", 5000),
        Input::Reload(reloaded),
        topup("2026-11-27T12:00:00+08:00"),
        explain,
        // December's snapshot: 80 - 50 - 8 = 22 CNY, valuable: no thanks.
        topup("2026-12-01T12:00:00+08:00"),
    ];
    let mut sink = tidings::sink::Memory::default();
    let opts = EngineOptions::default();
    let rd = Arc::new(tidings::refdata::RefData::default());
    let subs = tidings::refdata::Subscribers::new();
    engine::run(input.into_iter(), set(PACK), rd, subs, &opts, &mut sink, &AtomicBool::new(false)).expect("run");
    let got: Vec<(String, String)> = sink
        .decisions
        .iter()
        .map(|d| (tidings::time::format_ts(d.ts, opts.offset), d.text.as_deref().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-11-25T12:00:00+08:00".to_string(), "value 72.00 tier high calls 1".to_string()),
            ("2026-11-27T12:00:00+08:00".to_string(), "value 72.00 tier high calls 1".to_string()),
        ]
    );
    let said = answer.recv().expect("an explain answer");
    let d = &said["derived"];
    assert_eq!(
        (d["value"]["value"].as_str(), d["tier"]["value"].as_str(), d["calls_today"]["value"].as_str()),
        (Some("72.00 CNY"), Some("high"), Some("1")),
        "{said}"
    );
    assert_eq!(d["tier"]["for"].as_str(), Some("2026-11"), "the snapshot for November");
}

/// A CRM attribute has no type of its own: a derive that keeps one says its `type:`, and reads
/// it as such when computed (a posting whose amount is not a whole number leaves the last
/// value). Without a `type:` it is refused, saying so.
#[test]
fn a_derive_keeps_a_crm_attribute_as_the_type_it_says() {
    let pack = r#"
- derive: paid
  on: [crm]
  type: money
  value:
    - {when: "event.event == payment_posted", then: event.attrs.amount_fen}
- rule: visit
  on: [crm]
  condition: event.event == store_visit
  action: {channel: sms, template: "paid {derived.paid|cny}"}
  policy: {quiet_hours: ignore, transactional: true}
"#;
    let crm = |ts: &str, what: &str, attrs: &str| ev(ts, &format!(r#""kind":"crm","event":"{what}","attrs":{attrs}"#));
    let input = vec![
        crm("2026-11-24T10:00:00+08:00", "payment_posted", r#"{"amount_fen":5000}"#),
        crm("2026-11-24T11:00:00+08:00", "store_visit", "{}"),
        crm("2026-11-24T12:00:00+08:00", "payment_posted", r#"{"amount_fen":"fifty"}"#),
        crm("2026-11-24T13:00:00+08:00", "store_visit", "{}"),
        crm("2026-11-24T14:00:00+08:00", "payment_posted", r#"{"amount_fen":12800}"#),
        crm("2026-11-24T15:00:00+08:00", "store_visit", "{}"),
    ];
    let mut sink = tidings::sink::Memory::default();
    let rd = Arc::new(tidings::refdata::RefData::default());
    let subs = tidings::refdata::Subscribers::new();
    let opts = EngineOptions::default();
    engine::run(input.into_iter(), set(pack), rd, subs, &opts, &mut sink, &AtomicBool::new(false)).expect("run");
    let got: Vec<&str> = sink.decisions.iter().map(|d| d.text.as_deref().unwrap_or("")).collect();
    assert_eq!(got, ["paid 50.00", "paid 50.00", "paid 128.00"]);

    let untyped = pack.replace("  type: money\n", "");
    let loaded = rules::compile(vec![("d.yaml".into(), untyped)], None, &LoadOptions::default());
    let said: Vec<String> = loaded.diagnostics.iter().map(|d| d.render()).collect();
    assert!(loaded.rules.is_none(), "{said:?}");
    assert!(said[0].starts_with("d.yaml:5:53: error[E013]: a derived value cannot be an attribute"), "{said:?}");
    assert!(said[0].contains("say the derive's `type:` (number, money, duration or bool)"), "{said:?}");
}

#[test]
fn derives_are_refused_with_their_position_when_wrong() {
    let errs = |text: &str| -> Vec<String> {
        let loaded = rules::compile(vec![("d.yaml".into(), text.into())], None, &LoadOptions::default());
        assert!(loaded.rules.is_none(), "refused: {text}");
        loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{}:{} {:?} {}", d.line, d.col, d.code, d.message))
            .collect()
    };
    // A case whose value is not of the derive's type, with the words it may take.
    let e = errs(
        "- derive: t\n  schedule: \"01:00\"\n  type: tier\n  value:\n    - {when: \"subscriber.arpu_fen > 0 fen\", then: gold}\n",
    );
    assert!(e.iter().any(|m| m.starts_with("5:") && m.contains("E012")), "{e:?}");
    // Neither `on` nor `schedule`; an unknown type; a rule reading a derive that does not exist.
    let e = errs("- derive: t\n  value: 1\n");
    assert!(e.iter().any(|m| m.starts_with("1:3 E004")), "{e:?}");
    let e = errs("- derive: t\n  on: [usage]\n  type: colour\n  value: 1\n");
    assert!(e.iter().any(|m| m.starts_with("3:9 E005") && m.contains("colour")), "{e:?}");
    let e =
        errs("- rule: r\n  on: [usage]\n  condition: derived.tire == high\n  action: {channel: sms, template: x}\n");
    assert!(e.iter().any(|m| m.contains("E011") && m.contains("derived.tire")), "{e:?}");
    // Whom it is for: a condition on what exists, not a number, not the derive itself.
    let e = errs("- derive: t\n  schedule: \"01:00\"\n  for: subscriber.tire == high\n  value: 1\n");
    assert!(e.iter().any(|m| m.starts_with("3:") && m.contains("subscriber.tire")), "{e:?}");
    let e = errs("- derive: t\n  schedule: \"01:00\"\n  for: subscriber.arpu_fen\n  value: 1\n");
    assert!(e.iter().any(|m| m.starts_with("3:")), "{e:?}");
    let e = errs("- derive: t\n  schedule: \"01:00\"\n  for: derived.t > 0\n  value: 1\n");
    assert!(e.iter().any(|m| m.starts_with("3:") && m.contains("derived.t")), "{e:?}");
}

/// A derive refused for its own error is reported once, at the derive: the rules, exclusions,
/// templates and later derives that read it add nothing. A derive that reads one defined
/// further down is told where that one is and what to do; an operator reading `validate`'s
/// output sees each mistake once, where it was made.
#[test]
fn a_refused_derive_is_reported_once_and_one_read_before_its_definition_says_where_it_is() {
    let text = "\
- campaign: c1
  owner: x
- derive: tier_x
  schedule: \"00:10\"
  type: tier
  value:
    - when: derived.nosuch > 3
      then: high
    - then: sub
- derive: first
  on: [usage]
  value: derived.second + 1
- derive: second
  on: [usage]
  value: count(usage, 1d)
- derive: third
  on: [usage]
  value: derived.tier_x == high
- rule: r1
  on: [usage]
  condition: derived.tier_x == high
  action: { channel: sms, template: \"x {derived.tier_x}\" }
  campaign: c1
  policy: { exclude: [\"derived.tier_x:high\"] }
";
    let loaded = rules::compile(vec![("d.yaml".into(), text.into())], None, &LoadOptions::default());
    assert!(loaded.rules.is_none(), "refused");
    let got: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}:{} {:?} {} | {}", d.line, d.col, d.code, d.message, d.hint.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(got.len(), 2, "two mistakes, two errors: {got:#?}");
    assert!(got[0].starts_with("7:13 E011 unknown field `derived.nosuch`"), "{got:#?}");
    assert!(
        got[1].starts_with("12:10 E011 `derived.second` is defined further down (d.yaml:13)")
            && got[1].ends_with("| move `derive: second` above this item"),
        "{got:#?}"
    );
}

/// Over generated traffic, the derived values a rule writes into its messages are the same on
/// one shard and on three (and the daily snapshot is taken for everyone).
#[test]
fn derived_values_are_the_same_on_any_number_of_shards() {
    let g = tidings::generator::GenOptions { subscribers: 1_500, events: 30_000, days: 3, ..Default::default() };
    let dir = std::env::temp_dir().join(format!("tidings-derived-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    tidings::generator::write_dir(&g, &dir).expect("generate");
    let pack = PACK.replace("derived.tier == high", "exists(derived.tier)");
    let run = |shards: usize| -> Vec<String> {
        let (rd, subs) = tidings::refdata::RefData::load_dir(&dir).expect("refdata");
        let loaded = rules::compile(vec![("d.yaml".into(), pack.clone())], Some(&rd), &LoadOptions::default());
        let set = Arc::new(loaded.rules.expect("the pack compiles"));
        let input = tidings::source::file(&dir.join("events.jsonl"), Decoder::default()).expect("events");
        let opts = EngineOptions { shards, batch: 257, lateness: 120_000, ..Default::default() };
        let mut sink = tidings::sink::Memory::default();
        engine::run(input, set, Arc::new(rd), subs, &opts, &mut sink, &AtomicBool::new(false)).expect("run");
        sink.decisions.iter().map(|d| d.to_json(opts.offset)).collect()
    };
    let one = run(1);
    let tiers = ["tier high", "tier valuable", "tier negative"].map(|t| one.iter().filter(|l| l.contains(t)).count());
    assert!(tiers.iter().filter(|n| **n > 0).count() >= 2, "several tiers among {} messages: {tiers:?}", one.len());
    assert!(one == run(3), "the same messages on three shards");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two subscribers, each excluded by one of a rule's derived exclusions once the value is
/// there: A by the value tier (a monthly snapshot), B by a true/false attribute of their calls.
const EXCLUDING: &str = r#"
- derive: value
  schedule: "00:10"
  value: subscriber.arpu_fen - 8 CNY
  snapshot: month
- derive: tier
  schedule: "00:10"
  type: tier
  value:
    - {when: "derived.value < 50 CNY", then: valuable}
    - {then: high}
  snapshot: month
- derive: busy_caller
  on: [usage]
  value: count(usage, 1d) >= 2
- rule: offer
  on: [topup]
  condition: "true"
  action: {channel: sms, template: offer}
  policy: {quiet_hours: ignore, exclude: ["derived.tier:high", derived.busy_caller, corporate]}
"#;

#[test]
fn derived_exclusions_read_the_subscribers_values_and_follow_a_reload() {
    const A: &str = "13800138001";
    const B: &str = "13800138002";
    let at = |ts: &str, m: &str, body: &str| {
        let l = format!(r#"{{"ts":"{ts}","msisdn":"{m}",{body}}}"#);
        Input::Item(Decoder::default().decode(l.as_bytes(), "t", 1).expect("a line"))
    };
    let topup = |ts: &str, m: &str| at(ts, m, r#""kind":"topup","amount_fen":1000,"channel":"card""#);
    let call = |ts: &str, m: &str| {
        at(ts, m, r#""kind":"usage","service":"voice","direction":"mo","scope":"local","duration_s":60"#)
    };
    // Every slot moves one down after the reload; the names do not.
    let reloaded = set(&format!("- derive: other\n  on: [crm]\n  value: 1\n{EXCLUDING}"));
    let input = vec![
        at("2026-11-24T09:00:00+08:00", A, r#""kind":"profile","set":{"arpu_fen":8000}"#),
        at("2026-11-24T09:00:00+08:00", B, r#""kind":"profile","set":{"arpu_fen":2000}"#),
        // No value yet (the first 00:10 tick is tomorrow's): nobody is excluded.
        topup("2026-11-24T12:00:00+08:00", A),
        // The 00:10 tick of the 25th: A is high, B valuable; B then calls twice.
        call("2026-11-25T09:00:00+08:00", B),
        call("2026-11-25T09:30:00+08:00", B),
        topup("2026-11-25T12:00:00+08:00", A),
        topup("2026-11-25T12:00:00+08:00", B),
        Input::Reload(reloaded),
        topup("2026-11-26T12:00:00+08:00", A),
        // One call in a day: no longer a busy caller.
        call("2026-11-27T09:00:00+08:00", B),
        topup("2026-11-27T12:00:00+08:00", B),
    ];
    let mut sink = tidings::sink::Memory::default();
    let opts = EngineOptions::default();
    let rd = Arc::new(tidings::refdata::RefData::default());
    let subs = tidings::refdata::Subscribers::new();
    engine::run(input.into_iter(), set(EXCLUDING), rd, subs, &opts, &mut sink, &AtomicBool::new(false)).expect("run");
    let got: Vec<String> = sink
        .decisions
        .iter()
        .map(|d| {
            let day = &tidings::time::format_ts(d.ts, opts.offset)[8..10];
            let who = if d.msisdn.to_string().ends_with('1') { "A" } else { "B" };
            format!("{day} {who} {}", d.detail.as_deref().unwrap_or("sent"))
        })
        .collect();
    assert_eq!(
        got,
        [
            "24 A sent",
            "25 A excluded by the rule: derived.tier:high",
            "25 B excluded by the rule: derived.busy_caller",
            "26 A excluded by the rule: derived.tier:high",
            "27 B sent",
        ]
    );
}

#[test]
fn derived_exclusions_are_refused_with_their_position_when_wrong() {
    let errs = |exclude: &str| -> Vec<String> {
        let text = format!(
            "- derive: score\n  on: [usage]\n  value: count(usage, 1d)\n\
             - derive: tier\n  on: [usage]\n  type: tier\n  value: high\n\
             - derive: busy\n  on: [usage]\n  value: count(usage, 1d) >= 2\n\
             - rule: r\n  on: [topup]\n  condition: \"true\"\n  action: {{channel: sms, template: x}}\n\
             \x20 policy:\n    {exclude}\n"
        );
        let loaded = rules::compile(vec![("d.yaml".into(), text.clone())], None, &LoadOptions::default());
        assert!(loaded.rules.is_none(), "refused: {text}");
        loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{}:{} {:?} {} | {}", d.line, d.col, d.code, d.message, d.hint.as_deref().unwrap_or("")))
            .collect()
    };
    // An unknown name, with the nearest one; the entry is pointed at.
    let e = errs("exclude: [corporate, derived.tiers:high]");
    assert!(e.iter().any(|m| m.starts_with("16:26 E011") && m.contains("did you mean `derived.tier`?")), "{e:?}");
    // A value the type never takes; an enumerated attribute without one; a true/false one with one.
    let e = errs("exclude: [\"derived.tier:gold\"]");
    assert!(e.iter().any(|m| m.starts_with("16:15 E019") && m.contains("high, valuable")), "{e:?}");
    let e = errs("exclude: [derived.tier]");
    assert!(e.iter().any(|m| m.contains("E005") && m.contains("`derived.tier:high`")), "{e:?}");
    let e = errs("exclude: [\"derived.busy:false\"]");
    assert!(e.iter().any(|m| m.contains("E013") && m.contains("true or false")), "{e:?}");
    // Numbers: a threshold is a true/false derive's, and the hint writes it.
    let e = errs("exclude: [derived.score]");
    assert!(e.iter().any(|m| m.contains("E013") && m.contains("a number")), "{e:?}");
    let e = errs("exclude: [\"derived.score >= 80\"]");
    assert!(e.iter().any(|m| m.contains("E005") && m.contains("value: derived.score >= 80")), "{e:?}");
    // `include:` lifts global exclusions, which read only the profile.
    let e = errs("include: [derived.busy]");
    assert!(e.iter().any(|m| m.contains("E005") && m.contains("cannot include")), "{e:?}");
}
