//! Starting programs from ELF images, Zircon's way: the parent builds the child's address space
//! with syscalls (`zx_process_create`, `zx_vmar_allocate`, `zx_vmar_map`), creates a thread and
//! calls `zx_process_start`; then waits for it.
//!
//! A ramdisk program ([`spawn`], [`spawn_with`]) is mapped from the archive VMO: text and rodata
//! are its pages, read-only; data is a copy-on-write child (`zx_vmo_create_child`
//! SNAPSHOT_AT_LEAST_ON_WRITE) with only its relocated pages and the page where `.bss` starts
//! rewritten; `.bss` pages are a fresh VMO (see the `elfload` crate's placements). An image given
//! as bytes ([`spawn_image`]) is copied into fresh VMOs (`zx_vmo_create` / `zx_vmo_write`).
//!
//! Layout of a child (all placements kernel-chosen, so randomized when the kernel randomizes):
//! the image in one sub-VMAR of its span (segments at fixed offsets, final permissions, W^X), and
//! the stack in a sub-VMAR one guard page larger than the stack, with the stack VMO mapped at the
//! top so the lowest page stays unmapped (a stack overflow faults instead of running into
//! something else).

use alloc::vec::Vec;

use abi::info::{topic, InfoMaps};
use abi::signals::ZX_PROCESS_TERMINATED;
use abi::syscall_numbers as nr;
use abi::vm_options::*;
use abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE;
use abi::wire::Wire;
use abi::{Status, ZxResult};
use elfload::{LoadError, LoadPlan, LoadTarget, Perms};

use crate::bootfs::{Image, Ramdisk};
use crate::raw::syscall6;
use crate::{addr_of, ok, Handle, Process, Thread, Vmar, Vmo};

/// Stack size of a spawned process unless its `PT_GNU_STACK` asks for another.
pub const DEFAULT_STACK_SIZE: u64 = 256 * 1024;
/// Largest stack size honoured from `PT_GNU_STACK`.
pub const MAX_STACK_SIZE: u64 = 8 << 20;
/// Size of the unmapped guard below the stack.
pub const STACK_GUARD_SIZE: u64 = 4096;

/// A started process.
#[derive(Debug)]
pub struct Child {
    /// The process.
    pub process: Process,
    /// Where its image was loaded (base of the image's VMAR) and its entry point.
    pub loaded: elfload::Loaded,
    /// Initial stack pointer.
    pub stack_pointer: u64,
}

impl Child {
    /// Waits for the process to end and returns its return code.
    pub fn wait(&self) -> ZxResult<i64> {
        self.process.wait()
    }
}

impl Process {
    /// Waits until the process has terminated (`ZX_PROCESS_TERMINATED`), then returns its return
    /// code (`ZX_INFO_PROCESS`; a `ZX_TASK_RETCODE_*` if it was killed).
    pub fn wait(&self) -> ZxResult<i64> {
        self.handle().wait_one(ZX_PROCESS_TERMINATED, i64::MAX)?;
        Ok(self.info()?.return_code)
    }
}

/// Why a spawn failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnError {
    /// No program of that name in the ramdisk.
    NotFound,
    /// The image is not a loadable static PIE.
    BadImage(elfload::Error),
    /// A syscall failed.
    Status(Status),
}

impl From<Status> for SpawnError {
    fn from(s: Status) -> Self {
        SpawnError::Status(s)
    }
}

impl From<LoadError<Status>> for SpawnError {
    fn from(e: LoadError<Status>) -> Self {
        match e {
            LoadError::Elf(e) => SpawnError::BadImage(e),
            LoadError::Target(s) => SpawnError::Status(s),
        }
    }
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpawnError::NotFound => write!(f, "no such program"),
            SpawnError::BadImage(e) => write!(f, "bad image: {e}"),
            SpawnError::Status(s) => write!(f, "{s:?}"),
        }
    }
}

/// [`LoadTarget`] over syscalls into another process's root VMAR.
pub struct VmarTarget<'a> {
    root: &'a Vmar,
    region: Option<Vmar>,
    image: Option<(&'a Vmo, u64)>,
}

impl<'a> VmarTarget<'a> {
    /// Loads into `root` (a process's root VMAR), copying every segment.
    pub fn new(root: &'a Vmar) -> Self {
        VmarTarget {
            root,
            region: None,
            image: None,
        }
    }

    /// Loads into `root`, mapping pages of `vmo` where the file starts at `offset`
    /// (page-aligned; the handle needs READ and MAP, and EXECUTE for code).
    pub fn with_image(root: &'a Vmar, vmo: &'a Vmo, offset: u64) -> Self {
        VmarTarget {
            root,
            region: None,
            image: Some((vmo, offset)),
        }
    }

    fn image_at(&self, file_offset: u64) -> Result<(&'a Vmo, u64), Status> {
        let (vmo, at) = self.image.ok_or(Status::ERR_BAD_STATE)?;
        Ok((
            vmo,
            at.checked_add(file_offset)
                .ok_or(Status::ERR_OUT_OF_RANGE)?,
        ))
    }

