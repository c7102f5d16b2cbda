//! Randomness for address-space layout randomization (ASLR).
//!
//! This module owns the [`RandomSource`] trait the placement code draws from, a seedable
//! [`SplitMix64`] generator (so tests and a "fixed seed" boot option replay the same layout), and
//! [`uniform_below`], an exactly uniform draw from `[0, n)`. The kernel can implement
//! `RandomSource` over RDRAND/RDSEED or seed `SplitMix64` from them.

/// A source of 64-bit random values.
pub trait RandomSource: Send {
    /// The next random value.
    fn next_u64(&mut self) -> u64;
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seedable, passes BigCrush; not cryptographic.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator replaying the sequence of `seed`.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A uniformly distributed value in `[0, n)` (`0` when `n == 0`), without modulo bias (Lemire's
/// multiply-and-reject method).
pub fn uniform_below(rng: &mut dyn RandomSource, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut product = u128::from(rng.next_u64()) * u128::from(n);
    // The rejection threshold `2^64 mod n` is below n, so a low half >= n is always accepted:
    // the division that computes the threshold runs only in the rare case low < n (probability
    // n / 2^64), not on every draw. Same accept/reject decisions, so the same values.
    if (product as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (product as u64) < threshold {
            product = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (product >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_seed_replays() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn uniform_below_stays_in_range_and_covers_it() {
        let mut rng = SplitMix64::new(1);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let v = uniform_below(&mut rng, 7);
            seen[v as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
        assert_eq!(uniform_below(&mut rng, 0), 0);
        assert_eq!(uniform_below(&mut rng, 1), 0);
        assert!(uniform_below(&mut rng, u64::MAX) < u64::MAX);
    }
}
