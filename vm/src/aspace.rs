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
//!   either a child VMAR's [`RegionId`] or a [`VmMapping`] stored inline. The *MMU lock* protects
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
pub(crate) struct Tree {
    slots: Vec<Slot>,
    free: Vec<u32>,
    pub(crate) root: RegionId,
    pub(crate) rng: Box<dyn RandomSource>,
    next_uid: u64,
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

    pub(crate) fn alloc_node(&mut self, node: VmarNode) -> RegionId {
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.node = Some(node);
            return RegionId {
                index,
                generation: slot.generation,
            };
        }
        // More than u32::MAX live VMARs cannot fit in memory (each node is far larger than 1 B).
        let index = self.slots.len() as u32;
        self.slots.push(Slot {
            generation: 0,
            node: Some(node),
        });
        RegionId {
            index,
            generation: 0,
        }
    }

    /// Takes the node out of the arena; `id` (and every copy of it) is stale from now on.
    pub(crate) fn free_node(&mut self, id: RegionId) -> Option<VmarNode> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let node = slot.node.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        Some(node)
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

    /// Every mapping at any depth below `from` that intersects `[start, end)`, in address order:
    /// `(parent, base, len)`. Explicit stack: no recursion, whatever the nesting depth.
    pub(crate) fn mappings_in(
        &self,
        from: RegionId,
        start: usize,
        end: usize,
    ) -> Vec<(RegionId, usize, usize)> {
        let mut out = Vec::new();
        let mut stack: Vec<(RegionId, usize, usize, bool)> = Vec::new();
        let push_children = |stack: &mut Vec<_>, id: RegionId| {
            if let Some(node) = self.node(id) {
                let mut kids: Vec<(RegionId, usize, usize, bool)> = node
                    .children
                    .overlapping(start, end)
                    .map(|(b, l, c)| match c {
                        Child::Vmar(child) => (*child, b, l, true),
                        Child::Mapping(_) => (id, b, l, false),
                    })
                    .collect();
                kids.reverse();
                stack.extend(kids);
            }
        };
        push_children(&mut stack, from);
        while let Some((id, base, len, is_vmar)) = stack.pop() {
            if is_vmar {
                push_children(&mut stack, id);
            } else {
                out.push((id, base, len));
            }
        }
        out
    }
}

/// Changes to VMO back-references, applied after the TLB flush of the operation. A back-reference
/// is named by the mapping's (VMO window start, uid), so a mapping whose window start changes
/// records a `Remove` under the old start before the `Upsert` under the new one.
pub(crate) enum BackrefOp {
    Upsert {
        vmo: Arc<Vmo>,
        uid: u64,
        base: usize,
        len: usize,
        vmo_offset: u64,
    },
    Remove {
        vmo: Arc<Vmo>,
        uid: u64,
        vmo_offset: u64,
    },
}

