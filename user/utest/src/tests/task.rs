//! Tasks, success paths and rights: `zx_process_create` (handles, rights, root VMAR),
//! `zx_thread_create` / `zx_thread_start` / `zx_thread_exit` (a second thread in this process),
//! `zx_task_kill` of an unstarted process, `zx_object_wait_one` (observed signals, threads),
//! `zx_process_read_memory` / `zx_process_write_memory` (self and another process, truncation at
//! a mapping's end, unmapped and kernel addresses, rights reduced by duplicate), and
//! `ZX_INFO_PROCESS` / `ZX_INFO_HANDLE_VALID` topics.

use core::sync::atomic::{AtomicU64, Ordering};

use abi::default_rights::*;
use abi::info::{process_flags::*, topic};
use abi::obj_type::*;
use abi::rights::*;
use abi::signals::*;
use abi::syscall_numbers as nr;
use abi::task::ZX_TASK_RETCODE_SYSCALL_KILL;
use abi::vm_options::*;
use abi::Status;
use zx::raw::{syscall4, syscall6};
use zx::{Handle, Process, Thread};

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    process_create_handles,
    thread_start_runs_and_exits,
    thread_start_errors,
    kill_unstarted_process,
    wait_one_observed,
    read_write_memory_of_other_process,
    read_memory_of_self,
    memory_access_stays_in_one_mapping,
    memory_access_ignores_protection,
    memory_access_errors,
    memory_access_rights,
    handle_valid_topic,
);

/// Deadline 5 s from now.
fn soon() -> i64 {
    zx::clock_get_monotonic() + 5_000_000_000
}

