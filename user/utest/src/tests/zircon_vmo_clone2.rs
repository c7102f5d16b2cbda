//! `zx_vmo_create_child`: the rest of Zircon's clone core tests
//! (`zircon/system/utest/core/vmo/vmo-clone2.cc`) after [`super::zircon_vmo_clone`]: small and
//! disjoint clones, resizes of clones and of their parents, the ZX_VMO_ZERO_CHILDREN signal and
//! the child count, chains of mapped clones, progressive clones closed or truncated, ZERO
//! markers, MAP_RANGE of a clone, and the two regression tests that race a close against another
//! thread. One test per Zircon test, named after it (`DisjointCloneEarlyClose` ->
//! `clone2_disjoint_clone_early_close`), with Zircon's data and attribution expectations
//! (current Zircon: a page shared by several VMOs is divided equally among them, read as
//! `populated_scaled_bytes`). Zircon's `PollVmoPopulatedBytes` is a plain check here: frames are
//! freed when the last VMO that sees them goes, before the closing call returns. The tests that
//! check attribution and map nothing also compare the kernel's frames in use since the test began
//! with the committed scaled bytes of the test's VMOs added up ([`FramesAtStart`]; page tables
//! and thread stacks would count there too); the harness's check after every test covers all.
//!
//! Zircon's tests of contiguous, physical, pinned, pager-backed and uncached VMOs are not here:
//! docs/conformance.md lists them and why.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use abi::ops::ZX_VMO_OP_ZERO;
use abi::signals::{ZX_THREAD_TERMINATED, ZX_VMO_ZERO_CHILDREN};
use abi::vm_options::{ZX_VM_MAP_RANGE, ZX_VM_PERM_READ};
use abi::vmo_options::*;
use abi::Status;
use zx::{Handle, Thread, Vmo};

use super::util::*;
use super::zircon_vmo_clone::{get, populated, put, FramesAtStart, P, SNAP};
use super::PAGE;
use crate::harness::{Ctx, Failure, TestResult};

tests!(
    clone2_small_clone_child,
    clone2_small_clones,
    clone2_disjoint_clone_early_close,
    clone2_disjoint_clone_late_close,
    clone2_disjoint_clone_test2,
    clone2_disjoint_clone_progressive,
    clone2_resize_child,
    clone2_resize_original,
    clone2_resize_grow,
    clone2_resize_offset_child,
    clone2_resize_disjoint_child,
    clone2_resize_multiple_progressive,
    clone2_resize_over_sibling_range,
    clone2_children,
    clone2_many_children,
    clone2_many_children_rev_close,
    clone2_many_clone_mapping,
    clone2_many_clone_offset,
    clone2_many_clone_mapping_offset,
    clone2_progressive_clone_close,
    clone2_progressive_clone_truncate,
    clone2_parent_start_limit_regression,
    clone2_drop_children_in_parallel,
    clone2_no_accumulated_overflow,
    clone2_marker_clears_split_bits,
    clone2_map_range_read_only,
    clone2_drop_parent_committed_bytes,
);

/// A snapshot child that may be resized.
const SNAP_RS: u32 = ZX_VMO_CHILD_SNAPSHOT | ZX_VMO_CHILD_RESIZABLE;

/// Zircon's `InitPageTaggedVmo`: a resizable VMO of `pages` pages, page `i` starting with `i + 1`.
fn tagged(pages: u64) -> Result<Vmo, Failure> {
    let v = check!(Vmo::create(pages * P, ZX_VMO_RESIZABLE));
    for i in 0..pages {
        put(&v, i as u32 + 1, i * P)?;
    }
    Ok(v)
}

/// Every permutation of `0..n` (Zircon's `CallPermutations`), in lexicographic order.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    let mut p: Vec<usize> = (0..n).collect();
    let mut all = Vec::new();
    loop {
        all.push(p.clone());
        // The next permutation: the last ascent, swapped with the last larger element, the tail
        // reversed.
        let Some(i) = (1..n).rev().find(|&i| p[i - 1] < p[i]) else {
            return all;
        };
        let j = (i..n).rev().find(|&j| p[j] > p[i - 1]).unwrap_or(i);
        p.swap(i - 1, j);
        p[i..].reverse();
    }
}

/// The child count of `v` (Zircon's `VmoNumChildren`).
fn num_children(v: &Vmo) -> Result<usize, Failure> {
    Ok(check!(v.info()).num_children)
}

/// Whether `v` asserts ZX_VMO_ZERO_CHILDREN now (a wait with a deadline in the past).
fn zero_children(v: &Vmo) -> Result<bool, Failure> {
    match v.handle().wait_one(ZX_VMO_ZERO_CHILDREN, 0) {
        Ok(observed) => Ok(observed & ZX_VMO_ZERO_CHILDREN != 0),
        Err(Status::ERR_TIMED_OUT) => Ok(false),
        Err(e) => fail!("wait_one(ZX_VMO_ZERO_CHILDREN): {e:?}"),
    }
}

