//! `vmbench`: VM microbenchmarks in the style of Fuchsia's, run with `cargo run -- vmbench`.
//!
//! Each figure times K iterations of one operation with `zx_clock_get_monotonic` around the whole
//! batch (per-op ns = elapsed / K), repeats that `rounds` times and prints the median and the
//! min-max, as a table row and as one machine-readable line:
//! `BENCH name=NAME ns=MEDIAN min=MIN max=MAX`.
//!
//! Arguments (the ramdisk command line's `args=`): `rounds=R` (default 5), `n=PAGES` (default 511),
//! `m=M1,M2,...` (existing-mapping counts, default 100,1000,10000,60000), `smp=N` (the SMP
//! figures of the [`smp`] module for N CPUs; boot with `--smp N`). The many-mappings series stops
//! at the first count the kernel refuses (printed with the status).
//!
//! With the ramdisk (the first process gets it), two more figures: the time of a spawn of
//! `child` (process created, image loaded, stack mapped, thread started; its run and the wait
//! for it are not timed), mapped from the ramdisk (`zx::process::spawn`: text and rodata
//! shared, data copy-on-write) and copied (`spawn_image`: every segment written into fresh
//! VMOs).
#![no_std]
#![no_main]

extern crate alloc;

use abi::ops::*;
use abi::vm_options::*;
use abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT;
use alloc::vec::Vec;
use zx::bootfs::Ramdisk;
use zx::rt::Startup;
use zx::{println, Vmar, Vmo};

mod smp;

zx::entry!(main);

const PAGE: usize = 4096;
const RW: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;

/// Rounds of each figure and where results are collected.
struct Bench {
    rounds: usize,
}

impl Bench {
    /// Runs `batch` (which performs `k` operations and returns the elapsed ns) `rounds` times and
    /// prints the median and min-max per operation.
    fn run(&self, name: &str, k: usize, mut batch: impl FnMut() -> i64) {
        let mut per_op: Vec<i64> = (0..self.rounds).map(|_| batch() / k as i64).collect();
        per_op.sort_unstable();
        report(name, &per_op);
    }
}

fn report(name: &str, sorted: &[i64]) {
    let med = sorted[sorted.len() / 2];
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    println!("vmbench: {name:<44} {med:>10} ns  [{min} .. {max}]");
    println!("BENCH name={name} ns={med} min={min} max={max}");
}

fn now() -> i64 {
    zx::clock_get_monotonic()
}

fn main(startup: Startup) -> i64 {
    if startup.arg2 == smp::WORKER {
        return smp::worker_process(startup);
    }
    let ramdisk = if startup.arg1.is_valid() {
        Ramdisk::map(&Vmo::from(startup.arg1), &startup.root_vmar).ok()
    } else {
        None
    };
    let args = ramdisk::Cmdline::new(ramdisk.map(|r| r.args()).unwrap_or(""));
    let rounds = args
        .get("rounds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(5usize)
        .max(1);
    let n = args
        .get("n")
        .and_then(|s| s.parse().ok())
        .unwrap_or(511usize)
        .max(1);
    let ms: Vec<usize> = args
        .get("m")
        .unwrap_or("100,1000,10000,60000")
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    println!("vmbench: rounds={rounds} n={n} pages; per-op ns, median [min .. max]");
    let b = Bench { rounds };
    let root = &startup.root_vmar;
    let cpus = args
        .get("smp")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1usize);
    let spawns = match ramdisk.as_ref() {
        Some(rd) => spawn_child(&b, rd),
        None => Ok(()),
    };
    let result = run(&b, root, n, &ms).and(spawns).and_then(|()| {
        if cpus > 1 {
            smp::run(&b, &startup.process, root, ramdisk.as_ref(), cpus)
        } else {
            Ok(())
        }
    });
    match result {
        Ok(()) => {
            println!("vmbench: done");
            0
        }
        Err(e) => {
            println!("vmbench: FAILED: {e:?}");
            1
        }
    }
}

