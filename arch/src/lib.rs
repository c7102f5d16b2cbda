//! x86_64 support for the kernel: the one crate (with a few kernel glue points) that holds unsafe
//! code. Every `unsafe` block carries a `// SAFETY:` comment and every `unsafe fn` a `# Safety`
//! section.
#![no_std]

extern crate alloc;

pub mod acpi;
pub mod apic;
pub mod backtrace;
pub mod context;
pub mod cpu;
pub mod crash;
pub mod extable;
pub mod fpu;
pub mod gdt;
pub mod irq;
pub mod kheap;
pub mod kstack;
mod mem;
pub mod paging;
pub mod percpu;
pub mod qemu;
pub mod serial;
pub mod smp;
pub mod syscall;
pub mod tlb;
pub mod trap;

mod ktests;

/// Enables x87/SSE ([`fpu::init`]) and brings up the boot CPU's tables: per-CPU data (GS, CPU
/// index 0), GDT + TSS (with IST stacks), then the IDT for every exception, PIC and local-APIC
/// vector. The PIC/PIT ([`irq::init`]), SYSCALL ([`syscall::init`]), the local APIC
/// ([`apic::init_boot`]) and the other CPUs ([`smp`]) are set up by the kernel when it has what
/// they need.
pub fn init() {
    fpu::init();
    percpu::init(0);
    gdt::init();
    trap::init();
    percpu::set_online();
}
