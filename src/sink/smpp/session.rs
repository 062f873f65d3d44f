//! The one task that owns the SMSC connection. Callers never touch the socket: they send a
//! [`Command`] and await a oneshot, so sequence numbers, the pending map and the write half have
//! a single owner and need no lock. The task loops connect → bind → serve → (lost) → back off,
//! and while it is not bound it answers every submit at once with "not bound" rather than
//! letting callers queue up behind a dead link.
//!
//! Timeouts are swept on a tick rather than with a timer per request: a window is at most a few
//! dozen entries, and one interval keeps the select loop simple.

use super::pdu::{self, Bind, Body, Decoded, Pdu, status};
use super::receipt::{self, Receipt};
use super::{Command, Failure, Link, SmppConfig};
use crate::sink::gateway::{Inbound, Incoming};
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

/// How a bound session ended.
enum End {
    /// Connection gone or unusable (why): reconnect.
    Lost(String),
    /// Unbound on request, or every client handle is gone: stop for good.
    Stopped,
}

pub(crate) async fn run(
    cfg: SmppConfig,
    mut commands: mpsc::Receiver<Command>,
    link: Arc<Link>,
    reports: mpsc::Sender<Incoming>,
) {
    let mut backoff = cfg.reconnect_min;
    loop {
        let attempt = connect_and_bind(&cfg);
        tokio::pin!(attempt);
        let bound = loop {
            tokio::select! {
                r = &mut attempt => break r,
                c = commands.recv() => if refuse(c) { return stop(&link) },
            }
        };
        match bound {
            Ok((reader, writer, buf)) => {
                backoff = cfg.reconnect_min;
                link.set_error(String::new());
                link.bound.store(true, Ordering::Release);
                let mut s = Session::new(&cfg, reader, writer, buf, &reports);
                let end = s.serve(&mut commands).await;
                link.bound.store(false, Ordering::Release);
                s.fail_pending();
                match end {
                    End::Stopped => return stop(&link),
                    End::Lost(why) => link.set_error(why),
                }
            }
            Err(why) => link.set_error(why),
        }
        // Back off, answering submits "not bound" meanwhile.
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
    link.bound.store(false, Ordering::Release);
    link.stopped.store(true, Ordering::Release);
}

/// Answers a command while unbound. True when the session should stop.
fn refuse(c: Option<Command>) -> bool {
    match c {
        Some(Command::Submit { reply, .. }) => {
            let _ = reply.send(Err(Failure::NotBound));
            false
        }
        Some(Command::Unbind { done }) => {
            let _ = done.send(());
            true
        }
        None => true,
    }
}

/// Connects and binds as a transceiver within one `response_timeout`. Returns the halves and
/// whatever followed the bind response in the buffer.
async fn connect_and_bind(cfg: &SmppConfig) -> Result<(OwnedReadHalf, OwnedWriteHalf, Vec<u8>), String> {
    let rt = cfg.response_timeout;
    let work = async {
        let stream = TcpStream::connect((cfg.host.as_str(), cfg.port)).await.map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let bind = Body::BindTransceiver(Bind {
            system_id: cfg.system_id.clone(),
            password: cfg.password.clone(),
            system_type: cfg.system_type.clone(),
            interface_version: 0x34,
            ..Bind::default()
        });
        let bytes = pdu::encode(&Pdu { status: 0, sequence: 1, body: bind }).map_err(|e| e.to_string())?;
        writer.write_all(&bytes).await.map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Some((frame, used)) = pdu::decode_frame(&buf).map_err(|e| e.to_string())? {
                buf.drain(..used);
                // Anything else before the bind response (an early enquire_link) is passed over.
                let Decoded::Pdu(Pdu { status: st, sequence: 1, body }) = frame else { continue };
                let refused = match body {
                    Body::BindTransceiverResp { .. } if st == status::ESME_ROK => return Ok((reader, writer, buf)),
                    Body::BindTransceiverResp { .. } => "bind refused",
                    Body::GenericNack => "bind_transceiver refused with generic_nack",
                    _ => continue,
                };
                return Err(format!("{refused}: {} (0x{st:08X})", status::name(st)));
            }
            match reader.read(&mut chunk).await {
                Ok(0) => return Err("closed during bind".to_string()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    };
    timeout(rt, work).await.unwrap_or_else(|_| Err("bind timed out".to_string()))
}

struct Session<'a> {
    cfg: &'a SmppConfig,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: Vec<u8>,
    next_seq: u32,
    /// submit_sm awaiting submit_sm_resp: sequence → (caller, sent at).
    pending: HashMap<u32, (Reply, Instant)>,
    /// Our enquire_link awaiting its response.
    enquire: Option<(u32, Instant)>,
    last_sent: Instant,
    /// Set while we wait for unbind_resp.
    unbinding: Option<u32>,
    reports: &'a mpsc::Sender<Incoming>,
    /// Sequence numbers of receipts and subscribers' messages the consumer has made safe: answer
    /// them now. Per connection: acknowledgements for a lost connection are dropped with it (the
    /// SMSC delivers those again).
    acks: (mpsc::UnboundedSender<u32>, mpsc::UnboundedReceiver<u32>),
}

impl<'a> Session<'a> {
    fn new(
        cfg: &'a SmppConfig,
        reader: OwnedReadHalf,
        writer: OwnedWriteHalf,
        buf: Vec<u8>,
        reports: &'a mpsc::Sender<Incoming>,
    ) -> Self {
        Session {
            cfg,
            reader,
            writer,
            buf,
            next_seq: 2,
            pending: HashMap::new(),
            enquire: None,
            last_sent: Instant::now(),
            unbinding: None,
            reports,
            acks: mpsc::unbounded_channel(),
        }
    }

    fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        // Sequence numbers run 0x00000001..=0x7FFFFFFF (§3.2).
        self.next_seq = if s >= 0x7FFF_FFFF { 1 } else { s + 1 };
        s
    }

    async fn serve(&mut self, commands: &mut mpsc::Receiver<Command>) -> End {
        let tick_every = (self.cfg.response_timeout.min(self.cfg.enquire_link) / 4).max(Duration::from_millis(10));
        let mut tick = tokio::time::interval(tick_every);
        let mut chunk = [0u8; 8192];
        // Frames that arrived with the bind response.
        if let Err(why) = self.frames().await {
            return End::Lost(why);
        }
        loop {
            tokio::select! {
                r = self.reader.read(&mut chunk) => match r {
                    Ok(0) => return End::Lost("the SMSC closed the connection".into()),
                    Err(e) => return End::Lost(format!("read: {e}")),
                    Ok(n) => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        if let Err(why) = self.frames().await {
                            return End::Lost(why);
                        }
                    }
                },
                c = commands.recv() => match c {
                    Some(Command::Submit { sm, reply }) => {
                        let seq = self.seq();
                        match pdu::encode(&Pdu { status: 0, sequence: seq, body: Body::SubmitSm(sm) }) {
                            Err(e) => { let _ = reply.send(Err(Failure::Malformed(e.to_string()))); }
                            Ok(bytes) => {
                                self.pending.insert(seq, (reply, Instant::now()));
                                if let Err(why) = self.write(bytes).await {
                                    return End::Lost(why);
                                }
                            }
                        }
                    }
                    Some(Command::Unbind { done }) => {
                        self.unbind().await;
                        let _ = done.send(());
                        return End::Stopped;
                    }
                    None => {
                        self.unbind().await;
                        return End::Stopped;
                    }
                },
                _ = tick.tick() => if let Err(why) = self.on_tick().await {
                    return End::Lost(why);
                },
                Some(seq) = self.acks.1.recv() => if let Err(why) = self.send(status::ESME_ROK, seq, Body::DeliverSmResp).await {
                    return End::Lost(why);
                },
            }
        }
    }

    /// Writes one PDU; a write that cannot finish within `response_timeout` means the peer stopped
    /// reading, which is as good as lost.
    async fn write(&mut self, bytes: Vec<u8>) -> Step {
        match timeout(self.cfg.response_timeout, self.writer.write_all(&bytes)).await {
            Ok(Ok(())) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Ok(Err(e)) => Err(format!("write: {e}")),
            Err(_) => Err("write stalled: the SMSC stopped reading".into()),
        }
    }

    async fn send(&mut self, status: u32, sequence: u32, body: Body) -> Step {
        // Only responses and bodies we build ourselves pass here; they always encode.
        let bytes = pdu::encode(&Pdu { status, sequence, body }).map_err(|e| e.to_string())?;
        self.write(bytes).await
    }

    /// Handles every whole frame in the buffer. Err: drop the connection.
    async fn frames(&mut self) -> Step {
        let mut used = 0;
        let result = loop {
            match pdu::decode_frame(&self.buf[used..]) {
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
            Decoded::Bad { header, error } => return self.bad(header, error).await,
        };
        let (st, seq) = (pdu.status, pdu.sequence);
        match pdu.body {
            Body::SubmitSmResp { message_id } => {
                if let Some((reply, _)) = self.pending.remove(&seq) {
                    let r = match (st, message_id.is_empty()) {
                        (status::ESME_ROK, false) => Ok(message_id),
                        (status::ESME_ROK, true) => Err(Failure::Malformed("submit_sm_resp without message_id".into())),
                        _ => Err(Failure::Status(st)),
                    };
                    let _ = reply.send(r);
                }
            }
            Body::GenericNack => {
                if let Some((reply, _)) = self.pending.remove(&seq) {
                    let st = if st == status::ESME_ROK { status::ESME_RUNKNOWNERR } else { st };
                    let _ = reply.send(Err(Failure::Status(st)));
                }
                if self.enquire.is_some_and(|(s, _)| s == seq) {
                    self.enquire = None;
                }
            }
            Body::DeliverSm(sm) => {
                let now_ms = chrono::Utc::now().timestamp_millis();
                let item: Option<Inbound> = match receipt::parse(&sm, now_ms) {
                    Receipt::Final(report) => Some(report.into()),
                    Receipt::Mobile(reply) => Some(reply.into()),
                    Receipt::Intermediate | Receipt::NotReceipt => None,
                };
                if let Some(item) = item {
                    // The answer waits until the consumer has the report or reply safe (`done`);
                    // meanwhile the session goes on reading. Awaiting the send applies the
                    // reader's back-pressure to the SMSC instead of dropping one.
                    let (incoming, safe) = Incoming::with_ack(item);
                    if self.reports.send(incoming).await.is_ok() {
                        let acks = self.acks.0.clone();
                        tokio::spawn(async move {
                            if safe.await.is_ok() {
                                let _ = acks.send(seq);
                            }
                        });
                        return Ok(());
                    }
                }
                self.send(status::ESME_ROK, seq, Body::DeliverSmResp).await?;
            }
            Body::EnquireLink => self.send(status::ESME_ROK, seq, Body::EnquireLinkResp).await?,
            Body::EnquireLinkResp => {
                if self.enquire.is_some_and(|(s, _)| s == seq) {
                    self.enquire = None;
                }
            }
            Body::Unbind => {
                let _ = self.send(status::ESME_ROK, seq, Body::UnbindResp).await;
                return Err("the SMSC unbound".into());
            }
            Body::UnbindResp => {
                if self.unbinding == Some(seq) {
                    self.unbinding = None;
                }
            }
            Body::BindTransceiverResp { .. } | Body::DeliverSmResp => {}
            Body::BindTransceiver(_) | Body::SubmitSm(_) | Body::Other(_) => {
                // Requests an ESME does not serve; stray responses are ignored.
                if pdu.body.command_id() & 0x8000_0000 == 0 {
                    self.send(status::ESME_RINVCMDID, seq, Body::GenericNack).await?;
                }
            }
        }
        Ok(())
    }

    /// A whole frame whose body did not parse: answer it so the SMSC does not wait, fail the
    /// submit it answered, keep the connection (framing is intact).
    async fn bad(&mut self, header: pdu::Header, error: pdu::PduError) -> Step {
        let seq = header.sequence;
        if header.command_id & 0x8000_0000 != 0 {
            if let Some((reply, _)) = self.pending.remove(&seq) {
                let _ = reply.send(Err(Failure::Malformed(format!("unreadable submit_sm_resp: {error}"))));
            }
            return Ok(());
        }
        if header.command_id == pdu::DELIVER_SM {
            // Permanent: the same bytes will not parse on redelivery either.
            return self.send(status::ESME_RX_P_APPN, seq, Body::DeliverSmResp).await;
        }
        self.send(status::ESME_RINVCMDLEN, seq, Body::GenericNack).await
    }

    /// Times out submits and enquire_link; sends enquire_link when the link has been idle.
    async fn on_tick(&mut self) -> Step {
        let rt = self.cfg.response_timeout;
        let expired: Vec<u32> =
            self.pending.iter().filter(|(_, (_, at))| at.elapsed() >= rt).map(|(s, _)| *s).collect();
        for seq in expired {
            if let Some((reply, _)) = self.pending.remove(&seq) {
                let _ = reply.send(Err(Failure::Timeout));
            }
        }
        match self.enquire {
            Some((_, at)) if at.elapsed() >= rt => return Err("enquire_link unanswered".into()),
            Some(_) => {}
            None if self.last_sent.elapsed() >= self.cfg.enquire_link => {
                let seq = self.seq();
                self.enquire = Some((seq, Instant::now()));
                self.send(status::ESME_ROK, seq, Body::EnquireLink).await?;
            }
            None => {}
        }
        Ok(())
    }

    /// Sends unbind and waits up to `response_timeout` for unbind_resp, still answering what
    /// arrives meanwhile (responses to submits already sent, receipts).
    async fn unbind(&mut self) {
        let seq = self.seq();
        self.unbinding = Some(seq);
        if self.send(status::ESME_ROK, seq, Body::Unbind).await.is_err() {
            return;
        }
        let deadline = Instant::now() + self.cfg.response_timeout;
        let mut chunk = [0u8; 8192];
        while self.unbinding.is_some() {
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

    /// The connection is gone: every submit still waiting is told so (it may or may not have
    /// reached the SMSC; the caller retries).
    fn fail_pending(&mut self) {
        for (_, (reply, _)) in self.pending.drain() {
            let _ = reply.send(Err(Failure::ConnectionLost));
        }
    }
}

#[cfg(test)]
mod tests {
    //! The session against a scripted SMSC written with our own codec: the cases the Node
    //! simulator cannot produce on demand (malformed PDUs, silence, a part failing midway).

    use super::super::{SmppClient, SmppConfig};
    use super::*;
    use crate::contact::Action;
    use crate::sink::gateway::{OutcomeStatus, Sent};
    use crate::sink::smpp::pdu::ShortMessage;
    use tokio::net::TcpListener;

    const WAIT: Duration = Duration::from_secs(5);

    struct Peer {
        stream: TcpStream,
        buf: Vec<u8>,
    }

    impl Peer {
        /// Accepts the client's connection and answers its bind_transceiver.
        async fn bind(listener: &TcpListener) -> Peer {
            let (stream, _) = timeout(WAIT, listener.accept()).await.expect("client connects").expect("accept");
            let mut peer = Peer { stream, buf: Vec::new() };
            let bind = peer.read().await.expect("bind");
            assert!(matches!(bind.body, Body::BindTransceiver(ref b) if b.interface_version == 0x34));
            peer.send(0, bind.sequence, Body::BindTransceiverResp { system_id: "FAKE".into() }).await;
            peer
        }

        /// The next PDU, or None when the client closed the connection.
        async fn read(&mut self) -> Option<Pdu> {
            let mut chunk = [0u8; 4096];
            loop {
                if let Some((frame, used)) = pdu::decode_frame(&self.buf).expect("client keeps framing") {
                    self.buf.drain(..used);
                    match frame {
                        Decoded::Pdu(p) => return Some(p),
                        Decoded::Bad { error, .. } => panic!("client sent a bad pdu: {error}"),
                    }
                }
                match timeout(WAIT, self.stream.read(&mut chunk)).await.expect("client answers in time") {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        }

        async fn send(&mut self, status: u32, sequence: u32, body: Body) {
            self.write(&pdu::encode(&Pdu { status, sequence, body }).expect("encodes")).await;
        }

        async fn write(&mut self, bytes: &[u8]) {
            self.stream.write_all(bytes).await.expect("write to client");
        }
    }

    /// A client bound to a scripted SMSC on a fresh port.
    async fn connected() -> (TcpListener, SmppClient, mpsc::Receiver<Incoming>, Peer) {
        let (listener, cfg) = listen().await;
        let (client, reports) = SmppClient::start(cfg).expect("valid config");
        let peer = Peer::bind(&listener).await;
        until_bound(&client).await;
        (listener, client, reports, peer)
    }

    async fn listen() -> (TcpListener, SmppConfig) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let cfg = SmppConfig {
            port: listener.local_addr().expect("addr").port(),
            window: 2,
            response_timeout: Duration::from_millis(300),
            enquire_link: Duration::from_millis(400),
            reconnect_min: Duration::from_millis(20),
            reconnect_max: Duration::from_millis(100),
            ..SmppConfig::default()
        };
        (listener, cfg)
    }

    fn action(id: &str, text: &str) -> Action {
        let json = serde_json::json!({
            "id": id, "ts": "2026-11-24T20:00:00+08:00", "msisdn": "13800138000", "rule": "r", "campaign": "c",
            "channel": "sms", "priority": 1, "text": text,
            "trigger": { "kind": "usage", "id": "e", "ts": "2026-11-24T20:00:00+08:00" },
        });
        serde_json::from_value(json).expect("an action")
    }

    async fn until_bound(client: &SmppClient) {
        timeout(WAIT, async {
            while !client.is_bound() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("client binds");
    }

    #[tokio::test]
    async fn malformed_pdus_are_answered_and_lost_framing_reconnects() {
        let (listener, client, mut reports, mut peer) = connected().await;

        // A deliver_sm whose sm_length runs past its frame: refused for good, connection kept.
        let mut bad = pdu::encode(&Pdu {
            status: 0,
            sequence: 100,
            body: Body::DeliverSm(ShortMessage { short_message: b"abc".to_vec(), ..ShortMessage::default() }),
        })
        .expect("encodes");
        let at = bad.len() - 4;
        bad[at] = 200;
        peer.write(&bad).await;
        let r = peer.read().await.expect("answer");
        assert_eq!((r.status, r.sequence, r.body), (status::ESME_RX_P_APPN, 100, Body::DeliverSmResp));

        peer.send(0, 101, Body::Other(0x0000_0099)).await;
        let r = peer.read().await.expect("answer");
        assert_eq!((r.status, r.sequence, r.body), (status::ESME_RINVCMDID, 101, Body::GenericNack));

        peer.send(0, 102, Body::DeliverSm(pdu::sample_receipt("m1"))).await;
        let incoming = timeout(WAIT, reports.recv()).await.expect("report in time").expect("open");
        let report = incoming.report().expect("a report");
        assert_eq!((report.gateway_id.as_deref(), report.status), (Some("m1"), OutcomeStatus::Delivered));
        // The receipt is acknowledged only once the consumer has it safe (`done`).
        let mut chunk = [0u8; 64];
        let early = timeout(Duration::from_millis(150), peer.stream.read(&mut chunk)).await;
        assert!(early.is_err(), "deliver_sm_resp went out before the report was safe");
        incoming.done();
        let r = peer.read().await.expect("answer");
        assert_eq!((r.status, r.sequence, r.body), (0, 102, Body::DeliverSmResp));

        peer.send(0, 103, Body::EnquireLink).await;
        let r = peer.read().await.expect("answer");
        assert_eq!((r.sequence, r.body), (103, Body::EnquireLinkResp));

        // A length no PDU can have: framing is lost, the client hangs up and comes back.
        peer.write(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]).await;
        assert_eq!(peer.read().await, None, "client drops the connection");
        let _again = Peer::bind(&listener).await;
        until_bound(&client).await;
    }

    #[tokio::test]
    async fn a_subscribers_message_is_a_reply_answered_only_once_it_is_safe() {
        let (_listener, _client, mut reports, mut peer) = connected().await;
        let mo = ShortMessage {
            source_addr: "13800138000".into(),
            destination_addr: "10658888".into(),
            data_coding: 8,
            short_message: "退订 谢谢".encode_utf16().flat_map(u16::to_be_bytes).collect(),
            ..ShortMessage::default()
        };
        peer.send(0, 200, Body::DeliverSm(mo)).await;
        let incoming = timeout(WAIT, reports.recv()).await.expect("in time").expect("open");
        let crate::sink::gateway::Inbound::Reply(r) = &incoming.item else { panic!("a reply: {incoming:?}") };
        assert_eq!((r.msisdn.as_str(), r.to.as_str(), r.text.as_str()), ("13800138000", "10658888", "退订 谢谢"));
        let mut chunk = [0u8; 64];
        let early = timeout(Duration::from_millis(150), peer.stream.read(&mut chunk)).await;
        assert!(early.is_err(), "deliver_sm_resp went out before the reply was safe");
        incoming.done();
        let r = peer.read().await.expect("answer");
        assert_eq!((r.status, r.sequence, r.body), (0, 200, Body::DeliverSmResp));
    }

    #[tokio::test]
    async fn silence_leaves_what_was_sent_in_doubt_and_unanswered_enquire_link_reconnects() {
        let (listener, client, _reports, mut peer) = connected().await;

        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..3 {
            let client = client.clone();
            tasks.spawn(async move { client.submit(&action(&format!("w-{i}"), "hi")).await });
        }
        let first = peer.read().await.expect("submit");
        let second = peer.read().await.expect("submit");
        assert!(matches!((&first.body, &second.body), (Body::SubmitSm(_), Body::SubmitSm(_))));
        // The window is 2: a third submit_sm must not arrive while those two are unanswered.
        assert!(peer.buf.is_empty(), "a third submit_sm was sent beyond the window");
        let mut chunk = [0u8; 64];
        let early = timeout(Duration::from_millis(150), peer.stream.read(&mut chunk)).await;
        assert!(early.is_err(), "a third submit_sm was sent beyond the window");
        let (mut doubt, mut retry) = (0, 0);
        while let Some(r) = tasks.join_next().await {
            match r.expect("task") {
                // Written and never answered: the SMSC may have them.
                Sent::InDoubt { .. } => doubt += 1,
                // Never written (no window slot): a plain retry.
                Sent::Retry { .. } => retry += 1,
                other => panic!("expected InDoubt or Retry, got {other:?}"),
            }
        }
        // The third waited for a window slot: sent once one freed (then in doubt too) or never
        // (a plain retry), depending on timing.
        assert!(doubt >= 2 && doubt + retry == 3, "the two sent are in doubt: {doubt} in doubt, {retry} retry");

        // Left idle, the client probes with enquire_link; unanswered, it reconnects.
        loop {
            match peer.read().await {
                Some(Pdu { body: Body::EnquireLink, .. }) => break,
                Some(_) => continue,
                None => panic!("connection closed before enquire_link"),
            }
        }
        while peer.read().await.is_some() {}
        let _again = Peer::bind(&listener).await;
        until_bound(&client).await;
    }

    #[tokio::test]
    async fn a_part_failing_midway_is_not_accepted_and_the_resend_keeps_the_reference() {
        let (_listener, client, _reports, mut peer) = connected().await;
        let long = action("long-1", &"x".repeat(300));

        let submit = tokio::spawn({
            let (client, long) = (client.clone(), long.clone());
            async move { client.submit(&long).await }
        });
        let mut refs = Vec::new();
        for (answer, id) in [(status::ESME_ROK, "p1"), (status::ESME_RTHROTTLED, "")] {
            let p = peer.read().await.expect("submit");
            let Body::SubmitSm(sm) = p.body else { panic!("expected submit_sm") };
            refs.push(sm.short_message[..6].to_vec());
            peer.send(answer, p.sequence, Body::SubmitSmResp { message_id: id.into() }).await;
        }
        match submit.await.expect("task") {
            Sent::Retry { reason, after } => {
                assert!(reason.contains("ESME_RTHROTTLED") && reason.contains("part 2 of 2"), "{reason}");
                assert!(reason.contains("p1"), "{reason}");
                assert_eq!(after, Some(Duration::from_secs(1)));
            }
            other => panic!("expected Retry, got {other:?}"),
        }

        // The resend carries the same concatenation header; a permanent error is Rejected.
        let submit = tokio::spawn({
            let client = client.clone();
            async move { client.submit(&long).await }
        });
        let p = peer.read().await.expect("submit");
        let Body::SubmitSm(sm) = p.body else { panic!("expected submit_sm") };
        assert_eq!(sm.short_message[..6], refs[0][..]);
        assert_eq!(refs[1][..5], refs[0][..5]);
        peer.send(status::ESME_RINVDSTADR, p.sequence, Body::SubmitSmResp { message_id: String::new() }).await;
        match submit.await.expect("task") {
            Sent::Rejected { reason } => assert!(reason.contains("ESME_RINVDSTADR"), "{reason}"),
            other => panic!("expected Rejected, got {other:?}"),
        }
    }
}
