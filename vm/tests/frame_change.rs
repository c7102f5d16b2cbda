//! Frame changes in steps: in a VMO with more mappings than one lock hold may visit
//! (`vm::vmo::FRAME_CHANGE_STEP_ENTRIES`), a page committed over zero-frame entries or broken
//! out of a copy-on-write share gets its new frame first and loses its old entries over several
//! steps. Meanwhile a read fault maps the new frame read-only, every writer gets
//! `ERR_SHOULD_WAIT`, and the invariant checker accepts the state; afterwards every mapping
//! refaults to the new frame and the old one is freed once. A snapshot of a range mapped that
//! often removes the range's entries in steps first, read faults mapping read-only meanwhile.
mod common;
use abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT;
use abi::Status;
use common::*;
use vm::vmo::FRAME_CHANGE_STEP_ENTRIES;
use vm::{MmuFlags, PhysMem, Vmo};

/// More mappings than one step visits.
const MAPPINGS: usize = FRAME_CHANGE_STEP_ENTRIES + 500;

/// `MAPPINGS` one-page RW mappings of `vmo`, each read-faulted.
fn map_many(f: &Fixture, vmo: &std::sync::Arc<Vmo>) -> Vec<usize> {
    let at: Vec<usize> = (0..MAPPINGS)
        .map(|_| {
            f.root
                .map(RW, 0, vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
                .unwrap()
        })
        .collect();
    for &a in &at {
        f.touch(a, MmuFlags::READ).unwrap();
    }
    at
}

/// The byte at `vaddr` through the frame its entry maps, faulting only when none is present.
fn read(f: &Fixture, vaddr: usize) -> u8 {
    if f.mmu.query(vaddr).is_none() {
        f.touch(vaddr, MmuFlags::READ).unwrap();
    }
    let (frame, _) = f.mmu.query(vaddr).unwrap();
    let mut b = [0u8];
    f.phys.read(frame, 0, &mut b);
    b[0]
}

/// Every writer of page 0 waits while its frame changes.
fn writers_wait(f: &Fixture, vmo: &Vmo, at: &[usize]) {
    assert_eq!(vmo.write_or_wait(0, &[1]), Err(Status::ERR_SHOULD_WAIT));
    assert_eq!(
        vmo.commit_or_wait(0, PAGE as u64),
        Err(Status::ERR_SHOULD_WAIT)
    );
    assert_eq!(
        f.touch(at[0], MmuFlags::WRITE),
        Err(Status::ERR_SHOULD_WAIT)
    );
    for &a in at {
        if let Some((_, flags)) = f.mmu.query(a) {
            assert!(
                !flags.contains(MmuFlags::WRITE),
                "{a:#x} writable: {flags:?}"
            );
        }
    }
}

/// One step, then the read faults of the mappings it emptied map `new` read-only while the
/// others keep `old`.
fn step_and_refault(f: &Fixture, vmo: &Vmo, at: &[usize], new: vm::PhysAddr, old: vm::PhysAddr) {
    assert!(!vmo.step_transition(FRAME_CHANGE_STEP_ENTRIES));
    let emptied: Vec<usize> = at
        .iter()
        .copied()
        .filter(|&a| f.mmu.query(a).is_none())
        .collect();
    assert_eq!(emptied.len(), FRAME_CHANGE_STEP_ENTRIES, "one step's worth");
    f.touch(emptied[0], MmuFlags::READ).unwrap();
    assert_eq!(
        f.mmu.query(emptied[0]).unwrap(),
        (new, RU),
        "new frame, read-only"
    );
    let kept = at.iter().find(|&&a| !emptied.contains(&a)).unwrap();
    assert_eq!(f.mmu.query(*kept).unwrap().0, old, "not visited yet");
    f.check();
}

#[test]
fn a_commit_over_zero_frame_entries_in_steps() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let at = map_many(&f, &vmo);
    let zero = f.phys.zero_frame();
    assert_eq!(f.mmu.query(at[0]).unwrap(), (zero, RU));
    // The write starts the change: the zeroed frame is in, nothing written yet.
    assert_eq!(vmo.write_or_wait(0, &[1]), Err(Status::ERR_SHOULD_WAIT));
    let new = vmo.frame_of(0).unwrap();
    assert_ne!(new, zero);
    assert_eq!(f.phys.used_frames(), 1);
    f.check();
    writers_wait(&f, &vmo, &at);
    step_and_refault(&f, &vmo, &at, new, zero);
    writers_wait(&f, &vmo, &at);
    assert_eq!(read(&f, at[MAPPINGS - 1]), 0);
    // The last step ends the change: no zero-frame entry is left.
    assert!(vmo.step_transition(FRAME_CHANGE_STEP_ENTRIES));
    for &a in &at {
        if let Some((frame, _)) = f.mmu.query(a) {
            assert_eq!(frame, new, "{a:#x}");
        }
    }
    f.check();
    vmo.write_or_wait(0, &[1]).unwrap();
    for &a in &at {
        assert_eq!(read(&f, a), 1, "{a:#x}");
    }
    f.touch(at[3], MmuFlags::WRITE).unwrap();
    assert_eq!(f.mmu.query(at[3]).unwrap(), (new, RWU));
    assert_eq!(f.phys.used_frames(), 1);
    f.check();
}

