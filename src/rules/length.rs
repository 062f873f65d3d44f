//! What an SMS costs: every part of a long message is billed as one SMS, so a rule says how many
//! its message may take (`parts:` in the action, 1 unless said) and `validate` warns (W110) when
//! its template's own text — the words around the `{...}` values, with the unsubscribe footer a
//! marketing SMS carries — already takes more. The values only add to that; `tidings test`
//! checks each message its cases render against the same budget.

use super::diag::Diagnostic;
use crate::contact::{sms_length, sms_parts};

/// An SMS template's fixed text and its rule's budget, with the warning to give if the text is
/// over it.
pub struct Length {
    /// The template without its values.
    pub fixed: String,
    /// The parts the rule's message may take.
    pub budget: u8,
    /// A marketing SMS: the unsubscribe footer is added to it.
    pub marketing: bool,
    pub diag: Diagnostic,
}

/// The warnings for the templates whose fixed text, with `footer` on a marketing SMS, takes
/// more parts than their budget.
pub fn over_budget(lengths: Vec<Length>, footer: &str) -> impl Iterator<Item = Diagnostic> {
    let footer = footer.to_owned();
    lengths.into_iter().filter_map(move |l| {
        let mut text = l.fixed;
        let with = if l.marketing && !footer.is_empty() {
            text.push_str(&footer);
            format!(" with the unsubscribe footer `{footer}`")
        } else {
            String::new()
        };
        let parts = sms_parts(&text);
        if parts <= usize::from(l.budget) {
            return None;
        }
        let budget = match l.budget {
            1 => "its rule allows one".to_owned(),
            n => format!("its rule allows {n} (`parts: {n}`)"),
        };
        let mut d = l.diag;
        d.message = format!(
            "this SMS is {} characters before its values are filled in{with}: {parts} messages, where {budget}",
            sms_length(&text),
        );
        d.hint = Some(format!(
            "each part is billed as one SMS (70 Chinese characters alone, 67 a part): shorten it, or write \
             `parts: {parts}` in the action to send it as {parts}"
        ));
        Some(d)
    })
}
