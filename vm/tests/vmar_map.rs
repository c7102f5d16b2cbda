//! zx_vmar_map: every option, rule and error of vmar.fidl.
mod common;
use abi::rights::*;
use abi::vm_options::*;
use abi::vmo_options::*;
use abi::Status;
use common::*;
use vm::{MmuFlags, PhysMem};

const S: u32 = ZX_VM_SPECIFIC;

#[test]
fn map_returns_nonzero_page_aligned_base_and_records_the_mapping() {
    let f = Fixture::new();
    let vmo = f.vmo(4);
    let a = f
        .root
        .map(RW, 0, &vmo, 0, 4 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert!(a != 0 && a.is_multiple_of(PAGE));
    assert_eq!(
        f.mappings(),
        vec![(a, 4 * PAGE, MmuFlags::READ | MmuFlags::WRITE)]
    );
    assert_eq!(vmo.mapping_count(), 1);
    assert_eq!(f.mmu.mapped_pages(), 0, "no page is mapped before a fault");
    f.check();
}

#[test]
fn map_vmo_without_map_right_is_access_denied() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let err = f.root.map(
        RW,
        0,
        &vmo,
        0,
        PAGE,
        VMAR_RIGHTS,
        VMO_RIGHTS & !ZX_RIGHT_MAP,
    );
    assert_eq!(err.unwrap_err(), Status::ERR_ACCESS_DENIED);
    assert!(f.mappings().is_empty());
}

#[test]
fn map_write_or_execute_without_read_is_invalid_args() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    for opt in [
        ZX_VM_PERM_WRITE,
        ZX_VM_PERM_EXECUTE,
        ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE,
    ] {
        let err = f
            .root
            .map(opt, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err();
        assert_eq!(err, Status::ERR_INVALID_ARGS);
    }
}

#[test]
fn map_with_no_permissions_is_allowed_and_faults_are_denied() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let a = f
        .root
        .map(0, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(f.touch(a, MmuFlags::READ), Err(Status::ERR_ACCESS_DENIED));
}

