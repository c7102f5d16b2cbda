//! `zx_vmo_create` / `read` / `write` / `get_size` / `set_size` / `op_range` /
//! `replace_as_executable` (`zircon/kernel/lib/syscalls/vmo.cc`, `VmObjectDispatcher`).
//!
//! Sizes, page rounding, commit/decommit and resize semantics are `vm::Vmo`'s; this layer does
//! the handle lookups with the rights Zircon demands, the option check that belongs to the
//! dispatcher (discardable with resizable), the range check before any byte moves, and the
//! chunked copies between the VMO and user buffers.

use alloc::sync::Arc;
use alloc::vec;

use abi::handle::ZX_HANDLE_INVALID;
use abi::obj_type::ZX_OBJ_TYPE_VMO;
use abi::ops::*;
use abi::rights::{ZX_RIGHT_EXECUTE, ZX_RIGHT_READ, ZX_RIGHT_RESIZE, ZX_RIGHT_WRITE};
use abi::vmo_options::{ZX_VMO_DISCARDABLE, ZX_VMO_RESIZABLE};
use abi::{Status, ZxResult, PAGE_SIZE};
use vm::Vmo;

use super::{add_and_copy_out, lookup};
use crate::context::{with_table, SyscallContext};
use crate::object::Object;
use crate::user_ptr::{UserInBuffer, UserOut, UserOutBuffer};

/// Bytes moved per step between a VMO and a user buffer: one hold of the VMO lock on the direct
/// path, one kernel heap buffer on the path that resolves faults (see [`read`]).
pub const COPY_CHUNK: usize = 4 * PAGE_SIZE;

/// `zx_vmo_create(size, options, *out)`: unknown options, or DISCARDABLE with RESIZABLE:
/// `ZX_ERR_INVALID_ARGS`; a size that overflows when rounded up to pages: `ZX_ERR_OUT_OF_RANGE`.
/// The handle has the VMO default rights, plus `ZX_RIGHT_RESIZE` when resizable.
pub fn create(
    ctx: &mut dyn SyscallContext,
    size: u64,
    options: u32,
    out: UserOut<u32>,
) -> ZxResult {
    if options & ZX_VMO_DISCARDABLE != 0 && options & ZX_VMO_RESIZABLE != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let vmo = Vmo::create(ctx.phys_mem(), size, options)?;
    add_and_copy_out(ctx, Object::Vmo(vmo).into_default_handle(), out).map(drop)
}

/// `[offset, offset + len)` must lie inside the VMO: `ZX_ERR_OUT_OF_RANGE` (checked before any
/// user memory is touched, as `VmObject::ReadUser` does).
fn check_range(vmo: &Vmo, offset: u64, len: u64) -> ZxResult {
    match offset.checked_add(len) {
        Some(end) if end <= vmo.len_bytes() => Ok(()),
        _ => Err(Status::ERR_OUT_OF_RANGE),
    }
}

/// `zx_vmo_read(vmo, *buffer, offset, len)`: needs READ. Errors after the lookup:
/// `ZX_ERR_OUT_OF_RANGE` (range past the end), `ZX_ERR_INVALID_ARGS` (bad buffer, or a fault
/// while copying: bytes before the fault are copied, as in Zircon).
pub fn read(
    ctx: &mut dyn SyscallContext,
    vmo: u32,
    buffer: usize,
    offset: u64,
    len: usize,
) -> ZxResult {
    let (vmo, _) = lookup(ctx, vmo, ZX_RIGHT_READ, Object::as_vmo)?;
    check_range(&vmo, offset, len as u64)?;
    let user = UserOutBuffer::new(buffer, len);
    user.check(ctx.user_memory())?;
    // Fast path: straight from the VMO's frames into the buffer while its pages are present
    // (no fault is resolved under the VMO lock); the first fault hands the rest to the copy
    // through a kernel buffer, which resolves faults and reports bad buffers.
    let mut done = 0;
    while done < len {
        let n = (len - done).min(COPY_CHUNK);
        let mem = ctx.user_memory();
        let mut at = buffer + done;
        let copied = vmo.read_pages(offset + done as u64, n, &mut |frame, in_page, l| {
            let ok = match frame {
                Some(frame) => mem.frame_to_user_nofault(frame, in_page, at, l),
                None => mem.zeros_to_user_nofault(at, l),
            };
            at += l;
            ok
        })?;
        done += copied;
        if copied < n {
            break;
        }
        if done < len {
            ctx.preempt_point();
        }
    }
    if done == len {
        return Ok(());
    }
    let mut chunk = vec![0u8; (len - done).min(COPY_CHUNK)];
    while done < len {
        let n = (len - done).min(chunk.len());
        vmo.read(offset + done as u64, &mut chunk[..n])?;
        user.write_at(ctx.user_memory(), done, &chunk[..n])?;
        done += n;
        ctx.preempt_point();
    }
    Ok(())
}

