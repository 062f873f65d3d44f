//! Where lines come from: files (JSON Lines, merged by event time when there are several),
//! standard input, the built-in generator, and Fluvio topics (the `fluvio` cargo feature).
//! Every source yields decoded events or dead letters; a source never stops on a bad line.

#[cfg(feature = "fluvio")]
pub mod fluvio;

use crate::event::{DeadLetter, DeadReason, Decoder, Event};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Reads lines of at most `max` bytes; a longer line is returned cut to `max + 1` bytes (so
/// the decoder sees it is too long) without ever holding the whole of it in memory.
pub struct LineReader<R> {
    inner: BufReader<R>,
    max: usize,
}

impl<R: Read> LineReader<R> {
    pub fn new(r: R, max: usize) -> Self {
        LineReader { inner: BufReader::with_capacity(1 << 16, r), max }
    }

    /// The next line without its newline; `None` at the end.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<()>> {
        buf.clear();
        let mut any = false;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Ok(any.then_some(()));
            }
            any = true;
            let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = (self.max + 1).saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..take.min(room)]);
            self.inner.consume(take);
            if done {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                return Ok(Some(()));
            }
        }
    }
}

/// Decoded items from one reader.
pub struct Lines<R> {
    reader: LineReader<R>,
    decoder: Decoder,
    name: String,
    line: u64,
    buf: Vec<u8>,
}

impl<R: Read> Lines<R> {
    pub fn new(r: R, name: &str, decoder: Decoder) -> Self {
        let max = decoder.max_line;
        Lines { reader: LineReader::new(r, max), decoder, name: name.to_string(), line: 0, buf: Vec::new() }
    }
}

impl<R: Read> Iterator for Lines<R> {
    type Item = Result<Event, DeadLetter>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.reader.next_line(&mut self.buf) {
                Ok(Some(())) => {
                    self.line += 1;
                    if let Some(item) = self.decoder.decode(&self.buf, &self.name, self.line) {
                        return Some(item);
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    self.line += 1;
                    return Some(Err(DeadLetter::new(
                        DeadReason::BadJson,
                        format!("read error: {e}"),
                        &self.name,
                        self.line,
                        b"",
                    )));
                }
            }
        }
    }
}

/// Opens a file of events.
pub fn file(path: &Path, decoder: Decoder) -> std::io::Result<Lines<std::fs::File>> {
    Ok(Lines::new(std::fs::File::open(path)?, &path.display().to_string(), decoder))
}

/// Merges several decoded streams by event time (ties: the earlier-named stream first), so
/// that separate usage, location and CRM files replay as the single timeline they were.
/// Dead letters pass straight through as they are met.
pub struct Merge<I: Iterator<Item = Result<Event, DeadLetter>>> {
    streams: Vec<I>,
    heads: Vec<Option<Event>>,
    pending_dead: std::collections::VecDeque<DeadLetter>,
}

impl<I: Iterator<Item = Result<Event, DeadLetter>>> Merge<I> {
    pub fn new(streams: Vec<I>) -> Self {
        let heads = streams.iter().map(|_| None).collect();
        let mut m = Merge { streams, heads, pending_dead: Default::default() };
        for i in 0..m.streams.len() {
            m.refill(i);
        }
        m
    }

    fn refill(&mut self, i: usize) {
        while self.heads[i].is_none() {
            match self.streams[i].next() {
                Some(Ok(ev)) => self.heads[i] = Some(ev),
                Some(Err(d)) => self.pending_dead.push_back(d),
                None => return,
            }
        }
    }
}

impl<I: Iterator<Item = Result<Event, DeadLetter>>> Iterator for Merge<I> {
    type Item = Result<Event, DeadLetter>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(d) = self.pending_dead.pop_front() {
            return Some(Err(d));
        }
        let (i, _) = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|e| (i, e.ts)))
            .min_by_key(|&(i, ts)| (ts, i))?;
        let ev = self.heads[i].take();
        self.refill(i);
        ev.map(Ok)
    }
}

/// Generated event lines, decoded like any other source.
pub fn generated(
    opts: &crate::generator::GenOptions,
    decoder: Decoder,
) -> impl Iterator<Item = Result<Event, DeadLetter>> {
    crate::generator::events(opts)
        .enumerate()
        .filter_map(move |(i, line)| decoder.decode(line.as_bytes(), "generator", i as u64 + 1))
}

/// Decodes a stream of raw lines on `workers` threads while keeping input order: chunk `k`
/// goes to worker `k % workers`, and results are read back in the same rotation, so the
/// engine sees exactly the sequence a single decoder would produce — dead letters included.
/// Decoding is about a third of the work per event; this takes it off the routing thread.
pub struct ParallelDecode {
    results: Vec<std::sync::mpsc::Receiver<Vec<Result<Event, DeadLetter>>>>,
    next: usize,
    current: std::vec::IntoIter<Result<Event, DeadLetter>>,
    done: bool,
}

