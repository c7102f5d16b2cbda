//! Property test: random sequences of VMAR / VMO / fault operations against a simple, independent
//! reference model.
//!
//! The model is a `BTreeMap` page -> (owning VMAR, VMO, VMO page index, perms, max perms), a list
//! of VMARs (geometry, flags, alive), and per-VMO sizes and committed-page sets. Each operation's
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
//!    minus the model's committed pages.
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
use abi::vmo_options::ZX_VMO_RESIZABLE;
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

/// One random operation. Selectors (`vmar`, `vmo`) and numbers are reduced modulo what exists
/// when the step runs, so any sequence is meaningful.
#[derive(Clone, Debug)]
enum Op {
    Allocate {
        parent: u8,
        mode: u8,
        off: u8,
        size: u8,
        align: u8,
        can_map: u8,
        specific: bool,
        compact: bool,
    },
    Map {
        vmar: u8,
        vmo: u8,
        mode: u8,
        off: u8,
        vmo_off: u8,
        len: u8,
        perms: u8,
        map_range: bool,
        allow_faults: bool,
        vmar_rights: u8,
        vmo_rights: u8,
        align: u8,
    },
    Unmap {
        vmar: u8,
        off: u8,
        len: u8,
        op_children: bool,
    },
    Protect {
        vmar: u8,
        off: u8,
        len: u8,
        perms: u8,
        rights: u8,
    },
    Destroy {
        vmar: u8,
        op_children: bool,
    },
    VmarOpRange {
        vmar: u8,
        op: u8,
        off: u8,
        len: u8,
        rights: u8,
    },
    Fault {
        page: u8,
        access: u8,
    },
    VmoCreate {
        pages: u8,
        resizable: bool,
    },
    VmoCommit {
        vmo: u8,
        off: u8,
        len: u8,
    },
    VmoDecommit {
        vmo: u8,
        off: u8,
        len: u8,
    },
    VmoResize {
        vmo: u8,
        pages: u8,
    },
    VmoDrop {
        vmo: u8,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let b = any::<u8>;
    prop_oneof![
        3 => (b(), b(), b(), b(), b(), b(), any::<bool>(), any::<bool>()).prop_map(
            |(parent, mode, off, size, align, can_map, specific, compact)| Op::Allocate {
                parent, mode, off, size, align, can_map, specific, compact
            }
        ),
        10 => (
            (b(), b(), b(), b(), b(), b()),
            (b(), any::<bool>(), any::<bool>(), b(), b(), b())
        )
            .prop_map(
                |(
                    (vmar, vmo, mode, off, vmo_off, len),
                    (perms, map_range, allow_faults, vmar_rights, vmo_rights, align),
                )| Op::Map {
                    vmar, vmo, mode, off, vmo_off, len, perms, map_range, allow_faults,
                    vmar_rights, vmo_rights, align
                }
            ),
        3 => (b(), b(), b(), any::<bool>())
            .prop_map(|(vmar, off, len, op_children)| Op::Unmap { vmar, off, len, op_children }),
        4 => (b(), b(), b(), b(), b())
            .prop_map(|(vmar, off, len, perms, rights)| Op::Protect { vmar, off, len, perms, rights }),
        1 => (b(), any::<bool>()).prop_map(|(vmar, op_children)| Op::Destroy { vmar, op_children }),
        3 => (b(), b(), b(), b(), b())
            .prop_map(|(vmar, op, off, len, rights)| Op::VmarOpRange { vmar, op, off, len, rights }),
        6 => (b(), b()).prop_map(|(page, access)| Op::Fault { page, access }),
        2 => (b(), any::<bool>()).prop_map(|(pages, resizable)| Op::VmoCreate { pages, resizable }),
        2 => (b(), b(), b()).prop_map(|(vmo, off, len)| Op::VmoCommit { vmo, off, len }),
        2 => (b(), b(), b()).prop_map(|(vmo, off, len)| Op::VmoDecommit { vmo, off, len }),
        1 => (b(), b()).prop_map(|(vmo, pages)| Op::VmoResize { vmo, pages }),
        1 => b().prop_map(|vmo| Op::VmoDrop { vmo }),
    ]
}

/// What the model says one mapped page is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MPage {
    vmar: usize,
    vmo: usize,
    idx: u64,
    perms: MmuFlags,
    max: MmuFlags,
    /// Which mapping the page belongs to: a mapping is a maximal run of consecutive pages with
    /// the same `seg`. A map gives its pages a fresh one; protect gives the changed piece and the
    /// piece after it fresh ones (a split) and relabels neighbours it merges.
    seg: u64,
}

struct MVmar {
    h: Vmar,
    base: usize, // page number
    pages: usize,
    can_map: MmuFlags,
    specific: bool,
    parent: Option<usize>,
    alive: bool,
}

impl MVmar {
    fn end(&self) -> usize {
        self.base + self.pages
    }
}

struct MVmo {
    handle: Option<Arc<Vmo>>,
    weak: Weak<Vmo>,
    id: u64,
    pages: u64,
    committed: BTreeSet<u64>,
    resizable: bool,
    alive: bool,
}

struct World {
    aspace: Arc<AddressSpace>,
    mmu: SoftMmuProbe,
    phys: Arc<SoftPhysMem>,
    vmars: Vec<MVmar>,
    vmos: Vec<MVmo>,
    pages: BTreeMap<usize, MPage>,
    last_status: Option<Status>,
    next_seg: u64,
}

static STATS: std::sync::Mutex<BTreeMap<String, usize>> = std::sync::Mutex::new(BTreeMap::new());

fn perms_table(sel: u8) -> u32 {
    match sel % 16 {
        0..=3 => ZX_VM_PERM_READ,
        4..=7 => ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
        8 | 9 => ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE,
        10 | 11 => ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE,
        12 => 0,
        13 => ZX_VM_PERM_WRITE, // invalid: write without read
        14 => ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED,
        _ => ZX_VM_PERM_EXECUTE | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED,
    }
}

