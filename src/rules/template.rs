//! Message templates: `尊敬的客户,您的余额仅剩{state.balance|cny}元` — literal text with
//! `{expression|filter}` holes, checked like conditions when the rules load and rendered per
//! decision. `{{` and `}}` write literal braces.

use super::diag::Code;
use super::expr::check::{Checker, Loc};
use super::expr::syntax::{self, Span};
use super::expr::{Ctx, Ir, Ty, Value};
use crate::time::format_duration;
use crate::util::Msisdn;
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fmt {
    Auto,
    /// Fen as yuan with two decimals: 1234 -> 12.34
    Cny,
    /// A subscriber number masked: 138****8000
    Mask,
    /// 2026-11-25
    Date,
    /// 11月25日
    CnDate,
    /// 08:30
    Time,
    /// A duration in whole minutes.
    Minutes,
    /// A store id as the store's name (`S002` -> 北京西站营业厅); an id the reference data does
    /// not know is written as it is.
    Store,
}

#[derive(Clone, Debug)]
enum Part {
    Lit(String),
    Var { ir: Ir, ty: Ty, fmt: Fmt, default: Option<String> },
}

#[derive(Clone, Debug)]
pub struct Template {
    parts: Vec<Part>,
}

const FILTERS: &[&str] = &["cny", "mask", "date", "cn_date", "time", "minutes", "store", "default"];

impl Template {
    /// Compiles the template in the checker's current scope. Diagnostics go to the checker.
    pub fn compile(text: &str, checker: &mut Checker, loc: &Loc) -> Option<Template> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut ok = true;
        let mut i = 0;
        let b = text.as_bytes();
        while i < b.len() {
            match b[i] {
                b'{' if b.get(i + 1) == Some(&b'{') => {
                    lit.push('{');
                    i += 2;
                }
                b'}' if b.get(i + 1) == Some(&b'}') => {
                    lit.push('}');
                    i += 2;
                }
                b'{' => {
                    let Some(close) = text[i..].find('}').map(|c| i + c) else {
                        checker.diags.push(
                            loc.diag(Code::E020, Span { start: i, end: i + 1 }, "`{` is never closed")
                                .with_hint(Some("write `{{` for a literal brace".into())),
                        );
                        return None;
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    match Self::hole(&text[i + 1..close], i + 1, checker, loc) {
                        Some(p) => parts.push(p),
                        None => ok = false,
                    }
                    i = close + 1;
                }
                b'}' => {
                    checker.diags.push(
                        loc.diag(Code::E020, Span { start: i, end: i + 1 }, "`}` without a matching `{`")
                            .with_hint(Some("write `}}` for a literal brace".into())),
                    );
                    ok = false;
                    i += 1;
                }
                _ => {
                    let ch = text[i..].chars().next().unwrap_or(' ');
                    lit.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        ok.then_some(Template { parts })
    }

    fn hole(inner: &str, base: usize, checker: &mut Checker, loc: &Loc) -> Option<Part> {
        let mut pieces = inner.split('|');
        let expr_text = pieces.next().unwrap_or("");
        let eloc = Loc { base: loc.base + base, ..*loc };
        let node = match syntax::parse(expr_text) {
            Ok(n) => n,
            Err(e) => {
                checker.diags.push(eloc.diag(Code::E010, e.span, e.message).with_hint(e.hint));
                return None;
            }
        };
        let (ir, ty) = checker.any(&node, &eloc)?;
        let mut fmt = Fmt::Auto;
        let mut default = None;
        let mut off = expr_text.len() + 1;
        for f in pieces {
            let span = Span { start: off, end: off + f.len() };
            off += f.len() + 1;
            let (name, arg) = match f.split_once(':') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"').to_string())),
                None => (f.trim(), None),
            };
            let want = match name {
                "cny" => Some((Fmt::Cny, Ty::Money)),
                "mask" => Some((Fmt::Mask, Ty::Str)),
                "date" => Some((Fmt::Date, Ty::Time)),
                "cn_date" => Some((Fmt::CnDate, Ty::Time)),
                "time" => Some((Fmt::Time, Ty::Time)),
                "minutes" => Some((Fmt::Minutes, Ty::Duration)),
                "store" => Some((Fmt::Store, Ty::Str)),
                "default" => {
                    default = arg.or(Some(String::new()));
                    None
                }
                _ => {
                    let hint =
                        crate::util::nearest(name, FILTERS.iter().copied()).map(|n| format!("did you mean `{n}`?"));
                    checker
                        .diags
                        .push(eloc.diag(Code::E020, span, format!("unknown template filter `{name}`")).with_hint(hint));
                    return None;
                }
            };
            if let Some((f, need)) = want {
                if ty != need && ty != Ty::Dyn {
                    checker.diags.push(eloc.diag(
                        Code::E020,
                        span,
                        format!("filter `{name}` needs {}, but the value is {}", need.name(), ty.name()),
                    ));
                    return None;
                }
                fmt = f;
            }
        }
        Some(Part::Var { ir, ty, fmt, default })
    }

    pub fn render(&self, cx: &Ctx) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var { ir, ty, fmt, default } => {
                    let v = cx.eval(ir);
                    if matches!(v, Value::Null) {
                        out.push_str(default.as_deref().unwrap_or(""));
                        continue;
                    }
                    // Untyped CRM attributes take the type the filter asks for.
                    let v = match v {
                        Value::Json(j) if j.is_i64() => Value::Int(j.as_i64().unwrap_or_default()),
                        v => v,
                    };
                    format_value(&mut out, &v, *ty, *fmt, cx);
                }
            }
        }
        out
    }
}

