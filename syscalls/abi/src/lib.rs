//! The zx ABI: the single source of truth for every number that crosses the user/kernel boundary.
//!
//! Status codes, VM options, rights, object types and VMAR/VMO ops carry Zircon's public numeric
//! values (`zircon/errors.h`, `zircon/types.h`, `zircon/rights.h`), so a program written against
//! Zircon's headers sees the same numbers here. This crate depends on nothing and contains no
//! unsafe code; the kernel, the portable `vm` crate and user programs all use it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod status;

pub mod clock;
pub mod default_rights;
pub mod exception;
pub mod handle;
pub mod info;
pub mod props;
pub mod signals;
pub mod syscall_numbers;
pub mod task;
pub mod wire;

/// Counters written by `zx_debug_kernel_stats` (`ZX_SYS_DEBUG_KERNEL_STATS`): an array of
/// [`COUNT`](kstats::COUNT) `u64`, indexed by these constants. Read-only diagnostics for leak
/// checks from user space (the fuzzer compares them with a baseline after its children are gone).
pub mod kstats {
    /// Free physical frames (what the frame allocator holds; the kernel heap's frames are in
    /// [`HEAP_FRAMES`]). Leak checks compare `FREE_FRAMES + HEAP_FRAMES` with a baseline: the
    /// heap keeps a few partly used or cached pages, and returns the rest.
    pub const FREE_FRAMES: usize = 0;
    /// Live user page-table pages.
    pub const TABLE_PAGES: usize = 1;
    /// Live thread kernel stacks (a dead thread's stack is reaped by the idle thread, later).
    pub const KERNEL_STACKS: usize = 2;
    /// Live handles, kernel-wide.
    pub const HANDLES: usize = 3;
    /// Live processes.
    pub const PROCESSES: usize = 4;
    /// Live user address spaces whose invariants were checked by this call.
    pub const ASPACES_CHECKED: usize = 5;
    /// How many of them failed `vm::AddressSpace::check_invariants` (the kernel logs each).
    pub const INVARIANT_FAILURES: usize = 6;
    /// Frames the kernel heap holds (slab pages, page-sized blocks, mapped run pages and the
    /// heap region's page tables); it gives whole free pages back to the frame allocator.
    pub const HEAP_FRAMES: usize = 7;
    /// Frames holding VMO pages (each counted once however many VMOs share it): what the
    /// scaled bytes of all VMOs (`ZX_INFO_VMO`) add up to.
    pub const DATA_FRAMES: usize = 8;
    /// Number of counters; the buffer must hold at least this many `u64`.
    pub const COUNT: usize = 9;
}

/// `zx_debug_irqoff_stats`: the longest stretch (ns) the kernel kept interrupts off, one `u64`
/// per syscall number (index = number, from entry to return, or to a switch away and from the
/// switch back) and per other kernel path; reset with [`irqoff::ZX_IRQOFF_RESET`].
pub mod irqoff {
    /// Demand paging of a fault from ring 3 (faults inside a syscall count for the syscall).
    pub const PAGE_FAULT: usize = crate::syscall_numbers::ZX_SYS_COUNT as usize;
    /// The last thread of a process exiting outside a syscall (a kill at an interrupt or
    /// fault): the teardown of its handles and address space.
    pub const TEARDOWN: usize = PAGE_FAULT + 1;
    /// Number of counters; the buffer must hold at least this many `u64`.
    pub const COUNT: usize = TEARDOWN + 1;
    /// Option: zero every counter after reading.
    pub const ZX_IRQOFF_RESET: u32 = 1;
}

/// `zx_system_get_features` kinds and feature bits (`zircon/features.h`).
pub mod features {
    /// CPU feature bits (architecture-specific; not offered on x86_64 here: NOT_SUPPORTED).
    pub const ZX_FEATURE_KIND_CPU: u32 = 0;
    /// Number of hardware breakpoints (NOT_SUPPORTED here).
    pub const ZX_FEATURE_KIND_HW_BREAKPOINT_COUNT: u32 = 1;
    /// Number of hardware watchpoints (NOT_SUPPORTED here).
    pub const ZX_FEATURE_KIND_HW_WATCHPOINT_COUNT: u32 = 2;
    /// Address-tagging features (none on x86_64: 0).
    pub const ZX_FEATURE_KIND_ADDRESS_TAGGING: u32 = 3;
    /// Virtual-memory features: a set of `ZX_VM_FEATURE_*` bits.
    pub const ZX_FEATURE_KIND_VM: u32 = 4;
    /// The system can map pages execute-only (never on x86_64: clear).
    pub const ZX_VM_FEATURE_CAN_MAP_XOM: u32 = 1 << 0;
}

pub use status::Status;

