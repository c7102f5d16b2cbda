//! The kernel heap gives its memory back (issue 10, item 5): many unstarted children, each with
//! thousands of mappings, grow the kernel heap until memory runs low; once they are gone, a fresh
//! VMO must be able to commit (within 1%) as many pages as before, and `zx_debug_kernel_stats`
//! shows the heap's frames apart from the free ones.

use alloc::vec::Vec;

use abi::kstats;
use abi::ops::ZX_VMO_OP_COMMIT;
use abi::vm_options::ZX_VM_PERM_READ;
use abi::Status;
use zx::{println, Handle, Process, Vmar, Vmo};

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, Failure, TestResult};

tests!(heap_growth_is_given_back);

/// Children in the reproduction (the figure).
const CHILDREN: usize = 69;
/// Mappings per child: the region quota (8 Ki per address space, the root VMAR included) less a
/// little.
const MAPPINGS_PER_CHILD: usize = 8190;

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

/// The reproduction: 69 unstarted children, a one-page VMO mapped ~8190 times into
/// each (until the quota or memory says NO_MEMORY), everything freed; the frames a fresh VMO
/// can commit come back to within 1% of the baseline.
fn heap_growth_is_given_back(_ctx: &Ctx) -> TestResult {
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
    let heap_growth = peak[kstats::HEAP_FRAMES].saturating_sub(stats_before[kstats::HEAP_FRAMES]);
    let count = children.len();
    drop(children);
    drop(v);
    let after = committable_pages()?;
    let stats_after = check!(zx::debug_kernel_stats());
    println!(
        "kheap: {count} children, {mappings} mappings; heap frames {} -> {} -> {}; committable pages {before} -> {after}",
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
