//! Phase 2 of compiling a rule pack, collecting: every file's items sorted into the pack's
//! lists, macros, `campaign:` items and `dictionary:` words (shared by the whole pack, so a
//! rule may use a macro defined later or in another file, and a template a word given in any
//! file) and the rule items left for the compile phase.
//!
//! A name defined twice is refused here, where both places are known; whether a list or macro
//! is used is only known once the rules are compiled ([`Defs::warn_unused`]).

use super::diag::{Code, Diagnostic};
use super::expr::check::{ListDef, MacroDef};
use super::item::{check_keys, name_of, parse_expr};
use super::yaml;
use std::cell::Cell;
use std::collections::HashMap;

/// What a pack defines, collected from all its files.
pub(super) struct Defs<'f> {
    pub lists: HashMap<String, ListDef>,
    pub macros: HashMap<String, MacroDef>,
    pub campaigns: Vec<CampaignItem>,
    /// The `dictionary:` items merged: code -> word.
    pub words: HashMap<Box<str>, Box<str>>,
    /// The rule items, with the index of their file, in file order.
    pub rules: Vec<(usize, &'f yaml::Node)>,
    /// The journey items, with the index of their file, in file order.
    pub journeys: Vec<(usize, &'f yaml::Node)>,
    /// The derive items, with the index of their file, in file order.
    pub derives: Vec<(usize, &'f yaml::Node)>,
    /// Where each list and macro name is defined (`file:line`).
    defined_at: HashMap<String, String>,
    /// Where each code of the dictionary is given a word (`file:line`).
    word_at: HashMap<Box<str>, String>,
}

/// The keys of a `campaign:` item (its plan is read by `compile::plan`).
const CAMPAIGN_KEYS: &[&str] = &["campaign", "desc", "policy", "owner", "start", "end", "status", "budget"];

/// A `campaign:` item as read, before rules are matched to it (its policy is compiled with
/// the campaign table).
pub(super) struct CampaignItem {
    pub name: String,
    /// `file:line`, for the error when the campaign is declared again.
    pub at: String,
    pub file: usize,
    pub node: yaml::Node,
}

/// Sorts the items of every file's document (`docs`, one entry per file of `files`).
pub(super) fn collect<'f>(
    files: &[(String, String)],
    docs: &'f [Vec<yaml::Node>],
    diags: &mut Vec<Diagnostic>,
) -> Defs<'f> {
    let mut c = Collector {
        files,
        diags,
        defs: Defs {
            lists: HashMap::new(),
            macros: HashMap::new(),
            campaigns: Vec::new(),
            words: HashMap::new(),
            rules: Vec::new(),
            journeys: Vec::new(),
            derives: Vec::new(),
            defined_at: HashMap::new(),
            word_at: HashMap::new(),
        },
    };
    for (fi, doc) in docs.iter().enumerate() {
        for item in c.items(fi, doc) {
            c.item(fi, item);
        }
    }
    c.defs
}

struct Collector<'a, 'f> {
    files: &'a [(String, String)],
    diags: &'a mut Vec<Diagnostic>,
    defs: Defs<'f>,
}

