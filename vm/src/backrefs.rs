//! The back-references of one VMO: which mappings map which window of it, in an index whose
//! inserts never allocate.
//!
//! [`BackRefs`] is an AVL tree keyed by [`BackRefKey`] (window start, address space, uid), whose
//! nodes live in one arena `Vec` addressed by `u32` indices with a free list. Each node also keeps
//! the largest window end of its subtree (an interval tree), so "every window meeting
//! `[lo, hi)`" is one pruned in-order walk: O(log m + k) for k answers when windows do not nest
//! deeply, never a walk over the m - k windows that lie elsewhere.
//!
//! # Reservations
//!
//! An insert of a new key needs one arena slot, and it takes that slot from the free list or
//! from spare capacity: it never grows the arena. [`BackRefs::reserve`] grows it (fallibly,
//! `try_reserve`) ahead of time and counts the slots it promised; an insert of a new key uses
//! one promise. So an operation reserves in its check phase one slot per new key its apply phase
//! will insert, and the apply phase cannot fail. Updating an existing key and removing never
//! allocate. (`alloc::collections::BTreeMap` allocates a node inside `insert` and has no way to
//! reserve one.)
//!
//! Every walk is iterative: the tree height is at most 1.44 log2(m + 2) < [`MAX_DEPTH`].

use alloc::format;
use alloc::string::String;
use alloc::sync::Weak;
use alloc::vec::Vec;

use crate::aspace::AddressSpace;

/// "No node".
const NIL: u32 = u32::MAX;

/// More than the height of any AVL tree with fewer than 2^32 nodes (1.44 * 32 + 2 < 48).
const MAX_DEPTH: usize = 48;

/// Where one mapping maps this VMO: enough to remove its page-table entries for a VMO range. The
/// window's first VMO byte is part of the key ([`BackRefKey`]).
#[derive(Clone)]
pub(crate) struct MappingRef {
    pub(crate) aspace: Weak<AddressSpace>,
    pub(crate) base: usize,
    pub(crate) size: usize,
}

/// Names one back-reference: the window's first VMO byte, then the mapping's address space and
/// uid (which make it unique). Ordered by window start, so a VMO range is one range walk.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct BackRefKey {
    pub(crate) vmo_offset: u64,
    pub(crate) aspace: u64,
    pub(crate) uid: u64,
}

struct Node {
    key: BackRefKey,
    r: MappingRef,
    /// Largest window end (`vmo_offset + len`, saturating) in this subtree.
    max_end: u64,
    /// Children and parent, or [`NIL`]. A vacant slot threads the free list through `left`.
    left: u32,
    right: u32,
    parent: u32,
    /// Subtree height (a leaf is 1); 0 marks a vacant slot.
    height: u8,
}

impl Node {
    fn end(&self) -> u64 {
        self.key.vmo_offset.saturating_add(self.r.size as u64)
    }
}

/// The back-references of one VMO (see the module docs).
pub(crate) struct BackRefs {
    nodes: Vec<Node>,
    root: u32,
    /// Head of the free list of vacant slots, and its length.
    free: u32,
    free_count: usize,
    live: usize,
    /// Slots promised by [`BackRefs::reserve`] and not yet used by an insert.
    reserved: usize,
    /// The same promises per address space (id, count; no zero counts): an operation promises
    /// for its own address space, whose tree lock it holds until its promises are used or
    /// withdrawn, while operations of other address spaces may hold theirs at the same moment on
    /// other CPUs.
    reserved_by: Vec<(u64, usize)>,
}

impl Default for BackRefs {
    fn default() -> Self {
        BackRefs {
            nodes: Vec::new(),
            root: NIL,
            free: NIL,
            free_count: 0,
            live: 0,
            reserved: 0,
            reserved_by: Vec::new(),
        }
    }
}

