//! Reads what a deliver_sm carries: an SMSC delivery receipt (esm_class message type 0x04) into a
//! gateway [`Report`], a subscriber's message (message type 0: MO) into a [`Reply`]. Receipts
//! first, as SMSCs differ: some put the outcome only in the receipt text of SMPP v3.4
//! Appendix B (`id:... sub:... dlvrd:... submit date:... done date:... stat:DELIVRD err:000
//! text:...`), some only in the `receipted_message_id` / `message_state` TLVs, most in both. The
//! TLVs win when present because they are typed; the text fills what they leave out.
//!
//! `at_ms` is the arrival time: the receipt's `done date` has no zone and SMSCs disagree on
//! which one they mean, so it is kept in `detail` rather than guessed into an instant.
//!
//! A subscriber's message goes from `source_addr` (the subscriber) to `destination_addr` (the
//! service number), its text decoded by data_coding ([`super::text::decode`]: GSM, UCS-2, GBK,
//! ASCII) from short_message, or from `message_payload` when short_message is empty. It carries
//! no id of the SMSC's own, and its time is the arrival time. A concatenated message arrives as
//! parts, each its own deliver_sm: each part becomes its own reply, its UDH dropped. Holding
//! parts back to join them would hold their acknowledgements too, and an SMSC that sends the next
//! part only once the last is acknowledged would wait for ever; replies are short (退订, TD, Y).

use super::pdu::{
    ShortMessage, TAG_MESSAGE_PAYLOAD, TAG_MESSAGE_STATE, TAG_RECEIPTED_MESSAGE_ID, TAG_USER_MESSAGE_REFERENCE,
};
use crate::sink::gateway::{OutcomeStatus, Reply, Report};

/// esm_class bits 2–5 carry the message type; 0x04 is "SMSC delivery receipt".
const ESM_TYPE_MASK: u8 = 0x3C;
const ESM_TYPE_RECEIPT: u8 = 0x04;

/// What a deliver_sm meant to us.
#[derive(Debug, PartialEq)]
pub enum Receipt {
    /// A final outcome for one SMSC message id.
    Final(Report),
    /// An intermediate state (ENROUTE, ACCEPTD, UNKNOWN): nothing to report yet.
    Intermediate,
    /// A subscriber's message (mobile-originated).
    Mobile(Reply),
    /// Neither: another message type (an SME acknowledgement...), or a receipt without a message
    /// id or a state this reads.
    NotReceipt,
}

/// Reads a deliver_sm body. `now_ms` becomes the report's time.
pub fn parse(sm: &ShortMessage, now_ms: i64) -> Receipt {
    let text = String::from_utf8_lossy(&sm.short_message);
    let tlv_id = sm.tlv(TAG_RECEIPTED_MESSAGE_ID).map(|v| {
        let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
        String::from_utf8_lossy(&v[..end]).into_owned()
    });
    let is_receipt = sm.esm_class & ESM_TYPE_MASK == ESM_TYPE_RECEIPT || tlv_id.is_some();
    if !is_receipt {
        return match sm.esm_class & ESM_TYPE_MASK {
            0 => Receipt::Mobile(mobile(sm, now_ms)),
            _ => Receipt::NotReceipt,
        };
    }
    let Some(gateway_id) = tlv_id.filter(|s| !s.is_empty()).or_else(|| field(&text, "id").map(str::to_string)) else {
        return Receipt::NotReceipt;
    };
    let stat = field(&text, "stat");
    let state = sm.tlv(TAG_MESSAGE_STATE).and_then(|v| v.first().copied());
    let status = match state.and_then(from_message_state).or_else(|| stat.and_then(from_stat)) {
        Some(Some(s)) => s,
        Some(None) => return Receipt::Intermediate,
        None => return Receipt::NotReceipt,
    };
    let mut detail = match (stat, state) {
        (Some(s), _) => format!("stat:{s}"),
        (None, Some(n)) => format!("message_state:{n}"),
        (None, None) => String::new(),
    };
    if let Some(err) = field(&text, "err") {
        detail.push_str(&format!(" err:{err}"));
    }
    if let Some(done) = done_date(&text) {
        detail.push_str(&format!(" done:{done}"));
    }
    let reference =
        sm.tlv(TAG_USER_MESSAGE_REFERENCE).filter(|v| v.len() == 2).map(|r| u16::from_be_bytes([r[0], r[1]]));
    if let Some(r) = reference {
        detail.push_str(&format!(" ref:{r}"));
    }
    // A receipt comes from the handset's number: with the reference, it names an SMS that a
    // crash left in doubt.
    let msisdn = Some(sm.source_addr.clone()).filter(|s| !s.is_empty());
    Receipt::Final(Report {
        action_id: None,
        gateway_id: Some(gateway_id),
        msisdn,
        reference,
        status,
        detail,
        at_ms: now_ms,
    })
}

/// A subscriber's message to the service number.
fn mobile(sm: &ShortMessage, now_ms: i64) -> Reply {
    let text = match sm.tlv(TAG_MESSAGE_PAYLOAD) {
        Some(payload) if sm.short_message.is_empty() => payload,
        _ => &sm.short_message,
    };
    Reply {
        msisdn: sm.source_addr.clone(),
        to: sm.destination_addr.clone(),
        text: super::text::decode(sm.data_coding, sm.esm_class, text),
        gateway: "smpp",
        gateway_id: None,
        at_ms: now_ms,
    }
}

