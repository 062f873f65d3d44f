//! The condition language: syntax -> type check -> a compiled tree ([`Ir`]) that evaluates
//! against one subscriber's context without parsing, name lookups or allocation (string
//! values borrow from the event, profile or rule).
//!
//! Types matter to operators: money (fen), durations and times are distinct from plain
//! numbers, so `balance < 10` is refused with "write `10 CNY`" instead of silently comparing
//! fen with yuan.

pub mod check;
pub mod compiled;
pub mod kept;
mod pin;
pub mod schema;
mod settle;
pub mod syntax;
mod upcoming;

use crate::event::{Body, Event, Kind};
use crate::refdata::{Labels, Names, Profile, RefData, TagId, Vocab};
use crate::state::SubState;
use crate::time::Millis;
pub use compiled::{Calc, Calced, Cond};
pub use pin::{Activity, ActivityAt, DateOf, Pin, Stretch};
pub use schema::{Field, SymTy, Ty};
pub use settle::{WindowRead, bare, steady, steady_part, window_or_steady_reads, window_reads};
use std::borrow::Cow;
use std::cmp::Ordering;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// `a OP b` seen from the other side: `1 < x` is `x > 1`.
    /// The operator that holds exactly when this one does not (`==` and `!=`, `<` and `>=`).
    pub fn negated(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::Lt => CmpOp::Ge,
            CmpOp::Le => CmpOp::Gt,
            CmpOp::Gt => CmpOp::Le,
            CmpOp::Ge => CmpOp::Lt,
        }
    }

    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            same => same,
        }
    }
}

