//! `victim`: misbehaves as arg2 asks, so tests can check that the kernel kills it (with
//! `ZX_TASK_RETCODE_EXCEPTION_KILL`) and goes on. Every case prints `victim: CASE` first; a case
//! that should have faulted but did not exits with [`SURVIVED`].
#![no_std]
#![no_main]

extern crate alloc;

use abi::vm_options::{ZX_VM_ALLOW_FAULTS, ZX_VM_PERM_EXECUTE, ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use abi::vmo_options::ZX_VMO_RESIZABLE;
use zx::rt::Startup;
use zx::{println, Status, Thread, Vmo};

mod race;

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
    pub const EXHAUST: u64 = 11;
    pub const PROTECT_THEN_WRITE: u64 = 12;
    pub const PROTECT_REMOVES_EXECUTE: u64 = 13;
    pub const WRITE_AFTER_DECOMMIT_RO: u64 = 14;
    pub const READ_NO_ACCESS: u64 = 15;
    pub const TOUCH_PAST_VMO_END: u64 = 16;
    pub const TOUCH_AFTER_SHRINK: u64 = 17;
    pub const FAULT_LATER: u64 = 18;
    /// Prints utest protocol lines claiming a pass for `demo::spoofs_a_pass` (utest's `demo`).
    pub const SPOOF_UTEST: u64 = 1000;
    pub const DEBUG_MEMORY: u64 = 50;
    pub const MAP_MANY: u64 = 51;
    pub const SPREAD_THREADS: u64 = 52;
    pub const PARK_HANDLES: u64 = 53;
}

/// Flag of mailbox word 0 once `case::SPREAD_THREADS` / `case::PARK_HANDLES` is done: word 0 is
/// the count (threads created / handles parked) with this bit set, word 1 the status that
/// stopped it (`zx_status_t` as `i64`).
pub const QUOTA_DONE: u64 = 1 << 63;

/// `case::MAP_MANY`: maps one page of a fresh VMO up to this many times into its own root VMAR
/// (until NO_MEMORY: the region quota or low memory), stores the count with [`MAP_MANY_DONE`]
/// set in word 0 of the mailbox VMO it got as arg1, then waits to be killed.
pub const MAP_MANY_LIMIT: u64 = 8190;
/// The flag of the mailbox word once `case::MAP_MANY` is done mapping.
pub const MAP_MANY_DONE: u64 = 1 << 32;

/// `case::DEBUG_MEMORY` return codes: both calls worked / both were ACCESS_DENIED.
pub mod debug_memory {
    /// Both calls succeeded and the bytes read back are the ones written.
    pub const WORKED: i64 = 0;
    /// Both calls were `ZX_ERR_ACCESS_DENIED` (the debugging syscalls are off).
    pub const DENIED: i64 = 1;
}

