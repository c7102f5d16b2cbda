//! The test modules; [`ALL`] lists them in run order.

use crate::harness::TestFn;

mod fault;
mod handle;
mod info;
mod misc;
mod spawn;
mod vmar;
mod vmo;

/// Every module's tests: (module name, tests).
pub const ALL: &[(&str, &[(&str, TestFn)])] = &[
    ("spawn", spawn::TESTS),
    ("vmo", vmo::TESTS),
    ("vmar", vmar::TESTS),
    ("handle", handle::TESTS),
    ("info", info::TESTS),
    ("misc", misc::TESTS),
    ("fault", fault::TESTS),
];

/// Page size.
pub const PAGE: usize = 4096;
