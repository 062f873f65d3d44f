//! A rule's `action:`: the channel it contacts the subscriber on, and the templates it renders
//! (the SMS or IVR text, a call's script), checked like conditions.

use crate::contact::Channel;
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::expr::check::{Checker, Loc};
use crate::rules::item::{check_keys, scalar};
use crate::rules::template::Template;
use crate::rules::yaml;

/// What an action compiles to (the rule keeps the parts as fields of its own).
pub(super) struct Action {
    pub channel: Channel,
    pub template: Option<Template>,
    pub script: Option<Template>,
    pub queue: Option<Box<str>>,
}

impl Default for Action {
    fn default() -> Self {
        Action { channel: Channel::Sms, template: None, script: None, queue: None }
    }
}

/// Compiles an `action:` mapping; what is wrong with it is a diagnostic.
pub(super) fn compile(a: &yaml::Node, file: &str, src: &str, ck: &mut Checker) -> Action {
    let mut out = Action::default();
    check_keys(a, &["channel", "template", "script", "queue"], file, src, ck.diags);
    match scalar(a, "channel", file, src, ck.diags) {
        Some((s, n)) => match Channel::parse(s) {
            Some(c) => out.channel = c,
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
    out.template = tpl("template", ck);
    out.script = tpl("script", ck);
    out.queue = scalar(a, "queue", file, src, ck.diags).map(|(s, _)| s.into());
    match out.channel {
        Channel::Sms | Channel::Ivr if a.get("template").is_none() => {
            ck.diags.push(Diagnostic::new(
                Code::E004,
                file,
                src,
                a.pos(),
                format!("a {} action needs a `template`", out.channel),
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
    out
}
