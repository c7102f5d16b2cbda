//! `zx_object_get_info` (`zircon/kernel/lib/syscalls/object.cc`).
//!
//! Topics: `ZX_INFO_HANDLE_VALID`, `HANDLE_BASIC`, `PROCESS`, `THREAD`,
//! `THREAD_EXCEPTION_REPORT` (and its V1; `ZX_ERR_BAD_STATE` unless the thread is stopped in an
//! exception), `VMAR`, `VMO` (and its V1 to V3), `PROCESS_VMOS` (and its V1 to V3),
//! `PROCESS_MAPS` (and its V1, V2), `VMAR_MAPS`; any other is `ZX_ERR_NOT_SUPPORTED` (before
//! the handle is looked at, as Zircon's `switch` does). An older VMO topic writes the prefix of
//! the current record that its smaller record is (Zircon's `SubsetVmoInfoWriter`), with the
//! fields' current meanings; the older maps topics carry page counts (`InfoMaps::to_v2`).
//!
//! The VMO records carry the VMO's memory attribution (`vm::Vmo::attribution`: committed,
//! private and scaled bytes), computed in lock-bounded steps with a preemption point between
//! two.
//!
//! Single-record topics follow Zircon's `single_record_result`: a buffer of at least one record
//! gets it (`actual = 1`), a smaller one (0 included) gets nothing, `actual = 0`, and the call
//! returns `ZX_ERR_BUFFER_TOO_SMALL` after writing `actual` / `avail` (`avail = 1`); both are
//! optional (null is skipped). Multi-record topics (the maps) write as many whole records as
//! fit, set `actual` to that and `avail` to the total, and return `ZX_OK` even when truncated.
//! A record that cannot be copied out is `ZX_ERR_INVALID_ARGS`.

