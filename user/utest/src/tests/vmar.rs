//! VMARs: allocate, map, unmap, protect, destroy, op_range — success paths, placement options
//! (SPECIFIC, COMPACT, OFFSET_IS_UPPER_LIMIT, alignment), nested permission inheritance and every
//! documented error cause.

use abi::ops::*;
use abi::rights::*;
use abi::vm_options::*;
use abi::vmo_options::ZX_VMO_RESIZABLE;
use abi::Status;
use zx::{Vmar, Vmo};

use super::util::{contents, is_mapped};
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    map_basic,
    map_shares_vmo_contents,
    map_specific,
    map_specific_overlap,
    map_upper_limit,
    map_aligned,
    map_errors,
    map_rights,
    map_past_vmo_end,
    map_resizable_needs_allow_faults,
    unmap_basic,
    unmap_partial_splits,
    unmap_errors,
    protect_basic,
    protect_errors,
    allocate_basic,
    allocate_errors,
    allocate_compact,
    nested_permissions,
    child_vmar_rights,
    destroy,
    destroy_errors,
    op_range,
    op_range_errors,
    demand_faults_commit,
);

const RW: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
const CAN_RW: u32 = ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE;
const CAN_ALL: u32 = CAN_RW | ZX_VM_CAN_MAP_SPECIFIC;

fn poke(addr: usize, v: u64) {
    // SAFETY: every caller passes an 8-aligned address inside a read-write mapping it created
    // and that no Rust reference covers.
    unsafe { (addr as *mut u64).write_volatile(v) }
}

fn peek(addr: usize) -> u64 {
    // SAFETY: every caller passes an 8-aligned address inside a readable mapping it created.
    unsafe { (addr as *const u64).read_volatile() }
}

fn vmo(pages: usize) -> Result<Vmo, crate::harness::Failure> {
    Ok(check!(Vmo::create((pages * PAGE) as u64, 0)))
}

/// A sub-VMAR of `pages` pages of the root with `options`.
fn region(ctx: &Ctx, options: u32, pages: usize) -> Result<(Vmar, usize), crate::harness::Failure> {
    Ok(check!(ctx.root.allocate(options, 0, pages * PAGE)))
}

fn map_basic(ctx: &Ctx) -> TestResult {
    let v = vmo(2)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, 2 * PAGE));
    ensure!(addr != 0 && addr % PAGE == 0, "addr {addr:#x}");
    poke(addr, 0x1122_3344);
    poke(addr + PAGE + 8, 0x5566);
    ensure_eq!(peek(addr), 0x1122_3344);
    // SAFETY: nothing refers to the mapping any more.
    check!(unsafe { ctx.root.unmap(addr, 2 * PAGE) });
    Ok(())
}

