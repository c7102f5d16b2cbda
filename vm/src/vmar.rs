//! Vmar: the handle object of a virtual memory address region, and the six VMAR operations.
//!
//! This module owns [`Vmar`] and `zx_vmar_allocate` / `map` / `unmap` / `protect` / `destroy` /
//! `op_range` with every option, right and error of `shared/spec/vmar.fidl`, checked in Zircon's
//! order (syscall layer `vmar.cc`, then `VmAddressRegionDispatcher`, then `VmAddressRegion`), so
//! the same status wins when several apply.
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
    pub fn len_bytes(&self) -> usize {
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

/// The six operations, each mirroring one syscall.
impl Vmar {
    /// `zx_vmar_allocate`: creates a sub-region of `size` bytes; returns its handle object and
    /// base address. `vmar_rights` are the rights of the parent handle.
    ///
    /// Order of checks (Zircon's): CAN_MAP_* need the matching handle right (ACCESS_DENIED);
    /// unknown option bits or a bad ALIGN value (INVALID_ARGS); PERM_* given (INVALID_ARGS);
    /// `size` not page-aligned or a mapping-only flag (INVALID_ARGS); destroyed (BAD_STATE);
    /// `size` 0 (INVALID_ARGS); CAN_MAP_* beyond the parent's (ACCESS_DENIED); SPECIFIC with
    /// OFFSET_IS_UPPER_LIMIT, non-zero offset without either, unaligned offset (INVALID_ARGS);
    /// SPECIFIC / upper limit without the parent's CAN_MAP_SPECIFIC (ACCESS_DENIED); out of the
    /// parent's bounds or misaligned for ALIGN_* (INVALID_ARGS); overlap (ALREADY_EXISTS); no
    /// room ([`ALLOCATE_NO_SPACE_STATUS`]).
    pub fn allocate(
        &self,
        options: u32,
        offset: usize,
        size: usize,
        vmar_rights: u32,
    ) -> ZxResult<(Vmar, usize)> {
        let needed = rights_for(can_map_of(options));
        if vmar_rights & needed != needed {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let split = split_options(options)?;
        if !split.perms.is_empty() {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if !page_aligned(size) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let allowed = ZX_VM_SPECIFIC
            | ZX_VM_CAN_MAP_SPECIFIC
            | ZX_VM_COMPACT
            | CAN_MAP_RWX
            | ZX_VM_OFFSET_IS_UPPER_LIMIT;
        if split.vmar & !allowed != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let flags = VmarFlags {
            can_map: can_map_of(options),
            // ZIRCON/SPEC: asking for CAN_MAP_SPECIFIC is not an error when the parent lacks it.
            can_map_specific: options & ZX_VM_CAN_MAP_SPECIFIC != 0,
            compact: options & ZX_VM_COMPACT != 0,
        };
        let mut tree = self.aspace.tree.lock();
        let spot = self.choose_spot(
            &mut tree,
            offset,
            size,
            split.align_pow2,
            split.vmar,
            flags.can_map,
            ALLOCATE_NO_SPACE_STATUS,
        )?;
        let Spot::Free(base) = spot else {
            // SPECIFIC_OVERWRITE was rejected above, so only a free spot can come back.
            return Err(Status::ERR_INTERNAL);
        };
        // Check phase: the quota, then everything the apply phase will need.
        let now = tree.regions(self.aspace.mapping_count());
        tree.admit(now, 1)?;
        tree.reserve_node()?;
        let parent = tree.node_mut(self.id).ok_or(Status::ERR_BAD_STATE)?;
        if !parent.children.reserve_inserts(1) {
            return Err(Status::ERR_NO_MEMORY);
        }
        // Apply phase: cannot fail.
        let Some(id) = tree.alloc_node(VmarNode {
            base,
            len: size,
            flags,
            parent: Some(self.id),
            children: GapTree::new(base, size),
        }) else {
            apply_failed("VMAR arena slot")
        };
        let parent = tree.node_mut(self.id).ok_or(Status::ERR_BAD_STATE)?;
        if parent.children.insert(base, size, Child::Vmar(id)).is_err() {
            apply_failed("gap-tree insert");
        }
        let child = Vmar::new(self.aspace.clone(), id, base, size, flags, false);
        Ok((child, base))
    }

    /// `zx_vmar_map`: maps `len` bytes of `vmo` from `vmo_offset`; returns the mapping's base.
    /// `vmar_rights` / `vmo_rights` are the rights of the two handles; the permissions both allow
    /// (capped by this VMAR's CAN_MAP_*) are recorded in the mapping as the ceiling for later
    /// protect calls, even after the handles are closed.
    ///
    /// Order of checks (Zircon's `vmar_map_common`, dispatcher, `CreateVmMapping`,
    /// `CreateSubVmarInternal`): VMO handle lacks MAP (ACCESS_DENIED); PERM_READ_IF_XOM_UNSUPPORTED
    /// adds READ; WRITE/EXECUTE without READ (INVALID_ARGS); MAP_RANGE with SPECIFIC_OVERWRITE
    /// (INVALID_ARGS); CAN_MAP_* in options (INVALID_ARGS); a PERM_* not allowed by both handles
    /// (ACCESS_DENIED); unknown bits / bad ALIGN (INVALID_ARGS); REQUIRE_NON_RESIZABLE on a
    /// resizable VMO (NOT_SUPPORTED); without ALLOW_FAULTS: resizable or discardable VMO
    /// (NOT_SUPPORTED); COMPACT / CAN_MAP_SPECIFIC
    /// (INVALID_ARGS); `vmo_offset` unaligned (INVALID_ARGS); `len` rounded up to pages, overflowing
    /// there or in `vmo_offset + len` (OUT_OF_RANGE); then the placement checks of
    /// [`Vmar::allocate`], with overlap -> ALREADY_EXISTS and no room -> NO_RESOURCES; then, without
    /// ALLOW_FAULTS, a window past the VMO's end (BUFFER_TOO_SMALL, the spec's); then the
    /// replacement under SPECIFIC_OVERWRITE.
    #[allow(clippy::too_many_arguments)]
    pub fn map(
        &self,
        options: u32,
        vmar_offset: usize,
        vmo: &Arc<Vmo>,
        vmo_offset: u64,
        len: usize,
        vmar_rights: u32,
        vmo_rights: u32,
    ) -> ZxResult<usize> {
        if vmo_rights & ZX_RIGHT_MAP == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let mut options = apply_xom(options);
        if !is_valid_protection(options) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let map_range = options & ZX_VM_MAP_RANGE != 0;
        options &= !ZX_VM_MAP_RANGE;
        if map_range && options & ZX_VM_SPECIFIC_OVERWRITE != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if options & CAN_MAP_RWX != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let allowed = perms_from_rights(vmo_rights).intersection(perms_from_rights(vmar_rights));
        let perms = perms_of(options);
        if !allowed.contains(perms) {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let split = split_options(options)?;
        if split.vmar & ZX_VM_REQUIRE_NON_RESIZABLE != 0 && vmo.is_resizable() {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        let allow_faults = split.vmar & ZX_VM_ALLOW_FAULTS != 0;
        if !allow_faults && (vmo.is_resizable() || vmo.is_discardable()) {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        let vmar_opts = split.vmar & !(ZX_VM_REQUIRE_NON_RESIZABLE | ZX_VM_ALLOW_FAULTS);
        if vmar_opts & !(ZX_VM_SPECIFIC | ZX_VM_SPECIFIC_OVERWRITE | ZX_VM_OFFSET_IS_UPPER_LIMIT)
            != 0
        {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if !vmo_offset.is_multiple_of(PAGE_SIZE as u64) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        // ZIRCON (deviation from the spec text, which calls an unaligned len INVALID_ARGS): len is
        // rounded up to whole pages (`VmAddressRegion::CreateVmMapping`; core test
        // `Vmar.UnalignedLenMapTest` maps 4 * PAGE - 1 bytes and reads the fourth page). A len that
        // rounds past the top of the address space (e.g. SIZE_MAX - PAGE + 2) is OUT_OF_RANGE
        // (`Vmar.InvalidArgsTest`, "size rounds up to 0"); len 0 stays INVALID_ARGS (below).
        let len = round_up_page(len).ok_or(Status::ERR_OUT_OF_RANGE)?;
        if vmo_offset.checked_add(len as u64).is_none() {
            return Err(Status::ERR_OUT_OF_RANGE);
        }

        let mut tree = self.aspace.tree.lock();
        let spot = self.choose_spot(
            &mut tree,
            vmar_offset,
            len,
            split.align_pow2,
            vmar_opts,
            perms,
            Status::ERR_NO_RESOURCES,
        )?;
        if let Spot::Overwrite(base) = spot {
            // ZIRCON: any sub-VMAR in the range, even one wholly inside it, makes the overwrite
            // fail (it unmaps with can_destroy_regions = false). Checked before anything changes,
            // so a failed overwrite changes nothing.
            let node = tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
            if node
                .children
                .overlapping(base, base + len)
                .any(|(_, _, c)| matches!(c, Child::Vmar(_)))
            {
                return Err(Status::ERR_INVALID_ARGS);
            }
        }
        // SPEC: without ALLOW_FAULTS a window past the end of a (non-resizable) VMO is
        // BUFFER_TOO_SMALL. Zircon has no such check; it comes after every argument and placement
        // check so that each status Zircon's tests expect for a bad argument still wins (e.g.
        // OUT_OF_RANGE for a len rounding to 0, INVALID_ARGS for a len beyond the region).
        if !allow_faults && vmo_offset + len as u64 > vmo.len_bytes() {
            return Err(Status::ERR_BUFFER_TOO_SMALL);
        }
        let (base, overwrite) = match spot {
            Spot::Free(base) => (base, false),
            Spot::Overwrite(base) => (base, true),
        };
        // Check phase: the quota (one mapping, plus what the overwrite splits, minus what it
        // removes), then everything the apply phase will need.
        let cut = if overwrite {
            CutPlan::new(&tree, self.id, base, base + len)
        } else {
            CutPlan::default()
        };
        let now = tree.regions(self.aspace.mapping_count());
        tree.admit(now, 1 + cut.delta())?;
        let mut slots = Slots::new();
        slots.reserve(vmo)?;
        cut.reserve(&mut slots)?;
        let node = tree.node_mut(self.id).ok_or(Status::ERR_BAD_STATE)?;
        if !node.children.reserve_inserts(1 + cut.inserts()) {
            return Err(Status::ERR_NO_MEMORY);
        }
        // Apply phase: cannot fail.
        let mut batch = Batch::new();
        if overwrite {
            unmap_range(
                &self.aspace,
                &mut tree,
                self.id,
                base,
                base + len,
                &mut slots,
                &mut batch,
            );
        }
        let max_perms = allowed.intersection(node_can_map(&tree, self.id));
        let uid = tree.new_uid();
        let mapping = VmMapping {
            vmo: vmo.clone(),
            vmo_offset,
            perms,
            max_perms,
            uid,
            _niche: LayoutNiche::Marker,
        };
        // The back-reference exists before any page-table entry does.
        self.aspace.backref_add(&mut slots, &mapping, base, len);
        let Some(node) = tree.node_mut(self.id) else {
            apply_failed("VMAR lookup")
        };
        if node
            .children
            .insert(base, len, Child::Mapping(mapping))
            .is_err()
        {
            apply_failed("gap-tree insert");
        }
        batch.created += 1;
        self.aspace.finish(&mut tree, batch);
        if map_range {
            if let Some((_, _, Child::Mapping(m))) =
                tree.node(self.id).and_then(|n| n.children.find(base))
            {
                if let Err(status) = self.aspace.map_committed(m, base, base, base + len) {
                    // Zircon destroys the new mapping when MAP_RANGE fails. Removing a whole
                    // mapping needs no reservation.
                    let mut batch = Batch::new();
                    unmap_range(
                        &self.aspace,
                        &mut tree,
                        self.id,
                        base,
                        base + len,
                        &mut Slots::new(),
                        &mut batch,
                    );
                    self.aspace.finish(&mut tree, batch);
                    return Err(status);
                }
            }
        }
        Ok(base)
    }

    /// `zx_vmar_unmap`: unmaps `[addr, addr + len)`: mappings partly inside are cut (split when
    /// the range is in their middle), sub-regions wholly inside are destroyed.
    ///
    /// `len` is rounded up to whole pages. Errors: `addr` unaligned, `len` 0 after rounding
    /// (INVALID_ARGS); destroyed (BAD_STATE); range not inside this region (INVALID_ARGS); a
    /// sub-region only partly inside, or any sub-region when `vmar_rights` lacks OP_CHILDREN
    /// (INVALID_ARGS). A range holding nothing is OK (Zircon). Nothing changes on error.
    pub fn unmap(&self, addr: usize, len: usize, vmar_rights: u32) -> ZxResult {
        self.unmap_step(addr, len, vmar_rights, usize::MAX)
            .map(drop)
    }

    /// One bounded step of [`Vmar::unmap`]: the same checks over the whole range (so an error
    /// changes nothing), then only the part of the range up to the end of its `max_children`-th
    /// child (mapping or sub-region) is unmapped; a sub-region among those children that still
    /// holds regions is emptied first, `max_children` regions a step (see [`Vmar::empty_step`]).
    /// Returns where the rest starts (`Some(addr)`, page-aligned, to call again with the
    /// remaining length) or `None` when done. The syscall layer puts preemption points between
    /// steps; other threads may see the partial unmap.
    pub fn unmap_step(
        &self,
        addr: usize,
        len: usize,
        vmar_rights: u32,
        max_children: usize,
    ) -> ZxResult<Option<usize>> {
        let op_children = vmar_rights & ZX_RIGHT_OP_CHILDREN != 0;
        if !page_aligned(addr) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        // ZIRCON (deviation from the spec text, which calls an unaligned len INVALID_ARGS): len is
        // rounded up to whole pages, and one rounding to 0 is INVALID_ARGS (`VmAddressRegion::Unmap`;
        // core tests `Vmar.UnalignedLenTest`, `Vmar.InvalidArgsTest`).
        let len = round_up_page(len).unwrap_or(0);
        if len == 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let mut tree = self.aspace.tree.lock();
        let node = tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        let end = addr.checked_add(len).ok_or(Status::ERR_INVALID_ARGS)?;
        if addr < node.base || end > node.end() {
            return Err(Status::ERR_INVALID_ARGS);
        }
        for (base, clen, child) in node.children.overlapping(addr, end) {
            if let Child::Vmar(_) = child {
                if !op_children || base < addr || base + clen > end {
                    return Err(Status::ERR_INVALID_ARGS);
                }
            }
        }
        // ZIRCON (deviation from the spec text, which lists NOT_FOUND "could not find the requested
        // mapping"): a range holding nothing is OK, as `VmAddressRegion::UnmapInternalLocked`
        // returns; core test `Vmar.UnmapBaseNotMappedTest` unmaps ranges starting in a gap.
        //
        // A sub-VMAR among this step's children that still holds regions is emptied first, in
        // steps of `max_children` regions (a bounded step must not destroy a whole subtree).
        if max_children != usize::MAX {
            let full = node
                .children
                .overlapping(addr, end)
                .take(max_children)
                .find_map(|(_, _, child)| match child {
                    Child::Vmar(v) => tree
                        .node(*v)
                        .is_some_and(|n| !n.children.is_empty())
                        .then_some(*v),
                    Child::Mapping(_) => None,
                });
            if let Some(sub) = full {
                let mut batch = Batch::new();
                empty_subtree_step(&self.aspace, &mut tree, sub, max_children, &mut batch);
                self.aspace.finish(&mut tree, batch);
                return Ok(Some(addr));
            }
        }
        // This step covers the range up to the end of its `max_children`-th child.
        let cut_end = match max_children.checked_sub(1) {
            Some(n) => node
                .children
                .overlapping(addr, end)
                .nth(n)
                .map_or(end, |(base, clen, _)| (base + clen).min(end)),
            None => end,
        };
        // Check phase: an unmap adds a region only when it cuts the middle out of one mapping;
        // otherwise it adds none and no quota refuses it.
        let cut = CutPlan::new(&tree, self.id, addr, cut_end);
        let now = tree.regions(self.aspace.mapping_count());
        tree.admit(now, cut.delta())?;
        let mut slots = Slots::new();
        cut.reserve(&mut slots)?;
        let node = tree.node_mut(self.id).ok_or(Status::ERR_BAD_STATE)?;
        if !node.children.reserve_inserts(cut.inserts()) {
            return Err(Status::ERR_NO_MEMORY);
        }
        // Apply phase: cannot fail.
        let mut batch = Batch::new();
        unmap_range(
            &self.aspace,
            &mut tree,
            self.id,
            addr,
            cut_end,
            &mut slots,
            &mut batch,
        );
        self.aspace.finish(&mut tree, batch);
        Ok((cut_end < end).then_some(cut_end))
    }

    /// `zx_vmar_protect`: sets the protection of every mapping page in `[addr, addr + len)`.
    ///
    /// Order of checks: PERM_READ_IF_XOM_UNSUPPORTED adds READ; each PERM_* needs the matching
    /// handle right (ACCESS_DENIED); WRITE/EXECUTE without READ (INVALID_ARGS); `addr` unaligned
    /// (INVALID_ARGS); any non-PERM option or ALIGN (INVALID_ARGS); `len` 0 after rounding up to
    /// pages (INVALID_ARGS); destroyed (BAD_STATE); range outside this region (INVALID_ARGS); a
    /// sub-region (even an empty one) in the range when `vmar_rights` lacks OP_CHILDREN
    /// (INVALID_ARGS); then, walking the mappings in address order (at any depth): a hole
    /// (NOT_FOUND), a mapping whose ceiling lacks a requested permission (ACCESS_DENIED), a mapping
    /// inside a sub-region whose permissions would grow (ACCESS_DENIED). All checks precede any
    /// change: on error nothing changes.
    pub fn protect(&self, options: u32, addr: usize, len: usize, vmar_rights: u32) -> ZxResult {
        let options = apply_xom(options);
        let new_perms = perms_of(options);
        let needed = rights_for(new_perms);
        if vmar_rights & needed != needed {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        if !is_valid_protection(options) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if !page_aligned(addr) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let split = split_options(options)?;
        if split.vmar != 0 || split.align_pow2 != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        // ZIRCON: len is rounded up to whole pages (the spec only says it must not be 0).
        let len = round_up_page(len).unwrap_or(0);
        if len == 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let op_children = vmar_rights & ZX_RIGHT_OP_CHILDREN != 0;
        let mut tree = self.aspace.tree.lock();
        let node = tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        let end = addr.checked_add(len).ok_or(Status::ERR_INVALID_ARGS)?;
        if addr < node.base || end > node.end() {
            return Err(Status::ERR_INVALID_ARGS);
        }
        // Fast path: the range is exactly one mapping, a direct child, that joins neither
        // neighbour after the change, so nothing is split or merged (nothing to admit or
        // reserve). The checks below give the same statuses in this case; the general path
        // handles everything else. Two tree lookups instead of about ten.
        if let Some((prev, (base, mlen, Child::Mapping(m)), next)) =
            node.children.find_with_neighbours(addr)
        {
            if base == addr && base + mlen == end {
                if !m.max_perms.contains(new_perms) {
                    return Err(Status::ERR_ACCESS_DENIED);
                }
                if m.perms == new_perms {
                    return Ok(());
                }
                let mut piece = Piece::of(self.id, base, mlen, m);
                piece.perms = new_perms;
                let joins_left = match prev {
                    Some((b, l, Child::Mapping(pm))) => Piece::of(self.id, b, l, pm).joins(&piece),
                    _ => false,
                };
                let joins_right = match next {
                    Some((b, l, Child::Mapping(nm))) => piece.joins(&Piece::of(self.id, b, l, nm)),
                    _ => false,
                };
                if !joins_left && !joins_right {
                    let node = tree.node_mut(self.id).ok_or(Status::ERR_INTERNAL)?;
                    if let Some((_, Child::Mapping(m))) = node.children.get_mut(base) {
                        m.perms = new_perms;
                    }
                    let mut batch = Batch::new();
                    self.aspace.protect_ptes(&mut batch, base, mlen, new_perms);
                    self.aspace.finish(&mut tree, batch);
                    return Ok(());
                }
            }
        }
        // SPEC: "some subrange of the requested range is occupied by a subregion and handle did
        // not have ZX_RIGHT_OP_CHILDREN" is INVALID_ARGS, even for a sub-region holding no mapping
        // (where the walk below would only see a hole).
        if !op_children
            && node
                .children
                .overlapping(addr, end)
                .any(|(_, _, c)| matches!(c, Child::Vmar(_)))
        {
            return Err(Status::ERR_INVALID_ARGS);
        }
        // Check phase, one walk over the mappings in address order: the statuses, which mappings
        // change, where the range cuts one (at most at both ends), and which changed pieces will
        // merge with a neighbour (so the quota is charged exactly what the call adds).
        let mut cursor = addr;
        let mut prev: Option<Piece> = None;
        // (parent, base, len, changes) of the first and the last mapping.
        let mut first: Option<(RegionId, usize, usize, bool)> = None;
        let mut last: Option<(RegionId, usize, usize, bool)> = None;
        let mut merges = 0isize;
        while let Some((parent, base, mlen)) = tree.next_mapping(self.id, cursor, end) {
            if base > cursor {
                return Err(Status::ERR_NOT_FOUND);
            }
            let m = mapping_at(&tree, parent, base).ok_or(Status::ERR_INTERNAL)?;
            if !m.max_perms.contains(new_perms) {
                return Err(Status::ERR_ACCESS_DENIED);
            }
            if parent != self.id {
                if !op_children {
                    return Err(Status::ERR_INVALID_ARGS);
                }
                // Through a parent VMAR, permissions may only shrink.
                if !m.perms.contains(new_perms) {
                    return Err(Status::ERR_ACCESS_DENIED);
                }
            }
            let (ps, pe) = (base.max(addr), (base + mlen).min(end));
            let piece = Piece {
                parent,
                start: ps,
                end: pe,
                vmo: Arc::as_ptr(&m.vmo),
                vmo_offset: m.vmo_offset + (ps - base) as u64,
                perms: new_perms,
                max_perms: m.max_perms,
                changes: m.perms != new_perms,
            };
            match &prev {
                Some(p) => {
                    if (p.changes || piece.changes) && p.joins(&piece) {
                        merges += 1;
                    }
                }
                None => {
                    if piece.changes && ps == base {
                        if let Some(left) = Piece::ending_at(&tree, parent, ps) {
                            merges += isize::from(left.joins(&piece));
                        }
                    }
                }
            }
            first.get_or_insert((parent, base, mlen, piece.changes));
            last = Some((parent, base, mlen, piece.changes));
            cursor = base + mlen;
            prev = Some(piece);
        }
        if cursor < end {
            return Err(Status::ERR_NOT_FOUND);
        }
        let (Some(first), Some(last), Some(prev)) = (first, last, prev) else {
            return Err(Status::ERR_NOT_FOUND);
        };
        if prev.changes && prev.end == last.1 + last.2 {
            if let Some(right) = Piece::starting_at(&tree, prev.parent, prev.end) {
                merges += isize::from(prev.joins(&right));
            }
        }
        let split_first = first.3 && addr > first.1;
        let split_last = last.3 && end < last.1 + last.2;
        let now = tree.regions(self.aspace.mapping_count());
        tree.admit(
            now,
            isize::from(split_first) + isize::from(split_last) - merges,
        )?;
        let mut slots = Slots::new();
        for (split, (parent, base, _, _)) in [(split_first, first), (split_last, last)] {
            if !split {
                continue;
            }
            let m = mapping_at(&tree, parent, base).ok_or(Status::ERR_INTERNAL)?;
            slots.reserve(&m.vmo.clone())?;
            let node = tree.node_mut(parent).ok_or(Status::ERR_INTERNAL)?;
            // Two splits in one tree: the second reservation covers both inserts.
            let inserts = if split_first && split_last && first.0 == last.0 {
                2
            } else {
                1
            };
            if !node.children.reserve_inserts(inserts) {
                return Err(Status::ERR_NO_MEMORY);
            }
        }
        // Apply phase: cannot fail. Each changed piece is cut out, changed, and merged with its
        // neighbours as soon as they are final (a later piece merges with it from its side).
        let mut batch = Batch::new();
        let mut cursor = addr;
        while let Some((parent, base, mlen)) = tree.next_mapping(self.id, cursor, end) {
            let Some(m) = mapping_at(&tree, parent, base) else {
                apply_failed("mapping lookup")
            };
            if m.perms == new_perms {
                cursor = base + mlen;
                continue;
            }
            let (ps, pe) = (base.max(addr), (base + mlen).min(end));
            if ps > base {
                split_mapping(&self.aspace, &mut tree, parent, ps, &mut slots, &mut batch);
            }
            if pe < base + mlen {
                split_mapping(&self.aspace, &mut tree, parent, pe, &mut slots, &mut batch);
            }
            let Some(node) = tree.node_mut(parent) else {
                apply_failed("VMAR lookup")
            };
            if let Some((_, Child::Mapping(m))) = node.children.get_mut(ps) {
                m.perms = new_perms;
            }
            self.aspace.protect_ptes(&mut batch, ps, pe - ps, new_perms);
            merge_with_next(&self.aspace, &mut node.children, ps, &mut batch);
            if ps > node.base {
                if let Some((left, _, Child::Mapping(_))) = node.children.find(ps - 1) {
                    merge_with_next(&self.aspace, &mut node.children, left, &mut batch);
                }
            }
            cursor = pe;
        }
        self.aspace.finish(&mut tree, batch);
        Ok(())
    }

    /// `zx_vmar_destroy`: unmaps everything inside and destroys every sub-region, recursively;
    /// the region's range returns to its parent. Handles stay valid; operations on them return
    /// BAD_STATE.
    ///
    /// Errors: `vmar_rights` lacks OP_CHILDREN (ACCESS_DENIED); the root VMAR (NOT_SUPPORTED);
    /// already destroyed (BAD_STATE).
    pub fn destroy(&self, vmar_rights: u32) -> ZxResult {
        if vmar_rights & ZX_RIGHT_OP_CHILDREN == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        if self.is_root {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        let mut tree = self.aspace.tree.lock();
        if tree.node(self.id).is_none() {
            return Err(Status::ERR_BAD_STATE);
        }
        // Lowers usage: no quota, no reservation, no allocation.
        self.aspace.unmap_ptes_now(self.base, self.len);
        let mut batch = Batch::new();
        destroy_subtree(&self.aspace, &mut tree, self.id, &mut batch);
        self.aspace.finish(&mut tree, batch);
        Ok(())
    }

    /// One bounded step of emptying this VMAR: removes up to `max` regions of its subtree
    /// (whole mappings, and sub-VMARs once empty, deepest first in address order) and returns
    /// how many; 0 when it is empty. The VMAR itself stays. The steps of a destroy, a process
    /// teardown, or an unmap over a sub-VMAR (the syscall layer calls it with preemption points
    /// in between; other threads may see the subtree partly emptied, as a Zircon destroy in
    /// progress). O(`max` + nesting depth) under the tree lock. `ERR_BAD_STATE` when destroyed.
    pub fn empty_step(&self, max: usize) -> ZxResult<usize> {
        let mut tree = self.aspace.tree.lock();
        tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        let mut batch = Batch::new();
        let removed = empty_subtree_step(&self.aspace, &mut tree, self.id, max, &mut batch);
        self.aspace.finish(&mut tree, batch);
        Ok(removed)
    }

    /// `zx_vmar_op_range`: COMMIT, DECOMMIT, MAP_RANGE, DONT_NEED or ALWAYS_NEED over the mappings
    /// of `[addr, addr + len)`. `buffer_len` is the syscall's buffer size (must be 0; the syscall
    /// layer also rejects a non-null buffer with INVALID_ARGS).
    ///
    /// Order of checks: unknown op (INVALID_ARGS); COMMIT/DECOMMIT without the handle's WRITE
    /// right (ACCESS_DENIED); `buffer_len` non-zero, `len` 0 after rounding up, `addr` unaligned
    /// (INVALID_ARGS); range not inside this region (OUT_OF_RANGE); destroyed (BAD_STATE); then per
    /// mapping in address order: a hole (BAD_STATE); a mapping in a sub-region for COMMIT /
    /// DECOMMIT, or for any op without OP_CHILDREN (INVALID_ARGS); COMMIT / DECOMMIT on a mapping
    /// that can never be writable (ACCESS_DENIED); the VMO's own error (OUT_OF_RANGE past its end,
    /// NO_MEMORY). Like Zircon, work done on earlier mappings stays when a later one fails.
    pub fn op_range(
        &self,
        op: u32,
        addr: usize,
        len: usize,
        vmar_rights: u32,
        buffer_len: usize,
    ) -> ZxResult {
        let op_children = vmar_rights & ZX_RIGHT_OP_CHILDREN != 0;
        let is_commit = op == ZX_VMAR_OP_COMMIT;
        let is_decommit = op == ZX_VMAR_OP_DECOMMIT;
        if !matches!(
            op,
            ZX_VMAR_OP_COMMIT
                | ZX_VMAR_OP_DECOMMIT
                | ZX_VMAR_OP_MAP_RANGE
                | ZX_VMAR_OP_DONT_NEED
                | ZX_VMAR_OP_ALWAYS_NEED
        ) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if (is_commit || is_decommit) && vmar_rights & ZX_RIGHT_WRITE == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        // ZIRCON: the spec names no right for MAP_RANGE; current Zircon needs READ
        // (vmar.cc `OpRangeRights`).
        if op == ZX_VMAR_OP_MAP_RANGE && vmar_rights & ZX_RIGHT_READ == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        if buffer_len != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let len = round_up_page(len).unwrap_or(0);
        if len == 0 || !page_aligned(addr) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let end = addr.checked_add(len).ok_or(Status::ERR_OUT_OF_RANGE)?;
        if addr < self.base || end > self.base + self.len {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        let tree = self.aspace.tree.lock();
        tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        let mut expected = addr;
        while let Some((parent, base, mlen)) = tree.next_mapping(self.id, expected, end) {
            if base > expected {
                return Err(Status::ERR_BAD_STATE);
            }
            if (is_commit || is_decommit || !op_children) && parent != self.id {
                return Err(Status::ERR_INVALID_ARGS);
            }
            let m = mapping_at(&tree, parent, base).ok_or(Status::ERR_INTERNAL)?;
            let (s, e) = (expected, (base + mlen).min(end));
            let vmo_off = m.vmo_offset + (s - base) as u64;
            let size = (e - s) as u64;
            match op {
                ZX_VMAR_OP_COMMIT => {
                    if !m.max_perms.contains(MmuFlags::WRITE) {
                        return Err(Status::ERR_ACCESS_DENIED);
                    }
                    m.vmo.commit(vmo_off, size)?;
                    self.aspace.map_committed(m, base, s, e)?;
                }
                ZX_VMAR_OP_DECOMMIT => {
                    if !m.max_perms.contains(MmuFlags::WRITE) {
                        return Err(Status::ERR_ACCESS_DENIED);
                    }
                    m.vmo.decommit(vmo_off, size)?;
                }
                ZX_VMAR_OP_MAP_RANGE | ZX_VMAR_OP_ALWAYS_NEED => {
                    // ALWAYS_NEED is a reclamation hint (nothing is reclaimed here) that also
                    // populates the page tables, as in Zircon.
                    self.aspace.map_committed(m, base, s, e)?;
                }
                _ => {} // DONT_NEED: trivially succeeds for non-pager VMOs.
            }
            expected = e;
        }
        if expected < end {
            return Err(Status::ERR_BAD_STATE);
        }
        Ok(())
    }
}

/// The CAN_MAP_* permissions of VMAR `id` (none once destroyed).
fn node_can_map(tree: &Tree, id: RegionId) -> MmuFlags {
    tree.node(id).map_or(MmuFlags::NONE, |n| n.flags.can_map)
}

/// A stretch of a mapping as it will be after a protect: enough to tell whether two stretches
/// will merge ([`VmMapping::can_merge`]).
struct Piece {
    parent: RegionId,
    start: usize,
    end: usize,
    vmo: *const Vmo,
    vmo_offset: u64,
    perms: MmuFlags,
    max_perms: MmuFlags,
    /// The protect changes its permissions.
    changes: bool,
}

impl Piece {
    fn of(parent: RegionId, base: usize, len: usize, m: &VmMapping) -> Piece {
        Piece {
            parent,
            start: base,
            end: base + len,
            vmo: Arc::as_ptr(&m.vmo),
            vmo_offset: m.vmo_offset,
            perms: m.perms,
            max_perms: m.max_perms,
            changes: false,
        }
    }

    /// The mapping of `parent` ending exactly at `addr`, as it is.
    fn ending_at(tree: &Tree, parent: RegionId, addr: usize) -> Option<Piece> {
        let node = tree.node(parent)?;
        if addr <= node.base {
            return None;
        }
        match node.children.find(addr - 1)? {
            (base, len, Child::Mapping(m)) if base + len == addr => {
                Some(Piece::of(parent, base, len, m))
            }
            _ => None,
        }
    }

    /// The mapping of `parent` starting exactly at `addr`, as it is.
    fn starting_at(tree: &Tree, parent: RegionId, addr: usize) -> Option<Piece> {
        match tree.node(parent)?.children.get(addr)? {
            (len, Child::Mapping(m)) => Some(Piece::of(parent, addr, len, m)),
            _ => None,
        }
    }

    /// True when `self` and `next` (right after it) will be one mapping.
    fn joins(&self, next: &Piece) -> bool {
        self.parent == next.parent
            && self.end == next.start
            && core::ptr::eq(self.vmo, next.vmo)
            && self.vmo_offset.checked_add((self.end - self.start) as u64) == Some(next.vmo_offset)
            && self.perms == next.perms
            && self.max_perms == next.max_perms
    }
}

/// What cutting `[start, end)` out of a VMAR's direct children does to the number of regions and
/// which reservations it needs: at most one mapping is cut in its middle (a new region, a new
/// back-reference key, a tree insert) or has its head cut off (it moves: a new key and a
/// re-insert); whole children go.
#[derive(Default)]
struct CutPlan {
    /// The VMO of the mapping whose middle is cut out.
    middle: Option<Arc<Vmo>>,
    /// The VMO of the mapping whose head is cut off.
    head: Option<Arc<Vmo>>,
    /// Direct children removed whole (at least: a sub-VMAR's contents go too).
    removed: usize,
}

impl CutPlan {
    fn new(tree: &Tree, id: RegionId, start: usize, end: usize) -> CutPlan {
        let mut plan = CutPlan::default();
        let Some(node) = tree.node(id) else {
            return plan;
        };
        for (base, len, child) in node.children.overlapping(start, end) {
            let mend = base + len;
            match child {
                Child::Mapping(m) if base < start && mend > end => {
                    plan.middle = Some(m.vmo.clone());
                }
                Child::Mapping(m) if base >= start && mend > end => {
                    plan.head = Some(m.vmo.clone());
                }
                Child::Mapping(_) if base < start => {} // the tail is cut: it only shrinks
                _ => plan.removed += 1,
            }
        }
        plan
    }

    /// Regions added (negative: removed).
    fn delta(&self) -> isize {
        isize::from(self.middle.is_some()) - self.removed as isize
    }

    /// Tree inserts the cut needs.
    fn inserts(&self) -> usize {
        usize::from(self.middle.is_some()) + usize::from(self.head.is_some())
    }

    /// Reserves the back-reference slots of the new keys.
    fn reserve(&self, slots: &mut Slots) -> ZxResult {
        for vmo in [&self.middle, &self.head].into_iter().flatten() {
            slots.reserve(vmo)?;
        }
        Ok(())
    }
}

/// The mapping based exactly at `base` in VMAR `parent`.
fn mapping_at(tree: &Tree, parent: RegionId, base: usize) -> Option<&VmMapping> {
    match tree.node(parent)?.children.get(base)? {
        (_, Child::Mapping(m)) => Some(m),
        _ => None,
    }
}

/// Splits the mapping of `parent` that strictly contains `addr` into `[base, addr)` and
/// `[addr, end)`, using the tree insert and the back-reference slot reserved for it. No-op when
/// `addr` is a mapping boundary or not inside a mapping.
fn split_mapping(
    aspace: &AddressSpace,
    tree: &mut Tree,
    parent: RegionId,
    addr: usize,
    slots: &mut Slots,
    batch: &mut Batch,
) {
    let uid = tree.new_uid();
    let Some(node) = tree.node_mut(parent) else {
        return;
    };
    let Some((base, len, Child::Mapping(m))) = node.children.find(addr) else {
        return;
    };
    if base == addr {
        return;
    }
    let right = VmMapping {
        vmo: m.vmo.clone(),
        vmo_offset: m.vmo_offset + (addr - base) as u64,
        perms: m.perms,
        max_perms: m.max_perms,
        uid,
        _niche: LayoutNiche::Marker,
    };
    let right_len = base + len - addr;
    aspace.backref_split(slots, (m, base, addr - base), (&right, addr, right_len));
    if node.children.set_len(base, addr - base).is_err() {
        apply_failed("gap-tree shrink");
    }
    if node
        .children
        .insert(addr, right_len, Child::Mapping(right))
        .is_err()
    {
        apply_failed("gap-tree insert");
    }
    batch.created += 1;
}

/// Merges the mapping at `base` with the one starting right at its end, if compatible. Allocates
/// nothing (a removal, then a growth into the space it freed).
fn merge_with_next(
    aspace: &AddressSpace,
    children: &mut GapTree<Child>,
    base: usize,
    batch: &mut Batch,
) {
    let Some((len, Child::Mapping(m))) = children.get(base) else {
        return;
    };
    let Some(end) = base.checked_add(len) else {
        return;
    };
    let Some((next_len, Child::Mapping(next))) = children.get(end) else {
        return;
    };
    if !m.can_merge(len, next) {
        return;
    }
    let Some((_, Child::Mapping(next))) = children.remove(end) else {
        return;
    };
    if children.set_len(base, len + next_len).is_err() {
        apply_failed("gap-tree growth into a removed entry");
    }
    if let Some((_, Child::Mapping(m))) = children.get(base) {
        aspace.backref_merge(m, base, len + next_len, &next);
    }
    // The merged mapping keeps the same VMO alive: dropping `next` frees no frame.
    batch.removed += 1;
    drop(next);
}

/// Removes everything of VMAR `id` inside `[start, end)`: whole sub-VMARs are destroyed (the
/// caller checked they lie wholly inside and may be destroyed), mappings are cut to the range.
/// The page-table entries of the range go first, flushed; the cuts use what the caller reserved
/// for its [`CutPlan`]. Walks with a cursor: no list is collected.
fn unmap_range(
    aspace: &AddressSpace,
    tree: &mut Tree,
    id: RegionId,
    start: usize,
    end: usize,
    slots: &mut Slots,
    batch: &mut Batch,
) {
    aspace.unmap_ptes_now(start, end - start);
    let mut cursor = start;
    loop {
        let Some(node) = tree.node(id) else { return };
        let Some((base, len, sub)) =
            node.children
                .overlapping(cursor, end)
                .next()
                .map(|(b, l, c)| match c {
                    Child::Vmar(v) => (b, l, Some(*v)),
                    Child::Mapping(_) => (b, l, None),
                })
        else {
            return;
        };
        cursor = base + len;
        match sub {
            Some(sub) => destroy_subtree(aspace, tree, sub, batch),
            None => cut_mapping(aspace, tree, id, base, start, end, slots, batch),
        }
    }
}

/// Cuts `[start, end)` out of the mapping at `base` of VMAR `parent` (its page-table entries
/// there are already gone).
#[allow(clippy::too_many_arguments)]
fn cut_mapping(
    aspace: &AddressSpace,
    tree: &mut Tree,
    parent: RegionId,
    base: usize,
    start: usize,
    end: usize,
    slots: &mut Slots,
    batch: &mut Batch,
) {
    let new_uid = tree.new_uid();
    let Some(node) = tree.node_mut(parent) else {
        return;
    };
    let Some((len, _)) = node.children.get(base) else {
        return;
    };
    let mend = base + len;
    let (us, ue) = (base.max(start), mend.min(end));
    if us >= ue {
        return;
    }
    if us == base && ue == mend {
        if let Some((_, Child::Mapping(m))) = node.children.remove(base) {
            aspace.drop_mapping(m, batch);
        }
    } else if us == base {
        // Cut the head: the rest moves to a new base (and a new back-reference key, recorded
        // before the old one goes).
        if let Some((_, Child::Mapping(mut m))) = node.children.remove(base) {
            let old_offset = m.vmo_offset;
            m.vmo_offset += (ue - base) as u64;
            aspace.backref_add(slots, &m, ue, mend - ue);
            let old = aspace.backref_key(old_offset, m.uid);
            m.vmo.lock().mappings.remove(old);
            if node
                .children
                .insert(ue, mend - ue, Child::Mapping(m))
                .is_err()
            {
                apply_failed("gap-tree insert");
            }
        }
    } else if ue == mend {
        // Cut the tail.
        if node.children.set_len(base, us - base).is_err() {
            apply_failed("gap-tree shrink");
        }
        if let Some((_, Child::Mapping(m))) = node.children.get(base) {
            aspace.backref_update(m, base, us - base);
        }
    } else {
        // Cut the middle: split into two.
        let Some((_, Child::Mapping(m))) = node.children.get(base) else {
            return;
        };
        let right = VmMapping {
            vmo: m.vmo.clone(),
            vmo_offset: m.vmo_offset + (ue - base) as u64,
            perms: m.perms,
            max_perms: m.max_perms,
            uid: new_uid,
            _niche: LayoutNiche::Marker,
        };
        aspace.backref_split(slots, (m, base, us - base), (&right, ue, mend - ue));
        if node.children.set_len(base, us - base).is_err() {
            apply_failed("gap-tree shrink");
        }
        if node
            .children
            .insert(ue, mend - ue, Child::Mapping(right))
            .is_err()
        {
            apply_failed("gap-tree insert");
        }
        batch.created += 1;
    }
}

/// Removes up to `max` regions below VMAR `id` (not `id` itself): whole mappings, with their
/// page-table entries, and sub-VMARs once they are empty, deepest first in address order; the
/// number removed. Walks down through first children (O(nesting depth)) and back up through
/// the parent links: no recursion, no allocation.
fn empty_subtree_step(
    aspace: &AddressSpace,
    tree: &mut Tree,
    id: RegionId,
    max: usize,
    batch: &mut Batch,
) -> usize {
    let mut removed = 0;
    let mut cur = id;
    while removed < max {
        let Some(node) = tree.node_mut(cur) else {
            break;
        };
        let first = node.children.iter().next().map(|(b, l, c)| match c {
            Child::Vmar(v) => (b, l, Some(*v)),
            Child::Mapping(_) => (b, l, None),
        });
        match first {
            Some((_, _, Some(child))) => cur = child,
            Some((base, len, None)) => {
                aspace.unmap_ptes_now(base, len);
                if let Some((_, Child::Mapping(m))) = node.children.remove(base) {
                    aspace.drop_mapping(m, batch);
                }
                removed += 1;
            }
            None if cur == id => break,
            None => {
                let (base, parent) = (node.base, node.parent);
                tree.free_node(cur);
                removed += 1;
                let Some(p) = parent else { break };
                if let Some(pn) = tree.node_mut(p) {
                    pn.children.remove(base);
                }
                cur = p;
            }
        }
    }
    removed
}

/// Destroys VMAR `id` and everything below it, removing it from its parent; the page-table
/// entries of its range must be gone already. Walks down through the first child and back up
/// through the parent links: no recursion, no allocation.
fn destroy_subtree(aspace: &AddressSpace, tree: &mut Tree, id: RegionId, batch: &mut Batch) {
    let Some(node) = tree.node(id) else { return };
    let (base, parent) = (node.base, node.parent);
    if let Some(p) = parent.and_then(|p| tree.node_mut(p)) {
        p.children.remove(base);
    }
    let mut cur = id;
    loop {
        let Some(node) = tree.node_mut(cur) else {
            return;
        };
        let first = node.children.iter().next().map(|(b, _, _)| b);
        match first.and_then(|b| node.children.remove(b)) {
            Some((_, Child::Vmar(child))) => cur = child,
            Some((_, Child::Mapping(m))) => aspace.drop_mapping(m, batch),
            None => {
                let parent = node.parent;
                tree.free_node(cur);
                if cur == id {
                    return;
                }
                match parent {
                    Some(p) => cur = p,
                    None => return,
                }
            }
        }
    }
}
