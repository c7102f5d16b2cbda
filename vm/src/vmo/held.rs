//! [`HeldAspaces`]: the address spaces a walk over a VMO's mappings keeps alive until the VMO
//! lock is released.

use super::*;
use crate::arch_traits::TlbFlush;

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
///
/// A walk that removes one page's entries from many mappings ([`HeldAspaces::unmap_inline`])
/// also keeps one merged [`TlbFlush`] per inline address space and flushes them all at
/// [`HeldAspaces::flush`], before its VMO lock is released: one flush (one shootdown) per address
/// space per hold, not one per mapping.
pub(crate) struct HeldAspaces {
    inline: [Option<Arc<AddressSpace>>; HeldAspaces::INLINE],
    /// The entries removed but not flushed yet, per inline slot.
    pending: [TlbFlush; HeldAspaces::INLINE],
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
            pending: core::array::from_fn(|_| TlbFlush::none()),
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

    /// Keeps `aspace` until [`HeldAspaces::release`] or drop, for a walk that checks
    /// [`HeldAspaces::is_full`] first: never uses the heap. A second reference to an address
    /// space already kept is dropped at once: the kept one outlives it, so it is not the last.
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

    /// Removes the entries of `[vaddr, vaddr + page_count pages)` in `aspace` and keeps it as
    /// [`HeldAspaces::keep_inline`] does; the flush waits for [`HeldAspaces::flush`], merged with
    /// the others of `aspace` (at once when `aspace` found no inline slot: the caller did not
    /// check [`HeldAspaces::is_full`]).
    pub(super) fn unmap_inline(
        &mut self,
        aspace: Arc<AddressSpace>,
        vaddr: usize,
        page_count: usize,
    ) {
        let flush = aspace.unmap_pages_deferred(vaddr, page_count);
        let slot = self.inline[..self.used]
            .iter()
            .position(|a| a.as_ref().is_some_and(|a| Arc::ptr_eq(a, &aspace)));
        let slot = match slot {
            Some(slot) => Some(slot),
            None if self.used < Self::INLINE => {
                self.inline[self.used] = Some(aspace.clone());
                self.used += 1;
                Some(self.used - 1)
            }
            None => None,
        };
        match slot {
            Some(slot) => {
                let prev = core::mem::replace(&mut self.pending[slot], TlbFlush::none());
                self.pending[slot] = prev.merge(flush);
                drop(aspace);
            }
            None => {
                aspace.flush_for_vmo(flush);
                self.keep_inline(aspace);
            }
        }
    }

    /// [`HeldAspaces::unmap_inline`] for a walk that may meet more address spaces than there
    /// are inline slots: one that finds no slot has its heap slot reserved before its entries
    /// are removed (`ERR_NO_MEMORY`, nothing removed there, when the heap has no room), and is
    /// flushed at once.
    pub(super) fn unmap_deferred(
        &mut self,
        aspace: Arc<AddressSpace>,
        vaddr: usize,
        page_count: usize,
    ) -> ZxResult {
        if self.is_full() && !self.holds(&aspace) {
            self.more
                .try_reserve(1)
                .map_err(|_| Status::ERR_NO_MEMORY)?;
            aspace.unmap_pages_for_vmo(vaddr, page_count);
            self.more.push(aspace);
            return Ok(());
        }
        self.unmap_inline(aspace, vaddr, page_count);
        Ok(())
    }

    /// Flushes every address space's entries removed by [`HeldAspaces::unmap_inline`] (call
    /// under the walk's VMO lock, before any frame they mapped is freed or replaced).
    pub(super) fn flush(&mut self) {
        for (slot, pending) in self.inline[..self.used].iter().zip(self.pending.iter_mut()) {
            let flush = core::mem::replace(pending, TlbFlush::none());
            // An empty token (nothing removed there) was issued by no MMU: nothing to flush.
            if let (Some(aspace), true) = (slot, flush.count() > 0) {
                aspace.flush_for_vmo(flush);
            }
        }
    }

    /// No inline room is left.
    pub(super) fn is_full(&self) -> bool {
        self.used == Self::INLINE
    }

    /// Drops every kept reference (call with no VMO lock held).
    pub(super) fn release(&mut self) {
        self.flush();
        for slot in &mut self.inline[..self.used] {
            *slot = None;
        }
        self.used = 0;
        self.more.clear();
    }
}
