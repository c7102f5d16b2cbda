//! [`SyscallContext`]: everything a `sys_*` handler needs from the kernel, for the calling thread.
//!
//! The kernel implements it once (glue over its current thread, process, scheduler, clock and
//! serial); host tests implement it over `vm`'s software MMU and a fake user memory. The syscall
//! layer decodes the raw arguments, looks handles up with the rights Zircon demands, validates user
//! pointers and copies through [`UserMemory`], and calls the `vm` for VM semantics; what needs the
//! scheduler or the hardware is a method here.
//!
//! Locking contract: [`SyscallContext::with_handle_table`] (and
//! [`crate::ProcessObject::with_handle_table`]) run a closure under the table's lock; handlers
//! never copy user memory, block, or call another context method inside it, and objects removed
//! from a table are dropped after the closure returns (outside the lock).

use alloc::sync::Arc;

use abi::{Status, ZxResult};
use vm::PhysMem;

use crate::object::{Object, ObjectTable, ProcessObject, ThreadObject};
use crate::user_ptr::UserMemory;

/// Register state for the first thread of a process (`zx_process_start`), per the startup ABI:
/// `rip = entry`, `rsp = stack`, `rdi = arg1`, `rsi = arg2`, `rdx = process`, `rcx = root_vmar`,
/// `r8 = thread`, every other register zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessStart {
    /// Entry point.
    pub entry: usize,
    /// Initial stack pointer, as given by the caller.
    pub stack: usize,
    /// The value of the transferred handle in the new process's table, or `ZX_HANDLE_INVALID`.
    pub arg1: u32,
    /// The caller's second argument.
    pub arg2: u64,
    /// The new process's handle to itself.
    pub process: u32,
    /// The new process's handle to its root VMAR.
    pub root_vmar: u32,
    /// The new process's handle to its first thread.
    pub thread: u32,
}

/// The kernel side of a system call, for the calling thread. See the module documentation.
pub trait SyscallContext {
    /// Runs `f` on the calling process's handle table, under its lock.
    fn with_handle_table(&mut self, f: &mut dyn FnMut(&mut ObjectTable));

    /// The calling process's user memory (fault-safe copies; a fault is `ZX_ERR_INVALID_ARGS`).
    fn user_memory(&mut self) -> &mut dyn UserMemory;

    /// The frame allocator new VMOs commit their pages from.
    fn phys_mem(&self) -> Arc<dyn PhysMem>;

    /// Creates a process named `name` (at most 31 bytes, no NUL) with an empty address space,
    /// not started. `ZX_ERR_NO_MEMORY` if it cannot be built.
    fn process_create(&mut self, name: &[u8]) -> Result<Arc<dyn ProcessObject>, Status>;

    /// Creates a thread named `name` in `process`, not started. As in Zircon this succeeds even
    /// when the process is dying or dead (the thread counts for its process only once started:
    /// [`SyscallContext::process_start`] / [`SyscallContext::thread_start`] then fail with
    /// `ZX_ERR_BAD_STATE`). `ZX_ERR_NO_MEMORY` if its kernel stack cannot be allocated.
    fn thread_create(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        name: &[u8],
    ) -> Result<Arc<dyn ThreadObject>, Status>;

    /// Starts `process` on `thread` (which belongs to it: checked by the caller) with the startup
    /// registers `start`. The handles named in `start` are already in the process's table; on
    /// error the caller removes them again. `ZX_ERR_BAD_STATE` if the process was already started
    /// or is dead, or the thread was already started.
    fn process_start(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        thread: &Arc<dyn ThreadObject>,
        start: &ProcessStart,
    ) -> ZxResult;

    /// Starts another thread of a started process: `rip = entry`, `rsp = stack`, `rdi = arg1`,
    /// `rsi = arg2`. `ZX_ERR_BAD_STATE` if already started, or the process is not running.
    fn thread_start(
        &mut self,
        thread: &Arc<dyn ThreadObject>,
        entry: usize,
        stack: usize,
        arg1: u64,
        arg2: u64,
    ) -> ZxResult;

    /// `zx_process_exit`: the calling process ends with `retcode`. The kernel marks it (and every
    /// thread) dying; after [`crate::dispatch()`] returns it must not resume the calling thread.
    fn process_exit(&mut self, retcode: i64);

    /// `zx_thread_exit`: the calling thread ends (the last one ends its process with return code
    /// 0, as in Zircon). Same contract as [`SyscallContext::process_exit`].
    fn thread_exit(&mut self);

    /// `zx_task_kill` of a process: it ends with `ZX_TASK_RETCODE_SYSCALL_KILL` (a no-op if it is
    /// already dead). May be the calling process: then the calling thread must not be resumed.
    fn process_kill(&mut self, process: &Arc<dyn ProcessObject>);

