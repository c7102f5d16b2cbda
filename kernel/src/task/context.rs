//! The kernel's implementation of `syscalls::SyscallContext` for the calling thread ([`Ctx`]):
//! its user memory (fault-safe copies), its process's handles and address space, thread and process
//! creation and start, waits, and the debugging syscalls switch.

use super::process::Process;
use super::thread::{State, Thread};
use super::{clock, sched};
use abi::task::ZX_TASK_RETCODE_SYSCALL_KILL;
use abi::{Status, ZxResult};
use alloc::sync::Arc;
use arch::trap::TrapFrame;
use core::sync::atomic::{AtomicBool, Ordering};
use syscalls::user_ptr::UserMemory;
use syscalls::{Object, ObjectTable, ProcessObject, ProcessStart, SyscallContext, ThreadObject};
use vm::{MmuFlags, PhysMem};
use x86_64::instructions::interrupts;

/// Fault-safe copies to and from the current address space.
struct CurrentUserMemory;

impl UserMemory for CurrentUserMemory {
    fn user_limit(&self) -> usize {
        arch::extable::USER_END as usize
    }

    fn copy_from_user(&self, addr: usize, dst: &mut [u8]) -> Result<(), Status> {
        arch::extable::copy_from_user(dst, addr as u64).map_err(|_| Status::ERR_INVALID_ARGS)
    }

    fn copy_to_user(&mut self, addr: usize, src: &[u8]) -> Result<(), Status> {
        arch::extable::copy_to_user(addr as u64, src).map_err(|_| Status::ERR_INVALID_ARGS)
    }

    fn frame_to_user_nofault(
        &mut self,
        frame: vm::PhysAddr,
        offset: usize,
        addr: usize,
        len: usize,
    ) -> bool {
        arch::paging::direct_phys_mem().copy_to_user_nohook(frame, offset, addr as u64, len)
    }

    fn user_to_frame_nofault(
        &mut self,
        addr: usize,
        frame: vm::PhysAddr,
        offset: usize,
        len: usize,
    ) -> bool {
        arch::paging::direct_phys_mem().copy_from_user_nohook(addr as u64, frame, offset, len)
    }

    fn zeros_to_user_nofault(&mut self, addr: usize, len: usize) -> bool {
        arch::extable::zero_user_nohook(addr as u64, len)
    }
}

/// The calling thread, as the syscall layer sees it.
pub(super) struct Ctx {
    thread: Arc<Thread>,
    process: Arc<Process>,
    mem: CurrentUserMemory,
}

impl Ctx {
    /// The context of `thread` of `process` calling in.
    #[inline]
    pub(super) fn new(thread: Arc<Thread>, process: Arc<Process>) -> Ctx {
        Ctx {
            thread,
            process,
            mem: CurrentUserMemory,
        }
    }

    /// The calling thread.
    #[inline]
    pub(super) fn thread(&self) -> &Arc<Thread> {
        &self.thread
    }
}

fn as_process(p: &Arc<dyn ProcessObject>) -> Result<Arc<Process>, Status> {
    p.clone()
        .as_any()
        .downcast::<Process>()
        .map_err(|_| Status::ERR_WRONG_TYPE)
}

fn as_thread(t: &Arc<dyn ThreadObject>) -> Result<Arc<Thread>, Status> {
    t.clone()
        .as_any()
        .downcast::<Thread>()
        .map_err(|_| Status::ERR_WRONG_TYPE)
}

/// Starts `thread` of `process` in ring 3 with `frame`.
fn start_thread(
    process: &Arc<Process>,
    thread: &Arc<Thread>,
    first: bool,
    frame: &TrapFrame,
) -> ZxResult {
    match thread.process() {
        Some(p) if Arc::ptr_eq(p, process) => {}
        _ => return Err(Status::ERR_ACCESS_DENIED),
    }
    // The first entry to ring 3 is an `iretq`, which faults in ring 0 on a non-canonical RIP:
    // entry and stack must be user addresses (Zircon checks the entry the same way; the stack
    // check is ours).
    if frame.rip >= arch::paging::USER_ASPACE_END || frame.rsp > arch::paging::USER_ASPACE_END {
        return Err(Status::ERR_INVALID_ARGS);
    }
    if thread.state() != State::New {
        return Err(Status::ERR_BAD_STATE);
    }
    thread.prepare(sched::user_thread_start, frame, None)?;
    process.add_started_thread(thread, first)?;
    sched::make_ready(thread);
    Ok(())
}

