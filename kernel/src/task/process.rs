//! Processes: an address space, a handle table, threads, a return code and signals.
//!
//! Lifetime: a process is alive while it has threads or has never been started. When its last
//! thread exits (or a kill reaches every thread), it is torn down exactly once
//! ([`Process::teardown`]): the handle table is emptied (breaking the cycles through its own
//! process/thread handles), every mapping and sub-region of the address space is removed (frames
//! back to the allocator), the address space is released (if it is the current one, the CPU goes
//! back to the kernel's table first; the page tables are freed with the last reference), then
//! `ZX_PROCESS_TERMINATED` is asserted and waiters are woken. Objects leave the handle table
//! under its lock and are dropped after it.

use super::sched;
use super::thread::Thread;
use crate::mm::UserAspace;
use crate::SpinMutex as Mutex;
use abi::info::process_flags::{ZX_INFO_PROCESS_FLAG_EXITED, ZX_INFO_PROCESS_FLAG_STARTED};
use abi::info::{InfoProcess, ZX_MAX_NAME_LEN};
use abi::Status;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU32, Ordering};
use lock_order::{Class, OrderedMutex};
use syscalls::account::{Account, Charge};
use syscalls::exception::ExceptionPort;
use syscalls::handle::HandleTable;
use syscalls::{ObjectTable, ProcessObject, VmarObject};
use vm::SplitMix64;
use vm::{AddressSpace, ALL_RIGHTS};

/// `ZX_PROCESS_TERMINATED`.
pub const SIGNAL_TERMINATED: u32 = abi::signals::ZX_PROCESS_TERMINATED;

/// Life-cycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Created, no thread started yet.
    Initial,
    /// At least one thread started.
    Running,
    /// Being killed or exiting: threads are dying.
    Dying,
    /// All threads gone, resources released.
    Dead,
}

struct Inner {
    lifecycle: Lifecycle,
    return_code: i64,
    start_time: i64,
    threads: Vec<Arc<Thread>>,
}

/// A process.
pub struct Process {
    koid: u64,
    /// NUL-padded; `ZX_PROP_NAME` may change it.
    name: Mutex<[u8; ZX_MAX_NAME_LEN]>,
    /// The address space and its page-table root; `None` once torn down.
    aspace: Mutex<Option<UserAspace>>,
    root_vmar_koid: u64,
    handles: OrderedMutex<ObjectTable>,
    inner: OrderedMutex<Inner>,
    signals: AtomicU32,
    /// Thread objects of this process not yet dropped (the thread quota).
    thread_objects: AtomicU32,
    /// `zx_task_create_exception_channel` on this process.
    exception_port: ExceptionPort,
    /// What this process (and its descendants) make the kernel hold (`syscalls::account`).
    account: Arc<Account>,
    /// The creator's charge for this process (`None` for a process the kernel creates).
    _charge: Option<Charge>,
}

impl core::fmt::Debug for Process {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Process({} {:?})", self.koid, self.name_str())
    }
}

/// Processes alive (not yet dropped), for teardown checks.
static LIVE: AtomicU32 = AtomicU32::new(0);

/// Number of `Process` objects not yet dropped.
pub fn live_processes() -> u32 {
    LIVE.load(Ordering::SeqCst)
}

