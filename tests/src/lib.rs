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

    /// The prefix of its protocol lines in a boot with `nonce`: `ktest: ` (the kernel's own
    /// lines), `utest[NONCE]: ` (NONCE in 16 hex digits: the kernel hands the `nonce=` of its
    /// command line to the first process only, as arg2, and blanks it in the ramdisk it shares).
    pub fn prefix_with(self, nonce: u64) -> String {
        match self {
            Suite::Ktest => PREFIX.to_string(),
            Suite::Utest => format!("utest[{nonce:016x}]: "),
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
    /// utest only: run the suite as this many shards in parallel guests (`UTEST_SHARDS`,
    /// default 2: one per core of our machines); each shard's guest runs every Nth test.
    pub shards: usize,
    /// utest only: the shard this run is (`shard=K/N` on the command line), set by [`run`].
    shard: Option<(usize, usize)>,
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
            shards: std::env::var("UTEST_SHARDS")
                .ok()
                .map_or(2, |s| s.trim().parse().expect("UTEST_SHARDS: a count"))
                .max(1),
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
            shards: 1,
            shard: None,
        }
    }

    /// The result timeout of test `name`.
    pub fn timeout_of(&self, name: &str) -> Duration {
        self.timeouts
            .iter()
            .find(|(n, _)| n == name)
            .map_or(self.per_test_timeout, |&(_, t)| t)
    }

    fn cmdline(&self, list_only: bool, skip_through: Option<&str>, nonce: u64) -> String {
        let mut c = match self.suite {
            Suite::Ktest => String::from("mode=ktest"),
            // `args=` must come last: the program takes the rest of the line. `demo_failures`
            // is a kernel word too (it arms the kernel's panic on request). The suite tests
            // `zx_process_read_memory` / `write_memory`: the debugging syscalls are on.
            Suite::Utest => format!(
                "mode=run debug_syscalls=1 prog=utest{} nonce={nonce:016x} args=",
                if self.demo_failures {
                    " demo_failures=1"
                } else {
                    ""
                }
            ),
        };
        if self.demo_failures && self.suite == Suite::Ktest {
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
        if let (Suite::Utest, Some((k, n))) = (self.suite, self.shard) {
            c.push_str(&format!(" shard={k}/{n}"));
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
    /// What was wrong with the run besides test outcomes (protocol violations, a kernel that
    /// did not end with its success exit after `done`, lines without the boot's nonce...), each
    /// with the serial log of its boot. Any entry fails the run (`SUITE::suite`).
    pub errors: Vec<String>,
}

impl Report {
    /// Takes in one finished boot: its results, and as errors anything wrong with it, including
    /// a first boot that lists no tests without a filter, a later boot that does not list
    /// exactly the tests after `skip_through`, and a test with a result from an earlier boot.
    fn absorb(
        &mut self,
        mut boot: BootParse,
        skip_through: Option<&str>,
        filter: Option<&str>,
        log: &[String],
    ) {
        let after = |tests: &[String]| -> Vec<String> {
            let from = skip_through
                .and_then(|s| tests.iter().position(|t| t == s))
                .map_or(0, |i| i + 1);
            tests[from..].to_vec()
        };
        if skip_through.is_none() {
            if boot.listed.is_empty() && filter.is_none() {
                boot.errors.push("the suite listed no tests".into());
            }
            self.tests = boot.listed.clone();
        } else {
            // utest lists the tests after the one it skips through; the ktest runner lists all.
            let want = match boot.suite {
                Suite::Utest => after(&self.tests),
                Suite::Ktest => self.tests.clone(),
            };
            if boot.listed != want {
                boot.errors.push(format!(
                    "the boot listed {:?}, not the tests after {skip_through:?}",
                    boot.listed
                ));
            }
        }
        // Once the suite said `done`, every test it was to run has a result from this boot.
        if boot.done.is_some() && !boot.list_only {
            let to_run: Vec<String> = match boot.suite {
                Suite::Utest => boot.listed.clone(),
                Suite::Ktest => after(&boot.listed),
            }
            .into_iter()
            .filter(|n| filter.is_none_or(|f| n.contains(f)))
            .collect();
            let ran: Vec<String> = boot.results.iter().map(|r| r.name.clone()).collect();
            if ran != to_run {
                boot.errors.push(format!(
                    "`done` after results for {ran:?}; the tests to run were {to_run:?}"
                ));
            }
        }
        for r in &mut boot.results {
            if r.outcome != Outcome::Passed {
                r.log = log.to_vec();
            }
            if self.result(&r.name).is_some() {
                boot.errors.push(format!("{} ran again", r.name));
            }
        }
        self.results.append(&mut boot.results);
        if !boot.errors.is_empty() {
            self.errors.push(format!(
                "boot {}: {}\n--- serial log ---\n{}\n--- end ---",
                self.boots,
                boot.errors.join("\n"),
                log.join("\n")
            ));
        }
    }

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
    let nonce = new_nonce();
    let (exit, lines) = boot_once(
        &opts.qemu,
        &opts.cmdline(true, None, nonce),
        opts.boot_timeout,
    )?;
    let mut boot = BootParse::new(opts.suite, nonce);
    boot.list_only = true;
    for l in &lines {
        boot.line(l);
    }
    if exit != Some(Exit::Success) || boot.listed.is_empty() || !boot.errors.is_empty() {
        return Err(format!(
            "listing {}s failed ({exit:?}; {} listed; {}):\n{}",
            opts.suite.name(),
            boot.listed.len(),
            boot.errors.join("; "),
            lines.join("\n")
        )
        .into());
    }
    Ok(boot.listed)
}

/// The ramdisk for a test boot: [`Ramdisk::for_boot`] (the command line, its `prog=` program
/// and the programs tests spawn).
fn ramdisk(cmdline: &str) -> Result<Ramdisk, Error> {
    Ramdisk::for_boot(cmdline)
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

/// A fresh per-boot nonce for [`Suite::Utest`] (never 0: the kernel passes 0 when none is set).
fn new_nonce() -> u64 {
    use std::hash::BuildHasher;
    let n = std::collections::hash_map::RandomState::new()
        .hash_one((Instant::now(), std::process::id()));
    n.max(1)
}

/// Whether `line` has a `utest: ` or `utest[ANY]: ` prefix followed by a protocol word.
fn looks_like_utest_protocol(line: &str) -> bool {
    line.match_indices("utest").any(|(i, _)| {
        let rest = &line[i + "utest".len()..];
        let rest = match rest.strip_prefix('[') {
            Some(r) => r.split_once(']').map_or("", |(_, r)| r),
            None => rest,
        };
        rest.strip_prefix(": ").is_some_and(|m| {
            ["count ", "list ", "running ", "result ", "done"]
                .iter()
                .any(|w| m.starts_with(w))
        })
    })
}

/// What one protocol line did to the boot's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing that moves the per-test deadline.
    Idle,
    /// A test started, ended, or the suite said `done`: the per-test deadline starts again.
    Progress,
}

/// One boot's protocol, checked line by line: a test must be listed before it runs, a result
/// must name the running test and come once, `count` and `done passed=P failed=F` must agree
/// with what was listed and received, and (utest) a line counts only when it carries this
/// boot's nonce. Every violation is recorded in `errors`.
#[derive(Debug)]
struct BootParse {
    suite: Suite,
    /// The prefix of this boot's protocol lines (`ktest: `, `utest[NONCE]: `).
    prefix: String,
    count: Option<usize>,
    listed: Vec<String>,
    current: Option<String>,
    results: Vec<TestResult>,
    /// The last result of the boot was a failure (the ktest runner ends the boot with a failed
    /// exit after a test panicked).
    last_failed: Option<String>,
    done: Option<(usize, usize)>,
    /// `panic: MESSAGE at FILE:LINE` from the user runtime while a test ran.
    panic: Option<(String, String)>,
    errors: Vec<String>,
    /// A `list_only=1` boot: `done` comes without results.
    list_only: bool,
}

impl BootParse {
    fn new(suite: Suite, nonce: u64) -> Self {
        Self {
            list_only: false,
            suite,
            prefix: suite.prefix_with(nonce),
            count: None,
            listed: Vec::new(),
            current: None,
            results: Vec::new(),
            last_failed: None,
            done: None,
            panic: None,
            errors: Vec::new(),
        }
    }

    /// The protocol message of `line`, if it is one of this boot's. User-mode lines may follow
    /// another process's unterminated output on the same serial line, so the (nonce-bearing)
    /// prefix is looked for anywhere; a line that looks like the suite's protocol without it is
    /// reported as spoofed.
    fn message<'l>(&mut self, line: &'l str) -> Option<&'l str> {
        match self.suite {
            Suite::Ktest => line.strip_prefix(self.prefix.as_str()),
            Suite::Utest => match line.find(self.prefix.as_str()) {
                Some(i) => Some(&line[i + self.prefix.len()..]),
                None => {
                    if looks_like_utest_protocol(line) {
                        self.errors.push(format!(
                            "a line that looks like the suite's protocol but lacks this boot's \
                             nonce (another process's output?) was ignored: {line:?}"
                        ));
                    }
                    None
                }
            },
        }
    }

    fn line(&mut self, raw: &str) -> Step {
        if let Some(p) = raw.find("panic: ").map(|i| &raw[i + "panic: ".len()..]) {
            if let Some((msg, loc)) = p.rsplit_once(" at ") {
                self.panic = Some((msg.to_string(), loc.to_string()));
            }
        }
        let Some(msg) = self.message(raw) else {
            return Step::Idle;
        };
        let msg = msg.trim_end();
        if self.done.is_some() {
            self.errors
                .push(format!("protocol line after `done`: {msg:?}"));
            return Step::Idle;
        }
        if let Some(n) = msg.strip_prefix("count ") {
            match n.trim().parse() {
                Ok(n) if self.count.is_none() && self.listed.is_empty() => self.count = Some(n),
                _ => self.errors.push(format!("unexpected {msg:?}")),
            }
            Step::Idle
        } else if let Some(name) = msg.strip_prefix("list ") {
            let name = name.trim().to_string();
            if self.count.is_none() || self.current.is_some() || !self.results.is_empty() {
                self.errors.push(format!(
                    "`list {name}` outside the listing (before `count` or after a test ran)"
                ));
            } else if self.listed.contains(&name) {
                self.errors.push(format!("{name} listed twice"));
            } else {
                self.listed.push(name);
            }
            Step::Idle
        } else if let Some(name) = msg.strip_prefix("running ") {
            let name = name.trim().to_string();
            if let Some(prev) = &self.current {
                self.errors
                    .push(format!("{name} started while {prev} had no result"));
            }
            if self.count != Some(self.listed.len()) {
                self.errors.push(format!(
                    "`count {:?}` but {} tests listed",
                    self.count,
                    self.listed.len()
                ));
            }
            if !self.listed.contains(&name) {
                self.errors.push(format!("{name} ran but was not listed"));
            }
            if self.results.iter().any(|r| r.name == name) {
                self.errors.push(format!("{name} ran twice"));
            }
            self.panic = None;
            self.current = Some(name);
            Step::Progress
        } else if let Some(rest) = msg.strip_prefix("result ") {
            let (name, verdict) = rest.split_once(' ').unwrap_or((rest, ""));
            if self.current.as_deref() != Some(name) {
                self.errors.push(format!(
                    "result for {name} while {} (ignored)",
                    match &self.current {
                        Some(c) => format!("{c} was running"),
                        None => "no test was running".into(),
                    }
                ));
                return Step::Idle;
            }
            let outcome = if verdict == "ok" {
                self.last_failed = None;
                Outcome::Passed
            } else {
                let detail = verdict.strip_prefix("FAILED at ").unwrap_or(verdict);
                let (location, message) = parse_failure(detail);
                self.last_failed = Some(name.to_string());
                Outcome::Failed { message, location }
            };
            self.results.push(TestResult {
                name: name.to_string(),
                outcome,
                log: Vec::new(),
            });
            self.current = None;
            Step::Progress
        } else if let Some(rest) = msg.strip_prefix("done") {
            let counts = rest
                .trim()
                .strip_prefix("passed=")
                .and_then(|r| r.split_once(" failed="))
                .and_then(|(p, f)| Some((p.parse().ok()?, f.parse().ok()?)));
            let Some((passed, failed)) = counts else {
                self.errors.push(format!("malformed {msg:?}"));
                self.done = Some((usize::MAX, usize::MAX));
                return Step::Progress;
            };
            self.done = Some((passed, failed));
            if let Some(c) = &self.current {
                self.errors.push(format!("`done` while {c} had no result"));
            }
            let got_passed = self
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Passed)
                .count();
            let got_failed = self.results.len() - got_passed;
            if (passed, failed) != (got_passed, got_failed) {
                self.errors.push(format!(
                    "`done passed={passed} failed={failed}` but {got_passed} passed and \
                     {got_failed} failed results were received"
                ));
            }
            if self.count != Some(self.listed.len()) {
                self.errors.push(format!(
                    "`count {:?}` but {} tests listed",
                    self.count,
                    self.listed.len()
                ));
            }
            Step::Progress
        } else {
            Step::Idle
        }
    }

    /// How the boot ended (`None`: killed after the deadline): the test to restart after, or
    /// `None` when the suite is over. Records a timeout or crash of the running test in
    /// `results`, and anything else that is wrong in `errors`.
    fn finish(
        &mut self,
        end: Option<Exit>,
        timeout_of: impl Fn(&str) -> Duration,
        per_test_timeout: Duration,
    ) -> Option<String> {
        let restart_after = match (end, self.current.take()) {
            (None, Some(name)) => {
                self.results.push(TestResult {
                    outcome: Outcome::TimedOut(timeout_of(&name)),
                    name: name.clone(),
                    log: Vec::new(),
                });
                Some(name)
            }
            (Some(exit), Some(name)) => {
                // A user panic ends the test process, which the kernel turns into a failed run;
                // any other end is the kernel's own.
                let outcome = match (exit, self.panic.take()) {
                    (Exit::Failed, Some((message, location))) => Outcome::Failed {
                        message: format!("panicked: {message} ({})", exit.describe()),
                        location,
                    },
                    _ => Outcome::Crashed(exit.describe()),
                };
                self.results.push(TestResult {
                    name: name.clone(),
                    outcome,
                    log: Vec::new(),
                });
                Some(name)
            }
            (end, None) if self.done.is_some() => {
                let failed = self.done.map_or(0, |(_, f)| f);
                let expected = if failed == 0 {
                    Exit::Success
                } else {
                    Exit::Failed
                };
                if end != Some(expected) {
                    self.errors.push(format!(
                        "after `done` the kernel must end the run with {}, but it ended with {}",
                        expected.describe(),
                        match end {
                            Some(e) => e.describe(),
                            None => format!("no exit within {} s", per_test_timeout.as_secs()),
                        }
                    ));
                }
                None
            }
            (Some(Exit::Failed), None) if self.last_failed.is_some() => self.last_failed.clone(),
            (None, None) => {
                self.errors.push(format!(
                    "no test started or ended before the deadline ({} s)",
                    per_test_timeout.as_secs()
                ));
                None
            }
            (Some(exit), None) => {
                self.errors.push(format!(
                    "the kernel ended ({}) outside any test",
                    exit.describe()
                ));
                None
            }
        };
        restart_after
    }
}

