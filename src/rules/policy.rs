//! Contact policy as written: what a rule's `policy:`, a campaign and the engine config's
//! `[policy]` declare — caps, streaks, quiet hours and what happens in them, exclusions, control
//! groups — and the parsers of their words (`3 per month`, `22:00-08:00`, `tier:negative`). The
//! rule compiler and the config build these; [`crate::policy`] enforces them.

use crate::refdata::{Profile, Status, Tier};
use crate::rules::derive::DeriveDef;
use crate::state::DVal;
use crate::time::{DAY, MINUTE, Millis, parse_duration};
use chrono::Datelike;

/// A rule's own policy, as declared in its `policy:`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RulePolicy {
    /// Caps on this rule's own contacts.
    pub caps: Vec<Cap>,
    pub quiet: QuietFate,
    /// A quiet period of its own instead of the global one.
    pub quiet_hours: Option<QuietHours>,
    /// Quiet hours judged by when the contact's trigger came, too (`judged_at: trigger`): a
    /// contact is held only when it would go in quiet hours *and* what triggered it came in
    /// them — the receipt of a bill paid at 21:59, held two minutes for its top-up, still goes
    /// at 22:01.
    pub quiet_at_trigger: bool,
    /// A contact older than this (since its trigger) is not sent any more.
    pub expire_after: Option<i64>,
    /// A service message the subscriber needs: passes campaign, channel and global caps.
    pub transactional: bool,
    /// Contact even subscribers on do-not-disturb for this channel (transactional rules only).
    pub ignore_dnd: bool,
    pub exclude: Vec<Exclusion>,
    /// Global exclusions this rule lifts (a retention call to a `pre_cancel` subscriber).
    pub include: Vec<Exclusion>,
    /// The number its SMS go out from, instead of its campaign's or the global one.
    pub sender: Option<Box<str>>,
    /// Stop offering this rule to a subscriber who keeps ignoring it.
    pub suppress_after: Option<SuppressAfter>,
    /// `request: true`: the contact answers the subscriber's own request (a disconnection
    /// request's retention call), not a proactive offer. Its campaign's control group never
    /// holds it out, and the campaign's caps, streak and `suppress_after` neither stop it nor
    /// count it; everything else (exclusions, do-not-disturb, its own caps, channel and global
    /// caps, arbitration, quiet hours, capacity) applies as to any contact.
    pub request: bool,
    /// `alongside: true`: the contact may go out beside a contact on another channel for the
    /// same trigger (an SMS and a call). By default one contact per subscriber per trigger goes
    /// out, whatever the channel; two on different channels both go when either rule says so.
    pub alongside: bool,
}

/// A campaign's policy (a `campaign:` item, or `streak`/`control_group` on its rules).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CampaignPolicy {
    pub name: Box<str>,
    pub caps: Vec<Cap>,
    /// At most this many consecutive calendar months reached.
    pub streak_months: Option<u32>,
    /// Percentage held out, 0..=100.
    pub control_group: Option<f64>,
    /// The number its SMS go out from, instead of the global one.
    pub sender: Option<Box<str>>,
    /// Stop offering this campaign to a subscriber who keeps ignoring it.
    pub suppress_after: Option<SuppressAfter>,
    /// Who runs it (`owner: 市场部`), for people reading the pack and `GET /v1/campaigns`.
    pub owner: Option<Box<str>>,
    /// When it runs, and whether it is on at all: outside, nothing new (`campaign_off`).
    pub dates: CampaignDates,
    pub status: CampaignStatus,
    /// What it may spend: past it, nothing more is sent (`budget`).
    pub budget: Option<Budget>,
}

/// A campaign's `status:` as its owner sets it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    #[default]
    Active,
    /// Stopped for now: its rules decide nothing new until it is active again.
    Paused,
    /// Over: as paused, for good.
    Ended,
}

