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
//! # The structure: a B+tree laid out for the cache
//!
//! It is a B+tree of order 16 ([`LEAF_CAP`], [`INNER_CAP`]): every entry sits in a *leaf* (up
//! to 16 entries, sorted), internal nodes only route (up to 16 children), all leaves are at the
//! same depth, and every node but the root is at least half full ([`LEAF_MIN`], [`INNER_MIN`] =
//! 8). The height is therefore at most `1 + log8(n)`: 5 levels for 100 000 entries, where a
//! binary tree has ~17-20.
//!
//! Why not a binary tree (this module was an AVL tree before): with 100 000 mappings the AVL
//! nodes (~100 bytes each, value inline) filled ~10 MB, every one of the ~18 levels of a descent
//! was a likely cache miss, and the benchmark (`cargo bench -p vm`) measured a lookup at
//! 100 000 entries ~6x slower than at 100. Here a descent reads, per level, one small sorted array
//! of 16 keys (two cache lines, binary-searched with conditional moves), and the internal levels are tiny and
//! contiguous (about 1/10 of the entries' size, all in one `Vec`), so they stay in the cache: a
//! lookup costs about one miss, in the leaf.
//!
//! Nodes live in two *arenas*: a `Vec` of leaves and a `Vec` of internal nodes, addressed by `u32`
//! indices, with vacated slots threaded onto intrusive free lists, so the tree needs no `unsafe`,
//! no `Box` per node and no parent pointers (an update records its root-to-leaf path on the stack,
//! at most [`MAX_HEIGHT`] levels, and fixes things up on the way back). Hot and cold data are
//! separated inside each node: a leaf keeps its bases, its ends and its values in three separate
//! arrays, so a search scans the 16 bases (and, when it needs them, the 16 ends, as an independent
//! count fetched in parallel) and reads one value at the end; an internal node's `max_gap` array
//! is read only by fit searches. Values never move inside a leaf: a small slot permutation
//! (`Leaf::slot`, 16 bytes) says where each entry's value sits, so inserting or removing an entry
//! shifts keys and bytes, not values (the values are the cold part a placement search never
//! reads; rotating them cost ~3 last-level misses per insert at 100 000 entries). Moving the
//! values out of the leaves altogether, into one slab, was measured and dropped: it shrinks the
//! leaves 2.5x but adds a dependent miss on another page to every lookup that needs the value
//! (fault). Nodes sit directly in the arena `Vec`s, without an enum tag that
//! would cost a cache line of its own per level (see `ArenaNode`). Leaves are chained in key order
//! (`next`), so iteration is a walk along the chain.
//!
//! # The augmentation
//!
//! An internal node keeps, for each child, a summary of the child's whole subtree:
//!
//! * `min_base` — the base of the subtree's first entry (also the routing key);
//! * `max_end` — the end of its last entry (entries don't overlap, so also the largest end);
//! * `max_gap` — the largest gap *strictly between* two entries of the subtree.
//!
//! A node's own summary follows from its entries (leaf) or its children's summaries (internal):
//!
//! ```text
//! max_gap(node) = max( max_gap(child i)                           for every child i,
//!                      min_base(child i) - max_end(child i - 1)   for i >= 1 )
//! ```
//!
//! (for a leaf: the largest `base[i] - end[i - 1]`). So an update recomputes the summaries on its
//! root-to-leaf path only, O(B) per level, and stops as soon as one comes out unchanged. The root's
//! summary is computed on demand from the root node; the two gaps at the outer ends of the span
//! belong to no pair of entries and are added using `range_base` and `range_end` (see
//! [`GapTree::max_gap`]). Zircon keeps the same three values on the WAVL tree of a VMAR's children
//! (`VmAddressRegionSubtreeState`: `min_first_byte`, `max_last_byte`, `max_gap`); we use exclusive
//! ends instead of inclusive last bytes, which means the byte at `usize::MAX` can never be covered —
//! irrelevant on x86_64, where it is never a user address.
//!
//! Keeping the summaries in the parent (rather than in the child) lets a descent also learn, for
//! free, the end of the entry just before the leaf it reaches and the base of the entry just after
//! it: so `is_free` and `insert` (which checks for overlap itself) are each ONE root-to-leaf walk.
//!
//! # Cost of each operation (n entries, B = the node order, 16)
//!
//! * `get`, `find`, `prev_entry`, `next_entry`, `is_free`: one root-to-leaf walk, O(B log_B n)
//!   comparisons, O(log_B n) cache lines: O(log n). `find` and `is_free` use the fact that,
//!   because entries don't overlap, *ends are sorted in the same order as bases*.
//! * `insert`, `remove`, `set_len`: one walk, then O(B) work per level on the way back (summaries,
//!   at most one split per level on insert, one merge or redistribution per level on remove):
//!   O(log n).
//! * `overlapping`, `iter`: one walk to the first hit, then along the leaf chain: O(log n + k) for
//!   k results, no allocation.
//! * `max_gap`: O(B), read off the root node.
//! * `first_fit` / `last_fit`: a depth-first search, lowest (highest) addresses first, that skips
//!   every subtree whose gaps — including the two gaps joining it to its neighbours outside the
//!   subtree — are all shorter than `len`, or which lies outside the `[lo, hi)` window. Subtrees
//!   cut by the window edges lie on the two root-to-leaf paths of `lo` and `hi`; a subtree wholly
//!   inside the window that survives the pruning is guaranteed to contain a fit *provided the
//!   alignment cannot push the spot out of its gap*, i.e. when `align` divides every entry
//!   boundary and `range_base` (the normal case: page-granular entries, page alignment). Then the
//!   search is O(B log n).
//!
//!   **Alignment caveat:** with an alignment coarser than the granularity of the entries (say,
//!   1 GiB alignment among 4 KiB mappings), a gap of `len` bytes or more may still hold no aligned
//!   spot. The pruning (`max gap >= len`) is only a necessary condition, so the search may descend
//!   into such subtrees, fail, and back out: the cost grows by O(log n) per such "big enough but
//!   misaligned" gap that precedes the answer, O(n) in the worst case. Every gap it does examine is
//!   checked exactly, so the answer is always correct.
//!
//! # Why not `alloc::collections::BTreeMap` or `intrusive-collections`?
//!
//! Neither has a hook to keep per-subtree data up to date across splits, merges or rotations, and
//! without the max-gap summaries a fit search degrades to a linear scan of all gaps.
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

