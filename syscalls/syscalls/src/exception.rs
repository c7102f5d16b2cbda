//! Zircon-style exceptions, the portable part: a task's exception port (the kernel end of the
//! channel `zx_task_create_exception_channel` made), the exception object whose handle travels
//! in the exception message, and a thread's in-flight exception (report + registers).
//!
//! The kernel's user-fault path ([`deliver`] is its building block) tries the faulting thread's
//! port, then its process's. For a port with a live user endpoint it queues a
//! `zx_exception_info_t` message carrying one `ZX_OBJ_TYPE_EXCEPTION` handle and blocks the
//! thread until that exception object is gone (its last handle closed, or the message dropped
//! with the user endpoint), or the thread is killed. `ZX_PROP_EXCEPTION_STATE` on the handle
//! decides what happens then: `HANDLED` resumes the thread (with the registers as
//! `zx_thread_write_state` left them), `TRY_NEXT` (the default) goes to the next port,
//! `THREAD_EXIT` ends the thread. With no port left the process is killed, as before.
//!
//! Zircon's `Exceptionate::SetChannel` refuses a second channel while the first's user endpoint
//! lives (`ZX_ERR_ALREADY_BOUND`) and any channel once the task is dead (`ZX_ERR_BAD_STATE`); a
//! port whose user endpoint closed may be bound again.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use abi::exception::exception_state::{
    ZX_EXCEPTION_CHANNEL_TYPE_NONE, ZX_EXCEPTION_STATE_HANDLED, ZX_EXCEPTION_STATE_THREAD_EXIT,
    ZX_EXCEPTION_STATE_TRY_NEXT,
};
use abi::exception::{ExceptionInfo, ExceptionReport, GeneralRegs, X86_FLAGS_USER};
use abi::wire::Wire;
use abi::{Status, ZxResult};
use lock_order::SpinMutex as Mutex;

use crate::account::Account;
use crate::channel::{wake_waiters, ChannelEndpoint, Message};
use crate::object::{new_koid, Object, ProcessObject, ThreadObject};

struct PortState {
    channel: Option<Arc<ChannelEndpoint>>,
    /// The account of the process that bound the channel: exception messages are charged to it.
    account: Option<Arc<Account>>,
    thread_rights: u32,
    process_rights: u32,
    shut_down: bool,
}

/// A task's exception port: the kernel's endpoint of its exception channel, if bound.
pub struct ExceptionPort {
    state: Mutex<PortState>,
}

impl Default for ExceptionPort {
    fn default() -> Self {
        Self::new()
    }
}

impl ExceptionPort {
    /// An unbound port.
    pub const fn new() -> Self {
        ExceptionPort {
            state: Mutex::new(PortState {
                channel: None,
                account: None,
                thread_rights: 0,
                process_rights: 0,
                shut_down: false,
            }),
        }
    }

    /// Binds `kernel_end`; the handles an exception hands out get `thread_rights` /
    /// `process_rights` (0: `zx_exception_get_process` is `ZX_ERR_ACCESS_DENIED`); exception
    /// messages (their bytes and exception handle) are charged to `account`, the binding
    /// process's. `ZX_ERR_BAD_STATE` once the task is dead, `ZX_ERR_ALREADY_BOUND` while a
    /// previous channel's user endpoint lives.
    pub fn bind(
        &self,
        kernel_end: Arc<ChannelEndpoint>,
        thread_rights: u32,
        process_rights: u32,
        account: Option<Arc<Account>>,
    ) -> ZxResult {
        let old = {
            let mut s = self.state.lock();
            if s.shut_down {
                return Err(Status::ERR_BAD_STATE);
            }
            if let Some(ch) = &s.channel {
                if !ch.peer_closed() {
                    return Err(Status::ERR_ALREADY_BOUND);
                }
            }
            s.thread_rights = thread_rights;
            s.process_rights = process_rights;
            s.account = account;
            s.channel.replace(kernel_end)
        };
        drop(old);
        Ok(())
    }

    /// Whether a channel with a live user endpoint is bound.
    pub fn is_bound(&self) -> bool {
        let s = self.state.lock();
        s.channel.as_ref().is_some_and(|c| !c.peer_closed())
    }

