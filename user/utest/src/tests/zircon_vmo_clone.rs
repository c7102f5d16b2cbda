//! `zx_vmo_create_child`: Zircon's clone and slice core tests
//! (`zircon/system/utest/core/vmo/vmo-clone2.cc`, `vmo-slice.cc`), written anew, one test per
//! Zircon test, named after it (`VmoClone2TestCase.CloneVmoWrite` -> `clone2_clone_vmo_write`,
//! `VmoSliceTestCase.WriteThrough` -> `slice_write_through`), plus this kernel's own: the frames
//! back at the baseline (`zx_debug_kernel_stats`) and a protect of a copy-on-write mapping.
//!
//! The accounting tests (`ObjMemAccounting`, `Offset`, `OffsetTest2`, `OffsetProgressiveWrite`,
//! `Overflow`, `OutOfBounds`, `SmallClone`) expect current Zircon's attribution: a page shared by
//! several VMOs is divided equally among them (`populated_scaled_bytes`, with the fraction in
//! `populated_fractional_scaled_bytes`). Each also checks that the frames the kernel has in use
//! since the test began equal the committed scaled bytes of the test's VMOs added up: every
//! frame counted once.

use abi::info::vmo_flags::*;
use abi::info::{ScaledBytes, FRACTIONAL_BYTE};
use abi::kstats;
use abi::ops::*;
use abi::vm_options::ZX_VM_PERM_READ;
use abi::vmo_options::*;
use abi::Status;
use zx::Vmo;

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, Failure, TestResult};

tests!(
    clone2_info,
    clone2_read,
    clone2_clone_vmo_write,
    clone2_parent_vmo_write,
    clone2_clone_vmar_write,
    clone2_parent_vmar_write,
    clone2_close_original,
    clone2_close_clone,
    clone2_obj_mem_accounting,
    clone2_zero_page_write,
    clone2_split_page_closure,
    clone2_offset,
    clone2_offset_test2,
    clone2_offset_progressive_write,
    clone2_overflow,
    clone2_out_of_bounds,
    clone2_small_clone,
    slice_write_through,
    slice_decommit_parent,
    slice_nested,
    slice_non_slice,
    slice_non_resizable,
    slice_commit_child,
    slice_decommit_child,
    slice_zero_sized,
    slice_cow_page_source_through_slices,
    create_child_rights_and_statuses,
    child_takes_the_parent_name_through_a_handle_with_get_property,
    zero_children_signal_follows_the_children,
    cow_mapping_protect_keeps_the_copy_private,
    frames_back_at_baseline,
);

pub(super) const SNAP: u32 = ZX_VMO_CHILD_SNAPSHOT;
pub(super) const P: u64 = PAGE as u64;

/// Zircon's `VmoWrite`: a u32 at `offset`.
pub(super) fn put(v: &Vmo, data: u32, offset: u64) -> TestResult {
    check!(v.write(&data.to_le_bytes(), offset));
    Ok(())
}

/// Zircon's `VmoCheck`: the u32 at `offset`.
pub(super) fn get(v: &Vmo, offset: u64) -> Result<u32, Failure> {
    let mut b = [0u8; 4];
    check!(v.read(&mut b, offset));
    Ok(u32::from_le_bytes(b))
}

/// Zircon's `InitPageTaggedVmo`: `pages` pages, page `i` starting with `i + 1`.
pub(super) fn tagged(pages: u64) -> Result<Vmo, Failure> {
    let v = check!(Vmo::create(pages * P, 0));
    for i in 0..pages {
        put(&v, i as u32 + 1, i * P)?;
    }
    Ok(v)
}

/// Zircon's `VmoPopulatedBytes` as its attribution tests use it: the populated bytes with each
/// shared page divided among the VMOs sharing it (`populated_scaled_bytes`).
pub(super) fn populated(v: &Vmo) -> Result<u64, Failure> {
    Ok(check!(v.info()).populated_scaled_bytes)
}

/// Zircon's `VmoPopulatedFractionalBytes`: the fraction of a byte of [`populated`].
fn populated_fraction(v: &Vmo) -> Result<u64, Failure> {
    Ok(check!(v.info()).populated_fractional_scaled_bytes)
}

