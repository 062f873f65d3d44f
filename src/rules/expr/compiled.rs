//! Conditions compiled to closures: what the event path runs instead of walking the [`Ir`]
//! tree.
//!
//! The tree interpreter ([`Ctx::eval`]) builds a [`Value`] at every node and compares values of
//! any type with any other; a condition is a handful of typed comparisons, so most of its time
//! went on the dispatch. Here each node whose types are known at compile time becomes a closure
//! that reads what it compares directly: `state.balance < 10 CNY` reads the balance and compares
//! it with 1000, nothing else. Constants fold (`x and false` is false, `x and true` is `x`), and
//! the terms of an `and` / `or` run cheapest first (conditions read and never write, so order
//! changes nothing but the time). A node with no closure of its own runs the interpreter on its
//! subtree, so every condition compiles and every result is the interpreter's (a test evaluates
//! both on the same random states and events).

use super::schema::{FIELDS, Ty};
use super::{ArOp, CmpOp, Ctx, Field, Ir, Value, any_tag, compare, holds, month_span};
use crate::event::Body;
use crate::state::DVal;
use std::cmp::Ordering;
use std::sync::Arc;

type BoolFn = Box<dyn Fn(&Ctx) -> bool + Send + Sync>;
/// `None`: null (for a node that yields a number or null), or not a number.
type IntFn = Box<IntFnOf>;
type IntFnOf = dyn Fn(&Ctx) -> Option<i64> + Send + Sync;

/// A condition: its tree (what explain, the index and the daily pass read) and its compiled
/// form (what an event runs).
#[derive(Clone)]
pub struct Cond {
    ir: Ir,
    run: Arc<dyn Fn(&Ctx) -> bool + Send + Sync>,
}

impl Cond {
    pub fn new(ir: Ir) -> Cond {
        let run: Arc<dyn Fn(&Ctx) -> bool + Send + Sync> = Arc::from(bool_fn(&ir));
        Cond { ir, run }
    }

    /// Whether the condition holds in the context: exactly `cx.eval_bool(self.ir())`.
    #[inline]
    pub fn holds(&self, cx: &Ctx) -> bool {
        let held = (self.run)(cx);
        debug_assert_eq!(held, cx.eval_bool(&self.ir), "compiled and interpreted disagree on {:?}", self.ir);
        held
    }

    pub fn ir(&self) -> &Ir {
        &self.ir
    }
}

impl From<Ir> for Cond {
    fn from(ir: Ir) -> Cond {
        Cond::new(ir)
    }
}

impl std::ops::Deref for Cond {
    type Target = Ir;
    fn deref(&self) -> &Ir {
        &self.ir
    }
}

impl std::fmt::Debug for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.ir.fmt(f)
    }
}

/// A derive's value: a number through its closure, anything else by the interpreter.
#[derive(Clone)]
pub struct Calc {
    ir: Ir,
    int: Option<Arc<IntFnOf>>,
}

/// What a [`Calc`] comes to.
pub enum Calced<'a> {
    /// A number expression's value (`None`: null).
    Int(Option<i64>),
    /// Anything else, as the interpreter says.
    Value(Value<'a>),
}

impl Calc {
    pub fn new(ir: Ir) -> Calc {
        let int = int_valued(&ir).then(|| Arc::from(int_fn(&ir)));
        Calc { ir, int }
    }

    /// The value in the context: exactly `cx.eval(self.ir())` (a number or null, or the value).
    pub fn calc<'a>(&'a self, cx: &Ctx<'a>) -> Calced<'a> {
        match &self.int {
            Some(f) => Calced::Int(f(cx)),
            None => Calced::Value(cx.eval(&self.ir)),
        }
    }

    pub fn ir(&self) -> &Ir {
        &self.ir
    }
}

impl std::fmt::Debug for Calc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.ir.fmt(f)
    }
}

/// The interpreter on a subtree: for the nodes without a closure of their own.
fn interpreted(ir: &Ir) -> BoolFn {
    let ir = ir.clone();
    Box::new(move |cx| cx.eval_bool(&ir))
}

