//! The test modules; [`ALL`] lists them in run order.

use crate::harness::TestFn;

mod adversarial;
mod channel;
pub mod concurrency;
mod debug_memory;
pub mod demo;
mod exception;
mod fault;
mod handle;
mod info;
mod irqoff;
mod kheap;
mod misc;
mod nested;
mod oom;
mod probe;
mod quota;
mod shootdown;
mod spawn;
mod task;
mod user_ptr;
mod util;
mod vmar;
mod vmar_alloc;
mod vmar_edit;
mod vmar_map;
mod vmar_op;
mod vmo;
mod zero_page;
mod zircon_vmar;
mod zircon_vmo_clone;
mod zircon_vmo_clone2;
mod zircon_vmo_map;

/// Every module's tests: (module name, tests).
pub const ALL: &[(&str, &[(&str, TestFn)])] = &[
    ("spawn", spawn::TESTS),
    ("vmo", vmo::TESTS),
    ("vmar", vmar::TESTS),
    ("vmar_alloc", vmar_alloc::TESTS),
    ("vmar_map", vmar_map::TESTS),
    ("vmar_edit", vmar_edit::TESTS),
    ("vmar_op", vmar_op::TESTS),
    ("nested", nested::TESTS),
    ("handle", handle::TESTS),
    ("info", info::TESTS),
    ("task", task::TESTS),
    ("debug_memory", debug_memory::TESTS),
    ("user_ptr", user_ptr::TESTS),
    ("misc", misc::TESTS),
    ("fault", fault::TESTS),
    ("concurrency", concurrency::TESTS),
    ("shootdown", shootdown::TESTS),
    ("zircon_vmar", zircon_vmar::TESTS),
    ("zircon_vmo_map", zircon_vmo_map::TESTS),
    ("zircon_vmo_clone", zircon_vmo_clone::TESTS),
    ("zircon_vmo_clone2", zircon_vmo_clone2::TESTS),
    ("zero_page", zero_page::TESTS),
    ("adversarial", adversarial::TESTS),
    ("channel", channel::TESTS),
    ("exception", exception::TESTS),
    ("probe", probe::TESTS),
    ("kheap", kheap::TESTS),
    ("oom", oom::TESTS),
    ("quota", quota::TESTS),
    ("irqoff", irqoff::TESTS),
];

/// The tests that misbehave on purpose (only with `demo_failures=1`).
pub const DEMO: (&str, &[(&str, TestFn)]) = ("demo", demo::TESTS);

/// Page size.
pub const PAGE: usize = 4096;
