//! The reference model: pages, VMARs and VMOs as plain maps and lists ([`World`]), and its
//! page-by-page predictions (placement, protect splits and merges, commits), written
//! independently of `vm/src`.

use super::*;

/// What the model says one mapped page is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MPage {
    pub(crate) vmar: usize,
    pub(crate) vmo: usize,
    pub(crate) idx: u64,
    pub(crate) perms: MmuFlags,
    pub(crate) max: MmuFlags,
    /// Which mapping the page belongs to: a mapping is a maximal run of consecutive pages with
    /// the same `seg`. A map gives its pages a fresh one; protect gives the changed piece and the
    /// piece after it fresh ones (a split) and relabels neighbours it merges.
    pub(crate) seg: u64,
}

pub(crate) struct MVmar {
    pub(crate) h: Vmar,
    pub(crate) base: usize, // page number
    pub(crate) pages: usize,
    pub(crate) can_map: MmuFlags,
    pub(crate) specific: bool,
    pub(crate) parent: Option<usize>,
    pub(crate) alive: bool,
}

impl MVmar {
    pub(crate) fn end(&self) -> usize {
        self.base + self.pages
    }
}

pub(crate) struct MVmo {
    pub(crate) handle: Option<Arc<Vmo>>,
    pub(crate) weak: Weak<Vmo>,
    pub(crate) id: u64,
    pub(crate) pages: u64,
    /// Committed page -> model frame (a snapshot starts with its parent's frames: equal ids
    /// are one shared frame). Always empty for a slice: its pages are its root's.
    pub(crate) committed: BTreeMap<u64, u64>,
    pub(crate) resizable: bool,
    pub(crate) alive: bool,
    /// A slice: its root (never itself a slice) and its first page there.
    pub(crate) slice: Option<(usize, u64)>,
}

pub(crate) struct World {
    pub(crate) aspace: Arc<AddressSpace>,
    pub(crate) mmu: SoftMmuProbe,
    pub(crate) phys: Arc<SoftPhysMem>,
    pub(crate) vmars: Vec<MVmar>,
    pub(crate) vmos: Vec<MVmo>,
    pub(crate) pages: BTreeMap<usize, MPage>,
    pub(crate) last_status: Option<Status>,
    pub(crate) next_seg: u64,
    /// The next model frame id.
    pub(crate) next_frame: u64,
    /// The byte at offset 0 of each model frame (written by `VmoWrite`; 0 for a fresh frame).
    pub(crate) content: BTreeMap<u64, u8>,
}

/// Predicted placement outcome.
pub(crate) enum Place {
    /// Exactly here (page number).
    At(usize),
    /// Anywhere free and aligned in `[lo, hi)` (page numbers), with this alignment in pages.
    Within(usize, usize, usize),
}

