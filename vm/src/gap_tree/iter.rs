//! [`Iter`]: the in-order walk along the leaf chain behind [`GapTree::overlapping`] and
//! [`GapTree::iter`].

use super::*;

/// In-order iterator over the entries that end above some `start` and begin below `stop`: a
/// position in a leaf, moved along the leaf chain.
pub(super) struct Iter<'a, V> {
    tree: &'a GapTree<V>,
    leaf: u32,
    pos: usize,
    stop: usize,
}

impl<'a, V> Iter<'a, V> {
    pub(super) fn empty(tree: &'a GapTree<V>) -> Self {
        Iter {
            tree,
            leaf: NIL,
            pos: 0,
            stop: 0,
        }
    }

    /// Positioned at the first entry whose end is above `start`: the entry with the greatest base
    /// `<= start` if it reaches past `start`, else the one after it.
    pub(super) fn new(tree: &'a GapTree<V>, start: usize, stop: usize) -> Self {
        let loc = tree.descend::<false>(start, None);
        // The leaf holds the entry with the greatest base <= start, so every entry of it before
        // the answer ends at or before `start`.
        if start == usize::MAX {
            return Iter::empty(tree); // nothing ends above the last address
        }
        let pos = if loc.leaf == NIL {
            0
        } else {
            tree.leaf(loc.leaf).ends_le(start)
        };
        Iter {
            tree,
            leaf: loc.leaf,
            pos,
            stop,
        }
    }
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (usize, usize, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let tree = self.tree;
        while self.leaf != NIL {
            let leaf = tree.leaf(self.leaf);
            if self.pos >= leaf.len {
                self.leaf = leaf.next;
                self.pos = 0;
                continue;
            }
            if leaf.bases[self.pos] >= self.stop {
                self.leaf = NIL;
                return None;
            }
            self.pos += 1;
            return Some(leaf.entry(self.pos - 1));
        }
        None
    }
}

impl<V> FusedIterator for Iter<'_, V> {}
