//! x87/SSE state: CPU setup and the per-thread save area switched with every context switch.
//!
//! The kernel is built soft-float (`x86_64-unknown-none` disables SSE), so kernel code never
//! touches the x87/MMX/XMM registers or MXCSR: while a thread runs in the kernel its user values
//! simply stay in the registers. The scheduler saves the outgoing thread's state into its
//! [`FpuState`] (`fxsave64`) and loads the incoming thread's (`fxrstor64`) right before the stack
//! switch, so no value ever leaks from one thread (or process) to another.
//!
//! [`init`] sets CR0.MP, clears CR0.EM and CR0.TS (no lazy switching: `#NM` never fires), sets
//! CR4.OSFXSR (FXSAVE/FXRSTOR and SSE enabled) and CR4.OSXMMEXCPT (unmasked SIMD exceptions are
//! `#XM`, a user fault, rather than `#UD`), and resets the boot CPU's state (`fninit`, default
//! MXCSR). A new thread starts from [`FpuState::new`]: the state `fninit` + `ldmxcsr 0x1f80`
//! leave (x87 control word 0x037f, all registers empty and zero, every SIMD exception masked).
//!
//! The area is only ever written by `fxsave64` or built by [`FpuState::new`], so `fxrstor64`
//! cannot fault on reserved MXCSR bits.

use alloc::boxed::Box;
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

/// MXCSR after reset: every exception masked, round to nearest.
pub const DEFAULT_MXCSR: u32 = 0x1f80;
/// x87 control word after `fninit`.
pub const DEFAULT_FCW: u16 = 0x037f;

/// A 512-byte, 16-byte aligned FXSAVE area.
#[repr(C, align(16))]
pub struct FpuState([u8; 512]);

impl FpuState {
    /// The clean state of a new thread (see the module docs), on the heap.
    pub fn new() -> Box<FpuState> {
        let mut s = Box::new(FpuState([0; 512]));
        s.0[0..2].copy_from_slice(&DEFAULT_FCW.to_le_bytes());
        s.0[24..28].copy_from_slice(&DEFAULT_MXCSR.to_le_bytes());
        s
    }

    /// Saves this CPU's x87/SSE state here.
    pub fn save(&mut self) {
        // SAFETY: `self` is a writable, 16-byte aligned 512-byte area; CR4.OSFXSR is set by
        // `init` before any thread exists. fxsave64 only writes the area.
        unsafe {
            core::arch::asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack, preserves_flags))
        };
    }

    /// Loads this CPU's x87/SSE state from here.
    pub fn restore(&self) {
        // SAFETY: the area holds a valid image (written by `fxsave64` or built by `new` with a
        // valid MXCSR), 16-byte aligned. The kernel does not use these registers itself, so
        // replacing them changes no kernel value.
        unsafe {
            core::arch::asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, preserves_flags, readonly))
        };
    }

    /// MXCSR as saved in the area.
    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes([self.0[24], self.0[25], self.0[26], self.0[27]])
    }

    /// XMM register `n` (0..16) as saved in the area.
    pub fn xmm(&self, n: usize) -> u128 {
        let off = 160 + 16 * (n % 16);
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.0[off..off + 16]);
        u128::from_le_bytes(b)
    }
}

/// Enables x87/SSE for every thread (CR0/CR4, see the module docs) and resets this CPU's state.
/// Call once at boot, before any thread exists.
pub fn init() {
    // SAFETY: MP set / EM clear / TS clear make x87 and SSE instructions execute normally
    // (no #NM, no emulation trap); OSFXSR enables FXSAVE/FXRSTOR and SSE, OSXMMEXCPT routes
    // unmasked SIMD exceptions to #XM. None of this changes memory or paging.
    unsafe {
        Cr0::update(|f| {
            f.insert(Cr0Flags::MONITOR_COPROCESSOR);
            f.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
        });
        Cr4::update(|f| f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    }
    let mxcsr = DEFAULT_MXCSR;
    // SAFETY: fninit resets the x87 unit; ldmxcsr loads a valid MXCSR (SSE enabled above).
    unsafe {
        core::arch::asm!("fninit", "ldmxcsr [{}]", in(reg) &mxcsr, options(nostack, preserves_flags, readonly))
    };
}

/// Loads XMM0..XMM15 from `values` (tests: the kernel itself never uses these registers, which
/// is also why no clobber is declared: soft-float code never holds a value in them).
pub fn load_xmm(values: &[u128; 16]) {
    // SAFETY: reads 256 bytes from `values`; writes only XMM registers, which no kernel code uses.
    unsafe {
        core::arch::asm!(
            "movdqu xmm0, [{p}]", "movdqu xmm1, [{p} + 16]", "movdqu xmm2, [{p} + 32]",
            "movdqu xmm3, [{p} + 48]", "movdqu xmm4, [{p} + 64]", "movdqu xmm5, [{p} + 80]",
            "movdqu xmm6, [{p} + 96]", "movdqu xmm7, [{p} + 112]", "movdqu xmm8, [{p} + 128]",
            "movdqu xmm9, [{p} + 144]", "movdqu xmm10, [{p} + 160]", "movdqu xmm11, [{p} + 176]",
            "movdqu xmm12, [{p} + 192]", "movdqu xmm13, [{p} + 208]", "movdqu xmm14, [{p} + 224]",
            "movdqu xmm15, [{p} + 240]",
            p = in(reg) values.as_ptr(),
            options(nostack, preserves_flags, readonly)
        )
    };
}

/// Stores XMM0..XMM15 into `values` (tests).
pub fn store_xmm(values: &mut [u128; 16]) {
    // SAFETY: writes 256 bytes to `values`, an exclusive array; reads only XMM registers.
    unsafe {
        core::arch::asm!(
            "movdqu [{p}], xmm0", "movdqu [{p} + 16], xmm1", "movdqu [{p} + 32], xmm2",
            "movdqu [{p} + 48], xmm3", "movdqu [{p} + 64], xmm4", "movdqu [{p} + 80], xmm5",
            "movdqu [{p} + 96], xmm6", "movdqu [{p} + 112], xmm7", "movdqu [{p} + 128], xmm8",
            "movdqu [{p} + 144], xmm9", "movdqu [{p} + 160], xmm10", "movdqu [{p} + 176], xmm11",
            "movdqu [{p} + 192], xmm12", "movdqu [{p} + 208], xmm13", "movdqu [{p} + 224], xmm14",
            "movdqu [{p} + 240], xmm15",
            p = in(reg) values.as_mut_ptr(),
            options(nostack, preserves_flags)
        )
    };
}

/// Loads MXCSR (tests); bits that may be reserved (16..32, and DAZ on CPUs without it) are
/// cleared first, so this cannot `#GP`.
pub fn set_mxcsr(value: u32) {
    let value = value & 0xffbf;
    // SAFETY: ldmxcsr reads 4 bytes from `value`, whose possibly reserved bits are clear.
    unsafe {
        core::arch::asm!("ldmxcsr [{}]", in(reg) &value, options(nostack, preserves_flags, readonly))
    };
}

/// Reads MXCSR.
pub fn mxcsr() -> u32 {
    let mut value = 0u32;
    // SAFETY: stmxcsr writes 4 bytes to `value`.
    unsafe {
        core::arch::asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack, preserves_flags))
    };
    value
}
