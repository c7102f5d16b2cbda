//! Processes, threads, waiting and cross-process memory access
//! (`zircon/kernel/lib/syscalls/task.cc`, `object_wait.cc`).
//!
//! Argument checks, handle lookups with Zircon's rights, the copies and the handle moves of
//! `zx_process_start` are here; creating, starting, killing and blocking are
//! [`SyscallContext`] methods the kernel implements.
//!
//! This kernel has no job objects: `zx_process_create` takes `ZX_HANDLE_INVALID` as its job (the
//! one implicit root job). Any other value is `ZX_ERR_BAD_HANDLE` if it names no handle, else
//! `ZX_ERR_WRONG_TYPE` (no handle can name a job).

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use abi::handle::ZX_HANDLE_INVALID;
use abi::info::ZX_MAX_NAME_LEN;
use abi::rights::{
    ZX_RIGHT_DESTROY, ZX_RIGHT_MANAGE_THREAD, ZX_RIGHT_READ, ZX_RIGHT_TRANSFER, ZX_RIGHT_WAIT,
    ZX_RIGHT_WRITE,
};
use abi::{Status, ZxResult};

use super::{add_and_copy_out, lookup, lookup_any, remove_quietly};
use crate::context::{with_process_table, with_table, ProcessStart, SyscallContext};
use crate::object::{Object, ObjectHandle, ObjectTable, StartupHandles};
use crate::user_ptr::{UserInBuffer, UserOut, UserOutBuffer};

/// `ZX_PROCESS_SHARED`: the one `zx_process_create` option Zircon knows (not supported here).
pub const ZX_PROCESS_SHARED: u32 = 1 << 0;

/// Most bytes `zx_process_read_memory` / `write_memory` accept per call (Zircon's
/// `kMaxDebugReadBlock`); larger is `ZX_ERR_INVALID_ARGS`.
pub const MAX_DEBUG_BLOCK: usize = 64 * 1024 * 1024;

/// Most bytes one `zx_process_read_memory` / `write_memory` call moves here (one kernel buffer);
/// `actual` reports fewer when the request was larger.
pub const DEBUG_COPY_CHUNK: usize = 64 * 1024;

/// Zircon's `copy_user_string`: a null pointer is `ZX_ERR_INVALID_ARGS` (even with length 0), a
/// length above `ZX_MAX_NAME_LEN` is silently truncated, a fault is `ZX_ERR_INVALID_ARGS`; the
/// name ends at the first NUL and has at most `ZX_MAX_NAME_LEN - 1` bytes.
fn copy_name(ctx: &mut dyn SyscallContext, ptr: usize, len: usize) -> Result<Vec<u8>, Status> {
    if ptr == 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let len = len.min(ZX_MAX_NAME_LEN);
    let mut buf = vec![0u8; len];
    UserInBuffer::new(ptr, len).read_at(ctx.user_memory(), 0, &mut buf)?;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(len);
    buf.truncate(len.min(ZX_MAX_NAME_LEN - 1));
    Ok(buf)
}

/// `zx_process_create(job, *name, name_size, options, *proc_handle, *vmar_handle)`.
///
/// Order: options (`ZX_ERR_INVALID_ARGS`; `ZX_PROCESS_SHARED` is `ZX_ERR_NOT_SUPPORTED`), name,
/// job (see the module docs), creation, copy-out. The handles get the process and VMAR default
/// rights (the root VMAR can map R/W/X, so READ | WRITE | EXECUTE are added). If a value cannot
/// be copied out both handles are removed (the never-started process goes away with them).
#[allow(clippy::too_many_arguments)]
pub fn process_create(
    ctx: &mut dyn SyscallContext,
    job: u32,
    name: usize,
    name_len: usize,
    options: u32,
    proc_out: UserOut<u32>,
    vmar_out: UserOut<u32>,
) -> ZxResult {
    if options == ZX_PROCESS_SHARED {
        return Err(Status::ERR_NOT_SUPPORTED);
    }
    if options != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let name = copy_name(ctx, name, name_len)?;
    if job != ZX_HANDLE_INVALID {
        with_table(ctx, |table| table.get(job).map(drop))?;
        return Err(Status::ERR_WRONG_TYPE);
    }
    let process = ctx.process_create(&name)?;
    let root = process.root_vmar()?;
    let proc_value = add_and_copy_out(
        ctx,
        Object::Process(process).into_default_handle(),
        proc_out,
    )?;
    if let Err(status) = add_and_copy_out(ctx, Object::Vmar(root).into_default_handle(), vmar_out) {
        remove_quietly(ctx, proc_value);
        return Err(status);
    }
    Ok(())
}

