//! Task return codes (`zircon/syscalls/object.h`): the `return_code` of a killed task.

/// Killed by `zx_task_kill`.
pub const ZX_TASK_RETCODE_SYSCALL_KILL: i64 = -1024;
/// Killed by the OOM killer.
pub const ZX_TASK_RETCODE_OOM_KILL: i64 = -1025;
/// Killed by job policy.
pub const ZX_TASK_RETCODE_POLICY_KILL: i64 = -1026;
/// Killed by the vDSO.
pub const ZX_TASK_RETCODE_VDSO_KILL: i64 = -1027;
/// An exception was not handled.
pub const ZX_TASK_RETCODE_EXCEPTION_KILL: i64 = -1028;
/// Killed because a critical process died.
pub const ZX_TASK_RETCODE_CRITICAL_PROCESS_KILL: i64 = -1029;