/// Creates a thread object in `process`, not started (and not yet counted by the process, as in
/// Zircon: so creating one in a dead process succeeds and starting it is `ZX_ERR_BAD_STATE`),
/// charged to the `creator` process's account. `ZX_ERR_NO_RESOURCES` at the thread quotas
/// ([`super::quota::admit_thread`]), `ZX_ERR_NO_MEMORY` when its kernel stack cannot be
/// allocated.
pub fn new_thread(
    creator: &Process,
    process: &Arc<Process>,
    name: &[u8],
) -> Result<Arc<Thread>, Status> {
    let charge = super::quota::admit_thread(process, creator.account())?;
    let name = core::str::from_utf8(name).unwrap_or("?");
    Thread::new(
        name,
        Some(process.clone()),
        syscalls::new_koid(),
        Some(charge),
    )
    .ok_or(Status::ERR_NO_MEMORY)
}

/// Starts `process` on `thread` with the startup registers of `start` (the startup ABI).
pub fn start_process(
    process: &Arc<Process>,
    thread: &Arc<Thread>,
    start: &ProcessStart,
) -> ZxResult {
    let frame = arch::context::user_frame(
        start.entry as u64,
        start.stack as u64,
        u64::from(start.arg1),
        start.arg2,
        u64::from(start.process),
        u64::from(start.root_vmar),
        u64::from(start.thread),
    );
    start_thread(process, thread, true, &frame)
}

/// Waits until `signals(object) & want != 0`, the deadline (ns), or a kill of the caller.
pub fn wait_one(thread: &Thread, object: &Object, want: u32, deadline: i64) -> (ZxResult, u32) {
    let deadline = if deadline < 0 { 0 } else { deadline as u64 };
    interrupts::without_interrupts(|| loop {
        let seen = sched::wake_seq();
        let observed = object.signals();
        if observed & want != 0 {
            return (Ok(()), observed);
        }
        if thread.kill_requested() {
            return (Err(Status::ERR_CANCELED), observed);
        }
        if clock::now_ns() >= deadline {
            return (Err(Status::ERR_TIMED_OUT), observed);
        }
        sched::block_current(deadline, seen);
    })
}

/// Whether `zx_process_read_memory` / `write_memory` are enabled: the kernel command line's
/// `debug_syscalls` flag (Zircon's `kernel.enable-debugging-syscalls`), set once at boot.
static DEBUGGING_SYSCALLS: AtomicBool = AtomicBool::new(false);

/// Sets the debugging-syscalls switch (at boot, from the command line; ktests flip it).
pub fn set_debugging_syscalls(on: bool) {
    DEBUGGING_SYSCALLS.store(on, Ordering::Relaxed);
}

/// The debugging-syscalls switch.
pub fn debugging_syscalls() -> bool {
    DEBUGGING_SYSCALLS.load(Ordering::Relaxed)
}

