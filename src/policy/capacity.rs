//! Channel capacity: SMS gateway submissions per second, call-centre tasks per minute.
//!
//! Capacity is shared by every shard, so it is applied once, after the shards, to decisions in
//! output order. The limiter is a GCRA (the algorithm and arithmetic of the `governor` crate,
//! which it replaced) on a clock that follows event time (never the wall clock), so a replay
//! queues and releases exactly as live processing did. Its whole state is a few integers and the
//! queue, so a checkpoint can carry it (governor keeps its state private).
//! Over capacity a contact waits in a queue while it is valid; one whose expiry passes first
//! is recorded as suppressed with reason `capacity` — never silently dropped.

use crate::contact::{Decision, Outcome, Suppression};
use crate::time::{HOUR, MINUTE, Millis};
use std::collections::VecDeque;

/// Channel capacities, indexed by `Channel as usize`: (count, per milliseconds), `None` = unlimited.
pub type Capacities = [Option<(u32, i64)>; crate::contact::Channel::COUNT];

/// A capacity such as `200/s`, `30/min`, `1000/h`: (count, per milliseconds).
pub fn parse_rate(s: &str) -> Result<(u32, i64), String> {
    let bad = || format!("`{s}` is not a rate; write e.g. `200/s` or `30/min`");
    let (n, per) = s.split_once('/').ok_or_else(bad)?;
    let n: u32 = n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
    let per = match per.trim() {
        "s" | "sec" => 1000,
        "min" | "m" => MINUTE,
        "h" => HOUR,
        _ => return Err(bad()),
    };
    Ok((n, per))
}

/// GCRA over event time: one contact "costs" `t` nanoseconds of the clock and `tau` more may be
/// borrowed ahead (the burst); `tat` is the theoretical arrival time of the next contact.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Gcra {
    t: u64,
    tau: u64,
    tat: Option<u64>,
}

impl Gcra {
    /// `n` contacts per `per` milliseconds, `n` of them at once.
    fn new((n, per): (u32, i64)) -> Gcra {
        let n = n.max(1);
        let t = (per.max(0) as u64 * 1000 / u64::from(n)).max(1) * 1000;
        Gcra { t, tau: t * u64::from(n - 1), tat: None }
    }

    /// Takes a slot at clock time `now` (nanoseconds), or says from when one is free.
    fn check(&mut self, now: u64) -> Result<(), u64> {
        let tat = self.tat.unwrap_or(now);
        let earliest = tat.saturating_sub(self.tau);
        if now < earliest {
            return Err(earliest);
        }
        self.tat = Some(tat.max(now) + self.t);
        Ok(())
    }
}

struct Lane {
    limiter: Gcra,
    /// Event time of the clock's zero.
    base: Option<Millis>,
    now: Millis,
    queue: VecDeque<Decision>,
    rate: (u32, i64),
}

impl Lane {
    fn new(rate: (u32, i64)) -> Lane {
        Lane { limiter: Gcra::new(rate), base: None, now: Millis::MIN, queue: VecDeque::new(), rate }
    }

    /// The limiter's clock: nanoseconds of event time since its zero.
    fn clock(&self) -> u64 {
        match self.base {
            Some(b) if self.now != Millis::MIN => (self.now - b) as u64 * 1_000_000,
            _ => 0,
        }
    }

    fn check(&mut self) -> Result<(), u64> {
        let now = self.clock();
        self.limiter.check(now)
    }

    fn advance(&mut self, t: Millis) {
        let base = *self.base.get_or_insert(t);
        if self.now == Millis::MIN {
            self.now = base;
        }
        if t > self.now {
            self.now = t;
        }
    }

    /// Event time at which the limiter next admits one, from a refusal (`earliest` on its clock).
    fn next_slot(&self, earliest: u64) -> Millis {
        let wait = earliest.saturating_sub(self.clock());
        self.now + (wait as i64 + 999_999) / 1_000_000
    }

