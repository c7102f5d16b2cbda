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

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use abi::{Status, ZxResult, PAGE_SIZE};
use spin::Mutex;

use crate::arch_traits::{Mmu, MmuFlags, PhysAddr, TlbFlush};
use crate::gap_tree::GapTree;
use crate::mapping::VmMapping;
use crate::rng::RandomSource;
use crate::vmar::{Vmar, VmarFlags};
use crate::vmo::{BackRefKey, MappingRef, Vmo};

static NEXT_ASPACE_ID: AtomicU64 = AtomicU64::new(1);

/// Zircon's default `aslr.entropy_bits` boot option.
pub const DEFAULT_ENTROPY_BITS: u8 = 30;

/// How an address space is laid out and randomized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AspaceConfig {
    /// First byte of the space. Must be page-aligned and non-zero, so no region or mapping can
    /// ever be placed at address 0.
    pub base: usize,
    /// Size of the space in bytes (page-aligned, non-zero, `base + len_bytes` must not overflow).
    pub len_bytes: usize,
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
    /// A user address space `[base, base + len_bytes)` with ASLR at Zircon's default entropy.
    pub const fn user(base: usize, len_bytes: usize) -> AspaceConfig {
        AspaceConfig {
            base,
            len_bytes,
            user: true,
            aslr: true,
            entropy_bits: DEFAULT_ENTROPY_BITS,
            compact_entropy_bits: 0,
        }
    }
}

/// Names a VMAR inside its address space's arena; stale once the VMAR is destroyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegionId {
    index: u32,
    generation: u32,
}

/// A child of a VMAR: a sub-VMAR (in the arena) or a mapping (stored inline).
pub(crate) enum Child {
    Vmar(RegionId),
    Mapping(VmMapping),
}

// A gap-tree value slot (`Option<Child>`) must stay 32 bytes: two per cache line, none straddling
// a line (see `mapping::LayoutNiche`).
const _: () = assert!(core::mem::size_of::<Option<Child>>() == 32);

/// A live VMAR.
pub(crate) struct VmarNode {
    pub(crate) base: usize,
    pub(crate) len: usize,
    pub(crate) flags: VmarFlags,
    pub(crate) parent: Option<RegionId>,
    pub(crate) children: GapTree<Child>,
}

impl VmarNode {
    pub(crate) fn end(&self) -> usize {
        self.base + self.len
    }
}

struct Slot {
    generation: u32,
    node: Option<VmarNode>,
}

/// Everything behind the tree lock.
///
/// `free.capacity() >= slots.len()` always holds ([`Tree::reserve_node`] keeps it), so freeing a
/// node (pushing its index on `free`) never allocates.
pub(crate) struct Tree {
    slots: Vec<Slot>,
    free: Vec<u32>,
    pub(crate) root: RegionId,
    pub(crate) rng: Box<dyn RandomSource>,
    next_uid: u64,
    /// Most mappings + VMARs (root included) an operation may leave when it adds some.
    max_regions: usize,
    /// Asked before an operation adds regions; false refuses it with `ERR_NO_MEMORY` (the
    /// kernel's low-memory admission).
    may_grow: fn() -> bool,
    /// Where the regions are charged (the owning process's account), and how many are.
    budget: Option<Arc<dyn RegionBudget>>,
    charged: usize,
}

/// Where an address space charges its regions (mappings + VMARs, root included): the kernel
/// charges the account of the process that owns it. The address space charges before an
/// operation adds regions (the operation is refused with `ERR_NO_MEMORY` when the budget says
/// no, with nothing changed) and releases what it no longer holds when an operation ends with
/// fewer (see [`AddressSpace::settle_regions`]) and when it is dropped, so what is charged is
/// what it holds, plus at most what one operation that failed after its admission meant to add,
/// until the next operation or settle.
pub trait RegionBudget: Send + Sync {
    /// Charges `n` more regions; false when over a limit (nothing charged then).
    fn charge(&self, n: usize) -> bool;
    /// Releases `n` regions charged before.
    fn release(&self, n: usize);
}

impl Drop for Tree {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.charged);
        }
    }
}

fn always() -> bool {
    true
}

