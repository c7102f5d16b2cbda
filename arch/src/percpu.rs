//! Per-CPU data reached through the GS segment base: one [`PerCpu`] record per CPU, indexed by
//! the kernel's CPU index (0 = the boot CPU, then the application processors in the order they
//! were started, see [`crate::smp`]).
//!
//! In kernel mode `GS.base` points at this CPU's [`PerCpu`]; in user mode it holds the user's
//! value (always 0: user code cannot change it, FSGSBASE is off) and `IA32_KERNEL_GS_BASE` holds
//! the per-CPU pointer. Every entry from ring 3 (SYSCALL, interrupts, exceptions) executes
//! `swapgs` first and every return to ring 3 executes it last, so the invariant holds at every
//! instruction that runs in kernel mode with a kernel stack.
//!
//! The SYSCALL entry stub reads two fields by fixed offset: [`KERNEL_RSP_OFFSET`] (the running
//! thread's kernel stack top) and [`USER_RSP_OFFSET`] (scratch for the user RSP).
//!
//! Ownership: a CPU writes only its own record's plain fields (with interrupts off); other CPUs
//! read the atomic fields ([`online`], [`apic_id`], [`pings`]) and nothing else.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use x86_64::registers::model_specific::{GsBase, KernelGsBase};
use x86_64::VirtAddr;

/// Most CPUs the kernel brings up; the MADT may list more (they stay parked).
pub const MAX_CPUS: usize = 64;

/// Offset of `PerCpu::kernel_rsp` (used by the SYSCALL entry stub).
pub const KERNEL_RSP_OFFSET: usize = 8;
/// Offset of `PerCpu::user_rsp` (used by the SYSCALL entry stub).
pub const USER_RSP_OFFSET: usize = 16;

/// One CPU's data. `repr(C)`: the assembly uses fixed offsets.
#[repr(C)]
pub struct PerCpu {
    /// Address of this structure (GS-relative self pointer).
    self_ptr: u64,
    /// Top of the running thread's kernel stack: where SYSCALL switches to.
    kernel_rsp: u64,
    /// Scratch: the user RSP during SYSCALL entry.
    user_rsp: u64,
    /// Size of the running thread's kernel stack (for backtraces), 0 when unknown.
    kernel_stack_len: u64,
    /// This CPU's TSS (`*mut TaskStateSegment`), set by [`crate::gdt`].
    tss: u64,
    /// This CPU's IST stacks as `[bottom, top)` pairs (double fault, NMI, machine check).
    ist: [(u64, u64); 3],
    /// The kernel's index of this CPU (its slot in the table).
    index: u64,
    /// The local APIC id (from the APIC itself once the CPU runs, from the MADT before).
    apic_id: AtomicU32,
    /// Set by the CPU itself once it runs kernel code with its own tables (GDT, TSS, IDT, GS).
    online: AtomicBool,
    /// Ping IPIs this CPU has handled ([`crate::apic::PING_VECTOR`]).
    pings: AtomicU64,
}

const _: () = {
    assert!(core::mem::offset_of!(PerCpu, kernel_rsp) == KERNEL_RSP_OFFSET);
    assert!(core::mem::offset_of!(PerCpu, user_rsp) == USER_RSP_OFFSET);
};

impl PerCpu {
    const fn new() -> PerCpu {
        PerCpu {
            self_ptr: 0,
            kernel_rsp: 0,
            user_rsp: 0,
            kernel_stack_len: 0,
            tss: 0,
            ist: [(0, 0); 3],
            index: 0,
            apic_id: AtomicU32::new(0),
            online: AtomicBool::new(false),
            pings: AtomicU64::new(0),
        }
    }
}

// The entry stubs read it through GS; Rust reaches it through raw pointers only (and shared
// references to the atomic fields).
static mut PERCPU: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];

/// CPUs whose record says online.
static ONLINE: AtomicUsize = AtomicUsize::new(0);
/// The same as a mask (bit i: CPU i).
static ONLINE_MASK: AtomicU64 = AtomicU64::new(0);

fn slot(index: usize) -> *mut PerCpu {
    assert!(index < MAX_CPUS, "CPU index {index} out of range");
    // SAFETY: in bounds (checked above); pointer arithmetic on the static array, no reference.
    unsafe { (&raw mut PERCPU).cast::<PerCpu>().add(index) }
}

/// Points GS at CPU `index`'s record (kernel view) and zeroes the user GS. Call once per CPU on
/// that CPU, with interrupts disabled, before anything reads per-CPU data.
pub fn init(index: usize) {
    let p = slot(index);
    // SAFETY: only this CPU writes its record's plain fields, and it has not published the
    // record yet (no entry stub can run on it before GS points here).
    unsafe {
        (*p).self_ptr = p as u64;
        (*p).index = index as u64;
    }
    GsBase::write(VirtAddr::from_ptr(p));
    KernelGsBase::write(VirtAddr::zero());
}

/// This CPU's record (through the GS self pointer).
fn current() -> *mut PerCpu {
    let p: u64;
    // SAFETY: kernel mode: GS.base points at this CPU's record, whose first word is its address.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags))
    };
    p as *mut PerCpu
}

