//! `zx_vmar_destroy`: a region and its subtree go, and [`Vmar::empty_step`], the bounded step that
//! empties a subtree first (destroy, process teardown, an unmap over a sub-region).

use super::*;

impl Vmar {
    /// `zx_vmar_destroy`: unmaps everything inside and destroys every sub-region, recursively;
    /// the region's range returns to its parent. Handles stay valid; operations on them return
    /// BAD_STATE.
    ///
    /// Errors: `vmar_rights` lacks OP_CHILDREN (ACCESS_DENIED); the root VMAR (NOT_SUPPORTED);
    /// already destroyed (BAD_STATE).
    pub fn destroy(&self, vmar_rights: u32) -> ZxResult {
        if vmar_rights & ZX_RIGHT_OP_CHILDREN == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        if self.is_root {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        let mut tree = self.aspace.tree.lock();
        if tree.node(self.id).is_none() {
            return Err(Status::ERR_BAD_STATE);
        }
        // Lowers usage: no quota, no reservation, no allocation.
        self.aspace.unmap_ptes_now(self.base, self.len);
        let mut batch = Batch::new();
        destroy_subtree(&self.aspace, &mut tree, self.id, &mut batch);
        self.aspace.finish(&mut tree, batch);
        Ok(())
    }

    /// One bounded step of emptying this VMAR: removes up to `max` regions of its subtree
    /// (whole mappings, and sub-VMARs once empty, deepest first in address order) and returns
    /// how many; 0 when it is empty. The VMAR itself stays. The steps of a destroy, a process
    /// teardown, or an unmap over a sub-VMAR (the syscall layer calls it with preemption points
    /// in between; other threads may see the subtree partly emptied, as a Zircon destroy in
    /// progress). O(`max` + nesting depth) under the tree lock. `ERR_BAD_STATE` when destroyed.
    pub fn empty_step(&self, max: usize) -> ZxResult<usize> {
        let mut tree = self.aspace.tree.lock();
        tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        let mut batch = Batch::new();
        let removed = empty_subtree_step(&self.aspace, &mut tree, self.id, max, &mut batch);
        self.aspace.finish(&mut tree, batch);
        Ok(removed)
    }
}
