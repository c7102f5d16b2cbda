//! The node types of the gap tree and their local operations: [`Leaf`] (sorted entries, values
//! behind a slot permutation) and [`Internal`] (children with their subtree [`Summary`]), the
//! arena protocol ([`ArenaNode`], [`alloc_slot`], [`free_slot`]), the descent state ([`Path`],
//! [`Loc`]) and the in-node key search [`count_le`].

use alloc::vec::Vec;
use core::cmp::{max, min};

use super::{INNER_CAP, LEAF_CAP, MAX_HEIGHT, NIL};

/// "No entry" in the key arrays beyond a node's `len`. No real base is `usize::MAX` (a base is
/// below its end, which is at most `usize::MAX`), and searches clamp their key to
/// `usize::MAX - 1`, so a search over ALL the keys of a node (sorted, fillers last) never counts a filler:
/// the search does not even read `len`.
pub(super) const FILLER: usize = usize::MAX;

/// A leaf: up to [`LEAF_CAP`] entries in increasing base order. Entries `0..len` are live; beyond
/// `len`, `bases` and `ends` hold [`FILLER`].
///
/// Values never move while their entry lives: entry `i`'s value is `vals[slot[i]]`, where `slot`
/// is a permutation of `0..LEAF_CAP` whose tail `slot[len..]` lists the empty value slots.
/// Inserting or removing an entry shifts 16-byte `slot` and the keys, never the (much larger)
/// values, so an insert writes one value line instead of rotating up to 16 values (~10 cache
/// lines of a leaf the placement search has not read: `vals` is cold there; callgrind with a
/// 2 MiB last-level cache counts such a rotation as ~3 of the ~10 last-level misses of a map or
/// allocate at 100 000 mappings).
///
/// `repr(C, align(64))`: a lookup scans the 16 bases (an aligned pair of cache lines) and, when
/// it needs ends, the 16 ends (the next pair) with two independent counts (see
/// [`Leaf::is_free`]), so both pairs are fetched in parallel instead of one miss waiting for the
/// other; then `slot` (the line after the ends, with `len` and `next`) and one line of `vals`.
/// Without the attribute the fields may be reordered and a leaf sits at any 8-byte offset in the
/// arena, so its bases straddle three lines and its values two: callgrind counts ~0.5-1 more
/// last-level miss per lookup.
#[repr(C, align(64))]
pub(super) struct Leaf<V> {
    /// First byte of each entry (the key): the only array a search reads.
    pub(super) bases: [usize; LEAF_CAP],
    /// One past the last byte of each entry; `base < end <= range_end`.
    pub(super) ends: [usize; LEAF_CAP],
    /// Number of entries.
    pub(super) len: usize,
    /// The next leaf in key order, or [`NIL`] for the last one.
    pub(super) next: u32,
    /// Where each entry's value is in `vals`; a permutation of `0..LEAF_CAP`, `slot[len..]` the
    /// empty value slots.
    pub(super) slot: [u8; LEAF_CAP],
    /// The caller's data, in no particular order (`Some` exactly at `slot[..len]`).
    pub(super) vals: [Option<V>; LEAF_CAP],
}

/// The identity permutation: a fresh leaf's value slots.
pub(super) const IDENTITY: [u8; LEAF_CAP] = {
    let mut p = [0u8; LEAF_CAP];
    let mut i = 0;
    while i < LEAF_CAP {
        p[i] = i as u8;
        i += 1;
    }
    p
};

/// An internal node: up to [`INNER_CAP`] children in key order, with a summary of each child's
/// subtree. Children are leaves on the last internal level, internal nodes above it. Beyond `len`,
/// `min_base` holds [`FILLER`].
///
/// `repr(C, align(64))`: a descent reads `min_base` (an aligned pair of lines), one line of
/// `max_end` and one of `child`; `max_gap` is read only by fit searches.
#[repr(C, align(64))]
pub(super) struct Internal {
    /// Smallest base in each child's subtree; also the routing key.
    pub(super) min_base: [usize; INNER_CAP],
    /// Largest end in each child's subtree.
    pub(super) max_end: [usize; INNER_CAP],
    /// Arena index of each child.
    pub(super) child: [u32; INNER_CAP],
    /// Largest gap strictly between two entries of each child's subtree (0 if it has one entry).
    pub(super) max_gap: [usize; INNER_CAP],
    /// Number of children (at least 2 once built).
    pub(super) len: usize,
}

