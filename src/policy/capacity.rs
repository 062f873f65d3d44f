//! Channel capacity: SMS gateway submissions per second, call-centre tasks per minute.
//!
//! Capacity is shared by every shard, so it is applied once, after the shards, to decisions in
//! output order. The limiter is governor's GCRA driven by a clock that follows event time
//! (never the wall clock), so a replay queues and releases exactly as live processing did.
//! Over capacity a contact waits in a queue while it is valid; one whose expiry passes first
//! is recorded as suppressed with reason `capacity` — never silently dropped.

use crate::engine::{Decision, Outcome, Suppression};
use crate::util::Millis;
use governor::clock::{Clock, FakeRelativeClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::Duration;

type Limiter = RateLimiter<NotKeyed, InMemoryState, FakeRelativeClock, NoOpMiddleware<governor::nanos::Nanos>>;

struct Lane {
    limiter: Limiter,
    clock: FakeRelativeClock,
    /// Event time of the clock's zero.
    base: Option<Millis>,
    now: Millis,
    queue: VecDeque<Decision>,
    rate: (u32, i64),
}

impl Lane {
    fn new(rate: (u32, i64)) -> Lane {
        let (n, per) = rate;
        let burst = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_micros((per as u64 * 1000 / u64::from(n)).max(1));
        let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(burst)).allow_burst(burst);
        let clock = FakeRelativeClock::default();
        Lane {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            base: None,
            now: Millis::MIN,
            queue: VecDeque::new(),
            rate,
        }
    }

    fn advance(&mut self, t: Millis) {
        let base = *self.base.get_or_insert(t);
        if self.now == Millis::MIN {
            self.now = base;
        }
        if t > self.now {
            self.clock.advance(Duration::from_millis((t - self.now) as u64));
            self.now = t;
        }
    }

    /// Event time at which the limiter next admits one, from a refusal.
    fn next_slot(&self, not_until: &governor::NotUntil<governor::nanos::Nanos>) -> Millis {
        let wait = not_until.wait_time_from(self.clock.now());
        self.now + (wait.as_nanos() as i64 + 999_999) / 1_000_000
    }

    /// Releases queued contacts whose turn comes at or before `t`, in order.
    fn drain(&mut self, t: Millis, out: &mut Vec<Decision>) {
        while let Some(head) = self.queue.front() {
            let expires = head.expires.unwrap_or(Millis::MAX);
            match self.limiter.check() {
                Ok(()) => {
                    let mut d = self.queue.pop_front().expect("head exists");
                    d.ts = d.ts.max(self.now);
                    out.push(d);
                }
                Err(nu) => {
                    let slot = self.next_slot(&nu);
                    if expires < slot {
                        let mut d = self.queue.pop_front().expect("head exists");
                        d.outcome = Outcome::Suppressed(Suppression::Capacity);
                        d.detail = Some(format!(
                            "channel capacity {}/{}ms reached; expired before a slot",
                            self.rate.0, self.rate.1
                        ));
                        out.push(d);
                    } else if slot > t {
                        return;
                    } else {
                        self.advance(slot);
                    }
                }
            }
        }
    }
}

/// Capacity lanes per channel (indexed by `Channel as usize`); `None` = unlimited.
pub struct Capacity {
    lanes: [Option<Lane>; 3],
}

impl Capacity {
    pub fn new(rates: super::Capacities) -> Capacity {
        Capacity { lanes: rates.map(|r| r.map(Lane::new)) }
    }

    pub fn is_unlimited(&self) -> bool {
        self.lanes.iter().all(Option::is_none)
    }

    /// Contacts still waiting for a slot.
    pub fn queued(&self) -> usize {
        self.lanes.iter().flatten().map(|l| l.queue.len()).sum()
    }

    /// Takes the next decision in output order; appends what is decided now to `out`.
    pub fn offer(&mut self, d: Decision, out: &mut Vec<Decision>) {
        let t = d.ts;
        for lane in self.lanes.iter_mut().flatten() {
            lane.advance(t.max(lane.now));
            lane.drain(t.max(lane.now), out);
        }
        let lane = match (&d.outcome, self.lanes.get_mut(d.channel as usize)) {
            (Outcome::Sent, Some(Some(lane))) => lane,
            _ => return out.push(d),
        };
        if lane.queue.is_empty() && lane.limiter.check().is_ok() {
            out.push(d);
        } else {
            lane.queue.push_back(d);
            let now = lane.now;
            lane.drain(now, out);
        }
    }

    /// End of input: every waiting contact is released at its slot or expires.
    pub fn finish(&mut self, out: &mut Vec<Decision>) {
        for lane in self.lanes.iter_mut().flatten() {
            lane.drain(Millis::MAX, out);
        }
    }
}
