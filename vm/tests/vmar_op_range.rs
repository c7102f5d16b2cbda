//! zx_vmar_op_range: every op, rule and error of vmar.fidl.
mod common;
use abi::ops::*;
use abi::rights::*;
use abi::vm_options::*;
use abi::vmo_options::ZX_VMO_RESIZABLE;
use abi::Status;
use common::*;
use vm::{MmuFlags, PhysMem};

fn setup(pages: usize) -> (Fixture, vm::Vmar, usize, std::sync::Arc<vm::Vmo>) {
    let f = Fixture::new();
    let (sub, b) = f.sub(16);
    let vmo = f.vmo(pages);
    f.map_at(&sub, 0, &vmo, pages);
    (f, sub, b, vmo)
}

#[test]
fn op_range_unknown_op_is_invalid_args() {
    let (_f, sub, b, _) = setup(4);
    for op in [0, 4, 10, 99] {
        assert_eq!(
            sub.op_range(op, b, PAGE, VMAR_RIGHTS, 0).unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
}

#[test]
fn op_range_commit_or_decommit_without_write_right_is_access_denied() {
    let (_f, sub, b, vmo) = setup(4);
    for op in [ZX_VMAR_OP_COMMIT, ZX_VMAR_OP_DECOMMIT] {
        assert_eq!(
            sub.op_range(op, b, PAGE, VMAR_RIGHTS & !ZX_RIGHT_WRITE, 0)
                .unwrap_err(),
            Status::ERR_ACCESS_DENIED
        );
    }
    assert_eq!(vmo.committed_page_count(), 0);
    assert_eq!(
        sub.op_range(
            ZX_VMAR_OP_MAP_RANGE,
            b,
            PAGE,
            VMAR_RIGHTS & !ZX_RIGHT_WRITE,
            0
        ),
        Ok(())
    );
}

#[test]
fn op_range_non_empty_buffer_zero_size_or_unaligned_addr_is_invalid_args() {
    let (_f, sub, b, _) = setup(4);
    let op = ZX_VMAR_OP_COMMIT;
    assert_eq!(
        sub.op_range(op, b, PAGE, VMAR_RIGHTS, 8).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        sub.op_range(op, b, 0, VMAR_RIGHTS, 0).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        sub.op_range(op, b + 1, PAGE, VMAR_RIGHTS, 0).unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
}

#[test]
fn op_range_outside_the_vmar_is_out_of_range() {
    let (_f, sub, b, _) = setup(4);
    let op = ZX_VMAR_OP_MAP_RANGE;
    assert_eq!(
        sub.op_range(op, b, 17 * PAGE, VMAR_RIGHTS, 0).unwrap_err(),
        Status::ERR_OUT_OF_RANGE
    );
    assert_eq!(
        sub.op_range(op, b - PAGE, PAGE, VMAR_RIGHTS, 0)
            .unwrap_err(),
        Status::ERR_OUT_OF_RANGE
    );
    assert_eq!(
        sub.op_range(op, !(PAGE - 1), PAGE, VMAR_RIGHTS, 0)
            .unwrap_err(),
        Status::ERR_OUT_OF_RANGE
    );
}

#[test]
fn op_range_on_destroyed_vmar_is_bad_state() {
    let (_f, sub, b, _) = setup(4);
    sub.destroy(VMAR_RIGHTS).unwrap();
    assert_eq!(
        sub.op_range(ZX_VMAR_OP_COMMIT, b, PAGE, VMAR_RIGHTS, 0)
            .unwrap_err(),
        Status::ERR_BAD_STATE
    );
}

#[test]
fn op_range_spanning_unmapped_pages_is_bad_state() {
    let (_f, sub, b, vmo) = setup(4);
    for op in [
        ZX_VMAR_OP_COMMIT,
        ZX_VMAR_OP_MAP_RANGE,
        ZX_VMAR_OP_DONT_NEED,
    ] {
        assert_eq!(
            sub.op_range(op, b, 5 * PAGE, VMAR_RIGHTS, 0).unwrap_err(),
            Status::ERR_BAD_STATE
        );
        assert_eq!(
            sub.op_range(op, b + 8 * PAGE, PAGE, VMAR_RIGHTS, 0)
                .unwrap_err(),
            Status::ERR_BAD_STATE
        );
    }
    // Like Zircon, the mapped prefix was committed before the hole was found.
    assert_eq!(vmo.committed_page_count(), 4);
}

#[test]
fn op_range_commit_or_decommit_over_a_subregion_is_invalid_args() {
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    let (child, _) = sub
        .allocate(ALL_CAN_MAP | ZX_VM_SPECIFIC, 0, 4 * PAGE, VMAR_RIGHTS)
        .unwrap();
    let vmo = f.vmo(4);
    child
        .map(RW, 0, &vmo, 0, 4 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    for op in [ZX_VMAR_OP_COMMIT, ZX_VMAR_OP_DECOMMIT] {
        assert_eq!(
            sub.op_range(op, b, 4 * PAGE, VMAR_RIGHTS, 0).unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
    }
    // Other ops need OP_CHILDREN to reach into the sub-region.
    let no_children = VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN;
    assert_eq!(
        sub.op_range(ZX_VMAR_OP_MAP_RANGE, b, 4 * PAGE, no_children, 0)
            .unwrap_err(),
        Status::ERR_INVALID_ARGS
    );
    assert_eq!(
        sub.op_range(ZX_VMAR_OP_MAP_RANGE, b, 4 * PAGE, VMAR_RIGHTS, 0),
        Ok(())
    );
    assert_eq!(
        child.op_range(ZX_VMAR_OP_COMMIT, b, 4 * PAGE, VMAR_RIGHTS, 0),
        Ok(())
    );
}

#[test]
fn op_range_commit_on_a_never_writable_mapping_is_access_denied() {
    let f = Fixture::new();
    let vmo = f.vmo(2);
    let ro = VMO_RIGHTS & !ZX_RIGHT_WRITE;
    let a = f
        .root
        .map(ZX_VM_PERM_READ, 0, &vmo, 0, 2 * PAGE, VMAR_RIGHTS, ro)
        .unwrap();
    for op in [ZX_VMAR_OP_COMMIT, ZX_VMAR_OP_DECOMMIT] {
        assert_eq!(
            f.root.op_range(op, a, PAGE, VMAR_RIGHTS, 0).unwrap_err(),
            Status::ERR_ACCESS_DENIED
        );
    }
    // A read-only mapping that may become writable is fine (the ceiling decides).
    let b = f
        .root
        .map(
            ZX_VM_PERM_READ,
            0,
            &vmo,
            0,
            2 * PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap();
    assert_eq!(
        f.root.op_range(ZX_VMAR_OP_COMMIT, b, PAGE, VMAR_RIGHTS, 0),
        Ok(())
    );
}

#[test]
fn op_range_commit_commits_and_maps_and_decommit_frees() {
    let (f, sub, b, vmo) = setup(4);
    sub.op_range(ZX_VMAR_OP_COMMIT, b + PAGE, 2 * PAGE, VMAR_RIGHTS, 0)
        .unwrap();
    assert_eq!(vmo.committed_page_count(), 2);
    assert_eq!(f.mmu.mapped_pages(), 2);
    assert_eq!(
        f.mmu.query(b + PAGE).unwrap(),
        (vmo.frame_of(1).unwrap(), RWU)
    );
    let used = f.phys.used_frames();
    sub.op_range(ZX_VMAR_OP_DECOMMIT, b, 4 * PAGE, VMAR_RIGHTS, 0)
        .unwrap();
    assert_eq!(vmo.committed_page_count(), 0);
    assert_eq!(f.mmu.mapped_pages(), 0);
    assert_eq!(f.phys.used_frames(), used - 2);
    // Reads see zeros again after decommit.
    f.touch(b + PAGE, MmuFlags::READ).unwrap();
    let mut buf = [1u8; 4];
    vmo.read(PAGE as u64, &mut buf).unwrap();
    assert_eq!(buf, [0; 4]);
    f.check();
}

#[test]
fn op_range_map_range_maps_committed_pages_and_skips_existing() {
    let (f, sub, b, vmo) = setup(4);
    vmo.write(0, &[1]).unwrap();
    vmo.write(2 * PAGE as u64, &[1]).unwrap();
    f.touch(b, MmuFlags::READ).unwrap();
    sub.op_range(ZX_VMAR_OP_MAP_RANGE, b, 4 * PAGE, VMAR_RIGHTS, 0)
        .unwrap();
    assert_eq!(f.mmu.mapped_pages(), 2);
    assert_eq!(vmo.committed_page_count(), 2, "MAP_RANGE commits nothing");
    f.check();
}

#[test]
fn op_range_dont_need_and_always_need_succeed() {
    let (f, sub, b, vmo) = setup(4);
    vmo.write(0, &[1]).unwrap();
    assert_eq!(
        sub.op_range(ZX_VMAR_OP_DONT_NEED, b, 4 * PAGE, VMAR_RIGHTS, 0),
        Ok(())
    );
    assert_eq!(f.mmu.mapped_pages(), 0);
    assert_eq!(
        sub.op_range(ZX_VMAR_OP_ALWAYS_NEED, b, 4 * PAGE, VMAR_RIGHTS, 0),
        Ok(())
    );
    assert_eq!(
        f.mmu.mapped_pages(),
        1,
        "ALWAYS_NEED also populates the page tables"
    );
    f.check();
}

#[test]
fn op_range_commit_past_the_vmo_end_is_out_of_range_and_without_frames_is_no_memory() {
    let f = Fixture::with(vm::AspaceConfig::user(ASPACE_BASE, ASPACE_LEN), 2, 1);
    let vmo = f.vmo_opts(4, ZX_VMO_RESIZABLE);
    let a = f
        .root
        .map(
            RW | ZX_VM_ALLOW_FAULTS,
            0,
            &vmo,
            0,
            4 * PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap();
    vmo.resize(PAGE as u64).unwrap();
    assert_eq!(
        f.root
            .op_range(ZX_VMAR_OP_COMMIT, a, 4 * PAGE, VMAR_RIGHTS, 0)
            .unwrap_err(),
        Status::ERR_OUT_OF_RANGE
    );
    vmo.resize(4 * PAGE as u64).unwrap();
    assert_eq!(
        f.root
            .op_range(ZX_VMAR_OP_COMMIT, a, 4 * PAGE, VMAR_RIGHTS, 0)
            .unwrap_err(),
        Status::ERR_NO_MEMORY
    );
    f.check();
}
