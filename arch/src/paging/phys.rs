//! [`DirectPhysMem`]: the VM's `PhysMem` over the kernel's frame allocator and the bootloader's
//! physical-offset mapping.
//!
//! Frames come from a [`FrameSource`] (the kernel implements it over its bitmap allocator; the
//! trait is `unsafe` because this module trusts it to hand out frames nobody else uses). Each
//! frame handed out is recorded with its [`FrameKind`] in a byte per frame, so:
//!
//! - `read`/`write`/`free` on a frame this object did not hand out as VMO data panic instead of
//!   touching foreign memory (the safe `PhysMem` API cannot reach kernel memory);
//! - `X86Mmu` maps only data frames into user space, never a page table or a kernel frame;
//! - [`DirectPhysMem::count`] gives exact live counts per kind (leak tests).
//!
//! It also owns the kernel's one shared zero frame (`PhysMem::zero_frame`), a data frame claimed
//! when the object is made; writing, freeing, sharing or releasing it panics.

use abi::Status;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use vm::{PhysAddr, PhysMem};

/// Where [`DirectPhysMem`] gets frames from.
///
/// # Safety
///
/// Implementors guarantee that `alloc` returns 4 KiB-aligned physical addresses of ordinary RAM
/// below `frame_limit()`, mapped writable at the physical offset given to
/// [`super::init`], which nothing else reads or writes until the frame is passed back to `free`;
/// and that `free` takes such a frame back (it may panic on a frame it never handed out).
pub unsafe trait FrameSource: Send + Sync {
    /// One free frame, or `None` when memory is exhausted.
    fn alloc(&self) -> Option<u64>;
    /// Returns a frame obtained from `alloc`.
    fn free(&self, frame: u64);
    /// Frames currently free in the whole allocator.
    fn free_frames(&self) -> usize;
    /// Frames currently allocated in the whole allocator (by anyone: heap, tables, VMOs).
    fn used_frames(&self) -> usize;
    /// One past the highest physical address `alloc` can return.
    fn frame_limit(&self) -> u64;
}

/// What a frame handed out by [`DirectPhysMem`] is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// VMO contents (`PhysMem::alloc_zeroed`); the only kind user space can see.
    Data = 1,
    /// An intermediate page table (PDPT, PD or PT) of an `X86Mmu`.
    Table = 2,
    /// The top-level table (PML4) of an `X86Mmu`: what [`super::activate`] accepts.
    Root = 3,
}

impl FrameKind {
    fn from_u8(v: u8) -> Option<FrameKind> {
        match v {
            1 => Some(FrameKind::Data),
            2 => Some(FrameKind::Table),
            3 => Some(FrameKind::Root),
            _ => None,
        }
    }
}

/// The kernel's `PhysMem`: frames from a [`FrameSource`], contents through the physical-offset
/// mapping, ownership recorded per frame.
pub struct DirectPhysMem {
    source: &'static dyn FrameSource,
    offset: u64,
    kinds: Box<[AtomicU8]>,
    /// Holders of each data frame beyond the first (VMOs of a clone family sharing it).
    extra_holders: Box<[AtomicU32]>,
    counts: [AtomicUsize; 4],
    /// The shared zero frame ([`PhysMem::zero_frame`]): a data frame claimed when this object
    /// is made, never written, freed, shared or released.
    zero: u64,
}

/// A page-table page of a live hierarchy (a user address space's tables or the kernel's), its
/// 512 entries viewed as atomics (the CPU sets accessed/dirty bits concurrently with our
/// updates). The one way the paging code reaches a table: [`TableRef::new`] is its only unsafe
/// constructor, and [`TableRef::child`] follows a link safely.
///
/// Invariant (what `new`'s callers promise): the frame is a page-table page of level `level`
/// (3 = PML4 .. 0 = PT) mapped at `offset + phys` and allocated for `'a`, in a hierarchy whose
/// owner unlinks a table before it frees it and frees it only through a `&mut` borrow that ends
/// every `'a` (an `X86Mmu`'s `flush` or drop; the kernel's tables are never freed). So every
/// present, non-huge entry of a table of level > 0 links a live table of the next level for `'a`.
#[derive(Clone, Copy)]
pub(super) struct TableRef<'a> {
    entries: &'a [AtomicU64; 512],
    offset: u64,
    phys: u64,
    level: u32,
}

