//! AddressSpace: one process's (or the kernel's) virtual address space.
//!
//! This module owns [`AddressSpace`]: the region arena (every live VMAR, addressed by a
//! generation-checked [`RegionId`]), the ASLR random source, the MMU of the space, page-fault
//! resolution ([`AddressSpace::fault`]), introspection ([`AddressSpace::walk`],
//! [`AddressSpace::dump`]) and a whole-structure consistency check for tests.
//!
//! # Shape (safe Rust, no `Arc` cycles)
//!
//! * `AddressSpace` holds two locks. The *tree lock* (Zircon's aspace lock) protects the arena of
//!   VMAR nodes; each node keeps its children in a [`GapTree`] keyed by base whose values are
//!   either a child VMAR's [`RegionId`] or a `VmMapping` stored inline. The *MMU lock* protects
//!   the page tables. Lock order: tree -> VMO -> MMU (a VMO shrinking under its own lock must be
//!   able to reach the MMU without the tree lock).
//! * A [`Vmar`] handle object is `(Arc<AddressSpace>, RegionId)` plus its immutable base / size /
//!   flags. Destroying a VMAR frees its arena slot and bumps the slot generation, so every later
//!   operation through any handle to it finds no node and fails with `ERR_BAD_STATE`, while the
//!   handles themselves stay valid.
//! * Mappings own their VMO (`Arc<Vmo>`); the VMO points back with `Weak<AddressSpace>`.
//!
//! The parts live in submodules: `tree` (the region arena behind the tree lock), `batch` (what an
//! operation carries from its check phase to its apply phase), `backref` (the VMO back-references
//! of mappings), `ptes` (page-table entries: fault resolution and their upkeep), `walk`
//! (introspection) and `check` (the consistency check). This file holds [`AddressSpace`] itself:
//! creation, the region limit and budget, the counters, and the end of every operation.

mod backref;
mod batch;
mod check;
mod ptes;
mod tree;
mod walk;

pub(crate) use batch::{apply_failed, Batch, Slots};
pub(crate) use tree::{Child, Tree, VmarNode};
pub use tree::{RegionBudget, RegionId};
pub use walk::{RegionInfo, WalkCursor};

use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use abi::{Status, ZxResult, PAGE_SIZE};
use lock_order::{Class, OrderedMutex as Mutex};

use crate::arch_traits::{Mmu, MmuFlags, PhysAddr};
use crate::gap_tree::GapTree;
use crate::rng::RandomSource;
use crate::vmar::{Vmar, VmarFlags};
use crate::vmo::BackRefKey;

static NEXT_ASPACE_ID: AtomicU64 = AtomicU64::new(1);

/// Zircon's default `aslr.entropy_bits` boot option.
pub const DEFAULT_ENTROPY_BITS: u8 = 30;

/// How an address space is laid out and randomized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AspaceConfig {
    /// First byte of the space. Must be page-aligned and non-zero, so no region or mapping can
    /// ever be placed at address 0.
    pub base: usize,
    /// Size of the space in bytes (page-aligned, non-zero, `base + size` must not overflow).
    pub size: usize,
    /// True for a user address space: page-table entries get [`MmuFlags::USER`], and only user
    /// accesses are expected in faults.
    pub user: bool,
    /// ASLR on: placement without SPECIFIC is random. Off: lowest free spot.
    pub aslr: bool,
    /// log2 of the number of candidate positions a random placement chooses from.
    pub entropy_bits: u8,
    /// The same inside `ZX_VM_COMPACT` regions; 0 (Zircon's value) means "lowest free spot".
    pub compact_entropy_bits: u8,
}

impl AspaceConfig {
    /// A user address space `[base, base + size)` with ASLR at Zircon's default entropy.
    pub const fn user(base: usize, size: usize) -> AspaceConfig {
        AspaceConfig {
            base,
            size,
            user: true,
            aslr: true,
            entropy_bits: DEFAULT_ENTROPY_BITS,
            compact_entropy_bits: 0,
        }
    }
}

/// Pages a fault maps at most: the faulting one and the committed pages after it in its
/// aligned window of this many pages (see [`AddressSpace::fault`]).
pub const FAULT_AROUND_PAGES: usize = 16;
const FAULT_AROUND_SIZE: usize = FAULT_AROUND_PAGES * PAGE_SIZE;

/// A virtual address space: the VMAR tree, its MMU and its ASLR state.
pub struct AddressSpace {
    id: u64,
    self_ref: Weak<AddressSpace>,
    config: AspaceConfig,
    pub(crate) tree: Mutex<Tree>,
    mmu: Mutex<Box<dyn Mmu>>,
    /// Live mappings (see [`AddressSpace::mapping_count`]).
    mapping_count: AtomicUsize,
}

