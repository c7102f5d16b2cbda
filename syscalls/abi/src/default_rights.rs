//! Default rights of a newly created object's handle, per object type (`zircon/rights.h`).

use crate::rights::*;

/// `ZX_RIGHTS_BASIC`: transfer, duplicate, wait, inspect.
pub const ZX_RIGHTS_BASIC: u32 =
    ZX_RIGHT_TRANSFER | ZX_RIGHT_DUPLICATE | ZX_RIGHT_WAIT | ZX_RIGHT_INSPECT;
/// `ZX_RIGHTS_IO`: read, write.
pub const ZX_RIGHTS_IO: u32 = ZX_RIGHT_READ | ZX_RIGHT_WRITE;
/// `ZX_RIGHTS_PROPERTY`: get and set property.
pub const ZX_RIGHTS_PROPERTY: u32 = ZX_RIGHT_GET_PROPERTY | ZX_RIGHT_SET_PROPERTY;
/// `ZX_RIGHTS_POLICY`: get and set policy.
pub const ZX_RIGHTS_POLICY: u32 = ZX_RIGHT_GET_POLICY | ZX_RIGHT_SET_POLICY;

/// VMO: basic, io, property, map, signal (no EXECUTE: that takes `zx_vmo_replace_as_executable`).
pub const ZX_DEFAULT_VMO_RIGHTS: u32 =
    ZX_RIGHTS_BASIC | ZX_RIGHTS_IO | ZX_RIGHTS_PROPERTY | ZX_RIGHT_MAP | ZX_RIGHT_SIGNAL;
/// VMAR: basic without wait, plus op-children. A new VMAR's handle also gets READ / WRITE /
/// EXECUTE for each `ZX_VM_CAN_MAP_*` it was created with.
pub const ZX_DEFAULT_VMAR_RIGHTS: u32 = (ZX_RIGHTS_BASIC & !ZX_RIGHT_WAIT) | ZX_RIGHT_OP_CHILDREN;
/// Process.
pub const ZX_DEFAULT_PROCESS_RIGHTS: u32 = ZX_RIGHTS_BASIC
    | ZX_RIGHTS_IO
    | ZX_RIGHTS_PROPERTY
    | ZX_RIGHT_ENUMERATE
    | ZX_RIGHT_DESTROY
    | ZX_RIGHT_SIGNAL
    | ZX_RIGHT_MANAGE_PROCESS
    | ZX_RIGHT_MANAGE_THREAD;
/// Thread.
pub const ZX_DEFAULT_THREAD_RIGHTS: u32 = ZX_RIGHTS_BASIC
    | ZX_RIGHTS_IO
    | ZX_RIGHTS_PROPERTY
    | ZX_RIGHT_DESTROY
    | ZX_RIGHT_SIGNAL
    | ZX_RIGHT_MANAGE_THREAD;
/// Job.
pub const ZX_DEFAULT_JOB_RIGHTS: u32 = ZX_RIGHTS_BASIC
    | ZX_RIGHTS_IO
    | ZX_RIGHTS_PROPERTY
    | ZX_RIGHTS_POLICY
    | ZX_RIGHT_ENUMERATE
    | ZX_RIGHT_DESTROY
    | ZX_RIGHT_SIGNAL
    | ZX_RIGHT_MANAGE_JOB
    | ZX_RIGHT_MANAGE_PROCESS
    | ZX_RIGHT_MANAGE_THREAD;
/// Channel: basic without duplicate, io, signal, signal-peer.
pub const ZX_DEFAULT_CHANNEL_RIGHTS: u32 =
    (ZX_RIGHTS_BASIC & !ZX_RIGHT_DUPLICATE) | ZX_RIGHTS_IO | ZX_RIGHT_SIGNAL | ZX_RIGHT_SIGNAL_PEER;
/// Exception: transfer, property, inspect.
pub const ZX_DEFAULT_EXCEPTION_RIGHTS: u32 =
    ZX_RIGHT_TRANSFER | ZX_RIGHTS_PROPERTY | ZX_RIGHT_INSPECT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_values() {
        // Computed by hand from rights.h.
        assert_eq!(ZX_RIGHTS_BASIC, 0xc003);
        assert_eq!(ZX_DEFAULT_VMO_RIGHTS, 0xd0ef);
        assert_eq!(ZX_DEFAULT_VMAR_RIGHTS, 0x0020_8003);
        assert_eq!(ZX_DEFAULT_PROCESS_RIGHTS, 0x0006_d3cf);
        assert_eq!(ZX_DEFAULT_THREAD_RIGHTS, 0x0004_d2cf);
        assert_eq!(ZX_DEFAULT_CHANNEL_RIGHTS, 0xf00e);
        assert_eq!(ZX_DEFAULT_EXCEPTION_RIGHTS, 0x80c2);
    }
}
