//! A campaign's plan as its `campaign:` item writes it: `owner`, `start` / `end` (local dates or
//! date-times), `status` and `budget`, parsed into [`CampaignPolicy`] with a located
//! diagnostic for every bad value (an end before the start, an unknown channel, a negative
//! number, an unknown key).

use crate::contact::Channel;
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::item::check_keys;
use crate::rules::policy::{Budget, CampaignDates, CampaignPolicy, CampaignStatus};
use crate::rules::yaml;
use crate::time::{DAY, Millis};

const BUDGET_KEYS: &[&str] = &["contacts", "cost_fen", "limit_fen"];

/// Where a diagnostic goes and where it is collected.
struct At<'a> {
    file: &'a str,
    src: &'a str,
    diags: &'a mut Vec<Diagnostic>,
}

impl At<'_> {
    fn push(&mut self, code: Code, n: &yaml::Node, msg: String, hint: Option<String>) {
        self.diags.push(Diagnostic::new(code, self.file, self.src, n.pos(), msg).with_hint(hint));
    }

    /// A scalar's text, else an E005.
    fn text<'n>(&mut self, key: &str, n: &'n yaml::Node) -> Option<&'n str> {
        let t = n.as_str();
        if t.is_none() {
            self.push(Code::E005, n, format!("`{key}` is a single value, not {}", n.kind_name()), None);
        }
        t
    }
}

/// Reads the plan of `item` (a `campaign:` item) into `out`.
pub(super) fn campaign_plan(
    item: &yaml::Node,
    out: &mut CampaignPolicy,
    file: &str,
    src: &str,
    diags: &mut Vec<Diagnostic>,
) {
    let mut at = At { file, src, diags };
    if let Some(n) = item.get("owner") {
        match at.text("owner", n).map(str::trim) {
            Some("") => at.push(Code::E005, n, "`owner` is empty".into(), Some("write e.g. `owner: 市场部`".into())),
            Some(t) => out.owner = Some(t.into()),
            None => {}
        }
    }
    if let Some(n) = item.get("status") {
        if let Some(t) = at.text("status", n) {
            match CampaignStatus::parse(t.trim()) {
                Some(s) => out.status = s,
                None => {
                    let hint =
                        crate::util::nearest(t.trim(), CampaignStatus::WORDS).map(|w| format!("did you mean `{w}`?"));
                    let hint = hint.or_else(|| Some("one of active, paused, ended".into()));
                    at.push(Code::E005, n, format!("unknown campaign status `{t}`"), hint);
                }
            }
        }
    }
    out.dates = dates(item, &mut at);
    if let Some(n) = item.get("budget") {
        out.budget = budget(n, &mut at);
    }
}

/// `start` / `end`, checked against each other.
fn dates(item: &yaml::Node, at: &mut At) -> CampaignDates {
    let mut d = CampaignDates::default();
    let read = |key: &str, end: bool, at: &mut At| -> Option<(Millis, Box<str>)> {
        let n = item.get(key)?;
        let t = at.text(key, n)?.trim();
        match local_time(t, end) {
            Ok(ms) => Some((ms, t.into())),
            Err(e) => {
                at.push(
                    Code::E005,
                    n,
                    format!("`{key}: {t}` {e}"),
                    Some("write e.g. `2026-12-01` or `2026-12-01 09:00`".into()),
                );
                None
            }
        }
    };
    if let Some((ms, t)) = read("start", false, at) {
        d.start = Some(ms);
        d.start_text = Some(t);
    }
    if let Some((ms, t)) = read("end", true, at) {
        d.end = Some(ms);
        d.end_text = Some(t);
    }
    if let (Some(s), Some(e), Some(n)) = (d.start, d.end, item.get("end")) {
        if e <= s {
            let msg = format!(
                "the campaign ends (`{}`) before it starts (`{}`)",
                d.end_text.as_deref().unwrap_or(""),
                d.start_text.as_deref().unwrap_or("")
            );
            at.push(Code::E033, n, msg, Some("an `end` date includes that whole day".into()));
        }
    }
    d
}

/// A local date (`2026-12-01`) or date-time (`2026-12-01 09:00`, `2026-12-01T09:00:00`) as
/// milliseconds since 1970-01-01T00:00 local. A date as an `end` is the end of that day.
fn local_time(t: &str, end: bool) -> Result<Millis, String> {
    use chrono::{NaiveDate, NaiveDateTime};
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let ms = day.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp_millis()).ok_or("is not a date")?;
        return Ok(if end { ms + DAY } else { ms });
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(dt.and_utc().timestamp_millis());
        }
    }
    if chrono::DateTime::parse_from_rfc3339(t).is_ok() {
        return Err("has an offset: campaign times are local, in the engine's offset; leave it out".into());
    }
    Err("is not a local date or date-time".into())
}

