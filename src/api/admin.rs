//! tidings' HTTP endpoint for operations staff, their monitoring and the IVR: `/metrics`
//! (Prometheus text format), `/healthz` and `/readyz`, `GET /v1/rules` (what is loaded), and
//! `GET /v1/ivr/{msisdn}` (see [`super::ivr`]).
//!
//! Safe by default: the server binds to loopback unless told otherwise; every endpoint but the
//! two health checks needs a bearer token (the IVR's own, or the admin one); each client (by IP address) gets a request
//! rate (`governor`, keyed), beyond which it is answered 429; bodies are size-limited by the
//! server. Nothing here prints or labels a subscriber number.

use super::{Handler, Reply, Request, Response};
use governor::{Quota, RateLimiter};
use serde::Deserialize;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `[api]` in the engine config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to serve on. Loopback by default: put a proxy in front to expose it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer token for the admin endpoints (`/metrics`, `/v1/...`). Empty = those endpoints
    /// refuse every request.
    #[serde(default)]
    pub admin_token: String,
    /// Requests per second each client (IP address) may make; bursts of the same size.
    #[serde(default = "default_rate")]
    pub rate_per_client: u32,
    /// Bearer token for the IVR endpoint (`/v1/ivr/...`), kept apart from the admin token.
    /// Empty = the IVR endpoint refuses every request.
    #[serde(default)]
    pub ivr_token: String,
    /// The IVR's default menu, in order; a personalised answer moves one node first.
    #[serde(default = "default_menu")]
    pub ivr_menu: Vec<String>,
    /// How long a request waits for the engine before it gets the default menu.
    #[serde(default = "default_ivr_wait", with = "crate::config::duration_serde")]
    pub ivr_wait: std::time::Duration,
    /// Every IVR request is appended here as an `ivr` event (replay it with the other files).
    #[serde(default = "default_ivr_log")]
    pub ivr_log: std::path::PathBuf,
}

fn default_menu() -> Vec<String> {
    ["1", "2", "3", "4", "5", "0"].map(String::from).to_vec()
}
fn default_ivr_wait() -> std::time::Duration {
    std::time::Duration::from_millis(800)
}
fn default_ivr_log() -> std::path::PathBuf {
    "out/ivr_requests.jsonl".into()
}

fn default_listen() -> String {
    "127.0.0.1:8381".into()
}
fn default_rate() -> u32 {
    100
}

/// What `GET /v1/rules` reports about the loaded rule set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RulesInfo {
    /// Checksum of the rule files as loaded (the rule set's version).
    pub version: String,
    pub files: Vec<String>,
    pub rules: usize,
    pub loaded_at: String,
}

type KeyedLimiter = RateLimiter<
    IpAddr,
    governor::state::keyed::DefaultKeyedStateStore<IpAddr>,
    governor::clock::DefaultClock,
    governor::middleware::NoOpMiddleware,
>;

pub struct Admin {
    token: String,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    rules: RulesInfo,
    limiter: KeyedLimiter,
    /// Set once the engine is processing events.
    pub ready: Arc<AtomicBool>,
    ivr_token: String,
    ivr: Option<(Arc<super::ivr::Asks>, Vec<String>, std::time::Duration)>,
    explain: Option<Explain>,
}

/// The way into a live engine for explain requests.
pub struct Explain {
    pub requests: std::sync::mpsc::Sender<crate::engine::ExplainRequest>,
    /// The live source's feed: a blank line wakes it.
    pub wake: std::sync::mpsc::SyncSender<Option<(&'static str, Vec<u8>)>>,
}

impl Admin {
    pub fn new(cfg: &ApiConfig, metrics: metrics_exporter_prometheus::PrometheusHandle, rules: RulesInfo) -> Admin {
        let rate = NonZeroU32::new(cfg.rate_per_client.max(1)).unwrap_or(NonZeroU32::MIN);
        Admin {
            token: cfg.admin_token.clone(),
            metrics,
            rules,
            limiter: RateLimiter::keyed(Quota::per_second(rate)),
            ready: Arc::new(AtomicBool::new(false)),
            ivr_token: cfg.ivr_token.clone(),
            ivr: None,
            explain: None,
        }
    }

    /// Serves `/v1/explain/...` from a live engine.
    pub fn with_explain(mut self, explain: Explain) -> Admin {
        self.explain = Some(explain);
        self
    }

    /// Serves `/v1/ivr/...` from a live engine's requests.
    pub fn with_ivr(mut self, cfg: &ApiConfig, asks: Arc<super::ivr::Asks>) -> Admin {
        self.ivr = Some((asks, cfg.ivr_menu.clone(), cfg.ivr_wait));
        self
    }

