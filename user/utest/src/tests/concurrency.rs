//! Concurrency tests: threads of this process (and of a child) race `zx_vmar_map` / `unmap` /
//! `protect` / `destroy` / `op_range` against threads that touch the same pages and against
//! `zx_process_read_memory` / `write_memory` on them, and threads that fault the same pages at
//! once. On one CPU (the suite's default) interleavings come from timer preemption (PIT at
//! 100 Hz) plus the seeded choices of every racer: operation order, ranges, VMOs, permissions and
//! spin delays; with `ZXVM_SMP=N` the threads also run on several CPUs at once, and
//! `same_pages_faulted_on_every_cpu` has a 4-CPU line of its own (`tests/tests/qemu/concurrency.rs`).
//!
//! Afterwards each test checks that no access goes through a stale translation (every page reads,
//! directly and through `zx_process_read_memory`, exactly what the mapping's VMO holds at that
//! offset; unmapped pages fault or read as [`UNMAPPED_READ`]), that the kernel's invariants hold
//! (`zx_debug_kernel_stats`: every address space's VMAR tree, back-references and page tables)
//! and that free frames, page-table pages, kernel stacks, handles and processes are back at their
//! baseline once the racers are gone.
//!
//! Seed: `conc_seed=N` on the utest command line (the host harness passes `CONC_SEED`; default
//! [`DEFAULT_SEED`]). Every failure message names it. The documented loop (docs/testing.md, "Concurrency
//! tests"): `for s in $(seq 1 20); do CONC_SEED=$s cargo test --test utest concurrency:: || break; done`.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use abi::info::maps_type::ZX_INFO_MAPS_TYPE_MAPPING;
use abi::kstats;
use abi::ops::{ZX_VMAR_OP_COMMIT, ZX_VMAR_OP_DECOMMIT, ZX_VMO_OP_DECOMMIT};
use abi::signals::{ZX_PROCESS_TERMINATED, ZX_THREAD_TERMINATED};
use abi::task::ZX_TASK_RETCODE_EXCEPTION_KILL;
use abi::vm_options::*;
use abi::Status;
use alloc::vec::Vec;
use zx::{Handle, Process, Thread, Vmar, Vmo};

use super::util::{vmo, RW};
use super::PAGE;
use crate::harness::{Ctx, Failure, TestResult};

tests!(
    unmap_read_memory,
    overwrite_protect_decommit_against_touches,
    map_unmap_protect_destroy_against_probes,
    map_unmap_destroy_against_faulting_child,
    same_pages_faulted_on_every_cpu,
);

/// What `zx_process_read_memory` returns for an address no mapping covers (Zircon's status).
pub const UNMAPPED_READ: Status = Status::ERR_NOT_FOUND;
/// Seed when the command line gives none.
pub const DEFAULT_SEED: u64 = 1;

static SEED: AtomicU64 = AtomicU64::new(DEFAULT_SEED);

/// Sets the seed (from `conc_seed=` on the command line).
pub fn set_seed(seed: u64) {
    SEED.store(seed, SeqCst);
}

/// The seed of this run, mixed with a per-test constant.
fn seed(test: u64) -> u64 {
    mix(SEED.load(SeqCst) ^ test.wrapping_mul(0x100_0000_01b3))
}

/// Adds the seed to a failure's message (every failure of this module names it).
fn with_seed(r: TestResult) -> TestResult {
    r.map_err(|mut f| {
        f.msg
            .push_str(&alloc::format!(" (CONC_SEED={})", SEED.load(SeqCst)));
        f
    })
}

/// splitmix64.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Spins for a seeded while (0 to ~`max` loop iterations), widening the race windows.
    fn spin(&mut self, max: u64) {
        for _ in 0..self.below(max) {
            core::hint::spin_loop();
        }
    }
}

/// The tag every pool VMO page starts with: `MAGIC | vmo index << 16 | page index`.
const MAGIC: u64 = 0x7a6b_0000_0000_0000;

fn tag(vmo: usize, page: usize) -> u64 {
    MAGIC | (vmo as u64) << 16 | page as u64
}

/// A plausible first word of a pool page: zero (decommitted, never written) or a tag.
fn plausible(v: u64, vmos: usize, pages: usize) -> bool {
    v == 0
        || (v & 0xffff_0000_0000_0000 == MAGIC
            && ((v >> 16) & 0xffff) < vmos as u64
            && (v & 0xffff) < pages as u64
            && (v >> 32) & 0xffff == 0)
}

/// `count` VMOs of `pages` pages, page `p` of VMO `i` starting with `tag(i, p)`; with their koids.
fn pool(count: usize, pages: usize) -> Result<Vec<(Vmo, u64)>, Failure> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let v = vmo(pages)?;
        for p in 0..pages {
            check!(v.write(&tag(i, p).to_ne_bytes(), (p * PAGE) as u64));
        }
        let koid = check!(v.handle().basic_info()).koid;
        out.push((v, koid));
    }
    Ok(out)
}

/// The first u64 at `offset` of the pool VMO with `koid`.
fn vmo_word(pool: &[(Vmo, u64)], koid: u64, offset: u64) -> Result<u64, Failure> {
    let Some((v, _)) = pool.iter().find(|(_, k)| *k == koid) else {
        fail!("mapping of an unknown VMO (koid {koid})");
    };
    let mut b = [0u8; 8];
    check!(v.read(&mut b, offset));
    Ok(u64::from_ne_bytes(b))
}

/// A page's mapping: `(mmu flags, vmo koid, vmo offset)`, or `None`.
type PageMapping = Option<(u32, u64, u64)>;