/// "No node": the null index of both arenas.
const NIL: u32 = u32::MAX;

/// The most entries a leaf holds.
///
/// 16 keeps a leaf's key array at two cache lines (scanned without branches). The leaf and
/// internal orders are separate constants so the node sizes can be tuned apart: the sweep in
/// docs/vm.md ("Round 5") measured leaves of 8 to 64 entries against internal nodes of 16 to 64
/// children, and kept 16 / 16. At most 256 (`Leaf::slot` holds `u8` positions).
pub const LEAF_CAP: usize = 16;

/// The most children an internal node has; at least 16, so that [`INNER_MIN`] >= 8, which the
/// bound of [`MAX_HEIGHT`] relies on.
pub const INNER_CAP: usize = 16;

/// The fewest entries of any leaf but the root.
pub const LEAF_MIN: usize = LEAF_CAP / 2;

/// The fewest children of any internal node but the root.
pub const INNER_MIN: usize = INNER_CAP / 2;

const _: () = assert!(LEAF_CAP >= 4 && LEAF_CAP <= 256 && INNER_CAP >= 16);

/// Upper bound on the number of levels of any tree this module can build.
///
/// A tree of `h >= 2` levels has a root with at least 2 children and every other internal node at
/// least [`INNER_MIN`] = 8, so at least `2 * 8^(h - 2)` leaves. Leaves are indexed by `u32` (with
/// `u32::MAX` reserved for "no node"), so `2 * 8^(h - 2) < 2^32`, i.e. `h <= 12`. The path
/// buffers and the depth guard of [`GapTree::check_invariants`] rely on this bound (16, with
/// margin); `insert` refuses to grow past it rather than overflow a buffer.
pub const MAX_HEIGHT: usize = 16;

/// "No entry" in the key arrays beyond a node's `len`. No real base is `usize::MAX` (a base is
/// below its end, which is at most `usize::MAX`), and searches clamp their key to
/// `usize::MAX - 1`, so a search over ALL the keys of a node (sorted, fillers last) never counts a filler:
/// the search does not even read `len`.
const FILLER: usize = usize::MAX;

