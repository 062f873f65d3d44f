//! A daily journey whose start condition has a steady part (record fields that do not move
//! with the date, derived attributes, constants) evaluates the condition at a tick only for
//! subscribers that part was not false for at the last one, had an event since, or whose
//! derived values changed; and it decides exactly what evaluating it for everyone decides: over
//! 60 days, as scores rise and fall with spending, records change tier mid-run, a CRM event
//! changes an event-driven derived value, instances run and end, and numbers are first seen
//! mid-run, on 1 and 3 shards.

use crate::support::{no_footer, run_day as at, run_with};

/// A score at 10:00, and a journey of the same minute that starts on it, the tier and a window.
const PACK: &str = r#"
- derive: score
  schedule: "10:00"
  value: >
    max(0, (sum(usage.charge_fen, 35d) - 5 * sum(usage.charge_fen, 7d)) * 60
      / max(1 fen, sum(usage.charge_fen, 35d) - sum(usage.charge_fen, 7d)))
- derive: praised
  on: [crm]
  value: count(crm where event == "praise", 60d) >= 1
- journey: care
  start:
    schedule: "10:00"
    condition: >
      (subscriber.tier == high or derived.praised) and derived.score >= 30
      and sum(usage.charge_fen, 35d) >= 2 CNY
  expire_after: 10d
  steps:
    - step: offer
      action: { channel: sms, template: "挽留优惠" }
      policy: { quiet_hours: ignore }
      next:
        - {after: 4d, goto: end}
"#;

/// The same condition with a term that moves with the date (and never holds): it has no
/// steady part, so it is evaluated for everyone at every tick.
const WALKED: &str = " or subscriber.tenure_days < 0";

const SUBSCRIBERS: usize = 240;

fn number(i: usize) -> String {
    format!("1380016{i:04}")
}

/// Subscriber `i` spends on a rhythm of its own until day `15 + i % 30`, stops, and from day
/// `45 + i % 5` spends again (its score falls back); every 5th moves from tier valuable to high
/// on day 40 (while the scores of many stay put: no derived value changes, only the record)
/// and every 11th from high to valuable on day 33; numbers the reference data does not know
/// spend from day 10.
fn events() -> Vec<String> {
    let usage = crate::support::charged_call;
    let mut lines = Vec::new();
    for d in 0..60 {
        for i in 0..SUBSCRIBERS {
            let spends = d < 15 + i % 30 || d >= 45 + i % 5;
            if (d + i) % (2 + i % 4) == 0 && spends {
                lines.push(usage(at(d, 8 + (i % 12), i % 60), number(i), 60 + 40 * (i % 5)));
            }
            let tier = match (d, i % 5, i % 11) {
                (40, 0, _) => Some("high"),
                (33, _, 0) => Some("valuable"),
                _ => None,
            };
            if let Some(tier) = tier {
                let (ts, m) = (at(d, 15, i % 60), number(i));
                lines.push(format!(r#"{{"kind":"profile","ts":"{ts}","msisdn":"{m}","set":{{"tier":"{tier}"}}}}"#));
            }
            // Every 7th is praised once (a CRM event: its derived value changes, its record
            // does not), ten days after it stopped spending: its score has stood still at its
            // top for days, so nothing else makes it looked at again.
            if i % 7 == 3 && i % 30 < 19 && d == 25 + i % 30 {
                let (ts, m) = (at(d, 16, i % 60), number(i));
                lines.push(format!(r#"{{"kind":"crm","ts":"{ts}","msisdn":"{m}","event":"praise"}}"#));
            }
        }
        if (10..30).contains(&d) {
            for k in 0..3 {
                lines.push(usage(at(d, 12, k), format!("1390016{k:04}"), 500));
            }
        }
    }
    crate::support::in_time_order(&mut lines);
    lines
}

#[test]
fn a_daily_journey_start_is_evaluated_for_whom_its_steady_part_may_have_changed_and_starts_what_evaluating_it_for_all_does()
 {
    let subs: Vec<String> = (0..SUBSCRIBERS)
        .map(|i| {
            let tier = if i % 5 == 0 || i % 2 == 1 { "valuable" } else { "high" };
            format!(r#"{{"msisdn":"{}","brand":"gotone","tier":"{tier}","join_date":"2020-01-01"}}"#, number(i))
        })
        .collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let lines = events();
    let walked_rules = PACK.replacen(">= 2 CNY\n", &format!(">= 2 CNY{WALKED}\n"), 1);
    assert_ne!(walked_rules, PACK);
    for shards in [1, 3] {
        let mut opts = no_footer();
        opts.shards = shards;
        let quiet = run_with(PACK, &subs, &lines, opts.clone());
        let walked = run_with(&walked_rules, &subs, &lines, opts);
        assert!(quiet.dead.is_empty() && walked.dead.is_empty());
        quiet.assert_same_decisions(&walked, &format!("{shards} shard(s): evaluating for fewer starts otherwise"));
        // Started more than once for some (an instance ends after 4 days), and for a
        // subscriber who became high tier mid-run with no event that day.
        let starts = quiet.decisions.len();
        assert!(starts > 20, "{shards} shard(s): {starts} starts");
        let promoted = |r: &crate::support::Run| {
            r.decisions.iter().filter(|d| d.msisdn.raw() % 5 == 0).filter(|d| d.ts > b_day(40)).count()
        };
        assert!(promoted(&quiet) > 0, "{shards} shard(s): a subscriber made high tier is started");
        let praised = |r: &crate::support::Run| {
            let valuable = |m: u64| (m % 10_000).is_multiple_of(5) || (m % 10_000) % 2 == 1;
            r.decisions.iter().filter(|d| (d.msisdn.raw() % 10_000) % 7 == 3 && valuable(d.msisdn.raw())).count()
        };
        assert!(praised(&quiet) > 0, "{shards} shard(s): a valuable subscriber praised is started");
        let (few, all) = (quiet.summary.stats.starts_evaluated, walked.summary.stats.starts_evaluated);
        assert!(few * 2 < all, "{shards} shard(s): evaluated {few} times against {all}");
    }
}

/// Event time of local midnight starting day `d` of the run.
fn b_day(d: usize) -> i64 {
    let ts = at(d, 0, 0);
    chrono::DateTime::parse_from_rfc3339(&ts).map_or(0, |t| t.timestamp_millis())
}
