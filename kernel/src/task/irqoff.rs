//! Interrupts-off accounting: the longest stretch the kernel ran with interrupts disabled, per
//! syscall number and per other kernel path (indices in `abi::irqoff`), read and reset by
//! `zx_debug_irqoff_stats`.
//!
//! One stretch at a time per CPU (each CPU's label and start are its own; the maxima are
//! shared): [`begin`] starts it (syscall entry, a user page fault),
//! [`end`] closes it and records its TSC length under its label. A context switch closes the
//! running stretch ([`pause`], recorded as far as it went) and the thread that is switched back
//! to reopens its own ([`resume`]); so does a preemption point. Time spent switched away (other
//! threads, user code) therefore never counts: what counts is how long the kernel kept every
//! other thread off the CPU.

use core::sync::atomic::{AtomicU64, Ordering};

/// No stretch open.
const NONE: u64 = u64::MAX;

use arch::percpu::MAX_CPUS;

/// Each CPU's open stretch: its label and start (slot i is written by CPU i only).
static LABELS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(NONE) }; MAX_CPUS];
static STARTS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static MAX: [AtomicU64; abi::irqoff::COUNT] = [const { AtomicU64::new(0) }; abi::irqoff::COUNT];

/// The running CPU's label slot (interrupts are off wherever these functions run).
fn label() -> &'static AtomicU64 {
    &LABELS[arch::percpu::cpu_index()]
}

fn start() -> &'static AtomicU64 {
    &STARTS[arch::percpu::cpu_index()]
}

fn record(label: u64, now: u64) {
    if let Some(slot) = MAX.get(label as usize) {
        let len = now.saturating_sub(start().load(Ordering::Relaxed));
        slot.fetch_max(len, Ordering::Relaxed);
    }
}

/// Opens a stretch labelled `label` (a syscall number or an `abi::irqoff` path).
pub fn begin(label: usize) {
    start().store(arch::cpu::rdtsc(), Ordering::Relaxed);
    self::label().store(label as u64, Ordering::Relaxed);
}

/// Opens a stretch labelled `label` only when none is open (a fault inside a syscall counts
/// for the syscall). Returns whether it did, for [`end`].
pub fn begin_if_idle(label: usize) -> bool {
    if self::label().load(Ordering::Relaxed) != NONE {
        return false;
    }
    begin(label);
    true
}

/// Closes the open stretch (if any) and records it.
pub fn end() {
    let label = self::label().swap(NONE, Ordering::Relaxed);
    if label != NONE {
        record(label, arch::cpu::rdtsc());
    }
}

/// Closes the open stretch at a switch away or a preemption point; returns its label for
/// [`resume`] (an opaque value).
pub fn pause() -> u64 {
    let label = self::label().swap(NONE, Ordering::Relaxed);
    if label != NONE {
        record(label, arch::cpu::rdtsc());
    }
    label
}

/// Reopens the stretch [`pause`] closed, from now.
pub fn resume(label: u64) {
    start().store(arch::cpu::rdtsc(), Ordering::Relaxed);
    self::label().store(label, Ordering::Relaxed);
}

/// The longest stretches in nanoseconds, then zeroed when `reset`.
pub fn stats(reset: bool) -> [u64; abi::irqoff::COUNT] {
    let rate = u128::from(arch::irq::tsc_per_second().max(1));
    let mut out = [0; abi::irqoff::COUNT];
    for (o, slot) in out.iter_mut().zip(MAX.iter()) {
        let ticks = if reset {
            slot.swap(0, Ordering::Relaxed)
        } else {
            slot.load(Ordering::Relaxed)
        };
        *o = (u128::from(ticks) * 1_000_000_000 / rate) as u64;
    }
    out
}
