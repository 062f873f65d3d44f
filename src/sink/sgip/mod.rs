//! SMS delivery over SGIP 1.2 (SMS Gateway Interface Protocol), the protocol between an SP and
//! China Unicom's SMG (issue 18): `[delivery.sgip]`. SGIP differs from CMPP and SMGP in one way
//! that shapes this module: the SMG does not send status reports and subscribers' messages over
//! the SP's connection but opens a connection of its own to the SP. So [`SgipClient`] is two
//! things started and stopped together, with one receiver of what comes back:
//!
//! - the link to the SMG ([`Sgip`], a [`crate::sink::link::Protocol`]; the link does the window,
//!   reconnect and what each answer means): Bind (Login Type 1), Submit with ReportFlag 1 (by
//!   default) so reports come back, the text in ASCII, UCS-2 or GBK (MessageCoding 0, 8, 15), a
//!   long message as parts with TP_udhi and the 6-octet concatenation header. A part's id is the
//!   12-octet sequence number of its Submit (node id, MMDDHHMMSS, counter:
//!   `3000012345-1203083000-7`), which the Submit_Resp echoes and the Report names; its counter
//!   runs on across connections. SGIP 1.2 has no heartbeat: the link says Unbind after
//!   `idle_close` without traffic and binds again for the next submit, rather than wait for the
//!   SMG to cut an idle connection;
//! - the listener (`listener.rs`) on `listen`, where the SMG binds (Login Type 2, `smg_login` and
//!   `smg_password` checked) and sends Deliver (a subscriber's message, a
//!   [`crate::sink::gateway::Reply`]) and Report (a Submit's status, a
//!   [`crate::sink::gateway::Report`]), each answered once on disk.
//!
//! What each thing the SMG sends becomes is written once for both connections (`protocol.rs`,
//! `from_smg`).
//!
//! ## What varies between gateways
//!
//! Settings rather than guesses: the Submit_Resp results that mean flow control (11 "node busy"
//! and 33 "SMSC queue full" by default), the text coding for Chinese, the country code SGIP puts
//! before every UserNumber ("86"; stripped from the numbers the SMG sends), the SP's node id, the
//! fee fields, and how long an idle connection is kept.

mod listener;
pub mod pdu;
mod protocol;

use crate::contact::Action;
use crate::sink::gateway::{Incoming, Sent};
use crate::sink::link::{Client, LinkError, LinkSettings, de, settings_of};
use crate::sink::wire::Coding;
pub use protocol::Sgip;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How to reach and bind to the SMG, where the SMG reaches us, and what every Submit carries. In
/// TOML, durations are strings:
///
/// ```toml
/// host = "smg.example"
/// port = 8801
/// login_name = "tidings"
/// login_password = "secret"
/// listen = "0.0.0.0:8801"
/// smg_login = "smg"
/// smg_password = "smg-secret"
/// node_id = 3010099999
/// sp_number = "10655001"
/// corp_id = "99999"
/// service_type = "TIDINGS"
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgipConfig {
    pub host: String,
    /// The SMG's port (8801 by convention).
    pub port: u16,
    /// Bind's Login Name and Login Password toward the SMG (at most 16 characters each).
    pub login_name: String,
    pub login_password: String,
    /// Where tidings listens for the SMG's own connections (Deliver and Report).
    pub listen: String,
    /// What the SMG's Bind must carry (at most 16 characters each).
    pub smg_login: String,
    pub smg_password: String,
    /// The SP's node id the operator assigned (3AAAAQQQQQ: area code, corporation code): the first
    /// part of every sequence number.
    pub node_id: u32,
    /// SPNumber: the SP's access number the handset shows (at most 21 digits): what an SMS goes
    /// out from when its action names no sender (older outbox lines). An action's sender goes in
    /// SPNumber in its place.
    pub sp_number: String,
    /// ChargeNumber: who pays (at most 21); 21 zeros: the SP.
    pub charge_number: String,
    /// CorpId: the SP's corporation code (5 characters).
    pub corp_id: String,
    /// ServiceType: the service code (at most 10 characters).
    pub service_type: String,
    /// FeeType: 0 free (channel fee only), 1 free, 2 per message, 3 monthly, 4 charged by the SP.
    pub fee_type: u8,
    /// FeeValue and GivenValue in fen (at most 6 characters).
    pub fee_value: String,
    pub given_value: String,
    /// AgentFlag: 0 fee due, 1 fee collected.
    pub agent_flag: u8,
    /// MorelatetoMTFlag: 2, a message not caused by an MO (what tidings sends).
    pub morelateto_mt_flag: u8,
    /// Priority 0 (lowest) to 9.
    pub priority: u8,
    /// ReportFlag: 1 a report for every message, 0 only on failure, 2 none, 3 charging only.
    pub report_flag: u8,
    /// Put before each UserNumber sent and stripped from those received ("86"; "" for none).
    pub country_code: String,
    /// Chinese text in "ucs2" (MessageCoding 8) or "gbk" (15); ASCII text is always 0.
    pub coding: Coding,
    /// Submits awaiting their response at once.
    pub window: usize,
    /// How long to wait for any response (bind, submit, unbind).
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub response_timeout: Duration,
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub reconnect_min: Duration,
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub reconnect_max: Duration,
    /// Submit_Resp results that mean "slow down and send again".
    pub flow_control_results: Vec<u32>,
    /// The back-off hint returned with Retry on flow control.
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub flow_control_retry_after: Duration,
    /// Unbind after this long without traffic and bind again for the next submit ("0s": keep
    /// the connection until the SMG closes it).
    #[serde(deserialize_with = "crate::time::duration_serde::deserialize")]
    pub idle_close: Duration,
    /// The zone of the sequence numbers' MMDDHHMMSS, e.g. "+08:00".
    #[serde(deserialize_with = "de::offset")]
    pub timezone: chrono::FixedOffset,
}

