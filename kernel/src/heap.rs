//! The kernel heap: size-class slabs for small objects and page-granular runs for large ones,
//! both giving whole free pages back to the frame allocator.
//!
//! Which path an allocation takes is a pure function of its `Layout` ([`Kind::of`]), so
//! `dealloc` finds its way back from the layout alone:
//!
//! - **Small** (size up to [`MAX_SMALL`] bytes, alignment up to 1 KiB): one of [`CLASSES`]. A
//!   slab is one 4 KiB frame reached through the bootloader's physical-memory mapping (no page
//!   tables to build or tear down, no TLB work); objects sit at multiples of the class size from
//!   the frame's start and the 32-byte [`Slab`] header at its end. Free objects form a list
//!   through their first word; never-used ones are handed out from a bump offset. Each class keeps
//!   a doubly linked list of slabs with free room; a slab whose last object is freed leaves it at
//!   once and its frame goes back to the frame allocator (up to [`EMPTY_CACHE`] empty slabs are
//!   kept for reuse, so an alloc/free pair at a slab boundary does not churn frames).
//! - **Page** (one page or less, not small): one frame through the physical-memory mapping.
//! - **Run** (more than a page): `pages` frames mapped at a virtual slot of the kernel-heap region
//!   (`arch::kheap`). Slots come in power-of-two sizes ([`ORDERS`] orders of 4 KiB << order, each
//!   order in its own [`ORDER_SPAN`] of the region, so a slot is aligned to its size); only the
//!   pages the layout needs are mapped. Freeing unmaps them (with `invlpg`, before the frames are
//!   reused) and threads the slot onto its order's free list through the non-present page entry
//!   of its first page (`kheap::set_link`), which needs no memory. The region's page tables stay
//!   (bounded by the most slots of each order ever in use at once).
//!
//! Frames come from `frame_alloc::alloc`, which may dip into the kernel frame reserve that
//! user-driven commits may not touch (`frame_alloc::alloc_user`), so the kernel's own
//! allocations keep succeeding after user space exhausted memory; since the heap gives frames
//! back, `frame_alloc::low_memory` clears again once the kernel objects are gone. [`frames`]
//! counts what the heap holds (reported apart from the free frames by `zx_debug_kernel_stats`).
//!
//! Locking: one spin lock, taken with interrupts off (a preemptible section or an interrupt
//! handler that allocates can never spin on a lock its own CPU holds). Lock order: heap -> kheap
//! region -> frame allocator; nothing under the lock allocates from the heap. Every operation is
//! O(1) apart from mapping / unmapping a run, which is O(pages) and proportional to its size.

use crate::frame_alloc::{self, Frame, FRAME_SIZE};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::null_mut;
use lock_order::{Class, OrderedMutex as Mutex};

const PAGE: usize = FRAME_SIZE as usize;
/// Bytes of a slab frame before its header.
const SLAB_SPACE: usize = PAGE - core::mem::size_of::<Slab>();
/// Object sizes of the slab classes (multiples of 16; a class of size `s` keeps objects aligned
/// to the largest power of two dividing `s`). Chosen so few bytes of a slab are left over.
pub const CLASSES: [usize; 28] = [
    16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352, 384,
    448, 496, 576, 672, 800, 1008, 1344, 2032,
];
/// Largest small object.
pub const MAX_SMALL: usize = CLASSES[CLASSES.len() - 1];
/// Empty slabs kept for reuse instead of being returned at once.
pub const EMPTY_CACHE: usize = 8;
/// Run orders: slots of 4 KiB << 0 ..= 4 KiB << (ORDERS - 1) (2 GiB).
pub const ORDERS: usize = 20;
/// Virtual bytes of the region given to each run order.
pub const ORDER_SPAN: u64 = 16 << 30;
const MAGIC: u32 = 0x5ab1_e5ed;
const NONE: u16 = u16::MAX;

const _: () = assert!(ORDERS as u64 * ORDER_SPAN <= arch::kheap::REGION_LEN);
const _: () = assert!(core::mem::size_of::<Slab>() == 32);

