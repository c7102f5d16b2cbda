//! Software implementations of the hardware traits, for host tests and for other crates' tests.
//!
//! This module owns [`SoftMmu`] (page tables as a `BTreeMap` vaddr -> (paddr, flags) that counts
//! flushes, detects tokens that were never flushed, and can be told to fail page-table allocation)
//! and [`SoftPhysMem`] (a fixed number of 4 KiB frames, so exhaustion is testable, with exact
//! free/used counts, plus its shared zero frame outside that count).
//!
//! Both hand out cheap cloneable "probes" ([`SoftMmuProbe`]) so a test can keep inspecting the
//! page tables after moving the MMU into an address space.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::{Status, PAGE_SIZE};
use spin::Mutex;

use crate::arch_traits::{FlushScope, Mmu, MmuFlags, PhysAddr, PhysMem, TlbFlush};

#[derive(Default)]
struct SoftMmuState {
    entries: BTreeMap<usize, (PhysAddr, MmuFlags)>,
    issued: u64,
    flushed: u64,
    flush_calls: u64,
    flush_all_calls: u64,
    /// `Some(n)`: the next `n` maps succeed, then maps fail with ERR_NO_MEMORY.
    map_budget: Option<usize>,
}

/// A software MMU: one address space's page tables in a `BTreeMap`.
pub struct SoftMmu {
    state: Arc<Mutex<SoftMmuState>>,
}

/// A read-only view of a [`SoftMmu`] that stays usable after the MMU moved into an address space.
#[derive(Clone)]
pub struct SoftMmuProbe {
    state: Arc<Mutex<SoftMmuState>>,
}

impl SoftMmu {
    /// An empty page table and a probe onto it.
    pub fn new() -> (SoftMmu, SoftMmuProbe) {
        let state = Arc::new(Mutex::new(SoftMmuState::default()));
        (
            SoftMmu {
                state: state.clone(),
            },
            SoftMmuProbe { state },
        )
    }

    /// Boxed, ready for `AddressSpace::new`.
    pub fn boxed() -> (Box<dyn Mmu>, SoftMmuProbe) {
        let (mmu, probe) = SoftMmu::new();
        (Box::new(mmu), probe)
    }

    fn issue(state: &mut SoftMmuState, flush: TlbFlush) -> TlbFlush {
        state.issued += u64::from(flush.count());
        flush
    }
}

impl Mmu for SoftMmu {
    fn map(&mut self, vaddr: usize, paddr: PhysAddr, flags: MmuFlags) -> Result<TlbFlush, Status> {
        let mut s = self.state.lock();
        assert_eq!(
            vaddr % PAGE_SIZE,
            0,
            "SoftMmu::map: unaligned vaddr {vaddr:#x}"
        );
        assert!(
            !s.entries.contains_key(&vaddr),
            "SoftMmu::map: {vaddr:#x} already mapped"
        );
        if let Some(budget) = s.map_budget.as_mut() {
            if *budget == 0 {
                return Err(Status::ERR_NO_MEMORY);
            }
            *budget -= 1;
        }
        s.entries.insert(vaddr, (paddr, flags));
        Ok(Self::issue(&mut s, TlbFlush::for_pages(vaddr, 1)))
    }

    fn unmap(&mut self, vaddr: usize, page_count: usize) -> TlbFlush {
        let mut s = self.state.lock();
        let end = vaddr.saturating_add(page_count.saturating_mul(PAGE_SIZE));
        // One entry at a time: unmapping allocates nothing (as with real page tables), which the
        // out-of-memory tests rely on.
        while let Some(k) = s.entries.range(vaddr..end).next().map(|(k, _)| *k) {
            s.entries.remove(&k);
        }
        Self::issue(&mut s, TlbFlush::for_pages(vaddr, page_count))
    }

    fn protect(&mut self, vaddr: usize, page_count: usize, flags: MmuFlags) -> TlbFlush {
        let mut s = self.state.lock();
        let end = vaddr.saturating_add(page_count.saturating_mul(PAGE_SIZE));
        for (_, entry) in s.entries.range_mut(vaddr..end) {
            entry.1 = flags;
        }
        Self::issue(&mut s, TlbFlush::for_pages(vaddr, page_count))
    }

