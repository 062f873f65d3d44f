//! The automatic checks a submitted rule-pack change goes through before anyone may approve it:
//! it compiles (every error located `file:line:col`), the pack's own test cases pass, and a
//! backtest replays recorded traffic through the live pack and the new one and counts, per rule
//! and per campaign, the contacts each makes and those the change gains and loses.
//!
//! The backtest runs the same machinery as `tidings diff` ([`crate::report::diff::Replay`]). It
//! reads the recorded files the config names (`[api.deploy] backtest`) and the subscribers of the
//! reference data directory afresh each time (the live engine's own subscriber table is its
//! shards' and is not copied: at ten million subscribers a copy would double the memory).

use super::store::Pack;
use crate::engine::EngineOptions;
use crate::refdata::{RefData, Subscribers};
use crate::report::diff;
use crate::rules::carry::Carry;
use crate::rules::diag::Diagnostic;
use crate::rules::{LoadOptions, RuleSet};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the checks run with.
pub struct Checks {
    /// The reference data rules compile against (the live engine's).
    pub refdata: Arc<RefData>,
    pub load: LoadOptions,
    /// The reference data directory the backtest reads its subscribers from (none: no profiles).
    pub data_dir: Option<PathBuf>,
    pub unknown_subscribers: usize,
    /// One shard, the run's policy and time settings.
    pub opts: EngineOptions,
    /// Recorded event files for the backtest; none: the backtest is skipped (and says so).
    pub backtest: Vec<PathBuf>,
}

/// A pack's rule files compiled, or every error (each located) when it does not compile.
pub fn compile(pack: &Pack, refdata: &RefData, opts: &LoadOptions) -> Result<(RuleSet, usize), Vec<Diagnostic>> {
    let (set, diags) = diagnose(pack, refdata, opts);
    let warnings = diags.iter().filter(|d| !d.is_error()).count();
    match set {
        Some(set) => Ok((set, warnings)),
        None => Err(diags.into_iter().filter(Diagnostic::is_error).collect()),
    }
}

/// A pack's rule files compiled (none when there is an error) and every diagnostic, errors and
/// warnings, as `tidings validate` reports them: what the console shows as an author types.
pub fn diagnose(pack: &Pack, refdata: &RefData, opts: &LoadOptions) -> (Option<RuleSet>, Vec<Diagnostic>) {
    let (files, mut diags) = pack.rule_files();
    if files.is_empty() {
        let none = "the pack has no rule files (*.yaml that are not *.tests.yaml or test data)";
        diags.push(Diagnostic::new(crate::rules::diag::Code::E001, "(pack)", "", Default::default(), none));
        return (None, diags);
    }
    let loaded = crate::rules::compile(files, Some(refdata), opts);
    diags.extend(loaded.diagnostics);
    let set = loaded.rules.filter(|_| !diags.iter().any(Diagnostic::is_error));
    (set, diags)
}

/// Diagnostics as the API answers them: structured, and rendered as `validate` prints them.
pub fn diagnostics_json(diags: &[Diagnostic]) -> Value {
    json!({
        "diagnostics": diags,
        "rendered": diags.iter().map(|d| d.render()).collect::<String>(),
        "located": diags.iter().map(|d| format!("{}:{}:{}: {:?} {}", d.file, d.line, d.col, d.code, d.message)).collect::<Vec<_>>(),
    })
}

impl Checks {
    /// The checks after a pack compiled (with `warnings`): its own tests (its files written in
    /// `dir`) and the backtest of `new` against the live version, as a change keeps them.
    pub fn after_compile(&self, dir: &Path, warnings: usize, live: (&str, &Pack), new: (&str, Arc<RuleSet>)) -> Value {
        let tests = self.tests(dir);
        // The live version compiled once, for both the reload report and the backtest.
        let old = compile(live.1, &self.refdata, &self.load)
            .map(|(set, _)| Arc::new(set))
            .map_err(|_| format!("the live version {} no longer compiles against the reference data", live.0));
        let reload = match &old {
            Ok(old) => Carry::between(old, &new.1).report(),
            Err(e) => json!({"error": e}),
        };
        let backtest = self.backtest((live.0, old), new);
        let passed = tests["passed"] == true && backtest["passed"] == true;
        json!({
            "passed": passed,
            "validate": {"passed": true, "warnings": warnings},
            "tests": tests,
            "reload": reload,
            "backtest": backtest,
        })
    }