fn map_shares_vmo_contents(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    check!(v.write(&0xabcdu64.to_le_bytes(), 64));
    let a = check!(ctx.root.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    let b = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    ensure!(a != b);
    ensure_eq!(peek(a + 64), 0xabcd);
    poke(b + 128, 77);
    ensure_eq!(peek(a + 128), 77);
    let mut buf = [0u8; 8];
    check!(v.read(&mut buf, 128));
    ensure_eq!(u64::from_le_bytes(buf), 77);
    // SAFETY: nothing refers to the mappings any more.
    unsafe {
        check!(ctx.root.unmap(a, PAGE));
        check!(ctx.root.unmap(b, PAGE));
    }
    Ok(())
}

fn map_specific(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 8)?;
    let v = vmo(2)?;
    let addr = check!(r.map(ZX_VM_SPECIFIC | RW, 3 * PAGE, &v, 0, 2 * PAGE));
    ensure_eq!(addr, base + 3 * PAGE);
    poke(addr, 1);
    // SAFETY: nothing refers to the region's memory any more.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn map_specific_overlap(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 8)?;
    let v = vmo(2)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 2 * PAGE, &v, 0, 2 * PAGE));
    ensure_err!(
        r.map(ZX_VM_SPECIFIC | RW, 3 * PAGE, &v, 0, 2 * PAGE),
        Status::ERR_ALREADY_EXISTS
    );
    // SPECIFIC_OVERWRITE replaces it.
    let other = vmo(1)?;
    check!(other.write(&9u64.to_le_bytes(), 0));
    // SAFETY: nothing refers to the replaced page.
    let addr = check!(unsafe {
        r.map_unchecked(ZX_VM_SPECIFIC_OVERWRITE | RW, 3 * PAGE, &other, 0, PAGE)
    });
    ensure_eq!(addr, base + 3 * PAGE);
    ensure_eq!(peek(addr), 9);
    // SAFETY: nothing refers to the region's memory any more.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn map_upper_limit(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 64)?;
    let v = vmo(1)?;
    for _ in 0..8 {
        let addr = check!(r.map(ZX_VM_OFFSET_IS_UPPER_LIMIT | RW, 16 * PAGE, &v, 0, PAGE));
        ensure!(
            addr >= base && addr + PAGE <= base + 16 * PAGE,
            "{addr:#x} not below the limit {:#x}",
            base + 16 * PAGE
        );
    }
    ensure_err!(
        r.map(
            ZX_VM_OFFSET_IS_UPPER_LIMIT | ZX_VM_SPECIFIC | RW,
            16 * PAGE,
            &v,
            0,
            PAGE
        ),
        Status::ERR_INVALID_ARGS
    );
    // SAFETY: nothing refers to the region's memory any more.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn map_aligned(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(ZX_VM_ALIGN_1MB | RW, 0, &v, 0, PAGE));
    ensure_eq!(addr % (1 << 20), 0);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    ensure_err!(
        ctx.root.map((9 << ZX_VM_ALIGN_BASE) | RW, 0, &v, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    Ok(())
}

fn map_errors(ctx: &Ctx) -> TestResult {
    let v = vmo(2)?;
    let root = &ctx.root;
    ensure_err!(root.map(RW, 0, &v, 0, 0), Status::ERR_INVALID_ARGS);
    // An unaligned len is rounded up (Zircon; the spec text says INVALID_ARGS).
    let a = check!(root.map(RW, 0, &v, 0, 100));
    ensure!(check!(contents(root)).0.contains(&(a, PAGE, RW)));
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { root.unmap(a, 100) });
    ensure!(!check!(is_mapped(ctx, a)));
    ensure_err!(root.map(RW, PAGE, &v, 0, PAGE), Status::ERR_INVALID_ARGS);
    ensure_err!(root.map(RW, 0, &v, 10, PAGE), Status::ERR_INVALID_ARGS);
    ensure_err!(
        root.map(ZX_VM_PERM_WRITE, 0, &v, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    ensure_err!(
        root.map(RW | (1 << 20), 0, &v, 0, PAGE),
        Status::ERR_INVALID_ARGS
    );
    ensure_err!(
        root.map(RW, 0, &v, u64::MAX - (PAGE as u64 - 1), PAGE),
        Status::ERR_OUT_OF_RANGE
    );
    // Handles of the wrong kind.
    let as_vmar = Vmar::from(check!(v.handle().duplicate(ZX_RIGHT_SAME_RIGHTS)));
    ensure_err!(as_vmar.map(RW, 0, &v, 0, PAGE), Status::ERR_WRONG_TYPE);
    let as_vmo = Vmo::from(check!(ctx.root.handle().duplicate(ZX_RIGHT_SAME_RIGHTS)));
    ensure_err!(root.map(RW, 0, &as_vmo, 0, PAGE), Status::ERR_WRONG_TYPE);
    let bogus = Vmar::from(zx::Handle::from_raw(0x7777_7773));
    ensure_err!(bogus.map(RW, 0, &v, 0, PAGE), Status::ERR_BAD_HANDLE);
    core::mem::forget(bogus);
    // A 1-page region is full after one mapping.
    let (r, _) = region(ctx, CAN_RW, 1)?;
    check!(r.map(RW, 0, &v, 0, PAGE));
    ensure_err!(r.map(RW, 0, &v, 0, PAGE), Status::ERR_NO_RESOURCES);
    // SPECIFIC without CAN_MAP_SPECIFIC.
    let (r2, _) = region(ctx, CAN_RW, 4)?;
    ensure_err!(
        r2.map(ZX_VM_SPECIFIC | RW, PAGE, &v, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // SPECIFIC beyond the region's end.
    let (r3, _) = region(ctx, CAN_ALL, 4)?;
    ensure_err!(
        r3.map(ZX_VM_SPECIFIC | RW, 3 * PAGE, &v, 0, 2 * PAGE),
        Status::ERR_INVALID_ARGS
    );
    // SAFETY: nothing refers to the regions' memory.
    unsafe {
        check!(r.destroy());
        check!(r2.destroy());
        check!(r3.destroy());
    }
    Ok(())
}

fn map_rights(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let ro = check!(v.duplicate(ZX_RIGHT_READ | ZX_RIGHT_MAP));
    check!(ctx.root.map(ZX_VM_PERM_READ, 0, &ro, 0, PAGE));
    ensure_err!(ctx.root.map(RW, 0, &ro, 0, PAGE), Status::ERR_ACCESS_DENIED);
    let no_map = check!(v.duplicate(ZX_RIGHT_READ | ZX_RIGHT_WRITE));
    ensure_err!(
        ctx.root.map(ZX_VM_PERM_READ, 0, &no_map, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // No EXECUTE right on a plain VMO.
    ensure_err!(
        ctx.root
            .map(ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE, 0, &v, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    let x = check!(
        check!(v.duplicate(ZX_RIGHT_SAME_RIGHTS)).replace_as_executable(&zx::Handle::invalid())
    );
    let addr = check!(ctx
        .root
        .map(ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE, 0, &x, 0, PAGE));
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    Ok(())
}

fn map_past_vmo_end(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    ensure_err!(
        ctx.root.map(RW, 0, &v, 0, 2 * PAGE),
        Status::ERR_BUFFER_TOO_SMALL
    );
    let addr = check!(ctx.root.map(ZX_VM_ALLOW_FAULTS | RW, 0, &v, 0, 2 * PAGE));
    poke(addr, 5);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, 2 * PAGE) });
    Ok(())
}

fn map_resizable_needs_allow_faults(ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(PAGE as u64, ZX_VMO_RESIZABLE));
    ensure_err!(ctx.root.map(RW, 0, &v, 0, PAGE), Status::ERR_NOT_SUPPORTED);
    ensure_err!(
        ctx.root.map(
            ZX_VM_REQUIRE_NON_RESIZABLE | ZX_VM_ALLOW_FAULTS | RW,
            0,
            &v,
            0,
            PAGE
        ),
        Status::ERR_NOT_SUPPORTED
    );
    let addr = check!(ctx.root.map(ZX_VM_ALLOW_FAULTS | RW, 0, &v, 0, PAGE));
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    Ok(())
}

fn unmap_basic(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 4)?;
    let v = vmo(2)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 2 * PAGE));
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { r.unmap(base, 2 * PAGE) });
    // The range is free again.
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 2 * PAGE));
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn unmap_partial_splits(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 4)?;
    let v = vmo(3)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 3 * PAGE));
    poke(base, 1);
    poke(base + 2 * PAGE, 3);
    // SAFETY: nothing refers to the middle page.
    check!(unsafe { r.unmap(base + PAGE, PAGE) });
    ensure_eq!(peek(base), 1);
    ensure_eq!(peek(base + 2 * PAGE), 3);
    // The hole can be mapped again.
    check!(r.map(ZX_VM_SPECIFIC | RW, PAGE, &v, PAGE as u64, PAGE));
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn unmap_errors(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 8)?;
    let (_inner, inner_base) = check!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, 4 * PAGE, 2 * PAGE));
    ensure_eq!(inner_base, base + 4 * PAGE);
    // SAFETY: (whole block) these calls fail or unmap nothing in use.
    unsafe {
        ensure_err!(r.unmap(base + 1, PAGE), Status::ERR_INVALID_ARGS);
        ensure_err!(r.unmap(base, 0), Status::ERR_INVALID_ARGS);
        // Partially covers the sub-region.
        ensure_err!(r.unmap(base + 3 * PAGE, 2 * PAGE), Status::ERR_INVALID_ARGS);
        // Nothing mapped there: OK (Zircon; the spec text says NOT_FOUND).
        check!(r.unmap(base, PAGE));
        let bogus = Vmar::from(zx::Handle::from_raw(0x7777_7773));
        ensure_err!(bogus.unmap(base, PAGE), Status::ERR_BAD_HANDLE);
        core::mem::forget(bogus);
        check!(r.destroy());
        ensure_err!(r.unmap(base, PAGE), Status::ERR_BAD_STATE);
    }
    Ok(())
}