/// `SmallCloneChild`: a clone of a one-page clone sees the page and zeros past it, never the
/// original's next page.
fn clone2_small_clone_child(_: &Ctx) -> TestResult {
    let v = tagged(3)?;
    let clone = check!(v.create_child(SNAP, P, P));
    ensure_eq!(get(&clone, 0)?, 2);
    let clone2 = check!(clone.create_child(SNAP, 0, 2 * P));
    ensure_eq!((get(&clone2, 0)?, get(&clone2, P)?), (2, 0));
    Ok(())
}

/// `SmallClones`: two small clones of one VMO; closing it frees its page no clone sees and moves
/// the others to the clones.
fn clone2_small_clones(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = tagged(3)?;
    let clone = check!(v.create_child(SNAP, P, 2 * P));
    put(&clone, 4, P)?;
    let clone2 = check!(v.create_child(SNAP, 0, P));
    ensure_eq!(get(&clone, 0)?, 2);
    // 1/2 + 1/2 + 1 for the original, 1/2 + 1 for the first clone, 1/2 for the second.
    ensure_eq!(
        (populated(&v)?, populated(&clone)?, populated(&clone2)?),
        (2 * P, 3 * P / 2, P / 2)
    );
    start.equal_scaled_sum_of(&[&v, &clone, &clone2])?;
    drop(v);
    ensure_eq!((populated(&clone)?, populated(&clone2)?), (2 * P, P));
    start.equal_scaled_sum_of(&[&clone, &clone2])?;
    Ok(())
}

/// Zircon's `DisjointClonesTest`: a clone of each page of a 4-page VMO, two of them through an
/// intermediate clone; the original and the intermediate close before or after the leaves are
/// written. Each leaf ends with its own data and exactly one page.
fn disjoint_clones(early_close: bool) -> TestResult {
    let start = FramesAtStart::now()?;
    let mut v = Some(tagged(4)?);
    let o = v.as_ref().unwrap();
    let mut clone = Some(check!(o.create_child(SNAP, P, 2 * P)));
    let c = clone.as_ref().unwrap();
    let leaves = [
        check!(o.create_child(SNAP, 0, P)),
        check!(c.create_child(SNAP, 0, P)),
        check!(c.create_child(SNAP, P, P)),
        check!(o.create_child(SNAP, 3 * P, P)),
    ];
    if early_close {
        drop(v.take());
        drop(clone.take());
    }
    for (i, leaf) in leaves.iter().enumerate() {
        ensure_eq!(get(leaf, 0)?, i as u32 + 1);
        put(leaf, i as u32 + 5, 0)?;
    }
    if !early_close {
        drop(v.take());
        drop(clone.take());
    }
    for (i, leaf) in leaves.iter().enumerate() {
        ensure_eq!(get(leaf, 0)?, i as u32 + 5);
        ensure_eq!(populated(leaf)?, P);
    }
    start.equal_scaled_sum_of(&leaves.iter().collect::<Vec<_>>())?;
    Ok(())
}

/// `DisjointCloneEarlyClose`.
fn clone2_disjoint_clone_early_close(_: &Ctx) -> TestResult {
    disjoint_clones(true)
}

/// `DisjointCloneLateClose`.
fn clone2_disjoint_clone_late_close(_: &Ctx) -> TestResult {
    disjoint_clones(false)
}

/// `DisjointCloneTest2`: the four disjoint leaves, never written, closed in every order; the
/// others keep their data and one page each.
fn clone2_disjoint_clone_test2(_: &Ctx) -> TestResult {
    for perm in permutations(4) {
        let start = FramesAtStart::now()?;
        let v = tagged(4)?;
        let clone = check!(v.create_child(SNAP, P, 2 * P));
        let mut leaves = [
            Some(check!(v.create_child(SNAP, 0, P))),
            Some(check!(clone.create_child(SNAP, 0, P))),
            Some(check!(clone.create_child(SNAP, P, P))),
            Some(check!(v.create_child(SNAP, 3 * P, P))),
        ];
        drop(v);
        drop(clone);
        for (i, leaf) in leaves.iter().enumerate() {
            ensure_eq!(get(leaf.as_ref().unwrap(), 0)?, i as u32 + 1);
        }
        for &closed in &perm {
            drop(leaves[closed].take());
            for (j, leaf) in leaves.iter().enumerate() {
                if let Some(leaf) = leaf {
                    ensure!(
                        get(leaf, 0)? == j as u32 + 1 && populated(leaf)? == P,
                        "order {perm:?}: after closing leaf {closed}, leaf {j} reads {} with {} \
                         bytes",
                        get(leaf, 0)?,
                        populated(leaf)?
                    );
                }
            }
            let open: Vec<&Vmo> = leaves.iter().flatten().collect();
            start.equal_scaled_sum_of(&open)?;
        }
    }
    Ok(())
}

