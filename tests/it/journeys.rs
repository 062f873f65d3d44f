//! Journeys through the engine: a hot reload carries an instance over by journey and step name
//! (and drops it when its journey is gone); explain says where a subscriber is; `validate`
//! refuses a journey with an unknown, unreachable or unleavable step, with its position.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tidings::engine::{self, EngineOptions, ExplainRequest, Input};
use tidings::event::Decoder;
use tidings::rules::diag::Code;
use tidings::rules::{self, LoadOptions, RuleSet};
use tidings::util::Msisdn;

const M: &str = "13800138000";

/// A journey: a call on a disconnection request, then the next 09:00 an SMS. `extra` is put
/// ahead of everything (rules that shift the indexes), `wait_first` writes its steps in
/// another order.
fn pack(extra: &str, wait_first: bool) -> String {
    let call = r#"
    - step: call
      action: { channel: call, script: "挽留", queue: retention }
      policy: { quiet_hours: ignore }
      next:
        - {outcome: answered, goto: end}
        - {after: 2h, goto: overnight}"#;
    let wait = r#"
    - step: overnight
      next:
        - {at: "09:00", goto: offer}"#;
    let offer = r#"
    - step: offer
      action: { channel: sms, template: "保号优惠" }
      policy: { quiet_hours: ignore }
      next:
        - {goto: end}"#;
    let steps = if wait_first { [call, offer, wait].concat() } else { [call, wait, offer].concat() };
    format!(
        "{extra}
- journey: keep
  start:
    on: [crm]
    condition: event.event == disconnect_requested
  expire_after: 7d
  steps:{steps}
"
    )
}

fn compile(text: &str) -> rules::Loaded {
    rules::compile(vec![("j.yaml".into(), text.into())], None, &LoadOptions::default())
}

fn set(text: &str) -> Arc<RuleSet> {
    let loaded = compile(text);
    Arc::new(loaded.rules.unwrap_or_else(|| panic!("the pack compiles: {:?}", loaded.diagnostics)))
}

