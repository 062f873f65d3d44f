//! The one task that owns the gateway connection. It loops connect → login → serve → (lost) →
//! back off, answering every submit at once with "not logged in" while it has no session; a
//! link closed because it was idle (`idle_close`) waits for the next submit and logs in for it.

use super::{Command, Failure, Frame, Protocol, Shared};
use crate::sink::gateway::Incoming;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};

type Reply = oneshot::Sender<Result<String, Failure>>;
/// Err: the connection must be dropped, and why.
type Step = Result<(), String>;

enum End {
    Lost(String),
    /// Said goodbye after `idle_close` without traffic.
    Idle,
    Stopped,
}

pub(super) async fn run<P: Protocol>(
    p: Arc<P>,
    mut commands: mpsc::Receiver<Command<P::Part>>,
    shared: Arc<Shared>,
    reports: mpsc::Sender<Incoming>,
) {
    let s = p.settings();
    let mut backoff = s.reconnect_min;
    loop {
        // Submits that arrive while logging in wait for the outcome.
        let mut waiting = Vec::new();
        if shared.dormant.load(Ordering::Acquire) {
            match commands.recv().await {
                Some(c @ Command::Submit { .. }) => waiting.push(c),
                other => {
                    refuse(other);
                    return stop(&shared);
                }
            }
        }
        let attempt = connect_and_login(&*p);
        tokio::pin!(attempt);
        let logged_in = loop {
            tokio::select! {
                r = &mut attempt => break r,
                c = commands.recv() => match c {
                    Some(c @ Command::Submit { .. }) => waiting.push(c),
                    other => {
                        waiting.into_iter().for_each(|c| { refuse(Some(c)); });
                        refuse(other);
                        return stop(&shared);
                    }
                },
            }
        };
        shared.dormant.store(false, Ordering::Release);
        match logged_in {
            Ok((reader, writer, buf)) => {
                backoff = s.reconnect_min;
                shared.set_error(String::new());
                shared.logged_in.store(true, Ordering::Release);
                let mut session = Session::new(&*p, reader, writer, buf, &reports);
                let end = session.serve(&mut commands, waiting).await;
                shared.logged_in.store(false, Ordering::Release);
                session.fail_pending();
                match end {
                    End::Stopped => return stop(&shared),
                    End::Idle => {
                        shared.dormant.store(true, Ordering::Release);
                        continue;
                    }
                    End::Lost(why) => shared.set_error(why),
                }
            }
            Err(why) => {
                shared.set_error(why);
                waiting.into_iter().for_each(|c| {
                    refuse(Some(c));
                });
            }
        }
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                c = commands.recv() => if refuse(c) { return stop(&shared) },
            }
        }
        backoff = (backoff * 2).min(s.reconnect_max);
    }
}

fn stop(shared: &Shared) {
    shared.logged_in.store(false, Ordering::Release);
    shared.dormant.store(false, Ordering::Release);
    shared.stopped.store(true, Ordering::Release);
}

