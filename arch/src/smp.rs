//! Starting the application processors (APs): the real-mode trampoline, INIT-SIPI-SIPI, and each
//! AP's first steps in the kernel up to its idle loop.
//!
//! The boot CPU (BSP) drives everything; an AP only loads what the BSP prepared for it:
//!
//! 1. [`Trampoline::install`] copies the trampoline (`arch_ap_trampoline`, position-independent
//!    16- and 64-bit code plus a small GDT and a parameter block) into a frame below 1 MiB that
//!    the kernel took from the frame allocator at boot, patches the absolute addresses (GDT
//!    base, far-jump target) for that frame, and builds a temporary page table in four more
//!    frames: the kernel half copied from the kernel's PML4 (so the kernel image, heap and kernel
//!    stacks are mapped as everywhere) plus an identity mapping of the trampoline page alone, the
//!    one lower-half page any CPU sees in it. The kernel's own page tables are not touched.
//! 2. [`Trampoline::start`], for one AP at a time: writes the AP's kernel stack top and CPU index
//!    into the parameter block, publishes its GDT/TSS ([`crate::gdt::prepare_ap`]), then sends
//!    INIT, waits 10 ms, sends STARTUP with the trampoline's page number, waits 200 us, sends a
//!    second STARTUP if the AP has not come online, and waits for it.
//! 3. The AP starts in real mode at `page << 12`: `lgdt` of the trampoline GDT, CR4.PAE, CR3 = the
//!    temporary table (below 4 GiB: real mode writes 32 bits), EFER.LME|NXE, then CR0.PE|PG in one
//!    write (straight from real mode to long mode's compatibility mode), a far jump through the
//!    identity-mapped page to the 64-bit part, which loads the data segments, the stack, and jumps
//!    to `arch_ap_entry` in the kernel image. That switches CR3 to the kernel's PML4 (the
//!    trampoline page is no longer mapped from here on) and calls `ap_main`.
//! 4. `ap_main`: CR0/CR4/EFER as the BSP has them (WP, SMEP, SMAP, OSFXSR, NXE, SCE), per-CPU
//!    data through GS, its own GDT/TSS/IST stacks, the shared IDT, its local APIC, then marks
//!    itself online and runs the kernel's entry ([`set_ap_entry`]: the scheduler).
//!
//! Why the trampoline is safe: its frame is reserved from the frame allocator before anything
//! else can take it and is only freed once every AP that was sent a STARTUP came online (an AP
//! that never answers keeps the frame and the temporary tables reserved forever, since it might
//! still start); the BSP writes the parameter block only while no AP runs trampoline code (one
//! AP at a time, each waited for until it is past the block); the identity mapping lives only in
//! the temporary table, which no CPU uses after switching to the kernel's PML4, and CR3 writes
//! drop any cached translation of it.

use crate::gdt::ApTables;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Offsets in the trampoline image (fixed with `.org` in the assembly).
mod off {
    pub const CODE64: u64 = 0x80;
    pub const GDT: u64 = 0x100;
    pub const GDTR_BASE: u64 = 0x122;
    pub const FAR_TARGET: u64 = 0x128;
    pub const TEMP_CR3: u64 = 0x130;
    pub const STACK: u64 = 0x138;
    pub const ENTRY: u64 = 0x140;
    pub const ARG: u64 = 0x148;
    pub const KERNEL_CR3: u64 = 0x150;
    pub const SIZE: usize = 0x158;
}

core::arch::global_asm!(
    ".pushsection .rodata.arch_ap_trampoline, \"a\"",
    ".balign 16",
    ".global arch_ap_trampoline",
    "arch_ap_trampoline:",
    ".code16",
    "cli",
    "cld",
    "mov ax, cs",
    "mov ds, ax",
    // lgdt [0x120] (16-bit operand: a 24-bit base, enough below 1 MiB).
    ".byte 0x0f, 0x01, 0x16",
    ".word 0x120",
    "mov eax, cr4",
    "or eax, 0x20",
    "mov cr4, eax",
    // mov eax, dword ptr [0x130]: the temporary PML4.
    ".byte 0x66, 0xa1",
    ".word 0x130",
    "mov cr3, eax",
    "mov ecx, 0xc0000080",
    "rdmsr",
    "or eax, 0x900",
    "wrmsr",
    "mov eax, cr0",
    "or eax, 0x80000001",
    "mov cr0, eax",
    // jmp far dword ptr [0x128]: to the 64-bit code segment, at CODE64 of this page.
    ".byte 0x66, 0xff, 0x2e",
    ".word 0x128",
    ".org 0x80",
    ".code64",
    "mov ax, 0x10",
    "mov ds, ax",
    "mov es, ax",
    "mov ss, ax",
    "xor eax, eax",
    "mov fs, ax",
    "mov gs, ax",
    "mov rsp, [rip + 2f]",
    "mov rdi, [rip + 4f]",
    "mov rsi, [rip + 5f]",
    "jmp qword ptr [rip + 3f]",
    ".org 0x100",
    // GDT: null, 64-bit code (0x08), data (0x10).
    ".quad 0",
    ".quad 0x00af9a000000ffff",
    ".quad 0x00cf92000000ffff",
    ".org 0x120",
    ".word 23",
    ".long 0",
    ".org 0x128",
    ".long 0",
    ".word 0x08",
    ".org 0x130",
    ".long 0",
    ".org 0x138",
    "2: .quad 0",
    "3: .quad 0",
    "4: .quad 0",
    "5: .quad 0",
    ".global arch_ap_trampoline_end",
    "arch_ap_trampoline_end:",
    ".popsection",
    // In the kernel image: RDI = CPU index, RSI = the kernel's PML4, RSP = the AP's stack top.
    ".pushsection .text.arch_ap_entry, \"ax\"",
    ".global arch_ap_entry",
    "arch_ap_entry:",
    "mov cr3, rsi",
    "xor ebp, ebp",
    "call {main}",
    "ud2",
    ".popsection",
    main = sym ap_main,
);

