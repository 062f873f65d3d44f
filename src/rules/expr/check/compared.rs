//! Words compared with fields whose values are known: a CRM event's name (the known business
//! events, W104), a reply's keyword (the keywords the pack's SMS ask for,
//! [`crate::rules::asks`]), and the rule or campaign an outcome reports on or a reply answers. A word that can never be one of them makes the comparison
//! never hold, silently: it is said at the word.

use super::{Checker, Loc};
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::expr::Ir;
use crate::rules::expr::schema::Field;
use crate::rules::expr::syntax::Span;

/// What a compared name must be the name of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// A rule or journey step (`journey.step`), or one's former name.
    Rule,
    Campaign,
}

/// A name read by a condition, with the warning (W108) to give if the pack has no such name.
pub struct NameRead {
    pub named: Named,
    pub name: Box<str>,
    pub diag: Diagnostic,
}

impl Checker<'_> {
    /// A word compared with `field` (`==`, `!=`, `in`).
    pub(super) fn compared(&mut self, field: &Ir, word: &str, span: Span, loc: &Loc) {
        let Ir::Field(f) = field else { return };
        match f {
            Field::CrmEvent => self.crm_event(word, span, loc),
            Field::ReplyKeyword => self.reply_word(word, true, span, loc),
            Field::ReplyText => self.reply_word(word, false, span, loc),
            Field::InReplyRule | Field::OutRule => self.name_read(Named::Rule, word, span, loc),
            Field::InReplyCampaign | Field::OutCampaign => self.name_read(Named::Campaign, word, span, loc),
            _ => {}
        }
    }

    /// A word compared with a reply's keyword (or its text): a reply the pack answers. A keyword
    /// is read upper case and half width, its first word only: a word written otherwise never
    /// equals one, and is said so (W107).
    fn reply_word(&mut self, word: &str, keyword: bool, span: Span, loc: &Loc) {
        let read = crate::event::keyword(word);
        if keyword && *read != *word {
            let hint = (!read.is_empty()).then(|| format!("write `\"{}\"`", &*read));
            let msg = format!(
                "`{word}` is never a reply's keyword: keywords are read upper case, half width, first word only"
            );
            self.diags.push(loc.diag(Code::W107, span, msg).with_hint(hint));
        }
        // A keyword written otherwise answers nothing; a reply's text is compared as sent.
        if !read.is_empty() && (!keyword || *read == *word) {
            self.replies_read.push(Box::from(&*read));
        }
    }

    fn name_read(&mut self, named: Named, word: &str, span: Span, loc: &Loc) {
        let msg = match named {
            Named::Rule => format!("`{word}` is not a rule or journey step of the pack: no outcome or reply names it"),
            Named::Campaign => format!("`{word}` is not a campaign of the pack: no outcome or reply names it"),
        };
        self.names_read.push(NameRead { named, name: word.into(), diag: loc.diag(Code::W108, span, msg) });
    }
}

/// The warnings for the names read that the pack does not have (`rules`: its rule and journey
/// step names and former names; `campaigns`: its campaign names), each with the nearest name.
pub fn unknown_names<'a>(
    read: Vec<NameRead>,
    rules: &'a [&'a str],
    campaigns: &'a [&'a str],
) -> impl Iterator<Item = Diagnostic> + 'a {
    read.into_iter().filter_map(move |r| {
        let names = if r.named == Named::Rule { rules } else { campaigns };
        if names.contains(&&*r.name) {
            return None;
        }
        let hint = crate::util::nearest(&r.name, names.iter().copied()).map(|n| format!("did you mean `{n}`?"));
        Some(r.diag.with_hint(hint))
    })
}
