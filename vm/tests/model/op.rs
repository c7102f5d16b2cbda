//! The random operations of the property test ([`Op`], [`op_strategy`]) and the tables that
//! turn an operation's selector bytes into option bits, permissions and rights.

use super::*;

/// One random operation. Selectors (`vmar`, `vmo`) and numbers are reduced modulo what exists
/// when the step runs, so any sequence is meaningful.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Allocate {
        parent: u8,
        mode: u8,
        off: u8,
        size: u8,
        align: u8,
        can_map: u8,
        specific: bool,
        compact: bool,
    },
    Map {
        vmar: u8,
        vmo: u8,
        mode: u8,
        off: u8,
        vmo_off: u8,
        len: u8,
        perms: u8,
        map_range: bool,
        allow_faults: bool,
        vmar_rights: u8,
        vmo_rights: u8,
        align: u8,
    },
    Unmap {
        vmar: u8,
        off: u8,
        len: u8,
        op_children: bool,
    },
    Protect {
        vmar: u8,
        off: u8,
        len: u8,
        perms: u8,
        rights: u8,
    },
    Destroy {
        vmar: u8,
        op_children: bool,
    },
    VmarOpRange {
        vmar: u8,
        op: u8,
        off: u8,
        len: u8,
        rights: u8,
    },
    Fault {
        page: u8,
        access: u8,
    },
    VmoCreate {
        pages: u8,
        resizable: bool,
    },
    VmoCommit {
        vmo: u8,
        off: u8,
        len: u8,
    },
    VmoDecommit {
        vmo: u8,
        off: u8,
        len: u8,
    },
    VmoResize {
        vmo: u8,
        pages: u8,
    },
    VmoDrop {
        vmo: u8,
    },
    VmoChild {
        vmo: u8,
        kind: u8,
        off: u8,
        pages: u8,
        resizable: bool,
    },
    VmoWrite {
        vmo: u8,
        page: u8,
        byte: u8,
    },
}

pub(crate) fn op_strategy() -> impl Strategy<Value = Op> {
    let b = any::<u8>;
    prop_oneof![
        3 => (b(), b(), b(), b(), b(), b(), any::<bool>(), any::<bool>()).prop_map(
            |(parent, mode, off, size, align, can_map, specific, compact)| Op::Allocate {
                parent, mode, off, size, align, can_map, specific, compact
            }
        ),
        10 => (
            (b(), b(), b(), b(), b(), b()),
            (b(), any::<bool>(), any::<bool>(), b(), b(), b())
        )
            .prop_map(
                |(
                    (vmar, vmo, mode, off, vmo_off, len),
                    (perms, map_range, allow_faults, vmar_rights, vmo_rights, align),
                )| Op::Map {
                    vmar, vmo, mode, off, vmo_off, len, perms, map_range, allow_faults,
                    vmar_rights, vmo_rights, align
                }
            ),
        3 => (b(), b(), b(), any::<bool>())
            .prop_map(|(vmar, off, len, op_children)| Op::Unmap { vmar, off, len, op_children }),
        4 => (b(), b(), b(), b(), b())
            .prop_map(|(vmar, off, len, perms, rights)| Op::Protect { vmar, off, len, perms, rights }),
        1 => (b(), any::<bool>()).prop_map(|(vmar, op_children)| Op::Destroy { vmar, op_children }),
        3 => (b(), b(), b(), b(), b())
            .prop_map(|(vmar, op, off, len, rights)| Op::VmarOpRange { vmar, op, off, len, rights }),
        6 => (b(), b()).prop_map(|(page, access)| Op::Fault { page, access }),
        2 => (b(), any::<bool>()).prop_map(|(pages, resizable)| Op::VmoCreate { pages, resizable }),
        2 => (b(), b(), b()).prop_map(|(vmo, off, len)| Op::VmoCommit { vmo, off, len }),
        2 => (b(), b(), b()).prop_map(|(vmo, off, len)| Op::VmoDecommit { vmo, off, len }),
        1 => (b(), b()).prop_map(|(vmo, pages)| Op::VmoResize { vmo, pages }),
        1 => b().prop_map(|vmo| Op::VmoDrop { vmo }),
        3 => (b(), b(), b(), b(), any::<bool>()).prop_map(|(vmo, kind, off, pages, resizable)| {
            Op::VmoChild { vmo, kind, off, pages, resizable }
        }),
        3 => (b(), b(), b()).prop_map(|(vmo, page, byte)| Op::VmoWrite { vmo, page, byte }),
    ]
}

pub(crate) fn perms_table(sel: u8) -> u32 {
    match sel % 16 {
        0..=3 => ZX_VM_PERM_READ,
        4..=7 => ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
        8 | 9 => ZX_VM_PERM_READ | ZX_VM_PERM_EXECUTE,
        10 | 11 => ZX_VM_PERM_READ | ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE,
        12 => 0,
        13 => ZX_VM_PERM_WRITE, // invalid: write without read
        14 => ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED,
        _ => ZX_VM_PERM_EXECUTE | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED,
    }
}

/// A length in pages: usually 1..=6, sometimes 0 (invalid).
pub(crate) fn pages_of(len: u8) -> usize {
    if len < 12 {
        0
    } else {
        len as usize % 6 + 1
    }
}

/// (perms after XOM handling, valid?)
pub(crate) fn model_perms(options: u32) -> (MmuFlags, bool) {
    let mut p = MmuFlags::NONE;
    let read = options & (ZX_VM_PERM_READ | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED) != 0;
    if read {
        p = p | R;
    }
    if options & ZX_VM_PERM_WRITE != 0 {
        p = p | W;
    }
    if options & ZX_VM_PERM_EXECUTE != 0 {
        p = p | X;
    }
    let valid = read || options & (ZX_VM_PERM_WRITE | ZX_VM_PERM_EXECUTE) == 0;
    (p, valid)
}

pub(crate) fn rights_perms(rights: u32) -> MmuFlags {
    let mut p = MmuFlags::NONE;
    if rights & ZX_RIGHT_READ != 0 {
        p = p | R;
    }
    if rights & ZX_RIGHT_WRITE != 0 {
        p = p | W;
    }
    if rights & ZX_RIGHT_EXECUTE != 0 {
        p = p | X;
    }
    p
}

/// (option bits, log2 alignment in bytes or 0)
pub(crate) fn align_table(sel: u8) -> (u32, u32) {
    match sel % 6 {
        0 | 1 => (0, 0),
        2 => (ZX_VM_ALIGN_1KB, 10),
        3 => (ZX_VM_ALIGN_4KB, 12),
        4 => (ZX_VM_ALIGN_8KB, 13),
        _ => (ZX_VM_ALIGN_16KB, 14),
    }
}

pub(crate) fn can_map_bits(sel: u8) -> (u32, MmuFlags) {
    let mut bits = 0;
    let mut p = MmuFlags::NONE;
    if sel & 1 != 0 {
        bits |= ZX_VM_CAN_MAP_READ;
        p = p | R;
    }
    if sel & 2 != 0 {
        bits |= ZX_VM_CAN_MAP_WRITE;
        p = p | W;
    }
    if sel & 4 != 0 {
        bits |= ZX_VM_CAN_MAP_EXECUTE;
        p = p | X;
    }
    (bits, p)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Any,
    Specific,
    Overwrite,
    Upper,
}
