//! The region-tree editing primitives the operations share: the cut plan (what an unmap or
//! overwrite adds and needs reserved), splitting and merging mappings, removing a range
//! (`unmap_range`, `cut_mapping`), emptying a subtree in bounded steps and freeing a subtree.
//! Each runs under the tree lock (they take the locked `Tree`), inside an operation's apply
//! phase: nothing here fails for want of memory that was not reserved in the check phase.

use super::*;

/// The CAN_MAP_* permissions of VMAR `id` (none once destroyed).
pub(super) fn node_can_map(tree: &Tree, id: RegionId) -> MmuFlags {
    tree.node(id).map_or(MmuFlags::NONE, |n| n.flags.can_map)
}

/// What cutting `[start, end)` out of a VMAR's direct children does to the number of regions and
/// which reservations it needs: at most one mapping is cut in its middle (a new region, a new
/// back-reference key, a tree insert) or has its head cut off (it moves: a new key and a
/// re-insert); whole children go.
#[derive(Default)]
pub(super) struct CutPlan {
    /// The VMO of the mapping whose middle is cut out.
    middle: Option<Arc<Vmo>>,
    /// The VMO of the mapping whose head is cut off.
    head: Option<Arc<Vmo>>,
    /// Direct children removed whole (at least: a sub-VMAR's contents go too).
    removed: usize,
}

impl CutPlan {
    pub(super) fn new(tree: &Tree, id: RegionId, start: usize, end: usize) -> CutPlan {
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
    pub(super) fn delta(&self) -> isize {
        isize::from(self.middle.is_some()) - self.removed as isize
    }

    /// Tree inserts the cut needs.
    pub(super) fn inserts(&self) -> usize {
        usize::from(self.middle.is_some()) + usize::from(self.head.is_some())
    }

    /// Reserves the back-reference slots of the new keys.
    pub(super) fn reserve(&self, slots: &mut Slots) -> ZxResult {
        for vmo in [&self.middle, &self.head].into_iter().flatten() {
            slots.reserve(vmo)?;
        }
        Ok(())
    }
}

/// The mapping based exactly at `base` in VMAR `parent`.
pub(super) fn mapping_at(tree: &Tree, parent: RegionId, base: usize) -> Option<&VmMapping> {
    match tree.node(parent)?.children.get(base)? {
        (_, Child::Mapping(m)) => Some(m),
        _ => None,
    }
}

/// Splits the mapping of `parent` that strictly contains `addr` into `[base, addr)` and
/// `[addr, end)`, using the tree insert and the back-reference slot reserved for it. No-op when
/// `addr` is a mapping boundary or not inside a mapping.
pub(super) fn split_mapping(
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
        private_copy: m.private_copy,
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
pub(super) fn merge_with_next(
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
pub(super) fn unmap_range(
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
pub(super) fn cut_mapping(
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
            private_copy: m.private_copy,
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
pub(super) fn empty_subtree_step(
    aspace: &AddressSpace,
    tree: &mut Tree,
    id: RegionId,
    max: usize,
    batch: &mut Batch,
) -> usize {
    // One flush for the whole step, before any mapping (and the VMO reference it holds) goes:
    // the step removes exactly the mappings of the subtree below `step_end`.
    if let (Some(node), Some(end)) = (tree.node(id), step_end(tree, id, max)) {
        aspace.unmap_ptes_now(node.base, end - node.base);
    }
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
            Some((base, _, None)) => {
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

/// Where the mappings removed by [`empty_subtree_step`]`(id, max)` end: it visits the subtree in
/// the same order (first child first, a sub-VMAR counted once it would be empty) without changing
/// it, and returns the end of the last mapping the step removes (`None`: it removes none). Every
/// mapping of the subtree below that address is removed by the step. O(`max` + nesting depth)
/// lookups, no recursion, no allocation.
fn step_end(tree: &Tree, id: RegionId, max: usize) -> Option<usize> {
    let mut end = None;
    let mut count = 0;
    let mut cur = id;
    let mut pos = tree.node(id)?.base;
    while count < max {
        let Some(node) = tree.node(cur) else { break };
        let next = node
            .children
            .overlapping(pos, node.end())
            .next()
            .map(|(b, l, c)| match c {
                Child::Vmar(v) => (b, l, Some(*v)),
                Child::Mapping(_) => (b, l, None),
            });
        match next {
            Some((base, _, Some(child))) => {
                cur = child;
                pos = base;
            }
            Some((base, len, None)) => {
                count += 1;
                pos = base + len;
                end = Some(pos);
            }
            None if cur == id => break,
            None => {
                count += 1;
                pos = node.end();
                match node.parent {
                    Some(p) => cur = p,
                    None => break,
                }
            }
        }
    }
    end
}

/// Destroys VMAR `id` and everything below it, removing it from its parent; the page-table
/// entries of its range must be gone already. Walks down through the first child and back up
/// through the parent links: no recursion, no allocation.
pub(super) fn destroy_subtree(
    aspace: &AddressSpace,
    tree: &mut Tree,
    id: RegionId,
    batch: &mut Batch,
) {
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
