//! Lexer and parser for conditions: text -> an untyped syntax tree with byte spans.
//!
//! A hand-written precedence-climbing parser: the grammar is small, and hand-written code gives
//! the precise, friendly messages operations staff need ("expected `)` to close `(` at 12").

use std::fmt;

/// Byte range in the expression text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    fn to(self, other: Span) -> Span {
        Span { start: self.start, end: other.end.max(self.end) }
    }
}

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

#[derive(Clone, Debug)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

fn err(span: Span, message: impl Into<String>) -> SyntaxError {
    SyntaxError { span, message: message.into(), hint: None }
}

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
fn money(num: &str, per: i64) -> Option<Tok> {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Intersects,
    StartsWith,
    EndsWith,
    Contains,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub fn text(self) -> &'static str {
        match self {
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
            BinOp::Intersects => "intersects",
            BinOp::StartsWith => "startswith",
            BinOp::EndsWith => "endswith",
            BinOp::Contains => "contains",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

#[derive(Clone, Debug)]
pub enum Ast {
    Int(i64),
    Money(i64),
    Duration(i64),
    Str(String),
    Bool(bool),
    Null,
    /// A dotted name: `event.scope`, `low_balance`, `voice`.
    Path(Vec<(String, Span)>),
    Call(String, Vec<Node>),
    /// `(a, b, c)` or `[a, b, c]`.
    Tuple(Vec<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    /// `KIND where CONDITION` inside aggregate and sequence calls.
    Where(Box<Node>, Box<Node>),
    /// `within DURATION` inside `seq(...)`.
    Within(Box<Node>),
}

#[derive(Clone, Debug)]
pub struct Node {
    pub ast: Ast,
    pub span: Span,
}

/// How deep a condition's syntax tree may be: far more than any condition an operator writes,
/// and shallow enough that checking, evaluating and dropping it never exhausts a thread's stack
/// (an engine thread has 2 MiB; a 100,000-deep `((((...` used to abort the process).
pub const MAX_DEPTH: usize = 100;

struct Parser {
    toks: Vec<(Tok, Span)>,
    i: usize,
    /// Depth of the tree being built: nesting plus the length of the operator chains above.
    depth: usize,
}

pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, i: 0, depth: 0 };
    if p.peek() == &Tok::Eof {
        return Err(err(p.span(), "empty condition"));
    }
    let e = p.expr()?;
    if p.peek() != &Tok::Eof {
        return Err(err(p.span(), format!("unexpected {} after a complete condition", p.peek()))
            .hint_if(matches!(p.peek(), Tok::Ident(_) | Tok::Str(_)), "join conditions with `and` / `or`"));
    }
    Ok(e)
}

impl SyntaxError {
    fn hint_if(mut self, cond: bool, hint: &str) -> SyntaxError {
        if cond {
            self.hint = Some(hint.to_string());
        }
        self
    }
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(s) if s == kw)
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].0
    }
    fn peek2(&self) -> &Tok {
        &self.toks[(self.i + 1).min(self.toks.len() - 1)].0
    }
    fn span(&self) -> Span {
        self.toks[self.i].1
    }
    fn bump(&mut self) -> (Tok, Span) {
        let t = self.toks[self.i].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn expect(&mut self, t: Tok, open: Option<Span>) -> Result<Span, SyntaxError> {
        if *self.peek() == t {
            return Ok(self.bump().1);
        }
        let mut e = err(self.span(), format!("expected {t}, found {}", self.peek()));
        if let Some(o) = open {
            e.hint = Some(format!("to close the bracket opened at offset {}", o.start + 1));
        }
        Err(e)
    }

    fn expr(&mut self) -> Result<Node, SyntaxError> {
        self.or()
    }

    /// One level deeper; an error past [`MAX_DEPTH`]. Callers leave with `self.depth -= n` on
    /// success (an error ends the parse, so the count no longer matters then).
    fn deeper(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(self.span(), format!("condition nested too deeply (more than {MAX_DEPTH} levels)"))
                .hint_if(true, "split it into macros"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, SyntaxError> {
        let mut l = self.and()?;
        let mut chain = 0;
        while is_kw(self.peek(), "or") {
            self.bump();
            self.deeper()?;
            chain += 1;
            let r = self.and()?;
            l = bin(BinOp::Or, l, r);
        }
        self.depth -= chain;
        Ok(l)
    }

    fn and(&mut self) -> Result<Node, SyntaxError> {
        let mut l = self.not()?;
        let mut chain = 0;
        while is_kw(self.peek(), "and") {
            self.bump();
            self.deeper()?;
            chain += 1;
            let r = self.not()?;
            l = bin(BinOp::And, l, r);
        }
        self.depth -= chain;
        Ok(l)
    }

    fn not(&mut self) -> Result<Node, SyntaxError> {
        if is_kw(self.peek(), "not") {
            let (_, s) = self.bump();
            self.deeper()?;
            let inner = self.not()?;
            self.depth -= 1;
            let span = s.to(inner.span);
            return Ok(Node { ast: Ast::Not(Box::new(inner)), span });
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Node, SyntaxError> {
        let l = self.add()?;
        let op = match self.peek() {
            Tok::Eq => BinOp::Eq,
            Tok::Ne => BinOp::Ne,
            Tok::Lt => BinOp::Lt,
            Tok::Le => BinOp::Le,
            Tok::Gt => BinOp::Gt,
            Tok::Ge => BinOp::Ge,
            t if is_kw(t, "in") => BinOp::In,
            t if is_kw(t, "not") && is_kw(self.peek2(), "in") => {
                self.bump();
                BinOp::NotIn
            }
            t if is_kw(t, "intersects") => BinOp::Intersects,
            t if is_kw(t, "startswith") => BinOp::StartsWith,
            t if is_kw(t, "endswith") => BinOp::EndsWith,
            t if is_kw(t, "contains") => BinOp::Contains,
            _ => return Ok(l),
        };
        self.bump();
        self.deeper()?;
        let r = self.add()?;
        self.depth -= 1;
        if matches!(self.peek(), Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge) {
            return Err(err(self.span(), "comparisons do not chain").hint_if(true, "write `a < b and b < c`"));
        }
        Ok(bin(op, l, r))
    }

    fn add(&mut self) -> Result<Node, SyntaxError> {
        let mut l = self.mul()?;
        let mut chain = 0;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => {
                    self.depth -= chain;
                    return Ok(l);
                }
            };
            self.bump();
            self.deeper()?;
            chain += 1;
            let r = self.mul()?;
            l = bin(op, l, r);
        }
    }

    fn mul(&mut self) -> Result<Node, SyntaxError> {
        let mut l = self.unary()?;
        let mut chain = 0;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Rem,
                _ => {
                    self.depth -= chain;
                    return Ok(l);
                }
            };
            self.bump();
            self.deeper()?;
            chain += 1;
            let r = self.unary()?;
            l = bin(op, l, r);
        }
    }

    fn unary(&mut self) -> Result<Node, SyntaxError> {
        if *self.peek() == Tok::Minus {
            let (_, s) = self.bump();
            self.deeper()?;
            let inner = self.unary()?;
            self.depth -= 1;
            let span = s.to(inner.span);
            return Ok(Node { ast: Ast::Neg(Box::new(inner)), span });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, SyntaxError> {
        let (tok, span) = self.bump();
        let node = |ast| Ok(Node { ast, span });
        match tok {
            Tok::Int(n) => {
                if let Tok::Ident(u) = self.peek().clone() {
                    if let Some(per) = money_units(&u) {
                        let (_, us) = self.bump();
                        let fen = n.checked_mul(per).ok_or_else(|| err(span.to(us), "amount out of range"))?;
                        return Ok(Node { ast: Ast::Money(fen), span: span.to(us) });
                    }
                }
                node(Ast::Int(n))
            }
            Tok::Decimal(text) => {
                if let Tok::Ident(u) = self.peek().clone() {
                    if let Some(per) = money_units(&u) {
                        let (_, us) = self.bump();
                        if let Some(Tok::Money(fen)) = money(&text, per) {
                            return Ok(Node { ast: Ast::Money(fen), span: span.to(us) });
                        }
                        return Err(err(span.to(us), format!("`{text} {u}` is not an amount to the fen")));
                    }
                }
                Err(SyntaxError {
                    span,
                    message: format!("`{text}`: only money amounts may have decimals"),
                    hint: Some(format!("write `{text} CNY`")),
                })
            }
            Tok::Money(fen) => node(Ast::Money(fen)),
            Tok::Duration(ms) => node(Ast::Duration(ms)),
            Tok::Str(s) => node(Ast::Str(s)),
            Tok::LParen | Tok::LBracket => {
                let close = if tok == Tok::LParen { Tok::RParen } else { Tok::RBracket };
                let mut items = vec![];
                if *self.peek() == close {
                    let end = self.bump().1;
                    return Ok(Node { ast: Ast::Tuple(items), span: span.to(end) });
                }
                self.deeper()?;
                loop {
                    items.push(self.expr()?);
                    if *self.peek() == Tok::Comma {
                        self.bump();
                        continue;
                    }
                    break;
                }
                self.depth -= 1;
                let end = self.expect(close.clone(), Some(span))?;
                let span = span.to(end);
                if items.len() == 1 && close == Tok::RParen {
                    let mut inner = items.pop().expect("one item");
                    inner.span = span;
                    return Ok(inner);
                }
                Ok(Node { ast: Ast::Tuple(items), span })
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => node(Ast::Bool(true)),
                "false" => node(Ast::Bool(false)),
                "null" => node(Ast::Null),
                "and" | "or" | "in" | "where" | "within" | "intersects" | "startswith" | "endswith" | "contains" => {
                    Err(err(span, format!("expected a value, found `{name}`")))
                }
                _ if *self.peek() == Tok::LParen => self.call(name, span),
                _ => {
                    let mut segs = vec![(name, span)];
                    let mut full = span;
                    while *self.peek() == Tok::Dot {
                        self.bump();
                        match self.bump() {
                            (Tok::Ident(s), sp) => {
                                full = full.to(sp);
                                segs.push((s, sp));
                            }
                            (t, sp) => return Err(err(sp, format!("expected a field name after `.`, found {t}"))),
                        }
                    }
                    Ok(Node { ast: Ast::Path(segs), span: full })
                }
            },
            t => Err(err(span, format!("expected a value, found {t}"))),
        }
    }

    fn call(&mut self, name: String, span: Span) -> Result<Node, SyntaxError> {
        let open = self.bump().1;
        let mut args = vec![];
        // Two levels: the call, and the `where` / `within` node an argument may become.
        self.deeper()?;
        self.deeper()?;
        if *self.peek() != Tok::RParen {
            loop {
                if is_kw(self.peek(), "within") {
                    let (_, ws) = self.bump();
                    let d = self.expr()?;
                    let sp = ws.to(d.span);
                    args.push(Node { ast: Ast::Within(Box::new(d)), span: sp });
                } else {
                    let a = self.expr()?;
                    if is_kw(self.peek(), "where") {
                        self.bump();
                        let f = self.expr()?;
                        let sp = a.span.to(f.span);
                        args.push(Node { ast: Ast::Where(Box::new(a), Box::new(f)), span: sp });
                    } else {
                        args.push(a);
                    }
                }
                if *self.peek() == Tok::Comma {
                    self.bump();
                    continue;
                }
                break;
            }
        }
        self.depth -= 2;
        let end = self.expect(Tok::RParen, Some(open))?;
        Ok(Node { ast: Ast::Call(name, args), span: span.to(end) })
    }
}

fn bin(op: BinOp, l: Node, r: Node) -> Node {
    let span = l.span.to(r.span);
    Node { ast: Ast::Binary(op, Box::new(l), Box::new(r)), span }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_design_examples() {
        parse("entered(cell.tags, travel_hubs) and subscriber.tier == high and low_balance and not \"call_notify\" in subscriber.services").unwrap();
        parse("event.service == voice and event.scope in (long_distance, roaming_domestic) and count(usage where scope in (long_distance, roaming_domestic), 30d) >= 3").unwrap();
        parse("seq(ivr where step == menu and node startswith \"3\", ivr where step == agent, within 60s)").unwrap();
        parse("subscriber.balance < 10.5 CNY and x < 500fen").unwrap();
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("a == 1 b").unwrap_err();
        assert_eq!(e.span.start, 7);
        let e = parse("count(usage, 30d").unwrap_err();
        assert!(e.message.contains("expected `)`"), "{}", e.message);
        let e = parse("a = 1").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("compare with `==`"));
        assert!(parse("x > 3parsecs").is_err());
    }
}
