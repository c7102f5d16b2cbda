//! Debug output and time.

use abi::syscall_numbers as nr;
use abi::ZxResult;

use crate::ok;
use crate::raw::{syscall0, syscall2, syscall3};

/// `zx_debug_write`: writes `bytes` to the kernel's debug log (serial).
pub fn debug_write(bytes: &[u8]) -> ZxResult {
    // SAFETY: the kernel reads `bytes.len()` bytes from a valid slice.
    ok(unsafe { syscall2(nr::ZX_SYS_DEBUG_WRITE, bytes.as_ptr() as usize, bytes.len()) })
}

/// `zx_ticks_get`: the current tick count (rax is the value, not a status).
pub fn ticks_get() -> i64 {
    // SAFETY: no arguments, no memory touched.
    unsafe { syscall0(nr::ZX_SYS_TICKS_GET) as i64 }
}

/// `zx_ticks_per_second`.
pub fn ticks_per_second() -> i64 {
    // SAFETY: no arguments, no memory touched.
    unsafe { syscall0(nr::ZX_SYS_TICKS_PER_SECOND) as i64 }
}

/// `zx_clock_get_monotonic`: nanoseconds since boot.
pub fn clock_get_monotonic() -> i64 {
    // SAFETY: no arguments, no memory touched.
    unsafe { syscall0(nr::ZX_SYS_CLOCK_GET_MONOTONIC) as i64 }
}

/// `zx_debug_kernel_stats`: the kernel's counters (indices in [`abi::kstats`]); the kernel also
/// checks every live address space's invariants (failures counted in
/// `stats[abi::kstats::INVARIANT_FAILURES]`).
pub fn debug_kernel_stats() -> ZxResult<[u64; abi::kstats::COUNT]> {
    let mut stats = [0u64; abi::kstats::COUNT];
    // SAFETY: the kernel writes at most `size_of_val(&stats)` bytes into `stats`.
    ok(unsafe {
        syscall2(
            nr::ZX_SYS_DEBUG_KERNEL_STATS,
            stats.as_mut_ptr() as usize,
            core::mem::size_of_val(&stats),
        )
    })?;
    Ok(stats)
}

/// [`debug_kernel_stats`] for comparisons with a baseline: the kernel heap's frames
/// (`HEAP_FRAMES`) counted with the free ones in `FREE_FRAMES`, since the heap may keep a few
/// partly used pages after the objects that grew it are gone (not a leak).
pub fn leak_check_stats() -> ZxResult<[u64; abi::kstats::COUNT]> {
    let mut stats = debug_kernel_stats()?;
    stats[abi::kstats::FREE_FRAMES] += stats[abi::kstats::HEAP_FRAMES];
    Ok(stats)
}

/// `zx_debug_irqoff_stats`: the longest interrupts-off stretch (ns) per syscall number and
/// kernel path (indices in [`abi::irqoff`]); `reset` zeroes them after the read.
pub fn debug_irqoff_stats(reset: bool) -> ZxResult<[u64; abi::irqoff::COUNT]> {
    let mut stats = [0u64; abi::irqoff::COUNT];
    let options = if reset {
        abi::irqoff::ZX_IRQOFF_RESET
    } else {
        0
    };
    // SAFETY: the kernel writes at most `size_of_val(&stats)` bytes into `stats`.
    ok(unsafe {
        syscall3(
            nr::ZX_SYS_DEBUG_IRQOFF_STATS,
            stats.as_mut_ptr() as usize,
            core::mem::size_of_val(&stats),
            options as usize,
        )
    })?;
    Ok(stats)
}

/// `zx_system_get_features(kind, *features)`: the feature bits of `kind`
/// (`abi::features::ZX_FEATURE_KIND_*`).
pub fn system_get_features(kind: u32) -> ZxResult<u32> {
    let mut features = 0u32;
    // SAFETY: the kernel writes one `u32` into `features`.
    ok(unsafe {
        syscall2(
            nr::ZX_SYS_SYSTEM_GET_FEATURES,
            kind as usize,
            &mut features as *mut u32 as usize,
        )
    })?;
    Ok(features)
}
