//! [`AddressSpace::check_invariants`]: the whole-structure consistency check for tests (tree,
//! mappings, page tables, arena and VMO back-references).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;

use abi::PAGE_SIZE;

use crate::arch_traits::{MmuFlags, PhysAddr, PhysMem};

use super::{AddressSpace, Child, Tree};
use crate::mapping::VmMapping;
use crate::vmo::Vmo;

impl AddressSpace {
    /// Checks the whole structure (for tests and property tests): every gap tree's invariants;
    /// children inside their parent and pointing back to it; mappings with `perms <= max_perms`
    /// and an in-range VMO window; one VMO back-reference per mapping with the right window; and
    /// page tables equal to what the mappings say: every present entry lies inside a mapping,
    /// points at the frame its VMO has committed for that page and carries exactly the
    /// mapping's protection (which is not empty), or, for a page inside the VMO that is not
    /// committed, at the shared zero frame with that protection less WRITE (in a VMO that knows
    /// the zero frame may be mapped), and no entry exists outside the mappings; the zero frame
    /// holds only zeros;
    /// every live arena node reachable from the root; mapping uids unique; ceilings within the
    /// parent's CAN_MAP; no stale back-references. O(n log n + present page-table entries +
    /// page-table pages + back-references of the mapped VMOs).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_invariants_bounded(usize::MAX)
    }

    /// [`Self::check_invariants`], except that the O(m) back-reference recounts of the mapped
    /// VMOs (m = a VMO's mappings in every address space) stop once `max_backrefs` back-references
    /// were examined, so the cost stays O(n log n + present entries + max_backrefs) however
    /// widely the VMOs are shared.
    pub fn check_invariants_bounded(&self, max_backrefs: usize) -> Result<(), String> {
        let tree = self.tree.lock();
        let seen = self.check_tree(&tree)?;
        self.check_no_stray_ptes(&tree)?;
        let live = tree.slots.iter().filter(|s| s.node.is_some()).count();
        if live != seen.vmar_count {
            return Err(format!(
                "{live} live VMAR nodes but {} reachable from the root",
                seen.vmar_count
            ));
        }
        if tree.next_uid < seen.uids.last().copied().unwrap_or(0) {
            return Err("uid counter behind a live uid".into());
        }
        let total = self.check_backref_counts(&seen.per_vmo, max_backrefs)?;
        debug_assert_eq!(total, seen.mapping_count);
        Ok(())
    }

    /// Walks every VMAR reachable from the root (iteratively): each gap tree's invariants and
    /// span, children agreeing with their parent and within its CAN_MAP, unique mapping uids, and
    /// each mapping with its page-table entries ([`Self::check_mapping`]).
    fn check_tree(&self, tree: &Tree) -> Result<Seen, String> {
        let mut seen = Seen::default();
        let mut stack = alloc::vec![tree.root];
        while let Some(id) = stack.pop() {
            seen.vmar_count += 1;
            let node = tree
                .node(id)
                .ok_or_else(|| format!("dangling region id {id:?}"))?;
            node.children.check_invariants()?;
            if node.children.range_base() != node.base || node.children.range_end() != node.end() {
                return Err(format!("vmar {:#x}: gap tree span differs", node.base));
            }
            for (base, len, child) in node.children.iter() {
                match child {
                    Child::Vmar(c) => {
                        let sub = tree.node(*c).ok_or_else(|| format!("stale child {c:?}"))?;
                        if sub.base != base || sub.len != len || sub.parent != Some(id) {
                            return Err(format!("vmar {base:#x}: node disagrees with parent"));
                        }
                        if !node.flags.can_map.contains(sub.flags.can_map) {
                            return Err(format!("vmar {base:#x}: exceeds parent's CAN_MAP"));
                        }
                        stack.push(*c);
                    }
                    Child::Mapping(m) => {
                        seen.mapping_count += 1;
                        if !seen.uids.insert(m.uid) {
                            return Err(format!("mapping {base:#x}: duplicate uid {}", m.uid));
                        }
                        if !node.flags.can_map.contains(m.max_perms) {
                            return Err(format!("mapping {base:#x}: ceiling above CAN_MAP"));
                        }
                        seen.per_vmo
                            .entry(Arc::as_ptr(&m.vmo) as *const u8 as usize)
                            .or_insert_with(|| (m.vmo.clone(), 0))
                            .1 += 1;
                        self.check_mapping(base, len, m, &mut seen.zero_checked)?;
                    }
                }
            }
        }
        Ok(seen)
    }

    /// No entry outside the mappings: every present entry of the space lies inside one. Checked
    /// entry by entry in one hold of the MMU lock: operations on a VMO mapped here (a decommit,
    /// a commit removing zero-frame entries, a copy-on-write break) remove entries of this space
    /// under the VMO and MMU locks alone, so on several CPUs the count of entries met per mapping
    /// by [`Self::check_mapping`] may be higher than a later total.
    fn check_no_stray_ptes(&self, tree: &Tree) -> Result<(), String> {
        let mmu = self.mmu.lock();
        let mut total = 0usize;
        let mut stray = None;
        let pages = self.config.size / PAGE_SIZE;
        mmu.for_each_mapped(self.config.base, pages, &mut |va, _, _| {
            total += 1;
            if stray.is_none() && tree.find_mapping(tree.root, va).is_none() {
                stray = Some(va);
            }
        });
        if let Some(va) = stray {
            return Err(format!(
                "{total} present page-table entries, one outside the mappings at {va:#x}"
            ));
        }
        Ok(())
    }

    /// No stale back-references: each VMO of `per_vmo` names exactly the mappings that map it
    /// here, recounted until `max_backrefs` back-references were examined. Returns the mappings
    /// accounted for.
    fn check_backref_counts(
        &self,
        per_vmo: &BTreeMap<usize, (Arc<Vmo>, usize)>,
        max_backrefs: usize,
    ) -> Result<usize, String> {
        let mut total = 0usize;
        let mut budget = max_backrefs;
        for (vmo, count) in per_vmo.values() {
            let inner = vmo.lock();
            let Some(left) = budget.checked_sub(inner.mappings.len()) else {
                total += count;
                continue;
            };
            budget = left;
            inner.mappings.check()?;
            // This space's operations hold its tree lock (held here) while they hold promises;
            // other spaces' operations may hold theirs now, on other CPUs.
            let reserved = inner.mappings.reserved_by(self.id);
            if reserved != 0 {
                return Err(format!(
                    "vmo {}: {reserved} back-reference slots still reserved after an operation",
                    vmo.id()
                ));
            }
            let refs = inner.mappings.count_for(self.id);
            drop(inner);
            if refs != *count {
                return Err(format!(
                    "vmo {}: {refs} back-references for {count} mappings",
                    vmo.id()
                ));
            }
            total += count;
        }
        Ok(total)
    }

    /// Checks one mapping and its page-table entries. The first time an entry maps the zero frame (`zero_checked` false), the zero
    /// frame's contents are checked to be zeros.
    fn check_mapping(
        &self,
        base: usize,
        len: usize,
        m: &VmMapping,
        zero_checked: &mut bool,
    ) -> Result<(), String> {
        Self::check_mapping_shape(base, len, m)?;
        let inner = m.vmo.lock();
        match inner.mappings.get(self.backref_key(m.vmo_offset, m.uid)) {
            Some(r) if r.base == base && r.size == len => {}
            _ => {
                return Err(format!(
                    "mapping {base:#x}: back-reference missing or stale"
                ))
            }
        }
        let page = PAGE_SIZE as u64;
        let mmu = self.mmu.lock();
        let want = self.pte_flags(m.perms);
        // In a VMO of a clone family, or one whose mappings may hold zero-frame entries, a page
        // may be mapped without write access where the mapping has it (a page waiting for its
        // write fault: a protect grants no WRITE there), and must be when another VMO holds its
        // frame too.
        let cow = m.vmo.write_needs_fault();
        let read_only = self.pte_flags(m.perms.difference(MmuFlags::WRITE));
        let zero_frame = m.vmo.phys().zero_frame();
        let mut bad = None;
        let mut zero_seen = false;
        mmu.for_each_mapped(base, len / PAGE_SIZE, &mut |vaddr, paddr, flags| {
            let index = (m.vmo_offset + (vaddr - base) as u64) / page;
            let frame = inner.pages.get(&index).copied();
            if let Some(t) = inner.transition.filter(|t| t.index == index) {
                // A page changing frame in steps: read-only, mapping the new frame, or the old
                // one (the zero frame for a commit) where the walk has not been yet.
                let old = t.old.unwrap_or(zero_frame);
                let ok = (frame == Some(paddr) || paddr == old)
                    && flags == read_only
                    && !m.perms.is_empty();
                if bad.is_none() && !ok {
                    bad = Some(format!(
                        "pte {vaddr:#x}: {paddr:?} {flags:?} during the frame change of page {index} (new {frame:?}, old {old:?}, {read_only:?})"
                    ));
                }
                return;
            }
            if paddr == zero_frame {
                // Legal only for a page of the VMO that is not committed, read-only, in a VMO
                // whose commits remove zero-frame entries.
                zero_seen = true;
                let ok = frame.is_none() && index < inner.page_count && flags == read_only;
                if bad.is_none() && !(ok && zero_entries_allowed(m)) {
                    bad = Some(format!(
                        "pte {vaddr:#x}: the zero frame {flags:?}, but the mapping says {frame:?} {read_only:?} (page {index} of {})",
                        inner.page_count
                    ));
                }
                return;
            }
            let shared = m.vmo.frame_is_shared(paddr);
            let flags_ok = (flags == want && !shared) || (flags == read_only && cow);
            if bad.is_none() && (frame != Some(paddr) || !flags_ok || m.perms.is_empty()) {
                bad = Some(format!(
                    "pte {vaddr:#x}: {paddr:?} {flags:?}, but the mapping says {frame:?} {want:?}"
                ));
            }
        });
        if let Some(e) = bad {
            return Err(e);
        }
        if zero_seen && !*zero_checked {
            *zero_checked = true;
            check_zero_frame(m.vmo.phys(), zero_frame)?;
        }
        Ok(())
    }

    /// A mapping's own fields: permissions within its maximum, page-aligned, a VMO window that
    /// does not overflow.
    fn check_mapping_shape(base: usize, len: usize, m: &VmMapping) -> Result<(), String> {
        if !m.max_perms.contains(m.perms) {
            return Err(format!("mapping {base:#x}: perms above max"));
        }
        if !len.is_multiple_of(PAGE_SIZE) || !m.vmo_offset.is_multiple_of(PAGE_SIZE as u64) {
            return Err(format!("mapping {base:#x}: unaligned"));
        }
        m.vmo_offset
            .checked_add(len as u64)
            .ok_or_else(|| format!("mapping {base:#x}: vmo window overflows"))?;
        Ok(())
    }
}

/// May a mapping hold read-only zero-frame entries at all: a mapping with some access, of a
/// VMO whose commits remove zero-frame entries (the entry's own conditions are the caller's).
fn zero_entries_allowed(m: &VmMapping) -> bool {
    !m.perms.is_empty() && m.vmo.zero_mapped()
}

/// The zero frame holds only zeros.
fn check_zero_frame(phys: &dyn PhysMem, zero_frame: PhysAddr) -> Result<(), String> {
    let mut contents = alloc::vec![0u8; PAGE_SIZE];
    phys.read(zero_frame, 0, &mut contents);
    match contents.iter().position(|&b| b != 0) {
        Some(at) => Err(format!(
            "the zero frame {zero_frame:?} holds {:#x} at byte {at}",
            contents[at]
        )),
        None => Ok(()),
    }
}

/// What the walk of [`AddressSpace::check_tree`] counted.
#[derive(Default)]
struct Seen {
    vmar_count: usize,
    mapping_count: usize,
    uids: BTreeSet<u64>,
    /// Mappings per VMO (by address), to compare with each VMO's back-references.
    per_vmo: BTreeMap<usize, (Arc<Vmo>, usize)>,
    /// The zero frame's contents were checked.
    zero_checked: bool,
}
