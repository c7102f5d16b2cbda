//! `zx_vmar_op_range`, statement by statement of vmar.fidl beyond `vmar::op_range*`: every op
//! (COMMIT, DECOMMIT — also under its deprecated ZX_VMO_OP_DECOMMIT name —, MAP_RANGE,
//! DONT_NEED, ALWAYS_NEED), the empty-buffer rule, sub-regions (COMMIT / DECOMMIT refuse them,
//! the others need ZX_RIGHT_OP_CHILDREN), WRITE on the VMAR handle and on the VMO handle used
//! at map time, bad / closed / wrong-type handles and overflow.

use abi::ops::*;
use abi::rights::*;
use abi::syscall_numbers as nr;
use abi::vm_options::*;
use abi::Status;
use zx::raw::syscall6;

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    every_op_succeeds,
    deprecated_vmo_decommit_name,
    buffer_must_be_empty,
    subregions,
    write_rights,
    handles,
    overflow_out_of_range,
);

fn every_op_succeeds(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 4)?;
    let v = vmo(4)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 4 * PAGE));
    check!(v.write(&7u64.to_le_bytes(), PAGE as u64));
    // SAFETY: (whole block) no Rust reference relies on the region's contents.
    unsafe {
        check!(r.op_range(ZX_VMAR_OP_MAP_RANGE, base, 4 * PAGE));
        check!(r.op_range(ZX_VMAR_OP_DONT_NEED, base, 4 * PAGE));
        check!(r.op_range(ZX_VMAR_OP_ALWAYS_NEED, base, 4 * PAGE));
        // None of the three commits or discards anything.
        ensure_eq!(check!(v.info()).committed_bytes, PAGE as u64);
        ensure_eq!(peek(base + PAGE), 7);
        check!(r.op_range(ZX_VMAR_OP_COMMIT, base + 2 * PAGE, 2 * PAGE));
        ensure_eq!(check!(v.info()).committed_bytes, 3 * PAGE as u64);
        check!(r.op_range(ZX_VMAR_OP_DECOMMIT, base, 4 * PAGE));
        ensure_eq!(check!(v.info()).committed_bytes, 0);
        ensure_eq!(peek(base + PAGE), 0);
        check!(r.destroy());
    }
    Ok(())
}

fn deprecated_vmo_decommit_name(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    poke(addr, 1);
    // SAFETY: (whole block) nothing relies on the page's contents.
    unsafe {
        check!(ctx.root.op_range(ZX_VMO_OP_DECOMMIT, addr, PAGE));
        ensure_eq!(check!(v.info()).committed_bytes, 0);
        check!(ctx.root.unmap(addr, PAGE));
    }
    Ok(())
}

fn buffer_must_be_empty(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    let mut buf = [0u8; 8];
    for (ptr, len) in [
        (buf.as_mut_ptr() as usize, 0),
        (0, 8),
        (buf.as_mut_ptr() as usize, 8),
    ] {
        // SAFETY: the kernel must refuse the buffer; it is valid anyway.
        let r = unsafe {
            syscall6(
                nr::ZX_SYS_VMAR_OP_RANGE,
                ctx.root.raw_handle() as usize,
                ZX_VMAR_OP_COMMIT as usize,
                addr,
                PAGE,
                ptr,
                len,
            )
        };
        ensure_eq!(st(r), Status::ERR_INVALID_ARGS);
    }
    ensure_eq!(check!(v.info()).committed_bytes, 0);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    Ok(())
}

