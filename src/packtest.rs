//! Rule-pack tests as data: `*.tests.yaml` files next to the rules, each a list of cases —
//! subscribers and events in, expected actions (and suppressions) out — run through the real
//! decoder and engine with event time under the test's control (`until:` moves the clock).
//!
//! ```yaml
//! - test: station_low_balance
//!   data: testdata              # reference data dir, relative to this file (default)
//!   subscribers: [{msisdn: "13900000001", brand: gotone, tier: high}]
//!   events:
//!     - {kind: location, ts: "2026-11-24T09:30:00+08:00", msisdn: "13900000001", cell: "C1", trigger: attach}
//!   until: "2026-11-24T12:00:00+08:00"
//!   expect:
//!     - {rule: travel_low_balance, msisdn: "13900000001", channel: sms, text_contains: 营业厅}
//!   only: [travel_low_balance]  # compare only these rules' decisions (default: all)
//! ```
//!
//! An order's expectation names its offer: `{rule: accept_12593, channel: order, offer: "12593"}`.
//!
//! A shadow rule's decision (`mode: shadow`) matches only an expectation that says
//! `mode: shadow`, so a case cannot mistake a would-be action for a contact made.
//!
//! A journey's contacts are named by their step (`retention_disconnect.call`). An expectation
//! or `only:` entry that names no rule of the pack fails the case at its line with the name
//! meant (the nearest rule, or the journey's steps), before anything runs.

use crate::contact::{Decision, Outcome};
use crate::engine::{self, EngineOptions};
use crate::event::Decoder;
use crate::refdata::{RefData, SubscriberRecord};
use crate::rules::diag::Diagnostic;
use crate::rules::yaml::{self, Node};
use crate::rules::{LoadOptions, is_test_file};
use crate::sink::Memory;
use crate::time::{format_ts, parse_ts};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use yaml_rust2::scanner::TScalarStyle;

#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    /// One line per case: `ok name` or `FAIL name: reasons`.
    pub lines: Vec<String>,
    /// Load problems (rule or test files).
    pub diagnostics: Vec<Diagnostic>,
}

/// Converts a YAML node to JSON the way YAML reads scalars (plain numbers and booleans typed,
/// quoted scalars strings).
pub fn to_json(n: &Node) -> serde_json::Value {
    use serde_json::Value;
    match n {
        Node::Scalar { value, style, .. } => {
            if *style != TScalarStyle::Plain {
                return Value::String(value.clone());
            }
            match value.as_str() {
                "" | "~" | "null" => Value::Null,
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                v => v
                    .parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| v.parse::<f64>().map(Value::from))
                    .unwrap_or_else(|_| Value::String(v.to_string())),
            }
        }
        Node::Seq { items, .. } => Value::Array(items.iter().map(to_json).collect()),
        Node::Map { entries, .. } => {
            Value::Object(entries.iter().map(|(k, v)| (k.as_str().unwrap_or("").to_string(), to_json(v))).collect())
        }
    }
}

/// Finds the test files under the given paths.
pub fn test_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> =
                std::fs::read_dir(p).into_iter().flatten().filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            for e in entries {
                if e.file_name().and_then(|n| n.to_str()) != Some("testdata") {
                    walk(&e, out);
                }
            }
        } else if p.file_name().and_then(|n| n.to_str()).is_some_and(is_test_file) {
            out.push(p.to_path_buf());
        }
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out);
    }
    out
}

/// Runs every test case found under `paths` against the rules under `paths`.
pub fn run(paths: &[PathBuf], opts: &LoadOptions) -> Report {
    let mut report = Report::default();
    // Fail early and clearly when the pack itself does not load.
    let plain = crate::rules::load(paths, None, opts);
    if plain.errors() > 0 {
        report.diagnostics = plain.diagnostics;
        report.failed += 1;
        report.lines.push("FAIL rule pack: does not load (see diagnostics)".into());
        return report;
    }
    for file in test_files(paths) {
        run_file(&file, paths, opts, &mut report);
    }
    report
}

