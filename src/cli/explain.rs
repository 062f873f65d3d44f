//! `tidings explain`: one subscriber's story in a replay, in plain words.

use super::recorded::Recorded;
use super::{config_or_default, load_data, load_rules, with_journal};
use anyhow::{Context, Result};
use std::sync::Arc;
use tidings::engine;
use tidings::topology::{sources, stop_flag};

pub fn explain(msisdn: &str, recorded: &Recorded) -> Result<i32> {
    let m = tidings::util::Msisdn::parse(msisdn).context("the subscriber number must be 5 to 15 digits")?;
    let cfg = config_or_default(&recorded.config)?;
    let offset = cfg.offset().map_err(anyhow::Error::msg)?;
    let (refdata, subs) = load_data(recorded.data.as_deref(), cfg.engine.unknown_subscribers)?;
    let refdata = with_journal(refdata, &cfg, offset)?;
    match subs.get(&m) {
        Some(s) => println!(
            "{} — {} {}, {}, services [{}], dnd {}",
            m.full(),
            s.brand,
            s.tier,
            s.status,
            s.services.iter().map(|x| &**x).collect::<Vec<_>>().join(", "),
            if s.dnd.any() { "yes" } else { "no" }
        ),
        None => println!("{} — not in the reference data", m.full()),
    }
    let rules = load_rules(&recorded.rules, &refdata, &cfg.load_options().map_err(anyhow::Error::msg)?)?;
    let opts = recorded.options(&cfg, Some(m))?;
    let mut sink = tidings::sink::Memory::default();
    let summary = engine::run(
        sources::open_events(&recorded.events, recorded.decoder()?)?,
        Arc::new(rules),
        Arc::new(refdata),
        subs,
        &opts,
        &mut sink,
        &stop_flag(),
    )?;
    if summary.trace.is_empty() {
        println!("no events for this subscriber");
    }
    for line in &summary.trace {
        println!("{line}");
    }
    // Capacity and campaign budgets act after the shards: say what they did to this
    // subscriber's contacts.
    use tidings::contact::Suppression;
    let after_shards = |d: &&tidings::contact::Decision| {
        d.msisdn == m && matches!(d.suppression(), Some(Suppression::Capacity | Suppression::Budget))
    };
    for d in sink.decisions.iter().filter(after_shards) {
        println!("{}", tidings::engine::explain::explain_line(d, offset));
    }
    Ok(0)
}
