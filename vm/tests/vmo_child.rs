//! `Vmo::create_child`: every status, snapshot isolation both ways (through `Vmo::write` and
//! through mappings and faults), a page copied at most once, slices sharing their root's pages,
//! children of children, close orders, and frames back to the baseline at the end.
mod common;
use common::*;

use abi::vm_options::{ZX_VM_MAP_RANGE, ZX_VM_PERM_READ, ZX_VM_SPECIFIC};
use abi::vmo_options::*;
use abi::Status;
use std::sync::Arc;
use vm::{MmuFlags, PhysMem, Vmo};

const P: u64 = PAGE as u64;
const SNAP: u32 = ZX_VMO_CHILD_SNAPSHOT;

/// Writes `byte` at `vaddr` as user code would: through a present writable entry, or after
/// the write fault that makes one.
fn uwrite(f: &Fixture, vaddr: usize, byte: u8) {
    let page = vaddr - vaddr % PAGE;
    match f.mmu.query(page) {
        Some((_, flags)) if flags.contains(MmuFlags::WRITE) => {}
        _ => f.touch(vaddr, MmuFlags::WRITE).unwrap(),
    }
    let (frame, flags) = f.mmu.query(page).unwrap();
    assert!(
        flags.contains(MmuFlags::WRITE),
        "a write fault left {flags:?}"
    );
    f.phys.write(frame, vaddr % PAGE, &[byte]);
}

/// Reads the byte at `vaddr` as user code would (a read fault first if nothing is mapped).
fn uread(f: &Fixture, vaddr: usize) -> u8 {
    let page = vaddr - vaddr % PAGE;
    if f.mmu.query(page).is_none() {
        f.touch(vaddr, MmuFlags::READ).unwrap();
    }
    let (frame, _) = f.mmu.query(page).unwrap();
    let mut b = [0u8];
    f.phys.read(frame, vaddr % PAGE, &mut b);
    b[0]
}

fn byte(vmo: &Vmo, offset: u64) -> u8 {
    let mut b = [0u8];
    vmo.read(offset, &mut b).unwrap();
    b[0]
}

/// A VMO of `pages` pages with byte `i + 1` at the start of page `i` (all committed).
fn tagged(f: &Fixture, pages: usize) -> Arc<Vmo> {
    let vmo = f.vmo(pages);
    for i in 0..pages {
        vmo.write(i as u64 * P, &[i as u8 + 1]).unwrap();
    }
    vmo
}

/// Zircon's `root_parent_offset_`: a snapshot's offsets added up along its chain of parents must
/// not overflow, neither at a child's creation nor at a resize (`ERR_INVALID_ARGS`).
#[test]
fn offsets_projected_onto_the_chain_root_never_overflow() {
    let f = Fixture::new();
    let root = f.vmo(0);
    let inval = Status::ERR_INVALID_ARGS;
    let far = u64::MAX - 8 * P + 1;
    let child1 = root.create_child(SNAP, far, 0).unwrap();
    // 8 pages past `far` reach 2^64: refused, though the offset alone fits the child.
    let e = |r: Result<Arc<Vmo>, Status>| r.map(drop).unwrap_err();
    assert_eq!(e(child1.create_child(SNAP, 8 * P, 0)), inval);
    assert_eq!(e(child1.create_child(SNAP, 4 * P, 4 * P)), inval);
    let child2 = child1
        .create_child(SNAP | ZX_VMO_CHILD_RESIZABLE, 4 * P, 0)
        .unwrap();
    assert_eq!(child2.resize(8 * P), Err(inval));
    assert_eq!(child2.size(), 0);
    child2.resize(3 * P - 1).unwrap();
    assert_eq!(child2.size(), 3 * P);
    child1
        .create_child(SNAP | ZX_VMO_CHILD_RESIZABLE, 4 * P, 3 * P)
        .unwrap();
    // The root itself starts at 0: the same offset from it is fine.
    root.create_child(SNAP, 8 * P, 0).unwrap();
}

