//! Run telemetry: the closing summary a run prints. Prometheus metrics arrive with the admin
//! API; the summary's counters are the same named quantities.

use crate::engine::{Summary, kind_counts};
use crate::util::format_ts;
use std::fmt::Write as _;

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
    for (r, n) in &s.dead_letters {
        let _ = writeln!(o, "  {:<12}{n}", r.as_str());
    }
    let _ = writeln!(o, "actions       {}", s.actions);
    for (r, n) in &s.actions_by_rule {
        let _ = writeln!(o, "  {r:<32}{n}");
    }
    let suppressed: u64 = s.suppressed_by_reason.values().sum();
    let _ = writeln!(o, "suppressed    {suppressed}");
    for (r, n) in &s.suppressed_by_reason {
        let _ = writeln!(o, "  {:<14}{n}", r.as_str());
    }
    if s.deferred > 0 {
        let _ = writeln!(o, "deferred      {} (held for the end of quiet hours)", s.deferred);
    }
    let _ = writeln!(
        o,
        "timers        armed {}, fired {}, cancelled {}, recheck failed {}, pending {}",
        s.stats.timers_armed, s.stats.timers_fired, s.stats.timers_cancelled, s.stats.rechecks_failed, s.pending_timers
    );
    let _ = writeln!(o, "subscribers   {} with state", s.subscribers);
    let _ = write!(o, "elapsed       {:.2}s", secs);
    o
}
