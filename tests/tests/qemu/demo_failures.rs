//! The reporting path of the ktest harness, end to end: with the demo tests switched on, one test
//! fails on purpose and one hangs; the harness must report the failure with its file:line, report
//! the hang as a timeout naming the test, and still run every test after them.

use std::time::Duration;
use tests::{Options, Outcome};

#[test]
fn failing_and_hanging_ktests_are_reported_and_later_tests_still_run() {
    let mut opts = Options::from_env();
    opts.demo_failures = true;
    // The deliberate hang gets a short timeout of its own (it hangs at once, so any limit
    // catches it); every real test keeps the default limit.
    let hang_timeout = Duration::from_secs(3);
    opts.timeouts
        .push(("demo::hangs_on_purpose".into(), hang_timeout));
    let report = tests::run(&opts).expect("suite ran");

    // The failing test: message and file:line of the failed assertion.
    let failed = report
        .result("demo::fails_on_purpose")
        .expect("fails_on_purpose ran");
    match &failed.outcome {
        Outcome::Failed { message, location } => {
            assert!(message.contains("fails on purpose"), "message: {message}");
            let (file, line) = location.rsplit_once(':').expect("file:line");
            assert_eq!(file, "kernel/src/demo.rs");
            assert!(line.parse::<u32>().is_ok(), "line in {location}");
        }
        other => panic!("fails_on_purpose: expected a failure, got {other:?}"),
    }
    assert!(!failed.log.is_empty(), "the failure carries the serial log");

    // The hanging test: a timeout that names it, and its log ends with `running NAME`.
    let hung = report
        .result("demo::hangs_on_purpose")
        .expect("hangs_on_purpose ran");
    assert_eq!(hung.outcome, Outcome::TimedOut(hang_timeout));
    assert!(hung
        .log
        .iter()
        .any(|l| l == "ktest: running demo::hangs_on_purpose"));

    // Every other test ran and passed, including those after the two demo tests.
    let demo_pos = report
        .tests
        .iter()
        .position(|t| t == "demo::hangs_on_purpose")
        .unwrap();
    let after: Vec<_> = report.tests[demo_pos + 1..].to_vec();
    assert!(after.len() >= 3, "tests after the demo ones: {after:?}");
    for name in &report.tests {
        let r = report
            .result(name)
            .unwrap_or_else(|| panic!("{name} did not run"));
        if !name.starts_with("demo::") {
            assert_eq!(r.outcome, Outcome::Passed, "{name}");
        }
    }
    // One boot, one reboot after the panic, one after the hang.
    assert_eq!(report.boots, 3);
}