/// `DisjointCloneProgressive`: clones of a written offset clone at various offsets, closed; a new
/// clone of the original then sees the original's data, and a write to the original is not seen
/// by it.
fn clone2_disjoint_clone_progressive(_: &Ctx) -> TestResult {
    let v = tagged(6)?;
    let main = check!(v.create_child(SNAP, P, 5 * P));
    put(&main, 7, 3 * P)?;
    // One that sees the written page, one after it, one before it, one past the end.
    let clone1 = check!(main.create_child(SNAP, P, 4 * P));
    let clone2 = check!(main.create_child(SNAP, 4 * P, P));
    let clone3 = check!(main.create_child(SNAP, 2 * P, P));
    let clone4 = check!(main.create_child(SNAP, 10 * P, P));
    drop(main);
    drop(clone1);
    drop(clone3);
    drop(clone4);
    drop(clone2);
    let last = check!(v.create_child(SNAP, 0, 6 * P));
    for i in 0..6 {
        ensure_eq!(
            (get(&v, i * P)?, get(&last, i * P)?),
            (i as u32 + 1, i as u32 + 1)
        );
    }
    put(&v, 8, 4 * P)?;
    for i in 0..6 {
        let want = if i == 4 { 8 } else { i as u32 + 1 };
        ensure_eq!((get(&v, i * P)?, get(&last, i * P)?), (want, i as u32 + 1));
    }
    Ok(())
}

/// Zircon's `ResizeTest` (non-contiguous): a 4-page VMO and a resizable clone, one page forked on
/// each side, then one of them shrunk to a page: the other keeps its data, the cut pages go to it
/// alone, growing again shows zeros, and closing the other frees what the shrunk one cannot see.
fn resize_test(resize_child: bool) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = check!(Vmo::create(4 * P, ZX_VMO_RESIZABLE));
    for i in 0..4 {
        put(&v, i as u32 + 1, i * P)?;
    }
    let clone = check!(v.create_child(SNAP_RS, 0, 4 * P));
    put(&v, 5, P)?;
    put(&clone, 5, 2 * P)?;
    // 1/2 + 1 + 1 + 1/2 each.
    ensure_eq!((populated(&v)?, populated(&clone)?), (3 * P, 3 * P));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    let (target, other) = if resize_child {
        (&clone, &v)
    } else {
        (&v, &clone)
    };
    check!(target.set_size(P));
    let written = if resize_child { 1 } else { 2 };
    for i in 0..4u64 {
        let want = if i == written { 5 } else { i as u32 + 1 };
        ensure_eq!(get(other, i * P)?, want);
    }
    ensure_eq!(get(target, 0)?, 1);
    // 1/2 + 1 + 1 + 1 for the other, 1/2 for the shrunk one.
    let (resized, nonresized) = (P / 2, 7 * P / 2);
    ensure_eq!(
        (populated(target)?, populated(other)?),
        (resized, nonresized)
    );
    start.equal_scaled_sum_of(&[&v, &clone])?;
    check!(target.set_size(2 * P));
    ensure_eq!(get(target, P)?, 0);
    // A write to the other's last page takes no new page.
    put(other, 6, 3 * P)?;
    ensure_eq!(
        (populated(target)?, populated(other)?),
        (resized, nonresized)
    );
    start.equal_scaled_sum_of(&[&v, &clone])?;
    let (target, other) = if resize_child { (clone, v) } else { (v, clone) };
    drop(other);
    ensure_eq!(get(&target, 0)?, 1);
    ensure_eq!(populated(&target)?, P);
    start.equal_scaled_sum_of(&[&target])?;
    Ok(())
}

/// `ResizeChild`.
fn clone2_resize_child(_: &Ctx) -> TestResult {
    resize_test(true)
}

/// `ResizeOriginal`.
fn clone2_resize_original(_: &Ctx) -> TestResult {
    resize_test(false)
}

/// `ResizeGrow`: a grown clone reads zeros past its old end and takes no page when the original
/// writes there.
fn clone2_resize_grow(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = tagged(2)?;
    let clone = check!(v.create_child(SNAP_RS, 0, P));
    ensure_eq!(get(&clone, 0)?, 1);
    check!(clone.set_size(2 * P));
    ensure_eq!(get(&clone, P)?, 0);
    put(&v, 3, P)?;
    ensure_eq!(get(&clone, P)?, 0);
    // 1/2 + 1 for the original, 1/2 + 0 for the clone.
    ensure_eq!((populated(&v)?, populated(&clone)?), (3 * P / 2, P / 2));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    Ok(())
}

