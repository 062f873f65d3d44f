//! Background traffic: what one ordinary tick of the stream is. Mostly location updates and
//! CDRs following where people are at that hour, with top-ups by whoever runs low, IVR sessions
//! and CRM and profile updates at their rates; all of it dull on purpose, the noise the rules
//! must not fire on.

use super::records::{
    CH_STORE, COMPLAINT_TOPICS, CREDIT_REASONS, Crm, DATA, DISCONNECT_CHANNELS, DISCONNECT_REASONS, Ev, FAILURE_CODES,
    INTERNATIONAL, LOCAL, LONG_DISTANCE, MMS, MO, MT, ORDER_ITEMS, ProfileSet, R_BL, ROAM_DOM, ROAM_INTL, SMS, Usage,
    VOICE,
};
use super::stream::{Events, F_BUSY, F_HOLD, F_LD_MONTH, F_NO_TOPUP};
use super::subscribers::{HIGH, NEG, PF_TRAVEL, PREFS, SERVICES, SV_12593, SV_DATA_PACK, Sub, stay_until};
use super::world::STORES;
use crate::time::{MINUTE, Millis, SECOND};
use crate::util::{Msisdn, action_hash, mix64};

impl Events {
    /// One background tick: a single ordinary event, or the start of an IVR session (whose lines
    /// go through the heap; the tick itself pays for the first of them).
    pub(super) fn background(&mut self, t: Millis) -> Option<String> {
        // Line shares: location 40, usage 45, topup 5, ivr 5 (sessions of ~4 lines), crm 4, profile 1.
        let mut kind = self.rng.weighted(&[400, 450, 50, 12, 40, 10]);
        let s = self.draw(t);
        // A churner's profile stays as the story needs it (high tier, contactable).
        if kind == 5 && s.churner {
            kind = 0;
        }
        match kind {
            0 => Some(self.bg_location(&s, t)),
            1 => Some(self.bg_usage(&s, t)),
            2 => Some(self.bg_topup(t)),
            3 => {
                if self.ivr_session(&s, t) {
                    self.debt = self.debt.saturating_sub(1);
                    None
                } else {
                    Some(self.bg_location(&s, t))
                }
            }
            4 => Some(self.bg_crm(&s, t)),
            _ => Some(self.bg_profile(&s, t)),
        }
    }

    fn bg_location(&mut self, s: &Sub, t: Millis) -> String {
        let cell = self.cell_for(s, t);
        let trigger = self.rng.weighted(&[12, 30, 50, 8]) as u8;
        self.render(t, s, &Ev::loc(cell, trigger))
    }

