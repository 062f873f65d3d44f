//! The syntax tree of a condition: nodes with the byte span of the text they came from, so the
//! checker can point at the exact character of a mistake.

/// Byte range in the expression text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub(super) fn to(self, other: Span) -> Span {
        Span { start: self.start, end: other.end.max(self.end) }
    }
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