/// `ResizeOffsetChild`: truncating a VMO to nothing leaves its offset child's page to the child.
fn clone2_resize_offset_child(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = tagged(3)?;
    let clone = check!(v.create_child(SNAP, P, P));
    check!(v.set_size(0));
    ensure_eq!(get(&clone, 0)?, 2);
    ensure_eq!((populated(&v)?, populated(&clone)?), (0, P));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    Ok(())
}

/// `ResizeDisjointChild`: a resizable clone of each of three pages; two clones and the original
/// shrunk to nothing, in every order, leave the third clone its page.
fn clone2_resize_disjoint_child(_: &Ctx) -> TestResult {
    for perm in permutations(3) {
        let start = FramesAtStart::now()?;
        let v = tagged(3)?;
        let mut clones = Vec::new();
        for i in 0..3u64 {
            clones.push(check!(v.create_child(SNAP_RS, i * P, P)));
            ensure_eq!(get(&clones[i as usize], 0)?, i as u32 + 1);
        }
        // Every page of the original shared with one clone: 1/2 each.
        ensure_eq!(populated(&v)?, 3 * P / 2);
        for c in &clones {
            ensure_eq!(populated(c)?, P / 2);
        }
        check!(clones[perm[0]].set_size(0));
        check!(clones[perm[1]].set_size(0));
        check!(v.set_size(0));
        ensure_eq!(get(&clones[perm[2]], 0)?, perm[2] as u32 + 1);
        ensure!(
            (
                populated(&v)?,
                populated(&clones[perm[0]])?,
                populated(&clones[perm[1]])?,
                populated(&clones[perm[2]])?
            ) == (0, 0, 0, P),
            "order {perm:?}: the original and the clones hold {}, {}, {}, {}",
            populated(&v)?,
            populated(&clones[perm[0]])?,
            populated(&clones[perm[1]])?,
            populated(&clones[perm[2]])?
        );
        start.equal_scaled_sum_of(&[&v, &clones[0], &clones[1], &clones[2]])?;
        check!(clones[perm[2]].set_size(0));
        ensure_eq!(populated(&clones[perm[2]])?, 0);
        start.equal_scaled_sum_of(&[&v, &clones[0], &clones[1], &clones[2]])?;
    }
    Ok(())
}

/// `ResizeMultipleProgressive`: a page forked into the original and a resizable clone, a second
/// clone, then the first clone and the original truncated to nothing: the second clone keeps the
/// original's forked page.
fn clone2_resize_multiple_progressive(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = tagged(3)?;
    let clone = check!(v.create_child(SNAP_RS, 0, 2 * P));
    put(&v, 4, 0)?;
    put(&clone, 5, P)?;
    let original = |v: &Vmo| -> TestResult {
        ensure_eq!((get(v, 0)?, get(v, P)?, get(v, 2 * P)?), (4, 2, 3));
        Ok(())
    };
    original(&v)?;
    ensure_eq!((get(&clone, 0)?, get(&clone, P)?), (1, 5));
    let clone2 = check!(v.create_child(SNAP, 0, P));
    original(&v)?;
    ensure_eq!(get(&clone2, 0)?, 4);
    check!(clone.set_size(0));
    original(&v)?;
    ensure_eq!(get(&clone2, 0)?, 4);
    // 1/2 + 1 + 1 for the original, nothing for the first clone, 1/2 for the second.
    ensure_eq!(
        (populated(&v)?, populated(&clone)?, populated(&clone2)?),
        (5 * P / 2, 0, P / 2)
    );
    start.equal_scaled_sum_of(&[&v, &clone, &clone2])?;
    check!(v.set_size(0));
    ensure_eq!(get(&clone2, 0)?, 4);
    ensure_eq!(
        (populated(&v)?, populated(&clone)?, populated(&clone2)?),
        (0, 0, P)
    );
    start.equal_scaled_sum_of(&[&v, &clone, &clone2])?;
    Ok(())
}

/// `ResizeOverSiblingRange`: a VMO with a snapshot child and a one-page sibling in its middle,
/// shrunk to a page and grown back, reads zeros in all it grew over and writes there fork zero
/// pages, never the pages only the other child still sees.
fn clone2_resize_over_sibling_range(_: &Ctx) -> TestResult {
    let v = tagged(4)?;
    let intermediate = check!(v.create_child(SNAP, 0, 4 * P));
    let sibling = check!(v.create_child(SNAP_RS, 2 * P, P));
    check!(v.set_size(P));
    check!(v.set_size(4 * P));
    ensure_eq!(get(&v, 0)?, 1);
    for i in 1..4 {
        ensure_eq!(get(&v, i * P)?, 0);
    }
    put(&v, 2, P)?;
    put(&v, 3, 2 * P)?;
    put(&v, 4, 3 * P)?;
    // The other two keep the original data.
    for i in 0..4 {
        ensure_eq!(get(&intermediate, i * P)?, i as u32 + 1);
    }
    ensure_eq!(get(&sibling, 0)?, 3);
    Ok(())
}

