//! The durable outbox: nothing decided is lost, nothing is sent twice.
//!
//! The engine appends every action it decides to `outbox.jsonl` (and syncs it to disk at the
//! end of each output batch) before any gateway sees it; the dispatcher reads the file at its
//! own pace and writes what became of each action to `ledger.jsonl`: `sending` (synced before
//! the first byte goes to a gateway), then `accepted` with the gateway's ids, `rejected`,
//! `expired`, and later the `outcome` a gateway reported; and the subscribers' replies recorded
//! (`reply`, see [`super::reply`]). Both files only grow while the engine runs, so a crash at any
//! moment leaves at worst a torn last line, which opening drops.
//!
//! The entries that write an event line into `outcomes.jsonl` (an outcome, a reply, a refusal, an
//! expiry) count from the `mark` that ends their round: the mark holds the length the outcomes
//! file has with the round's lines in it, written after those lines. A crash before the mark
//! leaves a round half on disk in either file; opening forgets that round's line entries and the
//! dispatcher cuts the outcomes file back to the last mark, so the reports the round took (never
//! acknowledged: that waits for the mark) come again and are written once.
//!
//! Why two append-only files and not an embedded database: the write pattern is a log, each
//! record is written once, restart is one sequential read, and an operator can read both with
//! `jq`. Memory stays bounded while a gateway is down: the backlog stays on disk and the
//! dispatcher only holds a window of it.
//!
//! Ids are the idempotency keys: the outbox refuses an id it already holds (a replay after a
//! crash decides the same ids again), and the ledger says which ids are finished.

pub use super::ledger::Entry;
use super::reply::Recorded;
use crate::contact::Action;
use crate::util::{NamedFile, named, stable_hash};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const ACTIONS_FILE: &str = "outbox.jsonl";
pub const LEDGER_FILE: &str = "ledger.jsonl";

/// The 64-bit key of an action id in the in-memory sets (ids are 17 characters; 8 bytes keep a
/// million-action outbox in a few MiB).
pub fn id_key(id: &str) -> u64 {
    stable_hash(id.as_bytes())
}

/// Opens a file for appending after cutting a torn last line (a crash in the middle of a write):
/// everything up to the last newline is kept.
fn open_append(path: &Path) -> io::Result<File> {
    let mut f = OpenOptions::new().create(true).read(true).append(true).open(path)?;
    let len = f.metadata()?.len();
    if len > 0 {
        let mut pos = len;
        let mut buf = [0u8; 4096];
        let mut keep = 0;
        'scan: while pos > 0 {
            let n = buf.len().min(pos as usize);
            pos -= n as u64;
            f.seek(SeekFrom::Start(pos))?;
            f.read_exact(&mut buf[..n])?;
            for i in (0..n).rev() {
                if buf[i] == b'\n' {
                    keep = pos + i as u64 + 1;
                    break 'scan;
                }
            }
        }
        if keep < len {
            f.set_len(keep)?;
        }
    }
    Ok(f)
}

/// Opens the outcomes file to append (a torn last line cut, as [`open_append`] does), cut back
/// to the ledger's last `mark` when a crash left lines of an unfinished round after it; with its
/// length.
pub fn open_outcomes(path: &Path, mark: Option<u64>) -> io::Result<(File, u64)> {
    let file = open_append(path)?;
    let len = file.metadata()?.len();
    match mark {
        Some(mark) if len > mark => {
            eprintln!(
                "tidings: delivery: {}: {} bytes after the last recorded round (a crash cut it off) removed: \
                 its reports come again",
                path.display(),
                len - mark
            );
            file.set_len(mark)?;
            file.sync_data()?;
            Ok((file, mark))
        }
        _ => Ok((file, len)),
    }
}

/// The engine's side: appends actions, once per id.
pub struct OutboxWriter {
    file: io::BufWriter<NamedFile>,
    known: HashSet<u64>,
    appended: u64,
    skipped: u64,
    dirty: bool,
}

