//! The kernel heap: a `linked_list_allocator` over a large virtual region of the kernel half
//! (`arch::kheap`, 512 GiB reserved) into which frames are mapped on demand.
//!
//! [`init`] maps [`INITIAL_SIZE`]; when an allocation does not fit, the allocator maps at least
//! [`GROW_CHUNK`] more frames at the top of the region (`arch::kheap::grow`) and extends the heap
//! (`Heap::extend`), then retries. Growth takes frames with `frame_alloc::alloc`, which may dip
//! into the kernel frame reserve that user-driven commits may not touch
//! (`frame_alloc::alloc_user`), so the kernel's own allocations keep succeeding after user space
//! exhausted memory. The heap never shrinks: frames it took stay with it (they count in
//! [`frames`], which leak checks add to the free-frame count).
//!
//! Growth runs under the heap lock and allocates nothing from the heap (page-table frames come
//! from the frame allocator directly); lock order is heap -> kheap region -> frame allocator.

use crate::frame_alloc::{self, FRAME_SIZE};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{null_mut, NonNull};
use linked_list_allocator::Heap;
use spin::Mutex;

/// Bytes mapped at boot.
pub const INITIAL_SIZE: u64 = 2 * 1024 * 1024;
/// Least the heap grows by at once.
pub const GROW_CHUNK: u64 = 256 * 1024;

/// The global allocator: the heap behind a lock, grown on demand.
pub struct GrowableHeap(Mutex<Heap>);

#[global_allocator]
static HEAP: GrowableHeap = GrowableHeap(Mutex::new(Heap::empty()));

fn grow_frames() -> Option<u64> {
    frame_alloc::alloc().map(|f| f.addr())
}

/// Maps the heap region's first [`INITIAL_SIZE`] bytes and hands them to the allocator. Returns
/// the virtual range.
pub fn init(phys_offset: u64) -> Result<(u64, u64), &'static str> {
    arch::kheap::init(phys_offset, &mut grow_frames)?;
    let (start, len) = arch::kheap::grow(INITIAL_SIZE, &mut grow_frames);
    if len < INITIAL_SIZE {
        return Err("not enough physical memory for the kernel heap");
    }
    // SAFETY: `[start, start + len)` was just mapped read/write for the heap alone (the kheap
    // region is used by nothing else) and stays mapped forever. The heap is initialized once.
    unsafe { HEAP.0.lock().init(start as *mut u8, len as usize) };
    Ok((start, start + len))
}

/// Maps more of the region at the heap's top so that `layout` fits; false when out of frames.
fn grow(heap: &mut Heap, layout: Layout) -> bool {
    let need = (layout.size() as u64)
        .saturating_add(layout.align() as u64)
        .saturating_add(64);
    // Never map part of a request that cannot be met: a failing huge `try_reserve` must not
    // leave the heap holding all of memory. (+1 per 512 pages for page tables.)
    let pages = need.max(GROW_CHUNK).div_ceil(FRAME_SIZE);
    if pages.saturating_add(pages / 512 + 2) > frame_alloc::stats().free {
        return false;
    }
    let (start, len) = arch::kheap::grow(need.max(GROW_CHUNK), &mut grow_frames);
    if len == 0 {
        return false;
    }
    debug_assert_eq!(start, heap.top() as u64);
    // SAFETY: `[start, start + len)` was just mapped, directly after the heap's top (the region
    // is mapped in order and only the heap grows it), and stays mapped forever.
    unsafe { heap.extend(len as usize) };
    len >= need
}

// SAFETY: allocation and deallocation go through `linked_list_allocator::Heap` under one lock;
// the memory it manages is the mapped part of the kheap region, used by nothing else.
unsafe impl GlobalAlloc for GrowableHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut heap = self.0.lock();
        loop {
            if let Ok(p) = heap.allocate_first_fit(layout) {
                return p.as_ptr();
            }
            if !grow(&mut heap, layout) {
                // One last try: a partial growth may have been enough.
                return heap
                    .allocate_first_fit(layout)
                    .map_or(null_mut(), |p| p.as_ptr());
            }
            // Grown by at least `need`: the retry fits (the loop ends at the latest when
            // frames run out).
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller passes a pointer `alloc` returned for this `layout`.
            unsafe { self.0.lock().deallocate(p, layout) };
        }
    }
}

/// `(used, free)` bytes of the heap (free: inside the mapped part).
pub fn usage() -> (usize, usize) {
    let h = HEAP.0.lock();
    (h.used(), h.free())
}

/// Frames the heap holds: mapped pages plus the region's page-table pages.
pub fn frames() -> u64 {
    let (mapped, tables) = arch::kheap::stats();
    mapped / FRAME_SIZE + tables
}

mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use ktest::{ensure, ensure_eq, ktest};

    ktest! {
        fn alloc_and_free() {
            let (used_before, _) = usage();
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
            ensure!(frames() == frames_before, "a failed allocation grew the heap");
            let b = Box::new(7u8);
            ensure_eq!(*b, 7);
            Ok(())
        }
    }

    ktest! {
        fn grows_beyond_its_initial_size() {
            // Allocate well past the initial mapping; the heap maps more frames on demand.
            let frames_before = frames();
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            let mut total = 0u64;
            while total < INITIAL_SIZE * 3 {
                let mut v = alloc::vec![0u8; 256 * 1024];
                v[0] = 1;
                total += v.len() as u64;
                chunks.push(v);
            }
            ensure!(frames() > frames_before, "the heap did not grow");
            let ptr = chunks.last().map(|c| c.as_ptr() as u64).unwrap_or(0);
            ensure!(
                (arch::kheap::REGION_BASE..arch::kheap::REGION_BASE + arch::kheap::REGION_LEN)
                    .contains(&ptr),
                "heap pointer {ptr:#x} outside the heap region"
            );
            let used = usage().0;
            drop(chunks);
            ensure!(usage().0 < used);
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
}