/// `zx_thread_create(process, *name, name_size, options, *out)`: options must be 0
/// (`ZX_ERR_INVALID_ARGS`), then the name, then the process handle with `ZX_RIGHT_MANAGE_THREAD`.
pub fn thread_create(
    ctx: &mut dyn SyscallContext,
    process: u32,
    name: usize,
    name_len: usize,
    options: u32,
    out: UserOut<u32>,
) -> ZxResult {
    if options != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let name = copy_name(ctx, name, name_len)?;
    let (process, _) = lookup(ctx, process, ZX_RIGHT_MANAGE_THREAD, Object::as_process)?;
    let thread = ctx.thread_create(&process, &name)?;
    add_and_copy_out(ctx, Object::Thread(thread).into_default_handle(), out).map(drop)
}

/// Adds `handles` to `table` in order; on failure removes those already added.
fn add_all(table: &mut ObjectTable, handles: Vec<ObjectHandle>) -> Result<Vec<u32>, Status> {
    let mut values = Vec::with_capacity(handles.len());
    for handle in handles {
        match table.add(handle) {
            Ok(value) => values.push(value),
            Err(status) => {
                for value in values {
                    let _ = table.remove(value);
                }
                return Err(status);
            }
        }
    }
    Ok(values)
}

/// `zx_process_start(process, thread, entry, stack, arg1, arg2)`, in Zircon's order:
/// 1. `process` with `ZX_RIGHT_WRITE`, then `thread` with `ZX_RIGHT_WRITE` (BAD_HANDLE /
///    WRONG_TYPE / ACCESS_DENIED); on failure `arg1` is closed;
/// 2. `arg1` is taken out of the caller's table — **consumed whatever happens next** (Zircon:
///    "If zx_process_start() returns an error, arg1 is closed rather than transferred"). A value
///    that names no handle is treated as `ZX_HANDLE_INVALID`, as Zircon's `RemoveHandle` does;
/// 3. the thread does not belong to the process: `ZX_ERR_ACCESS_DENIED`;
/// 4. `arg1` lacks `ZX_RIGHT_TRANSFER`: `ZX_ERR_ACCESS_DENIED`;
/// 5. the startup handles (process, root VMAR, thread; default rights) are made
///    (`ZX_ERR_BAD_STATE` for a dead process: its address space, so its root VMAR, is gone);
///    they and `arg1` go into the new process's table, then [`SyscallContext::process_start`]
///    (`ZX_ERR_BAD_STATE` when already started or dying); if that fails they are removed again.
pub fn process_start(
    ctx: &mut dyn SyscallContext,
    process: u32,
    thread: u32,
    entry: usize,
    stack: usize,
    arg1: u32,
    arg2: u64,
) -> ZxResult {
    let take_arg = |ctx: &mut dyn SyscallContext| -> Option<ObjectHandle> {
        if arg1 == ZX_HANDLE_INVALID {
            None
        } else {
            with_table(ctx, |table| table.remove(arg1).ok())
        }
    };
    let process = match lookup(ctx, process, ZX_RIGHT_WRITE, Object::as_process) {
        Ok((process, _)) => process,
        Err(status) => {
            drop(take_arg(ctx));
            return Err(status);
        }
    };
    let thread = match lookup(ctx, thread, ZX_RIGHT_WRITE, Object::as_thread) {
        Ok((thread, _)) => thread,
        Err(status) => {
            drop(take_arg(ctx));
            return Err(status);
        }
    };
    let arg = take_arg(ctx);
    if thread.process_koid() != process.koid() {
        return Err(Status::ERR_ACCESS_DENIED);
    }
    if arg
        .as_ref()
        .is_some_and(|a| !a.has_rights(ZX_RIGHT_TRANSFER))
    {
        return Err(Status::ERR_ACCESS_DENIED);
    }
    let startup = StartupHandles::new(&process, &thread)?;
    let has_arg = arg.is_some();
    let mut handles: Vec<ObjectHandle> = arg.into_iter().collect();
    handles.extend([startup.process, startup.root_vmar, startup.thread]);
    let values = with_process_table(&*process, |table| add_all(table, handles))?;
    let (arg1_value, rest) = if has_arg {
        (values[0], &values[1..])
    } else {
        (ZX_HANDLE_INVALID, &values[..])
    };
    let start = ProcessStart {
        entry,
        stack,
        arg1: arg1_value,
        arg2,
        process: rest[0],
        root_vmar: rest[1],
        thread: rest[2],
    };
    if let Err(status) = ctx.process_start(&process, &thread, &start) {
        let removed: Vec<ObjectHandle> = with_process_table(&*process, |table| {
            values
                .iter()
                .filter_map(|&v| table.remove(v).ok())
                .collect()
        });
        drop(removed);
        return Err(status);
    }
    Ok(())
}

