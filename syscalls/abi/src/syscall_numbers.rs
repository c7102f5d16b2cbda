//! The system calls this kernel offers, their numbers and argument counts.
//!
//! # Calling convention (x86_64)
//!
//! This is Zircon's kernel entry convention on x86_64, verified against Zircon's sources: the vDSO
//! stubs (`zircon/system/ulib/zircon/syscalls-x86-64.S`) and the kernel entry
//! (`zircon/kernel/arch/x86/syscall.S`, `x86_syscall`).
//!
//! | what                  | where                                                       |
//! |-----------------------|-------------------------------------------------------------|
//! | instruction           | `SYSCALL`                                                   |
//! | syscall number        | `rax`                                                       |
//! | arguments 1..=6       | `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`                      |
//! | arguments 7 and 8     | `r12`, `r13`                                                |
//! | result                | `rax`: a `zx_status_t` sign-extended to 64 bits, or the value (`zx_ticks_get`, `zx_clock_get_monotonic`, `zx_ticks_per_second` return an `i64`) |
//! | clobbered             | `rcx` (user RIP) and `r11` (user RFLAGS), by the instruction |
//! | preserved             | every other general-purpose register, the stack, and the flags are restored from `r11` |
//!
//! Zircon does *not* read the 7th and 8th arguments from the user stack: its vDSO loads them from
//! the C caller's stack (`8(%rsp)`, `16(%rsp)` at the stub's entry, SysV) into `r12` / `r13`
//! before `SYSCALL`, and the kernel entry saves `r12` / `r13` as arguments 7 and 8. We copy that:
//! the kernel never has to read user memory to decode arguments, so decoding cannot fault. Only
//! `zx_vmar_map` (7) and `zx_channel_read` (8) use these registers today. Handles (`u32`) and
//! options are passed zero-extended in the 64-bit registers; the kernel uses the low 32 bits.
//!
//! The numbers are this kernel's own (Zircon keeps its numbers private behind the vDSO, so there
//! is no public numbering to match); they are dense, starting at 0, and an unknown number makes
//! the call return `ZX_ERR_BAD_SYSCALL`. Numbers are never reused: new calls are appended.

