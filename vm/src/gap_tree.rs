//! The per-VMAR children index: an ordered set of non-overlapping intervals that can also answer
//! "where is there room?" in O(log n).
//!
//! # What it stores
//!
//! A [`GapTree`] lives inside a fixed *span* `[range_base, range_end)` — for a VMAR, the VMAR's own
//! extent. Each entry is a half-open interval `[base, base + len)` (a child VMAR or a mapping, in
//! Zircon terms) with a value attached. Entries never overlap, never have length zero and never
//! leave the span; the tree is keyed (and iterated) by `base`. Everything in the span not covered
//! by an entry is a *gap*: the space before the first entry, between two neighbours, or after the
//! last entry.
//!
//! # The structure
//!
//! It is an AVL tree (a binary search tree where the heights of a node's two subtrees differ by at
//! most one, so the height is at most ~1.44·log2(n)). Nodes live in an *arena*: a `Vec` of slots
//! addressed by `u32` indices, with vacated slots threaded onto an intrusive free list, so the tree
//! needs no `unsafe`, no `Box` per node and no parent pointers (every update walks down from the
//! root recursively and fixes things up on the way back out).
//!
//! # The augmentation
//!
//! Every node also summarises its whole subtree (the node plus all its descendants):
//!
//! * `subtree_min_base` — the base of the leftmost entry of the subtree;
//! * `subtree_max_end` — the end of the rightmost entry (entries don't overlap, so this is also
//!   the largest end);
//! * `subtree_max_gap` — the largest gap *strictly between* two entries of the subtree.
//!
//! All three depend only on the node itself and on its children's summaries:
//!
//! ```text
//! subtree_max_gap(n) = max( subtree_max_gap(left),  n.base - subtree_max_end(left),
//!                           subtree_max_gap(right), subtree_min_base(right) - n.end )
//! ```
//!
//! so they can be recomputed in O(1) per node whenever a node's children change — after a
//! rotation, or on the way back up from an insertion or removal. Only the O(log n) nodes on the
//! root-to-leaf path ever change, so the summaries cost nothing asymptotically. The two gaps at
//! the outer ends of the span belong to no pair of entries; they are added at the root using
//! `range_base` and `range_end` (see [`GapTree::max_gap`]). Zircon keeps the same three values on
//! the WAVL tree of a VMAR's children (`VmAddressRegionSubtreeState`: `min_first_byte`,
//! `max_last_byte`, `max_gap`); we use exclusive ends instead of inclusive last bytes, which means
//! the byte at `usize::MAX` can never be covered — irrelevant on x86_64, where it is never a user
//! address.
//!
//! # Cost of each operation
//!
//! * `insert`, `remove`, `set_len`: one root-to-leaf walk plus O(1) work (re-summarising and at
//!   most two rotations) per level on the way back: O(log n).
//! * `get`, `find`, `prev_entry`, `next_entry`, `is_free`: one root-to-leaf walk: O(log n). `find`
//!   and `is_free` use the fact that, because entries don't overlap, *ends are sorted in the same
//!   order as bases*, so "the first entry whose end is above `addr`" is a binary search.
//! * `overlapping`, `iter`: one walk to the first hit, then an in-order walk with an explicit
//!   stack of at most [`MAX_HEIGHT`] entries (no allocation): O(log n + k) for k results.
//! * `max_gap`: O(1), read off the root.
//! * `first_fit` / `last_fit`: a depth-first search, lowest (highest) addresses first, that skips
//!   every subtree whose gaps — including the two gaps joining it to its neighbours outside the
//!   subtree — are all shorter than `len`, or which lies outside the `[lo, hi)` window. Subtrees
//!   cut by the window edges lie on the two root-to-leaf paths of `lo` and `hi`; a subtree wholly
//!   inside the window that survives the pruning is guaranteed to contain a fit *provided the
//!   alignment cannot push the spot out of its gap*, i.e. when `align` divides every entry
//!   boundary and `range_base` (the normal case: page-granular entries, page alignment). Then the
//!   search is O(log n).
//!
//!   **Alignment caveat:** with an alignment coarser than the granularity of the entries (say,
//!   1 GiB alignment among 4 KiB mappings), a gap of `len` bytes or more may still hold no aligned
//!   spot. The pruning (`max gap >= len`) is only a necessary condition, so the search may descend
//!   into such subtrees, fail, and back out: the cost grows by O(log n) per such "big enough but
//!   misaligned" gap that precedes the answer, O(n) in the worst case. Every gap it does examine is
//!   checked exactly, so the answer is always correct.
//!
//! # Why not `intrusive-collections`?
//!
//! Its `RBTree` only maintains the ordering; it has no hook to keep per-subtree data up to date
//! across rotations, and without `subtree_max_gap` a fit search degrades to a linear scan of all
//! gaps. A small arena AVL tree in safe Rust is less code than bolting that on.
//!
//! # Arguments are untrusted
//!
//! Every address computation is checked: huge lengths, addresses near `usize::MAX`, windows with
//! `lo > hi`, zero or non-power-of-two alignments all produce `Err`/`None`/`false`, never a panic
//! or a wrap-around. The only panics in this module are assertions of internal invariants (an arena
//! index pointing at a free slot), which [`GapTree::check_invariants`] rules out.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::{max, min};
use core::iter::FusedIterator;

/// "No node": the null index of the arena.
const NIL: u32 = u32::MAX;

/// Upper bound on the height of any tree this module can build.
///
/// An AVL tree of height `h` has at least `F(h + 2) - 1` nodes (`F` = Fibonacci numbers,
/// `F(1) = F(2) = 1`). The arena holds at most 2^32 - 1 nodes (indices are `u32`, with
/// `u32::MAX` reserved for "no node"), and `F(48) ≈ 4.8e9 > 2^32`, so `h + 2 <= 47`, i.e.
/// `h <= 45`. The iteration stack and the depth guard of [`GapTree::check_invariants`] rely on
/// this bound.
pub const MAX_HEIGHT: usize = 48;

/// One entry of the tree plus its links and subtree summary.
struct Node<V> {
    /// First byte of the entry.
    base: usize,
    /// One past the last byte; `base < end <= range_end` always holds.
    end: usize,
    /// The caller's data.
    value: V,
    /// Left child (smaller bases) or [`NIL`].
    left: u32,
    /// Right child (larger bases) or [`NIL`].
    right: u32,
    /// Height of the subtree rooted here; a leaf has height 1 (an empty subtree has 0).
    height: u8,
    /// Smallest base in this subtree.
    subtree_min_base: usize,
    /// Largest end in this subtree.
    subtree_max_end: usize,
    /// Largest gap strictly between two entries of this subtree (0 if it has one entry).
    subtree_max_gap: usize,
}

impl<V> Node<V> {
    /// A fresh leaf: its subtree is just itself.
    fn leaf(base: usize, end: usize, value: V) -> Self {
        Node {
            base,
            end,
            value,
            left: NIL,
            right: NIL,
            height: 1,
            subtree_min_base: base,
            subtree_max_end: end,
            subtree_max_gap: 0,
        }
    }

    /// Length of the entry. Cannot underflow: `base < end` is an invariant set up by `insert` and
    /// kept by `set_len`.
    fn len(&self) -> usize {
        self.end - self.base
    }
}

/// An arena slot: a live node, or a link in the free list.
enum Slot<V> {
    Used(Node<V>),
    Free { next_free: u32 },
}

/// What a subtree looks like from its parent: everything needed to summarise the parent.
#[derive(Clone, Copy)]
struct Summary {
    height: u8,
    min_base: usize,
    max_end: usize,
    max_gap: usize,
}

/// An ordered set of non-overlapping, non-empty intervals `[base, base + len)` inside a fixed span,
/// each carrying a `V`, with O(log n) lookup, insertion, removal and free-space search.
///
/// See the [module documentation](self) for the structure and the cost of each operation.
pub struct GapTree<V> {
    /// The node arena. Indices into it are `u32`; [`NIL`] is never a valid index.
    slots: Vec<Slot<V>>,
    /// Head of the free-slot list threaded through [`Slot::Free`], or [`NIL`].
    free_head: u32,
    /// Root node or [`NIL`] when empty.
    root: u32,
    /// Number of entries (= number of [`Slot::Used`] slots).
    len: usize,
    /// First byte of the span.
    range_base: usize,
    /// One past the last byte of the span.
    range_end: usize,
}

