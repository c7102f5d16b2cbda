//! `utest`: the user-mode test suite. Each test exercises the zx syscalls exactly as a Zircon
//! program would (success paths, every documented error cause, rights, hardware enforcement
//! through a `victim` child) and reports over the debug log, one line per event:
//!
//! ```text
//! PREFIX count N
//! PREFIX list NAME                     (every selected test, before any runs)
//! PREFIX running NAME
//! PREFIX result NAME ok
//! PREFIX result NAME FAILED at FILE:LINE: MESSAGE    (newlines in MESSAGE as \n)
//! PREFIX done passed=P failed=F
//! ```
//!
//! PREFIX is `utest[NONCE]: ` with arg2 as 16 hex digits: the kernel gives the first process the
//! `nonce=` of its command line as arg2 and blanks it in the ramdisk, so no other process can
//! write a line the host takes for this one's (the host makes a new nonce for every boot and
//! counts only lines that carry it). Without a nonce (arg2 = 0, a run by hand) it is `utest: `.
//!
//! Arguments (the ramdisk command line's `args=`): `list_only=1`, `filter=SUBSTRING`,
//! `skip_through=NAME` (run only the tests after NAME: the host restarts past a crash this way),
//! `shard=K/N` (only every Nth test, from the Kth: the host runs the suite in N guests at once),
//! `conc_seed=N` (the seed of the `concurrency` tests). With the kernel word `demo_failures=1`
//! the `demo` tests (which fail, hang, spoof a result and crash the kernel on purpose) are added
//! and the kernel is asked to panic after `done`: the host's meta-test of this protocol.
//! After every test the harness checks the memory-attribution invariant
//! ([`harness::VmoFrames`]): a test that leaves it changed fails. The exit code is 0 when every
//! test passed, 1 otherwise. A test that panics ends the process
//! (exit code 101) after the runtime printed `panic: MESSAGE at FILE:LINE`.
#![no_std]
#![no_main]

extern crate alloc;

#[macro_use]
mod harness;
mod tests;

use alloc::string::String;
use core::fmt;
use zx::bootfs::Ramdisk;
use zx::rt::Startup;
use zx::{println, Vmo};

zx::entry!(main);

/// Commits every page of this program's writable mappings (data, `.bss` with the 2 MiB heap, the
/// main stack) before the first test, by writing each page's first byte back to it. They start
/// uncommitted (data is a copy-on-write child of the ramdisk, `.bss` reads the zero page), so
/// without this the first write to a static or heap page would commit a frame during whichever
/// test happens to make it, and a test that checks the kernel's free frames against its
/// baseline would see it as a frame lost. (The loader places the segments in sub-regions, where
/// the root VMAR's `op_range(COMMIT)` answers INVALID_ARGS, as in Zircon.)
fn commit_own_writable_memory(ctx: &harness::Ctx) -> zx::ZxResult<()> {
    for m in zx::process::maps(ctx.process.handle())? {
        if m.r#type == abi::info::maps_type::ZX_INFO_MAPS_TYPE_MAPPING
            && m.u.mmu_flags & abi::vm_options::ZX_VM_PERM_WRITE != 0
        {
            for page in (m.base..m.base + m.size).step_by(abi::PAGE_SIZE) {
                let p = page as *mut u8;
                // SAFETY: the page is mapped writable in this process and no other thread runs
                // yet; the byte is written back unchanged, so no Rust value sees a change.
                unsafe { p.write_volatile(p.read_volatile()) };
            }
        }
    }
    Ok(())
}

/// Prints one protocol line, `PREFIX` first.
fn report(prefix: &str, msg: fmt::Arguments<'_>) {
    println!("{prefix}{msg}");
}

fn main(startup: Startup) -> i64 {
    let prefix = match startup.arg2 {
        0 => String::from("utest: "),
        nonce => alloc::format!("utest[{nonce:016x}]: "),
    };
    let prefix = prefix.as_str();
    let ramdisk = if startup.arg1.is_valid() {
        let vmo = Vmo::from(startup.arg1);
        match Ramdisk::map(&vmo, &startup.root_vmar) {
            Ok(r) => Some(r),
            Err(e) => {
                report(prefix, format_args!("cannot read the ramdisk: {e:?}"));
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
        report(
            prefix,
            format_args!("no ramdisk (arg1): cannot spawn children"),
        );
        return 1;
    };
    let ctx = harness::Ctx {
        ramdisk,
        process: startup.process,
        root: startup.root_vmar,
        thread: startup.thread,
    };

    if let Err(e) = commit_own_writable_memory(&ctx) {
        report(
            prefix,
            format_args!("cannot commit the program's memory: {e:?}"),
        );
        return 1;
    }
    let demo = ctx.ramdisk.cmdline().flag("demo_failures");
    // `shard=K/N`: only the tests whose place in the whole list is K modulo N (the host runs N
    // shards in parallel guests). The place counts every test, so it does not move when the
    // host restarts a shard with `skip_through`.
    let (shard, shards) = args
        .get("shard")
        .and_then(|s| s.split_once('/'))
        .and_then(|(k, n)| Some((k.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
        .filter(|&(k, n)| k < n)
        .unwrap_or((0, 1));
    let mut selected = alloc::vec::Vec::new();
    let mut skipping = skip_through.is_some();
    let modules = tests::ALL.iter().chain(demo.then_some(&tests::DEMO));
    let mut place = 0;
    for (module, tests) in modules {
        for &(name, f) in tests.iter() {
            place += 1;
            if (place - 1) % shards != shard {
                continue;
            }
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
    report(prefix, format_args!("count {}", selected.len()));
    // Every selected test is listed before anything runs (as the kernel's ktest runner does):
    // the host turns the list of its first boot into one libtest line per test.
    for (name, _) in &selected {
        report(prefix, format_args!("list {name}"));
    }
    if args.flag("list_only") {
        report(prefix, format_args!("done passed=0 failed=0"));
        return 0;
    }
    let (mut passed, mut failed) = (0, 0);
    // The memory-attribution invariant, checked after every test (`harness::VmoFrames`).
    let mut vmo_frames = match harness::VmoFrames::new(&ctx) {
        Ok(v) => Some(v),
        Err(e) => {
            report(prefix, format_args!("no attribution check: {}", e.msg));
            None
        }
    };
    for (name, f) in &selected {
        report(prefix, format_args!("running {name}"));
        let result = f(&ctx).and_then(|()| match vmo_frames.as_mut() {
            Some(v) => v.check(&ctx),
            None => Ok(()),
        });
        match result {
            Ok(()) => {
                passed += 1;
                report(prefix, format_args!("result {name} ok"));
            }
            Err(e) => {
                failed += 1;
                report(
                    prefix,
                    format_args!(
                        "result {name} FAILED at {}:{}: {}",
                        e.file,
                        e.line,
                        e.msg.replace('\n', "\\n")
                    ),
                );
            }
        }
    }
    report(prefix, format_args!("done passed={passed} failed={failed}"));
    if demo {
        tests::demo::panic_the_kernel();
    }
    i64::from(failed != 0)
}