    fn bg_usage(&mut self, s: &Sub, t: Millis) -> String {
        self.ld_last_month(s, t);
        let mut service = self.rng.weighted(&[35, 15, 1, 49]) as u8;
        // One subscriber in 40 stops sending SMS after the first week and another stops using
        // data: the silent-by-service story (rules/silent.yaml). Their traffic turns to calls.
        if service != VOICE && self.m.cal.day_of(t) >= 7 {
            match (mix64(u64::from(s.idx) ^ 0x0511_3E47) % 40, service) {
                (0, SMS) | (1, DATA) => service = VOICE,
                _ => {}
            }
        }
        let mut cell = self.cell_for(s, t);
        let travel = s.prefs & PF_TRAVEL != 0;
        let u = match service {
            VOICE => {
                let dir = self.rng.weighted(&[55, 45]) as u8;
                let scope = if travel {
                    self.rng.weighted(&[60, 22, 4, 14]) as u8
                } else {
                    self.rng.weighted(&[82, 12, 2, 4]) as u8
                };
                if scope == ROAM_DOM {
                    cell = self.rng.pick(&self.m.world.domestic, cell);
                }
                let duration = self.rng.log_range(8.0, 1800.0) as u32;
                let via = dir == MO
                    && matches!(scope, LONG_DISTANCE | ROAM_DOM)
                    && s.services & SV_12593 != 0
                    && !s.ignores_12593
                    && self.rng.chance(0.85);
                let charge = self.voice_charge(scope, dir, duration, via);
                let peer = self.peer(scope == LOCAL);
                Usage::call(peer, duration, cell).dir(dir).scope(scope).charged(charge).via_12593(via)
            }
            SMS | MMS => {
                let dir = self.rng.weighted(&[50, 50]) as u8;
                let scope = if self.rng.chance(0.03) { INTERNATIONAL } else { LOCAL };
                let count = if service == MMS { 1 } else { self.rng.weighted(&[0, 85, 10, 5]) as u8 };
                let unit = match (service, scope) {
                    (MMS, _) => 30,
                    (_, INTERNATIONAL) => 100,
                    _ => 10,
                };
                let charge = if dir == MO && self.rng.chance(0.6) { unit * u32::from(count) } else { 0 };
                let peer = self.peer(true);
                Usage::messages(service, peer, count, cell).dir(dir).scope(scope).charged(charge)
            }
            _ => {
                let volume = self.rng.log_range(20.0, 300_000.0) as u32;
                let charge = if s.services & SV_DATA_PACK != 0 || self.rng.chance(0.7) {
                    0
                } else {
                    (volume / 100).clamp(1, 500)
                };
                Usage::data(volume, cell).charged(charge)
            }
        };
        self.render(t, s, &Ev::Usage(u))
    }

    /// The tariff: fen for a call of `duration` seconds (a local outgoing call is free on half
    /// the plans).
    pub(super) fn voice_charge(&mut self, scope: u8, dir: u8, duration: u32, via: bool) -> u32 {
        let minutes = duration.div_ceil(60).max(1);
        let per_min = match (scope, dir) {
            (LOCAL, MO) => {
                if self.rng.chance(0.5) {
                    0
                } else {
                    10
                }
            }
            (LONG_DISTANCE, MO) => {
                if via {
                    10
                } else {
                    30
                }
            }
            (ROAM_DOM, _) => {
                if via {
                    25
                } else {
                    40
                }
            }
            (INTERNATIONAL, MO) => 300,
            (ROAM_INTL, MO) => 199,
            (ROAM_INTL, MT) => 99,
            _ => 0,
        };
        per_min * minutes
    }

    /// People top up when they run low: the lowest balance of a few candidates gets the top-up.
    fn bg_topup(&mut self, t: Millis) -> String {
        let mut best: Option<(i32, Sub)> = None;
        for _ in 0..8 {
            // Uniform, not skewed: heavy talkers do not top up in proportion to their traffic.
            let i = self.rng.below(u64::from(self.m.n)) as u32;
            let s = self.sub(i);
            if !s.active() || self.flag(s.idx) & (F_NO_TOPUP | F_HOLD | F_BUSY) != 0 {
                continue;
            }
            let b = self.balance_mut(&s).map_or(0, |b| *b);
            if best.as_ref().is_none_or(|(bb, _)| b < *bb) {
                best = Some((b, s));
            }
            if best.is_some() && self.rng.chance(0.4) {
                break;
            }
        }
        let Some((_, s)) = best else {
            let s = self.draw(t);
            return self.bg_location(&s, t);
        };
        let amount = self.rng.pick(&[1000u32, 2000, 3000, 3000, 5000, 5000, 5000, 10_000, 10_000, 20_000], 5000);
        let mut channel = self.rng.weighted(&[10, 40, 10, 15, 10, 15]) as u8;
        let hour = self.m.cal.hour_of(t);
        if channel == CH_STORE && !(9..21).contains(&hour) {
            channel = 1;
        }
        let store = self.rng.below(STORES.len() as u64) as u8;
        self.render(t, &s, &Ev::Topup { amount, channel, store })
    }