impl CampaignStatus {
    pub const WORDS: [&'static str; 3] = ["active", "paused", "ended"];

    pub fn parse(s: &str) -> Option<CampaignStatus> {
        Some(match s {
            "active" => CampaignStatus::Active,
            "paused" => CampaignStatus::Paused,
            "ended" => CampaignStatus::Ended,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::WORDS[self as usize]
    }
}

/// A campaign's `start` / `end`: local wall-clock times (in the engine's offset) as
/// milliseconds since 1970-01-01T00:00 local, so the pack compiles without knowing the offset.
/// `start` is the first moment it is on; `end` the first moment it is off again (an `end` date
/// written without a time is the whole of that day). `None`: open on that side.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CampaignDates {
    pub start: Option<Millis>,
    pub end: Option<Millis>,
    /// As written, for details and `GET /v1/campaigns`.
    pub start_text: Option<Box<str>>,
    pub end_text: Option<Box<str>>,
}

impl CampaignDates {
    pub fn is_open(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }

    /// Whether event time `ts` falls outside the dates, in the local time of `offset`: `Some`
    /// with what it missed (`before` the start, or `after` the end).
    pub fn outside(&self, ts: Millis, offset: chrono::FixedOffset) -> Option<&'static str> {
        let local = ts.saturating_add(i64::from(offset.local_minus_utc()) * 1000);
        match (self.start, self.end) {
            (Some(s), _) if local < s => Some("before"),
            (_, Some(e)) if local >= e => Some("after"),
            _ => None,
        }
    }
}

/// `budget: { contacts: 50000, cost_fen: { sms: 5, call: 150 }, limit_fen: 2000000 }`: the
/// contacts a campaign may make in all, and what they may cost (fen per contact, by channel).
/// Counted over contacts sent (not held out, not suppressed), for the whole engine, in output
/// order after the shards ([`crate::policy::budget`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budget {
    pub contacts: Option<u64>,
    /// Fen per contact, indexed by `Channel as usize`; a channel not listed costs nothing.
    pub cost_fen: [Option<u64>; crate::contact::Channel::COUNT],
    pub limit_fen: Option<u64>,
}

impl Budget {
    /// What one contact on `channel` costs.
    pub fn cost(&self, channel: crate::contact::Channel) -> u64 {
        self.cost_fen[channel as usize].unwrap_or(0)
    }

    /// What contact `d` costs: its channel's price, an SMS's once for each message it is sent
    /// as (each part of a long one is billed).
    pub fn cost_of(&self, d: &crate::contact::Decision) -> u64 {
        self.cost(d.channel).saturating_mul(d.sms_messages().max(1))
    }

    /// Whether it tracks cost at all (a cost per channel given).
    pub fn costed(&self) -> bool {
        self.cost_fen.iter().any(Option::is_some)
    }
}

/// `suppress_after: { ignored: 2, within: 30d, for: 60d, response_window: 3d, count: [refused] }`:
/// a subscriber who ignored `ignored` offers of the rule (or campaign) within `within` (from the
/// first of them to the last) is not offered it again for `pause` after the last. An offer is
/// ignored once its response window has passed with no reply answering it (an order comes of
/// a reply, so it is answered too) and, for a call, no `answered` result; an offer whose
/// outcome came back `refused` (a call) or `failed` / `expired` (a delivery) counts as ignored
/// only when `count:` lists `refused` / `failed`, and never otherwise (the subscriber did not
/// get it to ignore).
#[derive(Clone, Debug, PartialEq)]
pub struct SuppressAfter {
    /// N: ignored offers that suppress, at least 1.
    pub ignored: u32,
    /// D: the longest span from the first of the N to the last.
    pub within: i64,
    /// P: how long offers stop after the N-th ignored one.
    pub pause: i64,
    /// How long an offer waits for a response; `None`: the global reply window.
    pub response_window: Option<i64>,
    pub count_refused: bool,
    pub count_failed: bool,
    /// `within` as declared (`30d`), for decision details.
    pub within_text: Box<str>,
}

impl SuppressAfter {
    /// How far back it may look, given the global reply window: the history kept must cover it.
    pub fn reach(&self, reply_window: i64) -> i64 {
        self.within.saturating_add(self.pause).saturating_add(self.response_window.unwrap_or(reply_window))
    }
}

/// What `count:` in `suppress_after` may list.
pub const SUPPRESS_COUNTABLE: &[&str] = &["refused", "failed"];

/// Policy declared in the engine config, for every rule.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalPolicy {
    pub quiet_hours: Option<QuietHours>,
    pub exclude: Vec<Exclusion>,
    /// Across all touchpoints (non-transactional contacts).
    pub caps: Vec<Cap>,
    /// Per channel (non-transactional contacts), indexed by `Channel as usize`.
    pub channel_caps: [Vec<Cap>; crate::contact::Channel::COUNT],
    /// At most one contact per channel within this window (0: per trigger only).
    pub arbitration_window: i64,
    /// The number SMS go out from unless a campaign or rule says otherwise (`10086`).
    pub sender: Box<str>,
    /// A reply answers the latest SMS sent from the number it was sent to within this window.
    pub reply_window: i64,
    pub unsubscribe: Unsubscribe,
}

