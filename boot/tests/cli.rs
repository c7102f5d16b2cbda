//! The `boot` command as a user runs it: two runs from one checkout at once both succeed (each
//! boots its own image copy), a `boot` ended by a signal leaves no QEMU behind, and the UEFI path
//! boots as well as the default BIOS one (which every other QEMU test uses).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn boot() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_boot"));
    c.stdin(Stdio::null());
    c
}

/// PIDs of running QEMUs whose command line names an image of `boot` process `pid`
/// (`run-PID-N-FIRMWARE.img`).
fn qemus_of(pid: u32) -> Vec<u32> {
    let needle = format!("/run-{pid}-");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        // Only QEMU itself: setpriv execs it, so the process is QEMU once started.
        if cmd.starts_with("qemu-system-x86_64") && cmd.contains(&needle) {
            found.push(p);
        }
    }
    found
}

/// Starts `boot` on a kernel that hangs in a test forever, and waits until QEMU runs the kernel.
fn hanging_boot() -> Child {
    // Through `env --default-signal`: a shell without job control starts background commands
    // with SIGINT ignored, and an ignored signal stays ignored across exec, so `boot` would never
    // see the test's SIGINT. `env` execs `boot` (same PID).
    let mut child = Command::new("env")
        .stdin(Stdio::null())
        .args(["--default-signal=INT,TERM", env!("CARGO_BIN_EXE_boot")])
        .args([
            // Bounds the wait for the hang below too: reading the next line blocks while the
            // kernel is silent, and boot's own timeout ends the stream.
            "--timeout",
            "120",
            "--cmdline",
            "mode=ktest demo_failures=1 filter=demo::hangs_on_purpose",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn boot");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            Instant::now() < deadline,
            "the kernel never started the hang"
        );
        match lines.next() {
            Some(Ok(l)) if l.contains("ktest: running demo::hangs_on_purpose") => break,
            Some(Ok(_)) => {}
            _ => panic!("boot ended before the hang"),
        }
    }
    // Keep draining stdout so QEMU never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    assert_eq!(qemus_of(child.id()).len(), 1, "one QEMU for this boot");
    child
}

fn assert_no_qemu_left(pid: u32, how: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !qemus_of(pid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "QEMU of boot {pid} still runs 10 s after boot got {how}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_runs_from_one_checkout_both_succeed() {
    let runs: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(|| boot().output().expect("run boot")))
        .collect();
    for (name, run) in ["first", "second"].into_iter().zip(runs) {
        let out = run.join().expect("runner thread");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{name} run failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        assert!(
            stdout.contains("demo: all steps done; exiting with 0"),
            "{stdout}"
        );
        assert!(
            stderr.contains("boot: QEMU spawn -> first kernel line:"),
            "{stderr}"
        );
    }
}

#[test]
fn killing_boot_ends_its_qemu() {
    // The three boots start together; each is signalled as soon as its kernel reaches the hang.
    let boots: Vec<_> = ["TERM", "INT", "KILL"]
        .into_iter()
        .map(|signal| {
            std::thread::spawn(move || {
                let mut child = hanging_boot();
                let pid = child.id();
                let status = Command::new("kill")
                    .args([&format!("-{signal}"), &pid.to_string()])
                    .status()
                    .expect("kill");
                assert!(status.success());
                let deadline = Instant::now() + Duration::from_secs(30);
                while child.try_wait().expect("wait").is_none() {
                    assert!(
                        Instant::now() < deadline,
                        "boot {pid} still runs 30 s after SIG{signal}"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                assert_no_qemu_left(pid, &format!("SIG{signal}"));
            })
        })
        .collect();
    for boot in boots {
        boot.join().expect("a signalled boot left its QEMU");
    }
}

#[test]
fn uefi_boot_runs_the_demo() {
    let out = boot().arg("--uefi").output().expect("run boot");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}:\n{stdout}\n{stderr}", out.status);
    assert!(stderr.contains("(Uefi)"), "{stderr}");
    assert!(
        stdout.contains("demo: all steps done; exiting with 0"),
        "{stdout}"
    );
}