/// What the arenas need from a node type: a *vacant* state, which carries the free-list link.
///
/// Nodes are stored directly in the arena `Vec`s (no `enum { Used, Free }` wrapper): an enum tag
/// would sit on a cache line of its own and cost one more miss per level of every descent. A node
/// is vacant iff its `len` is 0 — a live leaf holds at least one entry and a live internal node at
/// least two children — and [`GapTree::check_invariants`](super::GapTree::check_invariants)
/// verifies that no link reaches a vacant node and that the free lists hold exactly the vacant
/// ones.
pub(super) trait ArenaNode: Sized {
    /// A vacant node linking to `next_free` on the free list.
    fn vacant(next_free: u32) -> Self;
    /// `Some(next_free)` if this node is vacant.
    fn vacancy(&self) -> Option<u32>;
}

impl<V> ArenaNode for Leaf<V> {
    fn vacant(next_free: u32) -> Self {
        let mut leaf = Leaf::new();
        leaf.next = next_free;
        leaf
    }

    fn vacancy(&self) -> Option<u32> {
        (self.len == 0).then_some(self.next)
    }
}

impl ArenaNode for Internal {
    fn vacant(next_free: u32) -> Self {
        let mut node = Internal::new();
        node.child[0] = next_free;
        node
    }

    fn vacancy(&self) -> Option<u32> {
        (self.len == 0).then_some(self.child[0])
    }
}

/// What a subtree looks like from its parent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Summary {
    pub(super) min_base: usize,
    pub(super) max_end: usize,
    pub(super) max_gap: usize,
}

impl<V> Leaf<V> {
    pub(super) fn new() -> Self {
        Leaf {
            bases: [FILLER; LEAF_CAP],
            ends: [FILLER; LEAF_CAP],
            len: 0,
            next: NIL,
            slot: IDENTITY,
            vals: core::array::from_fn(|_| None),
        }
    }

    /// Number of entries with base `<= key`: where `key` would be inserted.
    pub(super) fn rank(&self, key: usize) -> usize {
        count_le(&self.bases, key)
    }

    /// Number of entries with end `<= key`, for `key < usize::MAX`: those wholly at or below
    /// `key` (ends are sorted like bases, because entries don't overlap). A real end may be
    /// `usize::MAX`, like the fillers, so callers handle `key == usize::MAX` themselves (no entry
    /// contains or ends above that address).
    pub(super) fn ends_le(&self, key: usize) -> usize {
        debug_assert!(key < usize::MAX);
        count_le(&self.ends, key)
    }

    /// True if `[start, end)` (`start < end`) touches none of this leaf's entries: the entries
    /// ending at or before `start` must be exactly the entries starting before `end` (both sets
    /// are prefixes, the first inside the second; an entry in the difference overlaps). Two
    /// independent counts: no load waits for another.
    pub(super) fn is_free(&self, start: usize, end: usize) -> bool {
        self.ends_le(start) == self.rank(end - 1)
    }

    pub(super) fn summary(&self) -> Summary {
        let n = self.len;
        let mut gap = 0;
        for i in 1..n {
            // Ordering makes this exact; saturating keeps a corrupt tree from panicking
            // (check_invariants reports it instead).
            gap = max(gap, self.bases[i].saturating_sub(self.ends[i - 1]));
        }
        Summary {
            min_base: self.bases[0],
            max_end: self.ends[n - 1],
            max_gap: gap,
        }
    }

    /// Inserts at position `i` (requires `len < LEAF_CAP`).
    pub(super) fn insert(&mut self, i: usize, base: usize, end: usize, value: V) {
        let n = self.len;
        let s = self.slot[n]; // an empty value slot
        self.bases.copy_within(i..n, i + 1);
        self.ends.copy_within(i..n, i + 1);
        self.slot.copy_within(i..n, i + 1);
        self.bases[i] = base;
        self.ends[i] = end;
        self.slot[i] = s;
        self.vals[usize::from(s)] = Some(value);
        self.len = n + 1;
    }

    /// Removes and returns the entry at position `i < len`.
    pub(super) fn remove(&mut self, i: usize) -> (usize, usize, V) {
        let n = self.len;
        let (base, end, s) = (self.bases[i], self.ends[i], self.slot[i]);
        let value = self.vals[usize::from(s)].take();
        self.bases.copy_within(i + 1..n, i);
        self.bases[n - 1] = FILLER;
        self.ends.copy_within(i + 1..n, i);
        self.ends[n - 1] = FILLER;
        self.slot.copy_within(i + 1..n, i);
        self.slot[n - 1] = s; // now empty: joins the tail
        self.len = n - 1;
        (
            base,
            end,
            value.expect("gap_tree: empty value slot in a leaf"),
        )
    }

