//! The kernel heap's virtual region: one PML4 slot of the kernel half ([`REGION_BASE`], 512 GiB
//! reserved) into which frames are mapped on demand, so the heap can grow page by page without
//! needing physically contiguous memory.
//!
//! [`init`] installs the region's PDPT in the boot PML4 before any user address space copies the
//! kernel half (like [`crate::kstack`]); page directories and page tables below it are allocated
//! as the mapped part grows ([`grow`]), and since the PDPT is shared by pointer, every address
//! space sees every heap page at once. Pages are mapped read/write, no-execute, in address order
//! from the region base; nothing is ever unmapped (the heap does not shrink).
//!
//! A page that was never mapped is not cached by the TLB, so growing needs no flush. [`grow`]
//! takes its frames through a callback and never allocates from the heap itself: it runs under
//! the heap's lock.

use spin::Mutex;

/// PML4 index of the region (the kernel-stack region is 496).
const PML4_INDEX: usize = 497;
/// First byte of the region.
pub const REGION_BASE: u64 = 0xffff_0000_0000_0000 | ((PML4_INDEX as u64) << 39);
/// Bytes reserved for the heap.
pub const REGION_LEN: u64 = 1 << 39;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const NO_EXECUTE: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PAGE: u64 = 4096;

/// Allocates one 4 KiB frame (physical address), or `None` when memory is exhausted.
pub type FrameAlloc<'a> = &'a mut dyn FnMut() -> Option<u64>;

struct Region {
    phys_offset: u64,
    pdpt: u64,
    /// Bytes mapped from `REGION_BASE`.
    mapped: u64,
    /// Page-directory and page-table frames taken so far (the PDPT included when fresh).
    table_frames: u64,
    nx: u64,
}

static REGION: Mutex<Option<Region>> = Mutex::new(None);

fn table(phys_offset: u64, phys: u64) -> *mut u64 {
    (phys_offset + phys) as *mut u64
}

fn zero_frame(phys_offset: u64, phys: u64) {
    // SAFETY: `phys` is a frame just taken from the frame allocator (nothing else uses it) and
    // the bootloader maps all physical memory writable at `phys_offset`.
    unsafe { core::ptr::write_bytes(table(phys_offset, phys) as *mut u8, 0, PAGE as usize) };
}

/// Claims the region in the active (boot) PML4. Call once, after the frame allocator and before
/// paging init and any user address space; maps nothing yet.
pub fn init(phys_offset: u64, alloc: FrameAlloc<'_>) -> Result<(), &'static str> {
    let mut region = REGION.lock();
    if region.is_some() {
        return Err("kheap::init called twice");
    }
    let pml4 = table(phys_offset, crate::cpu::cr3());
    // SAFETY: CR3 holds the boot PML4, mapped through the physical-memory offset; index < 512.
    let entry = unsafe { pml4.add(PML4_INDEX).read() };
    let (pdpt, table_frames) = if entry & PRESENT != 0 {
        let pdpt = entry & ADDR_MASK;
        // SAFETY: a present PML4 entry of the boot table points at a PDPT frame mapped at
        // phys_offset; we read its 512 entries.
        let used = (0..512).any(|i| unsafe { table(phys_offset, pdpt).add(i).read() } != 0);
        if used {
            return Err("the kernel-heap region is already in use");
        }
        (pdpt, 0)
    } else {
        let pdpt = alloc().ok_or("out of frames for the kernel-heap PDPT")?;
        zero_frame(phys_offset, pdpt);
        // SAFETY: the PML4 entry of the kernel half is empty (checked), so no mapping is
        // replaced; the PDPT is a zeroed frame we own.
        unsafe { pml4.add(PML4_INDEX).write(pdpt | PRESENT | WRITABLE) };
        (pdpt, 1)
    };
    let efer = x86_64::registers::model_specific::Efer::read_raw();
    let nx = if efer & (1 << 11) != 0 { NO_EXECUTE } else { 0 };
    *region = Some(Region {
        phys_offset,
        pdpt,
        mapped: 0,
        table_frames,
        nx,
    });
    Ok(())
}

/// The entry at `index` of the table at physical `parent`; if it is empty, a zeroed frame from
/// `alloc` is linked there first. Returns the child table's physical address.
fn child(region: &mut Region, parent: u64, index: usize, alloc: FrameAlloc<'_>) -> Option<u64> {
    let slot = table(region.phys_offset, parent);
    // SAFETY: `parent` is one of the region's table frames (mapped at phys_offset); index < 512.
    let entry = unsafe { slot.add(index).read() };
    if entry & PRESENT != 0 {
        return Some(entry & ADDR_MASK);
    }
    let frame = alloc()?;
    zero_frame(region.phys_offset, frame);
    // SAFETY: as above; the entry was empty, the new table is a zeroed frame we own.
    unsafe { slot.add(index).write(frame | PRESENT | WRITABLE) };
    region.table_frames += 1;
    Some(frame)
}

/// Maps up to `bytes` (rounded up to pages) more at the end of the mapped part. Returns the
/// start of the newly mapped range and its length, which is shorter (possibly 0) when frames or
/// the region run out; what was mapped stays mapped.
pub fn grow(bytes: u64, alloc: FrameAlloc<'_>) -> (u64, u64) {
    let mut guard = REGION.lock();
    let Some(region) = guard.as_mut() else {
        return (REGION_BASE, 0);
    };
    let start = region.mapped;
    let want = bytes
        .div_ceil(PAGE)
        .saturating_mul(PAGE)
        .min(REGION_LEN - start);
    while region.mapped < start + want {
        let off = region.mapped;
        let pd_index = ((off >> 30) & 511) as usize;
        let pt_index = ((off >> 21) & 511) as usize;
        let pte_index = ((off >> 12) & 511) as usize;
        let pdpt = region.pdpt;
        let Some(pd) = child(region, pdpt, pd_index, alloc) else {
            break;
        };
        let Some(pt) = child(region, pd, pt_index, alloc) else {
            break;
        };
        let Some(frame) = alloc() else { break };
        let nx = region.nx;
        // SAFETY: `pt` is a page table of the region (mapped at phys_offset), its entry
        // `pte_index` is beyond the mapped part and so empty; the frame is ours. The page was
        // never mapped, so no TLB entry for it exists.
        unsafe {
            table(region.phys_offset, pt)
                .add(pte_index)
                .write(frame | PRESENT | WRITABLE | nx)
        };
        region.mapped += PAGE;
    }
    (REGION_BASE + start, region.mapped - start)
}

/// `(mapped bytes, page-table frames)` of the region: the frames the heap holds.
pub fn stats() -> (u64, u64) {
    REGION
        .lock()
        .as_ref()
        .map_or((0, 0), |r| (r.mapped, r.table_frames))
}