    /// The task died: drops the kernel endpoint (the user end sees `ZX_CHANNEL_PEER_CLOSED`) and
    /// refuses later binds.
    pub fn shutdown(&self) {
        let old = {
            let mut s = self.state.lock();
            s.shut_down = true;
            s.channel.take()
        };
        drop(old);
    }
}

/// What closing an exception handle left behind.
pub struct ExceptionShared {
    disposition: AtomicU32,
    closed: AtomicBool,
}

impl ExceptionShared {
    /// True once the exception object is gone (every handle closed, or its message dropped).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// `ZX_EXCEPTION_STATE_*` as last set.
    pub fn disposition(&self) -> u32 {
        self.disposition.load(Ordering::SeqCst)
    }
}

/// The object a `ZX_OBJ_TYPE_EXCEPTION` handle names.
pub struct ExceptionObject {
    koid: u64,
    thread: Arc<dyn ThreadObject>,
    process: Arc<dyn ProcessObject>,
    thread_rights: u32,
    process_rights: u32,
    shared: Arc<ExceptionShared>,
}

impl core::fmt::Debug for ExceptionObject {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Exception(koid {}, thread {})",
            self.koid,
            self.thread.koid()
        )
    }
}

impl ExceptionObject {
    /// The koid.
    pub fn koid(&self) -> u64 {
        self.koid
    }

    /// The faulting thread's koid (`related_koid`).
    pub fn thread_koid(&self) -> u64 {
        self.thread.koid()
    }

    /// A new handle's object and rights for `zx_exception_get_thread`
    /// (`ZX_ERR_ACCESS_DENIED` if the port gave no thread rights).
    pub fn thread_handle(&self) -> Result<(Object, u32), Status> {
        if self.thread_rights == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        Ok((Object::Thread(self.thread.clone()), self.thread_rights))
    }

    /// Same for `zx_exception_get_process` (a thread's own channel gives no process rights:
    /// `ZX_ERR_ACCESS_DENIED`, as Zircon).
    pub fn process_handle(&self) -> Result<(Object, u32), Status> {
        if self.process_rights == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        Ok((Object::Process(self.process.clone()), self.process_rights))
    }

    /// `ZX_PROP_EXCEPTION_STATE`.
    pub fn state(&self) -> u32 {
        self.shared.disposition()
    }

    /// Sets `ZX_PROP_EXCEPTION_STATE`; `ZX_ERR_INVALID_ARGS` for an unknown value.
    pub fn set_state(&self, value: u32) -> ZxResult {
        match value {
            ZX_EXCEPTION_STATE_TRY_NEXT
            | ZX_EXCEPTION_STATE_HANDLED
            | ZX_EXCEPTION_STATE_THREAD_EXIT => {
                self.shared.disposition.store(value, Ordering::SeqCst);
                Ok(())
            }
            _ => Err(Status::ERR_INVALID_ARGS),
        }
    }
}

impl Drop for ExceptionObject {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        wake_waiters();
    }
}

/// Sends an exception message for `thread` (of `process`) through `port`: a
/// `zx_exception_info_t` with one exception handle (`ZX_DEFAULT_EXCEPTION_RIGHTS`). `None` when
/// the port has no live user endpoint or the message cannot be queued, e.g. at the binding
/// process's handle or byte budget (then the exception goes to the next port). On success the caller waits until [`ExceptionShared::is_closed`].
pub fn deliver(
    port: &ExceptionPort,
    thread: Arc<dyn ThreadObject>,
    process: Arc<dyn ProcessObject>,
    excp_type: u32,
) -> Option<Arc<ExceptionShared>> {
    let (channel, thread_rights, process_rights, account) = {
        let s = port.state.lock();
        (
            s.channel.clone()?,
            s.thread_rights,
            s.process_rights,
            s.account.clone(),
        )
    };
    if channel.peer_closed() {
        return None;
    }
    let info = ExceptionInfo {
        pid: process.koid(),
        tid: thread.koid(),
        r#type: excp_type,
        padding1: [0; 4],
    };
    let shared = Arc::new(ExceptionShared {
        disposition: AtomicU32::new(ZX_EXCEPTION_STATE_TRY_NEXT),
        closed: AtomicBool::new(false),
    });
    let exception = Object::Exception(Arc::new(ExceptionObject {
        koid: new_koid(),
        thread,
        process,
        thread_rights,
        process_rights,
        shared: shared.clone(),
    }));
    let mut bytes = alloc::vec![0u8; ExceptionInfo::SIZE];
    info.encode(&mut bytes);
    let mut handle = exception.into_default_handle();
    if let Some(account) = &account {
        handle.charge_to(account).ok()?;
    }
    let msg = Message {
        bytes,
        handles: alloc::vec![handle],
        charge: None,
    };
    channel.write(msg, account.as_ref()).ok().map(|()| shared)
}

