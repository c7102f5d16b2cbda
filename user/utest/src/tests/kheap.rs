//! The kernel heap gives its memory back (issue 10, item 5): many children, each with thousands
//! of mappings, grow the kernel heap until memory runs low; once they are gone, a fresh VMO must
//! be able to commit (within 1%) as many pages as before, and `zx_debug_kernel_stats` shows the
//! heap's frames apart from the free ones. Two ways to get there: the issue's own (unstarted
//! children whose address spaces this process fills through their root VMAR handles), and
//! started `victim` children that fill their own address spaces (each within its own quota).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use abi::kstats;
use abi::ops::ZX_VMO_OP_COMMIT;
use abi::rights::ZX_RIGHT_SAME_RIGHTS;
use abi::signals::{ZX_PROCESS_TERMINATED, ZX_THREAD_TERMINATED};
use abi::vm_options::ZX_VM_PERM_READ;
use abi::Status;
use zx::process::{spawn, SpawnError};
use zx::{println, Handle, Process, Vmar, Vmo};

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, Failure, TestResult};

tests!(
    heap_growth_is_given_back,
    heap_growth_by_started_children_is_given_back,
);

/// Children in the reproduction (the figure).
const CHILDREN: usize = 69;
/// Mappings per child: the region quota (64 Ki per address space, the root VMAR included) less a
/// little (the children's region budgets and memory run out first).
const MAPPINGS_PER_CHILD: usize = 64 * 1024 - 2;

/// Pages a fresh VMO can commit now: a VMO larger than memory, committed in halving chunks
/// until even one page is NO_MEMORY; then dropped (its pages go back).
fn committable_pages() -> Result<u64, Failure> {
    let s = check!(zx::debug_kernel_stats());
    let pages = s[kstats::FREE_FRAMES] + s[kstats::HEAP_FRAMES] + 1024;
    let v = check!(Vmo::create(pages * PAGE as u64, 0));
    let mut offset = 0u64;
    let mut chunk = 1024u64;
    while offset < pages {
        let len = chunk.min(pages - offset);
        match v.op_range(ZX_VMO_OP_COMMIT, offset * PAGE as u64, len * PAGE as u64) {
            Ok(()) => offset += len,
            Err(Status::ERR_NO_MEMORY) if chunk > 1 => chunk /= 2,
            Err(Status::ERR_NO_MEMORY) => break,
            Err(e) => fail!("commit at page {offset}: {e:?}"),
        }
    }
    Ok(check!(v.info()).committed_bytes / PAGE as u64)
}

/// The reproduction: 69 unstarted children, a one-page VMO mapped up to ~64 Ki times
/// into each (until the quota or memory says NO_MEMORY), everything freed; the frames a fresh VMO
/// can commit come back to within 1% of the baseline.
fn heap_growth_is_given_back(ctx: &Ctx) -> TestResult {
    let before = committable_pages()?;
    let stats_before = check!(zx::debug_kernel_stats());
    ensure!(
        before > 4096,
        "only {before} pages committable at the start"
    );
    let v = vmo(1)?;
    let mut children: Vec<(Process, Vmar)> = Vec::new();
    let mut mappings = 0usize;
    let mut low_memory = false;
    while children.len() < CHILDREN && !low_memory {
        let (p, root) = match Process::create(&Handle::invalid(), b"heap-growth", 0) {
            Ok(c) => c,
            Err(Status::ERR_NO_MEMORY) => break,
            Err(e) => fail!("process_create #{}: {e:?}", children.len()),
        };
        let mut n = 0;
        while n < MAPPINGS_PER_CHILD {
            match root.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE) {
                Ok(_) => n += 1,
                Err(Status::ERR_NO_MEMORY) => {
                    low_memory = true;
                    break;
                }
                Err(e) => fail!("map #{n} in child #{}: {e:?}", children.len()),
            }
        }
        mappings += n;
        children.push((p, root));
    }
    let peak = check!(zx::debug_kernel_stats());
    let count = children.len();
    drop(children);
    drop(v);
    given_back(
        ctx,
        "unstarted",
        count,
        mappings,
        before,
        &stats_before,
        &peak,
    )
}

/// `victim` case `MAP_MANY` (user/victim).
const VICTIM_MAP_MANY: u64 = 51;
const VICTIM_MAP_MANY_DONE: u64 = 1 << 32;

