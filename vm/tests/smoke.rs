//! End-to-end smoke test: allocate, map, fault, protect, unmap, destroy.
mod common;
use common::*;

#[test]
fn smoke() {
    let f = Fixture::new();
    let (sub, base) = f.sub(64);
    let vmo = f.vmo(8);
    let addr = f.map_at(&sub, 4 * PAGE, &vmo, 8);
    assert_eq!(addr, base + 4 * PAGE);
    f.touch(addr + 5, vm::MmuFlags::WRITE).unwrap();
    assert_eq!(f.mmu.query(addr).unwrap().1, RWU);
    f.check();
    sub.protect(
        abi::vm_options::ZX_VM_PERM_READ,
        addr + PAGE,
        PAGE,
        VMAR_RIGHTS,
    )
    .unwrap();
    assert_eq!(f.mappings().len(), 3);
    f.check();
    sub.protect(RW, addr + PAGE, PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(f.mappings().len(), 1);
    f.check();
    sub.unmap(addr + 2 * PAGE, PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(f.mappings().len(), 2);
    f.check();
    sub.destroy(VMAR_RIGHTS).unwrap();
    assert_eq!(f.mmu.mapped_pages(), 0);
    assert_eq!(vmo.mapping_count(), 0);
    f.check();
    let mut s = String::new();
    f.aspace.dump(&mut s).unwrap();
    assert!(s.contains("vmar"));
}