/// What each page of `[base, base + pages * PAGE)` maps, from `ZX_INFO_VMAR_MAPS` of `region`:
/// `(mmu flags, vmo koid, vmo offset)` or `None`.
fn page_map(region: &Vmar, base: usize, pages: usize) -> Result<Vec<PageMapping>, Failure> {
    let maps = check!(zx::process::maps(region.handle()));
    let mut out = alloc::vec![None; pages];
    for m in maps
        .iter()
        .filter(|m| m.r#type == ZX_INFO_MAPS_TYPE_MAPPING)
    {
        for off in (0..m.size).step_by(PAGE) {
            let a = m.base + off;
            if a >= base && a < base + pages * PAGE {
                let i = (a - base) / PAGE;
                ensure!(out[i].is_none(), "page {i} in two mappings");
                out[i] = Some((m.u.mmu_flags, m.u.vmo_koid, m.u.vmo_offset + off as u64));
            }
        }
    }
    Ok(out)
}

/// A raw process handle value as a `Process` that is not closed on drop.
fn borrowed_process(raw: u32) -> core::mem::ManuallyDrop<Process> {
    core::mem::ManuallyDrop::new(Process::from(Handle::from_raw(raw)))
}

/// A raw VMAR handle value as a `Vmar` that is not closed on drop.
fn borrowed_vmar(raw: u32) -> core::mem::ManuallyDrop<Vmar> {
    core::mem::ManuallyDrop::new(Vmar::from(Handle::from_raw(raw)))
}

/// Sleeps `ms` on our own thread's TERMINATED signal (it cannot assert while we wait).
fn sleep_ms(ctx: &Ctx, ms: i64) {
    let _ = ctx.thread.handle().wait_one(
        ZX_THREAD_TERMINATED,
        zx::clock_get_monotonic() + ms * 1_000_000,
    );
}

/// Commits the low part of this process's heap (it is demand-paged `.bss`), so the test's own
/// allocations after the baseline do not count as frames the kernel lost.
fn warm_heap() {
    let v = alloc::vec![1u8; 256 * 1024];
    core::hint::black_box(&v);
}

/// The kernel's counters once they stop moving (dead threads' stacks are reaped by the idle
/// thread a moment after they exit).
fn settled_stats(ctx: &Ctx) -> Result<[u64; kstats::COUNT], Failure> {
    warm_heap();
    let mut last = check!(zx::leak_check_stats());
    for _ in 0..25 {
        sleep_ms(ctx, 20);
        let now = check!(zx::leak_check_stats());
        if now[..kstats::ASPACES_CHECKED] == last[..kstats::ASPACES_CHECKED] {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Fails unless the counters are back at `before` and every address space passes its check.
fn back_at_baseline(ctx: &Ctx, before: &[u64; kstats::COUNT]) -> TestResult {
    back_at_baseline_but(ctx, before, 0)
}

/// [`back_at_baseline`], with `kept_frames` more frames legitimately in use than before (pages
/// committed since in VMOs the test still holds).
fn back_at_baseline_but(ctx: &Ctx, before: &[u64; kstats::COUNT], kept_frames: i64) -> TestResult {
    let mut before = *before;
    before[kstats::FREE_FRAMES] = (before[kstats::FREE_FRAMES] as i64 - kept_frames) as u64;
    let before = &before;
    const NAMES: [&str; 5] = [
        "free frames",
        "page-table pages",
        "kernel stacks",
        "handles",
        "processes",
    ];
    let mut after = settled_stats(ctx)?;
    // Stragglers (a killed child's teardown) may take a little longer.
    for _ in 0..50 {
        if after[..kstats::ASPACES_CHECKED] == before[..kstats::ASPACES_CHECKED] {
            break;
        }
        sleep_ms(ctx, 20);
        after = check!(zx::leak_check_stats());
    }
    for (i, name) in NAMES.iter().enumerate() {
        ensure!(
            before[i] == after[i],
            "{name}: {} before, {} after the racers are gone",
            before[i],
            after[i]
        );
    }
    ensure_eq!(after[kstats::INVARIANT_FAILURES], 0);
    Ok(())
}

/// Fails if some address space fails the kernel's invariant check now.
fn invariants_hold() -> TestResult {
    let s = check!(zx::debug_kernel_stats());
    ensure!(
        s[kstats::INVARIANT_FAILURES] == 0,
        "{} of {} address spaces fail their invariants",
        s[kstats::INVARIANT_FAILURES],
        s[kstats::ASPACES_CHECKED]
    );
    Ok(())
}

/// Stack size of a worker thread.
const WORKER_STACK: usize = 16 * PAGE;

/// A started thread of this process and its stack mapping.
struct Worker {
    thread: Thread,
    stack: usize,
}

/// Starts `entry(arg1, arg2)` on a fresh stack. `arg1` is the address of a `Sync` value the test
/// keeps alive until [`join`] returned.
fn start_worker(
    ctx: &Ctx,
    entry: extern "C" fn(usize, usize) -> !,
    arg1: usize,
    arg2: usize,
) -> Result<Worker, Failure> {
    let stack_vmo = vmo(WORKER_STACK / PAGE)?;
    let stack = check!(ctx.root.map(RW, 0, &stack_vmo, 0, WORKER_STACK));
    let thread = check!(Thread::create(&ctx.process, b"racer", 0));
    // SAFETY: every entry of this module reads only the `Sync` shared state at `arg1` (atomics
    // and plain values written before the start), which outlives the thread ([`join`] waits for
    // it), uses no heap, and runs on its own fresh stack.
    check!(unsafe { thread.start(entry as usize, stack + WORKER_STACK - 8, arg1, arg2) });
    Ok(Worker { thread, stack })
}

/// Waits for a worker to end (60 s at most) and unmaps its stack.
fn join(ctx: &Ctx, w: Worker) -> TestResult {
    let deadline = zx::clock_get_monotonic() + 60_000_000_000;
    check!(w.thread.handle().wait_one(ZX_THREAD_TERMINATED, deadline));
    // SAFETY: the thread is gone; nothing uses its stack.
    check!(unsafe { ctx.root.unmap(w.stack, WORKER_STACK) });
    Ok(())
}

/// Records the first unexpected outcome a worker saw (`what` code, detail), for the main thread.
struct Bad(AtomicU64, AtomicU64);

impl Bad {
    const fn new() -> Self {
        Bad(AtomicU64::new(0), AtomicU64::new(0))
    }

    fn set(&self, what: u64, detail: u64) {
        if self.0.compare_exchange(0, what, SeqCst, SeqCst).is_ok() {
            self.1.store(detail, SeqCst);
        }
    }

    fn check(&self, names: &[&str]) -> TestResult {
        let what = self.0.load(SeqCst);
        if what != 0 {
            let name = names.get(what as usize - 1).copied().unwrap_or("?");
            fail!("racer saw {name}: {:#x}", self.1.load(SeqCst));
        }
        Ok(())
    }
}

fn raw_status(s: Status) -> u64 {
    s.into_raw() as u32 as u64
}

// ---------------------------------------------------------------------------------------------
// unmap_read_memory: Zircon's ConcurrentUnmapReadMemory.

struct ReadLoop {
    running: AtomicU64,
    started: AtomicU64,
    process: u32,
    addr: usize,
    mapped_reads: AtomicU64,
    unmapped_reads: AtomicU64,
    bad: Bad,
}

const READ_LOOP_PATTERN: u64 = 0x1234_5678_9abc_def0;

extern "C" fn read_loop(arg: usize, _: usize) -> ! {
    // SAFETY: see `start_worker`.
    let s = unsafe { &*(arg as *const ReadLoop) };
    let p = borrowed_process(s.process);
    s.started.store(1, SeqCst);
    let mut b = [0u8; 8];
    while s.running.load(SeqCst) != 0 {
        match p.read_memory(s.addr, &mut b) {
            Ok(8) if u64::from_ne_bytes(b) == READ_LOOP_PATTERN => {
                s.mapped_reads.fetch_add(1, SeqCst);
            }
            Ok(n) => s
                .bad
                .set(1, (n as u64) << 32 | u64::from_ne_bytes(b) & 0xffff_ffff),
            Err(e) if e == UNMAPPED_READ => {
                s.unmapped_reads.fetch_add(1, SeqCst);
            }
            Err(e) => s.bad.set(2, raw_status(e)),
        }
    }
    Thread::exit()
}

/// A thread reads one address with `zx_process_read_memory` in a loop while this one maps a
/// fresh VMO there and unmaps it 1000 times (the VMO's only handle is closed while mapped, so the
/// unmap drops its last reference): every read returns the VMO's bytes or [`UNMAPPED_READ`],
/// never freed memory, and nothing leaks.
fn unmap_read_memory(ctx: &Ctx) -> TestResult {
    with_seed(unmap_read_memory_inner(ctx))
}

fn unmap_read_memory_inner(ctx: &Ctx) -> TestResult {
    let mut rng = Rng(seed(1));
    let before = settled_stats(ctx)?;
    let (region, addr) =
        check!(ctx
            .root
            .allocate(ZX_VM_CAN_MAP_SPECIFIC | ZX_VM_CAN_MAP_READ, 0, 4 * PAGE));
    let shared = ReadLoop {
        running: AtomicU64::new(1),
        started: AtomicU64::new(0),
        process: ctx.process.handle().raw(),
        addr: addr + PAGE,
        mapped_reads: AtomicU64::new(0),
        unmapped_reads: AtomicU64::new(0),
        bad: Bad::new(),
    };
    let w = start_worker(ctx, read_loop, &shared as *const ReadLoop as usize, 0)?;
    while shared.started.load(SeqCst) == 0 {
        sleep_ms(ctx, 1);
    }
    for i in 0..1000 {
        let v = vmo(1)?;
        check!(v.write(&READ_LOOP_PATTERN.to_ne_bytes(), 0));
        let at = check!(region.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, PAGE, &v, 0, PAGE));
        ensure_eq!(at, addr + PAGE);
        drop(v);
        rng.spin(4000);
        // SAFETY: nothing but the reader (through the kernel) uses the page.
        check!(unsafe { region.unmap(at, PAGE) });
        if i % 100 == 99 {
            // Give the reader whole time slices on both sides of the state.
            sleep_ms(ctx, rng.below(3) as i64);
        }
    }
    shared.running.store(0, SeqCst);
    join(ctx, w)?;
    shared
        .bad
        .check(&["a short or wrong read", "an unexpected status"])?;
    ensure!(
        shared.mapped_reads.load(SeqCst) + shared.unmapped_reads.load(SeqCst) > 0,
        "the reader never ran"
    );
    let mut b = [0u8; 8];
    ensure_err!(ctx.process.read_memory(addr + PAGE, &mut b), UNMAPPED_READ);
    // SAFETY: the region holds nothing.
    check!(unsafe { region.destroy() });
    drop(region);
    invariants_hold()?;
    back_at_baseline(ctx, &before)
}

// ---------------------------------------------------------------------------------------------
// overwrite_protect_decommit_against_touches: same process, the TLB is shared by all threads.

/// Pages of the region of the same-process test.
const OWN_PAGES: usize = 16;
/// VMOs in its pool (each `OWN_PAGES` pages).
const OWN_VMOS: usize = 4;

struct OwnRace {
    running: AtomicU64,
    region: u32,
    base: usize,
    process: u32,
    vmos: [u32; OWN_VMOS],
    ops: u64,
    touches: AtomicU64,
    bad: Bad,
}

const OWN_BAD: [&str; 6] = [
    "map failed",
    "protect failed",
    "op_range failed",
    "an implausible value through a touch",
    "an implausible value through read_memory",
    "read_memory failed",
];

/// Racer: SPECIFIC_OVERWRITE maps of pool VMOs, protects between R and RW, decommits and commits
/// (VMAR and VMO), with seeded spins. The region stays fully mapped and readable, so touching
/// threads never fault, but every page's frame and protection keep changing under them.
extern "C" fn own_racer(arg: usize, seed: usize) -> ! {
    // SAFETY: see `start_worker`.
    let s = unsafe { &*(arg as *const OwnRace) };
    let region = borrowed_vmar(s.region);
    let mut rng = Rng(seed as u64);
    for _ in 0..s.ops {
        let first = rng.below(OWN_PAGES as u64) as usize;
        let pages = 1 + rng.below((OWN_PAGES - first) as u64) as usize;
        let (at, len) = (s.base + first * PAGE, pages * PAGE);
        let perms = if rng.below(2) == 0 {
            ZX_VM_PERM_READ
        } else {
            RW
        };
        match rng.below(8) {
            0..=2 => {
                let v = s.vmos[rng.below(OWN_VMOS as u64) as usize];
                let off = rng.below((OWN_PAGES - pages + 1) as u64) * PAGE as u64;
                let vmo = core::mem::ManuallyDrop::new(Vmo::from(Handle::from_raw(v)));
                let o = ZX_VM_SPECIFIC_OVERWRITE | perms;
                // SAFETY: no Rust reference covers the region; touching threads only read it
                // with volatile reads.
                match unsafe { region.map_unchecked(o, first * PAGE, &vmo, off, len) } {
                    Ok(a) if a == at => {}
                    Ok(a) => s.bad.set(1, a as u64),
                    Err(e) => s.bad.set(1, raw_status(e)),
                }
            }
            3 | 4 => {
                // SAFETY: the region is mapped and readable throughout; touching threads only
                // read.
                if let Err(e) = unsafe { region.protect(perms, at, len) } {
                    s.bad.set(2, raw_status(e));
                }
            }
            5 => {
                // SAFETY: decommitting only zeroes pages; the touchers accept zero.
                let r = unsafe { region.op_range(commit_or_decommit(&mut rng), at, len) };
                // Decommit needs write permission on every mapping in the range.
                if let Err(e) = r {
                    if e != Status::ERR_ACCESS_DENIED {
                        s.bad.set(3, raw_status(e));
                    }
                }
            }
            6 => {
                let v = s.vmos[rng.below(OWN_VMOS as u64) as usize];
                let vmo = core::mem::ManuallyDrop::new(Vmo::from(Handle::from_raw(v)));
                if let Err(e) = vmo.op_range(ZX_VMO_OP_DECOMMIT, (first * PAGE) as u64, len as u64)
                {
                    s.bad.set(3, raw_status(e));
                }
            }
            _ => {
                // Restore a page's tag (writes go to the VMO, never through a mapping).
                let i = rng.below(OWN_VMOS as u64) as usize;
                let vmo = core::mem::ManuallyDrop::new(Vmo::from(Handle::from_raw(s.vmos[i])));
                let _ = vmo.write(&tag(i, first).to_ne_bytes(), (first * PAGE) as u64);
            }
        }
        rng.spin(3000);
    }
    Thread::exit()
}

/// `ZX_VMAR_OP_COMMIT` or `ZX_VMAR_OP_DECOMMIT`, at random.
fn commit_or_decommit(rng: &mut Rng) -> u32 {
    if rng.below(2) == 0 {
        ZX_VMAR_OP_COMMIT
    } else {
        ZX_VMAR_OP_DECOMMIT
    }
}

/// Toucher: reads random pages directly (through this thread's TLB) and through
/// `zx_process_read_memory`; every value must be zero or a pool tag.
extern "C" fn own_toucher(arg: usize, seed: usize) -> ! {
    // SAFETY: see `start_worker`.
    let s = unsafe { &*(arg as *const OwnRace) };
    own_touch_loop(s, seed as u64);
    Thread::exit()
}

fn own_touch_loop(s: &OwnRace, seed: u64) {
    let p = borrowed_process(s.process);
    let mut rng = Rng(seed);
    let mut b = [0u8; 8];
    while s.running.load(SeqCst) != 0 {
        let addr = s.base + PAGE * rng.below(OWN_PAGES as u64) as usize;
        // SAFETY: the region is mapped readable for the whole race (racers only overwrite,
        // protect to R or RW, decommit and commit).
        let v = unsafe { (addr as *const u64).read_volatile() };
        if !plausible(v, OWN_VMOS, OWN_PAGES) {
            s.bad.set(4, v);
        }
        match p.read_memory(addr, &mut b) {
            Ok(8) if plausible(u64::from_ne_bytes(b), OWN_VMOS, OWN_PAGES) => {}
            Ok(_) => s.bad.set(5, u64::from_ne_bytes(b)),
            Err(e) => s.bad.set(6, raw_status(e)),
        }
        s.touches.fetch_add(1, SeqCst);
        rng.spin(500);
    }
}

/// Two racers keep replacing (SPECIFIC_OVERWRITE), re-protecting, decommitting and committing
/// the pages of one region while two threads of the same process read them directly and through
/// `zx_process_read_memory`. Threads of one process share the address space and its TLB entries
/// (no CR3 switch between them), so a missing invalidation shows as a read of a replaced frame.
/// Afterwards every page reads, directly and through the kernel, what its mapping's VMO holds.
fn overwrite_protect_decommit_against_touches(ctx: &Ctx) -> TestResult {
    with_seed(own_inner(ctx))
}

fn own_inner(ctx: &Ctx) -> TestResult {
    let mut rng = Rng(seed(2));
    let before = settled_stats(ctx)?;
    let vmos = pool(OWN_VMOS, OWN_PAGES)?;
    let (region, base) = check!(ctx.root.allocate(
        ZX_VM_CAN_MAP_SPECIFIC | ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE,
        0,
        OWN_PAGES * PAGE
    ));
    check!(region.map(ZX_VM_SPECIFIC | RW, 0, &vmos[0].0, 0, OWN_PAGES * PAGE));
    let mut handles = [0u32; OWN_VMOS];
    for (h, (v, _)) in handles.iter_mut().zip(vmos.iter()) {
        *h = v.raw_handle();
    }
    let shared = OwnRace {
        running: AtomicU64::new(1),
        region: region.raw_handle(),
        base,
        process: ctx.process.handle().raw(),
        vmos: handles,
        ops: 300,
        touches: AtomicU64::new(0),
        bad: Bad::new(),
    };
    let arg = &shared as *const OwnRace as usize;
    let racers = [
        start_worker(ctx, own_racer, arg, rng.next() as usize)?,
        start_worker(ctx, own_racer, arg, rng.next() as usize)?,
    ];
    let toucher = start_worker(ctx, own_toucher, arg, rng.next() as usize)?;
    // This thread touches too until the racers are done.
    let p = borrowed_process(shared.process);
    let mut b = [0u8; 8];
    loop {
        let done = racers
            .iter()
            .all(|w| w.thread.handle().wait_one(ZX_THREAD_TERMINATED, 0).is_ok());
        if done {
            break;
        }
        let addr = base + PAGE * rng.below(OWN_PAGES as u64) as usize;
        let v = super::util::peek(addr);
        ensure!(
            plausible(v, OWN_VMOS, OWN_PAGES),
            "touch of {addr:#x} read {v:#x}"
        );
        let _ = p.read_memory(addr, &mut b);
        rng.spin(2000);
    }
    shared.running.store(0, SeqCst);
    for w in racers {
        join(ctx, w)?;
    }
    join(ctx, toucher)?;
    shared.bad.check(&OWN_BAD)?;
    ensure!(shared.touches.load(SeqCst) > 0, "the toucher never ran");
    // Every page reads what its mapping's VMO holds at that offset, directly and via the kernel.
    let map = page_map(&region, base, OWN_PAGES)?;
    for (i, m) in map.iter().enumerate() {
        let Some((flags, koid, offset)) = *m else {
            fail!("page {i} was unmapped, but no racer unmaps");
        };
        ensure!(
            flags & ZX_VM_PERM_READ != 0,
            "page {i} not readable: {flags:#x}"
        );
        let want = vmo_word(&vmos, koid, offset)?;
        let addr = base + i * PAGE;
        let direct = super::util::peek(addr);
        ensure!(
            direct == want,
            "page {i}: direct read {direct:#x}, its VMO holds {want:#x} (stale translation)"
        );
        ensure_eq!(check!(ctx.process.read_memory(addr, &mut b)), 8);
        ensure_eq!(u64::from_ne_bytes(b), want);
    }
    invariants_hold()?;
    // SAFETY: nothing uses the region any more.
    check!(unsafe { region.destroy() });
    drop(region);
    drop(vmos);
    back_at_baseline(ctx, &before)
}

// ---------------------------------------------------------------------------------------------
// map_unmap_protect_destroy_against_probes: same process, with exception-catching probes.

/// Pages of the region of the probe test.
const PROBE_PAGES: usize = 16;
/// VMOs in its pool.
const PROBE_VMOS: usize = 2;

struct ProbeRace {
    running: AtomicU64,
    region: u32,
    base: usize,
    vmos: [u32; PROBE_VMOS],
    ops: u64,
    probes: AtomicU64,
    bad: Bad,
}

const PROBE_BAD: [&str; 4] = [
    "an unexpected map/allocate status",
    "an unexpected unmap/protect/op_range/destroy status",
    "an unexpected probe_for_read result",
    "an unexpected probe_for_write result",
];

/// Racer on this process's region: maps (SPECIFIC and SPECIFIC_OVERWRITE, R or RW), unmaps,
/// protects, commits and decommits, and allocates sub-VMARs with a mapping inside that it
/// destroys after a seeded spin.
extern "C" fn probe_racer(arg: usize, seed: usize) -> ! {
    // SAFETY: see `start_worker`.
    let s = unsafe { &*(arg as *const ProbeRace) };
    let region = borrowed_vmar(s.region);
    let mut rng = Rng(seed as u64);
    for _ in 0..s.ops {
        let first = rng.below(PROBE_PAGES as u64) as usize;
        let pages = 1 + rng.below(6.min(PROBE_PAGES - first) as u64) as usize;
        let (at, len) = (s.base + first * PAGE, pages * PAGE);
        let perms = if rng.below(2) == 0 {
            ZX_VM_PERM_READ
        } else {
            RW
        };
        let v = s.vmos[rng.below(PROBE_VMOS as u64) as usize];
        let vmo = core::mem::ManuallyDrop::new(Vmo::from(Handle::from_raw(v)));
        let off = rng.below((PROBE_PAGES - pages + 1) as u64) * PAGE as u64;
        match rng.below(9) {
            0..=2 => {
                let o = if rng.below(2) == 0 {
                    ZX_VM_SPECIFIC_OVERWRITE
                } else {
                    ZX_VM_SPECIFIC
                };
                // SAFETY: no Rust reference covers the region; only probes and the kernel
                // touch it.
                match unsafe { region.map_unchecked(o | perms, first * PAGE, &vmo, off, len) } {
                    Ok(a) if a == at => {}
                    Ok(a) => s.bad.set(1, a as u64),
                    Err(Status::ERR_ALREADY_EXISTS) if o == ZX_VM_SPECIFIC => {}
                    // Overwriting across a sub-VMAR.
                    Err(Status::ERR_INVALID_ARGS) if o == ZX_VM_SPECIFIC_OVERWRITE => {}
                    Err(e) => s.bad.set(1, raw_status(e)),
                }
            }
            3 | 4 => {
                // SAFETY: as above.
                match unsafe { region.unmap(at, len) } {
                    Ok(()) | Err(Status::ERR_INVALID_ARGS) => {}
                    Err(e) => s.bad.set(2, raw_status(e)),
                }
            }
            5 => {
                // SAFETY: as above. Protect fails over a gap (NOT_FOUND), a sub-VMAR partly in
                // the range (INVALID_ARGS) or a sub-VMAR's read-only mapping (ACCESS_DENIED).
                match unsafe { region.protect(perms, at, len) } {
                    Ok(())
                    | Err(Status::ERR_NOT_FOUND)
                    | Err(Status::ERR_INVALID_ARGS)
                    | Err(Status::ERR_ACCESS_DENIED) => {}
                    Err(e) => s.bad.set(2, raw_status(e)),
                }
            }
            6 => {
                // SAFETY: as above; decommitted pages read as zero.
                match unsafe { region.op_range(commit_or_decommit(&mut rng), at, len) } {
                    Ok(())
                    | Err(Status::ERR_BAD_STATE)
                    | Err(Status::ERR_ACCESS_DENIED)
                    | Err(Status::ERR_INVALID_ARGS)
                    | Err(Status::ERR_NOT_FOUND) => {}
                    Err(e) => s.bad.set(2, raw_status(e)),
                }
            }
            _ => {
                let o = ZX_VM_SPECIFIC | ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_SPECIFIC;
                match region.allocate(o, first * PAGE, len) {
                    Ok((sub, _)) => {
                        let _ = sub.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, 0, &vmo, off, len);
                        rng.spin(3000);
                        // SAFETY: as above. The other racer's unmap may have destroyed it.
                        match unsafe { sub.destroy() } {
                            Ok(()) | Err(Status::ERR_BAD_STATE) => {}
                            Err(e) => s.bad.set(2, raw_status(e)),
                        }
                    }
                    Err(Status::ERR_ALREADY_EXISTS)
                    | Err(Status::ERR_NO_RESOURCES)
                    | Err(Status::ERR_NO_MEMORY) => {}
                    Err(e) => s.bad.set(1, raw_status(e)),
                }
            }
        }
        rng.spin(3000);
    }
    Thread::exit()
}

/// Prober: `probe_for_read` / `probe_for_write` (a helper thread of this process touches the
/// page under an exception channel) on random pages while the racers change them. A read finds
/// the page or NOT_FOUND; a write finds it, NOT_FOUND or ACCESS_DENIED.
extern "C" fn prober(arg: usize, seed: usize) -> ! {
    // SAFETY: see `start_worker`.
    let s = unsafe { &*(arg as *const ProbeRace) };
    let mut rng = Rng(seed as u64);
    while s.running.load(SeqCst) != 0 {
        let addr =
            s.base + PAGE * rng.below(PROBE_PAGES as u64) as usize + 8 * rng.below(8) as usize;
        if rng.below(2) == 0 {
            match zx::probe::probe_for_read(addr) {
                Ok(()) | Err(Status::ERR_NOT_FOUND) => {}
                Err(e) => s.bad.set(3, raw_status(e)),
            }
        } else {
            match zx::probe::probe_for_write(addr) {
                Ok(()) | Err(Status::ERR_NOT_FOUND) | Err(Status::ERR_ACCESS_DENIED) => {}
                Err(e) => s.bad.set(4, raw_status(e)),
            }
        }
        s.probes.fetch_add(1, SeqCst);
        rng.spin(500);
    }
    Thread::exit()
}

/// Two racers map, unmap, protect, commit/decommit and destroy sub-VMARs in one region of this
/// process while two probers touch its pages through `probe_for_read` / `probe_for_write`
/// (threads of this process, so they share its TLB). Afterwards, no access goes through a stale
/// translation: every unmapped page probes as NOT_FOUND for reads and writes and reads as
/// [`UNMAPPED_READ`] through the kernel; every read-only page reads its VMO's word and refuses
/// writes (ACCESS_DENIED); every read-write page takes both; and the kernel's invariants and
/// counters are as before.
fn map_unmap_protect_destroy_against_probes(ctx: &Ctx) -> TestResult {
    with_seed(probe_inner(ctx))
}

fn probe_inner(ctx: &Ctx) -> TestResult {
    let mut rng = Rng(seed(4));
    // A probe before the baseline: its first use of the runtime and the kernel's objects.
    let _ = zx::probe::probe_for_read(0);
    let before = settled_stats(ctx)?;
    let vmos = pool(PROBE_VMOS, PROBE_PAGES)?;
    let (region, base) = check!(ctx.root.allocate(
        ZX_VM_CAN_MAP_SPECIFIC | ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE,
        0,
        PROBE_PAGES * PAGE
    ));
    check!(region.map(ZX_VM_SPECIFIC | RW, 0, &vmos[0].0, 0, PROBE_PAGES * PAGE));
    let mut handles = [0u32; PROBE_VMOS];
    for (h, (v, _)) in handles.iter_mut().zip(vmos.iter()) {
        *h = v.raw_handle();
    }
    let shared = ProbeRace {
        running: AtomicU64::new(1),
        region: region.raw_handle(),
        base,
        vmos: handles,
        ops: 120,
        probes: AtomicU64::new(0),
        bad: Bad::new(),
    };
    let arg = &shared as *const ProbeRace as usize;
    let probers = [
        start_worker(ctx, prober, arg, rng.next() as usize)?,
        start_worker(ctx, prober, arg, rng.next() as usize)?,
    ];
    let racers = [
        start_worker(ctx, probe_racer, arg, rng.next() as usize)?,
        start_worker(ctx, probe_racer, arg, rng.next() as usize)?,
    ];
    for w in racers {
        join(ctx, w)?;
    }
    shared.running.store(0, SeqCst);
    for w in probers {
        join(ctx, w)?;
    }
    shared.bad.check(&PROBE_BAD)?;
    ensure!(shared.probes.load(SeqCst) > 0, "no probe ran");
    invariants_hold()?;
    let map = page_map(&region, base, PROBE_PAGES)?;
    let mut b = [0u8; 8];
    for (i, m) in map.iter().enumerate() {
        let addr = base + i * PAGE;
        match *m {
            None => {
                ensure_err!(zx::probe::probe_for_read(addr), Status::ERR_NOT_FOUND);
                ensure_err!(zx::probe::probe_for_write(addr), Status::ERR_NOT_FOUND);
                ensure_err!(ctx.process.read_memory(addr, &mut b), UNMAPPED_READ);
            }
            Some((flags, koid, offset)) => {
                ensure!(flags & ZX_VM_PERM_READ != 0, "page {i}: flags {flags:#x}");
                check!(zx::probe::probe_for_read(addr));
                let want = vmo_word(&vmos, koid, offset)?;
                let direct = super::util::peek(addr);
                ensure!(
                    direct == want,
                    "page {i}: direct read {direct:#x}, its VMO holds {want:#x} (stale translation)"
                );
                if flags & ZX_VM_PERM_WRITE != 0 {
                    check!(zx::probe::probe_for_write(addr));
                } else {
                    ensure_err!(zx::probe::probe_for_write(addr), Status::ERR_ACCESS_DENIED);
                }
                ensure_eq!(check!(ctx.process.read_memory(addr, &mut b)), 8);
                ensure_eq!(u64::from_ne_bytes(b), want);
            }
        }
    }
    // SAFETY: nothing uses the region any more.
    check!(unsafe { region.destroy() });
    drop(region);
    drop(vmos);
    back_at_baseline(ctx, &before)
}

// ---------------------------------------------------------------------------------------------
// map_unmap_destroy_against_faulting_child.

/// The victim case and mailbox layout (kept in sync with `user/victim/src/race.rs`).
mod mb {
    pub const CASE: u64 = 40;
    pub const PAGES: usize = 32;
    pub const CMD: usize = 0;
    pub const STATE: usize = 1;
    pub const TOUCHES: usize = 2;
    pub const ARG: usize = 3;
    pub const MASK: usize = 4;
    pub const VALUES: usize = 8;
    pub const DONE: u64 = 0x100;
    pub const SURVIVED_STATE: u64 = 0x777;
    pub const STOP: u64 = 1;
    pub const READ: u64 = 2;
    pub const READ_FAULT: u64 = 3;
    pub const WRITE_FAULT: u64 = 4;
    pub const EXIT: u64 = 5;
    pub const PROBE: u64 = 6;
}

/// VMOs in the child test's pool (each `mb::PAGES` pages).
const CHILD_VMOS: usize = 3;

struct ChildRace {
    running: AtomicU64,
    /// Non-zero: the racers neither unmap nor destroy (the region stays mapped and readable).
    gentle: AtomicU64,
    /// The child's region (a handle of ours).
    region: u32,
    base: usize,
    child: u32,
    vmos: [u32; CHILD_VMOS],
    ops: u64,
    bad: Bad,
}

const CHILD_BAD: [&str; 4] = [
    "an unexpected map status",
    "an unexpected unmap/protect/op_range status",
    "an implausible value through read_memory",
    "an unexpected read/write_memory status",
];

/// Racer on the child's region: maps (SPECIFIC and SPECIFIC_OVERWRITE), unmaps, protects,
/// commits and decommits, allocates sub-VMARs with a mapping inside and destroys them.
extern "C" fn child_racer(arg: usize, seed: usize) -> ! {
    // SAFETY: see `start_worker`.
    let s = unsafe { &*(arg as *const ChildRace) };
    let region = borrowed_vmar(s.region);
    let mut rng = Rng(seed as u64);
    // Statuses that say the child (and so its address space) is gone.
    let dead = |e: Status| e == Status::ERR_BAD_STATE;
    for _ in 0..s.ops {
        if s.running.load(SeqCst) == 0 {
            break;
        }
        let first = rng.below(mb::PAGES as u64) as usize;
        let pages = 1 + rng.below(8.min(mb::PAGES - first) as u64) as usize;
        let (at, len) = (s.base + first * PAGE, pages * PAGE);
        let perms = if rng.below(2) == 0 {
            ZX_VM_PERM_READ
        } else {
            RW
        };
        let v = s.vmos[rng.below(CHILD_VMOS as u64) as usize];
        let vmo = core::mem::ManuallyDrop::new(Vmo::from(Handle::from_raw(v)));
        let off = rng.below((mb::PAGES - pages + 1) as u64) * PAGE as u64;
        let op = if s.gentle.load(SeqCst) != 0 {
            // Overwrites and commit/decommit only: the region stays mapped and readable.
            [0, 1, 2, 6][rng.below(4) as usize]
        } else {
            rng.below(10)
        };
        match op {
            0..=2 => {
                let o = if rng.below(2) == 0 || s.gentle.load(SeqCst) != 0 {
                    ZX_VM_SPECIFIC_OVERWRITE
                } else {
                    ZX_VM_SPECIFIC
                };
                // SAFETY: the region belongs to the child, which only reads it.
                match unsafe { region.map_unchecked(o | perms, first * PAGE, &vmo, off, len) } {
                    Ok(a) if a == at => {}
                    Ok(a) => s.bad.set(1, a as u64),
                    // SPECIFIC over something already there.
                    Err(Status::ERR_ALREADY_EXISTS) if o == ZX_VM_SPECIFIC => {}
                    // Overwriting across a sub-VMAR.
                    Err(Status::ERR_INVALID_ARGS) if o == ZX_VM_SPECIFIC_OVERWRITE => {}
                    Err(e) if dead(e) => {}
                    Err(e) => s.bad.set(1, raw_status(e)),
                }
            }
            3 | 4 => {
                // SAFETY: the region belongs to the child, which only reads it.
                // Unmap fails over a gap only (NOT_FOUND) or a sub-VMAR partly inside the
                // range (INVALID_ARGS).
                match unsafe { region.unmap(at, len) } {
                    Ok(()) | Err(Status::ERR_NOT_FOUND) | Err(Status::ERR_INVALID_ARGS) => {}
                    Err(e) if dead(e) => {}
                    Err(e) => s.bad.set(2, raw_status(e)),
                }
            }
            5 => {
                // SAFETY: as above. Protect fails over a gap (NOT_FOUND), a sub-VMAR partly in
                // the range (INVALID_ARGS) or a sub-VMAR's read-only mapping (ACCESS_DENIED).
                match unsafe { region.protect(perms, at, len) } {
                    Ok(())
                    | Err(Status::ERR_NOT_FOUND)
                    | Err(Status::ERR_INVALID_ARGS)
                    | Err(Status::ERR_ACCESS_DENIED) => {}
                    Err(e) if dead(e) => {}
                    Err(e) => s.bad.set(2, raw_status(e)),
                }
            }
            6 => {
                let op = commit_or_decommit(&mut rng);
                // SAFETY: as above; decommitted pages read as zero.
                match unsafe { region.op_range(op, at, len) } {
                    Ok(())
                    | Err(Status::ERR_BAD_STATE)
                    | Err(Status::ERR_ACCESS_DENIED)
                    | Err(Status::ERR_INVALID_ARGS)
                    | Err(Status::ERR_NOT_FOUND) => {}
                    Err(e) => s.bad.set(2, raw_status(e)),
                }
            }
            7 => {
                // A sub-VMAR with a mapping inside, destroyed after a seeded spin.
                let o = ZX_VM_SPECIFIC | ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_SPECIFIC;
                match region.allocate(o, first * PAGE, len) {
                    Ok((sub, _)) => {
                        let _ = sub.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, 0, &vmo, off, len);
                        rng.spin(3000);
                        // SAFETY: as above.
                        match unsafe { sub.destroy() } {
                            Ok(()) => {}
                            Err(e) if dead(e) => {}
                            Err(e) => s.bad.set(2, raw_status(e)),
                        }
                    }
                    Err(Status::ERR_ALREADY_EXISTS) | Err(Status::ERR_NO_RESOURCES) => {}
                    Err(Status::ERR_NO_MEMORY) => {}
                    Err(e) if dead(e) => {}
                    Err(e) => s.bad.set(1, raw_status(e)),
                }
            }
            _ => {
                // SAFETY: as above.
                // Unmap fails over a gap only (NOT_FOUND) or a sub-VMAR partly inside the
                // range (INVALID_ARGS).
                match unsafe { region.unmap(at, len) } {
                    Ok(()) | Err(Status::ERR_NOT_FOUND) | Err(Status::ERR_INVALID_ARGS) => {}
                    Err(e) if dead(e) => {}
                    Err(e) => s.bad.set(2, raw_status(e)),
                }
                let _ = region.map(ZX_VM_SPECIFIC | perms, first * PAGE, &vmo, off, len);
            }
        }
        rng.spin(3000);
    }
    Thread::exit()
}

/// Reads and writes the child's region with `zx_process_read_memory` / `write_memory` while the
/// racers change it: a read gives a plausible value or [`UNMAPPED_READ`] (or BAD_STATE once the
/// child is dead); writes put back a pool tag, so values stay plausible, or are ACCESS_DENIED
/// where the page lies in a read-only sub-VMAR (its mapping's maximum protection lacks WRITE).
extern "C" fn child_reader(arg: usize, seed: usize) -> ! {
    // SAFETY: see `start_worker`.
    let s = unsafe { &*(arg as *const ChildRace) };
    let p = borrowed_process(s.child);
    let mut rng = Rng(seed as u64);
    let mut b = [0u8; 8];
    while s.running.load(SeqCst) != 0 {
        let page = rng.below(mb::PAGES as u64) as usize;
        let addr = s.base + PAGE * page;
        if rng.below(4) == 0 {
            let t = tag(rng.below(CHILD_VMOS as u64) as usize, page);
            match p.write_memory(addr, &t.to_ne_bytes()) {
                Ok(8) => {}
                Ok(n) => s.bad.set(4, n as u64),
                Err(e)
                    if e == UNMAPPED_READ
                        || e == Status::ERR_BAD_STATE
                        || e == Status::ERR_ACCESS_DENIED => {}
                Err(e) => s.bad.set(4, raw_status(e)),
            }
        } else {
            match p.read_memory(addr, &mut b) {
                Ok(8) if plausible(u64::from_ne_bytes(b), CHILD_VMOS, mb::PAGES) => {}
                Ok(_) => s.bad.set(3, u64::from_ne_bytes(b)),
                Err(e) if e == UNMAPPED_READ || e == Status::ERR_BAD_STATE => {}
                Err(e) => s.bad.set(4, raw_status(e)),
            }
        }
        rng.spin(1000);
    }
    Thread::exit()
}

/// The mailbox word `i` (the mailbox is mapped read-write in this process).
fn word(mailbox: usize, i: usize) -> &'static AtomicU64 {
    // SAFETY: the mailbox mapping is page-aligned, read-write, holds 512 u64, stays mapped until
    // the round ends (after the last use), and both sides access it only atomically.
    unsafe { &*((mailbox + 8 * i) as *const AtomicU64) }
}

