//! zx_vmo_create_child through dispatch: the order of the statuses, the child's rights,
//! ZX_INFO_VMO (parent koid, child count, COW flag), isolation and sharing through
//! zx_vmo_read / zx_vmo_write, and the frames back at the baseline once every handle is closed.

mod common;

use abi::default_rights::ZX_DEFAULT_VMO_RIGHTS;
use abi::info::topic::ZX_INFO_VMO;
use abi::info::vmo_flags::ZX_INFO_VMO_IS_COW_CLONE;
use abi::info::InfoVmo;
use abi::vmo_options::*;
use abi::wire::Wire;
use abi::Status;
use common::*;
use syscalls::object::Object;
use vm::PhysMem;

const PAGE: u64 = 4096;
const SNAP: u32 = ZX_VMO_CHILD_SNAPSHOT;
const OUT: usize = BUF + 0x40;

fn child(m: &mut Mock, h: u32, options: u32, offset: u64, size: u64) -> Result<u32, Status> {
    m.sys(
        ZX_SYS_VMO_CREATE_CHILD,
        &[h as u64, options as u64, offset, size, OUT as u64],
    )?;
    Ok(m.peek::<u32>(OUT))
}

fn write(m: &mut Mock, h: u32, offset: u64, byte: u8) {
    m.poke(BUF + 0x800, &[byte]);
    m.sys(
        ZX_SYS_VMO_WRITE,
        &[h as u64, (BUF + 0x800) as u64, offset, 1],
    )
    .unwrap();
}

fn read(m: &mut Mock, h: u32, offset: u64) -> u8 {
    m.sys(
        ZX_SYS_VMO_READ,
        &[h as u64, (BUF + 0x900) as u64, offset, 1],
    )
    .unwrap();
    m.peek::<u8>(BUF + 0x900)
}

fn vmo_info(m: &mut Mock, h: u32) -> InfoVmo {
    m.sys(
        ZX_SYS_OBJECT_GET_INFO,
        &[
            h as u64,
            ZX_INFO_VMO as u64,
            (BUF + 0x1000) as u64,
            InfoVmo::SIZE as u64,
            0,
            0,
        ],
    )
    .unwrap();
    m.peek(BUF + 0x1000)
}

#[test]
fn statuses_come_in_zircons_order() {
    let mut m = Mock::new();
    let h = m.vmo(2 * PAGE, 0);
    let oor = Err(Status::ERR_OUT_OF_RANGE);
    let inval = Err(Status::ERR_INVALID_ARGS);
    // The size first, before the handle is even looked up.
    assert_eq!(child(&mut m, 0, SNAP, 0, u64::MAX), oor);
    assert_eq!(
        child(&mut m, 0, SNAP, 0, u64::MAX - PAGE + 1),
        oor,
        "above MAX_SIZE"
    );
    // NO_WRITE with RESIZABLE, still before the handle.
    let nw_rs = SNAP | ZX_VMO_CHILD_NO_WRITE | ZX_VMO_CHILD_RESIZABLE;
    assert_eq!(child(&mut m, 0, nw_rs, 0, PAGE), inval);
    // The handle.
    let closed = m.closed_handle();
    assert_eq!(child(&mut m, 0, SNAP, 0, PAGE), Err(Status::ERR_BAD_HANDLE));
    assert_eq!(
        child(&mut m, closed, SNAP, 0, PAGE),
        Err(Status::ERR_BAD_HANDLE)
    );
    let root = m.root;
    assert_eq!(
        child(&mut m, root, SNAP, 0, PAGE),
        Err(Status::ERR_WRONG_TYPE)
    );
    let no_dup = m.dup(h, ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_DUPLICATE);
    let no_read = m.dup(h, ZX_DEFAULT_VMO_RIGHTS & !ZX_RIGHT_READ);
    let denied = Err(Status::ERR_ACCESS_DENIED);
    assert_eq!(child(&mut m, no_dup, SNAP, 0, PAGE), denied);
    assert_eq!(child(&mut m, no_read, SNAP, 0, PAGE), denied);
    // Then the object's own checks (vm::Vmo::create_child has the full list).
    assert_eq!(child(&mut m, h, 0, 0, PAGE), inval, "no type");
    assert_eq!(child(&mut m, h, SNAP, 1, PAGE), inval, "unaligned offset");
    assert_eq!(child(&mut m, h, ZX_VMO_CHILD_SLICE, PAGE, 2 * PAGE), inval);
    let r = m.vmo(PAGE, ZX_VMO_RESIZABLE);
    let ns = Err(Status::ERR_NOT_SUPPORTED);
    assert_eq!(child(&mut m, r, ZX_VMO_CHILD_SLICE, 0, PAGE), ns);
    let d = m.vmo(PAGE, ZX_VMO_DISCARDABLE);
    assert_eq!(child(&mut m, d, SNAP, 0, PAGE), ns);
    // A bad out pointer: no handle, no child left behind.
    let n = m.handle_count();
    for (addr, what) in BAD_OUT {
        let r = m.sys(
            ZX_SYS_VMO_CREATE_CHILD,
            &[h as u64, SNAP as u64, 0, PAGE, addr as u64],
        );
        assert_eq!(r, Err(Status::ERR_INVALID_ARGS), "{what}");
        assert_eq!(m.handle_count(), n, "{what}: no handle left");
    }
    assert_eq!(vmo_info(&mut m, h).num_children, 0);
}

