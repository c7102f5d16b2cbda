//! Tests that misbehave on purpose, for the host's meta-test of the utest protocol
//! (`tests/tests/qemu/utest_failures.rs`). They are registered only with `demo_failures=1` on the
//! kernel command line, which also arms the kernel's panic on request.

use crate::harness::{Ctx, TestResult};

/// `victim` case that prints protocol lines for [`spoofs_a_pass`] (kept in sync with victim).
const SPOOF_UTEST: u64 = 1000;

/// What the kernel panics on when armed (`kernel/src/demo.rs`, `PANIC_REQUEST`).
const PANIC_REQUEST: &[u8] = b"demo: kernel, panic on purpose\n";

/// The demo tests, in run order.
pub const TESTS: &[(&str, crate::harness::TestFn)] = &[
    ("fails_on_purpose", fails_on_purpose),
    ("spoofs_a_pass", spoofs_a_pass),
    ("hangs_on_purpose", hangs_on_purpose),
    ("crashes_the_kernel", crashes_the_kernel),
    ("passes", passes),
];

fn fails_on_purpose(_ctx: &Ctx) -> TestResult {
    let answer = core::hint::black_box(41);
    ensure_eq!(answer, 42);
    Ok(())
}

/// A child prints `result demo::spoofs_a_pass ok` in every form it can make (it has no nonce);
/// the host must ignore those lines and report this test's own verdict, a failure.
fn spoofs_a_pass(ctx: &Ctx) -> TestResult {
    let code = ctx.run_victim(SPOOF_UTEST)?;
    ensure_eq!(code, 0);
    fail!("the verdict of this test is FAILED; a child printed passes for it")
}

fn hangs_on_purpose(_ctx: &Ctx) -> TestResult {
    loop {
        core::hint::spin_loop();
    }
}

fn crashes_the_kernel(_ctx: &Ctx) -> TestResult {
    panic_the_kernel();
    fail!("the kernel did not panic on request")
}

fn passes(_ctx: &Ctx) -> TestResult {
    Ok(())
}

/// Asks the (armed) kernel to panic.
pub fn panic_the_kernel() {
    let _ = zx::debug_write(PANIC_REQUEST);
}
