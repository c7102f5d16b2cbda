//! `zx_process_read_memory` / `zx_process_write_memory` and the rights behind a mapping
//! (issue 10, item 6; issue 16, acceptance 3). The suite runs with the kernel's `debug_syscalls`
//! switch on (its harness puts it on the command line); the switch-off case is the ktest
//! `task::process_memory_calls_need_the_debugging_switch`.
//!
//! The rule: a mapping's maximum protection (recorded at map time from the VMO handle's and the
//! VMAR handle's rights and the region's `CAN_MAP_*`) must include READ, else ACCESS_DENIED. A
//! write into a mapping whose maximum lacks WRITE goes to the mapping's private copy-on-write
//! child (Zircon's `ForceWritable`): the target sees it, the VMO and its other mappings never
//! do. A mapping whose maximum has WRITE is written in its VMO; the current protection does not
//! matter (a debugger may write into `r-x` code or read a guard page the process could
//! re-protect itself).

use abi::kstats;
use abi::rights::*;
use abi::vm_options::*;
use abi::Status;
use zx::{Handle, Process, Vmar, Vmo};

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    ramdisk_image_write_is_private,
    read_only_handle_mapping_write_is_private,
    map_only_handle_mapping_cannot_be_read,
    writable_vmo_is_writable_whatever_the_protection,
    debugger_write_into_text_stays_private,
    program_pages_are_mapped_not_copied,
);

/// The issue-10 attack: write "PWNED" into the ramdisk image of `child` through our own
/// process handle (the ramdisk VMO's handle lacks WRITE, so our mapping's maximum protection is
/// read-only). The write lands in a private copy of our mapping: we see it there, the ramdisk
/// VMO does not change, and a child spawned from it meanwhile runs the unaltered image.
fn ramdisk_image_write_is_private(ctx: &Ctx) -> TestResult {
    let Some(image) = ctx.ramdisk.image("child") else {
        fail!("no `child` in the ramdisk");
    };
    let Some((rd, file_at)) = image.vmo.as_ref() else {
        fail!("the ramdisk keeps no VMO");
    };
    let addr = image.bytes.as_ptr() as usize;
    let mut original = [0u8; 16];
    original.copy_from_slice(&image.bytes[..16]);
    let wrote = ctx.process.write_memory(addr, b"PWNED");
    let mut seen = [0u8; 16];
    seen.copy_from_slice(&image.bytes[..16]);
    let mut in_vmo = [0u8; 16];
    let read = rd.read(&mut in_vmo, *file_at);
    // Put our view back so later tests parse `child` again.
    check!(ctx.process.write_memory(addr, &original));
    ensure_eq!(check!(wrote), 5);
    ensure_eq!(&seen[..5], b"PWNED");
    check!(read);
    ensure_eq!(in_vmo, original);
    ensure!(image.bytes[..16] == original, "our view was not restored");
    let mut back = [0u8; 16];
    ensure_eq!(check!(ctx.process.read_memory(addr, &mut back)), 16);
    ensure_eq!(back, original);
    let child = check!(ctx.spawn("child", 23));
    ensure_eq!(check!(child.wait()), 23);
    Ok(())
}

/// A VMO shared with a child process through a READ|MAP handle, mapped read-only there: writing
/// it through the child's process handle writes the child's private copy, so the child reads
/// the new bytes while the VMO and this process's read-write mapping of it keep the old ones.
fn read_only_handle_mapping_write_is_private(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    check!(v.write(b"original", 0));
    let ours = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    let ro = Vmo::from(check!(v.handle().duplicate(ZX_RIGHT_READ | ZX_RIGHT_MAP)));
    let (p, root) = check!(Process::create(&Handle::invalid(), b"ro-share", 0));
    let theirs = check!(root.map(ZX_VM_PERM_READ, 0, &ro, 0, PAGE));
    ensure_eq!(check!(p.write_memory(theirs, b"changed!")), 8);
    // Also at its last byte (the same private copy).
    ensure_eq!(check!(p.write_memory(theirs + PAGE - 1, b"xy")), 1);
    let mut b = [0u8; 8];
    check!(v.read(&mut b, 0));
    ensure_eq!(&b, b"original");
    ensure_eq!(peek(ours).to_le_bytes(), *b"original");
    ensure_eq!(check!(p.read_memory(theirs, &mut b)), 8);
    ensure_eq!(&b, b"changed!");
    let mut last = [0u8; 1];
    ensure_eq!(check!(p.read_memory(theirs + PAGE - 1, &mut last)), 1);
    ensure_eq!(&last, b"x");
    // SAFETY: nothing refers to our mapping.
    check!(unsafe { ctx.root.unmap(ours, PAGE) });
    Ok(())
}

