//! Accounting through the syscall layer (`syscalls::account`): handles are charged to the table
//! that holds them and stay charged to the writer while queued in a channel, a read moves them
//! to the reader, message bytes are the writer's until read or dropped, exception messages are
//! the binding process's; limits refuse with `ZX_ERR_NO_RESOURCES` and never block closing,
//! replacing or reading; every charge comes back exactly.

mod common;

use std::sync::Arc;

use abi::wire::Wire;
use abi::Status;
use common::*;
use syscalls::account::{Account, Resource, ALL_RESOURCES, RESOURCES};
use syscalls::channel::ChannelEndpoint;
use syscalls::{Object, ProcessObject, SyscallContext};

use Resource::{ChannelBytes, Handles};

const OUT: usize = BUF + 0x100;
const DATA: usize = BUF + 0x1000;
const HANDLES: usize = BUF + 0x800;
const RBUF: usize = BUF + 0x8000;
const ACTUAL: usize = BUF + 0x200;

fn with_account(m: &Mock, account: &Arc<Account>) {
    m.process.table.lock().unwrap().set_account(account.clone());
}

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

/// Reads one message (up to 1 KiB and 8 handles): the handle values, or the status.
fn read(m: &mut Mock, ch: u32) -> Result<Vec<u32>, Status> {
    m.sys(
        ZX_SYS_CHANNEL_READ,
        &[
            ch as u64,
            0,
            RBUF as u64,
            HANDLES as u64,
            1024,
            8,
            ACTUAL as u64,
            (ACTUAL + 4) as u64,
        ],
    )?;
    let n: u32 = m.peek(ACTUAL + 4);
    Ok((0..n as usize)
        .map(|i| m.peek::<u32>(HANDLES + 4 * i))
        .collect())
}

/// Moves handle `value` of `from`'s table into `to`'s (as a read would).
fn hand_over(from: &mut Mock, to: &mut Mock, value: u32) -> u32 {
    let h = from.process.table.lock().unwrap().remove(value).unwrap();
    to.process.table.lock().unwrap().add(h).unwrap()
}

fn assert_zero(accounts: &[&Arc<Account>]) {
    for a in accounts {
        for r in ALL_RESOURCES {
            assert_eq!(a.usage(r), 0, "{r:?} left charged");
        }
    }
}

#[test]
fn handles_stay_with_the_writer_while_queued_and_move_to_the_reader() {
    let _g = serial();
    let root = Account::root([1 << 20; RESOURCES]);
    let (wa, ra) = (Account::child(&root), Account::child(&root));
    let mut w = Mock::new();
    let mut r = Mock::new();
    with_account(&w, &wa);
    with_account(&r, &ra);
    let (a, b) = create(&mut w);
    assert_eq!(wa.usage(Handles), 2);
    let b = hand_over(&mut w, &mut r, b);
    assert_eq!((wa.usage(Handles), ra.usage(Handles)), (1, 1));
    let v = w.vmo(4096, 0);
    let dups: Vec<u32> = (0..3).map(|_| w.dup(v, ZX_RIGHT_SAME_RIGHTS)).collect();
    assert_eq!(wa.usage(Handles), 5);
    write(&mut w, a, &[7; 100], &dups).unwrap();
    // Out of the writer's table, still charged to it; the bytes too.
    assert_eq!(
        w.handle_count(),
        3,
        "its root VMAR, the endpoint and the VMO"
    );
    assert_eq!(
        (
            wa.usage(Handles),
            wa.usage(ChannelBytes),
            root.usage(Handles)
        ),
        (5, 100, 6)
    );
    let got = read(&mut r, b).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(
        (wa.usage(Handles), wa.usage(ChannelBytes), ra.usage(Handles)),
        (2, 0, 4)
    );
    assert_eq!(
        root.usage(Handles),
        6,
        "a move changes nothing above the two"
    );
    // A message dropped with its channel gives everything back.
    let more: Vec<u32> = (0..2).map(|_| w.dup(v, ZX_RIGHT_SAME_RIGHTS)).collect();
    write(&mut w, a, &[1; 50], &more).unwrap();
    assert_eq!((wa.usage(Handles), wa.usage(ChannelBytes)), (4, 50));
    r.close(b).unwrap();
    assert_eq!((wa.usage(Handles), wa.usage(ChannelBytes)), (2, 0));
    for h in got {
        r.close(h).unwrap();
    }
    w.close(a).unwrap();
    w.close(v).unwrap();
    assert_zero(&[&root, &wa, &ra]);
}

