//! SMS delivery over CMPP (China Mobile Peer to Peer), the protocol an SP speaks to China Mobile's
//! ISMG, version 2.0 or 3.0 (issue 18): `[delivery.cmpp]`. The dispatcher hands an [`Action`] to
//! [`CmppClient::submit`] and gets a [`Sent`]; status reports come back as [`Report`]s on the
//! receiver [`CmppClient::start`] returns, each acknowledged to the ISMG only once the dispatcher
//! has it on disk. The API is the SMPP sink's ([`super::smpp`]), so the dispatcher treats both
//! alike.
//!
//! Layout:
//!
//! - [`pdu`]     the wire format, both versions
//! - `session`   the task that owns the TCP connection: CMPP_CONNECT, window, CMPP_ACTIVE_TEST
//!   both ways, CMPP_TERMINATE, reconnect with back-off
//!
//! ## Answers
//!
//! - `Accepted { gateway_ids }`: every part got a CMPP_SUBMIT_RESP with Result 0; one Msg_Id per
//!   part, in part order, as 16 hex digits (the status reports name these).
//! - `Retry`: not logged in (the reason says why, e.g. `cmpp: not logged in (login refused:
//!   authentication failed (status 3))`), connection lost, window full, or the ISMG's flow
//!   control (Result 8, or any of `flow_control_results`: after `flow_control_retry_after`).
//! - `InDoubt`: the submit went out and no answer came (timeout, connection lost).
//! - `Rejected`: any other Result, an action without text, a destination that is not digits.
//!
//! A long message goes as parts with `TP_udhi` 1, `Pk_total`/`Pk_number` and the 6-octet
//! concatenation header, its reference derived from the action id so a resend matches; a part
//! that fails stops the rest, as in the SMPP sink (its module docs say why).
//!
//! ## What varies between gateways
//!
//! Real ISMGs differ in details the documents leave open; those are settings rather than
//! guesses: the version, whether `AuthenticatorISMG` is checked (some send zeros), the Result
//! codes that mean flow control, the text coding for Chinese (UCS-2 or GBK), and the time zone of
//! the login timestamp (the ISMG checks it against its own clock, Beijing time by default).
//!
//! Subscribers' messages (CMPP_DELIVER with Registered_Delivery 0) are acknowledged and dropped,
//! as the SMPP sink does with `deliver_sm` that are not receipts, until the `reply` event kind
//! exists to carry them (issue 18, "Replies").

pub mod pdu;
mod session;

use crate::contact::Action;
use crate::sink::gateway::{Incoming, Sent};
use crate::sink::wire::{Coding, split};
use pdu::{Submit, Version};
use serde::{Deserialize, Deserializer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Semaphore, mpsc, oneshot};

#[derive(Debug, Error)]
pub enum CmppError {
    #[error("cmpp config: {0}")]
    Config(String),
    #[error("cmpp client must be started inside a tokio runtime")]
    NoRuntime,
}

/// How to reach and log in to the ISMG, and what every submit carries. In TOML, durations are
/// strings:
///
/// ```toml
/// version = "3.0"
/// host = "ismg.example"
/// port = 7890
/// account = "901234"
/// secret = "shared-secret"
/// service_id = "TIDINGS"
/// src_id = "1069012345"
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CmppConfig {
    /// "2.0" or "3.0".
    #[serde(deserialize_with = "de_version")]
    pub version: Version,
    pub host: String,
    /// The ISMG's port (7890 by convention for long connections).
    pub port: u16,
    /// Source_Addr: the SP's enterprise code (6 characters), also Msg_src unless `msg_src` is set.
    pub account: String,
    /// The shared secret the ISMG gave the SP.
    pub secret: String,
    /// Msg_src (6 characters); empty: `account`.
    pub msg_src: String,
    /// Service_Id: the service code (at most 10 characters).
    pub service_id: String,
    /// Src_Id: the SP's long number or service code the handset shows (at most 21 digits).
    pub src_id: String,
    /// Fee_UserType: 0 the destination pays, 1 the source, 2 the SP, 3 Fee_terminal_Id.
    pub fee_user_type: u8,
    /// FeeType: "01" free, "02" per message, "03" monthly...
    pub fee_type: String,
    /// FeeCode in fen (6 characters).
    pub fee_code: String,
    /// Chinese text in "ucs2" (Msg_Fmt 8) or "gbk" (15); ASCII text is always Msg_Fmt 0.
    #[serde(deserialize_with = "de_coding")]
    pub coding: Coding,
    /// CMPP_SUBMIT awaiting their response at once (16 is what ISMGs usually allow).
    pub window: usize,
    /// Send CMPP_ACTIVE_TEST after this long without sending anything.
    #[serde(deserialize_with = "de_duration")]
    pub active_test: Duration,
    /// How long to wait for any response (connect, submit, active test).
    #[serde(deserialize_with = "de_duration")]
    pub response_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub reconnect_min: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub reconnect_max: Duration,
    /// SUBMIT_RESP Results that mean "slow down and send again".
    pub flow_control_results: Vec<u32>,
    /// The back-off hint returned with Retry on flow control.
    #[serde(deserialize_with = "de_duration")]
    pub flow_control_retry_after: Duration,
    /// Ask for a status report on every message (Registered_Delivery 1).
    pub registered_delivery: bool,
    /// Check the ISMG's AuthenticatorISMG in CMPP_CONNECT_RESP.
    pub verify_authenticator: bool,
    /// The zone of the login timestamp, e.g. "+08:00".
    #[serde(deserialize_with = "de_offset")]
    pub timezone: chrono::FixedOffset,
}

