//! zx_vmar_* through dispatch: success paths, every error cause of vmar.fidl at the syscall
//! boundary (the vm crate's own tests cover each VM rule in depth), bad out-pointers and undo.

mod common;

use abi::default_rights::ZX_DEFAULT_VMAR_RIGHTS;
use abi::ops::{ZX_VMAR_OP_COMMIT, ZX_VMAR_OP_DECOMMIT};
use abi::Status;
use common::*;
use vm::{MmuFlags, PhysMem, RegionInfo};

const PAGE: usize = 4096;
const RW: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
const E_ARGS: Result<(), Status> = Err(Status::ERR_INVALID_ARGS);

fn mappings(m: &Mock) -> Vec<(usize, usize, MmuFlags)> {
    m.walk()
        .into_iter()
        .filter_map(|r| match r {
            RegionInfo::Mapping {
                base, size, perms, ..
            } => Some((base, size, perms)),
            _ => None,
        })
        .collect()
}

fn vmars(m: &Mock) -> usize {
    m.walk()
        .iter()
        .filter(|r| matches!(r, RegionInfo::Vmar { .. }))
        .count()
}

/// Handles every syscall taking a VMAR must reject the same way: bad, closed, wrong type.
fn bad_handles(m: &mut Mock) -> Vec<(u32, Status, &'static str)> {
    let vmo = m.vmo(PAGE as u64, 0);
    let closed = m.closed_handle();
    vec![
        (0, Status::ERR_BAD_HANDLE, "invalid"),
        (closed, Status::ERR_BAD_HANDLE, "closed"),
        (0x7777_7773, Status::ERR_BAD_HANDLE, "never issued"),
        (vmo, Status::ERR_WRONG_TYPE, "a VMO"),
    ]
}

#[test]
fn allocate_success_rights_and_placement() {
    let mut m = Mock::new();
    let opts = ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_COMPACT;
    let (child, addr) = m.allocate(m.root, opts, 0, 16 * PAGE).unwrap();
    assert!((ASPACE_BASE..ASPACE_BASE + ASPACE_LEN).contains(&addr));
    assert_eq!(
        m.rights(child),
        ZX_DEFAULT_VMAR_RIGHTS | ZX_RIGHT_READ | ZX_RIGHT_WRITE
    );
    // Upper limit: the region ends at or below base + offset.
    let limit = 64 * PAGE;
    let (_, a) = m
        .allocate(m.root, ZX_VM_OFFSET_IS_UPPER_LIMIT, limit, 4 * PAGE)
        .unwrap();
    assert!(a + 4 * PAGE <= ASPACE_BASE + limit);
    // Specific.
    let (_, s) = m.allocate(m.root, ZX_VM_SPECIFIC, 0x10_0000, PAGE).unwrap();
    assert_eq!(s, ASPACE_BASE + 0x10_0000);
    // COMPACT child: its children pack from its base.
    let (_, c1) = m.allocate(child, 0, 0, PAGE).unwrap();
    let (_, c2) = m.allocate(child, 0, 0, PAGE).unwrap();
    assert_eq!((c1, c2), (addr, addr + PAGE));
}

