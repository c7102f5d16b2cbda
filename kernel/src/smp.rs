//! Multiprocessor bring-up glue: owns the choice of which CPUs to start and the frames and stacks
//! they get; the mechanism (MADT parsing, local APIC, trampoline, AP entry) is `arch`'s
//! (`arch::acpi`, `arch::apic`, `arch::smp`).
//!
//! - [`reserve_trampoline`], right after the frame allocator exists: takes the lowest free frame
//!   below 1 MiB for the real-mode trampoline, before anything else can.
//! - [`init`], once the TSC is calibrated: enables the boot CPU's local APIC, lists the enabled
//!   processors of the ACPI MADT (`BootInfo::rsdp_addr`), and starts every other one, one at a
//!   time, each with a kernel stack from `arch::kstack` and its own GDT/TSS/IST stacks; then
//!   prints the `cpus online` line. The number of CPUs comes from ACPI only (QEMU's `-smp N`),
//!   never from the command line.
//!
//! Each application processor, once online, enters the scheduler (`task::sched::ap_entry`): its
//! boot context becomes its idle thread and its local APIC timer (calibrated here against the
//! TSC, on the boot CPU) preempts at the PIT's rate.

use crate::frame_alloc::{self, Frame};
use alloc::string::String;
use alloc::vec::Vec;
use arch::percpu::{self, MAX_CPUS};
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The trampoline frame [`reserve_trampoline`] took (0: none).
static TRAMPOLINE: AtomicU64 = AtomicU64::new(0);
/// Processors the MADT lists as enabled (capped at [`MAX_CPUS`]): how many should be online.
static EXPECTED: AtomicUsize = AtomicUsize::new(1);

/// How long one AP gets to come online after its STARTUP IPIs. Under TCG with more vCPUs than
/// host cores an AP can wait for a host core; it takes a few milliseconds otherwise.
const AP_TIMEOUT_MS: u64 = 2000;

/// Takes the trampoline's frame below 1 MiB from the allocator (kept until [`init`] is done with
/// it). Call right after the frame allocator is installed: low frames go first.
pub fn reserve_trampoline() {
    if let Some(f) = frame_alloc::alloc_below(0x10_0000) {
        TRAMPOLINE.store(f.addr(), Ordering::SeqCst);
    }
}

fn free(addr: u64) {
    if let Some(f) = Frame::from_addr(addr) {
        let _ = frame_alloc::free(f);
    }
}

fn alloc_stack() -> Option<arch::kstack::KernelStack> {
    arch::kstack::alloc(&mut || frame_alloc::alloc().map(Frame::addr), &mut free)
}

/// Enables the boot CPU's local APIC, starts every other enabled processor of the MADT and prints
/// which CPUs are online. Call once on the boot CPU, interrupts off, after `task::init` (TSC
/// calibrated) and `arch::kstack::init`.
pub fn init(rsdp_addr: Option<u64>, phys_offset: u64) {
    let bsp = arch::apic::init_boot(phys_offset);
    percpu::set_apic_id(0, bsp);
    let timer_hz = arch::apic::calibrate_timer(10);
    log::info!(
        "smp: local APIC timer {} MHz (measured)",
        timer_hz / 1_000_000
    );
    let listed = match rsdp_addr {
        // SAFETY: the bootloader's `rsdp_addr` is the firmware's RSDP, and `phys_offset` its
        // mapping of all physical memory (the first 4 GiB at least).
        Some(rsdp) => unsafe { arch::acpi::processors(rsdp, phys_offset) },
        None => Err("the bootloader found no RSDP"),
    };
    let aps: Vec<u32> = match &listed {
        Ok(p) => p
            .apic_ids()
            .iter()
            .copied()
            .filter(|&id| id != bsp)
            .collect(),
        Err(e) => {
            log::warn!("smp: ACPI: {e}; running on the boot CPU only");
            Vec::new()
        }
    };
    EXPECTED.store((aps.len() + 1).min(MAX_CPUS), Ordering::SeqCst);
    let page = TRAMPOLINE.swap(0, Ordering::SeqCst);
    let t0 = arch::cpu::rdtsc();
    if !aps.is_empty() {
        if page == 0 {
            log::warn!("smp: no free frame below 1 MiB for the trampoline; APs stay parked");
        } else if !start_aps(page, &aps, phys_offset) {
            // An AP that did not answer may still run the trampoline later: its page stays
            // reserved (leaked on purpose).
            report(&listed);
            return;
        }
    }
    if page != 0 {
        free(page);
    }
    let us = (arch::cpu::rdtsc() - t0) / (arch::irq::tsc_per_second() / 1_000_000).max(1);
    log::info!("smp: {} APs started in {us} us", percpu::online_count() - 1);
    report(&listed);
}

