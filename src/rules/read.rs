//! Phase 1 of compiling a rule pack, reading: the rule files under the given paths, their bytes
//! made text, and the text made YAML trees that remember every position ([`super::yaml`]).
//!
//! Kept apart from the later phases so that `validate`, start-up, hot reload and `tidings test`
//! read a file the same way: a UTF-8 byte-order mark (which editors on Windows write) is skipped,
//! bytes that are not UTF-8 are an error at the line and column where they start (not `0:0`), a
//! character YAML does not allow is an error where it is, and a file nested too deep or with a
//! key given twice is refused with where. A file that cannot be read becomes a diagnostic too.

use super::diag::{Code, Diagnostic};
use super::yaml::{self, Duplicate, Node, Pos, SyntaxError};
use std::path::{Path, PathBuf};

const BOM: char = '\u{feff}';

/// Lists the rule files under the given paths (files as given; directories recursively).
pub fn rule_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if name != "testdata" && !name.starts_with('.') {
                walk(&p, out)?;
            }
        } else if (name.ends_with(".yaml") || name.ends_with(".yml")) && !is_test_file(name) {
            out.push(p);
        }
    }
    Ok(())
}

pub fn is_test_file(name: &str) -> bool {
    name.ends_with(".tests.yaml") || name.ends_with(".tests.yml")
}

/// The rule files under `paths`, read and decoded as (name, text); what cannot be listed, read
/// or decoded is a diagnostic instead.
pub fn files(paths: &[PathBuf]) -> (Vec<(String, String)>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    match rule_files(paths) {
        Ok(list) => {
            for p in list {
                let name = p.display().to_string();
                match std::fs::read(&p) {
                    Ok(bytes) => match decode(&name, bytes) {
                        Ok(text) => files.push((name, text)),
                        Err(d) => diagnostics.push(d),
                    },
                    Err(e) => diagnostics.push(Diagnostic::new(
                        Code::E001,
                        &p.display().to_string(),
                        "",
                        Default::default(),
                        format!("cannot read: {e}"),
                    )),
                }
            }
        }
        Err(e) => diagnostics.push(Diagnostic::new(
            Code::E001,
            &paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(","),
            "",
            Default::default(),
            format!("cannot list rule files: {e}"),
        )),
    }
    (files, diagnostics)
}

/// The text of a rule file, or an E001 at the first byte that is not UTF-8.
pub fn decode(name: &str, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    let bad = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(e) => e,
    };
    let valid = bad.utf8_error().valid_up_to();
    let bytes = bad.as_bytes();
    // The prefix is valid: its lines and characters say where the bad byte is. The snippet is
    // the whole file with bad bytes shown as U+FFFD, so the caret lands on the first of them.
    let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
    let before = before.strip_prefix(BOM).unwrap_or(before);
    let shown = String::from_utf8_lossy(bytes);
    let shown = shown.strip_prefix(BOM).unwrap_or(&shown);
    // The bytes that make the bad sequence (all the rest when the file ends inside one).
    let len = bad.utf8_error().error_len().unwrap_or(bytes.len() - valid);
    let shown_bytes: Vec<String> = bytes[valid..valid + len].iter().map(|b| format!("0x{b:02X}")).collect();
    Err(Diagnostic::new(
        Code::E001,
        name,
        shown,
        end_of(before),
        format!("the file is not UTF-8 text: the byte sequence {} is not a character", shown_bytes.join(" ")),
    )
    .with_hint(Some("rule files are UTF-8; re-save the file as UTF-8 (it may be in GBK)".into())))
}

/// Drops a UTF-8 byte-order mark at the start of a text (YAML allows one; the reader does not).
pub fn strip_bom(text: &mut String) {
    if text.starts_with(BOM) {
        text.drain(..BOM.len_utf8());
    }
}

/// The position just after `text` (where the next character would be).
fn end_of(text: &str) -> Pos {
    let ends_with_break = text.ends_with(['\n', '\r']);
    let last = yaml::lines(text).last().filter(|_| !ends_with_break);
    let lines = yaml::lines(text).count();
    Pos {
        line: if ends_with_break || lines == 0 { lines + 1 } else { lines },
        col: last.map_or(0, |l| l.chars().count()) + 1,
    }
}