/// `zx_thread_start(thread, entry, stack, arg1, arg2)`: the thread handle needs
/// `ZX_RIGHT_MANAGE_THREAD`; the rest is [`SyscallContext::thread_start`].
pub fn thread_start(
    ctx: &mut dyn SyscallContext,
    thread: u32,
    entry: usize,
    stack: usize,
    arg1: u64,
    arg2: u64,
) -> ZxResult {
    let (thread, _) = lookup(ctx, thread, ZX_RIGHT_MANAGE_THREAD, Object::as_thread)?;
    ctx.thread_start(&thread, entry, stack, arg1, arg2)
}

/// `zx_process_exit(retcode)`: the calling process ends ([`SyscallContext::process_exit`]);
/// the dispatcher returns [`crate::NO_RETURN`].
pub fn process_exit(ctx: &mut dyn SyscallContext, retcode: i64) {
    ctx.process_exit(retcode);
}

/// `zx_thread_exit()`: the calling thread ends ([`SyscallContext::thread_exit`]); the
/// dispatcher returns [`crate::NO_RETURN`].
pub fn thread_exit(ctx: &mut dyn SyscallContext) {
    ctx.thread_exit();
}

/// `zx_task_kill(task)`: `ZX_RIGHT_DESTROY` is checked before the type (Zircon looks the handle
/// up untyped); a process is killed (`ZX_OK` even if already dead); anything else — threads
/// included, as in current Zircon — is `ZX_ERR_WRONG_TYPE`.
pub fn task_kill(ctx: &mut dyn SyscallContext, task: u32) -> ZxResult {
    let (object, _) = lookup_any(ctx, task, ZX_RIGHT_DESTROY)?;
    match object {
        Object::Process(process) => {
            ctx.process_kill(&process);
            Ok(())
        }
        _ => Err(Status::ERR_WRONG_TYPE),
    }
}

