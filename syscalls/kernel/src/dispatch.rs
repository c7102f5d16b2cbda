//! [`dispatch`]: syscall number + raw register arguments -> the `sys_*` handler -> `rax`.
//!
//! Arguments arrive as the eight 64-bit registers of the calling convention
//! (`abi::syscall_numbers`). Each is narrowed to the C type of the parameter the way the C ABI
//! does: handles, options and `uint32_t` values take the low 32 bits (the upper half of a
//! register carrying a 32-bit argument is unspecified in the SysV ABI, so it is ignored, never
//! rejected), sizes and addresses are 64-bit. Nothing is read from user memory to decode them.

use abi::syscall_numbers::*;
use abi::{Status, ZxResult};

use crate::context::SyscallContext;
use crate::sys;
use crate::user_ptr::UserOut;

/// What [`dispatch`] returns for `zx_process_exit` / `zx_thread_exit`. No user code ever sees
/// it: the kernel checks its own thread state after every dispatch (the exit methods of
/// [`SyscallContext`] marked the thread dying) and does not return to user mode.
pub const NO_RETURN: i64 = i64::MIN;

fn status(result: ZxResult) -> i64 {
    match result {
        Ok(()) => 0,
        Err(status) => i64::from(status.into_raw()),
    }
}

/// Low 32 bits: a `zx_handle_t`, options or another `uint32_t` argument.
fn u32_arg(raw: u64) -> u32 {
    raw as u32
}

/// A `size_t` / `zx_vaddr_t` / pointer argument (64-bit on x86_64).
fn usize_arg(raw: u64) -> usize {
    raw as usize
}

