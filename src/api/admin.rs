//! tidings' HTTP endpoint for operations staff, their monitoring and the IVR: `/metrics`
//! (Prometheus text format), `/healthz` and `/readyz`, `GET /v1/rules` (what is loaded),
//! `GET /v1/campaigns` (owners, dates, status, budgets and what they have spent),
//! `GET /v1/funnel` (per day, rule and campaign, the live funnel: see [`super::funnel`]),
//! `GET /v1/journeys` (journey instances in progress by step),
//! `GET /v1/ivr/{msisdn}` (see [`super::ivr`]), with `[api.deploy]` the deploy flow and its
//! audit log (see [`super::deploy`]), and the console's files at `/console/` (see
//! [`super::console`]; `[api] base_path` when a reverse proxy serves all of it under a prefix).
//!
//! Safe by default: the server binds to loopback unless told otherwise; every endpoint but the
//! two health checks needs credentials — the IVR's own token, or a user's (see [`super::users`]:
//! the admin token is user `admin`; any role may read, reload needs admin); each client (by IP
//! address) gets a request rate (`governor`, keyed), beyond which it is answered 429; bodies are
//! size-limited by the server. Nothing here prints or labels a subscriber number.

use super::reload::{Reloader, RulesInfo, Swapped};
use crate::http::{Handler, Reply, Request, Response};
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
    #[serde(default = "default_ivr_wait", with = "crate::time::duration_serde")]
    pub ivr_wait: std::time::Duration,
    /// Every IVR request is appended here as an `ivr` event (replay it with the other files).
    #[serde(default = "default_ivr_log")]
    pub ivr_log: std::path::PathBuf,
    /// Connection limits (see [`super::conn::Limits`] for the defaults and why).
    #[serde(default = "crate::http::conn::default_header", with = "crate::time::duration_serde")]
    pub header_read_timeout: std::time::Duration,
    #[serde(default = "crate::http::conn::default_idle", with = "crate::time::duration_serde")]
    pub idle_timeout: std::time::Duration,
    #[serde(default = "crate::http::conn::default_max")]
    pub max_connections: usize,
    /// Users of the admin endpoints and their roles (`admin_token` is user `admin`, an admin).
    #[serde(default)]
    pub users: Vec<super::users::UserConfig>,
    /// The prefix a reverse proxy serves this endpoint under ("/tidings"; "" = none): the
    /// console builds its URLs under it, and requests are taken with it or without it.
    #[serde(default)]
    pub base_path: String,
    /// Governed deploys of the rule pack: submit, checks, approval, deploy, rollback, audit log.
    /// Without it, a valid rule file goes live when it is saved or reloaded, as before.
    #[serde(default)]
    pub deploy: Option<super::deploy::DeployConfig>,
}

impl ApiConfig {
    /// The server's connection limits.
    pub fn limits(&self) -> crate::http::Limits {
        crate::http::Limits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
        }
    }
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

type KeyedLimiter = RateLimiter<
    IpAddr,
    governor::state::keyed::DefaultKeyedStateStore<IpAddr>,
    governor::clock::DefaultClock,
    governor::middleware::NoOpMiddleware,
>;

pub struct Admin {
    users: super::users::Users,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    rules: RulesInfo,
    limiter: KeyedLimiter,
    /// Set once the engine is processing events.
    pub ready: Arc<AtomicBool>,
    ivr_token: String,
    ivr: Option<(Arc<super::ivr::Asks>, Vec<String>, std::time::Duration)>,
    /// With several instances (`[scale]`): the partition of a caller this instance does not own.
    elsewhere: Option<Arc<super::ivr::Elsewhere>>,
    explain: Option<Explain>,
    reloader: Option<Arc<Reloader>>,
    deploy: Option<Arc<super::deploy::Deploy>>,
    /// The engine's pulse, and how long input may wait without a batch finishing before
    /// `/readyz` fails.
    heartbeat: Option<(Arc<crate::telemetry::Heartbeat>, std::time::Duration)>,
    /// `GET /v1/campaigns`: owners, dates, status, budgets and what they have spent.
    campaigns: Option<Arc<crate::policy::budget::CampaignBook>>,
    /// `GET /v1/funnel`: the live funnel per day, rule and campaign.
    funnel: Option<Arc<crate::engine::funnel::FunnelBook>>,
    /// `GET /v1/journeys`: journey instances in progress by step.
    journeys: Option<Arc<crate::engine::board::JourneyBoard>>,
    /// `[api] base_path`, checked ([`super::console::check_base_path`]).
    base: String,
}

