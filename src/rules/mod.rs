//! Rule files: load -> check -> compile, all errors at once.
//!
//! A rule pack is a set of YAML files (a directory is read recursively, in path order; files
//! ending `.tests.yaml` and `testdata/` folders are the pack's tests, not rules). Each file is
//! a list of items: `list` (named values), `macro` (a named condition) and `rule`. Lists and
//! macros are shared by the whole pack and may be used before they are defined.
//!
//! The result is a [`RuleSet`]: rules indexed by the event kind they listen to, their
//! conditions and templates compiled, and the per-subscriber slots (windows, sequences) the
//! state must keep. Nothing on the event path parses text or looks a rule up by name.

pub mod diag;
pub mod eval;
pub mod expr;
pub mod index;
pub mod limits;
pub mod lines;
pub mod source;
pub mod template;
pub mod testing;
pub mod yaml;

use crate::event::{Kind, KindSet};
use crate::policy::{self, CampaignPolicy, QuietFate, QuietHours, RulePolicy};
use crate::refdata::{Channel, RefData};
use diag::{Code, Diagnostic};
use expr::Ir;
use expr::check::{AggDef, Checker, ListDef, Loc, MacroDef, Scope, SeqDef, Slots};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
pub use template::Template;

/// A rule's delay or absence timer.
#[derive(Clone, Debug)]
pub struct TimerDef {
    pub after: i64,
    /// Events of these kinds (passing `cancel_if`) cancel the pending timer: absence.
    pub cancel_on: KindSet,
    pub cancel_if: Option<Ir>,
    /// Checked again when the timer fires, against the state then.
    pub recheck: Option<Ir>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: std::sync::Arc<str>,
    pub desc: Box<str>,
    pub file: Box<str>,
    pub line: usize,
    pub on: KindSet,
    pub condition: Ir,
    pub channel: Channel,
    pub template: Option<Template>,
    pub script: Option<Template>,
    pub queue: Option<Box<str>>,
    pub campaign: std::sync::Arc<str>,
    /// Index into [`RuleSet::campaigns`].
    pub campaign_idx: u16,
    pub priority: i32,
    pub timer: Option<TimerDef>,
    /// A daily rule: evaluated for every subscriber at this local minute of the day (no event).
    pub schedule: Option<u32>,
    pub policy: RulePolicy,
    pub enabled: bool,
    /// `mode: shadow`: evaluated and decided like a live rule, its decisions written and
    /// counted, but nothing it decides is ever sent (see `engine::shard::decide_shadow`).
    pub shadow: bool,
}

/// A compiled rule pack.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Rule indexes per event kind, filed by the values they require (see [`index`]).
    pub by_kind: [index::KindIndex; Kind::ALL.len()],
    pub aggs: Vec<AggDef>,
    pub seqs: Vec<SeqDef>,
    pub aggs_by_kind: [Vec<u32>; Kind::ALL.len()],
    pub seqs_by_kind: [Vec<u32>; Kind::ALL.len()],
    /// Kinds that may cancel some rule's pending timer.
    pub cancel_kinds: KindSet,
    /// Every campaign the rules name, with its policy.
    pub campaigns: Vec<CampaignPolicy>,
    /// Daily rules (indexes), evaluated at their local time for every subscriber.
    pub scheduled: Vec<u32>,
    /// Whether any rule is in `mode: shadow` (the live path skips the shadow split without).
    pub has_shadow: bool,
    /// Checksum of the files that made the set (hex).
    pub version: String,
    pub files: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Longest window a condition may ask for (the state keeps no more).
    pub max_window: i64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { max_window: 62 * crate::util::DAY }
    }
}

