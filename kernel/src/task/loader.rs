//! Loading the first user program: a ramdisk ELF (static PIE) into a new process through the
//! `vm` API directly (the kernel's `elfload::LoadTarget`), a stack with an unmapped guard page
//! below it, the startup handles, and the start itself (the startup ABI: `rdi` = arg1, `rsi` =
//! arg2, `rdx` = process, `rcx` = root VMAR, `r8` = thread, `rsp` 16-byte aligned minus 8).
//!
//! The ramdisk lives in one read-only VMO ([`ramdisk_vmo`]): the first process gets a handle to
//! it, and programs are mapped from it (text and rodata its own pages, data copy-on-write
//! children, see the `elfload` crate's placements). Those mappings are made without WRITE
//! rights on the ramdisk VMO, so a debugger's `zx_process_write_memory` into code writes a
//! private copy, never the archive.
//!
//! Later processes are loaded by user space itself (`zx::process::spawn`), the Zircon way.

use super::context::{new_thread, start_process};
use super::process::Process;
use abi::default_rights::ZX_DEFAULT_VMO_RIGHTS;
use abi::handle::ZX_HANDLE_INVALID;
use abi::rights::ZX_RIGHT_WRITE;
use abi::vm_options::*;
use abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE;
use abi::Status;
use alloc::sync::Arc;
use elfload::{LoadPlan, LoadTarget, Patch, Perms};
use syscalls::{Object, ProcessObject, ProcessStart, StartupHandles, ThreadObject};
use vm::{Vmar, Vmo, ALL_RIGHTS};

static RAMDISK: spin::Once<&'static [u8]> = spin::Once::new();
static RAMDISK_VMO: spin::Once<Result<Arc<Vmo>, Status>> = spin::Once::new();

/// Records the boot ramdisk (for [`program_entry`] and [`ramdisk_vmo`]).
pub fn set_ramdisk(bytes: &'static [u8]) {
    RAMDISK.call_once(|| bytes);
}

/// The boot ramdisk archive bytes (empty before [`set_ramdisk`]).
pub fn ramdisk() -> &'static [u8] {
    RAMDISK.get().copied().unwrap_or(&[])
}

/// Ramdisk program `name`: its bytes and its offset in [`ramdisk_vmo`].
pub fn program_entry(name: &str) -> Option<(&'static [u8], u64)> {
    let entry = ramdisk::Archive::parse(ramdisk()).ok()?.entry(name)?;
    Some((entry.data, entry.offset as u64))
}

/// The VMO holding the ramdisk archive (made on first use): every command-line `nonce` word
/// blanked (the nonce goes to the first process only, see [`run_init`]). Programs are mapped
/// from it; the first process gets a read-only handle to it.
pub fn ramdisk_vmo() -> Result<Arc<Vmo>, Status> {
    RAMDISK_VMO
        .call_once(|| {
            let bytes = ramdisk();
            let vmo = Vmo::create(arch::paging::phys_mem(), (bytes.len() as u64).max(1), 0)?;
            vmo.write(0, bytes)?;
            if let Ok(archive) = ramdisk::Archive::parse(bytes) {
                const BLANK: [u8; 64] = [b' '; 64];
                for word in archive.cmdline_word_ranges("nonce") {
                    let mut at = word.start;
                    while at < word.end {
                        let n = (word.end - at).min(BLANK.len());
                        vmo.write(at as u64, &BLANK[..n])?;
                        at += n;
                    }
                }
            }
            Ok(vmo)
        })
        .clone()
}

/// Rights of the kernel's mappings of ramdisk pages: everything but WRITE.
const IMAGE_RIGHTS: u32 = ALL_RIGHTS & !ZX_RIGHT_WRITE;

/// Size of the first thread's stack.
pub const STACK_SIZE: usize = 256 * 1024;
/// Unmapped guard below the stack.
pub const STACK_GUARD: usize = 4096;

