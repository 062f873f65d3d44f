//! What the wire formats of the three Chinese operators' SMS gateways share: CMPP (China Mobile,
//! [`super::cmpp`]), SMGP (China Telecom, [`super::smgp`]) and SGIP (China Unicom,
//! [`super::sgip`]) descend from one design, so their codecs are written from the same parts
//! here rather than three times: big-endian integers and fixed-width NUL-padded octet strings
//! read and written with bounds checks ([`Reader`], [`Writer`]), the frame split off a byte
//! stream by its length word ([`frame_len`]), the MD5 login authenticator ([`authenticator`],
//! [`md5`]), the `MMDDHHMMSS` timestamp ([`mmddhhmmss`]), and SMS text in the formats all three
//! name by the same codes — 0 ASCII, 8 UCS-2, 15 GBK ([`Coding`], [`split`], [`decode_text`]),
//! split into parts with the concatenation header the SMPP sink uses ([`super::smpp::text`]).
//!
//! Decoding never panics: every read is bounds-checked and a bad field is a [`WireError`] that
//! names the protocol and the field.

pub use super::smpp::text::decode_text;
use super::smpp::text::{TextError, concatenate, ucs2};
use chrono::{Datelike, Timelike};
use md5::{Digest, Md5};
use thiserror::Error;

/// Larger frames are refused as lost framing: the biggest PDU of the three protocols (a submit
/// to 100 destinations) is under 4 KiB.
pub const MAX_PDU_LEN: usize = 64 * 1024;

/// One Msg_Content alone holds this many octets ...
pub const SINGLE_OCTETS: usize = 140;
/// ... and one part of a concatenated message this many after its 6-octet UDH.
pub const PART_OCTETS: usize = 134;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// The length word cannot be trusted: the byte stream is out of step. Drop the connection.
    #[error("{protocol} framing lost: packet length {length}")]
    Framing { protocol: &'static str, length: u32 },
    #[error("{protocol} pdu truncated reading {field}")]
    Truncated { protocol: &'static str, field: &'static str },
    #[error("{protocol} field {field} is {len} octets, at most {max} allowed")]
    TooLong { protocol: &'static str, field: &'static str, len: usize, max: usize },
    #[error("{protocol} field {field} is not ASCII")]
    NotAscii { protocol: &'static str, field: &'static str },
}

/// The length of the frame at the front of `buf` once it is all there: `Ok(None)` while fewer
/// than `header` octets or fewer than the frame's length word says have arrived, `Err` when the
/// length word is below `header` or above [`MAX_PDU_LEN`] (framing is lost).
pub fn frame_len(protocol: &'static str, buf: &[u8], header: usize) -> Result<Option<usize>, WireError> {
    let Some(word) = buf.get(..4) else { return Ok(None) };
    let length = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    let len = length as usize;
    if !(header..=MAX_PDU_LEN).contains(&len) {
        return Err(WireError::Framing { protocol, length });
    }
    Ok((buf.len() >= len).then_some(len))
}

/// Reads a PDU body front to back; every read names its field for the error.
pub struct Reader<'a> {
    protocol: &'static str,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(protocol: &'static str, buf: &'a [u8]) -> Reader<'a> {
        Reader { protocol, buf, pos: 0 }
    }

    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(WireError::Truncated { protocol: self.protocol, field })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A fixed-width string of `n` octets: up to its first NUL, ASCII.
    pub fn str(&mut self, n: usize, field: &'static str) -> Result<String, WireError> {
        let raw = self.take(n, field)?;
        let text = raw.split(|&b| b == 0).next().unwrap_or_default();
        if !text.is_ascii() {
            return Err(WireError::NotAscii { protocol: self.protocol, field });
        }
        Ok(text.iter().map(|&b| b as char).collect())
    }

    /// Octets behind a one-octet length (CMPP's and SMGP's Msg_Length).
    pub fn octets8(&mut self, field: &'static str) -> Result<Vec<u8>, WireError> {
        let n = self.u8(field)? as usize;
        Ok(self.take(n, field)?.to_vec())
    }

    /// Octets behind a four-octet length (SGIP's MessageLength).
    pub fn octets32(&mut self, field: &'static str) -> Result<Vec<u8>, WireError> {
        let n = self.u32(field)? as usize;
        Ok(self.take(n, field)?.to_vec())
    }

    /// What is left of the body (SMGP's optional TLVs).
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos.min(self.buf.len())..];
        self.pos = self.buf.len();
        out
    }
}

