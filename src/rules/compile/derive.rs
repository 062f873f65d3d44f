//! A `derive:` item: a derived attribute's name, when it is computed (`on:` event kinds or a
//! daily `schedule:`), its `value:` (an expression, or cases `when:`/`then:` tried in order),
//! its `type:` (written, or that of its value), how long a value holds (`snapshot:`) and whom it
//! is computed for (`for:`, a condition; everyone when absent).
//! Derives are compiled before the rules, in pack order, so that a rule — or a later derive —
//! reads `derived.NAME` with its type known.

use crate::event::{Kind, KindSet};
use crate::rules::derive::{Computed, DeriveDef, Period, TYPE_NAMES, type_named};
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::expr::Ir;
use crate::rules::expr::check::{Checker, Loc, Scope};
use crate::rules::expr::schema::Ty;
use crate::rules::expr::{Calc, Cond};
use crate::rules::item::{check_keys, former_names, kinds, name_of, parse_expr, scalar, values};
use crate::rules::yaml;

const KEYS: &[&str] = &["derive", "desc", "on", "schedule", "value", "type", "snapshot", "for", "was"];

/// Compiles the derive items in order; each one compiled is added to the checker's table.
pub(in crate::rules) fn derives(items: &[(usize, &yaml::Node)], ck: &mut Checker) -> Vec<DeriveDef> {
    let mut out = Vec::new();
    let files = ck.files;
    ck.derives_ahead = items
        .iter()
        .rev()
        .filter_map(|&(fi, item)| {
            Some((derive_name(item)?.to_string(), format!("{}:{}", files[fi].0, item.pos().line)))
        })
        .collect();
    for &(fi, item) in items {
        let (file, src) = (&files[fi].0, &files[fi].1);
        let before = ck.diags.len();
        if derive_name(item).is_some() {
            ck.derives_ahead.pop();
        }
        let Some(name) = name_of(item, "derive", file, src, ck.diags) else { continue };
        if ck.derived.iter().any(|(n, _)| *n == name) {
            ck.diags.push(Diagnostic::new(
                Code::E017,
                file,
                src,
                item.pos(),
                format!("derive `{name}` is already defined"),
            ));
            continue;
        }
        ck.consulted = Some(Vec::new());
        let mut def = compile(item, &name, file, src, ck);
        if let Some(d) = &mut def {
            d.consulted = ck.consulted.take().unwrap_or_default().into();
        }
        ck.consulted = None;
        match def.filter(|_| !ck.diags[before..].iter().any(Diagnostic::is_error)) {
            Some(def) => {
                ck.derived.push((name, def.ty));
                out.push(def);
            }
            None => ck.derives_failed.push(name),
        }
    }
    ck.derives_ahead.clear();
    out
}

/// The name a derive item gives itself, as written (checked by `name_of`).
fn derive_name(item: &yaml::Node) -> Option<&str> {
    item.get("derive").and_then(yaml::Node::as_str)
}

