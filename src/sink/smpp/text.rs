//! Turns an SMS text into the short_message octets of one or more submit_sm: the alphabet, the
//! length limits and the concatenation header. Kept apart from the session so it can be tested
//! exhaustively without a socket, and because getting it wrong costs money (every extra part is
//! billed) or garbles text on the handset (a surrogate pair or an escape split across parts).
//!
//! GSM 03.38 default alphabet (data_coding 0) when every character is in it, sent unpacked (one
//! septet per octet) as SMSCs expect over SMPP; otherwise UCS-2 (data_coding 8, UTF-16BE,
//! characters outside the BMP as surrogate pairs, which the handset renders as UTF-16). A text
//! that fits one message (160 septets / 70 UTF-16 units) goes alone; a longer one is split into
//! parts of 153 / 67 units behind a 6-octet UDH (IE 0x00: 8-bit reference, total, sequence) with
//! esm_class 0x40.

use thiserror::Error;

/// data_coding for the GSM default alphabet (SMSC default).
pub const DC_GSM: u8 = 0x00;
/// data_coding for UCS-2.
pub const DC_UCS2: u8 = 0x08;
/// data_coding 15, GBK to Chinese SMSCs (only ever read here, in subscribers' messages).
pub const DC_GBK: u8 = 0x0F;
/// esm_class bit: short_message starts with a user data header.
pub const ESM_UDHI: u8 = 0x40;

const GSM_SINGLE: usize = 160;
const GSM_PART: usize = 153;
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;
const ESC: u8 = 0x1B;

/// GSM 03.38 default alphabet, indexed by septet. 0x1B is the escape to the extension table and
/// stands for no character of its own.
#[rustfmt::skip]
const GSM_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É',
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
];

/// The extension table: characters sent as ESC followed by this septet.
const GSM_EXT: [(char, u8); 10] = [
    ('\u{0C}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TextError {
    #[error("sms text is empty")]
    Empty,
    #[error("sms text needs {0} parts, more than the 255 a concatenated message can have")]
    TooLong(usize),
}

/// One submit_sm's worth of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub data_coding: u8,
    pub esm_class: u8,
    /// UDH (when esm_class has [`ESM_UDHI`]) followed by the encoded text.
    pub short_message: Vec<u8>,
}

/// The septets of one character in the GSM default alphabet: one, or ESC and one.
fn gsm_char(c: char) -> Option<([u8; 2], usize)> {
    if c == '\u{1B}' {
        return None;
    }
    if let Some(i) = GSM_BASIC.iter().position(|&g| g == c) {
        return Some(([i as u8, 0], 1));
    }
    GSM_EXT.iter().find(|(e, _)| *e == c).map(|&(_, s)| ([ESC, s], 2))
}

/// Splits `text` into parts ready for submit_sm. `reference` is the concatenation reference
/// number; the caller derives it from the action id so that a resent message carries the same
/// header as the first attempt and a handset that kept some parts completes it.
pub fn split(text: &str, reference: u8) -> Result<Vec<Part>, TextError> {
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    // Each character becomes an atom of octets that must stay together in one part: an escape
    // with its septet, a surrogate pair with both halves.
    let gsm: Option<Vec<([u8; 2], usize)>> = text.chars().map(gsm_char).collect();
    let (data_coding, unit, single, per_part, atoms): (u8, usize, usize, usize, Vec<Vec<u8>>) = match gsm {
        Some(g) => (DC_GSM, 1, GSM_SINGLE, GSM_PART, g.into_iter().map(|(b, n)| b[..n].to_vec()).collect()),
        None => (DC_UCS2, 2, UCS2_SINGLE, UCS2_PART, text.chars().map(ucs2).collect()),
    };
    let parts = concatenate(atoms, single * unit, per_part * unit, reference)?;
    let esm_class = if parts.len() > 1 { ESM_UDHI } else { 0 };
    Ok(parts.into_iter().map(|short_message| Part { data_coding, esm_class, short_message }).collect())
}

/// One character in UCS-2 (UTF-16BE): two octets, or four for a surrogate pair.
pub fn ucs2(c: char) -> Vec<u8> {
    let mut units = [0u16; 2];
    c.encode_utf16(&mut units).iter().flat_map(|u| u.to_be_bytes()).collect()
}

