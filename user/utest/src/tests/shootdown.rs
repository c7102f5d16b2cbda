//! TLB shootdown: a thread of this process writes one page in a tight loop (on another CPU when
//! the machine has several: the main thread keeps its own CPU busy meanwhile) while the main
//! thread unmaps the page, protects it to read-only, decommits it or shrinks its VMO. Once the
//! call returned, no write may go through the old translation:
//!
//! - unmap / protect: the VMO's word stops changing at once, and the writer faults (NOT_FOUND,
//!   ACCESS_DENIED) at the page;
//! - decommit / shrink: the old frame goes back to the allocator; a VMO committed right after
//!   (the allocator hands recently freed frames out first) and filled with a pattern keeps the
//!   pattern (a stale translation would keep writing the counter into it); after a shrink the
//!   writer faults (OUT_OF_RANGE), after a decommit its writes reach the VMO again through a
//!   new frame (with a stale translation they would all land in the old frame and the page
//!   would stay decommitted).
//!
//! The writer is a few instructions of assembly that never touch a stack, under an exception
//! channel of this thread: its fault is expected and ends it (`ZX_EXCEPTION_STATE_THREAD_EXIT`).
//! On one CPU the tests pass without a shootdown (both threads share the CPU, whose flush is
//! local); the `cargo test` lines run them on 4 CPUs (`tests/tests/qemu/shootdown.rs`), where
//! each fails when the kernel skips the shootdown IPI (`no_shootdown=1`).

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use abi::exception::exception_state::ZX_EXCEPTION_STATE_THREAD_EXIT;
use abi::exception::excp::ZX_EXCP_FATAL_PAGE_FAULT;
use abi::ops::ZX_VMO_OP_DECOMMIT;
use abi::signals::{ZX_CHANNEL_READABLE, ZX_THREAD_TERMINATED};
use abi::vm_options::*;
use abi::vmo_options::ZX_VMO_RESIZABLE;
use abi::Status;
use zx::exception::read_exception;
use zx::{Channel, Thread, Vmo};

use super::util::{vmo, RW};
use super::PAGE;
use crate::harness::{Ctx, Failure, TestResult};

tests!(
    unmap_stops_writes_on_other_cpus,
    protect_read_only_stops_writes_on_other_cpus,
    decommit_frees_no_frame_still_written,
    shrink_frees_no_frame_still_written,
);

core::arch::global_asm!(
    ".pushsection .text.utest_shootdown_writer, \"ax\"",
    ".globl utest_shootdown_writer",
    // rdi = &Cell { addr @0, count @8, stop @16 }: writes 1, 2, 3... to [addr] and publishes
    // each value in `count` until `stop` is set, then exits.
    "utest_shootdown_writer:",
    "    mov rcx, qword ptr [rdi]",
    "    xor eax, eax",
    "2:  inc rax",
    "    mov qword ptr [rcx], rax",
    "    mov qword ptr [rdi + 8], rax",
    "    cmp qword ptr [rdi + 16], 0",
    "    je 2b",
    "    mov eax, {exit}",
    "    syscall",
    "    ud2",
    ".popsection",
    exit = const abi::syscall_numbers::ZX_SYS_THREAD_EXIT,
);

extern "C" {
    fn utest_shootdown_writer();
}

/// What the writer reads and writes; `repr(C)`: the assembly uses the offsets 0, 8, 16.
#[repr(C)]
struct Cell {
    addr: AtomicU64,
    count: AtomicU64,
    stop: AtomicU64,
}

/// The writer's stack pointer: a valid user address it never uses.
#[repr(C, align(16))]
struct DummyStack([u8; 64]);
static DUMMY_STACK: DummyStack = DummyStack([0; 64]);

/// A running writer thread with its exception channel.
struct Writer {
    thread: Thread,
    channel: Channel,
    cell: &'static Cell,
}