/// `elfload::LoadTarget` over a root VMAR, with the kernel's rights; `image` is the VMO holding
/// the program file and the file's (page-aligned) offset in it.
struct KernelTarget {
    root: Vmar,
    region: Option<Vmar>,
    image: Option<(Arc<Vmo>, u64)>,
}

impl KernelTarget {
    fn image_at(&self, file_offset: u64) -> Result<(&Arc<Vmo>, u64), Status> {
        let (vmo, at) = self.image.as_ref().ok_or(Status::ERR_BAD_STATE)?;
        Ok((
            vmo,
            at.checked_add(file_offset)
                .ok_or(Status::ERR_OUT_OF_RANGE)?,
        ))
    }
}

impl LoadTarget for KernelTarget {
    type Error = Status;

    fn reserve(&mut self, span: u64) -> Result<u64, Status> {
        let span = usize::try_from(span).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        let options = ZX_VM_CAN_MAP_SPECIFIC
            | ZX_VM_CAN_MAP_READ
            | ZX_VM_CAN_MAP_WRITE
            | ZX_VM_CAN_MAP_EXECUTE;
        let (region, base) = self.root.allocate(options, 0, span, ALL_RIGHTS)?;
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
        let vmo = Vmo::create(arch::paging::phys_mem(), size, 0)?;
        if !data.is_empty() {
            vmo.write(0, data)?;
        }
        let len = usize::try_from(size).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        let offset = usize::try_from(offset).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        region.map(
            ZX_VM_SPECIFIC | perms.zx_vm_flags(),
            offset,
            &vmo,
            0,
            len,
            ALL_RIGHTS,
            ALL_RIGHTS,
        )?;
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
        region.map(
            ZX_VM_SPECIFIC | perms.zx_vm_flags(),
            offset,
            vmo,
            at,
            len,
            ALL_RIGHTS,
            IMAGE_RIGHTS,
        )?;
        Ok(())
    }

    fn map_image_cow(
        &mut self,
        offset: u64,
        file_offset: u64,
        size: u64,
        perms: Perms,
        patches: &[Patch],
    ) -> Result<(), Status> {
        let region = self.region.as_ref().ok_or(Status::ERR_BAD_STATE)?;
        let (vmo, at) = self.image_at(file_offset)?;
        let child = vmo.create_child(ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE, at, size)?;
        for p in patches {
            child.write(p.at, &p.bytes)?;
        }
        let len = usize::try_from(size).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        let offset = usize::try_from(offset).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        region.map(
            ZX_VM_SPECIFIC | perms.zx_vm_flags(),
            offset,
            &child,
            0,
            len,
            ALL_RIGHTS,
            ALL_RIGHTS,
        )?;
        Ok(())
    }
}

/// Why the first program could not be started.
#[derive(Debug)]
pub enum LoadFailure {
    /// No such ramdisk entry.
    NotFound,
    /// The ELF is invalid.
    Elf(elfload::Error),
    /// A kernel operation failed.
    Status(Status),
}

