//! Kernel stacks for threads: frames mapped into a dedicated upper-half region, each stack with
//! unmapped guard pages below it.
//!
//! The region is one PML4 slot ([`REGION_BASE`], 512 GiB reserved, 64 MiB used) whose page
//! tables (a PDPT, one PD, `PT_COUNT` PTs) are all allocated by [`init`], before any user
//! address space copies the kernel half of the PML4: every address space sees every stack, and
//! allocating or freeing a stack never allocates or frees a page-table page (so free-frame counts
//! return exactly to their baseline). Slot `i` covers `SLOT_PAGES` pages: `GUARD_PAGES` unmapped,
//! then [`STACK_PAGES`] mapped (read/write, no-execute) frames.
//!
//! A kernel stack overflow runs into the guard page; the `#PF` cannot push its frame there and
//! escalates to `#DF` (on its IST stack), whose report names the thread stack ([`guard_hit`]).

use spin::Mutex;

/// Pages of one kernel stack.
pub const STACK_PAGES: usize = 16;
/// Bytes of one kernel stack.
pub const STACK_SIZE: u64 = (STACK_PAGES * 4096) as u64;
const SLOT_PAGES: usize = 32;
const GUARD_PAGES: usize = SLOT_PAGES - STACK_PAGES;
/// Number of stack slots (threads that can exist at once).
pub const SLOTS: usize = 512;
const PT_COUNT: usize = SLOTS * SLOT_PAGES / 512;
/// PML4 index of the region.
const PML4_INDEX: usize = 496;
/// First byte of the region.
pub const REGION_BASE: u64 = 0xffff_0000_0000_0000 | ((PML4_INDEX as u64) << 39);
const REGION_LEN: u64 = (SLOTS * SLOT_PAGES * 4096) as u64;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const NO_EXECUTE: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Allocates one 4 KiB frame (physical address), or `None` when memory is exhausted.
pub type FrameAlloc<'a> = &'a mut dyn FnMut() -> Option<u64>;

struct Region {
    phys_offset: u64,
    /// Physical addresses of the PTs, in address order.
    pts: [u64; PT_COUNT],
    used: [bool; SLOTS],
    nx: u64,
}

static REGION: Mutex<Option<Region>> = Mutex::new(None);

/// A mapped kernel stack. Owns its slot and frames; give it back with [`free`].
#[derive(Debug)]
pub struct KernelStack {
    slot: usize,
    frames: [u64; STACK_PAGES],
}

impl KernelStack {
    /// One past the highest byte (16-byte aligned): the initial RSP.
    pub fn top(&self) -> u64 {
        slot_base(self.slot) + (SLOT_PAGES * 4096) as u64
    }
    /// The lowest mapped byte.
    pub fn bottom(&self) -> u64 {
        self.top() - STACK_SIZE
    }
}

fn slot_base(slot: usize) -> u64 {
    REGION_BASE + (slot * SLOT_PAGES * 4096) as u64
}

fn table(phys_offset: u64, phys: u64) -> *mut u64 {
    (phys_offset + phys) as *mut u64
}

fn zero_frame(phys_offset: u64, phys: u64) {
    // SAFETY: `phys` is a frame just taken from the frame allocator (nothing else uses it) and
    // the bootloader maps all physical memory writable at `phys_offset`.
    unsafe { core::ptr::write_bytes(table(phys_offset, phys) as *mut u8, 0, 4096) };
}

/// Builds the region's page tables in the active (boot) PML4. Call once, after the frame
/// allocator and before creating any user address space. Fails when the region is taken or
/// frames run out.
pub fn init(phys_offset: u64, alloc: FrameAlloc<'_>) -> Result<(), &'static str> {
    let mut region = REGION.lock();
    if region.is_some() {
        return Err("kstack::init called twice");
    }
    let pml4 = table(phys_offset, crate::cpu::cr3());
    // SAFETY: CR3 holds the boot PML4, mapped through the physical-memory offset; index < 512.
    let entry = unsafe { pml4.add(PML4_INDEX).read() };
    let mut new = || -> Result<u64, &'static str> {
        let f = alloc().ok_or("out of frames for kernel-stack page tables")?;
        zero_frame(phys_offset, f);
        Ok(f)
    };
    // The PML4 entry may already point at an (empty) PDPT: paging init makes every kernel-half
    // entry present so user tables can share them. Reuse it then; the region uses PDPT entry 0.
    let (pdpt, fresh) = if entry & PRESENT != 0 {
        let pdpt = entry & ADDR_MASK;
        // SAFETY: a present PML4 entry of the boot table points at a PDPT frame, mapped at
        // phys_offset.
        if unsafe { table(phys_offset, pdpt).read() } & PRESENT != 0 {
            return Err("the kernel-stack region is already in use");
        }
        (pdpt, false)
    } else {
        (new()?, true)
    };
    let pd = new()?;
    let mut pts = [0u64; PT_COUNT];
    for (i, pt) in pts.iter_mut().enumerate() {
        *pt = new()?;
        // SAFETY: `pd` is a zeroed frame we own, mapped at phys_offset; i < 512.
        unsafe {
            table(phys_offset, pd)
                .add(i)
                .write(*pt | PRESENT | WRITABLE)
        };
    }
    // SAFETY: as above for `pdpt` (its entry 0 was checked empty, or it is fresh); a fresh PDPT
    // goes into the empty PML4 entry of the kernel half, so no existing mapping is replaced.
    unsafe {
        table(phys_offset, pdpt).write(pd | PRESENT | WRITABLE);
        if fresh {
            pml4.add(PML4_INDEX).write(pdpt | PRESENT | WRITABLE);
        }
    }
    let efer = x86_64::registers::model_specific::Efer::read_raw();
    let nx = if efer & (1 << 11) != 0 { NO_EXECUTE } else { 0 };
    *region = Some(Region {
        phys_offset,
        pts,
        used: [false; SLOTS],
        nx,
    });
    Ok(())
}

