//! Memory-management glue: wires the frame allocator into `arch::paging` (the VM's `PhysMem`),
//! the page-fault hook into the current address space, and creates user address spaces.
//!
//! - [`init`]: `arch::paging::init` over [`KernelFrames`] (the one `unsafe impl` here), then
//!   installs [`page_fault_hook`].
//! - [`new_user_aspace`]: an `X86Mmu` inside a `vm::AddressSpace` covering
//!   `[USER_ASPACE_BASE, USER_ASPACE_END)`, returned with its page-table root.
//! - [`check_live_aspaces`]: `vm::AddressSpace::check_invariants` on every live user address
//!   space (a registry of weak references filled by [`new_user_aspace`]), for
//!   `zx_debug_kernel_stats`.
//! - [`switch_aspace`]: makes an address space current on the running CPU (CR3, the CPU's bit in
//!   the address space's CPU mask, and the one the fault hook resolves against): one slot per
//!   CPU, touched only by its CPU. The slot holds a reference, so an address space (and its page
//!   tables) is freed only once no CPU has it loaded.

use crate::frame_alloc::{self, Frame};
use crate::SpinMutex as Mutex;
use abi::Status;
use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use arch::paging::{self, FrameSource, X86Mmu};
use arch::percpu::MAX_CPUS;
use arch::trap::PageFaultInfo;
use core::sync::atomic::{AtomicU64, Ordering};
use lock_order::{Class, OrderedMutex};
use vm::{AddressSpace, AspaceConfig, RandomSource};

/// The kernel's bitmap frame allocator, as `arch::paging` sees it.
pub struct KernelFrames;

// SAFETY: `frame_alloc` hands out 4 KiB frames of memory the boot memory map calls Usable (the
// bitmap's own frames excluded), each at most once until it is freed, below `frame_limit()`; the
// bootloader maps all physical memory writable at the offset given to `paging::init`; and no
// other kernel code keeps using a frame after allocating it for someone else.
unsafe impl FrameSource for KernelFrames {
    /// Every frame `arch::paging` takes is for user space (VMO pages, user page tables), so it
    /// respects the kernel reserve.
    fn alloc(&self) -> Option<u64> {
        frame_alloc::alloc_user().map(Frame::addr)
    }

    fn free(&self, frame: u64) {
        let f = Frame::from_addr(frame).expect("unaligned frame freed");
        if let Err(e) = frame_alloc::free(f) {
            panic!("paging freed frame {frame:#x}: {e:?}");
        }
    }

    fn free_frames(&self) -> usize {
        frame_alloc::stats().free as usize
    }

    fn used_frames(&self) -> usize {
        frame_alloc::stats().used() as usize
    }

    fn frame_limit(&self) -> u64 {
        frame_alloc::frame_limit()
    }
}

static KERNEL_FRAMES: KernelFrames = KernelFrames;

/// A user address space as a CPU loads it: the VM's address space and the physical address of
/// its page-table root (what CR3 gets). Made by [`new_user_aspace`], made current by
/// [`switch_aspace`].
#[derive(Clone)]
pub struct UserAspace {
    /// The address space (regions, mappings, page tables).
    pub aspace: Arc<AddressSpace>,
    /// Physical address of its PML4.
    pub root: u64,
    /// The CPUs that have it loaded (its `X86Mmu`'s mask: the targets of its shootdowns).
    pub cpus: Arc<AtomicU64>,
}

/// Each CPU's current user address space (`None`: the kernel's table); slot i is only touched
/// by CPU i, with interrupts off.
static CURRENT: [Mutex<Option<UserAspace>>; MAX_CPUS] = [const { Mutex::new(None) }; MAX_CPUS];

/// Brings up paging (NXE, SMEP, SMAP, the shared kernel half, `PhysMem`) and the fault hook.
/// Call once, after the frame allocator and the heap.
pub fn init(phys_offset: u64) {
    // SAFETY: `phys_offset` is the bootloader's physical-memory mapping (BootloaderConfig asks for
    // it), covering every frame `KERNEL_FRAMES` hands out and the boot page tables; we are still
    // on the boot page table.
    let f = unsafe { paging::init(phys_offset, &KERNEL_FRAMES) };
    arch::trap::set_page_fault_hook(Some(page_fault_hook));
    log::info!(
        "paging: NX {}, SMEP {}, SMAP {}; kernel root {:#x}",
        f.nx,
        f.smep,
        f.smap,
        paging::kernel_root_phys()
    );
}

/// Resolves a fault on a user address in the current address space (demand paging).
/// `ERR_NOT_FOUND` when no user address space is current, `ERR_BAD_STATE` when the fault hit
/// while the current-space slot was being switched.
pub fn page_fault_hook(info: &PageFaultInfo) -> Result<(), Status> {
    // A fault from ring 3 is its own interrupts-off stretch; one inside a syscall is the
    // syscall's.
    let own = crate::task::irqoff::begin_if_idle(abi::irqoff::PAGE_FAULT);
    let r = resolve_fault(info);
    if own {
        crate::task::irqoff::end();
    }
    r
}

