//! `zx_vmar_unmap`, `zx_vmar_protect` and `zx_vmar_destroy`, statement by statement of vmar.fidl
//! beyond the `vmar` module: sub-regions destroyed by unmap, ZX_RIGHT_OP_CHILDREN, the rights of
//! the VMAR handle and of the VMO handle used at map time (still enforced after it is closed),
//! permissions through a parent only shrinking, bad / closed / wrong-type handles, overflow,
//! and that a failed call changes nothing.

use abi::rights::*;
use abi::vm_options::*;
use abi::Status;
use zx::probe::{probe_for_read, probe_for_write};

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    unmap_destroys_subregions,
    unmap_subregion_needs_op_children,
    unmap_spanning_holes,
    unmap_errors_change_nothing,
    protect_handle_rights,
    protect_capped_by_vmo_rights_after_close,
    protect_through_parent_only_reduces,
    protect_subregion_needs_op_children,
    protect_errors_change_nothing,
    protect_rounds_len_up,
    protect_then_execute,
    destroy_leaves_handles_valid_but_dead,
    destroy_bad_handles,
);

const ALL_VMAR: u32 =
    ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE | ZX_RIGHT_OP_CHILDREN | ZX_RIGHT_DUPLICATE;

fn unmap_destroys_subregions(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    let v = vmo(2)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, PAGE));
    let (inner, ibase) = check!(r.allocate(CAN_RWS | ZX_VM_SPECIFIC, 2 * PAGE, 3 * PAGE));
    let (grand, _) = check!(inner.allocate(CAN_RW | ZX_VM_SPECIFIC, PAGE, PAGE));
    let m = check!(grand.map(RW, 0, &v, PAGE as u64, PAGE));
    poke(m, 8);
    // SAFETY: nothing refers to [base, base + 6 pages).
    check!(unsafe { r.unmap(base, 6 * PAGE) });
    let (mappings, vmars) = check!(contents(&r));
    ensure!(
        mappings.is_empty() && vmars.is_empty(),
        "{mappings:?} {vmars:?}"
    );
    ensure!(!check!(is_mapped(ctx, base)));
    ensure!(!check!(is_mapped(ctx, m)));
    ensure_err!(probe_for_read(m), Status::ERR_NOT_FOUND);
    // As if destroyed: the handles stay valid, the regions are dead.
    check!(inner.handle().basic_info());
    ensure_err!(inner.map(RW, 0, &v, 0, PAGE), Status::ERR_BAD_STATE);
    ensure_err!(grand.map(RW, 0, &v, 0, PAGE), Status::ERR_BAD_STATE);
    // The range is free again.
    let (_again, b2) = check!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, 2 * PAGE, 3 * PAGE));
    ensure_eq!(b2, ibase);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn unmap_subregion_needs_op_children(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    let v = vmo(1)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, PAGE));
    let (inner, _) = check!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, 2 * PAGE, 2 * PAGE));
    let weak = vmar_dup(&r, ALL_VMAR & !ZX_RIGHT_OP_CHILDREN & !ZX_RIGHT_EXECUTE)?;
    let before = check!(contents(&r));
    // SAFETY: (whole block) the first call fails; the second unmaps an unused page.
    unsafe {
        ensure_err!(weak.unmap(base, 4 * PAGE), Status::ERR_INVALID_ARGS);
        ensure_eq!(check!(contents(&r)), before);
        check!(inner.handle().basic_info());
        // Mappings alone need no OP_CHILDREN.
        check!(weak.unmap(base, PAGE));
    }
    let (mappings, vmars) = check!(contents(&r));
    ensure!(mappings.is_empty());
    ensure_eq!(vmars.len(), 1);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn unmap_spanning_holes(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    let v = vmo(4)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, PAGE, &v, 0, PAGE));
    check!(r.map(ZX_VM_SPECIFIC | RW, 4 * PAGE, &v, PAGE as u64, 2 * PAGE));
    // [0, 8) holds two mappings and holes: all of it is unmapped.
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.unmap(base, 8 * PAGE) });
    ensure!(check!(contents(&r)).0.is_empty());
    // SAFETY: nothing is mapped any more.
    unsafe {
        // Nothing left: OK (Zircon; the spec text says NOT_FOUND).
        check!(r.unmap(base, 8 * PAGE));
        check!(r.destroy());
    }
    Ok(())
}