impl<V> GapTree<V> {
    /// An empty tree over the span `[range_base, range_base + range_len)`.
    ///
    /// If `range_base + range_len` would overflow, the span is truncated to end at `usize::MAX`
    /// (the last address byte can never be covered anyway, see the module docs). Allocates nothing.
    pub fn new(range_base: usize, range_len: usize) -> Self {
        GapTree {
            slots: Vec::new(),
            free_head: NIL,
            root: NIL,
            len: 0,
            range_base,
            range_end: range_base.saturating_add(range_len),
        }
    }

    /// First byte of the span.
    pub fn range_base(&self) -> usize {
        self.range_base
    }

    /// One past the last byte of the span (`range_base + range_len`).
    pub fn range_end(&self) -> usize {
        self.range_end
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds the entry `[base, base + len)`.
    ///
    /// Gives `value` back in `Err` if `len == 0`, `base + len` overflows, the interval leaves the
    /// span, it overlaps an existing entry (merely touching one is fine), or the node arena cannot
    /// grow (allocation failure, or 2^32 - 1 entries). O(log n).
    pub fn insert(&mut self, base: usize, len: usize, value: V) -> Result<(), V> {
        if !self.is_free(base, len) {
            return Err(value);
        }
        // is_free() checked that this doesn't overflow and stays inside the span.
        let end = base + len;
        let new = self
            .alloc_node(Node::leaf(base, end, value))
            .map_err(|n| n.value)?;
        self.root = self.insert_at(self.root, new);
        self.len += 1;
        Ok(())
    }

    /// Removes the entry whose base is exactly `base`, returning its `(len, value)`. O(log n).
    pub fn remove(&mut self, base: usize) -> Option<(usize, V)> {
        let (new_root, removed) = self.remove_at(self.root, base);
        if removed == NIL {
            return None;
        }
        self.root = new_root;
        self.len -= 1;
        let node = self.free_node(removed);
        Some((node.len(), node.value))
    }

    /// The entry whose base is exactly `base`: `(len, &value)`. O(log n).
    pub fn get(&self, base: usize) -> Option<(usize, &V)> {
        let n = self.lookup(base);
        (n != NIL).then(|| {
            let node = self.node(n);
            (node.len(), &node.value)
        })
    }

    /// The entry whose base is exactly `base`: `(len, &mut value)`. O(log n).
    pub fn get_mut(&mut self, base: usize) -> Option<(usize, &mut V)> {
        let n = self.lookup(base);
        if n == NIL {
            return None;
        }
        let node = self.node_mut(n);
        Some((node.len(), &mut node.value))
    }

    /// Changes the length of the entry based at `base` in place.
    ///
    /// Shrinking always succeeds; growing succeeds if `[base, base + new_len)` stays inside the
    /// span and the added part touches no other entry. `Err(())` if there is no entry at `base`,
    /// `new_len == 0`, `base + new_len` overflows, or the grown entry would not fit. O(log n).
    #[allow(clippy::result_unit_err)]
    pub fn set_len(&mut self, base: usize, new_len: usize) -> Result<(), ()> {
        let n = self.lookup(base);
        if n == NIL || new_len == 0 {
            return Err(());
        }
        let new_end = base.checked_add(new_len).ok_or(())?;
        if new_end > self.range_end {
            return Err(());
        }
        if new_end > self.node(n).end {
            // Growing: the successor, if any, must start at or after the new end.
            let next = self.higher(base);
            if next != NIL && self.node(next).base < new_end {
                return Err(());
            }
        }
        self.node_mut(n).end = new_end;
        // The tree shape is unchanged; only the summaries on the path to `n` are stale.
        self.resummarize_path(self.root, base);
        Ok(())
    }

    /// The entry containing `addr`: `(base, len, &value)`. O(log n).
    pub fn find(&self, addr: usize) -> Option<(usize, usize, &V)> {
        let n = self.first_ending_after(addr);
        (n != NIL && self.node(n).base <= addr).then(|| self.entry(n))
    }

    /// The entry containing `addr`: `(base, len, &mut value)`. O(log n).
    pub fn find_mut(&mut self, addr: usize) -> Option<(usize, usize, &mut V)> {
        let n = self.first_ending_after(addr);
        if n == NIL || self.node(n).base > addr {
            return None;
        }
        let node = self.node_mut(n);
        Some((node.base, node.len(), &mut node.value))
    }

    /// The entries intersecting `[start, end)`, in base order, as `(base, len, &value)`.
    ///
    /// Empty if `start >= end`. Entries that merely touch the window (end at `start` or begin at
    /// `end`) are not included. O(log n + k) for k results; allocates nothing.
    pub fn overlapping(
        &self,
        start: usize,
        end: usize,
    ) -> impl Iterator<Item = (usize, usize, &V)> + '_ {
        if start >= end {
            Iter::empty(self)
        } else {
            Iter::new(self, start, end)
        }
    }

    /// The bases of the entries intersecting `[start, end)`, in order — handy when the caller
    /// goes on to mutate the tree. O(log n + k).
    pub fn overlapping_bases(&self, start: usize, end: usize) -> Vec<usize> {
        self.overlapping(start, end)
            .map(|(base, _, _)| base)
            .collect()
    }

