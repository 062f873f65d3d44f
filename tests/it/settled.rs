//! A daily derived attribute that reads only windows, record fields that do not move with the
//! date and constants (a churn score) is computed at a tick only for subscribers touched since
//! the last one, whose windows moved, or never computed for, and decides exactly what computing
//! it for everyone decides: over 70 days, as subscribers spend, fall silent and their windows
//! age, records change mid-run, numbers first seen mid-run, on 1 and 3 shards.

use crate::support::{Run, no_footer, run_day as at, run_with};

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

/// The stream run on `shards` shards with `rules` (computed for fewer) and with `walked` (the
/// same computed for everyone at every tick): neither has dead letters, and they decide alike.
fn run_both(rules: &str, walked: &str, subs: &[&str], lines: &[String], shards: usize) -> (Run, Run) {
    let mut opts = no_footer();
    opts.shards = shards;
    let few = run_with(rules, subs, lines, opts.clone());
    let all = run_with(walked, subs, lines, opts);
    assert!(few.dead.is_empty() && all.dead.is_empty());
    few.assert_same_decisions(&all, &format!("{shards} shard(s): computing for fewer decides otherwise"));
    (few, all)
}

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
        let (settled, walked) = run_both(SCORE, &walked_rules, &subs, &lines, shards);
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

