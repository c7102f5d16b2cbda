//! Per-process handle tables with Zircon's handle-value encoding and rules.
//!
//! # Handle values
//! Zircon (`zircon/kernel/object/handle.cc`, `handle_table.cc`) builds a value from a slot index
//! and a per-slot generation that is bumped every time the slot is reused, shifts it left by two,
//! sets the two low bits (`ZX_HANDLE_FIXED_BITS_MASK`) and XORs the result with a per-process
//! random mask whose two low bits are clear:
//!
//! ```text
//! base  = index | generation << INDEX_BITS            (30 bits)
//! value = ((base << 2) | 0b11) ^ (secret << 2)
//! ```
//!
//! So values are never 0 (`ZX_HANDLE_INVALID`), always have the low two bits set, are not small
//! guessable indices, differ between processes, and a closed handle's value goes stale instead of
//! naming the next handle put in its slot. Decoding is O(1): check the fixed bits, XOR, shift,
//! index the slot vector, compare the generation. The secret comes from a [`HandleRng`] so a
//! fixed seed replays a run exactly.
//!
//! Zircon keeps one global arena of 256 Ki handles; here each table has its own slots (up to
//! [`MAX_HANDLES`]) and a configurable limit ([`DEFAULT_LIMIT`], 16 Ki per process), and the
//! whole kernel holds at most [`MAX_LIVE_HANDLES`] (Zircon's arena size), so no process, and no
//! set of processes, can pin unbounded kernel memory through handles.
//!
//! # Rules (exact statuses)
//! - lookup of a closed, stale, never-issued or malformed value: `ZX_ERR_BAD_HANDLE`;
//! - typed lookup ([`HandleTable::get_typed`]): bad value, then wrong type
//!   (`ZX_ERR_WRONG_TYPE`), then missing rights (`ZX_ERR_ACCESS_DENIED`), in Zircon's order
//!   (`GetDispatcherWithRights`: "WRONG_TYPE is returned before ACCESS_DENIED");
//! - duplicate / replace follow `handle_dup_replace` in `zircon/kernel/lib/syscalls/handle_ops.cc`,
//!   see [`HandleTable::duplicate`] and [`HandleTable::replace`];
//! - closing `ZX_HANDLE_INVALID` is a no-op returning `ZX_OK`;
//! - a full table refuses new handles with `ZX_ERR_NO_RESOURCES`;
//! - when [`MAX_LIVE_HANDLES`] handles exist kernel-wide, or the table cannot grow its slot
//!   vector (heap allocation failure), `add` is `ZX_ERR_NO_MEMORY` (Zircon's answer when its
//!   handle arena is exhausted);
//! - a table may belong to an [`Account`] ([`HandleTable::set_account`]): a handle put in it is
//!   charged there (moved from the account it was charged to, if any, with
//!   [`Account::transfer`]), and `add` is `ZX_ERR_NO_RESOURCES` when the account or an
//!   ancestor is at its handle limit. A handle keeps its charge when it leaves the table (into a
//!   channel message) and releases it when dropped.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use abi::handle::{ZX_HANDLE_FIXED_BITS_MASK, ZX_HANDLE_INVALID};
use abi::info::InfoHandleBasic;
use abi::rights::{ZX_RIGHT_DUPLICATE, ZX_RIGHT_SAME_RIGHTS};
use abi::Status;

use crate::account::{Account, Resource};

/// Bits of the slot index inside a handle value: one table never has more than 16 Ki slots
/// (Zircon's arena index has 18 bits for its 256 Ki handles), which leaves 16 for the generation.
pub const INDEX_BITS: u32 = 14;
/// Most handles one table can ever hold.
pub const MAX_HANDLES: usize = 1 << INDEX_BITS;
/// Default limit of a table: the handles one process may hold (a quota; Zircon has no hard
/// per-process limit but warns at 5 000 and shares 256 Ki kernel-wide; 16 Ki keeps one process
/// at a small share of [`MAX_LIVE_HANDLES`]).
pub const DEFAULT_LIMIT: usize = 16 * 1024;
/// Most handles alive in the whole kernel (Zircon's handle arena: 256 Ki).
pub const MAX_LIVE_HANDLES: usize = 256 * 1024;

