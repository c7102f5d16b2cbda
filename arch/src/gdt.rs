//! GDT and TSS, one pair per CPU, with separate IST stacks for double fault, NMI and machine
//! check.
//!
//! Layout (fixed now so SYSCALL/SYSRET can use it later: STAR wants kernel CS, kernel SS = CS+8,
//! and user SS, user CS = SS+8 in that order):
//! `0 null | 0x08 kernel code | 0x10 kernel data | 0x18 user data | 0x20 user code | 0x28 TSS`.

use core::alloc::Layout;
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

// The boot CPU's IST stacks. The CPU writes these stacks; Rust never forms references to them
// (only their addresses), so plain `static mut` storage is sound.
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

/// One CPU's GDT and TSS. The CPU reads `TSS.rsp0` on every ring 3 -> ring 0 transition, so
/// the TSS is mutable ([`set_rsp0`]); Rust code reaches it only through raw pointers, never
/// through references that could alias the CPU's view. Every CPU's GDT has the same layout, so
/// [`selectors`] holds for all of them.
#[repr(C, align(16))]
pub struct CpuTables {
    gdt: GlobalDescriptorTable,
    tss: TaskStateSegment,
    ist: [(u64, u64); 3],
}

/// The boot CPU's tables (the application processors' come from the heap, [`prepare_ap`]).
static mut BOOT_TABLES: CpuTables = CpuTables {
    gdt: GlobalDescriptorTable::new(),
    tss: TaskStateSegment::new(),
    ist: [(0, 0); 3],
};
static SELECTORS: Once<Selectors> = Once::new();

fn stack_top(stack: *const IstStack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_STACK_SIZE as u64
}

/// The running CPU's IST stack ranges `(name, bottom, top)`, for fault reports (empty before its
/// tables are loaded).
pub fn ist_stacks() -> impl Iterator<Item = (&'static str, u64, u64)> {
    let names = ["double-fault", "nmi", "machine-check"];
    crate::percpu::ist_stacks()
        .into_iter()
        .flat_map(move |ist| (0..3).map(move |i| (names[i], ist[i].0, ist[i].1)))
}

/// Fills `tables` (TSS with the IST stacks `ist`, GDT with the fixed layout and a TSS descriptor
/// for `tables.tss`) and returns the selectors.
///
/// # Safety
///
/// `tables` must be 'static, never move, and not be loaded on any CPU yet.
unsafe fn build(tables: *mut CpuTables, ist: [(u64, u64); 3]) -> Selectors {
    // SAFETY: the caller gives us exclusive use of `tables` (not loaded anywhere yet).
    unsafe {
        let tss = &raw mut (*tables).tss;
        (*tss).interrupt_stack_table[(IST_DOUBLE_FAULT - 1) as usize] = VirtAddr::new(ist[0].1);
        (*tss).interrupt_stack_table[(IST_NMI - 1) as usize] = VirtAddr::new(ist[1].1);
        (*tss).interrupt_stack_table[(IST_MACHINE_CHECK - 1) as usize] = VirtAddr::new(ist[2].1);
        (*tables).ist = ist;
        let gdt = &mut (*tables).gdt;
        *gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        // The TSS is 'static and never moves (caller contract).
        let tss = gdt.append(Descriptor::tss_segment_unchecked(tss));
        Selectors {
            kernel_code,
            kernel_data,
            user_data,
            user_code,
            tss,
        }
    }
}

/// Loads `tables` on the running CPU, reloads the segment registers and records the TSS and IST
/// stacks in its per-CPU data.
///
/// # Safety
///
/// `tables` must have been filled by [`build`], be 'static and never be loaded on another CPU
/// (a TSS descriptor is marked busy by `ltr`).
unsafe fn load(tables: *mut CpuTables) {
    let sel = selectors();
    // SAFETY: `tables` is 'static and filled (caller contract): its GDT holds valid kernel
    // code/data descriptors and a TSS descriptor for its own 'static TSS at these selectors.
    unsafe {
        crate::percpu::set_tables(&raw mut (*tables).tss as u64, (*tables).ist);
        (*tables).gdt.load_unsafe();
        CS::set_reg(sel.kernel_code);
        SS::set_reg(sel.kernel_data);
        DS::set_reg(sel.kernel_data);
        ES::set_reg(sel.kernel_data);
        load_tss(sel.tss);
    }
}

