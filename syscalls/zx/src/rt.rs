//! The user-program runtime (feature `rt`, target `x86_64-unknown-none`): `_start`, the panic
//! handler and the global allocator; plus [`Startup`] and the [`entry!`](crate::entry) macro,
//! which exist everywhere so programs and tools type-check on the host too.
//!
//! Startup ABI (docs/syscalls.md): the first thread of a process enters at the ELF entry with
//! `rdi` = arg1 (a handle transferred by `zx_process_start`, maybe `ZX_HANDLE_INVALID`), `rsi` =
//! arg2, `rdx` = its process, `rcx` = its root VMAR, `r8` = its initial thread, and `rsp` 16-byte
//! aligned minus 8 (as right after a `call`). `_start` clears the frame pointer, re-aligns the
//! stack (in case a loader got it wrong), and calls the Rust side, which sets up the heap, wraps
//! the raw values in owned handles and calls the program's main (named with
//! [`entry!`](crate::entry)). Main's return value becomes the process's return code
//! (`zx_process_exit`).
//!
//! A panic prints `panic: MESSAGE at FILE:LINE` through `zx_debug_write` and exits with
//! [`PANIC_RETCODE`].

use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::{Handle, Process, Thread, Vmar};

/// Return code of a process that panicked (Rust's own exit code for a panic).
pub const PANIC_RETCODE: i64 = 101;

/// Size of the heap the runtime gives `alloc` (in `.bss`, so only touched pages are committed).
pub const HEAP_SIZE: usize = 2 << 20;

/// A duplicate of this process's handle, made by the runtime before main (0 without the runtime).
static PROCESS_SELF: AtomicU32 = AtomicU32::new(0);

/// This process, for library code that needs it (the probes): a borrowed view of a handle the
/// runtime duplicated before main and keeps for the whole run (`None` without the runtime).
/// Dropping the returned value does not close it.
pub fn process_self() -> Option<ManuallyDrop<Process>> {
    match PROCESS_SELF.load(Ordering::SeqCst) {
        0 => None,
        raw => Some(ManuallyDrop::new(Process::from(Handle::from_raw(raw)))),
    }
}

/// What a process receives at startup.
#[derive(Debug)]
pub struct Startup {
    /// The handle transferred by `zx_process_start` (for the first process: a read-only VMO with
    /// the ramdisk archive). May be invalid.
    pub arg1: Handle,
    /// The `arg2` of `zx_process_start`.
    pub arg2: u64,
    /// This process.
    pub process: Process,
    /// This process's root VMAR.
    pub root_vmar: Vmar,
    /// This process's initial thread.
    pub thread: Thread,
}

impl Startup {
    /// Wraps the raw startup registers (each handle value in the low 32 bits).
    pub fn from_raw(arg1: u64, arg2: u64, process: u64, root_vmar: u64, thread: u64) -> Self {
        Startup {
            arg1: Handle::from_raw(arg1 as u32),
            arg2,
            process: Process::from(Handle::from_raw(process as u32)),
            root_vmar: Vmar::from(Handle::from_raw(root_vmar as u32)),
            thread: Thread::from(Handle::from_raw(thread as u32)),
        }
    }
}

/// Names the program's main: `zx::entry!(main);` with `fn main(startup: zx::rt::Startup) -> i64`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[doc(hidden)]
        #[no_mangle]
        pub fn __zx_main(startup: $crate::rt::Startup) -> i64 {
            let main: fn($crate::rt::Startup) -> i64 = $main;
            main(startup)
        }
    };
}

#[cfg(all(feature = "rt", target_os = "none", target_arch = "x86_64"))]
mod imp {
    use super::*;
    use core::fmt::Write;
    use linked_list_allocator::LockedHeap;

    #[global_allocator]
    static ALLOCATOR: LockedHeap = LockedHeap::empty();

    struct HeapMemory(core::cell::UnsafeCell<[u8; HEAP_SIZE]>);

    // SAFETY: the memory is only reached through the allocator, which serializes access with its
    // lock; the runtime hands it over once, before main runs.
    unsafe impl Sync for HeapMemory {}

    static HEAP_MEMORY: HeapMemory = HeapMemory(core::cell::UnsafeCell::new([0; HEAP_SIZE]));

    core::arch::global_asm!(
        ".globl _start",
        ".type _start, @function",
        "_start:",
        "    xor ebp, ebp",
        "    and rsp, -16",
        "    call {start}",
        "    ud2",
        ".size _start, . - _start",
        start = sym rust_start,
    );

    extern "Rust" {
        /// Defined by `zx::entry!` in the program.
        fn __zx_main(startup: Startup) -> i64;
    }

    extern "sysv64" fn rust_start(arg1: u64, arg2: u64, process: u64, vmar: u64, thread: u64) -> ! {
        // SAFETY: runs once, before anything allocates; the static buffer is used by nothing else
        // and lives for the whole program.
        unsafe {
            ALLOCATOR
                .lock()
                .init(HEAP_MEMORY.0.get().cast::<u8>(), HEAP_SIZE);
        }
        let startup = Startup::from_raw(arg1, arg2, process, vmar, thread);
        if let Ok(dup) = startup
            .process
            .handle()
            .duplicate(abi::rights::ZX_RIGHT_SAME_RIGHTS)
        {
            PROCESS_SELF.store(dup.into_raw(), Ordering::SeqCst);
        }
        // SAFETY: `__zx_main` is the Rust function `entry!` defines with exactly this signature;
        // a program that links without it fails to link rather than calling something else.
        let code = unsafe { __zx_main(startup) };
        Process::exit(code)
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let mut w = crate::print::DebugWriter::new();
        let _ = match info.location() {
            Some(l) => writeln!(w, "panic: {} at {}:{}", info.message(), l.file(), l.line()),
            None => writeln!(w, "panic: {}", info.message()),
        };
        w.flush();
        Process::exit(PANIC_RETCODE)
    }
}