/// Starts the writer on `addr` and waits until it wrote 10 000 times while this thread kept
/// running (so on several CPUs it runs on another one, with the translation in its TLB).
fn start_writer(ctx: &Ctx, cell: &'static Cell, addr: usize) -> Result<Writer, Failure> {
    cell.addr.store(addr as u64, SeqCst);
    cell.count.store(0, SeqCst);
    cell.stop.store(0, SeqCst);
    let thread = check!(Thread::create(&ctx.process, b"writer", 0));
    let channel = check!(thread.create_exception_channel(0));
    let stack = core::ptr::addr_of!(DUMMY_STACK) as usize + 48;
    // SAFETY: the writer touches only `cell` (a static) and `addr` (a mapping of this test,
    // which no Rust reference covers); it never uses its stack.
    check!(unsafe {
        thread.start(
            utest_shootdown_writer as *const () as usize,
            stack,
            cell as *const Cell as usize,
            0,
        )
    });
    let deadline = zx::clock_get_monotonic() + 10_000_000_000;
    while cell.count.load(SeqCst) < 10_000 {
        ensure!(
            zx::clock_get_monotonic() < deadline,
            "the writer did not start"
        );
        core::hint::spin_loop();
    }
    Ok(Writer {
        thread,
        channel,
        cell,
    })
}

/// Spins (keeping this CPU) for `ms` milliseconds.
fn spin_ms(ms: i64) {
    let end = zx::clock_get_monotonic() + ms * 1_000_000;
    while zx::clock_get_monotonic() < end {
        core::hint::spin_loop();
    }
}

/// Ends the writer: waits up to 5 s for its page fault at `addr` with `status` (`None`: it must
/// not fault; it is stopped through its cell), then for its end.
fn finish(w: Writer, addr: usize, status: Option<Status>) -> TestResult {
    let deadline = zx::clock_get_monotonic() + 5_000_000_000;
    let faulted = match status {
        Some(_) => w
            .channel
            .handle()
            .wait_one(ZX_CHANNEL_READABLE, deadline)
            .is_ok(),
        None => false,
    };
    w.cell.stop.store(1, SeqCst);
    let mut result = Ok(());
    if faulted {
        let (info, exception) = check!(read_exception(&w.channel));
        let report = check!(w.thread.exception_report());
        check!(exception.set_state(ZX_EXCEPTION_STATE_THREAD_EXIT));
        drop(exception);
        if info.r#type != ZX_EXCP_FATAL_PAGE_FAULT
            || report.cr2 != addr as u64
            || Some(Status::from_raw(report.synth_code as i32)) != status
        {
            result = Err(super::util::failure(alloc::format!(
                "the writer's fault: type {:#x} at {:#x}, status {:?}; expected a page fault \
                 at {addr:#x} with {status:?}",
                info.r#type,
                report.cr2,
                Status::from_raw(report.synth_code as i32)
            )));
        }
    } else if status.is_some() {
        result = Err(super::util::failure(alloc::format!(
            "the writer did not fault at {addr:#x} within 5 s after the call returned \
             ({} writes): it still writes through a stale translation",
            w.cell.count.load(SeqCst)
        )));
    }
    check!(w.thread.handle().wait_one(
        ZX_THREAD_TERMINATED,
        zx::clock_get_monotonic() + 5_000_000_000
    ));
    result
}

fn word(v: &Vmo, offset: u64) -> Result<u64, Failure> {
    let mut b = [0u8; 8];
    check!(v.read(&mut b, offset));
    Ok(u64::from_ne_bytes(b))
}

/// The VMO's word at `offset` must not change after the call returned.
fn stays_put(v: &Vmo, offset: u64, what: &str) -> TestResult {
    let first = word(v, offset)?;
    spin_ms(20);
    let later = word(v, offset)?;
    ensure!(
        first == later,
        "{what}: the page was written after the call returned ({first} -> {later}): a stale \
         translation on another CPU"
    );
    Ok(())
}

static UNMAP: Cell = Cell::new();
static PROTECT: Cell = Cell::new();
static DECOMMIT: Cell = Cell::new();
static SHRINK: Cell = Cell::new();

