//! `zx_vmar_allocate` / `map` / `unmap` / `protect` / `destroy` / `op_range`
//! (`zircon/kernel/lib/syscalls/vmar.cc`).
//!
//! This layer only resolves the handles (BAD_HANDLE, WRONG_TYPE; no rights demanded at lookup)
//! and copies results out. Every option, right, alignment and range rule — including the rights
//! Zircon checks during the handle lookup, which the `vm` checks first — lives in
//! `vm::Vmar::{allocate, map, unmap, protect, destroy, op_range}`, which get the raw options and
//! the rights of the handles, so the status that wins when several apply is Zircon's.

use abi::ZxResult;
use vm::ALL_RIGHTS;

use super::{add_and_copy_out, lookup};
use crate::context::SyscallContext;
use crate::object::{Object, VmarObject};
use crate::user_ptr::UserOut;

/// `zx_vmar_allocate(parent, options, offset, size, *child_vmar, *child_addr)`.
///
/// The new handle gets the VMAR default rights plus READ / WRITE / EXECUTE per `ZX_VM_CAN_MAP_*`.
/// If either result cannot be copied out, the new VMAR is destroyed and its handle removed (as
/// Zircon's cleanup handler does) and `ZX_ERR_INVALID_ARGS` returned.
pub fn allocate(
    ctx: &mut dyn SyscallContext,
    parent: u32,
    options: u32,
    offset: usize,
    size: usize,
    child_out: UserOut<u32>,
    addr_out: UserOut<usize>,
) -> ZxResult {
    let (parent, rights) = lookup(ctx, parent, 0, Object::as_vmar)?;
    let (child, base) = parent.vmar().allocate(options, offset, size, rights)?;
    let child = VmarObject::new(child);
    let handle = Object::Vmar(child.clone()).into_default_handle();
    let copied = add_and_copy_out(ctx, handle, child_out).and_then(|value| {
        addr_out
            .write(ctx.user_memory(), &base)
            .inspect_err(|_| super::remove_quietly(ctx, value))
    });
    if let Err(status) = copied {
        // Nothing else can name the region yet: destroying it cannot fail.
        let _ = child.vmar().destroy(ALL_RIGHTS);
        return Err(status);
    }
    Ok(())
}

/// `zx_vmar_map(vmar, options, vmar_offset, vmo, vmo_offset, len, *mapped_addr)`.
///
/// If the address cannot be copied out the new mapping is unmapped (Zircon's cleanup handler)
/// and `ZX_ERR_INVALID_ARGS` returned; what `ZX_VM_SPECIFIC_OVERWRITE` replaced stays replaced,
/// as in Zircon.
#[allow(clippy::too_many_arguments)]
pub fn map(
    ctx: &mut dyn SyscallContext,
    vmar: u32,
    options: u32,
    vmar_offset: usize,
    vmo: u32,
    vmo_offset: u64,
    len: usize,
    addr_out: UserOut<usize>,
) -> ZxResult {
    let (vmar, vmar_rights) = lookup(ctx, vmar, 0, Object::as_vmar)?;
    let (vmo, vmo_rights) = lookup(ctx, vmo, 0, Object::as_vmo)?;
    let addr = vmar.vmar().map(
        options,
        vmar_offset,
        &vmo,
        vmo_offset,
        len,
        vmar_rights,
        vmo_rights,
    )?;
    if let Err(status) = addr_out.write(ctx.user_memory(), &addr) {
        // The mapping is a direct child of `vmar` at [addr, addr + len): this cannot fail.
        let _ = vmar.vmar().unmap(addr, len, ALL_RIGHTS);
        return Err(status);
    }
    Ok(())
}

/// `zx_vmar_unmap(vmar, addr, len)`.
pub fn unmap(ctx: &mut dyn SyscallContext, vmar: u32, addr: usize, len: usize) -> ZxResult {
    let (vmar, rights) = lookup(ctx, vmar, 0, Object::as_vmar)?;
    vmar.vmar().unmap(addr, len, rights)
}

/// `zx_vmar_protect(vmar, options, addr, len)`.
pub fn protect(
    ctx: &mut dyn SyscallContext,
    vmar: u32,
    options: u32,
    addr: usize,
    len: usize,
) -> ZxResult {
    let (vmar, rights) = lookup(ctx, vmar, 0, Object::as_vmar)?;
    vmar.vmar().protect(options, addr, len, rights)
}

/// `zx_vmar_destroy(vmar)`.
pub fn destroy(ctx: &mut dyn SyscallContext, vmar: u32) -> ZxResult {
    let (vmar, rights) = lookup(ctx, vmar, 0, Object::as_vmar)?;
    vmar.vmar().destroy(rights)
}

/// `zx_vmar_op_range(vmar, op, addr, len, *buffer, buffer_size)`.
///
/// No VMAR op takes a buffer: a non-null `buffer` (even with size 0) or a non-zero size is
/// `ZX_ERR_INVALID_ARGS` at the point the `vm` checks `buffer_len` (after the op and rights
/// checks), so it is passed as a non-zero length.
pub fn op_range(
    ctx: &mut dyn SyscallContext,
    vmar: u32,
    op: u32,
    addr: usize,
    len: usize,
    buffer: usize,
    buffer_size: usize,
) -> ZxResult {
    let (vmar, rights) = lookup(ctx, vmar, 0, Object::as_vmar)?;
    let buffer_len = if buffer != 0 {
        buffer_size.max(1)
    } else {
        buffer_size
    };
    vmar.vmar().op_range(op, addr, len, rights, buffer_len)
}
