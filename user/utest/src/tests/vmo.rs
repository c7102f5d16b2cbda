//! VMOs: create, read, write, sizes, op_range, and their errors; the rights and resizability of
//! their children (the `create_child` cases of Zircon's `vmo.cc`).

use abi::ops::*;
use abi::props::ZX_PROP_VMO_CONTENT_SIZE;
use abi::rights::*;
use abi::syscall_numbers as nr;
use abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_SPECIFIC};
use abi::vmo_options::{ZX_VMO_DISCARDABLE, ZX_VMO_RESIZABLE};
use abi::Status;
use alloc::vec;
use alloc::vec::Vec;
use zx::raw::{syscall3, syscall4};
use zx::Vmo;

use super::util::{poke, region, vmo, CAN_RWS, RW};
use super::PAGE;
use crate::harness::{Ctx, Failure, TestResult};

tests!(
    create_read_write,
    zero_size,
    sizes_round_up,
    read_write_out_of_range,
    create_errors,
    set_size_resizable,
    set_size_not_resizable,
    set_size_rights_before_resizability,
    set_size_zeroes_the_last_page_tail,
    commit_decommit,
    decommit_misaligned,
    zero_op_zeroes_exactly_the_range,
    lock_ops_on_a_plain_vmo_are_not_supported,
    lock_ops_on_a_discardable_vmo,
    content_size,
    content_size_set_needs_write_and_zeroes_past_it,
    cache_ops_check_rights_and_range,
    cache_ops_on_a_huge_sparse_vmo,
    prefetch_checks_read_and_range,
    op_range_errors,
    bad_handles,
    bad_user_pointers,
    rights_enforced,
    buffers_running_into_bad_pages,
    copy_on_write_break_copies_every_byte,
    child_resize_right,
    no_write_resizable,
    decommit_child_slice_tests,
    child_rights_follow_the_parent_handle,
    discardable_vmo_has_no_children,
);

/// ZIRCON (core test `VmoTestCase.DecommitMisaligned`): an unaligned DECOMMIT is INVALID_ARGS,
/// with nothing committed and with the pages committed, and every byte and committed page stays;
/// the range is checked first; a zero length has nothing to align.
fn decommit_misaligned(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(2 * PAGE as u64, 0));
    let p = PAGE as u64;
    ensure_err!(
        vmo.op_range(ZX_VMO_OP_DECOMMIT, 0x10, 0x100),
        Status::ERR_INVALID_ARGS
    );
    let mut fill = [0u8; 2 * PAGE];
    for (i, b) in fill.iter_mut().enumerate() {
        *b = (i % 251) as u8 + 1;
    }
    check!(vmo.write(&fill, 0));
    check!(vmo.op_range(ZX_VMO_OP_COMMIT, 0x10, 0x100));
    for (off, len) in [(0x10, 0x100), (0, p + 1), (1, p), (p, 1), (p - 1, 2)] {
        ensure_err!(
            vmo.op_range(ZX_VMO_OP_DECOMMIT, off, len),
            Status::ERR_INVALID_ARGS
        );
    }
    // A zero length has nothing to align (Zircon's zero-length shortcut comes first).
    check!(vmo.op_range(ZX_VMO_OP_DECOMMIT, 100, 0));
    ensure_err!(
        vmo.op_range(ZX_VMO_OP_DECOMMIT, 1, 3 * p),
        Status::ERR_OUT_OF_RANGE
    );
    ensure_eq!(check!(vmo.info()).committed_bytes, 2 * p);
    let mut back = [0u8; 2 * PAGE];
    check!(vmo.read(&mut back, 0));
    ensure!(back == fill);
    check!(vmo.op_range(ZX_VMO_OP_DECOMMIT, p, p));
    check!(vmo.read(&mut back, 0));
    ensure!(back[..PAGE] == fill[..PAGE]);
    ensure!(back[PAGE..].iter().all(|&b| b == 0));
    Ok(())
}

/// `ZX_PROP_VMO_CONTENT_SIZE` through `zx_object_get/set_property`.
fn prop(vmo: &Vmo, set: Option<u64>) -> Result<u64, Status> {
    let mut v = set.unwrap_or(42).to_le_bytes();
    let number = if set.is_some() {
        nr::ZX_SYS_OBJECT_SET_PROPERTY
    } else {
        nr::ZX_SYS_OBJECT_GET_PROPERTY
    };
    // SAFETY: `v` is valid for its 8 bytes, read or written by the kernel.
    let r = unsafe {
        syscall4(
            number,
            vmo.raw_handle() as usize,
            abi::props::ZX_PROP_VMO_CONTENT_SIZE as usize,
            v.as_mut_ptr() as usize,
            v.len(),
        )
    };
    match Status::from_raw(r as u32 as i32) {
        Status::OK => Ok(u64::from_le_bytes(v)),
        e => Err(e),
    }
}

/// ZIRCON (core test `VmoTestCase.ContentSize`): the creation size, what is set (past the end
/// too), then the size of the last resize, unrounded.
fn content_size(_ctx: &Ctx) -> TestResult {
    let len = 4 * PAGE as u64;
    let vmo = check!(Vmo::create(len, ZX_VMO_RESIZABLE));
    ensure_eq!(prop(&vmo, None), Ok(len));
    ensure_eq!(prop(&vmo, Some(len / 3)).map(drop), Ok(()));
    ensure_eq!(prop(&vmo, None), Ok(len / 3));
    ensure_eq!(prop(&vmo, Some(len + 15643)).map(drop), Ok(()));
    ensure_eq!(prop(&vmo, None), Ok(len + 15643));
    check!(vmo.set_size(5461));
    ensure_eq!(prop(&vmo, None), Ok(5461));
    Ok(())
}

