//! Outcome-driven suppression (`suppress_after`) through the engine: offers a subscriber
//! ignored stop them being offered again for a while; a reply, or a refused call when `count:`
//! does not list it, keeps them offered; the pause ends; and any shard count decides the same.

use crate::support::{M, SUB, no_footer, run_with};
use tidings::contact::{Decision, Outcome};
use tidings::engine::EngineOptions;

const OFFER: &str = r#"
- rule: offer
  on: [topup]
  condition: event.amount_fen >= 10 CNY
  action: { channel: sms, template: "回复KT开通" }
  campaign: c
  policy: { quiet_hours: ignore }

- campaign: c
  policy:
    suppress_after: { ignored: 2, within: 30d, for: 60d, response_window: 3d }
"#;

/// An event line for subscriber `m` at local time `t` (`2026-11-01T10:00:00`).
fn line(m: &str, kind: &str, t: &str, extra: &str) -> String {
    format!(r#"{{"kind":"{kind}","ts":"{t}+08:00","msisdn":"{m}",{extra}}}"#)
}

fn topup(t: &str) -> String {
    line(M, "topup", t, r#""amount_fen":2000,"channel":"card""#)
}

fn outcome(d: &Decision, status: &str) -> String {
    let extra = format!(r#""action_id":"{}","channel":"call","status":"{status}","rule":"call_offer""#, d.id);
    line(M, "outcome", "2026-11-01T12:00:00", &extra)
}

/// (outcome or reason, detail) of each decision.
fn fates(ds: &[Decision]) -> Vec<(String, String)> {
    ds.iter()
        .map(|d| {
            let o = match d.outcome {
                Outcome::Sent => "sent".to_string(),
                Outcome::Suppressed(r) => r.as_str().to_string(),
                Outcome::Deferred(_) => "deferred".to_string(),
            };
            (o, d.detail.clone().unwrap_or_default())
        })
        .collect()
}

#[test]
fn the_offer_after_two_ignored_ones_is_suppressed_until_the_pause_ends() {
    let lines = [
        topup("2026-11-01T10:00:00"),
        topup("2026-11-05T10:00:00"),
        // 2 ignored (their 3 days passed without a reply) within 30 days: paused 60 days after
        // the second, until 2027-01-04 10:00.
        topup("2026-11-10T10:00:00"),
        topup("2027-01-04T09:59:00"),
        topup("2027-01-04T10:00:00"),
    ];
    let r = run_with(OFFER, &[SUB], &lines, no_footer());
    let f = fates(&r.decisions);
    let o: Vec<&str> = f.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(o, ["sent", "sent", "suppressed_after", "suppressed_after", "sent"], "{f:?}");
    assert_eq!(
        f[2].1,
        "ignored 2 of the last 2 offers of campaign c within 30d; not offered until 2027-01-04T10:00:00+08:00"
    );
}

#[test]
fn an_offer_answered_within_its_response_window_is_not_ignored() {
    let reply = line(M, "reply", "2026-11-02T09:00:00", r#""text":"KT","to":"10086""#);
    let lines = [topup("2026-11-01T10:00:00"), reply, topup("2026-11-05T10:00:00"), topup("2026-11-10T10:00:00")];
    let r = run_with(OFFER, &[SUB], &lines, no_footer());
    let f = fates(&r.decisions);
    assert_eq!(f.iter().filter(|(o, _)| o == "sent").count(), 3, "one ignored offer is not two: {f:?}");
}

const CALL: &str = r#"
- rule: call_offer
  on: [topup]
  condition: event.amount_fen >= 10 CNY
  action: { channel: call, script: "您好", queue: sales }
  campaign: d
  policy:
    quiet_hours: ignore
    suppress_after: { ignored: 2, within: 30d, for: 60d COUNT }
"#;

/// Two calls refused, then a third offer: `(outcome of the third, its detail)`.
fn after_two_refusals(count: &str) -> (String, String) {
    let rules = CALL.replace(" COUNT", count);
    let first = [topup("2026-11-01T10:00:00"), topup("2026-11-01T11:00:00")];
    let calls = run_with(&rules, &[SUB], &first, no_footer()).decisions;
    assert_eq!(calls.len(), 2);
    let mut lines = first.to_vec();
    lines.extend([outcome(&calls[0], "refused"), outcome(&calls[1], "refused"), topup("2026-11-01T13:00:00")]);
    let r = run_with(&rules, &[SUB], &lines, no_footer());
    fates(&r.decisions).pop().unwrap_or_default()
}

#[test]
fn a_refused_call_counts_as_ignored_only_when_count_says_so() {
    assert_eq!(after_two_refusals("").0, "sent", "refused calls were not ignored offers");
    let (o, detail) = after_two_refusals(", count: [refused]");
    assert_eq!(o, "suppressed_after");
    assert!(detail.starts_with("ignored 2 of the last 2 offers of rule call_offer within 30d"), "{detail}");
}

#[test]
fn suppression_decides_the_same_on_any_number_of_shards() {
    let subs: Vec<String> =
        (0..12).map(|i| format!(r#"{{"msisdn":"1380013{i:04}","brand":"gotone","tier":"high"}}"#)).collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let mut lines = Vec::new();
    for day in 1..=28 {
        for i in 0..12 {
            let m = format!("1380013{i:04}");
            let t = format!("2026-11-{day:02}T{:02}:00:00", 9 + i % 10);
            if (day + i) % 3 != 0 {
                lines.push(line(&m, "topup", &t, r#""amount_fen":2000,"channel":"card""#));
            }
            if (day * i) % 5 == 1 {
                lines.push(line(&m, "reply", &t.replace(":00:00", ":30:00"), r#""text":"KT","to":"10086""#));
            }
        }
    }
    let run = |shards| {
        let opts = EngineOptions { shards, ..no_footer() };
        fates(&run_with(OFFER, &subs, &lines, opts).decisions)
    };
    let one = run(1);
    assert!(one.iter().any(|(o, _)| o == "suppressed_after") && one.iter().any(|(o, _)| o == "sent"));
    assert_eq!(run(3), one);
    assert_eq!(run(4), one);
}
