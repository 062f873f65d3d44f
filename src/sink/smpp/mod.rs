//! SMS delivery over SMPP 3.4 (issue 6 "Real delivery"): the dispatcher hands an [`Action`]
//! to [`SmppClient::submit`] and gets a [`Sent`]; delivery receipts come back as [`Report`]s,
//! and subscribers' messages as replies, on the receiver [`SmppClient::start`] returns. Everything SMPP-specific (PDUs, windows,
//! keep-alives, reconnects, receipt formats, error codes) stays behind this small API so the
//! dispatcher treats SMPP like any other gateway.
//!
//! Layout:
//!
//! - [`pdu`]     the wire format (hand-written; why in its header)
//! - [`text`]    GSM 03.38 / UCS-2 encoding and splitting into concatenated parts
//! - [`receipt`] deliver_sm: receipts to [`Report`]s, subscribers' messages to replies
//! - `session`   the task that owns the TCP connection: bind, window, enquire_link, reconnect
//!
//! ## API
//!
//! [`SmppClient::start`] (checks the config, spawns the session task, returns the client and
//! the receipt receiver; a `Result` because the config can be wrong), [`SmppClient::submit`],
//! [`SmppClient::shutdown`], and [`SmppClient::is_bound`] for health checks. The client is a
//! cheap `Clone`; all clones share one connection and one window of `window` outstanding
//! submit_sm.
//!
//! ## Answers
//!
//! - `Accepted { gateway_ids }`: every part of the message got a `submit_sm_resp` with status
//!   0; one SMSC `message_id` per part, in part order (receipts name these ids).
//! - `Retry { after }`: nothing lost, offer again later. Not bound (the reason says why, e.g.
//!   `smpp: not bound (bind refused: ESME_RINVPASWD (0x0000000E))`) / connection lost (after =
//!   `reconnect_min`), response timeout, window full, `ESME_RTHROTTLED` / `ESME_RMSGQFUL`
//!   (after = `throttle_retry_after`), `ESME_RSYSERR`, `ESME_RINVBNDSTS`, `ESME_RX_T_APPN`.
//! - `Rejected`: every other command_status (`ESME_RINVDSTADR`, `ESME_RINVSRCADR`,
//!   `ESME_RINVMSGLEN`, `ESME_RSUBMITFAIL`, ...), an action without text, a destination that is
//!   not 1 to 20 digits, a text over 255 parts.
//!
//! ## Long messages
//!
//! Parts go one after the other (concurrency comes from many callers sharing the window). When
//! part k fails after parts 1..k-1 were accepted, the later parts are not sent and the answer is
//! the failure of part k (Retry or Rejected), never Accepted: the handset holds an incomplete
//! message that it will not display. The reason names the parts that went and their ids. On
//! Retry the whole message is sent again with the *same* concatenation reference (derived from
//! the action id) so the handset can complete the message it holds; handsets drop duplicate
//! parts of the same reference, though some older ones may show a part twice — the known SMPP
//! hazard, accepted here because splitting an action into separately acknowledged parts would
//! leak SMPP into the dispatcher's ledger.
//!
//! ## Receipts
//!
//! Every deliver_sm is answered. Final receipts become [`Report`]s (`gateway_id` = the SMSC
//! message id, `Delivered` or `Failed`) and subscribers' messages (MO) replies, each answered
//! only once the dispatcher has it on disk; intermediate receipts (ENROUTE, ACCEPTD) and other
//! message types are acknowledged and dropped; a deliver_sm that does not parse is answered
//! `ESME_RX_P_APPN` so the SMSC does not redeliver it forever.
//!
//! ## In doubt
//!
//! A response timeout or a connection lost after submit_sm went out leaves the message in doubt
//! (the SMSC may have accepted it); the answer is Retry, so a duplicate is possible. Each
//! submit_sm carries `user_message_reference` = [`user_message_reference`] of the action id,
//! and receipts that echo it show it in [`Report::detail`] as `ref:<n>`, so the dispatcher can
//! tie a receipt to an action after a crash. A submit that timed out frees its window slot even
//! though the SMSC may still answer; a late answer is ignored.

pub mod pdu;
pub mod receipt;
mod session;
pub mod text;

use crate::contact::Action;
use crate::sink::gateway::{Incoming, Sent};
use pdu::{ShortMessage, Tlv, status};
use serde::{Deserialize, Deserializer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Semaphore, mpsc, oneshot};

#[derive(Debug, Error)]
pub enum SmppError {
    #[error("smpp config: {0}")]
    Config(String),
    #[error("smpp client must be started inside a tokio runtime")]
    NoRuntime,
}

