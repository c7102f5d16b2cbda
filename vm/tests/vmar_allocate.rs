//! zx_vmar_allocate: every option, rule and error of vmar.fidl.
mod common;
use abi::rights::*;
use abi::vm_options::*;
use abi::Status;
use common::*;

fn can_rw() -> u32 {
    ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE
}

#[test]
fn allocate_returns_page_aligned_nonzero_base_inside_parent() {
    let f = Fixture::new();
    let (child, base) = f
        .root
        .allocate(can_rw(), 0, 10 * PAGE, VMAR_RIGHTS)
        .unwrap();
    assert_ne!(base, 0);
    assert_eq!(base % PAGE, 0);
    assert!(base >= ASPACE_BASE && base + 10 * PAGE <= ASPACE_BASE + ASPACE_LEN);
    assert_eq!((child.base(), child.size()), (base, 10 * PAGE));
    assert_eq!(
        f.vmars(),
        vec![(ASPACE_BASE, ASPACE_LEN), (base, 10 * PAGE)]
    );
    // Nested allocation lands inside the child (Zircon BasicAllocateTest).
    let (_, inner) = child.allocate(can_rw(), 0, PAGE, VMAR_RIGHTS).unwrap();
    assert!(inner >= base && inner + PAGE <= base + 10 * PAGE);
    f.check();
}

#[test]
fn allocate_can_map_flags_need_matching_handle_rights_else_access_denied() {
    let f = Fixture::new();
    for (flag, right) in [
        (ZX_VM_CAN_MAP_READ, ZX_RIGHT_READ),
        (ZX_VM_CAN_MAP_WRITE, ZX_RIGHT_WRITE),
        (ZX_VM_CAN_MAP_EXECUTE, ZX_RIGHT_EXECUTE),
    ] {
        let err = f
            .root
            .allocate(flag, 0, PAGE, VMAR_RIGHTS & !right)
            .unwrap_err();
        assert_eq!(err, Status::ERR_ACCESS_DENIED);
    }
    assert_eq!(f.vmars().len(), 1, "nothing was created");
}

