//! Virtual memory objects.

use abi::info::{topic, InfoVmo};
use abi::syscall_numbers as nr;
use abi::ZxResult;

use crate::raw::{syscall2, syscall3, syscall4, syscall5, syscall6};
use crate::{addr_of, ok, Handle};

/// A VMO handle.
#[derive(Debug, PartialEq, Eq)]
pub struct Vmo(Handle);

impl From<Handle> for Vmo {
    fn from(handle: Handle) -> Self {
        Vmo(handle)
    }
}

impl From<Vmo> for Handle {
    fn from(vmo: Vmo) -> Self {
        vmo.0
    }
}

impl Vmo {
    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.0
    }

    /// Gives the handle back (to transfer it).
    pub fn into_handle(self) -> Handle {
        self.0
    }

    /// The raw handle value.
    pub fn raw_handle(&self) -> u32 {
        self.0.raw()
    }

    /// `zx_vmo_create(size, options)`.
    pub fn create(size: u64, options: u32) -> ZxResult<Vmo> {
        let mut out = 0u32;
        // SAFETY: `out` is a valid, aligned u32 the kernel writes.
        let r = unsafe {
            syscall3(
                nr::ZX_SYS_VMO_CREATE,
                size as usize,
                options as usize,
                addr_of(&mut out),
            )
        };
        ok(r).map(|()| Vmo(Handle::from_raw(out)))
    }

    /// `zx_vmo_read`: fills `buf` from `offset`.
    pub fn read(&self, buf: &mut [u8], offset: u64) -> ZxResult {
        // SAFETY: the kernel writes at most `buf.len()` bytes into a valid mutable slice.
        ok(unsafe {
            syscall4(
                nr::ZX_SYS_VMO_READ,
                self.raw_handle() as usize,
                buf.as_mut_ptr() as usize,
                offset as usize,
                buf.len(),
            )
        })
    }

    /// `zx_vmo_write`: writes `buf` at `offset`.
    pub fn write(&self, buf: &[u8], offset: u64) -> ZxResult {
        // SAFETY: the kernel reads `buf.len()` bytes from a valid slice.
        ok(unsafe {
            syscall4(
                nr::ZX_SYS_VMO_WRITE,
                self.raw_handle() as usize,
                buf.as_ptr() as usize,
                offset as usize,
                buf.len(),
            )
        })
    }

    /// `zx_vmo_get_size`.
    pub fn get_size(&self) -> ZxResult<u64> {
        let mut size = 0u64;
        // SAFETY: `size` is a valid, aligned u64 the kernel writes.
        let r = unsafe {
            syscall2(
                nr::ZX_SYS_VMO_GET_SIZE,
                self.raw_handle() as usize,
                addr_of(&mut size),
            )
        };
        ok(r).map(|()| size)
    }

    /// `zx_vmo_set_size`.
    pub fn set_size(&self, size: u64) -> ZxResult {
        // SAFETY: no pointer argument. Shrinking a mapped VMO makes later accesses past the end
        // fault, which is a fault, not undefined behaviour of this call.
        ok(unsafe {
            syscall2(
                nr::ZX_SYS_VMO_SET_SIZE,
                self.raw_handle() as usize,
                size as usize,
            )
        })
    }

    /// `zx_vmo_op_range(op, offset, size)` for ops without a buffer (commit, decommit, zero, ...).
    pub fn op_range(&self, op: u32, offset: u64, size: u64) -> ZxResult {
        // SAFETY: no buffer (null, 0).
        ok(unsafe {
            syscall6(
                nr::ZX_SYS_VMO_OP_RANGE,
                self.raw_handle() as usize,
                op as usize,
                offset as usize,
                size as usize,
                0,
                0,
            )
        })
    }

    /// `zx_vmo_op_range(op, offset, size, buffer)` for ops that use the buffer (LOCK).
    pub fn op_range_with_buffer(
        &self,
        op: u32,
        offset: u64,
        size: u64,
        buffer: &mut [u8],
    ) -> ZxResult {
        // SAFETY: the kernel writes at most `buffer.len()` bytes into a valid buffer.
        ok(unsafe {
            syscall6(
                nr::ZX_SYS_VMO_OP_RANGE,
                self.raw_handle() as usize,
                op as usize,
                offset as usize,
                size as usize,
                buffer.as_mut_ptr() as usize,
                buffer.len(),
            )
        })
    }

    /// `ZX_PROP_VMO_CONTENT_SIZE` through `zx_object_get_property`.
    pub fn content_size(&self) -> ZxResult<u64> {
        let mut bytes = [0u8; 8];
        self.handle()
            .get_property(abi::props::ZX_PROP_VMO_CONTENT_SIZE, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// `ZX_PROP_VMO_CONTENT_SIZE` through `zx_object_set_property`.
    pub fn set_content_size(&self, size: u64) -> ZxResult {
        self.handle()
            .set_property(abi::props::ZX_PROP_VMO_CONTENT_SIZE, &size.to_le_bytes())
    }

    /// `zx_vmo_replace_as_executable(vmex)`: consumes `self`, returns a handle with EXECUTE.
    pub fn replace_as_executable(self, vmex: &Handle) -> ZxResult<Vmo> {
        let raw = self.0.into_raw();
        let mut out = 0u32;
        // SAFETY: `out` is a valid, aligned u32 the kernel writes.
        let r = unsafe {
            syscall3(
                nr::ZX_SYS_VMO_REPLACE_AS_EXECUTABLE,
                raw as usize,
                vmex.raw() as usize,
                addr_of(&mut out),
            )
        };
        ok(r).map(|()| Vmo(Handle::from_raw(out)))
    }

    /// `zx_vmo_create_child(options, offset, size)`: a snapshot or a slice of this VMO.
    pub fn create_child(&self, options: u32, offset: u64, size: u64) -> ZxResult<Vmo> {
        let mut out = 0u32;
        // SAFETY: `out` is a valid, aligned u32 the kernel writes; the other arguments are values.
        let r = unsafe {
            syscall5(
                nr::ZX_SYS_VMO_CREATE_CHILD,
                self.0.raw() as usize,
                options as usize,
                offset as usize,
                size as usize,
                addr_of(&mut out),
            )
        };
        ok(r).map(|()| Vmo(Handle::from_raw(out)))
    }

    /// `ZX_INFO_VMO`.
    pub fn info(&self) -> ZxResult<InfoVmo> {
        crate::get_info(&self.0, topic::ZX_INFO_VMO)
    }

    /// `zx_handle_duplicate` as a VMO.
    pub fn duplicate(&self, rights: u32) -> ZxResult<Vmo> {
        self.0.duplicate(rights).map(Vmo)
    }
}