impl OutboxWriter {
    pub fn open(dir: &Path) -> io::Result<OutboxWriter> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(ACTIONS_FILE);
        let file = open_append(&path).map_err(|e| named(&path, e))?;
        let mut known = HashSet::new();
        for line in BufReader::new(File::open(&path)?).split(b'\n') {
            if let Ok(a) = serde_json::from_slice::<IdOnly>(&line?) {
                known.insert(id_key(&a.id));
            }
        }
        Ok(OutboxWriter {
            file: io::BufWriter::with_capacity(1 << 16, NamedFile::new(file, &path)),
            known,
            appended: 0,
            skipped: 0,
            dirty: false,
        })
    }

    /// Appends one action unless its id is already in the outbox. Returns whether it was new.
    pub fn append(&mut self, action: &Action) -> io::Result<bool> {
        if !self.known.insert(id_key(&action.id)) {
            self.skipped += 1;
            return Ok(false);
        }
        serde_json::to_writer(&mut self.file, action)?;
        self.file.write_all(b"\n")?;
        self.appended += 1;
        self.dirty = true;
        Ok(true)
    }

    /// Writes the buffer out and syncs it: after this returns the actions survive a crash.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.dirty = false;
        self.file.get_ref().sync_data()
    }

    /// Bytes in the file (what was written; after [`OutboxWriter::sync`], what is on disk).
    pub fn bytes(&self) -> Option<u64> {
        self.file.get_ref().get_ref().metadata().ok().map(|m| m.len())
    }

    /// Whether anything was appended since the last sync.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// (appended this run, refused as already present)
    pub fn counts(&self) -> (u64, u64) {
        (self.appended, self.skipped)
    }
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Reads `outbox.jsonl` from a position, one complete line at a time: a line still being
/// written (no newline yet) is left for the next read.
pub struct OutboxReader {
    file: File,
    pos: u64,
    buf: Vec<u8>,
}