impl AddressSpace {
    /// Creates an address space with an empty root VMAR covering the whole space (flags
    /// CAN_MAP_SPECIFIC and CAN_MAP_READ/WRITE/EXECUTE, as Zircon's root VMAR). A `base` of 0,
    /// an unaligned or empty range, or one that wraps -> `ERR_INVALID_ARGS`.
    pub fn new(
        config: AspaceConfig,
        mmu: Box<dyn Mmu>,
        rng: Box<dyn RandomSource>,
    ) -> ZxResult<Arc<AddressSpace>> {
        let end = config.base.checked_add(config.size);
        if config.base == 0
            || !config.base.is_multiple_of(PAGE_SIZE)
            || config.size == 0
            || !config.size.is_multiple_of(PAGE_SIZE)
            || end.is_none()
        {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let root_node = VmarNode {
            base: config.base,
            len: config.size,
            flags: VmarFlags::root(),
            parent: None,
            children: GapTree::new(config.base, config.size),
        };
        let tree = Tree::new(root_node, rng);
        Ok(Arc::new_cyclic(|weak| AddressSpace {
            id: NEXT_ASPACE_ID.fetch_add(1, Ordering::Relaxed),
            self_ref: weak.clone(),
            config,
            tree: Mutex::new(Class::AspaceTree, tree),
            mmu: Mutex::new(Class::AspaceMmu, mmu),
            mapping_count: AtomicUsize::new(0),
        }))
    }

    /// Live mappings in the whole address space (O(1); for per-process quotas). Exact between
    /// operations: each operation's `Batch` adds the mappings it created and subtracts those it
    /// removed when it finishes.
    pub fn mapping_count(&self) -> usize {
        self.mapping_count.load(Ordering::Relaxed)
    }

    /// Bounds what operations may add: an operation that would leave more than `max_regions`
    /// mappings + VMARs (root included), or that adds any while `may_grow` returns false, fails
    /// with `ERR_NO_MEMORY` and changes nothing. Each operation is charged exactly what it adds
    /// (map and allocate one, a split one or two, a merge minus one); one that adds nothing
    /// (unmap of whole mappings, destroy, a protect that splits nothing) is never refused.
    /// Default: no limit.
    pub fn set_region_limit(&self, max_regions: usize, may_grow: fn() -> bool) {
        let mut tree = self.tree.lock();
        tree.max_regions = max_regions;
        tree.may_grow = may_grow;
    }

    /// Charges this space's regions to `budget` from now on (the first operation that adds
    /// regions charges all it holds then; see [`RegionBudget`]).
    pub fn set_region_budget(&self, budget: Arc<dyn RegionBudget>) {
        let mut tree = self.tree.lock();
        let now = tree.regions(self.mapping_count());
        tree.settle(now);
        if let Some(old) = tree.budget.replace(budget) {
            old.release(tree.charged);
        }
        tree.charged = 0;
    }

    /// Mappings + VMARs (root included) held now, and releases any charge beyond them (after
    /// an operation that removed regions or failed after its admission). O(1).
    pub fn settle_regions(&self) -> usize {
        let mut tree = self.tree.lock();
        let now = tree.regions(self.mapping_count());
        tree.settle(now);
        now
    }

    /// Regions charged to the budget now (see [`RegionBudget`]).
    pub fn charged_regions(&self) -> usize {
        self.tree.lock().charged
    }

    /// Live VMARs in the whole address space, the root included (O(1); for per-process quotas).
    pub fn vmar_count(&self) -> usize {
        let tree = self.tree.lock();
        tree.slots.len() - tree.free.len()
    }

    /// The root VMAR (a new handle object to it).
    pub fn root_vmar(self: &Arc<Self>) -> Vmar {
        let root = self.tree.lock().root;
        Vmar::new(
            self.clone(),
            root,
            self.config.base,
            self.config.size,
            VmarFlags::root(),
            true,
        )
    }

    /// The configuration this space was created with.
    pub fn config(&self) -> &AspaceConfig {
        &self.config
    }

    /// A process-unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The page-table translation of `vaddr`, if any.
    pub fn query(&self, vaddr: usize) -> Option<(PhysAddr, MmuFlags)> {
        self.mmu.lock().query(vaddr)
    }

    pub(crate) fn pte_flags(&self, perms: MmuFlags) -> MmuFlags {
        if self.config.user {
            perms.perms() | MmuFlags::USER
        } else {
            perms.perms()
        }
    }

    /// Ends an operation (under the tree lock, which `tree` proves): flushes what it batched,
    /// updates the mapping count and releases the charge for regions it removed.
    pub(crate) fn finish(&self, tree: &mut Tree, batch: Batch) {
        let Batch {
            flush,
            created,
            removed,
        } = batch;
        self.mapping_count.fetch_add(created, Ordering::Relaxed);
        self.mapping_count.fetch_sub(removed, Ordering::Relaxed);
        self.mmu.lock().flush(flush);
        tree.settle(tree.regions(self.mapping_count()));
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        // Every page-table entry goes (and is flushed) first; then each mapping is dropped as it
        // leaves the tree. Nothing is collected: teardown allocates nothing.
        self.unmap_ptes_now(self.config.base, self.config.size);
        let mut batch = Batch::new();
        let tree = self.tree.get_mut();
        let mut cur = tree.root;
        while let Some(node) = tree.node_mut(cur) {
            let first = node.children.iter().next().map(|(b, _, _)| b);
            match first.and_then(|b| node.children.remove(b)) {
                Some((_, Child::Vmar(child))) => cur = child,
                Some((_, Child::Mapping(m))) => {
                    let key = BackRefKey {
                        vmo_offset: m.vmo_offset,
                        aspace: self.id,
                        uid: m.uid,
                    };
                    m.vmo.lock().mappings.remove(key);
                    batch.removed += 1;
                    drop(m);
                }
                None => {
                    let parent = node.parent;
                    tree.free_node(cur);
                    match parent {
                        Some(p) => cur = p,
                        None => break,
                    }
                }
            }
        }
        self.mapping_count
            .fetch_sub(batch.removed, Ordering::Relaxed);
    }
}

impl fmt::Debug for AddressSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddressSpace")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish()
    }
}
