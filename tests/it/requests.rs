//! A subscriber's own request is served, never held out (`request: true`), and arbitration
//! makes one contact per subscriber per trigger across channels unless a rule declares
//! `alongside: true` (DESIGN.md §3; issue 20 §4).

use super::support::*;
use tidings::contact::Suppression;
use tidings::engine::EngineOptions;
use tidings::rules::policy::GlobalPolicy;
use tidings::rules::{self, LoadOptions};

fn no_quiet() -> EngineOptions {
    EngineOptions { policy: GlobalPolicy { quiet_hours: None, ..GlobalPolicy::default() }, ..EngineOptions::default() }
}

fn crm(msisdn: &str, ts: &str, event: &str) -> String {
    format!(r#"{{"kind":"crm","ts":"{ts}","msisdn":"{msisdn}","event":"{event}"}}"#)
}

const RETENTION: &str = r#"
- campaign: retention
  policy: { control_group: "20%", cap: "1 per 30d", streak: "1 months" }

- rule: keep_them
  desc: The subscriber asked to leave -> a retention call (their request).
  on: [crm]
  condition: event.event == disconnect_requested
  action: { channel: call, script: "挽留", queue: retention }
  campaign: retention
  policy: { request: true }

- rule: proactive_offer
  desc: A proactive offer of the same campaign.
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "优惠" }
  campaign: retention
"#;

#[test]
fn a_request_rule_is_never_held_out_by_its_campaigns_control_group_a_proactive_one_is() {
    let lines: Vec<String> = (0..200)
        .flat_map(|i| {
            let m = format!("139{i:08}");
            [
                crm(&m, "2026-11-24T10:00:00+08:00", "disconnect_requested"),
                crm(&m, "2026-12-24T10:00:00+08:00", "store_visit"),
            ]
        })
        .collect();
    let r = run_with(RETENTION, &[], &lines, no_quiet());
    let of = |rule: &'static str| r.decisions.iter().filter(move |d| &*d.rule_name == rule);
    assert_eq!(of("keep_them").count(), 200);
    assert!(of("keep_them").all(|d| d.is_sent()), "every request is answered");
    let held = of("proactive_offer").filter(|d| d.suppression() == Some(Suppression::ControlGroup)).count();
    assert!((20..=60).contains(&held), "about 20% of the proactive offers are held out: {held}");
    assert_eq!(of("proactive_offer").filter(|d| d.is_sent()).count() + held, 200);
}

#[test]
fn a_request_passes_its_campaigns_caps_and_streak_and_counts_toward_neither() {
    // A subscriber outside the 20 % control group (so the proactive offer is not held out).
    let m = (0..100)
        .map(|i| format!("139{i:08}"))
        .find(|m| !tidings::policy::in_control_group(m, "retention", 20.0))
        .unwrap();
    // The offer, then the request the same day: the campaign's cap is spent, the call goes.
    let r = run_with(
        RETENTION,
        &[],
        &[
            crm(&m, "2026-11-24T10:00:00+08:00", "store_visit"),
            crm(&m, "2026-11-24T11:00:00+08:00", "disconnect_requested"),
        ],
        no_quiet(),
    );
    assert!(r.decisions.iter().all(|d| d.is_sent()), "{:?}", r.rules_fired());
    // The request first: it does not spend the campaign's cap, so the offer still goes; the
    // next offer is capped by the first offer alone.
    let r = run_with(
        RETENTION,
        &[],
        &[
            crm(&m, "2026-11-24T10:00:00+08:00", "disconnect_requested"),
            crm(&m, "2026-11-24T11:00:00+08:00", "store_visit"),
            crm(&m, "2026-11-25T11:00:00+08:00", "store_visit"),
        ],
        no_quiet(),
    );
    let got: Vec<Option<Suppression>> = r.decisions.iter().map(|d| d.suppression()).collect();
    assert_eq!(got, [None, None, Some(Suppression::Cap)]);
}