/// A rough cost of evaluating a node, to run the cheap terms of an `and` / `or` first: reading
/// the profile or the event is cheap, a window walks buckets, cell history walks a list.
fn cost(ir: &Ir) -> u32 {
    match ir {
        Ir::Bool(_) | Ir::Int(_) | Ir::Str(_) | Ir::Sym(_) | Ir::Null => 0,
        Ir::Field(f) => match f {
            Field::MonthDay | Field::Festival => 8,
            Field::CellName | Field::CellTags | Field::CellKnown | Field::CellId | Field::PrevCellId => 3,
            Field::PrevCellTags | Field::IvrAgentRepeats | Field::IvrLastNode => 4,
            Field::StoreName | Field::StoreId | Field::StoreAddress | Field::StoreDistanceM => 4,
            Field::CalActive | Field::CalName | Field::CalTitle | Field::CalKind | Field::CalVenue => 6,
            Field::CalArtist => 6,
            Field::DaysToBirthday | Field::IsBirthday | Field::TenureDays | Field::TenureYears => 2,
            _ => 1,
        },
        Ir::Attr(_) => 3,
        Ir::Armed(_) => 1,
        Ir::Agg { .. } | Ir::Distinct { .. } => 10,
        Ir::AggMonth { .. } => 14,
        Ir::Seq(_) => 2,
        Ir::Entered(_) | Ir::Left(_) => 4,
        Ir::Dwell(_) | Ir::DwellNamed(_) | Ir::Visited(..) => 8,
        Ir::DaysUntil(_) => 4,
        Ir::Not(x) | Ir::Neg(x) | Ir::Exists(x) | Ir::Abs(x) | Ir::SymIn(x, _) => cost(x),
        Ir::StrIn(x, items) => cost(x) + 1 + items.len() as u32 / 4,
        Ir::ListAny(x, items) => cost(x) + 1 + items.len() as u32 / 2,
        Ir::TagsAny(x, items) => cost(x) + 1 + items.len() as u32 / 2,
        Ir::And(xs) | Ir::Or(xs) => xs.iter().map(cost).sum(),
        // The two-operand nodes: their operands and the operation.
        Ir::Cmp(..)
        | Ir::Arith(..)
        | Ir::StrTest(..)
        | Ir::Min(..)
        | Ir::Max(..)
        | Ir::ListHas(..)
        | Ir::TagsHasNamed(..) => ir.parts().into_iter().map(cost).sum::<u32>() + 1,
    }
}

/// A field that reads as a number or null, never anything else.
fn int_field(f: Field) -> bool {
    FIELDS.iter().find(|e| e.2 == f).is_some_and(|e| matches!(e.1, Ty::Int | Ty::Money | Ty::Duration | Ty::Time))
}

/// A node that yields a number or null, never anything else: its [`int_fn`] is `None` exactly
/// when it is null.
fn int_valued(ir: &Ir) -> bool {
    match ir {
        Ir::Int(_)
        | Ir::Agg { .. }
        | Ir::AggMonth { .. }
        | Ir::Distinct { .. }
        | Ir::Dwell(_)
        | Ir::DwellNamed(_)
        | Ir::DaysUntil(_)
        | Ir::Arith(..)
        | Ir::Neg(_)
        | Ir::Abs(_)
        | Ir::Min(..)
        | Ir::Max(..) => true,
        Ir::Field(f) => int_field(*f),
        _ => false,
    }
}

