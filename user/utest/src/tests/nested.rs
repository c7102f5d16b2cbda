//! Nested VMAR permission inheritance, three levels deep: a child's CAN_MAP_* must be a subset
//! of its parent's (each level can only drop permissions), CAN_MAP_SPECIFIC is neither inherited
//! nor required of the parent, the handle of each level carries the READ / WRITE / EXECUTE
//! rights of its CAN_MAP_*, mappings and protect are bounded by the innermost region, and a
//! protect from an ancestor may only reduce.

use abi::rights::*;
use abi::vm_options::*;
use abi::Status;

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(three_levels, rights_follow_can_map, execute_chain);

const PERM_RIGHTS: u32 = ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE;

fn three_levels(ctx: &Ctx) -> TestResult {
    let v = vmo(2)?;
    // Level 1: read-write, can map specific.
    let (a, _) = region(ctx, CAN_RWS, 64)?;
    ensure_err!(
        a.allocate(CAN_RW | ZX_VM_CAN_MAP_EXECUTE, 0, 16 * PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // Level 2: drops WRITE and SPECIFIC.
    let (b, _) = check!(a.allocate(ZX_VM_CAN_MAP_READ, 0, 16 * PAGE));
    ensure_err!(b.allocate(CAN_RW, 0, 4 * PAGE), Status::ERR_ACCESS_DENIED);
    ensure_err!(
        b.allocate(ZX_VM_CAN_MAP_WRITE, 0, 4 * PAGE),
        Status::ERR_ACCESS_DENIED
    );
    ensure_err!(
        b.allocate(ZX_VM_CAN_MAP_READ | ZX_VM_SPECIFIC, 0, 4 * PAGE),
        Status::ERR_ACCESS_DENIED
    );
    // Level 3: read-only again, and CAN_MAP_SPECIFIC although b cannot map specific.
    let (c, cbase) = check!(b.allocate(ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_SPECIFIC, 0, 4 * PAGE));
    ensure_err!(c.allocate(CAN_RW, 0, PAGE), Status::ERR_ACCESS_DENIED);
    // Mappings in c: read-only only, SPECIFIC allowed.
    ensure_err!(c.map(RW, 0, &v, 0, PAGE), Status::ERR_ACCESS_DENIED);
    let m = check!(c.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, 2 * PAGE, &v, 0, PAGE));
    ensure_eq!(m, cbase + 2 * PAGE);
    ensure_eq!(peek(m), 0);
    // No level can raise it: not c itself (its CAN_MAP), not a (only reductions through
    // ancestors), though a could map read-write itself.
    // SAFETY: (whole block) the raises fail; the reduction makes an unused page inaccessible.
    unsafe {
        ensure_err!(c.protect(RW, m, PAGE), Status::ERR_ACCESS_DENIED);
        ensure_err!(b.protect(RW, m, PAGE), Status::ERR_ACCESS_DENIED);
        ensure_err!(a.protect(RW, m, PAGE), Status::ERR_ACCESS_DENIED);
        // A reduction from the top works, and then c may restore what its CAN_MAP allows.
        check!(a.protect(0, m, PAGE));
        ensure_eq!(check!(contents(&c)).0, [(m, PAGE, 0)]);
        ensure_err!(
            b.protect(ZX_VM_PERM_READ, m, PAGE),
            Status::ERR_ACCESS_DENIED
        );
        check!(c.protect(ZX_VM_PERM_READ, m, PAGE));
    }
    ensure_eq!(check!(contents(&c)).0, [(m, PAGE, ZX_VM_PERM_READ)]);
    // The whole tree as a's VMAR_MAPS shows it: a, b at depth 1, c at 2, the mapping at 3.
    let maps = check!(zx::process::maps(a.handle()));
    let depths: alloc::vec::Vec<usize> = maps.iter().map(|e| e.depth).collect();
    ensure_eq!(depths, [0, 1, 2, 3]);
    // Destroying the middle level takes the bottom one with it.
    // SAFETY: nothing refers to b's memory.
    check!(unsafe { b.destroy() });
    ensure_err!(
        c.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE),
        Status::ERR_BAD_STATE
    );
    ensure!(!check!(is_mapped(ctx, m)));
    // SAFETY: nothing refers to a's memory.
    check!(unsafe { a.destroy() });
    Ok(())
}

fn rights_follow_can_map(ctx: &Ctx) -> TestResult {
    for (options, rights) in [
        (0, 0),
        (ZX_VM_CAN_MAP_READ, ZX_RIGHT_READ),
        (CAN_RW, ZX_RIGHT_READ | ZX_RIGHT_WRITE),
        (
            CAN_RW | ZX_VM_CAN_MAP_EXECUTE,
            ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE,
        ),
        (
            ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_EXECUTE,
            ZX_RIGHT_READ | ZX_RIGHT_EXECUTE,
        ),
    ] {
        let (r, _) = region(ctx, options, 4)?;
        let (c, _) = check!(r.allocate(options, 0, PAGE));
        for h in [&r, &c] {
            let got = check!(h.handle().basic_info()).rights;
            ensure_eq!(got & PERM_RIGHTS, rights);
            ensure!(got & ZX_RIGHT_OP_CHILDREN != 0, "rights {got:#x}");
        }
        // SAFETY: nothing is mapped.
        check!(unsafe { r.destroy() });
    }
    Ok(())
}

fn execute_chain(ctx: &Ctx) -> TestResult {
    // EXECUTE survives three levels when each asks for it, and is refused below a level that
    // dropped it.
    let x = exec_vmo(1)?;
    let rx = ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_EXECUTE;
    let (a, _) = region(ctx, rx, 32)?;
    let (b, _) = check!(a.allocate(rx, 0, 8 * PAGE));
    let (c, _) = check!(b.allocate(rx, 0, 2 * PAGE));
    let m = check!(c.map(RX, 0, &x, 0, PAGE));
    ensure_eq!(check!(contents(&c)).0, [(m, PAGE, RX)]);
    let (b2, _) = check!(a.allocate(ZX_VM_CAN_MAP_READ, 0, 8 * PAGE));
    ensure_err!(b2.allocate(rx, 0, PAGE), Status::ERR_ACCESS_DENIED);
    let (c2, _) = check!(b2.allocate(ZX_VM_CAN_MAP_READ, 0, PAGE));
    ensure_err!(c2.map(RX, 0, &x, 0, PAGE), Status::ERR_ACCESS_DENIED);
    // SAFETY: nothing refers to a's memory.
    check!(unsafe { a.destroy() });
    Ok(())
}