    /// A call to the hotline: enter, one to three menu choices, maybe an agent, hang up.
    /// Whether its first line fell inside the window.
    fn ivr_session(&mut self, s: &Sub, t0: Millis) -> bool {
        self.serial += 1;
        let session = self.serial;
        let mut t = t0;
        let mut pushed = self.push(t, s.idx, Ev::ivr_enter(session), 0);
        let mut node = [0u8; 3];
        let depth = self.rng.weighted(&[0, 35, 45, 20]);
        for d in 0..depth {
            node[d] =
                if d == 0 { self.rng.weighted(&[0, 30, 20, 20, 15, 15]) as u8 } else { self.rng.range(1, 5) as u8 };
            t += self.rng.range(3, 16) * SECOND;
            pushed |= self.push(t, s.idx, Ev::ivr_menu(session, node, d as u8 + 1), 0);
        }
        let agent = self.rng.chance(0.25);
        if agent {
            t += self.rng.range(2, 11) * SECOND;
            self.push(t, s.idx, Ev::ivr_agent(session, node, depth as u8), 0);
            t += self.rng.range(60, 600) * SECOND;
        } else {
            t += self.rng.range(5, 40) * SECOND;
        }
        self.push(t, s.idx, Ev::ivr_exit(session), 0);
        pushed
    }

    /// A CRM event: loyalty points, payments, orders, store visits, complaints, notices, faults,
    /// tier changes, credits, disconnect requests; the ones a person causes in office hours.
    fn bg_crm(&mut self, s: &Sub, t: Millis) -> String {
        let hour = self.m.cal.hour_of(t);
        let office = (8..20).contains(&hour);
        let store_hours = (9..21).contains(&hour);
        let mut ev = self.rng.weighted(&[26, 22, 10, 12, 7, 6, 5, 5, 3, 2, 4]);
        if (ev == 3 && !store_hours) || (matches!(ev, 5 | 9 | 10) && !office) || (ev == 8 && s.churner) {
            ev = 0;
        }
        let day = self.m.cal.day_of(t);
        let r = &mut self.rng;
        let crm = match ev {
            0 => {
                let first = r.chance(0.04);
                let delta = r.range(10, 500);
                let points = if first { delta } else { delta + r.range(100, 20_000) };
                Crm::PointsChanged { points, delta, first }
            }
            1 => {
                let amount = r.pick(&[2000i32, 3000, 5000, 5000, 10_000, 20_000], 5000);
                // Some GoTone accounts are postpaid with a bill left unpaid: the billing system
                // reports the arrears instead (no extra draw: the stream stays as it was).
                if s.brand == 0 && s.msisdn % 16 == 3 {
                    Crm::BillOverdue { amount: amount.saturating_mul(2).saturating_add(880), day }
                } else {
                    Crm::PaymentPosted { amount }
                }
            }
            2 => {
                self.serial += 1;
                Crm::OrderPlaced { order: self.serial, item: self.rng.index(ORDER_ITEMS.len()) }
            }
            3 => {
                let store = self.rng.below(STORES.len() as u64) as u8;
                let txn = self.rng.weighted(&[20, 25, 15, 10, 30]) as u8;
                let payment = self.rng.weighted(&[25, 20, 25, 20, 10]) as u8;
                Crm::StoreVisit { store, txn, payment }
            }
            4 => Crm::PointsExpiring { points: r.range(500, 30_000), day },
            5 => {
                self.serial += 1;
                let complaint = self.serial;
                let topic = self.rng.index(COMPLAINT_TOPICS.len());
                self.complaint_callback(s, t);
                Crm::ComplaintClosed { complaint, topic }
            }
            6 => Crm::ContractExpiring { day },
            7 => {
                let code = r.index(FAILURE_CODES.len());
                let cell = self.cell_for(s, t);
                // One failure in four needs a repair cut-over, which CRM announces an hour later
                // (chosen outside the random stream, so every other line stays where it was).
                if mix64(self.m.seed ^ 0xC07 ^ t as u64).is_multiple_of(4) {
                    self.push(t + 60 * MINUTE, s.idx, Ev::Crm(Crm::CutoverPlanned { cell }), 0);
                }
                Crm::ServiceFailure { code, cell }
            }
            8 => {
                let up = s.tier > HIGH && (s.tier == NEG || r.chance(0.5));
                let to = if up { s.tier - 1 } else { (s.tier + 1).min(NEG) };
                Crm::TierChanged { from: s.tier, to }
            }
            10 => {
                let amount = r.pick(&[500i32, 1000, 1000, 2000, 3000, 5000], 1000);
                let reason = r.index(CREDIT_REASONS.len());
                Crm::DiscountCredited { amount, reason }
            }
            _ => {
                let reason = r.index(DISCONNECT_REASONS.len());
                let channel = r.index(DISCONNECT_CHANNELS.len());
                self.retention_call(s, t, reason);
                Crm::DisconnectRequested { reason, channel }
            }
        };
        self.render(t, s, &Ev::Crm(crm))
    }

