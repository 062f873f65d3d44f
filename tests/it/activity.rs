//! A daily pass whose rules each need events in a window, or none in one ("no SMS in 30 days, 3
//! or more in 60"), visits only whom an index of each subscriber's newest bucket says a rule may
//! hold for, and decides exactly what a walk over everyone decides: over 70 days, as
//! subscribers fall silent one after another, numbers first seen mid-run, on 1 and 3 shards.

use crate::support::{no_footer, run_day as at, run_with};

/// Two daily rules at 10:30, each with activity terms.
const ACTIVE: &str = r#"
- rule: quiet_sms
  schedule: "10:30"
  condition: >
    count(usage where service == sms and direction == mo, 30d) == 0
    and count(usage where service == sms and direction == mo, 60d) >= 3
  action: {channel: sms, template: "短信优惠"}
  policy: {cap: "1 per 7d"}
- rule: data_again
  schedule: "10:30"
  condition: count(usage where service == data, 3d) > 1 and 0 < count(usage where service == data, 7d)
  action: {channel: sms, template: "流量优惠"}
  policy: {cap: "1 per 10d"}
"#;

/// A rule of the same minute without such a term (never holding): with it the tick walks over
/// everyone.
const WALK: &str = r#"
- rule: never
  schedule: "10:30"
  condition: subscriber.days_to_birthday < 0
  action: {channel: sms, template: "不会发送"}
"#;

const SUBSCRIBERS: usize = 300;

fn number(i: usize) -> String {
    format!("1380014{i:04}")
}

/// Subscriber `i` sends SMS every other day until day `10 + i % 45`, then stops; uses data on
/// runs of days; numbers the reference data does not know start sending SMS mid-run and stop.
fn events() -> Vec<String> {
    let usage = |ts: String, m: String, service: &str| {
        format!(
            r#"{{"kind":"usage","ts":"{ts}","msisdn":"{m}","service":"{service}","direction":"mo","scope":"local","charge_fen":10}}"#
        )
    };
    let mut lines = Vec::new();
    for d in 0..70 {
        for i in 0..SUBSCRIBERS {
            if d % 2 == i % 2 && d < 10 + i % 45 {
                lines.push(usage(at(d, 9, i % 60), number(i), "sms"));
            }
            if (d + i) % 23 < 2 {
                lines.push(usage(at(d, 20, i % 60), number(i), "data"));
            }
        }
        if (20..35).contains(&d) {
            for k in 0..3 {
                lines.push(usage(at(d, 12, k), format!("1390014{k:04}"), "sms"));
            }
        }
    }
    crate::support::in_time_order(&mut lines);
    lines
}

#[test]
fn a_pass_of_activity_terms_visits_only_whom_they_may_hold_for_and_decides_what_a_walk_does() {
    let subs: Vec<String> =
        (0..SUBSCRIBERS).map(|i| format!(r#"{{"msisdn":"{}","brand":"gotone","tier":"high"}}"#, number(i))).collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let lines = events();
    for shards in [1, 3] {
        let mut opts = no_footer();
        opts.shards = shards;
        let indexed = run_with(ACTIVE, &subs, &lines, opts.clone());
        let walked = run_with(&format!("{ACTIVE}{WALK}"), &subs, &lines, opts);
        assert!(indexed.dead.is_empty() && walked.dead.is_empty());
        let decided = |r: &crate::support::Run| {
            r.decisions.iter().map(|d| (d.ts, d.msisdn, d.rule_name.to_string(), d.outcome)).collect::<Vec<_>>()
        };
        assert_eq!(decided(&indexed), decided(&walked), "{shards} shard(s): the index decides what the walk does");
        for rule in ["quiet_sms", "data_again"] {
            assert!(indexed.decisions.iter().any(|d| &*d.rule_name == rule), "{shards} shard(s): {rule} fired");
        }
        // Numbers first seen mid-run fall silent too.
        let silent = tidings::util::Msisdn::parse("13900140001");
        assert!(
            indexed.decisions.iter().any(|d| &*d.rule_name == "quiet_sms" && Some(d.msisdn) == silent),
            "{shards} shard(s): a number first seen on day 20 is offered the SMS bundle"
        );
        let (few, all) = (indexed.summary.stats.daily_visits, walked.summary.stats.daily_visits);
        assert!(few * 3 < all, "{shards} shard(s): the indexed pass visited {few} against {all}");
    }
}
