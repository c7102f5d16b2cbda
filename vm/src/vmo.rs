//! Virtual memory objects: sparse, zero-filled-on-demand pages of memory shared through `Arc`.
//!
//! This module owns [`Vmo`]: its page list (`BTreeMap` page index -> frame), commit / decommit,
//! byte reads and writes, resize, the content size, the lock count of a discardable VMO, and the
//! list of back-references to the mappings that map it.
//!
//! The back-references (`backrefs`) are Zircon's `RangeChangeUpdate`: when pages leave the VMO (decommit,
//! shrink) every mapping of the affected range gets its page-table entries removed and the TLB
//! flushed BEFORE the frames go back to the allocator. Each back-reference holds a
//! `Weak<AddressSpace>` (no `Arc` cycle: address spaces own VMOs through their mappings, VMOs
//! never own address spaces) plus the mapping's `base`, `len` and `vmo_offset`, which the address
//! space keeps up to date under both its tree lock and this VMO's lock.
//!
//! Children (`zx_vmo_create_child`, [`Vmo::create_child`]): a snapshot copies its parent's page
//! list (frame references, never page data) and the two then share those frames, each frame's
//! holders counted by the frame allocator ([`PhysMem::share`] / [`PhysMem::release`]); a write to
//! a shared frame copies it once into the writer, and the last holder of a frame frees it. A slice holds no pages: it is a window onto
//! the pages of the VMO it was cut from (its root, never itself a slice). See docs/vm.md,
//! "Copy-on-write children".
//!
//! Lock order (see docs/vm.md): aspace tree lock -> VMO lock -> aspace MMU lock -> PhysMem. An address space upgraded under the VMO lock is dropped after it (`HeldAspaces`).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
#[cfg(test)]
use alloc::sync::Weak;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use abi::info::ZX_MAX_NAME_LEN;
use abi::vmo_options::{
    ZX_VMO_CHILD_RESIZABLE, ZX_VMO_CHILD_SLICE, ZX_VMO_CHILD_SNAPSHOT,
    ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE, ZX_VMO_DISCARDABLE, ZX_VMO_RESIZABLE,
};
use abi::{Status, ZxResult, PAGE_SIZE};
use lock_order::{Class, OrderedGuard as MutexGuard, OrderedMutex as Mutex};

use crate::arch_traits::{PhysAddr, PhysMem};
pub(crate) use crate::backrefs::{BackRefKey, BackRefs, MappingRef};
use crate::AddressSpace;

const PAGE: u64 = PAGE_SIZE as u64;

static NEXT_VMO_ID: AtomicU64 = AtomicU64::new(1);

/// The state behind a VMO's lock.
pub(crate) struct VmoInner {
    pub(crate) page_count: u64,
    pub(crate) pages: BTreeMap<u64, PhysAddr>,
    /// Committed pages per run of [`COUNT_RUN`] page indices (key: index / `COUNT_RUN`; runs
    /// with none are absent), so [`Vmo::committed_pages_in`] sums whole runs instead of walking
    /// every page.
    pub(crate) run_counts: BTreeMap<u64, u32>,
    /// The mappings of this VMO, ordered by VMO window.
    pub(crate) mappings: BackRefs,
    /// `ZX_PROP_VMO_CONTENT_SIZE`: the size in bytes the VMO was created or last resized with
    /// (not rounded to pages), or what was last set.
    pub(crate) content_size: u64,
    /// Outstanding LOCK / TRY_LOCK operations of a discardable VMO (UNLOCK takes one back).
    pub(crate) lock_count: u64,
}

/// A virtual memory object: `page_count` pages, each either committed (backed by a frame) or
/// not (reads as zeros). Shared through `Arc<Vmo>`; all state is behind an internal lock.
pub struct Vmo {
    id: u64,
    options: u32,
    phys: Arc<dyn PhysMem>,
    inner: Mutex<VmoInner>,
    /// `ZX_PROP_NAME`: up to 31 bytes, NUL-padded (a leaf lock: nothing is taken under it).
    name: spin::Mutex<[u8; ZX_MAX_NAME_LEN]>,
    /// The id of the VMO this one is a child of (0: none).
    parent_id: u64,
    /// A snapshot child (ZX_INFO_VMO_IS_COW_CLONE).
    cow_clone: bool,
    /// A slice: the VMO that holds its pages (never itself a slice) and the slice's first byte
    /// there (page-aligned).
    slice: Option<(Arc<Vmo>, u64)>,
    /// This VMO's live children; each child holds it and decrements it when dropped.
    children: Arc<AtomicUsize>,
    /// The parent's `children`, for a child.
    parent_children: Option<Arc<AtomicUsize>>,
    /// True once the VMO belongs to a clone family (a snapshot was taken of it, or it is one):
    /// its frames may be shared, so its mappings never get a write permission without a fault.
    in_family: AtomicBool,
}

/// Copies one frame's contents into another, through a small stack buffer.
fn copy_frame(phys: &dyn PhysMem, from: PhysAddr, to: PhysAddr) {
    let mut buf = [0u8; 512];
    for off in (0..PAGE_SIZE).step_by(buf.len()) {
        phys.read(from, off, &mut buf);
        phys.write(to, off, &buf);
    }
}

