//! `utest`: the user-mode test suite. Each test exercises the zx syscalls exactly as a Zircon
//! program would (success paths, every documented error cause, rights, hardware enforcement
//! through a `victim` child) and reports over the debug log, one line per event:
//!
//! ```text
//! utest: count N
//! utest: list NAME                     (every selected test, before any runs)
//! utest: running NAME
//! utest: result NAME ok
//! utest: result NAME FAILED at FILE:LINE: MESSAGE    (newlines in MESSAGE as \n)
//! utest: done passed=P failed=F
//! ```
//!
//! Arguments (the ramdisk command line's `args=`): `list_only=1`, `filter=SUBSTRING`,
//! `skip_through=NAME` (run only the tests after NAME: the host restarts past a crash this way),
//! `conc_seed=N` (the seed of the `concurrency` tests).
//! The exit code is 0 when every test passed, 1 otherwise. A test that panics ends the process
//! (exit code 101) after the runtime printed `panic: MESSAGE at FILE:LINE`.
#![no_std]
#![no_main]

extern crate alloc;

#[macro_use]
mod harness;
mod tests;

use alloc::string::String;
use zx::bootfs::Ramdisk;
use zx::rt::Startup;
use zx::{println, Vmo};

zx::entry!(main);

fn main(startup: Startup) -> i64 {
    let ramdisk = if startup.arg1.is_valid() {
        let vmo = Vmo::from(startup.arg1);
        match Ramdisk::map(&vmo, &startup.root_vmar) {
            Ok(r) => Some(r),
            Err(e) => {
                println!("utest: cannot read the ramdisk: {e:?}");
                None
            }
        }
    } else {
        None
    };
    let args = ramdisk.map(|r| r.args()).unwrap_or("");
    let args = ramdisk::Cmdline::new(args);
    let filter = args.get("filter").unwrap_or("");
    let skip_through = args.get("skip_through");
    if let Some(seed) = args.get("conc_seed").and_then(|s| s.parse().ok()) {
        tests::concurrency::set_seed(seed);
    }
    let Some(ramdisk) = ramdisk else {
        println!("utest: no ramdisk (arg1): cannot spawn children");
        return 1;
    };
    let ctx = harness::Ctx {
        ramdisk,
        process: startup.process,
        root: startup.root_vmar,
        thread: startup.thread,
    };

    let mut selected = alloc::vec::Vec::new();
    let mut skipping = skip_through.is_some();
    for (module, tests) in tests::ALL {
        for &(name, f) in tests.iter() {
            let mut full = String::from(*module);
            full.push_str("::");
            full.push_str(name);
            if skipping {
                if Some(full.as_str()) == skip_through {
                    skipping = false;
                }
                continue;
            }
            if full.contains(filter) {
                selected.push((full, f));
            }
        }
    }
    println!("utest: count {}", selected.len());
    // Every selected test is listed before anything runs (as the kernel's ktest runner does):
    // the host turns the list of its first boot into one libtest line per test.
    for (name, _) in &selected {
        println!("utest: list {name}");
    }
    if args.flag("list_only") {
        println!("utest: done passed=0 failed=0");
        return 0;
    }
    let (mut passed, mut failed) = (0, 0);
    for (name, f) in &selected {
        println!("utest: running {name}");
        match f(&ctx) {
            Ok(()) => {
                passed += 1;
                println!("utest: result {name} ok");
            }
            Err(e) => {
                failed += 1;
                println!(
                    "utest: result {name} FAILED at {}:{}: {}",
                    e.file,
                    e.line,
                    e.msg.replace('\n', "\\n")
                );
            }
        }
    }
    println!("utest: done passed={passed} failed={failed}");
    i64::from(failed != 0)
}