    fn query(&self, vaddr: usize) -> Option<(PhysAddr, MmuFlags)> {
        let page = vaddr - vaddr % PAGE_SIZE;
        self.state.lock().entries.get(&page).copied()
    }

    fn for_each_mapped(
        &self,
        vaddr: usize,
        page_count: usize,
        visit: &mut dyn FnMut(usize, PhysAddr, MmuFlags),
    ) {
        let end = vaddr.saturating_add(page_count.saturating_mul(PAGE_SIZE));
        let entries: Vec<(usize, (PhysAddr, MmuFlags))> = self
            .state
            .lock()
            .entries
            .range(vaddr..end)
            .map(|(k, v)| (*k, *v))
            .collect();
        for (va, (pa, flags)) in entries {
            visit(va, pa, flags);
        }
    }

    fn flush(&mut self, flush: TlbFlush) {
        let mut s = self.state.lock();
        let (scope, count) = flush.into_scope();
        s.flushed += u64::from(count);
        match scope {
            FlushScope::Nothing => {}
            FlushScope::Range { .. } => s.flush_calls += 1,
            FlushScope::All => {
                s.flush_calls += 1;
                s.flush_all_calls += 1;
            }
        }
    }
}

impl SoftMmuProbe {
    /// The translation of the page containing `vaddr`.
    pub fn query(&self, vaddr: usize) -> Option<(PhysAddr, MmuFlags)> {
        let page = vaddr - vaddr % PAGE_SIZE;
        self.state.lock().entries.get(&page).copied()
    }

    /// Every entry, in address order.
    pub fn entries(&self) -> Vec<(usize, PhysAddr, MmuFlags)> {
        self.state
            .lock()
            .entries
            .iter()
            .map(|(v, (p, f))| (*v, *p, *f))
            .collect()
    }

    /// Number of mapped pages.
    pub fn mapped_pages(&self) -> usize {
        self.state.lock().entries.len()
    }

    /// Mapped pages in `[start, end)`.
    pub fn mapped_pages_in(&self, start: usize, end: usize) -> usize {
        self.state.lock().entries.range(start..end).count()
    }

    /// Flush calls that invalidated something.
    pub fn flush_calls(&self) -> u64 {
        self.state.lock().flush_calls
    }

    /// Flush calls that invalidated everything.
    pub fn flush_all_calls(&self) -> u64 {
        self.state.lock().flush_all_calls
    }

    /// Tokens issued but never passed to `flush` (merged tokens count individually). Zero after
    /// every VM operation, or a flush was missed.
    pub fn outstanding_flushes(&self) -> u64 {
        let s = self.state.lock();
        s.issued - s.flushed
    }

    /// Sets (or with `None` removes) the entry of the page at `vaddr` behind the VM's back, as a
    /// buggy MMU implementation or a missed unmap would: for tests of the invariant check.
    pub fn corrupt(&self, vaddr: usize, entry: Option<(PhysAddr, MmuFlags)>) {
        let page = vaddr - vaddr % PAGE_SIZE;
        let mut s = self.state.lock();
        match entry {
            Some(e) => s.entries.insert(page, e),
            None => s.entries.remove(&page),
        };
    }

    /// After this, only `maps` more `map` calls succeed; the rest fail with ERR_NO_MEMORY (as if
    /// page-table pages ran out). `None` removes the limit.
    pub fn set_map_budget(&self, maps: Option<usize>) {
        self.state.lock().map_budget = maps;
    }
}

struct SoftPhysState {
    frames: Vec<Option<Box<[u8]>>>,
    free_list: Vec<usize>,
    /// Holders beyond the first, per shared frame.
    extra_holders: BTreeMap<usize, u32>,
    /// The contents of the zero frame (zeros unless a test corrupts them).
    zero: Box<[u8]>,
}

/// A software frame allocator with a fixed number of frames.
///
/// Frame `i` has the physical address `FRAME_BASE + i * PAGE_SIZE`. Freeing a frame that is not
/// allocated panics (a VM bug, never reachable from syscall arguments). The zero frame
/// ([`SoftPhysMem::ZERO_FRAME`]) lies just below the pool and is not one of its frames: the
/// free and used counts never include it; writing, freeing, sharing or releasing it panics.
pub struct SoftPhysMem {
    state: Mutex<SoftPhysState>,
    frame_count: usize,
}