/// `a OP b` when it compares a window read (`Ir::Agg`) with a constant, seen with the read on
/// the left (`3 <= count(...)` is `count(...) >= 3`): the operator, the read's slot, bucket and
/// window, and the constant.
pub fn window_against_constant(op: CmpOp, a: &Ir, b: &Ir) -> Option<(CmpOp, (u32, i64, i64), i64)> {
    match (a, b) {
        (Ir::Agg { slot, bucket, window }, Ir::Int(n)) => Some((op, (*slot, *bucket, *window), *n)),
        (Ir::Int(n), Ir::Agg { slot, bucket, window }) => Some((op.flipped(), (*slot, *bucket, *window), *n)),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrOp {
    StartsWith,
    EndsWith,
    Contains,
}

/// A compiled, type-checked expression.
#[derive(Clone, Debug)]
pub enum Ir {
    Bool(bool),
    Int(i64),
    Str(Box<str>),
    Sym(u8),
    Null,
    Field(Field),
    /// `event.attrs.NAME` of a crm event (untyped JSON).
    Attr(Box<str>),
    Not(Box<Ir>),
    And(Box<[Ir]>),
    Or(Box<[Ir]>),
    Cmp(CmpOp, Box<Ir>, Box<Ir>),
    Arith(ArOp, Box<Ir>, Box<Ir>),
    Neg(Box<Ir>),
    StrTest(StrOp, Box<Ir>, Box<Ir>),
    /// Enumerated value in a set (bit mask by variant index).
    SymIn(Box<Ir>, u64),
    StrIn(Box<Ir>, Box<[Box<str>]>),
    /// A string list (services, prefs) has the item.
    ListHas(Box<Ir>, Box<Ir>),
    /// A string list has any of these.
    ListAny(Box<Ir>, Box<[Box<str>]>),
    /// A tag set has any of these tags.
    TagsAny(Box<Ir>, Box<[TagId]>),
    /// A tag set has the tag named by a string value.
    TagsHasNamed(Box<Ir>, Box<Ir>),
    /// Windowed aggregate slot, with its bucket width and window.
    Agg {
        slot: u32,
        bucket: i64,
        window: i64,
    },
    /// Windowed aggregate slot read over a local calendar month: `last` the whole previous
    /// month, else this month from the 1st to now.
    AggMonth {
        slot: u32,
        bucket: i64,
        last: bool,
    },
    /// Distinct-count slot over its window: how many different values.
    Distinct {
        slot: u32,
        window: i64,
    },
    /// Sequence slot: true when the current event completed it.
    Seq(u32),
    /// The current event moved the subscriber into a cell with one of these tags.
    Entered(Box<[TagId]>),
    /// The current event moved the subscriber out of the last cell with one of these tags.
    Left(Box<[TagId]>),
    /// Time spent so far in cells carrying one of these tags (0 when not there).
    Dwell(Box<[TagId]>),
    /// As `Dwell`, for a tag named by a string value (e.g. `calendar.venue`).
    DwellNamed(Box<Ir>),
    /// The subscriber was in a cell with one of these tags within the window.
    Visited(Box<[TagId]>, i64),
    /// Whole local days from today until the calendar entry starts (negative once started).
    DaysUntil(u32),
    Exists(Box<Ir>),
    /// `armed.PATH` in a timer's `cancel_if` or `recheck`: the value PATH had when the timer was
    /// armed (kept with it by that name, [`crate::state::kept`]).
    Armed(std::sync::Arc<str>),
    Min(Box<Ir>, Box<Ir>),
    Max(Box<Ir>, Box<Ir>),
    Abs(Box<Ir>),
}

impl Ir {
    /// True when the value is the same for every subscriber at a given moment (calendar and
    /// clock facts, constants): a daily rule evaluates such parts once per tick, not once per
    /// subscriber.
    pub fn is_global(&self) -> bool {
        use schema::Field as F;
        match self {
            Ir::Bool(_) | Ir::Int(_) | Ir::Str(_) | Ir::Sym(_) | Ir::Null | Ir::DaysUntil(_) => true,
            Ir::Field(f) => {
                matches!(f, F::Festival | F::Now | F::Hour | F::Minute | F::Weekday | F::Day | F::Month | F::MonthDay)
            }
            Ir::Not(x) | Ir::Neg(x) | Ir::Exists(x) | Ir::Abs(x) | Ir::SymIn(x, _) | Ir::StrIn(x, _) => x.is_global(),
            Ir::And(xs) | Ir::Or(xs) => xs.iter().all(Ir::is_global),
            Ir::Cmp(_, a, b) | Ir::Arith(_, a, b) | Ir::StrTest(_, a, b) | Ir::Min(a, b) | Ir::Max(a, b) => {
                a.is_global() && b.is_global()
            }
            _ => false,
        }
    }

    /// The expressions this one is made of, in order (none for a leaf). Every variant is named:
    /// a new one must say what it is made of.
    pub fn parts(&self) -> Vec<&Ir> {
        match self {
            Ir::Bool(_) | Ir::Int(_) | Ir::Str(_) | Ir::Sym(_) | Ir::Null | Ir::Field(_) | Ir::Attr(_) => Vec::new(),
            Ir::Armed(_) => Vec::new(),
            Ir::Agg { .. } | Ir::AggMonth { .. } | Ir::Distinct { .. } | Ir::Seq(_) | Ir::DaysUntil(_) => Vec::new(),
            Ir::Entered(_) | Ir::Left(_) | Ir::Dwell(_) | Ir::Visited(..) => Vec::new(),
            Ir::Not(x) | Ir::Neg(x) | Ir::Exists(x) | Ir::Abs(x) | Ir::DwellNamed(x) => vec![x],
            Ir::SymIn(x, _) | Ir::StrIn(x, _) | Ir::ListAny(x, _) | Ir::TagsAny(x, _) => vec![x],
            Ir::And(xs) | Ir::Or(xs) => xs.iter().collect(),
            Ir::Cmp(_, a, b)
            | Ir::Arith(_, a, b)
            | Ir::StrTest(_, a, b)
            | Ir::Min(a, b)
            | Ir::Max(a, b)
            | Ir::ListHas(a, b)
            | Ir::TagsHasNamed(a, b) => vec![a, b],
        }
    }

    /// The parts of a condition (its top-level `and` terms) that are global.
    pub fn global_parts(&self) -> Vec<&Ir> {
        match self {
            Ir::And(xs) => xs.iter().filter(|x| x.is_global()).collect(),
            x if x.is_global() => vec![x],
            _ => Vec::new(),
        }
    }
}

/// A runtime value. Strings borrow where they can.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    Sym(u8),
    /// A set of services or preferences, with the vocabulary its bits index.
    List(&'a Labels, &'a Vocab),
    Tags(&'a [TagId]),
    Json(&'a serde_json::Value),
}

impl Value<'_> {
    fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Json(j) => j.as_i64(),
            _ => None,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Json(j) => j.as_str(),
            _ => None,
        }
    }
}

