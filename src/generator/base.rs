//! The subscriber base as numbers: who has which msisdn, which traffic rank and who churns.
//! Each is a bijection of the subscriber index computed from the seed, so nothing is stored per
//! subscriber and no two subscribers ever share a number.

use crate::util::mix64;

/// Our number ranges.
const PREFIXES: [u64; 20] =
    [134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 178, 182, 183, 184, 187, 188, 198];
/// Numbers of other operators and provinces, for peers that are not our subscribers.
pub(super) const PEER_PREFIXES: [u64; 10] = [130, 131, 132, 133, 153, 155, 156, 177, 180, 189];

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

    /// SubscriberRecord numbers: an affine bijection over prefix x 8-digit body, so neighbouring
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
