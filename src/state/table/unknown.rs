//! Subscribers the reference data does not know: held, but not without bound.
//!
//! Every event creates state for its subscriber, and a number the reference data does not know
//! gets a record too (an IVR caller asking once, a number in a stream). The state is what rules
//! read (IVR history, windows, sequences), so it cannot simply be left out without changing
//! what they decide; but kept forever, anyone who can ask `/v1/ivr` with fresh numbers grows the
//! engine without end. So a shard holds at most `cap` of them, and past it forgets the one seen
//! least recently (a clock: oldest first, a second chance to one seen since it was queued),
//! which then starts afresh if it comes back, as a number never seen.
//!
//! Why bound and evict rather than "create nothing unless a rule needs it": the shipped rules
//! remember an IVR caller's menu path (`state.ivr_last_node`) and agent requests, so the state of
//! a caller *is* needed; and proving for every rule pack which parts a future event could read is
//! a compiler analysis with its own bugs. A bound is simple, and below it nothing changes.
//!
//! Never forgotten: a subscriber with a pending timer (a contact the engine owes) or contact
//! history within the longest cap window or a streak (forgetting it could send a contact
//! the caps forbid): safety before memory. A profile event makes a subscriber known, and known
//! subscribers are never forgotten.
//!
//! Deterministic: what is forgotten depends only on the order of the shard's events, so a replay
//! of the same input (the IVR log included) with the same `[engine] unknown_subscribers` and
//! shard count forgets what live forgot.

use super::SubTable;
use crate::time::Millis;
use crate::util::Msisdn;
use std::collections::VecDeque;

/// Queue entries looked at per new unknown subscriber past the cap: bounded work per event even
/// when many held subscribers are protected.
const VISITS: usize = 8;

#[derive(Default)]
pub(super) struct Unknown {
    /// How many may be held.
    pub cap: usize,
    /// Held, by number, oldest first, with their event count when queued.
    queue: VecDeque<(u64, u32)>,
    /// How many are held (queue entries that still name a held unknown subscriber).
    pub held: usize,
    /// How many were forgotten since the table was made (entries move when one is).
    pub removed: u64,
}

impl Unknown {
    /// A subscriber the reference data does not know got a record.
    pub fn added(&mut self, m: Msisdn, seen: u32) {
        self.queue.push_back((m.raw(), seen));
        self.held += 1;
        crate::telemetry::unknown_subscribers(1, 0);
    }
}

impl SubTable {
    /// Past the cap: forgets unknown subscribers seen least recently until it holds `cap`, at
    /// most [`VISITS`] looked at. `now` is the event time, `keep` how long contact history
    /// matters (the longest cap window). Not while a checkpoint copies the table (its positions
    /// must hold); the next event catches up.
    #[inline]
    pub fn forget_unknown(&mut self, now: Millis, keep: i64) {
        if self.unknown.held <= self.unknown.cap || self.snap.is_some() {
            return;
        }
        self.forget_past_cap(now, keep);
    }

    /// [`SubTable::forget_unknown`] once past the cap (out of line: the check runs per event).
    fn forget_past_cap(&mut self, now: Millis, keep: i64) {
        let mut forgotten = 0;
        for _ in 0..VISITS {
            if self.unknown.held <= self.unknown.cap {
                break;
            }
            let Some((raw, seen)) = self.unknown.queue.pop_front() else { break };
            let m = Msisdn::from_raw(raw);
            let ps = &self.profiles;
            let Ok(i) = self.index.find(Self::hash(m), |i| ps[i as usize].msisdn == m) else {
                self.unknown.held -= 1;
                crate::telemetry::unknown_subscribers(-1, 0);
                continue;
            };
            let (sub, st) = (&self.profiles[i as usize], &self.states[i as usize]);
            if sub.known() {
                // A profile event made it known: no longer counted.
                self.unknown.held -= 1;
                crate::telemetry::unknown_subscribers(-1, 0);
                continue;
            }
            let contacts = st.contacts();
            let protected = !st.timers().is_empty()
                || !st.journeys().is_empty()
                || !contacts.streaks.is_empty()
                || contacts.recent.iter().any(|c| c.ts > now.saturating_sub(keep));
            if st.events_seen != seen || protected {
                self.unknown.queue.push_back((raw, st.events_seen));
                continue;
            }
            self.remove_at(i);
            self.unknown.held -= 1;
            forgotten += 1;
        }
        if forgotten > 0 {
            crate::telemetry::unknown_subscribers(-forgotten, forgotten as u64);
        }
    }