    /// All entries in base order, as `(base, len, &value)`. O(n) in total; allocates nothing.
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize, &V)> + '_ {
        // Every entry lies in the span, so "all entries" = "entries ending above range_base and
        // starting below range_end".
        Iter::new(self, self.range_base, self.range_end)
    }

    /// True if `[start, start + len)` lies inside the span and touches no entry (adjacent entries
    /// are fine). False if `len == 0` or `start + len` overflows. O(log n).
    pub fn is_free(&self, start: usize, len: usize) -> bool {
        if len == 0 {
            return false;
        }
        let Some(end) = start.checked_add(len) else {
            return false;
        };
        if start < self.range_base || end > self.range_end {
            return false;
        }
        // The first entry ending above `start` is the only candidate for an overlap: all earlier
        // entries end at or before `start`, all later ones start after it ends.
        let n = self.first_ending_after(start);
        n == NIL || self.node(n).base >= end
    }

    /// The lowest base `b` such that `[b, b + len)` is free, `b` is a multiple of `align` (an
    /// absolute address alignment), and `lo <= b`, `b + len <= hi`, where `lo` is raised to the
    /// span base and `hi` lowered to the span end.
    ///
    /// `align == 0` is treated as 1; an `align` that is not a power of two, `len == 0`, or an empty
    /// window give `None`, as does the absence of any such spot. O(log n) when `align` divides
    /// every entry boundary; coarser alignments may visit more gaps (see the module docs).
    pub fn first_fit(&self, len: usize, align: usize, lo: usize, hi: usize) -> Option<usize> {
        let q = FitQuery::new(self, len, align, lo, hi)?;
        if self.root == NIL {
            q.first_in_gap(self.range_base, self.range_end)
        } else {
            self.first_fit_in(self.root, self.range_base, self.range_end, &q)
        }
    }

    /// The highest base satisfying the same conditions as [`first_fit`](Self::first_fit), with
    /// the same argument handling and cost.
    pub fn last_fit(&self, len: usize, align: usize, lo: usize, hi: usize) -> Option<usize> {
        let q = FitQuery::new(self, len, align, lo, hi)?;
        if self.root == NIL {
            q.last_in_gap(self.range_base, self.range_end)
        } else {
            self.last_fit_in(self.root, self.range_base, self.range_end, &q)
        }
    }

    /// The largest free gap anywhere in the span, including the gaps before the first and after
    /// the last entry; the whole span length when empty. O(1).
    pub fn max_gap(&self) -> usize {
        if self.root == NIL {
            return self.range_end - self.range_base;
        }
        let root = self.node(self.root);
        max(
            root.subtree_max_gap,
            max(
                root.subtree_min_base - self.range_base,
                self.range_end - root.subtree_max_end,
            ),
        )
    }

    /// The entry with the greatest base `<= addr` (it may or may not contain `addr`). O(log n).
    pub fn prev_entry(&self, addr: usize) -> Option<(usize, usize, &V)> {
        let mut n = self.root;
        let mut best = NIL;
        while n != NIL {
            let node = self.node(n);
            if node.base <= addr {
                best = n;
                n = node.right;
            } else {
                n = node.left;
            }
        }
        (best != NIL).then(|| self.entry(best))
    }

    /// The entry with the smallest base `> addr`. O(log n).
    pub fn next_entry(&self, addr: usize) -> Option<(usize, usize, &V)> {
        let n = self.higher(addr);
        (n != NIL).then(|| self.entry(n))
    }

    /// Recomputes everything from scratch and compares it with what is stored: entries in strictly
    /// increasing base order, non-empty, non-overlapping and inside the span; AVL balance and
    /// stored heights; the three subtree summaries; the entry count; and the arena (every slot is
    /// either reachable from the root exactly once or on the free list exactly once). O(n); meant
    /// for tests and debug assertions. Returns a description of the first violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.range_base > self.range_end {
            return Err(format!(
                "span base {:#x} above span end {:#x}",
                self.range_base, self.range_end
            ));
        }
        let mut seen = vec![false; self.slots.len()];
        let mut last_end: Option<usize> = None;
        let mut count = 0usize;
        if self.root != NIL {
            self.check_subtree(self.root, 1, &mut seen, &mut last_end, &mut count)?;
        }
        if count != self.len {
            return Err(format!(
                "len is {} but the tree holds {count} entries",
                self.len
            ));
        }
        // The free list: every entry a Free slot, no slot twice (which also rules out cycles).
        let mut free_count = 0usize;
        let mut f = self.free_head;
        while f != NIL {
            let Some(slot) = self.slots.get(f as usize) else {
                return Err(format!("free list points outside the arena: {f}"));
            };
            if seen[f as usize] {
                return Err(format!(
                    "slot {f} is on the free list twice or also in the tree"
                ));
            }
            seen[f as usize] = true;
            match slot {
                Slot::Free { next_free } => f = *next_free,
                Slot::Used(_) => return Err(format!("free list reaches used slot {f}")),
            }
            free_count += 1;
        }
        if count + free_count != self.slots.len() {
            return Err(format!(
                "arena has {} slots but {count} are in the tree and {free_count} free",
                self.slots.len()
            ));
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------------
    // Arena.

    /// The live node at index `i`. Panics only if an internal link is corrupt.
    fn node(&self, i: u32) -> &Node<V> {
        match &self.slots[i as usize] {
            Slot::Used(node) => node,
            Slot::Free { .. } => unreachable!("gap_tree: link to free slot {i}"),
        }
    }

    /// The live node at index `i`, mutably. Panics only if an internal link is corrupt.
    fn node_mut(&mut self, i: u32) -> &mut Node<V> {
        match &mut self.slots[i as usize] {
            Slot::Used(node) => node,
            Slot::Free { .. } => unreachable!("gap_tree: link to free slot {i}"),
        }
    }

    /// Puts `node` into a free slot (recycled first, else a new one); gives it back on failure.
    fn alloc_node(&mut self, node: Node<V>) -> Result<u32, Node<V>> {
        if self.free_head != NIL {
            let i = self.free_head;
            let slot = core::mem::replace(&mut self.slots[i as usize], Slot::Used(node));
            match slot {
                Slot::Free { next_free } => self.free_head = next_free,
                Slot::Used(_) => unreachable!("gap_tree: free list reaches used slot {i}"),
            }
            return Ok(i);
        }
        let i = match u32::try_from(self.slots.len()) {
            Ok(i) if i != NIL => i,
            _ => return Err(node),
        };
        if self.slots.try_reserve(1).is_err() {
            return Err(node);
        }
        self.slots.push(Slot::Used(node));
        Ok(i)
    }

    /// Moves the node out of slot `i` and puts the slot on the free list.
    fn free_node(&mut self, i: u32) -> Node<V> {
        let next_free = self.free_head;
        let slot = core::mem::replace(&mut self.slots[i as usize], Slot::Free { next_free });
        self.free_head = i;
        match slot {
            Slot::Used(node) => node,
            Slot::Free { .. } => unreachable!("gap_tree: freeing free slot {i}"),
        }
    }

    /// `(base, len, &value)` of node `n`.
    fn entry(&self, n: u32) -> (usize, usize, &V) {
        let node = self.node(n);
        (node.base, node.len(), &node.value)
    }

    // ---------------------------------------------------------------------------------------------
    // Searches (all iterative, one root-to-leaf walk).

    /// The node whose base is exactly `base`, or [`NIL`].
    fn lookup(&self, base: usize) -> u32 {
        let mut n = self.root;
        while n != NIL {
            let node = self.node(n);
            if base < node.base {
                n = node.left;
            } else if base > node.base {
                n = node.right;
            } else {
                return n;
            }
        }
        NIL
    }

    /// The node with the smallest base `> addr`, or [`NIL`].
    fn higher(&self, addr: usize) -> u32 {
        let mut n = self.root;
        let mut best = NIL;
        while n != NIL {
            let node = self.node(n);
            if node.base > addr {
                best = n;
                n = node.left;
            } else {
                n = node.right;
            }
        }
        best
    }

    /// The leftmost node whose end is `> addr`, or [`NIL`]. A binary search because entries don't
    /// overlap, so ends increase with bases.
    fn first_ending_after(&self, addr: usize) -> u32 {
        let mut n = self.root;
        let mut best = NIL;
        while n != NIL {
            let node = self.node(n);
            if node.end > addr {
                best = n;
                n = node.left;
            } else {
                n = node.right;
            }
        }
        best
    }

    // ---------------------------------------------------------------------------------------------
    // AVL maintenance.

    /// What subtree `n` looks like to its parent; `None` for the empty subtree.
    fn summary(&self, n: u32) -> Option<Summary> {
        (n != NIL).then(|| {
            let node = self.node(n);
            Summary {
                height: node.height,
                min_base: node.subtree_min_base,
                max_end: node.subtree_max_end,
                max_gap: node.subtree_max_gap,
            }
        })
    }

    fn height(&self, n: u32) -> u8 {
        self.summary(n).map_or(0, |s| s.height)
    }

    /// Recomputes the height and the summary of `n` from its children. O(1).
    fn resummarize(&mut self, n: u32) {
        let (left, right) = {
            let node = self.node(n);
            (self.summary(node.left), self.summary(node.right))
        };
        let node = self.node_mut(n);
        let (base, end) = (node.base, node.end);
        let hl = left.map_or(0, |s| s.height);
        let hr = right.map_or(0, |s| s.height);
        node.height = max(hl, hr) + 1;
        node.subtree_min_base = left.map_or(base, |l| l.min_base);
        node.subtree_max_end = right.map_or(end, |r| r.max_end);
        // The gap between the left subtree and this entry, and between this entry and the right
        // subtree, plus the gaps inside the two subtrees. Ordering makes the subtractions exact;
        // saturating keeps a corrupt tree from panicking (check_invariants reports it instead).
        let mut gap = 0;
        if let Some(l) = left {
            gap = max(gap, max(l.max_gap, base.saturating_sub(l.max_end)));
        }
        if let Some(r) = right {
            gap = max(gap, max(r.max_gap, r.min_base.saturating_sub(end)));
        }
        node.subtree_max_gap = gap;
    }

    /// ```text
    ///       n            l
    ///      / \          / \
    ///     l   c   ->   a   n
    ///    / \              / \
    ///   a   b            b   c
    /// ```
    /// Returns the new subtree root `l`.
    fn rotate_right(&mut self, n: u32) -> u32 {
        let l = self.node(n).left;
        let b = self.node(l).right;
        self.node_mut(n).left = b;
        self.node_mut(l).right = n;
        self.resummarize(n); // n is now below l: summarise it first.
        self.resummarize(l);
        l
    }

    /// Mirror image of [`rotate_right`](Self::rotate_right). Returns the new subtree root.
    fn rotate_left(&mut self, n: u32) -> u32 {
        let r = self.node(n).right;
        let b = self.node(r).left;
        self.node_mut(n).right = b;
        self.node_mut(r).left = n;
        self.resummarize(n);
        self.resummarize(r);
        r
    }

    /// Re-summarises `n` (whose children are valid AVL trees differing in height by at most 2) and
    /// restores the AVL balance with one or two rotations. Returns the new subtree root.
    fn rebalance(&mut self, n: u32) -> u32 {
        self.resummarize(n);
        let (l, r) = (self.node(n).left, self.node(n).right);
        let (hl, hr) = (self.height(l), self.height(r));
        if hl > hr + 1 {
            // Left-heavy. If the left child leans right, first turn that into a left lean.
            let (ll, lr) = (self.node(l).left, self.node(l).right);
            if self.height(ll) < self.height(lr) {
                let new_l = self.rotate_left(l);
                self.node_mut(n).left = new_l;
            }
            self.rotate_right(n)
        } else if hr > hl + 1 {
            let (rl, rr) = (self.node(r).left, self.node(r).right);
            if self.height(rr) < self.height(rl) {
                let new_r = self.rotate_right(r);
                self.node_mut(n).right = new_r;
            }
            self.rotate_left(n)
        } else {
            n
        }
    }

    /// Inserts leaf `new` (whose base is not in the tree) into subtree `n`; returns the new root.
    /// Recursion depth is the tree height, at most [`MAX_HEIGHT`].
    fn insert_at(&mut self, n: u32, new: u32) -> u32 {
        if n == NIL {
            return new;
        }
        if self.node(new).base < self.node(n).base {
            let l = self.insert_at(self.node(n).left, new);
            self.node_mut(n).left = l;
        } else {
            let r = self.insert_at(self.node(n).right, new);
            self.node_mut(n).right = r;
        }
        self.rebalance(n)
    }

    /// Unlinks the node with base `base` from subtree `n`. Returns `(new subtree root, unlinked
    /// node)`, the latter [`NIL`] (and the subtree untouched) if `base` is absent.
    fn remove_at(&mut self, n: u32, base: usize) -> (u32, u32) {
        if n == NIL {
            return (NIL, NIL);
        }
        let (node_base, left, right) = {
            let node = self.node(n);
            (node.base, node.left, node.right)
        };
        if base != node_base {
            let go_left = base < node_base;
            let (child, removed) = self.remove_at(if go_left { left } else { right }, base);
            if removed == NIL {
                return (n, NIL);
            }
            if go_left {
                self.node_mut(n).left = child;
            } else {
                self.node_mut(n).right = child;
            }
            return (self.rebalance(n), removed);
        }
        // `n` is the node to unlink. With at most one child, that child takes its place.
        if left == NIL {
            return (right, n);
        }
        if right == NIL {
            return (left, n);
        }
        // Two children: the in-order successor (the minimum of the right subtree) takes its place.
        let (rest, successor) = self.unlink_min(right);
        let s = self.node_mut(successor);
        s.left = left;
        s.right = rest;
        (self.rebalance(successor), n)
    }

    /// Unlinks the leftmost node of non-empty subtree `n`: `(new subtree root, unlinked node)`.
    fn unlink_min(&mut self, n: u32) -> (u32, u32) {
        let (left, right) = (self.node(n).left, self.node(n).right);
        if left == NIL {
            return (right, n);
        }
        let (new_left, min) = self.unlink_min(left);
        self.node_mut(n).left = new_left;
        (self.rebalance(n), min)
    }

    /// Re-summarises every node on the path from `n` down to the node based at `base`, bottom-up.
    fn resummarize_path(&mut self, n: u32, base: usize) {
        if n == NIL {
            return;
        }
        let node = self.node(n);
        if base < node.base {
            self.resummarize_path(node.left, base);
        } else if base > node.base {
            self.resummarize_path(node.right, base);
        }
        self.resummarize(n);
    }

    // ---------------------------------------------------------------------------------------------
    // Fit search.

    /// Lowest fit among the gaps of subtree `n` (non-empty), where `prev_end` is the end of the
    /// entry just before the subtree (or `range_base`) and `next_base` the base of the entry just
    /// after it (or `range_end`): the gaps considered are `[prev_end, first base)`, those inside
    /// the subtree, and `[last end, next_base)`. Recursion depth is the tree height.
    fn first_fit_in(
        &self,
        n: u32,
        prev_end: usize,
        next_base: usize,
        q: &FitQuery,
    ) -> Option<usize> {
        let node = self.node(n);
        if !q.worth_visiting(node, prev_end, next_base) {
            return None;
        }
        let below = if node.left != NIL {
            self.first_fit_in(node.left, prev_end, node.base, q)
        } else {
            q.first_in_gap(prev_end, node.base)
        };
        below.or_else(|| {
            if node.right != NIL {
                self.first_fit_in(node.right, node.end, next_base, q)
            } else {
                q.first_in_gap(node.end, next_base)
            }
        })
    }

    /// Mirror image of [`first_fit_in`](Self::first_fit_in): highest gaps first.
    fn last_fit_in(
        &self,
        n: u32,
        prev_end: usize,
        next_base: usize,
        q: &FitQuery,
    ) -> Option<usize> {
        let node = self.node(n);
        if !q.worth_visiting(node, prev_end, next_base) {
            return None;
        }
        let above = if node.right != NIL {
            self.last_fit_in(node.right, node.end, next_base, q)
        } else {
            q.last_in_gap(node.end, next_base)
        };
        above.or_else(|| {
            if node.left != NIL {
                self.last_fit_in(node.left, prev_end, node.base, q)
            } else {
                q.last_in_gap(prev_end, node.base)
            }
        })
    }

    // ---------------------------------------------------------------------------------------------
    // Invariant checking.

    /// Checks subtree `n` (at `depth`, root = 1), visiting entries in order; returns its summary
    /// as recomputed from scratch (never trusting stored values).
    fn check_subtree(
        &self,
        n: u32,
        depth: usize,
        seen: &mut [bool],
        last_end: &mut Option<usize>,
        count: &mut usize,
    ) -> Result<Summary, String> {
        if depth > MAX_HEIGHT {
            return Err(format!("tree deeper than {MAX_HEIGHT} at node {n}"));
        }
        let node = match self.slots.get(n as usize) {
            None => return Err(format!("link to {n} outside the arena")),
            Some(Slot::Free { .. }) => return Err(format!("link to free slot {n}")),
            Some(Slot::Used(node)) => node,
        };
        if seen[n as usize] {
            return Err(format!("node {n} reachable twice"));
        }
        seen[n as usize] = true;

        let left = if node.left != NIL {
            Some(self.check_subtree(node.left, depth + 1, seen, last_end, count)?)
        } else {
            None
        };

        // In-order visit of this entry.
        let (base, end) = (node.base, node.end);
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
        if let Some(prev_end) = *last_end {
            if base < prev_end {
                return Err(format!(
                    "entry {base:#x} out of order or overlapping previous end {prev_end:#x}"
                ));
            }
        }
        *last_end = Some(end);
        *count += 1;

        let right = if node.right != NIL {
            Some(self.check_subtree(node.right, depth + 1, seen, last_end, count)?)
        } else {
            None
        };

        let hl = left.map_or(0, |s| s.height);
        let hr = right.map_or(0, |s| s.height);
        if hl.abs_diff(hr) > 1 {
            return Err(format!("node {base:#x} unbalanced: heights {hl} / {hr}"));
        }
        let mut gap = 0;
        if let Some(l) = left {
            gap = max(gap, max(l.max_gap, base - l.max_end));
        }
        if let Some(r) = right {
            gap = max(gap, max(r.max_gap, r.min_base - end));
        }
        let actual = Summary {
            height: max(hl, hr) + 1,
            min_base: left.map_or(base, |l| l.min_base),
            max_end: right.map_or(end, |r| r.max_end),
            max_gap: gap,
        };
        let stored = (
            node.height,
            node.subtree_min_base,
            node.subtree_max_end,
            node.subtree_max_gap,
        );
        let expected = (
            actual.height,
            actual.min_base,
            actual.max_end,
            actual.max_gap,
        );
        if stored != expected {
            return Err(format!(
                "node {base:#x}: stored (height, min_base, max_end, max_gap) = {stored:x?}, \
                 recomputed {expected:x?}"
            ));
        }
        Ok(actual)
    }
}

