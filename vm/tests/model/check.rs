//! [`World::check`]: after every step, everything observable of the implementation compared
//! with the model.

use super::*;

impl World {
    /// Compares everything observable with the model.
    pub(crate) fn check(&self) -> Result<(), String> {
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
                    size,
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
                            && m.pages * PAGE == size
                            && m.can_map == can_map.perms()
                            && m.specific == can_map_specific
                    });
                    let Some(i) = found else {
                        return Err(format!("walk: unexpected vmar {base:#x}+{size:#x}"));
                    };
                    stack.push(i);
                    seen_vmars += 1;
                }
                RegionInfo::Mapping {
                    depth,
                    base,
                    size,
                    perms,
                    max_perms,
                    vmo_id,
                    vmo_offset,
                    ..
                } => {
                    stack.truncate(depth);
                    let owner = *stack.last().ok_or("walk: mapping without vmar")?;
                    *mappings_per_vmo.entry(vmo_id).or_default() += 1;
                    walked_mappings.push((base / PAGE, (base + size) / PAGE));
                    for i in 0..size / PAGE {
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
        // Page tables: only model pages, the right frame (or the zero frame, read-only, for a
        // page not committed), no more permission than the model's.
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
            // The zero page: a page not committed, read-only.
            let zero = paddr == self.phys.zero_frame()
                && vmo.frame_of(m.idx).is_none()
                && !flags.contains(MmuFlags::WRITE);
            if !zero && vmo.frame_of(m.idx) != Some(paddr) {
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
                    let committed = (0..m.pages)
                        .filter(|&idx| self.frame_at(i, idx).is_some())
                        .count();
                    if vmo.page_count() != m.pages || vmo.committed_page_count() != committed {
                        return Err(format!(
                            "vmo {i}: {} pages / {} committed, model {} / {committed}",
                            vmo.page_count(),
                            vmo.committed_page_count(),
                            m.pages,
                        ));
                    }
                    if let Some(idx) = m.committed.keys().find(|&&idx| vmo.frame_of(idx).is_none())
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
        self.check_sharing_and_contents()?;
        self.check_attribution()
    }

    /// Equal model frames are one frame, different ones different frames; every page of every
    /// live VMO reads what the model says (0 where nothing was written or committed).
    fn check_sharing_and_contents(&self) -> Result<(), String> {
        let mut frames: BTreeMap<u64, vm::PhysAddr> = BTreeMap::new();
        let mut owners: BTreeMap<vm::PhysAddr, u64> = BTreeMap::new();
        for (i, m) in self.vmos.iter().enumerate() {
            let Some(vmo) = m.weak.upgrade().filter(|_| m.alive) else {
                continue;
            };
            for idx in 0..m.pages {
                let want = self.frame_at(i, idx);
                let have = vmo.frame_of(idx);
                if let (Some(f), Some(addr)) = (want, have) {
                    if *frames.entry(f).or_insert(addr) != addr
                        || *owners.entry(addr).or_insert(f) != f
                    {
                        return Err(format!(
                            "vmo {i} page {idx}: frame {addr:?}, model frame {f} (seen as {:?})",
                            frames[&f]
                        ));
                    }
                }
                let mut byte = [0xee];
                vmo.read(idx * PAGE as u64, &mut byte)
                    .map_err(|e| format!("vmo {i} read {idx}: {e:?}"))?;
                let expect = want.map_or(0, |f| self.content[&f]);
                if byte[0] != expect {
                    return Err(format!(
                        "vmo {i} page {idx} reads {}, model {expect}",
                        byte[0]
                    ));
                }
            }
        }
        Ok(())
    }

    /// Each live VMO's attribution equals the model's (a page's bytes divided among the live
    /// VMOs holding its frame; a slice's pages are its root's), and the scaled bytes of all of
    /// them add up to the frames in use.
    fn check_attribution(&self) -> Result<(), String> {
        use abi::info::ScaledBytes;
        let page = PAGE as u64;
        let mut sum = ScaledBytes::default();
        for (i, m) in self.vmos.iter().enumerate() {
            let Some(vmo) = m.weak.upgrade().filter(|_| m.alive) else {
                continue;
            };
            let mut want = vm::vmo::Attribution::default();
            for idx in 0..m.pages {
                let Some(f) = self.frame_at(i, idx) else {
                    continue;
                };
                want.bytes += page;
                if m.slice.is_some() {
                    continue;
                }
                let holders = self.holders(f) as u64;
                if holders == 1 {
                    want.private_bytes += page;
                }
                want.scaled = want.scaled + ScaledBytes::share_of(page, holders);
            }
            let have = vmo.attribution(&mut || {});
            if have != want {
                return Err(format!("vmo {i}: attribution {have:?}, model {want:?}"));
            }
            sum = sum + have.scaled;
        }
        let used = (FRAMES - self.phys.free_frames()) as u64 * page;
        if sum.round() != used {
            return Err(format!(
                "scaled bytes of all VMOs {sum:?}, frames in use {used} bytes"
            ));
        }
        Ok(())
    }
}
