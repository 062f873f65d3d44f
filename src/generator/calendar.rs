//! The window's days: local midnight, workdays, the dates notices quote, and the events the
//! calendar file lists (concerts at the venue, weather alerts for the alert city, festivals, the
//! cut-over), which the episodes then play out.

use chrono::{Datelike, Days, NaiveDate, Offset, Weekday};

use super::world::{ALERT_CITY, ARTIST, CUTOVER_TAG, CUTOVER2_TAG, VENUE};
use crate::time::{DAY, HOUR, MINUTE, Millis, SECOND, format_ts};

/// A weather alert for [`ALERT_CITY`] starts at 06:00 local every this many days from day 0 and
/// lasts 24 hours.
const ALERT_EVERY: usize = 7;

/// Fixed-date festivals an operator greets on: month, day, name, title.
const FESTIVALS: [(u32, u32, &str, &str); 5] = [
    (1, 1, "new_year", "元旦"),
    (5, 1, "labour_day", "劳动节"),
    (10, 1, "national_day", "国庆节"),
    (12, 25, "christmas", "圣诞节"),
    (3, 8, "womens_day", "妇女节"),
];

/// One day of the window.
pub(super) struct DayInfo {
    pub(super) date: NaiveDate,
    pub(super) workday: bool,
    /// YYYY-MM-DD thirty days ahead, for contract expiry notices.
    pub(super) plus30: String,
    /// Last day of the month, when points expire.
    pub(super) month_end: String,
}

/// The generated window: `days` local days from `start`.
pub(super) struct Calendar {
    /// Epoch millis of local midnight of the first day.
    pub(super) start: Millis,
    pub(super) days: u32,
    /// The local time of the `ts` strings and of the day's rhythm.
    pub(super) offset: chrono::FixedOffset,
    /// One per day.
    pub(super) info: Vec<DayInfo>,
}

impl Calendar {
    /// `days` (at least 1) from local midnight `start`, `offset_secs` east of UTC.
    pub(super) fn new(start: Millis, days: u32, offset_secs: i32) -> Calendar {
        let days = days.max(1);
        let offset = chrono::FixedOffset::east_opt(offset_secs).unwrap_or(chrono::Utc.fix());
        let info = (0..days)
            .map(|d| {
                let local = start + i64::from(d) * DAY + i64::from(offset_secs) * SECOND;
                let date = chrono::DateTime::from_timestamp_millis(local).map(|t| t.date_naive()).unwrap_or_default();
                let plus30 = date.checked_add_days(Days::new(30)).unwrap_or(date);
                let next_month = if date.month() == 12 {
                    NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
                };
                let month_end = next_month.and_then(|d| d.pred_opt()).unwrap_or(date);
                DayInfo {
                    date,
                    workday: !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
                    plus30: plus30.format("%Y-%m-%d").to_string(),
                    month_end: month_end.format("%Y-%m-%d").to_string(),
                }
            })
            .collect();
        Calendar { start, days, offset, info }
    }

    pub(super) fn end(&self) -> Millis {
        self.start + i64::from(self.days) * DAY
    }

    /// The day (0-based) of time t, clamped to the window.
    pub(super) fn day_of(&self, t: Millis) -> usize {
        (((t - self.start).max(0) / DAY) as usize).min(self.info.len().saturating_sub(1))
    }

    /// The local hour of time t.
    pub(super) fn hour_of(&self, t: Millis) -> i64 {
        (t - self.start).rem_euclid(DAY) / HOUR
    }

    /// Whether day `d` (0-based) opens a weather alert.
    fn alert_day(&self, d: usize) -> bool {
        d.is_multiple_of(ALERT_EVERY)
    }

    /// Whether a weather alert is on at time t (06:00 of an alert day to 06:00 the next day).
    pub(super) fn alert_on(&self, t: Millis) -> bool {
        let since = t - 6 * HOUR - self.start;
        since >= 0 && self.alert_day((since / DAY) as usize)
    }

