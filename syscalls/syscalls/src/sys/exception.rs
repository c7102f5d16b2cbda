//! Exceptions and thread state: `zx_task_create_exception_channel`, `zx_exception_get_thread` /
//! `get_process` (`zircon/kernel/lib/syscalls/exceptions.cc`), `zx_object_get_property` /
//! `set_property` (`object.cc`), `zx_thread_read_state` / `write_state` (`task.cc` +
//! `ThreadDispatcher::{Read,Write}StateGeneric`).
//!
//! - create_exception_channel: options other than `ZX_EXCEPTION_CHANNEL_DEBUGGER`
//!   `ZX_ERR_INVALID_ARGS`; the task looked up untyped with INSPECT | DUPLICATE | TRANSFER |
//!   MANAGE_THREAD (BAD_HANDLE, then ACCESS_DENIED); a thread with DEBUGGER `INVALID_ARGS`; a
//!   process needs ENUMERATE too (`ACCESS_DENIED`); other types `WRONG_TYPE`. A process debugger
//!   channel is `ZX_ERR_NOT_SUPPORTED` here (no debugger exceptions). The task handle's rights
//!   become the rights of the thread / process handles the exceptions hand out (a thread's
//!   channel gives no process handle). The user endpoint has READ | WAIT | TRANSFER only.
//! - get_thread / get_process: any exception handle (no right needed, as Zircon's
//!   `GetDispatcher`); `ZX_ERR_ACCESS_DENIED` when the channel gave no such rights.
//! - properties: a null value `INVALID_ARGS`, then the handle with GET/SET_PROPERTY (untyped),
//!   then per property: `ZX_PROP_NAME` (get: at least 32 bytes else `BUFFER_TOO_SMALL`; set:
//!   the first `min(size, 31)` bytes become the name of a process or thread, other objects
//!   `NOT_SUPPORTED`), `ZX_PROP_EXCEPTION_STATE` /
//!   `ZX_PROP_EXCEPTION_STRATEGY` (4 bytes else `BUFFER_TOO_SMALL`, not an exception
//!   `WRONG_TYPE`, bad value `INVALID_ARGS`; setting the strategy is `BAD_STATE` since no
//!   debugger holds the exception), `ZX_PROP_VMO_CONTENT_SIZE` (8 bytes else `BUFFER_TOO_SMALL`,
//!   not a VMO `WRONG_TYPE`; set needs WRITE too, `ACCESS_DENIED` before the other checks, takes
//!   any `u64` and zeroes the VMO's bytes from it to the end, as in Zircon); everything else
//!   `NOT_SUPPORTED`.
//! - thread state: the thread with READ (read) / WRITE (write); kinds other than
//!   `ZX_THREAD_STATE_GENERAL_REGS` `NOT_SUPPORTED` (FP/vector/debug/single-step, known to
//!   Zircon) or `INVALID_ARGS` (unknown); a buffer under 160 bytes `BUFFER_TOO_SMALL`; then
//!   `BAD_STATE` unless the thread is stopped in an exception. Write copies the registers in
//!   before the state check (Zircon's order) and validates them (`ThreadExceptionState::set_regs`).

use abi::default_rights::ZX_DEFAULT_CHANNEL_RIGHTS;
use abi::exception::exception_state::{
    ZX_EXCEPTION_CHANNEL_DEBUGGER, ZX_EXCEPTION_STRATEGY_FIRST_CHANCE,
};
use abi::exception::thread_state::{
    ZX_THREAD_STATE_DEBUG_REGS, ZX_THREAD_STATE_FP_REGS, ZX_THREAD_STATE_GENERAL_REGS,
    ZX_THREAD_STATE_SINGLE_STEP, ZX_THREAD_STATE_VECTOR_REGS,
};
use abi::exception::GeneralRegs;
use abi::info::ZX_MAX_NAME_LEN;
use abi::props::{
    ZX_PROP_EXCEPTION_STATE, ZX_PROP_EXCEPTION_STRATEGY, ZX_PROP_NAME, ZX_PROP_VMO_CONTENT_SIZE,
};
use abi::rights::*;
use abi::wire::Wire;
use abi::{Status, ZxResult};

use super::{add_and_copy_out, lookup, lookup_any};
use crate::channel::ChannelEndpoint;
use crate::context::{with_table, SyscallContext};
use crate::object::Object;
use crate::user_ptr::{UserIn, UserInBuffer, UserOut, UserOutBuffer};

