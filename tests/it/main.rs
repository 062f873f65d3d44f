//! The integration test binary: one module per area.

mod admin;
mod checkpoint;
mod cli;
mod corpus;
mod crash;
mod decode;
mod delivery;
mod determinism;
mod diagnostics;
mod engine;
mod fluvio;
mod future;
mod fuzz;
mod http_limits;
mod ivr;
mod kannel;
mod mangled;
mod pack;
mod policy;
mod reload;
mod report;
mod rulefiles;
mod scale;
mod smpp;
mod sms;
mod support;
