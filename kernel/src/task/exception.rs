//! Exception delivery for ring-3 faults the kernel does not resolve ([`on_user_fault`], the
//! user-exception hook arch calls): the thread's exception channel first, then its process's, then
//! the kill with a report. Also the translation between a `TrapFrame` and `zx_thread_state`'s
//! general registers.

use super::process::Process;
use super::sched;
use super::thread::Thread;
use abi::exception::exception_state::{
    ZX_EXCEPTION_CHANNEL_TYPE_PROCESS, ZX_EXCEPTION_CHANNEL_TYPE_THREAD,
    ZX_EXCEPTION_STATE_HANDLED, ZX_EXCEPTION_STATE_THREAD_EXIT,
};
use abi::exception::excp::{
    ZX_EXCP_FATAL_PAGE_FAULT, ZX_EXCP_GENERAL, ZX_EXCP_HW_BREAKPOINT, ZX_EXCP_SW_BREAKPOINT,
    ZX_EXCP_UNDEFINED_INSTRUCTION,
};
use abi::exception::{ExceptionReport, GeneralRegs};
use abi::task::ZX_TASK_RETCODE_EXCEPTION_KILL;
use alloc::sync::Arc;
use arch::trap::{TrapFrame, UserFault};
use syscalls::{ProcessObject, ThreadObject};
use x86_64::instructions::interrupts;

/// The user-exception hook (arch calls it for every unresolved exception from ring 3).
///
/// First the exception goes to the thread's exception channel, then to its process's
/// ([`deliver_exception`]): a handler may resume the thread (the hook returns with `frame`
/// rewritten from the registers `zx_thread_write_state` left) or end it. With no handler, or
/// every handler passing (`ZX_EXCEPTION_STATE_TRY_NEXT`), the fault is reported and the whole
/// process killed with `ZX_TASK_RETCODE_EXCEPTION_KILL`, and the thread never returns.
pub fn on_user_fault(frame: &mut TrapFrame, fault: &UserFault) {
    let thread = sched::current();
    let outcome = match thread.process().cloned() {
        Some(p) => deliver_exception(&thread, &p, frame, fault),
        None => Outcome::Unhandled,
    };
    match outcome {
        Outcome::Resume => return,
        Outcome::Exit => {
            // Every reference on this stack goes before the thread ends for good.
            drop(thread);
            sched::exit_current();
        }
        Outcome::Unhandled => {}
    }
    let mut line = alloc::string::String::new();
    let _ = arch::trap::write_user_fault_summary(&mut line, fault);
    match thread.process() {
        Some(p) => {
            arch::println!(
                "kernel: process {:?} (koid {}) thread {:?} (koid {}): {}; rsp {:#x}; killing the \
                 process (ZX_TASK_RETCODE_EXCEPTION_KILL)",
                p.name_str(),
                p.koid(),
                thread.name(),
                thread.koid(),
                line,
                frame.rsp
            );
            p.kill(ZX_TASK_RETCODE_EXCEPTION_KILL);
        }
        None => arch::println!(
            "kernel: kernel thread {:?} in ring 3: {}",
            thread.name(),
            line
        ),
    }
    drop(thread);
    sched::exit_current();
}

/// Zircon's `ZX_EXCP_*` for an x86 exception vector (`arch/x86/faults.cc`: #PF, #UD, #BP, #DB
/// have their own types, everything else is `ZX_EXCP_GENERAL`).
fn exception_type(vector: u64) -> u32 {
    match vector {
        14 => ZX_EXCP_FATAL_PAGE_FAULT,
        6 => ZX_EXCP_UNDEFINED_INSTRUCTION,
        3 => ZX_EXCP_SW_BREAKPOINT,
        1 => ZX_EXCP_HW_BREAKPOINT,
        _ => ZX_EXCP_GENERAL,
    }
}

