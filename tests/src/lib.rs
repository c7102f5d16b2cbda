//! Host side of the QEMU test suites: boots the kernel, follows a suite's serial protocol and
//! returns one result per test. Two suites speak the same protocol (`PREFIX count N`,
//! `list NAME`, `running NAME`, `result NAME ok|FAILED at FILE:LINE: MSG`, `done passed=P
//! failed=F`):
//!
//! - [`Suite::Ktest`]: the in-kernel tests, `mode=ktest` (see `kernel/src/ktest_runner.rs`);
//! - [`Suite::Utest`]: the user-mode tests, the `utest` program started as the first process
//!   (`mode=run prog=utest args=...`, see `user/utest`).
//!
//! One boot runs the whole suite. When a test panics, crashes the kernel or hangs (no result
//! within the per-test timeout), QEMU is stopped and the suite is booted again with
//! `skip_through=NAME`, so the tests after it still run.

use boot::image::{Firmware, Ramdisk, TempImage};
use boot::qemu::{self, Event, Exit, Session};
use boot::symbolize::Symbolizer;
use std::path::Path;
use std::time::{Duration, Instant};

/// Prefix of every protocol line of the ktest suite.
pub const PREFIX: &str = "ktest: ";

/// The kernel's line when it has no user-mode support yet (`mode=run` ends right after boot).
const NO_USER_MODE: &str = "nothing else to run yet";

/// Which test suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// In-kernel tests (`mode=ktest`), lines prefixed `ktest: `.
    Ktest,
    /// User-mode tests (the `utest` program), lines prefixed `utest: `.
    Utest,
}

impl Suite {
    /// The suite's name: the first segment of its test names (`ktest::...`).
    pub fn name(self) -> &'static str {
        match self {
            Suite::Ktest => "ktest",
            Suite::Utest => "utest",
        }
    }

    /// The prefix of its protocol lines.
    pub fn prefix(self) -> &'static str {
        match self {
            Suite::Ktest => PREFIX,
            Suite::Utest => "utest: ",
        }
    }

    /// The protocol message in `line`, if it is one. User-mode lines may be preceded by whatever
    /// the kernel puts before debug output, so they are found anywhere in the line.
    fn message(self, line: &str) -> Option<&str> {
        match self {
            Suite::Ktest => line.strip_prefix(PREFIX),
            Suite::Utest => line.find("utest: ").map(|i| &line[i + "utest: ".len()..]),
        }
    }
}

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which suite.
    pub suite: Suite,
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
    /// Seed of utest's `concurrency` tests (`CONC_SEED`; the program's default when unset).
    pub conc_seed: Option<u64>,
    /// Tests with a timeout of their own instead of `per_test_timeout` (a deliberate hang is
    /// caught in seconds without shortening every other test's limit).
    pub timeouts: Vec<(String, Duration)>,
}

impl Options {
    /// Defaults for the user-mode suite: as [`Options::from_env`], with the per-test timeout from
    /// `UTEST_TIMEOUT` (default 60 s).
    pub fn utest_from_env() -> Self {
        Self {
            suite: Suite::Utest,
            demo_failures: false,
            per_test_timeout: qemu::env_secs("UTEST_TIMEOUT", 60),
            conc_seed: std::env::var("CONC_SEED")
                .ok()
                .map(|s| s.trim().parse().expect("CONC_SEED: a decimal u64")),
            ..Self::from_env()
        }
    }

    /// Defaults, overridden by `KTEST_DEMO_FAILURES`, `KTEST_TIMEOUT`, `KTEST_BOOT_TIMEOUT`,
    /// `ZXVM_KVM` and `ZXVM_UEFI`.
    pub fn from_env() -> Self {
        let mut q = qemu::Config::default();
        if qemu::env_flag("ZXVM_UEFI") {
            q.firmware = Firmware::Uefi;
        }
        Self {
            suite: Suite::Ktest,
            demo_failures: qemu::env_flag("KTEST_DEMO_FAILURES"),
            per_test_timeout: qemu::env_secs("KTEST_TIMEOUT", 60),
            boot_timeout: qemu::env_secs("KTEST_BOOT_TIMEOUT", 120),
            filter: None,
            qemu: q,
            conc_seed: None,
            timeouts: Vec::new(),
        }
    }

    /// The result timeout of test `name`.
    pub fn timeout_of(&self, name: &str) -> Duration {
        self.timeouts
            .iter()
            .find(|(n, _)| n == name)
            .map_or(self.per_test_timeout, |&(_, t)| t)
    }

