//! `zx_vmar_allocate`, statement by statement of vmar.fidl: every option (SPECIFIC, COMPACT,
//! OFFSET_IS_UPPER_LIMIT, CAN_MAP_*, ALIGN_*), the rights rules, each error cause with the exact
//! status and the resulting state (a failed allocate leaves the parent empty), and the
//! deallocation note (closing the handle keeps the range).

use abi::rights::*;
use abi::syscall_numbers as nr;
use abi::vm_options::*;
use abi::Status;
use zx::raw::syscall6;

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    specific_needs_can_map_specific,
    specific_overlap_already_exists,
    specific_unaligned_offset,
    specific_align_mismatch,
    upper_limit_places_below,
    upper_limit_needs_can_map_specific,
    align_flags,
    can_map_specific_not_required_of_parent,
    rights_of_parent_handle,
    bad_and_closed_handles,
    failed_allocate_leaves_parent_empty,
    overflowing_offset_and_size,
    close_does_not_deallocate,
    child_addr_nonzero_and_aligned,
);

fn specific_needs_can_map_specific(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RW, 8)?;
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_SPECIFIC, 2 * PAGE, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    ensure!(check!(contents(&r)).1.is_empty());
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn specific_overlap_already_exists(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    let v = vmo(1)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 2 * PAGE, &v, 0, PAGE));
    let (_inner, _) = check!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, 5 * PAGE, 2 * PAGE));
    // Overlapping a mapping, and overlapping a sub-VMAR.
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_SPECIFIC, PAGE, 2 * PAGE),
        Status::ERR_ALREADY_EXISTS
    );
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_SPECIFIC, 6 * PAGE, 2 * PAGE),
        Status::ERR_ALREADY_EXISTS
    );
    let (mappings, vmars) = check!(contents(&r));
    ensure_eq!(mappings.len(), 1);
    ensure_eq!(vmars, [(base + 5 * PAGE, 2 * PAGE)]);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn specific_unaligned_offset(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RWS, 8)?;
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_SPECIFIC, PAGE + 16, PAGE),
        Status::ERR_INVALID_ARGS
    );
    ensure!(check!(contents(&r)).1.is_empty());
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn specific_align_mismatch(ctx: &Ctx) -> TestResult {
    // A 64 KiB-aligned region: offset 4 KiB is not 64 KiB aligned, offset 64 KiB is.
    let (r, base) = check!(ctx.root.allocate(CAN_RWS | ZX_VM_ALIGN_64KB, 0, 32 * PAGE));
    ensure_eq!(base % (64 << 10), 0);
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_SPECIFIC | ZX_VM_ALIGN_64KB, PAGE, PAGE),
        Status::ERR_INVALID_ARGS
    );
    let (_c, cbase) =
        check!(r.allocate(CAN_RW | ZX_VM_SPECIFIC | ZX_VM_ALIGN_64KB, 16 * PAGE, PAGE));
    ensure_eq!(cbase, base + 16 * PAGE);
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn upper_limit_places_below(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 256)?;
    for _ in 0..8 {
        let (_c, cbase) =
            check!(r.allocate(CAN_RW | ZX_VM_OFFSET_IS_UPPER_LIMIT, 32 * PAGE, 2 * PAGE));
        ensure!(
            cbase >= base && cbase + 2 * PAGE <= base + 32 * PAGE,
            "child at {cbase:#x} ends above the limit {:#x}",
            base + 32 * PAGE
        );
    }
    // A child exactly as large as the limit allows can only go at the region's base.
    let (r2, base2) = region(ctx, CAN_RWS, 64)?;
    let (_c, cbase) =
        check!(r2.allocate(CAN_RW | ZX_VM_OFFSET_IS_UPPER_LIMIT, 32 * PAGE, 32 * PAGE));
    ensure_eq!(cbase, base2);
    // Now nothing fits below the limit, although the region has 32 free pages above it.
    ensure_err!(
        r2.allocate(CAN_RW | ZX_VM_OFFSET_IS_UPPER_LIMIT, 32 * PAGE, PAGE),
        Status::ERR_NO_RESOURCES
    );
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r2.destroy() });
    // A limit beyond the region is "exceeding the region bounds".
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_OFFSET_IS_UPPER_LIMIT, 512 * PAGE, PAGE),
        Status::ERR_INVALID_ARGS
    );
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn upper_limit_needs_can_map_specific(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RW, 8)?;
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_OFFSET_IS_UPPER_LIMIT, 4 * PAGE, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    ensure!(check!(contents(&r)).1.is_empty());
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn align_flags(ctx: &Ctx) -> TestResult {
    // 1 KiB .. 4 KiB give page alignment; larger ones their own.
    for (flag, align) in [
        (ZX_VM_ALIGN_1KB, PAGE),
        (ZX_VM_ALIGN_2KB, PAGE),
        (ZX_VM_ALIGN_4KB, PAGE),
        (ZX_VM_ALIGN_8KB, 8 << 10),
        (ZX_VM_ALIGN_2MB, 2 << 20),
        (ZX_VM_ALIGN_1GB, 1 << 30),
        (ZX_VM_ALIGN_4GB, 4 << 30),
    ] {
        let (c, cbase) = check!(ctx.root.allocate(CAN_RW | flag, 0, PAGE));
        ensure!(cbase % align == 0, "{cbase:#x} not aligned to {align:#x}");
        // SAFETY: nothing is mapped in the region.
        check!(unsafe { c.destroy() });
    }
    // Alignment values outside 2^10 ..= 2^32 are invalid.
    for bad in [1u32, 9, 33] {
        ensure_err!(
            ctx.root
                .allocate(CAN_RW | (bad << ZX_VM_ALIGN_BASE), 0, PAGE),
            Status::ERR_INVALID_ARGS
        );
    }
    Ok(())
}