impl<'a> TableRef<'a> {
    /// The table at physical `phys`, of `level`.
    ///
    /// # Safety
    ///
    /// `phys` must be a page-table page of `level` of a hierarchy that keeps the invariant in
    /// the type's docs, mapped at `offset` and allocated for `'a`.
    pub(super) unsafe fn new(offset: u64, phys: u64, level: u32) -> TableRef<'a> {
        // SAFETY: the caller guarantees a live 4 KiB page-table frame at `offset + phys`; 4 KiB
        // alignment satisfies AtomicU64's, and AtomicU64 has u64's layout, so the page is a valid
        // `[AtomicU64; 512]`. Atomics make concurrent hardware A/D updates well defined.
        let entries = unsafe { &*((offset + phys) as *const [AtomicU64; 512]) };
        TableRef {
            entries,
            offset,
            phys,
            level,
        }
    }

    /// The 512 entries.
    pub(super) fn entries(self) -> &'a [AtomicU64; 512] {
        self.entries
    }

    /// Entry `index` (0..512).
    pub(super) fn entry(self, index: usize) -> &'a AtomicU64 {
        &self.entries[index]
    }

    /// The table's physical address.
    pub(super) fn phys(self) -> u64 {
        self.phys
    }

    /// The table's level: 3 = PML4 .. 0 = PT.
    pub(super) fn level(self) -> u32 {
        self.level
    }

    /// The table entry `index` links to: `None` for a PT (its entries map pages), a
    /// non-present entry or a huge page.
    pub(super) fn child(self, index: usize) -> Option<TableRef<'a>> {
        let e = self.entries[index].load(Ordering::Relaxed);
        if self.level == 0 || e & super::pte::PRESENT == 0 || e & super::pte::HUGE != 0 {
            return None;
        }
        // SAFETY: the type's invariant: a present, non-huge entry of a table of level > 0 links
        // a live table of the next level for `'a`, in the same hierarchy.
        Some(unsafe { TableRef::new(self.offset, e & super::pte::ADDR_MASK, self.level - 1) })
    }
}

impl DirectPhysMem {
    pub(super) fn new(source: &'static dyn FrameSource, offset: u64) -> DirectPhysMem {
        let frames = source.frame_limit().div_ceil(4096) as usize;
        let kinds: Vec<AtomicU8> = (0..frames).map(|_| AtomicU8::new(0)).collect();
        let extra: Vec<AtomicU32> = (0..frames).map(|_| AtomicU32::new(0)).collect();
        let mut phys = DirectPhysMem {
            source,
            offset,
            kinds: kinds.into_boxed_slice(),
            extra_holders: extra.into_boxed_slice(),
            counts: Default::default(),
            zero: 0,
        };
        phys.zero = phys
            .claim(FrameKind::Data)
            .expect("no frame for the shared zero page at paging init");
        phys
    }

    /// Panics on the zero frame: what may change a frame's contents or holders calls it.
    fn not_zero(&self, frame: PhysAddr) {
        assert_ne!(frame.0, self.zero, "the shared zero frame is only read");
    }

    fn slot(&self, frame: u64) -> Option<&AtomicU8> {
        if !frame.is_multiple_of(4096) {
            return None;
        }
        self.kinds.get((frame / 4096) as usize)
    }

    /// What `frame` was handed out as, or `None` when this object does not own it.
    pub fn kind_of(&self, frame: u64) -> Option<FrameKind> {
        FrameKind::from_u8(self.slot(frame)?.load(Ordering::Acquire))
    }

    /// Live frames of `kind` handed out by this object.
    pub fn count(&self, kind: FrameKind) -> usize {
        self.counts[kind as usize].load(Ordering::SeqCst)
    }

    /// The kernel virtual address of `frame` in the physical-offset mapping.
    pub(super) fn virt(&self, frame: u64) -> u64 {
        self.offset + frame
    }

