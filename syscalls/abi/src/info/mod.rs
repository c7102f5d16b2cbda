//! `zx_object_get_info`: topic numbers and the info records with Zircon's exact C layout.
//!
//! Values and layouts follow `zircon/system/public/zircon/syscalls/object.h` (recent Fuchsia,
//! including the versioned topics built with `__ZX_INFO_TOPIC(t, v) = t | v << 28`). Each record is
//! a `#[repr(C)]` plain struct whose [`Wire`] encoding writes every field at its C offset (checked
//! against `core::mem::offset_of!` in the tests), so kernel and user code share one definition and
//! neither needs unsafe code to move it across the boundary.

use crate::wire::{Reader, Wire, Writer};

/// `ZX_MAX_NAME_LEN`: size of the name fields, including the terminating NUL.
pub const ZX_MAX_NAME_LEN: usize = 32;

const fn topic(t: u32, version: u32) -> u32 {
    t | (version << 28)
}

/// `zx_object_info_topic_t` values.
pub mod topic {
    use super::topic as t;
    /// No topic.
    pub const ZX_INFO_NONE: u32 = 0;
    /// Is the handle valid? No record; the status answers.
    pub const ZX_INFO_HANDLE_VALID: u32 = 1;
    /// [`super::InfoHandleBasic`]`[1]`.
    pub const ZX_INFO_HANDLE_BASIC: u32 = 2;
    /// [`super::InfoProcess`]`[1]` (version 1 of topic 3: return_code, start_time, flags).
    pub const ZX_INFO_PROCESS: u32 = t(3, 1);
    /// `zx_koid_t[n]`: the threads of a process.
    pub const ZX_INFO_PROCESS_THREADS: u32 = 4;
    /// [`super::InfoVmar`]`[1]`.
    pub const ZX_INFO_VMAR: u32 = 7;
    /// `zx_info_thread_t[1]` ([`crate::exception::InfoThread`]).
    pub const ZX_INFO_THREAD: u32 = 10;
    /// Version 0 of the exception report topic (32 bytes, no `synth_code` / `synth_data`).
    pub const ZX_INFO_THREAD_EXCEPTION_REPORT_V1: u32 = t(11, 0);
    /// [`crate::exception::ExceptionReport`]`[1]` of a thread stopped in an exception.
    pub const ZX_INFO_THREAD_EXCEPTION_REPORT: u32 = t(11, 1);
    /// `zx_info_task_stats_t[1]`.
    pub const ZX_INFO_TASK_STATS: u32 = 12;
    /// Version 0 of the maps topic ([`super::InfoMapsV1`]`[n]`, without `populated_pages`).
    pub const ZX_INFO_PROCESS_MAPS_V1: u32 = t(13, 0);
    /// Version 1 of the maps topic ([`super::InfoMapsV2`]`[n]`: page counts).
    pub const ZX_INFO_PROCESS_MAPS_V2: u32 = t(13, 1);
    /// [`super::InfoMaps`]`[n]`: the aspace / VMAR / mapping tree of a process, depth-first,
    /// each mapping with its range's attribution.
    pub const ZX_INFO_PROCESS_MAPS: u32 = t(13, 2);
    /// Version 0 of the process VMOs topic ([`super::InfoVmoV1`]`[n]`).
    pub const ZX_INFO_PROCESS_VMOS_V1: u32 = t(14, 0);
    /// Version 1 of the process VMOs topic ([`super::InfoVmoV2`]`[n]`).
    pub const ZX_INFO_PROCESS_VMOS_V2: u32 = t(14, 1);
    /// Version 2 of the process VMOs topic ([`super::InfoVmoV3`]`[n]`).
    pub const ZX_INFO_PROCESS_VMOS_V3: u32 = t(14, 2);
    /// [`super::InfoVmo`]`[n]`: the VMOs a process holds through handles or maps.
    pub const ZX_INFO_PROCESS_VMOS: u32 = t(14, 3);
    /// `zx_info_handle_count_t[1]`.
    pub const ZX_INFO_HANDLE_COUNT: u32 = 19;
    /// Version 0 of the VMO topic ([`super::InfoVmoV1`], `zx_info_vmo_v1_t`).
    pub const ZX_INFO_VMO_V1: u32 = t(23, 0);
    /// Version 1 of the VMO topic ([`super::InfoVmoV2`], `zx_info_vmo_v2_t`).
    pub const ZX_INFO_VMO_V2: u32 = t(23, 1);
    /// Version 2 of the VMO topic ([`super::InfoVmoV3`], `zx_info_vmo_v3_t`: up to
    /// `populated_bytes`).
    pub const ZX_INFO_VMO_V3: u32 = t(23, 2);
    /// [`super::InfoVmo`]`[1]` (version 3: with the private and scaled bytes).
    pub const ZX_INFO_VMO: u32 = t(23, 3);
    /// `zx_info_handle_extended_t[n]`.
    pub const ZX_INFO_HANDLE_TABLE: u32 = 27;
    /// [`super::InfoMaps`]`[n]`: like PROCESS_MAPS but rooted at a VMAR handle (recent Zircon).
    pub const ZX_INFO_VMAR_MAPS: u32 = 36;
}

