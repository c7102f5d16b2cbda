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
//! Files: `mod.rs` the object, its state and its accessors; `pages.rs` commit, decommit, reads,
//! writes and resize; `child.rs` snapshots and slices; `attribution.rs` the memory attribution
//! (shared pages divided among their holders); `held.rs` the address spaces a walk keeps
//! alive until the VMO lock is released; `tests.rs`.
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
    /// The page whose frame is changing over several lock holds, if any (see `Transition`).
    pub(crate) transition: Option<Transition>,
    /// The range a snapshot is taking in steps, if any (see `SnapshotWalk`).
    pub(crate) snapshot_walk: Option<SnapshotWalk>,
}

/// A snapshot of pages `[first, end)` of a VMO with more mappings than one lock hold may visit
/// ([`FRAME_CHANGE_STEP_ENTRIES`]), under way: before the frames are shared, every entry of the
/// range must be read-only, so the snapshot first removes the range's entries from
/// `FRAME_CHANGE_STEP_ENTRIES` mappings per hold, resuming after `after`. While it lasts a read
/// fault, fault-around or MAP_RANGE maps the range read-only (the VMO is already in its clone
/// family, so a protect grants no write either); a write fault in the range maps as usual and
/// restarts the walk (`after` back to `None`). The hold in which the walk reaches its end
/// shares the frames and makes the child: no writable entry of the range is left then. Only the
/// snapshotting thread walks; nothing waits for it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SnapshotWalk {
    pub(crate) first: u64,
    pub(crate) end: u64,
    pub(crate) after: Option<BackRefKey>,
}

/// A frame change in progress on one page of a VMO with more mappings than one lock hold may
/// visit ([`FRAME_CHANGE_STEP_ENTRIES`]): a zero-page commit (the page already holds its fresh
/// zeroed frame, `old` is `None`: unvisited mappings may still map the zero frame) or a
/// copy-on-write break (the page already holds its private copy, `old` is the shared frame,
/// still held here: unvisited mappings may still map it). While it lasts, every entry of the
/// page is read-only (a fault maps the new frame without write access) and nothing writes the
/// page: a writer gets `ERR_SHOULD_WAIT`, drives the walk ([`Vmo::step_transition`]) and
/// retries. Old and new frame hold the same bytes the whole time, so a reader sees the same
/// data through any mapping. The walk removes the page's entries from `FRAME_CHANGE_STEP_ENTRIES`
/// mappings per hold, resuming after `after`; when it ends the old frame is let go of.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transition {
    pub(crate) index: u64,
    pub(crate) old: Option<PhysAddr>,
    pub(crate) after: Option<BackRefKey>,
}

/// Mappings one lock hold of a stepped frame change visits; a VMO with more mappings changes a
/// page's frame (commit over zero-frame entries, copy-on-write break) in steps (`Transition`).
pub const FRAME_CHANGE_STEP_ENTRIES: usize = 2048;

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
    /// A snapshot child's first byte projected onto the first VMO of its chain of snapshots (the
    /// parents' offsets added up; Zircon's `root_parent_offset_`), 0 for any other VMO. Offsets
    /// within the VMO must not overflow when projected there (ERR_INVALID_ARGS at a child's
    /// creation or a resize).
    root_offset: u64,
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
    /// True once a fault mapped the shared zero frame for a page of this VMO (set under its
    /// lock): some mapping may hold a zero-frame entry for an uncommitted page, so a commit
    /// removes the page's entries from every mapping, and a protect never grants WRITE to
    /// existing entries.
    zero_mapped: AtomicBool,
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
                    transition: None,
                    snapshot_walk: None,
                },
            ),
            name: spin::Mutex::new([0; ZX_MAX_NAME_LEN]),
            parent_id: init.parent_id,
            cow_clone: init.cow_clone,
            root_offset: init.root_offset,
            slice: init.slice,
            children: Arc::new(AtomicUsize::new(0)),
            parent_children: init.parent_children,
            in_family: AtomicBool::new(in_family),
            zero_mapped: AtomicBool::new(false),
        }
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

    /// True once a fault mapped the shared zero frame for one of this VMO's pages: a mapping of
    /// it gets write access to a page only through a write fault (the zero frame is never
    /// mapped writable).
    pub fn zero_mapped(&self) -> bool {
        self.zero_mapped.load(Ordering::Relaxed)
    }

    /// True when an existing page-table entry of a mapping of this VMO may map a frame that
    /// must not be written through it (a frame shared in a clone family, or the zero frame):
    /// such entries get write access only through a write fault, never from a protect.
    pub fn write_needs_fault(&self) -> bool {
        self.may_share() || self.zero_mapped()
    }

    /// The frame allocator this VMO's frames come from.
    pub(crate) fn phys(&self) -> &dyn PhysMem {
        &*self.phys
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
}

/// What a new VMO object starts with besides its size (all empty for [`Vmo::create`]).
#[derive(Default)]
struct VmoInit {
    parent_id: u64,
    cow_clone: bool,
    root_offset: u64,
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
        if let Some(old) = inner.transition.take().and_then(|t| t.old) {
            self.release_frame(old);
        }
        for (_, frame) in pages {
            self.release_frame(frame);
        }
        if let Some(parent_children) = &self.parent_children {
            // The parent may now assert ZX_VMO_ZERO_CHILDREN: waiters re-check their signals.
            if parent_children.fetch_sub(1, Ordering::Relaxed) == 1 {
                if let Some(wake) = CHILD_GONE_HOOK.get() {
                    wake();
                }
            }
        }
    }
}

/// What the kernel runs when a VMO's last child goes (it wakes the threads waiting on signals,
/// `ZX_VMO_ZERO_CHILDREN` among them). Called from a VMO's drop, which may run under a VMAR
/// tree or VMO lock: the hook may only take locks ranked above those.
static CHILD_GONE_HOOK: spin::Once<fn()> = spin::Once::new();

/// Registers the hook run when a VMO's last child goes (once; later calls are ignored).
pub fn set_child_gone_hook(hook: fn()) {
    CHILD_GONE_HOOK.call_once(|| hook);
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

mod attribution;
mod child;
mod held;
mod pages;
#[cfg(test)]
mod tests;

pub use attribution::{Attribution, ATTRIBUTION_STEP};
pub(crate) use held::HeldAspaces;
