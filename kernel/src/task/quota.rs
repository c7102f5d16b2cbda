//! Per-process quotas and low-memory admission: what bounds the kernel memory user space can pin.
//!
//! | resource | bound | status when reached |
//! | --- | --- | --- |
//! | handles of one table | `syscalls::handle::DEFAULT_LIMIT` (16 Ki) | `ZX_ERR_NO_RESOURCES` |
//! | handles charged to an account (its table, and what it wrote that is still queued) | the account's handle limit | `ZX_ERR_NO_RESOURCES` |
//! | handles kernel-wide | `syscalls::handle::MAX_LIVE_HANDLES` (256 Ki) | `ZX_ERR_NO_MEMORY` |
//! | thread objects in one process | [`MAX_THREADS_PER_PROCESS`] | `ZX_ERR_NO_RESOURCES` |
//! | thread objects charged to an account (the threads its process created, wherever) | the account's thread limit | `ZX_ERR_NO_RESOURCES` |
//! | threads kernel-wide | `arch::kstack::SLOTS` kernel stacks | `ZX_ERR_NO_RESOURCES` |
//! | processes charged to an account (those its process created) | the account's process limit | `ZX_ERR_NO_RESOURCES` |
//! | mappings + VMARs of one address space | [`MAX_REGIONS`], charged exactly what a call adds (see below) | `ZX_ERR_NO_MEMORY` |
//! | mappings + VMARs charged to an account (the address spaces of its process and descendants) | the account's region limit | `ZX_ERR_NO_MEMORY` |
//! | frames for user space (VMO pages, user page tables, thread stacks) | all but the kernel reserve (`frame_alloc::reserve`) | `ZX_ERR_NO_MEMORY` |
//! | new kernel objects while the heap eats into the reserve (`frame_alloc::low_memory`) | refused | `ZX_ERR_NO_MEMORY` |
//! | channel messages queued at one endpoint | `syscalls::channel::MAX_QUEUED_MESSAGES` (64) and `MAX_QUEUED_BYTES` (256 KiB) | `ZX_ERR_SHOULD_WAIT` |
//! | queued message bytes charged to an account (what its process wrote) | the account's byte limit | `ZX_ERR_NO_RESOURCES` |
//! | channel message bytes kernel-wide | `syscalls::channel::MAX_TOTAL_QUEUED_BYTES` (8 MiB) | `ZX_ERR_NO_MEMORY` |
//!
//! Accounts (`syscalls::account`): a charge counts against the account of the process that
//! caused it and every ancestor's; a new process's limits are half of what its creator has left
//! ([`new_account`]); the first process (and every process the kernel creates) gets
//! [`ROOT_LIMITS`], each kernel-wide pool less a reserve for the kernel. So user processes never
//! reach a kernel-wide bound, and a child with all its descendants can take at most half of what
//! its creator had left when it created the child.
//!
//! Channel endpoints, like VMOs, live through handles (in tables or in queued messages, both
//! counted), and a write can never make endpoints keep each other alive (`zx_channel_write`
//! refuses ownership cycles). VMOs need no count of their own: each is kept alive by a handle or a mapping, both bounded
//! above, and a VMO's size costs nothing until pages are committed (a sparse page list), which
//! the frame reserve bounds. Processes live through handles or their threads, and each is
//! charged to its creator's account.
//!
//! The region quota is kept by the address space itself ([`bound_address_space`] sets it when a
//! process is created), so it holds for the address space a call edits (a parent mapping into
//! a child's root VMAR spends the child's quota) and is checked in each VMAR operation's check
//! phase, where the exact change is known: map and allocate add one region, a protect or unmap
//! that cuts a mapping adds one per cut, a protect that merges removes one per merge, an unmap
//! of whole mappings and a destroy only remove. A call that adds nothing is never refused (so a
//! process at its quota can always unmap or protect back), one that adds regions is refused
//! with `ZX_ERR_NO_MEMORY` beyond [`MAX_REGIONS`] or while memory is low, with nothing
//! changed. (Each split allocates kernel memory; that is why the low-memory admission applies
//! to it too, although `zx_vmar_protect` / `zx_vmar_unmap` do not have the `creates_objects`
//! attribute of the syscall table (`abi::syscall_numbers::creates_objects`): those calls that
//! only lower usage must get through.)

use super::process::Process;
use abi::syscall_numbers::creates_objects;
use abi::Status;
use alloc::sync::Arc;
use syscalls::account::{Account, Charge, Resource, RESOURCES};

