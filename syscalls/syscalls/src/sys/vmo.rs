//! `zx_vmo_create` / `read` / `write` / `get_size` / `set_size` / `op_range` /
//! `replace_as_executable` / `create_child` (`zircon/kernel/lib/syscalls/vmo.cc`,
//! `VmObjectDispatcher`).
//!
//! Sizes, page rounding, commit/decommit and resize semantics are `vm::Vmo`'s; this layer does
//! the handle lookups with the rights Zircon demands, the option check that belongs to the
//! dispatcher (discardable with resizable), the range and alignment checks before any byte
//! moves, ZERO and the zeroing that follows a set_size or a content-size change, the lock
//! operations' state buffer, and the chunked copies between the VMO and user buffers.

use alloc::sync::Arc;
use alloc::vec;

use abi::handle::ZX_HANDLE_INVALID;
use abi::obj_type::ZX_OBJ_TYPE_VMO;
use abi::ops::*;
use abi::rights::{
    ZX_RIGHT_DUPLICATE, ZX_RIGHT_EXECUTE, ZX_RIGHT_GET_PROPERTY, ZX_RIGHT_READ, ZX_RIGHT_RESIZE,
    ZX_RIGHT_SET_PROPERTY, ZX_RIGHT_WRITE,
};
use abi::vmo_options::{
    ZX_VMO_CHILD_NO_WRITE, ZX_VMO_CHILD_RESIZABLE, ZX_VMO_CHILD_SNAPSHOT,
    ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE, ZX_VMO_DISCARDABLE, ZX_VMO_RESIZABLE,
};
use abi::{Status, ZxResult, PAGE_SIZE};
use vm::vmo::MAX_CHILD_SIZE;
use vm::Vmo;

use super::{add_and_copy_out, lookup};
use crate::context::{with_table, SyscallContext};
use crate::object::Object;
use crate::user_ptr::{UserInBuffer, UserMemory, UserOut, UserOutBuffer};

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
        Some(end) if end <= vmo.size() => Ok(()),
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
    let done = copy_direct(ctx, len, &mut |mem, done, n| {
        let mut at = buffer + done;
        vmo.read_pages(offset + done as u64, n, &mut |frame, in_page, l| {
            let ok = match frame {
                Some(frame) => mem.frame_to_user_nofault(frame, in_page, at, l),
                None => mem.zeros_to_user_nofault(at, l),
            };
            at += l;
            ok
        })
    })?;
    copy_buffered(ctx, done, len, &mut |mem, done, chunk| {
        vmo.read(offset + done as u64, chunk)?;
        user.write_at(mem, done, chunk)
    })
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
    // A page changing frame in steps (`ERR_SHOULD_WAIT`: a commit over zero-page entries or a
    // copy-on-write break in a VMO mapped in many places) is waited for by driving the change,
    // with preemption points, then the write starts again (rewriting the same bytes).
    waiting_out_frame_changes(ctx, &vmo, &mut |ctx| {
        let done = copy_direct(ctx, len, &mut |mem, done, n| {
            let mut at = buffer + done;
            vmo.write_pages(offset + done as u64, n, &mut |frame, in_page, l| {
                let ok = mem.user_to_frame_nofault(at, frame, in_page, l);
                at += l;
                ok
            })
        })?;
        copy_buffered(ctx, done, len, &mut |mem, done, chunk| {
            user.read_at(mem, done, chunk)?;
            vmo.write_or_wait(offset + done as u64, chunk)
        })
    })
}

/// Runs `op` until it returns anything but `ZX_ERR_SHOULD_WAIT`, which means a page of `vmo`
/// is changing frame in steps (`Vmo::finish_transition`): the change is driven to its end, one
/// step per hold of the VMO lock with a preemption point between two, before `op` runs again.
/// `op` must be repeatable.
pub(crate) fn waiting_out_frame_changes(
    ctx: &mut dyn SyscallContext,
    vmo: &Vmo,
    op: &mut dyn FnMut(&mut dyn SyscallContext) -> ZxResult,
) -> ZxResult {
    loop {
        match op(ctx) {
            Err(Status::ERR_SHOULD_WAIT) => {
                vmo.finish_transition(&mut || ctx.preempt_point());
                ctx.preempt_point();
            }
            r => return r,
        }
    }
}

/// One step of [`copy_direct`]: `(user memory, bytes done, bytes wanted)` -> bytes copied.
type DirectStep<'a> = dyn FnMut(&mut dyn UserMemory, usize, usize) -> ZxResult<usize> + 'a;

