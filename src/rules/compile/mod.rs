//! Phase 3 of compiling a rule pack, compiling: each rule item becomes a [`Rule`], and the
//! campaigns the rules name become the campaign table ([`build_campaigns`]).
//!
//! A rule is compiled in the order it reads, one step per part, each mistake a diagnostic:
//! its name and keys, when it runs (`on:` event kinds or a daily `schedule:`), its header
//! (campaign, description, priority, enabled, mode), its condition (checked against the schema
//! and the pack's lists and macros by [`Checker`]), its [`action`], its [`timer`] and its
//! [`policy`]. A rule with any error is left out; the others are still compiled, so a pack
//! with three mistakes gets three messages.

mod action;
mod campaigns;
mod derive;
mod formerly;
mod journey;
mod plan;
mod policy;
mod timer;

pub(super) use campaigns::{build_campaigns, campaigns_named};
pub(super) use derive::derives;
pub(super) use formerly::check as check_formers;
pub(super) use journey::journeys;

use super::diag::{Code, Diagnostic};
use super::expr::check::{Checker, Loc, Scope};
use super::item::{check_keys, former_names, kinds, name_of, parse_expr, scalar};
use super::set::Rule;
use super::yaml;
use crate::event::KindSet;
use policy::{CampaignDecl, rule_policy};
use std::collections::HashMap;

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
    "was",
];

/// Compiles the rule items (file index, item) in order: the rules without errors, each with
/// the campaign settings it declared (for [`build_campaigns`]).
pub(super) fn rules(items: &[(usize, &yaml::Node)], ck: &mut Checker) -> (Vec<Rule>, Vec<CampaignDecl>) {
    let mut rules = Vec::new();
    let mut decls = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let files = ck.files;
    for &(fi, item) in items {
        let (file, src) = (&files[fi].0, &files[fi].1);
        if let Some((rule, decl)) = compile_rule(item, file, src, ck, &mut names) {
            rules.push(rule);
            decls.push(decl);
        }
    }
    (rules, decls)
}

/// A rule's header: the keys that are single values with a default.
struct Header {
    campaign: String,
    desc: String,
    priority: i32,
    enabled: bool,
    shadow: bool,
}