/// The node's value as a number (`Value::as_int`): `None` for null and for what is not a number.
fn int_fn(ir: &Ir) -> IntFn {
    use Field as F;
    match ir {
        Ir::Int(n) => {
            let n = *n;
            Box::new(move |_| Some(n))
        }
        Ir::Field(F::Balance) => Box::new(|cx| cx.state.balance()),
        Ir::Field(F::PrevBalance) => Box::new(|cx| cx.state.prev_balance()),
        Ir::Field(F::LastEventAt) => Box::new(|cx| cx.state.last_event_at()),
        Ir::Field(F::LastUsageAt) => Box::new(|cx| cx.state.last_usage_at()),
        Ir::Field(F::LastTopupAt) => Box::new(|cx| cx.state.last_topup().map(|t| t.0)),
        Ir::Field(F::LastTopupFen) => Box::new(|cx| cx.state.last_topup().map(|t| t.1)),
        Ir::Field(F::Now) => Box::new(|cx| Some(cx.now)),
        Ir::Field(F::ArpuFen) => Box::new(|cx| Some(cx.sub.arpu_fen())),
        Ir::Field(F::Derived(slot)) => {
            let slot = *slot;
            Box::new(move |cx| match cx.state.derived_value(slot).map(|d| d.value()) {
                Some(DVal::Int(n)) => Some(n),
                _ => None,
            })
        }
        // An event's numbers, read off the event alone (as the rule index reads them), not
        // through the reader of every field.
        Ir::Field(f) if f.is_event_field() => {
            let f = *f;
            Box::new(move |cx| f.read_event(cx.event).as_int())
        }
        Ir::Field(f) => {
            let f = *f;
            Box::new(move |cx| f.read(cx).as_int())
        }
        Ir::Agg { slot, bucket, window } => {
            let (slot, bucket, window) = (*slot, *bucket, *window);
            Box::new(move |cx| Some(cx.state.agg_value_window(slot, cx.now, bucket, window)))
        }
        Ir::AggMonth { slot, bucket, last } => {
            let (slot, bucket, last) = (*slot, *bucket, *last);
            Box::new(move |cx| {
                let (from, to) = month_span(cx.local.date, cx.offset, last, cx.now);
                Some(cx.state.agg_value_window(slot, to - 1, bucket, (to - 1 - from).max(0)))
            })
        }
        Ir::Distinct { slot, window } => {
            let (slot, window) = (*slot, *window);
            Box::new(move |cx| Some(cx.state.distinct_count(slot, cx.now, window)))
        }
        // A constant operand is taken in the closure (`5 * x`, `x * 60`, `max(0, x)`): one call
        // fewer a node.
        Ir::Arith(op, a, b) => {
            let op = *op;
            match (&**a, &**b) {
                (x, Ir::Int(n)) => {
                    let (x, n) = (int_fn(x), *n);
                    Box::new(move |cx| arith(op, x(cx)?, n))
                }
                (Ir::Int(n), y) => {
                    let (n, y) = (*n, int_fn(y));
                    Box::new(move |cx| arith(op, n, y(cx)?))
                }
                (a, b) => {
                    let (a, b) = (int_fn(a), int_fn(b));
                    Box::new(move |cx| arith(op, a(cx)?, b(cx)?))
                }
            }
        }
        Ir::Min(a, b) | Ir::Max(a, b) => {
            let min = matches!(ir, Ir::Min(..));
            let pick = move |x: i64, y: i64| if min { x.min(y) } else { x.max(y) };
            match (&**a, &**b) {
                (x, Ir::Int(n)) | (Ir::Int(n), x) => {
                    let (x, n) = (int_fn(x), *n);
                    Box::new(move |cx| Some(x(cx).map_or(n, |x| pick(x, n))))
                }
                (a, b) => {
                    let (a, b) = (int_fn(a), int_fn(b));
                    Box::new(move |cx| match (a(cx), b(cx)) {
                        (Some(x), Some(y)) => Some(pick(x, y)),
                        (Some(x), None) | (None, Some(x)) => Some(x),
                        (None, None) => None,
                    })
                }
            }
        }
        Ir::Neg(x) => {
            let x = int_fn(x);
            Box::new(move |cx| x(cx).map(i64::saturating_neg))
        }
        Ir::Abs(x) => {
            let x = int_fn(x);
            Box::new(move |cx| x(cx).map(i64::saturating_abs))
        }
        other => {
            let ir = other.clone();
            Box::new(move |cx| cx.eval(&ir).as_int())
        }
    }
}

/// `x OP y` on numbers: saturating, `None` for a division by zero.
#[inline]
pub(super) fn arith(op: ArOp, x: i64, y: i64) -> Option<i64> {
    match op {
        ArOp::Add => Some(x.saturating_add(y)),
        ArOp::Sub => Some(x.saturating_sub(y)),
        ArOp::Mul => Some(x.saturating_mul(y)),
        ArOp::Div => x.checked_div(y),
        ArOp::Rem => x.checked_rem(y),
    }
}

fn is_const(ir: &Ir) -> bool {
    matches!(ir, Ir::Int(_) | Ir::Str(_) | Ir::Sym(_) | Ir::Bool(_) | Ir::Null)
}

/// The hot enumerated fields read without building a [`Value`]: `None` is null (the field reads
/// as `Value::Sym` or null, nothing else).
fn sym_reader(f: Field) -> Option<fn(&Ctx) -> Option<u8>> {
    use Field as F;
    Some(match f {
        F::Status => |cx| Some(cx.sub.status as u8),
        F::Brand => |cx| cx.sub.known().then_some(cx.sub.brand as u8),
        F::Tier => |cx| cx.sub.known().then_some(cx.sub.tier as u8),
        F::EvKind => |cx| cx.event.map(|e| e.kind() as u8),
        F::Service => |cx| match cx.event.map(|e| &e.body) {
            Some(Body::Usage(u)) => Some(u.service as u8),
            _ => None,
        },
        F::Direction => |cx| match cx.event.map(|e| &e.body) {
            Some(Body::Usage(u)) => Some(u.direction as u8),
            _ => None,
        },
        F::Scope => |cx| match cx.event.map(|e| &e.body) {
            Some(Body::Usage(u)) => Some(u.scope as u8),
            _ => None,
        },
        F::TopupChannel => |cx| match cx.event.map(|e| &e.body) {
            Some(Body::Topup(t)) => Some(t.channel as u8),
            _ => None,
        },
        F::OutChannel => |cx| match cx.event.map(|e| &e.body) {
            Some(Body::Outcome(o)) => Some(o.channel as u8),
            _ => None,
        },
        F::OutStatus => |cx| match cx.event.map(|e| &e.body) {
            Some(Body::Outcome(o)) => Some(o.status as u8),
            _ => None,
        },
        _ => return None,
    })
}

