//! Kernel thread contexts: the stack switch between two kernel threads and the initial stack of
//! a new thread.
//!
//! A suspended thread's state is its kernel stack pointer: [`switch`] pushes the callee-saved
//! registers (RBP, RBX, R12-R15), stores RSP, loads the other thread's RSP and pops its registers;
//! the `ret` resumes it. CR3, `TSS.rsp0` and the per-CPU kernel stack are the scheduler's job
//! (before the switch).
//!
//! A new thread's stack ([`KernelStack::prepare`]) holds, from the top: a [`TrapFrame`] (the
//! user-mode state to enter, unused for kernel threads) and a switch frame whose return address
//! is `arch_thread_trampoline` with RBX = entry and R12 = argument. The trampoline calls
//! `entry(arg)`; when that returns (user threads), RSP points at the TrapFrame and the trampoline
//! jumps to the common `iretq` exit: the thread enters ring 3 with the frame's registers.

use crate::kstack::KernelStack;
use crate::trap::TrapFrame;

core::arch::global_asm!(
    ".pushsection .text.arch_context, \"ax\"",
    ".balign 16",
    ".global arch_context_switch",
    // rdi = where to save the old RSP, rsi = the new RSP.
    "arch_context_switch:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".balign 16",
    ".global arch_thread_trampoline",
    "arch_thread_trampoline:",
    "xor ebp, ebp",
    "mov rdi, r12",
    "call rbx",
    "jmp arch_trap_return",
    ".popsection",
);

extern "C" {
    fn arch_context_switch(save: *mut u64, load: u64);
    fn arch_thread_trampoline();
}

/// Entry of a new thread: runs on the thread's stack with interrupts disabled. Kernel threads
/// never return from it; user threads return and enter ring 3 through their TrapFrame.
pub type ThreadEntry = extern "C" fn(arg: u64);

/// Words in the switch frame: R15, R14, R13, R12, RBX, RBP, return address.
const SWITCH_WORDS: usize = 7;

impl KernelStack {
    /// Lays out a new thread's first switch frame (see the module docs) and returns the RSP to
    /// give [`switch`]. `user` is the ring 3 state the thread enters when `entry` returns.
    pub fn prepare(&mut self, entry: ThreadEntry, arg: u64, user: &TrapFrame) -> u64 {
        let frame_size = core::mem::size_of::<TrapFrame>() as u64;
        let frame_at = self.top() - frame_size;
        debug_assert!(frame_at.is_multiple_of(16));
        let rsp = frame_at - (SWITCH_WORDS * 8) as u64;
        let words: [u64; SWITCH_WORDS] = [
            0,                                          // r15
            0,                                          // r14
            0,                                          // r13
            arg,                                        // r12
            entry as *const () as u64,                  // rbx
            0,                                          // rbp
            arch_thread_trampoline as *const () as u64, // return address
        ];
        // SAFETY: `&mut self` owns the stack: it is mapped, writable, and no thread runs on it
        // yet; `[rsp, top)` lies inside it (a stack is many pages, the frames are < 256 bytes);
        // both addresses are 8-byte aligned.
        unsafe {
            core::ptr::write(frame_at as *mut TrapFrame, *user);
            core::ptr::copy_nonoverlapping(words.as_ptr(), rsp as *mut u64, SWITCH_WORDS);
        }
        rsp
    }
}

/// Saves the running thread's callee-saved registers and RSP into `*save` and resumes the thread
/// whose saved RSP is `load`. Returns when some later `switch` loads `*save` again.
///
/// # Safety
///
/// Interrupts must be disabled. `save` must be valid for a write and stay valid while this thread
/// is suspended; `load` must be the RSP a previous `switch` saved, or one returned by
/// [`KernelStack::prepare`], of a thread that is not running, whose stack stays mapped while it
/// runs. The caller has already pointed `TSS.rsp0`/per-CPU at the new stack and loaded the
/// right CR3.
pub unsafe fn switch(save: *mut u64, load: u64) {
    // SAFETY: forwarded to the caller's contract; the callee-saved registers are preserved as
    // the C ABI wants (the other thread's values are restored when this one resumes).
    unsafe { arch_context_switch(save, load) }
}

/// Builds the frame a new user thread enters ring 3 with: RIP `entry`, RSP `sp`, IF set, the
/// user selectors and the given argument registers.
pub fn user_frame(
    entry: u64,
    sp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    r8: u64,
) -> TrapFrame {
    let mut f = TrapFrame::zeroed();
    f.rip = entry;
    f.cs = crate::syscall::USER_CS;
    f.rflags = crate::syscall::USER_RFLAGS;
    f.rsp = sp;
    f.ss = crate::syscall::USER_SS;
    f.rdi = rdi;
    f.rsi = rsi;
    f.rdx = rdx;
    f.rcx = rcx;
    f.r8 = r8;
    f
}
