//! A mock kernel for host tests of the syscall layer: a [`SyscallContext`] over `vm`'s software
//! MMU and frame allocator, a fake user memory, and simple process / thread objects.
#![allow(dead_code, unused_imports)]

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};
use syscalls::exception::{ExceptionPort, ThreadExceptionState};

use abi::info::{process_flags, InfoProcess, ZX_MAX_NAME_LEN};
use abi::signals::{ZX_PROCESS_TERMINATED, ZX_THREAD_RUNNING};
use abi::task::ZX_TASK_RETCODE_SYSCALL_KILL;
use abi::wire::Wire;
use abi::{Status, ZxResult};
use syscalls::handle::HandleTable;
use syscalls::user_ptr::mock::FakeUserMemory;
use syscalls::user_ptr::UserMemory;
use syscalls::{
    dispatch, new_koid, with_table, Object, ObjectTable, ProcessObject, ProcessStart,
    SyscallContext, ThreadObject, VmarObject,
};
use vm::soft_mmu::{SoftMmu, SoftPhysMem};
use vm::SplitMix64;
use vm::{AddressSpace, AspaceConfig, PhysMem, RegionInfo};

pub use abi::rights::*;
pub use abi::syscall_numbers::*;
pub use abi::vm_options::*;

/// User address space of every mock process.
pub const ASPACE_BASE: usize = 0x1000_0000;
/// Its size (1 GiB).
pub const ASPACE_LEN: usize = 0x4000_0000;

/// A writable fake-user buffer (64 KiB).
pub const BUF: usize = 0x10_0000;
/// Its size.
pub const BUF_LEN: usize = 0x1_0000;
/// A read-only fake-user page.
pub const RO: usize = 0x20_0000;
/// An unmapped user address.
pub const UNMAPPED: usize = 0x30_0000;
/// A kernel-half address.
pub const KERNEL: usize = 0xffff_8000_0000_1000;

/// Every bad out-pointer kind and its name: null, unmapped, read-only, kernel half, misaligned.
pub const BAD_OUT: [(usize, &str); 5] = [
    (0, "null"),
    (UNMAPPED, "unmapped"),
    (RO, "read-only"),
    (KERNEL, "kernel half"),
    (BUF + 1, "misaligned"),
];

/// Frames of the mock's physical memory.
pub const FRAMES: usize = 256;

/// Tests that compare `live_handle_count` hold this, so the global counter is exact.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn name_array(name: &[u8]) -> [u8; ZX_MAX_NAME_LEN] {
    abi::info::name_field(name)
}

/// Lifecycle of a mock process.
#[derive(Debug, Default)]
pub struct ProcState {
    /// Registers given to `process_start`.
    pub started: Option<ProcessStart>,
    /// Return code once dead.
    pub exited: Option<i64>,
}

/// A process: an address space over a `SoftMmu`, a handle table, a state.
pub struct MockProcess {
    koid: u64,
    name: [u8; ZX_MAX_NAME_LEN],
    aspace: Mutex<Option<Arc<AddressSpace>>>,
    root_koid: u64,
    /// The handle table.
    pub table: Mutex<ObjectTable>,
    /// The state.
    pub state: Mutex<ProcState>,
    /// The exception port.
    pub port: ExceptionPort,
}

impl MockProcess {
    /// A new, unstarted process.
    pub fn new(name: &[u8], seed: u64) -> Arc<MockProcess> {
        let (mmu, _probe) = SoftMmu::boxed();
        let aspace = AddressSpace::new(
            AspaceConfig::user(ASPACE_BASE, ASPACE_LEN),
            mmu,
            Box::new(vm::SplitMix64::new(seed)),
        )
        .expect("aspace");
        Arc::new(MockProcess {
            koid: new_koid(),
            name: name_array(name),
            aspace: Mutex::new(Some(aspace)),
            root_koid: new_koid(),
            table: Mutex::new(HandleTable::new(&mut SplitMix64::new(seed))),
            state: Mutex::new(ProcState::default()),
            port: ExceptionPort::new(),
        })
    }

    /// The address space (panics once torn down).
    pub fn aspace(&self) -> Arc<AddressSpace> {
        self.aspace.lock().unwrap().clone().expect("address space")
    }

    /// Death: records the return code, closes every handle, drops the address space (the
    /// teardown the real kernel does).
    pub fn die(&self, retcode: i64) {
        let mut state = self.state.lock().unwrap();
        if state.exited.is_some() {
            return;
        }
        state.exited = Some(retcode);
        drop(state);
        self.port.shutdown();
        let handles = self.table.lock().unwrap().clear();
        drop(handles);
        let aspace = self.aspace.lock().unwrap().take();
        drop(aspace);
    }
}

impl ProcessObject for MockProcess {
    fn koid(&self) -> u64 {
        self.koid
    }

