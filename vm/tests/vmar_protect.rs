//! zx_vmar_protect: every rule and error of vmar.fidl, and the split/re-merge design.
mod common;
use abi::rights::*;
use abi::vm_options::*;
use abi::Status;
use common::*;
use vm::MmuFlags;

const PR: u32 = ZX_VM_PERM_READ;

/// A sub-VMAR with one 8-page RW mapping at its base, every page faulted in.
fn setup() -> (Fixture, vm::Vmar, usize) {
    let f = Fixture::new();
    let (sub, b) = f.sub(16);
    let vmo = f.vmo(8);
    f.map_at(&sub, 0, &vmo, 8);
    for p in 0..8 {
        f.touch(b + p * PAGE, MmuFlags::WRITE).unwrap();
    }
    (f, sub, b)
}

#[test]
fn protect_perm_without_matching_handle_right_is_access_denied() {
    let (f, sub, b) = setup();
    for (opt, right) in [
        (PR, ZX_RIGHT_READ),
        (RW, ZX_RIGHT_WRITE),
        (PR | ZX_VM_PERM_EXECUTE, ZX_RIGHT_EXECUTE),
        (ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED, ZX_RIGHT_READ),
    ] {
        assert_eq!(
            sub.protect(opt, b, PAGE, VMAR_RIGHTS & !right).unwrap_err(),
            Status::ERR_ACCESS_DENIED
        );
    }
    assert_eq!(f.mmu.query(b).unwrap().1, RWU, "nothing changed");
}

