//! The rule pack's versions on disk, for the deploy flow ([`super::deploy`]): every version's
//! files and a manifest, the changes submitted (with their checks and approvals), and which
//! version is live with the history of how it got there — all under one directory, so that a
//! restarted engine runs the version last deployed and can still roll back to any earlier one.
//!
//! ```text
//! DIR/versions/ID/manifest.json   id, SHA-256 of the files, author, time, comment, file list
//! DIR/versions/ID/pack/…          the files (rules, their tests, the tests' testdata)
//! DIR/changes/N.json              change N: its version, author, comment, status, checks, approvals
//! DIR/live.json                   the live version and every deploy and rollback before it
//! DIR/audit.jsonl                 the audit log (super::audit)
//! ```
//!
//! A version is named by its content: the SHA-256 over every file's name and bytes, in name
//! order (its first 12 hex digits are the id). The same files submitted twice are one version.
//! Every JSON file is written whole to a temporary name, synced and renamed over the old one, so
//! a kill leaves the old file or the new, never half of one.

use super::audit::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A rule pack's files by relative name (`care.yaml`, `care.tests.yaml`, `testdata/cells.jsonl`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pack {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Longest file name in a pack, and most files.
const MAX_NAME: usize = 200;
const MAX_FILES: usize = 1000;

/// A relative name with no way out of the pack's directory.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
        && name.split('/').all(|c| !c.is_empty() && !c.starts_with('.'));
    if ok { Ok(()) } else { Err(format!("{name:?}: a file name is a relative path without '..' or hidden parts")) }
}

impl Pack {
    /// The SHA-256 over every file's name and bytes, in name order.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for (name, bytes) in &self.files {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        hex(&h.finalize())
    }

    /// Every file under `paths` (rule files, tests, test data; hidden files left out), named
    /// relative to its directory (a file given by itself by its file name; with several
    /// directories, each one's files under its own name).
    pub fn read(paths: &[PathBuf]) -> std::io::Result<Pack> {
        fn walk(dir: &Path, prefix: &str, pack: &mut Pack) -> std::io::Result<()> {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            for p in entries {
                let Some(name) = p.file_name().and_then(|n| n.to_str()) else { continue };
                if name.starts_with('.') {
                    continue;
                }
                let rel = format!("{prefix}{name}");
                if p.is_dir() {
                    walk(&p, &format!("{rel}/"), pack)?;
                } else {
                    pack.insert(rel, std::fs::read(&p)?)?;
                }
            }
            Ok(())
        }
        let mut pack = Pack::default();
        let several = paths.iter().filter(|p| p.is_dir()).count() > 1;
        for p in paths {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("pack").to_string();
            if p.is_dir() {
                walk(p, &if several { format!("{name}/") } else { String::new() }, &mut pack)?;
            } else {
                pack.insert(name, std::fs::read(p)?)?;
            }
        }
        Ok(pack)
    }

    pub fn insert(&mut self, name: String, bytes: Vec<u8>) -> std::io::Result<()> {
        check_name(&name).map_err(std::io::Error::other)?;
        if self.files.len() >= MAX_FILES && !self.files.contains_key(&name) {
            return Err(std::io::Error::other(format!("more than {MAX_FILES} files in a pack")));
        }
        self.files.insert(name, bytes);
        Ok(())
    }

    /// The rule files (YAML, not tests, not under `testdata/`) as (name, text) for the
    /// compiler; a file that is not UTF-8 is a located diagnostic instead.
    pub fn rule_files(&self) -> (Vec<(String, String)>, Vec<crate::rules::diag::Diagnostic>) {
        let mut files = Vec::new();
        let mut diags = Vec::new();
        for (name, bytes) in &self.files {
            let base = name.rsplit('/').next().unwrap_or(name);
            let yaml = base.ends_with(".yaml") || base.ends_with(".yml");
            if !yaml || crate::rules::is_test_file(base) || name.split('/').any(|c| c == "testdata") {
                continue;
            }
            match crate::rules::read::decode(name, bytes.clone()) {
                Ok(text) => files.push((name.clone(), text)),
                Err(d) => diags.push(d),
            }
        }
        (files, diags)
    }

    /// Writes the files under `dir`, each synced (a version's directory, or a draft's to run
    /// its tests).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        for (name, bytes) in &self.files {
            let p = dir.join(name);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(&p, bytes)?;
            std::fs::File::open(&p)?.sync_all()?;
        }
        Ok(())
    }

    /// What changed from `old` to this pack: file names added, changed and removed.
    pub fn changes_from(&self, old: &Pack) -> FileChanges {
        let mut c = FileChanges::default();
        for (name, bytes) in &self.files {
            match old.files.get(name) {
                None => c.added.push(name.clone()),
                Some(b) if b != bytes => c.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        c.removed = old.files.keys().filter(|n| !self.files.contains_key(*n)).cloned().collect();
        c
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileChanges {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A version's manifest: what it is and who first submitted it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub hash: String,
    pub author: String,
    pub time: String,
    pub comment: String,
    pub files: Vec<FileEntry>,
}

/// Where a change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A check failed: it can be neither approved nor deployed.
    ChecksFailed,
    /// Checks passed; waiting for approval.
    Pending,
    /// Approved (or no approval is required): it may be deployed.
    Approved,
    Rejected,
    Deployed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    pub user: String,
    pub time: String,
    pub comment: String,
}

/// A submitted change: a version proposed to replace the live one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub id: u64,
    pub version: String,
    /// The live version when it was submitted (what the backtest compared against).
    pub base: Option<String>,
    pub author: String,
    pub time: String,
    pub comment: String,
    pub status: Status,
    pub files: FileChanges,
    pub checks: serde_json::Value,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    #[serde(default)]
    pub rejected: Option<Approval>,
    #[serde(default)]
    pub deployed: Option<Approval>,
}

/// How a version became live.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveEntry {
    pub version: String,
    pub time: String,
    pub user: String,
    /// `import` (the config's rule files, at the first start), `deploy` or `rollback`.
    pub how: String,
    #[serde(default)]
    pub change: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Live {
    pub version: String,
    /// Every version that was live, oldest first (the last is the live one).
    pub history: Vec<LiveEntry>,
}

pub struct Store {
    dir: PathBuf,
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Writes `bytes` to `path` whole: a temporary file, synced, renamed over it, the directory synced.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> std::io::Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(v).map_err(other)?)
}

