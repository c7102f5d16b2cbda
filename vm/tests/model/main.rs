//! Property test: random sequences of VMAR / VMO / fault operations against a simple, independent
//! reference model.
//!
//! The model is a `BTreeMap` page -> (owning VMAR, VMO, VMO page index, perms, max perms), a list
//! of VMARs (geometry, flags, alive), per-VMO sizes and committed pages (page -> model frame),
//! and each model frame's first byte. Children (`zx_vmo_create_child`): a snapshot starts with
//! its parent's model frames in its window (equal ids: one shared frame, so it reads what the
//! parent held when it was made), and a write, commit or write fault to a frame another live VMO
//! holds gives the writer a copy (later writes diverge); a slice holds no frame and resolves its
//! pages in its root; a mapping of a slice maps its root's window (the model's pages name the
//! root). Each operation's
//! outcome (status, and the new model state when it succeeds) is predicted by straightforward
//! page-by-page logic, written here independently of `vm/src`; a failing call must leave the model
//! unchanged. After EVERY step the implementation is compared with the model:
//!
//! 1. `AddressSpace::check_invariants` (gap-tree structure and augmentation recomputed from
//!    scratch, children inside parents, arena and back-references consistent);
//! 2. the introspection walk equals the model (VMARs, and every mapping page's VMO, VMO page,
//!    perms, ceiling and owning VMAR); every page-table entry lies on a model page with non-empty
//!    perms, points at the frame `Vmo::frame_of` gives for that VMO page, and has no permission
//!    the model does not grant; VMO sizes and committed pages equal the model's; a VMO the model
//!    says is gone (no handle, no mapping) is really freed; each VMO's back-reference count equals
//!    its number of mappings;
//! 3. no TLB flush token is outstanding, and the frame allocator's free count equals the budget
//!    minus the model's frames in use (distinct model frames of the live VMOs);
//! 4. equal model frames are one frame and different ones different frames, and every page of
//!    every live VMO reads the model's byte;
//! 5. each live VMO's attribution (`Vmo::attribution`: committed, private and scaled bytes)
//!    equals the model's, and the scaled bytes of all live VMOs, fractions included, add up to
//!    the frames in use.
//!
//! The address space is small (48 pages) and the frame budget tiny (16 frames), so collisions,
//! placement failures and `ERR_NO_MEMORY` are frequent. At the end of each case everything is
//! dropped and every frame must be back.
//!
//! Defaults: 64 cases of up to 60 steps. Longer / reproducible runs (see docs/vm.md):
//! `PROPTEST_CASES=5000 PROPTEST_RNG_SEED=12345 cargo test -p vm --release --test model`.

// One condition per line in the order the spec checks them, even when two give the same status.
#![allow(clippy::if_same_then_else, clippy::too_many_arguments)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};

use abi::ops::*;
use abi::rights::*;
use abi::vm_options::*;
use abi::vmo_options::{
    ZX_VMO_CHILD_RESIZABLE, ZX_VMO_CHILD_SLICE, ZX_VMO_CHILD_SNAPSHOT,
    ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE, ZX_VMO_RESIZABLE,
};
use abi::{Status, ZxResult, PAGE_SIZE};
use proptest::prelude::*;
use vm::soft_mmu::{SoftMmu, SoftMmuProbe, SoftPhysMem};
use vm::{AddressSpace, AspaceConfig, MmuFlags, PhysMem, RegionInfo, SplitMix64, Vmar, Vmo};

const PAGE: usize = PAGE_SIZE;
const BASE_PAGE: usize = 0x100; // the space starts at 1 MiB
const SPACE_PAGES: usize = 48;
const FRAMES: usize = 16;
const MAX_LIVE_VMOS: usize = 6;

const VMAR_RIGHTS: u32 = ZX_RIGHT_DUPLICATE
    | ZX_RIGHT_TRANSFER
    | ZX_RIGHT_READ
    | ZX_RIGHT_WRITE
    | ZX_RIGHT_EXECUTE
    | ZX_RIGHT_OP_CHILDREN
    | ZX_RIGHT_GET_PROPERTY
    | ZX_RIGHT_SET_PROPERTY
    | ZX_RIGHT_INSPECT;
const VMO_RIGHTS: u32 = ZX_RIGHT_DUPLICATE
    | ZX_RIGHT_TRANSFER
    | ZX_RIGHT_READ
    | ZX_RIGHT_WRITE
    | ZX_RIGHT_EXECUTE
    | ZX_RIGHT_MAP
    | ZX_RIGHT_GET_PROPERTY
    | ZX_RIGHT_SET_PROPERTY;

const R: MmuFlags = MmuFlags::READ;
const W: MmuFlags = MmuFlags::WRITE;
const X: MmuFlags = MmuFlags::EXECUTE;

mod check;
mod model;
mod op;
mod step;

use model::*;
use op::*;

/// Per-outcome step counts, printed with `VM_MODEL_STATS`.
static STATS: std::sync::Mutex<BTreeMap<String, usize>> = std::sync::Mutex::new(BTreeMap::new());

fn run_case(seed: u64, ops: &[Op]) -> Result<(), String> {
    let mut world = World::new(seed);
    let phys = world.phys.clone();
    for (i, op) in ops.iter().enumerate() {
        let r = world.step(op).and_then(|()| {
            world.gc_vmos();
            world.check()
        });
        if let Err(e) = r {
            let mut dump = String::new();
            world.aspace.dump(&mut dump).unwrap();
            return Err(format!("step {i} {op:?}: {e}\nlayout:\n{dump}"));
        }
    }
    drop(world);
    if phys.free_frames() != FRAMES {
        return Err(format!("{} frames leaked", FRAMES - phys.free_frames()));
    }
    Ok(())
}

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    // The regression seeds live beside this file, in main.proptest-regressions (proptest's
    // default puts a main.rs's seeds in a shared tests/proptest-regressions/main.txt).
    config.failure_persistence = Some(Box::new(
        proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
    ));
    config
}

fn max_steps() -> usize {
    std::env::var("VM_MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn vm_matches_reference_model(
        seed in any::<u64>(),
        ops in prop::collection::vec(op_strategy(), 1..=max_steps()),
    ) {
        if let Err(e) = run_case(seed, &ops) {
            prop_assert!(false, "{}", e);
        }
        if std::env::var_os("VM_MODEL_STATS").is_some() {
            for (k, v) in STATS.lock().unwrap().iter() {
                eprintln!("{v:8} {k}");
            }
        }
    }
}