#[test]
fn the_childs_rights() {
    let mut m = Mock::new();
    let h = m.vmo(PAGE, 0);
    let base = ZX_DEFAULT_VMO_RIGHTS;
    let s = child(&mut m, h, SNAP, 0, PAGE).unwrap();
    assert_eq!(m.rights(s), base, "a snapshot: the parent's rights");
    let s = child(&mut m, h, SNAP | ZX_VMO_CHILD_RESIZABLE, 0, PAGE).unwrap();
    assert_eq!(m.rights(s), base | ZX_RIGHT_RESIZE);
    let s = child(&mut m, h, SNAP | ZX_VMO_CHILD_NO_WRITE, 0, PAGE).unwrap();
    assert_eq!(m.rights(s), base & !ZX_RIGHT_WRITE);
    // A read-only, executable parent handle: a snapshot trades EXECUTE for WRITE, a slice
    // keeps the handle's rights (plus the property rights).
    let rx = ZX_RIGHT_DUPLICATE | ZX_RIGHT_READ | ZX_RIGHT_EXECUTE | ZX_RIGHT_MAP;
    let phys: std::sync::Arc<dyn PhysMem> = m.phys.clone();
    let weak = m.add(Object::Vmo(vm::Vmo::create(phys, PAGE, 0).unwrap()), rx);
    let s = child(&mut m, weak, SNAP, 0, PAGE).unwrap();
    let props = ZX_RIGHT_GET_PROPERTY | ZX_RIGHT_SET_PROPERTY;
    assert_eq!(
        m.rights(s),
        (rx & !ZX_RIGHT_EXECUTE) | ZX_RIGHT_WRITE | props
    );
    let s = child(&mut m, weak, ZX_VMO_CHILD_SLICE, 0, PAGE).unwrap();
    assert_eq!(m.rights(s), rx | props);
    let s = child(
        &mut m,
        weak,
        ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE,
        0,
        PAGE,
    )
    .unwrap();
    assert_eq!(
        m.rights(s),
        (rx & !ZX_RIGHT_EXECUTE) | ZX_RIGHT_WRITE | props
    );
    // RESIZE of a resizable parent's handle does not pass to a fixed child.
    let r = m.vmo(PAGE, ZX_VMO_RESIZABLE);
    let s = child(&mut m, r, SNAP, 0, PAGE).unwrap();
    assert_eq!(m.rights(s) & ZX_RIGHT_RESIZE, 0);
}

#[test]
fn info_isolation_sharing_and_frames_back_at_baseline() {
    let mut m = Mock::new();
    let baseline = m.phys.used_frames();
    let h = m.vmo(2 * PAGE, 0);
    write(&mut m, h, 0, 1);
    write(&mut m, h, PAGE, 2);
    let c = child(&mut m, h, SNAP, 0, 2 * PAGE).unwrap();
    let s = child(&mut m, h, ZX_VMO_CHILD_SLICE, PAGE, PAGE).unwrap();
    let (pi, ci, si) = (
        vmo_info(&mut m, h),
        vmo_info(&mut m, c),
        vmo_info(&mut m, s),
    );
    assert_eq!((pi.parent_koid, pi.num_children), (0, 2));
    assert_eq!((ci.parent_koid, si.parent_koid), (pi.koid, pi.koid));
    assert_ne!(ci.flags & ZX_INFO_VMO_IS_COW_CLONE, 0);
    assert_eq!(si.flags & ZX_INFO_VMO_IS_COW_CLONE, 0);
    assert_eq!(m.phys.used_frames(), baseline + 2, "nothing copied yet");
    write(&mut m, c, 0, 10);
    write(&mut m, h, PAGE, 20);
    assert_eq!(
        m.phys.used_frames(),
        baseline + 4,
        "one copy per written page"
    );
    assert_eq!((read(&mut m, h, 0), read(&mut m, c, 0)), (1, 10));
    assert_eq!((read(&mut m, h, PAGE), read(&mut m, c, PAGE)), (20, 2));
    assert_eq!(read(&mut m, s, 0), 20, "the slice sees its parent's page");
    write(&mut m, s, 0, 30);
    assert_eq!(read(&mut m, h, PAGE), 30);
    // A grandchild, then close the parent first: the children keep their contents.
    let g = child(&mut m, c, SNAP, 0, PAGE).unwrap();
    assert_eq!(vmo_info(&mut m, c).num_children, 1);
    m.close(h).unwrap();
    assert_eq!((read(&mut m, c, 0), read(&mut m, g, 0)), (10, 10));
    assert_eq!(read(&mut m, s, 0), 30, "a slice keeps its root alive");
    m.close(s).unwrap();
    m.close(c).unwrap();
    assert_eq!(read(&mut m, g, 0), 10);
    assert_eq!(
        m.phys.used_frames(),
        baseline + 1,
        "only the grandchild's page"
    );
    m.close(g).unwrap();
    assert_eq!(m.phys.used_frames(), baseline, "every frame back");
}
