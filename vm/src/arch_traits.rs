//! The hardware boundary: what the portable VM needs from an MMU and from physical memory.
//!
//! This module owns the [`Mmu`] trait (the page tables of ONE address space), the [`TlbFlush`]
//! token every page-table change returns, the [`MmuFlags`] permission bits and the [`PhysMem`]
//! trait (a 4 KiB frame allocator that can also read and write frame contents, and that owns the
//! one shared zero frame).
//!
//! A missed TLB flush is a compile-time error rather than a silent bug (the idea of Redox rmm's
//! `PageFlush`): every changing [`Mmu`] call returns a `#[must_use]` [`TlbFlush`] that is consumed
//! only by [`Mmu::flush`]. Tokens merge ([`TlbFlush::merge`]) so one operation over many pages
//! issues one flush; past [`FLUSH_ALL_THRESHOLD_PAGES`] the merged token degrades to "flush all".
//!
//! The traits are object safe: the VM holds `Box<dyn Mmu>` and `Arc<dyn PhysMem>`, so the kernel's
//! arch crate implements them (real 4-level tables, a physical-offset mapping for frame access)
//! without the VM or the syscall layer becoming generic.

use abi::{Status, PAGE_SIZE};

/// A physical address (of a 4 KiB frame when it comes from [`PhysMem`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysAddr(pub u64);

/// Permission bits of a page-table entry (and of a mapping: only READ/WRITE/EXECUTE are used
/// there, USER is added by the address space when it installs the entry).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MmuFlags(u8);

impl MmuFlags {
    /// No access.
    pub const NONE: MmuFlags = MmuFlags(0);
    /// Readable.
    pub const READ: MmuFlags = MmuFlags(1 << 0);
    /// Writable.
    pub const WRITE: MmuFlags = MmuFlags(1 << 1);
    /// Executable.
    pub const EXECUTE: MmuFlags = MmuFlags(1 << 2);
    /// Accessible from user mode.
    pub const USER: MmuFlags = MmuFlags(1 << 3);
    /// READ | WRITE | EXECUTE.
    pub const RWX: MmuFlags = MmuFlags(0b111);

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: MmuFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// True when no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Bitwise or.
    pub const fn union(self, other: MmuFlags) -> MmuFlags {
        MmuFlags(self.0 | other.0)
    }
    /// Bitwise and.
    pub const fn intersection(self, other: MmuFlags) -> MmuFlags {
        MmuFlags(self.0 & other.0)
    }
    /// `self` without the bits of `other`.
    pub const fn difference(self, other: MmuFlags) -> MmuFlags {
        MmuFlags(self.0 & !other.0)
    }
    /// Only the READ/WRITE/EXECUTE bits.
    pub const fn perms(self) -> MmuFlags {
        MmuFlags(self.0 & Self::RWX.0)
    }
}

impl core::ops::BitOr for MmuFlags {
    type Output = MmuFlags;
    fn bitor(self, rhs: MmuFlags) -> MmuFlags {
        self.union(rhs)
    }
}

impl core::fmt::Debug for MmuFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let c = |flag: MmuFlags, ch: char| if self.contains(flag) { ch } else { '-' };
        write!(
            f,
            "{}{}{}{}",
            c(MmuFlags::READ, 'r'),
            c(MmuFlags::WRITE, 'w'),
            c(MmuFlags::EXECUTE, 'x'),
            c(MmuFlags::USER, 'u')
        )
    }
}

/// Past this many pages a merged [`TlbFlush`] becomes "flush the whole address space": at that
/// point one full flush is cheaper than many single-page invalidations (x86 `invlpg` per page vs
/// one CR3 reload / PCID flush).
pub const FLUSH_ALL_THRESHOLD_PAGES: usize = 32;

/// What a [`TlbFlush`] asks the MMU to invalidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushScope {
    /// Nothing changed (a no-op token).
    Nothing,
    /// The pages `[start, end)` (page-aligned virtual addresses).
    Range {
        /// First byte of the first page.
        start: usize,
        /// One past the last byte of the last page.
        end: usize,
    },
    /// The whole address space.
    All,
}

/// Proof that page-table entries changed and the TLB still has to be told.
///
/// Returned by every changing [`Mmu`] call. It is `#[must_use]`; the only ways to get rid of it
/// are [`Mmu::flush`] (the normal way) and [`TlbFlush::merge`] into another token. `count` says
/// how many MMU-issued tokens were merged into this one, so a software MMU can check that every
/// token it issued was flushed (see `soft_mmu::SoftMmu::outstanding_flushes`).
#[must_use = "page-table entries changed: pass this token to Mmu::flush"]
#[derive(Debug, PartialEq, Eq)]
pub struct TlbFlush {
    scope: FlushScope,
    count: u32,
}

