//! `zx_object_get_info`: maps of a VMAR / the process, VMO info, errors.

use abi::info::{maps_type::*, topic};
use abi::syscall_numbers as nr;
use abi::vm_options::*;
use abi::Status;
use zx::raw::syscall6;
use zx::Vmo;

use crate::harness::{Ctx, TestResult};

tests!(
    vmar_maps_tree,
    process_maps_contains_mapping,
    vmo_info,
    process_vmos_lists_handles_then_mappings,
    vmo_name_is_a_property_shown_in_info_and_maps,
    buffer_too_small_reports_avail,
    bad_topic,
    bad_buffer,
);

const PAGE: usize = super::PAGE;

/// `ZX_INFO_PROCESS_VMOS` of this process: a VMO held through a handle is listed with
/// VIA_HANDLE and the handle's rights; once mapped it is listed again with VIA_MAPPING (no
/// rights), after every handle's entry; the entries carry the attribution fields.
fn process_vmos_lists_handles_then_mappings(ctx: &Ctx) -> TestResult {
    use abi::info::vmo_flags::{ZX_INFO_VMO_VIA_HANDLE, ZX_INFO_VMO_VIA_MAPPING};
    let Some(me) = zx::rt::process_self() else {
        fail!("no handle to this process");
    };
    let v = check!(Vmo::create(2 * PAGE as u64, 0));
    check!(v.write(&[1], 0));
    let info = check!(v.info());
    let mine = |list: &[abi::info::InfoVmo]| -> alloc::vec::Vec<abi::info::InfoVmo> {
        list.iter()
            .filter(|e| e.koid == info.koid)
            .copied()
            .collect()
    };
    let before = check!(zx::process::vmos(me.handle()));
    let entries = mine(&before);
    ensure_eq!(entries.len(), 1);
    ensure_eq!(
        entries[0].flags & (ZX_INFO_VMO_VIA_HANDLE | ZX_INFO_VMO_VIA_MAPPING),
        ZX_INFO_VMO_VIA_HANDLE
    );
    ensure_eq!(entries[0].handle_rights, info.handle_rights);
    ensure_eq!(
        (
            entries[0].committed_bytes,
            entries[0].committed_private_bytes
        ),
        (PAGE as u64, PAGE as u64)
    );
    ensure_eq!(entries[0].committed_scaled_bytes, PAGE as u64);
    let addr = check!(ctx.root.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    let after = check!(zx::process::vmos(me.handle()));
    let entries = mine(&after);
    ensure_eq!(entries.len(), 2);
    ensure_eq!(
        entries[1].flags & (ZX_INFO_VMO_VIA_HANDLE | ZX_INFO_VMO_VIA_MAPPING),
        ZX_INFO_VMO_VIA_MAPPING
    );
    ensure_eq!(entries[1].handle_rights, 0);
    let first_mapping = after
        .iter()
        .position(|e| e.flags & ZX_INFO_VMO_VIA_MAPPING != 0)
        .unwrap_or(after.len());
    ensure!(
        after[first_mapping..]
            .iter()
            .all(|e| e.flags & ZX_INFO_VMO_VIA_HANDLE == 0),
        "handles first, then mappings"
    );
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    Ok(())
}

fn vmar_maps_tree(ctx: &Ctx) -> TestResult {
    let (r, base) = check!(ctx.root.allocate(
        ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_SPECIFIC,
        0,
        8 * PAGE
    ));
    let (_inner, ibase) =
        check!(r.allocate(ZX_VM_CAN_MAP_READ | ZX_VM_SPECIFIC, 4 * PAGE, 2 * PAGE));
    let v = check!(Vmo::create(PAGE as u64, 0));
    check!(r.map(ZX_VM_SPECIFIC | ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    let maps = check!(zx::process::maps(r.handle()));
    ensure_eq!(maps.len(), 3);
    ensure_eq!(maps[0].r#type, ZX_INFO_MAPS_TYPE_VMAR);
    ensure_eq!(
        (maps[0].base, maps[0].size, maps[0].depth),
        (base, 8 * PAGE, 0)
    );
    ensure_eq!(maps[1].r#type, ZX_INFO_MAPS_TYPE_MAPPING);
    ensure_eq!((maps[1].base, maps[1].size, maps[1].depth), (base, PAGE, 1));
    ensure_eq!(maps[1].u.mmu_flags, ZX_VM_PERM_READ);
    ensure_eq!(maps[1].u.vmo_koid, check!(v.info()).koid);
    ensure_eq!(maps[2].r#type, ZX_INFO_MAPS_TYPE_VMAR);
    ensure_eq!(
        (maps[2].base, maps[2].size, maps[2].depth),
        (ibase, 2 * PAGE, 1)
    );
    // SAFETY: nothing refers to the region's memory.
    check!(unsafe { r.destroy() });
    Ok(())
}

fn process_maps_contains_mapping(ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(2 * PAGE as u64, 0));
    let addr = check!(ctx
        .root
        .map(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, &v, 0, 2 * PAGE));
    // SAFETY: inside the fresh read-write mapping.
    unsafe { (addr as *mut u8).write_volatile(1) };
    let maps = check!(zx::process::maps(ctx.process.handle()));
    ensure_eq!(maps[0].r#type, ZX_INFO_MAPS_TYPE_ASPACE);
    let m = maps
        .iter()
        .find(|m| m.r#type == ZX_INFO_MAPS_TYPE_MAPPING && m.base == addr);
    let Some(m) = m else {
        fail!(
            "mapping at {addr:#x} not in ZX_INFO_PROCESS_MAPS ({} entries)",
            maps.len()
        );
    };
    ensure_eq!(m.size, 2 * PAGE);
    ensure_eq!(m.u.mmu_flags, ZX_VM_PERM_READ | ZX_VM_PERM_WRITE);
    ensure_eq!(m.u.committed_bytes, PAGE as u64);
    ensure_eq!(
        (m.u.committed_private_bytes, m.u.committed_scaled_bytes),
        (PAGE as u64, PAGE as u64)
    );
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, 2 * PAGE) });
    Ok(())
}

fn vmo_info(_ctx: &Ctx) -> TestResult {
    let v = check!(Vmo::create(3 * PAGE as u64, 0));
    check!(v.write(b"x", PAGE as u64));
    let i = check!(v.info());
    ensure_eq!(i.size_bytes, 3 * PAGE as u64);
    ensure_eq!(i.committed_bytes, PAGE as u64);
    ensure_eq!(i.handle_rights, abi::default_rights::ZX_DEFAULT_VMO_RIGHTS);
    ensure!(i.koid != 0);
    Ok(())
}

/// Zircon's VMOs carry a name (`ZX_PROP_NAME`, up to 31 bytes): `zx_object_get_property`
/// reads it, `ZX_INFO_VMO` and each mapping's `ZX_INFO_PROCESS_MAPS` entry show it.
fn vmo_name_is_a_property_shown_in_info_and_maps(ctx: &Ctx) -> TestResult {
    use abi::props::ZX_PROP_NAME;
    let v = check!(Vmo::create(PAGE as u64, 0));
    let mut name = [0xffu8; 32];
    check!(v.handle().get_property(ZX_PROP_NAME, &mut name));
    ensure!(name == [0u8; 32], "a new VMO's name is not empty: {name:?}");
    check!(v.handle().set_property(ZX_PROP_NAME, b"my-vmo"));
    check!(v.handle().get_property(ZX_PROP_NAME, &mut name));
    ensure!(
        &name[..7] == b"my-vmo\0",
        "the name set is not read back: {name:?}"
    );
    let info_name = check!(v.info()).name;
    ensure!(
        &info_name[..7] == b"my-vmo\0",
        "ZX_INFO_VMO does not show the name: {info_name:?}"
    );
    let addr = check!(ctx.root.map(ZX_VM_PERM_READ, 0, &v, 0, PAGE));
    let maps = check!(zx::process::maps(ctx.process.handle()));
    let m = maps
        .iter()
        .find(|m| m.r#type == ZX_INFO_MAPS_TYPE_MAPPING && m.base == addr);
    let Some(m) = m else {
        fail!("mapping at {addr:#x} not in ZX_INFO_PROCESS_MAPS");
    };
    ensure!(
        &m.name[..7] == b"my-vmo\0",
        "the mapping's ZX_INFO_PROCESS_MAPS entry does not show its VMO's name: {:?}",
        m.name
    );
    // SAFETY: nothing refers to the mapping.
    check!(unsafe { ctx.root.unmap(addr, PAGE) });
    // Longer than 31 bytes: truncated, NUL-terminated.
    check!(v.handle().set_property(ZX_PROP_NAME, &[b'v'; 40]));
    check!(v.handle().get_property(ZX_PROP_NAME, &mut name));
    ensure_eq!(&name[..31], &[b'v'; 31]);
    ensure_eq!(name[31], 0);
    Ok(())
}

fn buffer_too_small_reports_avail(ctx: &Ctx) -> TestResult {
    let mut actual = usize::MAX;
    let mut avail = 0usize;
    // SAFETY: zero-length buffer; `actual` and `avail` are valid, aligned usizes.
    let r = unsafe {
        syscall6(
            nr::ZX_SYS_OBJECT_GET_INFO,
            ctx.process.handle().raw() as usize,
            topic::ZX_INFO_PROCESS_MAPS as usize,
            0,
            0,
            &mut actual as *mut usize as usize,
            &mut avail as *mut usize as usize,
        )
    };
    ensure_eq!(Status::from_raw(r as i32), Status::OK);
    ensure_eq!(actual, 0);
    ensure!(avail >= 3, "avail {avail}");
    // A single-record topic with a short buffer.
    let mut small = [0u8; 8];
    // SAFETY: `small` is valid for 8 bytes.
    let r = unsafe {
        syscall6(
            nr::ZX_SYS_OBJECT_GET_INFO,
            ctx.process.handle().raw() as usize,
            topic::ZX_INFO_PROCESS as usize,
            small.as_mut_ptr() as usize,
            small.len(),
            0,
            0,
        )
    };
    ensure_eq!(Status::from_raw(r as i32), Status::ERR_BUFFER_TOO_SMALL);
    Ok(())
}

fn bad_topic(ctx: &Ctx) -> TestResult {
    let mut buf = [0u64; 8];
    // SAFETY: `buf` is valid for 64 bytes.
    let r = unsafe {
        syscall6(
            nr::ZX_SYS_OBJECT_GET_INFO,
            ctx.process.handle().raw() as usize,
            0x7777,
            buf.as_mut_ptr() as usize,
            64,
            0,
            0,
        )
    };
    ensure_eq!(Status::from_raw(r as i32), Status::ERR_NOT_SUPPORTED);
    // The VMAR topic on a VMO handle.
    let v = check!(Vmo::create(PAGE as u64, 0));
    // SAFETY: as above.
    let r = unsafe {
        syscall6(
            nr::ZX_SYS_OBJECT_GET_INFO,
            v.raw_handle() as usize,
            topic::ZX_INFO_VMAR as usize,
            buf.as_mut_ptr() as usize,
            64,
            0,
            0,
        )
    };
    ensure_eq!(Status::from_raw(r as i32), Status::ERR_WRONG_TYPE);
    Ok(())
}

fn bad_buffer(ctx: &Ctx) -> TestResult {
    for bad in [0usize, 0xffff_8000_0000_1000, 0x10] {
        // SAFETY: the kernel must refuse the buffer without touching our memory.
        let r = unsafe {
            syscall6(
                nr::ZX_SYS_OBJECT_GET_INFO,
                ctx.process.handle().raw() as usize,
                topic::ZX_INFO_PROCESS as usize,
                bad,
                24,
                0,
                0,
            )
        };
        ensure_eq!(Status::from_raw(r as i32), Status::ERR_INVALID_ARGS);
    }
    Ok(())
}
