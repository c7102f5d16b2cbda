//! Time: `zx_ticks_get` is the TSC, `zx_ticks_per_second` its rate measured against the PIT at
//! boot, and the monotonic clock is nanoseconds derived from the TSC (falling back to timer
//! ticks before calibration).

use core::sync::atomic::Ordering;

/// Raw ticks (`zx_ticks_get`).
pub fn ticks() -> i64 {
    arch::cpu::rdtsc() as i64
}

/// Ticks per second (`zx_ticks_per_second`); 0 before calibration.
pub fn ticks_per_second() -> i64 {
    arch::irq::tsc_per_second() as i64
}

/// Monotonic nanoseconds since boot (`zx_clock_get_monotonic`).
pub fn now_ns() -> u64 {
    let rate = arch::irq::tsc_per_second();
    if rate == 0 {
        let t = super::sched::tick_counter().load(Ordering::SeqCst);
        return t * (1_000_000_000 / arch::irq::TICK_HZ);
    }
    ((arch::cpu::rdtsc() as u128 * 1_000_000_000) / rate as u128) as u64
}