/// Waits until the child's STATE is `want`; `Ok(false)` if the child died first.
fn await_state(child: &Process, mailbox: usize, want: u64) -> Result<bool, Failure> {
    let deadline = zx::clock_get_monotonic() + 60_000_000_000;
    loop {
        if word(mailbox, mb::STATE).load(SeqCst) == want {
            return Ok(true);
        }
        let wait = zx::clock_get_monotonic() + 2_000_000;
        if child.handle().wait_one(ZX_PROCESS_TERMINATED, wait).is_ok() {
            return Ok(word(mailbox, mb::STATE).load(SeqCst) == want);
        }
        ensure!(
            zx::clock_get_monotonic() < deadline,
            "the child did not reach state {want:#x}"
        );
    }
}

/// How a round ended.
#[derive(Default)]
struct Rounds {
    touches: u64,
    died_racing: u64,
    checked: u64,
    faulted_unmapped: u64,
    faulted_read_only: u64,
    exited: u64,
}

/// Two racers and a reader on the child's region until the racers have made their operations.
fn race_child_region(ctx: &Ctx, rng: &mut Rng, shared: &ChildRace) -> TestResult {
    let arg = shared as *const ChildRace as usize;
    let racers = [
        start_worker(ctx, child_racer, arg, rng.next() as usize)?,
        start_worker(ctx, child_racer, arg, rng.next() as usize)?,
    ];
    let reader = start_worker(ctx, child_reader, arg, rng.next() as usize)?;
    for w in racers {
        join(ctx, w)?;
    }
    shared.running.store(0, SeqCst);
    join(ctx, reader)?;
    shared.bad.check(&CHILD_BAD)?;
    invariants_hold()
}