fn unmap_errors_change_nothing(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 4)?;
    let v = vmo(2)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 2 * PAGE));
    poke(base, 4);
    let before = check!(contents(&r));
    let huge = usize::MAX & !(PAGE - 1);
    // SAFETY: (whole block) every call fails.
    unsafe {
        ensure_err!(
            r.unmap(base, usize::MAX - PAGE + 2),
            Status::ERR_INVALID_ARGS
        ); // len rounds to 0
        ensure_err!(r.unmap(base, huge), Status::ERR_INVALID_ARGS); // addr + len overflows
        ensure_err!(r.unmap(base + PAGE, 4 * PAGE), Status::ERR_INVALID_ARGS); // leaves the VMAR
        ensure_err!(r.unmap(base - PAGE, 2 * PAGE), Status::ERR_INVALID_ARGS); // starts before
        ensure_err!(raw_vmar(BOGUS).unmap(base, PAGE), Status::ERR_BAD_HANDLE);
        ensure_err!(
            raw_vmar(closed_handle()?).unmap(base, PAGE),
            Status::ERR_BAD_HANDLE
        );
        ensure_err!(
            raw_vmar(v.raw_handle()).unmap(base, PAGE),
            Status::ERR_WRONG_TYPE
        );
    }
    ensure_eq!(check!(contents(&r)), before);
    ensure_eq!(peek(base), 4);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn protect_handle_rights(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS | ZX_VM_CAN_MAP_EXECUTE, 4)?;
    let x = exec_vmo(1)?;
    check!(r.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, 0, &x, 0, PAGE));
    // SAFETY: (whole block) the denied calls change nothing; the allowed ones keep the page
    // readable, which is all this test does with it.
    unsafe {
        for (missing, perms) in [
            (ZX_RIGHT_READ, ZX_VM_PERM_READ),
            (ZX_RIGHT_WRITE, RW),
            (ZX_RIGHT_EXECUTE, RX),
        ] {
            let weak = vmar_dup(&r, ALL_VMAR & !missing)?;
            ensure_err!(weak.protect(perms, base, PAGE), Status::ERR_ACCESS_DENIED);
            ensure_eq!(check!(contents(&r)).0, [(base, PAGE, ZX_VM_PERM_READ)]);
            // The full handle may.
            check!(r.protect(perms, base, PAGE));
            check!(r.protect(ZX_VM_PERM_READ, base, PAGE));
        }
        check!(r.destroy());
    }
    Ok(())
}

fn protect_capped_by_vmo_rights_after_close(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS | ZX_VM_CAN_MAP_EXECUTE, 4)?;
    let v = vmo(2)?;
    let ro = check!(v.duplicate(ZX_RIGHT_READ | ZX_RIGHT_MAP));
    check!(r.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, 0, &ro, 0, PAGE));
    // A plain VMO handle has no EXECUTE: the second mapping can never be executable.
    check!(r.map(ZX_VM_SPECIFIC | RW, 2 * PAGE, &v, PAGE as u64, PAGE));
    check!(zx::Handle::from(ro).close());
    check!(zx::Handle::from(v).close());
    // SAFETY: (whole block) the calls fail or lower permissions of unused pages.
    unsafe {
        ensure_err!(r.protect(RW, base, PAGE), Status::ERR_ACCESS_DENIED);
        ensure_err!(r.protect(RX, base, PAGE), Status::ERR_ACCESS_DENIED);
        ensure_err!(
            r.protect(RX, base + 2 * PAGE, PAGE),
            Status::ERR_ACCESS_DENIED
        );
        ensure_err!(
            r.protect(RW | ZX_VM_PERM_EXECUTE, base + 2 * PAGE, PAGE),
            Status::ERR_ACCESS_DENIED
        );
        ensure_eq!(
            check!(contents(&r)).0,
            [(base, PAGE, ZX_VM_PERM_READ), (base + 2 * PAGE, PAGE, RW)]
        );
        // Within the cap everything works, also raising back up to it.
        check!(r.protect(0, base, PAGE));
        check!(r.protect(ZX_VM_PERM_READ, base, PAGE));
        check!(r.protect(ZX_VM_PERM_READ, base + 2 * PAGE, PAGE));
        check!(r.protect(RW, base + 2 * PAGE, PAGE));
        check!(r.destroy());
    }
    Ok(())
}

