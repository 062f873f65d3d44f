//! Event time that a single record cannot hijack.
//!
//! Event time is the latest event time seen: that is what lets a replay decide exactly what live
//! processing decided. It also means that one record stamped `9999-12-31` — an upstream clock
//! error at a mediation system — would move it there by itself, and every daily rule would
//! tick for every day in between, for every subscriber, at once: a mass-SMS incident, and an
//! engine lost in work it should never do.
//!
//! The guard stands between the input and the clock. An event more than `max_ahead` ahead of
//! the clock is a *suspect*: held, not decided. What comes next settles it:
//!
//! - an event that goes back (more than `max_ahead` behind a suspect) refutes that suspect: it
//!   becomes a dead letter (`future`, the event kept whole). One bad record in a stream is
//!   refuted by the very next ordinary event, and decides nothing;
//! - `quorum` distinct events (by id: a duplicated record counts once) that agree, none of them
//!   more than `max_ahead` behind another, are believed together and decided in input order: a
//!   stream resumed after an outage, or a sparse history (one subscriber's records, weeks
//!   apart), moves on as it always did;
//! - at the end of input, suspects short of the quorum are refused; when there never was a
//!   clock (the whole input was a handful of events) what is held is believed.
//!
//! Before the first event there is no clock, so the first events are suspects too: an absurd
//! first record is refuted by the ones after it and cannot set the clock. A live run starts
//! its clock at the host's clock, so its first events are not held.
//!
//! Only the events and their order decide here, never the host's clock: a replay of the same
//! input holds, believes and refuses exactly what the live run did. (A live source's own check
//! against the host's clock is the decoder's; its refusals are dead letters a replay is given.)

use crate::event::{DeadLetter, DeadReason, Event};
use crate::time::{Millis, format_span, format_ts};
use std::collections::VecDeque;

/// Most suspects held at once (a far-future record repeated over and over counts once toward the
/// quorum): past it, what is held is refused.
const HOLD_MAX: usize = 4096;

/// An event taken from the input, and whether a caller waits on it (IVR).
pub type Taken = (Event, bool);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// How far ahead of event time one event may be and still be believed on its own.
    pub max_ahead: i64,
    /// Distinct events that must agree before event time moves on past `max_ahead`.
    pub quorum: usize,
}

impl GuardConfig {
    /// No bound: every event is believed (rule tests, and callers that check their input).
    pub const OFF: GuardConfig = GuardConfig { max_ahead: i64::MAX, quorum: 1 };
}

pub struct Guard {
    cfg: GuardConfig,
    /// Where the clock stands before the first event, when something else says (a live run:
    /// the host's clock at start).
    start: Millis,
    held: Vec<Taken>,
    offset: chrono::FixedOffset,
}

impl Guard {
    pub fn new(cfg: GuardConfig, start: Millis, offset: chrono::FixedOffset) -> Guard {
        Guard { cfg, start, held: Vec::new(), offset }
    }

    fn reference(&self, clock: Millis) -> Millis {
        clock.max(self.start)
    }

    fn within(&self, clock: Millis, ts: Millis) -> bool {
        self.cfg.max_ahead == i64::MAX
            || (self.reference(clock) != Millis::MIN && ts <= self.reference(clock).saturating_add(self.cfg.max_ahead))
    }

    /// Whether `ev` goes straight through (the hot path: nothing held, and within the bound).
    #[inline]
    pub fn passes(&self, clock: Millis, ev: &Event) -> bool {
        self.held.is_empty() && self.within(clock, ev.ts)
    }

    /// Whether suspects are held (a checkpoint now would count them as done).
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes one event that did not [`pass`](Self::passes): what may be decided now goes to
    /// `ready` (in input order), what is refused to `refused`.
    pub fn admit(&mut self, clock: Millis, taken: Taken, ready: &mut VecDeque<Taken>, refused: &mut Vec<DeadLetter>) {
        let at = taken.0.ts;
        if self.reference(clock) == Millis::MIN {
            // No clock yet: nobody can say who went back from whom. The first group of
            // `quorum` distinct events within `max_ahead` of each other sets it.
            self.held.push(taken);
            if self.agreeing(at) >= self.cfg.quorum {
                self.release_around(at, ready, refused);
            } else if self.held.len() >= HOLD_MAX {
                self.settle(ready, refused);
            }
            return;
        }
        // Suspects far ahead of this event: it went back from them.
        if self.held.iter().any(|(h, _)| self.back_from(h.ts, at)) {
            let why = format!("a later event went back to {}", self.ts(at));
            let (keep, gone): (Vec<Taken>, Vec<Taken>) =
                std::mem::take(&mut self.held).into_iter().partition(|(h, _)| !self.back_from(h.ts, at));
            self.held = keep;
            for (h, _) in gone {
                refused.push(self.dead(&h, clock, &why));
            }
        }
        if self.within(clock, at) {
            // An ordinary event, and what is still held agrees with it.
            ready.extend(self.held.drain(..));
            ready.push_back(taken);
            return;
        }
        self.held.push(taken);
        if self.distinct() >= self.cfg.quorum {
            ready.extend(self.held.drain(..));
        } else if self.held.len() >= HOLD_MAX {
            self.refuse_all(clock, "the same event over and over is no confirmation", refused);
        }
    }

