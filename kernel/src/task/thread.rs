//! Threads: a kernel stack with guard pages, the saved stack pointer of a suspended thread, a
//! run state, and (for user threads) the process they belong to.
//!
//! A thread is created `New`; `Thread::prepare` lays out its first
//! switch frame and makes it `Ready`. The scheduler moves it between `Ready`, `Running` and
//! `Blocked`; [`super::sched::exit_current`] makes it `Dead`, and the scheduler frees its kernel
//! stack right after switching away from it (never while it runs on it). The `Thread` value
//! itself may live on (a handle to it), without a stack.

use crate::frame_alloc::{self, Frame};
use crate::SpinMutex as Mutex;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use arch::fpu::FpuState;
use arch::kstack::KernelStack;
use arch::trap::TrapFrame;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use super::process::Process;
use syscalls::account::Charge;
use syscalls::exception::{ExceptionPort, ThreadExceptionState};

/// Scheduling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Created, not started.
    New = 0,
    /// Runnable, in the run queue.
    Ready = 1,
    /// On the CPU.
    Running = 2,
    /// Waiting (on the blocked list).
    Blocked = 3,
    /// Exited; its stack is freed once the CPU left it.
    Dead = 4,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            0 => State::New,
            1 => State::Ready,
            2 => State::Running,
            3 => State::Blocked,
            _ => State::Dead,
        }
    }
}

/// `ZX_THREAD_TERMINATED`.
pub const SIGNAL_TERMINATED: u32 = abi::signals::ZX_THREAD_TERMINATED;
/// `ZX_THREAD_RUNNING`.
pub const SIGNAL_RUNNING: u32 = abi::signals::ZX_THREAD_RUNNING;

static NEXT_TID: AtomicU64 = AtomicU64::new(1);
static LIVE_STACKS: AtomicU64 = AtomicU64::new(0);

/// The body of a kernel thread.
pub type KernelEntry = Box<dyn FnOnce() + Send>;

/// A thread.
pub struct Thread {
    tid: u64,
    koid: u64,
    /// `ZX_PROP_NAME` may change it.
    name: Mutex<String>,
    process: Option<Arc<Process>>,
    state: AtomicU8,
    /// The saved RSP while suspended (written by the context switch as its last store on the
    /// stack); 0 while a CPU runs on the stack (the scheduler takes it when it picks the thread).
    pub(super) saved_rsp: AtomicU64,
    /// The CPU the thread runs on (or last ran on).
    pub(super) cpu: AtomicUsize,
    stack: Mutex<Option<KernelStack>>,
    /// `(bottom, top)` of the stack, or of the boot stack for the boot thread.
    stack_range: (u64, u64),
    kernel_entry: Mutex<Option<KernelEntry>>,
    /// Set when the thread must die at its next return towards user mode (its process is
    /// being killed).
    kill_pending: AtomicBool,
    signals: AtomicU32,
    /// Absolute monotonic deadline (ns) while blocked with a timeout; `u64::MAX` otherwise.
    pub(super) deadline: AtomicU64,
    /// The x87/SSE registers while the thread is not on the CPU (switched by the scheduler).
    pub(super) fpu: Mutex<Box<FpuState>>,
    /// Set while the thread is in `zx_object_wait_one` (`ZX_THREAD_STATE_BLOCKED_WAIT_ONE`).
    pub(super) in_wait_one: AtomicBool,
    /// `zx_task_create_exception_channel` on this thread.
    exception_port: ExceptionPort,
    /// The exception the thread is stopped in, if any.
    exception_state: ThreadExceptionState,
    /// The creator's charge for this thread object (`syscalls::account`), released with it.
    _charge: Option<Charge>,
}

impl core::fmt::Debug for Thread {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Thread({} {:?} {:?})",
            self.tid,
            self.name(),
            self.state()
        )
    }
}

fn alloc_stack() -> Option<KernelStack> {
    // Threads are created for user space: their stacks respect the kernel frame reserve.
    let stack = arch::kstack::alloc(
        &mut || frame_alloc::alloc_user().map(|f| f.addr()),
        &mut |p| {
            if let Some(f) = Frame::from_addr(p) {
                let _ = frame_alloc::free(f);
            }
        },
    )?;
    LIVE_STACKS.fetch_add(1, Ordering::SeqCst);
    Some(stack)
}