/// `zx_info_maps_type_t`: which kind of node a [`InfoMaps`] entry describes.
pub mod maps_type {
    /// No node.
    pub const ZX_INFO_MAPS_TYPE_NONE: u32 = 0;
    /// The address space (root).
    pub const ZX_INFO_MAPS_TYPE_ASPACE: u32 = 1;
    /// A VMAR.
    pub const ZX_INFO_MAPS_TYPE_VMAR: u32 = 2;
    /// A mapping; `u.mapping` is valid.
    pub const ZX_INFO_MAPS_TYPE_MAPPING: u32 = 3;
}

/// `zx_info_process_flags_t` bits of [`InfoProcess::flags`].
pub mod process_flags {
    /// `zx_process_start` was called; `start_time` is valid.
    pub const ZX_INFO_PROCESS_FLAG_STARTED: u32 = 1 << 0;
    /// The process exited; `return_code` is valid.
    pub const ZX_INFO_PROCESS_FLAG_EXITED: u32 = 1 << 1;
    /// A debugger is attached.
    pub const ZX_INFO_PROCESS_FLAG_DEBUGGER_ATTACHED: u32 = 1 << 2;
}

/// Bits of [`InfoVmo::flags`].
pub mod vmo_flags {
    /// Backed by RAM (the other type, PHYSICAL, is 0).
    pub const ZX_INFO_VMO_TYPE_PAGED: u32 = 1 << 0;
    /// Points at a physical range.
    pub const ZX_INFO_VMO_TYPE_PHYSICAL: u32 = 0;
    /// Resizable.
    pub const ZX_INFO_VMO_RESIZABLE: u32 = 1 << 1;
    /// A copy-on-write child.
    pub const ZX_INFO_VMO_IS_COW_CLONE: u32 = 1 << 2;
    /// Reached through a handle (PROCESS_VMOS).
    pub const ZX_INFO_VMO_VIA_HANDLE: u32 = 1 << 3;
    /// Reached through a mapping (PROCESS_VMOS).
    pub const ZX_INFO_VMO_VIA_MAPPING: u32 = 1 << 4;
    /// Pager-backed.
    pub const ZX_INFO_VMO_PAGER_BACKED: u32 = 1 << 5;
    /// Physically contiguous.
    pub const ZX_INFO_VMO_CONTIGUOUS: u32 = 1 << 6;
    /// Discardable.
    pub const ZX_INFO_VMO_DISCARDABLE: u32 = 1 << 7;
    /// Immutable since creation.
    pub const ZX_INFO_VMO_IMMUTABLE: u32 = 1 << 8;
}

/// One whole byte in a `*_fractional_scaled_bytes` field: Zircon's fixed-point fraction with 63
/// bits of precision (`0x8000_0000_0000_0000` is a full byte, so a sum of fractions can be
/// carried into the byte count when it reaches this value).
pub const FRACTIONAL_BYTE: u64 = 1 << 63;

/// `UINT64_MAX` in a `*_fractional_scaled_bytes` field: the kernel does not compute the scaled
/// fields (Zircon's "not supported" sentinel; a computed fraction is always below
/// [`FRACTIONAL_BYTE`]). This kernel always computes them.
pub const FRACTIONAL_UNSUPPORTED: u64 = u64::MAX;

