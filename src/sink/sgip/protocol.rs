//! SGIP as the link speaks it ([`Sgip`], a [`Protocol`]), and what the SMG sends an SP — a
//! Deliver, a Report, an Unbind — turned into what the link and the listener act on
//! ([`from_smg`]), written once for both connections.

use super::SgipConfig;
use super::pdu::{self, Body, Decoded, Pdu, Report as SgipReport, Sequence, Submit, result};
use crate::contact::Action;
use crate::sink::gateway::{OutcomeStatus, Reply, Report, SourceField};
use crate::sink::link::{Frame, LinkError, LinkSettings, Protocol};
use crate::sink::wire::{WireError, action_parts, decode_text, mmddhhmmss};
use std::sync::atomic::{AtomicU32, Ordering};

/// SGIP 1.2 toward the SMG.
///
/// The counter of a sequence number runs on across connections, as SGIP asks of a node: the
/// link numbers each connection's requests from 1, so a request's counter is the link's number
/// plus the counter the previous connection ended at. Otherwise a connection opened again within
/// the second would repeat the sequence numbers — the ids reports name — of the one before.
pub struct Sgip {
    cfg: SgipConfig,
    settings: LinkSettings,
    /// The counter before this connection's first request (set at each Bind).
    base: AtomicU32,
    /// The counter of the last request sent.
    last: AtomicU32,
}

impl Sgip {
    /// The sequence number of our request `seq` on this connection.
    fn sequence(&self, seq: u32) -> Sequence {
        let counter = self.base.load(Ordering::Acquire).wrapping_add(seq);
        self.last.store(counter, Ordering::Release);
        let now = chrono::Utc::now().with_timezone(&self.cfg.timezone);
        Sequence { node: self.cfg.node_id, time: mmddhhmmss(&now), counter }
    }

    /// The link's number of the request our `sequence` names.
    fn link_seq(&self, sequence: Sequence) -> u32 {
        sequence.counter.wrapping_sub(self.base.load(Ordering::Acquire))
    }

    fn request(&self, seq: u32, body: Body) -> Result<Vec<u8>, WireError> {
        pdu::encode(&Pdu { sequence: self.sequence(seq), body })
    }
}

impl Protocol for Sgip {
    const NAME: &'static str = "sgip";
    const SUBMIT_RESP: &'static str = "SGIP Submit_Resp";
    const SOURCE: SourceField = SourceField { name: "SPNumber", max: 21 };
    type Config = SgipConfig;
    type Part = Submit;
    /// Bind has no proof to check.
    type Login = ();

    fn new(cfg: SgipConfig) -> Result<Sgip, LinkError> {
        cfg.check()?;
        Ok(Sgip { settings: cfg.settings(), cfg, base: AtomicU32::new(0), last: AtomicU32::new(0) })
    }

    fn settings(&self) -> &LinkSettings {
        &self.settings
    }

    fn configured_source(&self) -> &str {
        &self.cfg.sp_number
    }

    fn parts(&self, action: &Action, dest: &str, source: &str) -> Result<Vec<Submit>, String> {
        let cfg = &self.cfg;
        let user_number = cfg.international(dest);
        if user_number.len() > 21 {
            return Err(format!("UserNumber with country code is {} digits, at most 21", user_number.len()));
        }
        let parts = action_parts(action, cfg.coding)?;
        Ok(parts
            .into_iter()
            .map(|part| Submit {
                sp_number: source.to_owned(),
                charge_number: cfg.charge_number.clone(),
                user_numbers: vec![user_number.clone()],
                corp_id: cfg.corp_id.clone(),
                service_type: cfg.service_type.clone(),
                fee_type: cfg.fee_type,
                fee_value: cfg.fee_value.clone(),
                given_value: cfg.given_value.clone(),
                agent_flag: cfg.agent_flag,
                morelateto_mt_flag: cfg.morelateto_mt_flag,
                priority: cfg.priority,
                report_flag: cfg.report_flag,
                tp_udhi: u8::from(part.udhi),
                message_coding: part.coding as u8,
                message_content: part.content,
                ..Submit::default()
            })
            .collect())
    }

