//! Replies an SMS asks for (`回复BL即可办理`) and the replies the pack answers.
//!
//! An offer that tells the subscriber to reply a keyword promises that the reply does
//! something. When no rule reads that keyword (`event.keyword == "BL"`) and no journey step
//! moves on it (`reply: [BL]`), the subscriber's answer is lost: `validate` says so (W106) at the
//! place in the template that asks. The unsubscribe keywords are the engine's own business
//! ([`crate::rules::policy::Unsubscribe`]) and are always answered.

use super::diag::Diagnostic;
use super::expr::syntax::Span;

/// A keyword an SMS template asks for, with the diagnostic to give if nothing answers it.
pub struct Ask {
    pub keyword: Box<str>,
    pub diag: Diagnostic,
}

/// The keywords `text` (an SMS template as written) asks the subscriber to reply, each with the
/// byte range of its `回复...` in `text`, normalised as replies are ([`crate::event::keyword`]).
/// A keyword is a run of letters and digits, ASCII or full width (`回复KT12593`, `回复1-5` asks
/// for `1`), or what a pair of quotes holds (`回复“是”`); a `{...}` right after `回复` is not a
/// keyword. In English, `Reply YES` asks for `YES` (a word without lower case letters: `reply to
/// this message` asks for nothing) and `reply "y"` for `Y`.
pub fn asked(text: &str) -> Vec<(Span, Box<str>)> {
    let mut out = Vec::new();
    // The same byte offsets: only ASCII letters change.
    let lower = text.to_ascii_lowercase();
    for (ask, english) in [("回复", false), ("reply ", true)] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(ask).map(|i| from + i) {
            from = at + ask.len();
            if english && text[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            let rest = &text[at + ask.len()..];
            let (word, len) = match quoted(rest) {
                Some(q) => q,
                None => {
                    let n = rest.find(|c: char| !keyword_char(c)).unwrap_or(rest.len());
                    let w = &rest[..n];
                    if english && w.chars().any(|c| c.is_lowercase()) {
                        continue;
                    }
                    (w, n)
                }
            };
            let keyword = crate::event::keyword(word);
            if !keyword.is_empty() {
                out.push((Span { start: at, end: at + ask.len() + len }, Box::from(&*keyword)));
            }
        }
    }
    out.sort_by_key(|(span, _)| span.start);
    out
}

/// Every keyword `text` asks for, once each, in order: [`asked`]'s, and a range of numbers
/// (`回复1-5`, `回复１～５`, at most 20 of them) as each of its numbers: a reply of `3` answers a
/// survey that asked for 1 to 5. What a reply is tied to reads these.
pub fn keywords(text: &str) -> Vec<Box<str>> {
    let mut out: Vec<Box<str>> = Vec::new();
    for (span, first) in asked(text) {
        let mut add = |k: Box<str>| {
            if !out.contains(&k) {
                out.push(k);
            }
        };
        let rest = &text[span.end..];
        let upper = rest
            .strip_prefix(['-', '~', '～', '－', '至'])
            .map(|r| crate::event::keyword(&r[..r.find(|c: char| !keyword_char(c)).unwrap_or(r.len())]));
        match (first.parse::<u32>(), upper.as_deref().map(str::parse::<u32>)) {
            (Ok(lo), Some(Ok(hi))) if lo < hi && hi - lo < 20 => (lo..=hi).for_each(|n| add(n.to_string().into())),
            _ => add(first),
        }
    }
    out
}

/// What a pair of quotes at the start of `rest` holds, and the length of it with its quotes.
fn quoted(rest: &str) -> Option<(&str, usize)> {
    let open = rest.chars().next()?;
    let close = match open {
        '“' => '”',
        '"' => '"',
        '「' => '」',
        '『' => '』',
        '\'' => '\'',
        _ => return None,
    };
    let body = &rest[open.len_utf8()..];
    body.find(close).map(|end| (&body[..end], open.len_utf8() + end + close.len_utf8()))
}

/// A letter or digit of a keyword, ASCII or full width (`回复ＢＬ` asks for `BL`).
fn keyword_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}')
}

/// What the warning (W106) for an ask of `keyword` that nothing answers says, and its hint.
pub fn unanswered_words(keyword: &str) -> (String, String) {
    (
        format!("the SMS asks for the reply `{keyword}`, and no rule or journey answers it"),
        format!(
            "a rule `on: [reply]` with `event.keyword == \"{keyword}\" and event.in_reply_to.rule == ...` answers it, \
             or a journey step's `reply: [{keyword}]`"
        ),
    )
}

/// The warnings for the asks whose keyword is neither among `answered` (the keywords the pack's
/// conditions and journey transitions read) nor among `own` (the unsubscribe keywords).
pub fn unanswered<'a>(
    asks: Vec<Ask>,
    answered: &'a [Box<str>],
    own: &'a [Box<str>],
) -> impl Iterator<Item = Diagnostic> + 'a {
    asks.into_iter().filter(move |a| !answered.contains(&a.keyword) && !own.contains(&a.keyword)).map(|a| a.diag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        asked(text).into_iter().map(|(_, k)| k.into()).collect()
    }

    #[test]
    fn keywords_asked_for_are_read_as_replies_are() {
        assert_eq!(words("续订请回复XD或登录中国移动APP办理。"), ["XD"]);
        assert_eq!(words("回复kt12593即可开通，回复ＢＬ办理"), ["KT12593", "BL"]);
        assert_eq!(words("请回复1-5为本次服务打分"), ["1"]);
        assert_eq!(words("同意请回复“是”，不同意回复「否」"), ["是", "否"]);
        // A placeholder, or nothing after it, asks for no keyword of its own.
        assert_eq!(words("回复{event.keyword}已收到；感谢回复。"), Vec::<String>::new());
        assert_eq!(words("没有要回复的"), Vec::<String>::new());
    }

    #[test]
    fn english_asks_are_words_without_lower_case_or_quoted() {
        assert_eq!(words("Reply YES to join, or reply STOP to opt out."), ["YES", "STOP"]);
        assert_eq!(words("REPLY \"y\" to confirm"), ["Y"]);
        assert_eq!(words("We will reply to you soon. Autoreply OK"), Vec::<String>::new());
        assert_eq!(words("Reply 1 for yes，回复2取消"), ["1", "2"]);
    }

    #[test]
    fn a_range_of_numbers_asks_for_each() {
        assert_eq!(keywords("请回复1-5为本次服务打分，回复1也行"), ["1", "2", "3", "4", "5"].map(Box::from));
        assert_eq!(keywords("回复１～３"), ["1", "2", "3"].map(Box::from));
        assert_eq!(keywords("回复BL办理，回复3-1，回复1-99"), ["BL", "3", "1"].map(Box::from));
    }

    #[test]
    fn the_span_covers_the_ask() {
        let text = "尊敬的客户，回复BL即可办理";
        let (span, _) = &asked(text)[0];
        assert_eq!(&text[span.start..span.end], "回复BL");
    }
}