fn run_file(file: &Path, rule_paths: &[PathBuf], opts: &LoadOptions, report: &mut Report) {
    let name = file.display().to_string();
    let mut src = match std::fs::read(file).map(|b| crate::rules::read::decode(&name, b)) {
        Ok(Ok(s)) => s,
        Ok(Err(d)) => {
            report.failed += 1;
            report.diagnostics.push(d);
            report.lines.push(format!("FAIL {name}: not UTF-8"));
            return;
        }
        Err(e) => {
            report.failed += 1;
            report.lines.push(format!("FAIL {name}: cannot read: {e}"));
            return;
        }
    };
    crate::rules::read::strip_bom(&mut src);
    let docs = match yaml::parse(&src) {
        Ok(p) if !p.duplicates.is_empty() => {
            report.failed += 1;
            report.diagnostics.extend(p.duplicates.iter().map(|d| crate::rules::read::duplicate(&name, &src, d)));
            report.lines.push(format!("FAIL {name}: a key given twice"));
            return;
        }
        Ok(p) => p.docs,
        Err(e) => {
            report.failed += 1;
            report.diagnostics.push(crate::rules::read::syntax(&name, &src, e));
            report.lines.push(format!("FAIL {name}: YAML syntax"));
            return;
        }
    };
    let Some(Node::Seq { items, .. }) = docs.first() else { return };
    let dir = file.parent().unwrap_or(Path::new("."));
    for case in items {
        let label = case.get("test").and_then(Node::as_str).unwrap_or("(unnamed)").to_string();
        match run_case(case, dir, rule_paths, opts, &name, &src) {
            Ok(()) => {
                report.passed += 1;
                report.lines.push(format!("ok   {label}"));
            }
            Err(problems) => {
                report.failed += 1;
                report.lines.push(format!(
                    "FAIL {label} ({name}:{})\n{}",
                    case.pos().line,
                    problems.iter().map(|p| format!("       - {p}")).collect::<Vec<_>>().join("\n")
                ));
            }
        }
    }
}

