//! A rule pack with planted mistakes: every one is reported, at once, with its code and
//! exact position, and nothing is loaded.

use tidings::refdata::RefData;
use tidings::rules::{self, LoadOptions};

/// Compiles one rule file `src` named `file` with the default options, no reference data.
fn compile(file: &str, src: impl Into<String>) -> rules::Loaded {
    rules::compile(vec![(file.into(), src.into())], None, &LoadOptions::default())
}

/// Each diagnostic's code, line and column, in the order given.
fn located(loaded: &rules::Loaded) -> Vec<(String, usize, usize)> {
    loaded.diagnostics.iter().map(|d| (format!("{:?}", d.code), d.line, d.col)).collect()
}

const BAD: &str = r#"- list: hubs
  items: [railway_station, airport]

- macro: low_balance
  condition: subscriber.balance < 10 CNY

- macro: never_used
  condition: subscriber.tier == high

- rule: typo_in_field
  on: [usage]
  condition: event.blance_fen < 500 fen
  action: { channel: sms, template: "x" }

- rule: unknown_macro
  on: [location]
  condition: low_balanse and entered(hubs)
  action: { channel: sms, template: "x" }

- rule: wrong_kind_field
  on: [usage, location]
  condition: event.scope == long_distance
  action: { channel: sms, template: "x" }

- rule: money_without_unit
  on: [usage]
  condition: subscriber.balance < 10
  action: { channel: sms, template: "x" }

- rule: window_too_long
  on: [usage]
  condition: count(usage, 400d) > 3
  action: { channel: sms, template: "x" }

- rule: bad_enum_value
  on: [usage]
  condition: event.service == voce
  action: { channel: sms, template: "x" }

- rule: syntax_error
  on: [usage]
  condition: event.count > 3 event.count
  action: { channel: sms, template: "x" }

- rule: bad_template
  on: [usage]
  condition: "true"
  action: { channel: sms, template: "余额{subscriber.balanc|cny}元" }
  priority: 5

- rule: bad_key
  on: [usage]
  condtion: "true"
  action: { channel: sms, template: "x" }

- rule: filter_reads_profile
  on: [usage]
  condition: count(usage where subscriber.tier == high, 7d) > 1
  action: { channel: fax, template: "x" }
"#;

#[test]
fn every_planted_mistake_is_reported_with_code_and_position() {
    let loaded = compile("bad.yaml", BAD);
    assert!(loaded.rules.is_none(), "a pack with errors must not load");
    let got = located(&loaded);
    let want: Vec<(&str, usize, usize)> = vec![
        ("W101", 5, 14),  // low_balance: its only use is misspelt
        ("W101", 8, 14),  // never_used
        ("E011", 12, 14), // event.blance_fen
        ("E012", 17, 14), // low_balanse
        ("E014", 22, 14), // event.scope on location
        ("E013", 27, 14), // balance < 10
        ("E016", 32, 27), // 400d
        ("E019", 37, 31), // voce
        ("E010", 42, 30), // 3 event.count
        ("E011", 48, 41), // subscriber.balanc inside the template
        ("E003", 53, 3),  // condtion
        ("E004", 51, 3),  // ... so no condition
        ("E021", 58, 32), // filter reading the profile
        ("E005", 59, 22), // channel fax
    ];
    let mut want: Vec<(String, usize, usize)> = want.into_iter().map(|(c, l, col)| (c.to_string(), l, col)).collect();
    want.sort_by_key(|w| (w.1, w.2));
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(|w| (w.1, w.2));
    assert_eq!(got_sorted, want, "diagnostics: {}", loaded.diagnostics.iter().map(|d| d.render()).collect::<String>());
}

