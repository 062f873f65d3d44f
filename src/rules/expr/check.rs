//! Type checking and compilation of conditions: names are resolved against the schema, the
//! rule pack's lists and macros and the reference data; every problem becomes a diagnostic
//! at its exact position; what passes becomes an [`Ir`] tree.

use super::schema::{self, Field, ROOTS, SymTy, Ty};
use super::syntax::{Ast, BinOp, Node, Span};
use super::{ArOp, CmpOp, Ir, StrOp, bucket_for};
use crate::event::{Kind, KindSet};
use crate::refdata::{RefData, TagId};
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::{limits, yaml};
use crate::time::format_duration;
use crate::util::nearest;
use std::cell::Cell;
use std::collections::HashMap;

/// Every function a condition may call (for "did you mean" hints, and the fuzz generators).
pub const FUNCTIONS: &[&str] =
    &["count", "sum", "seq", "entered", "left", "dwell", "visited", "exists", "days_until", "min", "max", "abs"];

/// Where an expression came from, to turn spans into `file:line:col`.
#[derive(Clone, Copy)]
pub struct Loc<'a> {
    pub file: &'a str,
    pub source: &'a str,
    pub node: &'a yaml::Node,
    /// Byte offset of the expression inside the scalar (templates embed expressions).
    pub base: usize,
}

impl Loc<'_> {
    pub fn diag(&self, code: Code, span: Span, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, self.file, self.source, self.node.pos_at(self.source, self.base + span.start), msg)
    }
}

pub struct ListDef {
    pub items: Vec<String>,
    pub used: Cell<bool>,
}

pub struct MacroDef {
    pub file: usize,
    pub node: yaml::Node,
    /// `None` when the macro did not parse (already reported).
    pub ast: Option<Node>,
    pub used: Cell<bool>,
}

/// A windowed aggregate the rule set needs per subscriber.
#[derive(Clone, Debug)]
pub struct AggDef {
    pub kind: Kind,
    pub filter: Option<Ir>,
    /// The field summed; `None` counts events.
    pub value: Option<Field>,
    pub window: i64,
    pub bucket: i64,
}

/// A sequence of steps within a time limit.
#[derive(Clone, Debug)]
pub struct SeqDef {
    pub steps: Vec<(Kind, Option<Ir>)>,
    pub within: i64,
}

#[derive(Default)]
pub struct Slots {
    pub aggs: Vec<AggDef>,
    pub seqs: Vec<SeqDef>,
    agg_keys: HashMap<String, u32>,
    seq_keys: HashMap<String, u32>,
}

/// What the expression may read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scope {
    /// A rule condition or template: event fields must exist on every listened kind.
    Rule(KindSet),
    /// An aggregate or sequence filter: only the fields of that event kind.
    Filter(Kind),
    /// A timer's recheck: no event at all.
    Timer,
}

pub struct Checker<'a> {
    pub files: &'a [(String, String)],
    pub lists: &'a HashMap<String, ListDef>,
    pub macros: &'a HashMap<String, MacroDef>,
    pub refdata: Option<&'a RefData>,
    pub slots: &'a mut Slots,
    pub diags: &'a mut Vec<Diagnostic>,
    pub max_window: i64,
    pub scope: Scope,
    expanding: Vec<String>,
    /// Nesting of `check` calls (the depth of the tree being built, macros expanded).
    depth: usize,
    /// `check` calls for the current condition, macros expanded: macros that use each other
    /// twice over double at every level, and forty of them would never finish checking.
    work: usize,
    /// The budget was crossed and said so (once per condition).
    too_large: bool,
}

/// The deepest a condition may be once its macros are expanded (the parser allows
/// [`super::syntax::MAX_DEPTH`] per expression; macros stack expressions).
pub const MAX_EXPANDED_DEPTH: usize = 200;
/// The most sub-expressions a condition may have once its macros are expanded.
pub const MAX_EXPANDED_SIZE: usize = 20_000;

/// The result of checking a sub-expression.
enum Checked {
    Val(Ir, Ty),
    /// A bare word that is not a macro, list or field: a symbol whose meaning depends on
    /// what it is compared with (`voice`, `high`, `railway_station`).
    Bare(String, Span),
}