#[test]
fn a_request_rule_with_a_control_group_or_suppress_after_is_refused_with_its_position() {
    let bad = r#"
- rule: keep_them
  on: [crm]
  condition: event.event == disconnect_requested
  action: { channel: call, script: "x", queue: q }
  policy: { request: true, control_group: "5%" }

- rule: keep_them_too
  on: [crm]
  condition: event.event == disconnect_requested
  action: { channel: sms, template: "x" }
  policy: { request: true, suppress_after: { ignored: 2, within: 30d, for: 60d } }

- rule: asked
  on: [crm]
  condition: event.event == disconnect_requested
  action: { channel: sms, template: "x" }
  policy: { request: yes, alongside: maybe }
"#;
    let loaded = rules::compile(vec![("r.yaml".into(), bad.into())], None, &LoadOptions::default());
    assert!(loaded.rules.is_none());
    let mut got: Vec<(String, usize, usize)> =
        loaded.diagnostics.iter().map(|d| (format!("{:?}", d.code), d.line, d.col)).collect();
    got.sort_by_key(|g| (g.1, g.2));
    let want = [("E033", 6, 43), ("E033", 12, 46), ("E005", 18, 22), ("E005", 18, 38)];
    let want: Vec<(String, usize, usize)> = want.iter().map(|(c, l, col)| (c.to_string(), *l, *col)).collect();
    assert_eq!(got, want, "{}", loaded.diagnostics.iter().map(|d| d.render()).collect::<String>());
}

fn sms_and_call(sms_policy: &str, call_policy: &str) -> String {
    format!(
        r#"
- rule: sms_high
  on: [crm]
  condition: event.event == store_visit
  action: {{ channel: sms, template: "high" }}
  priority: 90
  policy: {sms_policy}
- rule: sms_low
  on: [crm]
  condition: event.event == store_visit
  action: {{ channel: sms, template: "low" }}
  priority: 10
  policy: {{ alongside: true }}
- rule: call
  on: [crm]
  condition: event.event == store_visit
  action: {{ channel: call, script: "hello", queue: q }}
  priority: 50
  policy: {call_policy}
"#
    )
}

/// (rule, outcome) of every decision of a run of one store visit, sorted by rule.
fn visit(rules: &str) -> Vec<(String, String)> {
    let r = run_with(rules, &[SUB], &[crm(M, "2026-11-24T10:00:00+08:00", "store_visit")], no_quiet());
    let mut got: Vec<(String, String)> = r
        .decisions
        .iter()
        .map(|d| (d.rule_name.to_string(), d.suppression().map_or("sent", |s| s.as_str()).to_string()))
        .collect();
    got.sort();
    got
}

fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
    want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn arbitration_makes_one_contact_per_trigger_across_channels_by_default() {
    let r =
        run_with(&sms_and_call("{}", "{}"), &[SUB], &[crm(M, "2026-11-24T10:00:00+08:00", "store_visit")], no_quiet());
    let high = r.decisions.iter().find(|d| &*d.rule_name == "sms_high").unwrap();
    let call = r.decisions.iter().find(|d| &*d.rule_name == "call").unwrap();
    assert!(high.is_sent());
    assert_eq!(call.suppression(), Some(Suppression::Arbitration));
    assert_eq!(call.winner.as_deref(), Some(high.id.as_str()));
    assert!(call.detail.as_deref().is_some_and(|d| d.contains("one contact per trigger")), "{:?}", call.detail);
    // `alongside` on a lower SMS does not let a second SMS through: one per channel always.
    assert_eq!(
        visit(&sms_and_call("{}", "{}")),
        pairs(&[("call", "arbitration"), ("sms_high", "sent"), ("sms_low", "arbitration")])
    );
}

#[test]
fn an_sms_and_a_call_for_one_trigger_go_together_when_either_rule_declares_alongside() {
    let both = pairs(&[("call", "sent"), ("sms_high", "sent"), ("sms_low", "arbitration")]);
    assert_eq!(visit(&sms_and_call("{}", "{ alongside: true }")), both, "the call declares it");
    assert_eq!(visit(&sms_and_call("{ alongside: true }", "{}")), both, "the winning SMS declares it");
}