/// The outcome of loading: the set (when there were no errors) and every diagnostic.
pub struct Loaded {
    pub rules: Option<RuleSet>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

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

/// Loads and compiles rule files. I/O errors become diagnostics too.
pub fn load(paths: &[PathBuf], refdata: Option<&RefData>, opts: &LoadOptions) -> Loaded {
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    match rule_files(paths) {
        Ok(list) => {
            for p in list {
                let name = p.display().to_string();
                match std::fs::read(&p) {
                    Ok(bytes) => match source::decode(&name, bytes) {
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
    let mut loaded = compile(files, refdata, opts);
    loaded.diagnostics.splice(0..0, diagnostics);
    if loaded.errors() > 0 {
        loaded.rules = None;
    }
    loaded
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

/// Compiles rule files given as (name, text). This is the one way rules are compiled:
/// `validate`, start-up, hot reload and `tidings test` all come here (through [`load`]).
pub fn compile(mut files: Vec<(String, String)>, refdata: Option<&RefData>, opts: &LoadOptions) -> Loaded {
    for (_, text) in &mut files {
        source::strip_bom(text);
    }
    // One line index per file for every diagnostic below (see `lines`).
    lines::with_sources(files.iter().map(|f| f.1.as_str()), || compile_files(&files, refdata, opts))
}

fn compile_files(files: &[(String, String)], refdata: Option<&RefData>, opts: &LoadOptions) -> Loaded {
    let mut diags = Vec::new();
    let mut docs: Vec<Vec<yaml::Node>> = Vec::new();
    for (name, text) in files {
        if let Some(d) = unprintable(name, text) {
            diags.push(d);
            docs.push(Vec::new());
            continue;
        }
        match yaml::parse(text) {
            Ok(p) => {
                diags.extend(p.duplicates.iter().map(|d| source::duplicate(name, text, d)));
                docs.push(p.docs);
            }
            Err(e) => {
                diags.push(source::syntax(name, text, e));
                docs.push(Vec::new());
            }
        }
    }
    // Pass 1: lists and macros from every file.
    let mut lists: HashMap<String, ListDef> = HashMap::new();
    let mut macros: HashMap<String, MacroDef> = HashMap::new();
    let mut rule_items: Vec<(usize, &yaml::Node)> = Vec::new();
    let mut defined_at: HashMap<String, String> = HashMap::new();
    let mut campaign_items: Vec<CampaignItem> = Vec::new();
    for (fi, doc) in docs.iter().enumerate() {
        let (file, src) = (&files[fi].0, &files[fi].1);
        let items: &[yaml::Node] = match doc.as_slice() {
            [] => &[],
            [yaml::Node::Seq { items, .. }] => items,
            [n] if n.is_null() => &[],
            [other, ..] => {
                diags.push(Diagnostic::new(
                    Code::E002,
                    file,
                    src,
                    other.pos(),
                    "a rule file is a list of items (`- rule: ...`, `- macro: ...`, `- list: ...`)",
                ));
                &[]
            }
        };
        for item in items {
            let kind = ["rule", "macro", "list", "campaign"].into_iter().find(|k| item.get(k).is_some());
            let here = |n: &yaml::Node| format!("{file}:{}", n.pos().line);
            match kind {
                Some("list") => {
                    let Some(name) = name_of(item, "list", file, src, &mut diags) else { continue };
                    check_keys(item, &["list", "items", "desc"], file, src, &mut diags);
                    let items = match item.get("items") {
                        Some(yaml::Node::Seq { items, .. }) => {
                            items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect()
                        }
                        Some(n) => {
                            diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), "`items` must be a list"));
                            continue;
                        }
                        None => {
                            diags.push(Diagnostic::new(
                                Code::E004,
                                file,
                                src,
                                item.pos(),
                                format!("list `{name}` has no `items`"),
                            ));
                            continue;
                        }
                    };
                    if !claim(&mut defined_at, &name, here(item), item.pos(), file, src, &mut diags) {
                        continue;
                    }
                    lists.insert(name, ListDef { items, used: Cell::new(false) });
                }
                Some("macro") => {
                    let Some(name) = name_of(item, "macro", file, src, &mut diags) else { continue };
                    check_keys(item, &["macro", "condition", "desc"], file, src, &mut diags);
                    let Some(cond) = item.get("condition") else {
                        diags.push(Diagnostic::new(
                            Code::E004,
                            file,
                            src,
                            item.pos(),
                            format!("macro `{name}` has no `condition`"),
                        ));
                        continue;
                    };
                    let ast = parse_expr(cond, file, src, &mut diags);
                    if !claim(&mut defined_at, &name, here(item), item.pos(), file, src, &mut diags) {
                        continue;
                    }
                    macros.insert(name, MacroDef { file: fi, node: cond.clone(), ast, used: Cell::new(false) });
                }
                Some("campaign") => {
                    let Some(name) = name_of(item, "campaign", file, src, &mut diags) else { continue };
                    check_keys(item, &["campaign", "desc", "policy"], file, src, &mut diags);
                    if let Some(prev) = campaign_items.iter().find(|c: &&CampaignItem| c.policy.name.as_ref() == name) {
                        diags.push(Diagnostic::new(
                            Code::E017,
                            file,
                            src,
                            item.pos(),
                            format!("campaign `{name}` is already declared at {}", prev.at),
                        ));
                        continue;
                    }
                    let mut policy = CampaignPolicy { name: name.as_str().into(), ..Default::default() };
                    if let Some(p) = item.get("policy") {
                        check_keys(p, &["cap", "streak", "control_group"], file, src, &mut diags);
                        campaign_policy(p, &mut policy, file, src, &mut diags);
                    }
                    campaign_items.push(CampaignItem { policy, at: here(item), file: fi, node: item.clone() });
                }
                Some(_) => rule_items.push((fi, item)),
                None => {
                    let hint = if item.get("test").is_some() {
                        Some("rule tests go in a file of their own ending `.tests.yaml`".to_string())
                    } else {
                        None
                    };
                    diags.push(
                        Diagnostic::new(
                            Code::E002,
                            file,
                            src,
                            item.pos(),
                            "expected an item starting with `rule:`, `macro:` or `list:`",
                        )
                        .with_hint(hint),
                    );
                }
            }
        }
    }
    // Pass 2: rules.
    let mut slots = Slots::default();
    let mut rules = Vec::new();
    let mut decls = Vec::new();
    let mut rule_names: HashMap<String, String> = HashMap::new();
    {
        let mut checker = Checker::new(files, &lists, &macros, refdata, &mut slots, &mut diags, opts.max_window);
        for (fi, item) in rule_items {
            let (file, src) = (&files[fi].0, &files[fi].1);
            if let Some((rule, decl)) = compile_rule(item, file, src, &mut checker, &mut rule_names) {
                rules.push(rule);
                decls.push(decl);
            }
        }
    }
    let campaigns = build_campaigns(&mut rules, decls, campaign_items, files, &mut diags);
    for (name, m) in &macros {
        if !m.used.get() {
            let (file, src) = &files[m.file];
            diags.push(Diagnostic::new(Code::W101, file, src, m.node.pos(), format!("macro `{name}` is never used")));
        }
    }
    for (name, l) in &lists {
        if !l.used.get() {
            let at = defined_at.get(name).cloned().unwrap_or_default();
            let (file, line) = at.rsplit_once(':').unwrap_or(("", "0"));
            let src = files.iter().find(|f| f.0 == file).map_or("", |f| f.1.as_str());
            let line = line.parse().unwrap_or(0);
            diags.push(Diagnostic::new(
                Code::W102,
                file,
                src,
                yaml::Pos { line, col: 3 },
                format!("list `{name}` is never used"),
            ));
        }
    }
    // A macro used by several rules reports its own error once.
    diag::sort(&mut diags);
    diags.dedup_by(|a, b| {
        a.file == b.file && a.line == b.line && a.col == b.col && a.code == b.code && a.message == b.message
    });
    let errors = diags.iter().any(Diagnostic::is_error);
    let rules = (!errors).then(|| {
        let mut set = RuleSet {
            version: checksum(files),
            files: files.iter().map(|f| f.0.clone()).collect(),
            aggs: slots.aggs,
            seqs: slots.seqs,
            campaigns,
            ..RuleSet::default()
        };
        for (i, r) in rules.iter().enumerate() {
            if r.schedule.is_some() {
                set.scheduled.push(i as u32);
            }
            let single = r.on.iter().count() == 1;
            for k in r.on.iter() {
                set.by_kind[k as usize].add(k, i as u32, &r.condition, single);
            }
            if let Some(t) = &r.timer {
                set.cancel_kinds.0 |= t.cancel_on.0;
            }
            set.has_shadow |= r.shadow;
        }
        for (i, a) in set.aggs.iter().enumerate() {
            set.aggs_by_kind[a.kind as usize].push(i as u32);
        }
        for (i, s) in set.seqs.iter().enumerate() {
            let mut kinds = KindSet::default();
            for (k, _) in &s.steps {
                kinds.insert(*k);
            }
            for k in kinds.iter() {
                set.seqs_by_kind[k as usize].push(i as u32);
            }
        }
        set.rules = rules;
        set
    });
    Loaded { rules, diagnostics: diags }
}

/// Records where a list or macro name is defined; a second definition is an error (E017).
fn claim(
    defined_at: &mut HashMap<String, String>,
    name: &str,
    at: String,
    pos: yaml::Pos,
    file: &str,
    src: &str,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    if let Some(prev) = defined_at.get(name) {
        diags.push(Diagnostic::new(Code::E017, file, src, pos, format!("`{name}` is already defined at {prev}")));
        return false;
    }
    defined_at.insert(name.to_string(), at);
    true
}

fn checksum(files: &[(String, String)]) -> String {
    let mut bytes = Vec::new();
    for (name, text) in files {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0);
    }
    format!("{:016x}", crate::util::stable_hash(&bytes))
}

fn name_of(item: &yaml::Node, key: &str, file: &str, src: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let n = item.get(key)?;
    match n.as_str() {
        Some(s)
            if !s.is_empty()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !s.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            Some(s.to_string())
        }
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

fn check_keys(item: &yaml::Node, allowed: &[&str], file: &str, src: &str, diags: &mut Vec<Diagnostic>) {
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

fn parse_expr(node: &yaml::Node, file: &str, src: &str, diags: &mut Vec<Diagnostic>) -> Option<expr::syntax::Node> {
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

fn scalar<'n>(
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

fn kinds(node: &yaml::Node, key: &str, file: &str, src: &str, diags: &mut Vec<Diagnostic>) -> Option<KindSet> {
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

const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "on",
    "schedule",
    "condition",
    "action",
    "campaign",
    "priority",
    "timer",
    "policy",
    "enabled",
    "mode",
];

fn compile_rule(
    item: &yaml::Node,
    file: &str,
    src: &str,
    ck: &mut Checker,
    names: &mut HashMap<String, String>,
) -> Option<(Rule, CampaignDecl)> {
    let diags_before = ck.diags.len();
    let name = name_of(item, "rule", file, src, ck.diags)?;
    check_keys(item, RULE_KEYS, file, src, ck.diags);
    if let Some(prev) = names.insert(name.clone(), format!("{file}:{}", item.pos().line)) {
        ck.diags.push(Diagnostic::new(
            Code::E017,
            file,
            src,
            item.pos(),
            format!("rule `{name}` is already defined at {prev}"),
        ));
    }
    let need = |key: &str, ck: &mut Checker| -> Option<&yaml::Node> {
        let n = item.get(key);
        if n.is_none() {
            ck.diags.push(Diagnostic::new(Code::E004, file, src, item.pos(), format!("rule `{name}` has no `{key}`")));
        }
        n
    };
    let schedule = scalar(item, "schedule", file, src, ck.diags).and_then(|(text, n)| match policy::hhmm(text) {
        Some(m) => Some(m),
        None => {
            ck.diags.push(Diagnostic::new(
                Code::E005,
                file,
                src,
                n.pos(),
                format!("`{text}` is not a time of day; write e.g. `09:00`"),
            ));
            None
        }
    });
    let on = if item.get("schedule").is_some() {
        if let Some(n) = item.get("on") {
            ck.diags.push(
                Diagnostic::new(Code::E033, file, src, n.pos(), "a scheduled rule runs at its time, not on events")
                    .with_hint(Some("drop `on:` or `schedule:`".into())),
            );
        }
        if let Some(n) = item.get("timer") {
            ck.diags.push(Diagnostic::new(Code::E033, file, src, n.pos(), "a scheduled rule cannot also have a timer"));
        }
        Some(KindSet(0))
    } else {
        need("on", ck).and_then(|n| kinds(n, "on", file, src, ck.diags))
    };
    let cond_node = need("condition", ck);
    let action = need("action", ck);
    let campaign = scalar(item, "campaign", file, src, ck.diags).map_or_else(|| name.clone(), |(s, _)| s.to_string());
    let desc = scalar(item, "desc", file, src, ck.diags).map_or("", |(s, _)| s).to_string();
    let priority = match scalar(item, "priority", file, src, ck.diags) {
        None => 50,
        Some((s, n)) => s.parse::<i32>().ok().filter(|p| (0..=1000).contains(p)).unwrap_or_else(|| {
            ck.diags.push(Diagnostic::new(
                Code::E005,
                file,
                src,
                n.pos(),
                "`priority` is a whole number from 0 to 1000",
            ));
            0
        }),
    };
    let enabled = match scalar(item, "enabled", file, src, ck.diags) {
        None => true,
        Some(("true", _)) => true,
        Some(("false", _)) => false,
        Some((_, n)) => {
            ck.diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), "`enabled` is true or false"));
            true
        }
    };
    let shadow = match scalar(item, "mode", file, src, ck.diags) {
        None | Some(("live", _)) => false,
        Some(("shadow", _)) => true,
        Some((s, n)) => {
            ck.diags.push(
                Diagnostic::new(Code::E005, file, src, n.pos(), format!("`{s}` is not a rule mode"))
                    .with_hint(Some("one of: live (the default), shadow (decided and reported, never sent)".into())),
            );
            false
        }
    };
    let on = on.unwrap_or(KindSet(0x3f));
    ck.scope = if item.get("schedule").is_some() { Scope::Timer } else { Scope::Rule(on) };
    let condition = cond_node.and_then(|n| {
        let ast = parse_expr(n, file, src, ck.diags)?;
        ck.condition(&ast, &Loc { file, source: src, node: n, base: 0 })
    });
    // Action.
    let mut channel = Channel::Sms;
    let mut template = None;
    let mut script = None;
    let mut queue = None;
    if let Some(a) = action {
        check_keys(a, &["channel", "template", "script", "queue"], file, src, ck.diags);
        match scalar(a, "channel", file, src, ck.diags) {
            Some((s, n)) => match Channel::parse(s) {
                Some(c) => channel = c,
                None => ck.diags.push(
                    Diagnostic::new(Code::E005, file, src, n.pos(), format!("`{s}` is not a channel"))
                        .with_hint(Some("one of: sms, call, ivr".into())),
                ),
            },
            None => ck.diags.push(Diagnostic::new(Code::E004, file, src, a.pos(), "the action has no `channel`")),
        }
        let tpl = |key: &str, ck: &mut Checker| {
            scalar(a, key, file, src, ck.diags)
                .and_then(|(text, n)| Template::compile(text, ck, &Loc { file, source: src, node: n, base: 0 }))
        };
        template = tpl("template", ck);
        script = tpl("script", ck);
        queue = scalar(a, "queue", file, src, ck.diags).map(|(s, _)| s.into());
        match channel {
            Channel::Sms | Channel::Ivr if a.get("template").is_none() => {
                ck.diags.push(Diagnostic::new(
                    Code::E004,
                    file,
                    src,
                    a.pos(),
                    format!("a {channel} action needs a `template`"),
                ));
            }
            Channel::Call if a.get("script").is_none() => {
                ck.diags.push(Diagnostic::new(
                    Code::E004,
                    file,
                    src,
                    a.pos(),
                    "a call action needs a `script` (what the agent says)",
                ));
            }
            _ => {}
        }
    }
    // Timer.
    let timer = item.get("timer").and_then(|t| {
        check_keys(t, &["after", "cancel_on", "cancel_if", "recheck"], file, src, ck.diags);
        let after = match scalar(t, "after", file, src, ck.diags) {
            Some((s, n)) => match crate::util::parse_duration(s) {
                Ok(ms) if ms > 0 => match limits::duration(ms) {
                    Ok(ms) => Some(ms),
                    Err(why) => {
                        ck.diags.push(Diagnostic::new(Code::E008, file, src, n.pos(), format!("`after: {s}` {why}")));
                        None
                    }
                },
                Ok(_) => {
                    ck.diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), "`after` must be longer than zero"));
                    None
                }
                Err(e) => {
                    ck.diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), e));
                    None
                }
            },
            None => {
                ck.diags.push(Diagnostic::new(
                    Code::E004,
                    file,
                    src,
                    t.pos(),
                    "a timer needs `after` (e.g. `after: 4h`)",
                ));
                None
            }
        };
        let cancel_on =
            t.get("cancel_on").map_or(Some(KindSet::default()), |n| kinds(n, "cancel_on", file, src, ck.diags));
        let cancel_if = t.get("cancel_if").and_then(|n| {
            let ast = parse_expr(n, file, src, ck.diags)?;
            let set = cancel_on.unwrap_or_default();
            if set.0 == 0 {
                ck.diags.push(Diagnostic::new(
                    Code::E004,
                    file,
                    src,
                    n.pos(),
                    "`cancel_if` needs `cancel_on` (the kinds of event that cancel)",
                ));
                return None;
            }
            ck.scope = Scope::Rule(set);
            let r = ck.condition(&ast, &Loc { file, source: src, node: n, base: 0 });
            ck.scope = Scope::Rule(on);
            r
        });
        let recheck = t.get("recheck").and_then(|n| {
            let ast = parse_expr(n, file, src, ck.diags)?;
            ck.scope = Scope::Timer;
            let r = ck.condition(&ast, &Loc { file, source: src, node: n, base: 0 });
            ck.scope = Scope::Rule(on);
            r
        });
        Some(TimerDef { after: after?, cancel_on: cancel_on?, cancel_if, recheck })
    });
    let (policy, campaign_decl) = match item.get("policy") {
        Some(p) => rule_policy(p, channel, file, src, ck.diags),
        None => Default::default(),
    };
    if ck.diags[diags_before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    let rule = Rule {
        name: name.into(),
        desc: desc.into(),
        file: file.into(),
        line: item.pos().line,
        on,
        condition: condition?,
        channel,
        template,
        script,
        queue,
        campaign: campaign.into(),
        campaign_idx: 0,
        priority,
        timer,
        schedule,
        policy,
        enabled,
        shadow,
    };
    Some((rule, campaign_decl))
}