#[test]
fn a_copy_on_write_break_in_steps_frees_the_old_frame_once() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    vmo.write(0, &[7]).unwrap();
    let at = map_many(&f, &vmo);
    let old = vmo.frame_of(0).unwrap();
    let child = vmo
        .create_child(ZX_VMO_CHILD_SNAPSHOT, 0, PAGE as u64)
        .unwrap();
    for &a in &at {
        f.touch(a, MmuFlags::READ).unwrap();
        assert_eq!(f.mmu.query(a).unwrap(), (old, RU));
    }
    // A write fault starts the break: the copy is in, the shared frame still mapped elsewhere.
    assert_eq!(
        f.touch(at[1], MmuFlags::WRITE),
        Err(Status::ERR_SHOULD_WAIT)
    );
    let new = vmo.frame_of(0).unwrap();
    assert_ne!(new, old);
    assert_eq!(child.frame_of(0), Some(old));
    assert_eq!(f.phys.used_frames(), 2);
    f.check();
    writers_wait(&f, &vmo, &at);
    step_and_refault(&f, &vmo, &at, new, old);
    // The snapshot goes: the change still holds the old frame.
    drop(child);
    assert_eq!(f.phys.used_frames(), 2);
    assert_eq!(read(&f, at[MAPPINGS - 1]), 7);
    f.check();
    vmo.finish_transition(&mut || {});
    assert_eq!(f.phys.used_frames(), 1, "the old frame freed, once");
    for &a in &at {
        if let Some((frame, _)) = f.mmu.query(a) {
            assert_eq!(frame, new, "{a:#x}");
        }
    }
    f.touch(at[1], MmuFlags::WRITE).unwrap();
    assert_eq!(f.mmu.query(at[1]).unwrap(), (new, RWU));
    f.phys.write(new, 0, &[8]);
    for &a in &at {
        assert_eq!(read(&f, a), 8, "{a:#x}");
    }
    f.check();
}

#[test]
fn a_snapshot_of_a_page_mapped_that_often_removes_its_entries_in_steps() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    vmo.write(0, &[5]).unwrap();
    let at = map_many(&f, &vmo);
    let frame = vmo.frame_of(0).unwrap();
    assert_eq!(f.mmu.query(at[0]).unwrap(), (frame, RWU));
    let mut steps = 0;
    let child = vmo
        .create_child_in_steps(ZX_VMO_CHILD_SNAPSHOT, 0, PAGE as u64, &mut || {
            steps += 1;
            // Between two steps: a read fault maps the page read-only...
            let emptied = at.iter().find(|&&a| f.mmu.query(a).is_none()).unwrap();
            f.touch(*emptied, MmuFlags::READ).unwrap();
            assert_eq!(f.mmu.query(*emptied).unwrap(), (frame, RU));
            f.check();
            // ...and the first time, a write fault maps it writable and restarts the walk.
            if steps == 1 {
                f.touch(*emptied, MmuFlags::WRITE).unwrap();
                assert_eq!(f.mmu.query(*emptied).unwrap(), (frame, RWU));
            }
        })
        .unwrap();
    // Without the restart: one preemption point (2048 mappings, then the rest); with it, two.
    assert_eq!(steps, 2, "the walk restarted once");
    for &a in &at {
        if let Some((_, flags)) = f.mmu.query(a) {
            assert!(!flags.contains(MmuFlags::WRITE), "{a:#x} still writable");
        }
    }
    f.check();
    // A write through a mapping breaks the share; the snapshot keeps 5.
    f.touch(at[0], MmuFlags::WRITE)
        .unwrap_or_else(|_| vmo.finish_transition(&mut || {}));
    vmo.write(0, &[6]).unwrap();
    let mut b = [0u8];
    child.read(0, &mut b).unwrap();
    assert_eq!(b[0], 5);
    assert_eq!(read(&f, at[MAPPINGS - 1]), 6);
    f.check();
}

