//! The SMGP 3.0 wire format (Short Message Gateway Protocol, China Telecom's SMGW), for what an SP
//! that submits SMS and takes status reports and replies needs: Login, Submit, Deliver (a status
//! report or a subscriber's message, by its IsReport flag), Active_Test and Exit, each with its
//! response, the optional TLV fields after the fixed ones (TP_udhi, PkTotal, PkNumber for long
//! messages), the 10-octet MsgID, and the status report text a Deliver carries.
//!
//! No registry has an independent SMGP implementation: the tests check these layouts against the
//! protocol document's field tables, written out with their offsets. Decoding never panics.

use crate::sink::wire::{Reader, WireError, Writer, frame_len};
use std::fmt;

pub const LOGIN: u32 = 0x0000_0001;
pub const LOGIN_RESP: u32 = 0x8000_0001;
pub const SUBMIT: u32 = 0x0000_0002;
pub const SUBMIT_RESP: u32 = 0x8000_0002;
pub const DELIVER: u32 = 0x0000_0003;
pub const DELIVER_RESP: u32 = 0x8000_0003;
pub const ACTIVE_TEST: u32 = 0x0000_0004;
pub const ACTIVE_TEST_RESP: u32 = 0x8000_0004;
pub const EXIT: u32 = 0x0000_0006;
pub const EXIT_RESP: u32 = 0x8000_0006;

/// TLV tags (SMGP 3.0 optional parameters).
pub const TAG_TP_PID: u16 = 0x0001;
pub const TAG_TP_UDHI: u16 = 0x0002;
pub const TAG_LINK_ID: u16 = 0x0003;
pub const TAG_PK_TOTAL: u16 = 0x0009;
pub const TAG_PK_NUMBER: u16 = 0x000A;

/// The Login ClientVersion for 3.0.
pub const VERSION: u8 = 0x30;

const HEADER_LEN: usize = 12;
const P: &str = "smgp";

/// Status values an SP meets.
pub mod status {
    pub const OK: u32 = 0;
    /// 系统忙: the usual answer of a gateway over its rate — slow down and send again.
    pub const SYSTEM_BUSY: u32 = 1;

    /// The meaning of a status, for reasons and logs.
    pub fn name(s: u32) -> &'static str {
        match s {
            0 => "ok",
            1 => "system busy",
            2 => "too many connections",
            10 => "message structure error",
            11 => "command error",
            12 => "sequence number repeated",
            20 => "ip address error",
            21 => "authentication failed",
            22 => "version too high",
            _ => "other error",
        }
    }
}