/// The time of a spawn of `child`, mapped from the ramdisk and copied; each child is waited
/// for (it maps, touches and unmaps 4 pages, prints a line and exits) outside the timing.
fn spawn_child(b: &Bench, rd: &Ramdisk) -> Result<(), abi::Status> {
    let Some(image) = rd.get("child") else {
        println!("vmbench: no child in the ramdisk; spawn figures skipped");
        return Ok(());
    };
    let k = 8;
    let once = |mapped: bool| -> i64 {
        let mut spent = 0;
        for _ in 0..k {
            let t = now();
            let child = match mapped {
                true => zx::process::spawn(rd, "child", zx::Handle::invalid(), 0),
                false => zx::process::spawn_image("child", image, zx::Handle::invalid(), 0),
            }
            .expect("spawn child");
            spent += now() - t;
            child.wait().expect("wait for child");
        }
        spent
    };
    b.run("spawn_child_mapped", k, || once(true));
    b.run("spawn_child_copied", k, || once(false));
    Ok(())
}

fn run(b: &Bench, root: &Vmar, n: usize, ms: &[usize]) -> Result<(), abi::Status> {
    // First touch of guest RAM: write faults over frames no one used since boot. Measured once
    // (the frames are warm afterwards), over 4096 pages, before anything else allocates much.
    {
        let pages = 4096;
        let vmo = Vmo::create((pages * PAGE) as u64, 0)?;
        let addr = root.map(RW, 0, &vmo, 0, pages * PAGE)?;
        let t = now();
        for i in 0..pages {
            // SAFETY: `addr` maps `pages` writable pages that nothing else references.
            unsafe { core::ptr::write_volatile((addr + i * PAGE) as *mut u8, 1) };
        }
        let per = (now() - t) / pages as i64;
        report("write_fault_first_touch", &[per]);
        // SAFETY: the range is the mapping made above, used by nothing else.
        unsafe { root.unmap(addr, pages * PAGE)? };
    }

    b.run("null_syscall", 10_000, || {
        let t = now();
        for _ in 0..10_000 {
            core::hint::black_box(zx::ticks_get());
        }
        now() - t
    });

    let len = n * PAGE;
    let lazy = Vmo::create(len as u64, 0)?;
    let committed = Vmo::create(len as u64, 0)?;
    committed.op_range(ZX_VMO_OP_COMMIT, 0, len as u64)?;
    let k = 200;
    let map_unmap = |vmo: &Vmo, opts: u32| -> Result<i64, abi::Status> {
        let t = now();
        for _ in 0..k {
            let a = root.map(opts, 0, vmo, 0, len)?;
            // SAFETY: `a` is the mapping just made, used by nothing.
            unsafe { root.unmap(a, len)? };
        }
        Ok(now() - t)
    };
    b.run(&alloc::format!("map_unmap_uncommitted_{n}p"), k, || {
        map_unmap(&lazy, RW).expect("map_unmap")
    });
    b.run(&alloc::format!("map_unmap_committed_{n}p"), k, || {
        map_unmap(&committed, RW).expect("map_unmap")
    });
    b.run(&alloc::format!("map_range_unmap_committed_{n}p"), k, || {
        map_unmap(&committed, RW | ZX_VM_MAP_RANGE).expect("map_range")
    });

    // Warm write faults: fresh (uncommitted) pages of a new VMO; the frames were freed before.
    let wp = 1024;
    b.run("write_fault_warm", wp, || {
        let Ok(vmo) = Vmo::create((wp * PAGE) as u64, 0) else {
            return -1;
        };
        let Ok(a) = root.map(RW, 0, &vmo, 0, wp * PAGE) else {
            return -1;
        };
        let t = now();
        for i in 0..wp {
            // SAFETY: `a` maps `wp` writable pages that nothing else references.
            unsafe { core::ptr::write_volatile((a + i * PAGE) as *mut u8, 1) };
        }
        let e = now() - t;
        // SAFETY: the mapping made above.
        let _ = unsafe { root.unmap(a, wp * PAGE) };
        e
    });
    // Read faults on committed pages (no page tables until touched).
    b.run("read_fault_committed", n, || {
        let Ok(a) = root.map(ZX_VM_PERM_READ, 0, &committed, 0, len) else {
            return -1;
        };
        let t = now();
        for i in 0..n {
            // SAFETY: `a` maps `n` readable pages.
            core::hint::black_box(unsafe { core::ptr::read_volatile((a + i * PAGE) as *const u8) });
        }
        let e = now() - t;
        // SAFETY: the mapping made above.
        let _ = unsafe { root.unmap(a, len) };
        e
    });

    // Protect toggles (RW -> R -> RW counts as two operations), populated mappings.
    let toggle = |pages: usize, name: &str| -> Result<(), abi::Status> {
        let a = root.map(RW | ZX_VM_MAP_RANGE, 0, &committed, 0, pages * PAGE)?;
        let k = 200;
        b.run(name, 2 * k, || {
            let t = now();
            for _ in 0..k {
                // SAFETY: nothing accesses the mapping while it is toggled.
                unsafe {
                    root.protect(ZX_VM_PERM_READ, a, pages * PAGE)
                        .expect("protect");
                    root.protect(RW, a, pages * PAGE).expect("protect");
                }
            }
            now() - t
        });
        // SAFETY: the mapping made above.
        unsafe { root.unmap(a, pages * PAGE) }
    };
    toggle(1, "protect_toggle_1p")?;
    toggle(n, &alloc::format!("protect_toggle_{n}p"))?;

    let vmo = Vmo::create(64 * 1024, 0)?;
    let mut buf = alloc::vec![0u8; 64 * 1024];
    for size in [4096usize, 64 * 1024] {
        let k = 500;
        b.run(&alloc::format!("vmo_write_{}k", size / 1024), k, || {
            let t = now();
            for _ in 0..k {
                vmo.write(&buf[..size], 0).expect("vmo_write");
            }
            now() - t
        });
        b.run(&alloc::format!("vmo_read_{}k", size / 1024), k, || {
            let t = now();
            for _ in 0..k {
                vmo.read(&mut buf[..size], 0).expect("vmo_read");
            }
            now() - t
        });
    }
    b.run("vmar_allocate_destroy", 500, || {
        let t = now();
        for _ in 0..500 {
            let (v, _) = root
                .allocate(ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE, 0, 16 * PAGE)
                .expect("vmar_allocate");
            // SAFETY: the region was just made and holds nothing.
            unsafe { v.destroy() }.expect("vmar_destroy");
        }
        now() - t
    });

    cow(b, root)?;
    many_mappings(b, root, ms)
}