    fn login(&self) -> Result<(Vec<u8>, ()), String> {
        // A new connection: its counters follow the last one sent.
        self.base.store(self.last.load(Ordering::Acquire), Ordering::Release);
        let bind = pdu::Bind {
            login_type: pdu::LOGIN_SP_TO_SMG,
            login_name: self.cfg.login_name.clone(),
            login_password: self.cfg.login_password.clone(),
        };
        let bytes = self.request(1, Body::Bind(bind)).map_err(|e| e.to_string())?;
        Ok((bytes, ()))
    }

    fn check_login(&self, _: &(), status: u32, _: &[u8]) -> Result<(), String> {
        match u8::try_from(status) {
            Ok(result::OK) => Ok(()),
            Ok(r) => Err(format!("login refused: {} (result {r})", result::name(r))),
            Err(_) => Err(format!("login refused (result {status})")),
        }
    }

    fn submit(&self, seq: u32, part: &Submit) -> Result<Vec<u8>, String> {
        self.request(seq, Body::Submit(Box::new(part.clone()))).map_err(|e| e.to_string())
    }

    /// SGIP 1.2 has no heartbeat: the link closes an idle connection instead (`idle_close`).
    fn active_test(&self, _: u32) -> Option<Vec<u8>> {
        None
    }

    fn terminate(&self, seq: u32) -> Vec<u8> {
        self.request(seq, Body::Unbind).unwrap_or_default()
    }

    fn decode(&self, buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
        let Some((decoded, used)) = pdu::decode_frame(buf).map_err(|e| e.to_string())? else { return Ok(None) };
        let frame = match decoded {
            Decoded::Bad { command_id, sequence, error } if command_id & 0x8000_0000 != 0 => {
                Frame::BadResp { seq: self.link_seq(sequence), error: error.to_string() }
            }
            Decoded::Pdu(Pdu { sequence, body }) => match body {
                Body::BindResp { result } => {
                    Frame::LoginResp { seq: self.link_seq(sequence), status: result.into(), proof: Vec::new() }
                }
                // The response echoes the submit's sequence number: the part's id.
                Body::SubmitResp { result } => Frame::SubmitResp {
                    seq: self.link_seq(sequence),
                    result: if result == result::OK { Ok(sequence.to_string()) } else { Err(result.into()) },
                },
                Body::UnbindResp => Frame::TerminateResp { seq: self.link_seq(sequence) },
                body => from_smg(&self.cfg, Decoded::Pdu(Pdu { sequence, body })),
            },
            bad => from_smg(&self.cfg, bad),
        };
        Ok(Some((frame, used)))
    }
}

/// A response to the SMG's request `sequence`: our bodies always encode.
pub(super) fn answer(sequence: Sequence, body: Body) -> Vec<u8> {
    pdu::encode(&Pdu { sequence, body }).unwrap_or_default()
}

