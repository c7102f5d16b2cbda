//! Page-fault resolution and VMO range changes reaching the page tables.
mod common;
use abi::vm_options::*;
use abi::vmo_options::ZX_VMO_RESIZABLE;
use abi::Status;
use common::*;
use vm::{AspaceConfig, MmuFlags, PhysMem};

#[test]
fn fault_without_mapping_is_not_found() {
    let f = Fixture::new();
    assert_eq!(
        f.touch(ASPACE_BASE, MmuFlags::READ),
        Err(Status::ERR_NOT_FOUND)
    );
    let (_sub, b) = f.sub(4);
    assert_eq!(
        f.touch(b, MmuFlags::READ),
        Err(Status::ERR_NOT_FOUND),
        "an empty VMAR maps nothing"
    );
}

#[test]
fn write_fault_commits_a_zeroed_page_and_maps_it_with_the_mapping_protection() {
    let f = Fixture::new();
    let (sub, b) = f.sub(4);
    let vmo = f.vmo(4);
    f.map_at(&sub, 0, &vmo, 4);
    f.touch(b + 2 * PAGE + 17, MmuFlags::WRITE).unwrap();
    assert_eq!(vmo.committed_page_count(), 1);
    assert_eq!(
        f.mmu.query(b + 2 * PAGE).unwrap(),
        (vmo.frame_of(2).unwrap(), RWU)
    );
    assert_eq!(f.phys.used_frames(), 1);
    f.touch(b + 2 * PAGE, MmuFlags::WRITE).unwrap();
    f.touch(b + 2 * PAGE, MmuFlags::READ).unwrap();
    assert_eq!(f.phys.used_frames(), 1, "a repeated fault is a no-op");
    f.check();
}

#[test]
fn fault_maps_the_committed_pages_after_it_in_its_window_and_commits_none() {
    // ZIRCON: VmMapping::PageFaultLockedObject maps up to 16 already-committed pages from the
    // faulting one on (kPageFaultMaxOptimisticPages); ours stay in the faulting page's aligned
    // window of FAULT_AROUND_PAGES, stop at the first page not committed, and end with the
    // mapping.
    const WINDOW: usize = vm::FAULT_AROUND_PAGES * PAGE;
    let f = Fixture::new();
    let (sub, b) = f.sub(64);
    let vmo = f.vmo(64);
    f.map_at(&sub, 0, &vmo, 48);
    vmo.commit(0, 64 * PAGE as u64).unwrap();
    // The first aligned window that lies wholly inside the mapping; a hole 10 pages into it.
    let w = b.next_multiple_of(WINDOW);
    let first = (w - b) / PAGE;
    vmo.decommit(((first + 10) * PAGE) as u64, PAGE as u64)
        .unwrap();
    let committed = vmo.committed_page_count();
    f.touch(w + 3 * PAGE, MmuFlags::READ).unwrap();
    let mapped: Vec<usize> = f
        .mmu
        .entries()
        .iter()
        .map(|&(v, _, _)| (v - w) / PAGE)
        .collect();
    assert_eq!(
        mapped,
        (3..10).collect::<Vec<_>>(),
        "pages of the window mapped"
    );
    for &(v, p, flags) in &f.mmu.entries() {
        assert_eq!(
            (p, flags),
            (vmo.frame_of(((v - b) / PAGE) as u64).unwrap(), RWU)
        );
    }
    assert_eq!(
        vmo.committed_page_count(),
        committed,
        "fault-around committed a page"
    );
    // After the hole: up to the window's end, not into the next window.
    f.touch(w + 11 * PAGE, MmuFlags::WRITE).unwrap();
    assert_eq!(f.mmu.entries().len(), 7 + 5);
    assert!(
        f.mmu.query(w + WINDOW).is_none(),
        "fault-around left its window"
    );
    // The mapping ends before the window does: nothing past its end (48 pages mapped of 64).
    let end = b + 48 * PAGE;
    let last_window = (end - 1) / WINDOW * WINDOW;
    if last_window >= b && last_window + WINDOW > end {
        f.touch(last_window.max(w + WINDOW), MmuFlags::READ)
            .unwrap();
        assert!(f.mmu.entries().iter().all(|&(v, _, _)| v < end));
        assert!(
            f.mmu.query(end - PAGE).is_some(),
            "the window's pages up to the mapping end"
        );
    }
    assert_eq!(vmo.committed_page_count(), committed);
    f.check();
}