fn compile(item: &yaml::Node, name: &str, file: &str, src: &str, ck: &mut Checker) -> Option<DeriveDef> {
    check_keys(item, KEYS, file, src, ck.diags);
    let diag = |ck: &mut Checker, code, n: &yaml::Node, msg: String| {
        ck.diags.push(Diagnostic::new(code, file, src, n.pos(), msg))
    };
    let schedule = match scalar(item, "schedule", file, src, ck.diags) {
        Some((s, n)) => match crate::rules::policy::hhmm(s) {
            Some(m) => Some(m),
            None => {
                diag(ck, Code::E005, n, format!("`{s}` is not a time of day; write e.g. `01:00`"));
                return None;
            }
        },
        None => None,
    };
    let on = match (item.get("on"), schedule) {
        (Some(n), Some(_)) => {
            diag(ck, Code::E033, n, "a derive runs on events or daily at its time, not both".into());
            return None;
        }
        (Some(n), None) => kinds(n, "on", file, src, ck.diags)?,
        (None, Some(_)) => KindSet(0),
        (None, None) => {
            diag(
                ck,
                Code::E004,
                item,
                format!("derive `{name}` needs `on:` (event kinds) or `schedule:` (a time of day)"),
            );
            return None;
        }
    };
    let declared = match scalar(item, "type", file, src, ck.diags) {
        Some((s, n)) => match type_named(s) {
            Some(t) => Some(t),
            None => {
                ck.diags.push(
                    Diagnostic::new(Code::E005, file, src, n.pos(), format!("`{s}` is not a derived type"))
                        .with_hint(Some(format!("one of: {}", TYPE_NAMES.join(", ")))),
                );
                return None;
            }
        },
        None => None,
    };
    let snapshot = match scalar(item, "snapshot", file, src, ck.diags) {
        Some((s, n)) => match Period::parse(s) {
            Some(p) => Some(p),
            None => {
                diag(ck, Code::E005, n, format!("`{s}` is not a period; one of: day, week, month"));
                return None;
            }
        },
        None => None,
    };
    ck.scope = if schedule.is_some() { Scope::Timer } else { Scope::Rule(on) };
    let for_whom = match item.get("for") {
        Some(w) => Some(Cond::new(
            parse_expr(w, file, src, ck.diags)
                .and_then(|a| ck.condition(&a, &Loc { file, source: src, node: w, base: 0 }))?,
        )),
        None => None,
    };
    let Some(v) = item.get("value") else {
        diag(ck, Code::E004, item, format!("derive `{name}` has no `value`"));
        return None;
    };
    let mut ty = declared;
    let value = match v {
        yaml::Node::Seq { .. } => {
            let mut cases = Vec::new();
            let all = values(v);
            for (i, c) in all.iter().enumerate() {
                check_keys(c, &["when", "then"], file, src, ck.diags);
                let when = match c.get("when") {
                    Some(w) => Some(
                        parse_expr(w, file, src, ck.diags)
                            .and_then(|a| ck.condition(&a, &Loc { file, source: src, node: w, base: 0 }))?,
                    ),
                    None if i + 1 < all.len() => {
                        diag(ck, Code::E004, c, "only the last case may go without `when` (the default)".into());
                        return None;
                    }
                    None => None,
                };
                let Some(t) = c.get("then") else {
                    diag(ck, Code::E004, c, "a case needs `then` (its value)".into());
                    return None;
                };
                cases.push((when.map(Cond::new), Calc::new(then(t, &mut ty, file, src, ck)?)));
            }
            Computed::Cases(cases)
        }
        _ => Computed::Expr(Calc::new(then(v, &mut ty, file, src, ck)?)),
    };
    if schedule.is_none() {
        stale_between_events(name, on, &value, v, ck, (file, src));
    }
    let settles = DeriveDef::settling(schedule, snapshot, &value, for_whom.as_ref());
    let bare = DeriveDef::bare(schedule, &value);
    Some(DeriveDef {
        name: name.into(),
        desc: scalar(item, "desc", file, src, ck.diags).map_or("", |(s, _)| s).into(),
        file: file.into(),
        line: item.pos().line,
        ty: ty?,
        on,
        schedule,
        value,
        snapshot,
        for_whom,
        settles,
        bare,
        definition: definition(item),
        consulted: Box::default(),
        was: former_names(item, file, src, ck.diags).into(),
    })
}

