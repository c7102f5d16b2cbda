//! zx_vmar_destroy: every rule and error of vmar.fidl.
mod common;
use abi::rights::ZX_RIGHT_OP_CHILDREN;
use abi::vm_options::*;
use abi::Status;
use common::*;
use vm::{MmuFlags, PhysMem};

#[test]
fn destroy_without_op_children_is_access_denied() {
    let f = Fixture::new();
    let (sub, _) = f.sub(4);
    assert_eq!(
        sub.destroy(VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN)
            .unwrap_err(),
        Status::ERR_ACCESS_DENIED
    );
    assert!(sub.is_alive());
}

#[test]
fn destroy_root_is_not_supported() {
    let f = Fixture::new();
    assert_eq!(
        f.root.destroy(VMAR_RIGHTS).unwrap_err(),
        Status::ERR_NOT_SUPPORTED
    );
    assert!(f.root.is_alive());
}

#[test]
fn destroy_twice_is_bad_state() {
    let f = Fixture::new();
    let (sub, _) = f.sub(4);
    sub.destroy(VMAR_RIGHTS).unwrap();
    assert_eq!(sub.destroy(VMAR_RIGHTS).unwrap_err(), Status::ERR_BAD_STATE);
}

#[test]
fn destroy_is_recursive_and_every_later_op_is_bad_state() {
    // Zircon DestroyedVmarTest.
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let (r0, _) = f.sub(10);
    let m0 = r0
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    let (r1, _) = r0.allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS).unwrap();
    let m1 = r1
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    f.touch(m0, MmuFlags::WRITE).unwrap();
    f.touch(m1, MmuFlags::READ).unwrap();
    assert_eq!(
        f.mmu.query(m0).unwrap().0,
        f.mmu.query(m1).unwrap().0,
        "same VMO page"
    );
    let used = f.phys.used_frames();
    r0.destroy(VMAR_RIGHTS).unwrap();
    for (r, m) in [(&r0, m0), (&r1, m1)] {
        assert_eq!(f.touch(m, MmuFlags::READ), Err(Status::ERR_NOT_FOUND));
        assert_eq!(r.destroy(VMAR_RIGHTS).unwrap_err(), Status::ERR_BAD_STATE);
        assert_eq!(
            r.allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS).unwrap_err(),
            Status::ERR_BAD_STATE
        );
        assert_eq!(
            r.unmap(m, PAGE, VMAR_RIGHTS).unwrap_err(),
            Status::ERR_BAD_STATE
        );
        assert_eq!(
            r.protect(ZX_VM_PERM_READ, m, PAGE, VMAR_RIGHTS)
                .unwrap_err(),
            Status::ERR_BAD_STATE
        );
        assert_eq!(
            r.map(ZX_VM_PERM_READ, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_BAD_STATE
        );
        assert_eq!(r.walk().unwrap_err(), Status::ERR_BAD_STATE);
    }
    assert_eq!(f.mmu.mapped_pages(), 0);
    assert_eq!(vmo.mapping_count(), 0);
    assert_eq!(f.phys.used_frames(), used, "the VMO keeps its pages");
    assert_eq!(f.vmars().len(), 1);
    // The parent still works, and the space is free again.
    assert!(f.root.allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS).is_ok());
    f.check();
}

#[test]
fn destroy_of_deeply_nested_regions_does_not_recurse() {
    let f = Fixture::new();
    let (top, _) = f.sub(4);
    let mut cur = top.clone();
    for _ in 0..5000 {
        cur = cur
            .allocate(ALL_CAN_MAP, 0, 4 * PAGE, VMAR_RIGHTS)
            .unwrap()
            .0;
    }
    let vmo = f.vmo(1);
    let a = cur
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    f.touch(a, MmuFlags::WRITE).unwrap();
    assert_eq!(f.aspace.walk().len(), 5003);
    top.destroy(VMAR_RIGHTS).unwrap();
    assert!(!cur.is_alive());
    assert_eq!(f.mmu.mapped_pages(), 0);
    f.check();
}

#[test]
fn dropping_everything_returns_every_frame() {
    let f = Fixture::new();
    let vmo = f.vmo(4);
    let a = f
        .root
        .map(RW, 0, &vmo, 0, 4 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    for p in 0..4 {
        f.touch(a + p * PAGE, MmuFlags::WRITE).unwrap();
    }
    assert_eq!(f.phys.used_frames(), 4);
    let Fixture {
        aspace,
        root,
        mmu,
        phys,
    } = f;
    drop(root);
    drop(aspace);
    assert_eq!(mmu.mapped_pages(), 0);
    assert_eq!(mmu.outstanding_flushes(), 0);
    assert_eq!(vmo.mapping_count(), 0);
    drop(vmo);
    assert_eq!(phys.used_frames(), 0);
}

/// A sub-VMAR `a` holding `b` (300 populated one-page mappings, then an empty `c`).
fn deep(f: &Fixture) -> (vm::Vmar, vm::Vmar, vm::Vmar, usize) {
    let (a, base) = f.sub(512);
    let (b, _) = a
        .allocate(
            ALL_CAN_MAP | ZX_VM_CAN_MAP_SPECIFIC,
            0,
            400 * PAGE,
            VMAR_RIGHTS,
        )
        .unwrap();
    let vmo = f.vmo(1);
    for _ in 0..300 {
        let m = b
            .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap();
        f.touch(m, MmuFlags::WRITE).unwrap();
    }
    let (c, _) = b.allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS).unwrap();
    (a, b, c, base)
}