    /// The pack calls back 4 hours after a complaint is closed (the line about to be rendered at
    /// t); the call centre reports how that went, under the action id the engine will give the
    /// call-back.
    fn complaint_callback(&mut self, s: &Sub, t: Millis) {
        let line_id = format!("e{:010}", self.emitted + 1);
        let trigger_ts = t - t.rem_euclid(SECOND);
        let due = trigger_ts + 4 * 60 * MINUTE;
        let msisdn = Msisdn::parse(&s.msisdn.to_string()).unwrap_or(Msisdn::from_raw(0));
        let action = action_hash("complaint_callback", msisdn, "crm", &line_id, Some(due));
        let status = self.rng.weighted(&[70, 20, 10]) as u8;
        let at = due + self.rng.range(2, 90) * MINUTE;
        self.push(at, s.idx, Ev::CallResult { action, status }, 0);
    }

    /// The 12593 last-calendar-month story (rules/marketing.yaml `ip_12593_last_calendar_month`):
    /// one subscriber in 120 without 12593, seen on the first day of a month the window has a
    /// next month for, makes three long-distance calls that day and one more on the second day
    /// of the next month — when the rolling 30 days no longer hold the three. No random draws:
    /// the rest of the stream is unchanged.
    fn ld_last_month(&mut self, s: &Sub, t: Millis) {
        use chrono::Datelike;
        const HOUR: Millis = 60 * MINUTE;
        const DAY: Millis = 24 * HOUR;
        let cal = &self.m.cal;
        let (start, day) = (cal.start, cal.day_of(t));
        let Some(info) = cal.info.get(day) else { return };
        if info.date.day() != 1 || s.services & SV_12593 != 0 || self.flag(s.idx) & F_LD_MONTH != 0 {
            return;
        }
        if !mix64(u64::from(s.idx) ^ 0x1259_3A5C).is_multiple_of(120) {
            return;
        }
        let next = (day + 1..cal.info.len()).find(|d| cal.info[*d].date.day() == 2 && *d > day + 20);
        let Some(next) = next else { return };
        self.set_flag(s.idx, F_LD_MONTH);
        let cell = self.cell_for(s, t);
        let peer = 13_900_000_000 + mix64(u64::from(s.idx)) % 99_999_999;
        let call = |minutes: u32| Usage::call(peer, minutes * 60, cell).scope(LONG_DISTANCE).charged(minutes * 30);
        let day_start = start + day as i64 * DAY;
        for h in [11, 15, 19] {
            self.push(day_start + h * HOUR, s.idx, Ev::Usage(call(4)), 0);
        }
        self.push(start + next as i64 * DAY + 10 * HOUR, s.idx, Ev::Usage(call(6)), 0);
    }

