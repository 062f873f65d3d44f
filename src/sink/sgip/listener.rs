//! Where the SMG reaches the SP. SGIP's SMG does not send status reports and subscribers'
//! messages over the SP's connection: it opens its own to the SP, binds (Login Type 2), sends
//! Deliver and Report, and unbinds. This listener takes those connections — several at once —
//! checks the Bind against `smg_login`/`smg_password` (Bind_Resp Result 1 and close when they are
//! wrong, 4 when the Login Type is not 2), and hands every Deliver and Report to the dispatcher,
//! answering it (Deliver_Resp, Report_Resp) only once the dispatcher has it on disk, as the link
//! does ([`crate::sink::gateway::Incoming::with_ack`]); one not answered, because tidings stopped
//! or crashed first, the SMG sends again.
//!
//! An Unbind from the SMG is answered once the answers already made safe are sent (waiting up to
//! `response_timeout` for the rest); when tidings stops, each connection does the same and then
//! unbinds itself.

use super::SgipConfig;
use super::pdu::{self, Body, Decoded, Pdu, Sequence, result};
use super::protocol::{answer, from_smg};
use crate::sink::gateway::{Inbound, Incoming};
use crate::sink::link::Frame;
use crate::sink::wire::{WireError, mmddhhmmss};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout, timeout_at};

/// The accept loop and its connections, stopped together.
pub(super) struct Listener {
    /// `true` stops them; every task holds a receiver, so `closed()` is "all have ended".
    stop: watch::Sender<bool>,
    response_timeout: Duration,
}

impl Listener {
    /// Serves `socket` (already bound, so a bad `listen` fails at start) on the current runtime.
    pub(super) fn start(
        cfg: SgipConfig,
        socket: std::net::TcpListener,
        to_dispatcher: mpsc::Sender<Incoming>,
    ) -> std::io::Result<Listener> {
        socket.set_nonblocking(true)?;
        let socket = TcpListener::from_std(socket)?;
        let (stop, watching) = watch::channel(false);
        let response_timeout = cfg.response_timeout;
        tokio::spawn(accept(Arc::new(cfg), socket, to_dispatcher, watching));
        Ok(Listener { stop, response_timeout })
    }

