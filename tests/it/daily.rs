//! The daily pass visits only whom it must (issue 22 §3): daily rules pinned to a day of the
//! subscriber's record (birthday, anniversary, expiry in N days) are run on the subscribers an
//! index of those days names, and decide exactly what a walk over everyone decides — also for
//! records a `profile` event changed after the index was built, over several days and shards.
//! A tick of derived values held for the month visits, after its first walk of the month, only
//! whom that walk left without a value and subscribers added since, with the same values.

use crate::support::{no_footer, run_with};

/// Three pinned daily rules at 09:00.
const PINNED: &str = r#"
- rule: bday
  schedule: "09:00"
  condition: subscriber.is_birthday and subscriber.brand == gotone
  action: {channel: sms, template: "生日快乐"}
- rule: pkg
  schedule: "09:00"
  condition: subscriber.days_to_package_expiry == 7
  action: {channel: sms, template: "套餐7天后到期"}
- rule: anniv
  schedule: "09:00"
  condition: subscriber.is_join_anniversary and subscriber.tenure_years < 5
  action: {channel: sms, template: "感谢相伴"}
"#;

/// A rule of the same minute that is not pinned (and never holds: days to a birthday are never
/// negative): with it the tick walks over everyone.
const UNPINNED: &str = r#"
- rule: never
  schedule: "09:00"
  condition: subscriber.days_to_birthday < 0
  action: {channel: sms, template: "不会发送"}
"#;

const SUBSCRIBERS: usize = 1500;

fn number(i: usize) -> String {
    format!("1380013{i:04}")
}

