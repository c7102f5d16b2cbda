//! Demo: builds a small address space on the software MMU and prints its layout.
//!
//! `cargo run -p vm --example layout`
use std::sync::Arc;

use abi::vm_options::*;
use vm::soft_mmu::{SoftMmu, SoftPhysMem};
use vm::{AddressSpace, AspaceConfig, MmuFlags, PhysMem, SplitMix64, Vmo, ALL_RIGHTS};

fn main() {
    let (mmu, probe) = SoftMmu::boxed();
    let config = AspaceConfig::user(0x20_0000, 1 << 30);
    let aspace = AddressSpace::new(config, mmu, Box::new(SplitMix64::new(42))).unwrap();
    let phys: Arc<dyn PhysMem> = SoftPhysMem::new(256);
    let root = aspace.root_vmar();
    let can = ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_SPECIFIC;
    let (heap, _) = root
        .allocate(can | ZX_VM_COMPACT, 0, 64 << 20, ALL_RIGHTS)
        .unwrap();
    let code = Vmo::create(phys.clone(), 16 << 12, 0).unwrap();
    let data = Vmo::create(phys, 8 << 12, 0).unwrap();
    let rw = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE;
    let text = root
        .map(
            ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE,
            0,
            &code,
            0,
            16 << 12,
            ALL_RIGHTS,
            ALL_RIGHTS,
        )
        .unwrap();
    for _ in 0..3 {
        heap.map(rw, 0, &data, 0, 8 << 12, ALL_RIGHTS, ALL_RIGHTS)
            .unwrap();
    }
    let a = heap
        .map(rw, 0, &data, 0, 8 << 12, ALL_RIGHTS, ALL_RIGHTS)
        .unwrap();
    heap.protect(ZX_VM_PERM_READ, a + (2 << 12), 2 << 12, ALL_RIGHTS)
        .unwrap();
    for p in 0..4 {
        aspace
            .fault(a + (p << 12), MmuFlags::READ | MmuFlags::USER)
            .unwrap();
    }
    aspace
        .fault(text, MmuFlags::EXECUTE | MmuFlags::USER)
        .unwrap();
    let mut out = String::new();
    aspace.dump(&mut out).unwrap();
    print!("{out}");
    println!(
        "{} pages mapped, {} TLB flushes",
        probe.mapped_pages(),
        probe.flush_calls()
    );
}
