//! Tasks: threads, processes and the scheduler.
//!
//! - [`thread`]: kernel stack, saved context, state, process back-reference;
//! - [`process`]: address space, handle table, threads, return code, signals, exact teardown;
//! - [`sched`]: round-robin preemptive scheduling on every CPU, blocking waits, thread exit;
//! - [`clock`]: ticks and the monotonic clock;
//! - [`syscall`]: the SYSCALL handler;
//! - [`context`]: `syscalls::SyscallContext` for the calling thread;
//! - [`exception`]: unresolved user faults: exception channels, then the kill;
//! - [`quota`]: per-process quotas and low-memory admission of system calls;
//! - [`loader`]: the first user program from the ramdisk;
//! - [`lockwait`]: how a CPU waits for a contended kernel lock (spin, then halt until released);
//! - [`random`]: seeds for ASLR and handle values.
//!
//! Entry from arch: the timer IRQ ([`on_irq`]), every exception from user mode
//! ([`exception::on_user_fault`]) and every system call ([`syscall::on_syscall`]) run on the current thread's
//! kernel stack; before any of them returns to ring 3 the thread checks whether it must die
//! ([`before_user_return`]).

pub mod clock;
pub mod context;
pub mod exception;
pub mod irqoff;
pub mod loader;
pub mod lockwait;
pub mod process;
pub mod quota;
pub mod random;
pub mod sched;
pub mod syscall;
pub mod thread;

use alloc::sync::Arc;
use arch::trap::TrapFrame;
use thread::Thread;

/// Starts the scheduler on the boot context, installs the interrupt, user-fault and SYSCALL
/// hooks, starts the timer and calibrates the TSC. Call once after the heap, paging and the
/// kernel-stack region are up. `seed` replays ASLR layouts and handle values.
pub fn init(boot_stack_bottom: u64, boot_stack_top: u64, seed: Option<u64>) {
    let seed = random::init(seed);
    log::info!("random seed {seed:#x} (replay with seed={seed})");
    sched::init(boot_stack_bottom, boot_stack_top);
    arch::trap::set_irq_hook(on_irq);
    arch::smp::set_ap_entry(sched::ap_entry);
    arch::trap::set_user_exception_hook(exception::on_user_fault);
    syscalls::channel::set_wake_hook(sched::wake_all);
    vm::set_child_gone_hook(sched::wake_all);
    arch::syscall::init(syscall::on_syscall);
    arch::irq::init();
    let rate = arch::irq::calibrate_tsc(sched::tick_counter(), 3);
    log::info!(
        "scheduler: PIT tick {} Hz, TSC {} MHz (measured)",
        arch::irq::TICK_HZ,
        rate / 1_000_000
    );
}

fn on_irq(irq: u8, frame: &mut TrapFrame) {
    match irq {
        0 => sched::on_tick(true),
        arch::irq::IRQ_LAPIC_TIMER => sched::on_tick(false),
        // The reschedule IPI: a thread was made ready (an idle CPU looks at the queue when its
        // `hlt` ends) or the running thread must die (it does below).
        arch::irq::IRQ_RESCHED => {}
        _ => return,
    }
    if frame.from_user() {
        before_user_return();
    }
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
    let t = Thread::new(name, None, 0, None)?;
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
    x86_64::instructions::interrupts::without_interrupts(|| loop {
        let seen = sched::wake_seq();
        if t.state() == thread::State::Dead {
            break;
        }
        sched::block_current(u64::MAX, seen);
    });
}

mod ktests;
