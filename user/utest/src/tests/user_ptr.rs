//! Bad user pointers for every syscall that takes one: null, unmapped, read-only (for
//! out-pointers), kernel-half, non-canonical, the top of the address space and misaligned (for
//! typed out-values) → `ZX_ERR_INVALID_ARGS`, no kernel panic, and the call undone: no VMAR
//! allocated, nothing mapped, a duplicated handle not leaked, a VMO unchanged.

use abi::info::topic;
use abi::rights::*;
use abi::signals::ZX_PROCESS_TERMINATED;
use abi::syscall_numbers as nr;
use abi::vm_options::*;
use abi::Status;
use zx::raw::{syscall2, syscall3, syscall4, syscall5, syscall6, syscall7};
use zx::{Handle, Process};

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    vmar_allocate_outs,
    vmar_map_out,
    vmar_map_overwrite_out,
    vmo_create_out,
    vmo_read_write_buffers,
    vmo_read_write_with_buffers_not_faulted_in_and_in_the_same_vmo,
    vmo_get_size_out,
    vmo_replace_as_executable_out,
    handle_duplicate_out,
    handle_replace_out,
    object_get_info_pointers,
    object_wait_one_observed,
    process_create_pointers,
    thread_create_pointers,
    process_memory_pointers,
    debug_write_buffer,
);

fn vmar_allocate_outs(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    let (r, _) = region(ctx, CAN_RWS, 8)?;
    let good = bad.scratch();
    for (what, p) in bad.outs(false) {
        for (child, addr) in [(p, good + 8), (good, p)] {
            // SAFETY: the kernel must refuse the bad pointer; the good one is our scratch page.
            let res = unsafe {
                syscall6(
                    nr::ZX_SYS_VMAR_ALLOCATE,
                    r.raw_handle() as usize,
                    CAN_RW as usize,
                    0,
                    PAGE,
                    child,
                    addr,
                )
            };
            ensure!(
                st(res) == Status::ERR_INVALID_ARGS,
                "allocate with a {what} out-pointer: {:?}",
                st(res)
            );
            let (_, vmars) = check!(contents(&r));
            ensure!(
                vmars.is_empty(),
                "a {what} out-pointer left a VMAR: {vmars:?}"
            );
        }
    }
    // SAFETY: nothing is mapped in the region.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn map_with_out(vmar: &zx::Vmar, options: u32, offset: usize, vmo: &zx::Vmo, out: usize) -> Status {
    // SAFETY: the callers pass out-pointers the kernel must refuse; the mapping is undone.
    st(unsafe {
        syscall7(
            nr::ZX_SYS_VMAR_MAP,
            vmar.raw_handle() as usize,
            options as usize,
            offset,
            vmo.raw_handle() as usize,
            0,
            PAGE,
            out,
        )
    })
}