/// Known CRM business events (DESIGN.md §2); others are allowed but warned about.
pub const CRM_EVENTS: &[&str] = &[
    "store_visit",
    "complaint_closed",
    "complaint_opened",
    "points_changed",
    "points_earned",
    "points_expiring",
    "package_expiring",
    "contract_expiring",
    "status_changed",
    "tier_changed",
    "order_placed",
    "payment_posted",
    "discount_credited",
    "disconnect_requested",
    "service_failure",
    "cutover_planned",
    "birthday",
    "festival",
];

type R = Option<Checked>;

/// The right side of `in` / `intersects`: literal words with their spans, or a value.
type Items = Result<Vec<(String, Span)>, (Ir, Ty)>;

/// An aggregate's or sequence step's source: kind, summed field (and its type), filter.
type Source = (Kind, Option<Field>, Option<Ir>, Option<Ty>);

impl<'a> Checker<'a> {
    pub fn new(
        files: &'a [(String, String)],
        lists: &'a HashMap<String, ListDef>,
        macros: &'a HashMap<String, MacroDef>,
        refdata: Option<&'a RefData>,
        slots: &'a mut Slots,
        diags: &'a mut Vec<Diagnostic>,
        max_window: i64,
    ) -> Self {
        Checker {
            files,
            lists,
            macros,
            refdata,
            slots,
            diags,
            max_window,
            scope: Scope::Timer,
            expanding: Vec::new(),
            depth: 0,
            work: 0,
            too_large: false,
        }
    }

    /// Checks a condition: it must be boolean.
    pub fn condition(&mut self, n: &Node, loc: &Loc) -> Option<Ir> {
        (self.work, self.too_large) = (0, false);
        let c = self.check(n, loc)?;
        let (ir, ty) = self.value(c, loc)?;
        if ty != Ty::Bool {
            self.diags.push(loc.diag(
                Code::E013,
                n.span,
                format!("a condition must be true or false, but this is {}", ty.name()),
            ));
            return None;
        }
        Some(ir)
    }

    /// Checks an expression of any type (template variables).
    pub fn any(&mut self, n: &Node, loc: &Loc) -> Option<(Ir, Ty)> {
        (self.work, self.too_large) = (0, false);
        let c = self.check(n, loc)?;
        self.value(c, loc)
    }

    fn err(&mut self, loc: &Loc, code: Code, span: Span, msg: impl Into<String>, hint: Option<String>) -> R {
        self.diags.push(loc.diag(code, span, msg).with_hint(hint));
        None
    }

    /// A checked result as a value; a leftover bare word is an unknown name.
    fn value(&mut self, c: Checked, loc: &Loc) -> Option<(Ir, Ty)> {
        match c {
            Checked::Val(ir, ty) => Some((ir, ty)),
            Checked::Bare(name, span) => {
                let hint = self.name_hint(&name);
                self.err(loc, Code::E012, span, format!("unknown name `{name}`"), hint);
                None
            }
        }
    }

    fn name_hint(&self, name: &str) -> Option<String> {
        let mut cands: Vec<&str> =
            self.macros.keys().map(String::as_str).chain(self.lists.keys().map(String::as_str)).collect();
        cands.extend(ROOTS);
        cands.extend(FUNCTIONS);
        if let Scope::Filter(k) = self.scope {
            for (path, _, _, kinds) in schema::FIELDS {
                if let Some(f) = path.strip_prefix("event.") {
                    if *kinds & k.bit() != 0 {
                        cands.push(f);
                    }
                }
            }
        }
        nearest(name, cands).map(|n| format!("did you mean `{n}`?")).or_else(|| {
            Some("a string needs quotes: \"...\"; a field starts with event., subscriber., state., cell. ...".into())
        })
    }

    /// [`Self::check_node`] within the depth and size budgets. Past a budget the condition
    /// is refused with one diagnostic where it was crossed.
    fn check(&mut self, n: &Node, loc: &Loc) -> R {
        self.work += 1;
        if self.depth >= MAX_EXPANDED_DEPTH || self.work > MAX_EXPANDED_SIZE {
            if self.too_large {
                return None; // said once already
            }
            self.too_large = true;
            let what = if self.depth >= MAX_EXPANDED_DEPTH {
                format!("more than {MAX_EXPANDED_DEPTH} levels deep")
            } else {
                format!("more than {MAX_EXPANDED_SIZE} sub-expressions")
            };
            let via = if self.expanding.is_empty() {
                String::new()
            } else {
                format!(" (through macros {})", self.expanding.join(" -> "))
            };
            return self.err(
                loc,
                Code::E022,
                n.span,
                format!("condition too large once its macros are expanded: {what}{via}"),
                Some("use each macro once, or split the rule".into()),
            );
        }
        self.depth += 1;
        let r = self.check_node(n, loc);
        self.depth -= 1;
        r
    }

