//! A VMO's pages: commit, decommit (in one hold or in steps), reads and writes (through a
//! kernel buffer or straight between frames), resize, and the removal of pages from every
//! mapping before their frames are freed.

use super::*;

impl Vmo {
    /// `[offset, offset + len)` as page indices `[first, end)`, checked against the size.
    pub(super) fn page_range(inner: &VmoInner, offset: u64, len: u64) -> ZxResult<(u64, u64)> {
        let end = offset.checked_add(len).ok_or(Status::ERR_OUT_OF_RANGE)?;
        let end_page = pages_for(end).ok_or(Status::ERR_OUT_OF_RANGE)?;
        if end_page > inner.page_count {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        Ok((offset / PAGE, end_page))
    }

    /// The frame of page `index` for a write: committed (a zeroed frame) if needed, and, when
    /// its frame is shared with another VMO of the family, replaced by a copy this VMO holds
    /// alone (the copy-on-write break). The page's entries in this VMO's mappings are removed
    /// before the copy replaces the frame (they mapped the shared frame read-only; they refault).
    /// The address spaces the unmap upgrades go to `held`.
    ///
    /// `ERR_SHOULD_WAIT` while the page's frame is changing in steps (`Transition`), or when
    /// this call had to start such a change (more than [`FRAME_CHANGE_STEP_ENTRIES`] mappings)
    /// or wait for another page's: the caller releases its locks, drives the change
    /// ([`Vmo::finish_transition`]) and calls again.
    pub(crate) fn commit_for_write_locked(
        &self,
        inner: &mut VmoInner,
        index: u64,
        held: &mut HeldAspaces,
    ) -> ZxResult<PhysAddr> {
        let frame = self.commit_page_locked(inner, index, held)?;
        if !self.frame_is_shared(frame) {
            return Ok(frame);
        }
        if Self::needs_steps(inner) {
            // Too many mappings for one hold: the copy goes in now, the shared frame's entries
            // go over several holds (see `Transition`).
            if inner.transition.is_some() {
                return Err(Status::ERR_SHOULD_WAIT);
            }
            let copy = self.phys.alloc_copy(frame)?;
            inner.pages.insert(index, copy);
            inner.transition = Some(Transition {
                index,
                old: Some(frame),
                after: None,
            });
            return Err(Status::ERR_SHOULD_WAIT);
        }
        let copy = self.phys.alloc_copy(frame)?;
        if let Err(status) = self.unmap_locked(inner, index, index + 1, held) {
            self.phys.free(copy);
            return Err(status);
        }
        inner.pages.insert(index, copy);
        // Frees the frame when the other holders let go of it meanwhile.
        self.phys.release(frame);
        Ok(copy)
    }

    /// This VMO lets go of `frame` (just taken out of its page list): freed when no other VMO
    /// holds it.
    pub(super) fn release_frame(&self, frame: PhysAddr) {
        if self.may_share() {
            self.phys.release(frame);
        } else {
            self.phys.free(frame);
        }
    }

    /// Does another VMO hold `frame` (one of this VMO's) too? Stable while this VMO's lock is
    /// held when false: only a snapshot of this VMO (under its lock) can add a holder.
    pub(crate) fn frame_is_shared(&self, frame: PhysAddr) -> bool {
        self.may_share() && self.phys.is_shared(frame)
    }

    /// Removes the page-table entries of pages `[first, end)` from every mapping of this VMO;
    /// the pages stay. Each address space is flushed once, when every mapping is done (one
    /// shootdown per address space for a decommit or shrink of a range, however many mappings
    /// it cuts), before this returns: the caller may free the frames at once. The address spaces
    /// it upgrades go to `held`. `ERR_NO_MEMORY` when `held` cannot grow (entries removed so far
    /// are flushed, and refault).
    pub(super) fn unmap_locked(
        &self,
        inner: &VmoInner,
        first: u64,
        end: u64,
        held: &mut HeldAspaces,
    ) -> ZxResult {
        let (start_off, end_off) = (first.saturating_mul(PAGE), end.saturating_mul(PAGE));
        let mut result = Ok(());
        for (vmo_offset, m) in inner.mappings.overlapping(start_off, end_off) {
            let map_end = vmo_offset.saturating_add(m.size as u64);
            let lo = start_off.max(vmo_offset);
            let hi = end_off.min(map_end);
            if lo >= hi {
                continue;
            }
            if let Some(aspace) = m.aspace.upgrade() {
                // Both fit in usize: they lie inside the mapping's [base, base + len).
                let vaddr = m.base + (lo - vmo_offset) as usize;
                let page_count = ((hi - lo) / PAGE) as usize;
                if let Err(status) = held.unmap_deferred(aspace, vaddr, page_count) {
                    result = Err(status);
                    break;
                }
            }
        }
        held.flush();
        result
    }

    /// The frame of page `index`, committing (allocating a zeroed frame) if needed. The frame
    /// may be shared: only for reading (see [`Vmo::commit_for_write_locked`]). A page committed
    /// here first loses its page-table entries in every mapping when the zero frame may be
    /// mapped for it ([`Vmo::zero_mapped`]): an uncommitted page's only entries are zero-frame
    /// entries, which must not outlive the commit (the address spaces the unmap upgrades go to
    /// `held`; `ERR_NO_MEMORY`, nothing committed, when `held` cannot grow). `ERR_SHOULD_WAIT`
    /// as in [`Vmo::commit_for_write_locked`].
    pub(crate) fn commit_page_locked(
        &self,
        inner: &mut VmoInner,
        index: u64,
        held: &mut HeldAspaces,
    ) -> ZxResult<PhysAddr> {
        if index >= inner.page_count {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        if Self::in_transition_locked(inner, index) {
            return Err(Status::ERR_SHOULD_WAIT);
        }
        if let Some(frame) = inner.pages.get(&index) {
            return Ok(*frame);
        }
        if self.zero_mapped() && Self::needs_steps(inner) {
            // Too many mappings for one hold: the zeroed frame goes in now, the zero-frame
            // entries go over several holds (see `Transition`).
            if inner.transition.is_some() {
                return Err(Status::ERR_SHOULD_WAIT);
            }
            let frame = self.phys.alloc_zeroed()?;
            inner.pages.insert(index, frame);
            *inner.run_counts.entry(index / COUNT_RUN).or_insert(0) += 1;
            inner.transition = Some(Transition {
                index,
                old: None,
                after: None,
            });
            return Err(Status::ERR_SHOULD_WAIT);
        }
        let frame = self.phys.alloc_zeroed()?;
        if self.zero_mapped() {
            if let Err(status) = self.unmap_locked(inner, index, index + 1, held) {
                self.phys.free(frame);
                return Err(status);
            }
        }
        inner.pages.insert(index, frame);
        *inner.run_counts.entry(index / COUNT_RUN).or_insert(0) += 1;
        Ok(frame)
    }

    /// The frame a read fault maps for page `index`: its committed frame, or, for a page not
    /// committed, the shared zero frame (nothing is committed; the VMO records that the zero
    /// frame may now be mapped for it, see [`Vmo::zero_mapped`]). The caller maps the zero
    /// frame read-only, under this VMO's lock. `ERR_OUT_OF_RANGE` past the end.
    pub(crate) fn frame_for_read_locked(&self, inner: &VmoInner, index: u64) -> ZxResult<PhysAddr> {
        if index >= inner.page_count {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        if let Some(frame) = inner.pages.get(&index) {
            return Ok(*frame);
        }
        self.zero_mapped.store(true, Ordering::Relaxed);
        Ok(self.phys.zero_frame())
    }

    /// Reads `buf.len()` bytes at `offset`. Uncommitted pages read as zeros and stay
    /// uncommitted. `ERR_OUT_OF_RANGE` when the range passes the end.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> ZxResult {
        if let Some(target) = self.in_root(offset, buf.len() as u64) {
            let (root, at) = target?;
            return root.read(at, buf);
        }
        let inner = self.inner.lock();
        Self::page_range(&inner, offset, buf.len() as u64)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let in_page = (pos % PAGE) as usize;
            let chunk = (PAGE_SIZE - in_page).min(buf.len() - done);
            let dst = &mut buf[done..done + chunk];
            match inner.pages.get(&(pos / PAGE)) {
                Some(frame) => self.phys.read(*frame, in_page, dst),
                None => dst.fill(0),
            }
            done += chunk;
        }
        Ok(())
    }

    /// Writes `buf` at `offset`, committing pages as needed. `ERR_OUT_OF_RANGE` when the range
    /// passes the end; `ERR_NO_MEMORY` when a frame cannot be allocated (pages committed before
    /// that stay committed and written, as in Zircon).
    /// A page changing frame in steps (`Transition`) is waited for by driving the change here
    /// with no preemption point: bounded callers use [`Vmo::write_pages`] and
    /// [`Vmo::finish_transition`].
    pub fn write(&self, offset: u64, buf: &[u8]) -> ZxResult {
        loop {
            match self.write_or_wait(offset, buf) {
                Err(Status::ERR_SHOULD_WAIT) => self.finish_transition(&mut || {}),
                r => return r,
            }
        }
    }

    /// [`Vmo::write`], but `ERR_SHOULD_WAIT` when a page is changing frame in steps
    /// (`Transition`; the bytes before it are written): drive the change
    /// ([`Vmo::finish_transition`]) and call again.
    pub fn write_or_wait(&self, offset: u64, buf: &[u8]) -> ZxResult {
        let mut done = 0usize;
        self.write_pages(offset, buf.len(), &mut |frame, in_page, len| {
            self.phys.write(frame, in_page, &buf[done..done + len]);
            done += len;
            true
        })
        .map(drop)
    }

    /// [`Vmo::read`] with the copying left to `copy`: under the VMO lock, `copy(frame,
    /// offset_in_page, len)` is called for each page piece of `[offset, offset + len)` in order
    /// (`None` for a page not committed, which reads as zeros) until one returns `false`.
    /// Returns the bytes of the pieces whose call returned `true` (where a caller resumes).
    /// `ERR_OUT_OF_RANGE` when the range passes the end (nothing called). `copy` runs under
    /// the VMO lock: it must not fault on memory whose fault would need this VMO.
    pub fn read_pages(
        &self,
        offset: u64,
        len: usize,
        copy: &mut dyn FnMut(Option<PhysAddr>, usize, usize) -> bool,
    ) -> ZxResult<usize> {
        if let Some(target) = self.in_root(offset, len as u64) {
            let (root, at) = target?;
            return root.read_pages(at, len, copy);
        }
        let inner = self.inner.lock();
        Self::page_range(&inner, offset, len as u64)?;
        let mut done = 0usize;
        while done < len {
            let pos = offset + done as u64;
            let in_page = (pos % PAGE) as usize;
            let chunk = (PAGE_SIZE - in_page).min(len - done);
            if !copy(inner.pages.get(&(pos / PAGE)).copied(), in_page, chunk) {
                break;
            }
            done += chunk;
        }
        Ok(done)
    }

    /// [`Vmo::write`] with the copying left to `copy`: each page of `[offset, offset + len)` is
    /// committed, then `copy(frame, offset_in_page, len)` fills its piece, until one returns
    /// `false`; returns the bytes of the pieces whose call returned `true`. `ERR_OUT_OF_RANGE`
    /// past the end (nothing done); `ERR_NO_MEMORY` when a frame cannot be allocated (the pieces
    /// before stay committed and written, as in [`Vmo::write`]). A page committed for a call
    /// that returned `false` stays committed (zeros). `copy` runs under the VMO lock.
    /// `ERR_SHOULD_WAIT` when a page is changing frame in steps (`Transition`; the pieces
    /// before it are written): drive the change ([`Vmo::finish_transition`]) and call again.
    pub fn write_pages(
        &self,
        offset: u64,
        len: usize,
        copy: &mut dyn FnMut(PhysAddr, usize, usize) -> bool,
    ) -> ZxResult<usize> {
        if let Some(target) = self.in_root(offset, len as u64) {
            let (root, at) = target?;
            return root.write_pages(at, len, copy);
        }
        let mut held = HeldAspaces::new();
        let mut inner = self.inner.lock();
        Self::page_range(&inner, offset, len as u64)?;
        let mut done = 0usize;
        let mut result = Ok(());
        while done < len {
            let pos = offset + done as u64;
            let in_page = (pos % PAGE) as usize;
            let chunk = (PAGE_SIZE - in_page).min(len - done);
            let frame = match self.commit_for_write_locked(&mut inner, pos / PAGE, &mut held) {
                Ok(frame) => frame,
                Err(status) => {
                    result = Err(status);
                    break;
                }
            };
            if !copy(frame, in_page, chunk) {
                break;
            }
            done += chunk;
        }
        drop(inner);
        // The address-space references go only now, after the VMO lock (see `HeldAspaces`).
        drop(held);
        result.map(|()| done)
    }

    /// Commits every page touching `[offset, offset + len)`. `ERR_OUT_OF_RANGE` past the end,
    /// `ERR_NO_MEMORY` when frames run out (earlier pages stay committed).
    /// A shared page is copied into this VMO (a commit is for writing, as Zircon's COMMIT of a
    /// clone forks its pages).
    /// A page changing frame in steps is waited for as in [`Vmo::write`].
    pub fn commit(&self, offset: u64, len: u64) -> ZxResult {
        loop {
            match self.commit_or_wait(offset, len) {
                Err(Status::ERR_SHOULD_WAIT) => self.finish_transition(&mut || {}),
                r => return r,
            }
        }
    }

    /// [`Vmo::commit`], but `ERR_SHOULD_WAIT` when a page is changing frame in steps
    /// (`Transition`; the pages before it are committed): drive the change
    /// ([`Vmo::finish_transition`]) and call again.
    pub fn commit_or_wait(&self, offset: u64, len: u64) -> ZxResult {
        if let Some(target) = self.in_root(offset, len) {
            let (root, at) = target?;
            return root.commit_or_wait(at, len);
        }
        let mut held = HeldAspaces::new();
        let mut inner = self.inner.lock();
        let (first, end) = Self::page_range(&inner, offset, len)?;
        let mut result = Ok(());
        for index in first..end {
            if let Err(status) = self.commit_for_write_locked(&mut inner, index, &mut held) {
                result = Err(status);
                break;
            }
        }
        drop(inner);
        drop(held);
        result
    }

    /// Decommits every page touching `[offset, offset + len)`: removes it from every mapping,
    /// flushes, and returns its frame. The pages read as zeros afterwards.
    /// `ERR_NO_MEMORY`, with nothing changed, only when more address spaces than
    /// `HeldAspaces` keeps inline map the range and the heap cannot hold their list.
    pub fn decommit(&self, offset: u64, len: u64) -> ZxResult {
        if let Some(target) = self.in_root(offset, len) {
            let (root, at) = target?;
            return root.decommit(at, len);
        }
        let mut held = HeldAspaces::new();
        let mut inner = self.inner.lock();
        let (first, end) = Self::page_range(&inner, offset, len)?;
        let result = self.remove_pages_locked(&mut inner, first, end, &mut held);
        drop(inner);
        // The address-space references go only now, after the VMO lock (see `HeldAspaces`).
        drop(held);
        result
    }

    /// Decommits page `index` (if committed) when it is mapped in more places than one lock hold
    /// should unmap: the page leaves the VMO first (from now on a write fault commits a fresh
    /// page and a read fault maps the zero page), then its page-table entries are removed from at most `per_step` mappings per hold
    /// of the VMO lock, with `preempt` called between two holds (with no lock held), and the frame
    /// is freed once no mapping can reach it. Mappings added or removed between two steps are
    /// fine: a walk resumes after the last back-reference it handled, a new mapping can only map
    /// the fresh page, and an entry of that fresh page removed on the way refaults.
    ///
    /// `ERR_NO_MEMORY`, with nothing changed, when the heap cannot hold one step's address-space
    /// references (released after each step's VMO lock, see `HeldAspaces`).
    pub fn decommit_page_in_steps(
        &self,
        index: u64,
        per_step: usize,
        preempt: &mut dyn FnMut(),
    ) -> ZxResult {
        if let Some((root, base)) = &self.slice {
            if index >= self.page_count() {
                return Ok(());
            }
            return root.decommit_page_in_steps(index + base / PAGE, per_step, preempt);
        }
        let per_step = per_step.max(1);
        let mut held = HeldAspaces::new();
        let frame = {
            let mut inner = self.inner.lock();
            let Some(frame) = inner.pages.remove(&index) else {
                return Ok(());
            };
            Self::uncount_locked(&mut inner, index);
            frame
        };
        let (lo, hi) = (
            index.saturating_mul(PAGE),
            index.saturating_add(1).saturating_mul(PAGE),
        );
        let mut after = None;
        loop {
            let more = {
                let inner = self.inner.lock();
                let mut walk = inner.mappings.overlapping_after(lo, hi, after);
                let mut done = 0;
                // A step also ends when `held` has no room left without the heap.
                while done < per_step && !held.is_full() {
                    let Some((vmo_offset, m)) = walk.next() else {
                        break;
                    };
                    done += 1;
                    if let Some(aspace) = m.aspace.upgrade() {
                        // Inside the mapping's [base, base + len): the window meets the page.
                        let vaddr = m.base + (lo - vmo_offset) as usize;
                        held.unmap_inline(aspace, vaddr, 1);
                    }
                }
                // One flush per address space for the step, under its VMO lock.
                held.flush();
                after = walk.last_key();
                done == per_step || held.is_full()
            };
            // The step's VMO lock is released: its address-space references may go now.
            held.release();
            if !more {
                break;
            }
            preempt();
        }
        self.release_frame(frame);
        Ok(())
    }

    /// True while page `index` is changing frame in steps (`Transition`): its entries must be
    /// read-only and nothing may write it.
    pub(crate) fn in_transition_locked(inner: &VmoInner, index: u64) -> bool {
        inner.transition.is_some_and(|t| t.index == index)
    }

    /// True when page `index` may be mapped only read-only now: it is changing frame in steps
    /// (`Transition`) or a snapshot of it is under way in steps (`SnapshotWalk`).
    pub(crate) fn read_only_now_locked(inner: &VmoInner, index: u64) -> bool {
        Self::in_transition_locked(inner, index)
            || inner
                .snapshot_walk
                .is_some_and(|w| (w.first..w.end).contains(&index))
    }

    /// A write fault on page `index` maps it writable: a snapshot walk over it starts again.
    pub(crate) fn wrote_mapping_locked(inner: &mut VmoInner, index: u64) {
        if let Some(w) = inner.snapshot_walk.as_mut() {
            if (w.first..w.end).contains(&index) {
                w.after = None;
            }
        }
    }

    /// True when a frame change must go in steps: more mappings than one hold may visit.
    pub(super) fn needs_steps(inner: &VmoInner) -> bool {
        inner.mappings.len() > FRAME_CHANGE_STEP_ENTRIES
    }

    /// One step of the frame change in progress (`Transition`), if any: the page's entries
    /// are removed from up to `per_step` more mappings, under one hold of the VMO lock; the
    /// walk resumes after the last back-reference it handled (a mapping added meanwhile maps
    /// only the new frame, read-only; an entry of the new frame removed on the way refaults).
    /// When the walk ends, the old frame is let go of and the change is over. Returns true when
    /// no change is in progress any more.
    pub fn step_transition(&self, per_step: usize) -> bool {
        if let Some((root, _)) = &self.slice {
            return root.step_transition(per_step);
        }
        let per_step = per_step.max(1);
        let mut held = HeldAspaces::new();
        let done = {
            let mut inner = self.inner.lock();
            let Some(t) = inner.transition else {
                return true;
            };
            let (lo, hi) = (
                t.index.saturating_mul(PAGE),
                t.index.saturating_add(1).saturating_mul(PAGE),
            );
            let mut walk = inner.mappings.overlapping_after(lo, hi, t.after);
            let mut visited = 0;
            let mut ended = false;
            // A step also ends when `held` has no room left without the heap.
            while visited < per_step && !held.is_full() {
                let Some((vmo_offset, m)) = walk.next() else {
                    ended = true;
                    break;
                };
                visited += 1;
                if let Some(aspace) = m.aspace.upgrade() {
                    // Inside the mapping's [base, base + len): the window meets the page.
                    let vaddr = m.base + (lo - vmo_offset) as usize;
                    held.unmap_inline(aspace, vaddr, 1);
                }
            }
            // One flush per address space for the step, before the old frame may go.
            held.flush();
            let after = walk.last_key().or(t.after);
            if ended {
                inner.transition = None;
                if let Some(old) = t.old {
                    self.release_frame(old);
                }
            } else if let Some(cur) = inner.transition.as_mut() {
                cur.after = after;
            }
            ended
        };
        // The step's VMO lock is released: its address-space references may go now.
        drop(held);
        done
    }

    /// Drives the frame change in progress (`Transition`) to its end, [`FRAME_CHANGE_STEP_ENTRIES`]
    /// mappings per hold of the VMO lock, calling `preempt` (with no lock held) between two.
    pub fn finish_transition(&self, preempt: &mut dyn FnMut()) {
        while !self.step_transition(FRAME_CHANGE_STEP_ENTRIES) {
            preempt();
        }
    }

    /// Takes page `index` (just removed from `pages`) out of its run's count.
    pub(super) fn uncount_locked(inner: &mut VmoInner, index: u64) {
        let run = index / COUNT_RUN;
        if let Some(n) = inner.run_counts.get_mut(&run) {
            *n -= 1;
            if *n == 0 {
                inner.run_counts.remove(&run);
            }
        }
    }

    /// Changes the size to `size_bytes` rounded up to pages. Not resizable -> `ERR_UNAVAILABLE`
    /// (Zircon's zx_vmo_set_size); a snapshot child whose new range would overflow when projected
    /// onto the first VMO of its chain -> `ERR_INVALID_ARGS`. Shrinking unmaps the cut pages from every mapping and frees
    /// their frames; the mappings stay, and later faults there get `ERR_OUT_OF_RANGE`.
    pub fn resize(&self, size_bytes: u64) -> ZxResult {
        if !self.is_resizable() {
            return Err(Status::ERR_UNAVAILABLE);
        }
        let new_count = pages_for(size_bytes).ok_or(Status::ERR_OUT_OF_RANGE)?;
        // ZIRCON: a snapshot child's new range projected onto the first VMO of its chain must not
        // overflow (core test `VmoClone2TestCase.NoAccumulatedOverflow`).
        if new_count
            .checked_mul(PAGE)
            .and_then(|len| self.root_offset.checked_add(len))
            .is_none()
        {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let mut held = HeldAspaces::new();
        let mut inner = self.inner.lock();
        let mut result = Ok(());
        if new_count < inner.page_count {
            let old = inner.page_count;
            result = self.remove_pages_locked(&mut inner, new_count, old, &mut held);
        }
        if result.is_ok() {
            inner.page_count = new_count;
            inner.content_size = size_bytes;
        }
        drop(inner);
        // The address-space references go only now, after the VMO lock (see `HeldAspaces`).
        drop(held);
        result
    }

    /// RangeChangeUpdate: unmaps pages `[first, end)` from every mapping (flushing each address
    /// space), then frees their frames. The address spaces it upgrades go to `held`, for the
    /// caller to drop after the VMO lock. `ERR_NO_MEMORY` when `held` cannot grow; then no frame
    /// was freed (some mappings may have lost their entries for pages that stay: they refault).
    pub(super) fn remove_pages_locked(
        &self,
        inner: &mut VmoInner,
        first: u64,
        end: u64,
        held: &mut HeldAspaces,
    ) -> ZxResult {
        if first >= end {
            return Ok(());
        }
        // No page committed in the range and no zero-frame entry possible: nothing can be
        // mapped, nothing to free. (No list of the pages is collected: that would be a heap
        // allocation per decommit.) Zero-frame entries of uncommitted pages are removed with the
        // rest: a shrink must not leave a page past the end readable.
        if inner.pages.range(first..end).next().is_none() && !self.zero_mapped() {
            return Ok(());
        }
        self.unmap_locked(inner, first, end, held)?;
        // Every page-table entry is gone: let go of the frames (freeing those no other VMO
        // holds), one B-tree descent each.
        let mut from = first;
        while let Some((&index, _)) = inner.pages.range(from..end).next() {
            if let Some(frame) = inner.pages.remove(&index) {
                self.release_frame(frame);
                Self::uncount_locked(inner, index);
            }
            from = index + 1;
        }
        Ok(())
    }
}
