//! The test framework: the context every test gets, the failure type and the check macros.

use alloc::string::String;
use zx::bootfs::Ramdisk;
use zx::process::{spawn, Child};
use zx::{Handle, Process, Thread, Vmar};

/// What a test can use.
pub struct Ctx {
    /// The boot ramdisk (programs to spawn).
    pub ramdisk: Ramdisk,
    /// This process.
    pub process: Process,
    /// This process's root VMAR.
    pub root: Vmar,
    /// This process's initial thread.
    #[allow(dead_code)]
    pub thread: Thread,
}

impl Ctx {
    /// Spawns `victim` with misbehaviour `case` and waits for its return code.
    pub fn run_victim(&self, case: u64) -> Result<i64, Failure> {
        let child = self.spawn("victim", case)?;
        child
            .wait()
            .map_err(|e| Failure::new(file!(), line!(), alloc::format!("wait: {e:?}")))
    }

    /// Spawns a ramdisk program with `arg2`.
    pub fn spawn(&self, name: &str, arg2: u64) -> Result<Child, Failure> {
        spawn(&self.ramdisk, name, Handle::invalid(), arg2)
            .map_err(|e| Failure::new(file!(), line!(), alloc::format!("spawn {name}: {e}")))
    }
}

/// Why a test failed.
#[derive(Debug)]
pub struct Failure {
    /// Source file of the failed check.
    pub file: &'static str,
    /// Line of the failed check.
    pub line: u32,
    /// What went wrong.
    pub msg: String,
}

impl Failure {
    /// A failure at `file:line`.
    pub fn new(file: &'static str, line: u32, msg: String) -> Self {
        Failure { file, line, msg }
    }
}

/// A test's result.
pub type TestResult = Result<(), Failure>;
/// A test.
pub type TestFn = fn(&Ctx) -> TestResult;

/// Fails the test with a formatted message.
macro_rules! fail {
    ($($arg:tt)+) => {
        return Err($crate::harness::Failure::new(file!(), line!(), alloc::format!($($arg)+)))
    };
}

/// Fails unless the condition holds.
macro_rules! ensure {
    ($cond:expr) => {
        if !$cond {
            fail!("ensure failed: {}", stringify!($cond));
        }
    };
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            fail!($($arg)+);
        }
    };
}

/// Fails unless both sides are equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    fail!(
                        "{} == {}: left {:?}, right {:?}",
                        stringify!($left),
                        stringify!($right),
                        l,
                        r
                    );
                }
            }
        }
    };
}

/// Unwraps a `Result`, failing the test with the expression and the error.
macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => fail!("{} failed: {:?}", stringify!($e), err),
        }
    };
}

/// Fails unless the `Result` is the error `status`.
macro_rules! ensure_err {
    ($e:expr, $status:expr $(,)?) => {
        match $e {
            Ok(_) => fail!("{} succeeded; expected {:?}", stringify!($e), $status),
            Err(err) if err == $status => {}
            Err(err) => fail!(
                "{} returned {:?}; expected {:?}",
                stringify!($e),
                err,
                $status
            ),
        }
    };
}

/// Defines a module's test table: `tests!(a, b, c);`.
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        /// The tests of this module, in run order.
        pub const TESTS: &[(&str, $crate::harness::TestFn)] = &[$((stringify!($name), $name)),*];
    };
}
