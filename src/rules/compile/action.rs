//! A rule's `action:`: the channel it contacts the subscriber on, and the templates it renders
//! (the SMS or IVR text, a call's script, an order's offer), checked like conditions.

use crate::contact::Channel;
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::expr::check::{Checker, Loc};
use crate::rules::expr::syntax::Span;
use crate::rules::item::{check_keys, scalar};
use crate::rules::length::Length;
use crate::rules::template::Template;
use crate::rules::yaml;

/// What an action compiles to (the rule keeps the parts as fields of its own).
pub(super) struct Action {
    pub channel: Channel,
    pub template: Option<Template>,
    pub script: Option<Template>,
    pub queue: Option<Template>,
    /// What a reply to this SMS is about.
    pub about: Option<Template>,
    /// An order's offer or product code (`12593`, `music_club`), a template like the others.
    pub offer: Option<Template>,
    /// The keywords an SMS's text asks the subscriber to reply.
    pub asks: Box<[Box<str>]>,
    /// The messages an SMS may take (`parts:`, 1 unless said).
    pub parts: u8,
    /// An SMS template's fixed text against that budget, for `validate` once the rule's policy
    /// says whether it carries the unsubscribe footer ([`budget`]).
    pub length: Option<Length>,
}

impl Default for Action {
    fn default() -> Self {
        Action {
            channel: Channel::Sms,
            template: None,
            script: None,
            queue: None,
            about: None,
            offer: None,
            asks: Box::default(),
            parts: 1,
            length: None,
        }
    }
}

/// The key each channel's action must have, and how a message asks for it.
fn required(channel: Channel) -> (&'static str, &'static str) {
    match channel {
        Channel::Sms | Channel::Ivr => ("template", "a `template` (the message)"),
        Channel::Call => ("script", "a `script` (what the agent says)"),
        Channel::Order => ("offer", "an `offer` (the offer or product code the order interface knows)"),
    }
}

/// The channel with its article, as a message starts with it (`a call`, `an order`).
fn named(channel: Channel) -> String {
    let article = if channel == Channel::Call { "a" } else { "an" };
    let name = match channel {
        Channel::Sms | Channel::Ivr => channel.as_str().to_uppercase(),
        Channel::Call | Channel::Order => channel.as_str().to_owned(),
    };
    format!("{article} {name}")
}

/// Compiles an `action:` mapping; what is wrong with it is a diagnostic.
pub(super) fn compile(a: &yaml::Node, file: &str, src: &str, ck: &mut Checker) -> Action {
    let mut out = Action::default();
    check_keys(a, &["channel", "template", "script", "queue", "about", "offer", "parts"], file, src, ck.diags);
    match scalar(a, "channel", file, src, ck.diags) {
        Some((s, n)) => match Channel::parse(s) {
            Some(c) => out.channel = c,
            None => ck.diags.push(
                Diagnostic::new(Code::E005, file, src, n.pos(), format!("`{s}` is not a channel"))
                    .with_hint(Some(format!("one of: {}", Channel::NAMES.join(", ")))),
            ),
        },
        None => ck.diags.push(Diagnostic::new(Code::E004, file, src, a.pos(), "the action has no `channel`")),
    }
    let tpl = |key: &str, ck: &mut Checker| {
        scalar(a, key, file, src, ck.diags)
            .and_then(|(text, n)| Template::compile(text, ck, &Loc { file, source: src, node: n, base: 0 }))
    };
    out.template = scalar(a, "template", file, src, ck.diags).and_then(|(text, n)| {
        let loc = Loc { file, source: src, node: n, base: 0 };
        let t = Template::compile(text, ck, &loc)?;
        // What the SMS asks the subscriber to reply: checked once every rule that may answer is
        // known, and kept for tying a reply to the SMS that asked for it.
        if out.channel == Channel::Sms {
            for (span, keyword) in crate::rules::asks::asked(text) {
                let (msg, hint) = crate::rules::asks::unanswered_words(&keyword);
                let diag = loc.diag(Code::W106, span, msg).with_hint(Some(hint));
                ck.asks.push(crate::rules::asks::Ask { keyword, diag });
            }
            out.asks = crate::rules::asks::keywords(text).into();
            let diag = loc.diag(Code::W110, Span { start: 0, end: 0 }, "");
            out.length = Some(Length { fixed: t.fixed_text(), budget: 1, marketing: true, diag });
        }
        Some(t)
    });
    if let Some((text, n)) = scalar(a, "parts", file, src, ck.diags) {
        match text.parse::<u8>().ok().filter(|p| (1..=10).contains(p)) {
            Some(p) => out.parts = p,
            None => ck.diags.push(
                Diagnostic::new(Code::E005, file, src, n.pos(), "`parts` is a whole number of messages from 1 to 10")
                    .with_hint(Some("the messages a long SMS may be sent as, each billed as one".into())),
            ),
        }
    }
    if let Some(l) = &mut out.length {
        l.budget = out.parts;
    }
    out.script = tpl("script", ck);
    out.offer = tpl("offer", ck);
    out.queue = tpl("queue", ck);
    out.about = tpl("about", ck);
    let (key, wanted) = required(out.channel);
    if a.get(key).is_none() {
        ck.diags.push(Diagnostic::new(
            Code::E004,
            file,
            src,
            a.pos(),
            format!("{} action needs {wanted}", named(out.channel)),
        ));
    }
    // An order renders only its offer; an offer on another channel would be silently dropped,
    // and so would `about` anywhere but on an SMS (the one contact a reply answers).
    let misplaced: &[&str] = match out.channel {
        Channel::Order => &["template", "script", "about", "parts"],
        Channel::Sms => &["offer"],
        Channel::Call | Channel::Ivr => &["offer", "about", "parts"],
    };
    for k in misplaced.iter().copied() {
        if let Some(n) = a.get(k) {
            ck.diags.push(
                Diagnostic::new(Code::E005, file, src, n.pos(), format!("{} action has no `{k}`", named(out.channel)))
                    .with_hint(Some(match k {
                        "about" => "`about` says what a reply to an SMS is about; only SMS actions take it".into(),
                        "parts" => {
                            "`parts` is how many messages a long SMS may be sent as; only SMS actions take it".into()
                        }
                        _ => format!("{} actions take `{key}`", out.channel),
                    })),
            );
        }
    }
    out
}

/// Hands an SMS template's length to `validate`, now that the rule's policy says whether the
/// message is marketing (and so carries the unsubscribe footer).
pub(super) fn budget(length: Option<Length>, policy: &crate::rules::policy::RulePolicy, ck: &mut Checker) {
    if let Some(mut l) = length {
        l.marketing = !policy.transactional;
        ck.lengths.push(l);
    }
}
