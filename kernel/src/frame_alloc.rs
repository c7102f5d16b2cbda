//! Physical frame allocator: a bitmap over every usable region of the boot memory map.
//!
//! One bit per 4 KiB frame up to the end of the highest usable region; a set bit means free. The
//! bitmap itself lives in the first usable frames large enough to hold it (those frames count as
//! used). Allocation takes the most recently freed frame first (a stack of up to [`HOT_FRAMES`]
//! frame numbers: its memory is likely still in the caches, and under QEMU already backed by
//! host memory), then next-fit from a moving hint; running out returns `None`, freeing a frame
//! that is not allocated returns an error. The rest of the kernel sees only [`FrameAllocator`] and
//! the global functions below, so the implementation can change without touching callers.
//!
//! # The kernel reserve
//! [`reserve`] frames (1/16 of memory, between 2 MiB and 64 MiB) are kept for the kernel itself:
//! [`alloc_user`], which every allocation on behalf of user space goes through (VMO pages, user
//! page tables, thread kernel stacks), fails while no more than that many frames are free, so
//! user space running memory dry leaves the kernel's own allocations (heap growth, through
//! [`alloc()`]) room to succeed. [`low_memory`] (free frames below half the reserve: the heap has
//! eaten into it) is the signal to refuse new kernel objects to user space (`ZX_ERR_NO_MEMORY`).

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use lock_order::{Class, OrderedMutex as Mutex};

/// Size of a physical frame.
pub const FRAME_SIZE: u64 = 4096;

/// A 4 KiB-aligned physical frame, by its start address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Frame(u64);

impl Frame {
    /// The frame starting at `addr` (which must be 4 KiB aligned).
    pub fn from_addr(addr: u64) -> Option<Frame> {
        addr.is_multiple_of(FRAME_SIZE).then_some(Frame(addr))
    }

    /// Physical start address.
    pub fn addr(self) -> u64 {
        self.0
    }
}

/// Why a frame could not be freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// The frame is outside every usable region.
    NotManaged,
    /// The frame is already free (double free).
    NotAllocated,
}

/// Counters of the allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Frames in usable regions.
    pub total: u64,
    /// Frames currently free.
    pub free: u64,
}

impl Stats {
    /// Frames currently allocated (including the allocator's own bitmap).
    pub fn used(&self) -> u64 {
        self.total - self.free
    }
}

/// The small interface the rest of the kernel (and later arch's page tables) allocates through.
pub trait FrameAllocator {
    /// One free frame, or `None` when memory is exhausted.
    fn alloc(&mut self) -> Option<Frame>;
    /// `count` physically contiguous free frames, or `None`.
    fn alloc_contiguous(&mut self, count: u64) -> Option<Frame>;
    /// Returns a frame.
    fn free(&mut self, frame: Frame) -> Result<(), FreeError>;
    /// Current counters.
    fn stats(&self) -> Stats;
}

/// Bitmap allocator over `bits` (one bit per frame from physical address 0).
pub struct BitmapAllocator {
    bits: &'static mut [u64],
    regions: &'static MemoryRegions,
    bitmap_frames: (u64, u64),
    frames: u64,
    total: u64,
    free: u64,
    hint: u64,
    /// Recently freed frame numbers, newest last. A hint only: the bitmap decides, so an entry
    /// whose frame was allocated since (by the scan, or freed and pushed twice) is dropped
    /// when popped.
    hot: [u32; HOT_FRAMES],
    hot_len: usize,
}

/// Most recently freed frames [`BitmapAllocator`] hands out again first (Linux keeps per-CPU
/// lists of hot pages for the same reason).
pub const HOT_FRAMES: usize = 2048;

impl BitmapAllocator {
    /// Number of bitmap words needed for the usable memory in `regions`.
    pub fn words_needed(regions: &MemoryRegions) -> usize {
        let end = usable(regions).map(|(_, e)| e).max().unwrap_or(0);
        (end / FRAME_SIZE).div_ceil(64) as usize
    }

