//! Where lines come from: files (JSON Lines, merged by event time when there are several),
//! standard input, and the built-in generator. Every source yields decoded events or dead
//! letters; a source never stops on a bad line.

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