    fn name(&self) -> [u8; ZX_MAX_NAME_LEN] {
        self.name
    }

    fn root_vmar(&self) -> Result<VmarObject, Status> {
        let aspace = self.aspace.lock().unwrap();
        let aspace = aspace.as_ref().ok_or(Status::ERR_BAD_STATE)?;
        Ok(VmarObject::with_koid(aspace.root_vmar(), self.root_koid))
    }

    fn info(&self) -> InfoProcess {
        let state = self.state.lock().unwrap();
        let mut flags = 0;
        if state.started.is_some() {
            flags |= process_flags::ZX_INFO_PROCESS_FLAG_STARTED;
        }
        if state.exited.is_some() {
            flags |= process_flags::ZX_INFO_PROCESS_FLAG_EXITED;
        }
        InfoProcess {
            return_code: state.exited.unwrap_or(0),
            start_time: if state.started.is_some() { 1000 } else { 0 },
            flags,
            ..InfoProcess::default()
        }
    }

    fn signals(&self) -> u32 {
        if self.state.lock().unwrap().exited.is_some() {
            ZX_PROCESS_TERMINATED
        } else {
            0
        }
    }

    fn with_handle_table(&self, f: &mut dyn FnMut(&mut ObjectTable)) {
        f(&mut self.table.lock().unwrap())
    }