#[test]
fn a_process_at_its_handle_limit_is_refused_but_can_close_replace_and_read() {
    let _g = serial();
    let mut limits = [1 << 20; RESOURCES];
    limits[Handles as usize] = 16;
    let root = Account::root(limits);
    let mut parent = Mock::new();
    let mut child = Mock::new();
    let ca = Account::child(&root); // 8 handles
    with_account(&parent, &root);
    with_account(&child, &ca);
    let (a, b) = create(&mut child);
    let b = hand_over(&mut child, &mut parent, b);
    let v = child.vmo(4096, 0);
    let mut held = Vec::new();
    let err = loop {
        let r = child.sys(
            ZX_SYS_HANDLE_DUPLICATE,
            &[v as u64, ZX_RIGHT_SAME_RIGHTS as u64, OUT as u64],
        );
        match r {
            Ok(()) => held.push(child.peek::<u32>(OUT)),
            Err(e) => break e,
        }
    };
    assert_eq!(err, Status::ERR_NO_RESOURCES);
    assert_eq!(ca.usage(Handles), ca.limit(Handles));
    // A replace at the limit works (the new handle takes the old one's charge).
    let last = held.pop().unwrap();
    child
        .sys(
            ZX_SYS_HANDLE_REPLACE,
            &[last as u64, ZX_RIGHT_READ as u64, OUT as u64],
        )
        .unwrap();
    held.push(child.peek::<u32>(OUT));
    // Parking handles in the channel keeps them charged: still refused.
    write(&mut child, a, b"", &held[..4]).unwrap();
    assert_eq!(
        child.sys(
            ZX_SYS_HANDLE_DUPLICATE,
            &[v as u64, ZX_RIGHT_SAME_RIGHTS as u64, OUT as u64]
        ),
        Err(Status::ERR_NO_RESOURCES)
    );
    // The parent still has its own share, and reading what its child wrote (a move towards an
    // ancestor) is never refused.
    let got = read(&mut parent, b).unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(ca.usage(Handles), ca.limit(Handles) - 4);
    parent.vmo(4096, 0);
    // Closing always works.
    for h in &held[4..] {
        child.close(*h).unwrap();
    }
    child.process.die(0);
    parent.process.die(0);
    assert_zero(&[&root, &ca]);
}

#[test]
fn a_reader_at_its_handle_limit_loses_the_handles_but_the_read_goes_through() {
    let _g = serial();
    let root = Account::root([1 << 20; RESOURCES]);
    let wa = Account::child(&root);
    let mut limits = [1 << 20; RESOURCES];
    limits[Handles as usize] = 2;
    let full = Account::root(limits);
    let mut w = Mock::new();
    let mut r = Mock::new();
    with_account(&w, &wa);
    with_account(&r, &full);
    let (a, b) = create(&mut w);
    let b = hand_over(&mut w, &mut r, b);
    let v = w.vmo(4096, 0);
    let d1 = w.dup(v, ZX_RIGHT_SAME_RIGHTS);
    let d2 = w.dup(v, ZX_RIGHT_SAME_RIGHTS);
    write(&mut w, a, b"xy", &[d1, d2]).unwrap();
    // One slot left in the reader's account: the read is refused, the message is consumed and
    // its handles closed (as for a full table); nothing stays charged anywhere.
    assert_eq!(read(&mut r, b), Err(Status::ERR_NO_RESOURCES));
    assert_eq!((wa.usage(Handles), wa.usage(ChannelBytes)), (2, 0));
    assert_eq!(full.usage(Handles), 1);
    assert_eq!(read(&mut r, b), Err(Status::ERR_SHOULD_WAIT));
    w.process.die(0);
    r.process.die(0);
    assert_zero(&[&root, &wa, &full]);
}

