//! The VMO side of a mapping: its back-reference (which window of the VMO it maps, and where),
//! added, updated, split, merged and dropped as the tree changes.

use super::{apply_failed, AddressSpace, Batch, Slots};
use crate::mapping::VmMapping;
use crate::vmo::{BackRefKey, MappingRef};

impl AddressSpace {
    pub(crate) fn backref_key(&self, vmo_offset: u64, uid: u64) -> BackRefKey {
        BackRefKey {
            vmo_offset,
            aspace: self.id,
            uid,
        }
    }

    fn backref(&self, base: usize, len: usize) -> MappingRef {
        MappingRef {
            aspace: self.self_ref.clone(),
            base,
            size: len,
        }
    }

    /// Records `m` (a mapping new to the tree, or one whose window start moved) as mapping
    /// `[base, base + len)`, using the slot reserved for it in `slots`.
    pub(crate) fn backref_add(&self, slots: &mut Slots, m: &VmMapping, base: usize, len: usize) {
        slots.take(&m.vmo);
        let key = self.backref_key(m.vmo_offset, m.uid);
        if m.vmo
            .lock()
            .mappings
            .insert(key, self.backref(base, len))
            .is_err()
        {
            apply_failed("back-reference insert");
        }
    }

    /// Updates the back-reference of `m` (which exists) to `[base, base + len)`.
    pub(crate) fn backref_update(&self, m: &VmMapping, base: usize, len: usize) {
        let key = self.backref_key(m.vmo_offset, m.uid);
        // An existing key is updated in place: no slot is needed, the insert cannot fail.
        if m.vmo
            .lock()
            .mappings
            .insert(key, self.backref(base, len))
            .is_err()
        {
            apply_failed("back-reference update");
        }
    }

    /// Drops the back-reference of `m` at its current VMO window start.
    pub(crate) fn backref_remove(&self, m: &VmMapping) {
        let key = self.backref_key(m.vmo_offset, m.uid);
        m.vmo.lock().mappings.remove(key);
    }

    /// `left` (at `base`, now `left_len` long) was split, `right` (at `right_base`, `right_len`
    /// long) is its new right part: one VMO lock for both, the new part recorded before the old
    /// one shrinks, so the page-table entries are covered at every moment.
    pub(crate) fn backref_split(
        &self,
        slots: &mut Slots,
        left: (&VmMapping, usize, usize),
        right: (&VmMapping, usize, usize),
    ) {
        slots.take(&right.0.vmo);
        let mut inner = left.0.vmo.lock();
        let key = self.backref_key(right.0.vmo_offset, right.0.uid);
        if inner
            .mappings
            .insert(key, self.backref(right.1, right.2))
            .is_err()
        {
            apply_failed("back-reference insert");
        }
        let key = self.backref_key(left.0.vmo_offset, left.0.uid);
        if inner
            .mappings
            .insert(key, self.backref(left.1, left.2))
            .is_err()
        {
            apply_failed("back-reference update");
        }
    }

    /// `left` (at `base`) grew to `len` by absorbing `right`: one VMO lock, the grown window
    /// recorded before the absorbed one goes.
    pub(crate) fn backref_merge(
        &self,
        left: &VmMapping,
        base: usize,
        len: usize,
        right: &VmMapping,
    ) {
        let mut inner = left.vmo.lock();
        let key = self.backref_key(left.vmo_offset, left.uid);
        if inner.mappings.insert(key, self.backref(base, len)).is_err() {
            apply_failed("back-reference update");
        }
        inner
            .mappings
            .remove(self.backref_key(right.vmo_offset, right.uid));
    }

    /// `m` left the tree after its page-table entries were unmapped and flushed: drops its
    /// back-reference, then `m` itself (which may free its VMO and frames).
    pub(crate) fn drop_mapping(&self, m: VmMapping, batch: &mut Batch) {
        self.backref_remove(&m);
        batch.removed += 1;
        drop(m);
    }
}
