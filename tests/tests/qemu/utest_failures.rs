//! The reporting path of the utest harness, end to end (the utest counterpart of
//! `demo_failures`): with `demo_failures=1` the `utest` program adds the `demo` tests, which fail,
//! have a child process print passes for them, hang and crash the kernel, and after `done` it has
//! the kernel panic. The harness must report each as what it is, ignore the child's lines, and
//! fail the run over the crash after `done`. Only the `demo` tests run (three short boots).

use std::time::Duration;
use tests::{Options, Outcome};

#[test]
fn failing_spoofed_hanging_and_crashing_utests_are_reported_as_such() {
    let mut opts = Options::utest_from_env();
    opts.demo_failures = true;
    opts.filter = Some("demo::".into());
    // One guest: the boot count below is the protocol's (restarts after the hang and the crash).
    opts.shards = 1;
    // The deliberate hang gets a short limit of its own (it hangs at once); the rest keep the
    // default.
    let hang_timeout = Duration::from_secs(1);
    opts.timeouts
        .push(("demo::hangs_on_purpose".into(), hang_timeout));
    let report = tests::run(&opts).expect("suite ran");
    let names = [
        "demo::fails_on_purpose",
        "demo::spoofs_a_pass",
        "demo::hangs_on_purpose",
        "demo::crashes_the_kernel",
        "demo::passes",
    ];
    assert_eq!(report.tests, names);
    let outcome = |name: &str| {
        report
            .result(name)
            .unwrap_or_else(|| panic!("{name} has no result: {report:#?}"))
            .outcome
            .clone()
    };

    match outcome("demo::fails_on_purpose") {
        Outcome::Failed { message, location } => {
            assert!(message.contains("answer == 42"), "message: {message}");
            let (file, line) = location.rsplit_once(':').expect("file:line");
            assert!(file.ends_with("user/utest/src/tests/demo.rs"), "{file}");
            assert!(line.parse::<u32>().is_ok(), "line in {location}");
        }
        other => panic!("fails_on_purpose: expected a failure, got {other:?}"),
    }
    // The child's passes did not count: the test's own verdict did.
    match outcome("demo::spoofs_a_pass") {
        Outcome::Failed { message, .. } => {
            assert!(
                message.contains("verdict of this test is FAILED"),
                "{message}"
            )
        }
        other => panic!("spoofs_a_pass: expected its own failure, got {other:?}"),
    }
    assert_eq!(
        outcome("demo::hangs_on_purpose"),
        Outcome::TimedOut(hang_timeout)
    );
    assert_eq!(
        outcome("demo::crashes_the_kernel"),
        Outcome::Crashed("kernel panic".into())
    );
    assert_eq!(outcome("demo::passes"), Outcome::Passed);
    assert_eq!(report.results.len(), names.len());

    // Two run errors: the child's three lines (boot 1), the panic after `done` (boot 3).
    assert_eq!(report.errors.len(), 2, "{:#?}", report.errors);
    let spoof = &report.errors[0];
    assert!(spoof.starts_with("boot 1: "), "{spoof}");
    for prefix in [
        "utest: ",
        "utest[0000000000000000]: ",
        "utest[00000000000003e8]: ",
    ] {
        let line = format!("{prefix}result demo::spoofs_a_pass ok");
        assert!(
            spoof.contains(&format!(
                "lacks this boot's nonce (another process's output?) was ignored: {line:?}"
            )),
            "{spoof}"
        );
    }
    let after_done = &report.errors[1];
    assert!(after_done.starts_with("boot 3: "), "{after_done}");
    assert!(
        after_done.contains(
            "after `done` the kernel must end the run with success, but it ended with kernel panic"
        ),
        "{after_done}"
    );
    // One boot, one after the hang, one after the crash.
    assert_eq!(report.boots, 3);
}