    /// The calendar file: a concert every evening, the weather alerts, the festivals in the
    /// window (or at least the next one), and the network cut-over after it.
    pub(super) fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let ts = |t: Millis| format_ts(t, self.offset);
        for (d, info) in self.info.iter().enumerate() {
            let day0 = self.start + d as i64 * DAY;
            // Day-suffixed names only when there is more than one concert to tell apart.
            let name = if d == 0 {
                "concert_wukesong".to_string()
            } else {
                format!("concert_wukesong_{}", info.date.format("%Y%m%d"))
            };
            out.push(format!(
                "{{\"name\":\"{name}\",\"kind\":\"concert\",\"title\":\"五棵松演唱会\",\"artist\":\"{ARTIST}\",\"venue\":\"{}\",\"start\":\"{}\",\"end\":\"{}\"}}",
                VENUE.1,
                ts(day0 + 19 * HOUR + 30 * MINUTE),
                ts(day0 + 22 * HOUR + 30 * MINUTE)
            ));
        }
        // Weather alerts for the alert city, 06:00 to 06:00, on every few days of the window.
        for (d, info) in self.info.iter().enumerate().filter(|(d, _)| self.alert_day(*d)) {
            let from = self.start + d as i64 * DAY + 6 * HOUR;
            out.push(format!(
                "{{\"name\":\"weather_alert_{ALERT_CITY}_{}\",\"kind\":\"weather_alert\",\"title\":\"暴雨蓝色预警\",\"venue\":\"city:{ALERT_CITY}\",\"start\":\"{}\",\"end\":\"{}\"}}",
                info.date.format("%Y%m%d"),
                ts(from),
                ts(from + DAY)
            ));
        }
        // Festivals in the window, or at least the next one, so the greeting rule has a date to use.
        let first = self.info.first().map(|d| d.date).unwrap_or_default();
        let last = self.info.last().map(|d| d.date).unwrap_or(first);
        let horizon = last.checked_add_days(Days::new(45)).unwrap_or(last);
        let mut fest: Vec<(NaiveDate, &str, &str)> = Vec::new();
        for y in first.year()..=horizon.year() + 1 {
            for (mo, da, name, title) in FESTIVALS {
                if let Some(date) = NaiveDate::from_ymd_opt(y, mo, da)
                    && date >= first
                {
                    fest.push((date, name, title));
                }
            }
        }
        fest.sort();
        for (k, (date, name, title)) in fest.iter().enumerate() {
            if k > 0 && *date > horizon {
                break;
            }
            let day0 = self.start + (*date - first).num_days() * DAY;
            out.push(format!(
                "{{\"name\":\"{name}_{}\",\"kind\":\"festival\",\"title\":\"{title}\",\"start\":\"{}\",\"end\":\"{}\"}}",
                date.year(),
                ts(day0),
                ts(day0 + DAY)
            ));
        }
        // A network cut-over in the night after the window, announced to whoever is seen in its cells.
        let cut0 = self.end() + HOUR;
        out.push(format!(
            "{{\"name\":\"cutover_zgc01\",\"kind\":\"cutover\",\"title\":\"中关村基站割接\",\"venue\":\"{CUTOVER_TAG}\",\"start\":\"{}\",\"end\":\"{}\"}}",
            ts(cut0),
            ts(cut0 + 4 * HOUR)
        ));
        out.push(format!(
            "{{\"name\":\"cutover_wj02\",\"kind\":\"cutover\",\"title\":\"望京基站割接\",\"venue\":\"{CUTOVER2_TAG}\",\"start\":\"{}\",\"end\":\"{}\"}}",
            ts(cut0 + HOUR),
            ts(cut0 + 3 * HOUR)
        ));
        // The artist's fan event about two weeks after the window, where concert-goers are invited.
        let fan0 = self.end() + 16 * DAY + 19 * HOUR;
        out.push(format!(
            "{{\"name\":\"fan_event_{}\",\"kind\":\"fan_event\",\"title\":\"{ARTIST}歌迷见面会\",\"artist\":\"{ARTIST}\",\"place\":\"北京工人体育馆\",\"start\":\"{}\",\"end\":\"{}\"}}",
            first.format("%Y%m"),
            ts(fan0),
            ts(fan0 + 2 * HOUR + 30 * MINUTE)
        ));
        out
    }
}
