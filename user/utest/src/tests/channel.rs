//! Channels from user mode: create, write/read with handle transfer, every error status in
//! Zircon's order, signals and waits (also woken by another thread), and no leaked handles when
//! messages die with their channel.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use abi::default_rights::{ZX_DEFAULT_CHANNEL_RIGHTS, ZX_DEFAULT_VMO_RIGHTS};
use abi::exception::channel::*;
use abi::obj_type::ZX_OBJ_TYPE_CHANNEL;
use abi::rights::{ZX_RIGHT_READ, ZX_RIGHT_SAME_RIGHTS, ZX_RIGHT_TRANSFER, ZX_RIGHT_WRITE};
use abi::signals::*;
use abi::Status;
use zx::{Channel, Handle, Thread};

use super::util::{vmo, BOGUS, RW};
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    create_pair,
    create_bad_args,
    write_read_bytes,
    transfer_handles,
    read_errors,
    read_too_small_keeps_message,
    read_may_discard_closes_handles,
    write_errors_consume_handles,
    write_self_or_peer_not_supported,
    write_limits,
    peer_closed,
    wait_readable_from_other_thread,
    queue_full_should_wait,
    no_leak_when_channel_dies,
    ownership_cycles_refused,
    freeing_chains_and_trees_of_endpoints,
    sending_a_deep_tree_and_a_cycle_at_depth,
);

fn pair() -> Result<(Channel, Channel), crate::harness::Failure> {
    Ok(check!(Channel::create(0)))
}

