//! Message templates: `尊敬的客户,您的余额仅剩{state.balance|cny}元` — literal text with
//! `{expression|filter}` holes, checked like conditions when the rules load and rendered per
//! decision. `{{` and `}}` write literal braces.
//!
//! A template whose text is Chinese writes codes as words ([`super::words`]): an enumerated
//! value, a string, a list item, a cell tag or a CRM attribute string that has a word in the
//! pack's dictionary is written as that word (`data` -> 数据流量); `|code` keeps the code. A
//! template without Chinese (a queue name, an English message) writes codes as they are. What
//! can be resolved is resolved here, once: an enumerated hole holds its words by symbol, and
//! a template without Chinese never looks anything up.

use super::diag::Code;
use super::expr::check::{Checker, Loc};
use super::expr::syntax::{self, Span};
use super::expr::{Ctx, Ir, Ty, Value};
use super::words::{Dictionary, has_chinese};
use crate::time::format_duration;
use crate::util::Msisdn;
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fmt {
    Auto,
    /// Fen as yuan with two decimals: 1234 -> 12.34
    Cny,
    /// A subscriber number masked: 138****8000
    Mask,
    /// 2026-11-25
    Date,
    /// 11月25日
    CnDate,
    /// 08:30
    Time,
    /// A duration in whole minutes.
    Minutes,
    /// A store id as the store's name (`S002` -> 北京西站营业厅); an id the reference data does
    /// not know is written as it is.
    Store,
    /// The value as it is, never a word (`|code`).
    Code,
}

/// How a hole writes a value that is a code.
#[derive(Clone, Debug)]
enum Words {
    /// As it is: a template without Chinese, `|code`, or a value that is no code (a number).
    Code,
    /// An enumerated value: the word of each symbol, fixed when the pack compiled.
    Sym(Box<[Box<str>]>),
    /// A string, list item, tag or attribute string: its word in the dictionary, if any.
    Lookup(Arc<Dictionary>),
}

impl Words {
    /// What a hole of type `ty` in a Chinese template writes codes with.
    fn of(ty: Ty, dict: &Arc<Dictionary>) -> Words {
        match ty {
            Ty::Sym(t) => Words::Sym(dict.symbols(t)),
            Ty::Str | Ty::List | Ty::Tags | Ty::Dyn => Words::Lookup(Arc::clone(dict)),
            Ty::Bool | Ty::Int | Ty::Money | Ty::Duration | Ty::Time | Ty::Null => Words::Code,
        }
    }

    /// Writes `code`, as its word when it has one.
    fn write(&self, out: &mut String, code: &str) {
        match self {
            Words::Lookup(d) => out.push_str(d.word(code).unwrap_or(code)),
            Words::Code | Words::Sym(_) => out.push_str(code),
        }
    }
}

#[derive(Clone, Debug)]
enum Part {
    Lit(String),
    Var { ir: Ir, ty: Ty, fmt: Fmt, default: Option<String>, words: Words },
}

#[derive(Clone, Debug)]
pub struct Template {
    parts: Vec<Part>,
}

const FILTERS: &[&str] = &["cny", "mask", "date", "cn_date", "time", "minutes", "store", "default", "code"];

