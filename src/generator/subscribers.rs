//! The subscribers: numbers, brands, tiers, services, preferences, balances and home and work
//! cells, each a pure function of `(seed, index)` so that the event side can look anyone up
//! without holding a million profiles; and the subscriber reference lines.

use std::fmt::Write as _;

use chrono::{Datelike, Days};

use super::Model;
use super::rng::Rng;
use crate::util::mix64;

/// Our number ranges.
const PREFIXES: [u64; 20] =
    [134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 178, 182, 183, 184, 187, 188, 198];
/// Numbers of other operators and provinces, for peers that are not our subscribers.
pub(super) const PEER_PREFIXES: [u64; 10] = [130, 131, 132, 133, 153, 155, 156, 177, 180, 189];

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
pub(super) const ACTIVE: u8 = 0;

/// Who is who in the base: subscriber numbers, the order of traffic ranks and the churners,
/// each a bijection of the index, so nothing per subscriber is stored.
pub(super) struct Base {
    seed: u64,
    /// The number of subscribers, the modulus of the bijections.
    n: u64,
    days: u32,
    msisdn_mul: u64,
    msisdn_add: u64,
    /// Affine permutation of subscriber indices, so that heavy users are scattered over the base.
    perm_a: u64,
    perm_b: u64,
    /// Churners are the indices whose image under `i -> (i * churn_a + churn_b) mod n` falls
    /// below `churners.len()`; `churners[j]` is the index mapped to `j`.
    churn_a: u64,
    churn_b: u64,
    pub(super) churners: Vec<u32>,
}

impl Base {
    /// `n` subscribers (at least 1) over a window of `days` days.
    pub(super) fn new(seed: u64, n: u32, days: u32) -> Base {
        // Coprime to 2 and 5, hence to the 20 x 10^8 number space.
        let mut mul = mix64(seed ^ 0x1357_9BDF) % 900_000_000 + 100_000_000;
        if mul.is_multiple_of(2) {
            mul += 1;
        }
        if mul.is_multiple_of(5) {
            mul += 2;
        }
        let nn = u64::from(n);
        let coprime = |salt: u64| {
            (0..64u64).map(|k| mix64(seed ^ salt ^ k) % nn).find(|&cand| cand > 0 && gcd(cand, nn) == 1).unwrap_or(1)
        };
        let perm_a = coprime(0xACE0_0000);
        // About 0.5 % of the base, at least 10 (but never more than a fifth of a tiny base).
        let churn_k = (nn / 200).max(10).min(nn / 5);
        let churn_a = coprime(0xC4A0_0000);
        let churn_b = mix64(seed ^ 0xC4B) % nn;
        let churn_inv = mod_inverse(churn_a, nn);
        let churners = (0..churn_k)
            .map(|j| ((u128::from((j + nn - churn_b) % nn) * u128::from(churn_inv)) % u128::from(nn)) as u32)
            .collect();
        Base {
            seed,
            n: nn,
            days,
            msisdn_mul: mul,
            msisdn_add: mix64(seed ^ 0x2468_ACE0) % (PREFIXES.len() as u64 * 100_000_000),
            perm_a,
            perm_b: mix64(seed ^ 0xB0B) % nn,
            churn_a,
            churn_b,
            churners,
        }
    }

    /// Subscriber numbers: an affine bijection over prefix x 8-digit body, so neighbouring
    /// indices get unrelated numbers and no two subscribers share one.
    pub(super) fn msisdn(&self, i: u32) -> u64 {
        let space = PREFIXES.len() as u128 * 100_000_000;
        let x = ((u128::from(i) * u128::from(self.msisdn_mul) + u128::from(self.msisdn_add)) % space) as u64;
        PREFIXES[(x / 100_000_000) as usize % PREFIXES.len()] * 100_000_000 + x % 100_000_000
    }

    /// The subscriber of traffic rank `rank` (rank 0 is the heaviest user).
    #[inline]
    pub(super) fn ranked(&self, rank: u64) -> u32 {
        ((u128::from(rank) * u128::from(self.perm_a) + u128::from(self.perm_b)) % u128::from(self.n)) as u32
    }

    /// A high-value subscriber who spends steadily, then goes almost silent from
    /// [`Base::churn_stop`] on: the churn-warning story.
    pub(super) fn is_churner(&self, i: u32) -> bool {
        let rank = (u128::from(i) * u128::from(self.churn_a) + u128::from(self.churn_b)) % u128::from(self.n);
        rank < self.churners.len() as u128
    }

    /// The day a churner stops spending: two weeks or so before the end of a window long enough
    /// for a 7-day drop against the 28 days before to show; never in shorter windows.
    pub(super) fn churn_stop(&self, i: u32) -> u32 {
        if self.days < 21 {
            return u32::MAX;
        }
        self.days - 14 + (mix64(self.seed ^ 0x5709 ^ u64::from(i)) % 4) as u32
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The inverse of `a` modulo `n` (`a` coprime to `n`; 0 when n is 1).
fn mod_inverse(a: u64, n: u64) -> u64 {
    let (mut r0, mut r1) = (i128::from(n), i128::from(a % n.max(1)));
    let (mut t0, mut t1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(i128::from(n.max(1))) as u64
}

const MONTH_DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

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
    o.push_str(match s.dnd {
        1 => ",\"dnd\":true",
        2 => ",\"dnd\":[\"sms\"]",
        _ => ",\"dnd\":false",
    });
    let _ = write!(o, ",\"status\":\"{}\",\"prefs\":", STATUSES[s.status as usize % 3]);
    push_str_list(&mut o, &PREFS, s.prefs);
    o.push_str(match s.channel_pref {
        0 => ",\"channel_pref\":\"sms\"}",
        1 => ",\"channel_pref\":\"call\"}",
        _ => ",\"channel_pref\":null}",
    });
    o
}
