//! A round-robin preemptive scheduler for every CPU: one run queue and one blocked list behind
//! one lock ([`Class::Sched`]), an idle thread per CPU, blocking waits.
//!
//! Rules:
//! - The kernel runs with interrupts disabled, except in the idle loop and in explicitly
//!   preemptible sections ([`preemptible`]) that hold no lock and do not allocate. User mode
//!   always runs with interrupts enabled. So a timer tick ([`on_tick`]: the PIT on the boot CPU,
//!   the local APIC timer on the others) only ever preempts user code, the idle loop, or a
//!   preemptible section, and no lock is held across a switch.
//! - Per CPU (a slot only its CPU touches): the running thread, the idle thread, and the thread
//!   and address space the last switch left ([`finish_switch`] drops them on the incoming side).
//! - [`schedule`] takes the first `Ready` thread of the queue that no CPU is still running on
//!   (the idle thread when there is none), points `TSS.rsp0`/per-CPU at its kernel stack, loads
//!   its process's page table (the idle thread loads the kernel's; other kernel threads keep
//!   whatever is loaded: the kernel half is the same everywhere), and switches stacks.
//! - Handing a thread between CPUs: a thread's `saved_rsp` is 0 while a CPU runs on its stack;
//!   the switch away writes it as its last store on that stack (after the thread's x87/SSE
//!   registers were saved to its area). A thread can be queued (`Ready`) while its old CPU is
//!   still switching away from it (preempted, or woken right after it blocked); [`schedule`]
//!   skips such a thread (it stays queued) and takes the saved value under the lock when it
//!   picks one, so exactly one CPU resumes it, after its last CPU left its stack. A dead
//!   thread's stack is freed by the CPU that left it, in [`finish_switch`].
//! - Waiting: a thread reads [`wake_seq`], checks its condition, and calls [`block_current`]
//!   with the value read: it marks itself `Blocked` and goes on the blocked list unless a wake-up
//!   happened since (then it returns at once and re-checks), so a wake-up on another CPU
//!   between the check and the block is never lost. Any signal change calls [`wake_all`] (every
//!   blocked thread re-checks its condition: simple, and the lists are short); ticks wake
//!   threads whose deadline passed.
//! - Waking other CPUs: a thread made ready while some CPU idles sends the reschedule IPI to the
//!   idle CPUs; a kill of a thread running on another CPU sends it there ([`kick_thread`]), so the
//!   thread enters the kernel and dies at its next return towards ring 3.

use super::thread::{State, Thread};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use arch::percpu::{self, MAX_CPUS};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use lock_order::{Class, OrderedMutex as Mutex};
use x86_64::instructions::interrupts;

struct Sched {
    run_queue: VecDeque<Arc<Thread>>,
    blocked: Vec<Arc<Thread>>,
    switches: u64,
}

static SCHED: Mutex<Sched> = Mutex::new(
    Class::Sched,
    Sched {
        run_queue: VecDeque::new(),
        blocked: Vec::new(),
        switches: 0,
    },
);

/// One CPU's scheduler state; slot i is locked only by CPU i, with interrupts off (a leaf,
/// never contended).
struct Local {
    current: Option<Arc<Thread>>,
    idle: Option<Arc<Thread>>,
    /// The thread the CPU just left; taken by [`finish_switch`] on the incoming thread.
    prev: Option<Arc<Thread>>,
    /// The address space the switch replaced as current; dropped by [`finish_switch`].
    prev_aspace: Option<crate::mm::UserAspace>,
}

static LOCAL: [spin::Mutex<Local>; MAX_CPUS] = [const {
    spin::Mutex::new(Local {
        current: None,
        idle: None,
        prev: None,
        prev_aspace: None,
    })
}; MAX_CPUS];

static TICKS: AtomicU64 = AtomicU64::new(0);
/// Wake-ups so far (see [`block_current`]); changed under the scheduler lock.
static WAKES: AtomicU64 = AtomicU64::new(0);
/// CPUs in their idle loop, about to halt or halted (bit i: CPU i).
static IDLE_CPUS: AtomicU64 = AtomicU64::new(0);
/// The CPU index + 1 of the scheduler lock's holder (0: free), for the re-entry check.
static OWNER: AtomicUsize = AtomicUsize::new(0);

fn local() -> spin::MutexGuard<'static, Local> {
    LOCAL[percpu::cpu_index()].lock()
}

fn locked<R>(f: impl FnOnce(&mut Sched) -> R) -> R {
    interrupts::without_interrupts(|| f(&mut sched_lock()))
}