/// Unsubscribe by reply (`[policy.unsubscribe]`): the keywords that refuse further messages,
/// what they refuse, and the footer every marketing SMS carries to say so.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsubscribe {
    /// Normalised (see [`crate::event::keyword`]): `TD`, `T`, `R`, `退订`, `QXTD`, `0000`.
    pub keywords: Vec<Box<str>>,
    /// What a keyword refuses when the reply answers a known SMS; a reply that answers none
    /// refuses all marketing.
    pub scope: crate::contact::OptOutScope,
    /// Keywords that refuse every non-transactional contact whatever `scope` says (`0000`).
    pub all_keywords: Vec<Box<str>>,
    /// Appended to every marketing (non-transactional) SMS; empty for none.
    pub footer: Box<str>,
}

impl Default for Unsubscribe {
    fn default() -> Self {
        Unsubscribe {
            keywords: ["TD", "T", "R", "退订", "QXTD", "0000"].into_iter().map(Into::into).collect(),
            scope: crate::contact::OptOutScope::Marketing,
            all_keywords: vec!["0000".into()],
            footer: "拒收请回复R".into(),
        }
    }
}

impl Unsubscribe {
    /// Every keyword that refuses: `keywords`, then `all_keywords`.
    pub fn refusals(&self) -> impl Iterator<Item = &Box<str>> {
        self.keywords.iter().chain(&self.all_keywords)
    }

    /// What a reply with `keyword` refuses (`None`: it is not an unsubscribe), given whether it
    /// answers a known SMS.
    pub fn scope_of(&self, keyword: &str, answers_known: bool) -> Option<crate::contact::OptOutScope> {
        use crate::contact::OptOutScope;
        if self.all_keywords.iter().any(|k| &**k == keyword) {
            return Some(OptOutScope::All);
        }
        if !self.keywords.iter().any(|k| &**k == keyword) {
            return None;
        }
        Some(match self.scope {
            OptOutScope::Campaign if !answers_known => OptOutScope::Marketing,
            s => s,
        })
    }
}

/// `10658888`: a sender number (digits, 3 to 21 of them: CMPP's `Src_Id` is 21 octets).
pub fn parse_sender(s: &str) -> Result<Box<str>, String> {
    let t = s.trim();
    if (3..=21).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()) {
        Ok(t.into())
    } else {
        Err(format!("`{s}` is not a sender number: 3 to 21 digits, e.g. `10658888`"))
    }
}

impl Default for GlobalPolicy {
    fn default() -> Self {
        GlobalPolicy {
            quiet_hours: Some(QuietHours { from: 22 * 60, to: 8 * 60 }),
            exclude: vec![
                Exclusion::Status(Status::Suspended),
                Exclusion::Status(Status::PreCancel),
                Exclusion::Status(Status::Cancelled),
            ],
            caps: Vec::new(),
            channel_caps: Default::default(),
            arbitration_window: 0,
            sender: "10086".into(),
            reply_window: 72 * crate::time::HOUR,
            unsubscribe: Unsubscribe::default(),
        }
    }
}

impl GlobalPolicy {
    /// How long contact history must be kept for these caps plus the rules' own.
    pub fn history_reach<'a>(&'a self, more: impl Iterator<Item = &'a Cap>) -> i64 {
        self.caps
            .iter()
            .chain(self.channel_caps.iter().flatten())
            .chain(more)
            .map(Cap::reach)
            .max()
            .unwrap_or(0)
            .max(self.arbitration_window)
            .max(self.reply_window)
    }
}

/// How a frequency cap counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CapWindow {
    /// The same calendar day / week (Monday first) / month in the subscriber's local time.
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
    /// The text as declared, for explain and decision details.
    pub text: String,
}

impl Cap {
    /// How far back this cap may look.
    pub fn reach(&self) -> i64 {
        match self.window {
            CapWindow::Rolling(w) => w,
            CapWindow::Calendar(CalendarUnit::Day) => DAY,
            CapWindow::Calendar(CalendarUnit::Week) => 7 * DAY,
            CapWindow::Calendar(CalendarUnit::Month) => 31 * DAY,
        }
    }
}

/// Local calendar period index of a time (for calendar caps and streaks).
pub fn period(ts: Millis, unit: CalendarUnit, offset: chrono::FixedOffset) -> i64 {
    let days = (ts + i64::from(offset.local_minus_utc()) * 1000).div_euclid(DAY);
    match unit {
        CalendarUnit::Day => days,
        // 1970-01-01 was a Thursday; shift so weeks start on Monday.
        CalendarUnit::Week => (days + 3).div_euclid(7),
        CalendarUnit::Month => {
            let d = chrono::DateTime::from_timestamp(days * 86_400, 0).map(|t| t.date_naive());
            d.map_or(0, |d| i64::from(d.year()) * 12 + i64::from(d.month0()))
        }
    }
}

