//! SMS delivery over SMPP 3.4 (issue 6 "Real delivery"): `[delivery.smpp]`. [`Smpp`] is the
//! SMPP [`Protocol`] of the link every gateway protocol shares ([`crate::sink::link`]: the task
//! that owns the connection, the window, heartbeats, reconnect with back-off, reports and
//! replies acknowledged once on disk); [`SmppClient`] is that link speaking SMPP: the dispatcher
//! hands an [`Action`] to `submit` and gets a [`crate::sink::gateway::Sent`]; delivery receipts and subscribers'
//! messages come back as [`crate::sink::gateway::Incoming`] items on the receiver `start`
//! returns.
//!
//! Layout:
//!
//! - [`pdu`]     the wire format (hand-written; why in its header)
//! - [`text`]    GSM 03.38 / UCS-2 encoding and splitting into concatenated parts
//! - [`receipt`] deliver_sm: receipts to [`Report`](crate::sink::gateway::Report)s, subscribers' messages to replies
//! - here        the config and the protocol: bind_transceiver, submit_sm, deliver_sm,
//!   enquire_link, unbind, generic_nack, what each command_status means
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
//! - `InDoubt`: the submit_sm went out and no answer came (timeout, connection lost).
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
//! Every deliver_sm is answered. Final receipts become [`Report`](crate::sink::gateway::Report)s (`gateway_id` = the SMSC
//! message id, `Delivered` or `Failed`) and a subscriber's message (not a receipt) a [`crate::sink::gateway::Reply`]
//! (text by data_coding: 8 UCS-2, 15 GBK, 1 and 3 one octet a character, 0 the GSM default
//! alphabet; a UDH skipped, each part of a concatenated message its own reply), both answered
//! once on disk; intermediate receipts (ENROUTE, ACCEPTD) are answered at once and dropped; a
//! deliver_sm that does not parse is answered `ESME_RX_P_APPN` so the SMSC does not redeliver it
//! forever. Requests an ESME does not serve get `generic_nack`.
//!
//! ## In doubt
//!
//! A response timeout or a connection lost after submit_sm went out leaves the message in doubt
//! (the SMSC may have accepted it); the answer is Retry, so a duplicate is possible. Each
//! submit_sm carries `user_message_reference` = [`user_message_reference`] of the action id,
//! and receipts that echo it show it in [`Report::detail`](crate::sink::gateway::Report::detail) as `ref:<n>`, so the dispatcher can
//! tie a receipt to an action after a crash. A submit that timed out frees its window slot even
//! though the SMSC may still answer; a late answer is ignored.

pub mod pdu;
pub mod receipt;
#[cfg(test)]
mod tests;
pub mod text;

use crate::contact::Action;
use crate::sink::gateway::SourceField;
use crate::sink::link::{Client, Frame, LinkError, LinkSettings, Protocol, Refusal};
use crate::sink::wire::concat_reference;
use pdu::{Bind, Body, Decoded, Pdu, ShortMessage, Tlv, status};
use receipt::Receipt;
use serde::Deserialize;
use std::time::Duration;

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
    /// What an SMS goes out from when its action names no sender (older outbox lines); an
    /// action's sender (its rule's, campaign's or `[policy] sender`) goes in `source_addr` in its
    /// place (at most 20 characters).
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
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub enquire_link: Duration,
    /// How long to wait for any response (bind, submit_sm, enquire_link) before giving up.
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub response_timeout: Duration,
    /// First wait before reconnecting; doubles on each failure up to `reconnect_max`.
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub reconnect_min: Duration,
    /// Longest wait between reconnect attempts.
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub reconnect_max: Duration,
    /// The back-off hint returned with Retry when the SMSC throttles (ESME_RTHROTTLED) or its
    /// queue is full (ESME_RMSGQFUL).
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
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

impl SmppConfig {
    /// Checks what serde cannot: field lengths the PDUs allow and sane timings.
    pub fn check(&self) -> Result<(), LinkError> {
        let fields = [
            ("system_id", &self.system_id, 16),
            ("password", &self.password, 9),
            ("system_type", &self.system_type, 13),
            ("source_addr", &self.source_addr, 21),
        ];
        for (name, value, max) in fields {
            pdu::check_cstr(name, value, max)
                .map_err(|e| LinkError::Config { protocol: Smpp::NAME, why: e.to_string() })?;
        }
        self.settings().check(Smpp::NAME)
    }