/// `Children`: ZX_VMO_ZERO_CHILDREN deasserted while the clone lives; the clone itself has none.
fn clone2_children(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    ensure!(
        zero_children(&v)?,
        "a new VMO does not assert ZX_VMO_ZERO_CHILDREN"
    );
    let clone = check!(v.create_child(SNAP, 0, P));
    ensure!(
        !zero_children(&v)?,
        "ZX_VMO_ZERO_CHILDREN asserted with a child"
    );
    ensure!(
        zero_children(&clone)?,
        "the clone does not assert ZX_VMO_ZERO_CHILDREN"
    );
    drop(clone);
    ensure!(
        zero_children(&v)?,
        "ZX_VMO_ZERO_CHILDREN not asserted after the child closed"
    );
    Ok(())
}

/// Zircon's `ManyChildrenTestHelper`: five clones, the child count after each creation and each
/// close (in creation order or the reverse), then ZX_VMO_ZERO_CHILDREN.
fn many_children(reverse_close: bool) -> TestResult {
    const COUNT: usize = 5;
    let v = check!(Vmo::create(P, 0));
    let mut clones = Vec::new();
    for i in 0..COUNT {
        clones.push(Some(check!(v.create_child(SNAP, 0, P))));
        ensure_eq!(num_children(&v)?, i + 1);
    }
    for i in 0..COUNT {
        let closed = if reverse_close { COUNT - 1 - i } else { i };
        drop(clones[closed].take());
        ensure_eq!(num_children(&v)?, COUNT - (i + 1));
    }
    ensure!(
        zero_children(&v)?,
        "ZX_VMO_ZERO_CHILDREN not asserted after the last child"
    );
    Ok(())
}

/// `ManyChildren`.
fn clone2_many_children(_: &Ctx) -> TestResult {
    many_children(false)
}

/// `ManyChildrenRevClose`.
fn clone2_many_children_rev_close(_: &Ctx) -> TestResult {
    many_children(true)
}

/// Maps one page of each VMO read-write.
fn map_each(ctx: &Ctx, vmos: &[Vmo]) -> Result<Vec<usize>, Failure> {
    let mut maps = Vec::new();
    for v in vmos {
        maps.push(check!(ctx.root.map(RW, 0, v, 0, PAGE)));
    }
    Ok(maps)
}

/// Unmaps what [`map_each`] mapped.
fn unmap_each(ctx: &Ctx, maps: &[usize]) -> TestResult {
    for &m in maps {
        // SAFETY: the test is done with the page; nothing else refers to it.
        check!(unsafe { ctx.root.unmap(m, PAGE) });
    }
    Ok(())
}

/// `ManyCloneMapping`: a VMO, two clones of it and a clone of a clone, mapped and written through
/// the mappings in every order; each mapping reads its own write or the original data.
fn clone2_many_clone_mapping(ctx: &Ctx) -> TestResult {
    const ORIGINAL: u64 = 0xdeadbeef;
    const NEW: u64 = 0xc0ffee;
    for perm in permutations(4) {
        let v0 = check!(Vmo::create(P, 0));
        put(&v0, ORIGINAL as u32, 0)?;
        let v1 = check!(v0.create_child(SNAP, 0, P));
        let v2 = check!(v0.create_child(SNAP, 0, P));
        let v3 = check!(v1.create_child(SNAP, 0, P));
        let vmos = [v0, v1, v2, v3];
        let maps = map_each(ctx, &vmos)?;
        for &m in &maps {
            ensure_eq!(peek(m), ORIGINAL);
        }
        let mut written = [false; 4];
        for &i in &perm {
            poke(maps[i], NEW);
            written[i] = true;
            for (j, &m) in maps.iter().enumerate() {
                let want = if written[j] { NEW } else { ORIGINAL };
                ensure!(
                    peek(m) == want,
                    "order {perm:?}: after writing {i}, mapping {j} reads {:#x}",
                    peek(m)
                );
            }
        }
        unmap_each(ctx, &maps)?;
    }
    Ok(())
}

/// `ManyCloneOffset`: a clone with a clone past its end, written and closed: the original keeps
/// its data. Zircon writes the value the page already holds (1); here 2, so a write that reached
/// the original would show.
fn clone2_many_clone_offset(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    put(&v, 1, 0)?;
    let clone1 = check!(v.create_child(SNAP, 0, P));
    let _clone2 = check!(clone1.create_child(SNAP, P, P));
    put(&clone1, 2, 0)?;
    drop(clone1);
    ensure_eq!(get(&v, 0)?, 1);
    Ok(())
}

