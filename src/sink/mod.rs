//! Where decisions and dead letters go: the engine's [`Sink`]s — JSON Lines files in an output
//! directory, stdout, several at once, memory (tests) — and, behind the durable outbox
//! ([`outbox`], [`deliver`], SMS in doubt in [`doubt`]), the gateways that make the contacts.
//! Gateways (SMPP in [`smpp`], CMPP in [`cmpp`], SMGP in [`smgp`], SGIP in [`sgip`], Kannel, call
//! centre, the order interface in [`orders`]) share the types of [`gateway`] so the dispatcher offers actions to any of them alike;
//! [`sms`] starts the SMS gateway the config names. SMPP, CMPP, SMGP and SGIP share one
//! [`link`] (login, window, heartbeats, reconnect); the Chinese operators' three are built from
//! the wire parts they share in [`wire`]. What gateways send back — reports, and subscribers'
//! replies ([`reply`]) — reaches the dispatcher over a channel; the HTTP ones through
//! [`callback`].

pub mod callback;
pub mod calls;
pub mod cmpp;
pub mod deliver;
pub mod delivery_config;
pub mod doubt;
#[cfg(feature = "fluvio")]
pub mod fluvio;
pub mod gateway;
pub mod kannel;
pub mod ledger;
pub mod link;
pub mod orders;
pub mod outbox;
pub mod reply;
pub mod sgip;
pub mod smgp;
pub mod smpp;
pub mod sms;
pub mod wire;

use crate::contact::Decision;
use crate::engine::Sink;
use crate::event::DeadLetter;
use crate::util::NamedFile;
use std::io::{BufWriter, Write};
use std::path::Path;

/// `actions.jsonl` (contacts to make), `decisions.jsonl` (every decision — sent, suppressed
/// with its reason, deferred — with the policy item that decided it) and `dead_letters.jsonl`
/// in one directory.
pub struct JsonlDir {
    actions: BufWriter<NamedFile>,
    decisions: BufWriter<NamedFile>,
    dead: BufWriter<NamedFile>,
    offset: chrono::FixedOffset,
}

impl JsonlDir {
    pub fn create(dir: &Path, offset: chrono::FixedOffset) -> std::io::Result<JsonlDir> {
        std::fs::create_dir_all(dir)?;
        let open = |name: &str| NamedFile::create(&dir.join(name)).map(|f| BufWriter::with_capacity(1 << 16, f));
        Ok(JsonlDir {
            actions: open("actions.jsonl")?,
            decisions: open("decisions.jsonl")?,
            dead: open("dead_letters.jsonl")?,
            offset,
        })
    }
}

impl Sink for JsonlDir {
    fn decision(&mut self, d: &Decision) -> std::io::Result<()> {
        if d.is_sent() {
            self.actions.write_all(d.to_json(self.offset).as_bytes())?;
            self.actions.write_all(b"\n")?;
        }
        self.decisions.write_all(d.to_log_json(self.offset).as_bytes())?;
        self.decisions.write_all(b"\n")
    }
    fn dead_letter(&mut self, d: &DeadLetter) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.dead, d)?;
        self.dead.write_all(b"\n")
    }
    /// Each batch's lines reach the files when it ends (one write each, not a sync): an operator
    /// tailing `decisions.jsonl` of a live run sees a decision as soon as it is made.
    fn batch_end(&mut self) -> std::io::Result<()> {
        self.flush()
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.actions.flush()?;
        self.decisions.flush()?;
        self.dead.flush()
    }
}

/// Actions (contacts made) to standard output, one JSON object per line.
pub struct Stdout {
    out: BufWriter<std::io::Stdout>,
    offset: chrono::FixedOffset,
}

impl Stdout {
    pub fn new(offset: chrono::FixedOffset) -> Stdout {
        Stdout { out: BufWriter::new(std::io::stdout()), offset }
    }
}

impl Sink for Stdout {
    fn decision(&mut self, d: &Decision) -> std::io::Result<()> {
        if d.is_sent() {
            self.out.write_all(d.to_json(self.offset).as_bytes())?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Keeps everything in memory (rule tests, integration tests).
#[derive(Default)]
pub struct Memory {
    pub decisions: Vec<Decision>,
    pub dead: Vec<DeadLetter>,
}

impl Sink for Memory {
    fn decision(&mut self, d: &Decision) -> std::io::Result<()> {
        self.decisions.push(d.clone());
        Ok(())
    }
    fn dead_letter(&mut self, d: &DeadLetter) -> std::io::Result<()> {
        self.dead.push(d.clone());
        Ok(())
    }
}

/// Two borrowed sinks at once (the caller keeps both: a report collector read after the run).
pub struct Tee<'a>(pub &'a mut dyn Sink, pub &'a mut dyn Sink);

impl Sink for Tee<'_> {
    fn decision(&mut self, d: &Decision) -> std::io::Result<()> {
        self.0.decision(d)?;
        self.1.decision(d)
    }
    fn dead_letter(&mut self, d: &DeadLetter) -> std::io::Result<()> {
        self.0.dead_letter(d)?;
        self.1.dead_letter(d)
    }
    fn batch_end(&mut self) -> std::io::Result<()> {
        self.0.batch_end()?;
        self.1.batch_end()
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// Several sinks at once.
pub struct Fanout(pub Vec<Box<dyn Sink>>);

impl Sink for Fanout {
    fn decision(&mut self, d: &Decision) -> std::io::Result<()> {
        self.0.iter_mut().try_for_each(|s| s.decision(d))
    }
    fn dead_letter(&mut self, d: &DeadLetter) -> std::io::Result<()> {
        self.0.iter_mut().try_for_each(|s| s.dead_letter(d))
    }
    fn batch_end(&mut self) -> std::io::Result<()> {
        self.0.iter_mut().try_for_each(|s| s.batch_end())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.iter_mut().try_for_each(|s| s.flush())
    }
    fn position(&self) -> Option<u64> {
        self.0.iter().find_map(|s| s.position())
    }
}

/// Actions into the durable outbox (the delivery side reads them from there). Synced at every
/// flush, which the engine calls at the end of each output batch: an action is on disk before
/// any gateway can see it, and a replay's re-decided actions are refused by id.
pub struct OutboxSink {
    writer: outbox::OutboxWriter,
    offset: chrono::FixedOffset,
    /// Woken after each sync, so a dispatcher in the same process reads at once.
    notify: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl OutboxSink {
    pub fn open(
        dir: &Path,
        offset: chrono::FixedOffset,
        notify: Option<std::sync::Arc<tokio::sync::Notify>>,
    ) -> std::io::Result<OutboxSink> {
        Ok(OutboxSink { writer: outbox::OutboxWriter::open(dir)?, offset, notify })
    }

    /// (appended this run, refused as already in the outbox)
    pub fn counts(&self) -> (u64, u64) {
        self.writer.counts()
    }
}

impl Sink for OutboxSink {
    fn decision(&mut self, d: &Decision) -> std::io::Result<()> {
        if d.is_sent() {
            self.writer.append(&d.action(self.offset))?;
        }
        Ok(())
    }
    fn batch_end(&mut self) -> std::io::Result<()> {
        if self.writer.dirty() {
            self.flush()?;
        }
        Ok(())
    }
    fn position(&self) -> Option<u64> {
        self.writer.bytes()
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.sync()?;
        if let Some(n) = &self.notify {
            n.notify_one();
        }
        Ok(())
    }
}
