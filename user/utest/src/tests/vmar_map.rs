//! `zx_vmar_map`, statement by statement of vmar.fidl, beyond `vmar::map_*`: the mapping keeps
//! its VMO alive, SPECIFIC / SPECIFIC_OVERWRITE against sub-VMARs and partial overlaps,
//! OFFSET_IS_UPPER_LIMIT rules, MAP_RANGE, PERM_* against CAN_MAP_* / VMAR rights / VMO rights,
//! PERM_READ_IF_XOM_UNSUPPORTED, discardable VMOs, ALIGN with SPECIFIC, bad and closed handles,
//! overflow; every failure leaves the region as it was.

use abi::ops::ZX_VMO_OP_COMMIT;
use abi::rights::*;
use abi::vm_options::*;
use abi::vmo_options::ZX_VMO_DISCARDABLE;
use abi::Status;
use zx::Vmo;

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    closing_vmo_handle_keeps_mapping,
    specific_over_subregion_already_exists,
    overwrite_keeps_parts_outside,
    overwrite_over_subregion_invalid,
    overwrite_needs_can_map_specific,
    upper_limit_rules,
    map_range_pages_in_committed,
    map_range_with_overwrite_invalid,
    perm_read_rules,
    perm_write_rules,
    perm_execute_rules,
    no_permissions,
    read_if_xom_unsupported,
    discardable_needs_allow_faults,
    specific_offset_rules,
    bad_and_closed_handles,
    failed_map_maps_nothing,
    overflowing_offsets,
    placement_is_random,
);

fn closing_vmo_handle_keeps_mapping(ctx: &Ctx) -> TestResult {
    let v = vmo(2)?;
    check!(v.write(&0x1234u64.to_le_bytes(), PAGE as u64));
    let addr = check!(ctx.root.map(RW, 0, &v, 0, 2 * PAGE));
    check!(zx::Handle::from(v).close());
    // The mapping holds the VMO: its contents are still there, and writable.
    ensure_eq!(peek(addr + PAGE), 0x1234);
    poke(addr, 77);
    ensure_eq!(peek(addr), 77);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, 2 * PAGE) });
    ensure!(!check!(is_mapped(ctx, addr)));
    Ok(())
}