#[test]
fn map_map_range_with_specific_overwrite_is_invalid_args() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let opt = RW | ZX_VM_MAP_RANGE | ZX_VM_SPECIFIC_OVERWRITE;
    assert_eq!(
        f.root
            .map(opt, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn map_can_map_flags_in_options_are_invalid_args() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    for flag in [
        ZX_VM_CAN_MAP_READ,
        ZX_VM_CAN_MAP_WRITE,
        ZX_VM_CAN_MAP_EXECUTE,
    ] {
        assert_eq!(
            f.root
                .map(RW | flag, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn map_perm_without_vmar_or_vmo_right_is_access_denied() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    for (perm, right) in [
        (ZX_VM_PERM_READ, ZX_RIGHT_READ),
        (ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, ZX_RIGHT_WRITE),
        (ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE, ZX_RIGHT_EXECUTE),
    ] {
        let e1 = f
            .root
            .map(perm, 0, &vmo, 0, PAGE, VMAR_RIGHTS & !right, VMO_RIGHTS);
        let e2 = f
            .root
            .map(perm, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS & !right);
        assert_eq!(e1.unwrap_err(), Status::ERR_ACCESS_DENIED);
        assert_eq!(e2.unwrap_err(), Status::ERR_ACCESS_DENIED);
    }
    assert!(f.mappings().is_empty());
}

#[test]
fn map_perm_beyond_vmar_can_map_is_access_denied() {
    let f = Fixture::new();
    let (ro, _) = f
        .root
        .allocate(ZX_VM_CAN_MAP_READ, 0, 4 * PAGE, VMAR_RIGHTS)
        .unwrap();
    let vmo = f.vmo(1);
    assert_eq!(
        ro.map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_ACCESS_DENIED
    );
    assert!(ro
        .map(ZX_VM_PERM_READ, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .is_ok());
}

#[test]
fn map_unknown_bits_or_bad_alignment_are_invalid_args() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    for bad in [
        1u32 << 31,
        1 << 20,
        5 << ZX_VM_ALIGN_BASE,
        33 << ZX_VM_ALIGN_BASE,
    ] {
        assert_eq!(
            f.root
                .map(RW | bad, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn map_require_non_resizable_on_resizable_vmo_is_not_supported() {
    let f = Fixture::new();
    let vmo = f.vmo_opts(1, ZX_VMO_RESIZABLE);
    let opt = RW | ZX_VM_REQUIRE_NON_RESIZABLE | ZX_VM_ALLOW_FAULTS;
    assert_eq!(
        f.root
            .map(opt, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_NOT_SUPPORTED
    );
    let fixed = f.vmo(1);
    assert!(f
        .root
        .map(
            RW | ZX_VM_REQUIRE_NON_RESIZABLE,
            0,
            &fixed,
            0,
            PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS
        )
        .is_ok());
}

#[test]
fn map_resizable_or_discardable_vmo_without_allow_faults_is_not_supported() {
    let f = Fixture::new();
    for opts in [ZX_VMO_RESIZABLE, ZX_VMO_DISCARDABLE] {
        let vmo = f.vmo_opts(1, opts);
        assert_eq!(
            f.root
                .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_NOT_SUPPORTED
        );
        assert!(f
            .root
            .map(
                RW | ZX_VM_ALLOW_FAULTS,
                0,
                &vmo,
                0,
                PAGE,
                VMAR_RIGHTS,
                VMO_RIGHTS
            )
            .is_ok());
    }
}

#[test]
fn map_past_end_of_non_resizable_vmo_without_allow_faults_is_buffer_too_small() {
    let f = Fixture::new();
    let vmo = f.vmo(2);
    assert_eq!(
        f.root
            .map(RW, 0, &vmo, PAGE as u64, 2 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_BUFFER_TOO_SMALL
    );
    // With ALLOW_FAULTS it maps; the page past the end faults with OUT_OF_RANGE.
    let a = f
        .root
        .map(
            RW | ZX_VM_ALLOW_FAULTS,
            0,
            &vmo,
            PAGE as u64,
            2 * PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap();
    assert_eq!(f.touch(a, MmuFlags::READ), Ok(()));
    assert_eq!(
        f.touch(a + PAGE, MmuFlags::READ),
        Err(Status::ERR_OUT_OF_RANGE)
    );
    f.check();
}

#[test]
fn map_compact_or_can_map_specific_option_is_invalid_args() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    for flag in [ZX_VM_COMPACT, ZX_VM_CAN_MAP_SPECIFIC] {
        assert_eq!(
            f.root
                .map(RW | flag, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn map_unaligned_vmo_offset_is_invalid_args() {
    let f = Fixture::new();
    let vmo = f.vmo(2);
    assert_eq!(
        f.root
            .map(RW, 0, &vmo, 1, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn map_len_zero_is_invalid_args_and_unaligned_rounds_up() {
    // ZIRCON (the spec text calls an unaligned len INVALID_ARGS): len is rounded up to pages
    // (core test Vmar.UnalignedLenMapTest); 0 is INVALID_ARGS; a len that rounds past the top of
    // the address space is OUT_OF_RANGE (Vmar.InvalidArgsTest, "size rounds up to 0").
    let f = Fixture::new();
    let vmo = f.vmo(2);
    assert_eq!(
        f.root
            .map(RW, 0, &vmo, 0, 0, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    for (len, pages) in [(1, 1), (PAGE + 1, 2), (2 * PAGE - 1, 2)] {
        for opt in [RW, RW | ZX_VM_MAP_RANGE] {
            let a = f
                .root
                .map(opt, 0, &vmo, 0, len, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap();
            assert!(f
                .mappings()
                .contains(&(a, pages * PAGE, MmuFlags::READ | MmuFlags::WRITE)));
            f.root.unmap(a, len, VMAR_RIGHTS).unwrap();
            assert!(f.mappings().is_empty());
        }
    }
    let bad = usize::MAX - PAGE + 2;
    for opt in [RW, ZX_VM_PERM_READ | ZX_VM_MAP_RANGE] {
        assert_eq!(
            f.root
                .map(opt, 0, &vmo, 0, bad, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_OUT_OF_RANGE
        );
    }
    f.check();
}

#[test]
fn map_vmo_offset_plus_len_overflow_is_out_of_range() {
    let f = Fixture::new();
    let vmo = f.vmo_opts(1, ZX_VMO_RESIZABLE);
    let off = !(PAGE as u64 - 1);
    for opt in [RW, RW | ZX_VM_ALLOW_FAULTS] {
        let vmo_fixed = f.vmo(1);
        let target = if opt & ZX_VM_ALLOW_FAULTS != 0 {
            &vmo
        } else {
            &vmo_fixed
        };
        assert_eq!(
            f.root
                .map(opt, 0, target, off, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_OUT_OF_RANGE
        );
    }
}

#[test]
fn map_on_destroyed_vmar_is_bad_state() {
    let f = Fixture::new();
    let (sub, _) = f.sub(4);
    sub.destroy(VMAR_RIGHTS).unwrap();
    let vmo = f.vmo(1);
    assert_eq!(
        sub.map(ZX_VM_PERM_READ, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_BAD_STATE
    );
}

#[test]
fn map_nonzero_offset_without_specific_is_invalid_args() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    assert_eq!(
        f.root
            .map(RW, PAGE, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn map_specific_with_upper_limit_is_invalid_args() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    for s in [ZX_VM_SPECIFIC, ZX_VM_SPECIFIC_OVERWRITE] {
        let opt = RW | s | ZX_VM_OFFSET_IS_UPPER_LIMIT;
        assert_eq!(
            f.root
                .map(opt, 4 * PAGE, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn map_specific_without_can_map_specific_is_access_denied() {
    let f = Fixture::new();
    let (plain, _) = f
        .root
        .allocate(ALL_CAN_MAP, 0, 8 * PAGE, VMAR_RIGHTS)
        .unwrap();
    let vmo = f.vmo(1);
    for opt in [
        ZX_VM_SPECIFIC,
        ZX_VM_SPECIFIC_OVERWRITE,
        ZX_VM_OFFSET_IS_UPPER_LIMIT,
    ] {
        assert_eq!(
            plain
                .map(RW | opt, 4 * PAGE, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_ACCESS_DENIED
        );
    }
}

#[test]
fn map_specific_out_of_region_bounds_is_invalid_args() {
    let f = Fixture::new();
    let (sub, _) = f.sub(4);
    let vmo = f.vmo(4);
    for (off, pages) in [(4 * PAGE, 1), (3 * PAGE, 2), (!(PAGE - 1), 1)] {
        assert_eq!(
            sub.map(RW | S, off, &vmo, 0, pages * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn map_specific_misaligned_for_align_flag_is_invalid_args() {
    let f = Fixture::new();
    let (sub, b) = f
        .root
        .allocate(
            ALL_CAN_MAP | ZX_VM_CAN_MAP_SPECIFIC | ZX_VM_ALIGN_1MB,
            0,
            2 << 20,
            VMAR_RIGHTS,
        )
        .unwrap();
    let vmo = f.vmo(1);
    let opt = RW | S | ZX_VM_ALIGN_64KB;
    assert_eq!(
        sub.map(opt, PAGE, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        sub.map(opt, 64 << 10, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS),
        Ok(b + (64 << 10))
    );
}

#[test]
fn map_align_flag_aligns_random_placement() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    for _ in 0..10 {
        let a = f
            .root
            .map(
                RW | ZX_VM_ALIGN_2MB,
                0,
                &vmo,
                0,
                PAGE,
                VMAR_RIGHTS,
                VMO_RIGHTS,
            )
            .unwrap();
        assert_eq!(a % (2 << 20), 0);
    }
}

#[test]
fn map_specific_overlap_is_already_exists() {
    let f = Fixture::new();
    let (sub, _) = f.sub(8);
    let vmo = f.vmo(4);
    f.map_at(&sub, 2 * PAGE, &vmo, 2);
    assert_eq!(
        sub.map(RW | S, 3 * PAGE, &vmo, 0, 2 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_ALREADY_EXISTS
    );
    sub.allocate(ALL_CAN_MAP | S, 6 * PAGE, PAGE, VMAR_RIGHTS)
        .unwrap();
    assert_eq!(
        sub.map(RW | S, 5 * PAGE, &vmo, 0, 2 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_ALREADY_EXISTS
    );
    assert_eq!(f.mappings().len(), 1);
    f.check();
}

#[test]
fn map_upper_limit_bounds_every_mapping_then_no_resources() {
    // Zircon MapInUpperLimitTest.
    let f = Fixture::new();
    let (parent, pb) = f.sub(100);
    // A VMO larger than the region, so BUFFER_TOO_SMALL (checked first) never applies.
    let vmo = f.vmo(200);
    let opt = RW | ZX_VM_OFFSET_IS_UPPER_LIMIT;
    let m = |off, len| parent.map(opt, off, &vmo, 0, len, VMAR_RIGHTS, VMO_RIGHTS);
    assert_eq!(m(101 * PAGE, PAGE).unwrap_err(), Status::ERR_INVALID_ARGS);
    assert_eq!(m(PAGE, 2 * PAGE).unwrap_err(), Status::ERR_INVALID_ARGS);
    assert_eq!(m(PAGE, 101 * PAGE).unwrap_err(), Status::ERR_INVALID_ARGS);
    let a = m(100 * PAGE, 100 * PAGE).unwrap();
    assert_eq!(a, pb);
    parent.unmap(a, 100 * PAGE, VMAR_RIGHTS).unwrap();
    for _ in 0..50 {
        let a = m(50 * PAGE, PAGE).unwrap();
        assert!(a >= pb && a + PAGE <= pb + 50 * PAGE);
    }
    assert_eq!(m(50 * PAGE, PAGE).unwrap_err(), Status::ERR_NO_RESOURCES);
    let a = parent
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert!(a >= pb + 50 * PAGE && a + PAGE <= pb + 100 * PAGE);
    f.check();
}

#[test]
fn map_without_room_is_no_resources() {
    let f = Fixture::new();
    let (sub, _) = f.sub(2);
    let vmo = f.vmo(2);
    sub.map(RW, 0, &vmo, 0, 2 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(
        sub.map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap_err(),
        Status::ERR_NO_RESOURCES
    );
}

#[test]
fn map_specific_overwrite_replaces_overlapped_parts_only() {
    let f = Fixture::new();
    let (sub, b) = f.sub(16);
    let old = f.vmo(8);
    let new = f.vmo(4);
    f.map_at(&sub, 0, &old, 8);
    for p in 0..8 {
        f.touch(b + p * PAGE, MmuFlags::WRITE).unwrap();
    }
    let opt = ZX_VM_PERM_READ | ZX_VM_SPECIFIC_OVERWRITE;
    let a = sub
        .map(opt, 2 * PAGE, &new, 0, 4 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(a, b + 2 * PAGE);
    let rw = MmuFlags::READ | MmuFlags::WRITE;
    assert_eq!(
        f.mappings(),
        vec![
            (b, 2 * PAGE, rw),
            (b + 2 * PAGE, 4 * PAGE, MmuFlags::READ),
            (b + 6 * PAGE, 2 * PAGE, rw)
        ]
    );
    assert_eq!(
        f.mmu.mapped_pages_in(b + 2 * PAGE, b + 6 * PAGE),
        0,
        "old PTEs are gone"
    );
    assert_eq!(f.mmu.mapped_pages(), 4);
    assert_eq!(old.mapping_count(), 2);
    f.touch(a, MmuFlags::READ).unwrap();
    assert_eq!(
        f.mmu.query(a).unwrap(),
        (f.phys.zero_frame(), RU),
        "the new mapping reads the new VMO (its zero page)"
    );
    assert_eq!(new.frame_of(0), None);
    f.check();
}

#[test]
fn map_specific_overwrite_on_free_range_just_maps() {
    let f = Fixture::new();
    let (sub, b) = f.sub(4);
    let vmo = f.vmo(1);
    let opt = RW | ZX_VM_SPECIFIC_OVERWRITE;
    assert_eq!(
        sub.map(opt, PAGE, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS),
        Ok(b + PAGE)
    );
}

#[test]
fn map_specific_overwrite_over_a_subregion_is_invalid_args_and_changes_nothing() {
    // SPEC: partial overlap of a VMAR is an error. ZIRCON: a VMAR wholly inside the range is an
    // error too (the overwrite unmaps with can_destroy_regions = false).
    let f = Fixture::new();
    let (sub, b) = f.sub(16);
    let vmo = f.vmo(16);
    f.map_at(&sub, 0, &vmo, 4);
    f.touch(b, MmuFlags::WRITE).unwrap();
    let (child, _) = sub
        .allocate(ALL_CAN_MAP | S, 6 * PAGE, 2 * PAGE, VMAR_RIGHTS)
        .unwrap();
    let opt = RW | ZX_VM_SPECIFIC_OVERWRITE;
    for (off, pages) in [(0, 7), (0, 8), (0, 12)] {
        assert_eq!(
            sub.map(opt, off, &vmo, 0, pages * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
    assert!(child.is_alive());
    assert_eq!(f.mappings().len(), 1);
    assert_eq!(f.mmu.mapped_pages(), 1);
    f.check();
}

#[test]
fn map_map_range_maps_committed_pages_only() {
    let f = Fixture::new();
    let vmo = f.vmo(4);
    vmo.write(PAGE as u64, &[1]).unwrap();
    vmo.write(3 * PAGE as u64, &[1]).unwrap();
    let a = f
        .root
        .map(
            RW | ZX_VM_MAP_RANGE,
            0,
            &vmo,
            0,
            4 * PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap();
    assert_eq!(f.mmu.mapped_pages(), 2);
    assert_eq!(
        f.mmu.query(a + PAGE).unwrap(),
        (vmo.frame_of(1).unwrap(), RWU)
    );
    assert_eq!(
        f.mmu.query(a + 3 * PAGE).unwrap().0,
        vmo.frame_of(3).unwrap()
    );
    assert_eq!(vmo.committed_page_count(), 2, "MAP_RANGE commits nothing");
    f.check();
}

#[test]
fn map_map_range_page_table_exhaustion_is_no_memory_and_leaves_no_mapping() {
    let f = Fixture::new();
    let vmo = f.vmo(4);
    vmo.commit(0, 4 * PAGE as u64).unwrap();
    f.mmu.set_map_budget(Some(2));
    let err = f.root.map(
        RW | ZX_VM_MAP_RANGE,
        0,
        &vmo,
        0,
        4 * PAGE,
        VMAR_RIGHTS,
        VMO_RIGHTS,
    );
    assert_eq!(err.unwrap_err(), Status::ERR_NO_MEMORY);
    assert!(f.mappings().is_empty());
    assert_eq!(f.mmu.mapped_pages(), 0);
    assert_eq!(vmo.mapping_count(), 0);
    f.check();
}

#[test]
fn map_perm_read_if_xom_unsupported_maps_readable_on_x86() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let opt = ZX_VM_PERM_EXECUTE | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED;
    let a = f
        .root
        .map(opt, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(f.mappings()[0].2, MmuFlags::READ | MmuFlags::EXECUTE);
    f.touch(a, MmuFlags::READ).unwrap();
    // READ is then required of the handles like a plain PERM_READ.
    assert_eq!(
        f.root
            .map(
                opt,
                0,
                &vmo,
                0,
                PAGE,
                VMAR_RIGHTS & !ZX_RIGHT_READ,
                VMO_RIGHTS
            )
            .unwrap_err(),
        Status::ERR_ACCESS_DENIED
    );
}

#[test]
fn map_records_vmo_rights_as_the_protect_ceiling_after_the_handle_is_gone() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let ro_rights = VMO_RIGHTS & !ZX_RIGHT_WRITE;
    let a = f
        .root
        .map(ZX_VM_PERM_READ, 0, &vmo, 0, PAGE, VMAR_RIGHTS, ro_rights)
        .unwrap();
    assert_eq!(
        f.root.protect(RW, a, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_ACCESS_DENIED
    );
    let b = f
        .root
        .map(ZX_VM_PERM_READ, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(f.root.protect(RW, b, PAGE, VMAR_RIGHTS), Ok(()));
}