fn protect_basic(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 4)?;
    let v = vmo(3)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 3 * PAGE));
    poke(base + PAGE, 11);
    // SAFETY: the middle page is only read from now on.
    check!(unsafe { r.protect(ZX_VM_PERM_READ, base + PAGE, PAGE) });
    ensure_eq!(peek(base + PAGE), 11);
    let maps = check!(zx::process::maps(r.handle()));
    let perms: alloc::vec::Vec<u32> = maps
        .iter()
        .filter_map(|m| m.mapping().map(|mm| mm.mmu_flags))
        .collect();
    ensure_eq!(perms, [RW, ZX_VM_PERM_READ, RW]);
    // And back to read-write.
    // SAFETY: raising permissions invalidates nothing.
    check!(unsafe { r.protect(RW, base + PAGE, PAGE) });
    poke(base + PAGE, 12);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn protect_errors(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 4)?;
    let v = vmo(2)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 2 * PAGE));
    let ro = check!(v.duplicate(ZX_RIGHT_READ | ZX_RIGHT_MAP));
    check!(r.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, 2 * PAGE, &ro, 0, PAGE));
    // SAFETY: (whole block) every call fails or lowers permissions of unused memory.
    unsafe {
        ensure_err!(
            r.protect(ZX_VM_PERM_WRITE, base, PAGE),
            Status::ERR_INVALID_ARGS
        );
        ensure_err!(
            r.protect(ZX_VM_PERM_READ, base + 8, PAGE),
            Status::ERR_INVALID_ARGS
        );
        ensure_err!(
            r.protect(ZX_VM_PERM_READ, base, 0),
            Status::ERR_INVALID_ARGS
        );
        ensure_err!(
            r.protect(ZX_VM_PERM_READ, base + 3 * PAGE, PAGE),
            Status::ERR_NOT_FOUND
        );
        // Beyond the VMAR's CAN_MAP_* (no EXECUTE).
        ensure_err!(
            r.protect(ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE, base, PAGE),
            Status::ERR_ACCESS_DENIED
        );
        // Beyond the rights of the VMO handle the mapping was made with.
        ensure_err!(
            r.protect(RW, base + 2 * PAGE, PAGE),
            Status::ERR_ACCESS_DENIED
        );
        check!(r.destroy());
    }
    Ok(())
}

