//! Teardown is exact: after a leaky workload, closing every handle (or the process dying) brings
//! the live-handle count and the free frames back to their baseline.

mod common;

use abi::ops::ZX_VMAR_OP_COMMIT;
use common::*;
use syscalls::handle::live_handle_count;
use vm::PhysMem;

const PAGE: usize = 4096;

/// VMOs written and mapped, committed through the VMAR, sub-VMARs, duplicates, a started child
/// with a transferred handle and a mapping of a shared VMO. Returns the child's process handle.
fn leaky_workload(m: &mut Mock) -> u32 {
    let root = m.root;
    let vmo = m.vmo(8 * PAGE as u64, 0);
    m.poke(BUF, &[9; 3 * PAGE]);
    m.sys(
        ZX_SYS_VMO_WRITE,
        &[vmo as u64, BUF as u64, 0, 3 * PAGE as u64],
    )
    .unwrap();
    let (sub, _) = m
        .allocate(root, ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE, 0, 32 * PAGE)
        .unwrap();
    let a = m
        .map(sub, ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, vmo, 0, 8 * PAGE)
        .unwrap();
    m.sys(
        ZX_SYS_VMAR_OP_RANGE,
        &[
            sub as u64,
            ZX_VMAR_OP_COMMIT as u64,
            a as u64,
            8 * PAGE as u64,
            0,
            0,
        ],
    )
    .unwrap();
    let (_nested, _) = m.allocate(sub, ZX_VM_CAN_MAP_READ, 0, 4 * PAGE).unwrap();
    for _ in 0..5 {
        m.dup(vmo, ZX_RIGHT_SAME_RIGHTS);
    }
    let other = m.vmo(4 * PAGE as u64, abi::vmo_options::ZX_VMO_RESIZABLE);
    m.sys(
        ZX_SYS_VMO_OP_RANGE,
        &[
            other as u64,
            abi::ops::ZX_VMO_OP_COMMIT as u64,
            0,
            4 * PAGE as u64,
            0,
            0,
        ],
    )
    .unwrap();
    // A child: its own mapping of the shared VMO, a thread, started with a handle.
    m.poke(BUF, b"leaky-child");
    m.sys(
        ZX_SYS_PROCESS_CREATE,
        &[
            0,
            BUF as u64,
            11,
            0,
            (BUF + 0x100) as u64,
            (BUF + 0x104) as u64,
        ],
    )
    .unwrap();
    let p = m.peek::<u32>(BUF + 0x100);
    let child_root = m.peek::<u32>(BUF + 0x104);
    m.map(child_root, ZX_VM_PERM_READ, 0, vmo, 0, 4 * PAGE)
        .unwrap();
    m.sys(
        ZX_SYS_THREAD_CREATE,
        &[p as u64, BUF as u64, 1, 0, (BUF + 0x108) as u64],
    )
    .unwrap();
    let t = m.peek::<u32>(BUF + 0x108);
    let arg = m.dup(other, ZX_RIGHT_SAME_RIGHTS);
    m.sys(
        ZX_SYS_PROCESS_START,
        &[p as u64, t as u64, 0x1000, 0x2000, arg as u64, 0],
    )
    .unwrap();
    p
}

#[test]
fn closing_every_handle_returns_to_baseline() {
    let _g = serial();
    let baseline = live_handle_count();
    let mut m = Mock::new();
    let free = m.phys.free_frames();
    let p = leaky_workload(&mut m);
    assert!(m.phys.free_frames() < free);
    assert!(live_handle_count() > baseline + 10);
    // The child exits (its kernel teardown closes its handles and drops its address space).
    m.children[0].die(0);
    // The parent closes everything it holds, one zx_handle_close at a time.
    let values: Vec<u32> = m
        .process
        .table
        .lock()
        .unwrap()
        .iter()
        .map(|(v, _)| v)
        .collect();
    assert!(values.contains(&p));
    for v in values {
        m.close(v).unwrap();
    }
    assert_eq!(m.handle_count(), 0);
    // The parent's own address space still holds its mappings; its teardown drops them.
    m.process.die(0);
    assert_eq!(m.phys.free_frames(), free, "every frame back");
    assert_eq!(m.phys.used_frames(), 0);
    drop(m);
    assert_eq!(live_handle_count(), baseline, "every handle gone");
}

#[test]
fn process_exit_returns_to_baseline() {
    let _g = serial();
    let baseline = live_handle_count();
    let mut m = Mock::new();
    let free = m.phys.free_frames();
    let p = leaky_workload(&mut m);
    m.sys(ZX_SYS_TASK_KILL, &[p as u64]).unwrap();
    assert_eq!(
        syscalls::dispatch(
            &mut m,
            ZX_SYS_PROCESS_EXIT as u64,
            &[3, 0, 0, 0, 0, 0, 0, 0]
        ),
        syscalls::NO_RETURN
    );
    assert_eq!(m.phys.free_frames(), free);
    drop(m);
    assert_eq!(live_handle_count(), baseline);
}
