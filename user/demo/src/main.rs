//! `demo`: what `cargo run` shows. A tour of the VM syscalls from user space:
//!
//! 1. VMOs: creates one, writes and reads it through `zx_vmo_write` / `zx_vmo_read`;
//! 2. maps it with different options: read-write (demand-faulted page by page), a read-only
//!    second view of the same pages, page-aligned to 2 MiB (`ZX_VM_ALIGN_2MB`), and at a fixed
//!    place (`ZX_VM_SPECIFIC`);
//! 3. sub-VMARs: a `ZX_VM_COMPACT` one (mappings packed together) and an upper-limited one
//!    (`ZX_VM_OFFSET_IS_UPPER_LIMIT`: wholly below 4 GiB from the root's base), and a read-only
//!    one inside which a writable mapping is refused (permissions inherit downwards);
//! 4. protects the middle of a mapping read-only and unmaps the end of another (both split);
//! 5. prints the whole address space as a tree (`ZX_INFO_PROCESS_MAPS`: regions, mappings,
//!    permissions, committed pages);
//! 6. starts `child` from the ramdisk and waits for its return code.
//!
//! Exits 0 when every step did what it should (the kernel then reports success to the host).
#![no_std]
#![no_main]

extern crate alloc;

use abi::info::maps_type::*;
use abi::vm_options::*;
use abi::Status;
use alloc::string::String;
use zx::bootfs::Ramdisk;
use zx::rt::Startup;
use zx::{println, Handle, Vmar, Vmo};

zx::entry!(main);

const PAGE: usize = 4096;
const RW: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;