/// `ManyCloneMappingOffset`: three clones of a two-page VMO, one of them at an offset, mapped;
/// two written: each mapping reads its own data, and each VMO that sees the written page holds
/// one page.
fn clone2_many_clone_mapping_offset(ctx: &Ctx) -> TestResult {
    let v0 = check!(Vmo::create(2 * P, 0));
    put(&v0, 1, 0)?;
    let v1 = check!(v0.create_child(SNAP, 0, 2 * P));
    let v2 = check!(v0.create_child(SNAP, P, P));
    let v3 = check!(v0.create_child(SNAP, 0, 2 * P));
    let vmos = [v0, v1, v2, v3];
    let maps = map_each(ctx, &vmos)?;
    for (i, &m) in maps.iter().enumerate() {
        if i != 2 {
            ensure_eq!(peek(m), 1);
        }
    }
    put(&vmos[3], 2, 0)?;
    put(&vmos[1], 3, 0)?;
    ensure_eq!((peek(maps[1]), peek(maps[3]), peek(maps[0])), (3, 2, 1));
    for (i, v) in vmos.iter().enumerate() {
        ensure_eq!(populated(v)?, if i != 2 { P } else { 0 });
    }
    unmap_each(ctx, &maps)
}

/// Zircon's `ProgressiveCloneDiscardTest`: five resizable clones of a 6-page VMO, clone `i`
/// forking page `i`; the original and then three clones closed (or truncated to nothing). The
/// attribution at each stage: every page divided among the VMOs that see it.
fn progressive_clone_discard(close: bool) -> TestResult {
    const N: u64 = 6;
    let start = FramesAtStart::now()?;
    let mut vmos: Vec<Option<Vmo>> = Vec::new();
    vmos.push(Some(tagged(N)?));
    ensure_eq!(populated(vmos[0].as_ref().unwrap())?, N * P);
    for i in 1..N {
        let c = check!(vmos[0].as_ref().unwrap().create_child(SNAP_RS, 0, N * P));
        put(&c, N as u32 + 2, i * P)?;
        vmos.push(Some(c));
    }
    let data = |vmos: &[Option<Vmo>], from: u64| -> TestResult {
        for i in from..N {
            let v = vmos[i as usize].as_ref().unwrap();
            for j in 0..N {
                let want = if i != 0 && j == i {
                    N as u32 + 2
                } else {
                    j as u32 + 1
                };
                ensure_eq!(get(v, j * P)?, want);
            }
        }
        Ok(())
    };
    data(&vmos, 0)?;
    // The original: 1/6 + 5 * 1/5; each clone: 1/6 + 1 + 4 * 1/5.
    let original = 7 * P / 6;
    let clone = 59 * P / 6 / (N - 1);
    ensure_eq!(populated(vmos[0].as_ref().unwrap())?, original);
    for v in &open(&vmos)[1..] {
        ensure_eq!(populated(v)?, clone);
    }
    start.equal_scaled_sum_of(&open(&vmos))?;
    let discard = |vmos: &mut [Option<Vmo>], i: usize| -> TestResult {
        if close {
            drop(vmos[i].take());
        } else {
            check!(vmos[i].as_ref().unwrap().set_size(0));
        }
        Ok(())
    };
    discard(&mut vmos, 0)?;
    data(&vmos, 1)?;
    // Each clone: 1/5 + 1 + 4 * 1/4.
    for v in &vmos[1..] {
        ensure_eq!(populated(v.as_ref().unwrap())?, (2 * N - 1) * P / (N - 1));
    }
    start.equal_scaled_sum_of(&open(&vmos))?;
    for i in 1..(N - 2) as usize {
        discard(&mut vmos, i)?;
    }
    data(&vmos, N - 2)?;
    // Each of the last two: 1/2 + 1 + 1 + 3 * 1/2.
    for v in &vmos[(N - 2) as usize..] {
        ensure_eq!(populated(v.as_ref().unwrap())?, (N + 2) * P / 2);
    }
    start.equal_scaled_sum_of(&open(&vmos))?;
    Ok(())
}

/// The VMOs of `vmos` still open.
fn open(vmos: &[Option<Vmo>]) -> Vec<&Vmo> {
    vmos.iter().flatten().collect()
}

/// `ProgressiveCloneClose`.
fn clone2_progressive_clone_close(_: &Ctx) -> TestResult {
    progressive_clone_discard(true)
}

/// `ProgressiveCloneTruncate`.
fn clone2_progressive_clone_truncate(_: &Ctx) -> TestResult {
    progressive_clone_discard(false)
}

