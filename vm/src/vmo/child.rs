//! `zx_vmo_create_child`: snapshots (page lists copied by reference, frames shared by holder
//! count) and slices (windows onto their root VMO).

use super::*;

impl Vmo {
    /// `zx_vmo_create_child` after the syscall layer's part (the handle, NO_WRITE): `options`
    /// holds the child type and RESIZABLE, `size` is the requested size (rounded up to pages
    /// here). Statuses, in Zircon's order (`VmObjectDispatcher::CreateChildInternal`,
    /// `VmObjectPaged::CreateChildSlice` / `CreateClone`):
    /// - a size that overflows when rounded up, or above [`MAX_CHILD_SIZE`]: `ERR_OUT_OF_RANGE`;
    /// - a discardable VMO: `ERR_NOT_SUPPORTED`;
    /// - SLICE with any other option, an unaligned offset, or a window not inside this VMO
    ///   (overflow included): `ERR_INVALID_ARGS`; a slice of a resizable VMO: `ERR_NOT_SUPPORTED`;
    /// - neither SNAPSHOT nor SNAPSHOT_AT_LEAST_ON_WRITE (or both), or an unknown option:
    ///   `ERR_INVALID_ARGS`;
    /// - a snapshot of a slice: `ERR_NOT_SUPPORTED` (Zircon's `CowPageSourceThroughSlices`);
    /// - an unaligned offset: `ERR_INVALID_ARGS`; `offset + size` overflowing: `ERR_OUT_OF_RANGE`;
    /// - the child's range overflowing when projected onto the first VMO of the chain of
    ///   snapshots (this VMO's own offset there added): `ERR_INVALID_ARGS`.
    ///
    /// SNAPSHOT_AT_LEAST_ON_WRITE is a SNAPSHOT here, as in Zircon for VMOs without a pager. A
    /// snapshot may reach past this VMO's end: those pages read as zeros.
    pub fn create_child(
        self: &Arc<Vmo>,
        options: u32,
        offset: u64,
        size: u64,
    ) -> ZxResult<Arc<Vmo>> {
        self.create_child_in_steps(options, offset, size, &mut || {})
    }