/// Packs `atoms` (the octets of one character each, which must stay together in one part) into
/// one message of at most `single` octets, or else into parts of at most `per_part` octets each
/// behind a 6-octet concatenation UDH (IE 0x00: `reference`, total, sequence). More than one
/// part means every part starts with the UDH. Shared with the CMPP, SMGP and SGIP sinks
/// ([`crate::sink::wire`]), whose Msg_Content has the same limits in octets.
pub fn concatenate(
    atoms: Vec<Vec<u8>>,
    single: usize,
    per_part: usize,
    reference: u8,
) -> Result<Vec<Vec<u8>>, TextError> {
    let total_octets: usize = atoms.iter().map(Vec::len).sum();
    if total_octets <= single {
        return Ok(vec![atoms.concat()]);
    }
    let mut chunks: Vec<Vec<u8>> = vec![Vec::new()];
    for atom in atoms {
        let cur = chunks.last().map(Vec::len).unwrap_or(0);
        if cur + atom.len() > per_part {
            chunks.push(Vec::new());
        }
        if let Some(last) = chunks.last_mut() {
            last.extend_from_slice(&atom);
        }
    }
    let total = chunks.len();
    let total_u8 = u8::try_from(total).map_err(|_| TextError::TooLong(total))?;
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut sm = vec![0x05, 0x00, 0x03, reference, total_u8, i as u8 + 1];
            sm.extend_from_slice(&chunk);
            sm
        })
        .collect())
}

/// Decodes a short_message back to text (UDH skipped when `esm_class` says there is one): the
/// inverse of [`split`] per part, and how a subscriber's message (MO) is read. data_coding 0 is
/// the GSM default alphabet unpacked, as tidings sends it (`?` for what is not in it); any other
/// as [`decode_text`] reads it (15 GBK, as Chinese SMSCs use it; SMPP 3.4 lists KS C 5601 there).
pub fn decode(data_coding: u8, esm_class: u8, sm: &[u8]) -> String {
    if data_coding != DC_GSM {
        return decode_text(data_coding, esm_class & ESM_UDHI != 0, sm);
    }
    let body = without_udh(esm_class & ESM_UDHI != 0, sm);
    let mut out = String::with_capacity(body.len());
    let mut it = body.iter();
    while let Some(&s) = it.next() {
        if s == ESC {
            if let Some(&e) = it.next() {
                out.push(GSM_EXT.iter().find(|(_, x)| *x == e).map(|(c, _)| *c).unwrap_or(' '));
            }
        } else {
            out.push(GSM_BASIC.get(s as usize).copied().unwrap_or('?'));
        }
    }
    out
}

