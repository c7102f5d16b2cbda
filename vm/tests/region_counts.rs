//! `AddressSpace::mapping_count` / `vmar_count` (the kernel's per-process quotas rely on them)
//! stay equal to what a walk sees through maps, splits, merges, destroys and random sequences.
mod common;
use abi::vm_options::*;
use common::*;

fn check_counts(f: &Fixture) {
    assert_eq!(
        f.aspace.mapping_count(),
        f.mappings().len(),
        "mapping count"
    );
    assert_eq!(f.aspace.vmar_count(), f.vmars().len(), "vmar count");
}

#[test]
fn counts_follow_map_split_merge_and_destroy() {
    let f = Fixture::new();
    check_counts(&f);
    assert_eq!(f.aspace.vmar_count(), 1);
    let (sub, b) = f.sub(16);
    let vmo = f.vmo(16);
    f.map_at(&sub, 0, &vmo, 16);
    check_counts(&f);
    // Cut the middle (+1), cut a head and a tail (no change), protect a piece (split + merge).
    sub.unmap(b + 4 * PAGE, PAGE, VMAR_RIGHTS).unwrap();
    check_counts(&f);
    assert_eq!(f.aspace.mapping_count(), 2);
    sub.unmap(b, PAGE, VMAR_RIGHTS).unwrap();
    sub.unmap(b + 15 * PAGE, PAGE, VMAR_RIGHTS).unwrap();
    check_counts(&f);
    sub.protect(ZX_VM_PERM_READ, b + 6 * PAGE, 2 * PAGE, VMAR_RIGHTS)
        .unwrap();
    check_counts(&f);
    sub.protect(
        ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
        b + 6 * PAGE,
        2 * PAGE,
        VMAR_RIGHTS,
    )
    .unwrap();
    check_counts(&f);
    let (inner, _) = sub.allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS).unwrap();
    check_counts(&f);
    assert_eq!(f.aspace.vmar_count(), 3);
    drop(inner);
    sub.destroy(VMAR_RIGHTS).unwrap();
    check_counts(&f);
    assert_eq!(f.aspace.mapping_count(), 0);
    assert_eq!(f.aspace.vmar_count(), 1);
}

#[test]
fn counts_match_the_walk_over_random_unmaps() {
    let f = Fixture::new();
    let (sub, b) = f.sub(64);
    let vmo = f.vmo(64);
    f.map_at(&sub, 0, &vmo, 64);
    let mut x = 12345u64;
    for _ in 0..200 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let page = (x >> 33) as usize % 64;
        let len = 1 + (x >> 20) as usize % 3;
        if x & 1 == 0 {
            let _ = sub.unmap(b + page * PAGE, len.min(64 - page) * PAGE, VMAR_RIGHTS);
        } else {
            let _ = sub.map(
                RW | ZX_VM_SPECIFIC,
                page * PAGE,
                &vmo,
                0,
                len.min(64 - page) * PAGE,
                VMAR_RIGHTS,
                VMO_RIGHTS,
            );
        }
        check_counts(&f);
    }
}
