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
    if text.is_ascii() { (text.len(), ASCII) } else { (utf16_units(text), WIDE) }
}

/// The UTF-16 units of `text`: a character each, two for one outside the BMP (four octets in
/// UTF-8). Counted eight octets at a time: an octet that is no continuation (`10xxxxxx`) starts
/// a character, and one of `1111xxxx` starts a four-octet one; each octet's count (0 to 2) adds
/// up in its own lane of a word, summed across the lanes once a block.
fn utf16_units(text: &str) -> usize {
    const TOP: u64 = 0x8080_8080_8080_8080;
    const PAIRS: u64 = 0x00FF_00FF_00FF_00FF;
    let bytes = text.as_bytes();
    let mut words = bytes.chunks_exact(8);
    let mut units = 0;
    // A lane takes at most 2 a word: 127 words before one could pass 255.
    loop {
        let mut lanes = 0u64;
        let mut n = 0;
        for chunk in words.by_ref().take(127) {
            let w = chunk.try_into().map_or(0, u64::from_le_bytes);
            // Bit 7 of each octet, after a shift by k: that octet's bit 7 - k.
            let continuation = w & !(w << 1) & TOP;
            let four = w & (w << 1) & (w << 2) & (w << 3) & TOP;
            lanes += ((!continuation & TOP) >> 7) + (four >> 7);
            n += 1;
        }
        // Eight lanes of at most 254 into four of 16 bits, then into one.
        let pairs = (lanes & PAIRS) + ((lanes >> 8) & PAIRS);
        units += (pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48) as usize;
        if n < 127 {
            break;
        }
    }
    let rest = words.remainder();
    units + rest.iter().map(|&b| usize::from((b as i8) >= -0x40) + usize::from(b >= 0xF0)).sum::<usize>()
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
        // Past a block of lanes (127 words), with every width of character at every offset.
        let mix = "a é中😀".repeat(300);
        for start in 0..8 {
            let t = &mix[mix.char_indices().nth(start).map_or(0, |(i, _)| i)..];
            assert_eq!(super::utf16_units(t), t.encode_utf16().count());
        }
        assert_eq!(super::utf16_units(&"中".repeat(2000)), 2000);
        assert_eq!(super::utf16_units(&"😀".repeat(700)), 1400);
    }
}
