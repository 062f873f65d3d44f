//! Episodes: the multi-event stories the rule pack looks for, buried in the background at
//! realistic rates. Each kind has a clock that starts it a number of times a day within its
//! plausible hours; a started episode picks a subscriber who fits the story and schedules its
//! lines into the stream's heap.

use super::base::PEER_PREFIXES;
use super::clocks::Ep;
use super::records::{
    ATTACH, CASH, Ev, HANDOVER, LONG_DISTANCE, MO, MT, PERIODIC, R_ALL, R_BL, R_HY, R_KT12593, R_KTBY, R_KTLD,
    R_REFUSALS, R_SCORE_1, R_THANKS, R_TQ, ROAM_DOM, ROAM_INTL, SMS, Usage,
};
use super::stream::Events;
use super::stream::{F_BUSY, F_HOLD, F_NO_TOPUP};
use super::subscribers::{
    HIGH, NEG, PF_MUSIC, PF_TRAVEL, SUBT, SV_12593, SV_CALL_NOTIFY, SV_MUSIC_CLUB, SV_WEATHER, Sub,
};
use super::world::STORES;
use crate::time::{HOUR, MINUTE, Millis, SECOND};

impl Events {
    /// Starts an episode of the kind at t0; `day` and `idx` are the clock's (the churn clock walks
    /// its churners by index).
    pub(super) fn episode(&mut self, ep: Ep, t0: Millis, day: u32, idx: u32) {
        match ep {
            Ep::Rail => self.ep_travel(t0, false),
            Ep::Airport => self.ep_travel(t0, true),
            Ep::LongDistance => self.ep_long_distance(t0),
            Ep::Concert => self.ep_concert(t0),
            Ep::IvrTopic3 => self.ep_ivr_topic3(t0),
            Ep::LowBalance => self.ep_low_balance(t0),
            Ep::StoreCash => self.ep_store_cash(t0),
            Ep::Roaming => self.ep_roaming(t0),
            Ep::WeatherTrip => self.ep_weather_trip(t0),
            Ep::Churn => self.ep_churn(t0, day, idx),
        }
    }

    /// Periodic location updates in `cell` every `gap` minutes after `t`, until `until` (at
    /// most `max` of them): someone staying put somewhere away from home.
    fn periodic_until(&mut self, i: u32, cell: u32, mut t: Millis, until: Millis, gap: (i64, i64), max: usize) {
        for _ in 0..max {
            t += self.rng.range(gap.0, gap.1) * MINUTE;
            if t >= until {
                break;
            }
            self.push(t, i, Ev::loc(cell, PERIODIC), 0);
        }
    }

    /// A local call or data session in `cell`, leaving the balance at `after` if given.
    fn local_usage(&mut self, cell: u32, charge: u32, after: Option<i32>) -> Usage {
        let u = if self.rng.chance(0.5) {
            let duration = self.rng.range(40, 400) as u32;
            Usage::call(self.peer(true), duration, cell)
        } else {
            Usage::data(self.rng.range(2_000, 60_000) as u32, cell)
        };
        u.charged(charge).leaving(after)
    }

