//! Rule files that used to take the engine down or slip through `validate` (issue 16), through
//! the real binary: nesting thousands of levels deep, a key given twice, durations and amounts
//! that wrap an i64, a byte-order mark, bytes that are not UTF-8. Each is refused (or, the BOM,
//! accepted) with `file:line:col` and a stable code, and nothing aborts. The live reload of the
//! same files is in `reload.rs`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tidings() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tidings"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tidings-rulefiles-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `- - - ... x`: a list nested `levels` deep (2 bytes a level).
pub fn deep(levels: usize) -> String {
    format!("{}x\n", "- ".repeat(levels))
}

fn validate_json(file: &Path) -> (Output, Value) {
    let out = tidings().args(["validate", "--format", "json"]).arg(file).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

/// (code, line, col) of every diagnostic in a `validate --format json` answer.
fn located(v: &Value) -> Vec<(String, u64, u64)> {
    v["diagnostics"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|d| {
            (d["code"].as_str().unwrap_or("").to_string(), d["line"].as_u64().unwrap(), d["col"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn validate_refuses_5000_and_50000_deep_rule_files_with_a_located_error() {
    let dir = tmp("deep");
    for levels in [5_000, 50_000] {
        let file = dir.join(format!("deep{levels}.yaml"));
        std::fs::write(&file, deep(levels)).unwrap();
        let out = tidings().arg("validate").arg(&file).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{levels} levels: exit 1, not an abort\n{}",
            &err[..err.len().min(2000)]
        );
        let want = format!("deep{levels}.yaml:1:129: error[E006]: the file is nested more than 64 levels deep");
        assert!(err.contains(&want), "{levels}: {}", &err[..err.len().min(2000)]);
        assert!(err.lines().any(|l| l.trim_end().ends_with('^')), "a caret under the place");
        // The same through `tidings test`, which reads the pack the same way.
        let out = tidings().arg("test").arg(&dir).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("error[E006]"));
        std::fs::remove_file(&file).unwrap();
    }
}

#[test]
fn validate_reports_a_key_given_twice_at_both_places() {
    let dir = tmp("dup");
    let file = dir.join("dup.yaml");
    // The second `action:` has a channel that does not exist: it used to pass unseen.
    std::fs::write(
        &file,
        "- rule: r\n  on: [usage]\n  condition: true\n  action: { channel: sms, template: x }\n  campaign: c\n  action: { channel: fax, template: x }\n",
    )
    .unwrap();
    let (out, v) = validate_json(&file);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(located(&v), vec![("E007".to_string(), 6, 3)], "{v}");
    let msg = v["diagnostics"][0]["message"].as_str().unwrap();
    assert!(msg.contains("`action`") && msg.contains("dup.yaml:4:3"), "the first place is named: {msg}");
}

#[test]
fn validate_refuses_durations_and_amounts_that_would_wrap_with_their_places() {
    let dir = tmp("wrap");
    let file = dir.join("wrap.yaml");
    std::fs::write(
        &file,
        r#"- rule: late
  on: [usage]
  condition: true
  action: { channel: sms, template: x }
  timer: { after: 106751991160d }
- rule: stale
  on: [usage]
  condition: true
  action: { channel: sms, template: x }
  policy: { expire_after: 9223372036854775807ms }
- rule: rich
  on: [topup]
  condition: event.amount_fen > 100000000 CNY * 100000000000
  action: { channel: sms, template: x }
- rule: capped
  on: [usage]
  condition: true
  action: { channel: sms, template: x }
  policy: { cap: "1 per 40000d" }
- rule: ok_at_the_limit
  on: [usage]
  condition: now - state.last_topup_at > 36525d and event.charge_fen < 10000000000 CNY
  action: { channel: sms, template: x }
  timer: { after: 36525d }
  policy: { expire_after: 36525d }
"#,
    )
    .unwrap();
    let (out, v) = validate_json(&file);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        located(&v),
        vec![
            ("E008".to_string(), 5, 19),
            ("E008".to_string(), 10, 27),
            ("E008".to_string(), 13, 33),
            ("E008".to_string(), 19, 18),
        ],
        "{v}"
    );
    let text = v.to_string();
    assert!(text.contains("longer than 100 years"), "{text}");
    assert!(text.contains("overflows"), "{text}");
}

#[test]
fn validate_accepts_a_byte_order_mark_and_locates_bytes_that_are_not_utf8() {
    let dir = tmp("utf8");
    let rule = "- rule: r\n  on: [usage]\n  condition: true\n  action: { channel: sms, template: x }\n";
    let bom = dir.join("bom.yaml");
    std::fs::write(&bom, [&b"\xEF\xBB\xBF"[..], rule.as_bytes()].concat()).unwrap();
    let out = tidings().arg("validate").arg(&bom).output().unwrap();
    assert!(out.status.success(), "a BOM is skipped: {}", String::from_utf8_lossy(&out.stderr));

    // "中文" in GBK in a description, on line 3 after five characters.
    let gbk = dir.join("gbk.yaml");
    std::fs::write(&gbk, b"- rule: r\n  on: [usage]\n  desc: \xD6\xD0\xCE\xC4\n  condition: true\n  action: { channel: sms, template: x }\n")
        .unwrap();
    let (out, v) = validate_json(&gbk);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(located(&v), vec![("E001".to_string(), 3, 9)], "{v}");
    assert!(v["diagnostics"][0]["message"].as_str().unwrap().contains("0xD6"), "{v}");
}
