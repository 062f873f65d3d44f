//! Fields computed from dates: the days left on a subscriber's package, contract, handset lease
//! and stay commitment, years in network, and the upcoming calendar entries that concern this
//! subscriber (a network cut-over in cells they were seen in, a fan event of an artist they
//! follow). Kept apart from `schema` because each one is a small search, not a read, and the
//! rules that use them are daily scheduled rules: the cost is paid once a day per subscriber.

use super::Local;
use super::schema::Field;
use super::{Ctx, Value};
use crate::refdata::CalendarEntry;
use crate::time::DAY;
use chrono::{Datelike, NaiveDate};
use std::borrow::Cow;

/// How far ahead an upcoming cut-over is looked for.
const CUTOVER_AHEAD: i64 = 14 * DAY;
/// How far ahead a fan event is looked for: fan clubs announce them about a month ahead.
const FAN_EVENT_AHEAD: i64 = 45 * DAY;
/// A cut-over concerns a subscriber seen in its cells within this window.
const SEEN_WITHIN: i64 = 7 * DAY;
/// A subscriber follows an artist with the preference `artist:NAME` ...
pub const ARTIST_PREF: &str = "artist:";
/// ... or a ringback tone of theirs, the service `ringback:NAME`.
pub const RINGBACK_SERVICE: &str = "ringback:";

impl Field {
    /// Reads a date-derived field (`None`: not one of them).
    pub(super) fn read_dated<'a>(self, cx: &Ctx<'a>) -> Option<Value<'a>> {
        use Field as F;
        let d = cx.sub.dates;
        let at = |date: Option<NaiveDate>| date.and_then(|d| midnight(cx, d)).map_or(Value::Null, Value::Int);
        let left = |date: Option<NaiveDate>| date.map_or(Value::Null, |d| Value::Int((d - cx.local.date).num_days()));
        let entry_str = |e: Option<&'a CalendarEntry>, f: fn(&'a CalendarEntry) -> Option<&'a str>| {
            e.and_then(f).map_or(Value::Null, |s| Value::Str(Cow::Borrowed(s)))
        };
        let days_to = |e: Option<&CalendarEntry>| e.map_or(Value::Null, |e| Value::Int(days_from(cx, e.start)));
        Some(match self {
            F::PackageExpires => at(d.package_expires),
            F::DaysToPackageExpiry => left(d.package_expires),
            F::ContractExpires => at(d.contract_expires),
            F::DaysToContractExpiry => left(d.contract_expires),
            F::LeaseExpires => at(d.lease_expires),
            F::DaysToLeaseExpiry => left(d.lease_expires),
            F::StayUntil => at(d.stay_until),
            F::DaysToStayEnd => left(d.stay_until),
            F::TenureYears => cx.sub.join_date.map_or(Value::Null, |j| Value::Int(full_years(j, cx.local.date))),
            F::IsJoinAnniversary => Value::Bool(
                cx.sub
                    .join_date
                    .is_some_and(|j| cx.local.date.year() > j.year() && cx.is_anniversary((j.month(), j.day()))),
            ),
            F::CutoverTitle => entry_str(cutover(cx), |e| Some(&e.title)),
            F::CutoverStart => cutover(cx).map_or(Value::Null, |e| Value::Int(e.start)),
            F::CutoverDays => days_to(cutover(cx)),
            F::FanEventTitle => entry_str(fan_event(cx), |e| Some(&e.title)),
            F::FanEventArtist => entry_str(fan_event(cx), |e| e.artist.as_deref()),
            F::FanEventPlace => entry_str(fan_event(cx), |e| e.place.as_deref()),
            F::FanEventStart => fan_event(cx).map_or(Value::Null, |e| Value::Int(e.start)),
            F::FanEventDays => days_to(fan_event(cx)),
            _ => return None,
        })
    }
}

/// Local days from the context's today to the day `t` falls on.
fn days_from(cx: &Ctx, t: i64) -> i64 {
    (Local::at(t, cx.offset).date - cx.local.date).num_days()
}

/// Local midnight of a date, in event time.
fn midnight(cx: &Ctx, d: NaiveDate) -> Option<i64> {
    d.and_hms_opt(0, 0, 0)?.and_local_timezone(cx.offset).single().map(|t| t.timestamp_millis())
}