    /// A high-value traveller without call notification, low on credit, reaches a station or the
    /// airport from an ordinary cell.
    fn ep_travel(&mut self, t0: Millis, airport: bool) {
        let s = self.pick(|s| s.tier == HIGH && s.services & SV_CALL_NOTIFY == 0 && s.active());
        let i = s.idx;
        self.set_flag(i, F_HOLD | F_BUSY);
        let from = self.ordinary_cell(&s);
        let trig = if self.rng.chance(0.5) { HANDOVER } else { PERIODIC };
        self.push(t0, i, Ev::loc(from, trig), 0);
        let t1 = t0 + self.rng.range(3, 15) * MINUTE;
        let after = self.rng.range(150, 950) as i32;
        let charge = self.rng.range(10, 80) as u32;
        let u = self.local_usage(from, charge, Some(after));
        self.push(t1, i, Ev::Usage(u), 0);
        let hub = if airport {
            self.m.world.airport.clone()
        } else {
            let k = self.rng.below(self.m.world.stations.len() as u64) as usize;
            self.m.world.stations.get(k).cloned().unwrap_or_default()
        };
        let cell = self.rng.pick(&hub, from);
        let t2 = t1 + self.rng.range(15, 40) * MINUTE;
        let trigger = if self.rng.chance(0.6) { HANDOVER } else { ATTACH };
        self.push(t2, i, Ev::loc(cell, trigger), F_HOLD);
        let t3 = t2 + self.rng.range(8, 20) * MINUTE;
        let next = self.rng.pick(&hub, cell);
        let trigger = if next == cell { PERIODIC } else { HANDOVER };
        let leaves = !airport && self.rng.chance(0.6);
        self.push(t3, i, Ev::loc(next, trigger), if leaves { 0 } else { F_BUSY });
        // One in eight answers the low-balance SMS asking for call notification.
        if self.aside(i, t2).is_multiple_of(8) {
            let _ = self.push(t2 + 6 * MINUTE, i, Ev::Reply { text: R_KTLD }, 0);
        }
        if leaves {
            // Out of town until the return train; the background stays away meanwhile.
            let away = self.rng.pick(&self.m.world.domestic, from);
            let t = t3 + self.rng.range(40, 120) * MINUTE;
            self.push(t, i, Ev::loc(away, ATTACH), 0);
            let back = t + self.rng.range(20, 80) * HOUR;
            self.periodic_until(i, away, t, back, (60, 180), 30);
            self.push(back, i, Ev::loc(next, ATTACH), F_BUSY);
        }
    }

    /// Three to five long-distance (or domestic roaming) calls through the day by someone who
    /// does not use 12593.
    fn ep_long_distance(&mut self, t0: Millis) {
        let has_unused = self.rng.chance(0.25);
        let s = if has_unused {
            self.pick(|s| s.active() && s.services & SV_12593 != 0 && s.ignores_12593)
        } else {
            self.pick(|s| s.active() && s.services & SV_12593 == 0)
        };
        let roaming = self.rng.chance(0.3);
        let scope = if roaming { ROAM_DOM } else { LONG_DISTANCE };
        let cell = if roaming { self.rng.pick(&self.m.world.domestic, s.work) } else { s.work };
        let calls = self.rng.range(3, 6);
        let mut t = t0;
        for _ in 0..calls {
            let duration = self.rng.log_range(60.0, 900.0) as u32;
            let charge = self.voice_charge(scope, MO, duration, false);
            // Another operator's or province's number: never one of ours.
            let prefix = self.rng.pick(&PEER_PREFIXES, 130);
            let peer = prefix * 100_000_000 + self.rng.below(100_000_000);
            self.push(t, s.idx, Ev::Usage(Usage::call(peer, duration, cell).scope(scope).charged(charge)), 0);
            t += self.rng.range(20, 80) * MINUTE;
        }
        // A few answer the 12593 offer: most who answer want it, some refuse more messages.
        let last = t - MINUTE;
        let _ = match self.aside(s.idx, last) % 100 {
            0..=3 => self.push(last + 7 * MINUTE, s.idx, Ev::Reply { text: R_KT12593 }, 0),
            4..=7 => {
                let k = (self.aside(s.idx, last + 1) % 4) as usize;
                self.push(last + 9 * MINUTE, s.idx, Ev::Reply { text: R_REFUSALS[k] }, 0)
            }
            8 => self.push(last + 9 * MINUTE, s.idx, Ev::Reply { text: R_ALL }, 0),
            9 => self.push(last + 11 * MINUTE, s.idx, Ev::Reply { text: R_THANKS }, 0),
            _ => false,
        };
    }

