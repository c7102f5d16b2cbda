//! The shared zero page: a read (or execute) fault on a page no VMO committed maps the allocator's
//! one zero frame read-only and commits nothing; a write fault commits a zeroed frame in its
//! place; every other commit of the page (a VMO write, COMMIT, a write through another mapping)
//! first removes the page's zero-frame entries from every mapping, so no mapping keeps reading
//! zeros after data was written; decommit, shrink, protect, unmap and snapshots work with
//! zero-frame entries present.
mod common;
use abi::ops::ZX_VMAR_OP_COMMIT;
use abi::vm_options::*;
use abi::vmo_options::{ZX_VMO_CHILD_SNAPSHOT, ZX_VMO_RESIZABLE};
use abi::Status;
use common::*;
use vm::{AspaceConfig, MmuFlags, PhysMem};

/// Reads the byte at `vaddr` through the frame its entry maps (faulting it in for reading).
fn read_through(f: &Fixture, vaddr: usize) -> u8 {
    read_with(f, &*f.phys, vaddr)
}

/// [`read_through`] in `f`'s address space for a VMO of the allocator `phys`. As the CPU does,
/// it faults only when no entry is present: a stale entry is read, not repaired.
fn read_with(f: &Fixture, phys: &dyn PhysMem, vaddr: usize) -> u8 {
    if f.mmu.query(vaddr).is_none() {
        f.touch(vaddr, MmuFlags::READ).unwrap();
    }
    let (frame, _) = f.mmu.query(vaddr).unwrap();
    let mut b = [0u8];
    phys.read(frame, vaddr % PAGE, &mut b);
    b[0]
}

