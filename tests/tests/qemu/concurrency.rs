//! Concurrent faults on 4 CPUs: utest's `concurrency::same_pages_faulted_on_every_cpu` (four
//! threads fault the same pages of one VMO at once; each page is committed once, the frame and
//! page-table counters return to their baseline) in a boot of its own with `-smp 4`, where the
//! four threads run on four CPUs at once. `CONC_SEED` selects the seed as for the suite.

use tests::{Options, Outcome};

fn run_on_4_cpus(name: &str) {
    let mut opts = Options::utest_from_env();
    opts.qemu.cpus = 4;
    opts.shards = 1;
    opts.filter = Some(format!("concurrency::{name}"));
    let report = tests::run(&opts).expect("suite ran");
    let full = format!("concurrency::{name}");
    let result = report
        .result(&full)
        .unwrap_or_else(|| panic!("{full} has no result: {report:#?}"));
    assert_eq!(result.outcome, Outcome::Passed, "{report:#?}");
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
}

#[test]
fn same_pages_faulted_on_every_cpu() {
    run_on_4_cpus("same_pages_faulted_on_every_cpu");
}