/// Copy-on-write children and fresh memory: a snapshot of a committed 1000-page VMO, a write to
/// each page of such a snapshot (one copy-on-write fault a page), and a read of each page of a
/// fresh VMO (no page committed before).
fn cow(b: &Bench, root: &Vmar) -> Result<(), abi::Status> {
    const PAGES: usize = 1000;
    let len = PAGES * PAGE;
    let parent = Vmo::create(len as u64, 0)?;
    parent.op_range(ZX_VMO_OP_COMMIT, 0, len as u64)?;
    let k = 100;
    b.run("snapshot_1000p", k, || {
        let t = now();
        for _ in 0..k {
            let child = parent
                .create_child(ZX_VMO_CHILD_SNAPSHOT, 0, len as u64)
                .expect("snapshot");
            drop(child);
        }
        now() - t
    });
    b.run("cow_write_fault", PAGES, || {
        let Ok(child) = parent.create_child(ZX_VMO_CHILD_SNAPSHOT, 0, len as u64) else {
            return -1;
        };
        let Ok(a) = root.map(RW, 0, &child, 0, len) else {
            return -1;
        };
        let t = now();
        for i in 0..PAGES {
            // SAFETY: `a` maps `PAGES` writable pages that nothing else references.
            unsafe { core::ptr::write_volatile((a + i * PAGE) as *mut u8, 1) };
        }
        let e = now() - t;
        // SAFETY: the mapping made above.
        let _ = unsafe { root.unmap(a, len) };
        e
    });
    b.run("read_fault_fresh", PAGES, || {
        let Ok(vmo) = Vmo::create(len as u64, 0) else {
            return -1;
        };
        let Ok(a) = root.map(RW, 0, &vmo, 0, len) else {
            return -1;
        };
        let t = now();
        for i in 0..PAGES {
            // SAFETY: `a` maps `PAGES` readable pages.
            core::hint::black_box(unsafe { core::ptr::read_volatile((a + i * PAGE) as *const u8) });
        }
        let e = now() - t;
        // SAFETY: the mapping made above.
        let _ = unsafe { root.unmap(a, len) };
        e
    });
    Ok(())
}