    fn settings(&self) -> LinkSettings {
        LinkSettings {
            host: self.host.clone(),
            port: self.port,
            window: self.window,
            active_test: self.enquire_link,
            response_timeout: self.response_timeout,
            reconnect_min: self.reconnect_min,
            reconnect_max: self.reconnect_max,
            flow_control_results: vec![status::ESME_RTHROTTLED, status::ESME_RMSGQFUL],
            flow_control_retry_after: self.throttle_retry_after,
            idle_close: None,
        }
    }
}

/// The 16-bit `user_message_reference` put on every submit_sm of an action, derived from its id.
pub fn user_message_reference(action_id: &str) -> u16 {
    (crate::util::stable_hash(action_id.as_bytes()) >> 16) as u16
}

/// An SMPP transceiver session to the SMSC: see [`crate::sink::link::Client`] for what it
/// answers, and the module docs for what SMPP's statuses mean.
pub type SmppClient = Client<Smpp>;

/// SMPP 3.4 as the link speaks it.
pub struct Smpp {
    cfg: SmppConfig,
    settings: LinkSettings,
}

impl Protocol for Smpp {
    const NAME: &'static str = "smpp";
    const SUBMIT_RESP: &'static str = "submit_sm_resp";
    const LOGGED_OUT: &'static str = "not bound";
    const MAX_DIGITS: usize = 20;
    /// A C-octet string of 21 octets: 20 digits and the NUL.
    const SOURCE: SourceField = SourceField { name: "source_addr", max: 20 };
    type Config = SmppConfig;
    type Part = ShortMessage;
    type Login = ();

    fn new(cfg: SmppConfig) -> Result<Smpp, LinkError> {
        cfg.check()?;
        Ok(Smpp { settings: cfg.settings(), cfg })
    }

    fn settings(&self) -> &LinkSettings {
        &self.settings
    }

    fn configured_source(&self) -> &str {
        &self.cfg.source_addr
    }

    fn parts(&self, action: &Action, dest: &str, source: &str) -> Result<Vec<ShortMessage>, String> {
        let cfg = &self.cfg;
        let text = action.text.as_deref().unwrap_or_default();
        let parts = text::split(text, concat_reference(&action.id)).map_err(|e| e.to_string())?;
        let umr = user_message_reference(&action.id).to_be_bytes().to_vec();
        Ok(parts
            .into_iter()
            .map(|part| ShortMessage {
                source_addr_ton: cfg.source_addr_ton,
                source_addr_npi: cfg.source_addr_npi,
                source_addr: source.to_owned(),
                dest_addr_ton: cfg.dest_addr_ton,
                dest_addr_npi: cfg.dest_addr_npi,
                destination_addr: dest.to_string(),
                esm_class: part.esm_class,
                registered_delivery: u8::from(cfg.registered_delivery),
                data_coding: part.data_coding,
                short_message: part.short_message,
                tlvs: vec![Tlv { tag: pdu::TAG_USER_MESSAGE_REFERENCE, value: umr.clone() }],
                ..ShortMessage::default()
            })
            .collect())
    }

    fn login(&self) -> Result<(Vec<u8>, ()), String> {
        let cfg = &self.cfg;
        let bind = Body::BindTransceiver(Bind {
            system_id: cfg.system_id.clone(),
            password: cfg.password.clone(),
            system_type: cfg.system_type.clone(),
            interface_version: 0x34,
            ..Bind::default()
        });
        Ok((pdu::encode(&Pdu { status: 0, sequence: 1, body: bind }).map_err(|e| e.to_string())?, ()))
    }

    fn check_login(&self, _: &(), st: u32, _: &[u8]) -> Result<(), String> {
        match st {
            status::ESME_ROK => Ok(()),
            _ => Err(format!("bind refused: {} (0x{st:08X})", status::name(st))),
        }
    }

    fn submit(&self, seq: u32, part: &ShortMessage) -> Result<Vec<u8>, String> {
        pdu::encode(&Pdu { status: 0, sequence: seq, body: Body::SubmitSm(part.clone()) }).map_err(|e| e.to_string())
    }

    fn active_test(&self, seq: u32) -> Option<Vec<u8>> {
        Some(encode(status::ESME_ROK, seq, Body::EnquireLink))
    }