/// A length in pages: usually 1..=6, sometimes 0 (invalid).
fn pages_of(len: u8) -> usize {
    if len < 12 {
        0
    } else {
        len as usize % 6 + 1
    }
}

/// (perms after XOM handling, valid?)
fn model_perms(options: u32) -> (MmuFlags, bool) {
    let mut p = MmuFlags::NONE;
    let read = options & (ZX_VM_PERM_READ | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED) != 0;
    if read {
        p = p | R;
    }
    if options & ZX_VM_PERM_WRITE != 0 {
        p = p | W;
    }
    if options & ZX_VM_PERM_EXECUTE != 0 {
        p = p | X;
    }
    let valid = read || options & (ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE) == 0;
    (p, valid)
}

fn rights_perms(rights: u32) -> MmuFlags {
    let mut p = MmuFlags::NONE;
    if rights & ZX_RIGHT_READ != 0 {
        p = p | R;
    }
    if rights & ZX_RIGHT_WRITE != 0 {
        p = p | W;
    }
    if rights & ZX_RIGHT_EXECUTE != 0 {
        p = p | X;
    }
    p
}

/// (option bits, log2 alignment in bytes or 0)
fn align_table(sel: u8) -> (u32, u32) {
    match sel % 6 {
        0 | 1 => (0, 0),
        2 => (ZX_VM_ALIGN_1KB, 10),
        3 => (ZX_VM_ALIGN_4KB, 12),
        4 => (ZX_VM_ALIGN_8KB, 13),
        _ => (ZX_VM_ALIGN_16KB, 14),
    }
}

fn can_map_bits(sel: u8) -> (u32, MmuFlags) {
    let mut bits = 0;
    let mut p = MmuFlags::NONE;
    if sel & 1 != 0 {
        bits |= ZX_VM_CAN_MAP_READ;
        p = p | R;
    }
    if sel & 2 != 0 {
        bits |= ZX_VM_CAN_MAP_WRITE;
        p = p | W;
    }
    if sel & 4 != 0 {
        bits |= ZX_VM_CAN_MAP_EXECUTE;
        p = p | X;
    }
    (bits, p)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Any,
    Specific,
    Overwrite,
    Upper,
}

/// Predicted placement outcome.
enum Place {
    /// Exactly here (page number).
    At(usize),
    /// Anywhere free and aligned in `[lo, hi)` (page numbers), with this alignment in pages.
    Within(usize, usize, usize),
}

impl World {
    fn new(seed: u64) -> World {
        let (mmu, probe) = SoftMmu::boxed();
        let config = AspaceConfig::user(BASE_PAGE * PAGE, SPACE_PAGES * PAGE);
        let aspace = AddressSpace::new(config, mmu, Box::new(SplitMix64::new(seed))).unwrap();
        let root = aspace.root_vmar();
        let mut world = World {
            aspace,
            mmu: probe,
            phys: SoftPhysMem::new(FRAMES),
            vmars: vec![MVmar {
                h: root,
                base: BASE_PAGE,
                pages: SPACE_PAGES,
                can_map: MmuFlags::RWX,
                specific: true,
                parent: None,
                alive: true,
            }],
            vmos: Vec::new(),
            pages: BTreeMap::new(),
            last_status: None,
            next_seg: 0,
        };
        // Start with three VMOs (one resizable) so maps have something to map.
        world
            .step(&Op::VmoCreate {
                pages: 8,
                resizable: false,
            })
            .unwrap();
        world
            .step(&Op::VmoCreate {
                pages: 4,
                resizable: true,
            })
            .unwrap();
        world
            .step(&Op::VmoCreate {
                pages: 6,
                resizable: false,
            })
            .unwrap();
        world
    }

    fn pick_vmar(&self, sel: u8) -> usize {
        let alive: Vec<usize> = (0..self.vmars.len())
            .filter(|&i| self.vmars[i].alive)
            .collect();
        if sel < 220 {
            alive[sel as usize % alive.len()]
        } else {
            sel as usize % self.vmars.len()
        }
    }

    fn pick_vmo(&self, sel: u8) -> Option<usize> {
        let with: Vec<usize> = (0..self.vmos.len())
            .filter(|&i| self.vmos[i].handle.is_some())
            .collect();
        (!with.is_empty()).then(|| with[sel as usize % with.len()])
    }

    fn fresh_seg(&mut self) -> u64 {
        self.next_seg += 1;
        self.next_seg
    }

