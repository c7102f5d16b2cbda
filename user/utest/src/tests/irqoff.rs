//! The interrupts-off bound: the kernel runs with interrupts off, so a syscall that works long
//! without a preemption point freezes every other thread. Each test here builds the largest
//! case the quotas allow for one heavy call, then runs the call while a watchdog thread of this
//! process loops on `zx_ticks_get` and records the longest gap between two of its iterations
//! (how long something else kept it off the CPU). The gap and the kernel's own figure
//! (`zx_debug_irqoff_stats`: the longest interrupts-off stretch of that syscall number) are
//! printed; the test fails when the gap reaches [`BOUND_NS`].
//!
//! The gap includes one whole time slice of the calling thread (10 ms at 100 Hz): the kernel
//! part is the rest. A host that stalls QEMU itself (TCG: guest time is host time) shows up in
//! both figures; so a call over the bound is measured again, and the test fails when all of
//! [`ATTEMPTS`] measurements are.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use abi::info::topic::{ZX_INFO_PROCESS_MAPS, ZX_INFO_VMAR_MAPS};
use abi::ops::{ZX_VMAR_OP_MAP_RANGE, ZX_VMO_OP_COMMIT, ZX_VMO_OP_DECOMMIT};
use abi::signals::ZX_THREAD_TERMINATED;
use abi::syscall_numbers as nr;
use abi::vm_options::*;
use abi::Status;
use alloc::vec::Vec;
use zx::raw::syscall6;
use zx::{Channel, Handle, Process, Thread, Vmar, Vmo};

use super::util::{failure, st, vmo, CAN_RW, CAN_RWS, RW};
use super::PAGE;
use crate::harness::{Ctx, Failure, TestResult};

tests!(
    process_and_vmar_maps_60k_mappings,
    destroy_vmar_of_60k_mappings,
    unmap_60k_mappings,
    commit_and_decommit_all_memory,
    map_range_and_unmap_all_memory,
    channel_write_40k_endpoints,
    channel_write_to_a_peer_nested_40k_deep,
    kernel_stats_many_address_spaces,
    teardown_of_a_full_address_space,
    exit_of_a_process_with_60k_mappings,
    death_of_the_last_holder_of_a_full_process,
    decommit_of_a_page_mapped_60k_times,
    write_to_a_page_read_in_60k_mappings,
    write_to_a_shared_page_mapped_60k_times,
    write_fault_on_a_page_read_in_60k_mappings,
    write_fault_on_a_shared_page_mapped_60k_times,
    commit_of_a_shared_page_mapped_60k_times,
    write_memory_to_a_shared_page_mapped_60k_times,
    snapshot_of_a_page_mapped_60k_times,
    snapshot_of_most_memory,
    attribution_of_a_snapshot_of_most_memory,
);

/// The longest gap the watchdog may see (ns).
pub const BOUND_NS: u64 = 20_000_000;
/// Measurements of one call when only the host is to blame for a gap over the bound.
const ATTEMPTS: usize = 4;
/// Committed pages of the VMO behind the maps tests (the reproduction: 20000).
const MAPS_VMO_PAGES: usize = 20_000;
/// Mappings of it (the region quota is 64 Ki per address space; the suite holds a few already).
const MAPPINGS: usize = 60_000;

/// What the watchdog shares with the test.
struct Watch {
    stop: AtomicU64,
    iterations: AtomicU64,
    longest: AtomicU64,
    done: AtomicU64,
}

static WATCH: Watch = Watch {
    stop: AtomicU64::new(0),
    iterations: AtomicU64::new(0),
    longest: AtomicU64::new(0),
    done: AtomicU64::new(0),
};

extern "C" fn watchdog(_: usize, _: usize) -> ! {
    let mut last = zx::ticks_get();
    loop {
        let now = zx::ticks_get();
        WATCH.longest.fetch_max((now - last).max(0) as u64, SeqCst);
        WATCH.iterations.fetch_add(1, SeqCst);
        last = now;
        if WATCH.stop.load(SeqCst) != 0 {
            // The thread may have been switched out anywhere in this iteration: one more
            // reading closes the gap that ends with the stop request.
            let now = zx::ticks_get();
            WATCH.longest.fetch_max((now - last).max(0) as u64, SeqCst);
            break;
        }
    }
    WATCH.done.store(1, SeqCst);
    Thread::exit()
}

const WATCH_STACK: usize = 4 * PAGE;