/// The header at the end of each slab frame.
#[repr(C)]
struct Slab {
    next: *mut Slab,
    prev: *mut Slab,
    /// Offset of the first free object (a list through the objects' first `u16`), or [`NONE`].
    free: u16,
    /// Offset of the first never-used object.
    bump: u16,
    used: u16,
    class: u16,
    magic: u32,
    _pad: u32,
}

/// Where an allocation of a given layout lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Index into [`CLASSES`].
    Small(usize),
    /// One frame through the physical-memory mapping.
    Page,
    /// `pages` frames mapped at a slot of `order`.
    Run { order: usize, pages: u64 },
    /// Larger than any slot (fails).
    TooLarge,
}

impl Kind {
    fn of(layout: Layout) -> Kind {
        let size = layout.size().max(1);
        let align = layout.align();
        if size <= MAX_SMALL {
            let class = if align <= 16 && size <= 256 {
                Some(size.div_ceil(16) - 1)
            } else {
                CLASSES
                    .iter()
                    .position(|&c| c >= size && c.is_multiple_of(align))
            };
            if let Some(c) = class {
                return Kind::Small(c);
            }
        }
        let pages = size.div_ceil(PAGE) as u64;
        if pages == 1 && align <= PAGE {
            return Kind::Page;
        }
        let slot_pages = pages.max(align.div_ceil(PAGE) as u64).next_power_of_two();
        let order = slot_pages.trailing_zeros() as usize;
        if order >= ORDERS {
            Kind::TooLarge
        } else {
            Kind::Run { order, pages }
        }
    }
}

#[derive(Clone, Copy)]
struct Order {
    /// Slots handed out at least once (slot `i` is at `base + i * size`).
    high_water: u64,
    /// First free slot's index + 1 (0: none); the next one's is in its page entry.
    free: u64,
}

struct Inner {
    phys_offset: u64,
    partial: [*mut Slab; CLASSES.len()],
    empty: *mut Slab,
    empty_count: usize,
    /// Slab frames, the cached empty ones included.
    slab_frames: u64,
    /// Frames of `Kind::Page` allocations.
    page_frames: u64,
    orders: [Order; ORDERS],
    /// Bytes handed out (sum of the live layouts' sizes).
    used_bytes: usize,
}

// SAFETY: the raw pointers point into frames the heap owns; `Inner` is only reached under the
// heap's lock.
unsafe impl Send for Inner {}

/// The global allocator.
pub struct KernelHeap(Mutex<Inner>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(
    Class::Heap,
    Inner {
        phys_offset: 0,
        partial: [null_mut(); CLASSES.len()],
        empty: null_mut(),
        empty_count: 0,
        slab_frames: 0,
        page_frames: 0,
        orders: [Order {
            high_water: 0,
            free: 0,
        }; ORDERS],
        used_bytes: 0,
    },
));

fn with_heap<R>(f: impl FnOnce(&mut Inner) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| f(&mut HEAP.0.lock()))
}

fn kernel_frame() -> Option<u64> {
    frame_alloc::alloc().map(Frame::addr)
}

fn free_frame(phys: u64) {
    let f = Frame::from_addr(phys).expect("heap: unaligned frame");
    if let Err(e) = frame_alloc::free(f) {
        panic!("heap: freeing frame {phys:#x}: {e:?}");
    }
}

/// Claims the heap's virtual region (`arch::kheap`) and enables the heap. Returns the region.
pub fn init(phys_offset: u64) -> Result<(u64, u64), &'static str> {
    arch::kheap::init(phys_offset, &mut kernel_frame)?;
    with_heap(|h| h.phys_offset = phys_offset);
    Ok((
        arch::kheap::REGION_BASE,
        arch::kheap::REGION_BASE + arch::kheap::REGION_LEN,
    ))
}

fn order_base(order: usize) -> u64 {
    arch::kheap::REGION_BASE + order as u64 * ORDER_SPAN
}

fn slot_size(order: usize) -> u64 {
    FRAME_SIZE << order
}

