//! SYSCALL/SYSRET: MSR setup and the entry stub.
//!
//! Entry (`arch_syscall_entry`, interrupts off through `IA32_FMASK`): `swapgs`, save the user RSP
//! in the per-CPU scratch slot, switch to the running thread's kernel stack top (per-CPU), build a
//! full [`TrapFrame`] there (vector [`SYSCALL_VECTOR`]; RIP from RCX, RFLAGS from R11, the user
//! CS/SS), and call the registered handler with `&mut TrapFrame`. The number is `frame.rax`, the
//! arguments `rdi, rsi, rdx, r10, r8, r9, r12, r13`, and the handler writes the result to
//! `frame.rax`.
//!
//! Exit: if the frame's RIP is canonical (a user address) and CS/SS are still the user ones,
//! restore every register, then RCX/R11/RSP from the frame, `swapgs`, `sysretq`. Otherwise
//! (a non-canonical RIP would make SYSRET fault in ring 0 with the user's RSP, a well-known
//! hole) return through the general `iretq` path. RFLAGS is sanitized on the SYSRET path: only
//! the arithmetic flags, DF, AC and ID survive, IF is forced on.
//!
//! Segment layout assumed (see `gdt.rs`): kernel CS 0x08 / SS 0x10; STAR's user base 0x13 gives
//! user SS 0x1b and user CS 0x23.

use crate::percpu::{KERNEL_RSP_OFFSET, USER_RSP_OFFSET};
use crate::trap::{TrapFrame, SYSCALL_VECTOR};
use core::mem::offset_of;
use spin::Once;
use x86_64::registers::model_specific::Msr;

/// Ring 3 code segment selector.
pub const USER_CS: u64 = 0x23;
/// Ring 3 stack segment selector.
pub const USER_SS: u64 = 0x1b;
/// RFLAGS of a thread's first user-mode instruction: IF and the always-one bit.
pub const USER_RFLAGS: u64 = 0x202;

const IA32_EFER: u32 = 0xc000_0080;
const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;

/// RFLAGS bits SYSCALL clears: TF, IF, DF, AC (and NT, IOPL for good measure).
const FMASK: u64 = (1 << 8) | (1 << 9) | (1 << 10) | (1 << 18) | (1 << 14) | (3 << 12);

/// The syscall handler: reads the number and arguments from the frame, writes `frame.rax`.
pub type SyscallHandler = fn(&mut TrapFrame);

static HANDLER: Once<SyscallHandler> = Once::new();

core::arch::global_asm!(
    ".pushsection .text.arch_syscall, \"ax\"",
    ".balign 16",
    ".global arch_syscall_entry",
    "arch_syscall_entry:",
    "swapgs",
    "mov gs:[{user_rsp}], rsp",
    "mov rsp, gs:[{kernel_rsp}]",
    "push {user_ss}",
    "push qword ptr gs:[{user_rsp}]",
    "push r11",
    "push {user_cs}",
    "push rcx",
    "push 0",
    "push {vector}",
    "push rax",
    "push rbx",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push rbp",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    // The kernel stack top is 16-byte aligned and the frame is 22 words: aligned for the call.
    "mov rdi, rsp",
    "call {dispatch}",
    // SYSRET only to a canonical user RIP with the user selectors unchanged.
    "mov rcx, [rsp + {f_rip}]",
    "shr rcx, 47",
    "jnz 2f",
    "cmp qword ptr [rsp + {f_cs}], {user_cs}",
    "jne 2f",
    "cmp qword ptr [rsp + {f_ss}], {user_ss}",
    "jne 2f",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rbp",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rbx",
    "pop rax",
    // [rsp] is the frame's `vector` now.
    "mov rcx, [rsp + {v_rip}]",
    "mov r11, [rsp + {v_rflags}]",
    "and r11, {rflags_keep}",
    "or r11, 0x202",
    "mov rsp, [rsp + {v_rsp}]",
    "swapgs",
    "sysretq",
    "2:",
    "jmp arch_trap_return",
    ".popsection",
    user_rsp = const USER_RSP_OFFSET,
    kernel_rsp = const KERNEL_RSP_OFFSET,
    user_ss = const USER_SS,
    user_cs = const USER_CS,
    vector = const SYSCALL_VECTOR,
    rflags_keep = const 0x0024_0cd5u64,
    dispatch = sym syscall_dispatch,
    f_rip = const offset_of!(TrapFrame, rip),
    f_cs = const offset_of!(TrapFrame, cs),
    f_ss = const offset_of!(TrapFrame, ss),
    v_rip = const offset_of!(TrapFrame, rip) - offset_of!(TrapFrame, vector),
    v_rflags = const offset_of!(TrapFrame, rflags) - offset_of!(TrapFrame, vector),
    v_rsp = const offset_of!(TrapFrame, rsp) - offset_of!(TrapFrame, vector),
);

