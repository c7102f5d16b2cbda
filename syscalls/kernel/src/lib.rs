//! Kernel side of the zx system calls, portable and host-tested.
//!
//! - [`handle`]: the per-process handle table (Zircon's value encoding, rights, duplicate /
//!   replace / close rules with Zircon's exact statuses);
//! - [`user_ptr`]: how `sys_*` handlers touch user memory ([`user_ptr::UserMemory`] plus typed,
//!   validated pointers);
//! - [`options`]: Zircon's split of a `zx_vm_option_t` into permissions, placement flags and
//!   alignment, and the per-syscall option rules of `zx_vmar_allocate` / `map` / `protect`.
//!
//! No hardware here: the kernel supplies the user-copy primitive and the randomness.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod handle;
pub mod options;
pub mod user_ptr;
