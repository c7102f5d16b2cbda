//! The shared zero page seen from user mode: reads of a fresh mapping map the kernel's one zero
//! frame and commit nothing (ZX_INFO_VMO's committed bytes stay 0, the kernel's frame counters
//! do not move); a write commits; `zx_vmo_write`, COMMIT, a write through another mapping, a
//! protect and a kernel copy into the mapping after a mapped read all leave the mappings showing
//! the data; `zx_debug_kernel_stats`
//! runs the invariant check of every address space (zero-frame entries read-only, on pages not
//! committed; the zero frame all zeros) and finds no failure.

use abi::kstats;
use abi::ops::*;
use abi::vm_options::ZX_VM_PERM_READ;
use zx::Vmo;

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, Failure, TestResult};

tests!(
    a_fresh_mapping_reads_zeros_and_commits_nothing,
    a_vmo_write_after_a_mapped_read_is_seen_through_the_mapping,
    many_mappings_read_the_one_zero_page,
);

/// Frames not holding user data: free, the kernel heap's, user page tables. A change of data
/// frames is the opposite change of this sum while no kernel stack comes or goes (the caller
/// has [`settled`]; the stack count is compared too). Every address space passes its check.
fn frames_not_data(stacks: u64) -> Result<u64, Failure> {
    let s = check!(zx::leak_check_stats());
    ensure_eq!(s[kstats::INVARIANT_FAILURES], 0);
    ensure_eq!(s[kstats::KERNEL_STACKS], stacks);
    Ok(s[kstats::FREE_FRAMES] + s[kstats::HEAP_FRAMES] + s[kstats::TABLE_PAGES])
}

