//! The Fluvio source: the event topics, one consumer per owned partition of each, from the
//! offsets tidings was given (its checkpoint is the truth; Fluvio's own consumer offsets are not
//! used). Records are decoded like lines of a file, with `topic/partition` as the source name
//! and the record's offset as the line number of a dead letter.
//!
//! Positions: the source reports each partition's next offset to a [`Tracker`] (stream
//! `fluvio:<topic>/<partition>`, offset and records both the next record's offset) when it
//! yields an item — never for what it has fetched ahead — so a checkpoint taken between two
//! items records exactly where the engine stands. [`FluvioSource::start`] takes the
//! checkpoint's positions: a partition in it resumes there (over `[[fluvio.offsets]]` and
//! `fluvio.start`), one not in it starts as configured.
//!
//! Order: records of one partition come in offset order, so one subscriber's events keep
//! their order (the key is the msisdn). Across partitions, a live source takes records as they
//! arrive (the engine's allowed lateness absorbs the skew); with `until_end` the partitions
//! are finite and merged by event time, so a replay of a topic decides what a replay of the
//! same events from a file decides.

use crate::config::{FluvioSection, PartitionStart, partition_of};
use crate::engine::Input;
use crate::event::{DeadLetter, Decoder, Event};
use crate::source::{StreamPos, Tracker};
use fluvio::{Fluvio, FluvioClusterConfig, Offset};
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;

enum Msg {
    Record { offset: i64, value: Vec<u8> },
    End,
}

struct Part {
    name: String,
    partition: u32,
    rx: mpsc::Receiver<Msg>,
    ended: bool,
    /// The next record, decoded, waiting for its turn in the time merge.
    head: Option<(Event, i64)>,
}

/// The event topics as a source of engine input.
pub struct FluvioSource {
    parts: Vec<Part>,
    decoder: Decoder,
    tracker: Arc<Tracker>,
    until_end: bool,
    /// Rung by the reader after each record (live mode waits on it when every partition is empty).
    bell: std::sync::mpsc::Receiver<()>,
    idle: bool,
    next_part: usize,
    /// Partition count to check keys against (`scale.partitions`); records whose msisdn
    /// belongs to another partition are processed and counted (the producer's partitioning is
    /// what it is; dropping them would lose them).
    partitions: u32,
    misplaced: u64,
}

impl FluvioSource {
    /// Connects and starts reading `owned` partitions of every event topic, each from its
    /// position in `checkpoint`, else from its offset in `cfg.offsets`, else from `cfg.start`
    /// (see [`FluvioSection::starts`], which also refuses a checkpoint of other streams).
    /// Returns the source and where each partition starts.
    pub fn start(
        cfg: &FluvioSection,
        owned: &[u32],
        partitions: u32,
        decoder: Decoder,
        checkpoint: &[StreamPos],
    ) -> Result<(FluvioSource, Vec<PartitionStart>), String> {
        let starts = cfg.starts(owned, checkpoint)?;
        let plan: Vec<(String, u32, Option<i64>)> =
            starts.iter().map(|s| (s.topic.clone(), s.partition, s.offset)).collect();
        let tracker = Tracker::new(
            starts
                .iter()
                .map(|s| {
                    let at = s.offset.map_or(Tracker::UNREAD, |o| o as u64);
                    StreamPos { stream: s.stream.clone(), offset: at, records: at }
                })
                .collect(),
        );
        let (bell_tx, bell) = std::sync::mpsc::sync_channel(1);
        let mut parts = Vec::new();
        let mut senders = Vec::new();
        for (topic, p, _) in &plan {
            let (tx, rx) = mpsc::channel(1024);
            senders.push(tx);
            parts.push(Part { name: format!("{topic}/{p}"), partition: *p, rx, ended: false, head: None });
        }
        let (until_end, from_end) = (cfg.until_end, cfg.start == "end");
        spawn_client("tidings-fluvio-in", cfg.endpoint.clone(), move |fluvio, ready| async move {
            let _ = ready.send(Ok(()));
            let reads = plan.into_iter().zip(senders).map(|((topic, p, from), tx)| {
                let (fluvio, bell) = (&fluvio, bell_tx.clone());
                async move {
                    if let Err(e) = read(fluvio, &topic, p, (from, from_end), until_end, &tx, &bell).await {
                        eprintln!("fluvio: {topic}/{p}: {e}");
                    }
                    let _ = tx.send(Msg::End).await;
                    let _ = bell.try_send(());
                }
            });
            futures_util::future::join_all(reads).await;
        })?;
        let source = FluvioSource {
            parts,
            decoder,
            tracker,
            until_end,
            bell,
            idle: false,
            next_part: 0,
            partitions,
            misplaced: 0,
        };
        Ok((source, starts))
    }