impl Default for CmppConfig {
    fn default() -> Self {
        CmppConfig {
            version: Version::V30,
            host: "127.0.0.1".into(),
            port: 7890,
            account: String::new(),
            secret: String::new(),
            msg_src: String::new(),
            service_id: String::new(),
            src_id: String::new(),
            fee_user_type: 2,
            fee_type: "01".into(),
            fee_code: "000000".into(),
            coding: Coding::Ucs2,
            window: 16,
            active_test: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            flow_control_results: vec![pdu::status::FLOW_CONTROL],
            flow_control_retry_after: Duration::from_secs(1),
            registered_delivery: true,
            verify_authenticator: true,
            timezone: chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00 is in range"),
        }
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    let ms = crate::time::parse_duration(&s).map_err(serde::de::Error::custom)?;
    Ok(Duration::from_millis(ms.unsigned_abs()))
}

fn de_version<'de, D: Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
    match String::deserialize(d)?.as_str() {
        "2.0" => Ok(Version::V20),
        "3.0" => Ok(Version::V30),
        other => Err(serde::de::Error::custom(format!("unknown CMPP version {other:?}: \"2.0\" or \"3.0\""))),
    }
}

fn de_coding<'de, D: Deserializer<'de>>(d: D) -> Result<Coding, D::Error> {
    match String::deserialize(d)?.as_str() {
        "ucs2" => Ok(Coding::Ucs2),
        "gbk" => Ok(Coding::Gbk),
        other => Err(serde::de::Error::custom(format!("unknown coding {other:?}: \"ucs2\" or \"gbk\""))),
    }
}

fn de_offset<'de, D: Deserializer<'de>>(d: D) -> Result<chrono::FixedOffset, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| serde::de::Error::custom(format!("timezone {s:?} is not an offset like \"+08:00\"")))
}

impl CmppConfig {
    /// Checks what serde cannot: field widths and sane timings.
    pub fn check(&self) -> Result<(), CmppError> {
        let bad = |m: String| Err(CmppError::Config(m));
        let fields = [
            ("account", &self.account, 6),
            ("msg_src", &self.msg_src, 6),
            ("service_id", &self.service_id, 10),
            ("src_id", &self.src_id, 21),
            ("fee_type", &self.fee_type, 2),
            ("fee_code", &self.fee_code, 6),
        ];
        for (name, value, max) in fields {
            if value.len() > max || !value.is_ascii() {
                return bad(format!("{name} must be at most {max} ASCII characters"));
            }
        }
        if self.window == 0 {
            return bad("window must be at least 1".into());
        }
        if self.response_timeout.is_zero() || self.active_test.is_zero() {
            return bad("response_timeout and active_test must be more than 0s".into());
        }
        if self.reconnect_min.is_zero() || self.reconnect_min > self.reconnect_max {
            return bad("reconnect_min must be more than 0s and at most reconnect_max".into());
        }
        Ok(())
    }

    fn msg_src(&self) -> &str {
        if self.msg_src.is_empty() { &self.account } else { &self.msg_src }
    }
}