fn line(ts: &str, body: &str) -> Input {
    let l = format!(r#"{{"kind":"crm","ts":"{ts}","msisdn":"{M}",{body}}}"#);
    Input::Item(Decoder::default().decode(l.as_bytes(), "t", 1).expect("a line"))
}

/// Runs the input; the decisions as (rule, local time).
fn run(first: Arc<RuleSet>, input: Vec<Input>) -> Vec<(String, String)> {
    run_with_summary(first, input).1
}

/// Runs the input; the run's summary, as it would print, and the decisions as (rule, local time).
fn run_with_summary(first: Arc<RuleSet>, input: Vec<Input>) -> (engine::Summary, Vec<(String, String)>) {
    let mut sink = tidings::sink::Memory::default();
    let opts = EngineOptions::default();
    let rd = Arc::new(tidings::refdata::RefData::default());
    let summary = engine::run(
        input.into_iter(),
        first,
        rd,
        tidings::refdata::Subscribers::new(),
        &opts,
        &mut sink,
        &AtomicBool::new(false),
    )
    .expect("run");
    let decided =
        sink.decisions.iter().map(|d| (d.rule_name.to_string(), tidings::time::format_ts(d.ts, opts.offset))).collect();
    (summary, decided)
}

fn explain() -> (Input, std::sync::mpsc::Receiver<serde_json::Value>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let m = Msisdn::parse(M).expect("a number");
    (Input::Explain(ExplainRequest { msisdn: m, reply: tx }), rx)
}

#[test]
fn a_journey_in_progress_carries_over_a_reload_by_name_and_explain_says_where_it_is() {
    let asked = line("2026-11-24T10:00:00+08:00", r#""event":"disconnect_requested","attrs":{}"#);
    let later = || line("2026-11-26T12:00:00+08:00", r#""event":"store_visit","attrs":{}"#);
    // Another rule ahead and the steps written in another order: every index changes.
    let other = "- rule: other\n  on: [crm]\n  condition: event.event == store_visit\n  action: { channel: sms, template: \"x\" }\n";
    let (ask, answer) = explain();
    let input = vec![
        asked,
        line("2026-11-24T13:00:00+08:00", r#""event":"points_changed","attrs":{}"#),
        ask,
        Input::Reload(set(&pack(other, true))),
        later(),
    ];
    let got = run(set(&pack("", false)), input);
    assert_eq!(
        got,
        [
            ("keep.call".to_string(), "2026-11-24T10:00:00+08:00".to_string()),
            ("keep.offer".to_string(), "2026-11-25T09:00:00+08:00".to_string()),
            ("other".to_string(), "2026-11-26T12:00:00+08:00".to_string()),
        ],
        "the call, then (after the reload) the offer at 09:00 the next day"
    );
    let said = answer.recv().expect("an explain answer");
    let j = &said["journeys"][0];
    assert_eq!((j["journey"].as_str(), j["step"].as_str()), (Some("keep"), Some("overnight")), "{said}");
    let text = j["said"].as_str().unwrap_or("");
    assert!(
        text.starts_with("step 2 of 3 of keep (overnight) since 2026-11-24T12:00:00+08:00, waiting for 09:00"),
        "{text}"
    );

    // The journey gone from the new rules: the instance is dropped, nothing more is sent, and
    // the run's summary says a reload ended it.
    let asked = line("2026-11-24T10:00:00+08:00", r#""event":"disconnect_requested","attrs":{}"#);
    let (summary, got) = run_with_summary(set(&pack("", false)), vec![asked, Input::Reload(set(other)), later()]);
    assert_eq!(got.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(), ["keep.call", "other"]);
    let offset = EngineOptions::default().offset;
    assert_eq!((summary.stats.journeys_dropped_on_reload, summary.journeys_in_progress), (1, 0));
    let said = engine::render_summary(&summary, std::time::Duration::ZERO, offset);
    assert!(said.contains("in progress 0, dropped by a reload 1"), "{said}");
    // A reload that keeps the journey drops nothing, and the summary says nothing of reloads.
    let asked = line("2026-11-24T10:00:00+08:00", r#""event":"disconnect_requested","attrs":{}"#);
    let (summary, _) = run_with_summary(set(&pack("", false)), vec![asked, Input::Reload(set(&pack(other, true)))]);
    assert_eq!((summary.stats.journeys_dropped_on_reload, summary.journeys_in_progress), (0, 1));
    let said = engine::render_summary(&summary, std::time::Duration::ZERO, offset);
    assert!(!said.contains("reload"), "{said}");
}

/// A journey and a step renamed with `was:` keep their instances over a reload, and a rule
/// renamed so keeps its pending timer; without `was:` both are dropped. A former name that is
/// still an item's name, or that two items claim, is refused at its place.
#[test]
fn renamed_with_was_a_journey_step_and_a_timer_carry_over_a_reload() {
    let asked = || line("2026-11-24T10:00:00+08:00", r#""event":"disconnect_requested","attrs":{}"#);
    let visit = || line("2026-11-24T10:30:00+08:00", r#""event":"store_visit","attrs":{}"#);
    // Event time moves on past the offer and the timer.
    let later = || line("2026-11-26T12:00:00+08:00", r#""event":"points_changed","attrs":{}"#);
    let waiting = |name: &str, was: &str| {
        format!(
            "- rule: {name}\n  on: [crm]\n  condition: event.event == store_visit\n  timer: {{after: 1d}}\n  action: {{ channel: sms, template: \"x\" }}{was}\n"
        )
    };
    let renamed = |was: bool| {
        let p = pack(&waiting("wait_a_day", if was { "\n  was: wait" } else { "" }), false)
            .replace("- journey: keep", "- journey: keep_customer")
            .replace("step: overnight", "step: night")
            .replace("goto: overnight", "goto: night");
        match was {
            true => p
                .replace("- journey: keep_customer", "- journey: keep_customer\n  was: keep")
                .replace("    - step: night", "    - step: night\n      was: [overnight]"),
            false => p,
        }
    };
    let first = set(&pack(&waiting("wait", ""), false));
    let got = run(Arc::clone(&first), vec![asked(), visit(), Input::Reload(set(&renamed(true))), later()]);
    assert_eq!(
        got,
        [
            ("keep.call".to_string(), "2026-11-24T10:00:00+08:00".to_string()),
            ("keep_customer.offer".to_string(), "2026-11-25T09:00:00+08:00".to_string()),
            ("wait_a_day".to_string(), "2026-11-25T10:30:00+08:00".to_string()),
        ],
        "the instance waits at `night` (was `overnight`) and the timer fires under its new name"
    );
    let report = tidings::rules::carry::Carry::between(&first, &set(&renamed(true)));
    assert_eq!(
        report.renamed,
        [
            "rule wait → wait_a_day",
            "journey step keep.call → keep_customer.call",
            "journey step keep.overnight → keep_customer.night",
            "journey step keep.offer → keep_customer.offer"
        ]
    );
    assert!(report.ended_steps.is_empty() && report.dropped_timers.is_empty(), "{report:?}");
    let (summary, got) =
        run_with_summary(Arc::clone(&first), vec![asked(), visit(), Input::Reload(set(&renamed(false))), later()]);
    assert_eq!(got.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(), ["keep.call"]);
    assert_eq!((summary.stats.journeys_dropped_on_reload, summary.stats.timers_dropped_on_reload), (1, 1));

    // A former name still in use, and one claimed twice.
    let refused = |text: &str| -> Vec<(Code, usize, usize, String)> {
        let loaded = compile(text);
        assert!(loaded.rules.is_none(), "refused: {text}");
        loaded.diagnostics.iter().filter(|d| d.is_error()).map(|d| (d.code, d.line, d.col, d.message.clone())).collect()
    };
    let two = format!("{}{}", waiting("a", ""), waiting("b", "\n  was: a"));
    let d = refused(&two);
    assert_eq!((d[0].0, d[0].1, d[0].2), (Code::E017, 11, 8), "{d:?}");
    assert!(d[0].3.contains("a rule of this pack is called `a`"), "{d:?}");
    let twice = format!("{}{}", waiting("b", "\n  was: a"), waiting("c", "\n  was: [x, a]"));
    let d = refused(&twice);
    assert_eq!((d[0].0, d[0].1, d[0].2), (Code::E017, 12, 12), "{d:?}");
    assert!(d[0].3.contains("`a` is already a former name of rule `b`"), "{d:?}");
}

/// A pending timer whose rule a reload takes away is dropped, and the summary counts it beside
/// the timers (as it counts the journeys a reload ends, above).
#[test]
fn the_summary_counts_the_timers_a_reload_drops() {
    let waiting = "- rule: wait\n  on: [crm]\n  condition: event.event == store_visit\n  timer: {after: 1d}\n  action: { channel: sms, template: \"x\" }\n";
    let other = "- rule: other\n  on: [topup]\n  condition: \"true\"\n  action: { channel: sms, template: \"y\" }\n";
    let visit = || line("2026-11-24T10:00:00+08:00", r#""event":"store_visit","attrs":{}"#);
    let (summary, got) = run_with_summary(set(waiting), vec![visit(), Input::Reload(set(other))]);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!((summary.stats.timers_armed, summary.stats.timers_dropped_on_reload, summary.pending_timers), (1, 1, 0));
    let said = engine::render_summary(&summary, std::time::Duration::ZERO, EngineOptions::default().offset);
    assert!(said.contains("pending 0, dropped by a reload 1"), "{said}");
    // The same rule kept: its timer is still pending at the end of the input.
    let (summary, _) = run_with_summary(set(waiting), vec![visit(), Input::Reload(set(&format!("{waiting}{other}")))]);
    assert_eq!((summary.stats.timers_dropped_on_reload, summary.pending_timers), (0, 1));
}

#[test]
fn validate_refuses_unknown_unreachable_and_unleavable_steps_and_immediate_loops() {
    let at = |text: &str| -> Vec<(Code, usize, usize, String)> {
        let loaded = compile(text);
        assert!(loaded.rules.is_none(), "refused");
        loaded.diagnostics.iter().filter(|d| d.is_error()).map(|d| (d.code, d.line, d.col, d.message.clone())).collect()
    };
    let head =
        "- journey: j\n  start: {on: [crm], condition: \"event.event == store_visit\"}\n  expire_after: 3d\n  steps:\n";
    // A goto to a step that is not there, with the nearest name.
    let bad = format!(
        "{head}    - step: one\n      next:\n        - {{after: 1h, goto: twoo}}\n    - step: two\n      next:\n        - {{goto: end}}\n"
    );
    let loaded = compile(&bad);
    let d = loaded.diagnostics.iter().find(|d| d.code == Code::E040).expect("E040");
    assert_eq!((d.line, d.col), (7, 29), "{d:?}");
    assert_eq!(d.hint.as_deref(), Some("did you mean `two`?"));
    // `two` is then never reached.
    assert!(at(&bad).iter().any(|(c, l, _, m)| *c == Code::E041 && *l == 8 && m.contains("`two`")), "{:?}", at(&bad));
    // A step with no way out.
    let stuck = format!("{head}    - step: one\n      action: {{channel: sms, template: \"x\"}}\n");
    assert!(at(&stuck).iter().any(|(c, l, _, m)| *c == Code::E042 && *l == 5 && m.contains("never be left")));
    // Immediate transitions going round.
    let round = format!(
        "{head}    - step: one\n      next:\n        - {{goto: two}}\n    - step: two\n      next:\n        - {{goto: one}}\n"
    );
    assert!(at(&round).iter().any(|(c, _, _, _)| *c == Code::E043), "{:?}", at(&round));
    // An outcome on a step that contacts no one, and a reply on a call.
    let odd = format!(
        "{head}    - step: one\n      next:\n        - {{outcome: answered, goto: two}}\n    - step: two\n      action: {{channel: call, script: \"x\"}}\n      next:\n        - {{reply: any, goto: end}}\n"
    );
    let errs = at(&odd);
    assert!(errs.iter().any(|(c, l, _, m)| *c == Code::E005 && *l == 7 && m.contains("makes none")), "{errs:?}");
    assert!(errs.iter().any(|(c, l, _, m)| *c == Code::E005 && *l == 11 && m.contains("sends none")), "{errs:?}");
    // The shipped pack's journeys are clean.
    let shipped = rules::load(&["rules".into()], None, &LoadOptions::default());
    assert_eq!(shipped.errors(), 0, "{:?}", shipped.diagnostics);
    let set = shipped.rules.expect("the shipped pack");
    let names: Vec<&str> = set.journeys.iter().map(|j| &*j.name).collect();
    assert_eq!(
        names,
        [
            "topup_menu_abandoned",
            "low_balance_evening",
            "roaming_trip",
            "churn_care",
            "retention_disconnect",
            "winback_cancelled"
        ]
    );
}

/// A transition on an outcome the step's channel never reports (`answered` of an SMS,
/// `delivered` of a call) is warned about at the outcome: it would never be taken, and the
/// journey would wait there until another transition or its expiry. The pack still loads;
/// the outcomes every channel may report (`failed`, `expired`) are not warned about.
#[test]
fn an_outcome_the_steps_channel_never_reports_is_warned_about() {
    let text = "- journey: j\n  start: {on: [crm], condition: \"event.event == store_visit\"}\n  expire_after: 3d\n  steps:\n\
        \x20   - step: sms\n      action: {channel: sms, template: \"x\"}\n      next:\n\
        \x20       - {outcome: [delivered, answered], goto: call}\n        - {outcome: [failed, expired], goto: end}\n\
        \x20   - step: call\n      action: {channel: call, script: \"x\"}\n      next:\n\
        \x20       - {outcome: [answered, no_answer, busy, refused, failed, expired], goto: end}\n\
        \x20       - {outcome: delivered, goto: end}\n";
    let loaded = compile(text);
    assert!(loaded.rules.is_some(), "warnings only: {:?}", loaded.diagnostics);
    let got: Vec<(Code, usize, usize, String)> =
        loaded.diagnostics.iter().map(|d| (d.code, d.line, d.col, d.message.clone())).collect();
    assert_eq!(
        got,
        [
            (
                Code::W105,
                8,
                33,
                "an SMS never reports `answered`: its outcomes are delivered, failed, expired".to_string()
            ),
            (
                Code::W105,
                14,
                21,
                "a call never reports `delivered`: its outcomes are answered, busy, no_answer, refused, failed, expired"
                    .to_string()
            ),
        ],
        "{}",
        loaded.diagnostics.iter().map(|d| d.render()).collect::<String>()
    );
}

#[test]
fn a_restore_under_rules_without_a_step_or_a_timers_rule_says_what_it_dropped_counted() {
    let dir = std::env::temp_dir().join(format!("tidings-restore-drops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let waiting = "- rule: wait\n  on: [crm]\n  condition: event.event == store_visit\n  timer: {after: 1d}\n  action: { channel: sms, template: \"x\" }\n";
    let other = "- rule: other\n  on: [topup]\n  condition: \"true\"\n  action: { channel: sms, template: \"y\" }\n";
    // Without the overnight wait: no answer within 2 h ends the journey.
    let short = pack("", false);
    let short = short[..short.find("    - step: overnight").expect("the wait step")]
        .replace("{after: 2h, goto: overnight}", "{after: 2h, goto: end}");
    for (name, text) in [("a", format!("{waiting}{}", pack("", false))), ("b", format!("{other}{short}"))] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("j.yaml"), text).unwrap();
    }
    // A store visit arms the timer (due the next day); a disconnection request at 10:00 starts
    // the journey, which waits overnight from 12:00; the input ends at 15:00.
    let ev = |ts: &str, body: &str| format!(r#"{{"kind":"crm","ts":"{ts}","msisdn":"{M}",{body}}}"#);
    let events = [
        ev("2026-11-24T09:00:00+08:00", r#""event":"store_visit","attrs":{}"#),
        ev("2026-11-24T10:00:00+08:00", r#""event":"disconnect_requested","attrs":{}"#),
        ev("2026-11-24T15:00:00+08:00", r#""event":"store_visit","attrs":{}"#).replace(M, "13800138001"),
    ];
    std::fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let run = |rules: &str| {
        let cfg = dir.join(format!("{rules}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[engine]\nallowed_lateness = \"0s\"\n\n[source]\nkind = \"files\"\nfiles = [\"{ev}\"]\n\n[rules]\npaths = [\"{r}\"]\n\n[output]\ndir = \"{out}\"\nstdout = false\n\n[checkpoint]\ndir = \"{ck}\"\n",
                ev = dir.join("events.jsonl").display(),
                r = dir.join(rules).display(),
                out = dir.join("out").display(),
                ck = dir.join("ckpt").display(),
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["run", "--quiet", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        err
    };
    let first = run("a");
    assert!(!first.contains("tidings: restored:"), "{first}");
    let second = run("b");
    let restored: Vec<&str> = second.lines().filter(|l| l.starts_with("tidings: restored: ")).collect();
    assert!(
        restored.contains(&"tidings: restored: rules gone with their pending timers: wait (2 pending)"),
        "the two store visits' timers, counted: {second}"
    );
    assert!(
        restored.contains(
            &"tidings: restored: journey steps gone (instances waiting there end): keep.overnight (1 waiting)"
        ),
        "{second}"
    );
    assert!(!restored.iter().any(|l| l.contains("keep.offer")), "no instance was at the offer step: {second}");
    let _ = std::fs::remove_dir_all(&dir);
}
