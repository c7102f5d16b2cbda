//! The syscall fuzzer (`user/fuzz`) as a `cargo test`: boots `prog=fuzz` with a fixed seed and a
//! bounded number of calls, and expects `fuzz: ok` (no kernel panic or hang, counters back at
//! their baseline, every address space consistent) and QEMU success. The debugging syscalls
//! (`zx_process_read_memory` / `write_memory`) are switched on so they are fuzzed past their gate.
//!
//! Under plain TCG guest time is host time: a host stall inside a syscall (the QEMU thread
//! descheduled, a burst of code translation) reads as a long interrupts-off stretch, 27-64 ms
//! outliers in calls that take 5 ms otherwise. So this run uses QEMU's instruction counter as the
//! guest clock (`-icount shift=0`: one instruction is one nanosecond, about the speed TCG runs
//! this kernel at here), which makes the stretches a property of the kernel's code alone; not
//! with KVM, which has no instruction counter.
//!
//! A long run: `cargo run -- fuzz SEED CALLS` (add `-- -icount shift=0` for the same clock).
//! `ZXVM_FUZZ_SEED` / `ZXVM_FUZZ_CALLS` override the defaults.

use boot::qemu::Exit;
use std::time::Duration;
use tests::Options;

#[test]
fn fuzzer_finds_no_panic_hang_or_leak() {
    let seed = std::env::var("ZXVM_FUZZ_SEED").unwrap_or_else(|_| "0x2b1d5eed".into());
    let calls = std::env::var("ZXVM_FUZZ_CALLS").unwrap_or_else(|_| "20000".into());
    let mut opts = Options::from_env();
    if !opts.qemu.kvm {
        opts.qemu
            .extra_args
            .extend(["-icount".into(), "shift=0".into()]);
    }
    let (exit, lines) = tests::boot_once(
        &opts.qemu,
        &format!("mode=run debug_syscalls=1 prog=fuzz args={seed} {calls}"),
        Duration::from_secs(240),
    )
    .expect("boot");
    let log = lines.join("\n");
    let tail = &log[log.len().saturating_sub(6000)..];
    assert!(
        lines.iter().any(|l| l.starts_with("fuzz: calls ")),
        "no summary line:\n{tail}"
    );
    assert!(
        lines.iter().any(|l| l == "fuzz: ok"),
        "fuzz failed:\n{tail}"
    );
    assert_eq!(exit, Some(Exit::Success), "{tail}");
}
