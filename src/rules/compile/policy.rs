//! Contact policy as a rule or a `campaign:` item writes it (`cap`, `streak`, `quiet_hours`,
//! `expire_after`, `exclude` ...), parsed into the policy module's types and checked for what
//! cannot work together (a transactional message in a control group, an IVR answer deferred).

use crate::contact::Channel;
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::item::{check_keys, values};
use crate::rules::policy::{self, CampaignPolicy, QuietFate, QuietHours, RulePolicy};
use crate::rules::{limits, yaml};

/// Campaign-wide settings a rule declared on itself (`streak`, `control_group`), with where.
#[derive(Default)]
pub(in crate::rules) struct CampaignDecl {
    pub streak: Option<(u32, yaml::Pos)>,
    pub control_group: Option<(f64, yaml::Pos)>,
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

pub(super) fn campaign_policy(
    p: &yaml::Node,
    out: &mut CampaignPolicy,
    file: &str,
    src: &str,
    diags: &mut Vec<Diagnostic>,
) {
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
    out.sender = sender(p, file, src, diags);
}

/// `sender: "10658888"`: the number a campaign's or a rule's SMS go out from.
fn sender(p: &yaml::Node, file: &str, src: &str, diags: &mut Vec<Diagnostic>) -> Option<Box<str>> {
    let n = p.get("sender")?;
    match policy::parse_sender(n.as_str().unwrap_or("")) {
        Ok(s) => Some(s),
        Err(e) => {
            diags.push(Diagnostic::new(Code::E005, file, src, n.pos(), e));
            None
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
    "sender",
];

pub(super) fn rule_policy(
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
        match crate::time::parse_duration(n.as_str().unwrap_or("")) {
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
    out.sender = sender(p, file, src, diags);
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
    let never_quiet = match channel {
        Channel::Ivr => {
            Some("an IVR answer is given while the caller is on the line: quiet hours cannot defer or drop it")
        }
        Channel::Order => Some("an order is the subscriber's own request: quiet hours cannot defer or drop it"),
        Channel::Sms | Channel::Call => None,
    };
    if let (Some(why), true) = (never_quiet, matches!(out.quiet, QuietFate::Defer | QuietFate::Drop)) {
        if let Some(f) = fate_node {
            diags.push(
                Diagnostic::new(Code::E032, file, src, f.pos(), why)
                    .with_hint(Some("use `quiet_hours: ignore`".into())),
            );
        }
    }
    (out, decl)
}
