//! `cargo test` harness for the user-mode tests: one QEMU boot runs the `utest` program as the
//! first process; each of its tests becomes its own libtest line (`test utest::vmar::map_basic
//! ... ok`). A test that crashes the kernel, panics (the process dies) or hangs ends that boot and
//! the suite is booted again past it.
//!
//! Environment: `UTEST_TIMEOUT=SECS` the per-test timeout (default 60), `KTEST_BOOT_TIMEOUT`,
//! `ZXVM_KVM=1`, `ZXVM_UEFI=1`. Protocol errors (spoofed lines, counts that disagree, a kernel
//! that does not end with its success exit after `done`) fail the line `utest::suite`.

fn main() {
    tests::libtest_main(tests::Options::utest_from_env())
}
