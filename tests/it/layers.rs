//! The shape of the code, checked: `src/lib.rs` declares the modules' layers, bottom up, and
//! every `crate::…` path in `src/` (every `tidings::…` path in the binary) must point to the
//! module's own layer or a lower one, and no two top-level modules may use each other, however
//! indirectly. A path that points up names its file and line here, so the shape cannot rot
//! again unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer list of `src/lib.rs`: lines `//! N. `a`, `b` — what they are`.
fn declared_layers(lib: &str) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! ") else { continue };
        let Some((n, rest)) = rest.split_once(". ") else { continue };
        let Ok(n) = n.trim().parse::<usize>() else { continue };
        let names = rest.split(" — ").next().unwrap_or("");
        for name in names.split(',') {
            let name = name.trim().trim_matches('`');
            if !name.is_empty() {
                layers.insert(name.to_string(), n);
            }
        }
    }
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read src").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to; the binary (`main.rs`, `cli/`) is `cli`.
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" => None,
        "main.rs" => Some("cli".into()),
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// The line without its `//` comment (doc links are not imports); a `//` inside a string stays.
fn code_of(line: &str) -> &str {
    let b = line.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'\'' if !in_str && b.get(i + 2) == Some(&b'\'') => i += 2,
            b'/' if !in_str && b.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

/// The top-level modules a line names through `root::` (`crate` in the library, `tidings` in the
/// binary), including each member of a `root::{a::X, b}` group.
fn named_modules(code: &str, root: &str) -> Vec<String> {
    let mut found = Vec::new();
    let pat = format!("{root}::");
    let mut at = 0;
    while let Some(i) = code[at..].find(&pat) {
        let start = at + i;
        at = start + pat.len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level members of the group (depth 1).
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    _ if depth == 1 => item.push(c),
                    _ => {}
                }
            }
            items.push(item);
            for it in items {
                let name: String = it.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn no_module_imports_up_a_layer_and_no_two_modules_use_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(root.join("lib.rs")).expect("src/lib.rs");
    let layers = declared_layers(&lib);
    assert!(layers.len() > 5, "src/lib.rs declares no layer list (`//! 1. `util`, … — …`): {layers:?}");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut problems = Vec::new();
    let mut uses: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&root).expect("under src");
        let Some(module) = module_of(rel) else { continue };
        // The binary's own modules are `cli/…` and `main.rs`; anything else it declares is a file of
        // the library compiled twice, which the layer list cannot place.
        let binary = module == "cli";
        let Some(&layer) = layers.get(&module) else {
            problems.push(format!("src/{}: module `{module}` is not in the layer list of src/lib.rs", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read");
        for (i, line) in text.lines().enumerate() {
            let code = code_of(line);
            let roots: &[&str] = if binary { &["tidings"] } else { &["crate"] };
            for root in roots {
                for used in named_modules(code, root) {
                    if used == module {
                        continue;
                    }
                    let Some(&their) = layers.get(&used) else {
                        // `crate::SomeType` at the root, or a macro: not a module.
                        continue;
                    };
                    let at = format!("src/{}:{}", rel.display(), i + 1);
                    uses.entry(module.clone()).or_default().entry(used.clone()).or_insert_with(|| at.clone());
                    if their > layer {
                        problems.push(format!(
                            "{at}: `{module}` (layer {layer}) uses `{used}` (layer {their}), which is above it: {}",
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    // Cycles between top-level modules: within a layer too.
    let mut cycles = BTreeSet::new();
    for start in uses.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((m, path)) = stack.pop() {
            for next in uses.get(&m).map(|u| u.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                if next == *start {
                    let mut ring = path.clone();
                    let low = ring.iter().enumerate().min_by_key(|(_, n)| n.as_str()).map_or(0, |(i, _)| i);
                    ring.rotate_left(low);
                    let shown: Vec<String> = ring
                        .iter()
                        .zip(ring.iter().cycle().skip(1))
                        .map(|(a, b)| format!("{a} -> {b} ({})", uses[a][b]))
                        .collect();
                    cycles.insert(shown.join(", "));
                } else if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next, p));
                }
            }
        }
    }
    problems.extend(cycles.into_iter().map(|c| format!("modules use each other: {c}")));
    assert!(problems.is_empty(), "{} problem(s) with the layers:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_layer_check_sees_grouped_paths_and_ignores_comments() {
    assert_eq!(
        named_modules("use crate::{engine::Decision, policy, time::{DAY, HOUR}};", "crate"),
        ["engine", "policy", "time"]
    );
    assert_eq!(named_modules("x = crate::util::mix64(a) + tidings::config::X;", "crate"), ["util"]);
    assert_eq!(named_modules("#[serde(with = \"crate::time::duration_serde\")]", "crate"), ["time"]);
    assert_eq!(code_of("let a = 1; // see crate::engine"), "let a = 1; ");
    assert_eq!(code_of("let u = \"http://x\"; // crate::engine"), "let u = \"http://x\"; ");
    let layers = declared_layers("//! 1. `util`, `time` — the ground\n//! 2. `event` — events\n//! text 3. `x`");
    assert_eq!(layers.get("time"), Some(&1));
    assert_eq!(layers.get("event"), Some(&2));
    assert_eq!(layers.len(), 3);
}
