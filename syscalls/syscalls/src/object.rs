//! The kernel objects a handle can name, their koids, and the task traits the kernel implements.
//!
//! [`Object`] is what a [`HandleTable`] slot holds: a VMAR ([`VmarObject`]: a `vm::Vmar` plus its
//! koid), a VMO (`Arc<vm::Vmo>`), a process or a thread. Processes and threads live in the kernel
//! (scheduler, register state, address-space activation), so this crate only sees them through
//! [`ProcessObject`] / [`ThreadObject`]: what the `sys_*` handlers need to ask of them. The task
//! *operations* (create, start, exit, kill, wait, cross-process memory access) go through
//! [`crate::SyscallContext`], which the kernel implements; it gets the concrete types back with
//! [`ProcessObject::as_any`] / [`ThreadObject::as_any`] and `Arc::downcast`.
//!
//! # Koids
//! Every object has a kernel object id, unique for the kernel's lifetime and never reused
//! (Zircon's `zx_koid_t`, starting at `ZX_KOID_FIRST`). [`new_koid`] hands out the even ids; a
//! VMO's koid is derived from its `vm::Vmo::id` as an odd id ([`vmo_koid`]), so a VMO reached
//! through a mapping (`ZX_INFO_PROCESS_MAPS`) and through a handle (`ZX_INFO_VMO`) shows the same
//! koid without a table between the two.

use alloc::sync::Arc;
use core::any::Any;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use abi::default_rights::{
    ZX_DEFAULT_CHANNEL_RIGHTS, ZX_DEFAULT_EXCEPTION_RIGHTS, ZX_DEFAULT_PROCESS_RIGHTS,
    ZX_DEFAULT_THREAD_RIGHTS, ZX_DEFAULT_VMAR_RIGHTS, ZX_DEFAULT_VMO_RIGHTS,
};
use abi::handle::ZX_KOID_FIRST;
use abi::info::{InfoHandleBasic, InfoProcess, ZX_MAX_NAME_LEN};
use abi::obj_type::{
    ZX_OBJ_TYPE_CHANNEL, ZX_OBJ_TYPE_EXCEPTION, ZX_OBJ_TYPE_PROCESS, ZX_OBJ_TYPE_THREAD,
    ZX_OBJ_TYPE_VMAR, ZX_OBJ_TYPE_VMO,
};
use abi::rights::ZX_RIGHT_RESIZE;
use abi::signals::ZX_VMO_ZERO_CHILDREN;
use abi::Status;
use vm::{Vmar, Vmo};

use crate::channel::ChannelEndpoint;
use crate::exception::{ExceptionObject, ExceptionPort, ThreadExceptionState};
use crate::handle::{Handle, HandleTable};

/// A handle to an [`Object`].
pub type ObjectHandle = Handle<Object>;
/// A process's handle table.
pub type ObjectTable = HandleTable<Object>;

static NEXT_KOID: AtomicU64 = AtomicU64::new(0);

/// A fresh koid (even, from `ZX_KOID_FIRST` up) for a process, thread or VMAR.
pub fn new_koid() -> u64 {
    let n = NEXT_KOID.fetch_add(1, Ordering::Relaxed);
    ZX_KOID_FIRST.wrapping_add(n.wrapping_mul(2))
}

/// The koid of a VMO (odd, derived from its `vm` id, so every path to the VMO agrees).
pub fn vmo_koid(vmo: &Vmo) -> u64 {
    vmo_koid_from_id(vmo.id())
}

/// The koid of the VMO whose `vm::Vmo::id` is `id` (as reported by `vm::RegionInfo`).
pub fn vmo_koid_from_id(id: u64) -> u64 {
    ZX_KOID_FIRST.wrapping_add(id.wrapping_mul(2)) | 1
}

/// Rights of the handle `zx_vmo_create` returns for `vmo` (Zircon's
/// `VmObjectDispatcher::Create`): the VMO defaults, plus `ZX_RIGHT_RESIZE` when resizable.
pub fn vmo_default_rights(vmo: &Vmo) -> u32 {
    ZX_DEFAULT_VMO_RIGHTS
        | if vmo.is_resizable() {
            ZX_RIGHT_RESIZE
        } else {
            0
        }
}

