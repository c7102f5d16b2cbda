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
//!
//! Debugger writes: [`AddressSpace::private_copy_for_write`] gives a mapping whose maximum
//! protection lacks WRITE its own copy-on-write child of the window it maps (Zircon's
//! `VmMapping::ForceWritable`), so `zx_process_write_memory` into code changes this mapping
//! only, never the VMO it was made from nor anyone else's view of it.

use alloc::sync::Arc;

use abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE;
use abi::{Status, ZxResult};

use crate::arch_traits::MmuFlags;
use crate::aspace::{AddressSpace, Child, Slots};
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
    /// True once `vmo` is this mapping's private copy-on-write child of the VMO it was made
    /// from ([`AddressSpace::private_copy_for_write`]): a debugger's writes go to it.
    pub(crate) private_copy: bool,
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

/// How often [`AddressSpace::private_copy_for_write`] retries when the mapping changed while
/// its copy was made (a concurrent unmap or protect); then `ERR_BAD_STATE`.
const PRIVATE_COPY_TRIES: usize = 4;

impl AddressSpace {
    /// The mapping containing `vaddr`, for a debugger's write (`zx_process_write_memory`): when
    /// its maximum protection lacks WRITE it first gets its own copy-on-write child of the
    /// window it maps (SNAPSHOT_AT_LEAST_ON_WRITE of `[vmo_offset, vmo_offset + len)`, made
    /// once per mapping, Zircon's `VmMapping::ForceWritable`): its page-table entries go (they
    /// refault from the child) and the mapping shows the child from offset 0 from then on, so
    /// a write into the returned window's VMO is seen through this mapping only, never through
    /// the original VMO or any other mapping of it. A mapping whose maximum has WRITE is
    /// returned as it is (the process could write that VMO itself).
    ///
    /// `ERR_NOT_FOUND` when nothing is mapped at `vaddr`; the child's errors (`ERR_NO_MEMORY`,
    /// `ERR_NOT_SUPPORTED` for a discardable VMO); `ERR_BAD_STATE` when the mapping keeps
    /// changing under the copy.
    pub fn private_copy_for_write(&self, vaddr: usize) -> ZxResult<MappingWindow> {
        for _ in 0..PRIVATE_COPY_TRIES {
            // One lookup for the window and the mapping's identity.
            let (window, uid, private) = {
                let tree = self.tree.lock();
                let (_, base, len, m) = tree
                    .find_mapping(tree.root, vaddr)
                    .ok_or(Status::ERR_NOT_FOUND)?;
                let window = MappingWindow {
                    base,
                    len,
                    vmo: m.vmo.clone(),
                    vmo_offset: m.vmo_offset,
                    perms: m.perms,
                    max_perms: m.max_perms,
                };
                (window, m.uid, m.private_copy)
            };
            if window.max_perms.contains(MmuFlags::WRITE) || private {
                return Ok(window);
            }
            // The child is made without the tree lock: making it unmaps the parent's mappings
            // of the range, which takes the MMU locks of other address spaces.
            let child = window.vmo.create_child(
                ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE,
                window.vmo_offset,
                window.len as u64,
            )?;
            let mut slots = Slots::new(self.id());
            slots.reserve(&child)?;
            let mut tree = self.tree.lock();
            let (parent, base, len, unchanged) = {
                let Some((parent, base, len, m)) = tree.find_mapping(tree.root, vaddr) else {
                    return Err(Status::ERR_NOT_FOUND);
                };
                let unchanged = m.uid == uid
                    && !m.private_copy
                    && base == window.base
                    && len == window.len
                    && m.vmo_offset == window.vmo_offset
                    && Arc::ptr_eq(&m.vmo, &window.vmo);
                (parent, base, len, unchanged)
            };
            if !unchanged {
                continue;
            }
            let Some(Child::Mapping(m)) = tree
                .node_mut(parent)
                .and_then(|node| node.children.get_mut(base))
                .map(|(_, c)| c)
            else {
                return Err(Status::ERR_BAD_STATE);
            };
            // Entries first (they map the original's frames), then the back-references move.
            self.unmap_ptes_now(base, len);
            self.backref_remove(m);
            let original = core::mem::replace(&mut m.vmo, child.clone());
            m.vmo_offset = 0;
            m.private_copy = true;
            self.backref_add(&mut slots, m, base, len);
            drop(tree);
            drop(original);
            return Ok(MappingWindow {
                base,
                len,
                vmo: child,
                vmo_offset: 0,
                perms: window.perms,
                max_perms: window.max_perms,
            });
        }
        Err(Status::ERR_BAD_STATE)
    }
}
