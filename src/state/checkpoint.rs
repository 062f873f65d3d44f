//! Checkpoints: the engine's whole state at one batch boundary, on disk, so that a restart
//! resumes there instead of forgetting cap counters, windows and timers.
//!
//! What one holds: every subscriber's record and state (windows, timers, deferred contacts,
//! contact history, sequences), the router's clock (input position, watermark, batch number,
//! the input's first event time), the daily ticks, the channel-capacity limiter and its queue, the campaigns' budgets spent,
//! each source's position, the outbox's length, and the rule set it was taken under (version
//! and the shape a changed rule set is matched against, as hot reload does).
//!
//! Consistency: checkpoint N is the state exactly after batch N and the sources exactly after
//! batch N's last input item; it is committed (renamed into place) only after the decisions of
//! batches up to N are synced to the outbox. A crash at any moment therefore leaves the last
//! committed checkpoint behind the outbox, never ahead of it: recovery re-decides what came
//! after, and the outbox refuses the ids it already holds.
//!
//! No stall: each shard copies its subscribers a slice at a time between batches and copies a
//! subscriber not yet copied just before a batch changes it (copy-before-modify, see
//! `SubTable`), so processing pauses for one slice at most. Encoding happens on the shard, the
//! file is written and synced by a thread of its own.
//!
//! Format (why our own file and not `redb`/`fjall`: a checkpoint is written once, whole, read
//! once at start, and thrown away; an embedded store would add a B-tree, its own log and
//! compaction for a write-once blob, and its own consistency point that would have to be tied
//! to the outbox anyway): `TDCKPT` and a format version, then frames of (tag, length, payload):
//! record slices, one meta frame, and an end frame holding the xxh3 of every byte before it. A
//! file without its end frame or with a wrong sum is a partial or corrupt checkpoint: it is set
//! aside (renamed `.corrupt`) and the previous one is used. Files are written under a temporary
//! name, synced, renamed and the directory synced.

use crate::codec::{Bad, Dec, DecResult, Enc, Persist};
use crate::contact::{Channel, Decision, OrderKey, Outcome, Suppression, TriggerRef};
use crate::event::Kind;
use crate::time::Millis;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MAGIC: &[u8; 6] = b"TDCKPT";
/// Bumped whenever the layout of any frame changes; a file older than [`OLDEST`] is refused,
/// not misread. 2: refusals by reply in the state, an SMS's sender in a held decision. 3: what
/// an SMS is about (`about:`) in the contact history, a held decision and a timer; a call's
/// rendered queue in a timer. 4: the journeys a subscriber is in and their derived attributes,
/// and the journey steps and derived attributes of the rule shape. 5: the distinct counts of the
/// rule shape (their values are kept among the window buckets, whose layout is unchanged).
/// 6: the funnel's daily counts in the meta frame, after the budgets (now always written).
/// 7: what a timer kept when it was armed (`armed.PATH`), after each timer.
pub const FORMAT: u16 = 7;
/// The oldest format this build still reads (its decoders skip what the old layout lacks).
pub const OLDEST: u16 = 1;
const TAG_RECORDS: u8 = 1;
const TAG_META: u8 = 2;
const TAG_END: u8 = 0xff;
const SUFFIX: &str = "ckpt";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {why}")]
    Corrupt { path: String, why: String },
}

/// The static name of a trigger kind (event kinds and `schedule`).
pub fn trigger_kind(s: &str) -> DecResult<&'static str> {
    Kind::ALL
        .iter()
        .map(|k| k.as_str())
        .chain(["schedule", "journey"])
        .find(|k| *k == s)
        .ok_or_else(|| Bad(format!("unknown trigger kind `{s}`")))
}