/// The gateway's 10-octet message id (SMGW code, MMDDHHMM and a sequence, in BCD); shown as
/// its 20 hex digits, which for BCD are its decimal digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MsgId(pub [u8; 10]);

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Login {
    pub client_id: String,
    /// MD5(ClientID + 7 NULs + secret + timestamp): [`crate::sink::wire::authenticator`].
    pub authenticator: [u8; 16],
    /// 0 send only, 1 receive only, 2 transmit and receive.
    pub login_mode: u8,
    pub timestamp: u32,
    pub version: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LoginResp {
    pub status: u32,
    /// MD5(Status (4 octets) + AuthenticatorClient + secret).
    pub authenticator: [u8; 16],
    pub version: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Submit {
    /// 6: an MT message to a subscriber.
    pub msg_type: u8,
    pub need_report: u8,
    pub priority: u8,
    pub service_id: String,
    pub fee_type: String,
    pub fee_code: String,
    pub fixed_fee: String,
    pub msg_format: u8,
    pub valid_time: String,
    pub at_time: String,
    pub src_term_id: String,
    pub charge_term_id: String,
    pub dest_term_ids: Vec<String>,
    pub msg_content: Vec<u8>,
    pub tlvs: Vec<Tlv>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SubmitResp {
    pub msg_id: MsgId,
    pub status: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Deliver {
    pub msg_id: MsgId,
    /// 1: the content is a status [`Report`]; 0: a subscriber's message.
    pub is_report: u8,
    pub msg_format: u8,
    /// YYYYMMDDHHMMSS.
    pub recv_time: String,
    pub src_term_id: String,
    pub dest_term_id: String,
    pub msg_content: Vec<u8>,
    pub tlvs: Vec<Tlv>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DeliverResp {
    pub msg_id: MsgId,
    pub status: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Login(Login),
    LoginResp(LoginResp),
    Submit(Box<Submit>),
    SubmitResp(SubmitResp),
    Deliver(Box<Deliver>),
    DeliverResp(DeliverResp),
    ActiveTest,
    ActiveTestResp,
    Exit,
    ExitResp,
    Other(u32),
}

impl Body {
    pub fn request_id(&self) -> u32 {
        match self {
            Body::Login(_) => LOGIN,
            Body::LoginResp(_) => LOGIN_RESP,
            Body::Submit(_) => SUBMIT,
            Body::SubmitResp(_) => SUBMIT_RESP,
            Body::Deliver(_) => DELIVER,
            Body::DeliverResp(_) => DELIVER_RESP,
            Body::ActiveTest => ACTIVE_TEST,
            Body::ActiveTestResp => ACTIVE_TEST_RESP,
            Body::Exit => EXIT,
            Body::ExitResp => EXIT_RESP,
            Body::Other(id) => *id,
        }
    }
}

impl Submit {
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs.iter().find(|t| t.tag == tag).map(|t| t.value.as_slice())
    }
}

impl Deliver {
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs.iter().find(|t| t.tag == tag).map(|t| t.value.as_slice())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub sequence: u32,
    pub body: Body,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Pdu(Pdu),
    /// The frame was whole but its body did not parse: framing holds.
    Bad {
        request_id: u32,
        sequence: u32,
        error: WireError,
    },
}

/// Takes one frame from the front of `buf`: `Ok(None)` until a whole frame is there. `Err`
/// means framing is lost (drop the connection).
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Decoded, usize)>, WireError> {
    let Some(len) = frame_len(P, buf, HEADER_LEN)? else { return Ok(None) };
    let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let (request_id, sequence) = (word(4), word(8));
    let decoded = match decode_body(request_id, &buf[HEADER_LEN..len]) {
        Ok(body) => Decoded::Pdu(Pdu { sequence, body }),
        Err(error) => Decoded::Bad { request_id, sequence, error },
    };
    Ok(Some((decoded, len)))
}

fn decode_body(request_id: u32, body: &[u8]) -> Result<Body, WireError> {
    let r = &mut Reader::new(P, body);
    Ok(match request_id {
        LOGIN => Body::Login(Login {
            client_id: r.str(8, "ClientID")?,
            authenticator: r.array("AuthenticatorClient")?,
            login_mode: r.u8("LoginMode")?,
            timestamp: r.u32("TimeStamp")?,
            version: r.u8("ClientVersion")?,
        }),
        LOGIN_RESP => Body::LoginResp(LoginResp {
            status: r.u32("Status")?,
            authenticator: r.array("AuthenticatorServer")?,
            version: r.u8("ServerVersion")?,
        }),
        SUBMIT => {
            let mut s = Submit {
                msg_type: r.u8("MsgType")?,
                need_report: r.u8("NeedReport")?,
                priority: r.u8("Priority")?,
                service_id: r.str(10, "ServiceID")?,
                fee_type: r.str(2, "FeeType")?,
                fee_code: r.str(6, "FeeCode")?,
                fixed_fee: r.str(6, "FixedFee")?,
                msg_format: r.u8("MsgFormat")?,
                valid_time: r.str(17, "ValidTime")?,
                at_time: r.str(17, "AtTime")?,
                src_term_id: r.str(21, "SrcTermID")?,
                charge_term_id: r.str(21, "ChargeTermID")?,
                ..Submit::default()
            };
            let n = r.u8("DestTermIDCount")?;
            s.dest_term_ids = (0..n).map(|_| r.str(21, "DestTermID")).collect::<Result<_, _>>()?;
            s.msg_content = r.octets8("MsgContent")?;
            r.take(8, "Reserve")?;
            s.tlvs = tlvs(r)?;
            Body::Submit(Box::new(s))
        }
        SUBMIT_RESP => Body::SubmitResp(SubmitResp { msg_id: MsgId(r.array("MsgID")?), status: r.u32("Status")? }),
        DELIVER => {
            let mut d = Deliver {
                msg_id: MsgId(r.array("MsgID")?),
                is_report: r.u8("IsReport")?,
                msg_format: r.u8("MsgFormat")?,
                recv_time: r.str(14, "RecvTime")?,
                src_term_id: r.str(21, "SrcTermID")?,
                dest_term_id: r.str(21, "DestTermID")?,
                msg_content: r.octets8("MsgContent")?,
                ..Deliver::default()
            };
            r.take(8, "Reserve")?;
            d.tlvs = tlvs(r)?;
            Body::Deliver(Box::new(d))
        }
        DELIVER_RESP => Body::DeliverResp(DeliverResp { msg_id: MsgId(r.array("MsgID")?), status: r.u32("Status")? }),
        ACTIVE_TEST => Body::ActiveTest,
        ACTIVE_TEST_RESP => Body::ActiveTestResp,
        EXIT => Body::Exit,
        EXIT_RESP => Body::ExitResp,
        other => Body::Other(other),
    })
}

fn tlvs(r: &mut Reader) -> Result<Vec<Tlv>, WireError> {
    let rest = r.rest();
    let r = &mut Reader::new(P, rest);
    let mut out = Vec::new();
    let mut left = rest.len();
    while left > 0 {
        let tag = r.u16("TLV tag")?;
        let n = r.u16("TLV length")? as usize;
        out.push(Tlv { tag, value: r.take(n, "TLV value")?.to_vec() });
        left -= 4 + n;
    }
    Ok(out)
}

pub fn encode(pdu: &Pdu) -> Result<Vec<u8>, WireError> {
    let w = &mut Writer::new(P);
    w.zeros(HEADER_LEN);
    match &pdu.body {
        Body::Login(l) => {
            w.str(&l.client_id, 8, "ClientID")?;
            w.bytes(&l.authenticator);
            w.u8(l.login_mode);
            w.u32(l.timestamp);
            w.u8(l.version);
        }
        Body::LoginResp(l) => {
            w.u32(l.status);
            w.bytes(&l.authenticator);
            w.u8(l.version);
        }
        Body::Submit(s) => {
            for b in [s.msg_type, s.need_report, s.priority] {
                w.u8(b);
            }
            w.str(&s.service_id, 10, "ServiceID")?;
            w.str(&s.fee_type, 2, "FeeType")?;
            w.str(&s.fee_code, 6, "FeeCode")?;
            w.str(&s.fixed_fee, 6, "FixedFee")?;
            w.u8(s.msg_format);
            w.str(&s.valid_time, 17, "ValidTime")?;
            w.str(&s.at_time, 17, "AtTime")?;
            w.str(&s.src_term_id, 21, "SrcTermID")?;
            w.str(&s.charge_term_id, 21, "ChargeTermID")?;
            w.check(s.dest_term_ids.len(), 100, "DestTermIDCount")?;
            w.u8(s.dest_term_ids.len() as u8);
            for d in &s.dest_term_ids {
                w.str(d, 21, "DestTermID")?;
            }
            w.octets8(&s.msg_content, "MsgContent")?;
            w.zeros(8);
            write_tlvs(w, &s.tlvs)?;
        }
        Body::SubmitResp(s) => {
            w.bytes(&s.msg_id.0);
            w.u32(s.status);
        }
        Body::Deliver(d) => {
            w.bytes(&d.msg_id.0);
            w.u8(d.is_report);
            w.u8(d.msg_format);
            w.str(&d.recv_time, 14, "RecvTime")?;
            w.str(&d.src_term_id, 21, "SrcTermID")?;
            w.str(&d.dest_term_id, 21, "DestTermID")?;
            w.octets8(&d.msg_content, "MsgContent")?;
            w.zeros(8);
            write_tlvs(w, &d.tlvs)?;
        }
        Body::DeliverResp(d) => {
            w.bytes(&d.msg_id.0);
            w.u32(d.status);
        }
        Body::ActiveTest | Body::ActiveTestResp | Body::Exit | Body::ExitResp | Body::Other(_) => {}
    }
    let len = w.buf.len() as u32;
    w.buf[..4].copy_from_slice(&len.to_be_bytes());
    w.buf[4..8].copy_from_slice(&pdu.body.request_id().to_be_bytes());
    w.buf[8..12].copy_from_slice(&pdu.sequence.to_be_bytes());
    Ok(std::mem::take(&mut w.buf))
}

fn write_tlvs(w: &mut Writer, tlvs: &[Tlv]) -> Result<(), WireError> {
    for t in tlvs {
        w.check(t.value.len(), u16::MAX as usize, "TLV value")?;
        w.u16(t.tag);
        w.u16(t.value.len() as u16);
        w.bytes(&t.value);
    }
    Ok(())
}

/// The status report in a Deliver with IsReport 1: `id:` and the 10-octet MsgID of the submit,
/// then text fields — ` sub:001 dlvrd:001 submit date:YYMMDDHHMM done date:YYMMDDHHMM
/// stat:DELIVRD err:000 text:` and 20 octets (122 octets in all). Gateways differ in the case and
/// spacing of the keys (`Submit_date`, `submit date`), so they are found by name, not offset.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Report {
    pub msg_id: MsgId,
    pub sub: String,
    pub dlvrd: String,
    pub submit_date: String,
    pub done_date: String,
    pub stat: String,
    pub err: String,
}

impl Report {
    pub fn decode(content: &[u8]) -> Result<Report, WireError> {
        let r = &mut Reader::new(P, content);
        if r.take(3, "report id:")? != b"id:" {
            return Err(WireError::NotAscii { protocol: P, field: "report id:" });
        }
        let msg_id = MsgId(r.array("report MsgID")?);
        // Keys compared in lower case with '_' as ' '; a value ends at its width or its first
        // octet that is not printable ASCII.
        let raw = r.rest();
        let folded: Vec<u8> = raw.iter().map(|&b| if b == b'_' { b' ' } else { b.to_ascii_lowercase() }).collect();
        let field = |key: &str, width: usize| -> String {
            let key = key.as_bytes();
            folded
                .windows(key.len())
                .position(|w| w == key)
                .and_then(|at| raw.get(at + key.len()..(at + key.len() + width).min(raw.len())))
                .map(|v| v.iter().take_while(|b| b.is_ascii_graphic()).map(|&b| b as char).collect())
                .unwrap_or_default()
        };
        let stat = field("stat:", 7);
        if stat.is_empty() {
            return Err(WireError::Truncated { protocol: P, field: "report stat:" });
        }
        Ok(Report {
            msg_id,
            sub: field("sub:", 3),
            dlvrd: field("dlvrd:", 3),
            submit_date: field("submit date:", 10),
            done_date: field("done date:", 10),
            stat,
            err: field("err:", 3),
        })
    }

    /// The 122-octet form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = b"id:".to_vec();
        out.extend_from_slice(&self.msg_id.0);
        let text = format!(
            " sub:{:<3.3} dlvrd:{:<3.3} submit date:{:<10.10} done date:{:<10.10} stat:{:<7.7} err:{:<3.3} text:",
            self.sub, self.dlvrd, self.submit_date, self.done_date, self.stat, self.err
        );
        out.extend_from_slice(text.as_bytes());
        out.resize(out.len() + 20, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(bytes: &[u8]) -> Pdu {
        match decode_frame(bytes) {
            Ok(Some((Decoded::Pdu(p), n))) if n == bytes.len() => p,
            other => panic!("expected one whole PDU, got {other:?}"),
        }
    }

    #[test]
    fn login_matches_the_documented_layout() {
        let l = Login {
            client_id: "901234".into(),
            authenticator: [9; 16],
            login_mode: 2,
            timestamp: 1_203_083_000,
            version: VERSION,
        };
        let b = encode(&Pdu { sequence: 1, body: Body::Login(l.clone()) }).unwrap();
        // PacketLength 0-4, RequestID 4-8, SequenceID 8-12; ClientID 12-20, AuthenticatorClient
        // 20-36, LoginMode 36, TimeStamp 37-41, ClientVersion 41: 42 octets.
        assert_eq!(b.len(), 42);
        assert_eq!(&b[..12], &[0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(&b[12..20], b"901234\0\0");
        assert_eq!((b[36], &b[37..41], b[41]), (2, &1_203_083_000u32.to_be_bytes()[..], 0x30));
        assert_eq!(one(&b).body, Body::Login(l));
        // Login_Resp: Status 12-16, AuthenticatorServer 16-32, ServerVersion 32.
        let r = encode(&Pdu {
            sequence: 1,
            body: Body::LoginResp(LoginResp { status: 21, authenticator: [1; 16], version: 0x30 }),
        })
        .unwrap();
        assert_eq!((r.len(), &r[4..8], &r[12..16], r[32]), (33, &[0x80, 0, 0, 1][..], &[0, 0, 0, 21][..], 0x30));
    }

    #[test]
    fn submit_with_long_message_tlvs_matches_the_documented_layout() {
        let s = Submit {
            msg_type: 6,
            need_report: 1,
            priority: 1,
            service_id: "TIDINGS".into(),
            fee_type: "00".into(),
            fee_code: "000000".into(),
            fixed_fee: "000000".into(),
            msg_format: 8,
            src_term_id: "10690001".into(),
            dest_term_ids: vec!["13300000001".into()],
            msg_content: vec![5, 0, 3, 0x42, 2, 1, 0x4F, 0x60],
            tlvs: vec![
                Tlv { tag: TAG_TP_UDHI, value: vec![1] },
                Tlv { tag: TAG_PK_TOTAL, value: vec![2] },
                Tlv { tag: TAG_PK_NUMBER, value: vec![1] },
            ],
            ..Submit::default()
        };
        let b = encode(&Pdu { sequence: 7, body: Body::Submit(Box::new(s.clone())) }).unwrap();
        // MsgType 12, NeedReport 13, Priority 14, ServiceID 15-25, FeeType 25-27, FeeCode 27-33,
        // FixedFee 33-39, MsgFormat 39, ValidTime 40-57, AtTime 57-74, SrcTermID 74-95,
        // ChargeTermID 95-116, DestTermIDCount 116, DestTermID 117-138, MsgLength 138,
        // MsgContent 139-147, Reserve 147-155, TLVs 155-170 (three of tag 2, length 2, value 1).
        assert_eq!(b.len(), 170);
        assert_eq!(&b[4..8], &[0, 0, 0, 2]);
        assert_eq!((b[12], b[13], b[14]), (6, 1, 1));
        assert_eq!(&b[15..22], b"TIDINGS");
        assert_eq!(b[39], 8);
        assert_eq!(&b[74..82], b"10690001");
        assert_eq!((b[116], &b[117..128], b[138]), (1, &b"13300000001"[..], 8));
        assert_eq!(&b[139..145], &[5, 0, 3, 0x42, 2, 1]);
        assert_eq!(&b[155..170], &[0, 2, 0, 1, 1, 0, 9, 0, 1, 2, 0, 10, 0, 1, 1]);
        let Body::Submit(back) = one(&b).body else { panic!("a submit") };
        assert_eq!((back.tlv(TAG_PK_TOTAL), back.tlv(TAG_PK_NUMBER)), (Some(&[2][..]), Some(&[1][..])));
        assert_eq!(*back, s);
    }

    #[test]
    fn deliver_with_a_report_matches_the_documented_layout() {
        let id = MsgId([0x59, 0x10, 0x00, 0x12, 0x03, 0x08, 0x30, 0x00, 0x00, 0x01]);
        let report = Report {
            msg_id: id,
            sub: "001".into(),
            dlvrd: "001".into(),
            submit_date: "2612030830".into(),
            done_date: "2612030831".into(),
            stat: "DELIVRD".into(),
            err: "000".into(),
        };
        let content = report.encode();
        assert_eq!(content.len(), 122);
        let d = Deliver {
            is_report: 1,
            recv_time: "20261203083100".into(),
            src_term_id: "13300000001".into(),
            dest_term_id: "10690001".into(),
            msg_content: content,
            ..Deliver::default()
        };
        let b = encode(&Pdu { sequence: 3, body: Body::Deliver(Box::new(d.clone())) }).unwrap();
        // MsgID 12-22, IsReport 22, MsgFormat 23, RecvTime 24-38, SrcTermID 38-59, DestTermID
        // 59-80, MsgLength 80, MsgContent 81-203, Reserve 203-211.
        assert_eq!(b.len(), 211);
        assert_eq!((b[22], &b[24..38], b[80]), (1, &b"20261203083100"[..], 122));
        assert_eq!(&b[81..84], b"id:");
        assert_eq!(&b[84..94], &id.0);
        let Body::Deliver(back) = one(&b).body else { panic!("a deliver") };
        assert_eq!(Report::decode(&back.msg_content), Ok(report));
        assert_eq!(id.to_string(), "59100012030830000001");
        // Another gateway's spelling of the keys.
        let mut other = b"id:".to_vec();
        other.extend_from_slice(&id.0);
        other.extend_from_slice(
            b" sub:001 dlvrd:000 Submit_Date:2612030830 Done_Date:2612030832 Stat:UNDELIV Err:005 Text:",
        );
        let r = Report::decode(&other).unwrap();
        assert_eq!((r.stat.as_str(), r.err.as_str(), r.done_date.as_str()), ("UNDELIV", "005", "2612030832"));
        assert!(Report::decode(b"id:0123456789 sub:001").is_err());
        assert!(Report::decode(b"xx").is_err());
    }

    #[test]
    fn responses_and_bare_commands() {
        let b = encode(&Pdu {
            sequence: 2,
            body: Body::SubmitResp(SubmitResp { msg_id: MsgId([1; 10]), status: status::SYSTEM_BUSY }),
        })
        .unwrap();
        // MsgID 12-22, Status 22-26
        assert_eq!((b.len(), &b[22..26]), (26, &[0, 0, 0, 1][..]));
        for (body, id) in
            [(Body::ActiveTest, 4), (Body::ActiveTestResp, 0x8000_0004), (Body::Exit, 6), (Body::ExitResp, 0x8000_0006)]
        {
            let b = encode(&Pdu { sequence: 9, body: body.clone() }).unwrap();
            assert_eq!((b.len(), u32::from_be_bytes([b[4], b[5], b[6], b[7]])), (12, id));
            assert_eq!(one(&b).body, body);
        }
    }

    #[test]
    fn malformed_frames_are_errors_never_panics() {
        let s = Submit {
            dest_term_ids: vec!["1".into()],
            msg_content: vec![1, 2],
            tlvs: vec![Tlv { tag: 2, value: vec![1] }],
            ..Submit::default()
        };
        let good = encode(&Pdu { sequence: 5, body: Body::Submit(Box::new(s)) }).unwrap();
        for cut in 12..good.len() {
            if cut == good.len() - 5 {
                continue; // ends right before the TLV: a whole PDU without it
            }
            let mut b = good[..cut].to_vec();
            b[..4].copy_from_slice(&(cut as u32).to_be_bytes());
            assert!(matches!(decode_frame(&b), Ok(Some((Decoded::Bad { sequence: 5, .. }, _)))), "cut at {cut}");
        }
        assert!(matches!(decode_frame(&[0, 1, 0, 1]), Err(WireError::Framing { protocol: "smgp", .. })));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_frame(&bytes);
            for id in [LOGIN, LOGIN_RESP, SUBMIT, SUBMIT_RESP, DELIVER, DELIVER_RESP] {
                let mut framed = ((bytes.len() + 12) as u32).to_be_bytes().to_vec();
                framed.extend_from_slice(&id.to_be_bytes());
                framed.extend_from_slice(&[0, 0, 0, 1]);
                framed.extend_from_slice(&bytes);
                let _ = decode_frame(&framed);
            }
            let _ = Report::decode(&bytes);
        }
    }
}