    /// The end of input: suspects short of the quorum are refused; when there never was a
    /// clock (a handful of events in all) what is held is believed.
    pub fn finish(&mut self, clock: Millis, ready: &mut VecDeque<Taken>, refused: &mut Vec<DeadLetter>) {
        if self.reference(clock) == Millis::MIN {
            self.settle(ready, refused);
        } else {
            self.refuse_all(clock, "the input ended before other events confirmed it", refused);
        }
    }

    /// The engine stops: suspects are refused (kept whole, so nothing is lost), and a
    /// checkpoint taken now does not count events that were never decided.
    pub fn stop(&mut self, clock: Millis, refused: &mut Vec<DeadLetter>) {
        self.refuse_all(clock, "the engine stopped before other events confirmed it", refused);
    }

    /// `later` lies more than `max_ahead` before `suspect`.
    fn back_from(&self, suspect: Millis, later: Millis) -> bool {
        suspect.saturating_sub(later) > self.cfg.max_ahead
    }

    /// Without a clock: the group that most distinct events agree with sets it (the first such).
    fn settle(&mut self, ready: &mut VecDeque<Taken>, refused: &mut Vec<DeadLetter>) {
        let mut best = (0, Millis::MIN);
        for (e, _) in &self.held {
            let n = self.agreeing(e.ts);
            if n > best.0 {
                best = (n, e.ts);
            }
        }
        if best.0 > 0 {
            self.release_around(best.1, ready, refused);
        }
    }

    /// Distinct event ids among the held events within `max_ahead` of `at` (up to the quorum).
    fn agreeing(&self, at: Millis) -> usize {
        let span = self.cfg.max_ahead as u64;
        let mut seen: Vec<&str> = Vec::with_capacity(self.cfg.quorum);
        for (e, _) in self.held.iter().filter(|(e, _)| e.ts.abs_diff(at) <= span) {
            if !seen.contains(&e.id.as_str()) {
                seen.push(e.id.as_str());
                if seen.len() >= self.cfg.quorum {
                    break;
                }
            }
        }
        seen.len()
    }

    /// Believes the group around `at` (it sets the clock): its events, and the held ones
    /// behind it (merely late) or not too far ahead, are decided in input order; the rest are
    /// refused.
    fn release_around(&mut self, at: Millis, ready: &mut VecDeque<Taken>, refused: &mut Vec<DeadLetter>) {
        let span = self.cfg.max_ahead as u64;
        let top = self.held.iter().filter(|(e, _)| e.ts.abs_diff(at) <= span).map(|(e, _)| e.ts).max().unwrap_or(at);
        for (e, urgent) in std::mem::take(&mut self.held) {
            if e.ts <= top.saturating_add(self.cfg.max_ahead) {
                ready.push_back((e, urgent));
            } else {
                refused.push(self.dead(&e, top, "the events around it agree on an earlier time"));
            }
        }
    }

    /// Distinct event ids among the held suspects, counted up to the quorum.
    fn distinct(&self) -> usize {
        let mut seen: Vec<&str> = Vec::with_capacity(self.cfg.quorum);
        for (e, _) in &self.held {
            if !seen.contains(&e.id.as_str()) {
                seen.push(e.id.as_str());
                if seen.len() >= self.cfg.quorum {
                    break;
                }
            }
        }
        seen.len()
    }

    fn refuse_all(&mut self, clock: Millis, why: &str, refused: &mut Vec<DeadLetter>) {
        for (e, _) in std::mem::take(&mut self.held) {
            refused.push(self.dead(&e, clock, why));
        }
    }

    fn ts(&self, ms: Millis) -> String {
        format_ts(ms, self.offset)
    }