    /// Removes entry `i`: the last entry takes its place, and the index follows.
    fn remove_at(&mut self, i: u32) {
        let ps = &self.profiles;
        let hash_of = |p: u32| Self::hash(ps[p as usize].msisdn);
        self.index.remove(i, hash_of);
        let last = (self.profiles.len() - 1) as u32;
        if i != last {
            let lm = self.profiles[last as usize].msisdn;
            let ps = &self.profiles;
            if let Ok(slot) = self.index.slot_of(Self::hash(lm), |p| ps[p as usize].msisdn == lm) {
                self.index.set_slot(slot, i);
            }
        }
        self.profiles.swap_remove(i as usize);
        self.states.swap_remove(i as usize);
        self.unknown.removed += 1;
    }

    /// How many entries were ever forgotten: when it changes, entries have moved.
    pub fn removals(&self) -> u64 {
        self.unknown.removed
    }

    /// Unknown subscribers held.
    pub fn unknown_held(&self) -> usize {
        self.unknown.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refdata::Profile;

    fn m(i: u64) -> Msisdn {
        Msisdn::from_raw(13_800_000_000 + i * 13)
    }

    #[test]
    fn unknown_subscribers_past_the_cap_are_forgotten_oldest_first_and_the_rest_stay_found() {
        // 1,000 loaded (known) subscribers; a cap of 100 unknown ones; 50,000 unknown numbers,
        // each seen once, with every 100th seen again as the next 50 come in.
        let loaded: Vec<Profile> = (0..1000)
            .map(|i| {
                let mut p = Profile::unknown(m(i));
                p.set_known();
                p
            })
            .collect();
        let mut t = SubTable::new(loaded, 100);
        for i in 1000..51_000 {
            t.get_or_insert(m(i), || Profile::unknown(m(i))).state.begin(0, None);
            if i % 100 == 50 {
                // A regular caller: seen every 50 numbers, from the start.
                t.get_or_insert(m(7), || Profile::unknown(m(7)));
                t.get_or_insert(m(1000), || Profile::unknown(m(1000))).state.begin(0, None);
            }
            t.forget_unknown(0, 0);
        }
        assert!(t.unknown_held() <= 100, "held {}", t.unknown_held());
        assert!(t.len() <= 1000 + 100);
        assert!((0..1000).all(|i| t.get_mut(m(i)).is_some_and(|e| e.sub.msisdn == m(i))), "known ones stay");
        assert!(t.get_mut(m(1000)).is_some(), "an unknown caller who keeps coming back is kept");
        assert!(
            (50_902..51_000).all(|i| t.get_mut(m(i)).is_some()),
            "the newest are held (the regular caller holds one place)"
        );
        assert!(t.get_mut(m(2000)).is_none(), "an old one-off caller is forgotten");
        // Every entry is found through the index after all the removals.
        let held: Vec<Msisdn> = t.iter_mut().map(|e| e.sub.msisdn).collect();
        assert!(held.iter().all(|&x| t.get_mut(x).is_some_and(|e| e.sub.msisdn == x)));
        // A forgotten number comes back as new.
        t.get_or_insert(m(2000), || Profile::unknown(m(2000)));
        assert!(t.get_mut(m(2000)).is_some_and(|e| e.state.events_seen == 0));
    }

    #[test]
    fn an_unknown_subscriber_with_a_pending_timer_or_recent_contacts_is_never_forgotten() {
        let mut t = SubTable::new(Vec::new(), 10);
        let e = t.get_or_insert(m(1), || Profile::unknown(m(1)));
        e.state.begin(0, None);
        e.state.push_timer(crate::state::PendingTimer {
            due: 1_000,
            rule: 0,
            trigger: crate::contact::TriggerRef { kind: "ivr", id: "x".into(), ts: 0 },
            armed_at: 0,
            written: Default::default(),
            deferred: None,
            kept: Default::default(),
        });
        for i in 2..1000 {
            t.get_or_insert(m(i), || Profile::unknown(m(i))).state.begin(0, None);
            t.forget_unknown(0, 0);
        }
        assert!(t.get_mut(m(1)).is_some(), "the timer's subscriber is kept");
        assert!(t.unknown_held() <= 11);
    }

    #[test]
    fn an_unknown_subscriber_in_a_journey_is_never_forgotten() {
        let mut t = SubTable::new(Vec::new(), 10);
        let e = t.get_or_insert(m(1), || Profile::unknown(m(1)));
        e.state.begin(0, None);
        e.state.journeys_mut().push(crate::state::JourneyInst {
            step: 0,
            started: 0,
            since: 0,
            armed_at: 0,
            due: 600_000,
            kept: Vec::new(),
        });
        for i in 2..1000 {
            t.get_or_insert(m(i), || Profile::unknown(m(i))).state.begin(0, None);
            t.forget_unknown(0, 0);
        }
        assert!(t.get_mut(m(1)).is_some_and(|e| e.state.journeys().len() == 1), "the journey's subscriber is kept");
        assert!(t.unknown_held() <= 11);
    }
}
