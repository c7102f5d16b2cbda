//! Runs every registered ktest in one boot and reports over serial.
//!
//! Protocol (one line each, stable prefix `ktest: `, parsed by the host harness in `tests/`):
//! ```text
//! ktest: count N
//! ktest: list NAME                 (every test, in run order, before anything runs)
//! ktest: running NAME
//! ktest: result NAME ok
//! ktest: result NAME FAILED at FILE:LINE: MESSAGE   (newlines in MESSAGE escaped as \n)
//! ktest: done passed=P failed=F
//! ```
//! A test that returns `Err` is reported and the next test runs. A test that panics is reported
//! by the panic handler (see [`report_panic`]) and the kernel exits with `Failed`; a test that
//! crashes the kernel or hangs leaves `running NAME` as the last line. In both cases the host
//! restarts the suite with `skip_through=NAME`, so every later test still runs.
//!
//! Command-line keys: `mode=ktest`, `list_only=1`, `skip_through=NAME`, `filter=SUBSTRING`,
//! `demo_failures=1` (include the `#[demo]` tests that fail / hang on purpose).

use alloc::string::String;
use alloc::vec::Vec;
use arch::qemu::{self, ExitCode};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};
use ktest::KTESTS;
use ramdisk::Cmdline;

const NONE: usize = usize::MAX;
static CURRENT: AtomicUsize = AtomicUsize::new(NONE);

/// Registered (full) name of the test running now, if any.
fn current() -> Option<&'static str> {
    match CURRENT.load(Ordering::SeqCst) {
        NONE => None,
        i => KTESTS.get(i).map(|t| t.name),
    }
}

/// The name tests are known by: the registered `module_path::function` without the `kernel::`
/// crate prefix and without `tests` / `ktests` module segments, e.g.
/// `kernel::frame_alloc::tests::exhaustion` -> `frame_alloc::exhaustion`,
/// `arch::ktests::breakpoint_returns` -> `arch::breakpoint_returns`.
pub fn display_name(full: &str) -> String {
    let mut out = String::new();
    let _ = write_display_name(&mut out, full);
    out
}

/// Writes [`display_name`] without allocating (usable from the panic handler).
fn write_display_name(out: &mut impl Write, full: &str) -> fmt::Result {
    let mut first = true;
    for (i, seg) in full.split("::").enumerate() {
        if (i == 0 && seg == "kernel") || seg == "tests" || seg == "ktests" {
            continue;
        }
        if !first {
            out.write_str("::")?;
        }
        out.write_str(seg)?;
        first = false;
    }
    Ok(())
}

/// Writes through to `W`, escaping newlines so a message stays on one protocol line.
struct OneLine<W>(W);

impl<W: Write> Write for OneLine<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                self.0.write_str("\\n")?;
            }
            self.0.write_str(part)?;
        }
        Ok(())
    }
}

/// Runs the suite per the command line, then ends the run.
pub fn run(cmd: &Cmdline) -> ! {
    let demo = cmd.flag("demo_failures");
    let mut order: Vec<(String, usize)> = (0..KTESTS.len())
        .filter(|&i| demo || !KTESTS[i].demo)
        .map(|i| (display_name(KTESTS[i].name), i))
        .collect();
    order.sort();
    arch::println!("ktest: count {}", order.len());
    for (name, _) in &order {
        arch::println!("ktest: list {name}");
    }
    if cmd.flag("list_only") {
        qemu::exit(ExitCode::Success);
    }
    let skip_through = cmd.get("skip_through");
    let filter = cmd.get("filter");
    let mut skipping = skip_through.is_some();
    let (mut passed, mut failed) = (0, 0);
    for (name, i) in &order {
        let (name, i) = (name.as_str(), *i);
        let t = &KTESTS[i];
        if skipping {
            skipping = Some(name) != skip_through;
            continue;
        }
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        arch::println!("ktest: running {name}");
        CURRENT.store(i, Ordering::SeqCst);
        let result = (t.run)();
        CURRENT.store(NONE, Ordering::SeqCst);
        match result {
            Ok(()) => {
                passed += 1;
                arch::println!("ktest: result {name} ok");
            }
            Err(f) => {
                failed += 1;
                let mut out = OneLine(arch::serial::emergency());
                let _ = write!(
                    out,
                    "ktest: result {name} FAILED at {}:{}: {}",
                    f.file, f.line, f.message
                );
                arch::println!();
            }
        }
    }
    arch::println!("ktest: done passed={passed} failed={failed}");
    qemu::exit(if failed == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failed
    })
}

/// Called by the panic handler: if a test is running, reports it as failed (with the panic's
/// message and location) and ends the run so the host can restart after it.
pub fn report_panic(info: &core::panic::PanicInfo) {
    if let Some(name) = current() {
        let mut out = OneLine(arch::serial::emergency());
        let _ = write!(out, "ktest: result ");
        let _ = write_display_name(&mut out, name);
        let _ = write!(out, " FAILED at ");
        match info.location() {
            Some(l) => {
                let _ = write!(out, "{}:{}", l.file(), l.line());
            }
            None => {
                let _ = write!(out, "?:0");
            }
        }
        let _ = write!(out, ": panicked: {}", info.message());
        let _ = writeln!(arch::serial::emergency());
        let mut out = arch::serial::emergency();
        arch::backtrace::print_here(&mut out);
        qemu::exit(ExitCode::Failed);
    }
}
