//! The command line as operators use it: validate, test, run on the embedded default, gen and
//! replay.

use std::process::Command;

fn tidings() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tidings"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tidings-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn validate_is_clean_on_the_pack_and_fails_with_json_on_a_bad_file() {
    let out = tidings().args(["validate", "rules"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tmp("validate");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "- rule: r\n  on: [usage]\n  condition: event.scop == local\n  action: { channel: sms, template: x }\n",
    )
    .unwrap();
    let out = tidings().args(["validate", "--format", "json"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["diagnostics"][0]["code"], "E011");
    assert_eq!(v["diagnostics"][0]["line"], 3);
    assert_eq!(v["diagnostics"][0]["col"], 14);
}

/// `validate --config` checks the pack as that config runs it: a 90-day window its
/// `engine.max_window` allows is no error, an SMS asking for a refusal the config's
/// `[policy.unsubscribe]` does not have (`TD`) is warned about, and so is one that its longer
/// footer makes two messages (W110); without the config, the defaults.
#[test]
fn validate_with_a_config_checks_the_pack_against_its_window_and_unsubscribe_keywords() {
    let dir = tmp("validate-config");
    let pack = dir.join("r.yaml");
    std::fs::write(
        &pack,
        format!(
            "- rule: long\n  on: [usage]\n  condition: count(usage, 90d) > 3\n  action: {{ channel: sms, template: \"回复TD退订{}\" }}\n",
            "好".repeat(58)
        ),
    )
    .unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "[engine]\nmax_window = \"120d\"\n[policy.unsubscribe]\nkeywords = [\"退订\"]\nfooter = \"拒收请回复退订，资费详询10086客服热线\"\n",
    )
    .unwrap();
    let codes = |args: &[&std::ffi::OsStr]| {
        let out = tidings().arg("validate").args(["--format", "json"]).args(args).arg(&pack).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let codes: Vec<String> =
            v["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap().to_string()).collect();
        (out.status.code(), codes)
    };
    assert_eq!(codes(&[]), (Some(1), vec!["E016".to_string()]), "62 days by default; TD is a default refusal");
    let (code, mut said) = codes(&["--config".as_ref(), cfg.as_os_str()]);
    said.sort();
    assert_eq!((code, said), (Some(0), vec!["W106".to_string(), "W110".to_string()]));
}

#[test]
fn the_rule_pack_tests_pass() {
    let out = tidings().args(["test", "rules"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

/// A pack test whose expectation (or `only:`) names no rule of the pack says so, with the name
/// meant — a rule's nearest name, or a journey's steps (its contacts are named by step) —
/// instead of "not decided", which would send its author looking at the rule's condition.
#[test]
fn a_pack_test_naming_no_rule_says_which_name_was_meant() {
    let dir = tmp("packtest-names");
    std::fs::write(
        dir.join("p.yaml"),
        "- rule: store_thanks\n  on: [crm]\n  condition: event.event == store_visit\n  action: {channel: sms, template: \"谢谢\"}\n\
         - journey: care\n  expire_after: 1d\n  start: {on: [crm], condition: event.event == complaint_closed}\n  steps:\n\
         \x20   - step: call\n      action: {channel: call, script: \"x\"}\n      next:\n        - {after: 1h, goto: sms}\n\
         \x20   - step: sms\n      action: {channel: sms, template: \"y\"}\n      next:\n        - {goto: end}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("p.tests.yaml"),
        "- test: names\n  subscribers:\n    - {msisdn: \"13300000009\", brand: gotone, tier: valuable}\n  events:\n\
         \x20   - {kind: crm, ts: \"2026-11-24T10:00:00+08:00\", msisdn: \"13300000009\", event: store_visit, attrs: {}}\n\
         \x20 expect:\n    - {rule: store_thank}\n    - {rule: care}\n    - {rule: cares}\n\
         \x20 only: [store_thanks, care.cal]\n",
    )
    .unwrap();
    let out = tidings().arg("test").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    for said in [
        "p.tests.yaml:7: no rule `store_thank` in the pack; did you mean `store_thanks`?",
        "p.tests.yaml:8: no rule `care`: a journey's contacts are named by their step (`care.call`, `care.sms`)",
        "p.tests.yaml:9: no rule `cares` in the pack; did you mean a step of journey `care` (`care.call`, `care.sms`)?",
        "p.tests.yaml:10: no rule `care.cal` in the pack; did you mean `care.call`?",
    ] {
        assert!(stdout.contains(said), "{said}\n{stdout}");
    }
    assert!(!stdout.contains("not decided"), "{stdout}");
}

/// A pack test fails a case whose SMS, with its values filled in, takes more messages than its
/// rule allows (`parts:`): what `validate` cannot know (a store's or a place's name) the case
/// renders, and the author sees the cost before it is billed.
#[test]
fn a_pack_test_fails_an_sms_longer_than_its_rule_allows() {
    let dir = tmp("packtest-parts");
    let pack = |parts: &str| {
        format!(
            "- rule: store_thanks\n  on: [crm]\n  condition: event.event == store_visit\n  policy: {{transactional: true}}\n\
             \x20 action:\n    channel: sms\n    template: \"{}{{event.attrs.store}}\"\n{parts}",
            "谢".repeat(60)
        )
    };
    std::fs::write(
        dir.join("p.tests.yaml"),
        "- test: thanks\n  subscribers:\n    - {msisdn: \"13300000009\", brand: gotone, tier: valuable}\n  events:\n\
         \x20   - {kind: crm, ts: \"2026-11-24T10:00:00+08:00\", msisdn: \"13300000009\", event: store_visit, attrs: {store: 北京西单大悦城旗舰营业厅}}\n\
         \x20 expect:\n    - {rule: store_thanks}\n",
    )
    .unwrap();
    std::fs::write(dir.join("p.yaml"), pack("")).unwrap();
    let out = tidings().arg("test").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("is 72 characters, 2 messages, where its rule allows 1 (`parts:` in its action)"),
        "{stdout}"
    );
    std::fs::write(dir.join("p.yaml"), pack("    parts: 2\n")).unwrap();
    let out = tidings().arg("test").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
}

#[test]
fn the_example_rules_validate_and_pass_their_tests_beside_the_pack() {
    // docs/examples/rules reads the pack's macros: both are given, as the example's header says.
    for cmd in ["validate", "test"] {
        let out = tidings().args([cmd, "rules", "docs/examples/rules"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = tidings().args(["test", "rules", "docs/examples/rules"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok   on_the_move_offer_at_most_once_a_fortnight"), "{stdout}");
}

#[test]
fn run_on_the_embedded_default_writes_actions() {
    let dir = tmp("run");
    let cfg = dir.join("tidings.toml");
    let default = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tidings.toml")).unwrap();
    // The shipped config, smaller and writing into the temp dir.
    let cfg_text = default
        .replace("subscribers = 10000", "subscribers = 2000")
        .replace("events = 400000", "events = 40000")
        .replace("dir = \"out\"", &format!("dir = {:?}", dir.join("out").display().to_string()));
    std::fs::write(&cfg, cfg_text).unwrap();
    let out = tidings().args(["run", "--config"]).arg(&cfg).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let file = std::fs::read_to_string(dir.join("out/actions.jsonl")).unwrap();
    assert!(!file.is_empty(), "actions were written: {stderr}");
    assert_eq!(stdout.lines().count(), file.lines().count(), "stdout carries the same actions");
    for line in file.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for f in ["id", "ts", "msisdn", "rule", "campaign", "channel", "priority", "trigger"] {
            assert!(!v[f].is_null(), "{f} missing in {line}");
        }
    }
    assert!(stderr.contains("events        40000"), "{stderr}");
    assert!(!stderr.contains("starting with no history"), "the shipped pack has no unguarded absence test: {stderr}");
    assert!(!stderr.contains("13800138000"), "no full number in the summary");
    // Regression: the embedded default once left the roaming tariffs out of its reference data,
    // and welcome messages said "--" instead of prices.
    let welcomes: Vec<&str> = file.lines().filter(|l| l.contains("\"intl_roaming_welcome\"")).collect();
    assert!(!welcomes.is_empty(), "the default run sends roaming welcomes");
    assert!(welcomes.iter().all(|l| l.contains("元/分钟") && !l.contains("--元")), "{welcomes:?}");
}

/// A run with no checkpoint starts every window empty: a condition an empty window makes true
/// holds for everyone it listens to, and the run says so as it starts.
#[test]
fn a_run_without_history_warns_of_absence_tests_that_hold_for_everyone() {
    let dir = tmp("run-cold");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("p.yaml"),
        "- rule: lapsed\n  on: [usage]\n  condition: count(topup, 30d) == 0\n  action: { channel: sms, template: \"充值提醒\" }\n\n- rule: guarded\n  on: [usage]\n  condition: count(usage where service == data, 30d) == 0 and count(usage where service == data, 60d) >= 3\n  action: { channel: sms, template: \"流量\" }\n",
    )
    .unwrap();
    let default = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tidings.toml")).unwrap();
    let cfg_text = default
        .replace("subscribers = 10000", "subscribers = 200")
        .replace("events = 400000", "events = 2000")
        .replace("paths = [\"rules\"]", &format!("paths = [{:?}]", rules.display().to_string()))
        .replace("dir = \"out\"", &format!("dir = {:?}", dir.join("out").display().to_string()));
    let cfg = dir.join("tidings.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let out = tidings().args(["run", "--quiet", "--config"]).arg(&cfg).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warned: Vec<&str> = stderr.lines().filter(|l| l.starts_with("tidings: starting with no history")).collect();
    assert_eq!(warned.len(), 1, "the guarded rule is not warned about: {stderr}");
    assert!(
        warned[0].contains("rule lapsed (")
            && warned[0].contains("`count(topup, 30d) == 0` holds for every subscriber"),
        "{stderr}"
    );
}

#[test]
fn gen_then_replay_is_repeatable() {
    let dir = tmp("replay");
    let data = dir.join("data");
    let out = tidings()
        .args(["gen", "--subscribers", "1500", "--events", "30000", "--days", "4", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["subscribers.jsonl", "cells.jsonl", "calendar.jsonl", "stores.jsonl", "events.jsonl"] {
        assert!(data.join(f).exists(), "{f}");
    }
    let replay = |o: &str| {
        let out = tidings()
            .args(["replay", "--events"])
            .arg(data.join("events.jsonl"))
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(dir.join(o))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let summary = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(summary.contains("events        30000"), "{summary}");
        std::fs::read(dir.join(o).join("actions.jsonl")).unwrap()
    };
    let a = replay("a");
    let b = replay("b");
    assert!(!a.is_empty());
    assert_eq!(a, b, "a replay decides exactly what the previous one did");
}

#[test]
fn explain_tells_one_subscribers_story_in_plain_words() {
    let dir = tmp("explain");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("subscribers.jsonl"), r#"{"msisdn":"13800138000","brand":"gotone","tier":"valuable"}"#)
        .unwrap();
    let call = |id: &str, ts: &str, scope: &str| {
        format!(
            r#"{{"kind":"usage","id":"{id}","ts":"{ts}","msisdn":"13800138000","service":"voice","direction":"mo","scope":"{scope}","duration_s":300}}"#
        )
    };
    let other = r#"{"kind":"usage","id":"x1","ts":"2026-11-16T10:30:00+08:00","msisdn":"13900000000","service":"voice","direction":"mo","scope":"long_distance","duration_s":300}"#;
    let events = [
        call("u1", "2026-11-02T10:00:00+08:00", "long_distance"),
        call("u2", "2026-11-09T10:00:00+08:00", "long_distance"),
        call("u3", "2026-11-16T10:00:00+08:00", "long_distance"),
        other.to_string(),
        call("u4", "2026-11-17T23:30:00+08:00", "roaming_domestic"),
        call("u5", "2026-11-18T10:00:00+08:00", "long_distance"),
        call("u6", "2026-11-19T10:00:00+08:00", "long_distance"),
        call("u7", "2026-11-20T10:00:00+08:00", "long_distance"),
    ];
    let file = dir.join("events.jsonl");
    std::fs::write(&file, events.join("\n")).unwrap();
    let out =
        tidings().args(["explain", "13800138000", "--events"]).arg(&file).arg("--data").arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "13800138000 — gotone valuable, active, services [], dnd no");
    assert!(text.contains("2026-11-16T10:00:00+08:00  usage event u3: voice mo long_distance\n  rule ip_long_distance_12593 matched\n    -> SMS sent by rule ip_long_distance_12593"), "{text}");
    assert!(text.contains("not sent: quiet_hours — quiet hours 22:00-08:00: this rule drops contacts then"), "{text}");
    assert!(text.contains("not sent: cap — cap \"3 per month\" of campaign ip_12593 reached (3 already)"), "{text}");
    assert!(!text.contains("x1"), "only the subscriber asked about: {text}");
}

#[test]
fn the_delivery_example_config_loads_with_every_gateway() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/delivery.example.toml"));
    let cfg = tidings::config::Config::load(path).unwrap_or_else(|e| panic!("{e}"));
    let d = cfg.delivery.expect("a [delivery] section");
    assert!(d.smpp.is_some() && d.call_centre.is_some() && d.order.is_some() && d.kannel.is_none());
    assert_eq!(d.sms_tps, 200);
    // A typo in a delivery key is refused, not ignored.
    let bad = std::fs::read_to_string(path).unwrap().replace("sms_tps = 200", "sms_tsp = 200");
    let p = std::env::temp_dir().join(format!("tidings-bad-delivery-{}.toml", std::process::id()));
    std::fs::write(&p, bad).unwrap();
    let err = tidings::config::Config::load(&p).expect_err("an unknown key is an error").to_string();
    assert!(err.contains("sms_tsp"), "{err}");
    let _ = std::fs::remove_file(&p);
}

/// Regression: `reason: cap` (instead of `suppressed: cap`) in an expectation was ignored, so the
/// expectation silently meant "sent".
#[test]
fn a_rule_test_with_a_misspelt_expectation_key_fails_and_names_it() {
    let dir = tmp("test-keys");
    std::fs::write(
        dir.join("r.yaml"),
        "- rule: r\n  on: [usage]\n  condition: event.scope == local\n  action: { channel: sms, template: x }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("r.tests.yaml"),
        "- test: t\n  events:\n    - {kind: usage, ts: \"2026-11-24T10:00:00+08:00\", msisdn: \"13600000001\", service: sms, direction: mo, scope: local, count: 1}\n  expect:\n    - {rule: r, reason: cap}\n",
    )
    .unwrap();
    let out = tidings().arg("test").arg(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("unknown key `reason`") && stdout.contains("r.tests.yaml:5"), "{stdout}");
}

/// `tidings replay … | head -1` panicked with a backtrace on the broken pipe, before the report
/// was written: a closed stdout now ends the printing quietly and every file is still written.
#[test]
fn replay_into_a_closed_pipe_exits_quietly_and_writes_its_files() {
    let dir = tmp("closed-pipe");
    let data = dir.join("data");
    let out = tidings().args(["gen", "--subscribers", "300", "--events", "3000", "--out"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut child = tidings()
        .args(["replay", "--events"])
        .arg(data.join("events.jsonl"))
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--report")
        .arg(dir.join("report.html"))
        .env("RUST_BACKTRACE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the replay prints anything (it prints when it is done).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{err}", out.status);
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    assert!(std::fs::metadata(dir.join("out/actions.jsonl")).unwrap().len() > 0);
    assert!(std::fs::read_to_string(dir.join("report.html")).unwrap().contains("<html"));
}

/// "No space left on device" did not say which file: a write error names the file it concerns
/// (here an output directory whose files are /dev/full).
#[test]
fn a_full_disk_names_the_file_that_could_not_be_written() {
    let dir = tmp("full");
    let data = dir.join("data");
    let out = tidings().args(["gen", "--subscribers", "300", "--events", "3000", "--out"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for file in ["actions.jsonl", "dead_letters.jsonl"] {
        let full = dir.join(format!("out-{file}"));
        std::fs::create_dir_all(&full).unwrap();
        std::os::unix::fs::symlink("/dev/full", full.join(file)).unwrap();
        // Dead letters: every line of this file is one.
        let events = if file == "actions.jsonl" { data.join("events.jsonl") } else { data.join("cells.jsonl") };
        let out = tidings()
            .args(["replay", "--events"])
            .arg(events)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        let want = format!("{}: No space left on device", full.join(file).display());
        assert!(err.contains(&want), "the error names {file}: {err}");
    }
}

#[test]
fn bench_reports_what_each_daily_tick_cost() {
    let out = tidings()
        .args(["bench", "--subscribers", "3000", "--count", "30000", "--shards", "2", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ticks = v["daily_ticks"].as_array().unwrap();
    // The pack's daily items run at 00:10, 09:00, 10:00 and 10:30, on each of the four days.
    let at: Vec<&str> = ticks.iter().map(|t| t["at"].as_str().unwrap()).collect();
    let minutes: Vec<&str> = at.iter().map(|a| &a[11..16]).collect();
    assert_eq!(at.len(), 16, "{at:?}");
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in time order, each tick once: {at:?}");
    assert_eq!(minutes[..4], ["00:10", "09:00", "10:00", "10:30"], "{at:?}");
    // Both shards' parts of a tick are one row: the month's value tier is worked out for all.
    assert_eq!(ticks[0]["visits"], v["subscribers"], "{:?}", ticks[0]);
    let sum = |k: &str| ticks.iter().map(|t| t[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("visits"), v["daily_visits"].as_u64().unwrap());
    // Derived values are worked out at 00:10 on day 1 (the month's) and at each 10:00 (the churn
    // score, ignores_calls): for everyone the first time, after that only for whom something
    // changed (they settle), so fewer than five times the subscribers.
    let (subs, derived) = (v["subscribers"].as_u64().unwrap(), v["daily_derives_computed"].as_u64().unwrap());
    assert!((2 * subs..5 * subs).contains(&derived), "{derived} derived for {subs} subscribers");
    assert!(v["daily_starts_evaluated"].as_u64().unwrap() > 0);
    assert!(sum("decisions") > 0 && sum("decisions") <= v["decisions"].as_u64().unwrap());
    let ms: f64 = ticks.iter().map(|t| t["ms"].as_f64().unwrap()).sum();
    assert!((ms - v["daily_ticks_ms"].as_f64().unwrap()).abs() < 1e-6 && ms > 0.0);
    // The table says the same in words.
    let out = tidings().args(["bench", "--subscribers", "2000", "--count", "10000"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("| daily ticks | 16 ticks, "), "{table}");
}
