//! `cargo test` harness for the in-kernel tests: one QEMU boot runs the suite, each ktest becomes
//! its own libtest line (`test ktest::frame_alloc::exhaustion ... ok`).
//!
//! Environment: `KTEST_DEMO_FAILURES=1` adds the tests that fail / hang on purpose,
//! `KTEST_TIMEOUT=SECS` the per-test timeout (default 60), `ZXVM_KVM=1` KVM, `ZXVM_UEFI=1` UEFI.

fn main() {
    tests::libtest_main(tests::Options::from_env())
}