/// Local calendar facts of the evaluation time, computed once per event.
#[derive(Clone, Copy, Debug)]
pub struct Local {
    pub date: chrono::NaiveDate,
    pub hour: u32,
    pub minute: u32,
    /// `date`'s month and day, worked out once (a daily pass asks for them per subscriber).
    month_day: (u32, u32),
}

impl Local {
    pub fn at(now: Millis, offset: chrono::FixedOffset) -> Local {
        use crate::time::{DAY, HOUR, MINUTE, civil_from_days};
        // By day numbers (every decision's quiet hours and every timer ask): chrono's own
        // answer below only for a time its calendar cannot hold.
        let local = now.checked_add(i64::from(offset.local_minus_utc()) * 1000);
        if let Some(local) = local {
            let (days, ms) = (local.div_euclid(DAY), local.rem_euclid(DAY));
            let (y, m, d) = civil_from_days(days);
            let date = i32::try_from(y).ok().and_then(|y| chrono::NaiveDate::from_ymd_opt(y, m as u32, d as u32));
            if let Some(date) = date {
                let (hour, minute) = ((ms / HOUR) as u32, (ms % HOUR / MINUTE) as u32);
                return Local { date, hour, minute, month_day: (m as u32, d as u32) };
            }
        }
        Local::by_chrono(now, offset)
    }

    /// [`Local::at`] as chrono works it out (and its answer for a time out of its range).
    fn by_chrono(now: Millis, offset: chrono::FixedOffset) -> Local {
        use chrono::{TimeZone, Timelike};
        let t = offset
            .timestamp_millis_opt(now)
            .single()
            .unwrap_or_else(|| offset.from_utc_datetime(&chrono::NaiveDateTime::default()));
        use chrono::Datelike;
        let date = t.date_naive();
        Local { date, hour: t.hour(), minute: t.minute(), month_day: (date.month(), date.day()) }
    }
}

/// Everything a condition can read about one subscriber at one moment.
pub struct Ctx<'a> {
    /// The event being evaluated; `None` when a timer fires.
    pub event: Option<&'a Event>,
    pub now: Millis,
    pub local: Local,
    pub sub: &'a Profile,
    /// The strings `sub` points at.
    pub names: &'a Names,
    pub state: &'a SubState,
    pub refdata: &'a RefData,
    pub offset: chrono::FixedOffset,
    /// What the timer being cancelled or rechecked kept when it was armed (`armed.PATH`);
    /// empty elsewhere.
    pub armed: &'a [crate::state::kept::Kept],
}

impl<'a> Ctx<'a> {
    pub fn eval_bool(&self, ir: &'a Ir) -> bool {
        matches!(self.eval(ir), Value::Bool(true))
    }