impl Template {
    /// Compiles the template in the checker's current scope, with the checker's words when its
    /// text is Chinese. Diagnostics go to the checker.
    pub fn compile(text: &str, checker: &mut Checker, loc: &Loc) -> Option<Template> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut ok = true;
        let mut i = 0;
        let b = text.as_bytes();
        while i < b.len() {
            match b[i] {
                b'{' if b.get(i + 1) == Some(&b'{') => {
                    lit.push('{');
                    i += 2;
                }
                b'}' if b.get(i + 1) == Some(&b'}') => {
                    lit.push('}');
                    i += 2;
                }
                b'{' => {
                    let Some(close) = text[i..].find('}').map(|c| i + c) else {
                        checker.diags.push(
                            loc.diag(Code::E020, Span { start: i, end: i + 1 }, "`{` is never closed")
                                .with_hint(Some("write `{{` for a literal brace".into())),
                        );
                        return None;
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    match Self::hole(&text[i + 1..close], i + 1, checker, loc) {
                        Some(p) => parts.push(p),
                        None => ok = false,
                    }
                    i = close + 1;
                }
                b'}' => {
                    checker.diags.push(
                        loc.diag(Code::E020, Span { start: i, end: i + 1 }, "`}` without a matching `{`")
                            .with_hint(Some("write `}}` for a literal brace".into())),
                    );
                    ok = false;
                    i += 1;
                }
                _ => {
                    let ch = text[i..].chars().next().unwrap_or(' ');
                    lit.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        if parts.iter().any(|p| matches!(p, Part::Lit(s) if has_chinese(s))) {
            for p in &mut parts {
                if let Part::Var { ty, fmt: Fmt::Auto, words, .. } = p {
                    *words = Words::of(*ty, checker.words);
                }
            }
        }
        ok.then_some(Template { parts })
    }

    fn hole(inner: &str, base: usize, checker: &mut Checker, loc: &Loc) -> Option<Part> {
        let mut pieces = inner.split('|');
        let expr_text = pieces.next().unwrap_or("");
        let eloc = Loc { base: loc.base + base, ..*loc };
        let node = match syntax::parse(expr_text) {
            Ok(n) => n,
            Err(e) => {
                checker.diags.push(eloc.diag(Code::E010, e.span, e.message).with_hint(e.hint));
                return None;
            }
        };
        let (ir, ty) = checker.any(&node, &eloc)?;
        let mut fmt = Fmt::Auto;
        let mut default = None;
        let mut off = expr_text.len() + 1;
        for f in pieces {
            let span = Span { start: off, end: off + f.len() };
            off += f.len() + 1;
            let (name, arg) = match f.split_once(':') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"').to_string())),
                None => (f.trim(), None),
            };
            let want = match name {
                "cny" => Some((Fmt::Cny, Ty::Money)),
                "mask" => Some((Fmt::Mask, Ty::Str)),
                "date" => Some((Fmt::Date, Ty::Time)),
                "cn_date" => Some((Fmt::CnDate, Ty::Time)),
                "time" => Some((Fmt::Time, Ty::Time)),
                "minutes" => Some((Fmt::Minutes, Ty::Duration)),
                "store" => Some((Fmt::Store, Ty::Str)),
                "code" => {
                    fmt = Fmt::Code;
                    None
                }
                "default" => {
                    default = arg.or(Some(String::new()));
                    None
                }
                _ => {
                    let hint =
                        crate::util::nearest(name, FILTERS.iter().copied()).map(|n| format!("did you mean `{n}`?"));
                    checker
                        .diags
                        .push(eloc.diag(Code::E020, span, format!("unknown template filter `{name}`")).with_hint(hint));
                    return None;
                }
            };
            if let Some((f, need)) = want {
                if ty != need && ty != Ty::Dyn {
                    checker.diags.push(eloc.diag(
                        Code::E020,
                        span,
                        format!("filter `{name}` needs {}, but the value is {}", need.name(), ty.name()),
                    ));
                    return None;
                }
                fmt = f;
            }
        }
        Some(Part::Var { ir, ty, fmt, default, words: Words::Code })
    }

    /// The template's own text, without its values (what every message it renders has).
    pub fn fixed_text(&self) -> String {
        self.parts.iter().filter_map(|p| if let Part::Lit(s) = p { Some(s.as_str()) } else { None }).collect()
    }

    pub fn render(&self, cx: &Ctx) -> String {
        // Room for the literal text and a short value per hole: one allocation, most times.
        let room = self.parts.iter().map(|p| if let Part::Lit(s) = p { s.len() } else { 16 }).sum();
        let mut out = String::with_capacity(room);
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var { ir, ty, fmt, default, words } => {
                    let v = cx.eval(ir);
                    if matches!(v, Value::Null) {
                        out.push_str(default.as_deref().unwrap_or(""));
                        continue;
                    }
                    // Untyped CRM attributes take the type the filter asks for.
                    let v = match v {
                        Value::Json(j) if j.is_i64() => Value::Int(j.as_i64().unwrap_or_default()),
                        v => v,
                    };
                    format_value(&mut out, &v, (*ty, *fmt, words), cx);
                }
            }
        }
        out
    }
}