impl Inner {
    /// A frame for the heap, as a pointer through the physical-memory mapping.
    fn take_frame(&mut self) -> Option<*mut u8> {
        if self.phys_offset == 0 {
            return None;
        }
        kernel_frame().map(|phys| (self.phys_offset + phys) as *mut u8)
    }

    fn give_frame(&mut self, page: *mut u8) {
        free_frame(page as u64 - self.phys_offset);
    }

    fn slab_of(&self, ptr: *mut u8) -> *mut Slab {
        ((ptr as usize & !(PAGE - 1)) + SLAB_SPACE) as *mut Slab
    }

    /// # Safety
    /// `slab` is a live slab header not on any list.
    unsafe fn push_partial(&mut self, slab: *mut Slab, class: usize) {
        let head = self.partial[class];
        // SAFETY: `slab` and `head` (when not null) are live slab headers of this heap.
        unsafe {
            (*slab).prev = null_mut();
            (*slab).next = head;
            if !head.is_null() {
                (*head).prev = slab;
            }
        }
        self.partial[class] = slab;
    }

    /// # Safety
    /// `slab` is a live slab header on the partial list of `class`.
    unsafe fn unlink_partial(&mut self, slab: *mut Slab, class: usize) {
        // SAFETY: list members are live slab headers of this heap.
        unsafe {
            let (prev, next) = ((*slab).prev, (*slab).next);
            if prev.is_null() {
                self.partial[class] = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*slab).prev = null_mut();
            (*slab).next = null_mut();
        }
    }

    fn alloc_small(&mut self, class: usize) -> *mut u8 {
        let size = CLASSES[class];
        let capacity = (SLAB_SPACE / size) as u16;
        let mut slab = self.partial[class];
        if slab.is_null() {
            let page = if self.empty.is_null() {
                let Some(page) = self.take_frame() else {
                    return null_mut();
                };
                self.slab_frames += 1;
                page
            } else {
                let s = self.empty;
                // SAFETY: the empty list holds live (empty) slab headers.
                self.empty = unsafe { (*s).next };
                self.empty_count -= 1;
                (s as usize - SLAB_SPACE) as *mut u8
            };
            slab = self.slab_of(page);
            // SAFETY: the header lies in the frame we own (just taken or cached empty).
            unsafe {
                slab.write(Slab {
                    next: null_mut(),
                    prev: null_mut(),
                    free: NONE,
                    bump: 0,
                    used: 0,
                    class: class as u16,
                    magic: MAGIC,
                    _pad: 0,
                });
                self.push_partial(slab, class);
            }
        }
        let page = slab as usize - SLAB_SPACE;
        // SAFETY: `slab` is a live header of class `class` with room (it is on the partial list);
        // free-list links are offsets of objects inside its frame.
        unsafe {
            let off = if (*slab).free != NONE {
                let off = (*slab).free;
                (*slab).free = ((page + off as usize) as *const u16).read();
                off
            } else {
                let off = (*slab).bump;
                (*slab).bump += size as u16;
                off
            };
            (*slab).used += 1;
            if (*slab).used == capacity {
                self.unlink_partial(slab, class);
            }
            (page + off as usize) as *mut u8
        }
    }

    /// # Safety
    /// `ptr` was returned by `alloc_small(class)` and not freed since.
    unsafe fn dealloc_small(&mut self, ptr: *mut u8, class: usize) {
        let size = CLASSES[class];
        let capacity = (SLAB_SPACE / size) as u16;
        let slab = self.slab_of(ptr);
        let page = slab as usize - SLAB_SPACE;
        let off = ptr as usize - page;
        // SAFETY: by the contract, `ptr` is an object of a live slab of `class`, whose header is
        // at the end of its frame; the checks catch a wrong layout or a wild pointer.
        unsafe {
            if (*slab).magic != MAGIC
                || usize::from((*slab).class) != class
                || !off.is_multiple_of(size)
                || (*slab).used == 0
            {
                panic!("heap: bad free of {ptr:p} (class {size})");
            }
            (ptr as *mut u16).write((*slab).free);
            (*slab).free = off as u16;
            let was_full = (*slab).used == capacity;
            (*slab).used -= 1;
            if (*slab).used == 0 {
                if !was_full {
                    self.unlink_partial(slab, class);
                }
                (*slab).magic = 0;
                if self.empty_count < EMPTY_CACHE {
                    (*slab).next = self.empty;
                    self.empty = slab;
                    self.empty_count += 1;
                } else {
                    self.slab_frames -= 1;
                    self.give_frame(page as *mut u8);
                }
            } else if was_full {
                self.push_partial(slab, class);
            }
        }
    }

