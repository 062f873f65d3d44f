//! The SMS gateway in use, chosen from `[delivery]`: Kannel's HTTP interface, SMPP 3.4 straight to
//! the SMSC, or CMPP to China Mobile's ISMG. The dispatcher offers actions to it and takes its
//! reports without knowing which one it is.

use super::cmpp::{CmppClient, CmppConfig};
use super::gateway::{Incoming, Sent};
use super::kannel::{Kannel, KannelConfig};
use super::smpp::{SmppClient, SmppConfig};
use super::wire::Coding;
use crate::contact::Action;
use tokio::sync::mpsc;

pub enum SmsGateway {
    Kannel(Kannel),
    Smpp(SmppClient),
    /// With the coding Chinese text goes in (it sets how many parts a long message takes).
    Cmpp(CmppClient, Coding),
}

/// The `[delivery.*]` sections that name an SMS gateway; at most one may be set.
pub struct SmsChoice {
    pub kannel: Option<KannelConfig>,
    pub smpp: Option<SmppConfig>,
    pub cmpp: Option<CmppConfig>,
}

impl SmsGateway {
    /// Starts the gateway the config names, if any, inside the current tokio runtime (SMPP and
    /// CMPP sessions start at once); their reports are forwarded to `reports`. `public` is how
    /// Kannel reaches tidings' endpoint for its delivery reports.
    pub fn start(
        choice: SmsChoice,
        public: &str,
        reports: mpsc::UnboundedSender<Incoming>,
    ) -> Result<Option<SmsGateway>, String> {
        let SmsChoice { kannel, smpp, cmpp } = choice;
        if [kannel.is_some(), smpp.is_some(), cmpp.is_some()].iter().filter(|&&set| set).count() > 1 {
            return Err(
                "delivery: configure one SMS gateway, [delivery.kannel], [delivery.smpp] or [delivery.cmpp], not several"
                    .into(),
            );
        }
        if let Some(k) = kannel {
            return Ok(Some(SmsGateway::Kannel(Kannel::new(k, public))));
        }
        if let Some(c) = smpp {
            let (client, receipts) = SmppClient::start(c).map_err(|e| format!("delivery.smpp: {e}"))?;
            forward(receipts, reports);
            return Ok(Some(SmsGateway::Smpp(client)));
        }
        if let Some(c) = cmpp {
            let coding = c.coding;
            let (client, receipts) = CmppClient::start(c).map_err(|e| format!("delivery.cmpp: {e}"))?;
            forward(receipts, reports);
            return Ok(Some(SmsGateway::Cmpp(client, coding)));
        }
        Ok(None)
    }

    pub async fn submit(&self, a: &Action) -> Sent {
        match self {
            SmsGateway::Kannel(k) => k.submit(a).await,
            SmsGateway::Smpp(c) => c.submit(a).await,
            SmsGateway::Cmpp(c, _) => c.submit(a).await,
        }
    }

    /// How many SMS the action's text takes through this gateway: each part of a long message
    /// gets a report of its own, so an SMS in doubt is settled only when all its parts' reports
    /// are in. SMPP packs 160 GSM characters or 70 UCS-2 into one; CMPP 140 octets (ASCII, UCS-2,
    /// or GBK, where an ASCII character takes one octet). Kannel's reports name the action, so
    /// one settles it.
    pub fn parts(&self, a: &Action) -> usize {
        let Some(text) = a.text.as_deref() else { return 1 };
        let parts = match self {
            SmsGateway::Kannel(_) => return 1,
            SmsGateway::Smpp(_) => super::smpp::text::split(text, 0).map(|p| p.len()),
            SmsGateway::Cmpp(_, coding) => super::wire::split(text, *coding, 0).map(|p| p.len()),
        };
        parts.map_or(1, |n| n.max(1))
    }

    /// Ends a gateway's session politely (SMPP unbind, CMPP terminate); Kannel has none.
    pub async fn shutdown(&self) {
        match self {
            SmsGateway::Kannel(_) => {}
            SmsGateway::Smpp(c) => c.shutdown().await,
            SmsGateway::Cmpp(c, _) => c.shutdown().await,
        }
    }
}

/// Hands a session's reports on to the dispatcher's channel until either side closes.
fn forward(mut from: mpsc::Receiver<Incoming>, to: mpsc::UnboundedSender<Incoming>) {
    tokio::spawn(async move {
        while let Some(r) = from.recv().await {
            if to.send(r).is_err() {
                break;
            }
        }
    });
}