/// Whole years from `from` to `to` (an anniversary on 29 February counts on 28 February).
fn full_years(from: NaiveDate, to: NaiveDate) -> i64 {
    let years = i64::from(to.year() - from.year());
    let this_year = NaiveDate::from_ymd_opt(to.year(), from.month(), from.day())
        .or_else(|| NaiveDate::from_ymd_opt(to.year(), from.month(), from.day() - 1));
    match this_year {
        Some(anniversary) if to < anniversary => (years - 1).max(0),
        _ => years.max(0),
    }
}

impl super::Ir {
    /// Whether it reads the cells the subscriber was seen in (`visited(...)`, the cut-over's
    /// fields): a daily pass that asks it of everyone fetches their recent cells ahead.
    pub fn reads_recent_cells(&self) -> bool {
        use super::Ir;
        match self {
            Ir::Visited(..) | Ir::Field(Field::CutoverTitle | Field::CutoverStart | Field::CutoverDays) => true,
            x => x.parts().into_iter().any(Ir::reads_recent_cells),
        }
    }

    /// False when one of the condition's top-level `and` terms is `cutover.days_until == N` or
    /// `fan_event.days_until == N` and no calendar entry of that kind starts N local days from
    /// the context's today: then the condition holds for no one, and a daily pass checks this
    /// once instead of searching the calendar for every subscriber.
    pub fn calendar_may_hold(&self, cx: &Ctx) -> bool {
        use super::{CmpOp, Ir};
        match self {
            Ir::And(xs) => xs.iter().all(|x| x.calendar_may_hold(cx)),
            Ir::Cmp(CmpOp::Eq, a, b) => {
                let (f, n) = match (&**a, &**b) {
                    (Ir::Field(f), Ir::Int(n)) | (Ir::Int(n), Ir::Field(f)) => (*f, *n),
                    _ => return true,
                };
                let (kind, ahead) = match f {
                    Field::CutoverDays => ("cutover", CUTOVER_AHEAD),
                    Field::FanEventDays => ("fan_event", FAN_EVENT_AHEAD),
                    _ => return true,
                };
                upcoming(cx, kind, ahead).any(|e| days_from(cx, e.start) == n)
            }
            _ => true,
        }
    }
}

/// Calendar entries of `kind` starting after now and within the look-ahead, soonest first.
fn upcoming<'a>(cx: &Ctx<'a>, kind: &'a str, ahead: i64) -> impl Iterator<Item = &'a CalendarEntry> + 'a {
    let now = cx.now;
    cx.refdata.calendar.iter().filter(move |e| &*e.kind == kind && e.start > now && e.start - now <= ahead)
}

/// The next cut-over (a calendar entry of kind `cutover`, its venue the tag of the affected
/// cells) in cells the subscriber was seen in within the last 7 days.
fn cutover<'a>(cx: &Ctx<'a>) -> Option<&'a CalendarEntry> {
    upcoming(cx, "cutover", CUTOVER_AHEAD)
        .find(|e| e.venue.is_some_and(|v| cx.state.visited(&[v], SEEN_WITHIN, cx.now, cx.refdata)))
}

/// The next fan event (a calendar entry of kind `fan_event` naming an `artist`) of an artist
/// the subscriber follows: a preference `artist:NAME` or a ringback tone `ringback:NAME`.
fn fan_event<'a>(cx: &Ctx<'a>) -> Option<&'a CalendarEntry> {
    let (sub, names) = (cx.sub, cx.names);
    upcoming(cx, "fan_event", FAN_EVENT_AHEAD).find(|e| {
        e.artist.as_deref().is_some_and(|a| {
            names.prefs.has(&sub.prefs, &format!("{ARTIST_PREF}{a}"))
                || names.services.has(&sub.services, &format!("{RINGBACK_SERVICE}{a}"))
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_condition_on_the_cut_over_or_visited_cells_reads_recent_cells() {
        use crate::rules::expr::schema::Field;
        use crate::rules::expr::{CmpOp, Ir};
        let cmp = |f: Field, n: i64| Ir::Cmp(CmpOp::Eq, Box::new(Ir::Field(f)), Box::new(Ir::Int(n)));
        let and = |xs: Vec<Ir>| Ir::And(xs.into_boxed_slice());
        let balance = cmp(Field::Balance, 0);
        assert!(and(vec![balance.clone(), cmp(Field::CutoverDays, 1)]).reads_recent_cells());
        assert!(Ir::Not(Box::new(Ir::Visited(Box::new([3]), 7))).reads_recent_cells());
        assert!(!and(vec![balance.clone(), cmp(Field::FanEventDays, 1)]).reads_recent_cells());
        assert!(!balance.reads_recent_cells());
    }
}