/// A `campaign:` item as read, before rules are matched to it.
struct CampaignItem {
    policy: CampaignPolicy,
    at: String,
    file: usize,
    node: yaml::Node,
}

/// Campaign-wide settings a rule declared on itself (`streak`, `control_group`), with where.
#[derive(Default)]
struct CampaignDecl {
    streak: Option<(u32, yaml::Pos)>,
    control_group: Option<(f64, yaml::Pos)>,
}

/// Builds the campaign table: every campaign a rule names, with the policy of its
/// `campaign:` item and of its rules' `streak` / `control_group`, checked for contradictions.
fn build_campaigns(
    rules: &mut [Rule],
    decls: Vec<CampaignDecl>,
    items: Vec<CampaignItem>,
    files: &[(String, String)],
    diags: &mut Vec<Diagnostic>,
) -> Vec<CampaignPolicy> {
    let mut out: Vec<CampaignPolicy> = Vec::new();
    // Looked up by name for every rule: maps, or a pack of many rules takes quadratic time.
    let mut index: HashMap<std::sync::Arc<str>, usize> = HashMap::new();
    let declared: HashMap<&str, &CampaignItem> = items.iter().rev().map(|c| (&*c.policy.name, c)).collect();
    let sources: HashMap<&str, &str> = files.iter().map(|f| (f.0.as_str(), f.1.as_str())).collect();
    for (r, decl) in rules.iter_mut().zip(decls) {
        let idx = *index.entry(r.campaign.clone()).or_insert_with(|| {
            let declared = declared.get(&*r.campaign).map(|c| c.policy.clone());
            out.push(declared.unwrap_or_else(|| CampaignPolicy { name: (*r.campaign).into(), ..Default::default() }));
            out.len() - 1
        });
        let file = &*r.file;
        let src = sources.get(file).copied().unwrap_or("");
        // Decisions carry the campaign as a 16-bit index: more would wrap onto other campaigns.
        let Ok(idx) = u16::try_from(idx) else {
            if idx == usize::from(u16::MAX) + 1 {
                diags.push(Diagnostic::new(
                    Code::E008,
                    file,
                    src,
                    yaml::Pos { line: r.line, col: 3 },
                    format!(
                        "more than {} campaigns in one pack (this rule's `{}` is one too many)",
                        u16::MAX as usize + 1,
                        r.campaign
                    ),
                ));
            }
            continue;
        };
        r.campaign_idx = idx;
        let c = &mut out[usize::from(idx)];
        if let Some((v, pos)) = decl.streak {
            match c.streak_months {
                Some(old) if old != v => diags.push(Diagnostic::new(
                    Code::E031,
                    file,
                    src,
                    pos,
                    format!("campaign `{}` already has a streak of {old} months; a campaign has one streak", c.name),
                )),
                _ => c.streak_months = Some(v),
            }
        }
        if let Some((v, pos)) = decl.control_group {
            match c.control_group {
                Some(old) if (old - v).abs() > f64::EPSILON => diags.push(Diagnostic::new(
                    Code::E031,
                    file,
                    src,
                    pos,
                    format!("campaign `{}` already holds out {old}%; a campaign has one control group", c.name),
                )),
                _ => c.control_group = Some(v),
            }
        }
    }
    for it in &items {
        if !index.contains_key(&*it.policy.name) {
            let (file, src) = &files[it.file];
            let names: Vec<&str> = out.iter().map(|c| &*c.name).collect();
            let hint = crate::util::nearest(&it.policy.name, names).map(|n| format!("did you mean `{n}`?"));
            let pos = it.node.get("campaign").map_or(it.node.pos(), |n| n.pos());
            diags.push(
                Diagnostic::new(
                    Code::E030,
                    file,
                    src,
                    pos,
                    format!("no rule belongs to campaign `{}`: its policy would never apply", it.policy.name),
                )
                .with_hint(hint),
            );
        }
    }
    out
}

