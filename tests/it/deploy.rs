//! Governed deploys over real HTTP against the running binary (issue 21): every step of the
//! flow and every refusal — a viewer cannot submit, an invalid pack is refused at submit with
//! `file:line:col`, a failing rule test blocks approval and deploy, an author cannot approve
//! their own change — a deploy and a rollback in force for the next event, and the audit log
//! whole after a SIGKILL and a restart, which runs the version last made live.

use crate::delivery::{Dir, Running, at, http_get, lines, port, send, start_live};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const LI: &str = "Bearer li-author-token-0001";
pub const ZHAO: &str = "Bearer zhao-viewer-token-01";
const ADM: &str = "Bearer adm";

fn wang() -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("wang:wang-password"))
}

/// `method path` with an `Authorization` header and a JSON body: (status, JSON answer).
pub fn call(port: u16, method: hyper::Method, path: &str, auth: &str, body: Option<Value>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = format!("http://127.0.0.1:{port}{path}");
    let headers = [("authorization", auth.to_string())];
    let body = body.map(|b| ("application/json", bytes::Bytes::from(b.to_string())));
    let r = rt.block_on(tidings::http::client::request(method, &url, &headers, body, Duration::from_secs(60))).unwrap();
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

pub fn post(port: u16, path: &str, auth: &str, body: Value) -> (u16, Value) {
    call(port, hyper::Method::POST, path, auth, Some(body))
}

pub fn get(port: u16, path: &str, auth: &str) -> Value {
    let (status, v) = call(port, hyper::Method::GET, path, auth, None);
    assert_eq!(status, 200, "{path}: {v}");
    v
}

pub const SHOP: &str = r#"- rule: store_thanks
  desc: A thank-you SMS after a store visit.
  on: [crm]
  condition: event.event == store_visit
  action:
    channel: sms
    template: "感谢您光临营业厅。【中国移动】"
  campaign: store_care
  priority: 30
  policy: { cap: "1 per 7d", quiet_hours: drop }
"#;

const SHOP_TESTS: &str = r#"- test: a_store_visit_is_thanked_once_a_week
  subscribers:
    - {msisdn: "13500000001", brand: gotone, tier: high}
  events:
    - {kind: crm, ts: "2026-11-24T10:00:00+08:00", msisdn: "13500000001", event: store_visit, attrs: {store: S1}}
    - {kind: crm, ts: "2026-11-25T10:00:00+08:00", msisdn: "13500000001", event: store_visit, attrs: {store: S1}}
  expect:
    - {rule: store_thanks, at: "2026-11-24T10:00:00+08:00", text_contains: "感谢您光临营业厅"}
    - {rule: store_thanks, at: "2026-11-25T10:00:00+08:00", suppressed: cap}
"#;

pub fn profile(m: &str, t: i64) -> String {
    format!(r#"{{"kind":"profile","ts":"{}","msisdn":"{m}","set":{{"status":"active","tier":"valuable"}}}}"#, at(t))
}

pub fn store_visit(m: &str, t: i64) -> String {
    format!(r#"{{"kind":"crm","ts":"{}","msisdn":"{m}","event":"store_visit","attrs":{{"store":"S1"}}}}"#, at(t))
}

/// The pack, recorded traffic for the backtest and the config of a live engine whose deploys
/// are governed (`deploy`: the rest of `[api.deploy]`) with an author, a viewer and an approver
/// with a password.
pub fn setup(dir: &Dir, port: u16, deploy: &str) -> PathBuf {
    let rules = dir.0.join("rules");
    std::fs::create_dir_all(rules.join("testdata")).unwrap();
    std::fs::write(rules.join("shop.yaml"), SHOP).unwrap();
    std::fs::write(rules.join("shop.tests.yaml"), SHOP_TESTS).unwrap();
    std::fs::write(rules.join("testdata/cells.jsonl"), "").unwrap();
    let events = dir.0.join("recorded.jsonl");
    let recorded: Vec<String> = (1..=3)
        .map(|i| {
            format!(
                r#"{{"kind":"crm","ts":"2026-11-20T1{i}:00:00+08:00","msisdn":"1390000000{i}","event":"store_visit","attrs":{{"store":"S1"}}}}"#
            )
        })
        .collect();
    std::fs::write(&events, recorded.join("\n") + "\n").unwrap();
    let hash = tidings::api::users::PasswordHash::make("wang-password", 1000).unwrap();
    let more = format!(
        r#"
[[api.users]]
name = "li"
role = "author"
token = "li-author-token-0001"

[[api.users]]
name = "zhao"
role = "viewer"
token = "zhao-viewer-token-01"

[[api.users]]
name = "wang"
role = "approver"
password_hash = "{hash}"

[api.deploy]
dir = "{store}"
{deploy}
"#,
        store = dir.0.join("deploy").display(),
        deploy = deploy.replace("EVENTS", &events.display().to_string()),
    );
    crate::support::live_config(&dir.0, &rules, port, &more)
}

/// The text of the thank-you SMS `m` got, once the engine has decided it.
pub fn thanks(out: &Path, m: &str) -> String {
    let t0 = Instant::now();
    loop {
        let found = lines(&out.join("actions.jsonl"))
            .into_iter()
            .find(|a| a["msisdn"] == m && a["rule"] == "store_thanks")
            .and_then(|a| a["text"].as_str().map(String::from));
        if let Some(text) = found {
            return text;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{m} never got the thank-you SMS");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn change_files(shop: &str) -> Value {
    json!({"shop.yaml": shop})
}

#[test]
fn governed_deploys_refuse_what_they_must_deploy_and_roll_back_live_and_audit_every_step_across_a_sigkill() {
    let dir = Dir::new("deploy");
    let port = port();
    let cfg = setup(&dir, port, "approvals = 1\nbacktest = [\"EVENTS\"]");
    let out = dir.0.join("out");
    let (mut engine, mut stdin) = start_live(&cfg, port);

    // The first start imported the config's files as the first version, live.
    let o = get(port, "/v1/deploy", ZHAO);
    let v1 = o["live"].as_str().unwrap().to_owned();
    assert_eq!(o["history"][0]["how"], "import", "{o}");
    assert_eq!(get(port, "/v1/rules", ZHAO)["pack"], v1.as_str());
    assert_eq!(get(port, "/v1/whoami", &wang())["role"], "approver", "a password user logs in with Basic");
    assert_eq!(call(port, hyper::Method::GET, "/v1/deploy", "Bearer nobody-at-all-000", None).0, 401);

    // A viewer cannot submit.
    let new_shop = SHOP.replace("感谢您光临营业厅", "【新】感谢您光临营业厅");
    let (s, r) = post(port, "/v1/deploy/changes", ZHAO, json!({"comment": "mine", "files": change_files(&new_shop)}));
    assert_eq!(s, 403, "{r}");
    assert!(r["error"].as_str().unwrap().contains("author role"), "{r}");

    // An invalid pack is refused at submit, each error at file:line:col; nothing is kept.
    let bad = SHOP.replace("event.event == store_visit", "event.evnt == store_visit");
    let (s, r) = post(port, "/v1/deploy/changes", LI, json!({"comment": "typo", "files": change_files(&bad)}));
    assert_eq!(s, 422, "{r}");
    let located = r["located"].as_array().unwrap();
    assert!(located.iter().any(|l| l.as_str().unwrap().starts_with("shop.yaml:4:")), "{r}");
    assert!(r["rendered"].as_str().unwrap().contains("shop.yaml:4:"), "{r}");
    assert!(get(port, "/v1/deploy/changes", ZHAO)["changes"].as_array().unwrap().is_empty());
    assert_eq!(get(port, "/v1/rules", ZHAO)["pack"], v1.as_str(), "the running rules are untouched");

    // A change whose own test fails: kept, but it can be neither approved nor deployed.
    let failing = SHOP.replace("感谢您光临营业厅", "谢谢光临");
    let (s, c) = post(port, "/v1/deploy/changes", LI, json!({"comment": "shorter", "files": change_files(&failing)}));
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["status"], "checks_failed", "{c}");
    assert_eq!(c["checks"]["tests"]["cases_failed"], 1, "{c}");
    assert!(
        c["checks"]["tests"]["failures"][0].as_str().unwrap().contains("a_store_visit_is_thanked_once_a_week"),
        "{c}"
    );
    let bad_id = c["id"].as_u64().unwrap();
    let (s, r) = post(port, &format!("/v1/deploy/changes/{bad_id}/approve"), &wang(), json!({"comment": "ok"}));
    assert_eq!(s, 409, "{r}");
    assert!(r["error"].as_str().unwrap().contains("failed its checks"), "{r}");
    let (s, r) = post(port, &format!("/v1/deploy/changes/{bad_id}/deploy"), LI, json!({}));
    assert_eq!(s, 409, "{r}");

    // A good change: checks pass, the backtest compares contacts per rule and campaign.
    let (s, c) =
        post(port, "/v1/deploy/changes", LI, json!({"comment": "a new mark", "files": change_files(&new_shop)}));
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["status"], "pending", "{c}");
    assert_eq!(c["files"]["changed"], json!(["shop.yaml"]));
    // A new mark in the wording: a deploy drops nothing of the running state.
    assert_eq!(c["checks"]["reload"]["lines"], json!([]), "{c}");
    assert_eq!(c["checks"]["reload"]["restarted"], json!([]), "{c}");
    let bt = &c["checks"]["backtest"];
    assert_eq!(bt["passed"], true, "{c}");
    assert_eq!(bt["old"], v1.as_str());
    assert_eq!(bt["rules"][0]["rule"], "store_thanks", "{bt}");
    assert_eq!((bt["rules"][0]["old_sent"].as_u64(), bt["rules"][0]["new_sent"].as_u64()), (Some(3), Some(3)), "{bt}");
    assert_eq!(bt["campaigns"][0]["campaign"], "store_care", "{bt}");
    let id = c["id"].as_u64().unwrap();
    let v2 = c["version"].as_str().unwrap().to_owned();
    // The backtest's engine publishes nothing: the live funnel has no day of the recorded traffic.
    assert_eq!(get(port, "/v1/funnel?from=2026-11-20&to=2026-11-20", ZHAO), json!({"days": []}));

    // Its author cannot approve it, a viewer cannot either, and it is not deployed unapproved.
    let (s, r) = post(port, &format!("/v1/deploy/changes/{id}/approve"), LI, json!({}));
    assert_eq!(s, 403, "{r}");
    assert!(r["error"].as_str().unwrap().contains("cannot approve their own"), "{r}");
    assert_eq!(post(port, &format!("/v1/deploy/changes/{id}/approve"), ZHAO, json!({})).0, 403);
    let (s, r) = post(port, &format!("/v1/deploy/changes/{id}/deploy"), LI, json!({}));
    assert_eq!(s, 409, "{r}");
    assert!(r["error"].as_str().unwrap().contains("waiting for approval"), "{r}");

    // Approved by another person; a viewer cannot deploy; the author does.
    let (s, r) = post(port, &format!("/v1/deploy/changes/{id}/approve"), &wang(), json!({"comment": "看过了"}));
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "approved");
    assert_eq!(post(port, &format!("/v1/deploy/changes/{id}/deploy"), ZHAO, json!({})).0, 403);
    let (s, r) = post(port, &format!("/v1/deploy/changes/{id}/deploy"), LI, json!({"comment": "go"}));
    assert_eq!(s, 200, "{r}");
    assert_eq!(get(port, "/v1/rules", ZHAO)["pack"], v2.as_str());
    send(&mut stdin, &[profile("13700000001", -40), store_visit("13700000001", -30)]);
    assert!(thanks(&out, "13700000001").starts_with("【新】"), "the deployed version decides the next event");

    // The files no longer go live on their own: reload is refused while deploys are governed.
    assert_eq!(post(port, "/v1/rules/reload", ADM, json!({})).0, 409);

    // Rollback: not by an author; by an approver, in one step, to the version before.
    assert_eq!(post(port, "/v1/deploy/rollback", LI, json!({})).0, 403);
    let (s, r) = post(port, "/v1/deploy/rollback", &wang(), json!({"comment": "back"}));
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["version"], v1.as_str());
    send(&mut stdin, &[profile("13700000002", -25), store_visit("13700000002", -20)]);
    let text = thanks(&out, "13700000002");
    assert!(text.starts_with("感谢您光临营业厅"), "the rolled-back version decides the next event: {text}");

    // SIGKILL, then a restart: the audit log has every step, and the live version is the one
    // rolled back to.
    let before = get(port, "/v1/audit", ZHAO)["entries"].as_array().unwrap().clone();
    let steps: Vec<String> =
        before.iter().map(|e| format!("{} {}", e["step"].as_str().unwrap(), e["outcome"].as_str().unwrap())).collect();
    let expected = [
        "import ok",
        "submit refused",
        "submit refused",
        "submit ok",
        "approve refused",
        "deploy refused",
        "submit ok",
        "approve refused",
        "approve refused",
        "deploy refused",
        "approve ok",
        "deploy refused",
        "deploy ok",
        "rollback refused",
        "rollback ok",
    ];
    assert_eq!(steps, expected, "{before:#?}");
    let deployed = &before[12];
    assert_eq!((deployed["user"].as_str(), deployed["version"].as_str()), (Some("li"), Some(v2.as_str())));
    assert_eq!(deployed["from_version"], v1.as_str());
    assert_eq!(deployed["files"]["changed"], json!(["shop.yaml"]));
    assert_eq!(deployed["checks"]["backtest"]["rules"][0]["rule"], "store_thanks");
    assert_eq!(before[11]["user"], "zhao");
    assert!(before[2]["diagnostics"][0].as_str().unwrap().starts_with("shop.yaml:4:"), "{}", before[2]);
    let (_, metrics) = http_get(port, "/metrics", Some(&ZHAO[7..]));
    assert!(metrics.contains(r#"tidings_deploy_steps_total{step="approve",outcome="refused"} 3"#), "{metrics}");
    engine.child().kill().unwrap();
    let _ = engine.child().wait();
    drop(stdin);

    let (engine, mut stdin) = start_live(&cfg, port);
    let after = get(port, "/v1/audit", ZHAO)["entries"].as_array().unwrap().clone();
    assert_eq!(after, before, "the audit log survives the kill whole");
    let o = get(port, "/v1/deploy", ZHAO);
    assert_eq!(o["live"], v1.as_str(), "the restart runs the version rolled back to");
    assert_eq!(o["history"].as_array().unwrap().len(), 3);
    assert_eq!(get(port, "/v1/rules", ZHAO)["pack"], v1.as_str());

    // Any earlier version, after the restart too: forward again to the deployed change.
    let (s, r) = post(port, "/v1/deploy/rollback", &wang(), json!({"version": &v2[..8], "comment": "forward"}));
    assert_eq!(s, 200, "{r}");
    send(&mut stdin, &[profile("13700000003", -15), store_visit("13700000003", -10)]);
    assert!(thanks(&out, "13700000003").starts_with("【新】"));
    let last = get(port, "/v1/audit?since=15", ZHAO)["entries"].as_array().unwrap().clone();
    assert_eq!(last.len(), 1);
    assert_eq!((last[0]["step"].as_str(), last[0]["seq"].as_u64()), (Some("rollback"), Some(16)));
    drop(stdin);
    let done: Running = engine;
    let out = done.output();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // As if the engine had stopped after the last rollback's audit entry and before making its
    // version live: the next start says which version is live after all.
    let live_json = dir.0.join("deploy/live.json");
    let mut live: Value = serde_json::from_str(&std::fs::read_to_string(&live_json).unwrap()).unwrap();
    live["version"] = v1.as_str().into();
    live["history"].as_array_mut().unwrap().pop();
    std::fs::write(&live_json, live.to_string()).unwrap();
    let (engine, stdin) = start_live(&cfg, port);
    let last = get(port, "/v1/audit?since=16", ZHAO)["entries"].as_array().unwrap().clone();
    assert_eq!(
        (last.len(), last[0]["step"].as_str(), last[0]["version"].as_str()),
        (1, Some("recover"), Some(v1.as_str()))
    );
    assert!(last[0]["reason"].as_str().unwrap().contains(&format!("before {v2} went live")), "{}", last[0]);
    drop(stdin);
    assert!(engine.output().status.success());
}

#[test]
fn a_lab_without_approvals_deploys_a_checked_working_copy_at_once_and_refuses_the_rest() {
    let dir = Dir::new("deploy-lab");
    let port = port();
    let cfg = setup(&dir, port, "approvals = 0");
    let rules = dir.0.join("rules");
    let (engine, mut stdin) = start_live(&cfg, port);
    let v1 = get(port, "/v1/deploy", ZHAO)["live"].as_str().unwrap().to_owned();

    // Nothing to roll back to yet; the live files again are no change; only rules.paths.
    let (s, r) = post(port, "/v1/deploy/rollback", ADM, json!({}));
    assert_eq!(s, 409, "{r}");
    let (s, r) = post(port, "/v1/deploy/changes", LI, json!({"comment": "same", "path": rules}));
    assert_eq!(s, 409, "{r}");
    let (s, r) = post(port, "/v1/deploy/changes", LI, json!({"comment": "elsewhere", "path": "/etc"}));
    assert_eq!(s, 400, "{r}");
    assert_eq!(
        post(port, "/v1/deploy/changes", LI, json!({"files": change_files(SHOP)})).0,
        400,
        "a comment is required"
    );

    // The working copy changes on disk: with governed deploys that alone changes nothing.
    let lab = SHOP.replace("感谢您光临营业厅", "【实验】感谢您光临营业厅");
    std::fs::write(rules.join("shop.yaml"), &lab).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(get(port, "/v1/rules", ZHAO)["pack"], v1.as_str(), "the file watcher does not deploy");

    // Submitted: checked, approved by nobody (none needed), the backtest skipped and saying so.
    let (s, c) = post(port, "/v1/deploy/changes", LI, json!({"comment": "lab mark", "path": rules}));
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["status"], "approved", "{c}");
    assert!(c["checks"]["backtest"]["skipped"].as_str().is_some(), "{c}");
    let id = c["id"].as_u64().unwrap();
    let (s, r) = post(port, &format!("/v1/deploy/changes/{id}/approve"), &wang(), json!({}));
    assert_eq!(s, 409, "{r}");
    assert!(r["error"].as_str().unwrap().contains("no approval is needed"), "{r}");

    // A whole pack in the body (over the server's usual 64 KiB) is taken from an author only.
    let big = format!("{SHOP}# {}\n", "注".repeat(40_000));
    let whole = json!({"comment": "whole", "base": "none", "files": {"shop.yaml": big, "shop.tests.yaml": SHOP_TESTS}});
    assert_eq!(post(port, "/v1/deploy/changes", ZHAO, whole.clone()).0, 413, "not from a viewer");
    let (s, r) = post(port, "/v1/deploy/changes", LI, whole);
    assert_eq!(s, 201, "{r}");
    assert_eq!(post(port, &format!("/v1/deploy/changes/{}/reject", r["id"]), LI, json!({})).0, 200);

    // Another change, withdrawn by its author: it cannot be deployed.
    let extra = "- list: lab_stores\n  items: [S1]\n";
    let (s, c2) = post(port, "/v1/deploy/changes", LI, json!({"comment": "a list", "files": {"extra.yaml": extra}}));
    assert_eq!(s, 201, "{c2}");
    assert_eq!(c2["files"]["added"], json!(["extra.yaml"]));
    let id2 = c2["id"].as_u64().unwrap();
    assert_eq!(post(port, &format!("/v1/deploy/changes/{id2}/reject"), LI, json!({"comment": "not now"})).0, 200);
    let (s, r) = post(port, &format!("/v1/deploy/changes/{id2}/deploy"), LI, json!({}));
    assert_eq!(s, 409, "{r}");

    // Made over the live version before the next deploy: stale after it.
    let (s, c3) =
        post(port, "/v1/deploy/changes", LI, json!({"comment": "a list again", "files": {"extra.yaml": extra}}));
    assert_eq!(s, 201, "{c3}");
    let id3 = c3["id"].as_u64().unwrap();

    let (s, r) = post(port, &format!("/v1/deploy/changes/{id}/deploy"), LI, json!({}));
    assert_eq!(s, 200, "{r}");
    let (s, r) = post(port, &format!("/v1/deploy/changes/{id3}/deploy"), LI, json!({}));
    assert_eq!(s, 409, "{r}");
    assert!(r["error"].as_str().unwrap().contains("submit it again over the live version"), "{r}");
    let v2 = get(port, "/v1/deploy", ZHAO)["live"].as_str().unwrap().to_owned();
    let (s, text) = http_get(port, &format!("/v1/deploy/versions/{v2}/files/shop.yaml"), Some(&LI[7..]));
    assert_eq!((s, text), (200, lab.clone()), "a version's file reads back");
    assert_eq!(http_get(port, &format!("/v1/deploy/versions/{v2}/files/../live.json"), Some(&LI[7..])).0, 404);
    send(&mut stdin, &[profile("13700000009", -30), store_visit("13700000009", -20)]);
    assert!(thanks(&dir.0.join("out"), "13700000009").starts_with("【实验】"));
    let steps: Vec<String> = get(port, "/v1/audit", ZHAO)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["step"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    let expected = [
        "import ok",
        "rollback refused",
        "submit refused",
        "submit refused",
        "submit refused",
        "submit ok",
        "approve refused",
        "submit ok",
        "reject ok",
        "submit ok",
        "reject ok",
        "deploy refused",
        "submit ok",
        "deploy ok",
        "deploy refused",
    ];
    assert_eq!(steps, expected);
    drop(stdin);
    assert!(engine.output().status.success());
}

#[test]
fn a_user_with_a_bad_password_hash_is_a_config_error_at_start() {
    let dir = Dir::new("deploy-badhash");
    let cfg = setup(&dir, port(), "approvals = 1");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let broken = text.replacen("password_hash = \"$pbkdf2-sha256$i=1000$", "password_hash = \"$pbkdf2-sha256$i=10$", 1);
    assert_ne!(text, broken);
    std::fs::write(&cfg, broken).unwrap();
    let out = crate::delivery::tidings(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("user wang: password_hash: the iterations"), "{err}");
}