    /// Where each partition stands, as of the last item yielded (see the module comment).
    pub fn tracker(&self) -> Arc<Tracker> {
        Arc::clone(&self.tracker)
    }

    /// Partition `i` has been read up to and including `offset`.
    fn done(&self, i: usize, offset: i64) {
        let next = (offset + 1) as u64;
        self.tracker.set(i, (next, next));
    }

    fn decode(&mut self, i: usize, offset: i64, value: &[u8]) -> Option<Result<Event, DeadLetter>> {
        let item = self.decoder.decode(value, &self.parts[i].name, offset as u64);
        if let Some(Ok(e)) = &item {
            if self.partitions > 1 && partition_of(e.msisdn, self.partitions) != self.parts[i].partition {
                self.misplaced += 1;
                if self.misplaced == 1 {
                    eprintln!(
                        "fluvio: {} holds {} whose key belongs to partition {} of {}: is the producer keying by msisdn? (processed anyway; counted)",
                        self.parts[i].name,
                        e.msisdn.masked(),
                        partition_of(e.msisdn, self.partitions),
                        self.partitions
                    );
                }
            }
        }
        item
    }

    /// Until-end mode: the earliest head across partitions (filling each first).
    fn next_merged(&mut self) -> Option<Input> {
        for i in 0..self.parts.len() {
            while self.parts[i].head.is_none() && !self.parts[i].ended {
                match self.parts[i].rx.blocking_recv() {
                    Some(Msg::Record { offset, value }) => match self.decode(i, offset, &value) {
                        Some(Ok(e)) => self.parts[i].head = Some((e, offset)),
                        Some(Err(d)) => {
                            self.done(i, offset);
                            return Some(Input::Item(Err(d)));
                        }
                        None => self.done(i, offset),
                    },
                    Some(Msg::End) | None => self.parts[i].ended = true,
                }
            }
        }
        let (i, _) = self
            .parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.head.as_ref().map(|(e, _)| (i, e.ts)))
            .min_by_key(|&(i, ts)| (ts, i))?;
        let (e, offset) = self.parts[i].head.take()?;
        self.done(i, offset);
        Some(Input::Item(Ok(e)))
    }

    /// Live mode: whatever partition has a record, round robin; `Idle` once when none has.
    fn next_live(&mut self) -> Option<Input> {
        loop {
            let n = self.parts.len();
            if self.parts.iter().all(|p| p.ended) {
                return None;
            }
            let mut got = None;
            for k in 0..n {
                let i = (self.next_part + k) % n;
                if self.parts[i].ended {
                    continue;
                }
                match self.parts[i].rx.try_recv() {
                    Ok(Msg::Record { offset, value }) => {
                        got = Some((i, offset, value));
                        break;
                    }
                    Ok(Msg::End) | Err(mpsc::error::TryRecvError::Disconnected) => self.parts[i].ended = true,
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
            }
            match got {
                Some((i, offset, value)) => {
                    self.next_part = i + 1;
                    self.idle = false;
                    let item = self.decode(i, offset, &value);
                    self.done(i, offset);
                    if let Some(item) = item {
                        return Some(Input::Item(item));
                    }
                }
                None if self.parts.iter().all(|p| p.ended) => return None,
                None if !self.idle => {
                    self.idle = true;
                    return Some(Input::Idle);
                }
                // Wait for a record; every half second say Idle again, so that the engine sees a
                // stop request (SIGTERM) while the topics are quiet.
                None => match self.bell.recv_timeout(std::time::Duration::from_millis(500)) {
                    Ok(()) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Some(Input::Idle),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
                },
            }
        }
    }
}

impl Iterator for FluvioSource {
    type Item = Input;
    fn next(&mut self) -> Option<Input> {
        if self.until_end { self.next_merged() } else { self.next_live() }
    }
}

impl Drop for FluvioSource {
    fn drop(&mut self) {
        if self.misplaced > 0 {
            eprintln!("fluvio: {} records were in a partition their msisdn does not hash to", self.misplaced);
        }
    }
}