/// Runs `call` (labelled `name`, syscall number `number`) under the watchdog; returns the
/// watchdog's longest gap and the kernel's longest stretch for `number`, both in ns.
fn watched(
    ctx: &Ctx,
    number: u32,
    call: &mut dyn FnMut() -> TestResult,
) -> Result<(u64, u64), Failure> {
    let stack_vmo = committed(WATCH_STACK / PAGE)?;
    let stack = check!(ctx
        .root
        .map(RW | ZX_VM_MAP_RANGE, 0, &stack_vmo, 0, WATCH_STACK));
    WATCH.stop.store(0, SeqCst);
    WATCH.iterations.store(0, SeqCst);
    WATCH.done.store(0, SeqCst);
    let thread = check!(Thread::create(&ctx.process, b"watchdog", 0));
    // SAFETY: the watchdog touches only the static `WATCH` and its own stack, which stays mapped
    // until it has terminated (waited for below).
    check!(unsafe {
        thread.start(
            watchdog as *const () as usize,
            stack + WATCH_STACK - 8,
            0,
            0,
        )
    });
    while WATCH.iterations.load(SeqCst) < 1000 {
        core::hint::spin_loop();
    }
    check!(zx::debug_irqoff_stats(true));
    WATCH.longest.store(0, SeqCst);
    let result = call();
    let stretch = check!(zx::debug_irqoff_stats(false))[number as usize];
    WATCH.stop.store(1, SeqCst);
    let deadline = zx::clock_get_monotonic() + 60_000_000_000;
    check!(thread.handle().wait_one(ZX_THREAD_TERMINATED, deadline));
    let gap_ticks = WATCH.longest.load(SeqCst);
    // SAFETY: the watchdog is gone; nothing uses its stack.
    check!(unsafe { ctx.root.unmap(stack, WATCH_STACK) });
    result?;
    let rate = zx::ticks_per_second().max(1) as u128;
    let gap = (u128::from(gap_ticks) * 1_000_000_000 / rate) as u64;
    Ok((gap, stretch))
}

/// Measures `call` (see the module docs) and checks the bound; `call` must be repeatable.
fn bounded(ctx: &Ctx, name: &str, number: u32, call: &mut dyn FnMut() -> TestResult) -> TestResult {
    bounded_after(ctx, name, number, &mut || Ok(()), call)
}

/// [`bounded`], with `prepare` run before every attempt, outside the measurement (and before
/// the watchdog thread is created: an attempt after one that took all memory first gives it
/// back).
fn bounded_after(
    ctx: &Ctx,
    name: &str,
    number: u32,
    prepare: &mut dyn FnMut() -> TestResult,
    call: &mut dyn FnMut() -> TestResult,
) -> TestResult {
    let mut attempt = 0;
    loop {
        attempt += 1;
        prepare()?;
        let (gap, stretch) = watched(ctx, number, call)?;
        zx::println!(
            "irqoff: {name}: watchdog gap {}.{:03} ms, kernel stretch {}.{:03} ms",
            gap / 1_000_000,
            gap / 1000 % 1000,
            stretch / 1_000_000,
            stretch / 1000 % 1000
        );
        if stretch < BOUND_NS && gap < BOUND_NS {
            return Ok(());
        }
        ensure!(
            attempt < ATTEMPTS,
            "{name}: watchdog kept off the CPU for {gap} ns, interrupts off for {stretch} ns \
             (bound {BOUND_NS}, {ATTEMPTS} attempts)"
        );
    }
}

/// A VMO of `pages` pages, all committed.
fn committed(pages: usize) -> Result<Vmo, Failure> {
    let v = vmo(pages)?;
    check!(v.op_range(ZX_VMO_OP_COMMIT, 0, (pages * PAGE) as u64));
    Ok(v)
}

/// A sub-VMAR holding `count` mappings of the whole of `v` (`pages` pages), not populated.
fn many_mappings(ctx: &Ctx, v: &Vmo, pages: usize, count: usize) -> Result<Vmar, Failure> {
    let size = pages * PAGE;
    let (sub, _) = check!(ctx.root.allocate(CAN_RWS, 0, size * count));
    for i in 0..count {
        if let Err(e) = sub.map(RW | ZX_VM_SPECIFIC, i * size, v, 0, size) {
            // SAFETY: nothing refers to the mappings.
            let _ = unsafe { sub.destroy() };
            fail!("mapping {i}: {e:?}");
        }
    }
    Ok(sub)
}

/// `zx_object_get_info(handle, topic)` with a buffer of one record: the kernel does the whole
/// walk (for `avail`) whatever the buffer.
fn info_maps(handle: &Handle, topic: u32) -> TestResult {
    let mut record = [0u8; 256];
    let (mut actual, mut avail) = (0usize, 0usize);
    // SAFETY: `record` is valid for its length; `actual` and `avail` are valid usizes.
    let r = unsafe {
        syscall6(
            nr::ZX_SYS_OBJECT_GET_INFO,
            handle.raw() as usize,
            topic as usize,
            record.as_mut_ptr() as usize,
            record.len(),
            &mut actual as *mut usize as usize,
            &mut avail as *mut usize as usize,
        )
    };
    ensure_eq!(st(r), Status::OK);
    ensure!(avail > MAPPINGS, "avail {avail}");
    Ok(())
}

fn process_and_vmar_maps_60k_mappings(ctx: &Ctx) -> TestResult {
    let v = committed(MAPS_VMO_PAGES)?;
    let sub = many_mappings(ctx, &v, MAPS_VMO_PAGES, MAPPINGS)?;
    let r = bounded(ctx, "PROCESS_MAPS", nr::ZX_SYS_OBJECT_GET_INFO, &mut || {
        info_maps(ctx.process.handle(), ZX_INFO_PROCESS_MAPS)
    })
    .and_then(|()| {
        bounded(ctx, "VMAR_MAPS", nr::ZX_SYS_OBJECT_GET_INFO, &mut || {
            info_maps(sub.handle(), ZX_INFO_VMAR_MAPS)
        })
    });
    // SAFETY: nothing refers to the mappings.
    check!(unsafe { sub.destroy() });
    r
}