/// Writes a PDU body; a string too long for its field is an error, never cut.
pub struct Writer {
    protocol: &'static str,
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new(protocol: &'static str) -> Writer {
        Writer { protocol, buf: Vec::with_capacity(256) }
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// `s` in a field of `n` octets, padded with NULs.
    pub fn str(&mut self, s: &str, n: usize, field: &'static str) -> Result<(), WireError> {
        if !s.is_ascii() {
            return Err(WireError::NotAscii { protocol: self.protocol, field });
        }
        self.check(s.len(), n, field)?;
        self.bytes(s.as_bytes());
        self.zeros(n - s.len());
        Ok(())
    }

    pub fn octets8(&mut self, v: &[u8], field: &'static str) -> Result<(), WireError> {
        self.check(v.len(), u8::MAX as usize, field)?;
        self.u8(v.len() as u8);
        self.bytes(v);
        Ok(())
    }

    pub fn octets32(&mut self, v: &[u8], field: &'static str) -> Result<(), WireError> {
        self.check(v.len(), MAX_PDU_LEN, field)?;
        self.u32(v.len() as u32);
        self.bytes(v);
        Ok(())
    }

    pub fn check(&self, len: usize, max: usize, field: &'static str) -> Result<(), WireError> {
        if len > max {
            return Err(WireError::TooLong { protocol: self.protocol, field, len, max });
        }
        Ok(())
    }
}

/// MD5 of the parts in order.
pub fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The login authenticator: MD5(account + `zeros` NULs + secret + timestamp as ten digits). CMPP's
/// AuthenticatorSource has 9 NULs, SMGP's AuthenticatorClient 7.
pub fn authenticator(account: &str, zeros: usize, secret: &str, timestamp: u32) -> [u8; 16] {
    let nuls = [0u8; 9];
    let digits = format!("{timestamp:010}");
    md5(&[account.as_bytes(), &nuls[..zeros.min(9)], secret.as_bytes(), digits.as_bytes()])
}

/// `MMDDHHMMSS` as the integer the login PDUs carry (1203083000 for 3 December, 08:30:00). The
/// caller passes the time in the gateway's zone: the time is injected, never read here.
pub fn mmddhhmmss<T: Datelike + Timelike>(t: &T) -> u32 {
    t.month() * 100_000_000 + t.day() * 1_000_000 + t.hour() * 10_000 + t.minute() * 100 + t.second()
}

/// The text formats (CMPP Msg_Fmt, SMGP MsgFormat, SGIP MessageCoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Ascii = 0,
    Ucs2 = 8,
    Gbk = 15,
}

/// In a config, the coding for Chinese: "ucs2" or "gbk" (ASCII text is always sent as ASCII).
impl<'de> serde::Deserialize<'de> for Coding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Coding, D::Error> {
        match String::deserialize(d)?.as_str() {
            "ucs2" => Ok(Coding::Ucs2),
            "gbk" => Ok(Coding::Gbk),
            other => Err(serde::de::Error::custom(format!("unknown coding {other:?}: \"ucs2\" or \"gbk\""))),
        }
    }
}

/// One Msg_Content's worth of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextPart {
    pub coding: Coding,
    /// TP_udhi: the content starts with the concatenation UDH.
    pub udhi: bool,
    /// Pk_total / Pk_number (1 and 1 for a message that fits alone).
    pub total: u8,
    pub number: u8,
    pub content: Vec<u8>,
}

/// The concatenation reference of an action's parts: from its id, so that the parts sent again
/// after a restart carry the reference they first had (the handset joins them either way).
pub fn concat_reference(action_id: &str) -> u8 {
    crate::util::stable_hash(action_id.as_bytes()) as u8
}

