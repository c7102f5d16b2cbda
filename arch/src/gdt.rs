//! GDT and TSS with separate IST stacks for double fault, NMI and machine check.
//!
//! Layout (fixed now so SYSCALL/SYSRET can use it later: STAR wants kernel CS, kernel SS = CS+8,
//! and user SS, user CS = SS+8 in that order):
//! `0 null | 0x08 kernel code | 0x10 kernel data | 0x18 user data | 0x20 user code | 0x28 TSS`.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slot (1-based in the IDT, 0-based in the TSS) of the double-fault handler.
pub const IST_DOUBLE_FAULT: u8 = 1;
/// IST slot of the NMI handler.
pub const IST_NMI: u8 = 2;
/// IST slot of the machine-check handler.
pub const IST_MACHINE_CHECK: u8 = 3;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

// The CPU writes these stacks; Rust never forms references to them (only their addresses), so
// plain `static mut` storage is sound.
static mut DOUBLE_FAULT_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);
static mut NMI_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);
static mut MACHINE_CHECK_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);

/// Segment selectors of the GDT.
#[derive(Debug, Clone, Copy)]
pub struct Selectors {
    /// Kernel code (0x08).
    pub kernel_code: SegmentSelector,
    /// Kernel data (0x10).
    pub kernel_data: SegmentSelector,
    /// User data (0x1b with RPL 3).
    pub user_data: SegmentSelector,
    /// User code (0x23 with RPL 3).
    pub user_code: SegmentSelector,
    /// TSS (0x28).
    pub tss: SegmentSelector,
}

/// The TSS. The CPU reads `rsp0` from it on every ring 3 -> ring 0 transition, so it is mutable
/// ([`set_rsp0`]); Rust code reaches it only through raw pointers, never through references
/// that could alias the CPU's view.
static mut TSS: TaskStateSegment = TaskStateSegment::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

fn stack_top(stack: *const IstStack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_STACK_SIZE as u64
}

/// The IST stack ranges `(name, bottom, top)`, for fault reports.
pub fn ist_stacks() -> [(&'static str, u64, u64); 3] {
    let r = |name, p: *const IstStack| {
        let top = stack_top(p).as_u64();
        (name, top - IST_STACK_SIZE as u64, top)
    };
    [
        r("double-fault", &raw const DOUBLE_FAULT_STACK),
        r("nmi", &raw const NMI_STACK),
        r("machine-check", &raw const MACHINE_CHECK_STACK),
    ]
}

/// Builds and loads the GDT and TSS and reloads the segment registers. Call once per boot.
pub fn init() {
    let tss = &raw mut TSS;
    // SAFETY: `init` runs once, on the boot CPU, before the TSS is loaded: nothing else reads or
    // writes it concurrently.
    unsafe {
        (*tss).interrupt_stack_table[(IST_DOUBLE_FAULT - 1) as usize] =
            stack_top(&raw const DOUBLE_FAULT_STACK);
        (*tss).interrupt_stack_table[(IST_NMI - 1) as usize] = stack_top(&raw const NMI_STACK);
        (*tss).interrupt_stack_table[(IST_MACHINE_CHECK - 1) as usize] =
            stack_top(&raw const MACHINE_CHECK_STACK);
    }
    let (gdt, sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        // SAFETY: the TSS is a 'static that lives for the whole run and is never moved.
        let tss = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss) });
        (
            gdt,
            Selectors {
                kernel_code,
                kernel_data,
                user_data,
                user_code,
                tss,
            },
        )
    });
    gdt.load();
    // SAFETY: the GDT just loaded is 'static and holds valid kernel code/data descriptors and a
    // TSS descriptor for a 'static TSS at these selectors.
    unsafe {
        CS::set_reg(sel.kernel_code);
        SS::set_reg(sel.kernel_data);
        DS::set_reg(sel.kernel_data);
        ES::set_reg(sel.kernel_data);
        load_tss(sel.tss);
    }
}

/// Sets the stack the CPU switches to on an interrupt or exception from ring 3 (`TSS.rsp0`): the
/// top of the running thread's kernel stack. Call with interrupts disabled, on every switch to a
/// thread that may run in user mode.
pub fn set_rsp0(top: u64) {
    // SAFETY: single CPU, interrupts disabled (by contract): the CPU only reads `rsp0` on a
    // privilege change, which cannot happen during this aligned 8-byte store; we write through
    // a raw pointer, never forming a reference.
    unsafe { TSS.privilege_stack_table[0] = VirtAddr::new(top) };
}

/// The selectors (after [`init`]).
pub fn selectors() -> Selectors {
    GDT.get().expect("gdt::init not called").1
}