fn create_read_write(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(3 * PAGE as u64, 0));
    check!(vmo.write(b"hello", 10));
    check!(vmo.write(b"world", 2 * PAGE as u64 - 2)); // straddles a page boundary
    let mut buf = [0u8; 5];
    check!(vmo.read(&mut buf, 10));
    ensure_eq!(&buf, b"hello");
    check!(vmo.read(&mut buf, 2 * PAGE as u64 - 2));
    ensure_eq!(&buf, b"world");
    // Never-written pages read as zero.
    let mut zero = [0xffu8; 64];
    check!(vmo.read(&mut zero, 2 * PAGE as u64 + 100));
    ensure!(zero.iter().all(|&b| b == 0));
    Ok(())
}

fn zero_size(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(0, 0));
    ensure_eq!(check!(vmo.get_size()), 0);
    ensure_err!(vmo.write(b"x", 0), Status::ERR_OUT_OF_RANGE);
    Ok(())
}

fn sizes_round_up(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(1, 0));
    ensure_eq!(check!(vmo.get_size()), PAGE as u64);
    Ok(())
}

fn read_write_out_of_range(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(PAGE as u64, 0));
    let mut buf = [0u8; 16];
    ensure_err!(
        vmo.read(&mut buf, PAGE as u64 - 8),
        Status::ERR_OUT_OF_RANGE
    );
    ensure_err!(vmo.write(&buf, PAGE as u64), Status::ERR_OUT_OF_RANGE);
    ensure_err!(vmo.read(&mut buf, u64::MAX - 4), Status::ERR_OUT_OF_RANGE);
    // Zero-length accesses at the end are fine.
    check!(vmo.read(&mut [], PAGE as u64));
    Ok(())
}

fn create_errors(_ctx: &Ctx) -> TestResult {
    ensure_err!(Vmo::create(u64::MAX, 0), Status::ERR_OUT_OF_RANGE);
    ensure_err!(Vmo::create(PAGE as u64, 1 << 30), Status::ERR_INVALID_ARGS);
    Ok(())
}

fn set_size_resizable(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(PAGE as u64, ZX_VMO_RESIZABLE));
    check!(vmo.write(b"keep", 0));
    check!(vmo.set_size(4 * PAGE as u64));
    ensure_eq!(check!(vmo.get_size()), 4 * PAGE as u64);
    check!(vmo.write(b"tail", 3 * PAGE as u64));
    check!(vmo.set_size(PAGE as u64));
    ensure_err!(
        vmo.write(b"tail", 3 * PAGE as u64),
        Status::ERR_OUT_OF_RANGE
    );
    let mut buf = [0u8; 4];
    check!(vmo.read(&mut buf, 0));
    ensure_eq!(&buf, b"keep");
    Ok(())
}

fn set_size_not_resizable(_ctx: &Ctx) -> TestResult {
    // ZIRCON (core test `VmoTestCase.NoResize`): zx_vmo_set_size needs WRITE, then a
    // non-resizable VMO refuses with UNAVAILABLE, growing or shrinking, and keeps its size and
    // bytes; its handle lacks RESIZE, which only a resizable VMO needs.
    let len = 4 * PAGE as u64;
    let vmo = check!(Vmo::create(len, 0));
    check!(vmo.write(b"stay", len - 4));
    ensure_eq!(
        check!(vmo.handle().basic_info()).rights & ZX_RIGHT_RESIZE,
        0
    );
    ensure_err!(vmo.set_size(len + PAGE as u64), Status::ERR_UNAVAILABLE);
    ensure_err!(vmo.set_size(len - PAGE as u64), Status::ERR_UNAVAILABLE);
    ensure_eq!(check!(vmo.get_size()), len);
    let mut buf = [0u8; 4];
    check!(vmo.read(&mut buf, len - 4));
    ensure_eq!(&buf, b"stay");
    Ok(())
}

/// The order of current Zircon's `sys_vmo_set_size`: WRITE, then RESIZE (only for a resizable
/// VMO), then the rounding overflow, then UNAVAILABLE.
fn set_size_rights_before_resizability(_ctx: &Ctx) -> TestResult {
    let fixed = check!(Vmo::create(PAGE as u64, 0));
    let read_only = check!(fixed.duplicate(ZX_RIGHT_READ));
    ensure_err!(
        read_only.set_size(2 * PAGE as u64),
        Status::ERR_ACCESS_DENIED
    );
    ensure_err!(fixed.set_size(u64::MAX), Status::ERR_OUT_OF_RANGE);
    let resizable = check!(Vmo::create(PAGE as u64, ZX_VMO_RESIZABLE));
    let rights = check!(resizable.handle().basic_info()).rights;
    ensure_eq!(rights & ZX_RIGHT_RESIZE, ZX_RIGHT_RESIZE);
    let no_resize = check!(resizable.duplicate(rights & !ZX_RIGHT_RESIZE));
    ensure_err!(
        no_resize.set_size(2 * PAGE as u64),
        Status::ERR_ACCESS_DENIED
    );
    ensure_eq!(check!(resizable.get_size()), PAGE as u64);
    check!(resizable.set_size(2 * PAGE as u64));
    ensure_eq!(check!(resizable.get_size()), 2 * PAGE as u64);
    Ok(())
}

/// set_size to an unaligned size: the bytes from it to the page's end read as zeros; those
/// below stay; the content size is the unrounded size.
fn set_size_zeroes_the_last_page_tail(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(2 * PAGE as u64, ZX_VMO_RESIZABLE));
    let fill = [0x77u8; 2 * PAGE];
    check!(vmo.write(&fill, 0));
    check!(vmo.set_size(5461));
    ensure_eq!(check!(vmo.get_size()), 2 * PAGE as u64);
    ensure_eq!(check!(vmo.content_size()), 5461);
    let mut back = [0xffu8; 2 * PAGE];
    check!(vmo.read(&mut back, 0));
    ensure!(back[..5461].iter().all(|&b| b == 0x77));
    ensure!(back[5461..].iter().all(|&b| b == 0));
    Ok(())
}

