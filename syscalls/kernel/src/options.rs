//! Decoding of `zx_vm_option_t`: Zircon's split into permissions, placement flags and alignment.
//!
//! [`split`] is Zircon's `split_syscall_flags` (`zircon/kernel/object/vm_address_region_dispatcher.cc`):
//! every known bit is taken out (the three permissions, then the VMAR flags; the
//! `PERM_READ_IF_XOM_UNSUPPORTED` hint is dropped), any bit left below `ZX_VM_ALIGN_BASE` is
//! unknown and gives `ZX_ERR_INVALID_ARGS`, and the alignment field must be 0 (none) or 10..=32
//! (1 KiB .. 4 GiB), else `ZX_ERR_INVALID_ARGS`. `ZX_VM_MAP_RANGE` is *not* known to the split:
//! only `zx_vmar_map` accepts it, removing it first.
//!
//! [`decode_allocate`], [`decode_map`] and [`decode_protect`] add the per-syscall rules of
//! `zircon/kernel/lib/syscalls/vmar.cc` and the dispatcher, in Zircon's order, so the first error
//! a call hits is Zircon's. Handle lookups stay with the caller: the `*_required_rights` helpers
//! say which rights the lookup must demand (Zircon checks those before decoding the options).

use abi::rights::{ZX_RIGHT_EXECUTE, ZX_RIGHT_MAP, ZX_RIGHT_READ, ZX_RIGHT_WRITE};
use abi::vm_options::*;
use abi::Status;

/// `ZX_VM_FAULT_BEYOND_STREAM_SIZE` (`zircon/types.h`, 1 << 15): fault past a stream's content
/// size. Known to the split; only valid with `ZX_VM_ALLOW_FAULTS`.
pub const ZX_VM_FAULT_BEYOND_STREAM_SIZE: u32 = 1 << 15;

/// Whether this architecture maps execute-only pages. x86_64 page tables cannot express
/// "executable but not readable", so `ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED` always adds READ.
pub const CAN_MAP_XOM: bool = false;

const PERMS: u32 = ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE;
const CAN_MAP: u32 = ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_CAN_MAP_EXECUTE;
const VMAR_FLAG_BITS: u32 = ZX_VM_COMPACT
    | ZX_VM_SPECIFIC
    | ZX_VM_SPECIFIC_OVERWRITE
    | ZX_VM_CAN_MAP_SPECIFIC
    | CAN_MAP
    | ZX_VM_REQUIRE_NON_RESIZABLE
    | ZX_VM_ALLOW_FAULTS
    | ZX_VM_OFFSET_IS_UPPER_LIMIT
    | ZX_VM_FAULT_BEYOND_STREAM_SIZE;

/// Smallest non-zero alignment field (1 KiB).
pub const MIN_ALIGN_POW2: u8 = 10;
/// Largest alignment field (4 GiB).
pub const MAX_ALIGN_POW2: u8 = 32;

/// The permission part of the options: what the MMU will be asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuPerms {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

impl MmuPerms {
    /// No permission at all.
    pub const NONE: MmuPerms = MmuPerms {
        read: false,
        write: false,
        execute: false,
    };

    /// Whether no permission is set.
    pub fn is_empty(self) -> bool {
        self == Self::NONE
    }

    /// Back to `ZX_VM_PERM_*` bits (for `zx_info_maps_mapping_t::mmu_flags`).
    pub fn to_options(self) -> u32 {
        (self.read as u32 * ZX_VM_PERM_READ)
            | (self.write as u32 * ZX_VM_PERM_WRITE)
            | (self.execute as u32 * ZX_VM_PERM_EXECUTE)
    }
}

/// The VMAR-flag part of the options, kept as the `ZX_VM_*` bits themselves (only those in the
/// known set can be present).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmarFlags(u32);

impl VmarFlags {
    /// The raw `ZX_VM_*` bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `flag` (a `ZX_VM_*` value) is set.
    pub fn contains(self, flag: u32) -> bool {
        self.0 & flag == flag
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn insert(&mut self, flag: u32) {
        self.0 |= flag;
    }

    fn remove(&mut self, flag: u32) {
        self.0 &= !flag;
    }
}

/// A split `zx_vm_option_t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitOptions {
    /// Requested permissions.
    pub perms: MmuPerms,
    /// Placement and capability flags.
    pub flags: VmarFlags,
    /// log2 of the requested alignment; 0 means none (page alignment). 10..=32 otherwise.
    pub align_pow2: u8,
}

