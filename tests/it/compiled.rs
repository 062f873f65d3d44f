//! Compiled conditions decide exactly what the interpreter decides.
//!
//! The engine runs conditions as closures (`rules::expr::compiled`); in a debug build every
//! evaluation also runs the tree interpreter and panics on a difference. Here the grammar's
//! random conditions that compile, as event rules and as daily rules, run through the debug
//! binary over a generated stream with everything in it (cells, calendar, CRM attributes,
//! outcomes, replies): a single difference fails the run.

use crate::fuzz::{expr, typed_expr};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use std::process::Command;
use tidings::rules::{self, LoadOptions};

const HEADER: &str = "- list: hubs\n  items: [railway_station, airport]\n\
                      - macro: low\n  condition: state.balance < 10 CNY\n";

/// One rule around a condition: on every event kind that carries what it reads, or daily.
fn rule(i: usize, on: &str, condition: &str) -> String {
    let body: String = condition.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "- rule: r{i}\n  {on}\n  condition: |-\n{body}\
         \x20 action:\n    channel: sms\n    template: \"x\"\n  campaign: c{i}\n"
    )
}

fn compiles(rule: &str) -> bool {
    let files = vec![("c.yaml".to_string(), format!("{HEADER}{rule}"))];
    rules::compile(files, None, &LoadOptions::default()).rules.is_some()
}

/// Shapes the grammar seldom makes that compile: constants on the left, two fields, CRM
/// attributes, sets, windows inside arithmetic, missing values.
const SHAPES: &[(&str, &str)] = &[
    ("on: [usage]", "5 fen < state.balance"),
    ("on: [usage]", "10 CNY >= state.balance and state.prev_balance > state.balance"),
    ("on: [usage]", "state.balance == state.prev_balance"),
    ("on: [usage]", "state.balance != state.prev_balance or not exists(state.prev_balance)"),
    ("on: [usage]", "60s <= event.duration_s and event.scope in (long_distance, roaming_domestic)"),
    ("on: [usage]", "event.service != data and subscriber.brand != gotone"),
    ("on: [usage]", "max(count(usage, 1d), sum(usage.charge_fen, 1d) / 100 fen) >= 3"),
    ("on: [usage]", "-(sum(usage.charge_fen, 7d)) < -1 CNY and abs(state.balance) > 0 fen"),
    ("on: [usage]", "min(state.balance, state.prev_balance) < 20 CNY"),
    ("on: [usage]", "count(usage where service == voice, 1d) * 2 > count(usage, 1d)"),
    ("on: [topup]", "event.amount_fen > state.last_topup_fen or event.channel == card"),
    ("on: [topup]", "now - state.last_topup_at <= 1h"),
    ("on: [crm]", "event.event == \"payment_posted\" or event.event != \"points_changed\""),
    ("on: [crm]", "event.attrs.first == true or event.attrs.kind != \"topup\""),
    ("on: [crm]", "event.attrs.amount_fen == state.last_topup_fen"),
    ("on: [crm]", "exists(event.attrs.reason) and subscriber.tier in (high, valuable)"),
    ("on: [location]", "\"12593\" in subscriber.services or subscriber.prefs intersects (\"music\", \"sports\")"),
    ("on: [location]", "cell.tags intersects hubs and not subscriber.employee"),
    ("on: [location]", "cell.name == prev_cell.id or nearest_store.distance_m < 500"),
    ("on: [ivr]", "event.step == agent and state.ivr_agent_repeats >= 1"),
    ("schedule: \"10:00\"", "subscriber.days_to_package_expiry == 7 or subscriber.tenure_days > 365"),
    ("schedule: \"10:00\"", "count(usage, 1d) == 0 and exists(state.last_event_at)"),
    ("schedule: \"10:00\"", "subscriber.is_birthday or subscriber.dnd or subscriber.status != active"),
];

#[test]
fn compiled_conditions_agree_with_the_interpreter_on_a_generated_stream() {
    if !cfg!(debug_assertions) {
        eprintln!("SKIPPED: the cross-check is a debug assertion; a release build has none");
        return;
    }
    let mut runner = TestRunner::deterministic();
    let ons = ["on: [usage]", "on: [topup]", "on: [location]", "on: [crm]", "on: [ivr]", "schedule: \"10:00\""];
    let strategy = (expr().boxed(), typed_expr().boxed());
    let mut pack = String::from(HEADER);
    let (mut rules, mut tried) = (0, 0);
    for (on, condition) in SHAPES {
        let r = rule(rules, on, condition);
        assert!(compiles(&r), "{r}");
        pack += &r;
        rules += 1;
    }
    while rules < 260 && tried < 20_000 {
        let (a, b) = strategy.new_tree(&mut runner).expect("a value").current();
        for condition in [a, b] {
            tried += 1;
            let on = ons[tried % ons.len()];
            let r = rule(rules, on, &condition);
            if compiles(&r) {
                pack += &r;
                rules += 1;
            }
        }
    }
    assert!(rules >= 200, "only {rules} of {tried} generated conditions compiled");
    let dir = std::env::temp_dir().join(format!("tidings-compiled-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rules")).expect("a temp dir");
    std::fs::write(dir.join("rules/c.yaml"), &pack).expect("the pack");
    let tidings = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .expect("tidings runs");
        assert!(out.status.success(), "tidings {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let d = |p: &str| dir.join(p).to_string_lossy().into_owned();
    tidings(&["gen", "--subscribers", "400", "--events", "12000", "--days", "2", "--seed", "5", "--out", &d("data")]);
    let summary = tidings(&[
        "replay",
        "--events",
        &d("data/events.jsonl"),
        "--data",
        &d("data"),
        "--rules",
        &d("rules"),
        "--out",
        &d("out"),
    ]);
    assert!(summary.contains("events        12000"), "{summary}");
    let decisions = std::fs::read_to_string(dir.join("out/decisions.jsonl")).expect("decisions");
    // Some rules held somewhere (else the conditions were only ever false, and agreed idly).
    let fired: std::collections::BTreeSet<&str> =
        decisions.lines().filter_map(|l| l.split("\"rule\":\"").nth(1)?.split('"').next()).collect();
    assert!(fired.len() >= 20, "only {} rules ever held: {fired:?}", fired.len());
    let _ = std::fs::remove_dir_all(&dir);
}
