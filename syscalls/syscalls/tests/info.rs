//! zx_object_get_info through dispatch.

mod common;

use abi::info::maps_type::*;
use abi::info::topic::*;
use abi::info::{InfoHandleBasic, InfoMaps, InfoProcess, InfoVmar, InfoVmo};
use abi::obj_type::{ZX_OBJ_TYPE_VMAR, ZX_OBJ_TYPE_VMO};
use abi::wire::Wire;
use abi::Status;
use common::*;

const PAGE: usize = 4096;
const ACTUAL: usize = BUF + 0xf000;
const AVAIL: usize = BUF + 0xf008;

fn info(m: &mut Mock, h: u32, topic: u32, buf: usize, size: usize) -> Result<(), Status> {
    m.poke(ACTUAL, &[0xff; 16]);
    m.sys(
        ZX_SYS_OBJECT_GET_INFO,
        &[
            h as u64,
            topic as u64,
            buf as u64,
            size as u64,
            ACTUAL as u64,
            AVAIL as u64,
        ],
    )
}

fn counts(m: &Mock) -> (usize, usize) {
    (m.peek(ACTUAL), m.peek(AVAIL))
}

#[test]
fn handle_valid_and_unknown_topic() {
    let mut m = Mock::new();
    let root = m.root;
    assert_eq!(info(&mut m, root, ZX_INFO_HANDLE_VALID, 0, 0), Ok(()));
    let stale = m.closed_handle();
    assert_eq!(
        info(&mut m, stale, ZX_INFO_HANDLE_VALID, 0, 0),
        Err(Status::ERR_BAD_HANDLE)
    );
    assert_eq!(
        info(&mut m, stale, 0x7fff, BUF, 64),
        Err(Status::ERR_NOT_SUPPORTED),
        "the topic is judged before the handle"
    );
}