/// Builds and loads the boot CPU's GDT and TSS (IST stacks in the kernel image) and reloads the
/// segment registers. Call once per boot, on the boot CPU, after [`crate::percpu::init`].
pub fn init() {
    let r = |p: *const IstStack| {
        let top = stack_top(p).as_u64();
        (top - IST_STACK_SIZE as u64, top)
    };
    let ist = [
        r(&raw const DOUBLE_FAULT_STACK),
        r(&raw const NMI_STACK),
        r(&raw const MACHINE_CHECK_STACK),
    ];
    let tables = &raw mut BOOT_TABLES;
    // SAFETY: `init` runs once, on the boot CPU, before these tables are loaded: nothing else
    // reads or writes them; the static never moves.
    let sel = unsafe { build(tables, ist) };
    SELECTORS.call_once(|| sel);
    // SAFETY: filled just above, 'static, loaded on this CPU only.
    unsafe { load(tables) };
}

/// Tables for one application processor: a GDT, a TSS and three IST stacks from the heap
/// (never freed: a CPU keeps them while it runs). Built on the boot CPU, loaded by the AP itself
/// with [`load_ap`].
pub struct ApTables(*mut CpuTables);

// SAFETY: the tables are only handed over to the one AP that loads them.
unsafe impl Send for ApTables {}

impl ApTables {
    /// The tables as a raw pointer, to hand to the AP that loads them ([`ApTables::from_raw`]).
    pub(crate) fn into_raw(self) -> *mut u8 {
        self.0.cast()
    }

    /// The tables back from [`ApTables::into_raw`] (`None` for a null pointer). Each pointer may
    /// be turned back once.
    pub(crate) fn from_raw(p: *mut u8) -> Option<ApTables> {
        (!p.is_null()).then(|| ApTables(p.cast()))
    }
}

/// Allocates and fills an application processor's tables. `None` when the heap is out of memory.
pub fn prepare_ap() -> Option<ApTables> {
    let layouts = [
        Layout::new::<IstStack>(),
        Layout::new::<IstStack>(),
        Layout::new::<IstStack>(),
        Layout::new::<CpuTables>(),
    ];
    let mut blocks = [core::ptr::null_mut::<u8>(); 4];
    for (i, &layout) in layouts.iter().enumerate() {
        // SAFETY: every layout has a non-zero size.
        blocks[i] = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if blocks[i].is_null() {
            for (&b, &l) in blocks[..i].iter().zip(&layouts) {
                // SAFETY: `b` was allocated just above with layout `l` and is not used.
                unsafe { alloc::alloc::dealloc(b, l) };
            }
            return None;
        }
    }
    let range = |p: *mut u8| (p as u64, p as u64 + IST_STACK_SIZE as u64);
    let ist = [range(blocks[0]), range(blocks[1]), range(blocks[2])];
    let tables = blocks[3].cast::<CpuTables>();
    // SAFETY: fresh heap blocks of the right layouts, leaked from here on (never freed, never
    // moved), not loaded anywhere; `build` overwrites every field it uses (all-zero is a valid
    // value for each of them).
    unsafe { build(tables, ist) };
    Some(ApTables(tables))
}

/// Loads `tables` on the running application processor (see [`prepare_ap`]).
pub fn load_ap(tables: ApTables) {
    // SAFETY: `ApTables` is built by `prepare_ap` (filled, leaked, 'static) and moved into the
    // one CPU that loads it.
    unsafe { load(tables.0) };
}

/// Sets the stack the CPU switches to on an interrupt or exception from ring 3 (`TSS.rsp0`): the
/// top of the running thread's kernel stack. Call with interrupts disabled, on every switch to a
/// thread that may run in user mode.
pub fn set_rsp0(top: u64) {
    let tss = crate::percpu::tss() as *mut TaskStateSegment;
    assert!(!tss.is_null(), "set_rsp0 before gdt::init");
    // SAFETY: the running CPU's own TSS, interrupts disabled (by contract): the CPU only reads
    // `rsp0` on a privilege change, which cannot happen during this aligned 8-byte store; we
    // write through a raw pointer, never forming a reference.
    unsafe { (*tss).privilege_stack_table[0] = VirtAddr::new(top) };
}

/// The selectors (after [`init`]).
pub fn selectors() -> Selectors {
    *SELECTORS.get().expect("gdt::init not called")
}