fn vmar_map_out(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    let (r, _) = region(ctx, CAN_RWS, 8)?;
    let v = vmo(1)?;
    for (what, p) in bad.outs(false) {
        let s = map_with_out(&r, RW, 0, &v, p);
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "map with a {what} out-pointer: {s:?}"
        );
        let s = map_with_out(&r, RW | ZX_VM_SPECIFIC, 2 * PAGE, &v, p);
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "specific map with a {what} out-pointer: {s:?}"
        );
        let (mappings, _) = check!(contents(&r));
        ensure!(
            mappings.is_empty(),
            "a {what} out-pointer left a mapping: {mappings:?}"
        );
    }
    // The same spot is free afterwards.
    check!(r.map(RW | ZX_VM_SPECIFIC, 2 * PAGE, &v, 0, PAGE));
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn vmar_map_overwrite_out(ctx: &Ctx) -> TestResult {
    // SPECIFIC_OVERWRITE with a bad out-pointer: the new mapping is undone, what it replaced
    // stays replaced (as in Zircon); the rest of the old mapping is intact.
    let (r, base) = region(ctx, CAN_RWS, 4)?;
    let old = vmo(3)?;
    check!(r.map(ZX_VM_SPECIFIC | RW, 0, &old, 0, 3 * PAGE));
    poke(base, 1);
    poke(base + 2 * PAGE, 3);
    let v = vmo(1)?;
    let s = map_with_out(&r, RW | ZX_VM_SPECIFIC_OVERWRITE, PAGE, &v, KERNEL_ADDR);
    ensure_eq!(s, Status::ERR_INVALID_ARGS);
    ensure_eq!(
        check!(contents(&r)).0,
        [(base, PAGE, RW), (base + 2 * PAGE, PAGE, RW)]
    );
    ensure_eq!(peek(base), 1);
    ensure_eq!(peek(base + 2 * PAGE), 3);
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn vmo_create_out(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    for (what, p) in bad.outs(false) {
        // SAFETY: the kernel must refuse the pointer.
        let s = st(unsafe { syscall3(nr::ZX_SYS_VMO_CREATE, PAGE, 0, p) });
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "vmo_create with a {what} out-pointer: {s:?}"
        );
    }
    Ok(())
}

fn vmo_read_write_buffers(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    let v = vmo(1)?;
    check!(v.write(b"original", 0));
    for (what, p) in bad.outs(true) {
        // SAFETY: the kernel must refuse the buffer.
        let s = st(unsafe { syscall4(nr::ZX_SYS_VMO_READ, v.raw_handle() as usize, p, 0, 8) });
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "vmo_read into a {what} buffer: {s:?}"
        );
    }
    for (what, p) in bad.ins() {
        // SAFETY: the kernel must refuse the buffer.
        let s = st(unsafe { syscall4(nr::ZX_SYS_VMO_WRITE, v.raw_handle() as usize, p, 0, 8) });
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "vmo_write from a {what} buffer: {s:?}"
        );
    }
    let mut buf = [0u8; 8];
    check!(v.read(&mut buf, 0));
    ensure_eq!(&buf, b"original");
    // A read-only source buffer is fine.
    // SAFETY: the read-only page is readable.
    let s = st(unsafe {
        syscall4(
            nr::ZX_SYS_VMO_WRITE,
            v.raw_handle() as usize,
            bad.read_only(),
            0,
            8,
        )
    });
    ensure_eq!(s, Status::OK);
    // A buffer running off the end of a mapping into the unmapped page.
    // SAFETY: the kernel copies until the fault and reports INVALID_ARGS.
    let s = st(unsafe {
        syscall4(
            nr::ZX_SYS_VMO_READ,
            v.raw_handle() as usize,
            bad.scratch() + PAGE - 8,
            0,
            16,
        )
    });
    ensure_eq!(s, Status::ERR_INVALID_ARGS);
    Ok(())
}

