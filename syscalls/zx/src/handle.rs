//! Owned handles.

use abi::handle::ZX_HANDLE_INVALID;
use abi::info::{topic, InfoHandleBasic};
use abi::syscall_numbers as nr;
use abi::wire::Wire;
use abi::{Status, ZxResult};

use crate::raw::{syscall1, syscall3, syscall4, syscall6};
use crate::{addr_of, ok};

/// An owned handle; closed when dropped.
#[derive(Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Handle(u32);

impl Handle {
    /// The invalid handle (owns nothing; dropping it makes no syscall).
    pub const fn invalid() -> Handle {
        Handle(ZX_HANDLE_INVALID)
    }

    /// Takes ownership of a raw handle value (it will be closed on drop). Passing a value another
    /// owner also closes only makes one of the closes fail with `ZX_ERR_BAD_HANDLE`.
    pub const fn from_raw(raw: u32) -> Handle {
        Handle(raw)
    }

    /// The raw value, still owned by `self`.
    pub const fn raw(&self) -> u32 {
        self.0
    }

    /// Gives up ownership: the value will not be closed on drop.
    pub fn into_raw(self) -> u32 {
        let raw = self.0;
        core::mem::forget(self);
        raw
    }

    /// Whether this is not `ZX_HANDLE_INVALID`.
    pub const fn is_valid(&self) -> bool {
        self.0 != ZX_HANDLE_INVALID
    }

    /// `zx_handle_close`, reporting the status (drop ignores it).
    pub fn close(self) -> ZxResult {
        let raw = self.into_raw();
        // SAFETY: closing a handle touches no memory of this process.
        ok(unsafe { syscall1(nr::ZX_SYS_HANDLE_CLOSE, raw as usize) })
    }

    /// `zx_handle_duplicate`: a new handle with `rights` (or `ZX_RIGHT_SAME_RIGHTS`).
    pub fn duplicate(&self, rights: u32) -> ZxResult<Handle> {
        let mut out = 0u32;
        // SAFETY: `out` is a valid, aligned u32 the kernel writes.
        let r = unsafe {
            syscall3(
                nr::ZX_SYS_HANDLE_DUPLICATE,
                self.0 as usize,
                rights as usize,
                addr_of(&mut out),
            )
        };
        ok(r).map(|()| Handle(out))
    }

    /// `zx_handle_replace`: consumes `self` (even on most failures, as in Zircon).
    pub fn replace(self, rights: u32) -> ZxResult<Handle> {
        let raw = self.into_raw();
        let mut out = 0u32;
        // SAFETY: `out` is a valid, aligned u32 the kernel writes.
        let r = unsafe {
            syscall3(
                nr::ZX_SYS_HANDLE_REPLACE,
                raw as usize,
                rights as usize,
                addr_of(&mut out),
            )
        };
        ok(r).map(|()| Handle(out))
    }

    /// `zx_object_wait_one`: waits until one of `signals` is asserted or `deadline` (monotonic
    /// ns; `i64::MAX` = forever) passes. Returns the observed signals.
    pub fn wait_one(&self, signals: u32, deadline: i64) -> ZxResult<u32> {
        let mut observed = 0u32;
        // SAFETY: `observed` is a valid, aligned u32 the kernel writes.
        let r = unsafe {
            syscall4(
                nr::ZX_SYS_OBJECT_WAIT_ONE,
                self.0 as usize,
                signals as usize,
                deadline as usize,
                addr_of(&mut observed),
            )
        };
        ok(r).map(|()| observed)
    }

    /// `ZX_INFO_HANDLE_BASIC`.
    pub fn basic_info(&self) -> ZxResult<InfoHandleBasic> {
        get_info(self, topic::ZX_INFO_HANDLE_BASIC)
    }

    /// `ZX_INFO_HANDLE_VALID`: `Ok(())` if the handle is valid.
    pub fn check_valid(&self) -> ZxResult {
        // SAFETY: no buffer (null, 0) and no out-pointers.
        ok(unsafe {
            syscall6(
                nr::ZX_SYS_OBJECT_GET_INFO,
                self.0 as usize,
                topic::ZX_INFO_HANDLE_VALID as usize,
                0,
                0,
                0,
                0,
            )
        })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.is_valid() {
            // SAFETY: closing a handle touches no memory of this process.
            let _ = unsafe { syscall1(nr::ZX_SYS_HANDLE_CLOSE, self.0 as usize) };
        }
    }
}

#[repr(C, align(8))]
struct InfoBuffer([u8; 256]);

/// `zx_object_get_info` for a topic that returns one `T` record.
pub fn get_info<T: Wire>(handle: &Handle, topic: u32) -> ZxResult<T> {
    let mut buf = InfoBuffer([0; 256]);
    if T::SIZE > buf.0.len() || T::ALIGN > 8 {
        return Err(Status::ERR_NOT_SUPPORTED);
    }
    let mut actual = 0usize;
    let mut avail = 0usize;
    // SAFETY: `buf` is valid and 8-aligned for T::SIZE <= 256 bytes; `actual` and `avail` are
    // valid, aligned usizes.
    let r = unsafe {
        syscall6(
            nr::ZX_SYS_OBJECT_GET_INFO,
            handle.raw() as usize,
            topic as usize,
            buf.0.as_mut_ptr() as usize,
            T::SIZE,
            addr_of(&mut actual),
            addr_of(&mut avail),
        )
    };
    ok(r)?;
    if actual < 1 {
        return Err(Status::ERR_BUFFER_TOO_SMALL);
    }
    Ok(T::decode(&buf.0))
}
