//! `cargo test`'s harness for the two in-QEMU suites at once: the ktest guest and the utest
//! guests (one per shard) boot concurrently, and each of their tests becomes its own libtest line
//! (`test ktest::frame_alloc::exhaustion ... ok`, `test utest::vmar::map_basic ... ok`). The
//! `ktest` and `utest` test targets run one suite each (`cargo test --test utest -- vmar::`).
//!
//! Environment: as the two harnesses (`KTEST_DEMO_FAILURES`, `KTEST_TIMEOUT`, `UTEST_TIMEOUT`,
//! `UTEST_SHARDS`, `KTEST_BOOT_TIMEOUT`, `ZXVM_KVM`, `ZXVM_UEFI`).

fn main() {
    tests::libtest_main_suites(vec![
        tests::Options::from_env(),
        tests::Options::utest_from_env(),
    ])
}
