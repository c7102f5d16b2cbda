//! The reporting path of the ktest harness, end to end: with the demo tests switched on (and only
//! them), one test fails on purpose and one hangs; the harness must report the failure with its
//! file:line, report the hang as a timeout naming the test, and still run the test after them.

use std::time::Duration;
use tests::{Options, Outcome};

#[test]
fn failing_and_hanging_ktests_are_reported_and_later_tests_still_run() {
    let mut opts = Options::from_env();
    opts.demo_failures = true;
    // Only the demo tests (the whole suite runs in the ktest harness): the last of them runs
    // after the failure and the hang, as later tests would.
    opts.filter = Some("demo::".into());
    // The deliberate hang gets a short timeout of its own (it hangs at once, so any limit
    // catches it); every real test keeps the default limit.
    let hang_timeout = Duration::from_secs(1);
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

    // The test after the failure and the hang ran and passed (the kernel lists the whole suite
    // and runs the filtered tests).
    let ran: Vec<&String> = report
        .tests
        .iter()
        .filter(|t| report.result(t).is_some())
        .collect();
    assert_eq!(
        ran,
        [
            "demo::fails_on_purpose",
            "demo::hangs_on_purpose",
            "demo::passes_after_the_others"
        ]
    );
    let after = report
        .result("demo::passes_after_the_others")
        .expect("the test after the hang ran");
    assert_eq!(after.outcome, Outcome::Passed);
    // One boot, one reboot after the panic, one after the hang.
    assert_eq!(report.boots, 3);
}
