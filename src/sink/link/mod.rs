//! The link to an operator's SMS gateway that CMPP ([`super::cmpp`]), SMGP ([`super::smgp`]) and
//! SGIP ([`super::sgip`]) share: one long TCP connection, a login, a window of submits awaiting
//! their responses, heartbeats, a polite goodbye, reconnect with back-off, and reports and
//! subscribers' messages handed to the dispatcher and acknowledged only once they are on disk.
//! The three protocols descend from one design, so this is written once; what differs — the
//! PDUs, the login's proof, what a response means — is a [`Protocol`].
//!
//! [`Client`] is what the dispatcher holds: [`Client::submit`] sends every part of an action's
//! text and answers a [`Sent`]:
//!
//! - `Accepted { gateway_ids }`: every part got a submit response with result 0; one gateway id
//!   per part, in part order (the status reports name these).
//! - `Retry`: not logged in (the reason says why, e.g. `cmpp: not logged in (login refused:
//!   authentication failed (status 3))`), connection lost before the submit went out, window
//!   full, or the gateway's flow control (any of `flow_control_results`: after
//!   `flow_control_retry_after`).
//! - `InDoubt`: the submit went out and no answer came (timeout, connection lost).
//! - `Rejected`: any other result, an action without text, a destination that is not digits, a
//!   sender that is not digits or too long for the protocol's source field.
//!
//! Every part goes out from the action's sender when it has one, else from the configured source
//! ([`crate::sink::gateway::source`]): one place for the four protocols, each naming its field.
//!
//! A long message goes as parts, its concatenation reference derived from the action id so a
//! resend matches; a later part that meets flow control waits `flow_control_retry_after` and goes
//! again (up to ten times), so the parts already taken are not sent twice; a part that fails
//! otherwise stops the rest, as in the SMPP sink (its module docs say why).
//!
//! The session task ([`session`]) owns the connection, as the SMPP session does: callers send a
//! command and await a oneshot, so sequence numbers, the pending map and the write half have a
//! single owner.

pub mod de;
mod session;

use crate::contact::Action;
use crate::sink::gateway::{Inbound, Incoming, Sent, SourceField, source};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Semaphore, mpsc, oneshot};

