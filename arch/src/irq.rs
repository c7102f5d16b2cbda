//! Hardware interrupts: the legacy 8259 PIC pair remapped to vectors 32..=47 and the PIT
//! (8253/8254 channel 0) as the periodic scheduler tick.
//!
//! Why the PIT and not the LAPIC timer: it needs no calibration and no MMIO mapping, and QEMU's
//! TCG emulates it exactly; one CPU needs nothing more. Only IRQ 0 is unmasked.
//!
//! EOI rules: the EOI is sent before the hook runs (the hook may switch threads and not come
//! back for a while); a spurious IRQ 7 (master) gets no EOI, a spurious IRQ 15 (slave) gets an
//! EOI at the master only ([`acknowledge`]).

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;

/// The IRQ number the interrupt hook gets for a local APIC timer tick (the tick of every CPU
/// but the boot CPU, which has the PIT's IRQ 0).
pub const IRQ_LAPIC_TIMER: u8 = 0x80;
/// The IRQ number the interrupt hook gets for a reschedule IPI ([`crate::apic::RESCHED_VECTOR`]).
pub const IRQ_RESCHED: u8 = 0x81;

/// Vector of IRQ 0.
pub const IRQ_BASE: u8 = 32;
/// Timer interrupts per second.
pub const TICK_HZ: u64 = 100;
const PIT_HZ: u64 = 1_193_182;

const PIC1_CMD: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_CMD: u16 = 0xa0;
const PIC2_DATA: u16 = 0xa1;

static TSC_PER_SECOND: AtomicU64 = AtomicU64::new(0);

fn outb(port: u16, value: u8) {
    // SAFETY: callers only write the PIC and PIT ports, which this module owns.
    unsafe { Port::new(port).write(value) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: reading the PIC's command port (ISR/IRR) has no side effects beyond the read.
    unsafe { Port::new(port).read() }
}

/// Remaps the PICs to 32..=47 with everything masked but IRQ 0, and starts the PIT at
/// [`TICK_HZ`]. Interrupts stay disabled (the caller enables them where it wants ticks).
pub fn init() {
    // ICW1: init + ICW4 needed; ICW2: vector offsets; ICW3: cascade on IRQ 2; ICW4: 8086 mode.
    outb(PIC1_CMD, 0x11);
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, IRQ_BASE);
    outb(PIC2_DATA, IRQ_BASE + 8);
    outb(PIC1_DATA, 4);
    outb(PIC2_DATA, 2);
    outb(PIC1_DATA, 1);
    outb(PIC2_DATA, 1);
    outb(PIC1_DATA, 0xfe);
    outb(PIC2_DATA, 0xff);
    // PIT channel 0, lobyte/hibyte, mode 2 (rate generator).
    let divisor = (PIT_HZ / TICK_HZ) as u16;
    outb(0x43, 0x34);
    outb(0x40, divisor as u8);
    outb(0x40, (divisor >> 8) as u8);
}

fn isr_has(cmd_port: u16, bit: u8) -> bool {
    outb(cmd_port, 0x0b); // OCW3: read the in-service register.
    inb(cmd_port) & (1 << bit) != 0
}

/// Acknowledges IRQ `irq` at the PIC(s). Returns false for a spurious interrupt (nothing to
/// handle).
pub fn acknowledge(irq: u8) -> bool {
    if irq == 7 && !isr_has(PIC1_CMD, 7) {
        return false;
    }
    if irq == 15 && !isr_has(PIC2_CMD, 7) {
        outb(PIC1_CMD, 0x20);
        return false;
    }
    if irq >= 8 {
        outb(PIC2_CMD, 0x20);
    }
    outb(PIC1_CMD, 0x20);
    true
}

/// Measures the TSC rate against `ticks` (a counter the timer hook increments): waits for a
/// tick edge, then counts TSC cycles over `n` ticks. Enables interrupts while it waits and
/// disables them again. Call once, after the timer hook is installed.
pub fn calibrate_tsc(ticks: &AtomicU64, n: u64) -> u64 {
    let wait_edge = || {
        let t = ticks.load(Ordering::SeqCst);
        while ticks.load(Ordering::SeqCst) == t {
            x86_64::instructions::interrupts::enable_and_hlt();
            x86_64::instructions::interrupts::disable();
        }
    };
    wait_edge();
    let t0 = crate::cpu::rdtsc();
    for _ in 0..n {
        wait_edge();
    }
    let cycles = crate::cpu::rdtsc() - t0;
    let per_second = (cycles * TICK_HZ / n).max(1);
    TSC_PER_SECOND.store(per_second, Ordering::SeqCst);
    per_second
}

/// TSC cycles per second measured by [`calibrate_tsc`] (0 before).
pub fn tsc_per_second() -> u64 {
    TSC_PER_SECOND.load(Ordering::SeqCst)
}