impl BackRefs {
    /// Promises `n` more inserts of new keys of address space `aspace`, growing the arena now if
    /// needed. False (nothing promised) when the arena cannot grow: the caller reports
    /// `ERR_NO_MEMORY`.
    pub(crate) fn reserve(&mut self, aspace: u64, n: usize) -> bool {
        let Some(want) = self.reserved.checked_add(n) else {
            return false;
        };
        let entry = self.reserved_by.iter().position(|&(a, _)| a == aspace);
        if entry.is_none() && self.reserved_by.try_reserve(1).is_err() {
            return false;
        }
        let spare = self.free_count + (self.nodes.capacity() - self.nodes.len());
        if want > spare {
            let more = want - self.free_count;
            let fits = self
                .nodes
                .len()
                .checked_add(more)
                .is_some_and(|total| total < NIL as usize);
            if !fits || self.nodes.try_reserve(more).is_err() {
                return false;
            }
        }
        self.reserved = want;
        match entry {
            Some(i) => self.reserved_by[i].1 += n,
            // Capacity reserved above: `push` cannot allocate.
            None => self.reserved_by.push((aspace, n)),
        }
        true
    }

    /// Withdraws `n` promises of address space `aspace` that will not be used.
    pub(crate) fn unreserve(&mut self, aspace: u64, n: usize) {
        self.reserved = self.reserved.saturating_sub(n);
        self.forget_promises(aspace, n);
    }

    /// Takes `n` promises off `aspace`'s count (dropping its entry at zero). Never allocates.
    fn forget_promises(&mut self, aspace: u64, n: usize) {
        if let Some(i) = self.reserved_by.iter().position(|&(a, _)| a == aspace) {
            let left = self.reserved_by[i].1.saturating_sub(n);
            if left == 0 {
                self.reserved_by.swap_remove(i);
            } else {
                self.reserved_by[i].1 = left;
            }
        }
    }