/// Each file's YAML documents, in file order (none for a file that did not read); what stops a
/// file from reading, and each key given twice, is a diagnostic.
pub fn parse(files: &[(String, String)], diags: &mut Vec<Diagnostic>) -> Vec<Vec<Node>> {
    let mut docs: Vec<Vec<Node>> = Vec::new();
    for (name, text) in files {
        if let Some(d) = unprintable(name, text) {
            diags.push(d);
            docs.push(Vec::new());
            continue;
        }
        match yaml::parse(text) {
            Ok(p) => {
                diags.extend(p.duplicates.iter().map(|d| duplicate(name, text, d)));
                docs.push(p.docs);
            }
            Err(e) => {
                diags.push(syntax(name, text, e));
                docs.push(Vec::new());
            }
        }
    }
    docs
}

/// The first character YAML does not allow in a file (YAML 1.2 §5.1: C0 and C1 controls other
/// than tab, line breaks and NEL; DEL; U+FFFE and U+FFFF), as an error at its position. The
/// YAML reader stops at a NUL as if the file ended there: without this check, every rule after
/// a stray NUL would be dropped without a word.
fn unprintable(name: &str, text: &str) -> Option<Diagnostic> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{85}')
            || !(c.is_control() || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}')
    };
    let at = text.find(|c: char| !allowed(c))?;
    let c = text[at..].chars().next()?;
    let before = &text[..at];
    let line = yaml::lines(before).count().max(1) + usize::from(before.ends_with(['\n', '\r']));
    let col =
        yaml::lines(before).last().filter(|_| !before.ends_with(['\n', '\r'])).map_or(0, |l| l.chars().count()) + 1;
    Some(
        Diagnostic::new(
            Code::E001,
            name,
            text,
            yaml::Pos { line, col },
            format!("control character U+{:04X} is not allowed in a rule file", u32::from(c)),
        )
        .with_hint(Some("the file may be damaged or not text; remove the character".into())),
    )
}

/// A YAML reading error as a diagnostic: E006 for nesting past [`yaml::MAX_DEPTH`], else E001.
pub fn syntax(name: &str, text: &str, e: SyntaxError) -> Diagnostic {
    if e.too_deep {
        Diagnostic::new(Code::E006, name, text, e.pos, format!("the file is {}", e.message)).with_hint(Some(format!(
            "a rule file nests a few levels (list, item, policy ...); {} is the most tidings reads",
            yaml::MAX_DEPTH
        )))
    } else {
        Diagnostic::new(Code::E001, name, text, e.pos, format!("YAML syntax: {}", e.message))
    }
}

/// A key given twice in one mapping: E007 at the second, naming the first.
pub fn duplicate(name: &str, text: &str, d: &Duplicate) -> Diagnostic {
    Diagnostic::new(
        Code::E007,
        name,
        text,
        d.again,
        format!("`{}` is given twice here; it was first given at {name}:{}:{}", d.key, d.first.line, d.first.col),
    )
    .with_hint(Some("only one value can count: remove one of them".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_reported_where_it_starts() {
        let d = decode("r.yaml", b"- rule: a\n  desc: caf\xC3\n".to_vec()).unwrap_err();
        assert_eq!((d.code, d.line, d.col), (Code::E001, 2, 12), "{}", d.render());
        assert!(d.message.contains("0xC3"), "{}", d.message);
        // On the first line, after a BOM, and right after a line break.
        let d = decode("r.yaml", b"\xEF\xBB\xBFab\xFF".to_vec()).unwrap_err();
        assert_eq!((d.line, d.col), (1, 3));
        let d = decode("r.yaml", b"a\r\n\xFF".to_vec()).unwrap_err();
        assert_eq!((d.line, d.col), (2, 1));
        assert_eq!(decode("r.yaml", "中文".as_bytes().to_vec()).unwrap(), "中文");
    }

    #[test]
    fn a_bom_is_dropped() {
        let mut t = String::from("\u{feff}- rule: a\n");
        strip_bom(&mut t);
        assert_eq!(t, "- rule: a\n");
        strip_bom(&mut t);
        assert_eq!(t, "- rule: a\n");
    }
}
