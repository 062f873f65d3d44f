//! The deploy flow's audit log: every step (submit, checks, approve, reject, deploy, rollback,
//! and every refusal of one) as one JSON object a line, appended and fsync'd before the step is
//! answered, so what a client was told happened is on disk whatever happens to the process next.
//!
//! Append-only: the file is opened for appending and never rewritten. Each entry carries its
//! sequence number and the SHA-256 of the line before it (`prev`), so a line removed or edited
//! later breaks the chain where it was. A line a kill cut short (no newline: its step was never
//! answered) is closed with a newline when the log is opened again and skipped when read.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub struct Audit {
    path: PathBuf,
    file: std::fs::File,
    next_seq: u64,
    prev: String,
}

impl Audit {
    /// Opens (or creates) the log, finding where the chain stands.
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            file.write_all(b"\n")?;
            file.sync_data()?;
        }
        let (mut next_seq, mut prev) = (1, String::new());
        for line in text.split(|b| *b == b'\n') {
            if let Ok(v) = serde_json::from_slice::<Value>(line) {
                next_seq = v["seq"].as_u64().map_or(next_seq, |s| s + 1);
                prev = hex(&Sha256::digest(line));
            }
        }
        Ok(Audit { path: path.to_path_buf(), file, next_seq, prev })
    }

    /// Appends one entry (an object: `seq`, `ts` and `prev` are added) and syncs it to disk.
    pub fn append(&mut self, mut entry: Value) -> std::io::Result<Value> {
        if let Some(o) = entry.as_object_mut() {
            o.insert("seq".into(), self.next_seq.into());
            o.insert("ts".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into());
            o.insert("prev".into(), self.prev.clone().into());
        }
        let line = serde_json::to_string(&entry).map_err(std::io::Error::other)?;
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.file.sync_data()?;
        self.next_seq += 1;
        self.prev = hex(&Sha256::digest(line.as_bytes()));
        Ok(entry)
    }

    /// The entries with `seq` above `since`, in order (a cut-short line is skipped).
    pub fn read(&self, since: u64) -> std::io::Result<Vec<Value>> {
        let text = std::fs::read(&self.path)?;
        Ok(text
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
            .filter(|v| v["seq"].as_u64().is_some_and(|s| s > since))
            .collect())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_chain_and_a_line_cut_short_is_closed_and_skipped() {
        let dir = std::env::temp_dir().join(format!("tidings-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("audit.jsonl");
        let mut a = Audit::open(&path).unwrap();
        a.append(serde_json::json!({"step": "submit"})).unwrap();
        a.append(serde_json::json!({"step": "approve"})).unwrap();
        drop(a);
        // A kill in the middle of a write.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(br#"{"step":"dep"#).unwrap();
        let mut a = Audit::open(&path).unwrap();
        let e = a.append(serde_json::json!({"step": "deploy"})).unwrap();
        assert_eq!(e["seq"], 3);
        let all = a.read(0).unwrap();
        assert_eq!(
            all.iter().map(|v| v["step"].as_str().unwrap()).collect::<Vec<_>>(),
            ["submit", "approve", "deploy"]
        );
        let lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
        assert_eq!(all[1]["prev"], hex(&Sha256::digest(lines[0].as_bytes())));
        assert_eq!(all[2]["prev"], hex(&Sha256::digest(lines[1].as_bytes())), "the cut line is not in the chain");
        assert_eq!(a.read(2).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