/// Lines per chunk handed to a decode worker.
const CHUNK: usize = 1024;

/// Raw lines back to back; line `i` ends at `ends[i]` and starts where line `i - 1` ended.
struct Chunk {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl ParallelDecode {
    /// `reader` is read on its own thread; `name` labels dead letters.
    pub fn new<R: Read + Send + 'static>(reader: R, name: &str, decoder: Decoder, workers: usize) -> ParallelDecode {
        let workers = workers.max(1);
        let mut inputs = Vec::new();
        let mut results = Vec::new();
        for _ in 0..workers {
            let (in_tx, in_rx) = std::sync::mpsc::sync_channel::<(u64, Chunk)>(2);
            let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<Vec<Result<Event, DeadLetter>>>(2);
            let d = decoder.clone();
            let name = name.to_string();
            std::thread::spawn(move || {
                for (first_line, chunk) in in_rx {
                    let decoded: Vec<_> = chunk
                        .ends
                        .iter()
                        .enumerate()
                        .filter_map(|(i, &end)| {
                            let start = if i == 0 { 0 } else { chunk.ends[i - 1] };
                            d.decode(&chunk.bytes[start..end], &name, first_line + i as u64)
                        })
                        .collect();
                    if out_tx.send(decoded).is_err() {
                        return;
                    }
                }
            });
            inputs.push(in_tx);
            results.push(out_rx);
        }
        let max = decoder.max_line;
        let name = name.to_string();
        std::thread::spawn(move || {
            let mut reader = LineReader::new(reader, max);
            let mut line_no = 0u64;
            let mut buf = Vec::new();
            for k in 0.. {
                // One buffer per chunk, lines back to back: one allocation, not one per line.
                let mut chunk = Chunk { bytes: Vec::with_capacity(CHUNK * 200), ends: Vec::with_capacity(CHUNK) };
                let first = line_no + 1;
                while chunk.ends.len() < CHUNK {
                    match reader.next_line(&mut buf) {
                        Ok(Some(())) => {
                            line_no += 1;
                            chunk.bytes.extend_from_slice(&buf);
                            chunk.ends.push(chunk.bytes.len());
                        }
                        Ok(None) => break,
                        Err(e) => {
                            // Unreadable input ends the stream, reported as a dead letter line.
                            line_no += 1;
                            chunk.bytes.extend_from_slice(format!("\u{0}read error in {name}: {e}").as_bytes());
                            chunk.ends.push(chunk.bytes.len());
                            break;
                        }
                    }
                }
                let last = chunk.ends.len() < CHUNK;
                if !chunk.ends.is_empty() && inputs[k % inputs.len()].send((first, chunk)).is_err() {
                    return;
                }
                if last {
                    return;
                }
            }
        });
        ParallelDecode { results, next: 0, current: Vec::new().into_iter(), done: false }
    }
}

impl Iterator for ParallelDecode {
    type Item = Result<Event, DeadLetter>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            let n = self.results.len();
            match self.results[self.next % n].recv() {
                Ok(chunk) => {
                    self.next += 1;
                    self.current = chunk.into_iter();
                }
                // The reader stopped: every worker after it in the rotation has nothing more.
                Err(_) => self.done = true,
            }
        }
    }
}