    /// The model's mappings, in address order: `(first page, end page)` of each maximal run of
    /// consecutive pages with one `seg`.
    fn mappings(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize, u64)> = Vec::new();
        for (&p, m) in &self.pages {
            match out.last_mut() {
                Some((_, e, seg)) if *e == p && *seg == m.seg => *e += 1,
                _ => out.push((p, p + 1, m.seg)),
            }
        }
        out.into_iter().map(|(s, e, _)| (s, e)).collect()
    }

    /// The model mapping holding `page`.
    fn mapping_at(&self, page: usize) -> Option<(usize, usize)> {
        self.mappings()
            .into_iter()
            .find(|&(s, e)| s <= page && page < e)
    }

    /// Protect of `[start, end)` to `p` (already checked): each mapping the range touches whose
    /// protection changes is cut at the range's edges, then every changed piece is merged with
    /// its neighbours (next, then previous) where they are compatible: same VMAR and VMO,
    /// consecutive VMO pages, same protection and ceiling.
    fn protect_pages(&mut self, start: usize, end: usize, p: MmuFlags) {
        let touched: Vec<(usize, usize)> = self
            .mappings()
            .into_iter()
            .filter(|&(s, e)| s < end && start < e)
            .collect();
        let mut changed = Vec::new();
        for (s, e) in touched {
            if self.pages[&s].perms == p {
                continue;
            }
            let (ps, pe) = (s.max(start), e.min(end));
            let inside = self.fresh_seg();
            for page in ps..pe {
                let m = self.pages.get_mut(&page).unwrap();
                m.perms = p;
                m.seg = inside;
            }
            let right = self.fresh_seg();
            for page in pe..e {
                self.pages.get_mut(&page).unwrap().seg = right;
            }
            changed.push(ps);
        }
        for ps in changed {
            let Some((s, _)) = self.mapping_at(ps) else {
                continue;
            };
            self.merge_with_next(s);
            if let Some((left, _)) = s.checked_sub(1).and_then(|l| self.mapping_at(l)) {
                self.merge_with_next(left);
            }
        }
    }

    fn merge_with_next(&mut self, start: usize) {
        let Some((_, e)) = self.mapping_at(start) else {
            return;
        };
        let Some((ns, ne)) = self.mapping_at(e) else {
            return;
        };
        let (a, b) = (self.pages[&(e - 1)], self.pages[&ns]);
        if a.vmar == b.vmar
            && a.vmo == b.vmo
            && a.idx + 1 == b.idx
            && a.perms == b.perms
            && a.max == b.max
        {
            for page in ns..ne {
                self.pages.get_mut(&page).unwrap().seg = a.seg;
            }
        }
    }

    fn free_frames(&self) -> usize {
        FRAMES
            - self
                .vmos
                .iter()
                .filter(|v| v.alive)
                .map(|v| v.committed.len())
                .sum::<usize>()
    }

    /// Is page `p` occupied by a direct child (sub-VMAR or mapping) of VMAR `v`?
    fn occupied_direct(&self, v: usize, p: usize) -> bool {
        self.pages.get(&p).is_some_and(|m| m.vmar == v)
            || self
                .vmars
                .iter()
                .any(|c| c.alive && c.parent == Some(v) && c.base <= p && p < c.end())
    }

    fn free_direct(&self, v: usize, start: usize, n: usize) -> bool {
        (start..start + n).all(|p| !self.occupied_direct(v, p))
    }

    fn any_fit(&self, v: usize, lo: usize, hi: usize, n: usize, align_pages: usize) -> bool {
        let mut b = lo.div_ceil(align_pages) * align_pages;
        while b + n <= hi {
            if self.free_direct(v, b, n) {
                return true;
            }
            b += align_pages;
        }
        false
    }

    fn check_place(&self, v: usize, place: &Place, n: usize, got: usize) -> Result<(), String> {
        if !got.is_multiple_of(PAGE) {
            return Err(format!("unaligned base {got:#x}"));
        }
        let gp = got / PAGE;
        match *place {
            Place::At(p) if p == gp => Ok(()),
            Place::At(p) => Err(format!("placed at page {gp:#x}, expected {p:#x}")),
            Place::Within(lo, hi, align) => {
                if gp < lo
                    || gp + n > hi
                    || !gp.is_multiple_of(align)
                    || !self.free_direct(v, gp, n)
                {
                    Err(format!(
                        "placed at page {gp:#x} (+{n}), window [{lo:#x},{hi:#x}) align {align}"
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Shared placement prediction of allocate and map (Zircon's CreateSubVmarInternal order,
    /// after the option checks). `rwx` is what the child needs from the parent's CAN_MAP.
    fn predict_place(
        &self,
        v: usize,
        mode: Mode,
        off_pages: usize,
        n: usize,
        align_log2: u32,
        rwx: MmuFlags,
        no_space: Status,
    ) -> Result<Place, Status> {
        let vm = &self.vmars[v];
        if !vm.alive {
            return Err(Status::ERR_BAD_STATE);
        }
        if n == 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if !vm.can_map.contains(rwx) {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        if mode != Mode::Any && !vm.specific {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let align_pages = if align_log2 > 12 {
            1 << (align_log2 - 12)
        } else {
            1
        };
        match mode {
            Mode::Specific | Mode::Overwrite => {
                if off_pages >= vm.pages || n > vm.pages - off_pages {
                    return Err(Status::ERR_INVALID_ARGS);
                }
                let base = vm.base + off_pages;
                if !base.is_multiple_of(align_pages) {
                    return Err(Status::ERR_INVALID_ARGS);
                }
                if self.free_direct(v, base, n) {
                    return Ok(Place::At(base));
                }
                if mode == Mode::Specific {
                    return Err(Status::ERR_ALREADY_EXISTS);
                }
                let end = base + n;
                if self
                    .vmars
                    .iter()
                    .any(|c| c.alive && c.parent == Some(v) && c.base < end && base < c.end())
                {
                    return Err(Status::ERR_INVALID_ARGS);
                }
                Ok(Place::At(base))
            }
            Mode::Upper | Mode::Any => {
                let hi = if mode == Mode::Upper {
                    if off_pages > vm.pages || n > vm.pages || n > off_pages {
                        return Err(Status::ERR_INVALID_ARGS);
                    }
                    vm.base + off_pages
                } else {
                    if n > vm.pages {
                        return Err(Status::ERR_INVALID_ARGS);
                    }
                    vm.end()
                };
                if self.any_fit(v, vm.base, hi, n, align_pages) {
                    Ok(Place::Within(vm.base, hi, align_pages))
                } else {
                    Err(no_space)
                }
            }
        }
    }

    /// Marks `v` and its descendants dead and removes their mapping pages.
    fn kill_vmar(&mut self, v: usize) {
        let mut dead = BTreeSet::new();
        dead.insert(v);
        loop {
            let before = dead.len();
            for (i, c) in self.vmars.iter().enumerate() {
                if c.alive && c.parent.is_some_and(|p| dead.contains(&p)) {
                    dead.insert(i);
                }
            }
            if dead.len() == before {
                break;
            }
        }
        for &i in &dead {
            self.vmars[i].alive = false;
        }
        self.pages.retain(|_, m| !dead.contains(&m.vmar));
    }

    /// VMOs with no handle and no mapping are gone, and so are their pages.
    fn gc_vmos(&mut self) {
        let used: BTreeSet<usize> = self.pages.values().map(|m| m.vmo).collect();
        for (i, vmo) in self.vmos.iter_mut().enumerate() {
            if vmo.alive && vmo.handle.is_none() && !used.contains(&i) {
                vmo.alive = false;
                vmo.committed.clear();
            }
        }
    }

    /// Commits VMO pages in order until frames run out (Vmo::commit semantics).
    fn commit_pages(&mut self, vmo: usize, first: u64, end: u64) -> ZxResult {
        for idx in first..end {
            if !self.vmos[vmo].committed.contains(&idx) {
                if self.free_frames() == 0 {
                    return Err(Status::ERR_NO_MEMORY);
                }
                self.vmos[vmo].committed.insert(idx);
            }
        }
        Ok(())
    }

    /// A placement offset in pages for SPECIFIC / OFFSET_IS_UPPER_LIMIT: usually one within the
    /// VMAR's bounds for `n` pages, sometimes anything up to one page past its end.
    fn offset_for(&self, v: usize, mode: Mode, off: u8, n: usize) -> usize {
        let pages = self.vmars[v].pages;
        if off >= 200 || n > pages {
            return off as usize % (pages + 2);
        }
        let within = off as usize % (pages - n + 1);
        if mode == Mode::Upper {
            within + n
        } else {
            within
        }
    }

    /// A VMAR and a start page relative to its base (may be -1 or past the end). Mostly starts
    /// at a mapped page, in the VMAR that maps it (or its parent), so that range operations hit
    /// something; otherwise anywhere around the selected VMAR.
    fn pick_range(&self, vmar: u8, off: u8) -> (usize, isize) {
        if off < 170 && !self.pages.is_empty() {
            let (&p, m) = self
                .pages
                .iter()
                .nth(off as usize % self.pages.len())
                .unwrap();
            let v = match (vmar % 4, self.vmars[m.vmar].parent) {
                (0, Some(parent)) => parent,
                _ => m.vmar,
            };
            let back = (vmar / 4 % 3) as isize - 1; // -1, 0 or +1 page
            return (v, p as isize - self.vmars[v].base as isize + back);
        }
        let v = self.pick_vmar(vmar);
        (v, (off as usize % (self.vmars[v].pages + 3)) as isize - 1)
    }

    /// Runs one step: predicts, executes, compares the status and updates the model.
    fn step(&mut self, op: &Op) -> Result<(), String> {
        let before = (self.pages.len(), self.vmars.len(), self.free_frames());
        let r = self.step_inner(op);
        if std::env::var_os("VM_MODEL_STATS").is_some() {
            let name = format!("{op:?}");
            let name = name.split([' ', '{']).next().unwrap_or("").to_string();
            let changed = before != (self.pages.len(), self.vmars.len(), self.free_frames());
            let last = self.last_status.take();
            if std::env::var_os("VM_MODEL_TRACE").is_some() {
                eprintln!("{op:?} -> {last:?}");
            }
            *STATS
                .lock()
                .unwrap()
                .entry(format!("{name} {last:?} changed={changed}"))
                .or_default() += 1;
        }
        r
    }

    fn step_inner(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Allocate {
                parent,
                mode,
                off,
                size,
                align,
                can_map,
                specific,
                compact,
            } => {
                let v = self.pick_vmar(parent);
                let mode = [Mode::Any, Mode::Specific, Mode::Upper][mode as usize % 3];
                let n = size as usize % 12;
                let (align_bits, align_log2) = align_table(align);
                let (cm_bits, cm) = can_map_bits(if can_map < 128 { 7 } else { can_map });
                let specific = specific || can_map & 1 != 0;
                let off_pages = match mode {
                    Mode::Any => 0,
                    _ => self.offset_for(v, mode, off, n),
                };
                let mut options = cm_bits | align_bits;
                options |= match mode {
                    Mode::Specific => ZX_VM_SPECIFIC,
                    Mode::Upper => ZX_VM_OFFSET_IS_UPPER_LIMIT,
                    _ => 0,
                };
                if specific {
                    options |= ZX_VM_CAN_MAP_SPECIFIC;
                }
                if compact {
                    options |= ZX_VM_COMPACT;
                }
                let predicted = self.predict_place(
                    v,
                    mode,
                    off_pages,
                    n,
                    align_log2,
                    cm,
                    Status::ERR_NO_RESOURCES,
                );
                let actual =
                    self.vmars[v]
                        .h
                        .allocate(options, off_pages * PAGE, n * PAGE, VMAR_RIGHTS);
                match (predicted, actual) {
                    (Ok(place), Ok((h, addr))) => {
                        self.check_place(v, &place, n, addr)?;
                        if h.base() != addr || h.len_bytes() != n * PAGE {
                            return Err("allocate: handle geometry".into());
                        }
                        self.vmars.push(MVmar {
                            h,
                            base: addr / PAGE,
                            pages: n,
                            can_map: cm,
                            specific,
                            parent: Some(v),
                            alive: true,
                        });
                        Ok(())
                    }
                    (Err(e), Err(a)) if e == a => {
                        self.last_status = Some(a);
                        Ok(())
                    }
                    (p, a) => Err(format!(
                        "allocate: predicted {:?}, got {:?}",
                        p.map(|_| ()),
                        a.map(|(_, addr)| addr)
                    )),
                }
            }
            Op::Map {
                vmar,
                vmo,
                mode,
                off,
                vmo_off,
                len,
                perms,
                map_range,
                allow_faults,
                vmar_rights,
                vmo_rights,
                align,
            } => {
                let Some(o) = self.pick_vmo(vmo) else {
                    return Ok(());
                };
                // Often the root (big enough for most requests), else any VMAR.
                let v = if vmar < 96 { 0 } else { self.pick_vmar(vmar) };
                let mode =
                    [Mode::Any, Mode::Specific, Mode::Overwrite, Mode::Upper][mode as usize % 4];
                let n = pages_of(len);
                let vmo_pages = self.vmos[o].pages;
                let vmo_off = if vmo_off < 160 && n as u64 <= vmo_pages {
                    vmo_off as u64 % (vmo_pages - n as u64 + 1) // fits in the VMO
                } else {
                    vmo_off as u64 % (vmo_pages + 2)
                };
                let off_pages = match mode {
                    Mode::Any => 0,
                    _ => self.offset_for(v, mode, off, n),
                };
                let vmar_rights = match vmar_rights % 12 {
                    10 => VMAR_RIGHTS & !ZX_RIGHT_WRITE,
                    11 => VMAR_RIGHTS & !ZX_RIGHT_EXECUTE,
                    _ => VMAR_RIGHTS,
                };
                let vmo_rights = match vmo_rights % 24 {
                    20 => VMO_RIGHTS & !ZX_RIGHT_WRITE,
                    21 => VMO_RIGHTS & !ZX_RIGHT_EXECUTE,
                    22 => VMO_RIGHTS & !ZX_RIGHT_MAP,
                    23 => ZX_RIGHT_READ | ZX_RIGHT_MAP,
                    _ => VMO_RIGHTS,
                };
                let (align_bits, align_log2) = align_table(align);
                let perm_bits = perms_table(perms);
                let mut options = perm_bits | align_bits;
                options |= match mode {
                    Mode::Any => 0,
                    Mode::Specific => ZX_VM_SPECIFIC,
                    Mode::Overwrite => ZX_VM_SPECIFIC_OVERWRITE,
                    Mode::Upper => ZX_VM_OFFSET_IS_UPPER_LIMIT,
                };
                if map_range {
                    options |= ZX_VM_MAP_RANGE;
                }
                if allow_faults {
                    options |= ZX_VM_ALLOW_FAULTS;
                }
                let (p, valid) = model_perms(perm_bits);
                let allowed = rights_perms(vmo_rights).intersection(rights_perms(vmar_rights));
                let m = &self.vmos[o];
                let predicted = if vmo_rights & ZX_RIGHT_MAP == 0 {
                    Err(Status::ERR_ACCESS_DENIED)
                } else if !valid {
                    Err(Status::ERR_INVALID_ARGS)
                } else if map_range && mode == Mode::Overwrite {
                    Err(Status::ERR_INVALID_ARGS)
                } else if !allowed.contains(p) {
                    Err(Status::ERR_ACCESS_DENIED)
                } else if !allow_faults && m.resizable {
                    Err(Status::ERR_NOT_SUPPORTED)
                } else {
                    // The spec's BUFFER_TOO_SMALL comes after every placement check.
                    let past_end = !allow_faults && vmo_off + n as u64 > m.pages;
                    self.predict_place(
                        v,
                        mode,
                        off_pages,
                        n,
                        align_log2,
                        p,
                        Status::ERR_NO_RESOURCES,
                    )
                    .and_then(|place| {
                        if past_end {
                            Err(Status::ERR_BUFFER_TOO_SMALL)
                        } else {
                            Ok(place)
                        }
                    })
                };
                let handle = self.vmos[o].handle.clone().unwrap();
                let actual = self.vmars[v].h.map(
                    options,
                    off_pages * PAGE,
                    &handle,
                    vmo_off * PAGE as u64,
                    n * PAGE,
                    vmar_rights,
                    vmo_rights,
                );
                drop(handle);
                match (predicted, actual) {
                    (Ok(place), Ok(addr)) => {
                        self.check_place(v, &place, n, addr)?;
                        let base = addr / PAGE;
                        let max = allowed.intersection(self.vmars[v].can_map);
                        let seg = self.fresh_seg();
                        for i in 0..n {
                            // SPECIFIC_OVERWRITE replaces whatever the VMAR mapped there.
                            self.pages.insert(
                                base + i,
                                MPage {
                                    vmar: v,
                                    vmo: o,
                                    idx: vmo_off + i as u64,
                                    perms: p,
                                    max,
                                    seg,
                                },
                            );
                        }
                        if map_range && !p.is_empty() {
                            let vmo_ref = self.vmos[o].weak.upgrade().unwrap();
                            for i in 0..n {
                                let idx = vmo_off + i as u64;
                                if self.vmos[o].committed.contains(&idx)
                                    && self.mmu.query((base + i) * PAGE).is_none()
                                {
                                    return Err(format!(
                                        "MAP_RANGE left page {:#x} (vmo page {idx}, frame {:?}) unmapped",
                                        base + i,
                                        vmo_ref.frame_of(idx)
                                    ));
                                }
                            }
                        }
                        Ok(())
                    }
                    (Err(e), Err(a)) if e == a => {
                        self.last_status = Some(a);
                        Ok(())
                    }
                    (p, a) => Err(format!("map: predicted {:?}, got {a:x?}", p.map(|_| ()))),
                }
            }
            Op::Unmap {
                vmar,
                off,
                len,
                op_children,
            } => {
                let (v, rel) = self.pick_range(vmar, off);
                let n = pages_of(len);
                let vm = &self.vmars[v];
                let start = (vm.base as isize + rel) as usize;
                let end = start + n;
                let rights = if op_children {
                    VMAR_RIGHTS
                } else {
                    VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN
                };
                let predicted = if n == 0 {
                    Err(Status::ERR_INVALID_ARGS)
                } else if !vm.alive {
                    Err(Status::ERR_BAD_STATE)
                } else if start < vm.base || end > vm.end() {
                    Err(Status::ERR_INVALID_ARGS)
                } else {
                    let kids: Vec<usize> = (0..self.vmars.len())
                        .filter(|&c| {
                            let c = &self.vmars[c];
                            c.alive && c.parent == Some(v) && c.base < end && start < c.end()
                        })
                        .collect();
                    if kids.iter().any(|&c| {
                        !op_children || self.vmars[c].base < start || self.vmars[c].end() > end
                    }) {
                        Err(Status::ERR_INVALID_ARGS)
                    } else {
                        // ZIRCON: a range holding nothing is OK (the spec text says NOT_FOUND).
                        Ok(kids)
                    }
                };
                let actual = vm.h.unmap(start * PAGE, n * PAGE, rights);
                match (predicted, actual) {
                    (Ok(kids), Ok(())) => {
                        for c in kids {
                            self.kill_vmar(c);
                        }
                        self.pages
                            .retain(|&p, m| !(m.vmar == v && start <= p && p < end));
                        Ok(())
                    }
                    (Err(e), Err(a)) if e == a => {
                        self.last_status = Some(a);
                        Ok(())
                    }
                    (p, a) => Err(format!("unmap: predicted {:?}, got {a:?}", p.map(|_| ()))),
                }
            }
            Op::Protect {
                vmar,
                off,
                len,
                perms,
                rights,
            } => {
                let (v, rel) = self.pick_range(vmar, off);
                let n = pages_of(len);
                let vm = &self.vmars[v];
                let start = (vm.base as isize + rel) as usize;
                let end = start + n;
                let rights = match rights % 5 {
                    0 | 1 => VMAR_RIGHTS,
                    2 => VMAR_RIGHTS & !ZX_RIGHT_WRITE,
                    3 => VMAR_RIGHTS & !ZX_RIGHT_EXECUTE,
                    _ => VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN,
                };
                let perm_bits = perms_table(perms);
                let (p, valid) = model_perms(perm_bits);
                let predicted = if !rights_perms(rights).contains(p) {
                    Err(Status::ERR_ACCESS_DENIED)
                } else if !valid || n == 0 {
                    Err(Status::ERR_INVALID_ARGS)
                } else if !vm.alive {
                    Err(Status::ERR_BAD_STATE)
                } else if start < vm.base || end > vm.end() {
                    Err(Status::ERR_INVALID_ARGS)
                } else if rights & ZX_RIGHT_OP_CHILDREN == 0
                    && self
                        .vmars
                        .iter()
                        .any(|c| c.alive && c.parent == Some(v) && c.base < end && start < c.end())
                {
                    // SPEC: a sub-region in the range (even an empty one) without OP_CHILDREN.
                    Err(Status::ERR_INVALID_ARGS)
                } else {
                    let mut r = Ok(());
                    for page in start..end {
                        let Some(m) = self.pages.get(&page) else {
                            r = Err(Status::ERR_NOT_FOUND);
                            break;
                        };
                        if !m.max.contains(p) {
                            r = Err(Status::ERR_ACCESS_DENIED);
                            break;
                        }
                        if m.vmar != v {
                            if rights & ZX_RIGHT_OP_CHILDREN == 0 {
                                r = Err(Status::ERR_INVALID_ARGS);
                                break;
                            }
                            if !m.perms.contains(p) {
                                r = Err(Status::ERR_ACCESS_DENIED);
                                break;
                            }
                        }
                    }
                    r
                };
                let actual = vm.h.protect(perm_bits, start * PAGE, n * PAGE, rights);
                match (predicted, actual) {
                    (Ok(()), Ok(())) => {
                        self.protect_pages(start, end, p);
                        Ok(())
                    }
                    (Err(e), Err(a)) if e == a => {
                        self.last_status = Some(a);
                        Ok(())
                    }
                    (p, a) => Err(format!("protect: predicted {p:?}, got {a:?}")),
                }
            }
            Op::Destroy { vmar, op_children } => {
                let v = self.pick_vmar(vmar);
                let rights = if op_children {
                    VMAR_RIGHTS
                } else {
                    VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN
                };
                let predicted = if !op_children {
                    Err(Status::ERR_ACCESS_DENIED)
                } else if v == 0 {
                    Err(Status::ERR_NOT_SUPPORTED)
                } else if !self.vmars[v].alive {
                    Err(Status::ERR_BAD_STATE)
                } else {
                    Ok(())
                };
                let actual = self.vmars[v].h.destroy(rights);
                match (predicted, actual) {
                    (Ok(()), Ok(())) => {
                        self.kill_vmar(v);
                        Ok(())
                    }
                    (Err(e), Err(a)) if e == a => {
                        self.last_status = Some(a);
                        Ok(())
                    }
                    (p, a) => Err(format!("destroy: predicted {p:?}, got {a:?}")),
                }
            }
            Op::VmarOpRange {
                vmar,
                op,
                off,
                len,
                rights,
            } => {
                let (v, rel) = self.pick_range(vmar, off);
                let n = pages_of(len);
                let start = (self.vmars[v].base as isize + rel) as usize;
                let end = start + n;
                let op = [
                    ZX_VMAR_OP_COMMIT,
                    ZX_VMAR_OP_DECOMMIT,
                    ZX_VMAR_OP_MAP_RANGE,
                    ZX_VMAR_OP_DONT_NEED,
                    ZX_VMAR_OP_ALWAYS_NEED,
                    0x7777,
                ][op as usize % 6];
                let rights = match rights % 4 {
                    0 | 1 => VMAR_RIGHTS,
                    2 => VMAR_RIGHTS & !ZX_RIGHT_WRITE,
                    _ => VMAR_RIGHTS & !ZX_RIGHT_OP_CHILDREN,
                };
                let predicted = self.predict_op_range(v, op, start, end, rights);
                let actual = self.vmars[v]
                    .h
                    .op_range(op, start * PAGE, n * PAGE, rights, 0);
                self.last_status = actual.err();
                if predicted != actual {
                    return Err(format!(
                        "op_range {op}: predicted {predicted:?}, got {actual:?}"
                    ));
                }
                Ok(())
            }
            Op::Fault { page, access } => {
                // Mostly a mapped page (most interesting), sometimes any page around the space.
                let p = match self
                    .pages
                    .keys()
                    .nth(page as usize % self.pages.len().max(1))
                {
                    Some(&p) if page < 200 => p,
                    _ => BASE_PAGE + page as usize % (SPACE_PAGES + 2) - 1,
                };
                let access = [R, W, X, MmuFlags::NONE][access as usize % 4];
                let need = if access.is_empty() { R } else { access };
                let predicted = match self.pages.get(&p).copied() {
                    None => Err(Status::ERR_NOT_FOUND),
                    Some(m) if !m.perms.contains(need) => Err(Status::ERR_ACCESS_DENIED),
                    Some(m) if m.idx >= self.vmos[m.vmo].pages => Err(Status::ERR_OUT_OF_RANGE),
                    Some(m) => self.commit_pages(m.vmo, m.idx, m.idx + 1),
                };
                let actual = self.aspace.fault(p * PAGE + 123, access | MmuFlags::USER);
                self.last_status = actual.err();
                if predicted != actual {
                    return Err(format!("fault: predicted {predicted:?}, got {actual:?}"));
                }
                if actual.is_ok() {
                    let m = self.pages[&p];
                    let vmo = self.vmos[m.vmo].weak.upgrade().unwrap();
                    let want = (vmo.frame_of(m.idx).unwrap(), m.perms | MmuFlags::USER);
                    if self.mmu.query(p * PAGE) != Some(want) {
                        return Err(format!(
                            "fault: pte {:?}, want {want:?}",
                            self.mmu.query(p * PAGE)
                        ));
                    }
                }
                Ok(())
            }
            Op::VmoCreate { pages, resizable } => {
                if self.vmos.iter().filter(|v| v.alive).count() >= MAX_LIVE_VMOS {
                    return Ok(());
                }
                let n = pages as u64 % 9;
                let phys: Arc<dyn PhysMem> = self.phys.clone();
                let opts = if resizable { ZX_VMO_RESIZABLE } else { 0 };
                let vmo = Vmo::create(phys, n * PAGE as u64, opts).map_err(|e| format!("{e:?}"))?;
                self.vmos.push(MVmo {
                    weak: Arc::downgrade(&vmo),
                    id: vmo.id(),
                    handle: Some(vmo),
                    pages: n,
                    committed: BTreeSet::new(),
                    resizable,
                    alive: true,
                });
                Ok(())
            }
            Op::VmoCommit { vmo, off, len } | Op::VmoDecommit { vmo, off, len } => {
                let Some(o) = self.pick_vmo(vmo) else {
                    return Ok(());
                };
                let commit = matches!(op, Op::VmoCommit { .. });
                let first = off as u64 % (self.vmos[o].pages + 2);
                let end = first + len as u64 % 5;
                let predicted = if end > self.vmos[o].pages {
                    Err(Status::ERR_OUT_OF_RANGE)
                } else if commit {
                    self.commit_pages(o, first, end)
                } else {
                    self.vmos[o].committed.retain(|&i| i < first || i >= end);
                    Ok(())
                };
                let h = self.vmos[o].handle.clone().unwrap();
                let (bo, bl) = (first * PAGE as u64, (end - first) * PAGE as u64);
                let actual = if commit {
                    h.commit(bo, bl)
                } else {
                    h.decommit(bo, bl)
                };
                self.last_status = actual.err();
                if predicted != actual {
                    return Err(format!(
                        "vmo (de)commit: predicted {predicted:?}, got {actual:?}"
                    ));
                }
                Ok(())
            }
            Op::VmoResize { vmo, pages } => {
                let Some(o) = self.pick_vmo(vmo) else {
                    return Ok(());
                };
                let n = pages as u64 % 9;
                let predicted = if !self.vmos[o].resizable {
                    Err(Status::ERR_UNAVAILABLE)
                } else {
                    let m = &mut self.vmos[o];
                    m.committed.retain(|&i| i < n);
                    m.pages = n;
                    Ok(())
                };
                let actual = self.vmos[o]
                    .handle
                    .as_ref()
                    .unwrap()
                    .resize(n * PAGE as u64);
                self.last_status = actual.err();
                if predicted != actual {
                    return Err(format!("resize: predicted {predicted:?}, got {actual:?}"));
                }
                Ok(())
            }
            Op::VmoDrop { vmo } => {
                if let Some(o) = self.pick_vmo(vmo) {
                    self.vmos[o].handle = None;
                }
                Ok(())
            }
        }
    }

    /// zx_vmar_op_range, page by page. Mapping boundaries matter for COMMIT / DECOMMIT (each
    /// mapping's piece is one VMO call, which checks its whole range before touching a page):
    /// they are the model's own (`mappings`, which `check` compares with the walk).
    fn predict_op_range(
        &mut self,
        v: usize,
        op: u32,
        start: usize,
        end: usize,
        rights: u32,
    ) -> ZxResult {
        let is_commit = op == ZX_VMAR_OP_COMMIT;
        let is_decommit = op == ZX_VMAR_OP_DECOMMIT;
        let op_children = rights & ZX_RIGHT_OP_CHILDREN != 0;
        if !matches!(
            op,
            ZX_VMAR_OP_COMMIT
                | ZX_VMAR_OP_DECOMMIT
                | ZX_VMAR_OP_MAP_RANGE
                | ZX_VMAR_OP_DONT_NEED
                | ZX_VMAR_OP_ALWAYS_NEED
        ) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if (is_commit || is_decommit) && rights & ZX_RIGHT_WRITE == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        // ZIRCON: MAP_RANGE needs READ.
        if op == ZX_VMAR_OP_MAP_RANGE && rights & ZX_RIGHT_READ == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        if start == end {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let vm = &self.vmars[v];
        if start < vm.base || end > vm.end() {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        if !vm.alive {
            return Err(Status::ERR_BAD_STATE);
        }
        let segments: Vec<(usize, usize)> = self
            .mappings()
            .into_iter()
            .filter(|&(b, e)| b < end && start < e)
            .map(|(b, e)| (b.max(start), e.min(end)))
            .collect();
        let mut expected = start;
        for (s, e) in segments {
            if s > expected {
                return Err(Status::ERR_BAD_STATE);
            }
            let m = self.pages[&s];
            if (is_commit || is_decommit || !op_children) && m.vmar != v {
                return Err(Status::ERR_INVALID_ARGS);
            }
            if is_commit || is_decommit {
                if !m.max.contains(W) {
                    return Err(Status::ERR_ACCESS_DENIED);
                }
                let (first, last) = (m.idx, m.idx + (e - s) as u64);
                if last > self.vmos[m.vmo].pages {
                    return Err(Status::ERR_OUT_OF_RANGE);
                }
                if is_commit {
                    self.commit_pages(m.vmo, first, last)?;
                } else {
                    self.vmos[m.vmo]
                        .committed
                        .retain(|&i| i < first || i >= last);
                }
            }
            expected = e;
        }
        if expected < end {
            return Err(Status::ERR_BAD_STATE);
        }
        Ok(())
    }

    /// Compares everything observable with the model.
    fn check(&self) -> Result<(), String> {
        self.aspace.check_invariants()?;
        if self.mmu.outstanding_flushes() != 0 {
            return Err("outstanding TLB flush".into());
        }
        // The walk: VMARs and mapping pages equal the model.
        let mut stack: Vec<usize> = Vec::new();
        let mut seen_vmars = 0usize;
        let mut seen_pages = 0usize;
        let mut mappings_per_vmo: BTreeMap<u64, usize> = BTreeMap::new();
        let mut walked_mappings: Vec<(usize, usize)> = Vec::new();
        for info in self.aspace.walk() {
            match info {
                RegionInfo::Vmar {
                    depth,
                    base,
                    len_bytes,
                    can_map,
                    can_map_specific,
                    ..
                } => {
                    stack.truncate(depth);
                    let parent = stack.last().copied();
                    let found = (0..self.vmars.len()).find(|&i| {
                        let m = &self.vmars[i];
                        m.alive
                            && m.parent == parent
                            && m.base * PAGE == base
                            && m.pages * PAGE == len_bytes
                            && m.can_map == can_map.perms()
                            && m.specific == can_map_specific
                    });
                    let Some(i) = found else {
                        return Err(format!("walk: unexpected vmar {base:#x}+{len_bytes:#x}"));
                    };
                    stack.push(i);
                    seen_vmars += 1;
                }
                RegionInfo::Mapping {
                    depth,
                    base,
                    len_bytes,
                    perms,
                    max_perms,
                    vmo_id,
                    vmo_offset,
                    ..
                } => {
                    stack.truncate(depth);
                    let owner = *stack.last().ok_or("walk: mapping without vmar")?;
                    *mappings_per_vmo.entry(vmo_id).or_default() += 1;
                    walked_mappings.push((base / PAGE, (base + len_bytes) / PAGE));
                    for i in 0..len_bytes / PAGE {
                        let p = base / PAGE + i;
                        let Some(m) = self.pages.get(&p) else {
                            return Err(format!("walk: page {p:#x} mapped, model says no"));
                        };
                        let want = (
                            owner,
                            self.vmos[m.vmo].id,
                            vmo_offset / PAGE as u64 + i as u64,
                            perms.perms(),
                            max_perms.perms(),
                        );
                        let have = (m.vmar, vmo_id, m.idx, m.perms, m.max);
                        if want != have {
                            return Err(format!(
                                "walk: page {p:#x} is (vmar, vmo id, idx, perms, max) {want:?}, model {have:?}"
                            ));
                        }
                        seen_pages += 1;
                    }
                }
            }
        }
        if seen_vmars != self.vmars.iter().filter(|v| v.alive).count() {
            return Err("walk: vmar count differs".into());
        }
        if seen_pages != self.pages.len() {
            return Err("walk: mapped page count differs".into());
        }
        // Mapping boundaries (splits and merges) equal the model's.
        walked_mappings.sort_unstable();
        let model_mappings = self.mappings();
        if walked_mappings != model_mappings {
            return Err(format!(
                "walk: mappings {walked_mappings:x?}, model {model_mappings:x?}"
            ));
        }
        if self.aspace.mapping_count() != model_mappings.len() {
            return Err(format!(
                "mapping_count {}, model {}",
                self.aspace.mapping_count(),
                model_mappings.len()
            ));
        }
        // Page tables: only model pages, the right frame, no more permission than the model's.
        for (vaddr, paddr, flags) in self.mmu.entries() {
            let p = vaddr / PAGE;
            let Some(m) = self.pages.get(&p) else {
                return Err(format!("pte {vaddr:#x} on an unmapped page"));
            };
            let vmo = self.vmos[m.vmo]
                .weak
                .upgrade()
                .ok_or_else(|| format!("pte {vaddr:#x}: its vmo is gone"))?;
            if m.perms.is_empty()
                || !m.perms.contains(flags.perms())
                || !flags.contains(MmuFlags::USER)
            {
                return Err(format!(
                    "pte {vaddr:#x}: flags {flags:?}, model {:?}",
                    m.perms
                ));
            }
            if vmo.frame_of(m.idx) != Some(paddr) {
                return Err(format!(
                    "pte {vaddr:#x} -> {paddr:?}, vmo page {} is {:?}",
                    m.idx,
                    vmo.frame_of(m.idx)
                ));
            }
        }
        // VMOs: size, committed pages, liveness, back-references.
        for (i, m) in self.vmos.iter().enumerate() {
            match (m.alive, m.weak.upgrade()) {
                (true, Some(vmo)) => {
                    if vmo.page_count() != m.pages
                        || vmo.committed_page_count() != m.committed.len()
                    {
                        return Err(format!(
                            "vmo {i}: {} pages / {} committed, model {} / {}",
                            vmo.page_count(),
                            vmo.committed_page_count(),
                            m.pages,
                            m.committed.len()
                        ));
                    }
                    if let Some(idx) = m.committed.iter().find(|&&idx| vmo.frame_of(idx).is_none())
                    {
                        return Err(format!("vmo {i}: page {idx} not committed"));
                    }
                    let maps = mappings_per_vmo.get(&m.id).copied().unwrap_or(0);
                    if vmo.mapping_count() != maps {
                        return Err(format!(
                            "vmo {i}: {} back-references for {maps} mappings",
                            vmo.mapping_count()
                        ));
                    }
                }
                (false, None) => {}
                (true, None) => return Err(format!("vmo {i} freed too early")),
                (false, Some(_)) => return Err(format!("vmo {i} leaked")),
            }
        }
        if self.phys.free_frames() != self.free_frames() {
            return Err(format!(
                "free frames {}, model {}",
                self.phys.free_frames(),
                self.free_frames()
            ));
        }
        Ok(())
    }
}

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