#[test]
fn a_read_fault_maps_the_zero_frame_read_only_and_commits_nothing() {
    let f = Fixture::new();
    let (sub, b) = f.sub(4);
    let vmo = f.vmo(4);
    f.map_at(&sub, 0, &vmo, 4);
    f.touch(b + PAGE + 5, MmuFlags::READ).unwrap();
    assert_eq!(
        f.mmu.query(b + PAGE).unwrap(),
        (f.phys.zero_frame(), RU),
        "the zero frame, without WRITE although the mapping is RW"
    );
    assert_eq!(vmo.committed_page_count(), 0);
    assert_eq!(vmo.frame_of(1), None);
    assert_eq!(f.phys.used_frames(), 0, "no frame allocated");
    // A repeated read fault changes nothing.
    f.touch(b + PAGE, MmuFlags::READ).unwrap();
    assert_eq!(f.mmu.query(b + PAGE).unwrap(), (f.phys.zero_frame(), RU));
    assert_eq!(read_through(&f, b + PAGE + 5), 0);
    f.check();
    // An execute fault maps it too, executable and still not writable.
    let vmo_x = f.vmo(1);
    let x = f
        .root
        .map(
            ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE,
            0,
            &vmo_x,
            0,
            PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap();
    f.touch(x, MmuFlags::EXECUTE).unwrap();
    assert_eq!(
        f.mmu.query(x).unwrap(),
        (f.phys.zero_frame(), RU | MmuFlags::EXECUTE)
    );
    assert_eq!((vmo_x.committed_page_count(), f.phys.used_frames()), (0, 0));
    f.check();
}

#[test]
fn a_write_after_a_read_commits_a_frame_in_place_of_the_zero_frame() {
    let f = Fixture::new();
    let (sub, b) = f.sub(4);
    let vmo = f.vmo(4);
    f.map_at(&sub, 0, &vmo, 4);
    f.touch(b, MmuFlags::READ).unwrap();
    f.touch(b + PAGE, MmuFlags::READ).unwrap();
    f.touch(b, MmuFlags::WRITE).unwrap();
    let frame = vmo.frame_of(0).unwrap();
    assert_ne!(frame, f.phys.zero_frame());
    assert_eq!(f.mmu.query(b).unwrap(), (frame, RWU));
    assert_eq!(
        f.mmu.query(b + PAGE).unwrap(),
        (f.phys.zero_frame(), RU),
        "the other page still reads the zero frame"
    );
    assert_eq!((vmo.committed_page_count(), f.phys.used_frames()), (1, 1));
    f.check();
}

#[test]
fn a_vmo_write_after_a_read_fault_is_seen_through_every_mapping() {
    let f = Fixture::new();
    let f2 = Fixture::with(AspaceConfig::user(ASPACE_BASE, ASPACE_LEN), 16, 3);
    let vmo = f.vmo(4);
    let a = f
        .root
        .map(RW, 0, &vmo, 0, 4 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    let a2 = f
        .root
        .map(
            ZX_VM_PERM_READ,
            0,
            &vmo,
            0,
            4 * PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap();
    let c = f2
        .root
        .map(RW, 0, &vmo, 0, 4 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    for p in 0..4 {
        assert_eq!(read_through(&f, a + p * PAGE), 0);
        assert_eq!(read_through(&f, a2 + p * PAGE), 0);
        assert_eq!(read_with(&f2, &*f.phys, c + p * PAGE), 0);
    }
    // zx_vmo_write: every mapping of page 1 loses its zero-frame entry and reads the data.
    vmo.write(PAGE as u64 + 7, &[42]).unwrap();
    assert!(f.mmu.query(a + PAGE).is_none());
    assert!(f.mmu.query(a2 + PAGE).is_none());
    assert!(f2.mmu.query(c + PAGE).is_none());
    assert_eq!(read_through(&f, a + PAGE + 7), 42);
    assert_eq!(read_through(&f, a2 + PAGE + 7), 42);
    assert_eq!(read_with(&f2, &*f.phys, c + PAGE + 7), 42);
    // A write fault through one mapping: the others lose their zero-frame entries of page 2.
    f2.touch(c + 2 * PAGE, MmuFlags::WRITE).unwrap();
    let frame = vmo.frame_of(2).unwrap();
    f.phys.write(frame, 3, &[9]);
    assert!(f.mmu.query(a + 2 * PAGE).is_none());
    assert!(f.mmu.query(a2 + 2 * PAGE).is_none());
    assert_eq!(read_through(&f, a2 + 2 * PAGE + 3), 9);
    // Vmo::commit and op_range COMMIT: page 3, then page 0.
    vmo.commit(3 * PAGE as u64, PAGE as u64).unwrap();
    assert!(f.mmu.query(a + 3 * PAGE).is_none());
    assert!(f2.mmu.query(c + 3 * PAGE).is_none());
    f.root
        .op_range(ZX_VMAR_OP_COMMIT, a, PAGE, VMAR_RIGHTS, 0)
        .unwrap();
    assert_eq!(f.mmu.query(a).unwrap(), (vmo.frame_of(0).unwrap(), RWU));
    assert!(f.mmu.query(a2).is_none());
    assert!(f2.mmu.query(c).is_none());
    assert_eq!(vmo.committed_page_count(), 4);
    for e in f.mmu.entries().into_iter().chain(f2.mmu.entries()) {
        assert_ne!(e.1, f.phys.zero_frame(), "no zero-frame entry left: {e:?}");
    }
    f.check();
    f2.check();
}

#[test]
fn decommit_shrink_protect_and_unmap_work_with_zero_frame_entries() {
    let f = Fixture::new();
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
    for p in 0..4 {
        f.touch(a + p * PAGE, MmuFlags::READ).unwrap();
    }
    f.touch(a, MmuFlags::WRITE).unwrap();
    // Decommit of pages with only zero-frame entries: nothing to free, still zeros.
    vmo.decommit(PAGE as u64, PAGE as u64).unwrap();
    assert_eq!(read_through(&f, a + PAGE), 0);
    f.check();
    // Protect R, then RW again: the zero-frame entries never gain WRITE; the committed page
    // regains it through a write fault.
    f.root
        .protect(ZX_VM_PERM_READ, a, 4 * PAGE, VMAR_RIGHTS)
        .unwrap();
    f.check();
    f.root.protect(RW, a, 4 * PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(
        f.mmu.query(a + 2 * PAGE).unwrap(),
        (f.phys.zero_frame(), RU)
    );
    f.check();
    f.touch(a + 2 * PAGE, MmuFlags::WRITE).unwrap();
    assert_eq!(
        f.mmu.query(a + 2 * PAGE).unwrap(),
        (vmo.frame_of(2).unwrap(), RWU)
    );
    f.touch(a, MmuFlags::WRITE).unwrap();
    assert_eq!(f.mmu.query(a).unwrap(), (vmo.frame_of(0).unwrap(), RWU));
    f.check();
    // Shrink: the zero-frame entry of page 3 goes with the page.
    assert_eq!(f.mmu.query(a + 3 * PAGE).unwrap().0, f.phys.zero_frame());
    vmo.resize(3 * PAGE as u64).unwrap();
    assert!(f.mmu.query(a + 3 * PAGE).is_none());
    assert_eq!(
        f.touch(a + 3 * PAGE, MmuFlags::READ),
        Err(Status::ERR_OUT_OF_RANGE)
    );
    f.check();
    // Unmap: every entry goes; the frames are the VMO's, the zero frame is nobody's.
    f.root.unmap(a, 4 * PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(f.mmu.mapped_pages(), 0);
    assert_eq!(f.phys.used_frames(), 2);
    drop(vmo);
    assert_eq!(f.phys.used_frames(), 0);
    f.check();
}

#[test]
fn many_mappings_of_fresh_vmos_share_the_one_zero_frame() {
    let f = Fixture::new();
    let vmos = [f.vmo(8), f.vmo(8)];
    let mut bases = Vec::new();
    for i in 0..20 {
        let a = f
            .root
            .map(RW, 0, &vmos[i % 2], 0, 8 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap();
        for p in 0..8 {
            f.touch(a + p * PAGE, MmuFlags::READ).unwrap();
        }
        bases.push(a);
    }
    assert_eq!(f.mmu.mapped_pages(), 160);
    assert!(f
        .mmu
        .entries()
        .iter()
        .all(|&(_, frame, flags)| frame == f.phys.zero_frame() && flags == RU));
    assert_eq!(f.phys.used_frames(), 0);
    assert_eq!(
        vmos[0].committed_page_count() + vmos[1].committed_page_count(),
        0
    );
    f.check();
    // One write to the first VMO's page 5 reaches its ten mappings, not the other VMO's.
    vmos[0].write(5 * PAGE as u64, &[1]).unwrap();
    for (i, &a) in bases.iter().enumerate() {
        let entry = f.mmu.query(a + 5 * PAGE);
        if i % 2 == 0 {
            assert!(entry.is_none(), "mapping {i}");
        } else {
            assert_eq!(entry.unwrap().0, f.phys.zero_frame(), "mapping {i}");
        }
    }
    f.check();
}

#[test]
fn a_snapshot_reads_the_zero_frame_where_its_parent_had_no_page() {
    let f = Fixture::new();
    let parent = f.vmo(2);
    parent.write(0, &[5]).unwrap();
    let child = parent
        .create_child(ZX_VMO_CHILD_SNAPSHOT, 0, 2 * PAGE as u64)
        .unwrap();
    let c = f
        .root
        .map(RW, 0, &child, 0, 2 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    let p = f
        .root
        .map(RW, 0, &parent, 0, 2 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(read_through(&f, c), 5, "the shared frame");
    assert_eq!(read_through(&f, c + PAGE), 0);
    assert_eq!(f.mmu.query(c + PAGE).unwrap(), (f.phys.zero_frame(), RU));
    assert_eq!(read_through(&f, p + PAGE), 0);
    assert_eq!(f.phys.used_frames(), 1);
    // The parent writes page 1: its own mapping loses the zero frame, the snapshot keeps
    // reading what it saw (zeros).
    parent.write(PAGE as u64, &[6]).unwrap();
    assert_eq!(read_through(&f, p + PAGE), 6);
    assert_eq!(read_through(&f, c + PAGE), 0);
    // The snapshot writes page 1: a frame of its own replaces the zero frame.
    f.touch(c + PAGE, MmuFlags::WRITE).unwrap();
    assert_eq!(
        f.mmu.query(c + PAGE).unwrap(),
        (child.frame_of(1).unwrap(), RWU)
    );
    assert_eq!(f.phys.used_frames(), 3);
    f.check();
}