/// An SMS action's text split as [`split`] does, under the action's [`concat_reference`]; the
/// error in words, for the action's outcome.
pub fn action_parts(action: &crate::contact::Action, wide: Coding) -> Result<Vec<TextPart>, String> {
    let text = action.text.as_deref().unwrap_or_default();
    split(text, wide, concat_reference(&action.id)).map_err(|e| e.to_string())
}

/// Splits `text` into Msg_Contents: ASCII when every character is ASCII, else `wide` — UCS-2, or
/// GBK when the gateway wants it and every character has a GBK form (otherwise UCS-2: a character
/// GBK lacks must not become a `?`). At most [`SINGLE_OCTETS`] alone, else parts of at most
/// [`PART_OCTETS`] behind a 6-octet UDH carrying `reference`, never splitting a character.
pub fn split(text: &str, wide: Coding, reference: u8) -> Result<Vec<TextPart>, TextError> {
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    let (coding, atoms) = if text.is_ascii() {
        (Coding::Ascii, text.bytes().map(|b| vec![b]).collect())
    } else if let Some(atoms) = (wide == Coding::Gbk).then(|| gbk_atoms(text)).flatten() {
        (Coding::Gbk, atoms)
    } else {
        (Coding::Ucs2, text.chars().map(ucs2).collect())
    };
    let parts = concatenate(atoms, SINGLE_OCTETS, PART_OCTETS, reference)?;
    let total = parts.len() as u8; // concatenate refuses more than 255
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, content)| TextPart { coding, udhi: total > 1, total, number: i as u8 + 1, content })
        .collect())
}

/// Each character in GBK, or None when one has no GBK form.
fn gbk_atoms(text: &str) -> Option<Vec<Vec<u8>>> {
    let mut utf8 = [0u8; 4];
    text.chars()
        .map(|c| {
            let (bytes, _, unmappable) = encoding_rs::GBK.encode(c.encode_utf8(&mut utf8));
            (!unmappable).then(|| bytes.into_owned())
        })
        .collect()
}

