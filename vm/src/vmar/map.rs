//! `zx_vmar_map`: a new mapping of a VMO window, with SPECIFIC_OVERWRITE and MAP_RANGE.

use super::*;

impl Vmar {
    /// `zx_vmar_map`: maps `len` bytes of `vmo` from `vmo_offset`; returns the mapping's base.
    /// `vmar_rights` / `vmo_rights` are the rights of the two handles; the permissions both allow
    /// (capped by this VMAR's CAN_MAP_*) are recorded in the mapping as the ceiling for later
    /// protect calls, even after the handles are closed.
    ///
    /// Order of checks (Zircon's `vmar_map_common`, dispatcher, `CreateVmMapping`,
    /// `CreateSubVmarInternal`): VMO handle lacks MAP (ACCESS_DENIED); PERM_READ_IF_XOM_UNSUPPORTED
    /// adds READ; WRITE/EXECUTE without READ (INVALID_ARGS); MAP_RANGE with SPECIFIC_OVERWRITE
    /// (INVALID_ARGS); CAN_MAP_* in options (INVALID_ARGS); a PERM_* not allowed by both handles
    /// (ACCESS_DENIED); unknown bits / bad ALIGN (INVALID_ARGS); REQUIRE_NON_RESIZABLE on a
    /// resizable VMO (NOT_SUPPORTED); without ALLOW_FAULTS: resizable or discardable VMO
    /// (NOT_SUPPORTED); COMPACT / CAN_MAP_SPECIFIC
    /// (INVALID_ARGS); `vmo_offset` unaligned (INVALID_ARGS); `len` rounded up to pages, overflowing
    /// there or in `vmo_offset + len` (OUT_OF_RANGE); then the placement checks of
    /// [`Vmar::allocate`], with overlap -> ALREADY_EXISTS and no room -> NO_RESOURCES; then, without
    /// ALLOW_FAULTS, a window past the VMO's end (BUFFER_TOO_SMALL, the spec's); then the
    /// replacement under SPECIFIC_OVERWRITE.
    #[allow(clippy::too_many_arguments)]
    pub fn map(
        &self,
        options: u32,
        vmar_offset: usize,
        vmo: &Arc<Vmo>,
        vmo_offset: u64,
        len: usize,
        vmar_rights: u32,
        vmo_rights: u32,
    ) -> ZxResult<usize> {
        let mut args = MapArgs::decode(options, vmo, vmo_offset, len, vmar_rights, vmo_rights)?;
        // A slice is mapped as the window of its root VMO: the mapping holds the root, so faults,
        // decommits and back-references work on the VMO that holds the pages. DEVIATION: a
        // window past the slice's end is BUFFER_TOO_SMALL even with ALLOW_FAULTS (it would
        // reach the root's pages beyond the slice).
        let vmo = match vmo.slice_of() {
            Some((root, base)) => {
                if args.vmo_offset + args.len as u64 > vmo.size() {
                    return Err(Status::ERR_BUFFER_TOO_SMALL);
                }
                args.vmo_offset += base;
                root
            }
            None => vmo,
        };
        let mut tree = self.aspace.tree.lock();
        let (base, overwrite) = self.place_mapping(&mut tree, vmar_offset, vmo, &args)?;
        let mut slots = self.reserve_for_map(&mut tree, vmo, base, args.len, overwrite)?;
        // Apply phase: cannot fail.
        self.insert_mapping(&mut tree, vmo, &args, base, overwrite, &mut slots);
        if args.map_range {
            self.map_range_or_undo(&mut tree, base, args.len)?;
        }
        Ok(base)
    }

