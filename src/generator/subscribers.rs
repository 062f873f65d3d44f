//! The subscribers' profiles: brands, tiers, services, preferences, balances and home and work
//! cells, each a pure function of `(seed, index)` so that the event side can look anyone up
//! without holding a million profiles; and the subscriber reference lines.

use std::fmt::Write as _;

use chrono::{Datelike, Days, NaiveDate};

use super::model::Model;
use super::rng::Rng;
use super::world::ARTIST;
use crate::util::mix64;

const BRANDS: [&str; 3] = ["gotone", "mzone", "easyown"];
pub(super) const TIERS: [&str; 4] = ["high", "valuable", "sub", "negative"];
pub(super) const HIGH: u8 = 0;
pub(super) const SUBT: u8 = 2;
pub(super) const NEG: u8 = 3;
pub(super) const SERVICES: [&str; 5] = ["12593", "call_notify", "music_club", "weather", "data_pack"];
pub(super) const SV_12593: u8 = 1;
pub(super) const SV_CALL_NOTIFY: u8 = 2;
pub(super) const SV_MUSIC_CLUB: u8 = 4;
pub(super) const SV_WEATHER: u8 = 8;
pub(super) const SV_DATA_PACK: u8 = 16;
pub(super) const PREFS: [&str; 5] = ["music", "business_travel", "sports", "video", "shopping"];
pub(super) const PF_MUSIC: u8 = 1;
pub(super) const PF_TRAVEL: u8 = 2;
const STATUSES: [&str; 3] = ["active", "suspended", "pre_cancel"];
const ACTIVE: u8 = 0;

const MONTH_DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// A subscriber's profile: derived from `(seed, index)` whenever it is needed, never stored.
#[derive(Clone, Copy)]
pub(super) struct Sub {
    pub(super) idx: u32,
    pub(super) msisdn: u64,
    pub(super) brand: u8,
    pub(super) tier: u8,
    pub(super) arpu: u32,
    pub(super) join_back_days: u64,
    pub(super) birthday: (u32, u32),
    pub(super) corporate: bool,
    pub(super) foreign: bool,
    pub(super) employee: bool,
    pub(super) services: u8,
    /// Has 12593 but dials long distance without it.
    pub(super) ignores_12593: bool,
    /// 0 none, 1 all channels, 2 sms only.
    pub(super) dnd: u8,
    pub(super) status: u8,
    pub(super) prefs: u8,
    /// 0 sms, 1 call, 2 none.
    pub(super) channel_pref: u8,
    pub(super) balance0: i32,
    pub(super) home: u32,
    pub(super) work: u32,
    /// Usage fades in the second half of a multi-day window: churn-warning material.
    pub(super) fading: bool,
    /// Spends steadily, then stops (see [`Model::is_churner`]); episodes leave them alone.
    pub(super) churner: bool,
}

