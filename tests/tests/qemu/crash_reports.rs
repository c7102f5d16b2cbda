//! The fatal paths: a kernel stack overflow, an unexpected page fault, a kernel access to user
//! memory blocked by SMAP or SMEP, and a panic each end the run with their own exit code and a
//! symbolized report.

use boot::qemu::Exit;
use std::time::Duration;
use tests::Options;

fn crash(what: &str) -> (Option<Exit>, String) {
    let opts = Options::from_env();
    let (exit, lines) = tests::boot_once(
        &opts.qemu,
        &format!("mode=crash what={what}"),
        Duration::from_secs(90),
    )
    .expect("boot");
    (exit, lines.join("\n"))
}

#[test]
fn stack_overflow_hits_the_guard_page() {
    let (exit, log) = crash("stack_overflow");
    assert_eq!(exit, Some(Exit::Exception), "{log}");
    assert!(log.contains("kernel stack overflow"), "{log}");
    assert!(log.contains("in the guard page"), "{log}");
    assert!(log.contains("#DF (Double Fault)"), "{log}");
    assert!(
        log.contains("kernel::selftest::recurse at "),
        "symbolized: {log}"
    );
}

#[test]
fn unexpected_page_fault_is_reported() {
    let (exit, log) = crash("page_fault");
    assert_eq!(exit, Some(Exit::Exception), "{log}");
    assert!(log.contains("vector 14 #PF (Page Fault)"), "{log}");
    assert!(
        log.contains("CR2 0xffffff00deadb000 (not present, read, supervisor)"),
        "{log}"
    );
    assert!(log.contains("RIP 0x"), "{log}");
    assert!(
        log.contains("RAX 0x") && log.contains("R15 0x"),
        "registers: {log}"
    );
    assert!(log.contains("arch::crash::page_fault"), "symbolized: {log}");
}

#[test]
fn invalid_opcode_is_reported() {
    let (exit, log) = crash("invalid_opcode");
    assert_eq!(exit, Some(Exit::Exception), "{log}");
    assert!(log.contains("vector 6 #UD (Invalid Opcode)"), "{log}");
}

#[test]
fn smap_stops_kernel_reads_of_user_memory() {
    let (exit, log) = crash("smap");
    assert_eq!(exit, Some(Exit::Exception), "{log}");
    assert!(log.contains("vector 14 #PF (Page Fault)"), "{log}");
    assert!(
        log.contains("(protection violation, read, supervisor)"),
        "{log}"
    );
    assert!(
        log.contains("arch::crash::read_user_directly"),
        "symbolized: {log}"
    );
}

#[test]
fn smep_stops_kernel_execution_of_user_pages() {
    let (exit, log) = crash("smep");
    assert_eq!(exit, Some(Exit::Exception), "{log}");
    assert!(log.contains("vector 14 #PF (Page Fault)"), "{log}");
    assert!(
        log.contains("(protection violation, read, supervisor, instruction fetch)"),
        "{log}"
    );
}

#[test]
fn scheduler_reentry_panics_instead_of_spinning() {
    let (exit, log) = crash("sched_reentry");
    assert_eq!(exit, Some(Exit::Panic), "{log}");
    assert!(
        log.contains("scheduler re-entered"),
        "the re-entry was not reported as such: {log}"
    );
    assert!(
        !log.contains("the scheduler re-entry was not caught"),
        "the re-entry returned: {log}"
    );
}

#[test]
fn panic_is_reported_with_location_and_backtrace() {
    let (exit, log) = crash("panic");
    assert_eq!(exit, Some(Exit::Panic), "{log}");
    assert!(log.contains("PANIC at kernel/src/selftest.rs:"), "{log}");
    assert!(log.contains("selftest: deliberate panic"), "{log}");
    assert!(
        log.contains("kernel::selftest::run at "),
        "symbolized backtrace: {log}"
    );
}
