//! Processes, threads, kill, wait, cross-process memory through dispatch.

mod common;

use abi::default_rights::{
    ZX_DEFAULT_PROCESS_RIGHTS, ZX_DEFAULT_THREAD_RIGHTS, ZX_DEFAULT_VMAR_RIGHTS,
};
use abi::obj_type::{ZX_OBJ_TYPE_PROCESS, ZX_OBJ_TYPE_THREAD, ZX_OBJ_TYPE_VMAR, ZX_OBJ_TYPE_VMO};
use abi::signals::{ZX_PROCESS_TERMINATED, ZX_VMO_ZERO_CHILDREN};
use abi::task::ZX_TASK_RETCODE_SYSCALL_KILL;
use abi::Status;
use common::*;
use syscalls::ProcessObject;

const PAGE: usize = 4096;
const NAME: usize = BUF + 0x800;
const OUT: usize = BUF + 0x900;
const E_ARGS: Result<(), Status> = Err(Status::ERR_INVALID_ARGS);

fn create_process(m: &mut Mock, name: &[u8]) -> (u32, u32) {
    m.poke(NAME, name);
    m.sys(
        ZX_SYS_PROCESS_CREATE,
        &[
            0,
            NAME as u64,
            name.len() as u64,
            0,
            OUT as u64,
            (OUT + 4) as u64,
        ],
    )
    .expect("process_create");
    (m.peek(OUT), m.peek(OUT + 4))
}

fn create_thread(m: &mut Mock, process: u32) -> Result<u32, Status> {
    m.poke(NAME, b"t");
    m.sys(
        ZX_SYS_THREAD_CREATE,
        &[process as u64, NAME as u64, 1, 0, (OUT + 8) as u64],
    )?;
    Ok(m.peek(OUT + 8))
}

fn start(m: &mut Mock, p: u32, t: u32, arg1: u32) -> Result<(), Status> {
    m.sys(
        ZX_SYS_PROCESS_START,
        &[
            p as u64,
            t as u64,
            0x1000_1000,
            0x2000_0ff8,
            arg1 as u64,
            42,
        ],
    )
}

#[test]
fn process_create_handles_names_and_errors() {
    let mut m = Mock::new();
    let (p, v) = create_process(&mut m, b"a-very-long-process-name-that-goes-past-32");
    assert_eq!(m.rights(p), ZX_DEFAULT_PROCESS_RIGHTS);
    assert_eq!(
        m.rights(v),
        ZX_DEFAULT_VMAR_RIGHTS | ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE
    );
    let child = m.children[0].clone();
    assert_eq!(
        &child.name()[..],
        b"a-very-long-process-name-that-g\0",
        "31 bytes + NUL"
    );
    let create =
        |m: &mut Mock, job: u32, name: usize, len: usize, opts: u32, o1: usize, o2: usize| {
            m.sys(
                ZX_SYS_PROCESS_CREATE,
                &[
                    job as u64,
                    name as u64,
                    len as u64,
                    opts as u64,
                    o1 as u64,
                    o2 as u64,
                ],
            )
        };
    assert_eq!(
        create(&mut m, 0, NAME, 3, 2, OUT, OUT + 4),
        E_ARGS,
        "options"
    );
    assert_eq!(
        create(&mut m, 0, NAME, 3, 1, OUT, OUT + 4),
        Err(Status::ERR_NOT_SUPPORTED),
        "ZX_PROCESS_SHARED"
    );
    assert_eq!(
        create(&mut m, 0, 0, 0, 0, OUT, OUT + 4),
        E_ARGS,
        "null name"
    );
    assert_eq!(
        create(&mut m, 0, UNMAPPED, 3, 0, OUT, OUT + 4),
        E_ARGS,
        "unmapped name"
    );
    assert_eq!(
        create(&mut m, 0, KERNEL, 3, 0, OUT, OUT + 4),
        E_ARGS,
        "kernel name"
    );
    let stale = m.closed_handle();
    assert_eq!(
        create(&mut m, stale, NAME, 3, 0, OUT, OUT + 4),
        Err(Status::ERR_BAD_HANDLE),
        "job not a handle"
    );
    let root = m.root;
    assert_eq!(
        create(&mut m, root, NAME, 3, 0, OUT, OUT + 4),
        Err(Status::ERR_WRONG_TYPE),
        "no handle names a job"
    );
    let n = m.handle_count();
    for (addr, what) in BAD_OUT {
        assert_eq!(
            create(&mut m, 0, NAME, 3, 0, addr, OUT + 4),
            E_ARGS,
            "proc {what}"
        );
        assert_eq!(
            create(&mut m, 0, NAME, 3, 0, OUT, addr),
            E_ARGS,
            "vmar {what}"
        );
        assert_eq!(m.handle_count(), n, "{what}: both handles removed");
    }
}

