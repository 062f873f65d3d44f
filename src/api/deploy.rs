//! Governed deploys of the rule pack over the admin API: **submit** (an author) → automatic
//! checks ([`super::checks`]: compile, the pack's tests, a backtest) → **approve** or **reject**
//! (someone else with the approver role; `[api.deploy] approvals = 0` for a lab) → **deploy**
//! (hot reload through the [`Reloader`], subscriber state kept) → **rollback** to any version
//! that was live before, in one step. Every step, and every refusal of one, is in the audit log
//! ([`super::audit`]) before it is answered; versions, changes and what is live are kept on disk
//! ([`super::store`]) so a restart runs the version last deployed and can still roll back.
//!
//! What can never happen: a change that failed a check approved or deployed; a change approved
//! by its own author; the running rules touched by a step that fails (a deploy compiles the
//! version off to the side first and swaps only a set without errors).
//!
//! ```text
//! GET  /v1/deploy                         live version, its history, versions, changes
//! GET  /v1/deploy/changes[/N]             the changes, or one with its checks
//! GET  /v1/deploy/versions/ID             a version's manifest
//! GET  /v1/deploy/versions/ID/files/NAME  one of its files
//! POST /v1/deploy/changes                 submit {comment, files: {name: text}, remove, base} or {comment, path}
//! POST /v1/deploy/validate                a draft (a submit's body) compiled: its diagnostics, kept nowhere
//! POST /v1/deploy/try                     a draft through the submit's checks (tests, backtest), kept nowhere
//! POST /v1/deploy/changes/N/approve       {comment}
//! POST /v1/deploy/changes/N/reject        {comment}
//! POST /v1/deploy/changes/N/deploy        {comment}
//! POST /v1/deploy/rollback                {version (default: the one live before), comment}
//! GET  /v1/audit[?since=SEQ]              the audit log
//! ```

use super::audit::Audit;
use super::checks::{self, Checks};
use super::reload::Reloader;
use super::store::{Approval, Change, Live, LiveEntry, Pack, Status, Store, now};
use super::users::{Role, User};
use crate::http::{Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// `[api.deploy]`: rule-pack changes go through submit, checks, approval and deploy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// Versions, changes and the audit log. "" = `deploy/` in the checkpoint directory, or else
    /// in the output directory.
    #[serde(default)]
    pub dir: PathBuf,
    /// Approvals a change needs, each from a different approver who is not its author: 1, or 0
    /// for a lab (a change whose checks pass may be deployed at once).
    #[serde(default = "one")]
    pub approvals: u32,
    /// Recorded event files (JSON Lines) the backtest replays through the live pack and the
    /// submitted one; none = no backtest (the check says it was skipped).
    #[serde(default)]
    pub backtest: Vec<PathBuf>,
}

fn one() -> u32 {
    1
}

/// The store and the audit log, changed together under one lock.
struct State {
    store: Store,
    audit: Audit,
}

impl State {
    /// Appends a step to the audit log (synced) and counts it on `/metrics`.
    fn log(&mut self, entry: Value) -> std::io::Result<Value> {
        let step = match entry["step"].as_str() {
            Some("submit") => "submit",
            Some("approve") => "approve",
            Some("reject") => "reject",
            Some("deploy") => "deploy",
            Some("rollback") => "rollback",
            _ => "other",
        };
        let ok = entry["outcome"] == "ok";
        let e = self.audit.append(entry)?;
        crate::telemetry::deploy_step(step, ok);
        Ok(e)
    }
}

pub struct Deploy {
    state: Mutex<State>,
    /// The directories a submit may name by `path` (those of `rules.paths`): an author's working
    /// copy, not any directory of the host.
    roots: Vec<PathBuf>,
    approvals: u32,
    checks: Checks,
    reloader: Arc<Reloader>,
}

/// What a step answers: a response, its audit entry already written.
type Answer = Result<Response, Response>;

fn io_error(e: std::io::Error) -> Response {
    Response::error(500, &format!("the deploy store: {e}"))
}