/// `zx_vmo_read` / `write` copy straight between the VMO's pages and the buffer while the
/// buffer's pages are present, and through a kernel buffer (resolving faults) from the first
/// page that is not: buffers never touched yet, and a buffer that maps the very VMO being read
/// or written (its fault needs that VMO, which the straight copy holds locked), must give the
/// same bytes.
fn vmo_read_write_with_buffers_not_faulted_in_and_in_the_same_vmo(ctx: &Ctx) -> TestResult {
    let pages = 6;
    let len = pages * PAGE;
    let pattern = |i: usize| (i * 7 % 251) as u8;
    let src = vmo(pages)?;
    let data: alloc::vec::Vec<u8> = (0..len).map(pattern).collect();
    check!(src.write(&data, 0));
    // Into a fresh mapping (no page present): every byte arrives.
    let fresh = vmo(pages)?;
    let a = check!(ctx.root.map(RW, 0, &fresh, 0, len));
    // SAFETY: `a` maps `len` bytes of `fresh`, used by nothing else.
    let r = st(unsafe { syscall4(nr::ZX_SYS_VMO_READ, src.raw_handle() as usize, a, 0, len) });
    ensure_eq!(r, Status::OK);
    let mut back = alloc::vec![0u8; len];
    check!(fresh.read(&mut back, 0));
    ensure!(back == data, "read into a fresh mapping: bytes differ");
    // From a fresh mapping: zeros arrive.
    let zeros = vmo(pages)?;
    let z = check!(ctx.root.map(RW, 0, &zeros, 0, len));
    // SAFETY: `z` maps `len` readable bytes.
    let r = st(unsafe { syscall4(nr::ZX_SYS_VMO_WRITE, src.raw_handle() as usize, z, 0, len) });
    ensure_eq!(r, Status::OK);
    check!(src.read(&mut back, 0));
    ensure!(
        back.iter().all(|&b| b == 0),
        "write from a fresh mapping: not zeros"
    );
    // The same VMO on both sides: its pages 3.. mapped (not faulted in), pages 0..3 read into
    // them, then written back from them to pages 0..3 shifted by one page.
    check!(src.write(&data, 0));
    let half = 3 * PAGE;
    let m = check!(ctx.root.map(RW, 0, &src, half as u64, half));
    // SAFETY: `m` maps pages 3..6 of `src`, used by nothing else.
    let r = st(unsafe { syscall4(nr::ZX_SYS_VMO_READ, src.raw_handle() as usize, m, 0, half) });
    ensure_eq!(r, Status::OK);
    check!(src.read(&mut back, 0));
    ensure!(
        back[half..] == data[..half],
        "read into a mapping of the same VMO"
    );
    // SAFETY: as above; `m` is readable.
    let r = st(unsafe {
        syscall4(
            nr::ZX_SYS_VMO_WRITE,
            src.raw_handle() as usize,
            m,
            PAGE,
            half,
        )
    });
    ensure_eq!(r, Status::OK);
    check!(src.read(&mut back, 0));
    ensure!(
        back[PAGE..PAGE + half] == data[..half],
        "write from a mapping of the same VMO"
    );
    for (addr, size) in [(a, len), (z, len), (m, half)] {
        // SAFETY: the mappings made above.
        check!(unsafe { ctx.root.unmap(addr, size) });
    }
    Ok(())
}

fn vmo_get_size_out(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    let v = vmo(1)?;
    for (what, p) in bad.outs(false) {
        // SAFETY: the kernel must refuse the pointer.
        let s = st(unsafe { syscall2(nr::ZX_SYS_VMO_GET_SIZE, v.raw_handle() as usize, p) });
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "get_size with a {what} out-pointer: {s:?}"
        );
    }
    Ok(())
}

fn vmo_replace_as_executable_out(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    for (what, p) in bad.outs(false) {
        let v = vmo(1)?;
        let raw = v.raw_handle();
        // SAFETY: the kernel must refuse the pointer.
        let s = st(unsafe { syscall3(nr::ZX_SYS_VMO_REPLACE_AS_EXECUTABLE, raw as usize, 0, p) });
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "replace_as_executable with {what}: {s:?}"
        );
        // The source is consumed whatever happens (Zircon).
        ensure_err!(raw_vmo(raw).handle().check_valid(), Status::ERR_BAD_HANDLE);
        core::mem::forget(v);
    }
    Ok(())
}

fn handle_duplicate_out(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    let v = vmo(1)?;
    let before = check!(v.handle().basic_info());
    for (what, p) in bad.outs(false) {
        // SAFETY: the kernel must refuse the pointer.
        let s = st(unsafe {
            syscall3(
                nr::ZX_SYS_HANDLE_DUPLICATE,
                v.raw_handle() as usize,
                ZX_RIGHT_SAME_RIGHTS as usize,
                p,
            )
        });
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "duplicate with a {what} out-pointer: {s:?}"
        );
    }
    // The source is untouched (the new handle was closed again by the kernel).
    let after = check!(v.handle().basic_info());
    ensure_eq!((after.koid, after.rights), (before.koid, before.rights));
    Ok(())
}

