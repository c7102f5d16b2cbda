//! Vmar: the handle object of a virtual memory address region, and the six VMAR operations.
//!
//! This module owns [`Vmar`] (its accessors, introspection and placement) and the option
//! decoding the operations share; each of `zx_vmar_allocate` / `map` / `unmap` / `protect` /
//! `destroy` / `op_range` lives in its own file below, readable top to bottom, with every option,
//! right and error of `shared/spec/vmar.fidl` checked in Zircon's order (syscall layer
//! `vmar.cc`, then `VmAddressRegionDispatcher`, then `VmAddressRegion`), so the same status wins
//! when several apply. The tree-editing primitives they share (cut plans, split, merge, removing
//! a range, emptying and freeing a subtree) are in `edit`.
//!
//! The syscall layer resolves handles (`ERR_BAD_HANDLE`, `ERR_WRONG_TYPE`) and passes the raw
//! option bits and the rights of the handles it looked up; every other check happens here, the
//! rights checks Zircon does during handle lookup included (they come first). Kernel-internal
//! callers pass [`ALL_RIGHTS`].
//!
//! Where the spec text and Zircon's kernel and core tests disagree we follow Zircon's tested
//! behaviour and say so on the spot (search for "deviation from the spec text"); the one spec rule
//! Zircon lacks that we keep is BUFFER_TOO_SMALL (search for "SPEC:"); where the spec is silent we
//! follow Zircon (search for "ZIRCON:"). docs/vm.md lists all of them.

use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::ops::{
    ZX_VMAR_OP_ALWAYS_NEED, ZX_VMAR_OP_COMMIT, ZX_VMAR_OP_DECOMMIT, ZX_VMAR_OP_DONT_NEED,
    ZX_VMAR_OP_MAP_RANGE,
};
use abi::rights::{
    ZX_RIGHT_EXECUTE, ZX_RIGHT_MAP, ZX_RIGHT_OP_CHILDREN, ZX_RIGHT_READ, ZX_RIGHT_WRITE,
};
use abi::vm_options::*;
use abi::{Status, ZxResult, PAGE_SIZE};

use crate::arch_traits::MmuFlags;
use crate::aspace::{
    apply_failed, AddressSpace, Batch, Child, RegionId, RegionInfo, Slots, Tree, VmarNode,
    WalkCursor,
};
use crate::gap_tree::GapTree;
use crate::mapping::{LayoutNiche, VmMapping};
use crate::placement::{pick_spot, Placement};
use crate::vmo::Vmo;

mod allocate;
mod destroy;
mod edit;
mod map;
mod op_range;
mod protect;
mod unmap;

use edit::*;

/// Rights to pass for kernel-internal calls that no handle restricts.
pub const ALL_RIGHTS: u32 = u32::MAX;

/// x86_64 cannot map execute-only pages (no XOM), so PERM_READ_IF_XOM_UNSUPPORTED means READ.
const ARCH_CAN_MAP_XOM: bool = false;

/// What `zx_system_get_features(ZX_FEATURE_KIND_VM)` reports (Zircon's `arch_vm_features`):
/// `ZX_VM_FEATURE_CAN_MAP_XOM` exactly when execute-only mappings exist.
pub const ARCH_VM_FEATURES: u32 = if ARCH_CAN_MAP_XOM {
    abi::features::ZX_VM_FEATURE_CAN_MAP_XOM
} else {
    0
};

/// ZIRCON (deviation from the spec text): zx_vmar_allocate lists ERR_NO_MEMORY for "a free
/// address range of the requested size is not available", but Zircon's kernel returns
/// ERR_NO_RESOURCES there, as zx_vmar_map does, and its core test `Vmar.AllocateUnsatisfiableTest`
/// (zircon/system/utest/core/vmar/vmar.cc) asserts it. We follow Zircon (docs/conformance.md,
/// "Deviations from the spec text").
pub const ALLOCATE_NO_SPACE_STATUS: Status = Status::ERR_NO_RESOURCES;

/// The CAN_MAP / COMPACT flags of a VMAR, fixed at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmarFlags {
    /// CAN_MAP_READ / WRITE / EXECUTE as permission bits.
    pub can_map: MmuFlags,
    /// CAN_MAP_SPECIFIC.
    pub can_map_specific: bool,
    /// COMPACT: children are placed densely.
    pub compact: bool,
}

impl VmarFlags {
    pub(crate) fn root() -> VmarFlags {
        VmarFlags {
            can_map: MmuFlags::RWX,
            can_map_specific: true,
            compact: false,
        }
    }
}

/// Options split the way Zircon's `split_syscall_flags` does.
struct SplitOptions {
    perms: MmuFlags,
    /// The VMAR-flag bits (ZX_VM_COMPACT ... ZX_VM_OFFSET_IS_UPPER_LIMIT), raw.
    vmar: u32,
    align_pow2: u8,
}

