//! The one task that owns the ISMG connection, shaped as the SMPP session is (its module docs
//! say why): callers send a [`Command`] and await a oneshot, so sequence ids, the pending map and
//! the write half have a single owner. The task loops connect → CMPP_CONNECT → serve → (lost) →
//! back off, answering every submit at once with "not logged in" while it has no session.

use super::pdu::{self, Body, Connect, Decoded, Deliver, DeliverResp, Pdu, Report as CmppReport, Version, status};
use super::{CmppConfig, Command, Failure, Link, msg_id_text};
use crate::sink::gateway::{Incoming, OutcomeStatus, Report};
use crate::sink::wire::{authenticator, md5, mmddhhmmss};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};

type Reply = oneshot::Sender<Result<u64, Failure>>;
/// A status report made safe: the DELIVER's sequence id and Msg_Id, to answer it with.
type Ack = (u32, u64);
/// Err: the connection must be dropped, and why.
type Step = Result<(), String>;

enum End {
    Lost(String),
    Stopped,
}

pub(crate) async fn run(
    cfg: CmppConfig,
    mut commands: mpsc::Receiver<Command>,
    link: Arc<Link>,
    reports: mpsc::Sender<Incoming>,
) {
    let mut backoff = cfg.reconnect_min;
    loop {
        let attempt = connect_and_login(&cfg);
        tokio::pin!(attempt);
        let logged_in = loop {
            tokio::select! {
                r = &mut attempt => break r,
                c = commands.recv() => if refuse(c) { return stop(&link) },
            }
        };
        match logged_in {
            Ok((reader, writer, buf)) => {
                backoff = cfg.reconnect_min;
                link.set_error(String::new());
                link.logged_in.store(true, Ordering::Release);
                let mut s = Session::new(&cfg, reader, writer, buf, &reports);
                let end = s.serve(&mut commands).await;
                link.logged_in.store(false, Ordering::Release);
                s.fail_pending();
                match end {
                    End::Stopped => return stop(&link),
                    End::Lost(why) => link.set_error(why),
                }
            }
            Err(why) => link.set_error(why),
        }
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                c = commands.recv() => if refuse(c) { return stop(&link) },
            }
        }
        backoff = (backoff * 2).min(cfg.reconnect_max);
    }
}

fn stop(link: &Link) {
    link.logged_in.store(false, Ordering::Release);
    link.stopped.store(true, Ordering::Release);
}

/// Answers a command while logged out. True when the session should stop.
fn refuse(c: Option<Command>) -> bool {
    match c {
        Some(Command::Submit { reply, .. }) => {
            let _ = reply.send(Err(Failure::NotLoggedIn));
            false
        }
        Some(Command::Terminate { done }) => {
            let _ = done.send(());
            true
        }
        None => true,
    }
}