pub fn enc_decision(e: &mut Enc, d: &Decision) {
    let k = d.key;
    e.u64(k.pos);
    e.u8(k.phase);
    e.i64(k.due);
    e.u64(k.msisdn);
    e.u32(k.rule);
    e.str(&d.id);
    e.i64(d.ts);
    e.u64(d.msisdn.raw());
    e.u32(d.rule);
    e.str(&d.rule_name);
    e.str(&d.campaign);
    e.str(d.channel.as_str());
    e.u32(d.priority as u32);
    e.opt_str(d.text.as_deref());
    e.opt_str(d.script.as_deref());
    e.opt_str(d.queue.as_deref());
    e.str(d.trigger.kind);
    e.str(&d.trigger.id);
    e.i64(d.trigger.ts);
    match d.outcome {
        Outcome::Sent => e.u8(0),
        Outcome::Suppressed(r) => {
            e.u8(1);
            e.str(r.as_str());
        }
        Outcome::Deferred(t) => {
            e.u8(2);
            e.i64(t);
        }
    }
    e.opt_str(d.detail.as_deref());
    e.opt_str(d.winner.as_deref());
    e.opt_i64(d.expires);
    // A shadow rule's deferred contact waits among the live ones; it must come back a shadow.
    e.u8(u8::from(d.shadow));
    e.opt_str(d.sender.as_deref());
    e.opt_str(d.about.as_deref());
}

fn suppression(s: &str) -> Option<Suppression> {
    Suppression::ALL.into_iter().find(|r| r.as_str() == s)
}

pub fn dec_decision(d: &mut Dec) -> DecResult<Decision> {
    let key = OrderKey { pos: d.u64()?, phase: d.u8()?, due: d.i64()?, msisdn: d.u64()?, rule: d.u32()? };
    Ok(Decision {
        key,
        id: d.str()?.to_owned(),
        ts: d.i64()?,
        msisdn: crate::util::Msisdn::from_raw(d.u64()?),
        rule: d.u32()?,
        rule_name: d.str()?.into(),
        campaign: d.str()?.into(),
        channel: d.sym(Channel::parse)?,
        priority: d.u32()? as i32,
        text: d.opt_str()?.map(str::to_owned),
        script: d.opt_str()?.map(str::to_owned),
        queue: d.opt_str()?.map(Into::into),
        trigger: TriggerRef { kind: trigger_kind(d.str()?)?, id: d.str()?.into(), ts: d.i64()? },
        outcome: match d.u8()? {
            0 => Outcome::Sent,
            1 => Outcome::Suppressed(d.sym(suppression)?),
            2 => Outcome::Deferred(d.i64()?),
            t => return Err(Bad(format!("unknown outcome {t}"))),
        },
        detail: d.opt_str()?.map(str::to_owned),
        winner: d.opt_str()?.map(str::to_owned),
        expires: d.opt_i64()?,
        shadow: match d.u8()? {
            0 => false,
            1 => true,
            b => return Err(Bad(format!("bad shadow flag {b}"))),
        },
        sender: if d.at_least(2) { d.opt_str()?.map(Into::into) } else { None },
        about: if d.at_least(3) { d.opt_str()?.map(Into::into) } else { None },
    })
}

pub use super::shape::{CAPPED, Formerly, RuleShape};

/// Where a source stands in one of its streams: just after the last item it handed to the
/// engine. A checkpoint stores these and a restarted source is opened at them.
///
/// How a source plugs in: give each stream it reads a stable name that says its kind
/// (`file:<path>` for files, `generator` for the generator; a Fluvio source would use
/// `fluvio:<topic>/<partition>` with `offset` the next record's offset, see
/// `config::fluvio_stream`), report each item's end
/// through a `source::Tracker` when the engine takes it (never when reading ahead), and accept the
/// stored positions when it is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamPos {
    pub stream: String,
    /// Bytes consumed (files), or the next record's offset (a partitioned transport).
    pub offset: u64,
    /// Records (lines) consumed: dead letters' line numbers go on from here.
    pub records: u64,
}

