//! SMS delivery over CMPP (China Mobile Peer to Peer), the protocol an SP speaks to China Mobile's
//! ISMG, version 2.0 or 3.0 (issue 18): `[delivery.cmpp]`. [`Cmpp`] is the CMPP [`Protocol`] of the
//! link the three operators' protocols share ([`crate::sink::link`]: window, heartbeats,
//! reconnect, what each answer means); [`CmppClient`] is that link speaking CMPP.
//!
//! - [`pdu`]: the wire format, both versions.
//! - Login: CMPP_CONNECT with the MD5 AuthenticatorSource of the current time in the ISMG's zone;
//!   the ISMG's Status and, when configured, its AuthenticatorISMG checked. A refusal is reported
//!   by its meaning (`login refused: authentication failed (status 3)`).
//! - CMPP_SUBMIT: one Msg_Id per part, shown as 16 hex digits; a long message goes as parts with
//!   `TP_udhi` 1, `Pk_total`/`Pk_number` and the 6-octet concatenation header.
//! - CMPP_DELIVER with Registered_Delivery 1 is a status report, matched by Msg_Id; with 0 it is
//!   a subscriber's message to the SP, a [`Reply`] (its Msg_Id names it, so a redelivery is
//!   recorded once). Both are answered with CMPP_DELIVER_RESP once on disk; a report whose
//!   content does not parse is answered at once with Result 1 (the same octets would not parse
//!   on redelivery either).
//! - CMPP_ACTIVE_TEST both ways, CMPP_TERMINATE both ways.
//!
//! ## What varies between gateways
//!
//! Real ISMGs differ in details the documents leave open; those are settings rather than
//! guesses: the version, whether `AuthenticatorISMG` is checked (some send zeros), the Result
//! codes that mean flow control, the text coding for Chinese (UCS-2 or GBK), and the time zone of
//! the login timestamp (the ISMG checks it against its own clock, Beijing time by default).

pub mod pdu;

use crate::contact::Action;
use crate::sink::gateway::{OutcomeStatus, Reply, Report, SourceField};
use crate::sink::link::{Client, Frame, LinkError, LinkSettings, Protocol, de, settings_of};
use crate::sink::wire::{Coding, WireError, action_parts, authenticator, decode_text, md5, mmddhhmmss};
use pdu::{Body, Connect, Decoded, Deliver, DeliverResp, Pdu, Report as CmppReport, Submit, Version, status};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

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
    /// Src_Id: the SP's service code, or a long number beginning with it, that the handset shows
    /// (at most 21 digits): what an SMS goes out from when its action names no sender (older
    /// outbox lines). An action's sender goes in Src_Id in its place, so it too must begin with
    /// the service code.
    pub src_id: String,
    /// Fee_UserType: 0 the destination pays, 1 the source, 2 the SP, 3 Fee_terminal_Id.
    pub fee_user_type: u8,
    /// FeeType: "01" free, "02" per message, "03" monthly...
    pub fee_type: String,
    /// FeeCode in fen (6 characters).
    pub fee_code: String,
    /// Chinese text in "ucs2" (Msg_Fmt 8) or "gbk" (15); ASCII text is always Msg_Fmt 0.
    pub coding: Coding,
    /// CMPP_SUBMIT awaiting their response at once (16 is what ISMGs usually allow).
    pub window: usize,
    /// Send CMPP_ACTIVE_TEST after this long without sending anything.
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub active_test: Duration,
    /// How long to wait for any response (connect, submit, active test).
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub response_timeout: Duration,
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub reconnect_min: Duration,
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub reconnect_max: Duration,
    /// SUBMIT_RESP Results that mean "slow down and send again".
    pub flow_control_results: Vec<u32>,
    /// The back-off hint returned with Retry on flow control.
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub flow_control_retry_after: Duration,
    /// Ask for a status report on every message (Registered_Delivery 1).
    pub registered_delivery: bool,
    /// Check the ISMG's AuthenticatorISMG in CMPP_CONNECT_RESP.
    pub verify_authenticator: bool,
    /// The zone of the login timestamp, e.g. "+08:00".
    #[serde(deserialize_with = "de::offset")]
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
            timezone: de::beijing(),
        }
    }
}