#[test]
fn hints_name_the_nearest_valid_thing() {
    let loaded = compile("bad.yaml", BAD);
    let hint = |code: &str, line: usize| {
        loaded
            .diagnostics
            .iter()
            .find(|d| format!("{:?}", d.code) == code && d.line == line)
            .and_then(|d| d.hint.clone())
            .unwrap_or_default()
    };
    assert!(hint("E011", 12).contains("event.balance_fen"), "{}", hint("E011", 12));
    assert!(hint("E012", 17).contains("low_balance"));
    assert!(hint("E013", 27).contains("CNY"));
    assert!(hint("E019", 37).contains("voice"));
    assert!(hint("E003", 53).contains("condition"));
    let rendered = loaded.diagnostics.iter().find(|d| d.line == 12).unwrap().render();
    assert!(rendered.starts_with("bad.yaml:12:14: error[E011]: unknown field `event.blance_fen`"), "{rendered}");
    assert!(rendered.contains("12 |   condition: event.blance_fen < 500 fen\n"), "{rendered}");
    assert!(rendered.contains("   |              ^\n"), "{rendered}");
}

/// The `reply` kind's fields (`event.keyword`, `event.in_reply_to.*`, `event.unsubscribe`) are
/// known to the checker like every other: a typo gets the nearest one, a reply field on a rule
/// that does not listen to replies is refused, and a bad `sender` is an error at its place.
#[test]
fn reply_fields_are_checked_with_hints_and_senders_are_digits() {
    let src = r#"- rule: typo
  on: [reply]
  condition: event.keywrd == "TD" and event.in_reply_to.campain == "x"
  action: { channel: sms, template: "x" }
- rule: not_a_reply
  on: [usage]
  condition: event.keyword == "TD"
  action: { channel: sms, template: "x" }
- rule: bad_sender
  on: [reply]
  condition: event.in_reply_to.known and event.in_reply_to.age < 1d
  action: { channel: sms, template: "x" }
  policy: { sender: "1065-8888" }
"#;
    let loaded = compile("r.yaml", src);
    let said: Vec<String> = loaded.diagnostics.iter().map(|d| d.render()).collect();
    let at = |line: usize, col: usize| {
        loaded
            .diagnostics
            .iter()
            .find(|d| d.line == line && d.col == col)
            .map(|d| (format!("{:?}", d.code), d.hint.clone()))
    };
    assert_eq!(at(3, 14), Some(("E011".into(), Some("did you mean `event.keyword`?".into()))), "{said:#?}");
    assert_eq!(at(3, 39).map(|h| h.1), Some(Some("did you mean `event.in_reply_to.campaign`?".into())), "{said:#?}");
    assert!(said.iter().any(|d| d.starts_with("r.yaml:7:14:") && d.contains("event.keyword")), "{said:#?}");
    assert!(
        said.iter().any(|d| d.starts_with("r.yaml:13:21:") && d.contains("`1065-8888` is not a sender number")),
        "{said:#?}"
    );
    assert_eq!(said.len(), 4, "{said:#?}");
}

#[test]
fn yaml_syntax_errors_and_unknown_items_are_positioned() {
    let loaded = compile("y.yaml", "- rule: x\n  on: [usage\n  condition: true\n");
    assert_eq!(format!("{:?}", loaded.diagnostics[0].code), "E001");
    assert!(loaded.diagnostics[0].line >= 2);
    let loaded = compile("y.yaml", "- rul: x\n");
    assert_eq!(
        (format!("{:?}", loaded.diagnostics[0].code), loaded.diagnostics[0].line, loaded.diagnostics[0].col),
        ("E002".to_string(), 1, 3)
    );
}

#[test]
fn unknown_tags_are_warned_about_when_reference_data_is_loaded() {
    let mut rd = RefData::default();
    rd.add_cell("c", "c", 0.0, 0.0, &["railway_station".to_string()]);
    let src = "- rule: r\n  on: [location]\n  condition: entered(\"railway_stattion\")\n  action: { channel: sms, template: x }\n";
    let loaded = rules::compile(vec![("t.yaml".into(), src.into())], Some(&rd), &LoadOptions::default());
    assert!(loaded.rules.is_some(), "a warning does not stop the load");
    assert_eq!(format!("{:?}", loaded.diagnostics[0].code), "W103");
    assert_eq!((loaded.diagnostics[0].line, loaded.diagnostics[0].col), (3, 22));
}

