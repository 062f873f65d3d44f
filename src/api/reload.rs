//! Hot reload of the rule files: [`Reloader`] builds a new rule set off to the side and hands it
//! to the live engine, which swaps it in between two batches and keeps every subscriber's state;
//! [`watch_rules`] reloads on SIGHUP and when a file changes. `POST /v1/rules/reload` ([`super::admin`])
//! and the deploy flow ([`super::deploy`]) go through the same [`Reloader`].

use std::sync::Arc;

/// What `GET /v1/rules` reports about the loaded rule set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RulesInfo {
    /// Checksum of the rule files as loaded (the rule set's version).
    pub version: String,
    pub files: Vec<String>,
    pub rules: usize,
    pub loaded_at: String,
    /// With governed deploys: the pack version (of the version store) that is live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack: Option<String>,
}

/// A rule set handed to the live engine: the version it replaced, its own, and what the swap
/// drops of the running state (journey steps, timers, derived attributes and windows the new
/// set does not carry over).
pub struct Swapped {
    pub previous: String,
    pub info: RulesInfo,
    pub carried: crate::rules::carry::Carry,
}

/// Hot reload: builds a new rule set off to the side from the configured files and, when it has
/// no error, hands it to the live engine, which swaps it in between two batches and keeps every
/// subscriber's state. A pack with errors is refused with its diagnostics; the old rules keep
/// running.
pub struct Reloader {
    pub paths: Vec<std::path::PathBuf>,
    pub refdata: Arc<crate::refdata::RefData>,
    pub opts: crate::rules::LoadOptions,
    pub requests: std::sync::mpsc::Sender<Arc<crate::rules::RuleSet>>,
    pub wake: crate::source::Feed,
    /// What is loaded now (for `GET /v1/rules`), and the set itself (what a reload is
    /// compared with: see [`Carry`](crate::rules::carry::Carry)).
    pub current: std::sync::Mutex<(RulesInfo, Arc<crate::rules::RuleSet>)>,
}

impl Reloader {
    /// Loads, checks and compiles the rule files; on success swaps the set into the engine and
    /// returns what [`Reloader::swap`] does; else the error diagnostics.
    pub fn reload(&self) -> Result<Swapped, Vec<crate::rules::diag::Diagnostic>> {
        let loaded = crate::rules::load(&self.paths, Some(&self.refdata), &self.opts);
        let Some(set) = loaded.rules else {
            crate::telemetry::rules_reload(false);
            return Err(loaded.diagnostics.into_iter().filter(|d| d.is_error()).collect());
        };
        self.swap(set, None).ok_or_else(Vec::new)
    }

    /// Hands a compiled rule set (`pack`: its version in the deploy store) to the live engine,
    /// which swaps it in between two batches; returns the previous version, the new one and
    /// what the swap drops of the running state, or `None` when the engine is not taking rule
    /// sets.
    pub fn swap(&self, set: crate::rules::RuleSet, pack: Option<&str>) -> Option<Swapped> {
        let info = RulesInfo {
            version: set.version.to_string(),
            files: set.files.iter().map(|f| f.to_string()).collect(),
            rules: set.rules.len(),
            loaded_at: chrono::Utc::now().to_rfc3339(),
            pack: pack.map(String::from),
        };
        let set = Arc::new(set);
        let sent =
            self.requests.send(Arc::clone(&set)).is_ok() && self.wake.try_send(Some(("control", Vec::new()))).is_ok();
        if !sent {
            crate::telemetry::rules_reload(false);
            return None;
        }
        crate::telemetry::rules_reload(true);
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let carried = crate::rules::carry::Carry::between(&cur.1, &set);
        let (previous, _) = std::mem::replace(&mut *cur, (info.clone(), set));
        Some(Swapped { previous: previous.version, info, carried })
    }

    /// Names the deploy store's version of the rules loaded at start.
    pub fn set_pack(&self, pack: &str) {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).0.pack = Some(pack.into());
    }

    /// The rule files' modification times, to notice a change.
    pub fn stamp(&self) -> Vec<(std::path::PathBuf, Option<std::time::SystemTime>)> {
        let mut files = Vec::new();
        for p in &self.paths {
            collect_yaml(p, &mut files);
        }
        files.sort();
        files.into_iter().map(|f| (f.clone(), std::fs::metadata(&f).and_then(|m| m.modified()).ok())).collect()
    }
}

fn collect_yaml(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            collect_yaml(&e.path(), out);
        }
    } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        out.push(p.to_path_buf());
    }
}

/// Reloads on SIGHUP and when a rule file changes (checked every `every`), logging the outcome.
pub async fn watch_rules(reloader: Arc<Reloader>, every: std::time::Duration) {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut last = reloader.stamp();
    let mut tick = tokio::time::interval(every);
    loop {
        let why = tokio::select! {
            Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
            _ = tick.tick() => {
                let now = reloader.stamp();
                if now == last { continue; }
                last = now;
                "a rule file changed"
            }
        };
        let r = reloader.clone();
        match tokio::task::spawn_blocking(move || r.reload()).await {
            Ok(Ok(Swapped { previous, info, carried })) => {
                eprintln!(
                    "tidings: rules reloaded ({why}): version {previous} -> {} ({} rules)",
                    info.version, info.rules
                );
                carried.log("reload");
            }
            Ok(Err(diags)) => {
                eprintln!("tidings: rules NOT reloaded ({why}): the files have errors; the running rules stay");
                for d in diags {
                    eprint!("{}", d.render());
                }
            }
            Err(_) => {}
        }
    }
}