fn de_version<'de, D: Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
    match String::deserialize(d)?.as_str() {
        "2.0" => Ok(Version::V20),
        "3.0" => Ok(Version::V30),
        other => Err(serde::de::Error::custom(format!("unknown CMPP version {other:?}: \"2.0\" or \"3.0\""))),
    }
}

impl CmppConfig {
    /// Checks what serde cannot: field widths and sane timings.
    pub fn check(&self) -> Result<(), LinkError> {
        let fields = [
            ("account", self.account.as_str(), 6),
            ("msg_src", &self.msg_src, 6),
            ("service_id", &self.service_id, 10),
            ("src_id", &self.src_id, 21),
            ("fee_type", &self.fee_type, 2),
            ("fee_code", &self.fee_code, 6),
        ];
        de::widths(Cmpp::NAME, &fields)?;
        self.settings().check(Cmpp::NAME)
    }

    fn msg_src(&self) -> &str {
        if self.msg_src.is_empty() { &self.account } else { &self.msg_src }
    }

    fn settings(&self) -> LinkSettings {
        settings_of!(self, active_test: self.active_test, idle_close: None)
    }
}

/// A CMPP link to the ISMG: see [`crate::sink::link::Client`] for what it answers.
pub type CmppClient = Client<Cmpp>;

/// A Msg_Id as the ledger and reports name it: 16 hex digits.
pub fn msg_id_text(id: u64) -> String {
    format!("{id:016x}")
}

/// CMPP as the link speaks it.
pub struct Cmpp {
    cfg: CmppConfig,
    settings: LinkSettings,
}

impl Protocol for Cmpp {
    const NAME: &'static str = "cmpp";
    const SUBMIT_RESP: &'static str = "CMPP_SUBMIT_RESP";
    const SOURCE: SourceField = SourceField { name: "Src_Id", max: 21 };
    type Config = CmppConfig;
    type Part = Submit;
    /// The AuthenticatorSource sent.
    type Login = [u8; 16];

    fn new(cfg: CmppConfig) -> Result<Cmpp, LinkError> {
        cfg.check()?;
        Ok(Cmpp { settings: cfg.settings(), cfg })
    }

    fn settings(&self) -> &LinkSettings {
        &self.settings
    }

    fn configured_source(&self) -> &str {
        &self.cfg.src_id
    }

    fn parts(&self, action: &Action, dest: &str, source: &str) -> Result<Vec<Submit>, String> {
        let cfg = &self.cfg;
        let parts = action_parts(action, cfg.coding)?;
        Ok(parts
            .into_iter()
            .map(|part| Submit {
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
                src_id: source.to_owned(),
                dest_terminal_ids: vec![dest.to_owned()],
                msg_content: part.content,
                ..Submit::default()
            })
            .collect())
    }

    fn login(&self) -> Result<(Vec<u8>, [u8; 16]), String> {
        let cfg = &self.cfg;
        let v = cfg.version;
        let timestamp = mmddhhmmss(&chrono::Utc::now().with_timezone(&cfg.timezone));
        let source = authenticator(&cfg.account, 9, &cfg.secret, timestamp);
        let connect =
            Connect { source_addr: cfg.account.clone(), authenticator: source, version: v.octet(), timestamp };
        let bytes = pdu::encode(v, &Pdu { sequence: 1, body: Body::Connect(connect) }).map_err(|e| e.to_string())?;
        Ok((bytes, source))
    }

    fn check_login(&self, source: &[u8; 16], status: u32, proof: &[u8]) -> Result<(), String> {
        if status != status::OK {
            return Err(format!("login refused: {} (status {status})", status::connect(status)));
        }
        let expected = md5(&[&self.cfg.version.status_octets(status), source, self.cfg.secret.as_bytes()]);
        if self.cfg.verify_authenticator && proof != expected {
            return Err("login answered with an AuthenticatorISMG that does not match our secret".into());
        }
        Ok(())
    }

    fn submit(&self, seq: u32, part: &Submit) -> Result<Vec<u8>, String> {
        self.encode(seq, Body::Submit(Box::new(part.clone()))).map_err(|e| e.to_string())
    }

    fn active_test(&self, seq: u32) -> Option<Vec<u8>> {
        self.encode(seq, Body::ActiveTest).ok()
    }