/// The hot true/false fields read without building a [`Value`] (they are never null).
fn bool_reader(f: Field) -> Option<fn(&Ctx) -> bool> {
    use Field as F;
    Some(match f {
        F::Known => |cx| cx.sub.known(),
        F::Corporate => |cx| cx.sub.corporate(),
        F::Foreign => |cx| cx.sub.foreign(),
        F::Employee => |cx| cx.sub.employee(),
        F::Dnd => |cx| cx.sub.dnd().any(),
        F::IsBirthday => |cx| cx.birthday_today(cx.sub),
        F::CalActive => |cx| cx.calendar_here().is_some(),
        _ => return None,
    })
}

/// The hot text fields read without building a [`Value`]: `None` is null.
type StrReader = for<'a, 'c> fn(&'c Ctx<'a>) -> Option<&'a str>;
fn str_reader(f: Field) -> Option<StrReader> {
    use Field as F;
    Some(match f {
        F::CrmEvent => |cx| match cx.event.map(|e| &e.body) {
            Some(Body::Crm(c)) => Some(&c.event),
            _ => None,
        },
        F::OutRule => |cx| match cx.event.map(|e| &e.body) {
            Some(Body::Outcome(o)) => Some(&o.rule),
            _ => None,
        },
        F::OutCampaign => |cx| match cx.event.map(|e| &e.body) {
            Some(Body::Outcome(o)) => Some(&o.campaign),
            _ => None,
        },
        F::ReplyKeyword => |cx| match cx.event.map(|e| &e.body) {
            Some(Body::Reply(r)) => Some(&r.keyword),
            _ => None,
        },
        _ => return None,
    })
}

/// A test of a node's value: a field read directly, anything else by the interpreter.
fn with_value(a: &Ir, test: impl Fn(Value) -> bool + Send + Sync + 'static) -> BoolFn {
    match a {
        Ir::Field(f) => {
            let f = *f;
            Box::new(move |cx| test(f.read(cx)))
        }
        _ => {
            let a = a.clone();
            Box::new(move |cx| test(cx.eval(&a)))
        }
    }
}

/// A comparison, with the constant (if any) on the right: each case gives the order `compare`
/// gives for the values the left side can take.
fn cmp_fn(op: CmpOp, a: &Ir, b: &Ir) -> BoolFn {
    if is_const(a) && !is_const(b) {
        return cmp_fn(op.flipped(), b, a);
    }
    if let (Ir::Field(Field::Derived(slot)), Ir::Sym(c)) = (a, b) {
        // A derived attribute of a kind of words (a tier): read without building a value.
        let (slot, c) = (*slot, *c);
        return Box::new(move |cx| match cx.state.derived_value(slot).map(|d| d.value()) {
            Some(DVal::Sym(s)) => holds(op, Some(s.cmp(&c))),
            _ => holds(op, None),
        });
    }
    if let Ir::Field(f) = a {
        match (b, sym_reader(*f), str_reader(*f)) {
            (Ir::Sym(c), Some(read), _) => {
                let c = *c;
                return Box::new(move |cx| holds(op, read(cx).map(|s| s.cmp(&c))));
            }
            (Ir::Str(c), _, Some(read)) => {
                let c = c.clone();
                return Box::new(move |cx| holds(op, read(cx).map(|s| s.cmp(&c))));
            }
            _ => {}
        }
    }
    match (a, b) {
        (a, Ir::Int(c)) => {
            let (a, c) = (int_fn(a), *c);
            Box::new(move |cx| holds(op, a(cx).map(|x| x.cmp(&c))))
        }
        (a, Ir::Sym(c)) => {
            let c = *c;
            with_value(a, move |v: Value| holds(op, if let Value::Sym(s) = v { Some(s.cmp(&c)) } else { None }))
        }
        (a, Ir::Str(c)) => {
            let c = c.clone();
            with_value(a, move |v: Value| holds(op, v.as_str().map(|s| s.cmp(&c))))
        }
        (a, Ir::Bool(c)) => {
            let c = *c;
            with_value(a, move |v: Value| {
                holds(
                    op,
                    match v {
                        Value::Bool(x) => Some(x.cmp(&c)),
                        Value::Json(j) => j.as_bool().map(|x| x.cmp(&c)),
                        _ => None,
                    },
                )
            })
        }
        (a, b) if int_valued(a) && int_valued(b) => {
            let (a, b) = (int_fn(a), int_fn(b));
            Box::new(move |cx| {
                holds(
                    op,
                    match (a(cx), b(cx)) {
                        (Some(x), Some(y)) => Some(x.cmp(&y)),
                        (None, None) => Some(Ordering::Equal),
                        _ => None,
                    },
                )
            })
        }
        (Ir::Field(f), Ir::Field(g)) => {
            let (f, g) = (*f, *g);
            Box::new(move |cx| compare(op, &f.read(cx), &g.read(cx)))
        }
        _ => interpreted(&Ir::Cmp(op, Box::new(a.clone()), Box::new(b.clone()))),
    }
}