    fn check_node(&mut self, n: &Node, loc: &Loc) -> R {
        match &n.ast {
            Ast::Int(v) => Some(Checked::Val(Ir::Int(*v), Ty::Int)),
            Ast::Money(v) => match limits::money(*v) {
                Ok(v) => Some(Checked::Val(Ir::Int(v), Ty::Money)),
                Err(why) => {
                    self.err(loc, Code::E008, n.span, format!("the amount `{}` {why}", node_text(loc, n)), None)
                }
            },
            Ast::Duration(v) => match limits::duration(*v) {
                Ok(v) => Some(Checked::Val(Ir::Int(v), Ty::Duration)),
                Err(why) => {
                    self.err(loc, Code::E008, n.span, format!("the duration `{}` {why}", node_text(loc, n)), None)
                }
            },
            Ast::Str(s) => Some(Checked::Val(Ir::Str(s.as_str().into()), Ty::Str)),
            Ast::Bool(b) => Some(Checked::Val(Ir::Bool(*b), Ty::Bool)),
            Ast::Null => Some(Checked::Val(Ir::Null, Ty::Null)),
            Ast::Path(segs) => self.path(segs, n.span, loc),
            Ast::Tuple(_) => {
                self.err(loc, Code::E013, n.span, "a list of values can only follow `in` or `intersects`", None)
            }
            Ast::Where(..) | Ast::Within(_) => self.err(
                loc,
                Code::E010,
                n.span,
                "`where` and `within` only appear inside count(), sum() and seq()",
                None,
            ),
            Ast::Not(x) => {
                let (ir, ty) = self.check(x, loc).and_then(|c| self.value(c, loc))?;
                if ty != Ty::Bool {
                    return self.err(
                        loc,
                        Code::E013,
                        x.span,
                        format!("`not` needs true or false, but this is {}", ty.name()),
                        None,
                    );
                }
                Some(Checked::Val(Ir::Not(Box::new(ir)), Ty::Bool))
            }
            Ast::Neg(x) => {
                let (ir, ty) = self.check(x, loc).and_then(|c| self.value(c, loc))?;
                if !matches!(ty, Ty::Int | Ty::Money | Ty::Duration) {
                    return self.err(loc, Code::E013, x.span, format!("cannot negate {}", ty.name()), None);
                }
                Some(Checked::Val(Ir::Neg(Box::new(ir)), ty))
            }
            Ast::Binary(op, l, r) => self.binary(*op, l, r, n.span, loc),
            Ast::Call(name, args) => self.call(name, args, n.span, loc),
        }
    }

    fn path(&mut self, segs: &[(String, Span)], span: Span, loc: &Loc) -> R {
        let name = segs[0].0.as_str();
        if segs.len() == 1 {
            if let Some(m) = self.macros.get(name) {
                return self.expand_macro(name, m, span, loc);
            }
            if self.lists.contains_key(name) {
                return self.err(
                    loc,
                    Code::E013,
                    span,
                    format!("list `{name}` can only follow `in` or `intersects`"),
                    None,
                );
            }
            if let Scope::Filter(kind) = self.scope {
                if let Some(c) = self.field(&format!("event.{name}"), span, loc, true, kind) {
                    return Some(c);
                }
            }
            if name == "now" {
                return Some(Checked::Val(Ir::Field(Field::Now), Ty::Time));
            }
            return Some(Checked::Bare(name.to_string(), span));
        }
        let full: Vec<&str> = segs.iter().map(|s| s.0.as_str()).collect();
        if full.len() == 3 && full[0] == "event" && full[1] == "attrs" {
            return self
                .require_kinds(KindSet(Kind::Crm.bit()), "event.attrs", span, loc)
                .map(|_| Checked::Val(Ir::Attr(full[2].into()), Ty::Dyn));
        }
        let path = full.join(".");
        if let Scope::Filter(kind) = self.scope {
            if path.starts_with("event.") || path.starts_with(&format!("{kind}.")) {
                let p = path.replacen(&format!("{kind}."), "event.", 1);
                return self.field(&p, span, loc, false, kind);
            }
            return self.err(
                loc,
                Code::E021,
                span,
                format!("`{path}` cannot be read here: a `where` filter sees only the fields of its own {kind} event"),
                Some("move this test out of the filter into the rule condition".into()),
            );
        }
        self.field(&path, span, loc, false, Kind::Usage)
    }

