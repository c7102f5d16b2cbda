//! The kernel binary: glue only. Entry, init order, heap, frame allocator, the ktest runner.
//!
//! Init order: serial -> per-CPU data/GDT/TSS/IDT -> ramdisk command line -> logger -> frame
//! allocator (and the APs' trampoline frame below 1 MiB) -> heap -> paging (NXE/SMEP/SMAP,
//! PhysMem, page-fault hook) -> kernel-stack region -> scheduler (PIC/PIT, TSC calibration) ->
//! local APIC and the other CPUs (ACPI MADT; they idle) -> the mode the command line asks for
//! (`run`, `ktest`, `crash`).
//!
//! Unsafe code is denied in this crate except where it is named: the heap and the MMU glue
//! (`heap`, `mm`), the ACPI/trampoline calls of the CPU bring-up (`smp`), the thread switch
//! (`task::sched::schedule`) and the two boot-time views of
//! bootloader memory here (`ramdisk_bytes`, `init_frames`). Everything else goes through `arch`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

mod demo;
mod frame_alloc;
#[allow(unsafe_code)]
mod heap;
mod ktest_runner;
mod logger;
#[allow(unsafe_code)]
mod mm;

/// The kernel's plain spin lock (`lock_order::SpinMutex`): its spin answers TLB shootdowns with
/// interrupts off, as the checked locks' spins do (the hook registered at boot).
use lock_order::SpinMutex;
mod selftest;
#[allow(unsafe_code)]
mod smp;
mod task;

use arch::qemu::{self, ExitCode};
use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::info::MemoryRegionKind;
use bootloader_api::BootInfo;
use core::fmt::Write;

/// Where the bootloader loads the (position-independent) kernel image. The host tool assumes the
/// same value (`boot::KERNEL_LOAD_BIAS`) for the gdb command line; the kernel prints the real one.
const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;

/// Bootloader configuration.
pub static BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    // All physical memory at a dynamic offset: page tables and frames are reached through it.
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.mappings.kernel_base = Mapping::FixedAddress(KERNEL_BASE);
    // Every bootloader-chosen mapping goes to the upper half: the lower half is user space.
    // (The upper canonical half starts at the sign-extended mirror of the user limit.)
    config.mappings.dynamic_range_start = Some(!(arch::extable::USER_END - 1));
    // The bootloader leaves the page below the stack unmapped: the guard page.
    config.kernel_stack_size = 256 * 1024;
    config
};

bootloader_api::entry_point!(kernel_main, config = &BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let entry_tsc = arch::cpu::rdtsc();
    arch::serial::init();
    arch::println!("zxkernel: a Zircon-style microkernel, x86_64, booting");
    arch::println!(
        "zxkernel: load bias {:#x} (kernel ELF at physical {:#x}, {} bytes), tsc at entry {}",
        boot_info.kernel_image_offset,
        boot_info.kernel_addr,
        boot_info.kernel_len,
        entry_tsc
    );

    arch::init();
    // Per-CPU held-lock stacks; lock waits that answer TLB shootdowns and halt until the
    // holder's release (task::lockwait).
    lock_order::set_cpu_hooks(
        arch::percpu::cpu_index,
        task::lockwait::wait,
        task::lockwait::released,
    );
    // Plain spin locks (the kernel's, the syscall layer's channel and exception-port locks)
    // answer shootdowns while they spin.
    lock_order::set_spin_hook(arch::tlb::answer_shootdowns);
    arch::trap::set_kernel_stack(boot_info.kernel_stack_bottom, boot_info.kernel_stack_len);

    let ramdisk = ramdisk_bytes(boot_info);
    let archive = ramdisk::Archive::parse(ramdisk).ok();
    let cmdline = archive
        .map(|a| a.cmdline())
        .unwrap_or_else(|| ramdisk::Cmdline::new(""));
    logger::init(cmdline.get("log"));
    log::info!(
        "ramdisk: {} bytes, {} entries, cmdline {:?}",
        ramdisk.len(),
        archive.map_or(0, |a| a.len()),
        cmdline.as_str()
    );
    log::info!(
        "kernel stack [{:#x}, {:#x}), guard page at {:#x}; {} exception fixups",
        boot_info.kernel_stack_bottom,
        boot_info.kernel_stack_bottom + boot_info.kernel_stack_len,
        boot_info.kernel_stack_bottom - 4096,
        arch::extable::len()
    );

    let phys_offset = boot_info
        .physical_memory_offset
        .into_option()
        .expect("BootloaderConfig asks for a physical memory mapping");
    init_frames(boot_info, phys_offset);
    smp::reserve_trampoline();
    match heap::init(phys_offset) {
        Ok((start, end)) => {
            log::info!("heap: [{start:#x}, {end:#x}), {} KiB", (end - start) / 1024)
        }
        Err(e) => panic!("heap: {e}"),
    }
    mm::init(phys_offset);
    if let Err(e) = arch::kstack::init(phys_offset, &mut || frame_alloc::alloc().map(|f| f.addr()))
    {
        panic!("kernel stacks: {e}");
    }
    task::init(
        boot_info.kernel_stack_bottom,
        boot_info.kernel_stack_bottom + boot_info.kernel_stack_len,
        cmdline.get("seed").and_then(|s| s.parse().ok()),
    );
    smp::init(boot_info.rsdp_addr.into_option(), phys_offset);
    task::loader::set_ramdisk(ramdisk);
    task::context::set_debugging_syscalls(cmdline.flag("debug_syscalls"));
    // Only for showing that the shootdown tests detect a missing shootdown.
    arch::tlb::set_disabled(cmdline.flag("no_shootdown"));
    print_memory_summary(boot_info);

    match cmdline.get("mode").unwrap_or("run") {
        "ktest" => ktest_runner::run(&cmdline),
        "crash" => selftest::run(&cmdline),
        _ => {
            if cmdline.flag("demo_failures") {
                demo::arm_panic_on_request();
            }
            run_init(cmdline.get("prog").unwrap_or("demo"))
        }
    }
}

