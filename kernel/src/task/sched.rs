//! A round-robin preemptive scheduler for one CPU, with blocking waits.
//!
//! Rules:
//! - The kernel runs with interrupts disabled, except in the idle loop and in explicitly
//!   preemptible sections ([`preemptible`]) that hold no lock and do not allocate. User mode
//!   always runs with interrupts enabled. So the timer tick ([`on_tick`]) only ever preempts user
//!   code, the idle loop, or a preemptible section, and the scheduler lock is never contended.
//! - [`schedule`] picks the next `Ready` thread in FIFO order (the idle thread when there is
//!   none), records the outgoing thread as `prev`, points `TSS.rsp0`/per-CPU at the incoming
//!   thread's kernel stack, loads its process's page table (kernel threads keep whatever is
//!   loaded: the kernel half is the same everywhere), and switches stacks. The incoming thread
//!   first calls [`finish_switch`], which drops `prev` and, if it is dead, frees its kernel
//!   stack: a stack is freed only after the CPU has left it. Right before the stack switch the
//!   outgoing thread's x87/SSE registers are saved to its area and the incoming one's loaded
//!   (`arch::fpu`), so register values never cross threads or processes.
//! - Waiting: a thread marks itself `Blocked`, goes on the blocked list and calls [`schedule`].
//!   Any signal change calls [`wake_all`] (every blocked thread re-checks its condition: simple,
//!   and the lists are short); the tick wakes threads whose deadline passed.

use super::thread::{State, Thread};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use lock_order::{Class, OrderedMutex as Mutex};
use x86_64::instructions::interrupts;

struct Sched {
    current: Option<Arc<Thread>>,
    run_queue: VecDeque<Arc<Thread>>,
    blocked: Vec<Arc<Thread>>,
    idle: Option<Arc<Thread>>,
    /// The thread the CPU just left; taken by [`finish_switch`] on the incoming thread.
    prev: Option<Arc<Thread>>,
    /// The address space the switch replaced as current; dropped by [`finish_switch`].
    prev_aspace: Option<crate::mm::UserAspace>,
    switches: u64,
}

static SCHED: Mutex<Sched> = Mutex::new(
    Class::Sched,
    Sched {
        current: None,
        run_queue: VecDeque::new(),
        blocked: Vec::new(),
        idle: None,
        prev: None,
        prev_aspace: None,
        switches: 0,
    },
);

static TICKS: AtomicU64 = AtomicU64::new(0);

fn locked<R>(f: impl FnOnce(&mut Sched) -> R) -> R {
    interrupts::without_interrupts(|| f(&mut sched_lock()))
}

/// The scheduler's lock. One CPU runs the kernel with interrupts off, so the lock can only be
/// taken already by the code this CPU interrupted or called from: a re-entry, which is a
/// kernel bug reported at once instead of a silent spin (with several CPUs this becomes a
/// plain lock). The check runs in builds with debug assertions (`cargo run`, `cargo test`),
/// like the lock-order checker: under TCG it costs about 15 ns of every system call, which
/// the release build (the one measured against Linux) does not pay.
fn sched_lock() -> lock_order::OrderedGuard<'static, Sched> {
    if cfg!(debug_assertions) && SCHED.is_locked() {
        reentered();
    }
    SCHED.lock()
}

#[cold]
#[inline(never)]
fn reentered() -> ! {
    panic!("scheduler re-entered: its lock is held by the code this CPU is running")
}

/// Makes the running boot context the first thread and creates the idle thread. Call once,
/// with the boot stack's range.
pub fn init(boot_stack_bottom: u64, boot_stack_top: u64) {
    let boot = Thread::boot(boot_stack_bottom, boot_stack_top);
    arch::percpu::set_kernel_stack(boot_stack_top, boot_stack_top - boot_stack_bottom);
    let idle = Thread::new("idle", None, 0, None).expect("no memory for the idle thread");
    let user = arch::trap::TrapFrame::zeroed();
    idle.prepare(
        kernel_thread_start,
        &user,
        Some(alloc::boxed::Box::new(idle_loop)),
    )
    .expect("idle thread");
    idle.set_state(State::Ready);
    locked(|s| {
        s.current = Some(boot);
        s.idle = Some(idle);
    });
}

