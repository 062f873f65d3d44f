//! Where lines come from: files (JSON Lines, merged by event time when there are several),
//! standard input, the built-in generator, and Fluvio topics (the `fluvio` cargo feature).
//! Every source yields decoded events or dead letters; a source never stops on a bad line.

#[cfg(feature = "fluvio")]
pub mod fluvio;
#[cfg(feature = "fluvio")]
pub mod fluvio_meta;

mod live;
pub mod scale;
pub use live::{Feed, Live};

use crate::event::{DeadLetter, DeadReason, Decoder, Event};
use crate::state::checkpoint::StreamPos;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The positions of a source's streams as the engine takes items (one atomic store per item:
/// the engine's router reads them at a checkpoint, from the same thread).
pub struct Tracker {
    names: Vec<String>,
    at: Vec<(AtomicU64, AtomicU64)>,
}

impl Tracker {
    /// The offset of a stream whose position is not known yet (a Fluvio partition started at
    /// its end that has yielded nothing): left out of [`Tracker::positions`], so that a restart
    /// starts it as configured.
    pub const UNREAD: u64 = u64::MAX;

    /// A tracker for these streams, each at its start position.
    pub fn new(start: Vec<StreamPos>) -> Arc<Tracker> {
        Arc::new(Tracker {
            at: start.iter().map(|p| (AtomicU64::new(p.offset), AtomicU64::new(p.records))).collect(),
            names: start.into_iter().map(|p| p.stream).collect(),
        })
    }

    pub fn set(&self, stream: usize, (offset, records): (u64, u64)) {
        if let Some((o, r)) = self.at.get(stream) {
            o.store(offset, Ordering::Relaxed);
            r.store(records, Ordering::Relaxed);
        }
    }

    pub fn positions(&self) -> Vec<StreamPos> {
        self.names
            .iter()
            .zip(&self.at)
            .map(|(n, (o, r))| StreamPos {
                stream: n.clone(),
                offset: o.load(Ordering::Relaxed),
                records: r.load(Ordering::Relaxed),
            })
            .filter(|p| p.offset != Self::UNREAD)
            .collect()
    }
}

/// A stream that knows how far it has been read: (bytes consumed, lines consumed) after the
/// last item it returned.
pub trait Positioned {
    fn position(&self) -> (u64, u64);
}

/// The stream name of an event file in checkpoints.
pub fn file_stream(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// Reads lines of at most `max` bytes; a longer line is returned cut to `max + 1` bytes (so
/// the decoder sees it is too long) without ever holding the whole of it in memory; the bytes
/// it skips are counted, so the line's real length is known.
pub struct LineReader<R> {
    inner: BufReader<R>,
    max: usize,
    /// Bytes consumed so far (from where the reader started).
    consumed: u64,
    /// The real length of the last line returned (without its newline), cut or not.
    last_len: u64,
}

impl<R: Read> LineReader<R> {
    pub fn new(r: R, max: usize) -> Self {
        LineReader { inner: BufReader::with_capacity(1 << 16, r), max, consumed: 0, last_len: 0 }
    }

    /// Bytes consumed: the end of the last line returned.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Bytes read from the input and not yet returned: zero means the next line needs a read.
    pub fn buffered(&self) -> usize {
        self.inner.buffer().len()
    }

    /// The next line without its newline, handed to `f` with its real length (more than the
    /// slice's when the line was cut); `None` at the end. A line that is whole in the read buffer
    /// is handed over where it lies; one that is not (it crosses the buffer's end, or is longer
    /// than the limit) is put together in `buf` first, as [`LineReader::next_line`] does.
    pub fn with_line<T>(&mut self, buf: &mut Vec<u8>, f: impl FnOnce(&[u8], u64) -> T) -> std::io::Result<Option<T>> {
        let chunk = self.inner.buffer();
        if let Some(i) = memchr::memchr(b'\n', chunk) {
            if i <= self.max {
                let line = &chunk[..i];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                self.last_len = line.len() as u64;
                let out = f(line, self.last_len);
                self.inner.consume(i + 1);
                self.consumed += i as u64 + 1;
                return Ok(Some(out));
            }
        }
        Ok(self.next_line(buf)?.map(|()| f(buf, self.last_len)))
    }

    /// The real length of the last line returned (without its newline), also when it was cut.
    pub fn last_len(&self) -> u64 {
        self.last_len
    }

    /// The next line without its newline; `None` at the end.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<()>> {
        buf.clear();
        let mut any = false;
        // The line's bytes (cut or not) and its last one, for a `\r` before the newline.
        let (mut len, mut last) = (0u64, 0u8);
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                self.last_len = len;
                return Ok(any.then_some(()));
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let content = if done { take - 1 } else { take };
            if content > 0 {
                len += content as u64;
                last = chunk[content - 1];
            }
            let room = (self.max + 1).saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..take.min(room)]);
            self.inner.consume(take);
            self.consumed += take as u64;
            if done {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                self.last_len = len - u64::from(last == b'\r');
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
    tracker: Option<(Arc<Tracker>, usize)>,
}

