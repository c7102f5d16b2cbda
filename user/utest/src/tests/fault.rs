//! Hardware enforcement: a child that breaks the rules is killed with
//! `ZX_TASK_RETCODE_EXCEPTION_KILL`, and the parent (this suite) and the kernel go on.

use abi::task::ZX_TASK_RETCODE_EXCEPTION_KILL;

use crate::harness::{Ctx, TestResult};

/// Misbehaviours of `victim` (arg2), kept in sync with `user/victim`.
pub mod case {
    pub const EXIT_ZERO: u64 = 0;
    pub const WRITE_READ_ONLY: u64 = 1;
    pub const EXECUTE_NX: u64 = 2;
    pub const TOUCH_UNMAPPED: u64 = 3;
    pub const PANIC: u64 = 4;
    pub const LEAK: u64 = 5;
    pub const SPIN: u64 = 6;
    pub const NULL_DEREF: u64 = 7;
    pub const WRITE_CODE: u64 = 8;
    pub const READ_KERNEL: u64 = 9;
    pub const STACK_OVERFLOW: u64 = 10;
    /// Drives the quotas (the kernel's ktests use it).
    #[allow(dead_code)]
    pub const EXHAUST: u64 = 11;
    pub const PROTECT_THEN_WRITE: u64 = 12;
    pub const PROTECT_REMOVES_EXECUTE: u64 = 13;
    pub const WRITE_AFTER_DECOMMIT_RO: u64 = 14;
    pub const READ_NO_ACCESS: u64 = 15;
    pub const TOUCH_PAST_VMO_END: u64 = 16;
    pub const TOUCH_AFTER_SHRINK: u64 = 17;
    /// Waits 300 ms, then reads address 0 (time to attach an exception channel).
    pub const FAULT_LATER: u64 = 18;
}

tests!(
    victim_control,
    write_read_only,
    execute_nx,
    touch_unmapped,
    null_deref,
    write_code,
    read_kernel,
    stack_overflow,
    protect_then_write,
    protect_removes_execute,
    write_after_decommit_read_only,
    read_no_access,
    touch_past_vmo_end,
    touch_after_shrink,
    leaky_child_exits,
);

fn killed(ctx: &Ctx, c: u64) -> TestResult {
    let code = ctx.run_victim(c)?;
    ensure_eq!(code, ZX_TASK_RETCODE_EXCEPTION_KILL);
    Ok(())
}

fn victim_control(ctx: &Ctx) -> TestResult {
    ensure_eq!(ctx.run_victim(case::EXIT_ZERO)?, 0);
    Ok(())
}

fn write_read_only(ctx: &Ctx) -> TestResult {
    killed(ctx, case::WRITE_READ_ONLY)
}

fn execute_nx(ctx: &Ctx) -> TestResult {
    killed(ctx, case::EXECUTE_NX)
}

fn touch_unmapped(ctx: &Ctx) -> TestResult {
    killed(ctx, case::TOUCH_UNMAPPED)
}

fn null_deref(ctx: &Ctx) -> TestResult {
    killed(ctx, case::NULL_DEREF)
}

fn write_code(ctx: &Ctx) -> TestResult {
    killed(ctx, case::WRITE_CODE)
}

fn read_kernel(ctx: &Ctx) -> TestResult {
    killed(ctx, case::READ_KERNEL)
}

fn stack_overflow(ctx: &Ctx) -> TestResult {
    killed(ctx, case::STACK_OVERFLOW)
}

fn protect_then_write(ctx: &Ctx) -> TestResult {
    killed(ctx, case::PROTECT_THEN_WRITE)
}

fn protect_removes_execute(ctx: &Ctx) -> TestResult {
    killed(ctx, case::PROTECT_REMOVES_EXECUTE)
}

fn write_after_decommit_read_only(ctx: &Ctx) -> TestResult {
    killed(ctx, case::WRITE_AFTER_DECOMMIT_RO)
}

fn read_no_access(ctx: &Ctx) -> TestResult {
    killed(ctx, case::READ_NO_ACCESS)
}

fn touch_past_vmo_end(ctx: &Ctx) -> TestResult {
    killed(ctx, case::TOUCH_PAST_VMO_END)
}

fn touch_after_shrink(ctx: &Ctx) -> TestResult {
    killed(ctx, case::TOUCH_AFTER_SHRINK)
}

fn leaky_child_exits(ctx: &Ctx) -> TestResult {
    // Leaks handles, mappings and committed pages; teardown must reclaim them (the kernel side
    // checks the counts; here: it exits normally, repeatedly).
    for _ in 0..3 {
        ensure_eq!(ctx.run_victim(case::LEAK)?, 3);
    }
    Ok(())
}