    /// Adds the back-reference `key` (using one promise from [`BackRefs::reserve`]), or updates
    /// it in place when it exists (no promise needed). Never allocates; `Err` gives `r` back only
    /// when a new key finds no slot, which a reservation rules out. O(log m).
    pub(crate) fn insert(&mut self, key: BackRefKey, r: MappingRef) -> Result<(), MappingRef> {
        let mut parent = NIL;
        let mut cur = self.root;
        let mut left = false;
        while cur != NIL {
            let n = &self.nodes[cur as usize];
            match key.cmp(&n.key) {
                core::cmp::Ordering::Equal => {
                    self.nodes[cur as usize].r = r;
                    self.fix_from(cur, NIL);
                    return Ok(());
                }
                core::cmp::Ordering::Less => {
                    parent = cur;
                    cur = n.left;
                    left = true;
                }
                core::cmp::Ordering::Greater => {
                    parent = cur;
                    cur = n.right;
                    left = false;
                }
            }
        }
        let node = Node {
            key,
            max_end: key.vmo_offset.saturating_add(r.size as u64),
            r,
            left: NIL,
            right: NIL,
            parent,
            height: 1,
        };
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.nodes[i as usize].left;
            self.free_count -= 1;
            self.nodes[i as usize] = node;
            i
        } else if self.nodes.len() < self.nodes.capacity() && self.nodes.len() < NIL as usize {
            // Spare capacity: `push` cannot allocate.
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        } else {
            return Err(node.r);
        };
        self.reserved = self.reserved.saturating_sub(1);
        self.forget_promises(key.aspace, 1);
        self.live += 1;
        if parent == NIL {
            self.root = i;
        } else if left {
            self.nodes[parent as usize].left = i;
        } else {
            self.nodes[parent as usize].right = i;
        }
        self.fix_from(parent, NIL);
        Ok(())
    }

    /// Removes the back-reference `key`, if any. Never allocates. O(log m).
    pub(crate) fn remove(&mut self, key: BackRefKey) {
        let mut z = self.find(key);
        if z == NIL {
            return;
        }
        // The node whose entry changes when a successor moves into it (an ancestor of the
        // successor), which the fix-up must reach.
        let mut dirty = NIL;
        let (zl, zr) = (self.nodes[z as usize].left, self.nodes[z as usize].right);
        if zl != NIL && zr != NIL {
            // Two children: move the successor's entry here and unlink the successor instead.
            let mut s = zr;
            while self.nodes[s as usize].left != NIL {
                s = self.nodes[s as usize].left;
            }
            let (lo, hi) = if z < s { (z, s) } else { (s, z) };
            let (a, b) = self.nodes.split_at_mut(hi as usize);
            let (a, b) = (&mut a[lo as usize], &mut b[0]);
            core::mem::swap(&mut a.key, &mut b.key);
            core::mem::swap(&mut a.r, &mut b.r);
            dirty = z;
            z = s;
        }
        let n = &self.nodes[z as usize];
        let child = if n.left != NIL { n.left } else { n.right };
        let parent = n.parent;
        if child != NIL {
            self.nodes[child as usize].parent = parent;
        }
        self.replace_child(parent, z, child);
        let vacant = &mut self.nodes[z as usize];
        vacant.r.aspace = Weak::new();
        vacant.height = 0;
        vacant.right = NIL;
        vacant.parent = NIL;
        vacant.left = self.free;
        self.free = z;
        self.free_count += 1;
        self.live -= 1;
        self.fix_from(parent, dirty);
    }

    /// The back-reference `key`. O(log m).
    pub(crate) fn get(&self, key: BackRefKey) -> Option<&MappingRef> {
        let i = self.find(key);
        (i != NIL).then(|| &self.nodes[i as usize].r)
    }

    /// Number of back-references.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Number of back-references from address space `aspace`. O(arena size): for invariant
    /// checks.
    pub(crate) fn count_for(&self, aspace: u64) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.height != 0 && n.key.aspace == aspace)
            .count()
    }

    /// The back-references whose VMO window meets `[lo, hi)` (bytes), in window-start order, as
    /// (window start, reference). Allocates nothing.
    pub(crate) fn overlapping(&self, lo: u64, hi: u64) -> Overlapping<'_> {
        self.overlapping_after(lo, hi, None)
    }

    /// [`Self::overlapping`] restricted to keys above `after` (all keys when `None`), so a walk
    /// can resume where an earlier one stopped (see [`Overlapping::last_key`]) after the index
    /// changed: O(log m) to resume.
    pub(crate) fn overlapping_after(
        &self,
        lo: u64,
        hi: u64,
        after: Option<BackRefKey>,
    ) -> Overlapping<'_> {
        let mut it = Overlapping {
            refs: self,
            stack: [NIL; MAX_DEPTH],
            depth: 0,
            lo,
            hi,
            after,
            last: None,
        };
        if lo < hi {
            it.descend(self.root);
        }
        it
    }

    /// Checks the whole structure (for `check_invariants`): key order, parent links, heights and
    /// balance, subtree window ends, the live count, the free list and the reservation. O(m).
    pub(crate) fn check(&self) -> Result<(), String> {
        let count = self.check_links()?;
        self.check_in_order()?;
        if count != self.live {
            return Err(format!(
                "back-references: {count} linked, {} counted",
                self.live
            ));
        }
        let free = self.check_free_list()?;
        if free != self.free_count || count + free != self.nodes.len() {
            return Err(format!(
                "back-references: {free} free + {count} live slots, arena {}",
                self.nodes.len()
            ));
        }
        let spare = self.free_count + (self.nodes.capacity() - self.nodes.len());
        if spare < self.reserved {
            return Err(format!(
                "back-references: {} reserved but {spare} slots spare",
                self.reserved
            ));
        }
        Ok(())
    }

    /// Every node linked from the root (an explicit stack, no recursion): parent links, order
    /// against its parent, height and balance, subtree window end. Returns how many are linked.
    fn check_links(&self) -> Result<usize, String> {
        let mut count = 0usize;
        let mut stack: Vec<u32> = Vec::new();
        if self.root != NIL {
            if self.nodes[self.root as usize].parent != NIL {
                return Err("back-references: root has a parent".into());
            }
            stack.push(self.root);
        }
        while let Some(i) = stack.pop() {
            let n = self
                .nodes
                .get(i as usize)
                .ok_or_else(|| format!("back-references: link {i} outside the arena"))?;
            if n.height == 0 {
                return Err(format!("back-references: vacant node {i} linked"));
            }
            count += 1;
            let mut max_end = n.end();
            for (c, less) in [(n.left, true), (n.right, false)] {
                if c == NIL {
                    continue;
                }
                let cn = &self.nodes[c as usize];
                if cn.parent != i {
                    return Err(format!("back-references: node {c} has the wrong parent"));
                }
                if (cn.key < n.key) != less || cn.key == n.key {
                    return Err(format!("back-references: node {c} out of order"));
                }
                max_end = max_end.max(cn.max_end);
                stack.push(c);
            }
            let (hl, hr) = (self.height(n.left), self.height(n.right));
            if n.height != 1 + hl.max(hr) || hl.abs_diff(hr) > 1 {
                return Err(format!("back-references: node {i} height or balance wrong"));
            }
            if n.max_end != max_end {
                return Err(format!("back-references: node {i} window end stale"));
            }
        }
        Ok(count)
    }

    /// Order across subtrees: an in-order walk sees strictly increasing keys.
    fn check_in_order(&self) -> Result<(), String> {
        let mut prev: Option<BackRefKey> = None;
        let mut it = self.first();
        while it != NIL {
            let k = self.nodes[it as usize].key;
            if prev.is_some_and(|p| p >= k) {
                return Err("back-references: in-order keys not increasing".into());
            }
            prev = Some(k);
            it = self.successor(it);
        }
        Ok(())
    }

    /// The free list: vacant nodes only, inside the arena, no longer than it. Returns its length.
    fn check_free_list(&self) -> Result<usize, String> {
        let mut free = 0usize;
        let mut f = self.free;
        while f != NIL {
            let n = self
                .nodes
                .get(f as usize)
                .ok_or_else(|| String::from("back-references: free list leaves the arena"))?;
            if n.height != 0 || free > self.nodes.len() {
                return Err("back-references: free list broken".into());
            }
            free += 1;
            f = n.left;
        }
        Ok(free)
    }

    /// Slots promised and not used yet, of every address space.
    #[cfg(test)]
    pub(crate) fn reserved(&self) -> usize {
        self.reserved
    }

    /// Promises of address space `aspace` not used yet.
    pub(crate) fn reserved_by(&self, aspace: u64) -> usize {
        self.reserved_by
            .iter()
            .find(|&&(a, _)| a == aspace)
            .map_or(0, |&(_, n)| n)
    }

    fn find(&self, key: BackRefKey) -> u32 {
        let mut cur = self.root;
        while cur != NIL {
            let n = &self.nodes[cur as usize];
            cur = match key.cmp(&n.key) {
                core::cmp::Ordering::Equal => return cur,
                core::cmp::Ordering::Less => n.left,
                core::cmp::Ordering::Greater => n.right,
            };
        }
        NIL
    }

    fn first(&self) -> u32 {
        let mut cur = self.root;
        if cur == NIL {
            return NIL;
        }
        while self.nodes[cur as usize].left != NIL {
            cur = self.nodes[cur as usize].left;
        }
        cur
    }

    fn successor(&self, mut i: u32) -> u32 {
        let r = self.nodes[i as usize].right;
        if r != NIL {
            let mut cur = r;
            while self.nodes[cur as usize].left != NIL {
                cur = self.nodes[cur as usize].left;
            }
            return cur;
        }
        loop {
            let p = self.nodes[i as usize].parent;
            if p == NIL || self.nodes[p as usize].left == i {
                return p;
            }
            i = p;
        }
    }

    fn height(&self, i: u32) -> u8 {
        if i == NIL {
            0
        } else {
            self.nodes[i as usize].height
        }
    }

    fn max_end(&self, i: u32) -> u64 {
        if i == NIL {
            0
        } else {
            self.nodes[i as usize].max_end
        }
    }

    /// Recomputes the height and window end of node `i` from its children.
    /// Recomputes node `i`'s height and `max_end` from its children; true if either changed.
    fn update(&mut self, i: u32) -> bool {
        let n = &self.nodes[i as usize];
        let (l, r) = (n.left, n.right);
        let height = 1 + self.height(l).max(self.height(r));
        let max_end = n.end().max(self.max_end(l)).max(self.max_end(r));
        let n = &mut self.nodes[i as usize];
        let changed = n.height != height || n.max_end != max_end;
        n.height = height;
        n.max_end = max_end;
        changed
    }

    /// Makes `new` the child of `parent` that `old` was (or the root).
    fn replace_child(&mut self, parent: u32, old: u32, new: u32) {
        if parent == NIL {
            self.root = new;
        } else if self.nodes[parent as usize].left == old {
            self.nodes[parent as usize].left = new;
        } else {
            self.nodes[parent as usize].right = new;
        }
    }

    /// Rotates the right child of `x` up; returns it.
    fn rotate_left(&mut self, x: u32) -> u32 {
        let y = self.nodes[x as usize].right;
        let b = self.nodes[y as usize].left;
        let p = self.nodes[x as usize].parent;
        self.nodes[x as usize].right = b;
        if b != NIL {
            self.nodes[b as usize].parent = x;
        }
        self.nodes[y as usize].parent = p;
        self.replace_child(p, x, y);
        self.nodes[y as usize].left = x;
        self.nodes[x as usize].parent = y;
        self.update(x);
        self.update(y);
        y
    }

    /// Rotates the left child of `x` up; returns it.
    fn rotate_right(&mut self, x: u32) -> u32 {
        let y = self.nodes[x as usize].left;
        let b = self.nodes[y as usize].right;
        let p = self.nodes[x as usize].parent;
        self.nodes[x as usize].left = b;
        if b != NIL {
            self.nodes[b as usize].parent = x;
        }
        self.nodes[y as usize].parent = p;
        self.replace_child(p, x, y);
        self.nodes[y as usize].right = x;
        self.nodes[x as usize].parent = y;
        self.update(x);
        self.update(y);
        y
    }

    /// Restores heights, `max_end` and the AVL balance on the path from `i` up, after a change
    /// below `i` (and at `dirty`, an ancestor on that path whose own entry changed, or `NIL`).
    /// Stops at the first node past `dirty` that needed no rotation and whose height and
    /// `max_end` came out unchanged: nothing above it depends on anything else.
    fn fix_from(&mut self, mut i: u32, mut dirty: u32) {
        while i != NIL {
            let changed = self.update(i);
            if i == dirty {
                dirty = NIL;
            }
            let (l, r) = (self.nodes[i as usize].left, self.nodes[i as usize].right);
            let (hl, hr) = (self.height(l), self.height(r));
            let mut rotated = false;
            if hl > hr + 1 {
                let (ll, lr) = (self.nodes[l as usize].left, self.nodes[l as usize].right);
                if self.height(ll) < self.height(lr) {
                    self.rotate_left(l);
                }
                i = self.rotate_right(i);
                rotated = true;
            } else if hr > hl + 1 {
                let (rl, rr) = (self.nodes[r as usize].left, self.nodes[r as usize].right);
                if self.height(rr) < self.height(rl) {
                    self.rotate_right(r);
                }
                i = self.rotate_left(i);
                rotated = true;
            }
            if !changed && !rotated && dirty == NIL {
                break;
            }
            i = self.nodes[i as usize].parent;
        }
    }
}

