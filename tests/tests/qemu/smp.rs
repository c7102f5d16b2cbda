//! Multiprocessor bring-up: the kernel boots with 1, 2, 4 and 8 CPUs (QEMU `-smp N`, found by the
//! kernel in the ACPI MADT), reports every one of them online in its boot log, and each
//! application processor answers ping IPIs (the ktest `smp::every_cpu_is_online_and_answers_pings`,
//! run in the same boot).

use boot::qemu::Exit;
use std::time::Duration;
use tests::Options;

/// The ktest run in each boot.
const PING_TEST: &str = "smp::every_cpu_is_online_and_answers_pings";

fn boot_with(cpus: u32) {
    let mut opts = Options::from_env();
    opts.qemu.cpus = cpus;
    let (exit, lines) = tests::boot_once(
        &opts.qemu,
        "mode=ktest filter=smp::",
        Duration::from_secs(90),
    )
    .expect("boot");
    let log = lines.join("\n");
    let online: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("zxkernel: cpus online: "))
        .collect();
    assert_eq!(online.len(), 1, "one `cpus online` line: {log}");
    let line = online[0];
    assert!(
        line.starts_with(&format!(
            "zxkernel: cpus online: {cpus} of {cpus} in the MADT"
        )),
        "{line}"
    );
    // One distinct APIC id per CPU.
    let ids = line
        .split_once("(apic ids ")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(ids, _)| ids)
        .unwrap_or_else(|| panic!("no apic ids in {line}"));
    let mut ids: Vec<u32> = ids.split(',').map(|i| i.parse().expect(i)).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), cpus as usize, "{line}");
    assert!(
        lines
            .iter()
            .any(|l| *l == format!("ktest: result {PING_TEST} ok")),
        "{log}"
    );
    assert_eq!(exit, Some(Exit::Success), "{log}");
}

#[test]
fn boots_with_1_cpu() {
    boot_with(1);
}

#[test]
fn boots_with_2_cpus() {
    boot_with(2);
}

#[test]
fn boots_with_4_cpus() {
    boot_with(4);
}

#[test]
fn boots_with_8_cpus() {
    boot_with(8);
}