/// The router's clock at a batch boundary: restored exactly, because positions are part of
/// decisions' order and timers fire by the watermark.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RouterState {
    /// Input position of the next event.
    pub pos: u64,
    pub max_ts: Millis,
    pub wm: Millis,
    /// Number of the next batch.
    pub batch: u64,
    /// Event time of the input's first event (where daily rules started ticking).
    pub first_ts: Option<Millis>,
}

impl RouterState {
    pub fn start() -> RouterState {
        RouterState { pos: 0, max_ts: Millis::MIN, wm: Millis::MIN, batch: 0, first_ts: None }
    }
}

/// Everything in a checkpoint but the subscribers.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    /// The batch the checkpoint was taken after.
    pub id: u64,
    pub router: RouterState,
    /// Daily ticks (the same on every shard): (next due, local minute of day), and whether
    /// they had started.
    pub ticks: Vec<(Millis, u32)>,
    pub ticks_started: bool,
    /// The capacity limiter and queue ([`crate::policy::capacity::Capacity::save`]).
    pub capacity: Vec<u8>,
    /// What each campaign's budget has spent ([`crate::policy::budget::Budgets::save`]); last
    /// in the frame before format 6, absent from checkpoints written before budgets.
    pub budgets: Vec<u8>,
    /// The funnel's counts per day and rule (`engine::funnel::Tally::save`); from format 6.
    pub funnel: Vec<u8>,
    pub sources: Vec<StreamPos>,
    /// Bytes of `outbox.jsonl` when batch `id`'s decisions were synced (informational: the
    /// outbox refuses re-decided ids whatever its length).
    pub outbox_bytes: Option<u64>,
    pub rules_version: String,
    pub rules: RuleShape,
    pub subscribers: u64,
    /// Wall-clock time it was taken (Unix ms), for the log.
    pub taken_at: i64,
    /// The format the file was written in (not stored in the meta frame: the file's header).
    pub format: u16,
}

impl Persist for Meta {
    fn encode(&self, e: &mut Enc) {
        e.u64(self.id);
        let r = &self.router;
        e.u64(r.pos);
        e.i64(r.max_ts);
        e.i64(r.wm);
        e.u64(r.batch);
        e.opt_i64(r.first_ts);
        e.u32(self.ticks.len() as u32);
        for (t, m) in &self.ticks {
            e.i64(*t);
            e.u32(*m);
        }
        e.bool(self.ticks_started);
        e.u32(self.capacity.len() as u32);
        e.buf.extend_from_slice(&self.capacity);
        e.u32(self.sources.len() as u32);
        for s in &self.sources {
            e.str(&s.stream);
            e.u64(s.offset);
            e.u64(s.records);
        }
        e.opt_i64(self.outbox_bytes.map(|b| b as i64));
        e.str(&self.rules_version);
        self.rules.encode(e);
        e.u64(self.subscribers);
        e.i64(self.taken_at);
        // Format 6 writes both, empty or not (format 5 wrote the budgets last, when any).
        for part in [&self.budgets, &self.funnel] {
            e.u32(part.len() as u32);
            e.buf.extend_from_slice(part);
        }
    }

