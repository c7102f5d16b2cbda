//! Out of memory inside every VMAR operation, at every allocation it makes.
//!
//! This test binary's global allocator fails the test thread's allocation number N (counting
//! from 0 while a budget is set). Each operation below runs with N = 0, 1, 2, ... until it
//! completes without meeting a failure; for every N where it met one it must return
//! `ERR_NO_MEMORY` and leave everything as it was: the VMAR tree (walk), the page tables of the
//! software MMU, the VMOs' back-references (`check_invariants` matches them to the mappings, one
//! by one, and finds no slot left reserved), the region counts and the flush tokens. An
//! allocation the code makes infallibly (`Vec::push`, `Box::new`, `BTreeMap::insert`) aborts the
//! binary when it is the failing one ("memory allocation of N bytes failed"), so any infallible
//! allocation on an operation's path fails this test too: it is the kernel's situation, where the
//! heap cannot grow and the alloc-error handler panics.
//!
//! Scenarios: protect every other page of large mappings (splits up to a three-level gap tree),
//! then protect them back (merges); unmap every other page (middle cuts); heads, tails, whole
//! mappings and sub-VMARs; SPECIFIC_OVERWRITE; allocate; destroy; decommit; a VMO mapped in two
//! address spaces; and seeded random sequences of all of these, run in lockstep with a twin
//! address space held at its region quota (an operation that adds regions must fail there with
//! nothing changed, one that adds none must behave as without the quota).
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use abi::ops::ZX_VMAR_OP_DECOMMIT;
use abi::vm_options::*;
use abi::{Status, ZxResult};
use common::*;
use vm::{AspaceConfig, MmuFlags, PhysAddr, PhysMem, RegionInfo, Vmar, Vmo};

/// Fails the test thread's allocations once its budget is spent (see the module docs).
struct FailingAlloc;

thread_local! {
    /// Allocations left before the next one fails; `usize::MAX`: no limit.
    static BUDGET: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Set when an allocation was refused.
    static FAILED: Cell<bool> = const { Cell::new(false) };
}

/// May this allocation go ahead?
fn grant() -> bool {
    BUDGET
        .try_with(|b| match b.get() {
            usize::MAX => true,
            0 => {
                FAILED.with(|f| f.set(true));
                false
            }
            n => {
                b.set(n - 1);
                true
            }
        })
        .unwrap_or(true)
}

