//! Starting programs and waiting for them.

use abi::task::ZX_TASK_RETCODE_SYSCALL_KILL;
use zx::process::{spawn, spawn_image, SpawnError};
use zx::rt::PANIC_RETCODE;
use zx::Handle;

use super::fault::case;
use crate::harness::{Ctx, TestResult};

tests!(
    child_exit_code,
    child_exit_zero,
    sequential_children,
    concurrent_children,
    panic_exit_code,
    kill_spinning_child,
    not_found,
    bad_image,
    info_process_flags,
);

fn child_exit_code(ctx: &Ctx) -> TestResult {
    let child = ctx.spawn("child", 42)?;
    ensure_eq!(check!(child.wait()), 42);
    Ok(())
}

fn child_exit_zero(ctx: &Ctx) -> TestResult {
    ensure_eq!(check!(ctx.spawn("child", 0)?.wait()), 0);
    Ok(())
}

fn sequential_children(ctx: &Ctx) -> TestResult {
    for i in 1..=5u64 {
        ensure_eq!(check!(ctx.spawn("child", i)?.wait()), i as i64);
    }
    Ok(())
}

fn concurrent_children(ctx: &Ctx) -> TestResult {
    let a = ctx.spawn("child", 7)?;
    let b = ctx.spawn("child", 8)?;
    let c = ctx.spawn("child", 9)?;
    ensure_eq!(check!(c.wait()), 9);
    ensure_eq!(check!(a.wait()), 7);
    ensure_eq!(check!(b.wait()), 8);
    Ok(())
}

fn panic_exit_code(ctx: &Ctx) -> TestResult {
    ensure_eq!(ctx.run_victim(case::PANIC)?, PANIC_RETCODE);
    Ok(())
}

fn kill_spinning_child(ctx: &Ctx) -> TestResult {
    let child = ctx.spawn("victim", case::SPIN)?;
    check!(child.process.kill());
    ensure_eq!(check!(child.wait()), ZX_TASK_RETCODE_SYSCALL_KILL);
    // Killing a dead process is fine.
    check!(child.process.kill());
    Ok(())
}

fn not_found(ctx: &Ctx) -> TestResult {
    match spawn(&ctx.ramdisk, "no-such-program", Handle::invalid(), 0) {
        Err(SpawnError::NotFound) => Ok(()),
        other => fail!("expected NotFound, got {:?}", other.map(|_| ())),
    }
}

fn bad_image(_ctx: &Ctx) -> TestResult {
    match spawn_image("garbage", b"\x7fELF not really", Handle::invalid(), 0) {
        Err(SpawnError::BadImage(_)) => Ok(()),
        other => fail!("expected BadImage, got {:?}", other.map(|_| ())),
    }
}

fn info_process_flags(ctx: &Ctx) -> TestResult {
    use abi::info::process_flags::*;
    let child = ctx.spawn("child", 3)?;
    ensure_eq!(check!(child.wait()), 3);
    let info = check!(child.process.info());
    ensure!(
        info.flags & ZX_INFO_PROCESS_FLAG_STARTED != 0,
        "flags {:#x}",
        info.flags
    );
    ensure!(
        info.flags & ZX_INFO_PROCESS_FLAG_EXITED != 0,
        "flags {:#x}",
        info.flags
    );
    ensure_eq!(info.return_code, 3);
    // A started (here dead) process cannot be started again: BAD_STATE, with an entry and a
    // stack that are plain user addresses so no argument check comes first.
    let thread = check!(zx::Thread::create(&child.process, b"again", 0));
    ensure_err!(
        child
            .process
            .start(&thread, 0x40_0000, 0x50_0000, Handle::invalid(), 0),
        abi::Status::ERR_BAD_STATE
    );
    Ok(())
}