impl Process {
    /// A new process with an empty user address space, created by the process whose account is
    /// `creator` (charged one process; the new account is its child), or by the kernel (`None`:
    /// a root account). `ERR_NO_RESOURCES` at the creator's process budget, `ERR_NO_MEMORY`
    /// when the page table cannot be allocated. `name` is truncated to 31 bytes.
    pub fn create(name: &[u8], creator: Option<&Arc<Account>>) -> Result<Arc<Process>, Status> {
        let charge = super::quota::charge_process(creator)?;
        let account = super::quota::new_account(creator);
        let user_aspace = crate::mm::new_user_aspace(super::random::aspace_rng())?;
        super::quota::bound_address_space(&user_aspace.aspace, &account);
        let mut n = [0u8; ZX_MAX_NAME_LEN];
        let len = name.len().min(ZX_MAX_NAME_LEN - 1);
        n[..len].copy_from_slice(&name[..len]);
        let mut rng = SplitMix64::new(super::random::next_u64());
        let mut handles = HandleTable::new(&mut rng);
        handles.set_account(account.clone());
        LIVE.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(Process {
            koid: syscalls::new_koid(),
            name: Mutex::new(n),
            aspace: Mutex::new(Some(user_aspace)),
            root_vmar_koid: syscalls::new_koid(),
            handles: OrderedMutex::new(Class::ProcessHandles, handles),
            inner: OrderedMutex::new(
                Class::ProcessInner,
                Inner {
                    lifecycle: Lifecycle::Initial,
                    return_code: 0,
                    start_time: 0,
                    threads: Vec::new(),
                },
            ),
            signals: AtomicU32::new(0),
            thread_objects: AtomicU32::new(0),
            exception_port: ExceptionPort::new(),
            account,
            _charge: charge,
        }))
    }

    /// The process's account.
    pub fn account(&self) -> &Arc<Account> {
        &self.account
    }

    /// Thread objects of this process alive (created and not dropped, started or not).
    pub fn thread_objects(&self) -> u32 {
        self.thread_objects.load(Ordering::SeqCst)
    }

    /// Counts one thread object more (`true`) or less (`false`); [`Thread`] calls this.
    pub(super) fn count_thread_object(&self, more: bool) {
        if more {
            self.thread_objects.fetch_add(1, Ordering::SeqCst);
        } else {
            self.thread_objects.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Kernel object id.
    pub fn koid(&self) -> u64 {
        self.koid
    }

    /// The name as text (up to the first NUL; lossy).
    pub fn name_str(&self) -> alloc::string::String {
        let name = *self.name.lock();
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        alloc::string::String::from(core::str::from_utf8(&name[..end]).unwrap_or("?"))
    }

    /// Asserted signals.
    pub fn signals(&self) -> u32 {
        self.signals.load(Ordering::SeqCst)
    }

    /// Return code (meaningful once dead).
    pub fn return_code(&self) -> i64 {
        self.inner.lock().return_code
    }

    /// The address space, unless torn down.
    pub fn aspace(&self) -> Option<Arc<AddressSpace>> {
        self.aspace.lock().as_ref().map(|u| u.aspace.clone())
    }

    /// Loads this process's page table and makes it the one user faults resolve against (on a
    /// switch to one of its threads). Returns the previously current address space for the
    /// caller to drop outside its locks.
    pub fn activate(&self) -> Option<UserAspace> {
        let current = self.aspace.lock().clone();
        current
            .map(|c| crate::mm::switch_aspace(Some(c)))
            .unwrap_or(None)
    }

    /// The process's exception port.
    pub fn exception_port(&self) -> &ExceptionPort {
        &self.exception_port
    }

    /// Runs `f` on the handle table.
    pub fn with_handles<R>(&self, f: impl FnOnce(&mut ObjectTable) -> R) -> R {
        f(&mut self.handles.lock())
    }

    /// Counts `t` as a thread of the process as it starts: the first thread of an `Initial`
    /// process (`first`) or another thread of a `Running` one; `ERR_BAD_STATE` otherwise.
    pub fn add_started_thread(&self, t: &Arc<Thread>, first: bool) -> Result<(), Status> {
        let mut inner = self.inner.lock();
        match (inner.lifecycle, first) {
            (Lifecycle::Initial, true) => {
                inner.lifecycle = Lifecycle::Running;
                inner.start_time = super::clock::now_ns() as i64;
            }
            (Lifecycle::Running, false) => {}
            _ => return Err(Status::ERR_BAD_STATE),
        }
        inner.threads.push(t.clone());
        Ok(())
    }

    /// Ends the process with `code` (the first code wins): every started thread is asked to die
    /// at its next return towards user mode, blocked ones are woken. Tears down at once when no
    /// thread is running (or none was ever started).
    pub fn kill(&self, code: i64) {
        let empty = {
            let mut inner = self.inner.lock();
            match inner.lifecycle {
                Lifecycle::Dying | Lifecycle::Dead => return,
                _ => {}
            }
            inner.lifecycle = Lifecycle::Dying;
            inner.return_code = code;
            for t in &inner.threads {
                t.request_kill();
            }
            inner.threads.is_empty()
        };
        sched::wake_all();
        if empty {
            self.teardown();
        }
    }

    /// Called by the scheduler when one of its threads exited. The last thread of a running
    /// process ends it (return code 0 unless an exit or kill set one).
    pub(super) fn thread_exited(&self, t: &Arc<Thread>) {
        let empty = {
            let mut inner = self.inner.lock();
            inner.threads.retain(|x| !Arc::ptr_eq(x, t));
            inner.threads.is_empty()
        };
        if empty {
            self.teardown();
        }
    }

    /// Called by `me`, a thread of this process on its way out (not dead yet, still able to be
    /// preempted): when every other thread of the process has been asked to die too, the
    /// process is Dying from here on (no thread can start in it) and `me` closes its handles and
    /// empties its address space in steps, `preempt` between two, as a stepped teardown does
    /// ([`Process::release_in_steps`]). The teardown the last exit triggers
    /// ([`Process::thread_exited`]) then finds nothing left to do; without this, the exit of a
    /// process holding 60 000 mappings kept interrupts off for 200-380 ms (utest
    /// `irqoff::exit_of_a_process_with_60k_mappings`). Two threads leaving at once may both do
    /// it: the steps are ordinary handle-table and VMAR operations under their locks.
    pub(super) fn empty_before_exit(&self, me: &Arc<Thread>, preempt: &mut dyn FnMut()) {
        {
            let mut inner = self.inner.lock();
            let others_live = inner
                .threads
                .iter()
                .any(|t| !Arc::ptr_eq(t, me) && !t.kill_requested());
            if inner.lifecycle == Lifecycle::Dead || others_live {
                return;
            }
            inner.lifecycle = Lifecycle::Dying;
        }
        self.release_in_steps(preempt);
    }

    /// Closes every handle of the table, each with `preempt` after it (a handle holding the
    /// last reference to a VMO or an idle process releases it in steps:
    /// `syscalls::sys::handle::release_in_steps`; one to a channel endpoint drops at most one
    /// drain step's messages), then empties the address space in steps of
    /// [`TEARDOWN_STEP_REGIONS`] regions. The address space stays (empty) for the teardown.
    fn release_in_steps(&self, preempt: &mut dyn FnMut()) {
        let handles = self.handles.lock().clear();
        for handle in handles {
            syscalls::sys::handle::release_in_steps(handle, &mut *preempt);
            preempt();
        }
        // Not under the `aspace` lock: a plain spin lock is a leaf, and the tree lock may be
        // held by a CPU that waits for a shootdown.
        let Some(aspace) = self.aspace() else {
            return;
        };
        let root_vmar = aspace.root_vmar();
        release_private_vmos(&root_vmar, preempt);
        while root_vmar.empty_step(TEARDOWN_STEP_REGIONS) == Ok(TEARDOWN_STEP_REGIONS) {
            preempt();
        }
    }

    /// Releases everything the process holds (see the module docs). Idempotent.
    pub fn teardown(&self) {
        self.teardown_with(None);
    }

    /// [`Process::teardown`]; with `preempt`, the handles and the address space's contents go
    /// in steps first ([`Process::release_in_steps`]; the caller holds no lock and the process
    /// is not running).
    pub fn teardown_with(&self, preempt: Option<&mut dyn FnMut()>) {
        {
            let mut inner = self.inner.lock();
            if inner.lifecycle == Lifecycle::Dead {
                return;
            }
            inner.lifecycle = Lifecycle::Dying;
        }
        // The exception channel's kernel end goes (its user end sees PEER_CLOSED).
        self.exception_port.shutdown();
        // With `preempt`: the handles and the address space's contents go in steps first.
        if let Some(preempt) = preempt {
            self.release_in_steps(preempt);
        }
        // Handles: removed under the lock, dropped outside it.
        let handles = self.handles.lock().clear();
        drop(handles);
        // Address space: unmap everything (frames go back to the VMOs, whose last reference may
        // be this), then let go of it. If it is loaded, return to the kernel table first.
        let aspace = self.aspace.lock().take();
        if let Some(UserAspace { aspace, root, .. }) = aspace {
            // Empty already when `preempt` was given (or a last exit emptied it in steps).
            let root_vmar = aspace.root_vmar();
            let (at, rest) = (root_vmar.base(), root_vmar.size());
            let _ = root_vmar.unmap(at, rest, ALL_RIGHTS);
            drop(root_vmar);
            let previous = if arch::paging::active_root_phys() == root {
                crate::mm::switch_aspace(None)
            } else {
                None
            };
            drop(previous);
            drop(aspace);
        }
        self.inner.lock().lifecycle = Lifecycle::Dead;
        self.signals.fetch_or(SIGNAL_TERMINATED, Ordering::SeqCst);
        sched::wake_all();
    }
}

/// Decommits, in steps with `preempt` between, every VMO that only the mappings of `root`'s
/// address space still reference (so its drop at the unmap has no frames left to free). Nobody
/// else can see these pages: the address space is being emptied.
fn release_private_vmos(root: &vm::Vmar, preempt: &mut dyn FnMut()) {
    // Per VMO (by address): one reference kept here and the number of its mappings.
    let mut vmos: alloc::collections::BTreeMap<usize, (Arc<vm::Vmo>, usize)> =
        alloc::collections::BTreeMap::new();
    let mut cursor = vm::WalkCursor::new();
    while !cursor.is_done() {
        let Ok(step) = root.walk_step(&mut cursor, RELEASE_WALK_STEP) else {
            return;
        };
        for (_, vmo) in step {
            if let Some(vmo) = vmo {
                vmos.entry(Arc::as_ptr(&vmo) as *const u8 as usize)
                    .or_insert_with(|| (vmo, 0))
                    .1 += 1;
            }
        }
        preempt();
    }
    let page = abi::PAGE_SIZE as u64;
    for (vmo, mappings) in vmos.values() {
        // Widely mapped VMOs are left to the unmap steps: a decommit step removes each page
        // from every mapping at once.
        if Arc::strong_count(vmo) != mappings + 1 || *mappings > RELEASE_MAX_MAPPINGS {
            continue;
        }
        let end = vmo.page_count();
        let mut at = 0;
        while let Some(next) = vmo.next_committed(at, end) {
            let step = (2048 / (1 + *mappings as u64)).clamp(1, 256);
            let step_end = end.min(next + step);
            let _ = vmo.decommit(next * page, (step_end - next) * page);
            at = step_end;
            preempt();
        }
    }
}

/// Regions [`release_private_vmos`] lists per hold of the tree lock.
const RELEASE_WALK_STEP: usize = 256;

/// VMOs with more mappings than this are not decommitted ahead by [`release_private_vmos`].
const RELEASE_MAX_MAPPINGS: usize = 16;

/// Regions (mappings, or sub-VMARs once empty, at any depth) one step of a stepped teardown
/// removes.
pub const TEARDOWN_STEP_REGIONS: usize = 128;

impl Drop for Process {
    fn drop(&mut self) {
        // A process that was never started (or not torn down) still owns its resources.
        if self.inner.get_mut().lifecycle != Lifecycle::Dead {
            self.teardown();
        }
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ProcessObject for Process {
    fn koid(&self) -> u64 {
        self.koid
    }

    fn name(&self) -> [u8; ZX_MAX_NAME_LEN] {
        *self.name.lock()
    }

    fn teardown_in_steps(&self, preempt: &mut dyn FnMut()) {
        let idle = {
            let inner = self.inner.lock();
            inner.threads.is_empty() && inner.lifecycle != Lifecycle::Dead
        };
        if idle {
            self.teardown_with(Some(preempt));
        }
    }

    fn set_name(&self, name: &[u8]) -> Result<(), Status> {
        *self.name.lock() = syscalls::object::name_array(name);
        Ok(())
    }

    fn root_vmar(&self) -> Result<VmarObject, Status> {
        let aspace = self.aspace().ok_or(Status::ERR_BAD_STATE)?;
        Ok(VmarObject::with_koid(
            aspace.root_vmar(),
            self.root_vmar_koid,
        ))
    }

    fn info(&self) -> InfoProcess {
        let inner = self.inner.lock();
        let mut flags = 0;
        if inner.lifecycle != Lifecycle::Initial {
            flags |= ZX_INFO_PROCESS_FLAG_STARTED;
        }
        if inner.lifecycle == Lifecycle::Dead {
            flags |= ZX_INFO_PROCESS_FLAG_EXITED;
        }
        InfoProcess {
            return_code: if inner.lifecycle == Lifecycle::Dead {
                inner.return_code
            } else {
                0
            },
            start_time: inner.start_time,
            flags,
            ..InfoProcess::default()
        }
    }

    fn signals(&self) -> u32 {
        Process::signals(self)
    }

    fn with_handle_table(&self, f: &mut dyn FnMut(&mut ObjectTable)) {
        f(&mut self.handles.lock())
    }

    fn exception_port(&self) -> &ExceptionPort {
        &self.exception_port
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}