fn handle_replace_out(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    for (what, p) in bad.outs(false) {
        let v = vmo(1)?;
        let raw = Handle::from(v).into_raw();
        // SAFETY: the kernel must refuse the pointer.
        let s = st(unsafe {
            syscall3(
                nr::ZX_SYS_HANDLE_REPLACE,
                raw as usize,
                ZX_RIGHT_SAME_RIGHTS as usize,
                p,
            )
        });
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "replace with a {what} out-pointer: {s:?}"
        );
        // The old handle is consumed (Zircon), the new one closed again.
        ensure_err!(Handle::from_raw(raw).close(), Status::ERR_BAD_HANDLE);
    }
    Ok(())
}

fn object_get_info_pointers(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    let h = ctx.process.handle().raw() as usize;
    let good = bad.scratch();
    let info = |t: u32, buf: usize, size: usize, actual: usize, avail: usize| {
        // SAFETY: the callers pass pointers the kernel must refuse, or our scratch page.
        st(unsafe {
            syscall6(
                nr::ZX_SYS_OBJECT_GET_INFO,
                h,
                t as usize,
                buf,
                size,
                actual,
                avail,
            )
        })
    };
    for (what, p) in bad.outs(false) {
        if p != 0 {
            // actual / avail are optional: null is fine, anything else bad is not.
            for t in [topic::ZX_INFO_PROCESS, topic::ZX_INFO_PROCESS_MAPS] {
                let s = info(t, good, 512, p, good + 1024);
                ensure!(
                    s == Status::ERR_INVALID_ARGS,
                    "actual {what}, topic {t:#x}: {s:?}"
                );
                let s = info(t, good, 512, good + 1024, p);
                ensure!(
                    s == Status::ERR_INVALID_ARGS,
                    "avail {what}, topic {t:#x}: {s:?}"
                );
            }
        }
    }
    for (what, p) in bad.outs(true) {
        for t in [
            topic::ZX_INFO_PROCESS,
            topic::ZX_INFO_PROCESS_MAPS,
            topic::ZX_INFO_HANDLE_BASIC,
        ] {
            let s = info(t, p, 512, 0, 0);
            ensure!(
                s == Status::ERR_INVALID_ARGS,
                "buffer {what}, topic {t:#x}: {s:?}"
            );
        }
    }
    ensure_eq!(info(topic::ZX_INFO_PROCESS, good, 512, 0, 0), Status::OK);
    Ok(())
}

fn object_wait_one_observed(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    let child = ctx.spawn("child", 0)?;
    ensure_eq!(check!(child.wait()), 0);
    for (what, p) in bad.outs(false) {
        if p == 0 {
            continue; // optional
        }
        // SAFETY: the kernel must refuse the pointer.
        let s = st(unsafe {
            syscall4(
                nr::ZX_SYS_OBJECT_WAIT_ONE,
                child.process.handle().raw() as usize,
                ZX_PROCESS_TERMINATED as usize,
                0,
                p,
            )
        });
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "wait_one with a {what} observed: {s:?}"
        );
    }
    Ok(())
}

fn process_create_pointers(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    let good = bad.scratch();
    // SAFETY: the scratch page is ours.
    unsafe { (good as *mut [u8; 4]).write_volatile(*b"name") };
    let create = |name: usize, len: usize, proc_out: usize, vmar_out: usize| {
        // SAFETY: the callers pass pointers the kernel must refuse, or our scratch page.
        st(unsafe {
            syscall6(
                nr::ZX_SYS_PROCESS_CREATE,
                0,
                name,
                len,
                0,
                proc_out,
                vmar_out,
            )
        })
    };
    for (what, p) in bad.ins() {
        let s = create(p, 4, good + 64, good + 128);
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "process_create with a {what} name: {s:?}"
        );
    }
    for (what, p) in bad.outs(false) {
        for (po, vo) in [(p, good + 128), (good + 64, p)] {
            let s = create(good, 4, po, vo);
            ensure!(
                s == Status::ERR_INVALID_ARGS,
                "process_create with a {what} out: {s:?}"
            );
        }
    }
    // The kernel keeps working: a real one still succeeds.
    let (p, _v) = check!(Process::create(&Handle::invalid(), b"ok", 0));
    check!(p.handle().basic_info());
    Ok(())
}