/// Result alias used end to end: `Err` always carries a non-OK [`Status`].
pub type ZxResult<T = ()> = Result<T, Status>;

/// Size of a page in bytes on x86_64.
pub const PAGE_SIZE: usize = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

/// `zx_vm_option_t`: options of zx_vmar_allocate / map / protect.
pub mod vm_options {
    /// Map as readable.
    pub const ZX_VM_PERM_READ: u32 = 1 << 0;
    /// Map as writable.
    pub const ZX_VM_PERM_WRITE: u32 = 1 << 1;
    /// Map as executable.
    pub const ZX_VM_PERM_EXECUTE: u32 = 1 << 2;
    /// Keep allocations within the new region close together.
    pub const ZX_VM_COMPACT: u32 = 1 << 3;
    /// Use the given offset to place the region or mapping.
    pub const ZX_VM_SPECIFIC: u32 = 1 << 4;
    /// Like SPECIFIC, but atomically replaces mappings in the range.
    pub const ZX_VM_SPECIFIC_OVERWRITE: u32 = 1 << 5;
    /// The new VMAR may contain SPECIFIC children.
    pub const ZX_VM_CAN_MAP_SPECIFIC: u32 = 1 << 6;
    /// The new VMAR may contain readable mappings.
    pub const ZX_VM_CAN_MAP_READ: u32 = 1 << 7;
    /// The new VMAR may contain writable mappings.
    pub const ZX_VM_CAN_MAP_WRITE: u32 = 1 << 8;
    /// The new VMAR may contain executable mappings.
    pub const ZX_VM_CAN_MAP_EXECUTE: u32 = 1 << 9;
    /// Populate page tables for the committed pages of the VMO at map time.
    pub const ZX_VM_MAP_RANGE: u32 = 1 << 10;
    /// Fail if the VMO is resizable.
    pub const ZX_VM_REQUIRE_NON_RESIZABLE: u32 = 1 << 11;
    /// The mapping may generate faults that cannot be resolved (resizable VMO, past the end).
    pub const ZX_VM_ALLOW_FAULTS: u32 = 1 << 12;
    /// The offset argument is an upper limit for the end of the placement.
    pub const ZX_VM_OFFSET_IS_UPPER_LIMIT: u32 = 1 << 13;
    /// Map readable if execute-only mappings are not supported (they are not on x86_64).
    pub const ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED: u32 = 1 << 14;

    /// Bit position of the alignment field (log2 of the alignment) inside the options.
    pub const ZX_VM_ALIGN_BASE: u32 = 24;
    /// Mask of the alignment field.
    pub const ZX_VM_ALIGN_MASK: u32 = 0x1f << ZX_VM_ALIGN_BASE;
    /// Align to 1 KiB (rounded up to a page).
    pub const ZX_VM_ALIGN_1KB: u32 = 10 << ZX_VM_ALIGN_BASE;
    /// Align to 2 KiB (rounded up to a page).
    pub const ZX_VM_ALIGN_2KB: u32 = 11 << ZX_VM_ALIGN_BASE;
    /// Align to 4 KiB.
    pub const ZX_VM_ALIGN_4KB: u32 = 12 << ZX_VM_ALIGN_BASE;
    /// Align to 8 KiB.
    pub const ZX_VM_ALIGN_8KB: u32 = 13 << ZX_VM_ALIGN_BASE;
    /// Align to 16 KiB.
    pub const ZX_VM_ALIGN_16KB: u32 = 14 << ZX_VM_ALIGN_BASE;
    /// Align to 32 KiB.
    pub const ZX_VM_ALIGN_32KB: u32 = 15 << ZX_VM_ALIGN_BASE;
    /// Align to 64 KiB.
    pub const ZX_VM_ALIGN_64KB: u32 = 16 << ZX_VM_ALIGN_BASE;
    /// Align to 128 KiB.
    pub const ZX_VM_ALIGN_128KB: u32 = 17 << ZX_VM_ALIGN_BASE;
    /// Align to 256 KiB.
    pub const ZX_VM_ALIGN_256KB: u32 = 18 << ZX_VM_ALIGN_BASE;
    /// Align to 512 KiB.
    pub const ZX_VM_ALIGN_512KB: u32 = 19 << ZX_VM_ALIGN_BASE;
    /// Align to 1 MiB.
    pub const ZX_VM_ALIGN_1MB: u32 = 20 << ZX_VM_ALIGN_BASE;
    /// Align to 2 MiB.
    pub const ZX_VM_ALIGN_2MB: u32 = 21 << ZX_VM_ALIGN_BASE;
    /// Align to 4 MiB.
    pub const ZX_VM_ALIGN_4MB: u32 = 22 << ZX_VM_ALIGN_BASE;
    /// Align to 8 MiB.
    pub const ZX_VM_ALIGN_8MB: u32 = 23 << ZX_VM_ALIGN_BASE;
    /// Align to 16 MiB.
    pub const ZX_VM_ALIGN_16MB: u32 = 24 << ZX_VM_ALIGN_BASE;
    /// Align to 32 MiB.
    pub const ZX_VM_ALIGN_32MB: u32 = 25 << ZX_VM_ALIGN_BASE;
    /// Align to 64 MiB.
    pub const ZX_VM_ALIGN_64MB: u32 = 26 << ZX_VM_ALIGN_BASE;
    /// Align to 128 MiB.
    pub const ZX_VM_ALIGN_128MB: u32 = 27 << ZX_VM_ALIGN_BASE;
    /// Align to 256 MiB.
    pub const ZX_VM_ALIGN_256MB: u32 = 28 << ZX_VM_ALIGN_BASE;
    /// Align to 512 MiB.
    pub const ZX_VM_ALIGN_512MB: u32 = 29 << ZX_VM_ALIGN_BASE;
    /// Align to 1 GiB.
    pub const ZX_VM_ALIGN_1GB: u32 = 30 << ZX_VM_ALIGN_BASE;
    /// Align to 2 GiB.
    pub const ZX_VM_ALIGN_2GB: u32 = 31 << ZX_VM_ALIGN_BASE;
    /// Align to 4 GiB.
    pub const ZX_VM_ALIGN_4GB: u32 = 32 << ZX_VM_ALIGN_BASE;
}