/// `zx_object_wait_one(handle, signals, deadline, *observed)`: `ZX_RIGHT_WAIT` needed
/// (BAD_HANDLE, ACCESS_DENIED); then [`SyscallContext::object_wait_one`] blocks; `observed`
/// (optional) receives the signals seen at the end even on `ZX_ERR_TIMED_OUT`; a failed copy is
/// `ZX_ERR_INVALID_ARGS`.
pub fn wait_one(
    ctx: &mut dyn SyscallContext,
    handle: u32,
    signals: u32,
    deadline: i64,
    observed: UserOut<u32>,
) -> ZxResult {
    let (object, _) = lookup_any(ctx, handle, ZX_RIGHT_WAIT)?;
    let (result, seen) = ctx.object_wait_one(&object, signals, deadline);
    observed.write_if_nonnull(ctx.user_memory(), &seen)?;
    result
}

fn check_debug_buffer(buffer: usize, len: usize) -> ZxResult {
    if buffer == 0 || len == 0 || len > MAX_DEBUG_BLOCK {
        return Err(Status::ERR_INVALID_ARGS);
    }
    Ok(())
}

fn process_for_debug(
    ctx: &mut dyn SyscallContext,
    process: u32,
    rights: u32,
) -> Result<Arc<dyn crate::ProcessObject>, Status> {
    lookup(ctx, process, rights, Object::as_process).map(|(p, _)| p)
}

/// `ZX_ERR_ACCESS_DENIED` unless the kernel command line enabled the debugging syscalls (checked
/// before anything else, as Zircon's switch is; Zircon answers NOT_SUPPORTED for a disabled
/// `write_memory` and does not gate `read_memory`, see docs/conformance.md).
fn debugging_enabled(ctx: &dyn SyscallContext) -> ZxResult {
    if ctx.debugging_syscalls_enabled() {
        Ok(())
    } else {
        Err(Status::ERR_ACCESS_DENIED)
    }
}

/// `zx_process_read_memory(process, vaddr, *buffer, len, *actual)`: the debugging switch
/// (`debugging_enabled`); null buffer, `len` 0 or
/// above [`MAX_DEBUG_BLOCK`]: `ZX_ERR_INVALID_ARGS`; the handle needs READ and WRITE; reads from
/// the one mapping at `vaddr` (at most [`DEBUG_COPY_CHUNK`] bytes), then copies out; `actual`
/// is required.
pub fn read_memory(
    ctx: &mut dyn SyscallContext,
    process: u32,
    vaddr: usize,
    buffer: usize,
    len: usize,
    actual: UserOut<usize>,
) -> ZxResult {
    debugging_enabled(ctx)?;
    check_debug_buffer(buffer, len)?;
    let process = process_for_debug(ctx, process, ZX_RIGHT_READ | ZX_RIGHT_WRITE)?;
    let mut chunk = vec![0u8; len.min(DEBUG_COPY_CHUNK)];
    let got = ctx.process_read_memory(&process, vaddr, &mut chunk)?;
    let got = got.min(chunk.len());
    UserOutBuffer::new(buffer, len).write_at(ctx.user_memory(), 0, &chunk[..got])?;
    actual.write(ctx.user_memory(), &got)
}

/// `zx_process_write_memory(process, vaddr, *buffer, len, *actual)`: like [`read_memory`] (the
/// debugging switch first), the handle needing only WRITE; the source bytes are copied in before the target is touched.
pub fn write_memory(
    ctx: &mut dyn SyscallContext,
    process: u32,
    vaddr: usize,
    buffer: usize,
    len: usize,
    actual: UserOut<usize>,
) -> ZxResult {
    debugging_enabled(ctx)?;
    check_debug_buffer(buffer, len)?;
    let process = process_for_debug(ctx, process, ZX_RIGHT_WRITE)?;
    let mut chunk = vec![0u8; len.min(DEBUG_COPY_CHUNK)];
    UserInBuffer::new(buffer, len).read_at(ctx.user_memory(), 0, &mut chunk)?;
    let done = ctx.process_write_memory(&process, vaddr, &chunk)?;
    actual.write(ctx.user_memory(), &done.min(chunk.len()))
}
