//! One line index per rule file, so that diagnostics cost the same whatever their number.
//!
//! A diagnostic shows its source line, and a position inside a multi-line condition is found by
//! walking the scalar's lines ([`super::yaml::Node::pos_at`]). Both used to split the whole file
//! into lines each time: a 4 MB file with 13,000 errors took 107 s. While a pack is compiled
//! ([`with_sources`]) its files' line indexes are built once, on first use, and every lookup is a
//! slice. Outside that scope (one-off diagnostics) a lookup builds the index for itself.
//!
//! The indexes are found by the address and length of the text: [`with_sources`] borrows the
//! texts for as long as the indexes are kept, so an address cannot be reused by another text in
//! the meantime, and a text that is not registered simply gets a fresh index.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Where each line of a text starts (byte offsets), lines ending as YAML ends them (`\r\n`, `\n`
/// or a lone `\r`, as [`super::yaml::lines`]).
#[derive(Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let b = text.as_bytes();
        let mut starts = Vec::with_capacity(b.len() / 32 + 1);
        starts.push(0);
        let mut i = 0;
        while let Some(off) = memchr::memchr2(b'\n', b'\r', &b[i..]) {
            let at = i + off;
            i = if b[at] == b'\r' && b.get(at + 1) == Some(&b'\n') { at + 2 } else { at + 1 };
            starts.push(i);
        }
        // A final line break ends the last line; it does not start an empty one.
        if starts.len() > 1 && *starts.last().unwrap_or(&0) == b.len() {
            starts.pop();
        }
        LineIndex { starts, len: b.len() }
    }

    /// The number of lines (an empty text has none).
    pub fn count(&self) -> usize {
        if self.len == 0 { 0 } else { self.starts.len() }
    }

    /// Line `n` (1-based) without its line break, or None past the end.
    pub fn line<'t>(&self, text: &'t str, n: usize) -> Option<&'t str> {
        if n == 0 || n > self.count() {
            return None;
        }
        let start = self.starts[n - 1];
        let end = self.starts.get(n).copied().unwrap_or(self.len);
        let line = text.get(start..end)?;
        Some(
            line.strip_suffix("\r\n")
                .or_else(|| line.strip_suffix('\n'))
                .or_else(|| line.strip_suffix('\r'))
                .unwrap_or(line),
        )
    }
}

type Memo = HashMap<(usize, usize), Option<Rc<LineIndex>>>;

thread_local! {
    static MEMO: RefCell<Option<Memo>> = const { RefCell::new(None) };
}

/// Runs `f` with the line indexes of `texts` kept (each built on first use).
pub fn with_sources<'t, R>(texts: impl IntoIterator<Item = &'t str>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Memo>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            MEMO.with(|m| *m.borrow_mut() = prev);
        }
    }
    let memo: Memo = texts.into_iter().map(|t| (key(t), None)).collect();
    let _restore = Restore(MEMO.with(|m| m.borrow_mut().replace(memo)));
    f()
}

fn key(text: &str) -> (usize, usize) {
    (text.as_ptr() as usize, text.len())
}

/// The line index of `text`: the kept one inside [`with_sources`], else a fresh one.
pub fn index(text: &str) -> Rc<LineIndex> {
    MEMO.with(|m| {
        let mut m = m.borrow_mut();
        match m.as_mut().and_then(|memo| memo.get_mut(&key(text))) {
            Some(slot) => Rc::clone(slot.get_or_insert_with(|| Rc::new(LineIndex::new(text)))),
            None => Rc::new(LineIndex::new(text)),
        }
    })
}

/// Line `n` (1-based) of `text`, or "" past the end.
pub fn line(text: &str, n: usize) -> &str {
    index(text).line(text, n).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_agree_with_the_yaml_line_splitter() {
        for text in ["", "a", "a\n", "a\nb", "a\r\nb\r\n", "a\rb\r", "\n\n", "x\r\n\r\ny", "é\n中\r文"] {
            let want: Vec<&str> = crate::rules::yaml::lines(text).collect();
            let idx = LineIndex::new(text);
            let got: Vec<&str> = (1..=idx.count()).filter_map(|n| idx.line(text, n)).collect();
            assert_eq!(got, want, "{text:?}");
            assert_eq!(idx.line(text, idx.count() + 1), None);
        }
    }

    #[test]
    fn registered_texts_share_one_index_and_others_get_their_own() {
        let a = String::from("one\ntwo\n");
        let b = String::from("three\n");
        with_sources([a.as_str()], || {
            assert!(Rc::ptr_eq(&index(&a), &index(&a)), "built once");
            assert!(!Rc::ptr_eq(&index(&b), &index(&b)), "not registered: fresh each time");
            assert_eq!(line(&a, 2), "two");
            assert_eq!(line(&b, 1), "three");
        });
        assert!(!Rc::ptr_eq(&index(&a), &index(&a)), "forgotten after the scope");
    }
}
