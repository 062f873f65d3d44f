//! The SMPP 3.4 wire format, for the handful of operations an ESME that submits SMS and takes
//! delivery receipts needs: bind_transceiver, unbind, submit_sm, deliver_sm, enquire_link (each
//! with its response) and generic_nack, plus the TLVs we read or write.
//!
//! Hand-written rather than taken from crates.io: `smpp34` pulls tokio "full", rustls with ring,
//! nom, uuid, chrono and log; `rusmppc` pulls hickory-resolver, futures and rustls by default and
//! brings its own session model (the dispatcher needs ours: a window, classified answers); the
//! codec crate `rusmpp` alone is lighter but models all of SMPP 5.0 behind builders. What we need
//! is a few hundred lines and is checked here against byte vectors laid out as in the
//! specification (SMPP v3.4 §4, §5), so owning it costs less than adapting to any of them.
//!
//! Decoding never panics: every read is bounds-checked. A frame whose length cannot be trusted
//! (under 16 or over [`MAX_PDU_LEN`]) means framing is lost and the caller must drop the
//! connection; a frame with a good length but a bad body is returned as [`Decoded::Bad`] so the
//! caller can answer it (generic_nack) and carry on with the next frame.

use thiserror::Error;

pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
pub const UNBIND: u32 = 0x0000_0006;
pub const UNBIND_RESP: u32 = 0x8000_0006;
pub const SUBMIT_SM: u32 = 0x0000_0004;
pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
pub const DELIVER_SM: u32 = 0x0000_0005;
pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
pub const ENQUIRE_LINK: u32 = 0x0000_0015;
pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
pub const GENERIC_NACK: u32 = 0x8000_0000;

/// TLV tags (SMPP v3.4 §5.3.2).
pub const TAG_RECEIPTED_MESSAGE_ID: u16 = 0x001E;
pub const TAG_USER_MESSAGE_REFERENCE: u16 = 0x0204;
pub const TAG_MESSAGE_STATE: u16 = 0x0427;
/// The text of a message too long for short_message (then empty), e.g. a subscriber's message.
pub const TAG_MESSAGE_PAYLOAD: u16 = 0x0424;

/// command_status values the client names or sends (SMPP v3.4 §5.1.3).
pub mod status {
    pub const ESME_ROK: u32 = 0x00;
    pub const ESME_RINVMSGLEN: u32 = 0x01;
    pub const ESME_RINVCMDLEN: u32 = 0x02;
    pub const ESME_RINVCMDID: u32 = 0x03;
    pub const ESME_RINVBNDSTS: u32 = 0x04;
    pub const ESME_RALYBND: u32 = 0x05;
    pub const ESME_RSYSERR: u32 = 0x08;
    pub const ESME_RINVSRCADR: u32 = 0x0A;
    pub const ESME_RINVDSTADR: u32 = 0x0B;
    pub const ESME_RINVMSGID: u32 = 0x0C;
    pub const ESME_RBINDFAIL: u32 = 0x0D;
    pub const ESME_RINVPASWD: u32 = 0x0E;
    pub const ESME_RINVSYSID: u32 = 0x0F;
    pub const ESME_RMSGQFUL: u32 = 0x14;
    pub const ESME_RINVESMCLASS: u32 = 0x43;
    pub const ESME_RSUBMITFAIL: u32 = 0x45;
    pub const ESME_RINVSRCTON: u32 = 0x48;
    pub const ESME_RINVSRCNPI: u32 = 0x49;
    pub const ESME_RINVDSTTON: u32 = 0x50;
    pub const ESME_RINVDSTNPI: u32 = 0x51;
    pub const ESME_RTHROTTLED: u32 = 0x58;
    pub const ESME_RINVSCHED: u32 = 0x61;
    pub const ESME_RINVEXPIRY: u32 = 0x62;
    pub const ESME_RX_T_APPN: u32 = 0x64;
    pub const ESME_RX_P_APPN: u32 = 0x65;
    pub const ESME_RX_R_APPN: u32 = 0x66;
    pub const ESME_RUNKNOWNERR: u32 = 0xFF;