/// The scheduler lock's guard: records its holder's CPU for the re-entry check.
struct SchedGuard(lock_order::OrderedGuard<'static, Sched>);

impl core::ops::Deref for SchedGuard {
    type Target = Sched;
    fn deref(&self) -> &Sched {
        &self.0
    }
}

impl core::ops::DerefMut for SchedGuard {
    fn deref_mut(&mut self) -> &mut Sched {
        &mut self.0
    }
}

impl Drop for SchedGuard {
    fn drop(&mut self) {
        OWNER.store(0, Ordering::Relaxed);
    }
}

/// The scheduler's lock (interrupts must be off). Taking it again on the CPU that holds it is a
/// kernel bug (the code this CPU interrupted or called from holds it), reported at once instead
/// of a silent spin. The check runs in builds with debug assertions (`cargo run`, `cargo
/// test`), like the lock-order checker: under TCG it costs about 15 ns of every system call,
/// which the release build (the one measured against Linux) does not pay.
fn sched_lock() -> SchedGuard {
    let me = percpu::cpu_index() + 1;
    if cfg!(debug_assertions) && OWNER.load(Ordering::Relaxed) == me {
        reentered();
    }
    LOCKS.fetch_add(1, Ordering::Relaxed);
    let g = match SCHED.try_lock() {
        Some(g) => g,
        None => {
            let t0 = arch::cpu::rdtsc();
            let g = SCHED.lock();
            CONTENDED.fetch_add(1, Ordering::Relaxed);
            WAITED.fetch_add(arch::cpu::rdtsc() - t0, Ordering::Relaxed);
            g
        }
    };
    OWNER.store(me, Ordering::Relaxed);
    SchedGuard(g)
}

/// Acquisitions of the scheduler lock, those that found it taken, and the TSC cycles spent
/// waiting for it (the measure of the one run queue).
static LOCKS: AtomicU64 = AtomicU64::new(0);
static CONTENDED: AtomicU64 = AtomicU64::new(0);
static WAITED: AtomicU64 = AtomicU64::new(0);

/// `(acquisitions, contended, TSC cycles waited)` of the scheduler lock so far.
pub fn lock_stats() -> (u64, u64, u64) {
    (
        LOCKS.load(Ordering::Relaxed),
        CONTENDED.load(Ordering::Relaxed),
        WAITED.load(Ordering::Relaxed),
    )
}

#[cold]
#[inline(never)]
fn reentered() -> ! {
    panic!("scheduler re-entered: its lock is held by the code this CPU is running")
}

/// Makes the running boot context the first thread and creates the boot CPU's idle thread.
/// Call once, on the boot CPU, with the boot stack's range.
pub fn init(boot_stack_bottom: u64, boot_stack_top: u64) {
    let boot = Thread::boot("boot", boot_stack_bottom, boot_stack_top);
    arch::percpu::set_kernel_stack(boot_stack_top, boot_stack_top - boot_stack_bottom);
    let idle = Thread::new("idle", None, 0, None).expect("no memory for the idle thread");
    let user = arch::trap::TrapFrame::zeroed();
    idle.prepare(
        kernel_thread_start,
        &user,
        Some(alloc::boxed::Box::new(|| idle_loop())),
    )
    .expect("idle thread");
    idle.set_state(State::Ready);
    interrupts::without_interrupts(|| {
        let mut l = local();
        l.current = Some(boot);
        l.idle = Some(idle);
    });
}

/// An application processor's entry once it is online (`arch::smp::set_ap_entry`): its boot
/// context becomes its idle thread, its local APIC timer starts ticking, and it schedules.
pub fn ap_entry(stack_bottom: u64, stack_top: u64) -> ! {
    interrupts::disable();
    let idle = Thread::boot("idle", stack_bottom, stack_top);
    {
        let mut l = local();
        l.current = Some(idle.clone());
        l.idle = Some(idle);
    }
    arch::apic::start_timer(arch::irq::TICK_HZ);
    idle_loop()
}

fn idle_loop() -> ! {
    let bit = 1u64 << percpu::cpu_index();
    loop {
        // Channel endpoints a thread's exit left to free (see `syscalls::channel::drain_pending`).
        syscalls::channel::drain_pending(preempt_point);
        interrupts::disable();
        IDLE_CPUS.fetch_or(bit, Ordering::SeqCst);
        if locked(|s| !s.run_queue.is_empty()) {
            IDLE_CPUS.fetch_and(!bit, Ordering::SeqCst);
            schedule();
            continue;
        }
        // A wake-up after the check sends the reschedule IPI, pending until `sti`, which ends
        // the `hlt` at once.
        interrupts::enable_and_hlt();
        interrupts::disable();
        IDLE_CPUS.fetch_and(!bit, Ordering::SeqCst);
    }
}

/// Sends the reschedule IPI to the idle CPUs other than this one (at most `n` of them).
fn kick_idle(n: usize) {
    if n == 0 {
        return;
    }
    let me = percpu::cpu_index();
    let idle = IDLE_CPUS.load(Ordering::SeqCst) & !(1u64 << me);
    for cpu in (0..MAX_CPUS).filter(|&c| idle & (1 << c) != 0).take(n) {
        interrupts::without_interrupts(|| {
            arch::apic::send_fixed(percpu::apic_id(cpu), arch::apic::RESCHED_VECTOR)
        });
    }
}

/// Makes `t` enter the kernel soon if it runs on another CPU (a reschedule IPI): it notices a
/// kill at its return towards ring 3.
pub fn kick_thread(t: &Thread) {
    if t.state() != State::Running {
        return;
    }
    let cpu = t.cpu.load(Ordering::SeqCst);
    interrupts::without_interrupts(|| {
        if cpu != percpu::cpu_index() && percpu::online(cpu) {
            arch::apic::send_fixed(percpu::apic_id(cpu), arch::apic::RESCHED_VECTOR);
        }
    });
}

/// Entry of every new kernel thread (and of the boot CPU's idle thread).
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
    interrupts::without_interrupts(|| local().current.clone()).expect("scheduler not initialized")
}

