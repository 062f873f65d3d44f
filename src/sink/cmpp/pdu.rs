//! The CMPP wire format (China Mobile Peer to Peer, the protocol of China Mobile's ISMG), 2.0 and
//! 3.0, for what an SP that submits SMS and takes status reports and replies needs: CONNECT,
//! SUBMIT, DELIVER (with the status report it may carry), ACTIVE_TEST and TERMINATE, each with
//! its response. The two versions differ in widths, not in kind: 3.0 widens terminal ids from 21
//! to 32 octets, adds the terminal types and LinkID, and widens the statuses of CONNECT_RESP,
//! SUBMIT_RESP and DELIVER_RESP from one octet to four. One set of types serves both; [`Version`]
//! picks the layout, and fields 2.0 lacks are ignored when writing it and zero when reading it.
//!
//! Checked against the crates.io codec `cmppprotocol` (2.0) byte for byte, and against the 3.0
//! layouts written out with their offsets in the tests. Decoding never panics.

use crate::sink::wire::{Reader, WireError, Writer, frame_len};

pub const CONNECT: u32 = 0x0000_0001;
pub const CONNECT_RESP: u32 = 0x8000_0001;
pub const TERMINATE: u32 = 0x0000_0002;
pub const TERMINATE_RESP: u32 = 0x8000_0002;
pub const SUBMIT: u32 = 0x0000_0004;
pub const SUBMIT_RESP: u32 = 0x8000_0004;
pub const DELIVER: u32 = 0x0000_0005;
pub const DELIVER_RESP: u32 = 0x8000_0005;
pub const ACTIVE_TEST: u32 = 0x0000_0008;
pub const ACTIVE_TEST_RESP: u32 = 0x8000_0008;

const HEADER_LEN: usize = 12;
const P: &str = "cmpp";

/// CMPP_CONNECT_RESP Status values (the same in 2.0 and 3.0).
pub mod status {
    pub const OK: u32 = 0;

    /// The meaning of a refused login, for reasons and logs.
    pub fn connect(s: u32) -> &'static str {
        match s {
            0 => "ok",
            1 => "message structure error",
            2 => "illegal source address",
            3 => "authentication failed",
            4 => "version too high",
            _ => "other error",
        }
    }

    /// SUBMIT_RESP Result 8: the ISMG's flow control — slow down and send again.
    pub const FLOW_CONTROL: u32 = 8;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V20,
    V30,
}

impl Version {
    /// The Version octet of CMPP_CONNECT.
    pub fn octet(self) -> u8 {
        match self {
            Version::V20 => 0x20,
            Version::V30 => 0x30,
        }
    }

    /// Terminal ids (Dest_terminal_Id, Src_terminal_Id, Fee_terminal_Id): 21 or 32 octets.
    fn terminal(self) -> usize {
        match self {
            Version::V20 => 21,
            Version::V30 => 32,
        }
    }

    fn status(self, w: &mut Writer, s: u32) -> Result<(), WireError> {
        match self {
            Version::V20 => {
                w.check(s as usize, u8::MAX as usize, "Status")?;
                w.u8(s as u8)
            }
            Version::V30 => w.u32(s),
        }
        Ok(())
    }

    fn read_status(self, r: &mut Reader, field: &'static str) -> Result<u32, WireError> {
        match self {
            Version::V20 => r.u8(field).map(u32::from),
            Version::V30 => r.u32(field),
        }
    }