/// A free slot is reused only while at least this many are free (else the table grows, up to
/// [`MAX_HANDLES`] slots), oldest first.
///
/// With a 16-bit generation this bounds how soon a value can recur: a freed slot waits behind at
/// least `REUSE_AFTER - 1` others, so one value of a table names a new handle only after about
/// `REUSE_AFTER * 2^16` (4.2 million) handles were put in that table (Zircon's values recur too,
/// its generation being finite).
pub const REUSE_AFTER: usize = 64;

const RESERVED_BITS: u32 = 2;
const BASE_BITS: u32 = 32 - RESERVED_BITS;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
const GEN_MASK: u32 = (1 << (BASE_BITS - INDEX_BITS)) - 1;

/// Handles alive anywhere (in a table or in flight), like Zircon's `handles.live` counter.
static LIVE_HANDLES: AtomicUsize = AtomicUsize::new(0);

/// Number of [`Handle`]s currently alive in the whole kernel; leak tests compare it before/after.
pub fn live_handle_count() -> usize {
    LIVE_HANDLES.load(Ordering::Relaxed)
}

/// A source of random bits for handle-value masks. Seed it from RDRAND in the kernel; use a fixed
/// seed to replay a run. Any `FnMut() -> u32` is one.
pub trait HandleRng {
    /// The next 32 random bits.
    fn next_u32(&mut self) -> u32;
}

impl<F: FnMut() -> u32> HandleRng for F {
    fn next_u32(&mut self) -> u32 {
        self()
    }
}

/// Handle masks from the VM's seedable generator (the one PRNG of the kernel's portable crates).
impl HandleRng for vm::SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (vm::RandomSource::next_u64(self) >> 32) as u32
    }
}

/// One handle: a reference to a kernel object plus the rights it grants.
///
/// Creating one counts towards [`live_handle_count`]; dropping it uncounts it.
#[derive(Debug)]
pub struct Handle<O> {
    object: O,
    rights: u32,
    koid: u64,
    obj_type: u32,
    /// The account charged one [`Resource::Handles`] for this handle, if any.
    charge: Option<Arc<Account>>,
}

impl<O> Handle<O> {
    /// A new handle to `object` (whose koid and `ZX_OBJ_TYPE_*` are given) with `rights`.
    pub fn new(object: O, koid: u64, obj_type: u32, rights: u32) -> Self {
        LIVE_HANDLES.fetch_add(1, Ordering::Relaxed);
        Handle {
            object,
            rights,
            koid,
            obj_type,
            charge: None,
        }
    }

    /// The account this handle is charged to, if any.
    pub fn charged_to(&self) -> Option<&Arc<Account>> {
        self.charge.as_ref()
    }

    /// Charges the handle to `to`, moving its charge from the account it was charged to (see
    /// [`Account::transfer`]); `ZX_ERR_NO_RESOURCES` (nothing changed) at a handle limit.
    pub fn charge_to(&mut self, to: &Arc<Account>) -> Result<(), Status> {
        if self.charge.as_ref().is_some_and(|c| Arc::ptr_eq(c, to)) {
            return Ok(());
        }
        Account::transfer(self.charge.as_ref(), to, Resource::Handles, 1)?;
        self.charge = Some(to.clone());
        Ok(())
    }

    /// The object.
    pub fn object(&self) -> &O {
        &self.object
    }

    /// The rights.
    pub fn rights(&self) -> u32 {
        self.rights
    }

    /// Whether the handle has all of `desired`.
    pub fn has_rights(&self, desired: u32) -> bool {
        self.rights & desired == desired
    }

    /// The object's koid.
    pub fn koid(&self) -> u64 {
        self.koid
    }

    /// The object's `ZX_OBJ_TYPE_*`.
    pub fn obj_type(&self) -> u32 {
        self.obj_type
    }

    /// `zx_info_handle_basic_t` for this handle (`related_koid` is 0 until objects have relations).
    pub fn basic_info(&self) -> InfoHandleBasic {
        InfoHandleBasic {
            koid: self.koid,
            rights: self.rights,
            r#type: self.obj_type,
            ..InfoHandleBasic::default()
        }
    }
}

impl<O: Clone> Handle<O> {
    /// A second handle to the same object with `rights` (no checks: see
    /// [`HandleTable::duplicate`] for the syscall rules).
    pub fn dup(&self, rights: u32) -> Self {
        Handle::new(self.object.clone(), self.koid, self.obj_type, rights)
    }

