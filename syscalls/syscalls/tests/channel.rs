//! Channels through dispatch: create, write, read, handle transfer, signals, errors in Zircon's
//! order, queue bounds, and teardown of queued messages (no handle left behind).

mod common;

use abi::default_rights::{ZX_DEFAULT_CHANNEL_RIGHTS, ZX_DEFAULT_VMO_RIGHTS};
use abi::exception::channel::*;
use abi::info::topic::ZX_INFO_HANDLE_BASIC;
use abi::info::InfoHandleBasic;
use abi::obj_type::ZX_OBJ_TYPE_CHANNEL;
use abi::rights::{ZX_RIGHT_READ, ZX_RIGHT_TRANSFER, ZX_RIGHT_WRITE};
use abi::signals::*;
use abi::Status;
use common::*;
use syscalls::channel::{MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES};
use syscalls::handle::live_handle_count;
use syscalls::Object;

const OUT: usize = BUF + 0x100;
const DATA: usize = BUF + 0x1000;
const HANDLES: usize = BUF + 0x800;
const RBUF: usize = BUF + 0x8000;
const ACTUAL: usize = BUF + 0x200;

fn create(m: &mut Mock) -> (u32, u32) {
    m.sys(ZX_SYS_CHANNEL_CREATE, &[0, OUT as u64, (OUT + 4) as u64])
        .expect("channel_create");
    (m.peek(OUT), m.peek(OUT + 4))
}

fn write(m: &mut Mock, ch: u32, bytes: &[u8], handles: &[u32]) -> Result<(), Status> {
    m.poke(DATA, bytes);
    let raw: Vec<u8> = handles.iter().flat_map(|h| h.to_le_bytes()).collect();
    m.poke(HANDLES, &raw);
    m.sys(
        ZX_SYS_CHANNEL_WRITE,
        &[
            ch as u64,
            0,
            DATA as u64,
            bytes.len() as u64,
            HANDLES as u64,
            handles.len() as u64,
        ],
    )
}

/// A message `(bytes, handles)`, or the error with the actual sizes.
type ReadOutcome = Result<(Vec<u8>, Vec<u32>), (Status, u32, u32)>;

/// Reads with buffers of `nb` bytes / `nh` handles; returns (bytes, handles) or the error with
/// the actual sizes.
fn read(m: &mut Mock, ch: u32, options: u32, nb: u32, nh: u32) -> ReadOutcome {
    m.poke(ACTUAL, &[0xff; 8]);
    let r = m.sys(
        ZX_SYS_CHANNEL_READ,
        &[
            ch as u64,
            options as u64,
            RBUF as u64,
            HANDLES as u64,
            nb as u64,
            nh as u64,
            ACTUAL as u64,
            (ACTUAL + 4) as u64,
        ],
    );
    let (ab, ah): (u32, u32) = (m.peek(ACTUAL), m.peek(ACTUAL + 4));
    match r {
        Ok(()) => {
            let bytes = m.mem.peek(RBUF, ab as usize);
            let handles = (0..ah as usize)
                .map(|i| m.peek::<u32>(HANDLES + 4 * i))
                .collect();
            Ok((bytes, handles))
        }
        Err(s) => Err((s, ab, ah)),
    }
}

fn signals(m: &Mock, h: u32) -> u32 {
    m.process
        .table
        .lock()
        .unwrap()
        .get(h)
        .unwrap()
        .object()
        .signals()
}