/// One step of [`copy_buffered`]: `(user memory, bytes done, the chunk to move)`.
type BufferedStep<'a> = dyn FnMut(&mut dyn UserMemory, usize, &mut [u8]) -> ZxResult + 'a;

/// The fast path of `zx_vmo_read` / `write`: `step(mem, done, n)` copies up to `n` bytes from
/// byte `done` straight between the VMO's frames and the buffer (no fault is resolved under the
/// VMO lock) and returns how many it copied. Chunks of [`COPY_CHUNK`] with a preemption point
/// between two; stops at the first short chunk (a page not present) and returns the bytes done.
fn copy_direct(
    ctx: &mut dyn SyscallContext,
    len: usize,
    step: &mut DirectStep<'_>,
) -> ZxResult<usize> {
    let mut done = 0;
    while done < len {
        let n = (len - done).min(COPY_CHUNK);
        let copied = step(ctx.user_memory(), done, n)?;
        done += copied;
        if copied < n {
            break;
        }
        if done < len {
            ctx.preempt_point();
        }
    }
    Ok(done)
}

/// The rest of a `zx_vmo_read` / `write` after [`copy_direct`] stopped at byte `done`: through
/// a kernel buffer, which resolves faults and reports bad buffers. `step(mem, done, chunk)`
/// moves one chunk; a preemption point follows each.
fn copy_buffered(
    ctx: &mut dyn SyscallContext,
    mut done: usize,
    len: usize,
    step: &mut BufferedStep<'_>,
) -> ZxResult {
    if done == len {
        return Ok(());
    }
    let mut chunk = vec![0u8; (len - done).min(COPY_CHUNK)];
    while done < len {
        let n = (len - done).min(chunk.len());
        step(ctx.user_memory(), done, &mut chunk[..n])?;
        done += n;
        ctx.preempt_point();
    }
    Ok(())
}

/// `zx_vmo_get_size(vmo, *size)`: no right needed ("anyone should be able to get the size").
pub fn get_size(ctx: &mut dyn SyscallContext, vmo: u32, out: UserOut<u64>) -> ZxResult {
    let (vmo, _) = lookup(ctx, vmo, 0, Object::as_vmo)?;
    out.write(ctx.user_memory(), &vmo.size())
}

/// `zx_vmo_set_size(vmo, size)`, in current Zircon's order (`sys_vmo_set_size`,
/// `VmObjectDispatcher::SetSize`, `VmObjectPaged::Resize`):
/// 1. the handle needs WRITE: `ZX_ERR_ACCESS_DENIED`;
/// 2. a resizable VMO also needs RESIZE: `ZX_ERR_ACCESS_DENIED`;
/// 3. `size` overflowing when rounded up to pages: `ZX_ERR_OUT_OF_RANGE`;
/// 4. a VMO created without `ZX_VMO_RESIZABLE`: `ZX_ERR_UNAVAILABLE`.
///
/// On success the content size becomes `size` and the bytes from `size` to the next page
/// boundary read as zeros.
pub fn set_size(ctx: &mut dyn SyscallContext, vmo: u32, size: u64) -> ZxResult {
    let (vmo, rights) = lookup(ctx, vmo, ZX_RIGHT_WRITE, Object::as_vmo)?;
    // ZIRCON: RESIZE is checked only for a resizable VMO; a non-resizable one (whose handles
    // never carry RESIZE) answers UNAVAILABLE, after the rounding check (`sys_vmo_set_size` in
    // zircon/kernel/lib/syscalls/vmo.cc, then `VmObjectDispatcher::SetSize`; core tests
    // `VmoTestCase.NoResize`, `ResizeRight`).
    if vmo.is_resizable() && rights & ZX_RIGHT_RESIZE == 0 {
        return Err(Status::ERR_ACCESS_DENIED);
    }
    let page = PAGE_SIZE as u64;
    let new_end = size
        .checked_add(page - 1)
        .map(|e| e / page)
        .ok_or(Status::ERR_OUT_OF_RANGE)?;
    if !vmo.is_resizable() {
        return Err(Status::ERR_UNAVAILABLE);
    }
    // A shrink frees the cut pages in steps first (the resize then has little left to do).
    decommit_in_steps(&mut || ctx.preempt_point(), &vmo, new_end, vmo.page_count())?;
    vmo.resize(size)?;
    let tail = new_end * page - size;
    if tail > 0 {
        // ZIRCON: the rest of the last page is zeroed after the resize; as in
        // `VmObjectDispatcher::SetSize`, a failure there (the VMO shrank meanwhile) does not
        // undo the resize.
        let _ = zero_range(ctx, &vmo, size, tail);
    }
    Ok(())
}