impl SoftPhysMem {
    /// Physical address of frame 0 (non-zero so a zero paddr is never a valid frame).
    pub const FRAME_BASE: u64 = 0x10_0000;

    /// Physical address of the zero frame ([`PhysMem::zero_frame`]).
    pub const ZERO_FRAME: PhysAddr = PhysAddr(Self::FRAME_BASE - PAGE_SIZE as u64);

    /// An allocator with `frame_count` free frames.
    pub fn new(frame_count: usize) -> Arc<SoftPhysMem> {
        let mut frames = Vec::new();
        frames.resize_with(frame_count, || None);
        // Reverse so frames are handed out in ascending address order.
        let free_list = (0..frame_count).rev().collect();
        Arc::new(SoftPhysMem {
            state: Mutex::new(SoftPhysState {
                frames,
                free_list,
                extra_holders: BTreeMap::new(),
                zero: alloc::vec![0u8; PAGE_SIZE].into_boxed_slice(),
            }),
            frame_count,
        })
    }

    /// Total frames.
    pub fn frame_count(&self) -> usize {
        self.frame_count
    }

    /// Writes `byte` at `offset` of the zero frame behind the VM's back, as a stray write would:
    /// for tests of the invariant check.
    pub fn corrupt_zero_frame(&self, offset: usize, byte: u8) {
        self.state.lock().zero[offset] = byte;
    }

    fn index(&self, frame: PhysAddr) -> usize {
        assert_ne!(
            frame,
            Self::ZERO_FRAME,
            "SoftPhysMem: the zero frame is only read"
        );
        let off = frame
            .0
            .checked_sub(Self::FRAME_BASE)
            .expect("SoftPhysMem: frame below base");
        assert_eq!(off % PAGE_SIZE as u64, 0, "SoftPhysMem: unaligned frame");
        let index = usize::try_from(off / PAGE_SIZE as u64).expect("SoftPhysMem: frame index");
        assert!(
            index < self.frame_count,
            "SoftPhysMem: frame beyond the end"
        );
        index
    }
}

impl PhysMem for SoftPhysMem {
    fn alloc_zeroed(&self) -> Result<PhysAddr, Status> {
        let mut s = self.state.lock();
        let index = s.free_list.pop().ok_or(Status::ERR_NO_MEMORY)?;
        s.frames[index] = Some(alloc::vec![0u8; PAGE_SIZE].into_boxed_slice());
        Ok(PhysAddr(Self::FRAME_BASE + (index * PAGE_SIZE) as u64))
    }

    fn zero_frame(&self) -> PhysAddr {
        Self::ZERO_FRAME
    }

    fn free(&self, frame: PhysAddr) {
        let index = self.index(frame);
        let mut s = self.state.lock();
        assert!(
            !s.extra_holders.contains_key(&index),
            "SoftPhysMem: free of {frame:?}, which has other holders"
        );
        assert!(
            s.frames[index].take().is_some(),
            "SoftPhysMem: double free of {frame:?}"
        );
        s.free_list.push(index);
    }

    fn share(&self, frame: PhysAddr) {
        let index = self.index(frame);
        let mut s = self.state.lock();
        assert!(
            s.frames[index].is_some(),
            "SoftPhysMem: share of a free frame"
        );
        *s.extra_holders.entry(index).or_insert(0) += 1;
    }

    fn release(&self, frame: PhysAddr) -> bool {
        let index = self.index(frame);
        {
            let mut s = self.state.lock();
            if let Some(n) = s.extra_holders.get_mut(&index) {
                *n -= 1;
                if *n == 0 {
                    s.extra_holders.remove(&index);
                }
                return false;
            }
        }
        self.free(frame);
        true
    }

    fn is_shared(&self, frame: PhysAddr) -> bool {
        let index = self.index(frame);
        self.state.lock().extra_holders.contains_key(&index)
    }

    fn holders(&self, frame: PhysAddr) -> usize {
        let index = self.index(frame);
        let s = self.state.lock();
        assert!(
            s.frames[index].is_some(),
            "SoftPhysMem: holders of a free frame"
        );
        1 + s.extra_holders.get(&index).map_or(0, |&n| n as usize)
    }

