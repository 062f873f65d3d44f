//! The generator's random numbers: its own small generator rather than a crate's, because the
//! output of every seed must stay the same across releases (every test and benchmark is seeded
//! from it), and the shapes traffic needs (weighted choices, log-uniform sizes) are a few lines.

use crate::util::mix64;

/// splitmix64: tiny, fast, and its output is fixed forever, which determinism needs more than
/// statistical finesse.
#[derive(Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(mix64(seed ^ 0x5DEE_CE66_D1CE_4E5B))
    }

    /// Starts at exactly `state`: per-subscriber streams mix their own.
    pub(super) fn at(state: u64) -> Rng {
        Rng(state)
    }

    #[inline]
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (0 when n is 0).
    #[inline]
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..hi` (lo when the range is empty).
    #[inline]
    pub(super) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo { lo } else { lo + self.below((hi - lo) as u64) as i64 }
    }

    #[inline]
    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline]
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    #[inline]
    pub(super) fn weighted(&mut self, w: &[u32]) -> usize {
        let total: u64 = w.iter().map(|&x| u64::from(x)).sum();
        let mut r = self.below(total);
        for (k, &x) in w.iter().enumerate() {
            if r < u64::from(x) {
                return k;
            }
            r -= u64::from(x);
        }
        w.len().saturating_sub(1)
    }

    /// A random index into a table of `len` names (at most 256), drawn as [`Rng::pick`] draws.
    #[inline]
    pub(super) fn index(&mut self, len: usize) -> u8 {
        self.below(len as u64) as u8
    }

    /// A random element; callers only pass lists that are non-empty by construction.
    pub(super) fn pick<T: Copy>(&mut self, xs: &[T], fallback: T) -> T {
        if xs.is_empty() { fallback } else { xs[self.below(xs.len() as u64) as usize] }
    }

    /// Roughly log-uniform between lo and hi: durations, volumes and balances are heavy-tailed.
    #[inline]
    pub(super) fn log_range(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp()
    }
}
