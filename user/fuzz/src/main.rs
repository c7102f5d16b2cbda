//! `fuzz`: a seeded system-call fuzzer whose job is to find ways user space can panic, hang or
//! leak the kernel.
//!
//! Arguments (the ramdisk command line's `args=`): `[SEED [CALLS [verbose]]]` (decimal or `0x` hex; the
//! seed defaults to the tick counter, the call count to [`DEFAULT_CALLS`]; `verbose` prints every
//! child's non-zero return code).
//!
//! The first process (the parent) never fuzzes itself. It takes the kernel's counters
//! (`zx_debug_kernel_stats`) after a warm-up child, then keeps [`PARALLEL`] children from the
//! ramdisk alive at once, each with `arg2 = child seed << 20 | calls` and its slot's counter VMO
//! as `arg1` (one u64 per fuzzing thread). A child runs one to three fuzzing threads (and in every
//! other child a racer thread) issuing typed-but-random calls of every syscall number (handles
//! from earlier results, closed, invalid and random values; every option bit, every alignment,
//! unknown bits; offsets and lengths at page, region and 2^64 boundaries; null, kernel-half,
//! unmapped, read-only and valid pointers; channels with handle transfer, exception channels on
//! the processes it created) and reports progress in the counter VMO. The parent kills one child
//! in four at a random point (`zx_task_kill`) and hands its unmade calls to new children; a child
//! may also die by itself (it may kill or exit itself, or lose a demand fault to memory
//! pressure); the parent counts both. A child that does not end in time is a hang. After the
//! last child, the counters must be back at the baseline (free frames, page-table pages, kernel
//! stacks, handles, processes) and every live address space must pass the VM's invariant check
//! (trees, back-references, page tables equal to the mappings), and no syscall, page fault or
//! teardown since the baseline may have kept interrupts off for [`IRQOFF_BOUND_NS`] or more
//! (`zx_debug_irqoff_stats`). Output: `fuzz: calls N seconds S seed X (C children, D died, K
//! killed, R calls/s)`, the longest interrupts-off stretch, then `fuzz: ok` or `fuzz: FAIL ...
//! (seed X)`; the return code is 0 on success.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

mod gen;

use abi::kstats;
use abi::signals::ZX_PROCESS_TERMINATED;
use zx::bootfs::Ramdisk;
use zx::rt::Startup;
use zx::{println, Handle, Status, Vmo};

zx::entry!(main);

/// Calls when the command line does not say.
pub const DEFAULT_CALLS: u64 = 20_000;
/// Calls per child process (below 2^19: it travels in the low bits of arg2).
pub const CALLS_PER_CHILD: u64 = 2_000;
/// Report each child's death (`verbose` argument).
static VERBOSE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// How long a child may run before it counts as a hang (TCG is slow).
const CHILD_DEADLINE_NS: i64 = 120_000_000_000;

fn main(startup: Startup) -> i64 {
    if startup.arg2 != 0 {
        return gen::run_child(startup);
    }
    parent(startup)
}

fn parse(word: Option<&str>) -> Option<u64> {
    let w = word?;
    match w.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => w.parse().ok(),
    }
}

fn sleep_ms(thread: &Handle, ms: i64) {
    let deadline = zx::clock_get_monotonic().saturating_add(ms * 1_000_000);
    // The thread's TERMINATED signal cannot assert while it waits: this is a sleep.
    let _ = thread.wait_one(abi::signals::ZX_THREAD_TERMINATED, deadline);
}

