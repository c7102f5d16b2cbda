//! `zx_handle_close` / `duplicate` / `replace` (`zircon/kernel/lib/syscalls/handle_ops.cc`).
//!
//! The rules themselves (statuses and their order, what is consumed when) are
//! [`crate::handle::HandleTable`]'s; this layer adds the copy-out and its undo.

use abi::ZxResult;

use super::remove_quietly;
use crate::context::{with_table, SyscallContext};
use crate::user_ptr::UserOut;

/// `zx_handle_close(handle)`: `ZX_HANDLE_INVALID` is a no-op; otherwise `ZX_ERR_BAD_HANDLE` or
/// closed. The object is released after the table lock is dropped.
pub fn close(ctx: &mut dyn SyscallContext, handle: u32) -> ZxResult {
    let removed = with_table(ctx, |table| {
        if handle == abi::handle::ZX_HANDLE_INVALID {
            Ok(None)
        } else {
            table.remove(handle).map(Some)
        }
    })?;
    // The last reference to a VMO: its frames go back in steps (nobody else can see it).
    if let Some(vmo) = removed.as_ref().and_then(|h| h.object().as_vmo()) {
        if alloc::sync::Arc::strong_count(&vmo) == 2 {
            let _ = super::vmo::decommit_in_steps(ctx, &vmo, 0, vmo.page_count());
        }
    }
    // The last reference to a process that is not running (a running one holds itself through
    // its threads): its teardown runs here in steps instead of all at once in its drop.
    if let Some(process) = removed.as_ref().and_then(|h| h.object().as_process()) {
        if alloc::sync::Arc::strong_count(&process) == 2 {
            process.teardown_in_steps(&mut || ctx.preempt_point());
        }
    }
    drop(removed);
    Ok(())
}

/// `zx_handle_duplicate(handle, rights, *out)`. If `out` cannot be written the new handle is
/// closed again and `ZX_ERR_INVALID_ARGS` returned; the source is untouched.
pub fn duplicate(
    ctx: &mut dyn SyscallContext,
    handle: u32,
    rights: u32,
    out: UserOut<u32>,
) -> ZxResult {
    let value = with_table(ctx, |table| table.duplicate(handle, rights))?;
    if let Err(status) = out.write(ctx.user_memory(), &value) {
        remove_quietly(ctx, value);
        return Err(status);
    }
    Ok(())
}

/// `zx_handle_replace(handle, rights, *out)`. If `out` cannot be written the new handle is
/// closed and `ZX_ERR_INVALID_ARGS` returned: the old handle stays consumed, as in Zircon.
pub fn replace(
    ctx: &mut dyn SyscallContext,
    handle: u32,
    rights: u32,
    out: UserOut<u32>,
) -> ZxResult {
    // A handle closed for bad rights is dropped here, after the table's lock.
    let (value, closed) = with_table(ctx, |table| table.replace_keeping(handle, rights));
    drop(closed);
    let value = value?;
    if let Err(status) = out.write(ctx.user_memory(), &value) {
        remove_quietly(ctx, value);
        return Err(status);
    }
    Ok(())
}