    fn take_slot(&mut self, order: usize) -> Option<u64> {
        let o = &mut self.orders[order];
        if o.free != 0 {
            let va = order_base(order) + (o.free - 1) * slot_size(order);
            o.free = arch::kheap::link(va) >> 1;
            return Some(va);
        }
        if o.high_water < ORDER_SPAN / slot_size(order) {
            o.high_water += 1;
            return Some(order_base(order) + (o.high_water - 1) * slot_size(order));
        }
        None
    }

    fn put_slot(&mut self, order: usize, va: u64) {
        let o = &mut self.orders[order];
        let index = (va - order_base(order)) / slot_size(order);
        if arch::kheap::set_link(va, o.free << 1) {
            o.free = index + 1;
        } else if index + 1 == o.high_water {
            // Never mapped (its table could not be built): forget it.
            o.high_water -= 1;
        }
        // Otherwise only the slot's virtual range is lost (its table is missing, so it was
        // never mapped).
    }

    fn alloc_run(&mut self, order: usize, pages: u64) -> *mut u8 {
        if self.phys_offset == 0 {
            return null_mut();
        }
        // Fail fast (and never take part of memory) for a run that cannot fit; + page tables.
        if pages.saturating_add(pages / 512 + 3) > frame_alloc::stats().free {
            return null_mut();
        }
        let Some(va) = self.take_slot(order) else {
            return null_mut();
        };
        let mapped = arch::kheap::map(va, pages, &mut kernel_frame);
        if mapped < pages {
            arch::kheap::unmap(va, mapped, &mut free_frame);
            self.put_slot(order, va);
            return null_mut();
        }
        va as *mut u8
    }

    fn dealloc_run(&mut self, ptr: *mut u8, order: usize, pages: u64) {
        let va = ptr as u64;
        let base = order_base(order);
        if va < base || !(va - base).is_multiple_of(slot_size(order)) || va - base >= ORDER_SPAN {
            panic!("heap: bad free of {ptr:p} (run of order {order})");
        }
        arch::kheap::unmap(va, pages, &mut free_frame);
        self.put_slot(order, va);
    }
}

// SAFETY: every path hands out memory the heap owns exclusively (slab objects inside frames it
// took, whole frames, or pages it mapped in its own region) and takes it back only through
// `dealloc` with the same layout, which selects the same path; all state is under one lock.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        with_heap(|h| {
            let p = match Kind::of(layout) {
                Kind::Small(c) => h.alloc_small(c),
                Kind::Page => match h.take_frame() {
                    Some(p) => {
                        h.page_frames += 1;
                        p
                    }
                    None => null_mut(),
                },
                Kind::Run { order, pages } => h.alloc_run(order, pages),
                Kind::TooLarge => null_mut(),
            };
            if !p.is_null() {
                h.used_bytes += layout.size();
            }
            p
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ptr.is_null() {
            return;
        }
        with_heap(|h| {
            h.used_bytes -= layout.size();
            match Kind::of(layout) {
                // SAFETY: the caller passes a pointer `alloc` returned for this layout.
                Kind::Small(c) => unsafe { h.dealloc_small(ptr, c) },
                Kind::Page => {
                    h.page_frames -= 1;
                    h.give_frame(ptr);
                }
                Kind::Run { order, pages } => h.dealloc_run(ptr, order, pages),
                Kind::TooLarge => panic!("heap: free of a layout never allocated"),
            }
        })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to `layout.align()`, does not
        // overflow `isize`, so the layout is valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let (old, new) = (Kind::of(layout), Kind::of(new_layout));
        if old == new {
            with_heap(|h| h.used_bytes = h.used_bytes - layout.size() + new_size);
            return ptr;
        }
        // SAFETY: `new_layout` is valid (above) and has a non-zero size when `new_size` does;
        // the copy stays inside both blocks; `ptr` was allocated with `layout`.
        unsafe {
            let p = self.alloc(new_layout);
            if !p.is_null() {
                core::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            p
        }
    }
}