impl Default for SgipConfig {
    fn default() -> Self {
        SgipConfig {
            host: "127.0.0.1".into(),
            port: 8801,
            login_name: String::new(),
            login_password: String::new(),
            listen: "0.0.0.0:8801".into(),
            smg_login: String::new(),
            smg_password: String::new(),
            node_id: 0,
            sp_number: String::new(),
            charge_number: "0".repeat(21),
            corp_id: String::new(),
            service_type: String::new(),
            fee_type: 1,
            fee_value: "0".into(),
            given_value: "0".into(),
            agent_flag: 0,
            morelateto_mt_flag: 2,
            priority: 0,
            report_flag: 1,
            country_code: "86".into(),
            coding: Coding::Ucs2,
            window: 16,
            response_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            flow_control_results: vec![pdu::result::NODE_BUSY.into(), pdu::result::SMSC_QUEUE_FULL.into()],
            flow_control_retry_after: Duration::from_secs(1),
            idle_close: Duration::from_secs(30),
            timezone: chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00 is in range"),
        }
    }
}

impl SgipConfig {
    /// Checks what serde cannot: field widths and ranges from the SGIP 1.2 document, and sane
    /// timings.
    pub fn check(&self) -> Result<(), LinkError> {
        let bad = |why: String| Err(LinkError::Config { protocol: "sgip", why });
        let fields = [
            ("login_name", &self.login_name, 16),
            ("login_password", &self.login_password, 16),
            ("smg_login", &self.smg_login, 16),
            ("smg_password", &self.smg_password, 16),
            ("sp_number", &self.sp_number, 21),
            ("charge_number", &self.charge_number, 21),
            ("corp_id", &self.corp_id, 5),
            ("service_type", &self.service_type, 10),
            ("fee_value", &self.fee_value, 6),
            ("given_value", &self.given_value, 6),
        ];
        for (name, value, max) in fields {
            if value.len() > max || !value.is_ascii() {
                return bad(format!("{name} must be at most {max} ASCII characters"));
            }
        }
        let ranges = [
            ("fee_type", self.fee_type, 4),
            ("agent_flag", self.agent_flag, 1),
            ("morelateto_mt_flag", self.morelateto_mt_flag, 3),
            ("priority", self.priority, 9),
            ("report_flag", self.report_flag, 3),
        ];
        for (name, value, max) in ranges {
            if value > max {
                return bad(format!("{name} must be 0 to {max}"));
            }
        }
        if self.node_id == 0 {
            return bad("node_id must be set: the SP's node id the operator assigned (3AAAAQQQQQ)".into());
        }
        if self.country_code.len() > 3 || !self.country_code.bytes().all(|b| b.is_ascii_digit()) {
            return bad("country_code must be at most 3 digits (\"86\"), or empty".into());
        }
        self.settings().check("sgip")
    }

    fn settings(&self) -> LinkSettings {
        // No heartbeat in SGIP 1.2: `Sgip::active_test` sends none, and this never comes due.
        settings_of!(self, active_test: Duration::MAX, idle_close: Some(self.idle_close).filter(|d| !d.is_zero()))
    }

    /// A subscriber's number as SGIP sends it: with the country code in front.
    fn international(&self, msisdn: &str) -> String {
        if msisdn.starts_with(&self.country_code) && msisdn.len() > 11 {
            msisdn.to_owned()
        } else {
            format!("{}{msisdn}", self.country_code)
        }
    }

    /// A number the SMG sent, as tidings knows subscribers: without the country code.
    fn national<'a>(&self, user_number: &'a str) -> &'a str {
        match user_number.strip_prefix(self.country_code.as_str()) {
            Some(rest) if !rest.is_empty() && !self.country_code.is_empty() => rest,
            _ => user_number,
        }
    }
}

