//! The admin endpoint over real HTTP on a live engine: tokens, rate limits, `/metrics` counting
//! what the engine took in, and a real Prometheus (Debian's `prometheus`, started here by PID)
//! scraping it and answering a query with the engine's counters.

use crate::delivery::{Dir, Running, http_get as get, port as free_port, start_live};
use std::io::Write as _;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A live engine reading stdin, with the admin API on `port`.
fn live_engine(dir: &Path, port: u16, rate: u32) -> (Running, ChildStdin) {
    live_engine_on(dir, port, rate, 1, "")
}

/// A live engine on `shards` shards, its config given `more` sections.
fn live_engine_on(dir: &Path, port: u16, rate: u32, shards: usize, more: &str) -> (Running, ChildStdin) {
    let cfg = dir.join("tidings.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[engine]
batch = 1
shards = {shards}

[source]
kind = "stdin"

{more}

[output]
dir = "{out}"
stdout = false

[api]
listen = "127.0.0.1:{port}"
admin_token = "adm-token"
rate_per_client = {rate}
"#,
            out = dir.join("out").display()
        ),
    )
    .unwrap();
    start_live(&cfg, port)
}

/// `n` usage events and one bad line, as a live stream would bring them.
fn feed(stdin: &mut ChildStdin, n: usize) {
    let ts = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).to_rfc3339();
    for i in 0..n {
        writeln!(
            stdin,
            r#"{{"kind":"usage","ts":"{ts}","msisdn":"1390000{i:04}","service":"data","direction":"mo","scope":"local","volume_kb":10}}"#
        )
        .unwrap();
    }
    writeln!(stdin, "not json").unwrap();
    stdin.flush().unwrap();
}