fn values(n: &yaml::Node) -> Vec<&yaml::Node> {
    match n {
        yaml::Node::Seq { items, .. } => items.iter().collect(),
        n => vec![n],
    }
}

fn caps(n: &yaml::Node, file: &str, src: &str, diags: &mut Vec<Diagnostic>) -> Vec<policy::Cap> {
    let mut out = Vec::new();
    for c in values(n) {
        match policy::parse_cap(c.as_str().unwrap_or("")) {
            Ok(cap) if matches!(cap.window, policy::CapWindow::Rolling(w) if limits::duration(w).is_err()) => {
                let msg = format!("the window of `{}` {}", cap.text, limits::TOO_LONG);
                diags.push(Diagnostic::new(Code::E008, file, src, c.pos(), msg))
            }
            Ok(cap) if cap.max == 0 => diags.push(
                Diagnostic::new(Code::E033, file, src, c.pos(), "a cap of 0 never lets a contact through")
                    .with_hint(Some("to stop a rule, set `enabled: false`".into())),
            ),
            Ok(cap) => out.push(cap),
            Err(e) => diags.push(Diagnostic::new(Code::E005, file, src, c.pos(), e)),
        }
    }
    out
}

fn campaign_policy(p: &yaml::Node, out: &mut CampaignPolicy, file: &str, src: &str, diags: &mut Vec<Diagnostic>) {
    if let Some(n) = p.get("cap") {
        out.caps = caps(n, file, src, diags);
    }
    if let Some(n) = p.get("streak") {
        match streak(n) {
            Ok(s) => out.streak_months = Some(s),
            Err(e) => diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), e)),
        }
    }
    if let Some(n) = p.get("control_group") {
        match policy::parse_percent(n.as_str().unwrap_or("")) {
            Ok(v) => out.control_group = Some(v),
            Err(e) => diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), e)),
        }
    }
}

