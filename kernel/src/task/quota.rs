//! Per-process quotas and low-memory admission: what bounds the kernel memory user space can pin.
//!
//! | resource | bound | status when reached |
//! | --- | --- | --- |
//! | handles of one process | `syscalls::handle::DEFAULT_LIMIT` (16 Ki) | `ZX_ERR_NO_RESOURCES` |
//! | handles kernel-wide | `syscalls::handle::MAX_LIVE_HANDLES` (256 Ki) | `ZX_ERR_NO_MEMORY` |
//! | thread objects of one process | [`MAX_THREADS_PER_PROCESS`] | `ZX_ERR_NO_RESOURCES` |
//! | threads kernel-wide | `arch::kstack::SLOTS` kernel stacks | `ZX_ERR_NO_RESOURCES` |
//! | mappings + VMARs of one address space | [`MAX_REGIONS`] for map/allocate, plus [`REGION_SLACK`] for protect/unmap (which may split a mapping) | `ZX_ERR_NO_MEMORY` |
//! | frames for user space (VMO pages, user page tables, thread stacks) | all but the kernel reserve (`frame_alloc::reserve`) | `ZX_ERR_NO_MEMORY` |
//! | new kernel objects while the heap eats into the reserve (`frame_alloc::low_memory`) | refused | `ZX_ERR_NO_MEMORY` |
//! | channel messages queued at one endpoint | `syscalls::channel::MAX_QUEUED_MESSAGES` (64) and `MAX_QUEUED_BYTES` (256 KiB) | `ZX_ERR_SHOULD_WAIT` |
//! | channel message bytes kernel-wide | `syscalls::channel::MAX_TOTAL_QUEUED_BYTES` (8 MiB) | `ZX_ERR_NO_MEMORY` |
//!
//! Channel endpoints, like VMOs, live through handles (in tables or in queued messages, both
//! counted), and a write can never make endpoints keep each other alive (`zx_channel_write`
//! refuses ownership cycles). VMOs need no count of their own: each is kept alive by a handle or a mapping, both bounded
//! above, and a VMO's size costs nothing until pages are committed (a sparse page list), which
//! the frame reserve bounds. Processes likewise live through handles or their threads.
//!
//! The region quota is checked on the address space the call's VMAR handle belongs to (a parent
//! mapping into a child's root VMAR spends the child's quota). Quota checks run before
//! `syscalls::dispatch`, only when the handle names a VMAR: a bad handle still gets the
//! dispatcher's exact status.

use super::process::Process;
use abi::syscall_numbers::*;
use abi::Status;
use alloc::sync::Arc;

/// Most thread objects (started or not, until their last handle closes) one process may have.
pub const MAX_THREADS_PER_PROCESS: u32 = 128;
/// Most mappings plus VMARs (root included) in one address space for `zx_vmar_map` and
/// `zx_vmar_allocate`.
pub const MAX_REGIONS: usize = 8 * 1024;
/// Extra regions `zx_vmar_protect` / `zx_vmar_unmap` may still create by splitting mappings
/// once [`MAX_REGIONS`] is reached (each call adds at most two), so a process at its quota can
/// still unmap; beyond this they too are refused.
pub const REGION_SLACK: usize = 1024;

/// The system calls that create kernel objects (refused in low memory).
fn creates_objects(number: u32) -> bool {
    matches!(
        number,
        ZX_SYS_VMO_CREATE
            | ZX_SYS_VMAR_ALLOCATE
            | ZX_SYS_VMAR_MAP
            | ZX_SYS_HANDLE_DUPLICATE
            | ZX_SYS_PROCESS_CREATE
            | ZX_SYS_THREAD_CREATE
            | ZX_SYS_VMO_REPLACE_AS_EXECUTABLE
            | ZX_SYS_CHANNEL_CREATE
            | ZX_SYS_CHANNEL_WRITE
            | ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL
    )
}

/// Admission before `syscalls::dispatch` for `process` calling `number` with `args`: the
/// low-memory check and the region quota (see the module docs).
pub fn admit(process: &Arc<Process>, number: u64, args: &[u64; 8]) -> Result<(), Status> {
    let Ok(number) = u32::try_from(number) else {
        return Ok(());
    };
    if creates_objects(number) && crate::frame_alloc::low_memory() {
        return Err(Status::ERR_NO_MEMORY);
    }
    let limit = match number {
        ZX_SYS_VMAR_MAP | ZX_SYS_VMAR_ALLOCATE => MAX_REGIONS,
        ZX_SYS_VMAR_PROTECT | ZX_SYS_VMAR_UNMAP => MAX_REGIONS + REGION_SLACK,
        _ => return Ok(()),
    };
    let vmar = process.with_handles(|t| {
        t.get(args[0] as u32)
            .ok()
            .and_then(|h| h.object().as_vmar())
    });
    let Some(vmar) = vmar else { return Ok(()) };
    let aspace = vmar.vmar().aspace();
    if aspace.mapping_count() + aspace.vmar_count() >= limit {
        return Err(Status::ERR_NO_MEMORY);
    }
    Ok(())
}

/// May `process` get one more thread object? `ZX_ERR_NO_RESOURCES` at the per-process quota or
/// when every kernel-stack slot is taken.
pub fn admit_thread(process: &Process) -> Result<(), Status> {
    if process.thread_objects() >= MAX_THREADS_PER_PROCESS
        || arch::kstack::in_use() >= arch::kstack::SLOTS
    {
        return Err(Status::ERR_NO_RESOURCES);
    }
    Ok(())
}
