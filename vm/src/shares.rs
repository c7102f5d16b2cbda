//! The share counts of the frames that several VMOs of one clone family hold at once.
//!
//! This module owns [`FrameShares`]: one per clone family (a VMO and every snapshot descended
//! from it), created when the family's first snapshot is taken and reached through an `Arc` from
//! every member. It maps a frame to the number of VMO page entries that hold it, for frames held
//! by two or more; a frame it does not list has exactly one holder. So a family that never shares
//! a page costs one empty map, and a VMO that was never cloned has no table at all.
//!
//! The rules (docs/vm.md, "Copy-on-write children"): a frame with more than one holder is never
//! mapped writable and never written in place; a write copies it into the writer (which then
//! holds the copy alone) and drops one share; the holder that drops the last share frees the
//! frame. The table's lock ([`Class::FrameShares`]) is taken under one VMO lock and held across
//! MMU updates of that VMO's mappings, never while taking a VMO lock.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use lock_order::{Class, OrderedGuard, OrderedMutex};

use crate::arch_traits::PhysAddr;

/// Share counts of a clone family's frames (see the module docs).
pub(crate) struct FrameShares {
    counts: OrderedMutex<BTreeMap<PhysAddr, u32>>,
}

/// The locked table.
pub(crate) type SharesGuard<'a> = OrderedGuard<'a, BTreeMap<PhysAddr, u32>>;

impl FrameShares {
    /// An empty table for a new family.
    pub(crate) fn new() -> Arc<FrameShares> {
        Arc::new(FrameShares {
            counts: OrderedMutex::new(Class::FrameShares, BTreeMap::new()),
        })
    }

    /// Locks the table.
    pub(crate) fn lock(&self) -> SharesGuard<'_> {
        self.counts.lock()
    }
}

/// One more holder of `frame`.
pub(crate) fn share(counts: &mut BTreeMap<PhysAddr, u32>, frame: PhysAddr) {
    let n = counts.entry(frame).or_insert(1);
    *n = n.saturating_add(1);
}

/// One holder lets go of `frame`. True when it was the last one: the caller frees the frame.
pub(crate) fn unshare(counts: &mut BTreeMap<PhysAddr, u32>, frame: PhysAddr) -> bool {
    match counts.get_mut(&frame) {
        Some(n) => {
            *n -= 1;
            if *n <= 1 {
                counts.remove(&frame);
            }
            false
        }
        None => true,
    }
}

/// Does `frame` have more than one holder?
pub(crate) fn is_shared(counts: &BTreeMap<PhysAddr, u32>, frame: PhysAddr) -> bool {
    counts.contains_key(&frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_go_up_and_the_last_holder_frees() {
        let mut m = BTreeMap::new();
        let f = PhysAddr(0x5000);
        assert!(!is_shared(&m, f));
        share(&mut m, f);
        share(&mut m, f);
        assert_eq!(m.get(&f), Some(&3));
        assert!(!unshare(&mut m, f));
        assert!(is_shared(&m, f));
        assert!(!unshare(&mut m, f));
        assert!(!is_shared(&m, f), "one holder left: not listed");
        assert!(unshare(&mut m, f), "the last holder frees");
    }
}
