//! The delivery side of a run: the dispatcher that sends what the outbox holds and the
//! endpoint gateways report back to, on a tokio runtime of their own beside the engine's
//! threads.

use super::api::runtime;
use super::error::{Error, doing};
use crate::sink::deliver::{DeliveryConfig, DeliveryStats, Dispatcher, callback_handler};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The dispatcher and the report endpoint, running.
pub struct Delivery {
    rt: tokio::runtime::Runtime,
    closed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<DeliveryStats, crate::sink::deliver::DeliveryError>>,
    server_stop: Arc<tokio::sync::Notify>,
}

impl Delivery {
    /// Starts sending: `more` says the outbox has grown, `stop` ends the run, `feedback` takes
    /// the outcome and reply events to a live source.
    pub fn start(
        cfg: DeliveryConfig,
        offset: chrono::FixedOffset,
        more: Arc<tokio::sync::Notify>,
        stop: Arc<AtomicBool>,
        feedback: Option<crate::source::Feed>,
    ) -> Result<Delivery, Error> {
        let rt = runtime(2, "tidings-delivery")?;
        let (listener, addr) = rt
            .block_on(crate::http::bind(&cfg.listen))
            .map_err(doing(|| format!("listening on {} for delivery reports", cfg.listen)))?;
        let mut cfg = cfg;
        if cfg.public_url.is_none() {
            cfg.public_url = Some(format!("http://{addr}"));
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut dispatcher = {
            let _in_runtime = rt.enter();
            Dispatcher::new(cfg.clone(), tx.clone()).map_err(|e| Error::Refused(e.to_string()))?
        };
        dispatcher.set_offset(offset);
        if let Some(tx) = feedback {
            dispatcher.feed_live(move |line| {
                let _ = tx.send(Some(("outcomes", line.into_bytes())));
            });
        }
        eprintln!("delivery      reports on http://{addr}, outbox {}", cfg.outbox.display());
        let server_stop = Arc::new(tokio::sync::Notify::new());
        let s = server_stop.clone();
        rt.spawn(crate::http::serve(
            listener,
            Arc::new(callback_handler(tx)),
            crate::http::Limits::default(),
            async move { s.notified().await },
        ));
        let closed = Arc::new(AtomicBool::new(false));
        let task = rt.spawn(dispatcher.run(rx, more, closed.clone(), stop));
        Ok(Delivery { rt, closed, task, server_stop })
    }

    /// The input has ended: wait until the outbox is drained and reports are in.
    pub fn finish(self) -> Result<(), Error> {
        self.closed.store(true, Ordering::Relaxed);
        let stats = self.rt.block_on(self.task)?.map_err(|e| Error::Refused(e.to_string()))?;
        self.server_stop.notify_one();
        eprintln!(
            "delivery      accepted {}, rejected {}, expired {}, retries {}, outcomes {}, replies {}, in doubt settled {}{}",
            stats.accepted,
            stats.rejected,
            stats.expired,
            stats.retries,
            stats.outcomes,
            stats.replies,
            stats.settled_in_doubt,
            if stats.no_gateway > 0 {
                format!(", {} with no gateway configured", stats.no_gateway)
            } else {
                String::new()
            }
        );
        self.rt.shutdown_timeout(std::time::Duration::from_secs(1));
        Ok(())
    }
}
