//! `zx_vmar_op_range`: COMMIT, DECOMMIT, MAP_RANGE, DONT_NEED and ALWAYS_NEED over the mappings
//! of a range.

use super::*;

impl Vmar {
    /// `zx_vmar_op_range`: COMMIT, DECOMMIT, MAP_RANGE, DONT_NEED or ALWAYS_NEED over the mappings
    /// of `[addr, addr + len)`. `buffer_len` is the syscall's buffer size (must be 0; the syscall
    /// layer also rejects a non-null buffer with INVALID_ARGS).
    ///
    /// Order of checks: unknown op (INVALID_ARGS); COMMIT/DECOMMIT without the handle's WRITE
    /// right (ACCESS_DENIED); `buffer_len` non-zero, `len` 0 after rounding up, `addr` unaligned
    /// (INVALID_ARGS); range not inside this region (OUT_OF_RANGE); destroyed (BAD_STATE); then per
    /// mapping in address order: a hole (BAD_STATE); a mapping in a sub-region for COMMIT /
    /// DECOMMIT, or for any op without OP_CHILDREN (INVALID_ARGS); COMMIT / DECOMMIT on a mapping
    /// that can never be writable (ACCESS_DENIED); the VMO's own error (OUT_OF_RANGE past its end,
    /// NO_MEMORY). Like Zircon, work done on earlier mappings stays when a later one fails.
    pub fn op_range(
        &self,
        op: u32,
        addr: usize,
        len: usize,
        vmar_rights: u32,
        buffer_len: usize,
    ) -> ZxResult {
        let end = self.check_op_range_args(op, addr, len, vmar_rights, buffer_len)?;
        let op_children = vmar_rights & ZX_RIGHT_OP_CHILDREN != 0;
        let is_commit = op == ZX_VMAR_OP_COMMIT;
        let is_decommit = op == ZX_VMAR_OP_DECOMMIT;
        let tree = self.aspace.tree.lock();
        tree.node(self.id).ok_or(Status::ERR_BAD_STATE)?;
        let mut expected = addr;
        while let Some((parent, base, mlen)) = tree.next_mapping(self.id, expected, end) {
            if base > expected {
                return Err(Status::ERR_BAD_STATE);
            }
            if (is_commit || is_decommit || !op_children) && parent != self.id {
                return Err(Status::ERR_INVALID_ARGS);
            }
            let m = mapping_at(&tree, parent, base).ok_or(Status::ERR_INTERNAL)?;
            let e = (base + mlen).min(end);
            self.op_on_mapping(op, m, base, expected, e)?;
            expected = e;
        }
        if expected < end {
            return Err(Status::ERR_BAD_STATE);
        }
        Ok(())
    }

    /// The checks of [`Vmar::op_range`] that need no tree, in Zircon's order (see there).
    /// Returns the end of the range (`len` rounded up to whole pages).
    fn check_op_range_args(
        &self,
        op: u32,
        addr: usize,
        len: usize,
        vmar_rights: u32,
        buffer_len: usize,
    ) -> ZxResult<usize> {
        let is_commit = op == ZX_VMAR_OP_COMMIT;
        let is_decommit = op == ZX_VMAR_OP_DECOMMIT;
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
        if (is_commit || is_decommit) && vmar_rights & ZX_RIGHT_WRITE == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        // ZIRCON: the spec names no right for MAP_RANGE; current Zircon needs READ
        // (vmar.cc `OpRangeRights`).
        if op == ZX_VMAR_OP_MAP_RANGE && vmar_rights & ZX_RIGHT_READ == 0 {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        if buffer_len != 0 {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let len = round_up_page(len).unwrap_or(0);
        if len == 0 || !page_aligned(addr) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        let end = addr.checked_add(len).ok_or(Status::ERR_OUT_OF_RANGE)?;
        if addr < self.base || end > self.base + self.len {
            return Err(Status::ERR_OUT_OF_RANGE);
        }
        Ok(end)
    }

    /// Applies `op` to `[s, e)`, the part of the range inside mapping `m` (based at `base`).
    fn op_on_mapping(&self, op: u32, m: &VmMapping, base: usize, s: usize, e: usize) -> ZxResult {
        let vmo_off = m.vmo_offset + (s - base) as u64;
        let size = (e - s) as u64;
        match op {
            ZX_VMAR_OP_COMMIT => {
                if !m.max_perms.contains(MmuFlags::WRITE) {
                    return Err(Status::ERR_ACCESS_DENIED);
                }
                m.vmo.commit(vmo_off, size)?;
                self.aspace.map_committed(m, base, s, e)?;
            }
            ZX_VMAR_OP_DECOMMIT => {
                if !m.max_perms.contains(MmuFlags::WRITE) {
                    return Err(Status::ERR_ACCESS_DENIED);
                }
                m.vmo.decommit(vmo_off, size)?;
            }
            ZX_VMAR_OP_MAP_RANGE | ZX_VMAR_OP_ALWAYS_NEED => {
                // ALWAYS_NEED is a reclamation hint (nothing is reclaimed here) that also
                // populates the page tables, as in Zircon.
                self.aspace.map_committed(m, base, s, e)?;
            }
            _ => {} // DONT_NEED: trivially succeeds for non-pager VMOs.
        }
        Ok(())
    }
}
