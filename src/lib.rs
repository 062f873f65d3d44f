//! tidings: a real-time care and marketing trigger engine for mobile operators.
//!
//! ## One event, from a file to `actions.jsonl`
//!
//! A line of `events.jsonl` is read by [`source`] (files, stdin, the built-in [`generator`],
//! Fluvio topics), which hands it to [`event`]'s decoder: a bad line becomes a dead letter, a
//! good one an [`event::Event`]. The [`engine`] routes it by msisdn to the shard that owns the
//! subscriber, in event time. There [`state`] applies it to the subscriber's windows, location,
//! sequences and timers; the compiled [`rules`] observe it, cancel timers and propose candidate
//! contacts; [`policy`] decides each candidate (exclusions, do-not-disturb, caps, control groups,
//! arbitration, quiet hours, channel capacity) into a decision. The engine puts decisions in
//! output order and hands them to [`sink`]: `actions.jsonl` and `decisions.jsonl`, and, when
//! configured, the outbox and the gateways. [`config`] reads the TOML a run is described by,
//! [`topology`] builds the whole run from it, and the binary's `cli` parses the command line.
//!
//! ## Layers
//!
//! A module uses only modules of its own layer or a lower one, and no two modules use each
//! other, however indirectly (`tests/it/layers.rs` reads this list and checks every path):
//!
//! 1. `util`, `time`, `codec` — stable hashing, masked numbers, inline strings; event time and
//!    durations; the checkpoint byte codec
//! 2. `contact`, `event`, `refdata`, `telemetry`, `http` — the words every stage shares about a
//!    contact (channel, candidate, decision, action); the event kinds and their decoding, dead
//!    letters; subscribers, cells, calendar, stores; metrics and the heartbeat; HTTP server and client
//! 3. `state` — per-subscriber state: windows, location, sequences, timers, contact history;
//!    checkpoints
//! 4. `rules` — rule files: read, collect, compile, evaluate; expressions, templates, and contact
//!    policy as declared
//! 5. `policy` — what stands between a candidate contact and an action
//! 6. `engine` — routing by msisdn to shards, watermarks, batches, deterministic output order;
//!    the write side and the live funnel's counts
//! 7. `generator`, `source`, `sink` — realistic synthetic data; where lines come from; where
//!    actions, decisions and dead letters go, the outbox and the gateways
//! 8. `api`, `packtest`, `report` — the HTTP endpoint's routes (reports, IVR, admin, the funnel;
//!    users and roles, governed deploys of the rule pack and their audit log, the console); the rule
//!    pack's own test cases run through the engine; the campaign report and pack diffs
//! 9. `config` — the engine config (TOML), each section owned by the module it configures
//! 10. `topology` — a whole run built from a config, then run
//! 11. `cli` — the binary: arguments and one file per subcommand

pub mod api;
pub mod codec;
pub mod config;
pub mod contact;
pub mod engine;
pub mod event;
pub mod generator;
pub mod http;
pub mod packtest;
pub mod policy;
pub mod refdata;
pub mod report;
pub mod rules;
pub mod sink;
pub mod source;
pub mod state;
pub mod telemetry;
pub mod time;
pub mod topology;
pub mod util;
