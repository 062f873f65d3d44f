//! Type checking and compilation of conditions: names are resolved against the schema, the
//! rule pack's lists and macros and the reference data; every problem becomes a diagnostic
//! at its exact position; what passes becomes an [`Ir`] tree.
//!
//! Here: the [`Checker`], values, names, fields, macros and lists. Operators are checked in
//! [`ops`]; calls in [`builtins`], the one table of built-in functions.

mod armed;
pub mod builtins;
mod compared;
mod ops;

pub use armed::{Armed, MAX_ARMED};
pub use builtins::{BUILTINS, Builtin, Param, Returns};
pub use compared::unknown_names;

use super::Ir;
use super::schema::{self, Field, ROOTS, SymTy, Ty};
use super::syntax::{Ast, Node, Span};
use crate::event::{Kind, KindSet};
use crate::refdata::{RefData, TagId};
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::words::Dictionary;
use crate::rules::{limits, yaml};
use crate::util::nearest;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

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
    pub filter: Option<super::Cond>,
    /// The field summed; `None` counts events.
    pub value: Option<Field>,
    pub window: i64,
    pub bucket: i64,
}

/// A distinct count the rule set needs per subscriber: the different values of `field` among
/// the events of `kind` passing `filter` within `window`.
#[derive(Clone, Debug)]
pub struct DistinctDef {
    pub kind: Kind,
    pub field: Field,
    pub filter: Option<super::Cond>,
    pub window: i64,
}

/// A sequence of steps within a time limit.
#[derive(Clone, Debug)]
pub struct SeqDef {
    pub steps: Vec<(Kind, Option<super::Cond>)>,
    pub within: i64,
}

#[derive(Default)]
pub struct Slots {
    pub aggs: Vec<AggDef>,
    /// By window slot: the reads made of it, how many of them compare a count with a constant,
    /// and the fewest events that decide those comparisons (see [`Slots::agg_caps`]).
    agg_uses: Vec<(u32, u32, i64)>,
    pub seqs: Vec<SeqDef>,
    pub distinct: Vec<DistinctDef>,
    /// Each slot as its first read was written, for people (see [`SlotText`]).
    pub text: SlotText,
    agg_keys: HashMap<String, u32>,
    /// The first slot of each source (the events, filter and field, whatever the window).
    agg_sources: HashMap<String, u32>,
    seq_keys: HashMap<String, u32>,
    distinct_keys: HashMap<String, u32>,
}

impl Slots {
    /// The uses of window slot `slot` so far.
    fn agg_use(&mut self, slot: u32) -> &mut (u32, u32, i64) {
        let i = slot as usize;
        if self.agg_uses.len() <= i {
            self.agg_uses.resize(i + 1, (0, 0, 0));
        }
        &mut self.agg_uses[i]
    }

    /// A read of window slot `slot` was made.
    pub(super) fn agg_read(&mut self, slot: u32) {
        self.agg_use(slot).0 += 1;
    }

    /// One read of count slot `slot` is compared with a constant, which `need` events or more
    /// decide (`>= 3`: 3; `== 0`: 1).
    pub(super) fn agg_threshold(&mut self, slot: u32, need: i64) {
        let u = self.agg_use(slot);
        u.1 += 1;
        u.2 = u.2.max(need);
    }

    /// By window slot: the fewest events the newest buckets kept must hold ([`crate::state::
    /// AggCap`]) — for a count every read of which is compared with a constant that few events
    /// decide — else 0 (every bucket of the window kept).
    pub fn agg_caps(&self) -> Vec<i64> {
        (0..self.aggs.len())
            .map(|i| {
                let (reads, compared, need) = self.agg_uses.get(i).copied().unwrap_or_default();
                let counted = self.aggs[i].value.is_none();
                if counted && reads > 0 && compared == reads && need <= MAX_CAP { need.max(1) } else { 0 }
            })
            .collect()
    }
}

