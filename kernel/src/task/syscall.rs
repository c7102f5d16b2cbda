//! The SYSCALL entry's handler ([`on_syscall`]): decodes nothing itself (`syscalls::dispatch`
//! does), runs the call for the current thread through [`Ctx`], and sees the thread out when
//! its process is dying.
//!
//! Every path back to ring 3 (syscall return, interrupt return, a new thread's first entry)
//! passes [`super::before_user_return`], where a thread whose process is dying (or that called
//! `zx_thread_exit`) exits instead. So `zx_process_exit`, `zx_thread_exit` and `zx_task_kill` of
//! the own process only mark the thread here, and the exit happens after `dispatch` returns.

use super::context::Ctx;
use super::sched;
use abi::Status;
use arch::trap::TrapFrame;

/// The SYSCALL handler (see `arch::syscall`): number in `rax`, arguments in `rdi, rsi, rdx, r10,
/// r8, r9, r12, r13`, result to `rax`.
pub fn on_syscall(frame: &mut TrapFrame) {
    let args = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9, frame.r12, frame.r13,
    ];
    // Unknown numbers share the label past the last counter (not recorded).
    let label = if frame.rax < u64::from(abi::syscall_numbers::ZX_SYS_COUNT) {
        frame.rax as usize
    } else {
        abi::irqoff::COUNT
    };
    super::irqoff::begin(label);
    let thread = sched::current();
    // The calling thread's own reference goes into the context (no second count), and the
    // exit check of `super::before_user_return` is made on it before everything is dropped.
    let (result, kill) = match thread.process().cloned() {
        Some(process) => match super::quota::admit(&process, frame.rax, &args) {
            Err(status) => {
                let kill = thread.kill_requested();
                drop(thread);
                (status.into_raw() as i64, kill)
            }
            Ok(()) => {
                let mut ctx = Ctx::new(thread, process);
                let result = syscalls::dispatch(&mut ctx, frame.rax, &args);
                (result, ctx.thread().kill_requested())
            }
        },
        None => {
            let kill = thread.kill_requested();
            drop(thread);
            (Status::ERR_BAD_STATE.into_raw() as i64, kill)
        }
    };
    frame.rax = result as u64;
    // A thread that exits here (its process dying) counts the teardown for this syscall.
    // Every reference on this stack is gone by now (`exit_current` does not return).
    if kill {
        sched::exit_current();
    }
    super::irqoff::end();
}