/// The kernel's frames in use when a test began (`zx::leak_check_stats`: the heap's frames
/// count as free, so only frames given out for other uses, here VMO pages, count as used).
pub(super) struct FramesAtStart(u64);

impl FramesAtStart {
    pub(super) fn now() -> Result<FramesAtStart, Failure> {
        Ok(FramesAtStart(
            check!(zx::leak_check_stats())[kstats::FREE_FRAMES],
        ))
    }

    /// The frames used since the start, in bytes, equal the committed scaled bytes of `vmos`
    /// (every VMO of the test still open) added up, fractions included: a frame shared by
    /// several VMOs counts once in all.
    pub(super) fn equal_scaled_sum_of(&self, vmos: &[&Vmo]) -> TestResult {
        let mut sum = ScaledBytes::default();
        for v in vmos {
            sum = sum + check!(v.info()).committed_scaled();
        }
        let free = check!(zx::leak_check_stats())[kstats::FREE_FRAMES];
        let used = (self.0 as i64 - free as i64) * P as i64;
        ensure_eq!(sum.round() as i64, used);
        Ok(())
    }
}

/// `Info`: koids, the clone's parent koid, and the flags.
fn clone2_info(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    let orig = check!(v.info());
    let clone = check!(v.create_child(SNAP, 0, P));
    let new = check!(v.info());
    let ci = check!(clone.info());
    ensure_eq!(orig.koid, new.koid);
    ensure!(orig.koid != ci.koid);
    ensure_eq!(ci.parent_koid, orig.koid);
    ensure_eq!(new.num_children, 1);
    let original = ZX_INFO_VMO_TYPE_PAGED | ZX_INFO_VMO_VIA_HANDLE;
    ensure_eq!(orig.flags, original);
    ensure_eq!(new.flags, original);
    ensure_eq!(ci.flags, original | ZX_INFO_VMO_IS_COW_CLONE);
    Ok(())
}

/// `Read`: the clone reads the parent's data.
fn clone2_read(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    put(&v, 0xdeadbeef, 0)?;
    let clone = check!(v.create_child(SNAP, 0, P));
    ensure_eq!(get(&v, 0)?, 0xdeadbeef);
    ensure_eq!(get(&clone, 0)?, 0xdeadbeef);
    Ok(())
}

/// `VmoWriteTestHelper`: a zx_vmo_write into one side is not seen by the other.
fn vmo_write_helper(clone_write: bool) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    put(&v, 0xdeadbeef, 0)?;
    let clone = check!(v.create_child(SNAP, 0, P));
    put(if clone_write { &clone } else { &v }, 0xc0ffee, 0)?;
    let (old, new) = (0xdeadbeef, 0xc0ffee);
    ensure_eq!(get(&v, 0)?, if clone_write { old } else { new });
    ensure_eq!(get(&clone, 0)?, if clone_write { new } else { old });
    Ok(())
}

/// `CloneVmoWrite`.
fn clone2_clone_vmo_write(_: &Ctx) -> TestResult {
    vmo_write_helper(true)
}

/// `ParentVmoWrite`.
fn clone2_parent_vmo_write(_: &Ctx) -> TestResult {
    vmo_write_helper(false)
}

/// `VmarWriteTestHelper`: a store through one side's mapping is not seen by the other's.
fn vmar_write_helper(ctx: &Ctx, clone_write: bool) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    let vm = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    poke(vm, 0xdeadbeef);
    let clone = check!(v.create_child(SNAP, 0, P));
    let cm = check!(ctx.root.map(RW, 0, &clone, 0, PAGE));
    poke(if clone_write { cm } else { vm }, 0xc0ffee);
    let (old, new) = (0xdeadbeef, 0xc0ffee);
    ensure_eq!(peek(vm), if clone_write { old } else { new });
    ensure_eq!(peek(cm), if clone_write { new } else { old });
    // SAFETY: nothing refers to the mappings any more.
    unsafe {
        check!(ctx.root.unmap(vm, PAGE));
        check!(ctx.root.unmap(cm, PAGE));
    }
    Ok(())
}

/// `CloneVmarWrite`.
fn clone2_clone_vmar_write(ctx: &Ctx) -> TestResult {
    vmar_write_helper(ctx, true)
}

