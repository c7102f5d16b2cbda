//! The system calls this kernel offers: the syscall table ([`syscall_table!`](crate::syscall_table))
//! and what it defines, the `ZX_SYS_*` numbers and the [`SYSCALLS`] metadata.
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
//!
//! # The syscall table
//!
//! [`syscall_table!`](crate::syscall_table) is the one place where a syscall is declared. Each
//! row gives, in this order:
//!
//! ```text
//! /// doc (optional)
//! NR ZX_SYS_NAME = zx_c_name(param: kind, ...) -> returns => handler::path [attributes];
//! ```
//!
//! - `NR`: the number (dense, append-only) and `ZX_SYS_NAME` its constant;
//! - `zx_c_name(param: kind, ...)`: the C function and its parameters in C order, each with how
//!   its register is decoded ([`ArgKind`]): `handle`, `u32` (both the low 32 bits), `usize`,
//!   `u64`, `i64` (the whole register), `ptr` (a user buffer address the handler validates) or
//!   `out<T>` (a typed user out-pointer, `UserOut<T>` in the kernel);
//! - `returns` ([`Returns`]): `status` (a `zx_status_t` in `rax`), `value` (the handler's `i64`
//!   is `rax`, as for `zx_ticks_get`) or `noreturn` (the calling thread or process ends);
//! - `handler::path`: the kernel function the call dispatches to, a path in the `syscalls` crate
//!   (`sys::vmar::map`); it takes `ctx` and then one argument per parameter, typed as decoded;
//! - `[attributes]` (optional, [`Attrs`]): `creates_objects` (refused with `ZX_ERR_NO_MEMORY`
//!   while memory is low).
//!
//! The table is an X-macro: `syscall_table!(callback)` invokes `callback!` with every row. This
//! module expands it into the `ZX_SYS_*` constants and [`SYSCALLS`]; `syscalls::dispatch`
//! expands it into the decoding of each call and the call of its handler, so a row whose handler
//! does not take the arguments it lists does not compile. The kernel's low-memory admission reads
//! [`creates_objects`], and a host test of `syscalls` checks the README's table of system calls
//! against [`SYSCALLS`].
//!
//! ## How to add a syscall
//!
//! 1. Append a row at the end of [`syscall_table!`](crate::syscall_table) with the next number.
//! 2. Write its handler (in `syscalls/syscalls/src/sys/`, at the path the row names).
//! 3. Add the user wrapper in `syscalls/zx` (the `zx` crate) and the row of the README's
//!    "System calls" table (`cargo test -p syscalls --test readme` fails until it is there).
//!
//! Nothing else changes: the number constant, the metadata, the dispatcher's decoding and the
//! low-memory admission all come from the row.