/// How to reach and bind to the SMSC. Every field has a default; in TOML, durations are strings:
///
/// ```toml
/// host = "smsc.example"
/// port = 2775
/// system_id = "tidings"
/// password = "secret"
/// source_addr = "10086"
/// window = 10
/// enquire_link = "30s"
/// response_timeout = "10s"
/// reconnect_min = "1s"
/// reconnect_max = "1m"
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmppConfig {
    /// SMSC host name or address.
    pub host: String,
    /// SMSC TCP port (2775 is the registered SMPP port).
    pub port: u16,
    /// ESME identity for bind_transceiver (at most 15 characters).
    pub system_id: String,
    /// Bind password (at most 8 characters).
    pub password: String,
    /// ESME type for bind_transceiver, often empty (at most 12 characters).
    pub system_type: String,
    /// Sender id shown on the handset, e.g. "10086" (at most 20 characters).
    pub source_addr: String,
    /// Type of number of `source_addr` (0 unknown, 1 international, 3 network specific, 5 alphanumeric).
    pub source_addr_ton: u8,
    /// Numbering plan of `source_addr` (0 unknown, 1 ISDN/E.164).
    pub source_addr_npi: u8,
    /// Type of number of the subscriber's number (0 unknown suits national numbers).
    pub dest_addr_ton: u8,
    /// Numbering plan of the subscriber's number (1 ISDN/E.164).
    pub dest_addr_npi: u8,
    /// Maximum submit_sm awaiting their response at once; a caller waits for a slot.
    pub window: usize,
    /// Send enquire_link after this long without sending anything.
    #[serde(deserialize_with = "de_duration")]
    pub enquire_link: Duration,
    /// How long to wait for any response (bind, submit_sm, enquire_link) before giving up.
    #[serde(deserialize_with = "de_duration")]
    pub response_timeout: Duration,
    /// First wait before reconnecting; doubles on each failure up to `reconnect_max`.
    #[serde(deserialize_with = "de_duration")]
    pub reconnect_min: Duration,
    /// Longest wait between reconnect attempts.
    #[serde(deserialize_with = "de_duration")]
    pub reconnect_max: Duration,
    /// The back-off hint returned with Retry when the SMSC throttles (ESME_RTHROTTLED) or its
    /// queue is full (ESME_RMSGQFUL).
    #[serde(deserialize_with = "de_duration")]
    pub throttle_retry_after: Duration,
    /// Ask the SMSC for a delivery receipt for every message (registered_delivery 1).
    pub registered_delivery: bool,
}

impl Default for SmppConfig {
    fn default() -> Self {
        SmppConfig {
            host: "127.0.0.1".into(),
            port: 2775,
            system_id: String::new(),
            password: String::new(),
            system_type: String::new(),
            source_addr: "10086".into(),
            source_addr_ton: 0,
            source_addr_npi: 0,
            dest_addr_ton: 0,
            dest_addr_npi: 1,
            window: 10,
            enquire_link: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            throttle_retry_after: Duration::from_secs(1),
            registered_delivery: true,
        }
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    let ms = crate::time::parse_duration(&s).map_err(serde::de::Error::custom)?;
    Ok(Duration::from_millis(ms.unsigned_abs()))
}

impl SmppConfig {
    /// Checks what serde cannot: field lengths the PDUs allow and sane timings.
    pub fn check(&self) -> Result<(), SmppError> {
        let fields = [
            ("system_id", &self.system_id, 16),
            ("password", &self.password, 9),
            ("system_type", &self.system_type, 13),
            ("source_addr", &self.source_addr, 21),
        ];
        for (name, value, max) in fields {
            pdu::check_cstr(name, value, max).map_err(|e| SmppError::Config(e.to_string()))?;
        }
        let bad = |m: &str| Err(SmppError::Config(m.to_string()));
        if self.window == 0 {
            return bad("window must be at least 1");
        }
        if self.response_timeout.is_zero() || self.enquire_link.is_zero() {
            return bad("response_timeout and enquire_link must be more than 0s");
        }
        if self.reconnect_min.is_zero() || self.reconnect_min > self.reconnect_max {
            return bad("reconnect_min must be more than 0s and at most reconnect_max");
        }
        Ok(())
    }
}

/// Why one submit_sm did not get a message id.
#[derive(Debug)]
pub(crate) enum Failure {
    Status(u32),
    Timeout,
    ConnectionLost,
    NotBound,
    WindowFull,
    ShutDown,
    /// A response we could not read, or a PDU we could not encode.
    Malformed(String),
}

/// A request from a caller to the session task.
pub(crate) enum Command {
    Submit { sm: ShortMessage, reply: oneshot::Sender<Result<String, Failure>> },
    Unbind { done: oneshot::Sender<()> },
}

/// State the session task shares with callers, read without a lock on every submit.
#[derive(Default)]
pub(crate) struct Link {
    bound: AtomicBool,
    stopped: AtomicBool,
    /// Why the last bind or session failed, for the "not bound" answer (there is no log to
    /// look in). A std Mutex: written once per connection attempt, read only while unbound.
    last_error: Mutex<String>,
}

impl Link {
    fn set_error(&self, why: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = why;
        }
    }

