//! What one operation carries from its check phase to its apply phase: [`Batch`] (the merged TLB
//! flush and the mapping counts) and [`Slots`] (back-reference reservations), and
//! [`apply_failed`] for an apply phase that finds a reservation missing.

use alloc::sync::Arc;

use abi::{Status, ZxResult};

use crate::arch_traits::TlbFlush;
use crate::vmo::Vmo;

/// What one operation accumulates while it edits the tree: one merged TLB flush for page-table
/// changes that free nothing (protect), and how many mappings it created and removed.
///
/// Removals never wait for the batch: an operation that removes mappings unmaps the page-table
/// entries of everything it removes in one lock hold (or step) and flushes them once first
/// ([`AddressSpace::unmap_ptes_now`] over the whole range: one shootdown per step on several
/// CPUs), then drops each mapping as it leaves the tree (its back-reference first). So a frame is
/// never returned to the allocator while a stale TLB entry may still reach it, nothing is
/// collected (removal allocates nothing), and a VMO back-reference always covers at least the
/// page-table entries that exist for it.
pub(crate) struct Batch {
    pub(super) flush: TlbFlush,
    /// Mappings this operation put in a tree.
    pub(crate) created: usize,
    /// Mappings this operation removed.
    pub(crate) removed: usize,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            flush: TlbFlush::none(),
            created: 0,
            removed: 0,
        }
    }

    pub(crate) fn add_flush(&mut self, flush: TlbFlush) {
        let prev = core::mem::replace(&mut self.flush, TlbFlush::none());
        self.flush = prev.merge(flush);
    }
}

/// Back-reference slots an operation reserved in its check phase, one per new back-reference key
/// its apply phase inserts (a mapping split off, a mapping whose window start moves, a new
/// mapping). Inserting takes one ([`Slots::take`]); whatever is left when it is dropped (an
/// operation that failed a later check) is given back to its VMO.
pub(crate) struct Slots {
    vmos: [Option<Arc<Vmo>>; 3],
    /// The id of the address space whose operation holds them (the back-references it inserts
    /// are that space's).
    aspace: u64,
}

impl Slots {
    pub(crate) fn new(aspace: u64) -> Slots {
        Slots {
            vmos: [None, None, None],
            aspace,
        }
    }

    /// Reserves one slot in `vmo`'s back-references; `ERR_NO_MEMORY` when its arena cannot grow.
    pub(crate) fn reserve(&mut self, vmo: &Arc<Vmo>) -> ZxResult {
        let free = self
            .vmos
            .iter_mut()
            .find(|v| v.is_none())
            .ok_or(Status::ERR_INTERNAL)?;
        if !vmo.lock().mappings.reserve(self.aspace, 1) {
            return Err(Status::ERR_NO_MEMORY);
        }
        *free = Some(vmo.clone());
        Ok(())
    }

    /// Marks one slot reserved in `vmo` as used (by the insert about to happen).
    pub(super) fn take(&mut self, vmo: &Arc<Vmo>) {
        if let Some(v) = self
            .vmos
            .iter_mut()
            .find(|v| v.as_ref().is_some_and(|v| Arc::ptr_eq(v, vmo)))
        {
            *v = None;
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        for vmo in self.vmos.iter_mut().filter_map(Option::take) {
            vmo.lock().mappings.unreserve(self.aspace, 1);
        }
    }
}

/// The apply phase met a missing reservation: a bug in a check phase. Continuing would leave a
/// mapping without its back-reference or without its tree entry (page-table entries that outlive
/// their frames), so this stops, in every build.
#[cold]
pub(crate) fn apply_failed(what: &str) -> ! {
    panic!("vm: {what} in an apply phase without its reservation")
}