/// `zx_vmo_op_range(vmo, op, offset, size, *buffer, buffer_size)` (`VmObjectDispatcher::RangeOp`):
/// - COMMIT, DECOMMIT, ZERO: need WRITE (`ZX_ERR_ACCESS_DENIED`); range past the end or
///   overflowing `ZX_ERR_OUT_OF_RANGE`; COMMIT may fail with `ZX_ERR_NO_MEMORY` (earlier pages
///   stay);
/// - DECOMMIT: a zero `size` is OK and does nothing; otherwise an `offset` or `size` that is not
///   page-aligned is `ZX_ERR_INVALID_ARGS` and changes nothing;
/// - ZERO: any alignment; exactly the range reads as zeros afterwards, partial pages included
///   (pages it covers whole are decommitted);
/// - DONT_NEED, ALWAYS_NEED: hints; range checked, nothing else to do (no reclamation here);
/// - PREFETCH: needs READ; range checked (any alignment, zero length included), nothing else to
///   do (no compressed or paged-out pages here);
/// - CACHE_SYNC, CACHE_CLEAN, CACHE_CLEAN_INVALIDATE: need READ; CACHE_INVALIDATE:
///   `ZX_ERR_NOT_SUPPORTED` without the debugging switch, then needs WRITE; then a zero `size`
///   is `ZX_ERR_INVALID_ARGS`, a range past the end `ZX_ERR_OUT_OF_RANGE`. Nothing else to do:
///   x86_64 keeps caches coherent with memory and instruction fetch, and VMOs here are cached;
/// - LOCK, TRY_LOCK, UNLOCK: need READ or WRITE (`ZX_ERR_ACCESS_DENIED`); a VMO created
///   without `ZX_VMO_DISCARDABLE` `ZX_ERR_NOT_SUPPORTED`; a range other than the whole VMO
///   `ZX_ERR_OUT_OF_RANGE`; UNLOCK of an unlocked VMO `ZX_ERR_BAD_STATE`. Pages are never
///   discarded here, so TRY_LOCK always succeeds and LOCK reports nothing discarded. LOCK writes
///   `zx_vmo_lock_state_t` to the buffer: one under [`ZX_VMO_LOCK_STATE_SIZE`] bytes is
///   `ZX_ERR_INVALID_ARGS`, and any failure there takes the lock back;
/// - anything else: `ZX_ERR_INVALID_ARGS`. Ops other than LOCK ignore the buffer.
pub fn op_range(
    ctx: &mut dyn SyscallContext,
    vmo: u32,
    op: u32,
    offset: u64,
    size: u64,
    buffer: usize,
    buffer_size: usize,
) -> ZxResult {
    let (vmo, rights) = lookup(ctx, vmo, 0, Object::as_vmo)?;
    let need_write = || {
        if rights & ZX_RIGHT_WRITE == 0 {
            Err(Status::ERR_ACCESS_DENIED)
        } else {
            Ok(())
        }
    };
    let page = PAGE_SIZE as u64;
    match op {
        ZX_VMO_OP_COMMIT => {
            need_write()?;
            commit_in_steps(ctx, &vmo, offset, size)
        }
        ZX_VMO_OP_DECOMMIT => {
            need_write()?;
            check_range(&vmo, offset, size)?;
            // ZIRCON: an unaligned DECOMMIT is INVALID_ARGS after the range check, even with
            // nothing committed (core test `VmoTestCase.DecommitMisaligned`): whole pages only,
            // so no byte outside the range is ever zeroed. A zero length returns first
            // (`VmCowPages::DecommitRangeLocked`'s zero-length shortcut), at any offset in range.
            if size == 0 {
                return Ok(());
            }
            if !offset.is_multiple_of(page) || !size.is_multiple_of(page) {
                return Err(Status::ERR_INVALID_ARGS);
            }
            decommit_in_steps(
                &mut || ctx.preempt_point(),
                &vmo,
                offset / page,
                (offset + size) / page,
            )
        }
        ZX_VMO_OP_ZERO => {
            need_write()?;
            check_range(&vmo, offset, size)?;
            zero_range(ctx, &vmo, offset, size)
        }
        ZX_VMO_OP_DONT_NEED | ZX_VMO_OP_ALWAYS_NEED => check_range(&vmo, offset, size),
        ZX_VMO_OP_PREFETCH => {
            // ZIRCON: READ, then the range (core test `VmoTestCase.Prefetch`).
            if rights & ZX_RIGHT_READ == 0 {
                return Err(Status::ERR_ACCESS_DENIED);
            }
            check_range(&vmo, offset, size)
        }
        ZX_VMO_OP_CACHE_SYNC
        | ZX_VMO_OP_CACHE_CLEAN
        | ZX_VMO_OP_CACHE_CLEAN_INVALIDATE
        | ZX_VMO_OP_CACHE_INVALIDATE => cache_op(ctx, &vmo, rights, op, offset, size),
        ZX_VMO_OP_LOCK | ZX_VMO_OP_TRY_LOCK | ZX_VMO_OP_UNLOCK => {
            lock_op(ctx, &vmo, rights, op, offset, size, buffer, buffer_size)
        }
        _ => Err(Status::ERR_INVALID_ARGS),
    }
}

