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
//! Reading everything, or failing: before anything is read, every event topic must exist with
//! exactly `[scale] partitions` partitions and each owned partition's leader must answer with
//! where the partition begins and ends ([`super::fluvio_meta`]); otherwise the run does not
//! start. A replay (`until_end`) then reads each partition up to the end it had at start,
//! counting offsets itself rather than trusting the client's stream to stop at the right place:
//! a stream that stops early, jumps over offsets or stays silent is reopened at the first
//! missing offset, and when [`REOPEN_TRIES`] reopenings in a row bring nothing, the source
//! stops the engine as a SIGTERM would (the batch in hand is finished, a checkpoint taken when
//! they are on) and the run exits with the error ([`FluvioSource::failure`]).
//!
//! Order: records of one partition come in offset order, so one subscriber's events keep
//! their order (the key is the msisdn). Across partitions, a live source takes records as they
//! arrive (the engine's allowed lateness absorbs the skew); with `until_end` the partitions
//! are finite and merged by event time, so a replay of a topic decides what a replay of the
//! same events from a file decides.

use crate::engine::Input;
use crate::event::{DeadLetter, Decoder, Event};
use crate::source::Tracker;
use crate::source::fluvio_meta::{self, Bounds};
use crate::source::scale::{FluvioSection, PartitionStart, partition_of};
use crate::state::checkpoint::StreamPos;
use fluvio::{Fluvio, FluvioClusterConfig, Offset};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

enum Msg {
    Record {
        offset: i64,
        value: Vec<u8>,
    },
    End,
    /// The partition could not be read on (the reason); nothing more comes from it.
    Failed(String),
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
    /// Why reading stopped before its end, once it has ([`FluvioSource::failure`]).
    failure: Arc<OnceLock<String>>,
    /// Raised on a failure, so that the engine stops as on SIGTERM rather than taking the
    /// failure for the end of the input.
    stop: Option<Arc<AtomicBool>>,
}

