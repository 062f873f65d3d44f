//! Run telemetry: the Prometheus metrics a running engine exposes on `/metrics`, and the
//! engine's heartbeat behind `/readyz`. One function per thing worth counting, so every metric
//! name is written once; hot paths call them once per batch. No label ever carries a subscriber number.
//!
//! Without an installed recorder (tests, `bench`, `replay`) every call is a no-op.

/// Metric names, `tidings_<noun>_<unit>`.
pub mod names {
    pub const EVENTS: &str = "tidings_events_total";
    pub const DEAD_LETTERS: &str = "tidings_dead_letters_total";
    pub const DECISIONS: &str = "tidings_decisions_total";
    pub const ACTIONS: &str = "tidings_actions_total";
    pub const SMS_MESSAGES: &str = "tidings_sms_messages_total";
    pub const DECISION_LATENCY: &str = "tidings_decision_latency_seconds";
    pub const SOURCE_LAG: &str = "tidings_source_lag_seconds";
    pub const WATERMARK: &str = "tidings_watermark_seconds";
    pub const TIMERS_PENDING: &str = "tidings_timers_pending";
    pub const JOURNEY_INSTANCES: &str = "tidings_journey_instances";
    pub const OUTBOX_HELD: &str = "tidings_outbox_held";
    pub const DELIVERIES: &str = "tidings_deliveries_total";
    pub const OUTCOMES: &str = "tidings_outcomes_total";
    pub const REPLIES: &str = "tidings_replies_total";
    pub const OPTOUTS: &str = "tidings_optouts_total";
    pub const OPTOUT_JOURNAL_ERRORS: &str = "tidings_optout_journal_errors_total";
    pub const HTTP_REQUESTS: &str = "tidings_http_requests_total";
    pub const RULES_RELOADS: &str = "tidings_rules_reloads_total";
    pub const RELOAD_DROPPED: &str = "tidings_reload_dropped_total";
    pub const DEPLOY_STEPS: &str = "tidings_deploy_steps_total";
    pub const IVR_STAGE: &str = "tidings_ivr_seconds";
    pub const CHECKPOINTS: &str = "tidings_checkpoints_total";
    pub const CHECKPOINT_BYTES: &str = "tidings_checkpoint_bytes";
    pub const CHECKPOINT_SECONDS: &str = "tidings_checkpoint_write_seconds";
    pub const ENGINE_STALLED: &str = "tidings_engine_stalled_seconds";
    pub const UNKNOWN_SUBSCRIBERS: &str = "tidings_unknown_subscribers";
    pub const UNKNOWN_FORGOTTEN: &str = "tidings_unknown_subscribers_forgotten_total";
    pub const HTTP_CONNECTIONS: &str = "tidings_http_connections";
    pub const HTTP_CONNECTIONS_CLOSED: &str = "tidings_http_connections_closed_total";
    pub const HTTP_ACCEPT_ERRORS: &str = "tidings_http_accept_errors_total";
}

/// The engine's pulse: when it last finished a batch (or a slice of a large step of event time),
/// and whether it has caught up with its input. `/readyz` fails and
/// `tidings_engine_stalled_seconds` grows while input waits and no batch finishes; an engine
/// that is merely waiting for input is not stalled, however long it waits.
#[derive(Debug)]
pub struct Heartbeat {
    epoch: std::time::Instant,
    /// Milliseconds after `epoch` of the last finished batch.
    last: std::sync::atomic::AtomicU64,
    /// The engine said it has nothing more in hand (a live source ran dry).
    caught_up: std::sync::atomic::AtomicBool,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            epoch: std::time::Instant::now(),
            last: Default::default(),
            caught_up: std::sync::atomic::AtomicBool::new(true),
        }
    }
}