fn commit_decommit(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(4 * PAGE as u64, 0));
    ensure_eq!(check!(vmo.info()).committed_bytes, 0);
    check!(vmo.op_range(ZX_VMO_OP_COMMIT, 0, 2 * PAGE as u64));
    ensure_eq!(check!(vmo.info()).committed_bytes, 2 * PAGE as u64);
    check!(vmo.write(b"x", 3 * PAGE as u64));
    ensure_eq!(check!(vmo.info()).committed_bytes, 3 * PAGE as u64);
    check!(vmo.op_range(ZX_VMO_OP_DECOMMIT, 0, 4 * PAGE as u64));
    ensure_eq!(check!(vmo.info()).committed_bytes, 0);
    let mut buf = [1u8; 1];
    check!(vmo.read(&mut buf, 3 * PAGE as u64));
    ensure_eq!(buf[0], 0);
    Ok(())
}

/// ZERO (`VmObjectPaged::ZeroRange`): any alignment; exactly the range reads as zeros, partial
/// pages included; a page it covers whole is freed; needs WRITE; out of range or overflowing is
/// OUT_OF_RANGE and changes nothing.
fn zero_op_zeroes_exactly_the_range(_ctx: &Ctx) -> TestResult {
    let p = PAGE as u64;
    let vmo = check!(Vmo::create(3 * p, 0));
    let fill = [0x5au8; 3 * PAGE];
    check!(vmo.write(&fill, 0));
    let mut back = [0u8; 3 * PAGE];
    // Errors first: nothing changes.
    let ro = check!(vmo.duplicate(ZX_RIGHT_READ | ZX_RIGHT_MAP));
    ensure_err!(ro.op_range(ZX_VMO_OP_ZERO, 0, p), Status::ERR_ACCESS_DENIED);
    ensure_err!(
        vmo.op_range(ZX_VMO_OP_ZERO, 0, 4 * p),
        Status::ERR_OUT_OF_RANGE
    );
    ensure_err!(
        vmo.op_range(ZX_VMO_OP_ZERO, u64::MAX - 1, 2),
        Status::ERR_OUT_OF_RANGE
    );
    check!(vmo.op_range(ZX_VMO_OP_ZERO, 5, 0));
    check!(vmo.read(&mut back, 0));
    ensure!(back == fill);
    // Within one page.
    check!(vmo.op_range(ZX_VMO_OP_ZERO, p + 5, 10));
    check!(vmo.read(&mut back, 0));
    ensure!(back[..PAGE + 5].iter().all(|&b| b == 0x5a));
    ensure!(back[PAGE + 5..PAGE + 15].iter().all(|&b| b == 0));
    ensure!(back[PAGE + 15..].iter().all(|&b| b == 0x5a));
    // Across pages, page 1 covered whole.
    check!(vmo.write(&fill, 0));
    check!(vmo.op_range(ZX_VMO_OP_ZERO, 100, 2 * p));
    check!(vmo.read(&mut back, 0));
    ensure!(back[..100].iter().all(|&b| b == 0x5a));
    ensure!(back[100..100 + 2 * PAGE].iter().all(|&b| b == 0));
    ensure!(back[100 + 2 * PAGE..].iter().all(|&b| b == 0x5a));
    ensure_eq!(check!(vmo.info()).committed_bytes, 2 * p);
    Ok(())
}

/// Zircon's `LockUnlock`: LOCK, TRY_LOCK and UNLOCK of a VMO that is not discardable are
/// NOT_SUPPORTED; a handle with neither READ nor WRITE is ACCESS_DENIED first.
fn lock_ops_on_a_plain_vmo_are_not_supported(_ctx: &Ctx) -> TestResult {
    let size = 3 * PAGE as u64;
    let vmo = check!(Vmo::create(size, 0));
    let none = check!(vmo.duplicate(ZX_RIGHT_MAP));
    let mut state = [0u8; ZX_VMO_LOCK_STATE_SIZE];
    for op in [ZX_VMO_OP_TRY_LOCK, ZX_VMO_OP_LOCK, ZX_VMO_OP_UNLOCK] {
        ensure_err!(vmo.op_range(op, 0, size), Status::ERR_NOT_SUPPORTED);
        ensure_err!(
            vmo.op_range_with_buffer(op, 0, size, &mut state),
            Status::ERR_NOT_SUPPORTED
        );
        ensure_err!(none.op_range(op, 0, size), Status::ERR_ACCESS_DENIED);
    }
    Ok(())
}