fn free_stack(stack: KernelStack) {
    arch::kstack::free(stack, &mut |p| {
        if let Some(f) = Frame::from_addr(p) {
            if let Err(e) = frame_alloc::free(f) {
                log::error!("kernel stack frame {p:#x}: {e:?}");
            }
        }
    });
    LIVE_STACKS.fetch_sub(1, Ordering::SeqCst);
}

/// Kernel stacks currently allocated by threads.
pub fn live_stacks() -> u64 {
    LIVE_STACKS.load(Ordering::SeqCst)
}

impl Thread {
    /// A new thread with its own kernel stack, holding `charge` (its creator's) until dropped;
    /// `None` when memory runs out.
    pub fn new(
        name: &str,
        process: Option<Arc<Process>>,
        koid: u64,
        charge: Option<Charge>,
    ) -> Option<Arc<Thread>> {
        let stack = alloc_stack()?;
        let range = (stack.bottom(), stack.top());
        if let Some(p) = &process {
            p.count_thread_object(true);
        }
        Some(Arc::new(Thread {
            tid: NEXT_TID.fetch_add(1, Ordering::Relaxed),
            koid,
            name: Mutex::new(String::from(name)),
            process,
            state: AtomicU8::new(State::New as u8),
            saved_rsp: AtomicU64::new(0),
            cpu: AtomicUsize::new(0),
            stack: Mutex::new(Some(stack)),
            stack_range: range,
            kernel_entry: Mutex::new(None),
            kill_pending: AtomicBool::new(false),
            signals: AtomicU32::new(0),
            deadline: AtomicU64::new(u64::MAX),
            fpu: Mutex::new(FpuState::new()),
            in_wait_one: AtomicBool::new(false),
            exception_port: ExceptionPort::new(),
            exception_state: ThreadExceptionState::new(),
            _charge: charge,
        }))
    }

    /// The thread that represents a CPU's boot context (already running, on its boot stack):
    /// the boot CPU's first thread, an application processor's idle thread.
    pub(super) fn boot(name: &str, stack_bottom: u64, stack_top: u64) -> Arc<Thread> {
        Arc::new(Thread {
            tid: 0,
            koid: 0,
            name: Mutex::new(String::from(name)),
            process: None,
            state: AtomicU8::new(State::Running as u8),
            saved_rsp: AtomicU64::new(0),
            cpu: AtomicUsize::new(arch::percpu::cpu_index()),
            stack: Mutex::new(None),
            stack_range: (stack_bottom, stack_top),
            kernel_entry: Mutex::new(None),
            kill_pending: AtomicBool::new(false),
            signals: AtomicU32::new(SIGNAL_RUNNING),
            deadline: AtomicU64::new(u64::MAX),
            fpu: Mutex::new(FpuState::new()),
            in_wait_one: AtomicBool::new(false),
            exception_port: ExceptionPort::new(),
            exception_state: ThreadExceptionState::new(),
            _charge: None,
        })
    }

    /// The kernel object id (0 for kernel threads).
    pub fn koid(&self) -> u64 {
        self.koid
    }

    /// The name.
    pub fn name(&self) -> String {
        self.name.lock().clone()
    }

    /// The owning process (`None` for kernel threads).
    pub fn process(&self) -> Option<&Arc<Process>> {
        self.process.as_ref()
    }

