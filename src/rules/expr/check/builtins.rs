//! The condition language's built-in functions, in one table ([`BUILTINS`]): each one's name,
//! parameters, result type, what a call takes (said when a call does not fit), an example, and
//! the code that checks and compiles a call. The checker's calls, the "did you mean" hints, the
//! function list in diagnostics and the fuzz grammar (`tests/it/fuzz.rs`) all read this table,
//! so a function cannot be known to one and missing from another (the list was written twice
//! once, and drifted).

use super::{AggDef, Checked, Checker, DistinctDef, Loc, R, SeqDef, Source, node_text, span_text};
use crate::event::Kind;
use crate::refdata::TagId;
use crate::rules::diag::Code;
use crate::rules::expr::Cond;
use crate::rules::expr::check::Scope;
use crate::rules::expr::schema::{self, Ty};
use crate::rules::expr::syntax::{Ast, Node, Span};
use crate::rules::expr::{Ir, bucket_for};
use crate::time::{DAY, HOUR, format_duration};
use crate::util::nearest;

/// What a built-in takes at one place of its argument list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// `KIND [where FILTER]`: the events counted (`usage where scope == long_distance`).
    Events,
    /// `KIND.FIELD [where FILTER]`: a numeric field of the events, summed (`usage.charge_fen`).
    Summed,
    /// `KIND.FIELD [where FILTER]`: a field of the events whose different values are counted
    /// (`location.cell`).
    Field,
    /// Two or more `KIND [where FILTER]` steps, in order.
    Steps,
    /// `within DURATION`: how close together the steps must fall.
    Within,
    /// A window: a duration no longer than the state keeps (`30d`).
    Window,
    /// Cell tags: a tag (`"railway_station"`), a list of tags or a list name. `entered`, `left`
    /// and `dwell` also take `cell.tags, ` before it, as the design card writes them.
    Tags,
    /// The name of a calendar entry (`spring_festival`).
    Entry,
    /// Any value.
    Value,
    /// A number (an int, an amount or a duration; `min` and `max` also take times), of the same
    /// type as the function's other numbers.
    Number,
}

/// The type of a built-in's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returns {
    Is(Ty),
    /// The type of the field summed.
    Summed,
    /// The type of its arguments.
    Same,
}

/// One built-in function.
pub struct Builtin {
    pub name: &'static str,
    /// Its arguments, in order; a call takes exactly these (`Steps` is two or more).
    pub params: &'static [Param],
    pub returns: Returns,
    /// What a call takes, said (after `NAME()`) when a call does not fit.
    pub takes: &'static str,
    /// A call that checks. Shown after `takes` for a function whose arguments have a syntax of
    /// their own (events, steps, a window): see [`Builtin::usage_hint`].
    pub example: &'static str,
    /// Checks a call's arguments and compiles it.
    check: fn(&mut Checker<'_>, &Call<'_>) -> R,
}