/// The live version's files, if the store at `dir` has one (what a start runs).
pub fn live_pack_dir(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    let live: Option<Live> = read_json(&dir.join("live.json"))?;
    Ok(live.map(|l| dir.join("versions").join(&l.version).join("pack")))
}

impl Store {
    pub fn open(dir: &Path) -> std::io::Result<Store> {
        std::fs::create_dir_all(dir.join("versions"))?;
        std::fs::create_dir_all(dir.join("changes"))?;
        Ok(Store { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps a version (once: the same files are the same version) and returns its manifest.
    pub fn save_version(&self, pack: &Pack, author: &str, comment: &str) -> std::io::Result<Manifest> {
        let hash = pack.hash();
        let id = hash[..12].to_string();
        let vdir = self.dir.join("versions").join(&id);
        if let Some(m) = read_json::<Manifest>(&vdir.join("manifest.json"))? {
            return Ok(m);
        }
        // Written beside, then renamed into place: a version directory is whole or absent.
        let tmp = self.dir.join("versions").join(format!(".{id}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        pack.write_to(&tmp.join("pack"))?;
        std::fs::create_dir_all(&tmp)?;
        let manifest = Manifest {
            id: id.clone(),
            hash,
            author: author.into(),
            time: now(),
            comment: comment.into(),
            files: pack
                .files
                .iter()
                .map(|(n, b)| FileEntry { name: n.clone(), bytes: b.len() as u64, sha256: hex(&Sha256::digest(b)) })
                .collect(),
        };
        write_json(&tmp.join("manifest.json"), &manifest)?;
        std::fs::rename(&tmp, &vdir)?;
        std::fs::File::open(self.dir.join("versions"))?.sync_all()?;
        Ok(manifest)
    }

    /// A version's id from an id or a prefix of one (at least 4 hex digits, unambiguous).
    pub fn find_version(&self, prefix: &str) -> std::io::Result<Option<String>> {
        if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let found: Vec<String> =
            self.versions()?.into_iter().map(|m| m.id).filter(|id| id.starts_with(prefix)).collect();
        Ok(if found.len() == 1 { found.into_iter().next() } else { None })
    }

    pub fn manifest(&self, id: &str) -> std::io::Result<Option<Manifest>> {
        if check_name(id).is_err() {
            return Ok(None);
        }
        read_json(&self.dir.join("versions").join(id).join("manifest.json"))
    }

    /// Every version kept, oldest first.
    pub fn versions(&self) -> std::io::Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.join("versions"))?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            if let Some(m) = self.manifest(&name)? {
                out.push(m);
            }
        }
        out.sort_by(|a, b| (&a.time, &a.id).cmp(&(&b.time, &b.id)));
        Ok(out)
    }

    pub fn pack_dir(&self, id: &str) -> PathBuf {
        self.dir.join("versions").join(id).join("pack")
    }

    /// A kept version's files.
    pub fn pack(&self, id: &str) -> std::io::Result<Pack> {
        Pack::read(&[self.pack_dir(id)])
    }

    pub fn change(&self, id: u64) -> std::io::Result<Option<Change>> {
        read_json(&self.dir.join("changes").join(format!("{id}.json")))
    }

    pub fn save_change(&self, c: &Change) -> std::io::Result<()> {
        write_json(&self.dir.join("changes").join(format!("{}.json", c.id)), c)
    }

    /// Every change, in the order submitted.
    pub fn changes(&self) -> std::io::Result<Vec<Change>> {
        let mut ids: Vec<u64> = std::fs::read_dir(self.dir.join("changes"))?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json")?.parse().ok())
            .collect();
        ids.sort_unstable();
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.change(id)?);
        }
        Ok(out)
    }

