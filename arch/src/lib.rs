//! x86_64 support for the kernel: the one crate (with a few kernel glue points) that holds unsafe
//! code. Every `unsafe` block carries a `// SAFETY:` comment and every `unsafe fn` a `# Safety`
//! section.
#![no_std]

extern crate alloc;

pub mod backtrace;
pub mod cpu;
pub mod crash;
pub mod extable;
pub mod gdt;
pub mod qemu;
pub mod serial;
pub mod trap;

mod ktests;

/// Brings up the CPU tables: GDT + TSS (with IST stacks), then the IDT for every exception.
pub fn init() {
    gdt::init();
    trap::init();
}