/// A byte count with a fraction: a `*_scaled_bytes` field and its `*_fractional_scaled_bytes`
/// companion (Zircon's `vm::FractionalBytes`). `fractional` is below [`FRACTIONAL_BYTE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScaledBytes {
    /// Whole bytes.
    pub integral: u64,
    /// The fraction of a byte, in units of 2^-63 byte.
    pub fractional: u64,
}

impl ScaledBytes {
    /// `bytes / sharers`, the fraction truncated to 63 bits (`sharers` 0 counts as 1).
    pub fn share_of(bytes: u64, sharers: u64) -> ScaledBytes {
        let sharers = sharers.max(1);
        let rest = bytes % sharers;
        ScaledBytes {
            integral: bytes / sharers,
            // rest < sharers, so the quotient is below 2^63.
            fractional: ((u128::from(rest) << 63) / u128::from(sharers)) as u64,
        }
    }

    /// Whole bytes, rounded to the nearest: a sum of shares whose truncated fractions make it
    /// fall short of a whole byte by a few 2^-63 comes out as that byte.
    pub fn round(self) -> u64 {
        self.integral
            .saturating_add(u64::from(self.fractional >= FRACTIONAL_BYTE / 2))
    }
}

impl core::ops::Add for ScaledBytes {
    type Output = ScaledBytes;

    /// The sum, the fractions carried into whole bytes (the whole bytes saturate).
    fn add(self, other: ScaledBytes) -> ScaledBytes {
        // Both fractions are below 2^63: their sum fits in u64.
        let fraction = self.fractional + other.fractional;
        let carry = u64::from(fraction >= FRACTIONAL_BYTE);
        ScaledBytes {
            integral: self
                .integral
                .saturating_add(other.integral)
                .saturating_add(carry),
            fractional: fraction - carry * FRACTIONAL_BYTE,
        }
    }
}

/// Implements [`Wire`] for a record from an ordered field list (`field: Type` or `pad N`).
macro_rules! record {
    ($t:ty, $size:expr, $align:expr, |$s:ident, $w:ident| $enc:block, |$r:ident| $dec:expr) => {
        impl Wire for $t {
            const SIZE: usize = $size;
            const ALIGN: usize = $align;
            fn encode(&self, out: &mut [u8]) {
                let $s = self;
                let mut writer = Writer::new(out, $size);
                let $w = &mut writer;
                $enc
                debug_assert_eq!(writer.position(), $size);
            }
            fn decode(bytes: &[u8]) -> Self {
                let _ = &bytes[..$size];
                let mut reader = Reader::new(bytes);
                let $r = &mut reader;
                $dec
            }
        }
    };
}

/// `zx_info_handle_basic_t` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoHandleBasic {
    /// Koid of the object.
    pub koid: u64,
    /// Rights of the handle.
    pub rights: u32,
    /// `zx_obj_type_t` of the object.
    pub r#type: u32,
    /// Koid of a related object (channel peer, parent job), or 0.
    pub related_koid: u64,
    /// Reserved, zero.
    pub reserved: u32,
    /// Padding, zero.
    pub padding1: [u8; 4],
}

record!(
    InfoHandleBasic,
    32,
    8,
    |s, w| {
        w.put(s.koid)
            .put(s.rights)
            .put(s.r#type)
            .put(s.related_koid)
            .put(s.reserved)
            .pad(4);
    },
    |r| InfoHandleBasic {
        koid: r.get(),
        rights: r.get(),
        r#type: r.get(),
        related_koid: r.get(),
        reserved: r.get(),
        padding1: [0; 4],
    }
);

/// `zx_info_process_t` (24 bytes; topic version 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoProcess {
    /// Return code; valid with `ZX_INFO_PROCESS_FLAG_EXITED`. A `ZX_TASK_RETCODE_*` if killed.
    pub return_code: i64,
    /// Monotonic time of `zx_process_start`; valid with `ZX_INFO_PROCESS_FLAG_STARTED`.
    pub start_time: i64,
    /// `ZX_INFO_PROCESS_FLAG_*` bits.
    pub flags: u32,
    /// Padding, zero.
    pub padding1: [u8; 4],
}

record!(
    InfoProcess,
    24,
    8,
    |s, w| {
        w.put(s.return_code).put(s.start_time).put(s.flags).pad(4);
    },
    |r| {
        let return_code = r.get();
        let start_time = r.get();
        let flags = r.get();
        InfoProcess {
            return_code,
            start_time,
            flags,
            padding1: [0; 4],
        }
    }
);

