//! The in-kernel test registry.
//!
//! Any kernel-side crate registers tests with [`ktest!`]; every registration lands in the
//! [`KTESTS`] linker section (a `linkme` distributed slice), so the kernel finds all tests of all
//! crates at boot without a central list. A test returns [`Result`]: `Err` is a failure with a
//! message and the `file:line` of the failed check (see [`ensure!`] / [`ensure_eq!`]); a panic
//! inside a test is a failure too (the kernel's panic handler reports it with its location).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use core::fmt;

#[doc(hidden)]
pub use linkme;

/// A failed check: message and where it failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// Source file of the failed check.
    pub file: &'static str,
    /// Source line of the failed check.
    pub line: u32,
}

impl Failure {
    /// A failure at `file:line`.
    pub fn new(message: String, file: &'static str, line: u32) -> Self {
        Self {
            message,
            file,
            line,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}:{}", self.message, self.file, self.line)
    }
}

/// What a test returns.
pub type Result = core::result::Result<(), Failure>;

/// One registered test.
pub struct KTest {
    /// Full name: `crate::module::function`.
    pub name: &'static str,
    /// The test body.
    pub run: fn() -> Result,
    /// Deliberately failing or hanging test, run only with `demo_failures=1`.
    pub demo: bool,
}

/// Every test registered with [`ktest!`] in any crate linked into the kernel.
#[linkme::distributed_slice]
pub static KTESTS: [KTest];

/// Registers an in-kernel test.
///
/// ```ignore
/// ktest::ktest! {
///     fn allocates_and_frees() {
///         let x = alloc::boxed::Box::new(5);
///         ktest::ensure_eq!(*x, 5);
///         Ok(())
///     }
/// }
/// ```
///
/// `#[demo]` before `fn` marks a test that fails or hangs on purpose: it only runs when the
/// kernel command line has `demo_failures=1`.
#[macro_export]
macro_rules! ktest {
    (#[demo] fn $name:ident() $body:block) => {
        $crate::ktest!(@register $name, true, $body);
    };
    (fn $name:ident() $body:block) => {
        $crate::ktest!(@register $name, false, $body);
    };
    (@register $name:ident, $demo:expr, $body:block) => {
        #[allow(missing_docs)]
        fn $name() -> $crate::Result $body

        const _: () = {
            #[$crate::linkme::distributed_slice($crate::KTESTS)]
            #[linkme(crate = $crate::linkme)]
            static TEST: $crate::KTest = $crate::KTest {
                name: concat!(module_path!(), "::", stringify!($name)),
                run: $name,
                demo: $demo,
            };
        };
    };
}

/// Fails the test (returns `Err`) with `file:line` when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr) => {
        if !$cond {
            return Err($crate::Failure::new(
                $crate::__format(format_args!("check failed: {}", stringify!($cond))),
                file!(),
                line!(),
            ));
        }
    };
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::Failure::new(
                $crate::__format(format_args!($($arg)+)),
                file!(),
                line!(),
            ));
        }
    };
}

/// Fails the test (returns `Err`) with both values and `file:line` when `a != b`.
#[macro_export]
macro_rules! ensure_eq {
    ($a:expr, $b:expr $(,)?) => {
        match (&$a, &$b) {
            (a, b) => {
                if *a != *b {
                    return Err($crate::Failure::new(
                        $crate::__format(format_args!(
                            "check failed: {} == {} (left: {:?}, right: {:?})",
                            stringify!($a),
                            stringify!($b),
                            a,
                            b
                        )),
                        file!(),
                        line!(),
                    ));
                }
            }
        }
    };
}

#[doc(hidden)]
pub fn __format(args: fmt::Arguments) -> String {
    alloc::fmt::format(args)
}