    /// Blocks the calling thread until `object.signals() & signals != 0` or the monotonic clock
    /// reaches `deadline` (ns; `i64::MAX` is infinite). Returns `Ok` or `ZX_ERR_TIMED_OUT`, and the
    /// signals observed at the end.
    fn object_wait_one(&mut self, object: &Object, signals: u32, deadline: i64) -> (ZxResult, u32);

    /// Whether the debugging syscalls (`zx_process_read_memory` / `write_memory`, and
    /// `ZX_VMO_OP_CACHE_INVALIDATE`) are enabled: the kernel command line's switch (Zircon's
    /// `kernel.enable-debugging-syscalls`). Off by default.
    fn debugging_syscalls_enabled(&self) -> bool {
        false
    }

    /// Reads `buf.len()` bytes of `process`'s memory at `vaddr`, from the one mapping that
    /// contains `vaddr` (truncated at its end, as in Zircon). Returns the bytes read.
    /// Errors: `ZX_ERR_BAD_STATE` (no address space), `ZX_ERR_NOT_FOUND` (no mapping at `vaddr`,
    /// as in current Zircon), `ZX_ERR_NO_MEMORY` (out of memory), `ZX_ERR_OUT_OF_RANGE` (past the
    /// end of the VMO).
    fn process_read_memory(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        vaddr: usize,
        buf: &mut [u8],
    ) -> Result<usize, Status>;

    /// Writes `buf` to `process`'s memory at `vaddr`, ignoring the mapping's current protection
    /// (a debugger write). The mapping's maximum protection must include READ
    /// (`ZX_ERR_ACCESS_DENIED`); without WRITE in it the write goes to the mapping's private
    /// copy-on-write child (Zircon's `ForceWritable`), never to the VMO. Otherwise the same
    /// rules as [`SyscallContext::process_read_memory`].
    fn process_write_memory(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        vaddr: usize,
        buf: &[u8],
    ) -> Result<usize, Status>;

    /// Writes bytes to the debug log (serial).
    fn debug_write(&mut self, bytes: &[u8]);

    /// `zx_ticks_get`.
    fn ticks_get(&self) -> i64;

    /// `zx_ticks_per_second`.
    fn ticks_per_second(&self) -> i64;

    /// `zx_clock_get_monotonic`: nanoseconds since boot.
    fn clock_get_monotonic(&self) -> i64;

    /// `zx_debug_kernel_stats`: the kernel's counters, indexed by [`abi::kstats`], after checking
    /// the invariants of every live address space. `ZX_ERR_NOT_SUPPORTED` where there is no
    /// kernel to ask (the default, for test contexts).
    fn kernel_stats(&mut self) -> Result<[u64; abi::kstats::COUNT], Status> {
        Err(Status::ERR_NOT_SUPPORTED)
    }

    /// `zx_debug_irqoff_stats`: the longest interrupts-off stretches (ns), indexed by
    /// [`abi::irqoff`]; zeroed after the read when `reset`. `ZX_ERR_NOT_SUPPORTED` by default.
    fn irqoff_stats(&mut self, reset: bool) -> Result<[u64; abi::irqoff::COUNT], Status> {
        let _ = reset;
        Err(Status::ERR_NOT_SUPPORTED)
    }

    /// A preemption point for long syscalls: lets the timer tick that is pending (if any)
    /// switch to other threads, and returns when the caller runs again. Call only with no lock
    /// held and no state that another thread could invalidate unchecked; other threads may
    /// observe the partial progress made so far (as in Zircon). No-op by default.
    fn preempt_point(&mut self) {}
}

/// Runs `f` on the calling process's handle table and returns its result.
pub fn with_table<R>(
    ctx: &mut (impl SyscallContext + ?Sized),
    f: impl FnOnce(&mut ObjectTable) -> R,
) -> R {
    let mut f = Some(f);
    let mut out = None;
    ctx.with_handle_table(&mut |table| {
        if let Some(f) = f.take() {
            out = Some(f(table));
        }
    });
    out.expect("SyscallContext::with_handle_table must call its closure exactly once")
}

/// Runs `f` on `process`'s handle table and returns its result.
pub fn with_process_table<R>(
    process: &dyn ProcessObject,
    f: impl FnOnce(&mut ObjectTable) -> R,
) -> R {
    let mut f = Some(f);
    let mut out = None;
    process.with_handle_table(&mut |table| {
        if let Some(f) = f.take() {
            out = Some(f(table));
        }
    });
    out.expect("ProcessObject::with_handle_table must call its closure exactly once")
}