impl<V> Default for GapTree<V> {
    /// An empty tree over the span `[0, 0)` — holds nothing until replaced.
    fn default() -> Self {
        Self::new(0, 0)
    }
}

impl<V: core::fmt::Debug> core::fmt::Debug for GapTree<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        struct Entries<'a, V>(&'a GapTree<V>);
        impl<V: core::fmt::Debug> core::fmt::Debug for Entries<'_, V> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(base, len, v)| {
                        (format!("[{base:#x}, {:#x})", base.wrapping_add(len)), v)
                    }))
                    .finish()
            }
        }
        f.debug_struct("GapTree")
            .field("range_base", &format_args!("{:#x}", self.range_base))
            .field("range_end", &format_args!("{:#x}", self.range_end))
            .field("entries", &Entries(self))
            .finish()
    }
}

/// A validated fit request: `len >= 1`, `align` a power of two, `lo < hi` clamped to the span.
struct FitQuery {
    len: usize,
    align: usize,
    lo: usize,
    hi: usize,
}

impl FitQuery {
    /// Validates and clamps the arguments of `first_fit` / `last_fit`; `None` if nothing can fit.
    fn new<V>(tree: &GapTree<V>, len: usize, align: usize, lo: usize, hi: usize) -> Option<Self> {
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

    /// Could the gaps of `node`'s subtree (bounded by `prev_end` / `next_base`, see
    /// [`GapTree::first_fit_in`]) hold a fit? False means the subtree can be skipped.
    fn worth_visiting<V>(&self, node: &Node<V>, prev_end: usize, next_base: usize) -> bool {
        // The part of the window these gaps can reach must be at least `len` long...
        let reach = min(next_base, self.hi).saturating_sub(max(prev_end, self.lo));
        if reach < self.len {
            return false;
        }
        // ...and so must the largest of these gaps.
        let largest = max(
            node.subtree_max_gap,
            max(
                node.subtree_min_base.saturating_sub(prev_end),
                next_base.saturating_sub(node.subtree_max_end),
            ),
        );
        largest >= self.len
    }

    /// Lowest aligned spot for `len` bytes in the free gap `[gap_start, gap_end)` within the
    /// window.
    fn first_in_gap(&self, gap_start: usize, gap_end: usize) -> Option<usize> {
        let start = max(gap_start, self.lo);
        let end = min(gap_end, self.hi);
        let b = start.checked_add(self.align - 1)? & !(self.align - 1);
        (b.checked_add(self.len)? <= end).then_some(b)
    }

    /// Highest aligned spot for `len` bytes in the free gap `[gap_start, gap_end)` within the
    /// window.
    fn last_in_gap(&self, gap_start: usize, gap_end: usize) -> Option<usize> {
        let start = max(gap_start, self.lo);
        let end = min(gap_end, self.hi);
        let b = end.checked_sub(self.len)? & !(self.align - 1);
        (b >= start).then_some(b)
    }
}

/// In-order iterator over the entries that end above some `start` and begin below `stop`.
///
/// The stack holds the nodes still to be visited whose left subtrees are done — at most one per
/// level, hence at most [`MAX_HEIGHT`].
struct Iter<'a, V> {
    tree: &'a GapTree<V>,
    stack: [u32; MAX_HEIGHT],
    depth: usize,
    stop: usize,
}

