//! SMS delivery over SMGP 3.0 (Short Message Gateway Protocol), the protocol an SP speaks to
//! China Telecom's SMS gateway (SMGW): `[delivery.smgp]`. [`Smgp`] is the SMGP [`Protocol`] of
//! the link the three operators' protocols share ([`crate::sink::link`]: window, heartbeats,
//! reconnect, what each answer means); [`SmgpClient`] is that link speaking SMGP.
//!
//! - [`pdu`]: the wire format.
//! - Login: ClientID, the MD5 AuthenticatorClient (ClientID, 7 zero octets, the shared secret,
//!   the `MMDDHHMMSS` timestamp), LoginMode 2 (send and receive), version 3.0; the SMGW's Status
//!   and, when configured, its AuthenticatorServer (MD5 of the 4-octet Status, our
//!   authenticator and the secret) checked.
//! - Submit: MsgType 6 (an MT message), NeedReport 1 so status reports come back, one 10-octet
//!   MsgID per part from the Submit_Resp, shown as 20 hex digits (its BCD digits); a long message
//!   goes as parts with the 6-octet concatenation header and the TLVs TP_udhi, PkTotal,
//!   PkNumber.
//! - Deliver with IsReport 1 is a status report (`stat:DELIVRD`, `EXPIRED`, `UNDELIV`…) matched
//!   by the MsgID it quotes; with IsReport 0 it is a subscriber's message to the SP, a
//!   [`Reply`] named by the Deliver's own MsgID (a redelivery is recorded once). Both are
//!   answered with Deliver_Resp once on disk; one that does not parse is answered at once with
//!   Status 10 (message structure error).
//! - Active_Test both ways, Exit both ways.
//!
//! What varies between gateways is configured: the Status codes that mean flow control (1,
//! "system busy", by default), whether the AuthenticatorServer is checked, the text coding for
//! Chinese (UCS-2 or GBK), the zone of the login timestamp.

pub mod pdu;

use crate::contact::Action;
use crate::sink::gateway::{OutcomeStatus, Reply, Report, SourceField};
use crate::sink::link::{Client, Frame, LinkError, LinkSettings, Protocol, de, settings_of};
use crate::sink::wire::{Coding, action_parts, authenticator, decode_text, md5, mmddhhmmss};
use pdu::{Body, Decoded, Deliver, DeliverResp, Login, MsgId, Pdu, Report as SmgpReport, Submit, Tlv, status};
use serde::Deserialize;
use std::time::Duration;

/// How to reach and log in to the SMGW, and what every submit carries. In TOML, durations are
/// strings:
///
/// ```toml
/// host = "smgw.example"
/// port = 8890
/// account = "12345678"
/// secret = "shared-secret"
/// service_id = "TIDINGS"
/// src_term_id = "10620001"
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmgpConfig {
    pub host: String,
    /// The SMGW's port (8890 by convention).
    pub port: u16,
    /// ClientID: the SP's login name (8 characters).
    pub account: String,
    /// The shared secret the SMGW gave the SP.
    pub secret: String,
    /// ServiceID: the service code (at most 10 characters).
    pub service_id: String,
    /// SrcTermID: the SP's number the handset shows, where replies go (at most 21 digits): what
    /// an SMS goes out from when its action names no sender (older outbox lines). An action's
    /// sender goes in SrcTermID in its place.
    pub src_term_id: String,
    /// ChargeTermID: who pays, when not the destination (at most 21 digits; empty: nobody).
    pub charge_term_id: String,
    /// Priority 0 (lowest) to 3.
    pub priority: u8,
    /// FeeType: "00" free, "01" per message, "02" monthly, "03" capped.
    pub fee_type: String,
    /// FeeCode in fen (6 characters).
    pub fee_code: String,
    /// FixedFee in fen (6 characters), for monthly fees.
    pub fixed_fee: String,
    /// Chinese text in "ucs2" (MsgFormat 8) or "gbk" (15); ASCII text is always MsgFormat 0.
    pub coding: Coding,
    /// Submits awaiting their Submit_Resp at once.
    pub window: usize,
    /// Send Active_Test after this long without sending anything.
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub active_test: Duration,
    /// How long to wait for any response (login, submit, active test, exit).
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub response_timeout: Duration,
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub reconnect_min: Duration,
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub reconnect_max: Duration,
    /// Submit_Resp Status codes that mean "slow down and send again".
    pub flow_control_results: Vec<u32>,
    /// The back-off hint returned with Retry on flow control.
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub flow_control_retry_after: Duration,
    /// Ask for a status report on every message (NeedReport 1).
    pub need_report: bool,
    /// Check the SMGW's AuthenticatorServer in Login_Resp.
    pub verify_authenticator: bool,
    /// The zone of the login timestamp, e.g. "+08:00".
    #[serde(deserialize_with = "de::offset")]
    pub timezone: chrono::FixedOffset,
}