    /// Moves entries `at..len` into a new leaf (which takes over `next`).
    pub(super) fn split_off(&mut self, at: usize) -> Leaf<V> {
        let mut right = Leaf::new();
        let n = self.len;
        let k = n - at;
        right.bases[..k].copy_from_slice(&self.bases[at..n]);
        right.ends[..k].copy_from_slice(&self.ends[at..n]);
        // `right` has the identity permutation: its entry j goes to value slot j. Our moved
        // entries' slots, `slot[at..n]`, become empty and are already in our tail.
        for (dst, &s) in right.vals[..k].iter_mut().zip(&self.slot[at..n]) {
            *dst = self.vals[usize::from(s)].take();
        }
        right.len = k;
        self.bases[at..n].fill(FILLER);
        self.ends[at..n].fill(FILLER);
        self.len = at;
        right.next = self.next;
        right
    }

    /// Appends every entry of `right` (whose entries all come after ours; `len` must fit).
    pub(super) fn append(&mut self, right: &mut Leaf<V>) {
        let (n, k) = (self.len, right.len);
        self.bases[n..n + k].copy_from_slice(&right.bases[..k]);
        self.ends[n..n + k].copy_from_slice(&right.ends[..k]);
        // Our empty slots `slot[n..n + k]` receive `right`'s values; `right.slot` stays a
        // permutation whose slots are now all empty.
        for j in 0..k {
            let (d, s) = (self.slot[n + j], right.slot[j]);
            self.vals[usize::from(d)] = right.vals[usize::from(s)].take();
        }
        self.len = n + k;
        right.bases[..k].fill(FILLER);
        right.ends[..k].fill(FILLER);
        right.len = 0;
    }

    pub(super) fn entry(&self, i: usize) -> (usize, usize, &V) {
        let v = self.vals[usize::from(self.slot[i])]
            .as_ref()
            .expect("gap_tree: empty value slot in a leaf");
        (self.bases[i], self.ends[i] - self.bases[i], v)
    }
}

impl Internal {
    pub(super) fn new() -> Self {
        Internal {
            min_base: [FILLER; INNER_CAP],
            max_end: [0; INNER_CAP],
            child: [NIL; INNER_CAP],
            max_gap: [0; INNER_CAP],
            len: 0,
        }
    }

    /// The child whose subtree holds the greatest base `<= key` (child 0 if none does).
    pub(super) fn route(&self, key: usize) -> usize {
        count_le(&self.min_base, key).saturating_sub(1)
    }

    /// The end of whatever precedes child `i` and the base of whatever follows it: its siblings'
    /// summaries inside this node, the caller's `prev_end` / `next_base` at the node's edges.
    /// Together they bound the gaps at the two outer ends of child `i`'s subtree.
    pub(super) fn child_neighbours(
        &self,
        i: usize,
        prev_end: usize,
        next_base: usize,
    ) -> (usize, usize) {
        let pe = if i == 0 {
            prev_end
        } else {
            self.max_end[i - 1]
        };
        let nb = if i + 1 < self.len {
            self.min_base[i + 1]
        } else {
            next_base
        };
        (pe, nb)
    }

    pub(super) fn child_summary(&self, i: usize) -> Summary {
        Summary {
            min_base: self.min_base[i],
            max_end: self.max_end[i],
            max_gap: self.max_gap[i],
        }
    }

    pub(super) fn set_summary(&mut self, i: usize, s: Summary) {
        self.min_base[i] = s.min_base;
        self.max_end[i] = s.max_end;
        self.max_gap[i] = s.max_gap;
    }

    pub(super) fn summary(&self) -> Summary {
        let n = self.len;
        let mut gap = self.max_gap[0];
        for i in 1..n {
            gap = max(gap, self.max_gap[i]);
            gap = max(gap, self.min_base[i].saturating_sub(self.max_end[i - 1]));
        }
        Summary {
            min_base: self.min_base[0],
            max_end: self.max_end[n - 1],
            max_gap: gap,
        }
    }

    /// Inserts child `c` with summary `s` at position `i` (requires `len < INNER_CAP`).
    pub(super) fn insert(&mut self, i: usize, s: Summary, c: u32) {
        let n = self.len;
        self.min_base.copy_within(i..n, i + 1);
        self.max_end.copy_within(i..n, i + 1);
        self.max_gap.copy_within(i..n, i + 1);
        self.child.copy_within(i..n, i + 1);
        self.set_summary(i, s);
        self.child[i] = c;
        self.len = n + 1;
    }