/// A page mapped many times in one address space loses its entries with one flush per step
/// (one shootdown per step on several CPUs), not one per mapping: decommit in steps, the steps
/// of a commit over zero-frame entries, and a snapshot's walk.
#[test]
fn a_page_mapped_that_often_is_flushed_once_per_step() {
    let f = Fixture::new();
    let vmo = f.vmo(1);
    let at = map_many(&f, &vmo);
    // The commit's first step runs inside the write; the next one is counted.
    assert_eq!(vmo.write_or_wait(0, &[1]), Err(Status::ERR_SHOULD_WAIT));
    let before = f.mmu.flush_calls();
    assert!(!vmo.step_transition(FRAME_CHANGE_STEP_ENTRIES));
    assert_eq!(f.mmu.flush_calls() - before, 1, "a step of the commit");
    while !vmo.step_transition(FRAME_CHANGE_STEP_ENTRIES) {}
    for &a in &at {
        f.touch(a, MmuFlags::READ).unwrap();
    }
    let before = f.mmu.flush_calls();
    let mut steps = 0;
    vmo.decommit_page_in_steps(0, FRAME_CHANGE_STEP_ENTRIES, &mut || steps += 1)
        .unwrap();
    assert_eq!(f.mmu.flush_calls() - before, steps + 1, "decommit in steps");
    assert!(f.mmu.query(at[0]).is_none());
    f.check();
}

/// A decommit or shrink of a range mapped many times in one address space flushes that address
/// space once (one shootdown on several CPUs), not once per mapping it cuts.
#[test]
fn a_range_mapped_that_often_is_flushed_once_per_decommit_and_shrink() {
    const PAGES: usize = 4;
    let f = Fixture::new();
    let vmo = f.vmo_opts(PAGES, abi::vmo_options::ZX_VMO_RESIZABLE);
    let map_all = || -> Vec<usize> {
        let at: Vec<usize> = (0..128)
            .map(|_| {
                f.root
                    .map(
                        RW | abi::vm_options::ZX_VM_ALLOW_FAULTS,
                        0,
                        &vmo,
                        0,
                        PAGES * PAGE,
                        VMAR_RIGHTS,
                        VMO_RIGHTS,
                    )
                    .unwrap()
            })
            .collect();
        for &a in &at {
            for p in 0..PAGES {
                f.touch(a + p * PAGE, MmuFlags::WRITE).unwrap();
            }
        }
        at
    };
    let at = map_all();
    let before = f.mmu.flush_calls();
    vmo.decommit(0, (PAGES * PAGE) as u64).unwrap();
    assert_eq!(f.mmu.flush_calls() - before, 1, "decommit of 128 mappings");
    assert!(at.iter().all(|&a| f.mmu.query(a).is_none()));
    f.check();
    for &a in &at {
        for p in 0..PAGES {
            f.touch(a + p * PAGE, MmuFlags::WRITE).unwrap();
        }
    }
    let before = f.mmu.flush_calls();
    vmo.resize(PAGE as u64).unwrap();
    assert_eq!(f.mmu.flush_calls() - before, 1, "shrink of 128 mappings");
    assert!(at.iter().all(|&a| f.mmu.query(a + PAGE).is_none()));
    assert!(at.iter().all(|&a| f.mmu.query(a).is_some()));
    f.check();
}
