//! Exceptions and thread state: [`Exception`] (the handle an exception channel message carries),
//! exception channels on [`Thread`] / [`Process`], `zx_thread_{read,write}_state`, thread info,
//! and `zx_object_{get,set}_property` on any [`Handle`].

use abi::exception::exception_state::ZX_EXCEPTION_STATE_HANDLED;
use abi::exception::thread_state::ZX_THREAD_STATE_GENERAL_REGS;
use abi::exception::{ExceptionInfo, ExceptionReport, GeneralRegs, InfoThread};
use abi::info::topic;
use abi::props::ZX_PROP_EXCEPTION_STATE;
use abi::syscall_numbers as nr;
use abi::wire::Wire;
use abi::{Status, ZxResult};

use crate::raw::{syscall2, syscall3, syscall4};
use crate::{addr_of, get_info, ok, Channel, Handle, Process, Thread};

/// An exception handle (`ZX_OBJ_TYPE_EXCEPTION`). Closing it ends the exception as its
/// `ZX_PROP_EXCEPTION_STATE` says.
#[derive(Debug, PartialEq, Eq)]
pub struct Exception(Handle);

impl From<Handle> for Exception {
    fn from(handle: Handle) -> Self {
        Exception(handle)
    }
}

fn get_task(nr: u32, handle: &Handle) -> ZxResult<Handle> {
    let mut out = 0u32;
    // SAFETY: the kernel writes one valid, aligned u32.
    ok(unsafe { syscall2(nr, handle.raw() as usize, addr_of(&mut out)) })?;
    Ok(Handle::from_raw(out))
}

impl Exception {
    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.0
    }

    /// Gives the handle back.
    pub fn into_handle(self) -> Handle {
        self.0
    }

    /// `zx_exception_get_thread`.
    pub fn thread(&self) -> ZxResult<Thread> {
        get_task(nr::ZX_SYS_EXCEPTION_GET_THREAD, &self.0).map(Thread::from)
    }

    /// `zx_exception_get_process`.
    pub fn process(&self) -> ZxResult<Process> {
        get_task(nr::ZX_SYS_EXCEPTION_GET_PROCESS, &self.0).map(Process::from)
    }

    /// `ZX_PROP_EXCEPTION_STATE`.
    pub fn state(&self) -> ZxResult<u32> {
        let mut v = [0u8; 4];
        self.0.get_property(ZX_PROP_EXCEPTION_STATE, &mut v)?;
        Ok(u32::from_le_bytes(v))
    }

    /// Sets `ZX_PROP_EXCEPTION_STATE` (`ZX_EXCEPTION_STATE_*`).
    pub fn set_state(&self, state: u32) -> ZxResult {
        self.0
            .set_property(ZX_PROP_EXCEPTION_STATE, &state.to_le_bytes())
    }

    /// Marks the exception handled and closes it: the thread resumes.
    pub fn resume(self) -> ZxResult {
        self.set_state(ZX_EXCEPTION_STATE_HANDLED)?;
        self.0.close()
    }
}

/// Reads one exception message from an exception channel: the info and the exception.
pub fn read_exception(channel: &Channel) -> ZxResult<(ExceptionInfo, Exception)> {
    let mut bytes = [0u8; ExceptionInfo::SIZE];
    let mut handles = [0u32; 1];
    let r = channel.read_raw(0, &mut bytes, &mut handles);
    r.status.ok()?;
    if r.bytes as usize != ExceptionInfo::SIZE || r.handles != 1 {
        // Not an exception message: close whatever came.
        for &h in &handles[..r.handles as usize] {
            drop(Handle::from_raw(h));
        }
        return Err(Status::ERR_BAD_STATE);
    }
    Ok((
        ExceptionInfo::decode(&bytes),
        Exception(Handle::from_raw(handles[0])),
    ))
}

fn create_exception_channel(task: &Handle, options: u32) -> ZxResult<Channel> {
    let mut out = 0u32;
    // SAFETY: the kernel writes one valid, aligned u32.
    ok(unsafe {
        syscall3(
            nr::ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL,
            task.raw() as usize,
            options as usize,
            addr_of(&mut out),
        )
    })?;
    Ok(Channel::from(Handle::from_raw(out)))
}

impl Thread {
    /// `zx_task_create_exception_channel(thread, options)`.
    pub fn create_exception_channel(&self, options: u32) -> ZxResult<Channel> {
        create_exception_channel(self.handle(), options)
    }

    /// `zx_thread_read_state(ZX_THREAD_STATE_GENERAL_REGS)`.
    pub fn read_regs(&self) -> ZxResult<GeneralRegs> {
        let mut buf = [0u64; GeneralRegs::SIZE / 8];
        // SAFETY: the kernel writes at most `size_of_val(&buf)` bytes into `buf`.
        ok(unsafe {
            syscall4(
                nr::ZX_SYS_THREAD_READ_STATE,
                self.handle().raw() as usize,
                ZX_THREAD_STATE_GENERAL_REGS as usize,
                buf.as_mut_ptr() as usize,
                GeneralRegs::SIZE,
            )
        })?;
        let mut bytes = [0u8; GeneralRegs::SIZE];
        for (chunk, v) in bytes.chunks_exact_mut(8).zip(buf) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        Ok(GeneralRegs::decode(&bytes))
    }

    /// `zx_thread_write_state(ZX_THREAD_STATE_GENERAL_REGS)`.
    pub fn write_regs(&self, regs: &GeneralRegs) -> ZxResult {
        let mut bytes = [0u8; GeneralRegs::SIZE];
        regs.encode(&mut bytes);
        // SAFETY: the kernel reads `bytes.len()` bytes from a valid buffer.
        ok(unsafe {
            syscall4(
                nr::ZX_SYS_THREAD_WRITE_STATE,
                self.handle().raw() as usize,
                ZX_THREAD_STATE_GENERAL_REGS as usize,
                bytes.as_ptr() as usize,
                bytes.len(),
            )
        })
    }

    /// `ZX_INFO_THREAD`.
    pub fn info(&self) -> ZxResult<InfoThread> {
        get_info(self.handle(), topic::ZX_INFO_THREAD)
    }

    /// `ZX_INFO_THREAD_EXCEPTION_REPORT` (`ZX_ERR_BAD_STATE` unless stopped in an exception).
    pub fn exception_report(&self) -> ZxResult<ExceptionReport> {
        get_info(self.handle(), topic::ZX_INFO_THREAD_EXCEPTION_REPORT)
    }
}

impl Process {
    /// `zx_task_create_exception_channel(process, options)`.
    pub fn create_exception_channel(&self, options: u32) -> ZxResult<Channel> {
        create_exception_channel(self.handle(), options)
    }
}

impl Handle {
    /// `zx_object_get_property(property)` into `value`.
    pub fn get_property(&self, property: u32, value: &mut [u8]) -> ZxResult {
        // SAFETY: the kernel writes at most `value.len()` bytes into a valid buffer.
        ok(unsafe {
            syscall4(
                nr::ZX_SYS_OBJECT_GET_PROPERTY,
                self.raw() as usize,
                property as usize,
                value.as_mut_ptr() as usize,
                value.len(),
            )
        })
    }

    /// `zx_object_set_property(property, value)`.
    pub fn set_property(&self, property: u32, value: &[u8]) -> ZxResult {
        // SAFETY: the kernel reads at most `value.len()` bytes from a valid buffer.
        ok(unsafe {
            syscall4(
                nr::ZX_SYS_OBJECT_SET_PROPERTY,
                self.raw() as usize,
                property as usize,
                value.as_ptr() as usize,
                value.len(),
            )
        })
    }
}
