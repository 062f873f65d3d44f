//! Contact policy as a rule or a `campaign:` item writes it (`cap`, `streak`, `quiet_hours`,
//! `expire_after`, `exclude` ...), parsed into the policy module's types and checked for what
//! cannot work together (a transactional message in a control group, an IVR answer deferred).

use crate::contact::Channel;
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::expr::check::Checker;
use crate::rules::expr::schema::Ty;
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
    if let Some(n) = p.get("suppress_after") {
        out.suppress_after = suppress_after(n, file, src, diags);
    }
}

const SUPPRESS_AFTER_KEYS: &[&str] = &["ignored", "within", "for", "response_window", "count"];

/// `suppress_after: { ignored: 2, within: 30d, for: 60d, response_window: 3d, count: [refused] }`
/// (see [`policy::SuppressAfter`]); `None` after a diagnostic for every mistake in it.
fn suppress_after(n: &yaml::Node, file: &str, src: &str, diags: &mut Vec<Diagnostic>) -> Option<policy::SuppressAfter> {
    let at = |n: &yaml::Node, code, msg: String| Diagnostic::new(code, file, src, n.pos(), msg);
    if !matches!(n, yaml::Node::Map { .. }) {
        let msg = format!("`suppress_after` is a mapping, not {}", n.kind_name());
        let hint = "write e.g. `suppress_after: { ignored: 2, within: 30d, for: 60d }`";
        diags.push(at(n, Code::E005, msg).with_hint(Some(hint.into())));
        return None;
    }
    check_keys(n, SUPPRESS_AFTER_KEYS, file, src, diags);
    let before = diags.len();
    let required = |key: &str, diags: &mut Vec<Diagnostic>| {
        let v = n.get(key);
        if v.is_none() {
            diags.push(at(n, Code::E004, format!("`suppress_after` needs `{key}`")));
        }
        v
    };
    let ignored = required("ignored", diags).and_then(|v| match v.as_str().map(|s| s.trim().parse::<u32>()) {
        Some(Ok(k)) if k > 0 => Some(k),
        _ => {
            let msg = format!("`ignored: {}` is not a count of offers, 1 or more", v.as_str().unwrap_or("…"));
            diags.push(at(v, Code::E005, msg));
            None
        }
    });
    let window = |key: &str, v: Option<&yaml::Node>, diags: &mut Vec<Diagnostic>| {
        let v = v?;
        let text = v.as_str().unwrap_or("");
        match crate::time::parse_duration(text) {
            Ok(ms) if ms > 0 => match limits::duration(ms) {
                Ok(ms) => Some(ms),
                Err(why) => {
                    diags.push(at(v, Code::E008, format!("`{key}: {text}` {why}")));
                    None
                }
            },
            Ok(_) => {
                diags.push(at(v, Code::E005, format!("`{key}` must be longer than zero")));
                None
            }
            Err(e) => {
                diags.push(at(v, Code::E005, e));
                None
            }
        }
    };
    let within_node = required("within", diags);
    let within = window("within", within_node, diags);
    let pause_node = required("for", diags);
    let pause = window("for", pause_node, diags);
    let response_window = window("response_window", n.get("response_window"), diags);
    let (mut count_refused, mut count_failed) = (false, false);
    for c in n.get("count").map(values).unwrap_or_default() {
        match c.as_str().unwrap_or("") {
            "refused" => count_refused = true,
            "failed" => count_failed = true,
            other => {
                let hint = crate::util::nearest(other, policy::SUPPRESS_COUNTABLE.iter().copied())
                    .map(|h| format!("did you mean `{h}`?"))
                    .unwrap_or_else(|| "`count:` lists `refused` (call results) and `failed` (deliveries)".into());
                diags.push(at(c, Code::E005, format!("`suppress_after` cannot count `{other}`")).with_hint(Some(hint)));
            }
        }
    }
    if diags.len() > before {
        return None;
    }
    Some(policy::SuppressAfter {
        ignored: ignored?,
        within: within?,
        pause: pause?,
        response_window,
        count_refused,
        count_failed,
        within_text: within_node.and_then(|v| v.as_str()).unwrap_or("").trim().into(),
    })
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

/// What is wrong with an entry of `exclude:`: its code, the message and a hint.
type Refused = (Code, String, Option<String>);

/// `derived.NAME` (a true/false attribute: excluded when true) or `derived.NAME:VALUE` (an
/// enumerated one: excluded when equal) in a rule's `exclude:`, resolved against the pack's
/// derive table `derived` (name and type by slot). Numbers are refused: a threshold is a
/// condition, which a true/false derive names once for every rule that excludes on it.
/// `Ok(None)`: a derive refused with errors of its own (`failed`), not reported again.
fn derived_exclusion(
    s: &str,
    key: &str,
    derived: &[(String, Ty)],
    failed: &[String],
) -> Result<Option<policy::Exclusion>, Refused> {
    let rest = s.strip_prefix("derived.").unwrap_or(s);
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let (name, tail) = rest.split_at(end);
    let tail = tail.trim_start();
    // The threshold as a derive's condition: the comparison written, or one of the type's.
    let number_hint = |cmp: &str| {
        Some(format!(
            "define a true/false derive, e.g. `derive: {name}_high` with `value: derived.{name} {cmp}`, \
             and exclude `derived.{name}_high`"
        ))
    };
    let value = match tail.strip_prefix(':') {
        Some(v) => Some(v.trim()),
        None if tail.is_empty() => None,
        None => {
            let msg = format!("`{s}`: an exclusion does not compare; it names a true/false or enumerated attribute");
            let cmp = tail.trim_start();
            let split = cmp.find(|c: char| !"<>=!".contains(c)).unwrap_or(cmp.len());
            return Err((Code::E005, msg, number_hint(&format!("{} {}", &cmp[..split], cmp[split..].trim()))));
        }
    };
    if key == "include" {
        let msg = format!("cannot include `{s}`: `include:` lifts the global exclusions, which read only the profile");
        let hint = "to contact only some subscribers, say so in the rule's condition".to_string();
        return Err((Code::E005, msg, Some(hint)));
    }
    let Some(slot) = derived.iter().position(|(n, _)| n == name) else {
        if failed.iter().any(|n| n == name) {
            return Ok(None);
        }
        let hint = crate::util::nearest(name, derived.iter().map(|d| d.0.as_str()))
            .map(|n| format!("did you mean `derived.{n}`?"))
            .or_else(|| Some("a `derive:` item defines it".into()));
        return Err((Code::E011, format!("unknown derived attribute `derived.{name}`"), hint));
    };
    let slot = u16::try_from(slot).map_err(|_| (Code::E008, "too many derived attributes".to_string(), None))?;
    match (derived[usize::from(slot)].1, value) {
        (Ty::Bool, None) => Ok(Some(policy::Exclusion::Derived { slot, value: None })),
        (Ty::Bool, Some(v)) => {
            let msg = format!("`derived.{name}` is true or false: write `derived.{name}`, not `:{v}`");
            let hint = format!("it excludes the subscribers for whom `derived.{name}` is true");
            Err((Code::E013, msg, Some(hint)))
        }
        (Ty::Sym(t), None) => {
            let msg = format!("`derived.{name}` is an enumerated value: name the one to exclude");
            let hint =
                t.names().first().map(|w| format!("e.g. `derived.{name}:{w}`; one of: {}", t.names().join(", ")));
            Err((Code::E005, msg, hint))
        }
        (Ty::Sym(t), Some(v)) => match t.index(v) {
            Some(i) => Ok(Some(policy::Exclusion::Derived { slot, value: Some(i) })),
            None => {
                let hint = match crate::util::nearest(v, t.names().iter().copied()) {
                    Some(w) => format!("did you mean `derived.{name}:{w}`?"),
                    None => format!("one of: {}", t.names().join(", ")),
                };
                Err((Code::E019, format!("`derived.{name}` is never `{v}`"), Some(hint)))
            }
        },
        (ty, _) => {
            let msg =
                format!("`derived.{name}` is {}: an exclusion names a true/false or enumerated attribute", ty.name());
            let cmp = match ty {
                Ty::Money => ">= 50 CNY",
                Ty::Duration => ">= 1h",
                _ => ">= 80",
            };
            Err((Code::E013, msg, number_hint(cmp)))
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
    "suppress_after",
    "request",
    "alongside",
];

/// A rule's (or a journey step's) `policy:`; `ck` gives the diagnostics and the pack's
/// derived attributes, which `exclude:` may name.
pub(super) fn rule_policy(
    p: &yaml::Node,
    channel: Channel,
    file: &str,
    src: &str,
    ck: &mut Checker,
) -> (RulePolicy, CampaignDecl) {
    let (derived, failed, diags) = (&ck.derived, &ck.derives_failed, &mut *ck.diags);
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
        let (fate, hours, judged) = match n {
            yaml::Node::Map { entries, .. } => {
                for (k, _) in entries {
                    let key = k.as_str().unwrap_or("");
                    if !["fate", "hours", "judged_at"].contains(&key) {
                        bad(k, format!("`quiet_hours` takes `fate`, `hours` and `judged_at`, not `{key}`"));
                    }
                }
                (n.get("fate"), n.get("hours"), n.get("judged_at"))
            }
            _ => (Some(n), None, None),
        };
        if let Some(j) = judged {
            match j.as_str() {
                Some("send") => out.quiet_at_trigger = false,
                Some("trigger") => out.quiet_at_trigger = true,
                _ => bad(j, "`judged_at` is send (the default: when the contact would go) or trigger (held only when its trigger came in quiet hours too)".into()),
            }
        }
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
    if let Some(n) = p.get("request") {
        out.request = boolean(n, "request", &mut bad);
    }
    if let Some(n) = p.get("alongside") {
        out.alongside = boolean(n, "alongside", &mut bad);
    }
    for (key, list) in [("exclude", &mut out.exclude), ("include", &mut out.include)] {
        if let Some(n) = p.get(key) {
            for e in values(n) {
                let s = e.as_str().unwrap_or("").trim();
                if s.starts_with("derived.") {
                    match derived_exclusion(s, key, derived, failed) {
                        Ok(x) => list.extend(x),
                        Err((code, msg, hint)) => {
                            out_of_range.push(Diagnostic::new(code, file, src, e.pos(), msg).with_hint(hint))
                        }
                    }
                    continue;
                }
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
    let suppress_node = p.get("suppress_after");
    if let Some(n) = suppress_node {
        out.suppress_after = suppress_after(n, file, src, diags);
    }
    // Contradictions.
    if let (true, Some(n)) = (out.transactional || channel == Channel::Order, suppress_node) {
        diags.push(
            Diagnostic::new(
                Code::E033,
                file,
                src,
                n.pos(),
                "a transactional message or an order is never suppressed for being ignored",
            )
            .with_hint(Some("remove `suppress_after`, or `transactional: true` if it is an offer".into())),
        );
    }
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
    if out.request {
        let hint = "a control group is for proactive offers: put it on the campaign, which holds out only those";
        if let Some((_, pos)) = decl.control_group {
            diags.push(
                Diagnostic::new(
                    Code::E033,
                    file,
                    src,
                    pos,
                    "a rule that answers the subscriber's own request (`request: true`) is never held out",
                )
                .with_hint(Some(hint.into())),
            );
        }
        if let Some(n) = suppress_node {
            diags.push(Diagnostic::new(
                Code::E033,
                file,
                src,
                n.pos(),
                "a rule that answers the subscriber's own request (`request: true`) is not suppressed for ignored offers",
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
