//! TLB shootdown on 4 CPUs: each user-mode test of utest's `shootdown` module (a thread writes a
//! page on another CPU while the main thread unmaps, protects, decommits or shrinks it) in a
//! boot of its own with `-smp 4`, one `cargo test` line each. On one CPU (the suite's default
//! run) the same tests cannot see a missing shootdown; here each fails when the kernel skips the
//! shootdown IPI (`no_shootdown=1`, see docs/conformance.md).

use tests::{Options, Outcome};

fn run_on_4_cpus(name: &str) {
    let mut opts = Options::utest_from_env();
    opts.qemu.cpus = 4;
    opts.shards = 1;
    opts.filter = Some(format!("shootdown::{name}"));
    let report = tests::run(&opts).expect("suite ran");
    let full = format!("shootdown::{name}");
    let result = report
        .result(&full)
        .unwrap_or_else(|| panic!("{full} has no result: {report:#?}"));
    assert_eq!(result.outcome, Outcome::Passed, "{report:#?}");
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
}

#[test]
fn unmap_stops_writes_on_other_cpus() {
    run_on_4_cpus("unmap_stops_writes_on_other_cpus");
}

#[test]
fn protect_read_only_stops_writes_on_other_cpus() {
    run_on_4_cpus("protect_read_only_stops_writes_on_other_cpus");
}

#[test]
fn decommit_frees_no_frame_still_written() {
    run_on_4_cpus("decommit_frees_no_frame_still_written");
}

#[test]
fn shrink_frees_no_frame_still_written() {
    run_on_4_cpus("shrink_frees_no_frame_still_written");
}