fn destroy_vmar_of_60k_mappings(ctx: &Ctx) -> TestResult {
    let v = committed(MAPS_VMO_PAGES)?;
    // Each destroy needs a fresh VMAR: built before every measurement, outside it.
    let mut next: Option<Vmar> = None;
    bounded(
        ctx,
        "destroy of 60 000 mappings",
        nr::ZX_SYS_VMAR_DESTROY,
        &mut || {
            let sub = match next.take() {
                Some(s) => s,
                None => many_mappings(ctx, &v, MAPS_VMO_PAGES, MAPPINGS)?,
            };
            // SAFETY: nothing refers to the mappings.
            check!(unsafe { sub.destroy() });
            Ok(())
        },
    )?;
    // And a populated, nested case: one page of each of 60 000 mappings faulted in, all in a
    // sub-VMAR of the one destroyed (a destroy must empty nested VMARs in steps too). Built
    // anew for each measurement.
    bounded(
        ctx,
        "destroy of 60 000 populated mappings in a sub-VMAR",
        nr::ZX_SYS_VMAR_DESTROY,
        &mut || {
            let (sub, _) = check!(ctx.root.allocate(CAN_RWS, 0, 2 * MAPPINGS * PAGE));
            let (inner, _) = check!(sub.allocate(CAN_RW, 0, MAPPINGS * PAGE));
            for _ in 0..MAPPINGS {
                check!(inner.map(RW | ZX_VM_MAP_RANGE, 0, &v, 0, PAGE));
            }
            // SAFETY: nothing refers to the mappings.
            check!(unsafe { sub.destroy() });
            ensure_eq!(
                inner.map(RW, 0, &v, 0, PAGE).map(|_| ()),
                Err(Status::ERR_BAD_STATE)
            );
            Ok(())
        },
    )
}

fn unmap_60k_mappings(ctx: &Ctx) -> TestResult {
    let v = committed(MAPS_VMO_PAGES)?;
    // An unmap over a sub-VMAR holding 60 000 mappings (which it destroys).
    bounded(
        ctx,
        "unmap over a sub-VMAR of 60 000 mappings",
        nr::ZX_SYS_VMAR_UNMAP,
        &mut || {
            let (outer, _) = check!(ctx.root.allocate(CAN_RWS, 0, 2 * MAPPINGS * PAGE));
            let (inner, _) = check!(outer.allocate(CAN_RW, 0, MAPPINGS * PAGE));
            for _ in 0..MAPPINGS {
                check!(inner.map(RW, 0, &v, 0, PAGE));
            }
            let info = check!(outer.info());
            // SAFETY: nothing refers to the mappings.
            check!(unsafe { outer.unmap(info.base, info.len) });
            ensure_eq!(
                inner.map(RW, 0, &v, 0, PAGE).map(|_| ()),
                Err(Status::ERR_BAD_STATE)
            );
            // SAFETY: the VMAR is empty.
            check!(unsafe { outer.destroy() });
            Ok(())
        },
    )?;
    let mut next: Option<Vmar> = None;
    bounded(
        ctx,
        "unmap of 60 000 mappings",
        nr::ZX_SYS_VMAR_UNMAP,
        &mut || {
            let sub = match next.take() {
                Some(s) => s,
                None => many_mappings(ctx, &v, MAPS_VMO_PAGES, MAPPINGS)?,
            };
            let info = check!(sub.info());
            // SAFETY: nothing refers to the mappings.
            check!(unsafe { sub.unmap(info.base, info.len) });
            // Every step went: only the VMAR itself is left in its listing.
            let mut record = [0u8; 256];
            let (mut actual, mut avail) = (0usize, 0usize);
            // SAFETY: `record` is valid for its length; `actual` and `avail` are valid usizes.
            let r = unsafe {
                syscall6(
                    nr::ZX_SYS_OBJECT_GET_INFO,
                    sub.handle().raw() as usize,
                    ZX_INFO_VMAR_MAPS as usize,
                    record.as_mut_ptr() as usize,
                    record.len(),
                    &mut actual as *mut usize as usize,
                    &mut avail as *mut usize as usize,
                )
            };
            ensure_eq!(st(r), Status::OK);
            ensure_eq!(avail, 1);
            // SAFETY: the VMAR is empty.
            check!(unsafe { sub.destroy() });
            Ok(())
        },
    )
}

/// Pages a fresh VMO can commit now (free frames, less a margin for the kernel's own needs).
fn free_pages() -> Result<usize, Failure> {
    let s = check!(zx::debug_kernel_stats());
    Ok((s[abi::kstats::FREE_FRAMES] as usize).saturating_sub(1024))
}

