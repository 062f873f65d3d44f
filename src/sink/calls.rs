//! Outbound-call tasks to the call centre. tidings does not dial: it hands the call centre's
//! task API a task (who to call, for which campaign, with which script and queue, and when it
//! may be called) and takes the result back on its own endpoint.
//!
//! The action id is the task's idempotency key, sent both as the `Idempotency-Key` header and
//! as the `id` field: a task API that has seen the key answers with the task it already has
//! (200, 201 or 409), so a retry after a timeout or a crash never creates a second call.

use super::gateway::{OutcomeStatus, Report, Sent};
use crate::contact::Action;
use crate::http::{Request, Response, client};
use chrono::{DateTime, FixedOffset, NaiveTime, TimeZone};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallCentreConfig {
    /// The task API, e.g. `http://callcentre.internal:8090/v1/tasks`.
    pub url: String,
    /// Bearer token for the task API (empty = none).
    #[serde(default)]
    pub token: String,
    /// Hours the call centre may call subscribers, in their local time (`HH:MM-HH:MM`).
    #[serde(default = "default_hours")]
    pub hours: String,
    /// Request timeout.
    #[serde(default = "default_timeout", with = "crate::time::duration_serde")]
    pub timeout: Duration,
}

fn default_hours() -> String {
    "09:00-21:00".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The path of the call-result callback on tidings' endpoint.
pub const RESULT_PATH: &str = "/v1/calls/result";

pub struct CallCentre {
    cfg: CallCentreConfig,
    hours: (NaiveTime, NaiveTime),
    callback: String,
}

impl CallCentre {
    pub fn new(cfg: CallCentreConfig, public_url: &str) -> Result<CallCentre, String> {
        let hours = parse_hours(&cfg.hours)?;
        Ok(CallCentre { cfg, hours, callback: format!("{}{RESULT_PATH}", public_url.trim_end_matches('/')) })
    }

    /// The task for an action: the earliest and latest call time fall inside the calling hours
    /// of the decision's local day (or the next day's if the decision came after them), and never
    /// after the action's expiry.
    pub fn task(&self, a: &Action) -> Result<serde_json::Value, String> {
        let ts = DateTime::parse_from_rfc3339(&a.ts).map_err(|e| format!("bad ts `{}`: {e}", a.ts))?;
        let (earliest, latest) = call_window(ts, self.hours);
        let expires = match &a.expires {
            Some(e) => Some(DateTime::parse_from_rfc3339(e).map_err(|err| format!("bad expires `{e}`: {err}"))?),
            None => None,
        };
        let latest = expires.map_or(latest, |e| e.min(latest));
        Ok(serde_json::json!({
            "id": a.id,
            "callee": a.msisdn,
            "campaign": a.campaign,
            "rule": a.rule,
            "script": a.script,
            "queue": a.queue,
            "priority": a.priority,
            "earliest": earliest.to_rfc3339(),
            "latest": latest.to_rfc3339(),
            "expires": expires.unwrap_or(latest).to_rfc3339(),
            "idempotency_key": a.id,
            "callback_url": self.callback,
        }))
    }

    pub async fn submit(&self, a: &Action) -> Sent {
        let task = match self.task(a) {
            Ok(t) => t,
            Err(e) => return Sent::Rejected { reason: format!("call task: {e}") },
        };
        match client::post_task(&self.cfg.url, &a.id, &self.cfg.token, task.to_string(), self.cfg.timeout).await {
            Err(e) => Sent::Retry { reason: format!("call centre: {e}"), after: None },
            Ok(r) => {
                let retry_after = r.retry_after();
                let body = String::from_utf8_lossy(&r.body);
                match r.status {
                    200..=299 | 409 => {
                        let task_id = serde_json::from_str::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| v.get("task_id").and_then(|t| t.as_str()).map(str::to_owned));
                        Sent::Accepted { gateway_ids: task_id.into_iter().collect() }
                    }
                    408 | 425 | 429 | 500..=599 => {
                        Sent::Retry { reason: format!("call centre {}: {}", r.status, body.trim()), after: retry_after }
                    }
                    s => Sent::Rejected { reason: format!("call centre {s}: {}", body.trim()) },
                }
            }
        }
    }
}

fn parse_hours(s: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let bad = || format!("calling hours `{s}`: expected HH:MM-HH:MM, e.g. 09:00-21:00");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
    let b = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
    if a >= b {
        return Err(format!("calling hours `{s}`: the start must come before the end"));
    }
    Ok((a, b))
}

fn call_window(
    ts: DateTime<FixedOffset>,
    (start, end): (NaiveTime, NaiveTime),
) -> (DateTime<FixedOffset>, DateTime<FixedOffset>) {
    let tz = *ts.offset();
    let at = |d: chrono::NaiveDate, t: NaiveTime| tz.from_local_datetime(&d.and_time(t)).single().unwrap_or(ts);
    let day = ts.date_naive();
    let (s, e) = (at(day, start), at(day, end));
    if ts < s {
        (s, e)
    } else if ts < e {
        (ts, e)
    } else {
        let next = day.succ_opt().unwrap_or(day);
        (at(next, start), at(next, end))
    }
}

/// A call result callback: `{"id": <action id or idempotency key>, "result": "answered" | "busy"
/// | "no_answer" | "refused", "at": RFC 3339 (optional), "task_id": ... (optional)}`.
pub fn report(req: &Request, now_ms: i64) -> Result<Report, Response> {
    #[derive(Deserialize)]
    struct Body {
        id: String,
        result: String,
        #[serde(default)]
        at: Option<String>,
        #[serde(default)]
        task_id: Option<String>,
        #[serde(default)]
        detail: Option<String>,
    }
    let b: Body = serde_json::from_slice(&req.body)
        .map_err(|e| Response::error(400, &format!("call result: expected JSON with id and result: {e}")))?;
    let status = match b.result.as_str() {
        "answered" => OutcomeStatus::Answered,
        "busy" => OutcomeStatus::Busy,
        "no_answer" => OutcomeStatus::NoAnswer,
        "refused" => OutcomeStatus::Refused,
        other => {
            return Err(Response::error(
                400,
                &format!("call result: unknown result `{other}` (answered, busy, no_answer, refused)"),
            ));
        }
    };
    let at_ms = match &b.at {
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map_err(|e| Response::error(400, &format!("call result: bad at `{t}`: {e}")))?
            .timestamp_millis(),
        None => now_ms,
    };
    Ok(Report {
        action_id: Some(b.id),
        gateway_id: b.task_id,
        msisdn: None,
        reference: None,
        status,
        detail: b.detail.unwrap_or_else(|| b.result.clone()).chars().take(200).collect(),
        at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn calls_fall_inside_calling_hours() {
        let h = parse_hours("09:00-21:00").unwrap();
        let (e, l) = call_window(ts("2026-11-25T07:30:00+08:00"), h);
        assert_eq!(
            (e.to_rfc3339(), l.to_rfc3339()),
            ("2026-11-25T09:00:00+08:00".into(), "2026-11-25T21:00:00+08:00".into())
        );
        let (e, _) = call_window(ts("2026-11-25T12:00:00+08:00"), h);
        assert_eq!(e.to_rfc3339(), "2026-11-25T12:00:00+08:00");
        let (e, l) = call_window(ts("2026-11-25T22:10:00+08:00"), h);
        assert_eq!(
            (e.to_rfc3339(), l.to_rfc3339()),
            ("2026-11-26T09:00:00+08:00".into(), "2026-11-26T21:00:00+08:00".into())
        );
        assert!(parse_hours("21:00-09:00").is_err());
        assert!(parse_hours("9-21").is_err());
    }
}
