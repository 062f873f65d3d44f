//! The SMS gateway in use, chosen from `[delivery]`: Kannel's HTTP interface, SMPP 3.4 straight to
//! the SMSC, CMPP to China Mobile's ISMG, or SGIP to China Unicom's SMG. The dispatcher offers
//! actions to it and takes its reports without knowing which one it is.

use super::cmpp::{CmppClient, CmppConfig};
use super::gateway::{Incoming, Sent};
use super::kannel::{Kannel, KannelConfig};
use super::sgip::{SgipClient, SgipConfig};
use super::smpp::{SmppClient, SmppConfig};
use crate::contact::Action;
use tokio::sync::mpsc;

pub enum SmsGateway {
    Kannel(Kannel),
    Smpp(SmppClient),
    Cmpp(CmppClient),
    Sgip(SgipClient),
}

/// The `[delivery.*]` sections that name an SMS gateway; at most one may be set.
pub struct SmsChoice {
    pub kannel: Option<KannelConfig>,
    pub smpp: Option<SmppConfig>,
    pub cmpp: Option<CmppConfig>,
    pub sgip: Option<SgipConfig>,
}

impl SmsGateway {
    /// Starts the gateway the config names, if any, inside the current tokio runtime (SMPP, CMPP
    /// and SGIP sessions start at once, and SGIP's listener); their reports are forwarded to
    /// `reports`. `public` is how
    /// Kannel reaches tidings' endpoint for its delivery reports.
    pub fn start(
        choice: SmsChoice,
        public: &str,
        reports: mpsc::UnboundedSender<Incoming>,
    ) -> Result<Option<SmsGateway>, String> {
        let SmsChoice { kannel, smpp, cmpp, sgip } = choice;
        if [kannel.is_some(), smpp.is_some(), cmpp.is_some(), sgip.is_some()].iter().filter(|&&set| set).count() > 1 {
            return Err("delivery: configure one SMS gateway, [delivery.kannel], [delivery.smpp], [delivery.cmpp] or \
                 [delivery.sgip], not several"
                .into());
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
            let (client, receipts) = CmppClient::start(c).map_err(|e| format!("delivery.cmpp: {e}"))?;
            forward(receipts, reports);
            return Ok(Some(SmsGateway::Cmpp(client)));
        }
        if let Some(c) = sgip {
            let (client, incoming) = SgipClient::start(c).map_err(|e| format!("delivery.sgip: {e}"))?;
            forward(incoming, reports);
            return Ok(Some(SmsGateway::Sgip(client)));
        }
        Ok(None)
    }

    pub async fn submit(&self, a: &Action) -> Sent {
        match self {
            SmsGateway::Kannel(k) => k.submit(a).await,
            SmsGateway::Smpp(c) => c.submit(a).await,
            SmsGateway::Cmpp(c) => c.submit(a).await,
            SmsGateway::Sgip(c) => c.submit(a).await,
        }
    }

    /// Ends a gateway's session politely (SMPP unbind, CMPP terminate, SGIP unbind both ways);
    /// Kannel has none.
    pub async fn shutdown(&self) {
        match self {
            SmsGateway::Kannel(_) => {}
            SmsGateway::Smpp(c) => c.shutdown().await,
            SmsGateway::Cmpp(c) => c.shutdown().await,
            SmsGateway::Sgip(c) => c.shutdown().await,
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