fn compile_rule(
    item: &yaml::Node,
    file: &str,
    src: &str,
    ck: &mut Checker,
    names: &mut HashMap<String, String>,
) -> Option<(Rule, CampaignDecl)> {
    let diags_before = ck.diags.len();
    // What the rule asks subscribers to reply and which replies it reads: a rule that sends
    // nothing (disabled, or shadow) neither asks nor answers (W106).
    let (asks_before, reads_before) = (ck.asks.len(), ck.replies_read.len());
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
    let schedule = schedule(item, file, src, ck.diags);
    let on = if item.get("schedule").is_some() {
        scheduled_alone(item, file, src, ck.diags);
        Some(KindSet(0))
    } else {
        need("on", ck).and_then(|n| kinds(n, "on", file, src, ck.diags))
    };
    let cond_node = need("condition", ck);
    let action = need("action", ck);
    let header = header(item, &name, file, src, ck.diags);
    let sends = header.enabled && !header.shadow;
    // The condition.
    let on = on.unwrap_or(KindSet(0x3f));
    ck.scope = if item.get("schedule").is_some() { Scope::Timer } else { Scope::Rule(on) };
    let condition = cond_node.and_then(|n| {
        let ast = parse_expr(n, file, src, ck.diags)?;
        ck.condition(&ast, &Loc { file, source: src, node: n, base: 0 })
    });
    let mut action = action.map(|a| action::compile(a, file, src, ck)).unwrap_or_default();
    let timer = item.get("timer").and_then(|t| timer::compile(t, on, file, src, ck));
    let (policy, campaign_decl) = match item.get("policy") {
        Some(p) => rule_policy(p, action.channel, file, src, ck),
        None => Default::default(),
    };
    action::budget(action.length.take(), &policy, ck);
    if !sends {
        ck.asks.truncate(asks_before);
        ck.replies_read.truncate(reads_before);
    }
    if ck.diags[diags_before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    let rule = Rule {
        name: name.into(),
        desc: header.desc.into(),
        file: file.into(),
        line: item.pos().line,
        on,
        condition: condition?.into(),
        channel: action.channel,
        template: action.template,
        script: action.script,
        queue: action.queue,
        about: action.about,
        asks: action.asks,
        offer: action.offer,
        parts: action.parts,
        campaign: header.campaign.into(),
        campaign_idx: 0,
        priority: header.priority,
        timer,
        schedule,
        policy,
        enabled: header.enabled,
        shadow: header.shadow,
        was: former_names(item, file, src, ck.diags).into(),
    };
    Some((rule, campaign_decl))
}

/// `schedule: HH:MM`, a daily rule's local minute of the day.
fn schedule(item: &yaml::Node, file: &str, src: &str, diags: &mut Vec<Diagnostic>) -> Option<u32> {
    scalar(item, "schedule", file, src, diags).and_then(|(text, n)| match crate::rules::policy::hhmm(text) {
        Some(m) => Some(m),
        None => {
            diags.push(Diagnostic::new(
                Code::E005,
                file,
                src,
                n.pos(),
                format!("`{text}` is not a time of day; write e.g. `09:00`"),
            ));
            None
        }
    })
}

/// A scheduled rule runs at its time: it neither listens to events nor has a timer.
fn scheduled_alone(item: &yaml::Node, file: &str, src: &str, diags: &mut Vec<Diagnostic>) {
    if let Some(n) = item.get("on") {
        diags.push(
            Diagnostic::new(Code::E033, file, src, n.pos(), "a scheduled rule runs at its time, not on events")
                .with_hint(Some("drop `on:` or `schedule:`".into())),
        );
    }
    if let Some(n) = item.get("timer") {
        diags.push(Diagnostic::new(Code::E033, file, src, n.pos(), "a scheduled rule cannot also have a timer"));
    }
}

/// The item's `priority` (`default` when it has none): a whole number from 0 to 1000.
fn priority(item: &yaml::Node, default: i32, file: &str, src: &str, diags: &mut Vec<Diagnostic>) -> i32 {
    match scalar(item, "priority", file, src, diags) {
        None => default,
        Some((s, n)) => s.parse::<i32>().ok().filter(|p| (0..=1000).contains(p)).unwrap_or_else(|| {
            diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), "`priority` is a whole number from 0 to 1000"));
            0
        }),
    }
}

/// The rule's campaign (its own name by default), description, priority, `enabled` and mode.
fn header(item: &yaml::Node, name: &str, file: &str, src: &str, diags: &mut Vec<Diagnostic>) -> Header {
    let campaign = scalar(item, "campaign", file, src, diags).map_or_else(|| name.to_string(), |(s, _)| s.to_string());
    let desc = scalar(item, "desc", file, src, diags).map_or("", |(s, _)| s).to_string();
    let priority = priority(item, 50, file, src, diags);
    let enabled = match scalar(item, "enabled", file, src, diags) {
        None => true,
        Some(("true", _)) => true,
        Some(("false", _)) => false,
        Some((_, n)) => {
            diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), "`enabled` is true or false"));
            true
        }
    };
    let shadow = match scalar(item, "mode", file, src, diags) {
        None | Some(("live", _)) => false,
        Some(("shadow", _)) => true,
        Some((s, n)) => {
            diags.push(
                Diagnostic::new(Code::E005, file, src, n.pos(), format!("`{s}` is not a rule mode"))
                    .with_hint(Some("one of: live (the default), shadow (decided and reported, never sent)".into())),
            );
            false
        }
    };
    Header { campaign, desc, priority, enabled, shadow }
}