/// W109 at `node` (the value) when a derive computed on `on` events reads a window: it keeps the
/// value it had at the last such event, so "two calls unanswered in 60 days" stays true long
/// after the 60 days for a subscriber who has no more of them.
fn stale_between_events(
    name: &str,
    on: KindSet,
    value: &Computed,
    node: &yaml::Node,
    ck: &mut Checker,
    at: (&str, &str),
) {
    fn window(ir: &Ir) -> Option<String> {
        match ir {
            Ir::Agg { window, .. } | Ir::Distinct { window, .. } | Ir::Visited(_, window) => {
                Some(format!("a {} window", crate::time::format_duration(*window)))
            }
            Ir::AggMonth { .. } => Some("a calendar month".into()),
            _ => ir.parts().into_iter().find_map(window),
        }
    }
    let irs: Vec<&Ir> = match value {
        Computed::Expr(c) => vec![c.ir()],
        Computed::Cases(cases) => {
            cases.iter().flat_map(|(w, t)| w.as_ref().map(|w| w.ir()).into_iter().chain([t.ir()])).collect()
        }
    };
    let Some(w) = irs.into_iter().find_map(window) else { return };
    let kinds: Vec<&str> = on.iter().map(Kind::as_str).collect();
    let msg = format!(
        "`derived.{name}` is computed only on {} events and reads {w}: between those events it keeps its value, which does not lapse as the window ages",
        kinds.join("/"),
    );
    let hint = "`schedule: \"HH:MM\"` recomputes it daily (as the windows age); or read the window in the rules";
    ck.diags.push(Diagnostic::new(Code::W109, at.0, at.1, node.pos(), msg).with_hint(Some(hint.into())));
}

/// What a derive item says it computes, as one line (see [`DeriveDef::definition`]): its
/// name, description and former names aside.
fn definition(item: &yaml::Node) -> Box<str> {
    let yaml::Node::Map { entries, .. } = item else { return item.words().into() };
    let said = entries.iter().filter(|(k, _)| !matches!(k.as_str(), Some("desc" | "derive" | "was")));
    said.map(|(k, v)| format!("{}: {}", k.words(), v.words())).collect::<Vec<_>>().join("; ").into()
}

/// One value of a derive: a word of its enumerated type (`high`), or an expression of its type
/// (the first value's type when none is written).
fn then(n: &yaml::Node, ty: &mut Option<Ty>, file: &str, src: &str, ck: &mut Checker) -> Option<Ir> {
    let text = n.as_str().unwrap_or("");
    if let Some(Ty::Sym(t)) = ty {
        if let Some(i) = t.index(text.trim()) {
            return Some(Ir::Sym(i));
        }
    }
    let ast = parse_expr(n, file, src, ck.diags)?;
    let (ir, got) = ck.any(&ast, &Loc { file, source: src, node: n, base: 0 })?;
    // Kept compact in every subscriber's state: numbers, true/false and enumerated values.
    let storable = matches!(got, Ty::Bool | Ty::Int | Ty::Money | Ty::Duration | Ty::Time | Ty::Sym(_));
    // A CRM attribute (`event.attrs.amount_fen`) has no type of its own: it takes the one the
    // derive says, read as a whole number or true/false when computed (missing otherwise).
    let typed_attr = got == Ty::Dyn && matches!(*ty, Some(Ty::Bool | Ty::Int | Ty::Money | Ty::Duration));
    match *ty {
        _ if typed_attr => Some(ir),
        _ if !storable => {
            let hint = (got == Ty::Dyn).then(|| {
                "an attribute has no type of its own: say the derive's `type:` (number, money, duration or bool)".into()
            });
            ck.diags.push(
                Diagnostic::new(Code::E013, file, src, n.pos(), format!("a derived value cannot be {}", got.name()))
                    .with_hint(hint),
            );
            None
        }
        None => {
            *ty = Some(got);
            Some(ir)
        }
        Some(want) if want == got => Some(ir),
        Some(want) => {
            let hint = match want {
                Ty::Sym(t) => Some(format!("one of: {}", t.names().join(", "))),
                _ => None,
            };
            ck.diags.push(
                Diagnostic::new(
                    Code::E013,
                    file,
                    src,
                    n.pos(),
                    format!("this value is {}, the derive's is {}", got.name(), want.name()),
                )
                .with_hint(hint),
            );
            None
        }
    }
}
