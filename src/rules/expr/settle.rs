//! When a value stays put: an expression that reads only windowed sums and counts, fields of
//! the subscriber's record that do not move with the date, and constants changes only when an
//! event is counted for the subscriber, their record changes, or a bucket enters or leaves one
//! of its windows. A daily derived attribute of that kind need not be computed again for a
//! subscriber nothing happened to until its windows move (see the shard's daily tick); whom it
//! is `for:` may read the same, and derived values too.

use super::ArOp;
use super::Ir;
use super::schema::Field;

/// A windowed aggregate an expression reads: its slot, bucket width and window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowRead {
    pub slot: u32,
    pub bucket: i64,
    pub window: i64,
}

/// Fields of the subscriber's record whose value does not depend on the day it is read (not
/// `subscriber.tenure_days`, `is_birthday`, `days_to_*`, which move with the date).
fn timeless(f: Field) -> bool {
    use Field as F;
    matches!(
        f,
        F::SubMsisdn
            | F::CustomerId
            | F::AccountId
            | F::Brand
            | F::Tier
            | F::ArpuFen
            | F::Corporate
            | F::Foreign
            | F::Employee
            | F::Services
            | F::Prefs
            | F::Dnd
            | F::DndSms
            | F::DndCall
            | F::Status
            | F::ChannelPref
            | F::Known
    )
}

/// Whether `ir` is built of constants and leaves `leaf` accepts: `leaf` says of a leaf
/// (a field, a window, ...) whether it may be read (`None`: not a leaf, look inside).
fn reads_only(ir: &Ir, leaf: &mut dyn FnMut(&Ir) -> Option<bool>) -> bool {
    if let Some(ok) = leaf(ir) {
        return ok;
    }
    match ir {
        Ir::Bool(_) | Ir::Int(_) | Ir::Str(_) | Ir::Sym(_) | Ir::Null => true,
        Ir::Not(x) | Ir::Neg(x) | Ir::Exists(x) | Ir::Abs(x) | Ir::SymIn(x, _) | Ir::StrIn(x, _) => reads_only(x, leaf),
        Ir::And(xs) | Ir::Or(xs) => xs.iter().all(|x| reads_only(x, leaf)),
        Ir::Cmp(_, a, b)
        | Ir::Arith(_, a, b)
        | Ir::StrTest(_, a, b)
        | Ir::Min(a, b)
        | Ir::Max(a, b)
        | Ir::ListHas(a, b) => reads_only(a, leaf) && reads_only(b, leaf),
        Ir::ListAny(a, _) => reads_only(a, leaf),
        _ => false,
    }
}

/// Whether `ir` reads only windowed aggregates (added to `out`), timeless record fields and
/// constants: its value then changes only as described in the module.
pub fn window_reads(ir: &Ir, out: &mut Vec<WindowRead>) -> bool {
    reads_only(ir, &mut |x| window_leaf(x, out))
}

/// Of a leaf: a record field may be read when it is timeless, a windowed aggregate always (its
/// read added to `out`); anything else is no leaf.
fn window_leaf(x: &Ir, out: &mut Vec<WindowRead>) -> Option<bool> {
    match x {
        Ir::Field(f) => Some(timeless(*f)),
        Ir::Agg { slot, bucket, window } => {
            let read = WindowRead { slot: *slot, bucket: *bucket, window: *window };
            if !out.contains(&read) {
                out.push(read);
            }
            Some(true)
        }
        _ => None,
    }
}

/// Whether `ir` reads only windowed aggregates (added to `out`), timeless record fields,
/// derived attributes and constants: whom a settling derive is `for:` (a change of a derived
/// value touches the entry like a change of the record, so it is read as freely as the record).
pub fn window_or_steady_reads(ir: &Ir, out: &mut Vec<WindowRead>) -> bool {
    reads_only(ir, &mut |x| match x {
        Ir::Field(Field::Derived(_)) => Some(true),
        _ => window_leaf(x, out),
    })
}

/// Whether `ir` reads only timeless record fields, derived attributes and constants: its value
/// then changes only when the record or a derived value does (a journey's daily start, see
/// the shard's daily tick).
pub fn steady(ir: &Ir) -> bool {
    reads_only(ir, &mut |x| match x {
        Ir::Field(Field::Derived(_)) => Some(true),
        Ir::Field(f) => Some(timeless(*f)),
        _ => None,
    })
}

/// The top-level `and` terms of a condition that are [`steady`], as one condition (the whole
/// of it when it is steady): when they are false, so is the condition. `None` when there are
/// none.
pub fn steady_part(ir: &Ir) -> Option<Ir> {
    if steady(ir) {
        return Some(ir.clone());
    }
    let Ir::And(xs) = ir else { return None };
    let mut part: Vec<Ir> = xs.iter().filter(|x| steady(x)).cloned().collect();
    match part.len() {
        0 => None,
        1 => part.pop(),
        _ => Some(Ir::And(part.into())),
    }
}

/// `ir` as it reads for a subscriber with no window buckets at all — every windowed sum, count
/// and distinct count 0 — with the arithmetic and comparisons that makes constant worked out:
/// the churn score of a subscriber who has paid for nothing yet is one number, not a walk over
/// empty windows. Exact: the same value as `ir` on such a state. `None` when `ir` reads no
/// window (nothing to gain).
pub fn bare(ir: &Ir) -> Option<Ir> {
    let mut windows = false;
    let out = fold_bare(ir, &mut windows);
    windows.then_some(out)
}