fn can_map_specific_not_required_of_parent(ctx: &Ctx) -> TestResult {
    // The parent cannot map SPECIFIC; its child may still be created with CAN_MAP_SPECIFIC and
    // then use it.
    let (p, _) = region(ctx, CAN_RW, 16)?;
    let (c, cbase) = check!(p.allocate(CAN_RWS, 0, 8 * PAGE));
    let v = vmo(1)?;
    let addr = check!(c.map(ZX_VM_SPECIFIC | RW, 3 * PAGE, &v, 0, PAGE));
    ensure_eq!(addr, cbase + 3 * PAGE);
    // A sub-region made without it cannot, even when its parent can (not inherited).
    let (g, _) = check!(c.allocate(CAN_RW, 0, 2 * PAGE));
    ensure_err!(
        g.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { p.destroy() });
    Ok(())
}

fn rights_of_parent_handle(ctx: &Ctx) -> TestResult {
    // The root can map everything; a duplicate lacking one right cannot create children that
    // may use it (ZX_RIGHT_READ / WRITE / EXECUTE per CAN_MAP_*).
    let all = ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE | ZX_RIGHT_OP_CHILDREN;
    for (missing, option) in [
        (ZX_RIGHT_READ, ZX_VM_CAN_MAP_READ),
        (ZX_RIGHT_WRITE, ZX_VM_CAN_MAP_WRITE),
        (ZX_RIGHT_EXECUTE, ZX_VM_CAN_MAP_EXECUTE),
    ] {
        let weak = vmar_dup(&ctx.root, all & !missing)?;
        ensure_err!(weak.allocate(option, 0, PAGE), Status::ERR_ACCESS_DENIED);
        // The other two are still fine.
        let others = (ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_EXECUTE) & !option;
        let (c, _) = check!(weak.allocate(others, 0, PAGE));
        let rights = check!(c.handle().basic_info()).rights;
        ensure_eq!(
            rights & (ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE),
            all & !missing & !ZX_RIGHT_OP_CHILDREN
        );
        // SAFETY: nothing is mapped in the region.
        check!(unsafe { c.destroy() });
    }
    // No CAN_MAP_* asked: no right needed.
    let bare = vmar_dup(&ctx.root, ZX_RIGHT_OP_CHILDREN)?;
    let (c, _) = check!(bare.allocate(0, 0, PAGE));
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { c.destroy() });
    Ok(())
}

fn bad_and_closed_handles(_ctx: &Ctx) -> TestResult {
    ensure_err!(
        raw_vmar(BOGUS).allocate(CAN_RW, 0, PAGE),
        Status::ERR_BAD_HANDLE
    );
    let closed = closed_handle()?;
    ensure_err!(
        raw_vmar(closed).allocate(CAN_RW, 0, PAGE),
        Status::ERR_BAD_HANDLE
    );
    let v = vmo(1)?;
    ensure_err!(
        raw_vmar(v.raw_handle()).allocate(CAN_RW, 0, PAGE),
        Status::ERR_WRONG_TYPE
    );
    Ok(())
}