const VMAR_FLAG_BITS: u32 = ZX_VM_COMPACT
    | ZX_VM_SPECIFIC
    | ZX_VM_SPECIFIC_OVERWRITE
    | ZX_VM_CAN_MAP_SPECIFIC
    | ZX_VM_CAN_MAP_READ
    | ZX_VM_CAN_MAP_WRITE
    | ZX_VM_CAN_MAP_EXECUTE
    | ZX_VM_REQUIRE_NON_RESIZABLE
    | ZX_VM_ALLOW_FAULTS
    | ZX_VM_OFFSET_IS_UPPER_LIMIT;

const CAN_MAP_RWX: u32 = ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_EXECUTE;

fn split_options(options: u32) -> ZxResult<SplitOptions> {
    let perms = perms_of(options);
    let vmar = options & VMAR_FLAG_BITS;
    let rest = options
        & !(VMAR_FLAG_BITS
            | ZX_VM_PERM_READ
            | ZX_VM_PERM_WRITE
            | ZX_VM_PERM_EXECUTE
            | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED);
    // Any unknown bit below the alignment field (MAP_RANGE included: the map path strips it
    // first, as Zircon's syscall layer does) is invalid.
    if rest & ((1 << ZX_VM_ALIGN_BASE) - 1) != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let align_pow2 = rest >> ZX_VM_ALIGN_BASE;
    if (align_pow2 < 10 && align_pow2 != 0) || align_pow2 > 32 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    Ok(SplitOptions {
        perms,
        vmar,
        align_pow2: align_pow2 as u8,
    })
}

fn perms_of(options: u32) -> MmuFlags {
    let mut p = MmuFlags::NONE;
    if options & ZX_VM_PERM_READ != 0 {
        p = p | MmuFlags::READ;
    }
    if options & ZX_VM_PERM_WRITE != 0 {
        p = p | MmuFlags::WRITE;
    }
    if options & ZX_VM_PERM_EXECUTE != 0 {
        p = p | MmuFlags::EXECUTE;
    }
    p
}

fn can_map_of(options: u32) -> MmuFlags {
    perms_of((options & CAN_MAP_RWX) >> 7)
}

fn rights_for(perms: MmuFlags) -> u32 {
    let mut r = 0;
    if perms.contains(MmuFlags::READ) {
        r |= ZX_RIGHT_READ;
    }
    if perms.contains(MmuFlags::WRITE) {
        r |= ZX_RIGHT_WRITE;
    }
    if perms.contains(MmuFlags::EXECUTE) {
        r |= ZX_RIGHT_EXECUTE;
    }
    r
}

fn perms_from_rights(rights: u32) -> MmuFlags {
    let mut p = MmuFlags::NONE;
    if rights & ZX_RIGHT_READ != 0 {
        p = p | MmuFlags::READ;
    }
    if rights & ZX_RIGHT_WRITE != 0 {
        p = p | MmuFlags::WRITE;
    }
    if rights & ZX_RIGHT_EXECUTE != 0 {
        p = p | MmuFlags::EXECUTE;
    }
    p
}

/// Zircon's `is_valid_mapping_protection`: write or execute without read cannot be expressed
/// (x86_64 has no execute-only pages).
fn is_valid_protection(options: u32) -> bool {
    options & ZX_VM_PERM_READ != 0
        || options & (ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE) == 0
        || (ARCH_CAN_MAP_XOM && options & ZX_VM_PERM_WRITE == 0)
}

fn apply_xom(options: u32) -> u32 {
    if options & ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED != 0 && !ARCH_CAN_MAP_XOM {
        options | ZX_VM_PERM_READ
    } else {
        options
    }
}

fn page_aligned(v: usize) -> bool {
    v.is_multiple_of(PAGE_SIZE)
}