/// Zircon's `LockUnlock` / `Discardable` / `OpOutOfBounds` for a discardable VMO.
fn lock_ops_on_a_discardable_vmo(_ctx: &Ctx) -> TestResult {
    let p = PAGE as u64;
    let size = 3 * p;
    let vmo = check!(Vmo::create(size, ZX_VMO_DISCARDABLE));
    check!(vmo.op_range(ZX_VMO_OP_TRY_LOCK, 0, size));
    check!(vmo.op_range(ZX_VMO_OP_UNLOCK, 0, size));
    let mut state = [0xeeu8; ZX_VMO_LOCK_STATE_SIZE];
    check!(vmo.op_range_with_buffer(ZX_VMO_OP_LOCK, 0, size, &mut state));
    let word =
        |i: usize| u64::from_le_bytes(state[8 * i..8 * i + 8].try_into().unwrap_or_default());
    ensure_eq!([word(0), word(1), word(2), word(3)], [0, size, 0, 0]);
    check!(vmo.op_range(ZX_VMO_OP_UNLOCK, 0, size));
    ensure_err!(
        vmo.op_range(ZX_VMO_OP_UNLOCK, 0, size),
        Status::ERR_BAD_STATE
    );
    // Whole VMO only.
    for (off, len) in [(0, p), (p, size - p), (p, p), (0, 2 * size)] {
        for op in [ZX_VMO_OP_TRY_LOCK, ZX_VMO_OP_LOCK, ZX_VMO_OP_UNLOCK] {
            ensure_err!(
                vmo.op_range_with_buffer(op, off, len, &mut state),
                Status::ERR_OUT_OF_RANGE
            );
        }
    }
    // LOCK needs a whole zx_vmo_lock_state_t, and a failed LOCK leaves nothing locked.
    ensure_err!(
        vmo.op_range(ZX_VMO_OP_LOCK, 0, size),
        Status::ERR_INVALID_ARGS
    );
    ensure_err!(
        vmo.op_range_with_buffer(ZX_VMO_OP_LOCK, 0, size, &mut state[..8]),
        Status::ERR_INVALID_ARGS
    );
    ensure_err!(
        vmo.op_range(ZX_VMO_OP_UNLOCK, 0, size),
        Status::ERR_BAD_STATE
    );
    // READ or WRITE suffices; neither is ACCESS_DENIED.
    for rights in [ZX_RIGHT_READ, ZX_RIGHT_WRITE] {
        let h = check!(vmo.duplicate(rights));
        check!(h.op_range(ZX_VMO_OP_TRY_LOCK, 0, size));
        check!(h.op_range(ZX_VMO_OP_UNLOCK, 0, size));
        check!(h.op_range_with_buffer(ZX_VMO_OP_LOCK, 0, size, &mut state));
        check!(h.op_range(ZX_VMO_OP_UNLOCK, 0, size));
    }
    let none = check!(vmo.duplicate(ZX_RIGHT_MAP));
    ensure_err!(
        none.op_range(ZX_VMO_OP_TRY_LOCK, 0, size),
        Status::ERR_ACCESS_DENIED
    );
    Ok(())
}

/// Zircon's `ContentSize`: the creation size, then what set_property or set_size sets; setting
/// needs WRITE besides SET_PROPERTY; a smaller content size zeroes the VMO's bytes from it.
fn content_size_set_needs_write_and_zeroes_past_it(ctx: &Ctx) -> TestResult {
    let len = 4 * PAGE as u64;
    let vmo = check!(Vmo::create(len, ZX_VMO_RESIZABLE));
    ensure_eq!(check!(vmo.content_size()), len);
    let odd = check!(Vmo::create(len + 42, 0));
    ensure_eq!(check!(odd.content_size()), len + 42); // unrounded
    let fill = [0x33u8; 4 * PAGE];
    check!(vmo.write(&fill, 0));
    let target = len / 3;
    check!(vmo.set_content_size(target));
    ensure_eq!(check!(vmo.content_size()), target);
    ensure_eq!(check!(vmo.get_size()), len); // the size stays
    let mut back = [0xffu8; 4 * PAGE];
    check!(vmo.read(&mut back, 0));
    ensure!(back[..target as usize].iter().all(|&b| b == 0x33));
    ensure!(back[target as usize..].iter().all(|&b| b == 0));
    check!(vmo.set_content_size(10 * len));
    ensure_eq!(check!(vmo.content_size()), 10 * len); // past the end
    check!(vmo.set_size(5461));
    ensure_eq!(check!(vmo.content_size()), 5461);
    let rw = check!(vmo.duplicate(ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_SET_PROPERTY));
    check!(rw.set_content_size(5461));
    let read_only = check!(vmo.duplicate(ZX_RIGHT_READ | ZX_RIGHT_SET_PROPERTY));
    ensure_err!(read_only.set_content_size(7), Status::ERR_ACCESS_DENIED);
    let no_set = check!(vmo.duplicate(ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_GET_PROPERTY));
    ensure_err!(no_set.set_content_size(7), Status::ERR_ACCESS_DENIED);
    let no_get = check!(vmo.duplicate(ZX_RIGHT_READ));
    ensure_err!(no_get.content_size(), Status::ERR_ACCESS_DENIED);
    ensure_eq!(check!(vmo.content_size()), 5461); // nothing changed
    let mut short = [0u8; 7];
    ensure_err!(
        vmo.handle()
            .get_property(ZX_PROP_VMO_CONTENT_SIZE, &mut short),
        Status::ERR_BUFFER_TOO_SMALL
    );
    ensure_err!(
        vmo.handle().set_property(ZX_PROP_VMO_CONTENT_SIZE, &short),
        Status::ERR_BUFFER_TOO_SMALL
    );
    let mut word = [0u8; 8];
    ensure_err!(
        ctx.process
            .handle()
            .get_property(ZX_PROP_VMO_CONTENT_SIZE, &mut word),
        Status::ERR_WRONG_TYPE
    );
    ensure_err!(
        ctx.process
            .handle()
            .set_property(ZX_PROP_VMO_CONTENT_SIZE, &word),
        Status::ERR_WRONG_TYPE
    );
    ensure_eq!(check!(vmo.content_size()), 5461); // nothing changed
    Ok(())
}

