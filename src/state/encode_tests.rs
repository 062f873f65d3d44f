//! A subscriber's state written to a checkpoint and read back: every part, and older formats.
use super::*;
use crate::contact::{Deferred, TriggerRef};
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
    s.push_timer(PendingTimer {
        due: 5 * HOUR,
        rule: 4,
        trigger: TriggerRef { kind: "crm", id: "e1".into(), ts: HOUR },
        armed_at: 17,
        written: crate::contact::Written {
            text: Some("您好".into()),
            queue: Some("store_care_S001".into()),
            about: Some("S001".into()),
            ..Default::default()
        },
        deferred: Some(Deferred { id: "a00ff".into(), expires: Some(6 * HOUR) }),
        kept: Default::default(),
    });
    // A rule's own timer, with what it kept when armed (`armed.PATH`), every kind of value.
    let kept = |path: &str, value| crate::state::kept::Kept { path: path.into(), value };
    use crate::state::kept::KeptVal as K;
    s.push_timer(PendingTimer {
        due: 6 * HOUR,
        rule: 5,
        trigger: TriggerRef { kind: "crm", id: "e2".into(), ts: HOUR },
        armed_at: 18,
        written: crate::contact::Written { text: Some("您的缴费50.00元已到账".into()), ..Default::default() },
        deferred: None,
        kept: vec![
            kept("event.attrs.amount_fen", K::Json(Box::new(serde_json::json!(5000)))),
            kept("event.attrs.kind", K::Str("bill".into())),
            kept("state.balance", K::Int(-250)),
            kept("reachable", K::Bool(true)),
            kept("event.channel", K::Sym(2)),
            kept("event.attrs.note", K::Null),
        ]
        .into_iter()
        .collect(),
    });
    let call = crate::contact::Channel::Call;
    let rec = ContactRec { ts: HOUR, id: 99, rule: 4, campaign: 2, channel: call, transactional: true, flags: 0 };
    s.contacts_mut().record(rec, 30 * 24 * HOUR, Some(1970 * 12));
    s.contacts_mut().record_about(99, "S001");
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
    // Mid-way through a journey, with what it kept.
    s.journeys_mut().push(JourneyInst {
        step: 3,
        started: HOUR,
        since: 2 * HOUR,
        armed_at: 21,
        due: 9 * HOUR,
        kept: vec![("reason".into(), "资费太贵".into())],
    });
    // Derived attributes of every kind, with their snapshot periods.
    for (slot, value) in [DVal::Int(-250), DVal::Bool(true), DVal::Sym(2)].into_iter().enumerate() {
        s.set_derived(Derived::new(slot as u16, value, 24_311), 0);
    }
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

/// Checkpoints written before refusals by reply (format 1), before what an SMS is about
/// (format 2) and before journeys and derived attributes (format 3) still restore: their state
/// simply has none.
#[test]
fn a_state_from_a_format_1_2_or_3_checkpoint_reads_with_no_refusals_abouts_or_journeys() {
    let rd = RefData::default();
    let mut s = SubState::default();
    s.begin(HOUR, Some(500));
    s.set_country(Some("JP".into()));
    let mut e = crate::codec::Enc::default();
    s.encode(&mut e, &rd);
    // The rare part ends with the contact history (no contacts, no streaks, no abouts), the
    // country, no unknown cell, no refusals and no journeys.
    let mut tail = crate::codec::Enc::default();
    [0, 0, 0].into_iter().for_each(|n| tail.u32(n));
    tail.opt_str(Some("JP"));
    tail.opt_str(None);
    tail.u32(0);
    tail.u32(0);
    let start = e.buf.len() - tail.buf.len();
    assert_eq!(&e.buf[start..], &tail.buf[..], "the layout this test cuts");
    // Format 3 had no derived count (just before the rare part's flag, the last byte of a state
    // without one) and no journeys count; format 2 no abouts count either; format 1 no refusal
    // count.
    let mut plain = SubState::default();
    plain.begin(HOUR, Some(500));
    let mut e0 = crate::codec::Enc::default();
    plain.encode(&mut e0, &rd);
    let flag = e0.buf.len() - 1;
    assert_eq!(&e0.buf[flag - 4..flag], &[0, 0, 0, 0], "the derived count this test cuts");
    let v3 = &[&e.buf[..flag - 4], &e.buf[flag..e.buf.len() - 4]].concat()[..];
    let start = start - 4;
    let v2: Vec<u8> = [&v3[..start + 8], &v3[start + 12..]].concat();
    let v1 = &v2[..v2.len() - 4];
    for (version, bytes) in [(3, v3), (2, &v2[..]), (1, v1)] {
        let mut d = crate::codec::Dec::new(bytes).with_version(version);
        let back = SubState::decode(&mut d, &rd).expect("an old state decodes");
        assert!(d.done(), "every byte of format {version} read");
        assert_eq!(format!("{back:?}"), format!("{s:?}"));
        assert!(SubState::decode(&mut crate::codec::Dec::new(bytes), &rd).is_err(), "read as format 4: cut short");
    }
}

/// The rare part and a pending timer are in every state that has them: what issue 19 added
/// (refusals, what an SMS asks about, a call's queue) is boxed or boxed strings, and journeys
/// one boxed list (8 bytes), so neither grew past these sizes (64-bit targets). A timer's kept
/// values (`armed.PATH`) are one boxed list too: 8 bytes more a timer (168 before).
#[test]
#[cfg(target_pointer_width = "64")]
fn the_rare_part_and_a_timer_stay_small() {
    assert!(std::mem::size_of::<super::Rare>() <= 152, "Rare: {}", std::mem::size_of::<super::Rare>());
    assert!(std::mem::size_of::<PendingTimer>() <= 176, "PendingTimer: {}", std::mem::size_of::<PendingTimer>());
}
