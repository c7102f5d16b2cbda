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

/// Reads the mapped user address `addr` directly instead of through a fault-safe copy: with SMAP
/// on this is a fatal `#PF` (protection violation, supervisor read) although the page is mapped.
#[inline(never)]
pub fn read_user_directly(addr: u64) -> ! {
    assert!(addr < crate::extable::USER_END, "not a user address");
    let v: u64;
    // SAFETY: the caller mapped `addr` (a VMO page: plain memory, any bit pattern is a valid u64,
    // no Rust reference points into it); with SMAP the read faults and the handler ends the run.
    // The load is written out here (not `read_volatile`, which an optimized build may leave as
    // an out-of-line leaf without a frame) so the faulting RIP lies in this function, which the
    // crash report must name.
    unsafe {
        core::arch::asm!("mov {v}, qword ptr [{a}]", a = in(reg) addr, v = out(reg) v,
            options(nostack, readonly, preserves_flags))
    };
    panic!("SMAP did not stop a kernel read of user address {addr:#x} (read {v:#x})");
}

/// Calls the mapped, executable user address `addr` from ring 0: with SMEP on this is a fatal
/// `#PF` (instruction fetch). The page must hold a `ret` (0xC3) in case SMEP is off.
pub fn execute_user(addr: u64) -> ! {
    assert!(addr < crate::extable::USER_END, "not a user address");
    // SAFETY: with SMEP the fetch faults and the handler ends the run; without it the page's
    // `ret` (the caller's contract) returns here at once, with every caller-saved register
    // declared clobbered.
    unsafe { core::arch::asm!("call {}", in(reg) addr, clobber_abi("C")) };
    panic!("SMEP did not stop ring 0 from executing user address {addr:#x}");
}