#[test]
fn allocate_unknown_option_bit_is_invalid_args() {
    let f = Fixture::new();
    for bad in [1u32 << 15, 1 << 23, ZX_VM_MAP_RANGE] {
        assert_eq!(
            f.root
                .allocate(can_rw() | bad, 0, PAGE, VMAR_RIGHTS)
                .unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn allocate_align_value_outside_1kb_to_4gb_is_invalid_args() {
    let f = Fixture::new();
    for align in [1u32, 9, 33, 31 + 2] {
        let opt = can_rw() | (align << ZX_VM_ALIGN_BASE);
        assert_eq!(
            f.root.allocate(opt, 0, PAGE, VMAR_RIGHTS).unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
    assert_eq!(
        f.root
            .allocate(can_rw() | (1 << 31), 0, PAGE, VMAR_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn allocate_with_perm_flags_is_invalid_args() {
    let f = Fixture::new();
    for perm in [ZX_VM_PERM_READ, ZX_VM_PERM_WRITE, ZX_VM_PERM_EXECUTE] {
        assert_eq!(
            f.root
                .allocate(can_rw() | perm, 0, PAGE, VMAR_RIGHTS)
                .unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn allocate_mapping_only_flags_are_invalid_args() {
    let f = Fixture::new();
    for flag in [
        ZX_VM_SPECIFIC_OVERWRITE,
        ZX_VM_REQUIRE_NON_RESIZABLE,
        ZX_VM_ALLOW_FAULTS,
    ] {
        assert_eq!(
            f.root
                .allocate(can_rw() | flag, 0, PAGE, VMAR_RIGHTS)
                .unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn allocate_perm_read_if_xom_unsupported_is_ignored() {
    // ZIRCON: split_syscall_flags drops the flag; sys_vmar_allocate never turns it into READ.
    let f = Fixture::new();
    let opt = can_rw() | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED;
    assert!(f.root.allocate(opt, 0, PAGE, VMAR_RIGHTS).is_ok());
}

#[test]
fn allocate_size_zero_or_unaligned_is_invalid_args() {
    let f = Fixture::new();
    assert_eq!(
        f.root.allocate(can_rw(), 0, 0, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        f.root
            .allocate(can_rw(), 0, PAGE + 1, VMAR_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        f.root
            .allocate(can_rw(), 0, usize::MAX, VMAR_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn allocate_on_destroyed_vmar_is_bad_state() {
    let f = Fixture::new();
    let (sub, _) = f.sub(16);
    sub.destroy(VMAR_RIGHTS).unwrap();
    assert_eq!(
        sub.allocate(can_rw(), 0, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_BAD_STATE
    );
}

#[test]
fn allocate_child_can_map_beyond_parent_is_access_denied() {
    let f = Fixture::new();
    let (ro, _) = f
        .root
        .allocate(ZX_VM_CAN_MAP_READ, 0, 16 * PAGE, VMAR_RIGHTS)
        .unwrap();
    // The handle has WRITE, but the parent region cannot map writable.
    assert_eq!(
        ro.allocate(can_rw(), 0, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_ACCESS_DENIED
    );
    assert!(ro
        .allocate(ZX_VM_CAN_MAP_READ, 0, PAGE, VMAR_RIGHTS)
        .is_ok());
}

#[test]
fn allocate_can_map_specific_without_parent_specific_is_not_an_error() {
    let f = Fixture::new();
    let (plain, _) = f
        .root
        .allocate(can_rw(), 0, 16 * PAGE, VMAR_RIGHTS)
        .unwrap();
    assert!(!plain.flags().can_map_specific);
    let (child, _) = plain
        .allocate(can_rw() | ZX_VM_CAN_MAP_SPECIFIC, 0, 4 * PAGE, VMAR_RIGHTS)
        .unwrap();
    assert!(child.flags().can_map_specific);
}

#[test]
fn allocate_specific_with_upper_limit_is_invalid_args() {
    let f = Fixture::new();
    let opt = can_rw() | ZX_VM_SPECIFIC | ZX_VM_OFFSET_IS_UPPER_LIMIT;
    assert_eq!(
        f.root.allocate(opt, PAGE, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn allocate_nonzero_offset_without_specific_or_upper_limit_is_invalid_args() {
    let f = Fixture::new();
    assert_eq!(
        f.root
            .allocate(can_rw(), PAGE, PAGE, VMAR_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn allocate_unaligned_offset_is_invalid_args() {
    let f = Fixture::new();
    assert_eq!(
        f.root
            .allocate(can_rw() | ZX_VM_SPECIFIC, 100, PAGE, VMAR_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn allocate_specific_or_upper_limit_without_can_map_specific_is_access_denied() {
    let f = Fixture::new();
    let (plain, _) = f
        .root
        .allocate(can_rw(), 0, 16 * PAGE, VMAR_RIGHTS)
        .unwrap();
    for opt in [ZX_VM_SPECIFIC, ZX_VM_OFFSET_IS_UPPER_LIMIT] {
        assert_eq!(
            plain
                .allocate(can_rw() | opt, 4 * PAGE, PAGE, VMAR_RIGHTS)
                .unwrap_err(),
            Status::ERR_ACCESS_DENIED
        );
    }
}

#[test]
fn allocate_specific_out_of_bounds_is_invalid_args() {
    // Zircon AllocateOobTest / AllocateUnsatisfiableTest.
    let f = Fixture::new();
    let (r1, _) = f.sub(10);
    let s = can_rw() | ZX_VM_SPECIFIC;
    assert_eq!(
        r1.allocate(s, 10 * PAGE, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        r1.allocate(s, 9 * PAGE, 2 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        r1.allocate(can_rw(), 0, 11 * PAGE, VMAR_RIGHTS)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        r1.allocate(s, !(PAGE - 1), PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn allocate_specific_places_at_parent_base_plus_offset() {
    let f = Fixture::new();
    let (r1, b1) = f.sub(10);
    let (_, b) = r1
        .allocate(can_rw() | ZX_VM_SPECIFIC, 3 * PAGE, 2 * PAGE, VMAR_RIGHTS)
        .unwrap();
    assert_eq!(b, b1 + 3 * PAGE);
}

#[test]
fn allocate_specific_misaligned_for_align_flag_is_invalid_args() {
    let f = Fixture::new();
    let (r1, b1) = f
        .root
        .allocate(
            ALL_CAN_MAP | ZX_VM_CAN_MAP_SPECIFIC | ZX_VM_ALIGN_1MB,
            0,
            4 << 20,
            VMAR_RIGHTS,
        )
        .unwrap();
    assert_eq!(b1 % (1 << 20), 0);
    let opt = can_rw() | ZX_VM_SPECIFIC | ZX_VM_ALIGN_64KB;
    assert_eq!(
        r1.allocate(opt, PAGE, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        r1.allocate(opt, 64 << 10, PAGE, VMAR_RIGHTS).unwrap().1,
        b1 + (64 << 10)
    );
}

#[test]
fn allocate_specific_overlap_is_already_exists() {
    // ZIRCON: the spec lists no status for an overlapping SPECIFIC allocate; Zircon returns
    // ALREADY_EXISTS.
    let f = Fixture::new();
    let (r1, _) = f.sub(10);
    let s = can_rw() | ZX_VM_SPECIFIC;
    r1.allocate(s, 2 * PAGE, 2 * PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(
        r1.allocate(s, 3 * PAGE, 2 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_ALREADY_EXISTS
    );
    let vmo = f.vmo(1);
    f.map_at(&r1, 6 * PAGE, &vmo, 1);
    assert_eq!(
        r1.allocate(s, 5 * PAGE, 2 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_ALREADY_EXISTS
    );
    f.check();
}

#[test]
fn allocate_without_room_is_no_resources() {
    // ZIRCON (the spec text says NO_MEMORY): no free range of the requested size is NO_RESOURCES,
    // as Zircon's core test Vmar.AllocateUnsatisfiableTest asserts.
    let f = Fixture::new();
    let (r1, b1) = f.sub(10);
    let (_, b2) = r1.allocate(can_rw(), 0, 10 * PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(b2, b1);
    assert_eq!(
        r1.allocate(can_rw(), 0, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_NO_RESOURCES
    );
    assert_eq!(vm::vmar::ALLOCATE_NO_SPACE_STATUS, Status::ERR_NO_RESOURCES);
}

#[test]
fn allocate_upper_limit_bounds_the_end() {
    let f = Fixture::new();
    let (r1, b1) = f.sub(100);
    let opt = can_rw() | ZX_VM_OFFSET_IS_UPPER_LIMIT;
    for _ in 0..20 {
        let (_, b) = r1.allocate(opt, 50 * PAGE, PAGE, VMAR_RIGHTS).unwrap();
        assert!(b >= b1 && b + PAGE <= b1 + 50 * PAGE);
    }
    // Equal to the region: the whole region.
    let (r2, b2) = f.sub(8);
    assert_eq!(
        r2.allocate(opt, 8 * PAGE, 8 * PAGE, VMAR_RIGHTS).unwrap().1,
        b2
    );
}

#[test]
fn allocate_upper_limit_unsatisfiable_is_invalid_args() {
    let f = Fixture::new();
    let (r1, _) = f.sub(10);
    let opt = can_rw() | ZX_VM_OFFSET_IS_UPPER_LIMIT;
    assert_eq!(
        r1.allocate(opt, 11 * PAGE, PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        r1.allocate(opt, PAGE, 2 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        r1.allocate(opt, PAGE, 11 * PAGE, VMAR_RIGHTS).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn allocate_align_flags_align_the_base() {
    let f = Fixture::new();
    for (flag, align) in [
        (ZX_VM_ALIGN_1KB, PAGE),
        (ZX_VM_ALIGN_2KB, PAGE),
        (ZX_VM_ALIGN_4KB, PAGE),
        (ZX_VM_ALIGN_64KB, 64 << 10),
        (ZX_VM_ALIGN_2MB, 2 << 20),
        (ZX_VM_ALIGN_64MB, 64 << 20),
    ] {
        for _ in 0..5 {
            let (_, b) = f
                .root
                .allocate(can_rw() | flag, 0, PAGE, VMAR_RIGHTS)
                .unwrap();
            assert_eq!(b % align, 0, "flag {flag:#x}");
        }
    }
    // An alignment larger than the whole space cannot be met.
    assert_eq!(
        f.root
            .allocate(can_rw() | ZX_VM_ALIGN_4GB, 0, PAGE, VMAR_RIGHTS)
            .unwrap_err(),
        Status::ERR_NO_RESOURCES
    );
}

#[test]
fn allocate_new_handle_rights_follow_can_map_flags() {
    let f = Fixture::new();
    let (c, _) = f
        .root
        .allocate(ZX_VM_CAN_MAP_READ, 0, PAGE, VMAR_RIGHTS)
        .unwrap();
    assert_eq!(c.perm_rights(), ZX_RIGHT_READ);
    let (c, _) = f.root.allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(
        c.perm_rights(),
        ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE
    );
    assert!(!c.is_root() && f.root.is_root());
}

#[test]
fn allocate_in_compact_region_packs_children() {
    let f = Fixture::new();
    let (c, b) = f
        .root
        .allocate(can_rw() | ZX_VM_COMPACT, 0, 64 * PAGE, VMAR_RIGHTS)
        .unwrap();
    assert!(c.flags().compact);
    let bases: Vec<usize> = (0..4)
        .map(|_| c.allocate(can_rw(), 0, 2 * PAGE, VMAR_RIGHTS).unwrap().1)
        .collect();
    assert_eq!(bases, vec![b, b + 2 * PAGE, b + 4 * PAGE, b + 6 * PAGE]);
}
