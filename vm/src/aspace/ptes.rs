//! The page-table side of mappings: page-fault resolution (with fault-around), installing the
//! committed pages of a mapping, and unmapping or re-protecting entries.

use abi::{Status, ZxResult, PAGE_SIZE};

use super::{AddressSpace, Batch, FAULT_AROUND_SIZE};
use crate::arch_traits::{Mmu, MmuFlags, TlbFlush};
use crate::mapping::VmMapping;
use crate::vmo::{HeldAspaces, Vmo, VmoInner};

impl AddressSpace {
    /// Removes the page-table entries of `[vaddr, vaddr + len)` (page-aligned) and flushes them
    /// now, before anything that mapped them is dropped.
    pub(crate) fn unmap_ptes_now(&self, vaddr: usize, len: usize) {
        let mut mmu = self.mmu.lock();
        let flush = mmu.unmap(vaddr, len / PAGE_SIZE);
        mmu.flush(flush);
    }

    /// Changes the page-table entries of `[vaddr, vaddr + len)` to `perms` (removing them when
    /// `perms` is empty: no architecture can express a present page without read access). For a
    /// mapping of a VMO whose entries may map a frame not to be written through them (`cow`:
    /// [`Vmo::write_needs_fault`](crate::Vmo::write_needs_fault), a shared frame or the zero
    /// frame), entries never gain write access here: they get `perms` without WRITE and a write
    /// faults, which copies a shared page or commits a zero one first.
    pub(crate) fn protect_ptes(
        &self,
        batch: &mut Batch,
        vaddr: usize,
        len: usize,
        perms: MmuFlags,
        cow: bool,
    ) {
        let perms = if cow {
            perms.difference(MmuFlags::WRITE)
        } else {
            perms
        };
        let flush = if perms.perms().is_empty() {
            self.mmu.lock().unmap(vaddr, len / PAGE_SIZE)
        } else {
            self.mmu
                .lock()
                .protect(vaddr, len / PAGE_SIZE, self.pte_flags(perms))
        };
        batch.add_flush(flush);
    }

    /// Called by a VMO (under its lock) when pages leave it: unmap and flush right away.
    pub(crate) fn unmap_pages_for_vmo(&self, vaddr: usize, page_count: usize) {
        let mut mmu = self.mmu.lock();
        let flush = mmu.unmap(vaddr, page_count);
        mmu.flush(flush);
    }

    /// Called by a VMO (under its lock) when pages leave it in a walk over many mappings: unmaps
    /// and returns the token, which the walk merges with this address space's others of the same
    /// hold and passes to [`AddressSpace::flush_for_vmo`] before the hold ends.
    pub(crate) fn unmap_pages_deferred(&self, vaddr: usize, page_count: usize) -> TlbFlush {
        self.mmu.lock().unmap(vaddr, page_count)
    }

    /// Flushes what [`AddressSpace::unmap_pages_deferred`] returned (merged): one flush (one
    /// shootdown) for all of a walk's entries in this address space.
    pub(crate) fn flush_for_vmo(&self, flush: TlbFlush) {
        self.mmu.lock().flush(flush);
    }

    /// Installs page-table entries for the committed pages of `m` inside `[start, end)` (a
    /// sub-range of the mapping `[base, base + len)`), skipping pages already mapped. Holds the
    /// VMO lock while mapping so a concurrent decommit cannot free a frame in between. A frame
    /// another VMO holds too is mapped without write access (a write faults and copies it).
    /// `ERR_NO_MEMORY` when a page-table page cannot be allocated (entries made so far stay).
    pub(crate) fn map_committed(
        &self,
        m: &VmMapping,
        base: usize,
        start: usize,
        end: usize,
    ) -> ZxResult {
        if m.perms.perms().is_empty() || start >= end {
            return Ok(());
        }
        let first_off = m.vmo_offset + (start - base) as u64;
        let end_off = m.vmo_offset + (end - base) as u64;
        let page = PAGE_SIZE as u64;
        let inner = m.vmo.lock();
        let flags = self.pte_flags(m.perms);
        let read_only = self.pte_flags(m.perms.difference(MmuFlags::WRITE));
        let mut mmu = self.mmu.lock();
        let mut flush = TlbFlush::none();
        let mut result = Ok(());
        for (&index, &frame) in inner.pages.range(first_off / page..end_off.div_ceil(page)) {
            let vaddr = base + (index * page - m.vmo_offset) as usize;
            if mmu.query(vaddr).is_some() {
                continue;
            }
            let f = if m.vmo.frame_is_shared(frame) || Vmo::read_only_now_locked(&inner, index) {
                read_only
            } else {
                flags
            };
            match mmu.map(vaddr, frame, f) {
                Ok(f) => flush = flush.merge(f),
                Err(status) => {
                    result = Err(status);
                    break;
                }
            }
        }
        mmu.flush(flush);
        result
    }

