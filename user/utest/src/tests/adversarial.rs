//! Adversarial arguments at the exact edges: `offset + len` reaching exactly 2^64 (it wraps to 0)
//! and one page below it, for every VMAR call that takes an address range; lengths rounding to 0
//! and rounding up by one byte (op_range); the last page of a region; faults past the end of a VMO
//! that shrank under its mapping. Exact statuses, and nothing changes on error.

use abi::ops::*;
use abi::vm_options::*;
use abi::vmo_options::ZX_VMO_RESIZABLE;
use abi::Status;
use zx::probe::{probe_for_read, probe_for_write};
use zx::Vmo;

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    map_vmo_offset_at_the_top,
    map_vmar_offset_at_the_region_end,
    range_reaching_two_to_the_64,
    op_range_len_rounds_up,
    faults_past_a_shrunk_vmo,
);

/// `vmo_offset + len` = 2^64 exactly is OUT_OF_RANGE (it overflows); one page below it does not
/// overflow: past the VMO's end, BUFFER_TOO_SMALL without ALLOW_FAULTS, mapped with it.
fn map_vmo_offset_at_the_top(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RWS, 4)?;
    let v = vmo(1)?;
    let top = 0u64.wrapping_sub(PAGE as u64);
    for extra in [0, ZX_VM_ALLOW_FAULTS] {
        ensure_err!(
            r.map(RW | extra, 0, &v, top, PAGE),
            Status::ERR_OUT_OF_RANGE
        );
        ensure_err!(
            r.map(RW | extra, 0, &v, top - PAGE as u64, 2 * PAGE),
            Status::ERR_OUT_OF_RANGE
        );
    }
    ensure_err!(
        r.map(RW, 0, &v, top - PAGE as u64, PAGE),
        Status::ERR_BUFFER_TOO_SMALL
    );
    ensure!(check!(contents(&r)).0.is_empty());
    let a = check!(r.map(RW | ZX_VM_ALLOW_FAULTS, 0, &v, top - PAGE as u64, PAGE));
    ensure_eq!(check!(contents(&r)).0, [(a, PAGE, RW)]);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

/// SPECIFIC at the region's last page fits; at its end, or two pages from its last page, does
/// not (INVALID_ARGS); an offset so large that base + offset wraps is INVALID_ARGS too.
fn map_vmar_offset_at_the_region_end(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 4)?;
    let v = vmo(2)?;
    let e = Status::ERR_INVALID_ARGS;
    ensure_err!(r.map(RW | ZX_VM_SPECIFIC, 4 * PAGE, &v, 0, PAGE), e);
    ensure_err!(r.map(RW | ZX_VM_SPECIFIC, 3 * PAGE, &v, 0, 2 * PAGE), e);
    let wrap = 0usize.wrapping_sub(base);
    ensure_err!(r.map(RW | ZX_VM_SPECIFIC, wrap, &v, 0, PAGE), e);
    ensure_err!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, wrap, PAGE), e);
    ensure_err!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, 4 * PAGE, PAGE), e);
    let a = check!(r.map(RW | ZX_VM_SPECIFIC, 3 * PAGE, &v, 0, PAGE));
    ensure_eq!(a, base + 3 * PAGE);
    let (_c, cb) = check!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, 2 * PAGE, PAGE));
    ensure_eq!(cb, base + 2 * PAGE);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

/// unmap / protect / op_range over `[addr, addr + len)` with `addr + len` = 2^64 exactly (wraps)
/// and one page below (no wrap, but past the region): INVALID_ARGS for unmap and protect,
/// OUT_OF_RANGE for op_range; the mapping is untouched.
fn range_reaching_two_to_the_64(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 4)?;
    let v = vmo(4)?;
    check!(r.map(RW | ZX_VM_SPECIFIC, 0, &v, 0, 4 * PAGE));
    poke(base, 11);
    let before = check!(contents(&r));
    let exact = 0usize.wrapping_sub(base);
    for len in [exact, exact - PAGE] {
        // SAFETY: (whole block) every call fails.
        unsafe {
            ensure_err!(r.unmap(base, len), Status::ERR_INVALID_ARGS);
            ensure_err!(
                r.protect(ZX_VM_PERM_READ, base, len),
                Status::ERR_INVALID_ARGS
            );
            for op in [ZX_VMAR_OP_COMMIT, ZX_VMAR_OP_DECOMMIT, ZX_VMAR_OP_MAP_RANGE] {
                ensure_err!(r.op_range(op, base, len), Status::ERR_OUT_OF_RANGE);
            }
        }
    }
    ensure_eq!(check!(contents(&r)), before);
    ensure_eq!(peek(base), 11);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

/// op_range rounds `len` up to whole pages (COMMIT of PAGE + 1 bytes commits two pages); a `len`
/// rounding up to 0 is INVALID_ARGS.
fn op_range_len_rounds_up(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RW, 4)?;
    let v = vmo(4)?;
    check!(r.map(RW, 0, &v, 0, 4 * PAGE));
    // SAFETY: (whole block) COMMIT keeps contents; nothing refers to the region's memory.
    unsafe {
        check!(r.op_range(ZX_VMAR_OP_COMMIT, base, PAGE + 1));
        ensure_eq!(check!(v.info()).committed_bytes, 2 * PAGE as u64);
        ensure_err!(
            r.op_range(ZX_VMAR_OP_COMMIT, base, usize::MAX - PAGE + 2),
            Status::ERR_INVALID_ARGS
        );
        ensure_eq!(check!(v.info()).committed_bytes, 2 * PAGE as u64);
        check!(r.destroy());
    }
    Ok(())
}

/// A resizable VMO mapped with ALLOW_FAULTS shrinks under its mapping: the pages past the new
/// end fault with OUT_OF_RANGE (probes), `zx_process_read_memory` there is OUT_OF_RANGE, the pages
/// below stay; grown back, the pages read as zeros again (their old contents are gone).
fn faults_past_a_shrunk_vmo(ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4 * PAGE as u64, ZX_VMO_RESIZABLE));
    let a = check!(ctx.root.map(RW | ZX_VM_ALLOW_FAULTS, 0, &v, 0, 4 * PAGE));
    poke(a + 3 * PAGE, 33);
    poke(a + PAGE, 11);
    check!(v.set_size(2 * PAGE as u64));
    for off in [2 * PAGE, 3 * PAGE, 4 * PAGE - 1] {
        ensure_err!(probe_for_read(a + off), Status::ERR_OUT_OF_RANGE);
        ensure_err!(probe_for_write(a + off), Status::ERR_OUT_OF_RANGE);
    }
    let mut b = [0u8; 8];
    ensure_err!(
        ctx.process.read_memory(a + 3 * PAGE, &mut b),
        Status::ERR_OUT_OF_RANGE
    );
    check!(probe_for_write(a + PAGE));
    ensure_eq!(peek(a + PAGE), 11);
    check!(v.set_size(4 * PAGE as u64));
    check!(probe_for_read(a + 3 * PAGE));
    ensure_eq!(peek(a + 3 * PAGE), 0);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(a, 4 * PAGE) });
    Ok(())
}