/// The (reference, total, number) of a concatenation UDH at the front of `content` (IE 0x00 with
/// an 8-bit reference, or 0x08 with a 16-bit one), or None.
pub fn concatenation(content: &[u8]) -> Option<(u16, u8, u8)> {
    let udhl = *content.first()? as usize;
    let mut ies = content.get(1..1 + udhl)?;
    while let [iei, len, rest @ ..] = ies {
        let (ie, next) = rest.split_at_checked(*len as usize)?;
        match (iei, ie) {
            (0x00, [r, t, n]) => return Some((*r as u16, *t, *n)),
            (0x08, [r1, r2, t, n]) => return Some((u16::from_be_bytes([*r1, *r2]), *t, *n)),
            _ => ies = next,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_count_of_parts_is_what_the_gateways_send() {
        // `contact::sms_parts` (a rule's `parts:` budget, `validate`, `tidings test`) counts
        // what `split` sends, for every length around the limits, Chinese, mixed and ASCII.
        for n in 1..300 {
            for text in ["中".repeat(n), format!("中{}", "1".repeat(n)), "a".repeat(n)] {
                let parts = split(&text, Coding::Ucs2, 7).map(|p| p.len()).unwrap_or(0);
                assert_eq!(crate::contact::sms_parts(&text), parts, "{n} {}", &text[..3]);
                let gbk = split(&text, Coding::Gbk, 7).map(|p| p.len()).unwrap_or(0);
                assert!(gbk <= parts, "GBK never takes more parts: {n}");
            }
        }
    }

    #[test]
    fn authenticator_is_md5_of_the_documented_concatenation() {
        // MD5("901234" + 9 NULs + "s3cret" + "1203083000"); the digest itself is checked against
        // RFC 1321's test suite, and against cmppprotocol's in the CMPP tests.
        let a = authenticator("901234", 9, "s3cret", 1_203_083_000);
        let mut input = b"901234".to_vec();
        input.extend_from_slice(&[0; 9]);
        input.extend_from_slice(b"s3cret1203083000");
        assert_eq!(a, md5(&[&input]));
        assert_eq!(hex(&md5(&[b"abc"])), "900150983cd24fb0d6963f7d28e17f72"); // RFC 1321 test suite
        // A timestamp before October keeps its leading zero: ten digits always.
        assert_eq!(authenticator("a", 7, "s", 101_000_000), md5(&[b"a", &[0; 7], b"s", b"0101000000"]));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn timestamp_is_month_day_hour_minute_second() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 3).and_then(|d| d.and_hms_opt(8, 5, 9)).unwrap();
        assert_eq!(mmddhhmmss(&t), 103_080_509);
        assert_eq!(format!("{:010}", mmddhhmmss(&t)), "0103080509");
    }

    #[test]
    fn ascii_fits_140_then_parts_of_134() {
        let one = split(&"a".repeat(140), Coding::Ucs2, 7).unwrap();
        assert_eq!((one.len(), one[0].coding, one[0].udhi, one[0].total), (1, Coding::Ascii, false, 1));
        let two = split(&"a".repeat(141), Coding::Ucs2, 7).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(&two[1].content[..6], &[5, 0, 3, 7, 2, 2]);
        assert_eq!((two[0].content.len(), two[1].content.len()), (140, 13));
        assert!(two.iter().all(|p| p.udhi && p.total == 2));
    }

    #[test]
    fn chinese_200_characters_are_three_parts_in_ucs2_and_in_gbk() {
        let text: String = "尊敬的客户您好余额不足请及时充值".chars().cycle().take(200).collect();
        let ucs2 = split(&text, Coding::Ucs2, 0x42).unwrap();
        assert_eq!(ucs2.len(), 3);
        assert!(ucs2.iter().all(|p| p.coding == Coding::Ucs2 && p.content.len() <= 140));
        let back: String = ucs2.iter().map(|p| decode_text(8, p.udhi, &p.content)).collect();
        assert_eq!(back, text);
        // GBK: two octets a character, 67 a part.
        let gbk = split(&text, Coding::Gbk, 0x42).unwrap();
        assert_eq!(gbk.len(), 3);
        assert_eq!(gbk[0].content.len(), 6 + 134);
        assert_eq!(&gbk[0].content[6..8], &[0xD7, 0xF0]); // 尊 in GBK
        let back: String = gbk.iter().map(|p| decode_text(15, p.udhi, &p.content)).collect();
        assert_eq!(back, text);
        assert_eq!(concatenation(&gbk[2].content), Some((0x42, 3, 3)));
    }

    #[test]
    fn a_character_gbk_lacks_sends_the_text_in_ucs2() {
        let parts = split("你好😀", Coding::Gbk, 1).unwrap();
        assert_eq!(parts[0].coding, Coding::Ucs2);
        assert_eq!(decode_text(8, false, &parts[0].content), "你好😀");
    }

    #[test]
    fn reader_errors_name_the_field_and_never_panic() {
        let mut r = Reader::new("cmpp", &[1, 2, 3]);
        assert_eq!(r.u16("a"), Ok(0x0102));
        assert_eq!(r.u32("b"), Err(WireError::Truncated { protocol: "cmpp", field: "b" }));
        let mut r = Reader::new("smgp", &[5, b'a']);
        assert_eq!(r.octets8("MsgContent"), Err(WireError::Truncated { protocol: "smgp", field: "MsgContent" }));
        let mut r = Reader::new("sgip", &[0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(r.octets32("MessageContent").is_err());
        let mut r = Reader::new("cmpp", &[0xC4, 0]);
        assert_eq!(r.str(2, "Src_Id"), Err(WireError::NotAscii { protocol: "cmpp", field: "Src_Id" }));
        let mut w = Writer::new("cmpp");
        assert_eq!(
            w.str("1234567", 6, "Msg_src"),
            Err(WireError::TooLong { protocol: "cmpp", field: "Msg_src", len: 7, max: 6 })
        );
        assert_eq!(frame_len("cmpp", &[0, 0, 0, 8], 12), Err(WireError::Framing { protocol: "cmpp", length: 8 }));
        assert_eq!(frame_len("cmpp", &[0, 0, 0, 12, 0], 12), Ok(None));
        assert_eq!(concatenation(&[5, 0, 3]), None);
        assert_eq!(concatenation(&[6, 8, 4, 1, 2, 3, 1]), Some((0x0102, 3, 1)));
        assert_eq!(decode_text(8, true, &[200]), "");
    }
}