    /// Consumes the handle, returning (a reference to) its object.
    pub fn into_object(self) -> O {
        self.object.clone()
    }
}

impl<O> Drop for Handle<O> {
    fn drop(&mut self) {
        if let Some(account) = self.charge.take() {
            account.release(Resource::Handles, 1);
        }
        LIVE_HANDLES.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Slot<O> {
    generation: u32,
    handle: Option<Handle<O>>,
}

/// The handles of one process.
pub struct HandleTable<O> {
    slots: Vec<Slot<O>>,
    /// Free slots, the longest free first.
    free: VecDeque<u32>,
    mixer: u32,
    len: usize,
    limit: usize,
    /// Where handles put in the table are charged.
    account: Option<Arc<Account>>,
}

impl<O> HandleTable<O> {
    /// An empty table with [`DEFAULT_LIMIT`], its value mask drawn from `rng`.
    pub fn new(rng: &mut impl HandleRng) -> Self {
        Self::with_limit(rng, DEFAULT_LIMIT)
    }

    /// An empty table holding at most `limit` handles (clamped to [`MAX_HANDLES`]).
    pub fn with_limit(rng: &mut impl HandleRng, limit: usize) -> Self {
        HandleTable {
            slots: Vec::new(),
            free: VecDeque::new(),
            // Never touch the fixed bits with the mask.
            mixer: rng.next_u32() << RESERVED_BITS,
            len: 0,
            limit: limit.min(MAX_HANDLES),
            account: None,
        }
    }

    /// Charges every handle put in the table from now on to `account` (the owning process's).
    pub fn set_account(&mut self, account: Arc<Account>) {
        self.account = Some(account);
    }

    /// The account handles in this table are charged to.
    pub fn account(&self) -> Option<&Arc<Account>> {
        self.account.as_ref()
    }

    /// Number of handles in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no handle.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most handles the table accepts.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn encode(&self, index: u32, generation: u32) -> u32 {
        let base = index | (generation << INDEX_BITS);
        ((base << RESERVED_BITS) | ZX_HANDLE_FIXED_BITS_MASK) ^ self.mixer
    }

    fn decode(&self, value: u32) -> Option<(usize, u32)> {
        if value & ZX_HANDLE_FIXED_BITS_MASK != ZX_HANDLE_FIXED_BITS_MASK {
            return None;
        }
        let base = (value ^ self.mixer) >> RESERVED_BITS;
        Some(((base & INDEX_MASK) as usize, base >> INDEX_BITS))
    }

    fn slot_of(&self, value: u32) -> Result<usize, Status> {
        let (index, generation) = self.decode(value).ok_or(Status::ERR_BAD_HANDLE)?;
        match self.slots.get(index) {
            Some(slot) if slot.generation == generation && slot.handle.is_some() => Ok(index),
            _ => Err(Status::ERR_BAD_HANDLE),
        }
    }

    /// Puts `handle` in the table and returns its value; `ZX_ERR_NO_RESOURCES` (and the handle is
    /// dropped) if the table is full or its account at a handle limit.
    pub fn add(&mut self, mut handle: Handle<O>) -> Result<u32, Status> {
        if self.len >= self.limit {
            return Err(Status::ERR_NO_RESOURCES);
        }
        // `handle` itself is counted already.
        if live_handle_count() > MAX_LIVE_HANDLES {
            return Err(Status::ERR_NO_MEMORY);
        }
        // Charged before a slot is taken: if anything below fails, dropping `handle` releases
        // the charge wherever it now is.
        if let Some(account) = &self.account {
            handle.charge_to(account)?;
        }
        let reuse = self.free.len() >= REUSE_AFTER || self.slots.len() >= MAX_HANDLES;
        let index = match self.free.pop_front() {
            Some(index) if reuse => index,
            not_reused => {
                if let Some(index) = not_reused {
                    self.free.push_front(index);
                }
                // Grow both vectors fallibly, so `remove` (which pushes to `free`, never longer
                // than `slots`) never allocates and a heap failure is a status, not a panic.
                if self.slots.try_reserve(1).is_err()
                    || self
                        .free
                        .try_reserve(self.slots.len() + 1 - self.free.len())
                        .is_err()
                {
                    return Err(Status::ERR_NO_MEMORY);
                }
                // Not reusing: slots.len() < MAX_HANDLES.
                self.slots.push(Slot {
                    generation: 0,
                    handle: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        // Every use of a slot gets a new generation, so old values of the slot go stale.
        slot.generation = (slot.generation + 1) & GEN_MASK;
        slot.handle = Some(handle);
        self.len += 1;
        let generation = slot.generation;
        Ok(self.encode(index, generation))
    }

    /// The handle named by `value`, or `ZX_ERR_BAD_HANDLE`.
    pub fn get(&self, value: u32) -> Result<&Handle<O>, Status> {
        let index = self.slot_of(value)?;
        Ok(self.slots[index].handle.as_ref().expect("slot_of checked"))
    }

    /// Whether `value` names a handle of this table (`ZX_INFO_HANDLE_VALID`).
    pub fn is_valid(&self, value: u32) -> bool {
        self.slot_of(value).is_ok()
    }

    /// The handle if it has all of `desired` rights: `ZX_ERR_BAD_HANDLE`, then
    /// `ZX_ERR_ACCESS_DENIED`. For syscalls that accept any object type.
    pub fn get_with_rights(&self, value: u32, desired: u32) -> Result<&Handle<O>, Status> {
        let handle = self.get(value)?;
        if !handle.has_rights(desired) {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        Ok(handle)
    }

    /// Typed lookup, Zircon's `GetDispatcherWithRights`: `downcast` returns the object as the
    /// wanted type or `None`. Returns the typed object and the handle's rights.
    ///
    /// Errors, in order: `ZX_ERR_BAD_HANDLE`, `ZX_ERR_WRONG_TYPE`, `ZX_ERR_ACCESS_DENIED`.
    pub fn get_typed<T>(
        &self,
        value: u32,
        desired: u32,
        downcast: impl FnOnce(&O) -> Option<T>,
    ) -> Result<(T, u32), Status> {
        let handle = self.get(value)?;
        let object = downcast(&handle.object).ok_or(Status::ERR_WRONG_TYPE)?;
        if !handle.has_rights(desired) {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        Ok((object, handle.rights))
    }

    /// Takes the handle out of the table (to close it or move it into a message).
    pub fn remove(&mut self, value: u32) -> Result<Handle<O>, Status> {
        let index = self.slot_of(value)?;
        let handle = self.slots[index].handle.take().expect("slot_of checked");
        self.free.push_back(index as u32);
        self.len -= 1;
        Ok(handle)
    }

    /// `zx_handle_close`: `ZX_HANDLE_INVALID` is a no-op returning `ZX_OK` (like `free(NULL)`);
    /// otherwise `ZX_ERR_BAD_HANDLE` or the handle is dropped.
    pub fn close(&mut self, value: u32) -> Result<(), Status> {
        if value == ZX_HANDLE_INVALID {
            return Ok(());
        }
        self.remove(value).map(drop)
    }

    /// Removes every handle (process teardown), returning them so the caller decides when the
    /// objects go away (outside its locks, as Zircon's `HandleTable::Clean` does).
    pub fn clear(&mut self) -> Vec<Handle<O>> {
        let mut out = Vec::with_capacity(self.len);
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let Some(handle) = slot.handle.take() {
                out.push(handle);
                self.free.push_back(index as u32);
            }
        }
        self.len = 0;
        out
    }

    /// The `(value, handle)` pairs of the table, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Handle<O>)> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            slot.handle
                .as_ref()
                .map(|handle| (self.encode(index as u32, slot.generation), handle))
        })
    }

    /// The handles of the slots from `first_slot` on, in slot order, each with its slot index
    /// (to resume a walk that drops the table's lock between steps).
    pub fn slots_from(&self, first_slot: usize) -> impl Iterator<Item = (usize, &Handle<O>)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .skip(first_slot)
            .filter_map(|(index, slot)| slot.handle.as_ref().map(|handle| (index, handle)))
    }

    /// `ZX_INFO_HANDLE_BASIC` for `value`.
    pub fn basic_info(&self, value: u32) -> Result<InfoHandleBasic, Status> {
        self.get(value).map(Handle::basic_info)
    }
}

/// `rights` resolved against a source handle: `ZX_RIGHT_SAME_RIGHTS` exactly means "the
/// source's rights"; anything else must be a subset of them (a value with the SAME_RIGHTS bit and
/// other bits is not a subset, since no handle holds that bit).
fn resolve_rights(source: u32, rights: u32) -> Option<u32> {
    if rights == ZX_RIGHT_SAME_RIGHTS {
        Some(source)
    } else if source & rights == rights {
        Some(rights)
    } else {
        None
    }
}

impl<O: Clone> HandleTable<O> {
    /// `zx_handle_duplicate`, with Zircon's order of checks:
    /// 1. `value` is not a handle: `ZX_ERR_BAD_HANDLE`;
    /// 2. the source lacks `ZX_RIGHT_DUPLICATE`: `ZX_ERR_ACCESS_DENIED`;
    /// 3. `rights` is neither `ZX_RIGHT_SAME_RIGHTS` nor a subset of the source's: `ZX_ERR_INVALID_ARGS`;
    /// 4. the table is full: `ZX_ERR_NO_RESOURCES` (Zircon's global arena gives `ZX_ERR_NO_MEMORY`).
    ///
    /// The source is unchanged in every case.
    pub fn duplicate(&mut self, value: u32, rights: u32) -> Result<u32, Status> {
        let source = self.get(value)?;
        if !source.has_rights(ZX_RIGHT_DUPLICATE) {
            return Err(Status::ERR_ACCESS_DENIED);
        }
        let rights = resolve_rights(source.rights, rights).ok_or(Status::ERR_INVALID_ARGS)?;
        let new = source.dup(rights);
        self.add(new)
    }

    /// `zx_handle_replace`: a new handle with `rights` replaces `value`. Zircon's rules:
    /// - `value` is not a handle: `ZX_ERR_BAD_HANDLE`, nothing consumed;
    /// - no `ZX_RIGHT_DUPLICATE` needed;
    /// - `rights` is not `ZX_RIGHT_SAME_RIGHTS` or a subset: `ZX_ERR_INVALID_ARGS` **and the old
    ///   handle is closed anyway**;
    /// - on success the old handle is gone and the new value is returned.
    ///
    /// The new handle takes the old one's place in the count, so replace works in a full table.
    /// If copying the new value out to user memory then fails, the syscall must close the new
    /// handle: the old one stays consumed (Zircon behaves the same way).
    pub fn replace(&mut self, value: u32, rights: u32) -> Result<u32, Status> {
        self.replace_keeping_old(value, rights).0
    }

    /// [`HandleTable::replace`], returning the old handle (consumed in every case but
    /// `ZX_ERR_BAD_HANDLE`) instead of dropping it: the caller drops it after the table's lock.
    /// On `ZX_ERR_INVALID_ARGS` it may hold the last reference to its object, whose drop can do
    /// any amount of work (a process's teardown locks that process's own handle table).
    pub fn replace_keeping_old(
        &mut self,
        value: u32,
        rights: u32,
    ) -> (Result<u32, Status>, Option<Handle<O>>) {
        let source = match self.get(value) {
            Ok(source) => source,
            Err(status) => return (Err(status), None),
        };
        let resolved = resolve_rights(source.rights, rights);
        let mut old = self.remove(value).expect("looked up above");
        let Some(rights) = resolved else {
            return (Err(Status::ERR_INVALID_ARGS), Some(old));
        };
        let mut new = old.dup(rights);
        // The new handle takes over the old one's charge, so replace works at a handle limit.
        new.charge = old.charge.take();
        // If `add` fails, `new` drops in it: not the object's last reference, `old` is.
        (self.add(new), Some(old))
    }
}

impl<O> Drop for HandleTable<O> {
    fn drop(&mut self) {
        // Handles left in the table drop with the slots, which uncounts them.
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::obj_type::{ZX_OBJ_TYPE_VMAR, ZX_OBJ_TYPE_VMO};
    use abi::rights::*;
    use std::sync::{Arc, Mutex, MutexGuard};

    /// Every test creating handles holds this, so `live_handle_count` deltas are exact.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[derive(Clone, Debug, PartialEq)]
    enum Obj {
        Vmo(Arc<u32>),
        Vmar(Arc<u32>),
    }

    fn as_vmo(o: &Obj) -> Option<Arc<u32>> {
        match o {
            Obj::Vmo(v) => Some(v.clone()),
            _ => None,
        }
    }

    const ALL: u32 = 0x01ff_ffff;

    /// The same slot with another generation: a value that was never issued.
    fn stale(value: u32) -> u32 {
        value ^ (1 << 30)
    }

    fn table(seed: u64) -> HandleTable<Obj> {
        HandleTable::new(&mut vm::SplitMix64::new(seed))
    }

    fn vmo(id: u32, rights: u32) -> Handle<Obj> {
        Handle::new(
            Obj::Vmo(Arc::new(id)),
            1024 + id as u64,
            ZX_OBJ_TYPE_VMO,
            rights,
        )
    }

    #[test]
    fn values_have_fixed_bits_are_not_indices_and_replay_with_seed() {
        let _g = serial();
        let mut a = table(7);
        let mut b = table(7);
        let mut c = table(8);
        let va: Vec<u32> = (0..4).map(|i| a.add(vmo(i, ALL)).unwrap()).collect();
        let vb: Vec<u32> = (0..4).map(|i| b.add(vmo(i, ALL)).unwrap()).collect();
        let vc: Vec<u32> = (0..4).map(|i| c.add(vmo(i, ALL)).unwrap()).collect();
        assert_eq!(va, vb, "same seed, same values");
        assert_ne!(va, vc, "different seed, different values");
        for v in &va {
            assert_eq!(v & ZX_HANDLE_FIXED_BITS_MASK, 3);
            assert_ne!(*v, ZX_HANDLE_INVALID);
            assert!(*v > 16, "not a small index: {v:#x}");
        }
        let mut sorted = va.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);
    }

    #[test]
    fn lookup_statuses() {
        let _g = serial();
        let mut t = table(1);
        let h = t.add(vmo(1, ZX_RIGHT_READ)).unwrap();
        assert_eq!(t.get(h).unwrap().koid(), 1025);
        assert!(t.is_valid(h));
        // Malformed: fixed bits cleared.
        assert_eq!(t.get(h & !3).err(), Some(Status::ERR_BAD_HANDLE));
        assert_eq!(t.get(ZX_HANDLE_INVALID).err(), Some(Status::ERR_BAD_HANDLE));
        // Never issued: a slot that does not exist, or the right slot with another generation.
        assert_eq!(t.get(h ^ (5 << 2)).err(), Some(Status::ERR_BAD_HANDLE));
        assert_eq!(t.get(stale(h)).err(), Some(Status::ERR_BAD_HANDLE));
        // Rights.
        assert!(t.get_with_rights(h, ZX_RIGHT_READ).is_ok());
        assert_eq!(
            t.get_with_rights(h, ZX_RIGHT_READ | ZX_RIGHT_WRITE).err(),
            Some(Status::ERR_ACCESS_DENIED)
        );
        // A value from another table is not valid here.
        let mut other = table(2);
        let ho = other.add(vmo(2, ALL)).unwrap();
        assert_eq!(t.get(ho).err(), Some(Status::ERR_BAD_HANDLE));
    }

    #[test]
    fn typed_lookup_order_bad_then_type_then_rights() {
        let _g = serial();
        let mut t = table(3);
        let v = t.add(vmo(1, ZX_RIGHT_READ)).unwrap();
        let r = t
            .add(Handle::new(
                Obj::Vmar(Arc::new(9)),
                5000,
                ZX_OBJ_TYPE_VMAR,
                ZX_RIGHT_READ,
            ))
            .unwrap();
        let (obj, rights) = t.get_typed(v, ZX_RIGHT_READ, as_vmo).unwrap();
        assert_eq!(*obj, 1);
        assert_eq!(rights, ZX_RIGHT_READ);
        // Wrong type wins over missing rights.
        assert_eq!(
            t.get_typed(r, ZX_RIGHT_WRITE, as_vmo).err(),
            Some(Status::ERR_WRONG_TYPE)
        );
        assert_eq!(
            t.get_typed(v, ZX_RIGHT_WRITE, as_vmo).err(),
            Some(Status::ERR_ACCESS_DENIED)
        );
        assert_eq!(
            t.get_typed(stale(v), 0, as_vmo).err(),
            Some(Status::ERR_BAD_HANDLE)
        );
    }

    #[test]
    fn close_rules_and_stale_values() {
        let _g = serial();
        let mut t = table(4);
        assert_eq!(t.close(ZX_HANDLE_INVALID), Ok(()));
        let h = t.add(vmo(1, ALL)).unwrap();
        assert_eq!(t.close(h), Ok(()));
        assert_eq!(t.close(h), Err(Status::ERR_BAD_HANDLE), "double close");
        // The slot is reused with a new generation: the old value stays dead.
        let h2 = t.add(vmo(2, ALL)).unwrap();
        assert_ne!(h, h2);
        assert_eq!(t.get(h).err(), Some(Status::ERR_BAD_HANDLE));
        assert_eq!(t.get(h2).unwrap().koid(), 1026);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn duplicate_rules() {
        let _g = serial();
        let mut t = table(5);
        let rw = ZX_RIGHT_DUPLICATE | ZX_RIGHT_READ | ZX_RIGHT_WRITE;
        let h = t.add(vmo(1, rw)).unwrap();
        // SAME_RIGHTS.
        let d = t.duplicate(h, ZX_RIGHT_SAME_RIGHTS).unwrap();
        assert_ne!(d, h);
        assert_eq!(t.get(d).unwrap().rights(), rw);
        assert_eq!(t.get(d).unwrap().object(), t.get(h).unwrap().object());
        // Subset.
        let r = t.duplicate(h, ZX_RIGHT_READ).unwrap();
        assert_eq!(t.get(r).unwrap().rights(), ZX_RIGHT_READ);
        // Not a subset.
        assert_eq!(
            t.duplicate(h, ZX_RIGHT_EXECUTE),
            Err(Status::ERR_INVALID_ARGS)
        );
        // SAME_RIGHTS mixed with other bits is not SAME_RIGHTS.
        assert_eq!(
            t.duplicate(h, ZX_RIGHT_SAME_RIGHTS | ZX_RIGHT_READ),
            Err(Status::ERR_INVALID_ARGS)
        );
        // No DUPLICATE right: ACCESS_DENIED, checked before the subset rule.
        assert_eq!(
            t.duplicate(r, ZX_RIGHT_EXECUTE),
            Err(Status::ERR_ACCESS_DENIED)
        );
        assert_eq!(
            t.duplicate(r, ZX_RIGHT_SAME_RIGHTS),
            Err(Status::ERR_ACCESS_DENIED)
        );
        // Bad handle first.
        assert_eq!(
            t.duplicate(stale(h), ZX_RIGHT_SAME_RIGHTS),
            Err(Status::ERR_BAD_HANDLE)
        );
        assert_eq!(t.len(), 3);
        assert!(t.is_valid(h), "source untouched");
    }

    #[test]
    fn replace_rules() {
        let _g = serial();
        let mut t = table(6);
        let h = t.add(vmo(1, ZX_RIGHT_READ | ZX_RIGHT_WRITE)).unwrap();
        // No DUPLICATE right needed; success consumes the old handle.
        let r = t.replace(h, ZX_RIGHT_READ).unwrap();
        assert_eq!(t.get(h).err(), Some(Status::ERR_BAD_HANDLE));
        assert_eq!(t.get(r).unwrap().rights(), ZX_RIGHT_READ);
        // SAME_RIGHTS.
        let s = t.replace(r, ZX_RIGHT_SAME_RIGHTS).unwrap();
        assert_eq!(t.get(s).unwrap().rights(), ZX_RIGHT_READ);
        // Bad handle: nothing consumed.
        assert_eq!(
            t.replace(stale(s), ZX_RIGHT_SAME_RIGHTS),
            Err(Status::ERR_BAD_HANDLE)
        );
        assert!(t.is_valid(s));
        // Not a subset: INVALID_ARGS and the old handle is gone anyway.
        assert_eq!(t.replace(s, ZX_RIGHT_WRITE), Err(Status::ERR_INVALID_ARGS));
        assert!(!t.is_valid(s));
        assert!(t.is_empty());
    }

    #[test]
    fn kernel_wide_limit_gives_no_memory_and_recovers() {
        let _g = serial();
        let before = live_handle_count();
        let mut t = table(11);
        let a = t.add(vmo(1, ALL)).unwrap();
        // Fill the kernel-wide budget with handles held elsewhere ("other processes").
        let held: Vec<_> = (0..MAX_LIVE_HANDLES + 1 - live_handle_count())
            .map(|i| vmo(i as u32, ALL))
            .collect();
        assert_eq!(t.add(vmo(2, ALL)), Err(Status::ERR_NO_MEMORY));
        assert_eq!(
            t.duplicate(a, ZX_RIGHT_SAME_RIGHTS),
            Err(Status::ERR_NO_MEMORY)
        );
        assert!(t.is_valid(a));
        assert_eq!(t.len(), 1);
        drop(held);
        let b = t.duplicate(a, ZX_RIGHT_SAME_RIGHTS).unwrap();
        assert!(t.is_valid(b));
        drop(t.clear());
        assert_eq!(live_handle_count(), before);
    }

    #[test]
    fn limit_gives_no_resources_and_replace_still_works() {
        let _g = serial();
        let before = live_handle_count();
        let mut t: HandleTable<Obj> = HandleTable::with_limit(&mut vm::SplitMix64::new(9), 2);
        let a = t.add(vmo(1, ALL)).unwrap();
        let _b = t.add(vmo(2, ALL)).unwrap();
        assert_eq!(t.add(vmo(3, ALL)), Err(Status::ERR_NO_RESOURCES));
        assert_eq!(
            t.duplicate(a, ZX_RIGHT_SAME_RIGHTS),
            Err(Status::ERR_NO_RESOURCES)
        );
        assert!(t.is_valid(a), "failed duplicate leaves the source");
        let c = t.replace(a, ZX_RIGHT_READ).unwrap();
        assert!(t.is_valid(c));
        assert_eq!(t.len(), 2);
        assert_eq!(
            live_handle_count(),
            before + 2,
            "rejected handles were dropped"
        );
        drop(t);
        assert_eq!(live_handle_count(), before);
    }

    #[test]
    fn live_counter_tracks_every_path() {
        let _g = serial();
        let before = live_handle_count();
        let mut t = table(10);
        let h = t.add(vmo(1, ALL)).unwrap();
        let d = t.duplicate(h, ZX_RIGHT_SAME_RIGHTS).unwrap();
        let r = t.replace(d, ZX_RIGHT_READ).unwrap();
        assert_eq!(live_handle_count(), before + 2);
        let moved = t.remove(r).unwrap(); // in flight, e.g. in a channel message
        assert_eq!(live_handle_count(), before + 2);
        drop(moved);
        assert_eq!(t.replace(h, 1 << 30), Err(Status::ERR_INVALID_ARGS));
        assert_eq!(live_handle_count(), before);
        for i in 0..5 {
            t.add(vmo(i, ALL)).unwrap();
        }
        let cleared = t.clear();
        assert_eq!(cleared.len(), 5);
        assert!(t.is_empty());
        drop(cleared);
        assert_eq!(live_handle_count(), before);
    }

    #[test]
    fn iter_and_basic_info() {
        let _g = serial();
        let mut t = table(11);
        let a = t.add(vmo(1, ZX_RIGHT_READ)).unwrap();
        let b = t.add(vmo(2, ZX_RIGHT_WRITE)).unwrap();
        t.close(a).unwrap();
        let c = t.add(vmo(3, ZX_RIGHT_MAP)).unwrap();
        let mut seen: Vec<u32> = t.iter().map(|(v, _)| v).collect();
        seen.sort();
        let mut want = vec![b, c];
        want.sort();
        assert_eq!(seen, want);
        let info = t.basic_info(c).unwrap();
        assert_eq!(
            (info.koid, info.rights, info.r#type),
            (1027, ZX_RIGHT_MAP, ZX_OBJ_TYPE_VMO)
        );
        assert_eq!(t.basic_info(a).err(), Some(Status::ERR_BAD_HANDLE));
    }

    #[test]
    fn values_recur_only_after_millions_of_handles() {
        let _g = serial();
        let mut t = table(12);
        let first = t.add(vmo(0, ALL)).unwrap();
        t.close(first).unwrap();
        // One handle at a time, closed again: the table keeps REUSE_AFTER slots free in
        // rotation, and each slot goes through its 2^16 generations.
        let period = REUSE_AFTER * (GEN_MASK as usize + 1);
        let mut last = first;
        for i in 1..period {
            let v = t.add(vmo(i as u32, ALL)).unwrap();
            assert_eq!(v & 3, 3);
            assert_ne!(v, first, "value recurred after {i} handles");
            last = v;
            t.close(v).unwrap();
        }
        assert_ne!(last, first);
        assert_eq!(
            t.slots.len(),
            REUSE_AFTER,
            "the rotation costs a bounded number of slots"
        );
        // The value comes back after the whole period (Zircon's generation is finite too), but
        // a closed value is never valid while its slot is free.
        let v = t.add(vmo(0, ALL)).unwrap();
        assert_eq!(v, first);
        t.close(v).unwrap();
        assert!(!t.is_valid(first));
    }
}
