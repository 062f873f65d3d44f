//! JSON Lines -> [`Event`]. One flat wire struct with every field optional, then a check per
//! kind: that gives precise "missing field" reasons and keeps serde's work to one pass.

use super::*;
use crate::contact::Channel;
use crate::event::{DeadLetter, DeadReason};
use crate::refdata::{ProfileChange, ProfileField};
use crate::time::parse_ts;
use crate::util::{Msisdn, SmallStr, stable_hash};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Lines longer than this are dead letters (`too_long`) without being parsed.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Deserialize, Default)]
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
    // outcome
    #[serde(borrow)]
    action_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    rule: Option<Cow<'a, str>>,
    #[serde(borrow)]
    campaign: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detail: Option<Cow<'a, str>>,
    // reply
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(borrow)]
    gateway: Option<Cow<'a, str>>,
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

#[derive(Debug)]
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

/// The fields most events carry (ids, numbers, cell ids), short enough to keep inline.
fn small(v: Option<Cow<str>>) -> Option<SmallStr> {
    v.map(|s| SmallStr::from(&*s))
}

fn boxed(v: Option<Cow<str>>) -> Option<Box<str>> {
    v.map(|s| s.into_owned().into_boxed_str())
}

/// Decodes lines from one source; counts and keeps nothing itself.
#[derive(Debug, Clone)]
pub struct Decoder {
    pub max_line: usize,
    /// A live source's check against the host's clock: an event stamped more than this many
    /// milliseconds ahead of it is a dead letter (`future`), kept whole. `None` on a replay,
    /// which has no clock to ask: it refuses what a live run refused through `refused`.
    pub max_ahead_of_wall: Option<i64>,
    /// The lines a live run refused by its clock (its `future` dead letters, `tidings replay
    /// --refused`): refused again, so that the replay decides what the live run decided.
    pub refused: Option<std::sync::Arc<std::collections::HashSet<Box<[u8]>>>>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { max_line: MAX_LINE_BYTES, max_ahead_of_wall: None, refused: None }
    }
}

impl Decoder {
    /// Decodes one line (without its newline). `source` and `line` only label dead letters.
    /// `None` for a blank line.
    pub fn decode(&self, raw: &[u8], source: &str, line: u64) -> Option<Result<Event, DeadLetter>> {
        self.decode_sized(raw, raw.len() as u64, source, line)
    }

    /// [`Decoder::decode`] of a line whose real length is `len`: a reader cuts a line longer
    /// than the limit, and the dead letter says how long it really was.
    pub fn decode_sized(&self, raw: &[u8], len: u64, source: &str, line: u64) -> Option<Result<Event, DeadLetter>> {
        let trimmed = raw.trim_ascii();
        if trimmed.is_empty() {
            return None;
        }
        let dead = |r: DeadReason, d: String| DeadLetter::new(r, d, source, line, raw);
        let len = len.max(raw.len() as u64);
        if len > self.max_line as u64 {
            return Some(Err(dead(
                DeadReason::TooLong,
                format!("line of {len} bytes is over the {}-byte limit", self.max_line),
            )));
        }
        let text = match std::str::from_utf8(trimmed) {
            Ok(t) => t,
            Err(e) => {
                return Some(Err(dead(DeadReason::BadUtf8, format!("invalid UTF-8 at byte {}", e.valid_up_to()))));
            }
        };
        if self.refused.as_ref().is_some_and(|r| r.contains(text.as_bytes())) {
            let detail = "refused by the live run's check against the host's clock (its dead letter)";
            return Some(Err(DeadLetter::whole(DeadReason::Future, detail, source, line, trimmed)));
        }
        let ev = decode_text(text).map_err(|Reject(r, d)| dead(r, d));
        if let (Ok(e), Some(ahead)) = (&ev, self.max_ahead_of_wall) {
            let now = crate::time::wall_ms();
            if e.ts > now.saturating_add(ahead) {
                let detail = format!(
                    "ts {} is {} ahead of the host's clock ({}); the bound is {} (engine.max_ahead_of_wall)",
                    crate::time::format_ts(e.ts, chrono::FixedOffset::east_opt(0).expect("UTC")),
                    crate::time::format_span(e.ts.saturating_sub(now)),
                    crate::time::format_ts(now, chrono::FixedOffset::east_opt(0).expect("UTC")),
                    crate::time::format_span(ahead),
                );
                return Some(Err(DeadLetter::whole(DeadReason::Future, detail, source, line, trimmed)));
            }
        }
        Some(ev)
    }
}