/// The syscall table (see the [module docs](crate::syscall_numbers)): invokes `$callback!` with
/// every syscall, in number order, as
/// `NR ZX_SYS_NAME = zx_c_name(param: kind, ...) -> returns => handler::path [attributes];`
/// rows (each optionally preceded by doc attributes). Handler paths are plain tokens here; they
/// resolve where the callback expands (the `syscalls` crate).
#[macro_export]
macro_rules! syscall_table {
    ($callback:ident) => {
        $callback! {
            // VMAR.
            0 ZX_SYS_VMAR_ALLOCATE = zx_vmar_allocate(parent: handle, options: u32, offset: usize,
                size: usize, child_vmar: out<u32>, child_addr: out<usize>)
                -> status => sys::vmar::allocate [creates_objects];
            1 ZX_SYS_VMAR_MAP = zx_vmar_map(vmar: handle, options: u32, vmar_offset: usize,
                vmo: handle, vmo_offset: u64, len: usize, mapped_addr: out<usize>)
                -> status => sys::vmar::map [creates_objects];
            2 ZX_SYS_VMAR_UNMAP = zx_vmar_unmap(vmar: handle, addr: usize, len: usize)
                -> status => sys::vmar::unmap;
            3 ZX_SYS_VMAR_PROTECT = zx_vmar_protect(vmar: handle, options: u32, addr: usize,
                len: usize)
                -> status => sys::vmar::protect;
            4 ZX_SYS_VMAR_DESTROY = zx_vmar_destroy(vmar: handle)
                -> status => sys::vmar::destroy;
            5 ZX_SYS_VMAR_OP_RANGE = zx_vmar_op_range(vmar: handle, op: u32, address: usize,
                size: usize, buffer: ptr, buffer_size: usize)
                -> status => sys::vmar::op_range;
            // VMO.
            6 ZX_SYS_VMO_CREATE = zx_vmo_create(size: u64, options: u32, out: out<u32>)
                -> status => sys::vmo::create [creates_objects];
            7 ZX_SYS_VMO_READ = zx_vmo_read(vmo: handle, buffer: ptr, offset: u64,
                buffer_size: usize)
                -> status => sys::vmo::read;
            8 ZX_SYS_VMO_WRITE = zx_vmo_write(vmo: handle, buffer: ptr, offset: u64,
                buffer_size: usize)
                -> status => sys::vmo::write;
            9 ZX_SYS_VMO_GET_SIZE = zx_vmo_get_size(vmo: handle, size: out<u64>)
                -> status => sys::vmo::get_size;
            10 ZX_SYS_VMO_SET_SIZE = zx_vmo_set_size(vmo: handle, size: u64)
                -> status => sys::vmo::set_size;
            11 ZX_SYS_VMO_OP_RANGE = zx_vmo_op_range(vmo: handle, op: u32, offset: u64,
                size: u64, buffer: ptr, buffer_size: usize)
                -> status => sys::vmo::op_range;
            12 ZX_SYS_VMO_REPLACE_AS_EXECUTABLE = zx_vmo_replace_as_executable(vmo: handle,
                vmex: handle, out: out<u32>)
                -> status => sys::vmo::replace_as_executable [creates_objects];
            // Handles.
            13 ZX_SYS_HANDLE_CLOSE = zx_handle_close(handle: handle)
                -> status => sys::handle::close;
            14 ZX_SYS_HANDLE_DUPLICATE = zx_handle_duplicate(handle: handle, rights: u32,
                out: out<u32>)
                -> status => sys::handle::duplicate [creates_objects];
            15 ZX_SYS_HANDLE_REPLACE = zx_handle_replace(handle: handle, rights: u32,
                out: out<u32>)
                -> status => sys::handle::replace;
            // Objects.
            16 ZX_SYS_OBJECT_GET_INFO = zx_object_get_info(handle: handle, topic: u32,
                buffer: ptr, buffer_size: usize, actual: out<usize>, avail: out<usize>)
                -> status => sys::info::get_info;
            17 ZX_SYS_OBJECT_WAIT_ONE = zx_object_wait_one(handle: handle, signals: u32,
                deadline: i64, observed: out<u32>)
                -> status => sys::task::wait_one;
            // Tasks.
            18 ZX_SYS_PROCESS_CREATE = zx_process_create(job: handle, name: ptr,
                name_size: usize, options: u32, proc_handle: out<u32>, vmar_handle: out<u32>)
                -> status => sys::task::process_create [creates_objects];
            19 ZX_SYS_PROCESS_START = zx_process_start(process: handle, thread: handle,
                entry: usize, stack: usize, arg1_handle: handle, arg2: u64)
                -> status => sys::task::process_start;
            20 ZX_SYS_THREAD_CREATE = zx_thread_create(process: handle, name: ptr,
                name_size: usize, options: u32, out: out<u32>)
                -> status => sys::task::thread_create [creates_objects];
            21 ZX_SYS_THREAD_START = zx_thread_start(thread: handle, thread_entry: usize,
                stack: usize, arg1: u64, arg2: u64)
                -> status => sys::task::thread_start;
            22 ZX_SYS_PROCESS_EXIT = zx_process_exit(retcode: i64)
                -> noreturn => sys::task::process_exit;
            23 ZX_SYS_THREAD_EXIT = zx_thread_exit()
                -> noreturn => sys::task::thread_exit;
            24 ZX_SYS_TASK_KILL = zx_task_kill(task: handle)
                -> status => sys::task::task_kill;
            25 ZX_SYS_PROCESS_READ_MEMORY = zx_process_read_memory(process: handle,
                vaddr: usize, buffer: ptr, buffer_size: usize, actual: out<usize>)
                -> status => sys::task::read_memory;
            26 ZX_SYS_PROCESS_WRITE_MEMORY = zx_process_write_memory(process: handle,
                vaddr: usize, buffer: ptr, buffer_size: usize, actual: out<usize>)
                -> status => sys::task::write_memory;
            // Misc.
            27 ZX_SYS_DEBUG_WRITE = zx_debug_write(buffer: ptr, buffer_size: usize)
                -> status => sys::misc::debug_write;
            /// Returns a `zx_ticks_t`.
            28 ZX_SYS_TICKS_GET = zx_ticks_get()
                -> value => sys::misc::ticks_get;
            /// Returns a `zx_ticks_t`.
            29 ZX_SYS_TICKS_PER_SECOND = zx_ticks_per_second()
                -> value => sys::misc::ticks_per_second;
            /// Returns a `zx_time_t`.
            30 ZX_SYS_CLOCK_GET_MONOTONIC = zx_clock_get_monotonic()
                -> value => sys::misc::clock_get_monotonic;
            // Channels.
            31 ZX_SYS_CHANNEL_CREATE = zx_channel_create(options: u32, out0: out<u32>,
                out1: out<u32>)
                -> status => sys::channel::create [creates_objects];
            32 ZX_SYS_CHANNEL_READ = zx_channel_read(channel: handle, options: u32,
                bytes: ptr, handles: ptr, num_bytes: u32, num_handles: u32,
                actual_bytes: out<u32>, actual_handles: out<u32>)
                -> status => sys::channel::read;
            33 ZX_SYS_CHANNEL_WRITE = zx_channel_write(channel: handle, options: u32,
                bytes: ptr, num_bytes: u32, handles: ptr, num_handles: u32)
                -> status => sys::channel::write [creates_objects];
            // Exceptions and debugging.
            34 ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL = zx_task_create_exception_channel(
                task: handle, options: u32, out: out<u32>)
                -> status => sys::exception::create_exception_channel [creates_objects];
            35 ZX_SYS_THREAD_READ_STATE = zx_thread_read_state(thread: handle, kind: u32,
                buffer: ptr, buffer_size: usize)
                -> status => sys::exception::read_state;
            36 ZX_SYS_THREAD_WRITE_STATE = zx_thread_write_state(thread: handle, kind: u32,
                buffer: ptr, buffer_size: usize)
                -> status => sys::exception::write_state;
            // Kernel diagnostics (this kernel's own; Zircon reads such counters through
            // `zx_object_get_info(root_resource, ZX_INFO_KMEM_STATS)`).
            /// Writes [`crate::kstats::COUNT`] `u64` counters (indices in [`crate::kstats`]) and
            /// checks every live address space's invariants.
            37 ZX_SYS_DEBUG_KERNEL_STATS = zx_debug_kernel_stats(buffer: ptr, buffer_size: usize)
                -> status => sys::misc::debug_kernel_stats;
            // Properties and exceptions.
            38 ZX_SYS_OBJECT_GET_PROPERTY = zx_object_get_property(handle: handle, property: u32,
                value: ptr, value_size: usize)
                -> status => sys::exception::get_property;
            39 ZX_SYS_OBJECT_SET_PROPERTY = zx_object_set_property(handle: handle, property: u32,
                value: ptr, value_size: usize)
                -> status => sys::exception::set_property;
            40 ZX_SYS_EXCEPTION_GET_THREAD = zx_exception_get_thread(exception: handle,
                out: out<u32>)
                -> status => sys::exception::exception_get_thread;
            41 ZX_SYS_EXCEPTION_GET_PROCESS = zx_exception_get_process(exception: handle,
                out: out<u32>)
                -> status => sys::exception::exception_get_process;
            // System.
            42 ZX_SYS_SYSTEM_GET_FEATURES = zx_system_get_features(kind: u32,
                features: out<u32>)
                -> status => sys::misc::system_get_features;
            // Kernel diagnostics.
            /// Writes [`crate::irqoff::COUNT`] `u64`s, the longest interrupts-off stretch (ns)
            /// per syscall number and per other kernel path (indices in [`crate::irqoff`]);
            /// `ZX_IRQOFF_RESET` in options zeroes them after.
            43 ZX_SYS_DEBUG_IRQOFF_STATS = zx_debug_irqoff_stats(buffer: ptr, buffer_size: usize,
                options: u32)
                -> status => sys::misc::debug_irqoff_stats;
            // VMO children.
            44 ZX_SYS_VMO_CREATE_CHILD = zx_vmo_create_child(vmo: handle, options: u32,
                offset: u64, size: u64, out: out<u32>)
                -> status => sys::vmo::create_child [creates_objects];
        }
    };
}