/// `ParentStartLimitRegression`: a hidden node merged with its remaining child while both it and
/// its sibling sit at offsets in their parent (Zircon once computed the parent start limit in the
/// wrong VMO's offsets here). Zircon asserts only that the close returns, with nothing written;
/// here the root's pages are tagged first, and the survivors must see their page (the root's
/// third) and nothing else must hold a frame.
fn clone2_parent_start_limit_regression(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let r = tagged(3)?;
    let m = check!(r.create_child(SNAP, P, 2 * P));
    let c = check!(m.create_child(SNAP, 0, P));
    let s = check!(r.create_child(SNAP, 2 * P, P));
    drop(r);
    let h = check!(m.create_child(SNAP, P, P));
    drop(m);
    let hc = check!(h.create_child(SNAP, 0, P));
    ensure_eq!(get(&c, 0)?, 2);
    drop(c);
    for v in [&s, &h, &hc] {
        ensure_eq!(get(v, 0)?, 3);
    }
    start.equal_scaled_sum_of(&[&s, &h, &hc])?;
    Ok(())
}

/// What a racing thread of [`clone2_drop_children_in_parallel`] and
/// [`clone2_drop_parent_committed_bytes`] shares with the test.
struct Race {
    /// Zircon's three-step ready flag: set by the test, cleared by the thread when it runs, set
    /// again by the test to let both go.
    ready: AtomicBool,
    /// The raw handle of the VMO the thread works on.
    vmo: u32,
    /// The raw handle of the test's thread (the thread's short sleeps wait on it).
    sleeper: u32,
    /// Populated bytes the thread saw (`clone2_drop_parent_committed_bytes`), or 0.
    seen: AtomicU64,
}

/// Sleeps about 50 us on `raw` (a thread handle that does not terminate meanwhile), giving the
/// CPU to the other thread.
fn nap(raw: u32) {
    let h = core::mem::ManuallyDrop::new(Handle::from_raw(raw));
    let _ = h.wait_one(ZX_THREAD_TERMINATED, zx::clock_get_monotonic() + 50_000);
}

/// Thread: waits for the go, then closes the VMO handle.
extern "C" fn close_racer(arg1: usize, _: usize) -> ! {
    // SAFETY: arg1 is the address of a `Race` the test keeps alive until this thread ended.
    let race = unsafe { &*(arg1 as *const Race) };
    race.ready.store(false, SeqCst);
    while !race.ready.load(SeqCst) {
        nap(race.sleeper);
    }
    drop(Handle::from_raw(race.vmo));
    Thread::exit()
}

/// Thread: waits for the go, then reads the VMO's populated scaled bytes.
extern "C" fn info_racer(arg1: usize, _: usize) -> ! {
    // SAFETY: arg1 is the address of a `Race` the test keeps alive until this thread ended.
    let race = unsafe { &*(arg1 as *const Race) };
    race.ready.store(false, SeqCst);
    while !race.ready.load(SeqCst) {
        nap(race.sleeper);
    }
    let vmo = core::mem::ManuallyDrop::new(Vmo::from(Handle::from_raw(race.vmo)));
    let bytes = vmo
        .info()
        .map(|i| i.populated_scaled_bytes)
        .unwrap_or(u64::MAX);
    race.seen.store(bytes, SeqCst);
    Thread::exit()
}

/// Runs `entry` on a thread of this process over `race`, lets it go together with `act` (run on
/// the test's thread), and waits for it to end.
fn race_with(
    ctx: &Ctx,
    stack: usize,
    entry: extern "C" fn(usize, usize) -> !,
    race: &Race,
    act: impl FnOnce(),
) -> TestResult {
    race.ready.store(true, SeqCst);
    let t = check!(Thread::create(&ctx.process, b"racer", 0));
    // SAFETY: the entry reads only `race` (atomics and values written before the start), which
    // outlives the thread (this function waits for it), uses no heap, and runs on its own stack,
    // which nothing else uses while it runs.
    check!(unsafe { t.start(entry as usize, stack, race as *const Race as usize, 0) });
    while race.ready.load(SeqCst) {
        nap(race.sleeper);
    }
    race.ready.store(true, SeqCst);
    act();
    let deadline = zx::clock_get_monotonic() + 10_000_000_000;
    check!(t.handle().wait_one(ZX_THREAD_TERMINATED, deadline));
    Ok(())
}

/// Stack size of a racing thread.
const RACER_STACK: usize = 4 * PAGE;

/// `DropChildrenInParallel`: 1000 times, a VMO and its snapshot child closed at about the same
/// time by two threads (both children of the hidden node go at once). Here the VMO has a page
/// written first, so a shared frame is at stake: the harness's check after the test sees any
/// frame the two closes leave behind.
fn clone2_drop_children_in_parallel(ctx: &Ctx) -> TestResult {
    let stack_vmo = vmo(RACER_STACK / PAGE)?;
    let stack = check!(ctx.root.map(RW, 0, &stack_vmo, 0, RACER_STACK));
    for _ in 0..1000 {
        let v = check!(Vmo::create(P, 0));
        put(&v, 1, 0)?;
        let child = check!(v.create_child(SNAP, 0, P));
        let race = Race {
            ready: AtomicBool::new(true),
            vmo: child.into_handle().into_raw(),
            sleeper: ctx.thread.handle().raw(),
            seen: AtomicU64::new(0),
        };
        race_with(ctx, stack + RACER_STACK - 8, close_racer, &race, || drop(v))?;
    }
    // SAFETY: no thread runs on the stack any more.
    check!(unsafe { ctx.root.unmap(stack, RACER_STACK) });
    Ok(())
}