fn decode_text(text: &str) -> Result<Event, Reject> {
    // Most lines are flat objects of plain strings and integers: read those without serde.
    // Anything else — escapes, nested values, floats, duplicates, errors — takes the serde path,
    // which has the precise messages.
    // Filled where it lies and read from there: at about a kilobyte, moving it (from the fast
    // path, then into `build`) was most of the time spent copying events.
    let mut w = Wire::default();
    if fast::wire(text, &mut w).is_none() {
        w = serde_wire(text)?;
    }
    build(&mut w, text)
}

fn serde_wire(text: &str) -> Result<Wire<'_>, Reject> {
    serde_json::from_str(text).map_err(|e| {
        let reason = match e.classify() {
            serde_json::error::Category::Data => DeadReason::BadField,
            _ => DeadReason::BadJson,
        };
        // serde stops at the first error: a field of the wrong type early in a line that is not
        // JSON further on is still bad JSON, and the syntax error is the one to report.
        if reason == DeadReason::BadField {
            if let Err(syntax) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
                return Reject(DeadReason::BadJson, syntax.to_string());
            }
        }
        // A JSON value that is not an object is "bad JSON" for a JSON Lines event stream.
        let reason =
            if reason == DeadReason::BadField && !text.starts_with('{') { DeadReason::BadJson } else { reason };
        Reject(reason, e.to_string())
    })
}

fn build(w: &mut Wire, text: &str) -> Result<Event, Reject> {
    let kind_text = w.kind.as_deref().ok_or_else(|| Reject(DeadReason::UnknownKind, "missing field `kind`".into()))?;
    let kind = Kind::parse(kind_text).ok_or_else(|| {
        Reject(DeadReason::UnknownKind, format!("unknown kind `{kind_text}` (one of: {})", Kind::NAMES.join(", ")))
    })?;
    let msisdn = match required(w.msisdn.take(), "msisdn", kind)? {
        MsisdnWire::Text(s) => Msisdn::parse(&s),
        MsisdnWire::Number(n) => Msisdn::parse(&n.to_string()),
    }
    .ok_or_else(|| Reject(DeadReason::BadMsisdn, "`msisdn` must be 5 to 15 digits".into()))?;
    let ts_text = required(w.ts.take(), "ts", kind)?;
    let ts = match crate::time::parse_ts_fast(&ts_text) {
        Some(t) => t,
        None => parse_ts(&ts_text).map_err(|e| Reject(DeadReason::BadTs, e))?,
    };
    let id = match w.id.take() {
        Some(id) if !id.is_empty() => SmallStr::from(&*id),
        _ => SmallStr::from(format!("h{:016x}", stable_hash(text.as_bytes()))),
    };
    let body = match kind {
        Kind::Usage => Body::Usage(Usage {
            service: symbol(w.service.take(), "service", kind, Service::parse, Service::NAMES)?,
            direction: symbol(w.direction.take(), "direction", kind, Direction::parse, Direction::NAMES)?,
            scope: symbol(w.scope.take(), "scope", kind, Scope::parse, Scope::NAMES)?,
            peer: small(w.peer.take()),
            duration_s: non_negative(w.duration_s, "duration_s")?,
            volume_kb: non_negative(w.volume_kb, "volume_kb")?,
            count: non_negative(w.count, "count")?,
            charge_fen: non_negative(w.charge_fen, "charge_fen")?,
            balance_fen: w.balance_fen,
            cell: small(w.cell.take()),
            via: boxed(w.via.take()),
        }),
        Kind::Topup => Body::Topup(Topup {
            amount_fen: non_negative(Some(required(w.amount_fen, "amount_fen", kind)?), "amount_fen")?,
            balance_fen: w.balance_fen,
            channel: symbol(w.channel.take(), "channel", kind, TopupChannel::parse, TopupChannel::NAMES)?,
            store: small(w.store.take()),
        }),
        Kind::Ivr => Body::Ivr(Ivr {
            session: SmallStr::from(&*required(w.session.take(), "session", kind)?),
            step: symbol(w.step.take(), "step", kind, IvrStep::parse, IvrStep::NAMES)?,
            node: small(w.node.take()),
            hotline: small(w.hotline.take()).unwrap_or_else(|| SmallStr::from("10086")),
        }),
        Kind::Location => Body::Location(Location {
            cell: SmallStr::from(&*required(w.cell.take(), "cell", kind)?),
            trigger: symbol(w.trigger.take(), "trigger", kind, LocTrigger::parse, LocTrigger::NAMES)?,
            country: small(w.country.take()),
        }),
        Kind::Crm => Body::Crm(Crm {
            event: SmallStr::from(&*required(w.event.take(), "event", kind)?),
            attrs: w.attrs.take().unwrap_or_default(),
        }),
        Kind::Outcome => Body::Outcome(ContactOutcome {
            action_id: boxed(Some(required(w.action_id.take(), "action_id", kind)?)).unwrap_or_default(),
            channel: symbol(w.channel.take(), "channel", kind, Channel::parse, Channel::NAMES)?,
            status: symbol(w.status.take(), "status", kind, OutcomeStatus::parse, OutcomeStatus::NAMES)?,
            rule: boxed(w.rule.take()).unwrap_or_default(),
            campaign: boxed(w.campaign.take()).unwrap_or_default(),
            detail: boxed(w.detail.take()),
        }),
        Kind::Reply => {
            let text: Box<str> = boxed(Some(required(w.text.take(), "text", kind)?)).unwrap_or_default();
            Body::Reply(SubscriberReply {
                keyword: super::keyword(&text),
                text,
                to: SmallStr::from(&*required(w.to.take(), "to", kind)?),
                gateway: small(w.gateway.take()),
                in_reply_to: None,
                unsubscribe: None,
            })
        }
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
            Body::Profile(ProfileUpdate { set, unset })
        }
    };
    Ok(Event { ts, msisdn, id, body })
}