#[test]
fn the_shipped_pack_is_clean() {
    let loaded = rules::load(&["rules".into()], None, &LoadOptions::default());
    let msgs: String = loaded.diagnostics.iter().map(|d| d.render()).collect();
    assert!(loaded.diagnostics.is_empty(), "{msgs}");
    assert!(loaded.rules.unwrap().rules.len() >= 5);
}

const BAD_POLICY: &str = r#"- campaign: ip_12539
  policy: { cap: "3 per month" }

- rule: a
  on: [usage]
  condition: "true"
  action: { channel: sms, template: "x" }
  campaign: ip_12593
  policy: { streak: "3 months" }

- rule: b
  on: [usage]
  condition: "true"
  action: { channel: sms, template: "x" }
  campaign: ip_12593
  policy: { streak: "4 months" }

- rule: c
  on: [ivr]
  condition: "true"
  action: { channel: ivr, template: "menu" }
  policy: { quiet_hours: defer }

- rule: d
  on: [crm]
  condition: "true"
  action: { channel: sms, template: "x" }
  policy: { transactional: true, control_group: "10%", ignore_dnd: yes }

- rule: e
  on: [crm]
  condition: "true"
  action: { channel: sms, template: "x" }
  policy: { ignore_dnd: true, exclude: [vip], cap: "3 a month" }

- rule: f
  on: [crm]
  condition: "true"
  action: { channel: sms, template: "x" }
  policy: { cap: "0 per day" }

- rule: g
  on: [crm]
  condition: "true"
  action: { channel: sms, template: "x" }
  policy: { quiet_hours: { hours: "22:00-8h", fate: defer } }
"#;

#[test]
fn contradictory_or_unknown_policy_is_refused_with_positions() {
    let loaded = compile("p.yaml", BAD_POLICY);
    assert!(loaded.rules.is_none());
    let mut got = located(&loaded);
    got.sort_by_key(|g| (g.1, g.2));
    let want = [
        ("E030", 1, 13),  // a campaign no rule belongs to (a typo of ip_12593)
        ("E031", 16, 21), // a second, different streak for the same campaign
        ("E032", 22, 26), // IVR answers cannot be deferred
        ("E033", 28, 49), // transactional with a control group
        ("E005", 28, 68), // ignore_dnd: yes
        ("E033", 34, 25), // ignore_dnd without transactional
        ("E005", 34, 41), // exclude vip
        ("E005", 34, 52), // cap "3 a month"
        ("E033", 40, 18), // cap of 0
        ("E005", 46, 35), // unparseable quiet hours
    ];
    let want: Vec<(String, usize, usize)> = want.iter().map(|(c, l, col)| (c.to_string(), *l, *col)).collect();
    assert_eq!(got, want, "{}", loaded.diagnostics.iter().map(|d| d.render()).collect::<String>());
    let e030 = loaded.diagnostics.iter().find(|d| format!("{:?}", d.code) == "E030").unwrap();
    assert_eq!(e030.hint.as_deref(), Some("did you mean `ip_12593`?"));
}

#[test]
fn config_policy_errors_name_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("tidings-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[policy]\nquiet_hours = \"22:00-08:00\"\ncaps = [\"2 per day\", \"lots per month\"]\n")
        .unwrap();
    let err = tidings::config::Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("bad.toml:3:22: policy.caps"), "{err}");
    assert!(!err.contains("bad.toml: "), "the file is named once: {err}");
    std::fs::write(&path, "[policy]\nquiet_hours = \"10pm-8am\"\n").unwrap();
    let err = tidings::config::Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("bad.toml:2:15: policy.quiet_hours"), "{err}");
    std::fs::write(&path, "[policy.channels.fax]\ncapacity = \"1/s\"\n").unwrap();
    let err = tidings::config::Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("unknown channel `fax`"), "{err}");
    // Global exclusions read only the profile; a derived attribute is a rule's to exclude.
    std::fs::write(&path, "[policy]\nexclude = [\"pre_cancel\", \"derived.value_tier:high\"]\n").unwrap();
    let err = tidings::config::Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("bad.toml:2:26: policy.exclude") && err.contains("a rule's `exclude:`"), "{err}");
    let ok = tidings::config::Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/tidings.toml"
    )))
    .unwrap();
    assert_eq!(ok.capacity[0], Some((200, 1000)));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A campaign whose only rule or journey was refused is not also reported as having none: the
