//! `zx_object_get_property` / `set_property` ids (`zircon/syscalls/object.h`).

/// `char[ZX_MAX_NAME_LEN]`: the object's name.
pub const ZX_PROP_NAME: u32 = 3;
/// `uintptr_t`: the GS base of a thread (x86_64).
pub const ZX_PROP_REGISTER_GS: u32 = 2;
/// `uintptr_t`: the FS base of a thread (x86_64).
pub const ZX_PROP_REGISTER_FS: u32 = 4;
/// `uintptr_t`: ld.so's `_dl_debug_addr`.
pub const ZX_PROP_PROCESS_DEBUG_ADDR: u32 = 5;
/// `uintptr_t`: base of the vDSO mapping, or 0.
pub const ZX_PROP_PROCESS_VDSO_BASE_ADDRESS: u32 = 6;
/// Whether the loader traps on library load.
pub const ZX_PROP_PROCESS_BREAK_ON_LOAD: u32 = 7;
/// Exception close behaviour (`ZX_EXCEPTION_STATE_*`).
pub const ZX_PROP_EXCEPTION_STATE: u32 = 16;
/// `uint64_t`: content size of a VMO.
pub const ZX_PROP_VMO_CONTENT_SIZE: u32 = 17;
/// Exception handling strategy (`ZX_EXCEPTION_STRATEGY_*`).
pub const ZX_PROP_EXCEPTION_STRATEGY: u32 = 18;
