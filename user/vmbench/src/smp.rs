//! The SMP figures of `vmbench` (issue 15, acceptance 4), run when the ramdisk arguments say
//! how many CPUs to use (`smp=N`, N > 1; boot with `cargo run -- --smp N`):
//!
//! - `unmap_shootdown_{k}cpus`, k = 0..N-1: the cost of one `zx_vmar_unmap` of a written page
//!   while k threads of this process spin on other CPUs (reading another page of the same address
//!   space), so the unmap must reach k other CPUs' TLBs; k = 0 is the local-only cost.
//! - `map_fault_unmap_threads_{w}` and `map_fault_unmap_procs_{w}`, w = 1, 2, 4 (up to N): `w`
//!   workers each map one page of their own VMO, write it (a fault) and unmap it, in a loop for a
//!   fixed time, as threads of this process (one shared address space) or as `w` processes
//!   (separate address spaces: vmbench started again as a worker); printed as ns per operation of
//!   all workers together (lower is better: `w` workers on `w` CPUs ideally divide it by `w`).

use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};

use abi::signals::{ZX_CHANNEL_READABLE, ZX_PROCESS_TERMINATED};
use alloc::vec::Vec;
use zx::bootfs::Ramdisk;
use zx::rt::Startup;
use zx::{Channel, Handle, Process, Thread, Vmar, Vmo};

use crate::{now, report, Bench, PAGE, RW};

/// `arg2` of a vmbench started as a worker process.
pub const WORKER: u64 = 0x766d_626e_6377_726b;
/// How long each throughput figure runs (ns).
const RUN_NS: i64 = 200_000_000;
const STACK: usize = 16 * PAGE;
const MAX_THREADS: usize = 8;

static GO: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicU64 = AtomicU64::new(0);
static RUNNING: AtomicU64 = AtomicU64::new(0);
static DEADLINE: AtomicI64 = AtomicI64::new(0);
static COUNTS: [AtomicU64; MAX_THREADS] = [const { AtomicU64::new(0) }; MAX_THREADS];

/// Maps, writes and unmaps one page of a VMO of its own until `deadline`; the operations done.
fn map_fault_unmap(root: &Vmar, deadline: i64) -> u64 {
    let Ok(vmo) = Vmo::create(PAGE as u64, 0) else {
        return 0;
    };
    let mut n = 0;
    while now() < deadline {
        for _ in 0..16 {
            let Ok(a) = root.map(RW, 0, &vmo, 0, PAGE) else {
                return n;
            };
            // SAFETY: `a` maps one writable page nothing else references.
            unsafe { core::ptr::write_volatile(a as *mut u8, 1) };
            // SAFETY: the mapping just made.
            if unsafe { root.unmap(a, PAGE) }.is_err() {
                return n;
            }
            n += 1;
        }
    }
    n
}

/// A worker thread: waits for `GO`, runs [`map_fault_unmap`] until `DEADLINE`, stores its
/// count in `COUNTS[slot]`.
extern "C" fn thread_worker(root: usize, slot: usize) -> ! {
    // The root VMAR handle stays owned by the main thread.
    let root = ManuallyDrop::new(Vmar::from(Handle::from_raw(root as u32)));
    RUNNING.fetch_add(1, SeqCst);
    while GO.load(SeqCst) == 0 {
        core::hint::spin_loop();
    }
    let n = map_fault_unmap(&root, DEADLINE.load(SeqCst));
    COUNTS[slot].store(n, SeqCst);
    Thread::exit()
}

/// A spinner thread: reads the page at `addr` until `STOP`.
extern "C" fn spinner(addr: usize, _: usize) -> ! {
    RUNNING.fetch_add(1, SeqCst);
    while STOP.load(SeqCst) == 0 {
        // SAFETY: `addr` is a readable page the main thread keeps mapped until every spinner
        // is done.
        core::hint::black_box(unsafe { core::ptr::read_volatile(addr as *const u8) });
    }
    Thread::exit()
}

/// The threads started for one figure, with their stacks.
struct Threads<'a> {
    root: &'a Vmar,
    stacks: Vec<usize>,
    handles: Vec<Thread>,
}

impl<'a> Threads<'a> {
    fn start(
        process: &Process,
        root: &'a Vmar,
        count: usize,
        entry: extern "C" fn(usize, usize) -> !,
        arg1: usize,
    ) -> Result<Threads<'a>, abi::Status> {
        RUNNING.store(0, SeqCst);
        let mut t = Threads {
            root,
            stacks: Vec::new(),
            handles: Vec::new(),
        };
        for slot in 0..count {
            let vmo = Vmo::create(STACK as u64, 0)?;
            let stack = root.map(RW, 0, &vmo, 0, STACK)?;
            t.stacks.push(stack);
            let thread = Thread::create(process, b"vmbench-smp", 0)?;
            // SAFETY: the entry touches only statics, its own stack (mapped until `finish`)
            // and, for the spinner, a page the caller keeps mapped until then.
            unsafe { thread.start(entry as usize, stack + STACK - 8, arg1, slot)? };
            t.handles.push(thread);
        }
        while RUNNING.load(SeqCst) < count as u64 {
            core::hint::spin_loop();
        }
        Ok(t)
    }

    /// Waits (blocked, not spinning: the waiter must not take a CPU from the workers) for every
    /// thread to end, then unmaps the stacks.
    fn finish(self) {
        for h in &self.handles {
            let _ = h
                .handle()
                .wait_one(abi::signals::ZX_THREAD_TERMINATED, i64::MAX);
        }
        for &s in &self.stacks {
            // SAFETY: the thread that used the stack has terminated.
            let _ = unsafe { self.root.unmap(s, STACK) };
        }
    }
}