// SAFETY: every call is forwarded unchanged to the system allocator, or answered with null (an
// allocation failure, which `GlobalAlloc` allows); `dealloc` only sees pointers `System` made.
unsafe impl GlobalAlloc for FailingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if grant() {
            // SAFETY: the caller's contract for `layout` is passed on unchanged.
            unsafe { System.alloc(layout) }
        } else {
            std::ptr::null_mut()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if grant() {
            // SAFETY: as in `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        } else {
            std::ptr::null_mut()
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if grant() {
            // SAFETY: `ptr` came from `System` (every allocation here does) with `layout`.
            unsafe { System.realloc(ptr, layout, new_size) }
        } else {
            std::ptr::null_mut()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: FailingAlloc = FailingAlloc;

/// Everything an operation that failed must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    walk: Vec<RegionInfo>,
    ptes: Vec<(usize, PhysAddr, MmuFlags)>,
    vmo_mappings: Vec<usize>,
    mapping_count: usize,
    vmar_count: usize,
    used_frames: usize,
}

fn snapshot(f: &Fixture, vmos: &[Arc<Vmo>]) -> Snapshot {
    Snapshot {
        walk: f.aspace.walk(),
        ptes: f.mmu.entries(),
        vmo_mappings: vmos.iter().map(|v| v.mapping_count()).collect(),
        mapping_count: f.aspace.mapping_count(),
        vmar_count: f.aspace.vmar_count(),
        used_frames: f.phys.used_frames(),
    }
}

/// Runs `op` with the test thread's allocation number 0, 1, 2, ... failing, until it completes
/// without meeting a failure; checks every failed run changed nothing. Returns the final result
/// and how many failure points were tried.
fn at_every_failure<T>(
    f: &Fixture,
    vmos: &[Arc<Vmo>],
    mut op: impl FnMut() -> ZxResult<T>,
) -> (ZxResult<T>, usize) {
    for n in 0.. {
        f.check();
        let before = snapshot(f, vmos);
        FAILED.with(|x| x.set(false));
        BUDGET.with(|b| b.set(n));
        let result = op();
        BUDGET.with(|b| b.set(usize::MAX));
        let failed = FAILED.with(|x| x.get());
        f.check();
        if !failed {
            return (result, n);
        }
        let status = result.as_ref().err().copied();
        assert_eq!(
            status,
            Some(Status::ERR_NO_MEMORY),
            "allocation {n} failed, yet the operation did not report NO_MEMORY"
        );
        assert_eq!(
            snapshot(f, vmos),
            before,
            "allocation {n} failed: NO_MEMORY, but the state changed"
        );
    }
    unreachable!()
}

/// As [`at_every_failure`], for an operation that must succeed in the end.
fn ok_at_every_failure<T>(f: &Fixture, vmos: &[Arc<Vmo>], op: impl FnMut() -> ZxResult<T>) -> T {
    let (result, _) = at_every_failure(f, vmos, op);
    result.expect("the operation failed without an allocation failure")
}

fn compact_fixture() -> Fixture {
    let mut config = AspaceConfig::user(ASPACE_BASE, ASPACE_LEN);
    config.aslr = false;
    Fixture::with(config, 4096, 3)
}

const RO: u32 = ZX_VM_PERM_READ;

#[test]
fn protect_every_other_page_then_back_at_every_failure_point() {
    let f = compact_fixture();
    let pages = 600;
    let vmo = f.vmo(pages);
    let vmos = [vmo.clone()];
    let base = f
        .root
        .map(
            RW | ZX_VM_MAP_RANGE,
            0,
            &vmo,
            0,
            pages * PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap();
    vmo.commit(0, (pages * PAGE) as u64).unwrap();
    f.root
        .op_range(
            abi::ops::ZX_VMAR_OP_MAP_RANGE,
            base,
            pages * PAGE,
            VMAR_RIGHTS,
            0,
        )
        .unwrap();
    let mut points = 0;
    for i in (1..pages).step_by(2) {
        let addr = base + i * PAGE;
        let (r, n) = at_every_failure(&f, &vmos, || f.root.protect(RO, addr, PAGE, VMAR_RIGHTS));
        r.unwrap();
        points += n;
    }
    assert_eq!(f.aspace.mapping_count(), pages);
    assert!(points >= 10, "splits allocate: {points} failure points");
    // Back to RW one page at a time: each call merges up to three mappings into one.
    for i in (1..pages).step_by(2) {
        let addr = base + i * PAGE;
        ok_at_every_failure(&f, &vmos, || f.root.protect(RW, addr, PAGE, VMAR_RIGHTS));
    }
    assert_eq!(f.aspace.mapping_count(), 1);
    // Whole range, every other page again, through a parent with OP_CHILDREN: in a sub-VMAR.
    let (sub, sb) = f.sub(64);
    let vmo2 = f.vmo(64);
    f.map_at(&sub, 0, &vmo2, 64);
    let vmos = [vmo, vmo2];
    for i in (0..64).step_by(2) {
        let addr = sb + i * PAGE;
        ok_at_every_failure(&f, &vmos, || f.root.protect(RO, addr, PAGE, VMAR_RIGHTS));
    }
    // One call over many mappings: merges them all back (RW is not allowed through the parent,
    // so through the sub-VMAR itself).
    ok_at_every_failure(&f, &vmos, || sub.protect(RW, sb, 64 * PAGE, VMAR_RIGHTS));
    assert_eq!(f.aspace.mapping_count(), 2);
}

#[test]
fn unmap_cuts_at_every_failure_point() {
    let f = compact_fixture();
    let pages = 400;
    let vmo = f.vmo(pages);
    let vmos = [vmo.clone()];
    let base = f.map_at(&f.root, 0, &vmo, pages);
    vmo.commit(0, (pages * PAGE) as u64).unwrap();
    f.root
        .op_range(
            abi::ops::ZX_VMAR_OP_MAP_RANGE,
            base,
            pages * PAGE,
            VMAR_RIGHTS,
            0,
        )
        .unwrap();
    // Middle cuts: every other page.
    for i in (1..pages - 1).step_by(2) {
        let addr = base + i * PAGE;
        ok_at_every_failure(&f, &vmos, || f.root.unmap(addr, PAGE, VMAR_RIGHTS));
    }
    assert_eq!(f.aspace.mapping_count(), pages / 2);
    // Refill the holes with mappings of another VMO, then cut heads and tails across pieces.
    let other = f.vmo(1);
    let vmos = [vmo.clone(), other.clone()];
    for i in (1..pages - 1).step_by(2) {
        let off = i * PAGE;
        ok_at_every_failure(&f, &vmos, || {
            f.root.map(
                RW | ZX_VM_SPECIFIC,
                off,
                &other,
                0,
                PAGE,
                VMAR_RIGHTS,
                VMO_RIGHTS,
            )
        });
    }
    // Unmaps that start and end inside pages' neighbours are whole-page here, so make wider
    // mappings first: overwrite pairs with 3-page mappings (head and tail cuts of neighbours).
    let wide = f.vmo(3);
    let vmos = [vmo.clone(), other.clone(), wide.clone()];
    for i in (10..pages - 20).step_by(7) {
        let off = i * PAGE;
        ok_at_every_failure(&f, &vmos, || {
            f.root.map(
                RW | ZX_VM_SPECIFIC_OVERWRITE,
                off,
                &wide,
                0,
                3 * PAGE,
                VMAR_RIGHTS,
                VMO_RIGHTS,
            )
        });
    }
    // Head cut of a 3-page mapping, tail cut, then a range over many.
    let w = base + 10 * PAGE;
    ok_at_every_failure(&f, &vmos, || f.root.unmap(w, PAGE, VMAR_RIGHTS));
    let w = base + 17 * PAGE + 2 * PAGE;
    ok_at_every_failure(&f, &vmos, || f.root.unmap(w, PAGE, VMAR_RIGHTS));
    // An overwrite in the middle of a wide mapping: a middle cut and a new mapping.
    let w = base + 24 * PAGE + PAGE;
    ok_at_every_failure(&f, &vmos, || {
        f.root.map(
            RO | ZX_VM_SPECIFIC_OVERWRITE,
            w - base,
            &other,
            0,
            PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
    });
    ok_at_every_failure(&f, &vmos, || {
        f.root.unmap(base + 50 * PAGE, 200 * PAGE, VMAR_RIGHTS)
    });
    // Everything (whole mappings only): allocates nothing, so it succeeds at once.
    let (r, n) = at_every_failure(&f, &vmos, || {
        f.root.unmap(ASPACE_BASE, ASPACE_LEN, VMAR_RIGHTS)
    });
    r.unwrap();
    assert_eq!(n, 0, "an unmap of whole mappings allocated");
    assert_eq!(f.aspace.mapping_count(), 0);
    assert_eq!(f.mmu.mapped_pages(), 0);
}

#[test]
fn allocate_destroy_and_decommit_at_every_failure_point() {
    let f = compact_fixture();
    let vmo = f.vmo(8);
    let vmos = [vmo.clone()];
    let mut subs: Vec<Vmar> = Vec::new();
    for _ in 0..300 {
        let (s, _) = ok_at_every_failure(&f, &vmos, || {
            f.root.allocate(
                ALL_CAN_MAP | ZX_VM_CAN_MAP_SPECIFIC,
                0,
                4 * PAGE,
                VMAR_RIGHTS,
            )
        });
        subs.push(s);
    }
    // Nested regions with mappings, then destroy from the top: allocates nothing.
    let top = &subs[0];
    let (mid, _) = top.allocate(ALL_CAN_MAP, 0, 2 * PAGE, VMAR_RIGHTS).unwrap();
    f.map_at(top, 2 * PAGE, &vmo, 2);
    let m = mid
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    f.touch(m, MmuFlags::WRITE).unwrap();
    let (r, n) = at_every_failure(&f, &vmos, || top.destroy(VMAR_RIGHTS));
    r.unwrap();
    assert_eq!(n, 0, "destroy allocated");
    for s in &subs[1..] {
        let (r, n) = at_every_failure(&f, &vmos, || s.destroy(VMAR_RIGHTS));
        r.unwrap();
        assert_eq!(n, 0, "destroy allocated");
    }
    let base = f.map_at(&f.root, 0, &vmo, 8);
    for p in 0..8 {
        f.touch(base + p * PAGE, MmuFlags::WRITE).unwrap();
    }
    let (r, n) = at_every_failure(&f, &vmos, || {
        f.root
            .op_range(ZX_VMAR_OP_DECOMMIT, base, 8 * PAGE, VMAR_RIGHTS, 0)
    });
    r.unwrap();
    assert_eq!(n, 0, "decommit allocated");
    assert_eq!(f.mmu.mapped_pages(), 0);
}

#[test]
fn shared_vmo_back_references_at_every_failure_point() {
    // Two address spaces map one VMO many times: the back-reference arena grows under both.
    let a = compact_fixture();
    let b = compact_fixture();
    let phys: Arc<dyn PhysMem> = a.phys.clone();
    let vmo = Vmo::create(phys, (64 * PAGE) as u64, 0).unwrap();
    let vmos = [vmo.clone()];
    for i in 0..200usize {
        let f = if i % 2 == 0 { &a } else { &b };
        let off = (i % 64) as u64 * PAGE as u64;
        ok_at_every_failure(f, &vmos, || {
            f.root.map(RW, 0, &vmo, off, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        });
    }
    let base = ok_at_every_failure(&a, &vmos, || {
        a.root
            .map(RW, 0, &vmo, 0, 64 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
    });
    for i in (1..63).step_by(2) {
        let addr = base + i * PAGE;
        ok_at_every_failure(&a, &vmos, || a.root.protect(RO, addr, PAGE, VMAR_RIGHTS));
    }
    assert_eq!(vmo.mapping_count(), 200 + 63);
    drop(a);
    b.root.unmap(ASPACE_BASE, ASPACE_LEN, VMAR_RIGHTS).unwrap();
    assert_eq!(vmo.mapping_count(), 0);
}

/// The walk without VMO ids (twins map different VMOs).
fn layout(f: &Fixture) -> Vec<RegionInfo> {
    let mut walk = f.aspace.walk();
    for info in &mut walk {
        if let RegionInfo::Mapping { vmo_id, .. } = info {
            *vmo_id = 0;
        }
    }
    walk
}

/// One random operation on `f` (the same one for the same `x`): map (specific or not, maybe
/// overwriting), unmap, protect, allocate, destroy or decommit.
fn random_op(f: &Fixture, vmo: &Arc<Vmo>, subs: &[Vmar], x: u64) -> ZxResult<()> {
    let pick = |shift: u32, n: u64| ((x >> shift) % n) as usize;
    let pages = 48;
    let span = 256;
    let vmar = if subs.is_empty() || pick(60, 3) != 0 {
        &f.root
    } else {
        &subs[pick(8, subs.len() as u64)]
    };
    let off = pick(12, span) * PAGE;
    let len = (1 + pick(22, 24)) * PAGE;
    let addr = f.root.base() + off;
    match pick(32, 7) {
        0 | 1 => {
            let opts = [RW | ZX_VM_SPECIFIC, RW | ZX_VM_SPECIFIC_OVERWRITE, RO][pick(36, 3)];
            let vmo_off = (pick(40, pages as u64 / 2) * PAGE) as u64;
            let len = len.min(pages * PAGE / 2);
            vmar.map(opts, off, vmo, vmo_off, len, VMAR_RIGHTS, VMO_RIGHTS)
                .map(|_| ())
        }
        2 => vmar.unmap(addr, len, VMAR_RIGHTS),
        3 | 4 => {
            let perms = [RO, RW, 0][pick(44, 3)];
            vmar.protect(perms, addr, len, VMAR_RIGHTS)
        }
        5 => {
            if pick(48, 2) == 0 {
                vmar.allocate(ALL_CAN_MAP | ZX_VM_CAN_MAP_SPECIFIC, 0, len, VMAR_RIGHTS)
                    .map(|_| ())
            } else {
                vmar.destroy(VMAR_RIGHTS)
            }
        }
        _ => vmar.op_range(ZX_VMAR_OP_DECOMMIT, addr, len, VMAR_RIGHTS, 0),
    }
}

#[test]
fn random_sequences_at_every_failure_point_and_at_the_region_quota() {
    for seed in 1..=12u64 {
        // Twins: `free` has no quota, `held` is kept at its region quota (its current count).
        let free = compact_fixture();
        let held = compact_fixture();
        let vf = free.vmo(48);
        let vh = held.vmo(48);
        let mut subs_f: Vec<Vmar> = Vec::new();
        let mut subs_h: Vec<Vmar> = Vec::new();
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for step in 0..150 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every few steps a new sub-VMAR both twins get (outside the quota game).
            if step % 25 == 0 {
                let make = |f: &Fixture| {
                    f.root
                        .allocate(
                            ALL_CAN_MAP | ZX_VM_CAN_MAP_SPECIFIC,
                            0,
                            64 * PAGE,
                            VMAR_RIGHTS,
                        )
                        .map(|(v, _)| v)
                };
                if let (Ok(a), Ok(b)) = (make(&free), make(&held)) {
                    subs_f.push(a);
                    subs_h.push(b);
                }
            }
            let count = |f: &Fixture| f.aspace.mapping_count() + f.aspace.vmar_count();
            let before = count(&free);
            let (rf, _) = at_every_failure(&free, std::slice::from_ref(&vf), || {
                random_op(&free, &vf, &subs_f, x)
            });
            let added = count(&free) as isize - before as isize;
            // The twin at its quota: refused (nothing changed) exactly when regions are added.
            held.aspace.set_region_limit(count(&held), || true);
            let snap = snapshot(&held, std::slice::from_ref(&vh));
            let rh = random_op(&held, &vh, &subs_h, x);
            held.check();
            if added > 0 {
                assert_eq!(
                    rh,
                    Err(Status::ERR_NO_MEMORY),
                    "seed {seed} step {step}: adds {added} at the quota"
                );
                assert_eq!(snapshot(&held, std::slice::from_ref(&vh)), snap);
                // The same call with room for exactly what it adds.
                held.aspace
                    .set_region_limit(count(&held) + added as usize, || true);
                let rh = random_op(&held, &vh, &subs_h, x);
                assert_eq!(rh, rf, "seed {seed} step {step}: with exact room");
            } else {
                assert_eq!(rh, rf, "seed {seed} step {step}: lowers or keeps usage");
            }
            held.aspace.set_region_limit(usize::MAX, || true);
            assert_eq!(layout(&free), layout(&held), "twins diverged");
        }
    }
}