/// The fast path: a flat JSON object read in one pass, and RFC 3339 times in the usual shape.
mod fast {
    use super::{MsisdnWire, Wire};
    use std::borrow::Cow;

    enum Val<'a> {
        Str(&'a str),
        Int(i64),
        /// `true`, `false` or `null` (nested values are never read here).
        Other,
    }

    /// Fills `w` from `text`; `None` when the line needs the full parser (what `w` holds then is
    /// to be thrown away).
    pub(super) fn wire<'a>(text: &'a str, w: &mut Wire<'a>) -> Option<()> {
        let b = text.as_bytes();
        let mut i = skip_ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i += 1;
        let mut seen: u64 = 0;
        let mut first = true;
        loop {
            i = skip_ws(b, i);
            if first && b.get(i) == Some(&b'}') {
                i += 1;
                break;
            }
            first = false;
            let (key, next) = string(text, i)?;
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let (val, next) = value(text, i)?;
            i = skip_ws(b, next);
            let bit = assign(w, key, val)?;
            if seen & bit != 0 {
                return None; // duplicate field: let serde say so
            }
            seen |= bit;
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
        (skip_ws(b, i) == b.len()).then_some(())
    }

    /// Puts a value in its field; returns the field's bit (0 for an ignored unknown field), or
    /// `None` when the value's type is not the field's (serde reports that).
    fn assign<'a>(w: &mut Wire<'a>, key: &str, v: Val<'a>) -> Option<u64> {
        fn s<'a>(slot: &mut Option<Cow<'a, str>>, v: Val<'a>) -> Option<()> {
            match v {
                Val::Str(x) => *slot = Some(Cow::Borrowed(x)),
                _ => return None,
            }
            Some(())
        }
        fn n(slot: &mut Option<i64>, v: Val) -> Option<()> {
            match v {
                Val::Int(x) => *slot = Some(x),
                _ => return None,
            }
            Some(())
        }
        let bit = match key {
            "kind" => s(&mut w.kind, v).map(|_| 1)?,
            "ts" => s(&mut w.ts, v).map(|_| 1 << 1)?,
            "msisdn" => {
                w.msisdn = Some(match v {
                    Val::Str(x) => MsisdnWire::Text(Cow::Borrowed(x)),
                    Val::Int(x) => MsisdnWire::Number(u64::try_from(x).ok()?),
                    Val::Other => return None,
                });
                1 << 2
            }
            "id" => s(&mut w.id, v).map(|_| 1 << 3)?,
            "service" => s(&mut w.service, v).map(|_| 1 << 4)?,
            "direction" => s(&mut w.direction, v).map(|_| 1 << 5)?,
            "scope" => s(&mut w.scope, v).map(|_| 1 << 6)?,
            "peer" => s(&mut w.peer, v).map(|_| 1 << 7)?,
            "duration_s" => n(&mut w.duration_s, v).map(|_| 1 << 8)?,
            "volume_kb" => n(&mut w.volume_kb, v).map(|_| 1 << 9)?,
            "count" => n(&mut w.count, v).map(|_| 1 << 10)?,
            "charge_fen" => n(&mut w.charge_fen, v).map(|_| 1 << 11)?,
            "balance_fen" => n(&mut w.balance_fen, v).map(|_| 1 << 12)?,
            "cell" => s(&mut w.cell, v).map(|_| 1 << 13)?,
            "via" => s(&mut w.via, v).map(|_| 1 << 14)?,
            "amount_fen" => n(&mut w.amount_fen, v).map(|_| 1 << 15)?,
            "channel" => s(&mut w.channel, v).map(|_| 1 << 16)?,
            "store" => s(&mut w.store, v).map(|_| 1 << 17)?,
            "session" => s(&mut w.session, v).map(|_| 1 << 18)?,
            "step" => s(&mut w.step, v).map(|_| 1 << 19)?,
            "node" => s(&mut w.node, v).map(|_| 1 << 20)?,
            "hotline" => s(&mut w.hotline, v).map(|_| 1 << 21)?,
            "trigger" => s(&mut w.trigger, v).map(|_| 1 << 22)?,
            "country" => s(&mut w.country, v).map(|_| 1 << 23)?,
            "event" => s(&mut w.event, v).map(|_| 1 << 24)?,
            "action_id" => s(&mut w.action_id, v).map(|_| 1 << 25)?,
            "status" => s(&mut w.status, v).map(|_| 1 << 26)?,
            "rule" => s(&mut w.rule, v).map(|_| 1 << 27)?,
            "campaign" => s(&mut w.campaign, v).map(|_| 1 << 28)?,
            "detail" => s(&mut w.detail, v).map(|_| 1 << 29)?,
            "text" => s(&mut w.text, v).map(|_| 1 << 30)?,
            "to" => s(&mut w.to, v).map(|_| 1 << 31)?,
            "gateway" => s(&mut w.gateway, v).map(|_| 1 << 32)?,
            // Objects and lists (attrs, set, ...) are the full parser's.
            "attrs" | "set" | "unset" | "add" | "remove" => return None,
            // Unknown fields are ignored, as serde ignores them.
            _ => 0,
        };
        Some(bit)
    }

    fn skip_ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        i
    }

    /// A string without escapes starting at `i` (the opening quote).
    #[inline(always)]
    fn string(text: &str, i: usize) -> Option<(&str, usize)> {
        let b = text.as_bytes();
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let start = i + 1;
        let mut j = start;
        // Eight bytes at a time up to the first byte that is not plain string text; then byte by
        // byte from there (a third of decoding went on this loop one byte at a time).
        while let Some(w) = b.get(j..j + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            let found = special(u64::from_le_bytes(word));
            if found != 0 {
                j += found.trailing_zeros() as usize / 8;
                break;
            }
            j += 8;
        }
        while j < b.len() {
            match b[j] {
                b'"' => return Some((&text[start..j], j + 1)),
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => j += 1,
            }
        }
        None
    }

    /// The high bit of each byte of `w` (little-endian) that is a quote, a backslash or a control
    /// character, exact up to the lowest such byte: the bytes above it may be marked wrongly (a
    /// borrow runs into them), so only the lowest mark is read.
    pub(super) fn special(w: u64) -> u64 {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        let quote = w ^ (ONES * b'"' as u64);
        let backslash = w ^ (ONES * b'\\' as u64);
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        zero(quote) | zero(backslash) | control
    }

    fn value(text: &str, i: usize) -> Option<(Val<'_>, usize)> {
        let b = text.as_bytes();
        match *b.get(i)? {
            b'"' => string(text, i).map(|(s, j)| (Val::Str(s), j)),
            b'-' | b'0'..=b'9' => {
                let neg = b[i] == b'-';
                let mut j = i + usize::from(neg);
                let digits = j;
                let mut v: i64 = 0;
                while j < b.len() && b[j].is_ascii_digit() {
                    v = v.checked_mul(10)?.checked_add(i64::from(b[j] - b'0'))?;
                    j += 1;
                }
                // Floats, exponents and leading zeros are the full parser's.
                if j == digits || matches!(b.get(j), Some(b'.' | b'e' | b'E')) || (b[digits] == b'0' && j - digits > 1)
                {
                    return None;
                }
                Some((Val::Int(if neg { -v } else { v }), j))
            }
            b't' if text[i..].starts_with("true") => Some((Val::Other, i + 4)),
            b'f' if text[i..].starts_with("false") => Some((Val::Other, i + 5)),
            b'n' if text[i..].starts_with("null") => Some((Val::Other, i + 4)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time search finds the first quote, backslash or control character exactly
    /// where the byte-by-byte one does, for every byte value in every position.
    #[test]
    fn the_word_search_stops_where_the_byte_search_does() {
        let first = |w: [u8; 8]| w.iter().position(|c| *c == b'"' || *c == b'\\' || *c < 0x20);
        let mut words = Vec::new();
        for pos in 0..8 {
            for c in 0..=255u8 {
                // Plain text around it, then each byte value below or above it as well.
                let mut w = *b"abcdefgh";
                w[pos] = c;
                words.push(w);
                for other in [0u8, 0x1f, b'"', b'\\', 0x80, 0xff, 0x20] {
                    let mut v = w;
                    v[(pos + 3) % 8] = other;
                    words.push(v);
                }
            }
        }
        words.push(*"链路1\"".as_bytes().first_chunk::<8>().expect("8 bytes"));
        for w in words {
            let found = fast::special(u64::from_le_bytes(w));
            let at = (found != 0).then(|| found.trailing_zeros() as usize / 8);
            assert_eq!(at, first(w), "{w:?}");
        }
    }

    #[test]
    fn fast_and_full_parsers_decode_alike() {
        let lines = [
            r#"{"kind":"usage","id":"e1","ts":"2026-11-24T08:00:00+08:00","msisdn":"13800138000","service":"voice","direction":"mo","scope":"long_distance","peer":"13900001111","duration_s":720,"charge_fen":30,"balance_fen":-850,"cell":"c1","extra":true,"n":null}"#,
            r#" { "kind" : "topup" , "ts":"2026-11-24T08:00:00Z", "msisdn":13800138000, "amount_fen":5000, "channel":"store", "store":"S1" } "#,
            r#"{"kind":"ivr","ts":"2026-11-24T08:00:00+08:00","msisdn":"13800138000","session":"s","step":"agent","node":"3-1"}"#,
            r#"{"kind":"location","ts":"2026-11-24T08:00:00+08:00","msisdn":"13800138000","cell":"460-00-1-2","trigger":"attach","country":"JP"}"#,
        ];
        for l in lines {
            let mut fast = Wire::default();
            assert!(fast::wire(l, &mut fast).is_some(), "fast path takes {l}");
            let a = build(&mut fast, l).unwrap();
            let b = build(&mut serde_wire(l).unwrap(), l).unwrap();
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        // Lines the fast path leaves to serde.
        for l in [
            r#"{"kind":"usage","peer":"a"b"}"#,
            r#"{"kind":"usage","duration_s":1.5}"#,
            r#"{"kind":"crm","attrs":{"a":1}}"#,
            r#"{"kind":"usage","kind":"topup"}"#,
            r#"{"kind":"usage","duration_s":"5"}"#,
            r#"{"kind":"usage"} x"#,
            r#"{"kind":"usage","x":[1]}"#,
            r#"{"kind":"usage","n":007}"#,
            r#"{"kind":"usage","x":1,}"#,
        ] {
            assert!(fast::wire(l, &mut Wire::default()).is_none(), "{l}");
        }
    }

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