fn protect_through_parent_only_reduces(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RWS, 8)?;
    let (inner, _) = check!(r.allocate(CAN_RW, 0, 4 * PAGE));
    let v = vmo(2)?;
    let a = check!(inner.map(RW, 0, &v, 0, PAGE));
    let b = check!(inner.map(ZX_VM_PERM_READ, 0, &v, PAGE as u64, PAGE));
    // SAFETY: (whole block) the pages are only read from here on, or the call fails.
    unsafe {
        // Reducing through the parent is allowed...
        check!(r.protect(ZX_VM_PERM_READ, a, PAGE));
        check!(probe_for_read(a));
        ensure_err!(probe_for_write(a), Status::ERR_ACCESS_DENIED);
        // Both pages are read-only now (one entry if the two happen to be adjacent and merge).
        let (maps, _) = check!(contents(&inner));
        ensure!(
            !maps.is_empty()
                && maps.iter().all(|&(_, _, f)| f == ZX_VM_PERM_READ)
                && maps.iter().map(|&(_, len, _)| len).sum::<usize>() == 2 * PAGE
                && maps.iter().any(|&(at, len, _)| at <= a && a < at + len)
                && maps.iter().any(|&(at, len, _)| at <= b && b < at + len),
            "the sub-region's mappings {maps:?}: not exactly {a:#x} and {b:#x}, both read-only"
        );
        // ...so is leaving them unchanged...
        check!(r.protect(ZX_VM_PERM_READ, b, PAGE));
        // ...raising is not, even within the mapping's cap.
        ensure_err!(r.protect(RW, a, PAGE), Status::ERR_ACCESS_DENIED);
        ensure_err!(r.protect(RW, b, PAGE), Status::ERR_ACCESS_DENIED);
        // Directly on the sub-region, raising within the cap works.
        check!(inner.protect(RW, a, PAGE));
        let (m, _) = check!(contents(&inner));
        ensure!(m.contains(&(a, PAGE, RW)), "{m:?}");
        check!(probe_for_write(a));
        ensure_err!(probe_for_write(b), Status::ERR_ACCESS_DENIED);
        check!(r.destroy());
    }
    Ok(())
}

fn protect_subregion_needs_op_children(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_RWS, 8)?;
    let (inner, _) = check!(r.allocate(CAN_RW, 0, 4 * PAGE));
    let v = vmo(1)?;
    let a = check!(inner.map(RW, 0, &v, 0, PAGE));
    let weak = vmar_dup(&r, ALL_VMAR & !ZX_RIGHT_OP_CHILDREN & !ZX_RIGHT_EXECUTE)?;
    // SAFETY: (whole block) the call fails.
    unsafe {
        ensure_err!(
            weak.protect(ZX_VM_PERM_READ, a, PAGE),
            Status::ERR_INVALID_ARGS
        );
    }
    ensure_eq!(check!(contents(&inner)).0, [(a, PAGE, RW)]);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn protect_errors_change_nothing(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 4)?;
    let v = vmo(2)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 2 * PAGE));
    let before = check!(contents(&r));
    let huge = usize::MAX & !(PAGE - 1);
    // SAFETY: (whole block) every call fails.
    unsafe {
        // The range runs into a hole after two mapped pages: nothing is changed, not even the
        // mapped part.
        ensure_err!(
            r.protect(ZX_VM_PERM_READ, base, 3 * PAGE),
            Status::ERR_NOT_FOUND
        );
        ensure_err!(
            r.protect(ZX_VM_PERM_READ, base, huge),
            Status::ERR_INVALID_ARGS
        );
        ensure_err!(
            r.protect(ZX_VM_PERM_READ, base, 5 * PAGE),
            Status::ERR_INVALID_ARGS
        );
        ensure_err!(
            r.protect(ZX_VM_PERM_READ | ZX_VM_SPECIFIC, base, PAGE),
            Status::ERR_INVALID_ARGS
        );
        ensure_err!(
            r.protect(ZX_VM_PERM_WRITE, base, PAGE),
            Status::ERR_INVALID_ARGS
        );
        ensure_err!(
            raw_vmar(BOGUS).protect(ZX_VM_PERM_READ, base, PAGE),
            Status::ERR_BAD_HANDLE
        );
        ensure_err!(
            raw_vmar(closed_handle()?).protect(ZX_VM_PERM_READ, base, PAGE),
            Status::ERR_BAD_HANDLE
        );
        ensure_err!(
            raw_vmar(v.raw_handle()).protect(ZX_VM_PERM_READ, base, PAGE),
            Status::ERR_WRONG_TYPE
        );
    }
    ensure_eq!(check!(contents(&r)), before);
    // Still writable, both pages.
    check!(probe_for_write(base));
    check!(probe_for_write(base + PAGE));
    poke(base + PAGE, 1);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    // SAFETY: the call fails.
    let dead = unsafe { r.protect(ZX_VM_PERM_READ, base, PAGE) };
    ensure_err!(dead, Status::ERR_BAD_STATE);
    Ok(())
}