    pub fn eval(&self, ir: &'a Ir) -> Value<'a> {
        match ir {
            Ir::Bool(b) => Value::Bool(*b),
            Ir::Int(n) => Value::Int(*n),
            Ir::Str(s) => Value::Str(Cow::Borrowed(s)),
            Ir::Sym(s) => Value::Sym(*s),
            Ir::Null => Value::Null,
            Ir::Field(f) => f.read(self),
            Ir::Armed(path) => kept::read(self.armed, path),
            Ir::Attr(name) => match self.event.map(|e| &e.body) {
                Some(Body::Crm(c)) => c.attrs.get(&**name).map_or(Value::Null, |v| match v {
                    serde_json::Value::Null => Value::Null,
                    serde_json::Value::Bool(b) => Value::Bool(*b),
                    other => Value::Json(other),
                }),
                _ => Value::Null,
            },
            Ir::Not(x) => Value::Bool(!self.eval_bool(x)),
            Ir::And(xs) => Value::Bool(xs.iter().all(|x| self.eval_bool(x))),
            Ir::Or(xs) => Value::Bool(xs.iter().any(|x| self.eval_bool(x))),
            Ir::Cmp(op, a, b) => Value::Bool(compare(*op, &self.eval(a), &self.eval(b))),
            Ir::Arith(op, a, b) => match (self.eval(a).as_int(), self.eval(b).as_int()) {
                (Some(x), Some(y)) => match op {
                    ArOp::Add => Value::Int(x.saturating_add(y)),
                    ArOp::Sub => Value::Int(x.saturating_sub(y)),
                    ArOp::Mul => Value::Int(x.saturating_mul(y)),
                    // `None` for a zero divisor and for i64::MIN / -1, which would panic.
                    ArOp::Div => x.checked_div(y).map_or(Value::Null, Value::Int),
                    ArOp::Rem => x.checked_rem(y).map_or(Value::Null, Value::Int),
                },
                _ => Value::Null,
            },
            Ir::Neg(x) => self.eval(x).as_int().map_or(Value::Null, |n| Value::Int(n.saturating_neg())),
            Ir::StrTest(op, a, b) => {
                let (a, b) = (self.eval(a), self.eval(b));
                Value::Bool(match (a.as_str(), b.as_str()) {
                    (Some(a), Some(b)) => match op {
                        StrOp::StartsWith => a.starts_with(b),
                        StrOp::EndsWith => a.ends_with(b),
                        StrOp::Contains => a.contains(b),
                    },
                    _ => false,
                })
            }
            Ir::SymIn(x, mask) => Value::Bool(matches!(self.eval(x), Value::Sym(s) if mask & (1 << s) != 0)),
            Ir::StrIn(x, items) => {
                let v = self.eval(x);
                Value::Bool(v.as_str().is_some_and(|s| items.iter().any(|i| &**i == s)))
            }
            Ir::ListHas(list, item) => Value::Bool(match (self.eval(list), self.eval(item)) {
                (Value::List(l, vocab), v) => v.as_str().is_some_and(|s| vocab.has(l, s)),
                _ => false,
            }),
            Ir::ListAny(list, items) => {
                Value::Bool(matches!(self.eval(list), Value::List(l, vocab) if items.iter().any(|i| vocab.has(l, i))))
            }
            Ir::TagsAny(tags, want) => Value::Bool(matches!(self.eval(tags), Value::Tags(t) if any_tag(t, want))),
            Ir::TagsHasNamed(tags, name) => Value::Bool(match (self.eval(tags), self.eval(name)) {
                (Value::Tags(t), n) => {
                    n.as_str().and_then(|n| self.refdata.tag(n)).is_some_and(|id| t.binary_search(&id).is_ok())
                }
                _ => false,
            }),
            Ir::Agg { slot, bucket, window } => {
                Value::Int(self.state.agg_value_window(*slot, self.now, *bucket, *window))
            }
            Ir::AggMonth { slot, bucket, last } => {
                let (from, to) = month_span(self.local.date, self.offset, *last, self.now);
                // The buckets in [from, to): the window read ends at `to - 1` and starts at `from`.
                Value::Int(self.state.agg_value_window(*slot, to - 1, *bucket, (to - 1 - from).max(0)))
            }
            Ir::Distinct { slot, window } => Value::Int(self.state.distinct_count(*slot, self.now, *window)),
            Ir::Seq(slot) => Value::Bool(self.event.is_some() && self.state.seq_completed_now(*slot)),
            Ir::Entered(tags) => Value::Bool(self.event.is_some() && self.state.entered(tags, self.refdata)),
            Ir::Left(tags) => Value::Bool(self.event.is_some() && self.state.left(tags, self.refdata)),
            Ir::Dwell(tags) => Value::Int(self.state.dwell(tags, self.now, self.refdata)),
            Ir::DwellNamed(name) => {
                let tag = self.eval(name).as_str().and_then(|n| self.refdata.tag(n));
                Value::Int(tag.map_or(0, |t| self.state.dwell(&[t], self.now, self.refdata)))
            }
            Ir::Visited(tags, window) => Value::Bool(self.state.visited(tags, *window, self.now, self.refdata)),
            Ir::DaysUntil(idx) => self.refdata.calendar.get(*idx as usize).map_or(Value::Null, |c| {
                let start = Local::at(c.start, self.offset).date;
                Value::Int((start - self.local.date).num_days())
            }),
            Ir::Exists(x) => Value::Bool(!matches!(self.eval(x), Value::Null)),
            Ir::Min(a, b) | Ir::Max(a, b) => match (self.eval(a).as_int(), self.eval(b).as_int()) {
                (Some(x), Some(y)) => Value::Int(if matches!(ir, Ir::Min(..)) { x.min(y) } else { x.max(y) }),
                (Some(x), None) | (None, Some(x)) => Value::Int(x),
                _ => Value::Null,
            },
            Ir::Abs(x) => self.eval(x).as_int().map_or(Value::Null, |n| Value::Int(n.saturating_abs())),
        }
    }

    /// Whole days from today (local) to the next occurrence of a month-day (0 = today).
    pub fn days_to_anniversary(&self, (m, d): (u32, u32)) -> i64 {
        let today = self.local.date;
        let on = |year: i32| {
            chrono::NaiveDate::from_ymd_opt(year, m, d).or_else(|| chrono::NaiveDate::from_ymd_opt(year, m, d - 1))
        };
        use chrono::Datelike;
        match on(today.year()) {
            Some(this_year) if this_year >= today => (this_year - today).num_days(),
            _ => on(today.year() + 1).map_or(i64::MAX, |next| (next - today).num_days()),
        }
    }

    /// Whether today (local) is the month-day; 29 February falls on the 28th in common years.
    /// Cheaper than [`Ctx::days_to_anniversary`]: daily rules ask it of every subscriber.
    pub fn is_anniversary(&self, (m, d): (u32, u32)) -> bool {
        use chrono::Datelike;
        let today = self.local.month_day;
        if today == (m, d) {
            return true;
        }
        (m, d) == (2, 29)
            && today == (2, 28)
            && chrono::NaiveDate::from_ymd_opt(self.local.date.year(), 2, 29).is_none()
    }

    /// `sub`'s birthday is today (`subscriber.is_birthday`); `sub` need not be this context's
    /// subscriber (a daily pass asks it of every record before evaluating anything).
    pub fn birthday_today(&self, sub: &Profile) -> bool {
        sub.birthday().is_some_and(|b| self.is_anniversary(b))
    }

    /// The calendar entry in progress where the subscriber is now (`calendar.*`): one tagged
    /// with a tag of their cell.
    pub fn calendar_here(&self) -> Option<&'a crate::refdata::CalendarEntry> {
        self.refdata.calendar_at(self.state.known_cell(), self.now)
    }

