//! [`GapTree::check_invariants`]'s walk: recomputes every summary and count from the entries and
//! compares them with what is stored (for tests and debug checks; O(n)).

use super::*;

impl<V> GapTree<V> {
    // ---------------------------------------------------------------------------------------------
    // Invariant checking.

    /// Checks the subtree of node `n` (`levels` high, 1 = leaf), visiting entries in order;
    /// returns its summary as recomputed from scratch (never trusting stored values).
    pub(super) fn check_subtree(
        &self,
        n: u32,
        levels: usize,
        is_root: bool,
        seen_leaf: &mut [bool],
        seen_internal: &mut [bool],
        walk: &mut CheckWalk,
    ) -> Result<Summary, String> {
        if levels == 1 {
            self.check_leaf(n, is_root, seen_leaf, walk)
        } else {
            self.check_internal(n, levels, is_root, seen_leaf, seen_internal, walk)
        }
    }

    /// [`Self::check_subtree`] for leaf `n`: fill, slot permutation, fillers, and each entry
    /// non-empty, inside the span and after the previous one.
    fn check_leaf(
        &self,
        n: u32,
        is_root: bool,
        seen_leaf: &mut [bool],
        walk: &mut CheckWalk,
    ) -> Result<Summary, String> {
        let leaf = match self.leaves.get(n as usize) {
            None => return Err(format!("link to leaf {n} outside the arena")),
            Some(leaf) if leaf.vacancy().is_some() => {
                return Err(format!("link to vacant leaf {n}"))
            }
            Some(leaf) => leaf,
        };
        if core::mem::replace(&mut seen_leaf[n as usize], true) {
            return Err(format!("leaf {n} reachable twice"));
        }
        let lowest = if is_root { 1 } else { LEAF_MIN };
        if leaf.len < lowest || leaf.len > LEAF_CAP {
            return Err(format!("leaf {n} holds {} entries", leaf.len));
        }
        let mut is_slot = [false; LEAF_CAP];
        for &s in &leaf.slot {
            match is_slot.get_mut(usize::from(s)) {
                Some(seen) if !*seen => *seen = true,
                _ => return Err(format!("leaf {n}: slot map is not a permutation")),
            }
        }
        for (i, &s) in leaf.slot.iter().enumerate() {
            if leaf.vals[usize::from(s)].is_some() != (i < leaf.len) {
                return Err(format!("leaf {n}: value slot {s} disagrees with len"));
            }
            if (leaf.bases[i] == FILLER) != (i >= leaf.len)
                || (i >= leaf.len && leaf.ends[i] != FILLER)
            {
                return Err(format!("leaf {n}: key slot {i} disagrees with len"));
            }
        }
        let mut gap = 0;
        for i in 0..leaf.len {
            let (base, end) = (leaf.bases[i], leaf.ends[i]);
            if base >= end {
                return Err(format!(
                    "entry {base:#x} has end {end:#x} (empty or inverted)"
                ));
            }
            if base < self.range_base || end > self.range_end {
                return Err(format!(
                    "entry [{base:#x}, {end:#x}) outside span [{:#x}, {:#x})",
                    self.range_base, self.range_end
                ));
            }
            if let Some(prev_end) = walk.last_end {
                if base < prev_end {
                    return Err(format!(
                        "entry {base:#x} out of order or overlapping previous end \
                         {prev_end:#x}"
                    ));
                }
                if i > 0 {
                    gap = max(gap, base - prev_end);
                }
            }
            walk.last_end = Some(end);
        }
        walk.count += leaf.len;
        walk.leaves_in_order.push(n);
        Ok(Summary {
            min_base: leaf.bases[0],
            max_end: leaf.ends[leaf.len - 1],
            max_gap: gap,
        })
    }

    /// [`Self::check_subtree`] for internal node `n` (`levels` high): fill, fillers, and each
    /// child's stored summary against its subtree checked from scratch. Recursion depth is the
    /// tree height (at most [`MAX_HEIGHT`], which `check_invariants` guards).
    fn check_internal(
        &self,
        n: u32,
        levels: usize,
        is_root: bool,
        seen_leaf: &mut [bool],
        seen_internal: &mut [bool],
        walk: &mut CheckWalk,
    ) -> Result<Summary, String> {
        let node = match self.internals.get(n as usize) {
            None => return Err(format!("link to internal node {n} outside the arena")),
            Some(node) if node.vacancy().is_some() => {
                return Err(format!("link to vacant internal node {n}"))
            }
            Some(node) => node,
        };
        if core::mem::replace(&mut seen_internal[n as usize], true) {
            return Err(format!("internal node {n} reachable twice"));
        }
        let lowest = if is_root { 2 } else { INNER_MIN };
        if node.len < lowest || node.len > INNER_CAP {
            return Err(format!("internal node {n} has {} children", node.len));
        }
        if node.min_base[node.len..].iter().any(|&b| b != FILLER) {
            return Err(format!(
                "internal node {n}: key slot beyond len is not a filler"
            ));
        }
        let mut gap = 0;
        let mut prev: Option<Summary> = None;
        let mut first: Option<Summary> = None;
        for i in 0..node.len {
            let s = self.check_subtree(
                node.child[i],
                levels - 1,
                false,
                seen_leaf,
                seen_internal,
                walk,
            )?;
            if node.child_summary(i) != s {
                return Err(format!(
                    "internal node {n}, child {i}: stored {:x?}, recomputed {s:x?}",
                    node.child_summary(i)
                ));
            }
            gap = max(gap, s.max_gap);
            if let Some(p) = prev {
                gap = max(gap, s.min_base - p.max_end);
            }
            first.get_or_insert(s);
            prev = Some(s);
        }
        let (first, last) = (
            first.unwrap_or(Summary::EMPTY),
            prev.unwrap_or(Summary::EMPTY),
        );
        Ok(Summary {
            min_base: first.min_base,
            max_end: last.max_end,
            max_gap: gap,
        })
    }
}

/// State of the in-order walk of [`GapTree::check_invariants`].
pub(super) struct CheckWalk {
    pub(super) last_end: Option<usize>,
    pub(super) count: usize,
    pub(super) leaves_in_order: Vec<u32>,
}

/// The free list of `arena`: every link a vacant node, no slot twice (which also rules out
/// cycles) and none also reachable from the root; with `seen`, every slot accounted for.
pub(super) fn check_free_list<T: ArenaNode>(
    arena: &[T],
    head: u32,
    seen: &mut [bool],
    what: &str,
) -> Result<(), String> {
    let mut f = head;
    while f != NIL {
        let Some(slot) = arena.get(f as usize) else {
            return Err(format!("{what} free list points outside the arena: {f}"));
        };
        if core::mem::replace(&mut seen[f as usize], true) {
            return Err(format!(
                "{what} slot {f} is on the free list twice or also in the tree"
            ));
        }
        match slot.vacancy() {
            Some(next_free) => f = next_free,
            None => return Err(format!("{what} free list reaches live node {f}")),
        }
    }
    if let Some(lost) = seen.iter().position(|s| !s) {
        return Err(format!(
            "{what} slot {lost} is neither in the tree nor on the free list"
        ));
    }
    Ok(())
}