/// `ParentVmarWrite`.
fn clone2_parent_vmar_write(ctx: &Ctx) -> TestResult {
    vmar_write_helper(ctx, false)
}

/// `CloseTestHelper`: closing one side leaves the other's data.
fn close_helper(close_orig: bool) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    put(&v, 0xdeadbeef, 0)?;
    let clone = check!(v.create_child(SNAP, 0, P));
    let kept = if close_orig {
        drop(v);
        clone
    } else {
        drop(clone);
        v
    };
    ensure_eq!(get(&kept, 0)?, 0xdeadbeef);
    Ok(())
}

/// `CloseOriginal`.
fn clone2_close_original(_: &Ctx) -> TestResult {
    close_helper(true)
}

/// `CloseClone`.
fn clone2_close_clone(_: &Ctx) -> TestResult {
    close_helper(false)
}

/// `ObjMemAccounting`: the original and the clone split the shared pages equally; each fork
/// moves half a page's attribution back to each side.
fn clone2_obj_mem_accounting(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = check!(Vmo::create(2 * P, 0));
    put(&v, 1, 0)?;
    put(&v, 1, P)?;
    ensure_eq!(populated(&v)?, 2 * P);
    let clone = check!(v.create_child(SNAP, 0, 2 * P));
    // 1/2 + 1/2 each.
    ensure_eq!((populated(&v)?, populated(&clone)?), (P, P));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    // A write to the original forks its page: 1 + 1/2 each.
    put(&v, 2, 0)?;
    ensure_eq!((populated(&v)?, populated(&clone)?), (3 * P / 2, 3 * P / 2));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    // A write to the clone forks the other page: 1 + 1 each.
    put(&clone, 2, P)?;
    ensure_eq!((populated(&v)?, populated(&clone)?), (2 * P, 2 * P));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    // Writes to pages already forked change nothing.
    put(&v, 2, P)?;
    put(&clone, 2, 0)?;
    ensure_eq!((populated(&v)?, populated(&clone)?), (2 * P, 2 * P));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    Ok(())
}

/// `ZeroPageWrite`: clones of a never-written VMO; each write commits a page in its VMO only.
fn clone2_zero_page_write(_: &Ctx) -> TestResult {
    let v0 = check!(Vmo::create(P, 0));
    let v1 = check!(v0.create_child(SNAP, 0, P));
    let v2 = check!(v0.create_child(SNAP, 0, P));
    let v3 = check!(v1.create_child(SNAP, 0, P));
    let vmos = [v0, v1, v2, v3];
    for i in 0..4 {
        put(&vmos[i], i as u32 + 1, 0)?;
        for (j, v) in vmos.iter().enumerate() {
            ensure_eq!(get(v, 0)?, if j <= i { j as u32 + 1 } else { 0 });
            ensure_eq!(populated(v)?, if j <= i { P } else { 0 });
        }
    }
    Ok(())
}

/// `SplitPageClosure`: a chain of clones, the page forked into both; closing the original and
/// then the first clone leaves the data and one page each.
fn clone2_split_page_closure(_: &Ctx) -> TestResult {
    let v = tagged(1)?;
    let clone1 = check!(v.create_child(SNAP, 0, P));
    let clone2 = check!(clone1.create_child(SNAP, 0, P));
    put(&clone1, 3, 0)?;
    put(&clone2, 4, 0)?;
    ensure_eq!(
        (populated(&v)?, populated(&clone1)?, populated(&clone2)?),
        (P, P, P)
    );
    drop(v);
    ensure_eq!((get(&clone1, 0)?, get(&clone2, 0)?), (3, 4));
    ensure_eq!((populated(&clone1)?, populated(&clone2)?), (P, P));
    drop(clone1);
    ensure_eq!(get(&clone2, 0)?, 4);
    ensure_eq!(populated(&clone2)?, P);
    Ok(())
}