fn idle_loop() {
    loop {
        // Channel endpoints a thread's exit left to free (see `syscalls::channel::drain_pending`).
        syscalls::channel::drain_pending(preempt_point);
        interrupts::enable_and_hlt();
        interrupts::disable();
        if locked(|s| !s.run_queue.is_empty()) {
            schedule();
        }
    }
}

/// Entry of every new kernel thread (and of the idle thread).
pub(super) extern "C" fn kernel_thread_start(_: u64) {
    finish_switch();
    let body = current().take_kernel_entry();
    if let Some(body) = body {
        body();
    }
    exit_current();
}

/// Entry of every new user thread: returns into the iretq path with its user frame.
pub(super) extern "C" fn user_thread_start(_: u64) {
    finish_switch();
    super::before_user_return();
}

/// The running thread.
pub fn current() -> Arc<Thread> {
    locked(|s| s.current.clone()).expect("scheduler not initialized")
}

/// Calls back into the scheduler while holding its lock (`mode=crash what=sched_reentry`): the
/// re-entry panics, naming it, instead of spinning.
pub fn reenter_for_selftest() {
    locked(|_| drop(current()));
}

/// Timer ticks since [`arch::irq::init`].
pub fn ticks() -> u64 {
    TICKS.load(Ordering::SeqCst)
}

/// The tick counter (for TSC calibration).
pub fn tick_counter() -> &'static AtomicU64 {
    &TICKS
}

/// Context switches so far.
pub fn switch_count() -> u64 {
    locked(|s| s.switches)
}

/// Makes `t` runnable (from `New` or `Blocked`); a no-op otherwise.
pub fn make_ready(t: &Arc<Thread>) {
    locked(|s| {
        match t.state() {
            State::New => {}
            State::Blocked => s.blocked.retain(|b| !Arc::ptr_eq(b, t)),
            _ => return,
        }
        t.set_state(State::Ready);
        s.run_queue.push_back(t.clone());
    });
}

/// Wakes every blocked thread (each re-checks what it waits for).
pub fn wake_all() {
    locked(|s| {
        for t in s.blocked.drain(..) {
            t.set_state(State::Ready);
            s.run_queue.push_back(t);
        }
    });
}

/// Blocks the running thread until [`wake_all`], [`make_ready`] or `deadline_ns` (monotonic;
/// `u64::MAX` = none). Returns after it ran again. Interrupts must be disabled.
pub fn block_current(deadline_ns: u64) {
    locked(|s| {
        let cur = s.current.clone().expect("no current thread");
        cur.deadline.store(deadline_ns, Ordering::SeqCst);
        cur.set_state(State::Blocked);
        s.blocked.push(cur);
    });
    schedule();
}

/// The timer tick (IRQ 0): counts, wakes expired sleepers, and preempts the running thread when
/// another is ready (round robin, one tick per slice).
pub fn on_tick() {
    TICKS.fetch_add(1, Ordering::SeqCst);
    let now = super::clock::now_ns();
    let preempt = locked(|s| {
        let mut i = 0;
        while i < s.blocked.len() {
            if s.blocked[i].deadline.load(Ordering::SeqCst) <= now {
                let t = s.blocked.swap_remove(i);
                t.set_state(State::Ready);
                s.run_queue.push_back(t);
            } else {
                i += 1;
            }
        }
        !s.run_queue.is_empty()
    });
    if preempt {
        schedule();
    }
}

/// Runs `f` with interrupts enabled, so the timer may preempt it. `f` must not take locks the
/// scheduler or other threads take, nor allocate (the heap lock is one).
pub fn preemptible<R>(f: impl FnOnce() -> R) -> R {
    let was = interrupts::are_enabled();
    interrupts::enable();
    let r = f();
    if !was {
        interrupts::disable();
    }
    r
}