    /// [`Vmo::create_child`], with `preempt` called (no lock held) between two steps of a
    /// snapshot of a range mapped in more places than one lock hold may visit (see
    /// `SnapshotWalk`).
    pub fn create_child_in_steps(
        self: &Arc<Vmo>,
        options: u32,
        offset: u64,
        size: u64,
        preempt: &mut dyn FnMut(),
    ) -> ZxResult<Arc<Vmo>> {
        let page_count = pages_for(size).ok_or(Status::ERR_OUT_OF_RANGE)?;
        if page_count > MAX_CHILD_SIZE / PAGE {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        if self.is_discardable() {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        if options & ZX_VMO_CHILD_SLICE != 0 {
            if options != ZX_VMO_CHILD_SLICE {
                return Err(Status::ERR_INVALID_ARGS);
            }
            return self.create_slice(offset, page_count, size);
        }
        let mut rest = options;
        if rest & ZX_VMO_CHILD_SNAPSHOT != 0 {
            rest &= !ZX_VMO_CHILD_SNAPSHOT;
        } else if rest & ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE != 0 {
            rest &= !ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE;
        } else {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let resizable = rest & ZX_VMO_CHILD_RESIZABLE != 0;
        rest &= !ZX_VMO_CHILD_RESIZABLE;
        if rest != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if self.slice.is_some() {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        if !offset.is_multiple_of(PAGE) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if offset.checked_add(page_count * PAGE).is_none() {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        // ZIRCON: the child's range projected onto the first VMO of the chain must not overflow
        // (`VmCowPages::CreateCloneLocked`, core test `VmoClone2TestCase.NoAccumulatedOverflow`).
        let root_offset = self
            .root_offset
            .checked_add(offset)
            .filter(|root| root.checked_add(page_count * PAGE).is_some())
            .ok_or(Status::ERR_INVALID_ARGS)?;
        self.create_snapshot(
            offset / PAGE,
            page_count,
            size,
            resizable,
            root_offset,
            preempt,
        )
    }

    /// A slice of `page_count` pages at byte `offset` (see [`Vmo::create_child`]).
    pub(super) fn create_slice(
        self: &Arc<Vmo>,
        offset: u64,
        page_count: u64,
        size: u64,
    ) -> ZxResult<Arc<Vmo>> {
        if !offset.is_multiple_of(PAGE) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let end = page_count
            .checked_mul(PAGE)
            .and_then(|len| offset.checked_add(len))
            .ok_or(Status::ERR_INVALID_ARGS)?;
        if end > self.size() {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if self.is_resizable() {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        let (root, base) = match &self.slice {
            Some((root, base)) => (root.clone(), base + offset),
            None => (self.clone(), offset),
        };
        let init = VmoInit {
            parent_id: self.id,
            slice: Some((root, base)),
            parent_children: Some(self.children.clone()),
            ..VmoInit::default()
        };
        let child = Vmo::new_object(self.phys.clone(), 0, page_count, size, init);
        self.children.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(child))
    }

    /// A snapshot of pages `[first, first + page_count)` (see [`Vmo::create_child`]): the child
    /// gets this VMO's frames in that range, each now held once more; this VMO's mappings of the
    /// range lose their entries first (they refault, and a shared frame is mapped read-only).
    /// One hold of this VMO's lock, O(committed pages in the range); no page data is copied.
    /// With more mappings than one hold may visit ([`FRAME_CHANGE_STEP_ENTRIES`]) the entries go
    /// first, in steps with `preempt` called between two (see `SnapshotWalk`).
    pub(super) fn create_snapshot(
        self: &Arc<Vmo>,
        first: u64,
        page_count: u64,
        size: u64,
        resizable: bool,
        root_offset: u64,
        preempt: &mut dyn FnMut(),
    ) -> ZxResult<Arc<Vmo>> {
        let mut held = HeldAspaces::new();
        let mut inner = self.inner.lock();
        // `end < first` for a snapshot wholly past the parent's end: it gets no page.
        let clip = |inner: &VmoInner| {
            first
                .saturating_add(page_count)
                .min(inner.page_count)
                .max(first)
        };
        let end = clip(&inner);
        if first < end && Self::needs_steps(&inner) && inner.snapshot_walk.is_none() {
            // More mappings than one hold may visit: the range's entries go in steps first
            // (see `SnapshotWalk`); the hold that ends the walk goes on below.
            self.in_family.store(true, Ordering::Relaxed);
            inner.snapshot_walk = Some(SnapshotWalk {
                first,
                end,
                after: None,
            });
            while !Self::snapshot_walk_step(&mut inner, &mut held) {
                drop(inner);
                // The step's VMO lock is released: its address-space references may go now.
                held.release();
                preempt();
                inner = self.inner.lock();
            }
        } else if first < end {
            self.unmap_locked(&inner, first, end, &mut held)?;
        }
        let end = clip(&inner);
        self.in_family.store(true, Ordering::Relaxed);
        let (pages, run_counts) = Self::snapshot_pages(&inner, first, end);
        for &frame in pages.values() {
            self.phys.share(frame);
        }
        drop(inner);
        drop(held);
        let options = if resizable { ZX_VMO_RESIZABLE } else { 0 };
        let init = VmoInit {
            parent_id: self.id,
            cow_clone: true,
            root_offset,
            pages,
            run_counts,
            in_family: true,
            parent_children: Some(self.children.clone()),
            ..VmoInit::default()
        };
        let child = Vmo::new_object(self.phys.clone(), options, page_count, size, init);
        self.children.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(child))
    }

    /// One step of a snapshot's walk (`inner.snapshot_walk`): removes the range's entries from
    /// at most [`FRAME_CHANGE_STEP_ENTRIES`] mappings (fewer when `held` has no room left without
    /// the heap). Returns true, with the walk cleared, when no mapping is left.
    fn snapshot_walk_step(inner: &mut VmoInner, held: &mut HeldAspaces) -> bool {
        let Some(w) = inner.snapshot_walk else {
            return true;
        };
        let (lo, hi) = (w.first.saturating_mul(PAGE), w.end.saturating_mul(PAGE));
        let mut walk = inner.mappings.overlapping_after(lo, hi, w.after);
        let mut visited = 0;
        while visited < FRAME_CHANGE_STEP_ENTRIES && !held.is_full() {
            let Some((vmo_offset, m)) = walk.next() else {
                inner.snapshot_walk = None;
                held.flush();
                return true;
            };
            visited += 1;
            let map_end = vmo_offset.saturating_add(m.size as u64);
            let (a, b) = (lo.max(vmo_offset), hi.min(map_end));
            if a >= b {
                continue;
            }
            if let Some(aspace) = m.aspace.upgrade() {
                // Both fit in usize: they lie inside the mapping's [base, base + len).
                let vaddr = m.base + (a - vmo_offset) as usize;
                held.unmap_inline(aspace, vaddr, ((b - a) / PAGE) as usize);
            }
        }
        // One flush per address space for the step, under the VMO lock.
        held.flush();
        let after = walk.last_key();
        if let Some(w) = inner.snapshot_walk.as_mut() {
            w.after = after;
        }
        false
    }

    /// A snapshot's page list and run counts for pages `[first, end)` of `inner`, re-keyed from
    /// 0: a clone of the parent's when the range covers it all (the common case: a structural
    /// copy), else the range, built in one sorted pass.
    fn snapshot_pages(
        inner: &VmoInner,
        first: u64,
        end: u64,
    ) -> (BTreeMap<u64, PhysAddr>, BTreeMap<u64, u32>) {
        if first == 0 && end == inner.page_count {
            return (inner.pages.clone(), inner.run_counts.clone());
        }
        let pages: BTreeMap<u64, PhysAddr> = inner
            .pages
            .range(first..end)
            .map(|(&index, &frame)| (index - first, frame))
            .collect();
        let mut run_counts = BTreeMap::new();
        for &at in pages.keys() {
            *run_counts.entry(at / COUNT_RUN).or_insert(0u32) += 1;
        }
        (pages, run_counts)
    }
}