/// `Offset`: a clone at an offset reaching past the parent's end reads the right pages and
/// zeros, shares two of the parent's pages (1 + 1/2 + 1/2 for the parent, 1/2 + 1/2 for the
/// clone); after the parent closes it keeps only what it can see (2 pages).
fn clone2_offset(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = tagged(3)?;
    let clone = check!(v.create_child(SNAP, P, 3 * P));
    ensure_eq!((populated(&v)?, populated(&clone)?), (2 * P, P));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    ensure_eq!(
        (get(&clone, 0)?, get(&clone, P)?, get(&clone, 2 * P)?),
        (2, 3, 0)
    );
    put(&clone, 4, P)?;
    drop(v);
    ensure_eq!(
        (get(&clone, 0)?, get(&clone, P)?, get(&clone, 2 * P)?),
        (2, 4, 0)
    );
    ensure_eq!(populated(&clone)?, 2 * P);
    start.equal_scaled_sum_of(&[&clone])?;
    Ok(())
}

/// `OffsetTest2`: two clones dividing an offset clone, which is then written and closed; the
/// original and the clones split what they share.
fn clone2_offset_test2(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = tagged(4)?;
    let offset_clone = check!(v.create_child(SNAP, P, 3 * P));
    let clone1 = check!(offset_clone.create_child(SNAP, 0, 2 * P));
    let clone2 = check!(offset_clone.create_child(SNAP, 2 * P, P));
    ensure_eq!(
        (get(&clone1, 0)?, get(&clone1, P)?, get(&clone2, 0)?),
        (2, 3, 4)
    );
    put(&offset_clone, 4, P)?;
    drop(offset_clone);
    ensure_eq!(
        (get(&clone1, 0)?, get(&clone1, P)?, get(&clone2, 0)?),
        (2, 3, 4)
    );
    ensure_eq!(get(&v, P)?, 2);
    // 1 + 1/2 + 1/2 + 1/2 for the original, 1/2 + 1/2 and 1/2 for the clones.
    ensure_eq!(
        (populated(&v)?, populated(&clone1)?, populated(&clone2)?),
        (5 * P / 2, P, P / 2)
    );
    start.equal_scaled_sum_of(&[&v, &clone1, &clone2])?;
    drop(clone1);
    ensure_eq!((populated(&v)?, populated(&clone2)?), (7 * P / 2, P / 2));
    start.equal_scaled_sum_of(&[&v, &clone2])?;
    drop(clone2);
    ensure_eq!(populated(&v)?, 4 * P);
    start.equal_scaled_sum_of(&[&v])?;
    Ok(())
}

/// `OffsetProgressiveWrite`: writes to an offset clone that has a clone of its own; a page the
/// clone's clone cannot see is written in place.
fn clone2_offset_progressive_write(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = tagged(2)?;
    let clone = check!(v.create_child(SNAP, P, 2 * P));
    ensure_eq!(get(&clone, 0)?, 2);
    put(&clone, 3, 0)?;
    ensure_eq!((get(&clone, 0)?, get(&v, 0)?, get(&v, P)?), (3, 1, 2));
    // 1 + 1 for the original, 1 + 0 for the clone.
    ensure_eq!((populated(&v)?, populated(&clone)?), (2 * P, P));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    let clone2 = check!(clone.create_child(SNAP, P, P));
    put(&clone, 4, 0)?;
    ensure_eq!(
        (populated(&v)?, populated(&clone)?, populated(&clone2)?),
        (2 * P, P, 0)
    );
    start.equal_scaled_sum_of(&[&v, &clone, &clone2])?;
    drop(v);
    ensure_eq!(get(&clone, 0)?, 4);
    drop(clone2);
    ensure_eq!(get(&clone, 0)?, 4);
    ensure_eq!(populated(&clone)?, P);
    start.equal_scaled_sum_of(&[&clone])?;
    Ok(())
}

