//! Virtual memory address regions.

use abi::info::{topic, InfoVmar};
use abi::syscall_numbers as nr;
use abi::vm_options::ZX_VM_SPECIFIC_OVERWRITE;
use abi::{Status, ZxResult};

use crate::raw::{syscall1, syscall3, syscall4, syscall6, syscall7};
use crate::{addr_of, ok, Handle, Vmo};

/// A VMAR handle.
#[derive(Debug, PartialEq, Eq)]
pub struct Vmar(Handle);

impl From<Handle> for Vmar {
    fn from(handle: Handle) -> Self {
        Vmar(handle)
    }
}

impl From<Vmar> for Handle {
    fn from(vmar: Vmar) -> Self {
        vmar.0
    }
}

impl Vmar {
    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.0
    }

    /// The raw handle value.
    pub fn raw_handle(&self) -> u32 {
        self.0.raw()
    }

    /// `zx_vmar_allocate(options, offset, size)`: a child region and its base address.
    pub fn allocate(&self, options: u32, offset: usize, size: usize) -> ZxResult<(Vmar, usize)> {
        let mut child = 0u32;
        let mut addr = 0usize;
        // SAFETY: `child` and `addr` are valid, aligned out-values. A new region maps nothing.
        let r = unsafe {
            syscall6(
                nr::ZX_SYS_VMAR_ALLOCATE,
                self.raw_handle() as usize,
                options as usize,
                offset,
                size,
                addr_of(&mut child),
                addr_of(&mut addr),
            )
        };
        ok(r).map(|()| (Vmar(Handle::from_raw(child)), addr))
    }

    /// `zx_vmar_map(options, vmar_offset, vmo, vmo_offset, len)`: returns the mapped address.
    ///
    /// `ZX_VM_SPECIFIC_OVERWRITE` could replace memory Rust code still uses, so it is refused here
    /// with `ZX_ERR_INVALID_ARGS`; use [`Vmar::map_unchecked`] for it.
    pub fn map(
        &self,
        options: u32,
        vmar_offset: usize,
        vmo: &Vmo,
        vmo_offset: u64,
        len: usize,
    ) -> ZxResult<usize> {
        if options & ZX_VM_SPECIFIC_OVERWRITE != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        // SAFETY: without SPECIFIC_OVERWRITE a map only adds a mapping in free address space.
        unsafe { self.map_unchecked(options, vmar_offset, vmo, vmo_offset, len) }
    }

    /// `zx_vmar_map` with any options.
    ///
    /// # Safety
    /// With `ZX_VM_SPECIFIC_OVERWRITE`, nothing in the replaced range may still be referenced by
    /// Rust code.
    pub unsafe fn map_unchecked(
        &self,
        options: u32,
        vmar_offset: usize,
        vmo: &Vmo,
        vmo_offset: u64,
        len: usize,
    ) -> ZxResult<usize> {
        let mut addr = 0usize;
        // SAFETY: `addr` is a valid, aligned usize the kernel writes; the caller vouches for
        // what an overwrite replaces. The 7th argument travels in r12.
        let r = unsafe {
            syscall7(
                nr::ZX_SYS_VMAR_MAP,
                self.raw_handle() as usize,
                options as usize,
                vmar_offset,
                vmo.raw_handle() as usize,
                vmo_offset as usize,
                len,
                addr_of(&mut addr),
            )
        };
        ok(r).map(|()| addr)
    }

    /// `zx_vmar_unmap(addr, len)`.
    ///
    /// # Safety
    /// Nothing in `[addr, addr + len)` may still be referenced by Rust code.
    pub unsafe fn unmap(&self, addr: usize, len: usize) -> ZxResult {
        // SAFETY: the caller guarantees the range is no longer used.
        ok(unsafe { syscall3(nr::ZX_SYS_VMAR_UNMAP, self.raw_handle() as usize, addr, len) })
    }

    /// `zx_vmar_protect(options, addr, len)`.
    ///
    /// # Safety
    /// No Rust code may access `[addr, addr + len)` in a way the new protection forbids.
    pub unsafe fn protect(&self, options: u32, addr: usize, len: usize) -> ZxResult {
        // SAFETY: the caller guarantees the new protection matches the range's use.
        ok(unsafe {
            syscall4(
                nr::ZX_SYS_VMAR_PROTECT,
                self.raw_handle() as usize,
                options as usize,
                addr,
                len,
            )
        })
    }

    /// `zx_vmar_destroy`: unmaps everything in the region and its children.
    ///
    /// # Safety
    /// Nothing mapped in the region may still be referenced by Rust code.
    pub unsafe fn destroy(&self) -> ZxResult {
        // SAFETY: the caller guarantees the region's memory is no longer used.
        ok(unsafe { syscall1(nr::ZX_SYS_VMAR_DESTROY, self.raw_handle() as usize) })
    }

    /// `zx_vmar_op_range(op, addr, len)` (no buffer).
    ///
    /// # Safety
    /// `ZX_VMAR_OP_DECOMMIT` (and `ZERO`) replace the range's contents with zeros: no Rust
    /// reference into the range may rely on its contents.
    pub unsafe fn op_range(&self, op: u32, addr: usize, len: usize) -> ZxResult {
        // SAFETY: no buffer (null, 0); the caller vouches for the range's contents.
        ok(unsafe {
            syscall6(
                nr::ZX_SYS_VMAR_OP_RANGE,
                self.raw_handle() as usize,
                op as usize,
                addr,
                len,
                0,
                0,
            )
        })
    }

    /// `ZX_INFO_VMAR`: base and length.
    pub fn info(&self) -> ZxResult<InfoVmar> {
        crate::get_info(&self.0, topic::ZX_INFO_VMAR)
    }
}