/// One round: a fresh `victim` child touches a 32-page region of its address space with two
/// threads while two racer threads here change that region through our handle to it and a third
/// reads and writes it with `zx_process_read_memory` / `write_memory`. The child may die of a
/// touch that lost the race (`ZX_TASK_RETCODE_EXCEPTION_KILL`). If it survives, it is stopped and
/// the final state is checked: each page reads the same through the kernel and through the
/// child's own page tables as its mapping's VMO holds; an unmapped page reads as
/// [`UNMAPPED_READ`]; and a touch of an unmapped page (or, if none, a write to a read-only one)
/// kills it.
fn child_round(ctx: &Ctx, rng: &mut Rng, vmos: &[(Vmo, u64)], rounds: &mut Rounds) -> TestResult {
    let mailbox_vmo = vmo(1)?;
    let mailbox = check!(ctx.root.map(RW, 0, &mailbox_vmo, 0, PAGE));
    let arg1 = check!(mailbox_vmo.duplicate(abi::rights::ZX_RIGHT_SAME_RIGHTS));
    let mut region: Option<(Vmar, usize)> = None;
    let first_vmo = &vmos[0].0;
    let (child, _root) =
        match zx::process::spawn_with(&ctx.ramdisk, "victim", Handle::from(arg1), |root| {
            let o = ZX_VM_CAN_MAP_SPECIFIC | ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE;
            let (r, base) = root.allocate(o, 0, mb::PAGES * PAGE)?;
            // Start fully mapped, so the touchers have something to read.
            r.map(ZX_VM_SPECIFIC | RW, 0, first_vmo, 0, mb::PAGES * PAGE)?;
            region = Some((r, base));
            Ok(base as u64 | mb::CASE)
        }) {
            Ok(c) => c,
            Err(e) => fail!("spawn victim: {e}"),
        };
    let Some((region, base)) = region else {
        fail!("setup did not run");
    };
    let mut handles = [0u32; CHILD_VMOS];
    for (h, (v, _)) in handles.iter_mut().zip(vmos.iter()) {
        *h = v.raw_handle();
    }
    let gentle = rng.below(2);
    let shared = ChildRace {
        running: AtomicU64::new(1),
        gentle: AtomicU64::new(gentle),
        region: region.raw_handle(),
        base,
        child: child.process.handle().raw(),
        vmos: handles,
        ops: 40 + rng.below(120),
        bad: Bad::new(),
    };
    // Let the child start touching first (or die trying).
    let _ = await_state(&child.process, mailbox, 0)?;
    // Phase 1: racers against the touchers (the full mix, or a gentle one the touchers survive).
    race_child_region(ctx, rng, &shared)?;
    word(mailbox, mb::CMD).store(mb::STOP, SeqCst);
    let stopped = await_state(&child.process, mailbox, mb::STOP | mb::DONE)?;
    rounds.touches += word(mailbox, mb::TOUCHES).load(SeqCst);
    if stopped {
        // Phase 2: the full mix on the pages the touchers left in the child's page tables.
        shared.gentle.store(0, SeqCst);
        shared.running.store(1, SeqCst);
        race_child_region(ctx, rng, &shared)?;
    }
    if !stopped {
        let code = check!(child.wait());
        ensure_eq!(code, ZX_TASK_RETCODE_EXCEPTION_KILL);
        rounds.died_racing += 1;
        // SAFETY: nothing in this process uses the mailbox any more.
        check!(unsafe { ctx.root.unmap(mailbox, PAGE) });
        return Ok(());
    }
    // The final state, through the kernel's view and the child's page tables.
    let map = page_map(&region, base, mb::PAGES)?;
    let mut mask = 0u64;
    let mut b = [0u8; 8];
    let (mut unmapped, mut read_only) = (None, None);
    for (i, m) in map.iter().enumerate() {
        let addr = base + i * PAGE;
        match *m {
            None => {
                ensure_err!(child.process.read_memory(addr, &mut b), UNMAPPED_READ);
                unmapped.get_or_insert(addr);
            }
            Some((flags, koid, offset)) => {
                let want = vmo_word(vmos, koid, offset)?;
                ensure_eq!(check!(child.process.read_memory(addr, &mut b)), 8);
                ensure!(
                    u64::from_ne_bytes(b) == want,
                    "page {i}: read_memory {:#x}, its VMO holds {want:#x}",
                    u64::from_ne_bytes(b)
                );
                if flags & ZX_VM_PERM_READ != 0 {
                    mask |= 1 << i;
                }
                if flags & ZX_VM_PERM_WRITE == 0 {
                    read_only.get_or_insert(addr);
                }
            }
        }
    }
    word(mailbox, mb::MASK).store(mask, SeqCst);
    word(mailbox, mb::CMD).store(mb::READ, SeqCst);
    ensure!(
        await_state(&child.process, mailbox, mb::READ | mb::DONE)?,
        "the child died reading mapped pages: {:?}",
        child.process.info().map(|i| i.return_code)
    );
    for (i, m) in map.iter().enumerate() {
        if mask & (1 << i) == 0 {
            continue;
        }
        let Some((_, koid, offset)) = *m else {
            continue;
        };
        let want = vmo_word(vmos, koid, offset)?;
        let got = word(mailbox, mb::VALUES + i).load(SeqCst);
        ensure!(
            got == want,
            "page {i}: the child read {got:#x}, its VMO holds {want:#x} (stale translation)"
        );
    }
    // Every page probed from inside the child (a helper thread of the child under an exception
    // channel): unmapped pages fault NOT_FOUND for reads and writes, read-only pages refuse
    // writes with ACCESS_DENIED, read-write pages take both.
    word(mailbox, mb::MASK).store((1u64 << mb::PAGES) - 1, SeqCst);
    word(mailbox, mb::CMD).store(mb::PROBE, SeqCst);
    ensure!(
        await_state(&child.process, mailbox, mb::PROBE | mb::DONE)?,
        "the child died probing its pages: {:?}",
        child.process.info().map(|i| i.return_code)
    );
    let status = |raw: u64| Status::from_raw(raw as u32 as i32);
    for (i, m) in map.iter().enumerate() {
        let v = word(mailbox, mb::VALUES + i).load(SeqCst);
        let (r, w) = (status(v & 0xffff_ffff), status(v >> 32));
        let want = match *m {
            None => (Status::ERR_NOT_FOUND, Status::ERR_NOT_FOUND),
            Some((flags, _, _)) if flags & ZX_VM_PERM_WRITE == 0 => {
                (Status::OK, Status::ERR_ACCESS_DENIED)
            }
            Some(_) => (Status::OK, Status::OK),
        };
        ensure!(
            (r, w) == want,
            "page {i} ({:?}): the child probes read {r:?} write {w:?}, expected {want:?}",
            m
        );
    }
    invariants_hold()?;
    // No access through a stale translation: a touch of an unmapped page (or a write to a
    // read-only one) kills the child.
    let (cmd, addr) = match (unmapped, read_only) {
        (Some(a), _) => (mb::READ_FAULT, a),
        (None, Some(a)) => (mb::WRITE_FAULT, a),
        (None, None) => (mb::EXIT, 0),
    };
    word(mailbox, mb::ARG).store(addr as u64, SeqCst);
    word(mailbox, mb::CMD).store(cmd, SeqCst);
    let code = check!(child.wait());
    ensure!(
        word(mailbox, mb::STATE).load(SeqCst) != mb::SURVIVED_STATE,
        "the child survived command {cmd} at {addr:#x}"
    );
    match cmd {
        mb::EXIT => {
            ensure_eq!(code, 0);
            rounds.exited += 1;
        }
        _ => {
            ensure_eq!(code, ZX_TASK_RETCODE_EXCEPTION_KILL);
            if cmd == mb::READ_FAULT {
                rounds.faulted_unmapped += 1;
            } else {
                rounds.faulted_read_only += 1;
            }
        }
    }
    rounds.checked += 1;
    // SAFETY: nothing in this process uses the mailbox any more.
    check!(unsafe { ctx.root.unmap(mailbox, PAGE) });
    Ok(())
}

