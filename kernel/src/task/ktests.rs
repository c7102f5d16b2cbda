//! ktests of threads, the scheduler, ring 3, user faults and process teardown.

use super::loader;
use super::process::{self, Process};
use super::*;
use abi::task::{ZX_TASK_RETCODE_EXCEPTION_KILL, ZX_TASK_RETCODE_SYSCALL_KILL};
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ktest::{ensure, ensure_eq, ktest, Failure};

fn fail(msg: String) -> Failure {
    Failure::new(msg, file!(), line!())
}

/// Starts ramdisk program `name` with `arg2`, mapped from the ramdisk VMO.
fn start(name: &str, arg2: u64) -> Result<Arc<Process>, Failure> {
    let (image, offset) = loader::program_entry(name)
        .ok_or_else(|| fail(format!("no program {name:?} in the ramdisk")))?;
    let vmo = loader::ramdisk_vmo().map_err(|s| fail(format!("ramdisk VMO: {s:?}")))?;
    loader::spawn(name, image, Some((vmo, offset)), None, 0, arg2)
        .map_err(|e| fail(format!("spawn {name}: {e}")))
}

/// Runs ramdisk program `name` with `arg2` to its end; returns its return code.
fn run(name: &str, arg2: u64) -> Result<i64, Failure> {
    let p = start(name, arg2)?;
    Ok(loader::wait_for_exit(&p))
}

/// `victim` cases (user/victim).
mod victim {
    pub const WRITE_READ_ONLY: u64 = 1;
    pub const EXECUTE_NX: u64 = 2;
    pub const TOUCH_UNMAPPED: u64 = 3;
    pub const LEAK: u64 = 5;
    pub const SPIN: u64 = 6;
    pub const READ_KERNEL: u64 = 9;
    pub const EXHAUST: u64 = 11;
    pub const DEBUG_MEMORY: u64 = 50;
}

ktest! {
    fn process_memory_calls_need_the_debugging_switch() {
        // `victim` writes and reads its own mapping through zx_process_write_memory /
        // read_memory: with the command line's `debug_syscalls` off (the default) both are
        // ACCESS_DENIED (it returns 1), with it on both work (it returns 0).
        let was = super::context::debugging_syscalls();
        super::context::set_debugging_syscalls(false);
        let off = run("victim", victim::DEBUG_MEMORY);
        super::context::set_debugging_syscalls(true);
        let on = run("victim", victim::DEBUG_MEMORY);
        super::context::set_debugging_syscalls(was);
        ensure_eq!(off?, 1);
        ensure_eq!(on?, 0);
        Ok(())
    }
}

ktest! {
    fn kernel_thread_runs_and_joins() {
        static RAN: AtomicBool = AtomicBool::new(false);
        // Earlier tests' exits are left by their CPUs first (their stacks go then).
        sched::settle_exits();
        let stacks = thread::live_stacks();
        let t = spawn_kernel("joinee", || RAN.store(true, Ordering::SeqCst))
            .ok_or_else(|| fail("spawn".into()))?;
        join(&t);
        ensure!(RAN.load(Ordering::SeqCst));
        ensure_eq!(t.state(), thread::State::Dead);
        drop(t);
        // The CPU that ran the thread frees its stack once it has switched away from it
        // (`sched::finish_switch`), which may be just after `join` saw it dead.
        sched::settle_exits();
        ensure_eq!(thread::live_stacks(), stacks);
        Ok(())
    }
}