/// Reads (`write = None`) or writes another process's memory the way Zircon's
/// `zx_process_read_memory` / `write_memory` do: through the VMO of the one mapping containing
/// `vaddr` (so the mapping's current protection does not matter, a read commits nothing, a write
/// commits what it touches), truncated at the end of that mapping and of its VMO.
///
/// Rights: the mapping's maximum protection (the rights ceiling recorded at map time, from the
/// VMO handle's and VMAR handle's rights and the region's `CAN_MAP_*`) must include READ, else
/// `ZX_ERR_ACCESS_DENIED` (a MAP-only VMO cannot be read nor written this way: the target could
/// never see those bytes). A write into a mapping whose maximum lacks WRITE (code mapped from
/// the ramdisk, a read-only VMO handle's mapping) goes to the mapping's private copy-on-write
/// child (`vm::AddressSpace::private_copy_for_write`, Zircon's `ForceWritable`): the target sees
/// it through that mapping, the VMO and every other mapping of it never do. A mapping whose
/// maximum has WRITE is written in its VMO.
///
/// No mapping at `vaddr`: `ZX_ERR_NOT_FOUND` (current Zircon; its core tests
/// `Vmar.PartialUnmapAndRead` / `check_pages_mapped` assert it; older Zircon trees returned
/// `ZX_ERR_NO_MEMORY`, see docs/conformance.md); `vaddr` in a mapping but past
/// its VMO's end (an ALLOW_FAULTS mapping): `ZX_ERR_OUT_OF_RANGE`; a torn-down process:
/// `ZX_ERR_BAD_STATE`.
fn access_memory(
    process: &Arc<Process>,
    vaddr: usize,
    read: Option<&mut [u8]>,
    write: Option<&[u8]>,
) -> Result<usize, Status> {
    let aspace = process.aspace().ok_or(Status::ERR_BAD_STATE)?;
    let window = aspace.mapping_at(vaddr).ok_or(Status::ERR_NOT_FOUND)?;
    let into_mapping = vaddr - window.base;
    let offset = window
        .vmo_offset
        .checked_add(into_mapping as u64)
        .ok_or(Status::ERR_OUT_OF_RANGE)?;
    if !window.max_perms.contains(MmuFlags::READ) {
        return Err(Status::ERR_ACCESS_DENIED);
    }
    let in_vmo = window.vmo.size().saturating_sub(offset);
    if in_vmo == 0 {
        return Err(Status::ERR_OUT_OF_RANGE);
    }
    let (window, offset) = match write {
        Some(_) if !window.max_perms.contains(MmuFlags::WRITE) => {
            let copy = aspace.private_copy_for_write(vaddr)?;
            if !copy.max_perms.contains(MmuFlags::READ) {
                return Err(Status::ERR_ACCESS_DENIED);
            }
            let at = copy
                .vmo_offset
                .checked_add((vaddr - copy.base) as u64)
                .ok_or(Status::ERR_OUT_OF_RANGE)?;
            (copy, at)
        }
        _ => (window, offset),
    };
    // The copy covers the mapping as it is now (it may have changed since the lookup above).
    let into_mapping = vaddr - window.base;
    let in_vmo = window.vmo.size().saturating_sub(offset).min(in_vmo);
    let len = read.as_ref().map_or(0, |b| b.len()) + write.map_or(0, |b| b.len());
    let n = len
        .min(window.len - into_mapping)
        .min(usize::try_from(in_vmo).unwrap_or(usize::MAX));
    if let Some(buf) = read {
        window.vmo.read(offset, &mut buf[..n])?;
    }
    if let Some(buf) = write {
        // A page changing frame in steps is waited for by driving the change, with preemption
        // points (no lock is held here), then the write starts again.
        loop {
            match window.vmo.write_or_wait(offset, &buf[..n]) {
                Err(Status::ERR_SHOULD_WAIT) => {
                    window.vmo.finish_transition(&mut sched::preempt_point);
                    sched::preempt_point();
                }
                r => break r?,
            }
        }
    }
    Ok(n)
}

impl SyscallContext for Ctx {
    fn with_handle_table(&mut self, f: &mut dyn FnMut(&mut ObjectTable)) {
        self.process.with_handles(|t| f(t));
    }

    fn user_memory(&mut self) -> &mut dyn UserMemory {
        &mut self.mem
    }

    fn phys_mem(&self) -> Arc<dyn PhysMem> {
        arch::paging::phys_mem()
    }

    fn process_create(&mut self, name: &[u8]) -> Result<Arc<dyn ProcessObject>, Status> {
        Ok(Process::create(name, Some(self.process.account()))?)
    }