#[test]
fn thread_create_rules() {
    let mut m = Mock::new();
    let (p, _) = create_process(&mut m, b"p");
    let t = create_thread(&mut m, p).unwrap();
    assert_eq!(m.rights(t), ZX_DEFAULT_THREAD_RIGHTS);
    m.poke(NAME, b"t");
    assert_eq!(
        m.sys(
            ZX_SYS_THREAD_CREATE,
            &[p as u64, NAME as u64, 1, 1, OUT as u64]
        ),
        E_ARGS,
        "options"
    );
    assert_eq!(
        m.sys(ZX_SYS_THREAD_CREATE, &[p as u64, 0, 1, 0, OUT as u64]),
        E_ARGS,
        "null name"
    );
    let weak = m.dup(p, ZX_RIGHT_READ | ZX_RIGHT_WRITE);
    assert_eq!(
        create_thread(&mut m, weak),
        Err(Status::ERR_ACCESS_DENIED),
        "no MANAGE_THREAD"
    );
    let root = m.root;
    assert_eq!(create_thread(&mut m, root), Err(Status::ERR_WRONG_TYPE));
    let n = m.handle_count();
    for (addr, what) in BAD_OUT {
        assert_eq!(
            m.sys(
                ZX_SYS_THREAD_CREATE,
                &[p as u64, NAME as u64, 1, 0, addr as u64]
            ),
            E_ARGS,
            "{what}"
        );
        assert_eq!(m.handle_count(), n);
    }
    // A dead process makes no threads.
    m.sys(ZX_SYS_TASK_KILL, &[p as u64]).unwrap();
    assert_eq!(create_thread(&mut m, p), Err(Status::ERR_BAD_STATE));
}

#[test]
fn process_start_installs_the_startup_handles() {
    let mut m = Mock::new();
    let (p, _) = create_process(&mut m, b"kid");
    let t = create_thread(&mut m, p).unwrap();
    let arg = m.vmo(PAGE as u64, 0);
    let n = m.handle_count();
    assert_eq!(start(&mut m, p, t, arg), Ok(()));
    assert!(!m.is_valid(arg), "arg1 moved out of the caller");
    assert_eq!(m.handle_count(), n - 1);
    let child = m.children[0].clone();
    let s = child.state.lock().unwrap().started.unwrap();
    assert_eq!((s.entry, s.stack, s.arg2), (0x1000_1000, 0x2000_0ff8, 42));
    let table = child.table.lock().unwrap();
    assert_eq!(table.len(), 4);
    let check = |v: u32, ty: u32, rights: u32| {
        let h = table.get(v).expect("a handle of the child");
        assert_eq!((h.obj_type(), h.rights()), (ty, rights));
    };
    check(
        s.arg1,
        ZX_OBJ_TYPE_VMO,
        abi::default_rights::ZX_DEFAULT_VMO_RIGHTS,
    );
    check(s.process, ZX_OBJ_TYPE_PROCESS, ZX_DEFAULT_PROCESS_RIGHTS);
    check(
        s.root_vmar,
        ZX_OBJ_TYPE_VMAR,
        ZX_DEFAULT_VMAR_RIGHTS | ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE,
    );
    check(s.thread, ZX_OBJ_TYPE_THREAD, ZX_DEFAULT_THREAD_RIGHTS);
    assert_eq!(table.get(s.process).unwrap().koid(), child.koid());
    drop(table);
    // Second start: BAD_STATE, the handles put in for it are taken out again, arg1 consumed.
    let t2 = create_thread(&mut m, p).unwrap();
    let arg = m.vmo(PAGE as u64, 0);
    assert_eq!(start(&mut m, p, t2, arg), Err(Status::ERR_BAD_STATE));
    assert!(!m.is_valid(arg));
    assert_eq!(child.table.lock().unwrap().len(), 4);
}

