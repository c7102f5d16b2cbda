//! Concurrent faults on 4 CPUs: utest's `concurrency::same_pages_faulted_on_every_cpu` (four
//! threads fault the same pages of one VMO at once; each page is committed once, the frame and
//! page-table counters return to their baseline) in a boot of its own with `-smp 4`, where the
//! four threads run on four CPUs at once. `CONC_SEED` selects the seed as for the suite.

use super::utest_on_4_cpus;

#[test]
fn same_pages_faulted_on_every_cpu() {
    utest_on_4_cpus("concurrency::same_pages_faulted_on_every_cpu");
}