fn process_create_handles(_ctx: &Ctx) -> TestResult {
    let (p, root) = check!(Process::create(&Handle::invalid(), b"created", 0));
    let pi = check!(p.handle().basic_info());
    ensure_eq!(
        (pi.r#type, pi.rights),
        (ZX_OBJ_TYPE_PROCESS, ZX_DEFAULT_PROCESS_RIGHTS)
    );
    let ri = check!(root.handle().basic_info());
    ensure_eq!(ri.r#type, ZX_OBJ_TYPE_VMAR);
    ensure_eq!(
        ri.rights,
        ZX_DEFAULT_VMAR_RIGHTS | ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE
    );
    let info = check!(root.info());
    ensure!(
        info.base != 0 && info.len > 0,
        "root {:#x}+{:#x}",
        info.base,
        info.len
    );
    // A fresh process: not started, not exited, its root VMAR empty and not destroyable.
    ensure_eq!(
        check!(p.info()).flags & (ZX_INFO_PROCESS_FLAG_STARTED | ZX_INFO_PROCESS_FLAG_EXITED),
        0
    );
    ensure_eq!(check!(zx::process::maps(root.handle())).len(), 1);
    // SAFETY: the call fails.
    ensure_err!(unsafe { root.destroy() }, Status::ERR_NOT_SUPPORTED);
    // Its thread.
    let t = check!(Thread::create(&p, b"t", 0));
    let ti = check!(t.handle().basic_info());
    ensure_eq!(
        (ti.r#type, ti.rights),
        (ZX_OBJ_TYPE_THREAD, ZX_DEFAULT_THREAD_RIGHTS)
    );
    ensure_eq!(ti.related_koid, pi.koid);
    // Errors of the calls themselves.
    ensure_err!(
        Process::create(&Handle::invalid(), b"x", 1),
        Status::ERR_NOT_SUPPORTED
    );
    ensure_err!(
        Process::create(&Handle::invalid(), b"x", 2),
        Status::ERR_INVALID_ARGS
    );
    ensure_err!(Thread::create(&p, b"x", 1), Status::ERR_INVALID_ARGS);
    let no_manage = Process::from(check!(p.handle().duplicate(ZX_RIGHT_READ)));
    ensure_err!(
        Thread::create(&no_manage, b"x", 0),
        Status::ERR_ACCESS_DENIED
    );
    Ok(())
}

/// Entry of the second thread: stores `arg2` at `arg1` (an `AtomicU64`), then exits.
extern "C" fn second_thread(arg1: usize, arg2: usize) -> ! {
    // SAFETY: arg1 is the address of an AtomicU64 the test keeps alive until this thread ended.
    let cell = unsafe { &*(arg1 as *const AtomicU64) };
    cell.store(arg2 as u64, Ordering::SeqCst);
    Thread::exit()
}

fn thread_start_runs_and_exits(ctx: &Ctx) -> TestResult {
    let stack = vmo(4)?;
    let base = check!(ctx.root.map(RW, 0, &stack, 0, 4 * PAGE));
    let cell = AtomicU64::new(0);
    let t = check!(Thread::create(&ctx.process, b"second", 0));
    // SAFETY: the entry only touches `cell`, which outlives the thread (we wait for it below),
    // and runs on its own stack mapping.
    check!(unsafe {
        t.start(
            second_thread as *const () as usize,
            base + 4 * PAGE - 8,
            &cell as *const AtomicU64 as usize,
            0xfeed,
        )
    });
    let observed = check!(t.handle().wait_one(ZX_THREAD_TERMINATED, soon()));
    ensure!(
        observed & ZX_THREAD_TERMINATED != 0,
        "observed {observed:#x}"
    );
    ensure_eq!(cell.load(Ordering::SeqCst), 0xfeed);
    // This process goes on (zx_thread_exit ended only that thread).
    ensure_eq!(
        check!(ctx.process.info()).flags & ZX_INFO_PROCESS_FLAG_EXITED,
        0
    );
    // SAFETY: the thread is gone; nothing uses its stack.
    check!(unsafe { ctx.root.unmap(base, 4 * PAGE) });
    Ok(())
}

fn thread_start_errors(ctx: &Ctx) -> TestResult {
    let stack = vmo(4)?;
    let base = check!(ctx.root.map(RW, 0, &stack, 0, 4 * PAGE));
    let cell = AtomicU64::new(0);
    let t = check!(Thread::create(&ctx.process, b"twice", 0));
    let no_manage = Thread::from(check!(t.handle().duplicate(ZX_RIGHT_WAIT)));
    // SAFETY: (whole block) as in thread_start_runs_and_exits; the failing starts start nothing.
    unsafe {
        ensure_err!(
            no_manage.start(
                second_thread as *const () as usize,
                base + 4 * PAGE - 8,
                0,
                0
            ),
            Status::ERR_ACCESS_DENIED
        );
        ensure_err!(
            t.start(KERNEL_ADDR, base + 4 * PAGE - 8, 0, 0),
            Status::ERR_INVALID_ARGS
        );
        check!(t.start(
            second_thread as *const () as usize,
            base + 4 * PAGE - 8,
            &cell as *const AtomicU64 as usize,
            1
        ));
        check!(t.handle().wait_one(ZX_THREAD_TERMINATED, soon()));
        ensure_err!(
            t.start(
                second_thread as *const () as usize,
                base + 4 * PAGE - 8,
                0,
                0
            ),
            Status::ERR_BAD_STATE
        );
        check!(ctx.root.unmap(base, 4 * PAGE));
    }
    ensure_eq!(cell.load(Ordering::SeqCst), 1);
    // A thread handle is not a process handle.
    ensure_err!(
        Thread::create(
            &Process::from(check!(t.handle().duplicate(ZX_RIGHT_SAME_RIGHTS))),
            b"x",
            0
        ),
        Status::ERR_WRONG_TYPE
    );
    Ok(())
}

fn kill_unstarted_process(_ctx: &Ctx) -> TestResult {
    let (p, _root) = check!(Process::create(&Handle::invalid(), b"never", 0));
    check!(p.kill());
    let observed = check!(p.handle().wait_one(ZX_PROCESS_TERMINATED, soon()));
    ensure!(observed & ZX_PROCESS_TERMINATED != 0);
    let info = check!(p.info());
    ensure!(
        info.flags & ZX_INFO_PROCESS_FLAG_EXITED != 0,
        "flags {:#x}",
        info.flags
    );
    ensure_eq!(info.return_code, ZX_TASK_RETCODE_SYSCALL_KILL);
    // Killing needs ZX_RIGHT_DESTROY; a thread is the wrong type.
    let no_destroy = Process::from(check!(p.handle().duplicate(ZX_RIGHT_WAIT)));
    ensure_err!(no_destroy.kill(), Status::ERR_ACCESS_DENIED);
    Ok(())
}

fn wait_one_observed(ctx: &Ctx) -> TestResult {
    let child = ctx.spawn("child", 5)?;
    ensure_eq!(check!(child.wait()), 5);
    let mut observed = 0u32;
    // SAFETY: `observed` is a valid, aligned u32.
    let r = unsafe {
        syscall4(
            nr::ZX_SYS_OBJECT_WAIT_ONE,
            child.process.handle().raw() as usize,
            ZX_PROCESS_TERMINATED as usize,
            0,
            &mut observed as *mut u32 as usize,
        )
    };
    ensure_eq!(st(r), Status::OK);
    ensure!(
        observed & ZX_PROCESS_TERMINATED != 0,
        "observed {observed:#x}"
    );
    // Already-past deadline on an unsignalled object: TIMED_OUT at once, observed written.
    let (p, _root) = check!(Process::create(&Handle::invalid(), b"idle", 0));
    observed = 0xffff_ffff;
    // SAFETY: as above.
    let r = unsafe {
        syscall4(
            nr::ZX_SYS_OBJECT_WAIT_ONE,
            p.handle().raw() as usize,
            ZX_PROCESS_TERMINATED as usize,
            0,
            &mut observed as *mut u32 as usize,
        )
    };
    ensure_eq!(st(r), Status::ERR_TIMED_OUT);
    ensure_eq!(observed & ZX_PROCESS_TERMINATED, 0);
    // WAIT right, bad handle.
    let no_wait = check!(p.handle().duplicate(ZX_RIGHT_READ));
    ensure_err!(
        no_wait.wait_one(ZX_PROCESS_TERMINATED, 0),
        Status::ERR_ACCESS_DENIED
    );
    ensure_err!(
        Handle::from_raw(closed_handle()?).wait_one(ZX_PROCESS_TERMINATED, 0),
        Status::ERR_BAD_HANDLE
    );
    Ok(())
}

fn read_write_memory_of_other_process(_ctx: &Ctx) -> TestResult {
    let (p, root) = check!(Process::create(&Handle::invalid(), b"target", 0));
    let v = vmo(2)?;
    let addr = check!(root.map(ZX_VM_PERM_READ, 0, &v, 0, 2 * PAGE));
    // Write ignores the mapping's protection (debugger semantics) and commits as needed.
    let data = *b"written from outside";
    ensure_eq!(check!(p.write_memory(addr + PAGE - 4, &data)), data.len());
    let mut back = [0u8; 20];
    ensure_eq!(check!(p.read_memory(addr + PAGE - 4, &mut back)), 20);
    ensure_eq!(back, data);
    let mut via_vmo = [0u8; 20];
    check!(v.read(&mut via_vmo, PAGE as u64 - 4));
    ensure_eq!(via_vmo, data);
    // A read running past the mapping's end is truncated there.
    let mut big = [0u8; 64];
    ensure_eq!(check!(p.read_memory(addr + 2 * PAGE - 16, &mut big)), 16);
    // Not mapped in that process (though perhaps in ours).
    let mut b = [0u8; 8];
    ensure_err!(
        p.read_memory(addr + 2 * PAGE, &mut b),
        Status::ERR_NOT_FOUND
    );
    ensure_err!(p.write_memory(addr - PAGE, &b), Status::ERR_NOT_FOUND);
    Ok(())
}

fn read_memory_of_self(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    let addr = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    poke(addr + 8, 0x0123_4567_89ab_cdef);
    let mut b = [0u8; 8];
    ensure_eq!(check!(ctx.process.read_memory(addr + 8, &mut b)), 8);
    ensure_eq!(u64::from_le_bytes(b), 0x0123_4567_89ab_cdef);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    ensure_err!(
        ctx.process.read_memory(addr + 8, &mut b),
        Status::ERR_NOT_FOUND
    );
    Ok(())
}

fn memory_access_stays_in_one_mapping(_ctx: &Ctx) -> TestResult {
    // Two adjacent mappings of different VMOs: an access starting in the first stops at its end
    // (Zircon reads and writes one mapping's VMO per call).
    let (p, root) = check!(Process::create(&Handle::invalid(), b"two", 0));
    let (r, base) = check!(root.allocate(CAN_RWS, 0, 4 * PAGE));
    let a = vmo(1)?;
    let b = vmo(1)?;
    check!(b.write(b"BBBBBBBB", 0));
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &a, 0, PAGE));
    check!(r.map(ZX_VM_SPECIFIC | RW, PAGE, &b, 0, PAGE));
    let mut buf = [0u8; 16];
    ensure_eq!(check!(p.read_memory(base + PAGE - 8, &mut buf)), 8);
    ensure_eq!(
        check!(p.write_memory(base + PAGE - 8, b"aaaaaaaabbbbbbbb")),
        8
    );
    let mut head = [0u8; 8];
    check!(b.read(&mut head, 0));
    ensure_eq!(&head, b"BBBBBBBB");
    check!(a.read(&mut head, PAGE as u64 - 8));
    ensure_eq!(&head, b"aaaaaaaa");
    // A mapping past the end of its VMO (ALLOW_FAULTS): only the VMO's bytes are reachable.
    let c = vmo(1)?;
    let m = check!(r.map(ZX_VM_ALLOW_FAULTS | RW, 0, &c, 0, 2 * PAGE));
    ensure_eq!(check!(p.read_memory(m + PAGE - 4, &mut buf)), 4);
    ensure_err!(p.read_memory(m + PAGE, &mut buf), Status::ERR_OUT_OF_RANGE);
    ensure_err!(p.write_memory(m + PAGE, &buf), Status::ERR_OUT_OF_RANGE);
    Ok(())
}

fn memory_access_ignores_protection(_ctx: &Ctx) -> TestResult {
    // Debugger access goes to the VMO: a mapping without any permission is readable and
    // writable this way, and a read does not commit pages.
    let (p, root) = check!(Process::create(&Handle::invalid(), b"prot", 0));
    let v = vmo(2)?;
    check!(v.write(b"secret", 0));
    let addr = check!(root.map(0, 0, &v, 0, 2 * PAGE));
    let mut buf = [0u8; 6];
    ensure_eq!(check!(p.read_memory(addr, &mut buf)), 6);
    ensure_eq!(&buf, b"secret");
    ensure_eq!(check!(p.read_memory(addr + PAGE, &mut buf)), 6);
    ensure_eq!(buf, [0; 6]);
    ensure_eq!(check!(v.info()).committed_bytes, PAGE as u64);
    ensure_eq!(check!(p.write_memory(addr + PAGE, b"public")), 6);
    check!(v.read(&mut buf, PAGE as u64));
    ensure_eq!(&buf, b"public");
    Ok(())
}

fn memory_access_errors(ctx: &Ctx) -> TestResult {
    let (p, _root) = check!(Process::create(&Handle::invalid(), b"empty", 0));
    let mut b = [0u8; 16];
    // Kernel, non-canonical and low addresses are never readable or writable this way: no
    // mapping is there (Zircon looks the address up in the process's address space first).
    for addr in [
        KERNEL_ADDR,
        0xffff_ffff_8000_0000,
        NON_CANONICAL,
        0x1000,
        0,
        usize::MAX - 7,
    ] {
        for target in [&p, &ctx.process] {
            ensure_err!(target.read_memory(addr, &mut b), Status::ERR_NOT_FOUND);
            ensure_err!(target.write_memory(addr, &b), Status::ERR_NOT_FOUND);
        }
    }
    // Buffer length 0 is invalid; so is a null buffer.
    ensure_err!(
        ctx.process.read_memory(0x10_0000, &mut []),
        Status::ERR_INVALID_ARGS
    );
    let mut actual = 0usize;
    // SAFETY: the kernel must refuse the null buffer.
    let r = unsafe {
        zx::raw::syscall5(
            nr::ZX_SYS_PROCESS_READ_MEMORY,
            p.handle().raw() as usize,
            0x10_0000,
            0,
            16,
            &mut actual as *mut usize as usize,
        )
    };
    ensure_eq!(st(r), Status::ERR_INVALID_ARGS);
    // Wrong handle types.
    let v = vmo(1)?;
    let as_process = Process::from(check!(v.handle().duplicate(ZX_RIGHT_SAME_RIGHTS)));
    ensure_err!(
        as_process.read_memory(0x10_0000, &mut b),
        Status::ERR_WRONG_TYPE
    );
    Ok(())
}

fn memory_access_rights(_ctx: &Ctx) -> TestResult {
    let (p, root) = check!(Process::create(&Handle::invalid(), b"rights", 0));
    let v = vmo(1)?;
    let addr = check!(root.map(RW, 0, &v, 0, PAGE));
    let mut b = [0u8; 4];
    // Read needs READ and WRITE; write needs WRITE.
    let read_only = Process::from(check!(p.handle().duplicate(ZX_RIGHT_READ)));
    let write_only = Process::from(check!(p.handle().duplicate(ZX_RIGHT_WRITE)));
    ensure_err!(
        read_only.read_memory(addr, &mut b),
        Status::ERR_ACCESS_DENIED
    );
    ensure_err!(
        write_only.read_memory(addr, &mut b),
        Status::ERR_ACCESS_DENIED
    );
    ensure_err!(
        read_only.write_memory(addr, b"abcd"),
        Status::ERR_ACCESS_DENIED
    );
    ensure_eq!(check!(write_only.write_memory(addr, b"abcd")), 4);
    ensure_eq!(check!(v.info()).committed_bytes, PAGE as u64);
    Ok(())
}

fn handle_valid_topic(ctx: &Ctx) -> TestResult {
    let get = |h: u32| {
        // SAFETY: the topic writes nothing.
        st(unsafe {
            syscall6(
                nr::ZX_SYS_OBJECT_GET_INFO,
                h as usize,
                topic::ZX_INFO_HANDLE_VALID as usize,
                0,
                0,
                0,
                0,
            )
        })
    };
    ensure_eq!(get(ctx.root.raw_handle()), Status::OK);
    ensure_eq!(get(ctx.process.handle().raw()), Status::OK);
    ensure_eq!(get(closed_handle()?), Status::ERR_BAD_HANDLE);
    ensure_eq!(get(BOGUS), Status::ERR_BAD_HANDLE);
    // ZX_INFO_VMAR and ZX_INFO_PROCESS need ZX_RIGHT_INSPECT.
    let no_inspect = vmar_dup(&ctx.root, ZX_RIGHT_READ)?;
    ensure_err!(no_inspect.info(), Status::ERR_ACCESS_DENIED);
    let p = Process::from(check!(ctx.process.handle().duplicate(ZX_RIGHT_WAIT)));
    ensure_err!(p.info(), Status::ERR_ACCESS_DENIED);
    ensure_err!(zx::process::maps(p.handle()), Status::ERR_ACCESS_DENIED);
    Ok(())
}