    /// A zeroed frame of `kind`, or `ERR_NO_MEMORY`.
    pub(super) fn claim(&self, kind: FrameKind) -> Result<u64, Status> {
        self.claim_filled(kind, None)
    }

    /// A frame of `kind` holding a copy of data frame `from` (`None`: zeros), or
    /// `ERR_NO_MEMORY`.
    fn claim_filled(&self, kind: FrameKind, from: Option<u64>) -> Result<u64, Status> {
        let frame = self.source.alloc().ok_or(Status::ERR_NO_MEMORY)?;
        let slot = self
            .slot(frame)
            .expect("FrameSource returned a frame beyond frame_limit()");
        let dst = self.virt(frame) as *mut u8;
        match from {
            // SAFETY: the frame source handed this frame to us exclusively (FrameSource
            // contract), and it is mapped writable at the offset.
            None => unsafe { core::ptr::write_bytes(dst, 0, 4096) },
            Some(from) => {
                let src = self.virt(from) as *const u8;
                // SAFETY: `dst` as above; `src` is a live data frame (checked by the caller),
                // mapped at the offset, distinct from `dst` (which was free until now). The copy
                // is assembly, outside Rust's memory model, and cannot fault (both are mapped).
                let r = unsafe { crate::extable::copy_fallible(dst, src, 4096) };
                assert!(r.is_ok(), "frame copy faulted on mapped frames");
            }
        }
        let prev = slot.swap(kind as u8, Ordering::AcqRel);
        assert_eq!(prev, 0, "FrameSource handed out frame {frame:#x} twice");
        self.counts[kind as usize].fetch_add(1, Ordering::SeqCst);
        Ok(frame)
    }

    /// Returns a frame of `kind` to the source. Panics when the frame is not owned as `kind`
    /// (a double free or a foreign frame: a kernel bug).
    pub(super) fn release(&self, frame: u64, kind: FrameKind) {
        let ok = self.slot(frame).is_some_and(|s| {
            s.compare_exchange(kind as u8, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        });
        assert!(
            ok,
            "free of frame {frame:#x}, which is not a live {kind:?} frame"
        );
        self.counts[kind as usize].fetch_sub(1, Ordering::SeqCst);
        self.source.free(frame);
    }

    fn check_data(&self, frame: PhysAddr, offset: usize, len: usize) {
        assert_eq!(
            self.kind_of(frame.0),
            Some(FrameKind::Data),
            "PhysMem access to frame {:#x}, which is not a live data frame",
            frame.0
        );
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= 4096),
            "PhysMem access past the frame end ({offset:#x} + {len:#x})"
        );
    }
}

impl DirectPhysMem {
    /// Copies `len` bytes of data frame `frame` from `offset` to user address `user` with the
    /// page-fault hook bypassed ([`crate::extable::copy_nohook`]): `false` when `user` is not a
    /// user range or a fault stopped the copy (some bytes may be copied by then). For copies
    /// made under the frame's VMO lock, which the hook may need.
    pub fn copy_to_user_nohook(
        &self,
        frame: PhysAddr,
        offset: usize,
        user: u64,
        len: usize,
    ) -> bool {
        self.check_data(frame, offset, len);
        if !crate::extable::user_range_ok(user, len) {
            return false;
        }
        let src = (self.virt(frame.0) + offset as u64) as *const u8;
        // SAFETY: `[src, src + len)` lies inside a live data frame we own (checked), mapped at
        // the offset; `user` lies in the lower half, which holds no kernel-owned memory (see
        // `extable::copy_from_user`), so writing it cannot corrupt Rust objects.
        unsafe { crate::extable::copy_nohook(user as *mut u8, src, len) }.is_ok()
    }