/// The same score kept `for:` high-value subscribers only — CRM's tier, or a monthly tier the
/// pack works out — decides what computing it for everyone at every tick decides, though whom
/// it is for changes with the record (tiers set mid-run) and with a derived value (the monthly
/// tier of those whose ARPU rose, from the next month): nobody outside gets a value, one who
/// leaves loses theirs, one who enters is scored from the next tick.
#[test]
fn a_score_kept_for_some_follows_whom_it_is_for_and_decides_what_computing_it_for_all_does() {
    const TIER: &str = r#"
- derive: tier_m
  schedule: "00:10"
  type: tier
  value:
    - when: subscriber.arpu_fen >= 50 CNY
      then: high
    - then: valuable
  snapshot: month
"#;
    const FOR: &str = "  for: subscriber.tier == high or derived.tier_m == high\n";
    let scoped =
        format!("{TIER}{}", SCORE.replacen("  schedule: \"10:00\"\n", &format!("  schedule: \"10:00\"\n{FOR}"), 1));
    // Whom it is for then reads the date: computed for everyone at every tick.
    let walked = scoped.replacen(FOR, &FOR.replacen('\n', " and subscriber.tenure_days >= 0\n", 1), 1);
    assert!(scoped.contains(FOR) && !walked.contains(FOR));
    let tier = |i: usize| if i.is_multiple_of(3) { "high" } else { "valuable" };
    let subs: Vec<String> = (0..SUBSCRIBERS)
        .map(|i| {
            let (m, t, arpu) = (number(i), tier(i), 3000 * (i % 4));
            format!(r#"{{"msisdn":"{m}","brand":"gotone","tier":"{t}","join_date":"2020-01-01","arpu_fen":{arpu}}}"#)
        })
        .collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    // On day 40 every 11th high subscriber leaves CRM's high tier, every 13th other one enters.
    let mut lines = events();
    for i in 0..SUBSCRIBERS {
        let to = match i {
            _ if i.is_multiple_of(11) && i.is_multiple_of(3) => "valuable",
            _ if i % 13 == 1 && !i.is_multiple_of(3) => "high",
            _ => continue,
        };
        let (ts, m) = (at(40, 15, i % 60), number(i));
        lines.push(format!(r#"{{"kind":"profile","ts":"{ts}","msisdn":"{m}","set":{{"tier":"{to}"}}}}"#));
    }
    crate::support::in_time_order(&mut lines);
    // Whom the score is for on local day `d` (the ARPU raised on day 30 counts from the next
    // month's tier, day 61), and whether it ever is.
    let arpu_high = |i: usize, d: usize| i % 4 >= 2 || (i.is_multiple_of(7) && d >= 61);
    let crm_high = |i: usize, d: usize| match d >= 41 {
        false => i.is_multiple_of(3),
        true => (i.is_multiple_of(3) && !i.is_multiple_of(11)) || (!i.is_multiple_of(3) && i % 13 == 1),
    };
    let day0 = tidings::time::parse_ts(&at(0, 0, 0)).expect("a time");
    let day_of = |ts: tidings::time::Millis| ((ts - day0) / 86_400_000) as usize;
    for shards in [1, 3] {
        let (few, all) = run_both(&scoped, &walked, &subs, &lines, shards);
        let scored: Vec<(usize, usize)> = few
            .decisions
            .iter()
            .filter_map(|d| {
                Some((
                    (0..SUBSCRIBERS).find(|&i| Some(d.msisdn) == tidings::util::Msisdn::parse(&number(i)))?,
                    day_of(d.ts),
                ))
            })
            .collect();
        for &(i, d) in &scored {
            assert!(arpu_high(i, d) || crm_high(i, d), "{shards} shard(s): subscriber {i} scored on day {d}");
        }
        let entered = |i: usize| !arpu_high(i, 0) && !crm_high(i, 0);
        assert!(
            scored.iter().any(|&(i, d)| entered(i) && d >= 61 && i.is_multiple_of(7)),
            "{shards}: scored from the monthly tier"
        );
        assert!(scored.iter().any(|&(i, d)| entered(i) && d >= 41 && i % 13 == 1), "{shards}: scored from CRM's tier");
        assert!(
            scored.iter().any(|&(i, d)| i.is_multiple_of(11) && i.is_multiple_of(3) && !arpu_high(i, d) && d < 41),
            "{shards}: scored before leaving"
        );
        let (few, all) = (few.summary.stats.derives_computed, all.summary.stats.derives_computed);
        assert!(few * 2 < all, "{shards} shard(s): computed {few} times against {all}");
    }
}

/// A value kept `for:` whom a window says (`for: count(usage, 14d) >= 2`, as the pack's
/// `ignores_calls` keeps its value for subscribers with two unanswered calls) settles too: whom it
/// is for moves with that window, so a subscriber who stops spending loses the value the day
/// the window ages below two calls, with no event of theirs — and the ticks decide what computing
/// for everyone at every tick decides, with fewer computations.
#[test]
fn a_value_kept_for_whom_a_window_says_follows_the_window_and_decides_what_computing_it_for_all_does() {
    const FOR: &str = "  for: count(usage where service == voice, 14d) >= 2\n";
    let rules = format!(
        r#"
- derive: spend
  schedule: "10:00"
{FOR}  value: sum(usage.charge_fen, 7d) + subscriber.arpu_fen / 10
- rule: spending
  schedule: "10:00"
  condition: derived.spend >= 1 CNY
  action: {{channel: sms, template: "感谢使用"}}
- rule: lapsed
  schedule: "10:00"
  condition: not exists(derived.spend) and subscriber.arpu_fen >= 60 CNY
  action: {{channel: sms, template: "好久不见"}}
"#
    );
    // Whom it is for then reads the date (true for everyone, known or not): computed for
    // everyone at every tick.
    let date = " and (subscriber.tenure_days >= 0 or not exists(subscriber.tenure_days))\n";
    let walked = rules.replacen(FOR, &FOR.replacen('\n', date, 1), 1);
    assert_ne!(walked, rules);
    let subs: Vec<String> = (0..SUBSCRIBERS)
        .map(|i| {
            let (m, arpu) = (number(i), 3000 * (i % 4));
            format!(r#"{{"msisdn":"{m}","brand":"gotone","tier":"high","join_date":"2020-01-01","arpu_fen":{arpu}}}"#)
        })
        .collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let lines = events();
    let day0 = tidings::time::parse_ts(&at(0, 0, 0)).expect("a time");
    for shards in [1, 3] {
        let (few, all) = run_both(&rules, &walked, &subs, &lines, shards);
        // Subscriber 2 spends until day 22 (every other day, ARPU 60 CNY): kept for while it
        // spends, lapsed once its 14-day window holds fewer than two calls — days after its last.
        let two = tidings::util::Msisdn::parse(&number(2));
        let days = |rule: &str| -> Vec<i64> {
            let ds = few.decisions.iter().filter(|d| &*d.rule_name == rule && Some(d.msisdn) == two);
            ds.map(|d| (d.ts - day0) / 86_400_000).collect()
        };
        let (spending, lapsed) = (days("spending"), days("lapsed"));
        assert!(spending.iter().any(|d| *d < 22), "{shards} shard(s): scored while spending: {spending:?}");
        let first_lapsed = lapsed.iter().copied().find(|d| *d > 22);
        assert!(
            first_lapsed.is_some_and(|d| (27..=30).contains(&d)),
            "{shards} shard(s): lapsed when its window aged: {lapsed:?}"
        );
        let (few, all) = (few.summary.stats.derives_computed, all.summary.stats.derives_computed);
        assert!(few * 2 < all, "{shards} shard(s): computed {few} times against {all}");
    }
}
