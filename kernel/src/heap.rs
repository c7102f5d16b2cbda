//! The kernel heap: a `linked_list_allocator` over physically contiguous frames taken from the
//! frame allocator and reached through the bootloader's physical-memory offset mapping.

use crate::frame_alloc::{self, FRAME_SIZE};
use linked_list_allocator::LockedHeap;

/// Heap size.
pub const HEAP_SIZE: u64 = 4 * 1024 * 1024;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Takes `HEAP_SIZE` bytes of frames and hands them to the allocator. Returns the virtual range.
pub fn init(phys_offset: u64) -> Result<(u64, u64), &'static str> {
    let frame = frame_alloc::alloc_contiguous(HEAP_SIZE / FRAME_SIZE)
        .ok_or("not enough contiguous physical memory for the kernel heap")?;
    let start = phys_offset + frame.addr();
    // SAFETY: the frames `[frame, frame + HEAP_SIZE)` were just taken from the frame allocator, so
    // nothing else uses them, and the bootloader maps all physical memory writable at
    // `phys_offset`. The heap is initialized exactly once, here.
    unsafe { HEAP.lock().init(start as *mut u8, HEAP_SIZE as usize) };
    Ok((start, start + HEAP_SIZE))
}

/// `(used, free)` bytes of the heap.
pub fn usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}

mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec::Vec;
    use ktest::{ensure, ensure_eq, ktest};

    ktest! {
        fn alloc_and_free() {
            let (used_before, _) = usage();
            let b = Box::new(0x1234_5678u64);
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
            // Larger than the heap: an allocation error is reported by `try_reserve`.
            let mut big: Vec<u8> = Vec::new();
            ensure!(big.try_reserve(HEAP_SIZE as usize * 2).is_err());
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
