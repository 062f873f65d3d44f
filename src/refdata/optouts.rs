//! The opt-out journal: every refusal a subscriber made by reply (`TD`, `退订`, `0000`), one JSON
//! line each, appended (and synced) the moment the engine records it. With the data
//! directory's `optout.txt` it is the whole list an operator answers to compliance with.
//!
//! Why a journal beside the checkpointed state: a refusal must hold whatever happens to the
//! state — a restart from an old checkpoint, a replay from the start into a fresh state, a
//! state directory wiped by mistake. The journal is read at start; each entry counts from its
//! reply's event time, so a replay still sends what live sent before the refusal and nothing
//! after it. Entries the state already has are not written again, so replaying the same
//! replies adds no lines.

use crate::contact::{OptOut, OptOutScope};
use crate::time::{Millis, format_ts, parse_ts};
use crate::util::Msisdn;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The journal as read at start, and the file refusals are appended to.
#[derive(Debug, Default, Clone)]
pub struct OptOutJournal {
    read: HashMap<Msisdn, Vec<OptOut>>,
    file: Option<Arc<Writer>>,
}

#[derive(Debug)]
struct Writer {
    file: Mutex<std::fs::File>,
    offset: chrono::FixedOffset,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    ts: String,
    msisdn: String,
    scope: OptOutScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    campaign: Option<String>,
    keyword: String,
    to: String,
    reply: String,
}

impl OptOutJournal {
    /// Reads the journal at `path` (none yet is an empty journal) and opens it for appending.
    /// A line that is not a refusal is an error naming `file:line`; a last line cut short by
    /// a crash while it was written is dropped (its reply is acknowledged only after the
    /// engine took it, so it comes again).
    pub fn open(path: &Path, offset: chrono::FixedOffset) -> Result<OptOutJournal, super::RefError> {
        let file = path.display().to_string();
        let io = |source| super::RefError::Io { file: file.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let mut read: HashMap<Msisdn, Vec<OptOut>> = HashMap::new();
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for (i, raw) in text[..complete].split(|b| *b == b'\n').enumerate() {
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record = |msg: String| super::RefError::Record { file: file.clone(), line: i + 1, msg };
            let (m, o) = parse_line(raw).map_err(record)?;
            let list = read.entry(m).or_default();
            if !list.iter().any(|k| k.includes(&o)) {
                list.push(o);
            }
        }
        let mut f =
            std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(io)?;
        // Cut a torn last line off so the next refusal starts on a line of its own.
        f.set_len(complete as u64).map_err(io)?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(io)?;
        let writer = Writer { file: Mutex::new(f), offset };
        Ok(OptOutJournal { read, file: Some(Arc::new(writer)) })
    }

    /// The same journal, read but never written: a replay or an explain reads the live
    /// journal and must not add what-if refusals to it.
    pub fn read_only(mut self) -> OptOutJournal {
        self.file = None;
        self
    }

    /// How many refusals were read, and of how many subscribers.
    pub fn counts(&self) -> (usize, usize) {
        (self.read.values().map(Vec::len).sum(), self.read.len())
    }

    /// The refusals journaled for `m` before this run started.
    pub fn read(&self, m: Msisdn) -> &[OptOut] {
        self.read.get(&m).map_or(&[], Vec::as_slice)
    }

    /// Appends a refusal and syncs it to disk before returning. Without a journal file (no
    /// output or checkpoint directory) it is kept in the state alone.
    pub fn append(&self, m: Msisdn, o: &OptOut) -> std::io::Result<()> {
        let Some(w) = &self.file else { return Ok(()) };
        let line = Line {
            ts: format_ts(o.ts, w.offset),
            msisdn: m.full(),
            scope: o.scope,
            campaign: o.campaign.as_deref().map(str::to_owned),
            keyword: o.keyword.to_string(),
            to: o.to.to_string(),
            reply: o.reply.to_string(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        // A poisoned lock only means another shard panicked mid-append; the file is still ours.
        let mut f = w.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f.write_all(&bytes)?;
        f.sync_data()
    }
}

fn parse_line(raw: &[u8]) -> Result<(Msisdn, OptOut), String> {
    let l: Line = serde_json::from_slice(raw).map_err(|e| format!("not a journaled opt-out: {e}"))?;
    let m = Msisdn::parse(&l.msisdn).ok_or_else(|| "`msisdn` is not 5 to 15 digits".to_string())?;
    let ts: Millis = parse_ts(&l.ts).map_err(|e| format!("`ts`: {e}"))?;
    if l.scope == OptOutScope::Campaign && l.campaign.is_none() {
        return Err("a campaign opt-out without its `campaign`".into());
    }
    let o = OptOut {
        ts,
        scope: l.scope,
        campaign: l.campaign.map(Into::into),
        keyword: l.keyword.into(),
        to: l.to.into(),
        reply: l.reply.into(),
    };
    Ok((m, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cst() -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(8 * 3600).unwrap()
    }

    fn optout(ts: &str, scope: OptOutScope, campaign: Option<&str>) -> OptOut {
        OptOut {
            ts: parse_ts(ts).unwrap(),
            scope,
            campaign: campaign.map(Into::into),
            keyword: "TD".into(),
            to: "10086".into(),
            reply: "r1".into(),
        }
    }

    #[test]
    fn refusals_appended_are_read_back_by_the_next_run_and_a_torn_last_line_is_dropped() {
        let dir = std::env::temp_dir().join(format!("tidings-optouts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("optouts.jsonl");
        let m = Msisdn::parse("13800138000").unwrap();
        let j = OptOutJournal::open(&path, cst()).unwrap();
        assert!(j.read(m).is_empty());
        let a = optout("2026-11-24T10:00:00+08:00", OptOutScope::Campaign, Some("ip_12593"));
        let b = optout("2026-11-24T11:00:00+08:00", OptOutScope::Marketing, None);
        j.append(m, &a).unwrap();
        j.append(m, &b).unwrap();
        drop(j);
        // A crash while the next line was written.
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"ts":"2026-11-24T12:00"#).unwrap();
        drop(f);
        let j = OptOutJournal::open(&path, cst()).unwrap();
        // `b` (all marketing) includes `a` (one campaign), but both were journaled in turn.
        assert_eq!(j.read(m), &[a.clone(), b.clone()][..]);
        j.append(m, &optout("2026-11-24T13:00:00+08:00", OptOutScope::All, None)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.lines().all(|l| l.starts_with('{') && l.ends_with('}')), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_line_that_is_not_a_refusal_is_an_error_naming_its_line() {
        let dir = std::env::temp_dir().join(format!("tidings-optouts-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("optouts.jsonl");
        let good = r#"{"ts":"2026-11-24T10:00:00+08:00","msisdn":"13800138000","scope":"marketing","keyword":"TD","to":"10086","reply":"r1"}"#;
        let bad = r#"{"ts":"2026-11-24T10:00:00+08:00","msisdn":"138","scope":"marketing","keyword":"TD","to":"10086","reply":"r1"}"#;
        std::fs::write(&path, format!("{good}\n{bad}\n")).unwrap();
        let e = OptOutJournal::open(&path, cst()).unwrap_err().to_string();
        assert!(e.ends_with("optouts.jsonl:2: `msisdn` is not 5 to 15 digits"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