    fn decode(d: &mut Dec) -> DecResult<Meta> {
        let id = d.u64()?;
        let router =
            RouterState { pos: d.u64()?, max_ts: d.i64()?, wm: d.i64()?, batch: d.u64()?, first_ts: d.opt_i64()? };
        let n = d.len(12)?;
        let ticks = (0..n).map(|_| Ok((d.i64()?, d.u32()?))).collect::<DecResult<_>>()?;
        let ticks_started = d.bool()?;
        let n = d.len(1)?;
        let capacity = d.take(n)?.to_vec();
        let n = d.len(20)?;
        let sources = (0..n)
            .map(|_| Ok(StreamPos { stream: d.str()?.to_owned(), offset: d.u64()?, records: d.u64()? }))
            .collect::<DecResult<_>>()?;
        let outbox_bytes = d.opt_i64()?.map(|b| b as u64);
        let rules_version = d.str()?.to_owned();
        let rules = RuleShape::decode(d)?;
        let (subscribers, taken_at) = (d.u64()?, d.i64()?);
        let part = |d: &mut Dec| -> DecResult<Vec<u8>> {
            let n = d.len(1)?;
            Ok(d.take(n)?.to_vec())
        };
        let (budgets, funnel) = match (d.at_least(6), d.done()) {
            (true, _) => (part(d)?, part(d)?),
            (false, true) => Default::default(),
            (false, false) => (part(d)?, Vec::new()),
        };
        Ok(Meta {
            id,
            router,
            ticks,
            ticks_started,
            capacity,
            budgets,
            funnel,
            sources,
            outbox_bytes,
            rules_version,
            rules,
            subscribers,
            taken_at,
            format: FORMAT,
        })
    }
}

/// `[checkpoint]` in the engine config.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Directory of checkpoint files (created if missing).
    pub dir: PathBuf,
    /// Take one after this many events (0: not by count).
    #[serde(default = "default_every_events")]
    pub every_events: u64,
    /// Take one after this much wall time, e.g. "5m" ("0s": not by time).
    #[serde(default = "default_every", with = "crate::time::duration_serde")]
    pub every: Duration,
    /// Checkpoints kept; older ones are deleted once a new one is committed (at least 2, so a
    /// corrupt newest one leaves a good one behind).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Longest a shard spends copying state between two batches while a checkpoint is being
    /// taken, e.g. "1ms" (the pause a checkpoint adds to processing).
    #[serde(default = "default_slice", with = "crate::time::duration_serde")]
    pub slice: Duration,
}

fn default_every_events() -> u64 {
    1_000_000
}
fn default_every() -> Duration {
    Duration::from_secs(300)
}
fn default_keep() -> usize {
    3
}
fn default_slice() -> Duration {
    Duration::from_millis(1)
}

fn file_name(id: u64) -> String {
    format!("checkpoint-{id:016}.{SUFFIX}")
}

/// Checkpoint files in `dir`, newest first.
fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut v = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(e),
    };
    for e in rd {
        let p = e?.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else { continue };
        let id = name
            .strip_prefix("checkpoint-")
            .and_then(|r| r.strip_suffix(&format!(".{SUFFIX}")))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            v.push((id, p));
        }
    }
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(v)
}

/// A verified checkpoint file: its meta and the record slices, still encoded.
pub struct Stored {
    pub path: PathBuf,
    pub meta: Meta,
    bytes: Vec<u8>,
    records: Vec<std::ops::Range<usize>>,
}

impl Stored {
    /// Every subscriber record, decoded one at a time by `each`.
    pub fn records(&self, mut each: impl FnMut(&mut Dec) -> DecResult<()>) -> DecResult<u64> {
        let mut n = 0;
        for r in &self.records {
            let mut d = Dec::new(&self.bytes[r.clone()]).with_version(self.meta.format);
            let count = d.u32()?;
            for _ in 0..count {
                each(&mut d)?;
                n += 1;
            }
            if !d.done() {
                return Err(Bad("bytes left over after a record slice".into()));
            }
        }
        Ok(n)
    }
}

/// Reads and verifies one checkpoint file.
pub fn read(path: &Path) -> Result<Stored, CheckpointError> {
    let p = path.display().to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|source| CheckpointError::Io { path: p.clone(), source })?;
    verify(bytes)
        .map(|(meta, bytes, records)| Stored { path: path.to_owned(), meta, bytes, records })
        .map_err(|Bad(why)| CheckpointError::Corrupt { path: p, why })
}

type Verified = (Meta, Vec<u8>, Vec<std::ops::Range<usize>>);