#[test]
fn process_start_errors_consume_arg1() {
    let mut m = Mock::new();
    let (p, _) = create_process(&mut m, b"a");
    let t = create_thread(&mut m, p).unwrap();
    let (q, _) = create_process(&mut m, b"b");
    let tq = create_thread(&mut m, q).unwrap();
    let stale = m.closed_handle();
    let root = m.root;
    let weak_p = m.dup(p, ZX_RIGHT_READ);
    let weak_t = m.dup(t, ZX_RIGHT_READ);
    let cases: Vec<(u32, u32, Status, &str)> = vec![
        (stale, t, Status::ERR_BAD_HANDLE, "process not a handle"),
        (root, t, Status::ERR_WRONG_TYPE, "process not a process"),
        (
            weak_p,
            t,
            Status::ERR_ACCESS_DENIED,
            "process without WRITE",
        ),
        (p, stale, Status::ERR_BAD_HANDLE, "thread not a handle"),
        (p, p, Status::ERR_WRONG_TYPE, "thread not a thread"),
        (p, weak_t, Status::ERR_ACCESS_DENIED, "thread without WRITE"),
        (
            p,
            tq,
            Status::ERR_ACCESS_DENIED,
            "thread of another process",
        ),
    ];
    for (proc_h, thread_h, status, what) in cases {
        let arg = m.vmo(PAGE as u64, 0);
        assert_eq!(start(&mut m, proc_h, thread_h, arg), Err(status), "{what}");
        assert!(!m.is_valid(arg), "{what}: arg1 closed");
    }
    // arg1 without TRANSFER.
    let arg = m.vmo(PAGE as u64, 0);
    let no_transfer = m.dup(arg, ZX_RIGHT_READ);
    assert_eq!(
        start(&mut m, p, t, no_transfer),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert!(!m.is_valid(no_transfer));
    assert!(
        m.children[0].table.lock().unwrap().is_empty(),
        "nothing installed"
    );
    // A value that names no handle starts the process with ZX_HANDLE_INVALID (Zircon).
    assert_eq!(start(&mut m, p, t, stale), Ok(()));
    let s = m.children[0].state.lock().unwrap().started.unwrap();
    assert_eq!(s.arg1, 0);
    assert_eq!(m.children[0].table.lock().unwrap().len(), 3);
}

#[test]
fn thread_start_kill_and_wait() {
    let mut m = Mock::new();
    let (p, _) = create_process(&mut m, b"p");
    let t = create_thread(&mut m, p).unwrap();
    start(&mut m, p, t, 0).unwrap();
    let t2 = create_thread(&mut m, p).unwrap();
    let ts = |m: &mut Mock, t: u32| m.sys(ZX_SYS_THREAD_START, &[t as u64, 1, 2, 3, 4]);
    let weak = m.dup(t2, ZX_RIGHT_WRITE);
    assert_eq!(
        ts(&mut m, weak),
        Err(Status::ERR_ACCESS_DENIED),
        "no MANAGE_THREAD"
    );
    assert_eq!(ts(&mut m, p), Err(Status::ERR_WRONG_TYPE));
    assert_eq!(ts(&mut m, t2), Ok(()));
    assert_eq!(ts(&mut m, t2), Err(Status::ERR_BAD_STATE));

    // wait_one: not yet terminated -> TIMED_OUT with observed; WAIT right needed.
    let wait = |m: &mut Mock, h: u32, signals: u32, observed: usize| {
        m.sys(
            ZX_SYS_OBJECT_WAIT_ONE,
            &[h as u64, signals as u64, 0, observed as u64],
        )
    };
    assert_eq!(
        wait(&mut m, p, ZX_PROCESS_TERMINATED, OUT),
        Err(Status::ERR_TIMED_OUT)
    );
    assert_eq!(m.peek::<u32>(OUT), 0);
    let root = m.root;
    assert_eq!(
        wait(&mut m, root, 1, OUT),
        Err(Status::ERR_ACCESS_DENIED),
        "VMARs lack WAIT"
    );
    let vmo = m.vmo(PAGE as u64, 0);
    assert_eq!(
        wait(&mut m, vmo, ZX_VMO_ZERO_CHILDREN, 0),
        Ok(()),
        "null observed is fine"
    );
    assert_eq!(
        wait(&mut m, vmo, ZX_VMO_ZERO_CHILDREN, RO),
        E_ARGS,
        "bad observed"
    );
    let stale = m.closed_handle();
    assert_eq!(wait(&mut m, stale, 1, OUT), Err(Status::ERR_BAD_HANDLE));

    // task_kill: DESTROY before the type; processes only.
    let kill = |m: &mut Mock, h: u32| m.sys(ZX_SYS_TASK_KILL, &[h as u64]);
    assert_eq!(
        kill(&mut m, vmo),
        Err(Status::ERR_ACCESS_DENIED),
        "VMOs lack DESTROY"
    );
    assert_eq!(
        kill(&mut m, t),
        Err(Status::ERR_WRONG_TYPE),
        "threads cannot be killed"
    );
    let no_destroy = m.dup(p, ZX_RIGHT_WAIT | ZX_RIGHT_INSPECT);
    assert_eq!(kill(&mut m, no_destroy), Err(Status::ERR_ACCESS_DENIED));
    assert_eq!(kill(&mut m, stale), Err(Status::ERR_BAD_HANDLE));
    assert_eq!(kill(&mut m, p), Ok(()));
    assert_eq!(kill(&mut m, p), Ok(()), "killing the dead is fine");
    assert_eq!(wait(&mut m, no_destroy, ZX_PROCESS_TERMINATED, OUT), Ok(()));
    assert_eq!(m.peek::<u32>(OUT), ZX_PROCESS_TERMINATED);
    // The parent reads why.
    m.sys(
        ZX_SYS_OBJECT_GET_INFO,
        &[
            p as u64,
            abi::info::topic::ZX_INFO_PROCESS as u64,
            OUT as u64,
            24,
            0,
            0,
        ],
    )
    .unwrap();
    let info: abi::info::InfoProcess = m.peek(OUT);
    assert_eq!(info.return_code, ZX_TASK_RETCODE_SYSCALL_KILL);
    assert_ne!(
        info.flags & abi::info::process_flags::ZX_INFO_PROCESS_FLAG_EXITED,
        0
    );
}

#[test]
fn process_memory_access() {
    let mut m = Mock::new();
    let (p, child_root) = create_process(&mut m, b"p");
    let vmo = m.vmo(2 * PAGE as u64, 0);
    let a = m
        .map(
            child_root,
            ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
            0,
            vmo,
            0,
            2 * PAGE,
        )
        .unwrap();
    let rd = |m: &mut Mock, h: u32, vaddr: usize, buf: usize, len: usize, actual: usize| {
        m.sys(
            ZX_SYS_PROCESS_READ_MEMORY,
            &[
                h as u64,
                vaddr as u64,
                buf as u64,
                len as u64,
                actual as u64,
            ],
        )
    };
    let wr = |m: &mut Mock, h: u32, vaddr: usize, buf: usize, len: usize, actual: usize| {
        m.sys(
            ZX_SYS_PROCESS_WRITE_MEMORY,
            &[
                h as u64,
                vaddr as u64,
                buf as u64,
                len as u64,
                actual as u64,
            ],
        )
    };
    assert_eq!(rd(&mut m, p, a + PAGE, BUF, 3 * PAGE, OUT), Ok(()));
    assert_eq!(m.peek::<usize>(OUT), PAGE, "truncated at the mapping's end");
    assert!(m.mem.peek(BUF, 0x800).iter().all(|&b| b == 0xab));
    assert_eq!(wr(&mut m, p, a, BUF, 8, OUT), Ok(()));
    assert_eq!(m.peek::<usize>(OUT), 8);
    for f in [rd, wr] {
        assert_eq!(f(&mut m, p, a, 0, 8, OUT), E_ARGS, "null buffer");
        assert_eq!(f(&mut m, p, a, BUF, 0, OUT), E_ARGS, "len 0");
        assert_eq!(
            f(&mut m, p, a, BUF, 65 << 20, OUT),
            E_ARGS,
            "len above 64 MiB"
        );
        assert_eq!(f(&mut m, p, a, BUF, 8, 0), E_ARGS, "actual is required");
        assert_eq!(
            f(&mut m, p, ASPACE_BASE, BUF, 8, OUT),
            Err(Status::ERR_NOT_FOUND)
        );
        let root = m.root;
        assert_eq!(f(&mut m, root, a, BUF, 8, OUT), Err(Status::ERR_WRONG_TYPE));
    }
    assert_eq!(
        rd(&mut m, p, a, RO, 8, OUT),
        E_ARGS,
        "read into read-only memory"
    );
    let write_only = m.dup(p, ZX_RIGHT_WRITE);
    assert_eq!(
        rd(&mut m, write_only, a, BUF, 8, OUT),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert_eq!(wr(&mut m, write_only, a, BUF, 8, OUT), Ok(()));
    let read_only = m.dup(p, ZX_RIGHT_READ);
    assert_eq!(
        wr(&mut m, read_only, a, BUF, 8, OUT),
        Err(Status::ERR_ACCESS_DENIED)
    );
    // With the kernel's debugging switch off, both calls are ACCESS_DENIED before anything is
    // looked at (even a null buffer or a wrong handle), and the context is never asked.
    m.debug_syscalls = false;
    let calls = m.memory_calls.len();
    let root = m.root;
    for f in [rd, wr] {
        assert_eq!(f(&mut m, p, a, BUF, 8, OUT), Err(Status::ERR_ACCESS_DENIED));
        assert_eq!(f(&mut m, p, a, 0, 0, OUT), Err(Status::ERR_ACCESS_DENIED));
        assert_eq!(
            f(&mut m, root, a, BUF, 8, OUT),
            Err(Status::ERR_ACCESS_DENIED)
        );
    }
    assert_eq!(m.memory_calls.len(), calls);
    m.debug_syscalls = true;
    // Dead process: no address space.
    m.sys(ZX_SYS_TASK_KILL, &[p as u64]).unwrap();
    assert_eq!(rd(&mut m, p, a, BUF, 8, OUT), Err(Status::ERR_BAD_STATE));
}