impl FluvioSource {
    /// Connects, checks the topics (each exists with `partitions` partitions, each owned
    /// partition answers with its bounds) and starts reading `owned` partitions of every event
    /// topic, each from its position in `checkpoint`, else from its offset in `cfg.offsets`,
    /// else from `cfg.start` (see [`FluvioSection::starts`], which also refuses a checkpoint of
    /// other streams). Returns the source and where each partition starts; a failed check is
    /// the error.
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
        let (endpoint, topics) = (cfg.endpoint.clone(), cfg.topics.clone());
        spawn_client("tidings-fluvio-in", cfg.endpoint.clone(), move |fluvio, ready| async move {
            let checked = async {
                fluvio_meta::check_topics(&fluvio, &endpoint, &topics, partitions).await?;
                let keys: Vec<(String, u32)> = plan.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
                let bounds = fluvio_meta::bounds(&fluvio, &keys).await?;
                plan.iter()
                    .zip(bounds)
                    .map(|((topic, p, from), b)| first_offset(&format!("{topic}/{p}"), *from, from_end, b))
                    .collect::<Result<Vec<_>, String>>()
            };
            let firsts = match checked.await {
                Ok(f) => f,
                Err(e) => return drop(ready.send(Err(e))),
            };
            if until_end {
                let ends: Vec<String> = plan
                    .iter()
                    .zip(&firsts)
                    .map(|((t, p, _), (from, b))| format!("{t}/{p} {from}..{}", b.end))
                    .collect();
                eprintln!("fluvio        replaying up to the ends the partitions have now: {}", ends.join(", "));
            }
            let _ = ready.send(Ok(()));
            let reads = plan.into_iter().zip(firsts).zip(senders).map(|(((topic, p, _), (from, b)), tx)| {
                let (fluvio, bell) = (&fluvio, bell_tx.clone());
                async move {
                    let end = until_end.then_some(b.end);
                    let last = match read(fluvio, &topic, p, from, end, &tx, &bell).await {
                        Ok(()) => Msg::End,
                        Err(e) => Msg::Failed(format!("fluvio: {topic}/{p}: {e}")),
                    };
                    let _ = tx.send(last).await;
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
            failure: Arc::new(OnceLock::new()),
            stop: None,
        };
        Ok((source, starts))
    }

    /// On a failure to read on, also raise `stop` (the run's SIGTERM flag): the engine then
    /// finishes the batch in hand and stops, instead of taking the failure for the end of the
    /// input and moving event time to its end.
    pub fn stopping(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Why the source stopped before the end of its partitions (a replay) or for good (live),
    /// once it has: set before the source yields its last item; the run reports it and exits
    /// non-zero.
    pub fn failure(&self) -> Arc<OnceLock<String>> {
        Arc::clone(&self.failure)
    }

    /// Partition `i` cannot be read on: the input ends here, as a stop.
    fn fail(&mut self, why: String) -> Option<Input> {
        eprintln!("{why}");
        let _ = self.failure.set(why);
        if let Some(stop) = &self.stop {
            stop.store(true, Ordering::Relaxed);
        }
        for p in &mut self.parts {
            p.ended = true;
            p.head = None;
        }
        None
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
                    Some(Msg::Failed(why)) => return self.fail(why),
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
                    Ok(Msg::Failed(why)) => return self.fail(why),
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

/// Every record of one partition as it stands now, as (offset, value), read the way a replay
/// reads (up to the end the partition has now, reopened past dropped batches); for tools and
/// tests that check a topic's contents.
pub async fn read_to_end(fluvio: &Fluvio, topic: &str, partition: u32) -> Result<Vec<(i64, Vec<u8>)>, String> {
    let b = fluvio_meta::bounds(fluvio, &[(topic.to_string(), partition)]).await?;
    let Some(b) = b.first().copied() else { return Ok(Vec::new()) };
    let (tx, mut rx) = mpsc::channel(1024);
    let (bell, _ring) = std::sync::mpsc::sync_channel(1);
    let reading = async {
        let r = read(fluvio, topic, partition, b.first, Some(b.end), &tx, &bell).await;
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

/// Where a partition's reading starts: its configured or checkpointed offset, else its end or
/// beginning (`from_end`), checked against where its records are now. An offset past the end
/// is refused (the partition has fewer records than the checkpoint says were read: a topic
/// deleted and made again?); one before the first record kept starts at that record, and says
/// so (the records between are gone: retention).
fn first_offset(name: &str, from: Option<i64>, from_end: bool, b: Bounds) -> Result<(i64, Bounds), String> {
    let at = match from {
        Some(o) if o > b.end => {
            return Err(format!(
                "fluvio: {name}: reading is to start at offset {o}, but the partition ends at {}: was the topic \
                 deleted and created again? (move the checkpoint directory away, or fix [[fluvio.offsets]])",
                b.end
            ));
        }
        Some(o) if o < b.first => {
            eprintln!(
                "fluvio: {name}: offsets {o}..{} are no longer in the partition (retention); starting at {}",
                b.first - 1,
                b.first
            );
            b.first
        }
        Some(o) => o,
        None if from_end => b.end,
        None => b.first,
    };
    Ok((at, b))
}

/// How a partition's stream is reopened when it stops short: [`Retry::DEFAULT`] (the tests
/// use shorter pauses).
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Reopenings in a row that bring no record before reading is given up as failed.
    pub tries: u32,
    /// The pause before the n-th reopening in a row is n times this.
    pub pause: Duration,
    /// How long a replay waits for the next record of a partition that has not reached its end
    /// before reopening (the client's stream can wait for a batch it has dropped).
    pub stall: Duration,
}

impl Retry {
    pub const DEFAULT: Retry =
        Retry { tries: REOPEN_TRIES, pause: Duration::from_millis(200), stall: Duration::from_secs(15) };
}

/// How many times in a row a partition's stream is reopened without bringing the next record
/// before reading it is given up as failed.
pub const REOPEN_TRIES: u32 = 5;

/// One stream of a partition's records, as (offset, value), from the offset it was opened at.
type Records<'a> = futures_util::stream::LocalBoxStream<'a, Result<(i64, Vec<u8>), String>>;

/// Reads one partition into `tx` from offset `from`, up to `end` (a replay) or for ever.
async fn read(
    fluvio: &Fluvio,
    topic: &str,
    partition: u32,
    from: i64,
    end: Option<i64>,
    tx: &mpsc::Sender<Msg>,
    bell: &std::sync::mpsc::SyncSender<()>,
) -> Result<(), String> {
    let open = |at: i64| async move {
        let config = fluvio::consumer::ConsumerConfigExtBuilder::default()
            .topic(topic.to_string())
            .partition(partition)
            .offset_start(Offset::absolute(at).map_err(|e| e.to_string())?)
            .disable_continuous(end.is_some())
            .build()
            .map_err(|e| e.to_string())?;
        let stream = fluvio.consumer_with_config(config).await.map_err(|e| format!("opening the stream: {e}"))?;
        let records: Records = Box::pin(
            stream.map(|r| r.map(|r| (r.offset(), r.get_value().as_ref().to_vec())).map_err(|e| format!("{e:?}"))),
        );
        Ok::<_, String>(records)
    };
    let name = format!("{topic}/{partition}");
    read_with(open, &name, (from, end), Retry::DEFAULT, tx, bell).await
}

/// Reads one partition from `from` up to `end` (or for ever), opening its stream with `open`.
///
/// A topic without SmartModules has no gaps in its offsets, yet the fluvio 0.50 client can skip
/// a whole batch when a fetch response ends inside one (seen against a local cluster: 58 records
/// of 20,000 missing, offsets jumping by 58; fluvio-community/fluvio PR 4627), and when that
/// batch is a partition's last, its stream simply ends one batch short (5,131 records of 5,132).
/// So the reader counts offsets itself: a jump in the offsets, a stream that ends (or, in a
/// replay, stays silent for `retry.stall`) before `end`, or a read error, reopens the stream at
/// the first missing offset, where the missing batch now starts the fetch; `retry.tries`
/// reopenings in a row that bring nothing are the error.
async fn read_with<'a, O, F>(
    mut open: O,
    name: &str,
    (from, end): (i64, Option<i64>),
    retry: Retry,
    tx: &mpsc::Sender<Msg>,
    bell: &std::sync::mpsc::SyncSender<()>,
) -> Result<(), String>
where
    O: FnMut(i64) -> F,
    F: std::future::Future<Output = Result<Records<'a>, String>>,
{
    // The offset the next record must have.
    let mut expect = from;
    let mut tries = 0;
    loop {
        if end.is_some_and(|end| expect >= end) {
            return Ok(());
        }
        let why = match open(expect).await {
            Err(e) => e,
            Ok(stream) => match next_records(stream, &mut expect, end, retry.stall, tx, bell).await {
                Stopped::Done => return Ok(()),
                Stopped::Progress(why) => {
                    tries = 0;
                    why
                }
                Stopped::Nothing(why) => why,
            },
        };
        tries += 1;
        let target = end.map_or_else(String::new, |e| format!(" (its end is {e})"));
        if tries > retry.tries {
            return Err(format!(
                "cannot read on from offset {expect}{target}: {why}, {} times in a row; giving up",
                retry.tries
            ));
        }
        eprintln!("fluvio: {name}: {why} at offset {expect}{target}; reading again from {expect}");
        tokio::time::sleep(retry.pause * tries).await;
    }
}

/// Why one stream of a partition stopped.
enum Stopped {
    /// At the end, or the engine is gone.
    Done,
    /// Early, after bringing records: the reason.
    Progress(String),
    /// Early, without bringing a record: the reason.
    Nothing(String),
}

/// Sends each record of `stream` at `expect` and moves `expect` past it, until the stream
/// stops, `end` is reached, or an offset is missing.
async fn next_records(
    mut stream: Records<'_>,
    expect: &mut i64,
    end: Option<i64>,
    stall: Duration,
    tx: &mpsc::Sender<Msg>,
    bell: &std::sync::mpsc::SyncSender<()>,
) -> Stopped {
    let first = *expect;
    let stopped = |why: String, at: i64| if at > first { Stopped::Progress(why) } else { Stopped::Nothing(why) };
    loop {
        let next = match end {
            Some(_) => match tokio::time::timeout(stall, stream.next()).await {
                Ok(next) => next,
                Err(_) => return stopped(format!("no record for {stall:?}"), *expect),
            },
            None => stream.next().await,
        };
        let (offset, value) = match next {
            Some(Ok(r)) => r,
            Some(Err(e)) => return stopped(format!("the stream failed ({e})"), *expect),
            None => return stopped("the stream ended early".to_string(), *expect),
        };
        if offset < *expect {
            continue; // already sent (a reopened stream starts at its batch's first record)
        }
        if offset > *expect {
            return stopped(format!("offsets jumped to {offset}"), *expect);
        }
        *expect = offset + 1;
        if tx.send(Msg::Record { offset, value }).await.is_err() {
            return Stopped::Done; // the engine is gone
        }
        let _ = bell.try_send(());
        if end.is_some_and(|end| *expect >= end) {
            return Stopped::Done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use std::cell::Cell;

    const FAST: Retry = Retry { tries: 3, pause: Duration::from_millis(1), stall: Duration::from_millis(30) };

    fn records(offsets: impl IntoIterator<Item = i64>) -> Vec<Result<(i64, Vec<u8>), String>> {
        offsets.into_iter().map(|o| Ok((o, o.to_string().into_bytes()))).collect()
    }

    /// Runs `read_with` over streams from `open` (called with the call's number and the
    /// offset), returning its result and the offsets sent, in order.
    fn read_fake<F>(from: i64, end: Option<i64>, open: F) -> (Result<(), String>, Vec<i64>)
    where
        F: Fn(u32, i64) -> Records<'static>,
    {
        let (tx, mut rx) = mpsc::channel(1024);
        let (bell, _ring) = std::sync::mpsc::sync_channel(1);
        let calls = Cell::new(0);
        let opener = |at: i64| {
            calls.set(calls.get() + 1);
            let s = open(calls.get(), at);
            async move { Ok::<_, String>(s) }
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let r = rt.block_on(read_with(opener, "t/0", (from, end), FAST, &tx, &bell));
        drop(tx);
        let mut sent = Vec::new();
        while let Ok(Msg::Record { offset, value }) = rx.try_recv() {
            assert_eq!(value, offset.to_string().into_bytes());
            sent.push(offset);
        }
        (r, sent)
    }

    #[test]
    fn a_replay_reopens_past_a_last_batch_the_stream_dropped() {
        // 10 records in batches of 4; the first stream drops the last batch (8, 9) and ends.
        let (r, sent) = read_fake(0, Some(10), |call, at| match call {
            1 => Box::pin(stream::iter(records(at..8))),
            _ => Box::pin(stream::iter(records(at / 4 * 4..10))),
        });
        assert_eq!(r, Ok(()));
        assert_eq!(sent, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_replay_whose_end_cannot_be_reached_is_an_error() {
        let (r, sent) = read_fake(0, Some(10), |_, at| Box::pin(stream::iter(records(at.min(8)..8))));
        assert_eq!(sent, (0..8).collect::<Vec<_>>());
        let e = r.unwrap_err();
        assert!(e.contains("cannot read on from offset 8 (its end is 10)") && e.contains("3 times in a row"), "{e}");
    }

    #[test]
    fn a_jump_in_the_offsets_is_read_again_from_the_first_missing_one() {
        let (r, sent) = read_fake(0, Some(12), |call, at| match call {
            1 => Box::pin(stream::iter(records((0..4).chain(7..12)))),
            _ => Box::pin(stream::iter(records(at..12))),
        });
        assert_eq!(r, Ok(()));
        assert_eq!(sent, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn a_replay_stream_that_goes_silent_before_the_end_is_reopened() {
        let (r, sent) = read_fake(3, Some(9), |call, at| match call {
            1 => Box::pin(stream::iter(records(at..6)).chain(stream::pending())),
            _ => Box::pin(stream::iter(records(at..9))),
        });
        assert_eq!(r, Ok(()));
        assert_eq!(sent, (3..9).collect::<Vec<_>>());
    }

    #[test]
    fn a_replay_stops_at_the_end_it_had_at_start() {
        // Records written after the start are not part of the replay; the stream is not waited on.
        let (r, sent) = read_fake(0, Some(5), |_, at| Box::pin(stream::iter(records(at..8)).chain(stream::pending())));
        assert_eq!(r, Ok(()));
        assert_eq!(sent, (0..5).collect::<Vec<_>>());
        let (r, sent) = read_fake(5, Some(5), |_, _| panic!("an empty range opens no stream"));
        assert_eq!((r, sent), (Ok(()), vec![]));
    }

    #[test]
    fn a_live_stream_that_fails_is_reopened_then_given_up() {
        let (r, sent) = read_fake(0, None, |call, at| match call {
            1 => Box::pin(stream::iter(records(at..3).into_iter().chain([Err("SpuOffline".to_string())]))),
            _ => Box::pin(stream::iter([Err::<(i64, Vec<u8>), _>("SpuOffline".to_string())])),
        });
        assert_eq!(sent, vec![0, 1, 2]);
        let e = r.unwrap_err();
        assert!(e.contains("cannot read on from offset 3: the stream failed (SpuOffline)"), "{e}");
    }

    #[test]
    fn where_a_partition_starts_is_checked_against_its_records() {
        let b = Bounds { first: 100, end: 500 };
        assert_eq!(first_offset("t/0", None, false, b), Ok((100, b)));
        assert_eq!(first_offset("t/0", None, true, b), Ok((500, b)));
        assert_eq!(first_offset("t/0", Some(250), true, b), Ok((250, b)));
        assert_eq!(first_offset("t/0", Some(500), false, b), Ok((500, b)));
        assert_eq!(first_offset("t/0", Some(7), false, b), Ok((100, b)), "retention: from the first record kept");
        let e = first_offset("t/0", Some(501), false, b).unwrap_err();
        assert!(e.contains("t/0: reading is to start at offset 501, but the partition ends at 500"), "{e}");
    }
}
