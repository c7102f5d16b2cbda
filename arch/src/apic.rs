//! The local APIC of each CPU: enabling it, its id, inter-processor interrupts (INIT, STARTUP,
//! fixed) and EOI.
//!
//! Mode: x2APIC (registers as MSRs `0x800 + offset / 16`, 32-bit ids, a single 64-bit ICR write)
//! when CPUID.1:ECX.x2APIC says the CPU has it, otherwise xAPIC (4 KiB of MMIO at the base in
//! `IA32_APIC_BASE`, reached through the bootloader's physical-memory mapping, which covers the
//! first 4 GiB; 8-bit ids). The boot CPU picks the mode in [`init_boot`]; every other CPU uses the
//! same one ([`init_ap`]). QEMU 7.2's TCG does not offer x2APIC (its `qemu64` model and
//! `-cpu max` have no x2APIC bit), so the runs we test use xAPIC.
//!
//! Enabling the APIC here sets the spurious-interrupt vector register (software enable,
//! [`SPURIOUS_VECTOR`]) and nothing else: the LVT entries the firmware set up stay as they are,
//! so the boot CPU still receives the 8259 PIC through LINT0 (virtual-wire mode) and the
//! application processors (whose LVTs are masked after INIT) receive only IPIs.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use x86_64::registers::model_specific::Msr;

/// Vector of the ping IPI: the handler counts it in the per-CPU data (a liveness check of the
/// application processors, see [`send_ping`]).
pub const PING_VECTOR: u8 = 0xf0;
/// Vector of spurious local-APIC interrupts (no handler work, no EOI).
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// Vector of the reschedule IPI: wakes an idle CPU for a thread put on the run queue, or makes a
/// CPU running a thread that was asked to die enter the kernel (the scheduler's hook).
pub const RESCHED_VECTOR: u8 = 0xf1;
/// Vector of the TLB shootdown IPI ([`crate::tlb`]).
pub const TLB_VECTOR: u8 = 0xf2;
/// Vector of the local APIC timer: the periodic tick of every application processor.
pub const TIMER_VECTOR: u8 = 0xf3;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;

const REG_ID: u32 = 0x20;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_TIMER_INITIAL: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
/// Divide configuration 0b1011: the timer counts at the bus clock (divide by 1).
const DIVIDE_BY_1: u32 = 0b1011;

const SVR_ENABLE: u32 = 1 << 8;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
const ICR_ASSERT: u32 = 1 << 14;
const ICR_INIT: u32 = 5 << 8;
const ICR_STARTUP: u32 = 6 << 8;

static X2APIC: AtomicBool = AtomicBool::new(false);
/// Virtual address of the xAPIC registers (0 in x2APIC mode or before [`init_boot`]).
static MMIO: AtomicU64 = AtomicU64::new(0);

/// Whether the CPU offers x2APIC (CPUID.1:ECX bit 21).
pub fn cpu_has_x2apic() -> bool {
    core::arch::x86_64::__cpuid(1).ecx & (1 << 21) != 0
}

/// Whether the kernel drives the local APICs in x2APIC mode.
pub fn x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

fn read(reg: u32) -> u32 {
    if x2apic() {
        // SAFETY: x2APIC mode is on for this CPU (`enable`), so the MSR exists; reading an APIC
        // register has no side effect.
        unsafe { Msr::new(0x800 + (reg >> 4)).read() as u32 }
    } else {
        let base = MMIO.load(Ordering::Relaxed);
        assert!(base != 0, "local APIC used before apic::init_boot");
        // SAFETY: `base` maps the xAPIC's 4 KiB register page (see `init_boot`); `reg` is one of
        // its aligned 32-bit registers.
        unsafe { core::ptr::read_volatile((base + u64::from(reg)) as *const u32) }
    }
}

fn write(reg: u32, value: u32) {
    if x2apic() {
        // SAFETY: x2APIC mode is on for this CPU; callers write only the registers this module
        // owns (TPR, EOI, SVR) with valid values.
        unsafe { Msr::new(0x800 + (reg >> 4)).write(u64::from(value)) }
    } else {
        let base = MMIO.load(Ordering::Relaxed);
        assert!(base != 0, "local APIC used before apic::init_boot");
        // SAFETY: as in `read`; callers write only registers this module owns.
        unsafe { core::ptr::write_volatile((base + u64::from(reg)) as *mut u32, value) }
    }
}