/// How the dispatcher decodes one argument register (see the calling convention above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// `zx_handle_t`: the low 32 bits.
    Handle,
    /// `uint32_t`, options, rights, signals, counts: the low 32 bits.
    U32,
    /// `size_t`, `zx_vaddr_t`, an entry point or a stack: the whole register.
    Usize,
    /// `uint64_t`, `zx_off_t`, `uintptr_t` thread arguments: the whole register.
    U64,
    /// `int64_t`, `zx_time_t`: the whole register, as signed.
    I64,
    /// A user buffer (`*buffer`, `*name`, `*bytes`) the handler validates against the size
    /// parameter that goes with it: the whole register, as an address.
    Ptr,
    /// A typed user out-pointer (`*out`, `*actual`) to one value of `size` bytes: the whole
    /// register, as an address.
    Out {
        /// Size of the value written there.
        size: usize,
    },
}

impl ArgKind {
    /// Is this parameter a pointer into user memory (`*name` in the C signature)?
    pub const fn is_pointer(self) -> bool {
        matches!(self, ArgKind::Ptr | ArgKind::Out { .. })
    }
}

/// How a syscall's result reaches `rax`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returns {
    /// A `zx_status_t`, sign-extended.
    Status,
    /// The handler's value (`zx_ticks_get`, `zx_ticks_per_second`, `zx_clock_get_monotonic`).
    Value,
    /// Nothing: the calling thread or process ends (`zx_thread_exit`, `zx_process_exit`).
    NoReturn,
}