/// The text of a message body in the codes the Chinese operators' protocols (CMPP Msg_Fmt, SMGP
/// MsgFormat, SGIP MessageCoding) and SMPP's data_coding share: 8 UCS-2, 15 GBK, anything else
/// (0 ASCII, 1 IA5, 3 Latin-1) octet by octet as Latin-1; a UDH skipped when `udhi`. UCS-2 and
/// GBK that do not decode keep what does, with U+FFFD for the rest.
pub fn decode_text(code: u8, udhi: bool, content: &[u8]) -> String {
    let body = without_udh(udhi, content);
    match code {
        DC_UCS2 => {
            let units: Vec<u16> = body.chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        DC_GBK => encoding_rs::GBK.decode_without_bom_handling(body).0.into_owned(),
        _ => body.iter().map(|&b| b as char).collect(),
    }
}

/// The body after the user data header when there is one.
fn without_udh(udhi: bool, content: &[u8]) -> &[u8] {
    if !udhi {
        return content;
    }
    let udhl = content.first().map(|&l| l as usize + 1).unwrap_or(0);
    content.get(udhl..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reassemble(parts: &[Part]) -> String {
        parts.iter().map(|p| decode(p.data_coding, p.esm_class, &p.short_message)).collect()
    }

    fn units(p: &Part) -> usize {
        let body = if p.esm_class & ESM_UDHI != 0 { p.short_message.len() - 6 } else { p.short_message.len() };
        if p.data_coding == DC_UCS2 { body / 2 } else { body }
    }

    #[test]
    fn short_ascii_is_one_gsm_message_unpacked() {
        let parts = split("Hello @ 10086", 1).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].data_coding, DC_GSM);
        assert_eq!(parts[0].esm_class, 0);
        assert_eq!(parts[0].short_message, b"Hello \x00 10086");
    }

    #[test]
    fn gsm_escapes_count_two_septets_and_stay_whole() {
        let p = split("€5 [x]", 1).unwrap();
        assert_eq!(p[0].short_message, [0x1B, 0x65, b'5', b' ', 0x1B, 0x3C, b'x', 0x1B, 0x3E]);
        assert_eq!(reassemble(&p), "€5 [x]");
        // 80 euro signs are 160 septets: one message. 81 are 162: two parts, and no part ends
        // on a lone escape.
        assert_eq!(split(&"€".repeat(80), 1).unwrap().len(), 1);
        let long = split(&"€".repeat(81), 1).unwrap();
        assert_eq!(long.len(), 2);
        for part in &long {
            assert_eq!(units(part) % 2, 0, "escape split across parts");
            assert!(units(part) <= GSM_PART);
        }
        assert_eq!(reassemble(&long), "€".repeat(81));
        // The ESC control character itself is not a GSM character: UCS-2.
        assert_eq!(split("a\u{1B}b", 1).unwrap()[0].data_coding, DC_UCS2);
    }

    #[test]
    fn gsm_limits_160_single_153_per_part() {
        assert_eq!(split(&"a".repeat(160), 1).unwrap().len(), 1);
        let p = split(&"a".repeat(161), 9).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(&p[0].short_message[..6], &[5, 0, 3, 9, 2, 1]);
        assert_eq!(&p[1].short_message[..6], &[5, 0, 3, 9, 2, 2]);
        assert_eq!((units(&p[0]), units(&p[1])), (153, 8));
    }

    #[test]
    fn chinese_200_chars_split_into_three_parts_that_reassemble() {
        let text: String = "尊敬的客户您好余额不足请及时充值".chars().cycle().take(200).collect();
        let parts = split(&text, 0x42).unwrap();
        assert_eq!(parts.len(), 3);
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(p.data_coding, DC_UCS2);
            assert_eq!(p.esm_class, ESM_UDHI);
            assert_eq!(&p.short_message[..6], &[5, 0, 3, 0x42, 3, i as u8 + 1]);
            assert!(p.short_message.len() <= 140, "a part exceeds 140 octets");
        }
        assert_eq!(reassemble(&parts), text);
        assert_eq!(split(&text[..text.char_indices().nth(70).unwrap().0], 1).unwrap().len(), 1);
    }

    #[test]
    fn emoji_surrogate_pairs_are_never_split() {
        // 66 BMP characters then an emoji: the pair would straddle 67 units, so it moves on.
        let text = format!("{}😀{}", "好".repeat(66), "好".repeat(10));
        let parts = split(&text, 1).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(units(&parts[0]), 66);
        for p in &parts {
            let body = &p.short_message[6..];
            let last = u16::from_be_bytes([body[body.len() - 2], body[body.len() - 1]]);
            assert!(!(0xD800..0xDC00).contains(&last), "part ends on a high surrogate");
        }
        assert_eq!(reassemble(&parts), text);
        let many = "😀".repeat(100);
        assert_eq!(reassemble(&split(&many, 1).unwrap()), many);
    }

    #[test]
    fn a_subscribers_message_decodes_in_every_coding_an_smsc_sends() {
        let ucs2: Vec<u8> = "退订 谢谢".chars().flat_map(ucs2).collect();
        assert_eq!(decode(DC_UCS2, 0, &ucs2), "退订 谢谢");
        let mut with_udh = vec![0x05, 0x00, 0x03, 0x2A, 0x02, 0x01];
        with_udh.extend_from_slice(&ucs2);
        assert_eq!(decode(DC_UCS2, ESM_UDHI, &with_udh), "退订 谢谢", "the UDH is not text");
        assert_eq!(decode(DC_GBK, 0, &[0xCD, 0xCB, 0xB6, 0xA9]), "退订");
        assert_eq!(decode(DC_GSM, 0, b"TD \x00 \x1b\x65"), "TD @ €");
        assert_eq!(decode(0x01, 0, b"TD @_$"), "TD @_$", "IA5 is ASCII, not the GSM alphabet");
        assert_eq!(decode(0x03, 0, &[b'c', 0xE9]), "cé");
        assert_eq!(decode(DC_UCS2, ESM_UDHI, &[9, 0]), "", "a UDH longer than the message");
    }

    #[test]
    fn empty_and_oversized_texts_are_refused() {
        assert_eq!(split("", 1), Err(TextError::Empty));
        assert_eq!(split(&"好".repeat(67 * 256), 1), Err(TextError::TooLong(256)));
    }
}
