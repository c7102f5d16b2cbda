//! [`HeldAspaces`]: the address spaces a walk over a VMO's mappings keeps alive until the VMO
//! lock is released.

use super::*;

/// Address-space references a walk over a VMO's mappings upgraded while holding the VMO lock,
/// kept until that lock is released.
///
/// A back-reference holds a `Weak<AddressSpace>`; the walk upgrades it to unmap pages. If every
/// other holder let go of that address space meanwhile (its process died on another CPU), the
/// walk's reference is the last one, and dropping it runs `AddressSpace::drop`, which locks each
/// mapped VMO to remove its back-references: under this VMO's lock that would be a self-deadlock.
/// So the walk keeps one reference per address space here and its caller drops them after
/// unlocking. The first [`HeldAspaces::INLINE`] address spaces need no heap (a decommit lowers
/// usage and must not depend on the heap); more than that, which takes that many processes
/// mapping one VMO range, grow a heap list or, if the heap is exhausted, end the walk with
/// `ERR_NO_MEMORY` before any frame is freed.
pub(crate) struct HeldAspaces {
    inline: [Option<Arc<AddressSpace>>; HeldAspaces::INLINE],
    /// Slots of `inline` in use (a prefix).
    used: usize,
    more: Vec<Arc<AddressSpace>>,
}

impl HeldAspaces {
    /// Address spaces kept without the heap.
    pub(crate) const INLINE: usize = 8;

    pub(crate) fn new() -> HeldAspaces {
        HeldAspaces {
            inline: Default::default(),
            used: 0,
            more: Vec::new(),
        }
    }

    /// Is `aspace` kept already?
    pub(super) fn holds(&self, aspace: &Arc<AddressSpace>) -> bool {
        self.inline[..self.used]
            .iter()
            .flatten()
            .chain(self.more.iter())
            .any(|a| Arc::ptr_eq(a, aspace))
    }

    /// Keeps `aspace` until [`HeldAspaces::release`] or drop. A second reference to an address
    /// space already kept is dropped at once: the kept one outlives it, so it is not the last.
    pub(super) fn keep(&mut self, aspace: Arc<AddressSpace>) -> ZxResult {
        let Some(aspace) = self.keep_without_heap(aspace) else {
            return Ok(());
        };
        self.more
            .try_reserve(1)
            .map_err(|_| Status::ERR_NO_MEMORY)?;
        self.more.push(aspace);
        Ok(())
    }

    /// [`HeldAspaces::keep`] for a walk that checks [`HeldAspaces::is_full`] first: never uses
    /// the heap.
    pub(super) fn keep_inline(&mut self, aspace: Arc<AddressSpace>) {
        if let Some(aspace) = self.keep_without_heap(aspace) {
            // Unreachable when the caller checked `is_full`; kept rather than dropped under the
            // lock if it did not (a push that may allocate beats a self-deadlock).
            self.more.push(aspace);
        }
    }

    /// Keeps `aspace` in an inline slot, or drops it when it is kept already; hands it back
    /// when every inline slot is taken.
    fn keep_without_heap(&mut self, aspace: Arc<AddressSpace>) -> Option<Arc<AddressSpace>> {
        if self.holds(&aspace) {
            return None;
        }
        if self.used == Self::INLINE {
            return Some(aspace);
        }
        self.inline[self.used] = Some(aspace);
        self.used += 1;
        None
    }

    /// No inline room is left.
    pub(super) fn is_full(&self) -> bool {
        self.used == Self::INLINE
    }

    /// Drops every kept reference (call with no VMO lock held).
    pub(super) fn release(&mut self) {
        for slot in &mut self.inline[..self.used] {
            *slot = None;
        }
        self.used = 0;
        self.more.clear();
    }
}