impl<R: Read> Lines<R> {
    pub fn new(r: R, name: &str, decoder: Decoder) -> Self {
        let max = decoder.max_line;
        Lines {
            reader: LineReader::new(r, max),
            decoder,
            name: name.to_string(),
            line: 0,
            buf: Vec::new(),
            tracker: None,
        }
    }

    /// Reading resumes at `at` (the reader is already there): offsets and line numbers go on
    /// from it.
    pub fn resumed(mut self, at: &StreamPos) -> Self {
        self.reader.consumed = at.offset;
        self.line = at.records;
        self
    }

    /// Reports each item's end to `tracker` as stream `stream` when it is returned.
    pub fn tracked(mut self, tracker: Arc<Tracker>, stream: usize) -> Self {
        self.tracker = Some((tracker, stream));
        self
    }

    fn report(&self) {
        if let Some((t, i)) = &self.tracker {
            t.set(*i, self.position());
        }
    }
}

impl<R> Positioned for Lines<R> {
    fn position(&self) -> (u64, u64) {
        (self.reader.consumed, self.line)
    }
}

impl<R: Read> Iterator for Lines<R> {
    type Item = Result<Event, DeadLetter>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (decoder, name, line) = (&self.decoder, &self.name, self.line + 1);
            match self.reader.with_line(&mut self.buf, |l, len| decoder.decode_sized(l, len, name, line)) {
                Ok(Some(item)) => {
                    self.line += 1;
                    if let Some(item) = item {
                        self.report();
                        return Some(item);
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    self.line += 1;
                    self.report();
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
/// Each stream is read one event ahead; a stream's position (see [`Tracker`]) is that of the
/// last item the merge returned from it, so the event held ahead is read again after a restart.
pub struct Merge<I: Iterator<Item = Result<Event, DeadLetter>> + Positioned> {
    streams: Vec<I>,
    heads: Vec<Option<(Event, (u64, u64))>>,
    pending_dead: std::collections::VecDeque<(DeadLetter, usize, (u64, u64))>,
    tracker: Option<Arc<Tracker>>,
}

impl<I: Iterator<Item = Result<Event, DeadLetter>> + Positioned> Merge<I> {
    pub fn new(streams: Vec<I>) -> Self {
        let heads = streams.iter().map(|_| None).collect();
        let mut m = Merge { streams, heads, pending_dead: Default::default(), tracker: None };
        for i in 0..m.streams.len() {
            m.refill(i);
        }
        m
    }

    /// Reports each returned item's end to `tracker` (stream `i` = the `i`th stream).
    pub fn tracked(mut self, tracker: Arc<Tracker>) -> Self {
        self.tracker = Some(tracker);
        self
    }

    fn refill(&mut self, i: usize) {
        while self.heads[i].is_none() {
            match self.streams[i].next() {
                Some(Ok(ev)) => self.heads[i] = Some((ev, self.streams[i].position())),
                Some(Err(d)) => self.pending_dead.push_back((d, i, self.streams[i].position())),
                None => return,
            }
        }
    }

    fn report(&self, i: usize, at: (u64, u64)) {
        if let Some(t) = &self.tracker {
            t.set(i, at);
        }
    }
}

impl<I: Iterator<Item = Result<Event, DeadLetter>> + Positioned> Iterator for Merge<I> {
    type Item = Result<Event, DeadLetter>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some((d, i, at)) = self.pending_dead.pop_front() {
            self.report(i, at);
            return Some(Err(d));
        }
        let (i, _) = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|e| (i, e.0.ts)))
            .min_by_key(|&(i, ts)| (ts, i))?;
        let (ev, at) = self.heads[i].take()?;
        self.report(i, at);
        self.refill(i);
        Some(Ok(ev))
    }
}

/// Generated event lines, decoded like any other source.
pub fn generated(
    opts: &crate::generator::GenOptions,
    decoder: Decoder,
) -> impl Iterator<Item = Result<Event, DeadLetter>> {
    generated_from(opts, decoder, 0, None)
}

/// The generator's events after the first `skip` lines (a resumed run), each reported to
/// `tracker` as stream 0 (`generator`, records = lines generated) when it is taken.
pub fn generated_from(
    opts: &crate::generator::GenOptions,
    decoder: Decoder,
    skip: u64,
    tracker: Option<Arc<Tracker>>,
) -> impl Iterator<Item = Result<Event, DeadLetter>> {
    crate::generator::events(opts).enumerate().skip(skip as usize).filter_map(move |(i, line)| {
        let item = decoder.decode(line.as_bytes(), "generator", i as u64 + 1)?;
        if let Some(t) = &tracker {
            t.set(0, (0, i as u64 + 1));
        }
        Some(item)
    })
}

/// Decodes a stream of raw lines on `workers` threads while keeping input order: chunk `k`
/// goes to worker `k % workers`, and results are read back in the same rotation, so the
/// engine sees exactly the sequence a single decoder would produce — dead letters included.
/// Decoding is about a third of the work per event; this takes it off the routing thread.
pub struct ParallelDecode {
    results: Vec<std::sync::mpsc::Receiver<Vec<Decoded>>>,
    /// Where each worker's emptied result vectors go back, to be filled again.
    spares: Vec<std::sync::mpsc::SyncSender<Vec<Decoded>>>,
    next: usize,
    /// The chunk being handed out, in reverse (taken from the end).
    current: Vec<Decoded>,
    /// The worker `current` came from.
    from: usize,
    done: bool,
    tracker: Option<Arc<Tracker>>,
}

/// An item and where its line ends: (bytes, lines) consumed.
type Decoded = (Result<Event, DeadLetter>, (u64, u64));

/// Lines per chunk handed to a decode worker.
const CHUNK: usize = 1024;

/// Raw lines back to back; line `i` ends at `ends[i]` and starts where line `i - 1` ended, and
/// ends at byte `offsets[i]` of the input. `long` has the real length of each line that was cut
/// (too long), by its index.
struct Chunk {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    offsets: Vec<u64>,
    long: Vec<(usize, u64)>,
}

impl ParallelDecode {
    /// `reader` is read on its own thread; `name` labels dead letters.
    pub fn new<R: Read + Send + 'static>(reader: R, name: &str, decoder: Decoder, workers: usize) -> ParallelDecode {
        let start = StreamPos { stream: String::new(), offset: 0, records: 0 };
        ParallelDecode::resumed(reader, name, decoder, workers, &start, None)
    }