/// The way into a live engine for explain requests.
pub struct Explain {
    pub requests: std::sync::mpsc::Sender<crate::engine::ExplainRequest>,
    /// The live source's feed: a blank line wakes it.
    pub wake: crate::source::Feed,
}

impl Admin {
    /// The endpoint for `cfg`, its users already checked ([`super::users::Users::new`]).
    pub fn new(
        cfg: &ApiConfig,
        users: super::users::Users,
        metrics: metrics_exporter_prometheus::PrometheusHandle,
        rules: RulesInfo,
    ) -> Admin {
        let rate = NonZeroU32::new(cfg.rate_per_client.max(1)).unwrap_or(NonZeroU32::MIN);
        Admin {
            users,
            metrics,
            rules,
            limiter: RateLimiter::keyed(Quota::per_second(rate)),
            ready: Arc::new(AtomicBool::new(false)),
            ivr_token: cfg.ivr_token.clone(),
            ivr: None,
            elsewhere: None,
            explain: None,
            reloader: None,
            deploy: None,
            heartbeat: None,
            campaigns: None,
            funnel: None,
            journeys: None,
            base: String::new(),
        }
    }

    /// Serves `GET /v1/journeys` from what the shards publish.
    pub fn with_journeys(mut self, board: Arc<crate::engine::board::JourneyBoard>) -> Admin {
        self.journeys = Some(board);
        self
    }

    /// Serves `GET /v1/funnel` from what the engine publishes.
    pub fn with_funnel(mut self, book: Arc<crate::engine::funnel::FunnelBook>) -> Admin {
        self.funnel = Some(book);
        self
    }

    /// Serves under a reverse proxy's prefix (checked by [`super::console::check_base_path`]).
    pub fn with_base_path(mut self, base: String) -> Admin {
        self.base = base;
        self
    }

    /// Serves `GET /v1/campaigns` from what the engine publishes.
    pub fn with_campaigns(mut self, book: Arc<crate::policy::budget::CampaignBook>) -> Admin {
        self.campaigns = Some(book);
        self
    }

    /// Serves the deploy flow (`/v1/deploy/...`) and the audit log (`/v1/audit`); the rule files
    /// no longer go live by `POST /v1/rules/reload`.
    pub fn with_deploy(mut self, d: Arc<super::deploy::Deploy>) -> Admin {
        self.deploy = Some(d);
        self
    }