impl Tree {
    pub(crate) fn node(&self, id: RegionId) -> Option<&VmarNode> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.node.as_ref()
    }

    pub(crate) fn node_mut(&mut self, id: RegionId) -> Option<&mut VmarNode> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.node.as_mut()
    }

    /// Makes room for one [`Tree::alloc_node`] that cannot fail: a recycled slot, or spare
    /// capacity in the arena (and in the free list, for when the node is freed again).
    /// `ERR_NO_MEMORY` when that room cannot be allocated; nothing changes then.
    pub(crate) fn reserve_node(&mut self) -> ZxResult {
        if !self.free.is_empty() {
            return Ok(());
        }
        // More than u32::MAX live VMARs cannot fit in memory (each node is far larger than 1 B).
        let total = self.slots.len() + 1;
        if total > u32::MAX as usize
            || self.slots.try_reserve(1).is_err()
            || self
                .free
                .try_reserve(total.saturating_sub(self.free.len()))
                .is_err()
        {
            return Err(Status::ERR_NO_MEMORY);
        }
        Ok(())
    }

    /// Puts `node` in the arena; never allocates after a successful [`Tree::reserve_node`]
    /// (`None` when there was no such reservation).
    pub(crate) fn alloc_node(&mut self, node: VmarNode) -> Option<RegionId> {
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.node = Some(node);
            return Some(RegionId {
                index,
                generation: slot.generation,
            });
        }
        let index = self.slots.len();
        if index >= self.slots.capacity() || index >= self.free.capacity() {
            return None;
        }
        self.slots.push(Slot {
            generation: 0,
            node: Some(node),
        });
        Some(RegionId {
            index: index as u32,
            generation: 0,
        })
    }

    /// Takes the node out of the arena; `id` (and every copy of it) is stale from now on.
    pub(crate) fn free_node(&mut self, id: RegionId) -> Option<VmarNode> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let node = slot.node.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        // Within capacity (see the struct docs): no allocation.
        self.free.push(id.index);
        Some(node)
    }

    /// Mappings + VMARs (root included) in the whole tree; `mappings` is the address space's
    /// mapping count.
    pub(crate) fn regions(&self, mappings: usize) -> usize {
        mappings + (self.slots.len() - self.free.len())
    }

    /// Admission of an operation that changes the number of regions by `delta` when `now`
    /// exist: one that adds none is always admitted (a limit never blocks an operation that
    /// lowers usage); one that adds some must stay within the limit and find `may_grow` true.
    /// `ERR_NO_MEMORY` otherwise.
    pub(crate) fn admit(&mut self, now: usize, delta: isize) -> ZxResult {
        if delta <= 0 {
            return Ok(());
        }
        let need = now.saturating_add(delta.unsigned_abs());
        if need > self.max_regions || !(self.may_grow)() {
            return Err(Status::ERR_NO_MEMORY);
        }
        self.settle(now);
        if let Some(budget) = &self.budget {
            if need > self.charged {
                if !budget.charge(need - self.charged) {
                    return Err(Status::ERR_NO_MEMORY);
                }
                self.charged = need;
            }
        }
        Ok(())
    }

    /// Releases what is charged beyond the `now` regions held.
    pub(crate) fn settle(&mut self, now: usize) {
        if let (Some(budget), true) = (&self.budget, self.charged > now) {
            budget.release(self.charged - now);
            self.charged = now;
        }
    }

    /// A VMAR's children and the ASLR random source, borrowed together for placement.
    pub(crate) fn children_and_rng(
        &mut self,
        id: RegionId,
    ) -> Option<(&GapTree<Child>, &mut dyn RandomSource)> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let node = slot.node.as_ref()?;
        Some((&node.children, self.rng.as_mut()))
    }

    pub(crate) fn new_uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }

    /// The mapping containing `addr`, found by descending through sub-VMARs from `from`:
    /// `(parent, base, len, mapping)`.
    pub(crate) fn find_mapping(
        &self,
        from: RegionId,
        addr: usize,
    ) -> Option<(RegionId, usize, usize, &VmMapping)> {
        let mut id = from;
        loop {
            match self.node(id)?.children.find(addr)? {
                (_, _, Child::Vmar(child)) => id = *child,
                (base, len, Child::Mapping(m)) => return Some((id, base, len, m)),
            }
        }
    }

    /// The first mapping at any depth below `from` that intersects `[cursor, end)`, in address
    /// order: `(parent, base, len)`. Walks down into sub-VMARs and back up through their parent
    /// links: no recursion and no allocation, whatever the nesting depth. A caller visits every
    /// mapping of a range by moving `cursor` to the end of the one returned.
    pub(crate) fn next_mapping(
        &self,
        from: RegionId,
        cursor: usize,
        end: usize,
    ) -> Option<(RegionId, usize, usize)> {
        if cursor >= end {
            return None; // An empty range: no lookup needed.
        }
        let mut id = from;
        let mut cur = cursor;
        loop {
            let node = self.node(id)?;
            match node.children.overlapping(cur, end).next() {
                Some((base, len, Child::Mapping(_))) => return Some((id, base, len)),
                Some((_, _, Child::Vmar(child))) => id = *child,
                None => {
                    if id == from {
                        return None;
                    }
                    // Nothing more in this sub-VMAR: go on after it in its parent.
                    cur = node.end();
                    id = node.parent?;
                }
            }
        }
    }
}

