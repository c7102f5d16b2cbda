//! Host side of the ktest suite: boots the kernel in `mode=ktest`, follows the serial protocol
//! (see `kernel/src/ktest_runner.rs`) and returns one result per in-kernel test.
//!
//! One boot runs the whole suite. When a test panics, crashes the kernel or hangs (no result
//! within the per-test timeout), QEMU is stopped and the suite is booted again with
//! `skip_through=NAME`, so the tests after it still run.

use boot::image::{Firmware, Ramdisk, TempImage};
use boot::qemu::{self, Event, Exit, Session};
use boot::symbolize::Symbolizer;
use std::path::Path;
use std::time::{Duration, Instant};

/// Prefix of every protocol line.
pub const PREFIX: &str = "ktest: ";

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// Include the `#[demo]` tests that fail / hang on purpose (`KTEST_DEMO_FAILURES=1`).
    pub demo_failures: bool,
    /// A test without a result after this long is a timeout (`KTEST_TIMEOUT`, seconds).
    pub per_test_timeout: Duration,
    /// Boot-to-first-test limit (`KTEST_BOOT_TIMEOUT`, seconds).
    pub boot_timeout: Duration,
    /// Substring filter passed to the kernel (`filter=`).
    pub filter: Option<String>,
    /// QEMU settings (firmware, KVM...).
    pub qemu: qemu::Config,
}

impl Options {
    /// Defaults, overridden by `KTEST_DEMO_FAILURES`, `KTEST_TIMEOUT`, `KTEST_BOOT_TIMEOUT`,
    /// `ZXVM_KVM` and `ZXVM_UEFI`.
    pub fn from_env() -> Self {
        let mut q = qemu::Config::default();
        if qemu::env_flag("ZXVM_UEFI") {
            q.firmware = Firmware::Uefi;
        }
        Self {
            demo_failures: qemu::env_flag("KTEST_DEMO_FAILURES"),
            per_test_timeout: qemu::env_secs("KTEST_TIMEOUT", 60),
            boot_timeout: qemu::env_secs("KTEST_BOOT_TIMEOUT", 120),
            filter: None,
            qemu: q,
        }
    }

    fn cmdline(&self, list_only: bool, skip_through: Option<&str>) -> String {
        let mut c = String::from("mode=ktest");
        if self.demo_failures {
            c.push_str(" demo_failures=1");
        }
        if list_only {
            c.push_str(" list_only=1");
        }
        if let Some(f) = &self.filter {
            c.push_str(&format!(" filter={f}"));
        }
        if let Some(s) = skip_through {
            c.push_str(&format!(" skip_through={s}"));
        }
        c
    }
}

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Passed.
    Passed,
    /// Returned `Err` or panicked: message and `file:line`.
    Failed {
        /// The failure message.
        message: String,
        /// `file:line` of the failed check or panic.
        location: String,
    },
    /// No result within the per-test timeout.
    TimedOut(Duration),
    /// The kernel died while the test ran (exception, triple fault...).
    Crashed(String),
}

/// The result of one test.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// Test name as the kernel prints it (e.g. `frame_alloc::exhaustion`).
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The (symbolized) serial log of the boot it ran in; filled for non-passing tests.
    pub log: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every test the kernel registered, in run order.
    pub tests: Vec<String>,
    /// Results in the order they happened.
    pub results: Vec<TestResult>,
    /// Number of QEMU boots it took.
    pub boots: usize,
}

impl Report {
    /// The result for `name`.
    pub fn result(&self, name: &str) -> Option<&TestResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

/// Error type.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

fn kernel() -> &'static Path {
    Path::new(boot::KERNEL_ELF)
}

/// The tests the kernel has (one short boot with `list_only=1`).
pub fn list(opts: &Options) -> Result<Vec<String>, Error> {
    let (exit, lines) = boot_once(&opts.qemu, &opts.cmdline(true, None), opts.boot_timeout)?;
    if exit != Some(Exit::Success) {
        return Err(format!("listing ktests failed ({exit:?}):\n{}", lines.join("\n")).into());
    }
    Ok(lines
        .iter()
        .filter_map(|l| l.strip_prefix("ktest: list "))
        .map(|s| s.trim().to_string())
        .collect())
}

/// Boots once with `cmdline`; returns how QEMU ended (`None`: killed at `timeout`) and the
/// symbolized serial lines.
pub fn boot_once(
    config: &qemu::Config,
    cmdline: &str,
    timeout: Duration,
) -> Result<(Option<Exit>, Vec<String>), Error> {
    let image = TempImage::build(kernel(), &Ramdisk::with_cmdline(cmdline), config.firmware)?;
    let mut session = Session::spawn(config, image.path())?;
    let mut sym = Symbolizer::new(kernel());
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    loop {
        match session.next(Some(deadline)) {
            Event::Line(l) => lines.push(sym.annotate(&l)),
            Event::Exited(e) => return Ok((Some(e), lines)),
            Event::TimedOut => {
                session.kill();
                return Ok((None, lines));
            }
        }
    }
}

fn parse_failure(rest: &str) -> (String, String) {
    // rest = "FILE:LINE: MESSAGE"
    match rest.split_once(": ") {
        Some((loc, msg)) => (loc.to_string(), msg.replace("\\n", "\n")),
        None => (rest.to_string(), String::new()),
    }
}

