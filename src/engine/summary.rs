//! What a run did ([`Summary`]), and the closing summary `run` and `replay` print to stderr.

use super::shard::ShardStats;
use crate::contact::Suppression;
use crate::event::{DeadReason, Kind};
use crate::time::{Millis, format_ts};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What a run did, for the closing summary.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub events: u64,
    pub by_kind: [u64; Kind::ALL.len()],
    pub late: u64,
    pub dead_letters: BTreeMap<DeadReason, u64>,
    pub actions_by_rule: BTreeMap<String, u64>,
    pub suppressed_by_reason: BTreeMap<Suppression, u64>,
    pub actions: u64,
    /// Would-be actions of shadow rules (never sent; not in `actions`).
    pub shadow_actions: u64,
    pub deferred: u64,
    pub subscribers: usize,
    pub pending_timers: usize,
    /// Journey instances still in progress at the end.
    pub journeys_in_progress: usize,
    pub stats: ShardStats,
    /// The `explain` account of the traced subscriber.
    pub trace: Vec<String>,
    pub first_ts: Option<Millis>,
    pub last_ts: Option<Millis>,
    /// Wall time from the first item taken to the last decision written: the run's work on its
    /// input, without building the shards before it (reference data into subscriber tables, a
    /// checkpoint's restore) or freeing them after it.
    pub replay: std::time::Duration,
}

impl Summary {
    pub fn dead_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }
}

/// Counts per kind, in declaration order (for summaries).
pub fn kind_counts(s: &Summary) -> impl Iterator<Item = (Kind, u64)> + '_ {
    Kind::ALL.iter().map(|k| (*k, s.by_kind[*k as usize]))
}

/// The human summary printed to stderr after `run` and `replay`.
pub fn render_summary(s: &Summary, elapsed: std::time::Duration, offset: chrono::FixedOffset) -> String {
    let mut o = String::new();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(o, "events        {} ({:.0}/s)", s.events, s.events as f64 / secs);
    let kinds: Vec<String> = kind_counts(s).filter(|(_, n)| *n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(o, "  by kind     {}", kinds.join(", "));
    if let (Some(a), Some(b)) = (s.first_ts, s.last_ts) {
        let _ = writeln!(o, "  event time  {} .. {}", format_ts(a, offset), format_ts(b, offset));
    }
    if s.late > 0 {
        let _ = writeln!(o, "  late        {}", s.late);
    }
    let _ = writeln!(o, "dead letters  {}", s.dead_total());
    table(&mut o, 12, s.dead_letters.iter().map(|(r, n)| (r.as_str(), *n)));
    let _ = writeln!(o, "actions       {}", s.actions);
    table(&mut o, 32, s.actions_by_rule.iter().map(|(r, n)| (r.as_str(), *n)));
    let suppressed: u64 = s.suppressed_by_reason.values().sum();
    if s.shadow_actions > 0 {
        let _ = writeln!(o, "shadow        {} would-be actions of shadow rules (not sent)", s.shadow_actions);
    }
    let _ = writeln!(o, "suppressed    {suppressed}");
    table(&mut o, 14, s.suppressed_by_reason.iter().map(|(r, n)| (r.as_str(), *n)));
    if s.deferred > 0 {
        let _ = writeln!(o, "deferred      {} (held for the end of quiet hours)", s.deferred);
    }
    // What a hot reload ended because the new rules no longer have it, when one did.
    let by_reload = |n: u64| if n > 0 { format!(", dropped by a reload {n}") } else { String::new() };
    let _ = writeln!(
        o,
        "timers        armed {}, fired {}, cancelled {}, recheck failed {}, pending {}{}",
        s.stats.timers_armed,
        s.stats.timers_fired,
        s.stats.timers_cancelled,
        s.stats.rechecks_failed,
        s.pending_timers,
        by_reload(s.stats.timers_dropped_on_reload)
    );
    if s.stats.journey_steps > 0 || s.journeys_in_progress > 0 {
        let _ = writeln!(
            o,
            "journeys      steps entered {}, ended {}, in progress {}{}",
            s.stats.journey_steps,
            s.stats.journeys_ended,
            s.journeys_in_progress,
            by_reload(s.stats.journeys_dropped_on_reload)
        );
    }
    let _ = writeln!(o, "subscribers   {} with state", s.subscribers);
    let _ = write!(o, "elapsed       {:.2}s", secs);
    o
}

/// One `  name count` line per row, the counts in one column `width` wide, or wider when a name
/// needs it: a name is always followed by at least one space (`unknown_kind` is 12 characters
/// and ran into its count).
fn table<'a>(o: &mut String, width: usize, rows: impl Iterator<Item = (&'a str, u64)> + Clone) {
    let width = rows.clone().map(|(name, _)| name.chars().count() + 1).fold(width, usize::max);
    for (name, n) in rows {
        let _ = writeln!(o, "  {name:<width$}{n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::DeadReason;

    #[test]
    fn summary_columns_keep_a_space_after_a_long_reason_or_rule_name() {
        let mut s = Summary::default();
        s.dead_letters.insert(DeadReason::UnknownKind, 10964);
        s.dead_letters.insert(DeadReason::TooLong, 3);
        let rule = "a_rule_name_that_is_longer_than_thirty_two_characters";
        s.actions_by_rule.insert(rule.into(), 7);
        let text = render_summary(&s, std::time::Duration::from_secs(1), chrono::FixedOffset::east_opt(0).unwrap());
        assert!(text.contains("\n  unknown_kind 10964\n"), "{text}");
        assert!(text.contains("\n  too_long     3\n"), "one column for the table: {text}");
        assert!(text.contains(&format!("\n  {rule} 7\n")), "{text}");
    }
}
