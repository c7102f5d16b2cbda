//! Exceptions through dispatch: exception channels (rights, types, ALREADY_BOUND, BAD_STATE after
//! death), the message `exception::deliver` queues, the exception handle's properties and task
//! handles, `ZX_INFO_THREAD(_EXCEPTION_REPORT)` and thread state, each with exact statuses.

mod common;

use std::sync::Arc;

use abi::default_rights::{
    ZX_DEFAULT_EXCEPTION_RIGHTS, ZX_DEFAULT_PROCESS_RIGHTS, ZX_DEFAULT_THREAD_RIGHTS,
};
use abi::exception::exception_state::*;
use abi::exception::excp::ZX_EXCP_FATAL_PAGE_FAULT;
use abi::exception::thread_state::*;
use abi::exception::{ExceptionInfo, ExceptionReport, GeneralRegs, InfoThread};
use abi::info::topic::{
    ZX_INFO_THREAD, ZX_INFO_THREAD_EXCEPTION_REPORT, ZX_INFO_THREAD_EXCEPTION_REPORT_V1,
};
use abi::obj_type::ZX_OBJ_TYPE_EXCEPTION;
use abi::props::{ZX_PROP_EXCEPTION_STATE, ZX_PROP_EXCEPTION_STRATEGY, ZX_PROP_NAME};
use abi::rights::*;
use abi::wire::Wire;
use abi::Status;
use common::*;
use syscalls::exception::deliver;
use syscalls::{Object, ProcessObject, ThreadObject};

const NAME: usize = BUF + 0x800;
const OUT: usize = BUF + 0x900;
const MSG: usize = BUF + 0x1000;
const HS: usize = BUF + 0x1100;
const REGS: usize = BUF + 0x2000;

fn thread(m: &mut Mock) -> (u32, Arc<dyn ThreadObject>) {
    let p = m.add(
        Object::Process(m.process.clone()),
        ZX_DEFAULT_PROCESS_RIGHTS,
    );
    m.poke(NAME, b"t");
    m.sys(
        ZX_SYS_THREAD_CREATE,
        &[p as u64, NAME as u64, 1, 0, OUT as u64],
    )
    .expect("thread_create");
    let t: u32 = m.peek(OUT);
    let obj = m
        .process
        .table
        .lock()
        .unwrap()
        .get(t)
        .unwrap()
        .object()
        .as_thread()
        .unwrap();
    (t, obj)
}

fn create_channel(m: &mut Mock, task: u32, options: u32) -> Result<u32, Status> {
    m.sys(
        ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL,
        &[task as u64, options as u64, OUT as u64],
    )?;
    Ok(m.peek(OUT))
}

/// Puts `t` "in an exception" the way the kernel does and delivers it through `port`.
fn fault(
    m: &Mock,
    t: &Arc<dyn ThreadObject>,
    thread_port: bool,
) -> Option<Arc<syscalls::exception::ExceptionShared>> {
    let report = ExceptionReport {
        size: ExceptionReport::SIZE_V2,
        r#type: ZX_EXCP_FATAL_PAGE_FAULT,
        vector: 14,
        err_code: 6,
        cr2: 0x1234,
        synth_code: Status::ERR_NOT_FOUND.into_raw() as u32,
        synth_data: 0,
    };
    let regs = GeneralRegs {
        rip: 0x1000_2000,
        rflags: 0x202,
        ..GeneralRegs::default()
    };
    t.exception_state().begin(report, regs);
    let process: Arc<dyn ProcessObject> = m.process.clone();
    let port = if thread_port {
        t.exception_port()
    } else {
        m.process.exception_port()
    };
    deliver(port, t.clone(), process, ZX_EXCP_FATAL_PAGE_FAULT)
}

/// Reads the exception message on `ch`: the info and the exception handle.
fn read_exception(m: &mut Mock, ch: u32) -> (ExceptionInfo, u32) {
    m.sys(
        ZX_SYS_CHANNEL_READ,
        &[
            ch as u64,
            0,
            MSG as u64,
            HS as u64,
            64,
            4,
            OUT as u64,
            (OUT + 4) as u64,
        ],
    )
    .expect("read");
    assert_eq!(m.peek::<u32>(OUT), 24);
    assert_eq!(m.peek::<u32>(OUT + 4), 1);
    (m.peek(MSG), m.peek(HS))
}

