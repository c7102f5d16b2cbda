//! `zx_debug_write` (`zircon/kernel/lib/syscalls/debug.cc`), `zx_system_get_features`
//! (`zircon/kernel/lib/syscalls/system.cc`), this kernel's `zx_debug_kernel_stats` and
//! `zx_debug_irqoff_stats`, and the clock calls (answered straight from the context; their value
//! is `rax`).

use alloc::vec;

use abi::ZxResult;

use crate::context::SyscallContext;
use crate::user_ptr::{UserInBuffer, UserOut, UserOutBuffer};

/// Most bytes one `zx_debug_write` writes; longer buffers are truncated, as in Zircon (whose
/// limit is 256; ours fits a long line of output).
pub const MAX_DEBUG_WRITE: usize = 4096;

/// `zx_ticks_get() -> zx_ticks_t`.
pub fn ticks_get(ctx: &mut dyn SyscallContext) -> i64 {
    ctx.ticks_get()
}

/// `zx_ticks_per_second() -> zx_ticks_t`.
pub fn ticks_per_second(ctx: &mut dyn SyscallContext) -> i64 {
    ctx.ticks_per_second()
}

/// `zx_clock_get_monotonic() -> zx_time_t`: nanoseconds since boot.
pub fn clock_get_monotonic(ctx: &mut dyn SyscallContext) -> i64 {
    ctx.clock_get_monotonic()
}

/// `zx_debug_write(*buffer, len)`: the first `min(len, MAX_DEBUG_WRITE)` bytes go to the debug
/// log; a bad buffer or a fault is `ZX_ERR_INVALID_ARGS` and nothing is written.
pub fn debug_write(ctx: &mut dyn SyscallContext, buffer: usize, len: usize) -> ZxResult {
    let len = len.min(MAX_DEBUG_WRITE);
    let mut bytes = vec![0u8; len];
    UserInBuffer::new(buffer, len).read_at(ctx.user_memory(), 0, &mut bytes)?;
    ctx.debug_write(&bytes);
    Ok(())
}

/// `zx_debug_kernel_stats(*buffer, buffer_size)`: writes the [`abi::kstats::COUNT`] counters as
/// native-endian `u64`s. The buffer is validated first (`ZX_ERR_INVALID_ARGS`: null, kernel
/// half, overflow, fault); shorter than the counters is `ZX_ERR_BUFFER_TOO_SMALL`.
pub fn debug_kernel_stats(ctx: &mut dyn SyscallContext, buffer: usize, len: usize) -> ZxResult {
    const BYTES: usize = abi::kstats::COUNT * 8;
    let out = UserOutBuffer::new(buffer, len);
    out.check(ctx.user_memory())?;
    if len < BYTES {
        return Err(abi::Status::ERR_BUFFER_TOO_SMALL);
    }
    let stats = ctx.kernel_stats()?;
    let mut bytes = [0u8; BYTES];
    for (chunk, v) in bytes.chunks_exact_mut(8).zip(stats) {
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    out.write_at(ctx.user_memory(), 0, &bytes)
}

/// `zx_debug_irqoff_stats(*buffer, buffer_size, options)`: writes the [`abi::irqoff::COUNT`]
/// longest interrupts-off stretches (ns) as native-endian `u64`s, then zeroes them when
/// `options` has `ZX_IRQOFF_RESET`. Buffer checks as [`debug_kernel_stats`]; unknown option
/// bits are `ZX_ERR_INVALID_ARGS`.
pub fn debug_irqoff_stats(
    ctx: &mut dyn SyscallContext,
    buffer: usize,
    len: usize,
    options: u32,
) -> ZxResult {
    use abi::irqoff::{COUNT, ZX_IRQOFF_RESET};
    const BYTES: usize = COUNT * 8;
    if options & !ZX_IRQOFF_RESET != 0 {
        return Err(abi::Status::ERR_INVALID_ARGS);
    }
    let out = UserOutBuffer::new(buffer, len);
    out.check(ctx.user_memory())?;
    if len < BYTES {
        return Err(abi::Status::ERR_BUFFER_TOO_SMALL);
    }
    let stats = ctx.irqoff_stats(options & ZX_IRQOFF_RESET != 0)?;
    let mut bytes = [0u8; BYTES];
    for (chunk, v) in bytes.chunks_exact_mut(8).zip(stats) {
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    out.write_at(ctx.user_memory(), 0, &bytes)
}

/// `zx_system_get_features(kind, *features)`: `ZX_FEATURE_KIND_VM` is `vm::ARCH_VM_FEATURES`
/// (no `ZX_VM_FEATURE_CAN_MAP_XOM`: x86_64 cannot map execute-only pages), and
/// `ZX_FEATURE_KIND_ADDRESS_TAGGING` is 0 (x86_64 has no top-byte-ignore); every other kind is
/// `ZX_ERR_NOT_SUPPORTED`, as Zircon answers a kind the platform does not offer. A bad
/// `features` pointer is `ZX_ERR_INVALID_ARGS`.
pub fn system_get_features(
    ctx: &mut dyn SyscallContext,
    kind: u32,
    features: UserOut<u32>,
) -> ZxResult {
    use abi::features::*;
    let value = match kind {
        ZX_FEATURE_KIND_VM => vm::ARCH_VM_FEATURES,
        ZX_FEATURE_KIND_ADDRESS_TAGGING => 0,
        _ => return Err(abi::Status::ERR_NOT_SUPPORTED),
    };
    features.write(ctx.user_memory(), &value)
}
