//! Raw system-call stubs: the `SYSCALL` instruction with 0 to 8 arguments.
//!
//! Convention (see [`abi::syscall_numbers`]): number in `rax`; arguments in `rdi`, `rsi`, `rdx`,
//! `r10`, `r8`, `r9`, `r12`, `r13`; result in `rax`; `rcx` and `r11` clobbered by the instruction.
//! The kernel restores every other register, but these stubs assume less than that: they also let
//! the compiler treat the argument registers as clobbered, which costs almost nothing and keeps a
//! kernel bug from silently corrupting caller state.
//!
//! The stubs return the raw 64-bit `rax`; callers turn it into a `Status` (low 32 bits, sign
//! extended) or use it as a value (`zx_ticks_get`).

#[cfg(target_arch = "x86_64")]
mod imp {
    use core::arch::asm;

    /// Issues syscall `nr` with up to eight arguments (unused ones are passed as 0).
    ///
    /// # Safety
    /// The arguments must be what syscall `nr` expects: every pointer must be valid for the reads
    /// or writes the syscall performs on it, for the length it is given, and nothing the syscall
    /// changes (memory written through out-pointers, mappings removed or re-protected, handles
    /// closed) may be in use by Rust code in a way that the change would invalidate.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn syscall8(
        nr: u32,
        a0: usize,
        a1: usize,
        a2: usize,
        a3: usize,
        a4: usize,
        a5: usize,
        a6: usize,
        a7: usize,
    ) -> u64 {
        let ret: u64;
        // SAFETY: the caller guarantees the arguments suit syscall `nr` (see above). SYSCALL
        // itself only clobbers rcx/r11 (declared) and rax (the result); the kernel switches to
        // its own stack, so the user stack is untouched (`nostack`). Memory is not declared
        // untouched because the kernel reads and writes through the pointer arguments.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") nr as u64 => ret,
                inlateout("rdi") a0 => _,
                inlateout("rsi") a1 => _,
                inlateout("rdx") a2 => _,
                inlateout("r10") a3 => _,
                inlateout("r8") a4 => _,
                inlateout("r9") a5 => _,
                inlateout("r12") a6 => _,
                inlateout("r13") a7 => _,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    /// Not x86_64: there is no kernel to call; every syscall fails with `ZX_ERR_NOT_SUPPORTED`.
    ///
    /// # Safety
    /// Always safe here; `unsafe` only to match the x86_64 signature.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn syscall8(
        _nr: u32,
        _a0: usize,
        _a1: usize,
        _a2: usize,
        _a3: usize,
        _a4: usize,
        _a5: usize,
        _a6: usize,
        _a7: usize,
    ) -> u64 {
        abi::Status::ERR_NOT_SUPPORTED.into_raw() as i64 as u64
    }
}

pub use imp::syscall8;

macro_rules! stub {
    ($(#[$doc:meta])* $name:ident($($a:ident),*) => ($($pass:expr),*)) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// As for [`syscall8`]: the arguments must be what syscall `nr` expects.
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        pub unsafe fn $name(nr: u32 $(, $a: usize)*) -> u64 {
            // SAFETY: forwarded contract; the unused argument registers carry 0.
            unsafe { syscall8(nr, $($pass),*) }
        }
    };
}

stub!(/// Syscall with no argument.
    syscall0() => (0, 0, 0, 0, 0, 0, 0, 0));
stub!(/// Syscall with one argument.
    syscall1(a0) => (a0, 0, 0, 0, 0, 0, 0, 0));
stub!(/// Syscall with two arguments.
    syscall2(a0, a1) => (a0, a1, 0, 0, 0, 0, 0, 0));
stub!(/// Syscall with three arguments.
    syscall3(a0, a1, a2) => (a0, a1, a2, 0, 0, 0, 0, 0));
stub!(/// Syscall with four arguments.
    syscall4(a0, a1, a2, a3) => (a0, a1, a2, a3, 0, 0, 0, 0));
stub!(/// Syscall with five arguments.
    syscall5(a0, a1, a2, a3, a4) => (a0, a1, a2, a3, a4, 0, 0, 0));
stub!(/// Syscall with six arguments.
    syscall6(a0, a1, a2, a3, a4, a5) => (a0, a1, a2, a3, a4, a5, 0, 0));
stub!(/// Syscall with seven arguments (the 7th in `r12`).
    syscall7(a0, a1, a2, a3, a4, a5, a6) => (a0, a1, a2, a3, a4, a5, a6, 0));