/// `zx_vmo_write(vmo, *buffer, offset, len)`: needs WRITE. Same errors as [`read`], plus
/// `ZX_ERR_NO_MEMORY` when a page cannot be committed (earlier pages stay written).
pub fn write(
    ctx: &mut dyn SyscallContext,
    vmo: u32,
    buffer: usize,
    offset: u64,
    len: usize,
) -> ZxResult {
    let (vmo, _) = lookup(ctx, vmo, ZX_RIGHT_WRITE, Object::as_vmo)?;
    check_range(&vmo, offset, len as u64)?;
    let user = UserInBuffer::new(buffer, len);
    user.check(ctx.user_memory())?;
    // Fast path, as in `read`: straight from the buffer into the VMO's frames while its pages
    // are present, then the copy through a kernel buffer for the rest.
    let mut done = 0;
    while done < len {
        let n = (len - done).min(COPY_CHUNK);
        let mem = ctx.user_memory();
        let mut at = buffer + done;
        let copied = vmo.write_pages(offset + done as u64, n, &mut |frame, in_page, l| {
            let ok = mem.user_to_frame_nofault(at, frame, in_page, l);
            at += l;
            ok
        })?;
        done += copied;
        if copied < n {
            break;
        }
        if done < len {
            ctx.preempt_point();
        }
    }
    if done == len {
        return Ok(());
    }
    let mut chunk = vec![0u8; (len - done).min(COPY_CHUNK)];
    while done < len {
        let n = (len - done).min(chunk.len());
        user.read_at(ctx.user_memory(), done, &mut chunk[..n])?;
        vmo.write(offset + done as u64, &chunk[..n])?;
        done += n;
        ctx.preempt_point();
    }
    Ok(())
}

/// `zx_vmo_get_size(vmo, *size)`: no right needed ("anyone should be able to get the size").
pub fn get_size(ctx: &mut dyn SyscallContext, vmo: u32, out: UserOut<u64>) -> ZxResult {
    let (vmo, _) = lookup(ctx, vmo, 0, Object::as_vmo)?;
    out.write(ctx.user_memory(), &vmo.len_bytes())
}

/// `zx_vmo_set_size(vmo, size)`: needs WRITE (`ZX_ERR_ACCESS_DENIED`); a VMO created without
/// `ZX_VMO_RESIZABLE` is then `ZX_ERR_UNAVAILABLE`, and a resizable one through a handle without
/// RESIZE `ZX_ERR_ACCESS_DENIED`; size overflow `ZX_ERR_OUT_OF_RANGE`.
///
/// ZIRCON: `sys_vmo_set_size` looks the handle up with WRITE only and the VMO refuses a resize
/// when it is not resizable (core test `VmoTestCase.NoResize`: UNAVAILABLE through the default
/// handle of a non-resizable VMO, which lacks RESIZE); the RESIZE right is checked after that.
pub fn set_size(ctx: &mut dyn SyscallContext, vmo: u32, size: u64) -> ZxResult {
    let (vmo, rights) = lookup(ctx, vmo, ZX_RIGHT_WRITE, Object::as_vmo)?;
    if !vmo.is_resizable() {
        return Err(Status::ERR_UNAVAILABLE);
    }
    if rights & ZX_RIGHT_RESIZE == 0 {
        return Err(Status::ERR_ACCESS_DENIED);
    }
    // A shrink frees the cut pages in steps first (the resize then has little left to do).
    let page = PAGE_SIZE as u64;
    if vmo.is_resizable() {
        if let Some(new_end) = size.checked_add(page - 1).map(|e| e / page) {
            decommit_in_steps(ctx, &vmo, new_end, vmo.page_count())?;
        }
    }
    vmo.resize(size)
}