fn cny(out: &mut String, fen: i64) {
    if fen < 0 {
        out.push('-');
    }
    let (yuan, cents) = (fen.unsigned_abs() / 100, fen.unsigned_abs() % 100);
    // The yuan's digits, then two of cents (as `write!(out, "{yuan}.{cents:02}")`).
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = yuan;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
    out.push('.');
    out.push(char::from(b'0' + (cents / 10) as u8));
    out.push(char::from(b'0' + (cents % 10) as u8));
}

// Dates and times written field by field, as chrono's `%Y-%m-%d`, `%-m月%-d日` and `%H:%M`
// write them: no format string read at each message (a year of more than four digits goes
// through chrono).
type Stamp = chrono::DateTime<chrono::FixedOffset>;

fn write_date(out: &mut String, t: &Stamp) {
    use chrono::Datelike;
    let _ = match t.year() {
        y @ 0..=9999 => write!(out, "{y:04}-{:02}-{:02}", t.month(), t.day()),
        _ => write!(out, "{}", t.format("%Y-%m-%d")),
    };
}

fn write_cn_date(out: &mut String, t: &Stamp) {
    use chrono::Datelike;
    let _ = write!(out, "{}月{}日", t.month(), t.day());
}

/// A calendar day written `YYYY-MM-DD` (no time, so no zone): its month and day.
fn json_day(s: &str) -> Option<(u32, u32)> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    digits(0..4)?;
    let (m, d) = (digits(5..7)?, digits(8..10)?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((m, d))
}

fn write_time(out: &mut String, t: &Stamp) {
    use chrono::Timelike;
    let _ = write!(out, "{:02}:{:02}", t.hour(), t.minute());
}