/// The limits of a root account (the first process, and processes the kernel creates for
/// tests): each kernel-wide pool less a reserve for the kernel, so user processes together can
/// never reach a kernel-wide limit (see `syscalls::account`).
pub const ROOT_LIMITS: [usize; RESOURCES] = {
    let mut l = [0; RESOURCES];
    l[Resource::Handles as usize] = syscalls::handle::MAX_LIVE_HANDLES - 32 * 1024;
    l[Resource::Threads as usize] = arch::kstack::SLOTS - 64;
    l[Resource::ChannelBytes as usize] = syscalls::channel::MAX_TOTAL_QUEUED_BYTES - 1024 * 1024;
    l[Resource::Processes as usize] = 1024;
    l[Resource::Regions as usize] = MAX_REGIONS_CHARGED;
    l
};

/// The regions (mappings + VMARs) a root account may have charged: four address spaces at
/// [`MAX_REGIONS`] (each region holds about 200 bytes of kernel heap; the low-memory admission
/// refuses new ones before the heap runs into the kernel reserve).
pub const MAX_REGIONS_CHARGED: usize = 4 * MAX_REGIONS;

/// The account of a new process: a child of `creator`'s (its limits half of what `creator`
/// has left), or a root account for a process the kernel creates (`None`).
pub fn new_account(creator: Option<&Arc<Account>>) -> Arc<Account> {
    match creator {
        Some(c) => Account::child(c),
        None => Account::root(ROOT_LIMITS),
    }
}

/// Charges one process to `creator`'s account; `ZX_ERR_NO_RESOURCES` at its limit.
pub fn charge_process(creator: Option<&Arc<Account>>) -> Result<Option<Charge>, Status> {
    creator
        .map(|c| c.charge(Resource::Processes, 1))
        .transpose()
}

/// Most thread objects (started or not, until their last handle closes) one process may have.
pub const MAX_THREADS_PER_PROCESS: u32 = 128;
/// Most mappings plus VMARs (root included) in one address space: Linux's default
/// `vm.max_map_count` is 65 530.
pub const MAX_REGIONS: usize = 64 * 1024;

/// Puts a new process's address space under the region quota, its account's region budget
/// and the low-memory admission (see the module docs).
pub fn bound_address_space(aspace: &vm::AddressSpace, account: &Arc<Account>) {
    aspace.set_region_limit(MAX_REGIONS, may_add_regions);
    aspace.set_region_budget(Arc::new(RegionCharge {
        account: account.clone(),
    }));
}

/// An address space's regions, charged to the account of the process that owns it.
struct RegionCharge {
    account: Arc<Account>,
}

impl vm::RegionBudget for RegionCharge {
    fn charge(&self, n: usize) -> bool {
        self.account.add(Resource::Regions, n).is_ok()
    }

    fn release(&self, n: usize) {
        self.account.release(Resource::Regions, n);
    }
}

/// May a VMAR operation add regions now? Not while the heap eats into the kernel reserve.
fn may_add_regions() -> bool {
    !crate::frame_alloc::low_memory()
}

/// Admission before `syscalls::dispatch` for `process` calling `number` with `args`: the
/// low-memory check, which refuses the calls the syscall table marks `creates_objects`
/// (`abi::syscall_numbers::creates_objects`) while memory is low (the region quota is the
/// address space's, see the module docs).
pub fn admit(process: &Arc<Process>, number: u64, args: &[u64; 8]) -> Result<(), Status> {
    let _ = (process, args);
    let Ok(number) = u32::try_from(number) else {
        return Ok(());
    };
    if creates_objects(number) && crate::frame_alloc::low_memory() {
        return Err(Status::ERR_NO_MEMORY);
    }
    Ok(())
}

/// May `process` get one more thread object, created by the owner of `creator`? Returns the
/// creator's charge for it. `ZX_ERR_NO_RESOURCES` at the per-process quota of `process`, at the
/// thread budget of `creator` or an ancestor, or when every kernel-stack slot is taken.
pub fn admit_thread(process: &Process, creator: &Arc<Account>) -> Result<Charge, Status> {
    if process.thread_objects() >= MAX_THREADS_PER_PROCESS
        || arch::kstack::in_use() >= arch::kstack::SLOTS
    {
        return Err(Status::ERR_NO_RESOURCES);
    }
    creator.charge(Resource::Threads, 1)
}