impl Cell {
    const fn new() -> Cell {
        Cell {
            addr: AtomicU64::new(0),
            count: AtomicU64::new(0),
            stop: AtomicU64::new(0),
        }
    }
}

fn unmap_stops_writes_on_other_cpus(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    let w = start_writer(ctx, &UNMAP, addr)?;
    // SAFETY: only the writer uses the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    let r = stays_put(&v, 0, "unmap");
    finish(w, addr, Some(Status::ERR_NOT_FOUND))?;
    r
}

fn protect_read_only_stops_writes_on_other_cpus(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    let w = start_writer(ctx, &PROTECT, addr)?;
    // SAFETY: only the writer uses the mapping.
    check!(unsafe { ctx.root.protect(ZX_VM_PERM_READ, addr, PAGE) });
    let r = stays_put(&v, 0, "protect to read-only");
    finish(w, addr, Some(Status::ERR_ACCESS_DENIED))?;
    // SAFETY: the writer is gone.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    r
}

/// Pages of the pattern VMO that takes the freed frames.
const CATCH_PAGES: usize = 64;
const PATTERN: u64 = 0x5a5a_a5a5_c3c3_3c3c;

/// Commits a VMO of [`CATCH_PAGES`] pages at once (the frames just freed among them), fills it
/// with [`PATTERN`], waits, and checks that every word kept it.
fn catch_stale_writes(what: &str) -> TestResult {
    let v = vmo(CATCH_PAGES)?;
    let fill: alloc::vec::Vec<u8> = core::iter::repeat_n(PATTERN.to_ne_bytes(), PAGE / 8)
        .flatten()
        .collect();
    for p in 0..CATCH_PAGES {
        check!(v.write(&fill, (p * PAGE) as u64));
    }
    spin_ms(20);
    let mut got = alloc::vec![0u8; PAGE];
    for p in 0..CATCH_PAGES {
        check!(v.read(&mut got, (p * PAGE) as u64));
        let bad = got
            .chunks_exact(8)
            .position(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])) != PATTERN);
        ensure!(
            bad.is_none(),
            "{what}: a reallocated frame was written through a stale translation (page {p}, \
             word {bad:?})"
        );
    }
    Ok(())
}

fn decommit_frees_no_frame_still_written(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    let w = start_writer(ctx, &DECOMMIT, addr)?;
    check!(v.op_range(ZX_VMO_OP_DECOMMIT, 0, PAGE as u64));
    // The writer faults the page back in (a new frame); a stale translation would instead keep
    // writing the old frame, which the allocator hands out next.
    let r = catch_stale_writes("decommit");
    // And the writes reach the VMO again, through a new frame: a writer that still had the
    // old translation would leave the page decommitted (reading as zero).
    let deadline = zx::clock_get_monotonic() + 5_000_000_000;
    let resumed = loop {
        if word(&v, 0)? != 0 {
            break true;
        }
        if zx::clock_get_monotonic() > deadline {
            break false;
        }
        spin_ms(1);
    };
    finish(w, addr, None)?;
    r?;
    ensure!(
        resumed,
        "decommit: the writer's writes never reached the VMO again within 5 s: they go through \
         a stale translation to the freed frame"
    );
    // SAFETY: the writer is gone.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    Ok(())
}

fn shrink_frees_no_frame_still_written(ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(2 * PAGE as u64, ZX_VMO_RESIZABLE));
    let addr = check!(ctx.root.map(RW | ZX_VM_ALLOW_FAULTS, 0, &v, 0, 2 * PAGE));
    let page = addr + PAGE;
    let w = start_writer(ctx, &SHRINK, page)?;
    check!(v.set_size(PAGE as u64));
    let r = catch_stale_writes("shrink");
    finish(w, page, Some(Status::ERR_OUT_OF_RANGE))?;
    // SAFETY: the writer is gone.
    check!(unsafe { ctx.root.unmap(addr, 2 * PAGE) });
    r
}