    fn cmdline(&self, list_only: bool, skip_through: Option<&str>) -> String {
        let mut c = String::from(match self.suite {
            Suite::Ktest => "mode=ktest",
            // `args=` must come last: the program takes the rest of the line. The suite tests
            // `zx_process_read_memory` / `write_memory`: the debugging syscalls are on.
            Suite::Utest => "mode=run debug_syscalls=1 prog=utest args=",
        });
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
        if let (Suite::Utest, Some(seed)) = (self.suite, self.conc_seed) {
            c.push_str(&format!(" conc_seed={seed}"));
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
    /// The kernel cannot run user programs yet (it said so and ended without running the suite).
    pub unsupported: bool,
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

/// The tests the suite has (one short boot with `list_only=1`).
pub fn list(opts: &Options) -> Result<Vec<String>, Error> {
    let (exit, lines) = boot_once(&opts.qemu, &opts.cmdline(true, None), opts.boot_timeout)?;
    if exit != Some(Exit::Success) {
        return Err(format!(
            "listing {}s failed ({exit:?}):\n{}",
            opts.suite.name(),
            lines.join("\n")
        )
        .into());
    }
    Ok(lines
        .iter()
        .filter_map(|l| opts.suite.message(l)?.strip_prefix("list "))
        .map(|s| s.trim().to_string())
        .collect())
}

/// The ramdisk for a test boot: the command line and every user program.
fn ramdisk(cmdline: &str) -> Result<Ramdisk, Error> {
    Ramdisk::with_programs(cmdline)
}

/// Boots once with `cmdline`; returns how QEMU ended (`None`: killed at `timeout`) and the
/// symbolized serial lines.
pub fn boot_once(
    config: &qemu::Config,
    cmdline: &str,
    timeout: Duration,
) -> Result<(Option<Exit>, Vec<String>), Error> {
    let image = TempImage::build(kernel(), &ramdisk(cmdline)?, config.firmware)?;
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
            return Err(format!("{}: too many reboots, giving up", opts.suite.name()).into());
        }
        let cmdline = opts.cmdline(false, skip_through.as_deref());
        let image = TempImage::build(kernel(), &ramdisk(&cmdline)?, opts.qemu.firmware)?;
        let mut session = Session::spawn(&opts.qemu, image.path())?;
        let mut log: Vec<String> =
            vec![format!("[host] boot {}: cmdline {cmdline:?}", report.boots)];
        let mut deadline = Instant::now() + opts.boot_timeout;
        let mut current: Option<String> = None;
        let mut last_failed: Option<String> = None;
        let mut done = false;
        let mut no_user_mode = false;
        // `panic: MESSAGE at FILE:LINE` from the user runtime while a test runs.
        let mut panic: Option<(String, String)> = None;
        let first_result = report.results.len();
        let end: Option<Exit> = loop {
            match session.next(Some(deadline)) {
                Event::Line(raw) => {
                    log.push(sym.annotate(&raw));
                    if raw.contains(NO_USER_MODE) && opts.suite == Suite::Utest {
                        no_user_mode = true;
                    }
                    if let Some(p) = raw.find("panic: ").map(|i| &raw[i + "panic: ".len()..]) {
                        if let Some((msg, loc)) = p.rsplit_once(" at ") {
                            panic = Some((msg.to_string(), loc.to_string()));
                        }
                    }
                    let Some(msg) = opts.suite.message(&raw) else {
                        continue;
                    };
                    if let Some(name) = msg.strip_prefix("list ") {
                        if report.boots == 1 {
                            report.tests.push(name.trim().to_string());
                        }
                    } else if let Some(name) = msg.strip_prefix("running ") {
                        panic = None;
                        let name = name.trim().to_string();
                        deadline = Instant::now() + opts.timeout_of(&name);
                        current = Some(name);
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
                    opts.timeout_of(name).as_secs_f64()
                ));
                report.results.push(TestResult {
                    name: name.clone(),
                    outcome: Outcome::TimedOut(opts.timeout_of(name)),
                    log: Vec::new(),
                });
                Some(name.clone())
            }
            (None, None) => {
                return Err(format!(
                    "{}: kernel did not start a test within {} s:\n{}",
                    opts.suite.name(),
                    opts.boot_timeout.as_secs(),
                    log.join("\n")
                )
                .into())
            }
            (Some(exit), Some(name)) => {
                let outcome = match panic.take() {
                    Some((message, location)) => Outcome::Failed {
                        message: format!("panicked: {message} ({})", exit.describe()),
                        location,
                    },
                    None => Outcome::Crashed(exit.describe()),
                };
                report.results.push(TestResult {
                    name: name.clone(),
                    outcome,
                    log: Vec::new(),
                });
                Some(name.clone())
            }
            (Some(_), None) if done => None,
            (Some(Exit::Success), None) if no_user_mode && report.results.is_empty() => {
                report.unsupported = true;
                return Ok(report);
            }
            (Some(Exit::Failed), None) if last_failed.is_some() => last_failed.clone(),
            (Some(exit), None) => {
                return Err(format!(
                    "{}: kernel ended ({}) outside any test:\n{}",
                    opts.suite.name(),
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
    suite_filter(Suite::Ktest, libtest_filter)
}

/// [`kernel_filter`] for any suite (names without the `SUITE::` prefix).
pub fn suite_filter(suite: Suite, libtest_filter: &str) -> Option<String> {
    let prefix = format!("{}::", suite.name());
    let p = prefix.as_str();
    if libtest_filter.contains(char::is_whitespace) {
        return None;
    }
    if let Some(rest) = libtest_filter.strip_prefix(p) {
        return (!rest.is_empty()).then(|| rest.to_string());
    }
    if libtest_filter.is_empty() || p.contains(libtest_filter) {
        return None;
    }
    // A filter starting with a suffix of the prefix (e.g. "t::heap") may match across it.
    let overlaps = (1..p.len()).any(|i| libtest_filter.starts_with(&p[i..]));
    (!overlaps).then(|| libtest_filter.to_string())
}

/// The whole `cargo test` harness of a suite (`harness = false` test targets call this): one
/// libtest line per test, named `SUITE::NAME`.
pub fn libtest_main(mut opts: Options) -> ! {
    use libtest_mimic::{Arguments, Trial};
    let args = Arguments::from_args();
    let suite = opts.suite;
    let trials = if args.list {
        match list(&opts) {
            Ok(names) => names
                .into_iter()
                .map(|n| Trial::test(format!("{}::{n}", suite.name()), || Ok(())))
                .collect(),
            Err(e) => vec![suite_error(suite, e)],
        }
    } else {
        opts.filter = args.filter.as_deref().and_then(|f| suite_filter(suite, f));
        match run(&opts) {
            Ok(report) if report.unsupported => {
                vec![Trial::test(format!("{}::suite", suite.name()), || Ok(()))
                    .with_ignored_flag(true)
                    .with_kind("kernel cannot run user programs yet")]
            }
            Ok(report) => trials(suite, report),
            Err(e) => vec![suite_error(suite, e)],
        }
    };
    libtest_mimic::run(&args, trials).exit();
}

fn suite_error(suite: Suite, e: Error) -> libtest_mimic::Trial {
    let msg = e.to_string();
    libtest_mimic::Trial::test(format!("{}::suite", suite.name()), move || {
        Err(libtest_mimic::Failed::from(msg))
    })
}

fn trials(suite: Suite, report: Report) -> Vec<libtest_mimic::Trial> {
    use libtest_mimic::{Failed, Trial};
    report
        .tests
        .iter()
        .map(|name| {
            let result = report.result(name).cloned();
            let name = name.clone();
            Trial::test(format!("{}::{name}", suite.name()), move || {
                let Some(r) = result else {
                    return Err(Failed::from(format!(
                        "{name} was listed but not run (filtered out, or an earlier crash)"
                    )));
                };
                let log = || format!("--- serial log ---\n{}\n--- end ---", r.log.join("\n"));
                match r.outcome {
                    Outcome::Passed => Ok(()),
                    Outcome::Failed { message, location } => Err(Failed::from(format!(
                        "{message}\n  at {location}\n{}",
                        log()
                    ))),
                    Outcome::TimedOut(t) => Err(Failed::from(format!(
                        "timeout: {name} gave no result within {} s (hang?)\n{}",
                        t.as_secs(),
                        log()
                    ))),
                    Outcome::Crashed(how) => Err(Failed::from(format!(
                        "the kernel died while {name} ran: {how}\n{}",
                        log()
                    ))),
                }
            })
        })
        .collect()
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
        assert_eq!(
            suite_filter(Suite::Utest, "utest::vmar"),
            Some("vmar".into())
        );
        assert_eq!(
            suite_filter(Suite::Utest, "ktest::vmar"),
            Some("ktest::vmar".into())
        );
        assert_eq!(suite_filter(Suite::Utest, "st::vm"), None);
    }

    #[test]
    fn suite_messages() {
        assert_eq!(Suite::Ktest.message("ktest: count 3"), Some("count 3"));
        assert_eq!(Suite::Ktest.message("[x] ktest: count 3"), None);
        assert_eq!(
            Suite::Utest.message("[pid 5] utest: running a::b"),
            Some("running a::b")
        );
        let mut o = Options::utest_from_env();
        o.conc_seed = None;
        assert_eq!(
            o.cmdline(false, Some("vmar::x")),
            "mode=run debug_syscalls=1 prog=utest args= skip_through=vmar::x"
        );
    }

    #[test]
    fn failure_lines() {
        let (loc, msg) = parse_failure("kernel/src/demo.rs:10: panicked: a\\n  left: 1");
        assert_eq!(loc, "kernel/src/demo.rs:10");
        assert_eq!(msg, "panicked: a\n  left: 1");
    }
}
