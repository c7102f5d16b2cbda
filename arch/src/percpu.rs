//! Per-CPU data reached through the GS segment base.
//!
//! In kernel mode `GS.base` points at this CPU's [`PerCpu`]; in user mode it holds the user's
//! value (always 0: user code cannot change it, FSGSBASE is off) and `IA32_KERNEL_GS_BASE` holds
//! the per-CPU pointer. Every entry from ring 3 (SYSCALL, interrupts, exceptions) executes
//! `swapgs` first and every return to ring 3 executes it last, so the invariant holds at every
//! instruction that runs in kernel mode with a kernel stack.
//!
//! The SYSCALL entry stub reads two fields by fixed offset: [`KERNEL_RSP_OFFSET`] (the running
//! thread's kernel stack top) and [`USER_RSP_OFFSET`] (scratch for the user RSP).

use x86_64::registers::model_specific::{GsBase, KernelGsBase};
use x86_64::VirtAddr;

/// Offset of `PerCpu::kernel_rsp` (used by the SYSCALL entry stub).
pub const KERNEL_RSP_OFFSET: usize = 8;
/// Offset of `PerCpu::user_rsp` (used by the SYSCALL entry stub).
pub const USER_RSP_OFFSET: usize = 16;

/// This CPU's data. `repr(C)`: the assembly uses fixed offsets.
#[repr(C)]
pub struct PerCpu {
    /// Address of this structure (GS-relative self pointer).
    self_ptr: u64,
    /// Top of the running thread's kernel stack: where SYSCALL switches to.
    kernel_rsp: u64,
    /// Scratch: the user RSP during SYSCALL entry.
    user_rsp: u64,
    /// Size of the running thread's kernel stack (for backtraces), 0 when unknown.
    kernel_stack_len: u64,
}

// Only one CPU. The entry stubs read it through GS; Rust reaches it through raw pointers only.
static mut PERCPU: PerCpu = PerCpu {
    self_ptr: 0,
    kernel_rsp: 0,
    user_rsp: 0,
    kernel_stack_len: 0,
};

/// Points GS at this CPU's data (kernel view) and zeroes the user GS. Call once, after the GDT.
pub fn init() {
    let p = &raw mut PERCPU;
    // SAFETY: boot CPU, interrupts disabled, nothing else uses PERCPU yet; raw pointer writes.
    unsafe { (*p).self_ptr = p as u64 };
    GsBase::write(VirtAddr::from_ptr(p));
    KernelGsBase::write(VirtAddr::zero());
}

/// Makes `[top - len, top)` the running thread's kernel stack: SYSCALL switches to `top`, and
/// interrupts and exceptions from ring 3 land there too (`TSS.rsp0`). Call with interrupts
/// disabled, when switching threads.
pub fn set_kernel_stack(top: u64, len: u64) {
    let p = &raw mut PERCPU;
    // SAFETY: single CPU with interrupts disabled (by contract): no entry stub reads the fields
    // while we write them; raw pointer writes, no references.
    unsafe {
        (*p).kernel_rsp = top;
        (*p).kernel_stack_len = len;
    }
    crate::gdt::set_rsp0(top);
}

/// The running thread's kernel stack as `(bottom, top)`, if one was set.
pub fn kernel_stack() -> Option<(u64, u64)> {
    let p = &raw const PERCPU;
    // SAFETY: plain reads of two u64 fields through a raw pointer.
    let (top, len) = unsafe { ((*p).kernel_rsp, (*p).kernel_stack_len) };
    (top != 0 && len != 0).then(|| (top - len, top))
}