    /// The specification's name of a status, for reasons and logs.
    pub fn name(s: u32) -> &'static str {
        match s {
            ESME_ROK => "ESME_ROK",
            ESME_RINVMSGLEN => "ESME_RINVMSGLEN",
            ESME_RINVCMDLEN => "ESME_RINVCMDLEN",
            ESME_RINVCMDID => "ESME_RINVCMDID",
            ESME_RINVBNDSTS => "ESME_RINVBNDSTS",
            ESME_RALYBND => "ESME_RALYBND",
            ESME_RSYSERR => "ESME_RSYSERR",
            ESME_RINVSRCADR => "ESME_RINVSRCADR",
            ESME_RINVDSTADR => "ESME_RINVDSTADR",
            ESME_RINVMSGID => "ESME_RINVMSGID",
            ESME_RBINDFAIL => "ESME_RBINDFAIL",
            ESME_RINVPASWD => "ESME_RINVPASWD",
            ESME_RINVSYSID => "ESME_RINVSYSID",
            ESME_RMSGQFUL => "ESME_RMSGQFUL",
            ESME_RINVESMCLASS => "ESME_RINVESMCLASS",
            ESME_RSUBMITFAIL => "ESME_RSUBMITFAIL",
            ESME_RINVSRCTON => "ESME_RINVSRCTON",
            ESME_RINVSRCNPI => "ESME_RINVSRCNPI",
            ESME_RINVDSTTON => "ESME_RINVDSTTON",
            ESME_RINVDSTNPI => "ESME_RINVDSTNPI",
            ESME_RTHROTTLED => "ESME_RTHROTTLED",
            ESME_RINVSCHED => "ESME_RINVSCHED",
            ESME_RINVEXPIRY => "ESME_RINVEXPIRY",
            ESME_RX_T_APPN => "ESME_RX_T_APPN",
            ESME_RX_P_APPN => "ESME_RX_P_APPN",
            ESME_RX_R_APPN => "ESME_RX_R_APPN",
            ESME_RUNKNOWNERR => "ESME_RUNKNOWNERR",
            _ => "ESME_R?",
        }
    }
}

