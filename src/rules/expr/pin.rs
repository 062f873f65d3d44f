//! Pins: a daily condition that can only hold on one day of a subscriber's record — the
//! birthday, the anniversary of joining, the day a package, contract, lease or stay commitment
//! is N days away — names that day, so a daily pass asks an index of those days who can match
//! instead of visiting every subscriber (issue 22 §3). A pin is only a filter: the condition
//! is still evaluated in full on everyone the index names.

use super::schema::Field;
use super::{CmpOp, Ir};
use crate::refdata::Profile;
use chrono::{Datelike, NaiveDate};

/// A date of the subscriber's record that a pin reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DateOf {
    Birthday,
    Joined,
    PackageExpires,
    ContractExpires,
    LeaseExpires,
    StayUntil,
}

/// The one day a condition can hold on for a subscriber, as a function of their record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pin {
    /// The month and day of the date come round (`subscriber.is_birthday`,
    /// `subscriber.is_join_anniversary`); 29 February falls on the 28th in common years.
    Anniversary(DateOf),
    /// The date is this many days ahead (`subscriber.days_to_package_expiry == 7`).
    DaysAhead(DateOf, i64),
}

impl Ir {
    /// The pin of a condition: one of its top-level `and` terms that holds on one day of the
    /// subscriber's record only (`None`: it may hold on any day).
    pub fn pin(&self) -> Option<Pin> {
        match self {
            Ir::And(xs) => xs.iter().find_map(Ir::pin),
            Ir::Field(Field::IsBirthday) => Some(Pin::Anniversary(DateOf::Birthday)),
            Ir::Field(Field::IsJoinAnniversary) => Some(Pin::Anniversary(DateOf::Joined)),
            Ir::Cmp(CmpOp::Eq, a, b) => match (&**a, &**b) {
                (Ir::Field(f), Ir::Int(n)) | (Ir::Int(n), Ir::Field(f)) => days_to(*f).map(|d| Pin::DaysAhead(d, *n)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A window a daily condition needs some events in, or none in: a top-level `and` term
/// `count(X, W) >= N` with N ≥ 1 (or `> N` with N ≥ 0, `== N` with N ≥ 1), or `count(X, W)
/// == 0` (or `< 1`, `<= 0`). Which of the window's buckets a subscriber has says when it cannot
/// hold (see [`Activity::may_hold`]), so a daily pass need not visit them: the silent rules'
/// "none in 30 days, some in 60" names only whose last event of the kind is that old.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activity {
    pub slot: u32,
    pub bucket: i64,
    pub window: i64,
    /// `true`: some events are needed; `false`: none.
    pub some: bool,
}

impl Activity {
    /// Whether the term can hold at `now` for a subscriber whose newest bucket of the slot is
    /// `newest` (its index), read as the window read counts: a bucket counts when it ends after
    /// the window starts and starts by `now`.
    pub fn may_hold(&self, newest: Option<i64>, now: i64) -> bool {
        self.at(now).may_hold(newest)
    }

    /// The term at `now`, to ask of many subscribers (the buckets it counts worked out once).
    pub fn at(&self, now: i64) -> ActivityAt {
        // The buckets the window read counts, `first..=last` by index: those that end after
        // the window starts (`(idx + 1) * bucket > now - window`) and start by `now`.
        let (first, last) = ((now - self.window).div_euclid(self.bucket), now.div_euclid(self.bucket));
        ActivityAt { first, last, some: self.some }
    }
}

/// An [`Activity`] term at one moment: the buckets its window counts then.
#[derive(Clone, Copy, Debug)]
pub struct ActivityAt {
    first: i64,
    last: i64,
    some: bool,
}

impl ActivityAt {
    /// The first and last bucket the window reads, and whether events are needed (`some`).
    pub fn parts(&self) -> (i64, i64, bool) {
        (self.first, self.last, self.some)
    }

    /// [`Activity::may_hold`] at the moment the term was taken at.
    #[inline]
    pub fn may_hold(&self, newest: Option<i64>) -> bool {
        let Some(idx) = newest else { return !self.some };
        if self.some {
            // Older buckets end earlier still: none of them counts either.
            idx >= self.first
        } else {
            // A newest bucket in the window counts (a count's buckets are never empty).
            !(self.first <= idx && idx <= self.last)
        }
    }
}

impl Ir {
    /// The activity terms among a condition's top-level `and` terms (see [`Activity`]), on any
    /// window slot: the caller keeps those that count events.
    pub fn activity(&self) -> Vec<Activity> {
        match self {
            Ir::And(xs) => xs.iter().flat_map(Ir::activity).collect(),
            Ir::Cmp(op, a, b) => {
                let Some((op, agg, n)) = super::window_against_constant(*op, a, b) else { return Vec::new() };
                let some = match op {
                    CmpOp::Ge | CmpOp::Eq if n >= 1 => true,
                    CmpOp::Gt if n >= 0 => true,
                    CmpOp::Eq if n == 0 => false,
                    CmpOp::Lt if n == 1 => false,
                    CmpOp::Le if n == 0 => false,
                    _ => return Vec::new(),
                };
                let (slot, bucket, window) = agg;
                vec![Activity { slot, bucket, window, some }]
            }
            _ => Vec::new(),
        }
    }
}

/// The date a `subscriber.days_to_...` field counts down to.
fn days_to(f: Field) -> Option<DateOf> {
    Some(match f {
        Field::DaysToPackageExpiry => DateOf::PackageExpires,
        Field::DaysToContractExpiry => DateOf::ContractExpires,
        Field::DaysToLeaseExpiry => DateOf::LeaseExpires,
        Field::DaysToStayEnd => DateOf::StayUntil,
        _ => return None,
    })
}

/// A stretch of local days `[from, to)`, at most a year long, with the day each month and day
/// of the year falls on within it: an index of a month of days asks it of every record, and a
/// look-up is cheaper than working out the dates of two years for each.
pub struct Stretch {
    from: NaiveDate,
    to: NaiveDate,
    /// By month and day: the first day in the stretch an anniversary on it falls on (29
    /// February on the 28th in a common year).
    falls_on: Box<[[Option<NaiveDate>; 32]; 13]>,
}

impl Stretch {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Stretch {
        let mut falls_on = Box::new([[None; 32]; 13]);
        for d in from.iter_days().take_while(|d| *d < to) {
            let (m, day) = (d.month() as usize, d.day() as usize);
            falls_on[m][day].get_or_insert(d);
            if (m, day) == (2, 28) && !d.leap_year() {
                falls_on[2][29].get_or_insert(d);
            }
        }
        Stretch { from, to, falls_on }
    }
}

impl Pin {
    /// The local day within the stretch on which the pin holds for `sub`, if one does.
    pub fn day_in(self, sub: &Profile, stretch: &Stretch) -> Option<NaiveDate> {
        match self {
            Pin::Anniversary(of) => {
                let (m, d) = match of {
                    DateOf::Birthday => sub.birthday()?,
                    DateOf::Joined => sub.join_date.map(|j| (j.month(), j.day()))?,
                    _ => return None,
                };
                *stretch.falls_on.get(m as usize)?.get(d as usize)?
            }
            Pin::DaysAhead(of, n) => {
                let date = match of {
                    DateOf::PackageExpires => sub.dates.package_expires,
                    DateOf::ContractExpires => sub.dates.contract_expires,
                    DateOf::LeaseExpires => sub.dates.lease_expires,
                    DateOf::StayUntil => sub.dates.stay_until,
                    DateOf::Birthday | DateOf::Joined => None,
                }?;
                let d = date.checked_sub_signed(chrono::TimeDelta::try_days(n)?)?;
                (stretch.from <= d && d < stretch.to).then_some(d)
            }
        }
    }
}

/// The day month `m`, day `d` falls on in `year` (29 February on the 28th in a common year,
/// as [`super::Ctx::is_anniversary`] counts it).
#[cfg(test)]
fn anniversary(year: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, m, d)
        .or_else(|| if (m, d) == (2, 29) { NaiveDate::from_ymd_opt(year, 2, 28) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Msisdn;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date")
    }

    fn profile(birthday: Option<(u32, u32)>, joined: Option<&str>, package: Option<&str>) -> Profile {
        let mut r = crate::refdata::SubscriberRecord::unknown(Msisdn::from_raw(13_800_138_000));
        r.birthday = birthday;
        r.join_date = joined.map(day);
        r.dates.package_expires = package.map(day);
        Profile::new(&r, true, &mut crate::refdata::Names::default())
    }

    #[test]
    fn activity_terms_say_when_a_window_read_cannot_hold() {
        let agg = |w: i64| Ir::Agg { slot: 3, bucket: 10, window: w };
        let cmp = |op, a: Ir, n: i64| Ir::Cmp(op, Box::new(a), Box::new(Ir::Int(n)));
        let none = cmp(CmpOp::Eq, agg(300), 0);
        let some = Ir::Cmp(CmpOp::Le, Box::new(Ir::Int(3)), Box::new(agg(600)));
        let terms =
            Ir::And(vec![none, some, cmp(CmpOp::Lt, agg(300), 5), cmp(CmpOp::Ge, agg(300), 0)].into()).activity();
        assert_eq!(terms.len(), 2, "< 5 and >= 0 say nothing: {terms:?}");
        let (none, some) = (terms[0], terms[1]);
        assert!(!none.some && some.some && some.window == 600);
        // At 1000: the none-term's window counts buckets ending after 700 (index 70 on).
        assert!(none.may_hold(None, 1000) && none.may_hold(Some(69), 1000));
        assert!(!none.may_hold(Some(70), 1000) && !none.may_hold(Some(100), 1000));
        assert!(none.may_hold(Some(101), 1000), "a bucket after now is not counted: look");
        // The some-term's counts buckets ending after 400 (index 40 on).
        assert!(!some.may_hold(None, 1000) && !some.may_hold(Some(39), 1000));
        assert!(some.may_hold(Some(40), 1000) && some.may_hold(Some(100), 1000));
    }

    #[test]
    fn a_pin_names_the_day_in_the_stretch_its_condition_can_hold_on() {
        let (from, to) = (day("2026-12-20"), day("2027-01-20"));
        let bday = Pin::Anniversary(DateOf::Birthday);
        let p = profile(Some((1, 5)), Some("2019-12-24"), Some("2027-01-10"));
        assert_eq!(bday.day_in(&p, &Stretch::new(from, to)), Some(day("2027-01-05")), "across the new year");
        assert_eq!(Pin::Anniversary(DateOf::Joined).day_in(&p, &Stretch::new(from, to)), Some(day("2026-12-24")));
        assert_eq!(
            Pin::DaysAhead(DateOf::PackageExpires, 7).day_in(&p, &Stretch::new(from, to)),
            Some(day("2027-01-03"))
        );
        assert_eq!(
            Pin::DaysAhead(DateOf::PackageExpires, 30).day_in(&p, &Stretch::new(from, to)),
            None,
            "before the stretch"
        );
        assert_eq!(
            Pin::DaysAhead(DateOf::ContractExpires, 7).day_in(&p, &Stretch::new(from, to)),
            None,
            "no such date"
        );
        let p = profile(Some((6, 1)), None, None);
        assert_eq!(bday.day_in(&p, &Stretch::new(from, to)), None, "not in the stretch");
        // 29 February falls on the 28th in a common year, as `subscriber.is_birthday` counts it.
        let leap = profile(Some((2, 29)), None, None);
        assert_eq!(bday.day_in(&leap, &Stretch::new(day("2027-02-01"), day("2027-03-01"))), Some(day("2027-02-28")));
        assert_eq!(bday.day_in(&leap, &Stretch::new(day("2028-02-01"), day("2028-03-01"))), Some(day("2028-02-29")));
    }

    #[test]
    fn a_stretch_names_the_day_working_out_each_year_would() {
        // The first year of the two a stretch touches whose anniversary falls in it.
        let reference = |m: u32, d: u32, from: NaiveDate, to: NaiveDate| {
            [from.year(), from.year() + 1]
                .into_iter()
                .find_map(|y| anniversary(y, m, d).filter(|x| from <= *x && *x < to))
        };
        for start in ["2026-12-20", "2027-02-10", "2028-02-10", "2027-02-28", "2028-02-29", "2026-03-01", "2027-06-30"]
        {
            for len in [1, 31, 200, 365] {
                let from = day(start);
                let to = from + chrono::TimeDelta::days(len);
                let stretch = Stretch::new(from, to);
                for m in 1..=12 {
                    for d in 1..=31 {
                        let Some(p) = (NaiveDate::from_ymd_opt(2000, m, d)).map(|_| profile(Some((m, d)), None, None))
                        else {
                            continue;
                        };
                        let got = Pin::Anniversary(DateOf::Birthday).day_in(&p, &stretch);
                        assert_eq!(got, reference(m, d, from, to), "{m}-{d} in {from}..{to}");
                    }
                }
            }
        }
    }

    #[test]
    fn only_an_and_term_on_one_day_of_the_record_pins_a_condition() {
        let int = |n| Box::new(Ir::Int(n));
        let days = |f| Box::new(Ir::Field(f));
        let eq = Ir::Cmp(CmpOp::Eq, days(Field::DaysToLeaseExpiry), int(15));
        assert_eq!(eq.pin(), Some(Pin::DaysAhead(DateOf::LeaseExpires, 15)));
        let swapped = Ir::Cmp(CmpOp::Eq, int(3), days(Field::DaysToStayEnd));
        assert_eq!(swapped.pin(), Some(Pin::DaysAhead(DateOf::StayUntil, 3)));
        assert_eq!(Ir::Cmp(CmpOp::Le, days(Field::DaysToLeaseExpiry), int(15)).pin(), None, "a range is not a day");
        let and = Ir::And(vec![Ir::Field(Field::Known), Ir::Field(Field::IsBirthday)].into());
        assert_eq!(and.pin(), Some(Pin::Anniversary(DateOf::Birthday)));
        let or = Ir::Or(vec![Ir::Field(Field::IsJoinAnniversary), Ir::Field(Field::IsBirthday)].into());
        assert_eq!(or.pin(), None, "either of two days");
        assert_eq!(Ir::Not(Box::new(Ir::Field(Field::IsBirthday))).pin(), None);
    }
}
