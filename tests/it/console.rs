//! The console in a real headless Chromium (issue 21 §4): `tests/console/story.js` drives the
//! page that the tidings binary serves — behind a reverse proxy that strips `[api] base_path` —
//! through an operator's day: an author logs in, plants an error in a rule file and sees the
//! diagnostic at its line, fixes it, runs the checks and submits; an approver approves and
//! deploys; events are fed and the funnel moves; a rollback makes the earlier version live.
//! This test starts the engine, feeds its stdin when the script asks, and checks what the
//! script saw against the engine's own answers.

use crate::delivery::{Dir, http_get, port, send, start_live};
use crate::deploy::{LI, SHOP, ZHAO, get, post, profile, setup, store_visit, thanks};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BASE: &str = "/tidings";

const VISITS: &str = r#"- journey: visit_followup
  desc: A store visitor is followed for three days.
  start:
    on: [crm]
    condition: event.event == store_visit
  expire_after: 7d
  steps:
    - step: waiting
      next:
        - {after: 3d, goto: end}
"#;

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

#[test]
fn an_operator_edits_submits_approves_deploys_and_rolls_back_in_the_console_in_a_headless_chromium() {
    assert!(Path::new("/usr/bin/chromium").exists(), "/usr/bin/chromium is missing: run `bash scripts/test`");
    crate::smpp::npm_ci(&console_dir(), "puppeteer-core");
    let dir = Dir::new("console");
    let port = port();
    let cfg = setup(&dir, port, "approvals = 1\nbacktest = [\"EVENTS\"]");
    // A journey beside the shop's rule: a visitor waits three days in it (the campaigns page
    // shows how many wait).
    std::fs::write(dir.0.join("rules/visits.yaml"), VISITS).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replacen("[api]\n", &format!("[api]\nbase_path = \"{BASE}\"\n"), 1)).unwrap();
    let (mut engine, mut stdin) = start_live(&cfg, port);
    let v1 = get(port, "/v1/deploy", LI)["live"].as_str().unwrap().to_owned();

    // A proxy that keeps the prefix reaches the same endpoint; the page names its base path.
    let (status, page) = http_get(port, &format!("{BASE}/console/"), None);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!(r#"<meta name="tidings-base" content="{BASE}">"#)), "{page}");
    assert_eq!(http_get(port, &format!("{BASE}/v1/whoami"), Some(&LI[7..])).0, 200);
    assert_eq!(http_get(port, "/console/app.js", None).0, 200, "the files are public");
    assert_eq!(http_get(port, &format!("{BASE}/v1/whoami"), None).0, 401, "the data is not");

    // What the editor calls: a draft checked, kept nowhere and not audited; an author's tool.
    let bad = json!({"files": {"shop.yaml": SHOP.replace("event.event ==", "event.evnt ==")}});
    assert_eq!(post(port, "/v1/deploy/validate", ZHAO, bad.clone()).0, 403, "a viewer does not check drafts");
    let (s, r) = post(port, &format!("{BASE}/v1/deploy/validate"), LI, bad);
    assert_eq!(s, 200, "{r}");
    assert_eq!((r["ok"].as_bool(), r["errors"].as_u64()), (Some(false), Some(1)), "{r}");
    let d = &r["diagnostics"][0];
    assert_eq!(
        (d["code"].as_str(), d["file"].as_str(), d["line"].as_u64()),
        (Some("E011"), Some("shop.yaml"), Some(4)),
        "{r}"
    );
    assert!(d["hint"].as_str().unwrap().contains("event.event"), "the hint `validate` gives: {r}");
    assert!(r["rendered"].as_str().unwrap().contains("shop.yaml:4:14: error[E011]"), "{r}");
    let good = json!({"files": {"shop.yaml": SHOP.replace("感谢", "多谢")}});
    let (s, r) = post(port, "/v1/deploy/try", LI, good);
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["checks"]["tests"]["cases_failed"], 1, "the draft's own test fails on the new text: {r}");
    assert_eq!(r["checks"]["backtest"]["rules"][0]["rule"], "store_thanks", "{r}");
    assert!(get(port, "/v1/deploy/changes", LI)["changes"].as_array().unwrap().is_empty(), "nothing kept");
    assert_eq!(get(port, "/v1/audit", LI)["entries"].as_array().unwrap().len(), 1, "nothing audited but the import");

    let shots = dir.0.join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut node = Command::new("node")
        .arg(console_dir().join("story.js"))
        .current_dir(console_dir())
        .envs([
            ("TIDINGS", format!("http://127.0.0.1:{port}")),
            ("BASE", BASE.into()),
            ("AUTHOR", "li".into()),
            ("AUTHOR_SECRET", LI[7..].into()),
            ("APPROVER", "wang".into()),
            ("APPROVER_SECRET", "wang-password".into()),
            ("FILE", "shop.yaml".into()),
            ("PLANT_FROM", "event.event == store_visit".into()),
            ("PLANT_TO", "event.evnt == store_visit".into()),
            ("CHANGE_FROM", "感谢您光临营业厅".into()),
            ("CHANGE_TO", "【新】感谢您光临营业厅".into()),
            ("CAMPAIGN", "store_care".into()),
            ("SHOTS", shots.display().to_string()),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node (tests/console/story.js)");
    let mut to_node = node.stdin.take().unwrap();
    let mut result = Value::Null;
    let mut fed = false;
    for line in BufReader::new(node.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        eprintln!("story: {line}");
        if line == "FEED" {
            // The deployed version decides the next event: its new mark is in the SMS.
            send(&mut stdin, &[profile("13700000001", -40), store_visit("13700000001", -30)]);
            let out = dir.0.join("out");
            assert!(thanks(&out, "13700000001").starts_with("【新】"), "the version deployed in the console decides");
            writeln!(to_node, "fed").unwrap();
            fed = true;
        } else if let Some(r) = line.strip_prefix("RESULT ") {
            result = serde_json::from_str(r).unwrap();
        }
    }
    let status = node.wait().unwrap();
    assert!(status.success(), "the story failed: {result:#}");
    assert!(fed, "{result:#}");
    assert_eq!(result["pageErrors"], Value::Null, "no script error in the page: {result:#}");

    // The planted error: `event.evnt` on line 4 of shop.yaml, marked there and listed with its code.
    let line = SHOP.lines().position(|l| l.contains("event.event == store_visit")).unwrap() + 1;
    assert_eq!(line, 4);
    let d = &result["diagnostic"];
    assert_eq!(d["gutter"], serde_json::json!([line]), "{result:#}");
    assert_eq!(d["listed"][0]["line"], line, "{result:#}");
    let listed = d["listed"][0]["text"].as_str().unwrap();
    assert!(listed.contains(&format!("shop.yaml:{line}:")) && listed.contains("evnt"), "{listed}");
    assert!(d["listed"][0]["code"].as_str().unwrap().starts_with('E'), "{result:#}");
    assert_eq!(result["fixed_marks"], 0, "fixed: the mark is gone");
    assert!(result["tried"].as_str().unwrap().contains("store_thanks"), "the backtest's rows: {result:#}");
    // A wording change: a deploy would carry every part of the running state over.
    assert!(result["reload"].as_str().unwrap().starts_with("Everything carries over"), "{result:#}");

    // The change went through: deployed, then rolled back to the first version.
    let change = get(port, &format!("/v1/deploy/changes/{}", result["change"]), LI);
    assert_eq!(change["status"], "deployed", "{change}");
    assert_eq!(change["approvals"][0]["user"], "wang");
    assert_eq!(result["live_after_deploy"], change["version"], "{result:#}");
    assert_eq!((result["rollback_to"].as_str(), result["live_after_rollback"].as_str()), (Some(&*v1), Some(&*v1)));
    assert_eq!(get(port, "/v1/rules", LI)["pack"], v1.as_str(), "the engine runs the version rolled back to");
    let audit = result["audit"].as_array().unwrap();
    for step in ["rollback ok", "deploy ok", "approve ok", "submit ok", "import ok"] {
        assert!(audit.iter().any(|s| s == step), "{step}: {audit:?}");
    }
    assert!(result["zh_nav"].as_str().unwrap().contains("营销活动"), "{result:#}");

    // The campaigns page lists the journeys in progress: the visitor fed waits in the journey.
    let journeys = result["journeys"].as_str().unwrap();
    assert!(journeys.contains("visit_followup (1)") && journeys.contains("waiting"), "{result:#}");

    // The funnel moved after the events were fed.
    assert_eq!(result["funnel"]["status"].as_u64(), Some(200), "GET /v1/funnel: {result:#}");
    assert!(result["funnel"]["after"].as_u64() > result["funnel"]["before"].as_u64(), "{result:#}");
    for page in ["login", "editor-error", "editor-checks", "change", "campaigns", "changes", "audit", "campaigns-zh"] {
        assert!(shots.join(format!("console-{page}.png")).exists(), "screenshot {page}");
    }
    if let Ok(keep) = std::env::var("TIDINGS_CONSOLE_SHOTS") {
        for e in std::fs::read_dir(&shots).unwrap().flatten() {
            std::fs::copy(e.path(), Path::new(&keep).join(e.file_name())).unwrap();
        }
    }
    engine.child().kill().unwrap();
    let _ = engine.child().wait();
}