/// Connects and logs in within one `response_timeout`: CMPP_CONNECT with the MD5
/// AuthenticatorSource of the current time in the ISMG's zone, then the ISMG's Status and, when
/// configured, its AuthenticatorISMG checked. Returns the halves and whatever followed.
async fn connect_and_login(cfg: &CmppConfig) -> Result<(OwnedReadHalf, OwnedWriteHalf, Vec<u8>), String> {
    let v = cfg.version;
    let work = async {
        let stream = TcpStream::connect((cfg.host.as_str(), cfg.port)).await.map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let timestamp = mmddhhmmss(&chrono::Utc::now().with_timezone(&cfg.timezone));
        let source = authenticator(&cfg.account, 9, &cfg.secret, timestamp);
        let connect =
            Connect { source_addr: cfg.account.clone(), authenticator: source, version: v.octet(), timestamp };
        let bytes = pdu::encode(v, &Pdu { sequence: 1, body: Body::Connect(connect) }).map_err(|e| e.to_string())?;
        writer.write_all(&bytes).await.map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Some((frame, used)) = pdu::decode_frame(v, &buf).map_err(|e| e.to_string())? {
                buf.drain(..used);
                let Decoded::Pdu(Pdu { sequence: 1, body: Body::ConnectResp(resp) }) = frame else { continue };
                if resp.status != status::OK {
                    return Err(format!("login refused: {} (status {})", status::connect(resp.status), resp.status));
                }
                let expected = md5(&[&v.status_octets(resp.status), &source, cfg.secret.as_bytes()]);
                if cfg.verify_authenticator && resp.authenticator != expected {
                    return Err("login answered with an AuthenticatorISMG that does not match our secret".into());
                }
                return Ok((reader, writer, buf));
            }
            match reader.read(&mut chunk).await {
                Ok(0) => return Err("closed during login".to_string()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    };
    timeout(cfg.response_timeout, work).await.unwrap_or_else(|_| Err("login timed out".to_string()))
}

struct Session<'a> {
    cfg: &'a CmppConfig,
    v: Version,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: Vec<u8>,
    next_seq: u32,
    /// CMPP_SUBMIT awaiting CMPP_SUBMIT_RESP: sequence → (caller, sent at).
    pending: HashMap<u32, (Reply, Instant)>,
    /// Our CMPP_ACTIVE_TEST awaiting its response.
    active_test: Option<(u32, Instant)>,
    last_sent: Instant,
    terminating: Option<u32>,
    reports: &'a mpsc::Sender<Incoming>,
    /// (sequence, Msg_Id) of status reports the consumer has made safe: answer them now. Per
    /// connection: those of a lost connection are delivered again by the ISMG.
    acks: (mpsc::UnboundedSender<Ack>, mpsc::UnboundedReceiver<Ack>),
}

impl<'a> Session<'a> {
    fn new(
        cfg: &'a CmppConfig,
        reader: OwnedReadHalf,
        writer: OwnedWriteHalf,
        buf: Vec<u8>,
        reports: &'a mpsc::Sender<Incoming>,
    ) -> Self {
        Session {
            cfg,
            v: cfg.version,
            reader,
            writer,
            buf,
            next_seq: 2,
            pending: HashMap::new(),
            active_test: None,
            last_sent: Instant::now(),
            terminating: None,
            reports,
            acks: mpsc::unbounded_channel(),
        }
    }

    fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = if s >= 0x7FFF_FFFF { 1 } else { s + 1 };
        s
    }

    async fn serve(&mut self, commands: &mut mpsc::Receiver<Command>) -> End {
        let tick_every = (self.cfg.response_timeout.min(self.cfg.active_test) / 4).max(Duration::from_millis(10));
        let mut tick = tokio::time::interval(tick_every);
        let mut chunk = [0u8; 8192];
        if let Err(why) = self.frames().await {
            return End::Lost(why);
        }
        loop {
            tokio::select! {
                r = self.reader.read(&mut chunk) => match r {
                    Ok(0) => return End::Lost("the ISMG closed the connection".into()),
                    Err(e) => return End::Lost(format!("read: {e}")),
                    Ok(n) => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        if let Err(why) = self.frames().await {
                            return End::Lost(why);
                        }
                    }
                },
                c = commands.recv() => match c {
                    Some(Command::Submit { submit, reply }) => {
                        let seq = self.seq();
                        match pdu::encode(self.v, &Pdu { sequence: seq, body: Body::Submit(submit) }) {
                            Err(e) => { let _ = reply.send(Err(Failure::Malformed(e.to_string()))); }
                            Ok(bytes) => {
                                self.pending.insert(seq, (reply, Instant::now()));
                                if let Err(why) = self.write(bytes).await {
                                    return End::Lost(why);
                                }
                            }
                        }
                    }
                    Some(Command::Terminate { done }) => {
                        self.terminate().await;
                        let _ = done.send(());
                        return End::Stopped;
                    }
                    None => {
                        self.terminate().await;
                        return End::Stopped;
                    }
                },
                _ = tick.tick() => if let Err(why) = self.on_tick().await {
                    return End::Lost(why);
                },
                Some((seq, msg_id)) = self.acks.1.recv() => {
                    if let Err(why) = self.send(seq, Body::DeliverResp(DeliverResp { msg_id, result: 0 })).await {
                        return End::Lost(why);
                    }
                },
            }
        }
    }

    async fn write(&mut self, bytes: Vec<u8>) -> Step {
        match timeout(self.cfg.response_timeout, self.writer.write_all(&bytes)).await {
            Ok(Ok(())) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Ok(Err(e)) => Err(format!("write: {e}")),
            Err(_) => Err("write stalled: the ISMG stopped reading".into()),
        }
    }

    async fn send(&mut self, sequence: u32, body: Body) -> Step {
        // Only responses and bodies we build ourselves pass here; they always encode.
        let bytes = pdu::encode(self.v, &Pdu { sequence, body }).map_err(|e| e.to_string())?;
        self.write(bytes).await
    }

    async fn frames(&mut self) -> Step {
        let mut used = 0;
        let result = loop {
            match pdu::decode_frame(self.v, &self.buf[used..]) {
                Err(e) => break Err(e.to_string()),
                Ok(None) => break Ok(()),
                Ok(Some((frame, n))) => {
                    used += n;
                    if let Err(why) = self.handle(frame).await {
                        break Err(why);
                    }
                }
            }
        };
        self.buf.drain(..used);
        result
    }

    async fn handle(&mut self, frame: Decoded) -> Step {
        let pdu = match frame {
            Decoded::Pdu(p) => p,
            Decoded::Bad { command_id, sequence, error } => {
                return self.bad(command_id, sequence, error.to_string()).await;
            }
        };
        let seq = pdu.sequence;
        match pdu.body {
            Body::SubmitResp(r) => {
                if let Some((reply, _)) = self.pending.remove(&seq) {
                    let _ = reply.send(if r.result == 0 { Ok(r.msg_id) } else { Err(Failure::Result(r.result)) });
                }
            }
            Body::Deliver(d) => return self.deliver(seq, *d).await,
            Body::ActiveTest => self.send(seq, Body::ActiveTestResp).await?,
            Body::ActiveTestResp => {
                if self.active_test.is_some_and(|(s, _)| s == seq) {
                    self.active_test = None;
                }
            }
            Body::Terminate => {
                let _ = self.send(seq, Body::TerminateResp).await;
                return Err("the ISMG terminated the session".into());
            }
            Body::TerminateResp => {
                if self.terminating == Some(seq) {
                    self.terminating = None;
                }
            }
            // Requests an SP does not serve and stray responses are passed over.
            Body::Connect(_) | Body::ConnectResp(_) | Body::Submit(_) | Body::DeliverResp(_) | Body::Other(_) => {}
        }
        Ok(())
    }

    /// A status report becomes a [`Report`], answered once the consumer has it safe; a
    /// subscriber's message is answered at once (see the module docs).
    async fn deliver(&mut self, seq: u32, d: Deliver) -> Step {
        if d.registered_delivery == 1 {
            let report = match CmppReport::decode(self.v, &d.msg_content) {
                Ok(r) => r,
                // Permanent: the same octets will not parse on redelivery either.
                Err(_) => return self.send(seq, Body::DeliverResp(DeliverResp { msg_id: d.msg_id, result: 1 })).await,
            };
            let status = if report.stat == "DELIVRD" { OutcomeStatus::Delivered } else { OutcomeStatus::Failed };
            let report = Report {
                action_id: None,
                gateway_id: Some(msg_id_text(report.msg_id)),
                msisdn: Some(report.dest_terminal_id.clone()),
                reference: None,
                status,
                detail: format!("stat:{}", report.stat),
                at_ms: chrono::Utc::now().timestamp_millis(),
            };
            let (incoming, safe) = Incoming::with_ack(report);
            if self.reports.send(incoming).await.is_ok() {
                let acks = self.acks.0.clone();
                let msg_id = d.msg_id;
                tokio::spawn(async move {
                    if safe.await.is_ok() {
                        let _ = acks.send((seq, msg_id));
                    }
                });
                return Ok(());
            }
        }
        self.send(seq, Body::DeliverResp(DeliverResp { msg_id: d.msg_id, result: 0 })).await
    }

    /// A whole frame whose body did not parse: fail the submit it answers, or refuse the
    /// DELIVER (Result 1, message structure error) so the ISMG does not wait; keep the connection.
    async fn bad(&mut self, command_id: u32, seq: u32, error: String) -> Step {
        if command_id & 0x8000_0000 != 0 {
            if let Some((reply, _)) = self.pending.remove(&seq) {
                let _ = reply.send(Err(Failure::Malformed(format!("unreadable CMPP_SUBMIT_RESP: {error}"))));
            }
            return Ok(());
        }
        if command_id == pdu::DELIVER {
            return self.send(seq, Body::DeliverResp(DeliverResp { msg_id: 0, result: 1 })).await;
        }
        Ok(())
    }

    /// Times out submits and our active test; sends CMPP_ACTIVE_TEST when the link has been idle.
    async fn on_tick(&mut self) -> Step {
        let rt = self.cfg.response_timeout;
        let expired: Vec<u32> =
            self.pending.iter().filter(|(_, (_, at))| at.elapsed() >= rt).map(|(s, _)| *s).collect();
        for seq in expired {
            if let Some((reply, _)) = self.pending.remove(&seq) {
                let _ = reply.send(Err(Failure::Timeout));
            }
        }
        match self.active_test {
            Some((_, at)) if at.elapsed() >= rt => return Err("CMPP_ACTIVE_TEST unanswered".into()),
            Some(_) => {}
            None if self.last_sent.elapsed() >= self.cfg.active_test => {
                let seq = self.seq();
                self.active_test = Some((seq, Instant::now()));
                self.send(seq, Body::ActiveTest).await?;
            }
            None => {}
        }
        Ok(())
    }

    /// Sends CMPP_TERMINATE and waits up to `response_timeout` for its response, still handling
    /// what arrives meanwhile (a report that arrives then is answered later by the next session's
    /// redelivery, as after a crash).
    async fn terminate(&mut self) {
        // Reports already made safe are answered first: the ISMG need not send them again.
        while let Ok((seq, msg_id)) = self.acks.1.try_recv() {
            if self.send(seq, Body::DeliverResp(DeliverResp { msg_id, result: 0 })).await.is_err() {
                return;
            }
        }
        let seq = self.seq();
        self.terminating = Some(seq);
        if self.send(seq, Body::Terminate).await.is_err() {
            return;
        }
        let deadline = Instant::now() + self.cfg.response_timeout;
        let mut chunk = [0u8; 8192];
        while self.terminating.is_some() {
            match tokio::time::timeout_at(deadline, self.reader.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if self.frames().await.is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
        let _ = self.writer.shutdown().await;
    }

    fn fail_pending(&mut self) {
        for (_, (reply, _)) in self.pending.drain() {
            let _ = reply.send(Err(Failure::ConnectionLost));
        }
    }
}
