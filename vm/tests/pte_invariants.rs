//! `AddressSpace::check_invariants` compares the page tables with the mappings: every present
//! entry inside a mapping, pointing at the frame its VMO committed for that page, with exactly
//! the mapping's protection, or at the zero frame, read-only, for a page not committed; no entry
//! outside the mappings; a zero frame of zeros. Each corruption below (what a missed unmap, a
//! stale frame after decommit, a missed protect, a writable or stale zero-frame entry or a write
//! into the zero frame would leave) is caught.
mod common;
use common::*;
use vm::{MmuFlags, PhysAddr, PhysMem};

/// A sub-VMAR with a 4-page RW mapping whose first two pages are committed by write faults.
fn setup() -> (Fixture, usize) {
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    let vmo = f.vmo(4);
    f.map_at(&sub, 0, &vmo, 4);
    f.touch(b, MmuFlags::WRITE).unwrap();
    f.touch(b + PAGE, MmuFlags::WRITE).unwrap();
    f.aspace.check_invariants().unwrap();
    drop(sub);
    (f, b)
}

#[test]
fn entry_outside_every_mapping_is_caught() {
    let (f, b) = setup();
    let frame = f.mmu.query(b).unwrap().0;
    // Past the mapping's end, inside the sub-VMAR: what a missed unmap would leave.
    f.mmu.corrupt(b + 5 * PAGE, Some((frame, RWU)));
    let e = f.aspace.check_invariants().unwrap_err();
    assert!(e.contains("outside the mappings"), "{e}");
    f.mmu.corrupt(b + 5 * PAGE, None);
    f.aspace.check_invariants().unwrap();
}

#[test]
fn entry_for_an_uncommitted_page_is_caught() {
    let (f, b) = setup();
    let frame = f.mmu.query(b).unwrap().0;
    // Page 3 was never committed: an entry there points at someone else's frame.
    f.mmu.corrupt(b + 3 * PAGE, Some((frame, RWU)));
    let e = f.aspace.check_invariants().unwrap_err();
    assert!(e.contains("the mapping says None"), "{e}");
}

#[test]
fn entry_with_the_wrong_frame_or_protection_is_caught() {
    let (f, b) = setup();
    let (frame0, _) = f.mmu.query(b).unwrap();
    let (frame1, _) = f.mmu.query(b + PAGE).unwrap();
    // Each report names the entry, what it holds and what the mapping says instead.
    let says = |paddr: PhysAddr, flags: MmuFlags| {
        format!(
            "pte {:#x}: {paddr:?} {flags:?}, but the mapping says {:?} {RWU:?}",
            b + PAGE,
            Some(frame1)
        )
    };
    f.mmu.corrupt(b + PAGE, Some((frame0, RWU)));
    assert_eq!(
        f.aspace.check_invariants(),
        Err(says(frame0, RWU)),
        "wrong frame"
    );
    let more = RWU | MmuFlags::EXECUTE;
    f.mmu.corrupt(b + PAGE, Some((frame1, more)));
    assert_eq!(
        f.aspace.check_invariants(),
        Err(says(frame1, more)),
        "more than the mapping allows"
    );
    f.mmu.corrupt(b + PAGE, Some((frame1, RU)));
    assert_eq!(
        f.aspace.check_invariants(),
        Err(says(frame1, RU)),
        "less than the mapping says"
    );
    f.mmu.corrupt(b + PAGE, Some((PhysAddr(frame1.0), RWU)));
    // Restored: consistent again.
    f.aspace.check_invariants().unwrap();
}

#[test]
fn a_wrong_zero_frame_entry_is_caught() {
    let (f, b) = setup();
    let zero = f.phys.zero_frame();
    f.touch(b + 2 * PAGE, MmuFlags::READ).unwrap();
    assert_eq!(f.mmu.query(b + 2 * PAGE), Some((zero, RU)));
    f.aspace.check_invariants().unwrap();
    // Writable: what a protect or a fault granting WRITE to the zero frame would leave.
    f.mmu.corrupt(b + 2 * PAGE, Some((zero, RWU)));
    let e = f.aspace.check_invariants().unwrap_err();
    assert!(e.contains("the zero frame rw-u"), "{e}");
    // For a committed page: what a commit that kept the zero-frame entries would leave.
    f.mmu.corrupt(b + 2 * PAGE, Some((zero, RU)));
    f.aspace.check_invariants().unwrap();
    f.mmu.corrupt(b, Some((zero, RU)));
    let e = f.aspace.check_invariants().unwrap_err();
    assert!(
        e.contains("the zero frame r--u, but the mapping says Some"),
        "{e}"
    );
}

#[test]
fn a_zero_frame_that_is_not_zero_is_caught() {
    let (f, b) = setup();
    f.touch(b + 3 * PAGE, MmuFlags::READ).unwrap();
    f.phys.corrupt_zero_frame(100, 7);
    let e = f.aspace.check_invariants().unwrap_err();
    assert!(e.contains("holds 0x7 at byte 100"), "{e}");
    f.phys.corrupt_zero_frame(100, 0);
    f.aspace.check_invariants().unwrap();
}
