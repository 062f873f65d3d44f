//! SMS over HTTP through Kannel, the open-source SMS gateway: `sendsms` on smsbox, with a
//! `dlr-url` that points back at tidings' own endpoint so delivery reports come home; and the
//! subscribers' messages (MO), which Kannel hands to an `sms-service`'s `get-url` — pointed at
//! tidings' [`MO_PATH`] ([`reply`] reads them):
//!
//! ```text
//! group = sms-service
//! keyword-regex = .*
//! catch-all = true
//! max-messages = 0
//! get-url = "http://127.0.0.1:8380/v1/mo/kannel?id=%I&from=%p&to=%P&text=%b&coding=%c&charset=%C&ts=%T"
//! ```
//!
//! `%b` (the message's octets as they came, URL-encoded) and not `%a`: `%a` splits the text at
//! whitespace octets and rejoins it, which garbles UCS-2 (U+4E0A 上 holds a newline octet). The
//! octets are decoded by `%C` — `UTF-16BE` for a UCS-2 message, unless the SMSC group says
//! `mo-recode = true` and Kannel recoded it to UTF-8 — so Chinese arrives whole.
//! `max-messages = 0`: tidings answers with an empty body, and nothing goes back to the
//! subscriber from Kannel; what to answer is the engine's to decide. `%I` is Kannel's id of the
//! message: smsbox asks again when tidings does not answer (`http-request-retry` in the smsbox
//! group), and the same id is recorded once.
//!
//! An SMS goes out from its action's sender (`from`), else from the configured `from`, else from
//! whatever Kannel's SMSC group says ([`crate::sink::gateway::source`]).
//!
//! Kannel has no idempotency key of its own; the action id travels in the `dlr-url` (so every
//! report names its action) and in the `X-Tidings-Action-Id` header (for a proxy or log in
//! front of Kannel to deduplicate on). The outbox ledger is what keeps a retry from reaching
//! the subscriber twice.

use super::gateway::{OutcomeStatus, Reply, Report, Sent, SourceField, source};
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
    /// What an SMS goes out from (`from`) when its action names no sender (older outbox lines),
    /// e.g. `10086`; an action's sender is sent as `from` in its place.
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
/// The path an `sms-service`'s `get-url` hands subscribers' messages to.
pub const MO_PATH: &str = "/v1/mo/kannel";

/// `from` has no width of its own in Kannel, but the SMSC behind it has one; a sender is held to
/// the 21 digits every operator's source field takes (and tidings' `sender` allows).
const FROM: SourceField = SourceField { name: "from", max: 21 };

pub struct Kannel {
    cfg: KannelConfig,
    /// Where Kannel reaches tidings (`http://host:port`).
    public_url: String,
}

impl Kannel {
    pub fn new(cfg: KannelConfig, public_url: &str) -> Kannel {
        Kannel { cfg, public_url: public_url.trim_end_matches('/').to_owned() }
    }

    /// The full `sendsms` URL for an action, or why it cannot go (a sender that is not a
    /// number).
    pub fn url(&self, a: &Action) -> Result<String, String> {
        // Neither a sender nor a configured `from`: Kannel's own default-sender.
        let from = source(a, self.cfg.from.as_deref().unwrap_or_default(), FROM)?;
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
        if !from.is_empty() {
            u.push_str(&format!("&from={}", percent_encode(from)));
        }
        if let Some(s) = &self.cfg.smsc {
            u.push_str(&format!("&smsc={}", percent_encode(s)));
        }
        Ok(u)
    }