impl Deploy {
    /// Opens the store at `dir`; at the first start the rule files the engine started with
    /// (`initial`) become the first version, live, imported in the audit log.
    pub fn open(
        cfg: &DeployConfig,
        dir: &std::path::Path,
        initial: &[PathBuf],
        reloader: Arc<Reloader>,
        checks: Checks,
    ) -> std::io::Result<Deploy> {
        let store = Store::open(dir)?;
        let mut audit = Audit::open(&dir.join("audit.jsonl"))?;
        let live = match store.live()? {
            Some(l) => l,
            None => {
                let pack = Pack::read(initial)?;
                let comment = "the rule files the engine started with (rules.paths)";
                let m = store.save_version(&pack, "tidings", comment)?;
                let files: Vec<&String> = pack.files.keys().collect();
                audit.append(json!({
                    "step": "import", "outcome": "ok", "user": "tidings", "role": "admin",
                    "version": m.id, "hash": m.hash, "comment": comment, "files": {"added": files},
                }))?;
                let live = Live {
                    version: m.id.clone(),
                    history: vec![LiveEntry {
                        version: m.id,
                        time: now(),
                        user: "tidings".into(),
                        how: "import".into(),
                        change: None,
                    }],
                };
                store.save_live(&live)?;
                live
            }
        };
        // A stop between a deploy's audit entry and its making the version live: say so.
        let last = audit.read(0)?.into_iter().rev().find(|e| {
            e["outcome"] == "ok" && matches!(e["step"].as_str(), Some("import" | "deploy" | "rollback" | "recover"))
        });
        if let Some(e) = last.filter(|e| e["version"] != live.version.as_str()) {
            let why = format!(
                "the engine stopped after entry {} was written and before {} went live: {} is live",
                e["seq"],
                e["version"].as_str().unwrap_or("?"),
                live.version
            );
            audit.append(json!({"step": "recover", "outcome": "ok", "user": "tidings", "role": "admin", "version": live.version, "reason": why}))?;
        }
        reloader.set_pack(&live.version);
        let roots = initial.iter().filter(|p| p.is_dir()).filter_map(|p| p.canonicalize().ok()).collect();
        Ok(Deploy { state: Mutex::new(State { store, audit }), roots, approvals: cfg.approvals, checks, reloader })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves a deploy-flow or audit request from an identified user (blocking: checks compile
    /// and replay; call it off the async runtime).
    pub fn handle(&self, user: &User, req: &Request) -> Response {
        let (get, post) = (req.method == hyper::Method::GET, req.method == hyper::Method::POST);
        let path = req.path.trim_end_matches('/');
        let parts: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
        let answer = match (parts.as_slice(), get, post) {
            (["audit"], true, _) => self.audit(req),
            (["deploy"], true, _) => self.overview(user),
            (["deploy", "changes"], true, _) => {
                self.lock().store.changes().map(|c| Response::json(200, &json!({"changes": c}))).map_err(io_error)
            }
            (["deploy", "changes", n], true, _) => self.with_change(n, |_, c| Ok(Response::json(200, &json!(c)))),
            (["deploy", "versions", id, "files", name @ ..], true, _) => self.file(id, &name.join("/")),
            (["deploy", "versions", id], true, _) => match self.lock().store.manifest(id) {
                Ok(Some(m)) => Ok(Response::json(200, &json!(m))),
                Ok(None) => Err(Response::error(404, "no such version")),
                Err(e) => Err(io_error(e)),
            },
            (["deploy", "changes"], _, true) => self.submit(user, req),
            (["deploy", "validate"], _, true) => self.draft(user, req, false),
            (["deploy", "try"], _, true) => self.draft(user, req, true),
            (["deploy", "changes", n, step @ ("approve" | "reject" | "deploy")], _, true) => {
                let body = match body::<StepBody>(req) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                match *step {
                    "approve" => self.approve(user, n, body),
                    "reject" => self.reject(user, n, body),
                    _ => self.deploy(user, n, body),
                }
            }
            (["deploy", "rollback"], _, true) => match body::<RollbackBody>(req) {
                Ok(b) => self.rollback(user, b),
                Err(r) => Err(r),
            },
            (["audit"] | ["deploy", ..], _, _) if !get && !post => Err(Response::error(405, "use GET or POST")),
            (["audit"] | ["deploy", ..], _, _) => Err(Response::error(405, "wrong method for this endpoint")),
            _ => Err(Response::error(404, "no such endpoint")),
        };
        answer.unwrap_or_else(|r| r)
    }

    /// Runs `f` on change `n` under the lock (two steps on one change take turns).
    fn with_change(&self, n: &str, f: impl FnOnce(&mut State, Change) -> Answer) -> Answer {
        let id: u64 = n.parse().map_err(|_| Response::error(404, "no such change"))?;
        let mut st = self.lock();
        match st.store.change(id) {
            Ok(Some(c)) => f(&mut st, c),
            Ok(None) => Err(Response::error(404, "no such change")),
            Err(e) => Err(io_error(e)),
        }
    }

    /// One file of a version, as text (what the console opens to edit).
    fn file(&self, id: &str, name: &str) -> Answer {
        let missing = || Response::error(404, "no such file in that version");
        if super::store::check_name(id).is_err() || super::store::check_name(name).is_err() {
            return Err(missing());
        }
        let path = self.lock().store.pack_dir(id).join(name);
        let bytes = std::fs::read(path).map_err(|_| missing())?;
        Ok(Response { status: 200, content_type: "text/plain; charset=utf-8", body: bytes.into() })
    }

    fn audit(&self, req: &Request) -> Answer {
        let since = req.param("since").and_then(|s| s.parse().ok()).unwrap_or(0);
        let entries = self.lock().audit.read(since).map_err(io_error)?;
        Ok(Response::json(200, &json!({"entries": entries})))
    }

    fn overview(&self, user: &User) -> Answer {
        let st = self.lock();
        let live = st.store.live().map_err(io_error)?.unwrap_or_default();
        let versions = st.store.versions().map_err(io_error)?;
        let changes = st.store.changes().map_err(io_error)?;
        Ok(Response::json(
            200,
            &json!({
                "you": user,
                "approvals": self.approvals,
                "backtest": self.checks.backtest,
                "live": live.version,
                "history": live.history,
                "versions": versions.iter().map(|m| json!({"id": m.id, "author": m.author, "time": m.time, "comment": m.comment, "files": m.files.len()})).collect::<Vec<_>>(),
                "changes": changes.iter().map(|c| json!({"id": c.id, "version": c.version, "author": c.author, "time": c.time, "comment": c.comment, "status": c.status, "approvals": c.approvals.len()})).collect::<Vec<_>>(),
            }),
        ))
    }

    /// Writes a refusal to the audit log and answers it.
    fn refuse(&self, st: &mut State, status: u16, mut entry: Value, reason: String) -> Response {
        entry["outcome"] = "refused".into();
        entry["reason"] = reason.clone().into();
        let extra = entry.get("diagnostics").cloned();
        match st.log(entry) {
            Ok(e) => {
                let mut answer = json!({"error": reason, "audit": e["seq"]});
                if let Some(d) = extra {
                    answer["diagnostics"] = d;
                }
                Response::json(status, &answer)
            }
            Err(e) => io_error(e),
        }
    }

    fn submit(&self, user: &User, req: &Request) -> Answer {
        let entry = json!({"step": "submit", "user": user.name, "role": user.role});
        if user.role < Role::Author {
            let why = format!("submitting a change needs the author role ({} is {})", user.name, user.role.as_str());
            return Err(self.refuse(&mut self.lock(), 403, entry, why));
        }
        let b: SubmitBody = body(req)?;
        let mut entry = entry;
        entry["comment"] = b.comment.clone().into();
        if b.comment.trim().is_empty() {
            return Err(self.refuse(&mut self.lock(), 400, entry, "a change needs a comment: what and why".into()));
        }
        // The pack: a directory's files, or files over a base version.
        let (live, live_pack, pack) = {
            let mut st = self.lock();
            let live = st.store.live().map_err(io_error)?.unwrap_or_default();
            let live_pack = st.store.pack(&live.version).map_err(io_error)?;
            match assemble(&st.store, &live_pack, &b, &self.roots) {
                Ok(p) => (live, live_pack, p),
                Err(why) => return Err(self.refuse(&mut st, 400, entry, why)),
            }
        };
        let id = pack.hash()[..12].to_string();
        entry["version"] = id.clone().into();
        let files = pack.changes_from(&live_pack);
        entry["files"] = json!(files);
        if id == live.version {
            return Err(self.refuse(
                &mut self.lock(),
                409,
                entry,
                "no change: these files are the live version".into(),
            ));
        }
        // Check 1: it compiles. A pack that does not is refused here, kept nowhere.
        let (set, warnings) = match checks::compile(&pack, &self.checks.refdata, &self.checks.load) {
            Ok(ok) => ok,
            Err(diags) => {
                let d = checks::diagnostics_json(&diags);
                entry["diagnostics"] = d["located"].clone();
                let mut r = self.refuse(&mut self.lock(), 422, entry, "the pack has errors: refused".into());
                if let Ok(mut v) = serde_json::from_slice::<Value>(&r.body) {
                    v["diagnostics"] = d["diagnostics"].clone();
                    v["located"] = d["located"].clone();
                    v["rendered"] = d["rendered"].clone();
                    r = Response::json(422, &v);
                }
                return Err(r);
            }
        };
        let manifest = self.lock().store.save_version(&pack, &user.name, &b.comment).map_err(io_error)?;
        // Checks 2 and 3, off the lock: the pack's tests and the backtest.
        let dir = self.lock().store.pack_dir(&manifest.id);
        let checks = self.checks.after_compile(&dir, warnings, (&live.version, &live_pack), (&id, Arc::new(set)));
        let passed = checks["passed"] == true;
        let status = match (passed, self.approvals) {
            (false, _) => Status::ChecksFailed,
            (true, 0) => Status::Approved,
            (true, _) => Status::Pending,
        };
        let mut st = self.lock();
        let change = Change {
            id: st.store.next_change_id().map_err(io_error)?,
            version: id,
            base: Some(live.version),
            author: user.name.clone(),
            time: now(),
            comment: b.comment,
            status,
            files,
            checks: checks.clone(),
            approvals: Vec::new(),
            rejected: None,
            deployed: None,
        };
        entry["outcome"] = "ok".into();
        entry["change"] = change.id.into();
        entry["from_version"] = json!(change.base);
        entry["checks"] = checks;
        entry["status"] = json!(status);
        st.log(entry).map_err(io_error)?;
        st.store.save_change(&change).map_err(io_error)?;
        Ok(Response::json(201, &json!(change)))
    }

    /// A draft (a submit's body, its comment unused) checked without being kept or audited: the
    /// diagnostics `validate` gives, errors and warnings (`validate`, what the console shows as an
    /// author types), or else the submit's checks run on it (`try`: its tests and the backtest).
    fn draft(&self, user: &User, req: &Request, run: bool) -> Answer {
        if user.role < Role::Author {
            let why = format!("checking a draft needs the author role ({} is {})", user.name, user.role.as_str());
            return Err(Response::error(403, &why));
        }
        let b: SubmitBody = body(req)?;
        let (live, live_pack, pack) = {
            let st = self.lock();
            let live = st.store.live().map_err(io_error)?.unwrap_or_default();
            let live_pack = st.store.pack(&live.version).map_err(io_error)?;
            let pack = assemble(&st.store, &live_pack, &b, &self.roots).map_err(|why| Response::error(400, &why))?;
            (live, live_pack, pack)
        };
        let (set, diags) = checks::diagnose(&pack, &self.checks.refdata, &self.checks.load);
        let errors = diags.iter().filter(|d| d.is_error()).count();
        let mut answer = checks::diagnostics_json(&diags);
        answer["ok"] = set.is_some().into();
        answer["errors"] = errors.into();
        answer["warnings"] = (diags.len() - errors).into();
        let Some(set) = set.filter(|_| run) else {
            return Ok(Response::json(200, &answer));
        };
        // The tests read the pack from a directory: the draft's, removed after.
        let id = pack.hash()[..12].to_string();
        static DRAFTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = DRAFTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.lock().store.dir().join("drafts").join(format!("{id}-{}-{n}", std::process::id()));
        let written = pack.write_to(&dir);
        let checks = written.map(|_| {
            self.checks.after_compile(&dir, diags.len() - errors, (&live.version, &live_pack), (&id, Arc::new(set)))
        });
        let _ = std::fs::remove_dir_all(&dir);
        answer["checks"] = checks.map_err(io_error)?;
        Ok(Response::json(200, &answer))
    }

    fn approve(&self, user: &User, n: &str, b: StepBody) -> Answer {
        self.with_change(n, |st, mut c| {
            let entry = step_entry("approve", user, &c, &b.comment);
            // Whatever their role: approval is a second person's.
            if c.author == user.name {
                return Err(self.refuse(st, 403, entry, "an author cannot approve their own change".into()));
            }
            if user.role < Role::Approver {
                let why = format!("approving needs the approver role ({} is {})", user.name, user.role.as_str());
                return Err(self.refuse(st, 403, entry, why));
            }
            let why = match c.status {
                Status::Pending if c.approvals.iter().any(|a| a.user == user.name) => {
                    Some(format!("{} has approved this change already", user.name))
                }
                Status::Pending => None,
                Status::ChecksFailed => {
                    Some(format!("the change failed its checks ({}) and can never be approved", failed(&c)))
                }
                Status::Approved if self.approvals == 0 => Some("no approval is needed (approvals = 0)".into()),
                s => Some(format!("the change is {} already", status_word(s))),
            };
            if let Some(why) = why {
                return Err(self.refuse(st, 409, entry, why));
            }
            c.approvals.push(Approval { user: user.name.clone(), time: now(), comment: b.comment.clone() });
            if c.approvals.len() as u32 >= self.approvals {
                c.status = Status::Approved;
            }
            self.commit(st, entry, &c)
        })
    }

    fn reject(&self, user: &User, n: &str, b: StepBody) -> Answer {
        self.with_change(n, |st, mut c| {
            let entry = step_entry("reject", user, &c, &b.comment);
            // An approver rejects; an author may withdraw their own change.
            if user.role < Role::Approver && c.author != user.name {
                let why = format!("rejecting needs the approver role ({} is {})", user.name, user.role.as_str());
                return Err(self.refuse(st, 403, entry, why));
            }
            if matches!(c.status, Status::Rejected | Status::Deployed) {
                let why = format!("the change is {} already", status_word(c.status));
                return Err(self.refuse(st, 409, entry, why));
            }
            c.status = Status::Rejected;
            c.rejected = Some(Approval { user: user.name.clone(), time: now(), comment: b.comment.clone() });
            self.commit(st, entry, &c)
        })
    }

    /// Audits a step done, then keeps the change as it now stands.
    fn commit(&self, st: &mut State, mut entry: Value, c: &Change) -> Answer {
        entry["outcome"] = "ok".into();
        entry["status"] = json!(c.status);
        st.log(entry).map_err(io_error)?;
        st.store.save_change(c).map_err(io_error)?;
        Ok(Response::json(200, &json!(c)))
    }

    fn deploy(&self, user: &User, n: &str, b: StepBody) -> Answer {
        self.with_change(n, |st, mut c| {
            let mut entry = step_entry("deploy", user, &c, &b.comment);
            if user.role < Role::Author {
                let why = format!("deploying needs the author role ({} is {})", user.name, user.role.as_str());
                return Err(self.refuse(st, 403, entry, why));
            }
            let why = match c.status {
                Status::Approved => None,
                Status::ChecksFailed => Some(format!("the change failed its checks ({}) and can never be deployed", failed(&c))),
                Status::Pending => Some(format!(
                    "the change is waiting for approval ({} of {} given)",
                    c.approvals.len(),
                    self.approvals
                )),
                s => Some(format!("the change is {}", status_word(s))),
            };
            if let Some(why) = why {
                return Err(self.refuse(st, 409, entry, why));
            }
            let mut live = st.store.live().map_err(io_error)?.unwrap_or_default();
            if live.version == c.version {
                return Err(self.refuse(st, 409, entry, "this version is live already".into()));
            }
            // A change is a whole pack made over the version live when it was submitted: over
            // another, it would undo what was deployed since, unchecked against it.
            if c.base.as_deref() != Some(live.version.as_str()) {
                let why = format!(
                    "the live version is {} now, not {} the change was made and checked over: submit it again over the live version",
                    live.version,
                    c.base.as_deref().unwrap_or("-")
                );
                return Err(self.refuse(st, 409, entry, why));
            }
            entry["from_version"] = live.version.clone().into();
            entry["files"] = json!(c.files);
            entry["checks"] = c.checks.clone();
            let version = c.version.clone();
            self.go_live(st, entry, &version, &mut live, Some(c.id), user)?;
            c.status = Status::Deployed;
            c.deployed = Some(Approval { user: user.name.clone(), time: now(), comment: b.comment.clone() });
            st.store.save_change(&c).map_err(io_error)?;
            Ok(Response::json(200, &json!({"deployed": true, "version": version, "previous": live.history.iter().rev().nth(1).map(|h| &h.version), "change": c})))
        })
    }

    fn rollback(&self, user: &User, b: RollbackBody) -> Answer {
        let mut st = self.lock();
        let mut entry = json!({"step": "rollback", "user": user.name, "role": user.role, "comment": b.comment});
        if user.role < Role::Approver {
            let why = format!("rolling back needs the approver role ({} is {})", user.name, user.role.as_str());
            return Err(self.refuse(&mut st, 403, entry, why));
        }
        let mut live = st.store.live().map_err(io_error)?.unwrap_or_default();
        entry["from_version"] = live.version.clone().into();
        let target = match &b.version {
            Some(v) => {
                st.store.find_version(v).map_err(io_error)?.filter(|id| live.history.iter().any(|h| &h.version == id))
            }
            None => live.history.iter().rev().map(|h| h.version.clone()).find(|v| *v != live.version),
        };
        let Some(target) = target else {
            let why = match &b.version {
                Some(v) => format!("{v} is not a version that was live before"),
                None => "there is no earlier version to roll back to".into(),
            };
            return Err(self.refuse(&mut st, 409, entry, why));
        };
        entry["version"] = target.clone().into();
        if target == live.version {
            return Err(self.refuse(&mut st, 409, entry, "this version is live already".into()));
        }
        let old = st.store.pack(&live.version).map_err(io_error)?;
        let new = st.store.pack(&target).map_err(io_error)?;
        entry["files"] = json!(new.changes_from(&old));
        self.go_live(&mut st, entry, &target, &mut live, None, user)?;
        Ok(Response::json(
            200,
            &json!({"rolled_back": true, "version": target, "previous": live.history.iter().rev().nth(1).map(|h| &h.version)}),
        ))
    }

    /// Makes `version` live: compiled off to the side (a failure touches nothing), audited,
    /// handed to the engine, then recorded as live.
    fn go_live(
        &self,
        st: &mut State,
        mut entry: Value,
        version: &str,
        live: &mut Live,
        change: Option<u64>,
        user: &User,
    ) -> Answer {
        let pack = st.store.pack(version).map_err(io_error)?;
        let set = match checks::compile(&pack, &self.checks.refdata, &self.checks.load) {
            Ok((set, _)) => set,
            Err(diags) => {
                entry["diagnostics"] = checks::diagnostics_json(&diags)["located"].clone();
                let why = "the version does not compile against the reference data now; the running rules stay".into();
                return Err(self.refuse(st, 422, entry, why));
            }
        };
        entry["outcome"] = "ok".into();
        st.log(entry.clone()).map_err(io_error)?;
        if self.reloader.swap(set, Some(version)).is_none() {
            let why = "the engine did not take the new rule set; the running rules stay".into();
            return Err(self.refuse(st, 503, entry, why));
        }
        let how = if change.is_some() { "deploy" } else { "rollback" };
        live.version = version.into();
        live.history.push(LiveEntry {
            version: version.into(),
            time: now(),
            user: user.name.clone(),
            how: how.into(),
            change,
        });
        st.store.save_live(live).map_err(io_error)?;
        Ok(Response::json(200, &json!({})))
    }
}

/// The pack a submit names: a directory's files (`path`, one of `roots` or inside one), or `files` over a base version
/// (`base`: "live", the default, a version id, or "none" for files that are the whole pack)
/// less `remove`.
fn assemble(store: &Store, live: &Pack, b: &SubmitBody, roots: &[PathBuf]) -> Result<Pack, String> {
    if let Some(path) = &b.path {
        if b.files.is_some() || !b.remove.is_empty() || b.base.is_some() {
            return Err("give a path or files (with base and remove), not both".into());
        }
        let inside = path.canonicalize().ok().filter(|p| p.is_dir() && roots.iter().any(|r| p.starts_with(r)));
        if inside.is_none() {
            return Err(format!("{} is not a directory of rules.paths on the engine's host", path.display()));
        }
        return Pack::read(std::slice::from_ref(path)).map_err(|e| format!("reading {}: {e}", path.display()));
    }
    let mut pack = match b.base.as_deref().unwrap_or("live") {
        "live" => live.clone(),
        "none" => Pack::default(),
        v => {
            let id = store.find_version(v).map_err(|e| e.to_string())?.ok_or(format!("no version {v}"))?;
            store.pack(&id).map_err(|e| e.to_string())?
        }
    };
    for (name, text) in b.files.iter().flatten() {
        pack.insert(name.clone(), text.clone().into_bytes()).map_err(|e| e.to_string())?;
    }
    for name in &b.remove {
        if pack.files.remove(name).is_none() {
            return Err(format!("{name} is not in the base version"));
        }
    }
    if pack.files.is_empty() {
        return Err("the change has no files".into());
    }
    Ok(pack)
}

fn step_entry(step: &str, user: &User, c: &Change, comment: &str) -> Value {
    json!({"step": step, "user": user.name, "role": user.role, "change": c.id, "version": c.version, "author": c.author, "comment": comment})
}

/// Which checks a change failed, in a few words.
fn failed(c: &Change) -> String {
    let mut v = Vec::new();
    if c.checks["tests"]["passed"] != true {
        v.push(format!("tests: {} case(s) failed", c.checks["tests"]["cases_failed"]));
    }
    if c.checks["backtest"]["passed"] != true {
        v.push(format!("backtest: {}", c.checks["backtest"]["error"].as_str().unwrap_or("failed")));
    }
    v.join("; ")
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::ChecksFailed => "failed its checks",
        Status::Pending => "waiting for approval",
        Status::Approved => "approved",
        Status::Rejected => "rejected",
        Status::Deployed => "deployed",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    files: Option<BTreeMap<String, String>>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    path: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StepBody {
    #[serde(default)]
    comment: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    comment: String,
}

/// A JSON body (an empty one reads as `{}`).
fn body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, Response> {
    let bytes: &[u8] = if req.body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &req.body };
    serde_json::from_slice(bytes).map_err(|e| Response::error(400, &format!("the body is not the JSON expected: {e}")))
}