fn failed_allocate_leaves_parent_empty(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RWS, 8)?;
    for (options, offset, size) in [
        (CAN_RW, PAGE, PAGE), // offset without SPECIFIC
        (
            CAN_RW | ZX_VM_SPECIFIC | ZX_VM_OFFSET_IS_UPPER_LIMIT,
            PAGE,
            PAGE,
        ), // both
        (CAN_RW | ZX_VM_SPECIFIC, 7 * PAGE, 2 * PAGE), // beyond the bounds
        (CAN_RW | ZX_VM_SPECIFIC, 8 * PAGE, PAGE), // starts at the end
        (CAN_RW, 0, 0),       // size 0
        (CAN_RW, 0, PAGE + 1), // size unaligned
        (CAN_RW | ZX_VM_PERM_READ, 0, PAGE), // a mapping permission
        (CAN_RW | ZX_VM_MAP_RANGE, 0, PAGE), // a mapping-only flag
        (CAN_RW | (1 << 20), 0, PAGE), // unknown bit
    ] {
        match r.allocate(options, offset, size) {
            Err(Status::ERR_INVALID_ARGS) => {}
            other => fail!(
                "allocate({options:#x}, {offset:#x}, {size:#x}): {:?}, expected INVALID_ARGS",
                other.map(|(_, b)| b)
            ),
        }
    }
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_CAN_MAP_EXECUTE, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    ensure!(
        check!(contents(&r)).1.is_empty(),
        "a failed allocate left a child"
    );
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn overflowing_offset_and_size(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RWS, 8)?;
    let huge = usize::MAX & !(PAGE - 1);
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_SPECIFIC, huge, 2 * PAGE),
        Status::ERR_INVALID_ARGS
    );
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_SPECIFIC, 2 * PAGE, huge),
        Status::ERR_INVALID_ARGS
    );
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_OFFSET_IS_UPPER_LIMIT, huge, PAGE),
        Status::ERR_INVALID_ARGS
    );
    ensure_err!(r.allocate(CAN_RW, 0, huge), Status::ERR_INVALID_ARGS);
    ensure!(check!(contents(&r)).1.is_empty());
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn close_does_not_deallocate(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    let (c, cbase) = check!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, 2 * PAGE, 2 * PAGE));
    let v = vmo(1)?;
    let addr = check!(c.map(RW, 0, &v, 0, PAGE));
    poke(addr, 0x5a5a);
    check!(zx::Handle::from(c).close());
    // The range stays allocated (and its mapping stays mapped) until the region is destroyed.
    ensure_eq!(check!(contents(&r)).1, [(cbase, 2 * PAGE)]);
    ensure_eq!(peek(addr), 0x5a5a);
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_SPECIFIC, 2 * PAGE, PAGE),
        Status::ERR_ALREADY_EXISTS
    );
    // Destroying the parent (or unmapping the range through it) releases it.
    // SAFETY: nothing refers to the sub-region's memory any more.
    check!(unsafe { r.unmap(base + 2 * PAGE, 2 * PAGE) });
    ensure!(check!(contents(&r)).1.is_empty());
    ensure!(!check!(is_mapped(ctx, addr)));
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn child_addr_nonzero_and_aligned(ctx: &Ctx) -> TestResult {
    let mut child = 0u32;
    let mut addr = 0usize;
    // SAFETY: both outs are valid, aligned locals.
    let r = unsafe {
        syscall6(
            nr::ZX_SYS_VMAR_ALLOCATE,
            ctx.root.raw_handle() as usize,
            CAN_RW as usize,
            0,
            4 * PAGE,
            &mut child as *mut u32 as usize,
            &mut addr as *mut usize as usize,
        )
    };
    ensure_eq!(st(r), Status::OK);
    ensure!(
        addr != 0 && addr.is_multiple_of(PAGE),
        "child_addr {addr:#x}"
    );
    let c = zx::Vmar::from(zx::Handle::from_raw(child));
    let info = check!(c.info());
    ensure_eq!((info.base, info.len), (addr, 4 * PAGE));
    ensure_eq!(
        check!(c.handle().basic_info()).r#type,
        abi::obj_type::ZX_OBJ_TYPE_VMAR
    );
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { c.destroy() });
    Ok(())
}
