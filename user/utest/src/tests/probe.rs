//! `zx::probe`: probe_for_read / probe_for_write against every kind of mapping and address,
//! values preserved, and nothing left behind (threads, handles, stacks).

use core::sync::atomic::{AtomicU32, Ordering};

use abi::signals::ZX_THREAD_TERMINATED;
use abi::vm_options::*;
use abi::Status;
use zx::probe::{can_read, can_write, probe_for_read, probe_for_write};

use super::util::{vmo, KERNEL_ADDR, NON_CANONICAL, RW};
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    probe_read_write_mapping,
    probe_read_only_mapping,
    probe_unmapped,
    probe_kernel_and_non_canonical,
    probe_past_vmo_end,
    probe_after_protect_and_unmap,
    probe_write_keeps_value,
    probes_leak_nothing,
    concurrent_probes,
    helper_ending_early_is_not_access,
);

/// A probe whose helper thread ends without an exception but before its access (as a thread
/// ended by anything else would) reports BAD_STATE, not "accessible".
fn helper_ending_early_is_not_access(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    ensure_err!(
        zx::probe::probe_for_read_ending_early(addr),
        Status::ERR_BAD_STATE
    );
    check!(probe_for_read(addr));
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    Ok(())
}

fn probe_read_write_mapping(ctx: &Ctx) -> TestResult {
    let v = vmo(2)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, 2 * PAGE));
    check!(probe_for_read(addr));
    check!(probe_for_write(addr));
    check!(probe_for_read(addr + 2 * PAGE - 1));
    check!(probe_for_write(addr + 2 * PAGE - 1));
    ensure!(can_read(addr) && can_write(addr + PAGE));
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, 2 * PAGE) });
    Ok(())
}

fn probe_read_only_mapping(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    check!(probe_for_read(addr));
    ensure_err!(probe_for_write(addr), Status::ERR_ACCESS_DENIED);
    ensure!(can_read(addr) && !can_write(addr));
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    Ok(())
}

fn probe_unmapped(_ctx: &Ctx) -> TestResult {
    ensure_err!(probe_for_read(0), Status::ERR_NOT_FOUND);
    ensure_err!(probe_for_write(0x10), Status::ERR_NOT_FOUND);
    Ok(())
}

fn probe_kernel_and_non_canonical(_ctx: &Ctx) -> TestResult {
    ensure_err!(probe_for_read(KERNEL_ADDR), Status::ERR_ACCESS_DENIED);
    ensure_err!(probe_for_write(KERNEL_ADDR), Status::ERR_ACCESS_DENIED);
    // A non-canonical address raises #GP, not a page fault.
    ensure_err!(probe_for_read(NON_CANONICAL), Status::ERR_INVALID_ARGS);
    Ok(())
}

fn probe_past_vmo_end(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(RW | ZX_VM_ALLOW_FAULTS, 0, &v, 0, 2 * PAGE));
    check!(probe_for_write(addr));
    ensure_err!(probe_for_read(addr + PAGE), Status::ERR_OUT_OF_RANGE);
    ensure_err!(probe_for_write(addr + PAGE), Status::ERR_OUT_OF_RANGE);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, 2 * PAGE) });
    Ok(())
}

fn probe_after_protect_and_unmap(ctx: &Ctx) -> TestResult {
    let v = vmo(2)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, 2 * PAGE));
    check!(probe_for_write(addr + PAGE));
    // SAFETY: nothing in this program refers to the second page.
    check!(unsafe { ctx.root.protect(ZX_VM_PERM_READ, addr + PAGE, PAGE) });
    check!(probe_for_write(addr));
    ensure_err!(probe_for_write(addr + PAGE), Status::ERR_ACCESS_DENIED);
    check!(probe_for_read(addr + PAGE));
    // SAFETY: as above.
    check!(unsafe { ctx.root.protect(0, addr + PAGE, PAGE) });
    ensure_err!(probe_for_read(addr + PAGE), Status::ERR_ACCESS_DENIED);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, 2 * PAGE) });
    ensure_err!(probe_for_read(addr), Status::ERR_NOT_FOUND);
    ensure_err!(probe_for_write(addr + PAGE), Status::ERR_NOT_FOUND);
    Ok(())
}

