//! Contact policy as rules declare it (`policy:` on a rule).
//!
//! This module parses and checks the declarations so that `validate` catches mistakes now;
//! enforcement (caps, do-not-disturb, quiet hours, exclusions, control groups, arbitration,
//! capacity) is the contact-policy issue's work and plugs in between a rule firing and an
//! action leaving. Until then every candidate is an action.

use crate::util::parse_duration;

/// How a frequency cap counts.
#[derive(Clone, Debug, PartialEq)]
pub enum CapWindow {
    /// A calendar day / week / month in local time.
    Calendar(CalendarUnit),
    /// The last N milliseconds.
    Rolling(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarUnit {
    Day,
    Week,
    Month,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cap {
    pub max: u32,
    pub window: CapWindow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QuietFate {
    /// Send when the quiet period ends (unless expired).
    #[default]
    Defer,
    Drop,
    /// Quiet hours do not apply (e.g. a reply the subscriber asked for).
    Ignore,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RulePolicy {
    pub caps: Vec<Cap>,
    /// At most this many consecutive calendar months reached by the campaign.
    pub streak_months: Option<u32>,
    pub quiet_hours: QuietFate,
    pub expire_after: Option<i64>,
    pub transactional: bool,
    pub exclude: Vec<String>,
    /// Percentage held out, 0..=100.
    pub control_group: Option<f64>,
}

/// Segments and statuses `exclude:` understands.
pub const EXCLUDABLE: &[&str] = &[
    "suspended",
    "pre_cancel",
    "cancelled",
    "corporate",
    "foreign",
    "employee",
    "dnd",
    "tier:high",
    "tier:valuable",
    "tier:sub",
    "tier:negative",
];

/// `3 per month`, `1 per 7d`, `2 per day`.
pub fn parse_cap(s: &str) -> Result<Cap, String> {
    let bad = || format!("`{s}` is not a cap; write e.g. `3 per month` or `1 per 7d`");
    let (n, w) = s.split_once(" per ").ok_or_else(bad)?;
    let max: u32 = n.trim().parse().map_err(|_| bad())?;
    let window = match w.trim() {
        "day" => CapWindow::Calendar(CalendarUnit::Day),
        "week" => CapWindow::Calendar(CalendarUnit::Week),
        "month" => CapWindow::Calendar(CalendarUnit::Month),
        other => CapWindow::Rolling(parse_duration(other).map_err(|_| bad())?),
    };
    Ok(Cap { max, window })
}

/// `3 months`.
pub fn parse_streak(s: &str) -> Result<u32, String> {
    let n = s
        .trim()
        .strip_suffix("months")
        .or_else(|| s.trim().strip_suffix("month"))
        .ok_or_else(|| format!("`{s}` is not a streak; write e.g. `3 months`"))?;
    n.trim().parse().map_err(|_| format!("`{s}` is not a streak; write e.g. `3 months`"))
}

/// `10%` or `10`.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().trim_end_matches('%').trim().parse().map_err(|_| format!("`{s}` is not a percentage"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("`{s}` is not between 0% and 100%"));
    }
    Ok(v)
}