    /// Resolves a field path. In a filter, `quiet` returns `None` without a diagnostic when
    /// the field does not exist (so the caller can treat the word as a symbol).
    fn field(&mut self, path: &str, span: Span, loc: &Loc, quiet: bool, filter_kind: Kind) -> R {
        let Some((ty, field, kinds)) = schema::lookup(path) else {
            if quiet {
                return None;
            }
            let root = path.split('.').next().unwrap_or("");
            let hint = if ROOTS.contains(&root) {
                nearest(path, schema::FIELDS.iter().map(|f| f.0).filter(|p| p.starts_with(root)))
                    .map(|n| format!("did you mean `{n}`?"))
            } else {
                nearest(root, ROOTS.iter().copied()).map(|n| format!("did you mean `{n}.`?"))
            };
            return self.err(loc, Code::E011, span, format!("unknown field `{path}`"), hint);
        };
        if let Scope::Filter(_) = self.scope {
            match kinds {
                Some(k) if k.contains(filter_kind) => {}
                _ if quiet => return None,
                _ => {
                    return self.err(
                        loc,
                        Code::E014,
                        span,
                        format!("{filter_kind} events have no field `{path}`"),
                        None,
                    );
                }
            }
        } else if let Some(k) = kinds {
            self.require_kinds(k, path, span, loc)?;
        }
        Some(Checked::Val(Ir::Field(field), ty))
    }

    fn require_kinds(&mut self, have: KindSet, path: &str, span: Span, loc: &Loc) -> Option<()> {
        match self.scope {
            Scope::Rule(on) => {
                let missing: Vec<&str> = on.iter().filter(|k| !have.contains(*k)).map(Kind::as_str).collect();
                if missing.is_empty() {
                    return Some(());
                }
                let carriers: Vec<&str> = have.iter().map(Kind::as_str).collect();
                self.err(
                    loc,
                    Code::E014,
                    span,
                    format!(
                        "`{path}` is a field of {} events, but this rule also listens to {}",
                        carriers.join("/"),
                        missing.join(", ")
                    ),
                    Some("split the rule by event kind, or listen only to the kinds that have the field".into()),
                );
                None
            }
            Scope::Filter(k) if have.contains(k) => Some(()),
            Scope::Filter(k) => {
                self.err(loc, Code::E014, span, format!("{k} events have no field `{path}`"), None);
                None
            }
            Scope::Timer => {
                self.err(
                    loc,
                    Code::E014,
                    span,
                    format!("`{path}` is an event field, and a timer's recheck runs without an event"),
                    Some("read subscriber. or state. fields instead".into()),
                );
                None
            }
        }
    }

    fn expand_macro(&mut self, name: &str, m: &MacroDef, span: Span, loc: &Loc) -> R {
        m.used.set(true);
        if self.expanding.iter().any(|e| e == name) {
            let chain = format!("{} -> {name}", self.expanding.join(" -> "));
            return self.err(loc, Code::E018, span, format!("macro `{name}` refers to itself ({chain})"), None);
        }
        let ast = m.ast.as_ref()?;
        let (file, source) = &self.files[m.file];
        let mloc = Loc { file, source, node: &m.node, base: 0 };
        self.expanding.push(name.to_string());
        let before = self.diags.len();
        let r = self.check(ast, &mloc).and_then(|c| self.value(c, &mloc));
        self.expanding.pop();
        if r.is_none() && self.diags.len() > before {
            // Say where the macro was used too: a macro may be fine for one rule and not another.
            self.diags.push(loc.diag(
                Code::E012,
                span,
                format!("macro `{name}` cannot be used here (see the error in its definition)"),
            ));
        }
        r.map(|(ir, ty)| Checked::Val(ir, ty))
    }