fn main(startup: Startup) -> i64 {
    let root = &startup.root_vmar;
    if startup.arg2 & 0xfff == race::CASE && startup.arg2 > 0xfff {
        return race::run(&startup);
    }
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
        case::FAULT_LATER => {
            println!("victim: wait 300 ms, then read address 0");
            let until = zx::clock_get_monotonic() + 300_000_000;
            while zx::clock_get_monotonic() < until {
                core::hint::spin_loop();
            }
            // SAFETY: deliberately faults: page 0 is never mapped.
            let v = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
            println!("victim: read {v:#x} at 0");
            SURVIVED
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
        case::EXHAUST => {
            println!("victim: drive every quota to its limit");
            exhaust(&startup)
        }
        case::PROTECT_THEN_WRITE => {
            println!("victim: write after protecting read-write to read-only");
            let vmo = Vmo::create(4096, 0).expect("vmo");
            let addr = root
                .map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, &vmo, 0, 4096)
                .expect("map");
            // SAFETY: inside the fresh read-write mapping.
            unsafe { (addr as *mut u64).write_volatile(1) };
            // SAFETY: the page is only written below, on purpose.
            unsafe { root.protect(ZX_VM_PERM_READ, addr, 4096).expect("protect") };
            // SAFETY: deliberately faults: the (present, TLB-cached) page is read-only now.
            unsafe { (addr as *mut u64).write_volatile(2) };
            SURVIVED
        }
        case::PROTECT_REMOVES_EXECUTE => {
            println!("victim: call code after protecting r-x to r--");
            let vmo = Vmo::create(4096, 0)
                .expect("vmo")
                .replace_as_executable(&zx::Handle::invalid())
                .expect("replace_as_executable");
            let addr = root
                .map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, &vmo, 0, 4096)
                .expect("map");
            // SAFETY: writes a `ret` into our own read-write page.
            unsafe { (addr as *mut u8).write_volatile(0xc3) };
            // SAFETY: the page is no longer written.
            unsafe { root.protect(ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE, addr, 4096) }
                .expect("protect rx");
            // SAFETY: the page holds a `ret` and is executable.
            let f: extern "C" fn() = unsafe { core::mem::transmute(addr) };
            f();
            println!("victim: executed the page once");
            // SAFETY: the page is only read from now on.
            unsafe { root.protect(ZX_VM_PERM_READ, addr, 4096) }.expect("protect r");
            // Deliberately faults: the page is no longer executable.
            f();
            SURVIVED
        }
        case::WRITE_AFTER_DECOMMIT_RO => {
            println!("victim: write to a read-only view after its VMO was decommitted");
            let vmo = Vmo::create(4096, 0).expect("vmo");
            vmo.write(&[1], 0).expect("write");
            let addr = root.map(ZX_VM_PERM_READ, 0, &vmo, 0, 4096).expect("map");
            // SAFETY: inside the read-only mapping.
            let v = unsafe { (addr as *const u8).read_volatile() };
            assert_eq!(v, 1);
            vmo.op_range(abi::ops::ZX_VMO_OP_DECOMMIT, 0, 4096)
                .expect("decommit");
            // SAFETY: reading the decommitted page gives a fresh zero page.
            let v = unsafe { (addr as *const u8).read_volatile() };
            assert_eq!(v, 0);
            // SAFETY: deliberately faults: the view is read-only.
            unsafe { (addr as *mut u8).write_volatile(2) };
            SURVIVED
        }
        case::READ_NO_ACCESS => {
            println!("victim: read a mapping without permissions");
            let vmo = Vmo::create(4096, 0).expect("vmo");
            let addr = root.map(0, 0, &vmo, 0, 4096).expect("map");
            // SAFETY: deliberately faults: the mapping allows no access.
            let v = unsafe { (addr as *const u64).read_volatile() };
            println!("victim: read {v:#x}");
            SURVIVED
        }
        case::TOUCH_PAST_VMO_END => {
            println!("victim: touch a mapping past the end of its VMO");
            let vmo = Vmo::create(4096, 0).expect("vmo");
            let addr = root
                .map(
                    ZX_VM_ALLOW_FAULTS | ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
                    0,
                    &vmo,
                    0,
                    2 * 4096,
                )
                .expect("map");
            // SAFETY: the first page is backed by the VMO.
            unsafe { (addr as *mut u64).write_volatile(1) };
            // SAFETY: deliberately faults: the second page is past the VMO's end.
            unsafe { ((addr + 4096) as *mut u64).write_volatile(2) };
            SURVIVED
        }
        case::TOUCH_AFTER_SHRINK => {
            println!("victim: touch a page after its resizable VMO shrank");
            let vmo = Vmo::create(2 * 4096, ZX_VMO_RESIZABLE).expect("vmo");
            let addr = root
                .map(
                    ZX_VM_ALLOW_FAULTS | ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
                    0,
                    &vmo,
                    0,
                    2 * 4096,
                )
                .expect("map");
            // SAFETY: both pages are backed (and now present in the page tables).
            unsafe { ((addr + 4096) as *mut u64).write_volatile(1) };
            vmo.set_size(4096).expect("set_size");
            // SAFETY: deliberately faults: the page is gone from the VMO and the page tables.
            unsafe { ((addr + 4096) as *mut u64).write_volatile(2) };
            SURVIVED
        }
        case::SPOOF_UTEST => {
            // Every form this process can make: it has no nonce (arg2 is the case, the
            // ramdisk is not given), so it tries the old prefix and a guessed one.
            for prefix in [
                "utest: ",
                "utest[0000000000000000]: ",
                "utest[00000000000003e8]: ",
            ] {
                println!("{prefix}result demo::spoofs_a_pass ok");
            }
            0
        }
        case::MAP_MANY => {
            let mailbox = Vmo::from(startup.arg1);
            let mb = root
                .map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, &mailbox, 0, 4096)
                .expect("map the mailbox");
            let vmo = Vmo::create(4096, 0).expect("vmo");
            let mut n = 0;
            while n < MAP_MANY_LIMIT && root.map(ZX_VM_PERM_READ, 0, &vmo, 0, 4096).is_ok() {
                n += 1;
            }
            // SAFETY: the mailbox is mapped read-write, page-aligned, and stays mapped; the
            // parent reads the word atomically.
            let word = unsafe { &*(mb as *const core::sync::atomic::AtomicU64) };
            word.store(n | MAP_MANY_DONE, core::sync::atomic::Ordering::SeqCst);
            // Until killed (a kill wakes the wait and ends the thread).
            let _ = startup
                .thread
                .handle()
                .wait_one(abi::signals::ZX_THREAD_TERMINATED, i64::MAX);
            SURVIVED
        }
        case::SPREAD_THREADS => {
            println!("victim: unstarted threads spread over unstarted children until refused");
            let mailbox = Vmo::from(startup.arg1);
            let (children, threads, status) = spread_threads();
            report_and_wait(&mailbox, &startup.thread, threads.len() as u64, status);
            drop((children, threads));
            SURVIVED
        }
        case::PARK_HANDLES => {
            println!("victim: park handles in channel queues until refused");
            let mailbox = Vmo::from(startup.arg1);
            let (channels, parked, status) = park_handles();
            report_and_wait(&mailbox, &startup.thread, parked, status);
            drop(channels);
            SURVIVED
        }
        case::DEBUG_MEMORY => {
            println!("victim: zx_process_write_memory / read_memory on itself");
            let vmo = Vmo::create(4096, 0).expect("vmo");
            let addr = root
                .map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, &vmo, 0, 4096)
                .expect("map");
            let wrote = startup.process.write_memory(addr, b"debug");
            let mut back = [0u8; 5];
            let read = startup.process.read_memory(addr, &mut back);
            match (wrote, read) {
                (Ok(5), Ok(5)) if &back == b"debug" => debug_memory::WORKED,
                (Err(Status::ERR_ACCESS_DENIED), Err(Status::ERR_ACCESS_DENIED)) => {
                    debug_memory::DENIED
                }
                other => {
                    println!("victim: unexpected results {other:?}");
                    -3
                }
            }
        }
        other => {
            println!("victim: unknown case {other}");
            -2
        }
    }
}

