//! Diagnostics for rule files: every problem at once, each with a stable code, the file
//! position, the source line with a caret, and a hint where a cheap one exists.

use super::yaml::Pos;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Stable diagnostic codes. Tests and CI scripts match on these, so never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Code {
    /// YAML syntax error.
    E001,
    /// The file is not a list of items, or an item is not `list`, `macro`, `campaign`,
    /// `dictionary` or `rule`.
    E002,
    /// Unknown key in an item.
    E003,
    /// A required key is missing.
    E004,
    /// A key has a value of the wrong shape or an unknown value.
    E005,
    /// The file nests deeper than a rule file may (`yaml::MAX_DEPTH`).
    E006,
    /// A key given twice in one mapping.
    E007,
    /// A duration, amount or count out of the range a rule may give (`rules::limits`), or
    /// constant arithmetic that overflows.
    E008,
    /// Expression syntax error.
    E010,
    /// Unknown field.
    E011,
    /// Unknown name: not a macro, list, field or function.
    E012,
    /// Type mismatch.
    E013,
    /// A field the rule's event kinds do not all have.
    E014,
    /// Wrong use of a function (arity, argument kinds).
    E015,
    /// A window longer than the state keeps.
    E016,
    /// Duplicate name.
    E017,
    /// A macro that refers to itself.
    E018,
    /// Unknown value of an enumerated field.
    E019,
    /// Template error.
    E020,
    /// An aggregate or sequence filter that reads more than its own event.
    E021,
    /// A condition too deep or too large once its macros are expanded.
    E022,
    /// A `campaign:` item no rule belongs to.
    E030,
    /// Two different values for one campaign's streak or control group.
    E031,
    /// A policy the rule's channel cannot carry out.
    E032,
    /// Contradictory policy.
    E033,
    /// A journey's `goto` names no step of it.
    E040,
    /// A journey step no transition reaches.
    E041,
    /// A journey step that can never be left.
    E042,
    /// A loop of immediate journey transitions.
    E043,
    /// Unused macro.
    W101,
    /// Unused list.
    W102,
    /// A cell tag or calendar entry that the reference data does not have.
    W103,
    /// A CRM event name that is not one of the known business events.
    W104,
    /// A journey transition on an outcome its step's channel never reports.
    W105,
    /// An SMS that asks for a reply keyword no rule or journey answers.
    W106,
    /// A reply keyword compared with a word no reply's keyword can be (lower case, full width).
    W107,
    /// An outcome's or a reply's rule or campaign compared with a name the pack does not have.
    W108,
    /// A derive computed on events that reads a window: its value does not lapse as the window
    /// ages between those events.
    W109,
    /// An SMS whose template's own text takes more messages than its rule's `parts:` budget.
    W110,
}

impl Code {
    pub fn severity(self) -> Severity {
        if format!("{self:?}").starts_with('W') { Severity::Warning } else { Severity::Error }
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{self:?}"))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The source line the position is on.
    #[serde(skip)]
    pub snippet: String,
}

impl Diagnostic {
    pub fn new(code: Code, file: &str, source: &str, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity(),
            file: file.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
            hint: None,
            // Line 0 (no position) shows the first line, as it always has.
            snippet: super::lines::line(source, pos.line.max(1)).to_string(),
        }
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Diagnostic {
        self.hint = hint;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: error[E011]: message`, the line, a caret, and the hint.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}:{}:{}: {}[{:?}]: {}\n",
            self.file,
            self.line,
            self.col,
            match self.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            self.code,
            self.message
        );
        if !self.snippet.is_empty() {
            let gutter = self.line.to_string().len();
            let (shown, col) = window(&self.snippet, self.col);
            let pad: String =
                shown.chars().take(col.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let _ = writeln!(s, "{:gutter$} |", "");
            let _ = writeln!(s, "{} | {}", self.line, shown);
            let _ = writeln!(s, "{:gutter$} | {pad}^", "");
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(s, "  = hint: {h}");
        }
        s
    }
}

/// At most this many characters of a source line are shown under a diagnostic.
const SNIPPET_CHARS: usize = 160;

/// The part of a long line around column `col` (1-based), cut with `…`, and the column in it. A
/// 50,000-level `- - - …` file is one 100 KB line: printed whole, every failed reload put it in
/// the log again (and a log reader slower than the engine stalled the reload behind it).
fn window(line: &str, col: usize) -> (std::borrow::Cow<'_, str>, usize) {
    let len = line.chars().count();
    if len <= SNIPPET_CHARS {
        return (line.into(), col);
    }
    let start = col.saturating_sub(SNIPPET_CHARS / 2).min(len.saturating_sub(SNIPPET_CHARS));
    let body: String = line.chars().skip(start).take(SNIPPET_CHARS).collect();
    let head = if start > 0 { "…" } else { "" };
    let tail = if start + SNIPPET_CHARS < len { "…" } else { "" };
    (format!("{head}{body}{tail}").into(), col - start + usize::from(start > 0))
}

/// Diagnostics sorted by file and position, errors and warnings together.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| (&a.file, a.line, a.col, a.code).cmp(&(&b.file, b.line, b.col, b.code)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_shown_around_the_caret() {
        let line = format!("{}x{}", "- ".repeat(5_000), "y".repeat(10));
        let d = Diagnostic {
            code: Code::E006,
            severity: Severity::Error,
            file: "f.yaml".into(),
            line: 1,
            col: 129,
            message: "deep".into(),
            hint: None,
            snippet: line,
        };
        let r = d.render();
        let lines: Vec<&str> = r.lines().collect();
        assert!(lines[2].chars().count() < 200, "{}", lines[2]);
        assert!(lines[2].starts_with("1 | … - ") && lines[2].ends_with('…'), "{}", lines[2]);
        // The caret is under the same character of the line as before the cut.
        let caret = lines[3].chars().position(|c| c == '^').unwrap();
        assert_eq!(lines[2].chars().nth(caret), Some('-'));
        assert_eq!(caret - 4, 128 - (129 - 80) + 1, "column 129 of the line, after the `…`");
        // A short line is shown whole.
        let short = Diagnostic { snippet: "abc".into(), col: 2, ..d };
        assert!(short.render().contains("1 | abc\n  |  ^"), "{}", short.render());
    }
}