    /// Copies `len` bytes from user address `user` into data frame `frame` at `offset`, with the
    /// page-fault hook bypassed: as [`Self::copy_to_user_nohook`], the other way.
    pub fn copy_from_user_nohook(
        &self,
        user: u64,
        frame: PhysAddr,
        offset: usize,
        len: usize,
    ) -> bool {
        self.check_data(frame, offset, len);
        self.not_zero(frame);
        if !crate::extable::user_range_ok(user, len) {
            return false;
        }
        let dst = (self.virt(frame.0) + offset as u64) as *mut u8;
        // SAFETY: as in `write`: a live data frame we own, no Rust reference points into it;
        // `user` lies in the lower half (user memory only).
        unsafe { crate::extable::copy_nohook(dst, user as *const u8, len) }.is_ok()
    }
}

impl PhysMem for DirectPhysMem {
    fn alloc_zeroed(&self) -> Result<PhysAddr, Status> {
        self.claim(FrameKind::Data).map(PhysAddr)
    }

    fn alloc_copy(&self, from: PhysAddr) -> Result<PhysAddr, Status> {
        self.check_data(from, 0, 4096);
        self.claim_filled(FrameKind::Data, Some(from.0))
            .map(PhysAddr)
    }

    fn zero_frame(&self) -> PhysAddr {
        PhysAddr(self.zero)
    }

    fn free(&self, frame: PhysAddr) {
        self.not_zero(frame);
        assert!(
            !self.is_shared(frame),
            "free of frame {:#x}, which has other holders",
            frame.0
        );
        self.release(frame.0, FrameKind::Data);
    }

    fn share(&self, frame: PhysAddr) {
        self.check_data(frame, 0, 0);
        self.not_zero(frame);
        if let Some(n) = self.extra_holders.get((frame.0 / 4096) as usize) {
            n.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn release(&self, frame: PhysAddr) -> bool {
        self.check_data(frame, 0, 0);
        self.not_zero(frame);
        let Some(n) = self.extra_holders.get((frame.0 / 4096) as usize) else {
            return false;
        };
        // One holder less: the count of extra holders goes down, or, with none left, the
        // frame is freed. A CAS loop, as another holder may let go at the same time.
        let mut now = n.load(Ordering::Acquire);
        loop {
            if now == 0 {
                DirectPhysMem::release(self, frame.0, FrameKind::Data);
                return true;
            }
            match n.compare_exchange(now, now - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return false,
                Err(seen) => now = seen,
            }
        }
    }

    fn is_shared(&self, frame: PhysAddr) -> bool {
        self.extra_holders
            .get((frame.0 / 4096) as usize)
            .is_some_and(|n| n.load(Ordering::Acquire) > 0)
    }

    fn holders(&self, frame: PhysAddr) -> usize {
        self.check_data(frame, 0, 0);
        1 + self
            .extra_holders
            .get((frame.0 / 4096) as usize)
            .map_or(0, |n| n.load(Ordering::Acquire) as usize)
    }

    fn read(&self, frame: PhysAddr, offset: usize, buf: &mut [u8]) {
        self.check_data(frame, offset, buf.len());
        let src = (self.virt(frame.0) + offset as u64) as *const u8;
        // SAFETY: `[src, src + len)` lies inside a live data frame we own (checked), mapped at the
        // offset; `buf` is an exclusive slice. The copy is assembly (`rep movsb`), outside Rust's
        // memory model, so user threads writing the same frame concurrently are not a data race
        // in the Rust sense; it cannot fault (the frame is mapped).
        let r = unsafe { crate::extable::copy_fallible(buf.as_mut_ptr(), src, buf.len()) };
        assert!(r.is_ok(), "PhysMem::read faulted on a mapped frame");
    }

    fn write(&self, frame: PhysAddr, offset: usize, buf: &[u8]) {
        self.check_data(frame, offset, buf.len());
        self.not_zero(frame);
        let dst = (self.virt(frame.0) + offset as u64) as *mut u8;
        // SAFETY: as in `read`: a live data frame we own, no Rust reference points into it (VMO
        // contents are only reached through this object and user mappings).
        let r = unsafe { crate::extable::copy_fallible(dst, buf.as_ptr(), buf.len()) };
        assert!(r.is_ok(), "PhysMem::write faulted on a mapped frame");
    }

    fn free_frames(&self) -> usize {
        self.source.free_frames()
    }

    fn used_frames(&self) -> usize {
        self.source.used_frames()
    }
}
