//! Paging: x86_64 4-level page tables behind the portable VM's traits.
//!
//! This module owns the CPU's paging features (EFER.NXE, CR4.SMEP, CR4.SMAP, enabled once by
//! [`init`]), the kernel's boot page table ([`kernel_root_phys`]), CR3 switching ([`activate`])
//! and the two trait implementations the VM runs on:
//!
//! - [`DirectPhysMem`] (`vm::PhysMem`): 4 KiB frames from the kernel's frame allocator (reached
//!   through the unsafe [`FrameSource`] trait), their contents read and written through the
//!   bootloader's physical-offset mapping. It remembers which frames it handed out and as what
//!   (VMO data, page table, top-level table), so no safe call can reach a frame it does not own.
//! - [`X86Mmu`] (`vm::Mmu`): the page tables of ONE user address space. Its top-level table
//!   (PML4) shares the kernel half (entries 256..512) with the boot table, so switching CR3 between
//!   address spaces never changes a kernel mapping.
//!
//! The kernel half is shared by *pointer*: [`init`] makes sure each of the 256 kernel PML4 entries
//! points at a PDPT before any user address space exists, and every [`X86Mmu`] copies those 256
//! entries. A kernel mapping added later (below a PML4 entry) is therefore visible in every
//! address space at once, and no PML4 entry of the kernel half ever changes.
//!
//! TLB policy ([`X86Mmu`]'s `flush`): a token naming at most
//! `vm::arch_traits::FLUSH_ALL_THRESHOLD_PAGES` pages becomes one `invlpg` per page, anything
//! larger a CR3 reload; locally both happen only when the address space is the one loaded in CR3,
//! because without PCIDs a CR3 switch already drops every non-global TLB entry. The other CPUs
//! that have it loaded (its CPU mask) get one shootdown through [`crate::tlb`], which returns
//! once each of them flushed.

mod mmu;
mod phys;

pub use mmu::X86Mmu;
pub use phys::{DirectPhysMem, FrameKind, FrameSource};

use crate::extable::USER_END;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use spin::Once;
use vm::PhysMem;
use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// Size of a page and of a page-table page.
pub const PAGE_SIZE: u64 = 4096;

/// First byte of a user address space: 2 MiB, so null-pointer offsets below it never land in a
/// mapping. Zircon's core test `Vmar.AllocateAtLowAddressTest` (vmar.cc) requires a new
/// process's root VMAR to start at or below 0x200000 and maps a page there (Zircon lowered its
/// `USER_ASPACE_BASE` from the 16 MiB of older trees to 2 MiB, the value its riscv64 port uses).
pub const USER_ASPACE_BASE: u64 = 0x0000_0000_0020_0000;

/// One past the last byte of a user address space: the end of the lower canonical half minus
/// one page (Zircon's choice: keeps user RIP away from the canonical boundary, where SYSRET to a
/// non-canonical return address faults in ring 0 on Intel CPUs).
pub const USER_ASPACE_END: u64 = USER_END - PAGE_SIZE;

/// Size of a user address space: `USER_ASPACE_END - USER_ASPACE_BASE`.
pub const USER_ASPACE_SIZE: u64 = USER_ASPACE_END - USER_ASPACE_BASE;

/// Page-table entry bits.
pub mod pte {
    /// Present.
    pub const PRESENT: u64 = 1 << 0;
    /// Writable.
    pub const WRITABLE: u64 = 1 << 1;
    /// Accessible from ring 3.
    pub const USER: u64 = 1 << 2;
    /// Accessed (set by the CPU).
    pub const ACCESSED: u64 = 1 << 5;
    /// Dirty (set by the CPU).
    pub const DIRTY: u64 = 1 << 6;
    /// Large page (2 MiB / 1 GiB); never used in user tables.
    pub const HUGE: u64 = 1 << 7;
    /// Global (survives CR3 reloads); never used in user tables.
    pub const GLOBAL: u64 = 1 << 8;
    /// No-execute (needs EFER.NXE).
    pub const NO_EXECUTE: u64 = 1 << 63;
    /// The physical-address field.
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
}

/// Paging features found and enabled by [`init`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// EFER.NXE: the NO_EXECUTE bit is honoured.
    pub nx: bool,
    /// CR4.SMEP: ring 0 cannot execute user pages.
    pub smep: bool,
    /// CR4.SMAP: ring 0 cannot touch user pages except between `stac` and `clac`.
    pub smap: bool,
}

struct Globals {
    phys_offset: u64,
    kernel_root: u64,
    phys: Arc<DirectPhysMem>,
    features: Features,
}

static GLOBALS: Once<Globals> = Once::new();