/// Iterator of [`BackRefs::overlapping`]: an in-order walk that skips every subtree whose
/// windows all end at or below `lo` and stops at the first window starting at or above `hi`.
pub(crate) struct Overlapping<'a> {
    refs: &'a BackRefs,
    stack: [u32; MAX_DEPTH],
    depth: usize,
    lo: u64,
    hi: u64,
    /// Only keys above this one (see [`BackRefs::overlapping_after`]).
    after: Option<BackRefKey>,
    /// The key of the last item returned.
    last: Option<BackRefKey>,
}

impl Overlapping<'_> {
    /// Pushes the path to the leftmost node under `i` whose subtree may hold an answer: subtrees
    /// whose windows all end at or below `lo` are skipped, and so is every node with a key at or
    /// below `after` together with its left subtree.
    fn descend(&mut self, mut i: u32) {
        while i != NIL && self.depth < MAX_DEPTH {
            let n = &self.refs.nodes[i as usize];
            if n.max_end <= self.lo {
                break;
            }
            if self.after.is_some_and(|a| n.key <= a) {
                i = n.right;
                continue;
            }
            self.stack[self.depth] = i;
            self.depth += 1;
            i = n.left;
        }
    }

    /// The key of the last back-reference returned, to resume from with
    /// [`BackRefs::overlapping_after`].
    pub(crate) fn last_key(&self) -> Option<BackRefKey> {
        self.last
    }
}