/// `zx_vmo_op_range(vmo, op, offset, size, *buffer, buffer_size)` (`VmObjectDispatcher::RangeOp`;
/// no op here uses the buffer):
/// - COMMIT, DECOMMIT, ZERO: need WRITE (`ZX_ERR_ACCESS_DENIED`); range past the end
///   `ZX_ERR_OUT_OF_RANGE`; COMMIT may fail with `ZX_ERR_NO_MEMORY` (earlier pages stay);
/// - DONT_NEED, ALWAYS_NEED: hints; range checked, nothing else to do (no reclamation here);
/// - LOCK, UNLOCK: `ZX_ERR_NOT_SUPPORTED` (no discardable reclamation);
/// - anything else: `ZX_ERR_INVALID_ARGS`.
pub fn op_range(
    ctx: &mut dyn SyscallContext,
    vmo: u32,
    op: u32,
    offset: u64,
    size: u64,
    _buffer: usize,
    _buffer_size: usize,
) -> ZxResult {
    let (vmo, rights) = lookup(ctx, vmo, 0, Object::as_vmo)?;
    let need_write = || {
        if rights & ZX_RIGHT_WRITE == 0 {
            Err(Status::ERR_ACCESS_DENIED)
        } else {
            Ok(())
        }
    };
    match op {
        ZX_VMO_OP_COMMIT => {
            need_write()?;
            commit_in_steps(ctx, &vmo, offset, size)
        }
        ZX_VMO_OP_DECOMMIT => {
            need_write()?;
            check_range(&vmo, offset, size)?;
            let page = PAGE_SIZE as u64;
            // ZIRCON: an unaligned DECOMMIT is INVALID_ARGS after the range check, even with
            // nothing committed (core test `VmoTestCase.DecommitMisaligned`): whole pages only,
            // so no byte outside the range is ever zeroed.
            if !offset.is_multiple_of(page) || !size.is_multiple_of(page) {
                return Err(Status::ERR_INVALID_ARGS);
            }
            decommit_in_steps(ctx, &vmo, offset / page, (offset + size).div_ceil(page))
        }
        ZX_VMO_OP_ZERO => {
            need_write()?;
            check_range(&vmo, offset, size)?;
            zero_range(ctx, &vmo, offset, size)
        }
        ZX_VMO_OP_DONT_NEED | ZX_VMO_OP_ALWAYS_NEED => check_range(&vmo, offset, size),
        // No VMO is ever discarded here, so locking against discarding is not supported
        // (Zircon's answer for a VMO that is not discardable).
        ZX_VMO_OP_LOCK | ZX_VMO_OP_TRY_LOCK | ZX_VMO_OP_UNLOCK => Err(Status::ERR_NOT_SUPPORTED),
        _ => Err(Status::ERR_INVALID_ARGS),
    }
}

/// Pages one step of a commit allocates and zeroes with interrupts off (a preemption point
/// follows each step).
pub const COMMIT_STEP_PAGES: u64 = 32;

/// Page-table entries (summed over the VMO's mappings) one step of a decommit may remove; a
/// step covers `max(1, this / (1 + mappings))` pages, at most [`DECOMMIT_STEP_MAX_PAGES`].
pub const DECOMMIT_STEP_ENTRIES: u64 = 2048;

/// The most pages one decommit step covers (frames freed per step).
pub const DECOMMIT_STEP_MAX_PAGES: u64 = 256;

/// COMMIT as steps of [`COMMIT_STEP_PAGES`] with a preemption point between two, so the
/// largest commit (all of memory, each frame zeroed) never keeps other threads off the CPU for
/// long. The range is checked first (`ZX_ERR_OUT_OF_RANGE` commits nothing); as in Zircon, other
/// threads may see the pages committed so far, a failure (`ZX_ERR_NO_MEMORY`, or
/// `ZX_ERR_OUT_OF_RANGE` when the VMO shrank meanwhile) leaves them committed.
fn commit_in_steps(ctx: &mut dyn SyscallContext, vmo: &Vmo, offset: u64, size: u64) -> ZxResult {
    check_range(vmo, offset, size)?;
    let page = PAGE_SIZE as u64;
    let end = (offset + size).div_ceil(page);
    let mut at = offset / page;
    while at < end {
        let step_end = end.min(at + COMMIT_STEP_PAGES);
        vmo.commit(at * page, (step_end - at) * page)?;
        at = step_end;
        if at < end {
            ctx.preempt_point();
        }
    }
    Ok(())
}