/// A NUL-padded `ZX_MAX_NAME_LEN` name from `name` (truncated to 31 bytes, as Zircon's
/// `set_name`).
pub fn name_array(name: &[u8]) -> [u8; ZX_MAX_NAME_LEN] {
    let mut n = [0u8; ZX_MAX_NAME_LEN];
    let len = name.len().min(ZX_MAX_NAME_LEN - 1);
    n[..len].copy_from_slice(&name[..len]);
    n
}

/// A VMAR as a kernel object: the `vm` handle object plus its koid. Clones (duplicated handles)
/// share the koid.
#[derive(Clone, Debug)]
pub struct VmarObject {
    vmar: Vmar,
    koid: u64,
}

impl VmarObject {
    /// Wraps a VMAR that just came into existence (a new koid).
    pub fn new(vmar: Vmar) -> Self {
        VmarObject {
            vmar,
            koid: new_koid(),
        }
    }

    /// Wraps `vmar` with a koid chosen earlier (a process's root VMAR keeps one koid however many
    /// handles are made to it).
    pub fn with_koid(vmar: Vmar, koid: u64) -> Self {
        VmarObject { vmar, koid }
    }

    /// The `vm` object.
    pub fn vmar(&self) -> &Vmar {
        &self.vmar
    }

    /// The koid.
    pub fn koid(&self) -> u64 {
        self.koid
    }

    /// Rights of a new handle to this VMAR (Zircon's `VmAddressRegionDispatcher::Create`): the
    /// VMAR defaults plus READ / WRITE / EXECUTE for each `ZX_VM_CAN_MAP_*` of the region.
    pub fn default_rights(&self) -> u32 {
        ZX_DEFAULT_VMAR_RIGHTS | self.vmar.perm_rights()
    }
}

/// What the syscall layer needs of a process. Implemented by the kernel's process type.
///
/// Methods are queries: they must not block and must not touch user memory.
pub trait ProcessObject: Any + Send + Sync {
    /// The koid.
    fn koid(&self) -> u64;

    /// The name given to `zx_process_create` (NUL-padded).
    fn name(&self) -> [u8; ZX_MAX_NAME_LEN];

    /// The root VMAR, always with the same koid. `ZX_ERR_BAD_STATE` once the address space is
    /// gone (after the process died and the kernel tore it down).
    fn root_vmar(&self) -> Result<VmarObject, Status>;

    /// Tears the process down now, calling `preempt` (with no lock held) between bounded steps
    /// of the address-space teardown. Called when the last handle to a process goes (a process
    /// that never ran or is already dead), so its drop has little left to do. No-op by default.
    fn teardown_in_steps(&self, preempt: &mut dyn FnMut()) {
        let _ = preempt;
    }

    /// `zx_info_process_t`: return code, start time, `ZX_INFO_PROCESS_FLAG_*`.
    fn info(&self) -> InfoProcess;

    /// The asserted signals (`ZX_PROCESS_TERMINATED` once dead).
    fn signals(&self) -> u32;

    /// Runs `f` on this process's handle table (under the kernel's lock for it). `f` neither
    /// blocks nor touches user memory. Used by `zx_process_start` to install the startup handles.
    fn with_handle_table(&self, f: &mut dyn FnMut(&mut ObjectTable));

    /// The process's exception port (`zx_task_create_exception_channel` on the process).
    fn exception_port(&self) -> &ExceptionPort;

    /// `ZX_PROP_NAME` set: the new name (at most 31 bytes, already truncated).
    /// `ZX_ERR_NOT_SUPPORTED` by default.
    fn set_name(&self, name: &[u8]) -> Result<(), Status> {
        let _ = name;
        Err(Status::ERR_NOT_SUPPORTED)
    }