/// What one operation accumulates while it edits the tree: one merged TLB flush for page-table
/// changes that free nothing (protect), and how many mappings it created and removed.
///
/// Removals never wait for the batch: an operation that removes mappings unmaps and flushes their
/// page-table entries first ([`AddressSpace::unmap_ptes_now`]), then drops each mapping as it
/// leaves the tree (its back-reference first). So a frame is never returned to the allocator
/// while a stale TLB entry may still reach it, nothing is collected (removal allocates nothing),
/// and a VMO back-reference always covers at least the page-table entries that exist for it.
pub(crate) struct Batch {
    flush: TlbFlush,
    /// Mappings this operation put in a tree.
    pub(crate) created: usize,
    /// Mappings this operation removed.
    pub(crate) removed: usize,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            flush: TlbFlush::none(),
            created: 0,
            removed: 0,
        }
    }

    pub(crate) fn add_flush(&mut self, flush: TlbFlush) {
        let prev = core::mem::replace(&mut self.flush, TlbFlush::none());
        self.flush = prev.merge(flush);
    }
}

/// Back-reference slots an operation reserved in its check phase, one per new back-reference key
/// its apply phase inserts (a mapping split off, a mapping whose window start moves, a new
/// mapping). Inserting takes one ([`Slots::take`]); whatever is left when it is dropped (an
/// operation that failed a later check) is given back to its VMO.
pub(crate) struct Slots {
    vmos: [Option<Arc<Vmo>>; 3],
}

impl Slots {
    pub(crate) fn new() -> Slots {
        Slots {
            vmos: [None, None, None],
        }
    }

    /// Reserves one slot in `vmo`'s back-references; `ERR_NO_MEMORY` when its arena cannot grow.
    pub(crate) fn reserve(&mut self, vmo: &Arc<Vmo>) -> ZxResult {
        let free = self
            .vmos
            .iter_mut()
            .find(|v| v.is_none())
            .ok_or(Status::ERR_INTERNAL)?;
        if !vmo.lock().mappings.reserve(1) {
            return Err(Status::ERR_NO_MEMORY);
        }
        *free = Some(vmo.clone());
        Ok(())
    }

    /// Marks one slot reserved in `vmo` as used (by the insert about to happen).
    fn take(&mut self, vmo: &Arc<Vmo>) {
        if let Some(v) = self
            .vmos
            .iter_mut()
            .find(|v| v.as_ref().is_some_and(|v| Arc::ptr_eq(v, vmo)))
        {
            *v = None;
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        for vmo in self.vmos.iter_mut().filter_map(Option::take) {
            vmo.lock().mappings.unreserve(1);
        }
    }
}

/// The apply phase met a missing reservation: a bug in a check phase. Continuing would leave a
/// mapping without its back-reference or without its tree entry (page-table entries that outlive
/// their frames), so this stops, in every build.
#[cold]
pub(crate) fn apply_failed(what: &str) -> ! {
    panic!("vm: {what} in an apply phase without its reservation")
}

/// Where a walk of a VMAR's subtree in steps stands (see [`crate::Vmar::walk_step`]): a stack
/// of (VMAR, depth, address its remaining children start at), as deep as the nesting.
#[derive(Debug, Default)]
pub struct WalkCursor {
    stack: Vec<(RegionId, usize, usize)>,
    started: bool,
}

impl WalkCursor {
    /// A walk not yet started.
    pub fn new() -> WalkCursor {
        WalkCursor::default()
    }

