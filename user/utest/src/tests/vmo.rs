//! VMOs: create, read, write, sizes, op_range, and their errors.

use abi::ops::*;
use abi::rights::*;
use abi::syscall_numbers as nr;
use abi::vmo_options::ZX_VMO_RESIZABLE;
use abi::Status;
use zx::raw::{syscall3, syscall4};
use zx::Vmo;

use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    create_read_write,
    zero_size,
    sizes_round_up,
    read_write_out_of_range,
    create_errors,
    set_size_resizable,
    set_size_not_resizable,
    commit_decommit,
    decommit_misaligned,
    content_size,
    op_range_errors,
    bad_handles,
    bad_user_pointers,
    rights_enforced,
);

/// ZIRCON (core test `VmoTestCase.DecommitMisaligned`): an unaligned DECOMMIT is INVALID_ARGS,
/// with nothing committed and with the pages committed; the committed bytes stay.
fn decommit_misaligned(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(2 * PAGE as u64, 0));
    ensure_err!(
        vmo.op_range(abi::ops::ZX_VMO_OP_DECOMMIT, 0x10, 0x100),
        Status::ERR_INVALID_ARGS
    );
    check!(vmo.op_range(abi::ops::ZX_VMO_OP_COMMIT, 0x10, 0x100));
    check!(vmo.write(b"kept", 0));
    ensure_err!(
        vmo.op_range(abi::ops::ZX_VMO_OP_DECOMMIT, 0x10, 0x100),
        Status::ERR_INVALID_ARGS
    );
    let mut b = [0u8; 4];
    check!(vmo.read(&mut b, 0));
    ensure_eq!(&b, b"kept");
    ensure_eq!(check!(vmo.info()).committed_bytes, PAGE as u64);
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
    // non-resizable VMO refuses with UNAVAILABLE, growing or shrinking, and keeps its size.
    let len = 4 * PAGE as u64;
    let vmo = check!(Vmo::create(len, 0));
    ensure_err!(vmo.set_size(len + PAGE as u64), Status::ERR_UNAVAILABLE);
    ensure_err!(vmo.set_size(len - PAGE as u64), Status::ERR_UNAVAILABLE);
    ensure_eq!(check!(vmo.get_size()), len);
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