impl Default for SmgpConfig {
    fn default() -> Self {
        SmgpConfig {
            host: "127.0.0.1".into(),
            port: 8890,
            account: String::new(),
            secret: String::new(),
            service_id: String::new(),
            src_term_id: String::new(),
            charge_term_id: String::new(),
            priority: 1,
            fee_type: "00".into(),
            fee_code: "000000".into(),
            fixed_fee: "000000".into(),
            coding: Coding::Ucs2,
            window: 16,
            active_test: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            flow_control_results: vec![status::SYSTEM_BUSY],
            flow_control_retry_after: Duration::from_secs(1),
            need_report: true,
            verify_authenticator: true,
            timezone: de::beijing(),
        }
    }
}

impl SmgpConfig {
    /// Checks what serde cannot: field widths and sane timings.
    pub fn check(&self) -> Result<(), LinkError> {
        let fields = [
            ("account", self.account.as_str(), 8),
            ("service_id", &self.service_id, 10),
            ("src_term_id", &self.src_term_id, 21),
            ("charge_term_id", &self.charge_term_id, 21),
            ("fee_type", &self.fee_type, 2),
            ("fee_code", &self.fee_code, 6),
            ("fixed_fee", &self.fixed_fee, 6),
        ];
        de::widths(Smgp::NAME, &fields)?;
        if self.priority > 3 {
            return Err(LinkError::Config { protocol: Smgp::NAME, why: "priority must be 0 to 3".into() });
        }
        self.settings().check(Smgp::NAME)
    }

    fn settings(&self) -> LinkSettings {
        settings_of!(self, active_test: self.active_test, idle_close: None)
    }
}

/// An SMGP link to the SMGW: see [`crate::sink::link::Client`] for what it answers.
pub type SmgpClient = Client<Smgp>;

/// SMGP as the link speaks it.
pub struct Smgp {
    cfg: SmgpConfig,
    settings: LinkSettings,
}

impl Protocol for Smgp {
    const NAME: &'static str = "smgp";
    const SUBMIT_RESP: &'static str = "Submit_Resp";
    const SOURCE: SourceField = SourceField { name: "SrcTermID", max: 21 };
    type Config = SmgpConfig;
    type Part = Submit;
    /// The AuthenticatorClient sent.
    type Login = [u8; 16];

    fn new(cfg: SmgpConfig) -> Result<Smgp, LinkError> {
        cfg.check()?;
        Ok(Smgp { settings: cfg.settings(), cfg })
    }

    fn settings(&self) -> &LinkSettings {
        &self.settings
    }

    fn configured_source(&self) -> &str {
        &self.cfg.src_term_id
    }

    fn parts(&self, action: &Action, dest: &str, source: &str) -> Result<Vec<Submit>, String> {
        let cfg = &self.cfg;
        let parts = action_parts(action, cfg.coding)?;
        Ok(parts
            .into_iter()
            .map(|part| {
                let tlvs = if part.udhi {
                    let tlv = |tag, value| Tlv { tag, value: vec![value] };
                    vec![
                        tlv(pdu::TAG_TP_UDHI, 1),
                        tlv(pdu::TAG_PK_TOTAL, part.total),
                        tlv(pdu::TAG_PK_NUMBER, part.number),
                    ]
                } else {
                    Vec::new()
                };
                Submit {
                    msg_type: 6,
                    need_report: u8::from(cfg.need_report),
                    priority: cfg.priority,
                    service_id: cfg.service_id.clone(),
                    fee_type: cfg.fee_type.clone(),
                    fee_code: cfg.fee_code.clone(),
                    fixed_fee: cfg.fixed_fee.clone(),
                    msg_format: part.coding as u8,
                    src_term_id: source.to_owned(),
                    charge_term_id: cfg.charge_term_id.clone(),
                    dest_term_ids: vec![dest.to_owned()],
                    msg_content: part.content,
                    tlvs,
                    ..Submit::default()
                }
            })
            .collect())
    }

    fn login(&self) -> Result<(Vec<u8>, [u8; 16]), String> {
        let cfg = &self.cfg;
        let timestamp = mmddhhmmss(&chrono::Utc::now().with_timezone(&cfg.timezone));
        let client = authenticator(&cfg.account, 7, &cfg.secret, timestamp);
        let login = Login {
            client_id: cfg.account.clone(),
            authenticator: client,
            login_mode: 2,
            timestamp,
            version: pdu::VERSION,
        };
        let bytes = pdu::encode(&Pdu { sequence: 1, body: Body::Login(login) }).map_err(|e| e.to_string())?;
        Ok((bytes, client))
    }

