//! `[delivery]` in the engine config, read by the dispatcher ([`super::deliver`]): where the
//! outbox and outcomes live, tidings' own endpoint for callbacks, the gateways in use (one SMS
//! gateway, the call centre, the order interface), their rates, the window and backlog, retries, the grace for SMS in
//! doubt, and how long to linger and drain.

use super::calls::CallCentreConfig;
use super::kannel::KannelConfig;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[delivery]` in the engine config: where actions go after the engine decided them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// The outbox directory (`outbox.jsonl`, `ledger.jsonl`).
    #[serde(default = "default_outbox")]
    pub outbox: PathBuf,
    /// Where outcome and reply events are written (`outcomes.jsonl`, one event per line, the
    /// event contract's `outcome` and `reply` kinds: replay them with the other event files).
    #[serde(default = "default_outcomes")]
    pub outcomes: PathBuf,
    /// tidings' HTTP endpoint for delivery reports, call results and Kannel's MO. Loopback by
    /// default.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// How gateways reach that endpoint (default `http://<listen>`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// SMS through Kannel's `sendsms`.
    #[serde(default)]
    pub kannel: Option<KannelConfig>,
    /// SMS straight to the operator's SMSC over SMPP 3.4 (instead of Kannel).
    #[serde(default)]
    pub smpp: Option<super::smpp::SmppConfig>,
    /// SMS to China Mobile's ISMG over CMPP 2.0 or 3.0 (instead of Kannel or SMPP).
    #[serde(default)]
    pub cmpp: Option<super::cmpp::CmppConfig>,
    /// SMS to China Telecom's SMGW over SMGP 3.0.
    #[serde(default)]
    pub smgp: Option<super::smgp::SmgpConfig>,
    /// SMS to China Unicom's SMG over SGIP 1.2 (the SMG connects back to the section's `listen`).
    #[serde(default)]
    pub sgip: Option<super::sgip::SgipConfig>,
    /// Outbound-call tasks to the call centre's task API.
    #[serde(default)]
    pub call_centre: Option<CallCentreConfig>,
    /// Orders (offers accepted by reply) to the operator's order interface (BOSS/CRM).
    #[serde(default)]
    pub order: Option<super::orders::OrderConfig>,
    /// SMS submissions per second (the gateway's contracted rate).
    #[serde(default = "default_sms_tps")]
    pub sms_tps: u32,
    /// Call tasks per minute.
    #[serde(default = "default_calls_per_minute")]
    pub calls_per_minute: u32,
    /// Actions offered to one gateway at once.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Actions held in memory (queued, in flight, waiting to retry); the rest stay on disk.
    #[serde(default = "default_backlog")]
    pub backlog: usize,
    /// First retry delay; doubles per attempt up to `retry_max`.
    #[serde(default = "default_retry_min", with = "crate::time::duration_serde")]
    pub retry_min: Duration,
    #[serde(default = "default_retry_max", with = "crate::time::duration_serde")]
    pub retry_max: Duration,
    /// Give up after this many attempts (0 = keep trying until the action expires).
    #[serde(default)]
    pub max_attempts: u32,
    /// How long an SMS in doubt (sent, no answer) waits for a report before it is offered again.
    #[serde(default = "default_grace", with = "crate::time::duration_serde")]
    pub in_doubt_grace: Duration,
    /// When the input has ended and the outbox is drained: how long to keep listening for
    /// reports still due before exiting.
    #[serde(default = "default_linger", with = "crate::time::duration_serde")]
    pub linger: Duration,
    /// On a stop (SIGTERM, Ctrl-C, a fatal error): how long to wait for the answers to submits
    /// already out, so that they are recorded and a restart does not send them again.
    #[serde(default = "default_drain_timeout", with = "crate::time::duration_serde")]
    pub drain_timeout: Duration,
    /// Drop actions whose `expires` has passed by the wall clock (turn off to deliver a replay of
    /// old traffic to a test gateway).
    #[serde(default = "yes")]
    pub honour_expiry: bool,
}

fn default_outbox() -> PathBuf {
    "out/outbox".into()
}
fn default_outcomes() -> PathBuf {
    "out/outcomes.jsonl".into()
}
fn default_listen() -> String {
    "127.0.0.1:8380".into()
}
fn default_sms_tps() -> u32 {
    200
}
fn default_calls_per_minute() -> u32 {
    30
}
fn default_window() -> usize {
    16
}
fn default_backlog() -> usize {
    2048
}
fn default_retry_min() -> Duration {
    Duration::from_millis(500)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}
fn default_grace() -> Duration {
    Duration::from_secs(30)
}
fn default_linger() -> Duration {
    Duration::from_secs(2)
}
fn default_drain_timeout() -> Duration {
    Duration::from_secs(5)
}
fn yes() -> bool {
    true
}

impl DeliveryConfig {
    /// The number the configured SMS gateway sends from when an action names none (SMPP
    /// `source_addr`, CMPP `src_id`, SMGP `src_term_id`, SGIP `sp_number`, Kannel `from`), if
    /// it names one.
    pub fn sms_source(&self) -> Option<&str> {
        let sources = [
            self.smpp.as_ref().map(|c| c.source_addr.as_str()),
            self.cmpp.as_ref().map(|c| c.src_id.as_str()),
            self.smgp.as_ref().map(|c| c.src_term_id.as_str()),
            self.sgip.as_ref().map(|c| c.sp_number.as_str()),
            self.kannel.as_ref().and_then(|c| c.from.as_deref()),
        ];
        sources.into_iter().flatten().find(|s| !s.is_empty())
    }
}