fn run_case(
    case: &Node,
    dir: &Path,
    rule_paths: &[PathBuf],
    opts: &LoadOptions,
    file: &str,
    src: &str,
) -> Result<(), Vec<String>> {
    let allowed = ["test", "desc", "data", "subscribers", "events", "until", "expect", "only", "shards"];
    if let Node::Map { entries, .. } = case {
        let bad: Vec<String> = entries
            .iter()
            .filter_map(|(k, _)| k.as_str())
            .filter(|k| !allowed.contains(k))
            .map(|k| format!("unknown key `{k}` (allowed: {})", allowed.join(", ")))
            .collect();
        if !bad.is_empty() {
            return Err(bad);
        }
    }
    let data_dir = dir.join(case.get("data").and_then(Node::as_str).unwrap_or("testdata"));
    let (refdata, mut subs) = if data_dir.is_dir() {
        RefData::load_dir(&data_dir).map_err(|e| vec![e.to_string()])?
    } else {
        Default::default()
    };
    for s in seq(case.get("subscribers")) {
        let mut j = to_json(s);
        if let Some(m) = j.get_mut("msisdn") {
            if let Some(n) = m.as_u64() {
                *m = serde_json::Value::String(n.to_string());
            }
        }
        let sub = SubscriberRecord::from_json_line(&j.to_string())
            .map_err(|e| vec![format!("{file}:{}: subscriber: {e}", s.pos().line)])?;
        subs.insert(&sub);
    }
    let loaded = crate::rules::load(rule_paths, Some(&refdata), opts);
    let Some(rules) = loaded.rules else {
        return Err(loaded.diagnostics.iter().filter(|d| d.is_error()).map(Diagnostic::render).collect());
    };
    let names: Vec<String> = rules.rules.iter().map(|r| r.name.to_string()).collect();
    let lines: Vec<String> = seq(case.get("events")).map(|e| to_json(e).to_string()).collect();
    let event_lines: Vec<u32> = seq(case.get("events")).map(|e| e.pos().line as u32).collect();
    let until = match case.get("until").and_then(Node::as_str) {
        Some(t) => Some(parse_ts(t).map_err(|e| vec![format!("until: {e}")])?),
        None => None,
    };
    let shards = case.get("shards").and_then(Node::as_str).and_then(|s| s.parse().ok()).unwrap_or(1);
    let eopts = EngineOptions { shards, until, ..EngineOptions::default() };
    let decoder = Decoder::default();
    let mut sink = Memory::default();
    let input =
        lines.iter().enumerate().filter_map(|(i, l)| decoder.decode(l.as_bytes(), file, u64::from(event_lines[i])));
    let rules = Arc::new(rules);
    engine::run(input, Arc::clone(&rules), Arc::new(refdata), subs, &eopts, &mut sink, &AtomicBool::new(false))
        .map_err(|e| vec![e.to_string()])?;
    let mut problems: Vec<String> = sink
        .dead
        .iter()
        .map(|d| format!("{}:{}: event is a dead letter ({}): {}", d.source, d.line, d.reason.as_str(), d.detail))
        .collect();
    problems.extend(sink.decisions.iter().filter_map(|d| over_parts(d, &rules)));
    let only: Option<Vec<String>> =
        case.get("only").map(|o| seq(Some(o)).filter_map(|n| n.as_str().map(str::to_string)).collect());
    let mut left: Vec<&Decision> =
        sink.decisions.iter().filter(|d| only.as_ref().is_none_or(|o| o.iter().any(|r| *r == *d.rule_name))).collect();
    // An expectation with a misspelt key would silently match more than meant.
    let expect_keys = [
        "rule",
        "msisdn",
        "channel",
        "campaign",
        "at",
        "text",
        "text_contains",
        "queue",
        "offer",
        "suppressed",
        "detail_contains",
        "deferred_until",
        "mode",
    ];
    let mut bad_keys = Vec::new();
    for exp in seq(case.get("expect")) {
        if let Node::Map { entries, .. } = exp {
            for k in entries.iter().filter_map(|(k, _)| k.as_str()).filter(|k| !expect_keys.contains(k)) {
                bad_keys.push(format!(
                    "{file}:{}: expect: unknown key `{k}` (allowed: {})",
                    exp.pos().line,
                    expect_keys.join(", ")
                ));
            }
        }
    }
    // An expectation (or `only:`) naming no rule of the pack could never be met: say so, with
    // the name meant, rather than "not decided".
    let named = seq(case.get("expect")).filter_map(|e| e.get("rule")).chain(seq(case.get("only")));
    for n in named {
        if let Some(why) = n.as_str().and_then(|name| unknown_rule(name, &names)) {
            bad_keys.push(format!("{file}:{}: {why}", n.pos().line));
        }
    }
    if !bad_keys.is_empty() {
        return Err(bad_keys);
    }
    for exp in seq(case.get("expect")) {
        let want = to_json(exp);
        match left.iter().position(|d| matches(d, &want)) {
            Some(i) => {
                left.remove(i);
            }
            None => problems.push(format!("{file}:{}: expected {} — not decided", exp.pos().line, want)),
        }
    }
    for d in left {
        problems.push(format!("unexpected {}", describe(d)));
    }
    let _ = src;
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

/// Why a test may not name `name` as a rule, if it may not: no rule of the pack (`names`) has
/// that name. A journey's contacts are its steps' (`journey.step`).
fn unknown_rule(name: &str, names: &[String]) -> Option<String> {
    if names.iter().any(|n| n == name) {
        return None;
    }
    let steps_of = |journey: &str| -> String {
        let prefix = format!("{journey}.");
        let steps: Vec<String> = names.iter().filter(|n| n.starts_with(&prefix)).map(|s| format!("`{s}`")).collect();
        steps.join(", ")
    };
    let steps = steps_of(name);
    if !steps.is_empty() {
        return Some(format!("no rule `{name}`: a journey's contacts are named by their step ({steps})"));
    }
    let journeys = names.iter().filter_map(|n| n.split_once('.').map(|(j, _)| j));
    let hint = match crate::util::nearest(name, names.iter().map(String::as_str)) {
        Some(n) => format!("; did you mean `{n}`?"),
        None => crate::util::nearest(name, journeys)
            .map(|j| format!("; did you mean a step of journey `{j}` ({})?", steps_of(j)))
            .unwrap_or_default(),
    };
    Some(format!("no rule `{name}` in the pack{hint}"))
}

fn seq(n: Option<&Node>) -> impl Iterator<Item = &Node> {
    let items: &[Node] = match n {
        Some(Node::Seq { items, .. }) => items,
        _ => &[],
    };
    items.iter()
}

/// What is wrong with an SMS the case sends, if its text takes more messages than its rule's
/// `parts:` allows (each part is billed as one SMS).
fn over_parts(d: &Decision, rules: &crate::rules::RuleSet) -> Option<String> {
    let text = d.text.as_deref().filter(|_| d.channel == crate::contact::Channel::Sms && d.would_send())?;
    let allowed = usize::from(rules.rules.get(d.rule as usize)?.parts);
    let parts = crate::contact::sms_parts(text);
    (parts > allowed).then(|| {
        format!(
            "{} is {} characters, {parts} messages, where its rule allows {allowed} (`parts:` in its action): {}",
            describe(d),
            crate::contact::sms_length(text),
            if allowed == 1 { "shorten it or allow more" } else { "shorten it or raise `parts:`" },
        )
    })
}

fn describe(d: &Decision) -> String {
    let off = EngineOptions::default().offset;
    let what = match d.outcome {
        Outcome::Sent => "action".to_string(),
        Outcome::Suppressed(r) => format!("suppression ({})", r.as_str()),
        Outcome::Deferred(t) => format!("deferral (until {})", format_ts(t, off)),
    };
    format!(
        "{}{what}: rule {} for {} at {} text {:?}",
        if d.shadow { "shadow " } else { "" },
        d.rule_name,
        d.msisdn.full(),
        format_ts(d.ts, off),
        d.text.as_deref().or(d.script.as_deref()).unwrap_or("")
    )
}

fn matches(d: &Decision, want: &serde_json::Value) -> bool {
    let Some(obj) = want.as_object() else { return false };
    let s = |k: &str| obj.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    if s("rule").is_some_and(|r| r != *d.rule_name) {
        return false;
    }
    if s("msisdn").is_some_and(|m| m != d.msisdn.full()) {
        return false;
    }
    if s("channel").is_some_and(|c| c != d.channel.as_str()) {
        return false;
    }
    if s("campaign").is_some_and(|c| c != *d.campaign) {
        return false;
    }
    if let Some(at) = s("at") {
        if parse_ts(&at).ok() != Some(d.ts) {
            return false;
        }
    }
    let body = d.text.as_deref().or(d.script.as_deref()).unwrap_or("");
    if s("text").is_some_and(|t| t != body) {
        return false;
    }
    if s("text_contains").is_some_and(|t| !body.contains(&t)) {
        return false;
    }
    if s("queue").is_some_and(|q| Some(q.as_str()) != d.queue.as_deref()) {
        return false;
    }
    if s("offer").is_some_and(|o| Some(o.as_str()) != d.offer()) {
        return false;
    }
    // What the deciding policy item said (`by reply "TD" to 10086`).
    if s("detail_contains").is_some_and(|t| !d.detail.as_deref().unwrap_or("").contains(&t)) {
        return false;
    }
    // A shadow rule's decision matches only an expectation that says `mode: shadow`.
    if s("mode").as_deref().unwrap_or("live") != d.mode() {
        return false;
    }
    match (s("suppressed"), s("deferred_until"), d.outcome) {
        (None, None, Outcome::Sent) => true,
        (Some(r), None, Outcome::Suppressed(got)) => r == got.as_str(),
        (None, Some(t), Outcome::Deferred(until)) => parse_ts(&t).ok() == Some(until),
        _ => false,
    }
}
