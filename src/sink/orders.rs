//! Orders to the operator's order interface (BOSS/CRM). An order is an offer the subscriber
//! accepted, by reply: a rule on their reply decides an action on channel `order`, and this
//! module places it. The interface answers at once whether it took the order, so the answer is
//! the outcome (`accepted`, or `rejected` with the reason): there is no callback to wait for.
//!
//! The action id is the order's idempotency key, sent as the `Idempotency-Key` header and as the
//! `id` field: the interface places one order per key, and a repeat (a retry after a timeout, a
//! restart after a crash left the order in doubt) gets 409 with the result it already gave. So
//! an order may be offered again whenever its answer is unknown, and is never placed twice.

use super::gateway::{OutcomeStatus, Sent};
use crate::contact::Action;
use crate::http::client;
use serde::Deserialize;
use std::time::Duration;

/// `[delivery.order]`: the order interface.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderConfig {
    /// The order interface, e.g. `http://boss.internal:8095/v1/orders`.
    pub url: String,
    /// Bearer token for the order interface (empty = none).
    #[serde(default)]
    pub token: String,
    /// Request timeout; an order that times out is offered again (the key makes it one order).
    #[serde(default = "default_timeout", with = "crate::time::duration_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The order interface's answer body: `{"result":"accepted"}` or
/// `{"result":"rejected","reason":"..."}` (other fields, such as its own order id, are kept out
/// of the way).
#[derive(Deserialize)]
struct Answer {
    result: String,
    #[serde(default)]
    reason: Option<String>,
}

pub struct OrderDesk {
    cfg: OrderConfig,
}

impl OrderDesk {
    pub fn new(cfg: OrderConfig) -> Result<OrderDesk, String> {
        client::split_url(&cfg.url).map_err(|e| format!("delivery.order.url: {e}"))?;
        Ok(OrderDesk { cfg })
    }

    /// The order for an action: who, which offer, and why (rule, campaign and the reply that
    /// triggered it).
    pub fn order(a: &Action) -> Result<serde_json::Value, String> {
        let offer = a.offer.as_deref().filter(|o| !o.trim().is_empty()).ok_or("the action names no offer")?;
        Ok(serde_json::json!({
            "id": a.id,
            "msisdn": a.msisdn,
            "offer": offer,
            "rule": a.rule,
            "campaign": a.campaign,
            "ts": a.ts,
            "trigger": a.trigger,
        }))
    }

    pub async fn submit(&self, a: &Action) -> Sent {
        let order = match Self::order(a) {
            Ok(o) => o,
            Err(e) => return Sent::Rejected { reason: format!("order: {e}") },
        };
        match client::post_task(&self.cfg.url, &a.id, &self.cfg.token, order.to_string(), self.cfg.timeout).await {
            Err(e) => Sent::Retry { reason: format!("order interface: {e}"), after: None },
            Ok(r) => answer(r.status, &r.body, r.retry_after()),
        }
    }
}

/// What an HTTP answer of the order interface means. 2xx and 409 (a repeat of a key it has)
/// carry the result; 408, 425, 429 and 5xx say "not now"; any other 4xx refuses the order
/// itself. A body that is not the expected JSON is an error that gives up on the order, named
/// plainly, not a result guessed.
fn answer(status: u16, body: &[u8], retry_after: Option<Duration>) -> Sent {
    let text = || String::from_utf8_lossy(body).trim().chars().take(200).collect::<String>();
    match status {
        200..=299 | 409 => match serde_json::from_slice::<Answer>(body) {
            Ok(Answer { result, .. }) if result == "accepted" => {
                Sent::Answered { status: OutcomeStatus::Accepted, detail: String::new() }
            }
            Ok(Answer { result, reason }) if result == "rejected" => Sent::Answered {
                status: OutcomeStatus::Rejected,
                detail: reason.unwrap_or_default().chars().take(200).collect(),
            },
            Ok(Answer { result, .. }) => Sent::Rejected {
                reason: format!("order interface {status}: unknown result `{result}` (accepted, rejected)"),
            },
            Err(e) => Sent::Rejected {
                reason: format!(
                    "order interface {status}: expected {{\"result\": \"accepted\" | \"rejected\", \"reason\": ...}}, got `{}`: {e}",
                    text()
                ),
            },
        },
        408 | 425 | 429 | 500..=599 => {
            Sent::Retry { reason: format!("order interface {status}: {}", text()), after: retry_after }
        }
        400..=499 => {
            let phrase = hyper::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
            let body = text();
            let detail = match (phrase, body.is_empty()) {
                (p, true) => format!("{status} {p}"),
                (p, false) => format!("{status} {p}: {body}"),
            };
            Sent::Answered { status: OutcomeStatus::Rejected, detail: detail.trim().to_owned() }
        }
        s => Sent::Rejected { reason: format!("order interface answered {s}: {}", text()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, body: &str) -> Sent {
        answer(status, body.as_bytes(), None)
    }

    #[test]
    fn the_order_interface_answer_becomes_the_outcome() {
        let accepted = Sent::Answered { status: OutcomeStatus::Accepted, detail: String::new() };
        assert_eq!(answered(200, r#"{"result":"accepted","order_id":"B1"}"#), accepted);
        assert_eq!(answered(409, r#"{"result":"accepted"}"#), accepted, "a repeat of the key carries the result");
        assert_eq!(
            answered(201, r#"{"result":"rejected","reason":"already subscribed"}"#),
            Sent::Answered { status: OutcomeStatus::Rejected, detail: "already subscribed".into() }
        );
        assert_eq!(
            answered(422, "no such offer"),
            Sent::Answered {
                status: OutcomeStatus::Rejected,
                detail: "422 Unprocessable Entity: no such offer".into()
            }
        );
        assert_eq!(
            answered(403, ""),
            Sent::Answered { status: OutcomeStatus::Rejected, detail: "403 Forbidden".into() }
        );
        assert!(matches!(answered(503, "busy"), Sent::Retry { .. }));
        assert!(matches!(answer(429, b"", Some(Duration::from_secs(3))), Sent::Retry { after: Some(_), .. }));
    }

    #[test]
    fn an_order_answer_that_is_not_the_expected_json_is_a_clear_error() {
        for body in ["<html>oops</html>", "", r#"{"status":"ok"}"#, "\u{0}\u{ff}"] {
            match answered(200, body) {
                Sent::Rejected { reason } => assert!(reason.starts_with("order interface 200: expected"), "{reason}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
        match answered(200, r#"{"result":"maybe"}"#) {
            Sent::Rejected { reason } => assert!(reason.contains("unknown result `maybe`"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