    /// Builds the allocator from every usable region, using `bits` (zeroed here) as the bitmap,
    /// then marks the bitmap's own frames `[bitmap_phys, bitmap_phys + len)` as used.
    pub fn new(
        regions: &'static MemoryRegions,
        bits: &'static mut [u64],
        bitmap_phys: u64,
    ) -> Self {
        bits.fill(0);
        let frames = bits.len() as u64 * 64;
        let first = bitmap_phys / FRAME_SIZE;
        let bitmap_frames = (first, first + (bits.len() as u64 * 8).div_ceil(FRAME_SIZE));
        let mut a = Self {
            bits,
            regions,
            bitmap_frames,
            frames,
            total: 0,
            free: 0,
            hint: 0,
            hot: [0; HOT_FRAMES],
            hot_len: 0,
        };
        for (start, end) in usable(regions) {
            for f in start / FRAME_SIZE..end / FRAME_SIZE {
                if f < a.frames && !a.is_free(f) {
                    a.set(f, true);
                    a.total += 1;
                    a.free += 1;
                }
            }
        }
        for f in bitmap_frames.0..bitmap_frames.1 {
            if f < a.frames && a.is_free(f) {
                a.set(f, false);
                a.free -= 1;
            }
        }
        a
    }

    fn is_free(&self, f: u64) -> bool {
        self.bits[(f / 64) as usize] & (1 << (f % 64)) != 0
    }

    fn set(&mut self, f: u64, free: bool) {
        let w = &mut self.bits[(f / 64) as usize];
        if free {
            *w |= 1 << (f % 64);
        } else {
            *w &= !(1 << (f % 64));
        }
    }

    /// True when frame `f` belongs to a usable region and is not the bitmap's own storage.
    fn managed(&self, f: u64) -> bool {
        let addr = f * FRAME_SIZE;
        let (b0, b1) = self.bitmap_frames;
        !(b0..b1).contains(&f) && usable(self.regions).any(|(s, e)| addr >= s && addr < e)
    }
}

impl FrameAllocator for BitmapAllocator {
    fn alloc(&mut self) -> Option<Frame> {
        if self.free == 0 {
            return None;
        }
        while self.hot_len > 0 {
            self.hot_len -= 1;
            let f = u64::from(self.hot[self.hot_len]);
            if self.is_free(f) {
                self.set(f, false);
                self.free -= 1;
                return Some(Frame(f * FRAME_SIZE));
            }
        }
        let words = self.bits.len() as u64;
        let start = self.hint / 64;
        for i in 0..=words {
            let w = (start + i) % words;
            let word = self.bits[w as usize];
            if word != 0 {
                let f = w * 64 + word.trailing_zeros() as u64;
                self.set(f, false);
                self.free -= 1;
                self.hint = f;
                return Some(Frame(f * FRAME_SIZE));
            }
        }
        None
    }

    fn alloc_contiguous(&mut self, count: u64) -> Option<Frame> {
        if count == 0 || count > self.free {
            return None;
        }
        let mut run = 0;
        for f in 0..self.frames {
            if self.is_free(f) {
                run += 1;
                if run == count {
                    let first = f + 1 - count;
                    for g in first..=f {
                        self.set(g, false);
                    }
                    self.free -= count;
                    return Some(Frame(first * FRAME_SIZE));
                }
            } else {
                run = 0;
            }
        }
        None
    }

    fn free(&mut self, frame: Frame) -> Result<(), FreeError> {
        let f = frame.0 / FRAME_SIZE;
        if f >= self.frames || !self.managed(f) {
            return Err(FreeError::NotManaged);
        }
        if self.is_free(f) {
            return Err(FreeError::NotAllocated);
        }
        self.set(f, true);
        self.free += 1;
        if let (Some(slot), Ok(n)) = (self.hot.get_mut(self.hot_len), u32::try_from(f)) {
            *slot = n;
            self.hot_len += 1;
        }
        Ok(())
    }

    fn stats(&self) -> Stats {
        Stats {
            total: self.total,
            free: self.free,
        }
    }
}

/// Usable regions, shrunk to whole frames.
fn usable(regions: &MemoryRegions) -> impl Iterator<Item = (u64, u64)> + '_ {
    regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .map(|r| {
            (
                r.start.next_multiple_of(FRAME_SIZE),
                r.end / FRAME_SIZE * FRAME_SIZE,
            )
        })
        .filter(|(s, e)| s < e)
}

