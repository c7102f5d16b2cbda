//! Choosing where a new region or mapping goes when the caller did not say (no `ZX_VM_SPECIFIC`).
//!
//! This module owns [`pick_spot`]: given a VMAR's children (a [`GapTree`]), a length, an
//! alignment and a window `[lo, hi)`, it returns a free aligned base.
//!
//! * Random mode (ASLR): uniformly random among the aligned bases `b` with `lo <= b`,
//!   `b + len <= hi` and `[b, b + len)` free. Done by rejection sampling: draw a uniformly random
//!   aligned candidate in the window and accept it if `is_free` (O(log n)); the accepted value is
//!   exactly uniform over the free candidates. After [`MAX_RANDOM_TRIES`] rejections (a window
//!   that is mostly full) it falls back to a random start plus `first_fit` with wrap-around, which
//!   is still O(log n) and still finds a spot whenever one exists.
//!   The number of candidates is capped at `2^entropy_bits` (counted from the window's low end),
//!   as Zircon caps its candidate count by the aspace's ASLR entropy. Difference: Zircon counts
//!   the first `2^entropy_bits` FREE candidates, we count the first `2^entropy_bits` candidates
//!   free or not (counting free ones would need per-subtree candidate counts); when that capped
//!   window is full we fall back to the lowest free spot of the whole window.
//! * Compact mode (`ZX_VM_COMPACT` on the parent, or ASLR disabled): the lowest free aligned base,
//!   so allocations pack densely next to each other (Zircon's compact entropy of 0 bits).

use crate::gap_tree::GapTree;
use crate::rng::{uniform_below, RandomSource};

/// Rejection-sampling draws before the first-fit fallback.
pub const MAX_RANDOM_TRIES: u32 = 32;

/// How to choose among the free spots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Lowest free spot.
    Compact,
    /// Uniformly random among the first `2^entropy_bits` aligned candidates of the window.
    Random {
        /// log2 of the maximum number of candidate positions.
        entropy_bits: u8,
    },
}

fn align_up(value: usize, align: usize) -> Option<usize> {
    Some(value.checked_add(align - 1)? & !(align - 1))
}

/// A free base for `len` bytes aligned to `align` (a power of two) inside `[lo, hi)`, or `None`.
/// Never panics: every bound is overflow-checked.
pub fn pick_spot<V>(
    tree: &GapTree<V>,
    len: usize,
    align: usize,
    lo: usize,
    hi: usize,
    placement: Placement,
    rng: &mut dyn RandomSource,
) -> Option<usize> {
    if len == 0 || !align.is_power_of_two() {
        return None;
    }
    let first = align_up(lo, align)?;
    let last = hi.checked_sub(len)? & !(align - 1);
    if last < first {
        return None;
    }
    let entropy_bits = match placement {
        Placement::Compact => return tree.first_fit(len, align, first, hi),
        Placement::Random { entropy_bits } => entropy_bits,
    };
    let positions = ((last - first) / align) as u64 + 1;
    let cap = 1u64
        .checked_shl(u32::from(entropy_bits))
        .unwrap_or(u64::MAX)
        .max(1);
    let positions = positions.min(cap);
    // The window actually sampled: [first, window_hi).
    let window_hi = first + (positions as usize - 1) * align + len;
    for _ in 0..MAX_RANDOM_TRIES {
        let candidate = first + uniform_below(rng, positions) as usize * align;
        if tree.is_free(candidate, len) {
            return Some(candidate);
        }
    }
    let start = first + uniform_below(rng, positions) as usize * align;
    tree.first_fit(len, align, start, window_hi)
        .or_else(|| tree.first_fit(len, align, first, window_hi))
        // The capped window is full: the lowest free spot of the whole window (Zircon counts
        // only free candidates, so it too finds a spot whenever one exists).
        .or_else(|| tree.first_fit(len, align, first, hi))
}