/// `(used, free)` bytes of the heap: handed out, and held but not handed out.
pub fn usage() -> (usize, usize) {
    let used = with_heap(|h| h.used_bytes);
    (used, (frames() as usize * PAGE).saturating_sub(used))
}

/// Frames the heap holds: slab frames (cached empty ones included), single-page allocations,
/// mapped run pages and the region's page-table pages.
pub fn frames() -> u64 {
    let (slabs, pages) = with_heap(|h| (h.slab_frames, h.page_frames));
    let (mapped, tables) = arch::kheap::stats();
    slabs + pages + mapped + tables
}

mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use ktest::{ensure, ensure_eq, ktest};

    ktest! {
        fn alloc_and_free() {
            let (used_before, _) = usage();
            // black_box: at opt-level 3 the compiler may drop an allocation it sees unused.
            let b = core::hint::black_box(Box::new(0x1234_5678u64));
            ensure_eq!(*b, 0x1234_5678);
            ensure!(usage().0 > used_before);
            drop(b);
            ensure_eq!(usage().0, used_before);
            Ok(())
        }
    }

    ktest! {
        fn large_allocation() {
            let (used_before, _) = usage();
            let mut v = alloc::vec![0u8; 1024 * 1024];
            v[0] = 1;
            v[1024 * 1024 - 1] = 2;
            ensure_eq!(v.iter().map(|&b| b as u64).sum::<u64>(), 3);
            drop(v);
            ensure_eq!(usage().0, used_before);
            // Larger than physical memory: an allocation error is reported by `try_reserve`,
            // and the heap still works afterwards.
            let mut big: Vec<u8> = Vec::new();
            let all = frame_alloc::stats().total * FRAME_SIZE;
            let frames_before = frames();
            ensure!(big.try_reserve(all as usize * 2).is_err());
            ensure!(big.try_reserve(usize::MAX / 4).is_err());
            ensure!(frames() == frames_before, "a failed allocation grew the heap");
            let b = Box::new(7u8);
            ensure_eq!(*b, 7);
            Ok(())
        }
    }

    ktest! {
        fn vec_growth() {
            let mut v = Vec::new();
            for i in 0..10_000u64 {
                v.push(i);
            }
            ensure_eq!(v.len(), 10_000);
            ensure_eq!(v.iter().sum::<u64>(), 10_000 * 9_999 / 2);
            let mut boxes: Vec<Box<[u8]>> = (1..200).map(|n| alloc::vec![n as u8; n * 7].into()).collect();
            boxes.retain(|b| b.len() % 2 == 0);
            ensure!(boxes.iter().all(|b| b.iter().all(|&x| x == b[0])));
            Ok(())
        }
    }

    ktest! {
        fn every_class_and_alignment_is_honoured() {
            // Sizes across every class boundary and the page / run paths, with alignments up to
            // 8 KiB: each block is aligned, holds its pattern, and freeing all restores usage.
            let (used_before, _) = usage();
            let mut blocks: Vec<(*mut u8, Layout, u8)> = Vec::new();
            let mut sizes: Vec<usize> = CLASSES.iter().flat_map(|&c| [c - 1, c, c + 1]).collect();
            sizes.extend([PAGE - 1, PAGE, PAGE + 1, 3 * PAGE, 64 * PAGE + 5]);
            for (i, &size) in sizes.iter().enumerate() {
                for align in [1usize, 8, 16, 32, 64, 256, 4096, 8192] {
                    let layout = Layout::from_size_align(size, align).map_err(|_| fail("layout"))?;
                    // SAFETY: a valid non-zero-size layout; freed below with the same layout.
                    let p = unsafe { alloc::alloc::alloc(layout) };
                    ensure!(!p.is_null(), "allocation of {size} bytes aligned {align} failed");
                    ensure_eq!(p as usize % align, 0);
                    let pattern = (i * 7 + align) as u8;
                    // SAFETY: `p` is a fresh block of `size` bytes.
                    unsafe { core::ptr::write_bytes(p, pattern, size) };
                    blocks.push((p, layout, pattern));
                }
            }
            for &(p, layout, pattern) in &blocks {
                // SAFETY: live blocks of `layout.size()` bytes.
                let s = unsafe { core::slice::from_raw_parts(p, layout.size()) };
                ensure!(s.iter().all(|&b| b == pattern), "block {p:p} was overwritten");
            }
            for (p, layout, _) in blocks.drain(..) {
                // SAFETY: allocated above with this layout.
                unsafe { alloc::alloc::dealloc(p, layout) };
            }
            drop(blocks);
            drop(sizes);
            ensure_eq!(usage().0, used_before);
            Ok(())
        }
    }

    ktest! {
        fn freed_pages_go_back_to_the_frame_allocator() {
            // 32 MiB of small objects, then of 3-page runs, then of single pages: while they
            // live the heap holds the frames; once freed, the frame allocator has them again
            // (up to the cached empty slabs).
            let sum = || frame_alloc::stats().free + frames();
            let free_before = frame_alloc::stats().free;
            let tables_before = arch::kheap::stats().1;
            let sum_before = sum();
            for size in [96usize, 3 * PAGE, PAGE] {
                let count = (32 << 20) / size;
                let mut v: Vec<Box<[u8]>> = Vec::with_capacity(count);
                for i in 0..count {
                    v.push(alloc::vec![i as u8; size].into_boxed_slice());
                }
                let held = frames();
                ensure!(
                    frame_alloc::stats().free + (30 << 20) / FRAME_SIZE < free_before,
                    "32 MiB of {size}-byte objects took too few frames"
                );
                ensure!(v.iter().enumerate().all(|(i, b)| b[size - 1] == i as u8));
                drop(v);
                ensure!(frames() < held);
                let free = frame_alloc::stats().free;
                let tables = arch::kheap::stats().1 - tables_before;
                ensure!(
                    free + EMPTY_CACHE as u64 + tables + 8 >= free_before,
                    "{size}-byte objects: {} frames not returned",
                    free_before - free
                );
                ensure_eq!(sum(), sum_before);
            }
            Ok(())
        }
    }

    ktest! {
        fn run_slots_are_reused() {
            // A run freed and allocated again takes the same slot (the free list through the
            // page entries), and a freed run's pages are unmapped.
            let layout = Layout::from_size_align(5 * PAGE, 8).map_err(|_| fail("layout"))?;
            let mapped_before = arch::kheap::stats().0;
            // SAFETY: a valid layout; freed with the same one.
            let a = unsafe { alloc::alloc::alloc(layout) };
            // SAFETY: as above.
            let b = unsafe { alloc::alloc::alloc(layout) };
            ensure!(!a.is_null() && !b.is_null());
            ensure_eq!(arch::kheap::stats().0, mapped_before + 10);
            // SAFETY: allocated above.
            unsafe { alloc::alloc::dealloc(a, layout) };
            ensure_eq!(arch::kheap::stats().0, mapped_before + 5);
            // SAFETY: as above.
            let c = unsafe { alloc::alloc::alloc(layout) };
            ensure_eq!(c, a);
            // SAFETY: allocated above.
            unsafe {
                alloc::alloc::dealloc(b, layout);
                alloc::alloc::dealloc(c, layout);
            }
            ensure_eq!(arch::kheap::stats().0, mapped_before);
            Ok(())
        }
    }

    fn fail(msg: &str) -> ktest::Failure {
        ktest::Failure::new(msg.into(), file!(), line!())
    }
}
