//! A subscriber's state written to a checkpoint and read back: every part, and older formats.
use super::*;
use crate::time::HOUR;

#[test]
fn a_state_with_every_part_in_use_reads_back_as_it_was_written() {
    let mut rd = RefData::default();
    rd.add_cell("a", "", 0.0, 0.0, &["station".to_string()]);
    rd.add_cell("b", "", 0.0, 0.0, &[]);
    let mut s = SubState::default();
    s.begin(HOUR, Some(500));
    s.move_to(Some("a"), HOUR, &rd);
    s.begin(2 * HOUR, Some(300));
    s.move_to(Some("b"), 2 * HOUR, &rd);
    s.move_to(Some("nowhere-known"), 3 * HOUR, &rd);
    s.agg_add(0, HOUR, 3, HOUR, 24 * HOUR);
    s.agg_add(2, 2 * HOUR, -7, HOUR, 24 * HOUR);
    s.seq_step(1, &[true, false, false], HOUR, HOUR);
    s.record_ivr(HOUR, IvrStep::Agent, Some("1-3".into()));
    s.record_topup(HOUR, 5000);
    s.record_usage(2 * HOUR);
    s.set_country(Some("JP".into()));
    s.timers_mut().push(PendingTimer {
        due: 5 * HOUR,
        rule: 4,
        trigger: TriggerRef { kind: "crm", id: "e1".into(), ts: HOUR },
        armed_at: 17,
        text: Some("您好".into()),
        script: None,
        deferred: Some(Deferred { id: "a00ff".into(), expires: Some(6 * HOUR) }),
    });
    let call = crate::contact::Channel::Call;
    let rec = ContactRec { ts: HOUR, id: 99, rule: 4, campaign: 2, channel: call, transactional: true, flags: 0 };
    s.contacts_mut().record(rec, 30 * 24 * HOUR, Some(1970 * 12));
    // What came of a contact (for `suppress_after`) survives the checkpoint.
    assert!(s.contacts_mut().mark(99, ContactRec::REFUSED | ContactRec::ANSWERED));
    assert!(s.add_optout(crate::contact::OptOut {
        ts: 2 * HOUR,
        scope: crate::contact::OptOutScope::Campaign,
        campaign: Some("ip_12593".into()),
        keyword: "退订".into(),
        to: "10658888".into(),
        reply: "r9".into(),
    }));
    let mut e = crate::codec::Enc::default();
    s.encode(&mut e, &rd);
    let mut d = crate::codec::Dec::new(&e.buf);
    let back = SubState::decode(&mut d, &rd).expect("decodes");
    assert!(d.done(), "every byte read");
    assert_eq!(format!("{back:?}"), format!("{s:?}"));
    // Every cut-short form is an error, never a panic.
    for n in 0..e.buf.len() {
        assert!(SubState::decode(&mut crate::codec::Dec::new(&e.buf[..n]), &rd).is_err(), "cut at {n}");
    }
}

/// A checkpoint written before refusals by reply (format 1) still restores: its rare part
/// simply has none.
#[test]
fn a_state_from_a_format_1_checkpoint_reads_with_no_refusals() {
    let rd = RefData::default();
    let mut s = SubState::default();
    s.begin(HOUR, Some(500));
    s.set_country(Some("JP".into()));
    let mut e = crate::codec::Enc::default();
    s.encode(&mut e, &rd);
    // Format 1 ended the rare part after the unknown cell: no refusal count.
    let v1 = &e.buf[..e.buf.len() - 4];
    let mut d = crate::codec::Dec::new(v1).with_version(1);
    let back = SubState::decode(&mut d, &rd).expect("a format-1 state decodes");
    assert!(d.done(), "every byte read");
    assert_eq!(format!("{back:?}"), format!("{s:?}"));
    assert!(SubState::decode(&mut crate::codec::Dec::new(v1), &rd).is_err(), "read as format 2 it is cut short");
}
