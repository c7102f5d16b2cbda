//! TLB shootdown: making the other CPUs forget translations this CPU removed or restricted.
//!
//! This module owns the one shootdown request of the machine and its protocol:
//!
//! 1. The sender (interrupts off) takes the request slot. While the slot is taken by another
//!    CPU it answers requests addressed to itself ([`poll`]), so two senders never wait for
//!    each other.
//! 2. It writes the range (a page range, or "everything"), then the set of target CPUs
//!    (`PENDING`, one bit per CPU), and sends one [`crate::apic::TLB_VECTOR`] IPI to each
//!    target.
//! 3. Each target, in the IPI handler or in [`poll`] (called by every spin on a kernel lock and
//!    every wait of this module), reads the range, invalidates it (one `invlpg` per page up to
//!    `vm::arch_traits::FLUSH_ALL_THRESHOLD_PAGES`, a CR3 reload beyond, the same rule as a local
//!    flush), and only then clears its bit.
//! 4. The sender spins until no bit is left, then releases the slot and returns. Only then may
//!    its caller free the frames or page-table pages the old translations pointed at.
//!
//! A target flushes even when it no longer has the address space loaded (its CR3 changed
//! since the sender read the mask): a CR3 load already dropped the entries, and the extra flush
//! is harmless. A CPU that loads the address space after the sender read the mask walks the
//! tables the sender already changed (the mask bit is set before CR3 is loaded, see
//! `kernel::mm::switch_aspace`).
//!
//! Deadlock freedom: a target that does not take the IPI has interrupts off, so it is running
//! kernel code that either reaches a preemption point or a return (bounded work), or spins on a
//! lock; every checked lock's spin calls [`poll`] (`lock_order::set_cpu_hooks`), and so does the
//! wait for the request slot. The sender holds no leaf lock (leaf locks are never held across a
//! shootdown).

use crate::percpu::{self, MAX_CPUS};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What a shootdown invalidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `pages` pages from `start` (page aligned).
    Pages {
        /// First page's address.
        start: u64,
        /// Number of pages.
        pages: u64,
    },
    /// Every non-global translation (a CR3 reload).
    All,
}

/// The request slot: taken by one sender at a time.
static SLOT: spin::Mutex<()> = spin::Mutex::new(());
/// The request's first page and page count (0 pages: everything).
static START: AtomicU64 = AtomicU64::new(0);
static PAGES: AtomicU64 = AtomicU64::new(0);
/// CPUs that must still flush for the current request.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// When set, [`shootdown`] sends nothing (the test switch that shows the shootdown tests fail
/// without it).
static DISABLED: AtomicBool = AtomicBool::new(false);

static SENT: AtomicU64 = AtomicU64::new(0);
static IPIS: AtomicU64 = AtomicU64::new(0);

fn flush_local(start: u64, pages: u64) {
    let threshold = vm::arch_traits::FLUSH_ALL_THRESHOLD_PAGES as u64;
    if pages == 0 || pages > threshold {
        crate::paging::flush_all_local();
    } else {
        for i in 0..pages {
            crate::paging::invlpg(start + i * 4096);
        }
    }
}

/// Answers the current request if it names this CPU. Call with interrupts off (the IPI
/// handler, every lock spin).
pub fn poll() {
    // Nothing pending (always so before the first shootdown): one load.
    let pending = PENDING.load(Ordering::Acquire);
    if pending == 0 {
        return;
    }
    let bit = 1u64 << percpu::cpu_index();
    if pending & bit == 0 {
        return;
    }
    let (start, pages) = (START.load(Ordering::Acquire), PAGES.load(Ordering::Acquire));
    flush_local(start, pages);
    PENDING.fetch_and(!bit, Ordering::AcqRel);
}

/// What a CPU spinning on a plain spin lock (`lock_order::SpinMutex`) runs between two attempts
/// (`lock_order::set_spin_hook`): [`poll`] when interrupts are off, as the checked locks' spins
/// do. Without it, a holder waiting for a shootdown while another CPU spins on its lock (or on
/// a lock whose holder waits for it) never gets that CPU's acknowledgement. With interrupts on
/// it does nothing: the IPI gets through, and the spinner could be moved to another CPU between
/// reading its index and clearing the bit.
pub fn answer_shootdowns() {
    if !x86_64::instructions::interrupts::are_enabled() {
        poll();
    }
}

/// Invalidates `scope` on every CPU of `targets` other than this one, and returns once each
/// has done it (see the module docs). One IPI per target. This CPU's own TLB is the caller's.
/// Interrupts must be off; the caller holds no leaf lock.
pub fn shootdown(targets: u64, scope: Scope) {
    let online = percpu::online_mask();
    if online & online.wrapping_sub(1) == 0 {
        return; // One CPU: nobody else to tell.
    }
    let me = 1u64 << percpu::cpu_index();
    let targets = targets & !me & online;
    if targets == 0 || DISABLED.load(Ordering::Relaxed) {
        return;
    }
    let slot = loop {
        if let Some(g) = SLOT.try_lock() {
            break g;
        }
        poll();
        core::hint::spin_loop();
    };
    let (start, pages) = match scope {
        Scope::Pages { start, pages } => (start, pages.max(1)),
        Scope::All => (0, 0),
    };
    START.store(start, Ordering::Release);
    PAGES.store(pages, Ordering::Release);
    PENDING.store(targets, Ordering::SeqCst);
    for cpu in (0..MAX_CPUS).filter(|&i| targets & (1 << i) != 0) {
        crate::apic::send_fixed(percpu::apic_id(cpu), crate::apic::TLB_VECTOR);
        IPIS.fetch_add(1, Ordering::Relaxed);
    }
    while PENDING.load(Ordering::Acquire) != 0 {
        core::hint::spin_loop();
    }
    SENT.fetch_add(1, Ordering::Relaxed);
    drop(slot);
}

/// Invalidates `scope` in the kernel half on every CPU (this one included): kernel stacks and
/// heap pages being unmapped. Interrupts must be off.
pub fn shootdown_kernel(scope: Scope) {
    match scope {
        // Locally one `invlpg` per page whatever the count: a CR3 reload would also drop every
        // user translation of the running thread (the heap frees large blocks often).
        Scope::Pages { start, pages } => {
            for i in 0..pages {
                crate::paging::invlpg(start + i * 4096);
            }
        }
        Scope::All => flush_local(0, 0),
    }
    shootdown(u64::MAX, scope);
}

/// `(shootdowns sent, IPIs sent)` so far, all CPUs.
pub fn stats() -> (u64, u64) {
    (SENT.load(Ordering::Relaxed), IPIS.load(Ordering::Relaxed))
}

/// Turns the shootdown IPI off (`true`) or on again: only for showing that the shootdown tests
/// detect its absence (the kernel command line's `no_shootdown=1`).
pub fn set_disabled(off: bool) {
    DISABLED.store(off, Ordering::SeqCst);
}