/// Decommits pages `[first, end)` (in range) as steps that start at the next committed page
/// (so the step count follows what is committed, not the size) and hold the VMO lock for at
/// most [`DECOMMIT_STEP_ENTRIES`] page-table removals, with a preemption point between two; a
/// VMO with more mappings than that goes page by page, each page's mappings over several steps
/// (`Vmo::decommit_page_in_steps`).
pub(crate) fn decommit_in_steps(
    ctx: &mut dyn SyscallContext,
    vmo: &Vmo,
    first: u64,
    end: u64,
) -> ZxResult {
    let page = PAGE_SIZE as u64;
    let mut at = first;
    while let Some(next) = vmo.next_committed(at, end) {
        let mappings = vmo.mapping_count() as u64;
        if mappings > DECOMMIT_STEP_ENTRIES {
            // Even one page is more entries than a step may remove: the page's mappings are
            // unmapped over several steps.
            vmo.decommit_page_in_steps(next, DECOMMIT_STEP_ENTRIES as usize, &mut || {
                ctx.preempt_point()
            });
            at = next + 1;
            ctx.preempt_point();
            continue;
        }
        let step = (DECOMMIT_STEP_ENTRIES / (1 + mappings)).clamp(1, DECOMMIT_STEP_MAX_PAGES);
        let step_end = end.min(next + step);
        vmo.decommit(next * page, (step_end - next) * page)?;
        at = step_end;
        ctx.preempt_point();
    }
    Ok(())
}

/// Zeroes `[offset, offset + size)` (in range): whole pages are decommitted (they read as zeros
/// and give their frames back); the partial pages at either end are written with zeros when
/// committed.
fn zero_range(ctx: &mut dyn SyscallContext, vmo: &Arc<Vmo>, offset: u64, size: u64) -> ZxResult {
    let page = PAGE_SIZE as u64;
    let end = offset + size;
    let first_full = offset.div_ceil(page) * page;
    let last_full = end / page * page;
    if first_full < last_full {
        decommit_in_steps(ctx, vmo, first_full / page, last_full / page)?;
    }
    let zeros = [0u8; PAGE_SIZE];
    let partial = |lo: u64, hi: u64| -> ZxResult {
        if lo < hi && vmo.frame_of(lo / page).is_some() {
            vmo.write(lo, &zeros[..(hi - lo) as usize])?;
        }
        Ok(())
    };
    if first_full >= last_full {
        // The range lies within one or two pages and covers none of them whole.
        let split = first_full.min(end);
        partial(offset, split)?;
        partial(split, end)
    } else {
        partial(offset, first_full)?;
        partial(last_full, end)
    }
}

/// `zx_vmo_replace_as_executable(vmo, vmex, *out)` (Zircon's order):
/// 1. `vmex` not `ZX_HANDLE_INVALID`: it must name a VMEX resource; this kernel has none, so a
///    bad value is `ZX_ERR_BAD_HANDLE` and any handle `ZX_ERR_WRONG_TYPE` — reported after step 2;
///    `ZX_HANDLE_INVALID` is the ambient permission, always granted here;
/// 2. `vmo` not a handle: `ZX_ERR_BAD_HANDLE` (nothing consumed); otherwise it is consumed from
///    here on, whatever happens;
/// 3. not a VMO: `ZX_ERR_BAD_HANDLE` (`vmo.cc` says BAD_HANDLE here, not WRONG_TYPE);
/// 4. the new handle has the old rights plus `ZX_RIGHT_EXECUTE`.
pub fn replace_as_executable(
    ctx: &mut dyn SyscallContext,
    vmo: u32,
    vmex: u32,
    out: UserOut<u32>,
) -> ZxResult {
    let (vmex_status, source) = with_table(ctx, |table| {
        let vmex_status = if vmex == ZX_HANDLE_INVALID {
            Ok(())
        } else {
            table.get(vmex).and(Err(Status::ERR_WRONG_TYPE))
        };
        (vmex_status, table.remove(vmo))
    });
    let source = source?;
    vmex_status?;
    if source.obj_type() != ZX_OBJ_TYPE_VMO {
        return Err(Status::ERR_BAD_HANDLE);
    }
    let new = source.dup(source.rights() | ZX_RIGHT_EXECUTE);
    drop(source);
    add_and_copy_out(ctx, new, out).map(drop)
}