/// Calls back into the scheduler while holding its lock (`mode=crash what=sched_reentry`): the
/// re-entry panics, naming it, instead of spinning.
pub fn reenter_for_selftest() {
    locked(|_| locked(|_| ()));
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
    let queued = locked(|s| {
        match t.state() {
            State::New => {}
            State::Blocked => s.blocked.retain(|b| !Arc::ptr_eq(b, t)),
            _ => return false,
        }
        WAKES.fetch_add(1, Ordering::SeqCst);
        t.set_state(State::Ready);
        s.run_queue.push_back(t.clone());
        true
    });
    kick_idle(usize::from(queued));
}

/// Wakes every blocked thread (each re-checks what it waits for).
pub fn wake_all() {
    let woken = locked(|s| {
        WAKES.fetch_add(1, Ordering::SeqCst);
        let n = s.blocked.len();
        for t in s.blocked.drain(..) {
            t.set_state(State::Ready);
            s.run_queue.push_back(t);
        }
        n
    });
    kick_idle(woken);
}

/// The wake-up count to pass to [`block_current`]: read it before checking the condition.
pub fn wake_seq() -> u64 {
    WAKES.load(Ordering::SeqCst)
}

/// Blocks the running thread until [`wake_all`], [`make_ready`] or `deadline_ns` (monotonic;
/// `u64::MAX` = none), unless a wake-up happened since [`wake_seq`] returned `seen` (then it
/// returns at once). Returns after it ran again. Interrupts must be disabled.
pub fn block_current(deadline_ns: u64, seen: u64) {
    let blocked = locked(|s| {
        if WAKES.load(Ordering::SeqCst) != seen {
            return false;
        }
        let cur = current();
        cur.deadline.store(deadline_ns, Ordering::SeqCst);
        cur.set_state(State::Blocked);
        s.blocked.push(cur);
        true
    });
    if blocked {
        schedule();
    }
}

