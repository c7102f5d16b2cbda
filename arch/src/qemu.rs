//! Ending a QEMU run with a chosen exit status through `isa-debug-exit` (port 0xf4).
//!
//! QEMU exits with `(value << 1) | 1`; the host tool (`boot`) maps these back to [`ExitCode`]s.

use x86_64::instructions::port::Port;

/// Why the kernel ends the run. The values are part of the host/kernel contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Everything passed / the run completed (QEMU status 33).
    Success = 0x10,
    /// A test or check failed (QEMU status 35).
    Failed = 0x11,
    /// The kernel panicked (QEMU status 37).
    Panic = 0x12,
    /// An unexpected CPU exception (QEMU status 39).
    Exception = 0x13,
}

/// Leaves QEMU with `code`; halts forever if no debug-exit device is present.
pub fn exit(code: ExitCode) -> ! {
    let mut port: Port<u32> = Port::new(0xf4);
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit device; writing it ends the VM. On a machine
    // without that device the write is ignored and we halt below.
    unsafe { port.write(code as u32) };
    crate::cpu::halt_forever()
}