/// Starts the APs `aps` through the trampoline in `page`; false when one did not come online
/// (the trampoline frames are then kept).
fn start_aps(page: u64, aps: &[u32], phys_offset: u64) -> bool {
    let mut tables = [0u64; 4];
    for i in 0..4 {
        match frame_alloc::alloc_below(0x1_0000_0000) {
            Some(f) => tables[i] = f.addr(),
            None => {
                tables[..i].iter().for_each(|&t| free(t));
                log::warn!("smp: no frames for the trampoline page table; APs stay parked");
                return true;
            }
        }
    }
    // SAFETY: the five frames are ours (just allocated / reserved at boot) and stay ours until
    // every started AP is past the trampoline (we free them below only then); `phys_offset` is
    // the bootloader's physical-memory mapping; paging is initialized.
    let tramp = unsafe { arch::smp::Trampoline::install(page, tables, phys_offset) };
    let mut all_answered = true;
    for (n, &id) in aps.iter().enumerate() {
        let index = n + 1;
        if index >= MAX_CPUS {
            log::warn!("smp: more than {MAX_CPUS} CPUs; apic id {id} and later stay parked");
            break;
        }
        let Some(stack) = alloc_stack() else {
            log::warn!("smp: no kernel stack for CPU {index}; later CPUs stay parked");
            break;
        };
        let Some(cpu_tables) = arch::gdt::prepare_ap() else {
            arch::kstack::free(stack, &mut free);
            log::warn!("smp: no heap for CPU {index}'s tables; later CPUs stay parked");
            break;
        };
        // The stack is the AP's for good (also when it did not answer: it may still start):
        // only `kstack::free` gives a stack back, and nothing calls it for an AP's.
        let up = tramp.start(index, id, stack.top(), cpu_tables, AP_TIMEOUT_MS);
        if !up {
            log::warn!("smp: CPU {index} (apic id {id}) did not come online");
            all_answered = false;
            break;
        }
    }
    if all_answered {
        tables.iter().for_each(|&t| free(t));
    }
    all_answered
}

/// Prints `zxkernel: cpus online: N of M (apic ids ...), xAPIC|x2APIC`.
fn report(listed: &Result<arch::acpi::Processors, &'static str>) {
    let n = percpu::online_count();
    let mut ids = String::new();
    for i in (0..MAX_CPUS).filter(|&i| percpu::online(i)) {
        let sep = if ids.is_empty() { "" } else { "," };
        let _ = write!(ids, "{sep}{}", percpu::apic_id(i));
    }
    let in_madt = listed.as_ref().map_or(1, |p| p.apic_ids().len());
    arch::println!(
        "zxkernel: cpus online: {n} of {in_madt} in the MADT (apic ids {ids}), {}",
        if arch::apic::x2apic() {
            "x2APIC"
        } else {
            "xAPIC"
        }
    );
}

/// How many CPUs should be online: the MADT's enabled processors, at most [`MAX_CPUS`].
pub fn expected() -> usize {
    EXPECTED.load(Ordering::SeqCst)
}

mod tests {
    use arch::percpu;
    use ktest::{ensure, ensure_eq, ktest};

    /// Waits up to one second (TSC) for `cond`.
    fn wait_for(cond: impl Fn() -> bool) -> bool {
        let per_ms = (arch::irq::tsc_per_second() / 1000).max(1);
        let end = arch::cpu::rdtsc() + per_ms * 1000;
        while !cond() {
            if arch::cpu::rdtsc() > end {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    }

    ktest! {
        fn every_cpu_is_online_and_answers_pings() {
            // Every enabled processor of the MADT came online, with the APIC id it reports.
            let n = percpu::online_count();
            ensure_eq!(n, super::expected());
            ensure_eq!(percpu::cpu_index(), 0);
            ensure_eq!(percpu::apic_id(0), arch::apic::id());
            for i in 0..n {
                ensure!(percpu::online(i), "CPU {i} is not online");
            }
            // Each AP handles ping IPIs in its idle loop: three pings each, one at a time, and
            // only the addressed CPU counts them.
            for i in 1..n {
                for round in 0..3 {
                    let before: alloc::vec::Vec<u64> = (0..n).map(percpu::pings).collect();
                    arch::apic::send_ping(percpu::apic_id(i));
                    ensure!(
                        wait_for(|| percpu::pings(i) > before[i]),
                        "CPU {i} (apic id {}) did not answer ping {round}",
                        percpu::apic_id(i)
                    );
                    for (j, &b) in before.iter().enumerate() {
                        if j != i {
                            ensure_eq!(percpu::pings(j), b);
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