/// The window, sequence and distinct-count slots of a pack as the rules wrote them: what a
/// report names a slot by (`tidings diff`'s "starts empty at a reload").
#[derive(Clone, Debug, Default)]
pub struct SlotText {
    /// By window slot: the call up to its window (`count(usage where service == data`), and
    /// the calendar month it reads when it reads one (`last_month`); the window itself is the
    /// slot's own, the longest of the reads sharing it.
    pub aggs: Vec<(String, Option<String>)>,
    pub seqs: Vec<String>,
    pub distinct: Vec<String>,
}

impl SlotText {
    /// Window slot `slot` of `aggs` in words, read over its whole window: `count(usage where
    /// service == data, 60d)`.
    pub fn agg(&self, slot: usize, aggs: &[AggDef]) -> String {
        self.agg_read(slot, aggs, None)
    }

    /// A read of window slot `slot` over `window` (`None`: the slot's own) in words.
    pub fn agg_read(&self, slot: usize, aggs: &[AggDef], window: Option<i64>) -> String {
        let window = |d: &AggDef| crate::time::format_duration(window.unwrap_or(d.window));
        match (self.aggs.get(slot), aggs.get(slot)) {
            (Some((call, Some(month))), _) => format!("{call}, {month})"),
            (Some((call, None)), Some(d)) => format!("{call}, {})", window(d)),
            (_, Some(d)) => format!("a window over {} events of {}", d.kind, window(d)),
            (_, None) => format!("window {slot}"),
        }
    }
}

/// The most events a count's kept buckets are made to hold: comparisons with larger constants
/// keep the whole window.
const MAX_CAP: i64 = 16;

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
    pub words: &'a Arc<Dictionary>,
    pub slots: &'a mut Slots,
    pub diags: &'a mut Vec<Diagnostic>,
    pub max_window: i64,
    pub scope: Scope,
    /// The pack's derived attributes so far (`derived.NAME`): slot and type, in `derive:` order.
    pub derived: Vec<(String, Ty)>,
    /// While the derives compile: those further down the pack, with where (`file:line`), the
    /// next one last. A derive reads only those above it; this says which ones come later.
    pub derives_ahead: Vec<(String, String)>,
    /// Derives refused with errors of their own: reading one is not reported again.
    pub derives_failed: Vec<String>,
    /// While a derive compiles: the macros and lists it reads, each as `macro NAME: ...` or
    /// `list NAME: ...` with what it says (a derive whose macro changed is redefined too).
    pub consulted: Option<Vec<String>>,
    /// The reply keywords conditions compare `event.keyword` (or `event.text`) with and journey
    /// steps move on, normalised: the replies the pack answers ([`crate::rules::asks`]).
    pub replies_read: Vec<Box<str>>,
    /// The replies the pack's SMS ask for, checked against `replies_read` once all is compiled.
    pub asks: Vec<crate::rules::asks::Ask>,
    /// The pack's SMS templates against their rules' `parts:` budgets, checked once the
    /// unsubscribe footer is known ([`crate::rules::length`]).
    pub lengths: Vec<crate::rules::length::Length>,
    /// The rule and campaign names conditions compare an outcome's or a reply's with, each with
    /// the warning to give if the pack has no such name ([`compared`]).
    pub names_read: Vec<compared::NameRead>,
    /// While a timer's `cancel_if` or `recheck` is checked: what it reads as `armed.PATH`.
    pub armed: Option<Armed>,
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
    "bill_overdue",
    "discount_credited",
    "disconnect_requested",
    "service_failure",
    "cutover_planned",
    "stay_commitment",
    "birthday",
    "festival",
];

type R = Option<Checked>;

/// The right side of `in` / `intersects`: literal words with their spans, or a value.
type Items = Result<Vec<(String, Span)>, (Ir, Ty)>;

/// An aggregate's or sequence step's source: kind, summed field (and its type), filter.
type Source = (Kind, Option<Field>, Option<Ir>, Option<Ty>);