/// Writes a hole's value in its format (the hole's type, filter and words).
fn format_value(out: &mut String, v: &Value, (ty, fmt, words): (Ty, Fmt, &Words), cx: &Ctx) {
    use chrono::TimeZone;
    let time = |ms: i64| cx.offset.timestamp_millis_opt(ms).single();
    match (fmt, v) {
        (Fmt::Cny, Value::Int(n)) => cny(out, *n),
        (Fmt::Mask, Value::Str(s)) => out.push_str(&Msisdn::parse(s).map_or_else(|| s.to_string(), Msisdn::masked)),
        (Fmt::Store, Value::Str(id)) => out.push_str(cx.refdata.store_name(id).unwrap_or(id)),
        (Fmt::Store, Value::Json(serde_json::Value::String(id))) => {
            out.push_str(cx.refdata.store_name(id).unwrap_or(id))
        }
        // A CRM attribute's date (`"expires": "2026-11-30"`) or time (RFC 3339) in words too.
        (Fmt::Date | Fmt::CnDate | Fmt::Time, Value::Json(serde_json::Value::String(s))) => {
            match (fmt, json_day(s), crate::time::parse_ts(s).ok().and_then(time)) {
                (Fmt::CnDate, Some((m, d)), _) => {
                    let _ = write!(out, "{m}月{d}日");
                }
                (Fmt::Date, Some(_), _) => out.push_str(s),
                (Fmt::Date, None, Some(t)) => write_date(out, &t),
                (Fmt::CnDate, None, Some(t)) => write_cn_date(out, &t),
                (Fmt::Time, _, Some(t)) => write_time(out, &t),
                // Not a date after all: as written (validation cannot see inside CRM's JSON).
                _ => words.write(out, s),
            }
        }
        (Fmt::Date, Value::Int(ms)) => time(*ms).into_iter().for_each(|t| write_date(out, &t)),
        (Fmt::CnDate, Value::Int(ms)) => time(*ms).into_iter().for_each(|t| write_cn_date(out, &t)),
        (Fmt::Time, Value::Int(ms)) => time(*ms).into_iter().for_each(|t| write_time(out, &t)),
        (Fmt::Minutes, Value::Int(ms)) => {
            let _ = write!(out, "{}", ms / 60_000);
        }
        (_, Value::Int(n)) => match ty {
            Ty::Money => cny(out, *n),
            Ty::Duration => out.push_str(&format_duration(*n)),
            Ty::Time => out.push_str(&time(*n).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M").to_string())),
            _ => {
                let _ = write!(out, "{n}");
            }
        },
        (_, Value::Str(s)) => words.write(out, s),
        (_, Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        (_, Value::Sym(i)) => match (words, ty) {
            (Words::Sym(w), _) => out.push_str(w.get(*i as usize).map_or("", |w| w)),
            (_, Ty::Sym(t)) => out.push_str(t.names().get(*i as usize).copied().unwrap_or("")),
            _ => {}
        },
        (_, Value::List(items, vocab)) => {
            for (k, name) in vocab.names_of(items).into_iter().enumerate() {
                if k > 0 {
                    out.push('、');
                }
                words.write(out, name);
            }
        }
        (_, Value::Tags(tags)) => {
            for (k, t) in tags.iter().enumerate() {
                if k > 0 {
                    out.push('、');
                }
                words.write(out, cx.refdata.tag_name(*t));
            }
        }
        (_, Value::Json(j)) => match j {
            serde_json::Value::String(s) => words.write(out, s),
            other => {
                let _ = write!(out, "{other}");
            }
        },
        (_, Value::Null) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{Stamp, write_cn_date, write_date, write_time};
    use crate::event::{Decoder, Event};
    use crate::refdata::{Names, Profile, RefData, SubscriberRecord};
    use crate::rules::eval::Scene;
    use crate::rules::expr::Local;
    use crate::rules::{LoadOptions, RuleSet, compile};
    use crate::state::SubState;

    /// A pack with a dictionary and one rule per template (`t0`, `t1`, ...), on usage events,
    /// or on crm events for a template that reads `event.attrs`.
    fn pack(dictionary: &str, templates: &[&str]) -> RuleSet {
        let mut src = dictionary.to_string();
        for (i, t) in templates.iter().enumerate() {
            let on = if t.contains("event.attrs") { "crm" } else { "usage" };
            src.push_str(&format!(
                "- rule: t{i}\n  on: [{on}]\n  condition: \"true\"\n  action: {{ channel: sms, template: \"{t}\" }}\n"
            ));
        }
        let loaded = compile(vec![("t.yaml".into(), src)], None, &LoadOptions::default());
        assert_eq!(loaded.errors(), 0, "{:?}", loaded.diagnostics);
        loaded.rules.expect("a rule set")
    }

    fn event(line: &str) -> Event {
        let line = format!(r#"{{"ts":"2026-11-24T10:00:00+08:00","msisdn":"13800138000",{line}}}"#);
        Decoder::default().decode(line.as_bytes(), "t", 1).expect("a line").expect("an event")
    }

    /// Each rule's text for a subscriber with services and in a cell with tags (a rule on
    /// another kind of event renders nothing where the event has its fields).
    fn render(set: &RuleSet, ev: &Event) -> Vec<String> {
        let mut refdata = RefData::default();
        refdata.add_cell("c1", "西站", 0.0, 0.0, &["railway_station".to_string(), "downtown".to_string()]);
        let mut names = Names::default();
        let mut rec = SubscriberRecord::unknown(ev.msisdn);
        rec.services = vec!["weather".into(), "12593".into()];
        let sub = Profile::new(&rec, true, &mut names);
        let mut state = SubState::default();
        state.begin(ev.ts, None);
        state.move_to(Some("c1"), ev.ts, &refdata);
        let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("an offset");
        let local = Local::at(ev.ts, offset);
        let scene = Scene { event: Some(ev), now: ev.ts, local, refdata: &refdata, names: &names, offset };
        let cx = scene.ctx_of(&sub, &state);
        set.rules.iter().map(|r| r.template.as_ref().expect("a template").render(&cx)).collect()
    }

    fn usage() -> Event {
        event(r#""kind":"usage","service":"data","direction":"mo","scope":"long_distance","volume_kb":1"#)
    }

    #[test]
    fn dates_and_times_are_written_as_chrono_formats_them() {
        use chrono::TimeZone;
        let cn = chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00");
        let days = [-800_000i64, -1, 0, 1, 19_000, 20_000, 20_416, 2_932_000, 2_933_000, 3_000_000];
        for ms in days.iter().flat_map(|d| [0, 59_999, 3_600_000 * 15 + 61_000].map(|o| d * 86_400_000 + o)) {
            let Some(t) = cn.timestamp_millis_opt(ms).single() else { continue };
            for (write, fmt) in [
                (write_date as fn(&mut String, &Stamp), "%Y-%m-%d"),
                (write_cn_date, "%-m月%-d日"),
                (write_time, "%H:%M"),
            ] {
                let mut out = String::new();
                write(&mut out, &t);
                assert_eq!(out, t.format(fmt).to_string(), "{ms} as {fmt}");
            }
        }
    }

    #[test]
    fn cny_writes_yuan_and_two_digits_of_fen() {
        for fen in [0i64, 5, 99, 100, 1234, -1, -1234, 1_000_000_007, i64::MIN, i64::MAX] {
            let mut out = String::new();
            super::cny(&mut out, fen);
            let sign = if fen < 0 { "-" } else { "" };
            assert_eq!(out, format!("{sign}{}.{:02}", fen.unsigned_abs() / 100, fen.unsigned_abs() % 100));
        }
    }

    #[test]
    fn a_chinese_template_writes_codes_as_words_and_code_keeps_the_code() {
        let set = pack("", &["您的{event.service}业务（{event.service|code}），{event.scope}通话", "{event.service}"]);
        assert_eq!(render(&set, &usage()), ["您的数据流量业务（data），长途通话", "data"]);
    }

    #[test]
    fn an_english_template_writes_codes() {
        let set = pack("", &["Your {event.service} use ({event.scope}) of {event.volume_kb} KB"]);
        assert_eq!(render(&set, &usage()), ["Your data use (long_distance) of 1 KB"]);
    }

    #[test]
    fn a_pack_word_wins_over_the_built_in_one_and_words_crm_attributes() {
        let dict =
            "- dictionary:\n    data: 上网流量\n    gold: 金卡\n- dictionary:\n    \"3.1\": 话费查询\n    gold: 金卡\n";
        let set =
            pack(dict, &["{event.service}", "您的{event.service}业务", "升级为{event.attrs.to}，{event.attrs.node}"]);
        assert_eq!(render(&set, &usage())[..2], ["data", "您的上网流量业务"]);
        let crm = event(r#""kind":"crm","event":"tier_changed","attrs":{"to":"gold","node":"3.1"}"#);
        assert_eq!(render(&set, &crm)[2], "升级为金卡，话费查询");
        // An attribute without a word stays as it is; a number is never a code.
        let crm = event(r#""kind":"crm","event":"tier_changed","attrs":{"to":"platinum","node":31}"#);
        assert_eq!(render(&set, &crm)[2], "升级为platinum，31");
    }

    #[test]
    fn a_crm_attributes_date_is_written_in_words_by_the_date_filters() {
        let set = pack(
            "",
            &[
                "{event.attrs.day|cn_date}",
                "{event.attrs.day|date}",
                "{event.attrs.at|cn_date} {event.attrs.at|time} {event.attrs.at|date}",
                "{event.attrs.odd|cn_date}，{event.attrs.none|cn_date|default:近期}",
            ],
        );
        // 16:30 UTC on the 30th is the 1st of December in +08:00: a time is read in the pack's zone.
        let crm = event(
            r#""kind":"crm","event":"points_expiring","attrs":{"day":"2026-11-30","at":"2026-11-30T16:30:00Z","odd":"2026-13-01"}"#,
        );
        assert_eq!(render(&set, &crm), ["11月30日", "2026-11-30", "12月1日 00:30 2026-12-01", "2026-13-01，近期"]);
    }

    #[test]
    fn list_items_and_tags_are_written_as_words_each() {
        let dict = "- dictionary:\n    weather: 天气预报\n    railway_station: 火车站\n";
        let set =
            pack(dict, &["您已开通：{subscriber.services}；您在{cell.tags}", "{subscriber.services} {cell.tags}"]);
        assert_eq!(
            render(&set, &usage()),
            ["您已开通：12593、天气预报；您在火车站、downtown", "12593、weather railway_station、downtown"]
        );
    }
}
