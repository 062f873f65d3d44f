//! A YAML tree that remembers where every node came from.
//!
//! serde_yaml forgets positions once a value is deserialized, and diagnostics must point at the
//! exact character of a rule file (`file:line:col`), including a character inside a condition
//! string. So rule files are read with yaml-rust2's event parser into this small tree of
//! marked nodes, and expression offsets are mapped back to file positions through [`Node::pos_at`].

use yaml_rust2::parser::{Event, Parser};
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

    /// The node as one line of text, every scalar's whitespace collapsed (`{value: a - b, for:
    /// [x, y]}`): what it says, whatever its layout, to tell whether two versions differ.
    pub fn words(&self) -> String {
        match self {
            Node::Scalar { value, .. } => value.split_whitespace().collect::<Vec<_>>().join(" "),
            Node::Seq { items, .. } => format!("[{}]", items.iter().map(Node::words).collect::<Vec<_>>().join(", ")),
            Node::Map { entries, .. } => {
                let kv: Vec<String> = entries.iter().map(|(k, v)| format!("{}: {}", k.words(), v.words())).collect();
                format!("{{{}}}", kv.join(", "))
            }
        }
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
        let index = super::lines::index(source);
        let nth = |n: usize| index.line(source, n);
        let quoted = matches!(style, TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted);
        let block = matches!(style, TScalarStyle::Literal | TScalarStyle::Folded);
        // pos.col is 1-based; the first content character.
        let mut line = pos.line;
        let mut col = pos.col + usize::from(quoted);
        let mut remaining = char_offset;
        loop {
            let Some(text) = nth(line) else { return Pos { line, col } };
            let len = text.chars().count().saturating_sub(col.saturating_sub(1));
            if remaining <= len || line >= index.count() {
                // A folded scalar's text is not the source's: never point past the line's end.
                return Pos { line, col: (col + remaining).min(text.chars().count() + 1) };
            }
            remaining -= len + 1;
            line += 1;
            let next = nth(line).unwrap_or("");
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

/// How deep collections may nest in a rule or test file. A real rule nests five or six levels
/// (list, item, policy, quiet_hours, ...), a test case eight; 64 leaves room for anything
/// written by hand. The limit is what keeps a hostile file (`- - - - ... x`, 10 KB for 5,000
/// levels) from exhausting a thread's stack: yaml-rust2's own loader recurses once per level, and
/// so do dropping and cloning a tree. Here events are taken one at a time, the depth is checked
/// before a collection is opened, and the tree never gets deeper than this, so the outcome is
/// the same on a 2 MiB reload thread as on the main thread.
pub const MAX_DEPTH: usize = 64;

/// A YAML syntax error with its position.
#[derive(Debug)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
    /// The file nests deeper than [`MAX_DEPTH`] (not a syntax error as such: its own code).
    pub too_deep: bool,
}

/// A key given twice in one mapping: where it first was and where it came again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub key: String,
    pub first: Pos,
    pub again: Pos,
}

/// A parsed file: its documents (a rule file has one: a list of items) and the keys that came
/// twice in a mapping (the tree keeps both entries; [`Node::get`] sees the first).
#[derive(Debug, Default)]
pub struct Parsed {
    pub docs: Vec<Node>,
    pub duplicates: Vec<Duplicate>,
}

struct Builder {
    stack: Vec<Node>,
    keys: Vec<Option<Node>>,
    docs: Vec<Node>,
    duplicates: Vec<Duplicate>,
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

    /// Notes the scalar keys of a finished mapping that repeat an earlier key.
    fn find_duplicates(&mut self, entries: &[(Node, Node)]) {
        let mut seen: std::collections::HashMap<&str, Pos> = std::collections::HashMap::new();
        for (k, _) in entries {
            let Some(key) = k.as_str() else { continue };
            if let Some(first) = seen.get(key) {
                self.duplicates.push(Duplicate { key: key.to_string(), first: *first, again: k.pos() });
            } else {
                seen.insert(key, k.pos());
            }
        }
    }

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
                        if entries.len() > 1 {
                            self.find_duplicates(entries);
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

/// Parses a YAML text into its documents, refusing nesting deeper than [`MAX_DEPTH`].
///
/// Events are pulled one by one (not through yaml-rust2's recursive `Parser::load`), so no
/// input can make this recurse.
pub fn parse(source: &str) -> Result<Parsed, SyntaxError> {
    let mut b = Builder { stack: Vec::new(), keys: Vec::new(), docs: Vec::new(), duplicates: Vec::new() };
    let mut parser = Parser::new_from_str(source);
    loop {
        let (ev, m) = parser.next_token().map_err(|e| SyntaxError {
            pos: Pos { line: e.marker().line(), col: e.marker().col() + 1 },
            message: e.info().to_string(),
            too_deep: false,
        })?;
        match ev {
            Event::StreamEnd => break,
            Event::SequenceStart(..) | Event::MappingStart(..) if b.stack.len() >= MAX_DEPTH => {
                return Err(SyntaxError {
                    pos: to_pos(m),
                    message: format!("nested more than {MAX_DEPTH} levels deep"),
                    too_deep: true,
                });
            }
            ev => b.on_event(ev, m),
        }
    }
    Ok(Parsed { docs: b.docs, duplicates: b.duplicates })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_inside_block_and_quoted_scalars() {
        let src = "- rule: x\n  condition: >\n    a and\n    bb == 1\n  t: \"x {y}\"\n";
        let docs = parse(src).unwrap().docs;
        let Node::Seq { items, .. } = &docs[0] else { panic!() };
        let cond = items[0].get("condition").unwrap();
        assert_eq!(cond.as_str().unwrap(), "a and bb == 1\n");
        assert_eq!(cond.pos_at(src, 0), Pos { line: 3, col: 5 });
        assert_eq!(cond.pos_at(src, 6), Pos { line: 4, col: 5 });
        assert_eq!(cond.pos_at(src, 9), Pos { line: 4, col: 8 });
        let t = items[0].get("t").unwrap();
        assert_eq!(t.pos_at(src, 2), Pos { line: 5, col: 9 });
    }

    #[test]
    fn nesting_past_the_limit_is_refused_where_it_crosses_it() {
        for levels in [MAX_DEPTH + 1, 5_000, 50_000] {
            let src = format!("{}x\n", "- ".repeat(levels));
            let e = parse(&src).unwrap_err();
            assert!(e.too_deep, "{levels}: {}", e.message);
            assert_eq!(e.pos, Pos { line: 1, col: 2 * MAX_DEPTH + 1 }, "{levels}");
        }
        let flow = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
        assert!(parse(&flow).is_err(), "deep flow nesting is refused too");
        let ok = format!("{}x\n", "- ".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok(), "exactly the limit is fine");
    }

    #[test]
    fn a_repeated_key_is_noted_with_both_positions() {
        let src = "- rule: a\n  on: [usage]\n  action: {channel: sms}\n  action: {channel: fax}\n";
        let p = parse(src).unwrap();
        assert_eq!(
            p.duplicates,
            vec![Duplicate { key: "action".into(), first: Pos { line: 3, col: 3 }, again: Pos { line: 4, col: 3 } }]
        );
        assert!(parse("{a: 1, b: 2}\n").unwrap().duplicates.is_empty());
    }
}