fn commit_and_decommit_all_memory(ctx: &Ctx) -> TestResult {
    let pages = free_pages()?;
    let v = vmo(pages)?;
    let size = (pages * PAGE) as u64;
    bounded_after(
        ctx,
        "commit of all memory",
        nr::ZX_SYS_VMO_OP_RANGE,
        // A retry starts from an empty VMO, so its watchdog thread finds memory.
        &mut || {
            check!(v.op_range(ZX_VMO_OP_DECOMMIT, 0, size));
            Ok(())
        },
        &mut || match v.op_range(ZX_VMO_OP_COMMIT, 0, size) {
            Ok(()) | Err(Status::ERR_NO_MEMORY) => Ok(()),
            Err(e) => Err(failure(alloc::format!("commit: {e:?}"))),
        },
    )?;
    // The commit stops at the kernel's reserve: every attempt commits all memory again, then
    // gives back a few pages for the watchdog thread (stack, kernel objects), so a retry
    // measures a decommit of all memory too.
    let margin = 512.min(pages) as u64 * PAGE as u64;
    bounded_after(
        ctx,
        "decommit of all memory",
        nr::ZX_SYS_VMO_OP_RANGE,
        &mut || {
            match v.op_range(ZX_VMO_OP_COMMIT, 0, size) {
                Ok(()) | Err(Status::ERR_NO_MEMORY) => {}
                Err(e) => return Err(failure(alloc::format!("commit: {e:?}"))),
            }
            check!(v.op_range(ZX_VMO_OP_DECOMMIT, 0, margin));
            Ok(())
        },
        &mut || {
            check!(v.op_range(ZX_VMO_OP_DECOMMIT, 0, size));
            Ok(())
        },
    )?;
    // The last handle of a VMO holding all memory: every frame goes back at the close.
    let mut owned = None;
    bounded(
        ctx,
        "close of a VMO holding all memory",
        nr::ZX_SYS_HANDLE_CLOSE,
        &mut || {
            let v = match owned.take() {
                Some(v) => v,
                None => {
                    let v = vmo(pages)?;
                    let _ = v.op_range(ZX_VMO_OP_COMMIT, 0, size);
                    v
                }
            };
            check!(v.into_handle().close());
            Ok(())
        },
    )
}

fn map_range_and_unmap_all_memory(ctx: &Ctx) -> TestResult {
    let pages = free_pages()? * 3 / 4;
    let v = committed(pages)?;
    let len = pages * PAGE;
    let mut addr = 0;
    bounded(
        ctx,
        "MAP_RANGE of all memory",
        nr::ZX_SYS_VMAR_MAP,
        &mut || {
            if addr != 0 {
                // SAFETY: nothing refers to the mapping.
                check!(unsafe { ctx.root.unmap(addr, len) });
            }
            addr = check!(ctx.root.map(RW | ZX_VM_MAP_RANGE, 0, &v, 0, len));
            Ok(())
        },
    )?;
    bounded(
        ctx,
        "unmap of all memory",
        nr::ZX_SYS_VMAR_UNMAP,
        &mut || {
            if addr == 0 {
                addr = check!(ctx.root.map(RW | ZX_VM_MAP_RANGE, 0, &v, 0, len));
            }
            // SAFETY: nothing refers to the mapping.
            check!(unsafe { ctx.root.unmap(addr, len) });
            addr = 0;
            Ok(())
        },
    )
}

/// `zx_vmo_create_child` of a VMO holding 3/4 of memory (its page list copied, every frame's
/// share counted), then the release of such a snapshot: the close of its last handle, and the
/// unmap that drops the last reference of a mapped one (a closed handle).
fn snapshot_of_most_memory(ctx: &Ctx) -> TestResult {
    let pages = free_pages()? * 3 / 4;
    let v = committed(pages)?;
    let size = (pages * PAGE) as u64;
    let snap = abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT;
    let mut children = Vec::new();
    bounded(
        ctx,
        "snapshot of 3/4 of memory",
        nr::ZX_SYS_VMO_CREATE_CHILD,
        &mut || {
            children.push(check!(v.create_child(snap, 0, size)));
            Ok(())
        },
    )?;
    drop(children);
    let mut owned = None;
    bounded(
        ctx,
        "close of a snapshot of 3/4 of memory",
        nr::ZX_SYS_HANDLE_CLOSE,
        &mut || {
            let c = match owned.take() {
                Some(c) => c,
                None => check!(v.create_child(snap, 0, size)),
            };
            check!(c.into_handle().close());
            Ok(())
        },
    )?;
    let mut addr = 0;
    bounded(
        ctx,
        "unmap of the last reference to a snapshot of 3/4 of memory",
        nr::ZX_SYS_VMAR_UNMAP,
        &mut || {
            if addr == 0 {
                let c = check!(v.create_child(snap, 0, size));
                addr = check!(ctx.root.map(RW, 0, &c, 0, pages * PAGE));
            }
            // SAFETY: nothing refers to the mapping.
            check!(unsafe { ctx.root.unmap(addr, pages * PAGE) });
            addr = 0;
            Ok(())
        },
    )
}

/// An endpoint with `fan * 4096` endpoints queued beneath it (the 40 970 for fan 10).
fn endpoint_tree(fan: usize) -> Result<Channel, Failure> {
    let max = abi::exception::channel::ZX_CHANNEL_MAX_MSG_HANDLES as usize;
    let (top, top_peer) = check!(Channel::create(0));
    let mut middles = Vec::new();
    for _ in 0..fan {
        let (mid, mid_peer) = check!(Channel::create(0));
        for _ in 0..64 {
            let mut handles = Vec::with_capacity(max);
            for _ in 0..max {
                let (leaf, _leaf_peer) = check!(Channel::create(0));
                handles.push(leaf.into_handle());
            }
            check!(mid_peer.write(b"", handles));
        }
        middles.push(mid.into_handle());
    }
    check!(top_peer.write(b"", middles));
    Ok(top)
}

