//! The Fluvio sinks: actions, decisions and dead letters produced to topics, keyed by msisdn
//! (dead letters by their source), with the producer's batching (`linger`, `batch_bytes`) and
//! compression. The engine's sinks are synchronous; records go to a producer thread, and the end
//! of every engine batch waits until Fluvio has acknowledged everything sent so far — the same
//! point where the outbox syncs — so a batch's output is durable before the next is decided.
//! Delivery is at least once: after a crash, re-decided actions are produced again with the
//! same deterministic `id`, and consumers drop ids they have seen (as the outbox does).

use crate::contact::Decision;
use crate::engine::Sink;
use crate::event::DeadLetter;
use crate::source::scale::FluvioSection;
use fluvio::{Compression, TopicProducerConfigBuilder};
use std::io;
use std::sync::mpsc;

enum Cmd {
    /// (topic index: 0 actions, 1 decisions, 2 dead letters; key; value)
    Record(usize, Vec<u8>, Vec<u8>),
    /// Flush and wait for every acknowledgement; the answer says whether all went through.
    Flush(mpsc::SyncSender<Result<(), String>>),
}

pub struct FluvioSink {
    tx: tokio::sync::mpsc::Sender<Cmd>,
    /// Which of the three topics are configured.
    wanted: [bool; 3],
    offset: chrono::FixedOffset,
    dirty: bool,
}

impl FluvioSink {
    /// Connects and opens a producer for each configured topic.
    pub fn start(cfg: &FluvioSection, offset: chrono::FixedOffset) -> Result<FluvioSink, String> {
        let topics = [cfg.actions_topic.clone(), cfg.decisions_topic.clone(), cfg.dead_letters_topic.clone()];
        let wanted = topics.clone().map(|t| !t.is_empty());
        let compression: Compression = cfg.compression.parse().map_err(|e| format!("fluvio.compression: {e}"))?;
        let (endpoint, linger, batch) = (cfg.endpoint.clone(), cfg.linger, cfg.batch_bytes);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Cmd>(8192);
        crate::source::fluvio::spawn_client("tidings-fluvio-out", endpoint, move |fluvio, ready_tx| async move {
            let mut producers = Vec::new();
            for t in &topics {
                if t.is_empty() {
                    producers.push(None);
                    continue;
                }
                let config = match TopicProducerConfigBuilder::default()
                    .linger(linger)
                    .batch_size(batch)
                    .compression(compression)
                    .build()
                {
                    Ok(c) => c,
                    Err(e) => return drop(ready_tx.send(Err(format!("producer for {t}: {e}")))),
                };
                match fluvio.topic_producer_with_config(t.clone(), config).await {
                    Ok(p) => producers.push(Some(p)),
                    Err(e) => return drop(ready_tx.send(Err(format!("producer for topic {t}: {e}")))),
                }
            }
            let _ = ready_tx.send(Ok(()));
            let mut pending = Vec::new();
            let mut failed: Option<String> = None;
            // The engine thread blocks on this channel only when it is full.
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    Cmd::Record(i, key, value) => {
                        if let Some(p) = &producers[i] {
                            match p.send(key, value).await {
                                Ok(out) => pending.push(out),
                                Err(e) => failed = failed.or(Some(format!("{}: {e}", topics[i]))),
                            }
                        }
                    }
                    Cmd::Flush(answer) => {
                        for p in producers.iter().flatten() {
                            if let Err(e) = p.flush().await {
                                failed = failed.or(Some(format!("flush: {e}")));
                            }
                        }
                        for out in pending.drain(..) {
                            if let Err(e) = out.wait().await {
                                failed = failed.or(Some(format!("acknowledgement: {e}")));
                            }
                        }
                        let _ = answer.send(failed.take().map_or(Ok(()), Err));
                    }
                }
            }
        })?;
        Ok(FluvioSink { tx, wanted, offset, dirty: false })
    }

    fn send(&mut self, topic: usize, key: Vec<u8>, value: String) -> io::Result<()> {
        self.dirty = true;
        self.tx
            .blocking_send(Cmd::Record(topic, key, value.into_bytes()))
            .map_err(|_| io::Error::other("the Fluvio producer stopped"))
    }
}

impl Sink for FluvioSink {
    fn decision(&mut self, d: &Decision) -> io::Result<()> {
        let key = || d.msisdn.full().into_bytes();
        if self.wanted[0] && d.is_sent() {
            self.send(0, key(), d.to_json(self.offset))?;
        }
        if self.wanted[1] {
            self.send(1, key(), d.to_log_json(self.offset))?;
        }
        Ok(())
    }
    fn dead_letter(&mut self, d: &DeadLetter) -> io::Result<()> {
        if self.wanted[2] {
            let value = serde_json::to_string(d).map_err(io::Error::other)?;
            self.send(2, d.source.clone().into_bytes(), value)?;
        }
        Ok(())
    }
    fn batch_end(&mut self) -> io::Result<()> {
        if self.dirty { self.flush() } else { Ok(()) }
    }
    fn flush(&mut self) -> io::Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.tx.blocking_send(Cmd::Flush(tx)).map_err(|_| io::Error::other("the Fluvio producer stopped"))?;
        let r = rx.recv().map_err(|_| io::Error::other("the Fluvio producer stopped"))?;
        self.dirty = false;
        r.map_err(|e| io::Error::other(format!("Fluvio: {e}")))
    }
}