/// Records with birthdays, join dates and package ends spread over the year, one in ten of
/// them on the days of the run (2026-11-24 to 2026-11-29), some without any.
fn records() -> Vec<String> {
    (0..SUBSCRIBERS)
        .map(|i| {
            let brand = if i % 3 == 0 { "mzone" } else { "gotone" };
            let (m, d) = if i % 10 == 1 { (11, 24 + i % 4) } else { (1 + i % 12, 1 + i % 28) };
            let mut r = format!(r#"{{"msisdn":"{}","brand":"{brand}","tier":"high""#, number(i));
            if i % 5 != 0 {
                r += &format!(r#","birthday":"{m:02}-{d:02}""#);
            }
            if i % 4 != 0 {
                r += &format!(r#","join_date":"{}-{:02}-{:02}""#, 2021 + i % 5, m, (d + 1).min(28));
            }
            if i % 2 == 0 {
                let (y, pm, pd) =
                    if i % 10 == 2 { (2026, 12, 1 + i % 6) } else { (2027, 1 + i % 12, 1 + (i / 12) % 28) };
                r += &format!(r#","package_expires":"{y}-{pm:02}-{pd:02}""#);
            }
            r + "}"
        })
        .collect()
}

/// The record changes of the run: (day of November, subscriber, fields set) — birthdays onto
/// the next day, package ends to 8 days on, join dates onto the next day.
fn moves() -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for day in 24..=29 {
        for i in (day * 3..SUBSCRIBERS).step_by(61) {
            let set = match i % 3 {
                // (A third of the subscribers are not GoTone: those are not greeted.)
                1 => format!(r#""birthday":"11-{}""#, day + 1),
                0 => format!(r#""package_expires":"2026-12-{:02}""#, day + 8 - 30),
                _ => format!(r#""join_date":"2020-11-{}""#, day + 1),
            };
            out.push((day, i, set));
        }
    }
    out
}

/// Five days of usage, and `profile` events that move dates after the index is built (the
/// first tick is on the 24th): birthdays onto the coming days, package ends to 7 days after one.
fn events() -> Vec<String> {
    let mut lines = Vec::new();
    for day in 24..=29 {
        for h in [8, 12, 20] {
            for i in (day + h..SUBSCRIBERS).step_by(7) {
                lines.push(format!(
                    r#"{{"kind":"usage","ts":"2026-11-{day}T{h:02}:{:02}:00+08:00","msisdn":"{}","service":"data","direction":"mo","scope":"local","volume_kb":10,"charge_fen":0}}"#,
                    i % 60,
                    number(i)
                ));
            }
        }
    }
    for (day, i, set) in moves() {
        lines.push(format!(
            r#"{{"kind":"profile","ts":"2026-11-{day}T15:{:02}:00+08:00","msisdn":"{}","set":{{{set}}}}}"#,
            i % 60,
            number(i)
        ));
    }
    crate::support::in_time_order(&mut lines);
    lines
}

#[test]
fn a_pinned_daily_pass_visits_only_whom_the_pins_name_and_decides_what_a_walk_over_everyone_does() {
    let subs = records();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let lines = events();
    for shards in [1, 3] {
        let mut opts = no_footer();
        opts.shards = shards;
        let pinned = run_with(PINNED, &subs, &lines, opts.clone());
        let walked = run_with(&format!("{PINNED}{UNPINNED}"), &subs, &lines, opts);
        let fired = |r: &crate::support::Run| {
            r.decisions.iter().map(|d| (d.ts, d.msisdn, d.rule_name.to_string(), d.outcome)).collect::<Vec<_>>()
        };
        assert_eq!(fired(&pinned), fired(&walked), "{shards} shard(s): the index decides what the walk does");
        for rule in ["bday", "pkg", "anniv"] {
            assert!(pinned.decisions.iter().any(|d| &*d.rule_name == rule), "{rule} fired on some day");
        }
        // Records a profile event changed after the index was built are greeted on their new day.
        let greeted = |m: &str, day: usize| {
            pinned.decisions.iter().any(|d| {
                &*d.rule_name == "bday"
                    && Some(d.msisdn) == tidings::util::Msisdn::parse(m)
                    && tidings::time::format_ts(d.ts, opts_offset()).starts_with(&format!("2026-11-{day}T09:00"))
            })
        };
        let moved: Vec<(usize, usize)> =
            moves().into_iter().filter(|(day, i, _)| i % 3 == 1 && *day < 29).map(|(day, i, _)| (day + 1, i)).collect();
        assert!(!moved.is_empty());
        for (day, i) in moved {
            assert!(
                greeted(&number(i), day),
                "{shards} shard(s): subscriber {i}, birthday moved to 11-{day}, is greeted"
            );
        }
        // Six ticks (the 24th to the 29th): the walk visits everyone each time, the index few.
        let (few, all) = (pinned.summary.stats.daily_visits, walked.summary.stats.daily_visits);
        assert_eq!(all, 6 * SUBSCRIBERS as u64, "{shards} shard(s): the walk visits everyone");
        assert!(few * 4 < all, "{shards} shard(s): the pinned pass visited {few} against {all}");
    }
}

fn opts_offset() -> chrono::FixedOffset {
    tidings::engine::EngineOptions::default().offset
}

/// A month's value at 00:10, a snapshot: high-tier subscribers' from their ARPU, subscribers
/// the reference data does not know from their usage, nobody else's (no value: one in ten).
const SNAPSHOT: &str = r#"
- derive: month_value
  schedule: "00:10"
  type: money
  snapshot: month
  value:
    - when: subscriber.known and subscriber.tier == high
      then: subscriber.arpu_fen - sum(usage.charge_fen, 30d)
    - when: not subscriber.known
      then: 0 fen - sum(usage.charge_fen, 30d)
- rule: tell_value
  schedule: "10:00"
  condition: exists(derived.month_value)
  action: {channel: sms, template: "本月价值{derived.month_value|cny}元"}
"#;

/// A rule at 00:10 that never holds: with it the derive's tick walks over everyone.
const NIGHT_WALK: &str = r#"
- rule: never_at_night
  schedule: "00:10"
  condition: subscriber.days_to_birthday < 0
  action: {channel: sms, template: "不会发送"}
"#;

#[test]
fn a_tick_of_snapshot_values_visits_only_who_lacks_one_and_derives_what_a_walk_over_everyone_does() {
    let subs: Vec<String> = (0..600)
        .map(|i| {
            let tier = if i % 10 == 0 { "valuable" } else { "high" };
            format!(r#"{{"msisdn":"{}","brand":"gotone","tier":"{tier}","arpu_fen":{}}}"#, number(i), 3000 + i)
        })
        .collect();
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    // 2026-11-28 to 2026-12-03: the month turns on the way. Usage every day; numbers the
    // reference data does not know appear each day; a third of those without a value become
    // high-tier on the 29th.
    let mut lines = Vec::new();
    for (month, day) in [(11, 28), (11, 29), (11, 30), (12, 1), (12, 2), (12, 3)] {
        for i in (day % 7..600).step_by(5) {
            lines.push(format!(
                r#"{{"kind":"usage","ts":"2026-{month:02}-{day:02}T08:{:02}:00+08:00","msisdn":"{}","service":"voice","direction":"mo","scope":"local","duration_s":60,"charge_fen":{}}}"#,
                i % 60,
                number(i),
                10 + i % 90
            ));
        }
        for k in 0..4 {
            lines.push(format!(
                r#"{{"kind":"usage","ts":"2026-{month:02}-{day:02}T15:{k:02}:00+08:00","msisdn":"1390013{:02}{k:02}","service":"data","direction":"mo","scope":"local","volume_kb":5,"charge_fen":7}}"#,
                day
            ));
        }
    }
    for i in (0..600).step_by(30) {
        lines.push(format!(
            r#"{{"kind":"profile","ts":"2026-11-29T12:{:02}:00+08:00","msisdn":"{}","set":{{"tier":"high"}}}}"#,
            i % 60,
            number(i)
        ));
    }
    crate::support::in_time_order(&mut lines);
    for shards in [1, 2] {
        let mut opts = no_footer();
        opts.shards = shards;
        let held = run_with(SNAPSHOT, &subs, &lines, opts.clone());
        let walked = run_with(&format!("{SNAPSHOT}{NIGHT_WALK}"), &subs, &lines, opts);
        assert!(held.dead.is_empty() && walked.dead.is_empty());
        let told = |r: &crate::support::Run| {
            r.decisions.iter().map(|d| (d.ts, d.msisdn, d.text.clone(), d.outcome)).collect::<Vec<_>>()
        };
        assert_eq!(told(&held), told(&walked), "{shards} shard(s): the values are what a walk derives");
        // Those who became high-tier, and numbers first seen after the month's first tick, are
        // told a value too.
        let told_to = |m: &str| held.decisions.iter().any(|d| Some(d.msisdn) == tidings::util::Msisdn::parse(m));
        assert!(told_to(&number(30)) && !told_to(&number(40)), "{shards} shard(s): the 29th's high tiers");
        assert!(told_to("13900130200"), "{shards} shard(s): a number first seen on 12-02");
        let (few, all) = (held.summary.stats.daily_visits, walked.summary.stats.daily_visits);
        assert!(few + 600 * 2 < all, "{shards} shard(s): the held ticks visited {few} against {all}");
    }
}