fn channel_write_40k_endpoints(ctx: &Ctx) -> TestResult {
    {
        let (carrier, _carrier_peer) = check!(Channel::create(0));
        let mut top = Some(endpoint_tree(10)?);
        bounded(
            ctx,
            "channel write over 40970 endpoints",
            nr::ZX_SYS_CHANNEL_WRITE,
            &mut || {
                let t = match top.take() {
                    Some(t) => t,
                    None => endpoint_tree(10)?,
                };
                check!(carrier.write(b"", alloc::vec![t.into_handle()]));
                Ok(())
            },
        )?;
    }
    // Closing an endpoint drops everything queued beneath it.
    bounded(
        ctx,
        "close of 40970 queued endpoints",
        nr::ZX_SYS_HANDLE_CLOSE,
        &mut || {
            let (c, p) = check!(Channel::create(0));
            check!(c.write(b"", alloc::vec![endpoint_tree(10)?.into_handle()]));
            drop(c);
            check!(p.into_handle().close());
            Ok(())
        },
    )
}

/// Depth of the nesting in [`channel_write_to_a_peer_nested_40k_deep`].
const NESTING: usize = 40_000;

/// The cycle check of a write that carries an endpoint walks up from the writer's peer through
/// the endpoints holding it: here the peer is queued in an endpoint queued in another, 40 000
/// deep, the longest walk the handle quota leaves room for many times over.
fn channel_write_to_a_peer_nested_40k_deep(ctx: &Ctx) -> TestResult {
    let (writer, peer) = check!(Channel::create(0));
    let mut top = peer.into_handle();
    for _ in 0..NESTING {
        let (x, y) = check!(Channel::create(0));
        check!(x.write(b"", alloc::vec![top]));
        top = y.into_handle();
    }
    bounded(
        ctx,
        "channel write to a peer nested 40000 deep",
        nr::ZX_SYS_CHANNEL_WRITE,
        &mut || {
            let (e, _e_peer) = check!(Channel::create(0));
            check!(writer.write(b"", alloc::vec![e.into_handle()]));
            Ok(())
        },
    )?;
    // The whole chain goes with its outermost endpoint (in budgeted steps).
    check!(top.close());
    Ok(())
}

fn kernel_stats_many_address_spaces(ctx: &Ctx) -> TestResult {
    // Unstarted children: a few with many mappings of one widely shared page, one at the quota.
    let page = vmo(1)?;
    let mut children: Vec<(Process, Vmar)> = Vec::new();
    for i in 0..9 {
        let (p, root) = check!(Process::create(&Handle::invalid(), b"mapped", 0));
        let count = if i == 0 { MAPPINGS } else { 1000 };
        for _ in 0..count {
            check!(root.map(RW | ZX_VM_MAP_RANGE, 0, &page, 0, PAGE));
        }
        children.push((p, root));
    }
    bounded(
        ctx,
        "zx_debug_kernel_stats",
        nr::ZX_SYS_DEBUG_KERNEL_STATS,
        &mut || {
            let s = check!(zx::debug_kernel_stats());
            ensure_eq!(s[abi::kstats::INVARIANT_FAILURES], 0);
            Ok(())
        },
    )?;
    drop(children);
    Ok(())
}

fn teardown_of_a_full_address_space(ctx: &Ctx) -> TestResult {
    // An unstarted child holding 60 000 populated mappings and the only reference to a VMO with
    // half of memory committed and mapped: its teardown frees all of it.
    let page = committed(1)?;
    let mut child: Option<Process> = None;
    bounded(
        ctx,
        "teardown of a full address space",
        nr::ZX_SYS_HANDLE_CLOSE,
        &mut || {
            let p = match child.take() {
                Some(p) => p,
                None => {
                    let (p, root) = check!(Process::create(&Handle::invalid(), b"full", 0));
                    // In a sub-VMAR of their size: one-page mappings spread over the whole
                    // address space would need a page table (or three) each.
                    let (sub, _) = check!(root.allocate(CAN_RW, 0, MAPPINGS * PAGE));
                    for _ in 0..MAPPINGS {
                        check!(sub.map(RW | ZX_VM_MAP_RANGE, 0, &page, 0, PAGE));
                    }
                    drop(sub);
                    let pages = free_pages()? / 2;
                    let big = committed(pages)?;
                    check!(root.map(RW | ZX_VM_MAP_RANGE, 0, &big, 0, pages * PAGE));
                    drop(big);
                    drop(root);
                    p
                }
            };
            let before = check!(zx::debug_kernel_stats())[abi::kstats::PROCESSES];
            drop(p);
            let after = check!(zx::debug_kernel_stats())[abi::kstats::PROCESSES];
            ensure_eq!(after + 1, before);
            Ok(())
        },
    )
}

/// A started process whose last thread exits tears its address space down on the way out:
/// here 60 000 populated mappings (placed by the parent before the start) and half of memory
/// committed and mapped, the child `child` program exiting on its own.
fn exit_of_a_process_with_60k_mappings(ctx: &Ctx) -> TestResult {
    let page = committed(1)?;
    bounded(
        ctx,
        "exit of a process with 60 000 mappings",
        nr::ZX_SYS_PROCESS_EXIT,
        &mut || {
            let setup = |root: &Vmar| -> zx::ZxResult<u64> {
                let (sub, _) = root.allocate(CAN_RW, 0, MAPPINGS * PAGE)?;
                for _ in 0..MAPPINGS {
                    sub.map(RW | ZX_VM_MAP_RANGE, 0, &page, 0, PAGE)?;
                }
                // The child's exit code.
                Ok(7)
            };
            let (child, _root) =
                match zx::process::spawn_with(&ctx.ramdisk, "child", Handle::invalid(), setup) {
                    Ok(c) => c,
                    Err(e) => fail!("spawn: {e}"),
                };
            let code = check!(child.wait());
            ensure_eq!(code, 7);
            Ok(())
        },
    )
}

