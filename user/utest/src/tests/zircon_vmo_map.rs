//! The mapping scenarios of Zircon's VMO core tests (`zircon/system/utest/core/vmo/vmo.cc`),
//! written anew: which VMO handle rights allow which mapping permissions (`Rights`), decommit
//! seen through aliasing mappings (`Commit`), the shared zero page (`ZeroPage`), mappings without
//! permissions and protect to none (`NoPermMap`, `NoPermProtect`), and REQUIRE_NON_RESIZABLE
//! (`Resize`, `NoResize`).
//!
//! Two scenarios differ from Zircon's by the spec's ALLOW_FAULTS rules (docs/conformance.md):
//! a mapping past the end of a non-resizable VMO is BUFFER_TOO_SMALL without ALLOW_FAULTS, so
//! `Commit`'s third mapping uses a VMO large enough; a resizable VMO needs ALLOW_FAULTS.

use abi::ops::*;
use abi::rights::*;
use abi::vm_options::*;
use abi::vmo_options::ZX_VMO_RESIZABLE;
use abi::Status;
use zx::probe::{probe_for_read, probe_for_write};
use zx::Vmo;

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    vmo_rights_map_matrix,
    decommit_through_aliased_mappings,
    zero_page_shared_by_mappings,
    no_permission_mappings,
    resizable_and_require_non_resizable,
);

const RWX: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE;

/// `Rights`: for VMO handles with various rights, map with no permission, R, W, RW, RWX, RX:
/// OK exactly when the handle has MAP and every permission's right; W alone is INVALID_ARGS
/// (checked before rights), except that a handle without MAP is ACCESS_DENIED first.
fn vmo_rights_map_matrix(ctx: &Ctx) -> TestResult {
    let len = 4 * PAGE;
    let v = exec_vmo(4)?;
    let ok = Ok(());
    let denied = Err(Status::ERR_ACCESS_DENIED);
    let invalid = Err(Status::ERR_INVALID_ARGS);
    let perms = [
        0,
        ZX_VM_PERM_READ,
        ZX_VM_PERM_WRITE,
        RW,
        RWX,
        ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE,
    ];
    let rows: [(u32, [Result<(), Status>; 6]); 6] = [
        (
            ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE | ZX_RIGHT_DUPLICATE,
            [denied, denied, denied, denied, denied, denied],
        ),
        (
            ZX_RIGHT_READ | ZX_RIGHT_MAP,
            [ok, ok, invalid, denied, denied, denied],
        ),
        (
            ZX_RIGHT_WRITE | ZX_RIGHT_MAP,
            [ok, denied, invalid, denied, denied, denied],
        ),
        (
            ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_MAP,
            [ok, ok, invalid, ok, denied, denied],
        ),
        (
            ZX_RIGHT_READ | ZX_RIGHT_EXECUTE | ZX_RIGHT_MAP,
            [ok, ok, invalid, denied, denied, ok],
        ),
        (
            ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE | ZX_RIGHT_MAP,
            [ok, ok, invalid, ok, ok, ok],
        ),
    ];
    for (rights, expected) in rows {
        let h = check!(v.duplicate(rights));
        for (perm, want) in perms.into_iter().zip(expected) {
            let got = ctx.root.map(perm, 0, &h, 0, len);
            if let Ok(a) = got {
                // SAFETY: nothing refers to the new mapping.
                check!(unsafe { ctx.root.unmap(a, len) });
            }
            ensure!(
                got.map(|_| ()) == want,
                "rights {rights:#x}, perms {perm:#x}: {got:?}, expected {want:?}"
            );
        }
    }
    Ok(())
}