impl<'a> Iterator for Overlapping<'a> {
    type Item = (u64, &'a MappingRef);

    fn next(&mut self) -> Option<Self::Item> {
        while self.depth > 0 {
            self.depth -= 1;
            let i = self.stack[self.depth];
            let n = &self.refs.nodes[i as usize];
            if n.key.vmo_offset >= self.hi {
                self.depth = 0;
                return None;
            }
            self.descend(n.right);
            if n.end() > self.lo {
                self.last = Some(n.key);
                return Some((n.key.vmo_offset, &n.r));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(offset: u64, uid: u64) -> BackRefKey {
        BackRefKey {
            vmo_offset: offset,
            aspace: 1,
            uid,
        }
    }

    fn r(len: usize) -> MappingRef {
        MappingRef {
            aspace: Weak::new(),
            base: 0,
            size: len,
        }
    }

    #[test]
    fn a_new_key_needs_a_promised_slot_and_updates_need_none() {
        let mut refs = BackRefs::default();
        assert!(
            refs.insert(key(0, 1), r(4096)).is_err(),
            "no slot, no insert"
        );
        assert!(refs.reserve(1, 2));
        let cap = refs.nodes.capacity();
        refs.insert(key(0, 1), r(4096)).ok().unwrap();
        refs.insert(key(0, 1), r(8192)).ok().unwrap(); // update in place
        refs.insert(key(4096, 2), r(4096)).ok().unwrap();
        assert_eq!(refs.nodes.capacity(), cap, "inserts grew the arena");
        assert_eq!((refs.len(), refs.reserved()), (2, 0));
        refs.check().unwrap();
        // A freed slot serves the next new key; an unused promise can be withdrawn.
        refs.remove(key(0, 1));
        assert!(refs.reserve(1, 1));
        refs.insert(key(100, 3), r(4096)).ok().unwrap();
        assert!(refs.reserve(1, 3));
        refs.unreserve(1, 3);
        refs.check().unwrap();
        assert_eq!(refs.reserved(), 0);
    }

    #[test]
    fn promises_are_counted_per_address_space() {
        let mut refs = BackRefs::default();
        assert!(refs.reserve(1, 2));
        assert!(refs.reserve(2, 1));
        assert_eq!((refs.reserved_by(1), refs.reserved_by(2)), (2, 1));
        // An insert uses a promise of its key's address space.
        refs.insert(key(0, 1), r(4096)).ok().unwrap();
        assert_eq!((refs.reserved_by(1), refs.reserved_by(2)), (1, 1));
        refs.unreserve(2, 1);
        assert_eq!((refs.reserved_by(1), refs.reserved_by(2)), (1, 0));
        refs.unreserve(1, 1);
        assert_eq!((refs.reserved(), refs.reserved_by(1)), (0, 0));
        assert!(refs.reserved_by.is_empty());
    }

    #[test]
    fn random_updates_keep_the_tree_and_the_window_queries_exact() {
        let mut refs = BackRefs::default();
        let mut model: alloc::collections::BTreeMap<BackRefKey, usize> = Default::default();
        let mut x = 7u64;
        for step in 0..4000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = key((x >> 40) % 128 * 4096, (x >> 20) % 64);
            if (x >> 8).is_multiple_of(3) {
                refs.remove(k);
                model.remove(&k);
            } else {
                let len = ((x >> 30) % 9 + 1) as usize * 4096;
                if !model.contains_key(&k) {
                    assert!(refs.reserve(1, 1));
                }
                refs.insert(k, r(len)).ok().unwrap();
                model.insert(k, len);
            }
            // Heights, window ends and balance after every step: the fix-up stops early.
            refs.check().unwrap();
            if step.is_multiple_of(97) {
                let lo = (x >> 12) % 130 * 4096;
                let hi = lo + 8192;
                let got: Vec<u64> = refs.overlapping(lo, hi).map(|(s, _)| s).collect();
                let want: Vec<u64> = model
                    .iter()
                    .filter(|(k, l)| k.vmo_offset < hi && k.vmo_offset + **l as u64 > lo)
                    .map(|(k, _)| k.vmo_offset)
                    .collect();
                assert_eq!(got, want, "window [{lo:#x}, {hi:#x})");
                // Resuming after each answer's key yields exactly the answers after it.
                let keys: Vec<BackRefKey> = model
                    .iter()
                    .filter(|(k, l)| k.vmo_offset < hi && k.vmo_offset + **l as u64 > lo)
                    .map(|(k, _)| *k)
                    .collect();
                for (i, k) in keys.iter().enumerate() {
                    let mut it = refs.overlapping_after(lo, hi, Some(*k));
                    let mut rest = Vec::new();
                    while it.next().is_some() {
                        rest.push(it.last_key().unwrap());
                    }
                    assert_eq!(rest, keys[i + 1..], "after {k:?} in [{lo:#x}, {hi:#x})");
                }
            }
        }
        assert_eq!(refs.len(), model.len());
        assert_eq!(refs.reserved(), 0);
    }
}
