//! The SMS gateway in use, chosen from `[delivery]`: Kannel's HTTP interface, SMPP 3.4 straight to
//! the SMSC, CMPP to China Mobile's ISMG, SMGP to China Telecom's SMGW or SGIP to China Unicom's
//! SMG. The dispatcher offers actions to it and takes its reports without knowing which one it is.

use super::cmpp::{CmppClient, CmppConfig};
use super::gateway::{Incoming, Sent};
use super::kannel::{Kannel, KannelConfig};
use super::sgip::{SgipClient, SgipConfig};
use super::smgp::{SmgpClient, SmgpConfig};
use super::smpp::{SmppClient, SmppConfig};
use crate::contact::Action;
use tokio::sync::mpsc;

pub enum SmsGateway {
    Kannel(Kannel),
    Smpp(SmppClient),
    Cmpp(CmppClient),
    Smgp(SmgpClient),
    Sgip(SgipClient),
}

/// The `[delivery.*]` sections that name an SMS gateway; at most one may be set.
pub struct SmsChoice {
    pub kannel: Option<KannelConfig>,
    pub smpp: Option<SmppConfig>,
    pub cmpp: Option<CmppConfig>,
    pub smgp: Option<SmgpConfig>,
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
        let SmsChoice { kannel, smpp, cmpp, smgp, sgip } = choice;
        let set = [kannel.is_some(), smpp.is_some(), cmpp.is_some(), smgp.is_some(), sgip.is_some()];
        if set.iter().filter(|&&set| set).count() > 1 {
            return Err("delivery: configure one SMS gateway — [delivery.kannel], [delivery.smpp], \
                 [delivery.cmpp], [delivery.smgp] or [delivery.sgip] — not several"
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
        if let Some(c) = smgp {
            let (client, receipts) = SmgpClient::start(c).map_err(|e| format!("delivery.smgp: {e}"))?;
            forward(receipts, reports);
            return Ok(Some(SmsGateway::Smgp(client)));
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
            SmsGateway::Smgp(c) => c.submit(a).await,
            SmsGateway::Sgip(c) => c.submit(a).await,
        }
    }

    /// How many SMS the action's text takes through this gateway: each part of a long message
    /// gets a report of its own, so an SMS in doubt is settled only when all its parts' reports
    /// are in. SMPP packs 160 GSM characters or 70 UCS-2 into one; CMPP, SMGP and SGIP 140 octets
    /// (ASCII, UCS-2, or GBK, where an ASCII character takes one octet). Kannel's reports name
    /// the action, so one settles it.
    pub fn parts(&self, a: &Action) -> usize {
        match self {
            SmsGateway::Kannel(_) => 1,
            SmsGateway::Smpp(c) => c.parts(a),
            SmsGateway::Cmpp(c) => c.parts(a),
            SmsGateway::Smgp(c) => c.parts(a),
            SmsGateway::Sgip(c) => c.parts(a),
        }
    }

    /// Ends a gateway's session politely (SMPP unbind, CMPP terminate, SMGP exit, SGIP unbind
    /// both ways); Kannel has none.
    pub async fn shutdown(&self) {
        match self {
            SmsGateway::Kannel(_) => {}
            SmsGateway::Smpp(c) => c.shutdown().await,
            SmsGateway::Cmpp(c) => c.shutdown().await,
            SmsGateway::Smgp(c) => c.shutdown().await,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::wire::Coding;

    /// A gateway nobody answers: the clients only need to exist to count parts.
    fn nowhere() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(9, |a| a.port())
    }

    #[test]
    fn a_long_message_has_the_parts_the_gateway_in_use_sends() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let smpp =
                SmppConfig { port: nowhere(), system_id: "t".into(), password: "p".into(), ..Default::default() };
            let cmpp = |coding| CmppConfig { port: nowhere(), account: "901234".into(), coding, ..Default::default() };
            let gateways = [
                SmsGateway::Smpp(SmppClient::start(smpp).expect("smpp config").0),
                SmsGateway::Cmpp(CmppClient::start(cmpp(Coding::Ucs2)).expect("cmpp config").0),
                SmsGateway::Cmpp(CmppClient::start(cmpp(Coding::Gbk)).expect("cmpp config").0),
            ];
            let chinese = |n| "尊敬的客户您好".chars().cycle().take(n).collect::<String>();
            let action = |text: String| Action {
                id: "a1".into(),
                ts: "2026-12-03T08:30:00+08:00".into(),
                msisdn: "13800138000".into(),
                rule: "r".into(),
                campaign: "c".into(),
                channel: crate::contact::Channel::Sms,
                priority: 50,
                text: Some(text),
                script: None,
                queue: None,
                sender: None,
                about: None,
                offer: None,
                trigger: crate::contact::TriggerJson { kind: "usage".into(), id: "e1".into(), ts: "t".into() },
                expires: None,
            };
            // (text, parts through SMPP, CMPP in UCS-2, CMPP in GBK)
            let cases = [
                ("x".repeat(150), [1, 2, 2]),
                (chinese(70) + &"x".repeat(70), [3, 3, 2]),
                (chinese(200), [3, 3, 3]),
                ("您好".to_owned(), [1, 1, 1]),
            ];
            for (text, want) in cases {
                let a = action(text.clone());
                let got: Vec<usize> = gateways.iter().map(|g| g.parts(&a)).collect();
                assert_eq!(got, want, "{text}");
            }
            for g in &gateways {
                g.shutdown().await;
            }
        });
    }

    #[test]
    fn a_sender_too_long_for_the_field_or_not_digits_fails_naming_each_gateways_field() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let smpp =
                SmppConfig { port: nowhere(), system_id: "t".into(), password: "p".into(), ..Default::default() };
            let cmpp = CmppConfig { port: nowhere(), account: "901234".into(), ..Default::default() };
            let smgp = SmgpConfig { port: nowhere(), account: "90123456".into(), ..Default::default() };
            let listen = format!("127.0.0.1:{}", nowhere());
            let sgip = SgipConfig { port: nowhere(), listen, node_id: 3_010_099_999, ..Default::default() };
            // (gateway, its field, how many digits it holds): SMPP's source_addr is a C string
            // of 21 octets with its NUL, the others fixed 21-octet fields.
            let gateways = [
                (SmsGateway::Smpp(SmppClient::start(smpp).expect("smpp config").0), "source_addr", 20),
                (SmsGateway::Cmpp(CmppClient::start(cmpp).expect("cmpp config").0), "Src_Id", 21),
                (SmsGateway::Smgp(SmgpClient::start(smgp).expect("smgp config").0), "SrcTermID", 21),
                (SmsGateway::Sgip(SgipClient::start(sgip).expect("sgip config").0), "SPNumber", 21),
            ];
            let mut a: Action = serde_json::from_str(
                r#"{"id":"a1","ts":"2026-12-03T08:30:00+08:00","msisdn":"13800138000","rule":"r","campaign":"c",
                    "channel":"sms","priority":50,"text":"您好","trigger":{"kind":"usage","id":"e1","ts":"t"}}"#,
            )
            .expect("an action");
            for (g, field, max) in &gateways {
                let too_long = "1".repeat(max + 1);
                let cases = [
                    (
                        too_long.clone(),
                        format!("sender \"{too_long}\" is {} digits: {field} holds at most {max}", max + 1),
                    ),
                    (
                        "1065-8888".to_owned(),
                        format!("sender \"1065-8888\" is not a number: {field} takes digits only"),
                    ),
                ];
                for (sender, why) in cases {
                    a.sender = Some(sender);
                    match g.submit(&a).await {
                        Sent::Rejected { reason } => assert!(reason.ends_with(&why), "{reason}"),
                        other => panic!("{field}: refused, not {other:?}"),
                    }
                }
                // The widest sender the field holds is no refusal (here: not logged in, retry).
                a.sender = Some("1".repeat(*max));
                assert!(matches!(g.submit(&a).await, Sent::Retry { .. }), "{field}");
                g.shutdown().await;
            }
        });
    }
}