/// `3 per month`, `1 per 7d`, `2 per day`, `5 per week`.
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
    if let CapWindow::Rolling(w) = window {
        if w <= 0 {
            return Err(bad());
        }
    }
    Ok(Cap { max, window, text: s.trim().to_string() })
}

/// `3 months`.
pub fn parse_streak(s: &str) -> Result<u32, String> {
    let bad = || format!("`{s}` is not a streak; write e.g. `3 months`");
    let n = s.trim().strip_suffix("months").or_else(|| s.trim().strip_suffix("month")).ok_or_else(bad)?;
    n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(bad)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QuietFate {
    /// Send when the quiet period ends (unless expired by then).
    #[default]
    Defer,
    Drop,
    /// Quiet hours do not apply (a reply the subscriber asked for, an IVR answer).
    Ignore,
}

/// Local quiet hours as minutes after midnight, `[from, to)`, wrapping midnight when from > to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub from: u32,
    pub to: u32,
}

impl QuietHours {
    /// `22:00-08:00`.
    pub fn parse(s: &str) -> Result<QuietHours, String> {
        let bad = || format!("`{s}` is not a quiet period; write e.g. `22:00-08:00`");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        Ok(QuietHours { from: hhmm(a).ok_or_else(bad)?, to: hhmm(b).ok_or_else(bad)? })
    }

    pub fn contains(self, minute_of_day: u32) -> bool {
        if self.from <= self.to {
            (self.from..self.to).contains(&minute_of_day)
        } else {
            minute_of_day >= self.from || minute_of_day < self.to
        }
    }

    /// The end of the quiet period that `now` falls in (local time via `offset`).
    pub fn end_after(self, now: Millis, offset: chrono::FixedOffset) -> Millis {
        let off = i64::from(offset.local_minus_utc()) * 1000;
        let local = now + off;
        let day_start = local.div_euclid(DAY) * DAY;
        let minute = (local - day_start) / MINUTE;
        let mut end = day_start + i64::from(self.to) * MINUTE;
        if self.from > self.to && minute >= i64::from(self.from) {
            end += DAY;
        }
        end - off
    }
}

/// `HH:MM` as minutes after midnight.
pub fn hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && m.to_string().len() <= 2).then_some(h * 60 + m)
}

/// Who may not be contacted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclusion {
    Status(Status),
    Corporate,
    Foreign,
    Employee,
    Tier(Tier),
    /// `derived.NAME` / `derived.NAME:VALUE` (a rule's `exclude:` only): the pack's derived
    /// attribute of slot `slot` (an index into its own pack's derive table: state is remapped
    /// to the new pack's slots on reload, and the rules with it). `value: None`: a true/false
    /// attribute, excluded when true; `Some(i)`: an enumerated one, excluded when it is its
    /// type's `i`-th word. A subscriber without a value yet is not excluded.
    Derived {
        slot: u16,
        value: Option<u8>,
    },
}

impl Exclusion {
    /// A profile exclusion (`pre_cancel`, `corporate`, `tier:negative`); `derived.` ones need
    /// the pack (see `rules::compile::policy`).
    pub fn parse(s: &str) -> Option<Exclusion> {
        Some(match s {
            "corporate" => Exclusion::Corporate,
            "foreign" => Exclusion::Foreign,
            "employee" => Exclusion::Employee,
            _ => match s.strip_prefix("tier:") {
                Some(t) => Exclusion::Tier(Tier::parse(t)?),
                None => Exclusion::Status(Status::parse(s)?),
            },
        })
    }

    /// Whether it applies to the subscriber of record `s` and derived attributes `derived`.
    pub fn applies(self, s: &Profile, st: &crate::state::SubState) -> bool {
        match self {
            Exclusion::Status(st) => s.status == st,
            Exclusion::Corporate => s.corporate(),
            Exclusion::Foreign => s.foreign(),
            Exclusion::Employee => s.employee(),
            Exclusion::Tier(t) => s.tier == t,
            Exclusion::Derived { slot, value } => st.derived_value(slot).is_some_and(|d| match (value, d.value()) {
                (None, DVal::Bool(b)) => b,
                (Some(want), DVal::Sym(v)) => v == want,
                _ => false,
            }),
        }
    }

