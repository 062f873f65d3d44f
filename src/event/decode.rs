//! JSON Lines -> [`Event`]. One flat wire struct with every field optional, then a check per
//! kind: that gives precise "missing field" reasons and keeps serde's work to one pass.

use super::*;
use crate::event::{DeadLetter, DeadReason};
use crate::refdata::{ProfileChange, ProfileField};
use crate::util::{Msisdn, parse_ts, stable_hash};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Lines longer than this are dead letters (`too_long`) without being parsed.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ts: Option<Cow<'a, str>>,
    msisdn: Option<MsisdnWire<'a>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    // usage
    #[serde(borrow)]
    service: Option<Cow<'a, str>>,
    #[serde(borrow)]
    direction: Option<Cow<'a, str>>,
    #[serde(borrow)]
    scope: Option<Cow<'a, str>>,
    #[serde(borrow)]
    peer: Option<Cow<'a, str>>,
    duration_s: Option<i64>,
    volume_kb: Option<i64>,
    count: Option<i64>,
    charge_fen: Option<i64>,
    balance_fen: Option<i64>,
    #[serde(borrow)]
    cell: Option<Cow<'a, str>>,
    #[serde(borrow)]
    via: Option<Cow<'a, str>>,
    // topup
    amount_fen: Option<i64>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    store: Option<Cow<'a, str>>,
    // ivr
    #[serde(borrow)]
    session: Option<Cow<'a, str>>,
    #[serde(borrow)]
    step: Option<Cow<'a, str>>,
    #[serde(borrow)]
    node: Option<Cow<'a, str>>,
    #[serde(borrow)]
    hotline: Option<Cow<'a, str>>,
    // location
    #[serde(borrow)]
    trigger: Option<Cow<'a, str>>,
    #[serde(borrow)]
    country: Option<Cow<'a, str>>,
    // crm
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    attrs: Option<Map<String, Value>>,
    // profile
    set: Option<Map<String, Value>>,
    unset: Option<Vec<String>>,
    add: Option<Map<String, Value>>,
    remove: Option<Map<String, Value>>,
}

/// `msisdn` as a string, or (leniently) as a JSON integer.
enum MsisdnWire<'a> {
    Text(Cow<'a, str>),
    Number(u64),
}

impl<'de: 'a, 'a> Deserialize<'de> for MsisdnWire<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MsisdnWire<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a subscriber number")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MsisdnWire::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MsisdnWire::Text(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(MsisdnWire::Number(v))
            }
        }
        d.deserialize_any(V)
    }
}

struct Reject(DeadReason, String);

fn missing(field: &str, kind: Kind) -> Reject {
    Reject(DeadReason::MissingField, format!("missing field `{field}` for kind `{kind}`"))
}

fn required<T>(v: Option<T>, field: &str, kind: Kind) -> Result<T, Reject> {
    v.ok_or_else(|| missing(field, kind))
}

fn symbol<T>(
    v: Option<Cow<str>>,
    field: &str,
    kind: Kind,
    parse: fn(&str) -> Option<T>,
    names: &[&str],
) -> Result<T, Reject> {
    let s = required(v, field, kind)?;
    parse(&s).ok_or_else(|| {
        Reject(DeadReason::BadField, format!("`{field}`: unknown value `{s}` (one of: {})", names.join(", ")))
    })
}

fn non_negative(v: Option<i64>, field: &str) -> Result<i64, Reject> {
    match v {
        Some(n) if n < 0 => Err(Reject(DeadReason::BadField, format!("`{field}` must not be negative, got {n}"))),
        Some(n) => Ok(n),
        None => Ok(0),
    }
}

fn boxed(v: Option<Cow<str>>) -> Option<Box<str>> {
    v.map(|s| s.into_owned().into_boxed_str())
}

/// Decodes lines from one source; counts and keeps nothing itself.
#[derive(Debug, Clone)]
pub struct Decoder {
    pub max_line: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { max_line: MAX_LINE_BYTES }
    }
}