fn cny(out: &mut String, fen: i64) {
    let sign = if fen < 0 { "-" } else { "" };
    let _ = write!(out, "{sign}{}.{:02}", fen.unsigned_abs() / 100, fen.unsigned_abs() % 100);
}

fn format_value(out: &mut String, v: &Value, ty: Ty, fmt: Fmt, cx: &Ctx) {
    use chrono::TimeZone;
    let time = |ms: i64| cx.offset.timestamp_millis_opt(ms).single();
    match (fmt, v) {
        (Fmt::Cny, Value::Int(n)) => cny(out, *n),
        (Fmt::Mask, Value::Str(s)) => out.push_str(&Msisdn::parse(s).map_or_else(|| s.to_string(), Msisdn::masked)),
        (Fmt::Store, Value::Str(id)) => out.push_str(cx.refdata.store_name(id).unwrap_or(id)),
        (Fmt::Store, Value::Json(serde_json::Value::String(id))) => {
            out.push_str(cx.refdata.store_name(id).unwrap_or(id))
        }
        (Fmt::Date, Value::Int(ms)) => {
            out.push_str(&time(*ms).map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string()))
        }
        (Fmt::CnDate, Value::Int(ms)) => {
            out.push_str(&time(*ms).map_or_else(String::new, |t| t.format("%-m月%-d日").to_string()))
        }
        (Fmt::Time, Value::Int(ms)) => {
            out.push_str(&time(*ms).map_or_else(String::new, |t| t.format("%H:%M").to_string()))
        }
        (Fmt::Minutes, Value::Int(ms)) => {
            let _ = write!(out, "{}", ms / 60_000);
        }
        (_, Value::Int(n)) => match ty {
            Ty::Money => cny(out, *n),
            Ty::Duration => out.push_str(&format_duration(*n)),
            Ty::Time => out.push_str(&time(*n).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M").to_string())),
            _ => {
                let _ = write!(out, "{n}");
            }
        },
        (_, Value::Str(s)) => out.push_str(s),
        (_, Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        (_, Value::Sym(i)) => {
            if let Ty::Sym(t) = ty {
                out.push_str(t.names().get(*i as usize).copied().unwrap_or(""));
            }
        }
        (_, Value::List(items, vocab)) => out.push_str(&vocab.names_of(items).join("、")),
        (_, Value::Tags(tags)) => {
            out.push_str(&tags.iter().map(|t| cx.refdata.tag_name(*t)).collect::<Vec<_>>().join("、"))
        }
        (_, Value::Json(j)) => match j {
            serde_json::Value::String(s) => out.push_str(s),
            other => {
                let _ = write!(out, "{other}");
            }
        },
        (_, Value::Null) => {}
    }
}
