//! SMS over HTTP through Kannel, the open-source SMS gateway: `sendsms` on smsbox, with a
//! `dlr-url` that points back at tidings' own endpoint so delivery reports come home.
//!
//! Kannel has no idempotency key of its own; the action id travels in the `dlr-url` (so every
//! report names its action) and in the `X-Tidings-Action-Id` header (for a proxy or log in
//! front of Kannel to deduplicate on). The outbox ledger is what keeps a retry from reaching
//! the subscriber twice.

use super::gateway::{OutcomeStatus, Report, Sent};
use crate::contact::Action;
use crate::http::{Request, Response, client, percent_encode};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KannelConfig {
    /// smsbox's sendsms URL, e.g. `http://127.0.0.1:13013/cgi-bin/sendsms`.
    pub url: String,
    /// A `sendsms-user` of smsbox.
    pub username: String,
    pub password: String,
    /// Sender shown to the subscriber (`from`), e.g. `10086`.
    #[serde(default)]
    pub from: Option<String>,
    /// Route to this SMSC (`smsc` parameter); empty = Kannel's routing.
    #[serde(default)]
    pub smsc: Option<String>,
    /// Kannel `dlr-mask`: 1 delivered, 2 failed, 16 rejected by the SMSC (default 19).
    #[serde(default = "default_dlr_mask")]
    pub dlr_mask: u8,
    /// Request timeout.
    #[serde(default = "default_timeout", with = "crate::time::duration_serde")]
    pub timeout: Duration,
}

fn default_dlr_mask() -> u8 {
    19
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The path of the delivery-report callback on tidings' endpoint.
pub const DLR_PATH: &str = "/v1/dlr/kannel";

pub struct Kannel {
    cfg: KannelConfig,
    /// Where Kannel reaches tidings (`http://host:port`).
    public_url: String,
}

impl Kannel {
    pub fn new(cfg: KannelConfig, public_url: &str) -> Kannel {
        Kannel { cfg, public_url: public_url.trim_end_matches('/').to_owned() }
    }

    /// The full `sendsms` URL for an action.
    pub fn url(&self, a: &Action) -> String {
        // Kannel fills %d (report type), %A (the SMSC's answer) and %T (time) in the dlr-url.
        let dlr = format!("{}{DLR_PATH}?id={}&type=%d&answer=%A&ts=%T", self.public_url, percent_encode(&a.id));
        let mut u = format!(
            "{}?username={}&password={}&to={}&text={}&charset=UTF-8&coding={}&dlr-mask={}&dlr-url={}",
            self.cfg.url,
            percent_encode(&self.cfg.username),
            percent_encode(&self.cfg.password),
            percent_encode(&a.msisdn),
            percent_encode(a.text.as_deref().unwrap_or("")),
            if a.text.as_deref().unwrap_or("").is_ascii() { 0 } else { 2 },
            self.cfg.dlr_mask,
            percent_encode(&dlr),
        );
        if let Some(f) = &self.cfg.from {
            u.push_str(&format!("&from={}", percent_encode(f)));
        }
        if let Some(s) = &self.cfg.smsc {
            u.push_str(&format!("&smsc={}", percent_encode(s)));
        }
        u
    }

    pub async fn submit(&self, a: &Action) -> Sent {
        let headers = [("x-tidings-action-id", a.id.clone())];
        match client::request(hyper::Method::GET, &self.url(a), &headers, None, self.cfg.timeout).await {
            // Not connected: Kannel never saw it. Anything later: it may have.
            Err(e @ client::HttpError::Connect(_)) => Sent::Retry { reason: format!("kannel: {e}"), after: None },
            Err(e) => Sent::InDoubt { reason: format!("kannel: {e}") },
            Ok(r) => classify(r.status, &String::from_utf8_lossy(&r.body)),
        }
    }
}

/// Kannel answers 202 `0: Accepted for delivery` or `3: Queued for later delivery`; 503 when it
/// cannot take messages now; 4xx for a request it will never take.
fn classify(status: u16, body: &str) -> Sent {
    let body = body.trim();
    match status {
        200..=299 => Sent::Accepted { gateway_ids: Vec::new() },
        403 => Sent::Retry { reason: format!("kannel {status}: {body} (check the sendsms-user)"), after: None },
        400..=499 => Sent::Rejected { reason: format!("kannel {status}: {body}") },
        _ => Sent::Retry { reason: format!("kannel {status}: {body}"), after: None },
    }
}

/// Turns a Kannel delivery-report callback into a report. Types: 1 delivered, 2 failed,
/// 16 rejected by the SMSC are final; 4 (buffered) and 8 (submitted to the SMSC) are not, and
/// give `None` (the callback is still answered 200 so Kannel does not retry it).
pub fn report(req: &Request, now_ms: i64) -> Result<Option<Report>, Response> {
    let id = req.param("id").filter(|s| !s.is_empty()).ok_or_else(|| Response::error(400, "missing id"))?;
    let ty: u32 =
        req.param("type").and_then(|t| t.parse().ok()).ok_or_else(|| Response::error(400, "missing or bad type"))?;
    let status = match ty {
        1 => OutcomeStatus::Delivered,
        2 | 16 => OutcomeStatus::Failed,
        _ => return Ok(None),
    };
    let at_ms = req.param("ts").and_then(|t| t.parse::<i64>().ok()).map(|s| s * 1000).unwrap_or(now_ms);
    Ok(Some(Report {
        action_id: Some(id.to_owned()),
        gateway_id: None,
        msisdn: None,
        reference: None,
        status,
        detail: req.param("answer").unwrap_or("").chars().take(200).collect(),
        at_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_by_status() {
        assert!(matches!(classify(202, "0: Accepted for delivery"), Sent::Accepted { .. }));
        assert!(matches!(classify(503, "Temporal failure"), Sent::Retry { .. }));
        assert!(matches!(classify(400, "Missing receiver"), Sent::Rejected { .. }));
    }

    #[test]
    fn the_dlr_url_names_the_action_and_survives_encoding() {
        let cfg = KannelConfig {
            url: "http://127.0.0.1:13013/cgi-bin/sendsms".into(),
            username: "tidings".into(),
            password: "p&w".into(),
            from: Some("10086".into()),
            smsc: None,
            dlr_mask: 19,
            timeout: Duration::from_secs(1),
        };
        let k = Kannel::new(cfg, "http://127.0.0.1:8380/");
        let a: Action = serde_json::from_str(
            r#"{"id":"a0001","ts":"2026-11-25T10:00:00+08:00","msisdn":"13800138000","rule":"r","campaign":"c",
                "channel":"sms","priority":1,"text":"您好","trigger":{"kind":"usage","id":"e","ts":"2026-11-25T10:00:00+08:00"}}"#,
        )
        .unwrap();
        let url = k.url(&a);
        let q = crate::http::parse_query(url.split_once('?').unwrap().1);
        assert_eq!(q["password"], "p&w");
        assert_eq!(q["text"], "您好");
        assert_eq!(q["coding"], "2");
        assert_eq!(q["dlr-url"], "http://127.0.0.1:8380/v1/dlr/kannel?id=a0001&type=%d&answer=%A&ts=%T");
    }
}