    /// Releases queued contacts whose turn comes at or before `t`, in order.
    fn drain(&mut self, t: Millis, out: &mut Vec<Decision>) {
        while let Some(head) = self.queue.front() {
            let expires = head.expires.unwrap_or(Millis::MAX);
            match self.check() {
                Ok(()) => {
                    let mut d = self.queue.pop_front().expect("head exists");
                    d.ts = d.ts.max(self.now);
                    out.push(d);
                }
                Err(earliest) => {
                    let slot = self.next_slot(earliest);
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
    lanes: [Option<Lane>; crate::contact::Channel::COUNT],
}

impl Capacity {
    pub fn new(rates: Capacities) -> Capacity {
        Capacity { lanes: rates.map(|r| r.map(Lane::new)) }
    }

    pub fn is_unlimited(&self) -> bool {
        self.lanes.iter().all(Option::is_none)
    }

    /// Contacts still waiting for a slot.
    pub fn queued(&self) -> usize {
        self.lanes.iter().flatten().map(|l| l.queue.len()).sum()
    }

    /// Takes the next decision in output order; appends what is decided now to `out`. A shadow
    /// decision takes no capacity: it goes out in its place, unlimited.
    pub fn offer(&mut self, d: Decision, out: &mut Vec<Decision>) {
        if d.shadow {
            return out.push(d);
        }
        let t = d.ts;
        for lane in self.lanes.iter_mut().flatten() {
            lane.advance(t.max(lane.now));
            lane.drain(t.max(lane.now), out);
        }
        let lane = match (&d.outcome, self.lanes.get_mut(d.channel as usize)) {
            (Outcome::Sent, Some(Some(lane))) => lane,
            _ => return out.push(d),
        };
        if lane.queue.is_empty() && lane.check().is_ok() {
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

impl Capacity {
    /// The limiters and their queues, for a checkpoint.
    pub fn save(&self) -> Vec<u8> {
        use crate::codec::Enc;
        use crate::state::checkpoint::enc_decision;
        let mut e = Enc::default();
        for lane in &self.lanes {
            let Some(l) = lane else {
                e.u8(0);
                continue;
            };
            e.u8(1);
            e.opt_i64(l.base);
            e.i64(l.now);
            e.opt_i64(l.limiter.tat.map(|t| t as i64));
            e.u32(l.queue.len() as u32);
            l.queue.iter().for_each(|d| enc_decision(&mut e, d));
        }
        e.buf
    }

    /// Puts back what [`Capacity::save`] wrote. A channel that has no capacity limit any more
    /// gives its queued contacts back (returned, to be written out at once); a changed rate keeps
    /// the queue and the limiter's clock. A checkpoint written before a channel was added has
    /// fewer lanes: the lanes it does not have start empty.
    /// `format` is the checkpoint's format version.
    pub fn restore(&mut self, b: &[u8], format: u16) -> Result<Vec<Decision>, crate::codec::Bad> {
        use crate::codec::Dec;
        use crate::state::checkpoint::dec_decision;
        let mut d = Dec::new(b).with_version(format);
        let mut orphans = Vec::new();
        for lane in self.lanes.iter_mut() {
            if d.done() {
                break;
            }
            if d.u8()? == 0 {
                continue;
            }
            let (base, now, tat) = (d.opt_i64()?, d.i64()?, d.opt_i64()?);
            let n = d.len(64)?;
            let queue = (0..n).map(|_| dec_decision(&mut d)).collect::<Result<VecDeque<_>, _>>()?;
            match lane {
                Some(l) => {
                    l.base = base;
                    l.now = now;
                    l.limiter.tat = tat.map(|t| t as u64);
                    l.queue = queue;
                }
                None => orphans.extend(queue),
            }
        }
        Ok(orphans)
    }
}

#[cfg(test)]
mod tests {
    use super::{Gcra, parse_rate};
    use crate::time::MINUTE;
    use governor::clock::{Clock, FakeRelativeClock};
    use governor::{Quota, RateLimiter};
    use std::num::NonZeroU32;
    use std::time::Duration;

    /// Checkpoints written before `order` was a channel hold three lanes, not four.
    #[test]
    fn a_checkpoint_with_fewer_channel_lanes_restores() {
        use super::{Capacities, Capacity};
        let mut rates: Capacities = Default::default();
        rates[0] = Some((2, 1_000));
        rates[1] = Some((30, MINUTE));
        let saved = Capacity::new(rates).save();
        assert_eq!(saved.last(), Some(&0), "the order lane is never limited");
        let three_lanes = &saved[..saved.len() - 1];
        let mut c = Capacity::new(rates);
        assert!(c.restore(three_lanes, crate::state::checkpoint::FORMAT).is_ok_and(|orphans| orphans.is_empty()));
        assert!(c.restore(&saved, crate::state::checkpoint::FORMAT).is_ok());
        assert!(
            c.restore(&saved[..3], crate::state::checkpoint::FORMAT).is_err(),
            "a lane cut short is still an error"
        );
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("200/s").unwrap(), (200, 1000));
        assert_eq!(parse_rate("30/min").unwrap(), (30, MINUTE));
        assert!(parse_rate("fast").is_err() && parse_rate("0/s").is_err());
    }

    /// The limiter decides exactly as `governor` (which it replaced) does, refusal times included.
    #[test]
    fn gcra_answers_as_governor_does() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for rate in [(1, 1_000), (3, 60_000), (200, 1_000), (7, 3_600_000), (30, 60_000)] {
            let (n, per) = rate;
            let burst = NonZeroU32::new(n).unwrap();
            let period = Duration::from_micros((per as u64 * 1000 / u64::from(n)).max(1));
            let clock = FakeRelativeClock::default();
            let gov =
                RateLimiter::direct_with_clock(Quota::with_period(period).unwrap().allow_burst(burst), clock.clone());
            let mut ours = Gcra::new(rate);
            let mut now_ms = 0u64;
            for _ in 0..5_000 {
                let step = next() % (2 * per as u64 / u64::from(n) + 1);
                now_ms += step;
                clock.advance(Duration::from_millis(step));
                let now_ns = now_ms * 1_000_000;
                match (gov.check(), ours.check(now_ns)) {
                    (Ok(()), Ok(())) => {}
                    (Err(nu), Err(earliest)) => {
                        let wait = nu.wait_time_from(clock.now()).as_nanos() as u64;
                        assert_eq!(wait, earliest - now_ns, "rate {rate:?} at {now_ms} ms");
                    }
                    (g, o) => panic!("rate {rate:?} at {now_ms} ms: governor {g:?}, ours {o:?}"),
                }
            }
        }
    }
}