impl TlbFlush {
    /// A token for a change of `page_count` pages starting at `vaddr`, as issued by an MMU.
    pub fn for_pages(vaddr: usize, page_count: usize) -> TlbFlush {
        let end = page_count
            .checked_mul(PAGE_SIZE)
            .and_then(|len| vaddr.checked_add(len));
        let scope = match end {
            _ if page_count == 0 => FlushScope::Nothing,
            Some(end) if page_count <= FLUSH_ALL_THRESHOLD_PAGES => {
                FlushScope::Range { start: vaddr, end }
            }
            _ => FlushScope::All,
        };
        TlbFlush { scope, count: 1 }
    }

    /// A token that flushes the whole address space, as issued by an MMU.
    pub fn all() -> TlbFlush {
        TlbFlush {
            scope: FlushScope::All,
            count: 1,
        }
    }

    /// The empty token: nothing to flush, issued by nobody. Start value for merging.
    pub fn none() -> TlbFlush {
        TlbFlush {
            scope: FlushScope::Nothing,
            count: 0,
        }
    }

    /// What this token asks to invalidate.
    pub fn scope(&self) -> FlushScope {
        self.scope
    }

    /// How many MMU-issued tokens this one stands for.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Merges two tokens into one covering both (the covering range, or "all" when that range
    /// spans more than [`FLUSH_ALL_THRESHOLD_PAGES`] pages).
    pub fn merge(self, other: TlbFlush) -> TlbFlush {
        let scope = match (self.scope, other.scope) {
            (FlushScope::Nothing, s) | (s, FlushScope::Nothing) => s,
            (FlushScope::All, _) | (_, FlushScope::All) => FlushScope::All,
            (FlushScope::Range { start: a, end: b }, FlushScope::Range { start: c, end: d }) => {
                let (start, end) = (a.min(c), b.max(d));
                if (end - start) / PAGE_SIZE > FLUSH_ALL_THRESHOLD_PAGES {
                    FlushScope::All
                } else {
                    FlushScope::Range { start, end }
                }
            }
        };
        TlbFlush {
            scope,
            count: self.count.saturating_add(other.count),
        }
    }

    /// Consumes the token, returning what must be invalidated. Only [`Mmu::flush`]
    /// implementations call this.
    pub fn into_scope(self) -> (FlushScope, u32) {
        (self.scope, self.count)
    }
}

/// The page tables of ONE address space.
///
/// Addresses are page-aligned virtual addresses; `page_count` counts 4 KiB pages. The VM holds
/// the address space's MMU lock around every call, so implementations need no lock of their own
/// for the tables (the TLB shootdown may still need cross-CPU work inside [`Mmu::flush`]).
pub trait Mmu: Send {
    /// Maps one page `vaddr -> paddr` with `flags`. The page must not be mapped (the VM always
    /// checks with [`Mmu::query`] or unmaps first). Fails with `ERR_NO_MEMORY` when a page-table
    /// page cannot be allocated; then nothing changed.
    fn map(&mut self, vaddr: usize, paddr: PhysAddr, flags: MmuFlags) -> Result<TlbFlush, Status>;

    /// Unmaps every mapped page in `[vaddr, vaddr + page_count * PAGE_SIZE)`; unmapped pages in
    /// the range are skipped. Cost should be proportional to the mapped pages, not the range.
    fn unmap(&mut self, vaddr: usize, page_count: usize) -> TlbFlush;

    /// Changes the flags of every mapped page in the range; unmapped pages are skipped.
    fn protect(&mut self, vaddr: usize, page_count: usize, flags: MmuFlags) -> TlbFlush;

    /// The translation of the page containing `vaddr`, if mapped.
    fn query(&self, vaddr: usize) -> Option<(PhysAddr, MmuFlags)>;

    /// Calls `visit(vaddr, paddr, flags)` for every mapped page in
    /// `[vaddr, vaddr + page_count * PAGE_SIZE)`, in address order (for invariant checks: the
    /// cost is proportional to the page tables that exist in the range, not to its size).
    fn for_each_mapped(
        &self,
        vaddr: usize,
        page_count: usize,
        visit: &mut dyn FnMut(usize, PhysAddr, MmuFlags),
    );

    /// Invalidates what `flush` names. The only consumer of [`TlbFlush`] tokens.
    fn flush(&mut self, flush: TlbFlush);
}

