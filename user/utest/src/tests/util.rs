//! Helpers shared by the spec-coverage modules: raw statuses, probes of the resulting state
//! (is an address mapped, what a region holds) and a set of bad user pointers.

use alloc::vec::Vec;

use abi::info::maps_type::{ZX_INFO_MAPS_TYPE_MAPPING, ZX_INFO_MAPS_TYPE_VMAR};
use abi::vm_options::*;
use abi::Status;
use zx::{Handle, Vmar, Vmo};

use super::PAGE;
use crate::harness::{Ctx, Failure};

/// Read-write permissions.
pub const RW: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
/// Read-execute permissions.
pub const RX: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE;
/// CAN_MAP_READ | CAN_MAP_WRITE.
pub const CAN_RW: u32 = ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE;
/// CAN_MAP_READ | CAN_MAP_WRITE | CAN_MAP_SPECIFIC.
pub const CAN_RWS: u32 = CAN_RW | ZX_VM_CAN_MAP_SPECIFIC;
/// A handle value that names nothing (the low bits of a real handle value, never issued).
pub const BOGUS: u32 = 0x7777_7773;
/// An address in the kernel half.
pub const KERNEL_ADDR: usize = 0xffff_8000_0000_0000;
/// The first non-canonical address above the user half.
pub const NON_CANONICAL: usize = 0x0000_8000_0000_0000;

/// The status of a raw syscall result.
pub fn st(raw: u64) -> Status {
    Status::from_raw(raw as u32 as i32)
}

/// A failure built from a message (for `?` in helpers).
pub fn failure(msg: alloc::string::String) -> Failure {
    Failure::new(file!(), line!(), msg)
}

/// A VMO of `pages` pages.
pub fn vmo(pages: usize) -> Result<Vmo, Failure> {
    Vmo::create((pages * PAGE) as u64, 0).map_err(|e| failure(alloc::format!("vmo: {e:?}")))
}

/// An executable VMO of `pages` pages (`zx_vmo_replace_as_executable`).
pub fn exec_vmo(pages: usize) -> Result<Vmo, Failure> {
    vmo(pages)?
        .replace_as_executable(&Handle::invalid())
        .map_err(|e| failure(alloc::format!("replace_as_executable: {e:?}")))
}

/// A sub-VMAR of the root with `options`, `pages` long.
pub fn region(ctx: &Ctx, options: u32, pages: usize) -> Result<(Vmar, usize), Failure> {
    ctx.root
        .allocate(options, 0, pages * PAGE)
        .map_err(|e| failure(alloc::format!("allocate {options:#x}: {e:?}")))
}

/// A duplicate of a VMAR handle with `rights`.
pub fn vmar_dup(v: &Vmar, rights: u32) -> Result<Vmar, Failure> {
    v.handle()
        .duplicate(rights)
        .map(Vmar::from)
        .map_err(|e| failure(alloc::format!("duplicate {rights:#x}: {e:?}")))
}

/// A VMO handle value that was valid and has been closed.
pub fn closed_handle() -> Result<u32, Failure> {
    let v = vmo(1)?;
    let raw = v.raw_handle();
    Handle::from(v)
        .close()
        .map_err(|e| failure(alloc::format!("close: {e:?}")))?;
    Ok(raw)
}

/// A handle object for a raw value this test does not own (never closed by drop).
pub struct Borrowed<T>(core::mem::ManuallyDrop<T>);

impl<T> core::ops::Deref for Borrowed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A VMAR view of a raw value that is not closed on drop.
pub fn raw_vmar(raw: u32) -> Borrowed<Vmar> {
    Borrowed(core::mem::ManuallyDrop::new(Vmar::from(Handle::from_raw(
        raw,
    ))))
}

/// A VMO view of a raw value that is not closed on drop.
pub fn raw_vmo(raw: u32) -> Borrowed<Vmo> {
    Borrowed(core::mem::ManuallyDrop::new(Vmo::from(Handle::from_raw(
        raw,
    ))))
}