/// `zx_task_create_exception_channel(task, options, *out)`.
pub fn create_exception_channel(
    ctx: &mut dyn SyscallContext,
    task: u32,
    options: u32,
    out: UserOut<u32>,
) -> ZxResult {
    if options & !ZX_EXCEPTION_CHANNEL_DEBUGGER != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let debugger = options & ZX_EXCEPTION_CHANNEL_DEBUGGER != 0;
    let (object, task_rights) = lookup_any(
        ctx,
        task,
        ZX_RIGHT_INSPECT | ZX_RIGHT_DUPLICATE | ZX_RIGHT_TRANSFER | ZX_RIGHT_MANAGE_THREAD,
    )?;
    let (kernel_end, user_end) = ChannelEndpoint::create_pair();
    let account = with_table(ctx, |t| t.account().cloned());
    match &object {
        Object::Thread(t) => {
            if debugger {
                return Err(Status::ERR_INVALID_ARGS);
            }
            t.exception_port()
                .bind(kernel_end, task_rights, 0, account)?;
        }
        Object::Process(p) => {
            if task_rights & ZX_RIGHT_ENUMERATE == 0 {
                return Err(Status::ERR_ACCESS_DENIED);
            }
            if debugger {
                return Err(Status::ERR_NOT_SUPPORTED);
            }
            p.exception_port()
                .bind(kernel_end, task_rights, task_rights, account)?;
        }
        _ => return Err(Status::ERR_WRONG_TYPE),
    }
    let rights = ZX_DEFAULT_CHANNEL_RIGHTS & (ZX_RIGHT_TRANSFER | ZX_RIGHT_WAIT | ZX_RIGHT_READ);
    // As in Zircon, a failed copy-out leaves the port bound to a channel whose user end is gone,
    // which counts as unbound.
    add_and_copy_out(ctx, Object::Channel(user_end).into_handle(rights), out).map(drop)
}

/// `zx_exception_get_thread(exception, *out)`: a handle to the thread that took the exception.
pub fn exception_get_thread(
    ctx: &mut dyn SyscallContext,
    exception: u32,
    out: UserOut<u32>,
) -> ZxResult {
    exception_get_task(ctx, exception, false, out)
}

/// `zx_exception_get_process(exception, *out)`: a handle to the process of the thread that
/// took the exception.
pub fn exception_get_process(
    ctx: &mut dyn SyscallContext,
    exception: u32,
    out: UserOut<u32>,
) -> ZxResult {
    exception_get_task(ctx, exception, true, out)
}

/// [`exception_get_thread`] (`process = false`) and [`exception_get_process`]
/// (`process = true`).
fn exception_get_task(
    ctx: &mut dyn SyscallContext,
    exception: u32,
    process: bool,
    out: UserOut<u32>,
) -> ZxResult {
    let (exception, _) = lookup(ctx, exception, 0, Object::as_exception)?;
    let (object, rights) = if process {
        exception.process_handle()?
    } else {
        exception.thread_handle()?
    };
    add_and_copy_out(ctx, object.into_handle(rights), out).map(drop)
}

/// The checks both property calls make first, in Zircon's order: a null `value` is
/// INVALID_ARGS, then the handle must carry `right` (GET_PROPERTY or SET_PROPERTY). Returns the
/// object and the handle's rights.
fn property_target(
    ctx: &mut dyn SyscallContext,
    handle: u32,
    value: usize,
    right: u32,
) -> ZxResult<(Object, u32)> {
    if value == 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    lookup_any(ctx, handle, right)
}

/// `zx_object_get_property(handle, property, *value, value_size)`.
pub fn get_property(
    ctx: &mut dyn SyscallContext,
    handle: u32,
    property: u32,
    value: usize,
    size: usize,
) -> ZxResult {
    let (object, _) = property_target(ctx, handle, value, ZX_RIGHT_GET_PROPERTY)?;
    let out = UserOutBuffer::new(value, size);
    match property {
        ZX_PROP_NAME => {
            if size < ZX_MAX_NAME_LEN {
                return Err(Status::ERR_BUFFER_TOO_SMALL);
            }
            let name = match &object {
                Object::Process(p) => p.name(),
                Object::Thread(t) => t.name(),
                Object::Vmo(v) => v.name(),
                _ => [0; ZX_MAX_NAME_LEN],
            };
            out.write_at(ctx.user_memory(), 0, &name)
        }
        ZX_PROP_EXCEPTION_STATE | ZX_PROP_EXCEPTION_STRATEGY => {
            if size < 4 {
                return Err(Status::ERR_BUFFER_TOO_SMALL);
            }
            let exception = object.as_exception().ok_or(Status::ERR_WRONG_TYPE)?;
            let v = if property == ZX_PROP_EXCEPTION_STATE {
                exception.state()
            } else {
                ZX_EXCEPTION_STRATEGY_FIRST_CHANCE
            };
            out.write_at(ctx.user_memory(), 0, &v.to_le_bytes())
        }
        ZX_PROP_VMO_CONTENT_SIZE => {
            if size < 8 {
                return Err(Status::ERR_BUFFER_TOO_SMALL);
            }
            let vmo = object.as_vmo().ok_or(Status::ERR_WRONG_TYPE)?;
            out.write_at(ctx.user_memory(), 0, &vmo.content_size().to_le_bytes())
        }
        _ => Err(Status::ERR_NOT_SUPPORTED),
    }
}