/// Runs `body` on a thread of its own with a Fluvio client connected to `endpoint` (the client
/// is async; the engine's sources and sinks are not). Returns once `body` says it is ready, or
/// with the error it or the connection gave.
pub(crate) fn spawn_client<F, Fut>(thread: &str, endpoint: String, body: F) -> Result<(), String>
where
    F: FnOnce(Fluvio, std::sync::mpsc::Sender<Result<(), String>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(thread.to_string())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(e.to_string()))),
            };
            rt.block_on(async move {
                match Fluvio::connect_with_config(&FluvioClusterConfig::new(endpoint.clone())).await {
                    Ok(fluvio) => body(fluvio, ready_tx).await,
                    Err(e) => drop(ready_tx.send(Err(format!("connecting to Fluvio at {endpoint}: {e}")))),
                }
            });
        })
        .map_err(|e| e.to_string())?;
    ready_rx.recv().map_err(|_| format!("the {thread} thread stopped before it was ready"))?
}

/// Every record of one partition as it stands now, as (offset, value), read the way the source
/// reads (gaps re-read); for tools and tests that check a topic's contents.
pub async fn read_to_end(fluvio: &Fluvio, topic: &str, partition: u32) -> Result<Vec<(i64, Vec<u8>)>, String> {
    let (tx, mut rx) = mpsc::channel(1024);
    let (bell, _ring) = std::sync::mpsc::sync_channel(1);
    let reading = async {
        let r = read(fluvio, topic, partition, (None, false), true, &tx, &bell).await;
        let _ = tx.send(Msg::End).await;
        r
    };
    let collecting = async {
        let mut out = Vec::new();
        while let Some(Msg::Record { offset, value }) = rx.recv().await {
            out.push((offset, value));
        }
        out
    };
    let (r, out) = futures_util::future::join(reading, collecting).await;
    r.map(|()| out)
}

/// How often one gap in a partition's offsets is read again before it is taken as real.
const GAP_RETRIES: u32 = 3;

/// Reads one partition into `tx` until its end (`until_end`) or for ever, from the given offset,
/// else from the end (`from.1`) or the beginning.
///
/// A topic without SmartModules has no gaps in its offsets, yet the fluvio 0.50 client can skip
/// a whole batch when a fetch response ends inside one (seen against a local cluster: 58 records
/// of 20,000 missing, offsets jumping by 58; fluvio-community/fluvio PR 4627). So a jump in the
/// offsets reopens the stream at the first missing offset, where that batch now starts the
/// fetch; a gap still there after [`GAP_RETRIES`] tries is reported and passed over.
async fn read(
    fluvio: &Fluvio,
    topic: &str,
    partition: u32,
    from: (Option<i64>, bool),
    until_end: bool,
    tx: &mpsc::Sender<Msg>,
    bell: &std::sync::mpsc::SyncSender<()>,
) -> Result<(), String> {
    let mut start = match from {
        (Some(o), _) => Offset::absolute(o).map_err(|e| e.to_string())?,
        (None, true) => Offset::end(),
        (None, false) => Offset::beginning(),
    };
    // The offset the next record must have, once known.
    let mut expect: Option<i64> = from.0;
    let mut retries = 0;
    'open: loop {
        let config = fluvio::consumer::ConsumerConfigExtBuilder::default()
            .topic(topic.to_string())
            .partition(partition)
            .offset_start(start)
            .disable_continuous(until_end)
            .build()
            .map_err(|e| e.to_string())?;
        let mut stream = fluvio.consumer_with_config(config).await.map_err(|e| format!("consumer: {e}"))?;
        while let Some(r) = stream.next().await {
            let r = r.map_err(|e| format!("reading: {e:?}"))?;
            let offset = r.offset();
            if let Some(want) = expect.filter(|w| offset > *w) {
                if retries < GAP_RETRIES {
                    retries += 1;
                    eprintln!(
                        "fluvio: {topic}/{partition}: offsets jumped from {want} to {offset}; reading again from {want}"
                    );
                    start = Offset::absolute(want).map_err(|e| e.to_string())?;
                    continue 'open;
                }
                eprintln!("fluvio: {topic}/{partition}: offsets {want}..{} are missing; passed over", offset - 1);
            }
            if expect.is_some_and(|w| offset < w) {
                continue; // already sent (a reopened stream starts at its batch's first record)
            }
            retries = 0;
            expect = Some(offset + 1);
            let msg = Msg::Record { offset, value: r.get_value().as_ref().to_vec() };
            if tx.send(msg).await.is_err() {
                return Ok(()); // the engine is gone
            }
            let _ = bell.try_send(());
        }
        return Ok(());
    }
}