    /// The number the next change gets.
    pub fn next_change_id(&self) -> std::io::Result<u64> {
        Ok(self.changes()?.last().map_or(1, |c| c.id + 1))
    }

    pub fn live(&self) -> std::io::Result<Option<Live>> {
        read_json(&self.dir.join("live.json"))
    }

    pub fn save_live(&self, live: &Live) -> std::io::Result<()> {
        write_json(&self.dir.join("live.json"), live)
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_pack_are_refused() {
        for bad in ["", "/etc/passwd", "../x.yaml", "a/../../x", ".hidden.yaml", "a//b", "a\\b", "a/.git/x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["care.yaml", "testdata/cells.jsonl", "sub/dir/x.tests.yaml"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_version_is_named_by_its_files_and_kept_once() {
        let dir = std::env::temp_dir().join(format!("tidings-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        let mut p = Pack::default();
        p.insert("a.yaml".into(), b"- list: x\n  items: [a]\n".to_vec()).unwrap();
        p.insert("testdata/cells.jsonl".into(), b"{}\n".to_vec()).unwrap();
        let m = store.save_version(&p, "li", "first").unwrap();
        assert_eq!(m.id.len(), 12);
        assert_eq!(store.save_version(&p, "wang", "again").unwrap().author, "li", "the same files are one version");
        assert_eq!(store.pack(&m.id).unwrap(), p);
        assert_eq!(store.find_version(&m.id[..6]).unwrap().as_deref(), Some(m.id.as_str()));
        let mut q = p.clone();
        q.files.insert("a.yaml".into(), b"- list: x\n  items: [b]\n".to_vec());
        q.files.remove("testdata/cells.jsonl");
        q.files.insert("b.yaml".into(), Vec::new());
        assert_ne!(q.hash(), p.hash());
        let c = q.changes_from(&p);
        assert_eq!(
            (c.added, c.changed, c.removed),
            (vec!["b.yaml".into()], vec!["a.yaml".into()], vec!["testdata/cells.jsonl".into()])
        );
        let (rules, _) = p.rule_files();
        assert_eq!(rules.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["a.yaml"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