fn verify(bytes: Vec<u8>) -> DecResult<Verified> {
    let mut d = Dec::new(&bytes);
    if d.take(MAGIC.len()).ok() != Some(&MAGIC[..]) {
        return Err(Bad("not a tidings checkpoint (bad magic)".into()));
    }
    let v = d.u16()?;
    if !(OLDEST..=FORMAT).contains(&v) {
        return Err(Bad(format!("format version {v}; this build reads versions {OLDEST} to {FORMAT}")));
    }
    let mut records = Vec::new();
    let mut meta = None;
    loop {
        let frame_at = d.position();
        let tag = d.u8().map_err(|_| Bad("ends without its end frame (partial write)".into()))?;
        let len = d.u32()? as usize;
        let start = d.position();
        d.take(len).map_err(|_| Bad(format!("frame at byte {frame_at} runs past the end (partial write)")))?;
        match tag {
            TAG_RECORDS => records.push(start..start + len),
            // Read in the file's format: the rule shape has grown parts since format 1.
            TAG_META => meta = Some(Meta::decode(&mut Dec::new(&bytes[start..start + len]).with_version(v))?),
            TAG_END => {
                let sum = Dec::new(&bytes[start..start + len]).u64()?;
                let actual = xxhash_rust::xxh3::xxh3_64(&bytes[..frame_at]);
                if sum != actual {
                    return Err(Bad(format!("checksum mismatch (stored {sum:016x}, computed {actual:016x})")));
                }
                if d.position() != bytes.len() {
                    return Err(Bad("bytes after the end frame".into()));
                }
                break;
            }
            t => return Err(Bad(format!("unknown frame tag {t} at byte {frame_at}"))),
        }
    }
    let mut meta = meta.ok_or_else(|| Bad("no meta frame".into()))?;
    meta.format = v;
    Ok((meta, bytes, records))
}

/// The newest good checkpoint in `dir`. Bad ones on the way are renamed `*.corrupt` (kept for a
/// look, out of the way of the next run) and reported through `log`.
pub fn load_latest(dir: &Path, log: &mut dyn FnMut(String)) -> Result<Option<Stored>, CheckpointError> {
    let io = |source| CheckpointError::Io { path: dir.display().to_string(), source };
    for (_, path) in list(dir).map_err(io)? {
        match read(&path) {
            Ok(l) => return Ok(Some(l)),
            Err(e) => {
                let aside = path.with_extension("corrupt");
                log(format!("checkpoint {e}: skipped (set aside as {})", aside.display()));
                std::fs::rename(&path, &aside).map_err(io)?;
            }
        }
    }
    Ok(None)
}

/// What the shards and the router send the writer thread.
pub enum Part {
    /// A checkpoint starts after batch `id`; `shards` shards will send records.
    Begin { id: u64, shards: usize },
    /// Encoded subscriber records (a count, then the records).
    Records { id: u64, bytes: Vec<u8> },
    /// A shard has sent all its records; its daily ticks at the boundary (the same on every
    /// shard) and whether they had started.
    ShardDone { id: u64, ticks: (Vec<(Millis, u32)>, bool) },
    /// The rest, once batch `id`'s decisions are synced to the outbox.
    Meta { id: u64, meta: Box<Meta> },
}