/// The user registers of `frame` as `zx_thread_state_general_regs_t` (no FS/GS base here).
fn regs_of(frame: &TrapFrame) -> GeneralRegs {
    GeneralRegs {
        rax: frame.rax,
        rbx: frame.rbx,
        rcx: frame.rcx,
        rdx: frame.rdx,
        rsi: frame.rsi,
        rdi: frame.rdi,
        rbp: frame.rbp,
        rsp: frame.rsp,
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rip: frame.rip,
        rflags: frame.rflags,
        fs_base: 0,
        gs_base: 0,
    }
}

/// Writes `regs` back into `frame` (validated by `ThreadExceptionState::set_regs`: a user-half
/// RIP, only user RFLAGS bits changed; CS/SS stay the user selectors).
fn apply_regs(frame: &mut TrapFrame, regs: &GeneralRegs) {
    frame.rax = regs.rax;
    frame.rbx = regs.rbx;
    frame.rcx = regs.rcx;
    frame.rdx = regs.rdx;
    frame.rsi = regs.rsi;
    frame.rdi = regs.rdi;
    frame.rbp = regs.rbp;
    frame.rsp = regs.rsp;
    frame.r8 = regs.r8;
    frame.r9 = regs.r9;
    frame.r10 = regs.r10;
    frame.r11 = regs.r11;
    frame.r12 = regs.r12;
    frame.r13 = regs.r13;
    frame.r14 = regs.r14;
    frame.r15 = regs.r15;
    frame.rip = regs.rip;
    frame.rflags = regs.rflags;
}

/// What became of an exception.
enum Outcome {
    /// A handler set `ZX_EXCEPTION_STATE_HANDLED`: resume with the registers now in the frame.
    Resume,
    /// The thread must end (killed meanwhile, or `ZX_EXCEPTION_STATE_THREAD_EXIT`).
    Exit,
    /// No handler took it: the process is killed.
    Unhandled,
}

/// Offers the exception to the thread's, then the process's exception channel. Each live one
/// gets a message with an exception handle and the thread blocks until that handle is gone (or
/// the thread is killed). Returns instead of exiting so the caller can drop its references
/// before the thread ends.
fn deliver_exception(
    thread: &Arc<Thread>,
    process: &Arc<Process>,
    frame: &mut TrapFrame,
    fault: &UserFault,
) -> Outcome {
    let ports = [
        (thread.exception_port(), ZX_EXCEPTION_CHANNEL_TYPE_THREAD),
        (process.exception_port(), ZX_EXCEPTION_CHANNEL_TYPE_PROCESS),
    ];
    if !ports.iter().any(|(port, _)| port.is_bound()) {
        return Outcome::Unhandled;
    }
    let excp_type = exception_type(fault.vector);
    let (cr2, synth_code) = match fault.page_fault {
        Some((pf, status)) => (pf.vaddr, status.into_raw() as u32),
        None => (0, 0),
    };
    let report = ExceptionReport {
        size: ExceptionReport::SIZE_V2,
        r#type: excp_type,
        vector: fault.vector,
        err_code: fault.error_code,
        cr2,
        synth_code,
        synth_data: 0,
    };
    let state = thread.exception_state();
    state.begin(report, regs_of(frame));
    for (port, channel_type) in ports {
        let as_thread: Arc<dyn ThreadObject> = thread.clone();
        let as_process: Arc<dyn ProcessObject> = process.clone();
        let Some(shared) = syscalls::exception::deliver(port, as_thread, as_process, excp_type)
        else {
            continue;
        };
        state.set_channel_type(channel_type);
        interrupts::without_interrupts(|| loop {
            let seen = sched::wake_seq();
            if shared.is_closed() || thread.kill_requested() {
                break;
            }
            sched::block_current(u64::MAX, seen);
        });
        if thread.kill_requested() {
            state.end();
            return Outcome::Exit;
        }
        match shared.disposition() {
            ZX_EXCEPTION_STATE_HANDLED => {
                if let Some(regs) = state.end() {
                    apply_regs(frame, &regs);
                }
                return Outcome::Resume;
            }
            ZX_EXCEPTION_STATE_THREAD_EXIT => {
                state.end();
                thread.request_kill();
                return Outcome::Exit;
            }
            _ => {}
        }
    }
    state.end();
    Outcome::Unhandled
}