/// rule's own error is the one mistake. A campaign no item names still is.
#[test]
fn a_campaign_whose_rule_was_refused_is_not_reported_as_without_rules() {
    let src = "\
- campaign: care
  owner: x
- campaign: lonely
  owner: y
- journey: broken
  campaign: care
  expire_after: 1d
  start: { on: [crm], condition: event.event == complaint_closed }
  steps:
    - step: first
      action: { channel: sms, template: x }
      next:
        - {outcome: [delivered], goto: nowhere}
- rule: bad_rule
  on: [usage]
  condition: state.nosuch > 1
  action: { channel: sms, template: x }
- campaign: bad_rule
";
    let loaded = compile("c.yaml", src);
    let got = located(&loaded);
    let want = [("E030", 3, 13), ("E040", 13, 40), ("E011", 16, 14)];
    let want: Vec<(String, usize, usize)> = want.iter().map(|(c, l, col)| (c.to_string(), *l, *col)).collect();
    assert_eq!(got, want, "{}", loaded.diagnostics.iter().map(|d| d.render()).collect::<String>());
}

#[test]
fn a_quoted_unknown_enum_value_points_at_the_string() {
    let src = "- rule: r\n  on: [usage]\n  condition: event.scope == \"long_distanse\"\n  action: { channel: sms, template: x }\n";
    let loaded = compile("q.yaml", src);
    let d = &loaded.diagnostics[0];
    assert_eq!((format!("{:?}", d.code), d.line, d.col), ("E019".to_string(), 3, 29));
    assert_eq!(d.hint.as_deref(), Some("did you mean `long_distance`?"));
}

#[test]
fn duplicate_names_point_at_the_first_definition() {
    let src = "- list: a\n  items: [x]\n- macro: a\n  condition: \"true\"\n- list: a\n  items: [y]\n";
    let loaded = compile("d.yaml", src);
    let dups: Vec<(usize, String)> = loaded
        .diagnostics
        .iter()
        .filter(|d| format!("{:?}", d.code) == "E017")
        .map(|d| (d.line, d.message.clone()))
        .collect();
    assert_eq!(
        dups,
        [(3, "`a` is already defined at d.yaml:1".to_string()), (5, "`a` is already defined at d.yaml:1".to_string())]
    );
}

const BAD_WORDS: &str = r#"- dictionary:
    gold: 金卡
    data: 数据流量
- dictionary:
    gold: 黄金卡
    data: 数据流量
    silver: [银卡]
    bronze: ""
  descr: member tiers
- dictionary: [gold, 金卡]
- rule: r
  on: [crm]
  condition: "true"
  action: { channel: sms, template: "您已升级为{event.attrs.to}" }
"#;

