//! Operators: `and`/`or`, comparisons, `in`/`intersects`, `startswith`/`endswith`/`contains`
//! and arithmetic with units (money, durations and times do not mix with plain numbers, and a
//! constant that overflows is refused when the rules load).

use super::{Checked, Checker, Loc, R, span_text};
use crate::rules::diag::Code;
use crate::rules::expr::schema::Ty;
use crate::rules::expr::syntax::{BinOp, Node, Span};
use crate::rules::expr::{ArOp, CmpOp, Ir, StrOp, window_against_constant};

impl Checker<'_> {
    pub(super) fn binary(&mut self, op: BinOp, l: &Node, r: &Node, span: Span, loc: &Loc) -> R {
        match op {
            BinOp::And | BinOp::Or => {
                let a = self.check(l, loc).and_then(|c| self.value(c, loc));
                let b = self.check(r, loc).and_then(|c| self.value(c, loc));
                let (a, b) = (a?, b?);
                for ((_, ty), side) in [(&a, l), (&b, r)] {
                    if *ty != Ty::Bool {
                        return self.err(
                            loc,
                            Code::E013,
                            side.span,
                            format!("`{}` needs true or false on both sides, but this is {}", op.text(), ty.name()),
                            None,
                        );
                    }
                }
                let mut parts = Vec::new();
                for ir in [a.0, b.0] {
                    match (op, ir) {
                        (BinOp::And, Ir::And(xs)) | (BinOp::Or, Ir::Or(xs)) => parts.extend(xs.into_vec()),
                        (_, ir) => parts.push(ir),
                    }
                }
                let parts = parts.into_boxed_slice();
                Some(Checked::Val(if op == BinOp::And { Ir::And(parts) } else { Ir::Or(parts) }, Ty::Bool))
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => self.compare(op, l, r, span, loc),
            BinOp::In | BinOp::NotIn => {
                let ir = self.membership(l, r, loc)?;
                Some(Checked::Val(if op == BinOp::NotIn { Ir::Not(Box::new(ir)) } else { ir }, Ty::Bool))
            }
            BinOp::Intersects => {
                let (lir, lty) = self.check(l, loc).and_then(|c| self.value(c, loc))?;
                let items = match self.items(r, loc)? {
                    Ok(items) => items,
                    Err(_) => {
                        return self.err(
                            loc,
                            Code::E013,
                            r.span,
                            "`intersects` needs a list of values on the right",
                            None,
                        );
                    }
                };
                match lty {
                    Ty::List => Some(Checked::Val(
                        Ir::ListAny(Box::new(lir), items.into_iter().map(|(s, _)| s.into()).collect()),
                        Ty::Bool,
                    )),
                    Ty::Tags => {
                        let tags = items.iter().map(|(s, sp)| self.tag(s, *sp, loc)).collect();
                        Some(Checked::Val(Ir::TagsAny(Box::new(lir), tags), Ty::Bool))
                    }
                    _ => self.err(
                        loc,
                        Code::E013,
                        l.span,
                        format!("`intersects` needs a list or tag set on the left, but this is {}", lty.name()),
                        None,
                    ),
                }
            }
            BinOp::StartsWith | BinOp::EndsWith | BinOp::Contains => {
                let (lir, lty) = self.check(l, loc).and_then(|c| self.value(c, loc))?;
                let rc = self.check(r, loc)?;
                if op == BinOp::Contains && matches!(lty, Ty::List | Ty::Tags) {
                    return self.has_item(lir, lty, rc, r.span, loc).map(|ir| Checked::Val(ir, Ty::Bool));
                }
                if !matches!(lty, Ty::Str | Ty::Dyn) {
                    return self.err(
                        loc,
                        Code::E013,
                        l.span,
                        format!("`{}` needs a string on the left, but this is {}", op.text(), lty.name()),
                        None,
                    );
                }
                let (rir, rty) = self.literal_for(Ty::Str, rc, r.span, &lir, loc)?;
                if !matches!(rty, Ty::Str | Ty::Dyn) {
                    return self.err(
                        loc,
                        Code::E013,
                        r.span,
                        format!("`{}` needs a string on the right, but this is {}", op.text(), rty.name()),
                        None,
                    );
                }
                let sop = match op {
                    BinOp::StartsWith => StrOp::StartsWith,
                    BinOp::EndsWith => StrOp::EndsWith,
                    _ => StrOp::Contains,
                };
                Some(Checked::Val(Ir::StrTest(sop, Box::new(lir), Box::new(rir)), Ty::Bool))
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                let a = self.check(l, loc).and_then(|c| self.value(c, loc));
                let b = self.check(r, loc).and_then(|c| self.value(c, loc));
                let ((lir, lt), (rir, rt)) = (a?, b?);
                let Some(ty) = arith_type(op, lt, rt) else {
                    let hint = unit_hint(lt, rt);
                    return self.err(
                        loc,
                        Code::E013,
                        span,
                        format!("cannot apply `{}` to {} and {}", op.text(), lt.name(), rt.name()),
                        hint,
                    );
                };
                let aop = match op {
                    BinOp::Add => ArOp::Add,
                    BinOp::Sub => ArOp::Sub,
                    BinOp::Mul => ArOp::Mul,
                    BinOp::Div => ArOp::Div,
                    _ => ArOp::Rem,
                };
                // Constants are computed now, exactly: one that does not fit is refused here
                // rather than saturated on every event.
                if let (Ir::Int(a), Ir::Int(b)) = (&lir, &rir) {
                    return match fold(aop, *a, *b) {
                        Some(v) => Some(Checked::Val(Ir::Int(v), ty)),
                        None => {
                            let why = if *b == 0 && matches!(aop, ArOp::Div | ArOp::Rem) {
                                "divides by zero"
                            } else {
                                "overflows: the result is too large for tidings' 64-bit numbers"
                            };
                            self.err(loc, Code::E008, span, format!("`{}` {why}", span_text(loc, span)), None)
                        }
                    };
                }
                Some(Checked::Val(Ir::Arith(aop, Box::new(lir), Box::new(rir)), ty))
            }
        }
    }

    /// `list contains item` / `item in list` for a list or tag-set value.
    fn has_item(&mut self, list: Ir, lty: Ty, item: Checked, item_span: Span, loc: &Loc) -> Option<Ir> {
        let literal = match &item {
            Checked::Bare(w, sp) => Some((w.clone(), *sp)),
            Checked::Val(Ir::Str(s), Ty::Str) => Some((s.to_string(), item_span)),
            _ => None,
        };
        let list = Box::new(list);
        match (lty, literal) {
            (Ty::Tags, Some((w, sp))) => Some(Ir::TagsAny(list, Box::new([self.tag(&w, sp, loc)]))),
            (Ty::List, Some((w, _))) => Some(Ir::ListHas(list, Box::new(Ir::Str(w.into())))),
            _ => match item {
                Checked::Val(ir, Ty::Str | Ty::Dyn) if lty == Ty::Tags => Some(Ir::TagsHasNamed(list, Box::new(ir))),
                Checked::Val(ir, Ty::Str | Ty::Dyn) => Some(Ir::ListHas(list, Box::new(ir))),
                c => {
                    let (_, ty) = self.value(c, loc)?;
                    self.err(
                        loc,
                        Code::E013,
                        item_span,
                        format!("{} holds strings, not {}", lty.name(), ty.name()),
                        None,
                    );
                    None
                }
            },
        }
    }

    fn membership(&mut self, l: &Node, r: &Node, loc: &Loc) -> Option<Ir> {
        let lc = self.check(l, loc)?;
        match self.items(r, loc)? {
            Ok(items) => {
                let (lir, lty) = match lc {
                    Checked::Bare(w, sp) => {
                        return self.value(Checked::Bare(w, sp), loc).map(|_| Ir::Bool(false));
                    }
                    Checked::Val(ir, ty) => (ir, ty),
                };
                match lty {
                    Ty::Sym(t) => {
                        let mut mask = 0u64;
                        let mut ok = true;
                        for (w, sp) in &items {
                            match self.sym(t, w, *sp, loc) {
                                Some(i) => mask |= 1 << i,
                                None => ok = false,
                            }
                        }
                        ok.then(|| Ir::SymIn(Box::new(lir), mask))
                    }
                    Ty::Str | Ty::Dyn => {
                        for (w, sp) in &items {
                            self.compared(&lir, w, *sp, loc);
                        }
                        Some(Ir::StrIn(Box::new(lir), items.into_iter().map(|(s, _)| s.into()).collect()))
                    }
                    Ty::Int => {
                        let mut ors = Vec::new();
                        for (w, sp) in &items {
                            match w.parse::<i64>() {
                                Ok(v) => ors.push(Ir::Cmp(CmpOp::Eq, Box::new(lir.clone()), Box::new(Ir::Int(v)))),
                                Err(_) => {
                                    self.err(loc, Code::E013, *sp, format!("`{w}` is not a number"), None);
                                    return None;
                                }
                            }
                        }
                        Some(Ir::Or(ors.into_boxed_slice()))
                    }
                    Ty::Tags | Ty::List => {
                        self.err(
                            loc,
                            Code::E013,
                            l.span,
                            format!("to test {} against a list of values use `intersects`", lty.name()),
                            Some("e.g. `cell.tags intersects travel_hubs`".into()),
                        );
                        None
                    }
                    _ => {
                        self.err(
                            loc,
                            Code::E013,
                            l.span,
                            format!("`in` a list of words needs a string or enumerated value, not {}", lty.name()),
                            None,
                        );
                        None
                    }
                }
            }
            Err((rir, rty)) => match rty {
                Ty::List | Ty::Tags => self.has_item(rir, rty, lc, l.span, loc),
                _ => {
                    self.err(
                        loc,
                        Code::E013,
                        r.span,
                        format!("`in` needs a list on the right, but this is {}", rty.name()),
                        None,
                    );
                    None
                }
            },
        }
    }

    fn compare(&mut self, op: BinOp, l: &Node, r: &Node, span: Span, loc: &Loc) -> R {
        let lc = self.check(l, loc);
        let rc = self.check(r, loc);
        let (lc, rc) = (lc?, rc?);
        let ((lir, lt), (rir, rt)) = match (lc, rc) {
            (Checked::Val(lir, lt), rc) => {
                let rv = self.literal_for(lt, rc, r.span, &lir, loc)?;
                ((lir, lt), rv)
            }
            (lc, Checked::Val(rir, rt)) => {
                let lv = self.literal_for(rt, lc, l.span, &rir, loc)?;
                (lv, (rir, rt))
            }
            (lc, _) => {
                self.value(lc, loc)?;
                return None;
            }
        };
        let same = lt == rt
            || matches!((lt, rt), (Ty::Dyn, _) | (_, Ty::Dyn) | (Ty::Null, _) | (_, Ty::Null))
            || matches!((lt, rt), (Ty::Sym(a), Ty::Sym(b)) if a == b);
        if !same {
            let hint = unit_hint(lt, rt);
            return self.err(loc, Code::E013, span, format!("cannot compare {} with {}", lt.name(), rt.name()), hint);
        }
        let ordered = matches!(op, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge);
        if ordered && matches!(lt, Ty::Bool | Ty::Sym(_) | Ty::List | Ty::Tags | Ty::Null) {
            return self.err(loc, Code::E013, span, format!("`{}` does not order {}", op.text(), lt.name()), None);
        }
        if matches!(lt, Ty::List | Ty::Tags) {
            return self.err(
                loc,
                Code::E013,
                span,
                format!("cannot compare {} with `{}`", lt.name(), op.text()),
                Some("use `in`, `contains` or `intersects`".into()),
            );
        }
        let cop = match op {
            BinOp::Eq => CmpOp::Eq,
            BinOp::Ne => CmpOp::Ne,
            BinOp::Lt => CmpOp::Lt,
            BinOp::Le => CmpOp::Le,
            BinOp::Gt => CmpOp::Gt,
            _ => CmpOp::Ge,
        };
        // A count compared with a constant: how many events decide it whatever more there are.
        if let Some((op, (slot, _, _), c)) = window_against_constant(cop, &lir, &rir) {
            // `n >= c` and `n < c` are the same for every n from c on; the others from c + 1.
            let need = if matches!(op, CmpOp::Ge | CmpOp::Lt) { c } else { c.saturating_add(1) };
            self.slots.agg_threshold(slot, need);
        }
        Some(Checked::Val(Ir::Cmp(cop, Box::new(lir), Box::new(rir)), Ty::Bool))
    }
}