/// Zircon's `CacheOp`, `CacheOpOutOfRange` and the cache ops of `OpOutOfBounds`: OK in range
/// (bytes unchanged), INVALID_ARGS for zero length, OUT_OF_RANGE past the end or overflowing;
/// READ for SYNC / CLEAN / CLEAN_INVALIDATE, WRITE for INVALIDATE (the harness turns the
/// debugging switch on).
fn cache_ops_check_rights_and_range(_ctx: &Ctx) -> TestResult {
    let size = 0x8000u64;
    let p = PAGE as u64;
    let vmo = check!(Vmo::create(size, 0));
    check!(vmo.write(b"kept", 0x5200));
    let ops = [
        ZX_VMO_OP_CACHE_SYNC,
        ZX_VMO_OP_CACHE_CLEAN,
        ZX_VMO_OP_CACHE_CLEAN_INVALIDATE,
        ZX_VMO_OP_CACHE_INVALIDATE,
    ];
    for op in ops {
        for (off, len) in [
            (0, 1),
            (1, 1),
            (0, size),
            (1, size - 1),
            (0x5200, 0x800),
            (0x5200, 0x1200),
        ] {
            check!(vmo.op_range(op, off, len));
        }
        ensure_err!(vmo.op_range(op, 0, 0), Status::ERR_INVALID_ARGS);
        for (off, len) in [
            (1, size),
            (size, 1),
            (size + 1, 1),
            (u64::MAX - 1, 1),
            (u64::MAX, 1),
            (u64::MAX, u64::MAX),
            (p, u64::MAX),
            (u64::MAX - p + 1, 1),
            (0, 2 * size),
        ] {
            ensure_err!(vmo.op_range(op, off, len), Status::ERR_OUT_OF_RANGE);
        }
    }
    let mut buf = [0u8; 4];
    check!(vmo.read(&mut buf, 0x5200));
    ensure_eq!(&buf, b"kept");
    let ro = check!(vmo.duplicate(ZX_RIGHT_READ));
    let wo = check!(vmo.duplicate(ZX_RIGHT_WRITE));
    for op in [
        ZX_VMO_OP_CACHE_SYNC,
        ZX_VMO_OP_CACHE_CLEAN,
        ZX_VMO_OP_CACHE_CLEAN_INVALIDATE,
    ] {
        check!(ro.op_range(op, 0, p));
        ensure_err!(wo.op_range(op, 0, p), Status::ERR_ACCESS_DENIED);
    }
    check!(wo.op_range(ZX_VMO_OP_CACHE_INVALIDATE, 0, p));
    ensure_err!(
        ro.op_range(ZX_VMO_OP_CACHE_INVALIDATE, 0, p),
        Status::ERR_ACCESS_DENIED
    );
    Ok(())
}

/// Zircon's `CacheOpLargeVmo`: a VMO of 2^64 - 64 pages with 64 pages committed across it is
/// cleaned whole, quickly.
fn cache_ops_on_a_huge_sparse_vmo(_ctx: &Ctx) -> TestResult {
    let max = u64::MAX - 64 * PAGE as u64 + 1;
    let vmo = check!(Vmo::create(max, 0));
    check!(vmo.op_range(ZX_VMO_OP_CACHE_CLEAN, 0, max));
    for i in 0..64u64 {
        check!(vmo.write(&42u64.to_le_bytes(), max / 64 * i));
    }
    check!(vmo.op_range(ZX_VMO_OP_CACHE_CLEAN, 0, max));
    ensure_eq!(check!(vmo.info()).committed_bytes, 64 * PAGE as u64);
    Ok(())
}

/// Zircon's `Prefetch` on an anonymous VMO: any alignment and zero length are OK, the range is
/// checked, READ is needed.
fn prefetch_checks_read_and_range(_ctx: &Ctx) -> TestResult {
    let p = PAGE as u64;
    let size = 2 * p;
    let vmo = check!(Vmo::create(size, 0));
    for (off, len) in [(0, p), (0, 0), (4, 2), (p - 1, 2)] {
        check!(vmo.op_range(ZX_VMO_OP_PREFETCH, off, len));
    }
    ensure_err!(
        vmo.op_range(ZX_VMO_OP_PREFETCH, 0, size + p),
        Status::ERR_OUT_OF_RANGE
    );
    ensure_err!(
        vmo.op_range(ZX_VMO_OP_PREFETCH, size + p, 0),
        Status::ERR_OUT_OF_RANGE
    );
    let rights = check!(vmo.handle().basic_info()).rights;
    let no_read = check!(vmo.duplicate(rights & !ZX_RIGHT_READ));
    ensure_err!(
        no_read.op_range(ZX_VMO_OP_PREFETCH, 0, p),
        Status::ERR_ACCESS_DENIED
    );
    ensure_eq!(check!(vmo.info()).committed_bytes, 0);
    Ok(())
}

fn op_range_errors(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(2 * PAGE as u64, 0));
    ensure_err!(
        vmo.op_range(ZX_VMO_OP_COMMIT, 0, 3 * PAGE as u64),
        Status::ERR_OUT_OF_RANGE
    );
    ensure_err!(
        vmo.op_range(0xdead, 0, PAGE as u64),
        Status::ERR_INVALID_ARGS
    );
    let ro = check!(vmo.duplicate(ZX_RIGHT_READ | ZX_RIGHT_MAP));
    ensure_err!(
        ro.op_range(ZX_VMO_OP_COMMIT, 0, PAGE as u64),
        Status::ERR_ACCESS_DENIED
    );
    Ok(())
}

fn bad_handles(ctx: &Ctx) -> TestResult {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is valid for 8 bytes of writes.
    let r = unsafe {
        syscall4(
            nr::ZX_SYS_VMO_READ,
            0x1234_5677,
            buf.as_mut_ptr() as usize,
            0,
            8,
        )
    };
    ensure_eq!(Status::from_raw(r as i32), Status::ERR_BAD_HANDLE);
    // A VMAR handle is the wrong type.
    // SAFETY: as above.
    let r = unsafe {
        syscall4(
            nr::ZX_SYS_VMO_READ,
            ctx.root.raw_handle() as usize,
            buf.as_mut_ptr() as usize,
            0,
            8,
        )
    };
    ensure_eq!(Status::from_raw(r as i32), Status::ERR_WRONG_TYPE);
    Ok(())
}

