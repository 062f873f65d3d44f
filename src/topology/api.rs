//! The admin endpoint of a run (`/metrics`, health, rules, IVR, explain, reload) on a small
//! tokio runtime of its own, beside the engine's threads, for the life of the run.

use super::error::{Error, doing};
use crate::api::admin::{Admin, ApiConfig, Explain};
use crate::api::ivr::Asks;
use crate::api::reload::{Reloader, RulesInfo};
use crate::config::Config;
use crate::rules::RuleSet;
use crate::telemetry::Heartbeat;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A tokio runtime of `workers` named threads, beside the engine's own.
pub(super) fn runtime(workers: usize, name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    runtime_with(workers, name, 0)
}

/// [`runtime`], its threads at SCHED_FIFO `realtime` (0: the ordinary scheduler).
fn runtime_with(workers: usize, name: &str, realtime: u8) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .on_thread_start(move || crate::util::realtime(realtime, "api"))
        .enable_all()
        .build()
}

/// What the rules endpoint says about a rule set.
pub(super) fn rules_info(rules: &RuleSet) -> RulesInfo {
    RulesInfo {
        version: rules.version.to_string(),
        files: rules.files.iter().map(|f| f.to_string()).collect(),
        rules: rules.rules.len(),
        loaded_at: chrono::Utc::now().to_rfc3339(),
        pack: None,
    }
}

/// What the endpoint serves besides metrics and health, when the source is live.
#[derive(Default)]
pub(super) struct Services {
    pub asks: Option<Arc<Asks>>,
    pub explain: Option<Explain>,
    pub reloader: Option<Arc<Reloader>>,
    pub deploy: Option<Arc<crate::api::deploy::Deploy>>,
    pub heartbeat: Option<Arc<Heartbeat>>,
    /// The campaigns and their budgets spent, as the engine's write side publishes them.
    pub campaigns: Option<Arc<crate::policy::budget::CampaignBook>>,
    /// The funnel's counts, as the engine's write side publishes them.
    pub funnel: Option<Arc<crate::engine::funnel::FunnelBook>>,
    /// The journey instances by step, as the shards publish them.
    pub journeys: Option<Arc<crate::engine::board::JourneyBoard>>,
}

/// The admin endpoint on a small runtime of its own, for the life of a run.
pub(super) struct ApiServer {
    rt: Option<tokio::runtime::Runtime>,
    stop: Arc<tokio::sync::Notify>,
}

impl ApiServer {
    pub(super) fn start(
        cfg: &ApiConfig,
        rules: &RuleSet,
        services: Services,
        run: &Config,
    ) -> Result<ApiServer, Error> {
        let Services { asks, explain, reloader, deploy, heartbeat, campaigns, funnel, journeys } = services;
        let (scale, realtime) = (&run.scale, run.engine.realtime_priority);
        let metrics = crate::telemetry::install_prometheus().map_err(|e| Error::Refused(e.to_string()))?;
        let users = crate::api::users::Users::new(&cfg.admin_token, &cfg.users).map_err(Error::Refused)?;
        if users.is_empty() {
            eprintln!("api           no admin_token or users configured: /metrics and /v1/* refuse every request");
        }
        let base = crate::api::console::check_base_path(&cfg.base_path).map_err(Error::Refused)?;
        let mut admin = Admin::new(cfg, users, metrics, rules_info(rules)).with_base_path(base.clone());
        if let Some(a) = asks {
            admin = admin.with_ivr(cfg, a);
            if scale.is_shared() {
                let (owns, partitions) = (scale.owner(), scale.partitions);
                admin = admin.with_elsewhere(Arc::new(move |m| {
                    (!owns(m)).then(|| crate::source::scale::partition_of(m, partitions))
                }));
            }
        }
        if let Some(e) = explain {
            admin = admin.with_explain(e);
        }
        if let Some(r) = &reloader {
            admin = admin.with_reloader(r.clone());
        }
        if let Some(c) = campaigns {
            admin = admin.with_campaigns(c);
        }
        if let Some(f) = funnel {
            admin = admin.with_funnel(f);
        }
        if let Some(j) = journeys {
            admin = admin.with_journeys(j);
        }
        let governed = deploy.is_some();
        if let Some(d) = deploy {
            admin = admin.with_deploy(d);
        }
        if let Some(h) = heartbeat {
            admin = admin.with_heartbeat(h, run.stall_after().map_err(|e| Error::Refused(e.to_string()))?);
        }
        let rt = runtime_with(1, "tidings-api", realtime)?;
        let (listener, addr) = rt
            .block_on(crate::http::bind(&cfg.listen))
            .map_err(doing(|| format!("listening on {} for the admin API", cfg.listen)))?;
        eprintln!(
            "api           http://{addr} (/metrics, /healthz, /readyz, /v1/rules, /v1/campaigns, /v1/funnel, /v1/journeys, console at {base}/console/)"
        );
        admin.ready.store(true, Ordering::Relaxed);
        let stop = Arc::new(tokio::sync::Notify::new());
        let s = stop.clone();
        rt.spawn(crate::http::serve(listener, Arc::new(admin), cfg.limits(), async move { s.notified().await }));
        if let Some(r) = reloader.filter(|_| !governed) {
            // Hot reload on SIGHUP and when a rule file changes (not when deploys are governed:
            // then a change goes live only through the deploy flow).
            rt.spawn(crate::api::reload::watch_rules(r, std::time::Duration::from_secs(2)));
        }
        Ok(ApiServer { rt: Some(rt), stop })
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
        }
    }
}