/// Start of the first usable region that can hold `bytes`.
pub fn find_bitmap_home(regions: &MemoryRegions, bytes: u64) -> Option<u64> {
    usable(regions)
        // Stay off the first MiB (real-mode leftovers) when we can.
        .map(|(s, e)| (s.max(0x10_0000), e))
        .find(|(s, e)| e.saturating_sub(*s) >= bytes)
        .map(|(s, _)| s)
}

static FRAMES: Mutex<Option<BitmapAllocator>> = Mutex::new(Class::Frames, None);

/// Frames [`alloc_user`] leaves to the kernel (set by [`install`]).
static RESERVE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Smallest reserve: 2 MiB.
pub const MIN_RESERVE_FRAMES: u64 = 512;
/// Largest reserve: 64 MiB.
pub const MAX_RESERVE_FRAMES: u64 = 16 * 1024;

/// Installs the global allocator and sizes the kernel reserve (1/16 of the usable frames,
/// clamped to [`MIN_RESERVE_FRAMES`]..=[`MAX_RESERVE_FRAMES`]).
pub fn install(a: BitmapAllocator) {
    let reserve = (a.total / 16).clamp(MIN_RESERVE_FRAMES, MAX_RESERVE_FRAMES);
    RESERVE.store(reserve, core::sync::atomic::Ordering::Relaxed);
    *FRAMES.lock() = Some(a);
}

/// Frames kept for the kernel (see the module docs).
pub fn reserve() -> u64 {
    RESERVE.load(core::sync::atomic::Ordering::Relaxed)
}

/// One frame for something user space asked for: `None` unless more than [`reserve`] frames
/// are free.
pub fn alloc_user() -> Option<Frame> {
    let reserve = reserve();
    with(|a| if a.free > reserve { a.alloc() } else { None })
}

/// True when the kernel has started to use its reserve: fewer than half of [`reserve`] frames
/// are free. New kernel objects for user space are refused then.
pub fn low_memory() -> bool {
    stats().free < reserve() / 2
}

fn with<R>(f: impl FnOnce(&mut BitmapAllocator) -> R) -> R {
    f(FRAMES
        .lock()
        .as_mut()
        .expect("frame allocator not initialized"))
}

/// Allocates one frame from the global allocator.
pub fn alloc() -> Option<Frame> {
    with(|a| a.alloc())
}

/// Allocates `count` contiguous frames from the global allocator.
pub fn alloc_contiguous(count: u64) -> Option<Frame> {
    with(|a| a.alloc_contiguous(count))
}

/// Allocates one frame below physical address `limit` (never frame 0), lowest first: for the
/// application processors' real-mode trampoline (below 1 MiB) and their temporary page table
/// (below 4 GiB). A linear scan of the bitmap: boot-time use only.
pub fn alloc_below(limit: u64) -> Option<Frame> {
    with(|a| {
        let end = (limit / FRAME_SIZE).min(a.frames);
        let f = (1..end).find(|&f| a.is_free(f))?;
        a.set(f, false);
        a.free -= 1;
        Some(Frame(f * FRAME_SIZE))
    })
}

/// Frees a frame to the global allocator.
pub fn free(frame: Frame) -> Result<(), FreeError> {
    with(|a| a.free(frame))
}

/// Counters of the global allocator.
pub fn stats() -> Stats {
    with(|a| a.stats())
}

/// One past the highest physical address the global allocator can hand out.
pub fn frame_limit() -> u64 {
    with(|a| a.frames * FRAME_SIZE)
}

mod tests {
    use super::*;
    use alloc::vec::Vec;
    use ktest::{ensure, ensure_eq, ktest};

    ktest! {
        fn counters() {
            // The counters agree with the bitmap (free bits) and the memory map (frames in
            // usable regions), the two things they summarise, after frames were taken (some
            // through the hot stack, some through the scan) and given back.
            // The list first: its pages come from this allocator too.
            let mut taken: Vec<Frame> = Vec::with_capacity(HOT_FRAMES + 8);
            let before = stats();
            taken.extend((0..HOT_FRAMES + 8).map_while(|_| alloc()));
            ensure_eq!(stats().free, before.free - taken.len() as u64);
            for &f in &taken {
                ensure_eq!(free(f), Ok(()));
            }
            ensure_eq!(stats(), before);
            drop(taken);
            let (s, free_bits, in_regions) = with(|a| {
                let free_bits: u64 = a.bits.iter().map(|w| u64::from(w.count_ones())).sum();
                let in_regions = (0..a.frames)
                    .filter(|&f| {
                        let addr = f * FRAME_SIZE;
                        usable(a.regions).any(|(s, e)| addr >= s && addr + FRAME_SIZE <= e)
                    })
                    .count() as u64;
                (a.stats(), free_bits, in_regions)
            });
            ensure!(s.total > 1000, "suspiciously few frames: {:?}", s);
            ensure_eq!(s.free, free_bits);
            ensure_eq!(s.total, in_regions);
            Ok(())
        }
    }