/// A process that dies holding the last handle to an unstarted process of 60 000 populated
/// mappings: its handle table is closed on the way out, in steps, and so is that process torn
/// down. The holder is `victim` reading address 0 (`NULL_DEREF`, with the handle as its arg1):
/// killed by its fault, it exits outside any syscall (the `TEARDOWN` stretch).
fn death_of_the_last_holder_of_a_full_process(ctx: &Ctx) -> TestResult {
    const NULL_DEREF: u64 = 7;
    let page = committed(1)?;
    bounded(
        ctx,
        "death of the last holder of a process with 60 000 mappings",
        abi::irqoff::TEARDOWN as u32,
        &mut || {
            let (full, root) = check!(Process::create(&Handle::invalid(), b"full", 0));
            let (sub, _) = check!(root.allocate(CAN_RW, 0, MAPPINGS * PAGE));
            for _ in 0..MAPPINGS {
                check!(sub.map(RW | ZX_VM_MAP_RANGE, 0, &page, 0, PAGE));
            }
            drop((sub, root));
            let before = check!(zx::debug_kernel_stats())[abi::kstats::PROCESSES];
            let (holder, _root) =
                match zx::process::spawn_with(&ctx.ramdisk, "victim", full.into_handle(), |_| {
                    Ok(NULL_DEREF)
                }) {
                    Ok(c) => c,
                    Err(e) => fail!("spawn: {e}"),
                };
            let code = check!(holder.wait());
            ensure_eq!(code, abi::task::ZX_TASK_RETCODE_EXCEPTION_KILL);
            drop(holder);
            let after = check!(zx::debug_kernel_stats())[abi::kstats::PROCESSES];
            // The holder (counted from its spawn on) and the full process are gone.
            ensure_eq!(after + 1, before);
            Ok(())
        },
    )
}

/// A sub-VMAR holding [`MAPPINGS`] read-write mappings of the one page of `page`, side by side
/// from its base (returned with it), not populated.
fn mapped_everywhere(ctx: &Ctx, page: &Vmo) -> Result<(Vmar, usize), Failure> {
    let (sub, base) = check!(ctx.root.allocate(CAN_RW, 0, MAPPINGS * PAGE));
    for _ in 0..MAPPINGS {
        check!(sub.map(RW, 0, page, 0, PAGE));
    }
    Ok((sub, base))
}

fn decommit_of_a_page_mapped_60k_times(ctx: &Ctx) -> TestResult {
    // One page, populated in 60 000 mappings: its decommit removes 60 000 page-table entries.
    let page = committed(1)?;
    let (sub, base) = mapped_everywhere(ctx, &page)?;
    let r = bounded(
        ctx,
        "decommit of a page in 60 000 mappings",
        nr::ZX_SYS_VMO_OP_RANGE,
        &mut || {
            // (Re)commit and populate every mapping: the decommit removes 60 000 entries.
            check!(page.op_range(ZX_VMO_OP_COMMIT, 0, PAGE as u64));
            // SAFETY: MAP_RANGE only adds page-table entries for what is mapped.
            check!(unsafe { sub.op_range(ZX_VMAR_OP_MAP_RANGE, base, MAPPINGS * PAGE) });
            check!(page.op_range(ZX_VMO_OP_DECOMMIT, 0, PAGE as u64));
            Ok(())
        },
    );
    // SAFETY: nothing refers to the mappings.
    check!(unsafe { sub.destroy() });
    r
}

/// One page of a fresh VMO read through 60 000 mappings (each shows the zero page), then written
/// with `zx_vmo_write`: the commit removes the 60 000 zero-page entries before the frame enters
/// the VMO.
fn write_to_a_page_read_in_60k_mappings(ctx: &Ctx) -> TestResult {
    let page = vmo(1)?;
    let (sub, base) = mapped_everywhere(ctx, &page)?;
    let r = bounded_after(
        ctx,
        "write to a page read in 60 000 mappings",
        nr::ZX_SYS_VMO_WRITE,
        &mut || {
            check!(page.op_range(ZX_VMO_OP_DECOMMIT, 0, PAGE as u64));
            for i in 0..MAPPINGS {
                // SAFETY: `base + i * PAGE` lies in a readable mapping of `page`.
                let b = unsafe { core::ptr::read_volatile((base + i * PAGE) as *const u8) };
                ensure_eq!(b, 0);
            }
            Ok(())
        },
        &mut || {
            check!(page.write(&[1], 0));
            for i in [0, MAPPINGS / 2, MAPPINGS - 1] {
                // SAFETY: `base + i * PAGE` lies in a readable mapping of `page`.
                let b = unsafe { core::ptr::read_volatile((base + i * PAGE) as *const u8) };
                ensure!(b == 1, "mapping {i} after the write: {b}");
            }
            Ok(())
        },
    );
    // SAFETY: nothing refers to the mappings.
    check!(unsafe { sub.destroy() });
    r
}