    /// `self` as `Any`, so the kernel can downcast an `Arc<dyn ProcessObject>` to its own type.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// What the syscall layer needs of a thread. Implemented by the kernel's thread type.
pub trait ThreadObject: Any + Send + Sync {
    /// The koid.
    fn koid(&self) -> u64;

    /// The name given to `zx_thread_create` (NUL-padded).
    fn name(&self) -> [u8; ZX_MAX_NAME_LEN];

    /// The koid of the process the thread belongs to.
    fn process_koid(&self) -> u64;

    /// The asserted signals (`ZX_THREAD_RUNNING`, `ZX_THREAD_TERMINATED`, ...).
    fn signals(&self) -> u32;

    /// `ZX_THREAD_STATE_*` for `ZX_INFO_THREAD`.
    fn state(&self) -> u32;

    /// `ZX_PROP_NAME` set (at most 31 bytes, already truncated). `ZX_ERR_NOT_SUPPORTED` by
    /// default.
    fn set_name(&self, name: &[u8]) -> Result<(), Status> {
        let _ = name;
        Err(Status::ERR_NOT_SUPPORTED)
    }

    /// The thread's exception port.
    fn exception_port(&self) -> &ExceptionPort;

    /// The thread's in-flight exception (report and registers while it is stopped in one).
    fn exception_state(&self) -> &ThreadExceptionState;

    /// `self` as `Any`, for downcasting to the kernel's type.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// A kernel object a handle can refer to. Cloning clones the reference, not the object.
#[derive(Clone)]
pub enum Object {
    /// A virtual memory address region.
    Vmar(VmarObject),
    /// A virtual memory object.
    Vmo(Arc<Vmo>),
    /// A process.
    Process(Arc<dyn ProcessObject>),
    /// A thread.
    Thread(Arc<dyn ThreadObject>),
    /// One endpoint of a channel.
    Channel(Arc<ChannelEndpoint>),
    /// A thread's exception (in an exception channel message, or a handler's table).
    Exception(Arc<ExceptionObject>),
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Vmar(v) => write!(f, "Vmar(koid {}, {:?})", v.koid, v.vmar),
            Object::Vmo(v) => write!(f, "Vmo(koid {}, {:?})", vmo_koid(v), v),
            Object::Process(p) => write!(f, "Process(koid {})", p.koid()),
            Object::Thread(t) => write!(f, "Thread(koid {})", t.koid()),
            Object::Channel(c) => write!(f, "{c:?}"),
            Object::Exception(e) => write!(f, "{e:?}"),
        }
    }
}

impl Object {
    /// The koid.
    pub fn koid(&self) -> u64 {
        match self {
            Object::Vmar(v) => v.koid,
            Object::Vmo(v) => vmo_koid(v),
            Object::Process(p) => p.koid(),
            Object::Thread(t) => t.koid(),
            Object::Channel(c) => c.koid(),
            Object::Exception(e) => e.koid(),
        }
    }

    /// The `ZX_OBJ_TYPE_*`.
    pub fn obj_type(&self) -> u32 {
        match self {
            Object::Vmar(_) => ZX_OBJ_TYPE_VMAR,
            Object::Vmo(_) => ZX_OBJ_TYPE_VMO,
            Object::Process(_) => ZX_OBJ_TYPE_PROCESS,
            Object::Thread(_) => ZX_OBJ_TYPE_THREAD,
            Object::Channel(_) => ZX_OBJ_TYPE_CHANNEL,
            Object::Exception(_) => ZX_OBJ_TYPE_EXCEPTION,
        }
    }

    /// `related_koid` of `zx_info_handle_basic_t`: a thread's process, a channel's peer; 0
    /// otherwise (no jobs, so a process has no parent job koid to show).
    pub fn related_koid(&self) -> u64 {
        match self {
            Object::Thread(t) => t.process_koid(),
            Object::Channel(c) => c.peer_koid(),
            _ => 0,
        }
    }

