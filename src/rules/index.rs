//! Which rules an event can possibly match, without evaluating them.
//!
//! Each event kind has one discriminating field (crm: the business event name; usage: the
//! service; ivr: the step; location: the trigger; topup: the channel; outcome: the status;
//! reply: the service number it was sent to). A rule whose condition requires a value of that
//! field (`event.event == complaint_closed`, `event.service == voice`, `event.step in (menu,
//! agent)`, `event.to == "10658888"`) is filed under those values; the others are always visited.
//! So a pack of a thousand CRM rules costs one lookup and the few rules of that event, not a
//! thousand evaluations.

use super::expr::schema::Field;
use super::expr::{CmpOp, Ir, Value};
use crate::event::{Body, Event, Kind};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct KindIndex {
    /// Rules to visit for every event of the kind.
    pub always: Bucket,
    /// Rules by the discriminating enumerated value (usage, ivr, location, topup).
    pub by_symbol: Vec<Bucket>,
    /// Rules by name: the CRM business event, the service number a reply went to.
    pub by_name: HashMap<Box<str>, Bucket, foldhash::fast::FixedState>,
}

/// The rules filed under one value of the discriminator (or under none), split once more by a
/// second requirement on the event: a lower bound on a number (`event.charge_fen > 1000 CNY`)
/// or a string value (`event.node == "9-1"`). A thousand rules that differ only in their
/// threshold or menu node cost a binary search or a lookup, not a thousand evaluations.
#[derive(Debug, Default)]
pub struct Bucket {
    /// Visited whenever the bucket is.
    plain: Vec<u32>,
    /// By field: (least value, rule) sorted by the value; a rule is visited when the event's
    /// value reaches its least one.
    at_least: Vec<(Field, Vec<(i64, u32)>)>,
    /// By field: rules by the string value they require.
    equal: Vec<(Field, ByValue)>,
}

/// A second requirement of a condition on an event field.
#[derive(Clone)]
enum Second {
    AtLeast(Field, i64),
    Equal(Field, Vec<Box<str>>),
}

/// A top-level `and` term that bounds an event field from below or fixes its string value.
fn second(exclude: Option<Field>, ir: &Ir) -> Option<Second> {
    let event_field = |f: &Field| Some(*f) != exclude && f.is_event_field();
    match ir {
        Ir::And(parts) => parts.iter().find_map(|p| second(exclude, p)),
        Ir::Cmp(op, a, b) => match (op, &**a, &**b) {
            (CmpOp::Gt, Ir::Field(f), Ir::Int(c)) | (CmpOp::Lt, Ir::Int(c), Ir::Field(f)) if event_field(f) => {
                Some(Second::AtLeast(*f, c.saturating_add(1)))
            }
            (CmpOp::Ge, Ir::Field(f), Ir::Int(c)) | (CmpOp::Le, Ir::Int(c), Ir::Field(f)) if event_field(f) => {
                Some(Second::AtLeast(*f, *c))
            }
            (CmpOp::Eq, Ir::Field(f), Ir::Str(v)) | (CmpOp::Eq, Ir::Str(v), Ir::Field(f)) if event_field(f) => {
                Some(Second::Equal(*f, vec![v.clone()]))
            }
            _ => None,
        },
        Ir::StrIn(x, items) => match &**x {
            Ir::Field(f) if event_field(f) => Some(Second::Equal(*f, items.to_vec())),
            _ => None,
        },
        _ => None,
    }
}

/// The entry of field `f` in a list by field, added empty when missing.
fn of_field<T: Default>(by_field: &mut Vec<(Field, T)>, f: Field) -> &mut T {
    let i = match by_field.iter().position(|(g, _)| *g == f) {
        Some(i) => i,
        None => {
            by_field.push((f, T::default()));
            by_field.len() - 1
        }
    };
    &mut by_field[i].1
}

/// Rules by the string value they require.
type ByValue = HashMap<Box<str>, Vec<u32>, foldhash::fast::FixedState>;

impl Bucket {
    fn add(&mut self, ri: u32, second: Option<Second>) {
        match second {
            Some(Second::AtLeast(f, min)) => {
                let list = of_field(&mut self.at_least, f);
                let at = list.partition_point(|&(m, _)| m <= min);
                list.insert(at, (min, ri));
            }
            Some(Second::Equal(f, values)) => {
                let map = of_field(&mut self.equal, f);
                for v in values {
                    let rules = map.entry(v).or_default();
                    if rules.last() != Some(&ri) {
                        rules.push(ri);
                    }
                }
            }
            None => self.plain.push(ri),
        }
    }