fn allocate_basic(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 16)?;
    ensure!(base != 0 && base % PAGE == 0);
    let info = check!(r.info());
    ensure_eq!((info.base, info.len), (base, 16 * PAGE));
    let (c, cbase) = check!(r.allocate(CAN_RW | ZX_VM_SPECIFIC, 8 * PAGE, 4 * PAGE));
    ensure_eq!(cbase, base + 8 * PAGE);
    let v = vmo(1)?;
    let addr = check!(c.map(RW, 0, &v, 0, PAGE));
    ensure!(addr >= cbase && addr < cbase + 4 * PAGE);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn allocate_errors(ctx: &Ctx) -> TestResult {
    let (r, _) = region(ctx, CAN_ALL, 8)?;
    ensure_err!(r.allocate(CAN_RW, PAGE, PAGE), Status::ERR_INVALID_ARGS);
    ensure_err!(r.allocate(CAN_RW, 0, 0), Status::ERR_INVALID_ARGS);
    ensure_err!(r.allocate(CAN_RW, 0, 100), Status::ERR_INVALID_ARGS);
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_SPECIFIC, 6 * PAGE, 4 * PAGE),
        Status::ERR_INVALID_ARGS
    );
    ensure_err!(
        r.allocate(
            CAN_RW | ZX_VM_SPECIFIC | ZX_VM_OFFSET_IS_UPPER_LIMIT,
            4 * PAGE,
            PAGE
        ),
        Status::ERR_INVALID_ARGS
    );
    // Larger than the region: "exceeding the region bounds" is INVALID_ARGS (spec); a region
    // with no free range left is NO_RESOURCES (Zircon; the spec text says NO_MEMORY).
    ensure_err!(r.allocate(CAN_RW, 0, 16 * PAGE), Status::ERR_INVALID_ARGS);
    let (full, _) = check!(r.allocate(CAN_RW, 0, 8 * PAGE));
    ensure_err!(r.allocate(CAN_RW, 0, PAGE), Status::ERR_NO_RESOURCES);
    // SAFETY: nothing is mapped in the sub-region.
    check!(unsafe { full.destroy() });
    ensure_err!(
        r.allocate(CAN_RW | ZX_VM_CAN_MAP_EXECUTE, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    let bogus = Vmar::from(zx::Handle::from_raw(0x7777_7773));
    ensure_err!(bogus.allocate(CAN_RW, 0, PAGE), Status::ERR_BAD_HANDLE);
    core::mem::forget(bogus);
    let v = vmo(1)?;
    let as_vmar = Vmar::from(check!(v.handle().duplicate(ZX_RIGHT_SAME_RIGHTS)));
    ensure_err!(as_vmar.allocate(CAN_RW, 0, PAGE), Status::ERR_WRONG_TYPE);
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r.destroy() });
    ensure_err!(r.allocate(CAN_RW, 0, PAGE), Status::ERR_BAD_STATE);
    Ok(())
}