fn pte(region: &Region, vaddr: u64) -> *mut u64 {
    let page = ((vaddr - REGION_BASE) / 4096) as usize;
    // SAFETY: pointer arithmetic only; page < SLOTS * SLOT_PAGES, so the PT index is in range.
    unsafe { table(region.phys_offset, region.pts[page / 512]).add(page % 512) }
}

/// Allocates a zeroed, mapped kernel stack. `None` when slots or frames run out (nothing leaks).
pub fn alloc(alloc_frame: FrameAlloc<'_>, free_frame: &mut dyn FnMut(u64)) -> Option<KernelStack> {
    let mut guard = REGION.lock();
    let region = guard.as_mut()?;
    let slot = region.used.iter().position(|u| !u)?;
    let mut frames = [0u64; STACK_PAGES];
    for i in 0..STACK_PAGES {
        match alloc_frame() {
            Some(f) => frames[i] = f,
            None => {
                frames[..i].iter().for_each(|&f| free_frame(f));
                return None;
            }
        }
    }
    region.used[slot] = true;
    let bottom = slot_base(slot) + (GUARD_PAGES * 4096) as u64;
    for (i, &f) in frames.iter().enumerate() {
        zero_frame(region.phys_offset, f);
        // SAFETY: the PTE belongs to our free slot (unmapped, no TLB entry since the last free
        // flushed it); the frame is ours.
        unsafe {
            pte(region, bottom + (i * 4096) as u64).write(f | PRESENT | WRITABLE | region.nx)
        };
    }
    Some(KernelStack { slot, frames })
}

/// Unmaps `stack` and returns its frames through `free_frame`.
///
/// The caller guarantees no thread runs on the stack any more (the scheduler frees a thread's
/// stack only after switching away from it).
pub fn free(stack: KernelStack, free_frame: &mut dyn FnMut(u64)) {
    let bottom = stack.bottom();
    {
        let mut guard = REGION.lock();
        let Some(region) = guard.as_mut() else { return };
        for i in 0..stack.frames.len() {
            let va = bottom + (i * 4096) as u64;
            // SAFETY: the PTE belongs to this stack's slot; nothing runs on or references the
            // stack.
            unsafe { pte(region, va).write(0) };
        }
    }
    // Every CPU that ran the thread may cache the stack's translations: all of them forget
    // them before a frame is reused (outside the region lock: the other CPUs may wait for it).
    crate::tlb::shootdown_kernel(crate::tlb::Scope::Pages {
        start: bottom,
        pages: stack.frames.len() as u64,
    });
    for &f in stack.frames.iter() {
        debug_assert_eq!(f & !ADDR_MASK, 0);
        free_frame(f);
    }
    if let Some(region) = REGION.lock().as_mut() {
        region.used[stack.slot] = false;
    }
}

/// Stacks in use (for teardown checks).
pub fn in_use() -> usize {
    REGION
        .lock()
        .as_ref()
        .map_or(0, |r| r.used.iter().filter(|u| **u).count())
}

/// When `addr` lies in the guard pages of a thread's kernel stack: that stack as
/// `(bottom, top)`. Lock-free (used by the double-fault report).
pub fn guard_hit(addr: u64) -> Option<(u64, u64)> {
    if !(REGION_BASE..REGION_BASE + REGION_LEN).contains(&addr) {
        return None;
    }
    let page = ((addr - REGION_BASE) / 4096) as usize;
    if page % SLOT_PAGES >= GUARD_PAGES {
        return None;
    }
    let top = slot_base(page / SLOT_PAGES) + (SLOT_PAGES * 4096) as u64;
    Some((top - STACK_SIZE, top))
}