    fn exception_port(&self) -> &ExceptionPort {
        &self.port
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// A thread: which process, and the registers it was started with.
pub struct MockThread {
    koid: u64,
    process_koid: u64,
    /// `(entry, stack, arg1, arg2)` once started.
    pub started: Mutex<Option<(usize, usize, u64, u64)>>,
    /// The exception port.
    pub port: ExceptionPort,
    /// The in-flight exception (tests put the thread "in an exception" with `begin`).
    pub exception: ThreadExceptionState,
}

impl ThreadObject for MockThread {
    fn koid(&self) -> u64 {
        self.koid
    }

    fn name(&self) -> [u8; ZX_MAX_NAME_LEN] {
        name_array(b"thread")
    }

    fn process_koid(&self) -> u64 {
        self.process_koid
    }

    fn signals(&self) -> u32 {
        if self.started.lock().unwrap().is_some() {
            ZX_THREAD_RUNNING
        } else {
            0
        }
    }

    fn state(&self) -> u32 {
        if self.exception.active() {
            abi::exception::thread_state::ZX_THREAD_STATE_BLOCKED_EXCEPTION
        } else if self.started.lock().unwrap().is_some() {
            abi::exception::thread_state::ZX_THREAD_STATE_RUNNING
        } else {
            abi::exception::thread_state::ZX_THREAD_STATE_NEW
        }
    }

    fn exception_port(&self) -> &ExceptionPort {
        &self.port
    }

    fn exception_state(&self) -> &ThreadExceptionState {
        &self.exception
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

fn mock_process(process: &Arc<dyn ProcessObject>) -> Arc<MockProcess> {
    process
        .clone()
        .as_any()
        .downcast::<MockProcess>()
        .expect("a MockProcess")
}

fn mock_thread(thread: &Arc<dyn ThreadObject>) -> Arc<MockThread> {
    thread
        .clone()
        .as_any()
        .downcast::<MockThread>()
        .expect("a MockThread")
}

/// The mock kernel, standing for one thread of [`Mock::process`].
pub struct Mock {
    /// The calling process.
    pub process: Arc<MockProcess>,
    /// Its user memory.
    pub mem: FakeUserMemory,
    /// The frame allocator.
    pub phys: Arc<SoftPhysMem>,
    /// What `zx_debug_write` wrote.
    pub log: Vec<u8>,
    /// Processes made by `zx_process_create`.
    pub children: Vec<Arc<MockProcess>>,
    /// Set by `zx_thread_exit`.
    pub thread_exited: bool,
    /// Handle value of the calling process's root VMAR.
    pub root: u32,
    /// Calls of `process_read_memory` / `process_write_memory`: `(vaddr, len)`.
    pub memory_calls: Vec<(usize, usize)>,
    /// The kernel command line's debugging-syscalls switch (on unless a test turns it off).
    pub debug_syscalls: bool,
}

impl Mock {
    /// A running process with its root VMAR handle (default rights) in its table.
    pub fn new() -> Mock {
        let process = MockProcess::new(b"test", 1);
        process.state.lock().unwrap().started = Some(ProcessStart {
            entry: 0,
            stack: 0,
            arg1: 0,
            arg2: 0,
            process: 0,
            root_vmar: 0,
            thread: 0,
        });
        let phys = SoftPhysMem::new(FRAMES);
        let mut mem = FakeUserMemory::new();
        mem.map(BUF, BUF_LEN, true);
        mem.map(RO, 0x1000, false);
        // VMO pages reach user memory directly, as in the kernel (the no-fault copies).
        let frames: Arc<dyn PhysMem> = phys.clone();
        mem.frames = Some(frames);
        let root = Object::Vmar(process.root_vmar().unwrap()).into_default_handle();
        let root = process.table.lock().unwrap().add(root).unwrap();
        Mock {
            process,
            mem,
            phys,
            log: Vec::new(),
            children: Vec::new(),
            thread_exited: false,
            root,
            memory_calls: Vec::new(),
            debug_syscalls: true,
        }
    }

    /// Runs syscall `nr` with `args` (padded with zeros); `Ok(value)` for a non-negative result.
    pub fn call(&mut self, nr: u32, args: &[u64]) -> Result<i64, Status> {
        let mut regs = [0u64; 8];
        regs[..args.len()].copy_from_slice(args);
        let r = dispatch(self, u64::from(nr), &regs);
        if r < 0 && r >= i64::from(i32::MIN) {
            Err(Status::from_raw(r as i32))
        } else {
            Ok(r)
        }
    }

    /// Runs a status-returning syscall.
    pub fn sys(&mut self, nr: u32, args: &[u64]) -> ZxResult {
        self.call(nr, args).map(drop)
    }

    /// Reads a `T` the kernel wrote to fake user memory.
    pub fn peek<T: Wire>(&self, addr: usize) -> T {
        T::decode(&self.mem.peek(addr, T::SIZE))
    }

    /// Writes fake user memory.
    pub fn poke(&mut self, addr: usize, bytes: &[u8]) {
        self.mem.poke(addr, bytes);
    }

    /// Handles in the calling process's table.
    pub fn handle_count(&self) -> usize {
        self.process.table.lock().unwrap().len()
    }

    /// The rights of a handle of the calling process.
    pub fn rights(&self, value: u32) -> u32 {
        self.process
            .table
            .lock()
            .unwrap()
            .get(value)
            .unwrap()
            .rights()
    }

    /// Whether `value` is a handle of the calling process.
    pub fn is_valid(&self, value: u32) -> bool {
        self.process.table.lock().unwrap().is_valid(value)
    }

    /// Puts a handle to `object` with `rights` into the calling process's table.
    pub fn add(&mut self, object: Object, rights: u32) -> u32 {
        with_table(self, |t| t.add(object.into_handle(rights))).unwrap()
    }

    /// `zx_vmo_create(size, options)`: the handle value.
    pub fn vmo(&mut self, size: u64, options: u32) -> u32 {
        self.sys(ZX_SYS_VMO_CREATE, &[size, options as u64, BUF as u64])
            .expect("vmo_create");
        self.peek::<u32>(BUF)
    }

    /// `zx_vmar_map(vmar, options, offset, vmo, vmo_offset, len)`: the address.
    pub fn map(
        &mut self,
        vmar: u32,
        options: u32,
        offset: usize,
        vmo: u32,
        vmo_offset: u64,
        len: usize,
    ) -> Result<usize, Status> {
        self.sys(
            ZX_SYS_VMAR_MAP,
            &[
                vmar as u64,
                options as u64,
                offset as u64,
                vmo as u64,
                vmo_offset,
                len as u64,
                (BUF + 8) as u64,
            ],
        )?;
        Ok(self.peek::<usize>(BUF + 8))
    }

    /// `zx_vmar_allocate(parent, options, offset, size)`: (handle, address).
    pub fn allocate(
        &mut self,
        parent: u32,
        options: u32,
        offset: usize,
        size: usize,
    ) -> Result<(u32, usize), Status> {
        self.sys(
            ZX_SYS_VMAR_ALLOCATE,
            &[
                parent as u64,
                options as u64,
                offset as u64,
                size as u64,
                BUF as u64,
                (BUF + 8) as u64,
            ],
        )?;
        Ok((self.peek::<u32>(BUF), self.peek::<usize>(BUF + 8)))
    }

    /// `zx_handle_duplicate(handle, rights)`.
    pub fn dup(&mut self, handle: u32, rights: u32) -> u32 {
        self.sys(
            ZX_SYS_HANDLE_DUPLICATE,
            &[handle as u64, rights as u64, BUF as u64],
        )
        .expect("duplicate");
        self.peek::<u32>(BUF)
    }

    /// `zx_handle_close`.
    pub fn close(&mut self, handle: u32) -> ZxResult {
        self.sys(ZX_SYS_HANDLE_CLOSE, &[handle as u64])
    }

    /// A stale handle value: created and closed.
    pub fn closed_handle(&mut self) -> u32 {
        let h = self.vmo(4096, 0);
        self.close(h).unwrap();
        h
    }

    /// The calling process's layout (root VMAR walk).
    pub fn walk(&self) -> Vec<RegionInfo> {
        self.process.aspace().walk()
    }
}

impl Default for Mock {
    fn default() -> Self {
        Self::new()
    }
}

impl SyscallContext for Mock {
    fn with_handle_table(&mut self, f: &mut dyn FnMut(&mut ObjectTable)) {
        f(&mut self.process.table.lock().unwrap())
    }

    fn user_memory(&mut self) -> &mut dyn UserMemory {
        &mut self.mem
    }

    fn phys_mem(&self) -> Arc<dyn PhysMem> {
        self.phys.clone()
    }

    fn process_create(&mut self, name: &[u8]) -> Result<Arc<dyn ProcessObject>, Status> {
        let process = MockProcess::new(name, 100 + self.children.len() as u64);
        self.children.push(process.clone());
        Ok(process)
    }

    fn thread_create(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        _name: &[u8],
    ) -> Result<Arc<dyn ThreadObject>, Status> {
        let p = mock_process(process);
        if p.state.lock().unwrap().exited.is_some() {
            return Err(Status::ERR_BAD_STATE);
        }
        Ok(Arc::new(MockThread {
            koid: new_koid(),
            process_koid: p.koid,
            started: Mutex::new(None),
            port: ExceptionPort::new(),
            exception: ThreadExceptionState::new(),
        }))
    }

    fn process_start(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        thread: &Arc<dyn ThreadObject>,
        start: &ProcessStart,
    ) -> ZxResult {
        let p = mock_process(process);
        let t = mock_thread(thread);
        let mut state = p.state.lock().unwrap();
        if state.started.is_some() || state.exited.is_some() {
            return Err(Status::ERR_BAD_STATE);
        }
        let mut started = t.started.lock().unwrap();
        if started.is_some() {
            return Err(Status::ERR_BAD_STATE);
        }
        *started = Some((start.entry, start.stack, start.arg1 as u64, start.arg2));
        state.started = Some(*start);
        Ok(())
    }

    fn thread_start(
        &mut self,
        thread: &Arc<dyn ThreadObject>,
        entry: usize,
        stack: usize,
        arg1: u64,
        arg2: u64,
    ) -> ZxResult {
        let t = mock_thread(thread);
        let mut started = t.started.lock().unwrap();
        if started.is_some() {
            return Err(Status::ERR_BAD_STATE);
        }
        *started = Some((entry, stack, arg1, arg2));
        Ok(())
    }

    fn process_exit(&mut self, retcode: i64) {
        self.process.die(retcode);
    }

    fn thread_exit(&mut self) {
        self.thread_exited = true;
    }

    fn process_kill(&mut self, process: &Arc<dyn ProcessObject>) {
        mock_process(process).die(ZX_TASK_RETCODE_SYSCALL_KILL);
    }

    fn object_wait_one(
        &mut self,
        object: &Object,
        signals: u32,
        _deadline: i64,
    ) -> (ZxResult, u32) {
        let seen = object.signals();
        if seen & signals != 0 {
            (Ok(()), seen)
        } else {
            (Err(Status::ERR_TIMED_OUT), seen)
        }
    }

    fn debugging_syscalls_enabled(&self) -> bool {
        self.debug_syscalls
    }

    fn process_read_memory(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        vaddr: usize,
        buf: &mut [u8],
    ) -> Result<usize, Status> {
        self.memory_calls.push((vaddr, buf.len()));
        let end = mapping_end(process, vaddr)?;
        let n = buf.len().min(end - vaddr);
        buf[..n].fill(0xab);
        Ok(n)
    }

    fn process_write_memory(
        &mut self,
        process: &Arc<dyn ProcessObject>,
        vaddr: usize,
        buf: &[u8],
    ) -> Result<usize, Status> {
        self.memory_calls.push((vaddr, buf.len()));
        let end = mapping_end(process, vaddr)?;
        Ok(buf.len().min(end - vaddr))
    }

    fn debug_write(&mut self, bytes: &[u8]) {
        self.log.extend_from_slice(bytes);
    }

    fn ticks_get(&self) -> i64 {
        123_456
    }

    fn ticks_per_second(&self) -> i64 {
        1_000_000_000
    }

    fn clock_get_monotonic(&self) -> i64 {
        777
    }
}

/// End of the mapping containing `vaddr` in `process`: NOT_FOUND / BAD_STATE as the kernel would.
fn mapping_end(process: &Arc<dyn ProcessObject>, vaddr: usize) -> Result<usize, Status> {
    let root = process.root_vmar()?;
    root.vmar()
        .walk()?
        .into_iter()
        .find_map(|r| match r {
            RegionInfo::Mapping { base, size, .. } if vaddr >= base && vaddr - base < size => {
                Some(base + size)
            }
            _ => None,
        })
        .ok_or(Status::ERR_NOT_FOUND)
}

/// A handle value that names nothing in any mock table.
pub const BOGUS_HANDLE: u32 = 0x7777_7773;