fn resolve_fault(info: &PageFaultInfo) -> Result<(), Status> {
    let aspace = {
        let current = CURRENT[arch::percpu::cpu_index()]
            .try_lock()
            .ok_or(Status::ERR_BAD_STATE)?;
        current.as_ref().map(|u| u.aspace.clone())
    };
    let aspace = aspace.ok_or(Status::ERR_NOT_FOUND)?;
    // A write to a page changing frame in steps waits for the change, driving it. A fault from
    // ring 3 holds no lock here: it lets other threads run between two steps. A fault of a
    // kernel fault-safe copy may run under a syscall's locks: it drives the steps without
    // preemption points.
    let mut preempt = || {
        if info.user_mode {
            crate::task::sched::preempt_point();
        }
    };
    aspace.fault_in_steps(info.vaddr as usize, info.mmu_access(), &mut preempt)
}

/// A new user address space `[USER_ASPACE_BASE, USER_ASPACE_END)` with ASLR drawn from `rng`.
pub fn new_user_aspace(rng: Box<dyn RandomSource>) -> Result<UserAspace, Status> {
    let mmu = X86Mmu::new_user(paging::phys_mem())?;
    let root = mmu.root_phys();
    let cpus = mmu.cpu_mask();
    let config = AspaceConfig::user(
        paging::USER_ASPACE_BASE as usize,
        paging::USER_ASPACE_SIZE as usize,
    );
    let aspace = AddressSpace::new(config, Box::new(mmu), rng)?;
    with_registry(|r| {
        r.retain(|w| w.strong_count() > 0);
        r.push(Arc::downgrade(&aspace));
    });
    Ok(UserAspace { aspace, root, cpus })
}

/// Every user address space created by [`new_user_aspace`] (dead ones are pruned lazily).
static ASPACES: OrderedMutex<Vec<Weak<AddressSpace>>> =
    OrderedMutex::new(Class::AspaceList, Vec::new());

fn with_registry<R>(f: impl FnOnce(&mut Vec<Weak<AddressSpace>>) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| f(&mut ASPACES.lock()))
}

/// Back-references one address-space check of [`check_live_aspaces`] recounts at most (a
/// recount is O(back-references of the VMO, kernel-wide); the VMOs past the budget are not
/// recounted).
pub const CHECK_MAX_BACKREFS: usize = 8 * 1024;

/// Address spaces with more mappings than this are not checked by [`check_live_aspaces`]: one
/// check is O(mappings log mappings + present entries) with interrupts off (about 20 ms under
/// TCG at 8 Ki mappings).
pub const CHECK_MAX_MAPPINGS: usize = 2048;

/// Runs `vm::AddressSpace::check_invariants_bounded` on every live user address space with at
/// most [`CHECK_MAX_MAPPINGS`] mappings, calling `preempt` (with no lock held) between two, so
/// one check is the longest interrupts-off stretch; logs each failure. Returns
/// `(checked, failed)`.
pub fn check_live_aspaces(preempt: fn()) -> (u64, u64) {
    let live: Vec<Arc<AddressSpace>> = with_registry(|r| {
        r.retain(|w| w.strong_count() > 0);
        r.iter().filter_map(Weak::upgrade).collect()
    });
    let (mut checked, mut failed) = (0, 0);
    for aspace in live {
        preempt();
        if aspace.mapping_count() > CHECK_MAX_MAPPINGS {
            continue;
        }
        checked += 1;
        if let Err(e) = aspace.check_invariants_bounded(CHECK_MAX_BACKREFS) {
            log::error!("address space invariants broken: {e}");
            failed += 1;
        }
        // The last reference may go here (a process that died meanwhile): outside any lock.
        drop(aspace);
    }
    (checked, failed)
}

/// Makes `next` current on the running CPU: sets this CPU's bit in its CPU mask, loads its
/// table into CR3, clears the bit in the previous one's mask and points the fault hook at it;
/// `None` returns to the kernel's table. Returns the previous one, so its last reference is
/// dropped by the caller, outside any lock.
///
/// Order: the bit is set before the CR3 load, so a shootdown that does not see the bit was
/// decided before this CPU could cache anything of the address space (its page-table changes
/// are visible to the walk after the load); the old bit is cleared after the load, which
/// dropped every translation of the old address space (no PCIDs), so a shootdown that no longer
/// targets this CPU misses nothing.
pub fn switch_aspace(next: Option<UserAspace>) -> Option<UserAspace> {
    let root = next.as_ref().map_or(paging::kernel_root_phys(), |u| u.root);
    // Interrupts off: a thread preempted while holding the slot would make the fault hook of the
    // next thread fail (it only try-locks), and the CPU index must stay the same.
    x86_64::instructions::interrupts::without_interrupts(|| {
        let cpu = arch::percpu::cpu_index();
        let bit = 1u64 << cpu;
        let mut current = CURRENT[cpu].lock();
        if let Some(n) = &next {
            n.cpus.fetch_or(bit, Ordering::SeqCst);
        }
        paging::activate(root);
        let old = core::mem::replace(&mut *current, next);
        if let Some(o) = &old {
            if current
                .as_ref()
                .is_none_or(|n| !Arc::ptr_eq(&n.cpus, &o.cpus))
            {
                o.cpus.fetch_and(!bit, Ordering::SeqCst);
            }
        }
        old
    })
}

mod tests;
