//! Waiting for a contended kernel lock (`lock_order`'s wait and release hooks).
//!
//! A CPU that finds an [`lock_order::OrderedMutex`] held first spins, answering TLB shootdowns
//! between attempts ([`arch::tlb::poll`]). After [`SPINS_BEFORE_HALT`] attempts it halts instead,
//! with interrupts on, until the holder's release sends it the reschedule IPI (or any other
//! interrupt arrives), then tries again. Halting gives the holder the physical CPU when the CPUs
//! are virtual CPUs sharing fewer host cores (QEMU on a 2-core machine): a spinning waiter would
//! keep the holder's virtual CPU off the host core for a host time slice, milliseconds for a
//! lock held microseconds. It also ends the waiter's interrupts-off stretch: the wait is not
//! work done with interrupts off.
//!
//! When a CPU may halt: only while waiting for a lock that no interrupt handler takes (the "irq"
//! column of `lock_order`'s table: `Sched`, `Heap`, `Frames`). Those three rank above every other
//! class, so a CPU waiting for another class holds none of them (the order, checked in test
//! builds), and an interrupt taken during the halt can take what it needs. Ticks during the halt
//! wake sleepers but never switch threads on this CPU ([`in_lock_wait`]): the waiter holds locks,
//! and no lock is held across a switch.
//!
//! No lost wake-up: the waiter publishes the lock's address in its slot, then (after a full
//! fence) checks the lock is still held, then halts with `sti; hlt` (an interrupt that arrives
//! between the two instructions ends the `hlt`). The releaser unlocks, then (after a full fence)
//! reads the slots. Of the two fenced store-then-load pairs at least one sees the other's store:
//! either the waiter sees the lock free and does not halt, or the releaser sees the slot and
//! sends the IPI.

use arch::percpu::{self, MAX_CPUS};
use core::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use lock_order::{Class, Waiting};
use x86_64::instructions::interrupts;

/// Attempts that only spin before a waiter halts (each ~0.1-1 us under TCG).
pub const SPINS_BEFORE_HALT: u32 = 64;

/// The lock each CPU halts for (0: none).
static WAITING_FOR: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Whether each CPU is inside a lock wait (its ticks must not switch threads).
static IN_WAIT: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// How many CPUs are halted for some lock (the release hook's fast path reads only this).
static HALTED: AtomicUsize = AtomicUsize::new(0);
/// Halts so far (all CPUs), for tests and diagnostics.
static HALTS: AtomicUsize = AtomicUsize::new(0);
/// Lock waits a release ended (it claimed the waiter's slot and sent the IPI).
static WOKEN_BY_RELEASE: AtomicUsize = AtomicUsize::new(0);

/// Classes an interrupt handler takes: waiting for one, or holding one, never halts.
fn taken_by_interrupts(c: Class) -> bool {
    matches!(c, Class::Sched | Class::Heap | Class::Frames)
}

/// `lock_order`'s wait hook: answer shootdowns, then spin or halt (see the module docs).
pub fn wait(w: &Waiting<'_>) {
    arch::tlb::poll();
    if w.attempts < SPINS_BEFORE_HALT || taken_by_interrupts(w.class) {
        return;
    }
    if percpu::online_mask().count_ones() < 2 {
        return; // One CPU: the holder is an interrupted context of this CPU, it cannot run.
    }
    let cpu = percpu::cpu_index();
    IN_WAIT[cpu].store(true, Ordering::SeqCst);
    WAITING_FOR[cpu].store(w.lock, Ordering::SeqCst);
    HALTED.fetch_add(1, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    if (w.still_held)() {
        HALTS.fetch_add(1, Ordering::Relaxed);
        let stretch = super::irqoff::pause();
        interrupts::enable_and_hlt();
        interrupts::disable();
        super::irqoff::resume(stretch);
    }
    // A release that claimed the slot (and sent the IPI) left it 0.
    if WAITING_FOR[cpu].swap(0, Ordering::SeqCst) == 0 {
        WOKEN_BY_RELEASE.fetch_add(1, Ordering::Relaxed);
    }
    HALTED.fetch_sub(1, Ordering::SeqCst);
    IN_WAIT[cpu].store(false, Ordering::SeqCst);
    // A shootdown request may have come with the interrupts: answered at the next attempt's poll.
}

/// `lock_order`'s release hook: wakes the CPUs halted for `lock`.
pub fn released(lock: usize) {
    fence(Ordering::SeqCst);
    if HALTED.load(Ordering::SeqCst) == 0 {
        return;
    }
    let me = percpu::cpu_index();
    let online = percpu::online_mask();
    for (cpu, slot) in WAITING_FOR.iter().enumerate() {
        // Claiming the slot first sends one IPI per wait, however many releases see it.
        if cpu != me
            && online & (1 << cpu) != 0
            && slot
                .compare_exchange(lock, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            arch::apic::send_fixed(percpu::apic_id(cpu), arch::apic::RESCHED_VECTOR);
        }
    }
}

/// Whether this CPU is waiting for a lock with interrupts on (a tick must not switch threads).
pub fn in_lock_wait() -> bool {
    IN_WAIT[percpu::cpu_index()].load(Ordering::SeqCst)
}

/// Lock waits that halted so far, and those a release woke, on all CPUs.
pub fn halts() -> (usize, usize) {
    (
        HALTS.load(Ordering::Relaxed),
        WOKEN_BY_RELEASE.load(Ordering::Relaxed),
    )
}