    /// The pack's retention journey calls whoever asks to leave (requests made at night in the
    /// morning, from 08:00); the call centre reports how the call went, and some who refuse
    /// cancel their number a few days later.
    fn retention_call(&mut self, s: &Sub, t: Millis, reason: u8) {
        const HOUR: Millis = 60 * MINUTE;
        let line_id = format!("e{:010}", self.emitted + 1);
        let trigger_ts = t - t.rem_euclid(SECOND);
        let local_hour = (trigger_ts + 8 * HOUR).div_euclid(HOUR).rem_euclid(24);
        let called = match local_hour {
            8..=20 => trigger_ts,
            h => trigger_ts + ((32 - h) % 24) * HOUR - (trigger_ts + 8 * HOUR).rem_euclid(HOUR),
        };
        let msisdn = Msisdn::parse(&s.msisdn.to_string()).unwrap_or(Msisdn::from_raw(0));
        let action = action_hash("retention_disconnect.call", msisdn, "crm", &line_id, None);
        let status = self.rng.weighted(&[40, 35, 25]) as u8;
        let at = called + self.rng.range(5, 120) * MINUTE;
        self.push(at, s.idx, Ev::RetentionResult { action, status, reason }, 0);
        // Outside the random stream (so every other line stays where it was): a subscriber under
        // a stay commitment goes pre_cancel minutes after asking to leave, which withdraws the
        // reward; one answered call in three wins a 12-month commitment.
        if stay_until(&self.m, s.idx).is_some() {
            self.push(trigger_ts + 5 * MINUTE, s.idx, Ev::Profile(ProfileSet::PreCancel), 0);
        } else if status == 0 && mix64(self.m.seed ^ 0x57A7 ^ u64::from(s.idx)).is_multiple_of(3) {
            self.push(at + 30 * MINUTE, s.idx, Ev::Crm(Crm::StayCommitment { months: 12 }), 0);
            let date = self
                .m
                .cal
                .info
                .get(self.m.cal.day_of(at))
                .and_then(|d| d.date.checked_add_months(chrono::Months::new(12)));
            if let Some(date) = date {
                self.push(at + 31 * MINUTE, s.idx, Ev::Profile(ProfileSet::StayUntil(date)), 0);
            }
        }
        // Nobody answered: the journey's offer goes the next morning at 09:00, and one in three
        // takes it by reply within the hour or so.
        if status == 1 && mix64(self.m.seed ^ 0xB1B1 ^ action).is_multiple_of(3) {
            let day = self.m.cal.day_of(at) as i64;
            let nine = self.day_start(day) + 9 * HOUR;
            let offer = if at < nine { nine } else { nine + 24 * HOUR };
            let _ = self.push(offer + (20 + (action >> 8) % 60) as i64 * MINUTE, s.idx, Ev::Reply { text: R_BL }, 0);
        }
        if status == 2 && self.rng.chance(0.5) {
            let gone = at + self.rng.range(2 * 24 * 60, 5 * 24 * 60) * MINUTE;
            self.push(gone, s.idx, Ev::Profile(ProfileSet::Cancelled), 0);
        }
    }

    /// A profile update: a service subscribed or dropped, do-not-disturb, a tier, a preference.
    fn bg_profile(&mut self, s: &Sub, t: Millis) -> String {
        let what = self.rng.weighted(&[45, 15, 12, 5, 8, 10, 5]);
        let set = match what {
            0 | 1 => {
                let bit = 1u8 << self.rng.below(SERVICES.len() as u64);
                ProfileSet::Services(if what == 0 { s.services | bit } else { s.services & !bit })
            }
            2 => ProfileSet::Dnd(1),
            3 => ProfileSet::Dnd(2),
            4 => ProfileSet::Dnd(0),
            5 => ProfileSet::Tier(if s.tier == HIGH { 1 } else { s.tier - 1 }),
            _ => {
                let bit = 1u8 << self.rng.below(PREFS.len() as u64);
                ProfileSet::Prefs(s.prefs | bit)
            }
        };
        self.render(t, s, &Ev::Profile(set))
    }
}