/// The thread that writes checkpoint files: the hot threads only hand it bytes.
pub struct Writer {
    tx: mpsc::Sender<Part>,
    busy: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub fn start(cfg: &CheckpointConfig) -> std::io::Result<Writer> {
        std::fs::create_dir_all(&cfg.dir)?;
        // A checkpoint being written when the last run died: never committed, of no use.
        for e in std::fs::read_dir(&cfg.dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "tmp") {
                std::fs::remove_file(&p)?;
            }
        }
        let (tx, rx) = mpsc::channel();
        let busy = Arc::new(AtomicBool::new(false));
        let (dir, keep, b) = (cfg.dir.clone(), cfg.keep.max(2), Arc::clone(&busy));
        let handle = std::thread::Builder::new()
            .name("tidings-checkpoint".into())
            .spawn(move || write_loop(&dir, keep, rx, &b))?;
        Ok(Writer { tx, busy, handle: Some(handle) })
    }

    pub fn sender(&self) -> mpsc::Sender<Part> {
        self.tx.clone()
    }

    /// A checkpoint is being taken or written.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Starts checkpoint `id` (the caller saw `busy()` false).
    pub fn begin(&self, id: u64, shards: usize) {
        self.busy.store(true, Ordering::Release);
        let _ = self.tx.send(Part::Begin { id, shards });
    }

    /// Waits for the checkpoint in progress (if any) to be written.
    pub fn finish(mut self) {
        let Writer { tx, handle, .. } = &mut self;
        drop(std::mem::replace(tx, mpsc::channel().0));
        if let Some(h) = handle.take() {
            let _ = h.join();
        }
    }
}

struct InProgress {
    id: u64,
    tmp: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    hash: xxhash_rust::xxh3::Xxh3,
    shards_left: usize,
    meta: Option<Box<Meta>>,
    ticks: Option<(Vec<(Millis, u32)>, bool)>,
    records: u64,
    error: Option<String>,
    bytes: u64,
    started: Instant,
}

impl InProgress {
    fn put(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.hash.update(data);
        self.bytes += data.len() as u64;
        if let Some(f) = &mut self.file {
            if let Err(e) = f.write_all(data) {
                self.error = Some(e.to_string());
            }
        }
    }

    fn frame(&mut self, tag: u8, payload: &[u8]) {
        self.put(&[tag]);
        self.put(&(payload.len() as u32).to_le_bytes());
        self.put(payload);
    }
}