/// Runs system call `number` for the thread `ctx` stands for and returns the value for `rax`:
/// a `zx_status_t` (sign-extended), or the value of `zx_ticks_get` / `zx_ticks_per_second` /
/// `zx_clock_get_monotonic`, or [`NO_RETURN`].
///
/// An unknown number is `ZX_ERR_BAD_SYSCALL`. No argument value can make this function panic.
pub fn dispatch(ctx: &mut dyn SyscallContext, number: u64, args: &[u64; 8]) -> i64 {
    let Ok(number) = u32::try_from(number) else {
        return status(Err(Status::ERR_BAD_SYSCALL));
    };
    // Endpoints left behind outside a syscall (by a thread's exit, which never returns here)
    // are freed before this call looks at any object.
    crate::channel::drain_pending(|| ctx.preempt_point());
    let [a0, a1, a2, a3, a4, a5, a6, a7] = *args;
    let h = u32_arg;
    let u = usize_arg;
    let r = match number {
        ZX_SYS_VMAR_ALLOCATE => sys::vmar::allocate(
            ctx,
            h(a0),
            u32_arg(a1),
            u(a2),
            u(a3),
            UserOut::new(u(a4)),
            UserOut::new(u(a5)),
        ),
        ZX_SYS_VMAR_MAP => sys::vmar::map(
            ctx,
            h(a0),
            u32_arg(a1),
            u(a2),
            h(a3),
            a4,
            u(a5),
            UserOut::new(u(a6)),
        ),
        ZX_SYS_VMAR_UNMAP => sys::vmar::unmap(ctx, h(a0), u(a1), u(a2)),
        ZX_SYS_VMAR_PROTECT => sys::vmar::protect(ctx, h(a0), u32_arg(a1), u(a2), u(a3)),
        ZX_SYS_VMAR_DESTROY => sys::vmar::destroy(ctx, h(a0)),
        ZX_SYS_VMAR_OP_RANGE => {
            sys::vmar::op_range(ctx, h(a0), u32_arg(a1), u(a2), u(a3), u(a4), u(a5))
        }
        ZX_SYS_VMO_CREATE => sys::vmo::create(ctx, a0, u32_arg(a1), UserOut::new(u(a2))),
        ZX_SYS_VMO_READ => sys::vmo::read(ctx, h(a0), u(a1), a2, u(a3)),
        ZX_SYS_VMO_WRITE => sys::vmo::write(ctx, h(a0), u(a1), a2, u(a3)),
        ZX_SYS_VMO_GET_SIZE => sys::vmo::get_size(ctx, h(a0), UserOut::new(u(a1))),
        ZX_SYS_VMO_SET_SIZE => sys::vmo::set_size(ctx, h(a0), a1),
        ZX_SYS_VMO_OP_RANGE => sys::vmo::op_range(ctx, h(a0), u32_arg(a1), a2, a3, u(a4), u(a5)),
        ZX_SYS_VMO_REPLACE_AS_EXECUTABLE => {
            sys::vmo::replace_as_executable(ctx, h(a0), h(a1), UserOut::new(u(a2)))
        }
        ZX_SYS_HANDLE_CLOSE => sys::handle::close(ctx, h(a0)),
        ZX_SYS_HANDLE_DUPLICATE => {
            sys::handle::duplicate(ctx, h(a0), u32_arg(a1), UserOut::new(u(a2)))
        }
        ZX_SYS_HANDLE_REPLACE => sys::handle::replace(ctx, h(a0), u32_arg(a1), UserOut::new(u(a2))),
        ZX_SYS_OBJECT_GET_INFO => sys::info::get_info(
            ctx,
            h(a0),
            u32_arg(a1),
            u(a2),
            u(a3),
            UserOut::new(u(a4)),
            UserOut::new(u(a5)),
        ),
        ZX_SYS_OBJECT_WAIT_ONE => {
            sys::task::wait_one(ctx, h(a0), u32_arg(a1), a2 as i64, UserOut::new(u(a3)))
        }
        ZX_SYS_PROCESS_CREATE => sys::task::process_create(
            ctx,
            h(a0),
            u(a1),
            u(a2),
            u32_arg(a3),
            UserOut::new(u(a4)),
            UserOut::new(u(a5)),
        ),
        ZX_SYS_PROCESS_START => {
            sys::task::process_start(ctx, h(a0), h(a1), u(a2), u(a3), h(a4), a5)
        }
        ZX_SYS_THREAD_CREATE => {
            sys::task::thread_create(ctx, h(a0), u(a1), u(a2), u32_arg(a3), UserOut::new(u(a4)))
        }
        ZX_SYS_THREAD_START => sys::task::thread_start(ctx, h(a0), u(a1), u(a2), a3, a4),
        ZX_SYS_PROCESS_EXIT => {
            ctx.process_exit(a0 as i64);
            return NO_RETURN;
        }
        ZX_SYS_THREAD_EXIT => {
            ctx.thread_exit();
            return NO_RETURN;
        }
        ZX_SYS_TASK_KILL => sys::task::task_kill(ctx, h(a0)),
        ZX_SYS_PROCESS_READ_MEMORY => {
            sys::task::read_memory(ctx, h(a0), u(a1), u(a2), u(a3), UserOut::new(u(a4)))
        }
        ZX_SYS_PROCESS_WRITE_MEMORY => {
            sys::task::write_memory(ctx, h(a0), u(a1), u(a2), u(a3), UserOut::new(u(a4)))
        }
        ZX_SYS_DEBUG_WRITE => sys::misc::debug_write(ctx, u(a0), u(a1)),
        ZX_SYS_TICKS_GET => return ctx.ticks_get(),
        ZX_SYS_TICKS_PER_SECOND => return ctx.ticks_per_second(),
        ZX_SYS_CLOCK_GET_MONOTONIC => return ctx.clock_get_monotonic(),
        ZX_SYS_DEBUG_KERNEL_STATS => sys::misc::debug_kernel_stats(ctx, u(a0), u(a1)),
        ZX_SYS_DEBUG_IRQOFF_STATS => sys::misc::debug_irqoff_stats(ctx, u(a0), u(a1), u32_arg(a2)),
        ZX_SYS_SYSTEM_GET_FEATURES => {
            sys::misc::system_get_features(ctx, u32_arg(a0), UserOut::new(u(a1)))
        }
        ZX_SYS_CHANNEL_CREATE => {
            sys::channel::create(ctx, u32_arg(a0), UserOut::new(u(a1)), UserOut::new(u(a2)))
        }
        ZX_SYS_CHANNEL_READ => sys::channel::read(
            ctx,
            h(a0),
            u32_arg(a1),
            u(a2),
            u(a3),
            u32_arg(a4),
            u32_arg(a5),
            UserOut::new(u(a6)),
            UserOut::new(u(a7)),
        ),
        ZX_SYS_CHANNEL_WRITE => sys::channel::write(
            ctx,
            h(a0),
            u32_arg(a1),
            u(a2),
            u32_arg(a3),
            u(a4),
            u32_arg(a5),
        ),
        ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL => {
            sys::exception::create_exception_channel(ctx, h(a0), u32_arg(a1), UserOut::new(u(a2)))
        }
        ZX_SYS_THREAD_READ_STATE => {
            sys::exception::read_state(ctx, h(a0), u32_arg(a1), u(a2), u(a3))
        }
        ZX_SYS_THREAD_WRITE_STATE => {
            sys::exception::write_state(ctx, h(a0), u32_arg(a1), u(a2), u(a3))
        }
        ZX_SYS_OBJECT_GET_PROPERTY => {
            sys::exception::get_property(ctx, h(a0), u32_arg(a1), u(a2), u(a3))
        }
        ZX_SYS_OBJECT_SET_PROPERTY => {
            sys::exception::set_property(ctx, h(a0), u32_arg(a1), u(a2), u(a3))
        }
        ZX_SYS_EXCEPTION_GET_THREAD => {
            sys::exception::exception_get_task(ctx, h(a0), false, UserOut::new(u(a1)))
        }
        ZX_SYS_EXCEPTION_GET_PROCESS => {
            sys::exception::exception_get_task(ctx, h(a0), true, UserOut::new(u(a1)))
        }
        n if n < ZX_SYS_COUNT => Err(Status::ERR_NOT_SUPPORTED),
        _ => Err(Status::ERR_BAD_SYSCALL),
    };
    // Endpoints this call closed or dropped beyond one drain step's budget are freed now, with
    // preemption points (no lock is held here).
    crate::channel::drain_pending(|| ctx.preempt_point());
    status(r)
}