/// A streak in months, at most [`limits::MAX_STREAK_MONTHS`].
fn streak(n: &yaml::Node) -> Result<u32, String> {
    let text = n.as_str().unwrap_or("");
    match policy::parse_streak(text)? {
        m if m > limits::MAX_STREAK_MONTHS => Err(format!(
            "a streak of `{text}` is longer than {} months (100 years), the most a campaign may ask for",
            limits::MAX_STREAK_MONTHS
        )),
        m => Ok(m),
    }
}

const RULE_POLICY_KEYS: &[&str] = &[
    "cap",
    "streak",
    "quiet_hours",
    "expire_after",
    "transactional",
    "ignore_dnd",
    "exclude",
    "include",
    "control_group",
];

fn rule_policy(
    p: &yaml::Node,
    channel: Channel,
    file: &str,
    src: &str,
    diags: &mut Vec<Diagnostic>,
) -> (RulePolicy, CampaignDecl) {
    check_keys(p, RULE_POLICY_KEYS, file, src, diags);
    let mut out = RulePolicy::default();
    let mut decl = CampaignDecl::default();
    let mut bad = |n: &yaml::Node, msg: String| diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), msg));
    let boolean = |n: &yaml::Node, key: &str, bad: &mut dyn FnMut(&yaml::Node, String)| match n.as_str() {
        Some("true") => true,
        Some("false") => false,
        _ => {
            bad(n, format!("`{key}` is true or false"));
            false
        }
    };
    if let Some(n) = p.get("streak") {
        match streak(n) {
            Ok(s) => decl.streak = Some((s, n.pos())),
            Err(e) => bad(n, e),
        }
    }
    if let Some(n) = p.get("control_group") {
        match policy::parse_percent(n.as_str().unwrap_or("")) {
            Ok(v) => decl.control_group = Some((v, n.pos())),
            Err(e) => bad(n, e),
        }
    }
    let mut fate_node = None;
    let mut out_of_range = Vec::new();
    if let Some(n) = p.get("quiet_hours") {
        let (fate, hours) = match n {
            yaml::Node::Map { .. } => (n.get("fate"), n.get("hours")),
            _ => (Some(n), None),
        };
        if let Some(f) = fate {
            fate_node = Some(f);
            out.quiet = match f.as_str() {
                Some("defer") => QuietFate::Defer,
                Some("drop") => QuietFate::Drop,
                Some("ignore") => QuietFate::Ignore,
                _ => {
                    bad(f, "the quiet-hours fate is defer, drop or ignore".into());
                    QuietFate::default()
                }
            };
        }
        if let Some(h) = hours {
            match QuietHours::parse(h.as_str().unwrap_or("")) {
                Ok(q) if q.from == q.to => bad(h, "a quiet period must not be empty".into()),
                Ok(q) => out.quiet_hours = Some(q),
                Err(e) => bad(h, e),
            }
        }
    }
    if let Some(n) = p.get("expire_after") {
        match crate::util::parse_duration(n.as_str().unwrap_or("")) {
            Ok(ms) if ms > 0 => match limits::duration(ms) {
                Ok(ms) => out.expire_after = Some(ms),
                // Not `bad`: another code (E008). Pushed once `bad` is done with `diags`.
                Err(why) => out_of_range.push(Diagnostic::new(
                    Code::E008,
                    file,
                    src,
                    n.pos(),
                    format!("`expire_after: {}` {why}", n.as_str().unwrap_or("")),
                )),
            },
            Ok(_) => bad(n, "`expire_after` must be longer than zero".into()),
            Err(e) => bad(n, e),
        }
    }
    if let Some(n) = p.get("transactional") {
        out.transactional = boolean(n, "transactional", &mut bad);
    }
    if let Some(n) = p.get("ignore_dnd") {
        out.ignore_dnd = boolean(n, "ignore_dnd", &mut bad);
    }
    for (key, list) in [("exclude", &mut out.exclude), ("include", &mut out.include)] {
        if let Some(n) = p.get(key) {
            for e in values(n) {
                let s = e.as_str().unwrap_or("");
                match policy::Exclusion::parse(s) {
                    Some(x) => list.push(x),
                    None => {
                        let hint = crate::util::nearest(s, policy::EXCLUDABLE.iter().copied())
                            .map(|h| format!("; did you mean `{h}`?"))
                            .unwrap_or_default();
                        bad(e, format!("cannot {key} `{s}`{hint}"));
                    }
                }
            }
        }
    }
    diags.extend(out_of_range);
    if let Some(n) = p.get("cap") {
        out.caps = caps(n, file, src, diags);
    }
    // Contradictions.
    if out.transactional {
        if let Some((_, pos)) = decl.control_group {
            diags.push(Diagnostic::new(
                Code::E033,
                file,
                src,
                pos,
                "a transactional message has no control group: the subscriber needs it",
            ));
        }
    }
    if out.ignore_dnd && !out.transactional {
        if let Some(n) = p.get("ignore_dnd") {
            diags.push(Diagnostic::new(
                Code::E033,
                file,
                src,
                n.pos(),
                "only a transactional message may ignore do-not-disturb",
            ));
        }
    }
    if channel == Channel::Ivr && matches!(out.quiet, QuietFate::Defer | QuietFate::Drop) {
        if let Some(f) = fate_node {
            diags.push(
                Diagnostic::new(
                    Code::E032,
                    file,
                    src,
                    f.pos(),
                    "an IVR answer is given while the caller is on the line: quiet hours cannot defer or drop it",
                )
                .with_hint(Some("use `quiet_hours: ignore`".into())),
            );
        }
    }
    (out, decl)
}