#[test]
fn allocate_errors() {
    let mut m = Mock::new();
    for (h, status, what) in bad_handles(&mut m) {
        assert_eq!(m.allocate(h, 0, 0, PAGE).err(), Some(status), "{what}");
    }
    let root = m.root;
    let e = Some(Status::ERR_INVALID_ARGS);
    assert_eq!(
        m.allocate(root, 0, PAGE, PAGE).err(),
        e,
        "offset without SPECIFIC"
    );
    assert_eq!(
        m.allocate(
            root,
            ZX_VM_SPECIFIC | ZX_VM_OFFSET_IS_UPPER_LIMIT,
            PAGE,
            PAGE
        )
        .err(),
        e,
        "upper limit with SPECIFIC"
    );
    assert_eq!(
        m.allocate(root, ZX_VM_SPECIFIC, ASPACE_LEN - PAGE, 2 * PAGE)
            .err(),
        e,
        "beyond the region"
    );
    assert_eq!(
        m.allocate(root, ZX_VM_SPECIFIC, 100, PAGE).err(),
        e,
        "unaligned offset"
    );
    assert_eq!(m.allocate(root, 0, 0, PAGE + 1).err(), e, "unaligned size");
    assert_eq!(m.allocate(root, 0, 0, 0).err(), e, "size 0");
    assert_eq!(m.allocate(root, 0, 0, usize::MAX).err(), e, "huge size");
    assert_eq!(
        m.allocate(root, ZX_VM_PERM_READ, 0, PAGE).err(),
        e,
        "a permission"
    );
    assert_eq!(m.allocate(root, 1 << 20, 0, PAGE).err(), e, "unknown bit");
    // NO_RESOURCES: no room (Zircon's status; the spec text says NO_MEMORY).
    let (small, _) = m.allocate(root, ZX_VM_CAN_MAP_READ, 0, 4 * PAGE).unwrap();
    m.allocate(small, 0, 0, 3 * PAGE).unwrap();
    assert_eq!(
        m.allocate(small, 0, 0, 2 * PAGE).err(),
        Some(Status::ERR_NO_RESOURCES)
    );
    // ACCESS_DENIED: CAN_MAP beyond the parent, or beyond the handle's rights.
    assert_eq!(
        m.allocate(small, ZX_VM_CAN_MAP_WRITE, 0, PAGE).err(),
        Some(Status::ERR_ACCESS_DENIED),
        "nested: the parent cannot map WRITE"
    );
    let ro_root = m.dup(root, ZX_RIGHT_READ);
    assert_eq!(
        m.allocate(ro_root, ZX_VM_CAN_MAP_WRITE, 0, PAGE).err(),
        Some(Status::ERR_ACCESS_DENIED),
        "rights reduced by duplicate"
    );
    assert!(m.allocate(ro_root, ZX_VM_CAN_MAP_READ, 0, PAGE).is_ok());
    // ALREADY_EXISTS.
    m.allocate(root, ZX_VM_SPECIFIC, 0x20_0000, PAGE).unwrap();
    assert_eq!(
        m.allocate(root, ZX_VM_SPECIFIC, 0x20_0000, PAGE).err(),
        Some(Status::ERR_ALREADY_EXISTS)
    );
    // BAD_STATE: destroyed parent.
    let (gone, _) = m.allocate(root, 0, 0, PAGE).unwrap();
    m.sys(ZX_SYS_VMAR_DESTROY, &[gone as u64]).unwrap();
    assert_eq!(
        m.allocate(gone, 0, 0, PAGE).err(),
        Some(Status::ERR_BAD_STATE)
    );
}

#[test]
fn allocate_bad_out_pointers_undo_everything() {
    let mut m = Mock::new();
    let before = (m.handle_count(), vmars(&m));
    for (addr, what) in BAD_OUT {
        for (child_out, addr_out) in [(addr, BUF + 8), (BUF, addr)] {
            let r = m.sys(
                ZX_SYS_VMAR_ALLOCATE,
                &[
                    m.root as u64,
                    0,
                    0,
                    PAGE as u64,
                    child_out as u64,
                    addr_out as u64,
                ],
            );
            // BUF + 1 is aligned for neither u32 nor usize, so both slots fail for it.
            assert_eq!(r, E_ARGS, "{what} ({child_out:#x}, {addr_out:#x})");
            assert_eq!((m.handle_count(), vmars(&m)), before, "{what}: undone");
        }
    }
}