extern "C" {
    static arch_ap_trampoline: u8;
    static arch_ap_trampoline_end: u8;
    fn arch_ap_entry();
}

const _: () = assert!(off::SIZE <= 4096);

/// CR0, CR4 and EFER of the boot CPU, which every AP copies.
static BSP_CR0: AtomicU64 = AtomicU64::new(0);
static BSP_CR4: AtomicU64 = AtomicU64::new(0);
static BSP_EFER: AtomicU64 = AtomicU64::new(0);
/// The tables of the AP being started ([`ApTables`] as a raw pointer), taken by that AP.
static HANDOFF: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
/// The kernel stack top of the AP being started (for its per-CPU data: backtraces).
static HANDOFF_STACK: AtomicU64 = AtomicU64::new(0);

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const IA32_EFER: u32 = 0xc000_0080;

/// The installed trampoline: its page and the temporary page table.
pub struct Trampoline {
    page: u64,
    phys_offset: u64,
}

impl Trampoline {
    /// Installs the trampoline in frame `page` (below 1 MiB, not page 0) and builds the
    /// temporary page table in `tables` = `[pml4, pdpt, pd, pt]` (below 4 GiB).
    ///
    /// # Safety
    ///
    /// The five frames must be exclusively the caller's until no AP can run trampoline code any
    /// more, and mapped writable at `phys_offset` (the bootloader's physical-memory mapping);
    /// [`crate::paging::init`] must have run.
    pub unsafe fn install(page: u64, tables: [u64; 4], phys_offset: u64) -> Trampoline {
        assert!(
            page.is_multiple_of(4096) && page != 0 && page < 0x10_0000,
            "trampoline page {page:#x} must be a frame below 1 MiB"
        );
        assert!(
            tables
                .iter()
                .all(|&t| t.is_multiple_of(4096) && t < 0x1_0000_0000),
            "the temporary page table must lie below 4 GiB"
        );
        let virt = |phys: u64| (phys_offset + phys) as *mut u8;
        let start = &raw const arch_ap_trampoline;
        let len = (&raw const arch_ap_trampoline_end) as usize - start as usize;
        assert_eq!(len, off::SIZE, "trampoline layout");
        let kernel_root = crate::paging::kernel_root_phys();
        // SAFETY: the caller hands us the five frames, mapped writable at `phys_offset`; the
        // trampoline image is `len` bytes of read-only kernel data; the kernel PML4 is live and
        // mapped at `phys_offset` too (read only here).
        unsafe {
            for &t in &tables {
                core::ptr::write_bytes(virt(t), 0, 4096);
            }
            core::ptr::write_bytes(virt(page), 0, 4096);
            core::ptr::copy_nonoverlapping(start, virt(page), len);
            let w32 = |o: u64, v: u32| (virt(page).add(o as usize) as *mut u32).write_unaligned(v);
            w32(off::GDTR_BASE, (page + off::GDT) as u32);
            w32(off::FAR_TARGET, (page + off::CODE64) as u32);
            w32(off::TEMP_CR3, tables[0] as u32);
            let w64 = |o: u64, v: u64| (virt(page).add(o as usize) as *mut u64).write_unaligned(v);
            w64(off::ENTRY, arch_ap_entry as *const () as u64);
            w64(off::KERNEL_CR3, kernel_root);

            let entries = |t: u64| virt(t) as *mut u64;
            let kernel = (phys_offset + kernel_root) as *const u64;
            core::ptr::copy_nonoverlapping(kernel.add(256), entries(tables[0]).add(256), 256);
            let idx = |level: u32| ((page >> (12 + 9 * level)) & 511) as usize;
            entries(tables[0])
                .add(idx(3))
                .write(tables[1] | PRESENT | WRITABLE);
            entries(tables[1])
                .add(idx(2))
                .write(tables[2] | PRESENT | WRITABLE);
            entries(tables[2])
                .add(idx(1))
                .write(tables[3] | PRESENT | WRITABLE);
            entries(tables[3])
                .add(idx(0))
                .write(page | PRESENT | WRITABLE);
        }
        BSP_CR0.store(
            x86_64::registers::control::Cr0::read_raw(),
            Ordering::SeqCst,
        );
        BSP_CR4.store(
            x86_64::registers::control::Cr4::read_raw(),
            Ordering::SeqCst,
        );
        // SAFETY: reading EFER has no side effect.
        let efer = unsafe { x86_64::registers::model_specific::Msr::new(IA32_EFER).read() };
        BSP_EFER.store(efer, Ordering::SeqCst);
        Trampoline { page, phys_offset }
    }