/// 1 while CR4.SMAP is on: the trap entry and the fault-safe copies (assembly) test it before
/// executing `clac`/`stac`, which are invalid opcodes on CPUs without SMAP.
pub(crate) static ARCH_SMAP_ON: AtomicU8 = AtomicU8::new(0);

fn globals() -> &'static Globals {
    GLOBALS.get().expect("arch::paging::init has not run yet")
}

/// Brings up paging support: enables NXE (required: user tables rely on NO_EXECUTE), SMEP and
/// SMAP when the CPU has them, makes every kernel-half PML4 entry of the boot table present (so
/// user tables can share them), and creates the [`DirectPhysMem`] over `frames`. Returns the
/// features that are now on. Call once, after the heap is up and before any user address space
/// exists; a second call returns the first call's result and changes nothing.
///
/// # Safety
///
/// `phys_offset` must be the virtual address at which the bootloader mapped all physical memory
/// (writable, for at least every frame `frames` can hand out and every page-table frame of the
/// boot table), and the CPU must be running on the boot page table (CR3).
pub unsafe fn init(phys_offset: u64, frames: &'static dyn FrameSource) -> Features {
    let g = GLOBALS.call_once(|| {
        let features = enable_features();
        let kernel_root = crate::cpu::cr3();
        let phys = Arc::new(DirectPhysMem::new(frames, phys_offset));
        // SAFETY: `kernel_root` is the live boot PML4, mapped at `phys_offset` (caller contract);
        // the kernel's tables are never freed.
        let root = unsafe { phys::TableRef::new(phys_offset, kernel_root, 3) };
        for entry in &root.entries()[256..] {
            if entry.load(Ordering::Relaxed) & pte::PRESENT == 0 {
                // The kernel half only grows below these entries from now on. A frame taken
                // here is never freed (it belongs to the kernel's page table forever).
                let pdpt = frames
                    .alloc()
                    .expect("no frame for a kernel PDPT at paging init");
                // SAFETY: the frame was just handed to us by the frame source (exclusively ours)
                // and is mapped writable at `phys_offset`.
                unsafe { core::ptr::write_bytes((phys_offset + pdpt) as *mut u8, 0, 4096) };
                entry.store(pdpt | pte::PRESENT | pte::WRITABLE, Ordering::SeqCst);
            }
        }
        Globals {
            phys_offset,
            kernel_root,
            phys,
            features,
        }
    });
    g.features
}