/// `zx_info_vmar_t` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoVmar {
    /// Base address of the region.
    pub base: usize,
    /// Length in bytes.
    pub len: usize,
}

record!(
    InfoVmar,
    16,
    8,
    |s, w| {
        w.put(s.base).put(s.len);
    },
    |r| InfoVmar {
        base: r.get(),
        len: r.get()
    }
);

/// `zx_info_vmo_t` (176 bytes; topic version 3).
///
/// The whole layout is kept so user code written against Zircon reads the right offsets. Fields
/// this kernel fills: `koid`, `name`, `size_bytes`, `parent_koid` (the VMO it was created from,
/// 0 for none), `num_children` (live direct children),
/// `num_mappings`, `share_count`, `flags`, `committed_bytes`, `handle_rights`, `cache_policy`
/// (0 = cached), `populated_bytes` (= committed), and the attribution fields as current Zircon
/// defines them: `committed_bytes` counts every committed page the VMO can see (a page shared
/// with a clone counts in each VMO that sees it), the `*_private_bytes` only the pages no other
/// VMO holds, and the `*_scaled_bytes` each page's bytes divided by the number of VMOs holding
/// it, the fraction in `*_fractional_scaled_bytes` ([`FRACTIONAL_BYTE`] = one byte; see
/// [`ScaledBytes`]). A slice attributes its window's pages to its parent: its private and
/// scaled bytes are 0. `metadata_bytes` and `committed_change_events` read as 0.
///
/// The older topic versions are prefixes of this record: [`InfoVmoV1`] (104 bytes),
/// [`InfoVmoV2`] (120), [`InfoVmoV3`] (128).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoVmo {
    /// Koid of the VMO.
    pub koid: u64,
    /// Name, NUL-terminated.
    pub name: [u8; ZX_MAX_NAME_LEN],
    /// Size in bytes.
    pub size_bytes: u64,
    /// Koid of the parent if this is a child, else 0.
    pub parent_koid: u64,
    /// Number of children.
    pub num_children: usize,
    /// Number of mappings of this VMO.
    pub num_mappings: usize,
    /// Estimated number of address spaces mapping it.
    pub share_count: usize,
    /// `ZX_INFO_VMO_*` bits.
    pub flags: u32,
    /// Padding, zero.
    pub padding1: [u8; 4],
    /// Bytes of physical memory committed.
    pub committed_bytes: u64,
    /// Rights of the handle (with `ZX_INFO_VMO_VIA_HANDLE`).
    pub handle_rights: u32,
    /// `ZX_CACHE_POLICY_*`.
    pub cache_policy: u32,
    /// Kernel metadata bytes.
    pub metadata_bytes: u64,
    /// Count of kernel-initiated commit changes.
    pub committed_change_events: u64,
    /// Bytes of content populated.
    pub populated_bytes: u64,
    /// Committed bytes no other VMO can see (USS).
    pub committed_private_bytes: u64,
    /// Populated bytes no other VMO can see.
    pub populated_private_bytes: u64,
    /// Committed bytes, each shared page divided among the VMOs sharing it (PSS), whole bytes.
    pub committed_scaled_bytes: u64,
    /// Populated bytes scaled as `committed_scaled_bytes`.
    pub populated_scaled_bytes: u64,
    /// The fraction of a byte of `committed_scaled_bytes`, in units of 2^-63 byte.
    pub committed_fractional_scaled_bytes: u64,
    /// The fraction of a byte of `populated_scaled_bytes`.
    pub populated_fractional_scaled_bytes: u64,
}

impl InfoVmo {
    /// `committed_scaled_bytes` with its fraction.
    pub fn committed_scaled(&self) -> ScaledBytes {
        ScaledBytes {
            integral: self.committed_scaled_bytes,
            fractional: self.committed_fractional_scaled_bytes,
        }
    }
}

/// Version 1 of `zx_info_vmo_t` (`ZX_INFO_VMO_V1`): up to `cache_policy`.
pub type InfoVmoV1 = Prefix<InfoVmo, 104>;
/// Version 2 of `zx_info_vmo_t` (`ZX_INFO_VMO_V2`): up to `committed_change_events`.
pub type InfoVmoV2 = Prefix<InfoVmo, 120>;
/// Version 3 of `zx_info_vmo_t` (`ZX_INFO_VMO_V3`): up to `populated_bytes`.
pub type InfoVmoV3 = Prefix<InfoVmo, 128>;