/// A condition's closure.
fn bool_fn(ir: &Ir) -> BoolFn {
    match ir {
        Ir::Bool(b) => {
            let b = *b;
            Box::new(move |_| b)
        }
        Ir::Field(f) => match bool_reader(*f) {
            Some(read) => Box::new(read),
            None => {
                let f = *f;
                Box::new(move |cx| matches!(f.read(cx), Value::Bool(true)))
            }
        },
        Ir::Not(x) => {
            let x = bool_fn(x);
            Box::new(move |cx| !x(cx))
        }
        Ir::And(xs) | Ir::Or(xs) => junction(xs, matches!(ir, Ir::And(_))),
        Ir::Cmp(op, a, b) => cmp_fn(*op, a, b),
        Ir::SymIn(x, mask) => {
            let mask = *mask;
            if let Some(read) = if let Ir::Field(f) = &**x { sym_reader(*f) } else { None } {
                return Box::new(move |cx| read(cx).is_some_and(|s| mask & (1 << s) != 0));
            }
            with_value(x, move |v: Value| matches!(v, Value::Sym(s) if mask & (1 << s) != 0))
        }
        Ir::StrIn(x, items) => {
            let items = items.clone();
            with_value(x, move |v: Value| v.as_str().is_some_and(|s| items.iter().any(|i| &**i == s)))
        }
        Ir::ListAny(list, items) => {
            let items = items.clone();
            with_value(
                list,
                move |v: Value| matches!(v, Value::List(l, vocab) if items.iter().any(|i| vocab.has(l, i))),
            )
        }
        Ir::ListHas(list, item) => match &**item {
            Ir::Str(s) => {
                let s = s.clone();
                with_value(list, move |v: Value| matches!(v, Value::List(l, vocab) if vocab.has(l, &s)))
            }
            _ => interpreted(ir),
        },
        Ir::TagsAny(tags, want) => {
            let want = want.clone();
            with_value(tags, move |v: Value| matches!(v, Value::Tags(t) if any_tag(t, &want)))
        }
        Ir::Exists(x) if int_valued(x) => {
            let x = int_fn(x);
            Box::new(move |cx| x(cx).is_some())
        }
        Ir::Exists(x) => with_value(x, |v: Value| !matches!(v, Value::Null)),
        Ir::Seq(slot) => {
            let slot = *slot;
            Box::new(move |cx| cx.event.is_some() && cx.state.seq_completed_now(slot))
        }
        Ir::Entered(tags) => {
            let tags = tags.clone();
            Box::new(move |cx| cx.event.is_some() && cx.state.entered(&tags, cx.refdata))
        }
        Ir::Left(tags) => {
            let tags = tags.clone();
            Box::new(move |cx| cx.event.is_some() && cx.state.left(&tags, cx.refdata))
        }
        Ir::Visited(tags, window) => {
            let (tags, window) = (tags.clone(), *window);
            Box::new(move |cx| cx.state.visited(&tags, window, cx.now, cx.refdata))
        }
        _ => interpreted(ir),
    }
}

