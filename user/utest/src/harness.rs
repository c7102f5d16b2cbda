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

/// The memory-attribution invariant, checked after every test: the bytes of the frames holding
/// VMO pages (`kstats::DATA_FRAMES`) minus the committed scaled bytes of this process's VMOs
/// (`ZX_INFO_PROCESS_VMOS`, each VMO once, fractions included) stay what they were before the
/// first test. This process is the only one left between two tests, so a frame that no VMO's
/// attribution accounts for (or one accounted twice) shows up as a change.
pub struct VmoFrames {
    before: i64,
}

/// Re-measurements of [`VmoFrames::check`] while a test's children may still be going away.
const VMO_FRAMES_TRIES: usize = 50;
/// The pause between two of them (ns).
const VMO_FRAMES_PAUSE_NS: i64 = 20_000_000;

impl VmoFrames {
    /// The value before the first test.
    pub fn new(ctx: &Ctx) -> Result<VmoFrames, Failure> {
        Ok(VmoFrames {
            before: Self::measure(ctx)?,
        })
    }

    /// Data-frame bytes minus the scaled bytes of this process's VMOs: the listing taken between
    /// two reads of the counter that agree (a page committed meanwhile, say a heap page of the
    /// listing's buffer or a stack page first touched, makes them differ: measured again).
    fn measure(ctx: &Ctx) -> Result<i64, Failure> {
        let fail = |what: &str, e: abi::Status| {
            Failure::new(file!(), line!(), alloc::format!("{what}: {e:?}"))
        };
        let data_frames = || -> Result<u64, Failure> {
            let stats = zx::debug_kernel_stats().map_err(|e| fail("kernel stats", e))?;
            Ok(stats[abi::kstats::DATA_FRAMES])
        };
        let mut tries = 0;
        loop {
            let first = data_frames()?;
            let mut vmos =
                zx::process::vmos(ctx.process.handle()).map_err(|e| fail("PROCESS_VMOS", e))?;
            vmos.sort_unstable_by_key(|v| v.koid);
            let mut sum = abi::info::ScaledBytes::default();
            let mut last = None;
            for v in &vmos {
                if last != Some(v.koid) {
                    sum = sum + v.committed_scaled();
                    last = Some(v.koid);
                }
            }
            let data = data_frames()?;
            tries += 1;
            if data == first || tries == 8 {
                return Ok(data as i64 * abi::PAGE_SIZE as i64 - sum.round() as i64);
            }
        }
    }

    /// After a test: the value is back to what it was (re-measured for up to a second, as the
    /// test's children may still be going away). A change fails the test, and becomes the new
    /// value, so the tests after it are not blamed for it.
    pub fn check(&mut self, ctx: &Ctx) -> TestResult {
        let mut now = Self::measure(ctx)?;
        for _ in 1..VMO_FRAMES_TRIES {
            if now == self.before {
                return Ok(());
            }
            let deadline = zx::clock_get_monotonic().saturating_add(VMO_FRAMES_PAUSE_NS);
            let _ = ctx
                .process
                .handle()
                .wait_one(abi::signals::ZX_PROCESS_TERMINATED, deadline);
            now = Self::measure(ctx)?;
        }
        if now == self.before {
            return Ok(());
        }
        let before = core::mem::replace(&mut self.before, now);
        Err(Failure::new(
            file!(),
            line!(),
            alloc::format!(
                "after the test, the frames holding VMO pages minus the scaled bytes of this \
                 process's VMOs are {now} bytes, {before} before it"
            ),
        ))
    }
}