/// `NoAccumulatedOverflow`: offsets that add up past 2^64 through a chain of children are
/// INVALID_ARGS, at creation and at a resize.
fn clone2_no_accumulated_overflow(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(0, 0));
    let child1 = check!(v.create_child(SNAP, 0xffff_ffff_ffff_8000, 0));
    ensure_err!(
        child1.create_child(SNAP, 0x8000, 0),
        Status::ERR_INVALID_ARGS
    );
    let child2 = check!(child1.create_child(SNAP_RS, 0x4000, 0));
    ensure_err!(child2.set_size(0x8000), Status::ERR_INVALID_ARGS);
    Ok(())
}

/// `MarkerClearsSplitBits`: a page forked into a child and then zeroed there (a marker, not a
/// parent limit); after the child closes, a new child forks the same page again. Here the child
/// must also read zeros there after the ZERO.
fn clone2_marker_clears_split_bits(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(3 * P, 0));
    let val = 42u64.to_le_bytes();
    check!(v.write(&val, P));
    let child = check!(v.create_child(SNAP, 0, 3 * P));
    check!(child.write(&val, P));
    check!(child.op_range(ZX_VMO_OP_ZERO, P, P));
    // The zeroed page reads as zeros in the child (not a Zircon check), the original's stays.
    ensure_eq!((get(&child, P)?, get(&v, P)?), (0, 42));
    drop(child);
    let child = check!(v.create_child(SNAP, 0, 3 * P));
    check!(child.write(&val, P));
    // Both read 42 there.
    ensure_eq!((get(&v, P)?, get(&child, P)?), (42, 42));
    Ok(())
}

/// `MapRangeReadOnly`: a read-only MAP_RANGE mapping of a clone commits nothing in the clone, and
/// the parent's pages stay as they were.
fn clone2_map_range_read_only(ctx: &Ctx) -> TestResult {
    const PAGES: u64 = 5;
    let v = check!(Vmo::create(PAGES * P, 0));
    for i in 0..PAGES {
        check!(v.write(&77u64.to_le_bytes(), i * P));
    }
    ensure_eq!(check!(v.info()).populated_bytes, PAGES * P);
    let clone = check!(v.create_child(SNAP, 0, PAGES * P));
    let len = PAGES as usize * PAGE;
    let addr = check!(ctx
        .root
        .map(ZX_VM_MAP_RANGE | ZX_VM_PERM_READ, 0, &clone, 0, len));
    ensure_eq!(check!(clone.info()).populated_private_bytes, 0);
    ensure_eq!(check!(v.info()).populated_bytes, PAGES * P);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, len) });
    Ok(())
}

/// `DropParentCommittedBytes`: 1000 times, a child's populated bytes read by another thread while
/// its parent closes: either the shared page still split (3/2 pages) or all its own (2 pages),
/// never anything else; afterwards 2 pages and the child's data.
fn clone2_drop_parent_committed_bytes(ctx: &Ctx) -> TestResult {
    let stack_vmo = vmo(RACER_STACK / PAGE)?;
    let stack = check!(ctx.root.map(RW, 0, &stack_vmo, 0, RACER_STACK));
    let (split, no_split) = (3 * P / 2, 2 * P);
    for round in 0..1000 {
        let v = tagged(3)?;
        let child = check!(v.create_child(SNAP, P, 2 * P));
        ensure_eq!((get(&child, 0)?, get(&child, P)?), (2, 3));
        put(&child, 4, P)?;
        ensure_eq!(populated(&child)?, split);
        let race = Race {
            ready: AtomicBool::new(true),
            vmo: child.raw_handle(),
            sleeper: ctx.thread.handle().raw(),
            seen: AtomicU64::new(0),
        };
        race_with(ctx, stack + RACER_STACK - 8, info_racer, &race, || drop(v))?;
        let seen = race.seen.load(SeqCst);
        ensure!(
            seen == split || seen == no_split,
            "round {round}: the child's populated bytes read {seen} while its parent closed"
        );
        ensure_eq!((get(&child, 0)?, get(&child, P)?), (2, 4));
        ensure_eq!(populated(&child)?, no_split);
    }
    // SAFETY: no thread runs on the stack any more.
    check!(unsafe { ctx.root.unmap(stack, RACER_STACK) });
    Ok(())
}
