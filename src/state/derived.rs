//! A subscriber's derived attributes (`derive:` items, `rules::derive`): each value with the
//! period it was computed in, so that a snapshot holds until the period ends. A pack's daily
//! derives give every subscriber values, so they are kept compact: 16 bytes each, in a thin
//! slice inline in the state (no allocation for a subscriber who has none).

use crate::codec::{Bad, Dec, Enc};

/// A derived value, typed as its `derive:` item says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DVal {
    Int(i64),
    Bool(bool),
    /// An enumerated value (a tier, a channel) by its index.
    Sym(u8),
}

/// One derived attribute of a subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Derived {
    value: i64,
    /// The period (see `rules::derive::Period::index`) it was computed in.
    pub period: i32,
    /// Index of its `derive:` item in the rule set.
    pub slot: u16,
    /// 0 a number, 1 true/false, 2 an enumerated value.
    kind: u8,
}

impl Derived {
    /// The slot of room kept for a value not computed yet (always after the values).
    pub(super) const FREE: u16 = u16::MAX;

    /// Room for a value not computed yet.
    pub(super) const fn free() -> Derived {
        Derived { value: 0, period: 0, slot: Derived::FREE, kind: 0 }
    }

    pub fn new(slot: u16, value: DVal, period: i32) -> Derived {
        let (value, kind) = match value {
            DVal::Int(n) => (n, 0),
            DVal::Bool(b) => (i64::from(b), 1),
            DVal::Sym(s) => (i64::from(s), 2),
        };
        Derived { value, period, slot, kind }
    }

    pub fn value(&self) -> DVal {
        match self.kind {
            1 => DVal::Bool(self.value != 0),
            2 => DVal::Sym(self.value as u8),
            _ => DVal::Int(self.value),
        }
    }

    pub(super) fn encode(&self, e: &mut Enc) {
        e.u32(u32::from(self.slot));
        e.u8(self.kind);
        e.i64(self.value);
        e.i64(i64::from(self.period));
    }

    pub(super) fn decode(d: &mut Dec) -> Result<Derived, Bad> {
        let slot = u16::try_from(d.u32()?).map_err(|_| Bad("a derived slot out of range".into()))?;
        let kind = d.u8()?;
        if kind > 2 {
            return Err(Bad(format!("unknown derived value kind {kind}")));
        }
        let value = d.i64()?;
        let period = i32::try_from(d.i64()?).map_err(|_| Bad("a derived period out of range".into()))?;
        Ok(Derived { value, period, slot, kind })
    }
}

#[cfg(test)]
#[test]
fn a_derived_value_is_sixteen_bytes() {
    assert_eq!(std::mem::size_of::<Derived>(), 16);
}
