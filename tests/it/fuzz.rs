//! Property-based fuzzing (proptest, stable toolchain) of the three places where outside text
//! enters the engine: the event decoder, the rule-file loader and the expression parser and
//! checker. The generators know the formats — valid-looking JSON events with one field made
//! wrong, rule packs with mutated conditions and durations, conditions from the grammar — so
//! most cases get past the first check and reach the code behind it.
//!
//! The normal suite runs a modest number of cases per target; `scripts/fuzz` runs many more for
//! a bounded time. Every failure proptest finds is saved under `tests/corpus/proptest-regressions/`
//! (replayed first on every run) and belongs in the corpus too (`corpus.rs`).

use crate::mangled;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use tidings::event::{DeadReason, Decoder, Kind, MAX_LINE_BYTES};
use tidings::rules::diag::Code;
use tidings::rules::expr::check::{BUILTINS, Param, builtins};
use tidings::rules::expr::syntax;
use tidings::rules::{self, LoadOptions};
use tidings::time::parse_ts;

/// Cases per target in the normal suite; `PROPTEST_CASES` overrides (scripts/fuzz).
const CASES: u32 = 200;

fn config(regressions: &'static str) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(CASES);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    }
}

/// Whether `line:col` (1-based, col in characters) is a position in `text`: on one of its lines,
/// at most one past that line's end; or the start of the line after the last (end of file).
/// Lines end as YAML ends them: `\r\n`, `\n` or a lone `\r`.
pub fn inside(text: &str, line: usize, col: usize) -> bool {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    // A final line break ends the last line; it does not start an empty one.
    let count = if text.ends_with(['\n', '\r']) { lines.len() - 1 } else { lines.len() };
    if line == 0 || col == 0 {
        return false;
    }
    match lines.get(line - 1).filter(|_| line <= count) {
        Some(l) => col <= l.chars().count() + 1,
        None => line == count + 1 && col == 1,
    }
}

#[test]
fn fuzz_inside_counts_lines_as_yaml_does() {
    assert!(inside("ab\ncd\n", 2, 3) && !inside("ab\ncd\n", 2, 4) && inside("ab\ncd\n", 3, 1));
    assert!(inside("a\rbc", 2, 3) && !inside("a\rbc", 3, 2) && inside("a\r\nb", 2, 2) && !inside("a\r\nb", 2, 3));
    assert!(inside("", 1, 1) && !inside("", 1, 2) && !inside("x", 0, 1));
}

// ---------------------------------------------------------------------------------------------
// Events

/// A JSON value as text: right ones and every kind of wrong one.
fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("\"\"".to_string()),
        Just("\"NaN\"".to_string()),
        Just("\"Infinity\"".to_string()),
        Just("\"-0\"".to_string()),
        Just("1e999".to_string()),
        Just("-0".to_string()),
        Just("0.5".to_string()),
        Just("1E3".to_string()),
        Just("007".to_string()),
        Just("9223372036854775807".to_string()),
        Just("9223372036854775808".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("18446744073709551616".to_string()),
        Just("\"\\u0000\"".to_string()),
        Just("\"\\ud800\"".to_string()),
        Just("\"\\u4e2d\\u6587\"".to_string()),
        Just("\"中文😀\"".to_string()),
        Just("\"\u{202e}evil\"".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| if f.is_finite() { format!("{f:?}") } else { "1.0".into() }),
        "[a-z_]{0,12}".prop_map(|s| format!("\"{s}\"")),
        (1usize..300).prop_map(|d| format!("{}1{}", "[".repeat(d), "]".repeat(d))),
        (1usize..300).prop_map(|d| format!("{}1{}", "{\"a\":".repeat(d), "}".repeat(d))),
    ]
}