/// One committed page shared with a snapshot and populated in 60 000 mappings of its parent,
/// then written with `zx_vmo_write`: the copy-on-write break removes the 60 000 entries of the
/// shared frame.
fn write_to_a_shared_page_mapped_60k_times(ctx: &Ctx) -> TestResult {
    let page = committed(1)?;
    let (sub, base) = mapped_everywhere(ctx, &page)?;
    let mut child = None;
    let r = bounded_after(
        ctx,
        "write to a shared page mapped 60 000 times",
        nr::ZX_SYS_VMO_WRITE,
        &mut || {
            child = None;
            child = Some(check!(page.create_child(
                abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT,
                0,
                PAGE as u64
            )));
            // SAFETY: MAP_RANGE only adds page-table entries for what is mapped.
            check!(unsafe { sub.op_range(ZX_VMAR_OP_MAP_RANGE, base, MAPPINGS * PAGE) });
            Ok(())
        },
        &mut || {
            check!(page.write(&[2], 0));
            for i in [0, MAPPINGS / 2, MAPPINGS - 1] {
                // SAFETY: `base + i * PAGE` lies in a readable mapping of `page`.
                let b = unsafe { core::ptr::read_volatile((base + i * PAGE) as *const u8) };
                ensure!(b == 2, "mapping {i} after the write: {b}");
            }
            Ok(())
        },
    );
    drop(child);
    // SAFETY: nothing refers to the mappings.
    check!(unsafe { sub.destroy() });
    r
}

/// One page read through 60 000 mappings (each shows the zero page), then written through the
/// first by a store: the write fault commits the page over the 60 000 zero-page entries.
fn write_fault_on_a_page_read_in_60k_mappings(ctx: &Ctx) -> TestResult {
    let page = vmo(1)?;
    let (sub, base) = mapped_everywhere(ctx, &page)?;
    let r = bounded_after(
        ctx,
        "write fault on a page read in 60 000 mappings",
        abi::irqoff::PAGE_FAULT as u32,
        &mut || {
            check!(page.op_range(ZX_VMO_OP_DECOMMIT, 0, PAGE as u64));
            for i in 0..MAPPINGS {
                // SAFETY: `base + i * PAGE` lies in a readable mapping of `page`.
                let b = unsafe { core::ptr::read_volatile((base + i * PAGE) as *const u8) };
                ensure_eq!(b, 0);
            }
            Ok(())
        },
        &mut || {
            // SAFETY: `base + (MAPPINGS - 1) * PAGE` lies in a writable mapping of `page`.
            unsafe { core::ptr::write_volatile((base + (MAPPINGS - 1) * PAGE) as *mut u8, 3) };
            for i in [0, MAPPINGS / 2, MAPPINGS - 1] {
                // SAFETY: as above, readable.
                let b = unsafe { core::ptr::read_volatile((base + i * PAGE) as *const u8) };
                ensure!(b == 3, "mapping {i} after the write: {b}");
            }
            Ok(())
        },
    );
    // SAFETY: nothing refers to the mappings.
    check!(unsafe { sub.destroy() });
    r
}

/// A page shared with a snapshot and populated in 60 000 mappings of its parent (`prepare`),
/// then `call` on it; `check` reads the first, middle and last mapping afterwards.
fn shared_page_mapped_60k_times(
    ctx: &Ctx,
    name: &str,
    number: u32,
    call: &mut dyn FnMut(&Vmo, usize) -> TestResult,
) -> TestResult {
    let page = committed(1)?;
    let (sub, base) = mapped_everywhere(ctx, &page)?;
    let mut child = None;
    let r = bounded_after(
        ctx,
        name,
        number,
        &mut || {
            child = None;
            check!(page.write(&[7], 0));
            child = Some(check!(page.create_child(
                abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT,
                0,
                PAGE as u64
            )));
            // SAFETY: MAP_RANGE only adds page-table entries for what is mapped.
            check!(unsafe { sub.op_range(ZX_VMAR_OP_MAP_RANGE, base, MAPPINGS * PAGE) });
            Ok(())
        },
        &mut || call(&page, base),
    );
    let mut in_child = [0u8; 1];
    if let Some(c) = &child {
        check!(c.read(&mut in_child, 0));
    }
    drop(child);
    // SAFETY: nothing refers to the mappings.
    check!(unsafe { sub.destroy() });
    r?;
    ensure!(
        in_child[0] == 7,
        "the snapshot holds {} instead of 7",
        in_child[0]
    );
    Ok(())
}

/// A shared page mapped 60 000 times, written through the last mapping by a store: the write
/// fault's copy-on-write break removes the 60 000 entries of the shared frame.
fn write_fault_on_a_shared_page_mapped_60k_times(ctx: &Ctx) -> TestResult {
    shared_page_mapped_60k_times(
        ctx,
        "write fault on a shared page mapped 60 000 times",
        abi::irqoff::PAGE_FAULT as u32,
        &mut |_, base| {
            // SAFETY: `base + (MAPPINGS - 1) * PAGE` lies in a writable mapping of the page.
            unsafe { core::ptr::write_volatile((base + (MAPPINGS - 1) * PAGE) as *mut u8, 9) };
            for i in [0, MAPPINGS / 2, MAPPINGS - 1] {
                // SAFETY: as above, readable.
                let b = unsafe { core::ptr::read_volatile((base + i * PAGE) as *const u8) };
                ensure!(b == 9, "mapping {i} after the write: {b}");
            }
            Ok(())
        },
    )
}