/// Whether `addr` is mapped in this process, asked through `zx_process_read_memory` on our own
/// process (it reads the mapping's VMO and commits nothing; nothing mapped is NOT_FOUND, as in
/// current Zircon, whose core tests' `check_pages_mapped` asks the same way).
pub fn is_mapped(ctx: &Ctx, addr: usize) -> Result<bool, Failure> {
    let mut b = [0u8; 1];
    match ctx.process.read_memory(addr, &mut b) {
        Ok(_) => Ok(true),
        Err(Status::ERR_NOT_FOUND) => Ok(false),
        // Mapped with no access permission.
        Err(Status::ERR_ACCESS_DENIED) => Ok(true),
        Err(e) => Err(failure(alloc::format!("read_memory({addr:#x}): {e:?}"))),
    }
}

/// Direct and nested children of a region: (mappings as (base, size, mmu_flags), sub-VMARs as
/// (base, size)), from `ZX_INFO_VMAR_MAPS` (the region itself excluded).
#[allow(clippy::type_complexity)]
pub fn contents(v: &Vmar) -> Result<(Vec<(usize, usize, u32)>, Vec<(usize, usize)>), Failure> {
    let maps = zx::process::maps(v.handle()).map_err(|e| failure(alloc::format!("maps: {e:?}")))?;
    let mut mappings = Vec::new();
    let mut vmars = Vec::new();
    for m in maps.iter().skip(1) {
        if m.r#type == ZX_INFO_MAPS_TYPE_MAPPING {
            mappings.push((m.base, m.size, m.u.mmu_flags));
        } else if m.r#type == ZX_INFO_MAPS_TYPE_VMAR {
            vmars.push((m.base, m.size));
        }
    }
    Ok((mappings, vmars))
}

/// Writes a u64 at `addr`.
pub fn poke(addr: usize, v: u64) {
    // SAFETY: every caller passes an 8-aligned address inside a read-write mapping it created
    // and that no Rust reference covers.
    unsafe { (addr as *mut u64).write_volatile(v) }
}

/// Reads a u64 at `addr`.
pub fn peek(addr: usize) -> u64 {
    // SAFETY: every caller passes an 8-aligned address inside a readable mapping it created.
    unsafe { (addr as *const u64).read_volatile() }
}

/// Bad user pointers of every kind, plus a good scratch page (kept mapped while alive).
pub struct BadPtrs {
    /// Region holding the read-only page, the unmapped page and the scratch page.
    region: Vmar,
    /// Base of the region: page 0 read-only, page 1 unmapped, page 2 read-write scratch.
    base: usize,
}

impl BadPtrs {
    /// Sets up the pages.
    pub fn new(ctx: &Ctx) -> Result<BadPtrs, Failure> {
        let (region, base) = region(ctx, CAN_RWS, 3)?;
        let v = vmo(3)?;
        region
            .map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, 0, &v, 0, PAGE)
            .map_err(|e| failure(alloc::format!("map ro: {e:?}")))?;
        region
            .map(ZX_VM_SPECIFIC | RW, 2 * PAGE, &v, 2 * PAGE as u64, PAGE)
            .map_err(|e| failure(alloc::format!("map rw: {e:?}")))?;
        Ok(BadPtrs { region, base })
    }

    /// A read-write page nothing else uses.
    pub fn scratch(&self) -> usize {
        self.base + 2 * PAGE
    }

    /// A read-only (mapped) page.
    pub fn read_only(&self) -> usize {
        self.base
    }

    /// Out-pointers the kernel must refuse: (what, address). `aligned_only` leaves out the
    /// misaligned one (for byte buffers, where alignment does not matter).
    pub fn outs(&self, aligned_only: bool) -> Vec<(&'static str, usize)> {
        let mut v = alloc::vec![
            ("null", 0),
            ("unmapped", self.base + PAGE),
            ("read-only", self.base),
            ("kernel", KERNEL_ADDR),
            ("non-canonical", NON_CANONICAL),
            ("top of the address space", usize::MAX - 7),
        ];
        if !aligned_only {
            v.push(("misaligned", self.scratch() + 1));
        }
        v
    }

    /// In-pointers (source buffers) the kernel must refuse (read-only is fine for those).
    pub fn ins(&self) -> Vec<(&'static str, usize)> {
        alloc::vec![
            ("null", 0),
            ("unmapped", self.base + PAGE),
            ("kernel", KERNEL_ADDR),
            ("non-canonical", NON_CANONICAL),
            ("top of the address space", usize::MAX - 7),
        ]
    }
}

impl Drop for BadPtrs {
    fn drop(&mut self) {
        // SAFETY: nothing refers to the region's pages once the test is done with them.
        let _ = unsafe { self.region.destroy() };
    }
}
