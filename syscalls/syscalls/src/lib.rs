//! Kernel side of the zx system calls, portable and host-tested.
//!
//! - [`dispatch()`]: syscall number + the eight argument registers -> handler -> `rax`, its
//!   decoding and calls generated from the syscall table (`abi::syscall_table!`);
//! - [`SyscallContext`]: what the handlers need from the kernel for the calling thread (handle
//!   table, user memory, task operations, clock, debug log), implemented by the kernel;
//! - [`object`]: [`Object`] (what a handle names: VMAR, VMO, process, thread), koids, and the
//!   [`ProcessObject`] / [`ThreadObject`] traits the kernel's task types implement;
//! - [`sys`]: the `sys_*` handlers with Zircon's check order and statuses;
//! - [`handle`]: the per-process handle table (Zircon's value encoding, rights, duplicate /
//!   replace / close rules);
//! - [`account`]: what each process makes the kernel hold, charged to it and its ancestors
//!   (threads, processes, handles, channel bytes);
//! - [`user_ptr`]: how handlers touch user memory ([`user_ptr::UserMemory`] plus typed, validated
//!   pointers).
//!
//! VM semantics (options, rights on mappings, placement, ranges) are the `vm` crate's: handlers
//! pass it raw options and the rights of the handles they looked up. No hardware here: the kernel
//! supplies the user-copy primitive, the frame allocator, the scheduler and the clock.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod account;
pub mod channel;
pub mod context;
pub mod dispatch;
pub mod exception;
pub mod handle;
pub mod object;
pub mod sys;
pub mod user_ptr;

pub use context::{with_process_table, with_table, ProcessStart, SyscallContext};
pub use dispatch::{dispatch, NO_RETURN};
pub use object::{
    new_koid, vmo_koid, Object, ObjectHandle, ObjectTable, ProcessObject, StartupHandles,
    ThreadObject, VmarObject,
};