impl World {
    pub(crate) fn new(seed: u64) -> World {
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
            next_frame: 0,
            content: BTreeMap::new(),
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

    pub(crate) fn pick_vmar(&self, sel: u8) -> usize {
        let alive: Vec<usize> = (0..self.vmars.len())
            .filter(|&i| self.vmars[i].alive)
            .collect();
        if sel < 220 {
            alive[sel as usize % alive.len()]
        } else {
            sel as usize % self.vmars.len()
        }
    }

    pub(crate) fn pick_vmo(&self, sel: u8) -> Option<usize> {
        let with: Vec<usize> = (0..self.vmos.len())
            .filter(|&i| self.vmos[i].handle.is_some())
            .collect();
        (!with.is_empty()).then(|| with[sel as usize % with.len()])
    }

    pub(crate) fn fresh_seg(&mut self) -> u64 {
        self.next_seg += 1;
        self.next_seg
    }

    /// The model's mappings, in address order: `(first page, end page)` of each maximal run of
    /// consecutive pages with one `seg`.
    pub(crate) fn mappings(&self) -> Vec<(usize, usize)> {
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
    pub(crate) fn mapping_at(&self, page: usize) -> Option<(usize, usize)> {
        self.mappings()
            .into_iter()
            .find(|&(s, e)| s <= page && page < e)
    }

    /// Protect of `[start, end)` to `p` (already checked): each mapping the range touches whose
    /// protection changes is cut at the range's edges, then every changed piece is merged with
    /// its neighbours (next, then previous) where they are compatible: same VMAR and VMO,
    /// consecutive VMO pages, same protection and ceiling.
    pub(crate) fn protect_pages(&mut self, start: usize, end: usize, p: MmuFlags) {
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

    pub(crate) fn merge_with_next(&mut self, start: usize) {
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

    /// Frames in use: the distinct model frames the live VMOs hold.
    pub(crate) fn used_frames(&self) -> usize {
        self.vmos
            .iter()
            .filter(|v| v.alive)
            .flat_map(|v| v.committed.values())
            .collect::<BTreeSet<_>>()
            .len()
    }

    pub(crate) fn free_frames(&self) -> usize {
        FRAMES - self.used_frames()
    }

    /// How many live VMOs hold model frame `frame`.
    pub(crate) fn holders(&self, frame: u64) -> usize {
        self.vmos
            .iter()
            .filter(|v| v.alive && v.committed.values().any(|&f| f == frame))
            .count()
    }

    /// Where page `idx` of VMO `o` lives: in its root for a slice.
    pub(crate) fn resolve(&self, o: usize, idx: u64) -> (usize, u64) {
        match self.vmos[o].slice {
            Some((root, base)) => (root, base + idx),
            None => (o, idx),
        }
    }

    /// The model frame behind page `idx` of VMO `o`, if committed.
    pub(crate) fn frame_at(&self, o: usize, idx: u64) -> Option<u64> {
        let (o, idx) = self.resolve(o, idx);
        self.vmos[o].committed.get(&idx).copied()
    }

    /// A fresh model frame holding `byte`, or `ERR_NO_MEMORY` when the budget is used up.
    fn new_frame(&mut self, byte: u8) -> ZxResult<u64> {
        if self.free_frames() == 0 {
            return Err(Status::ERR_NO_MEMORY);
        }
        self.next_frame += 1;
        self.content.insert(self.next_frame, byte);
        Ok(self.next_frame)
    }

    /// Is page `p` occupied by a direct child (sub-VMAR or mapping) of VMAR `v`?
    pub(crate) fn occupied_direct(&self, v: usize, p: usize) -> bool {
        self.pages.get(&p).is_some_and(|m| m.vmar == v)
            || self
                .vmars
                .iter()
                .any(|c| c.alive && c.parent == Some(v) && c.base <= p && p < c.end())
    }

    pub(crate) fn free_direct(&self, v: usize, start: usize, n: usize) -> bool {
        (start..start + n).all(|p| !self.occupied_direct(v, p))
    }

    pub(crate) fn any_fit(
        &self,
        v: usize,
        lo: usize,
        hi: usize,
        n: usize,
        align_pages: usize,
    ) -> bool {
        let mut b = lo.div_ceil(align_pages) * align_pages;
        while b + n <= hi {
            if self.free_direct(v, b, n) {
                return true;
            }
            b += align_pages;
        }
        false
    }

    pub(crate) fn check_place(
        &self,
        v: usize,
        place: &Place,
        n: usize,
        got: usize,
    ) -> Result<(), String> {
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
    pub(crate) fn predict_place(
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
    pub(crate) fn kill_vmar(&mut self, v: usize) {
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

    /// VMOs with no handle, no mapping and (for a slice's root) no live slice are gone, and so
    /// are their pages. A mapping of a slice holds its root (the model's pages name the root),
    /// so a slice's handle alone keeps it.
    pub(crate) fn gc_vmos(&mut self) {
        let mut used: BTreeSet<usize> = self.pages.values().map(|m| m.vmo).collect();
        for vmo in &self.vmos {
            if let (true, Some(_), Some((root, _))) = (vmo.alive, &vmo.handle, vmo.slice) {
                used.insert(root);
            }
        }
        for (i, vmo) in self.vmos.iter_mut().enumerate() {
            if vmo.alive && vmo.handle.is_none() && !used.contains(&i) {
                vmo.alive = false;
                vmo.committed.clear();
            }
        }
        let live: BTreeSet<u64> = self
            .vmos
            .iter()
            .flat_map(|v| v.committed.values().copied())
            .collect();
        self.content.retain(|f, _| live.contains(f));
    }

    /// Commits VMO pages in order for writing (`Vmo::commit`, writes, write faults) until
    /// frames run out: a page not committed gets a zeroed frame, and a page whose frame another
    /// live VMO holds too gets a copy of its own (the frame stays with the others).
    pub(crate) fn commit_pages_for_write(&mut self, vmo: usize, first: u64, end: u64) -> ZxResult {
        for idx in first..end {
            let (o, idx) = self.resolve(vmo, idx);
            match self.vmos[o].committed.get(&idx).copied() {
                None => {
                    let frame = self.new_frame(0)?;
                    self.vmos[o].committed.insert(idx, frame);
                }
                Some(shared) if self.holders(shared) > 1 => {
                    let frame = self.new_frame(self.content[&shared])?;
                    self.vmos[o].committed.insert(idx, frame);
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Decommits pages `[first, end)` of VMO `vmo` (of its root for a slice).
    pub(crate) fn decommit_pages(&mut self, vmo: usize, first: u64, end: u64) {
        let (o, at) = self.resolve(vmo, first);
        let last = at + (end - first);
        self.vmos[o].committed.retain(|&i, _| i < at || i >= last);
    }

    /// A placement offset in pages for SPECIFIC / OFFSET_IS_UPPER_LIMIT: usually one within the
    /// VMAR's bounds for `n` pages, sometimes anything up to one page past its end.
    pub(crate) fn offset_for(&self, v: usize, mode: Mode, off: u8, n: usize) -> usize {
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
    pub(crate) fn pick_range(&self, vmar: u8, off: u8) -> (usize, isize) {
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
}
