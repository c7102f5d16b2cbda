//! `zx_handle_close` / `duplicate` / `replace` (`zircon/kernel/lib/syscalls/handle_ops.cc`).
//!
//! The rules themselves (statuses and their order, what is consumed when) are
//! [`crate::handle::HandleTable`]'s; this layer adds the copy-out and its undo.

use abi::ZxResult;

use crate::handle::Handle;
use crate::object::Object;

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
    release(ctx, removed);
    Ok(())
}

/// Drops a handle taken out of the table, after the table's lock (see [`release_in_steps`]).
fn release(ctx: &mut dyn SyscallContext, removed: Option<Handle<Object>>) {
    if let Some(handle) = removed {
        release_in_steps(handle, &mut || ctx.preempt_point());
    }
}

/// Drops `handle`, taken out of a handle table, with no lock held. If it holds the last
/// reference to its object, the work of that object's end runs here in steps, `preempt`
/// between two, instead of all at once in its drop: a VMO's frames go back, a process that is
/// not running (a running one holds itself through its threads) is torn down. For a close, and
/// for the handle table of a process that dies (the kernel's `Process` teardown).
pub fn release_in_steps(handle: Handle<Object>, preempt: &mut dyn FnMut()) {
    // The last reference to a VMO: nobody else can see its pages.
    if let Some(vmo) = handle.object().as_vmo() {
        if alloc::sync::Arc::strong_count(&vmo) == 2 {
            let _ = super::vmo::decommit_in_steps(&mut *preempt, &vmo, 0, vmo.page_count());
        }
    }
    if let Some(process) = handle.object().as_process() {
        if alloc::sync::Arc::strong_count(&process) == 2 {
            process.teardown_in_steps(&mut *preempt);
        }
    }
    drop(handle);
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
    let (result, old) = with_table(ctx, |table| table.replace_keeping_old(handle, rights));
    release(ctx, old);
    let value = result?;
    if let Err(status) = out.write(ctx.user_memory(), &value) {
        remove_quietly(ctx, value);
        return Err(status);
    }
    Ok(())
}