/// The SGIP sink: the link to the SMG and the listener for the SMG's connections, started and
/// stopped together. Cheap to clone; every clone shares both.
#[derive(Clone)]
pub struct SgipClient {
    link: Client<Sgip>,
    listener: Arc<listener::Listener>,
}

impl SgipClient {
    /// Checks the config, binds `listen` and starts the link, both on the current tokio runtime.
    /// Reports and replies from either connection arrive on the one receiver returned.
    pub fn start(cfg: SgipConfig) -> Result<(SgipClient, mpsc::Receiver<Incoming>), LinkError> {
        cfg.check()?;
        let socket = std::net::TcpListener::bind(&cfg.listen)
            .map_err(|e| LinkError::Config { protocol: "sgip", why: format!("listen on {}: {e}", cfg.listen) })?;
        let (link, from_link) = Client::<Sgip>::start(cfg.clone())?;
        let (to_dispatcher, incoming) = mpsc::channel(1024);
        let listener = listener::Listener::start(cfg, socket, to_dispatcher.clone())
            .map_err(|e| LinkError::Config { protocol: "sgip", why: format!("listen: {e}") })?;
        tokio::spawn(forward(from_link, to_dispatcher));
        Ok((SgipClient { link, listener: Arc::new(listener) }, incoming))
    }

    pub fn is_logged_in(&self) -> bool {
        self.link.is_logged_in()
    }

    /// How many parts (each with a report of its own) the action's text takes.
    pub fn parts(&self, action: &Action) -> usize {
        self.link.parts(action)
    }

    /// Submits every part of the action's text: see [`crate::sink::link`] for what each answer
    /// means.
    pub async fn submit(&self, action: &Action) -> Sent {
        self.link.submit(action).await
    }

    /// Unbinds from the SMG and stops listening: the SMG's connections are unbound too, after the
    /// answers already made safe are sent.
    pub async fn shutdown(&self) {
        self.listener.stop();
        self.link.shutdown().await;
        self.listener.stopped().await;
    }
}

/// What the SMG sends over the SP's own connection (it should not, but may) joins what it sends
/// to the listener.
async fn forward(mut from: mpsc::Receiver<Incoming>, to: mpsc::Sender<Incoming>) {
    while let Some(item) = from.recv().await {
        if to.send(item).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_parse_and_check() {
        let cfg: SgipConfig = toml::from_str(
            r#"
            login_name = "tidings"
            login_password = "s3cret"
            node_id = 3010099999
            sp_number = "10655001"
            coding = "gbk"
            idle_close = "0s"
            "#,
        )
        .unwrap();
        assert_eq!((cfg.coding, cfg.window, cfg.report_flag), (Coding::Gbk, 16, 1));
        assert_eq!(cfg.flow_control_results, [11, 33]);
        assert_eq!(cfg.settings().idle_close, None, "0s keeps an idle connection");
        assert_eq!(SgipConfig::default().settings().idle_close, Some(Duration::from_secs(30)));
        cfg.check().unwrap();
        assert_eq!(cfg.international("13800138000"), "8613800138000");
        assert_eq!(cfg.international("8613800138000"), "8613800138000");
        assert_eq!(cfg.national("8613800138000"), "13800138000");
        let bare = SgipConfig { country_code: String::new(), ..cfg.clone() };
        assert_eq!(
            (bare.international("13800138000").as_str(), bare.national("8613800138000")),
            ("13800138000", "8613800138000")
        );
        assert!(toml::from_str::<SgipConfig>("login = \"x\"").is_err(), "unknown fields are refused");
        assert!(toml::from_str::<SgipConfig>("coding = \"utf8\"").is_err());
        for wrong in [
            SgipConfig { corp_id: "123456".into(), ..cfg.clone() },
            SgipConfig { smg_password: "x".repeat(17), ..cfg.clone() },
            SgipConfig { report_flag: 4, ..cfg.clone() },
            SgipConfig { node_id: 0, ..cfg.clone() },
            SgipConfig { country_code: "+86".into(), ..cfg.clone() },
            SgipConfig { window: 0, ..cfg.clone() },
        ] {
            assert!(wrong.check().is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn the_commented_example_in_delivery_example_toml_is_a_valid_config() {
        let text = include_str!("../../../config/delivery.example.toml");
        let section: String = text
            .lines()
            .skip_while(|l| *l != "# [delivery.sgip]")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        assert!(section.contains("smg_password"), "the example has the section:\n{section}");
        let cfg: SgipConfig = toml::from_str(&section).unwrap_or_else(|e| panic!("{e}\n{section}"));
        cfg.check().unwrap();
        assert_eq!((cfg.port, cfg.listen.as_str(), cfg.node_id), (8801, "0.0.0.0:8801", 3_010_099_999));
    }
}
