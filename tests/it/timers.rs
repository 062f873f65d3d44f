//! Timers that keep what they were armed with: `each: true` (a timer per trigger) and
//! `armed.PATH` in `cancel_if` and `recheck`, through the engine and across a hot reload.

use super::support::*;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tidings::engine::{self, EngineOptions, Input};
use tidings::event::Decoder;
use tidings::rules::{self, LoadOptions, RuleSet};

/// CRM postings, each confirmed two minutes on unless a top-up of its own amount comes first;
/// `ahead` is put before it (rules that shift every index), `kept` is the path it keeps.
fn pack(ahead: &str, kept: &str) -> String {
    format!(
        r#"{ahead}
- rule: posted
  on: [crm]
  condition: event.event == payment_posted
  timer:
    after: 2m
    each: true
    cancel_on: [topup]
    cancel_if: event.amount_fen == armed.{kept}
    recheck: armed.event.attrs.kind != "void"
  action: {{ channel: sms, template: "缴费{{event.attrs.amount_fen|cny}}元已到账" }}
"#
    )
}

const AHEAD: &str = r#"
- rule: other
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "x" }
"#;

fn set(text: &str) -> Arc<RuleSet> {
    let loaded = rules::compile(vec![("t.yaml".into(), text.into())], None, &LoadOptions::default());
    Arc::new(loaded.rules.unwrap_or_else(|| panic!("the pack compiles: {:?}", loaded.diagnostics)))
}

