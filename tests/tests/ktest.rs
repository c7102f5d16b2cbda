//! `cargo test` harness for the in-kernel tests: one QEMU boot runs the suite, each ktest becomes
//! its own libtest line (`test ktest::frame_alloc::exhaustion ... ok`).
//!
//! Environment: `KTEST_DEMO_FAILURES=1` adds the tests that fail / hang on purpose,
//! `KTEST_TIMEOUT=SECS` the per-test timeout (default 60), `ZXVM_KVM=1` KVM, `ZXVM_UEFI=1` UEFI.

use libtest_mimic::{Arguments, Failed, Trial};
use tests::{Options, Outcome};

fn main() {
    let args = Arguments::from_args();
    let mut opts = Options::from_env();
    let trials = if args.list {
        match tests::list(&opts) {
            Ok(names) => names
                .into_iter()
                .map(|n| Trial::test(format!("ktest::{n}"), || Ok(())))
                .collect(),
            Err(e) => vec![suite_error(e)],
        }
    } else {
        opts.filter = args.filter.as_deref().and_then(tests::kernel_filter);
        match tests::run(&opts) {
            Ok(report) => trials(report),
            Err(e) => vec![suite_error(e)],
        }
    };
    libtest_mimic::run(&args, trials).exit();
}

fn suite_error(e: tests::Error) -> Trial {
    let msg = e.to_string();
    Trial::test("ktest::suite", move || Err(Failed::from(msg)))
}

fn trials(report: tests::Report) -> Vec<Trial> {
    report
        .tests
        .iter()
        .map(|name| {
            let result = report.result(name).cloned();
            let name = name.clone();
            Trial::test(format!("ktest::{name}"), move || {
                let Some(r) = result else {
                    return Err(Failed::from(format!(
                        "{name} was listed but not run (filtered in the kernel, or an earlier crash)"
                    )));
                };
                let log = || format!("--- serial log ---\n{}\n--- end ---", r.log.join("\n"));
                match r.outcome {
                    Outcome::Passed => Ok(()),
                    Outcome::Failed { message, location } => {
                        Err(Failed::from(format!("{message}\n  at {location}\n{}", log())))
                    }
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
