//! User side of the zx system calls: raw `SYSCALL` stubs ([`raw`]) and safe wrappers that return
//! `Result<_, Status>`: [`Handle`] (closed on drop), [`Vmar`], [`Vmo`], [`Process`], [`Thread`],
//! [`debug_write`], [`ticks_get`] and friends.
//!
//! For programs: [`rt`] (feature `rt`: `_start`, panic handler, heap; [`entry!`] names main),
//! [`print!`] / [`println!`], [`bootfs::Ramdisk`] (programs and command line from the boot
//! ramdisk) and [`process::spawn`] (load a static-PIE ELF into a new process with `elfload`, start
//! it, [`Process::wait`] for its return code).
//!
//! Builds for `x86_64-unknown-none` (user programs) and for the host (so `cargo test` at the root
//! builds it); nothing here executes `SYSCALL` in host tests.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bootfs;
pub mod print;
pub mod probe;
pub mod process;
pub mod raw;
pub mod rt;

mod channel;
pub mod exception;
mod handle;
mod misc;
mod task;
mod vmar;
mod vmo;

pub use abi::{Status, ZxResult};
pub use channel::{Channel, ReadResult};
pub use exception::Exception;
pub use handle::{get_info, Handle};
pub use misc::{
    clock_get_monotonic, debug_irqoff_stats, debug_kernel_stats, debug_write, leak_check_stats,
    system_get_features, ticks_get, ticks_per_second,
};
pub use task::{Process, Thread};
pub use vmar::Vmar;
pub use vmo::Vmo;

/// The status in the low 32 bits of a raw syscall result.
pub(crate) fn status(raw: u64) -> Status {
    Status::from_raw(raw as u32 as i32)
}

/// `Ok(())` for `ZX_OK`, else the error.
pub(crate) fn ok(raw: u64) -> ZxResult {
    status(raw).ok()
}

/// The address of a value, as a syscall argument.
pub(crate) fn addr_of<T>(value: &mut T) -> usize {
    value as *mut T as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_results_become_statuses() {
        assert_eq!(ok(0), Ok(()));
        // The kernel returns zx_status_t sign-extended to 64 bits.
        assert_eq!(ok(-10i64 as u64), Err(Status::ERR_INVALID_ARGS));
        assert_eq!(status(0xffff_ffff_ffff_ffe2), Status::ERR_ACCESS_DENIED);
    }

    #[test]
    fn invalid_handle_drop_makes_no_syscall() {
        // Dropping ZX_HANDLE_INVALID must not reach SYSCALL (which would fault on the host).
        let h = Handle::invalid();
        assert!(!h.is_valid());
        drop(h);
        let v = Vmo::from(Handle::invalid());
        assert_eq!(v.raw_handle(), 0);
    }
}