#[test]
fn fault_access_beyond_protection_is_access_denied() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let a = f
        .root
        .map(ZX_VM_PERM_READ, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(f.touch(a, MmuFlags::WRITE), Err(Status::ERR_ACCESS_DENIED));
    assert_eq!(
        f.touch(a, MmuFlags::EXECUTE),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert_eq!(vmo.committed_page_count(), 0);
    f.touch(a, MmuFlags::READ).unwrap();
}

#[test]
fn fault_from_user_mode_in_a_kernel_aspace_is_access_denied() {
    let mut config = AspaceConfig::user(ASPACE_BASE, ASPACE_LEN);
    config.user = false;
    let f = Fixture::with(config, 16, 1);
    let vmo = f.vmo(1);
    let a = f
        .root
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(f.touch(a, MmuFlags::READ), Err(Status::ERR_ACCESS_DENIED));
    f.aspace.fault(a, MmuFlags::WRITE).unwrap();
    assert_eq!(
        f.mmu.query(a).unwrap().1,
        MmuFlags::READ | MmuFlags::WRITE,
        "no USER bit"
    );
}

#[test]
fn fault_out_of_frames_is_no_memory() {
    let f = Fixture::with(AspaceConfig::user(ASPACE_BASE, ASPACE_LEN), 1, 1);
    let vmo = f.vmo(2);
    let a = f
        .root
        .map(RW, 0, &vmo, 0, 2 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    f.touch(a, MmuFlags::WRITE).unwrap();
    assert_eq!(
        f.touch(a + PAGE, MmuFlags::WRITE),
        Err(Status::ERR_NO_MEMORY)
    );
    assert_eq!(f.mmu.mapped_pages(), 1);
    f.check();
}

#[test]
fn fault_when_page_tables_cannot_grow_is_no_memory_and_frees_nothing_mapped() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let a = f
        .root
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    f.mmu.set_map_budget(Some(0));
    assert_eq!(f.touch(a, MmuFlags::READ), Err(Status::ERR_NO_MEMORY));
    assert_eq!(f.mmu.mapped_pages(), 0);
    f.mmu.set_map_budget(None);
    f.touch(a, MmuFlags::READ).unwrap();
    f.check();
}

#[test]
fn fault_beyond_the_end_of_a_shrunk_vmo_is_out_of_range() {
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
        f.touch(a + p * PAGE, MmuFlags::WRITE).unwrap();
    }
    vmo.resize(PAGE as u64).unwrap();
    assert_eq!(
        f.mmu.mapped_pages(),
        1,
        "shrink removed the cut pages from the page tables"
    );
    assert_eq!(f.phys.used_frames(), 1, "and returned their frames");
    assert_eq!(
        f.touch(a + 3 * PAGE, MmuFlags::READ),
        Err(Status::ERR_OUT_OF_RANGE)
    );
    f.touch(a, MmuFlags::READ).unwrap();
    f.check();
}