/// What one operation accumulates while it edits the tree: one merged TLB flush, the VMO
/// back-reference updates, and the mappings it removed (dropped last: that may free VMOs).
///
/// Order in [`AddressSpace::finish`]: flush, then back-references, then drops. So a frame is never
/// returned to the allocator while a stale TLB entry may still reach it, and a VMO back-reference
/// always covers at least the page-table entries that exist for it.
pub(crate) struct Batch {
    flush: TlbFlush,
    pub(crate) backrefs: Vec<BackrefOp>,
    pub(crate) dead: Vec<VmMapping>,
    /// Mappings this operation created (put in a tree); `dead` are those it removed.
    pub(crate) created: usize,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            flush: TlbFlush::none(),
            backrefs: Vec::new(),
            dead: Vec::new(),
            created: 0,
        }
    }

    pub(crate) fn add_flush(&mut self, flush: TlbFlush) {
        let prev = core::mem::replace(&mut self.flush, TlbFlush::none());
        self.flush = prev.merge(flush);
    }

    /// Records `m` (at its current VMO window start) as mapping `[base, base + len)`.
    pub(crate) fn upsert(&mut self, m: &VmMapping, base: usize, len: usize) {
        self.backrefs.push(BackrefOp::Upsert {
            vmo: m.vmo.clone(),
            uid: m.uid,
            base,
            len,
            vmo_offset: m.vmo_offset,
        });
    }

    /// Drops the back-reference of `m` at its current VMO window start (call before moving the
    /// window start; `upsert` afterwards records the new one).
    pub(crate) fn forget(&mut self, m: &VmMapping) {
        self.backrefs.push(BackrefOp::Remove {
            vmo: m.vmo.clone(),
            uid: m.uid,
            vmo_offset: m.vmo_offset,
        });
    }

    /// `m` left the tree: drops its back-reference, and `m` itself after the flush.
    pub(crate) fn remove(&mut self, m: VmMapping) {
        self.forget(&m);
        self.dead.push(m);
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
            free: Vec::new(),
            root,
            rng,
            next_uid: 0,
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
    /// operations: each operation's [`Batch`] adds the mappings it created and subtracts those it
    /// removed when it finishes.
    pub fn mapping_count(&self) -> usize {
        self.mapping_count.load(Ordering::Relaxed)
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

    /// Flushes, applies back-reference changes, then drops the removed mappings.
    pub(crate) fn finish(&self, batch: Batch) {
        let Batch {
            flush,
            backrefs,
            dead,
            created,
        } = batch;
        // Both sides of the count change together: `created` never lags behind a removal of
        // the same mapping (a mapping is created and removed in one batch at most).
        self.mapping_count.fetch_add(created, Ordering::Relaxed);
        self.mapping_count.fetch_sub(dead.len(), Ordering::Relaxed);
        self.mmu.lock().flush(flush);
        for op in backrefs {
            match op {
                BackrefOp::Upsert {
                    vmo,
                    uid,
                    base,
                    len,
                    vmo_offset,
                } => {
                    let r = MappingRef {
                        aspace: self.self_ref.clone(),
                        base,
                        len_bytes: len,
                    };
                    vmo.lock()
                        .mappings
                        .insert(self.backref_key(vmo_offset, uid), r);
                }
                BackrefOp::Remove {
                    vmo,
                    uid,
                    vmo_offset,
                } => {
                    vmo.lock()
                        .mappings
                        .remove(self.backref_key(vmo_offset, uid));
                }
            }
        }
        drop(dead);
    }

    fn backref_key(&self, vmo_offset: u64, uid: u64) -> BackRefKey {
        BackRefKey {
            vmo_offset,
            aspace: self.id,
            uid,
        }
    }

    /// Removes the page-table entries of `[vaddr, vaddr + len)` (page-aligned), adding the flush
    /// to `batch`.
    pub(crate) fn unmap_ptes(&self, batch: &mut Batch, vaddr: usize, len: usize) {
        let flush = self.mmu.lock().unmap(vaddr, len / PAGE_SIZE);
        batch.add_flush(flush);
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
    pub fn fault(&self, vaddr: usize, access: MmuFlags) -> ZxResult {
        let tree = self.tree.lock();
        if access.contains(MmuFlags::USER) && !self.config.user {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let page_vaddr = vaddr - vaddr % PAGE_SIZE;
        let (_, base, _, m) = tree
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
        let result = mmu.map(page_vaddr, frame, self.pte_flags(m.perms));
        let result =
            result.map(|f| flush = core::mem::replace(&mut flush, TlbFlush::none()).merge(f));
        mmu.flush(flush);
        result
    }

    /// Lists the VMAR `from` and everything below it, in address order (parents first), or
    /// `None` when `from` is destroyed. O(n) plus the committed-page counts.
    pub(crate) fn walk_from(&self, from: RegionId) -> Option<Vec<RegionInfo>> {
        let tree = self.tree.lock();
        tree.node(from)?;
        Some(Self::walk_locked(&tree, from, 0, None))
    }

    /// [`Self::walk_from`] without the committed-page counts (left 0): beside each entry the
    /// mapped VMO (`None` for a VMAR), so the caller counts with [`Vmo::committed_pages_in`]
    /// after the tree lock is released, with preemption points between mappings. O(n) under the
    /// lock.
    pub(crate) fn walk_from_uncounted(
        &self,
        from: RegionId,
    ) -> Option<Vec<(RegionInfo, Option<Arc<Vmo>>)>> {
        let tree = self.tree.lock();
        tree.node(from)?;
        let mut vmos = Vec::new();
        let infos = Self::walk_locked(&tree, from, 0, Some(&mut vmos));
        drop(tree);
        Some(infos.into_iter().zip(vmos).collect())
    }

    /// The pre-order walk; with `vmos`, counts are left 0 and each entry's VMO (or `None`) is
    /// pushed there instead.
    fn walk_locked(
        tree: &Tree,
        from: RegionId,
        depth0: usize,
        mut vmos: Option<&mut Vec<Option<Arc<Vmo>>>>,
    ) -> Vec<RegionInfo> {
        // Iterative pre-order walk (no recursion, whatever the nesting depth): a stack of
        // (vmar, depth, address to resume its children at) cursors.
        let mut out = Vec::new();
        let mut cursors: Vec<(RegionId, usize, usize)> = Vec::new(); // (vmar, depth, resume addr)
        if let Some(node) = tree.node(from) {
            if let Some(v) = vmos.as_deref_mut() {
                v.push(None);
            }
            out.push(RegionInfo::Vmar {
                depth: depth0,
                base: node.base,
                len_bytes: node.len,
                can_map: node.flags.can_map,
                can_map_specific: node.flags.can_map_specific,
                compact: node.flags.compact,
            });
            cursors.push((from, depth0, node.base));
        }
        while let Some((id, depth, resume)) = cursors.pop() {
            let Some(node) = tree.node(id) else { continue };
            for (base, len, child) in node.children.overlapping(resume, node.end()) {
                if base < resume {
                    continue;
                }
                match child {
                    Child::Mapping(m) => {
                        let page = PAGE_SIZE as u64;
                        let first = m.vmo_offset / page;
                        let end = first + (len / PAGE_SIZE) as u64;
                        let committed_page_count = match vmos.as_deref_mut() {
                            Some(v) => {
                                v.push(Some(m.vmo.clone()));
                                0
                            }
                            None => m.vmo.committed_pages_in(first, end),
                        };
                        out.push(RegionInfo::Mapping {
                            depth: depth + 1,
                            base,
                            len_bytes: len,
                            perms: m.perms,
                            max_perms: m.max_perms,
                            vmo_id: m.vmo.id(),
                            vmo_offset: m.vmo_offset,
                            committed_page_count,
                        });
                    }
                    Child::Vmar(c) => {
                        let Some(sub) = tree.node(*c) else { continue };
                        if let Some(v) = vmos.as_deref_mut() {
                            v.push(None);
                        }
                        out.push(RegionInfo::Vmar {
                            depth: depth + 1,
                            base: sub.base,
                            len_bytes: sub.len,
                            can_map: sub.flags.can_map,
                            can_map_specific: sub.flags.can_map_specific,
                            compact: sub.flags.compact,
                        });
                        cursors.push((id, depth, base + len));
                        cursors.push((*c, depth + 1, sub.base));
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
        Self::walk_locked(&tree, tree.root, 0, None)
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
        // Remove every mapping: page-table entries first, then the VMO back-references.
        let mut batch = Batch::new();
        {
            let tree = self.tree.get_mut();
            let root = tree.root;
            let mut stack = alloc::vec![root];
            while let Some(id) = stack.pop() {
                let Some(node) = tree.free_node(id) else {
                    continue;
                };
                let mut children = node.children;
                for base in children.overlapping_bases(node.base, node.base + node.len) {
                    match children.remove(base) {
                        Some((_, Child::Vmar(c))) => stack.push(c),
                        Some((_, Child::Mapping(m))) => batch.remove(m),
                        None => {}
                    }
                }
            }
        }
        let flush = self
            .mmu
            .get_mut()
            .unmap(self.config.base, self.config.len_bytes / PAGE_SIZE);
        batch.add_flush(flush);
        self.finish(batch);
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