/// An older version of a record whose later versions only append fields: the first `N` bytes
/// of `T`'s encoding (decoded with the missing fields zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prefix<T, const N: usize>(pub T);

impl<T, const N: usize> Prefix<T, N> {
    /// The older version of `record` (usable through the aliases: `InfoVmoV1::of(info)`).
    pub const fn of(record: T) -> Self {
        Prefix(record)
    }
}

impl<T: Wire, const N: usize> Wire for Prefix<T, N> {
    const SIZE: usize = N;
    const ALIGN: usize = T::ALIGN;
    fn encode(&self, out: &mut [u8]) {
        let mut full = [0u8; 256];
        self.0.encode(&mut full[..T::SIZE]);
        out[..N].copy_from_slice(&full[..N]);
    }
    fn decode(bytes: &[u8]) -> Self {
        let mut full = [0u8; 256];
        full[..N].copy_from_slice(&bytes[..N]);
        Prefix(T::decode(&full[..T::SIZE]))
    }
}

record!(
    InfoVmo,
    176,
    8,
    |s, w| {
        w.put(s.koid)
            .bytes(&s.name)
            .put(s.size_bytes)
            .put(s.parent_koid)
            .put(s.num_children)
            .put(s.num_mappings)
            .put(s.share_count)
            .put(s.flags)
            .pad(4)
            .put(s.committed_bytes)
            .put(s.handle_rights)
            .put(s.cache_policy)
            .put(s.metadata_bytes)
            .put(s.committed_change_events)
            .put(s.populated_bytes)
            .put(s.committed_private_bytes)
            .put(s.populated_private_bytes)
            .put(s.committed_scaled_bytes)
            .put(s.populated_scaled_bytes)
            .put(s.committed_fractional_scaled_bytes)
            .put(s.populated_fractional_scaled_bytes);
    },
    |r| {
        let koid = r.get();
        let name = r.array();
        let size_bytes = r.get();
        let parent_koid = r.get();
        let num_children = r.get();
        let num_mappings = r.get();
        let share_count = r.get();
        let flags = r.get();
        r.skip(4);
        InfoVmo {
            koid,
            name,
            size_bytes,
            parent_koid,
            num_children,
            num_mappings,
            share_count,
            flags,
            padding1: [0; 4],
            committed_bytes: r.get(),
            handle_rights: r.get(),
            cache_policy: r.get(),
            metadata_bytes: r.get(),
            committed_change_events: r.get(),
            populated_bytes: r.get(),
            committed_private_bytes: r.get(),
            populated_private_bytes: r.get(),
            committed_scaled_bytes: r.get(),
            populated_scaled_bytes: r.get(),
            committed_fractional_scaled_bytes: r.get(),
            populated_fractional_scaled_bytes: r.get(),
        }
    }
);

/// `zx_info_maps_mapping_t` (88 bytes; current Zircon): the mapping arm of [`InfoMaps::u`], with
/// the mapped range's attribution in the fields and meanings of [`InfoVmo`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoMapsMapping {
    /// `ZX_VM_PERM_{READ,WRITE,EXECUTE}` bits.
    pub mmu_flags: u32,
    /// Padding, zero.
    pub padding1: [u8; 4],
    /// Koid of the mapped VMO.
    pub vmo_koid: u64,
    /// Offset into the VMO.
    pub vmo_offset: u64,
    /// Committed bytes of the mapped range (a page shared with a clone counts whole).
    pub committed_bytes: u64,
    /// Populated bytes of the mapped range.
    pub populated_bytes: u64,
    /// Committed bytes of the range no other VMO holds.
    pub committed_private_bytes: u64,
    /// Populated bytes of the range no other VMO holds.
    pub populated_private_bytes: u64,
    /// Committed bytes of the range, each page divided among its holders (whole bytes).
    pub committed_scaled_bytes: u64,
    /// Populated bytes scaled as `committed_scaled_bytes`.
    pub populated_scaled_bytes: u64,
    /// The fraction of a byte of `committed_scaled_bytes`, in units of 2^-63 byte.
    pub committed_fractional_scaled_bytes: u64,
    /// The fraction of a byte of `populated_scaled_bytes`.
    pub populated_fractional_scaled_bytes: u64,
}