/// A pack's `dictionary:` items merge; a code given two different words, a word that is no
/// text, a dictionary that is no mapping and an unknown key are each an error at its place.
#[test]
fn dictionary_mistakes_are_reported_at_their_place() {
    let loaded = compile("w.yaml", BAD_WORDS);
    assert!(loaded.rules.is_none(), "a pack with errors must not load");
    let said: Vec<String> = loaded.diagnostics.iter().map(|d| d.render()).collect();
    let got = located(&loaded);
    let want = [
        ("E017", 5, 5),   // gold: 黄金卡 after gold: 金卡 (data again with the same word is fine)
        ("E005", 7, 13),  // silver: a list, not a word
        ("E005", 8, 13),  // bronze: no word
        ("E003", 9, 3),   // descr
        ("E005", 10, 15), // a list, not a mapping
    ];
    let want: Vec<(String, usize, usize)> = want.iter().map(|(c, l, col)| (c.to_string(), *l, *col)).collect();
    assert_eq!(got, want, "{said:#?}");
    assert!(said[0].contains("`gold` already reads `金卡` (at w.yaml:2), not `黄金卡`"), "{}", said[0]);
    assert!(said[3].contains("did you mean `desc`?"), "{}", said[3]);
    // Without the mistakes, the same items load.
    let mistakes = ["黄金卡", "[银卡]", "\"\"", "descr", "[gold"];
    let good: String =
        BAD_WORDS.lines().filter(|l| !mistakes.iter().any(|m| l.contains(m))).map(|l| format!("{l}\n")).collect();
    let loaded = compile("w.yaml", good.clone());
    assert!(loaded.rules.is_some(), "{good}\n{:?}", loaded.diagnostics);
}

/// A journey whose SMS asks for the reply `QR` and moves on it (`j.ask`): the rule packs of the
/// two tests below end with it.
const ASKING_JOURNEY: &str = r#"- journey: j
  start: {on: [crm], condition: "event.event == store_visit"}
  expire_after: 3d
  steps:
    - step: ask
      action: {channel: sms, template: "回复QR确认"}
      next:
        - {reply: [qr], goto: end}
        - {after: 1d, goto: end}
"#;

/// An SMS that tells the subscriber to reply a keyword promises that the reply does something:
/// a keyword no rule reads and no journey step moves on is warned about (W106) at the `回复` that
/// asks for it; the unsubscribe keywords are the engine's own. A rule comparing the keyword with
/// a word no keyword can be (lower case: keywords are read upper case) is warned about (W107),
/// and answers nothing.
#[test]
fn an_sms_asking_for_a_reply_nothing_answers_is_warned_about() {
    let src = r#"- rule: offer
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "回复BL办理，回复XD续订，回复HY入会，回复ＱＲ确认。拒收请回复R" }
- rule: takes
  on: [reply]
  condition: event.keyword in ("BL", "hy") and event.in_reply_to.rule == "offer"
  action: { channel: order, offer: "bl" }
"#;
    let loaded = compile("r.yaml", [src, ASKING_JOURNEY].concat());
    assert!(loaded.rules.is_some(), "warnings only: {:?}", loaded.diagnostics);
    let got: Vec<(String, usize, usize, String)> =
        loaded.diagnostics.iter().map(|d| (format!("{:?}", d.code), d.line, d.col, d.message.clone())).collect();
    let asks = |kw: &str| format!("the SMS asks for the reply `{kw}`, and no rule or journey answers it");
    assert_eq!(
        got,
        [
            ("W106".to_string(), 4, 45, asks("XD")),
            ("W106".to_string(), 4, 52, asks("HY")),
            (
                "W107".to_string(),
                7,
                38,
                "`hy` is never a reply's keyword: keywords are read upper case, half width, first word only"
                    .to_string()
            ),
        ],
        "{}",
        loaded.diagnostics.iter().map(|d| d.render()).collect::<String>()
    );
    let hint = loaded.diagnostics.iter().find(|d| d.line == 7).and_then(|d| d.hint.clone());
    assert_eq!(hint.as_deref(), Some("write `\"HY\"`"));
}

/// A derive computed on events that reads a window keeps its value between those events: "two
/// calls unanswered in 60 days" would hold long after the 60 days. Warned (W109) at its value;
/// computed daily, or reading no window, it is not.
#[test]
fn a_derive_on_events_reading_a_window_is_warned_about() {
    let src = r#"- derive: ignores_calls
  on: [outcome]
  value: count(outcome where status == no_answer, 60d) >= 2
- derive: ignores_calls_daily
  schedule: "10:00"
  value: count(outcome where status == no_answer, 60d) >= 2
- derive: last_no_answer
  on: [outcome]
  value: event.status == no_answer
- derive: spend_tier
  on: [usage]
  type: tier
  value:
    - {when: "sum(usage.charge_fen, this_month) > 100 CNY", then: high}
    - {then: sub}
"#;
    let loaded = compile("d.yaml", src);
    assert!(loaded.rules.is_some(), "warnings only: {:?}", loaded.diagnostics);
    let got = located(&loaded);
    let said = loaded.diagnostics.iter().map(|d| d.render()).collect::<String>();
    assert_eq!(got, [("W109".to_string(), 3, 10), ("W109".to_string(), 14, 5)], "{said}");
    assert!(said.contains("computed only on usage events and reads a calendar month"), "{said}");
    assert!(said.contains("computed only on outcome events and reads a 60d window"), "{said}");
}

