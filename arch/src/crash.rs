//! Deliberate crashes, to demonstrate and test the fatal-exception reports. Each function ends the
//! run through the exception handler and never returns.

/// Executes `ud2`: an unexpected `#UD`.
pub fn invalid_opcode() -> ! {
    // SAFETY: `ud2` only raises #UD; the handler reports it as fatal and exits QEMU.
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}

/// Reads an unmapped kernel address: an unexpected `#PF` (not covered by the exception table).
pub fn page_fault() -> ! {
    let addr = 0xffff_ff00_dead_b000u64 as *const u64;
    // SAFETY: the upper-half address above is never mapped (the bootloader's dynamic mappings and
    // the kernel image live elsewhere), so the read faults and the handler ends the run; no value
    // is ever produced.
    let v = unsafe { addr.read_volatile() };
    panic!("read {v:#x} from an unmapped address");
}