#[test]
fn map_success_options_and_nested_inheritance() {
    let mut m = Mock::new();
    let vmo = m.vmo(8 * PAGE as u64, 0);
    let a = m.map(m.root, RW, 0, vmo, 0, 4 * PAGE).unwrap();
    assert_eq!(
        mappings(&m),
        vec![(a, 4 * PAGE, MmuFlags::READ | MmuFlags::WRITE)]
    );
    // SPECIFIC, then SPECIFIC_OVERWRITE over it.
    let s = m
        .map(
            m.root,
            ZX_VM_PERM_READ | ZX_VM_SPECIFIC,
            0x40_0000,
            vmo,
            PAGE as u64,
            PAGE,
        )
        .unwrap();
    assert_eq!(s, ASPACE_BASE + 0x40_0000);
    m.map(
        m.root,
        RW | ZX_VM_SPECIFIC_OVERWRITE,
        0x40_0000,
        vmo,
        0,
        PAGE,
    )
    .unwrap();
    assert!(mappings(&m).contains(&(s, PAGE, MmuFlags::READ | MmuFlags::WRITE)));
    // A read-only child region refuses writable mappings (permission inheritance).
    let (ro, _) = m.allocate(m.root, ZX_VM_CAN_MAP_READ, 0, 8 * PAGE).unwrap();
    assert_eq!(
        m.map(ro, RW, 0, vmo, 0, PAGE).err(),
        Some(Status::ERR_ACCESS_DENIED)
    );
    assert!(m.map(ro, ZX_VM_PERM_READ, 0, vmo, 0, PAGE).is_ok());
    // XOM hint on x86_64 means READ.
    let x = m
        .map(m.root, ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED, 0, vmo, 0, PAGE)
        .unwrap();
    assert!(mappings(&m).contains(&(x, PAGE, MmuFlags::READ)));
}

