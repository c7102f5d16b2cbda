//! Handles: close, duplicate (rights reduced, never raised), replace, basic info.

use abi::default_rights::*;
use abi::obj_type::*;
use abi::rights::*;
use abi::Status;
use zx::{Handle, Vmo};

use crate::harness::{Ctx, TestResult};

tests!(
    close,
    close_invalid_is_ok,
    close_twice,
    duplicate_same_rights,
    duplicate_reduces_rights,
    duplicate_cannot_raise,
    duplicate_needs_right,
    replace,
    replace_cannot_raise,
    replace_failing_on_the_last_reference_ends_the_object_outside_the_table_lock,
    basic_info_types,
    values_do_not_recur_soon,
);

fn close(_ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4096, 0));
    let raw = v.raw_handle();
    check!(Handle::from(v).close());
    let again = Handle::from_raw(raw);
    ensure_err!(again.check_valid(), Status::ERR_BAD_HANDLE);
    core::mem::forget(again);
    Ok(())
}

fn close_invalid_is_ok(_ctx: &Ctx) -> TestResult {
    check!(Handle::invalid().close());
    Ok(())
}

fn close_twice(_ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4096, 0));
    let raw = v.raw_handle();
    check!(Handle::from(v).close());
    ensure_err!(Handle::from_raw(raw).close(), Status::ERR_BAD_HANDLE);
    Ok(())
}

fn duplicate_same_rights(_ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4096, 0));
    let d = check!(v.handle().duplicate(ZX_RIGHT_SAME_RIGHTS));
    ensure!(d.raw() != v.raw_handle());
    let a = check!(v.handle().basic_info());
    let b = check!(d.basic_info());
    ensure_eq!(a.koid, b.koid);
    ensure_eq!(a.rights, ZX_DEFAULT_VMO_RIGHTS);
    ensure_eq!(b.rights, ZX_DEFAULT_VMO_RIGHTS);
    // Writes through one are seen through the other.
    let d = Vmo::from(d);
    check!(d.write(b"dup", 0));
    let mut buf = [0u8; 3];
    check!(v.read(&mut buf, 0));
    ensure_eq!(&buf, b"dup");
    Ok(())
}

fn duplicate_reduces_rights(_ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4096, 0));
    let r = Vmo::from(check!(v
        .handle()
        .duplicate(ZX_RIGHT_READ | ZX_RIGHT_DUPLICATE)));
    ensure_eq!(
        check!(r.handle().basic_info()).rights,
        ZX_RIGHT_READ | ZX_RIGHT_DUPLICATE
    );
    ensure_err!(r.write(b"x", 0), Status::ERR_ACCESS_DENIED);
    // Reduced further, never back up.
    let rr = check!(r.handle().duplicate(ZX_RIGHT_READ));
    ensure_eq!(check!(rr.basic_info()).rights, ZX_RIGHT_READ);
    ensure_err!(
        r.handle().duplicate(ZX_RIGHT_READ | ZX_RIGHT_WRITE),
        Status::ERR_INVALID_ARGS
    );
    Ok(())
}

fn duplicate_cannot_raise(_ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4096, 0));
    ensure_err!(
        v.handle()
            .duplicate(ZX_DEFAULT_VMO_RIGHTS | ZX_RIGHT_EXECUTE),
        Status::ERR_INVALID_ARGS
    );
    Ok(())
}

fn duplicate_needs_right(_ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4096, 0));
    let nodup = check!(v.handle().duplicate(ZX_RIGHT_READ));
    ensure_err!(
        nodup.duplicate(ZX_RIGHT_SAME_RIGHTS),
        Status::ERR_ACCESS_DENIED
    );
    let bogus = Handle::from_raw(0x7777_7773);
    ensure_err!(
        bogus.duplicate(ZX_RIGHT_SAME_RIGHTS),
        Status::ERR_BAD_HANDLE
    );
    core::mem::forget(bogus);
    Ok(())
}