/// `Overflow`: a clone of a clone that reaches past both: a page seen by three VMOs is a third
/// each (the byte left over spread as a third of a byte in each fraction).
fn clone2_overflow(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let third_byte = FRACTIONAL_BYTE / 3;
    let v = tagged(1)?;
    let clone = check!(v.create_child(SNAP, 0, 2 * P));
    ensure_eq!((get(&clone, 0)?, get(&clone, P)?), (1, 0));
    ensure_eq!((populated(&v)?, populated(&clone)?), (P / 2, P / 2));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    put(&clone, 2, P)?;
    let clone2 = check!(clone.create_child(SNAP, 0, 3 * P));
    ensure_eq!(
        (get(&clone2, 0)?, get(&clone2, P)?, get(&clone2, 2 * P)?),
        (1, 2, 0)
    );
    // 1/3 for the original, 1/3 + 1/2 for each clone; a third of a byte in every fraction.
    ensure_eq!(
        (populated(&v)?, populated(&clone)?, populated(&clone2)?),
        (P / 3, 5 * P / 6, 5 * P / 6)
    );
    for x in [&v, &clone, &clone2] {
        ensure_eq!(populated_fraction(x)?, third_byte);
    }
    start.equal_scaled_sum_of(&[&v, &clone, &clone2])?;
    put(&clone2, 3, 2 * P)?;
    ensure_eq!(get(&clone2, 2 * P)?, 3);
    ensure_eq!(
        (populated(&v)?, populated(&clone)?, populated(&clone2)?),
        (P / 3, 5 * P / 6, 11 * P / 6)
    );
    for x in [&v, &clone, &clone2] {
        ensure_eq!(populated_fraction(x)?, third_byte);
    }
    start.equal_scaled_sum_of(&[&v, &clone, &clone2])?;
    // Fork the rest of the second clone.
    put(&clone2, 4, 0)?;
    put(&clone2, 5, P)?;
    ensure_eq!((get(&v, 0)?, get(&clone, 0)?, get(&clone, P)?), (1, 1, 2));
    ensure_eq!(
        (get(&clone2, 0)?, get(&clone2, P)?, get(&clone2, 2 * P)?),
        (4, 5, 3)
    );
    ensure_eq!(
        (populated(&v)?, populated(&clone)?, populated(&clone2)?),
        (P / 2, 3 * P / 2, 3 * P)
    );
    start.equal_scaled_sum_of(&[&v, &clone, &clone2])?;
    drop(clone);
    ensure_eq!(get(&v, 0)?, 1);
    ensure_eq!(
        (get(&clone2, 0)?, get(&clone2, P)?, get(&clone2, 2 * P)?),
        (4, 5, 3)
    );
    ensure_eq!((populated(&v)?, populated(&clone2)?), (P, 3 * P));
    start.equal_scaled_sum_of(&[&v, &clone2])?;
    Ok(())
}

/// `OutOfBounds`: a clone wholly past its parent's end sees nothing of it; its own page is
/// shared with its clone.
fn clone2_out_of_bounds(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = tagged(1)?;
    let clone = check!(v.create_child(SNAP, 2 * P, 2 * P));
    ensure_eq!((get(&clone, 0)?, get(&clone, P)?), (0, 0));
    ensure_eq!((populated(&v)?, populated(&clone)?), (P, 0));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    put(&clone, 2, P)?;
    let clone2 = check!(clone.create_child(SNAP, 0, 3 * P));
    ensure_eq!(
        (get(&clone2, 0)?, get(&clone2, P)?, get(&clone2, 2 * P)?),
        (0, 2, 0)
    );
    ensure_eq!(
        (populated(&v)?, populated(&clone)?, populated(&clone2)?),
        (P, P / 2, P / 2)
    );
    start.equal_scaled_sum_of(&[&v, &clone, &clone2])?;
    put(&clone2, 3, 2 * P)?;
    ensure_eq!(get(&clone2, 2 * P)?, 3);
    ensure_eq!(
        (populated(&v)?, populated(&clone)?, populated(&clone2)?),
        (P, P / 2, 3 * P / 2)
    );
    start.equal_scaled_sum_of(&[&v, &clone, &clone2])?;
    Ok(())
}

/// `SmallClone`: a one-page clone shares only that page; writes to the parent elsewhere take no
/// frame; once the parent closes the clone holds its page alone.
fn clone2_small_clone(_: &Ctx) -> TestResult {
    let start = FramesAtStart::now()?;
    let v = tagged(3)?;
    let clone = check!(v.create_child(SNAP, P, P));
    ensure_eq!(get(&clone, 0)?, 2);
    ensure_eq!((populated(&v)?, populated(&clone)?), (5 * P / 2, P / 2));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    put(&v, 4, 0)?;
    put(&v, 5, 2 * P)?;
    ensure_eq!((populated(&v)?, populated(&clone)?), (5 * P / 2, P / 2));
    start.equal_scaled_sum_of(&[&v, &clone])?;
    drop(v);
    ensure_eq!(get(&clone, 0)?, 2);
    ensure_eq!(populated(&clone)?, P);
    start.equal_scaled_sum_of(&[&clone])?;
    Ok(())
}

