//! Portable Zircon-style virtual memory: VMOs, the VMAR tree, mappings and page-fault resolution.
//!
//! This crate never names x86_64: it reaches hardware only through the traits in [`arch_traits`]
//! (an MMU for one address space and a physical-page allocator), so every rule is unit-tested on
//! the host against the software implementations in [`soft_mmu`].
//!
//! Entry points: [`AddressSpace::new`] -> [`AddressSpace::root_vmar`] -> [`Vmar`] operations
//! (`allocate`, `map`, `unmap`, `protect`, `destroy`, `op_range`, one per `zx_vmar_*` syscall);
//! [`Vmo::create`] for memory objects; [`AddressSpace::fault`] for page faults. See docs/vm.md.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod arch_traits;
pub mod aspace;
mod backrefs;
pub mod gap_tree;
mod mapping;
pub mod placement;
pub mod rng;
pub mod soft_mmu;
pub mod vmar;
pub mod vmo;

pub use arch_traits::{FlushScope, Mmu, MmuFlags, PhysAddr, PhysMem, TlbFlush};
pub use aspace::{
    AddressSpace, AspaceConfig, RegionBudget, RegionId, RegionInfo, WalkCursor, FAULT_AROUND_PAGES,
};
pub use mapping::MappingWindow;
pub use rng::{RandomSource, SplitMix64};
pub use vmar::{Vmar, VmarFlags, ALL_RIGHTS, ARCH_VM_FEATURES};
pub use vmo::{set_child_gone_hook, Vmo};