/// Rounds of [`child_round`] with fresh children; afterwards the kernel's counters are back at
/// their baseline (each child's address space, page tables, threads and handles are gone).
fn map_unmap_destroy_against_faulting_child(ctx: &Ctx) -> TestResult {
    with_seed(child_inner(ctx))
}

fn child_inner(ctx: &Ctx) -> TestResult {
    let mut rng = Rng(seed(3));
    let vmos = pool(CHILD_VMOS, mb::PAGES)?;
    // Pages committed in the pool (which outlives the children) are not leaks.
    let committed = |vmos: &[(Vmo, u64)]| -> Result<i64, Failure> {
        let mut pages = 0;
        for (v, _) in vmos {
            pages += check!(v.info()).committed_bytes as i64 / PAGE as i64;
        }
        Ok(pages)
    };
    // A warm-up round (first spawn of a program, heap growth), then the baseline.
    let mut rounds = Rounds::default();
    child_round(ctx, &mut rng, &vmos, &mut rounds)?;
    let before = settled_stats(ctx)?;
    let pool_before = committed(&vmos)?;
    // At least 6 rounds, and as many more (up to 24) as it takes for 3 of them to reach the
    // final-state oracle: a round whose child dies racing checks only the counters.
    let mut n = 0;
    while n < 6 || (rounds.checked < 3 && n < 24) {
        child_round(ctx, &mut rng, &vmos, &mut rounds)?;
        n += 1;
    }
    ensure!(
        rounds.checked >= 3,
        "only {} of {} rounds reached the final-state check",
        rounds.checked,
        n + 1
    );
    zx::println!(
        "concurrency: child rounds: {} touches, {} died racing, {} checked ({} unmapped touches, {} read-only writes, {} exits)",
        rounds.touches,
        rounds.died_racing,
        rounds.checked,
        rounds.faulted_unmapped,
        rounds.faulted_read_only,
        rounds.exited
    );
    let kept = committed(&vmos)? - pool_before;
    back_at_baseline_but(ctx, &before, kept)
}