    /// The Status as hashed into AuthenticatorISMG: its wire form (1 octet in 2.0, 4 in 3.0).
    pub fn status_octets(self, s: u32) -> Vec<u8> {
        match self {
            Version::V20 => vec![s as u8],
            Version::V30 => s.to_be_bytes().to_vec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Connect {
    /// Source_Addr: the SP's enterprise code (6 octets).
    pub source_addr: String,
    /// MD5(Source_Addr + 9 NULs + secret + timestamp): [`crate::sink::wire::authenticator`].
    pub authenticator: [u8; 16],
    pub version: u8,
    /// MMDDHHMMSS.
    pub timestamp: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnectResp {
    pub status: u32,
    /// MD5(Status + AuthenticatorSource + secret).
    pub authenticator: [u8; 16],
    pub version: u8,
}

/// CMPP_SUBMIT: one part of one message to one or more terminals.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Submit {
    pub msg_id: u64,
    pub pk_total: u8,
    pub pk_number: u8,
    pub registered_delivery: u8,
    pub msg_level: u8,
    pub service_id: String,
    pub fee_user_type: u8,
    pub fee_terminal_id: String,
    /// 3.0 only.
    pub fee_terminal_type: u8,
    pub tp_pid: u8,
    pub tp_udhi: u8,
    pub msg_fmt: u8,
    pub msg_src: String,
    pub fee_type: String,
    pub fee_code: String,
    pub valid_time: String,
    pub at_time: String,
    pub src_id: String,
    pub dest_terminal_ids: Vec<String>,
    /// 3.0 only.
    pub dest_terminal_type: u8,
    pub msg_content: Vec<u8>,
    /// 3.0 only.
    pub link_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SubmitResp {
    pub msg_id: u64,
    pub result: u32,
}

/// CMPP_DELIVER: a subscriber's message to the SP, or (Registered_Delivery 1) a status report
/// whose [`Report`] is the Msg_Content.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Deliver {
    pub msg_id: u64,
    pub dest_id: String,
    pub service_id: String,
    pub tp_pid: u8,
    pub tp_udhi: u8,
    pub msg_fmt: u8,
    pub src_terminal_id: String,
    /// 3.0 only.
    pub src_terminal_type: u8,
    pub registered_delivery: u8,
    pub msg_content: Vec<u8>,
    /// 3.0 only.
    pub link_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DeliverResp {
    pub msg_id: u64,
    pub result: u32,
}

/// The status report inside a DELIVER: 60 octets in 2.0, 71 in 3.0.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Report {
    /// The Msg_Id the SUBMIT_RESP gave.
    pub msg_id: u64,
    /// DELIVRD, EXPIRED, UNDELIV, REJECTD, or a gateway's own code (MA:xxxx, MK:xxxx…).
    pub stat: String,
    /// YYMMDDHHMM.
    pub submit_time: String,
    pub done_time: String,
    pub dest_terminal_id: String,
    pub smsc_sequence: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Connect(Connect),
    ConnectResp(ConnectResp),
    Terminate,
    TerminateResp,
    Submit(Box<Submit>),
    SubmitResp(SubmitResp),
    Deliver(Box<Deliver>),
    DeliverResp(DeliverResp),
    ActiveTest,
    ActiveTestResp,
    /// A command we do not implement, by its Command_Id.
    Other(u32),
}

impl Body {
    pub fn command_id(&self) -> u32 {
        match self {
            Body::Connect(_) => CONNECT,
            Body::ConnectResp(_) => CONNECT_RESP,
            Body::Terminate => TERMINATE,
            Body::TerminateResp => TERMINATE_RESP,
            Body::Submit(_) => SUBMIT,
            Body::SubmitResp(_) => SUBMIT_RESP,
            Body::Deliver(_) => DELIVER,
            Body::DeliverResp(_) => DELIVER_RESP,
            Body::ActiveTest => ACTIVE_TEST,
            Body::ActiveTestResp => ACTIVE_TEST_RESP,
            Body::Other(id) => *id,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub sequence: u32,
    pub body: Body,
}

/// One frame taken off the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Pdu(Pdu),
    /// The frame was whole but its body did not parse: framing holds, the next frame is fine.
    Bad {
        command_id: u32,
        sequence: u32,
        error: WireError,
    },
}

/// Takes one frame from the front of `buf`: `Ok(None)` until a whole frame is there, else the
/// frame and how many octets it used. `Err` means framing is lost (drop the connection).
pub fn decode_frame(v: Version, buf: &[u8]) -> Result<Option<(Decoded, usize)>, WireError> {
    let Some(len) = frame_len(P, buf, HEADER_LEN)? else { return Ok(None) };
    let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let (command_id, sequence) = (word(4), word(8));
    let decoded = match decode_body(v, command_id, &buf[HEADER_LEN..len]) {
        Ok(body) => Decoded::Pdu(Pdu { sequence, body }),
        Err(error) => Decoded::Bad { command_id, sequence, error },
    };
    Ok(Some((decoded, len)))
}

fn decode_body(v: Version, command_id: u32, body: &[u8]) -> Result<Body, WireError> {
    let r = &mut Reader::new(P, body);
    let term = v.terminal();
    Ok(match command_id {
        CONNECT => Body::Connect(Connect {
            source_addr: r.str(6, "Source_Addr")?,
            authenticator: r.array("AuthenticatorSource")?,
            version: r.u8("Version")?,
            timestamp: r.u32("Timestamp")?,
        }),
        CONNECT_RESP => Body::ConnectResp(ConnectResp {
            status: v.read_status(r, "Status")?,
            authenticator: r.array("AuthenticatorISMG")?,
            version: r.u8("Version")?,
        }),
        SUBMIT => {
            let mut s = Submit {
                msg_id: r.u64("Msg_Id")?,
                pk_total: r.u8("Pk_total")?,
                pk_number: r.u8("Pk_number")?,
                registered_delivery: r.u8("Registered_Delivery")?,
                msg_level: r.u8("Msg_level")?,
                service_id: r.str(10, "Service_Id")?,
                fee_user_type: r.u8("Fee_UserType")?,
                fee_terminal_id: r.str(term, "Fee_terminal_Id")?,
                ..Submit::default()
            };
            if v == Version::V30 {
                s.fee_terminal_type = r.u8("Fee_terminal_type")?;
            }
            s.tp_pid = r.u8("TP_pId")?;
            s.tp_udhi = r.u8("TP_udhi")?;
            s.msg_fmt = r.u8("Msg_Fmt")?;
            s.msg_src = r.str(6, "Msg_src")?;
            s.fee_type = r.str(2, "FeeType")?;
            s.fee_code = r.str(6, "FeeCode")?;
            s.valid_time = r.str(17, "ValId_Time")?;
            s.at_time = r.str(17, "At_Time")?;
            s.src_id = r.str(21, "Src_Id")?;
            let n = r.u8("DestUsr_tl")?;
            s.dest_terminal_ids = (0..n).map(|_| r.str(term, "Dest_terminal_Id")).collect::<Result<_, _>>()?;
            if v == Version::V30 {
                s.dest_terminal_type = r.u8("Dest_terminal_type")?;
            }
            s.msg_content = r.octets8("Msg_Content")?;
            if v == Version::V30 {
                s.link_id = r.str(20, "LinkID")?;
            } else {
                r.take(8, "Reserve")?;
            }
            Body::Submit(Box::new(s))
        }
        SUBMIT_RESP => Body::SubmitResp(SubmitResp { msg_id: r.u64("Msg_Id")?, result: v.read_status(r, "Result")? }),
        DELIVER => {
            let mut d = Deliver {
                msg_id: r.u64("Msg_Id")?,
                dest_id: r.str(21, "Dest_Id")?,
                service_id: r.str(10, "Service_Id")?,
                tp_pid: r.u8("TP_pid")?,
                tp_udhi: r.u8("TP_udhi")?,
                msg_fmt: r.u8("Msg_Fmt")?,
                src_terminal_id: r.str(term, "Src_terminal_Id")?,
                ..Deliver::default()
            };
            if v == Version::V30 {
                d.src_terminal_type = r.u8("Src_terminal_type")?;
            }
            d.registered_delivery = r.u8("Registered_Delivery")?;
            d.msg_content = r.octets8("Msg_Content")?;
            if v == Version::V30 {
                d.link_id = r.str(20, "LinkID")?;
            } else {
                r.take(8, "Reserved")?;
            }
            Body::Deliver(Box::new(d))
        }
        DELIVER_RESP => {
            Body::DeliverResp(DeliverResp { msg_id: r.u64("Msg_Id")?, result: v.read_status(r, "Result")? })
        }
        TERMINATE => Body::Terminate,
        TERMINATE_RESP => Body::TerminateResp,
        ACTIVE_TEST => Body::ActiveTest,
        // Reserved (one octet); some gateways send none, and nothing depends on it.
        ACTIVE_TEST_RESP => Body::ActiveTestResp,
        other => Body::Other(other),
    })
}

/// The PDU as octets, header included.
pub fn encode(v: Version, pdu: &Pdu) -> Result<Vec<u8>, WireError> {
    let w = &mut Writer::new(P);
    w.zeros(HEADER_LEN);
    let term = v.terminal();
    match &pdu.body {
        Body::Connect(c) => {
            w.str(&c.source_addr, 6, "Source_Addr")?;
            w.bytes(&c.authenticator);
            w.u8(c.version);
            w.u32(c.timestamp);
        }
        Body::ConnectResp(c) => {
            v.status(w, c.status)?;
            w.bytes(&c.authenticator);
            w.u8(c.version);
        }
        Body::Submit(s) => {
            w.u64(s.msg_id);
            for b in [s.pk_total, s.pk_number, s.registered_delivery, s.msg_level] {
                w.u8(b);
            }
            w.str(&s.service_id, 10, "Service_Id")?;
            w.u8(s.fee_user_type);
            w.str(&s.fee_terminal_id, term, "Fee_terminal_Id")?;
            if v == Version::V30 {
                w.u8(s.fee_terminal_type);
            }
            for b in [s.tp_pid, s.tp_udhi, s.msg_fmt] {
                w.u8(b);
            }
            w.str(&s.msg_src, 6, "Msg_src")?;
            w.str(&s.fee_type, 2, "FeeType")?;
            w.str(&s.fee_code, 6, "FeeCode")?;
            w.str(&s.valid_time, 17, "ValId_Time")?;
            w.str(&s.at_time, 17, "At_Time")?;
            w.str(&s.src_id, 21, "Src_Id")?;
            w.check(s.dest_terminal_ids.len(), 100, "DestUsr_tl")?;
            w.u8(s.dest_terminal_ids.len() as u8);
            for d in &s.dest_terminal_ids {
                w.str(d, term, "Dest_terminal_Id")?;
            }
            if v == Version::V30 {
                w.u8(s.dest_terminal_type);
            }
            w.octets8(&s.msg_content, "Msg_Content")?;
            match v {
                Version::V30 => w.str(&s.link_id, 20, "LinkID")?,
                Version::V20 => w.zeros(8),
            }
        }
        Body::SubmitResp(s) => {
            w.u64(s.msg_id);
            v.status(w, s.result)?;
        }
        Body::Deliver(d) => {
            w.u64(d.msg_id);
            w.str(&d.dest_id, 21, "Dest_Id")?;
            w.str(&d.service_id, 10, "Service_Id")?;
            for b in [d.tp_pid, d.tp_udhi, d.msg_fmt] {
                w.u8(b);
            }
            w.str(&d.src_terminal_id, term, "Src_terminal_Id")?;
            if v == Version::V30 {
                w.u8(d.src_terminal_type);
            }
            w.u8(d.registered_delivery);
            w.octets8(&d.msg_content, "Msg_Content")?;
            match v {
                Version::V30 => w.str(&d.link_id, 20, "LinkID")?,
                Version::V20 => w.zeros(8),
            }
        }
        Body::DeliverResp(d) => {
            w.u64(d.msg_id);
            v.status(w, d.result)?;
        }
        Body::ActiveTestResp => w.u8(0),
        Body::Terminate | Body::TerminateResp | Body::ActiveTest | Body::Other(_) => {}
    }
    let len = w.buf.len() as u32;
    w.buf[..4].copy_from_slice(&len.to_be_bytes());
    w.buf[4..8].copy_from_slice(&pdu.body.command_id().to_be_bytes());
    w.buf[8..12].copy_from_slice(&pdu.sequence.to_be_bytes());
    Ok(std::mem::take(&mut w.buf))
}

impl Report {
    /// The report in a status-report DELIVER's Msg_Content.
    pub fn decode(v: Version, content: &[u8]) -> Result<Report, WireError> {
        let r = &mut Reader::new(P, content);
        Ok(Report {
            msg_id: r.u64("Msg_Id")?,
            stat: r.str(7, "Stat")?,
            submit_time: r.str(10, "Submit_time")?,
            done_time: r.str(10, "Done_time")?,
            dest_terminal_id: r.str(v.terminal(), "Dest_terminal_Id")?,
            smsc_sequence: r.u32("SMSC_sequence")?,
        })
    }

    pub fn encode(&self, v: Version) -> Result<Vec<u8>, WireError> {
        let w = &mut Writer::new(P);
        w.u64(self.msg_id);
        w.str(&self.stat, 7, "Stat")?;
        w.str(&self.submit_time, 10, "Submit_time")?;
        w.str(&self.done_time, 10, "Done_time")?;
        w.str(&self.dest_terminal_id, v.terminal(), "Dest_terminal_Id")?;
        w.u32(self.smsc_sequence);
        Ok(std::mem::take(&mut w.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::wire::authenticator;
    use cmppprotocol as other;
    use proptest::prelude::*;

    fn pdu(sequence: u32, body: Body) -> Pdu {
        Pdu { sequence, body }
    }

    fn decode_one(v: Version, bytes: &[u8]) -> Pdu {
        match decode_frame(v, bytes) {
            Ok(Some((Decoded::Pdu(p), n))) if n == bytes.len() => p,
            other => panic!("expected one whole PDU, got {other:?}"),
        }
    }

    fn theirs_decode(bytes: &[u8]) -> other::Pdu {
        let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let header = other::CmppHeader { total_length: word(0), command_id: word(4), sequence_id: word(8) };
        other::Pdu::decode(header, &bytes[12..]).expect("cmppprotocol decodes our PDU")
    }

    fn submit20() -> (Submit, other::Submit) {
        let content =
            [&[5, 0, 3, 0x42, 2, 1][..], &"您好".encode_utf16().flat_map(u16::to_be_bytes).collect::<Vec<_>>()]
                .concat();
        let ours = Submit {
            pk_total: 2,
            pk_number: 1,
            registered_delivery: 1,
            msg_level: 1,
            service_id: "TIDINGS".into(),
            fee_user_type: 2,
            tp_udhi: 1,
            msg_fmt: 8,
            msg_src: "901234".into(),
            fee_type: "01".into(),
            fee_code: "000000".into(),
            src_id: "1069000188".into(),
            dest_terminal_ids: vec!["13800138000".into(), "8613900001234".into()],
            msg_content: content.clone(),
            ..Submit::default()
        };
        let theirs = other::Submit {
            msg_id: [0; 8],
            pk_total: 2,
            pk_number: 1,
            registered_delivery: 1,
            msg_level: 1,
            service_id: "TIDINGS".into(),
            fee_user_type: 2,
            fee_terminal_id: String::new(),
            tp_pid: 0,
            tp_udhi: 1,
            msg_fmt: 8,
            msg_src: "901234".into(),
            fee_type: "01".into(),
            fee_code: "000000".into(),
            valid_time: String::new(),
            at_time: String::new(),
            src_id: "1069000188".into(),
            dest_terminal_ids: vec!["13800138000".into(), "8613900001234".into()],
            msg_content: content,
        };
        (ours, theirs)
    }

    /// Each pair is one PDU as tidings and as `cmppprotocol` build it.
    fn pairs() -> Vec<(Pdu, other::Pdu)> {
        let auth = authenticator("901234", 9, "s3cret", 1_203_083_000);
        let (submit, their_submit) = submit20();
        let report = Report {
            msg_id: 0x0123_4567_89AB_CDEF,
            stat: "DELIVRD".into(),
            submit_time: "2612030830".into(),
            done_time: "2612030831".into(),
            dest_terminal_id: "13800138000".into(),
            smsc_sequence: 42,
        };
        let report_octets = report.encode(Version::V20).expect("a report encodes");
        vec![
            (
                pdu(
                    1,
                    Body::Connect(Connect {
                        source_addr: "901234".into(),
                        authenticator: auth,
                        version: 0x20,
                        timestamp: 1_203_083_000,
                    }),
                ),
                other::Pdu::Connect(other::Connect {
                    source_addr: "901234".into(),
                    authenticator_source: other::compute_authenticator_source("901234", "s3cret", 1_203_083_000),
                    version: 0x20,
                    timestamp: 1_203_083_000,
                }),
            ),
            (
                pdu(1, Body::ConnectResp(ConnectResp { status: 3, authenticator: [7; 16], version: 0x20 })),
                other::Pdu::ConnectResp(other::ConnectResp { status: 3, authenticator_ismg: [7; 16], version: 0x20 }),
            ),
            (pdu(2, Body::Submit(Box::new(submit))), other::Pdu::Submit(Box::new(their_submit))),
            (
                pdu(2, Body::SubmitResp(SubmitResp { msg_id: 0x0123_4567_89AB_CDEF, result: 8 })),
                other::Pdu::SubmitResp(other::SubmitResp { msg_id: 0x0123_4567_89AB_CDEFu64.to_be_bytes(), result: 8 }),
            ),
            (
                pdu(
                    3,
                    Body::Deliver(Box::new(Deliver {
                        msg_id: 99,
                        dest_id: "1069000188".into(),
                        src_terminal_id: "13800138000".into(),
                        registered_delivery: 1,
                        msg_content: report_octets.clone(),
                        ..Deliver::default()
                    })),
                ),
                other::Pdu::Deliver(other::Deliver {
                    msg_id: 99u64.to_be_bytes(),
                    dest_id: "1069000188".into(),
                    service_id: String::new(),
                    tp_pid: 0,
                    tp_udhi: 0,
                    msg_fmt: 0,
                    src_terminal_id: "13800138000".into(),
                    registered_delivery: 1,
                    msg_content: report_octets,
                }),
            ),
            (
                pdu(
                    4,
                    Body::Deliver(Box::new(Deliver {
                        msg_id: 100,
                        dest_id: "10690001".into(),
                        service_id: "TIDINGS".into(),
                        msg_fmt: 15,
                        src_terminal_id: "13800138000".into(),
                        msg_content: vec![0xCD, 0xCB, 0xB6, 0xA9], // 退订 in GBK
                        ..Deliver::default()
                    })),
                ),
                other::Pdu::Deliver(other::Deliver {
                    msg_id: 100u64.to_be_bytes(),
                    dest_id: "10690001".into(),
                    service_id: "TIDINGS".into(),
                    tp_pid: 0,
                    tp_udhi: 0,
                    msg_fmt: 15,
                    src_terminal_id: "13800138000".into(),
                    registered_delivery: 0,
                    msg_content: vec![0xCD, 0xCB, 0xB6, 0xA9],
                }),
            ),
            (
                pdu(3, Body::DeliverResp(DeliverResp { msg_id: 99, result: 0 })),
                other::Pdu::DeliverResp(other::DeliverResp { msg_id: 99u64.to_be_bytes(), result: 0 }),
            ),
            (pdu(5, Body::ActiveTest), other::Pdu::ActiveTest),
            (pdu(5, Body::ActiveTestResp), other::Pdu::ActiveTestResp),
            (pdu(6, Body::Terminate), other::Pdu::Terminate),
            (pdu(6, Body::TerminateResp), other::Pdu::TerminateResp),
        ]
    }

    #[test]
    fn cmpp20_encodes_and_decodes_byte_for_byte_as_cmppprotocol() {
        for (ours, theirs) in pairs() {
            let our_bytes = encode(Version::V20, &ours).expect("encodes");
            let their_bytes = theirs.encode(ours.sequence);
            assert_eq!(our_bytes, their_bytes.as_ref(), "{:?}", ours.body);
            assert_eq!(decode_one(Version::V20, &their_bytes), ours, "we decode theirs");
            assert_eq!(theirs_decode(&our_bytes), theirs, "they decode ours");
        }
    }

    #[test]
    fn cmpp20_authenticators_and_report_agree_with_cmppprotocol() {
        let source = authenticator("901234", 9, "s3cret", 1_203_083_000);
        assert_eq!(source, other::compute_authenticator_source("901234", "s3cret", 1_203_083_000));
        let ismg = crate::sink::wire::md5(&[&Version::V20.status_octets(0), &source, b"s3cret"]);
        assert_eq!(ismg, other::compute_authenticator_ismg(0, &source, "s3cret"));
        let report = Report {
            msg_id: 7,
            stat: "UNDELIV".into(),
            submit_time: "2612030830".into(),
            done_time: "2612030831".into(),
            dest_terminal_id: "13900001234".into(),
            smsc_sequence: 9,
        };
        let octets = report.encode(Version::V20).unwrap();
        assert_eq!(octets.len(), 60);
        let theirs = other::DeliverReport::parse(&octets).expect("cmppprotocol parses our report");
        assert_eq!(
            (theirs.msg_id, theirs.stat.as_str(), theirs.dest_terminal_id.as_str(), theirs.smsc_sequence),
            (7u64.to_be_bytes(), "UNDELIV", "13900001234", 9)
        );
        assert_eq!(Report::decode(Version::V20, &octets), Ok(report));
    }

    #[test]
    fn cmpp30_submit_matches_the_documented_layout() {
        let s = Submit {
            registered_delivery: 1,
            fee_terminal_type: 1,
            msg_fmt: 8,
            msg_src: "901234".into(),
            src_id: "10690001".into(),
            dest_terminal_ids: vec!["13800138000".into()],
            dest_terminal_type: 0,
            msg_content: vec![0x4F, 0x60],
            link_id: "L1".into(),
            ..Submit::default()
        };
        let b = encode(Version::V30, &pdu(9, Body::Submit(Box::new(s.clone())))).unwrap();
        // Header 0-12; body: Msg_Id 12-20, Pk_total 20, Pk_number 21, Registered_Delivery 22,
        // Msg_level 23, Service_Id 24-34, Fee_UserType 34, Fee_terminal_Id 35-67 (32),
        // Fee_terminal_type 67, TP_pId 68, TP_udhi 69, Msg_Fmt 70, Msg_src 71-77, FeeType 77-79,
        // FeeCode 79-85, ValId_Time 85-102, At_Time 102-119, Src_Id 119-140, DestUsr_tl 140,
        // Dest_terminal_Id 141-173 (32), Dest_terminal_type 173, Msg_Length 174, Msg_Content
        // 175-177, LinkID 177-197.
        assert_eq!(b.len(), 197);
        assert_eq!(&b[..12], &[0, 0, 0, 197, 0, 0, 0, 4, 0, 0, 0, 9]);
        assert_eq!((b[22], b[67], b[70]), (1, 1, 8));
        assert_eq!(&b[71..77], b"901234");
        assert_eq!(&b[119..127], b"10690001");
        assert_eq!(b[140], 1);
        assert_eq!(&b[141..152], b"13800138000");
        assert!(b[152..173].iter().all(|&x| x == 0));
        assert_eq!((b[173], b[174], &b[175..177]), (0, 2, &[0x4F, 0x60][..]));
        assert_eq!(&b[177..179], b"L1");
        assert_eq!(decode_one(Version::V30, &b).body, Body::Submit(Box::new(s)));
    }

    #[test]
    fn cmpp30_responses_carry_four_octet_statuses_and_the_report_is_71_octets() {
        let resp = encode(
            Version::V30,
            &pdu(1, Body::ConnectResp(ConnectResp { status: 3, authenticator: [1; 16], version: 0x30 })),
        )
        .unwrap();
        // Status 12-16, AuthenticatorISMG 16-32, Version 32
        assert_eq!((resp.len(), &resp[12..16], resp[32]), (33, &[0, 0, 0, 3][..], 0x30));
        let sr = encode(Version::V30, &pdu(2, Body::SubmitResp(SubmitResp { msg_id: 1, result: 8 }))).unwrap();
        assert_eq!((sr.len(), &sr[20..24]), (24, &[0, 0, 0, 8][..]));
        assert_eq!(encode(Version::V30, &pdu(2, Body::DeliverResp(DeliverResp::default()))).unwrap().len(), 24);
        let report =
            Report { msg_id: 5, stat: "MA:0001".into(), dest_terminal_id: "8613800138000".into(), ..Report::default() };
        let octets = report.encode(Version::V30).unwrap();
        // Msg_Id 0-8, Stat 8-15, Submit_time 15-25, Done_time 25-35, Dest_terminal_Id 35-67, SMSC_sequence 67-71
        assert_eq!((octets.len(), &octets[8..15], &octets[35..48]), (71, &b"MA:0001"[..], &b"8613800138000"[..]));
        let deliver = Deliver {
            src_terminal_id: "13800138000".into(),
            registered_delivery: 1,
            msg_content: octets,
            ..Deliver::default()
        };
        let b = encode(Version::V30, &pdu(3, Body::Deliver(Box::new(deliver.clone())))).unwrap();
        // Msg_Id 12-20, Dest_Id 20-41, Service_Id 41-51, TP_pid 51, TP_udhi 52, Msg_Fmt 53,
        // Src_terminal_Id 54-86, Src_terminal_type 86, Registered_Delivery 87, Msg_Length 88,
        // Msg_Content 89-160, LinkID 160-180
        assert_eq!((b.len(), b[87], b[88]), (180, 1, 71));
        let Body::Deliver(d) = decode_one(Version::V30, &b).body else { panic!("a deliver") };
        assert_eq!(Report::decode(Version::V30, &d.msg_content), Ok(report));
        // The 3.0 status is hashed in its wire form.
        assert_eq!(Version::V30.status_octets(3), vec![0, 0, 0, 3]);
    }

    #[test]
    fn malformed_frames_are_errors_never_panics() {
        assert_eq!(decode_frame(Version::V20, &[0, 0, 0, 4]), Err(WireError::Framing { protocol: "cmpp", length: 4 }));
        assert_eq!(decode_frame(Version::V20, &[0, 0, 0, 30, 0]), Ok(None));
        let (submit, _) = submit20();
        let good = encode(Version::V20, &pdu(5, Body::Submit(Box::new(submit)))).unwrap();
        for cut in 12..good.len() {
            let mut b = good[..cut].to_vec();
            b[..4].copy_from_slice(&(cut as u32).to_be_bytes());
            assert!(
                matches!(decode_frame(Version::V20, &b), Ok(Some((Decoded::Bad { sequence: 5, .. }, _)))),
                "cut at {cut}"
            );
        }
        let unknown = [0, 0, 0, 12, 0, 0, 0, 0x99, 0, 0, 0, 1];
        assert_eq!(decode_one(Version::V20, &unknown).body, Body::Other(0x99));
        let too_many = Submit { dest_terminal_ids: vec![String::new(); 101], ..Submit::default() };
        assert!(matches!(
            encode(Version::V20, &pdu(1, Body::Submit(Box::new(too_many)))),
            Err(WireError::TooLong { field: "DestUsr_tl", .. })
        ));
        assert!(encode(Version::V20, &pdu(1, Body::SubmitResp(SubmitResp { msg_id: 0, result: 256 }))).is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400), v3 in any::<bool>()) {
            let v = if v3 { Version::V30 } else { Version::V20 };
            let _ = decode_frame(v, &bytes);
            // The same bytes behind a plausible header reach the body decoders.
            for id in [CONNECT, CONNECT_RESP, SUBMIT, SUBMIT_RESP, DELIVER, DELIVER_RESP] {
                let mut framed = ((bytes.len() + 12) as u32).to_be_bytes().to_vec();
                framed.extend_from_slice(&id.to_be_bytes());
                framed.extend_from_slice(&[0, 0, 0, 1]);
                framed.extend_from_slice(&bytes);
                let _ = decode_frame(v, &framed);
            }
        }

        #[test]
        fn a_submit_round_trips(content in proptest::collection::vec(any::<u8>(), 0..=255), dests in 1usize..5, v3 in any::<bool>()) {
            let v = if v3 { Version::V30 } else { Version::V20 };
            let s = Submit { msg_content: content, dest_terminal_ids: vec!["13800138000".into(); dests], ..Submit::default() };
            let p = pdu(1, Body::Submit(Box::new(s)));
            prop_assert_eq!(decode_one(v, &encode(v, &p).unwrap()), p);
        }
    }
}
