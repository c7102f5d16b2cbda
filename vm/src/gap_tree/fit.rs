//! The fit searches of [`GapTree::first_fit`] / [`GapTree::last_fit`]: the lowest or highest
//! aligned gap of a given size in a window, pruned by the per-subtree largest-gap summaries.

use super::*;

impl<V> GapTree<V> {
    // ---------------------------------------------------------------------------------------------
    // Fit search.

    /// Lowest fit among the gaps of the subtree of node `n` (`levels` = its height, 1 for a leaf),
    /// where `prev_end` is the end of the entry just before the subtree (or `range_base`) and
    /// `next_base` the base of the entry just after it (or `range_end`): the gaps considered are
    /// `[prev_end, first base)`, those inside the subtree, and `[last end, next_base)`. The caller
    /// checked that the subtree is worth visiting. Recursion depth is the tree height.
    pub(super) fn first_fit_in(
        &self,
        n: u32,
        levels: usize,
        prev_end: usize,
        next_base: usize,
        q: &FitQuery,
    ) -> Option<usize> {
        if levels == 1 {
            let leaf = self.leaf(n);
            let mut gap_start = prev_end;
            for i in 0..leaf.len {
                if let Some(b) = q.first_in_gap(gap_start, leaf.bases[i]) {
                    return Some(b);
                }
                gap_start = leaf.ends[i];
            }
            return q.first_in_gap(gap_start, next_base);
        }
        let node = self.inner(n);
        for i in 0..node.len {
            let (pe, nb) = node.child_neighbours(i, prev_end, next_base);
            if q.worth_visiting(node.child_summary(i), pe, nb) {
                if let Some(b) = self.first_fit_in(node.child[i], levels - 1, pe, nb, q) {
                    return Some(b);
                }
            }
        }
        None
    }

    /// Mirror image of [`first_fit_in`](Self::first_fit_in): highest gaps first.
    pub(super) fn last_fit_in(
        &self,
        n: u32,
        levels: usize,
        prev_end: usize,
        next_base: usize,
        q: &FitQuery,
    ) -> Option<usize> {
        if levels == 1 {
            let leaf = self.leaf(n);
            let mut gap_end = next_base;
            for i in (0..leaf.len).rev() {
                if let Some(b) = q.last_in_gap(leaf.ends[i], gap_end) {
                    return Some(b);
                }
                gap_end = leaf.bases[i];
            }
            return q.last_in_gap(prev_end, gap_end);
        }
        let node = self.inner(n);
        for i in (0..node.len).rev() {
            let (pe, nb) = node.child_neighbours(i, prev_end, next_base);
            if q.worth_visiting(node.child_summary(i), pe, nb) {
                if let Some(b) = self.last_fit_in(node.child[i], levels - 1, pe, nb, q) {
                    return Some(b);
                }
            }
        }
        None
    }
}

/// A validated fit request: `len >= 1`, `align` a power of two, `lo < hi` clamped to the span.
pub(super) struct FitQuery {
    len: usize,
    align: usize,
    lo: usize,
    hi: usize,
}

impl FitQuery {
    /// Validates and clamps the arguments of `first_fit` / `last_fit`; `None` if nothing can fit.
    pub(super) fn new<V>(
        tree: &GapTree<V>,
        len: usize,
        align: usize,
        lo: usize,
        hi: usize,
    ) -> Option<Self> {
        let align = max(align, 1);
        if len == 0 || !align.is_power_of_two() {
            return None;
        }
        let lo = max(lo, tree.range_base);
        let hi = min(hi, tree.range_end);
        if hi.checked_sub(lo)? < len {
            return None;
        }
        Some(FitQuery { len, align, lo, hi })
    }

    /// Could the gaps of a subtree with summary `s` (bounded by `prev_end` / `next_base`, see
    /// [`GapTree::first_fit_in`]) hold a fit? False means the subtree can be skipped.
    pub(super) fn worth_visiting(&self, s: Summary, prev_end: usize, next_base: usize) -> bool {
        // The part of the window these gaps can reach must be at least `len` long...
        let reach = min(next_base, self.hi).saturating_sub(max(prev_end, self.lo));
        if reach < self.len {
            return false;
        }
        // ...and so must the largest of these gaps.
        let largest = max(
            s.max_gap,
            max(
                s.min_base.saturating_sub(prev_end),
                next_base.saturating_sub(s.max_end),
            ),
        );
        largest >= self.len
    }

    /// Lowest aligned spot for `len` bytes in the free gap `[gap_start, gap_end)` within the
    /// window.
    pub(super) fn first_in_gap(&self, gap_start: usize, gap_end: usize) -> Option<usize> {
        let start = max(gap_start, self.lo);
        let end = min(gap_end, self.hi);
        let b = start.checked_add(self.align - 1)? & !(self.align - 1);
        (b.checked_add(self.len)? <= end).then_some(b)
    }

    /// Highest aligned spot for `len` bytes in the free gap `[gap_start, gap_end)` within the
    /// window.
    pub(super) fn last_in_gap(&self, gap_start: usize, gap_end: usize) -> Option<usize> {
        let start = max(gap_start, self.lo);
        let end = min(gap_end, self.hi);
        let b = end.checked_sub(self.len)? & !(self.align - 1);
        (b >= start).then_some(b)
    }
}
