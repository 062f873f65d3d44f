//! A live stream: standard input (or any reader) and the lines the engine feeds back to itself,
//! taken as they arrive, with the requests that must not wait (IVR, explain, reload) ahead of
//! the backlog.

use super::{LineReader, next_line};
use crate::event::Decoder;
use std::io::Read;

/// The sending side of a live source's stream: lines (one, or several separated by `\n`) and
/// their producer's name, `None` at the end (an empty message wakes a waiting source).
pub type Feed = std::sync::mpsc::SyncSender<Option<(&'static str, Vec<u8>)>>;

/// Most bytes of input the live source's reader hands over in one message.
const LIVE_CHUNK: usize = 64 * 1024;

/// Lines a live source hands over in a row before it says `Idle` anyway, so that the engine
/// decides what it holds: behind a backlog, a request (IVR, explain) then waits for at most this
/// many events to be decided (about 0.2 ms), not for a full batch.
const LIVE_RUN: u32 = 128;

/// A live stream and the lines the engine feeds back to itself (outcome events from the
/// delivery side), interleaved in arrival order. Ends when the primary stream ends; what the
/// feedback producers send after that is left to the next run (it is in `outcomes.jsonl`).
pub struct Live {
    rx: std::sync::mpsc::Receiver<Option<(&'static str, Vec<u8>)>>,
    decoder: Decoder,
    /// The stream's name, and the real lengths of its lines cut for being too long, in order.
    primary: &'static str,
    long: std::sync::mpsc::Receiver<u64>,
    lines: std::collections::HashMap<&'static str, u64>,
    /// Told the producer of each line as it is taken (the IVR side tracks its requests so).
    on_take: Option<Box<dyn Fn(&'static str) + Send>>,
    /// `Idle` was the last thing said.
    idle: bool,
    /// Lines handed over since the last `Idle`.
    run: u32,
    /// The message being taken apart: its producer, its lines and where the next one starts.
    chunk: Option<(&'static str, Vec<u8>, usize)>,
    /// Where taken-apart messages go back to the reader.
    spare: std::sync::mpsc::SyncSender<Vec<u8>>,
    /// Explain requests, answered between events (a blank line on the feed wakes the source).
    explain: Option<std::sync::mpsc::Receiver<crate::engine::ExplainRequest>>,
    /// New rule sets to swap in between events (hot reload).
    reload: Option<std::sync::mpsc::Receiver<std::sync::Arc<crate::rules::RuleSet>>>,
    /// Lines that go ahead of the stream's backlog (IVR requests: a caller is waiting).
    priority: Option<std::sync::mpsc::Receiver<(&'static str, Vec<u8>)>>,
    /// Set on SIGTERM: a source waiting for input says `Idle` so the engine sees the stop.
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Set by the engine while it works through a long step of event time: only requests (IVR,
    /// explain, reload) are handed over, and `Idle` when none waits; stream lines wait.
    requests_only: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Live {
    /// Reads `primary` (named `name`) on a thread of its own; returns the source and a sender
    /// for fed-back lines (named by their producer).
    pub fn new<R: Read + Send + 'static>(primary: R, name: &'static str, decoder: Decoder) -> (Live, Feed) {
        let (tx, rx) = std::sync::mpsc::sync_channel(4096);
        let (long_tx, long) = std::sync::mpsc::channel();
        let t = tx.clone();
        let max = decoder.max_line;
        // Messages taken apart come back to be filled again (fresh 64 KiB buffers are zeroed
        // by the kernel page by page, on both threads).
        let (spare, spares) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        std::thread::Builder::new()
            .name(format!("tidings-{name}"))
            .spawn(move || {
                // Lines go over in messages of whatever has arrived (up to 64 KiB), not one by
                // one: at 100,000 lines a second, a message (and a wake-up of the engine) per
                // line costs more than deciding them.
                let mut r = LineReader::new(primary, max);
                let mut buf = Vec::new();
                let mut chunk = Vec::with_capacity(LIVE_CHUNK);
                let next = || {
                    let mut v = spares.try_recv().unwrap_or_else(|_| Vec::with_capacity(LIVE_CHUNK));
                    v.clear();
                    v
                };
                // Each line straight from the read buffer into the message, newline restored.
                while let Ok(Some(())) = r.with_line(&mut buf, |l, len| {
                    if len > l.len() as u64 {
                        // Sent before the message that holds the line.
                        let _ = long_tx.send(len);
                    }
                    chunk.extend_from_slice(l);
                    chunk.push(b'\n');
                }) {
                    if (r.buffered() == 0 || chunk.len() >= LIVE_CHUNK)
                        && t.send(Some((name, std::mem::replace(&mut chunk, next())))).is_err()
                    {
                        return;
                    }
                }
                if !chunk.is_empty() {
                    let _ = t.send(Some((name, chunk)));
                }
                let _ = t.send(None);
            })
            .ok();
        (
            Live {
                rx,
                decoder,
                primary: name,
                long,
                lines: std::collections::HashMap::new(),
                on_take: None,
                idle: false,
                run: 0,
                chunk: None,
                spare,
                explain: None,
                reload: None,
                priority: None,
                stop: None,
                requests_only: Default::default(),
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

    /// While it waits for input, the source looks at `stop` every tenth of a second and says
    /// `Idle` once it is set: a quiet stream (an open terminal, a producer that went silent)
    /// does not keep a stopped engine waiting.
    pub fn stop_on(&mut self, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.stop = Some(stop);
    }

    /// The switch the engine sets to take only requests ([`crate::engine::EngineOptions::requests_only`]).
    pub fn requests_only(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        std::sync::Arc::clone(&self.requests_only)
    }

    /// Calls `f` with the producer's name of every line as the engine takes it.
    pub fn on_take(&mut self, f: impl Fn(&'static str) + Send + 'static) {
        self.on_take = Some(Box::new(f));
    }
}

impl Live {
    /// The next message, waited for; `None` when the engine is to stop. A closed stream is a
    /// message too (`Some(None)`: the end).
    fn wait(&mut self) -> Option<Option<(&'static str, Vec<u8>)>> {
        use std::sync::mpsc::RecvTimeoutError;
        let Some(stop) = &self.stop else { return Some(self.rx.recv().ok().flatten()) };
        loop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            match self.rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(next) => return Some(next),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Some(None),
            }
        }
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
            let only = self.requests_only.load(std::sync::atomic::Ordering::Relaxed);
            if self.run >= LIVE_RUN && !only {
                self.run = 0;
                return Some(crate::engine::Input::Idle);
            }
            let urgent = self.priority.as_ref().and_then(|rx| rx.try_recv().ok());
            let waited_on = urgent.is_some();
            if only && !waited_on {
                return Some(crate::engine::Input::Idle);
            }
            // The line: the urgent one, or the next of the message in hand, read where it lies.
            let (source, line): (&'static str, std::borrow::Cow<'_, [u8]>) = match urgent {
                Some((source, line)) => (source, line.into()),
                None => {
                    if self.chunk.is_none() {
                        let next = match self.rx.try_recv() {
                            Ok(next) => next,
                            // Nothing ready: say so once, then wait.
                            Err(std::sync::mpsc::TryRecvError::Empty) if !self.idle => {
                                self.idle = true;
                                self.run = 0;
                                return Some(crate::engine::Input::Idle);
                            }
                            Err(std::sync::mpsc::TryRecvError::Empty) => match self.wait() {
                                Some(next) => next,
                                None => return Some(crate::engine::Input::Idle),
                            },
                            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
                        };
                        let (source, lines) = next?;
                        self.chunk = Some((source, lines, 0));
                    }
                    let range = self.chunk.as_mut().and_then(|(_, lines, at)| next_line(lines, at));
                    match (range, &self.chunk) {
                        (Some(r), Some((source, lines, _))) => (*source, lines[r].into()),
                        // Taken apart (or an empty wake-up message): look again.
                        _ => {
                            if let Some((_, lines, _)) = self.chunk.take().filter(|c| c.1.capacity() >= LIVE_CHUNK) {
                                let _ = self.spare.try_send(lines);
                            }
                            continue;
                        }
                    }
                }
            };
            self.idle = false;
            self.run += 1;
            if let Some(f) = &self.on_take {
                f(source);
            }
            let n = self.lines.entry(source).or_default();
            *n += 1;
            // A line of the stream cut for being too long: its real length came separately.
            let len = match line.len() > self.decoder.max_line && source == self.primary {
                true => self.long.try_recv().unwrap_or(line.len() as u64),
                false => line.len() as u64,
            };
            if let Some(item) = self.decoder.decode_sized(&line, len, source, *n) {
                return Some(match waited_on {
                    true => crate::engine::Input::Urgent(item),
                    false => crate::engine::Input::Item(item),
                });
            }
        }
    }
}