    /// True once a step found nothing left to list.
    pub fn is_done(&self) -> bool {
        self.started && self.stack.is_empty()
    }
}

/// One entry of an introspection walk (see [`AddressSpace::walk`]), in address order, parents
/// before their children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegionInfo {
    /// A VMAR.
    Vmar {
        /// Nesting depth (the walk's starting VMAR is 0).
        depth: usize,
        /// First byte.
        base: usize,
        /// Size in bytes.
        len_bytes: usize,
        /// Which permissions mappings inside may have (CAN_MAP_READ/WRITE/EXECUTE).
        can_map: MmuFlags,
        /// CAN_MAP_SPECIFIC.
        can_map_specific: bool,
        /// COMPACT.
        compact: bool,
    },
    /// A mapping.
    Mapping {
        /// Nesting depth.
        depth: usize,
        /// First byte.
        base: usize,
        /// Size in bytes.
        len_bytes: usize,
        /// Current protection.
        perms: MmuFlags,
        /// Maximum protection reachable through protect.
        max_perms: MmuFlags,
        /// The mapped VMO's id.
        vmo_id: u64,
        /// Offset of the mapping's first byte in the VMO.
        vmo_offset: u64,
        /// Committed VMO pages inside the mapping's window.
        committed_page_count: usize,
    },
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
        let end = config.base.checked_add(config.len_bytes);
        if config.base == 0
            || !config.base.is_multiple_of(PAGE_SIZE)
            || config.len_bytes == 0
            || !config.len_bytes.is_multiple_of(PAGE_SIZE)
            || end.is_none()
        {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let root_node = VmarNode {
            base: config.base,
            len: config.len_bytes,
            flags: VmarFlags::root(),
            parent: None,
            children: GapTree::new(config.base, config.len_bytes),
        };
        let root = RegionId {
            index: 0,
            generation: 0,
        };
        let tree = Tree {
            slots: alloc::vec![Slot {
                generation: 0,
                node: Some(root_node)
            }],
            // Capacity for the root's index: see `Tree` (freeing never allocates).
            free: Vec::with_capacity(1),
            root,
            rng,
            next_uid: 0,
            max_regions: usize::MAX,
            may_grow: always,
            budget: None,
            charged: 0,
        };
        Ok(Arc::new_cyclic(|weak| AddressSpace {
            id: NEXT_ASPACE_ID.fetch_add(1, Ordering::Relaxed),
            self_ref: weak.clone(),
            config,
            tree: Mutex::new(tree),
            mmu: Mutex::new(mmu),
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
            self.config.len_bytes,
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

    pub(crate) fn backref_key(&self, vmo_offset: u64, uid: u64) -> BackRefKey {
        BackRefKey {
            vmo_offset,
            aspace: self.id,
            uid,
        }
    }

    fn backref(&self, base: usize, len: usize) -> MappingRef {
        MappingRef {
            aspace: self.self_ref.clone(),
            base,
            len_bytes: len,
        }
    }

    /// Records `m` (a mapping new to the tree, or one whose window start moved) as mapping
    /// `[base, base + len)`, using the slot reserved for it in `slots`.
    pub(crate) fn backref_add(&self, slots: &mut Slots, m: &VmMapping, base: usize, len: usize) {
        slots.take(&m.vmo);
        let key = self.backref_key(m.vmo_offset, m.uid);
        if m.vmo
            .lock()
            .mappings
            .insert(key, self.backref(base, len))
            .is_err()
        {
            apply_failed("back-reference insert");
        }
    }

    /// Updates the back-reference of `m` (which exists) to `[base, base + len)`.
    pub(crate) fn backref_update(&self, m: &VmMapping, base: usize, len: usize) {
        let key = self.backref_key(m.vmo_offset, m.uid);
        // An existing key is updated in place: no slot is needed, the insert cannot fail.
        if m.vmo
            .lock()
            .mappings
            .insert(key, self.backref(base, len))
            .is_err()
        {
            apply_failed("back-reference update");
        }
    }

    /// Drops the back-reference of `m` at its current VMO window start.
    pub(crate) fn backref_remove(&self, m: &VmMapping) {
        let key = self.backref_key(m.vmo_offset, m.uid);
        m.vmo.lock().mappings.remove(key);
    }

    /// `left` (at `base`, now `left_len` long) was split, `right` (at `right_base`, `right_len`
    /// long) is its new right part: one VMO lock for both, the new part recorded before the old
    /// one shrinks, so the page-table entries are covered at every moment.
    pub(crate) fn backref_split(
        &self,
        slots: &mut Slots,
        left: (&VmMapping, usize, usize),
        right: (&VmMapping, usize, usize),
    ) {
        slots.take(&right.0.vmo);
        let mut inner = left.0.vmo.lock();
        let key = self.backref_key(right.0.vmo_offset, right.0.uid);
        if inner
            .mappings
            .insert(key, self.backref(right.1, right.2))
            .is_err()
        {
            apply_failed("back-reference insert");
        }
        let key = self.backref_key(left.0.vmo_offset, left.0.uid);
        if inner
            .mappings
            .insert(key, self.backref(left.1, left.2))
            .is_err()
        {
            apply_failed("back-reference update");
        }
    }

    /// `left` (at `base`) grew to `len` by absorbing `right`: one VMO lock, the grown window
    /// recorded before the absorbed one goes.
    pub(crate) fn backref_merge(
        &self,
        left: &VmMapping,
        base: usize,
        len: usize,
        right: &VmMapping,
    ) {
        let mut inner = left.vmo.lock();
        let key = self.backref_key(left.vmo_offset, left.uid);
        if inner.mappings.insert(key, self.backref(base, len)).is_err() {
            apply_failed("back-reference update");
        }
        inner
            .mappings
            .remove(self.backref_key(right.vmo_offset, right.uid));
    }

    /// `m` left the tree after its page-table entries were unmapped and flushed: drops its
    /// back-reference, then `m` itself (which may free its VMO and frames).
    pub(crate) fn drop_mapping(&self, m: VmMapping, batch: &mut Batch) {
        self.backref_remove(&m);
        batch.removed += 1;
        drop(m);
    }

    /// Removes the page-table entries of `[vaddr, vaddr + len)` (page-aligned) and flushes them
    /// now, before anything that mapped them is dropped.
    pub(crate) fn unmap_ptes_now(&self, vaddr: usize, len: usize) {
        let mut mmu = self.mmu.lock();
        let flush = mmu.unmap(vaddr, len / PAGE_SIZE);
        mmu.flush(flush);
    }

    /// Changes the page-table entries of `[vaddr, vaddr + len)` to `perms` (removing them when
    /// `perms` is empty: no architecture can express a present page without read access).
    pub(crate) fn protect_ptes(
        &self,
        batch: &mut Batch,
        vaddr: usize,
        len: usize,
        perms: MmuFlags,
    ) {
        let flush = if perms.perms().is_empty() {
            self.mmu.lock().unmap(vaddr, len / PAGE_SIZE)
        } else {
            self.mmu
                .lock()
                .protect(vaddr, len / PAGE_SIZE, self.pte_flags(perms))
        };
        batch.add_flush(flush);
    }

    /// Called by a VMO (under its lock) when pages leave it: unmap and flush right away.
    pub(crate) fn unmap_pages_for_vmo(&self, vaddr: usize, page_count: usize) {
        let mut mmu = self.mmu.lock();
        let flush = mmu.unmap(vaddr, page_count);
        mmu.flush(flush);
    }

    /// Installs page-table entries for the committed pages of `m` inside `[start, end)` (a
    /// sub-range of the mapping `[base, base + len)`), skipping pages already mapped. Holds the
    /// VMO lock while mapping so a concurrent decommit cannot free a frame in between.
    /// `ERR_NO_MEMORY` when a page-table page cannot be allocated (entries made so far stay).
    pub(crate) fn map_committed(
        &self,
        m: &VmMapping,
        base: usize,
        start: usize,
        end: usize,
    ) -> ZxResult {
        if m.perms.perms().is_empty() || start >= end {
            return Ok(());
        }
        let first_off = m.vmo_offset + (start - base) as u64;
        let end_off = m.vmo_offset + (end - base) as u64;
        let page = PAGE_SIZE as u64;
        let inner = m.vmo.lock();
        let flags = self.pte_flags(m.perms);
        let mut mmu = self.mmu.lock();
        let mut flush = TlbFlush::none();
        let mut result = Ok(());
        for (&index, &frame) in inner.pages.range(first_off / page..end_off.div_ceil(page)) {
            let vaddr = base + (index * page - m.vmo_offset) as usize;
            if mmu.query(vaddr).is_some() {
                continue;
            }
            match mmu.map(vaddr, frame, flags) {
                Ok(f) => flush = flush.merge(f),
                Err(status) => {
                    result = Err(status);
                    break;
                }
            }
        }
        mmu.flush(flush);
        result
    }

    /// Resolves a page fault at `vaddr`. `access` holds the kind of access (READ, WRITE or
    /// EXECUTE; none means READ) and USER for a user-mode access.
    ///
    /// Statuses (Zircon's): `ERR_NOT_FOUND` no mapping contains `vaddr`; `ERR_ACCESS_DENIED`
    /// the mapping's protection does not allow the access (or a user access to a kernel space);
    /// `ERR_OUT_OF_RANGE` the page lies beyond the end of the VMO; `ERR_NO_MEMORY` no frame or
    /// page-table page was available. On success the page is committed (zero-filled if new) and
    /// mapped with the mapping's protection. Every read fault commits a page: there is no shared
    /// zero page (a simplification; Zircon maps its zero page read-only).
    ///
    /// The committed pages that follow the faulting one in its aligned window of
    /// [`FAULT_AROUND_PAGES`] are mapped too, up to the first that is not committed (nothing is
    /// committed for them). ZIRCON: `VmMapping::PageFaultLockedObject` maps up to
    /// `kPageFaultMaxOptimisticPages` (16) pages that already exist, from the faulting page on,
    /// within its page table; Linux's fault-around maps a 64 KiB window of cached pages.
    pub fn fault(&self, vaddr: usize, access: MmuFlags) -> ZxResult {
        let tree = self.tree.lock();
        if access.contains(MmuFlags::USER) && !self.config.user {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let page_vaddr = vaddr - vaddr % PAGE_SIZE;
        let (_, base, len, m) = tree
            .find_mapping(tree.root, page_vaddr)
            .ok_or(Status::ERR_NOT_FOUND)?;
        let mut need = access.perms();
        if need.is_empty() {
            need = MmuFlags::READ;
        }
        if !m.perms.contains(need) {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        // vmo_offset + len was checked not to overflow when the mapping was made.
        let index = (m.vmo_offset + (page_vaddr - base) as u64) / PAGE_SIZE as u64;
        let mut inner = m.vmo.lock();
        let frame = m.vmo.commit_page_locked(&mut inner, index)?;
        let mut mmu = self.mmu.lock();
        let mut flush = TlbFlush::none();
        if let Some((existing, _)) = mmu.query(page_vaddr) {
            if existing == frame {
                return Ok(()); // Another CPU resolved it first.
            }
            flush = mmu.unmap(page_vaddr, 1);
        }
        let flags = self.pte_flags(m.perms);
        let result = mmu.map(page_vaddr, frame, flags);
        let result =
            result.map(|f| flush = core::mem::replace(&mut flush, TlbFlush::none()).merge(f));
        if result.is_ok() {
            // Fault-around: the committed pages that follow, up to the end of the aligned
            // window of FAULT_AROUND_PAGES (so within the faulting page's page table), the
            // mapping and the VMO, stopping at the first page not committed. Nothing is
            // committed for them.
            let window_end = (page_vaddr / FAULT_AROUND_SIZE + 1) * FAULT_AROUND_SIZE;
            let end = window_end.min(base + len);
            let last = index + ((end - page_vaddr) / PAGE_SIZE) as u64;
            let committed = inner.pages.range(index + 1..last.min(inner.page_count));
            for (next, (&i, &f)) in (index + 1..).zip(committed) {
                if i != next {
                    break;
                }
                let vaddr = page_vaddr + (i - index) as usize * PAGE_SIZE;
                if mmu.query(vaddr).is_some() {
                    continue;
                }
                match mmu.map(vaddr, f, flags) {
                    Ok(f) => flush = core::mem::replace(&mut flush, TlbFlush::none()).merge(f),
                    Err(_) => break,
                }
            }
        }
        mmu.flush(flush);
        result
    }

    /// Lists the VMAR `from` and everything below it, in address order (parents first), or
    /// `None` when `from` is destroyed. O(n) plus the committed-page counts.
    pub(crate) fn walk_from(&self, from: RegionId) -> Option<Vec<RegionInfo>> {
        let tree = self.tree.lock();
        tree.node(from)?;
        let mut cursor = WalkCursor::new();
        let entries = Self::walk_step_locked(&tree, from, &mut cursor, usize::MAX, false);
        Some(entries.into_iter().map(|(info, _)| info).collect())
    }

    /// The next at most `max` entries of the walk of `from` that `cursor` is at (the first
    /// step starts it), without the committed-page counts (left 0): beside each entry the
    /// mapped VMO (`None` for a VMAR), so the caller counts with [`Vmo::committed_pages_in`]
    /// after the tree lock is released. `None` when `from` is destroyed before the first step.
    /// O(log n + max) under the tree lock (times the nesting depth at a resume).
    ///
    /// Between two steps the tree may change: each entry is exact when taken, and the walk goes
    /// on after the last entry it returned (a VMAR destroyed meanwhile is skipped with what is
    /// below it; a region created behind the cursor is not seen), so a walk is not a snapshot.
    pub(crate) fn walk_step(
        &self,
        from: RegionId,
        cursor: &mut WalkCursor,
        max: usize,
    ) -> Option<Vec<(RegionInfo, Option<Arc<Vmo>>)>> {
        let tree = self.tree.lock();
        if !cursor.started {
            tree.node(from)?;
        }
        Some(Self::walk_step_locked(&tree, from, cursor, max, true))
    }

    /// The pre-order walk, resumed at `cursor`, up to `max` entries; with `uncounted`, counts
    /// are left 0 and each entry's VMO (or `None`) is returned beside it instead.
    fn walk_step_locked(
        tree: &Tree,
        from: RegionId,
        cursor: &mut WalkCursor,
        max: usize,
        uncounted: bool,
    ) -> Vec<(RegionInfo, Option<Arc<Vmo>>)> {
        // Iterative pre-order walk (no recursion, whatever the nesting depth): the cursor is a
        // stack of (vmar, depth, address to resume its children at).
        let mut out = Vec::new();
        if !cursor.started {
            cursor.started = true;
            if let Some(node) = tree.node(from) {
                out.push((
                    RegionInfo::Vmar {
                        depth: 0,
                        base: node.base,
                        len_bytes: node.len,
                        can_map: node.flags.can_map,
                        can_map_specific: node.flags.can_map_specific,
                        compact: node.flags.compact,
                    },
                    None,
                ));
                cursor.stack.push((from, 0, node.base));
            }
        }
        while out.len() < max {
            let Some((id, depth, resume)) = cursor.stack.pop() else {
                break;
            };
            let Some(node) = tree.node(id) else { continue };
            for (base, len, child) in node.children.overlapping(resume, node.end()) {
                if base < resume {
                    continue;
                }
                if out.len() >= max {
                    cursor.stack.push((id, depth, base));
                    break;
                }
                match child {
                    Child::Mapping(m) => {
                        let page = PAGE_SIZE as u64;
                        let first = m.vmo_offset / page;
                        let end = first + (len / PAGE_SIZE) as u64;
                        let (committed_page_count, vmo) = if uncounted {
                            (0, Some(m.vmo.clone()))
                        } else {
                            (m.vmo.committed_pages_in(first, end), None)
                        };
                        out.push((
                            RegionInfo::Mapping {
                                depth: depth + 1,
                                base,
                                len_bytes: len,
                                perms: m.perms,
                                max_perms: m.max_perms,
                                vmo_id: m.vmo.id(),
                                vmo_offset: m.vmo_offset,
                                committed_page_count,
                            },
                            vmo,
                        ));
                    }
                    Child::Vmar(c) => {
                        let Some(sub) = tree.node(*c) else { continue };
                        out.push((
                            RegionInfo::Vmar {
                                depth: depth + 1,
                                base: sub.base,
                                len_bytes: sub.len,
                                can_map: sub.flags.can_map,
                                can_map_specific: sub.flags.can_map_specific,
                                compact: sub.flags.compact,
                            },
                            None,
                        ));
                        cursor.stack.push((id, depth, base + len));
                        cursor.stack.push((*c, depth + 1, sub.base));
                        break;
                    }
                }
            }
        }
        out
    }

    /// Lists the whole tree from the root VMAR (see [`RegionInfo`]).
    pub fn walk(&self) -> Vec<RegionInfo> {
        let tree = self.tree.lock();
        let mut cursor = WalkCursor::new();
        Self::walk_step_locked(&tree, tree.root, &mut cursor, usize::MAX, false)
            .into_iter()
            .map(|(info, _)| info)
            .collect()
    }

    /// Prints the layout, one line per VMAR or mapping, indented by depth.
    pub fn dump(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        for info in self.walk() {
            match info {
                RegionInfo::Vmar {
                    depth,
                    base,
                    len_bytes,
                    can_map,
                    can_map_specific,
                    compact,
                } => {
                    writeln!(
                        out,
                        "{:indent$}vmar    [{:#014x}, {:#014x}) {:>8} KiB can_map {:?}{}{}",
                        "",
                        base,
                        base + len_bytes,
                        len_bytes / 1024,
                        can_map.perms(),
                        if can_map_specific { " specific" } else { "" },
                        if compact { " compact" } else { "" },
                        indent = depth * 2
                    )?;
                }
                RegionInfo::Mapping {
                    depth,
                    base,
                    len_bytes,
                    perms,
                    max_perms,
                    vmo_id,
                    vmo_offset,
                    committed_page_count,
                } => {
                    writeln!(
                        out,
                        "{:indent$}mapping [{:#014x}, {:#014x}) {:>8} KiB {:?} (max {:?}) vmo {} @ {:#x}, {} committed",
                        "",
                        base,
                        base + len_bytes,
                        len_bytes / 1024,
                        perms.perms(),
                        max_perms.perms(),
                        vmo_id,
                        vmo_offset,
                        committed_page_count,
                        indent = depth * 2
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Checks the whole structure (for tests and property tests): every gap tree's invariants;
    /// children inside their parent and pointing back to it; mappings with `perms <= max_perms`
    /// and an in-range VMO window; one VMO back-reference per mapping with the right window; and
    /// page tables equal to what the mappings say: every present entry lies inside a mapping,
    /// points at the frame its VMO has committed for that page and carries exactly the
    /// mapping's protection (which is not empty), and no entry exists outside the mappings;
    /// every live arena node reachable from the root; mapping uids unique; ceilings within the
    /// parent's CAN_MAP; no stale back-references. O(n log n + present page-table entries +
    /// page-table pages + back-references of the mapped VMOs).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_invariants_bounded(usize::MAX)
    }

    /// [`Self::check_invariants`], except that the O(m) back-reference recounts of the mapped
    /// VMOs (m = a VMO's mappings in every address space) stop once `max_backrefs` back-references
    /// were examined, so the cost stays O(n log n + present entries + max_backrefs) however
    /// widely the VMOs are shared.
    pub fn check_invariants_bounded(&self, max_backrefs: usize) -> Result<(), String> {
        let tree = self.tree.lock();
        let mut stack = alloc::vec![tree.root];
        let mut mapping_count = 0usize;
        let mut vmar_count = 0usize;
        let mut uids = alloc::collections::BTreeSet::new();
        // Mappings per VMO (by address), to compare with each VMO's back-references.
        let mut per_vmo: alloc::collections::BTreeMap<usize, (Arc<Vmo>, usize)> =
            alloc::collections::BTreeMap::new();
        // Present page-table entries found inside mappings.
        let mut inside = 0usize;
        while let Some(id) = stack.pop() {
            vmar_count += 1;
            let node = tree
                .node(id)
                .ok_or_else(|| format!("dangling region id {id:?}"))?;
            node.children.check_invariants()?;
            if node.children.range_base() != node.base || node.children.range_end() != node.end() {
                return Err(format!("vmar {:#x}: gap tree span differs", node.base));
            }
            for (base, len, child) in node.children.iter() {
                match child {
                    Child::Vmar(c) => {
                        let sub = tree.node(*c).ok_or_else(|| format!("stale child {c:?}"))?;
                        if sub.base != base || sub.len != len || sub.parent != Some(id) {
                            return Err(format!("vmar {base:#x}: node disagrees with parent"));
                        }
                        if !node.flags.can_map.contains(sub.flags.can_map) {
                            return Err(format!("vmar {base:#x}: exceeds parent's CAN_MAP"));
                        }
                        stack.push(*c);
                    }
                    Child::Mapping(m) => {
                        mapping_count += 1;
                        if !uids.insert(m.uid) {
                            return Err(format!("mapping {base:#x}: duplicate uid {}", m.uid));
                        }
                        if !node.flags.can_map.contains(m.max_perms) {
                            return Err(format!("mapping {base:#x}: ceiling above CAN_MAP"));
                        }
                        per_vmo
                            .entry(Arc::as_ptr(&m.vmo) as *const u8 as usize)
                            .or_insert_with(|| (m.vmo.clone(), 0))
                            .1 += 1;
                        inside += self.check_mapping(base, len, m)?;
                    }
                }
            }
        }
        // No entry outside the mappings: every present entry was met inside one.
        {
            let mmu = self.mmu.lock();
            let mut total = 0usize;
            let mut stray = None;
            let pages = self.config.len_bytes / PAGE_SIZE;
            mmu.for_each_mapped(self.config.base, pages, &mut |va, _, _| {
                total += 1;
                if stray.is_none() && tree.find_mapping(tree.root, va).is_none() {
                    stray = Some(va);
                }
            });
            if total != inside {
                return Err(format!(
                    "{total} present page-table entries, {inside} inside mappings (first outside: {stray:#x?})"
                ));
            }
        }
        let live = tree.slots.iter().filter(|s| s.node.is_some()).count();
        if live != vmar_count {
            return Err(format!(
                "{live} live VMAR nodes but {vmar_count} reachable from the root"
            ));
        }
        if tree.next_uid < uids.last().copied().unwrap_or(0) {
            return Err("uid counter behind a live uid".into());
        }
        // No stale back-references: each VMO names exactly the mappings that map it here.
        let mut total = 0usize;
        let mut budget = max_backrefs;
        for (vmo, count) in per_vmo.values() {
            let inner = vmo.lock();
            let Some(left) = budget.checked_sub(inner.mappings.len()) else {
                total += count;
                continue;
            };
            budget = left;
            inner.mappings.check()?;
            if inner.mappings.reserved() != 0 {
                return Err(format!(
                    "vmo {}: {} back-reference slots still reserved after an operation",
                    vmo.id(),
                    inner.mappings.reserved()
                ));
            }
            let refs = inner.mappings.count_for(self.id);
            drop(inner);
            if refs != *count {
                return Err(format!(
                    "vmo {}: {refs} back-references for {count} mappings",
                    vmo.id()
                ));
            }
            total += count;
        }
        debug_assert_eq!(total, mapping_count);
        Ok(())
    }

    /// Checks one mapping and its page-table entries; returns how many entries are present in
    /// its range.
    fn check_mapping(&self, base: usize, len: usize, m: &VmMapping) -> Result<usize, String> {
        if !m.max_perms.contains(m.perms) {
            return Err(format!("mapping {base:#x}: perms above max"));
        }
        if !len.is_multiple_of(PAGE_SIZE) || !m.vmo_offset.is_multiple_of(PAGE_SIZE as u64) {
            return Err(format!("mapping {base:#x}: unaligned"));
        }
        m.vmo_offset
            .checked_add(len as u64)
            .ok_or_else(|| format!("mapping {base:#x}: vmo window overflows"))?;
        let inner = m.vmo.lock();
        match inner.mappings.get(self.backref_key(m.vmo_offset, m.uid)) {
            Some(r) if r.base == base && r.len_bytes == len => {}
            _ => {
                return Err(format!(
                    "mapping {base:#x}: back-reference missing or stale"
                ))
            }
        }
        let page = PAGE_SIZE as u64;
        let mmu = self.mmu.lock();
        let want = self.pte_flags(m.perms);
        let mut present = 0usize;
        let mut bad = None;
        mmu.for_each_mapped(base, len / PAGE_SIZE, &mut |vaddr, paddr, flags| {
            present += 1;
            let index = (m.vmo_offset + (vaddr - base) as u64) / page;
            let frame = inner.pages.get(&index).copied();
            if bad.is_none() && (frame != Some(paddr) || flags != want || m.perms.is_empty()) {
                bad = Some(format!(
                    "pte {vaddr:#x}: {paddr:?} {flags:?}, but the mapping says {frame:?} {want:?}"
                ));
            }
        });
        match bad {
            Some(e) => Err(e),
            None => Ok(present),
        }
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        // Every page-table entry goes (and is flushed) first; then each mapping is dropped as it
        // leaves the tree. Nothing is collected: teardown allocates nothing.
        self.unmap_ptes_now(self.config.base, self.config.len_bytes);
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
