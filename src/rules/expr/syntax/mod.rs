//! Lexer and parser for conditions: text -> an untyped syntax tree with byte spans, in three
//! files as zen's expression crate has them: [`lexer`] (text -> tokens), [`parser`] (tokens ->
//! tree) and [`ast`] (the tree).
//!
//! Hand-written, precedence climbing: the grammar is small, and hand-written code gives the
//! precise, friendly messages operations staff need ("expected `)` to close `(` at 12").

mod ast;
mod lexer;
mod parser;

pub use ast::{Ast, BinOp, Node, Span};
pub use lexer::{Tok, lex, money_units};
pub use parser::{MAX_DEPTH, parse};

/// A condition that does not lex or parse: where, why, and a hint when a cheap one exists.
#[derive(Clone, Debug)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

fn err(span: Span, message: impl Into<String>) -> SyntaxError {
    SyntaxError { span, message: message.into(), hint: None }
}

impl SyntaxError {
    /// This error with `hint` when `cond` holds.
    fn hint_if(mut self, cond: bool, hint: &str) -> SyntaxError {
        if cond {
            self.hint = Some(hint.to_string());
        }
        self
    }
}
