//! A `journey:` item: how it starts, how long it may last, and its steps — each an optional
//! contact (compiled to a rule of its own, `journey.step`, so that contact policy, the decision
//! log and the reports treat it as any rule's) and the transitions that leave it.
//!
//! Besides each part's own checks, the journey as a whole is checked: every `goto` names a
//! step (or `end`), every step can be reached from the first, every step can be left, and no
//! loop of immediate transitions (`goto` without a trigger) exists.

use super::action;
use super::policy::{CampaignDecl, rule_policy};
use crate::event::{Kind, KindSet, OutcomeStatus};
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::expr::Ir;
use crate::rules::expr::check::{Checker, Loc, Scope};
use crate::rules::former::Former;
use crate::rules::item::{check_keys, former_names, kinds, name_of, parse_expr, scalar, values};
use crate::rules::journey::{Goto, JourneyDef, StepDef, Transition, When};
use crate::rules::set::Rule;
use crate::rules::template::Template;
use crate::rules::{limits, yaml};

const JOURNEY_KEYS: &[&str] =
    &["journey", "desc", "campaign", "priority", "start", "expire_after", "steps", "enabled", "was"];
const STEP_KEYS: &[&str] = &["step", "desc", "action", "priority", "policy", "next", "was"];
const NEXT_KEYS: &[&str] = &["outcome", "reply", "on", "if", "after", "at", "goto", "keep"];

/// What the journeys of a pack compile to: their definitions, their steps, and the rules of the
/// steps that contact (appended after the pack's own rules, from index `first_rule`).
#[derive(Default)]
pub(in crate::rules) struct Compiled {
    pub journeys: Vec<JourneyDef>,
    pub steps: Vec<StepDef>,
    pub rules: Vec<(Rule, CampaignDecl)>,
}

/// Compiles the journey items in order; `first_rule` is the index the first step rule will have.
pub(in crate::rules) fn journeys(items: &[(usize, &yaml::Node)], first_rule: usize, ck: &mut Checker) -> Compiled {
    let mut out = Compiled::default();
    let mut names: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for &(fi, item) in items {
        let files = ck.files;
        let (file, src) = (&files[fi].0, &files[fi].1);
        let before = ck.diags.len();
        let Some(name) = name_of(item, "journey", file, src, ck.diags) else { continue };
        if let Some(line) = names.insert(name.clone(), item.pos().line) {
            ck.diags.push(Diagnostic::new(
                Code::E017,
                file,
                src,
                item.pos(),
                format!("journey `{name}` is already defined at line {line}"),
            ));
        }
        let mut j = Journey {
            name,
            was: Vec::new(),
            file,
            src,
            first_rule: first_rule + out.rules.len(),
            out: Compiled::default(),
        };
        let def = j.compile(item, out.journeys.len() as u16, out.steps.len() as u32, ck);
        if ck.diags[before..].iter().any(Diagnostic::is_error) {
            continue;
        }
        if let Some(def) = def {
            out.journeys.push(def);
            out.steps.append(&mut j.out.steps);
            out.rules.append(&mut j.out.rules);
        }
    }
    out
}

struct Journey<'a> {
    name: String,
    /// Its former names (`was:`).
    was: Vec<Former>,
    file: &'a str,
    src: &'a str,
    first_rule: usize,
    out: Compiled,
}

