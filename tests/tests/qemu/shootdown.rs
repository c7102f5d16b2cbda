//! TLB shootdown on 4 CPUs: each user-mode test of utest's `shootdown` module (a thread writes a
//! page on another CPU while the main thread unmaps, protects, decommits or shrinks it) in a
//! boot of its own with `-smp 4`, one `cargo test` line each. On one CPU (the suite's default
//! run) the same tests cannot see a missing shootdown; here each fails when the kernel skips the
//! shootdown IPI (`no_shootdown=1`, see docs/conformance.md).

use super::utest_on_4_cpus;

#[test]
fn unmap_stops_writes_on_other_cpus() {
    utest_on_4_cpus("shootdown::unmap_stops_writes_on_other_cpus");
}

#[test]
fn protect_read_only_stops_writes_on_other_cpus() {
    utest_on_4_cpus("shootdown::protect_read_only_stops_writes_on_other_cpus");
}

#[test]
fn decommit_frees_no_frame_still_written() {
    utest_on_4_cpus("shootdown::decommit_frees_no_frame_still_written");
}

#[test]
fn shrink_frees_no_frame_still_written() {
    utest_on_4_cpus("shootdown::shrink_frees_no_frame_still_written");
}