    /// [`ParallelDecode::new`] on a reader already at `at`, reporting each item's end to
    /// `tracker` (as its stream 0) when it is taken.
    pub fn resumed<R: Read + Send + 'static>(
        reader: R,
        name: &str,
        decoder: Decoder,
        workers: usize,
        at: &StreamPos,
        tracker: Option<Arc<Tracker>>,
    ) -> ParallelDecode {
        let workers = workers.max(1);
        let mut inputs = Vec::new();
        let mut results = Vec::new();
        let mut spares = Vec::new();
        // Buffers go round instead of being made afresh for every chunk: fresh memory comes from
        // the kernel zeroed page by page, and a growing vector copies itself as it doubles.
        let (chunk_back, chunks_back) = std::sync::mpsc::sync_channel::<Chunk>(2 * workers + 2);
        for _ in 0..workers {
            let (in_tx, in_rx) = std::sync::mpsc::sync_channel::<(u64, Chunk)>(2);
            let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<Vec<Decoded>>(2);
            let (spare_tx, spare_rx) = std::sync::mpsc::sync_channel::<Vec<Decoded>>(4);
            let d = decoder.clone();
            let name = name.to_string();
            let chunk_back = chunk_back.clone();
            // Named, for `top -H` and profiles (std's own spawn panics the same way on failure).
            let named = std::thread::Builder::new().name("tidings-decode".into());
            named
                .spawn(move || {
                    for (first_line, chunk) in in_rx {
                        let mut decoded = spare_rx.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
                        // In reverse: the engine takes them from the end.
                        for (i, &end) in chunk.ends.iter().enumerate().rev() {
                            let start = if i == 0 { 0 } else { chunk.ends[i - 1] };
                            let line = first_line + i as u64;
                            let len = chunk.long.iter().find(|l| l.0 == i).map_or((end - start) as u64, |l| l.1);
                            if let Some(item) = d.decode_sized(&chunk.bytes[start..end], len, &name, line) {
                                decoded.push((item, (chunk.offsets[i], line)));
                            }
                        }
                        let _ = chunk_back.try_send(chunk);
                        if out_tx.send(decoded).is_err() {
                            return;
                        }
                    }
                })
                .expect("spawning a decoder thread");
            inputs.push(in_tx);
            results.push(out_rx);
            spares.push(spare_tx);
        }
        drop(chunk_back);
        let max = decoder.max_line;
        let name = name.to_string();
        let (offset0, line0) = (at.offset, at.records);
        let named = std::thread::Builder::new().name("tidings-read".into());
        named
            .spawn(move || {
                let mut reader = LineReader::new(reader, max);
                reader.consumed = offset0;
                let mut line_no = line0;
                let mut buf = Vec::new();
                for k in 0.. {
                    // One buffer per chunk, lines back to back (one allocation, not one per line),
                    // a decoded one back from the workers when there is one.
                    let mut chunk = match chunks_back.try_recv() {
                        Ok(mut c) => {
                            c.bytes.clear();
                            c.ends.clear();
                            c.offsets.clear();
                            c.long.clear();
                            c
                        }
                        Err(_) => Chunk {
                            bytes: Vec::with_capacity(CHUNK * 200),
                            ends: Vec::with_capacity(CHUNK),
                            offsets: Vec::with_capacity(CHUNK),
                            long: Vec::new(),
                        },
                    };
                    let first = line_no + 1;
                    while chunk.ends.len() < CHUNK {
                        match reader.with_line(&mut buf, |l, len| {
                            if len > l.len() as u64 {
                                chunk.long.push((chunk.ends.len(), len));
                            }
                            chunk.bytes.extend_from_slice(l);
                        }) {
                            Ok(Some(())) => {
                                line_no += 1;
                                chunk.ends.push(chunk.bytes.len());
                                chunk.offsets.push(reader.consumed());
                            }
                            Ok(None) => break,
                            Err(e) => {
                                // Unreadable input ends the stream, reported as a dead letter line.
                                line_no += 1;
                                chunk.bytes.extend_from_slice(format!("\u{0}read error in {name}: {e}").as_bytes());
                                chunk.ends.push(chunk.bytes.len());
                                chunk.offsets.push(reader.consumed());
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
            })
            .expect("spawning the reader thread");
        ParallelDecode { results, spares, next: 0, current: Vec::new(), from: 0, done: false, tracker }
    }
}

impl Iterator for ParallelDecode {
    type Item = Result<Event, DeadLetter>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((item, at)) = self.current.pop() {
                if let Some(t) = &self.tracker {
                    t.set(0, at);
                }
                return Some(item);
            }
            if self.done {
                return None;
            }
            let n = self.results.len();
            match self.results[self.next % n].recv() {
                Ok(chunk) => {
                    let used = std::mem::replace(&mut self.current, chunk);
                    if used.capacity() > 0 {
                        let _ = self.spares[self.from].try_send(used);
                    }
                    self.from = self.next % n;
                    self.next += 1;
                }
                // The reader stopped: every worker after it in the rotation has nothing more.
                Err(_) => self.done = true,
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

/// Where the line of `lines` that starts at `at` lies (moving `at` past it), `None` when none
/// is left. Lines end with `\n` (the last may go without).
fn next_line(lines: &[u8], at: &mut usize) -> Option<std::ops::Range<usize>> {
    if *at >= lines.len() {
        return None;
    }
    let start = *at;
    let len = memchr::memchr(b'\n', &lines[start..]).unwrap_or(lines.len() - start);
    *at += len + 1;
    Some(start..start + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines read live arrive in messages of several; every line, blank ones included, is taken
    /// once and numbered as it stands in the input (dead letters name the right line).
    #[test]
    fn live_lines_arrive_in_messages_and_keep_their_numbers() {
        let input = "not json\n\n{\"kind\":\"topup\"}\nstill not json\n".repeat(3000);
        let (live, _feed) = Live::new(std::io::Cursor::new(input.into_bytes()), "stdin", Decoder::default());
        let lines: Vec<u64> = live
            .filter_map(|i| match i {
                crate::engine::Input::Item(Err(d)) => Some(d.line),
                _ => None,
            })
            .collect();
        // Per block of four: line 1 (bad JSON), line 3 (a top-up missing its fields), line 4.
        let want: Vec<u64> = (0..3000u64).flat_map(|k| [4 * k + 1, 4 * k + 3, 4 * k + 4]).collect();
        assert_eq!(lines, want);
    }

    /// A stream whose position is not known yet (a Fluvio partition started at its end that has
    /// yielded nothing) is left out of a checkpoint, so a restart starts it as configured; once
    /// it yields, its position is recorded.
    #[test]
    fn a_stream_not_read_yet_is_left_out_of_the_positions() {
        let pos = |stream: &str, offset| StreamPos { stream: stream.into(), offset, records: offset };
        let t = Tracker::new(vec![pos("fluvio:ev/0", 12), pos("fluvio:ev/2", Tracker::UNREAD)]);
        assert_eq!(t.positions(), vec![pos("fluvio:ev/0", 12)]);
        t.set(1, (40, 40));
        t.set(0, (13, 13));
        assert_eq!(t.positions(), vec![pos("fluvio:ev/0", 13), pos("fluvio:ev/2", 40)]);
    }

    /// A line handed over where it lies in the read buffer is the line `next_line` puts together:
    /// the same bytes (no newline, no carriage return) and the same offsets, for lines that
    /// cross the buffer's end, blank lines, over-long lines and a last line without a newline.
    #[test]
    fn lines_in_place_are_the_lines_put_together() {
        /// Hands out at most 777 bytes a read, so that lines cross the buffer's end.
        struct Trickle(std::io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(777);
                self.0.read(&mut buf[..n])
            }
        }
        let mut input = Vec::new();
        for k in 0..5000usize {
            input.extend_from_slice(format!("{{\"n\":{k},\"pad\":\"{}\"}}", "x".repeat(k % 300)).as_bytes());
            input.extend_from_slice(match k % 7 {
                0 => b"\r\n",
                1 => b"\n\n",
                _ => b"\n",
            });
            if k % 1000 == 3 {
                input.extend_from_slice(&b"y".repeat(1500));
                input.push(b'\n');
            }
        }
        input.extend_from_slice(b"last without newline");
        let read = |in_place: bool| {
            let mut r = LineReader::new(Trickle(std::io::Cursor::new(input.clone())), 1000);
            let (mut buf, mut out) = (Vec::new(), Vec::new());
            loop {
                let line = match in_place {
                    true => r.with_line(&mut buf, |l, _| l.to_vec()).expect("read"),
                    false => r.next_line(&mut buf).expect("read").map(|()| buf.clone()),
                };
                let Some(line) = line else { break };
                out.push((line, r.consumed()));
            }
            out
        };
        let (together, in_place) = (read(false), read(true));
        assert_eq!(together.len(), 5000 + 5000 / 7 + 1 + 5 + 1);
        assert_eq!(in_place, together);
        assert!(in_place.iter().any(|(l, _)| l.len() == 1001), "an over-long line is cut one past the limit");
        assert_eq!(
            in_place.last().map(|(l, at)| (&l[..], *at)),
            Some((&b"last without newline"[..], input.len() as u64))
        );
    }

    #[test]
    fn next_line_splits_on_newlines_and_keeps_blank_lines() {
        let mut at = 0;
        let chunk = b"a\n\nbc\n";
        let got: Vec<&[u8]> = std::iter::from_fn(|| next_line(chunk, &mut at)).map(|r| &chunk[r]).collect();
        assert_eq!(got, vec![&b"a"[..], b"", b"bc"]);
        let mut at = 0;
        assert_eq!(next_line(b"single", &mut at), Some(0..6));
        assert_eq!(next_line(b"single", &mut at), None);
        assert_eq!(next_line(b"", &mut 0), None);
    }
}