impl Sub {
    /// SubscriberRecord `i` of the model's base.
    pub(super) fn derive(m: &Model, i: u32) -> Sub {
        let mut r = Rng::at(mix64(m.seed ^ mix64(u64::from(i).wrapping_add(0xA076_1D64_78BD_642F))));
        let brand = r.weighted(&[35, 40, 25]) as u8;
        let mut tier = r.weighted(&[10, 65, 20, 5]) as u8;
        let mut arpu = match tier {
            HIGH => r.range(5000, 30_000),
            1 => r.range(2000, 5000),
            SUBT => r.range(1000, 2000),
            _ => r.range(300, 1000),
        } as u32;
        let join_back_days = 30 + r.below(365 * 18);
        let doy = r.below(365) as u32;
        let mut birthday = (12, 31);
        let mut acc = 0;
        for (mi, &len) in MONTH_DAYS.iter().enumerate() {
            if doy < acc + len {
                birthday = (mi as u32 + 1, doy - acc + 1);
                break;
            }
            acc += len;
        }
        let mut corporate = r.chance(0.08);
        let mut foreign = r.chance(0.01);
        let employee = r.chance(0.01);
        let prefs = {
            let mut p = 0u8;
            for (bit, prob) in [0.20, 0.15, 0.12, 0.18, 0.15].iter().enumerate() {
                if r.chance(*prob) {
                    p |= 1 << bit;
                }
            }
            p
        };
        let music_club_p = if prefs & PF_MUSIC != 0 { 0.15 } else { 0.025 };
        let mut services = 0u8;
        for (bit, prob) in [0.10, 0.25, music_club_p, 0.15, 0.30].iter().enumerate() {
            if r.chance(*prob) {
                services |= 1 << bit;
            }
        }
        let ignores_12593 = r.chance(0.3);
        let mut dnd = r.weighted(&[95, 3, 2]) as u8;
        let mut status = r.weighted(&[960, 25, 15]) as u8;
        let channel_pref = r.weighted(&[50, 10, 40]) as u8;
        let mut balance0 = if r.chance(0.03) {
            r.range(100, 1000)
        } else if tier == HIGH {
            r.log_range(2000.0, 40_000.0) as i64
        } else {
            r.log_range(500.0, 15_000.0) as i64
        } as i32;
        let home = r.pick(&m.world.residential, 0);
        let work = r.pick(&m.world.business, home);
        let mut fading = tier == HIGH && r.chance(0.05);
        let mut brand = brand;
        // A few guaranteed birthdays on every generated day, eligible for the greeting, so that
        // even a tiny run exercises the birthday rule.
        let guaranteed = (u64::from(i) < 3 * u64::from(m.cal.days)).then(|| m.cal.info.get((i % m.cal.days) as usize));
        if let Some(Some(d)) = guaranteed {
            birthday = (d.date.month(), d.date.day());
            brand = 0;
            corporate = false;
            foreign = false;
            dnd = 0;
        }
        // Churners: high value, active, contactable, and with credit enough for weeks of spending
        // (their usage must show in full, not be cut short by an empty prepaid account).
        let churner = m.base.is_churner(i);
        if churner {
            let h = mix64(m.seed ^ 0xC0DE ^ u64::from(i));
            tier = HIGH;
            arpu = 8000 + (h % 20_000) as u32;
            status = ACTIVE;
            dnd = 0;
            balance0 = 60_000 + ((h >> 20) % 100_000) as i32;
            fading = false;
        }
        Sub {
            idx: i,
            msisdn: m.base.msisdn(i),
            brand,
            tier,
            arpu,
            join_back_days,
            birthday,
            corporate,
            foreign,
            employee,
            services,
            ignores_12593,
            dnd,
            status,
            prefs,
            channel_pref,
            balance0,
            home,
            work,
            fading,
            churner,
        }
    }

    pub(super) fn active(&self) -> bool {
        self.status == ACTIVE
    }
}

/// Appends a JSON list of the names whose bit is set in `mask`.
pub(super) fn push_str_list(out: &mut String, names: &[&str], mask: u8) {
    out.push('[');
    let mut first = true;
    for (bit, name) in names.iter().enumerate() {
        if mask & (1 << bit) != 0 {
            if !first {
                out.push(',');
            }
            first = false;
            out.push('"');
            out.push_str(name);
            out.push('"');
        }
    }
    out.push(']');
}

/// Do-not-disturb as JSON: 0 off, 1 all channels, 2 SMS only.
pub(super) fn dnd_json(dnd: u8) -> &'static str {
    match dnd {
        1 => "true",
        2 => "[\"sms\"]",
        _ => "false",
    }
}

/// Subscriber `i`'s contract dates, from its own hash (outside the profile's random stream, so
/// the rest of the line is as before): days from the window's first day to the end of the
/// package (3 in 10 have one), the contract (1 in 5) and the handset lease (1 in 10), spread so
/// that each warning falls inside a window of a few days for some subscribers.
pub(super) fn contract_dates(m: &Model, i: u32) -> [Option<NaiveDate>; 3] {
    let h = mix64(m.seed ^ 0xDA7E ^ u64::from(i));
    let first = m.cal.info.first().map(|d| d.date).unwrap_or_default();
    let at = |has: bool, days: u64| has.then(|| first.checked_add_days(Days::new(days))).flatten();
    [
        at(h % 10 < 3, 1 + (h >> 8) % 60),
        at((h >> 16) % 10 < 2, 1 + (h >> 24) % 120),
        at((h >> 32) % 10 < 1, 1 + (h >> 40) % 90),
    ]
}