    /// Resolves the right side of `in` / `intersects`: a tuple, a list name, or a field.
    fn items(&mut self, n: &Node, loc: &Loc) -> Option<Items> {
        match &n.ast {
            Ast::Tuple(items) => {
                let mut out = Vec::new();
                for it in items {
                    match &it.ast {
                        Ast::Str(s) => out.push((s.clone(), it.span)),
                        Ast::Int(v) => out.push((v.to_string(), it.span)),
                        Ast::Path(segs) if segs.len() == 1 && self.lists.contains_key(&segs[0].0) => {
                            let l = &self.lists[&segs[0].0];
                            l.used.set(true);
                            out.extend(l.items.iter().map(|s| (s.clone(), it.span)));
                        }
                        Ast::Path(segs) if segs.len() == 1 && !self.macros.contains_key(&segs[0].0) => {
                            out.push((segs[0].0.clone(), it.span))
                        }
                        _ => {
                            self.err(loc, Code::E013, it.span, "list items must be words, strings or numbers", None);
                            return None;
                        }
                    }
                }
                Some(Ok(out))
            }
            Ast::Path(segs) if segs.len() == 1 && self.lists.contains_key(&segs[0].0) => {
                let l = &self.lists[&segs[0].0];
                l.used.set(true);
                Some(Ok(l.items.iter().map(|s| (s.clone(), n.span)).collect()))
            }
            _ => {
                let c = self.check(n, loc)?;
                match c {
                    Checked::Bare(word, span) => Some(Ok(vec![(word, span)])),
                    Checked::Val(ir, ty) => Some(Err((ir, ty))),
                }
            }
        }
    }

    fn sym(&mut self, t: SymTy, word: &str, span: Span, loc: &Loc) -> Option<u8> {
        if let Some(i) = t.index(word) {
            return Some(i);
        }
        let hint = nearest(word, t.names().iter().copied())
            .map(|n| format!("did you mean `{n}`?"))
            .unwrap_or_else(|| format!("one of: {}", t.names().join(", ")));
        self.err(loc, Code::E019, span, format!("`{word}` is not a value of this field"), Some(hint));
        None
    }

    fn tag(&mut self, word: &str, span: Span, loc: &Loc) -> TagId {
        match self.refdata {
            Some(rd) => rd.tag(word).unwrap_or_else(|| {
                self.diags.push(loc.diag(
                    Code::W103,
                    span,
                    format!("no cell in the reference data has the tag `{word}`"),
                ));
                TagId::MAX
            }),
            None => TagId::MAX,
        }
    }

    fn crm_event(&mut self, word: &str, span: Span, loc: &Loc) {
        if !CRM_EVENTS.contains(&word) {
            let hint = nearest(word, CRM_EVENTS.iter().copied()).map(|n| format!("did you mean `{n}`?"));
            self.diags.push(loc.diag(Code::W104, span, format!("`{word}` is not a known CRM event")).with_hint(hint));
        }
    }

    /// A literal (at `lit_span`) compared with a value of type `ty`.
    fn literal_for(&mut self, ty: Ty, lit: Checked, lit_span: Span, other: &Ir, loc: &Loc) -> Option<(Ir, Ty)> {
        match lit {
            Checked::Bare(word, span) => match ty {
                Ty::Sym(t) => Some((Ir::Sym(self.sym(t, &word, span, loc)?), ty)),
                Ty::Str | Ty::Dyn => {
                    if matches!(other, Ir::Field(Field::CrmEvent)) {
                        self.crm_event(&word, span, loc);
                    }
                    Some((Ir::Str(word.into()), Ty::Str))
                }
                _ => self.value(Checked::Bare(word, span), loc),
            },
            Checked::Val(Ir::Str(s), Ty::Str) => match ty {
                Ty::Sym(t) => Some((Ir::Sym(self.sym(t, &s, lit_span, loc)?), ty)),
                _ => {
                    if matches!(other, Ir::Field(Field::CrmEvent)) {
                        self.crm_event(&s, lit_span, loc);
                    }
                    Some((Ir::Str(s), Ty::Str))
                }
            },
            c => self.value(c, loc),
        }
    }