#[test]
fn map_errors() {
    let mut m = Mock::new();
    let vmo = m.vmo(4 * PAGE as u64, 0);
    let root = m.root;
    for (h, status, what) in bad_handles(&mut m) {
        assert_eq!(
            m.map(h, RW, 0, vmo, 0, PAGE).err(),
            Some(status),
            "vmar {what}"
        );
        if status != Status::ERR_WRONG_TYPE {
            assert_eq!(
                m.map(root, RW, 0, h, 0, PAGE).err(),
                Some(status),
                "vmo {what}"
            );
        }
    }
    assert_eq!(
        m.map(root, RW, 0, root, 0, PAGE).err(),
        Some(Status::ERR_WRONG_TYPE),
        "a VMAR as the VMO"
    );
    let e = Some(Status::ERR_INVALID_ARGS);
    assert_eq!(
        m.map(root, RW, PAGE, vmo, 0, PAGE).err(),
        e,
        "offset without SPECIFIC"
    );
    assert_eq!(
        m.map(
            root,
            RW | ZX_VM_SPECIFIC_OVERWRITE | ZX_VM_MAP_RANGE,
            0,
            vmo,
            0,
            PAGE
        )
        .err(),
        e,
        "OVERWRITE with MAP_RANGE"
    );
    assert_eq!(
        m.map(
            root,
            RW | ZX_VM_SPECIFIC | ZX_VM_OFFSET_IS_UPPER_LIMIT,
            PAGE,
            vmo,
            0,
            PAGE
        )
        .err(),
        e,
        "upper limit with SPECIFIC"
    );
    assert_eq!(
        m.map(root, RW | ZX_VM_SPECIFIC, ASPACE_LEN, vmo, 0, PAGE)
            .err(),
        e,
        "beyond the region"
    );
    assert_eq!(
        m.map(root, RW | ZX_VM_SPECIFIC, 1, vmo, 0, PAGE).err(),
        e,
        "unaligned vmar_offset"
    );
    assert_eq!(
        m.map(root, RW, 0, vmo, 1, PAGE).err(),
        e,
        "unaligned vmo_offset"
    );
    assert_eq!(m.map(root, RW, 0, vmo, 0, 0).err(), e, "len 0");
    // An unaligned len is rounded up (Zircon); one rounding to 0 is OUT_OF_RANGE.
    let a = m.map(root, RW, 0, vmo, 0, PAGE + 1).unwrap();
    assert_eq!(
        m.sys(ZX_SYS_VMAR_UNMAP, &[root as u64, a as u64, 2 * PAGE as u64]),
        Ok(())
    );
    assert_eq!(
        m.map(root, RW, 0, vmo, 0, usize::MAX - PAGE + 2).err(),
        Some(Status::ERR_OUT_OF_RANGE),
        "len rounding to 0"
    );
    assert_eq!(
        m.map(root, ZX_VM_PERM_WRITE, 0, vmo, 0, PAGE).err(),
        e,
        "write without read"
    );
    assert_eq!(
        m.map(root, RW | (1 << 20), 0, vmo, 0, PAGE).err(),
        e,
        "unknown option"
    );
    // ALREADY_EXISTS.
    m.map(root, RW | ZX_VM_SPECIFIC, 0x80_0000, vmo, 0, PAGE)
        .unwrap();
    assert_eq!(
        m.map(root, RW | ZX_VM_SPECIFIC, 0x80_0000, vmo, 0, PAGE)
            .err(),
        Some(Status::ERR_ALREADY_EXISTS)
    );
    // NO_RESOURCES: no room in a small region.
    let (small, _) = m
        .allocate(root, ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE, 0, 2 * PAGE)
        .unwrap();
    m.map(small, RW, 0, vmo, 0, 2 * PAGE).unwrap();
    assert_eq!(
        m.map(small, RW, 0, vmo, 0, PAGE).err(),
        Some(Status::ERR_NO_RESOURCES)
    );
    // ACCESS_DENIED: rights reduced by duplicate, on either handle.
    let ro_vmar = m.dup(root, ZX_RIGHT_READ);
    let ro_vmo = m.dup(vmo, ZX_RIGHT_READ | ZX_RIGHT_MAP);
    let no_map = m.dup(vmo, ZX_RIGHT_READ | ZX_RIGHT_WRITE);
    let denied = Some(Status::ERR_ACCESS_DENIED);
    assert_eq!(
        m.map(ro_vmar, RW, 0, vmo, 0, PAGE).err(),
        denied,
        "vmar lacks WRITE"
    );
    assert_eq!(
        m.map(root, RW, 0, ro_vmo, 0, PAGE).err(),
        denied,
        "vmo lacks WRITE"
    );
    assert_eq!(
        m.map(root, ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE, 0, vmo, 0, PAGE)
            .err(),
        denied,
        "VMOs are not executable by default"
    );
    assert_eq!(
        m.map(root, ZX_VM_PERM_READ, 0, no_map, 0, PAGE).err(),
        denied,
        "no MAP"
    );
    assert!(m.map(ro_vmar, ZX_VM_PERM_READ, 0, ro_vmo, 0, PAGE).is_ok());
    // NOT_SUPPORTED, BUFFER_TOO_SMALL, OUT_OF_RANGE.
    let resizable = m.vmo(PAGE as u64, abi::vmo_options::ZX_VMO_RESIZABLE);
    assert_eq!(
        m.map(root, RW, 0, resizable, 0, PAGE).err(),
        Some(Status::ERR_NOT_SUPPORTED)
    );
    assert!(m
        .map(root, RW | ZX_VM_ALLOW_FAULTS, 0, resizable, 0, PAGE)
        .is_ok());
    assert_eq!(
        m.map(root, RW, 0, vmo, 0, 8 * PAGE).err(),
        Some(Status::ERR_BUFFER_TOO_SMALL)
    );
    assert_eq!(
        m.map(root, RW, 0, vmo, !0xfff, PAGE).err(),
        Some(Status::ERR_OUT_OF_RANGE)
    );
    // BAD_STATE.
    let (gone, _) = m.allocate(root, ZX_VM_CAN_MAP_READ, 0, PAGE).unwrap();
    m.sys(ZX_SYS_VMAR_DESTROY, &[gone as u64]).unwrap();
    assert_eq!(
        m.map(gone, ZX_VM_PERM_READ, 0, vmo, 0, PAGE).err(),
        Some(Status::ERR_BAD_STATE)
    );
}

#[test]
fn map_bad_out_pointer_unmaps_again() {
    let mut m = Mock::new();
    let vmo = m.vmo(PAGE as u64, 0);
    for (addr, what) in BAD_OUT {
        let r = m.sys(
            ZX_SYS_VMAR_MAP,
            &[
                m.root as u64,
                RW as u64,
                0,
                vmo as u64,
                0,
                PAGE as u64,
                addr as u64,
            ],
        );
        assert_eq!(r, E_ARGS, "{what}");
        assert!(mappings(&m).is_empty(), "{what}: mapping removed");
    }
}