macro_rules! syscalls {
    ($( $(#[$doc:meta])* $name:ident = $nr:literal, $nargs:literal; )*) => {
        $( $(#[$doc])* #[doc = concat!("\n\nArguments: ", stringify!($nargs), ".")] pub const $name: u32 = $nr; )*

        /// Every syscall as `(number, name, argument count)`, in number order.
        pub const SYSCALLS: &[(u32, &str, u8)] = &[
            $( ($nr, stringify!($name), $nargs), )*
        ];
    };
}

syscalls! {
    // VMAR.
    /// `zx_vmar_allocate(parent, options, offset, size, *child_vmar, *child_addr)`.
    ZX_SYS_VMAR_ALLOCATE = 0, 6;
    /// `zx_vmar_map(vmar, options, vmar_offset, vmo, vmo_offset, len, *mapped_addr)`.
    ZX_SYS_VMAR_MAP = 1, 7;
    /// `zx_vmar_unmap(vmar, addr, len)`.
    ZX_SYS_VMAR_UNMAP = 2, 3;
    /// `zx_vmar_protect(vmar, options, addr, len)`.
    ZX_SYS_VMAR_PROTECT = 3, 4;
    /// `zx_vmar_destroy(vmar)`.
    ZX_SYS_VMAR_DESTROY = 4, 1;
    /// `zx_vmar_op_range(vmar, op, address, size, *buffer, buffer_size)`.
    ZX_SYS_VMAR_OP_RANGE = 5, 6;
    // VMO.
    /// `zx_vmo_create(size, options, *out)`.
    ZX_SYS_VMO_CREATE = 6, 3;
    /// `zx_vmo_read(vmo, *buffer, offset, buffer_size)`.
    ZX_SYS_VMO_READ = 7, 4;
    /// `zx_vmo_write(vmo, *buffer, offset, buffer_size)`.
    ZX_SYS_VMO_WRITE = 8, 4;
    /// `zx_vmo_get_size(vmo, *size)`.
    ZX_SYS_VMO_GET_SIZE = 9, 2;
    /// `zx_vmo_set_size(vmo, size)`.
    ZX_SYS_VMO_SET_SIZE = 10, 2;
    /// `zx_vmo_op_range(vmo, op, offset, size, *buffer, buffer_size)`.
    ZX_SYS_VMO_OP_RANGE = 11, 6;
    /// `zx_vmo_replace_as_executable(vmo, vmex, *out)`.
    ZX_SYS_VMO_REPLACE_AS_EXECUTABLE = 12, 3;
    // Handles.
    /// `zx_handle_close(handle)`.
    ZX_SYS_HANDLE_CLOSE = 13, 1;
    /// `zx_handle_duplicate(handle, rights, *out)`.
    ZX_SYS_HANDLE_DUPLICATE = 14, 3;
    /// `zx_handle_replace(handle, rights, *out)`.
    ZX_SYS_HANDLE_REPLACE = 15, 3;
    // Objects.
    /// `zx_object_get_info(handle, topic, *buffer, buffer_size, *actual, *avail)`.
    ZX_SYS_OBJECT_GET_INFO = 16, 6;
    /// `zx_object_wait_one(handle, signals, deadline, *observed)`.
    ZX_SYS_OBJECT_WAIT_ONE = 17, 4;
    // Tasks.
    /// `zx_process_create(job, *name, name_size, options, *proc_handle, *vmar_handle)`.
    ZX_SYS_PROCESS_CREATE = 18, 6;
    /// `zx_process_start(process, thread, entry, stack, arg1_handle, arg2)`.
    ZX_SYS_PROCESS_START = 19, 6;
    /// `zx_thread_create(process, *name, name_size, options, *out)`.
    ZX_SYS_THREAD_CREATE = 20, 5;
    /// `zx_thread_start(thread, thread_entry, stack, arg1, arg2)`.
    ZX_SYS_THREAD_START = 21, 5;
    /// `zx_process_exit(retcode)`; does not return.
    ZX_SYS_PROCESS_EXIT = 22, 1;
    /// `zx_thread_exit()`; does not return.
    ZX_SYS_THREAD_EXIT = 23, 0;
    /// `zx_task_kill(task)`.
    ZX_SYS_TASK_KILL = 24, 1;
    /// `zx_process_read_memory(process, vaddr, *buffer, buffer_size, *actual)`.
    ZX_SYS_PROCESS_READ_MEMORY = 25, 5;
    /// `zx_process_write_memory(process, vaddr, *buffer, buffer_size, *actual)`.
    ZX_SYS_PROCESS_WRITE_MEMORY = 26, 5;
    // Misc.
    /// `zx_debug_write(*buffer, buffer_size)`.
    ZX_SYS_DEBUG_WRITE = 27, 2;
    /// `zx_ticks_get() -> zx_ticks_t` (rax holds the value, not a status).
    ZX_SYS_TICKS_GET = 28, 0;
    /// `zx_ticks_per_second() -> zx_ticks_t` (rax holds the value).
    ZX_SYS_TICKS_PER_SECOND = 29, 0;
    /// `zx_clock_get_monotonic() -> zx_time_t` (rax holds the value).
    ZX_SYS_CLOCK_GET_MONOTONIC = 30, 0;
    // Channels.
    /// `zx_channel_create(options, *out0, *out1)`.
    ZX_SYS_CHANNEL_CREATE = 31, 3;
    /// `zx_channel_read(channel, options, *bytes, *handles, num_bytes, num_handles, *actual_bytes, *actual_handles)`.
    ZX_SYS_CHANNEL_READ = 32, 8;
    /// `zx_channel_write(channel, options, *bytes, num_bytes, *handles, num_handles)`.
    ZX_SYS_CHANNEL_WRITE = 33, 6;
    // Exceptions and debugging.
    /// `zx_task_create_exception_channel(task, options, *out)`.
    ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL = 34, 3;
    /// `zx_thread_read_state(thread, kind, *buffer, buffer_size)`.
    ZX_SYS_THREAD_READ_STATE = 35, 4;
    /// `zx_thread_write_state(thread, kind, *buffer, buffer_size)`.
    ZX_SYS_THREAD_WRITE_STATE = 36, 4;
    // Kernel diagnostics (this kernel's own; Zircon reads such counters through
    // `zx_object_get_info(root_resource, ZX_INFO_KMEM_STATS)`).
    /// `zx_debug_kernel_stats(*buffer, buffer_size)`: writes [`crate::kstats::COUNT`] `u64`
    /// counters (indices in [`crate::kstats`]) and checks every live address space's invariants.
    ZX_SYS_DEBUG_KERNEL_STATS = 37, 2;
    // Properties and exceptions.
    /// `zx_object_get_property(handle, property, *value, value_size)`.
    ZX_SYS_OBJECT_GET_PROPERTY = 38, 4;
    /// `zx_object_set_property(handle, property, *value, value_size)`.
    ZX_SYS_OBJECT_SET_PROPERTY = 39, 4;
    /// `zx_exception_get_thread(exception, *out)`.
    ZX_SYS_EXCEPTION_GET_THREAD = 40, 2;
    /// `zx_exception_get_process(exception, *out)`.
    ZX_SYS_EXCEPTION_GET_PROCESS = 41, 2;
    // System.
    /// `zx_system_get_features(kind, *features)`.
    ZX_SYS_SYSTEM_GET_FEATURES = 42, 2;
    // Kernel diagnostics.
    /// `zx_debug_irqoff_stats(*buffer, buffer_size, options)`: writes [`crate::irqoff::COUNT`]
    /// `u64`s, the longest interrupts-off stretch (ns) per syscall number and per other kernel
    /// path (indices in [`crate::irqoff`]); `ZX_IRQOFF_RESET` in options zeroes them after.
    ZX_SYS_DEBUG_IRQOFF_STATS = 43, 3;
}

/// Number of syscalls; valid numbers are `0..ZX_SYS_COUNT`.
pub const ZX_SYS_COUNT: u32 = SYSCALLS.len() as u32;

/// Most arguments any syscall takes.
pub const MAX_ARGS: usize = 8;

/// The name of a syscall's number constant (`"ZX_SYS_VMAR_MAP"` for `zx_vmar_map`), for logs.
pub fn name(nr: u32) -> Option<&'static str> {
    SYSCALLS.get(nr as usize).map(|&(_, name, _)| name)
}

/// How many arguments a syscall takes, or `None` for an unknown number.
pub fn arg_count(nr: u32) -> Option<u8> {
    SYSCALLS.get(nr as usize).map(|&(_, _, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_in_order() {
        for (i, &(nr, name, nargs)) in SYSCALLS.iter().enumerate() {
            assert_eq!(nr as usize, i, "{name} out of order");
            assert!(nargs as usize <= MAX_ARGS);
            assert!(name.starts_with("ZX_SYS_"));
        }
        assert_eq!(ZX_SYS_COUNT, 44);
    }

    #[test]
    fn lookups() {
        assert_eq!(name(ZX_SYS_VMAR_MAP), Some("ZX_SYS_VMAR_MAP"));
        assert_eq!(arg_count(ZX_SYS_VMAR_MAP), Some(7));
        assert_eq!(arg_count(ZX_SYS_CHANNEL_READ), Some(8));
        assert_eq!(arg_count(ZX_SYS_THREAD_EXIT), Some(0));
        assert_eq!(name(ZX_SYS_COUNT), None);
        assert_eq!(arg_count(u32::MAX), None);
    }
}
