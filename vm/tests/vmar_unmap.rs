//! zx_vmar_unmap: every rule and error of vmar.fidl.
mod common;
use abi::rights::ZX_RIGHT_OP_CHILDREN;
use abi::vm_options::*;
use abi::Status;
use common::*;
use vm::MmuFlags;

#[test]
fn unmap_unaligned_addr_or_zero_len_is_invalid_args_and_len_rounds_up() {
    // ZIRCON (the spec text calls an unaligned len INVALID_ARGS): len is rounded up to pages, and
    // one rounding to 0 is INVALID_ARGS (core tests Vmar.UnalignedLenTest, Vmar.InvalidArgsTest).
    let f = Fixture::new();
    let (sub, b) = f.sub(4);
    let vmo = f.vmo(4);
    f.map_at(&sub, 0, &vmo, 4);
    let bad = usize::MAX - PAGE + 2;
    for (addr, len) in [(b + 1, PAGE), (b, 0), (b, bad), (b + PAGE, bad)] {
        assert_eq!(
            sub.unmap(addr, len, VMAR_RIGHTS).unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
    assert_eq!(f.mappings().len(), 1);
    sub.unmap(b, PAGE - 1, VMAR_RIGHTS).unwrap();
    sub.unmap(b + PAGE, PAGE + 1, VMAR_RIGHTS).unwrap();
    let rw = MmuFlags::READ | MmuFlags::WRITE;
    assert_eq!(f.mappings(), vec![(b + 3 * PAGE, PAGE, rw)]);
    f.check();
}

#[test]
fn unmap_on_destroyed_vmar_is_bad_state() {
    let f = Fixture::new();
    let (sub, b) = f.sub(4);
    sub.destroy(VMAR_RIGHTS).unwrap();
    assert_eq!(
        sub.unmap(b, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_BAD_STATE
    );
}

#[test]
fn unmap_range_outside_the_vmar_is_invalid_args() {
    let f = Fixture::new();
    let (sub, b) = f.sub(4);
    let vmo = f.vmo(4);
    f.map_at(&sub, 0, &vmo, 4);
    assert_eq!(
        sub.unmap(b, 5 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        sub.unmap(b - PAGE, 2 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    let top = !(PAGE - 1);
    assert_eq!(
        sub.unmap(top, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        sub.unmap(b, top, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn unmap_partially_overlapping_a_subregion_is_invalid_args_and_changes_nothing() {
    let f = Fixture::new();
    let (sub, b) = f.sub(12);
    let vmo = f.vmo(4);
    f.map_at(&sub, 0, &vmo, 4);
    f.touch(b, MmuFlags::WRITE).unwrap();
    let (child, _) = sub
        .allocate(
            ALL_CAN_MAP | ZX_VM_SPECIFIC,
            4 * PAGE,
            4 * PAGE,
            VMAR_RIGHTS,
        )
        .unwrap();
    assert_eq!(
        sub.unmap(b, 6 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert!(child.is_alive());
    assert_eq!(f.mappings().len(), 1);
    assert_eq!(f.mmu.mapped_pages(), 1);
    f.check();
}

#[test]
fn unmap_over_a_subregion_without_op_children_is_invalid_args() {
    let f = Fixture::new();
    let (sub, b) = f.sub(12);
    let (child, _) = sub
        .allocate(
            ALL_CAN_MAP | ZX_VM_SPECIFIC,
            4 * PAGE,
            4 * PAGE,
            VMAR_RIGHTS,
        )
        .unwrap();
    let rights = VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN;
    assert_eq!(
        sub.unmap(b, 12 * PAGE, rights).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert!(child.is_alive());
    // Mappings alone need no OP_CHILDREN.
    let vmo = f.vmo(1);
    f.map_at(&sub, 0, &vmo, 1);
    assert_eq!(sub.unmap(b, PAGE, rights), Ok(()));
}

#[test]
fn unmap_wholly_covering_a_subregion_destroys_it() {
    let f = Fixture::new();
    let (sub, b) = f.sub(12);
    let (child, cb) = sub
        .allocate(
            ALL_CAN_MAP | ZX_VM_SPECIFIC,
            4 * PAGE,
            4 * PAGE,
            VMAR_RIGHTS,
        )
        .unwrap();
    let vmo = f.vmo(2);
    let a = child
        .map(RW, 0, &vmo, 0, 2 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    f.touch(a, MmuFlags::WRITE).unwrap();
    sub.unmap(b, 12 * PAGE, VMAR_RIGHTS).unwrap();
    assert!(!child.is_alive());
    assert_eq!(
        child.unmap(cb, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_BAD_STATE
    );
    assert_eq!(f.mmu.mapped_pages(), 0);
    assert_eq!(vmo.mapping_count(), 0);
    assert_eq!(f.vmars().len(), 2);
    f.check();
}

#[test]
fn unmap_of_a_range_with_nothing_mapped_is_ok() {
    // ZIRCON (the spec text lists NOT_FOUND "could not find the requested mapping"): Zircon's
    // UnmapInternalLocked returns OK for a range holding nothing (core test
    // Vmar.UnmapBaseNotMappedTest).
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    sub.unmap(b, 8 * PAGE, VMAR_RIGHTS).unwrap();
    let vmo = f.vmo(1);
    f.map_at(&sub, 4 * PAGE, &vmo, 1);
    sub.unmap(b, 4 * PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(f.mappings().len(), 1);
    // Starting in the gap before the mapping removes it.
    sub.unmap(b + 3 * PAGE, 2 * PAGE, VMAR_RIGHTS).unwrap();
    assert!(f.mappings().is_empty());
    f.check();
}

#[test]
fn unmap_middle_splits_the_mapping() {
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    let vmo = f.vmo(8);
    f.map_at(&sub, 0, &vmo, 8);
    for p in 0..8 {
        f.touch(b + p * PAGE, MmuFlags::WRITE).unwrap();
    }
    sub.unmap(b + 3 * PAGE, 2 * PAGE, VMAR_RIGHTS).unwrap();
    let rw = MmuFlags::READ | MmuFlags::WRITE;
    assert_eq!(
        f.mappings(),
        vec![(b, 3 * PAGE, rw), (b + 5 * PAGE, 3 * PAGE, rw)]
    );
    assert_eq!(f.mmu.mapped_pages(), 6);
    assert_eq!(
        f.mmu.query(b + 5 * PAGE).unwrap().0,
        vmo.frame_of(5).unwrap()
    );
    assert_eq!(vmo.committed_page_count(), 8, "unmap does not decommit");
    assert_eq!(vmo.mapping_count(), 2);
    assert_eq!(
        f.touch(b + 3 * PAGE, MmuFlags::READ),
        Err(Status::ERR_NOT_FOUND)
    );
    f.check();
}

#[test]
fn unmap_head_and_tail_trim_the_mapping() {
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    let vmo = f.vmo(8);
    f.map_at(&sub, 0, &vmo, 8);
    sub.unmap(b, 2 * PAGE, VMAR_RIGHTS).unwrap();
    sub.unmap(b + 6 * PAGE, 2 * PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(
        f.mappings(),
        vec![(b + 2 * PAGE, 4 * PAGE, MmuFlags::READ | MmuFlags::WRITE)]
    );
    f.touch(b + 2 * PAGE, MmuFlags::WRITE).unwrap();
    assert_eq!(
        f.mmu.query(b + 2 * PAGE).unwrap().0,
        vmo.frame_of(2).unwrap(),
        "offset kept"
    );
    f.check();
}

#[test]
fn unmap_spanning_several_mappings_and_gaps() {
    // Zircon UnmapBaseNotMappedTest: holes inside the range are fine.
    let f = Fixture::new();
    let (sub, b) = f.sub(16);
    let vmo = f.vmo(4);
    f.map_at(&sub, PAGE, &vmo, 4);
    f.map_at(&sub, 8 * PAGE, &vmo, 4);
    sub.unmap(b, 16 * PAGE, VMAR_RIGHTS).unwrap();
    assert!(f.mappings().is_empty());
    assert_eq!(vmo.mapping_count(), 0);
    f.check();
}

#[test]
fn unmap_through_root_needs_a_range_inside_the_aspace() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let a = f
        .root
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(f.root.unmap(a, PAGE, VMAR_RIGHTS), Ok(()));
    assert_eq!(
        f.root.unmap(0, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}
