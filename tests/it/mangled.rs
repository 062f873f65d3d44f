//! Bad input at the rule loader: every shipped rule file, mangled thousands of ways (bytes
//! deleted, inserted, swapped, lines duplicated or cut, non-ASCII and control characters), must
//! be refused with diagnostics that point inside the file — never a panic, never a rule set
//! from a file the checker could not read. Seeded, so a failure names its input.

use tidings::rules::{self, LoadOptions};

/// splitmix64: a small, seeded, dependency-free generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        tidings::util::mix64(self.0)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const NASTY: &[&str] = &[
    "\u{0}",
    "\t",
    "\r\n",
    ":",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    "#",
    "&a",
    "*a",
    "!!",
    "|",
    ">",
    "%",
    "中",
    "😀",
    "\u{202e}",
    "event.",
    " and ",
    " or ",
    "not ",
    "==",
    "(",
    ")",
    "count(",
    "1d",
    "99999999999999999999",
];

/// One to four byte-level mutations of `text` (also used by the proptest targets in `fuzz.rs`).
pub fn mangle(text: &str, rng: &mut Rng) -> String {
    let mut b: Vec<u8> = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            break;
        }
        let at = rng.below(b.len());
        match rng.below(6) {
            0 => {
                let n = 1 + rng.below(8).min(b.len() - at);
                b.drain(at..(at + n).min(b.len()));
            }
            1 => {
                let s = NASTY[rng.below(NASTY.len())].as_bytes();
                b.splice(at..at, s.iter().copied());
            }
            2 => {
                let other = rng.below(b.len());
                b.swap(at, other);
            }
            3 => b.truncate(at),
            4 => {
                // Duplicate a line.
                let start = b[..at].iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
                let end = b[at..].iter().position(|c| *c == b'\n').map_or(b.len(), |i| at + i + 1);
                let line = b[start..end].to_vec();
                b.splice(end..end, line);
            }
            _ => b[at] = rng.next() as u8,
        }
    }
    // Files are read as UTF-8 text; a mangled byte sequence that is not UTF-8 is the reader's
    // business (tested with decode), the loader sees text.
    String::from_utf8_lossy(&b).into_owned()
}

/// The shipped rule files (not their tests), sorted by name.
pub fn shipped() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && !p.to_string_lossy().ends_with(".tests.yaml"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// Mangles one of `files` as `seed` says and loads the set: never a panic, every diagnostic on
/// the mangled file inside it, and a refusal always says why. `Err` names what broke; `Ok` tells
/// whether the set was refused.
pub fn load_mangled(files: &[(String, String)], seed: u64) -> Result<bool, String> {
    let mut rng = Rng(seed);
    let victim = rng.below(files.len());
    let mut set = files.to_vec();
    set[victim].1 = mangle(&set[victim].1, &mut rng);
    let (name, text) = (set[victim].0.clone(), set[victim].1.clone());
    if std::env::var("DEBUG_SEED").ok() == Some(seed.to_string()) {
        eprintln!("{text:?}");
    }
    let opts = LoadOptions::default();
    let loaded = std::panic::catch_unwind(|| rules::compile(set, None, &opts))
        .map_err(|_| format!("seed {seed}: the loader panicked on a mangled {name}:\n{text}"))?;
    for d in loaded.diagnostics.iter().filter(|d| d.file == name) {
        if !crate::fuzz::inside(&text, d.line, d.col) {
            let near: Vec<&str> = text.lines().skip(d.line.saturating_sub(2)).take(3).collect();
            return Err(format!(
                "seed {seed}: {name}:{}:{} is outside the file\n{}lines around it: {near:?}",
                d.line,
                d.col,
                d.render()
            ));
        }
    }
    if loaded.rules.is_none() && !loaded.diagnostics.iter().any(|d| d.is_error()) {
        return Err(format!("seed {seed}: refused without an error"));
    }
    Ok(loaded.rules.is_none())
}

#[test]
fn mangled_rule_files_are_refused_with_located_diagnostics_and_never_panic() {
    let files = shipped();
    let mut refused = 0;
    for seed in 0..1500u64 {
        refused += usize::from(load_mangled(&files, seed).unwrap_or_else(|e| panic!("{e}")));
    }
    assert!(refused > 500, "most mangled packs are refused ({refused} of 1500)");
}
