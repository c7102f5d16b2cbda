//! [`dispatch`]: syscall number + raw register arguments -> the `sys_*` handler -> `rax`.
//!
//! The decoding and the calls are generated from the syscall table (`abi::syscall_table!`, see
//! `abi::syscall_numbers`): each row's parameter kinds say how its registers are decoded, its
//! handler path is the function called, its `returns` how the result reaches `rax`.
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

/// The argument registers of one call, read in parameter order.
struct Registers<'a> {
    regs: &'a [u64; MAX_ARGS],
    /// How many registers were read so far (the next one's index).
    read: usize,
}

impl Registers<'_> {
    /// The next argument register (0 past the eighth; no table row has more than eight).
    fn next(&mut self) -> u64 {
        let raw = self.regs.get(self.read).copied().unwrap_or(0);
        self.read += 1;
        raw
    }
}

/// The value of one parameter of a table row, decoded from the next register by its kind.
macro_rules! decode {
    ($regs:ident, handle) => {
        u32_arg($regs.next())
    };
    ($regs:ident, u32) => {
        u32_arg($regs.next())
    };
    ($regs:ident, usize) => {
        usize_arg($regs.next())
    };
    ($regs:ident, ptr) => {
        usize_arg($regs.next())
    };
    ($regs:ident, u64) => {
        $regs.next()
    };
    ($regs:ident, i64) => {
        $regs.next() as i64
    };
    ($regs:ident, out<$t:ident>) => {
        UserOut::<$t>::new(usize_arg($regs.next()))
    };
}

/// What a handler's result means for `rax`.
enum Returned {
    /// A status: the pending channel endpoints are drained, then it is `rax`.
    Status(ZxResult),
    /// A value that is `rax` as it is.
    Value(i64),
    /// The thread or process ends: [`NO_RETURN`].
    NoReturn,
}

/// A handler's result by its row's `returns`.
macro_rules! returned {
    (status, $call:expr) => {
        Returned::Status($call)
    };
    (value, $call:expr) => {
        Returned::Value($call)
    };
    (noreturn, $call:expr) => {{
        let () = $call;
        Returned::NoReturn
    }};
}

/// Callback of `abi::syscall_table!`: [`call`], one arm per row that decodes the row's
/// parameters and calls its handler.
macro_rules! dispatch_table {
    ($(
        $(#[$doc:meta])*
        $nr:literal $name:ident = $call:ident ( $($param:ident : $kind:ident $(<$t:ident>)?),* )
            -> $ret:ident => $handler:path $([$($attr:ident),*])?;
    )*) => {
        /// Decodes the arguments of syscall `number` from `regs` and calls its handler.
        #[inline]
        fn call(ctx: &mut dyn SyscallContext, number: u32, regs: &mut Registers) -> Returned {
            match number {
                $(
                    $name => returned!($ret, $handler(ctx, $(decode!(regs, $kind $(<$t>)?)),*)),
                )*
                // A number of the table without an arm (every row has one; the table is dense).
                n if n < ZX_SYS_COUNT => Returned::Status(Err(Status::ERR_NOT_SUPPORTED)),
                _ => Returned::Status(Err(Status::ERR_BAD_SYSCALL)),
            }
        }
    };
}

abi::syscall_table!(dispatch_table);

/// Runs system call `number` for the thread `ctx` stands for and returns the value for `rax`:
/// a `zx_status_t` (sign-extended), or the value of `zx_ticks_get` / `zx_ticks_per_second` /
/// `zx_clock_get_monotonic`, or [`NO_RETURN`].
///
/// An unknown number is `ZX_ERR_BAD_SYSCALL`. No argument value can make this function panic.
pub fn dispatch(ctx: &mut dyn SyscallContext, number: u64, args: &[u64; 8]) -> i64 {
    dispatch_counted(ctx, number, args).rax
}

/// What [`dispatch_counted`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatched {
    /// The value for `rax`, as [`dispatch`] returns it.
    pub rax: i64,
    /// How many argument registers the call decoded (0 for an unknown number).
    pub registers_decoded: usize,
}

/// [`dispatch`], also saying how many argument registers the call decoded (host tests compare
/// that with the table's argument count).
#[inline]
pub fn dispatch_counted(ctx: &mut dyn SyscallContext, number: u64, args: &[u64; 8]) -> Dispatched {
    let Ok(number) = u32::try_from(number) else {
        return Dispatched {
            rax: status(Err(Status::ERR_BAD_SYSCALL)),
            registers_decoded: 0,
        };
    };
    // Endpoints left behind outside a syscall (by a thread's exit, which never returns here)
    // are freed before this call looks at any object.
    crate::channel::drain_pending(|| ctx.preempt_point());
    let mut regs = Registers {
        regs: args,
        read: 0,
    };
    let rax = match call(ctx, number, &mut regs) {
        Returned::Status(r) => {
            // Endpoints this call closed or dropped beyond one drain step's budget are freed
            // now, with preemption points (no lock is held here).
            crate::channel::drain_pending(|| ctx.preempt_point());
            status(r)
        }
        Returned::Value(value) => value,
        Returned::NoReturn => NO_RETURN,
    };
    Dispatched {
        rax,
        registers_decoded: regs.read,
    }
}