#[test]
fn every_status_of_create_child() {
    let f = Fixture::new();
    let vmo = f.vmo(2);
    let e = |r: Result<Arc<Vmo>, Status>| r.map(drop).unwrap_err();
    let oor = Status::ERR_OUT_OF_RANGE;
    let inval = Status::ERR_INVALID_ARGS;
    let ns = Status::ERR_NOT_SUPPORTED;
    // Size rounding overflows first, whatever else is wrong.
    assert_eq!(e(vmo.create_child(1 << 20, 1, u64::MAX)), oor);
    assert_eq!(e(vmo.create_child(ZX_VMO_CHILD_SLICE, 0, u64::MAX)), oor);
    // Type flags.
    assert_eq!(e(vmo.create_child(0, 0, P)), inval, "no type");
    assert_eq!(e(vmo.create_child(ZX_VMO_CHILD_RESIZABLE, 0, P)), inval);
    assert_eq!(
        e(vmo.create_child(SNAP | ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE, 0, P)),
        inval,
        "two types"
    );
    assert_eq!(
        e(vmo.create_child(SNAP | 1 << 9, 0, P)),
        inval,
        "unknown bit"
    );
    assert_eq!(e(vmo.create_child(SNAP | ZX_VMO_CHILD_SLICE, 0, P)), inval);
    // Snapshot arguments.
    assert_eq!(e(vmo.create_child(SNAP, 1, P)), inval, "unaligned offset");
    assert_eq!(e(vmo.create_child(SNAP, u64::MAX - P + 1, 2 * P)), oor);
    vmo.create_child(SNAP, 5 * P, 3 * P).unwrap(); // past the end: zeros
    vmo.write(0, &[1]).unwrap();
    let beyond = vmo.create_child(SNAP, 5 * P, 3 * P).unwrap();
    assert_eq!(
        beyond.committed_page_count(),
        0,
        "past the end of a committed parent"
    );
    vmo.create_child(ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE, 0, 0)
        .unwrap();
    // Slice arguments (Zircon's VmoSliceTestCase.NonSlice / NonResizable).
    assert_eq!(e(vmo.create_child(ZX_VMO_CHILD_SLICE, 0, 3 * P)), inval);
    assert_eq!(e(vmo.create_child(ZX_VMO_CHILD_SLICE, P, 2 * P)), inval);
    assert_eq!(e(vmo.create_child(ZX_VMO_CHILD_SLICE, 1, P)), inval);
    let nearly = u64::MAX - P + 1;
    assert_eq!(e(vmo.create_child(ZX_VMO_CHILD_SLICE, nearly, P)), inval);
    assert_eq!(e(vmo.create_child(ZX_VMO_CHILD_SLICE, 0, nearly)), oor);
    let resizable = f.vmo_opts(1, ZX_VMO_RESIZABLE);
    assert_eq!(e(resizable.create_child(ZX_VMO_CHILD_SLICE, 0, P)), ns);
    assert_eq!(
        e(resizable.create_child(ZX_VMO_CHILD_SLICE, 0, 3 * P)),
        inval,
        "the window is checked before resizability (Zircon's NonSlice uses a resizable parent)"
    );
    assert_eq!(
        e(resizable.create_child(ZX_VMO_CHILD_SLICE | ZX_VMO_CHILD_RESIZABLE, 0, P)),
        inval
    );
    assert_eq!(
        e(vmo.create_child(ZX_VMO_CHILD_SLICE | ZX_VMO_CHILD_RESIZABLE, 0, P)),
        inval
    );
    // Snapshot of a slice, children of a discardable VMO.
    let slice = vmo.create_child(ZX_VMO_CHILD_SLICE, 0, P).unwrap();
    assert_eq!(e(slice.create_child(SNAP, 0, P)), ns);
    let discardable = f.vmo_opts(1, ZX_VMO_DISCARDABLE);
    assert_eq!(e(discardable.create_child(SNAP, 0, P)), ns);
    assert_eq!(e(discardable.create_child(ZX_VMO_CHILD_SLICE, 0, P)), ns);
    // A resizable snapshot of a fixed VMO.
    let child = vmo
        .create_child(SNAP | ZX_VMO_CHILD_RESIZABLE, 0, P)
        .unwrap();
    assert!(child.is_resizable() && child.is_cow_clone());
    child.resize(4 * P).unwrap();
}