    fn answer(&self, req: &Request) -> (&'static str, Response) {
        let path = req.path.as_str();
        match path {
            "/healthz" => return ("healthz", Response::text(200, "ok\n")),
            "/readyz" => {
                return match self.ready.load(Ordering::Relaxed) {
                    true => ("readyz", Response::text(200, "ready\n")),
                    false => ("readyz", Response::text(503, "starting\n")),
                };
            }
            _ => {}
        }
        if let Some(ip) = req.peer.map(|p| p.ip()) {
            if self.limiter.check_key(&ip).is_err() {
                return ("rate_limited", Response::error(429, "too many requests from this client; slow down"));
            }
        }
        if path.starts_with("/v1/ivr/") {
            return ("ivr", Response::error(0, ""));
        }
        if !authorised(req, &self.token) {
            return ("unauthorised", Response::error(401, "missing or wrong bearer token"));
        }
        if path.starts_with("/v1/explain/") {
            return ("explain", Response::error(0, ""));
        }
        let endpoint = match path {
            "/metrics" => "metrics",
            "/v1/rules" => "rules",
            _ => return ("unknown", Response::error(404, "no such endpoint")),
        };
        if req.method != hyper::Method::GET {
            return (endpoint, Response::error(405, "use GET"));
        }
        let resp = match endpoint {
            "metrics" => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: bytes::Bytes::from(self.metrics.render()),
            },
            _ => Response::json(200, &serde_json::to_value(&self.rules).unwrap_or_default()),
        };
        (endpoint, resp)
    }
}

impl Handler for Admin {
    fn handle(&self, req: Request) -> Reply {
        let (endpoint, resp) = self.answer(&req);
        if endpoint == "explain" {
            return self.explain(&req);
        }
        if endpoint != "ivr" {
            crate::telemetry::http_request(endpoint, resp.status);
            return Box::pin(std::future::ready(resp));
        }
        // The IVR: its own token, and a live engine to ask.
        let resp = match (&self.ivr, authorised(&req, &self.ivr_token), req.method == hyper::Method::GET) {
            (_, false, _) => Response::error(401, "missing or wrong bearer token"),
            (_, _, false) => Response::error(405, "use GET"),
            (None, _, _) => Response::error(503, "IVR answers need a live engine (source kind stdin)"),
            (Some((asks, menu, wait)), true, true) => {
                let reply = super::ivr::handle(asks.clone(), menu.clone(), *wait, &req);
                return Box::pin(async move {
                    let resp = reply.await;
                    crate::telemetry::http_request("ivr", resp.status);
                    resp
                });
            }
        };
        crate::telemetry::http_request("ivr", resp.status);
        Box::pin(std::future::ready(resp))
    }
}

impl Admin {
    /// `GET /v1/explain/{msisdn}` (authenticated): the subscriber as the engine holds them now.
    fn explain(&self, req: &Request) -> Reply {
        let done = |r: Response| -> Reply {
            crate::telemetry::http_request("explain", r.status);
            Box::pin(std::future::ready(r))
        };
        if req.method != hyper::Method::GET {
            return done(Response::error(405, "use GET"));
        }
        let Some(m) = crate::util::Msisdn::parse(req.path.trim_start_matches("/v1/explain/")) else {
            return done(Response::error(400, "msisdn must be 5 to 15 digits"));
        };
        let Some(ex) = &self.explain else {
            return done(Response::error(503, "explain needs a live engine (source kind stdin)"));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let sent = ex.requests.send(crate::engine::ExplainRequest { msisdn: m, reply: tx }).is_ok()
            && ex.wake.try_send(Some(("control", Vec::new()))).is_ok();
        if !sent {
            return done(Response::error(503, "the engine is not taking requests"));
        }
        Box::pin(async move {
            let got = tokio::task::spawn_blocking(move || rx.recv_timeout(std::time::Duration::from_secs(2))).await;
            let resp = match got {
                Ok(Ok(mut v)) => {
                    v["msisdn"] = serde_json::Value::from(m.masked());
                    Response::json(200, &v)
                }
                _ => Response::error(503, "the engine did not answer in time"),
            };
            crate::telemetry::http_request("explain", resp.status);
            resp
        })
    }
}

/// `Authorization: Bearer <token>`, compared in constant time; an empty token admits no one.
pub fn authorised(req: &Request, token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    let Some(given) = req.header("authorization").and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request {
        let mut headers = hyper::HeaderMap::new();
        if let Some(a) = auth {
            headers.insert("authorization", a.parse().unwrap());
        }
        Request {
            method: hyper::Method::GET,
            path: "/metrics".into(),
            query: Default::default(),
            headers,
            body: bytes::Bytes::new(),
            peer: None,
        }
    }

    #[test]
    fn only_the_exact_bearer_token_is_admitted() {
        assert!(authorised(&req(Some("Bearer s3cret")), "s3cret"));
        assert!(!authorised(&req(Some("Bearer s3cre")), "s3cret"));
        assert!(!authorised(&req(Some("Basic s3cret")), "s3cret"));
        assert!(!authorised(&req(None), "s3cret"));
        assert!(!authorised(&req(Some("Bearer ")), ""), "an empty configured token admits no one");
    }
}