/// Attributes of a syscall, from the optional `[...]` of its row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attrs {
    /// The call creates kernel objects: the kernel refuses it with `ZX_ERR_NO_MEMORY` while
    /// memory is low (`kernel/src/task/quota.rs`).
    pub creates_objects: bool,
}

impl Attrs {
    /// No attribute set.
    pub const NONE: Attrs = Attrs {
        creates_objects: false,
    };
}

/// One parameter of a syscall's C signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    /// Its name in the C signature (without the `*` of pointers).
    pub name: &'static str,
    /// How its register is decoded.
    pub kind: ArgKind,
}

/// One row of the syscall table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syscall {
    /// Its number (`rax`).
    pub nr: u32,
    /// Its number constant, `"ZX_SYS_VMAR_MAP"`.
    pub name: &'static str,
    /// The C function, `"zx_vmar_map"`.
    pub call: &'static str,
    /// The C signature with parameter names, pointers starred:
    /// `"zx_vmar_map(vmar, options, vmar_offset, vmo, vmo_offset, len, *mapped_addr)"`.
    pub signature: &'static str,
    /// The parameters in C order; parameter `i` is argument register `i`.
    pub params: &'static [Param],
    /// How the result reaches `rax`.
    pub returns: Returns,
    /// Its attributes.
    pub attrs: Attrs,
}

impl Syscall {
    /// How many argument registers the call uses.
    pub const fn arg_count(&self) -> usize {
        self.params.len()
    }
}

