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

/// Runs the one utest test `full_name` (`module::test`) in a boot of its own with `-smp 4` and
/// asserts it passed and the protocol saw no error: the 4-CPU lines of `shootdown` and
/// `concurrency`.
fn utest_on_4_cpus(full_name: &str) {
    let mut opts = tests::Options::utest_from_env();
    opts.qemu.cpus = 4;
    opts.shards = 1;
    opts.filter = Some(full_name.to_string());
    let report = tests::run(&opts).expect("suite ran");
    let result = report
        .result(full_name)
        .unwrap_or_else(|| panic!("{full_name} has no result: {report:#?}"));
    assert_eq!(result.outcome, tests::Outcome::Passed, "{report:#?}");
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
}
