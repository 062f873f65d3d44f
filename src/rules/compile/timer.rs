//! A rule's `timer:`: act `after` a delay, unless an event of the `cancel_on` kinds (passing
//! `cancel_if`) comes first (absence), and only if `recheck` still holds when the timer fires.
//! Each condition is checked in the scope it runs in: `cancel_if` against the cancelling
//! events, `recheck` without any event.

use crate::event::KindSet;
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::expr::Cond;
use crate::rules::expr::check::{Armed, Checker, Loc, Scope};
use crate::rules::item::{check_keys, kinds, parse_expr, scalar};
use crate::rules::set::TimerDef;
use crate::rules::{limits, yaml};

/// Compiles a `timer:` mapping of a rule listening to `on` (the scope the checker returns to).
pub(super) fn compile(t: &yaml::Node, on: KindSet, file: &str, src: &str, ck: &mut Checker) -> Option<TimerDef> {
    check_keys(t, &["after", "each", "cancel_on", "cancel_if", "recheck"], file, src, ck.diags);
    let after = match scalar(t, "after", file, src, ck.diags) {
        Some((s, n)) => match crate::time::parse_duration(s) {
            Ok(ms) if ms > 0 => match limits::duration(ms) {
                Ok(ms) => Some(ms),
                Err(why) => {
                    ck.diags.push(Diagnostic::new(Code::E008, file, src, n.pos(), format!("`after: {s}` {why}")));
                    None
                }
            },
            Ok(_) => {
                ck.diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), "`after` must be longer than zero"));
                None
            }
            Err(e) => {
                ck.diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), e));
                None
            }
        },
        None => {
            ck.diags.push(Diagnostic::new(Code::E004, file, src, t.pos(), "a timer needs `after` (e.g. `after: 4h`)"));
            None
        }
    };
    let each = match t.get("each") {
        None => Some(false),
        Some(n) => match n.as_str() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => {
                let msg = "`each` is true (every trigger arms a timer of its own) or false";
                ck.diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), msg));
                None
            }
        },
    };
    // `armed.PATH` in `cancel_if` and `recheck`: read in the rule's own scope when armed.
    ck.armed = Some(Armed { on, paths: Vec::new() });
    let cancel_on = t.get("cancel_on").map_or(Some(KindSet::default()), |n| kinds(n, "cancel_on", file, src, ck.diags));
    let cancel_if = t.get("cancel_if").and_then(|n| {
        let ast = parse_expr(n, file, src, ck.diags)?;
        let set = cancel_on.unwrap_or_default();
        if set.0 == 0 {
            ck.diags.push(Diagnostic::new(
                Code::E004,
                file,
                src,
                n.pos(),
                "`cancel_if` needs `cancel_on` (the kinds of event that cancel)",
            ));
            return None;
        }
        ck.scope = Scope::Rule(set);
        let r = ck.condition(&ast, &Loc { file, source: src, node: n, base: 0 });
        ck.scope = Scope::Rule(on);
        r
    });
    let recheck = t.get("recheck").and_then(|n| {
        let ast = parse_expr(n, file, src, ck.diags)?;
        ck.scope = Scope::Timer;
        let r = ck.condition(&ast, &Loc { file, source: src, node: n, base: 0 });
        ck.scope = Scope::Rule(on);
        r
    });
    let armed = ck.armed.take().map_or_else(Vec::new, |a| a.paths);
    Some(TimerDef {
        after: after?,
        cancel_on: cancel_on?,
        cancel_if: cancel_if.map(Cond::new),
        recheck: recheck.map(Cond::new),
        each: each?,
        armed: armed.into(),
    })
}
