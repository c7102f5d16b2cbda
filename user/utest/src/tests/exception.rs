//! Exceptions from user mode: exception channels on threads and processes, the exception
//! message and handle, `ZX_INFO_THREAD` / `ZX_INFO_THREAD_EXCEPTION_REPORT`, exception state
//! properties, thread state, resuming a thread past its faulting instruction, the handler chain
//! (thread, then process, then the kill), and teardown of a process stopped in an exception.

use core::sync::atomic::{AtomicU64, Ordering};

use abi::default_rights::{ZX_DEFAULT_EXCEPTION_RIGHTS, ZX_DEFAULT_THREAD_RIGHTS};
use abi::exception::exception_state::*;
use abi::exception::excp::*;
use abi::exception::thread_state::*;
use abi::exception::{ExceptionReport, GeneralRegs};
use abi::obj_type::ZX_OBJ_TYPE_EXCEPTION;
use abi::props::{ZX_PROP_EXCEPTION_STATE, ZX_PROP_EXCEPTION_STRATEGY, ZX_PROP_NAME};
use abi::rights::*;
use abi::signals::*;
use abi::syscall_numbers as nr;
use abi::task::{ZX_TASK_RETCODE_EXCEPTION_KILL, ZX_TASK_RETCODE_SYSCALL_KILL};
use abi::Status;
use zx::{Channel, Exception, Handle, Thread};

use super::fault::case;
use super::util::{st, vmo, BOGUS};
use crate::harness::{Ctx, Failure, TestResult};

tests!(
    create_channel_errors,
    channel_endpoint_rights,
    second_channel_already_bound,
    fault_message_and_report,
    exception_properties,
    thread_state_needs_exception,
    resume_past_faulting_instruction,
    write_state_rejects_bad_registers,
    try_next_reaches_process_channel,
    thread_exit_ends_only_the_thread,
    closing_channel_falls_through_to_kill,
    kill_process_in_exception,
    dead_thread_channel_peer_closed,
    unread_exception_dropped_with_channel,
    process_channel_of_child_resumes_it,
    thread_info_states,
    names_of_threads_and_processes,
);

// The helper threads: `utest_fault_store` stores a byte at rdi (a 3-byte instruction,
// `c6 07 01`), then writes 0x5a to the u64 at rsi and exits. They never use a stack.
core::arch::global_asm!(
    ".pushsection .text.utest_fault_store, \"ax\"",
    ".globl utest_fault_store",
    "utest_fault_store:",
    "    mov byte ptr [rdi], 1",
    ".globl utest_fault_store_next",
    "utest_fault_store_next:",
    "    mov qword ptr [rsi], 0x5a",
    "    mov eax, {exit}",
    "    syscall",
    "    ud2",
    ".popsection",
    exit = const nr::ZX_SYS_THREAD_EXIT,
);

extern "C" {
    fn utest_fault_store();
    fn utest_fault_store_next();
}

/// Length of `mov byte ptr [rdi], 1`.
const STORE_LEN: u64 = 3;

/// An unmapped user address (page 0 is never mapped).
const UNMAPPED: usize = 0x8;

#[repr(C, align(16))]
struct DummyStack([u8; 64]);
static DUMMY_STACK: DummyStack = DummyStack([0; 64]);

/// A new, unstarted thread of this process.
fn new_thread(ctx: &Ctx) -> Result<Thread, Failure> {
    Ok(check!(Thread::create(&ctx.process, b"faulter", 0)))
}

/// Starts `t` on the store helper: stores at `addr`, then marks `cell`.
fn start_store(t: &Thread, addr: usize, cell: &AtomicU64) -> TestResult {
    // SAFETY: the helper writes one byte at `addr` (unmapped in these tests: it faults) and
    // then the u64 `cell`, which the test keeps alive until the thread is gone; no stack use.
    check!(unsafe {
        t.start(
            utest_fault_store as *const () as usize,
            core::ptr::addr_of!(DUMMY_STACK) as usize + 48,
            addr,
            cell as *const AtomicU64 as usize,
        )
    });
    Ok(())
}