/// Zircon's `split_syscall_flags`. Does not judge the permission combination (see
/// [`is_valid_mapping_protection`]).
pub fn split(options: u32) -> Result<SplitOptions, Status> {
    let perms = MmuPerms {
        read: options & ZX_VM_PERM_READ != 0,
        write: options & ZX_VM_PERM_WRITE != 0,
        execute: options & ZX_VM_PERM_EXECUTE != 0,
    };
    let rest = options & !(PERMS | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED);
    let flags = VmarFlags(rest & VMAR_FLAG_BITS);
    let rest = rest & !VMAR_FLAG_BITS;
    if rest & ((1 << ZX_VM_ALIGN_BASE) - 1) != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    // Everything from ZX_VM_ALIGN_BASE up is the alignment field (8 bits, values above 32 fail).
    let align = rest >> ZX_VM_ALIGN_BASE;
    if (align < MIN_ALIGN_POW2 as u32 && align != 0) || align > MAX_ALIGN_POW2 as u32 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    Ok(SplitOptions {
        perms,
        flags,
        align_pow2: align as u8,
    })
}

/// Zircon's `is_valid_mapping_protection`: write or execute without read cannot be expressed.
pub fn is_valid_mapping_protection(options: u32) -> bool {
    options & ZX_VM_PERM_READ != 0 || options & (ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE) == 0
}

fn apply_xom(options: u32) -> u32 {
    if options & ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED != 0 && !CAN_MAP_XOM {
        options | ZX_VM_PERM_READ
    } else {
        options
    }
}

fn rights_for(options: u32, read: u32, write: u32, execute: u32) -> u32 {
    let mut rights = 0;
    if options & read != 0 {
        rights |= ZX_RIGHT_READ;
    }
    if options & write != 0 {
        rights |= ZX_RIGHT_WRITE;
    }
    if options & execute != 0 {
        rights |= ZX_RIGHT_EXECUTE;
    }
    rights
}

/// Rights the parent VMAR handle needs for `zx_vmar_allocate(options)`: READ / WRITE / EXECUTE
/// for each `ZX_VM_CAN_MAP_*` requested.
pub fn allocate_required_rights(options: u32) -> u32 {
    rights_for(
        options,
        ZX_VM_CAN_MAP_READ,
        ZX_VM_CAN_MAP_WRITE,
        ZX_VM_CAN_MAP_EXECUTE,
    )
}

/// `zx_vmar_allocate` after the handle lookup: split, then no permission may be requested.
/// Both failures are `ZX_ERR_INVALID_ARGS`.
pub fn decode_allocate(options: u32) -> Result<SplitOptions, Status> {
    let split = split(options)?;
    if !split.perms.is_empty() {
        return Err(Status::ERR_INVALID_ARGS);
    }
    Ok(split)
}

/// Rights of the handle to a new VMAR created with `flags` (Zircon's
/// `VmAddressRegionDispatcher::Create`): the VMAR defaults plus READ / WRITE / EXECUTE for each
/// `ZX_VM_CAN_MAP_*`.
pub fn new_vmar_rights(flags: VmarFlags) -> u32 {
    abi::default_rights::ZX_DEFAULT_VMAR_RIGHTS
        | rights_for(
            flags.bits(),
            ZX_VM_CAN_MAP_READ,
            ZX_VM_CAN_MAP_WRITE,
            ZX_VM_CAN_MAP_EXECUTE,
        )
}

/// A decoded `zx_vmar_map` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapOptions {
    /// The split options. `flags` include the `ZX_VM_CAN_MAP_*` bits the kernel added for every
    /// permission both the VMO and the VMAR handle allow, which later bound `zx_vmar_protect`.
    pub split: SplitOptions,
    /// `ZX_VM_MAP_RANGE`: populate page tables for committed pages after mapping.
    pub map_range: bool,
}

