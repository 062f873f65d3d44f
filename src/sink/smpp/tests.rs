//! The session against a scripted SMSC written with our own codec: the cases the Node
//! simulator cannot produce on demand (malformed PDUs, silence, a part failing midway).

use super::pdu::{self, Body, Decoded, Pdu, ShortMessage, status};
use super::{SmppClient, SmppConfig};
use crate::contact::Action;
use crate::sink::gateway::{Incoming, OutcomeStatus, Sent};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

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

    /// The next submit_sm, answering the enquire_link that an idle wait brings meanwhile.
    async fn next_submit(&mut self) -> (u32, ShortMessage) {
        loop {
            let p = self.read().await.expect("a submit_sm");
            match p.body {
                Body::SubmitSm(sm) => return (p.sequence, sm),
                Body::EnquireLink => self.send(0, p.sequence, Body::EnquireLinkResp).await,
                other => panic!("expected submit_sm, got {other:?}"),
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
        while !client.is_logged_in() {
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

    // Part 2 throttled: the client waits as the SMSC asks and sends part 2 again (not part 1).
    let submit = tokio::spawn({
        let (client, long) = (client.clone(), long.clone());
        async move { client.submit(&long).await }
    });
    let mut refs = Vec::new();
    for (answer, id) in [(status::ESME_ROK, "p1"), (status::ESME_RTHROTTLED, ""), (status::ESME_ROK, "p2")] {
        let (sequence, sm) = peer.next_submit().await;
        refs.push(sm.short_message[..6].to_vec());
        peer.send(answer, sequence, Body::SubmitSmResp { message_id: id.into() }).await;
    }
    assert_eq!(refs[2], refs[1], "the throttled part goes again as it was");
    assert_eq!(refs[1][..5], refs[0][..5], "one concatenation reference");
    assert_eq!(submit.await.expect("task"), Sent::Accepted { gateway_ids: vec!["p1".into(), "p2".into()] });

    // A part refused for good stops the message, naming what went; the resend carries the same
    // concatenation header.
    let submit = tokio::spawn({
        let (client, long) = (client.clone(), long.clone());
        async move { client.submit(&long).await }
    });
    for (answer, id) in [(status::ESME_ROK, "p3"), (status::ESME_RINVDSTADR, "")] {
        let (sequence, sm) = peer.next_submit().await;
        assert_eq!(sm.short_message[..5], refs[0][..5]);
        peer.send(answer, sequence, Body::SubmitSmResp { message_id: id.into() }).await;
    }
    match submit.await.expect("task") {
        Sent::Rejected { reason } => {
            assert!(reason.contains("ESME_RINVDSTADR") && reason.contains("part 2 of 2"), "{reason}");
            assert!(reason.contains("p3"), "{reason}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
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