    /// Whole local days since a date.
    pub fn days_since(&self, date: chrono::NaiveDate) -> i64 {
        (self.local.date - date).num_days()
    }

    pub fn kind(&self) -> Option<Kind> {
        self.event.map(Event::kind)
    }
}

fn any_tag(have: &[TagId], want: &[TagId]) -> bool {
    want.iter().any(|w| have.binary_search(w).is_ok())
}

/// Comparison with null: `==` is false and `!=` true unless both sides are null; ordering
/// comparisons with null are false. This is what "no such value" means to an operator.
fn compare(op: CmpOp, a: &Value, b: &Value) -> bool {
    let ord: Option<Ordering> = match (a, b) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Sym(x), Value::Sym(y)) => Some(x.cmp(y)),
        (Value::Json(j), Value::Bool(y)) | (Value::Bool(y), Value::Json(j)) => j.as_bool().map(|x| x.cmp(y)),
        _ => match (a.as_int(), b.as_int()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => match (a.as_str(), b.as_str()) {
                (Some(x), Some(y)) => Some(x.cmp(y)),
                _ => None,
            },
        },
    };
    holds(op, ord)
}

/// What an ordering means to a comparison: `None` (no order: a null, or values of two types)
/// is false, but for `!=`.
#[inline]
fn holds(op: CmpOp, ord: Option<Ordering>) -> bool {
    match (op, ord) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Eq, Some(o)) => o == Ordering::Equal,
        (CmpOp::Ne, Some(o)) => o != Ordering::Equal,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
    }
}