/// The cache ops: rights, then a zero size, then the range. Nothing else to do (see
/// [`op_range`]).
fn cache_op(
    ctx: &mut dyn SyscallContext,
    vmo: &Vmo,
    rights: u32,
    op: u32,
    offset: u64,
    size: u64,
) -> ZxResult {
    // ZIRCON: the rights of `VmObjectDispatcher::RangeOp`, then `VmObjectPaged::CacheOp`'s
    // checks (core tests `VmoTestCase.CacheOp`, `CacheOpOutOfRange`, `OpOutOfBounds`).
    let needed = if op == ZX_VMO_OP_CACHE_INVALIDATE {
        if !ctx.debugging_syscalls_enabled() {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        ZX_RIGHT_WRITE
    } else {
        ZX_RIGHT_READ
    };
    if rights & needed == 0 {
        return Err(Status::ERR_ACCESS_DENIED);
    }
    if size == 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    check_range(vmo, offset, size)
}

/// LOCK, TRY_LOCK and UNLOCK of a discardable VMO (see [`op_range`]).
#[allow(clippy::too_many_arguments)]
fn lock_op(
    ctx: &mut dyn SyscallContext,
    vmo: &Vmo,
    rights: u32,
    op: u32,
    offset: u64,
    size: u64,
    buffer: usize,
    buffer_size: usize,
) -> ZxResult {
    // ZIRCON: READ or WRITE suffices; then a non-discardable VMO is NOT_SUPPORTED and a partial
    // range OUT_OF_RANGE (`VmObjectDispatcher::RangeOp`, `VmObjectPaged::LockRange`; core tests
    // `VmoTestCase.LockUnlock`, `Discardable`, `OpOutOfBounds`).
    if rights & (ZX_RIGHT_READ | ZX_RIGHT_WRITE) == 0 {
        return Err(Status::ERR_ACCESS_DENIED);
    }
    match op {
        ZX_VMO_OP_UNLOCK => vmo.unlock_discardable(offset, size),
        ZX_VMO_OP_TRY_LOCK => vmo.lock_discardable(offset, size),
        _ => lock(ctx, vmo, offset, size, buffer, buffer_size),
    }
}

/// LOCK: takes the lock, then writes `zx_vmo_lock_state_t` (the whole VMO locked, nothing
/// discarded) to the buffer; a short or bad buffer gives the lock back.
fn lock(
    ctx: &mut dyn SyscallContext,
    vmo: &Vmo,
    offset: u64,
    size: u64,
    buffer: usize,
    buffer_size: usize,
) -> ZxResult {
    vmo.lock_discardable(offset, size)?;
    let written = if buffer_size < ZX_VMO_LOCK_STATE_SIZE {
        Err(Status::ERR_INVALID_ARGS)
    } else {
        let mut state = [0u8; ZX_VMO_LOCK_STATE_SIZE];
        state[..8].copy_from_slice(&offset.to_le_bytes());
        state[8..16].copy_from_slice(&size.to_le_bytes());
        UserOutBuffer::new(buffer, ZX_VMO_LOCK_STATE_SIZE).write_at(ctx.user_memory(), 0, &state)
    };
    if written.is_err() {
        // Just taken by this call, so it is there to give back.
        let _ = vmo.unlock_discardable(offset, size);
    }
    written
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
        waiting_out_frame_changes(ctx, vmo, &mut |_| {
            vmo.commit_or_wait(at * page, (step_end - at) * page)
        })?;
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
    preempt: &mut dyn FnMut(),
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
            vmo.decommit_page_in_steps(next, DECOMMIT_STEP_ENTRIES as usize, &mut *preempt)?;
            at = next + 1;
            preempt();
            continue;
        }
        let step = (DECOMMIT_STEP_ENTRIES / (1 + mappings)).clamp(1, DECOMMIT_STEP_MAX_PAGES);
        let step_end = end.min(next + step);
        vmo.decommit(next * page, (step_end - next) * page)?;
        at = step_end;
        preempt();
    }
    Ok(())
}

