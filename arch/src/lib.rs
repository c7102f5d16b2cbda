//! x86_64 support for the kernel: the one crate (with a few kernel glue points) that holds unsafe
//! code. Every `unsafe` block carries a `// SAFETY:` comment and every `unsafe fn` a `# Safety`
//! section.
#![no_std]

extern crate alloc;

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
pub mod syscall;
pub mod trap;

mod ktests;

/// Enables x87/SSE ([`fpu::init`]) and brings up the CPU tables: GDT + TSS (with IST stacks), per-CPU data (GS), then the IDT for
/// every exception and PIC vector. The PIC/PIT ([`irq::init`]) and SYSCALL ([`syscall::init`])
/// are set up by the kernel when it has handlers for them.
pub fn init() {
    fpu::init();
    gdt::init();
    percpu::init();
    trap::init();
}