/// An RFC 3339 time, often valid, often just off (month 13, day 31 of a short month, leap
/// seconds, hour 24, offsets past ±23:59, a space for the `T`, a missing offset).
fn timestamp() -> impl Strategy<Value = (String, bool)> {
    let valid = (1970i64..2100, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60, 0usize..7, -12i32..=14).prop_map(
        |(y, mo, d, h, mi, s, frac, off)| {
            let f = if frac == 0 { String::new() } else { format!(".{}", &"1234567"[..frac]) };
            let o = if off == 0 {
                "Z".to_string()
            } else {
                format!("{}{:02}:00", if off < 0 { '-' } else { '+' }, off.abs())
            };
            (format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{f}{o}"), true)
        },
    );
    let odd = (
        0i64..10000,
        0u32..14,
        0u32..33,
        0u32..26,
        0u32..61,
        0u32..62,
        prop_oneof![
            Just("Z"),
            Just("z"),
            Just("+08:00"),
            Just("-00:00"),
            Just("+24:00"),
            Just("+23:59"),
            Just("+0800"),
            Just(""),
            Just("+08"),
            Just("+08:60"),
        ],
        prop_oneof![Just('T'), Just('t'), Just(' '), Just('_')],
    )
        .prop_map(|(y, mo, d, h, mi, s, o, t)| (format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}{o}"), false));
    prop_oneof![
        6 => valid,
        2 => odd,
        1 => odd_value().prop_map(|v| (v, false)),
    ]
}

/// An msisdn as text or number: right length or not, leading zeros, signs, letters.
fn msisdn() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        4 => "1[3-9][0-9]{9}".prop_map(|s| (format!("\"{s}\""), true)),
        2 => "[0-9]{5,15}".prop_map(|s| (format!("\"{s}\""), true)),
        1 => (10_000u64..999_999_999_999_999).prop_map(|n| (n.to_string(), true)),
        1 => "[0-9]{0,4}".prop_map(|s| (format!("\"{s}\""), false)),
        1 => "[0-9]{16,22}".prop_map(|s| (format!("\"{s}\""), false)),
        1 => prop_oneof![
            Just("\"+8613800138000\""),
            Just("\"138 0013 8000\""),
            Just("\"1380013800a\""),
            Just("\"１３８００１３８０００\""),
            Just("-13800138000"),
            Just("1.38e10"),
            Just("13800138000.0"),
            Just("1e15"),
        ]
        .prop_map(|s| (s.to_string(), false)),
    ]
}

/// A field value: mostly a right one from `good`, else an odd one (an event has up to a dozen
/// fields: one wrong field in most events would leave the accepting path untried).
fn field(good: &'static [&'static str]) -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        16 => proptest::sample::select(good).prop_map(|s| (s.to_string(), true)),
        1 => odd_value().prop_map(|v| (v, false)),
    ]
}

/// The fields each kind may carry, with right values (already JSON text).
fn kind_fields(kind: &str) -> &'static [(&'static str, &'static [&'static str], bool)] {
    const AMOUNT: &[&str] = &["0", "1", "5000", "2147483647"];
    const BALANCE: &[&str] = &["0", "-850", "1200", "99999999"];
    const TEXT: &[&str] = &["\"x\"", "\"S001\"", "\"中文\"", "\"460-00-4125-31502\"", "\"\""];
    match kind {
        "usage" => &[
            ("service", &["\"voice\"", "\"sms\"", "\"mms\"", "\"data\""], true),
            ("direction", &["\"mo\"", "\"mt\""], true),
            (
                "scope",
                &[
                    "\"local\"",
                    "\"long_distance\"",
                    "\"international\"",
                    "\"roaming_domestic\"",
                    "\"roaming_international\"",
                ],
                true,
            ),
            ("peer", TEXT, false),
            ("duration_s", AMOUNT, false),
            ("volume_kb", AMOUNT, false),
            ("count", AMOUNT, false),
            ("charge_fen", AMOUNT, false),
            ("balance_fen", BALANCE, false),
            ("cell", TEXT, false),
            ("via", &["\"12593\""], false),
        ],
        "topup" => &[
            ("amount_fen", AMOUNT, true),
            ("balance_fen", BALANCE, false),
            ("channel", &["\"card\"", "\"online\"", "\"store\"", "\"bank\"", "\"ussd\"", "\"agent\""], true),
            ("store", TEXT, false),
        ],
        "ivr" => &[
            ("session", TEXT, true),
            ("step", &["\"enter\"", "\"menu\"", "\"agent\"", "\"exit\""], true),
            ("node", &["\"1-3-2\"", "\"3\""], false),
            ("hotline", &["\"10086\""], false),
        ],
        "location" => &[
            ("cell", TEXT, true),
            ("trigger", &["\"attach\"", "\"handover\"", "\"periodic\"", "\"detach\""], true),
            ("country", &["\"JP\"", "\"CN\""], false),
        ],
        "crm" => &[
            ("event", &["\"store_visit\"", "\"complaint_closed\"", "\"unheard_of\""], true),
            (
                "attrs",
                &["{}", "{\"amount_fen\":5000,\"reason\":\"返还\"}", "{\"a\":{\"b\":[1,2,{\"c\":null}]}}"],
                false,
            ),
        ],
        "profile" => &[
            (
                "set",
                &["{\"tier\":\"high\"}", "{\"services\":[\"12593\"],\"dnd\":true}", "{\"prefs\":[\"music\"]}"],
                true,
            ),
            ("unset", &["[\"dnd\"]"], false),
        ],
        "reply" => &[
            ("text", &["\"退订\"", "\"TD\"", "\"回复 \\\"Y\\\"\"", "\"\""], true),
            ("to", &["\"10658888\"", "\"1065\""], true),
            ("gateway", &["\"smpp\"", "\"kannel\""], false),
        ],
        _ => &[],
    }
}