#[test]
fn protect_write_or_execute_without_read_is_invalid_args() {
    let (_f, sub, b) = setup();
    for opt in [ZX_VM_PERM_WRITE, ZX_VM_PERM_EXECUTE] {
        assert_eq!(
            sub.protect(opt, b, PAGE, VMAR_RIGHTS).unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn protect_unaligned_addr_is_invalid_args() {
    let (_f, sub, b) = setup();
    assert_eq!(
        sub.protect(PR, b + 1, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn protect_non_permission_options_are_invalid_args() {
    // Zircon InvalidArgsTest: CAN_MAP_* and unknown bits are rejected by protect.
    let (_f, sub, b) = setup();
    for opt in [
        ZX_VM_CAN_MAP_WRITE,
        ZX_VM_SPECIFIC,
        ZX_VM_ALIGN_64KB,
        1 << 31,
        ZX_VM_MAP_RANGE,
    ] {
        assert_eq!(
            sub.protect(PR | opt, b, PAGE, VMAR_RIGHTS).unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn protect_len_zero_is_invalid_args_and_unaligned_len_rounds_up() {
    // ZIRCON: the spec only forbids 0; Zircon UnalignedLenTest rounds an unaligned len up.
    let (f, sub, b) = setup();
    assert_eq!(
        sub.protect(PR, b, 0, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        sub.protect(PR, b, usize::MAX, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    sub.protect(PR, b, PAGE + 1, VMAR_RIGHTS).unwrap();
    assert_eq!(f.mmu.query(b + PAGE).unwrap().1, RU);
    assert_eq!(f.mmu.query(b + 2 * PAGE).unwrap().1, RWU);
    f.check();
}

#[test]
fn protect_on_destroyed_vmar_is_bad_state() {
    let (_f, sub, b) = setup();
    sub.destroy(VMAR_RIGHTS).unwrap();
    assert_eq!(
        sub.protect(PR, b, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_BAD_STATE
    );
}

#[test]
fn protect_range_outside_the_vmar_is_invalid_args() {
    let (_f, sub, b) = setup();
    assert_eq!(
        sub.protect(PR, b, 17 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        sub.protect(PR, b - PAGE, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn protect_over_an_unmapped_hole_is_not_found_and_changes_nothing() {
    let (f, sub, b) = setup();
    assert_eq!(
        sub.protect(PR, b, 9 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_NOT_FOUND
    );
    assert_eq!(
        sub.protect(PR, b + 8 * PAGE, PAGE, VMAR_RIGHTS)
            .unwrap_err(),
        Status::ERR_NOT_FOUND
    );
    sub.unmap(b + 2 * PAGE, PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(
        sub.protect(PR, b, 4 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_NOT_FOUND
    );
    assert!(f
        .mappings()
        .iter()
        .all(|m| m.2 == MmuFlags::READ | MmuFlags::WRITE));
    assert_eq!(f.mmu.query(b).unwrap().1, RWU);
    f.check();
}

#[test]
fn protect_beyond_the_map_time_ceiling_is_access_denied_and_changes_nothing() {
    // The first mapping allows RW; the second was mapped through a read-only VMO handle.
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    let vmo = f.vmo(4);
    f.map_at(&sub, 0, &vmo, 2);
    let ro = VMO_RIGHTS & !ZX_RIGHT_WRITE;
    sub.map(
        PR | ZX_VM_SPECIFIC,
        2 * PAGE,
        &vmo,
        0,
        2 * PAGE,
        VMAR_RIGHTS,
        ro,
    )
    .unwrap();
    assert_eq!(
        sub.protect(RW, b, 4 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_ACCESS_DENIED
    );
    let rw = MmuFlags::READ | MmuFlags::WRITE;
    assert_eq!(
        f.mappings(),
        vec![(b, 2 * PAGE, rw), (b + 2 * PAGE, 2 * PAGE, MmuFlags::READ)]
    );
    // Execute was never allowed by the VMAR's CAN_MAP flags for a read-only region either.
    let (rov, rb) = f
        .root
        .allocate(ZX_VM_CAN_MAP_READ, 0, PAGE, VMAR_RIGHTS)
        .unwrap();
    rov.map(PR, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(
        rov.protect(PR | ZX_VM_PERM_EXECUTE, rb, PAGE, VMAR_RIGHTS)
            .unwrap_err(),
        Status::ERR_ACCESS_DENIED
    );
    f.check();
}

#[test]
fn protect_over_subregion_mappings_without_op_children_is_invalid_args() {
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    let (child, _) = sub
        .allocate(ALL_CAN_MAP | ZX_VM_SPECIFIC, 0, 4 * PAGE, VMAR_RIGHTS)
        .unwrap();
    let vmo = f.vmo(4);
    child
        .map(RW, 0, &vmo, 0, 4 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(
        sub.protect(PR, b, 4 * PAGE, VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    // With OP_CHILDREN, reducing works.
    sub.protect(PR, b, 4 * PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(f.mappings()[0].2, MmuFlags::READ);
}

#[test]
fn protect_over_an_empty_subregion_is_invalid_args_without_op_children_else_not_found() {
    // The shape of Zircon's Vmar.ProtectMultipleTest: mapping, empty sub-region, mapping.
    let f = Fixture::new();
    let (sub, b) = f.sub(12);
    let vmo = f.vmo(4);
    f.map_at(&sub, 0, &vmo, 4);
    sub.allocate(
        ALL_CAN_MAP | ZX_VM_SPECIFIC,
        4 * PAGE,
        4 * PAGE,
        VMAR_RIGHTS,
    )
    .unwrap();
    f.map_at(&sub, 8 * PAGE, &vmo, 4);
    let before = f.mappings();
    // SPEC: a sub-region in the range without OP_CHILDREN is INVALID_ARGS, even an empty one.
    assert_eq!(
        sub.protect(PR, b + PAGE, 10 * PAGE, VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    // With OP_CHILDREN the walk recurses and finds the empty sub-region unmapped (Zircon's
    // MappingsOnly enumerator): NOT_FOUND.
    assert_eq!(
        sub.protect(PR, b + PAGE, 10 * PAGE, VMAR_RIGHTS)
            .unwrap_err(),
        Status::ERR_NOT_FOUND
    );
    assert_eq!(f.mappings(), before);
    f.check();
}

#[test]
fn protect_increasing_a_subregion_mapping_through_the_parent_is_access_denied() {
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    let (child, _) = sub
        .allocate(ALL_CAN_MAP | ZX_VM_SPECIFIC, 0, 4 * PAGE, VMAR_RIGHTS)
        .unwrap();
    let vmo = f.vmo(4);
    child
        .map(PR, 0, &vmo, 0, 4 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(
        sub.protect(RW, b, 4 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_ACCESS_DENIED
    );
    // Through the child itself it is allowed (the ceiling is RWX).
    child.protect(RW, b, 4 * PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(f.mappings()[0].2, MmuFlags::READ | MmuFlags::WRITE);
}

#[test]
fn protect_part_of_a_mapping_splits_it_and_updates_page_tables() {
    let (f, sub, b) = setup();
    let flushes = f.mmu.flush_calls();
    sub.protect(PR, b + 2 * PAGE, 3 * PAGE, VMAR_RIGHTS)
        .unwrap();
    let rw = MmuFlags::READ | MmuFlags::WRITE;
    assert_eq!(
        f.mappings(),
        vec![
            (b, 2 * PAGE, rw),
            (b + 2 * PAGE, 3 * PAGE, MmuFlags::READ),
            (b + 5 * PAGE, 3 * PAGE, rw)
        ]
    );
    for p in 0..8 {
        let want = if (2..5).contains(&p) { RU } else { RWU };
        assert_eq!(f.mmu.query(b + p * PAGE).unwrap().1, want, "page {p}");
    }
    assert_eq!(
        f.mmu.flush_calls(),
        flushes + 1,
        "one merged flush per protect"
    );
    assert_eq!(
        f.touch(b + 2 * PAGE, MmuFlags::WRITE),
        Err(Status::ERR_ACCESS_DENIED)
    );
    f.check();
}

#[test]
fn protect_to_no_access_removes_ptes_and_faults_are_denied() {
    let (f, sub, b) = setup();
    sub.protect(0, b, PAGE, VMAR_RIGHTS).unwrap();
    assert!(f.mmu.query(b).is_none());
    assert_eq!(f.touch(b, MmuFlags::READ), Err(Status::ERR_ACCESS_DENIED));
    sub.protect(PR, b, PAGE, VMAR_RIGHTS).unwrap();
    f.touch(b, MmuFlags::READ).unwrap();
    assert_eq!(f.mmu.query(b).unwrap().1, RU);
    f.check();
}

#[test]
fn protect_repeatedly_never_grows_the_tree() {
    let (f, sub, b) = setup();
    for i in 0..200 {
        let p = i % 8;
        sub.protect(PR, b + p * PAGE, PAGE, VMAR_RIGHTS).unwrap();
        assert!(f.mappings().len() <= 3);
        sub.protect(RW, b + p * PAGE, PAGE, VMAR_RIGHTS).unwrap();
        assert_eq!(f.mappings().len(), 1, "re-merged after iteration {i}");
    }
    f.check();
}

#[test]
fn protect_across_several_mappings_and_xom_flag_means_read() {
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    let vmo = f.vmo(8);
    f.map_at(&sub, 0, &vmo, 2);
    sub.map(
        RW | ZX_VM_SPECIFIC,
        2 * PAGE,
        &vmo,
        4 * PAGE as u64,
        2 * PAGE,
        VMAR_RIGHTS,
        VMO_RIGHTS,
    )
    .unwrap();
    let opt = ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED | ZX_VM_PERM_EXECUTE;
    sub.protect(opt, b, 4 * PAGE, VMAR_RIGHTS).unwrap();
    let rx = MmuFlags::READ | MmuFlags::EXECUTE;
    // Different VMO windows: not merged.
    assert_eq!(
        f.mappings(),
        vec![(b, 2 * PAGE, rx), (b + 2 * PAGE, 2 * PAGE, rx)]
    );
    f.check();
}