/// Zeroes `[offset, offset + size)` (in range; any alignment, as `VmObjectPaged::ZeroRange`):
/// whole pages are decommitted (they read as zeros and give their frames back); the partial
/// pages at either end are written with zeros when committed, their other bytes kept.
pub(crate) fn zero_range(
    ctx: &mut dyn SyscallContext,
    vmo: &Arc<Vmo>,
    offset: u64,
    size: u64,
) -> ZxResult {
    let page = PAGE_SIZE as u64;
    let end = offset + size;
    let first_full = offset.div_ceil(page) * page;
    let last_full = end / page * page;
    if first_full < last_full {
        decommit_in_steps(
            &mut || ctx.preempt_point(),
            vmo,
            first_full / page,
            last_full / page,
        )?;
    }
    let zeros = [0u8; PAGE_SIZE];
    // A page changing frame in steps is waited for with preemption points.
    let partial = |ctx: &mut dyn SyscallContext, lo: u64, hi: u64| -> ZxResult {
        if lo < hi && vmo.frame_of(lo / page).is_some() {
            waiting_out_frame_changes(ctx, vmo, &mut |_| {
                vmo.write_or_wait(lo, &zeros[..(hi - lo) as usize])
            })?;
        }
        Ok(())
    };
    if first_full >= last_full {
        // The range lies within one or two pages and covers none of them whole.
        let split = first_full.min(end);
        partial(ctx, offset, split)?;
        partial(ctx, split, end)
    } else {
        partial(ctx, offset, first_full)?;
        partial(ctx, last_full, end)
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

/// `zx_vmo_create_child(vmo, options, offset, size, *out)`, in Zircon's order
/// (`sys_vmo_create_child`):
/// 1. `size` overflowing when rounded up to pages, or above `vm::vmo::MAX_CHILD_SIZE`:
///    `ZX_ERR_OUT_OF_RANGE`;
/// 2. NO_WRITE with RESIZABLE: `ZX_ERR_INVALID_ARGS`;
/// 3. the handle: `ZX_ERR_BAD_HANDLE`, `ZX_ERR_WRONG_TYPE`, then `ZX_ERR_ACCESS_DENIED` without
///    DUPLICATE and READ;
/// 4. the child itself ([`Vmo::create_child`]: type flags, offset, slice window, resizable or
///    discardable parent).
///
/// The child's handle gets the parent handle's rights without RESIZE, plus RESIZE for a
/// RESIZABLE child, plus GET_PROPERTY and SET_PROPERTY; then NO_WRITE takes WRITE away, and
/// otherwise a snapshot gets WRITE and loses EXECUTE.
pub fn create_child(
    ctx: &mut dyn SyscallContext,
    vmo: u32,
    options: u32,
    offset: u64,
    size: u64,
    out: UserOut<u32>,
) -> ZxResult {
    let page = PAGE_SIZE as u64;
    match size.checked_add(page - 1) {
        Some(rounded) if rounded / page <= MAX_CHILD_SIZE / page => {}
        _ => return Err(Status::ERR_OUT_OF_RANGE),
    }
    let no_write = options & ZX_VMO_CHILD_NO_WRITE != 0;
    if no_write && options & ZX_VMO_CHILD_RESIZABLE != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let options = options & !ZX_VMO_CHILD_NO_WRITE;
    let (parent, in_rights) = lookup(ctx, vmo, ZX_RIGHT_DUPLICATE | ZX_RIGHT_READ, Object::as_vmo)?;
    let child = parent.create_child_in_steps(options, offset, size, &mut || ctx.preempt_point())?;
    // ZIRCON: the child takes the parent's name when the parent handle may read it
    // (`VmObjectDispatcher::CreateChild`'s `copy_name`: the handle's GET_PROPERTY right).
    if in_rights & ZX_RIGHT_GET_PROPERTY != 0 {
        child.set_name(&parent.name());
    }
    let mut rights = (in_rights & !ZX_RIGHT_RESIZE)
        | ZX_RIGHT_GET_PROPERTY
        | ZX_RIGHT_SET_PROPERTY
        | if options & ZX_VMO_CHILD_RESIZABLE != 0 {
            ZX_RIGHT_RESIZE
        } else {
            0
        };
    if no_write {
        rights &= !ZX_RIGHT_WRITE;
    } else if options & (ZX_VMO_CHILD_SNAPSHOT | ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE) != 0 {
        rights = (rights & !ZX_RIGHT_EXECUTE) | ZX_RIGHT_WRITE;
    }
    add_and_copy_out(ctx, Object::Vmo(child).into_handle(rights), out).map(drop)
}
