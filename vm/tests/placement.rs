//! Placement without SPECIFIC: random and uniform over the whole free range, aligned as asked,
//! dense in COMPACT regions, reproducible from a seed, never at address 0.
mod common;
use abi::vm_options::*;
use common::*;
use vm::AspaceConfig;

fn bases(seed: u64, n: usize) -> Vec<usize> {
    let f = Fixture::with(AspaceConfig::user(ASPACE_BASE, ASPACE_LEN), 16, seed);
    (0..n)
        .map(|_| {
            f.root
                .allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS)
                .unwrap()
                .1
        })
        .collect()
}

#[test]
fn random_placement_spreads_over_the_whole_free_range() {
    let b = bases(3, 400);
    let lo = ASPACE_BASE;
    // Count per eighth of the space: uniform means roughly 50 each.
    let mut buckets = [0usize; 8];
    for &x in &b {
        buckets[(x - lo) / (ASPACE_LEN / 8)] += 1;
    }
    assert!(
        buckets.iter().all(|&c| (20..=90).contains(&c)),
        "{buckets:?}"
    );
    let mut sorted = b.clone();
    sorted.sort();
    let adjacent = sorted.windows(2).filter(|w| w[1] - w[0] == PAGE).count();
    assert!(adjacent < 5, "not first-fit: {adjacent} adjacent pairs");
}

#[test]
fn a_fixed_seed_reproduces_the_same_bases() {
    assert_eq!(bases(11, 50), bases(11, 50));
    assert_ne!(bases(11, 50), bases(12, 50));
}

#[test]
fn random_placement_respects_alignment() {
    let f = Fixture::new();
    for _ in 0..50 {
        let (_, b) = f
            .root
            .allocate(ALL_CAN_MAP | ZX_VM_ALIGN_1MB, 0, 3 * PAGE, VMAR_RIGHTS)
            .unwrap();
        assert_eq!(b % (1 << 20), 0);
    }
    f.check();
}

#[test]
fn placement_never_returns_zero_and_stays_inside() {
    let f = Fixture::with(AspaceConfig::user(PAGE, 64 * PAGE), 16, 5);
    for _ in 0..64 {
        let (_, b) = f.root.allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS).unwrap();
        assert!(
            (PAGE..65 * PAGE).contains(&b),
            "placed at {b:#x}, outside [{PAGE:#x}, {:#x})",
            65 * PAGE
        );
    }
    // A space starting at 0 is refused outright (0 is never a mapping address).
    let zero_based = vm::AddressSpace::new(
        AspaceConfig::user(0, 64 * PAGE),
        vm::soft_mmu::SoftMmu::boxed().0,
        Box::new(vm::SplitMix64::new(1)),
    );
    assert_eq!(
        zero_based.err(),
        Some(abi::Status::ERR_INVALID_ARGS),
        "an address space starting at 0"
    );
}

#[test]
fn a_nearly_full_region_still_finds_the_last_spot() {
    // Rejection sampling fails almost always here; the first-fit fallback finds the hole.
    let f = Fixture::new();
    let (sub, b) = f.sub(1024);
    let vmo = f.vmo(1);
    for p in (0..1024).filter(|&p| p != 777) {
        sub.allocate(ALL_CAN_MAP | ZX_VM_SPECIFIC, p * PAGE, PAGE, VMAR_RIGHTS)
            .unwrap();
    }
    let a = sub
        .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
        .unwrap();
    assert_eq!(a, b + 777 * PAGE);
}

#[test]
fn compact_region_packs_mappings_densely() {
    let f = Fixture::new();
    let (c, b) = f
        .root
        .allocate(ALL_CAN_MAP | ZX_VM_COMPACT, 0, 256 * PAGE, VMAR_RIGHTS)
        .unwrap();
    let vmo = f.vmo(4);
    let mut got = Vec::new();
    for i in 0..20 {
        let len = (1 + i % 3) * PAGE;
        got.push((
            c.map(RW, 0, &vmo, 0, len, VMAR_RIGHTS, VMO_RIGHTS).unwrap(),
            len,
        ));
    }
    let mut end = b;
    for (a, len) in got {
        assert_eq!(a, end, "each mapping starts where the previous one ended");
        end += len;
    }
    f.check();
}

#[test]
fn aslr_disabled_places_lowest_first() {
    let mut config = AspaceConfig::user(ASPACE_BASE, ASPACE_LEN);
    config.aslr = false;
    let f = Fixture::with(config, 16, 1);
    let b: Vec<usize> = (0..3)
        .map(|_| {
            f.root
                .allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS)
                .unwrap()
                .1
        })
        .collect();
    assert_eq!(
        b,
        vec![ASPACE_BASE, ASPACE_BASE + PAGE, ASPACE_BASE + 2 * PAGE]
    );
}

#[test]
fn entropy_bits_cap_the_candidate_window() {
    let mut config = AspaceConfig::user(ASPACE_BASE, ASPACE_LEN);
    config.entropy_bits = 4;
    let f = Fixture::with(config, 16, 9);
    for _ in 0..16 {
        let (_, b) = f.root.allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS).unwrap();
        assert!(b < ASPACE_BASE + 16 * PAGE, "{b:#x}");
    }
    // Window full: the allocator falls back to the lowest free spot beyond it.
    let (_, b) = f.root.allocate(ALL_CAN_MAP, 0, PAGE, VMAR_RIGHTS).unwrap();
    assert_eq!(b, ASPACE_BASE + 16 * PAGE);
}