fn probe_write_keeps_value(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    // SAFETY: the page is mapped read-write and only this test uses it.
    unsafe { core::ptr::write_volatile((addr + 7) as *mut u8, 0xa5) };
    check!(probe_for_write(addr + 7));
    // SAFETY: as above.
    let after = unsafe { core::ptr::read_volatile((addr + 7) as *const u8) };
    ensure_eq!(after, 0xa5);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    Ok(())
}

fn probes_leak_nothing(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    // Warm up (heap growth is not a leak).
    let _ = probe_for_write(addr);
    let before = check!(zx::debug_kernel_stats());
    for _ in 0..10 {
        check!(probe_for_read(addr));
        ensure_err!(probe_for_write(addr), Status::ERR_ACCESS_DENIED);
        ensure_err!(probe_for_read(0), Status::ERR_NOT_FOUND);
    }
    let after = check!(zx::debug_kernel_stats());
    ensure_eq!(after[abi::kstats::HANDLES], before[abi::kstats::HANDLES]);
    ensure_eq!(after[abi::kstats::INVARIANT_FAILURES], 0);
    // Thread stacks are reaped after the switch away from a dead thread: allow the last one.
    ensure!(
        after[abi::kstats::KERNEL_STACKS] <= before[abi::kstats::KERNEL_STACKS] + 1,
        "kernel stacks {} -> {}",
        before[abi::kstats::KERNEL_STACKS],
        after[abi::kstats::KERNEL_STACKS]
    );
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    Ok(())
}

/// What a prober thread checks: (read-only page, read-write page, results: +1 per correct
/// outcome).
struct ProbeJob {
    ro: usize,
    rw: usize,
    good: AtomicU32,
}

/// Prober thread: 5 rounds of a denied write, an allowed read and an allowed write.
extern "C" fn prober(arg1: usize, _arg2: usize) -> ! {
    // SAFETY: arg1 is a `ProbeJob` the test keeps alive until every prober ended.
    let job = unsafe { &*(arg1 as *const ProbeJob) };
    for _ in 0..5 {
        if probe_for_write(job.ro) == Err(Status::ERR_ACCESS_DENIED)
            && probe_for_read(job.ro).is_ok()
            && probe_for_write(job.rw).is_ok()
        {
            job.good.fetch_add(1, Ordering::SeqCst);
        }
    }
    zx::Thread::exit()
}

fn concurrent_probes(ctx: &Ctx) -> TestResult {
    const THREADS: usize = 4;
    let v = vmo(2)?;
    let ro = check!(ctx.root.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    let rw = check!(ctx.root.map(RW, 0, &v, PAGE as u64, PAGE));
    let stacks = vmo(4 * THREADS)?;
    let sbase = check!(ctx.root.map(RW, 0, &stacks, 0, 4 * THREADS * PAGE));
    let job = ProbeJob {
        ro,
        rw,
        good: AtomicU32::new(0),
    };
    let mut threads = alloc::vec::Vec::new();
    for i in 0..THREADS {
        let t = check!(zx::Thread::create(&ctx.process, b"prober", 0));
        // SAFETY: the entry only reads `job` (alive until every thread ended) and probes, on
        // its own 16 KiB stack.
        check!(unsafe {
            t.start(
                prober as *const () as usize,
                sbase + (i + 1) * 4 * PAGE - 8,
                &job as *const ProbeJob as usize,
                0,
            )
        });
        threads.push(t);
    }
    for t in &threads {
        check!(t.handle().wait_one(ZX_THREAD_TERMINATED, i64::MAX));
    }
    ensure_eq!(job.good.load(Ordering::SeqCst), (5 * THREADS) as u32);
    // SAFETY: the threads are gone; nothing uses these mappings.
    unsafe {
        check!(ctx.root.unmap(sbase, 4 * THREADS * PAGE));
        check!(ctx.root.unmap(ro, PAGE));
        check!(ctx.root.unmap(rw, PAGE));
    }
    Ok(())
}