fn fold_bare(ir: &Ir, windows: &mut bool) -> Ir {
    let mut f = |x: &Ir| Box::new(fold_bare(x, windows));
    match ir {
        Ir::Agg { .. } | Ir::AggMonth { .. } | Ir::Distinct { .. } => {
            *windows = true;
            Ir::Int(0)
        }
        Ir::Arith(op, a, b) => match (*f(a), *f(b)) {
            (Ir::Int(x), Ir::Int(y)) if let Some(v) = super::compiled::arith(*op, x, y) => Ir::Int(v),
            // `x - 0`, `x + 0`, `0 + x`, `x * 1`, `x / 1` are `x` (a missing `x` stays missing).
            (x, Ir::Int(0)) if matches!(op, ArOp::Add | ArOp::Sub) => x,
            (Ir::Int(0), x) if matches!(op, ArOp::Add) => x,
            (x, Ir::Int(1)) if matches!(op, ArOp::Mul | ArOp::Div) => x,
            (a, b) => Ir::Arith(*op, Box::new(a), Box::new(b)),
        },
        Ir::Min(a, b) | Ir::Max(a, b) => {
            let min = matches!(ir, Ir::Min(..));
            match (*f(a), *f(b)) {
                (Ir::Int(x), Ir::Int(y)) => Ir::Int(if min { x.min(y) } else { x.max(y) }),
                (a, b) if min => Ir::Min(Box::new(a), Box::new(b)),
                (a, b) => Ir::Max(Box::new(a), Box::new(b)),
            }
        }
        Ir::Neg(x) => match *f(x) {
            Ir::Int(n) => Ir::Int(n.saturating_neg()),
            x => Ir::Neg(Box::new(x)),
        },
        Ir::Abs(x) => match *f(x) {
            Ir::Int(n) => Ir::Int(n.saturating_abs()),
            x => Ir::Abs(Box::new(x)),
        },
        Ir::Cmp(op, a, b) => match (*f(a), *f(b)) {
            (Ir::Int(x), Ir::Int(y)) => Ir::Bool(super::compare(*op, &super::Value::Int(x), &super::Value::Int(y))),
            (a, b) => Ir::Cmp(*op, Box::new(a), Box::new(b)),
        },
        Ir::Not(x) => Ir::Not(f(x)),
        Ir::Exists(x) => Ir::Exists(f(x)),
        Ir::And(xs) => Ir::And(xs.iter().map(|x| *f(x)).collect()),
        Ir::Or(xs) => Ir::Or(xs.iter().map(|x| *f(x)).collect()),
        // Anything else reads no window, or reads it where a 0 is not worked out further: as
        // written (on such a state it reads 0 all the same).
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::expr::{ArOp, CmpOp};

    #[test]
    fn windows_and_the_record_settle_the_date_and_the_calendar_do_not() {
        let agg = |slot: u32, window: i64| Box::new(Ir::Agg { slot, bucket: 10, window });
        let sum = Ir::Arith(ArOp::Sub, agg(1, 100), agg(2, 50));
        let with_arpu = Ir::Arith(ArOp::Add, Box::new(sum.clone()), Box::new(Ir::Field(Field::ArpuFen)));
        let mut out = Vec::new();
        assert!(window_reads(&with_arpu, &mut out));
        assert_eq!(out.iter().map(|r| (r.slot, r.window)).collect::<Vec<_>>(), vec![(1, 100), (2, 50)]);
        // The same window read twice is listed once.
        assert!(window_reads(&sum, &mut out));
        assert_eq!(out.len(), 2);
        for moving in [Field::TenureDays, Field::IsBirthday, Field::Now, Field::LastUsageAt, Field::Balance] {
            let ir = Ir::Arith(ArOp::Add, Box::new(sum.clone()), Box::new(Ir::Field(moving)));
            assert!(!window_reads(&ir, &mut Vec::new()), "{moving:?}");
        }
        assert!(!window_reads(&Ir::AggMonth { slot: 1, bucket: 10, last: true }, &mut Vec::new()));
        assert!(!window_reads(&Ir::Distinct { slot: 1, window: 10 }, &mut Vec::new()));
    }

    #[test]
    fn the_record_and_derived_values_are_steady_windows_and_the_date_are_not() {
        let derived = Box::new(Ir::Field(Field::Derived(0)));
        let cond = Ir::And(Box::new([
            Ir::Cmp(CmpOp::Ge, derived.clone(), Box::new(Ir::Int(50))),
            Ir::Cmp(CmpOp::Eq, Box::new(Ir::Field(Field::Status)), Box::new(Ir::Sym(0))),
        ]));
        assert!(steady(&cond));
        for moving in [
            Ir::Field(Field::TenureDays),
            Ir::Field(Field::LastUsageAt),
            Ir::Field(Field::Now),
            Ir::Agg { slot: 1, bucket: 10, window: 100 },
        ] {
            let ir =
                Ir::Or(Box::new([cond.clone(), Ir::Cmp(CmpOp::Gt, Box::new(moving.clone()), Box::new(Ir::Int(1)))]));
            assert!(!steady(&ir), "{moving:?}");
        }
        // The churn journey's start: its window terms are left out of the steady part.
        let window = Ir::Cmp(CmpOp::Ge, Box::new(Ir::Agg { slot: 1, bucket: 10, window: 100 }), Box::new(Ir::Int(5)));
        let Ir::And(terms) = cond.clone() else { unreachable!() };
        let mut terms = terms.into_vec();
        terms.insert(1, window.clone());
        let shown = |ir: Option<Ir>| format!("{ir:?}");
        assert_eq!(shown(steady_part(&Ir::And(terms.into()))), shown(Some(cond.clone())));
        assert_eq!(shown(steady_part(&cond)), shown(Some(cond.clone())));
        assert!(steady_part(&window).is_none());
        let one = Ir::And(Box::new([window, Ir::Field(Field::Known)]));
        assert_eq!(shown(steady_part(&one)), shown(Some(Ir::Field(Field::Known))));
    }
}