/// `Commit`: three mappings of one VMO (offsets 0, one page, past the first window); decommitting
/// page 0 leaves what page 1 shows; decommitting page 1 zeroes it in both aliasing mappings.
fn decommit_through_aliased_mappings(ctx: &Ctx) -> TestResult {
    let size = 4 * PAGE;
    let v = vmo(12)?;
    check!(v.op_range(ZX_VMO_OP_COMMIT, 0, size as u64));
    check!(v.op_range(ZX_VMO_OP_DECOMMIT, 0, size as u64));
    check!(v.op_range(ZX_VMO_OP_COMMIT, 0, size as u64));
    let p1 = check!(ctx.root.map(RW, 0, &v, 0, size));
    let p2 = check!(ctx.root.map(RW, 0, &v, PAGE as u64, size));
    let p3 = check!(ctx.root.map(RW, 0, &v, 2 * size as u64, size));
    poke(p1 + PAGE, 99);
    ensure_eq!(peek(p1 + PAGE), 99);
    ensure_eq!(peek(p2), 99);
    check!(v.op_range(ZX_VMO_OP_DECOMMIT, 0, PAGE as u64));
    ensure_eq!((peek(p1 + PAGE), peek(p2)), (99, 99));
    check!(v.op_range(ZX_VMO_OP_DECOMMIT, PAGE as u64, PAGE as u64));
    ensure_eq!((peek(p1 + PAGE), peek(p2)), (0, 0));
    // The third mapping shows pages 8..12 only: a write through it lands at offset 8 pages,
    // and decommitting pages 0..8 leaves it alone.
    poke(p3 + PAGE, 77);
    let mut at = [0u8; 8];
    check!(v.read(&mut at, (2 * size + PAGE) as u64));
    ensure!(
        u64::from_le_bytes(at) == 77,
        "a write through the third mapping left {:#x} at VMO page 9, not 77",
        u64::from_le_bytes(at)
    );
    check!(v.op_range(ZX_VMO_OP_DECOMMIT, 0, 2 * size as u64));
    let (first, third) = (peek(p1 + PAGE), peek(p3 + PAGE));
    ensure!(
        (first, third) == (0, 77),
        "after decommitting pages 0..8: the first mapping reads {first}, the third {third} \
         (expected 0 and 77)"
    );
    // SAFETY: (whole block) nothing refers to the mappings any more.
    unsafe {
        for p in [p1, p2, p3] {
            check!(ctx.root.unmap(p, size));
        }
    }
    Ok(())
}

/// `ZeroPage`: three mappings of one VMO; a read fault, then a write through another mapping,
/// is seen by all; `zx_vmo_write` and COMMIT after a read fault are seen through the mapping.
fn zero_page_shared_by_mappings(ctx: &Ctx) -> TestResult {
    let size = 4 * PAGE;
    let v = vmo(4)?;
    let mut p = [0usize; 3];
    for a in p.iter_mut() {
        *a = check!(ctx.root.map(RW, 0, &v, 0, size));
    }
    ensure_eq!(peek(p[0]), 0);
    poke(p[1], 99);
    ensure_eq!(peek(p[1]), 99);
    ensure_eq!(peek(p[2]), 99);
    ensure_eq!(peek(p[0]), 99);
    ensure_eq!(peek(p[0] + PAGE), 0);
    check!(v.write(&100u64.to_le_bytes(), PAGE as u64));
    ensure_eq!(peek(p[0] + PAGE), 100);
    ensure_eq!(peek(p[0] + 2 * PAGE), 0);
    check!(v.op_range(ZX_VMO_OP_COMMIT, 2 * PAGE as u64, PAGE as u64));
    check!(v.write(&100u64.to_le_bytes(), 2 * PAGE as u64));
    ensure_eq!(peek(p[0] + 2 * PAGE), 100);
    // SAFETY: (whole block) nothing refers to the mappings any more.
    unsafe {
        for a in p {
            check!(ctx.root.unmap(a, size));
        }
    }
    Ok(())
}