fn allocate_compact(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_RW | ZX_VM_COMPACT, 1024)?;
    let v = vmo(1)?;
    let mut addrs = alloc::vec::Vec::new();
    for _ in 0..6 {
        addrs.push(check!(r.map(RW, 0, &v, 0, PAGE)));
    }
    addrs.sort_unstable();
    let spread = addrs[5] - addrs[0];
    ensure!(
        spread <= 16 * PAGE,
        "COMPACT mappings spread over {spread:#x} bytes in a region at {base:#x}"
    );
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn nested_permissions(ctx: &Ctx) -> TestResult {
    // A read-only region: its children and mappings can be at most read-only.
    let (ro, _) = region(ctx, ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_SPECIFIC, 16)?;
    ensure_err!(ro.allocate(CAN_RW, 0, 4 * PAGE), Status::ERR_ACCESS_DENIED);
    let (inner, _) = check!(ro.allocate(ZX_VM_CAN_MAP_READ, 0, 4 * PAGE));
    let v = vmo(1)?;
    ensure_err!(inner.map(RW, 0, &v, 0, PAGE), Status::ERR_ACCESS_DENIED);
    ensure_err!(ro.map(RW, 0, &v, 0, PAGE), Status::ERR_ACCESS_DENIED);
    let addr = check!(inner.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    ensure_eq!(peek(addr), 0);
    // Nor can protect raise a mapping above the region's permissions.
    // SAFETY: the call fails.
    let raised = unsafe { inner.protect(RW, addr, PAGE) };
    ensure_err!(raised, Status::ERR_ACCESS_DENIED);
    // CAN_MAP_SPECIFIC is not inherited (and not an error to ask for).
    let (no_spec, _) = check!(ro.allocate(ZX_VM_CAN_MAP_READ, 0, PAGE));
    ensure_err!(
        no_spec.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, 0, &v, 0, PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { ro.destroy() });
    Ok(())
}

fn child_vmar_rights(ctx: &Ctx) -> TestResult {
    let (ro, _) = region(ctx, ZX_VM_CAN_MAP_READ, 4)?;
    let rights = check!(ro.handle().basic_info()).rights;
    ensure!(rights & ZX_RIGHT_READ != 0, "rights {rights:#x}");
    ensure!(
        rights & (ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE) == 0,
        "rights {rights:#x}"
    );
    // A handle without WRITE cannot make writable children even where the region could.
    let (rw, _) = region(ctx, CAN_RW, 4)?;
    let weak = Vmar::from(check!(rw
        .handle()
        .duplicate(ZX_RIGHT_READ | ZX_RIGHT_OP_CHILDREN | ZX_RIGHT_DUPLICATE)));
    let v = vmo(1)?;
    ensure_err!(weak.map(RW, 0, &v, 0, PAGE), Status::ERR_ACCESS_DENIED);
    ensure_err!(weak.allocate(CAN_RW, 0, PAGE), Status::ERR_ACCESS_DENIED);
    check!(weak.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    // SAFETY: nothing refers to the regions' memory.
    unsafe {
        check!(ro.destroy());
        check!(rw.destroy());
    }
    Ok(())
}

fn destroy(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 4)?;
    let (inner, _) = check!(r.allocate(CAN_RW, 0, PAGE));
    let v = vmo(1)?;
    check!(r.map(RW, 0, &v, 0, PAGE));
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    // Both it and its child are dead; the address range is free in the parent.
    ensure_err!(r.map(RW, 0, &v, 0, PAGE), Status::ERR_BAD_STATE);
    ensure_err!(inner.map(RW, 0, &v, 0, PAGE), Status::ERR_BAD_STATE);
    let (again, base2) = check!(ctx.root.allocate(
        CAN_RW | ZX_VM_SPECIFIC,
        base - check!(ctx.root.info()).base,
        4 * PAGE
    ));
    ensure_eq!(base2, base);
    // SAFETY: nothing is mapped.
    check!(unsafe { again.destroy() });
    Ok(())
}

fn destroy_errors(ctx: &Ctx) -> TestResult {
    // SAFETY: (whole block) the calls fail or destroy an empty region.
    unsafe {
        ensure_err!(ctx.root.destroy(), Status::ERR_NOT_SUPPORTED);
        let (r, _) = region(ctx, CAN_RW, 1)?;
        let weak = Vmar::from(check!(r
            .handle()
            .duplicate(ZX_RIGHT_READ | ZX_RIGHT_DUPLICATE)));
        ensure_err!(weak.destroy(), Status::ERR_ACCESS_DENIED);
        check!(r.destroy());
        ensure_err!(r.destroy(), Status::ERR_BAD_STATE);
        let v = vmo(1)?;
        let as_vmar = Vmar::from(check!(v.handle().duplicate(ZX_RIGHT_SAME_RIGHTS)));
        ensure_err!(as_vmar.destroy(), Status::ERR_WRONG_TYPE);
    }
    Ok(())
}

fn op_range(ctx: &Ctx) -> TestResult {
    let v = vmo(4)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, 4 * PAGE));
    // SAFETY: (whole block) commit keeps contents; decommit zeroes pages nothing relies on.
    unsafe {
        check!(ctx.root.op_range(ZX_VMAR_OP_COMMIT, addr, 4 * PAGE));
        ensure_eq!(check!(v.info()).committed_bytes, 4 * PAGE as u64);
        poke(addr + PAGE, 99);
        check!(ctx.root.op_range(ZX_VMAR_OP_DECOMMIT, addr, 2 * PAGE));
        ensure_eq!(check!(v.info()).committed_bytes, 2 * PAGE as u64);
        ensure_eq!(peek(addr + PAGE), 0);
        check!(ctx.root.unmap(addr, 4 * PAGE));
    }
    Ok(())
}

