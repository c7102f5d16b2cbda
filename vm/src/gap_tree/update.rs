//! Restructuring on the way back up from an update: summaries refreshed along the recorded path,
//! split-off nodes inserted into their parents ([`GapTree::fix_up`]), and underfull nodes merged
//! or refilled from a sibling ([`GapTree::rebalance_up`]).

use super::*;

impl<V> GapTree<V> {
    // ---------------------------------------------------------------------------------------------
    // Updates.

    /// After node `child` at the bottom of `path` changed (and, if `carry` is set, split off the
    /// new right sibling `carry`), refreshes the summaries on the path and inserts split-off
    /// siblings into their parents, splitting those in turn when full; grows a new root when the
    /// old one split. Stops early once a level's summary comes out unchanged with nothing to insert.
    pub(super) fn fix_up(&mut self, path: &Path, mut child: u32, mut carry: Option<u32>) {
        for d in (0..path.depth).rev() {
            let child_is_leaf = d + 1 == path.depth;
            let (parent, c) = (path.nodes[d], path.slots[d] as usize);
            let s = self.node_summary(child, child_is_leaf);
            let carried = carry.map(|r| (self.node_summary(r, child_is_leaf), r));
            let node = self.inner_mut(parent);
            if carried.is_none() && node.child_summary(c) == s {
                return; // Nothing above depends on anything else that changed.
            }
            node.set_summary(c, s);
            carry = None;
            if let Some((rs, r)) = carried {
                if node.len < INNER_CAP {
                    node.insert(c + 1, rs, r);
                } else {
                    let mut right = node.split_off(INNER_MIN);
                    if c < INNER_MIN {
                        node.insert(c + 1, rs, r);
                    } else {
                        right.insert(c + 1 - INNER_MIN, rs, r);
                    }
                    carry = Some(self.alloc_internal(right));
                }
            }
            child = parent;
        }
        if let Some(r) = carry {
            // The root split: a new root above the two halves.
            let leaf = self.height == 1;
            let (ls, rs) = (
                self.node_summary(self.root, leaf),
                self.node_summary(r, leaf),
            );
            let mut root = Internal::new();
            root.insert(0, ls, self.root);
            root.insert(1, rs, r);
            self.root = self.alloc_internal(root);
            self.height += 1;
        }
    }

    /// After an entry left leaf `leaf` at the bottom of `path`: refreshes the summaries on the path
    /// and repairs every node that fell below [`LEAF_MIN`] / [`INNER_MIN`] by merging it with a
    /// sibling (when both fit in one node) or moving entries over from the sibling; shrinks the
    /// root when it is left with a single child (or frees it when the tree became empty).
    pub(super) fn rebalance_up(&mut self, path: &Path, leaf: u32) {
        let mut child_len = self.leaf(leaf).len;
        let mut child = leaf;
        for d in (0..path.depth).rev() {
            let child_is_leaf = d + 1 == path.depth;
            let (parent, c) = (path.nodes[d], path.slots[d] as usize);
            if child_len >= if child_is_leaf { LEAF_MIN } else { INNER_MIN } {
                let s = self.node_summary(child, child_is_leaf);
                let node = self.inner_mut(parent);
                if node.child_summary(c) == s {
                    return; // Shape and summaries above are unaffected.
                }
                node.set_summary(c, s);
            } else {
                // Underflow: pair the child with its right sibling, or its left one if last.
                // (A parent always has at least two children.)
                let plen = self.inner(parent).len;
                let li = if c + 1 < plen { c } else { c - 1 };
                let (l, r) = {
                    let node = self.inner(parent);
                    (node.child[li], node.child[li + 1])
                };
                let merged = if child_is_leaf {
                    self.fix_leaf_pair(l, r)
                } else {
                    self.fix_internal_pair(l, r)
                };
                let ls = self.node_summary(l, child_is_leaf);
                if merged {
                    self.inner_mut(parent).remove(li + 1);
                    self.inner_mut(parent).set_summary(li, ls);
                } else {
                    let rs = self.node_summary(r, child_is_leaf);
                    let node = self.inner_mut(parent);
                    node.set_summary(li, ls);
                    node.set_summary(li + 1, rs);
                }
            }
            child = parent;
            child_len = self.inner(parent).len;
        }
        // `child` is the root now.
        debug_assert_eq!(child, self.root);
        if self.height == 1 && child_len == 0 {
            self.free_leaf(self.root);
            self.root = NIL;
            self.height = 0;
        } else if self.height > 1 && child_len == 1 {
            let only = self.inner(self.root).child[0];
            self.free_internal(self.root);
            self.root = only;
            self.height -= 1;
        }
    }

    /// Adjacent leaves `l`, `r`, one of which is below [`LEAF_MIN`]: merges `r` into `l` if they
    /// fit in one leaf (returns true; `r` is freed) or else evens out their entries (returns
    /// false).
    fn fix_leaf_pair(&mut self, l: u32, r: u32) -> bool {
        let (ln, rn) = (self.leaf(l).len, self.leaf(r).len);
        if ln + rn <= LEAF_CAP {
            let mut right = self.free_leaf(r);
            let left = self.leaf_mut(l);
            left.append(&mut right);
            left.next = right.next;
            return true;
        }
        let target = (ln + rn) / 2;
        for _ in ln..target {
            let (b, e, v) = self.leaf_mut(r).remove(0);
            let left = self.leaf_mut(l);
            left.insert(left.len, b, e, v);
        }
        for _ in target..ln {
            let left = self.leaf_mut(l);
            let (b, e, v) = left.remove(left.len - 1);
            self.leaf_mut(r).insert(0, b, e, v);
        }
        false
    }

    /// [`fix_leaf_pair`](Self::fix_leaf_pair) for internal nodes.
    fn fix_internal_pair(&mut self, l: u32, r: u32) -> bool {
        let (ln, rn) = (self.inner(l).len, self.inner(r).len);
        if ln + rn <= INNER_CAP {
            let right = self.free_internal(r);
            self.inner_mut(l).append(&right);
            return true;
        }
        let target = (ln + rn) / 2;
        for _ in ln..target {
            let (s, c) = self.inner_mut(r).remove(0);
            let left = self.inner_mut(l);
            left.insert(left.len, s, c);
        }
        for _ in target..ln {
            let left = self.inner_mut(l);
            let (s, c) = left.remove(left.len - 1);
            self.inner_mut(r).insert(0, s, c);
        }
        false
    }
}
