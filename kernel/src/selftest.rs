//! `mode=crash what=...`: deliberate crashes that show the fatal reporting paths (used by the host
//! tests in `tests/tests/qemu/crash_reports.rs`).

use alloc::boxed::Box;
use ramdisk::Cmdline;

/// Recurses with a big frame until the stack hits the guard page.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut buf = [0u8; 1024];
    buf[0] = depth as u8;
    let buf = core::hint::black_box(buf);
    if core::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + buf[0] as u64
}

/// Makes a user address space current with one committed page holding `ret` instructions,
/// mapped with `perms`; returns its address. Leaks everything: the run ends right after.
fn map_user_page(perms: u32) -> u64 {
    let user =
        crate::mm::new_user_aspace(Box::new(vm::SplitMix64::new(1))).expect("user address space");
    let aspace = user.aspace.clone();
    let vmo = vm::Vmo::create(arch::paging::phys_mem(), 4096, 0).expect("vmo");
    vmo.write(0, &[0xC3; 4096]).expect("vmo write");
    let addr = aspace
        .root_vmar()
        .map(
            perms | abi::vm_options::ZX_VM_MAP_RANGE,
            0,
            &vmo,
            0,
            4096,
            vm::ALL_RIGHTS,
            vm::ALL_RIGHTS,
        )
        .expect("map");
    core::mem::forget(crate::mm::switch_aspace(Some(user)));
    addr as u64
}

/// Performs the crash named by `what=`.
pub fn run(cmd: &Cmdline) -> ! {
    match cmd.get("what").unwrap_or("") {
        "stack_overflow" => {
            log::info!("selftest: overflowing the kernel stack");
            let r = recurse(0);
            panic!("recursion returned {r}");
        }
        "page_fault" => {
            log::info!("selftest: reading an unmapped kernel address");
            arch::crash::page_fault()
        }
        "invalid_opcode" => {
            log::info!("selftest: executing ud2");
            arch::crash::invalid_opcode()
        }
        "smap" => {
            let addr = map_user_page(abi::vm_options::ZX_VM_PERM_READ);
            log::info!("selftest: kernel reads user address {addr:#x} outside a fault-safe copy");
            arch::crash::read_user_directly(addr)
        }
        "smep" => {
            let addr = map_user_page(
                abi::vm_options::ZX_VM_PERM_READ | abi::vm_options::ZX_VM_PERM_EXECUTE,
            );
            log::info!("selftest: kernel executes user address {addr:#x}");
            arch::crash::execute_user(addr)
        }
        "sched_reentry" => {
            log::info!("selftest: calling the scheduler from inside its lock");
            crate::task::sched::reenter_for_selftest();
            panic!("selftest: the scheduler re-entry was not caught")
        }
        "panic" => panic!("selftest: deliberate panic"),
        other => panic!("selftest: unknown what={other:?}"),
    }
}