#[test]
fn create_gives_two_peers_with_default_rights() {
    let _g = serial();
    let mut m = Mock::new();
    assert_eq!(
        m.sys(ZX_SYS_CHANNEL_CREATE, &[1, OUT as u64, (OUT + 4) as u64]),
        Err(Status::ERR_INVALID_ARGS)
    );
    let before = m.handle_count();
    assert_eq!(
        m.sys(ZX_SYS_CHANNEL_CREATE, &[0, OUT as u64, KERNEL as u64]),
        Err(Status::ERR_INVALID_ARGS)
    );
    assert_eq!(m.handle_count(), before, "a failed create leaves no handle");
    let (a, b) = create(&mut m);
    assert_eq!(m.rights(a), ZX_DEFAULT_CHANNEL_RIGHTS);
    assert_eq!(m.rights(b), ZX_DEFAULT_CHANNEL_RIGHTS);
    m.sys(
        ZX_SYS_OBJECT_GET_INFO,
        &[a as u64, ZX_INFO_HANDLE_BASIC as u64, OUT as u64, 32, 0, 0],
    )
    .unwrap();
    let ia: InfoHandleBasic = m.peek(OUT);
    m.sys(
        ZX_SYS_OBJECT_GET_INFO,
        &[b as u64, ZX_INFO_HANDLE_BASIC as u64, OUT as u64, 32, 0, 0],
    )
    .unwrap();
    let ib: InfoHandleBasic = m.peek(OUT);
    assert_eq!(ia.r#type, ZX_OBJ_TYPE_CHANNEL);
    assert_eq!(ia.related_koid, ib.koid);
    assert_eq!(ib.related_koid, ia.koid);
    assert_eq!(signals(&m, a), ZX_CHANNEL_WRITABLE);
}

#[test]
fn bytes_and_handles_travel_with_their_rights() {
    let _g = serial();
    let mut m = Mock::new();
    let (a, b) = create(&mut m);
    let vmo = m.vmo(4096, 0);
    let vmo_ro = m.dup(vmo, ZX_RIGHT_READ | ZX_RIGHT_TRANSFER);
    write(&mut m, a, b"hello", &[vmo, vmo_ro]).unwrap();
    assert!(
        !m.is_valid(vmo) && !m.is_valid(vmo_ro),
        "written handles leave"
    );
    assert_eq!(signals(&m, b), ZX_CHANNEL_READABLE | ZX_CHANNEL_WRITABLE);
    let (bytes, handles) = read(&mut m, b, 0, 100, 4).unwrap();
    assert_eq!(bytes, b"hello");
    assert_eq!(handles.len(), 2);
    assert_eq!(m.rights(handles[0]), ZX_DEFAULT_VMO_RIGHTS);
    assert_eq!(m.rights(handles[1]), ZX_RIGHT_READ | ZX_RIGHT_TRANSFER);
    assert_eq!(signals(&m, b), ZX_CHANNEL_WRITABLE);
    // Empty queue: SHOULD_WAIT; after the peer closed: PEER_CLOSED.
    assert_eq!(
        read(&mut m, b, 0, 100, 4).unwrap_err().0,
        Status::ERR_SHOULD_WAIT
    );
    write(&mut m, b, b"x", &[]).unwrap();
    m.close(b).unwrap();
    assert_eq!(signals(&m, a), ZX_CHANNEL_READABLE | ZX_CHANNEL_PEER_CLOSED);
    assert_eq!(
        read(&mut m, a, 0, 1, 0).unwrap().0,
        b"x",
        "queued data outlives the peer"
    );
    assert_eq!(
        read(&mut m, a, 0, 1, 0).unwrap_err().0,
        Status::ERR_PEER_CLOSED
    );
    assert_eq!(write(&mut m, a, b"y", &[]), Err(Status::ERR_PEER_CLOSED));
}

#[test]
fn read_too_small_reports_sizes_and_keeps_or_discards() {
    let _g = serial();
    let mut m = Mock::new();
    let (a, b) = create(&mut m);
    let vmo = m.vmo(4096, 0);
    write(&mut m, a, &[7; 10], &[vmo]).unwrap();
    assert_eq!(
        read(&mut m, b, 0, 9, 1).unwrap_err(),
        (Status::ERR_BUFFER_TOO_SMALL, 10, 1)
    );
    assert_eq!(
        read(&mut m, b, 0, 10, 0).unwrap_err(),
        (Status::ERR_BUFFER_TOO_SMALL, 10, 1)
    );
    // Still queued.
    assert_eq!(signals(&m, b) & ZX_CHANNEL_READABLE, ZX_CHANNEL_READABLE);
    // Unknown option: NOT_SUPPORTED (after the handle lookup).
    assert_eq!(
        read(&mut m, b, 2, 100, 4).unwrap_err().0,
        Status::ERR_NOT_SUPPORTED
    );
    assert_eq!(
        read(&mut m, BOGUS_HANDLE, 2, 100, 4).unwrap_err().0,
        Status::ERR_BAD_HANDLE
    );
    let handles_before = live_handle_count();
    assert_eq!(
        read(&mut m, b, ZX_CHANNEL_READ_MAY_DISCARD, 0, 0).unwrap_err(),
        (Status::ERR_BUFFER_TOO_SMALL, 10, 1)
    );
    assert_eq!(
        live_handle_count(),
        handles_before - 1,
        "the discarded handle is closed"
    );
    assert_eq!(signals(&m, b), ZX_CHANNEL_WRITABLE);
}

#[test]
fn write_errors_in_zircon_order_and_handles_consumed() {
    let _g = serial();
    let mut m = Mock::new();
    let (a, b) = create(&mut m);
    // Options first.
    let v = m.vmo(4096, 0);
    assert_eq!(
        m.sys(ZX_SYS_CHANNEL_WRITE, &[a as u64, 4, 0, 0, 0, 0]),
        Err(Status::ERR_INVALID_ARGS)
    );
    // A bad channel handle still consumes the listed handles.
    assert_eq!(
        write(&mut m, BOGUS_HANDLE, b"", &[v]),
        Err(Status::ERR_BAD_HANDLE)
    );
    assert!(!m.is_valid(v));
    // Not a channel: WRONG_TYPE; no WRITE right: ACCESS_DENIED.
    let v = m.vmo(4096, 0);
    assert_eq!(write(&mut m, v, b"", &[]), Err(Status::ERR_WRONG_TYPE));
    let obj = m
        .process
        .table
        .lock()
        .unwrap()
        .get(a)
        .unwrap()
        .object()
        .clone();
    let ro = m.add(obj, ZX_RIGHT_READ);
    assert_eq!(write(&mut m, ro, b"", &[]), Err(Status::ERR_ACCESS_DENIED));
    let _ = ZX_RIGHT_WRITE;
    // Sizes: OUT_OF_RANGE.
    assert_eq!(
        m.sys(
            ZX_SYS_CHANNEL_WRITE,
            &[
                a as u64,
                0,
                DATA as u64,
                ZX_CHANNEL_MAX_MSG_BYTES as u64 + 1,
                0,
                0
            ]
        ),
        Err(Status::ERR_OUT_OF_RANGE)
    );
    assert_eq!(
        m.sys(
            ZX_SYS_CHANNEL_WRITE,
            &[
                a as u64,
                0,
                0,
                0,
                HANDLES as u64,
                ZX_CHANNEL_MAX_MSG_HANDLES as u64 + 1
            ]
        ),
        Err(Status::ERR_OUT_OF_RANGE)
    );
    // Bad byte pointer: INVALID_ARGS.
    assert_eq!(
        m.sys(
            ZX_SYS_CHANNEL_WRITE,
            &[a as u64, 0, UNMAPPED as u64, 4, 0, 0]
        ),
        Err(Status::ERR_INVALID_ARGS)
    );
    // The channel itself: NOT_SUPPORTED, and it is consumed (closed).
    assert_eq!(write(&mut m, a, b"", &[a]), Err(Status::ERR_NOT_SUPPORTED));
    assert!(!m.is_valid(a));
    let (a, b2) = create(&mut m);
    // Its peer: NOT_SUPPORTED too (ours).
    assert_eq!(write(&mut m, a, b"", &[b2]), Err(Status::ERR_NOT_SUPPORTED));
    // No TRANSFER: ACCESS_DENIED; the other listed handle is consumed as well.
    let v1 = m.vmo(4096, 0);
    let v2 = m.vmo(4096, 0);
    let no_transfer = m.dup(v1, ZX_RIGHT_READ);
    assert_eq!(
        write(&mut m, a, b"", &[v2, no_transfer]),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert!(!m.is_valid(v2) && !m.is_valid(no_transfer) && m.is_valid(v1));
    // A duplicate in the list: the second removal fails, BAD_HANDLE.
    assert_eq!(
        write(&mut m, a, b"", &[v1, v1]),
        Err(Status::ERR_BAD_HANDLE)
    );
    assert!(!m.is_valid(v1));
    let _ = b;
}

#[test]
fn queue_bounds_are_should_wait() {
    let _g = serial();
    let mut m = Mock::new();
    let (a, b) = create(&mut m);
    for i in 0..MAX_QUEUED_MESSAGES {
        write(&mut m, a, &[i as u8], &[]).unwrap();
    }
    assert_eq!(write(&mut m, a, b"z", &[]), Err(Status::ERR_SHOULD_WAIT));
    read(&mut m, b, 0, 1, 0).unwrap();
    write(&mut m, a, b"z", &[]).unwrap();
    let (c, d) = create(&mut m);
    let big = vec![1u8; ZX_CHANNEL_MAX_MSG_BYTES as usize];
    for _ in 0..MAX_QUEUED_BYTES / big.len() {
        m.mem.map(DATA, big.len(), true);
        write(&mut m, c, &big, &[]).unwrap();
    }
    assert_eq!(write(&mut m, c, &big, &[]), Err(Status::ERR_SHOULD_WAIT));
    let _ = d;
}

#[test]
fn closing_drops_queued_messages_and_their_handles() {
    let _g = serial();
    let mut m = Mock::new();
    let base = live_handle_count();
    let (a, b) = create(&mut m);
    let (c, d) = create(&mut m);
    let v = m.vmo(4096, 0);
    // d travels inside a message queued at b, with a VMO.
    write(&mut m, c, b"in d", &[v]).unwrap();
    write(&mut m, a, b"carry", &[d]).unwrap();
    m.close(b).unwrap();
    m.close(a).unwrap();
    m.close(c).unwrap();
    assert_eq!(
        live_handle_count(),
        base,
        "every queued handle went with its channel"
    );
}

#[test]
fn wait_one_sees_channel_signals() {
    let _g = serial();
    let mut m = Mock::new();
    let (a, b) = create(&mut m);
    write(&mut m, a, b"!", &[]).unwrap();
    let obj = m
        .process
        .table
        .lock()
        .unwrap()
        .get(b)
        .unwrap()
        .object()
        .clone();
    assert!(matches!(obj, Object::Channel(_)));
    assert_eq!(obj.signals(), ZX_CHANNEL_READABLE | ZX_CHANNEL_WRITABLE);
}

#[test]
fn writes_closing_an_ownership_cycle_are_refused() {
    let _g = serial();
    let mut m = Mock::new();
    let base = live_handle_count();
    let (w, x) = create(&mut m);
    let (c, t) = create(&mut m);
    // x travels to t's queue: fine.
    write(&mut m, c, b"x", &[x]).unwrap();
    // t into x's queue would make x and t hold each other: refused, t consumed.
    assert_eq!(write(&mut m, w, b"t", &[t]), Err(Status::ERR_NOT_SUPPORTED));
    assert!(!m.is_valid(t));
    // A longer chain: e1 -> e2 -> e3 queued, then e3's peer writing e1's owner back.
    let (a1, e1) = create(&mut m);
    let (a2, e2) = create(&mut m);
    let (a3, e3) = create(&mut m);
    write(&mut m, a2, b"", &[e1]).unwrap(); // e1 queued at e2
    write(&mut m, a3, b"", &[e2]).unwrap(); // e2 queued at e3
                                            // e3 queued at e1 would close e1 -> e3 -> e2 -> e1.
    assert_eq!(
        write(&mut m, a1, b"", &[e3]),
        Err(Status::ERR_NOT_SUPPORTED)
    );
    // Without a cycle the same shapes are fine.
    let (a4, e4) = create(&mut m);
    let (_a5, e5) = create(&mut m);
    write(&mut m, a4, b"", &[e5]).unwrap();
    for h in [w, c, a1, a2, a3, a4, _a5] {
        let _ = m.close(h);
    }
    let _ = e4;
    m.close(e4).unwrap();
    assert_eq!(
        live_handle_count(),
        base,
        "nothing is kept alive by a cycle"
    );
}

/// An endpoint with `depth` endpoints beneath it: each queued in a message at the one before,
/// the last one's peer closed.
fn chain_of_endpoints(depth: usize) -> std::sync::Arc<syscalls::channel::ChannelEndpoint> {
    use syscalls::channel::{ChannelEndpoint, Message};
    let (head, mut tail) = ChannelEndpoint::create_pair();
    for _ in 0..depth {
        let (a, b) = ChannelEndpoint::create_pair();
        let msg = Message {
            bytes: Vec::new(),
            handles: vec![Object::Channel(a).into_default_handle()],
            charge: None,
        };
        tail.write(msg, None).expect("queued");
        tail = b;
    }
    drop(tail);
    head
}

/// Issue 10's first crash: a chain of endpoints, each queued in a message at the one before,
/// freed by closing its head. The drops run from a work list, so the depth costs no stack: with
/// a recursive drop, 200 000 levels overflow the test thread's 2 MiB stack (on the kernel's
/// 64 KiB stack, 80 were enough).
#[test]
fn freeing_a_deep_chain_of_endpoints_uses_constant_stack() {
    let _g = serial();
    let base = live_handle_count();
    let head = chain_of_endpoints(200_000);
    assert!(live_handle_count() > base + 100_000, "the chain is held");
    // A thread with a small stack, as the kernel's, frees it all: the drop itself frees one
    // step's budget, the rest goes when the syscall layer drains what is pending.
    let after_drop = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            drop(head);
            let after_drop = live_handle_count();
            let mut steps = 0usize;
            syscalls::channel::drain_pending(|| steps += 1);
            assert!(steps > 100, "the rest is freed in bounded steps ({steps})");
            after_drop
        })
        .unwrap()
        .join()
        .expect("freed without overflowing the stack");
    assert!(
        after_drop > base + 100_000,
        "one drop frees a bounded number of messages"
    );
    assert_eq!(
        live_handle_count(),
        base,
        "every endpoint of the chain is gone"
    );
}