/// `case::SPREAD_THREADS`: new unstarted children, each given unstarted threads (through our
/// handle to it) until the kernel refuses; stops at the first child that gets none (or 16).
fn spread_threads() -> (
    alloc::vec::Vec<zx::Process>,
    alloc::vec::Vec<Thread>,
    Status,
) {
    let mut children = alloc::vec::Vec::new();
    let mut threads = alloc::vec::Vec::new();
    let status = loop {
        let (p, _root) = match zx::Process::create(&zx::Handle::invalid(), b"spread", 0) {
            Ok(c) => c,
            Err(e) => break e,
        };
        let mut n = 0;
        let e = loop {
            match Thread::create(&p, b"idle", 0) {
                Ok(t) => {
                    threads.push(t);
                    n += 1;
                }
                Err(e) => break e,
            }
        };
        children.push(p);
        if n == 0 || children.len() >= 16 {
            break e;
        }
    };
    (children, threads, status)
}

/// `case::PARK_HANDLES`: duplicates of one VMO handle, 64 per message, written into channels
/// until each queue is full (then a new channel), until a duplicate, a channel or a write is
/// refused otherwise. Returns the channels, the handles parked and that status.
fn park_handles() -> (alloc::vec::Vec<(zx::Channel, zx::Channel)>, u64, Status) {
    let same = abi::rights::ZX_RIGHT_SAME_RIGHTS;
    let mut channels = alloc::vec::Vec::new();
    let mut parked = 0u64;
    let Ok(vmo) = Vmo::create(4096, 0) else {
        return (channels, 0, Status::ERR_INTERNAL);
    };
    let status = 'outer: loop {
        let (a, b) = match zx::Channel::create(0) {
            Ok(pair) => pair,
            Err(e) => break e,
        };
        loop {
            let mut hs = alloc::vec::Vec::with_capacity(64);
            for _ in 0..64 {
                match vmo.handle().duplicate(same) {
                    Ok(h) => hs.push(h),
                    Err(e) => {
                        channels.push((a, b));
                        break 'outer e;
                    }
                }
            }
            match a.write(b"", hs) {
                Ok(()) => parked += 64,
                Err(Status::ERR_SHOULD_WAIT) => break,
                Err(e) => {
                    channels.push((a, b));
                    break 'outer e;
                }
            }
        }
        channels.push((a, b));
    };
    (channels, parked, status)
}

