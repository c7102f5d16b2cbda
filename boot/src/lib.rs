//! Host side of the kernel: disk images, the ramdisk, QEMU runs and symbolized reports.
//!
//! The kernel ELF reaches this crate as an artifact dependency (see `build.rs`): [`KERNEL_ELF`] is
//! its path. [`image`] wraps it in BIOS/UEFI disk images with a ramdisk; [`qemu`] runs an image
//! and turns the serial console into a stream of lines plus a classified exit; [`symbolize`]
//! appends `function at file:line` to every kernel address in those lines.
//!
//! The user programs (`user/*`, static PIE for x86_64-unknown-none) are artifact dependencies
//! too: [`USER_PROGRAMS`] lists them; [`image::Ramdisk::for_boot`] packs the ones a boot can run
//! and [`image::Ramdisk::with_programs`] all of them, stripped of DWARF and symbols
//! ([`image::strip_for_image`]), into the ramdisk under their names.
#![forbid(unsafe_code)]

pub mod image;
pub mod qemu;
pub mod symbolize;

include!(concat!(env!("OUT_DIR"), "/programs.rs"));

/// The path of user program `name`'s ELF (with debug info), if there is such a program.
pub fn user_program(name: &str) -> Option<&'static str> {
    USER_PROGRAMS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, path)| path)
}

/// Path of the kernel ELF (with debug info) this tool was built with.
pub const KERNEL_ELF: &str = env!("KERNEL_ELF");

/// Directory for generated images (inside cargo's target directory).
pub const OUT_DIR: &str = env!("OUT_DIR");

/// Where the bootloader loads the (position-independent) kernel: `kernel_base` in the kernel's
/// `BootloaderConfig`. The kernel also prints its real load bias at boot; this constant only serves
/// the gdb command line printed before the kernel runs.
pub const KERNEL_LOAD_BIAS: u64 = 0xffff_ffff_8000_0000;

/// The line the kernel prints first (host-side boot-time measurement and sanity check).
pub const BANNER_PREFIX: &str = "zxkernel:";

/// Error type of this crate: a message for a human.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