    fn terminate(&self, seq: u32) -> Vec<u8> {
        encode(status::ESME_ROK, seq, Body::Unbind)
    }

    fn decode(&self, buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
        let Some((decoded, used)) = pdu::decode_frame(buf).map_err(|e| e.to_string())? else { return Ok(None) };
        let frame = match decoded {
            // A whole frame whose body did not parse: framing holds. A response fails the submit
            // it answers; a deliver_sm is refused for good (the same bytes will not parse on
            // redelivery either); any other request is refused so the SMSC does not wait.
            Decoded::Bad { header, error } => {
                let seq = header.sequence;
                if header.command_id & 0x8000_0000 != 0 {
                    Frame::BadResp { seq, error: error.to_string() }
                } else if header.command_id == pdu::DELIVER_SM {
                    Frame::Answer(encode(status::ESME_RX_P_APPN, seq, Body::DeliverSmResp))
                } else {
                    Frame::Answer(encode(status::ESME_RINVCMDLEN, seq, Body::GenericNack))
                }
            }
            Decoded::Pdu(Pdu { status: st, sequence: seq, body }) => match body {
                Body::BindTransceiverResp { .. } => Frame::LoginResp { seq, status: st, proof: Vec::new() },
                Body::SubmitSmResp { message_id } => match st {
                    status::ESME_ROK if message_id.is_empty() => Frame::BadResp { seq, error: "no message_id".into() },
                    status::ESME_ROK => Frame::SubmitResp { seq, result: Ok(message_id) },
                    _ => Frame::SubmitResp { seq, result: Err(st) },
                },
                Body::GenericNack => {
                    Frame::Nack { seq, result: if st == status::ESME_ROK { status::ESME_RUNKNOWNERR } else { st } }
                }
                Body::DeliverSm(sm) => deliver(seq, &sm),
                Body::EnquireLink => Frame::Answer(encode(status::ESME_ROK, seq, Body::EnquireLinkResp)),
                Body::EnquireLinkResp => Frame::ActiveTestResp { seq },
                Body::Unbind => Frame::Terminate(encode(status::ESME_ROK, seq, Body::UnbindResp)),
                Body::UnbindResp => Frame::TerminateResp { seq },
                Body::DeliverSmResp => Frame::Ignore,
                // Requests an ESME does not serve; stray responses are passed over.
                Body::BindTransceiver(_) | Body::SubmitSm(_) | Body::Other(_) => {
                    if body.command_id() & 0x8000_0000 == 0 {
                        Frame::Answer(encode(status::ESME_RINVCMDID, seq, Body::GenericNack))
                    } else {
                        Frame::Ignore
                    }
                }
            },
        };
        Ok(Some((frame, used)))
    }

    fn refusal(&self, st: u32) -> Refusal {
        let reason = format!("{} (0x{st:08X})", status::name(st));
        match st {
            status::ESME_RTHROTTLED | status::ESME_RMSGQFUL => {
                Refusal::Retry { reason, after: Some(self.cfg.throttle_retry_after) }
            }
            status::ESME_RINVBNDSTS => Refusal::Retry { reason, after: Some(self.cfg.reconnect_min) },
            status::ESME_RSYSERR | status::ESME_RX_T_APPN => Refusal::Retry { reason, after: None },
            _ => Refusal::Reject { reason },
        }
    }
}

/// Bodies we build ourselves: they always encode.
fn encode(st: u32, sequence: u32, body: Body) -> Vec<u8> {
    pdu::encode(&Pdu { status: st, sequence, body }).unwrap_or_default()
}

/// A receipt, or a subscriber's message.
fn deliver(seq: u32, sm: &ShortMessage) -> Frame {
    let ack = encode(status::ESME_ROK, seq, Body::DeliverSmResp);
    match receipt::parse(sm, chrono::Utc::now().timestamp_millis()) {
        Receipt::Final(report) => Frame::Inbound { item: report.into(), ack },
        Receipt::Mobile(reply) => Frame::Inbound { item: reply.into(), ack },
        Receipt::Intermediate | Receipt::NotReceipt => Frame::Answer(ack),
    }
}

#[cfg(test)]
mod config_tests {
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
        assert!(matches!(SmppClient::start(SmppConfig::default()), Err(LinkError::NoRuntime("smpp"))));
    }
}
