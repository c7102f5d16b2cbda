//! The kernel binary.
#![no_std]
#![no_main]

use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::info::MemoryRegionKind;
use bootloader_api::BootInfo;

/// Bootloader configuration: physical memory at a dynamic offset; a kernel stack with a guard
/// page below it (the bootloader always leaves one unmapped page under the stack).
pub static BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.mappings.kernel_base = Mapping::FixedAddress(0xffff_ffff_8000_0000);
    config.kernel_stack_size = 256 * 1024;
    config
};

bootloader_api::entry_point!(kernel_main, config = &BOOTLOADER_CONFIG);

#[global_allocator]
static HEAP: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let tsc = arch::cpu::rdtsc();
    arch::serial::init();
    arch::println!("zxkernel: hello (tsc at entry {tsc})");
    arch::println!("zxkernel: load bias {:#x}", boot_info.kernel_image_offset);
    let usable: u64 = boot_info
        .memory_regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .map(|r| r.end - r.start)
        .sum();
    arch::println!(
        "memory: {} MiB usable, {} frames",
        usable >> 20,
        usable / 4096
    );
    arch::qemu::exit(arch::qemu::ExitCode::Success)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::fmt::Write;
    let _ = writeln!(arch::serial::emergency(), "PANIC: {info}");
    arch::qemu::exit(arch::qemu::ExitCode::Panic)
}