#[test]
fn channel_bytes_are_charged_to_the_writer_until_read_or_dropped() {
    let _g = serial();
    let mut limits = [1 << 20; RESOURCES];
    limits[ChannelBytes as usize] = 1000;
    let wa = Account::root(limits);
    let mut w = Mock::new();
    with_account(&w, &wa);
    let (a, b) = create(&mut w);
    write(&mut w, a, &[1; 600], &[]).unwrap();
    assert_eq!(wa.usage(ChannelBytes), 600);
    // Over the budget: refused, and the listed handles are consumed as for any failed write.
    let v = w.vmo(4096, 0);
    let d = w.dup(v, ZX_RIGHT_SAME_RIGHTS);
    assert_eq!(
        write(&mut w, a, &[2; 600], &[d]),
        Err(Status::ERR_NO_RESOURCES)
    );
    assert!(!w.is_valid(d));
    assert_eq!((wa.usage(ChannelBytes), wa.usage(Handles)), (600, 3));
    // Reading gives the bytes back.
    read(&mut w, b).unwrap();
    assert_eq!(wa.usage(ChannelBytes), 0);
    write(&mut w, a, &[2; 600], &[]).unwrap();
    write(&mut w, a, &[3; 400], &[]).unwrap();
    assert_eq!(wa.usage(ChannelBytes), 1000);
    // The reader's end goes: the queued bytes are released.
    w.close(b).unwrap();
    assert_eq!(wa.usage(ChannelBytes), 0);
    w.process.die(0);
    assert_zero(&[&wa]);
}

#[test]
fn exception_messages_are_charged_to_the_binding_process() {
    let _g = serial();
    let binder = Account::root([1 << 20; RESOURCES]);
    let mut m = Mock::new();
    let process: Arc<dyn ProcessObject> = m.process.clone();
    let thread = m.thread_create(&process, b"faulter").unwrap();
    let (kernel_end, user_end) = ChannelEndpoint::create_pair();
    m.process
        .port
        .bind(kernel_end, ZX_RIGHT_READ, 0, Some(binder.clone()))
        .unwrap();
    let shared = syscalls::exception::deliver(&m.process.port, thread.clone(), process.clone(), 0)
        .expect("delivered");
    assert_eq!(binder.usage(Handles), 1);
    assert_eq!(
        binder.usage(ChannelBytes),
        abi::exception::ExceptionInfo::SIZE
    );
    // The handler reads it into a table of its own account: the charge stays there.
    let mut handler = Mock::new();
    with_account(&handler, &binder);
    let ue = handler.add(
        Object::Channel(user_end),
        abi::default_rights::ZX_DEFAULT_CHANNEL_RIGHTS,
    );
    let got = read(&mut handler, ue).unwrap();
    assert_eq!((binder.usage(Handles), binder.usage(ChannelBytes)), (2, 0));
    handler.close(got[0]).unwrap();
    assert!(shared.is_closed());
    handler.close(ue).unwrap();
    m.process.port.shutdown();
    assert_zero(&[&binder]);
    // A binder at its handle limit: the exception is not delivered (it goes to the next port).
    let mut limits = [1 << 20; RESOURCES];
    limits[Handles as usize] = 0;
    let full = Account::root(limits);
    let port = syscalls::exception::ExceptionPort::new();
    let (kernel_end, _user_end) = ChannelEndpoint::create_pair();
    port.bind(kernel_end, ZX_RIGHT_READ, 0, Some(full.clone()))
        .unwrap();
    assert!(syscalls::exception::deliver(&port, thread, process, 0).is_none());
    assert_zero(&[&full]);
}
