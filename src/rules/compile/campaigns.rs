//! The campaign table: every campaign the pack's rules name, in the order first named, with the
//! policy of its `campaign:` item and of its rules' `streak` / `control_group`, checked for
//! contradictions, and each rule given its campaign's index.

use super::policy::{CampaignDecl, campaign_policy};
use crate::rules::collect::CampaignItem;
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::item::check_keys;
use crate::rules::policy::CampaignPolicy;
use crate::rules::set::Rule;
use crate::rules::yaml;
use std::collections::{HashMap, HashSet};

/// The campaigns the rule and journey items name, compiled or refused (as [`super::header`]
/// reads them: `campaign:`, or the item's own name): a campaign whose only rule was refused is
/// not also reported as having none.
pub(in crate::rules) fn campaigns_named<'f>(
    rules: &[(usize, &'f yaml::Node)],
    journeys: &[(usize, &'f yaml::Node)],
) -> HashSet<&'f str> {
    let items =
        rules.iter().map(|(_, item)| (*item, "rule")).chain(journeys.iter().map(|(_, item)| (*item, "journey")));
    items.filter_map(|(item, key)| item.get("campaign").or_else(|| item.get(key))?.as_str()).collect()
}

/// Builds the campaign table: every campaign a rule names, with the policy of its
/// `campaign:` item and of its rules' `streak` / `control_group`, checked for contradictions.
/// `named`: the campaigns every rule and journey item names (refused ones too), for the
/// error on a `campaign:` item no rule belongs to.
pub(in crate::rules) fn build_campaigns(
    rules: &mut [Rule],
    decls: Vec<CampaignDecl>,
    items: &[CampaignItem],
    named: &HashSet<&str>,
    files: &[(String, String)],
    diags: &mut Vec<Diagnostic>,
) -> Vec<CampaignPolicy> {
    let mut out: Vec<CampaignPolicy> = Vec::new();
    // Looked up by name for every rule: maps, or a pack of many rules takes quadratic time.
    let mut index: HashMap<std::sync::Arc<str>, usize> = HashMap::new();
    // The `campaign:` items' own policies first.
    let policies: Vec<CampaignPolicy> = items.iter().map(|c| item_policy(c, files, diags)).collect();
    let declared: HashMap<&str, &CampaignPolicy> = policies.iter().rev().map(|p| (&*p.name, p)).collect();
    let sources: HashMap<&str, &str> = files.iter().map(|f| (f.0.as_str(), f.1.as_str())).collect();
    for (r, decl) in rules.iter_mut().zip(decls) {
        let idx = *index.entry(r.campaign.clone()).or_insert_with(|| {
            let declared = declared.get(&*r.campaign).map(|p| (*p).clone());
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
    costed_channels(rules, &out, items, files, diags);
    for it in items {
        if !index.contains_key(&*it.name) && !named.contains(it.name.as_str()) {
            let (file, src) = &files[it.file];
            let names: Vec<&str> = out.iter().map(|c| &*c.name).collect();
            let hint = crate::util::nearest(&it.name, names).map(|n| format!("did you mean `{n}`?"));
            let pos = it.node.get("campaign").map_or(it.node.pos(), |n| n.pos());
            diags.push(
                Diagnostic::new(
                    Code::E030,
                    file,
                    src,
                    pos,
                    format!("no rule belongs to campaign `{}`: its policy would never apply", it.name),
                )
                .with_hint(hint),
            );
        }
    }
    out
}

/// The policy a `campaign:` item gives its campaign.
fn item_policy(c: &CampaignItem, files: &[(String, String)], diags: &mut Vec<Diagnostic>) -> CampaignPolicy {
    let (file, src) = (&files[c.file].0, &files[c.file].1);
    let mut policy = CampaignPolicy { name: c.name.as_str().into(), ..Default::default() };
    if let Some(p) = c.node.get("policy") {
        check_keys(p, &["cap", "streak", "control_group", "sender", "suppress_after"], file, src, diags);
        campaign_policy(p, &mut policy, file, src, diags);
    }
    super::plan::campaign_plan(&c.node, &mut policy, file, src, diags);
    policy
}

/// A budget with a limit in fen must price every channel its campaign's rules contact on: a
/// channel left out would cost nothing and slip past the limit unseen.
fn costed_channels(
    rules: &[Rule],
    campaigns: &[CampaignPolicy],
    items: &[CampaignItem],
    files: &[(String, String)],
    diags: &mut Vec<Diagnostic>,
) {
    for it in items {
        let Some(c) = campaigns.iter().find(|c| *c.name == *it.name) else { continue };
        let Some(b) = c.budget.as_ref().filter(|b| b.limit_fen.is_some()) else { continue };
        let Some(node) = it.node.get("budget").and_then(|b| b.get("cost_fen")) else { continue };
        let mut told = Vec::new();
        for r in rules.iter().filter(|r| *r.campaign == *it.name && r.channel.is_contact()) {
            if b.cost_fen[r.channel as usize].is_none() && !told.contains(&r.channel) {
                told.push(r.channel);
                let (file, src) = (&files[it.file].0, &files[it.file].1);
                let msg = format!(
                    "rule `{}` of campaign `{}` contacts by {}, and `cost_fen` gives {} no cost",
                    r.name, it.name, r.channel, r.channel
                );
                let hint = format!("write `{}: 0` if it costs nothing", r.channel);
                diags.push(Diagnostic::new(Code::E033, file, src, node.pos(), msg).with_hint(Some(hint)));
            }
        }
    }
}
