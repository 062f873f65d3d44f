//! A YAML tree that remembers where every node came from.
//!
//! serde_yaml forgets positions once a value is deserialized, and diagnostics must point at the
//! exact character of a rule file (`file:line:col`), including a character inside a condition
//! string. So rule files are read with yaml-rust2's event parser into this small tree of
//! marked nodes, and expression offsets are mapped back to file positions through [`Node::pos_at`].

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column (in characters) in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Debug)]
pub enum Node {
    Scalar { value: String, style: TScalarStyle, pos: Pos },
    Seq { items: Vec<Node>, pos: Pos },
    Map { entries: Vec<(Node, Node)>, pos: Pos },
}

impl Node {
    pub fn pos(&self) -> Pos {
        match self {
            Node::Scalar { pos, .. } | Node::Seq { pos, .. } | Node::Map { pos, .. } => *pos,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// A plain scalar that YAML would read as null (`~`, `null`, or nothing).
    pub fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { value, style: TScalarStyle::Plain, .. } if value.is_empty() || value == "~" || value == "null")
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Node::Scalar { .. } => "a scalar",
            Node::Seq { .. } => "a list",
            Node::Map { .. } => "a mapping",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map { entries, .. } => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Maps a byte offset inside this scalar's value to its position in the file.
    ///
    /// Works for plain, quoted and block scalars as long as escapes do not change lengths
    /// (true of conditions and templates in practice): the value is the sequence of each
    /// source line's content, joined by one separator character.
    pub fn pos_at(&self, source: &str, byte_offset: usize) -> Pos {
        let Node::Scalar { value, style, pos } = self else { return self.pos() };
        let char_offset = value.get(..byte_offset.min(value.len())).map_or(0, |s| s.chars().count());
        let lines: Vec<&str> = lines(source).collect();
        let quoted = matches!(style, TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted);
        let block = matches!(style, TScalarStyle::Literal | TScalarStyle::Folded);
        // pos.col is 1-based; the first content character.
        let mut line = pos.line;
        let mut col = pos.col + usize::from(quoted);
        let mut remaining = char_offset;
        loop {
            let Some(text) = line.checked_sub(1).and_then(|l| lines.get(l)) else { return Pos { line, col } };
            let len = text.chars().count().saturating_sub(col.saturating_sub(1));
            if remaining <= len || line >= lines.len() {
                // A folded scalar's text is not the source's: never point past the line's end.
                return Pos { line, col: (col + remaining).min(text.chars().count() + 1) };
            }
            remaining -= len + 1;
            line += 1;
            let next = lines.get(line - 1).copied().unwrap_or("");
            col = if block { pos.col } else { next.chars().take_while(|c| *c == ' ').count() + 1 };
        }
    }
}

/// The lines of a YAML text as YAML counts them: a line ends at `\r\n`, `\n` or a lone `\r`
/// (`str::lines` keeps a lone `\r` inside its line, and positions would drift by a line).
pub fn lines(source: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(source);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            Some(i) => {
                let after = if s[i..].starts_with("\r\n") { i + 2 } else { i + 1 };
                rest = Some(&s[after..]).filter(|r| !r.is_empty());
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s).filter(|s| !s.is_empty())
            }
        }
    })
}

/// A YAML syntax error with its position.
#[derive(Debug)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

struct Builder {
    stack: Vec<Node>,
    keys: Vec<Option<Node>>,
    docs: Vec<Node>,
}

fn to_pos(m: Marker) -> Pos {
    Pos { line: m.line(), col: m.col() + 1 }
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(Node::Seq { items, .. }) => items.push(node),
            Some(Node::Map { entries, .. }) => {
                let slot = self.keys.last_mut().expect("a key slot for every open mapping");
                match slot.take() {
                    None => *slot = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
            _ => self.docs.push(node),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, m: Marker) {
        match ev {
            Event::Scalar(value, style, _, _) => self.push_value(Node::Scalar { value, style, pos: to_pos(m) }),
            Event::SequenceStart(..) => self.stack.push(Node::Seq { items: Vec::new(), pos: to_pos(m) }),
            Event::MappingStart(..) => {
                self.stack.push(Node::Map { entries: Vec::new(), pos: to_pos(m) });
                self.keys.push(None);
            }
            Event::SequenceEnd => {
                if let Some(n) = self.stack.pop() {
                    self.push_value(n);
                }
            }
            Event::MappingEnd => {
                self.keys.pop();
                if let Some(mut n) = self.stack.pop() {
                    // A block mapping "starts" at its first key, which is where a reader looks.
                    if let Node::Map { entries, pos } = &mut n {
                        if let Some((k, _)) = entries.first() {
                            *pos = k.pos();
                        }
                    }
                    self.push_value(n);
                }
            }
            // Aliases are not supported in rule files (lists and macros do that job); they read as null.
            Event::Alias(_) => {
                self.push_value(Node::Scalar { value: String::new(), style: TScalarStyle::Plain, pos: to_pos(m) })
            }
            _ => {}
        }
    }
}

/// Parses a YAML text into its documents (a rule file has one: a list of items).
pub fn parse(source: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut b = Builder { stack: Vec::new(), keys: Vec::new(), docs: Vec::new() };
    let mut parser = Parser::new_from_str(source);
    parser.load(&mut b, true).map_err(|e| SyntaxError {
        pos: Pos { line: e.marker().line(), col: e.marker().col() + 1 },
        message: e.info().to_string(),
    })?;
    Ok(b.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_inside_block_and_quoted_scalars() {
        let src = "- rule: x\n  condition: >\n    a and\n    bb == 1\n  t: \"x {y}\"\n";
        let docs = parse(src).unwrap();
        let Node::Seq { items, .. } = &docs[0] else { panic!() };
        let cond = items[0].get("condition").unwrap();
        assert_eq!(cond.as_str().unwrap(), "a and bb == 1\n");
        assert_eq!(cond.pos_at(src, 0), Pos { line: 3, col: 5 });
        assert_eq!(cond.pos_at(src, 6), Pos { line: 4, col: 5 });
        assert_eq!(cond.pos_at(src, 9), Pos { line: 4, col: 8 });
        let t = items[0].get("t").unwrap();
        assert_eq!(t.pos_at(src, 2), Pos { line: 5, col: 9 });
    }
}