/// Waits (up to half a second) until the stacks of threads that ended in earlier tests are
/// reaped: the live kernel stack count holds still over 20 ms. Returns it.
fn settled() -> Result<u64, Failure> {
    let mut last = check!(zx::leak_check_stats())[kstats::KERNEL_STACKS];
    for _ in 0..25 {
        let (a, _b) = check!(zx::Channel::create(0));
        let _ = a.handle().wait_one(
            abi::signals::ZX_CHANNEL_READABLE,
            zx::clock_get_monotonic() + 20_000_000,
        );
        let now = check!(zx::leak_check_stats())[kstats::KERNEL_STACKS];
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

fn committed(v: &Vmo) -> Result<u64, Failure> {
    Ok(check!(v.info()).committed_bytes)
}

/// A 1000-page mapping read page by page: zeros, nothing committed, no frame taken; written
/// page by page: every page committed, 1000 frames taken, the data read back.
fn a_fresh_mapping_reads_zeros_and_commits_nothing(ctx: &Ctx) -> TestResult {
    const N: usize = 1000;
    let v = vmo(N)?;
    let a = check!(ctx.root.map(RW, 0, &v, 0, N * PAGE));
    let stacks = settled()?;
    let before = frames_not_data(stacks)?;
    let free_before = check!(zx::leak_check_stats())[kstats::FREE_FRAMES];
    for i in 0..N {
        ensure_eq!(peek(a + i * PAGE + (i % 512) * 8), 0);
    }
    ensure_eq!(committed(&v)?, 0);
    ensure_eq!(frames_not_data(stacks)?, before);
    for i in 0..N {
        poke(a + i * PAGE + 8, i as u64 + 1);
    }
    ensure_eq!(committed(&v)?, (N * PAGE) as u64);
    // At least N frames left the free pool (the heap may have taken some for the page list).
    let free_now = check!(zx::leak_check_stats())[kstats::FREE_FRAMES];
    ensure!(
        free_now + N as u64 <= free_before,
        "{} frames taken for {N} pages written",
        free_before - free_now
    );
    for i in 0..N {
        ensure_eq!(peek(a + i * PAGE + 8), i as u64 + 1);
        ensure_eq!(peek(a + i * PAGE), 0);
    }
    // SAFETY: nothing refers to the mapping any more.
    check!(unsafe { ctx.root.unmap(a, N * PAGE) });
    drop(v);
    // The N frames are back in the free pool.
    let free_end = check!(zx::leak_check_stats())[kstats::FREE_FRAMES];
    ensure!(
        free_end >= free_now + N as u64,
        "{} frames back after {N} pages freed",
        free_end.saturating_sub(free_now)
    );
    Ok(())
}

/// Read faults first, then each way of committing a page: the mappings show the data.
fn a_vmo_write_after_a_mapped_read_is_seen_through_the_mapping(ctx: &Ctx) -> TestResult {
    let v = vmo(5)?;
    let a = check!(ctx.root.map(RW, 0, &v, 0, 5 * PAGE));
    let r = check!(ctx.root.map(ZX_VM_PERM_READ, 0, &v, 0, 5 * PAGE));
    for i in 0..5 {
        ensure_eq!(peek(a + i * PAGE), 0);
        ensure_eq!(peek(r + i * PAGE), 0);
    }
    ensure_eq!(committed(&v)?, 0);
    // zx_vmo_write.
    check!(v.write(&7u64.to_le_bytes(), 0));
    ensure_eq!((peek(a), peek(r)), (7, 7));
    // A write through the other mapping.
    poke(a + PAGE, 8);
    ensure_eq!(peek(r + PAGE), 8);
    // COMMIT (of the VMO, then of the mapping), then a write through the VMO.
    check!(v.op_range(ZX_VMO_OP_COMMIT, 2 * PAGE as u64, PAGE as u64));
    check!(v.write(&9u64.to_le_bytes(), 2 * PAGE as u64));
    ensure_eq!((peek(a + 2 * PAGE), peek(r + 2 * PAGE)), (9, 9));
    // SAFETY: COMMIT changes no data.
    check!(unsafe { ctx.root.op_range(ZX_VMAR_OP_COMMIT, a + 3 * PAGE, PAGE) });
    check!(v.write(&10u64.to_le_bytes(), 3 * PAGE as u64));
    ensure_eq!((peek(a + 3 * PAGE), peek(r + 3 * PAGE)), (10, 10));
    // Protect read-only and back: the page read as zeros takes a write, seen everywhere.
    // SAFETY: (whole block) nothing writes the mapping while it is read-only.
    unsafe {
        check!(ctx.root.protect(ZX_VM_PERM_READ, a, 5 * PAGE));
        check!(ctx.root.protect(RW, a, 5 * PAGE));
    }
    poke(a + 4 * PAGE, 11);
    ensure_eq!(peek(r + 4 * PAGE), 11);
    let mut buf = [0u8; 8];
    check!(v.read(&mut buf, 4 * PAGE as u64));
    ensure_eq!(u64::from_le_bytes(buf), 11);
    ensure_eq!(committed(&v)?, 5 * PAGE as u64);
    // Decommit: the mappings read zeros again, and nothing is committed by reading them.
    check!(v.op_range(ZX_VMO_OP_DECOMMIT, 0, 5 * PAGE as u64));
    for i in 0..5 {
        ensure_eq!((peek(a + i * PAGE), peek(r + i * PAGE)), (0, 0));
    }
    ensure_eq!(committed(&v)?, 0);
    // The kernel writes the page (zx_vmo_read into the mapping): its copy to user memory faults
    // for WRITE on the zero-frame entry like a user write, commits, and never writes the zero
    // frame.
    let src = vmo(1)?;
    check!(src.write(&[0x5a; 64], 100));
    // SAFETY: the first page of the mapping `a` is ours and no Rust reference covers it.
    let dst = unsafe { core::slice::from_raw_parts_mut(a as *mut u8, PAGE) };
    check!(src.read(dst, 0));
    ensure_eq!(peek(r + 88), 0);
    ensure_eq!(peek(r + 104), 0x5a5a_5a5a_5a5a_5a5a);
    ensure_eq!(committed(&v)?, PAGE as u64);
    ensure_eq!(peek(r + PAGE), 0);
    frames_not_data(settled()?)?;
    // SAFETY: (whole block) nothing refers to the mappings any more.
    unsafe {
        check!(ctx.root.unmap(a, 5 * PAGE));
        check!(ctx.root.unmap(r, 5 * PAGE));
    }
    Ok(())
}

/// Sixteen mappings of four fresh VMOs, every page read: one zero frame serves them all.
fn many_mappings_read_the_one_zero_page(ctx: &Ctx) -> TestResult {
    const PAGES: usize = 64;
    let vmos = [vmo(PAGES)?, vmo(PAGES)?, vmo(PAGES)?, vmo(PAGES)?];
    let mut maps = alloc::vec::Vec::new();
    for i in 0..16 {
        maps.push(check!(ctx.root.map(RW, 0, &vmos[i % 4], 0, PAGES * PAGE)));
    }
    let stacks = settled()?;
    let before = frames_not_data(stacks)?;
    for &a in &maps {
        for p in 0..PAGES {
            ensure_eq!(peek(a + p * PAGE), 0);
        }
    }
    ensure_eq!(frames_not_data(stacks)?, before);
    for v in &vmos {
        ensure_eq!(committed(v)?, 0);
    }
    // One write reaches the four mappings of its VMO only.
    poke(maps[1] + 5 * PAGE, 3);
    for (i, &a) in maps.iter().enumerate() {
        ensure_eq!(peek(a + 5 * PAGE), if i % 4 == 1 { 3 } else { 0 });
    }
    ensure_eq!(committed(&vmos[1])?, PAGE as u64);
    // SAFETY: (whole block) nothing refers to the mappings any more.
    unsafe {
        for a in maps {
            check!(ctx.root.unmap(a, PAGES * PAGE));
        }
    }
    Ok(())
}