/// The end of subscriber `i`'s stay commitment (1 in 20 has one, 3 to 12 months out).
pub(super) fn stay_until(m: &Model, i: u32) -> Option<NaiveDate> {
    let h = mix64(m.seed ^ 0x57A1 ^ u64::from(i));
    let first = m.cal.info.first().map(|d| d.date).unwrap_or_default();
    h.is_multiple_of(20).then(|| first.checked_add_days(Days::new(90 + (h >> 8) % 270))).flatten()
}

/// Subscriber `i`'s preferences as a JSON list: the `prefs` bits, and for half the music lovers
/// the artist they follow (`artist:NAME`), in the record and in every profile update that sets
/// the list again (an update naming the list whole must not drop the artist).
pub(super) fn push_prefs(o: &mut String, m: &Model, i: u32, prefs: u8) {
    push_str_list(o, &PREFS, prefs);
    if prefs & PF_MUSIC != 0 && mix64(m.seed ^ 0xA275 ^ u64::from(i)).is_multiple_of(2) {
        o.pop();
        if prefs != 0 {
            o.push(',');
        }
        let _ = write!(o, "\"artist:{ARTIST}\"]");
    }
}

/// SubscriberRecord `i`'s reference line: the profile, the household (customer and account ids) and
/// the join date.
pub(super) fn subscriber_line(m: &Model, i: u32) -> String {
    let s = Sub::derive(m, i);
    // Households: an odd index may share its customer (and often the account) with the one before.
    let pair = mix64(m.seed ^ 0xFA31 ^ u64::from(i));
    let customer = if i % 2 == 1 && pair % 10 < 2 { i } else { i + 1 };
    let account = if customer == i && pair % 10 == 1 { i + 1 } else { customer };
    let first_day = m.cal.info.first().map(|d| d.date).unwrap_or_default();
    let join = first_day.checked_sub_days(Days::new(s.join_back_days)).unwrap_or(first_day);
    let mut o = String::with_capacity(360);
    let _ = write!(
        o,
        "{{\"msisdn\":\"{}\",\"customer_id\":\"C{:08}\",\"account_id\":\"A{:08}\",\"brand\":\"{}\",\"tier\":\"{}\",\"arpu_fen\":{},\"join_date\":\"{}\",\"birthday\":\"{:02}-{:02}\",\"corporate\":{},\"foreign\":{},\"employee\":{},\"services\":",
        s.msisdn,
        customer,
        account,
        BRANDS[s.brand as usize % 3],
        TIERS[s.tier as usize % 4],
        s.arpu,
        join.format("%Y-%m-%d"),
        s.birthday.0,
        s.birthday.1,
        s.corporate,
        s.foreign,
        s.employee,
    );
    push_str_list(&mut o, &SERVICES, s.services);
    o.push_str(",\"dnd\":");
    o.push_str(dnd_json(s.dnd));
    let _ = write!(o, ",\"status\":\"{}\",\"prefs\":", STATUSES[s.status as usize % 3]);
    push_prefs(&mut o, m, i, s.prefs);
    o.push_str(match s.channel_pref {
        0 => ",\"channel_pref\":\"sms\"",
        1 => ",\"channel_pref\":\"call\"",
        _ => ",\"channel_pref\":null",
    });
    let [package, contract, lease] = contract_dates(m, i);
    for (field, date) in [
        ("package_expires", package),
        ("contract_expires", contract),
        ("lease_expires", lease),
        ("stay_until", stay_until(m, i)),
    ] {
        if let Some(d) = date {
            let _ = write!(o, ",\"{field}\":\"{}\"", d.format("%Y-%m-%d"));
        }
    }
    o.push('}');
    o
}