    /// Appends the rules `ev` may match.
    fn collect(&self, ev: &Event, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.plain);
        for (f, list) in &self.at_least {
            if let Value::Int(v) = f.read_event(Some(ev)) {
                let n = list.partition_point(|&(min, _)| min <= v);
                out.extend(list[..n].iter().map(|&(_, ri)| ri));
            }
        }
        for (f, map) in &self.equal {
            if let Value::Str(v) = f.read_event(Some(ev)) {
                if let Some(rules) = map.get(&*v) {
                    out.extend_from_slice(rules);
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.plain.len()
            + self.at_least.iter().map(|(_, l)| l.len()).sum::<usize>()
            + self.equal.iter().flat_map(|(_, m)| m.values()).map(Vec::len).sum::<usize>()
    }
}

enum Guard {
    Symbols(u64),
    Names(Vec<Box<str>>),
}

/// The discriminating field of each kind (profile events have none).
fn discriminator(kind: Kind) -> Option<Field> {
    Some(match kind {
        Kind::Usage => Field::Service,
        Kind::Topup => Field::TopupChannel,
        Kind::Ivr => Field::Step,
        Kind::Location => Field::Trigger,
        Kind::Crm => Field::CrmEvent,
        Kind::Outcome => Field::OutStatus,
        Kind::Reply => Field::ReplyTo,
        Kind::Profile => return None,
    })
}

/// A requirement on the kind's discriminator that the whole condition implies.
fn guard(field: Field, ir: &Ir) -> Option<Guard> {
    match ir {
        Ir::And(parts) => parts.iter().find_map(|p| guard(field, p)),
        Ir::Cmp(CmpOp::Eq, a, b) => match (&**a, &**b) {
            (Ir::Field(f), Ir::Sym(v)) | (Ir::Sym(v), Ir::Field(f)) if *f == field => Some(Guard::Symbols(1 << v)),
            (Ir::Field(f), Ir::Str(s)) | (Ir::Str(s), Ir::Field(f)) if *f == field => {
                Some(Guard::Names(vec![s.clone()]))
            }
            _ => None,
        },
        Ir::SymIn(x, mask) if matches!(&**x, Ir::Field(f) if *f == field) => Some(Guard::Symbols(*mask)),
        Ir::StrIn(x, items) if matches!(&**x, Ir::Field(f) if *f == field) => Some(Guard::Names(items.to_vec())),
        _ => None,
    }
}

impl KindIndex {
    /// Files rule `ri` (listening to `kind` only when `single`) under its guards, if any.
    pub fn add(&mut self, kind: Kind, ri: u32, condition: &Ir, single: bool) {
        let field = if single { discriminator(kind) } else { None };
        let g = field.and_then(|f| guard(f, condition));
        // A rule listening to several kinds reads fields some of them lack: no second guard.
        let second = if single { second(field, condition) } else { None };
        match g {
            Some(Guard::Symbols(mask)) => {
                for v in 0..64 {
                    if mask & (1 << v) != 0 {
                        if self.by_symbol.len() <= v {
                            self.by_symbol.resize_with(v + 1, Bucket::default);
                        }
                        self.by_symbol[v].add(ri, second.clone());
                    }
                }
            }
            Some(Guard::Names(names)) => {
                for n in names {
                    self.by_name.entry(n).or_default().add(ri, second.clone());
                }
            }
            None => self.always.add(ri, second),
        }
    }

    /// The rules to visit for `ev`, in pack order (`scratch` is reused between events).
    pub fn visit(&self, ev: &Event, scratch: &mut Vec<u32>, mut f: impl FnMut(u32)) {
        let guarded = match &ev.body {
            Body::Usage(u) => self.by_symbol.get(u.service as usize),
            Body::Topup(t) => self.by_symbol.get(t.channel as usize),
            Body::Ivr(i) => self.by_symbol.get(i.step as usize),
            Body::Location(l) => self.by_symbol.get(l.trigger as usize),
            Body::Crm(c) => self.by_name.get(&*c.event),
            Body::Outcome(o) => self.by_symbol.get(o.status as usize),
            Body::Reply(r) => self.by_name.get(&*r.to),
            Body::Profile(_) => None,
        };
        let plain = |b: &Bucket| b.at_least.is_empty() && b.equal.is_empty();
        if plain(&self.always) && guarded.is_none_or(plain) {
            // Two lists, each in pack order: merge them.
            let (mut a, mut b) =
                (self.always.plain.iter().peekable(), guarded.map_or(&[][..], |g| &g.plain).iter().peekable());
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) if x <= y => a.next(),
                    (Some(_), Some(_)) => b.next(),
                    (Some(_), None) => a.next(),
                    (None, Some(_)) => b.next(),
                    (None, None) => return,
                };
                if let Some(ri) = next {
                    f(*ri);
                }
            }
        }
        scratch.clear();
        self.always.collect(ev, scratch);
        if let Some(b) = guarded {
            b.collect(ev, scratch);
        }
        scratch.sort_unstable();
        scratch.dedup();
        scratch.iter().for_each(|ri| f(*ri));
    }

    /// Every rule filed here (for explain and tests).
    pub fn len(&self) -> usize {
        self.always.len()
            + self.by_symbol.iter().map(Bucket::len).sum::<usize>()
            + self.by_name.values().map(Bucket::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
