//! `zx_vmar_allocate`: a new sub-region, placed as its options ask.

use super::*;

impl Vmar {
    /// `zx_vmar_allocate`: creates a sub-region of `size` bytes; returns its handle object and
    /// base address. `vmar_rights` are the rights of the parent handle.
    ///
    /// Order of checks (Zircon's): CAN_MAP_* need the matching handle right (ACCESS_DENIED);
    /// unknown option bits or a bad ALIGN value (INVALID_ARGS); PERM_* given (INVALID_ARGS);
    /// `size` not page-aligned or a mapping-only flag (INVALID_ARGS); destroyed (BAD_STATE);
    /// `size` 0 (INVALID_ARGS); CAN_MAP_* beyond the parent's (ACCESS_DENIED); SPECIFIC with
    /// OFFSET_IS_UPPER_LIMIT, non-zero offset without either, unaligned offset (INVALID_ARGS);
    /// SPECIFIC / upper limit without the parent's CAN_MAP_SPECIFIC (ACCESS_DENIED); out of the
    /// parent's bounds or misaligned for ALIGN_* (INVALID_ARGS); overlap (ALREADY_EXISTS); no
    /// room ([`ALLOCATE_NO_SPACE_STATUS`]).
    pub fn allocate(
        &self,
        options: u32,
        offset: usize,
        size: usize,
        vmar_rights: u32,
    ) -> ZxResult<(Vmar, usize)> {
        let needed = rights_for(can_map_of(options));
        if vmar_rights & needed != needed {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let split = split_options(options)?;
        if !split.perms.is_empty() {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if !page_aligned(size) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let allowed = ZX_VM_SPECIFIC
            | ZX_VM_CAN_MAP_SPECIFIC
            | ZX_VM_COMPACT
            | CAN_MAP_RWX
            | ZX_VM_OFFSET_IS_UPPER_LIMIT;
        if split.vmar & !allowed != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let flags = VmarFlags {
            can_map: can_map_of(options),
            // ZIRCON/SPEC: asking for CAN_MAP_SPECIFIC is not an error when the parent lacks it.
            can_map_specific: options & ZX_VM_CAN_MAP_SPECIFIC != 0,
            compact: options & ZX_VM_COMPACT != 0,
        };
        let mut tree = self.aspace.tree.lock();
        let spot = self.choose_spot(
            &mut tree,
            offset,
            size,
            split.align_pow2,
            split.vmar,
            flags.can_map,
            ALLOCATE_NO_SPACE_STATUS,
        )?;
        let Spot::Free(base) = spot else {
            // SPECIFIC_OVERWRITE was rejected above, so only a free spot can come back.
            return Err(Status::ERR_INTERNAL);
        };
        // Check phase: the quota, then everything the apply phase will need.
        let now = tree.regions(self.aspace.mapping_count());
        tree.admit(now, 1)?;
        tree.reserve_node()?;
        let parent = tree.node_mut(self.id).ok_or(Status::ERR_BAD_STATE)?;
        if !parent.children.reserve_inserts(1) {
            return Err(Status::ERR_NO_MEMORY);
        }
        // Apply phase: cannot fail.
        let Some(id) = tree.alloc_node(VmarNode {
            base,
            len: size,
            flags,
            parent: Some(self.id),
            children: GapTree::new(base, size),
        }) else {
            apply_failed("VMAR arena slot")
        };
        let parent = tree.node_mut(self.id).ok_or(Status::ERR_BAD_STATE)?;
        if parent.children.insert(base, size, Child::Vmar(id)).is_err() {
            apply_failed("gap-tree insert");
        }
        let child = Vmar::new(self.aspace.clone(), id, base, size, flags, false);
        Ok((child, base))
    }
}