fn protect_rounds_len_up(ctx: &Ctx) -> TestResult {
    // ZIRCON: an unaligned len is rounded up to whole pages (the spec lists no error for it).
    let (r, base) = region(ctx, CAN_RWS, 4)?;
    let v = vmo(3)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 3 * PAGE));
    // SAFETY: pages 0 and 1 are only read from here on.
    check!(unsafe { r.protect(ZX_VM_PERM_READ, base, PAGE + 1) });
    ensure_eq!(
        check!(contents(&r)).0,
        [
            (base, 2 * PAGE, ZX_VM_PERM_READ),
            (base + 2 * PAGE, PAGE, RW)
        ]
    );
    // The hardware agrees: the second page lost WRITE too, the third kept it.
    ensure_err!(probe_for_write(base + PAGE), Status::ERR_ACCESS_DENIED);
    check!(probe_for_read(base + PAGE));
    check!(probe_for_write(base + 2 * PAGE));
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn protect_then_execute(ctx: &Ctx) -> TestResult {
    // Hardware: a page made executable by protect runs (the NX side is `fault::*`).
    let x = exec_vmo(1)?;
    let (r, _) = region(ctx, CAN_RW | ZX_VM_CAN_MAP_EXECUTE, 2)?;
    let code = check!(r.map(RW, 0, &x, 0, PAGE));
    // SAFETY: our own writable page.
    unsafe { (code as *mut u8).write_volatile(0xc3) };
    // SAFETY: the page is no longer written.
    check!(unsafe { r.protect(RX, code, PAGE) });
    // SAFETY: the page holds a `ret` and is now executable.
    let f: extern "C" fn() = unsafe { core::mem::transmute(code) };
    f();
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn destroy_leaves_handles_valid_but_dead(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RWS, 8)?;
    let v = vmo(2)?;
    let a = check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, PAGE));
    let (inner, _) = check!(r.allocate(CAN_RWS | ZX_VM_SPECIFIC, 4 * PAGE, 2 * PAGE));
    let b = check!(inner.map(RW, 0, &v, PAGE as u64, PAGE));
    poke(a, 1);
    poke(b, 2);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    ensure!(!check!(is_mapped(ctx, a)));
    ensure!(!check!(is_mapped(ctx, b)));
    // The VMO keeps its pages (only the mappings went).
    let mut buf = [0u8; 8];
    check!(v.read(&mut buf, PAGE as u64));
    ensure_eq!(u64::from_le_bytes(buf), 2);
    for h in [&r, &inner] {
        check!(h.handle().basic_info());
        ensure_err!(h.allocate(CAN_RW, 0, PAGE), Status::ERR_BAD_STATE);
        ensure_err!(h.map(RW, 0, &v, 0, PAGE), Status::ERR_BAD_STATE);
        // SAFETY: (whole block) every call fails.
        unsafe {
            ensure_err!(h.unmap(base, PAGE), Status::ERR_BAD_STATE);
            ensure_err!(h.protect(ZX_VM_PERM_READ, b, PAGE), Status::ERR_BAD_STATE);
            ensure_err!(
                h.op_range(abi::ops::ZX_VMAR_OP_COMMIT, b, PAGE),
                Status::ERR_BAD_STATE
            );
            ensure_err!(h.destroy(), Status::ERR_BAD_STATE);
        }
        ensure_err!(zx::process::maps(h.handle()), Status::ERR_BAD_STATE);
    }
    Ok(())
}

fn destroy_bad_handles(_ctx: &Ctx) -> TestResult {
    // SAFETY: (whole block) every call fails.
    unsafe {
        ensure_err!(raw_vmar(BOGUS).destroy(), Status::ERR_BAD_HANDLE);
        ensure_err!(raw_vmar(closed_handle()?).destroy(), Status::ERR_BAD_HANDLE);
        let t = zx::Vmo::create(PAGE as u64, 0);
        let t = check!(t);
        ensure_err!(raw_vmar(t.raw_handle()).destroy(), Status::ERR_WRONG_TYPE);
    }
    Ok(())
}
