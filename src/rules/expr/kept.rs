//! `armed.PATH` values: what a condition read when a timer was armed, kept with the timer
//! ([`crate::state::kept`]), read back by its `cancel_if` and `recheck`, and shown by explain.

use super::Value;
use super::schema::{Ty, lookup};
use crate::state::kept::{Kept, KeptVal};
use std::borrow::Cow;

/// The value a condition read, kept. Lists and tag sets are not kept (the checker refuses
/// `armed.` of them): they read as null.
pub fn keep(v: Value) -> KeptVal {
    match v {
        Value::Null | Value::List(..) | Value::Tags(_) => KeptVal::Null,
        Value::Bool(b) => KeptVal::Bool(b),
        Value::Int(n) => KeptVal::Int(n),
        Value::Str(s) => KeptVal::Str(s.into()),
        Value::Sym(s) => KeptVal::Sym(s),
        Value::Json(j) => KeptVal::Json(Box::new(j.clone())),
    }
}

/// The value `path` had when the timer was armed; null when it kept none by that name.
pub fn read<'a>(kept: &'a [Kept], path: &str) -> Value<'a> {
    let Some(k) = kept.iter().find(|k| &*k.path == path) else { return Value::Null };
    match &k.value {
        KeptVal::Null => Value::Null,
        KeptVal::Bool(b) => Value::Bool(*b),
        KeptVal::Int(n) => Value::Int(*n),
        KeptVal::Str(s) => Value::Str(Cow::Borrowed(s)),
        KeptVal::Sym(s) => Value::Sym(*s),
        KeptVal::Json(j) => Value::Json(j),
    }
}

/// A kept value as JSON, for explain: an enumerated value of a schema field as its word.
pub fn to_json(k: &Kept) -> serde_json::Value {
    match &k.value {
        KeptVal::Null => serde_json::Value::Null,
        KeptVal::Bool(b) => serde_json::json!(b),
        KeptVal::Int(n) => serde_json::json!(n),
        KeptVal::Str(s) => serde_json::json!(s),
        KeptVal::Sym(i) => match lookup(&k.path) {
            Some((Ty::Sym(t), ..)) => {
                t.names().get(usize::from(*i)).map_or(serde_json::json!(i), |n| serde_json::json!(n))
            }
            _ => serde_json::json!(i),
        },
        KeptVal::Json(j) => (**j).clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Kept, KeptVal, keep, read, to_json};
    use crate::rules::expr::Value;
    use std::borrow::Cow;

    #[test]
    fn a_kept_value_reads_back_as_it_was_read_and_shows_enumerated_values_as_words() {
        let attrs = serde_json::json!({"amount_fen": 5000});
        let read_then = [
            ("event.attrs.amount_fen", Value::Json(&attrs["amount_fen"])),
            ("state.balance", Value::Int(-250)),
            ("event.attrs.kind", Value::Str(Cow::Borrowed("bill"))),
            ("reachable", Value::Bool(true)),
            ("event.channel", Value::Sym(1)),
            ("event.attrs.note", Value::Null),
        ];
        let kept: Vec<Kept> =
            read_then.iter().map(|(p, v)| Kept { path: (*p).into(), value: keep(v.clone()) }).collect();
        for (p, v) in &read_then {
            assert_eq!(read(&kept, p), *v, "{p}");
        }
        assert_eq!(read(&kept, "event.attrs.other"), Value::Null, "not kept: null");
        let channel = &kept[4];
        assert_eq!(channel.value, KeptVal::Sym(1));
        let word = crate::rules::expr::schema::SymTy::TopupChannel.names()[1];
        assert_eq!(to_json(channel), serde_json::json!(word));
        assert_eq!(to_json(&kept[0]), serde_json::json!(5000));
    }
}