use abi::exception::{ExceptionReportV1, InfoThread};
use abi::info::maps_type::{
    ZX_INFO_MAPS_TYPE_ASPACE, ZX_INFO_MAPS_TYPE_MAPPING, ZX_INFO_MAPS_TYPE_VMAR,
};
use abi::info::topic::*;
use abi::info::vmo_flags::{
    ZX_INFO_VMO_DISCARDABLE, ZX_INFO_VMO_IS_COW_CLONE, ZX_INFO_VMO_RESIZABLE,
    ZX_INFO_VMO_TYPE_PAGED, ZX_INFO_VMO_VIA_HANDLE, ZX_INFO_VMO_VIA_MAPPING,
};
use abi::info::{
    name_field, InfoMaps, InfoMapsMapping, InfoMapsV1, InfoVmar, InfoVmo, InfoVmoV1, InfoVmoV2,
    InfoVmoV3,
};
use abi::rights::ZX_RIGHT_INSPECT;
use abi::vm_options::{ZX_VM_PERM_EXECUTE, ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use abi::wire::Wire;
use abi::{Status, ZxResult, PAGE_SIZE};
use alloc::sync::Arc;
use alloc::vec::Vec;
use vm::{MmuFlags, RegionInfo, Vmo};

use super::lookup;
use crate::context::{with_process_table, with_table, SyscallContext};
use crate::object::{vmo_koid, vmo_koid_from_id, Object, ProcessObject};
use crate::user_ptr::{UserOut, UserOutArray};

/// `zx_object_get_info(handle, topic, *buffer, buffer_size, *actual, *avail)`.
pub fn get_info(
    ctx: &mut dyn SyscallContext,
    handle: u32,
    topic: u32,
    buffer: usize,
    buffer_size: usize,
    actual: UserOut<usize>,
    avail: UserOut<usize>,
) -> ZxResult {
    let out = Out {
        buffer,
        buffer_size,
        actual,
        avail,
    };
    match topic {
        ZX_INFO_HANDLE_VALID => with_table(ctx, |table| table.get(handle).map(drop)),
        ZX_INFO_HANDLE_BASIC => {
            let info = with_table(ctx, |table| {
                table.get(handle).map(|h| h.object().basic_info(h.rights()))
            })?;
            out.single(ctx, &info)
        }
        ZX_INFO_PROCESS => {
            let (process, _) = lookup(ctx, handle, ZX_RIGHT_INSPECT, Object::as_process)?;
            out.single(ctx, &process.info())
        }
        ZX_INFO_THREAD => {
            let (thread, _) = lookup(ctx, handle, ZX_RIGHT_INSPECT, Object::as_thread)?;
            let channel_type = thread.exception_state().get().map_or(0, |f| f.channel_type);
            let info = InfoThread {
                state: thread.state(),
                wait_exception_channel_type: channel_type,
                cpu_affinity_mask: [1, 0, 0, 0, 0, 0, 0, 0],
            };
            out.single(ctx, &info)
        }
        ZX_INFO_THREAD_EXCEPTION_REPORT | ZX_INFO_THREAD_EXCEPTION_REPORT_V1 => {
            let (thread, _) = lookup(ctx, handle, ZX_RIGHT_INSPECT, Object::as_thread)?;
            let report = thread.exception_state().get()?.report;
            if topic == ZX_INFO_THREAD_EXCEPTION_REPORT {
                out.single(ctx, &report)
            } else {
                out.single(ctx, &ExceptionReportV1(report))
            }
        }
        ZX_INFO_VMAR => {
            let (vmar, _) = lookup(ctx, handle, ZX_RIGHT_INSPECT, Object::as_vmar)?;
            let info = InfoVmar {
                base: vmar.vmar().base(),
                len: vmar.vmar().size(),
            };
            out.single(ctx, &info)
        }
        _ => vm_topic(ctx, handle, topic, out),
    }
}

/// The memory topics of [`get_info`]: VMOs, a process's VMOs and the mapping listings.
fn vm_topic(ctx: &mut dyn SyscallContext, handle: u32, topic: u32, out: Out) -> ZxResult {
    match topic {
        ZX_INFO_VMO | ZX_INFO_VMO_V1 | ZX_INFO_VMO_V2 | ZX_INFO_VMO_V3 => {
            // Zircon: no right needed.
            let (vmo, rights) = lookup(ctx, handle, 0, Object::as_vmo)?;
            let info = vmo_info(&vmo, Via::Handle(rights), &mut || ctx.preempt_point());
            drop(vmo);
            match topic {
                ZX_INFO_VMO_V1 => out.single(ctx, &InfoVmoV1::of(info)),
                ZX_INFO_VMO_V2 => out.single(ctx, &InfoVmoV2::of(info)),
                ZX_INFO_VMO_V3 => out.single(ctx, &InfoVmoV3::of(info)),
                _ => out.single(ctx, &info),
            }
        }
        ZX_INFO_PROCESS_VMOS
        | ZX_INFO_PROCESS_VMOS_V1
        | ZX_INFO_PROCESS_VMOS_V2
        | ZX_INFO_PROCESS_VMOS_V3 => {
            let (process, _) = lookup(ctx, handle, ZX_RIGHT_INSPECT, Object::as_process)?;
            match topic {
                ZX_INFO_PROCESS_VMOS_V1 => out.vmos(ctx, &*process, InfoVmoV1::of),
                ZX_INFO_PROCESS_VMOS_V2 => out.vmos(ctx, &*process, InfoVmoV2::of),
                ZX_INFO_PROCESS_VMOS_V3 => out.vmos(ctx, &*process, InfoVmoV3::of),
                _ => out.vmos(ctx, &*process, |info| info),
            }
        }
        ZX_INFO_PROCESS_MAPS | ZX_INFO_PROCESS_MAPS_V1 | ZX_INFO_PROCESS_MAPS_V2 => {
            let (process, _) = lookup(ctx, handle, ZX_RIGHT_INSPECT, Object::as_process)?;
            let root = process.root_vmar()?;
            let aspace = InfoMaps {
                name: process.name(),
                base: root.vmar().base(),
                size: root.vmar().size(),
                depth: 0,
                r#type: ZX_INFO_MAPS_TYPE_ASPACE,
                ..InfoMaps::default()
            };
            let vmar = root.vmar();
            match topic {
                ZX_INFO_PROCESS_MAPS_V1 => {
                    out.maps(ctx, Some(&aspace), vmar, 1, |m| InfoMapsV1::of(m.to_v2()))
                }
                ZX_INFO_PROCESS_MAPS_V2 => out.maps(ctx, Some(&aspace), vmar, 1, InfoMaps::to_v2),
                _ => out.maps(ctx, Some(&aspace), vmar, 1, |m| *m),
            }
        }
        ZX_INFO_VMAR_MAPS => {
            let (vmar, _) = lookup(ctx, handle, ZX_RIGHT_INSPECT, Object::as_vmar)?;
            out.maps(ctx, None, vmar.vmar(), 0, |m| *m)
        }
        _ => Err(Status::ERR_NOT_SUPPORTED),
    }
}

/// The user's `(buffer, buffer_size, actual, avail)`.
struct Out {
    buffer: usize,
    buffer_size: usize,
    actual: UserOut<usize>,
    avail: UserOut<usize>,
}

impl Out {
    /// Zircon's `single_record_result`.
    fn single<T: Wire>(&self, ctx: &mut dyn SyscallContext, record: &T) -> ZxResult {
        let actual = if self.buffer_size >= T::SIZE {
            UserOut::<T>::new(self.buffer)
                .write(ctx.user_memory(), record)
                .map_err(|_| Status::ERR_INVALID_ARGS)?;
            1
        } else {
            0
        };
        self.actual.write_if_nonnull(ctx.user_memory(), &actual)?;
        self.avail.write_if_nonnull(ctx.user_memory(), &1)?;
        if actual == 0 {
            return Err(Status::ERR_BUFFER_TOO_SMALL);
        }
        Ok(())
    }

    /// The maps topics: `head` (the address-space entry of `ZX_INFO_PROCESS_MAPS`), then the
    /// walk of `vmar`, `extra_depth` levels deeper, as many whole records as fit (each made by
    /// `convert` from the current one, for the older topic versions); `avail` counts them all.
    /// The walk goes in steps of [`RECORDS_PER_STEP`] entries listed under the tree lock
    /// (O(log n + step)), each mapping's attribution taken from its VMO outside that lock
    /// (`vm::Vmo::attribution_in`: O(log n + `vm::vmo::COUNT_RUN`) for a VMO outside a clone
    /// family, else lock-bounded steps with preemption points), the records copied out as they
    /// come, with a preemption point after each step and each mapping. So
    /// the kernel holds O(step) memory whatever the mapping count, and each record is exact
    /// when taken (see `vm::Vmar::walk_step` for what may change between steps; Zircon's
    /// enumeration also drops its lock between batches).
    fn maps<T: Wire>(
        &self,
        ctx: &mut dyn SyscallContext,
        head: Option<&InfoMaps>,
        vmar: &vm::Vmar,
        extra_depth: usize,
        convert: impl Fn(&InfoMaps) -> T,
    ) -> ZxResult {
        let array = UserOutArray::<T>::new(self.buffer, self.buffer_size);
        let capacity = array.capacity();
        let mut avail = 0usize;
        let mut put = |ctx: &mut dyn SyscallContext, record: &InfoMaps| -> ZxResult {
            if avail < capacity {
                array
                    .write(ctx.user_memory(), avail, &convert(record))
                    .map_err(|_| Status::ERR_INVALID_ARGS)?;
            }
            avail += 1;
            Ok(())
        };
        let mut cursor = vm::WalkCursor::new();
        let mut step = vmar.walk_step(&mut cursor, RECORDS_PER_STEP)?;
        if let Some(head) = head {
            put(ctx, head)?;
        }
        let mut first = true;
        loop {
            ctx.preempt_point();
            let page = PAGE_SIZE as u64;
            for (region, vmo) in step {
                let mut attribution = vm::vmo::Attribution::default();
                if let (
                    RegionInfo::Mapping {
                        size, vmo_offset, ..
                    },
                    Some(vmo),
                ) = (&region, vmo)
                {
                    let start = *vmo_offset / page;
                    let end = start.saturating_add((*size / PAGE_SIZE) as u64);
                    attribution = vmo.attribution_in(start, end, &mut || ctx.preempt_point());
                    drop(vmo);
                    ctx.preempt_point();
                }
                let mut record = maps_entry(&region, extra_depth, &attribution);
                if first && vmar.is_root() {
                    // The first entry of a walk is the walked VMAR: "root" for the root VMAR.
                    record.name = name_field(b"root");
                }
                first = false;
                put(ctx, &record)?;
            }
            if cursor.is_done() {
                break;
            }
            step = vmar.walk_step(&mut cursor, RECORDS_PER_STEP)?;
        }
        self.actual
            .write_if_nonnull(ctx.user_memory(), &avail.min(capacity))?;
        self.avail.write_if_nonnull(ctx.user_memory(), &avail)?;
        Ok(())
    }
}

/// How a process reaches a VMO it lists.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    /// Through a handle with these rights.
    Handle(u32),
    /// Through a mapping.
    Mapping,
}