/// Every function a condition may call, in the order the diagnostics list them.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "count",
        params: &[Param::Events, Param::Window],
        returns: Returns::Is(Ty::Int),
        takes: "takes an event source and a window",
        example: "count(usage where scope == long_distance, 30d)",
        check: aggregate,
    },
    Builtin {
        name: "sum",
        params: &[Param::Summed, Param::Window],
        returns: Returns::Summed,
        takes: "takes an event source and a window",
        example: "sum(usage.charge_fen where service == data, 7d)",
        check: aggregate,
    },
    Builtin {
        name: "distinct",
        params: &[Param::Field, Param::Window],
        returns: Returns::Is(Ty::Int),
        takes: "takes an event field and a window",
        example: "distinct(location.cell, 1d)",
        check: distinct,
    },
    Builtin {
        name: "seq",
        params: &[Param::Steps, Param::Within],
        returns: Returns::Is(Ty::Bool),
        takes: "needs its steps and one `within DURATION`",
        example: "seq(ivr where step == menu, ivr where step == agent, within 60s)",
        check: seq,
    },
    Builtin {
        name: "entered",
        params: &[Param::Tags],
        returns: Returns::Is(Ty::Bool),
        takes: "takes one argument: a tag, a list of tags or a list name",
        example: "entered(cell.tags, \"railway_station\")",
        check: crossed,
    },
    Builtin {
        name: "left",
        params: &[Param::Tags],
        returns: Returns::Is(Ty::Bool),
        takes: "takes one argument: a tag, a list of tags or a list name",
        example: "left(\"railway_station\")",
        check: crossed,
    },
    Builtin {
        name: "dwell",
        params: &[Param::Tags],
        returns: Returns::Is(Ty::Duration),
        takes: "takes one argument: a tag, a list of tags or a list name",
        example: "dwell((railway_station, airport))",
        check: dwell,
    },
    Builtin {
        name: "visited",
        params: &[Param::Tags, Param::Window],
        returns: Returns::Is(Ty::Bool),
        takes: "takes tags and a window",
        example: "visited(\"cutover:zgc01\", 7d)",
        check: visited,
    },
    Builtin {
        name: "exists",
        params: &[Param::Value],
        returns: Returns::Is(Ty::Bool),
        takes: "takes 1 argument",
        example: "exists(state.last_topup_at)",
        check: exists,
    },
    Builtin {
        name: "days_until",
        params: &[Param::Entry],
        returns: Returns::Is(Ty::Int),
        takes: "takes 1 argument",
        example: "days_until(spring_festival)",
        check: days_until,
    },
    Builtin {
        name: "min",
        params: &[Param::Number, Param::Number],
        returns: Returns::Same,
        takes: "takes 2 arguments",
        example: "min(state.balance, 10 CNY)",
        check: min_max,
    },
    Builtin {
        name: "max",
        params: &[Param::Number, Param::Number],
        returns: Returns::Same,
        takes: "takes 2 arguments",
        example: "max(now - state.last_topup_at, 1d)",
        check: min_max,
    },
    Builtin {
        name: "abs",
        params: &[Param::Number],
        returns: Returns::Same,
        takes: "takes 1 argument",
        example: "abs(state.balance)",
        check: abs,
    },
];

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|f| f.name == name)
}

/// The names of the built-ins, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|f| f.name)
}

impl Builtin {
    /// `e.g. EXAMPLE` for a function whose arguments have a syntax of their own (an event
    /// source, steps, a window); the others' `takes` says enough.
    pub fn usage_hint(&self) -> Option<String> {
        let own_syntax = self
            .params
            .iter()
            .any(|p| matches!(p, Param::Events | Param::Summed | Param::Field | Param::Steps | Param::Window));
        own_syntax.then(|| format!("e.g. {}", self.example))
    }
}

/// A call being checked: the function, its arguments, and where it is.
pub(super) struct Call<'c> {
    f: &'static Builtin,
    args: &'c [Node],
    span: Span,
    loc: &'c Loc<'c>,
}

impl Call<'_> {
    /// The call does not fit the function: E015 with what it takes.
    fn wrong(&self, ck: &mut Checker) -> R {
        let f = self.f;
        ck.err(self.loc, Code::E015, self.span, format!("{}() {}", f.name, f.takes), f.usage_hint())
    }

    /// The call has as many arguments as the function's parameters, else E015.
    fn arity(&self, ck: &mut Checker) -> Option<()> {
        if self.args.len() == self.f.params.len() {
            return Some(());
        }
        self.wrong(ck);
        None
    }

    /// Checks argument `i` as a value.
    fn value(&self, ck: &mut Checker, i: usize) -> Option<(Ir, Ty)> {
        ck.check(&self.args[i], self.loc).and_then(|c| ck.value(c, self.loc))
    }
}