/// Page indices per entry of `VmoInner::run_counts`: a range count walks at most two partial
/// runs page by page (< 2 x 64 steps) plus one entry per whole run.
pub const COUNT_RUN: u64 = 64;

/// The largest child size (Zircon's `VmObjectPaged::MAX_SIZE`, `VmPageList::MAX_SIZE`: `u64::MAX`
/// rounded down to 128 KiB); `VmObject::RoundSize` refuses larger sizes with OUT_OF_RANGE.
pub const MAX_CHILD_SIZE: u64 = !((1 << 17) - 1);

/// Rounds `len` up to a whole number of pages, `None` on overflow.
pub(crate) fn pages_for(len: u64) -> Option<u64> {
    Some(len.checked_add(PAGE - 1)? / PAGE)
}

impl Vmo {
    /// Creates a VMO of `size_bytes` (rounded up to whole pages) with `options` from
    /// [`abi::vmo_options`]. Unknown options -> `ERR_INVALID_ARGS`; a size that overflows when
    /// rounded up -> `ERR_OUT_OF_RANGE`. No frame is allocated until a page is committed.
    pub fn create(phys: Arc<dyn PhysMem>, size_bytes: u64, options: u32) -> ZxResult<Arc<Vmo>> {
        if options & !(ZX_VMO_RESIZABLE | ZX_VMO_DISCARDABLE) != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let page_count = pages_for(size_bytes).ok_or(Status::ERR_OUT_OF_RANGE)?;
        Ok(Arc::new(Vmo::new_object(
            phys,
            options,
            page_count,
            size_bytes,
            VmoInit::default(),
        )))
    }

    /// A VMO object with the given page list (empty for a new VMO).
    fn new_object(
        phys: Arc<dyn PhysMem>,
        options: u32,
        page_count: u64,
        content_size: u64,
        init: VmoInit,
    ) -> Vmo {
        let in_family = init.in_family;
        Vmo {
            id: NEXT_VMO_ID.fetch_add(1, Ordering::Relaxed),
            options,
            phys,
            inner: Mutex::new(
                Class::Vmo,
                VmoInner {
                    page_count,
                    pages: init.pages,
                    run_counts: init.run_counts,
                    mappings: BackRefs::default(),
                    content_size,
                    lock_count: 0,
                },
            ),
            name: spin::Mutex::new([0; ZX_MAX_NAME_LEN]),
            parent_id: init.parent_id,
            cow_clone: init.cow_clone,
            slice: init.slice,
            children: Arc::new(AtomicUsize::new(0)),
            parent_children: init.parent_children,
            in_family: AtomicBool::new(in_family),
        }
    }

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
    /// - an unaligned offset: `ERR_INVALID_ARGS`; `offset + size` overflowing: `ERR_OUT_OF_RANGE`.
    ///
    /// SNAPSHOT_AT_LEAST_ON_WRITE is a SNAPSHOT here, as in Zircon for VMOs without a pager. A
    /// snapshot may reach past this VMO's end: those pages read as zeros.
    pub fn create_child(
        self: &Arc<Vmo>,
        options: u32,
        offset: u64,
        size: u64,
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
        self.create_snapshot(offset / PAGE, page_count, size, resizable)
    }

