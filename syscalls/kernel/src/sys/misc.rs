//! `zx_debug_write` (`zircon/kernel/lib/syscalls/debug.cc`). The clock calls need no decoding and
//! are answered by [`crate::dispatch`] straight from the context.

use alloc::vec;

use abi::ZxResult;

use crate::context::SyscallContext;
use crate::user_ptr::UserInBuffer;

/// Most bytes one `zx_debug_write` writes; longer buffers are truncated, as in Zircon (whose
/// limit is 256; ours fits a long line of output).
pub const MAX_DEBUG_WRITE: usize = 4096;

/// `zx_debug_write(*buffer, len)`: the first `min(len, MAX_DEBUG_WRITE)` bytes go to the debug
/// log; a bad buffer or a fault is `ZX_ERR_INVALID_ARGS` and nothing is written.
pub fn debug_write(ctx: &mut dyn SyscallContext, buffer: usize, len: usize) -> ZxResult {
    let len = len.min(MAX_DEBUG_WRITE);
    let mut bytes = vec![0u8; len];
    UserInBuffer::new(buffer, len).read_at(ctx.user_memory(), 0, &mut bytes)?;
    ctx.debug_write(&bytes);
    Ok(())
}
