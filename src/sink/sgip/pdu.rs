//! The SGIP 1.2 wire format (SMS Gateway Interface Protocol, China Unicom's SMG): Bind and Unbind,
//! Submit, and the Deliver (a subscriber's message) and Report (a submit's status) that the SMG
//! sends over a connection it opens to the SP, each with its response. Every PDU carries the
//! 12-octet [`Sequence`] (node id, time, counter) of its sender; a Report names the Submit it
//! reports on by that Submit's sequence, which is how an SP matches the two.
//!
//! No registry has an independent SGIP implementation: the tests check these layouts against the
//! protocol document's field tables, written out with their offsets. Decoding never panics.

use crate::sink::wire::{Reader, WireError, Writer, frame_len};
use std::fmt;

pub const BIND: u32 = 0x0000_0001;
pub const BIND_RESP: u32 = 0x8000_0001;
pub const UNBIND: u32 = 0x0000_0002;
pub const UNBIND_RESP: u32 = 0x8000_0002;
pub const SUBMIT: u32 = 0x0000_0003;
pub const SUBMIT_RESP: u32 = 0x8000_0003;
pub const DELIVER: u32 = 0x0000_0004;
pub const DELIVER_RESP: u32 = 0x8000_0004;
pub const REPORT: u32 = 0x0000_0005;
pub const REPORT_RESP: u32 = 0x8000_0005;

/// Bind Login Type: the SP connects to the SMG (1), the SMG to the SP (2).
pub const LOGIN_SP_TO_SMG: u8 = 1;
pub const LOGIN_SMG_TO_SP: u8 = 2;

const HEADER_LEN: usize = 20;
const P: &str = "sgip";

/// Result values (Bind_Resp, Submit_Resp, Deliver_Resp, Report_Resp, Report ErrorCode).
pub mod result {
    pub const OK: u8 = 0;
    /// 非法登录: a wrong login name or password.
    pub const ILLEGAL_LOGIN: u8 = 1;
    /// 重复登录: a second Bind on a connection.
    pub const REPEATED_LOGIN: u8 = 2;
    /// 登录类型错: a Login Type the receiver does not take.
    pub const WRONG_LOGIN_TYPE: u8 = 4;
    /// 参数格式错: what an SP answers a Deliver or Report it cannot read.
    pub const PARAMETER_FORMAT: u8 = 5;
    /// 节点忙: the SMG over its capacity — slow down and send again.
    pub const NODE_BUSY: u8 = 11;
    /// 短信中心队列满: the SMSC behind the SMG is full — likewise.
    pub const SMSC_QUEUE_FULL: u8 = 33;

    /// The meaning of a result, for reasons and logs.
    pub fn name(r: u8) -> &'static str {
        match r {
            0 => "ok",
            1 => "illegal login",
            2 => "repeated login",
            3 => "too many connections",
            4 => "wrong login type",
            5 => "parameter format error",
            6 => "illegal mobile number",
            7 => "message id error",
            8 => "message length error",
            9 => "illegal sequence number",
            10 => "illegal GNS operation",
            11 => "node busy",
            21 => "destination unreachable",
            22 => "routing error",
            23 => "no route",
            24 => "invalid charge number",
            25 => "user cannot communicate",
            26 => "handset memory full",
            27 => "handset does not support SMS",
            28 => "handset error receiving SMS",
            29 => "unknown user",
            30 => "function not provided",
            31 => "illegal device",
            32 => "system failure",
            33 => "SMSC queue full",
            _ => "other error",
        }
    }
}

