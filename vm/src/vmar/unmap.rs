//! `zx_vmar_unmap`: removing the mappings and sub-regions of a range, whole or in bounded steps.

use super::*;

impl Vmar {
    /// `zx_vmar_unmap`: unmaps `[addr, addr + len)`: mappings partly inside are cut (split when
    /// the range is in their middle), sub-regions wholly inside are destroyed.
    ///
    /// `len` is rounded up to whole pages. Errors: `addr` unaligned, `len` 0 after rounding
    /// (INVALID_ARGS); destroyed (BAD_STATE); range not inside this region (INVALID_ARGS); a
    /// sub-region only partly inside, or any sub-region when `vmar_rights` lacks OP_CHILDREN
    /// (INVALID_ARGS). A range holding nothing is OK (Zircon). Nothing changes on error.
    pub fn unmap(&self, addr: usize, len: usize, vmar_rights: u32) -> ZxResult {
        self.unmap_step(addr, len, vmar_rights, usize::MAX)
            .map(drop)
    }

    /// One bounded step of [`Vmar::unmap`]: the same checks over the whole range (so an error
    /// changes nothing), then only the part of the range up to the end of its `max_children`-th
    /// child (mapping or sub-region) is unmapped; a sub-region among those children that still
    /// holds regions is emptied first, `max_children` regions a step (see [`Vmar::empty_step`]).
    /// Returns where the rest starts (`Some(addr)`, page-aligned, to call again with the
    /// remaining length) or `None` when done. The syscall layer puts preemption points between
    /// steps; other threads may see the partial unmap.
    pub fn unmap_step(
        &self,
        addr: usize,
        len: usize,
        vmar_rights: u32,
        max_children: usize,
    ) -> ZxResult<Option<usize>> {
        let op_children = vmar_rights & ZX_RIGHT_OP_CHILDREN != 0;
        if !page_aligned(addr) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        // ZIRCON (deviation from the spec text, which calls an unaligned len INVALID_ARGS): len is
        // rounded up to whole pages, and one rounding to 0 is INVALID_ARGS (`VmAddressRegion::Unmap`;
        // core tests `Vmar.UnalignedLenTest`, `Vmar.InvalidArgsTest`).
        let len = round_up_page(len).unwrap_or(0);
        if len == 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let mut tree = self.aspace.tree.lock();
        let end = self.check_unmap_range(&tree, addr, len, op_children)?;
        // ZIRCON (deviation from the spec text, which lists NOT_FOUND "could not find the requested
        // mapping"): a range holding nothing is OK, as `VmAddressRegion::UnmapInternalLocked`
        // returns; core test `Vmar.UnmapBaseNotMappedTest` unmaps ranges starting in a gap.
        if self.empty_full_sub_vmar(&mut tree, addr, end, max_children) {
            return Ok(Some(addr));
        }
        // This step covers the range up to the end of its `max_children`-th child.
        let node = tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        let cut_end = match max_children.checked_sub(1) {
            Some(n) => node
                .children
                .overlapping(addr, end)
                .nth(n)
                .map_or(end, |(base, clen, _)| (base + clen).min(end)),
            None => end,
        };
        // Check phase: an unmap adds a region only when it cuts the middle out of one mapping;
        // otherwise it adds none and no quota refuses it.
        let cut = CutPlan::new(&tree, self.id, addr, cut_end);
        let now = tree.regions(self.aspace.mapping_count());
        tree.admit(now, cut.delta())?;
        let mut slots = Slots::new(self.aspace.id());
        cut.reserve(&mut slots)?;
        let node = tree.node_mut(self.id).ok_or(Status::ERR_BAD_STATE)?;
        if !node.children.reserve_inserts(cut.inserts()) {
            return Err(Status::ERR_NO_MEMORY);
        }
        // Apply phase: cannot fail.
        let mut batch = Batch::new();
        unmap_range(
            &self.aspace,
            &mut tree,
            self.id,
            addr,
            cut_end,
            &mut slots,
            &mut batch,
        );
        self.aspace.finish(&mut tree, batch);
        Ok((cut_end < end).then_some(cut_end))
    }

    /// The checks of [`Vmar::unmap`] under the tree lock, in order: destroyed (BAD_STATE); range
    /// not inside this region, or a sub-region in it only partly inside or without OP_CHILDREN
    /// (INVALID_ARGS). Returns the end of the range.
    fn check_unmap_range(
        &self,
        tree: &Tree,
        addr: usize,
        len: usize,
        op_children: bool,
    ) -> ZxResult<usize> {
        let node = tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        let end = addr.checked_add(len).ok_or(Status::ERR_INVALID_ARGS)?;
        if addr < node.base || end > node.end() {
            return Err(Status::ERR_INVALID_ARGS);
        }
        for (base, clen, child) in node.children.overlapping(addr, end) {
            if let Child::Vmar(_) = child {
                if !op_children || base < addr || base + clen > end {
                    return Err(Status::ERR_INVALID_ARGS);
                }
            }
        }
        Ok(end)
    }

    /// In a bounded step (`max_children` not `usize::MAX`): a sub-VMAR among the step's children
    /// of `[addr, end)` that still holds regions is emptied first, `max_children` regions a step
    /// (a bounded step must not destroy a whole subtree). True when this step did that.
    fn empty_full_sub_vmar(
        &self,
        tree: &mut Tree,
        addr: usize,
        end: usize,
        max_children: usize,
    ) -> bool {
        if max_children == usize::MAX {
            return false;
        }
        let Some(node) = tree.node(self.id) else {
            return false;
        };
        let full = node
            .children
            .overlapping(addr, end)
            .take(max_children)
            .find_map(|(_, _, child)| match child {
                Child::Vmar(v) => tree
                    .node(*v)
                    .is_some_and(|n| !n.children.is_empty())
                    .then_some(*v),
                Child::Mapping(_) => None,
            });
        let Some(sub) = full else {
            return false;
        };
        let mut batch = Batch::new();
        empty_subtree_step(&self.aspace, tree, sub, max_children, &mut batch);
        self.aspace.finish(tree, batch);
        true
    }
}
