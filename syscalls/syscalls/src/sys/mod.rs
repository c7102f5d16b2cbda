//! The `sys_*` handlers, one module per syscall family, and the helpers they share.
//!
//! Every handler follows Zircon's `zircon/kernel/lib/syscalls/*.cc` for its order of checks:
//! handle lookup (bad handle, then wrong type, then missing rights — or the rights first where
//! Zircon looks the handle up untyped), then the object's own checks (for VMARs and VMOs: the
//! `vm` crate, which gets the raw options and the handle rights), then the copies to user memory.
//! A result that cannot be copied out is undone (a created handle is removed again, a new VMAR
//! destroyed, a new mapping unmapped) and the copy's status (`ZX_ERR_INVALID_ARGS`) returned.

pub mod channel;
pub mod exception;
pub mod handle;
pub mod info;
pub mod misc;
pub mod task;
pub mod vmar;
pub mod vmo;

use abi::Status;

use crate::context::{with_table, SyscallContext};
use crate::object::{Object, ObjectHandle};
use crate::user_ptr::UserOut;

/// Typed handle lookup in the caller's table (Zircon's `GetDispatcherWithRights`):
/// `ZX_ERR_BAD_HANDLE`, then `ZX_ERR_WRONG_TYPE`, then `ZX_ERR_ACCESS_DENIED`. Returns the
/// object and the handle's rights.
pub(crate) fn lookup<T>(
    ctx: &mut dyn SyscallContext,
    value: u32,
    rights: u32,
    downcast: fn(&Object) -> Option<T>,
) -> Result<(T, u32), Status> {
    with_table(ctx, |table| table.get_typed(value, rights, downcast))
}

/// Untyped lookup with rights (Zircon's `GetDispatcherWithRights` on a generic dispatcher):
/// `ZX_ERR_BAD_HANDLE`, then `ZX_ERR_ACCESS_DENIED`.
pub(crate) fn lookup_any(
    ctx: &mut dyn SyscallContext,
    value: u32,
    rights: u32,
) -> Result<(Object, u32), Status> {
    with_table(ctx, |table| {
        table
            .get_with_rights(value, rights)
            .map(|handle| (handle.object().clone(), handle.rights()))
    })
}

/// Adds `handle` to the caller's table and writes its value to `out`. If the write fails the
/// handle is taken out again (and dropped after the table lock) and the write's status returned.
pub(crate) fn add_and_copy_out(
    ctx: &mut dyn SyscallContext,
    handle: ObjectHandle,
    out: UserOut<u32>,
) -> Result<u32, Status> {
    let value = with_table(ctx, |table| table.add(handle))?;
    if let Err(status) = out.write(ctx.user_memory(), &value) {
        remove_quietly(ctx, value);
        return Err(status);
    }
    Ok(value)
}

/// Takes `value` out of the caller's table, if it is still there, and drops it outside the lock.
pub(crate) fn remove_quietly(ctx: &mut dyn SyscallContext, value: u32) {
    let removed = with_table(ctx, |table| table.remove(value).ok());
    drop(removed);
}