    /// The scheduling state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::SeqCst))
    }

    pub(super) fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::SeqCst);
        match s {
            State::Dead => {
                self.signals.store(SIGNAL_TERMINATED, Ordering::SeqCst);
            }
            State::New => {}
            _ => {
                self.signals.fetch_or(SIGNAL_RUNNING, Ordering::SeqCst);
            }
        }
    }

    /// Asserted signals (`ZX_THREAD_RUNNING`, `ZX_THREAD_TERMINATED`).
    pub fn signals(&self) -> u32 {
        self.signals.load(Ordering::SeqCst)
    }

    /// `(bottom, top)` of its kernel stack.
    pub fn stack_range(&self) -> (u64, u64) {
        self.stack_range
    }

    /// Asks the thread to die at its next return towards user mode.
    pub fn request_kill(&self) {
        self.kill_pending.store(true, Ordering::SeqCst);
        // Running on another CPU: make it enter the kernel, where it notices.
        super::sched::kick_thread(self);
    }

    /// True once [`Thread::request_kill`] was called.
    pub fn kill_requested(&self) -> bool {
        self.kill_pending.load(Ordering::SeqCst)
    }

    /// The thread's exception port.
    pub fn exception_port(&self) -> &ExceptionPort {
        &self.exception_port
    }

    /// The exception the thread is stopped in (report, registers).
    pub fn exception_state(&self) -> &ThreadExceptionState {
        &self.exception_state
    }

    /// Frees the kernel stack (the scheduler calls this once the CPU left a dead thread).
    pub(super) fn release_stack(&self) {
        // The stack lock is a leaf: released before the free, which shoots down every CPU.
        let stack = self.stack.lock().take();
        if let Some(stack) = stack {
            free_stack(stack);
        }
    }

    /// Takes the kernel-thread body (once).
    pub(super) fn take_kernel_entry(&self) -> Option<KernelEntry> {
        self.kernel_entry.lock().take()
    }

    /// Lays out the first switch frame: the thread starts at `entry(arg)` and, if that returns,
    /// enters ring 3 with `user`. `ERR_BAD_STATE` unless `New`.
    pub(super) fn prepare(
        &self,
        entry: arch::context::ThreadEntry,
        user: &TrapFrame,
        body: Option<KernelEntry>,
    ) -> Result<(), abi::Status> {
        if self.state() != State::New {
            return Err(abi::Status::ERR_BAD_STATE);
        }
        let mut stack = self.stack.lock();
        let stack = stack.as_mut().ok_or(abi::Status::ERR_BAD_STATE)?;
        let rsp = stack.prepare(entry, 0, user);
        self.saved_rsp.store(rsp, Ordering::SeqCst);
        *self.kernel_entry.lock() = body;
        Ok(())
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        // A thread that never ran (or whose stack the scheduler did not reap yet) still owns
        // its stack; nothing can be running on it since no Arc is left.
        if let Some(stack) = self.stack.get_mut().take() {
            free_stack(stack);
        }
        if let Some(p) = &self.process {
            p.count_thread_object(false);
        }
    }
}

impl syscalls::ThreadObject for Thread {
    fn koid(&self) -> u64 {
        self.koid
    }

    fn name(&self) -> [u8; abi::info::ZX_MAX_NAME_LEN] {
        syscalls::object::name_array(self.name.lock().as_bytes())
    }

    fn set_name(&self, name: &[u8]) -> Result<(), abi::Status> {
        let n = syscalls::object::name_array(name);
        let end = n.iter().position(|&b| b == 0).unwrap_or(n.len());
        *self.name.lock() = String::from(core::str::from_utf8(&n[..end]).unwrap_or("?"));
        Ok(())
    }

    fn process_koid(&self) -> u64 {
        self.process.as_ref().map_or(0, |p| p.koid())
    }

    fn signals(&self) -> u32 {
        Thread::signals(self)
    }

    fn state(&self) -> u32 {
        use abi::exception::thread_state::*;
        match self.state() {
            State::New => ZX_THREAD_STATE_NEW,
            State::Dead => ZX_THREAD_STATE_DEAD,
            _ if self.kill_requested() => ZX_THREAD_STATE_DYING,
            _ if self.exception_state.active() => ZX_THREAD_STATE_BLOCKED_EXCEPTION,
            // Woken to re-check its condition is still blocked in the wait, as user space sees it.
            State::Blocked | State::Ready if self.in_wait_one.load(Ordering::SeqCst) => {
                ZX_THREAD_STATE_BLOCKED_WAIT_ONE
            }
            State::Blocked => ZX_THREAD_STATE_BLOCKED,
            State::Ready | State::Running => ZX_THREAD_STATE_RUNNING,
        }
    }

    fn exception_port(&self) -> &ExceptionPort {
        &self.exception_port
    }

    fn exception_state(&self) -> &ThreadExceptionState {
        &self.exception_state
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn core::any::Any + Send + Sync> {
        self
    }
}