// The entry stubs (this one and `crate::trap`'s) build a `TrapFrame` with pushes (last pushed,
// lowest address), and `arch_trap_return` pops it: the frame's fields must sit in exactly that
// order, one word each, with nothing else in the struct.
const _: () = {
    let pushed = [
        offset_of!(TrapFrame, r15),
        offset_of!(TrapFrame, r14),
        offset_of!(TrapFrame, r13),
        offset_of!(TrapFrame, r12),
        offset_of!(TrapFrame, r11),
        offset_of!(TrapFrame, r10),
        offset_of!(TrapFrame, r9),
        offset_of!(TrapFrame, r8),
        offset_of!(TrapFrame, rbp),
        offset_of!(TrapFrame, rdi),
        offset_of!(TrapFrame, rsi),
        offset_of!(TrapFrame, rdx),
        offset_of!(TrapFrame, rcx),
        offset_of!(TrapFrame, rbx),
        offset_of!(TrapFrame, rax),
        offset_of!(TrapFrame, vector),
        offset_of!(TrapFrame, error_code),
        offset_of!(TrapFrame, rip),
        offset_of!(TrapFrame, cs),
        offset_of!(TrapFrame, rflags),
        offset_of!(TrapFrame, rsp),
        offset_of!(TrapFrame, ss),
    ];
    let mut i = 0;
    while i < pushed.len() {
        assert!(
            pushed[i] == i * 8,
            "TrapFrame field order differs from the entry stub's pushes"
        );
        i += 1;
    }
    assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);
};

extern "C" {
    fn arch_syscall_entry();
}

extern "C" fn syscall_dispatch(frame: &mut TrapFrame) {
    match HANDLER.get() {
        Some(handler) => handler(frame),
        None => frame.rax = abi_bad_syscall(),
    }
}

/// `ZX_ERR_BAD_SYSCALL` as the 64-bit return value.
fn abi_bad_syscall() -> u64 {
    abi::Status::ERR_BAD_SYSCALL.into_raw() as i64 as u64
}

/// Enables SYSCALL (EFER.SCE) and points it at the entry stub; `handler` serves every call.
/// Call once, after [`crate::gdt::init`] and [`crate::percpu::init`].
pub fn init(handler: SyscallHandler) {
    HANDLER.call_once(|| handler);
    load();
}

/// Points the running CPU's SYSCALL MSRs at the entry stub (the MSRs are per CPU): [`init`] on
/// the boot CPU, `smp::ap_main` on every other.
pub fn load() {
    let star = (0x13u64 << 48) | (0x08u64 << 32);
    // SAFETY: these MSRs exist on every x86_64 CPU; the values follow the GDT layout (gdt.rs),
    // the entry stub is a valid kernel code address, and FMASK clears IF so the stub runs with
    // interrupts off until it is on the kernel stack.
    unsafe {
        let mut efer = Msr::new(IA32_EFER);
        let v = efer.read();
        efer.write(v | 1);
        Msr::new(IA32_STAR).write(star);
        Msr::new(IA32_LSTAR).write(arch_syscall_entry as *const () as u64);
        Msr::new(IA32_FMASK).write(FMASK);
    }
}