/// `NoPermMap` / `NoPermProtect`: a read-only mapping protected to no permission, and a mapping
/// made without permissions, are inaccessible (no permission bits in `ZX_INFO_VMAR_MAPS`; still
/// mapped for the debugger calls); protect to READ makes the latter readable.
fn no_permission_mappings(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    check!(v.write(&[0x42], 0));
    let a = check!(ctx.root.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    ensure_err!(probe_for_write(a), Status::ERR_ACCESS_DENIED);
    // SAFETY: (whole block) nothing accesses a mapping its protection forbids (the probes fault
    // in helper threads).
    unsafe {
        check!(ctx.root.protect(0, a, PAGE));
        ensure!(check!(contents(&ctx.root)).0.contains(&(a, PAGE, 0)));
        ensure!(check!(is_mapped(ctx, a)));
        ensure_err!(probe_for_read(a), Status::ERR_ACCESS_DENIED);
        ensure_err!(probe_for_write(a), Status::ERR_ACCESS_DENIED);
        check!(ctx.root.unmap(a, PAGE));
        let b = check!(ctx.root.map(0, 0, &v, 0, PAGE));
        ensure!(check!(contents(&ctx.root)).0.contains(&(b, PAGE, 0)));
        ensure_err!(probe_for_write(b), Status::ERR_ACCESS_DENIED);
        ensure_err!(probe_for_read(b), Status::ERR_ACCESS_DENIED);
        check!(ctx.root.protect(ZX_VM_PERM_READ, b, PAGE));
        ensure_err!(probe_for_write(b), Status::ERR_ACCESS_DENIED);
        check!(probe_for_read(b));
        ensure!(check!(contents(&ctx.root))
            .0
            .contains(&(b, PAGE, ZX_VM_PERM_READ)));
        ensure_eq!((b as *const u8).read_volatile(), 0x42);
        ensure_err!(
            ctx.root.protect(ZX_VM_PERM_WRITE, b, PAGE),
            Status::ERR_INVALID_ARGS
        );
        check!(ctx.root.unmap(b, PAGE));
    }
    Ok(())
}

/// `Resize` / `NoResize`: a resizable VMO maps with ALLOW_FAULTS (the spec requires it; Zircon's
/// test maps without), never with REQUIRE_NON_RESIZABLE (NOT_SUPPORTED), and can be resized while
/// mapped; a non-resizable VMO maps with REQUIRE_NON_RESIZABLE and cannot be resized.
fn resizable_and_require_non_resizable(ctx: &Ctx) -> TestResult {
    let len = 5 * PAGE;
    let r = check!(Vmo::create(len as u64, ZX_VMO_RESIZABLE));
    ensure_err!(
        ctx.root.map(ZX_VM_PERM_READ, 0, &r, 0, len),
        Status::ERR_NOT_SUPPORTED
    );
    let a = check!(ctx
        .root
        .map(ZX_VM_PERM_READ | ZX_VM_ALLOW_FAULTS, 0, &r, 0, len));
    for opts in [
        ZX_VM_PERM_READ | ZX_VM_REQUIRE_NON_RESIZABLE,
        ZX_VM_PERM_READ | ZX_VM_REQUIRE_NON_RESIZABLE | ZX_VM_ALLOW_FAULTS,
    ] {
        ensure_err!(ctx.root.map(opts, 0, &r, 0, len), Status::ERR_NOT_SUPPORTED);
    }
    // Resized while mapped: grown (the mapping keeps its length) and shrunk below it (the pages
    // past the new end fault with OUT_OF_RANGE, the rest stay readable), then grown back (the
    // regained pages read as zeros).
    check!(r.write(&[7], 0));
    // Page 3 holds a marker and is faulted in: a shrink past it must remove its entry and its
    // contents (a stale entry would keep it readable, a kept frame would keep the marker).
    check!(r.write(&[9], 3 * PAGE as u64));
    // SAFETY: the byte is in the readable mapping and within the VMO.
    ensure_eq!(unsafe { ((a + 3 * PAGE) as *const u8).read_volatile() }, 9);
    check!(r.set_size(2 * len as u64));
    ensure_eq!(check!(r.get_size()), 2 * len as u64);
    check!(probe_for_read(a + len - 1));
    check!(r.set_size(2 * PAGE as u64));
    ensure_eq!(check!(r.get_size()), 2 * PAGE as u64);
    check!(probe_for_read(a + PAGE));
    ensure_err!(probe_for_read(a + 2 * PAGE), Status::ERR_OUT_OF_RANGE);
    ensure_err!(probe_for_read(a + 3 * PAGE), Status::ERR_OUT_OF_RANGE);
    ensure_err!(probe_for_read(a + len - 1), Status::ERR_OUT_OF_RANGE);
    check!(r.set_size(len as u64));
    check!(probe_for_read(a + len - 1));
    // SAFETY: both bytes are in the readable mapping and within the VMO again.
    let (last, first) = unsafe {
        (
            ((a + 4 * PAGE) as *const u8).read_volatile(),
            (a as *const u8).read_volatile(),
        )
    };
    ensure_eq!((last, first), (0, 7));
    // SAFETY: as above.
    ensure_eq!(unsafe { ((a + 3 * PAGE) as *const u8).read_volatile() }, 0);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(a, len) });
    let n = vmo(4)?;
    // ZIRCON: a non-resizable VMO's handles lack RESIZE, yet set_size answers UNAVAILABLE: the
    // RESIZE right is checked only for resizable VMOs (current `sys_vmo_set_size`).
    ensure_err!(n.set_size(5 * PAGE as u64), Status::ERR_UNAVAILABLE);
    ensure_err!(n.set_size(3 * PAGE as u64), Status::ERR_UNAVAILABLE);
    let b = check!(ctx
        .root
        .map(RW | ZX_VM_REQUIRE_NON_RESIZABLE, 0, &n, 0, 4 * PAGE));
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(b, 4 * PAGE) });
    Ok(())
}