/// A leaf: up to [`LEAF_CAP`] entries in increasing base order. Entries `0..len` are live; beyond
/// `len`, `bases` and `ends` hold [`FILLER`].
///
/// Values never move while their entry lives: entry `i`'s value is `vals[slot[i]]`, where `slot`
/// is a permutation of `0..LEAF_CAP` whose tail `slot[len..]` lists the empty value slots.
/// Inserting or removing an entry shifts 16-byte `slot` and the keys, never the (much larger)
/// values: an insert used to rotate up to 16 values, i.e. ~10 cache lines of a leaf the
/// placement search had not even read (`vals` is cold there), and profiling (callgrind, 2 MiB last-level cache)
/// showed that rotation as ~3 of the ~10 last-level misses of a map or allocate at 100 000
/// mappings. Now an insert writes one value line.
///
/// `repr(C, align(64))`: a lookup scans the 16 bases (an aligned pair of cache lines) and, when
/// it needs ends, the 16 ends (the next pair) with two independent counts (see
/// [`Leaf::is_free`]), so both pairs are fetched in parallel instead of one miss waiting for the
/// other; then `slot` (the line after the ends, with `len` and `next`) and one line of `vals`.
/// (The attribute was lost once, in the commit that introduced `slot`: without it the fields
/// may be reordered and a leaf sits at any 8-byte offset in the arena, so its bases straddle
/// three lines and its values two — callgrind counted ~0.5-1 more last-level miss per lookup.)
#[repr(C, align(64))]
struct Leaf<V> {
    /// First byte of each entry (the key): the only array a search reads.
    bases: [usize; LEAF_CAP],
    /// One past the last byte of each entry; `base < end <= range_end`.
    ends: [usize; LEAF_CAP],
    /// Number of entries.
    len: usize,
    /// The next leaf in key order, or [`NIL`] for the last one.
    next: u32,
    /// Where each entry's value is in `vals`; a permutation of `0..LEAF_CAP`, `slot[len..]` the
    /// empty value slots.
    slot: [u8; LEAF_CAP],
    /// The caller's data, in no particular order (`Some` exactly at `slot[..len]`).
    vals: [Option<V>; LEAF_CAP],
}