/// `zx_rights_t`: what a handle allows.
pub mod rights {
    /// No rights.
    pub const ZX_RIGHT_NONE: u32 = 0;
    /// The handle may be duplicated.
    pub const ZX_RIGHT_DUPLICATE: u32 = 1 << 0;
    /// The handle may be transferred over a channel.
    pub const ZX_RIGHT_TRANSFER: u32 = 1 << 1;
    /// Read access.
    pub const ZX_RIGHT_READ: u32 = 1 << 2;
    /// Write access.
    pub const ZX_RIGHT_WRITE: u32 = 1 << 3;
    /// Execute access.
    pub const ZX_RIGHT_EXECUTE: u32 = 1 << 4;
    /// The object may be mapped (VMO) or mapped into (VMAR).
    pub const ZX_RIGHT_MAP: u32 = 1 << 5;
    /// Properties may be read.
    pub const ZX_RIGHT_GET_PROPERTY: u32 = 1 << 6;
    /// Properties may be written.
    pub const ZX_RIGHT_SET_PROPERTY: u32 = 1 << 7;
    /// Children may be enumerated.
    pub const ZX_RIGHT_ENUMERATE: u32 = 1 << 8;
    /// The object may be destroyed.
    pub const ZX_RIGHT_DESTROY: u32 = 1 << 9;
    /// Policy may be set.
    pub const ZX_RIGHT_SET_POLICY: u32 = 1 << 10;
    /// Policy may be read.
    pub const ZX_RIGHT_GET_POLICY: u32 = 1 << 11;
    /// The object may be signaled.
    pub const ZX_RIGHT_SIGNAL: u32 = 1 << 12;
    /// The peer may be signaled.
    pub const ZX_RIGHT_SIGNAL_PEER: u32 = 1 << 13;
    /// The object may be waited on.
    pub const ZX_RIGHT_WAIT: u32 = 1 << 14;
    /// The object may be inspected (object_get_info).
    pub const ZX_RIGHT_INSPECT: u32 = 1 << 15;
    /// Job management.
    pub const ZX_RIGHT_MANAGE_JOB: u32 = 1 << 16;
    /// Process management.
    pub const ZX_RIGHT_MANAGE_PROCESS: u32 = 1 << 17;
    /// Thread management.
    pub const ZX_RIGHT_MANAGE_THREAD: u32 = 1 << 18;
    /// Scheduling profiles may be applied.
    pub const ZX_RIGHT_APPLY_PROFILE: u32 = 1 << 19;
    /// Socket management.
    pub const ZX_RIGHT_MANAGE_SOCKET: u32 = 1 << 20;
    /// Operations on children (VMAR destroy, unmap/protect over sub-regions).
    pub const ZX_RIGHT_OP_CHILDREN: u32 = 1 << 21;
    /// The object may be resized.
    pub const ZX_RIGHT_RESIZE: u32 = 1 << 22;
    /// A VMO may be attached.
    pub const ZX_RIGHT_ATTACH_VMO: u32 = 1 << 23;
    /// VMO management.
    pub const ZX_RIGHT_MANAGE_VMO: u32 = 1 << 24;
    /// Keep the same rights (duplicate / replace).
    pub const ZX_RIGHT_SAME_RIGHTS: u32 = 1 << 31;
}

