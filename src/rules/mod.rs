//! Rule files: read -> collect -> compile -> assemble, all errors at once.
//!
//! A rule pack is a set of YAML files (a directory is read recursively, in path order; files
//! ending `.tests.yaml` and `testdata/` folders are the pack's tests, not rules). Each file is
//! a list of items: `list` (named values), `macro` (a named condition), `campaign` (a campaign's
//! policy), `dictionary` (words for codes, [`words`]) and `rule`. Lists, macros and words are
//! shared by the whole pack and may be used before they are defined.
//!
//! A pack is compiled in phases, one file (or folder) each, as Falco's rule loader is:
//!
//! 1. [`read`]: files to text to YAML trees that keep every position ([`yaml`], [`lines`]);
//! 2. `collect`: every file's items sorted into lists, macros, campaigns, words and rule items;
//! 3. `compile`: each rule's condition, action, timer and policy, the condition language in
//!    [`expr`] (lexer, parser, checker and its table of built-in functions) and templates in
//!    [`template`]; then the campaign table;
//! 4. [`set`]: the [`RuleSet`], rules indexed by the event kind they listen to ([`index`]) with
//!    the per-subscriber slots (windows, sequences) the state must keep.
//!
//! Every phase runs to the end whatever it finds, and every problem is a [`diag::Diagnostic`]
//! (`file:line:col`, a stable code, a hint where one is cheap). Nothing on the event path
//! parses text or looks a rule up by name. [`testing`] runs a pack's own tests.

pub mod asks;
pub mod carry;
mod collect;
mod compile;
pub mod derive;
pub mod diag;
pub mod eval;
pub mod expr;
pub mod former;
pub mod index;
mod item;
pub mod journey;
pub mod length;
pub mod limits;
pub mod lines;
pub mod policy;
pub mod read;
pub mod set;
pub mod template;
pub mod words;
pub mod yaml;

use crate::refdata::RefData;
use diag::Diagnostic;
use expr::check::{Checker, Names, Slots};
pub use read::{is_test_file, rule_files};
pub use set::{Rule, RuleSet, TimerDef};
use std::path::PathBuf;
use std::sync::Arc;
pub use template::Template;

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Longest window a condition may ask for (the state keeps no more).
    pub max_window: i64,
    /// The unsubscribe keywords (`[policy.unsubscribe]`, normalised): the engine answers them
    /// itself, so an SMS asking for one is answered (W106).
    pub refusals: Vec<Box<str>>,
    /// The unsubscribe footer every marketing SMS carries (`[policy.unsubscribe]`): part of
    /// its length (W110).
    pub footer: Box<str>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        let own = policy::Unsubscribe::default();
        LoadOptions {
            max_window: 62 * crate::time::DAY,
            refusals: own.refusals().cloned().collect(),
            footer: own.footer.clone(),
        }
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

/// Loads and compiles rule files. I/O errors become diagnostics too.
pub fn load(paths: &[PathBuf], refdata: Option<&RefData>, opts: &LoadOptions) -> Loaded {
    let (files, diagnostics) = read::files(paths);
    let mut loaded = compile(files, refdata, opts);
    loaded.diagnostics.splice(0..0, diagnostics);
    if loaded.errors() > 0 {
        loaded.rules = None;
    }
    loaded
}

/// Compiles rule files given as (name, text). This is the one way rules are compiled:
/// `validate`, start-up, hot reload and `tidings test` all come here (through [`load`]).
pub fn compile(mut files: Vec<(String, String)>, refdata: Option<&RefData>, opts: &LoadOptions) -> Loaded {
    for (_, text) in &mut files {
        read::strip_bom(text);
    }
    // One line index per file for every diagnostic below (see `lines`).
    lines::with_sources(files.iter().map(|f| f.1.as_str()), || compile_files(&files, refdata, opts))
}

/// The phases, in order, over files given as (name, text).
fn compile_files(files: &[(String, String)], refdata: Option<&RefData>, opts: &LoadOptions) -> Loaded {
    let mut diags = Vec::new();
    let docs = read::parse(files, &mut diags);
    let mut defs = collect::collect(files, &docs, &mut diags);
    let words = Arc::new(words::Dictionary::new(std::mem::take(&mut defs.words)));
    let mut slots = Slots::default();
    let (mut rules, decls, journeys, names_read) = {
        let mut checker = Checker::new(
            Names { files, lists: &defs.lists, macros: &defs.macros, refdata, words: &words },
            &mut slots,
            &mut diags,
            opts.max_window,
        );
        let derives = compile::derives(&defs.derives, &mut checker);
        let (mut rules, mut decls) = compile::rules(&defs.rules, &mut checker);
        let js = compile::journeys(&defs.journeys, rules.len(), &mut checker);
        for (r, d) in js.rules {
            rules.push(r);
            decls.push(d);
        }
        let asks = std::mem::take(&mut checker.asks);
        let answered = std::mem::take(&mut checker.replies_read);
        checker.diags.extend(asks::unanswered(asks, &answered, &opts.refusals));
        let lengths = std::mem::take(&mut checker.lengths);
        checker.diags.extend(length::over_budget(lengths, &opts.footer));
        let names_read = std::mem::take(&mut checker.names_read);
        (rules, decls, (js.journeys, js.steps, derives), names_read)
    };
    // Rule and campaign names compared with an outcome's or a reply's: the pack's own (a rule's
    // former names too: replies to what it sent under them still come).
    {
        let names: Vec<&str> =
            rules.iter().flat_map(|r| std::iter::once(&*r.name).chain(r.was.iter().map(|f| &*f.name))).collect();
        let campaigns: Vec<&str> =
            rules.iter().map(|r| &*r.campaign).chain(defs.campaigns.iter().map(|c| c.name.as_str())).collect();
        diags.extend(expr::check::unknown_names(names_read, &names, &campaigns));
    }
    compile::check_formers(files, (&rules, &journeys.0, &journeys.1, &journeys.2), &mut diags);
    let named = compile::campaigns_named(&defs.rules, &defs.journeys);
    let campaigns = compile::build_campaigns(&mut rules, decls, &defs.campaigns, &named, files, &mut diags);
    defs.warn_unused(files, &mut diags);
    // A macro used by several rules reports its own error once.
    diag::sort(&mut diags);
    diags.dedup_by(|a, b| {
        a.file == b.file && a.line == b.line && a.col == b.col && a.code == b.code && a.message == b.message
    });
    let errors = diags.iter().any(Diagnostic::is_error);
    let rules = (!errors).then(|| RuleSet::assemble(files, rules, slots, campaigns, journeys));
    Loaded { rules, diagnostics: diags }
}