/// A shared page mapped 60 000 times, then COMMIT: the copy-on-write break (a commit is for
/// writing) removes the 60 000 entries of the shared frame.
fn commit_of_a_shared_page_mapped_60k_times(ctx: &Ctx) -> TestResult {
    shared_page_mapped_60k_times(
        ctx,
        "commit of a shared page mapped 60 000 times",
        nr::ZX_SYS_VMO_OP_RANGE,
        &mut |page, base| {
            check!(page.op_range(ZX_VMO_OP_COMMIT, 0, PAGE as u64));
            // SAFETY: `base` lies in a readable mapping of the page.
            let b = unsafe { core::ptr::read_volatile(base as *const u8) };
            ensure_eq!(b, 7);
            Ok(())
        },
    )
}

/// One committed page populated (writable) in 60 000 mappings, then a snapshot of it: the
/// snapshot removes the 60 000 writable entries before the frame is shared. A store through a
/// mapping afterwards must not reach the snapshot.
fn snapshot_of_a_page_mapped_60k_times(ctx: &Ctx) -> TestResult {
    let page = committed(1)?;
    let (sub, base) = mapped_everywhere(ctx, &page)?;
    let child = core::cell::RefCell::new(None);
    let r = bounded_after(
        ctx,
        "snapshot of a page mapped 60 000 times",
        nr::ZX_SYS_VMO_CREATE_CHILD,
        &mut || {
            *child.borrow_mut() = None;
            check!(page.write(&[5], 0));
            // SAFETY: MAP_RANGE only adds page-table entries for what is mapped.
            check!(unsafe { sub.op_range(ZX_VMAR_OP_MAP_RANGE, base, MAPPINGS * PAGE) });
            Ok(())
        },
        &mut || {
            *child.borrow_mut() = Some(check!(page.create_child(
                abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT,
                0,
                PAGE as u64
            )));
            Ok(())
        },
    );
    let r = r.and_then(|()| {
        for i in [0, MAPPINGS / 2, MAPPINGS - 1] {
            // SAFETY: `base + i * PAGE` lies in a writable mapping of `page`.
            unsafe { core::ptr::write_volatile((base + i * PAGE) as *mut u8, 6) };
        }
        let mut in_child = [0u8; 1];
        if let Some(c) = &*child.borrow() {
            check!(c.read(&mut in_child, 0));
        }
        ensure!(
            in_child[0] == 5,
            "the snapshot holds {} instead of 5",
            in_child[0]
        );
        Ok(())
    });
    drop(child);
    // SAFETY: nothing refers to the mappings.
    check!(unsafe { sub.destroy() });
    r
}

/// A shared page mapped 60 000 times, written with `zx_process_write_memory` (into this
/// process, through the first mapping): the copy-on-write break removes the 60 000 entries of
/// the shared frame.
fn write_memory_to_a_shared_page_mapped_60k_times(ctx: &Ctx) -> TestResult {
    let h = ctx.process.handle().raw() as usize;
    shared_page_mapped_60k_times(
        ctx,
        "write_memory to a shared page mapped 60 000 times",
        nr::ZX_SYS_PROCESS_WRITE_MEMORY,
        &mut |_, base| {
            let byte = [4u8];
            let mut actual = 0usize;
            // SAFETY: `byte` and `actual` are valid for the call; `base` is mapped writable.
            let s = st(unsafe {
                syscall6(
                    nr::ZX_SYS_PROCESS_WRITE_MEMORY,
                    h,
                    base,
                    byte.as_ptr() as usize,
                    1,
                    &mut actual as *mut usize as usize,
                    0,
                )
            });
            ensure!(s == Status::OK, "write_memory: {s:?}");
            ensure_eq!(actual, 1);
            for i in [0, MAPPINGS / 2, MAPPINGS - 1] {
                // SAFETY: `base + i * PAGE` lies in a readable mapping of the page.
                let b = unsafe { core::ptr::read_volatile((base + i * PAGE) as *const u8) };
                ensure!(b == 4, "mapping {i} after the write: {b}");
            }
            Ok(())
        },
    )
}

/// ZX_INFO_VMO of a VMO holding 3/4 of memory that shares every page with a snapshot (each page
/// asks the frame allocator for its holders), then ZX_INFO_PROCESS_MAPS over a mapping of it:
/// the attribution walks take the VMO lock a bounded number of pages at a time.
fn attribution_of_a_snapshot_of_most_memory(ctx: &Ctx) -> TestResult {
    let pages = free_pages()? * 3 / 4;
    let v = committed(pages)?;
    let size = (pages * PAGE) as u64;
    let _child = check!(v.create_child(abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT, 0, size));
    bounded(
        ctx,
        "ZX_INFO_VMO of a snapshot parent of 3/4 of memory",
        nr::ZX_SYS_OBJECT_GET_INFO,
        &mut || {
            let info = check!(v.info());
            ensure_eq!(info.committed_scaled_bytes, size / 2);
            Ok(())
        },
    )?;
    let addr = check!(ctx.root.map(ZX_VM_PERM_READ, 0, &v, 0, pages * PAGE));
    let r = bounded(
        ctx,
        "PROCESS_MAPS over a mapping of it",
        nr::ZX_SYS_OBJECT_GET_INFO,
        &mut || {
            let maps = check!(zx::process::maps(ctx.process.handle()));
            let Some(m) = maps
                .iter()
                .find(|m| m.mapping().is_some() && m.base == addr)
            else {
                fail!("the mapping at {addr:#x} is not listed");
            };
            ensure_eq!(m.u.committed_scaled_bytes, size / 2);
            Ok(())
        },
    );
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, pages * PAGE) });
    r
}
