//! x86_64 support for the kernel: the one crate (with a few kernel glue points) that holds unsafe
//! code. Every `unsafe` block carries a `// SAFETY:` comment and every `unsafe fn` a `# Safety`
//! section.
#![no_std]

pub mod cpu;
pub mod qemu;
pub mod serial;