record!(
    InfoMapsMapping,
    88,
    8,
    |s, w| {
        w.put(s.mmu_flags)
            .pad(4)
            .put(s.vmo_koid)
            .put(s.vmo_offset)
            .put(s.committed_bytes)
            .put(s.populated_bytes)
            .put(s.committed_private_bytes)
            .put(s.populated_private_bytes)
            .put(s.committed_scaled_bytes)
            .put(s.populated_scaled_bytes)
            .put(s.committed_fractional_scaled_bytes)
            .put(s.populated_fractional_scaled_bytes);
    },
    |r| {
        let mmu_flags = r.get();
        r.skip(4);
        InfoMapsMapping {
            mmu_flags,
            padding1: [0; 4],
            vmo_koid: r.get(),
            vmo_offset: r.get(),
            committed_bytes: r.get(),
            populated_bytes: r.get(),
            committed_private_bytes: r.get(),
            populated_private_bytes: r.get(),
            committed_scaled_bytes: r.get(),
            populated_scaled_bytes: r.get(),
            committed_fractional_scaled_bytes: r.get(),
            populated_fractional_scaled_bytes: r.get(),
        }
    }
);

/// `zx_info_maps_t` (152 bytes; `ZX_INFO_PROCESS_MAPS` version 2 and `ZX_INFO_VMAR_MAPS`): one
/// node of the aspace / VMAR / mapping tree.
///
/// The C `union { zx_info_maps_mapping_t mapping; } u` has a single arm, so it is represented as
/// that arm: `u` holds the mapping when `type == ZX_INFO_MAPS_TYPE_MAPPING` and is all zero
/// otherwise (Zircon zeroes it too). Use [`InfoMaps::mapping`] to read it by type.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoMaps {
    /// Name, NUL-terminated, or empty.
    pub name: [u8; ZX_MAX_NAME_LEN],
    /// Base address.
    pub base: usize,
    /// Size in bytes.
    pub size: usize,
    /// Depth in the tree (entries are depth-first pre-order).
    pub depth: usize,
    /// `ZX_INFO_MAPS_TYPE_*`.
    pub r#type: u32,
    /// Padding, zero.
    pub padding1: [u8; 4],
    /// The union; meaningful only for mappings.
    pub u: InfoMapsMapping,
}

impl InfoMaps {
    /// The mapping arm if this entry is a mapping.
    pub fn mapping(&self) -> Option<&InfoMapsMapping> {
        (self.r#type == maps_type::ZX_INFO_MAPS_TYPE_MAPPING).then_some(&self.u)
    }

    /// The same node in the version-2 record: the mapping's byte counts as page counts
    /// (`committed_bytes` / 4 KiB).
    pub fn to_v2(&self) -> InfoMapsV2 {
        let page = crate::PAGE_SIZE as u64;
        InfoMapsV2 {
            name: self.name,
            base: self.base,
            size: self.size,
            depth: self.depth,
            r#type: self.r#type,
            padding1: [0; 4],
            u: InfoMapsMappingV2 {
                mmu_flags: self.u.mmu_flags,
                padding1: [0; 4],
                vmo_koid: self.u.vmo_koid,
                vmo_offset: self.u.vmo_offset,
                committed_pages: (self.u.committed_bytes / page) as usize,
                populated_pages: (self.u.populated_bytes / page) as usize,
            },
        }
    }
}

record!(
    InfoMaps,
    152,
    8,
    |s, w| {
        w.bytes(&s.name)
            .put(s.base)
            .put(s.size)
            .put(s.depth)
            .put(s.r#type)
            .pad(4);
        let mut union = [0u8; 88];
        if s.r#type == maps_type::ZX_INFO_MAPS_TYPE_MAPPING {
            s.u.encode(&mut union);
        }
        w.bytes(&union);
    },
    |r| {
        let name = r.array();
        let base = r.get();
        let size = r.get();
        let depth = r.get();
        let r#type = r.get();
        r.skip(4);
        InfoMaps {
            name,
            base,
            size,
            depth,
            r#type,
            padding1: [0; 4],
            u: r.get(),
        }
    }
);

/// `zx_info_maps_v1_t` (96 bytes; `ZX_INFO_PROCESS_MAPS_V1`): [`InfoMapsV2`] without the
/// mapping's `populated_pages`.
pub type InfoMapsV1 = Prefix<InfoMapsV2, 96>;

/// `zx_info_maps_mapping_v2_t` (40 bytes): the mapping arm of [`InfoMapsV2::u`]. Its page
/// counts have `committed_bytes`' meaning (see [`InfoVmo`]), in pages.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoMapsMappingV2 {
    /// `ZX_VM_PERM_{READ,WRITE,EXECUTE}` bits.
    pub mmu_flags: u32,
    /// Padding, zero.
    pub padding1: [u8; 4],
    /// Koid of the mapped VMO.
    pub vmo_koid: u64,
    /// Offset into the VMO.
    pub vmo_offset: u64,
    /// Pages of the mapped range backed by physical memory.
    pub committed_pages: usize,
    /// Pages of content populated in the mapped range.
    pub populated_pages: usize,
}