    /// Serves `POST /v1/rules/reload` and reports the current set on `GET /v1/rules`.
    pub fn with_reloader(mut self, r: Arc<Reloader>) -> Admin {
        self.reloader = Some(r);
        self
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

    /// `/readyz` also fails while the engine is stalled (input waiting, no batch finished for
    /// `after`).
    pub fn with_heartbeat(mut self, heartbeat: Arc<crate::telemetry::Heartbeat>, after: std::time::Duration) -> Admin {
        self.heartbeat = Some((heartbeat, after));
        self
    }

    /// This instance is one of several: a caller it does not own is answered at once with 421
    /// and the caller's partition, for the IVR to ask the instance that owns it.
    pub fn with_elsewhere(mut self, elsewhere: Arc<super::ivr::Elsewhere>) -> Admin {
        self.elsewhere = Some(elsewhere);
        self
    }

    /// Routes a request: answered here at once, or handed to the endpoint that may wait on the
    /// engine (IVR, explain, reload).
    fn route(&self, req: &Request) -> Route {
        use Route::Now;
        let path = req.path.as_str();
        match path {
            "/healthz" => return Now("healthz", Response::text(200, "ok\n")),
            "/readyz" => {
                if !self.ready.load(Ordering::Relaxed) {
                    return Now("readyz", Response::text(503, "starting\n"));
                }
                if let Some((h, after)) = &self.heartbeat {
                    let stalled = h.stalled();
                    if stalled >= *after {
                        let msg = format!(
                            "stalled: input has waited {} without a batch finishing\n",
                            crate::time::format_span(stalled.as_millis() as i64)
                        );
                        return Now("readyz", Response::text(503, msg));
                    }
                }
                return Now("readyz", Response::text(200, "ready\n"));
            }
            _ => {}
        }
        if let Some(ip) = req.peer.map(|p| p.ip()) {
            if self.limiter.check_key(&ip).is_err() {
                return Now("rate_limited", Response::error(429, "too many requests from this client; slow down"));
            }
        }
        // The console's files are public; what it shows comes from /v1 with the user's credentials.
        if let Some(file) = super::console::file(path, &self.base).filter(|_| req.method == hyper::Method::GET) {
            return Now("console", file);
        }
        // The IVR has its own token, checked by its endpoint.
        if path.starts_with("/v1/ivr/") {
            return Route::Ivr;
        }
        // Every role may read; what else a user may do is the endpoint's to say.
        let Some(user) = self.users.identify(req) else {
            return Now("unauthorised", Response::error(401, "missing or wrong credentials (bearer token or Basic)"));
        };
        if path.starts_with("/v1/explain/") {
            return Route::Explain;
        }
        if path == "/v1/audit" || path == "/v1/deploy" || path.starts_with("/v1/deploy/") {
            return match &self.deploy {
                Some(_) => Route::Deploy(user),
                None => Now(
                    "deploy",
                    Response::error(404, "governed deploys need [api.deploy] and a live engine (source kind stdin)"),
                ),
            };
        }
        if path == "/v1/rules/reload" {
            if user.role < super::users::Role::Admin {
                return Now("reload", Response::error(403, "reloading the rule files needs the admin role"));
            }
            if self.deploy.is_some() {
                let why = "deploys are governed ([api.deploy]): submit the change to /v1/deploy/changes";
                return Now("reload", Response::error(409, why));
            }
            return Route::Reload;
        }
        let endpoint = match path {
            "/metrics" => "metrics",
            "/v1/rules" => "rules",
            "/v1/campaigns" => "campaigns",
            "/v1/funnel" => "funnel",
            "/v1/journeys" => "journeys",
            "/v1/whoami" => "whoami",
            _ => return Now("unknown", Response::error(404, "no such endpoint")),
        };
        if req.method != hyper::Method::GET {
            return Now(endpoint, Response::error(405, "use GET"));
        }
        let resp = match endpoint {
            "metrics" => {
                // Brings `tidings_engine_stalled_seconds` up to date before it is read.
                if let Some((h, _)) = &self.heartbeat {
                    h.stalled();
                }
                Response {
                    status: 200,
                    content_type: "text/plain; version=0.0.4; charset=utf-8",
                    body: bytes::Bytes::from(self.metrics.render()),
                }
            }
            "campaigns" => match &self.campaigns {
                Some(book) => Response::json(200, &serde_json::to_value(book.view()).unwrap_or_default()),
                None => Response::error(503, "campaigns are served by a running engine"),
            },
            "funnel" => match (&self.funnel, super::funnel::Query::parse(&req.query)) {
                (None, _) => Response::error(503, "the funnel is served by a running engine"),
                (Some(_), Err(e)) => Response::error(400, &e),
                (Some(book), Ok(q)) => Response::json(200, &book.read(|t| super::funnel::view(t, &q))),
            },
            "journeys" => match &self.journeys {
                Some(board) => Response::json(200, &serde_json::json!({"journeys": board.view()})),
                None => Response::error(503, "journeys are served by a running engine"),
            },
            "whoami" => Response::json(200, &serde_json::json!(user)),
            _ => {
                let info = match &self.reloader {
                    Some(r) => r.current.lock().unwrap_or_else(|p| p.into_inner()).0.clone(),
                    None => self.rules.clone(),
                };
                Response::json(200, &serde_json::to_value(&info).unwrap_or_default())
            }
        };
        Now(endpoint, resp)
    }
}

/// Where a request goes: an answer made at once (with the endpoint's name for the metrics), or
/// an endpoint that may wait on the engine.
enum Route {
    Now(&'static str, Response),
    Ivr,
    Explain,
    Reload,
    Deploy(super::users::User),
}

/// A submitted rule-pack change (or a draft checked) may carry whole files: the shipped pack is
/// some 200 KiB.
const MAX_SUBMIT: usize = 4 << 20;

impl Handler for Admin {
    /// [`MAX_SUBMIT`] for a submit by an author (or above) with governed deploys; the server's
    /// limit for everything else, so an unauthenticated client still cannot send more.
    fn max_body(&self, head: &hyper::http::request::Parts) -> usize {
        let path = super::console::local(head.uri.path(), &self.base);
        let drafts = matches!(path, "/v1/deploy/changes" | "/v1/deploy/validate" | "/v1/deploy/try");
        let submit = self.deploy.is_some() && head.method == hyper::Method::POST && drafts;
        let author = || {
            let auth = head.headers.get("authorization").and_then(|h| h.to_str().ok());
            auth.and_then(|a| self.users.identify_by(a)).is_some_and(|u| u.role >= super::users::Role::Author)
        };
        if submit && author() { MAX_SUBMIT } else { crate::http::MAX_BODY }
    }