    fn terminate(&self, seq: u32) -> Vec<u8> {
        self.encode(seq, Body::Terminate).unwrap_or_default()
    }

    fn decode(&self, buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
        let Some((decoded, used)) = pdu::decode_frame(self.cfg.version, buf).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let frame = match decoded {
            Decoded::Bad { command_id, sequence: seq, error } if command_id & 0x8000_0000 != 0 => {
                Frame::BadResp { seq, error: error.to_string() }
            }
            // A DELIVER that does not parse is refused (Result 1, message structure error) so
            // the ISMG does not wait; the connection holds.
            Decoded::Bad { command_id: pdu::DELIVER, sequence, .. } => Frame::Answer(self.deliver_resp(sequence, 0, 1)),
            Decoded::Bad { .. } => Frame::Ignore,
            Decoded::Pdu(Pdu { sequence: seq, body }) => match body {
                Body::ConnectResp(r) => Frame::LoginResp { seq, status: r.status, proof: r.authenticator.to_vec() },
                Body::SubmitResp(r) => Frame::SubmitResp {
                    seq,
                    result: if r.result == 0 { Ok(msg_id_text(r.msg_id)) } else { Err(r.result) },
                },
                Body::Deliver(d) => self.deliver(seq, *d),
                Body::ActiveTest => Frame::Answer(self.encode(seq, Body::ActiveTestResp).unwrap_or_default()),
                Body::ActiveTestResp => Frame::ActiveTestResp { seq },
                Body::Terminate => Frame::Terminate(self.encode(seq, Body::TerminateResp).unwrap_or_default()),
                Body::TerminateResp => Frame::TerminateResp { seq },
                // Requests an SP does not serve and stray responses are passed over.
                Body::Connect(_) | Body::Submit(_) | Body::DeliverResp(_) | Body::Other(_) => Frame::Ignore,
            },
        };
        Ok(Some((frame, used)))
    }
}

impl Cmpp {
    /// Only our own bodies pass here, and they always encode.
    fn encode(&self, sequence: u32, body: Body) -> Result<Vec<u8>, WireError> {
        pdu::encode(self.cfg.version, &Pdu { sequence, body })
    }

    fn deliver_resp(&self, seq: u32, msg_id: u64, result: u32) -> Vec<u8> {
        self.encode(seq, Body::DeliverResp(DeliverResp { msg_id, result })).unwrap_or_default()
    }

    /// A status report, or a subscriber's message.
    fn deliver(&self, seq: u32, d: Deliver) -> Frame {
        let ack = self.deliver_resp(seq, d.msg_id, 0);
        let at_ms = chrono::Utc::now().timestamp_millis();
        if d.registered_delivery != 1 {
            let reply = Reply {
                msisdn: d.src_terminal_id,
                to: d.dest_id,
                text: decode_text(d.msg_fmt, d.tp_udhi == 1, &d.msg_content),
                gateway: Self::NAME,
                gateway_id: Some(msg_id_text(d.msg_id)),
                at_ms,
            };
            return Frame::Inbound { item: reply.into(), ack };
        }
        let Ok(report) = CmppReport::decode(self.cfg.version, &d.msg_content) else {
            return Frame::Answer(self.deliver_resp(seq, d.msg_id, 1));
        };
        let status = if report.stat == "DELIVRD" { OutcomeStatus::Delivered } else { OutcomeStatus::Failed };
        let report = Report {
            action_id: None,
            gateway_id: Some(msg_id_text(report.msg_id)),
            msisdn: Some(report.dest_terminal_id).filter(|m| !m.is_empty()),
            reference: None,
            status,
            detail: format!("stat:{}", report.stat),
            at_ms,
        };
        Frame::Inbound { item: report.into(), ack }
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
        let section = de::example_section("cmpp");
        assert!(section.contains("flow_control_results"), "the example has the section:\n{section}");
        let cfg: CmppConfig = toml::from_str(&section).unwrap_or_else(|e| panic!("{e}\n{section}"));
        cfg.check().unwrap();
        assert_eq!((cfg.version, cfg.port, cfg.account.as_str()), (Version::V30, 7890, "901234"));
    }
}