fn subregions(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    let v = vmo(4)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 2 * PAGE));
    let (inner, _) = check!(r.allocate(CAN_RWS | ZX_VM_SPECIFIC, 2 * PAGE, 2 * PAGE));
    check!(inner.map(ZX_VM_SPECIFIC | RW, 0, &v, 2 * PAGE as u64, 2 * PAGE));
    let weak = vmar_dup(&r, ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_DUPLICATE)?;
    // SAFETY: (whole block) the calls fail or only map / hint.
    unsafe {
        ensure_err!(
            r.op_range(ZX_VMAR_OP_COMMIT, base, 4 * PAGE),
            Status::ERR_INVALID_ARGS
        );
        ensure_err!(
            r.op_range(ZX_VMAR_OP_DECOMMIT, base, 4 * PAGE),
            Status::ERR_INVALID_ARGS
        );
        // Zircon keeps what was done on the mappings before the sub-region; the sub-region's
        // pages stay uncommitted.
        let committed = check!(v.info()).committed_bytes;
        ensure!(committed <= 2 * PAGE as u64, "committed {committed:#x}");
        // The other ops go through sub-regions with OP_CHILDREN...
        for op in [
            ZX_VMAR_OP_MAP_RANGE,
            ZX_VMAR_OP_DONT_NEED,
            ZX_VMAR_OP_ALWAYS_NEED,
        ] {
            check!(r.op_range(op, base, 4 * PAGE));
            // ...and not without.
            ensure_err!(weak.op_range(op, base, 4 * PAGE), Status::ERR_INVALID_ARGS);
            // Without a sub-region in the range, OP_CHILDREN is not needed.
            check!(weak.op_range(op, base, 2 * PAGE));
        }
        // Directly on the sub-region COMMIT works.
        check!(inner.op_range(ZX_VMAR_OP_COMMIT, base + 2 * PAGE, 2 * PAGE));
        check!(r.destroy());
    }
    Ok(())
}

fn write_rights(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    let v = vmo(2)?;
    let ro = check!(v.duplicate(ZX_RIGHT_READ | ZX_RIGHT_MAP));
    // [0]: read-only mapping made with a read-only VMO handle; [2]: read-only mapping made with
    // a read-write VMO handle (could be made writable: COMMIT is fine).
    check!(r.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, 0, &ro, 0, PAGE));
    check!(r.map(
        ZX_VM_SPECIFIC | ZX_VM_PERM_READ,
        2 * PAGE,
        &v,
        PAGE as u64,
        PAGE
    ));
    let no_write = vmar_dup(&r, ZX_RIGHT_READ | ZX_RIGHT_OP_CHILDREN)?;
    // SAFETY: (whole block) the calls fail or commit pages that are only read.
    unsafe {
        for op in [ZX_VMAR_OP_COMMIT, ZX_VMAR_OP_DECOMMIT] {
            ensure_err!(
                no_write.op_range(op, base + 2 * PAGE, PAGE),
                Status::ERR_ACCESS_DENIED
            );
            ensure_err!(r.op_range(op, base, PAGE), Status::ERR_ACCESS_DENIED);
        }
        ensure_eq!(check!(v.info()).committed_bytes, 0);
        check!(r.op_range(ZX_VMAR_OP_COMMIT, base + 2 * PAGE, PAGE));
        ensure_eq!(check!(v.info()).committed_bytes, PAGE as u64);
        // The hint ops need no WRITE.
        check!(no_write.op_range(ZX_VMAR_OP_MAP_RANGE, base, PAGE));
        check!(r.destroy());
    }
    Ok(())
}

fn handles(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    // SAFETY: (whole block) every call fails.
    unsafe {
        ensure_err!(
            raw_vmar(BOGUS).op_range(ZX_VMAR_OP_COMMIT, addr, PAGE),
            Status::ERR_BAD_HANDLE
        );
        ensure_err!(
            raw_vmar(closed_handle()?).op_range(ZX_VMAR_OP_COMMIT, addr, PAGE),
            Status::ERR_BAD_HANDLE
        );
        ensure_err!(
            raw_vmar(v.raw_handle()).op_range(ZX_VMAR_OP_COMMIT, addr, PAGE),
            Status::ERR_WRONG_TYPE
        );
        check!(ctx.root.unmap(addr, PAGE));
    }
    Ok(())
}

fn overflow_out_of_range(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 4)?;
    let huge = usize::MAX & !(PAGE - 1);
    // SAFETY: (whole block) every call fails.
    unsafe {
        ensure_err!(
            r.op_range(ZX_VMAR_OP_COMMIT, base, huge),
            Status::ERR_OUT_OF_RANGE
        );
        ensure_err!(
            r.op_range(ZX_VMAR_OP_MAP_RANGE, base - PAGE, 2 * PAGE),
            Status::ERR_OUT_OF_RANGE
        );
        ensure_err!(
            r.op_range(ZX_VMAR_OP_MAP_RANGE, huge, PAGE),
            Status::ERR_OUT_OF_RANGE
        );
        check!(r.destroy());
    }
    Ok(())
}