/// A preemption point for long kernel work: if the timer tick is pending, lets it run (and
/// switch to the next ready thread); returns when the caller runs again. The interrupts-off
/// stretch is closed here and reopened after. The caller must hold no lock (spin locks are
/// never held across a switch) and re-validate whatever another thread may have changed.
pub fn preempt_point() {
    let stretch = super::irqoff::pause();
    // `sti` takes effect after the next instruction: the pause gives a pending IRQ its window.
    preemptible(core::hint::spin_loop);
    super::irqoff::resume(stretch);
}

/// Gives up the CPU to the next ready thread, if any (the caller stays ready).
pub fn yield_now() {
    interrupts::without_interrupts(schedule);
}

/// Switches to the next thread. Interrupts must be disabled. Returns when the caller runs again
/// (immediately if it is still `Running` and nothing else is ready). The thread switch
/// (`arch::context::switch`) is the one unsafe call of the task module.
#[allow(unsafe_code)]
pub fn schedule() {
    debug_assert!(!interrupts::are_enabled());
    let switch = {
        let mut s = sched_lock();
        let cur = s.current.clone().expect("scheduler not initialized");
        let idle = s.idle.clone().expect("no idle thread");
        let mut next = None;
        while let Some(t) = s.run_queue.pop_front() {
            if t.state() == State::Ready {
                next = Some(t);
                break;
            }
        }
        let next = match next {
            Some(n) => n,
            None if cur.state() == State::Running => return,
            None => idle.clone(),
        };
        if Arc::ptr_eq(&next, &cur) {
            cur.set_state(State::Running);
            return;
        }
        if cur.state() == State::Running {
            cur.set_state(State::Ready);
            if !Arc::ptr_eq(&cur, &idle) {
                s.run_queue.push_back(cur.clone());
            }
        }
        next.set_state(State::Running);
        let (bottom, top) = next.stack_range();
        arch::percpu::set_kernel_stack(top, top - bottom);
        if let Some(p) = next.process() {
            if let Some(old) = p.activate() {
                s.prev_aspace = Some(old);
            }
        }
        s.switches += 1;
        // x87/SSE: the kernel never touches these registers, so the outgoing thread's user
        // values are still in them (see arch::fpu).
        cur.fpu.lock().save();
        next.fpu.lock().restore();
        let save = cur.saved_rsp.as_ptr();
        let load = next.saved_rsp.load(Ordering::SeqCst);
        debug_assert!(s.prev.is_none());
        s.prev = Some(cur);
        s.current = Some(next);
        (save, load)
    };
    let stretch = super::irqoff::pause();
    // SAFETY: interrupts are disabled; `save` points into the outgoing thread, kept alive by
    // `prev` (and then by whichever list holds it) while it is suspended; `load` is the RSP the
    // incoming thread saved (or its prepared first frame), and its stack stays mapped while it
    // is `current`. rsp0/per-CPU and CR3 are set for it above.
    unsafe { arch::context::switch(switch.0, switch.1) };
    super::irqoff::resume(stretch);
    finish_switch();
}

/// Runs first on the incoming side of every switch: drops the outgoing thread's reference and
/// frees its stack if it died.
pub(super) fn finish_switch() {
    let (prev, prev_aspace) = {
        let mut s = sched_lock();
        (s.prev.take(), s.prev_aspace.take())
    };
    drop(prev_aspace);
    if let Some(p) = prev {
        if p.state() == State::Dead {
            p.release_stack();
        }
        drop(p);
    }
}

/// Ends the running thread: marks it dead, tells its process, and switches away for good.
pub fn exit_current() -> ! {
    interrupts::disable();
    super::irqoff::begin_if_idle(abi::irqoff::TEARDOWN);
    {
        let cur = current();
        // Its exception channel's kernel end goes (the user end sees PEER_CLOSED).
        cur.exception_port().shutdown();
        cur.set_state(State::Dead);
        if let Some(p) = cur.process() {
            p.thread_exited(&cur);
        }
    }
    wake_all();
    schedule();
    unreachable!("a dead thread was scheduled again");
}