impl<'a, V> Iter<'a, V> {
    fn empty(tree: &'a GapTree<V>) -> Self {
        Iter {
            tree,
            stack: [NIL; MAX_HEIGHT],
            depth: 0,
            stop: 0,
        }
    }

    /// Positioned at the first entry whose end is above `start` (the same walk as
    /// `first_ending_after`, remembering the nodes where it went left).
    fn new(tree: &'a GapTree<V>, start: usize, stop: usize) -> Self {
        let mut it = Iter::empty(tree);
        it.stop = stop;
        let mut n = tree.root;
        while n != NIL {
            let node = tree.node(n);
            if node.end > start {
                it.push(n);
                n = node.left;
            } else {
                n = node.right;
            }
        }
        it
    }

    fn push(&mut self, n: u32) {
        // Cannot overflow: every pushed node is a strict descendant of the previous one still on
        // the stack, and the tree is at most MAX_HEIGHT deep. Guarded anyway rather than indexed.
        if let Some(slot) = self.stack.get_mut(self.depth) {
            *slot = n;
            self.depth += 1;
        }
    }
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (usize, usize, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let tree = self.tree;
        self.depth = self.depth.checked_sub(1)?;
        let node = tree.node(self.stack[self.depth]);
        if node.base >= self.stop {
            self.depth = 0;
            return None;
        }
        // The successor is the leftmost node of the right subtree (if any), else the top of stack.
        let mut n = node.right;
        while n != NIL {
            self.push(n);
            n = tree.node(n).left;
        }
        Some((node.base, node.len(), &node.value))
    }
}

