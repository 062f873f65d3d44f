//! `tidings validate` and `tidings test`: a rule pack checked, and its own test cases run.

use anyhow::{Result, bail};
use clap::ValueEnum;
use std::path::{Path, PathBuf};
use tidings::refdata::RefData;
use tidings::rules::{self, LoadOptions};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Checks the rule pack (with `data`, against that reference data too) and, when asked, a
/// config — and then the pack as that config runs it (its `engine.max_window`, its
/// unsubscribe keywords).
pub fn validate(paths: &[PathBuf], format: Format, data: Option<&Path>, config: Option<PathBuf>) -> Result<i32> {
    let mut opts = LoadOptions::default();
    if let Some(c) = config {
        match tidings::topology::ConfigFile::load(&c).map(|cfg| cfg.load_options()) {
            Ok(Ok(o)) => opts = o,
            Ok(Err(e)) => {
                eprintln!("{}: {e}", c.display());
                return Ok(1);
            }
            Err(e) => {
                eprintln!("{e}");
                return Ok(1);
            }
        }
    }
    let refdata = data.map(RefData::load_dir).transpose()?.map(|(r, _)| r);
    let loaded = rules::load(paths, refdata.as_ref(), &opts);
    match format {
        Format::Text => {
            for d in &loaded.diagnostics {
                eprint!("{}", d.render());
            }
            let warnings = loaded.diagnostics.len() - loaded.errors();
            match &loaded.rules {
                Some(r) => {
                    let shadow = r.rules.iter().filter(|r| r.shadow).count();
                    let shadow =
                        if shadow > 0 { format!(" ({shadow} in shadow mode: never sent)") } else { String::new() };
                    // A journey's steps that contact are rules of their own; counted with the journeys.
                    let own = r.rules.len() - r.steps.iter().filter(|s| s.rule.is_some()).count();
                    let mut extra = String::new();
                    if !r.journeys.is_empty() {
                        extra += &format!(", {} journeys ({} steps)", r.journeys.len(), r.steps.len());
                    }
                    if !r.derives.is_empty() {
                        extra += &format!(", {} derived attributes", r.derives.len());
                    }
                    eprintln!("ok: {own} rules{extra} in {} files{shadow}, {} warning(s)", r.files.len(), warnings)
                }
                None => eprintln!("{} error(s), {} warning(s)", loaded.errors(), warnings),
            }
        }
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": loaded.rules.is_some(),
                "errors": loaded.errors(),
                "diagnostics": loaded.diagnostics,
            }))?
        ),
    }
    Ok(if loaded.rules.is_some() { 0 } else { 1 })
}

pub fn test(paths: &[PathBuf]) -> Result<i32> {
    let report = tidings::packtest::run(paths, &LoadOptions::default());
    for d in &report.diagnostics {
        eprint!("{}", d.render());
    }
    for l in &report.lines {
        println!("{l}");
    }
    println!("{} passed, {} failed", report.passed, report.failed);
    if report.passed + report.failed == 0 {
        bail!(
            "no test cases found under {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(if report.failed == 0 { 0 } else { 1 })
}