    /// The asserted signals. A VMO asserts `ZX_VMO_ZERO_CHILDREN` while it has no child
    /// (snapshot or slice); a VMAR has none.
    pub fn signals(&self) -> u32 {
        match self {
            Object::Vmar(_) => 0,
            Object::Vmo(v) if v.child_count() == 0 => ZX_VMO_ZERO_CHILDREN,
            Object::Vmo(_) => 0,
            Object::Process(p) => p.signals(),
            Object::Thread(t) => t.signals(),
            Object::Channel(c) => c.signals(),
            Object::Exception(_) => 0,
        }
    }

    /// Rights of a handle made when the object is created (Zircon's per-type defaults).
    pub fn default_rights(&self) -> u32 {
        match self {
            Object::Vmar(v) => v.default_rights(),
            Object::Vmo(v) => vmo_default_rights(v),
            Object::Process(_) => ZX_DEFAULT_PROCESS_RIGHTS,
            Object::Thread(_) => ZX_DEFAULT_THREAD_RIGHTS,
            Object::Channel(_) => ZX_DEFAULT_CHANNEL_RIGHTS,
            Object::Exception(_) => ZX_DEFAULT_EXCEPTION_RIGHTS,
        }
    }

    /// A handle to this object with `rights`.
    pub fn into_handle(self, rights: u32) -> ObjectHandle {
        let (koid, obj_type) = (self.koid(), self.obj_type());
        Handle::new(self, koid, obj_type, rights)
    }

    /// A handle with [`Object::default_rights`].
    pub fn into_default_handle(self) -> ObjectHandle {
        let rights = self.default_rights();
        self.into_handle(rights)
    }

    /// `zx_info_handle_basic_t` for a handle to this object with `rights`.
    pub fn basic_info(&self, rights: u32) -> InfoHandleBasic {
        InfoHandleBasic {
            koid: self.koid(),
            rights,
            r#type: self.obj_type(),
            related_koid: self.related_koid(),
            ..InfoHandleBasic::default()
        }
    }

    /// The VMAR, if this is one (a downcast for [`HandleTable::get_typed`]).
    pub fn as_vmar(&self) -> Option<VmarObject> {
        match self {
            Object::Vmar(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// The VMO, if this is one.
    pub fn as_vmo(&self) -> Option<Arc<Vmo>> {
        match self {
            Object::Vmo(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// The process, if this is one.
    pub fn as_process(&self) -> Option<Arc<dyn ProcessObject>> {
        match self {
            Object::Process(p) => Some(p.clone()),
            _ => None,
        }
    }

    /// The thread, if this is one.
    pub fn as_thread(&self) -> Option<Arc<dyn ThreadObject>> {
        match self {
            Object::Thread(t) => Some(t.clone()),
            _ => None,
        }
    }

    /// The channel endpoint, if this is one.
    pub fn as_channel(&self) -> Option<Arc<ChannelEndpoint>> {
        match self {
            Object::Channel(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// The exception, if this is one.
    pub fn as_exception(&self) -> Option<Arc<ExceptionObject>> {
        match self {
            Object::Exception(e) => Some(e.clone()),
            _ => None,
        }
    }
}

/// The three handles every new process finds in its table at `zx_process_start` (the startup
/// ABI): its process, its root VMAR and its first thread, each with the type's default rights.
pub struct StartupHandles {
    /// The process itself (`rdx`).
    pub process: ObjectHandle,
    /// Its root VMAR (`rcx`).
    pub root_vmar: ObjectHandle,
    /// Its first thread (`r8`).
    pub thread: ObjectHandle,
}

impl StartupHandles {
    /// The handles for `process` started on `thread`; `ZX_ERR_BAD_STATE` if the process has no
    /// address space any more.
    pub fn new(
        process: &Arc<dyn ProcessObject>,
        thread: &Arc<dyn ThreadObject>,
    ) -> Result<StartupHandles, Status> {
        let root = process.root_vmar()?;
        Ok(StartupHandles {
            process: Object::Process(process.clone()).into_default_handle(),
            root_vmar: Object::Vmar(root).into_default_handle(),
            thread: Object::Thread(thread.clone()).into_default_handle(),
        })
    }
}