    /// After the argument checks, under the tree lock: the placement checks of
    /// [`Vmar::allocate`], a sub-VMAR under a SPECIFIC_OVERWRITE range, then BUFFER_TOO_SMALL.
    /// Returns the base and whether mappings there are replaced.
    fn place_mapping(
        &self,
        tree: &mut Tree,
        vmar_offset: usize,
        vmo: &Vmo,
        args: &MapArgs,
    ) -> ZxResult<(usize, bool)> {
        let len = args.len;
        let spot = self.choose_spot(
            tree,
            vmar_offset,
            len,
            args.align_pow2,
            args.vmar_opts,
            args.perms,
            Status::ERR_NO_RESOURCES,
        )?;
        if let Spot::Overwrite(base) = spot {
            // ZIRCON: any sub-VMAR in the range, even one wholly inside it, makes the overwrite
            // fail (it unmaps with can_destroy_regions = false). Checked before anything changes,
            // so a failed overwrite changes nothing.
            let node = tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
            if node
                .children
                .overlapping(base, base + len)
                .any(|(_, _, c)| matches!(c, Child::Vmar(_)))
            {
                return Err(Status::ERR_INVALID_ARGS);
            }
        }
        // SPEC: without ALLOW_FAULTS a window past the end of a (non-resizable) VMO is
        // BUFFER_TOO_SMALL. Zircon has no such check; it comes after every argument and placement
        // check so that each status Zircon's tests expect for a bad argument still wins (e.g.
        // OUT_OF_RANGE for a len rounding to 0, INVALID_ARGS for a len beyond the region).
        if !args.allow_faults && args.vmo_offset + len as u64 > vmo.size() {
            return Err(Status::ERR_BUFFER_TOO_SMALL);
        }
        Ok(match spot {
            Spot::Free(base) => (base, false),
            Spot::Overwrite(base) => (base, true),
        })
    }

    /// Check phase: the quota (one mapping, plus what the overwrite splits, minus what it
    /// removes), then everything the apply phase will need (back-reference slots, tree room).
    fn reserve_for_map(
        &self,
        tree: &mut Tree,
        vmo: &Arc<Vmo>,
        base: usize,
        len: usize,
        overwrite: bool,
    ) -> ZxResult<Slots> {
        let cut = if overwrite {
            CutPlan::new(tree, self.id, base, base + len)
        } else {
            CutPlan::default()
        };
        let now = tree.regions(self.aspace.mapping_count());
        tree.admit(now, 1 + cut.delta())?;
        let mut slots = Slots::new(self.aspace.id());
        slots.reserve(vmo)?;
        cut.reserve(&mut slots)?;
        let node = tree.node_mut(self.id).ok_or(Status::ERR_BAD_STATE)?;
        if !node.children.reserve_inserts(1 + cut.inserts()) {
            return Err(Status::ERR_NO_MEMORY);
        }
        Ok(slots)
    }

    /// Apply phase (cannot fail): removes what the overwrite replaces, then inserts the new
    /// mapping, its back-reference first.
    fn insert_mapping(
        &self,
        tree: &mut Tree,
        vmo: &Arc<Vmo>,
        args: &MapArgs,
        base: usize,
        overwrite: bool,
        slots: &mut Slots,
    ) {
        let len = args.len;
        let mut batch = Batch::new();
        if overwrite {
            unmap_range(
                &self.aspace,
                tree,
                self.id,
                base,
                base + len,
                slots,
                &mut batch,
            );
        }
        let max_perms = args.allowed.intersection(node_can_map(tree, self.id));
        let uid = tree.new_uid();
        let mapping = VmMapping {
            vmo: vmo.clone(),
            vmo_offset: args.vmo_offset,
            perms: args.perms,
            max_perms,
            private_copy: false,
            uid,
            _niche: LayoutNiche::Marker,
        };
        // The back-reference exists before any page-table entry does.
        self.aspace.backref_add(slots, &mapping, base, len);
        let Some(node) = tree.node_mut(self.id) else {
            apply_failed("VMAR lookup")
        };
        if node
            .children
            .insert(base, len, Child::Mapping(mapping))
            .is_err()
        {
            apply_failed("gap-tree insert");
        }
        batch.created += 1;
        self.aspace.finish(tree, batch);
    }