/// What the SMG sends an SP, over the connection it opens to us (or, if it does, over ours):
///
/// - a Deliver is a subscriber's message, a [`Reply`] named by the Deliver's sequence number;
/// - a Report with State 0 (delivered) or 2 (failed) settles the Submit it names by sequence
///   number; State 1 ("waiting", an intermediate notice: the final report follows) and reports on
///   something other than a Submit (ReportType 1) are answered at once and passed over;
/// - both are answered (Deliver_Resp, Report_Resp) once on disk; one whose body does not parse is
///   answered at once with Result 5 (parameter format error): the same octets would not parse
///   when sent again either;
/// - an Unbind ends the connection.
///
/// Anything else is [`Frame::Ignore`].
pub(super) fn from_smg(cfg: &SgipConfig, decoded: Decoded) -> Frame {
    let at_ms = chrono::Utc::now().timestamp_millis();
    let (sequence, body) = match decoded {
        Decoded::Bad { command_id: pdu::DELIVER, sequence, .. } => {
            return Frame::Answer(answer(sequence, Body::DeliverResp { result: result::PARAMETER_FORMAT }));
        }
        Decoded::Bad { command_id: pdu::REPORT, sequence, .. } => {
            return Frame::Answer(answer(sequence, Body::ReportResp { result: result::PARAMETER_FORMAT }));
        }
        Decoded::Bad { .. } => return Frame::Ignore,
        Decoded::Pdu(Pdu { sequence, body }) => (sequence, body),
    };
    match body {
        Body::Deliver(d) => {
            let reply = Reply {
                msisdn: cfg.national(&d.user_number).to_owned(),
                to: d.sp_number,
                text: decode_text(d.message_coding, d.tp_udhi == 1, &d.message_content),
                gateway: Sgip::NAME,
                gateway_id: Some(sequence.to_string()),
                at_ms,
            };
            Frame::Inbound { item: reply.into(), ack: answer(sequence, Body::DeliverResp { result: result::OK }) }
        }
        Body::Report(r) => {
            let ack = answer(sequence, Body::ReportResp { result: result::OK });
            match report(cfg, r, at_ms) {
                Some(report) => Frame::Inbound { item: report.into(), ack },
                None => Frame::Answer(ack),
            }
        }
        Body::Unbind => Frame::Terminate(answer(sequence, Body::UnbindResp)),
        _ => Frame::Ignore,
    }
}