/// What the generator meant: the line and whether every part of it was a right one.
#[derive(Debug, Clone)]
struct GenEvent {
    bytes: Vec<u8>,
    valid: bool,
}

fn event_line() -> impl Strategy<Value = GenEvent> {
    let kind = prop_oneof![
        16 => proptest::sample::select(&["usage", "topup", "ivr", "location", "crm", "profile", "reply"][..])
            .prop_map(|k| (format!("\"{k}\""), true, k)),
        1 => odd_value().prop_map(|v| (v, false, "")),
        1 => Just(("\"USAGE\"".to_string(), false, "")),
    ];
    (kind, timestamp(), msisdn(), any::<bool>(), "[a-z0-9-]{0,12}", any::<u64>())
        .prop_flat_map(|((kind, kind_ok, k), (ts, ts_ok), (m, m_ok), with_id, id, seed)| {
            let fields: Vec<_> = kind_fields(k)
                .iter()
                .map(|(name, good, required)| {
                    (field(good), prop::bool::weighted(if *required { 0.95 } else { 0.5 }))
                        .prop_map(move |((v, ok), present)| (*name, v, ok, present, *required))
                })
                .collect();
            (fields, Just((kind, kind_ok, ts, ts_ok, m, m_ok, with_id, id, seed)))
        })
        .prop_map(|(fields, (kind, kind_ok, ts, ts_ok, m, m_ok, with_id, id, seed))| {
            let mut parts = vec![format!("\"kind\":{kind}"), format!("\"ts\":\"{ts}\""), format!("\"msisdn\":{m}")];
            if ts.starts_with(['"', '[', '{']) || ts.parse::<f64>().is_ok() || ["null", "true"].contains(&ts.as_str()) {
                parts[1] = format!("\"ts\":{ts}"); // an odd JSON value, not a time string
            }
            if with_id {
                parts.push(format!("\"id\":\"{id}\""));
            }
            let mut valid = kind_ok && ts_ok && m_ok;
            for (name, v, ok, present, required) in fields {
                if present {
                    parts.push(format!("\"{name}\":{v}"));
                    valid &= ok;
                } else {
                    valid &= !required;
                }
            }
            // Field order does not matter to JSON; shuffle it with the seed.
            let mut rng = mangled::Rng(seed);
            for i in (1..parts.len()).rev() {
                parts.swap(i, rng.below(i + 1));
            }
            GenEvent { bytes: format!("{{{}}}", parts.join(",")).into_bytes(), valid }
        })
}

/// Byte-level damage to a line: none more than half of the time, else bad UTF-8, a cut, a doubled key,
/// garbage after the object, control characters, or padding past the line limit.
fn damaged(e: GenEvent) -> impl Strategy<Value = GenEvent> {
    let len = e.bytes.len();
    (0u8..24, 0..len.max(1), any::<u8>(), any::<bool>()).prop_map(move |(op, at, byte, flag)| {
        let mut b = e.bytes.clone();
        let at = at.min(b.len());
        let insert = |b: &mut Vec<u8>, at: usize, bytes: &[u8]| drop(b.splice(at..at, bytes.iter().copied()));
        let mut valid = false;
        match op {
            0 => insert(&mut b, at, &[0xff, 0xfe]),
            1 => insert(&mut b, at, &[0xe4, 0xb8]), // half a Chinese character
            2 => insert(&mut b, at, &[0xed, 0xa0, 0x80]), // an encoded surrogate
            3 => b.truncate(at),
            4 => insert(&mut b, 1, b"\"kind\":\"usage\","), // a doubled key
            5 => b.extend_from_slice(b" x"),
            6 => insert(&mut b, at, &[byte & 0x1f]),
            7 => {
                // A long string field: the line just at or just over the limit.
                let prefix = b"\"pad\":\"\",";
                let pad = (MAX_LINE_BYTES + usize::from(flag)).saturating_sub(b.len() + prefix.len());
                let mut field = b"\"pad\":\"".to_vec();
                field.extend(std::iter::repeat_n(b'a', pad));
                field.extend_from_slice(b"\",");
                insert(&mut b, 1, &field);
                valid = e.valid && !flag;
            }
            8 => {
                insert(&mut b, 0, b" \t");
                valid = e.valid;
            }
            _ => valid = e.valid,
        }
        GenEvent { bytes: b, valid }
    })
}