/// `zx_object_set_property(handle, property, *value, value_size)`.
pub fn set_property(
    ctx: &mut dyn SyscallContext,
    handle: u32,
    property: u32,
    value: usize,
    size: usize,
) -> ZxResult {
    let (object, rights) = property_target(ctx, handle, value, ZX_RIGHT_SET_PROPERTY)?;
    match property {
        ZX_PROP_NAME => {
            // Zircon: at most 31 bytes are taken; a bad buffer is INVALID_ARGS.
            let len = size.min(ZX_MAX_NAME_LEN - 1);
            let mut name = [0u8; ZX_MAX_NAME_LEN - 1];
            UserInBuffer::new(value, len).read_at(ctx.user_memory(), 0, &mut name[..len])?;
            match &object {
                Object::Process(p) => p.set_name(&name[..len]),
                Object::Thread(t) => t.set_name(&name[..len]),
                Object::Vmo(v) => {
                    v.set_name(&name[..len]);
                    Ok(())
                }
                _ => Err(Status::ERR_NOT_SUPPORTED),
            }
        }
        ZX_PROP_EXCEPTION_STATE | ZX_PROP_EXCEPTION_STRATEGY => {
            if size < 4 {
                return Err(Status::ERR_BUFFER_TOO_SMALL);
            }
            let exception = object.as_exception().ok_or(Status::ERR_WRONG_TYPE)?;
            if property == ZX_PROP_EXCEPTION_STRATEGY {
                // Zircon: only an exception held through a debugger channel has a strategy.
                return Err(Status::ERR_BAD_STATE);
            }
            let v: u32 = UserIn::new(value).read(ctx.user_memory())?;
            exception.set_state(v)
        }
        ZX_PROP_VMO_CONTENT_SIZE => {
            // ZIRCON: WRITE is needed besides SET_PROPERTY, checked before the size and the type
            // (`sys_object_set_property` in zircon/kernel/lib/syscalls/object.cc).
            if rights & ZX_RIGHT_WRITE == 0 {
                return Err(Status::ERR_ACCESS_DENIED);
            }
            if size < 8 {
                return Err(Status::ERR_BUFFER_TOO_SMALL);
            }
            let vmo = object.as_vmo().ok_or(Status::ERR_WRONG_TYPE)?;
            let mut bytes = [0u8; 8];
            UserInBuffer::new(value, 8).read_at(ctx.user_memory(), 0, &mut bytes)?;
            let content = u64::from_le_bytes(bytes);
            vmo.set_content_size(content);
            // ZIRCON: the bytes from the new content size to the VMO's end read as zeros
            // (`VmObjectDispatcher::SetContentSize`); a failure there (the VMO shrank
            // meanwhile) is not reported. A value at or past the end zeroes nothing.
            let len = vmo.size();
            if content < len {
                let _ = super::vmo::zero_range(ctx, &vmo, content, len - content);
            }
            Ok(())
        }
        _ => Err(Status::ERR_NOT_SUPPORTED),
    }
}

/// The kind check shared by read and write state.
fn check_kind(kind: u32) -> ZxResult {
    match kind {
        ZX_THREAD_STATE_GENERAL_REGS => Ok(()),
        ZX_THREAD_STATE_FP_REGS
        | ZX_THREAD_STATE_VECTOR_REGS
        | ZX_THREAD_STATE_DEBUG_REGS
        | ZX_THREAD_STATE_SINGLE_STEP => Err(Status::ERR_NOT_SUPPORTED),
        _ => Err(Status::ERR_INVALID_ARGS),
    }
}

/// `zx_thread_read_state(thread, kind, *buffer, buffer_size)`.
pub fn read_state(
    ctx: &mut dyn SyscallContext,
    thread: u32,
    kind: u32,
    buffer: usize,
    size: usize,
) -> ZxResult {
    let (thread, _) = lookup(ctx, thread, ZX_RIGHT_READ, Object::as_thread)?;
    check_kind(kind)?;
    if size < GeneralRegs::SIZE {
        return Err(Status::ERR_BUFFER_TOO_SMALL);
    }
    let regs = thread.exception_state().get()?.regs;
    let mut bytes = [0u8; GeneralRegs::SIZE];
    regs.encode(&mut bytes);
    UserOutBuffer::new(buffer, GeneralRegs::SIZE).write_at(ctx.user_memory(), 0, &bytes)
}

/// `zx_thread_write_state(thread, kind, *buffer, buffer_size)`.
pub fn write_state(
    ctx: &mut dyn SyscallContext,
    thread: u32,
    kind: u32,
    buffer: usize,
    size: usize,
) -> ZxResult {
    let (thread, _) = lookup(ctx, thread, ZX_RIGHT_WRITE, Object::as_thread)?;
    check_kind(kind)?;
    if size < GeneralRegs::SIZE {
        return Err(Status::ERR_BUFFER_TOO_SMALL);
    }
    let mut bytes = [0u8; GeneralRegs::SIZE];
    UserInBuffer::new(buffer, GeneralRegs::SIZE).read_at(ctx.user_memory(), 0, &mut bytes)?;
    let user_limit = ctx.user_memory().user_limit() as u64;
    thread
        .exception_state()
        .set_regs(&GeneralRegs::decode(&bytes), user_limit)
}