/// `zx_obj_type_t`.
pub mod obj_type {
    /// No type.
    pub const ZX_OBJ_TYPE_NONE: u32 = 0;
    /// A process.
    pub const ZX_OBJ_TYPE_PROCESS: u32 = 1;
    /// A thread.
    pub const ZX_OBJ_TYPE_THREAD: u32 = 2;
    /// A virtual memory object.
    pub const ZX_OBJ_TYPE_VMO: u32 = 3;
    /// A channel.
    pub const ZX_OBJ_TYPE_CHANNEL: u32 = 4;
    /// A job.
    pub const ZX_OBJ_TYPE_JOB: u32 = 17;
    /// A virtual memory address region.
    pub const ZX_OBJ_TYPE_VMAR: u32 = 18;
    /// An exception.
    pub const ZX_OBJ_TYPE_EXCEPTION: u32 = 29;
}

/// Operations of zx_vmo_op_range and zx_vmar_op_range.
pub mod ops {
    /// Commit pages (VMO).
    pub const ZX_VMO_OP_COMMIT: u32 = 1;
    /// Decommit pages (VMO).
    pub const ZX_VMO_OP_DECOMMIT: u32 = 2;
    /// Lock a range of a discardable VMO against discarding.
    pub const ZX_VMO_OP_LOCK: u32 = 3;
    /// Unlock a range locked by LOCK or TRY_LOCK.
    pub const ZX_VMO_OP_UNLOCK: u32 = 4;
    /// Cache sync (data cache clean, instruction cache invalidate).
    pub const ZX_VMO_OP_CACHE_SYNC: u32 = 6;
    /// Cache invalidate.
    pub const ZX_VMO_OP_CACHE_INVALIDATE: u32 = 7;
    /// Cache clean.
    pub const ZX_VMO_OP_CACHE_CLEAN: u32 = 8;
    /// Cache clean and invalidate.
    pub const ZX_VMO_OP_CACHE_CLEAN_INVALIDATE: u32 = 9;
    /// Zero a range.
    pub const ZX_VMO_OP_ZERO: u32 = 10;
    /// Lock a range of a discardable VMO unless it was discarded.
    pub const ZX_VMO_OP_TRY_LOCK: u32 = 11;
    /// Bytes of `zx_vmo_lock_state_t`, which ZX_VMO_OP_LOCK writes to its buffer: four
    /// little-endian `u64`s, `offset`, `size`, `discarded_offset`, `discarded_size`.
    pub const ZX_VMO_LOCK_STATE_SIZE: usize = 32;
    /// Hint: pages are not needed.
    pub const ZX_VMO_OP_DONT_NEED: u32 = 12;
    /// Hint: pages are important.
    pub const ZX_VMO_OP_ALWAYS_NEED: u32 = 13;
    /// Bring pages into memory (decompress) without committing new ones.
    pub const ZX_VMO_OP_PREFETCH: u32 = 14;
    /// Commit pages behind a VMAR range.
    pub const ZX_VMAR_OP_COMMIT: u32 = 1;
    /// Decommit pages behind a VMAR range.
    pub const ZX_VMAR_OP_DECOMMIT: u32 = 2;
    /// Populate page tables for committed pages of a VMAR range.
    pub const ZX_VMAR_OP_MAP_RANGE: u32 = 3;
    /// Hint: pages of a VMAR range are not needed.
    pub const ZX_VMAR_OP_DONT_NEED: u32 = 12;
    /// Hint: pages of a VMAR range are important.
    pub const ZX_VMAR_OP_ALWAYS_NEED: u32 = 13;
}

/// Options of zx_vmo_create.
pub mod vmo_options {
    /// The VMO may be resized.
    pub const ZX_VMO_RESIZABLE: u32 = 1 << 1;
    /// The VMO is discardable.
    pub const ZX_VMO_DISCARDABLE: u32 = 1 << 2;

    /// zx_vmo_create_child: a snapshot (copy-on-write child).
    pub const ZX_VMO_CHILD_SNAPSHOT: u32 = 1 << 0;
    /// zx_vmo_create_child: the child may be resized.
    pub const ZX_VMO_CHILD_RESIZABLE: u32 = 1 << 2;
    /// zx_vmo_create_child: a slice (a window onto the parent's pages).
    pub const ZX_VMO_CHILD_SLICE: u32 = 1 << 3;
    /// zx_vmo_create_child: at least copy-on-write (a snapshot for VMOs without a pager).
    pub const ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE: u32 = 1 << 4;
    /// zx_vmo_create_child: the child's handle lacks `ZX_RIGHT_WRITE`.
    pub const ZX_VMO_CHILD_NO_WRITE: u32 = 1 << 5;
}