fn op_range_errors(ctx: &Ctx) -> TestResult {
    let (r, base) = region(ctx, CAN_ALL, 4)?;
    let v = vmo(2)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &v, 0, 2 * PAGE));
    // SAFETY: (whole block) every call fails.
    unsafe {
        ensure_err!(
            r.op_range(ZX_VMAR_OP_COMMIT, base, 0),
            Status::ERR_INVALID_ARGS
        );
        ensure_err!(
            r.op_range(ZX_VMAR_OP_COMMIT, base + 1, PAGE),
            Status::ERR_INVALID_ARGS
        );
        ensure_err!(r.op_range(0x7777, base, PAGE), Status::ERR_INVALID_ARGS);
        ensure_err!(
            r.op_range(ZX_VMAR_OP_COMMIT, base, 8 * PAGE),
            Status::ERR_OUT_OF_RANGE
        );
        ensure_err!(
            r.op_range(ZX_VMAR_OP_COMMIT, base, 4 * PAGE),
            Status::ERR_BAD_STATE
        );
        let weak = Vmar::from(check!(r
            .handle()
            .duplicate(ZX_RIGHT_READ | ZX_RIGHT_DUPLICATE)));
        ensure_err!(
            weak.op_range(ZX_VMAR_OP_DECOMMIT, base, PAGE),
            Status::ERR_ACCESS_DENIED
        );
        check!(r.destroy());
    }
    Ok(())
}

fn demand_faults_commit(ctx: &Ctx) -> TestResult {
    let v = vmo(8)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, 8 * PAGE));
    ensure_eq!(check!(v.info()).committed_bytes, 0);
    poke(addr, 1);
    poke(addr + 5 * PAGE, 2);
    ensure_eq!(check!(v.info()).committed_bytes, 2 * PAGE as u64);
    // Reading an untouched page reads zero.
    ensure_eq!(peek(addr + 7 * PAGE), 0);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, 8 * PAGE) });
    Ok(())
}