#[test]
fn unmap() {
    let mut m = Mock::new();
    let vmo = m.vmo(4 * PAGE as u64, 0);
    let root = m.root;
    let a = m.map(root, RW, 0, vmo, 0, 4 * PAGE).unwrap();
    let unmap = |m: &mut Mock, h: u32, addr: usize, len: usize| {
        m.sys(ZX_SYS_VMAR_UNMAP, &[h as u64, addr as u64, len as u64])
    };
    assert_eq!(unmap(&mut m, root, a + PAGE, PAGE), Ok(()));
    assert_eq!(mappings(&m).len(), 2, "cut in two");
    for (h, status, what) in bad_handles(&mut m) {
        assert_eq!(unmap(&mut m, h, a, PAGE), Err(status), "{what}");
    }
    assert_eq!(unmap(&mut m, root, a + 1, PAGE), E_ARGS, "unaligned addr");
    assert_eq!(unmap(&mut m, root, a, 0), E_ARGS, "len 0");
    assert_eq!(
        unmap(&mut m, root, a, usize::MAX - PAGE + 2),
        E_ARGS,
        "len rounding to 0"
    );
    assert_eq!(
        unmap(&mut m, root, a, usize::MAX & !0xfff),
        E_ARGS,
        "overflow"
    );
    assert_eq!(
        unmap(&mut m, root, 0x1000, PAGE),
        E_ARGS,
        "outside the region"
    );
    assert_eq!(
        unmap(&mut m, root, a + PAGE, PAGE - 1),
        Ok(()),
        "nothing there (Zircon: OK), len rounded up"
    );
    let (gone, ga) = m.allocate(root, 0, 0, PAGE).unwrap();
    m.sys(ZX_SYS_VMAR_DESTROY, &[gone as u64]).unwrap();
    assert_eq!(unmap(&mut m, gone, ga, PAGE), Err(Status::ERR_BAD_STATE));
    assert_eq!(unmap(&mut m, root, a, 4 * PAGE), Ok(()));
    assert!(mappings(&m).is_empty());
}

#[test]
fn protect() {
    let mut m = Mock::new();
    let vmo = m.vmo(4 * PAGE as u64, 0);
    let root = m.root;
    let a = m.map(root, RW, 0, vmo, 0, 4 * PAGE).unwrap();
    let protect = |m: &mut Mock, h: u32, opts: u32, addr: usize, len: usize| {
        m.sys(
            ZX_SYS_VMAR_PROTECT,
            &[h as u64, opts as u64, addr as u64, len as u64],
        )
    };
    assert_eq!(
        protect(&mut m, root, ZX_VM_PERM_READ, a + PAGE, PAGE),
        Ok(())
    );
    assert!(mappings(&m).contains(&(a + PAGE, PAGE, MmuFlags::READ)));
    for (h, status, what) in bad_handles(&mut m) {
        assert_eq!(
            protect(&mut m, h, ZX_VM_PERM_READ, a, PAGE),
            Err(status),
            "{what}"
        );
    }
    assert_eq!(
        protect(&mut m, root, ZX_VM_PERM_WRITE, a, PAGE),
        E_ARGS,
        "W without R"
    );
    assert_eq!(
        protect(&mut m, root, ZX_VM_PERM_READ | ZX_VM_SPECIFIC, a, PAGE),
        E_ARGS
    );
    assert_eq!(
        protect(&mut m, root, ZX_VM_PERM_READ, a + 1, PAGE),
        E_ARGS,
        "unaligned"
    );
    assert_eq!(
        protect(&mut m, root, ZX_VM_PERM_READ, a, 0),
        E_ARGS,
        "len 0"
    );
    assert_eq!(
        protect(&mut m, root, ZX_VM_PERM_READ, a, usize::MAX),
        E_ARGS,
        "len rounds up past the end of the address space"
    );
    assert_eq!(
        protect(&mut m, root, ZX_VM_PERM_READ, a, 8 * PAGE),
        Err(Status::ERR_NOT_FOUND),
        "a hole"
    );
    assert_eq!(
        protect(&mut m, root, RW | ZX_VM_PERM_EXECUTE, a, PAGE),
        Err(Status::ERR_ACCESS_DENIED),
        "beyond the mapping's ceiling"
    );
    let ro = m.dup(root, ZX_RIGHT_READ);
    assert_eq!(
        protect(&mut m, ro, RW, a, PAGE),
        Err(Status::ERR_ACCESS_DENIED),
        "rights reduced by duplicate"
    );
    assert_eq!(protect(&mut m, ro, ZX_VM_PERM_READ, a, PAGE), Ok(()));
    let (gone, ga) = m.allocate(root, 0, 0, PAGE).unwrap();
    m.sys(ZX_SYS_VMAR_DESTROY, &[gone as u64]).unwrap();
    assert_eq!(
        protect(&mut m, gone, 0, ga, PAGE),
        Err(Status::ERR_BAD_STATE)
    );
}