/// Stores `count` and `status` in the mailbox VMO (arg1) for the parent (word 1, then word 0
/// with [`QUOTA_DONE`]), then waits to be killed, keeping everything it made.
fn report_and_wait(mailbox: &Vmo, thread: &Thread, count: u64, status: Status) {
    // Written with `vmo_write`: maps nothing, so it needs no new kernel objects.
    let _ = mailbox.write(&(status.into_raw() as i64).to_le_bytes(), 8);
    let _ = mailbox.write(&(count | QUOTA_DONE).to_le_bytes(), 0);
    let _ = thread
        .handle()
        .wait_one(abi::signals::ZX_THREAD_TERMINATED, i64::MAX);
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

/// Drives each per-process quota to its limit, checks the status, gives everything back and
/// checks the resource works again. Returns 0, or the number of the step that went wrong (the
/// kernel prints why).
fn exhaust(startup: &Startup) -> i64 {
    let root = &startup.root_vmar;
    let same = abi::rights::ZX_RIGHT_SAME_RIGHTS;
    // 1. Handles: 16 Ki per process, then ZX_ERR_NO_RESOURCES.
    let vmo = Vmo::create(4096, 0).expect("vmo");
    let mut handles = alloc::vec::Vec::new();
    let err = loop {
        match vmo.handle().duplicate(same) {
            Ok(h) => handles.push(h),
            Err(e) => break e,
        }
    };
    println!(
        "victim: handles: {} duplicates, then {err:?}",
        handles.len()
    );
    if err != Status::ERR_NO_RESOURCES || handles.len() < 16 * 1024 - 16 {
        return 1;
    }
    drop(handles);
    if vmo.handle().duplicate(same).is_err() {
        return 2;
    }
    // 2. Thread objects: 128 per process (the running one included), then NO_RESOURCES.
    let mut threads = alloc::vec::Vec::new();
    let err = loop {
        match Thread::create(&startup.process, b"idle", 0) {
            Ok(t) => threads.push(t),
            Err(e) => break e,
        }
    };
    println!("victim: threads: {} created, then {err:?}", threads.len());
    if err != Status::ERR_NO_RESOURCES || threads.len() != 127 {
        return 3;
    }
    drop(threads);
    if Thread::create(&startup.process, b"again", 0).is_err() {
        return 4;
    }
    // 3. Mappings + VMARs: 64 Ki per address space for map/allocate, then NO_MEMORY.
    let can_rw = abi::vm_options::ZX_VM_CAN_MAP_READ | abi::vm_options::ZX_VM_CAN_MAP_WRITE;
    let (sub, _) = root.allocate(can_rw, 0, 512 << 20).expect("sub-vmar");
    let mut maps = 0usize;
    let err = loop {
        match sub.map(ZX_VM_PERM_READ, 0, &vmo, 0, 4096) {
            Ok(_) => maps += 1,
            Err(e) => break e,
        }
    };
    println!("victim: mappings: {maps} mapped, then {err:?}");
    if err != Status::ERR_NO_MEMORY || maps < 64 * 1024 - 64 {
        return 5;
    }
    // SAFETY: nothing refers to the sub-VMAR's mappings.
    if unsafe { sub.destroy() }.is_err() || root.map(ZX_VM_PERM_READ, 0, &vmo, 0, 4096).is_err() {
        return 6;
    }
    // 4. Memory: committing more than there is stops at the kernel reserve with NO_MEMORY.
    // Nothing may touch a new page (heap, stack) until `big` is gone: a demand fault would find
    // no frame and kill the process. So print afterwards.
    let big = Vmo::create(1 << 32, 0).expect("big vmo");
    let err = big.op_range(abi::ops::ZX_VMO_OP_COMMIT, 0, 1 << 32);
    let committed = big.info().map_or(0, |i| i.committed_bytes);
    // Kernel objects without frames still work at the frame limit.
    let small = Vmo::create(4096, 0).is_ok();
    drop(big);
    println!(
        "victim: memory: committed {} MiB, then {err:?}",
        committed >> 20
    );
    if err != Err(Status::ERR_NO_MEMORY) || committed == 0 {
        return 7;
    }
    if !small {
        return 8;
    }
    if vmo.op_range(abi::ops::ZX_VMO_OP_COMMIT, 0, 4096).is_err() {
        return 9;
    }
    0
}