    /// The dead letter of a refused event: the event as the engine read it (with its id, so a
    /// corrected feed of it decides as the original would have), and why.
    fn dead(&self, e: &Event, clock: Millis, why: &str) -> DeadLetter {
        let reference = self.reference(clock);
        let detail = if reference == Millis::MIN {
            format!("ts {}: {why}", self.ts(e.ts))
        } else {
            format!(
                "ts {} is {} ahead of event time {} (engine.max_ahead {}): {why}",
                self.ts(e.ts),
                format_span(e.ts.saturating_sub(reference)),
                self.ts(reference),
                format_span(self.cfg.max_ahead),
            )
        };
        let line = e.to_line(self.offset);
        DeadLetter::whole(DeadReason::Future, detail, "engine", 0, line.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Decoder;
    use crate::time::DAY;

    const CFG: GuardConfig = GuardConfig { max_ahead: DAY, quorum: 3 };

    fn ev(ts: &str, msisdn: &str) -> Event {
        let line = format!(
            r#"{{"kind":"topup","ts":"{ts}","msisdn":"{msisdn}","amount_fen":100,"channel":"card","id":"{msisdn}@{ts}"}}"#
        );
        Decoder::default().decode(line.as_bytes(), "t", 1).expect("a line").expect("an event")
    }

    /// Feeds events as the router does (the clock follows what is decided); returns the ids
    /// decided, in order, and the ids refused.
    fn feed(mut guard: Guard, events: Vec<Event>) -> (Vec<String>, Vec<String>) {
        let mut clock = Millis::MIN;
        let (mut ready, mut refused) = (VecDeque::new(), Vec::new());
        let mut decided = Vec::new();
        let mut take = |ready: &mut VecDeque<Taken>, clock: &mut Millis| {
            while let Some((e, _)) = ready.pop_front() {
                *clock = (*clock).max(e.ts);
                decided.push(e.id.as_str().to_string());
            }
        };
        for e in events {
            if guard.passes(clock, &e) {
                ready.push_back((e, false));
            } else {
                guard.admit(clock, (e, false), &mut ready, &mut refused);
            }
            take(&mut ready, &mut clock);
        }
        guard.finish(clock, &mut ready, &mut refused);
        take(&mut ready, &mut clock);
        let refused = refused
            .iter()
            .map(|d| {
                assert_eq!(d.reason, DeadReason::Future);
                let v: serde_json::Value = serde_json::from_str(&d.raw).expect("the refused event, whole");
                v["id"].as_str().expect("its id").to_string()
            })
            .collect();
        (decided, refused)
    }

    fn guard() -> Guard {
        Guard::new(CFG, Millis::MIN, chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
    }

    fn ids(v: &[(&str, &str)]) -> Vec<String> {
        v.iter().map(|(ts, m)| format!("{m}@{ts}")).collect()
    }

    #[test]
    fn one_event_far_ahead_is_refused_by_the_next_ordinary_one() {
        let t = [
            ("2026-11-24T09:00:00+08:00", "13800000001"),
            ("2026-11-24T09:01:00+08:00", "13800000002"),
            ("2026-11-24T09:02:00+08:00", "13800000003"),
            ("9999-12-31T23:59:59+08:00", "13800000004"),
            ("2026-11-24T09:03:00+08:00", "13800000005"),
        ];
        let (decided, refused) = feed(guard(), t.iter().map(|(ts, m)| ev(ts, m)).collect());
        assert_eq!(refused, ids(&t[3..4]));
        assert_eq!(decided, ids(&[t[0], t[1], t[2], t[4]]));
    }

    #[test]
    fn an_absurd_first_event_does_not_set_the_clock() {
        let t = [
            ("2126-11-24T09:00:00+08:00", "13800000009"),
            ("2026-11-24T09:00:00+08:00", "13800000001"),
            ("2026-11-24T09:01:00+08:00", "13800000002"),
            ("2026-11-24T09:02:00+08:00", "13800000003"),
            ("2026-11-24T09:03:00+08:00", "13800000001"),
        ];
        let (decided, refused) = feed(guard(), t.iter().map(|(ts, m)| ev(ts, m)).collect());
        assert_eq!(refused, ids(&t[..1]));
        assert_eq!(decided, ids(&t[1..]));
    }

    #[test]
    fn a_stream_resumed_days_later_is_believed_in_order() {
        let t = [
            ("2026-11-24T09:00:00+08:00", "13800000001"),
            ("2026-11-24T09:01:00+08:00", "13800000002"),
            ("2026-11-24T09:02:00+08:00", "13800000003"),
            // Three days of nothing, then everyone at once.
            ("2026-11-27T10:00:00+08:00", "13800000001"),
            ("2026-11-27T10:00:01+08:00", "13800000001"),
            ("2026-11-27T10:00:02+08:00", "13800000002"),
            ("2026-11-27T10:00:03+08:00", "13800000003"),
            ("2026-11-27T10:00:04+08:00", "13800000004"),
        ];
        let (decided, refused) = feed(guard(), t.iter().map(|(ts, m)| ev(ts, m)).collect());
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(decided, ids(&t));
    }

    #[test]
    fn an_input_too_small_for_a_quorum_is_believed_where_nothing_contradicts_it() {
        let t = [
            ("2026-11-24T09:00:00+08:00", "13800000001"),
            ("9999-01-01T00:00:00+08:00", "13800000002"),
            ("2026-11-24T10:00:00+08:00", "13800000002"),
        ];
        let (decided, refused) = feed(guard(), t.iter().map(|(ts, m)| ev(ts, m)).collect());
        assert_eq!(decided, ids(&[t[0], t[2]]));
        assert_eq!(refused, ids(&t[1..2]));
    }

    #[test]
    fn a_duplicated_far_future_record_is_not_a_quorum() {
        let t = [
            ("2026-11-24T09:00:00+08:00", "13800000001"),
            ("2026-11-24T09:01:00+08:00", "13800000002"),
            ("2026-11-24T09:02:00+08:00", "13800000003"),
            ("2099-01-01T00:00:00+08:00", "13800000004"),
            ("2099-01-01T00:00:00+08:00", "13800000004"),
            ("2099-01-01T00:00:00+08:00", "13800000004"),
        ];
        let (decided, refused) = feed(guard(), t.iter().map(|(ts, m)| ev(ts, m)).collect());
        assert_eq!(decided, ids(&t[..3]));
        assert_eq!(refused, ids(&t[3..]));
    }

    #[test]
    fn one_subscribers_sparse_history_moves_on_as_it_always_did() {
        let t = [
            ("2026-11-02T10:00:00+08:00", "13800000001"),
            ("2026-11-09T10:00:00+08:00", "13800000001"),
            ("2026-11-16T10:00:00+08:00", "13800000001"),
            ("2026-11-17T23:30:00+08:00", "13800000001"),
            ("2026-11-19T10:00:00+08:00", "13800000001"),
            ("2026-11-20T10:00:00+08:00", "13800000001"),
        ];
        let (decided, refused) = feed(guard(), t.iter().map(|(ts, m)| ev(ts, m)).collect());
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(decided, ids(&t));
    }

    #[test]
    fn a_suspect_short_of_the_quorum_at_the_end_of_input_is_refused() {
        let t = [
            ("2026-11-24T09:00:00+08:00", "13800000001"),
            ("2026-11-24T09:01:00+08:00", "13800000002"),
            ("2026-11-24T09:02:00+08:00", "13800000003"),
            ("2126-11-24T09:00:00+08:00", "13800000004"),
        ];
        let (decided, refused) = feed(guard(), t.iter().map(|(ts, m)| ev(ts, m)).collect());
        assert_eq!(decided, ids(&t[..3]));
        assert_eq!(refused, ids(&t[3..]));
    }

    #[test]
    fn a_live_clock_start_lets_the_first_events_through_and_refuses_the_absurd_one() {
        let start = crate::time::parse_ts("2026-11-24T08:00:00+08:00").expect("ts");
        let g = Guard::new(CFG, start, chrono::FixedOffset::east_opt(8 * 3600).expect("offset"));
        let first = ev("2026-11-24T09:00:00+08:00", "13800000001");
        assert!(g.passes(Millis::MIN, &first), "a live run's first event needs no quorum");
        let t = [("2026-11-24T09:00:00+08:00", "13800000001"), ("9999-12-31T23:59:59+08:00", "13800000002")];
        let (decided, refused) = feed(g, t.iter().map(|(ts, m)| ev(ts, m)).collect());
        assert_eq!(decided, ids(&t[..1]));
        assert_eq!(refused, ids(&t[1..]));
    }

    #[test]
    fn with_the_guard_off_everything_passes() {
        let g = Guard::new(GuardConfig::OFF, Millis::MIN, chrono::FixedOffset::east_opt(0).expect("offset"));
        assert!(g.passes(Millis::MIN, &ev("9999-12-31T23:59:59+08:00", "13800000001")));
    }
}