#[derive(Debug, Error)]
pub enum LinkError {
    #[error("{protocol} config: {why}")]
    Config { protocol: &'static str, why: String },
    #[error("{0} client must be started inside a tokio runtime")]
    NoRuntime(&'static str),
}

/// Where the gateway is and the timings of the link, from the protocol's config.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkSettings {
    pub host: String,
    pub port: u16,
    /// Submits awaiting their response at once.
    pub window: usize,
    /// Send a heartbeat after this long without sending anything (protocols that have one).
    pub active_test: Duration,
    /// How long to wait for any response (login, submit, heartbeat, goodbye).
    pub response_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Submit results that mean "slow down and send again".
    pub flow_control_results: Vec<u32>,
    pub flow_control_retry_after: Duration,
    /// Protocols without a heartbeat (SGIP) say goodbye after this long idle and log in again
    /// when the next submit comes, rather than leave the gateway to cut an idle link.
    pub idle_close: Option<Duration>,
}

/// The [`LinkSettings`] of a `[delivery.*]` config whose fields carry the same names (`host`,
/// `port`, `window`, `response_timeout`, `reconnect_min`, `reconnect_max`,
/// `flow_control_results`, `flow_control_retry_after`), with its heartbeat and idle close.
macro_rules! settings_of {
    ($cfg:expr, active_test: $active_test:expr, idle_close: $idle_close:expr) => {
        $crate::sink::link::LinkSettings {
            host: $cfg.host.clone(),
            port: $cfg.port,
            window: $cfg.window,
            active_test: $active_test,
            response_timeout: $cfg.response_timeout,
            reconnect_min: $cfg.reconnect_min,
            reconnect_max: $cfg.reconnect_max,
            flow_control_results: $cfg.flow_control_results.clone(),
            flow_control_retry_after: $cfg.flow_control_retry_after,
            idle_close: $idle_close,
        }
    };
}
pub(crate) use settings_of;

impl LinkSettings {
    /// Checks the timings and the window; `protocol` names the section in the error.
    pub fn check(&self, protocol: &'static str) -> Result<(), LinkError> {
        let bad = |why: &str| Err(LinkError::Config { protocol, why: why.into() });
        if self.window == 0 {
            return bad("window must be at least 1");
        }
        if self.response_timeout.is_zero() || self.active_test.is_zero() {
            return bad("response_timeout and active_test must be more than 0s");
        }
        if self.reconnect_min.is_zero() || self.reconnect_min > self.reconnect_max {
            return bad("reconnect_min must be more than 0s and at most reconnect_max");
        }
        Ok(())
    }
}

/// One frame from the gateway, as the link needs to know it.
#[derive(Debug)]
pub enum Frame {
    /// The answer to our login: its status and the gateway's proof of the secret (empty when
    /// the protocol has none).
    LoginResp { seq: u32, status: u32, proof: Vec<u8> },
    /// The answer to our submit `seq`: the gateway's id for the part, or its result code.
    SubmitResp { seq: u32, result: Result<String, u32> },
    /// A status report or a subscriber's message; `ack` answers it once it is on disk.
    Inbound { item: Inbound, ack: Vec<u8> },
    /// A request answered at once with these bytes (a heartbeat, an unreadable deliver).
    Answer(Vec<u8>),
    /// The answer to our heartbeat `seq`.
    ActiveTestResp { seq: u32 },
    /// The gateway ends the session: answer with these bytes and reconnect.
    Terminate(Vec<u8>),
    /// The answer to our goodbye `seq`.
    TerminateResp { seq: u32 },
    /// A response that did not parse: fails the submit `seq` it answers.
    BadResp { seq: u32, error: String },
    /// The gateway refused our request `seq` whatever it was (SMPP's generic_nack): fails the
    /// submit or the heartbeat, or the login.
    Nack { seq: u32, result: u32 },
    /// Nothing the link acts on.
    Ignore,
}

/// What one of the operators' protocols brings to the link.
pub trait Protocol: Send + Sync + Sized + 'static {
    /// `cmpp`, `smgp`, `sgip`: in messages, and a reply's `gateway`.
    const NAME: &'static str;
    /// The submit response's name in messages: `CMPP_SUBMIT_RESP`.
    const SUBMIT_RESP: &'static str;
    /// How a logged-out link is described: `not logged in` (SMPP: `not bound`).
    const LOGGED_OUT: &'static str = "not logged in";
    /// The most digits a destination number may have.
    const MAX_DIGITS: usize = 21;
    /// Where the sender number goes (`Src_Id`, 21 octets).
    const SOURCE: SourceField;
    /// The `[delivery.*]` section.
    type Config: Clone + Send + 'static;
    /// One part of a message, ready to be encoded with a sequence number.
    type Part: Clone + Send + 'static;
    /// What the login request leaves to check the answer with (CMPP: AuthenticatorSource).
    type Login: Send + Sync;

    /// Checks the config (field widths, timings).
    fn new(cfg: Self::Config) -> Result<Self, LinkError>;
    fn settings(&self) -> &LinkSettings;
    /// The source the config names: what an action without a sender goes out from.
    fn configured_source(&self) -> &str;
    /// The parts of one action's text to `dest` (checked to be digits) from `source` (the
    /// action's sender or the configured source, checked against [`Protocol::SOURCE`]), or why
    /// not.
    fn parts(&self, action: &Action, dest: &str, source: &str) -> Result<Vec<Self::Part>, String>;
    /// The login request with sequence 1.
    fn login(&self) -> Result<(Vec<u8>, Self::Login), String>;
    /// Whether the login answer's status and proof are good; the error says why not.
    fn check_login(&self, login: &Self::Login, status: u32, proof: &[u8]) -> Result<(), String>;
    fn submit(&self, seq: u32, part: &Self::Part) -> Result<Vec<u8>, String>;
    /// The heartbeat request; `None` when the protocol has none (then `idle_close` applies).
    fn active_test(&self, seq: u32) -> Option<Vec<u8>>;
    /// The goodbye request.
    fn terminate(&self, seq: u32) -> Vec<u8>;
    /// Takes one frame off the front of `buf`: `Ok(None)` until a whole one is there, `Err` when
    /// framing is lost.
    fn decode(&self, buf: &[u8]) -> Result<Option<(Frame, usize)>, String>;

    /// What a submit response's non-zero `result` means: by default the settings'
    /// `flow_control_results` are "slow down and send again", anything else refuses the message.
    fn refusal(&self, result: u32) -> Refusal {
        let s = self.settings();
        if s.flow_control_results.contains(&result) {
            let reason = format!("flow control (Result {result})");
            return Refusal::Retry { reason, after: Some(s.flow_control_retry_after) };
        }
        Refusal::Reject { reason: format!("submit refused (Result {result})") }
    }
}