    fn handle(&self, mut req: Request) -> Reply {
        let local = super::console::local(&req.path, &self.base);
        if local.len() != req.path.len() {
            req.path = local.to_string();
        }
        match self.route(&req) {
            Route::Now(endpoint, resp) => {
                crate::telemetry::http_request(endpoint, resp.status);
                Box::pin(std::future::ready(resp))
            }
            Route::Explain => self.explain(&req),
            Route::Reload => self.reload(&req),
            Route::Deploy(user) => self.deploy(user, req),
            Route::Ivr => self.ivr(&req),
        }
    }
}

impl Admin {
    /// `GET /v1/ivr/{msisdn}`: its own token, and a live engine to ask.
    fn ivr(&self, req: &Request) -> Reply {
        let resp = match (&self.ivr, authorised(req, &self.ivr_token), req.method == hyper::Method::GET) {
            (_, false, _) => Response::error(401, "missing or wrong bearer token"),
            (_, _, false) => Response::error(405, "use GET"),
            (None, _, _) => Response::error(503, "IVR answers need a live engine (source kind stdin)"),
            (Some((asks, menu, wait)), true, true) => {
                let reply = super::ivr::handle(asks.clone(), menu.clone(), *wait, self.elsewhere.as_deref(), req);
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
    /// `POST /v1/rules/reload` (authenticated).
    fn reload(&self, req: &Request) -> Reply {
        let done = |r: Response| -> Reply {
            crate::telemetry::http_request("reload", r.status);
            Box::pin(std::future::ready(r))
        };
        if req.method != hyper::Method::POST {
            return done(Response::error(405, "use POST"));
        }
        let Some(r) = self.reloader.clone() else {
            return done(Response::error(503, "reload needs a live engine (source kind stdin)"));
        };
        Box::pin(async move {
            let resp = match tokio::task::spawn_blocking(move || r.reload()).await {
                Ok(Ok(Swapped { previous, info, carried })) => {
                    let carried = carried.report();
                    Response::json(
                        200,
                        &serde_json::json!({"reloaded": true, "previous": previous, "version": info.version, "rules": info.rules, "carried": carried}),
                    )
                }
                Ok(Err(diags)) if !diags.is_empty() => Response::json(
                    422,
                    &serde_json::json!({
                        "reloaded": false,
                        "error": "the rule files have errors; the running rules stay",
                        "diagnostics": diags,
                        "rendered": diags.iter().map(|d| d.render()).collect::<String>(),
                    }),
                ),
                _ => Response::error(503, "the engine is not taking a new rule set"),
            };
            crate::telemetry::http_request("reload", resp.status);
            resp
        })
    }

    /// The deploy flow and the audit log, off the async runtime (checks compile and replay).
    fn deploy(&self, user: super::users::User, req: Request) -> Reply {
        let Some(d) = self.deploy.clone() else {
            return Box::pin(std::future::ready(Response::error(404, "governed deploys are not configured")));
        };
        Box::pin(async move {
            let resp = match tokio::task::spawn_blocking(move || d.handle(&user, &req)).await {
                Ok(r) => r,
                Err(_) => Response::error(500, "the deploy step failed"),
            };
            crate::telemetry::http_request("deploy", resp.status);
            resp
        })
    }

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
            query_string: String::new(),
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