ktest! {
    fn preemption_lets_two_threads_progress() {
        static A: AtomicU64 = AtomicU64::new(0);
        static B: AtomicU64 = AtomicU64::new(0);
        static STOP: AtomicBool = AtomicBool::new(false);
        // Each spins in a preemptible section until told to stop; neither ever yields, so both
        // counters growing (and this thread getting the CPU back) is the timer's doing.
        fn spin(mine: &'static AtomicU64) {
            sched::preemptible(|| {
                while !STOP.load(Ordering::SeqCst) {
                    mine.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let switches = sched::switch_count();
        let a = spawn_kernel("spin-a", || spin(&A)).ok_or_else(|| fail("spawn".into()))?;
        let b = spawn_kernel("spin-b", || spin(&B)).ok_or_else(|| fail("spawn".into()))?;
        let start = sched::ticks();
        while (A.load(Ordering::SeqCst) <= 1000 || B.load(Ordering::SeqCst) <= 1000)
            && sched::ticks() < start + 300
        {
            sched::preemptible(x86_64::instructions::hlt);
        }
        STOP.store(true, Ordering::SeqCst);
        join(&a);
        join(&b);
        ensure!(A.load(Ordering::SeqCst) > 1000 && B.load(Ordering::SeqCst) > 1000,
            "a={} b={}", A.load(Ordering::SeqCst), B.load(Ordering::SeqCst));
        ensure!(sched::switch_count() > switches + 3);
        Ok(())
    }
}

ktest! {
    fn blocked_thread_wakes_on_deadline() {
        // The sleeper blocks once until a deadline 30 ms away: one `block_current` call must
        // last until the deadline (a call that returned early would show as more calls), and
        // while it is blocked the CPU runs other threads: this thread counts loop rounds
        // meanwhile, and the sleeper sees the count move across its call (a `block_current`
        // that waited on the CPU, with interrupts off, would see it stand still).
        static CALLS: AtomicU64 = AtomicU64::new(0);
        static LATE_NS: AtomicU64 = AtomicU64::new(0);
        static ROUNDS: AtomicU64 = AtomicU64::new(0);
        static ROUNDS_WHILE_BLOCKED: AtomicU64 = AtomicU64::new(0);
        let switches = sched::switch_count();
        let t = spawn_kernel("sleeper", || {
            let deadline = clock::now_ns() + 30_000_000;
            while clock::now_ns() < deadline {
                CALLS.fetch_add(1, Ordering::SeqCst);
                let before = ROUNDS.load(Ordering::SeqCst);
                x86_64::instructions::interrupts::without_interrupts(|| sched::block_current(deadline, sched::wake_seq()));
                ROUNDS_WHILE_BLOCKED.fetch_add(ROUNDS.load(Ordering::SeqCst) - before, Ordering::SeqCst);
            }
            LATE_NS.store(clock::now_ns() - deadline, Ordering::SeqCst);
        }).ok_or_else(|| fail("spawn".into()))?;
        while t.state() != thread::State::Dead {
            ROUNDS.fetch_add(1, Ordering::SeqCst);
            // Interrupts on for an instant: the tick that wakes the sleeper can come.
            sched::preempt_point();
        }
        let calls = CALLS.load(Ordering::SeqCst);
        ensure!(calls == 1, "block_current returned before the deadline: {calls} calls");
        // Woken by the timer at the deadline (100 Hz ticks), not long after.
        let late = LATE_NS.load(Ordering::SeqCst);
        ensure!(late < 500_000_000, "woke {late} ns after the deadline");
        let rounds = ROUNDS_WHILE_BLOCKED.load(Ordering::SeqCst);
        ensure!(rounds > 0, "no other thread ran while the sleeper was blocked");
        ensure!(sched::switch_count() >= switches + 2, "the sleeper never left the CPU");
        Ok(())
    }
}

ktest! {
    fn user_program_round_trip() {
        // `child` maps, touches and unmaps a VMO through syscalls from ring 3, prints, and exits
        // with arg2: the return code proves the syscall round trip and the startup registers.
        ensure_eq!(run("child", 7)?, 7);
        ensure_eq!(run("child", 0)?, 0);
        Ok(())
    }
}

ktest! {
    fn user_faults_kill_only_that_process() {
        for case in [victim::WRITE_READ_ONLY, victim::EXECUTE_NX, victim::TOUCH_UNMAPPED, victim::READ_KERNEL] {
            let code = run("victim", case)?;
            ensure!(code == ZX_TASK_RETCODE_EXCEPTION_KILL, "victim case {case} returned {code}");
        }
        // The kernel keeps running processes afterwards.
        ensure_eq!(run("child", 5)?, 5);
        Ok(())
    }
}

ktest! {
    fn user_threads_are_preempted_and_killable() {
        // A process spinning forever in ring 3 does not stop another from running to its end
        // (timer preemption), and zx_task_kill semantics end it with SYSCALL_KILL.
        let spinner = start("victim", victim::SPIN)?;
        ensure_eq!(run("child", 9)?, 9);
        ensure_eq!(spinner.signals() & process::SIGNAL_TERMINATED, 0);
        spinner.kill(ZX_TASK_RETCODE_SYSCALL_KILL);
        ensure_eq!(loader::wait_for_exit(&spinner), ZX_TASK_RETCODE_SYSCALL_KILL);
        Ok(())
    }
}

ktest! {
    fn first_process_loader_maps_programs_from_the_ramdisk_vmo() {
        // The kernel's loader (what starts the first process): the program's read-only
        // segments (one executable) map the ramdisk VMO itself, without WRITE in their maximum
        // protection (a debugger's write makes a private copy); its data is another VMO.
        let rd = loader::ramdisk_vmo().map_err(|s| fail(format!("ramdisk VMO: {s:?}")))?;
        let spinner = start("victim", victim::SPIN)?;
        let maps: alloc::vec::Vec<_> = spinner
            .aspace()
            .ok_or_else(|| fail("no address space".into()))?
            .walk()
            .into_iter()
            .filter_map(|r| match r {
                vm::RegionInfo::Mapping {
                    perms,
                    max_perms,
                    vmo_id,
                    ..
                } => Some((perms, max_perms, vmo_id)),
                _ => None,
            })
            .collect();
        spinner.kill(ZX_TASK_RETCODE_SYSCALL_KILL);
        loader::wait_for_exit(&spinner);
        let shared: alloc::vec::Vec<_> = maps.iter().filter(|m| m.2 == rd.id()).collect();
        ensure!(shared.len() >= 2, "mappings of the ramdisk VMO: {shared:?} of {maps:?}");
        ensure!(shared.iter().any(|m| m.0.contains(vm::MmuFlags::EXECUTE)));
        ensure!(shared
            .iter()
            .all(|m| !m.1.contains(vm::MmuFlags::WRITE) && !m.0.contains(vm::MmuFlags::WRITE)));
        ensure!(maps
            .iter()
            .any(|m| m.2 != rd.id() && m.0.contains(vm::MmuFlags::WRITE)));
        Ok(())
    }
}

/// Free frames (with those the heap holds: not a leak), page-table pages, kernel stacks,
/// handles and processes, once every exited thread was left by its CPU.
fn counts() -> [u64; 5] {
    x86_64::instructions::interrupts::without_interrupts(sched::settle_exits);
    [
        crate::frame_alloc::stats().free + crate::heap::frames(),
        arch::paging::live_table_pages() as u64,
        thread::live_stacks(),
        syscalls::handle::live_handle_count() as u64,
        u64::from(process::live_processes()),
    ]
}

ktest! {
    fn teardown_is_exact() {
        // Warm up once (first-use allocations), then a leaky process (8 VMOs mapped, 128 pages
        // demand-faulted, handles and heap leaked) must give everything back.
        ensure_eq!(run("victim", victim::LEAK)?, 3);
        let before = counts();
        for _ in 0..2 {
            ensure_eq!(run("victim", victim::LEAK)?, 3);
        }
        ensure_eq!(run("victim", victim::WRITE_READ_ONLY)?, ZX_TASK_RETCODE_EXCEPTION_KILL);
        // Let the idle thread run so the last dead thread's stack is reaped; with several CPUs
        // the CPU that ran it reaps it (and drops the process) when it switches away, which
        // may come a little after the exit was seen here: wait up to 50 ticks for that.
        let mut after = counts();
        for _ in 0..50 {
            sched::yield_now();
            after = counts();
            if after == before {
                break;
            }
            let t = sched::ticks();
            sched::preemptible(|| while sched::ticks() == t {
                core::hint::spin_loop();
            });
        }
        ensure!(after == before,
            "[free frames, table pages, kernel stacks, handles, processes]: {before:?} -> {after:?}");
        Ok(())
    }
}

ktest! {
    fn start_rejects_kernel_and_non_canonical_entries() {
        use abi::Status;
        // A non-canonical entry would make the first iretq fault in ring 0: refused up front.
        let p = Process::create(b"bad-entry", None).map_err(|e| fail(format!("{e:?}")))?;
        let t = super::context::new_thread(&p, &p, b"t").map_err(|e| fail(format!("{e:?}")))?;
        for (entry, stack) in [
            (0xdead_beef_0000_0000usize, 0x1000_0000usize),
            (0xffff_ffff_8000_0000, 0x1000_0000),
            (0x1000_0000, 0x8000_0000_0000_0000),
        ] {
            let start = syscalls::ProcessStart {
                entry,
                stack,
                arg1: 0,
                arg2: 0,
                process: 0,
                root_vmar: 0,
                thread: 0,
            };
            ensure_eq!(super::context::start_process(&p, &t, &start), Err(Status::ERR_INVALID_ARGS));
        }
        ensure_eq!(t.state(), thread::State::New);
        Ok(())
    }
}

/// `counts()` plus the heap's used bytes.
fn counts_with_heap() -> [u64; 6] {
    let [free, tables, stacks, handles, procs] = counts();
    [
        free,
        tables,
        stacks,
        handles,
        procs,
        crate::heap::usage().0 as u64,
    ]
}

ktest! {
    fn quotas_bound_a_process_and_teardown_is_exact() {
        // `victim` drives its handle, thread, region and memory quotas to their limits and checks
        // each status (returns the failing step otherwise). Warm up once, then a second run must
        // give back every frame, heap byte, handle, stack and table page.
        ensure_eq!(run("victim", victim::EXHAUST)?, 0);
        sched::yield_now();
        let before = counts_with_heap();
        ensure_eq!(run("victim", victim::EXHAUST)?, 0);
        sched::yield_now();
        let after = counts_with_heap();
        ensure!(after == before,
            "[free+heap frames, table pages, kernel stacks, handles, processes, heap bytes]: \
             {before:?} -> {after:?}");
        Ok(())
    }
}

ktest! {
    fn regions_are_charged_to_the_owners_account_and_ancestors() {
        use abi::Status;
        use syscalls::account::{Account, Resource, RESOURCES};
        // A creator whose account has 20 regions: the new process gets half of that.
        let creator = Account::root([20; RESOURCES]);
        let p = Process::create(b"regions", Some(&creator)).map_err(|e| fail(format!("{e:?}")))?;
        ensure_eq!(p.account().limit(Resource::Regions), 10);
        let aspace = p.aspace().ok_or_else(|| fail("no address space".into()))?;
        let root = aspace.root_vmar();
        let vmo = vm::Vmo::create(arch::paging::phys_mem(), 4096, 0).map_err(|e| fail(format!("{e:?}")))?;
        let map = || root.map(abi::vm_options::ZX_VM_PERM_READ, 0, &vmo, 0, 4096, vm::ALL_RIGHTS, vm::ALL_RIGHTS);
        let mut maps = alloc::vec::Vec::new();
        let refused = loop {
            match map() {
                Ok(a) => maps.push(a),
                Err(e) => break e,
            }
        };
        // The root VMAR and nine mappings: the tenth is over the budget.
        ensure_eq!(refused, Status::ERR_NO_MEMORY);
        ensure_eq!(maps.len(), 9);
        ensure_eq!(p.account().usage(Resource::Regions), 10);
        ensure_eq!(creator.usage(Resource::Regions), 10);
        // An unmap gives one back, to both accounts; the map fits again.
        root.unmap(maps.pop().unwrap_or_default(), 4096, vm::ALL_RIGHTS).map_err(|e| fail(format!("{e:?}")))?;
        ensure_eq!((p.account().usage(Resource::Regions), creator.usage(Resource::Regions)), (9, 9));
        ensure!(map().is_ok(), "a map within the budget was refused");
        // The process's end gives back everything its address space held.
        drop(root);
        drop(aspace);
        p.teardown();
        drop(p);
        ensure_eq!(creator.usage(Resource::Regions), 0);
        Ok(())
    }
}

ktest! {
    fn low_memory_refuses_new_objects_and_recovers() {
        use abi::syscall_numbers::{ZX_SYS_HANDLE_CLOSE, ZX_SYS_VMO_CREATE, ZX_SYS_THREAD_CREATE};
        use abi::Status;
        let p = Process::create(b"low-memory", None).map_err(|e| fail(format!("{e:?}")))?;
        let args = [0u64; 8];
        ensure_eq!(quota::admit(&p, u64::from(ZX_SYS_VMO_CREATE), &args), Ok(()));
        // Take frames the way heap growth would (below the user limit) until memory is low.
        let mut taken = alloc::vec::Vec::with_capacity(crate::frame_alloc::stats().free as usize);
        while !crate::frame_alloc::low_memory() {
            match crate::frame_alloc::alloc() {
                Some(f) => taken.push(f),
                None => break,
            }
        }
        let user_frame = crate::frame_alloc::alloc_user();
        let create = quota::admit(&p, u64::from(ZX_SYS_VMO_CREATE), &args);
        let thread = quota::admit(&p, u64::from(ZX_SYS_THREAD_CREATE), &args);
        let close = quota::admit(&p, u64::from(ZX_SYS_HANDLE_CLOSE), &args);
        for f in taken.drain(..) {
            let _ = crate::frame_alloc::free(f);
        }
        ensure!(user_frame.is_none(), "a user frame was handed out from the kernel reserve");
        ensure_eq!(create, Err(Status::ERR_NO_MEMORY));
        ensure_eq!(thread, Err(Status::ERR_NO_MEMORY));
        ensure_eq!(close, Ok(()));
        ensure_eq!(quota::admit(&p, u64::from(ZX_SYS_VMO_CREATE), &args), Ok(()));
        Ok(())
    }
}

ktest! {
    fn fpu_state_is_per_thread() {
        // Two threads load different XMM0-15 and MXCSR values, then spin (preemptible, never
        // yielding) until each has seen the other run several times; their registers must
        // still hold their own values. The kernel is soft-float, so only the scheduler's
        // fxsave/fxrstor can keep them apart.
        static RUNS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
        static OK: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
        // How many times each thread saw the other run while holding its own values.
        static SEEN: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
        fn body(me: usize) {
            let mut mine = [0u128; 16];
            for (i, v) in mine.iter_mut().enumerate() {
                *v = (0x1111_2222_3333_4444_5555_6666_7777_8888u128 ^ ((me as u128 + 1) << 100))
                    .wrapping_mul(i as u128 + 3);
            }
            // Round toward zero for thread 1, down for thread 0: both with every exception masked.
            let mxcsr = 0x1f80 | if me == 0 { 0x2000 } else { 0x6000 };
            arch::fpu::load_xmm(&mine);
            arch::fpu::set_mxcsr(mxcsr);
            let other = 1 - me;
            let start = sched::ticks();
            let seen = RUNS[other].load(Ordering::SeqCst);
            sched::preemptible(|| {
                let mut last = seen;
                let mut switches = 0;
                while switches < 5 && sched::ticks() < start + 500 {
                    RUNS[me].fetch_add(1, Ordering::SeqCst);
                    let now = RUNS[other].load(Ordering::SeqCst);
                    if now != last {
                        switches += 1;
                        last = now;
                        // Let the other thread run for a whole slice before counting again.
                        let t = sched::ticks();
                        while sched::ticks() < t + 1 {
                            core::hint::spin_loop();
                        }
                    }
                }
                SEEN[me].store(switches, Ordering::SeqCst);
            });
            let mut got = [0u128; 16];
            arch::fpu::store_xmm(&mut got);
            let ok = got == mine && arch::fpu::mxcsr() == mxcsr;
            OK[me].store(if ok { 1 } else { 2 }, Ordering::SeqCst);
        }
        // With several CPUs the two would run side by side and never switch: one spinning
        // thread per other CPU keeps a thread waiting, so every CPU preempts and the two
        // migrate between CPUs (their registers must follow them).
        static STOP_HOGS: AtomicU64 = AtomicU64::new(0);
        STOP_HOGS.store(0, Ordering::SeqCst);
        let mut hogs = alloc::vec::Vec::new();
        for _ in 1..arch::percpu::online_count() {
            let hog = spawn_kernel("fpu-hog", || {
                sched::preemptible(|| {
                    while STOP_HOGS.load(Ordering::SeqCst) == 0 {
                        core::hint::spin_loop();
                    }
                })
            })
            .ok_or_else(|| fail("spawn".into()))?;
            hogs.push(hog);
        }
        let switches = sched::switch_count();
        let a = spawn_kernel("fpu-a", || body(0)).ok_or_else(|| fail("spawn".into()))?;
        let b = spawn_kernel("fpu-b", || body(1)).ok_or_else(|| fail("spawn".into()))?;
        join(&a);
        join(&b);
        STOP_HOGS.store(1, Ordering::SeqCst);
        for hog in &hogs {
            join(hog);
        }
        ensure!(sched::switch_count() > switches + 6, "too few switches to interleave");
        ensure!(RUNS[0].load(Ordering::SeqCst) > 0 && RUNS[1].load(Ordering::SeqCst) > 0);
        // Each thread saw the other run at least twice between loading and checking its
        // registers: the values survived interleaving, not just a run to completion.
        let seen = [SEEN[0].load(Ordering::SeqCst), SEEN[1].load(Ordering::SeqCst)];
        ensure!(seen[0] >= 2 && seen[1] >= 2, "interleavings seen by a and b: {seen:?}");
        ensure!(OK[0].load(Ordering::SeqCst) == 1, "thread a lost its XMM/MXCSR values");
        ensure!(OK[1].load(Ordering::SeqCst) == 1, "thread b lost its XMM/MXCSR values");
        Ok(())
    }
}

ktest! {
    fn run_queue_lock_contention_is_measured() {
        // Two yielding kernel threads per CPU for 200 ms: every yield takes the one scheduler
        // lock. Prints how often it was found taken and the mean wait (the measure of the one
        // run queue for all CPUs); fails only when nothing ran.
        static STOP: AtomicU64 = AtomicU64::new(0);
        static YIELDS: AtomicU64 = AtomicU64::new(0);
        STOP.store(0, Ordering::SeqCst);
        YIELDS.store(0, Ordering::SeqCst);
        let cpus = arch::percpu::online_count();
        let (l0, c0, w0) = sched::lock_stats();
        let mut threads = alloc::vec::Vec::new();
        for _ in 0..2 * cpus {
            let t = spawn_kernel("yielder", || {
                while STOP.load(Ordering::SeqCst) == 0 {
                    sched::yield_now();
                    YIELDS.fetch_add(1, Ordering::SeqCst);
                    // Kernel threads run with interrupts off: let the tick in (the main
                    // thread's deadline).
                    sched::preempt_point();
                }
            })
            .ok_or_else(|| fail("spawn".into()))?;
            threads.push(t);
        }
        let end = clock::now_ns() + 200_000_000;
        x86_64::instructions::interrupts::without_interrupts(|| {
            while clock::now_ns() < end {
                sched::block_current(end, sched::wake_seq());
            }
        });
        STOP.store(1, Ordering::SeqCst);
        for t in &threads {
            join(t);
        }
        let (l1, c1, w1) = sched::lock_stats();
        let (locks, contended, waited) = (l1 - l0, c1 - c0, w1 - w0);
        let per_us = (arch::irq::tsc_per_second() / 1_000_000).max(1);
        arch::println!(
            "sched lock: {cpus} CPUs, {} yields in 200 ms, {locks} acquisitions, {contended} \
             contended ({}.{}%), mean wait when contended {} ns",
            YIELDS.load(Ordering::SeqCst),
            contended * 100 / locks.max(1),
            contended * 1000 / locks.max(1) % 10,
            waited * 1000 / per_us / contended.max(1)
        );
        ensure!(YIELDS.load(Ordering::SeqCst) > 0, "no thread yielded");
        Ok(())
    }
}

ktest! {
    fn contended_lock_waits_halt_and_wake_on_release() {
        // Two kernel threads (on two CPUs when there are two) add to a counter that only the
        // lock protects, holding the lock ~50 us each time: the other one's wait outlasts
        // `lockwait::SPINS_BEFORE_HALT` attempts and halts until the release's IPI. Checks
        // mutual exclusion (no increment lost) and, with 2 or more CPUs, that waits halted and
        // that releases woke them (not only the next tick).
        use lock_order::{Class, OrderedMutex};
        const ROUNDS: u64 = 400;
        static LOCK: OrderedMutex<()> = OrderedMutex::new(Class::Vmo, ());
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        COUNTER.store(0, Ordering::SeqCst);
        let halts = lockwait::halts();
        let body = || {
            for _ in 0..ROUNDS {
                let g = LOCK.lock();
                // A read-modify-write split in two: a second holder would lose increments.
                let v = COUNTER.load(Ordering::SeqCst);
                let until = clock::now_ns() + 50_000;
                while clock::now_ns() < until {
                    core::hint::spin_loop();
                }
                COUNTER.store(v + 1, Ordering::SeqCst);
                drop(g);
                sched::preempt_point();
            }
        };
        let a = spawn_kernel("lock-a", body).ok_or_else(|| fail("spawn".into()))?;
        let b = spawn_kernel("lock-b", body).ok_or_else(|| fail("spawn".into()))?;
        join(&a);
        join(&b);
        let (halted, woken) = (lockwait::halts().0 - halts.0, lockwait::halts().1 - halts.1);
        arch::println!(
            "lock wait: {} CPUs, {halted} halted waits ({woken} woken by the release) in {} \
             acquisitions",
            arch::percpu::online_count(),
            2 * ROUNDS
        );
        ensure_eq!(COUNTER.load(Ordering::SeqCst), 2 * ROUNDS);
        if arch::percpu::online_count() >= 2 {
            ensure!(halted > 0, "no contended wait halted");
            ensure!(woken > 0, "no halted wait was ended by the holder's release");
        }
        Ok(())
    }
}