/// What a refused submit means to the dispatcher (the reason without the protocol's name).
pub enum Refusal {
    Retry { reason: String, after: Option<Duration> },
    Reject { reason: String },
}

/// How often a later part of a long message waits out the gateway's flow control before the
/// message is answered Retry as a whole.
const PART_WAITS: u32 = 10;

/// Why one submit did not get a gateway id.
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

pub(crate) enum Command<Part> {
    Submit { part: Box<Part>, reply: oneshot::Sender<Result<String, Failure>> },
    Terminate { done: oneshot::Sender<()> },
}

/// State the session task shares with callers, read without a lock on every submit.
#[derive(Default)]
pub(crate) struct Shared {
    logged_in: AtomicBool,
    /// Logged out on purpose while idle (`idle_close`): the next submit logs in again.
    dormant: AtomicBool,
    stopped: AtomicBool,
    /// Why the last login or session failed, for the "not logged in" answer. A std Mutex:
    /// written once per connection attempt, read only while logged out.
    last_error: Mutex<String>,
}

impl Shared {
    fn set_error(&self, why: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = why;
        }
    }

    fn logged_out<P: Protocol>(&self) -> String {
        let (name, state) = (P::NAME, P::LOGGED_OUT);
        match self.last_error.lock() {
            Ok(e) if !e.is_empty() => format!("{name}: {state} ({e})"),
            _ => format!("{name}: {state}"),
        }
    }
}

/// A link with automatic reconnect. Cheap to clone; every clone shares the one connection and
/// its window. When the last clone is dropped the session says goodbye.
pub struct Client<P: Protocol> {
    inner: Arc<Inner<P>>,
}

impl<P: Protocol> Clone for Client<P> {
    fn clone(&self) -> Self {
        Client { inner: self.inner.clone() }
    }
}

struct Inner<P: Protocol> {
    protocol: Arc<P>,
    commands: mpsc::Sender<Command<P::Part>>,
    window: Semaphore,
    shared: Arc<Shared>,
}