/// The sending side of a live source's stream: a line and its producer's name, `None` at the
/// end (a blank line wakes a waiting source).
pub type Feed = std::sync::mpsc::SyncSender<Option<(&'static str, Vec<u8>)>>;

/// A live stream and the lines the engine feeds back to itself (outcome events from the
/// delivery side), interleaved in arrival order. Ends when the primary stream ends; what the
/// feedback producers send after that is left to the next run (it is in `outcomes.jsonl`).
pub struct Live {
    rx: std::sync::mpsc::Receiver<Option<(&'static str, Vec<u8>)>>,
    decoder: Decoder,
    lines: std::collections::HashMap<&'static str, u64>,
    /// Told the producer of each line as it is taken (the IVR side tracks its requests so).
    on_take: Option<Box<dyn Fn(&'static str) + Send>>,
    /// `Idle` was the last thing said.
    idle: bool,
    /// Explain requests, answered between events (a blank line on the feed wakes the source).
    explain: Option<std::sync::mpsc::Receiver<crate::engine::ExplainRequest>>,
    /// New rule sets to swap in between events (hot reload).
    reload: Option<std::sync::mpsc::Receiver<std::sync::Arc<crate::rules::RuleSet>>>,
    /// Lines that go ahead of the stream's backlog (IVR requests: a caller is waiting).
    priority: Option<std::sync::mpsc::Receiver<(&'static str, Vec<u8>)>>,
}

impl Live {
    /// Reads `primary` (named `name`) on a thread of its own; returns the source and a sender
    /// for fed-back lines (named by their producer).
    pub fn new<R: Read + Send + 'static>(primary: R, name: &'static str, decoder: Decoder) -> (Live, Feed) {
        let (tx, rx) = std::sync::mpsc::sync_channel(4096);
        let t = tx.clone();
        let max = decoder.max_line;
        std::thread::Builder::new()
            .name(format!("tidings-{name}"))
            .spawn(move || {
                let mut r = LineReader::new(primary, max);
                let mut buf = Vec::new();
                while let Ok(Some(())) = r.next_line(&mut buf) {
                    if t.send(Some((name, std::mem::take(&mut buf)))).is_err() {
                        return;
                    }
                }
                let _ = t.send(None);
            })
            .ok();
        (
            Live {
                rx,
                decoder,
                lines: std::collections::HashMap::new(),
                on_take: None,
                idle: false,
                explain: None,
                reload: None,
                priority: None,
            },
            tx,
        )
    }

    /// Where explain requests go; send a blank line on the feed after each to wake the source.
    pub fn explain_requests(&mut self) -> std::sync::mpsc::Sender<crate::engine::ExplainRequest> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.explain = Some(rx);
        tx
    }

    /// Where lines that must not wait behind the stream's backlog go; send a blank line on the
    /// feed after each, to wake the source when it waits.
    pub fn priority(&mut self) -> std::sync::mpsc::SyncSender<(&'static str, Vec<u8>)> {
        let (tx, rx) = std::sync::mpsc::sync_channel(4096);
        self.priority = Some(rx);
        tx
    }

    /// Where new rule sets go (hot reload); send a blank line on the feed after each.
    pub fn reloads(&mut self) -> std::sync::mpsc::Sender<std::sync::Arc<crate::rules::RuleSet>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.reload = Some(rx);
        tx
    }

    /// Calls `f` with the producer's name of every line as the engine takes it.
    pub fn on_take(&mut self, f: impl Fn(&'static str) + Send + 'static) {
        self.on_take = Some(Box::new(f));
    }
}

impl Iterator for Live {
    type Item = crate::engine::Input;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.reload.as_ref().and_then(|rx| rx.try_recv().ok()) {
                return Some(crate::engine::Input::Reload(r));
            }
            if let Some(r) = self.explain.as_ref().and_then(|rx| rx.try_recv().ok()) {
                return Some(crate::engine::Input::Explain(r));
            }
            let urgent = self.priority.as_ref().and_then(|rx| rx.try_recv().ok());
            let waited_on = urgent.is_some();
            let next = match urgent {
                Some(line) => Some(line),
                None => match self.rx.try_recv() {
                    Ok(next) => next,
                    // Nothing ready: say so once, then wait.
                    Err(std::sync::mpsc::TryRecvError::Empty) if !self.idle => {
                        self.idle = true;
                        return Some(crate::engine::Input::Idle);
                    }
                    Err(_) => self.rx.recv().ok()?,
                },
            };
            self.idle = false;
            let (source, line) = next?;
            if let Some(f) = &self.on_take {
                f(source);
            }
            let n = self.lines.entry(source).or_default();
            *n += 1;
            if let Some(item) = self.decoder.decode(&line, source, *n) {
                return Some(match waited_on {
                    true => crate::engine::Input::Urgent(item),
                    false => crate::engine::Input::Item(item),
                });
            }
        }
    }
}

/// One instance's share of a source every instance reads whole (a file, stdin, the generator):
/// the events of subscribers it owns (`[scale]`), and the dead letters when it is instance 0
/// (a bad line has no owner; one instance reports it). Everything else passes.
pub struct Owned<I> {
    inner: I,
    owner: Box<dyn Fn(crate::util::Msisdn) -> bool + Send>,
    keep_dead: bool,
    /// Events left to the other instances.
    pub skipped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<I> Owned<I> {
    pub fn new(inner: I, owner: impl Fn(crate::util::Msisdn) -> bool + Send + 'static, keep_dead: bool) -> Self {
        Owned { inner, owner: Box::new(owner), keep_dead, skipped: Default::default() }
    }
}

impl<I: Iterator<Item = crate::engine::Input>> Iterator for Owned<I> {
    type Item = crate::engine::Input;
    fn next(&mut self) -> Option<Self::Item> {
        use crate::engine::Input;
        loop {
            let item = self.inner.next()?;
            let mine = match &item {
                Input::Item(Ok(e)) | Input::Urgent(Ok(e)) => (self.owner)(e.msisdn),
                Input::Item(Err(_)) | Input::Urgent(Err(_)) => self.keep_dead,
                _ => true,
            };
            if mine {
                return Some(item);
            }
            if matches!(item, Input::Item(Ok(_)) | Input::Urgent(Ok(_))) {
                self.skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}