// ---------------------------------------------------------------------------------------------
// same_pages_faulted_on_every_cpu: several CPUs fault the same pages of one VMO at once.

/// Pages of the VMO the faulting threads share.
const SAME_PAGES: usize = 64;
/// Faulting threads (one per CPU in the 4-CPU run, `tests/tests/qemu/concurrency.rs`).
const SAME_THREADS: usize = 4;
/// Rounds, each on a fresh VMO: even rounds a plain VMO, odd ones a snapshot child of a VMO
/// whose every page is committed and tagged.
const SAME_ROUNDS: usize = 6;

/// What thread `t` does at a page (`SameFaults::plan`, 2 bits per thread).
mod same_op {
    /// Reads its word through the mapping (a read fault: maps the zero frame or the parent's).
    pub const READ: u64 = 0;
    /// Writes its word through the mapping (a write fault: commits, or copies on write).
    pub const WRITE: u64 = 1;
    /// Writes its word with `zx_vmo_write` (commits under the VMO lock alone).
    pub const VMO_WRITE: u64 = 2;
    /// Reads its word, then writes it through the mapping.
    pub const READ_WRITE: u64 = 3;
}

struct SameFaults {
    /// Threads at the start line; all start when it reaches [`SAME_THREADS`].
    arrived: AtomicU64,
    base: usize,
    vmo: u32,
    /// The page every thread starts at (all walk the pages in the same order, so they meet).
    start: usize,
    round: u64,
    /// Per page: thread `t`'s operation in bits `2t..2t + 2`.
    plan: [u64; SAME_PAGES],
    /// Per page: the words `0..SAME_THREADS` before the round (0, or the parent's tags).
    initial: [[u64; SAME_THREADS]; SAME_PAGES],
    bad: Bad,
}