/// Runs the whole suite, rebooting past tests that panic, crash or hang; a utest suite with
/// `shards > 1` runs as that many shards in parallel guests, their reports joined in the suite's
/// order.
pub fn run(opts: &Options) -> Result<Report, Error> {
    if opts.suite != Suite::Utest || opts.shards <= 1 || opts.shard.is_some() {
        return run_one(opts);
    }
    let n = opts.shards;
    let shards: Vec<_> = (0..n)
        .map(|k| {
            let mut o = opts.clone();
            o.shard = Some((k, n));
            std::thread::spawn(move || run_one(&o))
        })
        .collect();
    let mut parts = Vec::new();
    for s in shards {
        parts.push(s.join().map_err(|_| "a shard's runner panicked")??);
    }
    // Shard k listed the tests whose place is k modulo n: interleave them back.
    let mut report = Report::default();
    let longest = parts.iter().map(|p| p.tests.len()).max().unwrap_or(0);
    for i in 0..longest {
        for p in &parts {
            if let Some(t) = p.tests.get(i) {
                report.tests.push(t.clone());
            }
        }
    }
    for (k, p) in parts.into_iter().enumerate() {
        report.results.extend(p.results);
        report.boots += p.boots;
        report
            .errors
            .extend(p.errors.into_iter().map(|e| format!("shard {k}/{n}: {e}")));
    }
    Ok(report)
}

