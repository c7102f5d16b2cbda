//! Tests that fail or hang on purpose, to exercise the reporting path. They only run with
//! `demo_failures=1` on the kernel command line (host: `KTEST_DEMO_FAILURES=1`). With the same
//! word in `mode=run`, a process can ask the kernel to panic ([`PANIC_REQUEST`]).

use core::sync::atomic::{AtomicBool, Ordering};
use ktest::ktest;

ktest! {
    #[demo]
    fn fails_on_purpose() {
        let answer = core::hint::black_box(41);
        assert_eq!(answer, 42, "demo: this test fails on purpose");
        Ok(())
    }
}

ktest! {
    #[demo]
    fn hangs_on_purpose() {
        loop {
            core::hint::spin_loop();
        }
    }
}

ktest! {
    #[demo]
    fn passes_after_the_others() {
        // Runs after the failure and the hang: the harness must have booted again past them.
        Ok(())
    }
}

/// Set by `demo_failures=1` in `mode=run`: a process may then make the kernel panic (for the
/// utest harness's meta-test of a kernel crash during, and after, a user test).
static PANIC_ON_REQUEST: AtomicBool = AtomicBool::new(false);

/// What a process writes with `zx_debug_write` (as one call) to ask for the panic
/// (`user/utest/src/tests/demo.rs` writes it).
pub const PANIC_REQUEST: &[u8] = b"demo: kernel, panic on purpose\n";

/// Arms [`panic_if_requested`] (boot, `mode=run demo_failures=1` only).
pub fn arm_panic_on_request() {
    PANIC_ON_REQUEST.store(true, Ordering::Relaxed);
}

/// Panics when armed and `bytes` (one `zx_debug_write`) is [`PANIC_REQUEST`].
pub fn panic_if_requested(bytes: &[u8]) {
    if bytes == PANIC_REQUEST && PANIC_ON_REQUEST.load(Ordering::Relaxed) {
        panic!("demo: a process asked for a kernel panic (demo_failures=1)");
    }
}