/// An `and` (`all`) or an `or` of terms: nested ones of the same kind flattened, constants
/// folded, the rest cheapest first.
fn junction(xs: &[Ir], all: bool) -> BoolFn {
    fn flatten<'a>(xs: &'a [Ir], all: bool, out: &mut Vec<&'a Ir>) {
        for x in xs {
            match x {
                Ir::And(ys) if all => flatten(ys, all, out),
                Ir::Or(ys) if !all => flatten(ys, all, out),
                x => out.push(x),
            }
        }
    }
    let mut flat = Vec::new();
    flatten(xs, all, &mut flat);
    // `false` decides an `and`, `true` an `or`; the other constant decides nothing.
    if flat.iter().any(|x| matches!(x, Ir::Bool(b) if *b != all)) {
        return Box::new(move |_| !all);
    }
    flat.retain(|x| !matches!(x, Ir::Bool(_)));
    flat.sort_by_key(|x| cost(x));
    let mut fs: Vec<BoolFn> = flat.into_iter().map(bool_fn).collect();
    match (fs.len(), all) {
        (0, _) => Box::new(move |_| all),
        (1, _) => fs.remove(0),
        (2, true) => {
            let (b, a) = (fs.remove(1), fs.remove(0));
            Box::new(move |cx| a(cx) && b(cx))
        }
        (2, false) => {
            let (b, a) = (fs.remove(1), fs.remove(0));
            Box::new(move |cx| a(cx) || b(cx))
        }
        (_, true) => {
            let fs = fs.into_boxed_slice();
            Box::new(move |cx| fs.iter().all(|f| f(cx)))
        }
        (_, false) => {
            let fs = fs.into_boxed_slice();
            Box::new(move |cx| fs.iter().any(|f| f(cx)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refdata::{Names, Profile, RefData};
    use crate::rules::eval::Scene;
    use crate::state::SubState;
    use crate::util::Msisdn;

    /// The corners where "no value" meets a comparison, folding and ordering: each node's
    /// closure says what the interpreter says, with and without a balance, with and without an
    /// event.
    #[test]
    fn closures_say_what_the_interpreter_says_where_values_are_missing() {
        use CmpOp::*;
        let f = |f: Field| Box::new(Ir::Field(f));
        let int = |n: i64| Box::new(Ir::Int(n));
        let cmp = |op, a, b| Ir::Cmp(op, a, b);
        let cases = vec![
            cmp(Eq, f(Field::Balance), f(Field::PrevBalance)),
            cmp(Ne, f(Field::Balance), f(Field::PrevBalance)),
            cmp(Ne, f(Field::Balance), int(300)),
            cmp(Lt, int(5), f(Field::Balance)),
            cmp(Ge, Box::new(Ir::Arith(ArOp::Div, int(1), int(0))), int(0)),
            cmp(Eq, Box::new(Ir::Arith(ArOp::Div, int(1), int(0))), Box::new(Ir::Arith(ArOp::Rem, int(1), int(0)))),
            cmp(Eq, f(Field::CrmEvent), Box::new(Ir::Str("x".into()))),
            cmp(Ne, f(Field::CrmEvent), Box::new(Ir::Str("x".into()))),
            cmp(Eq, Box::new(Ir::Attr("first".into())), Box::new(Ir::Bool(true))),
            cmp(Ne, f(Field::Brand), Box::new(Ir::Sym(0))),
            cmp(Eq, f(Field::Status), Box::new(Ir::Sym(0))),
            cmp(Lt, f(Field::Known), Box::new(Ir::Bool(true))),
            cmp(Gt, f(Field::Balance), f(Field::Known)),
            Ir::SymIn(f(Field::Brand), 0b11),
            Ir::SymIn(f(Field::Status), u64::MAX),
            Ir::Not(Box::new(Ir::SymIn(f(Field::Service), 1))),
            Ir::Exists(f(Field::Balance)),
            Ir::Exists(Box::new(Ir::Arith(ArOp::Div, int(1), int(0)))),
            Ir::Exists(f(Field::CrmEvent)),
            Ir::And(Box::new([Ir::Bool(true), Ir::Field(Field::Known)])),
            Ir::And(Box::new([])),
            Ir::Or(Box::new([])),
            Ir::Or(Box::new([Ir::Bool(false), Ir::Not(Box::new(Ir::Field(Field::Known)))])),
            Ir::And(Box::new([Ir::Field(Field::Dnd), Ir::Bool(false)])),
            Ir::Or(Box::new([Ir::And(Box::new([Ir::Field(Field::Known)])), Ir::Bool(true)])),
            Ir::Field(Field::Balance),
            Ir::Null,
            // Derived attributes (0 a number, 1 a tier, 2 true/false, 3 never computed), read
            // without building a value.
            cmp(Eq, f(Field::Derived(1)), Box::new(Ir::Sym(2))),
            cmp(Ne, f(Field::Derived(1)), Box::new(Ir::Sym(0))),
            cmp(Eq, f(Field::Derived(0)), Box::new(Ir::Sym(2))),
            cmp(Ne, f(Field::Derived(3)), Box::new(Ir::Sym(1))),
            cmp(Ge, f(Field::Derived(0)), int(500)),
            cmp(Lt, f(Field::Derived(2)), int(1)),
            cmp(Eq, f(Field::Derived(1)), int(2)),
            cmp(Lt, int(3), f(Field::Derived(3))),
            cmp(Ge, Box::new(Ir::Arith(ArOp::Add, f(Field::Derived(0)), int(1))), int(0)),
            cmp(Ne, Box::new(Ir::Arith(ArOp::Add, f(Field::Derived(3)), int(1))), int(0)),
            // A constant operand on either side, and with a missing value.
            cmp(Eq, Box::new(Ir::Arith(ArOp::Sub, int(1000), f(Field::Balance))), int(700)),
            cmp(Eq, Box::new(Ir::Arith(ArOp::Div, f(Field::Balance), int(0))), int(0)),
            cmp(Eq, Box::new(Ir::Arith(ArOp::Rem, int(7), f(Field::Balance))), int(7)),
            cmp(Eq, Box::new(Ir::Max(int(0), f(Field::Balance))), int(300)),
            cmp(Eq, Box::new(Ir::Min(f(Field::Derived(3)), int(5))), int(5)),
            cmp(Eq, Box::new(Ir::Min(f(Field::Derived(0)), int(5))), int(5)),
            cmp(Eq, Box::new(Ir::Max(int(1), Box::new(Ir::Arith(ArOp::Div, int(1), int(0))))), int(1)),
            cmp(Lt, Box::new(Ir::Arith(ArOp::Sub, f(Field::ArpuFen), int(800))), int(0)),
            // An event's numbers, read off the event (missing on another kind, or without one).
            Ir::Exists(f(Field::EvBalanceFen)),
            cmp(Lt, f(Field::EvBalanceFen), int(500)),
            cmp(Ge, f(Field::ChargeFen), int(100)),
            cmp(Eq, f(Field::DurationS), int(60_000)),
            cmp(Gt, f(Field::VolumeKb), int(0)),
            cmp(Ne, f(Field::Count), int(1)),
            cmp(Ge, f(Field::AmountFen), int(5000)),
            cmp(Gt, f(Field::EvTs), int(0)),
            Ir::Field(Field::CalActive),
        ];
        let (refdata, names) = (RefData::default(), Names::default());
        let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00");
        let now = 1_795_000_000_000;
        let events = [
            r#"{"kind":"usage","id":"e1","ts":"2026-11-24T10:00:00+08:00","msisdn":"13800138000","service":"voice","direction":"mo","scope":"local","duration_s":60,"charge_fen":120,"balance_fen":450}"#,
            r#"{"kind":"usage","id":"e2","ts":"2026-11-24T10:00:00+08:00","msisdn":"13800138000","service":"data","direction":"mo","scope":"local","volume_kb":2048}"#,
            r#"{"kind":"topup","id":"e3","ts":"2026-11-24T10:00:00+08:00","msisdn":"13800138000","amount_fen":5000,"balance_fen":5450,"channel":"online"}"#,
        ];
        let events: Vec<crate::event::Event> = events
            .iter()
            .map(|l| crate::event::Decoder::default().decode(l.as_bytes(), "t", 1).expect("a line").expect("an event"))
            .collect();
        for (balance, derived, event) in [
            (None, false, None),
            (Some(300), false, None),
            (Some(300), true, None),
            (Some(300), false, Some(&events[0])),
            (None, false, Some(&events[1])),
            (None, true, Some(&events[2])),
        ] {
            let (sub, mut state) = (Profile::unknown(Msisdn::from_raw(13_800_138_000)), SubState::default());
            if balance.is_some() {
                state.begin(now, balance);
            }
            if derived {
                for (slot, v) in [(0, DVal::Int(700)), (1, DVal::Sym(2)), (2, DVal::Bool(true))] {
                    state.set_derived(crate::state::Derived::new(slot, v, 0), 4);
                }
            }
            let local = super::super::Local::at(now, offset);
            let scene = Scene { event, now, local, refdata: &refdata, names: &names, offset };
            let cx = scene.ctx_of(&sub, &state);
            for ir in &cases {
                let said = (Cond::new(ir.clone()).holds(&cx), cx.eval_bool(ir));
                assert_eq!(said.0, said.1, "{ir:?} with balance {balance:?}, derived values {derived}, {event:?}");
            }
        }
    }

    /// A daily derive's bare value ([`super::super::bare`]) is what the whole expression gives
    /// a subscriber with no window buckets, with or without the record and state it also reads.
    #[test]
    fn bare_values_are_what_the_expression_gives_a_state_without_windows() {
        use CmpOp::*;
        let agg = |slot, window| Box::new(Ir::Agg { slot, bucket: 3_600_000, window });
        let int = |n: i64| Box::new(Ir::Int(n));
        let f = |f: Field| Box::new(Ir::Field(f));
        let ar = |op, a, b| Box::new(Ir::Arith(op, a, b));
        // The churn score of the pack, and its parts.
        let (long, short) = (agg(0, 35 * 86_400_000), agg(0, 7 * 86_400_000));
        let drop = ar(ArOp::Sub, long.clone(), ar(ArOp::Mul, int(5), short.clone()));
        let base = Box::new(Ir::Max(int(1), ar(ArOp::Sub, long.clone(), short.clone())));
        let churn = ar(
            ArOp::Add,
            Box::new(Ir::Max(int(0), ar(ArOp::Div, ar(ArOp::Mul, drop, int(60)), base))),
            ar(ArOp::Mul, Box::new(Ir::Min(int(1), agg(1, 30 * 86_400_000))), int(20)),
        );
        let month = Box::new(Ir::AggMonth { slot: 2, bucket: 3_600_000, last: true });
        let numbers = vec![
            *churn.clone(),
            *ar(
                ArOp::Sub,
                ar(ArOp::Sub, f(Field::ArpuFen), ar(ArOp::Div, ar(ArOp::Mul, agg(2, 86_400_000), int(6)), int(10))),
                int(800),
            ),
            *ar(ArOp::Div, int(100), agg(0, 86_400_000)),
            *ar(ArOp::Add, f(Field::Balance), Box::new(Ir::Distinct { slot: 3, window: 86_400_000 })),
            *ar(ArOp::Mul, f(Field::Balance), ar(ArOp::Add, int(1), month.clone())),
            Ir::Neg(Box::new(Ir::Abs(ar(ArOp::Sub, agg(0, 1000), int(3))))),
            Ir::Min(f(Field::Derived(3)), agg(0, 1000)),
        ];
        let conds = vec![
            Ir::Cmp(Ge, churn.clone(), int(50)),
            Ir::Cmp(Eq, month, int(0)),
            Ir::And(Box::new([Ir::Cmp(Ge, agg(0, 1000), int(1)), Ir::Field(Field::Known)])),
            Ir::Or(Box::new([Ir::Cmp(Lt, agg(0, 1000), f(Field::Balance)), Ir::Exists(agg(1, 1000))])),
        ];
        // The score of someone who never paid for anything is one number, worked out once.
        assert!(matches!(super::super::bare(&churn), Some(Ir::Int(0))), "{:?}", super::super::bare(&churn));
        assert!(super::super::bare(&Ir::Field(Field::ArpuFen)).is_none(), "reads no window: nothing to gain");
        let (refdata, names) = (RefData::default(), Names::default());
        let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00");
        let now = 1_795_000_000_000;
        for balance in [None, Some(300)] {
            let (sub, mut state) = (Profile::unknown(Msisdn::from_raw(13_800_138_000)), SubState::default());
            if balance.is_some() {
                state.begin(now, balance);
            }
            assert!(state.no_windows());
            let local = super::super::Local::at(now, offset);
            let scene = Scene { event: None, now, local, refdata: &refdata, names: &names, offset };
            let cx = scene.ctx_of(&sub, &state);
            for ir in &numbers {
                let bare = super::super::bare(ir).expect("reads a window");
                let int = |c: &Calc| match c.calc(&cx) {
                    Calced::Int(n) => n,
                    Calced::Value(v) => v.as_int(),
                };
                let said = (int(&Calc::new(ir.clone())), int(&Calc::new(bare.clone())), cx.eval(&bare).as_int());
                assert_eq!((said.0, said.0), (said.1, said.2), "{ir:?} as {bare:?} with balance {balance:?}");
            }
            for ir in &conds {
                let bare = super::super::bare(ir).expect("reads a window");
                let said = (Cond::new(ir.clone()).holds(&cx), Cond::new(bare.clone()).holds(&cx), cx.eval_bool(&bare));
                assert_eq!((said.0, said.0), (said.1, said.2), "{ir:?} as {bare:?} with balance {balance:?}");
            }
        }
    }
}
