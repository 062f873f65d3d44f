//! Helpers: run JSON lines through a rule pack written inline.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tidings::contact::Decision;
use tidings::engine::{self, EngineOptions, Summary};
use tidings::event::{DeadLetter, Decoder};
use tidings::refdata::{RefData, SubscriberRecord, Subscribers};
use tidings::rules::{self, LoadOptions};
use tidings::sink::Memory;

pub struct Run {
    pub decisions: Vec<Decision>,
    pub dead: Vec<DeadLetter>,
    pub summary: Summary,
}

/// A usage record: a local voice call the subscriber made, charged `fen`.
pub fn charged_call(ts: String, msisdn: String, fen: usize) -> String {
    format!(
        r#"{{"kind":"usage","ts":"{ts}","msisdn":"{msisdn}","service":"voice","direction":"mo","scope":"local","charge_fen":{fen}}}"#
    )
}

impl Run {
    /// Asserts that `other` decided what this run did: the same contacts (time, number, rule,
    /// outcome), in the same order; `what` names the comparison.
    pub fn assert_same_decisions(&self, other: &Run, what: &str) {
        let decided = |r: &Run| {
            r.decisions.iter().map(|d| (d.ts, d.msisdn, d.rule_name.to_string(), d.outcome)).collect::<Vec<_>>()
        };
        let (a, b) = (decided(self), decided(other));
        let first = a.iter().zip(&b).position(|(x, y)| x != y);
        assert!(
            first.is_none() && a.len() == b.len(),
            "{what}: {} against {} decisions, first apart at {:?}",
            a.len(),
            b.len(),
            first.map(|k| (&a[k], &b[k]))
        );
    }

    pub fn rules_fired(&self) -> Vec<(String, String)> {
        self.decisions
            .iter()
            .map(|d| (d.rule_name.to_string(), tidings::time::format_ts(d.ts, EngineOptions::default().offset)))
            .collect()
    }
}

/// Cells and a store around Beijing West station and a venue, as the rule tests use.
pub fn refdata() -> RefData {
    let mut rd = RefData::default();
    rd.add_store("S002", "北京西站营业厅", "", 39.8960, 116.3230);
    rd.add_cell("home", "住宅", 39.9042, 116.4074, &["residential".to_string()]);
    rd.add_cell("station1", "北京西站-1", 39.8946, 116.3214, &["railway_station".to_string()]);
    rd.add_cell("station2", "北京西站-2", 39.8950, 116.3220, &["railway_station".to_string()]);
    rd.add_cell("venue1", "五棵松-1", 39.9070, 116.2740, &["venue:wukesong".to_string()]);
    rd.add_cell("venue2", "五棵松-2", 39.9075, 116.2750, &["venue:wukesong".to_string()]);
    rd.finish();
    rd
}

pub fn subscriber(json: &str) -> SubscriberRecord {
    SubscriberRecord::from_json_line(json).expect("valid subscriber")
}

pub fn run_with(rules_yaml: &str, subs: &[&str], lines: &[String], opts: EngineOptions) -> Run {
    run_on(refdata(), rules_yaml, subs, lines, opts)
}

pub fn run_on(rd: RefData, rules_yaml: &str, subs: &[&str], lines: &[String], opts: EngineOptions) -> Run {
    run_lines(rd, rules_yaml, subs, lines.iter().map(|l| (l.as_str(), false)), opts)
}

/// As [`run_on`], with each line marked urgent (`true`: a request someone waits on, as the
/// live source's priority lane gives it) or not.
pub fn run_marked(rules_yaml: &str, subs: &[&str], lines: &[(String, bool)]) -> Run {
    run_lines(
        refdata(),
        rules_yaml,
        subs,
        lines.iter().map(|(l, urgent)| (l.as_str(), *urgent)),
        EngineOptions::default(),
    )
}