fn replace(_ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4096, 0));
    let koid = check!(v.handle().basic_info()).koid;
    let old = v.raw_handle();
    let r = check!(Handle::from(v).replace(ZX_RIGHT_READ | ZX_RIGHT_MAP));
    let info = check!(r.basic_info());
    ensure_eq!(info.koid, koid);
    ensure_eq!(info.rights, ZX_RIGHT_READ | ZX_RIGHT_MAP);
    let stale = Handle::from_raw(old);
    ensure_err!(stale.check_valid(), Status::ERR_BAD_HANDLE);
    core::mem::forget(stale);
    Ok(())
}

fn replace_cannot_raise(_ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4096, 0));
    let weak = check!(v.handle().duplicate(ZX_RIGHT_READ));
    let raw = weak.raw();
    ensure_err!(
        weak.replace(ZX_RIGHT_READ | ZX_RIGHT_WRITE),
        Status::ERR_INVALID_ARGS
    );
    // The old handle is gone even though replace failed (Zircon's rule).
    let stale = Handle::from_raw(raw);
    ensure_err!(stale.check_valid(), Status::ERR_BAD_HANDLE);
    core::mem::forget(stale);
    Ok(())
}

/// A replace that fails with INVALID_ARGS still consumes the old handle; when that handle held
/// the last reference to its object (here a thread, the last holder of an unstarted process),
/// the object's end (the process's teardown, which locks the process's own handle table) runs
/// after the caller's handle table is unlocked. The process count returns to where it was.
fn replace_failing_on_the_last_reference_ends_the_object_outside_the_table_lock(
    _ctx: &Ctx,
) -> TestResult {
    use abi::kstats::PROCESSES;
    let before = check!(zx::debug_kernel_stats())[PROCESSES];
    let (p, _vmar) = check!(zx::Process::create(&Handle::invalid(), b"replaced", 0));
    let t = check!(zx::Thread::create(&p, b"t", 0));
    drop(p);
    drop(_vmar);
    let thread_handle = check!(t.handle().duplicate(ZX_RIGHT_SAME_RIGHTS));
    drop(t);
    // Rights it does not have: INVALID_ARGS, the handle consumed, the thread and its process
    // released.
    ensure_err!(thread_handle.replace(1 << 30), Status::ERR_INVALID_ARGS);
    let after = check!(zx::debug_kernel_stats())[PROCESSES];
    ensure!(
        after == before,
        "the replaced thread's process is still alive: {after} processes, {before} before"
    );
    Ok(())
}

fn basic_info_types(ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(4096, 0));
    ensure_eq!(check!(v.handle().basic_info()).r#type, ZX_OBJ_TYPE_VMO);
    ensure_eq!(
        check!(ctx.root.handle().basic_info()).r#type,
        ZX_OBJ_TYPE_VMAR
    );
    let p = check!(ctx.process.handle().basic_info());
    ensure_eq!(p.r#type, ZX_OBJ_TYPE_PROCESS);
    ensure_eq!(p.rights, ZX_DEFAULT_PROCESS_RIGHTS);
    let t = check!(ctx.thread.handle().basic_info());
    ensure_eq!(t.r#type, ZX_OBJ_TYPE_THREAD);
    ensure_eq!(t.rights, ZX_DEFAULT_THREAD_RIGHTS);
    ensure!(p.koid != t.koid && p.koid != 0);
    Ok(())
}

/// Issue 10: a closed handle's value once named a new handle after 4 096 reuses of its slot. Now
/// 70 000 handles made and closed one at a time (past 2^16, a full generation period of one
/// slot) never bring the first value back, and the stale value stays dead.
fn values_do_not_recur_soon(_ctx: &Ctx) -> TestResult {
    let vmo = check!(Vmo::create(4096, 0));
    let first = check!(vmo.handle().duplicate(ZX_RIGHT_SAME_RIGHTS)).into_raw();
    check!(Handle::from_raw(first).close());
    for i in 0..70_000 {
        let h = check!(vmo.handle().duplicate(ZX_RIGHT_SAME_RIGHTS));
        ensure!(
            h.raw() != first,
            "the first value came back after {} handles",
            i + 1
        );
        check!(h.close());
    }
    ensure_err!(Handle::from_raw(first).close(), Status::ERR_BAD_HANDLE);
    Ok(())
}
