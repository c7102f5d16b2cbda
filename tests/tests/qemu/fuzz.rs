//! The syscall fuzzer (`user/fuzz`) as a `cargo test`: boots `prog=fuzz` with a fixed seed and a
//! bounded number of calls, and expects `fuzz: ok` (no kernel panic or hang, counters back at
//! their baseline, every address space consistent) and QEMU success. The debugging syscalls
//! (`zx_process_read_memory` / `write_memory`) are switched on so they are fuzzed past their gate.
//! A long run: `cargo run -- fuzz SEED CALLS`. `ZXVM_FUZZ_SEED` / `ZXVM_FUZZ_CALLS` override the defaults.

use boot::qemu::Exit;
use std::time::Duration;
use tests::Options;

#[test]
fn fuzzer_finds_no_panic_hang_or_leak() {
    let seed = std::env::var("ZXVM_FUZZ_SEED").unwrap_or_else(|_| "0x2b1d5eed".into());
    let calls = std::env::var("ZXVM_FUZZ_CALLS").unwrap_or_else(|_| "20000".into());
    let opts = Options::from_env();
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