impl Checker<'_> {
    /// A call of a built-in (or an unknown function, with the nearest name or the list).
    pub(super) fn call(&mut self, name: &str, args: &[Node], span: Span, loc: &Loc) -> R {
        let Some(f) = find(name) else {
            let hint = nearest(name, names())
                .map(|f| format!("did you mean `{f}`?"))
                .or_else(|| Some(format!("functions: {}", names().collect::<Vec<_>>().join(", "))));
            return self.err(loc, Code::E015, span, format!("unknown function `{name}`"), hint);
        };
        (f.check)(self, &Call { f, args, span, loc })
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
    /// `KIND [where FILTER]`, or `KIND.FIELD [where FILTER]` for `what` [`Param::Summed`] (a
    /// numeric field) or [`Param::Field`] (a field of any single value).
    fn source(&mut self, n: &Node, loc: &Loc, what: Param) -> Option<Source> {
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
        let allow_field = matches!(what, Param::Summed | Param::Field);
        if segs.len() == 2 && allow_field {
            let path = format!("event.{}", segs[1].0);
            let fits = |ty: Ty| match what {
                Param::Summed => matches!(ty, Ty::Int | Ty::Money | Ty::Duration),
                _ => matches!(ty, Ty::Int | Ty::Money | Ty::Duration | Ty::Str | Ty::Sym(_) | Ty::Bool),
            };
            match schema::lookup(&path) {
                Some((ty, f, Some(k))) if k.contains(kind) && fits(ty) => {
                    value = Some(f);
                    vty = Some(ty);
                }
                _ if what == Param::Field => {
                    let name = &segs[1].0;
                    let fields = schema::FIELDS.iter().filter(|f| {
                        f.3 & kind.bit() != 0 && f.0.matches('.').count() == 1 && fits(f.1) && f.0 != "event.id"
                    });
                    let names: Vec<&str> = fields.map(|f| &f.0["event.".len()..]).collect();
                    let hint = nearest(name, names.iter().copied())
                        .map(|f| format!("did you mean `{kind}.{f}`?"))
                        .or_else(|| Some(format!("{kind} fields: {}", names.join(", "))));
                    let msg = format!("{kind} events have no field `{name}` to count the values of");
                    self.err(loc, Code::E011, segs[1].1, msg, hint);
                    return None;
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
    /// The tags argument of a call (after an optional `cell.tags, ` for `entered`, `left` and
    /// `dwell`): tag ids when the names are known now, else the value naming them.
    fn tags_arg(&mut self, c: &Call, args: &[Node]) -> Option<Result<Box<[TagId]>, Ir>> {
        let (name, loc) = (c.f.name, c.loc);
        // `entered(cell.tags, hubs)` reads as the design card writes it; the first argument is implied.
        let args = match args {
            [first, rest] if matches!(&first.ast, Ast::Path(s) if s.len() == 2 && s[0].0 == "cell" && s[1].0 == "tags") => {
                std::slice::from_ref(rest)
            }
            a => a,
        };
        let [arg] = args else {
            c.wrong(self);
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
}

/// The most buckets a window may read from a shared slot: two windows' worth (see [`bucket_for`]).
const SHARED_BUCKETS: i64 = 120;

/// `count(KIND [where F], WINDOW)` and `sum(KIND.FIELD [where F], WINDOW)`: a windowed
/// aggregate, one slot per distinct source and window in the pack (a longer window may share a
/// shorter one's slot).
fn aggregate(ck: &mut Checker, c: &Call) -> R {
    let (name, args, loc) = (c.f.name, c.args, c.loc);
    c.arity(ck)?;
    let summed = c.f.params[0] == Param::Summed;
    let src = ck.source(&args[0], loc, c.f.params[0]);
    let month = ck.month(&args[1], loc);
    let window = match month {
        Some(m) => m.map(Month::keeps),
        None => ck.window(&args[1], loc),
    };
    let ((kind, value, filter, vty), window) = (src?, window?);
    if summed && value.is_none() {
        return ck.err(loc, Code::E015, args[0].span, "sum() needs the field to add up, e.g. usage.charge_fen", None);
    }
    // A calendar month is read from hour buckets, which fall on local midnight for every whole-
    // hour offset (all of China's): the month's edges are exact, and a subscriber keeps only
    // the hours they were active in (buckets are sparse).
    let (bucket, month) = match month {
        Some(Some(m)) => (HOUR, Some(m)),
        _ => (bucket_for(window), None),
    };
    let source = format!("{name}|{kind}|{:?}|{}|{}", value, node_text(loc, &args[0]), month.is_some());
    let key = format!("{source}|{window}");
    // A longer window over the same events reads the buckets of a shorter one when they are fine
    // enough for it and it keeps no more of them than two windows would: `count(X, 30d) == 0 and
    // count(X, 60d) >= 3` keeps one set of half-day buckets for 60 days, not two sets, and an
    // event adds to one. The slot keeps its buckets as long as its longest window reads them.
    let shared = ck.slots.agg_sources.get(&source).copied().filter(|s| {
        let d = &ck.slots.aggs[*s as usize];
        month.is_none() && d.bucket <= bucket && window <= d.bucket * SHARED_BUCKETS
    });
    let (slot, bucket) = match ck.slots.agg_keys.get(&key) {
        Some(s) => (*s, ck.slots.aggs[*s as usize].bucket),
        None if let Some(s) = shared => {
            let d = &mut ck.slots.aggs[s as usize];
            d.window = d.window.max(window);
            ck.slots.agg_keys.insert(key, s);
            (s, d.bucket)
        }
        None if ck.slots.aggs.len() >= crate::state::MAX_WINDOWS => {
            let max = crate::state::MAX_WINDOWS;
            return ck.err(loc, Code::E015, c.span, format!("a rule pack may use at most {max} windows"), None);
        }
        None => {
            let s = ck.slots.aggs.len() as u32;
            ck.slots.aggs.push(AggDef { kind, filter: filter.map(Cond::new), value, window, bucket });
            let month = month.map(|_| node_text(loc, &args[1]));
            ck.slots.text.aggs.push((format!("{name}({}", node_text(loc, &args[0])), month));
            ck.slots.agg_keys.insert(key, s);
            ck.slots.agg_sources.entry(source).or_insert(s);
            (s, bucket)
        }
    };
    // Every read counts: a slot's buckets are trimmed only when each is a comparison with a
    // constant (`ops::compare` says so), and a month's reads never are.
    ck.slots.agg_read(slot);
    let ir = match month {
        Some(m) => Ir::AggMonth { slot, bucket, last: m == Month::Last },
        None => Ir::Agg { slot, bucket, window },
    };
    Some(Checked::Val(ir, vty.unwrap_or(Ty::Int)))
}

/// `distinct(KIND.FIELD [where F], WINDOW)`: how many different values of the field the events
/// showed within the window, one slot per distinct source and window in the pack. A value's last
/// sighting is all the state keeps, so a window is a duration (not a calendar month: a value
/// seen last month and again this month would be lost to last month).
fn distinct(ck: &mut Checker, c: &Call) -> R {
    use crate::state::{MAX_DISTINCT, MAX_DISTINCT_WINDOW};
    let (args, loc) = (c.args, c.loc);
    c.arity(ck)?;
    let src = ck.source(&args[0], loc, Param::Field);
    let window = if matches!(args[1].ast, Ast::Path(_)) {
        let msg = "distinct() counts over a duration such as 1d or 7d, not a calendar month";
        ck.err(loc, Code::E015, args[1].span, msg, None);
        None
    } else {
        ck.window(&args[1], loc)
    };
    let ((kind, field, filter, _), window) = (src?, window?);
    let Some(field) = field else {
        let hint = Some(format!("e.g. {kind}.{}", if kind == Kind::Location { "cell" } else { "FIELD" }));
        return ck.err(loc, Code::E015, args[0].span, "distinct() needs the field whose values it counts", hint);
    };
    if window > MAX_DISTINCT_WINDOW {
        let max = format!("{}d", MAX_DISTINCT_WINDOW / DAY);
        let msg = format!("a distinct count's window is at most {max} (each value is kept that long)");
        return ck.err(loc, Code::E016, args[1].span, msg, None);
    }
    let key = format!("distinct|{kind}|{field:?}|{}|{window}", node_text(loc, &args[0]));
    let slot = match ck.slots.distinct_keys.get(&key) {
        Some(s) => *s,
        None if ck.slots.distinct.len() >= MAX_DISTINCT => {
            let msg = format!("a rule pack may use at most {MAX_DISTINCT} distinct counts");
            return ck.err(loc, Code::E015, c.span, msg, Some("count the same values in fewer ways".into()));
        }
        None => {
            let s = ck.slots.distinct.len() as u32;
            ck.slots.distinct.push(DistinctDef { kind, field, filter: filter.map(Cond::new), window });
            ck.slots.text.distinct.push(span_text(loc, c.span));
            ck.slots.distinct_keys.insert(key, s);
            s
        }
    };
    Some(Checked::Val(Ir::Distinct { slot, window }, Ty::Int))
}

/// A calendar-month window: `this_month` (from the 1st, local, to now) or `last_month` (the
/// whole previous month).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Month {
    This,
    Last,
}

impl Month {
    const NAMES: [&str; 2] = ["this_month", "last_month"];

    /// How long the state must keep the buckets: the previous month starts at most 62 days
    /// before now (31 August -> 1 July is 61 days and some hours).
    fn keeps(self) -> i64 {
        match self {
            Month::This => 31 * DAY,
            Month::Last => 62 * DAY,
        }
    }
}

impl Checker<'_> {
    /// A window argument that names a calendar month: `None` when it is not a name at all
    /// (a duration, checked by `window`), `Some(None)` for a bad name or a month longer than
    /// the state keeps (reported here).
    fn month(&mut self, n: &Node, loc: &Loc) -> Option<Option<Month>> {
        let Ast::Path(segs) = &n.ast else { return None };
        let word = segs.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(".");
        let m = match word.as_str() {
            "this_month" => Month::This,
            "last_month" => Month::Last,
            _ => {
                let hint = nearest(&word, Month::NAMES.iter().copied())
                    .map(|m| format!("did you mean `{m}`?"))
                    .or_else(|| Some("a window is a duration (30d) or `this_month` / `last_month`".into()));
                self.err(loc, Code::E015, n.span, format!("`{word}` is not a window"), hint);
                return Some(None);
            }
        };
        if m.keeps() > self.max_window {
            let hint = Some(format!(
                "raise `engine.max_window` in the config to {} or more (now {})",
                format_duration(m.keeps()),
                format_duration(self.max_window)
            ));
            let msg = format!(
                "`{word}` needs {} of state; the state keeps {}",
                format_duration(m.keeps()),
                format_duration(self.max_window)
            );
            self.err(loc, Code::E016, n.span, msg, hint);
            return Some(None);
        }
        Some(Some(m))
    }
}

/// `seq(STEP, STEP..., within DURATION)`: the steps in order within the time, one slot per
/// distinct sequence in the pack.
fn seq(ck: &mut Checker, c: &Call) -> R {
    let (args, loc) = (c.args, c.loc);
    let (within, steps): (Vec<&Node>, Vec<&Node>) = args.iter().partition(|a| matches!(a.ast, Ast::Within(_)));
    let [w] = within.as_slice() else {
        return c.wrong(ck);
    };
    let Ast::Within(d) = &w.ast else { return None };
    let within = ck.const_duration(d, loc, "`within`");
    if steps.len() < 2 {
        return ck.err(loc, Code::E015, c.span, "seq() needs at least two steps", None);
    }
    let mut out = Vec::new();
    for s in &steps {
        let (kind, _, filter, _) = ck.source(s, loc, Param::Events)?;
        out.push((kind, filter.map(Cond::new)));
    }
    let within = within?;
    let key = format!("seq|{}|{within}", steps.iter().map(|s| node_text(loc, s)).collect::<Vec<_>>().join("|"));
    let slot = match ck.slots.seq_keys.get(&key) {
        Some(s) => *s,
        None => {
            let s = ck.slots.seqs.len() as u32;
            ck.slots.seqs.push(SeqDef { steps: out, within });
            ck.slots.text.seqs.push(span_text(loc, c.span));
            ck.slots.seq_keys.insert(key, s);
            s
        }
    };
    Some(Checked::Val(Ir::Seq(slot), Ty::Bool))
}

/// `entered(TAGS)` / `left(TAGS)`: this event moved the subscriber into (out of) such a cell.
fn crossed(ck: &mut Checker, c: &Call) -> R {
    let name = c.f.name;
    match ck.tags_arg(c, c.args)? {
        Ok(tags) => Some(Checked::Val(if name == "entered" { Ir::Entered(tags) } else { Ir::Left(tags) }, Ty::Bool)),
        Err(_) => {
            ck.err(c.loc, Code::E015, c.span, format!("{name}() needs tag names known when the rules load"), None)
        }
    }
}

/// `visited(TAGS, WINDOW)`: the subscriber was in such a cell within the window.
fn visited(ck: &mut Checker, c: &Call) -> R {
    c.arity(ck)?;
    let w = ck.window(&c.args[1], c.loc)?;
    match ck.tags_arg(c, std::slice::from_ref(&c.args[0]))? {
        Ok(t) => Some(Checked::Val(Ir::Visited(t, w), Ty::Bool)),
        Err(_) => ck.err(c.loc, Code::E015, c.span, "visited() needs tag names known when the rules load", None),
    }
}

/// `dwell(TAGS)`: how long the subscriber has been in such a cell (tags may be named at run time).
fn dwell(ck: &mut Checker, c: &Call) -> R {
    match ck.tags_arg(c, c.args)? {
        Ok(tags) => Some(Checked::Val(Ir::Dwell(tags), Ty::Duration)),
        Err(ir) => Some(Checked::Val(Ir::DwellNamed(Box::new(ir)), Ty::Duration)),
    }
}

/// `days_until(ENTRY)`: days to a calendar entry (null, with a warning, when the reference
/// data has no such entry).
fn days_until(ck: &mut Checker, c: &Call) -> R {
    let (args, loc) = (c.args, c.loc);
    c.arity(ck)?;
    let entry = match &args[0].ast {
        Ast::Path(segs) if segs.len() == 1 => segs[0].0.clone(),
        Ast::Str(s) => s.clone(),
        _ => {
            return ck.err(loc, Code::E015, args[0].span, "days_until() takes the name of a calendar entry", None);
        }
    };
    match ck.refdata {
        Some(rd) => match rd.calendar.iter().position(|c| *c.name == *entry) {
            Some(i) => Some(Checked::Val(Ir::DaysUntil(i as u32), Ty::Int)),
            None => {
                ck.diags.push(loc.diag(Code::W103, args[0].span, format!("the calendar has no entry `{entry}`")));
                Some(Checked::Val(Ir::Null, Ty::Int))
            }
        },
        None => Some(Checked::Val(Ir::Null, Ty::Int)),
    }
}

/// `exists(VALUE)`: the value is not null.
fn exists(ck: &mut Checker, c: &Call) -> R {
    c.arity(ck)?;
    let (ir, _) = c.value(ck, 0)?;
    Some(Checked::Val(Ir::Exists(Box::new(ir)), Ty::Bool))
}

/// `min(A, B)` / `max(A, B)` of two numbers (or times) of one type.
fn min_max(ck: &mut Checker, c: &Call) -> R {
    let name = c.f.name;
    c.arity(ck)?;
    let a = c.value(ck, 0);
    let b = c.value(ck, 1);
    let ((ai, at), (bi, bt)) = (a?, b?);
    if at != bt || !matches!(at, Ty::Int | Ty::Money | Ty::Duration | Ty::Time) {
        return ck.err(
            c.loc,
            Code::E013,
            c.span,
            format!("{name}() needs two numbers of the same kind, got {} and {}", at.name(), bt.name()),
            None,
        );
    }
    let ir = if name == "min" { Ir::Min(Box::new(ai), Box::new(bi)) } else { Ir::Max(Box::new(ai), Box::new(bi)) };
    Some(Checked::Val(ir, at))
}

/// `abs(NUMBER)`.
fn abs(ck: &mut Checker, c: &Call) -> R {
    c.arity(ck)?;
    let (ir, ty) = c.value(ck, 0)?;
    if !matches!(ty, Ty::Int | Ty::Money | Ty::Duration) {
        return ck.err(c.loc, Code::E013, c.args[0].span, format!("abs() needs a number, not {}", ty.name()), None);
    }
    Some(Checked::Val(Ir::Abs(Box::new(ir)), ty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::KindSet;
    use crate::rules::diag::Diagnostic;
    use crate::rules::expr::check::{Names, Slots};
    use crate::rules::expr::syntax;
    use crate::rules::yaml;
    use std::collections::HashMap;

    /// Checks `text` as an expression of a rule on usage events: its type and the diagnostics.
    fn check(text: &str) -> (Option<Ty>, Vec<Diagnostic>) {
        check_keeping(text, 62 * crate::time::DAY)
    }

    /// As [`check`], with the state keeping `max_window`.
    fn check_keeping(text: &str, max_window: i64) -> (Option<Ty>, Vec<Diagnostic>) {
        let files = vec![("t.yaml".to_string(), text.to_string())];
        let node = yaml::Node::Scalar {
            value: text.into(),
            style: yaml_rust2::scanner::TScalarStyle::Plain,
            pos: yaml::Pos { line: 1, col: 1 },
        };
        let (lists, macros, words) = (HashMap::new(), HashMap::new(), Default::default());
        let (mut slots, mut diags) = (Slots::default(), Vec::new());
        let ast = syntax::parse(text).unwrap_or_else(|e| panic!("{text}: {}", e.message));
        let ty = {
            let mut ck = Checker::new(
                Names { files: &files, lists: &lists, macros: &macros, refdata: None, words: &words },
                &mut slots,
                &mut diags,
                max_window,
            );
            ck.scope = Scope::Rule(KindSet(Kind::Usage.bit()));
            ck.any(&ast, &Loc { file: "t.yaml", source: text, node: &node, base: 0 }).map(|(_, ty)| ty)
        };
        (ty, diags)
    }

    #[test]
    fn every_builtin_checks_its_example_to_the_type_the_table_says() {
        for f in BUILTINS {
            assert!(f.example.starts_with(&format!("{}(", f.name)), "{}: {}", f.name, f.example);
            let (ty, diags) = check(f.example);
            assert!(diags.is_empty(), "{}: {:?}", f.example, diags.iter().map(|d| &d.message).collect::<Vec<_>>());
            let want = match f.returns {
                Returns::Is(t) => t,
                // The examples sum an amount (`usage.charge_fen`) and take numbers of the type
                // of their first argument.
                Returns::Summed => Ty::Money,
                Returns::Same => {
                    let first = f.example[f.name.len() + 1..].split(',').next().unwrap_or("").trim_end_matches(')');
                    check(first).0.unwrap_or_else(|| panic!("{}: first argument `{first}`", f.name))
                }
            };
            assert_eq!(ty, Some(want), "{}", f.example);
        }
    }

    #[test]
    fn a_call_that_does_not_fit_says_what_the_table_says_it_takes() {
        for f in BUILTINS {
            let (ty, diags) = check(&format!("{}()", f.name));
            assert_eq!(ty, None, "{}", f.name);
            let [d] = diags.as_slice() else { panic!("{}: {diags:?}", f.name) };
            assert_eq!(d.code, Code::E015, "{}", f.name);
            assert_eq!(d.message, format!("{}() {}", f.name, f.takes));
            assert_eq!(d.hint, f.usage_hint(), "{}", f.name);
            // One argument more than the parameters is refused too (E015 or a wrong argument).
            let args: Vec<&str> = f.params.iter().map(|_| "1").chain(["1"]).collect();
            let (ty, diags) = check(&format!("{}({})", f.name, args.join(", ")));
            assert!(ty.is_none() && diags.iter().any(Diagnostic::is_error), "{}: {diags:?}", f.name);
        }
    }

    #[test]
    fn calendar_month_windows_check_and_their_misuse_is_located() {
        let (ty, d) = check("count(usage where scope == long_distance, last_month)");
        assert_eq!((ty, d.len()), (Some(Ty::Int), 0), "{d:?}");
        let (ty, d) = check("sum(usage.charge_fen, this_month)");
        assert_eq!((ty, d.len()), (Some(Ty::Money), 0), "{d:?}");
        let (ty, d) = check("count(usage, lastmonth)");
        assert_eq!(ty, None);
        assert_eq!((d[0].code, d[0].hint.as_deref()), (Code::E015, Some("did you mean `last_month`?")));
        assert_eq!(d[0].message, "`lastmonth` is not a window");
        let (ty, d) = check_keeping("count(usage, last_month) >= 3", 40 * DAY);
        assert_eq!((ty, d[0].code, d[0].line, d[0].col), (None, Code::E016, 1, 14));
        assert_eq!(d[0].message, "`last_month` needs 62d of state; the state keeps 40d");
        assert_eq!(check_keeping("count(usage, this_month)", 40 * DAY).1.len(), 0);
        let (_, d) = check("count(usage, fortnight)");
        assert_eq!(d[0].hint.as_deref(), Some("a window is a duration (30d) or `this_month` / `last_month`"));
    }

    #[test]
    fn distinct_counts_check_and_their_misuse_is_located() {
        let (ty, d) = check("distinct(usage.peer where service == voice, 7d) >= 20");
        assert_eq!((ty, d.len()), (Some(Ty::Bool), 0), "{d:?}");
        assert_eq!(check("distinct(usage.service, 30d)").0, Some(Ty::Int), "an enumerated field");
        let (ty, d) = check("distinct(location, 1d)");
        assert_eq!((ty, d[0].code, d[0].col), (None, Code::E015, 10));
        assert_eq!(d[0].message, "distinct() needs the field whose values it counts");
        assert_eq!(d[0].hint.as_deref(), Some("e.g. location.cell"));
        let (_, d) = check("distinct(location.cel, 1d)");
        assert_eq!((d[0].code, d[0].col), (Code::E011, 19));
        assert_eq!(d[0].message, "location events have no field `cel` to count the values of");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `location.cell`?"));
        let (_, d) = check("distinct(topup.attrs, 1d)");
        assert!(d[0].hint.as_deref().is_some_and(|h| h.starts_with("topup fields: ")), "{d:?}");
        let (_, d) = check("distinct(location.cell, 40d)");
        assert_eq!((d[0].code, d[0].col), (Code::E016, 25));
        assert_eq!(d[0].message, "a distinct count's window is at most 35d (each value is kept that long)");
        let (_, d) = check_keeping("distinct(location.cell, 7d)", DAY);
        assert_eq!((d[0].code, d[0].col), (Code::E016, 25), "longer than the state keeps");
        let (_, d) = check("distinct(location.cell, this_month)");
        assert_eq!((d[0].code, d[0].col), (Code::E015, 25));
        // One slot per source and window: the 65th different one is refused where it is.
        let calls: Vec<String> = (1..=65).map(|m| format!("distinct(location.cell, {m}m) > 0")).collect();
        let text = calls.join(" or ");
        let (ty, d) = check(&text);
        assert_eq!((ty, d.len(), d[0].code), (None, 1, Code::E015), "{d:?}");
        assert_eq!(d[0].message, "a rule pack may use at most 64 distinct counts");
        assert_eq!(d[0].col, text.rfind("distinct").map(|i| i + 1).unwrap_or(0));
        assert_eq!(check(&calls[..2].join(" or ").replace("2m", "1m")).1.len(), 0, "the same count twice");
    }

    #[test]
    fn an_unknown_function_gets_the_nearest_builtin_or_the_whole_list() {
        let (_, d) = check("counts(usage, 30d)");
        assert_eq!((d[0].code, d[0].hint.as_deref()), (Code::E015, Some("did you mean `count`?")));
        let (_, d) = check("frobnicate(1)");
        let all = format!("functions: {}", names().collect::<Vec<_>>().join(", "));
        assert_eq!(d[0].hint.as_deref(), Some(all.as_str()));
        assert!(all.contains("days_until") && all.starts_with("functions: count, sum, distinct, seq"), "{all}");
        let (_, d) = check("dwel > 1h");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `dwell`?"), "a bare word near a function name");
    }
}