impl<'f> Collector<'_, 'f> {
    /// The items of a file's document: a list, or nothing (an empty file, or only comments).
    fn items(&mut self, fi: usize, doc: &'f [yaml::Node]) -> &'f [yaml::Node] {
        let (file, src) = (&self.files[fi].0, &self.files[fi].1);
        match doc {
            [] => &[],
            [yaml::Node::Seq { items, .. }] => items,
            [n] if n.is_null() => &[],
            [other, ..] => {
                self.diags.push(Diagnostic::new(
                    Code::E002,
                    file,
                    src,
                    other.pos(),
                    "a rule file is a list of items (`- rule: ...`, `- macro: ...`, `- list: ...`)",
                ));
                &[]
            }
        }
    }

    /// Files one item by the key that says what it is.
    fn item(&mut self, fi: usize, item: &'f yaml::Node) {
        let (file, src) = (&self.files[fi].0, &self.files[fi].1);
        match ["rule", "journey", "derive", "macro", "list", "campaign", "dictionary"]
            .into_iter()
            .find(|k| item.get(k).is_some())
        {
            Some("list") => self.list(fi, item),
            Some("macro") => self.macro_def(fi, item),
            Some("campaign") => self.campaign(fi, item),
            Some("dictionary") => self.dictionary(fi, item),
            Some("journey") => self.defs.journeys.push((fi, item)),
            Some("derive") => self.defs.derives.push((fi, item)),
            Some(_) => self.defs.rules.push((fi, item)),
            None => {
                let hint = if item.get("test").is_some() {
                    Some("rule tests go in a file of their own ending `.tests.yaml`".to_string())
                } else {
                    None
                };
                self.diags.push(
                    Diagnostic::new(
                        Code::E002,
                        file,
                        src,
                        item.pos(),
                        "expected an item starting with `rule:`, `journey:`, `derive:`, `macro:`, `list:`, `campaign:` or `dictionary:`",
                    )
                    .with_hint(hint),
                );
            }
        }
    }

    fn list(&mut self, fi: usize, item: &yaml::Node) {
        let (file, src) = (&self.files[fi].0, &self.files[fi].1);
        let Some(name) = name_of(item, "list", file, src, self.diags) else { return };
        check_keys(item, &["list", "items", "desc"], file, src, self.diags);
        let items = match item.get("items") {
            Some(yaml::Node::Seq { items, .. }) => {
                items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect()
            }
            Some(n) => {
                self.diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), "`items` must be a list"));
                return;
            }
            None => {
                self.diags.push(Diagnostic::new(
                    Code::E004,
                    file,
                    src,
                    item.pos(),
                    format!("list `{name}` has no `items`"),
                ));
                return;
            }
        };
        if !self.claim(fi, &name, item) {
            return;
        }
        self.defs.lists.insert(name, ListDef { items, used: Cell::new(false) });
    }

    fn macro_def(&mut self, fi: usize, item: &yaml::Node) {
        let (file, src) = (&self.files[fi].0, &self.files[fi].1);
        let Some(name) = name_of(item, "macro", file, src, self.diags) else { return };
        check_keys(item, &["macro", "condition", "desc"], file, src, self.diags);
        let Some(cond) = item.get("condition") else {
            self.diags.push(Diagnostic::new(
                Code::E004,
                file,
                src,
                item.pos(),
                format!("macro `{name}` has no `condition`"),
            ));
            return;
        };
        let ast = parse_expr(cond, file, src, self.diags);
        if !self.claim(fi, &name, item) {
            return;
        }
        self.defs.macros.insert(name, MacroDef { file: fi, node: cond.clone(), ast, used: Cell::new(false) });
    }

    fn campaign(&mut self, fi: usize, item: &yaml::Node) {
        let (file, src) = (&self.files[fi].0, &self.files[fi].1);
        let Some(name) = name_of(item, "campaign", file, src, self.diags) else { return };
        check_keys(item, CAMPAIGN_KEYS, file, src, self.diags);
        if let Some(prev) = self.defs.campaigns.iter().find(|c| c.name == name) {
            self.diags.push(Diagnostic::new(
                Code::E017,
                file,
                src,
                item.pos(),
                format!("campaign `{name}` is already declared at {}", prev.at),
            ));
            return;
        }
        let at = format!("{file}:{}", item.pos().line);
        self.defs.campaigns.push(CampaignItem { name, at, file: fi, node: item.clone() });
    }

    /// A `dictionary:` item: a mapping of codes to words, merged with the pack's others. The
    /// same code with another word is an error (E017) at the code, naming where it has its
    /// first word; the same word again is no news.
    fn dictionary(&mut self, fi: usize, item: &yaml::Node) {
        let (file, src) = (&self.files[fi].0, &self.files[fi].1);
        check_keys(item, &["dictionary", "desc"], file, src, self.diags);
        let shape = "`dictionary` is a mapping of codes to words (`data: 数据流量`)";
        let Some(yaml::Node::Map { entries, .. }) = item.get("dictionary") else {
            let at = item.get("dictionary").map_or(item.pos(), yaml::Node::pos);
            self.diags.push(Diagnostic::new(Code::E005, file, src, at, shape));
            return;
        };
        for (k, v) in entries {
            let (Some(code), Some(word)) = (k.as_str().filter(|c| !c.is_empty()), v.as_str()) else {
                let bad = if k.as_str().is_none_or(str::is_empty) { k } else { v };
                self.diags.push(Diagnostic::new(Code::E005, file, src, bad.pos(), shape));
                continue;
            };
            if word.trim().is_empty() || v.is_null() {
                self.diags.push(Diagnostic::new(
                    Code::E005,
                    file,
                    src,
                    v.pos(),
                    format!("`{code}` has no word; write the text a message shows for it"),
                ));
                continue;
            }
            match self.defs.words.get(code) {
                Some(prev) if **prev == *word => {}
                Some(prev) => {
                    let at = self.defs.word_at.get(code).cloned().unwrap_or_default();
                    self.diags.push(
                        Diagnostic::new(
                            Code::E017,
                            file,
                            src,
                            k.pos(),
                            format!("`{code}` already reads `{prev}` (at {at}), not `{word}`"),
                        )
                        .with_hint(Some("a code has one word in the whole pack".into())),
                    );
                }
                None => {
                    self.defs.word_at.insert(code.into(), format!("{file}:{}", k.pos().line));
                    self.defs.words.insert(code.into(), word.into());
                }
            }
        }
    }

    /// Records where a list or macro name is defined; a second definition is an error (E017).
    fn claim(&mut self, fi: usize, name: &str, item: &yaml::Node) -> bool {
        let (file, src) = (&self.files[fi].0, &self.files[fi].1);
        if let Some(prev) = self.defs.defined_at.get(name) {
            self.diags.push(Diagnostic::new(
                Code::E017,
                file,
                src,
                item.pos(),
                format!("`{name}` is already defined at {prev}"),
            ));
            return false;
        }
        self.defs.defined_at.insert(name.to_string(), format!("{file}:{}", item.pos().line));
        true
    }
}

impl Defs<'_> {
    /// A warning for every list and macro no rule used (known once the rules are compiled).
    pub fn warn_unused(&self, files: &[(String, String)], diags: &mut Vec<Diagnostic>) {
        for (name, m) in &self.macros {
            if !m.used.get() {
                let (file, src) = &files[m.file];
                diags.push(Diagnostic::new(
                    Code::W101,
                    file,
                    src,
                    m.node.pos(),
                    format!("macro `{name}` is never used"),
                ));
            }
        }
        for (name, l) in &self.lists {
            if !l.used.get() {
                let at = self.defined_at.get(name).cloned().unwrap_or_default();
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
    }
}