fn prop(m: &mut Mock, nr: u32, h: u32, p: u32, size: u64) -> Result<(), Status> {
    m.sys(nr, &[h as u64, p as u64, OUT as u64, size])
}

#[test]
fn create_channel_checks_in_zircon_order() {
    let _g = serial();
    let mut m = Mock::new();
    let (t, _) = thread(&mut m);
    assert_eq!(create_channel(&mut m, t, 2), Err(Status::ERR_INVALID_ARGS));
    assert_eq!(
        create_channel(&mut m, BOGUS_HANDLE, 0),
        Err(Status::ERR_BAD_HANDLE)
    );
    for missing in [
        ZX_RIGHT_INSPECT,
        ZX_RIGHT_DUPLICATE,
        ZX_RIGHT_TRANSFER,
        ZX_RIGHT_MANAGE_THREAD,
    ] {
        let d = m.dup(t, ZX_DEFAULT_THREAD_RIGHTS & !missing);
        assert_eq!(create_channel(&mut m, d, 0), Err(Status::ERR_ACCESS_DENIED));
    }
    assert_eq!(
        create_channel(&mut m, t, ZX_EXCEPTION_CHANNEL_DEBUGGER),
        Err(Status::ERR_INVALID_ARGS)
    );
    // A VMO with every needed right would be WRONG_TYPE.
    let v = m.vmo(4096, 0);
    let obj = m
        .process
        .table
        .lock()
        .unwrap()
        .get(v)
        .unwrap()
        .object()
        .clone();
    let all = m.add(
        obj,
        ZX_RIGHT_INSPECT | ZX_RIGHT_DUPLICATE | ZX_RIGHT_TRANSFER | ZX_RIGHT_MANAGE_THREAD,
    );
    assert_eq!(create_channel(&mut m, all, 0), Err(Status::ERR_WRONG_TYPE));
    assert_eq!(create_channel(&mut m, v, 0), Err(Status::ERR_ACCESS_DENIED));
    // Processes need ENUMERATE; no debugger channel here.
    let p = m.add(
        Object::Process(m.process.clone()),
        ZX_DEFAULT_PROCESS_RIGHTS & !ZX_RIGHT_ENUMERATE,
    );
    assert_eq!(create_channel(&mut m, p, 0), Err(Status::ERR_ACCESS_DENIED));
    let p = m.add(
        Object::Process(m.process.clone()),
        ZX_DEFAULT_PROCESS_RIGHTS,
    );
    assert_eq!(
        create_channel(&mut m, p, ZX_EXCEPTION_CHANNEL_DEBUGGER),
        Err(Status::ERR_NOT_SUPPORTED)
    );
    let ch = create_channel(&mut m, t, 0).unwrap();
    assert_eq!(
        m.rights(ch),
        ZX_RIGHT_TRANSFER | ZX_RIGHT_WAIT | ZX_RIGHT_READ
    );
    assert_eq!(create_channel(&mut m, t, 0), Err(Status::ERR_ALREADY_BOUND));
    m.close(ch).unwrap();
    let ch = create_channel(&mut m, t, 0).unwrap();
    // A bad out-pointer: INVALID_ARGS, and the port is free again (its user end is gone).
    m.close(ch).unwrap();
    assert_eq!(
        m.sys(
            ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL,
            &[t as u64, 0, KERNEL as u64]
        ),
        Err(Status::ERR_INVALID_ARGS)
    );
    create_channel(&mut m, t, 0).unwrap();
    // A dead task: BAD_STATE.
    let pc = create_channel(&mut m, p, 0).unwrap();
    m.close(pc).unwrap();
    m.process.exception_port().shutdown();
    assert_eq!(create_channel(&mut m, p, 0), Err(Status::ERR_BAD_STATE));
}

