//! zx_handle_close / duplicate / replace through dispatch.

mod common;

use abi::default_rights::ZX_DEFAULT_VMO_RIGHTS;
use abi::Status;
use common::*;

#[test]
fn close() {
    let mut m = Mock::new();
    assert_eq!(m.close(0), Ok(()), "ZX_HANDLE_INVALID is a no-op");
    let h = m.vmo(4096, 0);
    let n = m.handle_count();
    assert_eq!(m.close(h), Ok(()));
    assert_eq!(m.handle_count(), n - 1);
    assert_eq!(m.close(h), Err(Status::ERR_BAD_HANDLE), "double close");
    assert_eq!(
        m.close(0x1234_5677),
        Err(Status::ERR_BAD_HANDLE),
        "never issued"
    );
}

#[test]
fn duplicate_success_and_reduced_rights() {
    let mut m = Mock::new();
    let h = m.vmo(4096, 0);
    let same = m.dup(h, ZX_RIGHT_SAME_RIGHTS);
    assert_ne!(same, h);
    assert_eq!(m.rights(same), ZX_DEFAULT_VMO_RIGHTS);
    let ro = m.dup(h, ZX_RIGHT_READ | ZX_RIGHT_DUPLICATE);
    assert_eq!(m.rights(ro), ZX_RIGHT_READ | ZX_RIGHT_DUPLICATE);
    // The reduced handle really is reduced: writing the VMO through it is denied.
    assert_eq!(
        m.sys(ZX_SYS_VMO_WRITE, &[ro as u64, BUF as u64, 0, 1]),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert_eq!(
        m.sys(ZX_SYS_VMO_WRITE, &[h as u64, BUF as u64, 0, 1]),
        Ok(())
    );
    // Rights can only shrink.
    assert_eq!(
        m.sys(
            ZX_SYS_HANDLE_DUPLICATE,
            &[
                ro as u64,
                (ZX_RIGHT_READ | ZX_RIGHT_WRITE) as u64,
                BUF as u64
            ]
        ),
        Err(Status::ERR_INVALID_ARGS)
    );
    let no_dup = m.dup(ro, ZX_RIGHT_READ);
    assert_eq!(
        m.sys(
            ZX_SYS_HANDLE_DUPLICATE,
            &[no_dup as u64, ZX_RIGHT_SAME_RIGHTS as u64, BUF as u64]
        ),
        Err(Status::ERR_ACCESS_DENIED)
    );
    let stale = m.closed_handle();
    assert_eq!(
        m.sys(
            ZX_SYS_HANDLE_DUPLICATE,
            &[stale as u64, ZX_RIGHT_SAME_RIGHTS as u64, BUF as u64]
        ),
        Err(Status::ERR_BAD_HANDLE)
    );
}

#[test]
fn duplicate_bad_out_pointer_creates_nothing() {
    let mut m = Mock::new();
    let h = m.vmo(4096, 0);
    let n = m.handle_count();
    for (addr, what) in BAD_OUT {
        assert_eq!(
            m.sys(
                ZX_SYS_HANDLE_DUPLICATE,
                &[h as u64, ZX_RIGHT_SAME_RIGHTS as u64, addr as u64]
            ),
            Err(Status::ERR_INVALID_ARGS),
            "{what}"
        );
        assert_eq!(m.handle_count(), n, "{what}: no handle left behind");
    }
    assert!(m.is_valid(h));
}

#[test]
fn replace() {
    let mut m = Mock::new();
    let h = m.vmo(4096, 0);
    assert_eq!(
        m.sys(
            ZX_SYS_HANDLE_REPLACE,
            &[h as u64, ZX_RIGHT_READ as u64, BUF as u64]
        ),
        Ok(())
    );
    let r = m.peek::<u32>(BUF);
    assert!(!m.is_valid(h), "old handle consumed");
    assert_eq!(m.rights(r), ZX_RIGHT_READ);
    // Not a subset: INVALID_ARGS and the old handle is gone anyway.
    assert_eq!(
        m.sys(
            ZX_SYS_HANDLE_REPLACE,
            &[r as u64, ZX_RIGHT_WRITE as u64, BUF as u64]
        ),
        Err(Status::ERR_INVALID_ARGS)
    );
    assert!(!m.is_valid(r));
    assert_eq!(
        m.sys(
            ZX_SYS_HANDLE_REPLACE,
            &[r as u64, ZX_RIGHT_SAME_RIGHTS as u64, BUF as u64]
        ),
        Err(Status::ERR_BAD_HANDLE)
    );
}

#[test]
fn replace_bad_out_pointer_consumes_the_old_and_leaks_nothing() {
    let _g = serial();
    let mut m = Mock::new();
    for (addr, what) in BAD_OUT {
        let h = m.vmo(4096, 0);
        let n = m.handle_count();
        assert_eq!(
            m.sys(
                ZX_SYS_HANDLE_REPLACE,
                &[h as u64, ZX_RIGHT_SAME_RIGHTS as u64, addr as u64]
            ),
            Err(Status::ERR_INVALID_ARGS),
            "{what}"
        );
        assert!(!m.is_valid(h), "{what}: old consumed (Zircon too)");
        assert_eq!(m.handle_count(), n - 1, "{what}: new handle removed");
    }
}