/// `zx_info_vmo_t` for `vmo` reached `via` a handle or a mapping; `preempt` runs (with no lock
/// held) between the steps of the attribution walk.
pub fn vmo_info(vmo: &Vmo, via: Via, preempt: &mut dyn FnMut()) -> InfoVmo {
    let (mut flags, handle_rights) = match via {
        Via::Handle(rights) => (ZX_INFO_VMO_TYPE_PAGED | ZX_INFO_VMO_VIA_HANDLE, rights),
        Via::Mapping => (ZX_INFO_VMO_TYPE_PAGED | ZX_INFO_VMO_VIA_MAPPING, 0),
    };
    if vmo.is_resizable() {
        flags |= ZX_INFO_VMO_RESIZABLE;
    }
    if vmo.is_discardable() {
        flags |= ZX_INFO_VMO_DISCARDABLE;
    }
    if vmo.is_cow_clone() {
        flags |= ZX_INFO_VMO_IS_COW_CLONE;
    }
    let attribution = vmo.attribution(preempt);
    let mappings = vmo.mapping_count();
    let parent_koid = match vmo.parent_id() {
        0 => 0,
        id => vmo_koid_from_id(id),
    };
    InfoVmo {
        koid: vmo_koid(vmo),
        parent_koid,
        num_children: vmo.child_count(),
        size_bytes: vmo.size(),
        num_mappings: mappings,
        share_count: mappings.min(1),
        flags,
        committed_bytes: attribution.bytes,
        name: vmo.name(),
        handle_rights,
        populated_bytes: attribution.bytes,
        committed_private_bytes: attribution.private_bytes,
        populated_private_bytes: attribution.private_bytes,
        committed_scaled_bytes: attribution.scaled.integral,
        populated_scaled_bytes: attribution.scaled.integral,
        committed_fractional_scaled_bytes: attribution.scaled.fractional,
        populated_fractional_scaled_bytes: attribution.scaled.fractional,
        ..InfoVmo::default()
    }
}