    ktest! {
        fn alloc_and_free() {
            let before = stats();
            let a = alloc().ok_or_else(|| fail("alloc failed"))?;
            let b = alloc().ok_or_else(|| fail("alloc failed"))?;
            ensure!(a != b, "same frame twice: {:?}", a);
            ensure_eq!(a.addr() % FRAME_SIZE, 0);
            ensure_eq!(stats().free, before.free - 2);
            ensure_eq!(free(a), Ok(()));
            ensure_eq!(free(a), Err(FreeError::NotAllocated));
            ensure_eq!(free(b), Ok(()));
            ensure_eq!(stats(), before);
            Ok(())
        }
    }

    ktest! {
        fn recently_freed_frames_come_back_first() {
            let before = stats();
            let frames: Vec<Frame> = (0..4).map(|_| alloc()).collect::<Option<_>>().ok_or_else(|| fail("alloc failed"))?;
            for &f in &frames {
                ensure_eq!(free(f), Ok(()));
            }
            for &f in frames.iter().rev() {
                ensure_eq!(alloc(), Some(f));
            }
            // A hot entry whose frame is in use (taken by `alloc_contiguous`, which ignores the
            // stack) is skipped, not handed out a second time.
            let held = frames[0];
            let pushed = with(|a| {
                let i = a.hot_len.min(HOT_FRAMES - 1);
                a.hot[i] = (held.addr() / FRAME_SIZE) as u32;
                a.hot_len = i + 1;
                a.hot_len
            });
            let next = alloc().ok_or_else(|| fail("alloc failed"))?;
            ensure!(next != held, "frame {held:?} handed out while in use");
            ensure!(with(|a| a.hot_len) < pushed, "the stale entry is still on the stack");
            for f in frames.into_iter().chain([next]) {
                ensure_eq!(free(f), Ok(()));
            }
            ensure_eq!(stats(), before);
            Ok(())
        }
    }

    ktest! {
        fn contiguous() {
            let before = stats();
            let f = alloc_contiguous(16).ok_or_else(|| fail("no 16-frame run"))?;
            ensure_eq!(stats().free, before.free - 16);
            for i in 0..16 {
                let g = Frame::from_addr(f.addr() + i * FRAME_SIZE).ok_or_else(|| fail("unaligned"))?;
                ensure_eq!(free(g), Ok(()));
            }
            ensure_eq!(free(Frame(0xA_0000)), Err(FreeError::NotManaged));
            ensure_eq!(free(Frame(0xffff_ffff_ffff_f000)), Err(FreeError::NotManaged));
            ensure_eq!(stats(), before);
            ensure!(alloc_contiguous(before.total + 1).is_none());
            Ok(())
        }
    }

    ktest! {
        fn exhaustion() {
            // The list first: its pages come from this allocator (the heap gives back and takes
            // whole pages), so `before` is measured after it exists.
            let mut frames = Vec::with_capacity(stats().free as usize + 1);
            let before = stats();
            while let Some(f) = alloc() {
                frames.push(f);
                ensure!(frames.len() as u64 <= before.free, "allocated more frames than were free");
            }
            ensure_eq!(frames.len() as u64, before.free);
            ensure_eq!(stats().free, 0);
            // Running out is an error value, every time.
            ensure!(alloc().is_none());
            ensure!(alloc_contiguous(1).is_none());
            // All distinct.
            frames.sort_unstable();
            ensure!(frames.windows(2).all(|w| w[0] != w[1]), "a frame was handed out twice");
            for f in frames.drain(..) {
                ensure_eq!(free(f), Ok(()));
            }
            ensure_eq!(stats(), before);
            Ok(())
        }
    }

    fn fail(msg: &str) -> ktest::Failure {
        ktest::Failure::new(msg.into(), file!(), line!())
    }
}