/// The names a pack's conditions may use besides the schema's: its lists and macros (with the
/// files the macros are in, to point into them), and the reference data when it is known; and
/// the pack's words, which its templates write codes with.
#[derive(Clone, Copy)]
pub struct Names<'a> {
    pub files: &'a [(String, String)],
    pub lists: &'a HashMap<String, ListDef>,
    pub macros: &'a HashMap<String, MacroDef>,
    pub refdata: Option<&'a RefData>,
    pub words: &'a Arc<Dictionary>,
}

impl<'a> Checker<'a> {
    /// A checker of conditions that may use `names`, adding the windows and sequences they
    /// need to `slots` and what is wrong with them to `diags`.
    pub fn new(names: Names<'a>, slots: &'a mut Slots, diags: &'a mut Vec<Diagnostic>, max_window: i64) -> Self {
        let Names { files, lists, macros, refdata, words } = names;
        Checker {
            files,
            lists,
            macros,
            refdata,
            words,
            slots,
            diags,
            max_window,
            scope: Scope::Timer,
            derived: Vec::new(),
            derives_ahead: Vec::new(),
            derives_failed: Vec::new(),
            consulted: None,
            replies_read: Vec::new(),
            asks: Vec::new(),
            lengths: Vec::new(),
            names_read: Vec::new(),
            armed: None,
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
        cands.extend(BUILTINS.iter().map(|f| f.name));
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
        if name == "armed" {
            return self.armed_path(&segs[1..], span, loc);
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
        if let Some(name) = path.strip_prefix("derived.") {
            return self.derived_field(name, span, loc, quiet);
        }
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

    /// `derived.NAME`: a derived attribute defined before this point of the pack (a filter reads
    /// only its own event, so not there).
    fn derived_field(&mut self, name: &str, span: Span, loc: &Loc, quiet: bool) -> R {
        if let Scope::Filter(k) = self.scope {
            if quiet {
                return None;
            }
            return self.err(loc, Code::E014, span, format!("{k} events have no field `derived.{name}`"), None);
        }
        match self.derived.iter().position(|(n, _)| n == name) {
            Some(i) => Some(Checked::Val(Ir::Field(Field::Derived(i as u16)), self.derived[i].1)),
            // Its derive's own errors say what is wrong: nothing more to report here.
            None if self.derives_failed.iter().any(|n| n == name) => None,
            None => {
                // The nearest one down (the stack's top is the next item).
                if let Some((_, at)) = self.derives_ahead.iter().rev().find(|(n, _)| n == name) {
                    let msg = format!(
                        "`derived.{name}` is defined further down ({at}): a derive reads only the derived attributes defined above it"
                    );
                    let hint = Some(format!("move `derive: {name}` above this item"));
                    return self.err(loc, Code::E011, span, msg, hint);
                }
                let hint = nearest(name, self.derived.iter().map(|d| d.0.as_str()))
                    .map(|n| format!("did you mean `derived.{n}`?"))
                    .or_else(|| Some("a `derive:` item defines it (before the rules that read it)".into()));
                self.err(loc, Code::E011, span, format!("unknown field `derived.{name}`"), hint)
            }
        }
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
        self.consult(|| format!("macro {name}: {}", m.node.words()));
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

    /// Notes a macro or list a derive reads (see [`Checker::consulted`]), once.
    fn consult(&mut self, said: impl FnOnce() -> String) {
        if let Some(c) = &mut self.consulted {
            let said = said();
            if !c.contains(&said) {
                c.push(said);
            }
        }
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
                            self.consult(|| format!("list {}: {}", segs[0].0, l.items.join(", ")));
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
                self.consult(|| format!("list {}: {}", segs[0].0, l.items.join(", ")));
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
                    self.compared(other, &word, span, loc);
                    Some((Ir::Str(word.into()), Ty::Str))
                }
                _ => self.value(Checked::Bare(word, span), loc),
            },
            Checked::Val(Ir::Str(s), Ty::Str) => match ty {
                Ty::Sym(t) => Some((Ir::Sym(self.sym(t, &s, lit_span, loc)?), ty)),
                _ => {
                    self.compared(other, &s, lit_span, loc);
                    Some((Ir::Str(s), Ty::Str))
                }
            },
            c => self.value(c, loc),
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
