//! Clocks, debug output, unknown syscalls, bad pointers to simple calls.

use abi::syscall_numbers as nr;
use abi::Status;
use zx::raw::{syscall0, syscall2};

use crate::harness::{Ctx, TestResult};

tests!(
    ticks_advance,
    clock_monotonic_advances,
    ramdisk_command_line_has_no_nonce,
    debug_write,
    debug_write_bad_pointer,
    unknown_syscall,
    wait_one_timeout,
);

fn ticks_advance(_ctx: &Ctx) -> TestResult {
    let a = zx::ticks_get();
    let mut x = 0u64;
    for i in 0..10_000 {
        x = core::hint::black_box(x + i);
    }
    let b = zx::ticks_get();
    ensure!(b > a, "ticks {a} then {b}");
    ensure!(zx::ticks_per_second() > 0);
    Ok(())
}

/// The clock moves with the ticks: over 10 ms of ticks (a bounded spin), at least 5 ms pass.
fn clock_monotonic_advances(_ctx: &Ctx) -> TestResult {
    let a = zx::clock_get_monotonic();
    let t0 = zx::ticks_get();
    let span = zx::ticks_per_second() / 100;
    let mut spins = 0u64;
    while zx::ticks_get() - t0 < span {
        spins += 1;
        ensure!(spins < 1 << 32, "ticks did not advance by {span}");
    }
    let b = zx::clock_get_monotonic();
    ensure!(a >= 0 && b - a >= 5_000_000, "monotonic {a} then {b}");
    Ok(())
}

/// The host's per-boot `nonce=` reaches only the first process (as arg2): the kernel blanks it
/// in the ramdisk it shares, so a process given the ramdisk cannot forge the suite's lines.
fn ramdisk_command_line_has_no_nonce(ctx: &Ctx) -> TestResult {
    let cmdline = ctx.ramdisk.cmdline();
    ensure!(
        cmdline.pairs().all(|(k, _)| k != "nonce"),
        "{:?}",
        cmdline.as_str()
    );
    Ok(())
}

fn debug_write(_ctx: &Ctx) -> TestResult {
    check!(zx::debug_write(b"misc: (debug_write works)\n"));
    check!(zx::debug_write(b""));
    Ok(())
}

fn debug_write_bad_pointer(_ctx: &Ctx) -> TestResult {
    for bad in [0xffff_8000_0000_0000usize, 0x10, usize::MAX - 2] {
        // SAFETY: the kernel must refuse the buffer.
        let r = unsafe { syscall2(nr::ZX_SYS_DEBUG_WRITE, bad, 16) };
        ensure_eq!(Status::from_raw(r as i32), Status::ERR_INVALID_ARGS);
    }
    Ok(())
}

fn unknown_syscall(_ctx: &Ctx) -> TestResult {
    for n in [nr::ZX_SYS_COUNT, 1000, u32::MAX] {
        // SAFETY: an unknown syscall touches nothing.
        let r = unsafe { syscall0(n) };
        ensure_eq!(Status::from_raw(r as i32), Status::ERR_BAD_SYSCALL);
    }
    Ok(())
}

fn wait_one_timeout(ctx: &Ctx) -> TestResult {
    let child = ctx.spawn("victim", super::fault::case::SPIN)?;
    let deadline = zx::clock_get_monotonic() + 20_000_000; // 20 ms
    ensure_err!(
        child
            .process
            .handle()
            .wait_one(abi::signals::ZX_PROCESS_TERMINATED, deadline),
        Status::ERR_TIMED_OUT
    );
    check!(child.process.kill());
    check!(child.wait());
    Ok(())
}