/// The sequence number every PDU carries: the sender's node id, its time as MMDDHHMMSS, and a
/// counter. Shown as the three numbers joined by `-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Sequence {
    pub node: u32,
    pub time: u32,
    pub counter: u32,
}

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}-{:010}-{}", self.node, self.time, self.counter)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Bind {
    pub login_type: u8,
    pub login_name: String,
    pub login_password: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Submit {
    pub sp_number: String,
    pub charge_number: String,
    pub user_numbers: Vec<String>,
    pub corp_id: String,
    pub service_type: String,
    pub fee_type: u8,
    pub fee_value: String,
    pub given_value: String,
    pub agent_flag: u8,
    pub morelateto_mt_flag: u8,
    pub priority: u8,
    pub expire_time: String,
    pub schedule_time: String,
    /// 0 a report only on failure, 1 always, 2 never.
    pub report_flag: u8,
    pub tp_pid: u8,
    pub tp_udhi: u8,
    pub message_coding: u8,
    pub message_type: u8,
    pub message_content: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Deliver {
    pub user_number: String,
    pub sp_number: String,
    pub tp_pid: u8,
    pub tp_udhi: u8,
    pub message_coding: u8,
    pub message_content: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Report {
    /// The Submit this reports on, by its sequence number.
    pub submit_sequence: Sequence,
    /// 0: a report on a Submit.
    pub report_type: u8,
    pub user_number: String,
    /// 0 delivered, 1 waiting, 2 failed.
    pub state: u8,
    pub error_code: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Bind(Bind),
    BindResp { result: u8 },
    Unbind,
    UnbindResp,
    Submit(Box<Submit>),
    SubmitResp { result: u8 },
    Deliver(Box<Deliver>),
    DeliverResp { result: u8 },
    Report(Report),
    ReportResp { result: u8 },
    Other(u32),
}

impl Body {
    pub fn command_id(&self) -> u32 {
        match self {
            Body::Bind(_) => BIND,
            Body::BindResp { .. } => BIND_RESP,
            Body::Unbind => UNBIND,
            Body::UnbindResp => UNBIND_RESP,
            Body::Submit(_) => SUBMIT,
            Body::SubmitResp { .. } => SUBMIT_RESP,
            Body::Deliver(_) => DELIVER,
            Body::DeliverResp { .. } => DELIVER_RESP,
            Body::Report(_) => REPORT,
            Body::ReportResp { .. } => REPORT_RESP,
            Body::Other(id) => *id,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub sequence: Sequence,
    pub body: Body,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Pdu(Pdu),
    /// The frame was whole but its body did not parse: framing holds.
    Bad {
        command_id: u32,
        sequence: Sequence,
        error: WireError,
    },
}

/// Takes one frame from the front of `buf`: `Ok(None)` until a whole frame is there. `Err`
/// means framing is lost (drop the connection).
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Decoded, usize)>, WireError> {
    let Some(len) = frame_len(P, buf, HEADER_LEN)? else { return Ok(None) };
    let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let command_id = word(4);
    let sequence = Sequence { node: word(8), time: word(12), counter: word(16) };
    let decoded = match decode_body(command_id, &buf[HEADER_LEN..len]) {
        Ok(body) => Decoded::Pdu(Pdu { sequence, body }),
        Err(error) => Decoded::Bad { command_id, sequence, error },
    };
    Ok(Some((decoded, len)))
}

fn decode_body(command_id: u32, body: &[u8]) -> Result<Body, WireError> {
    let r = &mut Reader::new(P, body);
    let result = |r: &mut Reader| -> Result<u8, WireError> {
        let v = r.u8("Result")?;
        r.take(8, "Reserve")?;
        Ok(v)
    };
    let body = match command_id {
        BIND => Body::Bind(Bind {
            login_type: r.u8("Login Type")?,
            login_name: r.str(16, "Login Name")?,
            login_password: r.str(16, "Login Password")?,
        }),
        BIND_RESP => Body::BindResp { result: result(r)? },
        UNBIND => Body::Unbind,
        UNBIND_RESP => Body::UnbindResp,
        SUBMIT => {
            let mut s = Submit {
                sp_number: r.str(21, "SPNumber")?,
                charge_number: r.str(21, "ChargeNumber")?,
                ..Submit::default()
            };
            let n = r.u8("UserCount")?;
            s.user_numbers = (0..n).map(|_| r.str(21, "UserNumber")).collect::<Result<_, _>>()?;
            s.corp_id = r.str(5, "CorpId")?;
            s.service_type = r.str(10, "ServiceType")?;
            s.fee_type = r.u8("FeeType")?;
            s.fee_value = r.str(6, "FeeValue")?;
            s.given_value = r.str(6, "GivenValue")?;
            s.agent_flag = r.u8("AgentFlag")?;
            s.morelateto_mt_flag = r.u8("MorelatetoMTFlag")?;
            s.priority = r.u8("Priority")?;
            s.expire_time = r.str(16, "ExpireTime")?;
            s.schedule_time = r.str(16, "ScheduleTime")?;
            s.report_flag = r.u8("ReportFlag")?;
            s.tp_pid = r.u8("TP_pid")?;
            s.tp_udhi = r.u8("TP_udhi")?;
            s.message_coding = r.u8("MessageCoding")?;
            s.message_type = r.u8("MessageType")?;
            s.message_content = r.octets32("MessageContent")?;
            Body::Submit(Box::new(s))
        }
        SUBMIT_RESP => Body::SubmitResp { result: result(r)? },
        DELIVER => Body::Deliver(Box::new(Deliver {
            user_number: r.str(21, "UserNumber")?,
            sp_number: r.str(21, "SPNumber")?,
            tp_pid: r.u8("TP_pid")?,
            tp_udhi: r.u8("TP_udhi")?,
            message_coding: r.u8("MessageCoding")?,
            message_content: r.octets32("MessageContent")?,
        })),
        DELIVER_RESP => Body::DeliverResp { result: result(r)? },
        REPORT => Body::Report(Report {
            submit_sequence: Sequence {
                node: r.u32("SubmitSequenceNumber")?,
                time: r.u32("SubmitSequenceNumber")?,
                counter: r.u32("SubmitSequenceNumber")?,
            },
            report_type: r.u8("ReportType")?,
            user_number: r.str(21, "UserNumber")?,
            state: r.u8("State")?,
            error_code: r.u8("ErrorCode")?,
        }),
        REPORT_RESP => Body::ReportResp { result: result(r)? },
        other => return Ok(Body::Other(other)),
    };
    // The Reserve (8 octets) that ends Bind, Submit, Deliver and Report.
    if matches!(command_id, BIND | SUBMIT | DELIVER | REPORT) {
        r.take(8, "Reserve")?;
    }
    Ok(body)
}

pub fn encode(pdu: &Pdu) -> Result<Vec<u8>, WireError> {
    let w = &mut Writer::new(P);
    w.zeros(HEADER_LEN);
    match &pdu.body {
        Body::Bind(b) => {
            w.u8(b.login_type);
            w.str(&b.login_name, 16, "Login Name")?;
            w.str(&b.login_password, 16, "Login Password")?;
        }
        Body::Submit(s) => {
            w.str(&s.sp_number, 21, "SPNumber")?;
            w.str(&s.charge_number, 21, "ChargeNumber")?;
            w.check(s.user_numbers.len(), 100, "UserCount")?;
            w.u8(s.user_numbers.len() as u8);
            for u in &s.user_numbers {
                w.str(u, 21, "UserNumber")?;
            }
            w.str(&s.corp_id, 5, "CorpId")?;
            w.str(&s.service_type, 10, "ServiceType")?;
            w.u8(s.fee_type);
            w.str(&s.fee_value, 6, "FeeValue")?;
            w.str(&s.given_value, 6, "GivenValue")?;
            for b in [s.agent_flag, s.morelateto_mt_flag, s.priority] {
                w.u8(b);
            }
            w.str(&s.expire_time, 16, "ExpireTime")?;
            w.str(&s.schedule_time, 16, "ScheduleTime")?;
            for b in [s.report_flag, s.tp_pid, s.tp_udhi, s.message_coding, s.message_type] {
                w.u8(b);
            }
            w.octets32(&s.message_content, "MessageContent")?;
        }
        Body::Deliver(d) => {
            w.str(&d.user_number, 21, "UserNumber")?;
            w.str(&d.sp_number, 21, "SPNumber")?;
            for b in [d.tp_pid, d.tp_udhi, d.message_coding] {
                w.u8(b);
            }
            w.octets32(&d.message_content, "MessageContent")?;
        }
        Body::Report(r) => {
            for v in [r.submit_sequence.node, r.submit_sequence.time, r.submit_sequence.counter] {
                w.u32(v);
            }
            w.u8(r.report_type);
            w.str(&r.user_number, 21, "UserNumber")?;
            w.u8(r.state);
            w.u8(r.error_code);
        }
        Body::BindResp { result }
        | Body::SubmitResp { result }
        | Body::DeliverResp { result }
        | Body::ReportResp { result } => w.u8(*result),
        Body::Unbind | Body::UnbindResp | Body::Other(_) => {}
    }
    if !matches!(pdu.body, Body::Unbind | Body::UnbindResp | Body::Other(_)) {
        w.zeros(8); // Reserve
    }
    let len = w.buf.len() as u32;
    w.buf[..4].copy_from_slice(&len.to_be_bytes());
    w.buf[4..8].copy_from_slice(&pdu.body.command_id().to_be_bytes());
    let s = pdu.sequence;
    for (i, v) in [s.node, s.time, s.counter].into_iter().enumerate() {
        w.buf[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_be_bytes());
    }
    Ok(std::mem::take(&mut w.buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEQ: Sequence = Sequence { node: 3_000_012_345, time: 1_203_083_000, counter: 7 };

    fn one(bytes: &[u8]) -> Pdu {
        match decode_frame(bytes) {
            Ok(Some((Decoded::Pdu(p), n))) if n == bytes.len() => p,
            other => panic!("expected one whole PDU, got {other:?}"),
        }
    }

    #[test]
    fn header_and_bind_match_the_documented_layout() {
        let bind = Bind { login_type: LOGIN_SP_TO_SMG, login_name: "901234".into(), login_password: "s3cret".into() };
        let b = encode(&Pdu { sequence: SEQ, body: Body::Bind(bind.clone()) }).unwrap();
        // Message Length 0-4, Command ID 4-8, Sequence Number 8-20 (node 8-12, time 12-16,
        // counter 16-20); Login Type 20, Login Name 21-37, Login Password 37-53, Reserve 53-61.
        assert_eq!(b.len(), 61);
        assert_eq!(&b[..8], &[0, 0, 0, 61, 0, 0, 0, 1]);
        assert_eq!(&b[8..20], &[0xB2, 0xD0, 0x8E, 0x39, 0x47, 0xB5, 0x96, 0xF8, 0x00, 0x00, 0x00, 0x07]);
        assert_eq!((b[20], &b[21..27], &b[37..43]), (1, &b"901234"[..], &b"s3cret"[..]));
        assert_eq!(one(&b), Pdu { sequence: SEQ, body: Body::Bind(bind) });
        // Bind_Resp: Result 20, Reserve 21-29.
        let r = encode(&Pdu { sequence: SEQ, body: Body::BindResp { result: 1 } }).unwrap();
        assert_eq!((r.len(), &r[4..8], r[20]), (29, &[0x80, 0, 0, 1][..], 1));
        assert_eq!(SEQ.to_string(), "3000012345-1203083000-7");
    }

    #[test]
    fn submit_matches_the_documented_layout() {
        let s = Submit {
            sp_number: "10655001".into(),
            user_numbers: vec!["8613000000001".into()],
            corp_id: "99999".into(),
            service_type: "TIDINGS".into(),
            report_flag: 1,
            tp_udhi: 1,
            message_coding: 8,
            message_content: vec![5, 0, 3, 1, 2, 1, 0x4F, 0x60],
            ..Submit::default()
        };
        let b = encode(&Pdu { sequence: SEQ, body: Body::Submit(Box::new(s.clone())) }).unwrap();
        // SPNumber 20-41, ChargeNumber 41-62, UserCount 62, UserNumber 63-84, CorpId 84-89,
        // ServiceType 89-99, FeeType 99, FeeValue 100-106, GivenValue 106-112, AgentFlag 112,
        // MorelatetoMTFlag 113, Priority 114, ExpireTime 115-131, ScheduleTime 131-147,
        // ReportFlag 147, TP_pid 148, TP_udhi 149, MessageCoding 150, MessageType 151,
        // MessageLength 152-156, MessageContent 156-164, Reserve 164-172.
        assert_eq!(b.len(), 172);
        assert_eq!(&b[20..28], b"10655001");
        assert_eq!((b[62], &b[63..76]), (1, &b"8613000000001"[..]));
        assert_eq!(&b[84..89], b"99999");
        assert_eq!((b[147], b[149], b[150]), (1, 1, 8));
        assert_eq!(&b[152..156], &[0, 0, 0, 8]);
        assert_eq!(&b[156..162], &[5, 0, 3, 1, 2, 1]);
        assert_eq!(one(&b).body, Body::Submit(Box::new(s)));
    }

    #[test]
    fn deliver_and_report_match_the_documented_layout() {
        let d = Deliver {
            user_number: "8613000000001".into(),
            sp_number: "10655001".into(),
            message_coding: 15,
            message_content: vec![0xCD, 0xCB, 0xB6, 0xA9],
            ..Deliver::default()
        };
        let b = encode(&Pdu { sequence: SEQ, body: Body::Deliver(Box::new(d.clone())) }).unwrap();
        // UserNumber 20-41, SPNumber 41-62, TP_pid 62, TP_udhi 63, MessageCoding 64,
        // MessageLength 65-69, MessageContent 69-73, Reserve 73-81.
        assert_eq!((b.len(), b[64], &b[65..69]), (81, 15, &[0, 0, 0, 4][..]));
        assert_eq!(crate::sink::wire::decode_text(b[64], b[63] == 1, &b[69..73]), "退订");
        assert_eq!(one(&b).body, Body::Deliver(Box::new(d)));
        let r = Report {
            submit_sequence: SEQ,
            report_type: 0,
            user_number: "8613000000001".into(),
            state: 2,
            error_code: 6,
        };
        let b = encode(&Pdu { sequence: Sequence { node: 1, time: 2, counter: 3 }, body: Body::Report(r.clone()) })
            .unwrap();
        // SubmitSequenceNumber 20-32, ReportType 32, UserNumber 33-54, State 54, ErrorCode 55, Reserve 56-64.
        assert_eq!(b.len(), 64);
        assert_eq!(&b[20..24], &SEQ.node.to_be_bytes());
        assert_eq!(&b[28..32], &7u32.to_be_bytes());
        assert_eq!((b[32], &b[33..46], b[54], b[55]), (0, &b"8613000000001"[..], 2, 6));
        assert_eq!(one(&b).body, Body::Report(r));
        let empty = encode(&Pdu { sequence: SEQ, body: Body::Unbind }).unwrap();
        assert_eq!(empty.len(), 20);
    }

    #[test]
    fn malformed_frames_are_errors_never_panics() {
        let d = Deliver { message_content: vec![1, 2, 3], ..Deliver::default() };
        let good = encode(&Pdu { sequence: SEQ, body: Body::Deliver(Box::new(d)) }).unwrap();
        for cut in 20..good.len() {
            let mut b = good[..cut].to_vec();
            b[..4].copy_from_slice(&(cut as u32).to_be_bytes());
            assert!(matches!(decode_frame(&b), Ok(Some((Decoded::Bad { sequence: SEQ, .. }, _)))), "cut at {cut}");
        }
        assert!(matches!(decode_frame(&[0, 0, 0, 19]), Err(WireError::Framing { protocol: "sgip", length: 19 })));
        assert_eq!(decode_frame(&[0, 0, 0, 20, 0, 0]), Ok(None));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_frame(&bytes);
            for id in [BIND, BIND_RESP, SUBMIT, DELIVER, REPORT, REPORT_RESP] {
                let mut framed = ((bytes.len() + 20) as u32).to_be_bytes().to_vec();
                framed.extend_from_slice(&id.to_be_bytes());
                framed.extend_from_slice(&[0; 12]);
                framed.extend_from_slice(&bytes);
                let _ = decode_frame(&framed);
            }
        }
    }
}