impl OutboxReader {
    pub fn open(dir: &Path) -> io::Result<OutboxReader> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new().create(true).read(true).append(true).open(dir.join(ACTIONS_FILE))?;
        Ok(OutboxReader { file, pos: 0, buf: Vec::new() })
    }

    /// Up to `max` actions after the current position. Lines that do not parse are returned as
    /// errors with their offset (they cannot come from this engine; they are skipped, not
    /// retried).
    pub fn next_batch(&mut self, max: usize) -> io::Result<Vec<Result<Action, String>>> {
        let mut out = Vec::new();
        let len = self.file.metadata()?.len();
        if len <= self.pos {
            return Ok(out);
        }
        self.file.seek(SeekFrom::Start(self.pos))?;
        let want = ((len - self.pos) as usize).min(1 << 20);
        self.buf.resize(want, 0);
        let n = read_full(&mut self.file, &mut self.buf)?;
        let mut start = 0;
        while out.len() < max {
            let Some(nl) = self.buf[start..n].iter().position(|&b| b == b'\n') else { break };
            let line = &self.buf[start..start + nl];
            out.push(
                serde_json::from_slice::<Action>(line)
                    .map_err(|e| format!("outbox line at byte {}: {e}", self.pos + start as u64)),
            );
            start += nl + 1;
        }
        if start == 0 && n == want && n == 1 << 20 {
            // One line longer than the read window: skip it rather than stall forever.
            let skip = self.buf.len() as u64;
            self.pos += skip;
            return Ok(vec![Err(format!("outbox line over 1 MiB at byte {}", self.pos - skip))]);
        }
        self.pos += start as u64;
        Ok(out)
    }

    pub fn position(&self) -> u64 {
        self.pos
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// What the ledger knows of an accepted action that has no outcome yet.
#[derive(Clone, Debug, PartialEq)]
pub struct Open {
    pub id: String,
    pub msisdn: String,
    pub rule: String,
    pub campaign: String,
    pub channel: String,
}

impl Open {
    /// What an outcome of `a` needs to name.
    pub fn of(a: &Action) -> Open {
        Open {
            id: a.id.clone(),
            msisdn: a.msisdn.clone(),
            rule: a.rule.clone(),
            campaign: a.campaign.clone(),
            channel: a.channel.as_str().to_owned(),
        }
    }
}

/// An action that was being sent when the engine stopped: the gateway may or may not have it.
#[derive(Clone, Debug, PartialEq)]
pub struct InDoubt {
    pub id: String,
    pub msisdn: String,
    pub reference: u16,
    /// The gateway ids of the parts reported since its `sending` line.
    pub receipts: Vec<String>,
}

/// The ledger, loaded: finished ids, accepted-but-unreported actions by gateway id, the gateway
/// ids whose action has its outcome, the actions in doubt, and the replies recorded lately.
pub struct Ledger {
    file: io::BufWriter<NamedFile>,
    pub finished: HashSet<u64>,
    /// Gateway id -> the action it belongs to, until its outcome arrives.
    pub open: HashMap<String, std::sync::Arc<Open>>,
    /// The gateway ids (hashed, as [`id_key`]) of actions whose outcome is recorded: a report that
    /// names one again is a repeat (the gateway never got the acknowledgement, or it is a later
    /// part of a long message), not news — and must not be taken for a report of an SMS in doubt.
    closed: HashSet<u64>,
    /// Action id -> the accepted action, for reports that name the action id.
    pub open_by_id: HashMap<u64, std::sync::Arc<Open>>,
    pub in_doubt: Vec<InDoubt>,
    pub replies: Recorded,
    /// The outcomes file's length at the last mark (none in a ledger an older tidings wrote).
    pub outcomes_mark: Option<u64>,
    path: PathBuf,
}

impl Ledger {
    pub fn open(dir: &Path) -> io::Result<Ledger> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LEDGER_FILE);
        let file = open_append(&path).map_err(|e| named(&path, e))?;
        let mut ledger = Ledger {
            file: io::BufWriter::new(NamedFile::new(file, &path)),
            finished: HashSet::new(),
            open: HashMap::new(),
            open_by_id: HashMap::new(),
            closed: HashSet::new(),
            in_doubt: Vec::new(),
            replies: Recorded::default(),
            outcomes_mark: None,
            path: path.clone(),
        };
        let mut sending: HashMap<u64, InDoubt> = HashMap::new();
        // The line entries since the last mark (at most a round's), counted when the mark comes;
        // before any mark (an older ledger) each counts at once. The other entries count as
        // they are read: a line entry is an action's last word (or a reply's only one), so none
        // of them comes before one it would be counted after.
        let mut round: Vec<Entry> = Vec::new();
        for line in BufReader::new(File::open(&path)?).split(b'\n') {
            let line = line?;
            let Ok(e) = serde_json::from_slice::<Entry>(&line) else {
                continue;
            };
            match e {
                Entry::Mark { outcomes, .. } => {
                    round.drain(..).for_each(|e| ledger.load(e, &mut sending));
                    ledger.outcomes_mark = Some(outcomes);
                }
                e if e.writes_line() && ledger.outcomes_mark.is_some() => round.push(e),
                e => ledger.load(e, &mut sending),
            }
        }
        // A round a crash cut off before its mark: its line entries are forgotten (the reports
        // behind them come again); what it sent or had accepted stands.
        drop(round);
        let mut doubt: Vec<InDoubt> = sending.into_values().collect();
        doubt.sort_by(|a, b| a.id.cmp(&b.id));
        ledger.in_doubt = doubt;
        Ok(ledger)
    }

    /// An entry read on opening: `sending` holds the actions sent and not finished (yet).
    fn load(&mut self, e: Entry, sending: &mut HashMap<u64, InDoubt>) {
        let key = id_key(e.id());
        match e {
            Entry::Sending { id, msisdn, reference, .. } => {
                if !self.finished.contains(&key) {
                    sending.insert(key, InDoubt { id, msisdn, reference, receipts: Vec::new() });
                }
            }
            Entry::Part { gateway_id, .. } => {
                if let Some(d) = sending.get_mut(&key).filter(|d| !d.receipts.contains(&gateway_id)) {
                    d.receipts.push(gateway_id);
                }
            }
            Entry::Mark { .. } => {}
            other => {
                sending.remove(&key);
                self.note(&other);
            }
        }
    }

    /// Updates the in-memory view for an entry (without writing it).
    fn note(&mut self, e: &Entry) {
        let key = id_key(e.id());
        match e {
            Entry::Sending { .. } | Entry::Part { .. } | Entry::Mark { .. } => {}
            Entry::Accepted { id, gateway_ids, msisdn, rule, campaign, channel, .. } => {
                self.finished.insert(key);
                let open = std::sync::Arc::new(Open {
                    id: id.clone(),
                    msisdn: msisdn.clone(),
                    rule: rule.clone(),
                    campaign: campaign.clone(),
                    channel: channel.clone(),
                });
                for g in gateway_ids {
                    self.open.insert(g.clone(), open.clone());
                }
                self.open_by_id.insert(key, open);
            }
            Entry::Rejected { .. } | Entry::Expired { .. } => {
                self.finished.insert(key);
            }
            Entry::Outcome { .. } => {
                self.finished.insert(key);
                if let Some(open) = self.open_by_id.remove(&key) {
                    let closed = &mut self.closed;
                    self.open.retain(|g, o| {
                        let keep = !std::sync::Arc::ptr_eq(o, &open);
                        if !keep {
                            closed.insert(id_key(g));
                        }
                        keep
                    });
                }
            }
            Entry::Reply { key, until, .. } => {
                if let Ok(k) = u64::from_str_radix(key, 16) {
                    self.replies.insert(k, *until, crate::time::wall_ms());
                }
            }
        }
    }

    /// Appends an entry (buffered: call [`Ledger::sync`] before anything depends on it).
    pub fn write(&mut self, e: Entry) -> io::Result<()> {
        serde_json::to_writer(&mut self.file, &e)?;
        self.file.write_all(b"\n")?;
        self.note(&e);
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()
    }

    pub fn is_finished(&self, id: &str) -> bool {
        self.finished.contains(&id_key(id))
    }

    /// Resolves a gateway id or an action id to the accepted action it belongs to.
    pub fn resolve(&self, action_id: Option<&str>, gateway_id: Option<&str>) -> Option<std::sync::Arc<Open>> {
        if let Some(o) = action_id.and_then(|id| self.open_by_id.get(&id_key(id))) {
            return Some(o.clone());
        }
        gateway_id.and_then(|g| self.open.get(g).cloned())
    }

    /// Whether a report names only what is already recorded: a gateway id whose action has its
    /// outcome, or an action id that is finished and not waiting for a report.
    pub fn is_repeat(&self, action_id: Option<&str>, gateway_id: Option<&str>) -> bool {
        let action_done = |id: &str| self.is_finished(id) && !self.open_by_id.contains_key(&id_key(id));
        gateway_id.is_some_and(|g| self.closed.contains(&id_key(g))) || action_id.is_some_and(action_done)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Channel, TriggerJson};
    use crate::sink::gateway::OutcomeStatus;

    fn action(id: &str) -> Action {
        Action {
            id: id.into(),
            ts: "2026-11-25T10:00:00+08:00".into(),
            msisdn: "13800138000".into(),
            rule: "r".into(),
            campaign: "c".into(),
            channel: Channel::Sms,
            priority: 1,
            text: Some("您好".into()),
            script: None,
            queue: None,
            sender: None,
            about: None,
            offer: None,
            trigger: TriggerJson { kind: "usage".into(), id: "e1".into(), ts: "2026-11-25T10:00:00+08:00".into() },
            expires: None,
        }
    }

    #[test]
    fn an_id_goes_into_the_outbox_once_across_reopens() {
        let dir = tempdir("once");
        let mut w = OutboxWriter::open(&dir).unwrap();
        assert!(w.append(&action("a1")).unwrap());
        assert!(!w.append(&action("a1")).unwrap());
        w.sync().unwrap();
        drop(w);
        let mut w = OutboxWriter::open(&dir).unwrap();
        assert!(!w.append(&action("a1")).unwrap());
        assert!(w.append(&action("a2")).unwrap());
        w.sync().unwrap();
        let mut r = OutboxReader::open(&dir).unwrap();
        let got: Vec<String> = r.next_batch(10).unwrap().into_iter().map(|a| a.unwrap().id).collect();
        assert_eq!(got, ["a1", "a2"]);
        assert!(r.next_batch(10).unwrap().is_empty());
    }

    #[test]
    fn a_torn_last_line_is_cut_on_open_and_a_partial_line_is_not_read() {
        let dir = tempdir("torn");
        let mut w = OutboxWriter::open(&dir).unwrap();
        w.append(&action("a1")).unwrap();
        w.sync().unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(dir.join(ACTIONS_FILE)).unwrap();
        f.write_all(br#"{"id":"a2","ts":"#).unwrap();
        let mut r = OutboxReader::open(&dir).unwrap();
        assert_eq!(r.next_batch(10).unwrap().len(), 1, "the partial line waits");
        let mut w = OutboxWriter::open(&dir).unwrap();
        assert!(w.append(&action("a2")).unwrap(), "the torn a2 was cut, so a2 is new");
        w.sync().unwrap();
        let text = std::fs::read_to_string(dir.join(ACTIONS_FILE)).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().all(|l| serde_json::from_str::<Action>(l).is_ok()));
    }

    #[test]
    fn the_ledger_remembers_finished_open_and_in_doubt_actions() {
        let dir = tempdir("ledger");
        let mut l = Ledger::open(&dir).unwrap();
        let sending =
            |id: &str| Entry::Sending { id: id.into(), attempt: 1, reference: 7, msisdn: "13800138000".into(), at: 1 };
        l.write(sending("a1")).unwrap();
        l.write(Entry::Accepted {
            id: "a1".into(),
            gateway_ids: vec!["m1".into(), "m2".into()],
            msisdn: "13800138000".into(),
            rule: "r".into(),
            campaign: "c".into(),
            channel: "sms".into(),
            at: 2,
        })
        .unwrap();
        let part = |id: &str, g: &str| Entry::Part { id: id.into(), gateway_id: g.into(), at: 2 };
        l.write(sending("a2")).unwrap();
        // A part reported for a2's first attempt, then a2 offered again: its parts start afresh.
        l.write(part("a2", "g0")).unwrap();
        l.write(sending("a2")).unwrap();
        l.write(part("a2", "g1")).unwrap();
        l.write(part("a2", "g1")).unwrap();
        l.write(part("a2", "g2")).unwrap();
        l.write(sending("a3")).unwrap();
        l.write(Entry::Rejected { id: "a3".into(), reason: "bad number".into(), at: 3 }).unwrap();
        l.sync().unwrap();
        drop(l);
        let l = Ledger::open(&dir).unwrap();
        assert!(l.is_finished("a1") && l.is_finished("a3") && !l.is_finished("a2"));
        assert_eq!(l.in_doubt.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["a2"]);
        assert_eq!(l.in_doubt[0].receipts, ["g1", "g2"], "the parts reported since its last offer, once each");
        assert_eq!(l.resolve(None, Some("m2")).map(|o| o.id.clone()).as_deref(), Some("a1"));
        let mut l = l;
        l.write(Entry::Outcome { id: "a1".into(), status: OutcomeStatus::Delivered, detail: String::new(), at: 4 })
            .unwrap();
        assert!(l.resolve(None, Some("m1")).is_none(), "an action's outcome closes it");
        assert!(l.is_repeat(None, Some("m2")) && l.is_repeat(Some("a1"), None), "its reports are repeats now");
        assert!(!l.is_repeat(None, Some("m3")) && !l.is_repeat(Some("a2"), None), "unknown, or in doubt");
        l.sync().unwrap();
        drop(l);
        let l = Ledger::open(&dir).unwrap();
        assert!(l.is_repeat(None, Some("m1")), "the ledger remembers closed gateway ids across a restart");
    }

    #[test]
    fn a_round_a_crash_cut_off_before_its_mark_is_forgotten_and_its_lines_cut_back() {
        let dir = tempdir("mark");
        let outcomes = dir.join("outcomes.jsonl");
        let mut l = Ledger::open(&dir).unwrap();
        assert_eq!(l.outcomes_mark, None, "a new ledger has no mark");
        let sending =
            |id: &str| Entry::Sending { id: id.into(), attempt: 1, reference: 7, msisdn: "13800138000".into(), at: 1 };
        let accepted = |id: &str, g: &str| Entry::Accepted {
            id: id.into(),
            gateway_ids: vec![g.into()],
            msisdn: "13800138000".into(),
            rule: "r".into(),
            campaign: "c".into(),
            channel: "sms".into(),
            at: 2,
        };
        let outcome =
            |id: &str| Entry::Outcome { id: id.into(), status: OutcomeStatus::Delivered, detail: "".into(), at: 3 };
        l.write(Entry::Mark { outcomes: 0, at: 0 }).unwrap();
        for id in ["a1", "a2", "a3"] {
            l.write(sending(id)).unwrap();
        }
        l.write(accepted("a1", "g1")).unwrap();
        l.write(outcome("a1")).unwrap();
        l.write(Entry::Mark { outcomes: 12, at: 4 }).unwrap();
        // The next round, on disk in part when the process died: a2 accepted and reported, a
        // reply, a3 refused; no mark.
        l.write(accepted("a2", "g2")).unwrap();
        l.write(outcome("a2")).unwrap();
        l.write(Entry::Reply { id: "r1".into(), key: format!("{:016x}", 99u64), at: 5, until: i64::MAX }).unwrap();
        l.write(Entry::Rejected { id: "a3".into(), reason: "no".into(), at: 5 }).unwrap();
        l.sync().unwrap();
        std::fs::write(&outcomes, "{\"id\":\"o1\"}\n{\"id\":\"o2\"}\n{\"id\":\"r1\"}\n").unwrap();
        drop(l);
        let l = Ledger::open(&dir).unwrap();
        assert_eq!(l.outcomes_mark, Some(12));
        assert!(l.is_repeat(None, Some("g1")), "the marked round stands");
        assert_eq!(l.resolve(None, Some("g2")).map(|o| o.id.clone()).as_deref(), Some("a2"), "a2 waits for its report");
        assert!(!l.is_finished("a3"), "a3's refusal is forgotten: it is in doubt");
        assert_eq!(l.in_doubt.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["a3"]);
        assert!(!l.replies.contains(99, 6), "the reply is forgotten: it comes again");
        let (_, len) = open_outcomes(&outcomes, l.outcomes_mark).unwrap();
        assert_eq!((len, std::fs::read_to_string(&outcomes).unwrap()), (12, "{\"id\":\"o1\"}\n".to_owned()));
        // A file shorter than the mark (moved away, begun anew) is left as it is.
        std::fs::write(&outcomes, "").unwrap();
        assert_eq!(open_outcomes(&outcomes, Some(12)).unwrap().1, 0);
        // A ledger an older tidings wrote (no mark) counts every entry.
        let old = tempdir("mark-old");
        let mut l = Ledger::open(&old).unwrap();
        l.write(sending("a1")).unwrap();
        l.write(Entry::Rejected { id: "a1".into(), reason: "no".into(), at: 5 }).unwrap();
        l.sync().unwrap();
        drop(l);
        assert!(Ledger::open(&old).unwrap().is_finished("a1"));
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tidings-outbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