    fn binary(&mut self, op: BinOp, l: &Node, r: &Node, span: Span, loc: &Loc) -> R {
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
                    return match limits::fold(aop, *a, *b) {
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
                        if matches!(lir, Ir::Field(Field::CrmEvent)) {
                            for (w, sp) in &items {
                                self.crm_event(w, *sp, loc);
                            }
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
        Some(Checked::Val(Ir::Cmp(cop, Box::new(lir), Box::new(rir)), Ty::Bool))
    }

    fn const_duration(&mut self, n: &Node, loc: &Loc, what: &str) -> Option<i64> {
        match n.ast {
            Ast::Duration(ms) if ms > 0 => Some(ms),
            _ => {
                self.err(loc, Code::E015, n.span, format!("{what} must be a duration such as 60s, 30m or 30d"), None);
                None
            }
        }
    }

    fn window(&mut self, n: &Node, loc: &Loc) -> Option<i64> {
        let w = self.const_duration(n, loc, "the window")?;
        if w > self.max_window {
            let hint = Some(format!(
                "raise `engine.max_window` in the config (now {}) if the state should keep more",
                format_duration(self.max_window)
            ));
            self.err(
                loc,
                Code::E016,
                n.span,
                format!(
                    "window {} is longer than the state keeps ({})",
                    format_duration(w),
                    format_duration(self.max_window)
                ),
                hint,
            );
            return None;
        }
        Some(w)
    }

    /// `KIND [where FILTER]` -> (kind, compiled filter). `allow_field` accepts `KIND.FIELD`.
    fn source(&mut self, n: &Node, loc: &Loc, allow_field: bool) -> Option<Source> {
        let (src, filter) = match &n.ast {
            Ast::Where(s, f) => (&**s, Some(&**f)),
            _ => (n, None),
        };
        let Ast::Path(segs) = &src.ast else {
            self.err(loc, Code::E015, src.span, "expected an event kind such as `usage` or `ivr`", None);
            return None;
        };
        let kname = &segs[0].0;
        let Some(kind) = Kind::parse(kname) else {
            let hint = nearest(kname, Kind::NAMES.iter().copied()).map(|k| format!("did you mean `{k}`?"));
            self.err(loc, Code::E015, segs[0].1, format!("`{kname}` is not an event kind"), hint);
            return None;
        };
        let mut value = None;
        let mut vty = None;
        if segs.len() == 2 && allow_field {
            let path = format!("event.{}", segs[1].0);
            match schema::lookup(&path) {
                Some((ty, f, Some(k))) if k.contains(kind) && matches!(ty, Ty::Int | Ty::Money | Ty::Duration) => {
                    value = Some(f);
                    vty = Some(ty);
                }
                _ => {
                    self.err(
                        loc,
                        Code::E011,
                        segs[1].1,
                        format!("{kind} events have no numeric field `{}` to sum", segs[1].0),
                        None,
                    );
                    return None;
                }
            }
        } else if segs.len() != 1 {
            self.err(
                loc,
                Code::E015,
                src.span,
                if allow_field { "expected KIND.FIELD, e.g. usage.charge_fen" } else { "expected an event kind" },
                None,
            );
            return None;
        }
        let filter = match filter {
            None => None,
            Some(f) => {
                let saved = std::mem::replace(&mut self.scope, Scope::Filter(kind));
                let r = self.condition(f, loc);
                self.scope = saved;
                Some(r?)
            }
        };
        Some((kind, value, filter, vty))
    }

    fn tags_arg(&mut self, args: &[Node], loc: &Loc, name: &str, span: Span) -> Option<Result<Box<[TagId]>, Ir>> {
        // `entered(cell.tags, hubs)` reads as the design card writes it; the first argument is implied.
        let args = match args {
            [first, rest] if matches!(&first.ast, Ast::Path(s) if s.len() == 2 && s[0].0 == "cell" && s[1].0 == "tags") => {
                std::slice::from_ref(rest)
            }
            a => a,
        };
        let [arg] = args else {
            self.err(
                loc,
                Code::E015,
                span,
                format!("{name}() takes one argument: a tag, a list of tags or a list name"),
                None,
            );
            return None;
        };
        if let Ast::Str(s) = &arg.ast {
            return Some(Ok(Box::new([self.tag(s, arg.span, loc)])));
        }
        match self.items(arg, loc)? {
            Ok(items) => Some(Ok(items.iter().map(|(w, sp)| self.tag(w, *sp, loc)).collect())),
            Err((ir, Ty::Str)) => Some(Err(ir)),
            Err((_, ty)) => {
                self.err(loc, Code::E015, arg.span, format!("{name}() needs cell tags, not {}", ty.name()), None);
                None
            }
        }
    }

    fn call(&mut self, name: &str, args: &[Node], span: Span, loc: &Loc) -> R {
        let arity = |this: &mut Self, n: usize| -> Option<()> {
            if args.len() != n {
                this.err(
                    loc,
                    Code::E015,
                    span,
                    format!("{name}() takes {n} argument{}", if n == 1 { "" } else { "s" }),
                    None,
                );
                return None;
            }
            Some(())
        };
        match name {
            "count" | "sum" => {
                if args.len() != 2 {
                    let example = if name == "count" {
                        "count(usage where scope == long_distance, 30d)"
                    } else {
                        "sum(usage.charge_fen where service == data, 7d)"
                    };
                    return self.err(
                        loc,
                        Code::E015,
                        span,
                        format!("{name}() takes an event source and a window"),
                        Some(format!("e.g. {example}")),
                    );
                }
                let src = self.source(&args[0], loc, name == "sum");
                let window = self.window(&args[1], loc);
                let ((kind, value, filter, vty), window) = (src?, window?);
                if name == "sum" && value.is_none() {
                    return self.err(
                        loc,
                        Code::E015,
                        args[0].span,
                        "sum() needs the field to add up, e.g. usage.charge_fen",
                        None,
                    );
                }
                let bucket = bucket_for(window);
                let key = format!("{name}|{kind}|{:?}|{}|{window}", value, node_text(loc, &args[0]));
                let slot = match self.slots.agg_keys.get(&key) {
                    Some(s) => *s,
                    None if self.slots.aggs.len() >= crate::state::MAX_WINDOWS => {
                        let max = crate::state::MAX_WINDOWS;
                        return self.err(
                            loc,
                            Code::E015,
                            span,
                            format!("a rule pack may use at most {max} windows"),
                            None,
                        );
                    }
                    None => {
                        let s = self.slots.aggs.len() as u32;
                        self.slots.aggs.push(AggDef { kind, filter, value, window, bucket });
                        self.slots.agg_keys.insert(key, s);
                        s
                    }
                };
                Some(Checked::Val(Ir::Agg { slot, bucket, window }, vty.unwrap_or(Ty::Int)))
            }
            "seq" => {
                let (within, steps): (Vec<&Node>, Vec<&Node>) =
                    args.iter().partition(|a| matches!(a.ast, Ast::Within(_)));
                let [w] = within.as_slice() else {
                    return self.err(
                        loc,
                        Code::E015,
                        span,
                        "seq() needs its steps and one `within DURATION`",
                        Some("e.g. seq(ivr where step == menu, ivr where step == agent, within 60s)".into()),
                    );
                };
                let Ast::Within(d) = &w.ast else { return None };
                let within = self.const_duration(d, loc, "`within`");
                if steps.len() < 2 {
                    return self.err(loc, Code::E015, span, "seq() needs at least two steps", None);
                }
                let mut out = Vec::new();
                for s in &steps {
                    let (kind, _, filter, _) = self.source(s, loc, false)?;
                    out.push((kind, filter));
                }
                let within = within?;
                let key =
                    format!("seq|{}|{within}", steps.iter().map(|s| node_text(loc, s)).collect::<Vec<_>>().join("|"));
                let slot = match self.slots.seq_keys.get(&key) {
                    Some(s) => *s,
                    None => {
                        let s = self.slots.seqs.len() as u32;
                        self.slots.seqs.push(SeqDef { steps: out, within });
                        self.slots.seq_keys.insert(key, s);
                        s
                    }
                };
                Some(Checked::Val(Ir::Seq(slot), Ty::Bool))
            }
            "entered" | "left" => match self.tags_arg(args, loc, name, span)? {
                Ok(tags) => {
                    Some(Checked::Val(if name == "entered" { Ir::Entered(tags) } else { Ir::Left(tags) }, Ty::Bool))
                }
                Err(_) => {
                    self.err(loc, Code::E015, span, format!("{name}() needs tag names known when the rules load"), None)
                }
            },
            "visited" => {
                let [tags, window] = args else {
                    return self.err(
                        loc,
                        Code::E015,
                        span,
                        "visited() takes tags and a window",
                        Some("e.g. visited(\"cutover:zgc01\", 7d)".into()),
                    );
                };
                let w = self.window(window, loc)?;
                match self.tags_arg(std::slice::from_ref(tags), loc, name, span)? {
                    Ok(t) => Some(Checked::Val(Ir::Visited(t, w), Ty::Bool)),
                    Err(_) => {
                        self.err(loc, Code::E015, span, "visited() needs tag names known when the rules load", None)
                    }
                }
            }
            "dwell" => match self.tags_arg(args, loc, name, span)? {
                Ok(tags) => Some(Checked::Val(Ir::Dwell(tags), Ty::Duration)),
                Err(ir) => Some(Checked::Val(Ir::DwellNamed(Box::new(ir)), Ty::Duration)),
            },
            "days_until" => {
                arity(self, 1)?;
                let entry = match &args[0].ast {
                    Ast::Path(segs) if segs.len() == 1 => segs[0].0.clone(),
                    Ast::Str(s) => s.clone(),
                    _ => {
                        return self.err(
                            loc,
                            Code::E015,
                            args[0].span,
                            "days_until() takes the name of a calendar entry",
                            None,
                        );
                    }
                };
                match self.refdata {
                    Some(rd) => match rd.calendar.iter().position(|c| *c.name == *entry) {
                        Some(i) => Some(Checked::Val(Ir::DaysUntil(i as u32), Ty::Int)),
                        None => {
                            self.diags.push(loc.diag(
                                Code::W103,
                                args[0].span,
                                format!("the calendar has no entry `{entry}`"),
                            ));
                            Some(Checked::Val(Ir::Null, Ty::Int))
                        }
                    },
                    None => Some(Checked::Val(Ir::Null, Ty::Int)),
                }
            }
            "exists" => {
                arity(self, 1)?;
                let (ir, _) = self.check(&args[0], loc).and_then(|c| self.value(c, loc))?;
                Some(Checked::Val(Ir::Exists(Box::new(ir)), Ty::Bool))
            }
            "min" | "max" => {
                arity(self, 2)?;
                let a = self.check(&args[0], loc).and_then(|c| self.value(c, loc));
                let b = self.check(&args[1], loc).and_then(|c| self.value(c, loc));
                let ((ai, at), (bi, bt)) = (a?, b?);
                if at != bt || !matches!(at, Ty::Int | Ty::Money | Ty::Duration | Ty::Time) {
                    return self.err(
                        loc,
                        Code::E013,
                        span,
                        format!("{name}() needs two numbers of the same kind, got {} and {}", at.name(), bt.name()),
                        None,
                    );
                }
                let ir = if name == "min" {
                    Ir::Min(Box::new(ai), Box::new(bi))
                } else {
                    Ir::Max(Box::new(ai), Box::new(bi))
                };
                Some(Checked::Val(ir, at))
            }
            "abs" => {
                arity(self, 1)?;
                let (ir, ty) = self.check(&args[0], loc).and_then(|c| self.value(c, loc))?;
                if !matches!(ty, Ty::Int | Ty::Money | Ty::Duration) {
                    return self.err(
                        loc,
                        Code::E013,
                        args[0].span,
                        format!("abs() needs a number, not {}", ty.name()),
                        None,
                    );
                }
                Some(Checked::Val(Ir::Abs(Box::new(ir)), ty))
            }
            _ => {
                let hint = nearest(name, FUNCTIONS.iter().copied())
                    .map(|f| format!("did you mean `{f}`?"))
                    .or_else(|| Some(format!("functions: {}", FUNCTIONS.join(", "))));
                self.err(loc, Code::E015, span, format!("unknown function `{name}`"), hint)
            }
        }
    }
}

/// The source text of a node, whitespace-normalised: the identity of an aggregate slot.
fn node_text(loc: &Loc, n: &Node) -> String {
    span_text(loc, n.span)
}

/// The source text of a span, whitespace-normalised.
fn span_text(loc: &Loc, span: Span) -> String {
    let text = loc.node.as_str().unwrap_or("");
    let s = text.get(loc.base + span.start..loc.base + span.end).unwrap_or("");
    s.split_whitespace().collect::<Vec<_>>().join(" ")
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