const SAME_BAD: [&str; 2] = [
    "a word read through the mapping that is neither its initial value nor its writer's",
    "zx_vmo_write failed",
];

/// What thread `t` writes into word `t` of `page` in `round` (never zero, never a tag).
fn same_value(round: u64, t: usize, page: usize) -> u64 {
    0x5a00_0000_0000_0000 | round << 32 | (t as u64) << 16 | page as u64 | 1 << 48
}

/// The tag word `t` of page `page` of a snapshot's parent holds.
fn same_tag(t: usize, page: usize) -> u64 {
    0x7c00_0000_0000_0000 | (page as u64) << 8 | t as u64
}

extern "C" fn same_faulter(arg: usize, t: usize) -> ! {
    // SAFETY: see `start_worker`.
    let s = unsafe { &*(arg as *const SameFaults) };
    s.arrived.fetch_add(1, SeqCst);
    // On several CPUs every thread leaves the line at about the same moment; on one, each one's
    // spin ends with its time slice (5 s at most).
    let deadline = zx::clock_get_monotonic() + 5_000_000_000;
    while s.arrived.load(SeqCst) < SAME_THREADS as u64 && zx::clock_get_monotonic() < deadline {
        core::hint::spin_loop();
    }
    let vmo = core::mem::ManuallyDrop::new(Vmo::from(Handle::from_raw(s.vmo)));
    for k in 0..SAME_PAGES {
        let page = (s.start + k) % SAME_PAGES;
        let addr = s.base + page * PAGE + 8 * t;
        let value = same_value(s.round, t, page);
        let op = (s.plan[page] >> (2 * t)) & 3;
        if op == same_op::READ || op == same_op::READ_WRITE {
            // Only this thread writes word `t`: it still holds its initial value.
            let v = super::util::peek(addr);
            if v != s.initial[page][t] {
                s.bad.set(1, v);
            }
        }
        match op {
            same_op::WRITE | same_op::READ_WRITE => super::util::poke(addr, value),
            same_op::VMO_WRITE => {
                if let Err(e) = vmo.write(&value.to_ne_bytes(), (page * PAGE + 8 * t) as u64) {
                    s.bad.set(2, raw_status(e));
                }
            }
            _ => {}
        }
    }
    Thread::exit()
}

