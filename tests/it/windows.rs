//! Windows over the same events: a longer one reads a shorter one's buckets (one slot, one add
//! an event) and counts what two slots would.

use crate::support::{M, SUB, ev, run};
use tidings::rules::{self, LoadOptions};

fn pack(first: &str, second: &str) -> String {
    format!(
        "- rule: silent_sms\n  on: [usage]\n  condition: count(usage where service == sms, {first}) >= 0 and \
         count(usage where service == sms, 30d) == 0 and count(usage where service == sms, {second}) >= 2\n  \
         action: {{ channel: sms, template: \"{{count(usage where service == sms, 30d)}}/{{count(usage where service == sms, 60d)}}\" }}\n  \
         campaign: c\n"
    )
}

fn windows(pack: &str) -> usize {
    let loaded = rules::compile(vec![("w.yaml".into(), pack.into())], None, &LoadOptions::default());
    loaded.rules.map_or(usize::MAX, |r| r.aggs.len())
}

#[test]
fn a_longer_window_over_the_same_events_shares_the_shorter_ones_buckets() {
    // 30d first: 60d shares its slot (and so does 45d); 60d first: 30d would read coarser
    // buckets than its own, so it keeps a slot of its own; 35d after 7d is five times longer and
    // keeps its own too.
    assert_eq!(windows(&pack("30d", "60d")), 1);
    assert_eq!(windows(&pack("60d", "60d")), 2);
    assert_eq!(windows(&pack("30d", "45d").replace("60d)}}", "45d)}}")), 1);
    let sms = |day: &str| {
        ev("usage", &format!("{day}T10:00:00+08:00"), r#""service":"sms","direction":"mo","scope":"local","count":1"#)
    };
    let data = |day: &str| {
        ev(
            "usage",
            &format!("{day}T12:00:00+08:00"),
            r#""service":"data","direction":"mo","scope":"local","volume_kb":10"#,
        )
    };
    let lines = vec![sms("2026-09-15"), sms("2026-10-05"), sms("2026-10-15"), data("2026-11-24"), data("2026-12-19")];
    let texts = |pack: &str| -> Vec<String> {
        run(pack, &[SUB], &lines)
            .decisions
            .iter()
            .filter(|d| d.msisdn.full() == M)
            .map(|d| {
                format!(
                    "{} {}",
                    tidings::time::format_ts(d.ts, tidings::engine::EngineOptions::default().offset),
                    d.text.as_deref().unwrap_or("")
                )
            })
            .collect()
    };
    // On 24 November: none of the three in 30 days, two of them in 60 (15 September is 70 days
    // back); on 19 December none in 60 days. Shared or not, the same.
    let shared = texts(&pack("30d", "60d"));
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert!(shared[0].starts_with("2026-11-24") && shared[0].ends_with(" 0/2"), "{shared:?}");
    assert_eq!(texts(&pack("60d", "60d")), shared);
}

/// A pack counting 30 days is reloaded to one that also counts 60: the 30-day slot, now kept
/// for 60 days and read by both, keeps the counts it had.
#[test]
fn a_slot_that_comes_to_be_shared_keeps_its_counts_over_a_reload() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use tidings::engine::{self, EngineOptions, Input};
    use tidings::event::Decoder;
    use tidings::refdata::RefData;
    use tidings::sink::Memory;
    let set = |text: &str| {
        let loaded = rules::compile(vec![("w.yaml".into(), text.into())], None, &LoadOptions::default());
        loaded.rules.unwrap_or_else(|| panic!("the pack compiles: {:?}", loaded.diagnostics))
    };
    let rule = |window: &str| {
        format!(
            "- rule: r{window}\n  on: [usage]\n  condition: event.service == data\n  \
             action: {{ channel: sms, template: \"{window} {{count(usage where service == sms, {window})}}\" }}\n  \
             policy: {{ quiet_hours: ignore, transactional: true }}\n"
        )
    };
    let (before, after) = (rule("30d"), format!("{}{}", rule("30d"), rule("60d")));
    assert_eq!(set(&after).aggs.len(), 1, "the 60-day count shares the 30-day slot");
    let item = |l: String| Input::Item(Decoder::default().decode(l.as_bytes(), "t", 1).expect("a line"));
    let sms = |day: &str| {
        ev("usage", &format!("{day}T10:00:00+08:00"), r#""service":"sms","direction":"mo","scope":"local","count":1"#)
    };
    let data = |day: &str| {
        ev(
            "usage",
            &format!("{day}T12:00:00+08:00"),
            r#""service":"data","direction":"mo","scope":"local","volume_kb":10"#,
        )
    };
    let input = vec![
        item(sms("2026-11-01")),
        item(sms("2026-11-10")),
        item(data("2026-11-20")),
        Input::Reload(Arc::new(set(&after))),
        item(data("2026-11-24")),
    ];
    let (mut sink, opts) = (Memory::default(), EngineOptions::default());
    let subs = tidings::refdata::Subscribers::new();
    let stop = AtomicBool::new(false);
    engine::run(input.into_iter(), Arc::new(set(&before)), Arc::new(RefData::default()), subs, &opts, &mut sink, &stop)
        .expect("run");
    let texts: Vec<_> = sink.decisions.iter().filter_map(|d| d.text.clone()).collect();
    assert_eq!(texts, ["30d 2", "30d 2", "60d 2"]);
}

/// The slots' kept-event counts of a pack (0: the whole window), by slot.
fn caps(pack: &str) -> Vec<i64> {
    let loaded = rules::compile(vec![("w.yaml".into(), pack.into())], None, &LoadOptions::default());
    loaded.rules.map(|r| r.agg_caps.clone()).unwrap_or_default()
}

#[test]
fn a_count_only_compared_with_constants_keeps_the_newest_events_that_decide_it() {
    let rule = |condition: &str, template: &str| {
        format!(
            "- rule: r\n  on: [usage]\n  condition: {condition}\n  action: {{ channel: sms, template: \"{template}\" }}\n  campaign: c\n"
        )
    };
    let sms = "count(usage where service == sms, 30d)";
    // Each comparison needs so many events to be decided whatever more come.
    for (cond, want) in [
        (format!("{sms} >= 3"), 3),
        (format!("{sms} > 3"), 4),
        (format!("{sms} == 0"), 1),
        (format!("{sms} < 2"), 2),
        (format!("{sms} <= 2"), 3),
        (format!("{sms} != 1"), 2),
        (format!("5 <= {sms}"), 5),
        (format!("{sms} == 0 and count(usage where service == sms, 60d) >= 3"), 3),
    ] {
        assert_eq!(caps(&rule(&cond, "hi")), [want], "{cond}");
    }
    // Read otherwise anywhere (arithmetic, a template, against another count, a sum, a large
    // constant): the whole window is kept.
    assert_eq!(caps(&rule(&format!("{sms} >= 3"), &format!("{{{sms}}}"))), [0], "a template shows it");
    assert_eq!(caps(&rule(&format!("{sms} * 2 >= 3"), "hi")), [0], "arithmetic");
    assert_eq!(caps(&rule(&format!("{sms} >= count(reply, 30d)"), "hi")), [0, 0], "another count");
    assert_eq!(caps(&rule("sum(usage.charge_fen, 30d) >= 3 fen", "hi")), [0], "a sum");
    assert_eq!(caps(&rule(&format!("{sms} >= 100"), "hi")), [0], "a large constant");
    // The shipped pack's silent-service offers: half-day buckets of 60 days, three events kept.
    let shipped = rules::load(&["rules".into()], None, &LoadOptions::default()).rules.expect("rules load");
    let silent: Vec<i64> = shipped
        .aggs
        .iter()
        .zip(&shipped.agg_caps)
        .filter(|(a, _)| a.window == 60 * tidings::time::DAY && a.kind.as_str() == "usage")
        .map(|(_, c)| *c)
        .collect();
    assert_eq!(silent, [3, 3], "{:?}", shipped.agg_caps);
}

#[test]
fn a_window_that_kept_fewer_events_than_the_new_rules_read_starts_afresh_over_a_reload() {
    let set = |condition: &str, template: &str| {
        let pack = format!(
            "- rule: r\n  on: [usage]\n  condition: {condition}\n  action: {{ channel: sms, template: \"{template}\" }}\n  campaign: c\n"
        );
        rules::compile(vec![("w.yaml".into(), pack)], None, &LoadOptions::default()).rules.expect("compiles")
    };
    let sms = "count(usage where service == sms, 30d)";
    let three = set(&format!("{sms} >= 3"), "hi");
    let one = set(&format!("{sms} == 0"), "hi");
    let whole = set(&format!("{sms} >= 3"), &format!("{{{sms}}}"));
    assert_eq!((three.agg_caps.clone(), one.agg_caps.clone(), whole.agg_caps.clone()), (vec![3], vec![1], vec![0]));
    let carried =
        |from: &tidings::rules::RuleSet, to: &tidings::rules::RuleSet| from.shape().remap_to(&to.shape()).aggs;
    // The newest three events decide `== 0` too, and the whole window decides anything; the
    // newest event alone does not decide `>= 3`, nor three a count shown in full.
    assert_eq!(carried(&three, &one), [Some(0)]);
    assert_eq!(carried(&whole, &three), [Some(0)]);
    assert_eq!(carried(&whole, &one), [Some(0)]);
    assert_eq!(carried(&one, &three), [None]);
    assert_eq!(carried(&three, &whole), [None]);
    assert_eq!(carried(&three, &three), [Some(0)]);
}