    /// Stops accepting, and has every connection say goodbye.
    pub(super) fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until every connection has said goodbye (bounded: each waits at most twice
    /// `response_timeout`).
    pub(super) async fn stopped(&self) {
        let _ = timeout(self.response_timeout * 3, self.stop.closed()).await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept(
    cfg: Arc<SgipConfig>,
    socket: TcpListener,
    to_dispatcher: mpsc::Sender<Incoming>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = socket.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let c = Connection::new(cfg.clone(), stream, to_dispatcher.clone(), stop.clone());
                    tokio::spawn(c.serve(peer));
                }
                Err(e) => {
                    // Out of descriptors and the like: the SMG tries again, so do we.
                    eprintln!("tidings: sgip: accepting the SMG's connection on {}: {e}", cfg.listen);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// Why a connection ends: the SMG's doing, or ours.
enum End {
    /// Closed, unbound, refused, or unreadable: nothing more to say.
    Closed,
    /// tidings stops: unbind.
    Stop,
}

struct Connection {
    cfg: Arc<SgipConfig>,
    stream: TcpStream,
    buf: Vec<u8>,
    to_dispatcher: mpsc::Sender<Incoming>,
    /// The answers of items the dispatcher has made safe: send them now.
    acks: (mpsc::UnboundedSender<Vec<u8>>, mpsc::UnboundedReceiver<Vec<u8>>),
    /// Items handed over and not yet answered.
    owed: usize,
    stop: watch::Receiver<bool>,
}

impl Connection {
    fn new(
        cfg: Arc<SgipConfig>,
        stream: TcpStream,
        to_dispatcher: mpsc::Sender<Incoming>,
        stop: watch::Receiver<bool>,
    ) -> Connection {
        let acks = mpsc::unbounded_channel();
        Connection { cfg, stream, buf: Vec::new(), to_dispatcher, acks, owed: 0, stop }
    }

    async fn serve(mut self, peer: std::net::SocketAddr) {
        let rt = self.cfg.response_timeout;
        // The first PDU must be the SMG's Bind, within one response_timeout.
        let bound = match timeout(rt, self.next_pdu()).await {
            Ok(Ok(Some(Pdu { sequence, body: Body::Bind(b) }))) => self.bind(sequence, &b, peer).await,
            _ => false,
        };
        if bound && matches!(self.serve_bound().await, End::Stop) {
            self.goodbye().await;
        }
        let _ = self.stream.shutdown().await;
    }

    /// Answers the Bind; true when it was good.
    async fn bind(&mut self, sequence: Sequence, b: &pdu::Bind, peer: std::net::SocketAddr) -> bool {
        let cfg = &self.cfg;
        let result = if b.login_type != pdu::LOGIN_SMG_TO_SP {
            result::WRONG_LOGIN_TYPE
        } else if b.login_name != cfg.smg_login || b.login_password != cfg.smg_password {
            result::ILLEGAL_LOGIN
        } else {
            result::OK
        };
        if result != result::OK {
            eprintln!(
                "tidings: sgip: refused the bind of {peer} as {:?} (login type {}): {}",
                b.login_name,
                b.login_type,
                result::name(result)
            );
        }
        self.write(&answer(sequence, Body::BindResp { result })).await.is_ok() && result == result::OK
    }

    async fn serve_bound(&mut self) -> End {
        let mut chunk = [0u8; 8192];
        loop {
            tokio::select! {
                r = self.stream.read(&mut chunk) => match r {
                    Ok(0) | Err(_) => return End::Closed,
                    Ok(n) => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = self.frames().await {
                            return end;
                        }
                    }
                },
                Some(ack) = self.acks.1.recv() => {
                    self.owed = self.owed.saturating_sub(1);
                    if self.write(&ack).await.is_err() {
                        return End::Closed;
                    }
                },
                _ = self.stop.changed() => return End::Stop,
            }
        }
    }

    /// Handles every whole PDU in the buffer; `Some` when the connection ends.
    async fn frames(&mut self) -> Option<End> {
        loop {
            let decoded = match self.take() {
                Ok(Some(d)) => d,
                Ok(None) => return None,
                Err(_) => return Some(End::Closed),
            };
            // Whether the connection goes on.
            let goes_on = match decoded {
                Decoded::Pdu(Pdu { sequence, body: Body::Bind(_) }) => {
                    self.write(&answer(sequence, Body::BindResp { result: result::REPEATED_LOGIN })).await.is_ok()
                }
                other => match from_smg(&self.cfg, other) {
                    Frame::Inbound { item, ack } => self.hand(item, ack).await,
                    Frame::Answer(bytes) => self.write(&bytes).await.is_ok(),
                    Frame::Terminate(unbind_resp) => {
                        self.settle().await;
                        let _ = self.write(&unbind_resp).await;
                        false
                    }
                    _ => true,
                },
            };
            if !goes_on {
                return Some(End::Closed);
            }
        }
    }

    /// Hands an item to the dispatcher; its answer goes out once it is safe. False when nobody
    /// takes items any more (stopping): the SMG sends it again to the next run.
    async fn hand(&mut self, item: Inbound, ack: Vec<u8>) -> bool {
        let (incoming, safe) = Incoming::with_ack(item);
        if self.to_dispatcher.send(incoming).await.is_err() {
            return false;
        }
        self.owed += 1;
        let acks = self.acks.0.clone();
        tokio::spawn(async move {
            if safe.await.is_ok() {
                let _ = acks.send(ack);
            }
        });
        true
    }

    /// Sends the answers still owed as they become safe, for up to `response_timeout`.
    async fn settle(&mut self) {
        let deadline = Instant::now() + self.cfg.response_timeout;
        while self.owed > 0 {
            let Ok(Some(ack)) = timeout_at(deadline, self.acks.1.recv()).await else { return };
            self.owed -= 1;
            if self.write(&ack).await.is_err() {
                return;
            }
        }
    }

    /// tidings stops: the answers owed, then Unbind, and its Unbind_Resp awaited (up to
    /// `response_timeout`; what the SMG sends meanwhile it sends again to the next run).
    async fn goodbye(&mut self) {
        self.settle().await;
        let now = chrono::Utc::now().with_timezone(&self.cfg.timezone);
        let sequence = Sequence { node: self.cfg.node_id, time: mmddhhmmss(&now), counter: 1 };
        if self.write(&answer(sequence, Body::Unbind)).await.is_err() {
            return;
        }
        let deadline = Instant::now() + self.cfg.response_timeout;
        while let Ok(Ok(Some(pdu))) = timeout_at(deadline, self.next_pdu()).await {
            if pdu.body == Body::UnbindResp {
                return;
            }
        }
    }

    /// The next whole PDU that parses (others are passed over); None when the SMG closed.
    async fn next_pdu(&mut self) -> Result<Option<Pdu>, WireError> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.take()? {
                Some(Decoded::Pdu(pdu)) => return Ok(Some(pdu)),
                Some(Decoded::Bad { .. }) => continue,
                None => {}
            }
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Takes one frame off the front of the buffer, if a whole one is there.
    fn take(&mut self) -> Result<Option<Decoded>, WireError> {
        let Some((decoded, used)) = pdu::decode_frame(&self.buf)? else { return Ok(None) };
        self.buf.drain(..used);
        Ok(Some(decoded))
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match timeout(self.cfg.response_timeout, self.stream.write_all(bytes)).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the SMG stopped reading")),
        }
    }
}