fn round_up_page(len: usize) -> Option<usize> {
    Some(len.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// Where a new child goes.
enum Spot {
    /// A free range at this base.
    Free(usize),
    /// SPECIFIC_OVERWRITE over occupied space at this base.
    Overwrite(usize),
}

/// A VMAR handle object: the address space plus the region's arena id, and the region's
/// immutable geometry and flags (still readable after the region is destroyed).
///
/// Cheap to clone. The syscall layer keeps one per handle (e.g. in an `Arc` dispatcher). Every
/// operation on a destroyed region returns `ERR_BAD_STATE`.
#[derive(Clone)]
pub struct Vmar {
    aspace: Arc<AddressSpace>,
    id: RegionId,
    base: usize,
    len: usize,
    flags: VmarFlags,
    is_root: bool,
}

impl core::fmt::Debug for Vmar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Vmar")
            .field("base", &format_args!("{:#x}", self.base))
            .field("len", &format_args!("{:#x}", self.len))
            .field("flags", &self.flags)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Vmar {
    pub(crate) fn new(
        aspace: Arc<AddressSpace>,
        id: RegionId,
        base: usize,
        len: usize,
        flags: VmarFlags,
        is_root: bool,
    ) -> Vmar {
        Vmar {
            aspace,
            id,
            base,
            len,
            flags,
            is_root,
        }
    }

    /// First byte of the region.
    pub fn base(&self) -> usize {
        self.base
    }

    /// Size of the region in bytes.
    pub fn size(&self) -> usize {
        self.len
    }

    /// The region's creation flags.
    pub fn flags(&self) -> VmarFlags {
        self.flags
    }

    /// The address space the region belongs to.
    pub fn aspace(&self) -> &Arc<AddressSpace> {
        &self.aspace
    }

    /// The arena id (stale once destroyed).
    pub fn id(&self) -> RegionId {
        self.id
    }

    /// True for the root VMAR of its address space.
    pub fn is_root(&self) -> bool {
        self.is_root
    }

    /// False once the region was destroyed (directly or through an ancestor).
    pub fn is_alive(&self) -> bool {
        self.aspace.tree.lock().node(self.id).is_some()
    }

    /// The READ / WRITE / EXECUTE rights a new handle to this region gets (Zircon's
    /// `VmAddressRegionDispatcher::Create`: one per CAN_MAP_* flag); the syscall layer adds its
    /// default VMAR rights.
    pub fn perm_rights(&self) -> u32 {
        rights_for(self.flags.can_map)
    }

    /// Introspection: this region and everything below it (see [`RegionInfo`]).
    /// `ERR_BAD_STATE` once destroyed.
    pub fn walk(&self) -> ZxResult<Vec<RegionInfo>> {
        self.aspace.walk_from(self.id).ok_or(Status::ERR_BAD_STATE)
    }

    /// [`Vmar::walk`] in steps of at most `max` entries, resumed at `cursor` (a new
    /// [`WalkCursor`] starts the walk; [`WalkCursor::is_done`] says when it ended), so a caller
    /// can release the tree lock and be preempted between steps. Each committed-page count is
    /// left 0 and the entry's VMO (`None` for a VMAR) given beside it: the caller counts with
    /// `Vmo::committed_pages_in` outside the tree lock. `ERR_BAD_STATE` when this VMAR is
    /// destroyed before the first step; a walk resumed after that ends early. What may change
    /// between steps: see `AddressSpace::walk_step`.
    pub fn walk_step(
        &self,
        cursor: &mut WalkCursor,
        max: usize,
    ) -> ZxResult<Vec<(RegionInfo, Option<Arc<Vmo>>)>> {
        self.aspace
            .walk_step(self.id, cursor, max)
            .ok_or(Status::ERR_BAD_STATE)
    }

    fn placement(&self, node: &VmarNode) -> Placement {
        let config = self.aspace.config();
        if !config.aslr {
            Placement::Compact
        } else if node.flags.compact {
            if config.compact_entropy_bits == 0 {
                Placement::Compact
            } else {
                Placement::Random {
                    entropy_bits: config.compact_entropy_bits,
                }
            }
        } else {
            Placement::Random {
                entropy_bits: config.entropy_bits,
            }
        }
    }

    /// Zircon's `CreateSubVmarInternal` checks and placement (under the tree lock). `rwx` is what
    /// the child would be allowed to do; `no_space` the status when no spot fits.
    #[allow(clippy::too_many_arguments)]
    fn choose_spot(
        &self,
        tree: &mut Tree,
        offset: usize,
        size: usize,
        align_pow2: u8,
        vmar_opts: u32,
        rwx: MmuFlags,
        no_space: Status,
    ) -> ZxResult<Spot> {
        let node = tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        if size == 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if !node.flags.can_map.contains(rwx) {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let overwrite = vmar_opts & ZX_VM_SPECIFIC_OVERWRITE != 0;
        let specific = vmar_opts & ZX_VM_SPECIFIC != 0 || overwrite;
        let upper = vmar_opts & ZX_VM_OFFSET_IS_UPPER_LIMIT != 0;
        if specific && upper {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if !specific && !upper && offset != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if !page_aligned(offset) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if (specific || upper) && !node.flags.can_map_specific {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        if !upper && (offset >= node.len || size > node.len - offset) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if upper && (offset > node.len || size > node.len || size > offset) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if specific {
            let base = node.base + offset;
            if align_pow2 > 0 && base & ((1usize << align_pow2) - 1) != 0 {
                return Err(Status::ERR_INVALID_ARGS);
            }
            if node.children.is_free(base, size) {
                return Ok(Spot::Free(base));
            }
            return if overwrite {
                Ok(Spot::Overwrite(base))
            } else {
                Err(Status::ERR_ALREADY_EXISTS)
            };
        }
        let hi = if upper {
            node.base + offset
        } else {
            node.end()
        };
        let align = 1usize << align_pow2.max(abi::PAGE_SHIFT as u8);
        let (lo, placement) = (node.base, self.placement(node));
        let (children, rng) = tree
            .children_and_rng(self.id)
            .ok_or(Status::ERR_BAD_STATE)?;
        pick_spot(children, size, align, lo, hi, placement, rng)
            .map(Spot::Free)
            .ok_or(no_space)
    }
}