#[test]
fn handle_basic_and_single_record_semantics() {
    let mut m = Mock::new();
    let vmo = m.vmo(PAGE as u64, 0);
    let ro = m.dup(vmo, ZX_RIGHT_READ);
    assert_eq!(info(&mut m, ro, ZX_INFO_HANDLE_BASIC, BUF, 32), Ok(()));
    let b: InfoHandleBasic = m.peek(BUF);
    assert_eq!(
        (b.rights, b.r#type, b.related_koid),
        (ZX_RIGHT_READ, ZX_OBJ_TYPE_VMO, 0)
    );
    assert_eq!(counts(&m), (1, 1));
    // Same koid through another handle, another koid for another object.
    info(&mut m, vmo, ZX_INFO_HANDLE_BASIC, BUF, 32).unwrap();
    assert_eq!(m.peek::<InfoHandleBasic>(BUF).koid, b.koid);
    let root = m.root;
    info(&mut m, root, ZX_INFO_HANDLE_BASIC, BUF, 32).unwrap();
    let r: InfoHandleBasic = m.peek(BUF);
    assert_eq!(r.r#type, ZX_OBJ_TYPE_VMAR);
    assert_ne!(r.koid, b.koid);
    // Too small (including 0): BUFFER_TOO_SMALL, actual 0, avail 1.
    for size in [0, 31] {
        assert_eq!(
            info(&mut m, vmo, ZX_INFO_HANDLE_BASIC, BUF, size),
            Err(Status::ERR_BUFFER_TOO_SMALL)
        );
        assert_eq!(counts(&m), (0, 1));
    }
    // Optional actual/avail.
    assert_eq!(
        m.sys(
            ZX_SYS_OBJECT_GET_INFO,
            &[
                vmo as u64,
                ZX_INFO_HANDLE_BASIC as u64,
                BUF as u64,
                32,
                0,
                0
            ]
        ),
        Ok(())
    );
    // Bad pointers: the record, actual, avail.
    for (addr, what) in BAD_OUT {
        assert_eq!(
            info(&mut m, vmo, ZX_INFO_HANDLE_BASIC, addr, 32),
            Err(Status::ERR_INVALID_ARGS),
            "record {what}"
        );
        if addr == 0 {
            continue; // null actual / avail are allowed
        }
        for args in [[addr, AVAIL], [ACTUAL, addr]] {
            assert_eq!(
                m.sys(
                    ZX_SYS_OBJECT_GET_INFO,
                    &[
                        vmo as u64,
                        ZX_INFO_HANDLE_BASIC as u64,
                        BUF as u64,
                        32,
                        args[0] as u64,
                        args[1] as u64
                    ]
                ),
                Err(Status::ERR_INVALID_ARGS),
                "actual/avail {what}"
            );
        }
    }
}

#[test]
fn vmar_vmo_process_records_and_rights() {
    let mut m = Mock::new();
    let root = m.root;
    assert_eq!(info(&mut m, root, ZX_INFO_VMAR, BUF, 16), Ok(()));
    assert_eq!(
        m.peek::<InfoVmar>(BUF),
        InfoVmar {
            base: ASPACE_BASE,
            len: ASPACE_LEN
        }
    );
    let no_inspect = m.dup(root, ZX_RIGHT_READ);
    assert_eq!(
        info(&mut m, no_inspect, ZX_INFO_VMAR, BUF, 16),
        Err(Status::ERR_ACCESS_DENIED)
    );
    let vmo = m.vmo(3 * PAGE as u64, abi::vmo_options::ZX_VMO_RESIZABLE);
    assert_eq!(
        info(&mut m, vmo, ZX_INFO_VMAR, BUF, 16),
        Err(Status::ERR_WRONG_TYPE)
    );
    m.poke(BUF, &[1; 8]);
    m.sys(ZX_SYS_VMO_WRITE, &[vmo as u64, BUF as u64, 0, 8])
        .unwrap();
    let weak = m.dup(vmo, ZX_RIGHT_READ);
    assert_eq!(
        info(&mut m, weak, ZX_INFO_VMO, BUF, InfoVmo::SIZE),
        Ok(()),
        "no right needed"
    );
    let v: InfoVmo = m.peek(BUF);
    assert_eq!(v.size_bytes, 3 * PAGE as u64);
    assert_eq!(v.committed_bytes, PAGE as u64);
    assert_eq!(v.handle_rights, ZX_RIGHT_READ);
    assert_ne!(v.flags & abi::info::vmo_flags::ZX_INFO_VMO_RESIZABLE, 0);
    info(&mut m, vmo, ZX_INFO_HANDLE_BASIC, BUF + 0x200, 32).unwrap();
    assert_eq!(m.peek::<InfoHandleBasic>(BUF + 0x200).koid, v.koid);
    // A process (the mock's child) through a handle from zx_process_create.
    m.poke(BUF + 0x300, b"kid");
    m.sys(
        ZX_SYS_PROCESS_CREATE,
        &[
            0,
            (BUF + 0x300) as u64,
            3,
            0,
            (BUF + 0x400) as u64,
            (BUF + 0x404) as u64,
        ],
    )
    .unwrap();
    let p = m.peek::<u32>(BUF + 0x400);
    assert_eq!(
        info(&mut m, p, ZX_INFO_PROCESS, BUF, InfoProcess::SIZE),
        Ok(())
    );
    assert_eq!(m.peek::<InfoProcess>(BUF).flags, 0, "not started");
    assert_eq!(
        info(&mut m, vmo, ZX_INFO_PROCESS, BUF, InfoProcess::SIZE),
        Err(Status::ERR_WRONG_TYPE)
    );
}

#[test]
fn maps_trees_counts_and_truncation() {
    let mut m = Mock::new();
    let root = m.root;
    let vmo = m.vmo(4 * PAGE as u64, 0);
    let (sub, sub_base) = m
        .allocate(root, ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE, 0, 16 * PAGE)
        .unwrap();
    let a = m
        .map(
            sub,
            ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
            0,
            vmo,
            PAGE as u64,
            2 * PAGE,
        )
        .unwrap();
    m.poke(BUF, &[7; 8]);
    m.sys(ZX_SYS_VMO_WRITE, &[vmo as u64, BUF as u64, PAGE as u64, 8])
        .unwrap();

    // VMAR_MAPS of the root: root (depth 0), sub (1), mapping (2).
    let cap = 8 * InfoMaps::SIZE;
    assert_eq!(info(&mut m, root, ZX_INFO_VMAR_MAPS, BUF, cap), Ok(()));
    assert_eq!(counts(&m), (3, 3));
    let e: Vec<InfoMaps> = (0..3).map(|i| m.peek(BUF + i * InfoMaps::SIZE)).collect();
    assert_eq!(
        e.iter().map(|x| (x.r#type, x.depth)).collect::<Vec<_>>(),
        vec![
            (ZX_INFO_MAPS_TYPE_VMAR, 0),
            (ZX_INFO_MAPS_TYPE_VMAR, 1),
            (ZX_INFO_MAPS_TYPE_MAPPING, 2)
        ]
    );
    assert_eq!(&e[0].name[..5], b"root\0");
    assert_eq!((e[1].base, e[1].size), (sub_base, 16 * PAGE));
    let map = e[2].mapping().unwrap();
    assert_eq!((e[2].base, e[2].size), (a, 2 * PAGE));
    assert_eq!(map.mmu_flags, ZX_VM_PERM_READ | ZX_VM_PERM_WRITE);
    assert_eq!(
        (
            map.vmo_offset,
            map.committed_bytes,
            map.committed_private_bytes
        ),
        (PAGE as u64, PAGE as u64, PAGE as u64)
    );
    assert_eq!(map.committed_scaled_bytes, PAGE as u64);
    let vmo_info_koid = {
        info(&mut m, vmo, ZX_INFO_HANDLE_BASIC, BUF + 0x800, 32).unwrap();
        m.peek::<InfoHandleBasic>(BUF + 0x800).koid
    };
    assert_eq!(
        map.vmo_koid, vmo_info_koid,
        "same VMO koid via handle and mapping"
    );

    // Truncated buffer: OK, actual < avail.
    assert_eq!(
        info(&mut m, root, ZX_INFO_VMAR_MAPS, BUF, InfoMaps::SIZE + 5),
        Ok(())
    );
    assert_eq!(counts(&m), (1, 3));
    assert_eq!(
        info(&mut m, root, ZX_INFO_VMAR_MAPS, 0, 0),
        Ok(()),
        "just ask how many"
    );
    assert_eq!(counts(&m), (0, 3));
    // Rooted at the sub-VMAR.
    assert_eq!(info(&mut m, sub, ZX_INFO_VMAR_MAPS, BUF, cap), Ok(()));
    assert_eq!(counts(&m), (2, 2));
    assert_eq!(&m.peek::<InfoMaps>(BUF).name[..10], b"useralloc\0");

    // PROCESS_MAPS of a child process: the aspace entry first.
    m.poke(BUF + 0x300, b"child");
    m.sys(
        ZX_SYS_PROCESS_CREATE,
        &[
            0,
            (BUF + 0x300) as u64,
            5,
            0,
            (BUF + 0x400) as u64,
            (BUF + 0x404) as u64,
        ],
    )
    .unwrap();
    let p = m.peek::<u32>(BUF + 0x400);
    let child_root = m.peek::<u32>(BUF + 0x404);
    m.map(child_root, ZX_VM_PERM_READ, 0, vmo, 0, PAGE).unwrap();
    assert_eq!(info(&mut m, p, ZX_INFO_PROCESS_MAPS, BUF, cap), Ok(()));
    assert_eq!(counts(&m), (3, 3));
    let e: Vec<InfoMaps> = (0..3).map(|i| m.peek(BUF + i * InfoMaps::SIZE)).collect();
    assert_eq!(
        e.iter().map(|x| (x.r#type, x.depth)).collect::<Vec<_>>(),
        vec![
            (ZX_INFO_MAPS_TYPE_ASPACE, 0),
            (ZX_INFO_MAPS_TYPE_VMAR, 1),
            (ZX_INFO_MAPS_TYPE_MAPPING, 2)
        ]
    );
    assert_eq!(&e[0].name[..6], b"child\0");

    // Errors: rights, types, destroyed, misaligned buffer.
    let weak = m.dup(root, ZX_RIGHT_READ);
    assert_eq!(
        info(&mut m, weak, ZX_INFO_VMAR_MAPS, BUF, cap),
        Err(Status::ERR_ACCESS_DENIED)
    );
    assert_eq!(
        info(&mut m, vmo, ZX_INFO_VMAR_MAPS, BUF, cap),
        Err(Status::ERR_WRONG_TYPE)
    );
    assert_eq!(
        info(&mut m, root, ZX_INFO_PROCESS_MAPS, BUF, cap),
        Err(Status::ERR_WRONG_TYPE)
    );
    m.sys(ZX_SYS_VMAR_DESTROY, &[sub as u64]).unwrap();
    assert_eq!(
        info(&mut m, sub, ZX_INFO_VMAR_MAPS, BUF, cap),
        Err(Status::ERR_BAD_STATE)
    );
    assert_eq!(
        info(&mut m, root, ZX_INFO_VMAR_MAPS, BUF + 4, cap),
        Err(Status::ERR_INVALID_ARGS)
    );
    assert_eq!(
        info(&mut m, root, ZX_INFO_VMAR_MAPS, KERNEL, cap),
        Err(Status::ERR_INVALID_ARGS)
    );
}

/// Writes one byte at `offset` of VMO `h`.
fn vmo_write(m: &mut Mock, h: u32, offset: u64) {
    m.poke(BUF + 0xe00, &[7]);
    m.sys(
        ZX_SYS_VMO_WRITE,
        &[h as u64, (BUF + 0xe00) as u64, offset, 1],
    )
    .unwrap();
}

#[test]
fn vmo_versions_are_prefixes_and_carry_the_scaled_bytes() {
    use abi::info::{InfoVmoV1, InfoVmoV2, InfoVmoV3};
    let mut m = Mock::new();
    let v = m.vmo(2 * PAGE as u64, 0);
    vmo_write(&mut m, v, 0);
    vmo_write(&mut m, v, PAGE as u64);
    m.sys(
        ZX_SYS_VMO_CREATE_CHILD,
        &[
            v as u64,
            abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT as u64,
            0,
            PAGE as u64,
            BUF as u64,
        ],
    )
    .unwrap();
    let c: u32 = m.peek(BUF);
    assert_eq!(info(&mut m, v, ZX_INFO_VMO, BUF, InfoVmo::SIZE), Ok(()));
    let full: InfoVmo = m.peek(BUF);
    // Page 0 is shared with the child (half each), page 1 is the parent's alone.
    assert_eq!(full.committed_bytes, 2 * PAGE as u64);
    assert_eq!(full.committed_private_bytes, PAGE as u64);
    assert_eq!(full.committed_scaled_bytes, PAGE as u64 + PAGE as u64 / 2);
    assert_eq!(full.committed_fractional_scaled_bytes, 0);
    assert_eq!(full.populated_scaled_bytes, full.committed_scaled_bytes);
    assert_eq!(info(&mut m, c, ZX_INFO_VMO, BUF, InfoVmo::SIZE), Ok(()));
    let child: InfoVmo = m.peek(BUF);
    assert_eq!(
        (
            child.committed_bytes,
            child.committed_private_bytes,
            child.committed_scaled_bytes
        ),
        (PAGE as u64, 0, PAGE as u64 / 2)
    );
    // The current record does not fit the older sizes.
    assert_eq!(
        info(&mut m, v, ZX_INFO_VMO, BUF, InfoVmoV3::SIZE),
        Err(Status::ERR_BUFFER_TOO_SMALL)
    );
    assert_eq!(counts(&m), (0, 1));
    // Each older version writes its prefix and nothing past it.
    for (topic, size) in [
        (ZX_INFO_VMO_V1, InfoVmoV1::SIZE),
        (ZX_INFO_VMO_V2, InfoVmoV2::SIZE),
        (ZX_INFO_VMO_V3, InfoVmoV3::SIZE),
    ] {
        m.poke(BUF, &[0xcc; 256]);
        assert_eq!(
            info(&mut m, v, topic, BUF, size - 1),
            Err(Status::ERR_BUFFER_TOO_SMALL)
        );
        assert_eq!(info(&mut m, v, topic, BUF, 256), Ok(()));
        assert_eq!(counts(&m), (1, 1));
        let mut expect = [0u8; 176];
        full.encode(&mut expect);
        assert_eq!(m.mem.peek(BUF, size), &expect[..size]);
        assert!(m
            .mem
            .peek(BUF + size, 256 - size)
            .iter()
            .all(|&b| b == 0xcc));
    }
}

#[test]
fn process_vmos_lists_handles_then_mappings() {
    use abi::info::vmo_flags::{ZX_INFO_VMO_VIA_HANDLE, ZX_INFO_VMO_VIA_MAPPING};
    use abi::info::InfoVmoV3;
    use syscalls::object::{Object, ProcessObject};
    let mut m = Mock::new();
    let me: std::sync::Arc<dyn ProcessObject> = m.process.clone();
    let me = Object::Process(me).into_default_handle();
    let me = m.process.table.lock().unwrap().add(me).unwrap();
    let a = m.vmo(PAGE as u64, 0);
    let b = m.vmo(2 * PAGE as u64, 0);
    vmo_write(&mut m, b, 0);
    let root = m.root;
    m.map(root, ZX_VM_PERM_READ, 0, b, 0, PAGE).unwrap();
    let cap = 8 * InfoVmo::SIZE;
    assert_eq!(info(&mut m, me, ZX_INFO_PROCESS_VMOS, BUF, cap), Ok(()));
    assert_eq!(counts(&m), (3, 3));
    let e: Vec<InfoVmo> = (0..3).map(|i| m.peek(BUF + i * InfoVmo::SIZE)).collect();
    assert_eq!(e[0].size_bytes, PAGE as u64);
    assert_eq!(e[1].size_bytes, 2 * PAGE as u64);
    assert_eq!(
        e[2].koid, e[1].koid,
        "the mapped VMO again, through its mapping"
    );
    assert_ne!(e[0].flags & ZX_INFO_VMO_VIA_HANDLE, 0);
    assert_ne!(e[0].handle_rights, 0);
    assert_ne!(e[2].flags & ZX_INFO_VMO_VIA_MAPPING, 0);
    assert_eq!(
        (e[2].flags & ZX_INFO_VMO_VIA_HANDLE, e[2].handle_rights),
        (0, 0)
    );
    assert_eq!(e[1].committed_scaled_bytes, PAGE as u64);
    // A buffer for one record: actual 1, avail 3; an older version uses its record size.
    assert_eq!(
        info(&mut m, me, ZX_INFO_PROCESS_VMOS, BUF, InfoVmo::SIZE),
        Ok(())
    );
    assert_eq!(counts(&m), (1, 3));
    assert_eq!(
        info(
            &mut m,
            me,
            ZX_INFO_PROCESS_VMOS_V3,
            BUF,
            3 * InfoVmoV3::SIZE
        ),
        Ok(())
    );
    assert_eq!(counts(&m), (3, 3));
    assert_eq!(
        m.peek::<InfoVmoV3>(BUF + 2 * InfoVmoV3::SIZE).0.koid,
        e[2].koid
    );
    // Errors: a handle that is not a process, a handle without INSPECT.
    assert_eq!(
        info(&mut m, a, ZX_INFO_PROCESS_VMOS, BUF, cap),
        Err(Status::ERR_WRONG_TYPE)
    );
    let weak = m.dup(me, 0);
    assert_eq!(
        info(&mut m, weak, ZX_INFO_PROCESS_VMOS, BUF, cap),
        Err(Status::ERR_ACCESS_DENIED)
    );
}

#[test]
fn process_maps_versions_and_the_mapped_ranges_attribution() {
    use abi::info::{InfoMapsV1, InfoMapsV2};
    let mut m = Mock::new();
    m.poke(BUF + 0x300, b"child");
    m.sys(
        ZX_SYS_PROCESS_CREATE,
        &[
            0,
            (BUF + 0x300) as u64,
            5,
            0,
            (BUF + 0x400) as u64,
            (BUF + 0x404) as u64,
        ],
    )
    .unwrap();
    let p = m.peek::<u32>(BUF + 0x400);
    let child_root = m.peek::<u32>(BUF + 0x404);
    let v = m.vmo(2 * PAGE as u64, 0);
    vmo_write(&mut m, v, 0);
    vmo_write(&mut m, v, PAGE as u64);
    // A snapshot of the first page: that page is shared, the second is the VMO's alone.
    m.sys(
        ZX_SYS_VMO_CREATE_CHILD,
        &[
            v as u64,
            abi::vmo_options::ZX_VMO_CHILD_SNAPSHOT as u64,
            0,
            PAGE as u64,
            BUF as u64,
        ],
    )
    .unwrap();
    m.map(child_root, ZX_VM_PERM_READ, 0, v, 0, 2 * PAGE)
        .unwrap();
    let cap = 8 * InfoMaps::SIZE;
    assert_eq!(info(&mut m, p, ZX_INFO_PROCESS_MAPS, BUF, cap), Ok(()));
    assert_eq!(counts(&m), (3, 3));
    let e = m.peek::<InfoMaps>(BUF + 2 * InfoMaps::SIZE);
    let map = e.mapping().unwrap();
    assert_eq!(
        (
            map.committed_bytes,
            map.committed_private_bytes,
            map.committed_scaled_bytes
        ),
        (2 * PAGE as u64, PAGE as u64, PAGE as u64 + PAGE as u64 / 2)
    );
    assert_eq!(map.populated_scaled_bytes, map.committed_scaled_bytes);
    // Version 2: page counts, 104-byte records; version 1: without populated_pages, 96 bytes.
    assert_eq!(
        info(
            &mut m,
            p,
            ZX_INFO_PROCESS_MAPS_V2,
            BUF,
            3 * InfoMapsV2::SIZE
        ),
        Ok(())
    );
    assert_eq!(counts(&m), (3, 3));
    let e2 = m.peek::<InfoMapsV2>(BUF + 2 * InfoMapsV2::SIZE);
    assert_eq!(
        (e2.base, e2.u.committed_pages, e2.u.populated_pages),
        (e.base, 2, 2)
    );
    assert_eq!(
        info(
            &mut m,
            p,
            ZX_INFO_PROCESS_MAPS_V1,
            BUF,
            3 * InfoMapsV1::SIZE
        ),
        Ok(())
    );
    assert_eq!(counts(&m), (3, 3));
    let e1 = m.peek::<InfoMapsV1>(BUF + 2 * InfoMapsV1::SIZE).0;
    assert_eq!((e1.base, e1.depth, e1.u.committed_pages), (e.base, 2, 2));
}