fn posting(time: &str, fen: i64) -> String {
    ev("crm", time, &format!(r#""event":"payment_posted","attrs":{{"amount_fen":{fen}}}"#))
}

fn topup(time: &str, fen: i64) -> String {
    ev("topup", time, &format!(r#""amount_fen":{fen},"balance_fen":{},"channel":"bank""#, fen + 100))
}

/// Runs `input` (lines, and `None` where the rules are reloaded with `reload`); the texts sent
/// with their local times.
fn run_reloading(first: &str, reload: &str, input: &[Option<String>]) -> Vec<(String, String)> {
    let decoder = Decoder::default();
    let items = input.iter().enumerate().map(|(i, l)| match l {
        Some(l) => Input::Item(decoder.decode(l.as_bytes(), "t", i as u64 + 1).expect("a line")),
        None => Input::Reload(set(reload)),
    });
    let mut sink = tidings::sink::Memory::default();
    let opts = no_footer();
    let rd = Arc::new(tidings::refdata::RefData::default());
    let subs = tidings::refdata::Subscribers::new();
    engine::run(items, set(first), rd, subs, &opts, &mut sink, &AtomicBool::new(false)).expect("run");
    let at = |d: &tidings::contact::Decision| tidings::time::format_ts(d.ts, opts.offset);
    sink.decisions.iter().map(|d| (d.text.clone().unwrap_or_default(), at(d))).collect()
}

#[test]
fn each_posting_waits_for_its_own_top_up() {
    let lines = [
        posting("10:00:00", 5000),
        posting("10:00:30", 3000),
        posting("10:00:40", 3000),
        topup("10:01:00", 3000), // answers the first 30.00 only
        ev("crm", "12:00:00", r#""event":"store_visit","attrs":{}"#),
    ];
    let r = run(&pack("", "event.attrs.amount_fen"), &[SUB], &lines);
    let sent: Vec<(String, String)> =
        r.decisions.iter().map(|d| (d.text.clone().unwrap_or_default(), d.rule_name.to_string())).collect();
    assert_eq!(
        sent.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["缴费50.00元已到账", "缴费30.00元已到账"],
        "the 50.00 and the second 30.00 posting are confirmed"
    );
    assert_eq!(r.rules_fired()[1].1, "2026-11-24T10:02:40+08:00", "the second 30.00 posting's own timer");
    assert_eq!((r.summary.stats.timers_cancelled, r.summary.stats.timers_fired), (1, 2));

    // At most eight pending a subscriber: a ninth posting within the two minutes arms nothing.
    let lines: Vec<String> = (0..9)
        .map(|i| posting(&format!("10:00:{:02}", i * 5), 100 + i))
        .chain([ev("crm", "12:00:00", r#""event":"store_visit","attrs":{}"#)])
        .collect();
    let r = run(&pack("", "event.attrs.amount_fen"), &[SUB], &lines);
    assert_eq!(r.decisions.len(), 8, "{:?}", r.rules_fired());

    // The recheck reads what the timer kept: a posting that said `void` is not confirmed.
    let void = ev("crm", "10:00:00", r#""event":"payment_posted","attrs":{"amount_fen":700,"kind":"void"}"#);
    let r = run(&pack("", "event.attrs.amount_fen"), &[SUB], &[void, posting("10:00:10", 800), topup("11:00:00", 1)]);
    assert_eq!(r.rules_fired().len(), 1);
    assert_eq!(r.decisions[0].text.as_deref(), Some("缴费8.00元已到账"));
    assert_eq!(r.summary.stats.rechecks_failed, 1);
}

#[test]
fn what_a_timer_kept_carries_over_a_reload_by_name() {
    let input = [
        Some(posting("10:00:00", 5000)),
        Some(posting("10:00:30", 3000)),
        None, // reload: another rule ahead, every index moves
        Some(topup("10:01:00", 5000)),
        Some(ev("crm", "12:00:00", r#""event":"payment_posted","attrs":{"kind":"void"}"#)),
    ];
    let same = pack("", "event.attrs.amount_fen");
    let got = run_reloading(&same, &pack(AHEAD, "event.attrs.amount_fen"), &input);
    assert_eq!(
        got,
        [("缴费30.00元已到账".to_string(), "2026-11-24T10:02:30+08:00".to_string())],
        "the top-up after the reload answers the 50.00 posting by what its timer kept"
    );
    // New rules that read a path the timers did not keep: it reads null, nothing is cancelled;
    // the reload's report says so.
    let other = pack(AHEAD, "event.attrs.amount");
    let got = run_reloading(&same, &other, &input);
    assert_eq!(got.len(), 2, "{got:?}");
    let report = tidings::rules::carry::Carry::between(&set(&same), &set(&other));
    assert_eq!(report.unkept, ["posted: armed.event.attrs.amount"]);
    let lines = report.lines();
    assert!(
        lines.iter().any(|l| l.starts_with("values pending timers did not keep") && l.contains("posted")),
        "{lines:?}"
    );
    assert!(
        tidings::rules::carry::Carry::between(&set(&same), &set(&pack(AHEAD, "event.attrs.amount_fen")))
            .unkept
            .is_empty()
    );
}

#[test]
fn explain_shows_what_each_pending_timer_kept() {
    let decoder = Decoder::default();
    let item = |i: u64, l: String| Input::Item(decoder.decode(l.as_bytes(), "t", i).expect("a line"));
    let (tx, rx) = std::sync::mpsc::channel();
    let m = tidings::util::Msisdn::parse(M).expect("a number");
    let input = vec![
        item(1, posting("10:00:00", 5000)),
        item(2, posting("10:00:30", 3000)),
        Input::Explain(tidings::engine::ExplainRequest { msisdn: m, reply: tx }),
    ];
    let mut sink = tidings::sink::Memory::default();
    let (rd, subs) = (Arc::new(tidings::refdata::RefData::default()), tidings::refdata::Subscribers::new());
    let opts = EngineOptions::default();
    let first = set(&pack("", "event.attrs.amount_fen"));
    engine::run(input.into_iter(), first, rd, subs, &opts, &mut sink, &AtomicBool::new(false)).expect("run");
    let said = rx.recv().expect("an explain answer");
    let kept: Vec<(String, serde_json::Value)> = said["timers"]
        .as_array()
        .expect("timers")
        .iter()
        .map(|t| (t["due"].as_str().unwrap_or("").to_string(), t["kept"]["event.attrs.amount_fen"].clone()))
        .collect();
    assert_eq!(
        kept,
        [
            ("2026-11-24T10:02:00+08:00".to_string(), serde_json::json!(5000)),
            ("2026-11-24T10:02:30+08:00".to_string(), serde_json::json!(3000)),
        ],
        "{said}"
    );
    // The recheck's path is kept too: the posting had no `kind`, so null.
    let first_kept = said["timers"][0]["kept"].as_object().expect("kept values");
    assert_eq!(first_kept.get("event.attrs.kind"), Some(&serde_json::Value::Null), "{said}");
}