    pub async fn submit(&self, a: &Action) -> Sent {
        let url = match self.url(a) {
            Ok(url) => url,
            Err(e) => return Sent::Rejected { reason: format!("kannel: {e}") },
        };
        let headers = [("x-tidings-action-id", a.id.clone())];
        match client::request(hyper::Method::GET, &url, &headers, None, self.cfg.timeout).await {
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

/// Turns an `sms-service` `get-url` request (see the module doc for its parameters) into a
/// subscriber's reply.
pub fn reply(req: &Request, now_ms: i64) -> Result<Reply, Response> {
    let msisdn = req.param("from").filter(|s| !s.is_empty()).ok_or_else(|| Response::error(400, "missing from"))?;
    let to = req.param("to").ok_or_else(|| Response::error(400, "missing to"))?;
    let octets = req.param_bytes("text").ok_or_else(|| Response::error(400, "missing text"))?;
    let coding = req.param("coding").and_then(|c| c.trim().parse::<i32>().ok());
    Ok(Reply {
        msisdn: msisdn.to_owned(),
        to: to.to_owned(),
        text: mo_text(&octets, coding, req.param("charset")),
        gateway: "kannel",
        gateway_id: req.param("id").filter(|s| !s.is_empty()).map(str::to_owned),
        at_ms: req.param("ts").and_then(|t| t.parse::<i64>().ok()).map_or(now_ms, |s| s * 1000),
    })
}

/// The text of an MO message's octets in the charset Kannel names (`%C`); without one it knows,
/// coding 2 (UCS-2) is UTF-16BE and anything else UTF-8 (Kannel's own form of 7-bit text).
/// Octets that do not decode become U+FFFD; the rest is kept.
fn mo_text(octets: &[u8], coding: Option<i32>, charset: Option<&str>) -> String {
    let named = charset.map(str::trim).and_then(|c| match c.to_ascii_uppercase().as_str() {
        "UCS-2" | "UCS2" | "UTF-16BE" => Some(encoding_rs::UTF_16BE),
        _ => encoding_rs::Encoding::for_label(c.as_bytes()),
    });
    let fallback = if coding == Some(2) { encoding_rs::UTF_16BE } else { encoding_rs::UTF_8 };
    named.unwrap_or(fallback).decode_without_bom_handling(octets).0.into_owned()
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
        let query = |k: &Kannel, a: &Action| {
            let url = k.url(a).expect("a sendsms url");
            crate::http::parse_query(url.split_once('?').expect("a query").1)
        };
        let q = query(&k, &a);
        assert_eq!(q["password"], "p&w");
        assert_eq!(q["text"], "您好");
        assert_eq!(q["coding"], "2");
        assert_eq!(q["dlr-url"], "http://127.0.0.1:8380/v1/dlr/kannel?id=a0001&type=%d&answer=%A&ts=%T");
        // No sender on the action (an older outbox line): the configured `from`.
        assert_eq!(q["from"], "10086");
        let from = |sender: &str| Action { sender: Some(sender.into()), ..a.clone() };
        assert_eq!(query(&k, &from("10658888"))["from"], "10658888");
        // Neither: Kannel's own default-sender.
        let unset = Kannel::new(KannelConfig { from: None, ..k.cfg.clone() }, "http://127.0.0.1:8380");
        assert!(!query(&unset, &a).contains_key("from"));
        assert_eq!(query(&unset, &from("10658888"))["from"], "10658888");
    }

    #[test]
    fn a_sender_that_is_not_a_number_or_too_long_is_refused_before_kannel_sees_it() {
        let cfg = KannelConfig {
            url: "http://127.0.0.1:1/cgi-bin/sendsms".into(),
            username: "tidings".into(),
            password: "p".into(),
            from: Some("10086".into()),
            smsc: None,
            dlr_mask: 19,
            timeout: Duration::from_secs(1),
        };
        let k = Kannel::new(cfg, "http://127.0.0.1:8380");
        let mut a: Action = serde_json::from_str(
            r#"{"id":"a0002","ts":"2026-11-25T10:00:00+08:00","msisdn":"13800138000","rule":"r","campaign":"c",
                "channel":"sms","priority":1,"text":"hi","trigger":{"kind":"usage","id":"e","ts":"2026-11-25T10:00:00+08:00"}}"#,
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        for (sender, why) in
            [("1".repeat(22), "is 22 digits: from holds at most 21"), ("1065x".into(), "is not a number")]
        {
            a.sender = Some(sender.clone());
            match rt.block_on(k.submit(&a)) {
                Sent::Rejected { reason } => {
                    assert!(reason.starts_with("kannel: sender") && reason.contains(why), "{reason}")
                }
                other => panic!("{sender}: refused, not {other:?}"),
            }
        }
    }

    fn get(query: &str) -> Request {
        Request {
            method: hyper::Method::GET,
            path: MO_PATH.into(),
            query: crate::http::parse_query(query),
            query_string: query.into(),
            headers: hyper::HeaderMap::new(),
            body: Default::default(),
            peer: None,
        }
    }

    #[test]
    fn an_mo_in_ucs2_utf8_or_gbk_arrives_whole() {
        // 退订 上 in UTF-16BE: 上 is U+4E0A, whose second octet is a newline.
        let ucs2 = "%90%00%8B%A2%00%20%4E%0A";
        let r = reply(
            &get(&format!("id=u-1&from=8613800138000&to=10658888&text={ucs2}&coding=2&charset=UTF-16BE&ts=1764000000")),
            0,
        )
        .expect("a reply");
        assert_eq!((r.text.as_str(), r.msisdn.as_str(), r.to.as_str()), ("退订 上", "8613800138000", "10658888"));
        assert_eq!((r.gateway, r.gateway_id.as_deref(), r.at_ms), ("kannel", Some("u-1"), 1_764_000_000_000));
        // Recoded by Kannel (mo-recode), or 7-bit text: UTF-8. GBK when the charset says so.
        let utf8 = crate::http::percent_encode("退订");
        assert_eq!(
            reply(&get(&format!("from=1&to=2&text={utf8}&coding=0&charset=UTF-8")), 5).expect("ok").text,
            "退订"
        );
        assert_eq!(reply(&get("from=1&to=2&text=%CD%CB%B6%A9&charset=GBK"), 5).expect("ok").text, "退订");
        // No charset: coding 2 is UCS-2.
        let r = reply(&get("from=1&to=2&text=%90%00%8B%A2&coding=2"), 5).expect("ok");
        assert_eq!((r.text.as_str(), r.at_ms, r.gateway_id), ("退订", 5, None));
        assert_eq!(reply(&get("to=2&text=x"), 5).map_err(|e| e.status), Err(400));
    }
}