impl Heartbeat {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A batch (or slice) finished.
    pub fn beat(&self) {
        self.last.store(self.now(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The engine took an item (`false`) or found nothing more waiting (`true`).
    pub fn caught_up(&self, yes: bool) {
        if yes {
            self.beat();
        }
        self.caught_up.store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// How long input has waited without a batch finishing (zero when caught up).
    /// Also sets `tidings_engine_stalled_seconds` (asked when `/readyz` or `/metrics` is).
    pub fn stalled(&self) -> std::time::Duration {
        let since = match self.caught_up.load(std::sync::atomic::Ordering::Relaxed) {
            true => 0,
            false => self.now().saturating_sub(self.last.load(std::sync::atomic::Ordering::Relaxed)),
        };
        metrics::gauge!(names::ENGINE_STALLED).set(since as f64 / 1e3);
        std::time::Duration::from_millis(since)
    }
}

/// Events taken in, by kind (added per batch).
pub fn events(kind: crate::event::Kind, n: u64) {
    if n > 0 {
        metrics::counter!(names::EVENTS, "kind" => kind.as_str()).increment(n);
    }
}

pub fn dead_letter(reason: crate::event::DeadReason) {
    metrics::counter!(names::DEAD_LETTERS, "reason" => reason.as_str()).increment(1);
}

/// One decision: by rule, mode (`live`, or `shadow` for a rule that is evaluated but never
/// sends), outcome (sent, suppressed, deferred) and, when suppressed, the reason. A shadow
/// rule's would-be actions are `tidings_actions_total{mode="shadow"}`, beside the live ones.
///
/// The counters of one write side: each (rule, outcome, mode) label set is looked up in the
/// recorder once, then its handle is kept, by the decision's rule index (checked against the
/// rule's name: indexes change with the rules), so a decision costs a short scan, not a metric
/// key built and hashed. Made after the recorder is installed (the engine's write side is).
#[derive(Default)]
pub struct DecisionCounters {
    /// By rule index: the handles of its label sets.
    decisions: Vec<Vec<Kept>>,
    /// By channel and mode (live, shadow): a handful, found by a scan.
    actions: Vec<((crate::contact::Channel, bool), metrics::Counter)>,
    /// The messages SMS actions take (each part of a long one is billed), by mode.
    sms_messages: [Option<metrics::Counter>; 2],
}

/// A decision counter's handle: its outcome code, mode (shadow or not) and rule's name.
type Kept = (u8, bool, std::sync::Arc<str>, metrics::Counter);

/// One code per label set of an outcome: sent, deferred (whatever the time), each suppression.
fn outcome_code(o: crate::contact::Outcome) -> u8 {
    use crate::contact::Outcome;
    match o {
        Outcome::Sent => 0,
        Outcome::Deferred(_) => 1,
        Outcome::Suppressed(r) => 2 + r as u8,
    }
}

impl DecisionCounters {
    /// One decision (`tidings_decisions_total`), the action it makes (`tidings_actions_total`)
    /// and, for an SMS, the messages it takes (`tidings_sms_messages_total`).
    pub fn count(&mut self, d: &crate::contact::Decision) {
        use crate::contact::Outcome;
        let code = outcome_code(d.outcome);
        let rule = d.rule as usize;
        if self.decisions.len() <= rule {
            self.decisions.resize_with(rule + 1, Vec::new);
        }
        let kept = &mut self.decisions[rule];
        let found = kept.iter().position(|(c, shadow, name, _)| {
            *c == code && *shadow == d.shadow && (std::sync::Arc::ptr_eq(name, &d.rule_name) || **name == *d.rule_name)
        });
        let at = match found {
            Some(at) => at,
            None => {
                // Another rule at this index (the rules changed): its handles go.
                kept.retain(|(_, _, name, _)| **name == *d.rule_name);
                let (outcome, reason) = match d.outcome {
                    Outcome::Sent => ("sent", ""),
                    Outcome::Suppressed(r) => ("suppressed", r.as_str()),
                    Outcome::Deferred(_) => ("deferred", ""),
                };
                let labels = [
                    ("rule", d.rule_name.to_string()),
                    ("mode", d.mode().into()),
                    ("outcome", outcome.into()),
                    ("reason", reason.into()),
                ];
                kept.push((code, d.shadow, d.rule_name.clone(), metrics::counter!(names::DECISIONS, &labels)));
                kept.len() - 1
            }
        };
        kept[at].3.increment(1);
        if d.would_send() {
            let mode = d.mode();
            let channel = d.channel;
            let key = (channel, d.shadow);
            match self.actions.iter().find(|(k, _)| *k == key) {
                Some((_, counter)) => counter.increment(1),
                None => {
                    let counter = metrics::counter!(names::ACTIONS, "channel" => channel.as_str(), "mode" => mode);
                    counter.increment(1);
                    self.actions.push((key, counter));
                }
            }
            if channel == crate::contact::Channel::Sms {
                self.sms_messages[usize::from(d.shadow)]
                    .get_or_insert_with(|| metrics::counter!(names::SMS_MESSAGES, "mode" => mode))
                    .increment(d.sms_messages());
            }
        }
    }
}

/// A refusal made by reply, by what it refuses (`campaign`, `marketing`, `all`).
pub fn optout(scope: crate::contact::OptOutScope) {
    metrics::counter!(names::OPTOUTS, "scope" => scope.as_str()).increment(1);
}

/// A refusal that could not be journaled (it holds in the state, which is checkpointed; the
/// journal that should also keep it did not): said on stderr, masked, and counted.
pub fn optout_journal_error(m: crate::util::Msisdn, e: &std::io::Error) {
    eprintln!("tidings: could not journal the opt-out of {}: {e}", m.masked());
    metrics::counter!(names::OPTOUT_JOURNAL_ERRORS).increment(1);
}

/// Time from a decoded event to its decisions: the histogram's handle, taken once a batch
/// (building its key for every timed event cost more than recording).
pub fn decision_latency() -> metrics::Histogram {
    metrics::histogram!(names::DECISION_LATENCY)
}

/// How far event time trails the wall clock (a live source falling behind), and the watermark.
pub fn progress(max_event_ms: i64, watermark_ms: i64) {
    let now = chrono::Utc::now().timestamp_millis();
    metrics::gauge!(names::SOURCE_LAG).set((now - max_event_ms) as f64 / 1e3);
    metrics::gauge!(names::WATERMARK).set(watermark_ms as f64 / 1e3);
}

/// Timers (delays, absence checks, deferred contacts) waiting in one shard.
pub fn timers_pending(shard: usize, n: usize) {
    metrics::gauge!(names::TIMERS_PENDING, "shard" => shard.to_string()).set(n as f64);
}

/// Journey instances waiting at one step of one journey in one shard.
pub fn journey_instances(shard: usize, journey: String, step: String, n: u64) {
    metrics::gauge!(names::JOURNEY_INSTANCES, "journey" => journey, "step" => step, "shard" => shard.to_string())
        .set(n as f64);
}

/// Actions the dispatcher holds (queued, in flight, waiting to retry, in doubt).
pub fn outbox_held(n: usize) {
    metrics::gauge!(names::OUTBOX_HELD).set(n as f64);
}

/// One gateway answer: `accepted`, `retry`, `rejected`, `in_doubt`, `expired`.
pub fn delivery(channel: &str, result: &'static str) {
    metrics::counter!(names::DELIVERIES, "channel" => channel.to_owned(), "result" => result).increment(1);
}

pub fn outcome(channel: &str, status: &'static str) {
    metrics::counter!(names::OUTCOMES, "channel" => channel.to_owned(), "status" => status).increment(1);
}

/// One subscriber's reply taken from a gateway: `recorded` (a `reply` event), `again` (a
/// redelivery passed over) or `unreadable` (no subscriber number).
pub fn reply(gateway: &'static str, result: &'static str) {
    metrics::counter!(names::REPLIES, "gateway" => gateway, "result" => result).increment(1);
}

/// One HTTP request answered: endpoint (the route, never the raw path) and status.
pub fn http_request(endpoint: &'static str, status: u16) {
    metrics::counter!(names::HTTP_REQUESTS, "endpoint" => endpoint, "status" => status.to_string()).increment(1);
}

/// Where an IVR request's time goes inside tidings: `queued` (asked until the engine took it),
/// `answered` (asked until its decisions were handed back to the HTTP side).
pub fn ivr_stage(stage: &'static str, d: std::time::Duration) {
    metrics::histogram!(names::IVR_STAGE, "stage" => stage).record(d.as_secs_f64());
}

/// One reload of the rule files: `ok` or `failed` (the old rules stayed).
pub fn rules_reload(ok: bool) {
    metrics::counter!(names::RULES_RELOADS, "result" => if ok { "ok" } else { "failed" }).increment(1);
}

/// What a reload dropped on one shard: journey instances waiting at a step the new rules do not
/// have, and pending timers of rules they do not have (`what`: `journeys`, `timers`). Counted
/// only when one was.
pub fn reload_dropped(journeys: u64, timers: u64) {
    for (what, n) in [("journeys", journeys), ("timers", timers)] {
        if n > 0 {
            metrics::counter!(names::RELOAD_DROPPED, "what" => what).increment(n);
        }
    }
}

/// One step of the deploy flow (`submit`, `approve`, `reject`, `deploy`, `rollback`), `ok` or
/// `refused`, as the audit log has it.
pub fn deploy_step(step: &'static str, ok: bool) {
    metrics::counter!(names::DEPLOY_STEPS, "step" => step, "outcome" => if ok { "ok" } else { "refused" }).increment(1);
}

/// Subscribers the reference data does not know, held (`added` more, negative: fewer) and
/// forgotten past `[engine] unknown_subscribers`. Called only when one is added or forgotten.
pub fn unknown_subscribers(added: i64, forgotten: u64) {
    if added != 0 {
        metrics::gauge!(names::UNKNOWN_SUBSCRIBERS).increment(added as f64);
    }
    if forgotten > 0 {
        metrics::counter!(names::UNKNOWN_FORGOTTEN).increment(forgotten);
    }
}

/// Connections open on the HTTP endpoint.
pub fn http_connections(n: usize) {
    metrics::gauge!(names::HTTP_CONNECTIONS).set(n as f64);
}

/// A connection the server closed or refused (`header_timeout`, `idle_timeout`, `evicted`,
/// `refused`).
pub fn http_connection_closed(reason: &'static str) {
    metrics::counter!(names::HTTP_CONNECTIONS_CLOSED, "reason" => reason).increment(1);
}

/// A failed `accept` (`emfile`, `enfile`, `enobufs`, `enomem`, `other`).
pub fn http_accept_error(kind: &'static str) {
    metrics::counter!(names::HTTP_ACCEPT_ERRORS, "kind" => kind).increment(1);
}

/// One checkpoint committed: its size and the time from its batch boundary to the rename.
pub fn checkpoint(bytes: u64, took: std::time::Duration) {
    metrics::counter!(names::CHECKPOINTS).increment(1);
    metrics::gauge!(names::CHECKPOINT_BYTES).set(bytes as f64);
    metrics::histogram!(names::CHECKPOINT_SECONDS).record(took.as_secs_f64());
}

/// Installs the Prometheus recorder for this process and returns the handle `/metrics` renders.
/// Histograms are exposed as summaries with these quantiles, but for the IVR timings, which are
/// histograms with fixed buckets.
pub fn install_prometheus() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_quantiles(&[0.5, 0.9, 0.99, 0.999, 1.0])
        .map_err(|e| e.to_string())?
        // IVR timings as a histogram over the whole run (a summary only covers its last window):
        // the IVR's answer budget is 2 ms, so the buckets are fine below that.
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(names::IVR_STAGE.into()),
            &[
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.001_5, 0.002, 0.003, 0.005, 0.007_5, 0.01,
                0.015, 0.025, 0.05, 0.1, 1.0,
            ],
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("installing the metrics recorder: {e}"))
}