fn arith_type(op: BinOp, l: Ty, r: Ty) -> Option<Ty> {
    use Ty::*;
    match (op, l, r) {
        (_, Int, Int) => Some(Int),
        (_, Dyn, t) | (_, t, Dyn) if matches!(t, Int | Money | Duration | Dyn) => Some(if t == Dyn { Dyn } else { t }),
        (BinOp::Add | BinOp::Sub, Money, Money) => Some(Money),
        (BinOp::Add | BinOp::Sub, Duration, Duration) => Some(Duration),
        (BinOp::Sub, Time, Time) => Some(Duration),
        (BinOp::Add | BinOp::Sub, Time, Duration) => Some(Time),
        (BinOp::Add, Duration, Time) => Some(Time),
        (BinOp::Mul, Money | Duration, Int) => Some(l),
        (BinOp::Mul, Int, Money | Duration) => Some(r),
        (BinOp::Div, Money | Duration, Int) => Some(l),
        (BinOp::Div, Money, Money) | (BinOp::Div, Duration, Duration) => Some(Int),
        (BinOp::Rem, Money, Money) => Some(Money),
        (BinOp::Rem, Duration, Duration) => Some(Duration),
        _ => None,
    }
}

fn unit_hint(a: Ty, b: Ty) -> Option<String> {
    match (a, b) {
        (Ty::Money, Ty::Int) | (Ty::Int, Ty::Money) => Some("amounts are in fen; write `10 CNY` or `1000 fen`".into()),
        (Ty::Duration, Ty::Int) | (Ty::Int, Ty::Duration) => Some("write the unit: `60s`, `30m`, `4h`, `30d`".into()),
        (Ty::Time, Ty::Duration) | (Ty::Duration, Ty::Time) => {
            Some("compare an age: `now - state.last_topup_at > 3d`".into())
        }
        _ => None,
    }
}

/// Constant arithmetic, as the engine would do it, or None where i64 cannot hold the result
/// (the engine would saturate: the condition would not mean what it says).
fn fold(op: ArOp, a: i64, b: i64) -> Option<i64> {
    match op {
        ArOp::Add => a.checked_add(b),
        ArOp::Sub => a.checked_sub(b),
        ArOp::Mul => a.checked_mul(b),
        ArOp::Div => a.checked_div(b),
        ArOp::Rem => a.checked_rem(b),
    }
}
