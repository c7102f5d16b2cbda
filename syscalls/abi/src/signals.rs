//! `zx_signals_t` values (`zircon/types.h`).

/// No signal.
pub const ZX_SIGNAL_NONE: u32 = 0;
/// All user signals.
pub const ZX_USER_SIGNAL_ALL: u32 = 0xff00_0000;
/// The handle was closed while being waited on.
pub const ZX_SIGNAL_HANDLE_CLOSED: u32 = 1 << 23;

/// A task (process, thread, job) terminated.
pub const ZX_TASK_TERMINATED: u32 = 1 << 3;
/// A process terminated.
pub const ZX_PROCESS_TERMINATED: u32 = 1 << 3;
/// A thread terminated.
pub const ZX_THREAD_TERMINATED: u32 = 1 << 3;
/// A thread is running.
pub const ZX_THREAD_RUNNING: u32 = 1 << 4;
/// A thread is suspended.
pub const ZX_THREAD_SUSPENDED: u32 = 1 << 5;
/// A job terminated.
pub const ZX_JOB_TERMINATED: u32 = 1 << 3;

/// A channel has a message to read.
pub const ZX_CHANNEL_READABLE: u32 = 1 << 0;
/// A channel can be written.
pub const ZX_CHANNEL_WRITABLE: u32 = 1 << 1;
/// The other end of a channel was closed.
pub const ZX_CHANNEL_PEER_CLOSED: u32 = 1 << 2;

/// A VMO has no children.
pub const ZX_VMO_ZERO_CHILDREN: u32 = 1 << 3;