#[test]
fn snapshot_writes_are_isolated_both_ways_and_copy_once() {
    let f = Fixture::new();
    let vmo = tagged(&f, 2);
    let base = f.phys.used_frames();
    let child = vmo.create_child(SNAP, 0, 2 * P).unwrap();
    assert_eq!(f.phys.used_frames(), base, "a snapshot copies no page");
    assert_eq!((byte(&child, 0), byte(&child, P)), (1, 2));
    vmo.write(0, &[10]).unwrap();
    assert_eq!(f.phys.used_frames(), base + 1, "the parent's write copies");
    assert_eq!((byte(&vmo, 0), byte(&child, 0)), (10, 1));
    child.write(0, &[20]).unwrap();
    assert_eq!(
        f.phys.used_frames(),
        base + 1,
        "the child holds page 0 alone now: written in place"
    );
    child.write(P, &[30]).unwrap();
    assert_eq!(f.phys.used_frames(), base + 2);
    vmo.write(P, &[40]).unwrap();
    assert_eq!(f.phys.used_frames(), base + 2, "never copied twice");
    assert_eq!((byte(&vmo, 0), byte(&vmo, P)), (10, 40));
    assert_eq!((byte(&child, 0), byte(&child, P)), (20, 30));
    drop(child);
    assert_eq!(f.phys.used_frames(), base);
    drop(vmo);
    assert_eq!(f.phys.used_frames(), 0);
}

#[test]
fn parent_mapping_loses_write_access_and_faults_copy_once() {
    let f = Fixture::new();
    let (sub, b) = f.sub(8);
    let vmo = f.vmo(2);
    let pb = f.map_at(&sub, 0, &vmo, 2);
    uwrite(&f, pb, 7);
    uwrite(&f, pb + PAGE, 8);
    let child = vmo.create_child(SNAP, 0, 2 * P).unwrap();
    assert!(
        f.mmu.query(pb).is_none(),
        "the parent's entries of the snapshot range are gone"
    );
    f.check();
    // A read fault maps the shared frame read-only.
    assert_eq!(uread(&f, pb), 7);
    assert_eq!(f.mmu.query(pb).unwrap().1, RU);
    assert_eq!(f.mmu.query(pb).unwrap().0, child.frame_of(0).unwrap());
    f.check();
    let used = f.phys.used_frames();
    uwrite(&f, pb, 9);
    assert_eq!(f.phys.used_frames(), used + 1);
    assert_eq!(f.mmu.query(pb).unwrap().1, RWU);
    assert_ne!(vmo.frame_of(0), child.frame_of(0));
    assert_eq!((byte(&vmo, 0), byte(&child, 0)), (9, 7));
    f.check();
    // The child mapped: its write to page 1 copies; the parent's page 1 then is its alone, and
    // a write fault on its read-only entry upgrades it in place.
    let cb = f.map_at(&sub, 4 * PAGE, &child, 2);
    assert_eq!(uread(&f, cb + PAGE), 8);
    assert_eq!(uread(&f, pb + PAGE), 8);
    assert_eq!(f.mmu.query(pb + PAGE).unwrap().1, RU);
    uwrite(&f, cb + PAGE, 5);
    f.check();
    let used = f.phys.used_frames();
    let frame = vmo.frame_of(1);
    uwrite(&f, pb + PAGE, 6);
    assert_eq!(f.phys.used_frames(), used, "no copy for a frame held once");
    assert_eq!(vmo.frame_of(1), frame);
    assert_eq!((uread(&f, pb + PAGE), uread(&f, cb + PAGE)), (6, 5));
    f.check();
    let _ = b;
}