    /// The image's VMAR (after a successful reserve).
    pub fn region(&self) -> Option<&Vmar> {
        self.region.as_ref()
    }
}

impl LoadTarget for VmarTarget<'_> {
    type Error = Status;

    fn reserve(&mut self, span: u64) -> Result<u64, Status> {
        let span = usize::try_from(span).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        let options = ZX_VM_CAN_MAP_SPECIFIC
            | ZX_VM_CAN_MAP_READ
            | ZX_VM_CAN_MAP_WRITE
            | ZX_VM_CAN_MAP_EXECUTE;
        let (region, base) = self.root.allocate(options, 0, span)?;
        self.region = Some(region);
        Ok(base as u64)
    }

    fn map_segment(
        &mut self,
        offset: u64,
        size: u64,
        perms: Perms,
        data: &[u8],
    ) -> Result<(), Status> {
        let region = self.region.as_ref().ok_or(Status::ERR_BAD_STATE)?;
        let mut vmo = Vmo::create(size, 0)?;
        if !data.is_empty() {
            vmo.write(data, 0)?;
        }
        if perms.execute {
            vmo = vmo.replace_as_executable(&Handle::invalid())?;
        }
        let len = usize::try_from(size).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        let offset = usize::try_from(offset).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        region.map(ZX_VM_SPECIFIC | perms.zx_vm_flags(), offset, &vmo, 0, len)?;
        Ok(())
    }

    fn has_image(&self) -> bool {
        self.image.is_some()
    }

    fn map_image(
        &mut self,
        offset: u64,
        file_offset: u64,
        size: u64,
        perms: Perms,
    ) -> Result<(), Status> {
        let region = self.region.as_ref().ok_or(Status::ERR_BAD_STATE)?;
        let (vmo, at) = self.image_at(file_offset)?;
        let len = usize::try_from(size).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        let offset = usize::try_from(offset).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        region.map(ZX_VM_SPECIFIC | perms.zx_vm_flags(), offset, vmo, at, len)?;
        Ok(())
    }

    fn map_image_cow(
        &mut self,
        offset: u64,
        file_offset: u64,
        size: u64,
        perms: Perms,
        patches: &[elfload::Patch],
    ) -> Result<(), Status> {
        let region = self.region.as_ref().ok_or(Status::ERR_BAD_STATE)?;
        let (vmo, at) = self.image_at(file_offset)?;
        let mut child = vmo.create_child(ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE, at, size)?;
        for p in patches {
            child.write(&p.bytes, p.at)?;
        }
        if perms.execute {
            child = child.replace_as_executable(&Handle::invalid())?;
        }
        let len = usize::try_from(size).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        let offset = usize::try_from(offset).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        region.map(ZX_VM_SPECIFIC | perms.zx_vm_flags(), offset, &child, 0, len)?;
        Ok(())
    }
}

/// Spawns the ramdisk program `name` with `arg1` (transferred) and `arg2`, mapping its pages
/// from the archive VMO when the ramdisk keeps it.
pub fn spawn(ramdisk: &Ramdisk, name: &str, arg1: Handle, arg2: u64) -> Result<Child, SpawnError> {
    spawn_with(ramdisk, name, arg1, |_| Ok(arg2)).map(|(child, _root)| child)
}

/// Spawns the ELF `image` as a process named `name`.
pub fn spawn_image(name: &str, image: &[u8], arg1: Handle, arg2: u64) -> Result<Child, SpawnError> {
    spawn_image_with(name, image, arg1, |_| Ok(arg2)).map(|(child, _root)| child)
}

/// Spawns the ramdisk program `name` as [`spawn_image_with`] does.
pub fn spawn_with(
    ramdisk: &Ramdisk,
    name: &str,
    arg1: Handle,
    setup: impl FnOnce(&Vmar) -> ZxResult<u64>,
) -> Result<(Child, Vmar), SpawnError> {
    let image = ramdisk.image(name).ok_or(SpawnError::NotFound)?;
    spawn_from(name, &image, arg1, setup)
}

/// Spawns the ELF `image` as a process named `name`; before its first thread starts, `setup`
/// gets the child's root VMAR (to place regions or mappings in it) and returns the child's
/// `arg2`. Returns the child and its root VMAR handle.
pub fn spawn_image_with(
    name: &str,
    image: &[u8],
    arg1: Handle,
    setup: impl FnOnce(&Vmar) -> ZxResult<u64>,
) -> Result<(Child, Vmar), SpawnError> {
    let image = Image {
        bytes: image,
        vmo: None,
    };
    spawn_from(name, &image, arg1, setup)
}

/// Loads the ramdisk program `name` into `root` (a process's root VMAR) as [`spawn`] does,
/// mapped from the archive VMO when the ramdisk keeps it, without a stack or a thread: the
/// first step of a spawn, for a caller that starts the process itself (or inspects it).
pub fn load_program(
    ramdisk: &Ramdisk,
    name: &str,
    root: &Vmar,
) -> Result<elfload::Loaded, SpawnError> {
    let image = ramdisk.image(name).ok_or(SpawnError::NotFound)?;
    let plan = LoadPlan::parse(image.bytes).map_err(SpawnError::BadImage)?;
    load(&image, &plan, root)
}

