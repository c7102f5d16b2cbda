//! `zx_clock_t` ids (`zircon/types.h`).
//!
//! Recent Zircon defines MONOTONIC = 0 and BOOT = 1; the ids UTC = 1 and THREAD = 2 of older
//! releases are gone (UTC is a clock object now), so they are not offered here.

/// Monotonic time: nanoseconds since boot, paused while suspended.
pub const ZX_CLOCK_MONOTONIC: u32 = 0;
/// Boot time: nanoseconds since boot, including suspend.
pub const ZX_CLOCK_BOOT: u32 = 1;