fn write_loop(dir: &Path, keep: usize, rx: mpsc::Receiver<Part>, busy: &AtomicBool) {
    // Normally one at a time; the last one of a run may begin before the one before it is
    // complete (they complete in order).
    let mut open: Vec<InProgress> = Vec::new();
    for part in rx {
        let id = match &part {
            Part::Begin { id, .. } | Part::Records { id, .. } | Part::ShardDone { id, .. } | Part::Meta { id, .. } => {
                *id
            }
        };
        let cur = open.iter_mut().find(|c| c.id == id);
        match (part, cur) {
            (Part::Begin { id, shards }, _) => {
                let tmp = dir.join(format!("{}.tmp", file_name(id)));
                let (file, error) = match std::fs::File::create(&tmp) {
                    Ok(f) => (Some(std::io::BufWriter::with_capacity(1 << 20, f)), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                let mut c = InProgress {
                    id,
                    tmp,
                    file,
                    hash: xxhash_rust::xxh3::Xxh3::new(),
                    shards_left: shards,
                    meta: None,
                    ticks: None,
                    records: 0,
                    error,
                    bytes: 0,
                    started: Instant::now(),
                };
                c.put(MAGIC);
                c.put(&FORMAT.to_le_bytes());
                open.push(c);
            }
            (Part::Records { bytes, .. }, Some(c)) => {
                c.records += bytes.get(..4).map_or(0, |n| u64::from(u32::from_le_bytes([n[0], n[1], n[2], n[3]])));
                c.frame(TAG_RECORDS, &bytes);
            }
            (Part::ShardDone { ticks, .. }, Some(c)) => {
                c.shards_left = c.shards_left.saturating_sub(1);
                c.ticks = Some(ticks);
            }
            (Part::Meta { meta, .. }, Some(c)) => c.meta = Some(meta),
            (_, None) => {}
        }
        while let Some(i) = open.iter().position(|c| c.shards_left == 0 && c.meta.is_some()) {
            commit(dir, keep, open.remove(i));
        }
        busy.store(!open.is_empty(), Ordering::Release);
    }
    // The engine stopped before a checkpoint was complete: its partial file goes.
    for c in open {
        let _ = std::fs::remove_file(&c.tmp);
    }
}

fn commit(dir: &Path, keep: usize, mut c: InProgress) {
    let mut meta = c.meta.take().unwrap_or_default();
    meta.taken_at = chrono::Utc::now().timestamp_millis();
    meta.subscribers = c.records;
    if let Some((ticks, started)) = c.ticks.take() {
        meta.ticks = ticks;
        meta.ticks_started = started;
    }
    let mut e = Enc::default();
    meta.encode(&mut e);
    c.frame(TAG_META, &e.buf);
    let sum = c.hash.digest();
    c.frame(TAG_END, &sum.to_le_bytes());
    let done = (|| -> std::io::Result<()> {
        if let Some(e) = &c.error {
            return Err(std::io::Error::other(e.clone()));
        }
        let f = c.file.take().ok_or_else(|| std::io::Error::other("no file"))?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&c.tmp, dir.join(file_name(c.id)))?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    match done {
        Ok(()) => {
            eprintln!(
                "tidings: checkpoint {} written: {} subscribers, {:.1} MB in {:.2} s (input position {})",
                c.id,
                meta.subscribers,
                c.bytes as f64 / 1e6,
                c.started.elapsed().as_secs_f64(),
                meta.router.pos
            );
            crate::telemetry::checkpoint(c.bytes, c.started.elapsed());
            if let Ok(all) = list(dir) {
                for (_, old) in all.into_iter().skip(keep) {
                    let _ = std::fs::remove_file(old);
                }
            }
        }
        Err(e) => {
            eprintln!(
                "tidings: checkpoint {} NOT written ({}: {e}); the previous one stays in force",
                c.id,
                c.tmp.display()
            );
            let _ = std::fs::remove_file(&c.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, id: u64, records: &[u8]) {
        let cfg = CheckpointConfig {
            dir: dir.to_owned(),
            every_events: 0,
            every: Duration::ZERO,
            keep: 5,
            slice: Duration::from_millis(1),
        };
        let w = Writer::start(&cfg).unwrap();
        let to = w.sender();
        w.begin(id, 1);
        let mut bytes = 1u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(records);
        to.send(Part::Records { id, bytes }).unwrap();
        to.send(Part::ShardDone { id, ticks: (vec![(42, 540)], true) }).unwrap();
        let meta = Meta {
            id,
            router: RouterState { pos: id * 10, max_ts: 7, wm: 5, batch: id + 1, first_ts: Some(1) },
            sources: vec![StreamPos { stream: "file:e.jsonl".into(), offset: 1234, records: 10 }],
            rules_version: "v1".into(),
            ..Meta::default()
        };
        to.send(Part::Meta { id, meta: Box::new(meta) }).unwrap();
        drop(to);
        w.finish();
    }

    #[test]
    fn a_checkpoint_reads_back_and_a_damaged_one_is_set_aside_for_the_one_before() {
        let dir = std::env::temp_dir().join(format!("tidings-ckpt-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write(&dir, 3, b"first");
        write(&dir, 4, b"second");
        let l = load_latest(&dir, &mut |m| panic!("{m}")).unwrap().expect("a checkpoint");
        assert_eq!((l.meta.id, l.meta.router.pos, l.meta.subscribers), (4, 40, 1));
        assert_eq!((l.meta.ticks.clone(), l.meta.ticks_started), (vec![(42, 540)], true));
        assert_eq!(l.meta.sources[0].offset, 1234);
        let mut seen = Vec::new();
        l.records(|d| {
            seen.push(d.take(6)?.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![b"second".to_vec()]);

        // Flipped bytes: the checksum catches them; the previous checkpoint is used.
        let newest = dir.join(file_name(4));
        let mut b = std::fs::read(&newest).unwrap();
        b[18] ^= 1;
        std::fs::write(&newest, &b).unwrap();
        let mut log = Vec::new();
        let l = load_latest(&dir, &mut |m| log.push(m)).unwrap().expect("the older one");
        assert_eq!(l.meta.id, 3);
        assert!(log[0].contains("checksum mismatch"), "{log:?}");
        assert!(dir.join(file_name(4)).with_extension("corrupt").exists());

        // Cut short (a partial write): detected, and with nothing older, no checkpoint.
        let only = dir.join(file_name(3));
        let b = std::fs::read(&only).unwrap();
        std::fs::write(&only, &b[..b.len() - 5]).unwrap();
        let mut log = Vec::new();
        assert!(load_latest(&dir, &mut |m| log.push(m)).unwrap().is_none());
        assert!(log[0].contains("partial write"), "{log:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Format 5 added the distinct counts to the rule shape: a format 4 meta frame, read in its
    /// own format, has none (it was read in this build's format once, and misread).
    #[test]
    fn a_format_4_meta_reads_its_rule_shape_without_distinct_counts() {
        let mut meta = Meta { rules_version: "v1".into(), subscribers: 7, taken_at: 9, ..Meta::default() };
        meta.rules.aggs = vec!["a".into()];
        meta.rules.derived = vec!["d: Int".into()];
        let v5 = format_5(&meta);
        let cut = v5.len() - 16;
        assert_eq!(&v5[cut - 4..cut], &[0; 4], "the empty distinct list this test cuts");
        let v4 = [&v5[..cut - 4], &v5[cut..]].concat();
        let back = Meta::decode(&mut Dec::new(&v4).with_version(4)).expect("a format 4 meta");
        assert_eq!((back.rules, back.subscribers, back.taken_at), (meta.rules.clone(), 7, 9));
        assert!(Meta::decode(&mut Dec::new(&v4)).is_err(), "read as this build's format: cut short");
    }

    /// A meta frame as format 5 wrote it with nothing spent: this build's, without the two empty
    /// parts format 6 ends with.
    fn format_5(meta: &Meta) -> Vec<u8> {
        assert!(meta.budgets.is_empty() && meta.funnel.is_empty());
        let mut e = Enc::default();
        meta.encode(&mut e);
        assert_eq!(&e.buf[e.buf.len() - 8..], &[0; 8]);
        e.buf.truncate(e.buf.len() - 8);
        e.buf
    }

    /// Format 6 keeps the funnel's counts after the budgets; a format 5 frame, with or without
    /// budgets spent, reads with its budgets and no funnel.
    #[test]
    fn a_format_5_meta_reads_its_budgets_and_no_funnel_and_format_6_keeps_both() {
        let meta = Meta { rules_version: "v1".into(), subscribers: 3, ..Meta::default() };
        let v5 = format_5(&meta);
        let back = Meta::decode(&mut Dec::new(&v5).with_version(5)).expect("format 5, nothing spent");
        assert!(back.budgets.is_empty() && back.funnel.is_empty());
        let spent = [v5.clone(), 3u32.to_le_bytes().to_vec(), b"abc".to_vec()].concat();
        let back = Meta::decode(&mut Dec::new(&spent).with_version(5)).expect("format 5 with budgets");
        assert_eq!((back.budgets, back.funnel), (b"abc".to_vec(), Vec::new()));
        let now = Meta { budgets: b"b".to_vec(), funnel: b"funnel".to_vec(), ..meta };
        let mut e = Enc::default();
        now.encode(&mut e);
        let back = Meta::decode(&mut Dec::new(&e.buf).with_version(FORMAT)).expect("format 6");
        assert_eq!((back.budgets, back.funnel), (b"b".to_vec(), b"funnel".to_vec()));
        let mut e = Enc::default();
        Meta { budgets: Vec::new(), ..now }.encode(&mut e);
        let back = Meta::decode(&mut Dec::new(&e.buf)).expect("format 6, nothing spent");
        assert_eq!((back.budgets, back.funnel), (Vec::new(), b"funnel".to_vec()));
    }
}