/// `VmoSliceTestCase.WriteThrough`.
fn slice_write_through(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4 * P, 0));
    put(&v, 42, 0)?;
    put(&v, 42, P)?;
    let s = check!(v.create_child(ZX_VMO_CHILD_SLICE, P, 2 * P));
    ensure_eq!(get(&s, 0)?, 42);
    put(&s, 84, 0)?;
    put(&s, 84, P)?;
    ensure_eq!(
        (get(&v, 0)?, get(&v, P)?, get(&v, 2 * P)?, get(&v, 3 * P)?),
        (42, 84, 84, 0)
    );
    Ok(())
}

/// `VmoSliceTestCase.DecommitParent`.
fn slice_decommit_parent(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    put(&v, 42, 0)?;
    let s = check!(v.create_child(ZX_VMO_CHILD_SLICE, 0, P));
    ensure_eq!(get(&s, 0)?, 42);
    check!(v.op_range(ZX_VMO_OP_DECOMMIT, 0, P));
    ensure_eq!(get(&s, 0)?, 0);
    Ok(())
}

/// `VmoSliceTestCase.Nested`.
fn slice_nested(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(2 * P, 0));
    put(&v, 42, 0)?;
    let s = check!(v.create_child(ZX_VMO_CHILD_SLICE, 0, 2 * P));
    let ss = check!(s.create_child(ZX_VMO_CHILD_SLICE, 0, 2 * P));
    ensure_eq!(get(&ss, 0)?, 42);
    put(&ss, 84, 0)?;
    put(&ss, 84, P)?;
    ensure_eq!((get(&v, 0)?, get(&v, P)?), (84, 84));
    Ok(())
}

/// `VmoSliceTestCase.NonSlice`: windows not inside the parent.
fn slice_non_slice(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(2 * P, ZX_VMO_RESIZABLE));
    let sl = ZX_VMO_CHILD_SLICE;
    let inval = Status::ERR_INVALID_ARGS;
    let oor = Status::ERR_OUT_OF_RANGE;
    ensure_err!(v.create_child(sl, 0, 3 * P), inval);
    ensure_err!(v.create_child(sl, P, 2 * P), inval);
    ensure_err!(v.create_child(sl, 2 * P, P), inval);
    ensure_err!(v.create_child(sl, 0, u64::MAX), oor);
    let nearly = u64::MAX - P + 1;
    ensure_err!(v.create_child(sl, 0, nearly), oor);
    ensure_err!(v.create_child(sl, nearly, P), inval);
    ensure_err!(v.create_child(sl, nearly, nearly), oor);
    ensure_err!(v.create_child(sl, nearly, u64::MAX), oor);
    Ok(())
}

/// `VmoSliceTestCase.NonResizable`.
fn slice_non_resizable(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, ZX_VMO_RESIZABLE));
    let sl = ZX_VMO_CHILD_SLICE;
    ensure_err!(v.create_child(sl, 0, P), Status::ERR_NOT_SUPPORTED);
    let rs = sl | ZX_VMO_CHILD_RESIZABLE;
    ensure_err!(v.create_child(rs, 0, P), Status::ERR_INVALID_ARGS);
    let fixed = check!(Vmo::create(P, 0));
    ensure_err!(fixed.create_child(rs, 0, P), Status::ERR_INVALID_ARGS);
    Ok(())
}

/// `VmoSliceTestCase.CommitChild`.
fn slice_commit_child(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    let s = check!(v.create_child(ZX_VMO_CHILD_SLICE, 0, P));
    check!(s.op_range(ZX_VMO_OP_COMMIT, 0, P));
    // The commit lands in the parent.
    ensure_eq!(populated(&v)?, P);
    put(&s, 42, 0)?;
    ensure_eq!(get(&v, 0)?, 42);
    Ok(())
}

/// `VmoSliceTestCase.DecommitChild`.
fn slice_decommit_child(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    put(&v, 42, 0)?;
    let s = check!(v.create_child(ZX_VMO_CHILD_SLICE, 0, P));
    check!(s.op_range(ZX_VMO_OP_DECOMMIT, 0, P));
    ensure_eq!(get(&v, 0)?, 0);
    Ok(())
}