    fn read(&self, frame: PhysAddr, offset: usize, buf: &mut [u8]) {
        if frame == Self::ZERO_FRAME {
            buf.copy_from_slice(&self.state.lock().zero[offset..offset + buf.len()]);
            return;
        }
        let index = self.index(frame);
        let s = self.state.lock();
        let data = s.frames[index]
            .as_ref()
            .expect("SoftPhysMem: read of a free frame");
        buf.copy_from_slice(&data[offset..offset + buf.len()]);
    }

    fn write(&self, frame: PhysAddr, offset: usize, buf: &[u8]) {
        let index = self.index(frame);
        let mut s = self.state.lock();
        let data = s.frames[index]
            .as_mut()
            .expect("SoftPhysMem: write of a free frame");
        data[offset..offset + buf.len()].copy_from_slice(buf);
    }

    fn free_frames(&self) -> usize {
        self.state.lock().free_list.len()
    }

    fn used_frames(&self) -> usize {
        self.frame_count - self.free_frames()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_mmu_counts_tokens_and_flushes() {
        let (mut mmu, probe) = SoftMmu::new();
        let t1 = mmu
            .map(0x1000, PhysAddr(0x20_0000), MmuFlags::READ)
            .unwrap();
        let t2 = mmu
            .map(0x2000, PhysAddr(0x20_1000), MmuFlags::READ)
            .unwrap();
        assert_eq!(probe.outstanding_flushes(), 2);
        mmu.flush(t1.merge(t2));
        assert_eq!(probe.outstanding_flushes(), 0);
        assert_eq!(probe.flush_calls(), 1);
        let t = mmu.protect(0x1000, 2, MmuFlags::READ | MmuFlags::WRITE);
        mmu.flush(t);
        assert_eq!(
            probe.query(0x1fff).unwrap().1,
            MmuFlags::READ | MmuFlags::WRITE
        );
        let t = mmu.unmap(0, 16);
        assert_eq!(
            probe.outstanding_flushes(),
            1,
            "an unflushed token is visible"
        );
        mmu.flush(t);
        assert_eq!(probe.mapped_pages(), 0);
        probe.set_map_budget(Some(0));
        assert_eq!(
            mmu.map(0x1000, PhysAddr(0), MmuFlags::READ),
            Err(Status::ERR_NO_MEMORY)
        );
    }

    #[test]
    fn soft_phys_mem_exhausts_and_counts_exactly() {
        let mem = SoftPhysMem::new(2);
        let a = mem.alloc_zeroed().unwrap();
        let b = mem.alloc_zeroed().unwrap();
        assert_eq!(mem.alloc_zeroed(), Err(Status::ERR_NO_MEMORY));
        assert_eq!((mem.free_frames(), mem.used_frames()), (0, 2));
        mem.write(a, 10, &[1, 2, 3]);
        let mut buf = [0u8; 4];
        mem.read(a, 9, &mut buf);
        assert_eq!(buf, [0, 1, 2, 3]);
        mem.free(a);
        mem.free(b);
        assert_eq!((mem.free_frames(), mem.used_frames()), (2, 0));
        let c = mem.alloc_zeroed().unwrap();
        mem.read(c, 9, &mut buf);
        assert_eq!(buf, [0; 4], "frames come back zeroed");
    }
}

#[cfg(test)]
mod holder_tests {
    use super::*;

    #[test]
    fn the_last_holder_frees_a_shared_frame() {
        let p = SoftPhysMem::new(2);
        let f = p.alloc_zeroed().unwrap();
        assert!(!p.is_shared(f));
        assert_eq!(p.holders(f), 1);
        p.share(f);
        p.share(f);
        assert!(p.is_shared(f));
        assert_eq!(p.holders(f), 3);
        assert!(!p.release(f));
        assert_eq!(p.holders(f), 2);
        assert!(!p.release(f));
        assert!(!p.is_shared(f), "one holder left");
        assert_eq!(p.holders(f), 1);
        assert_eq!(p.used_frames(), 1);
        assert!(p.release(f), "the last holder frees");
        assert_eq!(p.used_frames(), 0);
    }
}