/// The identity permutation: a fresh leaf's value slots.
const IDENTITY: [u8; LEAF_CAP] = {
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
struct Internal {
    /// Smallest base in each child's subtree; also the routing key.
    min_base: [usize; INNER_CAP],
    /// Largest end in each child's subtree.
    max_end: [usize; INNER_CAP],
    /// Arena index of each child.
    child: [u32; INNER_CAP],
    /// Largest gap strictly between two entries of each child's subtree (0 if it has one entry).
    max_gap: [usize; INNER_CAP],
    /// Number of children (at least 2 once built).
    len: usize,
}

/// What the arenas need from a node type: a *vacant* state, which carries the free-list link.
///
/// Nodes are stored directly in the arena `Vec`s (no `enum { Used, Free }` wrapper): an enum tag
/// would sit on a cache line of its own and cost one more miss per level of every descent. A node
/// is vacant iff its `len` is 0 — a live leaf holds at least one entry and a live internal node at
/// least two children — and [`GapTree::check_invariants`] verifies that no link reaches a vacant
/// node and that the free lists hold exactly the vacant ones.
trait ArenaNode: Sized {
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
struct Summary {
    min_base: usize,
    max_end: usize,
    max_gap: usize,
}

impl<V> Leaf<V> {
    fn new() -> Self {
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
    fn rank(&self, key: usize) -> usize {
        count_le(&self.bases, key)
    }

    /// Number of entries with end `<= key`, for `key < usize::MAX`: those wholly at or below
    /// `key` (ends are sorted like bases, because entries don't overlap). A real end may be
    /// `usize::MAX`, like the fillers, so callers handle `key == usize::MAX` themselves (no entry
    /// contains or ends above that address).
    fn ends_le(&self, key: usize) -> usize {
        debug_assert!(key < usize::MAX);
        count_le(&self.ends, key)
    }

    /// True if `[start, end)` (`start < end`) touches none of this leaf's entries: the entries
    /// ending at or before `start` must be exactly the entries starting before `end` (both sets
    /// are prefixes, the first inside the second; an entry in the difference overlaps). Two
    /// independent counts: no load waits for another.
    fn is_free(&self, start: usize, end: usize) -> bool {
        self.ends_le(start) == self.rank(end - 1)
    }

    fn summary(&self) -> Summary {
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
    fn insert(&mut self, i: usize, base: usize, end: usize, value: V) {
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
    fn remove(&mut self, i: usize) -> (usize, usize, V) {
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
    fn split_off(&mut self, at: usize) -> Leaf<V> {
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
    fn append(&mut self, right: &mut Leaf<V>) {
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

    fn entry(&self, i: usize) -> (usize, usize, &V) {
        let v = self.vals[usize::from(self.slot[i])]
            .as_ref()
            .expect("gap_tree: empty value slot in a leaf");
        (self.bases[i], self.ends[i] - self.bases[i], v)
    }
}

impl Internal {
    fn new() -> Self {
        Internal {
            min_base: [FILLER; INNER_CAP],
            max_end: [0; INNER_CAP],
            child: [NIL; INNER_CAP],
            max_gap: [0; INNER_CAP],
            len: 0,
        }
    }

    /// The child whose subtree holds the greatest base `<= key` (child 0 if none does).
    fn route(&self, key: usize) -> usize {
        count_le(&self.min_base, key).saturating_sub(1)
    }

    /// The end of whatever precedes child `i` and the base of whatever follows it: its siblings'
    /// summaries inside this node, the caller's `prev_end` / `next_base` at the node's edges.
    /// Together they bound the gaps at the two outer ends of child `i`'s subtree.
    fn child_neighbours(&self, i: usize, prev_end: usize, next_base: usize) -> (usize, usize) {
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

    fn child_summary(&self, i: usize) -> Summary {
        Summary {
            min_base: self.min_base[i],
            max_end: self.max_end[i],
            max_gap: self.max_gap[i],
        }
    }

    fn set_summary(&mut self, i: usize, s: Summary) {
        self.min_base[i] = s.min_base;
        self.max_end[i] = s.max_end;
        self.max_gap[i] = s.max_gap;
    }

    fn summary(&self) -> Summary {
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
    fn insert(&mut self, i: usize, s: Summary, c: u32) {
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
    fn remove(&mut self, i: usize) -> (Summary, u32) {
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
    fn split_off(&mut self, at: usize) -> Internal {
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
    fn append(&mut self, right: &Internal) {
        let (n, k) = (self.len, right.len);
        self.min_base[n..n + k].copy_from_slice(&right.min_base[..k]);
        self.max_end[n..n + k].copy_from_slice(&right.max_end[..k]);
        self.max_gap[n..n + k].copy_from_slice(&right.max_gap[..k]);
        self.child[n..n + k].copy_from_slice(&right.child[..k]);
        self.len = n + k;
    }
}

/// The internal nodes a descent went through, root first, and the child taken at each.
struct Path {
    nodes: [u32; MAX_HEIGHT],
    slots: [u8; MAX_HEIGHT],
    depth: usize,
}

impl Path {
    fn new() -> Self {
        Path {
            nodes: [NIL; MAX_HEIGHT],
            slots: [0; MAX_HEIGHT],
            depth: 0,
        }
    }
}

/// Where a descent by some key ended.
#[derive(Clone, Copy)]
struct Loc {
    /// The leaf reached ([`NIL`] for an empty tree).
    leaf: u32,
    /// Entries of that leaf with base `<= key`.
    pos: usize,
    /// End of the last entry before the leaf, or `range_base` if there is none.
    prev_end: usize,
    /// Base of the first entry after the leaf, or `range_end` if there is none.
    next_base: usize,
}

/// An ordered set of non-overlapping, non-empty intervals `[base, base + len)` inside a fixed span,
/// each carrying a `V`, with O(log n) lookup, insertion, removal and free-space search.
///
/// See the [module documentation](self) for the structure and the cost of each operation.
pub struct GapTree<V> {
    /// The leaf arena. Indices into it are `u32`; [`NIL`] is never a valid index.
    leaves: Vec<Leaf<V>>,
    /// The internal-node arena.
    internals: Vec<Internal>,
    /// Heads of the free lists threaded through vacant nodes (see [`ArenaNode`]), or [`NIL`].
    free_leaf: u32,
    free_internal: u32,
    /// Root node or [`NIL`] when empty: a leaf if `height == 1`, else an internal node.
    root: u32,
    /// Levels, leaves included (0 when empty).
    height: usize,
    /// Number of entries.
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
            leaves: Vec::new(),
            internals: Vec::new(),
            free_leaf: NIL,
            free_internal: NIL,
            root: NIL,
            height: 0,
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
    /// span, it overlaps an existing entry (merely touching one is fine), or the node arenas cannot
    /// grow (allocation failure, or 2^32 - 1 nodes). One descent does both the overlap check and
    /// the insertion. O(log n).
    pub fn insert(&mut self, base: usize, len: usize, value: V) -> Result<(), V> {
        let Some(end) = base.checked_add(len) else {
            return Err(value);
        };
        if len == 0 || base < self.range_base || end > self.range_end {
            return Err(value);
        }
        let mut path = Path::new();
        let loc = self.descend::<true>(base, Some(&mut path));
        if loc.leaf == NIL {
            if !self.reserve(1, 0) {
                return Err(value);
            }
            let mut leaf = Leaf::new();
            leaf.insert(0, base, end, value);
            self.root = self.alloc_leaf(leaf);
            self.height = 1;
            self.len = 1;
            return Ok(());
        }
        if !(loc.prev_end <= base && end <= loc.next_base && self.leaf(loc.leaf).is_free(base, end))
        {
            return Err(value);
        }
        // Worst case: the leaf and every internal node on the path split, plus a new root.
        if self.height >= MAX_HEIGHT || !self.reserve(1, self.height) {
            return Err(value);
        }
        let l = self.leaf_mut(loc.leaf);
        let carry = if l.len < LEAF_CAP {
            l.insert(loc.pos, base, end, value);
            None
        } else {
            let mut right = l.split_off(LEAF_MIN);
            if loc.pos <= LEAF_MIN {
                l.insert(loc.pos, base, end, value);
            } else {
                right.insert(loc.pos - LEAF_MIN, base, end, value);
            }
            let r = self.alloc_leaf(right);
            self.leaf_mut(loc.leaf).next = r;
            Some(r)
        };
        self.len += 1;
        self.fix_up(&path, loc.leaf, carry);
        Ok(())
    }

    /// Makes sure the next `inserts` calls to [`insert`](Self::insert) cannot fail for lack of
    /// memory, whatever removals and [`set_len`](Self::set_len) calls come in between (they
    /// allocate nothing): grows the arenas now, fallibly. False (nothing promised) when they
    /// cannot grow. An insert can still fail for its arguments (overlap, outside the span).
    pub fn reserve_inserts(&mut self, inserts: usize) -> bool {
        // One insert may split its leaf and every internal node on its path and add a root: one
        // leaf and `height` internal nodes, and the height grows by at most one per insert.
        let Some(top) = self.height.checked_add(inserts) else {
            return false;
        };
        if top > MAX_HEIGHT {
            return false;
        }
        let internals: usize = (0..inserts).map(|k| self.height + k).sum();
        self.reserve(inserts, internals)
    }

    /// Removes the entry whose base is exactly `base`, returning its `(len, value)`. O(log n).
    pub fn remove(&mut self, base: usize) -> Option<(usize, V)> {
        let mut path = Path::new();
        let loc = self.descend::<false>(base, Some(&mut path));
        if loc.leaf == NIL || loc.pos == 0 || self.leaf(loc.leaf).bases[loc.pos - 1] != base {
            return None;
        }
        let (b, e, value) = self.leaf_mut(loc.leaf).remove(loc.pos - 1);
        self.len -= 1;
        self.rebalance_up(&path, loc.leaf);
        Some((e - b, value))
    }

    /// The entry whose base is exactly `base`: `(len, &value)`. O(log n).
    pub fn get(&self, base: usize) -> Option<(usize, &V)> {
        let (leaf, i) = self.lookup(base)?;
        let (_, len, v) = self.leaf(leaf).entry(i);
        Some((len, v))
    }

    /// The entry whose base is exactly `base`: `(len, &mut value)`. O(log n).
    pub fn get_mut(&mut self, base: usize) -> Option<(usize, &mut V)> {
        let (leaf, i) = self.lookup(base)?;
        let l = self.leaf_mut(leaf);
        let len = l.ends[i] - l.bases[i];
        Some((len, l.vals[usize::from(l.slot[i])].as_mut()?))
    }

    /// Changes the length of the entry based at `base` in place.
    ///
    /// Shrinking always succeeds; growing succeeds if `[base, base + new_len)` stays inside the
    /// span and the added part touches no other entry. `Err(())` if there is no entry at `base`,
    /// `new_len == 0`, `base + new_len` overflows, or the grown entry would not fit. O(log n).
    #[allow(clippy::result_unit_err)]
    pub fn set_len(&mut self, base: usize, new_len: usize) -> Result<(), ()> {
        let mut path = Path::new();
        let loc = self.descend::<true>(base, Some(&mut path));
        if loc.leaf == NIL || loc.pos == 0 || new_len == 0 {
            return Err(());
        }
        let i = loc.pos - 1;
        let leaf = self.leaf(loc.leaf);
        if leaf.bases[i] != base {
            return Err(());
        }
        let new_end = base.checked_add(new_len).ok_or(())?;
        if new_end > self.range_end {
            return Err(());
        }
        if new_end > leaf.ends[i] {
            // Growing: the successor, if any, must start at or after the new end.
            let next = if loc.pos < leaf.len {
                leaf.bases[loc.pos]
            } else {
                loc.next_base
            };
            if next < new_end {
                return Err(());
            }
        }
        self.leaf_mut(loc.leaf).ends[i] = new_end;
        // The tree shape is unchanged; only the summaries on the path may be stale.
        self.fix_up(&path, loc.leaf, None);
        Ok(())
    }

    /// The entry containing `addr`: `(base, len, &value)`. O(log n).
    pub fn find(&self, addr: usize) -> Option<(usize, usize, &V)> {
        let loc = self.descend::<false>(addr, None);
        if loc.leaf == NIL || loc.pos == 0 || addr == usize::MAX {
            return None;
        }
        // Entry pos - 1 has the greatest base <= addr; it contains addr iff it ends above addr.
        // Lines read in the leaf: the bases (the count) and the slot map (copied here, so it is
        // fetched in parallel with the bases), then — both depending on `pos`, in parallel — the
        // one line of `ends` holding this entry's end and the value's line. The value depends on
        // `pos` anyway, so reading one end instead of counting all 16 (two lines, as before)
        // adds no round trip and saves a line.
        let leaf = self.leaf(loc.leaf);
        let slot = leaf.slot;
        let i = loc.pos - 1;
        let (base, end) = (leaf.bases[i], leaf.ends[i]);
        if end <= addr {
            return None;
        }
        let v = leaf.vals[usize::from(slot[i])]
            .as_ref()
            .expect("gap_tree: empty value slot in a leaf");
        Some((base, end - base, v))
    }

    /// The entry containing `addr` with the entries right before and after it in base order
    /// (touching it or not): `(prev, (base, len, &value), next)`. One descent, O(log n); the
    /// next entry may open the next leaf (a link), and only when the entry is the first of its
    /// leaf does the previous one take a second descent.
    #[allow(clippy::type_complexity)]
    pub fn find_with_neighbours(
        &self,
        addr: usize,
    ) -> Option<(
        Option<(usize, usize, &V)>,
        (usize, usize, &V),
        Option<(usize, usize, &V)>,
    )> {
        let loc = self.descend::<false>(addr, None);
        if loc.leaf == NIL || loc.pos == 0 || addr == usize::MAX {
            return None;
        }
        let leaf = self.leaf(loc.leaf);
        let i = loc.pos - 1;
        if leaf.ends[i] <= addr {
            return None;
        }
        let entry = leaf.entry(i);
        let prev = match i {
            0 => entry.0.checked_sub(1).and_then(|a| self.prev_entry(a)),
            _ => Some(leaf.entry(i - 1)),
        };
        let next = if i + 1 < leaf.len {
            Some(leaf.entry(i + 1))
        } else if leaf.next != NIL {
            Some(self.leaf(leaf.next).entry(0))
        } else {
            None
        };
        Some((prev, entry, next))
    }

    /// The entry containing `addr`: `(base, len, &mut value)`. O(log n).
    pub fn find_mut(&mut self, addr: usize) -> Option<(usize, usize, &mut V)> {
        let loc = self.descend::<false>(addr, None);
        if loc.leaf == NIL || loc.pos == 0 || addr == usize::MAX {
            return None;
        }
        // As `find`: one end, not a count over all ends.
        let i = loc.pos - 1;
        let leaf = self.leaf_mut(loc.leaf);
        let (base, end) = (leaf.bases[i], leaf.ends[i]);
        if end <= addr {
            return None;
        }
        Some((
            base,
            end - base,
            leaf.vals[usize::from(leaf.slot[i])].as_mut()?,
        ))
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
        let loc = self.descend::<true>(start, None);
        if loc.leaf == NIL {
            return true;
        }
        // Entries before the leaf end by `prev_end`, entries after it start at `next_base`; the
        // leaf's own entries are checked by counting.
        loc.prev_end <= start && end <= loc.next_base && self.leaf(loc.leaf).is_free(start, end)
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
            self.first_fit_in(self.root, self.height, self.range_base, self.range_end, &q)
        }
    }

    /// The highest base satisfying the same conditions as [`first_fit`](Self::first_fit), with
    /// the same argument handling and cost.
    pub fn last_fit(&self, len: usize, align: usize, lo: usize, hi: usize) -> Option<usize> {
        let q = FitQuery::new(self, len, align, lo, hi)?;
        if self.root == NIL {
            q.last_in_gap(self.range_base, self.range_end)
        } else {
            self.last_fit_in(self.root, self.height, self.range_base, self.range_end, &q)
        }
    }

    /// The largest free gap anywhere in the span, including the gaps before the first and after
    /// the last entry; the whole span length when empty. O(B).
    pub fn max_gap(&self) -> usize {
        let Some(s) = self.root_summary() else {
            return self.range_end - self.range_base;
        };
        max(
            s.max_gap,
            max(s.min_base - self.range_base, self.range_end - s.max_end),
        )
    }

    /// The entry with the greatest base `<= addr` (it may or may not contain `addr`). O(log n).
    pub fn prev_entry(&self, addr: usize) -> Option<(usize, usize, &V)> {
        let loc = self.descend::<false>(addr, None);
        if loc.leaf == NIL || loc.pos == 0 {
            // Routing takes child 0 only when `addr` is below every base of the node, so an
            // empty prefix in the leaf means no base at all is <= addr.
            return None;
        }
        Some(self.leaf(loc.leaf).entry(loc.pos - 1))
    }

    /// The entry with the smallest base `> addr`. O(log n).
    pub fn next_entry(&self, addr: usize) -> Option<(usize, usize, &V)> {
        let loc = self.descend::<false>(addr, None);
        if loc.leaf == NIL {
            return None;
        }
        let leaf = self.leaf(loc.leaf);
        if loc.pos < leaf.len {
            return Some(leaf.entry(loc.pos));
        }
        // Every base of this leaf is <= addr: the answer opens the next leaf.
        (leaf.next != NIL).then(|| self.leaf(leaf.next).entry(0))
    }

    /// Recomputes everything from scratch and compares it with what is stored: entries in strictly
    /// increasing base order, non-empty, non-overlapping and inside the span; node fill (every node
    /// but the root at least half full, an internal root with at least two children), all leaves at
    /// the same depth; the stored summaries of every child; the leaf chain (exactly the leaves, in
    /// order); the entry count; and both arenas (every slot is either reachable from the root
    /// exactly once or on its free list exactly once). O(n); meant for tests and debug assertions.
    /// Returns a description of the first violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.range_base > self.range_end {
            return Err(format!(
                "span base {:#x} above span end {:#x}",
                self.range_base, self.range_end
            ));
        }
        if self.height > MAX_HEIGHT {
            return Err(format!("height {} above {MAX_HEIGHT}", self.height));
        }
        let mut seen_leaf = vec![false; self.leaves.len()];
        let mut seen_internal = vec![false; self.internals.len()];
        let mut walk = CheckWalk {
            last_end: None,
            count: 0,
            leaves_in_order: Vec::new(),
        };
        if (self.root == NIL) != (self.height == 0) {
            return Err(format!("root {} with height {}", self.root, self.height));
        }
        if self.root != NIL {
            self.check_subtree(
                self.root,
                self.height,
                true,
                &mut seen_leaf,
                &mut seen_internal,
                &mut walk,
            )?;
        }
        if walk.count != self.len {
            return Err(format!(
                "len is {} but the tree holds {} entries",
                self.len, walk.count
            ));
        }
        // The leaf chain links exactly the leaves, in key order.
        for (k, &l) in walk.leaves_in_order.iter().enumerate() {
            let want = walk.leaves_in_order.get(k + 1).copied().unwrap_or(NIL);
            let next = self.leaf(l).next;
            if next != want {
                return Err(format!("leaf {l}: next is {next}, expected {want}"));
            }
        }
        check_free_list(&self.leaves, self.free_leaf, &mut seen_leaf, "leaf")?;
        check_free_list(
            &self.internals,
            self.free_internal,
            &mut seen_internal,
            "internal",
        )?;
        Ok(())
    }

    // ---------------------------------------------------------------------------------------------
    // Arenas.

    /// The leaf at index `i` (a link, so live unless the tree is corrupt: see [`ArenaNode`]).
    /// Panics only on an index outside the arena.
    fn leaf(&self, i: u32) -> &Leaf<V> {
        &self.leaves[i as usize]
    }

    fn leaf_mut(&mut self, i: u32) -> &mut Leaf<V> {
        &mut self.leaves[i as usize]
    }

    /// The internal node at index `i` (same caveat as [`leaf`](Self::leaf)).
    fn inner(&self, i: u32) -> &Internal {
        &self.internals[i as usize]
    }

    fn inner_mut(&mut self, i: u32) -> &mut Internal {
        &mut self.internals[i as usize]
    }

    /// Makes sure `leaves` leaf slots and `internals` internal slots can be allocated without
    /// failing (recycled slots first, then spare capacity). False on allocation failure or when
    /// the `u32` index space would run out.
    fn reserve(&mut self, leaves: usize, internals: usize) -> bool {
        fn fits<T>(arena: &mut Vec<T>, more: usize) -> bool {
            arena.len() + more < NIL as usize && arena.try_reserve(more).is_ok()
        }
        // Reserving even when the free lists could serve keeps this O(1); the spare capacity is
        // used by later growth anyway.
        fits(&mut self.leaves, leaves) && fits(&mut self.internals, internals)
    }

    fn alloc_leaf(&mut self, leaf: Leaf<V>) -> u32 {
        alloc_slot(&mut self.leaves, &mut self.free_leaf, leaf)
    }

    fn alloc_internal(&mut self, node: Internal) -> u32 {
        alloc_slot(&mut self.internals, &mut self.free_internal, node)
    }

    fn free_leaf(&mut self, i: u32) -> Leaf<V> {
        free_slot(&mut self.leaves, &mut self.free_leaf, i)
    }

    fn free_internal(&mut self, i: u32) -> Internal {
        free_slot(&mut self.internals, &mut self.free_internal, i)
    }

    /// The summary of node `n`, a leaf when `leaf` is true.
    fn node_summary(&self, n: u32, leaf: bool) -> Summary {
        if leaf {
            self.leaf(n).summary()
        } else {
            self.inner(n).summary()
        }
    }

    fn root_summary(&self) -> Option<Summary> {
        (self.root != NIL).then(|| self.node_summary(self.root, self.height == 1))
    }

    // ---------------------------------------------------------------------------------------------
    // Searches.

    /// Walks from the root to the leaf holding the greatest base `<= key` (the first leaf if there
    /// is none), recording the internal nodes in `path` if given. With `BOUNDS` false, `prev_end`
    /// and `next_base` of the result are not computed (left at the span bounds): plain lookups
    /// skip reading `max_end`, one cache line per level.
    #[inline]
    fn descend<const BOUNDS: bool>(&self, key: usize, mut path: Option<&mut Path>) -> Loc {
        let mut loc = Loc {
            leaf: NIL,
            pos: 0,
            prev_end: self.range_base,
            next_base: self.range_end,
        };
        let mut n = self.root;
        if n == NIL {
            return loc;
        }
        for depth in 0..self.height - 1 {
            let node = self.inner(n);
            let c = node.route(key);
            if BOUNDS {
                if c > 0 {
                    loc.prev_end = node.max_end[c - 1];
                }
                // A filler (no child c + 1) leaves the bound of the level above in place.
                if let Some(&nb) = node.min_base.get(c + 1).filter(|&&b| b != FILLER) {
                    loc.next_base = nb;
                }
            }
            if let Some(p) = path.as_deref_mut() {
                p.nodes[depth] = n;
                p.slots[depth] = c as u8;
                p.depth = depth + 1;
            }
            n = node.child[c];
        }
        loc.leaf = n;
        loc.pos = self.leaf(n).rank(key);
        loc
    }

    /// The leaf and position of the entry whose base is exactly `base`.
    fn lookup(&self, base: usize) -> Option<(u32, usize)> {
        let loc = self.descend::<false>(base, None);
        if loc.leaf == NIL || loc.pos == 0 || self.leaf(loc.leaf).bases[loc.pos - 1] != base {
            return None;
        }
        Some((loc.leaf, loc.pos - 1))
    }

    // ---------------------------------------------------------------------------------------------
    // Updates.

    /// After node `child` at the bottom of `path` changed (and, if `carry` is set, split off the
    /// new right sibling `carry`), refreshes the summaries on the path and inserts split-off
    /// siblings into their parents, splitting those in turn when full; grows a new root when the
    /// old one split. Stops early once a level's summary comes out unchanged with nothing to insert.
    fn fix_up(&mut self, path: &Path, mut child: u32, mut carry: Option<u32>) {
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
    fn rebalance_up(&mut self, path: &Path, leaf: u32) {
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

impl Summary {
    /// Placeholder for "no child" (never reached: nodes are checked to be non-empty first).
    const EMPTY: Summary = Summary {
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
fn count_le<const N: usize>(keys: &[usize; N], key: usize) -> usize {
    let key = min(key, FILLER - 1);
    keys.partition_point(|&b| b <= key)
}

/// Puts `node` into a vacant slot of `arena` (recycled first, else a new one). The caller
/// reserved room ([`GapTree::reserve`]), so this never allocates.
fn alloc_slot<T: ArenaNode>(arena: &mut Vec<T>, free_head: &mut u32, node: T) -> u32 {
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
fn free_slot<T: ArenaNode>(arena: &mut [T], free_head: &mut u32, i: u32) -> T {
    let node = core::mem::replace(&mut arena[i as usize], T::vacant(*free_head));
    *free_head = i;
    node
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

mod check;
mod fit;
mod iter;
#[cfg(test)]
mod tests;

use check::*;
use fit::*;
use iter::*;
