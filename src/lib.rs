//! tidings: a real-time care and marketing trigger engine for mobile operators.
//!
//! Layout, in the order an event travels:
//!
//! - [`source`]    where lines come from: files, stdin, the built-in generator, Fluvio topics
//! - [`event`]     the event kinds and their decoding; dead letters
//! - [`refdata`]   subscribers, cells, calendar, stores
//! - [`engine`]    routing by msisdn to shards, watermarks, deterministic output order
//! - [`state`]     per-subscriber state: windows, location, sequences, timers; checkpoints
//! - [`rules`]     rule files: load -> check -> compile -> evaluate; expressions and templates
//! - [`policy`]    what stands between a candidate contact and an action
//! - [`sink`]      actions, decisions and dead letters out; the outbox and the gateways
//! - [`api`]       tidings' HTTP endpoint: gateway reports back (later IVR and admin)
//! - [`config`]    the engine config (TOML), scale-out and Fluvio settings
//! - [`generator`] realistic synthetic reference data and event streams
//! - [`telemetry`] counters the run reports
//! - [`report`]    the campaign report (replay --report) and pack diffs (diff): HTML and JSON
//! - [`topology`]  a whole run built from a config (every mistake in it said at once), then run
//! - [`util`]      stable hashing, masked subscriber numbers, durations

pub mod api;
pub mod config;
pub mod engine;
pub mod event;
pub mod generator;
pub mod policy;
pub mod refdata;
pub mod report;
pub mod rules;
pub mod sink;
pub mod source;
pub mod state;
pub mod telemetry;
pub mod topology;
pub mod util;
