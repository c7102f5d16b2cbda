//! `zx_handle_t` and `zx_koid_t` constants (`zircon/types.h`).

/// The value 0 is never a handle. Closing it is a no-op that returns `ZX_OK`.
pub const ZX_HANDLE_INVALID: u32 = 0;
/// The low two bits of every valid handle value are 1 (users may borrow them, but must set them
/// back before passing the handle to a syscall).
pub const ZX_HANDLE_FIXED_BITS_MASK: u32 = 0x3;

/// No object has this koid.
pub const ZX_KOID_INVALID: u64 = 0;
/// The koid of the kernel itself.
pub const ZX_KOID_KERNEL: u64 = 1;
/// The first koid given to an object; the first 1024 are reserved.
pub const ZX_KOID_FIRST: u64 = 1024;
