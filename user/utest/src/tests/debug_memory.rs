//! `zx_process_read_memory` / `zx_process_write_memory` respect the rights behind a mapping
//! (issue 10, item 6). The suite runs with the kernel's `debug_syscalls` switch on (its harness
//! puts it on the command line); the switch-off case is the ktest
//! `task::process_memory_calls_need_the_debugging_switch`.
//!
//! The rule: a mapping's maximum protection (recorded at map time from the VMO handle's and the
//! VMAR handle's rights and the region's `CAN_MAP_*`) must include WRITE for a write and READ for
//! a read, else ACCESS_DENIED; the current protection does not matter (a debugger may write into
//! `r-x` code or read a guard page the process could re-protect itself).

use abi::rights::*;
use abi::vm_options::*;
use abi::Status;
use zx::{Handle, Process, Vmo};

use super::util::*;
use super::PAGE;
use crate::harness::{Ctx, TestResult};

tests!(
    ramdisk_image_cannot_be_written,
    read_only_handle_mapping_cannot_be_written,
    map_only_handle_mapping_cannot_be_read,
    writable_vmo_is_writable_whatever_the_protection,
);

/// The attack: write "PWNED" into the ramdisk image of `child` through our own process
/// handle (the ramdisk VMO's handle lacks WRITE, so our mapping's maximum protection is
/// read-only). Refused; the image is unchanged and a child spawned from it afterwards runs.
fn ramdisk_image_cannot_be_written(ctx: &Ctx) -> TestResult {
    let Some(image) = ctx.ramdisk.get("child") else {
        fail!("no `child` in the ramdisk");
    };
    let addr = image.as_ptr() as usize;
    let mut original = [0u8; 16];
    original.copy_from_slice(&image[..16]);
    match ctx.process.write_memory(addr, b"PWNED") {
        Err(Status::ERR_ACCESS_DENIED) => {}
        other => {
            // Put the image back so later tests can still spawn `child`.
            let _ = ctx.process.write_memory(addr, &original);
            fail!("write_memory into the read-only ramdisk VMO: {other:?}");
        }
    }
    ensure!(image[..16] == original, "the ramdisk image changed");
    // Reading it is fine: the mapping allows READ.
    let mut back = [0u8; 16];
    ensure_eq!(check!(ctx.process.read_memory(addr, &mut back)), 16);
    ensure_eq!(back, original);
    // A child spawned from the ramdisk now runs the unaltered image.
    let child = check!(ctx.spawn("child", 23));
    ensure_eq!(check!(child.wait()), 23);
    Ok(())
}

/// A VMO shared with a child process through a READ|MAP handle, mapped read-only there: writing
/// it through the child's process handle is refused, so what this process sees through its own
/// read-write mapping does not change.
fn read_only_handle_mapping_cannot_be_written(ctx: &Ctx) -> TestResult {
    let v = vmo(1)?;
    check!(v.write(b"original", 0));
    let ours = check!(ctx.root.map(RW, 0, &v, 0, PAGE));
    let ro = Vmo::from(check!(v.handle().duplicate(ZX_RIGHT_READ | ZX_RIGHT_MAP)));
    let (p, root) = check!(Process::create(&Handle::invalid(), b"ro-share", 0));
    let theirs = check!(root.map(ZX_VM_PERM_READ, 0, &ro, 0, PAGE));
    ensure_err!(
        p.write_memory(theirs, b"changed!"),
        Status::ERR_ACCESS_DENIED
    );
    // Also at its last byte.
    ensure_err!(
        p.write_memory(theirs + PAGE - 1, b"x"),
        Status::ERR_ACCESS_DENIED
    );
    let mut b = [0u8; 8];
    check!(v.read(&mut b, 0));
    ensure_eq!(&b, b"original");
    ensure_eq!(peek(ours).to_le_bytes(), *b"original");
    // Reading through the child's read-only mapping is allowed.
    ensure_eq!(check!(p.read_memory(theirs, &mut b)), 8);
    ensure_eq!(&b, b"original");
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
