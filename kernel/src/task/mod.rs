//! Tasks: threads, processes and the scheduler.
//!
//! - [`thread`]: kernel stack, saved context, state, process back-reference;
//! - [`process`]: address space, handle table, threads, return code, signals, exact teardown;
//! - [`sched`]: round-robin preemptive scheduling on one CPU, blocking waits, thread exit;
//! - [`clock`]: ticks and the monotonic clock.
//!
//! Entry from arch: the timer IRQ ([`on_irq`]), every exception from user mode
//! ([`on_user_exception`]) and every system call ([`on_syscall`]) run on the current thread's
//! kernel stack; before any of them returns to ring 3 the thread checks whether it must die
//! ([`before_user_return`]).

pub mod clock;
pub mod process;
pub mod sched;
pub mod thread;

use alloc::sync::Arc;
use arch::trap::TrapFrame;
use thread::Thread;

/// Starts the scheduler on the boot context, installs the interrupt hooks, starts the timer and
/// calibrates the TSC. Call once after the heap and the kernel-stack region are up.
pub fn init(boot_stack_bottom: u64, boot_stack_top: u64) {
    sched::init(boot_stack_bottom, boot_stack_top);
    arch::trap::set_irq_hook(on_irq);
    arch::trap::set_user_exception_hook(on_user_exception);
    arch::irq::init();
    let rate = arch::irq::calibrate_tsc(sched::tick_counter(), 3);
    log::info!(
        "scheduler: PIT tick {} Hz, TSC {} MHz (measured)",
        arch::irq::TICK_HZ,
        rate / 1_000_000
    );
}

fn on_irq(irq: u8, frame: &mut TrapFrame) {
    if irq == 0 {
        sched::on_tick();
        if frame.from_user() {
            before_user_return();
        }
    }
}

fn on_user_exception(frame: &mut TrapFrame) {
    let (mnemonic, name) = arch::trap::exception_name(frame.vector);
    let t = sched::current();
    arch::println!(
        "kernel: user exception {} ({}) in thread {:?}: error code {:#x}, rip {:#x}; killing",
        mnemonic,
        name,
        t.name(),
        frame.error_code,
        frame.rip
    );
    drop(t);
    sched::exit_current();
}

/// Runs before every return to ring 3: a thread whose process is being killed dies here.
pub fn before_user_return() {
    let kill = sched::current().kill_requested();
    if kill {
        sched::exit_current();
    }
}

/// Spawns a kernel thread running `body`. `None` when out of memory.
pub fn spawn_kernel(name: &str, body: impl FnOnce() + Send + 'static) -> Option<Arc<Thread>> {
    let t = Thread::new(name, None, 0)?;
    t.prepare(
        sched::kernel_thread_start,
        &TrapFrame::zeroed(),
        Some(alloc::boxed::Box::new(body)),
    )
    .ok()?;
    sched::make_ready(&t);
    Some(t)
}

/// Blocks until `t` is dead.
pub fn join(t: &Arc<Thread>) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        while t.state() != thread::State::Dead {
            sched::block_current(u64::MAX);
        }
    });
}

mod ktests {
    use super::*;
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use ktest::{ensure, ensure_eq, ktest};

    ktest! {
        fn kernel_thread_runs_and_joins() {
            static RAN: AtomicBool = AtomicBool::new(false);
            let stacks = thread::live_stacks();
            let t = spawn_kernel("joinee", || RAN.store(true, Ordering::SeqCst))
                .ok_or_else(|| ktest::Failure::new("spawn".into(), file!(), line!()))?;
            join(&t);
            ensure!(RAN.load(Ordering::SeqCst));
            ensure_eq!(t.state(), thread::State::Dead);
            drop(t);
            ensure_eq!(thread::live_stacks(), stacks);
            Ok(())
        }
    }

    ktest! {
        fn preemption_lets_two_threads_progress() {
            static A: AtomicU64 = AtomicU64::new(0);
            static B: AtomicU64 = AtomicU64::new(0);
            static STOP: AtomicBool = AtomicBool::new(false);
            // Each spins in a preemptible section until it has seen the other make progress:
            // only preemption can let both finish (neither yields).
            fn spin(mine: &'static AtomicU64, other: &'static AtomicU64) {
                sched::preemptible(|| {
                    let seen = other.load(Ordering::SeqCst);
                    while !STOP.load(Ordering::SeqCst) {
                        mine.fetch_add(1, Ordering::SeqCst);
                        if other.load(Ordering::SeqCst) > seen + 1000 {
                            break;
                        }
                    }
                });
            }
            let switches = sched::switch_count();
            let a = spawn_kernel("spin-a", || spin(&A, &B)).ok_or_else(|| ktest::Failure::new("spawn".into(), file!(), line!()))?;
            let b = spawn_kernel("spin-b", || spin(&B, &A)).ok_or_else(|| ktest::Failure::new("spawn".into(), file!(), line!()))?;
            let start = sched::ticks();
            while (a.state() != thread::State::Dead || b.state() != thread::State::Dead)
                && sched::ticks() < start + 500
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
            let t0 = clock::now_ns();
            let t = spawn_kernel("sleeper", || {
                let deadline = clock::now_ns() + 30_000_000;
                while clock::now_ns() < deadline {
                    x86_64::instructions::interrupts::without_interrupts(|| sched::block_current(deadline));
                }
            }).ok_or_else(|| ktest::Failure::new("spawn".into(), file!(), line!()))?;
            join(&t);
            let dt = clock::now_ns() - t0;
            ensure!(dt >= 30_000_000, "woke after {dt} ns");
            Ok(())
        }
    }
}