/// The [`ArgKind`] of a table row's parameter kind.
macro_rules! arg_kind {
    (handle) => {
        ArgKind::Handle
    };
    (u32) => {
        ArgKind::U32
    };
    (usize) => {
        ArgKind::Usize
    };
    (u64) => {
        ArgKind::U64
    };
    (i64) => {
        ArgKind::I64
    };
    (ptr) => {
        ArgKind::Ptr
    };
    (out<$t:ident>) => {
        ArgKind::Out {
            size: core::mem::size_of::<$t>(),
        }
    };
}

/// A parameter as the C signature shows it: `*name` for pointers, `name` otherwise.
macro_rules! c_param {
    ($name:ident: ptr) => {
        concat!("*", stringify!($name))
    };
    ($name:ident: out<$t:ident>) => {
        concat!("*", stringify!($name))
    };
    ($name:ident: $kind:ident) => {
        stringify!($name)
    };
}

/// The [`Returns`] of a table row's `-> returns`.
macro_rules! returns {
    (status) => {
        Returns::Status
    };
    (value) => {
        Returns::Value
    };
    (noreturn) => {
        Returns::NoReturn
    };
}

/// The C parameters of a row joined with `", "`.
macro_rules! join_params {
    () => {
        ""
    };
    ($name:ident: $kind:ident $(<$t:ident>)?) => {
        c_param!($name: $kind $(<$t>)?)
    };
    ($name:ident: $kind:ident $(<$t:ident>)?, $($rest:tt)*) => {
        concat!(c_param!($name: $kind $(<$t>)?), ", ", join_params!($($rest)*))
    };
}

/// Callback of [`syscall_table!`](crate::syscall_table): the `ZX_SYS_*` constants and
/// [`SYSCALLS`].
macro_rules! define_syscalls {
    ($(
        $(#[$doc:meta])*
        $nr:literal $name:ident = $call:ident ( $($param:ident : $kind:ident $(<$t:ident>)?),* )
            -> $ret:ident => $handler:path $([$($attr:ident),*])?;
    )*) => {
        $(
            #[doc = concat!(
                "`", stringify!($call), "(", join_params!($($param: $kind $(<$t>)?),*), ")`",
            )]
            #[doc = ""]
            $(#[$doc])*
            pub const $name: u32 = $nr;
        )*

        /// Every syscall, in number order (`SYSCALLS[nr].nr == nr`).
        // A row with every attribute names them all before `..Attrs::NONE`.
        #[allow(clippy::needless_update)]
        pub const SYSCALLS: &[Syscall] = &[
            $(
                Syscall {
                    nr: $nr,
                    name: stringify!($name),
                    call: stringify!($call),
                    signature: concat!(
                        stringify!($call), "(", join_params!($($param: $kind $(<$t>)?),*), ")"
                    ),
                    params: &[$(Param { name: stringify!($param), kind: arg_kind!($kind $(<$t>)?) }),*],
                    returns: returns!($ret),
                    attrs: Attrs { $($($attr: true,)*)? ..Attrs::NONE },
                },
            )*
        ];
    };
}

crate::syscall_table!(define_syscalls);

/// Number of syscalls; valid numbers are `0..ZX_SYS_COUNT`.
pub const ZX_SYS_COUNT: u32 = SYSCALLS.len() as u32;

/// Most arguments any syscall takes.
pub const MAX_ARGS: usize = 8;

/// The table row of syscall `nr`, or `None` for an unknown number.
pub fn syscall(nr: u32) -> Option<&'static Syscall> {
    SYSCALLS.get(usize::try_from(nr).ok()?)
}

/// The name of a syscall's number constant (`"ZX_SYS_VMAR_MAP"` for `zx_vmar_map`), for logs.
pub fn name(nr: u32) -> Option<&'static str> {
    syscall(nr).map(|s| s.name)
}

/// How many arguments a syscall takes, or `None` for an unknown number.
pub fn arg_count(nr: u32) -> Option<u8> {
    syscall(nr).map(|s| s.arg_count() as u8)
}