    /// The pack's own test cases, run from the version's directory `dir` (its names shown
    /// relative to it).
    pub fn tests(&self, dir: &Path) -> Value {
        let report = crate::packtest::run(&[dir.to_path_buf()], &self.load);
        let prefix = format!("{}/", dir.display());
        let strip = |s: &str| s.replace(&prefix, "");
        let failures: Vec<String> = report.lines.iter().filter(|l| !l.starts_with("ok ")).map(|l| strip(l)).collect();
        let diags: Vec<String> = report.diagnostics.iter().map(|d| strip(&d.render())).collect();
        let passed = report.failed == 0 && report.diagnostics.iter().all(|d| !d.is_error());
        json!({
            "passed": passed,
            "cases_passed": report.passed,
            "cases_failed": report.failed,
            "failures": failures,
            "diagnostics": diags,
        })
    }

    /// The backtest: the recorded traffic through `old` (the live pack, compiled, or why it
    /// does not compile) and `new`, compared.
    fn backtest(&self, old: (&str, Result<Arc<RuleSet>, String>), new: (&str, Arc<RuleSet>)) -> Value {
        if self.backtest.is_empty() {
            return json!({"passed": true, "skipped": "no recorded traffic configured ([api.deploy] backtest)"});
        }
        match old.1.and_then(|set| self.run_backtest((old.0, set), new)) {
            Ok(v) => v,
            Err(e) => json!({"passed": false, "error": e}),
        }
    }

    fn run_backtest(&self, old: (&str, Arc<RuleSet>), new: (&str, Arc<RuleSet>)) -> Result<Value, String> {
        let mut subs = match &self.data_dir {
            Some(d) => RefData::load_dir(d).map_err(|e| format!("reading the reference data: {e}"))?.1,
            None => Subscribers::default(),
        };
        subs.unknown_cap = Some(self.unknown_subscribers);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let replay =
            diff::Replay { refdata: Arc::clone(&self.refdata), subscribers: &subs, opts: &self.opts, stop: &stop };
        let mut sides = Vec::new();
        for rules in [old.1, new.1] {
            let streams = self
                .backtest
                .iter()
                .map(|f| {
                    crate::source::file(f, Default::default()).map_err(|e| format!("opening {}: {e}", f.display()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let input = crate::source::Merge::new(streams);
            sides.push(replay.side(input, rules).map_err(|e| format!("the backtest run failed: {e}"))?);
        }
        let inputs: Vec<String> = self.backtest.iter().map(|p| p.display().to_string()).collect();
        let d = diff::diff(&sides[0], &sides[1], (old.0.into(), new.0.into()), inputs, self.opts.offset);
        let example = |c: &diff::Change| {
            let masked = crate::util::Msisdn::parse(&c.msisdn).map_or_else(|| "?".into(), |m| m.masked());
            json!({"id": c.id, "msisdn": masked, "rule": c.rule, "campaign": c.campaign, "ts": c.ts, "other": c.other})
        };
        Ok(json!({
            "passed": true,
            "inputs": d.inputs,
            "old": d.old,
            "new": d.new,
            "old_sent": d.old_sent,
            "new_sent": d.new_sent,
            "gained": d.gained.len(),
            "lost": d.lost.len(),
            "rules": d.rules,
            "campaigns": d.campaigns,
            "examples_gained": d.gained.iter().take(5).map(example).collect::<Vec<_>>(),
            "examples_lost": d.lost.iter().take(5).map(example).collect::<Vec<_>>(),
        }))
    }
}