/// Waits for and reads an exception message. The exception's state starts as `TRY_NEXT`
/// (checked); it is then set to `THREAD_EXIT` so that a failing test (which drops it) ends only
/// the faulting thread, never this process. Tests that want another outcome set it.
fn next_exception(ch: &Channel) -> Result<(abi::exception::ExceptionInfo, Exception), Failure> {
    let observed = check!(ch.handle().wait_one(ZX_CHANNEL_READABLE, i64::MAX));
    ensure!(
        observed & ZX_CHANNEL_READABLE != 0,
        "observed {observed:#x}"
    );
    let (info, exc) = check!(zx::exception::read_exception(ch));
    ensure_eq!(check!(exc.state()), ZX_EXCEPTION_STATE_TRY_NEXT);
    check!(exc.set_state(ZX_EXCEPTION_STATE_THREAD_EXIT));
    Ok((info, exc))
}

fn wait_dead(t: &Thread) -> TestResult {
    check!(t.handle().wait_one(ZX_THREAD_TERMINATED, i64::MAX));
    Ok(())
}

fn create_channel_errors(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    ensure_err!(t.create_exception_channel(2), Status::ERR_INVALID_ARGS);
    // A thread has no debugger channel.
    ensure_err!(
        t.create_exception_channel(ZX_EXCEPTION_CHANNEL_DEBUGGER),
        Status::ERR_INVALID_ARGS
    );
    let bogus = Thread::from(Handle::from_raw(BOGUS));
    ensure_err!(bogus.create_exception_channel(0), Status::ERR_BAD_HANDLE);
    core::mem::forget(bogus);
    // Rights: INSPECT | DUPLICATE | TRANSFER | MANAGE_THREAD, before the type.
    for missing in [
        ZX_RIGHT_INSPECT,
        ZX_RIGHT_DUPLICATE,
        ZX_RIGHT_TRANSFER,
        ZX_RIGHT_MANAGE_THREAD,
    ] {
        let reduced = Thread::from(check!(t
            .handle()
            .duplicate(ZX_DEFAULT_THREAD_RIGHTS & !missing)));
        ensure_err!(
            reduced.create_exception_channel(0),
            Status::ERR_ACCESS_DENIED
        );
    }
    // Not a task: the rights are checked first, and no other object type carries
    // MANAGE_THREAD, so a VMO is ACCESS_DENIED (WRONG_TYPE needs a job, which we do not have).
    let v = Thread::from(vmo(1)?.into_handle());
    ensure_err!(v.create_exception_channel(0), Status::ERR_ACCESS_DENIED);
    // A process needs ENUMERATE as well.
    let p = zx::Process::from(check!(ctx
        .process
        .handle()
        .duplicate(abi::default_rights::ZX_DEFAULT_PROCESS_RIGHTS & !ZX_RIGHT_ENUMERATE)));
    ensure_err!(p.create_exception_channel(0), Status::ERR_ACCESS_DENIED);
    Ok(())
}

