//! The parser: tokens -> a syntax tree, by precedence climbing (`or` < `and` < `not` <
//! comparisons < `+ -` < `* / %` < unary minus < values and calls), with a depth limit so that
//! no condition can exhaust a thread's stack.

use super::lexer::{Tok, lex, money, money_units};
use super::{Ast, BinOp, Node, Span, SyntaxError, err};

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

/// Parses a condition into its syntax tree (the first error ends the parse).
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

    /// A left-associative chain `next (op next)*` of one precedence level; each operator takes
    /// the parse one level deeper.
    fn chain(
        &mut self,
        next: fn(&mut Self) -> Result<Node, SyntaxError>,
        op_of: fn(&Tok) -> Option<BinOp>,
    ) -> Result<Node, SyntaxError> {
        let mut l = next(self)?;
        let mut chain = 0;
        while let Some(op) = op_of(self.peek()) {
            self.bump();
            self.deeper()?;
            chain += 1;
            let r = next(self)?;
            l = bin(op, l, r);
        }
        self.depth -= chain;
        Ok(l)
    }

    fn or(&mut self) -> Result<Node, SyntaxError> {
        self.chain(Self::and, |t| is_kw(t, "or").then_some(BinOp::Or))
    }

    fn and(&mut self) -> Result<Node, SyntaxError> {
        self.chain(Self::not, |t| is_kw(t, "and").then_some(BinOp::And))
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
        if is_kw(self.peek(), "between") {
            return self.between(l);
        }
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

    /// `X between LOW and HIGH`, both ends included: a counting pattern reads as the operator
    /// says it (`count(usage where service == sms, 7d) between 2 and 5`). It is written out as
    /// `X >= LOW and X <= HIGH` here, so the checker and the evaluator need nothing new (the
    /// same aggregate is one slot however often it is read).
    fn between(&mut self, x: Node) -> Result<Node, SyntaxError> {
        let (_, kw) = self.bump();
        self.deeper()?;
        let lo = self.add()?;
        if !is_kw(self.peek(), "and") {
            self.depth -= 1;
            return Err(err(self.span(), format!("expected `and` after `between LOW`, found {}", self.peek()))
                .hint_if(true, "write `X between LOW and HIGH`, e.g. `count(usage, 7d) between 2 and 5`"));
        }
        self.bump();
        let hi = self.add()?;
        self.depth -= 1;
        if let (Ast::Int(a), Ast::Int(b)) = (&lo.ast, &hi.ast)
            && a > b
        {
            return Err(err(
                kw.to(hi.span),
                format!("`between {a} and {b}` can never hold: the low end is above the high end"),
            )
            .hint_if(true, &format!("write `between {b} and {a}`")));
        }
        if matches!(self.peek(), Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge)
            || is_kw(self.peek(), "between")
        {
            return Err(err(self.span(), "comparisons do not chain").hint_if(true, "join them with `and`"));
        }
        let span = x.span.to(hi.span);
        let ge = bin(BinOp::Ge, x.clone(), lo);
        let le = bin(BinOp::Le, x, hi);
        Ok(Node { ast: Ast::Binary(BinOp::And, Box::new(ge), Box::new(le)), span })
    }

    fn add(&mut self) -> Result<Node, SyntaxError> {
        self.chain(Self::mul, |t| match t {
            Tok::Plus => Some(BinOp::Add),
            Tok::Minus => Some(BinOp::Sub),
            _ => None,
        })
    }

    fn mul(&mut self) -> Result<Node, SyntaxError> {
        self.chain(Self::unary, |t| match t {
            Tok::Star => Some(BinOp::Mul),
            Tok::Slash => Some(BinOp::Div),
            Tok::Percent => Some(BinOp::Rem),
            _ => None,
        })
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

    #[test]
    fn between_is_both_comparisons_and_its_misuse_is_located() {
        let n = parse("count(usage, 7d) between 2 and 5 and x == 1").unwrap();
        let Ast::Binary(BinOp::And, l, _) = &n.ast else { panic!("{n:?}") };
        let Ast::Binary(BinOp::And, ge, le) = &l.ast else { panic!("{l:?}") };
        assert!(matches!(&ge.ast, Ast::Binary(BinOp::Ge, _, r) if matches!(r.ast, Ast::Int(2))), "{ge:?}");
        assert!(matches!(&le.ast, Ast::Binary(BinOp::Le, _, r) if matches!(r.ast, Ast::Int(5))), "{le:?}");
        assert_eq!((l.span.start, l.span.end), (0, 32));
        let e = parse("count(usage, 7d) between 2 or 5").unwrap_err();
        assert_eq!(e.span.start, 27);
        assert!(e.message.contains("expected `and` after `between LOW`"), "{}", e.message);
        let e = parse("count(usage, 7d) between 5 and 2").unwrap_err();
        assert_eq!((e.span.start, e.hint.as_deref()), (17, Some("write `between 2 and 5`")));
        assert!(parse("x between 1 and 2 between 3 and 4").is_err());
        assert!(parse("x between 1 and 2 < 3").is_err());
    }
}