/// The counters once they stop moving (dead threads' stacks are reaped by the idle thread).
fn settled_stats(thread: &Handle) -> Result<[u64; kstats::COUNT], Status> {
    let mut last = zx::leak_check_stats()?;
    for _ in 0..20 {
        sleep_ms(thread, 20);
        let now = zx::leak_check_stats()?;
        if now[..kstats::ASPACES_CHECKED] == last[..kstats::ASPACES_CHECKED] {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Runs one child; returns `(calls made, died)`, or an error message for a hang or spawn failure.
fn run_one(
    ramdisk: &Ramdisk,
    counter: &Vmo,
    seed: u64,
    calls: u64,
) -> Result<(u64, bool), &'static str> {
    counter
        .write(&0u64.to_ne_bytes(), 0)
        .map_err(|_| "counter reset")?;
    let arg1 = counter
        .duplicate(abi::rights::ZX_RIGHT_SAME_RIGHTS)
        .map_err(|_| "duplicate")?;
    let verbose = u64::from(VERBOSE.load(core::sync::atomic::Ordering::Relaxed));
    let arg2 = (seed << 20) | (verbose << 19) | calls;
    let child = zx::process::spawn(ramdisk, "fuzz", Handle::from(arg1), arg2)
        .map_err(|_| "spawn failed")?;
    let deadline = zx::clock_get_monotonic().saturating_add(CHILD_DEADLINE_NS);
    match child
        .process
        .handle()
        .wait_one(ZX_PROCESS_TERMINATED, deadline)
    {
        Ok(_) => {}
        Err(_) => {
            let _ = child.process.kill();
            return Err("child did not finish in time (kernel hang?)");
        }
    }
    let code = child
        .process
        .info()
        .map_err(|_| "process info")?
        .return_code;
    if code != 0 && VERBOSE.load(core::sync::atomic::Ordering::Relaxed) {
        println!("fuzz: child seed {seed:#x} ended with {code}");
    }
    let mut made = [0u8; 8];
    counter.read(&mut made, 0).map_err(|_| "counter read")?;
    Ok((u64::from_ne_bytes(made), code != 0))
}

/// Children running at once.
pub const PARALLEL: usize = 3;

/// One child slot of the parent: its counter VMO (one u64 per fuzzing thread) and the child.
struct Slot {
    counter: Vmo,
    live: Option<Live>,
}

/// A running child.
struct Live {
    child: zx::process::Child,
    seed: u64,
    calls: u64,
    started: i64,
    /// When the parent kills it (`zx_task_kill`), if it does.
    kill_at: Option<i64>,
    killed: bool,
}

/// Totals of a run.
#[derive(Default)]
struct Tally {
    /// Calls made by ended children.
    done: u64,
    /// Calls given to running children.
    inflight: u64,
    children: u64,
    /// Children that died by their own doing (exit with a non-zero code, fault, self-kill).
    deaths: u64,
    /// Children the parent killed.
    kills: u64,
    spawn_retries: u64,
}

fn slots_busy(t: &Tally) -> bool {
    t.inflight > 0
}

enum SpawnFail {
    NoMemory,
    Other(&'static str),
}

/// Starts a child with `calls` calls and the counter VMO reset.
fn spawn_child(
    ramdisk: &Ramdisk,
    counter: &Vmo,
    seed: u64,
    calls: u64,
) -> Result<zx::process::Child, SpawnFail> {
    let nomem = |e: Status| {
        if e == Status::ERR_NO_MEMORY || e == Status::ERR_NO_RESOURCES {
            SpawnFail::NoMemory
        } else {
            SpawnFail::Other("counter VMO")
        }
    };
    counter
        .write(&[0u8; 8 * gen::MAX_FUZZ_THREADS], 0)
        .map_err(nomem)?;
    let arg1 = counter
        .duplicate(abi::rights::ZX_RIGHT_SAME_RIGHTS)
        .map_err(nomem)?;
    let verbose = u64::from(VERBOSE.load(core::sync::atomic::Ordering::Relaxed));
    let arg2 = (seed << 20) | (verbose << 19) | calls;
    zx::process::spawn(ramdisk, "fuzz", Handle::from(arg1), arg2).map_err(|e| match e {
        zx::process::SpawnError::Status(s)
            if s == Status::ERR_NO_MEMORY || s == Status::ERR_NO_RESOURCES =>
        {
            SpawnFail::NoMemory
        }
        _ => SpawnFail::Other("spawn failed"),
    })
}

/// An ended child's calls (the sum over its fuzzing threads) and return code.
fn finish(counter: &Vmo, live: &Live) -> Result<(u64, i64), &'static str> {
    let code = live
        .child
        .process
        .info()
        .map_err(|_| "process info")?
        .return_code;
    if code != 0 && VERBOSE.load(core::sync::atomic::Ordering::Relaxed) {
        println!(
            "fuzz: child seed {:#x} ended with {code}{}",
            live.seed,
            if live.killed { " (killed)" } else { "" }
        );
    }
    let mut words = [0u8; 8 * gen::MAX_FUZZ_THREADS];
    counter.read(&mut words, 0).map_err(|_| "counter read")?;
    let made = words
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")))
        .sum();
    Ok((made, code))
}

/// The interrupts-off bound (the same as utest's `irqoff` tests): no syscall, page fault or
/// teardown may keep the CPU from other threads this long.
const IRQOFF_BOUND_NS: u64 = 20_000_000;

/// What an `abi::irqoff` counter index measures.
fn irqoff_label(label: usize) -> alloc::string::String {
    match label {
        abi::irqoff::PAGE_FAULT => "page fault".into(),
        abi::irqoff::TEARDOWN => "teardown".into(),
        n => alloc::format!("syscall {n}"),
    }
}

fn parent(startup: Startup) -> i64 {
    let vmo = Vmo::from(startup.arg1);
    let ramdisk = match Ramdisk::map(&vmo, &startup.root_vmar) {
        Ok(r) => r,
        Err(e) => {
            println!("fuzz: FAIL no ramdisk (arg1): {e:?}");
            return 1;
        }
    };
    let mut words = ramdisk.args().split_whitespace();
    let seed = parse(words.next()).unwrap_or(zx::ticks_get() as u64) & ((1 << 44) - 1);
    let calls = parse(words.next()).unwrap_or(DEFAULT_CALLS);
    if words.next() == Some("verbose") {
        VERBOSE.store(true, core::sync::atomic::Ordering::Relaxed);
    }
    println!("fuzz: seed {seed:#x} calls {calls} ({CALLS_PER_CHILD} per child)");
    let thread = startup.thread.handle();
    let counter = match Vmo::create(4096, 0) {
        Ok(v) => v,
        Err(e) => {
            println!("fuzz: FAIL counter VMO: {e:?} (seed {seed:#x})");
            return 1;
        }
    };
    let fail = |what: &str| {
        println!("fuzz: FAIL {what} (seed {seed:#x})");
        1
    };
    // The slots' counter VMOs exist before the baseline (they live until the end).
    let mut slots: Vec<Slot> = Vec::with_capacity(PARALLEL);
    for _ in 0..PARALLEL {
        // Committed now (written), so its page is in the baseline.
        match Vmo::create(4096, 0).and_then(|v| v.write(&[0; 8], 0).map(|()| v)) {
            Ok(counter) => slots.push(Slot {
                counter,
                live: None,
            }),
            Err(e) => {
                println!("fuzz: FAIL counter VMO: {e:?} (seed {seed:#x})");
                return 1;
            }
        }
    }
    // Warm-up (first-use allocations in this process and the kernel), then the baseline.
    if let Err(e) = run_one(&ramdisk, &counter, gen::mix(seed ^ 0x5eed), 50) {
        return fail(e);
    }
    let before = match settled_stats(thread) {
        Ok(s) => s,
        Err(e) => {
            println!("fuzz: FAIL zx_debug_kernel_stats: {e:?} (seed {seed:#x})");
            return 1;
        }
    };
    // The longest interrupts-off stretches are measured from here on.
    if let Err(e) = zx::debug_irqoff_stats(true) {
        println!("fuzz: FAIL zx_debug_irqoff_stats: {e:?} (seed {seed:#x})");
        return 1;
    }
    let start = zx::clock_get_monotonic();
    let mut rng = gen::mix(seed ^ 0x6b11);
    let mut t = Tally::default();
    loop {
        let now = zx::clock_get_monotonic();
        // Reap the children that ended; kill those whose time came; catch hangs.
        for slot in slots.iter_mut() {
            let Some(live) = &slot.live else { continue };
            let ended = live
                .child
                .process
                .handle()
                .wait_one(ZX_PROCESS_TERMINATED, 0)
                .is_ok();
            if ended {
                let live = slot.live.take().expect("live");
                match finish(&slot.counter, &live) {
                    Ok((made, code)) => {
                        t.done += made.clamp(1, live.calls);
                        t.inflight -= live.calls;
                        if live.killed {
                            t.kills += 1;
                        } else if code != 0 {
                            t.deaths += 1;
                        }
                    }
                    Err(e) => return fail(e),
                }
            } else if live.kill_at.is_some_and(|k| now >= k) && !live.killed {
                let _ = live.child.process.kill();
                slot.live.as_mut().expect("live").killed = true;
            } else if now - live.started > CHILD_DEADLINE_NS {
                let _ = live.child.process.kill();
                println!("fuzz: child seed {:#x} did not finish in time", live.seed);
                return fail("child did not finish in time (kernel hang?)");
            }
        }
        // Start children while calls remain (killed children's unmade calls are made again).
        for slot in slots.iter_mut().filter(|s| s.live.is_none()) {
            if t.done + t.inflight >= calls {
                break;
            }
            let n = (calls - t.done - t.inflight).min(CALLS_PER_CHILD);
            let child_seed = gen::mix(seed.wrapping_add(t.children)) & ((1 << 44) - 1);
            rng = gen::mix(rng);
            // One child in four is killed at a random point of its first ~1.5 s.
            let kill_at = rng
                .is_multiple_of(4)
                .then(|| now + ((rng >> 8) % 1_500_000_000) as i64);
            match spawn_child(&ramdisk, &slot.counter, child_seed, n) {
                Ok(child) => {
                    slot.live = Some(Live {
                        child,
                        seed: child_seed,
                        calls: n,
                        started: now,
                        kill_at,
                        killed: false,
                    });
                    t.inflight += n;
                    t.children += 1;
                }
                // Memory pressure from a live child: try again once it is gone.
                Err(SpawnFail::NoMemory) if slots_busy(&t) => t.spawn_retries += 1,
                Err(SpawnFail::NoMemory) => {
                    return fail("spawn: out of memory with no child alive")
                }
                Err(SpawnFail::Other(e)) => return fail(e),
            }
        }
        if t.inflight == 0 && t.done >= calls {
            break;
        }
        sleep_ms(thread, 5);
    }
    let (done, children, deaths) = (t.done, t.children, t.deaths);
    let ns = zx::clock_get_monotonic() - start;
    let after = match settled_stats(thread) {
        Ok(s) => s,
        Err(e) => {
            println!("fuzz: FAIL zx_debug_kernel_stats: {e:?} (seed {seed:#x})");
            return 1;
        }
    };
    let secs = ns / 1_000_000_000;
    let rate = if ns > 0 {
        done as i64 * 1_000_000_000 / ns
    } else {
        0
    };
    println!(
        "fuzz: calls {done} seconds {secs} seed {seed:#x} ({children} children, {deaths} died, {} killed, {rate} calls/s)",
        t.kills
    );
    const NAMES: [&str; 5] = [
        "free frames",
        "table pages",
        "kernel stacks",
        "handles",
        "processes",
    ];
    let mut ok = true;
    for (i, name) in NAMES.iter().enumerate() {
        if before[i] != after[i] {
            println!("fuzz: leak: {name}: {} -> {}", before[i], after[i]);
            ok = false;
        }
    }
    if after[kstats::INVARIANT_FAILURES] != 0 {
        println!(
            "fuzz: {} of {} address spaces fail their invariants",
            after[kstats::INVARIANT_FAILURES],
            after[kstats::ASPACES_CHECKED]
        );
        ok = false;
    }
    let longest = match zx::debug_irqoff_stats(false) {
        Ok(stretches) => {
            let (label, longest) = stretches
                .iter()
                .copied()
                .enumerate()
                .max_by_key(|&(_, ns)| ns)
                .unwrap_or((0, 0));
            println!(
                "fuzz: longest interrupts-off stretch {}.{:03} ms ({}, bound {} ms)",
                longest / 1_000_000,
                longest / 1000 % 1000,
                irqoff_label(label),
                IRQOFF_BOUND_NS / 1_000_000
            );
            longest
        }
        Err(e) => {
            println!("fuzz: FAIL zx_debug_irqoff_stats: {e:?} (seed {seed:#x})");
            return 1;
        }
    };
    if !ok {
        return fail("kernel state not back at baseline");
    }
    if longest >= IRQOFF_BOUND_NS {
        // Its own message: the harness tells a stretch over the bound from the other failures.
        return fail("interrupts off too long");
    }
    println!("fuzz: ok");
    0
}