/// The outcome a Report settles, if it settles one.
fn report(cfg: &SgipConfig, r: SgipReport, at_ms: i64) -> Option<Report> {
    const ON_SUBMIT: u8 = 0;
    const DELIVERED: u8 = 0;
    const WAITING: u8 = 1;
    if r.report_type != ON_SUBMIT || r.state == WAITING {
        return None;
    }
    Some(Report {
        action_id: None,
        gateway_id: Some(r.submit_sequence.to_string()),
        msisdn: Some(cfg.national(&r.user_number).to_owned()).filter(|m| !m.is_empty()),
        reference: None,
        // State 2 is failed; a state the document does not name is no delivery either.
        status: if r.state == DELIVERED { OutcomeStatus::Delivered } else { OutcomeStatus::Failed },
        detail: format!("state:{} err:{}", r.state, r.error_code),
        at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::gateway::Inbound;

    fn sgip() -> Sgip {
        let cfg = SgipConfig { node_id: 3_010_099_999, sp_number: "10655001".into(), ..SgipConfig::default() };
        Sgip::new(cfg).unwrap()
    }

    fn frame(p: &Sgip, pdu: Pdu) -> Frame {
        let bytes = pdu::encode(&pdu).unwrap();
        match p.decode(&bytes) {
            Ok(Some((frame, n))) if n == bytes.len() => frame,
            other => panic!("one frame, got {other:?}"),
        }
    }

    #[test]
    fn a_submit_response_names_the_part_by_the_submits_sequence_number() {
        let p = sgip();
        let (bind, ()) = p.login().unwrap();
        let Ok(Some((Decoded::Pdu(Pdu { sequence, body: Body::Bind(b) }), _))) = pdu::decode_frame(&bind) else {
            panic!("a Bind")
        };
        assert_eq!((sequence.node, sequence.counter, b.login_type), (3_010_099_999, 1, 1));
        let submit = p.submit(7, &Submit::default()).unwrap();
        let Ok(Some((Decoded::Pdu(Pdu { sequence, .. }), _))) = pdu::decode_frame(&submit) else { panic!("a Submit") };
        let resp = Pdu { sequence, body: Body::SubmitResp { result: 0 } };
        match frame(&p, resp) {
            Frame::SubmitResp { seq: 7, result: Ok(id) } => assert_eq!(id, sequence.to_string()),
            other => panic!("{other:?}"),
        }
        match frame(&p, Pdu { sequence, body: Body::SubmitResp { result: 11 } }) {
            Frame::SubmitResp { seq: 7, result: Err(11) } => {}
            other => panic!("{other:?}"),
        }
        // The next connection's counters follow on: its Bind is 8, not 1 again.
        let (bind, ()) = p.login().unwrap();
        let Ok(Some((Decoded::Pdu(Pdu { sequence, .. }), _))) = pdu::decode_frame(&bind) else { panic!("a Bind") };
        assert_eq!(sequence.counter, 8);
        match frame(&p, Pdu { sequence, body: Body::BindResp { result: 1 } }) {
            Frame::LoginResp { seq: 1, status: 1, .. } => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(p.check_login(&(), 1, &[]).unwrap_err(), "login refused: illegal login (result 1)");
    }

    #[test]
    fn user_numbers_carry_the_country_code_on_the_wire_only() {
        let p = sgip();
        let a = Action {
            id: "a-1".into(),
            ts: "2026-12-03T08:30:00+08:00".into(),
            msisdn: "13800138000".into(),
            rule: "r".into(),
            campaign: "c".into(),
            channel: crate::contact::Channel::Sms,
            priority: 50,
            text: Some("您好".into()),
            script: None,
            queue: None,
            sender: None,
            about: None,
            offer: None,
            trigger: crate::contact::TriggerJson {
                kind: "usage".into(),
                id: "e1".into(),
                ts: "2026-12-03T08:30:00+08:00".into(),
            },
            expires: None,
        };
        let parts = p.parts(&a, "13800138000", p.configured_source()).unwrap();
        assert_eq!(parts[0].user_numbers, ["8613800138000"]);
        assert_eq!((parts[0].sp_number.as_str(), parts[0].report_flag, parts[0].message_coding), ("10655001", 1, 8));
        let seq = Sequence { node: 3_000_012_345, time: 1_203_083_000, counter: 9 };
        let report = SgipReport {
            submit_sequence: seq,
            report_type: 0,
            user_number: "8613800138000".into(),
            state: 2,
            error_code: 6,
        };
        let Frame::Inbound { item: Inbound::Report(r), ack } =
            frame(&p, Pdu { sequence: seq, body: Body::Report(report) })
        else {
            panic!("a report")
        };
        assert_eq!(r.gateway_id.as_deref(), Some("3000012345-1203083000-9"));
        assert_eq!(
            (r.msisdn.as_deref(), r.status, r.detail.as_str()),
            (Some("13800138000"), OutcomeStatus::Failed, "state:2 err:6")
        );
        assert_eq!(
            pdu::decode_frame(&ack).unwrap().unwrap().0,
            Decoded::Pdu(Pdu { sequence: seq, body: Body::ReportResp { result: 0 } })
        );
    }

    #[test]
    fn a_waiting_report_is_answered_at_once_and_a_deliver_is_a_reply() {
        let cfg = SgipConfig::default();
        let seq = Sequence { node: 1, time: 2, counter: 3 };
        let waiting = SgipReport { state: 1, user_number: "8613800138000".into(), ..SgipReport::default() };
        let f = from_smg(&cfg, Decoded::Pdu(Pdu { sequence: seq, body: Body::Report(waiting) }));
        assert!(matches!(f, Frame::Answer(_)), "{f:?}");
        let d = pdu::Deliver {
            user_number: "8613800138000".into(),
            sp_number: "10655001".into(),
            message_coding: 15,
            message_content: vec![0xCD, 0xCB, 0xB6, 0xA9],
            ..pdu::Deliver::default()
        };
        let Frame::Inbound { item: Inbound::Reply(r), .. } =
            from_smg(&cfg, Decoded::Pdu(Pdu { sequence: seq, body: Body::Deliver(Box::new(d)) }))
        else {
            panic!("a reply")
        };
        assert_eq!((r.msisdn.as_str(), r.to.as_str(), r.text.as_str()), ("13800138000", "10655001", "退订"));
        assert_eq!((r.gateway, r.gateway_id.as_deref()), ("sgip", Some("1-0000000002-3")));
        let bad = Decoded::Bad {
            command_id: pdu::DELIVER,
            sequence: seq,
            error: WireError::Framing { protocol: "sgip", length: 0 },
        };
        let Frame::Answer(resp) = from_smg(&cfg, bad) else { panic!("answered") };
        assert_eq!(resp[20], result::PARAMETER_FORMAT);
    }
}