/// What the decoder must do with `raw`, checked against an independent reading of the same
/// bytes (std's UTF-8 check, serde_json's `Value`, chrono's RFC 3339 parser).
fn check_decoded(raw: &[u8], valid: bool) -> Result<(), TestCaseError> {
    let out = Decoder::default().decode(raw, "fuzz", 7);
    let shown = String::from_utf8_lossy(&raw[..raw.len().min(2000)]);
    let trimmed = raw.trim_ascii();
    let Some(out) = out else {
        prop_assert!(trimmed.is_empty(), "only a blank line decodes to nothing");
        return Ok(());
    };
    let text = std::str::from_utf8(trimmed).ok();
    let json: Option<serde_json::Value> = text.and_then(|t| serde_json::from_str(t).ok());
    match out {
        Ok(e) => {
            prop_assert!(raw.len() <= MAX_LINE_BYTES);
            let Some(serde_json::Value::Object(o)) = json else {
                return Err(TestCaseError::fail("accepted a line that is not a JSON object"));
            };
            prop_assert_eq!(o.get("kind").and_then(|k| k.as_str()), Some(e.kind().as_str()));
            let full = e.msisdn.full();
            prop_assert!((5..=15).contains(&full.len()) && full.bytes().all(|c| c.is_ascii_digit()), "msisdn {full}");
            let given = match o.get("msisdn") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                other => return Err(TestCaseError::fail(format!("accepted msisdn {other:?}"))),
            };
            prop_assert_eq!(&full, &given);
            let ts = o.get("ts").and_then(|t| t.as_str()).unwrap_or_default();
            prop_assert_eq!(parse_ts(ts).ok(), Some(e.ts), "ts {}", ts);
            match o.get("id").and_then(|i| i.as_str()) {
                Some(id) if !id.is_empty() => prop_assert_eq!(&*e.id, id),
                _ => prop_assert!(e.id.starts_with('h') && e.id.len() == 17, "derived id {}", e.id),
            }
        }
        Err(d) => {
            prop_assert!(!valid, "a valid event was refused: {:?} {}\n{}", d.reason, d.detail, shown);
            prop_assert!(DeadReason::ALL.contains(&d.reason));
            prop_assert!(!d.detail.is_empty(), "a dead letter says why");
            prop_assert_eq!((d.source.as_str(), d.line), ("fuzz", 7));
            let keep = &raw[..raw.len().min(tidings::event::RAW_KEEP)];
            prop_assert!(String::from_utf8_lossy(keep).starts_with(&d.raw), "raw is the record's start");
            prop_assert_eq!(d.truncated, raw.len() > tidings::event::RAW_KEEP);
            if raw.len() > MAX_LINE_BYTES {
                prop_assert_eq!(d.reason, DeadReason::TooLong);
            } else if text.is_none() {
                prop_assert_eq!(d.reason, DeadReason::BadUtf8);
            } else if text.is_some_and(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_err()) {
                prop_assert_eq!(d.reason, DeadReason::BadJson, "{}\n{}", d.detail, shown);
            } else if json.is_none() {
                // JSON by its grammar that serde_json will not hold as a value (nested deeper
                // than 128, a lone surrogate, 1e999): a field may be found wrong first.
                prop_assert!(matches!(d.reason, DeadReason::BadJson | DeadReason::BadField), "{:?}", d.reason);
            } else if !matches!(json, Some(serde_json::Value::Object(_))) {
                prop_assert_eq!(d.reason, DeadReason::BadJson, "{}\n{}", d.detail, shown);
            } else {
                prop_assert!(d.reason != DeadReason::BadJson, "valid JSON called bad: {}\n{}", d.detail, shown);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/proptest-regressions/events.txt")))]

    #[test]
    fn fuzz_events_decode_or_die_with_a_reason(e in event_line().prop_flat_map(damaged)) {
        check_decoded(&e.bytes, e.valid)?;
    }

    #[test]
    fn fuzz_events_arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..200)) {
        check_decoded(&raw, false)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions

/// Fields the grammar reads (a mix of right ones, ones of other kinds, and misspelt ones).
const FIELDS: &[&str] = &[
    "event.duration_s",
    "event.service",
    "event.scope",
    "event.balance_fen",
    "event.charge_fen",
    "event.cell",
    "event.via",
    "event.amount_fen",
    "event.attrs.amount_fen",
    "subscriber.tier",
    "subscriber.services",
    "subscriber.prefs",
    "subscriber.balance",
    "subscriber.arpu_fen",
    "state.balance",
    "state.prev_balance",
    "cell.tags",
    "prev_cell.tags",
    "calendar.active",
    "reachable",
    "hubs",
    "low",
    "subscriber.tire",
    "event.nope",
];

const ATOMS: &[&str] = &[
    "0",
    "3",
    "-1",
    "9223372036854775807",
    "10 CNY",
    "1.5 yuan",
    "3 fen",
    "30d",
    "4h",
    "60s",
    "0s",
    "99999999999d",
    "\"12593\"",
    "\"中文\"",
    "\"\"",
    "voice",
    "high",
    "long_distance",
    "railway_station",
    "true",
    "false",
    "null",
];

/// Conditions from the grammar: every one of them parses (types may not agree).
pub fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![proptest::sample::select(FIELDS), proptest::sample::select(ATOMS)].prop_map(str::to_string);
    leaf.prop_recursive(4, 40, 4, |inner| {
        prop_oneof![
            (inner.clone(), proptest::sample::select(&["and", "or"][..]), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (
                inner.clone(),
                proptest::sample::select(
                    &[
                        "==",
                        "!=",
                        "<",
                        "<=",
                        ">",
                        ">=",
                        "in",
                        "not in",
                        "intersects",
                        "startswith",
                        "endswith",
                        "contains"
                    ][..]
                ),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("(({a}) {op} ({b}))")),
            (inner.clone(), proptest::sample::select(&["+", "-", "*", "/", "%"][..]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("({})", v.join(", "))),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            builtin_call(inner.clone()),
            (
                proptest::sample::select(builtins::names().chain(["nope"]).collect::<Vec<_>>()),
                prop::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(f, v)| format!("{f}({})", v.join(", "))),
            (proptest::sample::select(&["usage", "topup", "location", "ivr", "crm"][..]), inner.clone(), inner.clone())
                .prop_map(|(k, c, w)| format!("count({k} where {c}, {w})")),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("seq(ivr where {a}, ivr where {b}, within {})", "60s")),
        ]
    })
}

/// A call of a built-in from the checker's table, each argument shaped by the table's parameter
/// (events with a filter, a window, tags ...) so that most calls get past the arity check to
/// the code behind it. A parameter added to the table does not compile here until the grammar
/// knows it.
fn builtin_call(inner: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    (0..BUILTINS.len()).prop_flat_map(move |i| {
        let f = &BUILTINS[i];
        let args: Vec<BoxedStrategy<String>> = f.params.iter().map(|p| param(*p, inner.clone())).collect();
        args.prop_map(move |a| format!("{}({})", f.name, a.join(", ")))
    })
}

/// An argument for a parameter of a built-in: mostly right, sometimes not.
fn param(p: Param, inner: BoxedStrategy<String>) -> BoxedStrategy<String> {
    let kind = proptest::sample::select(&["usage", "topup", "location", "ivr", "crm", "nope"][..]);
    let filtered = |src: BoxedStrategy<String>, inner: BoxedStrategy<String>| {
        (src, proptest::option::of(inner))
            .prop_map(|(s, f)| f.map_or_else(|| s.clone(), |f| format!("{s} where {f}")))
            .boxed()
    };
    let window = proptest::sample::select(&["30d", "7d", "1h", "60s", "0s", "63d", "99999999999d", "1"][..]);
    match p {
        Param::Events => filtered(kind.prop_map(str::to_string).boxed(), inner),
        Param::Summed | Param::Field => filtered(
            proptest::sample::select(
                &["usage.charge_fen", "usage.duration_s", "topup.amount_fen", "usage.nope", "usage"][..],
            )
            .prop_map(str::to_string)
            .boxed(),
            inner,
        ),
        Param::Steps => prop::collection::vec(filtered(kind.prop_map(str::to_string).boxed(), inner), 1..4)
            .prop_map(|v| v.join(", "))
            .boxed(),
        Param::Within => window.prop_map(|w| format!("within {w}")).boxed(),
        Param::Window => window.prop_map(str::to_string).boxed(),
        Param::Tags => proptest::sample::select(
            &["\"railway_station\"", "hubs", "(railway_station, airport)", "cell.tags, hubs", "event.cell", "1"][..],
        )
        .prop_map(str::to_string)
        .boxed(),
        Param::Entry => proptest::sample::select(&["spring_festival", "\"national_day\"", "nope", "1"][..])
            .prop_map(str::to_string)
            .boxed(),
        Param::Value | Param::Number => inner,
    }
}

#[test]
fn fuzz_grammar_calls_every_builtin_of_the_table() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let calls: Vec<String> = (0..400)
        .map(|_| builtin_call(Just("state.balance".to_string()).boxed()).new_tree(&mut runner).unwrap().current())
        .collect();
    for f in BUILTINS {
        assert!(calls.iter().any(|c| c.starts_with(&format!("{}(", f.name))), "{} is never called", f.name);
    }
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let exprs: Vec<String> = (0..3000).map(|_| expr().new_tree(&mut runner).unwrap().current()).collect();
    for f in BUILTINS {
        assert!(exprs.iter().any(|e| e.contains(&format!("{}(", f.name))), "the grammar never calls {}", f.name);
    }
}

/// Conditions that are right by construction (each atom a well-typed test on a usage event):
/// every one of them must compile.
pub fn typed_expr() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        (
            1u32..100_000,
            proptest::sample::select(&["s", "m", "h"][..]),
            proptest::sample::select(&[">", ">=", "<", "==", "!="][..])
        )
            .prop_map(|(n, u, op)| format!("event.duration_s {op} {n}{u}")),
        proptest::sample::select(&["voice", "sms", "mms", "data"][..]).prop_map(|v| format!("event.service == {v}")),
        Just("event.scope in (long_distance, roaming_domestic)".to_string()),
        Just("event.scope not in (local)".to_string()),
        Just("subscriber.tier in (high, valuable)".to_string()),
        (0i64..1_000_000).prop_map(|n| format!("state.balance < {n} fen")),
        (0u32..1000, 0u32..100).prop_map(|(y, f)| format!("event.charge_fen >= {y}.{f:02} CNY")),
        Just("\"12593\" in subscriber.services".to_string()),
        Just("low".to_string()),
        (0i64..50, 1u32..60).prop_map(|(n, d)| format!("count(usage where scope == long_distance, {d}d) >= {n}")),
        (1u32..60).prop_map(|d| format!("sum(usage.charge_fen, {d}d) > 10 CNY")),
        Just("event.via startswith \"125\"".to_string()),
    ];
    atom.prop_recursive(4, 30, 3, |inner| {
        prop_oneof![
            (inner.clone(), proptest::sample::select(&["and", "or"][..]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "==",
    "=",
    "!",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "\"",
    "'",
    " and ",
    " or ",
    "not ",
    " in ",
    " where ",
    " within ",
    "count(",
    "\n",
    "\t",
    "\u{0}",
    "中",
    "😀",
    "\u{202e}",
    "1d",
    "CNY",
    "99999999999999999999",
    "-9223372036854775808",
    "1.5",
    "..",
    "event.",
    "{",
    "}",
    "#",
    ": ",
];

/// One to three token-level mutations of a condition.
fn mutated(e: String) -> impl Strategy<Value = String> {
    let n = e.len();
    prop::collection::vec((0u8..4, 0..n.max(1), 0..n.max(1), proptest::sample::select(TOKENS)), 1..4).prop_map(
        move |ops| {
            let mut s = e.clone();
            for (op, a, b, tok) in ops {
                let fix = |i: usize, s: &str| {
                    let mut i = i.min(s.len());
                    while !s.is_char_boundary(i) {
                        i -= 1;
                    }
                    i
                };
                let (a, b) = (fix(a, &s), fix(b, &s));
                let (lo, hi) = (a.min(b), a.max(b));
                match op {
                    0 => s.insert_str(a, tok),
                    1 => {
                        let hi = fix(hi.min(lo + 8), &s);
                        s.replace_range(lo..hi, "")
                    }
                    2 => s.replace_range(lo..hi, tok),
                    _ => s = format!("{}{}", &s[..a], &s[b.min(s.len())..]),
                }
            }
            s
        },
    )
}

/// A one-rule pack around `condition` (as a block scalar, so any text fits), with a macro and
/// a list the grammar uses. The condition starts on line `CONDITION_LINE`.
pub fn pack(condition: &str, cap: &str, expire: &str, template: &str) -> String {
    let body: String = condition.lines().map(|l| format!("    {l}\n")).collect();
    let body = if body.is_empty() { "    \n".to_string() } else { body };
    format!(
        "- list: hubs\n  items: [railway_station, airport]\n\
         - macro: low\n  condition: state.balance < 10 CNY\n\
         - rule: fuzzed\n  on: [usage]\n  condition: |-\n{body}\
         \x20 action:\n    channel: sms\n    template: \"{template}\"\n\
         \x20 campaign: fuzz\n  priority: 50\n\
         \x20 policy: {{ cap: \"{cap}\", quiet_hours: defer, expire_after: {expire} }}\n"
    )
}
pub const CONDITION_LINE: usize = 8;

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (1u32..100, proptest::sample::select(&["s", "m", "h", "d", "w"][..])).prop_map(|(n, u)| format!("{n}{u}")),
        1 => proptest::sample::select(&["0s", "-1h", "1.5h", "99999999999999999999d", "1 d", "d", "", "1x", "30 days", "中"][..])
            .prop_map(str::to_string),
    ]
}

fn cap() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (1u32..10, proptest::sample::select(&["7d", "1d", "30d", "month", "day", "week"][..])).prop_map(|(n, p)| format!("{n} per {p}")),
        1 => (any::<i64>(), duration()).prop_map(|(n, d)| format!("{n} per {d}")),
        1 => proptest::sample::select(&["0 per 0d", "1 per", "per 7d", "3 each month", "", "1 per 1d per 1d"][..]).prop_map(str::to_string),
    ]
}