fn specific_over_subregion_already_exists(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    check!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, 4 * PAGE, 2 * PAGE));
    let v = vmo(2)?;
    ensure_err!(
        r.map(ZX_VM_SPECIFIC | RW, 3 * PAGE, &v, 0, 2 * PAGE),
        Status::ERR_ALREADY_EXISTS
    );
    let (mappings, vmars) = check!(contents(&r));
    ensure!(mappings.is_empty());
    ensure_eq!(vmars, [(base + 4 * PAGE, 2 * PAGE)]);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn overwrite_keeps_parts_outside(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    let a = vmo(3)?;
    let b = vmo(3)?;
    let c = vmo(2)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &a, 0, 3 * PAGE));
    check!(r.map(ZX_VM_SPECIFIC | RW, 3 * PAGE, &b, 0, 3 * PAGE));
    for p in 0..6 {
        poke(base + p * PAGE, 100 + p as u64);
    }
    check!(c.write(&9u64.to_le_bytes(), 0));
    check!(c.write(&10u64.to_le_bytes(), PAGE as u64));
    // Replace [2, 4): the last page of `a` and the first of `b`.
    // SAFETY: nothing refers to pages 2 and 3.
    let addr = check!(unsafe {
        r.map_unchecked(ZX_VM_SPECIFIC_OVERWRITE | RW, 2 * PAGE, &c, 0, 2 * PAGE)
    });
    ensure_eq!(addr, base + 2 * PAGE);
    let got: alloc::vec::Vec<u64> = (0..6).map(|p| peek(base + p * PAGE)).collect();
    ensure_eq!(got, [100, 101, 9, 10, 104, 105]);
    let (mappings, _) = check!(contents(&r));
    let ranges: alloc::vec::Vec<(usize, usize)> = mappings
        .iter()
        .map(|&(b, s, _)| (b - base, s / PAGE))
        .collect();
    ensure_eq!(ranges, [(0, 2), (2 * PAGE, 2), (4 * PAGE, 2)]);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn overwrite_over_subregion_invalid(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    let v = vmo(4)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 2 * PAGE));
    poke(base, 1);
    check!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, 4 * PAGE, 2 * PAGE));
    let before = check!(contents(&r));
    // SAFETY: (whole block) every call fails, nothing is replaced.
    unsafe {
        // Partially overlapping the sub-VMAR (and the mapping).
        ensure_err!(
            r.map_unchecked(ZX_VM_SPECIFIC_OVERWRITE | RW, PAGE, &v, 0, 4 * PAGE),
            Status::ERR_INVALID_ARGS
        );
        // Covering it wholly is refused too (Zircon: an overwrite never destroys regions).
        ensure_err!(
            r.map_unchecked(ZX_VM_SPECIFIC_OVERWRITE | RW, 4 * PAGE, &v, 0, 2 * PAGE),
            Status::ERR_INVALID_ARGS
        );
    }
    ensure_eq!(check!(contents(&r)), before);
    ensure_eq!(peek(base), 1);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn overwrite_needs_can_map_specific(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RW, 4)?;
    let v = vmo(1)?;
    // SAFETY: the call fails.
    let res = unsafe { r.map_unchecked(ZX_VM_SPECIFIC_OVERWRITE | RW, 0, &v, 0, PAGE) };
    ensure_err!(res, Status::ERR_ACCESS_DENIED);
    ensure!(check!(contents(&r)).0.is_empty());
    // SAFETY: nothing is mapped.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn upper_limit_rules(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let (no_spec, _) = region(ctx, CAN_RW, 8)?;
    ensure_err!(
        no_spec.map(ZX_VM_OFFSET_IS_UPPER_LIMIT | RW, 4 * PAGE, &v, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    // SAFETY: the call fails.
    let res = unsafe {
        r.map_unchecked(
            ZX_VM_OFFSET_IS_UPPER_LIMIT | ZX_VM_SPECIFIC_OVERWRITE | RW,
            4 * PAGE,
            &v,
            0,
            PAGE,
        )
    };
    ensure_err!(res, Status::ERR_INVALID_ARGS);
    // A limit beyond the region's end exceeds its bounds.
    ensure_err!(
        r.map(ZX_VM_OFFSET_IS_UPPER_LIMIT | RW, 9 * PAGE, &v, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    // A mapping as large as the limit goes exactly at the base; then nothing fits below it.
    let big = vmo(4)?;
    let addr = check!(r.map(
        ZX_VM_OFFSET_IS_UPPER_LIMIT | RW,
        4 * PAGE,
        &big,
        0,
        4 * PAGE
    ));
    ensure_eq!(addr, base);
    ensure_err!(
        r.map(ZX_VM_OFFSET_IS_UPPER_LIMIT | RW, 4 * PAGE, &v, 0, PAGE),
        Status::ERR_NO_RESOURCES
    );
    ensure_eq!(check!(contents(&r)).0.len(), 1);
    ensure!(check!(contents(&no_spec)).0.is_empty());
    // SAFETY: nothing refers to the regions' memory.
    unsafe {
        check!(r.destroy());
        check!(no_spec.destroy());
    }
    Ok(())
}

fn map_range_pages_in_committed(ctx: &Ctx) -> TestResult {
    let v = vmo(4)?;
    check!(v.write(&42u64.to_le_bytes(), PAGE as u64));
    check!(v.op_range(ZX_VMO_OP_COMMIT, 3 * PAGE as u64, PAGE as u64));
    let addr = check!(ctx.root.map(ZX_VM_MAP_RANGE | RW, 0, &v, 0, 4 * PAGE));
    // MAP_RANGE maps what is committed; it commits nothing new.
    ensure_eq!(check!(v.info()).committed_bytes, 2 * PAGE as u64);
    ensure_eq!(peek(addr + PAGE), 42);
    ensure_eq!(peek(addr + 3 * PAGE), 0);
    ensure_eq!(check!(v.info()).committed_bytes, 2 * PAGE as u64);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, 4 * PAGE) });
    Ok(())
}