/// Why one CMPP_SUBMIT did not get a Msg_Id.
#[derive(Debug)]
pub(crate) enum Failure {
    Result(u32),
    Timeout,
    ConnectionLost,
    NotLoggedIn,
    WindowFull,
    ShutDown,
    Malformed(String),
}

pub(crate) enum Command {
    Submit { submit: Box<Submit>, reply: oneshot::Sender<Result<u64, Failure>> },
    Terminate { done: oneshot::Sender<()> },
}

/// State the session task shares with callers, read without a lock on every submit.
#[derive(Default)]
pub(crate) struct Link {
    logged_in: AtomicBool,
    stopped: AtomicBool,
    /// Why the last login or session failed, for the "not logged in" answer. A std Mutex:
    /// written once per connection attempt, read only while logged out.
    last_error: Mutex<String>,
}

impl Link {
    fn set_error(&self, why: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = why;
        }
    }

    fn not_logged_in(&self) -> String {
        match self.last_error.lock() {
            Ok(e) if !e.is_empty() => format!("cmpp: not logged in ({e})"),
            _ => "cmpp: not logged in".into(),
        }
    }
}

/// A CMPP session with automatic reconnect. Cheap to clone; every clone shares the one
/// connection and its window. When the last clone is dropped the session terminates.
#[derive(Clone)]
pub struct CmppClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: CmppConfig,
    commands: mpsc::Sender<Command>,
    window: Semaphore,
    link: Arc<Link>,
}

/// A Msg_Id as the ledger and reports name it: 16 hex digits.
pub fn msg_id_text(id: u64) -> String {
    format!("{id:016x}")
}