fn bad_user_pointers(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(PAGE as u64, 0));
    let h = vmo.raw_handle() as usize;
    for bad in [
        0usize,
        0xffff_8000_0000_0000,
        0x7fff_ffff_f000,
        usize::MAX - 3,
    ] {
        // SAFETY: the kernel must refuse the pointer without touching our memory.
        let r = unsafe { syscall4(nr::ZX_SYS_VMO_READ, h, bad, 0, 16) };
        ensure_eq!(Status::from_raw(r as i32), Status::ERR_INVALID_ARGS,);
        // SAFETY: as above; the out-pointer of vmo_create is bad.
        let r = unsafe { syscall3(nr::ZX_SYS_VMO_CREATE, PAGE, 0, bad) };
        ensure_eq!(Status::from_raw(r as i32), Status::ERR_INVALID_ARGS);
    }
    Ok(())
}

fn rights_enforced(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(PAGE as u64, 0));
    let read_only = check!(vmo.duplicate(ZX_RIGHT_READ | ZX_RIGHT_DUPLICATE));
    let mut buf = [0u8; 4];
    check!(read_only.read(&mut buf, 0));
    ensure_err!(read_only.write(b"nope", 0), Status::ERR_ACCESS_DENIED);
    let write_only = check!(vmo.duplicate(ZX_RIGHT_WRITE));
    check!(write_only.write(b"yes!", 0));
    ensure_err!(write_only.read(&mut buf, 0), Status::ERR_ACCESS_DENIED);
    check!(read_only.read(&mut buf, 0));
    ensure_eq!(&buf, b"yes!");
    Ok(())
}

/// `zx_vmo_read` / `zx_vmo_write` of `len` bytes at `offset` of `v`, with the buffer at `addr`.
fn vmo_rw(read: bool, v: &Vmo, addr: usize, offset: usize, len: usize) -> Status {
    let n = if read {
        nr::ZX_SYS_VMO_READ
    } else {
        nr::ZX_SYS_VMO_WRITE
    };
    // SAFETY: every caller passes a buffer inside a mapping it made for the call (or running
    // into a page the kernel must refuse); no Rust reference covers it.
    let r = unsafe { syscall4(n, v.raw_handle() as usize, addr, offset, len) };
    Status::from_raw(r as i32)
}

/// The test pattern's byte at `i`.
fn pattern(i: usize) -> u8 {
    (i * 11 % 251) as u8 + 1
}

/// A region of `good + 2` pages over a VMO of as many holding [`pattern`]: pages
/// `[0, good)` mapped read-write, page `good` read-only, page `good + 1` unmapped.
fn bad_tail_buffer(ctx: &Ctx, good: usize) -> Result<(zx::Vmar, usize, Vmo), Failure> {
    let (r, base) = region(ctx, CAN_RWS, good + 2)?;
    let buf = vmo(good + 2)?;
    let data: Vec<u8> = (0..(good + 2) * PAGE).map(pattern).collect();
    check!(buf.write(&data, 0));
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &buf, 0, good * PAGE));
    let ro = good * PAGE;
    check!(r.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, ro, &buf, ro as u64, PAGE));
    Ok((r, base, buf))
}

/// Reads one byte of each of the first `pages` pages at `base` (faults them in).
fn touch(base: usize, pages: usize) {
    for p in 0..pages {
        // SAFETY: every caller passes pages of a readable mapping it made.
        unsafe { core::ptr::read_volatile((base + p * PAGE) as *const u8) };
    }
}

fn buffers_running_into_bad_pages(ctx: &Ctx) -> TestResult {
    // Buffers past the first copy chunk whose end lies on an unmapped page (a write's source)
    // or a read-only one (a read's destination), first with no page faulted in, then with all
    // of them: ZX_ERR_INVALID_ARGS, and the bytes before the bad page copied.
    let good = 6;
    let target = check!(vmo(good + 2));
    let (_w, base, _) = bad_tail_buffer(ctx, good)?;
    let len = (good + 1) * PAGE; // from `base + 8`: the last 8 bytes on the unmapped page
    ensure_eq!(
        vmo_rw(false, &target, base + 8, 0, len),
        Status::ERR_INVALID_ARGS
    );
    let mut back = vec![0u8; len - 8];
    check!(target.read(&mut back, 0));
    let data: Vec<u8> = (0..(good + 2) * PAGE).map(pattern).collect();
    let chunk = 4 * PAGE; // the kernel's copy chunk: at least the chunks before the fault's
    ensure!(
        back[..chunk] == data[8..8 + chunk],
        "write, not faulted in: first chunk"
    );
    touch(base, good + 1);
    ensure_eq!(
        vmo_rw(false, &target, base + 8, 0, len),
        Status::ERR_INVALID_ARGS
    );
    check!(target.read(&mut back, 0));
    // All pages present: the copy goes straight to the VMO's pages up to the fault.
    ensure!(
        back == data[8..len],
        "write, faulted in: every byte before the hole"
    );
    // Reads into a buffer ending 8 bytes into the read-only page.
    check!(target.write(&vec![0x5a; (good + 2) * PAGE], 0));
    let (_r, base, buf) = bad_tail_buffer(ctx, good)?;
    let len = good * PAGE;
    for touched in [false, true] {
        if touched {
            touch(base, good + 1);
            check!(target.write(&vec![0xa5; (good + 2) * PAGE], 0));
        }
        ensure_eq!(
            vmo_rw(true, &target, base + 8, 0, len),
            Status::ERR_INVALID_ARGS
        );
        let mut got = vec![0u8; len - 8];
        check!(buf.read(&mut got, 8));
        let want = if touched { 0xa5 } else { 0x5a };
        ensure!(
            got.iter().all(|&b| b == want),
            "read (touched: {touched}): the bytes before the fault"
        );
    }
    // Starting on the unmapped page; the read-only page as a source is fine.
    let hole = base + (good + 1) * PAGE;
    ensure_eq!(vmo_rw(true, &target, hole, 0, 8), Status::ERR_INVALID_ARGS);
    ensure_eq!(vmo_rw(false, &target, hole, 0, 8), Status::ERR_INVALID_ARGS);
    ensure_eq!(vmo_rw(false, &target, base + good * PAGE, 0, 8), Status::OK);
    Ok(())
}