/// Larger frames are refused as lost framing. A submit_sm or deliver_sm is at most a few hundred
/// octets; 64 KiB leaves room for message_payload without letting a corrupt length make us
/// buffer megabytes.
pub const MAX_PDU_LEN: usize = 64 * 1024;
const HEADER_LEN: usize = 16;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PduError {
    /// The length field cannot be trusted: the byte stream is out of step. Drop the connection.
    #[error("smpp framing lost: command_length {0}")]
    Framing(u32),
    #[error("smpp pdu truncated reading {0}")]
    Truncated(&'static str),
    #[error("smpp field {field} has no NUL within {max} octets")]
    Unterminated { field: &'static str, max: usize },
    #[error("smpp field {field} is {len} octets, at most {max} allowed")]
    TooLong { field: &'static str, len: usize, max: usize },
    #[error("smpp field {0} is not ASCII")]
    NotAscii(&'static str),
}

/// A TLV (optional parameter), kept raw: we read three tags and pass the rest over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

/// bind_transceiver's body (SMPP v3.4 §4.1.5).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Bind {
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub interface_version: u8,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

/// The mandatory fields submit_sm (§4.4.1) and deliver_sm (§4.6.1) share, and their TLVs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ShortMessage {
    pub service_type: String,
    pub source_addr_ton: u8,
    pub source_addr_npi: u8,
    pub source_addr: String,
    pub dest_addr_ton: u8,
    pub dest_addr_npi: u8,
    pub destination_addr: String,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    /// Octets, UDH included when esm_class has 0x40; sm_length is derived from it.
    pub short_message: Vec<u8>,
    pub tlvs: Vec<Tlv>,
}

impl ShortMessage {
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs.iter().find(|t| t.tag == tag).map(|t| t.value.as_slice())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    BindTransceiver(Bind),
    /// system_id of the SMSC; absent when the bind failed.
    BindTransceiverResp {
        system_id: String,
    },
    Unbind,
    UnbindResp,
    SubmitSm(ShortMessage),
    /// message_id; empty when command_status is an error (the SMSC may omit the body).
    SubmitSmResp {
        message_id: String,
    },
    DeliverSm(ShortMessage),
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    /// A command we do not implement: answered with generic_nack ESME_RINVCMDID.
    Other(u32),
}

impl Body {
    pub fn command_id(&self) -> u32 {
        match self {
            Body::BindTransceiver(_) => BIND_TRANSCEIVER,
            Body::BindTransceiverResp { .. } => BIND_TRANSCEIVER_RESP,
            Body::Unbind => UNBIND,
            Body::UnbindResp => UNBIND_RESP,
            Body::SubmitSm(_) => SUBMIT_SM,
            Body::SubmitSmResp { .. } => SUBMIT_SM_RESP,
            Body::DeliverSm(_) => DELIVER_SM,
            Body::DeliverSmResp => DELIVER_SM_RESP,
            Body::EnquireLink => ENQUIRE_LINK,
            Body::EnquireLinkResp => ENQUIRE_LINK_RESP,
            Body::GenericNack => GENERIC_NACK,
            Body::Other(id) => *id,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub status: u32,
    pub sequence: u32,
    pub body: Body,
}

/// The fixed 16-octet header of every PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub length: u32,
    pub command_id: u32,
    pub status: u32,
    pub sequence: u32,
}

/// One frame taken off the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Pdu(Pdu),
    /// The frame was whole but its body did not parse; framing holds, the next frame is fine.
    Bad {
        header: Header,
        error: PduError,
    },
}

/// Takes one frame from the front of `buf`: `Ok(None)` until a whole frame is there, else the
/// frame and how many octets it used. `Err` means framing is lost (drop the connection).
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Decoded, usize)>, PduError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = length as usize;
    if !(HEADER_LEN..=MAX_PDU_LEN).contains(&len) {
        return Err(PduError::Framing(length));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let header = Header { length, command_id: word(4), status: word(8), sequence: word(12) };
    let decoded = match decode_body(&header, &buf[HEADER_LEN..len]) {
        Ok(body) => Decoded::Pdu(Pdu { status: header.status, sequence: header.sequence, body }),
        Err(error) => Decoded::Bad { header, error },
    };
    Ok(Some((decoded, len)))
}

fn decode_body(h: &Header, body: &[u8]) -> Result<Body, PduError> {
    let mut r = Reader { buf: body, pos: 0 };
    Ok(match h.command_id {
        BIND_TRANSCEIVER => Body::BindTransceiver(Bind {
            system_id: r.cstr("system_id", 16)?,
            password: r.cstr("password", 9)?,
            system_type: r.cstr("system_type", 13)?,
            interface_version: r.u8("interface_version")?,
            addr_ton: r.u8("addr_ton")?,
            addr_npi: r.u8("addr_npi")?,
            address_range: r.cstr("address_range", 41)?,
        }),
        // An error response may come without a body (§4.1.6, §4.4.2).
        BIND_TRANSCEIVER_RESP => Body::BindTransceiverResp { system_id: r.cstr_or_empty("system_id", 16)? },
        SUBMIT_SM_RESP => Body::SubmitSmResp { message_id: r.cstr_or_empty("message_id", 65)? },
        DELIVER_SM_RESP => Body::DeliverSmResp,
        UNBIND => Body::Unbind,
        UNBIND_RESP => Body::UnbindResp,
        ENQUIRE_LINK => Body::EnquireLink,
        ENQUIRE_LINK_RESP => Body::EnquireLinkResp,
        GENERIC_NACK => Body::GenericNack,
        SUBMIT_SM => Body::SubmitSm(r.short_message()?),
        DELIVER_SM => Body::DeliverSm(r.short_message()?),
        other => Body::Other(other),
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self, what: &'static str) -> Result<u8, PduError> {
        let b = *self.buf.get(self.pos).ok_or(PduError::Truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, PduError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], PduError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(PduError::Truncated(what))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A C-Octet String of at most `max` octets including its NUL.
    fn cstr(&mut self, field: &'static str, max: usize) -> Result<String, PduError> {
        let rest = &self.buf[self.pos..];
        let nul = rest.iter().take(max).position(|&b| b == 0).ok_or(if rest.len() < max {
            PduError::Truncated(field)
        } else {
            PduError::Unterminated { field, max }
        })?;
        let s = std::str::from_utf8(&rest[..nul]).ok().filter(|s| s.is_ascii()).ok_or(PduError::NotAscii(field))?;
        self.pos += nul + 1;
        Ok(s.to_string())
    }

    fn cstr_or_empty(&mut self, field: &'static str, max: usize) -> Result<String, PduError> {
        if self.pos >= self.buf.len() { Ok(String::new()) } else { self.cstr(field, max) }
    }

    fn short_message(&mut self) -> Result<ShortMessage, PduError> {
        let mut m = ShortMessage {
            service_type: self.cstr("service_type", 6)?,
            source_addr_ton: self.u8("source_addr_ton")?,
            source_addr_npi: self.u8("source_addr_npi")?,
            source_addr: self.cstr("source_addr", 21)?,
            dest_addr_ton: self.u8("dest_addr_ton")?,
            dest_addr_npi: self.u8("dest_addr_npi")?,
            destination_addr: self.cstr("destination_addr", 21)?,
            esm_class: self.u8("esm_class")?,
            protocol_id: self.u8("protocol_id")?,
            priority_flag: self.u8("priority_flag")?,
            schedule_delivery_time: self.cstr("schedule_delivery_time", 17)?,
            validity_period: self.cstr("validity_period", 17)?,
            registered_delivery: self.u8("registered_delivery")?,
            replace_if_present_flag: self.u8("replace_if_present_flag")?,
            data_coding: self.u8("data_coding")?,
            sm_default_msg_id: self.u8("sm_default_msg_id")?,
            ..ShortMessage::default()
        };
        let sm_length = self.u8("sm_length")? as usize;
        m.short_message = self.take(sm_length, "short_message")?.to_vec();
        while self.pos < self.buf.len() {
            let tag = self.u16("tlv tag")?;
            let len = self.u16("tlv length")? as usize;
            let value = self.take(len, "tlv value")?.to_vec();
            m.tlvs.push(Tlv { tag, value });
        }
        Ok(m)
    }
}

/// Encodes a PDU. Fails only when a field is longer than the specification allows, which for
/// what the client sends means a config value (checked at start) or a message part (the text
/// module keeps parts within 254 octets).
pub fn encode(pdu: &Pdu) -> Result<Vec<u8>, PduError> {
    let mut w = Writer { buf: Vec::with_capacity(64) };
    w.buf.extend_from_slice(&[0; 4]);
    w.u32(pdu.body.command_id());
    w.u32(pdu.status);
    w.u32(pdu.sequence);
    match &pdu.body {
        Body::BindTransceiver(b) => {
            w.cstr("system_id", &b.system_id, 16)?;
            w.cstr("password", &b.password, 9)?;
            w.cstr("system_type", &b.system_type, 13)?;
            w.buf.extend_from_slice(&[b.interface_version, b.addr_ton, b.addr_npi]);
            w.cstr("address_range", &b.address_range, 41)?;
        }
        Body::BindTransceiverResp { system_id } => w.cstr("system_id", system_id, 16)?,
        Body::SubmitSmResp { message_id } => w.cstr("message_id", message_id, 65)?,
        // deliver_sm_resp's message_id is unused and set to NULL (§4.6.2).
        Body::DeliverSmResp => w.buf.push(0),
        Body::SubmitSm(m) | Body::DeliverSm(m) => w.short_message(m)?,
        Body::Unbind
        | Body::UnbindResp
        | Body::EnquireLink
        | Body::EnquireLinkResp
        | Body::GenericNack
        | Body::Other(_) => {}
    }
    let len = (w.buf.len() as u32).to_be_bytes();
    w.buf[..4].copy_from_slice(&len);
    Ok(w.buf)
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn cstr(&mut self, field: &'static str, s: &str, max: usize) -> Result<(), PduError> {
        check_cstr(field, s, max)?;
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        Ok(())
    }

    fn short_message(&mut self, m: &ShortMessage) -> Result<(), PduError> {
        self.cstr("service_type", &m.service_type, 6)?;
        self.buf.extend_from_slice(&[m.source_addr_ton, m.source_addr_npi]);
        self.cstr("source_addr", &m.source_addr, 21)?;
        self.buf.extend_from_slice(&[m.dest_addr_ton, m.dest_addr_npi]);
        self.cstr("destination_addr", &m.destination_addr, 21)?;
        self.buf.extend_from_slice(&[m.esm_class, m.protocol_id, m.priority_flag]);
        self.cstr("schedule_delivery_time", &m.schedule_delivery_time, 17)?;
        self.cstr("validity_period", &m.validity_period, 17)?;
        self.buf.extend_from_slice(&[m.registered_delivery, m.replace_if_present_flag, m.data_coding]);
        self.buf.push(m.sm_default_msg_id);
        let len = m.short_message.len();
        if len > 254 {
            return Err(PduError::TooLong { field: "short_message", len, max: 254 });
        }
        self.buf.push(len as u8);
        self.buf.extend_from_slice(&m.short_message);
        for t in &m.tlvs {
            let len = t.value.len();
            let len16 = u16::try_from(len).map_err(|_| PduError::TooLong { field: "tlv", len, max: 65535 })?;
            self.buf.extend_from_slice(&t.tag.to_be_bytes());
            self.buf.extend_from_slice(&len16.to_be_bytes());
            self.buf.extend_from_slice(&t.value);
        }
        Ok(())
    }
}

/// Checks that `s` fits a C-Octet String field of `max` octets (NUL included) and is ASCII.
pub fn check_cstr(field: &'static str, s: &str, max: usize) -> Result<(), PduError> {
    if !s.is_ascii() || s.as_bytes().contains(&0) {
        return Err(PduError::NotAscii(field));
    }
    if s.len() + 1 > max {
        return Err(PduError::TooLong { field, len: s.len(), max: max - 1 });
    }
    Ok(())
}

/// A DELIVRD receipt for message `id` as SMSCs send it (receipt text and TLVs), for tests.
#[cfg(test)]
pub(crate) fn sample_receipt(id: &str) -> ShortMessage {
    let text =
        format!("id:{id} sub:001 dlvrd:001 submit date:2611242000 done date:2611242001 stat:DELIVRD err:000 text:");
    ShortMessage {
        esm_class: 0x04,
        short_message: text.into_bytes(),
        tlvs: vec![
            Tlv { tag: TAG_RECEIPTED_MESSAGE_ID, value: format!("{id}\0").into_bytes() },
            Tlv { tag: TAG_MESSAGE_STATE, value: vec![2] },
        ],
        ..ShortMessage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Pdu {
        match decode_frame(bytes) {
            Ok(Some((Decoded::Pdu(p), n))) if n == bytes.len() => p,
            other => panic!("expected one pdu, got {other:?}"),
        }
    }

    fn roundtrip(p: &Pdu, expect: &[u8]) {
        let bytes = encode(p).expect("encodes");
        assert_eq!(bytes, expect, "encoding differs from the spec layout");
        assert_eq!(&one(&bytes), p);
    }

    #[test]
    fn enquire_link_and_resp_are_bare_headers() {
        roundtrip(
            &Pdu { status: 0, sequence: 1, body: Body::EnquireLink },
            &[0, 0, 0, 0x10, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1],
        );
        roundtrip(
            &Pdu { status: 0, sequence: 7, body: Body::EnquireLinkResp },
            &[0, 0, 0, 0x10, 0x80, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 7],
        );
        roundtrip(
            &Pdu { status: status::ESME_RINVCMDID, sequence: 9, body: Body::GenericNack },
            &[0, 0, 0, 0x10, 0x80, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9],
        );
        roundtrip(
            &Pdu { status: 0, sequence: 2, body: Body::Unbind },
            &[0, 0, 0, 0x10, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 2],
        );
    }

    #[test]
    fn bind_transceiver_matches_spec_layout() {
        let p = Pdu {
            status: 0,
            sequence: 1,
            body: Body::BindTransceiver(Bind {
                system_id: "ESME".into(),
                password: "pw".into(),
                system_type: "".into(),
                interface_version: 0x34,
                addr_ton: 0,
                addr_npi: 0,
                address_range: "".into(),
            }),
        };
        #[rustfmt::skip]
        let expect = [
            0, 0, 0, 0x1D, 0, 0, 0, 0x09, 0, 0, 0, 0, 0, 0, 0, 1,
            b'E', b'S', b'M', b'E', 0, b'p', b'w', 0, 0, 0x34, 0, 0, 0,
        ];
        roundtrip(&p, &expect);
        let resp = [0, 0, 0, 0x15, 0x80, 0, 0, 0x09, 0, 0, 0, 0, 0, 0, 0, 1, b'S', b'M', b'S', b'C', 0];
        assert_eq!(one(&resp).body, Body::BindTransceiverResp { system_id: "SMSC".into() });
        // A failed bind may come back without a body.
        let nobody = [0, 0, 0, 0x10, 0x80, 0, 0, 0x09, 0, 0, 0, 0x0E, 0, 0, 0, 1];
        let p = one(&nobody);
        assert_eq!((p.status, p.body), (status::ESME_RINVPASWD, Body::BindTransceiverResp { system_id: "".into() }));
    }

    #[test]
    fn submit_sm_with_udh_and_tlv_matches_spec_layout() {
        let m = ShortMessage {
            source_addr_ton: 0,
            source_addr_npi: 0,
            source_addr: "10086".into(),
            dest_addr_ton: 0,
            dest_addr_npi: 1,
            destination_addr: "13800138000".into(),
            esm_class: 0x40,
            registered_delivery: 1,
            data_coding: 8,
            short_message: vec![5, 0, 3, 0xAB, 2, 1, 0x4F, 0x60],
            tlvs: vec![Tlv { tag: TAG_USER_MESSAGE_REFERENCE, value: vec![0x12, 0x34] }],
            ..ShortMessage::default()
        };
        #[rustfmt::skip]
        let expect = [
            0, 0, 0, 0x3F, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0x2A,
            0,                                   // service_type ""
            0, 0, b'1', b'0', b'0', b'8', b'6', 0, // source ton, npi, addr
            0, 1, b'1', b'3', b'8', b'0', b'0', b'1', b'3', b'8', b'0', b'0', b'0', 0,
            0x40, 0, 0,                          // esm_class, protocol_id, priority_flag
            0, 0,                                // schedule_delivery_time, validity_period
            1, 0, 8, 0,                          // registered_delivery, replace, data_coding, default msg id
            8, 5, 0, 3, 0xAB, 2, 1, 0x4F, 0x60,  // sm_length, UDH, "你"
            0x02, 0x04, 0, 2, 0x12, 0x34,        // user_message_reference
        ];
        roundtrip(&Pdu { status: 0, sequence: 0x2A, body: Body::SubmitSm(m) }, &expect);
        let resp = [0, 0, 0, 0x13, 0x80, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0x2A, b'a', b'1', 0];
        assert_eq!(one(&resp).body, Body::SubmitSmResp { message_id: "a1".into() });
        let throttled = [0, 0, 0, 0x10, 0x80, 0, 0, 0x04, 0, 0, 0, 0x58, 0, 0, 0, 0x2A];
        assert_eq!(one(&throttled).status, status::ESME_RTHROTTLED);
    }

    #[test]
    fn deliver_sm_receipt_tlvs_are_read() {
        let m =
            ShortMessage { source_addr: "13800138000".into(), destination_addr: "10086".into(), ..sample_receipt("7") };
        let p = Pdu { status: 0, sequence: 3, body: Body::DeliverSm(m.clone()) };
        let back = one(&encode(&p).unwrap());
        let Body::DeliverSm(got) = back.body else { panic!("not deliver_sm") };
        assert_eq!(got, m);
        assert_eq!(got.tlv(TAG_MESSAGE_STATE), Some(&[2u8][..]));
        let resp = encode(&Pdu { status: 0, sequence: 3, body: Body::DeliverSmResp }).unwrap();
        assert_eq!(resp, [0, 0, 0, 0x11, 0x80, 0, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 3, 0]);
    }

    #[test]
    fn partial_frames_wait_and_two_frames_split() {
        let a = encode(&Pdu { status: 0, sequence: 1, body: Body::EnquireLink }).unwrap();
        let b = encode(&Pdu { status: 0, sequence: 2, body: Body::EnquireLinkResp }).unwrap();
        let mut both = a.clone();
        both.extend_from_slice(&b);
        for cut in 0..a.len() {
            assert_eq!(decode_frame(&both[..cut]), Ok(None), "cut at {cut}");
        }
        let (_, n) = decode_frame(&both).unwrap().unwrap();
        assert_eq!(n, 16);
        assert!(matches!(decode_frame(&both[n..]), Ok(Some((Decoded::Pdu(_), 16)))));
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        // Lengths that cannot be trusted lose framing.
        assert_eq!(decode_frame(&[0, 0, 0, 4, 0, 0, 0, 0]), Err(PduError::Framing(4)));
        assert_eq!(decode_frame(&[0xFF, 0xFF, 0xFF, 0xFF]), Err(PduError::Framing(u32::MAX)));
        // A deliver_sm whose sm_length runs past the frame is a bad body, framing intact.
        let mut bad = encode(&Pdu {
            status: 0,
            sequence: 5,
            body: Body::DeliverSm(ShortMessage { short_message: b"abc".to_vec(), ..ShortMessage::default() }),
        })
        .unwrap();
        let sm_len_at = bad.len() - 4;
        bad[sm_len_at] = 200;
        match decode_frame(&bad) {
            Ok(Some((Decoded::Bad { header, .. }, n))) => {
                assert_eq!((header.sequence, header.command_id, n), (5, DELIVER_SM, bad.len()))
            }
            other => panic!("expected a bad body, got {other:?}"),
        }
        // An unterminated string, a truncated TLV, and every prefix of a good PDU with a lying
        // length: all errors, none a panic.
        let good = encode(&Pdu {
            status: 0,
            sequence: 6,
            body: Body::DeliverSm(ShortMessage {
                source_addr: "13800138000".into(),
                tlvs: vec![Tlv { tag: TAG_MESSAGE_STATE, value: vec![2] }],
                ..ShortMessage::default()
            }),
        })
        .unwrap();
        for cut in HEADER_LEN..good.len() {
            if cut == good.len() - 5 {
                continue; // ends right before the TLV: a whole PDU without it
            }
            let mut v = good[..cut].to_vec();
            v[..4].copy_from_slice(&(cut as u32).to_be_bytes());
            assert!(matches!(decode_frame(&v), Ok(Some((Decoded::Bad { .. }, _)))), "cut at {cut}");
        }
        let long_id = [&[0, 0, 0, 0x60, 0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1][..], &[b'x'; 80]].concat();
        assert!(matches!(decode_frame(&long_id), Ok(Some((Decoded::Bad { .. }, _)))));
        let unknown = [0, 0, 0, 0x10, 0, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(one(&unknown).body, Body::Other(0x99));
    }

    #[test]
    fn overlong_fields_are_refused_on_encode() {
        let p = Pdu {
            status: 0,
            sequence: 1,
            body: Body::BindTransceiver(Bind { password: "far-too-long".into(), ..Bind::default() }),
        };
        assert_eq!(encode(&p), Err(PduError::TooLong { field: "password", len: 12, max: 8 }));
    }
}