    fn thread_create(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        name: &[u8],
    ) -> Result<Arc<dyn ThreadObject>, Status> {
        let p = as_process(process)?;
        Ok(new_thread(&self.process, &p, name)?)
    }

    fn process_start(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        thread: &Arc<dyn ThreadObject>,
        start: &ProcessStart,
    ) -> ZxResult {
        start_process(&as_process(process)?, &as_thread(thread)?, start)
    }

    fn thread_start(
        &mut self,
        thread: &Arc<dyn ThreadObject>,
        entry: usize,
        stack: usize,
        arg1: u64,
        arg2: u64,
    ) -> ZxResult {
        let t = as_thread(thread)?;
        let p = t.process().cloned().ok_or(Status::ERR_BAD_STATE)?;
        let frame = arch::context::user_frame(entry as u64, stack as u64, arg1, arg2, 0, 0, 0);
        start_thread(&p, &t, false, &frame)
    }

    fn process_exit(&mut self, retcode: i64) {
        self.process.kill(retcode);
    }

    fn thread_exit(&mut self) {
        self.thread.request_kill();
    }

    fn process_kill(&mut self, process: &Arc<dyn ProcessObject>) {
        if let Ok(p) = as_process(process) {
            p.kill(ZX_TASK_RETCODE_SYSCALL_KILL);
        }
    }

    fn object_wait_one(&mut self, object: &Object, signals: u32, deadline: i64) -> (ZxResult, u32) {
        self.thread.in_wait_one.store(true, Ordering::SeqCst);
        let r = wait_one(&self.thread, object, signals, deadline);
        self.thread.in_wait_one.store(false, Ordering::SeqCst);
        r
    }

    fn debugging_syscalls_enabled(&self) -> bool {
        debugging_syscalls()
    }

    fn process_read_memory(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        vaddr: usize,
        buf: &mut [u8],
    ) -> Result<usize, Status> {
        access_memory(&as_process(process)?, vaddr, Some(buf), None)
    }

    fn process_write_memory(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        vaddr: usize,
        buf: &[u8],
    ) -> Result<usize, Status> {
        access_memory(&as_process(process)?, vaddr, None, Some(buf))
    }

    fn debug_write(&mut self, bytes: &[u8]) {
        crate::demo::panic_if_requested(bytes);
        arch::serial::write_bytes(bytes);
    }

    fn ticks_get(&self) -> i64 {
        clock::ticks()
    }

    fn ticks_per_second(&self) -> i64 {
        clock::ticks_per_second()
    }

    fn clock_get_monotonic(&self) -> i64 {
        clock::now_ns() as i64
    }

    fn kernel_stats(&mut self) -> Result<[u64; abi::kstats::COUNT], Status> {
        use abi::kstats as k;
        // Exits already signalled but whose CPU has not left the thread yet (its stack and the
        // last references to it and its process go then) count as done.
        sched::settle_exits();
        let (checked, failed) = crate::mm::check_live_aspaces(sched::preempt_point);
        let mut s = [0; k::COUNT];
        s[k::FREE_FRAMES] = crate::frame_alloc::stats().free;
        s[k::HEAP_FRAMES] = crate::heap::frames();
        s[k::DATA_FRAMES] =
            arch::paging::direct_phys_mem().count(arch::paging::FrameKind::Data) as u64;
        s[k::TABLE_PAGES] = arch::paging::live_table_pages() as u64;
        s[k::KERNEL_STACKS] = super::thread::live_stacks();
        s[k::HANDLES] = syscalls::handle::live_handle_count() as u64;
        s[k::PROCESSES] = u64::from(super::process::live_processes());
        s[k::ASPACES_CHECKED] = checked;
        s[k::INVARIANT_FAILURES] = failed;
        Ok(s)
    }

    fn irqoff_stats(&mut self, reset: bool) -> Result<[u64; abi::irqoff::COUNT], Status> {
        Ok(super::irqoff::stats(reset))
    }

    fn preempt_point(&mut self) {
        sched::preempt_point();
    }
}