/// `VmoSliceTestCase.ZeroSized`.
fn slice_zero_sized(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    let s1 = check!(v.create_child(ZX_VMO_CHILD_SLICE, 0, 0));
    let s2 = check!(v.create_child(ZX_VMO_CHILD_SLICE, P, 0));
    let mut b = [42u8];
    for s in [&s1, &s2] {
        ensure_err!(s.read(&mut b, 0), Status::ERR_OUT_OF_RANGE);
        ensure_err!(s.write(&b, 0), Status::ERR_OUT_OF_RANGE);
    }
    Ok(())
}

/// `VmoSliceTestCase.CowPageSourceThroughSlices`: a snapshot of a slice (of a snapshot) is
/// NOT_SUPPORTED.
fn slice_cow_page_source_through_slices(_: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    check!(v.op_range(ZX_VMO_OP_COMMIT, 0, P));
    let cow = check!(v.create_child(SNAP, 0, P));
    let s = check!(cow.create_child(ZX_VMO_CHILD_SLICE, 0, P));
    ensure_err!(s.create_child(SNAP, 0, P), Status::ERR_NOT_SUPPORTED);
    ensure_err!(
        s.create_child(ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE, 0, P),
        Status::ERR_NOT_SUPPORTED
    );
    Ok(())
}

/// `sys_vmo_create_child`'s own checks: NO_WRITE with RESIZABLE, the DUPLICATE and READ rights,
/// the child's rights (NO_WRITE takes WRITE; a snapshot of a read-only handle gets WRITE).
fn create_child_rights_and_statuses(_: &Ctx) -> TestResult {
    use abi::rights::*;
    let v = check!(Vmo::create(P, 0));
    let nw = SNAP | ZX_VMO_CHILD_NO_WRITE;
    ensure_err!(
        v.create_child(nw | ZX_VMO_CHILD_RESIZABLE, 0, P),
        Status::ERR_INVALID_ARGS
    );
    let no_dup = check!(v.duplicate(ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_MAP));
    ensure_err!(no_dup.create_child(SNAP, 0, P), Status::ERR_ACCESS_DENIED);
    let no_read = check!(v.duplicate(ZX_RIGHT_DUPLICATE | ZX_RIGHT_WRITE));
    ensure_err!(no_read.create_child(SNAP, 0, P), Status::ERR_ACCESS_DENIED);
    let c = check!(v.create_child(nw, 0, P));
    ensure_eq!(check!(c.info()).handle_rights & ZX_RIGHT_WRITE, 0);
    ensure_err!(c.write(&[1], 0), Status::ERR_ACCESS_DENIED);
    let ro = check!(v.duplicate(ZX_RIGHT_DUPLICATE | ZX_RIGHT_READ | ZX_RIGHT_MAP));
    let c = check!(ro.create_child(SNAP, 0, P));
    check!(c.write(&[1], 0));
    // The parent is not written.
    ensure_eq!(get(&v, 0)?, 0);
    Ok(())
}

/// A copy-on-write mapping made read-only and writable again (`zx_vmar_protect`) still copies on
/// its first write: the parent never sees the child's store.
/// Zircon's `sys_vmo_create_child` passes `copy_name` = the parent handle's GET_PROPERTY: the
/// child starts with the parent's name, or unnamed through a handle that may not read it.
fn child_takes_the_parent_name_through_a_handle_with_get_property(_: &Ctx) -> TestResult {
    use abi::props::ZX_PROP_NAME;
    use abi::rights::{ZX_RIGHT_DUPLICATE, ZX_RIGHT_READ};
    let parent = check!(Vmo::create(P, 0));
    check!(parent.handle().set_property(ZX_PROP_NAME, b"parent"));
    let mut name = [0xffu8; 32];
    for options in [SNAP, ZX_VMO_CHILD_SLICE] {
        let child = check!(parent.create_child(options, 0, P));
        check!(child.handle().get_property(ZX_PROP_NAME, &mut name));
        ensure!(
            &name[..7] == b"parent\0",
            "a child ({options:#x}) did not take its parent's name: {name:?}"
        );
    }
    let unreadable = Vmo::from(check!(parent
        .handle()
        .duplicate(ZX_RIGHT_DUPLICATE | ZX_RIGHT_READ)));
    let child = check!(unreadable.create_child(SNAP, 0, P));
    check!(child.handle().get_property(ZX_PROP_NAME, &mut name));
    ensure!(
        name == [0u8; 32],
        "a child made through a handle without GET_PROPERTY took the name: {name:?}"
    );
    Ok(())
}