impl core::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadFailure::NotFound => write!(f, "no such program in the ramdisk"),
            LoadFailure::Elf(e) => write!(f, "bad ELF: {e}"),
            LoadFailure::Status(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<Status> for LoadFailure {
    fn from(s: Status) -> Self {
        LoadFailure::Status(s)
    }
}

/// Loads `image` as process `name` and starts it with `arg1` (a handle transferred into its
/// table, or none) and `arg2`. Returns the process (running). With `source` (the VMO holding
/// the file, the file's page-aligned offset in it) segments are mapped from that VMO, else
/// copied.
pub fn spawn(
    name: &str,
    image: &[u8],
    source: Option<(Arc<Vmo>, u64)>,
    arg1: Option<Object>,
    arg1_rights: u32,
    arg2: u64,
) -> Result<Arc<Process>, LoadFailure> {
    let plan = LoadPlan::parse(image).map_err(LoadFailure::Elf)?;
    let process = Process::create(name.as_bytes(), None)?;
    let aspace = process.aspace().ok_or(Status::ERR_BAD_STATE)?;
    let root = aspace.root_vmar();
    let mut target = KernelTarget {
        root: root.clone(),
        region: None,
        image: source,
    };
    let loaded = elfload::load(image, &plan, &mut target).map_err(|e| match e {
        elfload::LoadError::Elf(e) => LoadFailure::Elf(e),
        elfload::LoadError::Target(s) => LoadFailure::Status(s),
    })?;

    let stack = Vmo::create(arch::paging::phys_mem(), STACK_SIZE as u64, 0)?;
    let (stack_vmar, stack_base) = root.allocate(
        ZX_VM_CAN_MAP_SPECIFIC | ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE,
        0,
        STACK_SIZE + STACK_GUARD,
        ALL_RIGHTS,
    )?;
    stack_vmar.map(
        ZX_VM_SPECIFIC | ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
        STACK_GUARD,
        &stack,
        0,
        STACK_SIZE,
        ALL_RIGHTS,
        ALL_RIGHTS,
    )?;
    let sp = stack_base + STACK_GUARD + STACK_SIZE - 8;

    let thread = new_thread(&process, &process, name.as_bytes())?;
    let pobj: Arc<dyn ProcessObject> = process.clone();
    let tobj: Arc<dyn ThreadObject> = thread.clone();
    let handles = StartupHandles::new(&pobj, &tobj)?;
    let installed = process.with_handles(|t| -> Result<(u32, u32, u32, u32), Status> {
        let arg1 = match arg1 {
            Some(o) => t.add(o.into_handle(arg1_rights))?,
            None => ZX_HANDLE_INVALID,
        };
        Ok((
            arg1,
            t.add(handles.process)?,
            t.add(handles.root_vmar)?,
            t.add(handles.thread)?,
        ))
    })?;
    let start = ProcessStart {
        entry: loaded.entry as usize,
        stack: sp,
        arg1: installed.0,
        arg2,
        process: installed.1,
        root_vmar: installed.2,
        thread: installed.3,
    };
    log::info!(
        "loader: {name}: image at {:#x} (span {:#x}), entry {:#x}, stack [{:#x}, {:#x})",
        loaded.base,
        loaded.span,
        loaded.entry,
        stack_base + STACK_GUARD,
        stack_base + STACK_GUARD + STACK_SIZE
    );
    start_process(&process, &thread, &start)?;
    Ok(process)
}

/// Blocks the calling kernel thread until `process` terminated; returns its return code.
pub fn wait_for_exit(process: &Process) -> i64 {
    x86_64::instructions::interrupts::without_interrupts(|| loop {
        let seen = super::sched::wake_seq();
        if process.signals() & super::process::SIGNAL_TERMINATED != 0 {
            break;
        }
        super::sched::block_current(u64::MAX, seen);
    });
    process.return_code()
}

/// The first program: `prog=NAME` from the ramdisk ([`set_ramdisk`]), with a read-only handle
/// to the archive VMO ([`ramdisk_vmo`]) as arg1 and the command line's `nonce=HEX` (0 without
/// one) as arg2. The nonce lets the host tell the first process's lines from any other's: it
/// goes to this process only, and every `nonce` word is blanked in the archive VMO user space
/// gets (which it may hand on). Returns its return code.
pub fn run_init(name: &str) -> Result<i64, LoadFailure> {
    let archive = ramdisk::Archive::parse(ramdisk()).map_err(|_| LoadFailure::NotFound)?;
    let (image, offset) = program_entry(name).ok_or(LoadFailure::NotFound)?;
    let nonce = archive
        .cmdline()
        .get("nonce")
        .and_then(|n| u64::from_str_radix(n, 16).ok())
        .unwrap_or(0);
    let vmo = ramdisk_vmo()?;
    let rights = ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_WRITE;
    let process = spawn(
        name,
        image,
        Some((vmo.clone(), offset)),
        Some(Object::Vmo(vmo)),
        rights,
        nonce,
    )?;
    Ok(wait_for_exit(&process))
}