/// `Some(Some(final))`, `Some(None)` for an intermediate state, `None` when unknown.
fn from_message_state(s: u8) -> Option<Option<OutcomeStatus>> {
    match s {
        2 => Some(Some(OutcomeStatus::Delivered)),
        3..=5 | 8 => Some(Some(OutcomeStatus::Failed)), // EXPIRED, DELETED, UNDELIVERABLE, REJECTED
        1 | 6 | 7 => Some(None),                        // ENROUTE, ACCEPTED, UNKNOWN
        _ => None,
    }
}

fn from_stat(s: &str) -> Option<Option<OutcomeStatus>> {
    match s.to_ascii_uppercase().as_str() {
        "DELIVRD" => Some(Some(OutcomeStatus::Delivered)),
        "EXPIRED" | "DELETED" | "UNDELIV" | "REJECTD" => Some(Some(OutcomeStatus::Failed)),
        "ENROUTE" | "ACCEPTD" | "UNKNOWN" => Some(None),
        _ => None,
    }
}

/// The value after `key:` in the receipt text, up to the next space; the key must start the
/// text or follow a space (so `id` does not match inside another word).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = text[from..].find(key) {
        let at = from + i;
        let after = at + key.len();
        let boundary = at == 0 || text.as_bytes()[at - 1] == b' ';
        if boundary && text.as_bytes().get(after) == Some(&b':') {
            let rest = &text[after + 1..];
            return Some(rest.split(' ').next().unwrap_or(""));
        }
        from = after;
    }
    None
}

fn done_date(text: &str) -> Option<&str> {
    let i = text.find("done date:")?;
    text[i + "done date:".len()..].split(' ').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::smpp::pdu::Tlv;

    fn receipt(text: &str, tlvs: Vec<Tlv>) -> ShortMessage {
        ShortMessage { esm_class: 0x04, short_message: text.as_bytes().to_vec(), tlvs, ..ShortMessage::default() }
    }

    const DELIVRD: &str =
        "id:0123456789 sub:001 dlvrd:001 submit date:2611242000 done date:2611242001 stat:DELIVRD err:000 text:hello";

    #[test]
    fn standard_receipt_text_delivered() {
        let Receipt::Final(r) = parse(&receipt(DELIVRD, vec![]), 5) else { panic!("not final") };
        assert_eq!(r.gateway_id.as_deref(), Some("0123456789"));
        assert_eq!(r.status, OutcomeStatus::Delivered);
        assert_eq!(r.detail, "stat:DELIVRD err:000 done:2611242001");
        assert_eq!(r.at_ms, 5);
    }

    #[test]
    fn tlvs_win_and_echo_the_reference() {
        let text = DELIVRD.replace("DELIVRD", "UNDELIV").replace("err:000", "err:001");
        let tlvs = vec![
            Tlv { tag: TAG_RECEIPTED_MESSAGE_ID, value: b"abc\0".to_vec() },
            Tlv { tag: TAG_MESSAGE_STATE, value: vec![5] },
            Tlv { tag: TAG_USER_MESSAGE_REFERENCE, value: vec![0x01, 0x02] },
        ];
        let Receipt::Final(r) = parse(&receipt(&text, tlvs), 0) else { panic!("not final") };
        assert_eq!(r.gateway_id.as_deref(), Some("abc"));
        assert_eq!(r.status, OutcomeStatus::Failed);
        assert_eq!(r.detail, "stat:UNDELIV err:001 done:2611242001 ref:258");
    }

    #[test]
    fn tlv_only_receipt_and_intermediate_states() {
        let tlvs = vec![
            Tlv { tag: TAG_RECEIPTED_MESSAGE_ID, value: b"9".to_vec() },
            Tlv { tag: TAG_MESSAGE_STATE, value: vec![2] },
        ];
        let Receipt::Final(r) = parse(&receipt("", tlvs), 0) else { panic!("not final") };
        assert_eq!((r.gateway_id.as_deref(), r.status), (Some("9"), OutcomeStatus::Delivered));
        assert_eq!(r.detail, "message_state:2");
        assert_eq!(parse(&receipt(&DELIVRD.replace("DELIVRD", "ENROUTE"), vec![]), 0), Receipt::Intermediate);
    }

    #[test]
    fn a_subscribers_message_is_a_reply_and_garbage_is_not_a_receipt() {
        let mo = ShortMessage {
            source_addr: "8613800138000".into(),
            destination_addr: "10658888".into(),
            esm_class: 0,
            data_coding: 8,
            short_message: "退订 谢谢".encode_utf16().flat_map(u16::to_be_bytes).collect(),
            ..ShortMessage::default()
        };
        let Receipt::Mobile(r) = parse(&mo, 7) else { panic!("a subscriber's message") };
        assert_eq!((r.msisdn.as_str(), r.to.as_str(), r.text.as_str()), ("8613800138000", "10658888", "退订 谢谢"));
        assert_eq!((r.gateway, r.gateway_id, r.at_ms), ("smpp", None, 7));
        // The text in message_payload; an SME acknowledgement (message type 0x08) is neither.
        let long = ShortMessage {
            short_message: Vec::new(),
            data_coding: 0,
            tlvs: vec![Tlv { tag: TAG_MESSAGE_PAYLOAD, value: b"stat:DELIVRD".to_vec() }],
            ..mo.clone()
        };
        assert!(matches!(parse(&long, 0), Receipt::Mobile(r) if r.text == "stat:DELIVRD"));
        assert_eq!(parse(&ShortMessage { esm_class: 0x08, ..mo }, 0), Receipt::NotReceipt);
        assert_eq!(parse(&receipt("\u{ff}garbage", vec![]), 0), Receipt::NotReceipt);
        assert_eq!(parse(&receipt("id:1 stat:WHATEVER", vec![]), 0), Receipt::NotReceipt);
        assert_eq!(field("xid:1 id:2", "id"), Some("2"));
    }
}