fn thread_create_pointers(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    let good = bad.scratch();
    let (p, _v) = check!(Process::create(&Handle::invalid(), b"threads", 0));
    let create = |name: usize, out: usize| {
        // SAFETY: the callers pass pointers the kernel must refuse, or our scratch page.
        st(unsafe {
            syscall5(
                nr::ZX_SYS_THREAD_CREATE,
                p.handle().raw() as usize,
                name,
                4,
                0,
                out,
            )
        })
    };
    for (what, ptr) in bad.ins() {
        let s = create(ptr, good + 64);
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "thread_create with a {what} name: {s:?}"
        );
    }
    for (what, ptr) in bad.outs(false) {
        let s = create(good, ptr);
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "thread_create with a {what} out: {s:?}"
        );
    }
    Ok(())
}

fn process_memory_pointers(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    let good = bad.scratch();
    let v = vmo(1)?;
    let target = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    poke(target, 0x77);
    // What a write_memory whose `actual` cannot be written still copies: the same value.
    poke(good, 0x77);
    let h = ctx.process.handle().raw() as usize;
    let call = |n: u32, buf: usize, actual: usize| {
        // SAFETY: the callers pass pointers the kernel must refuse, or our scratch page.
        st(unsafe { syscall5(n, h, target, buf, 8, actual) })
    };
    for (what, p) in bad.outs(true) {
        let s = call(nr::ZX_SYS_PROCESS_READ_MEMORY, p, good + 64);
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "read_memory into a {what} buffer: {s:?}"
        );
    }
    for (what, p) in bad.ins() {
        let s = call(nr::ZX_SYS_PROCESS_WRITE_MEMORY, p, good + 64);
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "write_memory from a {what} buffer: {s:?}"
        );
    }
    for (what, p) in bad.outs(false) {
        for n in [
            nr::ZX_SYS_PROCESS_READ_MEMORY,
            nr::ZX_SYS_PROCESS_WRITE_MEMORY,
        ] {
            let s = call(n, good, p);
            ensure!(
                s == Status::ERR_INVALID_ARGS,
                "syscall {n} with a {what} actual: {s:?}"
            );
        }
    }
    ensure_eq!(peek(target), 0x77);
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(target, PAGE) });
    Ok(())
}

fn debug_write_buffer(ctx: &Ctx) -> TestResult {
    let bad = BadPtrs::new(ctx)?;
    for (what, p) in bad.ins() {
        // SAFETY: the kernel must refuse the buffer.
        let s = st(unsafe { syscall2(nr::ZX_SYS_DEBUG_WRITE, p, 16) });
        ensure!(
            s == Status::ERR_INVALID_ARGS,
            "debug_write from a {what} buffer: {s:?}"
        );
    }
    // A read-only buffer is fine: the kernel only reads it.
    let text = b"user_ptr: debug_write from a read-only mapping\n";
    let v = vmo(1)?;
    check!(v.write(text, 0));
    let ro = check!(ctx.root.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    // SAFETY: the page is mapped readable and holds `text`.
    let s = st(unsafe { syscall2(nr::ZX_SYS_DEBUG_WRITE, ro, text.len()) });
    ensure!(
        s == Status::OK,
        "debug_write of {} bytes from a read-only buffer: {s:?}",
        text.len()
    );
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(ro, PAGE) });
    Ok(())
}