impl CmppClient {
    /// Checks the config and spawns the session task on the current tokio runtime; it connects,
    /// logs in and reconnects on its own. Status reports arrive on the returned receiver.
    pub fn start(cfg: CmppConfig) -> Result<(CmppClient, mpsc::Receiver<Incoming>), CmppError> {
        cfg.check()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| CmppError::NoRuntime)?;
        let (commands, command_rx) = mpsc::channel(cfg.window * 2);
        let (report_tx, reports) = mpsc::channel(1024);
        let link = Arc::new(Link::default());
        runtime.spawn(session::run(cfg.clone(), command_rx, link.clone(), report_tx));
        let window = Semaphore::new(cfg.window);
        Ok((CmppClient { inner: Arc::new(Inner { cfg, commands, window, link }) }, reports))
    }

    pub fn is_logged_in(&self) -> bool {
        self.inner.link.logged_in.load(Ordering::Acquire)
    }

    /// Submits every part of the action's text; see the module docs for what each answer means.
    pub async fn submit(&self, action: &Action) -> Sent {
        let cfg = &self.inner.cfg;
        let Some(text) = action.text.as_deref() else {
            return Sent::Rejected { reason: "cmpp: action has no text".into() };
        };
        let dest = action.msisdn.as_str();
        if !(1..=21).contains(&dest.len()) || !dest.bytes().all(|b| b.is_ascii_digit()) {
            return Sent::Rejected { reason: "cmpp: destination is not 1 to 21 digits".into() };
        }
        let reference = crate::util::stable_hash(action.id.as_bytes()) as u8;
        let parts = match split(text, cfg.coding, reference) {
            Ok(p) => p,
            Err(e) => return Sent::Rejected { reason: format!("cmpp: {e}") },
        };
        let total = parts.len();
        let mut ids = Vec::with_capacity(total);
        for (i, part) in parts.into_iter().enumerate() {
            let submit = Submit {
                pk_total: part.total,
                pk_number: part.number,
                registered_delivery: u8::from(cfg.registered_delivery),
                service_id: cfg.service_id.clone(),
                fee_user_type: cfg.fee_user_type,
                tp_udhi: u8::from(part.udhi),
                msg_fmt: part.coding as u8,
                msg_src: cfg.msg_src().to_owned(),
                fee_type: cfg.fee_type.clone(),
                fee_code: cfg.fee_code.clone(),
                src_id: cfg.src_id.clone(),
                dest_terminal_ids: vec![dest.to_owned()],
                msg_content: part.content,
                ..Submit::default()
            };
            match self.submit_one(submit).await {
                Ok(id) => ids.push(msg_id_text(id)),
                Err(f) => return self.answer(f, i, total, &ids),
            }
        }
        Sent::Accepted { gateway_ids: ids }
    }

    async fn submit_one(&self, submit: Submit) -> Result<u64, Failure> {
        let inner = &*self.inner;
        if inner.link.stopped.load(Ordering::Acquire) {
            return Err(Failure::ShutDown);
        }
        if !inner.link.logged_in.load(Ordering::Acquire) {
            return Err(Failure::NotLoggedIn);
        }
        let rt = inner.cfg.response_timeout;
        let _slot = match tokio::time::timeout(rt, inner.window.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(Failure::ShutDown),
            Err(_) => return Err(Failure::WindowFull),
        };
        let (reply, answer) = oneshot::channel();
        let command = Command::Submit { submit: Box::new(submit), reply };
        inner.commands.send(command).await.map_err(|_| Failure::ShutDown)?;
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
            Failure::Result(r) if cfg.flow_control_results.contains(&r) => {
                (true, format!("cmpp: flow control (Result {r})"), Some(cfg.flow_control_retry_after))
            }
            Failure::Result(r) => (false, format!("cmpp: submit refused (Result {r})"), None),
            Failure::NotLoggedIn => (true, self.inner.link.not_logged_in(), Some(cfg.reconnect_min)),
            Failure::ConnectionLost => (true, "cmpp: connection lost".into(), Some(cfg.reconnect_min)),
            Failure::Timeout => (true, "cmpp: no CMPP_SUBMIT_RESP within response_timeout".into(), None),
            Failure::WindowFull => (true, "cmpp: window full".into(), None),
            Failure::ShutDown => (true, "cmpp: client shut down".into(), None),
            Failure::Malformed(m) => (true, format!("cmpp: {m}"), None),
        };
        let ids = accepted.join(",");
        let reason = match i {
            0 => reason,
            _ => format!("{reason} at part {} of {total}; parts before it were accepted as {ids}", i + 1),
        };
        match (in_doubt, retry) {
            (true, _) => Sent::InDoubt { reason },
            (false, true) => Sent::Retry { reason, after },
            (false, false) => Sent::Rejected { reason },
        }
    }

    /// Terminates politely (CMPP_TERMINATE, waits for its response up to `response_timeout`) and
    /// stops the session; later submits answer Retry "client shut down".
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.inner.commands.send(Command::Terminate { done }).await.is_ok() {
            let _ = tokio::time::timeout(self.inner.cfg.response_timeout * 2, finished).await;
        }
        self.inner.link.stopped.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_parse_and_check() {
        let cfg: CmppConfig = toml::from_str(
            r#"
            version = "2.0"
            account = "901234"
            secret = "s3cret"
            src_id = "1069012345"
            coding = "gbk"
            active_test = "15s"
            timezone = "+08:00"
            "#,
        )
        .unwrap();
        assert_eq!((cfg.version, cfg.coding, cfg.window), (Version::V20, Coding::Gbk, 16));
        assert_eq!((cfg.active_test, cfg.flow_control_results.as_slice()), (Duration::from_secs(15), &[8][..]));
        assert_eq!(cfg.msg_src(), "901234");
        cfg.check().unwrap();
        assert!(toml::from_str::<CmppConfig>("version = \"2.1\"").is_err());
        assert!(toml::from_str::<CmppConfig>("acount = \"x\"").is_err(), "unknown fields are refused");
        assert!(CmppConfig { account: "1234567".into(), ..CmppConfig::default() }.check().is_err());
        assert!(CmppConfig { window: 0, ..CmppConfig::default() }.check().is_err());
        assert_eq!(msg_id_text(0x0123), "0000000000000123");
    }

    #[test]
    fn the_commented_example_in_delivery_example_toml_is_a_valid_config() {
        let text = include_str!("../../../config/delivery.example.toml");
        let section: String = text
            .lines()
            .skip_while(|l| *l != "# [delivery.cmpp]")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        assert!(section.contains("flow_control_results"), "the example has the section:\n{section}");
        let cfg: CmppConfig = toml::from_str(&section).unwrap_or_else(|e| panic!("{e}\n{section}"));
        cfg.check().unwrap();
        assert_eq!((cfg.version, cfg.port, cfg.account.as_str()), (Version::V30, 7890, "901234"));
    }
}