    /// A slice of `page_count` pages at byte `offset` (see [`Vmo::create_child`]).
    fn create_slice(
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
    fn create_snapshot(
        self: &Arc<Vmo>,
        first: u64,
        page_count: u64,
        size: u64,
        resizable: bool,
    ) -> ZxResult<Arc<Vmo>> {
        let mut held = HeldAspaces::new();
        let inner = self.inner.lock();
        // `end < first` for a snapshot wholly past the parent's end: it gets no page.
        let end = first
            .saturating_add(page_count)
            .min(inner.page_count)
            .max(first);
        if first < end {
            self.unmap_locked(&inner, first, end, &mut held)?;
        }
        self.in_family.store(true, Ordering::Relaxed);
        // The child's page list: a clone of the parent's when the range covers it all (the
        // common case: a structural copy), else the range, re-keyed, built in one sorted pass.
        let (pages, run_counts) = if first == 0 && end == inner.page_count {
            (inner.pages.clone(), inner.run_counts.clone())
        } else {
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
        };
        for &frame in pages.values() {
            self.phys.share(frame);
        }
        drop(inner);
        drop(held);
        let options = if resizable { ZX_VMO_RESIZABLE } else { 0 };
        let init = VmoInit {
            parent_id: self.id,
            cow_clone: true,
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

    /// The id of the VMO this one is a child of (0 for a VMO made by [`Vmo::create`]).
    pub fn parent_id(&self) -> u64 {
        self.parent_id
    }

    /// Live children made from this VMO (children of children not counted).
    pub fn child_count(&self) -> usize {
        self.children.load(Ordering::Relaxed)
    }

    /// True for a snapshot child.
    pub fn is_cow_clone(&self) -> bool {
        self.cow_clone
    }

    /// True for a slice.
    pub fn is_slice(&self) -> bool {
        self.slice.is_some()
    }

    /// For a slice: the VMO holding its pages and the slice's first byte there.
    pub fn slice_of(&self) -> Option<(&Arc<Vmo>, u64)> {
        self.slice.as_ref().map(|(root, base)| (root, *base))
    }

    /// True once the VMO belongs to a clone family: its frames may be shared, so a mapping of it
    /// gets write access to a page only through a write fault.
    pub fn may_share(&self) -> bool {
        self.in_family.load(Ordering::Relaxed)
    }

    /// For a slice, `[offset, offset + len)` checked against the slice's size
    /// (`ERR_OUT_OF_RANGE`) and moved into its root: `Some((root, root_offset))`. `None` for a
    /// VMO that is not a slice.
    fn in_root(&self, offset: u64, len: u64) -> Option<ZxResult<(&Arc<Vmo>, u64)>> {
        let (root, base) = self.slice.as_ref()?;
        let fits = offset
            .checked_add(len)
            .is_some_and(|end| end <= self.size());
        Some(if fits {
            Ok((root, base + offset))
        } else {
            Err(Status::ERR_OUT_OF_RANGE)
        })
    }

    /// `ZX_PROP_NAME`: the name, NUL-padded to `ZX_MAX_NAME_LEN` bytes (empty until set).
    pub fn name(&self) -> [u8; ZX_MAX_NAME_LEN] {
        *self.name.lock()
    }

    /// Sets `ZX_PROP_NAME`: the first `ZX_MAX_NAME_LEN - 1` bytes of `name` (Zircon truncates).
    pub fn set_name(&self, name: &[u8]) {
        let mut n = [0; ZX_MAX_NAME_LEN];
        let len = name.len().min(ZX_MAX_NAME_LEN - 1);
        n[..len].copy_from_slice(&name[..len]);
        *self.name.lock() = n;
    }

    /// `ZX_PROP_VMO_CONTENT_SIZE`: the creation or last resize size in bytes (not rounded up),
    /// or the last value set.
    pub fn content_size(&self) -> u64 {
        self.inner.lock().content_size
    }

    /// Sets `ZX_PROP_VMO_CONTENT_SIZE`. ZIRCON: any value, past the VMO's size too (core test
    /// `VmoTestCase.ContentSize` sets `size + 15643`); nothing else changes.
    pub fn set_content_size(&self, content_size: u64) {
        self.inner.lock().content_size = content_size;
    }

    /// LOCK / TRY_LOCK of a discardable VMO over `[offset, offset + len)`: not discardable ->
    /// `ERR_NOT_SUPPORTED`; a range other than the whole VMO -> `ERR_OUT_OF_RANGE`. Pages are
    /// never discarded here, so a lock always finds them and only counts.
    pub fn lock_discardable(&self, offset: u64, len: u64) -> ZxResult {
        let mut inner = self.discardable_whole_range(offset, len)?;
        inner.lock_count = inner.lock_count.saturating_add(1);
        Ok(())
    }

    /// UNLOCK of a discardable VMO: the errors of [`Vmo::lock_discardable`], then
    /// `ERR_BAD_STATE` when it is not locked.
    pub fn unlock_discardable(&self, offset: u64, len: u64) -> ZxResult {
        let mut inner = self.discardable_whole_range(offset, len)?;
        if inner.lock_count == 0 {
            return Err(Status::ERR_BAD_STATE);
        }
        inner.lock_count -= 1;
        Ok(())
    }

    /// True while a discardable VMO has an outstanding lock.
    pub fn is_locked(&self) -> bool {
        self.inner.lock().lock_count > 0
    }

    /// The checks the lock operations share, in Zircon's order (`VmObjectPaged::LockRange`:
    /// discardable, then the whole VMO); the VMO lock is held on success.
    fn discardable_whole_range(&self, offset: u64, len: u64) -> ZxResult<MutexGuard<'_, VmoInner>> {
        if !self.is_discardable() {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        let inner = self.inner.lock();
        if offset != 0 || len != inner.page_count.saturating_mul(PAGE) {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        Ok(inner)
    }

    /// A process-unique id (for introspection listings).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// True when created with `ZX_VMO_RESIZABLE`.
    pub fn is_resizable(&self) -> bool {
        self.options & ZX_VMO_RESIZABLE != 0
    }

    /// True when created with `ZX_VMO_DISCARDABLE`.
    pub fn is_discardable(&self) -> bool {
        self.options & ZX_VMO_DISCARDABLE != 0
    }

    /// Size in pages.
    pub fn page_count(&self) -> u64 {
        self.inner.lock().page_count
    }

    /// Size in bytes (always a whole number of pages; saturates for sizes beyond `u64`).
    pub fn size(&self) -> u64 {
        self.page_count().saturating_mul(PAGE)
    }

    /// Pages currently backed by a frame (for a slice: the pages of its window in its root; a
    /// frame shared with another VMO counts in each).
    pub fn committed_page_count(&self) -> usize {
        if self.slice.is_some() {
            return self.committed_pages_in(0, self.page_count());
        }
        self.inner.lock().pages.len()
    }

    /// Committed pages among page indices `[first_page, end_page)`: the partial runs at either
    /// end page by page, the whole runs between from their counts (so the cost is below
    /// `2 * COUNT_RUN` plus one step per committed run in the range).
    pub fn committed_pages_in(&self, first_page: u64, end_page: u64) -> usize {
        if first_page >= end_page {
            return 0;
        }
        if let Some((root, base)) = &self.slice {
            let end_page = end_page.min(self.page_count());
            let b = base / PAGE;
            return root
                .committed_pages_in(first_page.saturating_add(b), end_page.saturating_add(b));
        }
        let inner = self.inner.lock();
        let first_whole = first_page.div_ceil(COUNT_RUN);
        let end_whole = end_page / COUNT_RUN;
        if first_whole >= end_whole {
            return inner.pages.range(first_page..end_page).count();
        }
        let head = inner
            .pages
            .range(first_page..first_whole * COUNT_RUN)
            .count();
        let tail = inner.pages.range(end_whole * COUNT_RUN..end_page).count();
        let whole: u64 = inner
            .run_counts
            .range(first_whole..end_whole)
            .map(|(_, &n)| u64::from(n))
            .sum();
        head + tail + whole as usize
    }

    /// The first committed page index in `[from, end)`, if any. O(log n).
    pub fn next_committed(&self, from: u64, end: u64) -> Option<u64> {
        if from >= end {
            return None;
        }
        if let Some((root, base)) = &self.slice {
            let b = base / PAGE;
            let end = end.min(self.page_count());
            return root
                .next_committed(from.saturating_add(b), end.saturating_add(b))
                .map(|i| i - b);
        }
        self.inner
            .lock()
            .pages
            .range(from..end)
            .next()
            .map(|(&i, _)| i)
    }

    /// The frame backing page `page_index`, if committed.
    pub fn frame_of(&self, page_index: u64) -> Option<PhysAddr> {
        if let Some((root, base)) = &self.slice {
            if page_index >= self.page_count() {
                return None;
            }
            return root.frame_of(page_index + base / PAGE);
        }
        self.inner.lock().pages.get(&page_index).copied()
    }

    /// Number of mappings (in any address space) that currently map this VMO.
    pub fn mapping_count(&self) -> usize {
        self.inner.lock().mappings.len()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, VmoInner> {
        self.inner.lock()
    }

    /// `[offset, offset + len)` as page indices `[first, end)`, checked against the size.
    fn page_range(inner: &VmoInner, offset: u64, len: u64) -> ZxResult<(u64, u64)> {
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
    pub(crate) fn commit_for_write_locked(
        &self,
        inner: &mut VmoInner,
        index: u64,
        held: &mut HeldAspaces,
    ) -> ZxResult<PhysAddr> {
        let frame = self.commit_page_locked(inner, index)?;
        if !self.frame_is_shared(frame) {
            return Ok(frame);
        }
        let copy = self.phys.alloc_zeroed()?;
        if let Err(status) = self.unmap_locked(inner, index, index + 1, held) {
            self.phys.free(copy);
            return Err(status);
        }
        copy_frame(&*self.phys, frame, copy);
        inner.pages.insert(index, copy);
        // Frees the frame when the other holders let go of it meanwhile.
        self.phys.release(frame);
        Ok(copy)
    }

    /// This VMO lets go of `frame` (just taken out of its page list): freed when no other VMO
    /// holds it.
    fn release_frame(&self, frame: PhysAddr) {
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

    /// Removes the page-table entries of pages `[first, end)` from every mapping of this VMO
    /// (flushing each address space); the pages stay. The address spaces it upgrades go to
    /// `held`. `ERR_NO_MEMORY` when `held` cannot grow (entries removed so far refault).
    fn unmap_locked(
        &self,
        inner: &VmoInner,
        first: u64,
        end: u64,
        held: &mut HeldAspaces,
    ) -> ZxResult {
        let (start_off, end_off) = (first.saturating_mul(PAGE), end.saturating_mul(PAGE));
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
                aspace.unmap_pages_for_vmo(vaddr, page_count);
                held.keep(aspace)?;
            }
        }
        Ok(())
    }

    /// The frame of page `index`, committing (allocating a zeroed frame) if needed. The frame
    /// may be shared: only for reading (see [`Vmo::commit_for_write_locked`]).
    pub(crate) fn commit_page_locked(
        &self,
        inner: &mut VmoInner,
        index: u64,
    ) -> ZxResult<PhysAddr> {
        if index >= inner.page_count {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        if let Some(frame) = inner.pages.get(&index) {
            return Ok(*frame);
        }
        let frame = self.phys.alloc_zeroed()?;
        inner.pages.insert(index, frame);
        *inner.run_counts.entry(index / COUNT_RUN).or_insert(0) += 1;
        Ok(frame)
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
    pub fn write(&self, offset: u64, buf: &[u8]) -> ZxResult {
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
    pub fn commit(&self, offset: u64, len: u64) -> ZxResult {
        if let Some(target) = self.in_root(offset, len) {
            let (root, at) = target?;
            return root.commit(at, len);
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
    /// should unmap: the page leaves the VMO first (a fault from now on commits a fresh zero
    /// page), then its page-table entries are removed from at most `per_step` mappings per hold
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
                        aspace.unmap_pages_for_vmo(vaddr, 1);
                        held.keep_inline(aspace);
                    }
                }
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

    /// Takes page `index` (just removed from `pages`) out of its run's count.
    fn uncount_locked(inner: &mut VmoInner, index: u64) {
        let run = index / COUNT_RUN;
        if let Some(n) = inner.run_counts.get_mut(&run) {
            *n -= 1;
            if *n == 0 {
                inner.run_counts.remove(&run);
            }
        }
    }

    /// Changes the size to `size_bytes` rounded up to pages. Not resizable -> `ERR_UNAVAILABLE`
    /// (Zircon's zx_vmo_set_size). Shrinking unmaps the cut pages from every mapping and frees
    /// their frames; the mappings stay, and later faults there get `ERR_OUT_OF_RANGE`.
    pub fn resize(&self, size_bytes: u64) -> ZxResult {
        if !self.is_resizable() {
            return Err(Status::ERR_UNAVAILABLE);
        }
        let new_count = pages_for(size_bytes).ok_or(Status::ERR_OUT_OF_RANGE)?;
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
    fn remove_pages_locked(
        &self,
        inner: &mut VmoInner,
        first: u64,
        end: u64,
        held: &mut HeldAspaces,
    ) -> ZxResult {
        if first >= end {
            return Ok(());
        }
        // No page committed in the range: nothing can be mapped, nothing to free. (No list of
        // the pages is collected: that would be a heap allocation per decommit.)
        if inner.pages.range(first..end).next().is_none() {
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
    fn holds(&self, aspace: &Arc<AddressSpace>) -> bool {
        self.inline[..self.used]
            .iter()
            .flatten()
            .chain(self.more.iter())
            .any(|a| Arc::ptr_eq(a, aspace))
    }

    /// Keeps `aspace` until [`HeldAspaces::release`] or drop. A second reference to an address
    /// space already kept is dropped at once: the kept one outlives it, so it is not the last.
    fn keep(&mut self, aspace: Arc<AddressSpace>) -> ZxResult {
        if self.holds(&aspace) {
            return Ok(());
        }
        if self.used < Self::INLINE {
            self.inline[self.used] = Some(aspace);
            self.used += 1;
            return Ok(());
        }
        self.more
            .try_reserve(1)
            .map_err(|_| Status::ERR_NO_MEMORY)?;
        self.more.push(aspace);
        Ok(())
    }

    /// [`HeldAspaces::keep`] for a walk that checks [`HeldAspaces::is_full`] first: never uses
    /// the heap.
    fn keep_inline(&mut self, aspace: Arc<AddressSpace>) {
        if self.holds(&aspace) {
            return;
        }
        if self.used < Self::INLINE {
            self.inline[self.used] = Some(aspace);
            self.used += 1;
        } else {
            // Unreachable when the caller checked `is_full`; kept rather than dropped under the
            // lock if it did not (a push that may allocate beats a self-deadlock).
            self.more.push(aspace);
        }
    }

    /// No inline room is left.
    fn is_full(&self) -> bool {
        self.used == Self::INLINE
    }

    /// Drops every kept reference (call with no VMO lock held).
    fn release(&mut self) {
        for slot in &mut self.inline[..self.used] {
            *slot = None;
        }
        self.used = 0;
        self.more.clear();
    }
}

/// What a new VMO object starts with besides its size (all empty for [`Vmo::create`]).
#[derive(Default)]
struct VmoInit {
    parent_id: u64,
    cow_clone: bool,
    slice: Option<(Arc<Vmo>, u64)>,
    pages: BTreeMap<u64, PhysAddr>,
    run_counts: BTreeMap<u64, u32>,
    in_family: bool,
    parent_children: Option<Arc<AtomicUsize>>,
}

impl Drop for Vmo {
    /// Lets go of every frame (freeing those no other VMO of the family holds) and leaves the
    /// parent's child count. Children are not affected: a snapshot holds its own frame
    /// references, a slice holds its root.
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        let pages = core::mem::take(&mut inner.pages);
        for (_, frame) in pages {
            self.release_frame(frame);
        }
        if let Some(parent_children) = &self.parent_children {
            parent_children.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl core::fmt::Debug for Vmo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Vmo")
            .field("id", &self.id)
            .field("page_count", &inner.page_count)
            .field("committed", &inner.pages.len())
            .field("resizable", &self.is_resizable())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soft_mmu::SoftPhysMem;

    fn phys(frames: usize) -> (Arc<SoftPhysMem>, Arc<dyn PhysMem>) {
        let p = SoftPhysMem::new(frames);
        let d: Arc<dyn PhysMem> = p.clone();
        (p, d)
    }

    #[test]
    fn create_rounds_up_and_rejects_bad_options_and_overflow() {
        let (_, p) = phys(4);
        let vmo = Vmo::create(p.clone(), 1, 0).unwrap();
        assert_eq!(vmo.page_count(), 1);
        assert_eq!(vmo.size(), 4096);
        assert_eq!(
            Vmo::create(p.clone(), 0, 1 << 7).unwrap_err(),
            Status::ERR_INVALID_ARGS
        );
        assert_eq!(
            Vmo::create(p, u64::MAX, 0).unwrap_err(),
            Status::ERR_OUT_OF_RANGE
        );
    }

    #[test]
    fn range_counts_match_a_page_walk() {
        let (_, p) = phys(2048);
        let pages = 5 * COUNT_RUN + 17;
        let vmo = Vmo::create(p, pages * PAGE, 0).unwrap();
        use crate::RandomSource;
        let mut rng = crate::SplitMix64::new(7);
        for round in 0..200 {
            let a = rng.next_u64() % pages;
            let b = a + rng.next_u64() % (pages - a) + 1;
            if round % 3 == 2 {
                vmo.decommit(a * PAGE, (b - a) * PAGE).unwrap();
            } else {
                vmo.commit(a * PAGE, (b - a) * PAGE).unwrap();
            }
            for _ in 0..20 {
                let lo = rng.next_u64() % (pages + 1);
                let hi = lo + rng.next_u64() % (pages + 1 - lo);
                let want = vmo.lock().pages.range(lo..hi).count();
                assert_eq!(vmo.committed_pages_in(lo, hi), want, "[{lo}, {hi})");
            }
        }
        let total: u64 = vmo.lock().run_counts.values().map(|&n| u64::from(n)).sum();
        assert_eq!(total as usize, vmo.committed_page_count());
    }

    #[test]
    fn read_of_uncommitted_is_zero_and_does_not_commit() {
        let (sp, p) = phys(4);
        let vmo = Vmo::create(p, 3 * 4096, 0).unwrap();
        let mut buf = [0xffu8; 100];
        vmo.read(4000, &mut buf).unwrap();
        assert_eq!(buf, [0u8; 100]);
        assert_eq!(vmo.committed_page_count(), 0);
        assert_eq!(sp.used_frames(), 0);
    }

    #[test]
    fn write_spanning_pages_commits_both_and_reads_back() {
        let (sp, p) = phys(4);
        let vmo = Vmo::create(p, 3 * 4096, 0).unwrap();
        let data: Vec<u8> = (0..200u8).collect();
        vmo.write(4000, &data).unwrap();
        assert_eq!(vmo.committed_page_count(), 2);
        assert_eq!(sp.used_frames(), 2);
        let mut back = [0u8; 200];
        vmo.read(4000, &mut back).unwrap();
        assert_eq!(&back[..], &data[..]);
    }

    #[test]
    fn out_of_range_and_overflowing_ranges() {
        let (_, p) = phys(4);
        let vmo = Vmo::create(p, 4096, 0).unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(vmo.read(4095, &mut buf), Err(Status::ERR_OUT_OF_RANGE));
        assert_eq!(vmo.write(u64::MAX, &buf), Err(Status::ERR_OUT_OF_RANGE));
        assert_eq!(vmo.commit(0, u64::MAX), Err(Status::ERR_OUT_OF_RANGE));
        assert_eq!(vmo.decommit(4096, 1), Err(Status::ERR_OUT_OF_RANGE));
        assert_eq!(vmo.commit(4096, 0), Ok(()));
    }

    #[test]
    fn commit_runs_out_of_frames_then_decommit_returns_them() {
        let (sp, p) = phys(2);
        let vmo = Vmo::create(p, 3 * 4096, 0).unwrap();
        assert_eq!(vmo.commit(0, 3 * 4096), Err(Status::ERR_NO_MEMORY));
        assert_eq!(sp.free_frames(), 0);
        vmo.decommit(0, 3 * 4096).unwrap();
        assert_eq!(sp.free_frames(), 2);
        assert_eq!(vmo.committed_page_count(), 0);
    }

    #[test]
    fn resize_needs_resizable_and_shrink_frees_pages() {
        let (sp, p) = phys(4);
        let fixed = Vmo::create(p.clone(), 4096, 0).unwrap();
        assert_eq!(fixed.resize(8192), Err(Status::ERR_UNAVAILABLE));
        let vmo = Vmo::create(p, 4 * 4096, ZX_VMO_RESIZABLE).unwrap();
        vmo.commit(0, 4 * 4096).unwrap();
        vmo.resize(4096 + 1).unwrap();
        assert_eq!(vmo.page_count(), 2);
        assert_eq!(sp.used_frames(), 2);
        vmo.resize(8 * 4096).unwrap();
        let mut buf = [1u8; 4];
        vmo.read(3 * 4096, &mut buf).unwrap();
        assert_eq!(buf, [0; 4], "regrown pages read as zeros");
        assert_eq!(vmo.resize(u64::MAX), Err(Status::ERR_OUT_OF_RANGE));
    }

    #[test]
    fn content_size_follows_create_resize_and_set() {
        let (_, p) = phys(4);
        let vmo = Vmo::create(p.clone(), 5000, ZX_VMO_RESIZABLE).unwrap();
        assert_eq!(vmo.content_size(), 5000, "the unrounded creation size");
        assert_eq!(vmo.size(), 8192);
        vmo.set_content_size(100);
        assert_eq!(vmo.content_size(), 100);
        assert_eq!(vmo.size(), 8192, "the VMO's size stays");
        vmo.set_content_size(1 << 40);
        assert_eq!(
            vmo.content_size(),
            1 << 40,
            "beyond the size is kept as given"
        );
        vmo.resize(5461).unwrap();
        assert_eq!(vmo.content_size(), 5461, "resize sets the unrounded size");
        assert_eq!(vmo.resize(u64::MAX), Err(Status::ERR_OUT_OF_RANGE));
        assert_eq!(vmo.content_size(), 5461, "a failed resize leaves it");
        let fixed = Vmo::create(p, 4096, 0).unwrap();
        assert_eq!(fixed.resize(8192), Err(Status::ERR_UNAVAILABLE));
        assert_eq!(fixed.content_size(), 4096);
    }

    #[test]
    fn discardable_lock_counts_whole_vmo_only() {
        let (_, p) = phys(4);
        let plain = Vmo::create(p.clone(), 3 * 4096, 0).unwrap();
        let ns = Err(Status::ERR_NOT_SUPPORTED);
        assert_eq!(plain.lock_discardable(0, 3 * 4096), ns);
        assert_eq!(plain.unlock_discardable(0, 3 * 4096), ns);
        assert_eq!(plain.lock_discardable(0, 4096), ns, "before the range");
        let vmo = Vmo::create(p, 3 * 4096, ZX_VMO_DISCARDABLE).unwrap();
        let oor = Err(Status::ERR_OUT_OF_RANGE);
        for (off, len) in [(0, 4096), (4096, 2 * 4096), (4096, 4096), (0, 4 * 4096)] {
            assert_eq!(vmo.lock_discardable(off, len), oor, "{off} {len}");
            assert_eq!(vmo.unlock_discardable(off, len), oor, "{off} {len}");
        }
        assert_eq!(
            vmo.unlock_discardable(0, 3 * 4096),
            Err(Status::ERR_BAD_STATE)
        );
        vmo.lock_discardable(0, 3 * 4096).unwrap();
        vmo.lock_discardable(0, 3 * 4096).unwrap();
        assert!(vmo.is_locked());
        vmo.unlock_discardable(0, 3 * 4096).unwrap();
        assert!(vmo.is_locked(), "one lock left");
        vmo.unlock_discardable(0, 3 * 4096).unwrap();
        assert!(!vmo.is_locked());
        assert_eq!(
            vmo.unlock_discardable(0, 3 * 4096),
            Err(Status::ERR_BAD_STATE)
        );
    }

    /// One piece a page walk hands out: `(frame, offset in page, len)`.
    type Piece = (Option<PhysAddr>, usize, usize);

    /// The pieces `read_pages` hands out for `[offset, offset + len)`, and their bytes read from
    /// the frames (zeros for `None`).
    fn pieces_read(vmo: &Vmo, p: &dyn PhysMem, offset: u64, len: usize) -> (Vec<Piece>, Vec<u8>) {
        let mut pieces = Vec::new();
        let mut bytes = Vec::new();
        let done = vmo
            .read_pages(offset, len, &mut |frame, in_page, l| {
                let mut buf = vec![0u8; l];
                if let Some(frame) = frame {
                    p.read(frame, in_page, &mut buf);
                }
                pieces.push((frame, in_page, l));
                bytes.extend_from_slice(&buf);
                true
            })
            .unwrap();
        assert_eq!(done, len, "every piece taken: the whole range is done");
        (pieces, bytes)
    }

    #[test]
    fn read_pages_splits_at_page_boundaries_and_matches_read() {
        let (sp, p) = phys(8);
        let vmo = Vmo::create(p.clone(), 4 * PAGE, 0).unwrap();
        let data: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
        vmo.write(PAGE + 100, &data).unwrap(); // pages 1 and 2; 0 and 3 stay uncommitted
        let used = sp.used_frames();
        let (pieces, bytes) = pieces_read(&vmo, &*p, 50, 3 * PAGE as usize);
        let shape: Vec<(bool, usize, usize)> =
            pieces.iter().map(|q| (q.0.is_some(), q.1, q.2)).collect();
        assert_eq!(
            shape,
            [
                (false, 50, 4046),
                (true, 0, 4096),
                (true, 0, 4096),
                (false, 0, 50)
            ],
            "one piece per page, frames only for committed pages"
        );
        assert_eq!(pieces[1].0, vmo.frame_of(1));
        assert_eq!(pieces[2].0, vmo.frame_of(2));
        let mut want = vec![0u8; 3 * PAGE as usize];
        vmo.read(50, &mut want).unwrap();
        assert!(bytes == want, "the pieces' bytes are what read gives");
        assert_eq!(sp.used_frames(), used, "reading commits nothing");
        assert_eq!(
            pieces_read(&vmo, &*p, 4 * PAGE, 0).0,
            [],
            "an empty range at the end hands out nothing"
        );
    }

    #[test]
    fn page_walks_stop_at_the_first_refused_piece() {
        let (_, p) = phys(8);
        let vmo = Vmo::create(p, 4 * PAGE, 0).unwrap();
        let mut seen = Vec::new();
        let done = vmo.write_pages(100, 3 * PAGE as usize, &mut |_, in_page, l| {
            seen.push((in_page, l));
            seen.len() < 2
        });
        assert_eq!(done, Ok(3996), "the bytes of the pieces taken");
        assert_eq!(seen, [(100, 3996), (0, 4096)], "nothing after the refusal");
        assert_eq!(
            vmo.committed_page_count(),
            2,
            "the refused piece's page was committed before the callback saw it"
        );
        let mut calls = 0;
        let done = vmo.read_pages(0, 2 * PAGE as usize, &mut |_, _, _| {
            calls += 1;
            false
        });
        assert_eq!((done, calls), (Ok(0), 1));
    }

    #[test]
    fn write_pages_commits_as_it_goes() {
        let (sp, p) = phys(2);
        let vmo = Vmo::create(p.clone(), 4 * PAGE, 0).unwrap();
        vmo.commit(PAGE, PAGE).unwrap();
        // Page 0 takes the last free frame, page 1 is committed, page 2 finds none.
        let mut seen = Vec::new();
        let r = vmo.write_pages(10, 3 * PAGE as usize, &mut |frame, in_page, l| {
            p.write(frame, in_page, &vec![0xab; l]);
            seen.push((in_page, l));
            true
        });
        assert_eq!(r, Err(Status::ERR_NO_MEMORY));
        assert_eq!(
            seen,
            [(10, 4086), (0, 4096)],
            "the pieces before the failure"
        );
        assert_eq!(
            vmo.committed_page_count(),
            2,
            "earlier pages stay committed"
        );
        assert_eq!(sp.free_frames(), 0);
        let mut back = vec![0u8; 2 * PAGE as usize];
        vmo.read(0, &mut back).unwrap();
        assert_eq!(&back[..10], [0; 10]);
        assert!(
            back[10..].iter().all(|&b| b == 0xab),
            "the pieces' bytes landed in the VMO's own frames"
        );
    }

    #[test]
    fn page_walks_check_the_range_first() {
        let (_, p) = phys(4);
        let vmo = Vmo::create(p, 2 * PAGE, 0).unwrap();
        let oor = Err(Status::ERR_OUT_OF_RANGE);
        for (offset, len) in [(2 * PAGE - 4, 8), (u64::MAX - 2, 8), (0, usize::MAX)] {
            let mut calls = 0;
            let r = vmo.read_pages(offset, len, &mut |_, _, _| {
                calls += 1;
                true
            });
            assert_eq!(r, oor, "read [{offset:#x} + {len:#x})");
            let r = vmo.write_pages(offset, len, &mut |_, _, _| {
                calls += 1;
                true
            });
            assert_eq!(r, oor, "write [{offset:#x} + {len:#x})");
            assert_eq!(calls, 0, "a piece handed out before the range check");
        }
        assert_eq!(vmo.committed_page_count(), 0);
    }

    #[test]
    fn backrefs_overlapping_matches_brute_force() {
        let key = |uid: u64, start: u64| BackRefKey {
            vmo_offset: start,
            aspace: uid % 3,
            uid,
        };
        let r = |len: u64| MappingRef {
            aspace: Weak::new(),
            base: 0,
            size: len as usize,
        };
        let mut refs = BackRefs::default();
        // uid -> (start, len)
        let mut all = Vec::new();
        let mut x = 12345u64;
        for uid in 0..300u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let start = (x >> 33) % 64 * PAGE;
            let len = ((x >> 20) % 5 + 1) * PAGE;
            assert!(refs.reserve(1));
            refs.insert(key(uid, start), r(len)).ok().unwrap();
            all.push((start, len));
        }
        // Update some in place (new length), move others (new start: remove + insert, as an unmap
        // of a mapping's head does), remove others.
        for uid in (0..300u64).step_by(7) {
            let (start, _) = all[uid as usize];
            if uid % 2 == 0 {
                refs.insert(key(uid, start), r(PAGE)).ok().unwrap();
                all[uid as usize] = (start, PAGE);
            } else {
                refs.remove(key(uid, start));
                assert!(refs.reserve(1));
                refs.insert(key(uid, uid % 50 * PAGE), r(PAGE))
                    .ok()
                    .unwrap();
                all[uid as usize] = (uid % 50 * PAGE, PAGE);
            }
        }
        let mut live: Vec<bool> = vec![true; 300];
        for uid in (0..300u64).step_by(5) {
            let (start, _) = all[uid as usize];
            refs.remove(key(uid, start));
            refs.remove(key(uid, start)); // twice: no-op
            live[uid as usize] = false;
        }
        let all: Vec<(u64, u64, u64)> = (0..300u64)
            .filter(|&uid| live[uid as usize])
            .map(|uid| (uid, all[uid as usize].0, all[uid as usize].1))
            .collect();
        refs.check().unwrap();
        assert_eq!(refs.len(), all.len());
        assert_eq!(
            refs.count_for(1),
            all.iter().filter(|e| e.0 % 3 == 1).count()
        );
        for lo in 0..70u64 {
            for hi in lo + 1..lo + 8 {
                let (lo, hi) = (lo * PAGE, hi * PAGE);
                let mut got: Vec<u64> = refs.overlapping(lo, hi).map(|(s, _)| s).collect();
                let mut want: Vec<u64> = all
                    .iter()
                    .filter(|(_, s, l)| *s < hi && s + l > lo)
                    .map(|(_, s, _)| *s)
                    .collect();
                got.sort_unstable();
                want.sort_unstable();
                assert_eq!(got, want, "window [{lo:#x}, {hi:#x})");
            }
        }
    }

    #[test]
    fn drop_returns_every_frame() {
        let (sp, p) = phys(4);
        let vmo = Vmo::create(p, 4 * 4096, 0).unwrap();
        vmo.commit(0, 4 * 4096).unwrap();
        assert_eq!(sp.free_frames(), 0);
        drop(vmo);
        assert_eq!(sp.free_frames(), 4);
    }
}