    fn not_bound(&self) -> String {
        match self.last_error.lock() {
            Ok(e) if !e.is_empty() => format!("smpp: not bound ({e})"),
            _ => "smpp: not bound".into(),
        }
    }
}

/// An SMPP transceiver session with automatic reconnect. Cheap to clone; every clone shares
/// the one connection and its window. When the last clone is dropped the session unbinds.
#[derive(Clone)]
pub struct SmppClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: SmppConfig,
    commands: mpsc::Sender<Command>,
    window: Semaphore,
    link: Arc<Link>,
}

/// The 16-bit `user_message_reference` put on every submit_sm of an action, derived from its id.
pub fn user_message_reference(action_id: &str) -> u16 {
    (crate::util::stable_hash(action_id.as_bytes()) >> 16) as u16
}

/// The 8-bit concatenation reference of a long message, derived from the action id.
fn concat_reference(action_id: &str) -> u8 {
    crate::util::stable_hash(action_id.as_bytes()) as u8
}

impl SmppClient {
    /// Checks the config and spawns the session task on the current tokio runtime; it connects,
    /// binds and reconnects on its own. Receipts arrive on the returned receiver (bounded: a
    /// reader that stops reading stalls the session, so receipts are never dropped here).
    pub fn start(cfg: SmppConfig) -> Result<(SmppClient, mpsc::Receiver<Incoming>), SmppError> {
        cfg.check()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SmppError::NoRuntime)?;
        let (commands, command_rx) = mpsc::channel(cfg.window * 2);
        let (report_tx, reports) = mpsc::channel(1024);
        let link = Arc::new(Link::default());
        runtime.spawn(session::run(cfg.clone(), command_rx, link.clone(), report_tx));
        let window = Semaphore::new(cfg.window);
        Ok((SmppClient { inner: Arc::new(Inner { cfg, commands, window, link }) }, reports))
    }

    /// Whether the session is bound right now (for health checks; `submit` checks it itself).
    pub fn is_bound(&self) -> bool {
        self.inner.link.bound.load(Ordering::Acquire)
    }

    /// Submits every part of the action's text; see the module docs for what each answer means.
    pub async fn submit(&self, action: &Action) -> Sent {
        let Some(text) = action.text.as_deref() else {
            return Sent::Rejected { reason: "smpp: action has no text".into() };
        };
        let dest = action.msisdn.as_str();
        if !(1..=20).contains(&dest.len()) || !dest.bytes().all(|b| b.is_ascii_digit()) {
            return Sent::Rejected { reason: "smpp: destination is not 1 to 20 digits".into() };
        }
        let parts = match text::split(text, concat_reference(&action.id)) {
            Ok(p) => p,
            Err(e) => return Sent::Rejected { reason: format!("smpp: {e}") },
        };
        let umr = user_message_reference(&action.id).to_be_bytes().to_vec();
        let total = parts.len();
        let mut ids = Vec::with_capacity(total);
        for (i, part) in parts.into_iter().enumerate() {
            let cfg = &self.inner.cfg;
            let sm = ShortMessage {
                source_addr_ton: cfg.source_addr_ton,
                source_addr_npi: cfg.source_addr_npi,
                source_addr: cfg.source_addr.clone(),
                dest_addr_ton: cfg.dest_addr_ton,
                dest_addr_npi: cfg.dest_addr_npi,
                destination_addr: dest.to_string(),
                esm_class: part.esm_class,
                registered_delivery: u8::from(cfg.registered_delivery),
                data_coding: part.data_coding,
                short_message: part.short_message,
                tlvs: vec![Tlv { tag: pdu::TAG_USER_MESSAGE_REFERENCE, value: umr.clone() }],
                ..ShortMessage::default()
            };
            match self.submit_one(sm).await {
                Ok(id) => ids.push(id),
                Err(f) => return self.answer(f, i, total, &ids),
            }
        }
        Sent::Accepted { gateway_ids: ids }
    }

    async fn submit_one(&self, sm: ShortMessage) -> Result<String, Failure> {
        let inner = &*self.inner;
        if inner.link.stopped.load(Ordering::Acquire) {
            return Err(Failure::ShutDown);
        }
        if !inner.link.bound.load(Ordering::Acquire) {
            return Err(Failure::NotBound);
        }
        let rt = inner.cfg.response_timeout;
        let _slot = match tokio::time::timeout(rt, inner.window.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(Failure::ShutDown),
            Err(_) => return Err(Failure::WindowFull),
        };
        let (reply, answer) = oneshot::channel();
        inner.commands.send(Command::Submit { sm, reply }).await.map_err(|_| Failure::ShutDown)?;
        // The session times responses out itself; this outer bound only guards a stuck task.
        match tokio::time::timeout(rt * 2, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Failure::ConnectionLost),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Turns the failure of part `i` (0-based) of `total` into the caller's answer.
    fn answer(&self, f: Failure, i: usize, total: usize, accepted: &[String]) -> Sent {
        let cfg = &self.inner.cfg;
        let in_doubt = matches!(f, Failure::ConnectionLost | Failure::Timeout);
        let (retry, reason, after) = match f {
            Failure::Status(s) => {
                let named = format!("smpp: {} (0x{s:08X})", status::name(s));
                match s {
                    status::ESME_RTHROTTLED | status::ESME_RMSGQFUL => (true, named, Some(cfg.throttle_retry_after)),
                    status::ESME_RINVBNDSTS => (true, named, Some(cfg.reconnect_min)),
                    status::ESME_RSYSERR | status::ESME_RX_T_APPN => (true, named, None),
                    _ => (false, named, None),
                }
            }
            Failure::NotBound => (true, self.inner.link.not_bound(), Some(cfg.reconnect_min)),
            Failure::ConnectionLost => (true, "smpp: connection lost".into(), Some(cfg.reconnect_min)),
            Failure::Timeout => (true, "smpp: no submit_sm_resp within response_timeout".into(), None),
            Failure::WindowFull => (true, "smpp: window full".into(), None),
            Failure::ShutDown => (true, "smpp: client shut down".into(), None),
            Failure::Malformed(m) => (true, format!("smpp: {m}"), None),
        };
        let ids = accepted.join(",");
        let reason = match i {
            0 => reason,
            1 => format!("{reason} at part 2 of {total}; part 1 was accepted as {ids}"),
            _ => format!("{reason} at part {} of {total}; parts 1-{i} were accepted as {ids}", i + 1),
        };
        match (in_doubt, retry) {
            // The submit may have reached the SMSC: in doubt, not a plain retry.
            (true, _) => Sent::InDoubt { reason },
            (false, true) => Sent::Retry { reason, after },
            (false, false) => Sent::Rejected { reason },
        }
    }

    /// Unbinds politely (unbind, wait for unbind_resp up to `response_timeout`) and stops the
    /// session; later submits answer Retry "client shut down".
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.inner.commands.send(Command::Unbind { done }).await.is_ok() {
            let _ = tokio::time::timeout(self.inner.cfg.response_timeout * 2, finished).await;
        }
        self.inner.link.stopped.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_durations_parse() {
        let cfg: SmppConfig = toml::from_str(
            r#"
            host = "smsc.example"
            system_id = "tidings"
            password = "secret"
            enquire_link = "15s"
            reconnect_max = "2m"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.enquire_link, Duration::from_secs(15));
        assert_eq!(cfg.reconnect_max, Duration::from_secs(120));
        assert_eq!((cfg.window, cfg.registered_delivery, cfg.source_addr.as_str()), (10, true, "10086"));
        assert_eq!(cfg.response_timeout, Duration::from_secs(10));
        cfg.check().unwrap();
        assert!(toml::from_str::<SmppConfig>("hots = \"x\"").is_err(), "unknown fields are refused");
        assert!(toml::from_str::<SmppConfig>("enquire_link = \"soon\"").is_err());
        let long = SmppConfig { password: "much-too-long".into(), ..SmppConfig::default() };
        assert!(long.check().is_err());
        let zero = SmppConfig { window: 0, ..SmppConfig::default() };
        assert!(zero.check().is_err());
    }

    #[test]
    fn references_are_deterministic() {
        assert_eq!(user_message_reference("a-1"), user_message_reference("a-1"));
        assert_eq!(concat_reference("a-1"), concat_reference("a-1"));
        assert_ne!(user_message_reference("a-1"), user_message_reference("a-2"));
    }

    #[test]
    fn start_outside_a_runtime_is_an_error() {
        assert!(matches!(SmppClient::start(SmppConfig::default()), Err(SmppError::NoRuntime)));
    }
}