/// Physical memory: a 4 KiB frame allocator plus access to frame contents.
///
/// Shared by every VMO (`Arc<dyn PhysMem>`), so it locks internally. The kernel implements frame
/// access through its physical-offset mapping. Running out of frames is an error value, never a
/// panic.
pub trait PhysMem: Send + Sync {
    /// Allocates one frame filled with zeros; `Err(ERR_NO_MEMORY)` when none is free.
    fn alloc_zeroed(&self) -> Result<PhysAddr, Status>;

    /// Allocates one frame holding a copy of `from` (a frame the caller holds and nobody writes
    /// meanwhile: the copy-on-write break of a shared frame). The default zeroes and copies
    /// through [`PhysMem::read`] / [`PhysMem::write`]; an implementation with direct access
    /// copies frame to frame without zeroing first.
    fn alloc_copy(&self, from: PhysAddr) -> Result<PhysAddr, Status> {
        let to = self.alloc_zeroed()?;
        let mut buf = [0u8; 512];
        for off in (0..PAGE_SIZE).step_by(buf.len()) {
            self.read(from, off, &mut buf);
            self.write(to, off, &buf);
        }
        Ok(to)
    }

    /// The shared zero frame: one frame of zeros, made when the allocator is, that a read fault
    /// on a page no VMO committed maps read-only (see docs/vm.md, "The shared zero page"). It is
    /// never written, never freed, never shared or released, and not counted in any VMO; only
    /// [`PhysMem::read`] may be called on it.
    fn zero_frame(&self) -> PhysAddr;

    /// Returns a frame obtained from [`PhysMem::alloc_zeroed`] that has one holder.
    fn free(&self, frame: PhysAddr);

    /// One more holder of `frame` (a frame from [`PhysMem::alloc_zeroed`] has one): VMOs of a
    /// clone family share frames this way (see docs/vm.md, "Copy-on-write children").
    fn share(&self, frame: PhysAddr);

    /// One holder lets go of `frame`: the last one frees it (returns true then).
    fn release(&self, frame: PhysAddr) -> bool;

    /// Has `frame` more than one holder? Exact when the caller holds it and no other holder can
    /// gain a holder meanwhile (the VM asks under the lock of a VMO holding it).
    fn is_shared(&self, frame: PhysAddr) -> bool;

    /// How many holders `frame` has (1 for a frame no VMO shares): the VMOs holding it, each
    /// counted once. Exact under the same condition as [`PhysMem::is_shared`]; memory
    /// attribution divides a shared frame's bytes by it (see `Vmo::attribution`).
    fn holders(&self, frame: PhysAddr) -> usize;

    /// Copies `buf.len()` bytes from `frame + offset`. The VM guarantees
    /// `offset + buf.len() <= PAGE_SIZE`.
    fn read(&self, frame: PhysAddr, offset: usize, buf: &mut [u8]);

    /// Copies `buf` to `frame + offset`. The VM guarantees `offset + buf.len() <= PAGE_SIZE`.
    fn write(&self, frame: PhysAddr, offset: usize, buf: &[u8]);

    /// Frames currently free.
    fn free_frames(&self) -> usize;

    /// Frames currently allocated.
    fn used_frames(&self) -> usize;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_covers_both_ranges_and_degrades_to_all() {
        let a = TlbFlush::for_pages(0x1000, 1);
        let b = TlbFlush::for_pages(0x3000, 2);
        let m = a.merge(b);
        assert_eq!(
            m.scope(),
            FlushScope::Range {
                start: 0x1000,
                end: 0x5000
            }
        );
        assert_eq!(m.count(), 2);
        let far = TlbFlush::for_pages(0x1000 + 64 * PAGE_SIZE, 1);
        let (scope, count) = m.merge(far).into_scope();
        assert_eq!(scope, FlushScope::All);
        assert_eq!(count, 3);
        let (scope, count) = TlbFlush::none().merge(TlbFlush::none()).into_scope();
        assert_eq!((scope, count), (FlushScope::Nothing, 0));
    }

    #[test]
    fn huge_or_overflowing_ranges_flush_all() {
        assert_eq!(TlbFlush::for_pages(0, 1000).scope(), FlushScope::All);
        assert_eq!(
            TlbFlush::for_pages(usize::MAX - 0xfff, 2).scope(),
            FlushScope::All
        );
        assert_eq!(
            TlbFlush::for_pages(0x1000, 0).into_scope().0,
            FlushScope::Nothing
        );
    }

    #[test]
    fn flags_debug_and_ops() {
        let f = MmuFlags::READ | MmuFlags::WRITE;
        assert!(f.contains(MmuFlags::READ));
        assert!(!f.contains(MmuFlags::EXECUTE));
        assert_eq!(format!("{:?}", f | MmuFlags::USER), "rw-u");
        assert_eq!((f | MmuFlags::USER).perms(), f);
    }
}
