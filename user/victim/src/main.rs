//! `victim`: misbehaves as arg2 asks, so tests can check that the kernel kills it (with
//! `ZX_TASK_RETCODE_EXCEPTION_KILL`) and goes on. Every case prints `victim: CASE` first; a case
//! that should have faulted but did not exits with [`SURVIVED`].
#![no_std]
#![no_main]

extern crate alloc;

use abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use zx::rt::Startup;
use zx::{println, Vmo};

zx::entry!(main);

/// Return code when a deliberate fault did not kill the process.
pub const SURVIVED: i64 = 77;

/// Misbehaviours selected by arg2 (kept in sync with utest's `victim` module).
mod case {
    pub const EXIT_ZERO: u64 = 0;
    pub const WRITE_READ_ONLY: u64 = 1;
    pub const EXECUTE_NX: u64 = 2;
    pub const TOUCH_UNMAPPED: u64 = 3;
    pub const PANIC: u64 = 4;
    pub const LEAK: u64 = 5;
    pub const SPIN: u64 = 6;
    pub const NULL_DEREF: u64 = 7;
    pub const WRITE_CODE: u64 = 8;
    pub const READ_KERNEL: u64 = 9;
    pub const STACK_OVERFLOW: u64 = 10;
}

fn main(startup: Startup) -> i64 {
    let root = &startup.root_vmar;
    match startup.arg2 {
        case::EXIT_ZERO => {
            println!("victim: exit 0");
            0
        }
        case::WRITE_READ_ONLY => {
            println!("victim: write to a read-only mapping");
            let vmo = Vmo::create(4096, 0).expect("vmo");
            let addr = root.map(ZX_VM_PERM_READ, 0, &vmo, 0, 4096).expect("map");
            // SAFETY: deliberately faults: the page is mapped read-only.
            unsafe { (addr as *mut u64).write_volatile(1) };
            SURVIVED
        }
        case::EXECUTE_NX => {
            println!("victim: execute a non-executable mapping");
            let vmo = Vmo::create(4096, 0).expect("vmo");
            let addr = root
                .map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, &vmo, 0, 4096)
                .expect("map");
            // SAFETY: writes a `ret` into our own read-write page.
            unsafe { (addr as *mut u8).write_volatile(0xc3) };
            // SAFETY: deliberately faults: the page is not executable, so fetching the `ret`
            // raises #PF before anything runs.
            let f: extern "C" fn() = unsafe { core::mem::transmute(addr) };
            f();
            SURVIVED
        }
        case::TOUCH_UNMAPPED => {
            println!("victim: touch an unmapped page");
            let vmo = Vmo::create(4096, 0).expect("vmo");
            let addr = root.map(ZX_VM_PERM_READ, 0, &vmo, 0, 4096).expect("map");
            // SAFETY: nothing refers to the mapping.
            unsafe { root.unmap(addr, 4096).expect("unmap") };
            // SAFETY: deliberately faults: the page was just unmapped.
            let v = unsafe { (addr as *const u64).read_volatile() };
            println!("victim: read {v:#x} from an unmapped page");
            SURVIVED
        }
        case::PANIC => panic!("victim panics on purpose"),
        case::LEAK => {
            println!("victim: leak handles, mappings and committed pages, then exit");
            for i in 0..8u64 {
                let vmo = Vmo::create(16 * 4096, 0).expect("vmo");
                let addr = root
                    .map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, &vmo, 0, 16 * 4096)
                    .expect("map");
                for p in 0..16 {
                    // SAFETY: inside the fresh read-write mapping.
                    unsafe { ((addr + p * 4096) as *mut u64).write_volatile(i) };
                }
                // Leak the handle: only process teardown can free it.
                core::mem::forget(vmo);
            }
            let _ = alloc::vec![0u8; 100_000].leak();
            3
        }
        case::SPIN => {
            println!("victim: spin until killed");
            loop {
                core::hint::spin_loop();
            }
        }
        case::NULL_DEREF => {
            println!("victim: read address 0");
            // SAFETY: deliberately faults: page 0 is never mapped.
            let v = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
            println!("victim: read {v:#x} at 0");
            SURVIVED
        }
        case::WRITE_CODE => {
            println!("victim: write to own code");
            let p = main as *const () as *mut u8;
            // SAFETY: deliberately faults: code is mapped read-execute.
            unsafe { p.write_volatile(0xcc) };
            SURVIVED
        }
        case::READ_KERNEL => {
            println!("victim: read kernel memory");
            // SAFETY: deliberately faults: the upper half is supervisor-only.
            let v = unsafe { (0xffff_ffff_8000_0000usize as *const u64).read_volatile() };
            println!("victim: read {v:#x} from the kernel");
            SURVIVED
        }
        case::STACK_OVERFLOW => {
            println!("victim: overflow the stack");
            recurse(0) as i64
        }
        other => {
            println!("victim: unknown case {other}");
            -2
        }
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut pad = [depth; 64];
    // Keep the array and the recursion: neither may be optimized away.
    pad = core::hint::black_box(pad);
    if depth == u64::MAX {
        return pad[0];
    }
    recurse(depth + 1) + pad[63]
}