/// Runs the first user program and ends the run with its verdict: success iff it exits with 0.
fn run_init(prog: &str) -> ! {
    arch::println!("zxkernel: boot complete; starting {prog:?} from the ramdisk");
    match task::loader::run_init(prog) {
        Ok(code) => {
            arch::println!("init: exited with code {code}");
            qemu::exit(if code == 0 {
                ExitCode::Success
            } else {
                ExitCode::Failed
            })
        }
        Err(e) => {
            arch::println!("init: cannot start {prog:?}: {e}");
            qemu::exit(ExitCode::Failed)
        }
    }
}

/// The ramdisk the host tool packed, or an empty slice.
#[allow(unsafe_code)]
fn ramdisk_bytes(boot_info: &BootInfo) -> &'static [u8] {
    match boot_info.ramdisk_addr.into_option() {
        // SAFETY: the bootloader maps the ramdisk read-only-in-practice at `ramdisk_addr` for
        // `ramdisk_len` bytes for the kernel's lifetime; nothing writes it.
        Some(addr) => unsafe {
            core::slice::from_raw_parts(addr as *const u8, boot_info.ramdisk_len as usize)
        },
        None => &[],
    }
}

#[allow(unsafe_code)]
fn init_frames(boot_info: &'static BootInfo, phys_offset: u64) {
    let regions = &boot_info.memory_regions;
    let words = frame_alloc::BitmapAllocator::words_needed(regions);
    let bytes = (words * 8) as u64;
    let home = frame_alloc::find_bitmap_home(regions, bytes)
        .expect("no usable region can hold the frame bitmap");
    // SAFETY: `[home, home + bytes)` lies in a usable region that nothing uses yet (the frame
    // allocator we are building will mark it used before handing out frames), and the bootloader
    // maps all physical memory writable at `phys_offset`. u64 alignment holds: `home` is 4 KiB
    // aligned.
    let bits = unsafe { core::slice::from_raw_parts_mut((phys_offset + home) as *mut u64, words) };
    frame_alloc::install(frame_alloc::BitmapAllocator::new(regions, bits, home));
}

fn print_memory_summary(boot_info: &BootInfo) {
    let mut usable = 0;
    for r in boot_info.memory_regions.iter() {
        log::debug!("memory: [{:#012x}, {:#012x}) {:?}", r.start, r.end, r.kind);
        if r.kind == MemoryRegionKind::Usable {
            usable += r.end - r.start;
        }
    }
    let s = frame_alloc::stats();
    arch::println!(
        "zxkernel: memory: {} regions, {} MiB usable, {} frames ({} free, {} used)",
        boot_info.memory_regions.len(),
        usable >> 20,
        s.total,
        s.free,
        s.used()
    );
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    ktest_runner::report_panic(info);
    let mut out = arch::serial::emergency();
    let _ = writeln!(out);
    match info.location() {
        Some(l) => {
            let _ = write!(out, "PANIC at {}:{}: ", l.file(), l.line());
        }
        None => {
            let _ = write!(out, "PANIC: ");
        }
    }
    let _ = writeln!(out, "{}", info.message());
    let _ = writeln!(out, "  backtrace:");
    arch::backtrace::print_here(&mut out);
    qemu::exit(ExitCode::Panic)
}
