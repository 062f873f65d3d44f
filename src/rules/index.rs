//! Which rules an event can possibly match, without evaluating them.
//!
//! Each event kind has one discriminating field (crm: the business event name; usage: the
//! service; ivr: the step; location: the trigger; topup: the channel). A rule whose condition
//! requires a value of that field (`event.event == complaint_closed`, `event.service == voice`,
//! `event.step in (menu, agent)`) is filed under those values; the others are always visited.
//! So a pack of a thousand CRM rules costs one lookup and the few rules of that event, not a
//! thousand evaluations.

use super::expr::schema::Field;
use super::expr::{CmpOp, Ir};
use crate::event::{Body, Event, Kind};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct KindIndex {
    /// Rules to visit for every event of the kind (in pack order).
    pub always: Vec<u32>,
    /// Rules by the discriminating enumerated value (usage, ivr, location, topup).
    pub by_symbol: Vec<Vec<u32>>,
    /// Rules by CRM business event name.
    pub by_name: HashMap<Box<str>, Vec<u32>, foldhash::fast::FixedState>,
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
    /// Files rule `ri` (listening to `kind` only when `single`) under its guard, if any.
    pub fn add(&mut self, kind: Kind, ri: u32, condition: &Ir, single: bool) {
        let g = if single { discriminator(kind).and_then(|f| guard(f, condition)) } else { None };
        match g {
            Some(Guard::Symbols(mask)) => {
                for v in 0..64 {
                    if mask & (1 << v) != 0 {
                        if self.by_symbol.len() <= v {
                            self.by_symbol.resize_with(v + 1, Vec::new);
                        }
                        self.by_symbol[v].push(ri);
                    }
                }
            }
            Some(Guard::Names(names)) => {
                for n in names {
                    self.by_name.entry(n).or_default().push(ri);
                }
            }
            None => self.always.push(ri),
        }
    }

    /// The rules to visit for `ev`, in pack order.
    pub fn visit(&self, ev: &Event, mut f: impl FnMut(u32)) {
        let guarded: &[u32] = match &ev.body {
            Body::Usage(u) => self.by_symbol.get(u.service as usize).map_or(&[], Vec::as_slice),
            Body::Topup(t) => self.by_symbol.get(t.channel as usize).map_or(&[], Vec::as_slice),
            Body::Ivr(i) => self.by_symbol.get(i.step as usize).map_or(&[], Vec::as_slice),
            Body::Location(l) => self.by_symbol.get(l.trigger as usize).map_or(&[], Vec::as_slice),
            Body::Crm(c) => self.by_name.get(&*c.event).map_or(&[], Vec::as_slice),
            Body::Outcome(o) => self.by_symbol.get(o.status as usize).map_or(&[], Vec::as_slice),
            Body::Profile(_) => &[],
        };
        // Merge the two ascending lists so rules run in pack order.
        let (mut a, mut b) = (self.always.iter().peekable(), guarded.iter().peekable());
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

    /// Every rule filed here (for explain and tests).
    pub fn len(&self) -> usize {
        self.always.len()
            + self.by_symbol.iter().map(Vec::len).sum::<usize>()
            + self.by_name.values().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