impl Decoder {
    /// Decodes one line (without its newline). `source` and `line` only label dead letters.
    /// `None` for a blank line.
    pub fn decode(&self, raw: &[u8], source: &str, line: u64) -> Option<Result<Event, DeadLetter>> {
        let trimmed = raw.trim_ascii();
        if trimmed.is_empty() {
            return None;
        }
        let dead = |r: DeadReason, d: String| DeadLetter::new(r, d, source, line, raw);
        if raw.len() > self.max_line {
            return Some(Err(dead(
                DeadReason::TooLong,
                format!("line of {} bytes exceeds the limit of {}", raw.len(), self.max_line),
            )));
        }
        let text = match std::str::from_utf8(trimmed) {
            Ok(t) => t,
            Err(e) => {
                return Some(Err(dead(DeadReason::BadUtf8, format!("invalid UTF-8 at byte {}", e.valid_up_to()))));
            }
        };
        Some(decode_text(text).map_err(|Reject(r, d)| dead(r, d)))
    }
}

fn decode_text(text: &str) -> Result<Event, Reject> {
    let w: Wire = serde_json::from_str(text).map_err(|e| {
        let reason = match e.classify() {
            serde_json::error::Category::Data => DeadReason::BadField,
            _ => DeadReason::BadJson,
        };
        // A JSON value that is not an object is "bad JSON" for a JSON Lines event stream.
        let reason =
            if reason == DeadReason::BadField && !text.starts_with('{') { DeadReason::BadJson } else { reason };
        Reject(reason, e.to_string())
    })?;
    let kind_text = w.kind.as_deref().ok_or_else(|| Reject(DeadReason::UnknownKind, "missing field `kind`".into()))?;
    let kind = Kind::parse(kind_text).ok_or_else(|| {
        Reject(DeadReason::UnknownKind, format!("unknown kind `{kind_text}` (one of: {})", Kind::NAMES.join(", ")))
    })?;
    let msisdn = match required(w.msisdn, "msisdn", kind)? {
        MsisdnWire::Text(s) => Msisdn::parse(&s),
        MsisdnWire::Number(n) => Msisdn::parse(&n.to_string()),
    }
    .ok_or_else(|| Reject(DeadReason::BadMsisdn, "`msisdn` must be 5 to 15 digits".into()))?;
    let ts_text = required(w.ts, "ts", kind)?;
    let ts = parse_ts(&ts_text).map_err(|e| Reject(DeadReason::BadTs, e))?;
    let id: Box<str> = match w.id {
        Some(id) if !id.is_empty() => id.into_owned().into_boxed_str(),
        _ => format!("h{:016x}", stable_hash(text.as_bytes())).into_boxed_str(),
    };
    let body = match kind {
        Kind::Usage => Body::Usage(Usage {
            service: symbol(w.service, "service", kind, Service::parse, Service::NAMES)?,
            direction: symbol(w.direction, "direction", kind, Direction::parse, Direction::NAMES)?,
            scope: symbol(w.scope, "scope", kind, Scope::parse, Scope::NAMES)?,
            peer: boxed(w.peer),
            duration_s: non_negative(w.duration_s, "duration_s")?,
            volume_kb: non_negative(w.volume_kb, "volume_kb")?,
            count: non_negative(w.count, "count")?,
            charge_fen: non_negative(w.charge_fen, "charge_fen")?,
            balance_fen: w.balance_fen,
            cell: boxed(w.cell),
            via: boxed(w.via),
        }),
        Kind::Topup => Body::Topup(Topup {
            amount_fen: non_negative(Some(required(w.amount_fen, "amount_fen", kind)?), "amount_fen")?,
            balance_fen: w.balance_fen,
            channel: symbol(w.channel, "channel", kind, TopupChannel::parse, TopupChannel::NAMES)?,
            store: boxed(w.store),
        }),
        Kind::Ivr => Body::Ivr(Ivr {
            session: boxed(Some(required(w.session, "session", kind)?)).unwrap_or_default(),
            step: symbol(w.step, "step", kind, IvrStep::parse, IvrStep::NAMES)?,
            node: boxed(w.node),
            hotline: boxed(w.hotline).unwrap_or_else(|| "10086".into()),
        }),
        Kind::Location => Body::Location(Location {
            cell: boxed(Some(required(w.cell, "cell", kind)?)).unwrap_or_default(),
            trigger: symbol(w.trigger, "trigger", kind, LocTrigger::parse, LocTrigger::NAMES)?,
            country: boxed(w.country),
        }),
        Kind::Crm => Body::Crm(Crm {
            event: boxed(Some(required(w.event, "event", kind)?)).unwrap_or_default(),
            attrs: w.attrs.unwrap_or_default(),
        }),
        Kind::Profile => {
            let mut set = Vec::new();
            let bad = |e: String| Reject(DeadReason::BadField, e);
            for (k, v) in w.set.iter().flatten() {
                set.push(ProfileChange::from_json(k, v).map_err(bad)?);
            }
            for (k, v) in w.add.iter().flatten() {
                set.push(ProfileChange::list_delta(k, v, true).map_err(bad)?);
            }
            for (k, v) in w.remove.iter().flatten() {
                set.push(ProfileChange::list_delta(k, v, false).map_err(bad)?);
            }
            let mut unset = Vec::new();
            for f in w.unset.iter().flatten() {
                unset.push(ProfileField::parse(f).ok_or_else(|| bad(format!("unset: unknown profile field `{f}`")))?);
            }
            if set.is_empty() && unset.is_empty() {
                return Err(missing("set", kind));
            }
            Body::Profile(Profile { set, unset })
        }
    };
    Ok(Event { ts, msisdn, id, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<Event, DeadLetter> {
        Decoder::default().decode(s.as_bytes(), "t", 1).unwrap()
    }

    #[test]
    fn decodes_usage_and_ignores_unknown_fields() {
        let e = dec(r#"{"kind":"usage","ts":"2026-11-25T08:00:00+08:00","msisdn":"13800138000","service":"voice","direction":"mo","scope":"long_distance","duration_s":720,"balance_fen":850,"extra":1}"#).unwrap();
        assert_eq!(e.kind(), Kind::Usage);
        assert_eq!(e.balance_fen(), Some(850));
        assert!(e.id.starts_with('h'));
    }

    #[test]
    fn reasons_are_precise() {
        assert_eq!(dec("{not json").unwrap_err().reason, DeadReason::BadJson);
        assert_eq!(dec("[1,2]").unwrap_err().reason, DeadReason::BadJson);
        assert_eq!(dec(r#"{"kind":"boom","ts":"x","msisdn":"1"}"#).unwrap_err().reason, DeadReason::UnknownKind);
        let e = dec(r#"{"kind":"topup","ts":"2026-11-25T08:00:00+08:00","msisdn":"13800138000","channel":"card"}"#)
            .unwrap_err();
        assert_eq!(e.reason, DeadReason::MissingField);
        assert!(e.detail.contains("amount_fen"));
        assert_eq!(
            dec(r#"{"kind":"topup","ts":"2026-11-25T08:00:00+08:00","msisdn":"138","amount_fen":1,"channel":"card"}"#)
                .unwrap_err()
                .reason,
            DeadReason::BadMsisdn
        );
        assert_eq!(
            dec(r#"{"kind":"topup","ts":"yesterday","msisdn":"13800138000","amount_fen":1,"channel":"card"}"#)
                .unwrap_err()
                .reason,
            DeadReason::BadTs
        );
        assert_eq!(dec(r#"{"kind":"topup","ts":"2026-11-25T08:00:00+08:00","msisdn":"13800138000","amount_fen":"5","channel":"card"}"#).unwrap_err().reason, DeadReason::BadField);
        assert_eq!(
            dec(r#"{"kind":"profile","ts":"2026-11-25T08:00:00+08:00","msisdn":"13800138000","set":{"tire":"high"}}"#)
                .unwrap_err()
                .reason,
            DeadReason::BadField
        );
    }
}