/// Runs the whole suite, rebooting past tests that panic, crash or hang.
pub fn run(opts: &Options) -> Result<Report, Error> {
    let mut report = Report::default();
    let mut skip_through: Option<String> = None;
    let mut sym = Symbolizer::new(kernel());
    loop {
        report.boots += 1;
        if report.boots > report.tests.len() + 2 {
            return Err("ktest: too many reboots, giving up".into());
        }
        let cmdline = opts.cmdline(false, skip_through.as_deref());
        let image = TempImage::build(
            kernel(),
            &Ramdisk::with_cmdline(&cmdline),
            opts.qemu.firmware,
        )?;
        let mut session = Session::spawn(&opts.qemu, image.path())?;
        let mut log: Vec<String> =
            vec![format!("[host] boot {}: cmdline {cmdline:?}", report.boots)];
        let mut deadline = Instant::now() + opts.boot_timeout;
        let mut current: Option<String> = None;
        let mut last_failed: Option<String> = None;
        let mut done = false;
        let first_result = report.results.len();
        let end: Option<Exit> = loop {
            match session.next(Some(deadline)) {
                Event::Line(raw) => {
                    log.push(sym.annotate(&raw));
                    let Some(msg) = raw.strip_prefix(PREFIX) else {
                        continue;
                    };
                    if let Some(name) = msg.strip_prefix("list ") {
                        if report.boots == 1 {
                            report.tests.push(name.trim().to_string());
                        }
                    } else if let Some(name) = msg.strip_prefix("running ") {
                        current = Some(name.trim().to_string());
                        deadline = Instant::now() + opts.per_test_timeout;
                    } else if let Some(rest) = msg.strip_prefix("result ") {
                        let (name, verdict) = rest.split_once(' ').unwrap_or((rest, ""));
                        let outcome = if verdict == "ok" {
                            Outcome::Passed
                        } else {
                            let detail = verdict.strip_prefix("FAILED at ").unwrap_or(verdict);
                            let (location, message) = parse_failure(detail);
                            last_failed = Some(name.to_string());
                            Outcome::Failed { message, location }
                        };
                        report.results.push(TestResult {
                            name: name.to_string(),
                            outcome,
                            log: Vec::new(),
                        });
                        current = None;
                        deadline = Instant::now() + opts.per_test_timeout;
                    } else if msg.starts_with("done") {
                        done = true;
                    }
                }
                Event::Exited(e) => break Some(e),
                Event::TimedOut => {
                    session.kill();
                    break None;
                }
            }
        };
        drop(image);
        let restart_after = match (end, &current) {
            (None, Some(name)) => {
                log.push(format!(
                    "[host] TIMEOUT: {name} gave no result within {} s; QEMU killed",
                    opts.per_test_timeout.as_secs()
                ));
                report.results.push(TestResult {
                    name: name.clone(),
                    outcome: Outcome::TimedOut(opts.per_test_timeout),
                    log: Vec::new(),
                });
                Some(name.clone())
            }
            (None, None) => {
                return Err(format!(
                    "ktest: kernel did not start a test within {} s:\n{}",
                    opts.boot_timeout.as_secs(),
                    log.join("\n")
                )
                .into())
            }
            (Some(exit), Some(name)) => {
                report.results.push(TestResult {
                    name: name.clone(),
                    outcome: Outcome::Crashed(exit.describe()),
                    log: Vec::new(),
                });
                Some(name.clone())
            }
            (Some(_), None) if done => None,
            (Some(Exit::Failed), None) if last_failed.is_some() => last_failed.clone(),
            (Some(exit), None) => {
                return Err(format!(
                    "ktest: kernel ended ({}) outside any test:\n{}",
                    exit.describe(),
                    log.join("\n")
                )
                .into())
            }
        };
        for r in &mut report.results[first_result..] {
            if r.outcome != Outcome::Passed {
                r.log = log.clone();
            }
        }
        match restart_after {
            Some(name) => skip_through = Some(name),
            None => return Ok(report),
        }
    }
}

/// Turns a libtest filter into a kernel `filter=` value when that is exact: the kernel matches
/// names without the `ktest::` prefix, so a filter overlapping that prefix is not passed on (the
/// kernel then runs everything and libtest filters).
pub fn kernel_filter(libtest_filter: &str) -> Option<String> {
    const P: &str = "ktest::";
    if let Some(rest) = libtest_filter.strip_prefix(P) {
        return (!rest.is_empty()).then(|| rest.to_string());
    }
    if libtest_filter.is_empty() || P.contains(libtest_filter) {
        return None;
    }
    // A filter starting with a suffix of the prefix (e.g. "t::heap") may match across it.
    let overlaps = (1..P.len()).any(|i| libtest_filter.starts_with(&P[i..]));
    (!overlaps).then(|| libtest_filter.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(kernel_filter("ktest::heap"), Some("heap".into()));
        assert_eq!(kernel_filter("exhaustion"), Some("exhaustion".into()));
        assert_eq!(kernel_filter("ktest"), None);
        assert_eq!(kernel_filter("t::heap"), None);
        assert_eq!(kernel_filter(":heap"), None);
        assert_eq!(kernel_filter(""), None);
    }

    #[test]
    fn failure_lines() {
        let (loc, msg) = parse_failure("kernel/src/demo.rs:10: panicked: a\\n  left: 1");
        assert_eq!(loc, "kernel/src/demo.rs:10");
        assert_eq!(msg, "panicked: a\n  left: 1");
    }
}
