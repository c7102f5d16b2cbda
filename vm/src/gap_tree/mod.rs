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
//! Why not a binary tree: with 100 000 mappings the nodes of an AVL tree (~100 bytes each, value
//! inline) fill ~10 MB, every one of the ~18 levels of a descent is a likely cache miss, and
//! `cargo bench -p vm` measured such a tree's lookup at 100 000 entries ~6x slower than at 100
//! (docs/perf-log.md, 2026-11-26). Here a descent reads, per level, one small sorted array
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
//! # Files
//!
//! This file holds [`GapTree`] itself (its public operations, the arenas and the descent);
//! `node` the node types and their in-node operations; `update` the fix-ups on the way back up
//! from an insert or remove (summaries, splits, merges); `fit` the fit searches; `iter` the
//! in-order iterator; `check` [`GapTree::check_invariants`]'s walk.
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
mod node;
#[cfg(test)]
mod tests;
mod update;

use check::*;
use fit::*;
use iter::*;
use node::*;