    /// Removes the child at position `i < len`: `(its summary, its index)`.
    pub(super) fn remove(&mut self, i: usize) -> (Summary, u32) {
        let n = self.len;
        let out = (self.child_summary(i), self.child[i]);
        self.min_base.copy_within(i + 1..n, i);
        self.max_end.copy_within(i + 1..n, i);
        self.max_gap.copy_within(i + 1..n, i);
        self.child.copy_within(i + 1..n, i);
        self.min_base[n - 1] = FILLER;
        self.len = n - 1;
        out
    }

    /// Moves children `at..len` into a new node.
    pub(super) fn split_off(&mut self, at: usize) -> Internal {
        let mut right = Internal::new();
        let n = self.len;
        let k = n - at;
        right.min_base[..k].copy_from_slice(&self.min_base[at..n]);
        right.max_end[..k].copy_from_slice(&self.max_end[at..n]);
        right.max_gap[..k].copy_from_slice(&self.max_gap[at..n]);
        right.child[..k].copy_from_slice(&self.child[at..n]);
        right.len = k;
        self.min_base[at..n].fill(FILLER);
        self.len = at;
        right
    }

    /// Appends every child of `right` (`len` must fit).
    pub(super) fn append(&mut self, right: &Internal) {
        let (n, k) = (self.len, right.len);
        self.min_base[n..n + k].copy_from_slice(&right.min_base[..k]);
        self.max_end[n..n + k].copy_from_slice(&right.max_end[..k]);
        self.max_gap[n..n + k].copy_from_slice(&right.max_gap[..k]);
        self.child[n..n + k].copy_from_slice(&right.child[..k]);
        self.len = n + k;
    }
}

/// The internal nodes a descent went through, root first, and the child taken at each.
pub(super) struct Path {
    pub(super) nodes: [u32; MAX_HEIGHT],
    pub(super) slots: [u8; MAX_HEIGHT],
    pub(super) depth: usize,
}

impl Path {
    pub(super) fn new() -> Self {
        Path {
            nodes: [NIL; MAX_HEIGHT],
            slots: [0; MAX_HEIGHT],
            depth: 0,
        }
    }
}

/// Where a descent by some key ended.
#[derive(Clone, Copy)]
pub(super) struct Loc {
    /// The leaf reached ([`NIL`] for an empty tree).
    pub(super) leaf: u32,
    /// Entries of that leaf with base `<= key`.
    pub(super) pos: usize,
    /// End of the last entry before the leaf, or `range_base` if there is none.
    pub(super) prev_end: usize,
    /// Base of the first entry after the leaf, or `range_end` if there is none.
    pub(super) next_base: usize,
}

impl Summary {
    /// Placeholder for "no child" (never reached: nodes are checked to be non-empty first).
    pub(super) const EMPTY: Summary = Summary {
        min_base: 0,
        max_end: 0,
        max_gap: 0,
    };
}

/// Number of keys `<= key` among all `N` of a node's sorted keys (fillers included, never
/// counted): a binary search (`partition_point`, which the compiler makes branch-free with
/// conditional moves), 4 probes over 16 keys. The kernel target has no SIMD, so a linear count
/// is 16 compares and adds a node; under QEMU's TCG, where every guest instruction costs, the
/// search made a one-page protect among 100 mappings ~10% cheaper (docs/perf-log.md).
pub(super) fn count_le<const N: usize>(keys: &[usize; N], key: usize) -> usize {
    let key = min(key, FILLER - 1);
    keys.partition_point(|&b| b <= key)
}

/// Puts `node` into a vacant slot of `arena` (recycled first, else a new one). The caller
/// reserved room ([`GapTree::reserve`](super::GapTree::reserve)), so this never allocates.
pub(super) fn alloc_slot<T: ArenaNode>(arena: &mut Vec<T>, free_head: &mut u32, node: T) -> u32 {
    if *free_head != NIL {
        let i = *free_head;
        let slot = &mut arena[i as usize];
        match slot.vacancy() {
            Some(next_free) => *free_head = next_free,
            None => unreachable!("gap_tree: free list reaches live node {i}"),
        }
        *slot = node;
        return i;
    }
    let i = arena.len() as u32;
    arena.push(node);
    i
}

/// Moves the node out of slot `i`, leaving a vacant node on the free list.
pub(super) fn free_slot<T: ArenaNode>(arena: &mut [T], free_head: &mut u32, i: u32) -> T {
    let node = core::mem::replace(&mut arena[i as usize], T::vacant(*free_head));
    *free_head = i;
    node
}