/// A failed step: what and why.
struct Failed(&'static str, String);

macro_rules! step {
    ($what:expr, $e:expr) => {
        $e.map_err(|e| Failed($what, alloc::format!("{e:?}")))?
    };
}

macro_rules! expect {
    ($what:expr, $cond:expr) => {
        if !$cond {
            return Err(Failed($what, String::from(stringify!($cond))));
        }
    };
}

fn main(startup: Startup) -> i64 {
    println!("demo: a tour of the zx VM syscalls from user space");
    match run(startup) {
        Ok(()) => {
            println!("demo: all steps done; exiting with 0");
            0
        }
        Err(Failed(what, why)) => {
            println!("demo: FAILED: {what}: {why}");
            1
        }
    }
}

fn poke(addr: usize, v: u64) {
    // SAFETY: callers pass 8-aligned addresses in read-write mappings this program created and
    // that no Rust reference covers.
    unsafe { (addr as *mut u64).write_volatile(v) }
}

fn peek(addr: usize) -> u64 {
    // SAFETY: callers pass 8-aligned addresses in readable mappings this program created.
    unsafe { (addr as *const u64).read_volatile() }
}

fn run(startup: Startup) -> Result<(), Failed> {
    let root = &startup.root_vmar;
    let info = step!("root VMAR info", root.info());
    println!(
        "demo: root VMAR [{:#x}, {:#x}) ({} GiB)",
        info.base,
        info.base + info.len,
        info.len >> 30
    );

    // 1. A VMO, written and read through syscalls.
    let vmo = step!("vmo_create", Vmo::create(16 * PAGE as u64, 0));
    step!("vmo_write", vmo.write(b"hello from a VMO", 3 * PAGE as u64));
    let mut buf = [0u8; 16];
    step!("vmo_read", vmo.read(&mut buf, 3 * PAGE as u64));
    expect!("vmo round trip", &buf == b"hello from a VMO");
    println!(
        "demo: 1. VMO of 16 pages: wrote and read back {:?}",
        "hello from a VMO"
    );

    // 2. Mappings with options.
    let rw = step!("map rw", root.map(RW, 0, &vmo, 0, 16 * PAGE));
    expect!(
        "nothing committed yet but the written page",
        committed(&vmo) == 1
    );
    for page in [0, 5, 9] {
        poke(rw + page * PAGE, 0xd00d_0000 + page as u64); // demand faults
    }
    expect!(
        "VMO contents visible in the mapping",
        peek(rw + 3 * PAGE) == u64::from_le_bytes(*b"hello fr")
    );
    expect!("three pages faulted in", committed(&vmo) == 4);
    let ro = step!(
        "map ro view",
        root.map(ZX_VM_PERM_READ, 0, &vmo, 0, 16 * PAGE)
    );
    expect!(
        "the read-only view shares the pages",
        peek(ro + 5 * PAGE) == 0xd00d_0005
    );
    let aligned = step!(
        "map ALIGN_2MB",
        root.map(ZX_VM_ALIGN_2MB | RW, 0, &vmo, 0, 2 * PAGE)
    );
    expect!("2 MiB aligned", aligned % (2 << 20) == 0);
    println!(
        "demo: 2. mapped rw at {rw:#x} (3 pages demand-faulted -> {} committed), ro view at {ro:#x}, 2 MiB-aligned at {aligned:#x}",
        committed(&vmo)
    );

    // 3. Sub-VMARs.
    let (compact, cbase) = step!(
        "allocate COMPACT",
        root.allocate(
            ZX_VM_COMPACT | ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE,
            0,
            1 << 20
        )
    );
    let small = step!("small vmo", Vmo::create(PAGE as u64, 0));
    let mut spots = [0usize; 4];
    for s in spots.iter_mut() {
        *s = step!("map in COMPACT", compact.map(RW, 0, &small, 0, PAGE));
    }
    let spread = spots.iter().max().unwrap() - spots.iter().min().unwrap();
    println!("demo: 3a. COMPACT region at {cbase:#x}: 4 mappings within {spread:#x} bytes");
    let limit = 4usize << 30;
    let (low, lbase) = step!(
        "allocate upper-limited",
        root.allocate(
            ZX_VM_OFFSET_IS_UPPER_LIMIT
                | ZX_VM_CAN_MAP_READ
                | ZX_VM_CAN_MAP_WRITE
                | ZX_VM_CAN_MAP_SPECIFIC,
            limit,
            64 * PAGE
        )
    );
    expect!("below the limit", lbase + 64 * PAGE <= info.base + limit);
    let fixed = step!(
        "map SPECIFIC",
        low.map(ZX_VM_SPECIFIC | RW, 8 * PAGE, &small, 0, PAGE)
    );
    expect!("at the asked offset", fixed == lbase + 8 * PAGE);
    println!(
        "demo: 3b. upper-limited region [{lbase:#x}, {:#x}) (limit {:#x}); SPECIFIC mapping at +8 pages = {fixed:#x}",
        lbase + 64 * PAGE,
        info.base + limit
    );
    let (read_only, _) = step!(
        "allocate read-only",
        root.allocate(ZX_VM_CAN_MAP_READ, 0, 4 * PAGE)
    );
    expect!(
        "a writable mapping in a read-only region is refused",
        read_only.map(RW, 0, &small, 0, PAGE) == Err(Status::ERR_ACCESS_DENIED)
    );
    step!(
        "read-only mapping in it",
        read_only.map(ZX_VM_PERM_READ, 0, &small, 0, PAGE)
    );
    println!("demo: 3c. read-only region: rw mapping -> ACCESS_DENIED, r mapping ok");

    // 4. Protect the middle of one mapping, unmap the end of another.
    // SAFETY: pages 6..10 of `rw` are only read from now on.
    step!("protect", unsafe {
        root.protect(ZX_VM_PERM_READ, rw + 6 * PAGE, 4 * PAGE)
    });
    expect!("still readable", peek(rw + 9 * PAGE) == 0xd00d_0009);
    // SAFETY: nothing refers to the last 8 pages of the read-only view.
    step!("unmap part", unsafe { root.unmap(ro + 8 * PAGE, 8 * PAGE) });
    println!("demo: 4. protected rw+[6,10) pages read-only; unmapped ro+[8,16) pages");

    // 5. The layout.
    print_layout(&startup.process, root)?;

    // 6. A child process.
    let Some(ramdisk) = ramdisk(startup.arg1, root) else {
        return Err(Failed("ramdisk", String::from("no ramdisk VMO in arg1")));
    };
    let child = step!(
        "spawn child",
        zx::process::spawn(&ramdisk, "child", Handle::invalid(), 7)
    );
    println!(
        "demo: 6. started child (image at {:#x}, entry {:#x}); waiting",
        child.loaded.base, child.loaded.entry
    );
    let code = step!("wait child", child.wait());
    println!("demo: child exited with {code}");
    expect!("child's return code", code == 7);
    drop((compact, low, read_only));
    Ok(())
}

fn committed(vmo: &Vmo) -> u64 {
    vmo.info()
        .map(|i| i.committed_bytes / PAGE as u64)
        .unwrap_or(u64::MAX)
}

fn ramdisk(arg1: Handle, root: &Vmar) -> Option<Ramdisk> {
    if !arg1.is_valid() {
        return None;
    }
    Ramdisk::map(&Vmo::from(arg1), root).ok()
}

fn print_layout(process: &zx::Process, _root: &Vmar) -> Result<(), Failed> {
    let maps = step!("ZX_INFO_PROCESS_MAPS", zx::process::maps(process.handle()));
    println!("demo: 5. address space ({} entries):", maps.len());
    for m in &maps {
        let indent = "  ".repeat(m.depth);
        let end = m.base + m.size;
        let name_len = m.name.iter().position(|&b| b == 0).unwrap_or(m.name.len());
        let name = core::str::from_utf8(&m.name[..name_len]).unwrap_or("?");
        match m.r#type {
            ZX_INFO_MAPS_TYPE_ASPACE => {
                println!("  {indent}aspace  [{:#014x}, {end:#014x}) {name}", m.base)
            }
            ZX_INFO_MAPS_TYPE_VMAR => println!(
                "  {indent}vmar    [{:#014x}, {end:#014x}) {:>6} KiB {name}",
                m.base,
                m.size >> 10
            ),
            ZX_INFO_MAPS_TYPE_MAPPING => {
                let f = m.u.mmu_flags;
                let perms = [
                    if f & ZX_VM_PERM_READ != 0 { 'r' } else { '-' },
                    if f & ZX_VM_PERM_WRITE != 0 { 'w' } else { '-' },
                    if f & ZX_VM_PERM_EXECUTE != 0 {
                        'x'
                    } else {
                        '-'
                    },
                ];
                let perms: String = perms.iter().collect();
                println!(
                    "  {indent}mapping [{:#014x}, {end:#014x}) {:>6} KiB {perms} vmo {} +{:#x}, {} committed pages {name}",
                    m.base,
                    m.size >> 10,
                    m.u.vmo_koid,
                    m.u.vmo_offset,
                    m.u.committed_bytes >> 12
                )
            }
            t => println!("  {indent}type {t} [{:#x}, {end:#x})", m.base),
        }
    }
    Ok(())
}