    fn check_login(&self, client: &[u8; 16], status: u32, proof: &[u8]) -> Result<(), String> {
        if status != status::OK {
            return Err(format!("login refused: {} (status {status})", status::name(status)));
        }
        let expected = md5(&[&status.to_be_bytes(), client, self.cfg.secret.as_bytes()]);
        if self.cfg.verify_authenticator && proof != expected {
            return Err("login answered with an AuthenticatorServer that does not match our secret".into());
        }
        Ok(())
    }

    fn submit(&self, seq: u32, part: &Submit) -> Result<Vec<u8>, String> {
        pdu::encode(&Pdu { sequence: seq, body: Body::Submit(Box::new(part.clone())) }).map_err(|e| e.to_string())
    }

    fn active_test(&self, seq: u32) -> Option<Vec<u8>> {
        encode(seq, Body::ActiveTest).into()
    }

    fn terminate(&self, seq: u32) -> Vec<u8> {
        encode(seq, Body::Exit)
    }

    fn decode(&self, buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
        let Some((decoded, used)) = pdu::decode_frame(buf).map_err(|e| e.to_string())? else { return Ok(None) };
        let frame = match decoded {
            Decoded::Bad { request_id, sequence: seq, error } if request_id & 0x8000_0000 != 0 => {
                Frame::BadResp { seq, error: error.to_string() }
            }
            // A Deliver that does not parse is refused (Status 10, message structure error) so
            // the SMGW does not wait; the connection holds.
            Decoded::Bad { request_id: pdu::DELIVER, sequence, .. } => {
                Frame::Answer(deliver_resp(sequence, MsgId::default(), STRUCTURE_ERROR))
            }
            Decoded::Bad { .. } => Frame::Ignore,
            Decoded::Pdu(Pdu { sequence: seq, body }) => match body {
                Body::LoginResp(r) => Frame::LoginResp { seq, status: r.status, proof: r.authenticator.to_vec() },
                Body::SubmitResp(r) => Frame::SubmitResp {
                    seq,
                    result: if r.status == 0 { Ok(r.msg_id.to_string()) } else { Err(r.status) },
                },
                Body::Deliver(d) => deliver(seq, *d),
                Body::ActiveTest => Frame::Answer(encode(seq, Body::ActiveTestResp)),
                Body::ActiveTestResp => Frame::ActiveTestResp { seq },
                Body::Exit => Frame::Terminate(encode(seq, Body::ExitResp)),
                Body::ExitResp => Frame::TerminateResp { seq },
                // Requests an SP does not serve and stray responses are passed over.
                Body::Login(_) | Body::Submit(_) | Body::DeliverResp(_) | Body::Other(_) => Frame::Ignore,
            },
        };
        Ok(Some((frame, used)))
    }
}

/// Deliver_Resp Status for a Deliver that does not parse.
const STRUCTURE_ERROR: u32 = 10;

/// Bodies without fields: they always encode.
fn encode(sequence: u32, body: Body) -> Vec<u8> {
    pdu::encode(&Pdu { sequence, body }).unwrap_or_default()
}

fn deliver_resp(seq: u32, msg_id: MsgId, status: u32) -> Vec<u8> {
    encode(seq, Body::DeliverResp(DeliverResp { msg_id, status }))
}