fn create_pair(_ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    let ia = check!(a.handle().basic_info());
    let ib = check!(b.handle().basic_info());
    ensure_eq!(ia.r#type, ZX_OBJ_TYPE_CHANNEL);
    ensure_eq!(ia.rights, ZX_DEFAULT_CHANNEL_RIGHTS);
    ensure_eq!(ib.rights, ZX_DEFAULT_CHANNEL_RIGHTS);
    ensure_eq!(ia.related_koid, ib.koid);
    ensure_eq!(ib.related_koid, ia.koid);
    ensure!(ia.koid != ib.koid);
    // Not readable yet, writable.
    ensure_eq!(
        check!(a.handle().wait_one(ZX_CHANNEL_WRITABLE, 0)),
        ZX_CHANNEL_WRITABLE
    );
    Ok(())
}

fn create_bad_args(_ctx: &Ctx) -> TestResult {
    ensure_err!(Channel::create(1), Status::ERR_INVALID_ARGS);
    let mut out = 0u32;
    // SAFETY: the kernel must refuse the kernel-half out-pointer before writing anything.
    let r = unsafe {
        zx::raw::syscall3(
            abi::syscall_numbers::ZX_SYS_CHANNEL_CREATE,
            0,
            &mut out as *mut u32 as usize,
            0xffff_8000_0000_0000,
        )
    };
    ensure_eq!(super::util::st(r), Status::ERR_INVALID_ARGS);
    // The first endpoint was taken back: the value written is no longer a handle.
    ensure_err!(Handle::from_raw(out).close(), Status::ERR_BAD_HANDLE);
    Ok(())
}

fn write_read_bytes(_ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    check!(a.write(b"one", vec![]));
    check!(a.write(b"", vec![]));
    check!(a.write(&[9u8; 1000], vec![]));
    ensure_eq!(
        check!(b.handle().wait_one(ZX_CHANNEL_READABLE, 0)),
        ZX_CHANNEL_READABLE | ZX_CHANNEL_WRITABLE
    );
    ensure_eq!(check!(b.read()).0, b"one".to_vec());
    ensure_eq!(check!(b.read()).0, Vec::<u8>::new());
    ensure_eq!(check!(b.read()).0, vec![9u8; 1000]);
    ensure_err!(b.read(), Status::ERR_SHOULD_WAIT);
    // The other direction is independent.
    check!(b.write(b"back", vec![]));
    ensure_eq!(check!(a.read()).0, b"back".to_vec());
    Ok(())
}

fn transfer_handles(ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    let v = vmo(1)?;
    check!(v.write(b"payload", 0));
    let koid = check!(v.handle().basic_info()).koid;
    let raw = v.handle().raw();
    let ro = check!(v.handle().duplicate(ZX_RIGHT_READ | ZX_RIGHT_TRANSFER));
    check!(a.write(b"h", vec![v.into_handle(), ro]));
    // Gone from our table.
    ensure_err!(Handle::from_raw(raw).close(), Status::ERR_BAD_HANDLE);
    let (bytes, handles) = check!(b.read());
    ensure_eq!(bytes, b"h".to_vec());
    ensure_eq!(handles.len(), 2);
    let i0 = check!(handles[0].basic_info());
    let i1 = check!(handles[1].basic_info());
    ensure_eq!(i0.koid, koid);
    ensure_eq!(i1.koid, koid);
    ensure_eq!(i0.rights, ZX_DEFAULT_VMO_RIGHTS);
    ensure_eq!(i1.rights, ZX_RIGHT_READ | ZX_RIGHT_TRANSFER);
    // The received VMO is the same object: its content and a mapping work.
    let got = zx::Vmo::from(handles.into_iter().next().unwrap());
    let mut buf = [0u8; 7];
    check!(got.read(&mut buf, 0));
    ensure_eq!(&buf, b"payload");
    let addr = check!(ctx.root.map(RW, 0, &got, 0, PAGE));
    // SAFETY: we just mapped it readable.
    ensure_eq!(unsafe { *(addr as *const u8) }, b'p');
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    // A channel endpoint travels too (from another channel).
    let (c, d) = pair()?;
    check!(a.write(b"", vec![d.into_handle()]));
    let (_, mut hs) = check!(b.read());
    let d = Channel::from(hs.remove(0));
    check!(c.write(b"via moved end", vec![]));
    ensure_eq!(check!(d.read()).0, b"via moved end".to_vec());
    Ok(())
}

fn read_errors(_ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    let mut bytes = [0u8; 8];
    let mut hs = [0u32; 1];
    ensure_eq!(
        b.read_raw(0, &mut bytes, &mut hs).status,
        Status::ERR_SHOULD_WAIT
    );
    // Unknown options: NOT_SUPPORTED (after the handle lookup).
    check!(a.write(b"x", vec![]));
    ensure_eq!(
        b.read_raw(2, &mut bytes, &mut hs).status,
        Status::ERR_NOT_SUPPORTED
    );
    ensure_eq!(
        b.read_raw(1 << 31, &mut bytes, &mut hs).status,
        Status::ERR_NOT_SUPPORTED
    );
    let bogus = Channel::from(Handle::from_raw(BOGUS));
    ensure_eq!(
        bogus.read_raw(0, &mut bytes, &mut hs).status,
        Status::ERR_BAD_HANDLE
    );
    core::mem::forget(bogus);
    // Not a channel: WRONG_TYPE; no READ right: ACCESS_DENIED.
    let v = Channel::from(vmo(1)?.into_handle());
    ensure_eq!(
        v.read_raw(0, &mut bytes, &mut hs).status,
        Status::ERR_WRONG_TYPE
    );
    // Channels have no DUPLICATE right: reduce with replace.
    ensure_err!(
        b.handle().duplicate(ZX_RIGHT_SAME_RIGHTS),
        Status::ERR_ACCESS_DENIED
    );
    let wo = Channel::from(check!(b.into_handle().replace(ZX_RIGHT_WRITE)));
    ensure_eq!(
        wo.read_raw(0, &mut bytes, &mut hs).status,
        Status::ERR_ACCESS_DENIED
    );
    Ok(())
}

fn read_too_small_keeps_message(_ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    let v = vmo(1)?;
    check!(a.write(&[5u8; 10], vec![v.into_handle()]));
    let mut small = [0u8; 9];
    let mut hs = [0u32; 1];
    let r = b.read_raw(0, &mut small, &mut hs);
    ensure_eq!(
        (r.status, r.bytes, r.handles),
        (Status::ERR_BUFFER_TOO_SMALL, 10, 1)
    );
    let mut enough = [0u8; 10];
    let r = b.read_raw(0, &mut enough, &mut []);
    ensure_eq!(
        (r.status, r.bytes, r.handles),
        (Status::ERR_BUFFER_TOO_SMALL, 10, 1)
    );
    // Still there, intact.
    let r = b.read_raw(0, &mut enough, &mut hs);
    ensure_eq!((r.status, r.bytes, r.handles), (Status::OK, 10, 1));
    ensure_eq!(enough, [5u8; 10]);
    check!(Handle::from_raw(hs[0]).close());
    Ok(())
}

fn read_may_discard_closes_handles(_ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    let v = vmo(1)?;
    let keep = check!(v.handle().duplicate(ZX_RIGHT_SAME_RIGHTS));
    check!(a.write(b"0123456789", vec![v.into_handle()]));
    let r = b.read_raw(ZX_CHANNEL_READ_MAY_DISCARD, &mut [0u8; 2], &mut []);
    ensure_eq!(
        (r.status, r.bytes, r.handles),
        (Status::ERR_BUFFER_TOO_SMALL, 10, 1)
    );
    // Discarded: the queue is empty and the VMO lost the handle that travelled (ours remains).
    ensure_err!(b.read(), Status::ERR_SHOULD_WAIT);
    ensure_eq!(
        check!(keep.basic_info()).r#type,
        abi::obj_type::ZX_OBJ_TYPE_VMO
    );
    Ok(())
}

fn write_errors_consume_handles(_ctx: &Ctx) -> TestResult {
    let (a, _b) = pair()?;
    // Unknown options: INVALID_ARGS, and the listed handle is consumed anyway.
    let v = vmo(1)?.into_handle();
    let raw = v.into_raw();
    ensure_err!(a.write_raw(1 << 5, b"", &[raw]), Status::ERR_INVALID_ARGS);
    ensure_err!(Handle::from_raw(raw).close(), Status::ERR_BAD_HANDLE);
    // A bad channel handle: BAD_HANDLE; consumed.
    let raw = vmo(1)?.into_handle().into_raw();
    let bogus = Channel::from(Handle::from_raw(BOGUS));
    ensure_err!(bogus.write_raw(0, b"", &[raw]), Status::ERR_BAD_HANDLE);
    core::mem::forget(bogus);
    ensure_err!(Handle::from_raw(raw).close(), Status::ERR_BAD_HANDLE);
    // Not a channel: WRONG_TYPE.
    let not_channel = Channel::from(vmo(1)?.into_handle());
    ensure_err!(not_channel.write(b"", vec![]), Status::ERR_WRONG_TYPE);
    // No WRITE right: ACCESS_DENIED.
    let (c, _d) = pair()?;
    let ro = Channel::from(check!(c.into_handle().replace(ZX_RIGHT_READ)));
    ensure_err!(ro.write(b"", vec![]), Status::ERR_ACCESS_DENIED);
    // A handle without TRANSFER: ACCESS_DENIED; every listed handle is consumed.
    let v1 = vmo(1)?;
    let no_transfer = check!(v1.handle().duplicate(ZX_RIGHT_READ));
    let other = vmo(1)?.into_handle();
    let (r1, r2) = (no_transfer.into_raw(), other.into_raw());
    ensure_err!(a.write_raw(0, b"", &[r2, r1]), Status::ERR_ACCESS_DENIED);
    ensure_err!(Handle::from_raw(r1).close(), Status::ERR_BAD_HANDLE);
    ensure_err!(Handle::from_raw(r2).close(), Status::ERR_BAD_HANDLE);
    // The same handle twice: the second removal finds nothing, BAD_HANDLE.
    let raw = v1.into_handle().into_raw();
    ensure_err!(a.write_raw(0, b"", &[raw, raw]), Status::ERR_BAD_HANDLE);
    ensure_err!(Handle::from_raw(raw).close(), Status::ERR_BAD_HANDLE);
    // A bad handle array pointer: INVALID_ARGS.
    // SAFETY: the kernel must refuse the kernel-half array.
    let r = unsafe {
        zx::raw::syscall6(
            abi::syscall_numbers::ZX_SYS_CHANNEL_WRITE,
            a.handle().raw() as usize,
            0,
            0,
            0,
            0xffff_8000_0000_0000,
            1,
        )
    };
    ensure_eq!(super::util::st(r), Status::ERR_INVALID_ARGS);
    Ok(())
}

fn write_self_or_peer_not_supported(_ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    let raw = a.handle().raw();
    ensure_err!(a.write_raw(0, b"", &[raw]), Status::ERR_NOT_SUPPORTED);
    // Consumed: the channel handle itself is gone.
    ensure_err!(a.handle().check_valid(), Status::ERR_BAD_HANDLE);
    core::mem::forget(a);
    // b's peer is closed now.
    ensure_eq!(
        check!(b.handle().wait_one(ZX_CHANNEL_PEER_CLOSED, 0)),
        ZX_CHANNEL_PEER_CLOSED
    );
    // Writing the peer endpoint into a channel: NOT_SUPPORTED too (ours, see docs).
    let (c, d) = pair()?;
    let draw = d.into_handle().into_raw();
    ensure_err!(c.write_raw(0, b"", &[draw]), Status::ERR_NOT_SUPPORTED);
    ensure_err!(Handle::from_raw(draw).close(), Status::ERR_BAD_HANDLE);
    Ok(())
}

fn write_limits(_ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    let big = vec![3u8; ZX_CHANNEL_MAX_MSG_BYTES as usize];
    check!(a.write(&big, vec![]));
    ensure_eq!(check!(b.read()).0.len(), big.len());
    let too_big = vec![3u8; ZX_CHANNEL_MAX_MSG_BYTES as usize + 1];
    ensure_err!(a.write(&too_big, vec![]), Status::ERR_OUT_OF_RANGE);
    let values = [BOGUS; ZX_CHANNEL_MAX_MSG_HANDLES as usize + 1];
    ensure_err!(a.write_raw(0, b"", &values), Status::ERR_OUT_OF_RANGE);
    // 64 handles fit.
    let v = vmo(1)?;
    let hs: Vec<Handle> = (0..ZX_CHANNEL_MAX_MSG_HANDLES)
        .map(|_| {
            v.handle()
                .duplicate(ZX_RIGHT_SAME_RIGHTS)
                .unwrap_or_else(|_| Handle::invalid())
        })
        .collect();
    ensure!(hs.iter().all(Handle::is_valid));
    check!(a.write(b"", hs));
    ensure_eq!(
        check!(b.read()).1.len(),
        ZX_CHANNEL_MAX_MSG_HANDLES as usize
    );
    Ok(())
}

fn peer_closed(_ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    check!(a.write(b"last words", vec![]));
    drop(a);
    ensure_eq!(
        check!(b.handle().wait_one(ZX_CHANNEL_PEER_CLOSED, 0)),
        ZX_CHANNEL_READABLE | ZX_CHANNEL_PEER_CLOSED
    );
    ensure_eq!(check!(b.read()).0, b"last words".to_vec());
    ensure_err!(b.read(), Status::ERR_PEER_CLOSED);
    ensure_err!(b.write(b"?", vec![]), Status::ERR_PEER_CLOSED);
    // A handle written to a closed peer is consumed (closed) too.
    let raw = vmo(1)?.into_handle().into_raw();
    ensure_err!(b.write_raw(0, b"", &[raw]), Status::ERR_PEER_CLOSED);
    ensure_err!(Handle::from_raw(raw).close(), Status::ERR_BAD_HANDLE);
    Ok(())
}

/// Second thread: writes "wake" on the channel whose raw handle is `arg1` after spinning a
/// little, records that it ran, and exits.
extern "C" fn writer_thread(arg1: usize, arg2: usize) -> ! {
    let until = zx::clock_get_monotonic() + 20_000_000;
    while zx::clock_get_monotonic() < until {
        core::hint::spin_loop();
    }
    let ch = core::mem::ManuallyDrop::new(Channel::from(Handle::from_raw(arg1 as u32)));
    let ok = ch.write(b"wake", alloc::vec::Vec::new()).is_ok();
    // SAFETY: arg2 is the address of an AtomicU32 the test keeps alive until this thread ended.
    let cell = unsafe { &*(arg2 as *const AtomicU32) };
    cell.store(if ok { 1 } else { 2 }, Ordering::SeqCst);
    Thread::exit()
}

fn wait_readable_from_other_thread(ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    let stack = vmo(4)?;
    let base = check!(ctx.root.map(RW, 0, &stack, 0, 4 * PAGE));
    let cell = AtomicU32::new(0);
    let t = check!(Thread::create(&ctx.process, b"writer", 0));
    // SAFETY: the entry only uses the channel handle (kept open until the thread ended) and
    // `cell` (outlives the thread), on its own stack.
    check!(unsafe {
        t.start(
            writer_thread as *const () as usize,
            base + 4 * PAGE - 8,
            a.handle().raw() as usize,
            &cell as *const AtomicU32 as usize,
        )
    });
    let observed = check!(b.handle().wait_one(ZX_CHANNEL_READABLE, i64::MAX));
    ensure!(
        observed & ZX_CHANNEL_READABLE != 0,
        "observed {observed:#x}"
    );
    ensure_eq!(check!(b.read()).0, b"wake".to_vec());
    check!(t.handle().wait_one(ZX_THREAD_TERMINATED, i64::MAX));
    ensure_eq!(cell.load(Ordering::SeqCst), 1);
    // SAFETY: the thread is gone; nothing uses its stack.
    check!(unsafe { ctx.root.unmap(base, 4 * PAGE) });
    Ok(())
}

fn queue_full_should_wait(_ctx: &Ctx) -> TestResult {
    let (a, b) = pair()?;
    let mut n = 0;
    loop {
        match a.write(b"m", vec![]) {
            Ok(()) => n += 1,
            Err(Status::ERR_SHOULD_WAIT) => break,
            Err(e) => fail!("write {n}: {e:?}"),
        }
        ensure!(n <= 100_000, "no bound on the queue");
    }
    ensure!(n >= 16, "queue bound {n}");
    check!(b.read());
    check!(a.write(b"m", vec![]));
    Ok(())
}

fn no_leak_when_channel_dies(_ctx: &Ctx) -> TestResult {
    let before = check!(zx::debug_kernel_stats())[abi::kstats::HANDLES];
    {
        let (a, b) = pair()?;
        let (c, d) = pair()?;
        check!(c.write(b"inner", vec![vmo(1)?.into_handle()]));
        check!(a.write(b"outer", vec![d.into_handle(), vmo(1)?.into_handle()]));
        drop(b);
        drop(a);
        drop(c);
    }
    let after = check!(zx::debug_kernel_stats())[abi::kstats::HANDLES];
    ensure_eq!(after, before);
    Ok(())
}

fn ownership_cycles_refused(_ctx: &Ctx) -> TestResult {
    let before = check!(zx::debug_kernel_stats())[abi::kstats::HANDLES];
    {
        let (w, x) = pair()?;
        let (c, t) = pair()?;
        // x goes into t's queue; then t into x's queue would leave both unreachable.
        check!(c.write(b"x", vec![x.into_handle()]));
        let traw = t.into_handle().into_raw();
        ensure_err!(w.write_raw(0, b"t", &[traw]), Status::ERR_NOT_SUPPORTED);
        ensure_err!(Handle::from_raw(traw).close(), Status::ERR_BAD_HANDLE);
        // A three-channel ring is refused at the write that would close it.
        let (a1, e1) = pair()?;
        let (a2, e2) = pair()?;
        let (a3, e3) = pair()?;
        check!(a2.write(b"", vec![e1.into_handle()]));
        check!(a3.write(b"", vec![e2.into_handle()]));
        ensure_err!(
            a1.write(b"", vec![e3.into_handle()]),
            Status::ERR_NOT_SUPPORTED
        );
        drop((w, c, a1, a2, a3));
    }
    let after = check!(zx::debug_kernel_stats())[abi::kstats::HANDLES];
    ensure_eq!(after, before);
    Ok(())
}

/// Issue 10's kernel stack overflow: a chain of endpoints, each queued in a message at the one
/// before (80 deep crashed the kernel), and a tree (64 endpoints per message, 3 levels), freed
/// by closing the head: the kernel survives and every handle is gone.
fn freeing_chains_and_trees_of_endpoints(_ctx: &Ctx) -> TestResult {
    let before = check!(zx::leak_check_stats());
    {
        let (head, mut tail) = pair()?;
        for _ in 0..2000 {
            let (a, b) = pair()?;
            check!(tail.write(b"", vec![a.into_handle()]));
            tail = b;
        }
        drop(tail);
        drop(head);
    }
    {
        // `top` holds the tree: 4 messages of 16 endpoints, and each of those 4 x 16 more.
        let (root, top) = pair()?;
        let mut writers = vec![root];
        for _ in 0..2 {
            let mut next = Vec::new();
            for w in &writers {
                for _ in 0..4 {
                    let mut ends = Vec::new();
                    for _ in 0..16 {
                        let (a, b) = pair()?;
                        ends.push(a.into_handle());
                        next.push(b);
                    }
                    check!(w.write(b"", ends));
                }
            }
            writers = next;
        }
        drop(writers);
        drop(top);
    }
    let after = check!(zx::leak_check_stats());
    ensure_eq!(after[abi::kstats::HANDLES], before[abi::kstats::HANDLES]);
    Ok(())
}

/// Issue 10: the ownership-cycle check of `zx_channel_write` walked every endpoint queued below
/// the one being sent, testing membership in a list: 40 970 endpoints below one took 70-81 s per
/// write with interrupts off (2.1 s on the optimized kernel). It walks up from the receiving
/// endpoint instead (35 us here). This test sends an endpoint with 40 960 endpoints beneath
/// (the time is printed; the interrupts-off bound is asserted by the watchdog tests) and checks
/// that a cycle closed at the bottom of a 2 000-deep chain is still refused.
fn sending_a_deep_tree_and_a_cycle_at_depth(ctx: &Ctx) -> TestResult {
    let before = check!(zx::leak_check_stats());
    {
        // x's queue: 10 messages of 64 endpoints, each of those with 64 more in its queue.
        let (x, x_peer) = pair()?;
        for _ in 0..10 {
            let mut ends = Vec::new();
            for _ in 0..64 {
                let (a, b) = pair()?;
                let mut leaves = Vec::new();
                for _ in 0..64 {
                    leaves.push(pair()?.0.into_handle());
                }
                check!(b.write(b"", leaves));
                ends.push(a.into_handle());
            }
            check!(x_peer.write(b"", ends));
        }
        let (w, r) = pair()?;
        let (bare, _bare_peer) = pair()?;
        let t0 = zx::ticks_get();
        check!(w.write(b"", vec![bare.into_handle()]));
        let t1 = zx::ticks_get();
        check!(w.write(b"", vec![x.into_handle()]));
        let t2 = zx::ticks_get();
        let us = |t: i64| t * 1_000_000 / zx::ticks_per_second().max(1);
        zx::println!(
            "utest: note: write of a bare endpoint {} us, of one with 40 960 beneath {} us",
            us(t1 - t0),
            us(t2 - t1)
        );
        drop(r);
        drop(x_peer);
    }
    {
        // A 2 000-deep chain below `top`; sending `top` into the bottom's queue closes a cycle.
        let (top, mut tail) = pair()?;
        for _ in 0..2000 {
            let (a, b) = pair()?;
            check!(tail.write(b"", vec![a.into_handle()]));
            tail = b;
        }
        ensure_err!(
            tail.write(b"", vec![top.into_handle()]),
            Status::ERR_NOT_SUPPORTED
        );
    }
    // The endpoints are freed by the thread that drains the closed queues: with several CPUs
    // that may be another process's thread, still at it on another CPU (channel.rs,
    // `drain_pending`: one drainer at a time). Wait up to 5 s for it.
    let deadline = zx::clock_get_monotonic() + 5_000_000_000;
    let mut after = check!(zx::leak_check_stats());
    while after[abi::kstats::HANDLES] != before[abi::kstats::HANDLES]
        && zx::clock_get_monotonic() < deadline
    {
        let _ = ctx
            .thread
            .handle()
            .wait_one(ZX_THREAD_TERMINATED, zx::clock_get_monotonic() + 10_000_000);
        after = check!(zx::leak_check_stats());
    }
    ensure_eq!(after[abi::kstats::HANDLES], before[abi::kstats::HANDLES]);
    Ok(())
}
