//! The subscriber record's dates (package, contract and lease expiry, stay commitment, join
//! date): older files load without them, profile events move them, and daily rules read the
//! days left; the upcoming calendar entries that concern a subscriber (cut-overs, fan events).

use super::support::*;
use tidings::engine::EngineOptions;
use tidings::refdata::{Names, Profile, ProfileChange, ProfileField, RefData, SubscriberRecord};

fn until(ts: &str) -> EngineOptions {
    EngineOptions { until: Some(tidings::time::parse_ts(ts).expect("valid time")), ..no_footer() }
}

fn start(day: &str) -> String {
    format!(r#"{{"kind":"crm","ts":"{day}T07:00:00+08:00","msisdn":"13999999999","event":"store_visit"}}"#)
}

#[test]
fn a_subscriber_line_without_dates_still_loads_and_one_with_them_keeps_them() {
    let old = SubscriberRecord::from_json_line(SUB).expect("an old line loads");
    assert_eq!(old.dates, Default::default());
    let new = SubscriberRecord::from_json_line(
        r#"{"msisdn":"13800138000","brand":"gotone","tier":"high","package_expires":"2026-12-01","contract_expires":"2027-01-31","lease_expires":"2027-06-30","stay_until":"2027-11-20"}"#,
    )
    .expect("a line with dates loads");
    assert_eq!(new.dates.package_expires.map(|d| d.to_string()).as_deref(), Some("2026-12-01"));
    assert_eq!(new.dates.stay_until.map(|d| d.to_string()).as_deref(), Some("2027-11-20"));
    let bad = SubscriberRecord::from_json_line(
        r#"{"msisdn":"13800138000","brand":"gotone","tier":"high","lease_expires":"2027-02-30"}"#,
    )
    .expect_err("not a date");
    assert!(bad.contains("lease_expires") && bad.contains("YYYY-MM-DD"), "{bad}");
}

#[test]
fn profile_events_set_and_clear_the_dates() {
    let mut names = Names::default();
    let rec = SubscriberRecord::from_json_line(SUB).expect("valid");
    let mut p = Profile::new(&rec, true, &mut names);
    let set = ProfileChange::from_json("contract_expires", &serde_json::json!("2027-01-31")).expect("a date");
    p.apply(&set, &mut names);
    assert_eq!(p.dates.contract_expires.map(|d| d.to_string()).as_deref(), Some("2027-01-31"));
    assert_eq!(p.record(&names).dates, p.dates, "the full record carries the dates back");
    p.unset(ProfileField::ContractExpires, &mut names);
    assert_eq!(p.dates.contract_expires, None);
    let err = ProfileChange::from_json("stay_until", &serde_json::json!(20271120)).expect_err("not a string");
    assert!(err.starts_with("stay_until:"), "{err}");
}

#[test]
fn expiry_days_are_counted_in_local_days_and_move_with_a_renewal() {
    let rules = r#"
- rule: warn
  schedule: "09:00"
  condition: subscriber.days_to_package_expiry == 2
  action: { channel: sms, template: "{subscriber.package_expires|cn_date}到期" }
"#;
    let sub = r#"{"msisdn":"13800138000","brand":"gotone","tier":"high","package_expires":"2026-11-26"}"#;
    let renew = ev("profile", "2026-11-24T10:00:00+08:00", r#""set":{"package_expires":"2026-11-28"}"#);
    let r = run_with(rules, &[sub], &[start("2026-11-24"), renew], until("2026-11-27T12:00:00+08:00"));
    let fired: Vec<_> = r.decisions.iter().map(|d| (d.text.clone().unwrap_or_default(), d.ts)).collect();
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert_eq!(fired[0].0, "11月26日到期");
    assert_eq!(fired[1].0, "11月28日到期", "the renewal moves the warning");
}

#[test]
fn a_29_february_joiner_has_a_network_anniversary_on_the_28th_in_common_years() {
    let rules = r#"
- rule: anniversary
  schedule: "09:00"
  condition: subscriber.is_join_anniversary
  action: { channel: sms, template: "{subscriber.tenure_years}年" }
"#;
    let leapling = r#"{"msisdn":"13800138000","brand":"gotone","tier":"high","join_date":"2024-02-29"}"#;
    let r = run_with(rules, &[leapling], &[start("2027-02-27")], until("2027-03-02T12:00:00+08:00"));
    assert_eq!(r.rules_fired(), [("anniversary".to_string(), "2027-02-28T09:00:00+08:00".to_string())]);
    assert_eq!(r.decisions[0].text.as_deref(), Some("3年"));
}

fn calendar_refdata() -> RefData {
    let mut rd = refdata();
    let ts = |s: &str| tidings::time::parse_ts(s).expect("valid time");
    rd.add_calendar(
        "cut_a",
        "cutover",
        "东站基站割接",
        Some("railway_station"),
        ts("2026-11-26T01:00:00+08:00"),
        ts("2026-11-26T05:00:00+08:00"),
    );
    rd.add_calendar(
        "cut_b",
        "cutover",
        "五棵松基站割接",
        Some("venue:wukesong"),
        ts("2026-11-25T01:00:00+08:00"),
        ts("2026-11-25T05:00:00+08:00"),
    );
    rd.finish();
    rd
}

#[test]
fn the_cutover_a_subscriber_hears_of_is_the_one_in_cells_they_were_seen_in() {
    let rules = r#"
- rule: cut
  schedule: "10:00"
  condition: cutover.days_until == 1
  action: { channel: sms, template: "{cutover.title} {cutover.start|cn_date}" }
"#;
    let lines = vec![ev("location", "2026-11-24T08:00:00+08:00", r#""cell":"station1","trigger":"attach""#)];
    let r = run_on(calendar_refdata(), rules, &[SUB], &lines, until("2026-11-26T12:00:00+08:00"));
    let texts: Vec<_> = r.decisions.iter().map(|d| d.text.clone().unwrap_or_default()).collect();
    // Never at the venue: its cut-over (the sooner one) is not theirs.
    assert_eq!(texts, ["东站基站割接 11月26日"]);
}

#[test]
fn a_checkpointed_record_keeps_its_dates_and_one_without_dates_is_written_as_before() {
    let mut names = Names::default();
    let plain = SubscriberRecord::from_json_line(SUB).expect("valid");
    let dated = SubscriberRecord::from_json_line(
        r#"{"msisdn":"13800138001","brand":"gotone","tier":"high","corporate":true,"contract_expires":"2027-01-31","stay_until":"2027-11-20"}"#,
    )
    .expect("valid");
    let encode = |p: &Profile, names: &Names| {
        let mut e = tidings::codec::Enc::default();
        p.encode(&mut e, names);
        e.buf
    };
    let (p0, p1) = (Profile::new(&plain, true, &mut names), Profile::new(&dated, true, &mut names));
    let (b0, b1) = (encode(&p0, &names), encode(&p1, &names));
    // Four optional dates (a presence byte each, two of them set), a flag bit saying they follow.
    assert_eq!(b1.len(), b0.len() + 4 + 2 * 8, "{b0:?} {b1:?}");
    for (p, b) in [(&p0, &b0), (&p1, &b1)] {
        let mut fresh = Names::default();
        let back = Profile::decode(&mut tidings::codec::Dec::new(b), &mut fresh).expect("decodes");
        assert_eq!(back.record(&fresh).dates, p.dates);
        assert_eq!(back.corporate(), p.corporate());
    }
}
