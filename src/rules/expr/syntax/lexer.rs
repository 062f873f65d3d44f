//! The lexer: condition text -> tokens with byte spans. Numbers take their unit here (`30d`,
//! `10CNY`, `500fen`), so a duration or an amount is one token with its value exact.

use super::{Span, SyntaxError, err};
use std::fmt;

/// A token of the condition language.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    Int(i64),
    /// Decimal literal kept as text (only money may have decimals).
    Decimal(String),
    /// Milliseconds.
    Duration(i64),
    /// Fen.
    Money(i64),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Int(n) => write!(f, "`{n}`"),
            Tok::Decimal(s) => write!(f, "`{s}`"),
            Tok::Duration(_) => f.write_str("a duration"),
            Tok::Money(_) => f.write_str("an amount"),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::LBracket => f.write_str("`[`"),
            Tok::RBracket => f.write_str("`]`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Dot => f.write_str("`.`"),
            Tok::Eq => f.write_str("`==`"),
            Tok::Ne => f.write_str("`!=`"),
            Tok::Lt => f.write_str("`<`"),
            Tok::Le => f.write_str("`<=`"),
            Tok::Gt => f.write_str("`>`"),
            Tok::Ge => f.write_str("`>=`"),
            Tok::Plus => f.write_str("`+`"),
            Tok::Minus => f.write_str("`-`"),
            Tok::Star => f.write_str("`*`"),
            Tok::Slash => f.write_str("`/`"),
            Tok::Percent => f.write_str("`%`"),
            Tok::Eof => f.write_str("the end of the condition"),
        }
    }
}

/// The tokens of a condition, ending with [`Tok::Eof`] (the first error ends the lexing).
pub fn lex(src: &str) -> Result<Vec<(Tok, Span)>, SyntaxError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let sp = |end: usize| Span { start, end };
        if let Some(t) = single(c) {
            i += 1;
            out.push((t, sp(i)));
            continue;
        }
        let next_is_eq = b.get(i + 1) == Some(&b'=');
        let tok = match c {
            b'=' | b'!' | b'<' | b'>' if next_is_eq => {
                i += 2;
                match c {
                    b'=' => Tok::Eq,
                    b'!' => Tok::Ne,
                    b'<' => Tok::Le,
                    _ => Tok::Ge,
                }
            }
            b'<' | b'>' => {
                i += 1;
                if c == b'<' { Tok::Lt } else { Tok::Gt }
            }
            b'=' | b'!' | b'&' | b'|' => {
                let hint = match c {
                    b'=' => "compare with `==`",
                    b'!' => "negate with `not`",
                    _ => "use `and` / `or`",
                };
                return Err(SyntaxError {
                    span: sp(i + 1),
                    message: format!("`{}` is not an operator", c as char),
                    hint: Some(hint.into()),
                });
            }
            b'"' | b'\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(err(sp(b.len()), "unterminated string")),
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            match b.get(i + 1) {
                                Some(b'n') => s.push('\n'),
                                Some(b't') => s.push('\t'),
                                Some(&e) if e == b'\\' || e == b'"' || e == b'\'' => s.push(e as char),
                                _ => {
                                    // The backslash and the character after it, if any (whole).
                                    let next = src[i + 1..].chars().next().map_or(0, char::len_utf8);
                                    return Err(err(Span { start: i, end: i + 1 + next }, "unknown escape in string"));
                                }
                            }
                            i += 2;
                        }
                        Some(_) => {
                            let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                Tok::Str(s)
            }
            b'0'..=b'9' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let mut decimal = false;
                if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                    decimal = true;
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                let num = &src[start..i];
                // A unit glued to the number: 30d, 1h30m, 10CNY, 500fen.
                if i < b.len() && b[i].is_ascii_alphabetic() {
                    while i < b.len() && b[i].is_ascii_alphanumeric() {
                        i += 1;
                    }
                    let text = &src[start..i];
                    let unit = &src[start + num.len()..i];
                    if let Some(m) = money_units(unit) {
                        money(num, m).ok_or_else(|| err(sp(i), format!("amount `{text}` is out of range")))?
                    } else if decimal {
                        return Err(err(sp(i), format!("`{text}`: only money amounts may have decimals")));
                    } else {
                        Tok::Duration(crate::time::parse_duration(text).map_err(|e| SyntaxError {
                            span: sp(i),
                            message: e,
                            hint: Some("durations are written 30s, 15m, 4h, 30d; money as 10 CNY or 500 fen".into()),
                        })?)
                    }
                } else if decimal {
                    Tok::Decimal(num.to_string())
                } else {
                    Tok::Int(num.parse().map_err(|_| err(sp(i), "number too large"))?)
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                Tok::Ident(src[start..i].to_string())
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(Span { start: i, end: i + ch.len_utf8() }, format!("unexpected character `{ch}`")));
            }
        };
        out.push((tok, sp(i)));
    }
    out.push((Tok::Eof, Span { start: b.len(), end: b.len() }));
    Ok(out)
}

/// Tokens of one character.
fn single(c: u8) -> Option<Tok> {
    Some(match c {
        b'(' => Tok::LParen,
        b')' => Tok::RParen,
        b'[' => Tok::LBracket,
        b']' => Tok::RBracket,
        b',' => Tok::Comma,
        b'.' => Tok::Dot,
        b'+' => Tok::Plus,
        b'-' => Tok::Minus,
        b'*' => Tok::Star,
        b'/' => Tok::Slash,
        b'%' => Tok::Percent,
        _ => return None,
    })
}

/// Fen per unit for money units.
pub fn money_units(unit: &str) -> Option<i64> {
    match unit {
        "CNY" | "cny" | "yuan" => Some(100),
        "fen" => Some(1),
        _ => None,
    }
}

/// `num` (integer or decimal text) times `per` fen, exact to the fen.
pub(super) fn money(num: &str, per: i64) -> Option<Tok> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: i64 = int.parse().ok()?;
    let mut fen = int.checked_mul(per)?;
    if !frac.is_empty() {
        if per != 100 || frac.len() > 2 {
            return None;
        }
        let f: i64 = frac.parse().ok()?;
        fen = fen.checked_add(if frac.len() == 1 { f * 10 } else { f })?;
    }
    Some(Tok::Money(fen))
}
