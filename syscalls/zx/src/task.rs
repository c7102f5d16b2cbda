//! Processes and threads.

use abi::info::{topic, InfoProcess};
use abi::syscall_numbers as nr;
use abi::ZxResult;

use crate::raw::{syscall0, syscall1, syscall5, syscall6};
use crate::{addr_of, ok, Handle, Vmar};

/// A process handle.
#[derive(Debug, PartialEq, Eq)]
pub struct Process(Handle);

/// A thread handle.
#[derive(Debug, PartialEq, Eq)]
pub struct Thread(Handle);

impl From<Handle> for Process {
    fn from(handle: Handle) -> Self {
        Process(handle)
    }
}

impl From<Handle> for Thread {
    fn from(handle: Handle) -> Self {
        Thread(handle)
    }
}

fn kill(handle: &Handle) -> ZxResult {
    // SAFETY: killing another task touches no memory of this process (killing this one ends it).
    ok(unsafe { syscall1(nr::ZX_SYS_TASK_KILL, handle.raw() as usize) })
}

impl Process {
    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.0
    }

    /// Gives the handle back (to transfer it).
    pub fn into_handle(self) -> Handle {
        self.0
    }

    /// `zx_process_create(job, name, options)`: the process and its root VMAR.
    pub fn create(job: &Handle, name: &[u8], options: u32) -> ZxResult<(Process, Vmar)> {
        let mut process = 0u32;
        let mut vmar = 0u32;
        // SAFETY: the kernel reads `name.len()` bytes of `name`; the outs are valid, aligned u32s.
        let r = unsafe {
            syscall6(
                nr::ZX_SYS_PROCESS_CREATE,
                job.raw() as usize,
                name.as_ptr() as usize,
                name.len(),
                options as usize,
                addr_of(&mut process),
                addr_of(&mut vmar),
            )
        };
        ok(r).map(|()| {
            (
                Process(Handle::from_raw(process)),
                Vmar::from(Handle::from_raw(vmar)),
            )
        })
    }

    /// `zx_process_start(thread, entry, stack, arg1, arg2)`: `arg1` (a handle, may be invalid) is
    /// transferred to the new process.
    pub fn start(
        &self,
        thread: &Thread,
        entry: usize,
        stack: usize,
        arg1: Handle,
        arg2: usize,
    ) -> ZxResult {
        let arg1 = arg1.into_raw();
        // SAFETY: starts another process; no memory of this one is touched.
        ok(unsafe {
            syscall6(
                nr::ZX_SYS_PROCESS_START,
                self.0.raw() as usize,
                thread.0.raw() as usize,
                entry,
                stack,
                arg1 as usize,
                arg2,
            )
        })
    }

    /// `zx_process_read_memory(vaddr, buf)`: bytes actually read.
    pub fn read_memory(&self, vaddr: usize, buf: &mut [u8]) -> ZxResult<usize> {
        let mut actual = 0usize;
        // SAFETY: the kernel writes at most `buf.len()` bytes into a valid slice and one usize.
        let r = unsafe {
            syscall5(
                nr::ZX_SYS_PROCESS_READ_MEMORY,
                self.0.raw() as usize,
                vaddr,
                buf.as_mut_ptr() as usize,
                buf.len(),
                addr_of(&mut actual),
            )
        };
        ok(r).map(|()| actual)
    }

    /// `zx_process_write_memory(vaddr, buf)`: bytes actually written.
    ///
    /// Writing into *this* process would change memory behind Rust's back; use it on others.
    pub fn write_memory(&self, vaddr: usize, buf: &[u8]) -> ZxResult<usize> {
        let mut actual = 0usize;
        // SAFETY: the kernel reads `buf.len()` bytes from a valid slice and writes one usize.
        let r = unsafe {
            syscall5(
                nr::ZX_SYS_PROCESS_WRITE_MEMORY,
                self.0.raw() as usize,
                vaddr,
                buf.as_ptr() as usize,
                buf.len(),
                addr_of(&mut actual),
            )
        };
        ok(r).map(|()| actual)
    }

    /// `zx_task_kill`.
    pub fn kill(&self) -> ZxResult {
        kill(&self.0)
    }

    /// `ZX_INFO_PROCESS`.
    pub fn info(&self) -> ZxResult<InfoProcess> {
        crate::get_info(&self.0, topic::ZX_INFO_PROCESS)
    }

    /// `zx_process_exit(retcode)`: ends the calling process.
    pub fn exit(retcode: i64) -> ! {
        // SAFETY: the process ends; nothing after this runs.
        unsafe { syscall1(nr::ZX_SYS_PROCESS_EXIT, retcode as usize) };
        loop {
            core::hint::spin_loop();
        }
    }
}

impl Thread {
    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.0
    }

    /// `zx_thread_create(process, name, options)`.
    pub fn create(process: &Process, name: &[u8], options: u32) -> ZxResult<Thread> {
        let mut out = 0u32;
        // SAFETY: the kernel reads `name.len()` bytes of `name`; `out` is a valid, aligned u32.
        let r = unsafe {
            syscall5(
                nr::ZX_SYS_THREAD_CREATE,
                process.0.raw() as usize,
                name.as_ptr() as usize,
                name.len(),
                options as usize,
                addr_of(&mut out),
            )
        };
        ok(r).map(|()| Thread(Handle::from_raw(out)))
    }

    /// `zx_thread_start(entry, stack, arg1, arg2)`.
    ///
    /// # Safety
    /// If the thread belongs to this process, `entry` must be code that is sound to run
    /// concurrently with this thread given `arg1` / `arg2`, and `stack` the top of a stack nothing
    /// else uses, as for any raw thread spawn.
    pub unsafe fn start(&self, entry: usize, stack: usize, arg1: usize, arg2: usize) -> ZxResult {
        // SAFETY: the caller vouches for entry, stack and arguments.
        ok(unsafe {
            syscall5(
                nr::ZX_SYS_THREAD_START,
                self.0.raw() as usize,
                entry,
                stack,
                arg1,
                arg2,
            )
        })
    }

    /// `zx_task_kill`.
    pub fn kill(&self) -> ZxResult {
        kill(&self.0)
    }

    /// `zx_thread_exit`: ends the calling thread.
    pub fn exit() -> ! {
        // SAFETY: the thread ends; nothing after this runs.
        unsafe { syscall0(nr::ZX_SYS_THREAD_EXIT) };
        loop {
            core::hint::spin_loop();
        }
    }
}