    /// Starts the AP with local APIC id `apic_id` as CPU `index` on the kernel stack ending at
    /// `stack_top` (an `arch::kstack` stack, [`crate::kstack::STACK_SIZE`] bytes) with `tables`, and waits (up to `timeout_ms`) until it is online. Returns
    /// whether it came online. Interrupts must be off; the TSC must be calibrated
    /// ([`crate::irq::calibrate_tsc`]). Call for one AP at a time.
    pub fn start(
        &self,
        index: usize,
        apic_id: u32,
        stack_top: u64,
        tables: ApTables,
        timeout_ms: u64,
    ) -> bool {
        assert!(index > 0 && index < crate::percpu::MAX_CPUS);
        assert!(stack_top.is_multiple_of(16));
        crate::percpu::set_apic_id(index, apic_id);
        let block = (self.phys_offset + self.page) as *mut u8;
        // SAFETY: the trampoline page is ours (install's contract) and no AP runs trampoline code
        // now: every AP started before has come online (past the block) or we returned false
        // and the caller stops starting APs.
        unsafe {
            (block.add(off::STACK as usize) as *mut u64).write_volatile(stack_top);
            (block.add(off::ARG as usize) as *mut u64).write_volatile(index as u64);
        }
        HANDOFF.store(tables.into_raw(), Ordering::SeqCst);
        HANDOFF_STACK.store(stack_top, Ordering::SeqCst);
        let page = (self.page >> 12) as u8;
        crate::apic::send_init(apic_id);
        delay_us(10_000);
        crate::apic::send_startup(apic_id, page);
        delay_us(200);
        if !crate::percpu::online(index) {
            crate::apic::send_startup(apic_id, page);
        }
        let deadline = crate::cpu::rdtsc() + tsc_per_us() * 1000 * timeout_ms;
        while !crate::percpu::online(index) {
            if crate::cpu::rdtsc() > deadline {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    }
}

fn tsc_per_us() -> u64 {
    (crate::irq::tsc_per_second() / 1_000_000).max(1)
}

fn delay_us(us: u64) {
    let end = crate::cpu::rdtsc() + tsc_per_us() * us;
    while crate::cpu::rdtsc() < end {
        core::hint::spin_loop();
    }
}

/// An AP's first Rust code: on its kernel stack, on the kernel's page table, interrupts off.
extern "C" fn ap_main(index: u64) -> ! {
    // SAFETY: the BSP's CR0/CR4/EFER describe a working kernel environment on this machine (the
    // same page tables, the same features); the AP already has PE, PG, PAE, LME set, which these
    // values keep.
    unsafe {
        x86_64::registers::control::Cr0::write_raw(BSP_CR0.load(Ordering::SeqCst));
        x86_64::registers::control::Cr4::write_raw(BSP_CR4.load(Ordering::SeqCst));
        let mut efer = x86_64::registers::model_specific::Msr::new(IA32_EFER);
        let v = efer.read();
        efer.write(v | (BSP_EFER.load(Ordering::SeqCst) & ((1 << 0) | (1 << 11))));
    }
    let index = index as usize;
    crate::percpu::init(index);
    let tables = ApTables::from_raw(HANDOFF.swap(core::ptr::null_mut(), Ordering::SeqCst))
        .expect("an AP started without its tables");
    crate::gdt::load_ap(tables);
    crate::percpu::set_kernel_stack(
        HANDOFF_STACK.load(Ordering::SeqCst),
        crate::kstack::STACK_SIZE,
    );
    crate::trap::load();
    crate::syscall::load();
    let id = crate::apic::init_ap();
    crate::percpu::set_apic_id(index, id);
    let top = HANDOFF_STACK.load(Ordering::SeqCst);
    crate::percpu::set_online();
    match AP_ENTRY.get() {
        Some(entry) => entry(top - crate::kstack::STACK_SIZE, top),
        None => ap_idle(),
    }
}

/// The kernel's entry for an AP once it is online: `(stack bottom, stack top)` of the stack it
/// runs on; it never returns.
pub type ApEntry = fn(u64, u64) -> !;

static AP_ENTRY: spin::Once<ApEntry> = spin::Once::new();

/// Registers what every AP runs once it is online (the scheduler's entry). Without one, APs
/// idle and answer IPIs only. Call before starting the APs.
pub fn set_ap_entry(entry: ApEntry) {
    AP_ENTRY.call_once(|| entry);
}

/// An AP's idle loop without a registered entry: `hlt` with interrupts enabled; the AP answers
/// IPIs only (its LVT entries stay masked and the 8259 PIC is wired to the boot CPU).
fn ap_idle() -> ! {
    loop {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}