fn template() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("您好".to_string()),
        expr().prop_map(|e| format!("余额{{{}}}元", e.replace('"', "'"))),
        Just("{state.balance|cny}".to_string()),
        Just("{state.balance|nope}".to_string()),
        Just("{".to_string()),
        Just("}{".to_string()),
        Just("{subscriber.tier|default:}".to_string()),
    ]
}

/// Loads one generated file. No panic; every diagnostic inside the file; a refused pack says
/// why. Returns the load for more checks.
fn load_one(text: &str) -> Result<rules::Loaded, TestCaseError> {
    let files = vec![("fuzz.yaml".to_string(), text.to_string())];
    let loaded = rules::compile(files, None, &LoadOptions::default());
    for d in &loaded.diagnostics {
        prop_assert!(
            inside(text, d.line, d.col),
            "{}:{}:{} is outside the file\n{}\n{text}",
            d.file,
            d.line,
            d.col,
            d.render()
        );
    }
    if loaded.rules.is_none() {
        prop_assert!(loaded.diagnostics.iter().any(|d| d.is_error()), "refused without an error:\n{text}");
    }
    Ok(loaded)
}

/// The span of a syntax error lies inside the condition, on character boundaries.
fn check_syntax(src: &str) -> Result<(), TestCaseError> {
    if let Err(e) = syntax::parse(src) {
        prop_assert!(e.span.start <= e.span.end && e.span.end <= src.len(), "span {:?} in {} bytes", e.span, src.len());
        prop_assert!(
            src.is_char_boundary(e.span.start) && src.is_char_boundary(e.span.end),
            "span {:?} splits a character",
            e.span
        );
        prop_assert!(!e.message.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/proptest-regressions/expr.txt")))]

    #[test]
    fn fuzz_expr_grammar_parses_and_checks_with_located_diagnostics(e in prop_oneof![expr(), typed_expr()]) {
        let parsed = syntax::parse(&e);
        prop_assert!(parsed.is_ok(), "the grammar's sentence does not parse: {e}\n{:?}", parsed.err());
        let text = pack(&e, "1 per 7d", "2h", "您好");
        let loaded = load_one(&text)?;
        for d in &loaded.diagnostics {
            prop_assert!(!matches!(d.code, Code::E001 | Code::E002 | Code::E003 | Code::E004 | Code::E010), "{}", d.render());
            // An error is in the condition, or in the macro it uses (line 4).
            if d.is_error() {
                let in_condition = d.line >= CONDITION_LINE && d.line < CONDITION_LINE + e.lines().count().max(1);
                prop_assert!(in_condition || d.line == 4, "{}", d.render());
            }
        }
    }

    #[test]
    fn fuzz_expr_typed_conditions_compile(e in typed_expr()) {
        let loaded = load_one(&pack(&e, "1 per 7d", "2h", "您好"))?;
        let errors: Vec<String> = loaded.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.render()).collect();
        prop_assert!(loaded.rules.is_some(), "a well-typed condition was refused: {e}\n{}", errors.join("\n"));
    }

    #[test]
    fn fuzz_expr_mutated_conditions_are_refused_in_place(e in prop_oneof![expr(), typed_expr()].prop_flat_map(mutated)) {
        check_syntax(&e)?;
        load_one(&pack(&e, "1 per 7d", "2h", "您好"))?;
    }

    #[test]
    fn fuzz_expr_arbitrary_text(e in "\\PC{0,80}") {
        check_syntax(&e)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Rule files

proptest! {
    #![proptest_config(config(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/proptest-regressions/rules.txt")))]

    #[test]
    fn fuzz_rules_generated_packs_load_or_say_where(
        e in prop_oneof![expr(), typed_expr(), prop_oneof![expr(), typed_expr()].prop_flat_map(mutated)],
        cap in cap(),
        expire in duration(),
        template in template(),
        seed in any::<u64>(),
        mangle in any::<bool>(),
    ) {
        let mut text = pack(&e, &cap, &expire, &template);
        if mangle {
            text = mangled::mangle(&text, &mut mangled::Rng(seed));
        }
        load_one(&text)?;
    }

    /// The shipped pack mangled with any seed (the normal suite's `mangled.rs` tries 0..1500).
    #[test]
    fn fuzz_rules_shipped_pack_mangled_by_any_seed(seed in 1500u64..) {
        mangled::load_mangled(&mangled::shipped(), seed).map_err(TestCaseError::fail)?;
    }
}

/// The kinds the generator knows agree with the engine's.
#[test]
fn fuzz_generator_knows_every_event_kind() {
    for k in Kind::NAMES {
        assert!(*k == "outcome" || !kind_fields(k).is_empty(), "no generator fields for {k}");
    }
}

/// The deepest condition the checker lets through (macros stacked to just under
/// `MAX_EXPANDED_DEPTH`, each level a double negation) is evaluated by the engine on an
/// ordinary 2 MiB test thread, in a debug build, without exhausting the stack.
#[test]
fn deepest_allowed_condition_evaluates_without_exhausting_the_stack() {
    use crate::support::{M, SUB, ev, run};
    let levels = 60; // 3 checks per level (not, not, the macro's name): 180 of 200
    let mut pack = String::from("- macro: m0\n  condition: event.duration_s > 60s\n");
    for i in 1..levels {
        pack += &format!("- macro: m{i}\n  condition: not not m{}\n", i - 1);
    }
    pack += &format!(
        "- rule: deep\n  on: [usage]\n  condition: {}m{} and true{}\n  action: {{ channel: sms, template: \"x\" }}\n  campaign: c\n",
        "(".repeat(30),
        levels - 1,
        ")".repeat(30)
    );
    let long = ev("usage", "10:00:00", r#""service":"voice","direction":"mo","scope":"local","duration_s":600"#);
    let short = ev("usage", "10:05:00", r#""service":"voice","direction":"mo","scope":"local","duration_s":6"#);
    let r = run(&pack, &[SUB], &[long, short]);
    let fired: Vec<_> =
        r.decisions.iter().filter(|d| d.rule_name.as_ref() == "deep").map(|d| d.msisdn.full()).collect();
    assert_eq!(fired, vec![M.to_string()], "the deep condition holds for the long call only");
}

/// The generators reach past the first check: a fair share of generated events are accepted
/// and the rest die for many different reasons; a fair share of grammar conditions compile.
/// (A generator that only ever produced garbage would make every property above pass idly.)
#[test]
fn fuzz_generators_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut accepted, mut valid, mut reasons) = (0, 0, std::collections::BTreeSet::new());
    let strategy = event_line().prop_flat_map(damaged);
    for _ in 0..1000 {
        let e = strategy.new_tree(&mut runner).unwrap().current();
        valid += usize::from(e.valid);
        match Decoder::default().decode(&e.bytes, "fuzz", 1) {
            Some(Ok(_)) => accepted += 1,
            Some(Err(d)) => drop(reasons.insert(d.reason)),
            None => {}
        }
    }
    assert!(valid >= 150 && accepted >= valid, "{valid} valid, {accepted} accepted of 1000");
    assert!(reasons.len() >= 7, "dead-letter reasons reached: {reasons:?}");

    let mut compiled = 0;
    for _ in 0..300 {
        let e = prop_oneof![expr(), typed_expr()].new_tree(&mut runner).unwrap().current();
        let loaded =
            rules::compile(vec![("f.yaml".into(), pack(&e, "1 per 7d", "2h", "您好"))], None, &LoadOptions::default());
        compiled += usize::from(loaded.rules.is_some());
    }
    assert!(compiled >= 100, "{compiled} of 300 generated conditions compile");
}

/// Arithmetic on extreme values from an event is null or saturates; it never panics the shard
/// (i64::MIN / -1 used to abort the division).
#[test]
fn extreme_arithmetic_on_event_values_never_panics() {
    use crate::support::{SUB, ev, run};
    let pack = "- rule: div\n  on: [usage]\n  condition: event.balance_fen / -1 > 0 fen or event.balance_fen % -1 fen == 0 fen or -event.balance_fen * 2 > 0 fen\n  action: { channel: sms, template: \"x\" }\n  campaign: c\n";
    let lines: Vec<String> = [i64::MIN, -1, 0, i64::MAX]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            ev(
                "usage",
                &format!("10:0{i}:00"),
                &format!(r#""service":"voice","direction":"mo","scope":"local","balance_fen":{b}"#),
            )
        })
        .collect();
    let r = run(pack, &[SUB], &lines);
    assert_eq!(r.summary.events, 4, "every event was processed");
    assert!(r.dead.is_empty());
}