impl Out {
    /// `ZX_INFO_PROCESS_VMOS` (each record made by `record` from the current one, for the
    /// older topic versions): the VMOs `process` holds through handles, in handle-table slot
    /// order, then those its mappings map, in the order of `ZX_INFO_PROCESS_MAPS`; a VMO
    /// reached several ways is listed once per way, as in Zircon. As many whole records as fit
    /// are written, `actual` / `avail` as for the maps. The handle table and the mapping tree
    /// are each read [`RECORDS_PER_STEP`] entries per hold of their lock, and each record's
    /// attribution walk and copy-out happen with no lock held, a preemption point after each.
    /// `ZX_ERR_BAD_STATE` once the process's address space is gone.
    fn vmos<T: Wire>(
        &self,
        ctx: &mut dyn SyscallContext,
        process: &dyn ProcessObject,
        record: impl Fn(InfoVmo) -> T,
    ) -> ZxResult {
        let root = process.root_vmar()?;
        let array = UserOutArray::<T>::new(self.buffer, self.buffer_size);
        let capacity = array.capacity();
        let mut avail = 0usize;
        let mut put = |ctx: &mut dyn SyscallContext, vmo: &Vmo, via: Via| -> ZxResult {
            if avail < capacity {
                let info = vmo_info(vmo, via, &mut || ctx.preempt_point());
                array
                    .write(ctx.user_memory(), avail, &record(info))
                    .map_err(|_| Status::ERR_INVALID_ARGS)?;
            }
            avail += 1;
            ctx.preempt_point();
            Ok(())
        };
        let mut next_slot = 0usize;
        loop {
            let step: Vec<(Arc<Vmo>, u32)> = with_process_table(process, |table| {
                let mut step = Vec::new();
                for (slot, handle) in table.slots_from(next_slot) {
                    next_slot = slot + 1;
                    if let Some(vmo) = handle.object().as_vmo() {
                        step.push((vmo, handle.rights()));
                        if step.len() == RECORDS_PER_STEP {
                            break;
                        }
                    }
                }
                step
            });
            let more = step.len() == RECORDS_PER_STEP;
            for (vmo, rights) in step {
                put(ctx, &vmo, Via::Handle(rights))?;
            }
            if !more {
                break;
            }
        }
        let mut cursor = vm::WalkCursor::new();
        loop {
            let step = root.vmar().walk_step(&mut cursor, RECORDS_PER_STEP)?;
            for (region, vmo) in step {
                if let (RegionInfo::Mapping { .. }, Some(vmo)) = (&region, vmo) {
                    put(ctx, &vmo, Via::Mapping)?;
                }
            }
            if cursor.is_done() {
                break;
            }
            ctx.preempt_point();
        }
        self.actual
            .write_if_nonnull(ctx.user_memory(), &avail.min(capacity))?;
        self.avail.write_if_nonnull(ctx.user_memory(), &avail)?;
        Ok(())
    }
}