    /// Resolves a page fault at `vaddr`. `access` holds the kind of access (READ, WRITE or
    /// EXECUTE; none means READ) and USER for a user-mode access.
    ///
    /// Statuses (Zircon's): `ERR_NOT_FOUND` no mapping contains `vaddr`; `ERR_ACCESS_DENIED`
    /// the mapping's protection does not allow the access (or a user access to a kernel space);
    /// `ERR_OUT_OF_RANGE` the page lies beyond the end of the VMO; `ERR_NO_MEMORY` no frame or
    /// page-table page was available. On success the page is mapped with the mapping's
    /// protection, except that a frame another VMO of the clone family holds too is mapped
    /// without write access; a write fault on such a page first copies it into the mapping's
    /// VMO (once: the copy is the VMO's alone). A write fault commits the page (a zeroed frame)
    /// if needed. A read or execute fault on a page not committed commits nothing: it maps the
    /// shared zero frame ([`PhysMem::zero_frame`](crate::PhysMem::zero_frame)) without write
    /// access, whatever the mapping allows; a later write fault there commits the page, and any
    /// other commit of it first removes its zero-frame entries from every mapping (ZIRCON: the
    /// zero page of `VmCowPages::LookupCursor::RequireReadPage`, mapped read-only).
    ///
    /// The committed pages that follow the faulting one in its aligned window of
    /// [`FAULT_AROUND_PAGES`](super::FAULT_AROUND_PAGES) are mapped too, up to the first that is
    /// not committed (nothing is committed for them). ZIRCON: `VmMapping::PageFaultLockedObject` maps up to
    /// `kPageFaultMaxOptimisticPages` (16) pages that already exist, from the faulting page on,
    /// within its page table; Linux's fault-around maps a 64 KiB window of cached pages.
    ///
    /// `ERR_SHOULD_WAIT` for a write to a page changing frame in steps (a zero-page commit or a
    /// copy-on-write break in a VMO mapped in more places than one lock hold may visit; the
    /// fault may have started the change): nothing is mapped; [`AddressSpace::fault_in_steps`]
    /// drives the change with no lock held and faults again.
    pub fn fault(&self, vaddr: usize, access: MmuFlags) -> ZxResult {
        let tree = self.tree.lock();
        if access.contains(MmuFlags::USER) && !self.config.user {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let page_vaddr = vaddr - vaddr % PAGE_SIZE;
        let (_, base, len, m) = tree
            .find_mapping(tree.root, page_vaddr)
            .ok_or(Status::ERR_NOT_FOUND)?;
        let mut need = access.perms();
        if need.is_empty() {
            need = MmuFlags::READ;
        }
        if !m.perms.contains(need) {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        // vmo_offset + len was checked not to overflow when the mapping was made.
        let index = (m.vmo_offset + (page_vaddr - base) as u64) / PAGE_SIZE as u64;
        // Dropped last, after the VMO lock (see `HeldAspaces`).
        let mut held = HeldAspaces::new();
        let mut inner = m.vmo.lock();
        let frame = if access.contains(MmuFlags::WRITE) {
            let frame = m
                .vmo
                .commit_for_write_locked(&mut inner, index, &mut held)?;
            Vmo::wrote_mapping_locked(&mut inner, index);
            frame
        } else {
            m.vmo.frame_for_read_locked(&inner, index)?
        };
        let flags = self.pte_flags(m.perms);
        let read_only = self.pte_flags(m.perms.difference(MmuFlags::WRITE));
        let zero = !inner.pages.contains_key(&index);
        // A page changing frame in steps, or being snapshotted in steps, is mapped read-only
        // by a read fault until that is over (a write fault restarted the snapshot's walk).
        let write = access.contains(MmuFlags::WRITE);
        let page_flags = if zero
            || m.vmo.frame_is_shared(frame)
            || (!write && Vmo::read_only_now_locked(&inner, index))
        {
            read_only
        } else {
            flags
        };
        let mut mmu = self.mmu.lock();
        let mut flush = TlbFlush::none();
        if let Some((existing, existing_flags)) = mmu.query(page_vaddr) {
            if existing == frame && existing_flags == page_flags {
                return Ok(()); // Another CPU resolved it first.
            }
            flush = mmu.unmap(page_vaddr, 1);
        }
        let result = mmu.map(page_vaddr, frame, page_flags);
        let result =
            result.map(|f| flush = core::mem::replace(&mut flush, TlbFlush::none()).merge(f));
        if result.is_ok() {
            let window_end = (page_vaddr / FAULT_AROUND_SIZE + 1) * FAULT_AROUND_SIZE;
            let end = window_end.min(base + len);
            let around = fault_around(
                &mut **mmu,
                &inner,
                &m.vmo,
                (page_vaddr, index),
                end,
                (flags, read_only),
            );
            flush = flush.merge(around);
        }
        mmu.flush(flush);
        result
    }
    /// [`AddressSpace::fault`], waiting out a page that changes frame in steps: on
    /// `ERR_SHOULD_WAIT` the VMO's change is driven to its end, one hold of the VMO lock per
    /// [`FRAME_CHANGE_STEP_ENTRIES`](crate::vmo::FRAME_CHANGE_STEP_ENTRIES) mappings with
    /// `preempt` called between two (no lock is held then), and the fault is retried. Each retry
    /// follows a finished change, so the faulting thread makes progress unless other writers keep
    /// starting new changes on the same VMO.
    pub fn fault_in_steps(
        &self,
        vaddr: usize,
        access: MmuFlags,
        preempt: &mut dyn FnMut(),
    ) -> ZxResult {
        loop {
            match self.fault(vaddr, access) {
                Err(Status::ERR_SHOULD_WAIT) => {
                    let vmo = {
                        let tree = self.tree.lock();
                        let page_vaddr = vaddr - vaddr % PAGE_SIZE;
                        match tree.find_mapping(tree.root, page_vaddr) {
                            Some((_, _, _, m)) => m.vmo.clone(),
                            None => continue,
                        }
                    };
                    vmo.finish_transition(preempt);
                    drop(vmo);
                    preempt();
                }
                r => return r,
            }
        }
    }
}

/// Fault-around after a fault at `(vaddr, index)`: maps the committed pages that follow, up to
/// `end` (the end of the aligned window of FAULT_AROUND_PAGES, so within the faulting page's page
/// table, the mapping and the VMO), stopping at the first page not committed; nothing is
/// committed for them. A page shared with another VMO, or changing frame, is mapped `read_only`
/// (the second of `(flags, read_only)`). Returns what must be flushed.
fn fault_around(
    mmu: &mut dyn Mmu,
    inner: &VmoInner,
    vmo: &Vmo,
    (vaddr, index): (usize, u64),
    end: usize,
    (flags, read_only): (MmuFlags, MmuFlags),
) -> TlbFlush {
    let mut flush = TlbFlush::none();
    let last = index + ((end - vaddr) / PAGE_SIZE) as u64;
    let committed = inner.pages.range(index + 1..last.min(inner.page_count));
    for (next, (&i, &f)) in (index + 1..).zip(committed) {
        if i != next {
            break;
        }
        let at = vaddr + (i - index) as usize * PAGE_SIZE;
        if mmu.query(at).is_some() {
            continue;
        }
        let around_flags = if vmo.frame_is_shared(f) || Vmo::read_only_now_locked(inner, i) {
            read_only
        } else {
            flags
        };
        match mmu.map(at, f, around_flags) {
            Ok(f) => flush = flush.merge(f),
            Err(_) => break,
        }
    }
    flush
}