/// A rule that sends nothing neither answers nor asks: a reply read only by a shadow rule (it
/// places no order) is still unanswered, and a disabled rule's SMS, never sent, asks nothing.
#[test]
fn a_shadow_rule_answers_no_reply_and_a_disabled_rule_asks_for_none() {
    let src = r#"- rule: offer
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "回复XD续订" }
- rule: trial
  mode: shadow
  on: [reply]
  condition: event.keyword == "XD" and event.in_reply_to.rule == "offer"
  action: { channel: order, offer: "xd" }
- rule: later
  enabled: false
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "回复ZZ入会" }
"#;
    let loaded = compile("r.yaml", src);
    assert!(loaded.rules.is_some(), "warnings only: {:?}", loaded.diagnostics);
    let got = located(&loaded);
    assert_eq!(
        got,
        [("W106".to_string(), 4, 38)],
        "{}",
        loaded.diagnostics.iter().map(|d| d.render()).collect::<String>()
    );
    // Live, the same reply rule answers it.
    let live = src.replace("  mode: shadow\n", "");
    let loaded = compile("r.yaml", live);
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.diagnostics.iter().map(|d| d.render()).collect::<String>());
}

/// A rule or campaign name compared with what an outcome reports on or a reply answers must be
/// one the pack has (a rule, a journey step `journey.step`, a rule's former name, a campaign):
/// a misspelt one makes the rule never fire, and is warned about (W108) with the nearest name.
#[test]
fn an_outcome_or_reply_compared_with_a_name_the_pack_lacks_is_warned_about() {
    let src = r#"- rule: offer
  was: [old_offer]
  on: [crm]
  condition: event.event == store_visit
  action: { channel: sms, template: "x" }
  campaign: shop
- rule: takes
  on: [reply]
  condition: event.in_reply_to.rule in ("ofer", "old_offer", "j.ask") and event.in_reply_to.campaign != "shp"
  action: { channel: order, offer: "x" }
- rule: retry
  on: [outcome]
  condition: event.rule == "j.asks" and event.campaign == "shop"
  action: { channel: sms, template: "y" }
"#;
    let loaded = compile("r.yaml", [src, ASKING_JOURNEY].concat());
    assert!(loaded.rules.is_some(), "warnings only: {:?}", loaded.diagnostics);
    let got: Vec<(String, usize, usize, Option<String>)> =
        loaded.diagnostics.iter().map(|d| (format!("{:?}", d.code), d.line, d.col, d.hint.clone())).collect();
    let w = |line, col, hint: &str| ("W108".to_string(), line, col, Some(format!("did you mean `{hint}`?")));
    assert_eq!(
        got,
        [w(9, 41, "offer"), w(9, 105, "shop"), w(13, 28, "j.ask")],
        "{}",
        loaded.diagnostics.iter().map(|d| d.render()).collect::<String>()
    );
    assert!(loaded.diagnostics[0].message.contains("`ofer` is not a rule or journey step of the pack"));
}

