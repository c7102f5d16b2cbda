//! The QEMU harnesses that are plain `#[test]` functions, in one test binary so that libtest runs
//! them in parallel (one QEMU per core) instead of `cargo test` running their binaries one after
//! another. Each module is one harness; `cargo test --test qemu MODULE::` runs one of them.

mod concurrency;
mod crash_reports;
mod demo_failures;
mod fuzz;
mod shootdown;
mod smp;
mod utest_failures;