/// The span `[from, to)` of a local calendar month in event time: the previous month when
/// `last`, else this month up to and including `now`.
fn month_span(today: chrono::NaiveDate, offset: chrono::FixedOffset, last: bool, now: Millis) -> (Millis, Millis) {
    use chrono::{Datelike, TimeZone};
    let first = today.with_day(1).unwrap_or(today);
    let midnight = |d: chrono::NaiveDate| {
        offset.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN)).single().map_or(now, |t| t.timestamp_millis())
    };
    if !last {
        return (midnight(first), now + 1);
    }
    let prev = first.pred_opt().and_then(|d| d.with_day(1)).unwrap_or(first);
    (midnight(prev), midnight(first))
}

/// Bucket width for a window: about 1/60 of it, so a count is exact to within one bucket at
/// the far edge of the window while a subscriber's slot holds at most ~61 buckets.
pub fn bucket_for(window: i64) -> i64 {
    let b = (window / 60).max(1000);
    // Round to whole seconds so buckets align across windows of the same size.
    b - b % 1000
}

#[cfg(test)]
mod tests {
    use super::month_span;
    use chrono::{FixedOffset, NaiveDate, TimeZone};

    fn at(offset: FixedOffset, y: i32, m: u32, d: u32) -> i64 {
        offset.with_ymd_and_hms(y, m, d, 0, 0, 0).single().map_or(0, |t| t.timestamp_millis())
    }

    #[test]
    fn calendar_months_start_at_local_midnight_across_the_year_end() {
        let cn = FixedOffset::east_opt(8 * 3600).expect("+08:00");
        let now = at(cn, 2027, 1, 2) + 10 * 3_600_000;
        let today = NaiveDate::from_ymd_opt(2027, 1, 2).expect("a date");
        assert_eq!(month_span(today, cn, true, now), (at(cn, 2026, 12, 1), at(cn, 2027, 1, 1)));
        assert_eq!(month_span(today, cn, false, now), (at(cn, 2027, 1, 1), now + 1));
        // 1 March: the previous month is February, 28 days in 2027.
        let today = NaiveDate::from_ymd_opt(2027, 3, 1).expect("a date");
        let (from, to) = month_span(today, cn, true, at(cn, 2027, 3, 1));
        assert_eq!((to - from) / crate::time::DAY, 28);
    }

    #[test]
    fn local_time_by_day_numbers_is_chronos() {
        use super::Local;
        let fields = |l: Local| (l.date, l.hour, l.minute, l.month_day);
        let offsets = [0, 8 * 3600, -5 * 3600 - 1800, 14 * 3600, -12 * 3600, 3600 + 59];
        // Around the epoch, leap days, year ends, a minute either side of midnight, far past
        // and future, and the ends of the range (chrono's answer for what it cannot hold).
        let mut times = vec![0, -1, 1, 59_999, 60_000, -60_000, i64::MAX, i64::MIN, i64::MAX - 1_000, i64::MIN + 1];
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (2024, 2, 29), (2026, 12, 31), (2100, 3, 1), (1600, 1, 1)] {
            let day = at(FixedOffset::east_opt(0).expect("UTC"), y, m, d);
            times.extend([-61_000, -1, 0, 1, 59_999, 12 * 3_600_000 + 7].map(|o| day + o));
        }
        times.extend((0..2_000).map(|k: i64| k * 7_654_321_987 - 4_000_000_000_000));
        for off in offsets {
            let offset = FixedOffset::east_opt(off).expect("an offset");
            for &t in &times {
                assert_eq!(fields(Local::at(t, offset)), fields(Local::by_chrono(t, offset)), "{t} at {offset}");
            }
        }
    }
}