    /// MAP_RANGE: maps the committed pages of the new mapping at `base`; when that fails, the
    /// mapping is destroyed (as Zircon does) and the error returned.
    fn map_range_or_undo(&self, tree: &mut Tree, base: usize, len: usize) -> ZxResult {
        if let Some((_, _, Child::Mapping(m))) =
            tree.node(self.id).and_then(|n| n.children.find(base))
        {
            if let Err(status) = self.aspace.map_committed(m, base, base, base + len) {
                // Removing a whole mapping needs no reservation.
                let mut batch = Batch::new();
                unmap_range(
                    &self.aspace,
                    tree,
                    self.id,
                    base,
                    base + len,
                    &mut Slots::new(self.aspace.id()),
                    &mut batch,
                );
                self.aspace.finish(tree, batch);
                return Err(status);
            }
        }
        Ok(())
    }
}

/// What `zx_vmar_map`'s options and handle rights come to, once every argument check passed.
struct MapArgs {
    /// The mapping's protection.
    perms: MmuFlags,
    /// What both handles allow: the mapping's ceiling before CAN_MAP caps it.
    allowed: MmuFlags,
    /// MAP_RANGE was given (taken out of the options).
    map_range: bool,
    /// ALLOW_FAULTS was given.
    allow_faults: bool,
    /// The placement options (SPECIFIC, SPECIFIC_OVERWRITE, OFFSET_IS_UPPER_LIMIT).
    vmar_opts: u32,
    /// ALIGN, as log2 bytes (0: page alignment).
    align_pow2: u8,
    /// Offset of the mapping's first byte in the VMO.
    vmo_offset: u64,
    /// `len` rounded up to whole pages.
    len: usize,
}

impl MapArgs {
    /// The argument checks of [`Vmar::map`], in Zircon's order (see there), before the tree lock.
    fn decode(
        options: u32,
        vmo: &Vmo,
        vmo_offset: u64,
        len: usize,
        vmar_rights: u32,
        vmo_rights: u32,
    ) -> ZxResult<MapArgs> {
        if vmo_rights & ZX_RIGHT_MAP == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let mut options = apply_xom(options);
        if !is_valid_protection(options) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let map_range = options & ZX_VM_MAP_RANGE != 0;
        options &= !ZX_VM_MAP_RANGE;
        if map_range && options & ZX_VM_SPECIFIC_OVERWRITE != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if options & CAN_MAP_RWX != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let allowed = perms_from_rights(vmo_rights).intersection(perms_from_rights(vmar_rights));
        let perms = perms_of(options);
        if !allowed.contains(perms) {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let split = split_options(options)?;
        if split.vmar & ZX_VM_REQUIRE_NON_RESIZABLE != 0 && vmo.is_resizable() {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        let allow_faults = split.vmar & ZX_VM_ALLOW_FAULTS != 0;
        if !allow_faults && (vmo.is_resizable() || vmo.is_discardable()) {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        let vmar_opts = split.vmar & !(ZX_VM_REQUIRE_NON_RESIZABLE | ZX_VM_ALLOW_FAULTS);
        if vmar_opts & !(ZX_VM_SPECIFIC | ZX_VM_SPECIFIC_OVERWRITE | ZX_VM_OFFSET_IS_UPPER_LIMIT)
            != 0
        {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if !vmo_offset.is_multiple_of(PAGE_SIZE as u64) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        // ZIRCON (deviation from the spec text, which calls an unaligned len INVALID_ARGS): len is
        // rounded up to whole pages (`VmAddressRegion::CreateVmMapping`; core test
        // `Vmar.UnalignedLenMapTest` maps 4 * PAGE - 1 bytes and reads the fourth page). A len that
        // rounds past the top of the address space (e.g. SIZE_MAX - PAGE + 2) is OUT_OF_RANGE
        // (`Vmar.InvalidArgsTest`, "size rounds up to 0"); len 0 stays INVALID_ARGS (in the
        // placement checks).
        let len = round_up_page(len).ok_or(Status::ERR_OUT_OF_RANGE)?;
        if vmo_offset.checked_add(len as u64).is_none() {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        Ok(MapArgs {
            perms,
            allowed,
            map_range,
            allow_faults,
            vmar_opts,
            align_pow2: split.align_pow2,
            vmo_offset,
            len,
        })
    }
}