#[test]
fn vmo_shrink_and_decommit_reach_every_mapping_in_every_aspace() {
    let f1 = Fixture::new();
    let f2 = Fixture::with(AspaceConfig::user(ASPACE_BASE, ASPACE_LEN), 16, 2);
    let vmo = f1.vmo_opts(4, ZX_VMO_RESIZABLE);
    let opt = RW | ZX_VM_ALLOW_FAULTS;
    let a1 = f1
        .root
        .map(opt, 0, &vmo, 0, 4 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    let a2 = f2
        .root
        .map(opt, 0, &vmo, 0, 4 * PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    let a3 = f2
        .root
        .map(
            opt,
            0,
            &vmo,
            2 * PAGE as u64,
            2 * PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap();
    for p in 0..4 {
        f1.touch(a1 + p * PAGE, MmuFlags::WRITE).unwrap();
        f2.touch(a2 + p * PAGE, MmuFlags::READ).unwrap();
    }
    f2.touch(a3 + PAGE, MmuFlags::READ).unwrap();
    assert_eq!(f2.mmu.query(a3 + PAGE).unwrap().0, vmo.frame_of(3).unwrap());
    vmo.decommit(3 * PAGE as u64, PAGE as u64).unwrap();
    assert!(f1.mmu.query(a1 + 3 * PAGE).is_none());
    assert!(f2.mmu.query(a2 + 3 * PAGE).is_none());
    assert!(f2.mmu.query(a3 + PAGE).is_none());
    vmo.resize(PAGE as u64).unwrap();
    assert_eq!(f1.mmu.mapped_pages(), 1);
    assert_eq!(f2.mmu.mapped_pages(), 1);
    assert_eq!(f1.phys.used_frames(), 1);
    f1.check();
    f2.check();
}

#[test]
fn fault_descends_through_nested_vmars() {
    let f = Fixture::new();
    let (a, _) = f.sub(64);
    let (b, _) = a.allocate(ALL_CAN_MAP, 0, 16 * PAGE, VMAR_RIGHTS).unwrap();
    let (c, _) = b.allocate(ALL_CAN_MAP, 0, 4 * PAGE, VMAR_RIGHTS).unwrap();
    let vmo = f.vmo(1);
    let m = c
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    f.touch(m, MmuFlags::WRITE).unwrap();
    assert_eq!(f.mmu.query(m).unwrap().0, vmo.frame_of(0).unwrap());
    let depths: Vec<usize> = f
        .aspace
        .walk()
        .iter()
        .map(|i| match i {
            vm::RegionInfo::Vmar { depth, .. } | vm::RegionInfo::Mapping { depth, .. } => *depth,
        })
        .collect();
    assert_eq!(depths, vec![0, 1, 2, 3, 4]);
    f.check();
}

#[test]
fn mapping_at_finds_the_mapping_at_any_depth_with_its_vmo_window() {
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    let vmo = f.vmo(8);
    assert!(
        f.aspace.mapping_at(b).is_none(),
        "an empty VMAR maps nothing"
    );
    let (inner, ib) = sub
        .allocate(
            ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_SPECIFIC | ZX_VM_SPECIFIC,
            2 * PAGE,
            4 * PAGE,
            VMAR_RIGHTS,
        )
        .unwrap();
    assert_eq!(ib, b + 2 * PAGE);
    inner
        .map(
            ZX_VM_SPECIFIC | RW,
            PAGE,
            &vmo,
            3 * PAGE as u64,
            2 * PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap();
    let w = f.aspace.mapping_at(ib + PAGE + 5).unwrap();
    assert_eq!(
        (w.base, w.len, w.vmo_offset),
        (ib + PAGE, 2 * PAGE, 3 * PAGE as u64)
    );
    assert!(alloc_ptr_eq(&w.vmo, &vmo));
    assert_eq!(w.perms, MmuFlags::READ | MmuFlags::WRITE);
    assert!(f.aspace.mapping_at(ib).is_none());
    assert!(f.aspace.mapping_at(ib + 3 * PAGE).is_none());
    // Protect splits the mapping: the window is the piece containing the address.
    inner
        .protect(ZX_VM_PERM_READ, ib + 2 * PAGE, PAGE, VMAR_RIGHTS)
        .unwrap();
    let w = f.aspace.mapping_at(ib + 2 * PAGE).unwrap();
    assert_eq!(
        (w.base, w.len, w.vmo_offset),
        (ib + 2 * PAGE, PAGE, 4 * PAGE as u64)
    );
    assert_eq!(w.perms, MmuFlags::READ);
    assert_eq!(vmo.committed_page_count(), 0, "a lookup commits nothing");
    f.check();
}

fn alloc_ptr_eq<T>(a: &std::sync::Arc<T>, b: &std::sync::Arc<T>) -> bool {
    std::sync::Arc::ptr_eq(a, b)
}