/// [`run`] for one guest (one shard).
fn run_one(opts: &Options) -> Result<Report, Error> {
    let mut report = Report::default();
    let mut skip_through: Option<String> = None;
    let mut sym = Symbolizer::new(kernel());
    loop {
        report.boots += 1;
        if report.boots > report.tests.len() + 2 {
            return Err(format!("{}: too many reboots, giving up", opts.suite.name()).into());
        }
        let nonce = new_nonce();
        let cmdline = opts.cmdline(false, skip_through.as_deref(), nonce);
        let image = TempImage::build(kernel(), &ramdisk(&cmdline)?, opts.qemu.firmware)?;
        let mut session = Session::spawn(&opts.qemu, image.path())?;
        let mut log: Vec<String> =
            vec![format!("[host] boot {}: cmdline {cmdline:?}", report.boots)];
        let mut deadline = Instant::now() + opts.boot_timeout;
        let mut boot = BootParse::new(opts.suite, nonce);
        let end: Option<Exit> = loop {
            match session.next(Some(deadline)) {
                Event::Line(raw) => {
                    log.push(sym.annotate(&raw));
                    if boot.line(&raw) == Step::Progress {
                        // A running test's own limit; the default until the next one starts.
                        let limit = boot
                            .current
                            .as_deref()
                            .map_or(opts.per_test_timeout, |n| opts.timeout_of(n));
                        deadline = Instant::now() + limit;
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
        if let (None, Some(name)) = (end, &boot.current) {
            log.push(format!(
                "[host] TIMEOUT: {name} gave no result within {} s; QEMU killed",
                opts.timeout_of(name).as_secs_f64()
            ));
        }
        let restart_after = boot.finish(end, |name| opts.timeout_of(name), opts.per_test_timeout);
        report.absorb(boot, skip_through.as_deref(), opts.filter.as_deref(), &log);
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
            Ok(report) => trials(suite, report),
            Err(e) => vec![suite_error(suite, e)],
        }
    };
    libtest_mimic::run(&args, trials).exit();
}

/// [`libtest_main`] for several suites in one test binary: their guests boot concurrently (one
/// thread per suite; the utest suite runs its shards as usual), then every result is one
/// libtest line. A filter that names another suite's prefix (`ktest::...`) skips a suite.
pub fn libtest_main_suites(suites: Vec<Options>) -> ! {
    use libtest_mimic::{Arguments, Trial};
    let args = Arguments::from_args();
    let names: Vec<&'static str> = suites.iter().map(|o| o.suite.name()).collect();
    let wanted = |suite: Suite| {
        let Some(f) = args.filter.as_deref() else {
            return true;
        };
        !names
            .iter()
            .any(|&n| n != suite.name() && f.starts_with(&format!("{n}::")))
    };
    let runs: Vec<_> = suites
        .into_iter()
        .filter(|o| wanted(o.suite))
        .map(|mut opts| {
            let listing = args.list;
            let filter = args.filter.clone();
            std::thread::spawn(move || {
                let suite = opts.suite;
                if listing {
                    return match list(&opts) {
                        Ok(names) => names
                            .into_iter()
                            .map(|n| Trial::test(format!("{}::{n}", suite.name()), || Ok(())))
                            .collect(),
                        Err(e) => vec![suite_error(suite, e)],
                    };
                }
                opts.filter = filter.as_deref().and_then(|f| suite_filter(suite, f));
                match run(&opts) {
                    Ok(report) => trials(suite, report),
                    Err(e) => vec![suite_error(suite, e)],
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for r in runs {
        all.extend(r.join().expect("a suite's runner panicked"));
    }
    libtest_mimic::run(&args, all).exit();
}

fn suite_error(suite: Suite, e: Error) -> libtest_mimic::Trial {
    let msg = e.to_string();
    libtest_mimic::Trial::test(format!("{}::suite", suite.name()), move || {
        Err(libtest_mimic::Failed::from(msg))
    })
}

fn trials(suite: Suite, report: Report) -> Vec<libtest_mimic::Trial> {
    use libtest_mimic::{Failed, Trial};
    let errors =
        (!report.errors.is_empty()).then(|| suite_error(suite, report.errors.join("\n\n").into()));
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
        .chain(errors)
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
    fn command_lines() {
        let mut o = Options::utest_from_env();
        o.conc_seed = None;
        assert_eq!(
            o.cmdline(false, Some("vmar::x"), 0xab),
            "mode=run debug_syscalls=1 prog=utest nonce=00000000000000ab args= skip_through=vmar::x"
        );
        o.demo_failures = true;
        assert_eq!(
            o.cmdline(true, None, 1),
            "mode=run debug_syscalls=1 prog=utest demo_failures=1 nonce=0000000000000001 args= list_only=1"
        );
        assert_ne!(new_nonce(), new_nonce());
    }

    const NONCE: u64 = 0x1234;
    const TIMEOUT: Duration = Duration::from_secs(1);

    /// Feeds `lines` (utest protocol messages, given the boot's nonce prefix unless they start
    /// with `!`, which marks a raw line) to a utest boot parse and ends it with `end`.
    fn utest_boot(lines: &[&str], end: Option<Exit>) -> (BootParse, Option<String>) {
        let mut boot = BootParse::new(Suite::Utest, NONCE);
        for l in lines {
            match l.strip_prefix('!') {
                Some(raw) => boot.line(raw),
                None => boot.line(&format!("{}{l}", Suite::Utest.prefix_with(NONCE))),
            };
        }
        let restart = boot.finish(end, |_| TIMEOUT, TIMEOUT);
        (boot, restart)
    }

    /// A boot, absorbed into a fresh report as the first one.
    fn first_boot(lines: &[&str], end: Option<Exit>, filtered: bool) -> Report {
        let (boot, restart) = utest_boot(lines, end);
        assert_eq!(restart, None);
        let mut report = Report {
            boots: 1,
            ..Report::default()
        };
        report.absorb(boot, None, filtered.then_some("a::"), &[]);
        report
    }

    const GOOD: &[&str] = &[
        "count 2",
        "list a::x",
        "list a::y",
        "running a::x",
        "result a::x ok",
        "running a::y",
        "result a::y FAILED at f.rs:3: no",
        "done passed=1 failed=1",
    ];

    #[test]
    fn a_clean_boot_has_no_errors() {
        let r = first_boot(GOOD, Some(Exit::Failed), false);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.tests, ["a::x", "a::y"]);
        assert_eq!(r.result("a::x").unwrap().outcome, Outcome::Passed);
        assert!(matches!(
            &r.result("a::y").unwrap().outcome,
            Outcome::Failed { location, .. } if location == "f.rs:3"
        ));
        let mut ok = GOOD.to_vec();
        ok[6] = "result a::y ok";
        ok[7] = "done passed=2 failed=0";
        assert!(first_boot(&ok, Some(Exit::Success), false)
            .errors
            .is_empty());
    }

    #[test]
    fn a_crash_after_done_fails_the_run() {
        for end in [
            Some(Exit::Panic),
            Some(Exit::Exception),
            Some(Exit::Reset),
            Some(Exit::Success),
            None,
        ] {
            let r = first_boot(GOOD, end, false);
            assert_eq!(r.errors.len(), 1, "{end:?}: {:?}", r.errors);
            assert!(r.errors[0].contains("after `done`"), "{}", r.errors[0]);
        }
    }

    #[test]
    fn zero_tests_listed_fail_the_run_unless_filtered() {
        let lines = ["count 0", "done passed=0 failed=0"];
        let r = first_boot(&lines, Some(Exit::Success), false);
        assert!(r.errors[0].contains("listed no tests"), "{:?}", r.errors);
        assert!(first_boot(&lines, Some(Exit::Success), true)
            .errors
            .is_empty());
    }

    #[test]
    fn count_and_done_are_checked_against_what_was_received() {
        let cases: &[(usize, &str, &str)] = &[
            (0, "count 3", "`count Some(3)` but 2 tests listed"),
            (
                7,
                "done passed=2 failed=0",
                "but 1 passed and 1 failed results",
            ),
            (
                7,
                "done passed=1 failed=2",
                "but 1 passed and 1 failed results",
            ),
            (7, "done", "malformed"),
        ];
        for &(at, line, want) in cases {
            let mut lines = GOOD.to_vec();
            lines[at] = line;
            let r = first_boot(&lines, Some(Exit::Failed), false);
            assert!(
                r.errors.iter().any(|e| e.contains(want)),
                "{line}: {:?}",
                r.errors
            );
        }
        // A test that is listed but never runs before `done`.
        let mut lines = GOOD.to_vec();
        lines.drain(5..7);
        lines[5] = "done passed=1 failed=0";
        let r = first_boot(&lines, Some(Exit::Success), false);
        assert!(
            r.errors
                .iter()
                .any(|e| e.contains("`done` after results for [\"a::x\"]")),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn results_count_only_from_the_running_test_and_only_once() {
        // A second result for a test, and a result for a test that is not running.
        let mut lines = GOOD.to_vec();
        lines.insert(5, "result a::x ok");
        lines.insert(6, "result a::y ok");
        let r = first_boot(&lines, Some(Exit::Failed), false);
        assert!(matches!(
            r.result("a::y").unwrap().outcome,
            Outcome::Failed { .. }
        ));
        assert_eq!(r.results.len(), 2);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(r.errors[0].contains("result for a::x while no test was running"));
        assert!(r.errors[0].contains("result for a::y while no test was running"));
    }

    #[test]
    fn lines_without_the_nonce_do_not_count_and_are_reported() {
        let mut lines = GOOD.to_vec();
        // Another process writes a pass for the running test, in the old format and with a
        // wrong nonce, then the test's own failure arrives.
        lines.insert(6, "!utest: result a::y ok");
        lines.insert(7, "!garbage utest[0000000000000000]: result a::y ok");
        let r = first_boot(&lines, Some(Exit::Failed), false);
        assert!(matches!(
            r.result("a::y").unwrap().outcome,
            Outcome::Failed { .. }
        ));
        assert!(
            r.errors[0].contains("lacks this boot's nonce"),
            "{:?}",
            r.errors
        );
        assert!(r.errors[0].contains("garbage utest[0000000000000000]"));
        assert!(looks_like_utest_protocol("x utest[]: done"));
        assert!(looks_like_utest_protocol("utest: count 1"));
        assert!(!looks_like_utest_protocol("loader: utest: image at 0x1000"));
        assert!(!looks_like_utest_protocol("utest[12: count 1"));
        // The boot's own lines count after another process's unterminated output.
        let mut lines = GOOD.to_vec();
        let prefixed = format!(
            "!victim: x{}result a::x ok",
            Suite::Utest.prefix_with(NONCE)
        );
        lines[4] = &prefixed;
        assert!(first_boot(&lines, Some(Exit::Failed), false)
            .errors
            .is_empty());
    }

    #[test]
    fn hangs_and_crashes_restart_after_the_test() {
        let (mut boot, restart) = utest_boot(&GOOD[..6], None);
        assert_eq!(restart.as_deref(), Some("a::y"));
        assert_eq!(boot.results[1].outcome, Outcome::TimedOut(TIMEOUT));
        assert!(boot.errors.is_empty());
        for (end, panic_line) in [
            (Exit::Panic, true),
            (Exit::Exception, false),
            (Exit::Failed, false),
        ] {
            let mut lines = GOOD[..6].to_vec();
            if panic_line {
                lines.push("!panic: boom at src/x.rs:9");
            }
            (boot, _) = utest_boot(&lines, Some(end));
            assert_eq!(boot.results[1].outcome, Outcome::Crashed(end.describe()));
        }
        // A user panic (the process exits, the kernel reports a failed run) is a failure.
        let mut lines = GOOD[..6].to_vec();
        lines.push("!panic: boom at src/x.rs:9");
        (boot, _) = utest_boot(&lines, Some(Exit::Failed));
        assert!(matches!(
            &boot.results[1].outcome,
            Outcome::Failed { location, .. } if location == "src/x.rs:9"
        ));
        // The next boot must list exactly the tests after the one it skips.
        let mut report = first_boot(GOOD, Some(Exit::Failed), false);
        let (b, _) = utest_boot(
            &["count 1", "list a::x", "done passed=0 failed=0"],
            Some(Exit::Success),
        );
        report.absorb(b, Some("a::x"), None, &[]);
        assert!(
            report.errors[0].contains("not the tests after"),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn failure_lines() {
        let (loc, msg) = parse_failure("kernel/src/demo.rs:10: panicked: a\\n  left: 1");
        assert_eq!(loc, "kernel/src/demo.rs:10");
        assert_eq!(msg, "panicked: a\n  left: 1");
    }
}
