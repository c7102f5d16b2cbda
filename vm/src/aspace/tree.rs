//! The region arena behind the tree lock: [`Tree`] (every live VMAR as a [`VmarNode`], addressed
//! by a generation-checked [`RegionId`]), the region admission and budget, and the lookups that
//! descend through sub-VMARs.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::{Status, ZxResult};

use crate::gap_tree::GapTree;
use crate::mapping::VmMapping;
use crate::rng::RandomSource;
use crate::vmar::VmarFlags;

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

pub(super) struct Slot {
    generation: u32,
    pub(super) node: Option<VmarNode>,
}

/// Everything behind the tree lock.
///
/// `free.capacity() >= slots.len()` always holds ([`Tree::reserve_node`] keeps it), so freeing a
/// node (pushing its index on `free`) never allocates.
pub(crate) struct Tree {
    pub(super) slots: Vec<Slot>,
    pub(super) free: Vec<u32>,
    pub(crate) root: RegionId,
    pub(crate) rng: Box<dyn RandomSource>,
    pub(super) next_uid: u64,
    /// Most mappings + VMARs (root included) an operation may leave when it adds some.
    pub(super) max_regions: usize,
    /// Asked before an operation adds regions; false refuses it with `ERR_NO_MEMORY` (the
    /// kernel's low-memory admission).
    pub(super) may_grow: fn() -> bool,
    /// Where the regions are charged (the owning process's account), and how many are.
    pub(super) budget: Option<Arc<dyn RegionBudget>>,
    pub(super) charged: usize,
}

/// Where an address space charges its regions (mappings + VMARs, root included): the kernel
/// charges the account of the process that owns it. The address space charges before an
/// operation adds regions (the operation is refused with `ERR_NO_MEMORY` when the budget says
/// no, with nothing changed) and releases what it no longer holds when an operation ends with
/// fewer (see [`AddressSpace::settle_regions`](super::AddressSpace::settle_regions)) and when it
/// is dropped, so what is charged is what it holds, plus at most what one operation that failed
/// after its admission meant to add, until the next operation or settle.
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
    /// A tree holding only `root_node` (the root VMAR, at index 0), with no region limit and no
    /// budget.
    pub(super) fn new(root_node: VmarNode, rng: Box<dyn RandomSource>) -> Tree {
        Tree {
            slots: alloc::vec![Slot {
                generation: 0,
                node: Some(root_node)
            }],
            // Capacity for the root's index: see `Tree` (freeing never allocates).
            free: Vec::with_capacity(1),
            root: RegionId {
                index: 0,
                generation: 0,
            },
            rng,
            next_uid: 0,
            max_regions: usize::MAX,
            may_grow: always,
            budget: None,
            charged: 0,
        }
    }

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