/// A thread's exception while it is blocked in it: the report and the registers (which
/// `zx_thread_write_state` may change before the thread resumes).
#[derive(Clone, Copy, Debug)]
pub struct InFlight {
    /// `ZX_INFO_THREAD_EXCEPTION_REPORT`.
    pub report: ExceptionReport,
    /// The user registers at the fault.
    pub regs: GeneralRegs,
    /// `ZX_EXCEPTION_CHANNEL_TYPE_*` of the port it waits on.
    pub channel_type: u32,
}

/// Per-thread exception state (`None` while not in an exception).
#[derive(Default)]
pub struct ThreadExceptionState {
    inner: Mutex<Option<InFlight>>,
}

impl ThreadExceptionState {
    /// Not in an exception.
    pub const fn new() -> Self {
        ThreadExceptionState {
            inner: Mutex::new(None),
        }
    }

    /// The thread enters an exception.
    pub fn begin(&self, report: ExceptionReport, regs: GeneralRegs) {
        *self.inner.lock() = Some(InFlight {
            report,
            regs,
            channel_type: ZX_EXCEPTION_CHANNEL_TYPE_NONE,
        });
    }

    /// Which port the thread waits on now.
    pub fn set_channel_type(&self, channel_type: u32) {
        if let Some(f) = self.inner.lock().as_mut() {
            f.channel_type = channel_type;
        }
    }

    /// The thread leaves the exception: its (possibly rewritten) registers.
    pub fn end(&self) -> Option<GeneralRegs> {
        self.inner.lock().take().map(|f| f.regs)
    }

    /// The exception, or `ZX_ERR_BAD_STATE` when the thread is not in one.
    pub fn get(&self) -> Result<InFlight, Status> {
        self.inner.lock().ok_or(Status::ERR_BAD_STATE)
    }

    /// Whether the thread is in an exception.
    pub fn active(&self) -> bool {
        self.inner.lock().is_some()
    }

    /// `zx_thread_write_state(GENERAL_REGS)`: `ZX_ERR_BAD_STATE` when not in an exception;
    /// `ZX_ERR_INVALID_ARGS` for a `rip` outside the user half (a non-canonical or kernel RIP
    /// would fault in ring 0 on the way back; Zircon's `arch_set_general_regs` likewise refuses
    /// non-canonical values), an `rsp` above the user half (ours, as for `zx_thread_start`: the
    /// return is an `iretq`) or a non-canonical `fs_base` / `gs_base`; non-zero `fs_base` /
    /// `gs_base` are `ZX_ERR_NOT_SUPPORTED` (threads here have no FS/GS base). Only
    /// [`X86_FLAGS_USER`] bits of `rflags` are taken.
    ///
    /// `user_limit` is the end of the user half (`UserMemory::user_limit`); the upper canonical
    /// half is its sign-extended mirror.
    pub fn set_regs(&self, new: &GeneralRegs, user_limit: u64) -> ZxResult {
        let mut inner = self.inner.lock();
        let f = inner.as_mut().ok_or(Status::ERR_BAD_STATE)?;
        let kernel_half = !(user_limit - 1);
        let canonical = |v: u64| v < user_limit || v >= kernel_half;
        if new.rip >= user_limit
            || new.rsp > user_limit
            || !canonical(new.fs_base)
            || !canonical(new.gs_base)
        {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if new.fs_base != 0 || new.gs_base != 0 {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        let rflags = (f.regs.rflags & !X86_FLAGS_USER) | (new.rflags & X86_FLAGS_USER);
        f.regs = GeneralRegs { rflags, ..*new };
        Ok(())
    }
}