/// The copy a write makes of a page a snapshot shares holds every byte of the shared page: one
/// page broken through `zx_vmo_write`, one through a write fault, each checked byte by byte in
/// the snapshot, and the parent unchanged.
fn copy_on_write_break_copies_every_byte(ctx: &Ctx) -> TestResult {
    let pattern: Vec<u8> = (0..2 * PAGE)
        .map(|i| (i * 7 + i / PAGE + 3) as u8)
        .collect();
    let parent = check!(Vmo::create(2 * PAGE as u64, 0));
    check!(parent.write(&pattern, 0));
    let child =
        check!(parent.create_child(abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT, 0, 2 * PAGE as u64));
    check!(child.write(&[0xee], 5));
    let addr = check!(ctx.root.map(RW, 0, &child, 0, 2 * PAGE));
    poke(addr + PAGE + 8, 0x1122_3344_5566_7788);
    let mut expect = pattern.clone();
    expect[5] = 0xee;
    expect[PAGE + 8..PAGE + 16].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    let mut got = vec![0u8; 2 * PAGE];
    check!(child.read(&mut got, 0));
    // SAFETY: nothing refers to the mapping any more.
    check!(unsafe { ctx.root.unmap(addr, 2 * PAGE) });
    if let Some(at) = (0..2 * PAGE).find(|&i| got[i] != expect[i]) {
        fail!(
            "snapshot byte {at:#x} is {:#x}, expected {:#x}",
            got[at],
            expect[at]
        );
    }
    check!(parent.read(&mut got, 0));
    ensure!(got == pattern, "the parent changed");
    Ok(())
}

/// ZIRCON (core test `VmoTestCase.ChildResizeRight`): a child made without RESIZABLE lacks
/// ZX_RIGHT_RESIZE and cannot be resized (UNAVAILABLE); a snapshot made with it has the right,
/// can be resized, and a handle without the right is ACCESS_DENIED. Zircon's loop also covers
/// ZX_VMO_CHILD_SNAPSHOT_MODIFIED, which this kernel does not have.
fn child_resize_right(_ctx: &Ctx) -> TestResult {
    use abi::vmo_options::*;
    let p = PAGE as u64;
    let len = 4 * p;
    let parent = check!(Vmo::create(len, 0));
    for kind in [
        ZX_VMO_CHILD_SNAPSHOT,
        ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE,
        ZX_VMO_CHILD_SLICE,
    ] {
        let child = check!(parent.create_child(kind, 0, len));
        ensure_eq!(check!(child.info()).handle_rights & ZX_RIGHT_RESIZE, 0);
        ensure_err!(child.set_size(len + p), Status::ERR_UNAVAILABLE);
        if kind == ZX_VMO_CHILD_SLICE {
            continue;
        }
        let child = check!(parent.create_child(kind | ZX_VMO_CHILD_RESIZABLE, 0, len));
        let rights = check!(child.info()).handle_rights;
        ensure!(
            rights & ZX_RIGHT_RESIZE != 0,
            "a resizable child ({kind:#x}) lacks RESIZE: {rights:#x}"
        );
        check!(child.set_size(len + p));
        let dup = check!(child.duplicate(rights & !ZX_RIGHT_RESIZE));
        ensure_err!(dup.set_size(p), Status::ERR_ACCESS_DENIED);
    }
    Ok(())
}

/// ZIRCON (core test `VmoTestCase.NoWriteResizable`): NO_WRITE with RESIZABLE is INVALID_ARGS for
/// every child type, whether the parent is resizable or not; NO_WRITE alone is fine. Zircon's
/// ZX_VMO_CHILD_SNAPSHOT_MODIFIED (1 << 7) is an unknown option here: INVALID_ARGS as well.
fn no_write_resizable(_ctx: &Ctx) -> TestResult {
    use abi::vmo_options::*;
    const SNAPSHOT_MODIFIED: u32 = 1 << 7;
    let p = PAGE as u64;
    let nw_rs = ZX_VMO_CHILD_NO_WRITE | ZX_VMO_CHILD_RESIZABLE;
    for parent_options in [0, ZX_VMO_RESIZABLE] {
        let vmo = check!(Vmo::create(p, parent_options));
        for kind in [
            ZX_VMO_CHILD_SNAPSHOT,
            ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE,
            SNAPSHOT_MODIFIED,
            ZX_VMO_CHILD_SLICE,
        ] {
            ensure_err!(
                vmo.create_child(kind | nw_rs, 0, p),
                Status::ERR_INVALID_ARGS
            );
        }
        check!(vmo.create_child(ZX_VMO_CHILD_SNAPSHOT | ZX_VMO_CHILD_NO_WRITE, 0, p));
    }
    Ok(())
}

