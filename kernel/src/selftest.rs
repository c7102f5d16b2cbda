//! `mode=crash what=...`: deliberate crashes that show the fatal reporting paths (used by the host
//! tests in `tests/tests/crash_reports.rs`).

use ramdisk::Cmdline;

/// Recurses with a big frame until the stack hits the guard page.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut buf = [0u8; 1024];
    buf[0] = depth as u8;
    let buf = core::hint::black_box(buf);
    if core::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + buf[0] as u64
}

/// Performs the crash named by `what=`.
pub fn run(cmd: &Cmdline) -> ! {
    match cmd.get("what").unwrap_or("") {
        "stack_overflow" => {
            log::info!("selftest: overflowing the kernel stack");
            let r = recurse(0);
            panic!("recursion returned {r}");
        }
        "page_fault" => {
            log::info!("selftest: reading an unmapped kernel address");
            arch::crash::page_fault()
        }
        "invalid_opcode" => {
            log::info!("selftest: executing ud2");
            arch::crash::invalid_opcode()
        }
        "panic" => panic!("selftest: deliberate panic"),
        other => panic!("selftest: unknown what={other:?}"),
    }
}