/// A status report, or a subscriber's message.
fn deliver(seq: u32, d: Deliver) -> Frame {
    let ack = deliver_resp(seq, d.msg_id, 0);
    let at_ms = chrono::Utc::now().timestamp_millis();
    if d.is_report != 1 {
        let udhi = d.tlv(pdu::TAG_TP_UDHI).is_some_and(|v| v.first() == Some(&1));
        let reply = Reply {
            text: decode_text(d.msg_format, udhi, &d.msg_content),
            msisdn: d.src_term_id,
            to: d.dest_term_id,
            gateway: Smgp::NAME,
            gateway_id: Some(d.msg_id.to_string()),
            at_ms,
        };
        return Frame::Inbound { item: reply.into(), ack };
    }
    let Ok(report) = SmgpReport::decode(&d.msg_content) else {
        return Frame::Answer(deliver_resp(seq, d.msg_id, STRUCTURE_ERROR));
    };
    let status =
        if report.stat.eq_ignore_ascii_case("DELIVRD") { OutcomeStatus::Delivered } else { OutcomeStatus::Failed };
    let report = Report {
        action_id: None,
        gateway_id: Some(report.msg_id.to_string()),
        msisdn: Some(d.src_term_id).filter(|m| !m.is_empty()),
        reference: None,
        status,
        detail: format!("stat:{} err:{}", report.stat, report.err),
        at_ms,
    };
    Frame::Inbound { item: report.into(), ack }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_parse_and_check() {
        let cfg: SmgpConfig = toml::from_str(
            r#"
            account = "12345678"
            secret = "s3cret"
            src_term_id = "10620001"
            coding = "gbk"
            active_test = "15s"
            "#,
        )
        .unwrap();
        assert_eq!((cfg.port, cfg.coding, cfg.window, cfg.priority), (8890, Coding::Gbk, 16, 1));
        assert_eq!(cfg.flow_control_results, vec![status::SYSTEM_BUSY]);
        cfg.check().unwrap();
        assert!(toml::from_str::<SmgpConfig>("acount = \"x\"").is_err(), "unknown fields are refused");
        assert!(SmgpConfig { account: "123456789".into(), ..SmgpConfig::default() }.check().is_err());
        assert!(SmgpConfig { priority: 4, ..SmgpConfig::default() }.check().is_err());
        assert!(SmgpConfig { window: 0, ..SmgpConfig::default() }.check().is_err());
    }

    #[test]
    fn the_commented_example_in_delivery_example_toml_is_a_valid_config() {
        let section = de::example_section("smgp");
        assert!(section.contains("need_report"), "the example has the section:\n{section}");
        let cfg: SmgpConfig = toml::from_str(&section).unwrap_or_else(|e| panic!("{e}\n{section}"));
        cfg.check().unwrap();
        assert_eq!((cfg.port, cfg.account.as_str(), cfg.src_term_id.as_str()), (8890, "12345678", "10620001"));
    }

    #[test]
    fn a_long_chinese_message_goes_as_parts_with_the_three_tlvs() {
        let smgp = Smgp::new(SmgpConfig::default()).unwrap();
        let json = serde_json::json!({
            "id": "a1", "ts": "2026-11-24T20:00:00+08:00", "msisdn": "13800138000", "rule": "r", "campaign": "c",
            "channel": "sms", "priority": 1, "text": "中".repeat(200),
            "trigger": { "kind": "usage", "id": "e", "ts": "2026-11-24T20:00:00+08:00" },
        });
        let action: Action = serde_json::from_value(json).unwrap();
        let parts = smgp.parts(&action, "13800138000", smgp.configured_source()).unwrap();
        assert_eq!(parts.len(), 3);
        for (i, p) in parts.iter().enumerate() {
            assert_eq!((p.msg_format, p.tlv(pdu::TAG_TP_UDHI)), (8, Some(&[1u8][..])));
            assert_eq!(
                (p.tlv(pdu::TAG_PK_TOTAL), p.tlv(pdu::TAG_PK_NUMBER)),
                (Some(&[3u8][..]), Some(&[i as u8 + 1][..]))
            );
            assert_eq!(p.dest_term_ids, vec!["13800138000".to_owned()]);
        }
        let text: String = parts.iter().map(|p| decode_text(8, true, &p.msg_content)).collect();
        assert_eq!(text, "中".repeat(200));
    }

    #[test]
    fn reports_and_replies_are_told_apart_and_answered_with_the_deliver_msg_id() {
        let id = MsgId([0x59, 0x10, 0x00, 0x12, 0x03, 0x20, 0x15, 0x00, 0x00, 0x07]);
        let report = SmgpReport { msg_id: id, stat: "UNDELIV".into(), err: "001".into(), ..SmgpReport::default() };
        let d = Deliver {
            msg_id: MsgId([9; 10]),
            is_report: 1,
            src_term_id: "13900000001".into(),
            dest_term_id: "10620001".into(),
            msg_content: report.encode(),
            ..Deliver::default()
        };
        let Frame::Inbound { item: crate::sink::gateway::Inbound::Report(r), ack } = deliver(7, d) else {
            panic!("a report")
        };
        assert_eq!((r.gateway_id.as_deref(), r.status), (Some("59100012032015000007"), OutcomeStatus::Failed));
        assert_eq!((r.msisdn.as_deref(), r.detail.as_str()), (Some("13900000001"), "stat:UNDELIV err:001"));
        let Some((Decoded::Pdu(resp), _)) = pdu::decode_frame(&ack).unwrap() else { panic!("a response") };
        assert_eq!(
            (resp.sequence, resp.body),
            (7, Body::DeliverResp(DeliverResp { msg_id: MsgId([9; 10]), status: 0 }))
        );

        let mo = Deliver {
            msg_id: id,
            msg_format: 8,
            src_term_id: "13800138000".into(),
            dest_term_id: "10620001".into(),
            msg_content: "退订".encode_utf16().flat_map(u16::to_be_bytes).collect(),
            ..Deliver::default()
        };
        let Frame::Inbound { item: crate::sink::gateway::Inbound::Reply(r), .. } = deliver(8, mo) else {
            panic!("a reply")
        };
        assert_eq!((r.msisdn.as_str(), r.to.as_str(), r.text.as_str()), ("13800138000", "10620001", "退订"));
        assert_eq!(r.gateway_id.as_deref(), Some("59100012032015000007"));
    }
}