/// `ZX_VMO_ZERO_CHILDREN` is asserted while a VMO has no child: deasserted by a snapshot or a
/// slice, asserted again when the last one goes (Zircon's vmo-clone and slice tests wait on it).
fn zero_children_signal_follows_the_children(_: &Ctx) -> TestResult {
    use abi::signals::ZX_VMO_ZERO_CHILDREN;
    let past = 0;
    let parent = check!(Vmo::create(2 * P, 0));
    let zero = |v: &Vmo| v.handle().wait_one(ZX_VMO_ZERO_CHILDREN, past);
    ensure_eq!(
        check!(zero(&parent)) & ZX_VMO_ZERO_CHILDREN,
        ZX_VMO_ZERO_CHILDREN
    );
    let snap = check!(parent.create_child(SNAP, 0, P));
    let slice = check!(parent.create_child(ZX_VMO_CHILD_SLICE, 0, P));
    ensure_err!(zero(&parent), Status::ERR_TIMED_OUT);
    // A child has no children of its own.
    ensure_eq!(
        check!(zero(&snap)) & ZX_VMO_ZERO_CHILDREN,
        ZX_VMO_ZERO_CHILDREN
    );
    drop(snap);
    ensure_err!(zero(&parent), Status::ERR_TIMED_OUT);
    drop(slice);
    ensure_eq!(
        check!(zero(&parent)) & ZX_VMO_ZERO_CHILDREN,
        ZX_VMO_ZERO_CHILDREN
    );
    Ok(())
}

fn cow_mapping_protect_keeps_the_copy_private(ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(P, 0));
    put(&v, 5, 0)?;
    let c = check!(v.create_child(SNAP, 0, P));
    let cm = check!(ctx.root.map(RW, 0, &c, 0, PAGE));
    ensure_eq!(peek(cm), 5);
    // SAFETY: (whole block) the mapping is ours and nothing else refers to it.
    unsafe {
        check!(ctx.root.protect(ZX_VM_PERM_READ, cm, PAGE));
        check!(ctx.root.protect(RW, cm, PAGE));
    }
    poke(cm, 6);
    ensure_eq!((get(&v, 0)?, get(&c, 0)?), (5, 6));
    // SAFETY: nothing refers to the mapping any more.
    check!(unsafe { ctx.root.unmap(cm, PAGE) });
    Ok(())
}

/// Parents, children, grandchildren and slices, written, mapped and closed in both orders:
/// afterwards the kernel's free frames (heap frames counted as free) are where they were.
fn frames_back_at_baseline(ctx: &Ctx) -> TestResult {
    let round = |parent_first: bool| -> TestResult {
        let v = tagged(8)?;
        let c = check!(v.create_child(SNAP, 0, 8 * P));
        let g = check!(c.create_child(SNAP, 2 * P, 4 * P));
        let s = check!(v.create_child(ZX_VMO_CHILD_SLICE, 0, 4 * P));
        let m = check!(ctx.root.map(RW, 0, &c, 0, 8 * PAGE));
        for i in 0..8 {
            poke(m + i * PAGE, 100 + i as u64);
        }
        put(&g, 7, 0)?;
        put(&s, 9, P)?;
        // SAFETY: nothing refers to the mapping any more.
        check!(unsafe { ctx.root.unmap(m, 8 * PAGE) });
        if parent_first {
            drop((v, s));
            drop(c);
            drop(g);
        } else {
            drop(g);
            drop(c);
            drop((s, v));
        }
        Ok(())
    };
    // A first round lets the kernel heap reach its working size.
    round(true)?;
    let before = check!(zx::leak_check_stats());
    round(true)?;
    round(false)?;
    let after = check!(zx::leak_check_stats());
    ensure_eq!(after[kstats::FREE_FRAMES], before[kstats::FREE_FRAMES]);
    Ok(())
}
