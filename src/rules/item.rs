//! Reading the keys of one item of a rule file (a `list`, `macro`, `campaign`, `dictionary` or
//! `rule`), each mistake a diagnostic at its key: the item's name, keys it does not know (with
//! the nearest allowed one), single values, event kinds and conditions. Shared by the collect
//! and compile phases, so an item is read the same way whichever phase reads it.

use super::diag::{Code, Diagnostic};
use super::expr;
use super::former::Former;
use super::yaml;
use crate::event::{Kind, KindSet};

/// A list's items as written, or the single value standing for a one-item list.
pub(super) fn values(n: &yaml::Node) -> Vec<&yaml::Node> {
    match n {
        yaml::Node::Seq { items, .. } => items.iter().collect(),
        n => vec![n],
    }
}

/// A word of letters, digits and `_`, not starting with a digit: what items are named.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// The item's name under `key` (`rule: NAME`): a word of letters, digits and `_`.
pub(super) fn name_of(
    item: &yaml::Node,
    key: &str,
    file: &str,
    src: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    let n = item.get(key)?;
    match n.as_str() {
        Some(s) if is_name(s) => Some(s.to_string()),
        _ => {
            diags.push(Diagnostic::new(
                Code::E005,
                file,
                src,
                n.pos(),
                format!("a {key} name is a word of letters, digits and `_`"),
            ));
            None
        }
    }
}

/// The item's former names (`was: old_name`, or a list of them), each with its node: state
/// kept under one carries over to the item (see `state::checkpoint::Formerly`). Each is a name
/// as `name_of` reads one.
pub(super) fn former_names(item: &yaml::Node, file: &str, src: &str, diags: &mut Vec<Diagnostic>) -> Vec<Former> {
    let Some(was) = item.get("was") else { return Vec::new() };
    let mut out = Vec::new();
    for n in values(was) {
        match n.as_str() {
            Some(s) if is_name(s) => out.push(Former { name: s.into(), at: n.pos() }),
            _ => diags.push(Diagnostic::new(
                Code::E005,
                file,
                src,
                n.pos(),
                "`was:` names a former name (a word of letters, digits and `_`), or a list of them",
            )),
        }
    }
    out
}

/// Every key of the item that is not `allowed` is an E003, with the nearest allowed one.
pub(super) fn check_keys(item: &yaml::Node, allowed: &[&str], file: &str, src: &str, diags: &mut Vec<Diagnostic>) {
    if let yaml::Node::Map { entries, .. } = item {
        for (k, _) in entries {
            let key = k.as_str().unwrap_or("");
            if !allowed.contains(&key) {
                let hint = crate::util::nearest(key, allowed.iter().copied()).map(|n| format!("did you mean `{n}`?"));
                diags.push(
                    Diagnostic::new(Code::E003, file, src, k.pos(), format!("unknown key `{key}`"))
                        .with_hint(hint.or_else(|| Some(format!("allowed here: {}", allowed.join(", "))))),
                );
            }
        }
    }
}

/// A condition parsed (not yet checked): a string, else an E005; a syntax error is an E010.
pub(super) fn parse_expr(
    node: &yaml::Node,
    file: &str,
    src: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<expr::syntax::Node> {
    let Some(text) = node.as_str() else {
        diags.push(Diagnostic::new(
            Code::E005,
            file,
            src,
            node.pos(),
            format!("a condition is a string, not {}", node.kind_name()),
        ));
        return None;
    };
    match expr::syntax::parse(text) {
        Ok(n) => Some(n),
        Err(e) => {
            diags.push(
                Diagnostic::new(Code::E010, file, src, node.pos_at(src, e.span.start), e.message).with_hint(e.hint),
            );
            None
        }
    }
}

/// The single value under `key` and its node; a list or mapping there is an E005.
pub(super) fn scalar<'n>(
    item: &'n yaml::Node,
    key: &str,
    file: &str,
    src: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<(&'n str, &'n yaml::Node)> {
    let n = item.get(key)?;
    match n.as_str() {
        Some(s) => Some((s, n)),
        None => {
            diags.push(Diagnostic::new(
                Code::E005,
                file,
                src,
                n.pos(),
                format!("`{key}` must be a single value, not {}", n.kind_name()),
            ));
            None
        }
    }
}

/// The event kinds under `key` (one or a list); an unknown kind is an E005 with the nearest one.
pub(super) fn kinds(
    node: &yaml::Node,
    key: &str,
    file: &str,
    src: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<KindSet> {
    let items: Vec<&yaml::Node> = match node {
        yaml::Node::Seq { items, .. } => items.iter().collect(),
        n @ yaml::Node::Scalar { .. } => vec![n],
        n => {
            diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), format!("`{key}` is a list of event kinds")));
            return None;
        }
    };
    let mut set = KindSet::default();
    let mut ok = true;
    for it in items {
        let s = it.as_str().unwrap_or("");
        match Kind::parse(s) {
            Some(k) => set.insert(k),
            None => {
                let hint = crate::util::nearest(s, Kind::NAMES.iter().copied())
                    .map(|n| format!("did you mean `{n}`?"))
                    .or_else(|| Some(format!("one of: {}", Kind::NAMES.join(", "))));
                diags.push(
                    Diagnostic::new(Code::E005, file, src, it.pos(), format!("`{s}` is not an event kind"))
                        .with_hint(hint),
                );
                ok = false;
            }
        }
    }
    if ok && set.0 == 0 {
        diags.push(Diagnostic::new(Code::E005, file, src, node.pos(), format!("`{key}` names no event kind")));
        return None;
    }
    ok.then_some(set)
}
