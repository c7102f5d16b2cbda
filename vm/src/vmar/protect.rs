//! `zx_vmar_protect`: new permissions for the mappings of a range (split, change, re-merge), and
//! the fast path for exactly one mapping that joins no neighbour.

use super::*;

impl Vmar {
    /// `zx_vmar_protect`: sets the protection of every mapping page in `[addr, addr + len)`.
    ///
    /// Order of checks: PERM_READ_IF_XOM_UNSUPPORTED adds READ; each PERM_* needs the matching
    /// handle right (ACCESS_DENIED); WRITE/EXECUTE without READ (INVALID_ARGS); `addr` unaligned
    /// (INVALID_ARGS); any non-PERM option or ALIGN (INVALID_ARGS); `len` 0 after rounding up to
    /// pages (INVALID_ARGS); destroyed (BAD_STATE); range outside this region (INVALID_ARGS); a
    /// sub-region (even an empty one) in the range when `vmar_rights` lacks OP_CHILDREN
    /// (INVALID_ARGS); then, walking the mappings in address order (at any depth): a hole
    /// (NOT_FOUND), a mapping whose ceiling lacks a requested permission (ACCESS_DENIED), a mapping
    /// inside a sub-region whose permissions would grow (ACCESS_DENIED). All checks precede any
    /// change: on error nothing changes.
    pub fn protect(&self, options: u32, addr: usize, len: usize, vmar_rights: u32) -> ZxResult {
        let (new_perms, len) = decode_protect(options, addr, len, vmar_rights)?;
        let op_children = vmar_rights & ZX_RIGHT_OP_CHILDREN != 0;
        let mut tree = self.aspace.tree.lock();
        let node = tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        let end = addr.checked_add(len).ok_or(Status::ERR_INVALID_ARGS)?;
        if addr < node.base || end > node.end() {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if let Some(done) = self.protect_one(&mut tree, addr, end, new_perms) {
            return done;
        }
        // SPEC: "some subrange of the requested range is occupied by a subregion and handle did
        // not have ZX_RIGHT_OP_CHILDREN" is INVALID_ARGS, even for a sub-region holding no mapping
        // (where the walk below would only see a hole).
        let node = tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        if !op_children
            && node
                .children
                .overlapping(addr, end)
                .any(|(_, _, c)| matches!(c, Child::Vmar(_)))
        {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let plan = self.plan_protect(&tree, addr, end, new_perms, op_children)?;
        let mut slots = plan.reserve(&mut tree, self.aspace.mapping_count(), self.aspace.id())?;
        self.apply_protect(&mut tree, addr, end, new_perms, &mut slots);
        Ok(())
    }

    /// The fast path: the range `[addr, end)` is exactly one mapping, a direct child, that joins
    /// neither neighbour after the change, so nothing is split or merged (nothing to admit or
    /// reserve). `None` when the range is anything else (the general path handles it); the
    /// checks give the same statuses as the general path's. Two tree lookups instead of about
    /// ten.
    fn protect_one(
        &self,
        tree: &mut Tree,
        addr: usize,
        end: usize,
        new_perms: MmuFlags,
    ) -> Option<ZxResult> {
        let node = tree.node(self.id)?;
        let Some((prev, (base, mlen, Child::Mapping(m)), next)) =
            node.children.find_with_neighbours(addr)
        else {
            return None;
        };
        if base != addr || base + mlen != end {
            return None;
        }
        if !m.max_perms.contains(new_perms) {
            return Some(Err(Status::ERR_ACCESS_DENIED));
        }
        if m.perms == new_perms {
            return Some(Ok(()));
        }
        let mut piece = Piece::of(self.id, base, mlen, m);
        piece.perms = new_perms;
        let joins_left = match prev {
            Some((b, l, Child::Mapping(pm))) => Piece::of(self.id, b, l, pm).joins(&piece),
            _ => false,
        };
        let joins_right = match next {
            Some((b, l, Child::Mapping(nm))) => piece.joins(&Piece::of(self.id, b, l, nm)),
            _ => false,
        };
        if joins_left || joins_right {
            return None;
        }
        let Some(node) = tree.node_mut(self.id) else {
            return Some(Err(Status::ERR_INTERNAL));
        };
        let mut cow = false;
        if let Some((_, Child::Mapping(m))) = node.children.get_mut(base) {
            m.perms = new_perms;
            cow = m.vmo.write_needs_fault();
        }
        let mut batch = Batch::new();
        self.aspace
            .protect_ptes(&mut batch, base, mlen, new_perms, cow);
        self.aspace.finish(tree, batch);
        Some(Ok(()))
    }

    /// Check phase, one walk over the mappings of `[addr, end)` in address order: the statuses,
    /// which mappings change, where the range cuts one (at most at both ends), and which changed
    /// pieces will merge with a neighbour (so the quota is charged exactly what the call adds).
    fn plan_protect(
        &self,
        tree: &Tree,
        addr: usize,
        end: usize,
        new_perms: MmuFlags,
        op_children: bool,
    ) -> ZxResult<ProtectPlan> {
        let mut cursor = addr;
        let mut prev: Option<Piece> = None;
        let mut first: Option<Edge> = None;
        let mut last: Option<Edge> = None;
        let mut merges = 0isize;
        while let Some((parent, base, mlen)) = tree.next_mapping(self.id, cursor, end) {
            if base > cursor {
                return Err(Status::ERR_NOT_FOUND);
            }
            let m = mapping_at(tree, parent, base).ok_or(Status::ERR_INTERNAL)?;
            if !m.max_perms.contains(new_perms) {
                return Err(Status::ERR_ACCESS_DENIED);
            }
            if parent != self.id {
                if !op_children {
                    return Err(Status::ERR_INVALID_ARGS);
                }
                // Through a parent VMAR, permissions may only shrink.
                if !m.perms.contains(new_perms) {
                    return Err(Status::ERR_ACCESS_DENIED);
                }
            }
            let (ps, pe) = (base.max(addr), (base + mlen).min(end));
            let piece = Piece {
                parent,
                start: ps,
                end: pe,
                vmo: Arc::as_ptr(&m.vmo),
                vmo_offset: m.vmo_offset + (ps - base) as u64,
                perms: new_perms,
                max_perms: m.max_perms,
                changes: m.perms != new_perms,
            };
            merges += match &prev {
                Some(p) => isize::from((p.changes || piece.changes) && p.joins(&piece)),
                None if piece.changes && ps == base => Piece::ending_at(tree, parent, ps)
                    .map_or(0, |left| isize::from(left.joins(&piece))),
                None => 0,
            };
            first.get_or_insert((parent, base, mlen, piece.changes));
            last = Some((parent, base, mlen, piece.changes));
            cursor = base + mlen;
            prev = Some(piece);
        }
        if cursor < end {
            return Err(Status::ERR_NOT_FOUND);
        }
        let (Some(first), Some(last), Some(prev)) = (first, last, prev) else {
            return Err(Status::ERR_NOT_FOUND);
        };
        if prev.changes && prev.end == last.1 + last.2 {
            if let Some(right) = Piece::starting_at(tree, prev.parent, prev.end) {
                merges += isize::from(prev.joins(&right));
            }
        }
        Ok(ProtectPlan {
            first,
            last,
            split_first: first.3 && addr > first.1,
            split_last: last.3 && end < last.1 + last.2,
            merges,
        })
    }

    /// Apply phase (cannot fail): each changed piece of `[addr, end)` is cut out, changed, and
    /// merged with its neighbours as soon as they are final (a later piece merges with it from
    /// its side).
    fn apply_protect(
        &self,
        tree: &mut Tree,
        addr: usize,
        end: usize,
        new_perms: MmuFlags,
        slots: &mut Slots,
    ) {
        let mut batch = Batch::new();
        let mut cursor = addr;
        while let Some((parent, base, mlen)) = tree.next_mapping(self.id, cursor, end) {
            let Some(m) = mapping_at(tree, parent, base) else {
                apply_failed("mapping lookup")
            };
            if m.perms == new_perms {
                cursor = base + mlen;
                continue;
            }
            let (ps, pe) = (base.max(addr), (base + mlen).min(end));
            if ps > base {
                split_mapping(&self.aspace, tree, parent, ps, slots, &mut batch);
            }
            if pe < base + mlen {
                split_mapping(&self.aspace, tree, parent, pe, slots, &mut batch);
            }
            let Some(node) = tree.node_mut(parent) else {
                apply_failed("VMAR lookup")
            };
            let mut cow = false;
            if let Some((_, Child::Mapping(m))) = node.children.get_mut(ps) {
                m.perms = new_perms;
                cow = m.vmo.write_needs_fault();
            }
            self.aspace
                .protect_ptes(&mut batch, ps, pe - ps, new_perms, cow);
            merge_with_next(&self.aspace, &mut node.children, ps, &mut batch);
            if ps > node.base {
                if let Some((left, _, Child::Mapping(_))) = node.children.find(ps - 1) {
                    merge_with_next(&self.aspace, &mut node.children, left, &mut batch);
                }
            }
            cursor = pe;
        }
        self.aspace.finish(tree, batch);
    }
}

/// The checks of [`Vmar::protect`] that need no tree, in Zircon's order (see there): the new
/// permissions and `len` rounded up to whole pages.
fn decode_protect(
    options: u32,
    addr: usize,
    len: usize,
    vmar_rights: u32,
) -> ZxResult<(MmuFlags, usize)> {
    let options = apply_xom(options);
    let new_perms = perms_of(options);
    let needed = rights_for(new_perms);
    if vmar_rights & needed != needed {
        return Err(Status::ERR_ACCESS_DENIED);
    }
    if !is_valid_protection(options) {
        return Err(Status::ERR_INVALID_ARGS);
    }
    if !page_aligned(addr) {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let split = split_options(options)?;
    if split.vmar != 0 || split.align_pow2 != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    // ZIRCON: len is rounded up to whole pages (the spec only says it must not be 0).
    let len = round_up_page(len).unwrap_or(0);
    if len == 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    Ok((new_perms, len))
}

/// The first or the last mapping a protect meets: (parent, base, len, changes).
type Edge = (RegionId, usize, usize, bool);

/// What the check phase of a protect found: the mappings at both ends of the range, whether the
/// range cuts each, and how many merges the change will make.
struct ProtectPlan {
    first: Edge,
    last: Edge,
    split_first: bool,
    split_last: bool,
    merges: isize,
}

impl ProtectPlan {
    /// Admits what the protect adds (one region per cut mapping, minus the merges) when `mappings`
    /// exist, and reserves a back-reference slot (for address space `aspace`) and tree room for
    /// each cut.
    fn reserve(&self, tree: &mut Tree, mappings: usize, aspace: u64) -> ZxResult<Slots> {
        let (first, last) = (self.first, self.last);
        let (split_first, split_last) = (self.split_first, self.split_last);
        let now = tree.regions(mappings);
        tree.admit(
            now,
            isize::from(split_first) + isize::from(split_last) - self.merges,
        )?;
        let mut slots = Slots::new(aspace);
        for (split, (parent, base, _, _)) in [(split_first, first), (split_last, last)] {
            if !split {
                continue;
            }
            let m = mapping_at(tree, parent, base).ok_or(Status::ERR_INTERNAL)?;
            slots.reserve(&m.vmo.clone())?;
            let node = tree.node_mut(parent).ok_or(Status::ERR_INTERNAL)?;
            // Two splits in one tree: the second reservation covers both inserts.
            let inserts = if split_first && split_last && first.0 == last.0 {
                2
            } else {
                1
            };
            if !node.children.reserve_inserts(inserts) {
                return Err(Status::ERR_NO_MEMORY);
            }
        }
        Ok(slots)
    }
}

/// A stretch of a mapping as it will be after a protect: enough to tell whether two stretches
/// will merge ([`VmMapping::can_merge`]).
pub(super) struct Piece {
    parent: RegionId,
    start: usize,
    end: usize,
    vmo: *const Vmo,
    vmo_offset: u64,
    perms: MmuFlags,
    max_perms: MmuFlags,
    /// The protect changes its permissions.
    changes: bool,
}

impl Piece {
    pub(super) fn of(parent: RegionId, base: usize, len: usize, m: &VmMapping) -> Piece {
        Piece {
            parent,
            start: base,
            end: base + len,
            vmo: Arc::as_ptr(&m.vmo),
            vmo_offset: m.vmo_offset,
            perms: m.perms,
            max_perms: m.max_perms,
            changes: false,
        }
    }

    /// The mapping of `parent` ending exactly at `addr`, as it is.
    pub(super) fn ending_at(tree: &Tree, parent: RegionId, addr: usize) -> Option<Piece> {
        let node = tree.node(parent)?;
        if addr <= node.base {
            return None;
        }
        match node.children.find(addr - 1)? {
            (base, len, Child::Mapping(m)) if base + len == addr => {
                Some(Piece::of(parent, base, len, m))
            }
            _ => None,
        }
    }

    /// The mapping of `parent` starting exactly at `addr`, as it is.
    pub(super) fn starting_at(tree: &Tree, parent: RegionId, addr: usize) -> Option<Piece> {
        match tree.node(parent)?.children.get(addr)? {
            (len, Child::Mapping(m)) => Some(Piece::of(parent, addr, len, m)),
            _ => None,
        }
    }

    /// True when `self` and `next` (right after it) will be one mapping.
    pub(super) fn joins(&self, next: &Piece) -> bool {
        self.parent == next.parent
            && self.end == next.start
            && core::ptr::eq(self.vmo, next.vmo)
            && self.vmo_offset.checked_add((self.end - self.start) as u64) == Some(next.vmo_offset)
            && self.perms == next.perms
            && self.max_perms == next.max_perms
    }
}