record!(
    InfoMapsMappingV2,
    40,
    8,
    |s, w| {
        w.put(s.mmu_flags)
            .pad(4)
            .put(s.vmo_koid)
            .put(s.vmo_offset)
            .put(s.committed_pages)
            .put(s.populated_pages);
    },
    |r| {
        let mmu_flags = r.get();
        r.skip(4);
        InfoMapsMappingV2 {
            mmu_flags,
            padding1: [0; 4],
            vmo_koid: r.get(),
            vmo_offset: r.get(),
            committed_pages: r.get(),
            populated_pages: r.get(),
        }
    }
);

/// `zx_info_maps_v2_t` (104 bytes; `ZX_INFO_PROCESS_MAPS_V2`): [`InfoMaps`] with page counts
/// ([`InfoMapsMappingV2`]) in its mapping arm.
///
/// The C `union { zx_info_maps_mapping_t mapping; } u` has a single arm, so it is represented as
/// that arm: `u` holds the mapping when `type == ZX_INFO_MAPS_TYPE_MAPPING` and is all zero
/// otherwise (Zircon zeroes it too). Use [`InfoMapsV2::mapping`] to read it by type.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfoMapsV2 {
    /// Name, NUL-terminated, or empty.
    pub name: [u8; ZX_MAX_NAME_LEN],
    /// Base address.
    pub base: usize,
    /// Size in bytes.
    pub size: usize,
    /// Depth in the tree (entries are depth-first pre-order).
    pub depth: usize,
    /// `ZX_INFO_MAPS_TYPE_*`.
    pub r#type: u32,
    /// Padding, zero.
    pub padding1: [u8; 4],
    /// The union; meaningful only for mappings.
    pub u: InfoMapsMappingV2,
}

impl InfoMapsV2 {
    /// The mapping arm if this entry is a mapping.
    pub fn mapping(&self) -> Option<&InfoMapsMappingV2> {
        (self.r#type == maps_type::ZX_INFO_MAPS_TYPE_MAPPING).then_some(&self.u)
    }
}

record!(
    InfoMapsV2,
    104,
    8,
    |s, w| {
        w.bytes(&s.name)
            .put(s.base)
            .put(s.size)
            .put(s.depth)
            .put(s.r#type)
            .pad(4);
        let mut union = [0u8; 40];
        if s.r#type == maps_type::ZX_INFO_MAPS_TYPE_MAPPING {
            s.u.encode(&mut union);
        }
        w.bytes(&union);
    },
    |r| {
        let name = r.array();
        let base = r.get();
        let size = r.get();
        let depth = r.get();
        let r#type = r.get();
        r.skip(4);
        InfoMapsV2 {
            name,
            base,
            size,
            depth,
            r#type,
            padding1: [0; 4],
            u: r.get(),
        }
    }
);

/// Copies `name` into a NUL-terminated `ZX_MAX_NAME_LEN` field, truncating like Zircon does.
pub fn name_field(name: &[u8]) -> [u8; ZX_MAX_NAME_LEN] {
    let mut out = [0u8; ZX_MAX_NAME_LEN];
    let len = name.len().min(ZX_MAX_NAME_LEN - 1);
    out[..len].copy_from_slice(&name[..len]);
    out
}

#[cfg(test)]
mod tests;