/// The same growth from 69 started `victim` children, each mapping one page of its own VMO up to
/// 8190 times into its own address space (until NO_MEMORY), then waiting to be killed; the
/// children are killed and the heap must give the memory back.
fn heap_growth_by_started_children_is_given_back(ctx: &Ctx) -> TestResult {
    let before = committable_pages()?;
    let stats_before = check!(zx::debug_kernel_stats());
    ensure!(
        before > 4096,
        "only {before} pages committable at the start"
    );
    let mut children = Vec::new();
    let mut mappings = 0u64;
    while children.len() < CHILDREN {
        let mailbox = vmo(1)?;
        let mb = check!(ctx.root.map(RW, 0, &mailbox, 0, PAGE));
        let theirs = check!(mailbox.handle().duplicate(ZX_RIGHT_SAME_RIGHTS));
        let child = match spawn(&ctx.ramdisk, "victim", theirs, VICTIM_MAP_MANY) {
            Ok(c) => c,
            Err(SpawnError::Status(Status::ERR_NO_MEMORY)) => {
                // SAFETY: nothing refers to the mailbox mapping.
                check!(unsafe { ctx.root.unmap(mb, PAGE) });
                break;
            }
            Err(e) => fail!("spawn victim #{}: {e}", children.len()),
        };
        // SAFETY: the mailbox is mapped read-write and page-aligned until unmapped below; the
        // child writes the word atomically.
        let word = unsafe { &*(mb as *const AtomicU64) };
        let deadline = zx::clock_get_monotonic() + 60_000_000_000;
        let done = loop {
            let w = word.load(SeqCst);
            if w & VICTIM_MAP_MANY_DONE != 0 {
                break Some(w & !VICTIM_MAP_MANY_DONE);
            }
            // Killed by low memory (its own demand faults) or still mapping.
            let soon = zx::clock_get_monotonic() + 10_000_000;
            if child
                .process
                .handle()
                .wait_one(ZX_PROCESS_TERMINATED, soon)
                .is_ok()
            {
                break None;
            }
            ensure!(
                zx::clock_get_monotonic() < deadline,
                "victim #{} did not finish mapping within 60 s",
                children.len()
            );
        };
        // SAFETY: nothing refers to the mailbox mapping any more.
        check!(unsafe { ctx.root.unmap(mb, PAGE) });
        children.push(child);
        match done {
            Some(n) => {
                mappings += n;
                // Fewer than asked: memory (or its quota) ran out; the heap is as full as the
                // kernel lets it get.
                if n < 8000 {
                    break;
                }
            }
            None => break,
        }
    }
    let peak = check!(zx::debug_kernel_stats());
    let count = children.len();
    for c in &children {
        check!(c.process.kill());
    }
    for c in &children {
        check!(c.process.handle().wait_one(ZX_PROCESS_TERMINATED, i64::MAX));
    }
    drop(children);
    given_back(
        ctx,
        "started",
        count,
        mappings as usize,
        before,
        &stats_before,
        &peak,
    )
}

/// Checks, after the children are gone, that the heap grew a lot at `peak` (the reproduction
/// worked and `HEAP_FRAMES` shows it), that a fresh VMO commits within 1% of `before`, and that
/// the heap is back near its former size.
fn given_back(
    ctx: &Ctx,
    what: &str,
    count: usize,
    mappings: usize,
    before: u64,
    stats_before: &[u64; kstats::COUNT],
    peak: &[u64; kstats::COUNT],
) -> TestResult {
    let heap_growth = peak[kstats::HEAP_FRAMES].saturating_sub(stats_before[kstats::HEAP_FRAMES]);
    let mut after = committable_pages()?;
    // Dead children's kernel stacks are reaped by the idle thread a moment later.
    for _ in 0..20 {
        if after * 100 >= before * 99 {
            break;
        }
        let _ = ctx
            .thread
            .handle()
            .wait_one(ZX_THREAD_TERMINATED, zx::clock_get_monotonic() + 20_000_000);
        after = committable_pages()?;
    }
    let stats_after = check!(zx::debug_kernel_stats());
    println!(
        "kheap: {count} {what} children, {mappings} mappings; heap frames {} -> {} -> {}; committable pages {before} -> {after}",
        stats_before[kstats::HEAP_FRAMES],
        peak[kstats::HEAP_FRAMES],
        stats_after[kstats::HEAP_FRAMES],
    );
    // The reproduction must have grown the heap a lot, and the statistics must show it.
    ensure!(
        heap_growth * 4 > before,
        "the heap grew by only {heap_growth} frames (committable: {before} pages)"
    );
    ensure!(
        after * 100 >= before * 99,
        "a fresh VMO commits {after} pages after the children are gone, {before} before (heap frames {} -> {})",
        stats_before[kstats::HEAP_FRAMES],
        stats_after[kstats::HEAP_FRAMES]
    );
    // And the heap itself is back near its size (what it keeps shows as heap, not as free).
    ensure!(
        stats_after[kstats::HEAP_FRAMES] <= stats_before[kstats::HEAP_FRAMES] + before / 100,
        "the heap keeps {} frames, {} before",
        stats_after[kstats::HEAP_FRAMES],
        stats_before[kstats::HEAP_FRAMES]
    );
    Ok(())
}