/// A worker process (`arg2` = [`WORKER`], `arg1` a channel): reads the duration, runs
/// [`map_fault_unmap`] that long, writes back the count.
pub fn worker_process(startup: Startup) -> i64 {
    let ch = Channel::from(startup.arg1);
    if ch.handle().wait_one(ZX_CHANNEL_READABLE, i64::MAX).is_err() {
        return 1;
    }
    let Ok((msg, _)) = ch.read() else {
        return 1;
    };
    let mut d = [0u8; 8];
    d.copy_from_slice(&msg[..8]);
    let n = map_fault_unmap(&startup.root_vmar, now() + i64::from_le_bytes(d));
    if ch.write(&n.to_le_bytes(), Vec::new()).is_err() {
        return 1;
    }
    0
}

/// Prints `name` as ns per operation of `total` operations in [`RUN_NS`].
fn report_rate(name: &str, total: u64) {
    let per = if total == 0 {
        -1
    } else {
        RUN_NS / total as i64
    };
    report(name, &[per]);
}

/// The SMP figures (see the module docs) for `cpus` CPUs.
pub fn run(
    b: &Bench,
    process: &Process,
    root: &Vmar,
    ramdisk: Option<&Ramdisk>,
    cpus: usize,
) -> Result<(), abi::Status> {
    let cpus = cpus.min(MAX_THREADS);
    // Shootdown cost.
    let spin_vmo = Vmo::create(PAGE as u64, 0)?;
    let spin_page = root.map(RW | abi::vm_options::ZX_VM_MAP_RANGE, 0, &spin_vmo, 0, PAGE)?;
    let target = Vmo::create(PAGE as u64, 0)?;
    for k in 0..cpus {
        STOP.store(0, SeqCst);
        let spinners = Threads::start(process, root, k, spinner, spin_page)?;
        let iterations = 200;
        b.run(
            &alloc::format!("unmap_shootdown_{k}cpus"),
            iterations,
            || {
                let mut total = 0;
                for _ in 0..iterations {
                    let a = root.map(RW, 0, &target, 0, PAGE).expect("map");
                    // SAFETY: `a` maps one writable page nothing else references.
                    unsafe { core::ptr::write_volatile(a as *mut u8, 1) };
                    let t = now();
                    // SAFETY: the mapping just made.
                    unsafe { root.unmap(a, PAGE) }.expect("unmap");
                    total += now() - t;
                }
                total
            },
        );
        STOP.store(1, SeqCst);
        spinners.finish();
    }
    // SAFETY: every spinner is gone.
    unsafe { root.unmap(spin_page, PAGE)? };

    // Throughput, one address space.
    for w in [1usize, 2, 4].into_iter().filter(|&w| w <= cpus) {
        GO.store(0, SeqCst);
        let threads = Threads::start(
            process,
            root,
            w,
            thread_worker,
            root.handle().raw() as usize,
        )?;
        DEADLINE.store(now() + RUN_NS, SeqCst);
        GO.store(1, SeqCst);
        threads.finish();
        let total = COUNTS[..w].iter().map(|c| c.load(SeqCst)).sum();
        report_rate(&alloc::format!("map_fault_unmap_threads_{w}"), total);
    }
    // Throughput, separate address spaces.
    let Some(ramdisk) = ramdisk else {
        return Ok(());
    };
    for w in [1usize, 2, 4].into_iter().filter(|&w| w <= cpus) {
        let mut children = Vec::new();
        for _ in 0..w {
            let (ours, theirs) = Channel::create(0)?;
            let child = zx::process::spawn(ramdisk, "vmbench", theirs.into(), WORKER)
                .map_err(|_| abi::Status::ERR_INTERNAL)?;
            children.push((ours, child));
        }
        for (ch, _) in &children {
            ch.write(&RUN_NS.to_le_bytes(), Vec::new())?;
        }
        let mut total = 0;
        for (ch, child) in &children {
            ch.handle().wait_one(ZX_CHANNEL_READABLE, i64::MAX)?;
            let (msg, _) = ch.read()?;
            let mut n = [0u8; 8];
            n.copy_from_slice(&msg[..8]);
            total += u64::from_le_bytes(n);
            child
                .process
                .handle()
                .wait_one(ZX_PROCESS_TERMINATED, i64::MAX)?;
        }
        report_rate(&alloc::format!("map_fault_unmap_procs_{w}"), total);
    }
    Ok(())
}