/// `budget: { contacts: N, cost_fen: { sms: 5, call: 150 }, limit_fen: M }`.
fn budget(n: &yaml::Node, at: &mut At) -> Option<Budget> {
    if !matches!(n, yaml::Node::Map { .. }) {
        let msg = format!("`budget` is a mapping, not {}", n.kind_name());
        at.push(Code::E005, n, msg, Some("write e.g. `budget: { contacts: 50000 }`".into()));
        return None;
    }
    check_keys(n, BUDGET_KEYS, at.file, at.src, at.diags);
    let before = at.diags.len();
    let mut b =
        Budget { contacts: amount(n, "contacts", at), limit_fen: amount(n, "limit_fen", at), ..Budget::default() };
    if let Some(costs) = n.get("cost_fen") {
        costs_by_channel(costs, &mut b, at);
    }
    if b.limit_fen.is_some() && n.get("cost_fen").is_none() {
        let hint = "write e.g. `cost_fen: { sms: 5, call: 150 }`";
        at.push(
            Code::E004,
            n,
            "`limit_fen` needs `cost_fen`: what a contact costs on each channel".into(),
            Some(hint.into()),
        );
    }
    if n.get("contacts").is_none() && n.get("limit_fen").is_none() {
        at.push(Code::E004, n, "`budget` needs `contacts`, `limit_fen` or both".into(), None);
    }
    (at.diags.len() == before).then_some(b)
}

/// A limit (`contacts`, `limit_fen`): a whole number above zero.
fn amount(n: &yaml::Node, key: &str, at: &mut At) -> Option<u64> {
    let v = n.get(key)?;
    let k = count(key, v, at)?;
    if k == 0 {
        let hint = Some("to stop a campaign, set `status: paused`".into());
        at.push(Code::E033, v, format!("a budget of 0 (`{key}`) never lets a contact through"), hint);
        return None;
    }
    Some(k)
}

/// A whole number, 0 or more.
fn count(key: &str, v: &yaml::Node, at: &mut At) -> Option<u64> {
    let t = at.text(key, v)?.trim();
    let t2 = t.replace('_', "");
    match t2.parse::<u64>() {
        Ok(k) => Some(k),
        Err(_) if t2.starts_with('-') && t2[1..].parse::<u64>().is_ok() => {
            at.push(Code::E005, v, format!("`{key}: {t}` is negative; a budget counts up from 0"), None);
            None
        }
        Err(_) => {
            at.push(Code::E005, v, format!("`{key}: {t}` is not a whole number"), None);
            None
        }
    }
}

/// `cost_fen: { sms: 5, call: 150 }`: fen per contact by channel.
fn costs_by_channel(n: &yaml::Node, b: &mut Budget, at: &mut At) {
    let yaml::Node::Map { entries, .. } = n else {
        let msg = format!("`cost_fen` is a mapping of channel to fen, not {}", n.kind_name());
        return at.push(Code::E005, n, msg, Some("write e.g. `cost_fen: { sms: 5, call: 150 }`".into()));
    };
    let contacts: Vec<&str> = Channel::ALL.iter().filter(|c| c.is_contact()).map(|c| c.as_str()).collect();
    for (k, v) in entries {
        let name = k.as_str().unwrap_or("");
        let channel = Channel::parse(name);
        match channel {
            Some(c) if c.is_contact() => {
                if let Some(fen) = count(name, v, at) {
                    b.cost_fen[c as usize] = Some(fen);
                }
            }
            Some(_) => at.push(
                Code::E005,
                k,
                format!("`{name}` is the subscriber's own request, not a contact: it costs no budget"),
                Some(format!("channels with a cost: {}", contacts.join(", "))),
            ),
            None => {
                let hint = crate::util::nearest(name, contacts.iter().copied()).map(|c| format!("did you mean `{c}`?"));
                let hint = hint.or_else(|| Some(format!("channels with a cost: {}", contacts.join(", "))));
                at.push(Code::E005, k, format!("unknown channel `{name}`"), hint);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::local_time;
    use crate::time::DAY;

    #[test]
    fn local_dates_and_times_read_as_local_wall_clock() {
        let day = local_time("2026-12-01", false).unwrap();
        assert_eq!(
            day,
            chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis()
        );
        assert_eq!(local_time("2026-12-01", true).unwrap(), day + DAY, "an end date is the whole day");
        assert_eq!(local_time("2026-12-01 09:30", false).unwrap(), day + 9 * 3_600_000 + 30 * 60_000);
        assert_eq!(local_time("2026-12-01T09:30:00", true).unwrap(), day + 9 * 3_600_000 + 30 * 60_000);
        assert!(local_time("2026-12-01T09:30:00+08:00", false).unwrap_err().contains("offset"));
        assert!(local_time("2026-13-01", false).is_err() && local_time("soon", false).is_err());
    }
}