/// Does syscall `nr` create kernel objects (its row's `creates_objects` attribute)? `false` for
/// an unknown number.
pub fn creates_objects(nr: u32) -> bool {
    syscall(nr).is_some_and(|s| s.attrs.creates_objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_in_order() {
        for (i, s) in SYSCALLS.iter().enumerate() {
            assert_eq!(s.nr as usize, i, "{} out of order", s.name);
            assert!(s.arg_count() <= MAX_ARGS, "{}", s.name);
            assert!(s.name.starts_with("ZX_SYS_"), "{}", s.name);
            assert!(s.call.starts_with("zx_"), "{}", s.call);
            assert_eq!(
                s.name["ZX_SYS_".len()..].to_ascii_lowercase(),
                s.call["zx_".len()..],
                "the constant names the call"
            );
        }
        assert_eq!(ZX_SYS_COUNT, 45);
    }

    #[test]
    fn lookups() {
        assert_eq!(name(ZX_SYS_VMAR_MAP), Some("ZX_SYS_VMAR_MAP"));
        assert_eq!(arg_count(ZX_SYS_VMAR_MAP), Some(7));
        assert_eq!(arg_count(ZX_SYS_CHANNEL_READ), Some(8));
        assert_eq!(arg_count(ZX_SYS_THREAD_EXIT), Some(0));
        assert_eq!(name(ZX_SYS_COUNT), None);
        assert_eq!(arg_count(u32::MAX), None);
        assert!(!creates_objects(u32::MAX));
    }

    #[test]
    fn rows_decode_as_declared() {
        let map = syscall(ZX_SYS_VMAR_MAP).unwrap();
        assert_eq!(
            map.signature,
            "zx_vmar_map(vmar, options, vmar_offset, vmo, vmo_offset, len, *mapped_addr)"
        );
        let kinds: Vec<ArgKind> = map.params.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                ArgKind::Handle,
                ArgKind::U32,
                ArgKind::Usize,
                ArgKind::Handle,
                ArgKind::U64,
                ArgKind::Usize,
                ArgKind::Out { size: 8 },
            ]
        );
        assert_eq!(map.returns, Returns::Status);
        assert_eq!(
            syscall(ZX_SYS_THREAD_EXIT).unwrap().signature,
            "zx_thread_exit()"
        );
        assert_eq!(syscall(ZX_SYS_TICKS_GET).unwrap().returns, Returns::Value);
        assert_eq!(
            syscall(ZX_SYS_PROCESS_EXIT).unwrap().returns,
            Returns::NoReturn
        );
        assert_eq!(
            syscall(ZX_SYS_PROCESS_EXIT).unwrap().params[0].kind,
            ArgKind::I64
        );
    }

    /// The calls refused while memory is low: those that create kernel objects (handles,
    /// VMOs, VMARs and mappings, processes, threads, channels, queued messages).
    #[test]
    fn creates_objects_attribute() {
        let refused: Vec<u32> = SYSCALLS
            .iter()
            .filter(|s| s.attrs.creates_objects)
            .map(|s| s.nr)
            .collect();
        assert_eq!(
            refused,
            [
                ZX_SYS_VMAR_ALLOCATE,
                ZX_SYS_VMAR_MAP,
                ZX_SYS_VMO_CREATE,
                ZX_SYS_VMO_REPLACE_AS_EXECUTABLE,
                ZX_SYS_HANDLE_DUPLICATE,
                ZX_SYS_PROCESS_CREATE,
                ZX_SYS_THREAD_CREATE,
                ZX_SYS_CHANNEL_CREATE,
                ZX_SYS_CHANNEL_WRITE,
                ZX_SYS_TASK_CREATE_EXCEPTION_CHANNEL,
                ZX_SYS_VMO_CREATE_CHILD,
            ]
        );
        assert!(creates_objects(ZX_SYS_VMO_CREATE));
        assert!(!creates_objects(ZX_SYS_VMAR_PROTECT));
    }
}