/// Every part of a long SMS is billed as one: an SMS whose template's own text (with the
/// unsubscribe footer a marketing SMS carries) already takes more messages than its rule allows
/// (`parts:`, one unless said) is warned about (W110) at its template; `parts` is a number of
/// messages, and only an SMS has them.
#[test]
fn an_sms_longer_than_its_rule_allows_is_warned_about() {
    let rule = |name: &str, chars: usize, extra: &str| {
        format!(
            "- rule: {name}\n  on: [topup]\n  condition: event.amount_fen > 0 fen\n  action:\n    channel: sms\n    template: \"{}{{event.amount_fen|cny}}\"\n{extra}",
            "好".repeat(chars)
        )
    };
    let src = [
        // 66 characters and the 6 of the footer: 72, two messages.
        rule("marketing", 66, ""),
        // No footer on a transactional SMS: 66, one.
        rule("receipt", 66, "  policy: { transactional: true }\n"),
        // 120 and 6 in two parts of 67: allowed.
        rule("long_allowed", 120, "    parts: 2\n"),
        // 140 and 6: three.
        rule("too_long", 140, "    parts: 2\n"),
    ]
    .concat();
    let loaded = compile("p.yaml", src.clone());
    assert!(loaded.rules.is_some(), "warnings only: {:?}", loaded.diagnostics);
    let got = located(&loaded);
    let said = loaded.diagnostics.iter().map(|d| d.render()).collect::<String>();
    assert_eq!(got, [("W110".to_string(), 6, 16), ("W110".to_string(), 26, 16)], "{said}");
    assert!(
        said.contains(
            "this SMS is 72 characters before its values are filled in with the unsubscribe footer `拒收请回复R`: \
             2 messages, where its rule allows one"
        ),
        "{said}"
    );
    assert!(said.contains("146 characters before its values are filled in"), "{said}");
    assert!(said.contains("3 messages, where its rule allows 2 (`parts: 2`)"), "{said}");
    assert!(said.contains("write `parts: 3` in the action"), "{said}");
    // A config without a footer: the marketing SMS is 66.
    let no_footer = LoadOptions { footer: "".into(), ..LoadOptions::default() };
    let loaded = rules::compile(vec![("p.yaml".into(), src)], None, &no_footer);
    assert_eq!(loaded.diagnostics.len(), 1, "{:?}", loaded.diagnostics);

    let bad = "- rule: a\n  on: [topup]\n  condition: event.amount_fen > 0 fen\n  action: {channel: sms, template: \"x\", parts: 0}\n\
               - rule: b\n  on: [topup]\n  condition: event.amount_fen > 0 fen\n  action: {channel: call, script: \"x\", parts: 2}\n";
    let loaded = compile("b.yaml", bad);
    let got: Vec<(String, usize)> = loaded.diagnostics.iter().map(|d| (format!("{:?}", d.code), d.line)).collect();
    let said = loaded.diagnostics.iter().map(|d| d.render()).collect::<String>();
    assert_eq!(got, [("E005".to_string(), 4), ("E005".to_string(), 8)], "{said}");
    assert!(said.contains("`parts` is a whole number of messages from 1 to 10"), "{said}");
    assert!(said.contains("a call action has no `parts`"), "{said}");
}

