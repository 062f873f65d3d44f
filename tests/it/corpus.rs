//! The corpus of nasty inputs under `tests/corpus/`, each with its exact expected outcome in
//! its file name (`<outcome>__<what it is>.<ext>`), run as a normal test:
//!
//! - `events/*.line`: one raw line for the decoder (any bytes; a final newline is not part of
//!   it). Outcome `accepted` or the dead-letter reason (`bad_json`, `bad_utf8`, ...).
//! - `rules/*.yaml`: a rule file loaded alone (any bytes, read as the loader reads them). Outcome
//!   `ok` (it loads) or the distinct error codes it must produce, joined by `+` (`E010+E012`);
//!   every diagnostic must point inside it.
//! - `expr/*.expr`: a condition, put in a one-rule pack (`fuzz::pack`). Outcome as for rules.
//!
//! Every input the fuzz targets (`fuzz.rs`) ever failed on belongs here, with what it must do.

use crate::fuzz::{inside, pack};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tidings::event::Decoder;
use tidings::rules::{self, LoadOptions};

fn cases(dir: &str, ext: &str) -> Vec<(String, String, PathBuf)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus")).join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let (expect, what) = stem.split_once("__").unwrap_or_else(|| panic!("{stem}: name it <outcome>__<what>"));
            (expect.to_string(), what.to_string(), p)
        })
        .collect();
    out.sort_by(|a, b| a.2.cmp(&b.2));
    assert!(out.len() >= 10, "the {} corpus has only {} cases", dir.display(), out.len());
    out
}

/// The distinct error codes of loading `text` as one file, or `ok`; diagnostics must lie inside.
fn outcome(name: &str, text: &str) -> String {
    let loaded = std::panic::catch_unwind(|| {
        rules::compile(vec![(name.to_string(), text.to_string())], None, &LoadOptions::default())
    })
    .unwrap_or_else(|_| panic!("{name}: the loader panicked"));
    for d in &loaded.diagnostics {
        assert!(inside(text, d.line, d.col), "{name}: {}:{} is outside the file\n{}", d.line, d.col, d.render());
    }
    let codes: BTreeSet<String> =
        loaded.diagnostics.iter().filter(|d| d.is_error()).map(|d| format!("{:?}", d.code)).collect();
    assert_eq!(loaded.rules.is_none(), !codes.is_empty(), "{name}: refused exactly when there are errors");
    if codes.is_empty() { "ok".into() } else { codes.into_iter().collect::<Vec<_>>().join("+") }
}

/// Runs `got` on every case of a corpus folder; fails with every case whose outcome differs.
fn check_all(dir: &str, ext: &str, got: impl Fn(&Path) -> String) {
    let failures: Vec<String> = cases(dir, ext)
        .into_iter()
        .filter_map(|(expect, _, path)| {
            let got = got(&path);
            (got != expect).then(|| format!("{}: expected {expect}, got {got}", path.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_events_decode_to_their_expected_outcome() {
    let decoder = Decoder::default();
    check_all("events", "line", |path| {
        let mut raw = std::fs::read(path).unwrap();
        if raw.last() == Some(&b'\n') {
            raw.pop();
        }
        match std::panic::catch_unwind(|| decoder.decode(&raw, "corpus", 1)) {
            Err(_) => "panic".to_string(),
            Ok(None) => "blank".to_string(),
            Ok(Some(Ok(e))) => {
                let m = e.msisdn.full();
                assert!((5..=15).contains(&m.len()) && m.bytes().all(|c| c.is_ascii_digit()), "{path:?}: msisdn");
                "accepted".to_string()
            }
            Ok(Some(Err(d))) => {
                assert!(!d.detail.is_empty(), "{path:?}: a dead letter says why");
                d.reason.as_str().to_string()
            }
        }
    });
}

#[test]
fn corpus_rule_files_load_to_their_expected_outcome() {
    check_all("rules", "yaml", |path| {
        // As the loader reads a file: bytes that are not UTF-8 are an error of their own.
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        match rules::read::decode(&name, bytes.clone()) {
            Ok(text) => outcome(&name, &text),
            Err(d) => {
                assert!(inside(&String::from_utf8_lossy(&bytes), d.line, d.col), "{name}: {}", d.render());
                format!("{:?}", d.code)
            }
        }
    });
}

#[test]
fn corpus_conditions_check_to_their_expected_outcome() {
    check_all("expr", "expr", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let condition = text.strip_suffix('\n').unwrap_or(&text);
        outcome("fuzz.yaml", &pack(condition, "1 per 7d", "2h", "您好"))
    });
}

/// `streams/*.jsonl`: a stream of events through the engine with the event-time guard as a run
/// has it by default (`engine.max_ahead` one day, `engine.leap_quorum` 3). Outcome `ok` (no dead
/// letter) or the dead letters' reasons in input order, joined by `+` (`future+future`).
#[test]
fn corpus_streams_keep_their_expected_dead_letters() {
    use std::sync::{Arc, atomic::AtomicBool};
    use tidings::engine::{self, EngineOptions, GuardConfig};
    let rules = rules::compile(vec![("empty.yaml".into(), String::new())], None, &LoadOptions::default())
        .rules
        .expect("an empty pack loads");
    let rules = Arc::new(rules);
    check_all("streams", "jsonl", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let decoder = Decoder::default();
        let input = text.lines().enumerate().filter_map(|(i, l)| decoder.decode(l.as_bytes(), "corpus", i as u64 + 1));
        let opts =
            EngineOptions { guard: GuardConfig { max_ahead: tidings::time::DAY, quorum: 3 }, ..Default::default() };
        let mut sink = tidings::sink::Memory::default();
        let summary = engine::run(
            input,
            Arc::clone(&rules),
            Arc::default(),
            Default::default(),
            &opts,
            &mut sink,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(summary.events + summary.dead_total(), text.lines().count() as u64, "{path:?}: every line counted");
        let reasons: Vec<&str> = sink.dead.iter().map(|d| d.reason.as_str()).collect();
        if reasons.is_empty() { "ok".into() } else { reasons.join("+") }
    });
}
