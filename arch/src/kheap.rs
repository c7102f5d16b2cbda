//! The kernel heap's virtual region: one PML4 slot of the kernel half ([`REGION_BASE`], 512 GiB
//! reserved) in which the heap maps page runs for its large allocations and unmaps them again
//! when they are freed, so their frames go back to the frame allocator.
//!
//! [`init`] installs the region's PDPT in the boot PML4 before any user address space copies the
//! kernel half (like [`crate::kstack`]); page directories and page tables below it are allocated
//! on first use ([`map`]) and kept (they are reused by later runs at the same addresses; their
//! number is bounded by the highest address ever used, see [`stats`]). Since the PDPT is shared by
//! pointer, every address space sees every heap page at once. Pages are mapped read/write,
//! no-execute.
//!
//! [`unmap`] clears each entry and invalidates its TLB entry on every CPU (`arch::tlb`, with the
//! region lock released: the other CPUs may be waiting for it) before handing the frame back,
//! so no stale translation can reach a frame after it was reused. A page that was never mapped is not cached by the TLB, so mapping
//! needs no flush. A non-present entry of a table that exists can hold a word of the caller's
//! ([`set_link`] / [`link`]): the heap threads its lists of free virtual runs through them, so
//! they cost no memory.
//!
//! Nothing here allocates from the heap: its functions run under the heap's lock and take frames
//! through callbacks.

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
    /// Pages mapped now.
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

/// The page-table entry of `va` (in the region), creating the tables on the way with `alloc`
/// (pass `&mut || None` to create nothing). `None` when `va` is outside the region, or a table
/// is missing and could not be created.
fn pte(region: &mut Region, va: u64, alloc: FrameAlloc<'_>) -> Option<*mut u64> {
    if !(REGION_BASE..REGION_BASE + REGION_LEN).contains(&va) {
        return None;
    }
    let off = va - REGION_BASE;
    let pdpt = region.pdpt;
    let pd = child(region, pdpt, ((off >> 30) & 511) as usize, &mut *alloc)?;
    let pt = child(region, pd, ((off >> 21) & 511) as usize, alloc)?;
    // SAFETY: pointer arithmetic only, inside the page table `pt` (index < 512).
    Some(unsafe { table(region.phys_offset, pt).add(((off >> 12) & 511) as usize) })
}

/// Maps `pages` fresh frames from `alloc` at `[va, va + pages * 4 KiB)`, which must lie in the
/// region and be unmapped (page aligned). Returns how many pages were mapped: fewer than `pages`
/// when frames ran out (the caller then [`unmap`]s that many).
pub fn map(va: u64, pages: u64, alloc: FrameAlloc<'_>) -> u64 {
    let mut guard = REGION.lock();
    let Some(region) = guard.as_mut() else {
        return 0;
    };
    for i in 0..pages {
        let Some(page_va) = i.checked_mul(PAGE).and_then(|o| va.checked_add(o)) else {
            return i;
        };
        let Some(entry) = pte(region, page_va, &mut *alloc) else {
            return i;
        };
        // SAFETY: `entry` is a PTE of the region's own tables.
        if unsafe { entry.read() } & PRESENT != 0 {
            panic!("kheap: mapping over the mapped heap page {page_va:#x}");
        }
        let Some(frame) = alloc() else { return i };
        let nx = region.nx;
        // SAFETY: the entry is non-present (checked: no TLB entry caches it, so no flush), the
        // frame is ours.
        unsafe { entry.write(frame | PRESENT | WRITABLE | nx) };
        region.mapped += 1;
    }
    pages
}

/// Unmaps `[va, va + pages * 4 KiB)` (every page mapped by [`map`]), invalidating each TLB entry
/// before its frame goes to `free`. The entries are left zero.
///
/// # Panics
/// When one of the pages is not mapped (a heap bookkeeping error).
pub fn unmap(va: u64, pages: u64, free: &mut dyn FnMut(u64)) {
    // Pass 1: every entry loses PRESENT (keeping the frame address for pass 2).
    {
        let mut guard = REGION.lock();
        let Some(region) = guard.as_mut() else { return };
        for i in 0..pages {
            let page_va = va + i * PAGE;
            let entry = pte(region, page_va, &mut || None);
            // SAFETY: `entry` is a PTE of the region's own tables.
            let old = entry.map_or(0, |e| unsafe { e.read() });
            if old & PRESENT == 0 {
                panic!("kheap: unmapping the unmapped heap page {page_va:#x}");
            }
            if let Some(e) = entry {
                // SAFETY: as above; the caller no longer uses the page.
                unsafe { e.write(old & !PRESENT) };
            }
        }
    }
    // Every CPU forgets the pages before a frame is reused (outside the region lock: the other
    // CPUs may wait for it while this one waits for them).
    crate::tlb::shootdown_kernel(crate::tlb::Scope::Pages { start: va, pages });
    // Pass 2: the entries become zero and the frames go back.
    let mut guard = REGION.lock();
    let Some(region) = guard.as_mut() else { return };
    for i in 0..pages {
        let page_va = va + i * PAGE;
        if let Some(e) = pte(region, page_va, &mut || None) {
            // SAFETY: a PTE of the region's own tables, non-present since pass 1.
            let old = unsafe { e.read() };
            // SAFETY: as above.
            unsafe { e.write(0) };
            region.mapped -= 1;
            free(old & ADDR_MASK);
        }
    }
}

/// Stores `value` (its lowest bit must be clear, so the entry stays non-present) in the unmapped
/// page entry of `va`. False when the entry's table does not exist (nothing stored).
///
/// # Panics
/// When `va` is mapped or `value` has its lowest bit set.
pub fn set_link(va: u64, value: u64) -> bool {
    assert_eq!(
        value & PRESENT,
        0,
        "kheap: a link must keep the entry non-present"
    );
    let mut guard = REGION.lock();
    let Some(entry) = guard.as_mut().and_then(|r| pte(r, va, &mut || None)) else {
        return false;
    };
    // SAFETY: a PTE of the region's own tables; checked non-present, and stays non-present.
    unsafe {
        assert_eq!(entry.read() & PRESENT, 0, "kheap: a link in a mapped page");
        entry.write(value);
    }
    true
}

/// The word [`set_link`] stored for `va` (0 when its table does not exist).
pub fn link(va: u64) -> u64 {
    let mut guard = REGION.lock();
    guard
        .as_mut()
        .and_then(|r| pte(r, va, &mut || None))
        // SAFETY: a PTE of the region's own tables.
        .map_or(0, |e| unsafe { e.read() })
}

/// `(mapped pages, page-table frames)` of the region: the frames it holds.
pub fn stats() -> (u64, u64) {
    REGION
        .lock()
        .as_ref()
        .map_or((0, 0), |r| (r.mapped, r.table_frames))
}