/// map+unmap of one page and a protect toggle of one page with M one-page mappings already in the
/// address space (in a region of their own, each a separate mapping: alternate permissions keep
/// neighbours apart).
fn many_mappings(b: &Bench, root: &Vmar, ms: &[usize]) -> Result<(), abi::Status> {
    let vmo = Vmo::create(PAGE as u64, 0)?;
    let mut made: Vec<usize> = Vec::with_capacity(ms.iter().copied().max().unwrap_or(0));
    let heap_before = zx::debug_kernel_stats()?[abi::kstats::HEAP_FRAMES];
    for &m in ms {
        while made.len() < m {
            let perms = if made.len().is_multiple_of(2) {
                RW
            } else {
                ZX_VM_PERM_READ
            };
            match root.map(perms, 0, &vmo, 0, PAGE) {
                Ok(a) => made.push(a),
                Err(e) => {
                    println!(
                        "vmbench: many-mappings series stops at M={m}: mapping number {} refused: {e:?}",
                        made.len() + 1
                    );
                    println!("BENCH_STOP m={m} reached={} status={e:?}", made.len());
                    return cleanup(root, &made);
                }
            }
        }
        let heap = zx::debug_kernel_stats()?[abi::kstats::HEAP_FRAMES];
        println!(
            "vmbench: kernel heap with M={m} mappings: {} KiB more ({} bytes a mapping)",
            heap.saturating_sub(heap_before) * 4,
            heap.saturating_sub(heap_before) * PAGE as u64 / m.max(1) as u64
        );
        let k = 200;
        b.run(&alloc::format!("map_unmap_1p_m{m}"), k, || {
            let t = now();
            for _ in 0..k {
                let a = root.map(RW, 0, &vmo, 0, PAGE).expect("map");
                // SAFETY: the mapping just made.
                unsafe { root.unmap(a, PAGE) }.expect("unmap");
            }
            now() - t
        });
        let a = made[made.len() / 2];
        b.run(&alloc::format!("protect_toggle_1p_m{m}"), 2 * k, || {
            let t = now();
            for _ in 0..k {
                // SAFETY: nothing accesses these benchmark mappings.
                unsafe {
                    root.protect(ZX_VM_PERM_READ, a, PAGE).expect("protect");
                    root.protect(RW, a, PAGE).expect("protect");
                }
            }
            now() - t
        });
        // Keep the toggled one in its original permission pattern.
        let idx = made.len() / 2;
        if !idx.is_multiple_of(2) {
            // SAFETY: as above.
            unsafe { root.protect(ZX_VM_PERM_READ, a, PAGE)? };
        }
    }
    cleanup(root, &made)
}

fn cleanup(root: &Vmar, made: &[usize]) -> Result<(), abi::Status> {
    for &a in made {
        // SAFETY: benchmark mappings, used by nothing.
        unsafe { root.unmap(a, PAGE)? };
    }
    Ok(())
}