/// The kernel's index of the running CPU (0 = boot CPU).
pub fn cpu_index() -> usize {
    // SAFETY: a plain read of the running CPU's own record.
    unsafe { (*current()).index as usize }
}

/// Records CPU `index`'s local APIC id.
pub fn set_apic_id(index: usize, id: u32) {
    // SAFETY: a shared reference to an atomic field of a 'static record.
    unsafe { (*slot(index)).apic_id.store(id, Ordering::SeqCst) };
}

/// CPU `index`'s local APIC id.
pub fn apic_id(index: usize) -> u32 {
    // SAFETY: a shared reference to an atomic field of a 'static record.
    unsafe { (*slot(index)).apic_id.load(Ordering::SeqCst) }
}

/// Marks the running CPU online (it runs kernel code on its own tables). Once per CPU.
pub fn set_online() {
    // SAFETY: a shared reference to an atomic field of this CPU's 'static record.
    let was = unsafe { (*current()).online.swap(true, Ordering::SeqCst) };
    if !was {
        ONLINE_MASK.fetch_or(1 << cpu_index(), Ordering::SeqCst);
        ONLINE.fetch_add(1, Ordering::SeqCst);
    }
}

/// Whether CPU `index` has come online.
pub fn online(index: usize) -> bool {
    // SAFETY: a shared reference to an atomic field of a 'static record.
    index < MAX_CPUS && unsafe { (*slot(index)).online.load(Ordering::SeqCst) }
}

/// The online CPUs as a mask (bit i: CPU i).
pub fn online_mask() -> u64 {
    ONLINE_MASK.load(Ordering::SeqCst)
}

/// How many CPUs are online (the boot CPU included).
pub fn online_count() -> usize {
    ONLINE.load(Ordering::SeqCst)
}

/// Counts one ping on the running CPU (the ping IPI handler).
pub(crate) fn count_ping() {
    // SAFETY: a shared reference to an atomic field of this CPU's 'static record.
    unsafe { (*current()).pings.fetch_add(1, Ordering::SeqCst) };
}

/// Ping IPIs CPU `index` has handled.
pub fn pings(index: usize) -> u64 {
    // SAFETY: a shared reference to an atomic field of a 'static record.
    unsafe { (*slot(index)).pings.load(Ordering::SeqCst) }
}

/// Records the running CPU's TSS and IST stacks (by [`crate::gdt`], before it loads them).
pub(crate) fn set_tables(tss: u64, ist: [(u64, u64); 3]) {
    let p = current();
    // SAFETY: only this CPU writes its record's plain fields, with interrupts disabled.
    unsafe {
        (*p).tss = tss;
        (*p).ist = ist;
    }
}

/// The running CPU's TSS (0 before [`crate::gdt`] loaded one).
pub(crate) fn tss() -> u64 {
    // SAFETY: a plain read of the running CPU's own record.
    unsafe { (*current()).tss }
}

/// Makes `[top - len, top)` the running thread's kernel stack: SYSCALL switches to `top`, and
/// interrupts and exceptions from ring 3 land there too (`TSS.rsp0`). Call with interrupts
/// disabled, when switching threads.
pub fn set_kernel_stack(top: u64, len: u64) {
    let p = current();
    // SAFETY: the running CPU's own record, interrupts disabled (by contract): no entry stub on
    // this CPU reads the fields while we write them; raw pointer writes, no references.
    unsafe {
        (*p).kernel_rsp = top;
        (*p).kernel_stack_len = len;
    }
    crate::gdt::set_rsp0(top);
}

/// The running CPU's record for the fault paths: found through the GS base MSRs and accepted
/// only when it is one of the records (a fault can hit before `swapgs`, with the user GS).
fn current_checked() -> Option<*const PerCpu> {
    let base = (&raw const PERCPU) as u64;
    let end = base + core::mem::size_of::<[PerCpu; MAX_CPUS]>() as u64;
    let is_record = |a: u64| {
        (base..end).contains(&a) && (a - base).is_multiple_of(core::mem::size_of::<PerCpu>() as u64)
    };
    [GsBase::read().as_u64(), KernelGsBase::read().as_u64()]
        .into_iter()
        .find(|&a| is_record(a))
        .map(|a| a as *const PerCpu)
}

/// The running thread's kernel stack as `(bottom, top)`, if one was set.
pub fn kernel_stack() -> Option<(u64, u64)> {
    let p = current_checked()?;
    // SAFETY: plain reads of two u64 fields of a 'static record through a raw pointer.
    let (top, len) = unsafe { ((*p).kernel_rsp, (*p).kernel_stack_len) };
    (top != 0 && len != 0).then(|| (top - len, top))
}

/// The running CPU's IST stacks as `[bottom, top)` pairs, if its tables are loaded.
pub fn ist_stacks() -> Option<[(u64, u64); 3]> {
    let p = current_checked()?;
    // SAFETY: a plain read of a field of a 'static record through a raw pointer.
    let ist = unsafe { (*p).ist };
    (ist[0].1 != 0).then_some(ist)
}