fn channel_endpoint_rights(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    let ch = check!(t.create_exception_channel(0));
    let info = check!(ch.handle().basic_info());
    ensure_eq!(info.r#type, abi::obj_type::ZX_OBJ_TYPE_CHANNEL);
    ensure_eq!(
        info.rights,
        ZX_RIGHT_TRANSFER | ZX_RIGHT_WAIT | ZX_RIGHT_READ
    );
    // Read-only for user space.
    ensure_err!(ch.write(b"x", alloc::vec![]), Status::ERR_ACCESS_DENIED);
    ensure_err!(ch.read(), Status::ERR_SHOULD_WAIT);
    Ok(())
}

fn second_channel_already_bound(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    let ch = check!(t.create_exception_channel(0));
    ensure_err!(t.create_exception_channel(0), Status::ERR_ALREADY_BOUND);
    // Once the user endpoint is closed the task may be bound again.
    drop(ch);
    let ch2 = check!(t.create_exception_channel(0));
    drop(ch2);
    // Same for a process.
    let pch = check!(ctx.process.create_exception_channel(0));
    ensure_err!(
        ctx.process.create_exception_channel(0),
        Status::ERR_ALREADY_BOUND
    );
    drop(pch);
    Ok(())
}

fn fault_message_and_report(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    let tid = check!(t.handle().basic_info()).koid;
    let pid = check!(ctx.process.handle().basic_info()).koid;
    let ch = check!(t.create_exception_channel(0));
    // Not in an exception yet: BAD_STATE.
    ensure_err!(t.exception_report(), Status::ERR_BAD_STATE);
    let cell = AtomicU64::new(0);
    start_store(&t, UNMAPPED, &cell)?;
    let (info, exc) = next_exception(&ch)?;
    ensure_eq!(info.pid, pid);
    ensure_eq!(info.tid, tid);
    ensure_eq!(info.r#type, ZX_EXCP_FATAL_PAGE_FAULT);
    let basic = check!(exc.handle().basic_info());
    ensure_eq!(basic.r#type, ZX_OBJ_TYPE_EXCEPTION);
    ensure_eq!(basic.rights, ZX_DEFAULT_EXCEPTION_RIGHTS);
    // The thread is stopped in the exception.
    let ti = check!(t.info());
    ensure_eq!(ti.state, ZX_THREAD_STATE_BLOCKED_EXCEPTION);
    ensure_eq!(
        ti.wait_exception_channel_type,
        ZX_EXCEPTION_CHANNEL_TYPE_THREAD
    );
    let r = check!(t.exception_report());
    ensure_eq!(r.size, ExceptionReport::SIZE_V2);
    ensure_eq!(r.r#type, ZX_EXCP_FATAL_PAGE_FAULT);
    ensure_eq!(r.vector, 14);
    ensure_eq!(r.cr2, UNMAPPED as u64);
    ensure_eq!(Status::from_raw(r.synth_code as i32), Status::ERR_NOT_FOUND);
    // Write access from user mode, page not present.
    ensure_eq!(r.err_code & 0b111, 0b110);
    // The exception names its thread; a thread channel gives no process.
    let et = check!(exc.thread());
    ensure_eq!(check!(et.handle().basic_info()).koid, tid);
    ensure_eq!(
        check!(et.handle().basic_info()).rights,
        check!(t.handle().basic_info()).rights
    );
    ensure_err!(exc.process(), Status::ERR_ACCESS_DENIED);
    // End the thread through the exception.
    check!(exc.set_state(ZX_EXCEPTION_STATE_THREAD_EXIT));
    drop(exc);
    wait_dead(&t)?;
    ensure_eq!(cell.load(Ordering::SeqCst), 0);
    ensure_eq!(check!(t.info()).state, ZX_THREAD_STATE_DEAD);
    ensure_err!(t.exception_report(), Status::ERR_BAD_STATE);
    Ok(())
}

fn exception_properties(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    let ch = check!(t.create_exception_channel(0));
    let cell = AtomicU64::new(0);
    start_store(&t, UNMAPPED, &cell)?;
    let (_, exc) = next_exception(&ch)?;
    ensure_eq!(check!(exc.state()), ZX_EXCEPTION_STATE_THREAD_EXIT);
    ensure_err!(exc.set_state(3), Status::ERR_INVALID_ARGS);
    check!(exc.set_state(ZX_EXCEPTION_STATE_HANDLED));
    ensure_eq!(check!(exc.state()), ZX_EXCEPTION_STATE_HANDLED);
    let h = exc.handle();
    let mut four = [0u8; 4];
    check!(h.get_property(ZX_PROP_EXCEPTION_STRATEGY, &mut four));
    ensure_eq!(u32::from_le_bytes(four), ZX_EXCEPTION_STRATEGY_FIRST_CHANCE);
    // Not held by a debugger: the strategy cannot change.
    ensure_err!(
        h.set_property(ZX_PROP_EXCEPTION_STRATEGY, &1u32.to_le_bytes()),
        Status::ERR_BAD_STATE
    );
    // Too small: BUFFER_TOO_SMALL; null value: INVALID_ARGS; unknown property: NOT_SUPPORTED.
    ensure_err!(
        h.get_property(ZX_PROP_EXCEPTION_STATE, &mut [0u8; 3]),
        Status::ERR_BUFFER_TOO_SMALL
    );
    // SAFETY: a null value pointer; the kernel must refuse it.
    let r =
        unsafe { zx::raw::syscall4(nr::ZX_SYS_OBJECT_GET_PROPERTY, h.raw() as usize, 16, 0, 4) };
    ensure_eq!(st(r), Status::ERR_INVALID_ARGS);
    ensure_err!(h.get_property(9999, &mut four), Status::ERR_NOT_SUPPORTED);
    // The state property on a thread: WRONG_TYPE.
    ensure_err!(
        t.handle().get_property(ZX_PROP_EXCEPTION_STATE, &mut four),
        Status::ERR_WRONG_TYPE
    );
    // ZX_PROP_NAME of a thread.
    let mut name = [0u8; 32];
    check!(t.handle().get_property(ZX_PROP_NAME, &mut name));
    ensure_eq!(&name[..8], b"faulter\0");
    ensure_err!(
        t.handle().get_property(ZX_PROP_NAME, &mut [0u8; 31]),
        Status::ERR_BUFFER_TOO_SMALL
    );
    // Without GET_PROPERTY / SET_PROPERTY: ACCESS_DENIED (the state is set first, so the
    // close still ends the thread).
    check!(exc.set_state(ZX_EXCEPTION_STATE_THREAD_EXIT));
    let exc = Exception::from(check!(exc
        .into_handle()
        .replace(ZX_RIGHT_TRANSFER | ZX_RIGHT_INSPECT)));
    ensure_err!(
        exc.handle()
            .get_property(ZX_PROP_EXCEPTION_STATE, &mut four),
        Status::ERR_ACCESS_DENIED
    );
    ensure_err!(
        exc.set_state(ZX_EXCEPTION_STATE_HANDLED),
        Status::ERR_ACCESS_DENIED
    );
    // Getting the thread needs no right.
    check!(exc.thread());
    drop(exc);
    wait_dead(&t)?;
    Ok(())
}

fn thread_state_needs_exception(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    ensure_err!(t.read_regs(), Status::ERR_BAD_STATE);
    ensure_err!(t.write_regs(&GeneralRegs::default()), Status::ERR_BAD_STATE);
    let ch = check!(t.create_exception_channel(0));
    let cell = AtomicU64::new(0);
    start_store(&t, UNMAPPED, &cell)?;
    let (_, exc) = next_exception(&ch)?;
    let mut buf = [0u64; 20];
    let h = t.handle().raw() as usize;
    let p = buf.as_mut_ptr() as usize;
    let call = |kind: u32, size: usize| {
        // SAFETY: the kernel writes at most `size` (<= 160) bytes into `buf`.
        let r =
            unsafe { zx::raw::syscall4(nr::ZX_SYS_THREAD_READ_STATE, h, kind as usize, p, size) };
        st(r)
    };
    ensure_eq!(
        call(ZX_THREAD_STATE_GENERAL_REGS, 159),
        Status::ERR_BUFFER_TOO_SMALL
    );
    ensure_eq!(
        call(ZX_THREAD_STATE_GENERAL_REGS, 0),
        Status::ERR_BUFFER_TOO_SMALL
    );
    ensure_eq!(
        call(ZX_THREAD_STATE_FP_REGS, 512),
        Status::ERR_NOT_SUPPORTED
    );
    ensure_eq!(call(99, 160), Status::ERR_INVALID_ARGS);
    ensure_eq!(call(ZX_THREAD_STATE_GENERAL_REGS, 160), Status::OK);
    // Rights: READ to read, WRITE to write.
    let no_read = Thread::from(check!(t
        .handle()
        .duplicate(ZX_DEFAULT_THREAD_RIGHTS & !ZX_RIGHT_READ)));
    ensure_err!(no_read.read_regs(), Status::ERR_ACCESS_DENIED);
    let regs = check!(t.read_regs());
    let no_write = Thread::from(check!(t
        .handle()
        .duplicate(ZX_DEFAULT_THREAD_RIGHTS & !ZX_RIGHT_WRITE)));
    ensure_err!(no_write.write_regs(&regs), Status::ERR_ACCESS_DENIED);
    ensure_eq!(regs.rip, utest_fault_store as *const () as u64);
    ensure_eq!(regs.rdi, UNMAPPED as u64);
    ensure_eq!(regs.rsi, &cell as *const AtomicU64 as u64);
    check!(exc.set_state(ZX_EXCEPTION_STATE_THREAD_EXIT));
    drop(exc);
    wait_dead(&t)?;
    ensure_err!(t.read_regs(), Status::ERR_BAD_STATE);
    Ok(())
}

fn resume_past_faulting_instruction(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    let ch = check!(t.create_exception_channel(0));
    let cell = AtomicU64::new(0);
    start_store(&t, UNMAPPED, &cell)?;
    let (_, exc) = next_exception(&ch)?;
    let mut regs = check!(t.read_regs());
    ensure_eq!(regs.rip, utest_fault_store as *const () as u64);
    regs.rip += STORE_LEN;
    ensure_eq!(regs.rip, utest_fault_store_next as *const () as u64);
    check!(t.write_regs(&regs));
    ensure_eq!(check!(t.read_regs()).rip, regs.rip);
    check!(exc.resume());
    wait_dead(&t)?;
    ensure_eq!(cell.load(Ordering::SeqCst), 0x5a);
    Ok(())
}

fn write_state_rejects_bad_registers(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    let ch = check!(t.create_exception_channel(0));
    let cell = AtomicU64::new(0);
    start_store(&t, UNMAPPED, &cell)?;
    let (_, exc) = next_exception(&ch)?;
    let regs = check!(t.read_regs());
    for rip in [0xffff_8000_0000_0000u64, 0x0000_8000_0000_0000, u64::MAX] {
        ensure_err!(
            t.write_regs(&GeneralRegs { rip, ..regs }),
            Status::ERR_INVALID_ARGS
        );
    }
    ensure_err!(
        t.write_regs(&GeneralRegs {
            fs_base: 0x0000_8000_0000_0000,
            ..regs
        }),
        Status::ERR_INVALID_ARGS
    );
    // A stack pointer above the user half: refused (the return to ring 3 is an iretq).
    ensure_err!(
        t.write_regs(&GeneralRegs {
            rsp: 0x0000_8000_0000_1000,
            ..regs
        }),
        Status::ERR_INVALID_ARGS
    );
    // Only the user RFLAGS bits change: IF (0x200) and IOPL stay as they were.
    check!(t.write_regs(&GeneralRegs {
        rflags: 0,
        rip: regs.rip + STORE_LEN,
        ..regs
    }));
    let after = check!(t.read_regs());
    ensure_eq!(after.rflags & 0x200, regs.rflags & 0x200);
    ensure_eq!(after.rflags & 0x3000, 0);
    check!(t.write_regs(&GeneralRegs {
        rflags: regs.rflags | 0x3000,
        rip: regs.rip + STORE_LEN,
        ..regs
    }));
    ensure_eq!(check!(t.read_regs()).rflags & 0x3000, 0);
    // A too-small buffer: BUFFER_TOO_SMALL.
    let bytes = [0u8; 100];
    // SAFETY: the kernel reads at most 100 bytes from `bytes`.
    let r = unsafe {
        zx::raw::syscall4(
            nr::ZX_SYS_THREAD_WRITE_STATE,
            t.handle().raw() as usize,
            0,
            bytes.as_ptr() as usize,
            bytes.len(),
        )
    };
    ensure_eq!(st(r), Status::ERR_BUFFER_TOO_SMALL);
    check!(exc.resume());
    wait_dead(&t)?;
    ensure_eq!(cell.load(Ordering::SeqCst), 0x5a);
    Ok(())
}

fn try_next_reaches_process_channel(ctx: &Ctx) -> TestResult {
    let pch = check!(ctx.process.create_exception_channel(0));
    let t = new_thread(ctx)?;
    let tch = check!(t.create_exception_channel(0));
    let cell = AtomicU64::new(0);
    start_store(&t, UNMAPPED, &cell)?;
    let (_, exc) = next_exception(&tch)?;
    // Not handled here: closing with TRY_NEXT passes it on.
    check!(exc.set_state(ZX_EXCEPTION_STATE_TRY_NEXT));
    drop(exc);
    let (info, exc) = next_exception(&pch)?;
    ensure_eq!(info.tid, check!(t.handle().basic_info()).koid);
    ensure_eq!(
        check!(t.info()).wait_exception_channel_type,
        ZX_EXCEPTION_CHANNEL_TYPE_PROCESS
    );
    // A process channel hands out the process too.
    let p = check!(exc.process());
    ensure_eq!(
        check!(p.handle().basic_info()).koid,
        check!(ctx.process.handle().basic_info()).koid
    );
    check!(exc.set_state(ZX_EXCEPTION_STATE_THREAD_EXIT));
    drop(exc);
    wait_dead(&t)?;
    drop(pch);
    Ok(())
}

fn thread_exit_ends_only_the_thread(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    let ch = check!(t.create_exception_channel(0));
    let cell = AtomicU64::new(0);
    start_store(&t, UNMAPPED, &cell)?;
    let (_, exc) = next_exception(&ch)?;
    check!(exc.set_state(ZX_EXCEPTION_STATE_THREAD_EXIT));
    drop(exc);
    wait_dead(&t)?;
    // This process lives on.
    ensure_eq!(
        check!(ctx.process.info()).flags & abi::info::process_flags::ZX_INFO_PROCESS_FLAG_EXITED,
        0
    );
    Ok(())
}

fn closing_channel_falls_through_to_kill(ctx: &Ctx) -> TestResult {
    let child = ctx.spawn("victim", case::FAULT_LATER)?;
    let ch = check!(child.process.create_exception_channel(0));
    let (info, exc) = next_exception(&ch)?;
    ensure_eq!(info.r#type, ZX_EXCP_FATAL_PAGE_FAULT);
    ensure_eq!(info.pid, check!(child.process.handle().basic_info()).koid);
    // Report through the thread handle the exception gives.
    let t = check!(exc.thread());
    let r = check!(t.exception_report());
    ensure_eq!(r.cr2, 0);
    ensure_eq!(Status::from_raw(r.synth_code as i32), Status::ERR_NOT_FOUND);
    // Drop the exception unhandled: no handler left, the process is killed as without one.
    check!(exc.set_state(ZX_EXCEPTION_STATE_TRY_NEXT));
    drop(exc);
    ensure_eq!(check!(child.wait()), ZX_TASK_RETCODE_EXCEPTION_KILL);
    ensure_eq!(check!(t.info()).state, ZX_THREAD_STATE_DEAD);
    // The kernel end went with the process.
    ensure_eq!(
        check!(ch.handle().wait_one(ZX_CHANNEL_PEER_CLOSED, 0)) & ZX_CHANNEL_PEER_CLOSED,
        ZX_CHANNEL_PEER_CLOSED
    );
    Ok(())
}

fn kill_process_in_exception(ctx: &Ctx) -> TestResult {
    let before = check!(zx::debug_kernel_stats());
    {
        let child = ctx.spawn("victim", case::FAULT_LATER)?;
        let ch = check!(child.process.create_exception_channel(0));
        let (_, exc) = next_exception(&ch)?;
        let t = check!(exc.thread());
        ensure_eq!(check!(t.info()).state, ZX_THREAD_STATE_BLOCKED_EXCEPTION);
        // Killing the process ends the thread stopped in the exception.
        check!(child.process.kill());
        ensure_eq!(check!(child.wait()), ZX_TASK_RETCODE_SYSCALL_KILL);
        check!(t.handle().wait_one(ZX_THREAD_TERMINATED, i64::MAX));
        // The exception handle outlives it harmlessly.
        ensure_err!(t.read_regs(), Status::ERR_BAD_STATE);
        drop(exc);
    }
    // The last references to a dead thread (and so its process) go when the scheduler leaves
    // it: give it a few ticks.
    let mut after = check!(zx::debug_kernel_stats());
    for _ in 0..50 {
        if after[abi::kstats::PROCESSES] == before[abi::kstats::PROCESSES] {
            break;
        }
        sleep_ms(10);
        after = check!(zx::debug_kernel_stats());
    }
    ensure_eq!(after[abi::kstats::HANDLES], before[abi::kstats::HANDLES]);
    ensure_eq!(
        after[abi::kstats::PROCESSES],
        before[abi::kstats::PROCESSES]
    );
    Ok(())
}

/// Blocks for about `ms` milliseconds (a wait that times out).
fn sleep_ms(ms: i64) {
    let (a, _b) = match Channel::create(0) {
        Ok(p) => p,
        Err(_) => return,
    };
    let _ = a.handle().wait_one(
        ZX_CHANNEL_READABLE,
        zx::clock_get_monotonic() + ms * 1_000_000,
    );
}

fn dead_thread_channel_peer_closed(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    let ch = check!(t.create_exception_channel(0));
    let cell = AtomicU64::new(0);
    start_store(&t, UNMAPPED, &cell)?;
    let (_, exc) = next_exception(&ch)?;
    check!(exc.set_state(ZX_EXCEPTION_STATE_THREAD_EXIT));
    drop(exc);
    wait_dead(&t)?;
    ensure_eq!(
        check!(ch.handle().wait_one(ZX_CHANNEL_PEER_CLOSED, i64::MAX)) & ZX_CHANNEL_PEER_CLOSED,
        ZX_CHANNEL_PEER_CLOSED
    );
    // A dead thread cannot get a new channel.
    drop(ch);
    ensure_err!(t.create_exception_channel(0), Status::ERR_BAD_STATE);
    Ok(())
}

fn unread_exception_dropped_with_channel(ctx: &Ctx) -> TestResult {
    let child = ctx.spawn("victim", case::FAULT_LATER)?;
    let ch = check!(child.process.create_exception_channel(0));
    let observed = check!(ch.handle().wait_one(ZX_CHANNEL_READABLE, i64::MAX));
    ensure!(observed & ZX_CHANNEL_READABLE != 0);
    // Closing the user end drops the queued message and its exception: TRY_NEXT, nobody left,
    // the process is killed.
    drop(ch);
    ensure_eq!(check!(child.wait()), ZX_TASK_RETCODE_EXCEPTION_KILL);
    Ok(())
}

fn process_channel_of_child_resumes_it(ctx: &Ctx) -> TestResult {
    // The child reads address 0 (a `u64` read_volatile); the handler maps nothing but skips
    // the load by moving RIP past it (its length decoded from the child's code), so the child
    // goes on, prints "read 0x..." and exits with victim's SURVIVED (77).
    let child = ctx.spawn("victim", case::FAULT_LATER)?;
    let ch = check!(child.process.create_exception_channel(0));
    let (info, exc) = next_exception(&ch)?;
    ensure_eq!(info.r#type, ZX_EXCP_FATAL_PAGE_FAULT);
    let t = check!(exc.thread());
    let regs = check!(t.read_regs());
    // Decode the faulting load's length from the child's code (read through the process).
    let mut code = [0u8; 16];
    check!(child.process.read_memory(regs.rip as usize, &mut code));
    let len = match insn_len_of_load(&code) {
        Some(n) => n,
        None => fail!("unexpected faulting instruction {code:02x?}"),
    };
    check!(t.write_regs(&GeneralRegs {
        rip: regs.rip + len,
        ..regs
    }));
    check!(exc.resume());
    ensure_eq!(check!(child.wait()), 77);
    Ok(())
}

/// Length of a `mov r64, [r64]` / `mov r64, [r64 + disp8]` load (REX.W 8B /r), the shape of a
/// `read_volatile` of a `u64` through a register; `None` for anything else.
fn insn_len_of_load(code: &[u8]) -> Option<u64> {
    let (rex, op, modrm) = (code[0], code[1], code[2]);
    if rex & 0xf8 != 0x48 || op != 0x8b {
        return None;
    }
    let rm = modrm & 7;
    let sib = u64::from(rm == 4);
    match modrm >> 6 {
        0 if rm == 5 => Some(3 + 4),
        // SIB without a base register: a 32-bit displacement follows.
        0 if rm == 4 && code[3] & 7 == 5 => Some(3 + 1 + 4),
        0 => Some(3 + sib),
        1 => Some(3 + sib + 1),
        2 => Some(3 + sib + 4),
        _ => None,
    }
}

/// Second thread: waits (forever) for the channel whose raw handle is `arg1` to be readable,
/// then exits.
extern "C" fn waiting_thread(arg1: usize, _arg2: usize) -> ! {
    let ch = core::mem::ManuallyDrop::new(Channel::from(Handle::from_raw(arg1 as u32)));
    let _ = ch.handle().wait_one(ZX_CHANNEL_READABLE, i64::MAX);
    Thread::exit()
}

fn thread_info_states(ctx: &Ctx) -> TestResult {
    let (a, b) = check!(Channel::create(0));
    let stack = vmo(4)?;
    let base = check!(ctx.root.map(super::util::RW, 0, &stack, 0, 4 * super::PAGE));
    let t = check!(Thread::create(&ctx.process, b"waiter", 0));
    let i = check!(t.info());
    ensure_eq!(i.state, ZX_THREAD_STATE_NEW);
    ensure_eq!(
        i.wait_exception_channel_type,
        ZX_EXCEPTION_CHANNEL_TYPE_NONE
    );
    ensure_eq!(i.cpu_affinity_mask[0], 1);
    // SAFETY: the entry only waits on `b` (open until the thread ended) on its own stack.
    check!(unsafe {
        t.start(
            waiting_thread as *const () as usize,
            base + 4 * super::PAGE - 8,
            b.handle().raw() as usize,
            0,
        )
    });
    let mut state = 0;
    for _ in 0..200 {
        state = check!(t.info()).state;
        if state == ZX_THREAD_STATE_BLOCKED_WAIT_ONE {
            break;
        }
        sleep_ms(5);
    }
    ensure_eq!(state, ZX_THREAD_STATE_BLOCKED_WAIT_ONE);
    check!(a.write(b"go", alloc::vec![]));
    wait_dead(&t)?;
    ensure_eq!(check!(t.info()).state, ZX_THREAD_STATE_DEAD);
    // SAFETY: the thread is gone; nothing uses its stack.
    check!(unsafe { ctx.root.unmap(base, 4 * super::PAGE) });
    Ok(())
}

fn names_of_threads_and_processes(ctx: &Ctx) -> TestResult {
    let t = new_thread(ctx)?;
    let (p, _vmar) = check!(zx::Process::create(&Handle::invalid(), b"before", 0));
    for h in [t.handle(), p.handle()] {
        check!(h.set_property(ZX_PROP_NAME, b"renamed"));
        let mut name = [0xffu8; 32];
        check!(h.get_property(ZX_PROP_NAME, &mut name));
        ensure_eq!(&name[..8], b"renamed\0");
        ensure!(name[8..].iter().all(|&b| b == 0));
        // Longer than 31 bytes: truncated.
        check!(h.set_property(ZX_PROP_NAME, &[b'x'; 40]));
        check!(h.get_property(ZX_PROP_NAME, &mut name));
        ensure_eq!(&name[..31], &[b'x'; 31]);
        ensure_eq!(name[31], 0);
        // A bad buffer: INVALID_ARGS; no SET_PROPERTY: ACCESS_DENIED.
        // SAFETY: the kernel must refuse the kernel-half buffer.
        let r = unsafe {
            zx::raw::syscall4(
                nr::ZX_SYS_OBJECT_SET_PROPERTY,
                h.raw() as usize,
                ZX_PROP_NAME as usize,
                0xffff_8000_0000_0000,
                8,
            )
        };
        ensure_eq!(st(r), Status::ERR_INVALID_ARGS);
        let ro = check!(h.duplicate(ZX_RIGHT_GET_PROPERTY | ZX_RIGHT_INSPECT));
        ensure_err!(
            ro.set_property(ZX_PROP_NAME, b"no"),
            Status::ERR_ACCESS_DENIED
        );
    }
    // VMOs have names too: `info::vmo_name_is_a_property_shown_in_info_and_maps`.
    Ok(())
}