fn map_range_with_overwrite_invalid(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 4)?;
    let v = vmo(1)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, PAGE));
    poke(base, 3);
    // SAFETY: the call fails.
    let res = unsafe {
        r.map_unchecked(
            ZX_VM_SPECIFIC_OVERWRITE | ZX_VM_MAP_RANGE | RW,
            0,
            &v,
            0,
            PAGE,
        )
    };
    ensure_err!(res, Status::ERR_INVALID_ARGS);
    ensure_eq!(check!(contents(&r)).0.len(), 1);
    ensure_eq!(peek(base), 3);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn perm_read_rules(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    // The VMAR lacks CAN_MAP_READ.
    let (none, _) = region(ctx, 0, 4)?;
    ensure_err!(
        none.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // The VMAR handle lacks ZX_RIGHT_READ.
    let weak = vmar_dup(&ctx.root, ZX_RIGHT_WRITE | ZX_RIGHT_OP_CHILDREN)?;
    ensure_err!(
        weak.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // The VMO handle lacks ZX_RIGHT_READ.
    let map_only = check!(v.duplicate(ZX_RIGHT_MAP | ZX_RIGHT_WRITE));
    ensure_err!(
        ctx.root.map(ZX_VM_PERM_READ, 0, &map_only, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    ensure!(check!(contents(&none)).0.is_empty());
    // SAFETY: nothing is mapped.
    check!(unsafe { none.destroy() });
    Ok(())
}

fn perm_write_rules(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let (ro, _) = region(ctx, ZX_VM_CAN_MAP_READ, 4)?;
    ensure_err!(ro.map(RW, 0, &v, 0, PAGE), Status::ERR_ACCESS_DENIED);
    let weak = vmar_dup(&ctx.root, ZX_RIGHT_READ | ZX_RIGHT_OP_CHILDREN)?;
    ensure_err!(weak.map(RW, 0, &v, 0, PAGE), Status::ERR_ACCESS_DENIED);
    let ro_vmo = check!(v.duplicate(ZX_RIGHT_MAP | ZX_RIGHT_READ));
    ensure_err!(
        ctx.root.map(RW, 0, &ro_vmo, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // WRITE without READ is invalid whatever the rights.
    ensure_err!(
        ctx.root.map(ZX_VM_PERM_WRITE, 0, &v, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    ensure!(check!(contents(&ro)).0.is_empty());
    // SAFETY: nothing is mapped.
    check!(unsafe { ro.destroy() });
    Ok(())
}

fn perm_execute_rules(ctx: &Ctx) -> TestResult {
    let x = exec_vmo(1)?;
    // The VMAR lacks CAN_MAP_EXECUTE.
    let (rw, _) = region(ctx, CAN_RW, 4)?;
    ensure_err!(rw.map(RX, 0, &x, 0, PAGE), Status::ERR_ACCESS_DENIED);
    // The VMAR handle lacks ZX_RIGHT_EXECUTE.
    let weak = vmar_dup(
        &ctx.root,
        ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_OP_CHILDREN,
    )?;
    ensure_err!(weak.map(RX, 0, &x, 0, PAGE), Status::ERR_ACCESS_DENIED);
    // The VMO handle lacks ZX_RIGHT_EXECUTE (a plain VMO never has it).
    let plain = vmo(1)?;
    ensure_err!(
        ctx.root.map(RX, 0, &plain, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // EXECUTE without READ is invalid.
    ensure_err!(
        ctx.root.map(ZX_VM_PERM_EXECUTE, 0, &x, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    // With everything in place, it maps r-x and runs: write `ret` through a second, writable
    // view, then call it.
    let (rwx, _) = region(ctx, CAN_RW | ZX_VM_CAN_MAP_EXECUTE, 4)?;
    let code = check!(rwx.map(RX, 0, &x, 0, PAGE));
    let view = check!(ctx.root.map(RW, 0, &x, 0, PAGE));
    // SAFETY: the page is ours and writable through `view`.
    unsafe { (view as *mut u8).write_volatile(0xc3) };
    // SAFETY: the page holds a single `ret`, mapped executable at `code`.
    let f: extern "C" fn() = unsafe { core::mem::transmute(code) };
    f();
    let (mappings, _) = check!(contents(&rwx));
    ensure_eq!(mappings, [(code, PAGE, RX)]);
    ensure!(check!(contents(&rw)).0.is_empty());
    // SAFETY: nothing refers to the mappings any more.
    unsafe {
        check!(ctx.root.unmap(view, PAGE));
        check!(rwx.destroy());
        check!(rw.destroy());
    }
    Ok(())
}

fn no_permissions(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(0, 0, &v, 0, PAGE));
    let mut b = [0u8; 1];
    // Mapped (it shows in the maps, with no permission bits, and debugger reads reach it),
    // though not accessible to the process itself.
    ensure!(check!(contents(&ctx.root)).0.contains(&(addr, PAGE, 0)));
    ensure_eq!(check!(ctx.process.read_memory(addr, &mut b)), 1);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    ensure_err!(ctx.process.read_memory(addr, &mut b), Status::ERR_NOT_FOUND);
    Ok(())
}

fn read_if_xom_unsupported(ctx: &Ctx) -> TestResult {
    // x86_64 cannot map execute-only: the flag means PERM_READ.
    let x = exec_vmo(1)?;
    let (r, _) = region(ctx, CAN_RW | ZX_VM_CAN_MAP_EXECUTE, 4)?;
    let a = check!(r.map(
        ZX_VM_PERM_EXECUTE | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED,
        0,
        &x,
        0,
        PAGE
    ));
    let b = check!(r.map(ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED, 0, &x, 0, PAGE));
    ensure_eq!(peek(b), 0);
    let (mut mappings, _) = check!(contents(&r));
    mappings.sort_unstable();
    let mut want = [(a, PAGE, RX), (b, PAGE, ZX_VM_PERM_READ)];
    want.sort_unstable();
    ensure_eq!(mappings, want);
    // And for protect: EXECUTE | READ_IF_XOM on the read-only one gives r-x.
    // SAFETY: raising permissions invalidates nothing.
    check!(unsafe {
        r.protect(
            ZX_VM_PERM_EXECUTE | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED,
            b,
            PAGE,
        )
    });
    let (mut mappings, _) = check!(contents(&r));
    mappings.sort_unstable();
    let mut want = [(a, PAGE, RX), (b, PAGE, RX)];
    want.sort_unstable();
    ensure_eq!(mappings, want);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn discardable_needs_allow_faults(ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(PAGE as u64, ZX_VMO_DISCARDABLE));
    ensure_err!(ctx.root.map(RW, 0, &v, 0, PAGE), Status::ERR_NOT_SUPPORTED);
    let addr = check!(ctx.root.map(ZX_VM_ALLOW_FAULTS | RW, 0, &v, 0, PAGE));
    poke(addr, 1);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    Ok(())
}

fn specific_offset_rules(ctx: &Ctx) -> TestResult {
    let (r, base) = check!(ctx.root.allocate(CAN_RWS | ZX_VM_ALIGN_64KB, 0, 32 * PAGE));
    let v = vmo(1)?;
    // Unaligned vmar_offset.
    ensure_err!(
        r.map(ZX_VM_SPECIFIC | RW, PAGE + 8, &v, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    // ALIGN with SPECIFIC: base + offset must be aligned.
    ensure_err!(
        r.map(ZX_VM_SPECIFIC | ZX_VM_ALIGN_64KB | RW, PAGE, &v, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    let addr = check!(r.map(
        ZX_VM_SPECIFIC | ZX_VM_ALIGN_64KB | RW,
        16 * PAGE,
        &v,
        0,
        PAGE
    ));
    ensure_eq!(addr, base + 16 * PAGE);
    // Aligned placement by the kernel, several sizes.
    for (flag, align) in [(ZX_VM_ALIGN_64KB, 64 << 10), (ZX_VM_ALIGN_2MB, 2 << 20)] {
        let a = check!(ctx.root.map(flag | RW, 0, &v, 0, PAGE));
        ensure!(a % align == 0, "{a:#x} not aligned to {align:#x}");
        // SAFETY: nothing refers to the mapping.
        check!(unsafe { ctx.root.unmap(a, PAGE) });
    }
    ensure_eq!(check!(contents(&r)).0.len(), 1);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn bad_and_closed_handles(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let closed = closed_handle()?;
    ensure_err!(
        raw_vmar(closed).map(RW, 0, &v, 0, PAGE),
        Status::ERR_BAD_HANDLE
    );
    ensure_err!(
        ctx.root.map(RW, 0, &raw_vmo(BOGUS), 0, PAGE),
        Status::ERR_BAD_HANDLE
    );
    ensure_err!(
        ctx.root.map(RW, 0, &raw_vmo(closed), 0, PAGE),
        Status::ERR_BAD_HANDLE
    );
    // Both wrong at once: the VMAR handle is looked at first.
    ensure_err!(
        raw_vmar(BOGUS).map(RW, 0, &raw_vmo(ctx.root.raw_handle()), 0, PAGE),
        Status::ERR_BAD_HANDLE
    );
    ensure_err!(
        raw_vmar(v.raw_handle()).map(RW, 0, &raw_vmo(BOGUS), 0, PAGE),
        Status::ERR_WRONG_TYPE
    );
    Ok(())
}

fn failed_map_maps_nothing(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RWS, 4)?;
    let v = vmo(2)?;
    let cases: &[(u32, usize, u64, usize, Status)] = &[
        (RW, PAGE, 0, PAGE, Status::ERR_INVALID_ARGS), // offset without SPECIFIC
        (RW, 0, 0, 0, Status::ERR_INVALID_ARGS),       // len 0
        (RW, 0, 0, usize::MAX - PAGE + 2, Status::ERR_OUT_OF_RANGE), // len rounds to 0
        (RW, 0, 8, PAGE, Status::ERR_INVALID_ARGS),    // vmo_offset unaligned
        (
            RW | ZX_VM_SPECIFIC,
            3 * PAGE,
            0,
            2 * PAGE,
            Status::ERR_INVALID_ARGS,
        ), // past the end
        (
            RW | ZX_VM_SPECIFIC,
            4 * PAGE,
            0,
            PAGE,
            Status::ERR_INVALID_ARGS,
        ), // at the end
        (
            RW | ZX_VM_CAN_MAP_READ,
            0,
            0,
            PAGE,
            Status::ERR_INVALID_ARGS,
        ), // CAN_MAP_*
        (RW | ZX_VM_COMPACT, 0, 0, PAGE, Status::ERR_INVALID_ARGS), // VMAR-only
        (RW | (1 << 19), 0, 0, PAGE, Status::ERR_INVALID_ARGS), // unknown bit
        (RW, 0, 0, 3 * PAGE, Status::ERR_BUFFER_TOO_SMALL), // past VMO end
        (
            RW | ZX_VM_PERM_EXECUTE,
            0,
            0,
            PAGE,
            Status::ERR_ACCESS_DENIED,
        ), // no EXECUTE
    ];
    for &(options, off, vmo_off, len, want) in cases {
        match r.map(options, off, &v, vmo_off, len) {
            Err(e) if e == want => {}
            other => fail!(
                "map({options:#x}, {off:#x}, {vmo_off:#x}, {len:#x}): {other:?}, expected {want:?}"
            ),
        }
    }
    let (mappings, vmars) = check!(contents(&r));
    ensure!(
        mappings.is_empty() && vmars.is_empty(),
        "{mappings:?} {vmars:?}"
    );
    // SAFETY: nothing is mapped.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn overflowing_offsets(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RWS, 4)?;
    let v = vmo(1)?;
    let huge = usize::MAX & !(PAGE - 1);
    ensure_err!(
        r.map(ZX_VM_SPECIFIC | RW, huge, &v, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    ensure_err!(
        r.map(ZX_VM_OFFSET_IS_UPPER_LIMIT | RW, huge, &v, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    // vmo_offset + len overflows, with and without ALLOW_FAULTS.
    for extra in [0, ZX_VM_ALLOW_FAULTS] {
        ensure_err!(
            r.map(extra | RW, 0, &v, huge as u64, 2 * PAGE),
            Status::ERR_OUT_OF_RANGE
        );
    }
    ensure!(check!(contents(&r)).0.is_empty());
    // SAFETY: nothing is mapped.
    check!(unsafe { r.destroy() });
    Ok(())
}

/// Without SPECIFIC the kernel picks the offset at random, and OFFSET_IS_UPPER_LIMIT only narrows
/// the range it picks from: 16 map / unmap rounds of one page land page-aligned inside the region
/// (below the limit) and not all at one address (1 in 128^15 for a uniform choice).
fn placement_is_random(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let (r, base) = region(ctx, CAN_RWS, 256)?;
    for (options, limit) in [(RW, 256), (ZX_VM_OFFSET_IS_UPPER_LIMIT | RW, 128)] {
        let offset = if options & ZX_VM_OFFSET_IS_UPPER_LIMIT != 0 {
            limit * PAGE
        } else {
            0
        };
        let mut addrs = [0usize; 16];
        for a in addrs.iter_mut() {
            *a = check!(r.map(options, offset, &v, 0, PAGE));
            ensure!(
                *a % PAGE == 0 && *a >= base && *a + PAGE <= base + limit * PAGE,
                "{a:#x} outside [{base:#x}, {:#x}) (options {options:#x})",
                base + limit * PAGE
            );
            // SAFETY: nothing refers to the mapping.
            check!(unsafe { r.unmap(*a, PAGE) });
        }
        ensure!(
            addrs.iter().any(|&a| a != addrs[0]),
            "16 placements all at {:#x} (options {options:#x})",
            addrs[0]
        );
    }
    ensure!(check!(contents(&r)).0.is_empty());
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}