impl<P: Protocol> Client<P> {
    /// Checks the config and spawns the session task on the current tokio runtime; it connects,
    /// logs in and reconnects on its own. Reports and replies arrive on the returned receiver.
    pub fn start(cfg: P::Config) -> Result<(Client<P>, mpsc::Receiver<Incoming>), LinkError> {
        let protocol = Arc::new(P::new(cfg)?);
        let settings = protocol.settings();
        settings.check(P::NAME)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| LinkError::NoRuntime(P::NAME))?;
        let (commands, command_rx) = mpsc::channel(settings.window * 2);
        let (report_tx, reports) = mpsc::channel(1024);
        let shared = Arc::new(Shared::default());
        let window = Semaphore::new(settings.window);
        runtime.spawn(session::run(protocol.clone(), command_rx, shared.clone(), report_tx));
        Ok((Client { inner: Arc::new(Inner { protocol, commands, window, shared }) }, reports))
    }

    /// How many parts (each with a report of its own) the action's text takes over this link.
    pub fn parts(&self, action: &Action) -> usize {
        let protocol = &self.inner.protocol;
        let from = source(action, protocol.configured_source(), P::SOURCE).unwrap_or(protocol.configured_source());
        protocol.parts(action, &action.msisdn, from).map_or(1, |p| p.len().max(1))
    }

    pub fn is_logged_in(&self) -> bool {
        self.inner.shared.logged_in.load(Ordering::Acquire)
    }

    /// Submits every part of the action's text; see the module docs for what each answer means.
    pub async fn submit(&self, action: &Action) -> Sent {
        let name = P::NAME;
        if action.text.is_none() {
            return Sent::Rejected { reason: format!("{name}: action has no text") };
        }
        let dest = action.msisdn.as_str();
        if !(1..=P::MAX_DIGITS).contains(&dest.len()) || !dest.bytes().all(|b| b.is_ascii_digit()) {
            return Sent::Rejected { reason: format!("{name}: destination is not 1 to {} digits", P::MAX_DIGITS) };
        }
        let protocol = &self.inner.protocol;
        let from = match source(action, protocol.configured_source(), P::SOURCE) {
            Ok(from) => from,
            Err(e) => return Sent::Rejected { reason: format!("{name}: {e}") },
        };
        let parts = match protocol.parts(action, dest, from) {
            Ok(p) => p,
            Err(e) => return Sent::Rejected { reason: format!("{name}: {e}") },
        };
        let total = parts.len();
        let mut ids = Vec::with_capacity(total);
        for (i, part) in parts.into_iter().enumerate() {
            let mut waits = 0;
            loop {
                match self.submit_one(part.clone()).await {
                    Ok(id) => ids.push(id),
                    // A later part meets flow control: wait as the gateway asks and send that part
                    // again, rather than answer Retry and have the whole message sent again — the
                    // parts already taken would reach the handset twice, and their reports would
                    // name nothing the ledger knows.
                    Err(Failure::Result(r)) if i > 0 && waits < PART_WAITS => {
                        let Refusal::Retry { after, .. } = self.inner.protocol.refusal(r) else {
                            return self.answer(Failure::Result(r), i, total, &ids);
                        };
                        waits += 1;
                        tokio::time::sleep(after.unwrap_or(self.inner.protocol.settings().reconnect_min)).await;
                        continue;
                    }
                    Err(f) => return self.answer(f, i, total, &ids),
                }
                break;
            }
        }
        Sent::Accepted { gateway_ids: ids }
    }

    async fn submit_one(&self, part: P::Part) -> Result<String, Failure> {
        let inner = &*self.inner;
        let shared = &inner.shared;
        if shared.stopped.load(Ordering::Acquire) {
            return Err(Failure::ShutDown);
        }
        if !shared.logged_in.load(Ordering::Acquire) && !shared.dormant.load(Ordering::Acquire) {
            return Err(Failure::NotLoggedIn);
        }
        let rt = inner.protocol.settings().response_timeout;
        let _slot = match tokio::time::timeout(rt, inner.window.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(Failure::ShutDown),
            Err(_) => return Err(Failure::WindowFull),
        };
        let (reply, answer) = oneshot::channel();
        let command = Command::Submit { part: Box::new(part), reply };
        inner.commands.send(command).await.map_err(|_| Failure::ShutDown)?;
        // The session times responses out itself; this outer bound only guards a stuck task
        // (and leaves room for a dormant link to log in first).
        match tokio::time::timeout(rt * 3, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Failure::ConnectionLost),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Turns the failure of part `i` (0-based) of `total` into the caller's answer.
    fn answer(&self, f: Failure, i: usize, total: usize, accepted: &[String]) -> Sent {
        let s = self.inner.protocol.settings();
        let name = P::NAME;
        let in_doubt = matches!(f, Failure::ConnectionLost | Failure::Timeout);
        let (retry, reason, after) = match f {
            Failure::Result(r) => match self.inner.protocol.refusal(r) {
                Refusal::Retry { reason, after } => (true, format!("{name}: {reason}"), after),
                Refusal::Reject { reason } => (false, format!("{name}: {reason}"), None),
            },
            Failure::NotLoggedIn => (true, self.inner.shared.logged_out::<P>(), Some(s.reconnect_min)),
            Failure::ConnectionLost => (true, format!("{name}: connection lost"), Some(s.reconnect_min)),
            Failure::Timeout => (true, format!("{name}: no {} within response_timeout", P::SUBMIT_RESP), None),
            Failure::WindowFull => (true, format!("{name}: window full"), None),
            Failure::ShutDown => (true, format!("{name}: client shut down"), None),
            Failure::Malformed(m) => (true, format!("{name}: {m}"), None),
        };
        let ids = accepted.join(",");
        let reason = match i {
            0 => reason,
            1 => format!("{reason} at part 2 of {total}; part 1 was accepted as {ids}"),
            _ => format!("{reason} at part {} of {total}; parts 1-{i} were accepted as {ids}", i + 1),
        };
        match (in_doubt, retry) {
            (true, _) => Sent::InDoubt { reason },
            (false, true) => Sent::Retry { reason, after },
            (false, false) => Sent::Rejected { reason },
        }
    }

    /// Says goodbye politely (waits for the answer up to `response_timeout`) and stops the
    /// session; later submits answer Retry "client shut down".
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.inner.commands.send(Command::Terminate { done }).await.is_ok() {
            let _ = tokio::time::timeout(self.inner.protocol.settings().response_timeout * 2, finished).await;
        }
        self.inner.shared.stopped.store(true, Ordering::Release);
    }
}
