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

/// Mappings the model predicts: maximal runs of pages owned by the same map call (an unmap in
/// the middle leaves two runs of one call; map and unmap never merge neighbours, only protect
/// does).
fn model_mappings(pages: &[Option<u32>], base: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut prev = None;
    for (i, &owner) in pages.iter().enumerate() {
        if owner.is_some() && owner == prev {
            out.last_mut().unwrap().1 += PAGE;
        } else if owner.is_some() {
            out.push((base + i * PAGE, PAGE));
        }
        prev = owner;
    }
    out
}

#[test]
fn counts_match_a_page_model_over_random_maps_and_unmaps() {
    let f = Fixture::new();
    let (sub, b) = f.sub(64);
    let vmo = f.vmo(64);
    f.map_at(&sub, 0, &vmo, 64);
    // Which map call owns each page; the model's own prediction of every result and count.
    let mut pages = [Some(0u32); 64];
    let mut next_id = 1;
    let mut x = 12345u64;
    let (mut maps_ok, mut maps_refused, mut splits) = (0, 0, 0);
    for _ in 0..200 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let page = (x >> 33) as usize % 64;
        let len = (1 + (x >> 20) as usize % 3).min(64 - page);
        let before = model_mappings(&pages, b).len();
        if x & 1 == 0 {
            assert_eq!(
                sub.unmap(b + page * PAGE, len * PAGE, VMAR_RIGHTS),
                Ok(()),
                "unmap page {page} +{len}"
            );
            pages[page..page + len].fill(None);
            splits += usize::from(model_mappings(&pages, b).len() > before);
        } else {
            let free = pages[page..page + len].iter().all(Option::is_none);
            let got = sub.map(
                RW | ZX_VM_SPECIFIC,
                page * PAGE,
                &vmo,
                0,
                len * PAGE,
                VMAR_RIGHTS,
                VMO_RIGHTS,
            );
            if free {
                assert_eq!(got, Ok(b + page * PAGE), "map page {page} +{len}");
                pages[page..page + len].fill(Some(next_id));
                next_id += 1;
                maps_ok += 1;
            } else {
                assert_eq!(
                    got,
                    Err(abi::Status::ERR_ALREADY_EXISTS),
                    "map page {page} +{len}"
                );
                maps_refused += 1;
            }
        }
        let want = model_mappings(&pages, b);
        let got: Vec<(usize, usize)> = f.mappings().iter().map(|&(a, l, _)| (a, l)).collect();
        assert_eq!(got, want, "mappings after page {page} +{len}");
        assert_eq!(f.aspace.mapping_count(), want.len(), "mapping count");
        assert_eq!(f.aspace.vmar_count(), 2, "vmar count");
    }
    // The sequence exercised every path.
    assert!(
        maps_ok > 10 && maps_refused > 10 && splits > 5,
        "{maps_ok} {maps_refused} {splits}"
    );
}

/// Issue 10, item 8: at its region quota an address space can still unmap everything and protect
/// back (merge); what adds regions (a map, a split, a cut in the middle) is NO_MEMORY with nothing
/// changed; `may_grow` false refuses additions only.
#[test]
fn the_region_limit_charges_only_what_an_operation_adds() {
    use abi::Status;
    let f = Fixture::new();
    let vmo = f.vmo(64);
    let base = f.map_at(&f.root, 0, &vmo, 64);
    let limit = 1 + 1 + 20; // root VMAR, the mapping, 20 more regions
    f.aspace.set_region_limit(limit, || true);
    // Every other page read-only: two regions per call until the limit refuses one.
    let mut refused = 0;
    for i in (1..63).step_by(2) {
        match f
            .root
            .protect(ZX_VM_PERM_READ, base + i * PAGE, PAGE, VMAR_RIGHTS)
        {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e, Status::ERR_NO_MEMORY);
                refused += 1;
            }
        }
        f.check();
        assert!(f.aspace.mapping_count() + f.aspace.vmar_count() <= limit);
    }
    assert!(refused > 0);
    assert_eq!(f.aspace.mapping_count() + f.aspace.vmar_count(), limit);
    let before = f.mappings();
    // Adding is refused, with nothing changed.
    assert_eq!(
        f.root.map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS),
        Err(Status::ERR_NO_MEMORY)
    );
    assert_eq!(
        f.root.unmap(base + 50 * PAGE, PAGE, VMAR_RIGHTS),
        Err(Status::ERR_NO_MEMORY)
    );
    assert_eq!(
        f.root
            .allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS)
            .map(|_| ()),
        Err(Status::ERR_NO_MEMORY)
    );
    assert_eq!(f.mappings(), before);
    // A protect that merges three pieces into one goes through at the limit, and frees two.
    f.root.protect(RW, base + PAGE, PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(f.aspace.mapping_count() + f.aspace.vmar_count(), limit - 2);
    // A protect that splits one and merges one: net 0, admitted at any count.
    f.root
        .protect(ZX_VM_PERM_READ, base + 2 * PAGE, PAGE, VMAR_RIGHTS)
        .unwrap();
    f.check();
    // Low memory: nothing may be added, everything may be removed.
    f.aspace.set_region_limit(usize::MAX, || false);
    assert_eq!(
        f.root.map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS),
        Err(Status::ERR_NO_MEMORY)
    );
    f.aspace.set_region_limit(limit, || true);
    // Room for exactly the two regions the merge freed.
    f.root
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    f.root
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(
        f.root.map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS),
        Err(Status::ERR_NO_MEMORY)
    );
    f.aspace.set_region_limit(limit, || false);
    f.root.unmap(ASPACE_BASE, ASPACE_LEN, VMAR_RIGHTS).unwrap();
    f.check();
    assert_eq!(f.aspace.mapping_count(), 0);
}