impl Journey<'_> {
    fn diag(&self, ck: &mut Checker, code: Code, n: &yaml::Node, msg: impl Into<String>) {
        ck.diags.push(Diagnostic::new(code, self.file, self.src, n.pos(), msg));
    }

    fn compile(&mut self, item: &yaml::Node, index: u16, first: u32, ck: &mut Checker) -> Option<JourneyDef> {
        let (file, src) = (self.file, self.src);
        check_keys(item, JOURNEY_KEYS, file, src, ck.diags);
        self.was = former_names(item, file, src, ck.diags);
        let header = super::header(item, &self.name, file, src, ck.diags);
        let (start_on, start, schedule) = self.start(item, ck);
        let expire_after = match scalar(item, "expire_after", file, src, ck.diags) {
            Some((s, n)) => self.duration(s, n, "expire_after", ck),
            None => {
                self.diag(
                    ck,
                    Code::E004,
                    item,
                    format!("journey `{}` has no `expire_after` (how long it may last)", self.name),
                );
                None
            }
        };
        let Some(steps) = item.get("steps") else {
            self.diag(ck, Code::E004, item, format!("journey `{}` has no `steps`", self.name));
            return None;
        };
        let steps = values(steps);
        // Step names first: a transition may name a step written after it.
        let mut names: Vec<(String, &yaml::Node)> = Vec::new();
        for st in &steps {
            let Some(name) = name_of(st, "step", file, src, ck.diags) else {
                if st.get("step").is_none() {
                    self.diag(ck, Code::E004, st, "a journey step starts with `step: NAME`");
                }
                names.push((String::new(), st));
                continue;
            };
            if name == "end" {
                let at = st.get("step").unwrap_or(st);
                self.diag(ck, Code::E005, at, "`end` is where a journey ends; name the step otherwise");
            } else if names.iter().any(|(n, _)| *n == name) {
                self.diag(ck, Code::E017, st, format!("step `{name}` is already in journey `{}`", self.name));
            }
            names.push((name, st));
        }
        for (i, (name, st)) in names.iter().enumerate() {
            let scope = match start_on {
                Some(on) if i == 0 && on.0 != 0 => Scope::Rule(on),
                None if i == 0 => Scope::Rule(KindSet(0x3f)),
                _ => Scope::Timer,
            };
            let def = self.step(st, name, index, &names, scope, &header, ck);
            self.out.steps.push(def);
        }
        self.check_graph(&names, ck);
        Some(JourneyDef {
            name: self.name.as_str().into(),
            desc: header.desc.into(),
            file: file.into(),
            line: item.pos().line,
            campaign: header.campaign.into(),
            start_on: start_on?,
            start_steady: start
                .as_ref()
                .filter(|_| schedule.is_some())
                .and_then(crate::rules::expr::steady_part)
                .map(crate::rules::expr::Cond::new),
            start: start?.into(),
            schedule,
            expire_after: expire_after?,
            first,
            len: names.len() as u32,
            enabled: header.enabled,
            was: self.was.clone().into(),
        })
    }

    /// `start: {on: [kinds], condition: "..."}`, or `start: {schedule: "HH:MM", condition: "..."}`.
    fn start(&self, item: &yaml::Node, ck: &mut Checker) -> (Option<KindSet>, Option<Ir>, Option<u32>) {
        let (file, src) = (self.file, self.src);
        let Some(s) = item.get("start") else {
            self.diag(ck, Code::E004, item, format!("journey `{}` has no `start` (`on:` and `condition:`)", self.name));
            return (None, None, None);
        };
        check_keys(s, &["on", "schedule", "condition"], file, src, ck.diags);
        let schedule = scalar(s, "schedule", file, src, ck.diags).and_then(|(text, n)| {
            let m = crate::rules::policy::hhmm(text);
            if m.is_none() {
                self.diag(ck, Code::E005, n, format!("`{text}` is not a time of day; write e.g. `10:00`"));
            }
            m
        });
        let on = match (s.get("on"), s.get("schedule")) {
            (Some(n), Some(_)) => {
                self.diag(ck, Code::E033, n, "a journey starts on events or daily at its time, not both");
                None
            }
            (Some(n), None) => kinds(n, "on", file, src, ck.diags),
            (None, Some(_)) => Some(KindSet(0)),
            (None, None) => {
                self.diag(
                    ck,
                    Code::E004,
                    s,
                    "`start` needs `on` (the events that may start the journey) or `schedule`",
                );
                None
            }
        };
        let cond = match s.get("condition") {
            Some(n) => {
                ck.scope = if schedule.is_some() { Scope::Timer } else { Scope::Rule(on.unwrap_or(KindSet(0x3f))) };
                parse_expr(n, file, src, ck.diags)
                    .and_then(|ast| ck.condition(&ast, &Loc { file, source: src, node: n, base: 0 }))
            }
            None => {
                self.diag(ck, Code::E004, s, "`start` needs a `condition`");
                None
            }
        };
        (on, cond, schedule)
    }

    fn duration(&self, s: &str, n: &yaml::Node, key: &str, ck: &mut Checker) -> Option<i64> {
        match crate::time::parse_duration(s) {
            Ok(ms) if ms > 0 => match limits::duration(ms) {
                Ok(ms) => Some(ms),
                Err(why) => {
                    self.diag(ck, Code::E008, n, format!("`{key}: {s}` {why}"));
                    None
                }
            },
            Ok(_) => {
                self.diag(ck, Code::E005, n, format!("`{key}` must be longer than zero"));
                None
            }
            Err(e) => {
                self.diag(ck, Code::E005, n, e);
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        st: &yaml::Node,
        name: &str,
        journey: u16,
        names: &[(String, &yaml::Node)],
        scope: Scope,
        header: &super::Header,
        ck: &mut Checker,
    ) -> StepDef {
        let (file, src) = (self.file, self.src);
        check_keys(st, STEP_KEYS, file, src, ck.diags);
        let was = self.step_was(name, former_names(st, file, src, ck.diags));
        let mut rule = None;
        let mut channel = None;
        if let Some(a) = st.get("action") {
            ck.scope = scope;
            let mut action = action::compile(a, file, src, ck);
            channel = Some(action.channel);
            let (policy, decl) = match st.get("policy") {
                Some(p) => rule_policy(p, action.channel, file, src, ck),
                None => Default::default(),
            };
            action::budget(action.length.take(), &policy, ck);
            let priority = super::priority(st, header.priority, file, src, ck.diags);
            let desc = scalar(st, "desc", file, src, ck.diags)
                .map_or_else(|| format!("step {name} of journey {}", self.name), |(s, _)| s.to_string());
            rule = Some((self.first_rule + self.out.rules.len()) as u32);
            self.out.rules.push((
                Rule {
                    name: format!("{}.{name}", self.name).into(),
                    desc: desc.into(),
                    file: file.into(),
                    line: st.pos().line,
                    on: KindSet(0),
                    condition: Ir::Bool(true).into(),
                    channel: action.channel,
                    template: action.template,
                    script: action.script,
                    queue: action.queue,
                    about: action.about,
                    asks: action.asks,
                    offer: action.offer,
                    parts: action.parts,
                    campaign: header.campaign.as_str().into(),
                    campaign_idx: 0,
                    priority,
                    timer: None,
                    schedule: None,
                    policy,
                    enabled: header.enabled,
                    shadow: false,
                    was: was.clone().into(),
                },
                decl,
            ));
        } else if let Some(p) = st.get("policy") {
            self.diag(ck, Code::E033, p, "a step without an `action` has no contact for a policy to govern");
        }
        let mut next = Vec::new();
        match st.get("next") {
            Some(n) => {
                let written = values(n);
                if written.is_empty() {
                    self.diag(ck, Code::E042, n, format!("step `{name}` can never be left: its `next` is empty"));
                }
                for t in written {
                    if let Some(t) = self.transition(t, names, channel, ck) {
                        next.push(t);
                    }
                }
            }
            None => self.diag(
                ck,
                Code::E042,
                st,
                format!("step `{name}` can never be left: it has no `next` (write `- goto: end` to end the journey)"),
            ),
        }
        StepDef { journey, name: name.into(), rule, next, was: was.into() }
    }

    /// Step `name`'s former names as `journey.step`: each of the journey's names (its own and
    /// its former ones) with each of the step's (`own`: the step's `was:`), but its own two.
    fn step_was(&self, name: &str, own: Vec<Former>) -> Vec<Former> {
        let steps = std::iter::once((name, None)).chain(own.iter().map(|f| (&*f.name, Some(f.at))));
        let journeys: Vec<(&str, Option<yaml::Pos>)> = std::iter::once((self.name.as_str(), None))
            .chain(self.was.iter().map(|f| (&*f.name, Some(f.at))))
            .collect();
        let mut was = Vec::new();
        for (s, s_at) in steps {
            for (j, j_at) in &journeys {
                if let Some(at) = s_at.or(*j_at) {
                    was.push(Former { name: format!("{j}.{s}").into(), at });
                }
            }
        }
        was
    }

    /// One transition: what takes it (at most one of `outcome`, `reply`, `on`, `after`, `at`;
    /// none is "at once"), where it goes, what it keeps.
    fn transition(
        &self,
        t: &yaml::Node,
        names: &[(String, &yaml::Node)],
        channel: Option<crate::contact::Channel>,
        ck: &mut Checker,
    ) -> Option<Transition> {
        let (file, src) = (self.file, self.src);
        check_keys(t, NEXT_KEYS, file, src, ck.diags);
        let triggers: Vec<&str> =
            ["outcome", "reply", "on", "after", "at"].into_iter().filter(|k| t.get(k).is_some()).collect();
        if triggers.len() > 1 {
            self.diag(ck, Code::E033, t, format!("one trigger per transition, not {}", triggers.join(" and ")));
            return None;
        }
        let mut scope = Scope::Timer;
        let when = match triggers.first().copied() {
            None => When::Now,
            Some("outcome") => {
                let n = t.get("outcome")?;
                if channel.is_none() {
                    self.diag(ck, Code::E005, n, "`outcome` is what came of the step's contact; this step makes none");
                }
                scope = Scope::Rule(Kind::Outcome.into_set());
                let mut mask = 0u16;
                for v in values(n) {
                    let s = v.as_str().unwrap_or("");
                    match OutcomeStatus::parse(s) {
                        Some(o) => {
                            mask |= 1 << o as u16;
                            if let Some(ch) = channel.filter(|ch| !reported(*ch).contains(&o)) {
                                let of: Vec<&str> = reported(ch).iter().map(|o| o.as_str()).collect();
                                let msg =
                                    format!("{} never reports `{s}`: its outcomes are {}", contact(ch), of.join(", "));
                                let hint = Some("this transition is never taken".to_string());
                                ck.diags.push(Diagnostic::new(Code::W105, file, src, v.pos(), msg).with_hint(hint));
                            }
                        }
                        None => ck.diags.push(
                            Diagnostic::new(Code::E019, file, src, v.pos(), format!("`{s}` is not an outcome"))
                                .with_hint(Some(format!("one of: {}", OutcomeStatus::NAMES.join(", ")))),
                        ),
                    }
                }
                When::Outcome(mask)
            }
            Some("reply") => {
                let n = t.get("reply")?;
                if channel != Some(crate::contact::Channel::Sms) {
                    self.diag(ck, Code::E005, n, "`reply` answers the step's SMS; this step sends none");
                }
                scope = Scope::Rule(Kind::Reply.into_set());
                match n.as_str() {
                    Some("any") => When::Reply(None),
                    _ => {
                        let kws: Box<[_]> =
                            values(n).iter().map(|v| crate::event::keyword(v.as_str().unwrap_or(""))).collect();
                        ck.replies_read.extend(kws.iter().map(|k| Box::from(&**k)));
                        When::Reply(Some(kws))
                    }
                }
            }
            Some("on") => {
                let on = kinds(t.get("on")?, "on", file, src, ck.diags)?;
                scope = Scope::Rule(on);
                let cond = t.get("if").and_then(|n| {
                    ck.scope = scope;
                    let ast = parse_expr(n, file, src, ck.diags)?;
                    ck.condition(&ast, &Loc { file, source: src, node: n, base: 0 })
                });
                When::Event { on, cond: cond.map(crate::rules::expr::Cond::new) }
            }
            Some("after") => {
                let (s, n) = scalar(t, "after", file, src, ck.diags)?;
                When::After(self.duration(s, n, "after", ck)?)
            }
            _ => {
                let (s, n) = scalar(t, "at", file, src, ck.diags)?;
                match crate::rules::policy::hhmm(s) {
                    Some(m) => When::At(m),
                    None => {
                        self.diag(ck, Code::E005, n, format!("`{s}` is not a time of day; write e.g. `09:00`"));
                        return None;
                    }
                }
            }
        };
        if let Some(n) = t.get("if").filter(|_| !matches!(when, When::Event { .. })) {
            self.diag(ck, Code::E005, n, "`if` goes with `on:` (the events it tests)");
        }
        let goto = match scalar(t, "goto", file, src, ck.diags) {
            Some(("end", _)) => Goto::End,
            Some((s, n)) => match names.iter().position(|(name, _)| name == s) {
                Some(i) => Goto::Step(i as u32),
                None => {
                    let hint = crate::util::nearest(s, names.iter().map(|(n, _)| n.as_str()).chain(["end"]))
                        .map(|n| format!("did you mean `{n}`?"));
                    ck.diags.push(
                        Diagnostic::new(
                            Code::E040,
                            file,
                            src,
                            n.pos(),
                            format!("no step `{s}` in journey `{}`", self.name),
                        )
                        .with_hint(hint),
                    );
                    return None;
                }
            },
            None => {
                self.diag(ck, Code::E004, t, "a transition needs `goto` (a step, or `end`)");
                return None;
            }
        };
        let mut keep = Vec::new();
        if let Some(k) = t.get("keep") {
            let yaml::Node::Map { entries, .. } = k else {
                self.diag(
                    ck,
                    Code::E005,
                    k,
                    "`keep` is a mapping of names to templates (`reason: \"{event.detail}\"`)",
                );
                return None;
            };
            ck.scope = scope;
            for (key, v) in entries {
                let name = key.as_str().unwrap_or("");
                let text = v.as_str().unwrap_or("");
                if let Some(tpl) = Template::compile(text, ck, &Loc { file, source: src, node: v, base: 0 }) {
                    keep.push((name.into(), tpl));
                }
            }
        }
        Some(Transition { when, goto, keep })
    }

    /// Every step reachable from the first; no loop of immediate transitions.
    fn check_graph(&self, names: &[(String, &yaml::Node)], ck: &mut Checker) {
        let steps = &self.out.steps;
        let targets = |i: usize| {
            steps[i].next.iter().filter_map(|t| if let Goto::Step(s) = t.goto { Some(s as usize) } else { None })
        };
        let mut seen = vec![false; steps.len()];
        let mut todo = vec![0usize];
        while let Some(i) = todo.pop() {
            if i < steps.len() && !std::mem::replace(&mut seen[i], true) {
                todo.extend(targets(i));
            }
        }
        for (i, (name, node)) in names.iter().enumerate().skip(1) {
            if !seen.get(i).copied().unwrap_or(true) {
                let at = node.get("step").unwrap_or(node);
                self.diag(ck, Code::E041, at, format!("step `{name}` is never reached: no transition goes to it"));
            }
        }
        // Immediate transitions: following them from any step must reach a waiting step or the end.
        for (start, (_, node)) in names.iter().enumerate().take(steps.len()) {
            let mut at = start;
            for _ in 0..=steps.len() {
                match steps[at].next.iter().find(|t| matches!(t.when, When::Now)).map(|t| t.goto) {
                    Some(Goto::Step(s)) if (s as usize) < steps.len() => at = s as usize,
                    _ => {
                        at = usize::MAX;
                        break;
                    }
                }
            }
            if at != usize::MAX {
                self.diag(ck, Code::E043, node, format!("steps of journey `{}` go round at once forever", self.name));
                break;
            }
        }
    }
}

trait IntoSet {
    fn into_set(self) -> KindSet;
}

impl IntoSet for Kind {
    fn into_set(self) -> KindSet {
        let mut s = KindSet::default();
        s.insert(self);
        s
    }
}

/// A step's contact on `channel`, in words.
fn contact(channel: crate::contact::Channel) -> &'static str {
    use crate::contact::Channel;
    match channel {
        Channel::Sms => "an SMS",
        Channel::Call => "a call",
        Channel::Ivr => "an IVR answer",
        Channel::Order => "an order",
    }
}

/// What the gateways and the call centre report of a contact on `channel` (`failed` and
/// `expired` of any: a contact that could not be made, or was given up).
fn reported(channel: crate::contact::Channel) -> &'static [OutcomeStatus] {
    use crate::contact::Channel;
    use OutcomeStatus::*;
    match channel {
        Channel::Sms => &[Delivered, Failed, Expired],
        Channel::Call | Channel::Ivr => &[Answered, Busy, NoAnswer, Refused, Failed, Expired],
        Channel::Order => &[Accepted, Rejected, Failed, Expired],
    }
}
