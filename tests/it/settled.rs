//! A daily derived attribute that reads only windows, record fields that do not move with the
//! date and constants (a churn score) is computed at a tick only for subscribers touched since
//! the last one, whose windows moved, or never computed for, and decides exactly what computing
//! it for everyone decides: over 70 days, as subscribers spend, fall silent and their windows
//! age, records change mid-run, numbers first seen mid-run, on 1 and 3 shards.

use crate::support::{no_footer, run_day as at, run_with};

/// The score at 10:00 and rules of the same minute reading it.
const SCORE: &str = r#"
- derive: score
  schedule: "10:00"
  value: >
    max(0, (sum(usage.charge_fen, 35d) - 5 * sum(usage.charge_fen, 7d)) * 60
      / max(1 fen, sum(usage.charge_fen, 35d) - sum(usage.charge_fen, 7d)))
    + subscriber.arpu_fen / 10 CNY
- rule: falling
  schedule: "10:00"
  condition: derived.score >= 40
  action: {channel: sms, template: "挽留优惠"}
- rule: steady
  schedule: "10:00"
  condition: derived.score < 40 and derived.score > 0
  action: {channel: sms, template: "感谢使用"}
"#;

/// The same score with a term that moves with the date (and is always 0): it is computed for
/// everyone at every tick.
const WALKED: &str = "    + min(0, subscriber.tenure_days * 0)\n";

const SUBSCRIBERS: usize = 200;

fn number(i: usize) -> String {
    format!("1380015{i:04}")
}

/// Subscriber `i` spends on a rhythm of its own until day `20 + i % 40`, then stops (its 7-day
/// and 35-day windows empty out over the following weeks), and calls 10086 every third day;
/// every 7th changes its ARPU on day 30;
/// numbers the reference data does not know spend from day 25.
fn events() -> Vec<String> {
    let usage = crate::support::charged_call;
    let mut lines = Vec::new();
    for d in 0..70 {
        for i in 0..SUBSCRIBERS {
            if (d + i) % (2 + i % 5) == 0 && d < 20 + i % 40 {
                lines.push(usage(at(d, 8 + (i % 12), i % 60), number(i), 50 + 30 * (i % 7)));
            }
            // Calls to 10086 count into no window the score reads.
            if (d + i) % 3 == 0 {
                let (ts, m) = (at(d, 19, i % 60), number(i));
                lines.push(format!(r#"{{"kind":"ivr","ts":"{ts}","msisdn":"{m}","session":"s{d}","step":"enter"}}"#));
            }
            if d == 30 && i % 7 == 0 {
                let ts = at(d, 15, i % 60);
                let m = number(i);
                lines.push(format!(r#"{{"kind":"profile","ts":"{ts}","msisdn":"{m}","set":{{"arpu_fen":25000}}}}"#));
            }
        }
        if (25..40).contains(&d) {
            for k in 0..3 {
                lines.push(usage(at(d, 12, k), format!("1390015{k:04}"), 400));
            }
        }
    }
    crate::support::in_time_order(&mut lines);
    lines
}

#[test]
fn a_daily_score_of_windows_is_computed_for_whom_it_may_have_changed_and_decides_what_computing_it_for_all_does() {
    let subs: Vec<String> = (0..SUBSCRIBERS)
        .map(|i| {
            format!(
                r#"{{"msisdn":"{}","brand":"gotone","tier":"high","join_date":"2020-01-01","arpu_fen":{}}}"#,
                number(i),
                3000 * (i % 4)
            )
        })
        .collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let lines = events();
    let walked_rules = SCORE.replacen(
        "    + subscriber.arpu_fen / 10 CNY\n",
        &format!("    + subscriber.arpu_fen / 10 CNY\n{WALKED}"),
        1,
    );
    assert_ne!(walked_rules, SCORE);
    for shards in [1, 3] {
        let mut opts = no_footer();
        opts.shards = shards;
        let settled = run_with(SCORE, &subs, &lines, opts.clone());
        let walked = run_with(&walked_rules, &subs, &lines, opts);
        assert!(settled.dead.is_empty() && walked.dead.is_empty());
        settled.assert_same_decisions(&walked, &format!("{shards} shard(s): computing for fewer decides otherwise"));
        for rule in ["falling", "steady"] {
            assert!(settled.decisions.iter().any(|d| &*d.rule_name == rule), "{shards} shard(s): {rule} fired");
        }
        // A record changed mid-run moves the score without an event of usage.
        let changed = tidings::util::Msisdn::parse(&number(7 * 25));
        let steady_after = |r: &crate::support::Run| {
            r.decisions.iter().filter(|d| &*d.rule_name == "steady" && Some(d.msisdn) == changed).count()
        };
        assert!(steady_after(&settled) > 0, "{shards} shard(s): the subscriber whose ARPU changed is scored");
        let (few, all) = (settled.summary.stats.derives_computed, walked.summary.stats.derives_computed);
        assert!(few * 2 < all, "{shards} shard(s): computed {few} times against {all}");
    }
}
