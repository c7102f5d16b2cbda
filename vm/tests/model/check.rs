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