    /// As written, for decision details; `derives` is the pack's derive table.
    pub fn name(self, derives: &[DeriveDef]) -> String {
        match self {
            Exclusion::Status(s) => s.as_str().to_string(),
            Exclusion::Corporate => "corporate".into(),
            Exclusion::Foreign => "foreign".into(),
            Exclusion::Employee => "employee".into(),
            Exclusion::Tier(t) => format!("tier:{t}"),
            Exclusion::Derived { slot, value } => {
                let Some(def) = derives.get(usize::from(slot)) else { return format!("derived #{slot}") };
                match value {
                    None => format!("derived.{}", def.name),
                    Some(v) => format!("derived.{}:{}", def.name, def.show(&DVal::Sym(v))),
                }
            }
        }
    }
}

/// Segments and statuses `exclude:` understands.
pub const EXCLUDABLE: &[&str] = &[
    "suspended",
    "pre_cancel",
    "cancelled",
    "active",
    "corporate",
    "foreign",
    "employee",
    "tier:high",
    "tier:valuable",
    "tier:sub",
    "tier:negative",
];

/// `10%` or `10`.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().trim_end_matches('%').trim().parse().map_err(|_| format!("`{s}` is not a percentage"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("`{s}` is not between 0% and 100%"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cst() -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(8 * 3600).unwrap()
    }

    #[test]
    fn periods_follow_local_calendar() {
        let p = |s: &str, u| period(crate::time::parse_ts(s).unwrap(), u, cst());
        // 2026-11-30 23:59 and 2026-12-01 00:00 local are different months, though both are
        // 2026-11-30 in UTC.
        assert_ne!(
            p("2026-11-30T23:59:00+08:00", CalendarUnit::Month),
            p("2026-12-01T00:00:00+08:00", CalendarUnit::Month)
        );
        assert_eq!(
            p("2026-12-01T00:00:00+08:00", CalendarUnit::Month),
            p("2026-12-31T23:59:00+08:00", CalendarUnit::Month)
        );
        assert_eq!(
            p("2026-12-31T23:00:00+08:00", CalendarUnit::Month) + 1,
            p("2027-01-01T00:30:00+08:00", CalendarUnit::Month)
        );
        // 2026-11-23 is a Monday.
        assert_eq!(
            p("2026-11-23T00:00:00+08:00", CalendarUnit::Week),
            p("2026-11-29T23:59:00+08:00", CalendarUnit::Week)
        );
        assert_ne!(
            p("2026-11-22T23:59:00+08:00", CalendarUnit::Week),
            p("2026-11-23T00:00:00+08:00", CalendarUnit::Week)
        );
    }

    /// Windows come from rules (at most 100 years since issue 16), but a sum that wrapped would
    /// turn "within the window" into "never" or "always": the arithmetic saturates.
    #[test]
    fn declarations_parse() {
        assert_eq!(parse_cap("3 per month").unwrap().window, CapWindow::Calendar(CalendarUnit::Month));
        assert_eq!(parse_cap("1 per 7d").unwrap().window, CapWindow::Rolling(7 * DAY));
        assert!(parse_cap("3 a month").is_err());
        assert_eq!(parse_streak("3 months").unwrap(), 3);
    }
    #[test]
    fn quiet_hours_wrap_midnight_and_end_in_local_time() {
        let cst = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let q = QuietHours::parse("22:00-08:00").unwrap();
        assert!(q.contains(23 * 60) && q.contains(0) && q.contains(7 * 60 + 59) && !q.contains(8 * 60));
        let t = crate::time::parse_ts("2026-11-24T23:30:00+08:00").unwrap();
        assert_eq!(q.end_after(t, cst), crate::time::parse_ts("2026-11-25T08:00:00+08:00").unwrap());
        let t = crate::time::parse_ts("2026-11-25T06:00:00+08:00").unwrap();
        assert_eq!(q.end_after(t, cst), crate::time::parse_ts("2026-11-25T08:00:00+08:00").unwrap());
        assert!(QuietHours::parse("25:00-08:00").is_err());
        assert!(QuietHours::parse("22h").is_err());
    }
    #[test]
    fn exclusions_parse() {
        assert_eq!(Exclusion::parse("tier:negative"), Some(Exclusion::Tier(Tier::Negative)));
        assert!(Exclusion::parse("vip").is_none());
        assert!(EXCLUDABLE.iter().all(|x| Exclusion::parse(x).is_some()), "every listed word parses");
        assert!(Exclusion::parse("derived.value_tier:high").is_none(), "a derived one needs the pack");
        // Copied into every rule's lists and compared on every decision: kept to a few bytes.
        assert!(std::mem::size_of::<Exclusion>() <= 4);
    }
}