/// A timer tick (the PIT's IRQ 0 on the boot CPU, which also counts [`ticks`]; the local APIC
/// timer on the others): wakes expired sleepers, and preempts the running thread when another
/// is ready (round robin, one tick per slice).
pub fn on_tick(counts: bool) {
    if counts {
        TICKS.fetch_add(1, Ordering::SeqCst);
    }
    let now = super::clock::now_ns();
    let (preempt, woken) = locked(|s| {
        let mut i = 0;
        let mut woken = 0;
        while i < s.blocked.len() {
            if s.blocked[i].deadline.load(Ordering::SeqCst) <= now {
                let t = s.blocked.swap_remove(i);
                t.set_state(State::Ready);
                s.run_queue.push_back(t);
                woken += 1;
            } else {
                i += 1;
            }
        }
        if woken > 0 {
            WAKES.fetch_add(1, Ordering::SeqCst);
        }
        (!s.run_queue.is_empty(), woken)
    });
    kick_idle(woken);
    // A CPU halted in a lock wait holds locks: it is never switched away from.
    if preempt && !super::lockwait::in_lock_wait() {
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
    let cpu = percpu::cpu_index();
    let (cur, idle) = {
        let l = local();
        (
            l.current.clone().expect("scheduler not initialized"),
            l.idle.clone().expect("no idle thread"),
        )
    };
    let (next, load) = {
        let mut s = sched_lock();
        let mut next = None;
        // Ready threads another CPU is still leaving stay queued, in order.
        let mut busy = 0;
        let len = s.run_queue.len();
        for _ in 0..len {
            let Some(t) = s.run_queue.pop_front() else {
                break;
            };
            if t.state() != State::Ready {
                continue;
            }
            if Arc::ptr_eq(&t, &cur) || t.saved_rsp.load(Ordering::SeqCst) != 0 {
                next = Some(t);
                break;
            }
            s.run_queue.push_back(t);
            busy += 1;
        }
        // Put the skipped ones back at the front, in their order.
        for _ in 0..busy {
            if let Some(t) = s.run_queue.pop_back() {
                s.run_queue.push_front(t);
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
        s.switches += 1;
        // This CPU now owns `next`'s stack: no other CPU can pick it (saved_rsp is 0).
        let load = next.saved_rsp.swap(0, Ordering::SeqCst);
        (next, load)
    };
    debug_assert!(
        load != 0,
        "a thread was resumed without a saved stack pointer"
    );
    next.cpu.store(cpu, Ordering::SeqCst);
    let (bottom, top) = next.stack_range();
    arch::percpu::set_kernel_stack(top, top - bottom);
    let old_aspace = match next.process() {
        Some(p) => p.activate(),
        // The idle thread leaves the user address space, so a CPU only keeps one loaded (and
        // receives its shootdowns) while it runs its threads.
        None if Arc::ptr_eq(&next, &idle) => crate::mm::switch_aspace(None),
        None => None,
    };
    // x87/SSE: the kernel never touches these registers, so the outgoing thread's user values
    // are still in them (see arch::fpu).
    cur.fpu.lock().save();
    next.fpu.lock().restore();
    let save = cur.saved_rsp.as_ptr();
    {
        let mut l = local();
        debug_assert!(l.prev.is_none());
        l.prev = Some(cur);
        l.prev_aspace = old_aspace;
        l.current = Some(next);
    }
    let stretch = super::irqoff::pause();
    // SAFETY: interrupts are disabled; `save` points into the outgoing thread, kept alive by
    // this CPU's `prev` (and then by whichever list holds it) while it is suspended; no other
    // CPU resumes it before the switch stored its RSP there (saved_rsp is 0 until then). `load`
    // is the RSP the incoming thread saved (or its prepared first frame), taken under the
    // scheduler lock by this CPU alone, and its stack stays mapped while it is `current`.
    // rsp0/per-CPU and CR3 are set for it above.
    unsafe { arch::context::switch(save, load) };
    super::irqoff::resume(stretch);
    finish_switch();
}

/// Runs first on the incoming side of every switch: drops the outgoing thread's reference and
/// the replaced address space, and frees the outgoing thread's stack if it died (this CPU has
/// left it).
pub(super) fn finish_switch() {
    let (prev, prev_aspace) = {
        let mut l = local();
        (l.prev.take(), l.prev_aspace.take())
    };
    drop(prev_aspace);
    if let Some(p) = prev {
        let dead = p.state() == State::Dead;
        if dead {
            p.release_stack();
        }
        drop(p);
        if dead {
            EXITING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Threads marked dead whose CPU has not yet left them (their stack and the references their
/// CPU holds go in [`finish_switch`]).
static EXITING: AtomicU64 = AtomicU64::new(0);

/// Waits (preemption points, up to one second) until every thread that exited has been left by
/// its CPU, so counters of stacks, threads and processes include every exit already signalled.
/// The caller holds no lock.
pub fn settle_exits() {
    let per_ms = (arch::irq::tsc_per_second() / 1000).max(1);
    let end = arch::cpu::rdtsc() + per_ms * 1000;
    while EXITING.load(Ordering::SeqCst) != 0 && arch::cpu::rdtsc() < end {
        interrupts::without_interrupts(preempt_point);
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
        // The last thread out empties the address space while it can still be preempted.
        if let Some(p) = cur.process() {
            p.empty_before_exit(&cur, &mut preempt_point);
        }
        EXITING.fetch_add(1, Ordering::SeqCst);
        cur.set_state(State::Dead);
        if let Some(p) = cur.process() {
            p.thread_exited(&cur);
        }
    }
    wake_all();
    schedule();
    unreachable!("a dead thread was scheduled again");
}
