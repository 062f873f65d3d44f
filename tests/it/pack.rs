//! The shipped pack against the embedded default: no dead rule, and every message reads as
//! Chinese.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tidings::config::Config;
use tidings::contact::Channel;
use tidings::engine::{self, EngineOptions};
use tidings::event::Decoder;
use tidings::generator::{self, GenOptions};
use tidings::refdata::RefData;
use tidings::rules::{self, LoadOptions};
use tidings::sink::Memory;

/// The shipped pack over the embedded default's generated traffic: the pack's rule names and
/// what the engine decided.
fn default_run(tag: &str) -> (BTreeSet<String>, Memory) {
    let cfg = Config::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tidings.toml"))).unwrap();
    let g = &cfg.source.generator;
    let opts = GenOptions {
        seed: g.seed,
        subscribers: g.subscribers,
        events: g.events,
        start: cfg.generator_start().unwrap(),
        days: g.days,
        offset_secs: cfg.offset().unwrap().local_minus_utc(),
    };
    let dir = std::env::temp_dir().join(format!("tidings-pack-{tag}-{}", std::process::id()));
    generator::write_dir(&opts, &dir).unwrap();
    let (rd, subs) = RefData::load_dir(&dir).unwrap();
    let loaded = rules::load(&cfg.rules.paths, Some(&rd), &LoadOptions::default());
    let warnings: Vec<String> = loaded.diagnostics.iter().map(|d| d.render()).collect();
    assert!(warnings.is_empty(), "the pack is clean against the generated reference data:\n{}", warnings.join(""));
    let set = loaded.rules.unwrap();
    let names: BTreeSet<String> = set.rules.iter().map(|r| r.name.to_string()).collect();
    let input = tidings::source::file(&dir.join("events.jsonl"), Decoder::default()).unwrap();
    let eopts = EngineOptions {
        shards: 2,
        lateness: cfg.lateness().unwrap(),
        policy: cfg.resolved_policy.clone(),
        capacity: cfg.capacity,
        ..EngineOptions::default()
    };
    let mut sink = Memory::default();
    engine::run(input, Arc::new(set), Arc::new(rd), subs, &eopts, &mut sink, &AtomicBool::new(false)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (names, sink)
}

#[test]
fn every_shipped_rule_fires_on_the_default_run() {
    let (names, sink) = default_run("fires");
    let fired: BTreeSet<String> =
        sink.decisions.iter().filter(|d| d.is_sent()).map(|d| d.rule_name.to_string()).collect();
    let dead: Vec<&String> = names.difference(&fired).collect();
    assert!(dead.is_empty(), "rules that never sent anything on the default run: {dead:?}");
    // The pack's budget (ip_12593) is realistic and not reached by a default run, and no
    // campaign is off: what the pack decides is its rules' doing.
    use tidings::contact::Suppression;
    let off =
        sink.decisions.iter().find(|d| matches!(d.suppression(), Some(Suppression::Budget | Suppression::CampaignOff)));
    assert!(off.is_none(), "a campaign stopped on the default run: {off:?}");
    // Regression: daily rules share one trigger (`09:00@day`) across subscribers; the action id,
    // the gateways' idempotency key, must still differ per subscriber.
    let mut ids = std::collections::HashSet::new();
    let dup = sink.decisions.iter().filter(|d| d.is_sent()).find(|d| !ids.insert(d.id.clone()));
    assert!(dup.is_none(), "two actions share an id: {:?}", dup.map(|d| (&d.id, &d.rule_name)));
}

/// The first lower-case ASCII word of two or more letters (`[a-z][a-z_]+`) in `text`: a code
/// such as `data` or `long_distance` left in a message. The tokens a message may carry (APP,
/// CXYE, KT12593, 10086) are upper case or digits.
fn code_in(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_lowercase() {
            let end = i + b[i..].iter().take_while(|c| c.is_ascii_lowercase() || **c == b'_').count();
            if end - i >= 2 {
                return Some(&text[i..end]);
            }
            i = end;
        } else {
            i += 1;
        }
    }
    None
}

/// The first `YYYY-MM-DD` date in `text`: a date as a machine writes it, left in a Chinese
/// message where 12月24日 belongs (`|cn_date`).
fn iso_date_in(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let shape =
        |w: &[u8]| w.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    (0..b.len().saturating_sub(9)).find(|&i| shape(&b[i..i + 10])).map(|i| &text[i..i + 10])
}

/// Regression: `service_failure_apology` sent "因网络故障影响了您的data业务使用" and
/// `tier_changed` the tier codes; enumerated values and CRM codes now go through the dictionary.
/// And `points_expiring` wrote CRM's `2026-11-30` into its Chinese text: dates read 11月30日.
#[test]
fn the_default_run_reads_as_chinese() {
    assert_eq!(code_in("您的data业务"), Some("data"));
    assert_eq!(code_in("发送CXYE至10086，回复KT12593，中国移动APP"), None);
    assert_eq!(iso_date_in("积分将于2026-11-30到期"), Some("2026-11-30"));
    assert_eq!(iso_date_in("积分将于11月30日到期，拨打10086-1"), None);
    let (_, sink) = default_run("words");
    // One example per rule and code, with how many messages carried it.
    let mut bad: std::collections::BTreeMap<(String, String), (usize, String)> = Default::default();
    let mut seen = 0;
    for d in sink.decisions.iter().filter(|d| d.is_sent()) {
        let texts = match d.channel {
            Channel::Sms | Channel::Ivr => [d.text.as_deref(), None],
            Channel::Call => [d.script.as_deref(), None],
            Channel::Order => [None, None],
        };
        for t in texts.into_iter().flatten() {
            seen += 1;
            // Dates by their shape, so that a rule's dates are one line of the report.
            if let Some(code) = code_in(t).or(iso_date_in(t).map(|_| "YYYY-MM-DD")) {
                bad.entry((d.rule_name.to_string(), code.to_string())).or_insert((0, t.to_string())).0 += 1;
            }
        }
    }
    assert!(seen > 1000, "the default run sends messages: {seen}");
    let said: Vec<String> =
        bad.iter().map(|((rule, code), (n, t))| format!("{rule}: `{code}` in {n} messages, e.g. {t}")).collect();
    assert!(bad.is_empty(), "messages carry raw codes:\n{}", said.join("\n"));
    // And each SMS, filled in with the generator's names and amounts, takes no more messages
    // than its rule allows (`parts:`): the longest of each rule that goes over.
    let cfg = Config::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tidings.toml"))).unwrap();
    let set = rules::load(&cfg.rules.paths, None, &LoadOptions::default()).rules.unwrap();
    let mut long: std::collections::BTreeMap<String, (usize, String)> = Default::default();
    for d in sink.decisions.iter().filter(|d| d.is_sent() && d.channel == Channel::Sms) {
        let text = d.text.as_deref().unwrap_or_default();
        let allowed = usize::from(set.rules.iter().find(|r| r.name == d.rule_name).map_or(1, |r| r.parts));
        let n = tidings::contact::sms_length(text);
        if tidings::contact::sms_parts(text) > allowed && long.get(&*d.rule_name).is_none_or(|(m, _)| n > *m) {
            long.insert(d.rule_name.to_string(), (n, text.to_string()));
        }
    }
    let said: Vec<String> = long.iter().map(|(rule, (n, t))| format!("{rule}: {n} characters: {t}")).collect();
    assert!(long.is_empty(), "SMS longer than their rules allow:\n{}", said.join("\n"));
}