/// The value of one sample line of the Prometheus text format.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[test]
fn admin_endpoints_want_the_token_count_the_run_and_limit_each_client() {
    let dir = Dir::new("admin");
    let port = free_port();
    let (_engine, mut stdin) = live_engine(&dir.0, port, 20);
    feed(&mut stdin, 40);
    assert_eq!(get(port, "/healthz", None).0, 200, "health needs no token");
    assert_eq!(get(port, "/metrics", None).0, 401, "metrics need the token");
    assert_eq!(get(port, "/metrics", Some("wrong")).0, 401);
    let t0 = Instant::now();
    let body = loop {
        let (status, body) = get(port, "/metrics", Some("adm-token"));
        assert_eq!(status, 200, "{body}");
        // The bad line comes after the 40 events: wait for both.
        if sample(&body, r#"tidings_events_total{kind="usage"}"#) == Some(40.0)
            && sample(&body, r#"tidings_dead_letters_total{reason="bad_json"}"#).is_some()
        {
            break body;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the usage events are counted:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sample(&body, r#"tidings_dead_letters_total{reason="bad_json"}"#), Some(1.0), "{body}");
    assert!(!body.contains("13900000"), "no subscriber number in the metrics");
    assert!(body.contains(r#"tidings_timers_pending{shard="0"}"#), "the timer backlog is a gauge:\n{body}");
    assert!(body.contains("tidings_decision_latency_seconds"), "{body}");
    let (status, rules) = get(port, "/v1/rules", Some("adm-token"));
    assert_eq!(status, 200);
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    assert!(rules["rules"].as_u64() > Some(20) && rules["version"].as_str().is_some_and(|v| v.len() == 16), "{rules}");
    assert_eq!(get(port, "/v1/nothing", Some("adm-token")).0, 404);
    // 20 requests a second per client: a burst of 60 meets 429s.
    let limited = (0..60).filter(|_| get(port, "/v1/rules", Some("adm-token")).0 == 429).count();
    assert!(limited > 0, "the client is held to its rate");
    drop(stdin);
}

#[test]
fn a_real_prometheus_scrapes_the_engine_and_a_query_returns_its_counters() {
    let dir = Dir::new("prometheus");
    let port = free_port();
    let (_engine, mut stdin) = live_engine(&dir.0, port, 100);
    feed(&mut stdin, 25);
    let prom_port = free_port();
    let conf = dir.0.join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tidings\n    authorization:\n      credentials: adm-token\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let prometheus = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("prometheus is missing: `bash scripts/test` installs it (apt-get install prometheus)");
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.tsdb.path={}", dir.0.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.0.join("prometheus.log")).unwrap());
    let _prometheus = Running::spawn(cmd);
    let t0 = Instant::now();
    loop {
        let (status, body) = get(prom_port, "/api/v1/query?query=sum(tidings_events_total)", None);
        if status == 200 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if v["data"]["result"][0]["value"][1] == "25" {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "Prometheus never returned the engine's 25 events (last answer {status}: {body}); its log:\n{}",
            std::fs::read_to_string(dir.0.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (_, up) = get(prom_port, "/api/v1/query?query=up", None);
    assert!(up.contains(r#""value":["#) && up.contains(r#","1"]"#), "the target is up: {up}");
    drop(stdin);
}

/// The count of the sample lines of `name` whose labels include every one of `labels`, summed
/// (the shards' lines of one journey step).
fn summed(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let lines: Vec<f64> = metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
        .collect();
    (!lines.is_empty()).then(|| lines.iter().sum())
}

#[test]
fn journey_instances_by_step_are_on_metrics_and_v1_journeys_as_subscribers_enter_and_leave() {
    let dir = Dir::new("journey_gauge");
    let port = free_port();
    let data = dir.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let subs: String = (0..3)
        .map(|i| {
            format!("{{\"msisdn\":\"1350000{i:04}\",\"brand\":\"easyown\",\"tier\":\"sub\",\"status\":\"active\"}}\n")
        })
        .collect();
    std::fs::write(data.join("subscribers.jsonl"), subs).unwrap();
    let (_engine, mut stdin) = live_engine_on(&dir.0, port, 100, 2, &format!("[data]\ndir = \"{}\"", data.display()));
    let ts = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).to_rfc3339();
    let menu = |i: usize| {
        format!(
            r#"{{"kind":"ivr","ts":"{ts}","msisdn":"1350000{i:04}","session":"s{i}","step":"menu","node":"1-3","hotline":"10086"}}"#
        )
    };
    let wait_for = |what: &str, want: f64| {
        let t0 = Instant::now();
        loop {
            let (status, body) = get(port, "/metrics", Some("adm-token"));
            assert_eq!(status, 200, "{body}");
            let labels = [r#"journey="topup_menu_abandoned""#, r#"step="in_menu""#];
            if summed(&body, "tidings_journey_instances", &labels) == Some(want) {
                return body;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "{what}: {want} in the top-up menu step:\n{body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Three callers go into the top-up menu: three instances wait for a top-up (10 minutes).
    for i in 0..3 {
        writeln!(stdin, "{}", menu(i)).unwrap();
    }
    stdin.flush().unwrap();
    let body = wait_for("three callers in the menu", 3.0);
    assert!(body.contains(r#"shard="0""#) && body.contains(r#"shard="1""#), "a line per shard:\n{body}");
    let help = [r#"journey="topup_menu_abandoned""#, r#"step="help""#];
    assert_eq!(summed(&body, "tidings_journey_instances", &help), Some(0.0), "every step is shown:\n{body}");
    assert!(!body.contains("13500000"), "no subscriber number in the metrics");
    // One of them tops up: their journey ends, the others still wait.
    writeln!(
        stdin,
        r#"{{"kind":"topup","ts":"{ts}","msisdn":"13500000001","amount_fen":5000,"balance_fen":5200,"channel":"card"}}"#
    )
    .unwrap();
    stdin.flush().unwrap();
    wait_for("one topped up", 2.0);
    // The same counts as JSON for the console, summed over the shards.
    let (status, body) = get(port, "/v1/journeys", Some("adm-token"));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let menu = v["journeys"].as_array().unwrap().iter().find(|j| j["journey"] == "topup_menu_abandoned").cloned();
    let menu = menu.unwrap_or_else(|| panic!("the journey is listed: {v}"));
    assert_eq!(menu["in_progress"], 2, "{v}");
    assert_eq!(
        menu["steps"],
        serde_json::json!([{"step": "in_menu", "in_progress": 2}, {"step": "help", "in_progress": 0}])
    );
    let all: Vec<&str> = v["journeys"].as_array().unwrap().iter().filter_map(|j| j["journey"].as_str()).collect();
    assert!(all.contains(&"retention_disconnect") && all.len() == 6, "every journey of the pack: {all:?}");
    drop(stdin);
}
