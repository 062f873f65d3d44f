//! What a timer keeps from the moment it was armed (`armed.PATH` in its `cancel_if` and
//! `recheck`): one value for each path they read, by name, so a reload that changes which paths
//! a rule reads still finds those it kept (a path it did not keep reads as null). How a value
//! is read into one and back is the rules' (`rules::expr::kept`).

use crate::codec::{Bad, Dec, Enc};
use std::sync::Arc;

/// One kept value: the path it was read from (`event.attrs.amount_fen`) and what it read.
#[derive(Clone, Debug, PartialEq)]
pub struct Kept {
    pub path: Arc<str>,
    pub value: KeptVal,
}

/// A value as a condition read it, owned: strings copied, CRM's JSON kept as JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum KeptVal {
    Null,
    Bool(bool),
    Int(i64),
    Str(Box<str>),
    /// An enumerated value: its variant's index (as `Value::Sym`).
    Sym(u8),
    Json(Box<serde_json::Value>),
}

/// A timer's kept values: 8 bytes in every timer, most of which keep nothing.
#[derive(Clone, Debug, Default, PartialEq)]
#[allow(clippy::box_collection)] // 8 bytes when empty, where a boxed slice is 16
pub struct KeptValues(Option<Box<Vec<Kept>>>);

impl std::ops::Deref for KeptValues {
    type Target = [Kept];

    fn deref(&self) -> &[Kept] {
        self.0.as_deref().map_or(&[], |v| &v[..])
    }
}

impl FromIterator<Kept> for KeptValues {
    fn from_iter<I: IntoIterator<Item = Kept>>(iter: I) -> KeptValues {
        let v: Vec<Kept> = iter.into_iter().collect();
        KeptValues((!v.is_empty()).then(|| Box::new(v)))
    }
}

pub(super) fn encode(kept: &[Kept], e: &mut Enc) {
    e.u32(kept.len() as u32);
    for k in kept {
        e.str(&k.path);
        match &k.value {
            KeptVal::Null => e.u8(0),
            KeptVal::Bool(b) => {
                e.u8(1);
                e.bool(*b);
            }
            KeptVal::Int(n) => {
                e.u8(2);
                e.i64(*n);
            }
            KeptVal::Str(s) => {
                e.u8(3);
                e.str(s);
            }
            KeptVal::Sym(s) => {
                e.u8(4);
                e.u8(*s);
            }
            KeptVal::Json(j) => {
                e.u8(5);
                e.str(&j.to_string());
            }
        }
    }
}

pub(super) fn decode(d: &mut Dec) -> Result<KeptValues, Bad> {
    let n = d.len(6)?;
    let mut kept = Vec::with_capacity(n);
    for _ in 0..n {
        let path: Arc<str> = d.str()?.into();
        let value = match d.u8()? {
            0 => KeptVal::Null,
            1 => KeptVal::Bool(d.bool()?),
            2 => KeptVal::Int(d.i64()?),
            3 => KeptVal::Str(d.str()?.into()),
            4 => KeptVal::Sym(d.u8()?),
            5 => {
                let text = d.str()?;
                let j = serde_json::from_str(text).map_err(|e| Bad(format!("a timer's kept JSON value: {e}")))?;
                KeptVal::Json(Box::new(j))
            }
            t => return Err(Bad(format!("a timer's kept value of unknown type {t}"))),
        };
        kept.push(Kept { path, value });
    }
    Ok(kept.into_iter().collect())
}