#[test]
fn empty_step_removes_at_most_its_count_deepest_first_and_leaves_the_vmar() {
    let f = Fixture::new();
    let (a, b, c, _) = deep(&f);
    assert_eq!(f.mmu.mapped_pages(), 300);
    // 300 mappings, then `c` and `b` once empty: 302 regions below `a`.
    assert_eq!(a.empty_step(128), Ok(128));
    assert_eq!(f.mappings().len(), 172);
    assert!(b.is_alive() && c.is_alive());
    f.check();
    assert_eq!(a.empty_step(128), Ok(128));
    assert_eq!(a.empty_step(128), Ok(46));
    assert!(!b.is_alive() && !c.is_alive());
    assert!(a.is_alive());
    assert_eq!(a.empty_step(128), Ok(0));
    assert_eq!(f.mappings().len(), 0);
    assert_eq!(f.mmu.mapped_pages(), 0);
    assert_eq!(f.vmars().len(), 2, "root and a");
    f.check();
    a.destroy(VMAR_RIGHTS).unwrap();
    assert_eq!(a.empty_step(1), Err(Status::ERR_BAD_STATE));
}

/// Unmaps `[base, base + size)` from the root with `unmap_step` (16 regions a step), running
/// `each` after every step; returns the steps taken.
fn unmap_in_steps(f: &Fixture, base: usize, size: usize, each: &mut dyn FnMut()) -> u64 {
    let (mut at, mut rest, mut steps) = (base, size, 0);
    while let Some(next) = f.root.unmap_step(at, rest, VMAR_RIGHTS, 16).unwrap() {
        rest -= next - at;
        at = next;
        steps += 1;
        assert!(steps < 1000, "no progress");
        each();
    }
    steps
}

#[test]
fn unmap_in_steps_empties_a_full_sub_vmar_in_bounded_steps() {
    let f = Fixture::new();
    let (a, b, _, base) = deep(&f);
    let steps = unmap_in_steps(&f, base, 512 * PAGE, &mut || f.check());
    // 302 regions below `a`, 16 a step, then `a` itself.
    assert!(steps >= 302 / 16, "{steps} steps");
    assert!(!a.is_alive() && !b.is_alive());
    assert_eq!(
        (f.mappings().len(), f.vmars().len(), f.mmu.mapped_pages()),
        (0, 1, 0)
    );
    f.check();
}

/// Every operation that removes or restricts many mappings flushes once per step (one
/// shootdown per step on several CPUs), not once per mapping.
#[test]
fn removing_many_mappings_flushes_once_per_step() {
    let f = Fixture::new();
    let flushes = |before: u64| f.mmu.flush_calls() - before;
    let (a, _, _, base) = deep(&f);
    let before = f.mmu.flush_calls();
    assert_eq!(a.empty_step(128), Ok(128));
    assert_eq!(flushes(before), 1, "empty_step of 128 mappings");
    let before = f.mmu.flush_calls();
    let steps = unmap_in_steps(&f, base, 512 * PAGE, &mut || {});
    assert!(
        flushes(before) <= steps + 1,
        "unmap over a sub-VMAR in steps"
    );
    f.check();
    let full = || {
        let (sub, base) = f.sub(300);
        let vmo = f.vmo(1);
        for i in 0..300 {
            let m = f.map_at(&sub, i * PAGE, &vmo, 1);
            f.touch(m, MmuFlags::WRITE).unwrap();
        }
        (sub, base)
    };
    let (sub, base) = full();
    let before = f.mmu.flush_calls();
    sub.protect(ZX_VM_PERM_READ, base, 300 * PAGE, VMAR_RIGHTS)
        .unwrap();
    assert_eq!(flushes(before), 1, "protect of 300 mappings");
    let before = f.mmu.flush_calls();
    sub.unmap(base, 300 * PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(flushes(before), 1, "unmap of 300 mappings");
    let (sub, _) = full();
    let before = f.mmu.flush_calls();
    sub.destroy(VMAR_RIGHTS).unwrap();
    assert_eq!(flushes(before), 1, "destroy of 300 mappings");
    f.check();
}