/// Turns this CPU's local APIC on in the chosen mode: hardware enable (and x2APIC) in
/// `IA32_APIC_BASE`, task priority 0, software enable with [`SPURIOUS_VECTOR`].
fn enable() {
    let mut base = Msr::new(IA32_APIC_BASE);
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU. Setting the enable bit (and EXTD when
    // the CPU has x2APIC) keeps the base address; going from xAPIC to x2APIC mode is the allowed
    // transition (never back).
    unsafe {
        let v = base.read();
        let want = v | APIC_BASE_ENABLE | if x2apic() { APIC_BASE_X2APIC } else { 0 };
        if want != v {
            base.write(want);
        }
    }
    write(REG_TPR, 0);
    write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
}

/// Brings up the boot CPU's local APIC: picks the mode, maps nothing new (the xAPIC page is
/// reached at `phys_offset + base`), enables it. Returns its id.
pub fn init_boot(phys_offset: u64) -> u32 {
    X2APIC.store(cpu_has_x2apic(), Ordering::SeqCst);
    if !x2apic() {
        // SAFETY: reading IA32_APIC_BASE has no side effect.
        let base = unsafe { Msr::new(IA32_APIC_BASE).read() } & 0x000f_ffff_ffff_f000;
        assert!(
            base < 0x1_0000_0000,
            "xAPIC base {base:#x} above the mapped 4 GiB"
        );
        MMIO.store(phys_offset + base, Ordering::SeqCst);
    }
    enable();
    id()
}

/// Brings up an application processor's local APIC in the boot CPU's mode. Returns its id.
pub fn init_ap() -> u32 {
    enable();
    id()
}

/// The running CPU's local APIC id.
pub fn id() -> u32 {
    if x2apic() {
        read(REG_ID)
    } else {
        read(REG_ID) >> 24
    }
}

/// Signals the end of an interrupt to this CPU's local APIC.
pub fn eoi() {
    write(REG_EOI, 0);
}

/// Sends an IPI with ICR low word `low` to the CPU with local APIC id `dest`; in xAPIC mode
/// waits until the APIC accepted it (delivery status idle). Interrupts must be off (the ICR is
/// written in two steps in xAPIC mode).
fn send(dest: u32, low: u32) {
    if x2apic() {
        // SAFETY: x2APIC mode: the ICR is one MSR, the destination its high half; the callers
        // build valid fixed / INIT / STARTUP commands.
        unsafe { Msr::new(0x830).write((u64::from(dest) << 32) | u64::from(low)) };
        return;
    }
    assert!(dest < 256, "xAPIC destination {dest} out of range");
    while read(REG_ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
        core::hint::spin_loop();
    }
    write(REG_ICR_HIGH, dest << 24);
    write(REG_ICR_LOW, low);
    while read(REG_ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
        core::hint::spin_loop();
    }
}

/// Sends an INIT IPI (assert, edge) to `dest`: the CPU resets and waits for a STARTUP IPI.
pub fn send_init(dest: u32) {
    send(dest, ICR_INIT | ICR_ASSERT);
}

/// Sends a STARTUP IPI to `dest`: a CPU waiting for one starts in real mode at physical address
/// `page << 12` (CS = `page << 8`, IP = 0).
pub fn send_startup(dest: u32, page: u8) {
    send(dest, ICR_STARTUP | ICR_ASSERT | u32::from(page));
}

/// Sends a fixed IPI with `vector` to `dest`. Interrupts must be off.
pub fn send_fixed(dest: u32, vector: u8) {
    send(dest, ICR_ASSERT | u32::from(vector));
}

/// Local APIC timer counts per second, measured by [`calibrate_timer`] (0 before).
static TIMER_HZ: AtomicU64 = AtomicU64::new(0);

/// Measures the running CPU's local APIC timer rate against the TSC over `ms` milliseconds (the
/// TSC must be calibrated) and records it for [`start_timer`]. Every CPU's timer runs at the
/// same bus clock. Leaves the timer stopped and masked.
pub fn calibrate_timer(ms: u64) -> u64 {
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(REG_TIMER_DIVIDE, DIVIDE_BY_1);
    let per_ms = (crate::irq::tsc_per_second() / 1000).max(1);
    write(REG_TIMER_INITIAL, u32::MAX);
    let t0 = crate::cpu::rdtsc();
    while crate::cpu::rdtsc() - t0 < per_ms * ms {
        core::hint::spin_loop();
    }
    let counted = u64::from(u32::MAX - read(REG_TIMER_CURRENT));
    write(REG_TIMER_INITIAL, 0);
    let hz = (counted * 1000 / ms.max(1)).max(1);
    TIMER_HZ.store(hz, Ordering::SeqCst);
    hz
}

/// Starts the running CPU's local APIC timer, periodic at `hz` interrupts per second on
/// [`TIMER_VECTOR`]. [`calibrate_timer`] must have run (on any CPU).
pub fn start_timer(hz: u64) {
    let rate = TIMER_HZ.load(Ordering::SeqCst);
    assert!(rate != 0, "local APIC timer started before calibrate_timer");
    let count = (rate / hz.max(1)).clamp(1, u64::from(u32::MAX)) as u32;
    write(REG_TIMER_DIVIDE, DIVIDE_BY_1);
    write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INITIAL, count);
}

/// Sends the ping IPI ([`PING_VECTOR`]) to `dest`.
pub fn send_ping(dest: u32) {
    send(dest, ICR_ASSERT | u32::from(PING_VECTOR));
}

/// The ping IPI's handler: counts it in this CPU's data and acknowledges it.
pub(crate) fn on_ping() {
    crate::percpu::count_ping();
    eoi();
}