fn run_lines<'a>(
    rd: RefData,
    rules_yaml: &str,
    subs: &[&str],
    lines: impl Iterator<Item = (&'a str, bool)>,
    opts: EngineOptions,
) -> Run {
    let loaded = rules::compile(vec![("t.yaml".into(), rules_yaml.into())], Some(&rd), &LoadOptions::default());
    let errs: Vec<String> = loaded.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render()).collect();
    let set = loaded.rules.unwrap_or_else(|| panic!("rules do not compile:\n{}", errs.join("\n")));
    let mut subscribers = Subscribers::new();
    for s in subs {
        subscribers.insert(&subscriber(s));
    }
    let decoder = Decoder::default();
    let input = lines.enumerate().filter_map(|(i, (l, urgent))| {
        let item = decoder.decode(l.as_bytes(), "test", i as u64 + 1)?;
        Some(if urgent { engine::Input::Urgent(item) } else { engine::Input::Item(item) })
    });
    let mut sink = Memory::default();
    let summary =
        engine::run(input, Arc::new(set), Arc::new(rd), subscribers, &opts, &mut sink, &AtomicBool::new(false))
            .expect("run");
    Run { decisions: sink.decisions, dead: sink.dead, summary }
}

/// The engine on `rules_yaml`, with no unsubscribe footer: these tests check what rules render
/// (the footer's own tests are in tests/it/unsubscribe.rs).
pub fn run(rules_yaml: &str, subs: &[&str], lines: &[String]) -> Run {
    run_with(rules_yaml, subs, lines, no_footer())
}

/// Default options without the unsubscribe footer.
pub fn no_footer() -> EngineOptions {
    let mut opts = EngineOptions::default();
    opts.policy.unsubscribe.footer = "".into();
    opts
}

pub const SUB: &str = r#"{"msisdn":"13800138000","brand":"gotone","tier":"high"}"#;
pub const M: &str = "13800138000";

/// An event line: kind, local time (today = 2026-11-24, +08:00) and extra fields.
pub fn ev(kind: &str, time: &str, extra: &str) -> String {
    let ts = if time.contains('T') { time.to_string() } else { format!("2026-11-24T{time}+08:00") };
    let sep = if extra.is_empty() { "" } else { "," };
    format!(r#"{{"kind":"{kind}","ts":"{ts}","msisdn":"{M}"{sep}{extra}}}"#)
}

/// The config of a live engine under test, written to `dir/tidings.toml`: two shards reading
/// stdin, the rules in `rules`, no quiet hours or caps, output files in `dir/out`, the API on
/// `port` (admin token `adm`, IVR token `ivr`), then `more` (further tables: users, a
/// checkpoint, deploys).
pub fn live_config(dir: &std::path::Path, rules: &std::path::Path, port: u16, more: &str) -> std::path::PathBuf {
    let cfg = dir.join("tidings.toml");
    let text = format!(
        r#"
[engine]
shards = 2
batch = 1024

[rules]
paths = ["{rules}"]

[source]
kind = "stdin"

[policy]
quiet_hours = ""
caps = []

[output]
dir = "{out}"
stdout = false

[api]
listen = "127.0.0.1:{port}"
admin_token = "adm"
ivr_token = "ivr"
ivr_log = "{log}"
{more}"#,
        rules = rules.display(),
        out = dir.join("out").display(),
        log = dir.join("ivr.jsonl").display(),
    );
    std::fs::write(&cfg, text).expect("write the engine config");
    cfg
}

/// Day `d` of a long run (2026-09-01 on), at `hh:mm` local, as an event's `ts`.
pub fn run_day(d: usize, hh: usize, mm: usize) -> String {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 9, 1).expect("a date") + chrono::TimeDelta::days(d as i64);
    format!("{day}T{hh:02}:{mm:02}:00+08:00")
}

/// Event lines put in time order (by the text from their `"ts"` on: the lines of a test write
/// `ts` first and in one offset).
pub fn in_time_order(lines: &mut [String]) {
    lines.sort_by(|a, b| a[a.find("\"ts\"").unwrap_or(0)..].cmp(&b[b.find("\"ts\"").unwrap_or(0)..]));
}