/// `armed.PATH` (what a timer kept when it was armed) is read only by a timer's `cancel_if`
/// and `recheck`, of a single-valued field of the rule's own events, at most four a timer; each
/// misuse is refused where it is written, and `each` is true or false.
#[test]
fn armed_values_are_read_only_where_a_timer_keeps_them() {
    let src = r#"- macro: posted
  condition: event.attrs.amount_fen > 0

- rule: armed_in_a_condition
  on: [crm]
  condition: armed.event.attrs.amount_fen > 0
  action: { channel: sms, template: "x" }

- rule: armed_misused
  on: [crm]
  condition: event.event == payment_posted
  timer:
    after: 2m
    each: sometimes
    cancel_on: [topup]
    cancel_if: count(topup where event.amount_fen > armed.event.attrs.amount_fen, 1d) > 0 or armed.subscriber.services == "x" or armed.posted
  action: { channel: sms, template: "x" }

- rule: armed_too_many
  on: [crm]
  condition: event.event == payment_posted
  timer:
    after: 2m
    cancel_on: [topup]
    recheck: armed.event.attrs.a == 1 and armed.event.attrs.b == 1 and armed.state.balance > 0 fen and armed.event.attrs.a == 2 and armed.subscriber.tier == high and armed.event.attrs.c == 1
  action: { channel: sms, template: "x" }

- rule: armed_well
  on: [crm]
  condition: event.event == payment_posted
  timer:
    after: 2m
    each: true
    cancel_on: [topup]
    cancel_if: event.amount_fen == armed.event.attrs.amount_fen and event.channel != armed.subscriber.brand
  action: { channel: sms, template: "x" }
"#;
    let loaded = compile("armed.yaml", src);
    assert!(loaded.rules.is_none(), "a pack with errors must not load");
    // Where a marker starts: its line and column, 1-based.
    let at = |marker: &str, nth: usize| {
        let off = src.match_indices(marker).nth(nth).map(|(i, _)| i).expect("the marker");
        let line = src[..off].matches('\n').count() + 1;
        (line, off - src[..off].rfind('\n').map_or(0, |n| n + 1) + 1)
    };
    let mut got = located(&loaded);
    got.sort_by_key(|w| (w.1, w.2));
    let mut want: Vec<(String, usize, usize)> = [
        ("E011", at("armed.event.attrs.amount_fen > 0", 0)), // not in a timer
        ("E005", at("sometimes", 0)),
        ("E021", at("armed.event.attrs.amount_fen, 1d", 0)), // inside a `where` filter
        ("E013", at("armed.subscriber.services", 0)),        // a list
        ("E013", at("armed.posted", 0)),                     // a macro, not a field
        ("E008", at("armed.event.attrs.c", 0)),              // the fifth value
        // `event.channel` (a top-up's) and `armed.subscriber.brand` are different types.
        ("E013", at("event.channel != armed", 0)),
    ]
    .into_iter()
    .map(|(c, (l, col))| (c.to_string(), l, col))
    .collect();
    want.sort_by_key(|w| (w.1, w.2));
    let rendered: String = loaded.diagnostics.iter().map(|d| d.render()).collect();
    assert_eq!(got, want, "{rendered}");
    assert!(rendered.contains("only a timer's `cancel_if` and `recheck` read it"), "{rendered}");
    assert!(rendered.contains("a timer keeps at most 4 values"), "{rendered}");
    assert!(rendered.contains("cannot compare a top-up channel with a brand"), "{rendered}");
}

/// `quiet_hours` in its long form takes `fate`, `hours` and `judged_at` (send or trigger): a
/// misspelt key or an unknown value is refused where it is written, never silently ignored.
#[test]
fn quiet_hours_keys_and_when_they_are_judged_are_checked() {
    let src = r#"- rule: typo
  on: [crm]
  condition: event.event == payment_posted
  action: { channel: sms, template: "x" }
  policy: { quiet_hours: { fate: defer, judge_at: trigger } }

- rule: unknown_moment
  on: [crm]
  condition: event.event == payment_posted
  action: { channel: sms, template: "x" }
  policy: { quiet_hours: { fate: defer, judged_at: later } }

- rule: well
  on: [crm]
  condition: event.event == payment_posted
  action: { channel: sms, template: "x" }
  policy: { quiet_hours: { fate: defer, hours: "21:00-08:00", judged_at: trigger } }
"#;
    let loaded = compile("q.yaml", src);
    let got = located(&loaded);
    let rendered: String = loaded.diagnostics.iter().map(|d| d.render()).collect();
    assert_eq!(got, [("E005".to_string(), 5, 41), ("E005".to_string(), 11, 52)], "{rendered}");
    assert!(rendered.contains("not `judge_at`") && rendered.contains("`judged_at` is send"), "{rendered}");
    // Without the two mistakes the pack loads, the rule judged at its trigger.
    let well = &src[src.find("- rule: well").expect("the rule")..];
    let loaded = compile("q.yaml", well);
    let set = loaded.rules.expect("loads");
    assert!(set.rules[0].policy.quiet_at_trigger);
}