/// Loads the ELF `image` into `root` by copying every segment into fresh VMOs (as
/// [`spawn_image`] does), without a stack or a thread.
pub fn load_image(image: &[u8], root: &Vmar) -> Result<elfload::Loaded, SpawnError> {
    let plan = LoadPlan::parse(image).map_err(SpawnError::BadImage)?;
    let image = Image {
        bytes: image,
        vmo: None,
    };
    load(&image, &plan, root)
}

/// Loads `image` (which `plan` was parsed from) into `root`: mapped from its VMO when it has
/// one, else copied.
fn load(image: &Image<'_>, plan: &LoadPlan, root: &Vmar) -> Result<elfload::Loaded, SpawnError> {
    let mut target = match &image.vmo {
        Some((vmo, offset)) => VmarTarget::with_image(root, vmo, *offset),
        None => VmarTarget::new(root),
    };
    Ok(elfload::load(image.bytes, plan, &mut target)?)
}

/// [`spawn_image_with`] for an image that may come with its VMO.
fn spawn_from(
    name: &str,
    image: &Image<'_>,
    arg1: Handle,
    setup: impl FnOnce(&Vmar) -> ZxResult<u64>,
) -> Result<(Child, Vmar), SpawnError> {
    let plan = LoadPlan::parse(image.bytes).map_err(SpawnError::BadImage)?;
    // There are no jobs: children are created with an invalid job handle.
    let job = Handle::invalid();
    let (process, root) = Process::create(&job, name.as_bytes(), 0)?;
    let loaded = load(image, &plan, &root)?;

    let stack_size = plan
        .stack_size
        .unwrap_or(DEFAULT_STACK_SIZE)
        .clamp(4096, MAX_STACK_SIZE)
        .next_multiple_of(4096);
    let stack = Vmo::create(stack_size, 0)?;
    let (stack_vmar, stack_base) = root.allocate(
        ZX_VM_CAN_MAP_SPECIFIC | ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE,
        0,
        (stack_size + STACK_GUARD_SIZE) as usize,
    )?;
    stack_vmar.map(
        ZX_VM_SPECIFIC | ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
        STACK_GUARD_SIZE as usize,
        &stack,
        0,
        stack_size as usize,
    )?;
    // As right after a `call`: 16-byte aligned minus 8.
    let stack_pointer = stack_base as u64 + STACK_GUARD_SIZE + stack_size - 8;

    let arg2 = setup(&root)?;
    let thread = Thread::create(&process, name.as_bytes(), 0)?;
    process.start(
        &thread,
        loaded.entry as usize,
        stack_pointer as usize,
        arg1,
        arg2 as usize,
    )?;
    Ok((
        Child {
            process,
            loaded,
            stack_pointer,
        },
        root,
    ))
}

/// `zx_object_get_info` for a topic returning an array: all records, growing the buffer until
/// they fit.
pub fn get_info_vec<T: Wire>(handle: &Handle, topic: u32) -> ZxResult<Vec<T>> {
    let mut cap = 16usize;
    loop {
        // u64 backing keeps the buffer 8-aligned.
        let bytes = cap.checked_mul(T::SIZE).ok_or(Status::ERR_NO_MEMORY)?;
        let mut buf: Vec<u64> = alloc::vec![0; bytes.div_ceil(8)];
        let mut actual = 0usize;
        let mut avail = 0usize;
        // SAFETY: `buf` is valid for `bytes` bytes of writes; `actual` and `avail` are valid,
        // aligned usizes.
        let r = unsafe {
            syscall6(
                nr::ZX_SYS_OBJECT_GET_INFO,
                handle.raw() as usize,
                topic as usize,
                buf.as_mut_ptr() as usize,
                bytes,
                addr_of(&mut actual),
                addr_of(&mut avail),
            )
        };
        ok(r)?;
        if avail <= cap {
            let raw: Vec<u8> = buf.iter().flat_map(|w| w.to_le_bytes()).collect();
            return Ok((0..actual.min(cap))
                .map(|i| T::decode(&raw[i * T::SIZE..]))
                .collect());
        }
        cap = avail.checked_add(8).ok_or(Status::ERR_NO_MEMORY)?;
    }
}

/// `ZX_INFO_PROCESS_VMOS` of a process: the VMOs it reaches through handles, then through
/// mappings (a VMO reached several ways is listed once per way).
pub fn vmos(process: &Handle) -> ZxResult<Vec<abi::info::InfoVmo>> {
    get_info_vec(process, topic::ZX_INFO_PROCESS_VMOS)
}

/// `ZX_INFO_VMAR_MAPS` of a VMAR (or `ZX_INFO_PROCESS_MAPS` of a process handle).
pub fn maps(handle: &Handle) -> ZxResult<Vec<InfoMaps>> {
    let t = match handle.basic_info()?.r#type {
        abi::obj_type::ZX_OBJ_TYPE_PROCESS => topic::ZX_INFO_PROCESS_MAPS,
        _ => topic::ZX_INFO_VMAR_MAPS,
    };
    get_info_vec(handle, t)
}