impl<V> FusedIterator for Iter<'_, V> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const PAGE: usize = 0x1000;
    const GIB: usize = 1 << 30;

    fn tree(entries: &[(usize, usize)]) -> GapTree<u32> {
        let mut t = GapTree::new(0x10_0000, 0x100_0000);
        for (i, &(b, l)) in entries.iter().enumerate() {
            assert!(t.insert(b, l, i as u32).is_ok(), "insert {b:#x}+{l:#x}");
        }
        t.check_invariants().unwrap();
        t
    }

    fn collect(t: &GapTree<u32>) -> Vec<(usize, usize, u32)> {
        t.iter().map(|(b, l, v)| (b, l, *v)).collect()
    }

    #[test]
    fn empty_tree() {
        let t: GapTree<u32> = GapTree::new(0x1000, 0x9000);
        assert_eq!(t.range_base(), 0x1000);
        assert_eq!(t.range_end(), 0xa000);
        assert_eq!(t.len(), 0);
        assert!(t.is_empty());
        assert_eq!(t.max_gap(), 0x9000);
        assert!(t.get(0x1000).is_none());
        assert!(t.find(0x1000).is_none());
        assert!(t.prev_entry(usize::MAX).is_none());
        assert!(t.next_entry(0).is_none());
        assert_eq!(t.iter().count(), 0);
        assert_eq!(t.overlapping(0, usize::MAX).count(), 0);
        assert_eq!(t.first_fit(0x9000, 1, 0, usize::MAX), Some(0x1000));
        assert_eq!(t.last_fit(0x1000, PAGE, 0, usize::MAX), Some(0x9000));
        assert_eq!(t.first_fit(0x9001, 1, 0, usize::MAX), None);
        assert!(t.is_free(0x1000, 0x9000));
        t.check_invariants().unwrap();
        let d: GapTree<u32> = GapTree::default();
        assert_eq!(d.max_gap(), 0);
        assert_eq!(d.first_fit(1, 1, 0, usize::MAX), None);
    }

    #[test]
    fn new_saturates_span() {
        let t: GapTree<u32> = GapTree::new(usize::MAX - 10, 100);
        assert_eq!(t.range_end(), usize::MAX);
        assert_eq!(t.max_gap(), 10);
        t.check_invariants().unwrap();
    }

    #[test]
    fn insert_rejections() {
        let mut t = tree(&[(0x20_0000, 0x1000)]);
        assert_eq!(t.insert(0x30_0000, 0, 1), Err(1), "len 0");
        assert_eq!(t.insert(0xf_f000, 0x1000, 2), Err(2), "below span");
        assert_eq!(t.insert(0xf_f000, 0x2000, 3), Err(3), "straddles span base");
        assert_eq!(
            t.insert(0x10f_f000, 0x2000, 4),
            Err(4),
            "straddles span end"
        );
        assert_eq!(t.insert(0x110_0000, 0x1000, 5), Err(5), "above span");
        assert_eq!(t.insert(usize::MAX, 1, 6), Err(6));
        assert_eq!(t.insert(0x30_0000, usize::MAX, 7), Err(7), "overflow");
        assert_eq!(t.insert(0x20_0000, 0x1000, 8), Err(8), "duplicate");
        assert_eq!(
            t.insert(0x1f_f000, 0x1001, 9),
            Err(9),
            "overlaps from the left"
        );
        assert_eq!(
            t.insert(0x20_0fff, 0x10, 10),
            Err(10),
            "overlaps from the right"
        );
        assert_eq!(t.insert(0x20_0100, 0x10, 11), Err(11), "contained");
        assert_eq!(t.insert(0x1f_0000, 0x10_0000, 12), Err(12), "containing");
        assert_eq!(t.len(), 1);
        // Touching on both sides and at both span edges is fine.
        assert_eq!(t.insert(0x1f_f000, 0x1000, 13), Ok(()));
        assert_eq!(t.insert(0x20_1000, 0x1000, 14), Ok(()));
        assert_eq!(t.insert(0x10_0000, 0x1000, 15), Ok(()));
        assert_eq!(t.insert(0x10f_f000, 0x1000, 16), Ok(()));
        t.check_invariants().unwrap();
        assert_eq!(
            collect(&t),
            vec![
                (0x10_0000, 0x1000, 15),
                (0x1f_f000, 0x1000, 13),
                (0x20_0000, 0x1000, 0),
                (0x20_1000, 0x1000, 14),
                (0x10f_f000, 0x1000, 16),
            ]
        );
    }

    #[test]
    fn insert_fills_whole_span_and_top_of_address_space() {
        let mut t = GapTree::new(usize::MAX - 0x3000, 0x3000);
        assert_eq!(t.insert(usize::MAX - 0x3000, 0x3000, 'a'), Ok(()));
        assert_eq!(t.max_gap(), 0);
        assert!(!t.is_free(usize::MAX - 1, 1));
        assert_eq!(
            t.find(usize::MAX - 1).map(|e| e.0),
            Some(usize::MAX - 0x3000)
        );
        assert!(t.find(usize::MAX).is_none());
        assert_eq!(t.first_fit(1, 1, 0, usize::MAX), None);
        assert_eq!(t.remove(usize::MAX - 0x3000), Some((0x3000, 'a')));
        let mut whole: GapTree<()> = GapTree::new(0, usize::MAX);
        assert_eq!(whole.insert(0, usize::MAX, ()), Ok(()));
        assert_eq!(whole.max_gap(), 0);
        assert_eq!(whole.find(usize::MAX - 1).map(|e| e.1), Some(usize::MAX));
        whole.check_invariants().unwrap();
    }

    #[test]
    fn remove_and_slot_reuse() {
        let mut t = tree(&[
            (0x20_0000, 0x1000),
            (0x30_0000, 0x2000),
            (0x40_0000, 0x3000),
        ]);
        assert_eq!(t.remove(0x30_0001), None);
        assert_eq!(t.remove(0x30_0000), Some((0x2000, 1)));
        assert_eq!(t.remove(0x30_0000), None);
        t.check_invariants().unwrap();
        assert_eq!(t.len(), 2);
        let slots = t.slots.len();
        assert_eq!(t.insert(0x50_0000, 0x1000, 7), Ok(()));
        assert_eq!(t.slots.len(), slots, "freed slot reused");
        t.check_invariants().unwrap();
        for b in [0x20_0000, 0x40_0000, 0x50_0000] {
            assert!(t.remove(b).is_some());
            t.check_invariants().unwrap();
        }
        assert!(t.is_empty());
        assert_eq!(t.max_gap(), 0x100_0000);
        assert_eq!(t.remove(0x20_0000), None);
    }

    #[test]
    fn get_and_get_mut_need_exact_base() {
        let mut t = tree(&[(0x20_0000, 0x3000)]);
        assert_eq!(t.get(0x20_0000), Some((0x3000, &0)));
        assert_eq!(t.get(0x20_1000), None);
        *t.get_mut(0x20_0000).unwrap().1 = 42;
        assert!(t.get_mut(0x20_0001).is_none());
        assert_eq!(t.get(0x20_0000), Some((0x3000, &42)));
    }

    #[test]
    fn set_len_shrink_and_grow() {
        let mut t = tree(&[(0x20_0000, 0x3000), (0x30_0000, 0x1000)]);
        assert_eq!(t.set_len(0x20_0000, 0x1000), Ok(()));
        t.check_invariants().unwrap();
        assert!(t.is_free(0x20_1000, 0x2000));
        assert_eq!(
            t.set_len(0x20_0000, 0x10_0000),
            Ok(()),
            "grow up to the neighbour"
        );
        t.check_invariants().unwrap();
        assert_eq!(
            t.set_len(0x20_0000, 0x10_1000),
            Err(()),
            "into the neighbour"
        );
        assert_eq!(t.set_len(0x20_0000, 0), Err(()));
        assert_eq!(t.set_len(0x20_0001, 0x1000), Err(()), "not a base");
        assert_eq!(t.set_len(0x30_0000, usize::MAX), Err(()), "overflow");
        assert_eq!(
            t.set_len(0x30_0000, 0xe0_0000),
            Ok(()),
            "up to the span end"
        );
        assert_eq!(
            t.set_len(0x30_0000, 0xe0_0001),
            Err(()),
            "past the span end"
        );
        assert_eq!(t.get(0x30_0000), Some((0xe0_0000, &1)));
        assert_eq!(t.max_gap(), 0x10_0000);
        t.check_invariants().unwrap();
    }

    #[test]
    fn find_edges() {
        let t = tree(&[
            (0x20_0000, 0x2000),
            (0x20_2000, 0x1000),
            (0x30_0000, 0x1000),
        ]);
        assert!(t.find(0x1f_ffff).is_none());
        assert_eq!(t.find(0x20_0000), Some((0x20_0000, 0x2000, &0)));
        assert_eq!(t.find(0x20_1fff), Some((0x20_0000, 0x2000, &0)));
        assert_eq!(t.find(0x20_2000), Some((0x20_2000, 0x1000, &1)));
        assert!(t.find(0x20_3000).is_none());
        assert_eq!(t.find(0x30_0fff).map(|e| e.0), Some(0x30_0000));
        assert!(t.find(0x30_1000).is_none());
        assert!(t.find(0).is_none());
        assert!(t.find(usize::MAX).is_none());
        let mut t = t;
        *t.find_mut(0x20_2800).unwrap().2 = 9;
        assert_eq!(t.get(0x20_2000), Some((0x1000, &9)));
        assert!(t.find_mut(0x20_3000).is_none());
    }

    #[test]
    fn overlapping_ranges() {
        let t = tree(&[
            (0x20_0000, 0x1000),
            (0x20_2000, 0x1000),
            (0x20_4000, 0x1000),
        ]);
        let bases = |s, e| t.overlapping_bases(s, e);
        assert_eq!(bases(0, usize::MAX), vec![0x20_0000, 0x20_2000, 0x20_4000]);
        assert_eq!(bases(0x20_0fff, 0x20_2001), vec![0x20_0000, 0x20_2000]);
        assert_eq!(
            bases(0x20_1000, 0x20_2000),
            Vec::<usize>::new(),
            "only touching"
        );
        assert_eq!(bases(0x20_1000, 0x20_4001), vec![0x20_2000, 0x20_4000]);
        assert_eq!(bases(0x20_2800, 0x20_2801), vec![0x20_2000]);
        assert_eq!(
            bases(0x20_4000, 0x20_4000),
            Vec::<usize>::new(),
            "start == end"
        );
        assert_eq!(
            bases(0x20_5000, 0x20_0000),
            Vec::<usize>::new(),
            "start > end"
        );
        assert_eq!(bases(usize::MAX - 1, usize::MAX), Vec::<usize>::new());
        let v: Vec<_> = t.overlapping(0x20_3000, 0x20_5000).collect();
        assert_eq!(v, vec![(0x20_4000, 0x1000, &2)]);
        let mut it = t.overlapping(0, usize::MAX);
        assert_eq!(it.by_ref().count(), 3);
        assert!(it.next().is_none(), "fused");
    }

    #[test]
    fn is_free_edges() {
        let t = tree(&[(0x20_0000, 0x1000), (0x20_2000, 0x1000)]);
        assert!(t.is_free(0x20_1000, 0x1000), "exactly the hole");
        assert!(!t.is_free(0x20_1000, 0x1001));
        assert!(!t.is_free(0x20_0fff, 0x1000));
        assert!(!t.is_free(0x20_1000, 0));
        assert!(!t.is_free(0x20_1000, usize::MAX));
        assert!(!t.is_free(usize::MAX, 1));
        assert!(t.is_free(0x10_0000, 0x10_0000), "from the span base");
        assert!(!t.is_free(0xf_ffff, 2), "below the span");
        assert!(t.is_free(0x20_3000, 0xef_d000), "to the span end");
        assert!(!t.is_free(0x20_3000, 0xef_d001), "past the span end");
        assert!(!t.is_free(0x1f_0000, 0x3_0000), "covers everything");
    }

    #[test]
    fn prev_and_next_entry() {
        let t = tree(&[(0x20_0000, 0x1000), (0x30_0000, 0x1000)]);
        assert!(t.prev_entry(0x1f_ffff).is_none());
        assert_eq!(t.prev_entry(0x20_0000).map(|e| e.0), Some(0x20_0000));
        assert_eq!(t.prev_entry(0x2f_ffff).map(|e| e.0), Some(0x20_0000));
        assert_eq!(t.prev_entry(usize::MAX).map(|e| e.0), Some(0x30_0000));
        assert_eq!(t.next_entry(0).map(|e| e.0), Some(0x20_0000));
        assert_eq!(t.next_entry(0x20_0000).map(|e| e.0), Some(0x30_0000));
        assert!(t.next_entry(0x30_0000).is_none());
        assert!(t.next_entry(usize::MAX).is_none());
    }

    #[test]
    fn max_gap_tracks_outer_and_inner_gaps() {
        let mut t = tree(&[(0x10_0000, 0x1000), (0x10f_f000, 0x1000)]);
        assert_eq!(t.max_gap(), 0xff_e000, "inner gap");
        assert_eq!(t.insert(0x80_0000, 0x1000, 2), Ok(()));
        assert_eq!(t.max_gap(), 0x10f_f000 - 0x80_1000, "upper inner gap");
        t.remove(0x10_0000);
        assert_eq!(
            t.max_gap(),
            0x10f_f000 - 0x80_1000,
            "leading gap is smaller"
        );
        t.remove(0x10f_f000);
        assert_eq!(t.max_gap(), 0x110_0000 - 0x80_1000, "trailing gap");
        t.check_invariants().unwrap();
    }

    #[test]
    fn first_and_last_fit_basics() {
        // Span [1 MiB, 17 MiB); holes: [1M, 2M) [2M+4K, 3M) [3M+8K, 17M).
        let t = tree(&[(0x20_0000, 0x1000), (0x30_0000, 0x2000)]);
        assert_eq!(t.first_fit(PAGE, PAGE, 0, usize::MAX), Some(0x10_0000));
        assert_eq!(t.last_fit(PAGE, PAGE, 0, usize::MAX), Some(0x10f_f000));
        assert_eq!(t.first_fit(0x10_0000, PAGE, 0, usize::MAX), Some(0x10_0000));
        assert_eq!(t.first_fit(0x10_0001, 1, 0, usize::MAX), Some(0x30_2000));
        assert_eq!(
            t.first_fit(0xff_000, PAGE, 0x20_0000, usize::MAX),
            Some(0x20_1000)
        );
        assert_eq!(t.first_fit(0xff_001, 1, 0x20_0000, 0x30_0000), None);
        assert_eq!(t.last_fit(0x1000, PAGE, 0, 0x30_0000), Some(0x2f_f000));
        assert_eq!(t.last_fit(0x1000, PAGE, 0, 0x30_0fff), Some(0x2f_f000));
        assert_eq!(t.last_fit(0x1000, PAGE, 0, 0x20_0800), Some(0x1f_f000));
        // Windows.
        assert_eq!(t.first_fit(0x800, 1, 0x20_0800, 0x20_1800), Some(0x20_1000));
        assert_eq!(t.last_fit(0x800, 1, 0x20_0800, 0x20_1800), Some(0x20_1000));
        assert_eq!(t.first_fit(0x801, 1, 0x20_0800, 0x20_1800), None);
        assert_eq!(
            t.first_fit(1, 1, 0x30_0000, 0x30_0000),
            None,
            "empty window"
        );
        assert_eq!(t.first_fit(1, 1, 0x30_0000, 0x20_0000), None, "lo > hi");
        assert_eq!(t.first_fit(1, 1, usize::MAX, usize::MAX), None);
        assert_eq!(t.last_fit(1, 1, 0, 0), None);
        // Degenerate arguments.
        assert_eq!(t.first_fit(0, 1, 0, usize::MAX), None);
        assert_eq!(
            t.first_fit(PAGE, 0, 0, usize::MAX),
            Some(0x10_0000),
            "align 0 = 1"
        );
        assert_eq!(
            t.first_fit(PAGE, 3, 0, usize::MAX),
            None,
            "not a power of two"
        );
        assert_eq!(t.last_fit(PAGE, 0x3000, 0, usize::MAX), None);
        assert_eq!(t.first_fit(usize::MAX, 1, 0, usize::MAX), None);
        assert_eq!(t.last_fit(usize::MAX, 1, 0, usize::MAX), None);
        assert_eq!(t.first_fit(1, 1 << (usize::BITS - 1), 0, usize::MAX), None);
    }

    #[test]
    fn fit_with_large_alignment() {
        // A 64 GiB span with small mappings scattered over it; 4 GiB alignment.
        let g4 = 4 * GIB;
        let mut t = GapTree::new(PAGE, 64 * GIB - PAGE);
        // Block every 4 GiB boundary below 32 GiB with a one-page mapping.
        for i in 1..8 {
            assert_eq!(t.insert(i * g4, PAGE, i), Ok(()));
        }
        t.check_invariants().unwrap();
        // Plenty of 2 GiB gaps, but none at a 4 GiB boundary before 32 GiB.
        assert_eq!(t.first_fit(2 * GIB, g4, 0, usize::MAX), Some(8 * g4));
        assert_eq!(t.last_fit(2 * GIB, g4, 0, usize::MAX), Some(15 * g4));
        assert_eq!(t.first_fit(2 * GIB, g4, 0, 8 * g4 + 2 * GIB - 1), None);
        assert_eq!(t.last_fit(2 * GIB, g4, 0, 8 * g4 + 2 * GIB), Some(8 * g4));
        // Page alignment finds the first hole right away.
        assert_eq!(t.first_fit(2 * GIB, PAGE, 0, usize::MAX), Some(PAGE));
        // Offsets below alignment: the span base is not 4 GiB-aligned, so 0 is not a candidate.
        assert_eq!(t.first_fit(PAGE, g4, 0, g4 + PAGE), None);
        assert_eq!(t.first_fit(PAGE, GIB, 0, usize::MAX), Some(GIB));
    }

    #[test]
    fn fit_near_top_of_address_space() {
        let top = usize::MAX - 0xfff; // the last page, [top, MAX)
        let mut t = GapTree::new(top - 0x10_0000, 0x10_0000 + 0xfff);
        assert_eq!(t.range_end(), usize::MAX);
        assert_eq!(t.last_fit(PAGE, PAGE, 0, usize::MAX), Some(top - PAGE));
        assert_eq!(t.last_fit(0xfff, 1, 0, usize::MAX), Some(top));
        assert_eq!(
            t.first_fit(PAGE, 1 << 40, 0, usize::MAX),
            None,
            "align-up would overflow"
        );
        assert_eq!(t.insert(top - PAGE, PAGE, 1), Ok(()));
        assert_eq!(t.first_fit(PAGE, PAGE, top - PAGE, usize::MAX), None);
        assert_eq!(t.first_fit(0xfff, 1, top - PAGE, usize::MAX), Some(top));
        assert_eq!(t.last_fit(PAGE, PAGE, 0, usize::MAX), Some(top - 2 * PAGE));
        t.check_invariants().unwrap();
    }

    #[test]
    fn iter_in_order_after_many_updates() {
        // A deterministic shuffle (multiplicative hash) of page-sized entries.
        let mut t = GapTree::new(0, 1 << 40);
        let n = 2000usize;
        for i in 0..n {
            let slot = (i * 7919) % n;
            assert_eq!(t.insert(slot * 2 * PAGE, PAGE, slot), Ok(()));
        }
        t.check_invariants().unwrap();
        let bases: Vec<usize> = t.iter().map(|e| e.0).collect();
        assert_eq!(bases, (0..n).map(|s| s * 2 * PAGE).collect::<Vec<_>>());
        for s in (0..n).step_by(3) {
            assert_eq!(t.remove(s * 2 * PAGE), Some((PAGE, s)));
        }
        t.check_invariants().unwrap();
        assert_eq!(t.iter().count(), n - n.div_ceil(3));
        // Slots 0, 3, 6, ... are gone: holes [0, 2P), [5P, 8P), [11P, 14P), ...
        assert_eq!(t.first_fit(2 * PAGE, PAGE, 0, usize::MAX), Some(0));
        assert_eq!(t.first_fit(3 * PAGE, PAGE, 0, usize::MAX), Some(5 * PAGE));
        assert_eq!(
            t.first_fit(3 * PAGE, PAGE, 6 * PAGE, usize::MAX),
            Some(11 * PAGE)
        );
        assert_eq!(t.last_fit(3 * PAGE, PAGE, 0, 11 * PAGE), Some(5 * PAGE));
    }

    #[test]
    fn height_stays_logarithmic() {
        // Sequential inserts are the worst case for an unbalanced tree; this is a sanity check
        // on the balancing, not a timing test.
        let mut t = GapTree::new(0, usize::MAX);
        let n = 1usize << 15;
        for i in 0..n {
            assert_eq!(t.insert(i * PAGE, PAGE, ()), Ok(()));
        }
        t.check_invariants().unwrap();
        let h = t.height(t.root) as f64;
        assert!(h <= 1.45 * (n as f64 + 2.0).log2(), "height {h}");
        assert_eq!(t.first_fit(PAGE, PAGE, 0, usize::MAX), Some(n * PAGE));
        assert_eq!(t.max_gap(), usize::MAX - n * PAGE);
        for i in (0..n).rev() {
            assert!(t.remove(i * PAGE).is_some());
        }
        t.check_invariants().unwrap();
        assert!(t.is_empty());
    }

    #[test]
    fn check_invariants_catches_corruption() {
        let mut t = tree(&[
            (0x20_0000, 0x1000),
            (0x30_0000, 0x1000),
            (0x40_0000, 0x1000),
        ]);
        let root = t.root;
        t.node_mut(root).subtree_max_gap += 1;
        assert!(t.check_invariants().is_err());
        t.node_mut(root).subtree_max_gap -= 1;
        t.check_invariants().unwrap();
        t.len += 1;
        assert!(t.check_invariants().is_err());
        t.len -= 1;
        let l = t.node(root).left;
        t.node_mut(l).end = 0x40_0001; // overlaps the root's entry
        assert!(t.check_invariants().is_err());
    }

    #[test]
    fn debug_output_lists_entries() {
        let t = tree(&[(0x20_0000, 0x1000)]);
        let s = format!("{t:?}");
        assert!(s.contains("[0x200000, 0x201000)"), "{s}");
    }

    // ---------------------------------------------------------------------------------------------
    // Property test against a BTreeMap model.

    mod model {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::Index;

        /// Span length in bytes; small so that collisions and brute-force fits are cheap.
        const SPAN: usize = 256;

        #[derive(Debug, Clone)]
        enum Op {
            Insert(usize, usize),
            Remove(Index, bool),
            SetLen(Index, usize),
            FirstFit(usize, u32, usize, usize),
            LastFit(usize, u32, usize, usize),
            IsFree(usize, usize),
            Find(usize),
            Overlapping(usize, usize),
            Neighbours(usize),
        }

        /// Offsets relative to the span base, reaching a bit below and above the span.
        fn offset() -> impl Strategy<Value = usize> {
            0..SPAN + 40
        }

        fn length() -> impl Strategy<Value = usize> {
            prop_oneof![
                6 => 0..8usize,
                3 => 0..48usize,
                1 => Just(usize::MAX),
                1 => Just(usize::MAX / 2 + 1),
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (offset(), length()).prop_map(|(b, l)| Op::Insert(b, l)),
                3 => (any::<Index>(), any::<bool>()).prop_map(|(i, e)| Op::Remove(i, e)),
                2 => (any::<Index>(), length()).prop_map(|(i, l)| Op::SetLen(i, l)),
                2 => (length(), 0..7u32, offset(), offset())
                    .prop_map(|(l, a, lo, hi)| Op::FirstFit(l, a, lo, hi)),
                2 => (length(), 0..7u32, offset(), offset())
                    .prop_map(|(l, a, lo, hi)| Op::LastFit(l, a, lo, hi)),
                2 => (offset(), length()).prop_map(|(s, l)| Op::IsFree(s, l)),
                2 => offset().prop_map(Op::Find),
                2 => (offset(), offset()).prop_map(|(s, e)| Op::Overlapping(s, e)),
                1 => offset().prop_map(Op::Neighbours),
            ]
        }

        /// The reference: base -> (len, value), with brute-force queries.
        struct Model {
            base: usize,
            end: usize,
            map: BTreeMap<usize, (usize, u32)>,
        }

        impl Model {
            fn is_free(&self, start: usize, len: usize) -> bool {
                let Some(end) = start.checked_add(len) else {
                    return false;
                };
                len != 0
                    && start >= self.base
                    && end <= self.end
                    && self
                        .map
                        .iter()
                        .all(|(&b, &(l, _))| end <= b || b + l <= start)
            }

            fn fits(&self, len: usize, align: usize, lo: usize, hi: usize) -> Vec<usize> {
                let align = align.max(1);
                let lo = lo.max(self.base);
                let hi = hi.min(self.end);
                (lo..hi)
                    .filter(|b| b % align == 0)
                    .filter(|&b| b.checked_add(len).is_some_and(|e| e <= hi))
                    .filter(|&b| self.is_free(b, len))
                    .collect()
            }
        }

        fn run(span_base: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
            let mut t: GapTree<u32> = GapTree::new(span_base, SPAN);
            let mut m = Model {
                base: span_base,
                end: t.range_end(),
                map: BTreeMap::new(),
            };
            // Offsets start 20 below the span; wrapping makes "below 0" mean "near usize::MAX".
            let addr = |off: usize| span_base.wrapping_add(off).wrapping_sub(20);
            let mut next_value = 0u32;
            for op in ops {
                match op {
                    Op::Insert(off, len) => {
                        let b = addr(off);
                        next_value += 1;
                        let ok = m.is_free(b, len);
                        let got = t.insert(b, len, next_value);
                        prop_assert_eq!(got.is_ok(), ok, "insert {:#x}+{:#x}", b, len);
                        if ok {
                            m.map.insert(b, (len, next_value));
                        } else {
                            prop_assert_eq!(got, Err(next_value));
                        }
                    }
                    Op::Remove(i, existing) => {
                        let b = if existing && !m.map.is_empty() {
                            *m.map.keys().nth(i.index(m.map.len())).unwrap()
                        } else {
                            addr(i.index(SPAN + 40))
                        };
                        prop_assert_eq!(t.remove(b), m.map.remove(&b));
                    }
                    Op::SetLen(i, new_len) => {
                        if m.map.is_empty() {
                            prop_assert_eq!(t.set_len(span_base, new_len), Err(()));
                            continue;
                        }
                        let b = *m.map.keys().nth(i.index(m.map.len())).unwrap();
                        let (old_len, v) = m.map.remove(&b).unwrap();
                        let ok = m.is_free(b, new_len);
                        prop_assert_eq!(t.set_len(b, new_len).is_ok(), ok);
                        m.map.insert(b, (if ok { new_len } else { old_len }, v));
                    }
                    Op::FirstFit(len, a, lo, hi) => {
                        let (align, lo, hi) = (1 << a >> 1, addr(lo), addr(hi));
                        let want = m.fits(len, align, lo, hi).first().copied();
                        prop_assert_eq!(t.first_fit(len, align, lo, hi), want);
                    }
                    Op::LastFit(len, a, lo, hi) => {
                        let (align, lo, hi) = (1 << a >> 1, addr(lo), addr(hi));
                        let want = m.fits(len, align, lo, hi).last().copied();
                        prop_assert_eq!(t.last_fit(len, align, lo, hi), want);
                    }
                    Op::IsFree(off, len) => {
                        let s = addr(off);
                        prop_assert_eq!(t.is_free(s, len), m.is_free(s, len));
                    }
                    Op::Find(off) => {
                        let a = addr(off);
                        let want = m
                            .map
                            .range(..=a)
                            .next_back()
                            .filter(|(&b, &(l, _))| a - b < l)
                            .map(|(&b, &(l, v))| (b, l, v));
                        let got = t.find(a).map(|(b, l, v)| (b, l, *v));
                        prop_assert_eq!(got, want);
                    }
                    Op::Overlapping(s, e) => {
                        let (s, e) = (addr(s), addr(e));
                        let want: Vec<_> = m
                            .map
                            .iter()
                            .filter(|(&b, &(l, _))| s < e && b < e && s < b + l)
                            .map(|(&b, &(l, v))| (b, l, v))
                            .collect();
                        let got: Vec<_> = t.overlapping(s, e).map(|(b, l, v)| (b, l, *v)).collect();
                        prop_assert_eq!(&got, &want);
                        let bases: Vec<_> = want.iter().map(|e| e.0).collect();
                        prop_assert_eq!(t.overlapping_bases(s, e), bases);
                    }
                    Op::Neighbours(off) => {
                        let a = addr(off);
                        let prev = m.map.range(..=a).next_back().map(|(&b, _)| b);
                        let next = m.map.range(a.saturating_add(1)..).next().map(|(&b, _)| b);
                        let next = if a == usize::MAX { None } else { next };
                        prop_assert_eq!(t.prev_entry(a).map(|e| e.0), prev);
                        prop_assert_eq!(t.next_entry(a).map(|e| e.0), next);
                    }
                }
                if let Err(e) = t.check_invariants() {
                    return Err(TestCaseError::fail(e));
                }
                prop_assert_eq!(t.len(), m.map.len());
                let all: Vec<_> = t.iter().map(|(b, l, v)| (b, l, *v)).collect();
                let want: Vec<_> = m.map.iter().map(|(&b, &(l, v))| (b, l, v)).collect();
                prop_assert_eq!(all, want);
                // max_gap: the largest hole, brute force over the sorted entries.
                let mut edge = m.base;
                let mut gap = 0;
                for (&b, &(l, _)) in &m.map {
                    gap = gap.max(b - edge);
                    edge = b + l;
                }
                prop_assert_eq!(t.max_gap(), gap.max(m.end - edge));
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn matches_btreemap_model(
                span_base in prop_oneof![
                    Just(0usize),
                    Just(0x1000usize),
                    Just(usize::MAX - SPAN),
                    Just(usize::MAX - SPAN + 1),
                    (0..usize::MAX / 2),
                ],
                ops in prop::collection::vec(op(), 1..120),
            ) {
                run(span_base, ops)?;
            }
        }
    }
}