/// A VMO handle with only MAP rights, mapped with no permissions: neither readable nor writable
/// through the process calls (the mapping's maximum protection is empty).
fn map_only_handle_mapping_cannot_be_read(_ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    check!(v.write(b"secret", 0));
    let map_only = Vmo::from(check!(v.handle().duplicate(ZX_RIGHT_MAP)));
    let (p, root) = check!(Process::create(&Handle::invalid(), b"map-only", 0));
    let addr = check!(root.map(0, 0, &map_only, 0, PAGE));
    let mut b = [0u8; 6];
    ensure_err!(p.read_memory(addr, &mut b), Status::ERR_ACCESS_DENIED);
    // No private copy either: the target could never read what it would hold.
    ensure_err!(p.write_memory(addr, b"public"), Status::ERR_ACCESS_DENIED);
    ensure_eq!(b, [0; 6]);
    check!(v.read(&mut b, 0));
    ensure_eq!(&b, b"secret");
    Ok(())
}

/// The contrast: the same no-permission (and read-only) mapping of a VMO whose handle had READ
/// and WRITE is readable and writable this way (debugger semantics), and the VMO changes.
fn writable_vmo_is_writable_whatever_the_protection(_ctx: &Ctx) -> TestResult {
    let v = vmo(2)?;
    check!(v.write(b"secret", 0));
    let (p, root) = check!(Process::create(&Handle::invalid(), b"debuggee", 0));
    let none = check!(root.map(0, 0, &v, 0, PAGE));
    let ro = check!(root.map(ZX_VM_PERM_READ, 0, &v, PAGE as u64, PAGE));
    let mut b = [0u8; 6];
    ensure_eq!(check!(p.read_memory(none, &mut b)), 6);
    ensure_eq!(&b, b"secret");
    ensure_eq!(check!(p.write_memory(none, b"public")), 6);
    ensure_eq!(check!(p.write_memory(ro, b"second")), 6);
    check!(v.read(&mut b, 0));
    ensure_eq!(&b, b"public");
    check!(v.read(&mut b, PAGE as u64));
    ensure_eq!(&b, b"second");
    Ok(())
}

/// Where `vaddr` is mapped in `process`: the mapping's VMO koid and the VMO offset of `vaddr`.
fn mapped_at(process: &Process, vaddr: u64) -> Result<(u64, u64), crate::harness::Failure> {
    for m in check!(zx::process::maps(process.handle())) {
        if let Some(map) = m.mapping() {
            if vaddr >= m.base as u64 && vaddr < (m.base + m.size) as u64 {
                return Ok((map.vmo_koid, map.vmo_offset + vaddr - m.base as u64));
            }
        }
    }
    fail!("nothing mapped at {vaddr:#x}")
}

/// Issue 16, acceptance 3: two processes loaded from the same ramdisk image (`child`, as
/// `spawn` loads it; not started). Their text is the ramdisk VMO's own pages. A debugger writes
/// int3s at the first one's entry: the first reads them back (its text mapping is now a private
/// copy), the second still reads the program's bytes from the ramdisk VMO, and the ramdisk VMO
/// and our own view of it never change.
fn debugger_write_into_text_stays_private(ctx: &Ctx) -> TestResult {
    let Some(image) = ctx.ramdisk.image("child") else {
        fail!("no `child` in the ramdisk");
    };
    let Some((rd, file_at)) = image.vmo.as_ref() else {
        fail!("the ramdisk keeps no VMO");
    };
    let rd_koid = check!(rd.handle().basic_info()).koid;
    let load = |name: &[u8]| -> Result<(Process, Vmar, u64), crate::harness::Failure> {
        let (p, root) = check!(Process::create(&Handle::invalid(), name, 0));
        let loaded = check!(zx::process::load_program(&ctx.ramdisk, "child", &root));
        Ok((p, root, loaded.entry))
    };
    let (a, _root_a, entry_a) = load(b"debuggee-a")?;
    let (b, _root_b, entry_b) = load(b"debuggee-b")?;
    let (koid_a, at) = mapped_at(&a, entry_a)?;
    ensure_eq!(koid_a, rd_koid);
    ensure_eq!(mapped_at(&b, entry_b)?, (rd_koid, at));
    let mut code = [0u8; 4];
    ensure_eq!(check!(b.read_memory(entry_b as usize, &mut code)), 4);
    let mut in_vmo = [0u8; 4];
    check!(rd.read(&mut in_vmo, at));
    ensure_eq!(code, in_vmo);
    ensure!(code != [0xcc; 4], "the entry already holds int3s");

    ensure_eq!(check!(a.write_memory(entry_a as usize, &[0xcc; 4])), 4);
    let mut seen = [0u8; 4];
    ensure_eq!(check!(a.read_memory(entry_a as usize, &mut seen)), 4);
    ensure_eq!(seen, [0xcc; 4]);
    ensure!(
        mapped_at(&a, entry_a)?.0 != rd_koid,
        "a's text still maps the ramdisk VMO"
    );
    ensure_eq!(check!(b.read_memory(entry_b as usize, &mut seen)), 4);
    ensure_eq!(seen, code);
    ensure_eq!(mapped_at(&b, entry_b)?, (rd_koid, at));
    check!(rd.read(&mut seen, at));
    ensure_eq!(seen, code);
    let ours = (at - file_at) as usize;
    ensure_eq!(image.bytes[ours..ours + 4], code);
    Ok(())
}