#[test]
fn protect_and_map_range_keep_shared_pages_read_only() {
    let f = Fixture::new();
    let (sub, _) = f.sub(8);
    let vmo = tagged(&f, 2);
    let _child = vmo.create_child(SNAP, 0, 2 * P).unwrap();
    let pb = sub
        .map(
            RW | ZX_VM_SPECIFIC | ZX_VM_MAP_RANGE,
            0,
            &vmo,
            0,
            2 * PAGE,
            VMAR_RIGHTS,
            VMO_RIGHTS,
        )
        .unwrap();
    assert_eq!(
        f.mmu.query(pb).unwrap().1,
        RU,
        "MAP_RANGE maps shared pages read-only"
    );
    f.check();
    sub.protect(ZX_VM_PERM_READ, pb, 2 * PAGE, VMAR_RIGHTS)
        .unwrap();
    sub.protect(RW, pb, 2 * PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(
        f.mmu.query(pb).unwrap().1,
        RU,
        "protect never gives a shared page write access"
    );
    f.check();
    uwrite(&f, pb, 50);
    assert_eq!((byte(&vmo, 0), byte(&_child, 0)), (50, 1));
    f.check();
}

#[test]
fn slices_share_their_roots_pages() {
    let f = Fixture::new();
    let vmo = f.vmo(4);
    vmo.write(0, &[42]).unwrap();
    vmo.write(P, &[42]).unwrap();
    let slice = vmo.create_child(ZX_VMO_CHILD_SLICE, P, 2 * P).unwrap();
    assert_eq!(byte(&slice, 0), 42);
    slice.write(0, &[84]).unwrap();
    slice.write(P, &[84]).unwrap();
    assert_eq!(
        (
            byte(&vmo, 0),
            byte(&vmo, P),
            byte(&vmo, 2 * P),
            byte(&vmo, 3 * P)
        ),
        (42, 84, 84, 0)
    );
    assert_eq!(slice.committed_page_count(), 2);
    let mut b = [0u8; 2];
    assert_eq!(slice.read(2 * P - 1, &mut b), Err(Status::ERR_OUT_OF_RANGE));
    // A slice of the slice, mapped: the mapping reaches the root's frames.
    let inner = slice.create_child(ZX_VMO_CHILD_SLICE, P, P).unwrap();
    assert_eq!(inner.parent_id(), slice.id());
    assert_eq!(slice.child_count(), 1);
    let (sub, _) = f.sub(8);
    let mb = f.map_at(&sub, 0, &inner, 1);
    assert_eq!(uread(&f, mb), 84);
    uwrite(&f, mb, 99);
    assert_eq!(byte(&vmo, 2 * P), 99);
    let too_long = sub.map(RW, 0, &inner, 0, 2 * PAGE, VMAR_RIGHTS, VMO_RIGHTS);
    assert_eq!(too_long, Err(Status::ERR_BUFFER_TOO_SMALL));
    // A decommit of the root removes the page from the slice's mapping too.
    vmo.decommit(2 * P, P).unwrap();
    assert!(f.mmu.query(mb).is_none());
    assert_eq!(byte(&inner, 0), 0);
    slice.decommit(0, P).unwrap();
    assert_eq!(
        byte(&vmo, P),
        0,
        "a slice's decommit decommits the root's page"
    );
    f.check();
    drop(inner);
    assert_eq!(slice.child_count(), 0);
}

#[test]
fn children_of_children_and_both_close_orders_return_every_frame() {
    for parent_first in [true, false] {
        let f = Fixture::new();
        let vmo = tagged(&f, 3);
        let c1 = vmo.create_child(SNAP, 0, 3 * P).unwrap();
        let c2 = c1.create_child(SNAP, P, 2 * P).unwrap();
        assert_eq!((vmo.child_count(), c1.child_count()), (1, 1));
        assert_eq!((c1.parent_id(), c2.parent_id()), (vmo.id(), c1.id()));
        assert_eq!(f.phys.used_frames(), 3, "three VMOs, three frames");
        c1.write(P, &[11]).unwrap();
        c2.write(P, &[22]).unwrap();
        assert_eq!(f.phys.used_frames(), 5);
        assert_eq!(
            (byte(&vmo, P), byte(&c1, P), byte(&c2, 0), byte(&c2, P)),
            (2, 11, 2, 22)
        );
        let (first, second) = if parent_first { (vmo, c2) } else { (c2, vmo) };
        drop(first);
        assert_eq!((byte(&c1, 0), byte(&c1, P), byte(&c1, 2 * P)), (1, 11, 3));
        drop(second);
        assert_eq!(c1.child_count(), 0);
        assert_eq!(
            f.phys.used_frames(),
            3,
            "what nobody else holds is freed at once"
        );
        assert_eq!((byte(&c1, 0), byte(&c1, P), byte(&c1, 2 * P)), (1, 11, 3));
        drop(c1);
        assert_eq!(f.phys.used_frames(), 0, "back to the baseline");
    }
}

#[test]
fn decommit_and_resize_of_either_side_leave_the_other() {
    let f = Fixture::new();
    let phys: Arc<dyn vm::PhysMem> = f.phys.clone();
    let vmo = Vmo::create(phys, 2 * P, ZX_VMO_RESIZABLE).unwrap();
    vmo.write(0, &[1]).unwrap();
    vmo.write(P, &[2]).unwrap();
    let child = vmo
        .create_child(SNAP | ZX_VMO_CHILD_RESIZABLE, 0, 2 * P)
        .unwrap();
    vmo.decommit(0, P).unwrap();
    assert_eq!((byte(&vmo, 0), byte(&child, 0)), (0, 1));
    assert_eq!(f.phys.used_frames(), 2, "the child still holds page 0");
    vmo.resize(0).unwrap();
    assert_eq!((byte(&child, 0), byte(&child, P)), (1, 2));
    child.resize(P).unwrap();
    assert_eq!(f.phys.used_frames(), 1);
    child.resize(2 * P).unwrap();
    assert_eq!(byte(&child, P), 0, "a regrown page reads zeros");
    child.decommit(0, P).unwrap();
    assert_eq!(f.phys.used_frames(), 0);
}

#[test]
fn commit_of_a_snapshot_copies_shared_pages() {
    let f = Fixture::new();
    let vmo = tagged(&f, 2);
    let child = vmo.create_child(SNAP, 0, 4 * P).unwrap();
    child.commit(0, 4 * P).unwrap();
    assert_eq!(f.phys.used_frames(), 2 + 4);
    assert_eq!(
        (byte(&child, 0), byte(&child, P), byte(&child, 3 * P)),
        (1, 2, 0)
    );
    assert_ne!(vmo.frame_of(0), child.frame_of(0));
}

#[test]
fn a_writable_entry_of_a_shared_frame_is_caught() {
    let f = Fixture::new();
    let (sub, _) = f.sub(4);
    let vmo = tagged(&f, 1);
    let _child = vmo.create_child(SNAP, 0, P).unwrap();
    let b = f.map_at(&sub, 0, &vmo, 1);
    assert_eq!(uread(&f, b), 1);
    f.check();
    let (frame, _) = f.mmu.query(b).unwrap();
    f.mmu.corrupt(b, Some((frame, RWU)));
    let e = f.aspace.check_invariants().unwrap_err();
    assert!(e.contains("rw-u"), "{e}");
    f.mmu.corrupt(b, Some((frame, RU)));
    f.check();
}

/// A debugger's write into a mapping whose maximum lacks WRITE (`private_copy_for_write`, the
/// `zx_process_write_memory` path): the mapping gets its own child once; what is written there
/// shows through that mapping only, never in the VMO or its other mapping; a mapping whose
/// maximum has WRITE keeps its VMO.
#[test]
fn private_copy_for_a_debugger_write() {
    use abi::rights::ZX_RIGHT_WRITE;
    let f = Fixture::new();
    let base = f.phys.used_frames();
    let vmo = tagged(&f, 2);
    let ro = |vmo: &Arc<Vmo>| {
        f.root
            .map(
                ZX_VM_PERM_READ,
                0,
                vmo,
                0,
                2 * PAGE,
                VMAR_RIGHTS,
                VMO_RIGHTS & !ZX_RIGHT_WRITE,
            )
            .unwrap()
    };
    let (a, b) = (ro(&vmo), ro(&vmo));
    assert_eq!((uread(&f, a + PAGE), uread(&f, b + PAGE)), (2, 2));
    let w = f.aspace.private_copy_for_write(a + PAGE + 5).unwrap();
    assert_eq!((w.base, w.len, w.vmo_offset), (a, 2 * PAGE, 0));
    assert!(!Arc::ptr_eq(&w.vmo, &vmo), "no private copy");
    w.vmo.write(P + 5, b"X").unwrap();
    assert_eq!(uread(&f, a + PAGE + 5), b'X');
    assert_eq!(
        uread(&f, b + PAGE + 5),
        0,
        "the other mapping saw the write"
    );
    assert_eq!(byte(&vmo, P + 5), 0, "the VMO saw the write");
    assert_eq!(uread(&f, a), 1, "the copy keeps the other pages");
    // Once per mapping: the next write goes to the same copy.
    let again = f.aspace.private_copy_for_write(a).unwrap();
    assert!(Arc::ptr_eq(&again.vmo, &w.vmo), "a second copy");
    f.check();
    // One page copied, by the write.
    assert_eq!(f.phys.used_frames(), base + 3);
    // A mapping whose maximum has WRITE is written in its VMO.
    let rw = f.map_at(&f.sub(2).0, 0, &vmo, 2);
    let own = f.aspace.private_copy_for_write(rw).unwrap();
    assert!(Arc::ptr_eq(&own.vmo, &vmo));
    assert_eq!(
        f.aspace.private_copy_for_write(0x1000).map(drop),
        Err(Status::ERR_NOT_FOUND)
    );
    let phys = f.phys.clone();
    drop((w, again, own, vmo, f));
    assert_eq!(phys.used_frames(), base);
}