    /// A number from the subscriber and the time alone, for choices that must not move the
    /// generator's random stream (adding them left every other line where it was).
    fn aside(&self, idx: u32, t: Millis) -> u64 {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&idx.to_le_bytes());
        b[4..].copy_from_slice(&t.to_le_bytes());
        crate::util::stable_hash(&b)
    }

    /// A fan (mostly music lovers outside the club) arrives at the venue before the show and
    /// stays through it, with periodic updates and the odd handover between venue cells.
    fn ep_concert(&mut self, t0: Millis) {
        let s = if self.rng.chance(0.8) {
            self.pick(|s| s.active() && s.prefs & PF_MUSIC != 0 && s.services & SV_MUSIC_CLUB == 0)
        } else {
            self.pick(Sub::active)
        };
        let i = s.idx;
        self.set_flag(i, F_BUSY);
        let before = self.rng.pick(&self.m.world.residential, s.home);
        self.push(t0, i, Ev::loc(before, HANDOVER), 0);
        let arrive = t0 + self.rng.range(10, 16) * MINUTE;
        let venue = self.m.world.venue.clone();
        let mut cell = self.rng.pick(&venue, before);
        let trigger = if self.rng.chance(0.4) { ATTACH } else { HANDOVER };
        self.push(arrive, i, Ev::loc(cell, trigger), 0);
        let stay = if self.rng.chance(0.85) { self.rng.range(80, 200) } else { self.rng.range(25, 55) };
        let leave = arrive + stay * MINUTE;
        let upload = arrive + self.rng.range(20, 60) * MINUTE;
        if upload < leave {
            let volume = self.rng.range(5_000, 80_000) as u32;
            self.push(upload, i, Ev::Usage(Usage::data(volume, cell)), 0);
        }
        let mut t = arrive;
        loop {
            let next = t + self.rng.range(10, 21) * MINUTE;
            if next >= leave - 2 * MINUTE {
                break;
            }
            t = next;
            let trigger = if self.rng.chance(0.2) {
                cell = self.rng.pick(&venue, cell);
                HANDOVER
            } else {
                PERIODIC
            };
            self.push(t, i, Ev::loc(cell, trigger), 0);
        }
        if t < leave - 6 * MINUTE {
            self.push(leave - 2 * MINUTE, i, Ev::loc(cell, PERIODIC), 0);
        }
        // One fan in six who stays answers the club offer (sent after an hour at the venue).
        if stay >= 80 && self.aside(i, arrive).is_multiple_of(6) {
            let _ = self.push(leave + 5 * MINUTE, i, Ev::Reply { text: R_HY }, 0);
        }
        let after = self.rng.pick(&self.m.world.residential, s.home);
        self.push(leave, i, Ev::loc(after, HANDOVER), F_BUSY);
    }

    /// Callers going straight to menu 3 and an agent within a minute, some repeatedly in a day;
    /// some give up before the agent.
    fn ep_ivr_topic3(&mut self, t0: Millis) {
        let s = self.pick(Sub::active);
        let sessions = 1 + usize::from(self.rng.chance(0.45)) + usize::from(self.rng.chance(0.2));
        let agent = sessions > 1 || self.rng.chance(0.7);
        let mut t = t0;
        for _ in 0..sessions {
            self.serial += 1;
            let session = self.serial;
            let leaf = self.rng.range(1, 3) as u8;
            self.push(t, s.idx, Ev::ivr_enter(session), 0);
            t += self.rng.range(3, 9) * SECOND;
            self.push(t, s.idx, Ev::ivr_menu(session, [3, 0, 0], 1), 0);
            t += self.rng.range(3, 11) * SECOND;
            self.push(t, s.idx, Ev::ivr_menu(session, [3, leaf, 0], 2), 0);
            if agent {
                t += self.rng.range(3, 13) * SECOND;
                self.push(t, s.idx, Ev::ivr_agent(session, [3, leaf, 0], 2), 0);
                t += self.rng.range(60, 480) * SECOND;
            } else {
                t += self.rng.range(5, 30) * SECOND;
            }
            self.push(t, s.idx, Ev::ivr_exit(session), 0);
            t += self.rng.range(40, 240) * MINUTE;
        }
    }

    /// Balance falls under 5 CNY; half never top up in the window, half do a few hours later.
    fn ep_low_balance(&mut self, t0: Millis) {
        let s = self.pick(Sub::active);
        let never = self.rng.chance(0.5);
        self.set_flag(s.idx, if never { F_NO_TOPUP } else { F_HOLD });
        let after = self.rng.range(30, 480) as i32;
        let charge = self.rng.range(20, 150) as u32;
        let cell = self.cell_for(&s, t0);
        let u = self.local_usage(cell, charge, Some(after));
        self.push(t0, s.idx, Ev::Usage(u), 0);
        if !never {
            let t1 = t0 + self.rng.range(60, 360) * MINUTE;
            let amount = self.rng.pick(&[3000u32, 5000, 5000, 10_000], 5000);
            let channel = self.rng.pick(&[0u8, 1, 3, 4], 1);
            self.push(t1, s.idx, Ev::topup(amount, channel), F_HOLD);
        }
    }

    /// A low-value subscriber walks into a store and pays cash.
    fn ep_store_cash(&mut self, t0: Millis) {
        let s = self.pick(|s| s.active() && (s.tier == SUBT || s.tier == NEG));
        let k = self.rng.below(STORES.len() as u64) as usize;
        let cell = self.m.world.store_cells.get(k).copied().unwrap_or(s.home);
        self.set_flag(s.idx, F_BUSY);
        self.push(t0, s.idx, Ev::loc(cell, ATTACH), 0);
        let t1 = t0 + self.rng.range(5, 25) * MINUTE;
        let txn = self.rng.weighted(&[40, 40, 10, 10, 0]) as u8;
        self.push(t1, s.idx, Ev::store_visit(k as u8, txn, CASH), 0);
        // A third answer the survey SMS with a score, one in five of them unhappy.
        let h = self.aside(s.idx, t1);
        if h.is_multiple_of(3) {
            let score = [0u8, 1, 2, 2, 3, 3, 3, 4, 4, 4][(h / 3 % 10) as usize];
            let at = t1 + (20 + (h >> 20) % 90) as i64 * MINUTE;
            let _ = self.push(at, s.idx, Ev::Reply { text: R_SCORE_1 + score }, 0);
        }
        if self.rng.chance(0.5) {
            let amount = self.rng.pick(&[2000u32, 3000, 5000, 10_000], 5000);
            let at = t1 + self.rng.range(1, 4) * MINUTE;
            self.push(at, s.idx, Ev::store_topup(amount, k as u8), 0);
        }
        let out = self.ordinary_cell(&s);
        let at = t1 + self.rng.range(20, 60) * MINUTE;
        self.push(at, s.idx, Ev::loc(out, HANDOVER), F_BUSY);
    }

    /// A trip abroad: airport in Beijing, attach on a visited network with its country, roaming
    /// usage and periodic updates, and the return if it falls inside the window.
    fn ep_roaming(&mut self, t0: Millis) {
        let s = if self.rng.chance(0.6) {
            self.pick(|s| s.active() && s.prefs & PF_TRAVEL != 0)
        } else {
            self.pick(Sub::active)
        };
        let i = s.idx;
        self.set_flag(i, F_BUSY);
        let home_airport = self.rng.pick(&self.m.world.airport, s.home);
        self.push(t0, i, Ev::loc(home_airport, ATTACH), 0);
        let u = self.local_usage(home_airport, 0, None);
        let at = t0 + self.rng.range(2, 30) * MINUTE;
        self.push(at, i, Ev::Usage(u), 0);
        let k = self.rng.below(self.m.world.foreign.len() as u64) as usize;
        let cells = self.m.world.foreign.get(k).cloned().unwrap_or_default();
        let (Some(&arrival), Some(&city)) = (cells.first(), cells.last()) else {
            return;
        };
        let t1 = t0 + self.rng.range(180, 300) * MINUTE;
        self.push(t1, i, Ev::loc(arrival, ATTACH), 0);
        // One traveller in three takes the day pack the welcome SMS offers, by reply.
        if self.aside(i, t1).is_multiple_of(3) {
            let _ = self.push(t1 + 2 * MINUTE, i, Ev::Reply { text: R_KTBY }, 0);
        }
        // A day pack on landing, then a call from home.
        let volume = self.rng.range(500, 20_000) as u32;
        let data = Usage::data(volume, arrival).scope(ROAM_INTL).charged(2500);
        let at = t1 + self.rng.range(5, 30) * MINUTE;
        self.push(at, i, Ev::Usage(data), 0);
        let duration = self.rng.range(60, 600) as u32;
        let charge = self.voice_charge(ROAM_INTL, MT, duration, false);
        let call = Usage::call(self.peer(true), duration, city).dir(MT).scope(ROAM_INTL).charged(charge);
        let at = t1 + self.rng.range(40, 180) * MINUTE;
        self.push(at, i, Ev::Usage(call), 0);
        let back = t1 + self.rng.range(20, 100) * HOUR;
        self.periodic_until(i, city, t1 + 30 * MINUTE, back, (60, 150), 40);
        self.push(back, i, Ev::loc(home_airport, ATTACH), F_BUSY);
    }

    /// While a weather alert is on, someone without the weather service goes from Beijing to the
    /// alert city in the daytime, stays a few hours or a night or so, and comes back; the
    /// background leaves them alone meanwhile.
    fn ep_weather_trip(&mut self, t0: Millis) {
        let cells = self.m.world.alert_city.clone();
        if cells.is_empty() || !self.m.cal.alert_on(t0) {
            return;
        }
        let s = self.pick(|s| s.active() && s.services & SV_WEATHER == 0);
        let i = s.idx;
        self.set_flag(i, F_BUSY);
        let from = self.ordinary_cell(&s);
        let trig = if self.rng.chance(0.5) { HANDOVER } else { PERIODIC };
        self.push(t0, i, Ev::loc(from, trig), 0);
        // By train or car: 40 minutes to two hours, arriving in the daytime with the alert still on.
        let mut t = t0 + self.rng.range(40, 120) * MINUTE;
        let mut cell = self.rng.pick(&cells, from);
        let trigger = if self.rng.chance(0.6) { ATTACH } else { HANDOVER };
        self.push(t, i, Ev::loc(cell, trigger), 0);
        // One in four takes the weather service the alert SMS offers.
        if self.aside(i, t).is_multiple_of(4) {
            let _ = self.push(t + 5 * MINUTE, i, Ev::Reply { text: R_TQ }, 0);
        }
        let volume = self.rng.range(1_000, 30_000) as u32;
        let at = t + self.rng.range(2, 20) * MINUTE;
        self.push(at, i, Ev::Usage(Usage::data(volume, cell).scope(ROAM_DOM)), 0);
        // A day trip, or a night or so away.
        let stay = if self.rng.chance(0.5) { self.rng.range(3 * 60, 8 * 60) } else { self.rng.range(14 * 60, 30 * 60) };
        let back = t + stay * MINUTE;
        for _ in 0..20 {
            t += self.rng.range(50, 180) * MINUTE;
            if t >= back - 10 * MINUTE {
                break;
            }
            let trigger = if self.rng.chance(0.25) {
                cell = self.rng.pick(&cells, cell);
                HANDOVER
            } else {
                PERIODIC
            };
            self.push(t, i, Ev::loc(cell, trigger), 0);
        }
        self.push(back, i, Ev::loc(s.home, ATTACH), F_BUSY);
    }

    /// One line of a churner's day: charged usage (local calls and data without a pack, 1 to 5
    /// CNY each) until their stop day; afterwards nearly nothing, the odd 10-fen SMS.
    fn ep_churn(&mut self, t0: Millis, day: u32, idx: u32) {
        let k = self.m.base.churners.len();
        if k == 0 {
            return;
        }
        let Some(&i) = self.m.base.churners.get(idx as usize % k) else {
            return;
        };
        let s = self.sub(i);
        let cell = self.cell_for(&s, t0);
        let stop = self.m.base.churn_stop(i);
        // The pack calls a churner about a week after they stop and, when nobody answers, sends
        // the retention offer two mornings later (the ninth day after the stop, mostly): one in
        // three takes it by reply that morning.
        if day == stop && (idx as usize) < k && self.aside(i, i64::from(stop)).is_multiple_of(3) {
            let at = self.day_start(i64::from(stop) + 9) + 9 * HOUR + 40 * MINUTE;
            let _ = self.push(at, i, Ev::Reply { text: R_BL }, 0);
        }
        if day < stop {
            let u = if self.rng.chance(0.4) {
                let duration = self.rng.range(10 * 60, 45 * 60) as u32;
                Usage::call(self.peer(true), duration, cell).charged(duration.div_ceil(60) * 10)
            } else {
                let volume = self.rng.range(10_000, 50_000) as u32;
                Usage::data(volume, cell).charged(volume / 100)
            };
            self.push(t0, i, Ev::Usage(u), 0);
        } else if (idx as usize) < k && self.rng.chance(0.1) {
            let sms = Usage::messages(SMS, self.peer(true), 1, cell).charged(10);
            self.push(t0, i, Ev::Usage(sms), 0);
        }
    }
}