/// Pages committed in the VMOs `process` maps, except those of VMO `shared`.
fn private_pages(process: &Process, shared: u64) -> Result<usize, crate::harness::Failure> {
    Ok(check!(zx::process::maps(process.handle()))
        .iter()
        .filter_map(|m| m.mapping())
        .filter(|m| m.vmo_koid != shared)
        .map(|m| m.committed_private_bytes as usize / PAGE)
        .sum())
}

/// Issue 16, acceptance 4: what loading `child` commits, by copying (every segment into fresh
/// VMOs, `zx::process::load_image`) and mapped from the ramdisk (`load_program`, what `spawn`
/// does), not started: the pages committed in the VMOs its mappings show other than the ramdisk
/// VMO (exact: copied, every file page; mapped, the data segment's rewritten pages), and the
/// kernel frames in use (free + heap counters) per process over four loads each way, against
/// creating the processes alone (page-table roots; VMO bookkeeping shows there too). Prints
/// them (docs/perf-log.md).
fn program_pages_are_mapped_not_copied(ctx: &Ctx) -> TestResult {
    let Some(image) = ctx.ramdisk.image("child") else {
        fail!("no `child` in the ramdisk");
    };
    let Some((rd, _)) = image.vmo.as_ref() else {
        fail!("the ramdisk keeps no VMO");
    };
    let rd_koid = check!(rd.handle().basic_info()).koid;
    let bytes = image.bytes;
    const N: u64 = 4;
    // A first round each way lets this process's heap reach its working size.
    for _ in 0..2 {
        let (_p, root) = check!(Process::create(&Handle::invalid(), b"warm-up", 0));
        check!(zx::process::load_program(&ctx.ramdisk, "child", &root));
        check!(zx::process::load_image(bytes, &root));
    }
    let mut frames = [0u64; 3];
    let mut pages = [0usize; 3];
    for (i, how) in [None, Some(false), Some(true)].into_iter().enumerate() {
        let before = check!(zx::leak_check_stats())[kstats::FREE_FRAMES];
        let mut keep = alloc::vec::Vec::new();
        for _ in 0..N {
            let (p, root) = check!(Process::create(&Handle::invalid(), b"loaded", 0));
            match how {
                Some(true) => {
                    check!(zx::process::load_program(&ctx.ramdisk, "child", &root));
                }
                Some(false) => {
                    check!(zx::process::load_image(bytes, &root));
                }
                None => {}
            }
            keep.push((p, root));
        }
        let after = check!(zx::leak_check_stats())[kstats::FREE_FRAMES];
        frames[i] = before.saturating_sub(after) / N;
        pages[i] = private_pages(&keep[0].0, rd_koid)?;
        drop(keep);
    }
    zx::println!(
        "spawn_cost: loading child commits {} private pages copied, {} mapped from the ramdisk; \
         frames in use per process: {} alone, {} copied, {} mapped",
        pages[1],
        pages[2],
        frames[0],
        frames[1],
        frames[2]
    );
    ensure_eq!(pages[0], 0);
    // Copied: every page of rodata, text and data; mapped: the data pages holding relocations
    // and the start of .bss (one or two, as the segment straddles a page boundary or not).
    ensure!(pages[1] >= 8, "copying child committed {} pages", pages[1]);
    ensure!(
        (1..=2).contains(&pages[2]),
        "mapping child committed {} pages",
        pages[2]
    );
    ensure!(
        frames[2] < frames[1],
        "frames: mapped {}, copied {}",
        frames[2],
        frames[1]
    );
    Ok(())
}