/// Answers a command while logged out. True when the session should stop.
fn refuse<Part>(c: Option<Command<Part>>) -> bool {
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

/// Connects and logs in within one `response_timeout`. Returns the halves and whatever followed
/// the login answer.
async fn connect_and_login<P: Protocol>(p: &P) -> Result<(OwnedReadHalf, OwnedWriteHalf, Vec<u8>), String> {
    let s = p.settings();
    let work = async {
        let stream = TcpStream::connect((s.host.as_str(), s.port)).await.map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let (bytes, login) = p.login()?;
        writer.write_all(&bytes).await.map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            // Anything else before the answer (an early heartbeat) is passed over.
            while let Some((frame, used)) = p.decode(&buf)? {
                buf.drain(..used);
                match frame {
                    Frame::LoginResp { seq: 1, status, proof } => {
                        p.check_login(&login, status, &proof)?;
                        return Ok((reader, writer, buf));
                    }
                    Frame::Nack { seq: 1, result } => p.check_login(&login, result.max(1), &[])?,
                    _ => {}
                }
            }
            match reader.read(&mut chunk).await {
                Ok(0) => return Err("closed during login".to_string()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    };
    timeout(s.response_timeout, work).await.unwrap_or_else(|_| Err("login timed out".to_string()))
}

struct Session<'a, P: Protocol> {
    p: &'a P,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: Vec<u8>,
    next_seq: u32,
    /// Submits awaiting their response: sequence → (caller, sent at).
    pending: HashMap<u32, (Reply, Instant)>,
    /// Our heartbeat awaiting its response.
    active_test: Option<(u32, Instant)>,
    last_sent: Instant,
    /// Anything sent or received: what `idle_close` measures.
    last_traffic: Instant,
    terminating: Option<u32>,
    reports: &'a mpsc::Sender<Incoming>,
    /// The answers of reports and replies the consumer has made safe: send them now. Per
    /// connection: those of a lost connection are delivered again by the gateway.
    acks: (mpsc::UnboundedSender<Vec<u8>>, mpsc::UnboundedReceiver<Vec<u8>>),
    /// Reports and replies handed over and not yet answered.
    owed: usize,
}

impl<'a, P: Protocol> Session<'a, P> {
    fn new(
        p: &'a P,
        reader: OwnedReadHalf,
        writer: OwnedWriteHalf,
        buf: Vec<u8>,
        reports: &'a mpsc::Sender<Incoming>,
    ) -> Self {
        Session {
            p,
            reader,
            writer,
            buf,
            next_seq: 2,
            pending: HashMap::new(),
            active_test: None,
            last_sent: Instant::now(),
            last_traffic: Instant::now(),
            terminating: None,
            reports,
            acks: mpsc::unbounded_channel(),
            owed: 0,
        }
    }

    fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = if s >= 0x7FFF_FFFF { 1 } else { s + 1 };
        s
    }

    async fn serve(&mut self, commands: &mut mpsc::Receiver<Command<P::Part>>, waiting: Vec<Command<P::Part>>) -> End {
        let s = self.p.settings();
        let quickest = s.response_timeout.min(s.active_test).min(s.idle_close.unwrap_or(Duration::MAX));
        let mut tick = tokio::time::interval((quickest / 4).max(Duration::from_millis(10)));
        let mut chunk = [0u8; 8192];
        if let Err(why) = self.frames().await {
            return End::Lost(why);
        }
        for c in waiting {
            if let Some(end) = self.command(Some(c)).await {
                return end;
            }
        }
        loop {
            tokio::select! {
                r = self.reader.read(&mut chunk) => match r {
                    Ok(0) => return End::Lost("the gateway closed the connection".into()),
                    Err(e) => return End::Lost(format!("read: {e}")),
                    Ok(n) => {
                        self.last_traffic = Instant::now();
                        self.buf.extend_from_slice(&chunk[..n]);
                        if let Err(why) = self.frames().await {
                            return End::Lost(why);
                        }
                    }
                },
                c = commands.recv() => if let Some(end) = self.command(c).await {
                    return end;
                },
                _ = tick.tick() => match self.on_tick().await {
                    Err(why) => return End::Lost(why),
                    Ok(true) => {
                        self.terminate().await;
                        return End::Idle;
                    }
                    Ok(false) => {}
                },
                Some(ack) = self.acks.1.recv() => {
                    self.owed = self.owed.saturating_sub(1);
                    if let Err(why) = self.write(ack).await {
                        return End::Lost(why);
                    }
                },
            }
        }
    }

    /// A caller's command; `Some` when the session ends.
    async fn command(&mut self, c: Option<Command<P::Part>>) -> Option<End> {
        match c {
            Some(Command::Submit { part, reply }) => {
                let seq = self.seq();
                match self.p.submit(seq, &part) {
                    Err(e) => {
                        let _ = reply.send(Err(Failure::Malformed(e)));
                    }
                    Ok(bytes) => {
                        self.pending.insert(seq, (reply, Instant::now()));
                        if let Err(why) = self.write(bytes).await {
                            return Some(End::Lost(why));
                        }
                    }
                }
                None
            }
            Some(Command::Terminate { done }) => {
                self.terminate().await;
                let _ = done.send(());
                Some(End::Stopped)
            }
            None => {
                self.terminate().await;
                Some(End::Stopped)
            }
        }
    }

    async fn write(&mut self, bytes: Vec<u8>) -> Step {
        match timeout(self.p.settings().response_timeout, self.writer.write_all(&bytes)).await {
            Ok(Ok(())) => {
                self.last_sent = Instant::now();
                self.last_traffic = self.last_sent;
                Ok(())
            }
            Ok(Err(e)) => Err(format!("write: {e}")),
            Err(_) => Err("write stalled: the gateway stopped reading".into()),
        }
    }

    async fn frames(&mut self) -> Step {
        let mut used = 0;
        let result = loop {
            match self.p.decode(&self.buf[used..]) {
                Err(e) => break Err(e),
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

    async fn handle(&mut self, frame: Frame) -> Step {
        match frame {
            Frame::SubmitResp { seq, result } => {
                if let Some((reply, _)) = self.pending.remove(&seq) {
                    let _ = reply.send(result.map_err(Failure::Result));
                }
            }
            Frame::BadResp { seq, error } => {
                if let Some((reply, _)) = self.pending.remove(&seq) {
                    let _ = reply.send(Err(Failure::Malformed(format!("unreadable {}: {error}", P::SUBMIT_RESP))));
                }
            }
            Frame::Nack { seq, result } => {
                if let Some((reply, _)) = self.pending.remove(&seq) {
                    let _ = reply.send(Err(Failure::Result(result)));
                }
                if self.active_test.is_some_and(|(s, _)| s == seq) {
                    self.active_test = None;
                }
            }
            Frame::Inbound { item, ack } => {
                let (incoming, safe) = Incoming::with_ack(item);
                if self.reports.send(incoming).await.is_err() {
                    // Nobody takes them any more (shutting down): the gateway delivers again.
                    return Ok(());
                }
                self.owed += 1;
                let acks = self.acks.0.clone();
                tokio::spawn(async move {
                    if safe.await.is_ok() {
                        let _ = acks.send(ack);
                    }
                });
            }
            Frame::Answer(bytes) => self.write(bytes).await?,
            Frame::ActiveTestResp { seq } => {
                if self.active_test.is_some_and(|(s, _)| s == seq) {
                    self.active_test = None;
                }
            }
            Frame::Terminate(answer) => {
                let _ = self.write(answer).await;
                return Err("the gateway ended the session".into());
            }
            Frame::TerminateResp { seq } => {
                if self.terminating == Some(seq) {
                    self.terminating = None;
                }
            }
            Frame::LoginResp { .. } | Frame::Ignore => {}
        }
        Ok(())
    }

    /// Times out submits and our heartbeat; sends a heartbeat when the link has been quiet.
    /// True when the link has been idle for `idle_close` and should say goodbye.
    async fn on_tick(&mut self) -> Result<bool, String> {
        let s = self.p.settings();
        let rt = s.response_timeout;
        let expired: Vec<u32> =
            self.pending.iter().filter(|(_, (_, at))| at.elapsed() >= rt).map(|(s, _)| *s).collect();
        for seq in expired {
            if let Some((reply, _)) = self.pending.remove(&seq) {
                let _ = reply.send(Err(Failure::Timeout));
            }
        }
        match self.active_test {
            Some((_, at)) if at.elapsed() >= rt => return Err("heartbeat unanswered".into()),
            Some(_) => {}
            None if self.last_sent.elapsed() >= s.active_test => {
                let seq = self.seq();
                if let Some(bytes) = self.p.active_test(seq) {
                    self.active_test = Some((seq, Instant::now()));
                    self.write(bytes).await?;
                }
            }
            None => {}
        }
        let quiet = self.pending.is_empty() && self.owed == 0 && self.active_test.is_none();
        Ok(quiet && s.idle_close.is_some_and(|d| self.last_traffic.elapsed() >= d))
    }

    /// Says goodbye and waits up to `response_timeout` for the answer, still handling what
    /// arrives meanwhile (a report that arrives then is answered later by the next session's
    /// redelivery, as after a crash).
    async fn terminate(&mut self) {
        // Reports already made safe are answered first: the gateway need not send them again.
        while let Ok(ack) = self.acks.1.try_recv() {
            if self.write(ack).await.is_err() {
                return;
            }
        }
        let seq = self.seq();
        self.terminating = Some(seq);
        if self.write(self.p.terminate(seq)).await.is_err() {
            return;
        }
        let deadline = Instant::now() + self.p.settings().response_timeout;
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