/// Four threads (on four CPUs in the 4-CPU run) fault the same 64 pages of one VMO at once, all
/// walking the pages in the same order from a seeded start: per page and thread a seeded read
/// fault, write fault, read-then-write, or `zx_vmo_write` (which commits under the VMO lock
/// without the address space's). Each thread writes only its own word of a page. Six rounds,
/// each on a fresh VMO: a plain one, then a snapshot child of a VMO with every page committed
/// (read faults map the parent's frame, write faults copy it). After each round: the VMO
/// committed exactly the pages written, once each (ZX_INFO_VMO; for a child its private bytes,
/// the parent's private bytes the same, the rest still shared), every word reads its last
/// writer's value (or its initial one) through the VMO and through the mapping (no frame was
/// committed twice, none lost a write, no stale translation); after unmap and close the kernel's
/// free frames and page-table pages are back at their baseline and every address space passes
/// its invariant check.
fn same_pages_faulted_on_every_cpu(ctx: &Ctx) -> TestResult {
    with_seed(same_pages_inner(ctx))
}

fn same_pages_inner(ctx: &Ctx) -> TestResult {
    let mut rng = Rng(seed(5));
    let before = settled_stats(ctx)?;
    for round in 0..SAME_ROUNDS as u64 {
        same_pages_round(ctx, &mut rng, round)?;
    }
    invariants_hold()?;
    back_at_baseline(ctx, &before)
}

/// One round of [`same_pages_faulted_on_every_cpu`]: odd rounds on a snapshot child.
fn same_pages_round(ctx: &Ctx, rng: &mut Rng, round: u64) -> TestResult {
    let size = (SAME_PAGES * PAGE) as u64;
    let cow = round % 2 == 1;
    let parent = vmo(SAME_PAGES)?;
    let mut initial = [[0u64; SAME_THREADS]; SAME_PAGES];
    let child;
    let target = if cow {
        for (page, words) in initial.iter_mut().enumerate() {
            for (t, w) in words.iter_mut().enumerate() {
                *w = same_tag(t, page);
                check!(parent.write(&w.to_ne_bytes(), (page * PAGE + 8 * t) as u64));
            }
        }
        child = check!(parent.create_child(abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT, 0, size));
        &child
    } else {
        &parent
    };
    let base = check!(ctx.root.map(RW, 0, target, 0, SAME_PAGES * PAGE));
    let mut plan = [0u64; SAME_PAGES];
    for p in plan.iter_mut() {
        // A page in four is only read (by every thread); the others mix all four operations.
        *p = if rng.below(4) == 0 {
            0
        } else {
            rng.next() & ((1 << (2 * SAME_THREADS)) - 1)
        };
    }
    let shared = SameFaults {
        arrived: AtomicU64::new(0),
        base,
        vmo: target.raw_handle(),
        start: rng.below(SAME_PAGES as u64) as usize,
        round,
        plan,
        initial,
        bad: Bad::new(),
    };
    let arg = &shared as *const SameFaults as usize;
    let mut workers = Vec::with_capacity(SAME_THREADS);
    for t in 0..SAME_THREADS {
        workers.push(start_worker(ctx, same_faulter, arg, t)?);
    }
    for w in workers {
        join(ctx, w)?;
    }
    shared.bad.check(&SAME_BAD)?;
    same_pages_check(&shared, &parent, target, cow)?;
    // SAFETY: the faulting threads are gone; nothing else uses the mapping.
    check!(unsafe { ctx.root.unmap(base, SAME_PAGES * PAGE) });
    Ok(())
}

/// The checks after a round: committed pages and every word, through the VMO and the mapping.
fn same_pages_check(s: &SameFaults, parent: &Vmo, target: &Vmo, cow: bool) -> TestResult {
    let mut written = 0u64;
    for page in 0..SAME_PAGES {
        let ops = (0..SAME_THREADS).map(|t| (s.plan[page] >> (2 * t)) & 3);
        if ops.clone().any(|op| op != same_op::READ) {
            written += 1;
        }
        for (t, op) in ops.enumerate() {
            let want = if op == same_op::READ {
                s.initial[page][t]
            } else {
                same_value(s.round, t, page)
            };
            let mut b = [0u8; 8];
            check!(target.read(&mut b, (page * PAGE + 8 * t) as u64));
            let got = u64::from_ne_bytes(b);
            ensure!(
                got == want,
                "round {}: page {page} word {t} holds {got:#x} in the VMO, {want:#x} expected \
                 (a write lost to a second commit of the page)",
                s.round
            );
            let direct = super::util::peek(s.base + page * PAGE + 8 * t);
            ensure!(
                direct == want,
                "round {}: page {page} word {t} reads {direct:#x} through the mapping, the VMO \
                 holds {want:#x} (a stale translation)",
                s.round
            );
        }
    }
    let bytes = written * PAGE as u64;
    let info = check!(target.info());
    if cow {
        ensure!(
            info.committed_private_bytes == bytes,
            "round {}: the snapshot child holds {} bytes of its own, {bytes} expected ({written} \
             pages written, each copied once)",
            s.round,
            info.committed_private_bytes
        );
        let p = check!(parent.info());
        ensure_eq!(p.committed_bytes, (SAME_PAGES * PAGE) as u64);
        ensure_eq!(p.committed_private_bytes, bytes);
        // The parent kept its tags.
        for page in 0..SAME_PAGES {
            let mut b = [0u8; 8];
            check!(parent.read(&mut b, (page * PAGE) as u64));
            ensure_eq!(u64::from_ne_bytes(b), same_tag(0, page));
        }
    } else {
        ensure!(
            info.committed_bytes == bytes,
            "round {}: the VMO committed {} bytes, {bytes} expected ({written} pages written, \
             each committed once)",
            s.round,
            info.committed_bytes
        );
    }
    Ok(())
}