/// `ZX_VM_PERM_*` bits of MMU permissions.
fn perm_bits(perms: MmuFlags) -> u32 {
    let mut bits = 0;
    if perms.contains(MmuFlags::READ) {
        bits |= ZX_VM_PERM_READ;
    }
    if perms.contains(MmuFlags::WRITE) {
        bits |= ZX_VM_PERM_WRITE;
    }
    if perms.contains(MmuFlags::EXECUTE) {
        bits |= ZX_VM_PERM_EXECUTE;
    }
    bits
}

/// Records copied out (or listed) between two preemption points.
const RECORDS_PER_STEP: usize = 256;

/// One `zx_info_maps_t` from a `vm` walk entry, `extra_depth` levels deeper (1 below the aspace
/// entry of `ZX_INFO_PROCESS_MAPS`). Names as Zircon's: VMARs made by `zx_vmar_allocate` are
/// "useralloc" (see [`name_root`] for the root); mappings carry their VMO's name.
fn maps_entry(region: &RegionInfo, extra_depth: usize, a: &vm::vmo::Attribution) -> InfoMaps {
    match *region {
        RegionInfo::Vmar {
            depth, base, size, ..
        } => InfoMaps {
            name: name_field(b"useralloc"),
            base,
            size,
            depth: depth + extra_depth,
            r#type: ZX_INFO_MAPS_TYPE_VMAR,
            ..InfoMaps::default()
        },
        RegionInfo::Mapping {
            depth,
            base,
            size,
            perms,
            vmo_id,
            vmo_offset,
            vmo_name,
            ..
        } => InfoMaps {
            name: vmo_name,
            base,
            size,
            depth: depth + extra_depth,
            r#type: ZX_INFO_MAPS_TYPE_MAPPING,
            u: InfoMapsMapping {
                mmu_flags: perm_bits(perms),
                vmo_koid: crate::object::vmo_koid_from_id(vmo_id),
                vmo_offset,
                committed_bytes: a.bytes,
                populated_bytes: a.bytes,
                committed_private_bytes: a.private_bytes,
                populated_private_bytes: a.private_bytes,
                committed_scaled_bytes: a.scaled.integral,
                populated_scaled_bytes: a.scaled.integral,
                committed_fractional_scaled_bytes: a.scaled.fractional,
                populated_fractional_scaled_bytes: a.scaled.fractional,
                ..InfoMapsMapping::default()
            },
            ..InfoMaps::default()
        },
    }
}
