//! Hot reload on a live engine (two shards, full batches) over real HTTP: a good rule change is
//! in force for the next event while every subscriber keeps their windows, IVR history and cap
//! counters; a bad file is refused with `file:line:col` and the old rules keep running.

use crate::delivery::{Dir, at, http_get, lines, port, send, start_live};
use serde_json::Value;
use std::time::{Duration, Instant};

fn post(port: u16, path: &str, token: &str) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = format!("http://127.0.0.1:{port}{path}");
    let headers = [("authorization", format!("Bearer {token}"))];
    let r = rt
        .block_on(tidings::http::client::request(hyper::Method::POST, &url, &headers, None, Duration::from_secs(10)))
        .unwrap();
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

fn get(port: u16, path: &str, token: &str) -> Value {
    let (status, body) = http_get(port, path, Some(token));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn profile(m: &str, t: i64) -> String {
    format!(r#"{{"kind":"profile","ts":"{}","msisdn":"{m}","set":{{"status":"active","tier":"valuable"}}}}"#, at(t))
}

fn usage(m: &str, t: i64, balance_fen: u32) -> String {
    format!(
        r#"{{"kind":"usage","ts":"{}","msisdn":"{m}","service":"data","direction":"mo","scope":"local","volume_kb":1,"balance_fen":{balance_fen}}}"#,
        at(t)
    )
}

fn store_visit(m: &str, t: i64) -> String {
    format!(r#"{{"kind":"crm","ts":"{}","msisdn":"{m}","event":"store_visit","attrs":{{"store":"S1"}}}}"#, at(t))
}

/// Waits until explain shows the subscriber with `n` contacts (the engine has taken their events).
fn wait_contacts(port: u16, m: &str, n: usize) -> Value {
    let t0 = Instant::now();
    loop {
        let e = get(port, &format!("/v1/explain/{m}"), "adm");
        if e["contacts"].as_array().map_or(0, Vec::len) >= n {
            return e;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{m} never reached {n} contacts: {e}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A copy of the shipped rules (without their tests) and a live engine's config with the API
/// on `port`: returns the rules folder and the config file.
fn live_pack(dir: &Dir, port: u16) -> (std::path::PathBuf, std::path::PathBuf) {
    let rules = dir.0.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "yaml") && !p.to_string_lossy().ends_with(".tests.yaml") {
            std::fs::copy(&p, rules.join(p.file_name().unwrap())).unwrap();
        }
    }
    let cfg = crate::support::live_config(&dir.0, &rules, port, "");
    (rules, cfg)
}

#[test]
fn reload_swaps_rules_keeps_state_and_a_bad_file_leaves_the_old_rules_running() {
    let dir = Dir::new("reload");
    let port = port();
    let (rules, cfg) = live_pack(&dir, port);
    let (mut engine, mut stdin) = start_live(&cfg, port);
    let engine_pid = engine.child().id();
    let v0 = get(port, "/v1/rules", "adm")["version"].as_str().unwrap().to_owned();

    // Before: A gets the survey SMS and reaches an agent from IVR node 2.
    let (a, b, c) = ("13700000001", "13700000002", "13700000003");
    send(
        &mut stdin,
        &[
            profile(a, -90),
            profile(b, -90),
            profile(c, -90),
            store_visit(a, -60),
            format!(r#"{{"kind":"ivr","ts":"{}","msisdn":"{a}","session":"x1","step":"agent","node":"2"}}"#, at(-50)),
            // A's balance falls below 5 CNY: low_balance_no_topup's 3-day timer is armed.
            usage(a, -49, 600),
            usage(a, -48, 300),
        ],
    );
    wait_contacts(port, a, 1);
    let t0 = Instant::now();
    while get(port, &format!("/v1/explain/{a}"), "adm")["timers"].as_array().is_none_or(Vec::is_empty) {
        assert!(t0.elapsed() < Duration::from_secs(20), "A's timer was never armed");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A good change: the survey's wording.
    let service = rules.join("service.yaml");
    let text = std::fs::read_to_string(&service).unwrap();
    assert!(text.contains("template: \"感谢您光临中国移动"));
    std::fs::write(&service, text.replace("template: \"感谢您光临中国移动", "template: \"【新】感谢您光临中国移动"))
        .unwrap();
    // The timer's rule goes: its pending timer with it.
    let care = rules.join("care.yaml");
    let text = std::fs::read_to_string(&care).unwrap();
    let from = text.find("- rule: low_balance_no_topup").unwrap();
    let to = from + text[from..].find("\n- rule: ").unwrap() + 1;
    std::fs::write(&care, [&text[..from], &text[to..]].concat()).unwrap();
    // And a new rule on a window of its own: an absence test, which a window that starts empty
    // at the reload makes hold for everyone — the answer warns of it.
    std::fs::write(
        rules.join("lapsed.yaml"),
        "- rule: lapsed_topup\n  on: [usage]\n  condition: count(topup where amount_fen >= 10 CNY, 30d) == 0 and state.balance < 1 CNY\n  action: { channel: sms, template: \"充值有礼\" }\n",
    )
    .unwrap();
    let (status, r) = post(port, "/v1/rules/reload", "adm");
    assert_eq!(status, 200, "{r}");
    let carried = &r["carried"];
    assert_eq!(carried["ended_steps"], serde_json::json!([]), "{r}");
    assert_eq!(carried["dropped_timers"], serde_json::json!(["low_balance_no_topup"]), "{r}");
    assert_eq!(carried["restarted"][0]["slot"], "count(topup where amount_fen >= 10 CNY, 30d)", "{r}");
    let warned = carried["lines"].as_array().into_iter().flatten().filter_map(Value::as_str);
    let warned: Vec<&str> = warned.filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warned.len(), 1, "{r}");
    assert!(
        warned[0].starts_with("warning: rule lapsed_topup (") && warned[0].contains("holds for every subscriber"),
        "{r}"
    );
    let v1 = get(port, "/v1/rules", "adm")["version"].as_str().unwrap().to_owned();
    assert_ne!(v0, v1, "the new set is loaded");
    assert_eq!(post(port, "/v1/rules/reload", "wrong").0, 401);

    // After: the new wording for B; A's survey cap ("1 per 7d") still counts the one before the
    // reload; A's IVR history and its 7-day agent window carried over.
    send(&mut stdin, &[store_visit(b, -30), store_visit(a, -20)]);
    wait_contacts(port, b, 1);
    let (status, ivr) = http_get(port, &format!("/v1/ivr/{a}?session=x2"), Some("ivr"));
    assert_eq!(status, 200, "{ivr}");
    let ivr: Value = serde_json::from_str(&ivr).unwrap();
    assert_eq!(ivr["offer"]["rule"], "ivr_menu_personalise", "window and IVR history kept: {ivr}");

    // A bad file: refused with where and why; the running rules stay.
    std::fs::write(
        rules.join("broken.yaml"),
        "- rule: broken\n  on: [usage]\n  condition: event.scop == local\n  action: { channel: sms, template: x }\n",
    )
    .unwrap();
    let (status, r) = post(port, "/v1/rules/reload", "adm");
    assert_eq!(status, 422, "{r}");
    assert!(r["rendered"].as_str().is_some_and(|s| s.contains("broken.yaml:3:")), "file:line:col in the answer: {r}");
    assert_eq!(get(port, "/v1/rules", "adm")["version"], v1.as_str(), "the loaded version did not change");
    send(&mut stdin, &[store_visit(c, -10)]);
    wait_contacts(port, c, 1);
    let (_, metrics) = http_get(port, "/metrics", Some("adm"));
    assert!(metrics.contains(r#"tidings_rules_reloads_total{result="failed"}"#), "{metrics}");
    assert!(metrics.contains(r#"tidings_reload_dropped_total{what="timers"} 1"#), "A's timer: {metrics}");
    assert!(!metrics.contains(r#"tidings_reload_dropped_total{what="journeys"}"#), "{metrics}");
    assert!(get(port, &format!("/v1/explain/{a}"), "adm")["timers"].as_array().is_some_and(Vec::is_empty));

    // Without the API: fixing the files is noticed on its own (the watcher), and SIGHUP reloads.
    std::fs::remove_file(rules.join("broken.yaml")).unwrap();
    let text = std::fs::read_to_string(&service).unwrap();
    std::fs::write(&service, text.replace("【新】", "【再】")).unwrap();
    let t0 = Instant::now();
    while get(port, "/v1/rules", "adm")["version"] == v1.as_str() {
        assert!(t0.elapsed() < Duration::from_secs(20), "the changed file is picked up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ok = |m: &str| {
        m.lines()
            .find(|l| l.starts_with(r#"tidings_rules_reloads_total{result="ok"}"#))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = ok(&http_get(port, "/metrics", Some("adm")).1);
    let pid = engine_pid;
    assert!(std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap().success());
    let t0 = Instant::now();
    while ok(&http_get(port, "/metrics", Some("adm")).1) <= before {
        assert!(t0.elapsed() < Duration::from_secs(20), "SIGHUP reloads");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let actions = lines(&dir.0.join("out/actions.jsonl"));
    let survey = |m: &str| -> Vec<String> {
        actions
            .iter()
            .filter(|x| x["msisdn"] == m && x["rule"] == "store_satisfaction")
            .map(|x| x["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(survey(a).len(), 1, "A's second visit met the cap kept across the reload");
    assert!(!survey(a)[0].starts_with("【新】"), "A's came before the reload");
    assert!(survey(b)[0].starts_with("【新】"), "B's came after it: {:?}", survey(b));
    assert!(survey(c)[0].starts_with("【新】"), "the bad file left the new rules running: {:?}", survey(c));
    let capped = lines(&dir.0.join("out/decisions.jsonl"))
        .into_iter()
        .any(|d| d["msisdn"] == a && d["rule"] == "store_satisfaction" && d["reason"] == "cap");
    assert!(capped, "A's second survey is recorded as held back by the cap");
}

/// Failed reloads so far, from /metrics.
fn failed_reloads(port: u16) -> f64 {
    http_get(port, "/metrics", Some("adm"))
        .1
        .lines()
        .find(|l| l.starts_with(r#"tidings_rules_reloads_total{result="failed"}"#))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Issue 16: a rule file nested 5,000 levels deep dropped into `rules/` killed the running
/// engine through the file watcher (the reload parsed on a 2 MiB-stack thread and overflowed
/// it). Now the watcher, SIGHUP and POST /v1/rules/reload refuse it as `validate` does, and the
/// old rules keep deciding.
#[test]
fn reload_refuses_5000_and_50000_deep_files_and_the_old_rules_keep_deciding() {
    let dir = Dir::new("reload-deep");
    let port = port();
    let (rules, cfg) = live_pack(&dir, port);
    let (mut engine, mut stdin) = start_live(&cfg, port);
    let pid = engine.child().id().to_string();
    // Read the engine's log as it comes: a full pipe would stall its reload messages.
    let mut err = engine.child().stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).map(|_| s).unwrap_or_default()
    });
    let v0 = get(port, "/v1/rules", "adm")["version"].as_str().unwrap().to_owned();
    let deep = rules.join("deep.yaml");
    for (i, levels) in [5_000, 50_000].into_iter().enumerate() {
        // The watcher notices the new file on its own.
        let before = failed_reloads(port);
        std::fs::write(&deep, crate::rulefiles::deep(levels)).unwrap();
        let t0 = Instant::now();
        while failed_reloads(port) <= before {
            if let Ok(Some(status)) = engine.child().try_wait() {
                panic!("{levels}: the engine stopped: {status}");
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "{levels}: the watcher tried the new file");
            std::thread::sleep(Duration::from_millis(100));
        }
        // SIGHUP.
        let before = failed_reloads(port);
        assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        let t0 = Instant::now();
        while failed_reloads(port) <= before {
            assert!(t0.elapsed() < Duration::from_secs(20), "{levels}: SIGHUP tried the file");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The API, with the located error.
        let (status, r) = post(port, "/v1/rules/reload", "adm");
        assert_eq!(status, 422, "{levels}: {r}");
        let rendered = r["rendered"].as_str().unwrap_or("");
        assert!(
            rendered.contains("deep.yaml:1:129: error[E006]"),
            "{levels}: {}",
            &rendered[..rendered.len().min(500)]
        );
        assert_eq!(get(port, "/v1/rules", "adm")["version"], v0.as_str(), "the loaded rules did not change");
        // The old rules still decide.
        let m = format!("1370000010{i}");
        send(&mut stdin, &[profile(&m, -90), store_visit(&m, -60)]);
        wait_contacts(port, &m, 1);
    }
    drop(stdin);
    let out = engine.output();
    let log = log.join().unwrap();
    assert!(out.status.success(), "the engine ran to the end: {log}");
    assert!(log.matches("error[E006]").count() >= 4, "each refusal is logged with its code: {log}");
    assert!(log.lines().all(|l| l.len() < 1_000), "a 100 KB line is not logged whole");
    let actions = lines(&dir.0.join("out/actions.jsonl"));
    for m in ["13700000100", "13700000101"] {
        assert!(
            actions.iter().any(|a| a["msisdn"] == m && a["rule"] == "store_satisfaction"),
            "{m}: the survey from the old rules"
        );
    }
}
