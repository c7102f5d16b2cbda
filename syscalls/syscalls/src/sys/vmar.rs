//! `zx_vmar_allocate` / `map` / `unmap` / `protect` / `destroy` / `op_range`
//! (`zircon/kernel/lib/syscalls/vmar.cc`).
//!
//! This layer only resolves the handles (BAD_HANDLE, WRONG_TYPE; no rights demanded at lookup)
//! and copies results out. Every option, right, alignment and range rule — including the rights
//! Zircon checks during the handle lookup, which the `vm` checks first — lives in
//! `vm::Vmar::{allocate, map, unmap, protect, destroy, op_range}`, which get the raw options and
//! the rights of the handles, so the status that wins when several apply is Zircon's.

use abi::ops::{ZX_VMAR_OP_COMMIT, ZX_VMAR_OP_MAP_RANGE};
use abi::rights::ZX_RIGHT_OP_CHILDREN;
use abi::vm_options::{ZX_VM_MAP_RANGE, ZX_VM_SPECIFIC_OVERWRITE};
use abi::{Status, ZxResult, PAGE_SIZE};
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
    // MAP_RANGE (not combined with SPECIFIC_OVERWRITE, which `vm` refuses) populates after the
    // map, in steps with preemption points, as `ZX_VMAR_OP_MAP_RANGE` does.
    let populate = options & ZX_VM_MAP_RANGE != 0 && options & ZX_VM_SPECIFIC_OVERWRITE == 0;
    let map_options = if populate {
        options & !ZX_VM_MAP_RANGE
    } else {
        options
    };
    let addr = vmar.vmar().map(
        map_options,
        vmar_offset,
        &vmo,
        vmo_offset,
        len,
        vmar_rights,
        vmo_rights,
    )?;
    if populate {
        let rounded = len.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        // Zircon destroys the new mapping when MAP_RANGE fails. Any other failure means another
        // thread changed the range between two steps (the mapping was already visible to it):
        // population is only an optimization, the map stands.
        if let Err(Status::ERR_NO_MEMORY) =
            populate_in_steps(ctx, vmar.vmar(), &vmo, vmo_offset, addr, rounded)
        {
            let _ = vmar.vmar().unmap(addr, rounded, ALL_RIGHTS);
            return Err(Status::ERR_NO_MEMORY);
        }
    }
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
    // Steps of UNMAP_STEP_CHILDREN children with preemption points between; each step checks
    // the whole remaining range first (an error changes nothing of that remainder).
    let mut at = addr;
    let mut rest = len;
    while let Some(next) = vmar
        .vmar()
        .unmap_step(at, rest, rights, UNMAP_STEP_CHILDREN)?
    {
        rest -= next - at;
        at = next;
        ctx.preempt_point();
    }
    Ok(())
}

/// Children (mappings or sub-regions) one step of an unmap removes with interrupts off.
pub const UNMAP_STEP_CHILDREN: usize = 128;

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
    // Destroy's own refusals first; then what is inside goes in steps of DESTROY_STEP_REGIONS
    // mappings or emptied sub-VMARs, at any depth, with preemption points between (other
    // threads may see the VMAR partly emptied, as a Zircon destroy in progress), and the
    // destroy removes the empty VMAR.
    if rights & ZX_RIGHT_OP_CHILDREN != 0 && !vmar.vmar().is_root() {
        while vmar.vmar().empty_step(DESTROY_STEP_REGIONS)? == DESTROY_STEP_REGIONS {
            ctx.preempt_point();
        }
    }
    vmar.vmar().destroy(rights)
}

/// Regions (mappings, or sub-VMARs once empty) one step of a destroy removes with interrupts
/// off.
pub const DESTROY_STEP_REGIONS: usize = 128;

/// Pages one step of a stepped `ZX_VMAR_OP_COMMIT` covers (each may be allocated and zeroed).
pub const OP_STEP_PAGES_COMMIT: usize = 32;
/// Page-table entries one step of a MAP_RANGE population may write.
pub const OP_STEP_PAGES_MAP: usize = 1024;

/// Populates the new mapping `[addr, addr + len)` of `vmo` (from `vmo_offset`) with the VMO's
/// committed pages: steps of [`OP_STEP_PAGES_MAP`] pages, each starting at the next committed
/// page (so the step count follows what is committed, not the size), with a preemption point
/// between two.
fn populate_in_steps(
    ctx: &mut dyn SyscallContext,
    vmar: &vm::Vmar,
    vmo: &vm::Vmo,
    vmo_offset: u64,
    addr: usize,
    len: usize,
) -> ZxResult {
    let page = PAGE_SIZE as u64;
    let first = vmo_offset / page;
    let end = first.saturating_add((len / PAGE_SIZE) as u64);
    let mut at = first;
    while let Some(next) = vmo.next_committed(at, end) {
        let step_end = end.min(next + OP_STEP_PAGES_MAP as u64);
        let va = addr + ((next - first) * page) as usize;
        let n = ((step_end - next) * page) as usize;
        vmar.op_range(ZX_VMAR_OP_MAP_RANGE, va, n, ALL_RIGHTS, 0)?;
        at = step_end;
        ctx.preempt_point();
    }
    Ok(())
}

/// The op over `[addr, addr + len)` in steps with a preemption point between two, when the
/// range passes the cheap checks (page-aligned, inside `vmar`): [`OP_STEP_PAGES_COMMIT`] pages
/// for COMMIT (each page may be allocated and zeroed), [`OP_STEP_PAGES_MAP`] for the others
/// (each step maps or decommits at most that many pages, and walks at most that many
/// mappings). A range that fails the checks is one call (which reports the error). The `vm`
/// checks each mapping as it reaches it (a gap is `ZX_ERR_BAD_STATE` there), so steps in
/// address order give the statuses one call gives; as in Zircon, work done before a failure
/// stays, and other threads may see it before the call returns.
fn op_in_steps(
    ctx: &mut dyn SyscallContext,
    vmar: &vm::Vmar,
    op: u32,
    addr: usize,
    len: usize,
    rights: u32,
) -> ZxResult {
    let step = if op == ZX_VMAR_OP_COMMIT {
        OP_STEP_PAGES_COMMIT
    } else {
        OP_STEP_PAGES_MAP
    } * PAGE_SIZE;
    let end = len
        .checked_next_multiple_of(PAGE_SIZE)
        .and_then(|l| addr.checked_add(l));
    let steppable = matches!(end, Some(e) if addr.is_multiple_of(PAGE_SIZE)
        && len != 0
        && addr >= vmar.base()
        && e <= vmar.base() + vmar.size());
    if !steppable {
        return vmar.op_range(op, addr, len, rights, 0);
    }
    let end = end.unwrap_or(addr);
    let mut at = addr;
    while at < end {
        let n = step.min(end - at);
        vmar.op_range(op, at, n, rights, 0)?;
        at += n;
        if at < end {
            ctx.preempt_point();
        }
    }
    Ok(())
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
    if buffer_len != 0 {
        return vmar.vmar().op_range(op, addr, len, rights, buffer_len);
    }
    op_in_steps(ctx, vmar.vmar(), op, addr, len, rights)
}
