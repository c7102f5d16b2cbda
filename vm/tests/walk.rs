//! Introspection walks in steps (`Vmar::walk_step`): the same entries as the whole walk, in the
//! same order, whatever the step size; and what a change between two steps does.
mod common;
use abi::Status;
use common::*;
use vm::{RegionInfo, Vmar, WalkCursor};

/// The walk of `vmar` in steps of `max`, the counts left 0 (as `walk_step` gives them).
fn stepped(vmar: &Vmar, max: usize) -> Vec<RegionInfo> {
    let mut cursor = WalkCursor::new();
    let mut all = Vec::new();
    let mut steps = 0;
    while !cursor.is_done() {
        let step = vmar.walk_step(&mut cursor, max).unwrap();
        assert!(
            step.len() <= max,
            "a step of {} entries, max {max}",
            step.len()
        );
        all.extend(step.into_iter().map(|(info, _)| info));
        steps += 1;
        assert!(steps <= all.len() + 1, "a walk that makes no progress");
    }
    all
}

fn uncounted(walk: Vec<RegionInfo>) -> Vec<RegionInfo> {
    walk.into_iter()
        .map(|mut info| {
            if let RegionInfo::Mapping {
                committed_page_count,
                ..
            } = &mut info
            {
                *committed_page_count = 0;
            }
            info
        })
        .collect()
}

/// A root with mappings around two sub-VMARs, one nested three deep, one empty.
fn layout(f: &Fixture) -> (Vmar, Vmar) {
    let vmo = f.vmo(4);
    for _ in 0..3 {
        f.root
            .map(RW, 0, &vmo, 0, PAGE, VMAR_RIGHTS, VMO_RIGHTS)
            .unwrap();
    }
    let (a, _) = f.sub(64);
    f.map_at(&a, 0, &vmo, 1);
    f.map_at(&a, 8 * PAGE, &vmo, 2);
    let (b, _) = a
        .allocate(
            ALL_CAN_MAP | abi::vm_options::ZX_VM_CAN_MAP_SPECIFIC,
            0,
            16 * PAGE,
            VMAR_RIGHTS,
        )
        .unwrap();
    f.map_at(&b, 0, &vmo, 1);
    let (c, _) = b
        .allocate(
            ALL_CAN_MAP | abi::vm_options::ZX_VM_CAN_MAP_SPECIFIC,
            0,
            4 * PAGE,
            VMAR_RIGHTS,
        )
        .unwrap();
    f.map_at(&c, PAGE, &vmo, 1);
    let (_empty, _) = f.sub(4);
    (a, b)
}

#[test]
fn walk_in_steps_lists_what_the_whole_walk_lists_at_every_step_size() {
    let f = Fixture::new();
    let (a, _) = layout(&f);
    for vmar in [&f.root, &a] {
        let whole = uncounted(vmar.walk().unwrap());
        assert!(whole.len() >= 5, "{whole:?}");
        for max in [1, 2, 3, 5, 7, whole.len(), whole.len() + 1, usize::MAX] {
            assert_eq!(stepped(vmar, max), whole, "steps of {max}");
        }
    }
}

#[test]
fn walk_in_steps_gives_the_vmo_of_each_mapping() {
    let f = Fixture::new();
    layout(&f);
    let mut cursor = WalkCursor::new();
    let step = f.root.walk_step(&mut cursor, usize::MAX).unwrap();
    assert!(cursor.is_done());
    for (info, vmo) in step {
        match info {
            RegionInfo::Mapping { vmo_id, .. } => assert_eq!(vmo.map(|v| v.id()), Some(vmo_id)),
            RegionInfo::Vmar { .. } => assert!(vmo.is_none()),
        }
    }
}

#[test]
fn walk_in_steps_of_a_destroyed_vmar_is_bad_state_and_skips_what_goes_between_steps() {
    let f = Fixture::new();
    let (a, b) = layout(&f);
    let whole = uncounted(f.root.walk().unwrap());
    // Stop right after `a`'s entry, destroy `b` (inside `a`), go on: `b` and everything below
    // it are gone from the rest of the walk, everything else is listed once.
    let a_at = whole
        .iter()
        .position(|i| matches!(i, RegionInfo::Vmar { depth: 1, base, .. } if *base == a.base()))
        .unwrap();
    let mut cursor = WalkCursor::new();
    let mut got: Vec<RegionInfo> = f
        .root
        .walk_step(&mut cursor, a_at + 1)
        .unwrap()
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let (b_base, b_end) = (b.base(), b.base() + b.size());
    b.destroy(VMAR_RIGHTS).unwrap();
    while !cursor.is_done() {
        got.extend(
            f.root
                .walk_step(&mut cursor, 2)
                .unwrap()
                .into_iter()
                .map(|(i, _)| i),
        );
    }
    let base_of = |i: &RegionInfo| match *i {
        RegionInfo::Vmar { base, .. } | RegionInfo::Mapping { base, .. } => base,
    };
    let expected: Vec<RegionInfo> = whole
        .iter()
        .filter(|i| !(b_base..b_end).contains(&base_of(i)))
        .cloned()
        .collect();
    assert_eq!(got, expected);
    assert_eq!(uncounted(f.root.walk().unwrap()), expected);
    // A walk of the destroyed VMAR does not start.
    let mut cursor = WalkCursor::new();
    assert_eq!(
        b.walk_step(&mut cursor, 4).map(|s| s.len()),
        Err(Status::ERR_BAD_STATE)
    );
    f.check();
}