thread_local! {
    /// The "CPU" a test thread plays (see `leftover_of_a_drop_is_drained_on_its_own_cpu`).
    static CPU: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// With several CPUs, what a close leaves past its drop's step is drained by the closing call
/// when it returns, not by whichever syscall on another CPU comes first (on the kernel, a
/// thread of another process spinning on `zx_ticks_get` took a 40 000-endpoint close's whole
/// drain, 112-155 ms of its own time). Two test threads play two CPUs through the lock-order
/// crate's CPU index hook.
#[test]
fn leftover_of_a_drop_is_drained_on_its_own_cpu() {
    let _g = serial();
    lock_order::set_cpu_hooks(|| CPU.with(|c| c.get()), |_| {}, |_| {});
    let base = live_handle_count();
    let head = chain_of_endpoints(10_000);
    let on_cpu = |cpu: usize, f: Box<dyn FnOnce() + Send>| {
        std::thread::spawn(move || {
            CPU.with(|c| c.set(cpu));
            f();
        })
        .join()
        .unwrap();
    };
    // CPU 1 closes the head: one step's budget goes at once, the rest is claimed.
    on_cpu(1, Box::new(move || drop(head)));
    let left = live_handle_count();
    assert!(
        left > base + 5_000,
        "one drop frees a bounded number of messages"
    );
    // A call on CPU 2 leaves it alone.
    on_cpu(2, Box::new(|| syscalls::channel::drain_pending(|| {})));
    assert_eq!(
        live_handle_count(),
        left,
        "another CPU's call drained the close's work"
    );
    // The closing call's return on CPU 1 frees it all.
    on_cpu(1, Box::new(|| syscalls::channel::drain_pending(|| {})));
    assert_eq!(
        live_handle_count(),
        base,
        "every endpoint of the chain is gone"
    );
}

static WAKES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Every endpoint that goes changes its peer's signals, so blocked threads must re-check; but
/// the endpoints a drain step drops are woken for once, when the step ends. With a wake per
/// endpoint, closing 40 000 queued endpoints woke every blocked thread 40 000 times and kept a
/// thread on another CPU off it for 112-155 ms (the kernel's `irqoff::channel_write_40k_endpoints`
/// on 2 CPUs).
#[test]
fn a_drain_step_wakes_waiters_once() {
    use std::sync::atomic::Ordering::SeqCst;
    use syscalls::channel::DRAIN_STEP_BUDGET;
    let _g = serial();
    syscalls::channel::set_wake_hook(|| {
        WAKES.fetch_add(1, SeqCst);
    });
    let base = live_handle_count();
    const CHAIN: usize = 10_000;
    let head = chain_of_endpoints(CHAIN);
    let before = WAKES.load(SeqCst);
    drop(head);
    syscalls::channel::drain_pending(|| {});
    assert_eq!(
        live_handle_count(),
        base,
        "every endpoint of the chain is gone"
    );
    let wakes = WAKES.load(SeqCst) - before;
    // Each endpoint costs two units of budget (its message and the handle in it).
    let steps = 2 * CHAIN / DRAIN_STEP_BUDGET + 1;
    assert!(
        wakes <= 2 * steps + 2,
        "{wakes} wakes for {CHAIN} endpoints in about {steps} steps"
    );
}