fn enable_features() -> Features {
    let ext = core::arch::x86_64::__cpuid(0x8000_0001);
    let max_leaf = core::arch::x86_64::__cpuid(0).eax;
    let leaf7 = if max_leaf >= 7 {
        core::arch::x86_64::__cpuid_count(7, 0).ebx
    } else {
        0
    };
    let nx = ext.edx & (1 << 20) != 0;
    let smep = leaf7 & (1 << 7) != 0;
    let smap = leaf7 & (1 << 20) != 0;
    assert!(nx, "the CPU has no NX bit: user W^X cannot be enforced");
    // SAFETY: setting NXE only makes the (otherwise reserved) bit 63 of page-table entries mean
    // no-execute; the bootloader's tables already use it (it enabled NXE itself).
    unsafe { Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    let mut cr4 = Cr4Flags::empty();
    if smep {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if smap {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    // SAFETY: SMEP forbids ring 0 to execute user pages and SMAP to access them outside
    // `stac`/`clac`; the kernel never executes user pages, and its only user accesses are the
    // fault-safe copies in `extable`, which bracket the access with `stac`/`clac` once
    // `ARCH_SMAP_ON` is set (set right below, before any user mapping can exist).
    unsafe { Cr4::update(|f| f.insert(cr4)) };
    ARCH_SMAP_ON.store(smap as u8, Ordering::SeqCst);
    Features { nx, smep, smap }
}

/// The features [`init`] enabled.
pub fn features() -> Features {
    globals().features
}

/// Physical address of the kernel's boot PML4 (the table to return to when no user address
/// space is active).
pub fn kernel_root_phys() -> u64 {
    globals().kernel_root
}

/// The physical-memory object every VMO and page table allocates from.
pub fn phys_mem() -> Arc<dyn PhysMem> {
    globals().phys.clone()
}

/// The same object, with its concrete type (ownership counters for leak tests).
pub fn direct_phys_mem() -> &'static Arc<DirectPhysMem> {
    &globals().phys
}

/// Page-table pages currently owned by all [`X86Mmu`]s (top-level tables included). Returns to
/// its previous value when an address space is unmapped and dropped: a leak test's counter.
pub fn live_table_pages() -> usize {
    globals().phys.count(FrameKind::Table) + globals().phys.count(FrameKind::Root)
}

/// The physical address of the active top-level table (CR3).
pub fn active_root_phys() -> u64 {
    crate::cpu::cr3()
}

/// Loads `root_phys` into CR3, making that address space the current one on this CPU (a no-op
/// when it already is). `root_phys` must be [`kernel_root_phys`] or the [`X86Mmu::root_phys`] of
/// a live `X86Mmu`; anything else panics (a kernel bug, never reachable from user input).
///
/// Sound because every table this accepts maps the kernel identically: the kernel half of each
/// user PML4 is a copy of the boot PML4's kernel half, whose entries never change after [`init`]
/// (see the module docs), so the code, stack and data the CPU is using stay mapped at the same
/// addresses across the switch; only the lower (user) half changes, and the kernel holds no
/// Rust references into it (user memory is touched only through the fault-safe copies).
///
/// The caller must not drop the `X86Mmu` while its table is loaded on another CPU (the kernel
/// keeps a reference per CPU that has it loaded, and `X86Mmu`'s drop asserts it; it switches
/// this CPU back to the kernel table if needed).
pub fn activate(root_phys: u64) {
    let g = globals();
    assert!(
        root_phys == g.kernel_root || g.phys.kind_of(root_phys) == Some(FrameKind::Root),
        "activate: {root_phys:#x} is not a page-table root"
    );
    if crate::cpu::cr3() != root_phys {
        // SAFETY: `root_phys` is the boot PML4 or a live X86Mmu root, whose kernel half equals the
        // boot PML4's (see above), so every kernel mapping stays valid across the switch.
        unsafe { load_cr3(root_phys) };
    }
}

/// # Safety
///
/// `root` must be a PML4 that maps the kernel exactly as the current one does.
unsafe fn load_cr3(root: u64) {
    // SAFETY: forwarded to the caller; writing CR3 also flushes non-global TLB entries.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) };
}

/// Flushes every non-global TLB entry and every paging-structure cache entry of this CPU.
pub(crate) fn flush_all_local() {
    let root = crate::cpu::cr3();
    // SAFETY: reloading the current CR3 value keeps every mapping; it only drops cached ones.
    unsafe { load_cr3(root) };
}

static INVLPG_PAGES: AtomicU64 = AtomicU64::new(0);
static FULL_FLUSHES: AtomicU64 = AtomicU64::new(0);

/// Records a local flush: `pages` single-page invalidations, or a full flush when 0.
pub(crate) fn count_flush(pages: usize) {
    if pages == 0 {
        FULL_FLUSHES.fetch_add(1, Ordering::Relaxed);
    } else {
        INVLPG_PAGES.fetch_add(pages as u64, Ordering::Relaxed);
    }
}

/// TLB work done by [`X86Mmu`] flushes on this CPU so far: `(pages invalidated with invlpg,
/// full flushes by CR3 reload)`. Flushes of inactive address spaces do no work and count nothing.
pub fn tlb_stats() -> (u64, u64) {
    (
        INVLPG_PAGES.load(Ordering::Relaxed),
        FULL_FLUSHES.load(Ordering::Relaxed),
    )
}

/// Invalidates the TLB entry of the page at `vaddr` (and, per the SDM, all paging-structure
/// cache entries of the current address space).
pub(crate) fn invlpg(vaddr: u64) {
    // SAFETY: `invlpg` only drops a cached translation; it cannot change any mapping.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) vaddr, options(nostack, preserves_flags)) };
}

/// The raw leaf entry (PTE) that maps `vaddr` in the table rooted at `root_phys`, if a present
/// one exists. `root_phys` must be the kernel root or a live [`X86Mmu`] root (else `None`). For
/// tests and diagnostics.
pub fn leaf_entry(root_phys: u64, vaddr: u64) -> Option<u64> {
    let g = globals();
    if root_phys != g.kernel_root && g.phys.kind_of(root_phys) != Some(FrameKind::Root) {
        return None;
    }
    // SAFETY: `root_phys` is the kernel's PML4 or a live X86Mmu root (checked above); this reads
    // entries only, at a time its owner is not freeing tables (tests and diagnostics).
    let mut table = unsafe { phys::TableRef::new(g.phys_offset, root_phys, 3) };
    loop {
        let index = ((vaddr >> (12 + 9 * table.level())) & 511) as usize;
        match table.child(index) {
            Some(child) => table = child,
            None => {
                // A PT's entry, a huge page, or nothing.
                let e = table.entry(index).load(Ordering::Relaxed);
                return (e & pte::PRESENT != 0).then_some(e);
            }
        }
    }
}