#[test]
fn destroy() {
    let mut m = Mock::new();
    let vmo = m.vmo(PAGE as u64, 0);
    let root = m.root;
    let (child, _) = m
        .allocate(root, ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE, 0, 4 * PAGE)
        .unwrap();
    m.map(child, RW, 0, vmo, 0, PAGE).unwrap();
    let destroy = |m: &mut Mock, h: u32| m.sys(ZX_SYS_VMAR_DESTROY, &[h as u64]);
    for (h, status, what) in bad_handles(&mut m) {
        assert_eq!(destroy(&mut m, h), Err(status), "{what}");
    }
    let weak = m.dup(child, ZX_RIGHT_READ);
    assert_eq!(
        destroy(&mut m, weak),
        Err(Status::ERR_ACCESS_DENIED),
        "no OP_CHILDREN"
    );
    assert_eq!(
        destroy(&mut m, root),
        Err(Status::ERR_NOT_SUPPORTED),
        "root"
    );
    assert_eq!(destroy(&mut m, child), Ok(()));
    assert!(mappings(&m).is_empty());
    assert_eq!(destroy(&mut m, child), Err(Status::ERR_BAD_STATE), "twice");
    assert!(m.is_valid(child), "the handle stays valid");
}

#[test]
fn op_range() {
    let mut m = Mock::new();
    let vmo = m.vmo(4 * PAGE as u64, 0);
    let root = m.root;
    let a = m.map(root, RW, 0, vmo, 0, 4 * PAGE).unwrap();
    let op = |m: &mut Mock, h: u32, op: u32, addr: usize, len: usize, buf: usize, size: usize| {
        m.sys(
            ZX_SYS_VMAR_OP_RANGE,
            &[
                h as u64,
                op as u64,
                addr as u64,
                len as u64,
                buf as u64,
                size as u64,
            ],
        )
    };
    let free = m.phys.free_frames();
    assert_eq!(
        op(&mut m, root, ZX_VMAR_OP_COMMIT, a, 2 * PAGE, 0, 0),
        Ok(())
    );
    assert_eq!(m.phys.free_frames(), free - 2);
    assert_eq!(
        op(&mut m, root, ZX_VMAR_OP_DECOMMIT, a, 2 * PAGE, 0, 0),
        Ok(())
    );
    assert_eq!(m.phys.free_frames(), free);
    for (h, status, what) in bad_handles(&mut m) {
        assert_eq!(
            op(&mut m, h, ZX_VMAR_OP_COMMIT, a, PAGE, 0, 0),
            Err(status),
            "{what}"
        );
    }
    assert_eq!(
        op(&mut m, root, ZX_VMAR_OP_COMMIT, a, PAGE, BUF, 0),
        E_ARGS,
        "a buffer"
    );
    assert_eq!(
        op(&mut m, root, ZX_VMAR_OP_COMMIT, a, PAGE, 0, 8),
        E_ARGS,
        "a buffer size"
    );
    assert_eq!(op(&mut m, root, 99, a, PAGE, 0, 0), E_ARGS, "unknown op");
    let ro = m.dup(root, ZX_RIGHT_READ);
    assert_eq!(
        op(&mut m, ro, ZX_VMAR_OP_COMMIT, a, PAGE, 0, 0),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert_eq!(
        op(
            &mut m,
            root,
            ZX_VMAR_OP_COMMIT,
            a,
            usize::MAX & !0xfff,
            0,
            0
        ),
        Err(Status::ERR_OUT_OF_RANGE),
        "overflow"
    );
}
