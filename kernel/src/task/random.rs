//! Kernel randomness for ASLR and handle-value masks: one SplitMix64 seeded from RDRAND (or the
//! TSC when the CPU has none), or from the command line's `seed=N` so a failing run can be
//! replayed with the same layouts and handle values.

use core::sync::atomic::{AtomicU64, Ordering};

static STATE: AtomicU64 = AtomicU64::new(0x005e_ed0f_2a7c_3e11);

/// Seeds the generator: `Some(seed)` from the command line, else RDRAND/TSC. Returns the seed.
pub fn init(seed: Option<u64>) -> u64 {
    let seed = seed.unwrap_or_else(|| {
        arch::cpu::rdrand()
            .unwrap_or_else(|| arch::cpu::rdtsc().wrapping_mul(0x9e37_79b9_7f4a_7c15))
    });
    STATE.store(seed, Ordering::SeqCst);
    seed
}

/// The next 64 random bits (SplitMix64 over a shared atomic state).
pub fn next_u64() -> u64 {
    let s = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::SeqCst)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A `vm::RandomSource` for one address space, seeded from the kernel generator.
pub fn aspace_rng() -> alloc::boxed::Box<dyn vm::RandomSource> {
    alloc::boxed::Box::new(vm::SplitMix64::new(next_u64()))
}