impl MapOptions {
    /// The checks that need the VMO itself (dispatcher `Map`): `ZX_VM_REQUIRE_NON_RESIZABLE` on a
    /// resizable VMO, or a discardable VMO without `ZX_VM_ALLOW_FAULTS`: `ZX_ERR_NOT_SUPPORTED`.
    pub fn check_vmo(&self, resizable: bool, discardable: bool) -> Result<(), Status> {
        let flags = self.split.flags;
        if flags.contains(ZX_VM_REQUIRE_NON_RESIZABLE) && resizable {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        if !flags.contains(ZX_VM_ALLOW_FAULTS) && discardable {
            return Err(Status::ERR_NOT_SUPPORTED);
        }
        Ok(())
    }
}

/// `zx_vmar_map` after both handle lookups (which need no particular rights), in Zircon's order
/// (`vmar_map_common`, then the dispatcher's `Map`):
/// 1. the VMO handle lacks `ZX_RIGHT_MAP`: `ZX_ERR_ACCESS_DENIED`;
/// 2. `PERM_READ_IF_XOM_UNSUPPORTED` adds READ (always, on x86_64);
/// 3. write/execute without read: `ZX_ERR_INVALID_ARGS`;
/// 4. `MAP_RANGE` together with `SPECIFIC_OVERWRITE`: `ZX_ERR_INVALID_ARGS`;
/// 5. any `CAN_MAP_*` bit (user code may not set them on mappings): `ZX_ERR_INVALID_ARGS`;
/// 6. a permission not allowed by both the VMO and the VMAR handle: `ZX_ERR_ACCESS_DENIED`
///    (read, then write, then execute);
/// 7. `FAULT_BEYOND_STREAM_SIZE` without `ALLOW_FAULTS`: `ZX_ERR_INVALID_ARGS`;
/// 8. unknown bits or a bad alignment field: `ZX_ERR_INVALID_ARGS`.
///
/// Offsets, lengths and placement are the VMAR's business.
pub fn decode_map(options: u32, vmar_rights: u32, vmo_rights: u32) -> Result<MapOptions, Status> {
    if vmo_rights & ZX_RIGHT_MAP == 0 {
        return Err(Status::ERR_ACCESS_DENIED);
    }
    let mut options = apply_xom(options);
    if !is_valid_mapping_protection(options) {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let map_range = options & ZX_VM_MAP_RANGE != 0;
    options &= !ZX_VM_MAP_RANGE;
    if map_range && options & ZX_VM_SPECIFIC_OVERWRITE != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    if options & CAN_MAP != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let allowed = vmo_rights & vmar_rights;
    let can_read = allowed & ZX_RIGHT_READ != 0;
    let can_write = allowed & ZX_RIGHT_WRITE != 0;
    let can_exec = allowed & ZX_RIGHT_EXECUTE != 0;
    if (options & ZX_VM_PERM_READ != 0 && !can_read)
        || (options & ZX_VM_PERM_WRITE != 0 && !can_write)
        || (options & ZX_VM_PERM_EXECUTE != 0 && !can_exec)
    {
        return Err(Status::ERR_ACCESS_DENIED);
    }
    if can_read {
        options |= ZX_VM_CAN_MAP_READ;
    }
    if can_write {
        options |= ZX_VM_CAN_MAP_WRITE;
    }
    if can_exec {
        options |= ZX_VM_CAN_MAP_EXECUTE;
    }
    if options & ZX_VM_FAULT_BEYOND_STREAM_SIZE != 0 && options & ZX_VM_ALLOW_FAULTS == 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let split = split(options)?;
    Ok(MapOptions { split, map_range })
}

/// Rights the VMAR handle needs for `zx_vmar_protect(options)`: READ / WRITE / EXECUTE for each
/// `ZX_VM_PERM_*` requested, after the XOM hint added READ. Checked by the handle lookup, before
/// the options are judged.
pub fn protect_required_rights(options: u32) -> u32 {
    rights_for(
        apply_xom(options),
        ZX_VM_PERM_READ,
        ZX_VM_PERM_WRITE,
        ZX_VM_PERM_EXECUTE,
    )
}

/// `zx_vmar_protect` after the handle lookup: write/execute without read, unknown bits, a bad
/// alignment field, or any VMAR flag or alignment at all: `ZX_ERR_INVALID_ARGS`. Returns the new
/// permissions. (The page alignment of `addr` is checked by the VMAR, also `ZX_ERR_INVALID_ARGS`.)
pub fn decode_protect(options: u32) -> Result<MmuPerms, Status> {
    let options = apply_xom(options);
    if !is_valid_mapping_protection(options) {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let split = split(options)?;
    if !split.flags.is_empty() || split.align_pow2 != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    Ok(split.perms)
}

impl SplitOptions {
    /// Removes a flag (for callers that consume one, like the dispatcher does with
    /// `REQUIRE_NON_RESIZABLE` and `ALLOW_FAULTS`).
    pub fn take_flag(&mut self, flag: u32) -> bool {
        let had = self.flags.contains(flag);
        self.flags.remove(flag);
        had
    }

    /// Adds a flag known to the split.
    pub fn set_flag(&mut self, flag: u32) {
        debug_assert_eq!(flag & !VMAR_FLAG_BITS, 0, "not a VMAR flag");
        self.flags.insert(flag & VMAR_FLAG_BITS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::default_rights::ZX_DEFAULT_VMAR_RIGHTS;

    const E: Result<SplitOptions, Status> = Err(Status::ERR_INVALID_ARGS);
    const RWX: u32 = ZX_RIGHT_READ | ZX_RIGHT_WRITE | ZX_RIGHT_EXECUTE;
    const VMO: u32 = RWX | ZX_RIGHT_MAP;

    #[test]
    fn split_separates_the_three_parts() {
        let s =
            split(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_SPECIFIC | ZX_VM_ALIGN_2MB).unwrap();
        assert_eq!(
            s.perms,
            MmuPerms {
                read: true,
                write: true,
                execute: false
            }
        );
        assert_eq!(s.flags.bits(), ZX_VM_SPECIFIC);
        assert_eq!(s.align_pow2, 21);
        assert_eq!(split(0).unwrap(), SplitOptions::default());
        // Every known flag passes.
        let all = VMAR_FLAG_BITS | PERMS | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED;
        let s = split(all).unwrap();
        assert_eq!(s.flags.bits(), VMAR_FLAG_BITS);
        assert_eq!(s.perms.to_options(), PERMS);
    }

    #[test]
    fn split_rejects_unknown_bits() {
        for bit in 16..24 {
            assert_eq!(split(1 << bit), E, "bit {bit}");
        }
        // MAP_RANGE is only known to zx_vmar_map.
        assert_eq!(split(ZX_VM_MAP_RANGE), E);
    }

    #[test]
    fn split_alignment_field() {
        assert_eq!(split(0).unwrap().align_pow2, 0);
        for a in 1..10u32 {
            assert_eq!(split(a << ZX_VM_ALIGN_BASE), E, "align {a}");
        }
        for a in 10..=32u32 {
            assert_eq!(split(a << ZX_VM_ALIGN_BASE).unwrap().align_pow2, a as u8);
        }
        for a in 33..=255u32 {
            assert_eq!(split(a << ZX_VM_ALIGN_BASE), E, "align {a}");
        }
        assert_eq!(split(ZX_VM_ALIGN_1KB).unwrap().align_pow2, 10);
        assert_eq!(split(ZX_VM_ALIGN_4GB).unwrap().align_pow2, 32);
    }

    #[test]
    fn protection_validity() {
        assert!(is_valid_mapping_protection(0));
        assert!(is_valid_mapping_protection(ZX_VM_PERM_READ));
        assert!(is_valid_mapping_protection(
            ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE
        ));
        assert!(!is_valid_mapping_protection(ZX_VM_PERM_WRITE));
        assert!(!is_valid_mapping_protection(ZX_VM_PERM_EXECUTE));
    }

    #[test]
    fn allocate_rules() {
        assert_eq!(
            allocate_required_rights(ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_EXECUTE),
            ZX_RIGHT_READ | ZX_RIGHT_EXECUTE
        );
        assert_eq!(allocate_required_rights(ZX_VM_SPECIFIC), 0);
        let s = decode_allocate(ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE | ZX_VM_COMPACT).unwrap();
        assert!(s.flags.contains(ZX_VM_CAN_MAP_WRITE));
        assert_eq!(decode_allocate(ZX_VM_PERM_READ), E, "permissions on a VMAR");
        assert_eq!(decode_allocate(ZX_VM_MAP_RANGE), E);
        assert_eq!(decode_allocate(3 << ZX_VM_ALIGN_BASE), E);
        // The XOM hint is dropped by the split, not an error.
        assert!(decode_allocate(ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED)
            .unwrap()
            .perms
            .is_empty());
        assert_eq!(
            new_vmar_rights(s.flags),
            ZX_DEFAULT_VMAR_RIGHTS | ZX_RIGHT_READ | ZX_RIGHT_WRITE
        );
    }

    #[test]
    fn map_success_adds_can_map_from_rights() {
        let m = decode_map(
            ZX_VM_PERM_READ | ZX_VM_MAP_RANGE | ZX_VM_ALIGN_64KB,
            RWX,
            ZX_RIGHT_MAP | ZX_RIGHT_READ | ZX_RIGHT_WRITE,
        )
        .unwrap();
        assert!(m.map_range);
        assert_eq!(
            m.split.perms,
            MmuPerms {
                read: true,
                write: false,
                execute: false
            }
        );
        assert_eq!(
            m.split.flags.bits(),
            ZX_VM_CAN_MAP_READ | ZX_VM_CAN_MAP_WRITE
        );
        assert_eq!(m.split.align_pow2, 16);
        // XOM hint: execute-only becomes read+execute on x86_64.
        let m = decode_map(
            ZX_VM_PERM_EXECUTE | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED,
            RWX,
            VMO,
        )
        .unwrap();
        assert_eq!(
            m.split.perms,
            MmuPerms {
                read: true,
                write: false,
                execute: true
            }
        );
    }

    #[test]
    fn map_error_order() {
        let r = ZX_VM_PERM_READ;
        // 1. MAP right first, even with garbage options.
        assert_eq!(
            decode_map(1 << 20, RWX, RWX).err(),
            Some(Status::ERR_ACCESS_DENIED)
        );
        // 3. Invalid protection before rights.
        assert_eq!(
            decode_map(ZX_VM_PERM_WRITE, 0, ZX_RIGHT_MAP).err(),
            Some(Status::ERR_INVALID_ARGS)
        );
        // 4. MAP_RANGE + SPECIFIC_OVERWRITE.
        assert_eq!(
            decode_map(r | ZX_VM_MAP_RANGE | ZX_VM_SPECIFIC_OVERWRITE, RWX, VMO).err(),
            Some(Status::ERR_INVALID_ARGS)
        );
        assert!(decode_map(r | ZX_VM_SPECIFIC_OVERWRITE, RWX, VMO).is_ok());
        // 5. CAN_MAP_* from user: INVALID_ARGS even when rights would deny.
        assert_eq!(
            decode_map(r | ZX_VM_CAN_MAP_READ, 0, ZX_RIGHT_MAP).err(),
            Some(Status::ERR_INVALID_ARGS)
        );
        // 6. Rights: both handles must allow.
        assert_eq!(decode_map(r, 0, VMO).err(), Some(Status::ERR_ACCESS_DENIED));
        assert_eq!(
            decode_map(r, RWX, ZX_RIGHT_MAP).err(),
            Some(Status::ERR_ACCESS_DENIED)
        );
        assert_eq!(
            decode_map(r | ZX_VM_PERM_WRITE, ZX_RIGHT_READ, VMO).err(),
            Some(Status::ERR_ACCESS_DENIED)
        );
        assert_eq!(
            decode_map(r | ZX_VM_PERM_EXECUTE, RWX, ZX_RIGHT_MAP | ZX_RIGHT_READ).err(),
            Some(Status::ERR_ACCESS_DENIED)
        );
        // Rights checked before unknown bits and alignment.
        assert_eq!(
            decode_map(r | (1 << 20), 0, ZX_RIGHT_MAP).err(),
            Some(Status::ERR_ACCESS_DENIED)
        );
        // 7. FAULT_BEYOND_STREAM_SIZE needs ALLOW_FAULTS.
        assert_eq!(
            decode_map(r | ZX_VM_FAULT_BEYOND_STREAM_SIZE, RWX, VMO).err(),
            Some(Status::ERR_INVALID_ARGS)
        );
        assert!(decode_map(
            r | ZX_VM_FAULT_BEYOND_STREAM_SIZE | ZX_VM_ALLOW_FAULTS,
            RWX,
            VMO
        )
        .is_ok());
        // 8. Unknown bits and alignment.
        assert_eq!(
            decode_map(r | (1 << 20), RWX, VMO).err(),
            Some(Status::ERR_INVALID_ARGS)
        );
        assert_eq!(
            decode_map(r | (9 << ZX_VM_ALIGN_BASE), RWX, VMO).err(),
            Some(Status::ERR_INVALID_ARGS)
        );
        // No permission at all is a valid (inaccessible) mapping.
        assert!(decode_map(0, 0, ZX_RIGHT_MAP).is_ok());
    }

    #[test]
    fn map_vmo_state_checks() {
        let plain = decode_map(ZX_VM_PERM_READ, RWX, VMO).unwrap();
        assert_eq!(plain.check_vmo(true, false), Ok(()));
        assert_eq!(plain.check_vmo(false, true), Err(Status::ERR_NOT_SUPPORTED));
        let nr = decode_map(ZX_VM_PERM_READ | ZX_VM_REQUIRE_NON_RESIZABLE, RWX, VMO).unwrap();
        assert_eq!(nr.check_vmo(true, false), Err(Status::ERR_NOT_SUPPORTED));
        assert_eq!(nr.check_vmo(false, false), Ok(()));
        let af = decode_map(ZX_VM_PERM_READ | ZX_VM_ALLOW_FAULTS, RWX, VMO).unwrap();
        assert_eq!(af.check_vmo(false, true), Ok(()));
    }

    #[test]
    fn protect_rules() {
        assert_eq!(
            protect_required_rights(ZX_VM_PERM_READ | ZX_VM_PERM_WRITE),
            ZX_RIGHT_READ | ZX_RIGHT_WRITE
        );
        assert_eq!(
            protect_required_rights(ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED),
            ZX_RIGHT_READ
        );
        assert_eq!(protect_required_rights(0), 0);
        assert_eq!(
            decode_protect(ZX_VM_PERM_READ),
            Ok(MmuPerms {
                read: true,
                write: false,
                execute: false
            })
        );
        assert_eq!(decode_protect(0), Ok(MmuPerms::NONE));
        assert_eq!(
            decode_protect(ZX_VM_PERM_WRITE),
            Err(Status::ERR_INVALID_ARGS)
        );
        assert_eq!(
            decode_protect(ZX_VM_PERM_READ | ZX_VM_SPECIFIC),
            Err(Status::ERR_INVALID_ARGS)
        );
        assert_eq!(
            decode_protect(ZX_VM_PERM_READ | ZX_VM_ALIGN_4KB),
            Err(Status::ERR_INVALID_ARGS)
        );
        assert_eq!(
            decode_protect(ZX_VM_PERM_READ | ZX_VM_MAP_RANGE),
            Err(Status::ERR_INVALID_ARGS)
        );
        assert_eq!(
            decode_protect(ZX_VM_PERM_READ | (1 << 22)),
            Err(Status::ERR_INVALID_ARGS)
        );
        assert_eq!(
            decode_protect(ZX_VM_PERM_EXECUTE | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED),
            Ok(MmuPerms {
                read: true,
                write: false,
                execute: true
            })
        );
    }

    #[test]
    fn take_and_set_flags() {
        let mut s = split(ZX_VM_ALLOW_FAULTS | ZX_VM_SPECIFIC).unwrap();
        assert!(s.take_flag(ZX_VM_ALLOW_FAULTS));
        assert!(!s.take_flag(ZX_VM_ALLOW_FAULTS));
        s.set_flag(ZX_VM_COMPACT);
        assert_eq!(s.flags.bits(), ZX_VM_SPECIFIC | ZX_VM_COMPACT);
    }
}
