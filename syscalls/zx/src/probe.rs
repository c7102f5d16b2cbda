//! Probing memory the way Zircon's tests do (`probe_for_read` / `probe_for_write`): a helper
//! thread of this process touches the byte at `addr` while an exception channel on that thread
//! watches. The access works when the thread gets past it (it then sets a flag in the probe's
//! cell and exits); if it faults, the exception report says why and the thread is ended through
//! its exception (`ZX_EXCEPTION_STATE_THREAD_EXIT`). A thread that ends any other way (killed
//! before or during the access) proves nothing: `ZX_ERR_BAD_STATE`.
//!
//! `Err` carries the page fault's status from `ZX_INFO_THREAD_EXCEPTION_REPORT`
//! (`synth_code`): `ZX_ERR_NOT_FOUND` (nothing mapped), `ZX_ERR_ACCESS_DENIED` (the mapping's
//! protection, or a kernel address), `ZX_ERR_OUT_OF_RANGE` (past the end of the VMO). A fault
//! that is not a page fault (a non-canonical address raises #GP) is `ZX_ERR_INVALID_ARGS`.
//!
//! The helper is a few instructions of assembly that never touch a stack (it is given a dummy
//! one), so probes may run from any number of threads at once. The write probe is an atomic
//! `lock or byte [addr], 0`: the byte keeps its value even if another thread writes it
//! meanwhile. Everything made for a probe (thread, channel, exception) is closed before it
//! returns. Needs the runtime (`rt`): the process handle comes from [`crate::rt::process_self`].

use abi::exception::exception_state::ZX_EXCEPTION_STATE_THREAD_EXIT;
use abi::exception::excp::ZX_EXCP_FATAL_PAGE_FAULT;
use abi::signals::{ZX_CHANNEL_PEER_CLOSED, ZX_CHANNEL_READABLE, ZX_THREAD_TERMINATED};
use abi::{Status, ZxResult};

use crate::exception::read_exception;
use crate::Thread;

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.zx_probe_entry, \"ax\"",
    ".globl zx_probe_entry",
    ".type zx_probe_entry, @function",
    // rdi = &ProbeCell, rsi = write?
    "zx_probe_entry:",
    "    mov rcx, qword ptr [rdi]",
    "    test rsi, rsi",
    "    jnz 2f",
    "    mov al, byte ptr [rcx]",
    "    jmp 3f",
    "2:  lock or byte ptr [rcx], 0",
    "3:  mov byte ptr [rdi + 8], 1",
    "    mov eax, {exit}",
    "    syscall",
    "    ud2",
    ".size zx_probe_entry, . - zx_probe_entry",
    // A helper that ends before the access (the probe's own test of that verdict).
    ".globl zx_probe_exit_early",
    ".type zx_probe_exit_early, @function",
    "zx_probe_exit_early:",
    "    mov eax, {exit}",
    "    syscall",
    "    ud2",
    ".size zx_probe_exit_early, . - zx_probe_exit_early",
    ".popsection",
    exit = const abi::syscall_numbers::ZX_SYS_THREAD_EXIT,
);

#[cfg(target_arch = "x86_64")]
extern "C" {
    fn zx_probe_entry();
    fn zx_probe_exit_early();
}

/// What the helper reads (`addr`) and writes (`passed`, once the access is done). `repr(C)`:
/// the assembly uses the offsets 0 and 8.
#[repr(C)]
struct ProbeCell {
    addr: usize,
    passed: core::sync::atomic::AtomicU8,
}

/// The helper's stack pointer: a valid user address it never uses.
#[repr(C, align(16))]
struct DummyStack([u8; 64]);
static DUMMY_STACK: DummyStack = DummyStack([0; 64]);

fn probe(addr: usize, write: bool, exit_early: bool) -> ZxResult {
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (addr, write, exit_early);
        Err(Status::ERR_NOT_SUPPORTED)
    }
    #[cfg(target_arch = "x86_64")]
    {
        let process = crate::rt::process_self().ok_or(Status::ERR_BAD_STATE)?;
        let thread = Thread::create(&process, b"probe", 0)?;
        let channel = thread.create_exception_channel(0)?;
        let stack = core::ptr::addr_of!(DUMMY_STACK) as usize + 48;
        let cell = ProbeCell {
            addr,
            passed: core::sync::atomic::AtomicU8::new(0),
        };
        let entry = if exit_early {
            zx_probe_exit_early as *const () as usize
        } else {
            zx_probe_entry as *const () as usize
        };
        // SAFETY: the entry is the assembly above: it reads `cell.addr`, reads or atomically
        // or-s 0 into one byte at `addr` (a value-preserving access, whatever else runs), sets
        // `cell.passed` (an atomic, which this thread reads only after the helper ended) and
        // exits (or, early, only exits); it never touches its stack, so the shared dummy stack
        // is never written. `cell` outlives the helper: this function waits for it to end.
        unsafe {
            thread.start(
                entry,
                stack,
                &cell as *const ProbeCell as usize,
                usize::from(write),
            )?
        };
        let observed = channel
            .handle()
            .wait_one(ZX_CHANNEL_READABLE | ZX_CHANNEL_PEER_CLOSED, i64::MAX)?;
        let result = if observed & ZX_CHANNEL_READABLE != 0 {
            let (info, exception) = read_exception(&channel)?;
            let report = thread.exception_report();
            let status = match report {
                Ok(r) if info.r#type == ZX_EXCP_FATAL_PAGE_FAULT => {
                    Status::from_raw(r.synth_code as i32)
                }
                Ok(_) => Status::ERR_INVALID_ARGS,
                Err(e) => e,
            };
            exception.set_state(ZX_EXCEPTION_STATE_THREAD_EXIT)?;
            drop(exception);
            Err(status)
        } else {
            Ok(())
        };
        thread.handle().wait_one(ZX_THREAD_TERMINATED, i64::MAX)?;
        match result {
            Ok(()) if cell.passed.load(core::sync::atomic::Ordering::SeqCst) != 1 => {
                Err(Status::ERR_BAD_STATE)
            }
            other => other,
        }
    }
}

/// Can this process read the byte at `addr`? `Ok(())`, or the fault's status.
pub fn probe_for_read(addr: usize) -> ZxResult {
    probe(addr, false, false)
}

/// [`probe_for_read`] with a helper that exits before the access, as a thread ended any other
/// way than through its access would: must be `ZX_ERR_BAD_STATE` (for the probe's own test).
#[doc(hidden)]
pub fn probe_for_read_ending_early(addr: usize) -> ZxResult {
    probe(addr, false, true)
}

/// Can this process write the byte at `addr`? The byte keeps its value. `Ok(())`, or the
/// fault's status.
pub fn probe_for_write(addr: usize) -> ZxResult {
    probe(addr, true, false)
}

/// `probe_for_read(addr).is_ok()`.
pub fn can_read(addr: usize) -> bool {
    probe_for_read(addr).is_ok()
}

/// `probe_for_write(addr).is_ok()`.
pub fn can_write(addr: usize) -> bool {
    probe_for_write(addr).is_ok()
}
