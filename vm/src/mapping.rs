//! VmMapping: a window of a VMO installed in a VMAR with one protection.
//!
//! This module owns [`VmMapping`], the value stored for a mapping in its parent VMAR's gap tree
//! (the tree key is the mapping's base, the tree length its size, so neither is duplicated here),
//! and the rule for when two neighbouring mappings may be merged back into one.
//!
//! Protection design: a mapping has exactly ONE current protection. `protect` over part of a
//! mapping splits it (at most into three) and then re-merges every changed piece with an adjacent
//! piece that is compatible ([`VmMapping::can_merge`]: same VMO, contiguous VMO offsets, same
//! protection, same maximum protection). So the number of tree entries is bounded by the number
//! of maximal runs of distinct protection, and repeated protect calls never grow the tree.

use alloc::sync::Arc;

use crate::arch_traits::MmuFlags;
use crate::aspace::AddressSpace;
use crate::vmo::Vmo;

/// One mapping: `[base, base + len)` of its parent VMAR shows the VMO from `vmo_offset`.
pub(crate) struct VmMapping {
    /// The mapped object (the mapping keeps it alive).
    pub(crate) vmo: Arc<Vmo>,
    /// Offset in the VMO of the mapping's first byte (page-aligned).
    pub(crate) vmo_offset: u64,
    /// Current protection (READ/WRITE/EXECUTE bits only).
    pub(crate) perms: MmuFlags,
    /// Upper bound for `perms` through protect: the rights of the VMAR handle and of the VMO
    /// handle used at map time, and the parent VMAR's CAN_MAP_* flags. Fixed for the mapping's
    /// lifetime, even after those handles are closed.
    pub(crate) max_perms: MmuFlags,
    /// Unique within the address space; names the VMO back-reference.
    pub(crate) uid: u64,
    /// Carries no information; see [`LayoutNiche`].
    pub(crate) _niche: LayoutNiche,
}

/// A one-byte field with a single valid value, placed in what would otherwise be padding of
/// [`VmMapping`] (32 bytes either way). It gives the type a *niche* (255 invalid bit patterns),
/// which the compiler uses to encode both `Child::Vmar` and the `None` of the gap tree's value
/// slots (`Option<Child>`) without a separate tag: the slot is 32 bytes instead of 40. At 40
/// bytes most of a leaf's values straddled two cache lines, so a fault (which reads one value)
/// paid for two lines; callgrind with a 2 MiB last level counted ~0.5 fewer misses per fault
/// at 100 000 mappings without the straddle. A compile-time assertion in `aspace` keeps it so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum LayoutNiche {
    /// The only value.
    Marker = 0,
}

impl VmMapping {
    /// True when `self` at `[base, base + len)` and `next` right after it can become one mapping.
    pub(crate) fn can_merge(&self, len: usize, next: &VmMapping) -> bool {
        Arc::ptr_eq(&self.vmo, &next.vmo)
            && self.vmo_offset.checked_add(len as u64) == Some(next.vmo_offset)
            && self.perms == next.perms
            && self.max_perms == next.max_perms
    }
}

/// What [`AddressSpace::mapping_at`] reports about one mapping: its range and the VMO window
/// behind it.
#[derive(Clone)]
pub struct MappingWindow {
    /// First byte of the mapping.
    pub base: usize,
    /// Size of the mapping in bytes.
    pub len: usize,
    /// The mapped VMO.
    pub vmo: Arc<Vmo>,
    /// Offset in the VMO of the mapping's first byte.
    pub vmo_offset: u64,
    /// Current protection.
    pub perms: MmuFlags,
    /// The most `perms` may become (the rights ceiling recorded at map time: the VMO and VMAR
    /// handles' rights and the region's `CAN_MAP_*`).
    pub max_perms: MmuFlags,
}

impl core::fmt::Debug for MappingWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MappingWindow")
            .field("base", &format_args!("{:#x}", self.base))
            .field("len", &format_args!("{:#x}", self.len))
            .field("vmo_offset", &format_args!("{:#x}", self.vmo_offset))
            .field("perms", &self.perms)
            .field("max_perms", &self.max_perms)
            .finish()
    }
}

impl AddressSpace {
    /// The mapping containing `vaddr`, at any depth, or `None` when no mapping covers it.
    ///
    /// For access that goes to the VMO rather than through the page tables (Zircon's
    /// `zx_process_read_memory` / `write_memory`: one mapping per call, protection ignored).
    pub fn mapping_at(&self, vaddr: usize) -> Option<MappingWindow> {
        let tree = self.tree.lock();
        let (_, base, len, m) = tree.find_mapping(tree.root, vaddr)?;
        Some(MappingWindow {
            base,
            len,
            vmo: m.vmo.clone(),
            vmo_offset: m.vmo_offset,
            perms: m.perms,
            max_perms: m.max_perms,
        })
    }
}