/// ZIRCON (core test `VmoTestCase.DecommitChildSliceTests`): a 6-page VMO, a slice of it and a
/// slice of that, each at one page in; every page-aligned DECOMMIT range of each level, starting
/// and ending inside it, past its end but inside the root, and past the root: OK exactly when the
/// range lies inside that level (not the root), else OUT_OF_RANGE. The root is committed again
/// before each decommit.
fn decommit_child_slice_tests(_ctx: &Ctx) -> TestResult {
    use abi::vmo_options::ZX_VMO_CHILD_SLICE;
    let p = PAGE as u64;
    // (VMO, size, bytes of the root past its end).
    let root = check!(Vmo::create(6 * p, 0));
    let l1 = check!(root.create_child(ZX_VMO_CHILD_SLICE, p, 4 * p));
    let l2 = check!(l1.create_child(ZX_VMO_CHILD_SLICE, p, 2 * p));
    let levels = [(&root, 6 * p, 0), (&l1, 4 * p, p), (&l2, 2 * p, 2 * p)];
    for (level, size, past_end) in levels {
        let root_end = size + past_end;
        let (mut saw_out_of_range, mut saw_ok) = (false, false);
        let mut start = 0;
        while start <= root_end + p {
            let mut end = start + p;
            while end <= root_end + 2 * p {
                check!(root.op_range(ZX_VMO_OP_COMMIT, 0, 6 * p));
                let len = end - start;
                let got = level.op_range(ZX_VMO_OP_DECOMMIT, start, len);
                let want = if start + len > size {
                    saw_out_of_range = true;
                    Err(Status::ERR_OUT_OF_RANGE)
                } else {
                    saw_ok = true;
                    Ok(())
                };
                ensure!(
                    got == want,
                    "decommit at {start:#x}, {len:#x} bytes of a {size:#x}-byte level: {got:?}, \
                     expected {want:?}"
                );
                end += p;
            }
            start += p;
        }
        ensure!(saw_out_of_range && saw_ok, "a level without both outcomes");
    }
    Ok(())
}

/// ZIRCON (core tests `VmoTestCase.Rights` and `RightsExec`, their `ChildPermsTestHelper`): the
/// rights of each kind of child, for handles with various rights (EXECUTE among them): a
/// snapshot gets the parent handle's rights with GET/SET_PROPERTY and WRITE, without EXECUTE; a
/// NO_WRITE snapshot keeps EXECUTE and has no WRITE; a slice gets the parent's with
/// GET/SET_PROPERTY, and no WRITE with NO_WRITE.
fn child_rights_follow_the_parent_handle(_ctx: &Ctx) -> TestResult {
    use abi::vmo_options::*;
    let p = PAGE as u64;
    let props = ZX_RIGHT_GET_PROPERTY | ZX_RIGHT_SET_PROPERTY;
    let plain = check!(Vmo::create(4 * p, 0));
    let exec = super::util::exec_vmo(4)?;
    let dup = |v: &Vmo, r: u32| v.duplicate(r);
    let rw = ZX_RIGHT_READ | ZX_RIGHT_WRITE;
    let mut parents = alloc::vec![
        check!(dup(&plain, check!(plain.info()).handle_rights)),
        check!(dup(&plain, rw | ZX_RIGHT_DUPLICATE)),
        check!(dup(
            &plain,
            ZX_RIGHT_READ | ZX_RIGHT_MAP | ZX_RIGHT_DUPLICATE
        )),
        check!(dup(&plain, rw | ZX_RIGHT_MAP | ZX_RIGHT_DUPLICATE)),
    ];
    let x = ZX_RIGHT_EXECUTE;
    for rights in [
        check!(exec.info()).handle_rights,
        rw | x | ZX_RIGHT_DUPLICATE,
        ZX_RIGHT_READ | ZX_RIGHT_MAP | ZX_RIGHT_DUPLICATE,
        rw | ZX_RIGHT_MAP | ZX_RIGHT_DUPLICATE,
        ZX_RIGHT_READ | x | ZX_RIGHT_MAP | ZX_RIGHT_DUPLICATE,
        rw | x | ZX_RIGHT_MAP | ZX_RIGHT_DUPLICATE,
    ] {
        parents.push(check!(dup(&exec, rights)));
    }
    let nw = ZX_VMO_CHILD_NO_WRITE;
    for parent in &parents {
        let pr = check!(parent.info()).handle_rights;
        let cases = [
            (ZX_VMO_CHILD_SNAPSHOT, (pr | props | ZX_RIGHT_WRITE) & !x),
            (ZX_VMO_CHILD_SNAPSHOT | nw, (pr | props) & !ZX_RIGHT_WRITE),
            (ZX_VMO_CHILD_SLICE, pr | props),
            (ZX_VMO_CHILD_SLICE | nw, (pr | props) & !ZX_RIGHT_WRITE),
        ];
        for (options, want) in cases {
            let child = check!(parent.create_child(options, 0, p));
            let got = check!(child.info()).handle_rights;
            ensure!(
                got == want,
                "a child ({options:#x}) of a handle with {pr:#x}: rights {got:#x}, expected \
                 {want:#x}"
            );
        }
    }
    Ok(())
}

/// ZIRCON (core test `VmoTestCase.Discardable`, its last part): a discardable VMO has no
/// children of any type (NOT_SUPPORTED).
fn discardable_vmo_has_no_children(_ctx: &Ctx) -> TestResult {
    use abi::vmo_options::*;
    let size = 3 * PAGE as u64;
    let vmo = check!(Vmo::create(size, ZX_VMO_DISCARDABLE));
    for kind in [
        ZX_VMO_CHILD_SLICE,
        ZX_VMO_CHILD_SNAPSHOT,
        ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE,
    ] {
        ensure_err!(vmo.create_child(kind, 0, size), Status::ERR_NOT_SUPPORTED);
    }
    Ok(())
}