#[test]
fn exception_message_handle_and_tasks() {
    let _g = serial();
    let mut m = Mock::new();
    let (t, tobj) = thread(&mut m);
    // No channel: nothing delivered.
    assert!(fault(&m, &tobj, true).is_none());
    let ch = create_channel(&mut m, t, 0).unwrap();
    let shared = fault(&m, &tobj, true).expect("delivered");
    let (info, exc) = read_exception(&mut m, ch);
    assert_eq!(info.pid, m.process.koid());
    assert_eq!(info.tid, tobj.koid());
    assert_eq!(info.r#type, ZX_EXCP_FATAL_PAGE_FAULT);
    assert_eq!(m.rights(exc), ZX_DEFAULT_EXCEPTION_RIGHTS);
    let basic = m.process.table.lock().unwrap().basic_info(exc).unwrap();
    assert_eq!(basic.r#type, ZX_OBJ_TYPE_EXCEPTION);
    // Thread handle with the channel's task rights; no process from a thread channel.
    m.sys(ZX_SYS_EXCEPTION_GET_THREAD, &[exc as u64, OUT as u64])
        .unwrap();
    let th: u32 = m.peek(OUT);
    assert_eq!(m.rights(th), ZX_DEFAULT_THREAD_RIGHTS);
    assert_eq!(
        m.sys(ZX_SYS_EXCEPTION_GET_PROCESS, &[exc as u64, OUT as u64]),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert_eq!(
        m.sys(ZX_SYS_EXCEPTION_GET_THREAD, &[t as u64, OUT as u64]),
        Err(Status::ERR_WRONG_TYPE)
    );
    assert_eq!(
        m.sys(ZX_SYS_EXCEPTION_GET_THREAD, &[exc as u64, KERNEL as u64]),
        Err(Status::ERR_INVALID_ARGS)
    );
    assert!(!shared.is_closed());
    // Closing the handle ends the exception with its state.
    m.poke(NAME, &ZX_EXCEPTION_STATE_HANDLED.to_le_bytes());
    m.sys(
        ZX_SYS_OBJECT_SET_PROPERTY,
        &[exc as u64, ZX_PROP_EXCEPTION_STATE as u64, NAME as u64, 4],
    )
    .unwrap();
    m.close(exc).unwrap();
    assert!(shared.is_closed());
    assert_eq!(shared.disposition(), ZX_EXCEPTION_STATE_HANDLED);
    tobj.exception_state().end();
    // A process channel hands out the process too.
    let p = m.add(
        Object::Process(m.process.clone()),
        ZX_DEFAULT_PROCESS_RIGHTS,
    );
    let pch = create_channel(&mut m, p, 0).unwrap();
    let shared = fault(&m, &tobj, false).expect("delivered");
    let (_, exc) = read_exception(&mut m, pch);
    m.sys(ZX_SYS_EXCEPTION_GET_PROCESS, &[exc as u64, OUT as u64])
        .unwrap();
    let ph: u32 = m.peek(OUT);
    assert_eq!(m.rights(ph), ZX_DEFAULT_PROCESS_RIGHTS);
    // Dropping the user end with the exception unread closes it (TRY_NEXT).
    m.close(exc).unwrap();
    assert_eq!(shared.disposition(), ZX_EXCEPTION_STATE_TRY_NEXT);
    tobj.exception_state().end();
    let shared = fault(&m, &tobj, false).expect("delivered");
    m.close(pch).unwrap();
    assert!(shared.is_closed());
    assert_eq!(shared.disposition(), ZX_EXCEPTION_STATE_TRY_NEXT);
    assert!(fault(&m, &tobj, false).is_none(), "no live user end");
}

#[test]
fn exception_properties() {
    let _g = serial();
    let mut m = Mock::new();
    let (t, tobj) = thread(&mut m);
    let ch = create_channel(&mut m, t, 0).unwrap();
    let _shared = fault(&m, &tobj, true).unwrap();
    let (_, exc) = read_exception(&mut m, ch);
    let get = ZX_SYS_OBJECT_GET_PROPERTY;
    let set = ZX_SYS_OBJECT_SET_PROPERTY;
    prop(&mut m, get, exc, ZX_PROP_EXCEPTION_STATE, 4).unwrap();
    assert_eq!(m.peek::<u32>(OUT), ZX_EXCEPTION_STATE_TRY_NEXT);
    prop(&mut m, get, exc, ZX_PROP_EXCEPTION_STRATEGY, 4).unwrap();
    assert_eq!(m.peek::<u32>(OUT), ZX_EXCEPTION_STRATEGY_FIRST_CHANCE);
    assert_eq!(
        prop(&mut m, get, exc, ZX_PROP_EXCEPTION_STATE, 3),
        Err(Status::ERR_BUFFER_TOO_SMALL)
    );
    assert_eq!(
        m.sys(get, &[exc as u64, 16, 0, 4]),
        Err(Status::ERR_INVALID_ARGS)
    );
    assert_eq!(
        prop(&mut m, get, exc, 12345, 4),
        Err(Status::ERR_NOT_SUPPORTED)
    );
    assert_eq!(
        prop(&mut m, get, t, ZX_PROP_EXCEPTION_STATE, 4),
        Err(Status::ERR_WRONG_TYPE)
    );
    assert_eq!(
        prop(&mut m, get, BOGUS_HANDLE, ZX_PROP_EXCEPTION_STATE, 4),
        Err(Status::ERR_BAD_HANDLE)
    );
    m.poke(OUT, &7u32.to_le_bytes());
    assert_eq!(
        prop(&mut m, set, exc, ZX_PROP_EXCEPTION_STATE, 4),
        Err(Status::ERR_INVALID_ARGS)
    );
    m.poke(OUT, &ZX_EXCEPTION_STATE_THREAD_EXIT.to_le_bytes());
    prop(&mut m, set, exc, ZX_PROP_EXCEPTION_STATE, 4).unwrap();
    prop(&mut m, get, exc, ZX_PROP_EXCEPTION_STATE, 4).unwrap();
    assert_eq!(m.peek::<u32>(OUT), ZX_EXCEPTION_STATE_THREAD_EXIT);
    assert_eq!(
        prop(&mut m, set, exc, ZX_PROP_EXCEPTION_STRATEGY, 4),
        Err(Status::ERR_BAD_STATE)
    );
    // Rights: GET_PROPERTY / SET_PROPERTY.
    let obj = m
        .process
        .table
        .lock()
        .unwrap()
        .get(exc)
        .unwrap()
        .object()
        .clone();
    let bare = m.add(obj, ZX_RIGHT_TRANSFER);
    assert_eq!(
        prop(&mut m, get, bare, ZX_PROP_EXCEPTION_STATE, 4),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert_eq!(
        prop(&mut m, set, bare, ZX_PROP_EXCEPTION_STATE, 4),
        Err(Status::ERR_ACCESS_DENIED)
    );
    // Names: thread name; too small; the mock's threads have fixed names (NOT_SUPPORTED, the
    // trait's default; the kernel's threads and processes take new names, see utest).
    prop(&mut m, get, t, ZX_PROP_NAME, 32).unwrap();
    assert_eq!(
        m.mem.peek(OUT, 7),
        b"thread\0",
        "the mock names every thread so"
    );
    assert_eq!(
        prop(&mut m, get, t, ZX_PROP_NAME, 31),
        Err(Status::ERR_BUFFER_TOO_SMALL)
    );
    assert_eq!(
        prop(&mut m, set, t, ZX_PROP_NAME, 4),
        Err(Status::ERR_NOT_SUPPORTED)
    );
}

#[test]
fn thread_info_report_and_state() {
    let _g = serial();
    let mut m = Mock::new();
    let (t, tobj) = thread(&mut m);
    let info = |m: &mut Mock, topic: u32, size: u64| {
        m.sys(
            ZX_SYS_OBJECT_GET_INFO,
            &[t as u64, topic as u64, REGS as u64, size, 0, 0],
        )
    };
    info(&mut m, ZX_INFO_THREAD, 72).unwrap();
    assert_eq!(m.peek::<InfoThread>(REGS).state, ZX_THREAD_STATE_NEW);
    assert_eq!(
        info(&mut m, ZX_INFO_THREAD_EXCEPTION_REPORT, 40),
        Err(Status::ERR_BAD_STATE)
    );
    let rs = |m: &mut Mock, nr: u32, h: u32, kind: u32, size: u64| {
        m.sys(nr, &[h as u64, kind as u64, REGS as u64, size])
    };
    assert_eq!(
        rs(&mut m, ZX_SYS_THREAD_READ_STATE, t, 0, 160),
        Err(Status::ERR_BAD_STATE)
    );
    assert_eq!(
        rs(&mut m, ZX_SYS_THREAD_WRITE_STATE, t, 0, 160),
        Err(Status::ERR_BAD_STATE)
    );
    let ch = create_channel(&mut m, t, 0).unwrap();
    let _shared = fault(&m, &tobj, true).unwrap();
    let _ = ch;
    info(&mut m, ZX_INFO_THREAD, 72).unwrap();
    assert_eq!(
        m.peek::<InfoThread>(REGS).state,
        ZX_THREAD_STATE_BLOCKED_EXCEPTION
    );
    info(&mut m, ZX_INFO_THREAD_EXCEPTION_REPORT, 40).unwrap();
    let r: ExceptionReport = m.peek(REGS);
    assert_eq!((r.size, r.vector, r.cr2), (40, 14, 0x1234));
    assert_eq!(Status::from_raw(r.synth_code as i32), Status::ERR_NOT_FOUND);
    assert_eq!(
        info(&mut m, ZX_INFO_THREAD_EXCEPTION_REPORT, 39),
        Err(Status::ERR_BUFFER_TOO_SMALL)
    );
    info(&mut m, ZX_INFO_THREAD_EXCEPTION_REPORT_V1, 32).unwrap();
    assert_eq!(m.peek::<u32>(REGS), 32);
    // Read state: kinds, sizes, rights.
    assert_eq!(
        rs(&mut m, ZX_SYS_THREAD_READ_STATE, t, 99, 160),
        Err(Status::ERR_INVALID_ARGS)
    );
    assert_eq!(
        rs(
            &mut m,
            ZX_SYS_THREAD_READ_STATE,
            t,
            ZX_THREAD_STATE_FP_REGS,
            512
        ),
        Err(Status::ERR_NOT_SUPPORTED)
    );
    assert_eq!(
        rs(&mut m, ZX_SYS_THREAD_READ_STATE, t, 0, 159),
        Err(Status::ERR_BUFFER_TOO_SMALL)
    );
    let no_read = m.dup(t, ZX_DEFAULT_THREAD_RIGHTS & !ZX_RIGHT_READ);
    assert_eq!(
        rs(&mut m, ZX_SYS_THREAD_READ_STATE, no_read, 0, 160),
        Err(Status::ERR_ACCESS_DENIED)
    );
    rs(&mut m, ZX_SYS_THREAD_READ_STATE, t, 0, 160).unwrap();
    let regs: GeneralRegs = m.peek(REGS);
    assert_eq!(regs.rip, 0x1000_2000);
    // Write state: validation.
    let no_write = m.dup(t, ZX_DEFAULT_THREAD_RIGHTS & !ZX_RIGHT_WRITE);
    assert_eq!(
        rs(&mut m, ZX_SYS_THREAD_WRITE_STATE, no_write, 0, 160),
        Err(Status::ERR_ACCESS_DENIED)
    );
    let put = |m: &mut Mock, r: GeneralRegs| {
        let mut b = [0u8; 160];
        r.encode(&mut b);
        m.poke(REGS, &b);
        m.sys(ZX_SYS_THREAD_WRITE_STATE, &[t as u64, 0, REGS as u64, 160])
    };
    for rip in [0x0000_8000_0000_0000u64, 0xffff_8000_0000_0000, u64::MAX] {
        assert_eq!(
            put(&mut m, GeneralRegs { rip, ..regs }),
            Err(Status::ERR_INVALID_ARGS)
        );
    }
    assert_eq!(
        put(
            &mut m,
            GeneralRegs {
                rsp: 0x0000_8000_0000_0008,
                ..regs
            }
        ),
        Err(Status::ERR_INVALID_ARGS)
    );
    assert_eq!(
        put(
            &mut m,
            GeneralRegs {
                gs_base: 1 << 60,
                ..regs
            }
        ),
        Err(Status::ERR_INVALID_ARGS)
    );
    assert_eq!(
        put(
            &mut m,
            GeneralRegs {
                fs_base: 0x1000,
                ..regs
            }
        ),
        Err(Status::ERR_NOT_SUPPORTED)
    );
    assert_eq!(
        m.sys(
            ZX_SYS_THREAD_WRITE_STATE,
            &[t as u64, 0, UNMAPPED as u64, 160]
        ),
        Err(Status::ERR_INVALID_ARGS)
    );
    put(
        &mut m,
        GeneralRegs {
            rip: 0x1000_2003,
            rax: 7,
            rflags: 0x3001 | 0x100,
            ..regs
        },
    )
    .unwrap();
    let after = tobj.exception_state().end().unwrap();
    assert_eq!((after.rip, after.rax), (0x1000_2003, 7));
    assert_eq!(after.rflags, 0x203, "CF taken; IOPL and TF not; IF kept");
}
