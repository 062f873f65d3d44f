//! How many messages an SMS text takes: what a rule's `parts:` budget is counted in, and what
//! the operator is billed for (every part of a long message is one SMS).
//!
//! Counted as China's gateways send it (CMPP, SMGP, SGIP: 140 octets a message): a text of
//! ASCII alone takes an octet a character, 140 alone or 134 a part behind the concatenation
//! header; any other text is UCS-2, 70 UTF-16 units alone or 67 a part. GBK, where a gateway
//! asks for it, writes ASCII in one octet, so it never needs more parts than this count; SMPP
//! packs 160 GSM characters into one message, so an ASCII text may take fewer there.

/// Characters (octets) of an ASCII text in one message, and in each part of a longer one.
const ASCII: (usize, usize) = (140, 134);
/// UTF-16 units of any other text in one message, and in each part of a longer one.
const WIDE: (usize, usize) = (70, 67);

/// The units `text` is counted in (octets of an ASCII text, else UTF-16 units), and the limits
/// that go with them.
fn measure(text: &str) -> (usize, (usize, usize)) {
    if text.is_ascii() {
        (text.len(), ASCII)
    } else {
        // UTF-16 units: a character each, two for one outside the BMP (four octets in UTF-8).
        (text.chars().count() + text.bytes().filter(|b| *b >= 0xF0).count(), WIDE)
    }
}

/// How many messages `text` takes (1 for an empty text: it is sent as one, or refused).
pub fn sms_parts(text: &str) -> usize {
    let (units, (single, part)) = measure(text);
    if units <= single { 1 } else { units.div_ceil(part) }
}

/// How long `text` is in the units its parts are counted in: UTF-16 units (a Chinese character
/// is one), or octets for ASCII alone.
pub fn sms_length(text: &str) -> usize {
    measure(text).0
}

#[cfg(test)]
mod tests {
    use super::sms_parts;

    #[test]
    fn seventy_chinese_characters_are_one_message_and_seventy_one_are_two() {
        assert_eq!(sms_parts(&"中".repeat(70)), 1);
        assert_eq!(sms_parts(&"中".repeat(71)), 2);
        assert_eq!(sms_parts(&"中".repeat(134)), 2);
        assert_eq!(sms_parts(&"中".repeat(135)), 3);
        // One Chinese character makes the whole text UCS-2.
        assert_eq!(sms_parts(&format!("中{}", "a".repeat(69))), 1);
        assert_eq!(sms_parts(&format!("中{}", "a".repeat(70))), 2);
        assert_eq!(sms_parts(&"a".repeat(140)), 1);
        assert_eq!(sms_parts(&"a".repeat(141)), 2);
        assert_eq!(sms_parts(""), 1);
        // A character outside the BMP is two UTF-16 units (a surrogate pair).
        assert_eq!(super::sms_length("中😀"), 3);
        for t in ["中😀", "é中a😀𠀀", "您的余额为¥12.50，回复KT即可办理", "ascii only"] {
            assert_eq!(super::sms_length(t), t.encode_utf16().count(), "{t}");
        }
    }
}
