//! IDT and trap entry for every CPU exception (vectors 0..=31), with our own assembly stubs so a
//! handler sees (and may change) all saved registers: that is what the exception fixup and, later,
//! user-mode entry/exit need.
//!
//! Policy:
//! - vectors 32..=47 are the 8259 PIC's interrupts: acknowledged (EOI, spurious IRQ 7/15
//!   filtered), then handed to the hook registered with [`set_irq_hook`] (the scheduler tick);
//! - the local APIC's ping IPI ([`crate::apic::PING_VECTOR`]) is counted and acknowledged, its
//!   spurious vector ignored;
//! - `#BP` (int3) in kernel mode is counted and returns;
//! - `#PF` on a user address (below `extable::USER_END`), from user mode or from a kernel
//!   instruction listed in the exception table (the fault-safe copies), first goes to the
//!   page-fault hook ([`set_page_fault_hook`]; the kernel wires it to the current address space's
//!   `AddressSpace::fault`): resolved -> return and retry the access;
//! - otherwise a kernel `#PF` at an exception-table instruction resumes at its fixup, and any
//!   other exception from ring 3 (except `#DF`/NMI/`#MC`: an unresolved `#PF`, `#GP`, `#UD`,
//!   `#DE`, `int3`, ...) goes to the hook registered with [`set_user_exception_hook`] (kill the
//!   thread; its [`UserFault`] argument says what happened), or, while none is registered, is reported
//!   and ends the run with [`ExitCode::Exception`];
//! - `#DF` whose CR2 lies in the kernel stack's guard page is reported as "kernel stack overflow";
//! - anything else prints vector, name, error code, RIP, CR2 (for `#PF`), all registers and a
//!   frame-pointer backtrace, then ends the run with [`ExitCode::Exception`]. A kernel access to
//!   user memory outside the fault-safe copies is such a fatal fault (with SMAP it faults even
//!   when the page is mapped).
//!
//! Hooks run in the trap handler with interrupts disabled, on the interrupted kernel stack (for
//! a ring-3 fault: the thread's kernel stack from TSS.RSP0). The page-fault hook must not fault on
//! user memory itself and must not take a lock the faulting code may hold (the kernel never
//! touches user memory while holding VM locks).
//!
//! `#DF`, NMI and `#MC` run on their own IST stacks (see [`crate::gdt`]); `#PF` stays on the
//! current stack, so a page fault on the guard page escalates to a `#DF` that still has a good
//! stack to run on.

use crate::extable::USER_END;
use crate::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};
use crate::qemu::{self, ExitCode};
use abi::Status;
use core::fmt::Write;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use spin::{Mutex, Once};
use vm::MmuFlags;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

/// Registers saved by the trap entry stub (and by the SYSCALL entry stub, with vector
/// [`SYSCALL_VECTOR`]), lowest address first. A thread's user-mode state lives in one of these at
/// the top of its kernel stack while it is in the kernel.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Exception vector.
    pub vector: u64,
    /// Error code pushed by the CPU (0 for vectors without one).
    pub error_code: u64,
    // Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// The `vector` value of a frame built by the SYSCALL entry stub.
pub const SYSCALL_VECTOR: u64 = 0x100;

impl TrapFrame {
    /// A zeroed frame.
    pub const fn zeroed() -> TrapFrame {
        TrapFrame {
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rbp: 0,
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            rbx: 0,
            rax: 0,
            vector: 0,
            error_code: 0,
            rip: 0,
            cs: 0,
            rflags: 0,
            rsp: 0,
            ss: 0,
        }
    }

    /// True when the trap came from ring 3.
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// Mnemonic and name of CPU exception `vector` (0..=31).
pub fn exception_name(vector: u64) -> (&'static str, &'static str) {
    match vector {
        0 => ("#DE", "Divide Error"),
        1 => ("#DB", "Debug"),
        2 => ("NMI", "Non-Maskable Interrupt"),
        3 => ("#BP", "Breakpoint"),
        4 => ("#OF", "Overflow"),
        5 => ("#BR", "BOUND Range Exceeded"),
        6 => ("#UD", "Invalid Opcode"),
        7 => ("#NM", "Device Not Available"),
        8 => ("#DF", "Double Fault"),
        9 => ("#CSO", "Coprocessor Segment Overrun"),
        10 => ("#TS", "Invalid TSS"),
        11 => ("#NP", "Segment Not Present"),
        12 => ("#SS", "Stack-Segment Fault"),
        13 => ("#GP", "General Protection"),
        14 => ("#PF", "Page Fault"),
        16 => ("#MF", "x87 Floating-Point Exception"),
        17 => ("#AC", "Alignment Check"),
        18 => ("#MC", "Machine Check"),
        19 => ("#XM", "SIMD Floating-Point Exception"),
        20 => ("#VE", "Virtualization Exception"),
        21 => ("#CP", "Control Protection"),
        28 => ("#HV", "Hypervisor Injection"),
        29 => ("#VC", "VMM Communication"),
        30 => ("#SX", "Security Exception"),
        _ => ("#RES", "Reserved"),
    }
}

// Vectors 8, 10-14, 17, 21, 29 and 30 get an error code from the CPU; the others push a 0.
macro_rules! stub {
    ($n:literal) => {
        concat!(
            ".balign 16\n",
            "push 0\n",
            "push ",
            $n,
            "\n",
            "jmp arch_trap_common\n"
        )
    };
    ($n:literal, err) => {
        concat!(".balign 16\n", "push ", $n, "\n", "jmp arch_trap_common\n")
    };
}

/// Size of one entry stub in `arch_trap_stubs`.
const STUB_SIZE: u64 = 16;

core::arch::global_asm!(
    concat!(
        ".pushsection .text.arch_trap, \"ax\"\n",
        ".balign 16\n",
        ".global arch_trap_stubs\n",
        "arch_trap_stubs:\n",
        stub!(0), stub!(1), stub!(2), stub!(3), stub!(4), stub!(5), stub!(6), stub!(7),
        stub!(8, err), stub!(9), stub!(10, err), stub!(11, err), stub!(12, err),
        stub!(13, err), stub!(14, err), stub!(15), stub!(16), stub!(17, err), stub!(18),
        stub!(19), stub!(20), stub!(21, err), stub!(22), stub!(23), stub!(24), stub!(25),
        stub!(26), stub!(27), stub!(28), stub!(29, err), stub!(30, err), stub!(31),
        // Hardware interrupts from the remapped 8259 PIC (IRQ 0..=15).
        stub!(32), stub!(33), stub!(34), stub!(35), stub!(36), stub!(37), stub!(38), stub!(39),
        stub!(40), stub!(41), stub!(42), stub!(43), stub!(44), stub!(45), stub!(46), stub!(47),
        // Local APIC vectors, at stub slots 48..=52: the ping IPI, the spurious vector, the
        // reschedule IPI, the TLB shootdown IPI and the local APIC timer.
        stub!(240), stub!(255), stub!(241), stub!(242), stub!(243),
        ".balign 16\n",
        "arch_trap_common:\n",
        // [rsp] vector, [rsp+8] error code, [rsp+16] RIP, [rsp+24] CS: from ring 3, switch GS to
        // the kernel's per-CPU data (see percpu.rs).
        "test qword ptr [rsp + {v_cs}], 3\n",
        "jz 2f\n",
        "swapgs\n",
        "2:\n",
        "push rax\n",
        "push rbx\n",
        "push rcx\n",
        "push rdx\n",
        "push rsi\n",
        "push rdi\n",
        "push rbp\n",
        "push r8\n",
        "push r9\n",
        "push r10\n",
        "push r11\n",
        "push r12\n",
        "push r13\n",
        "push r14\n",
        "push r15\n",
        // SMAP: kernel code runs with RFLAGS.AC clear whatever the interrupted code had (user
        // mode can set AC; a fault inside a user copy has it set). `iretq` restores it.
        "test byte ptr [rip + {smap}], 1\n",
        "jz 5f\n",
        "clac\n",
        "5:\n",
        // The CPU aligned RSP to 16 before pushing its 5-word frame; with error code, vector and
        // 15 registers RSP is 16-byte aligned again here, as the SysV ABI wants at a call.
        "mov rdi, rsp\n",
        "cld\n",
        "call {dispatch}\n",
        // Returns through a full TrapFrame at RSP: from a trap, from SYSCALL (the iretq path) and
        // into a new thread's first user-mode instruction.
        ".global arch_trap_return\n",
        "arch_trap_return:\n",
        "pop r15\n",
        "pop r14\n",
        "pop r13\n",
        "pop r12\n",
        "pop r11\n",
        "pop r10\n",
        "pop r9\n",
        "pop r8\n",
        "pop rbp\n",
        "pop rdi\n",
        "pop rsi\n",
        "pop rdx\n",
        "pop rcx\n",
        "pop rbx\n",
        "pop rax\n",
        "add rsp, {v_rip}\n",
        // [rsp] RIP, then CS: back to ring 3 -> user GS.
        "test qword ptr [rsp + {r_cs}], 3\n",
        "jz 3f\n",
        "swapgs\n",
        "3:\n",
        "iretq\n",
        ".popsection\n",
    ),
    dispatch = sym trap_dispatch,
    smap = sym crate::paging::ARCH_SMAP_ON,
    v_cs = const core::mem::offset_of!(TrapFrame, cs) - core::mem::offset_of!(TrapFrame, vector),
    v_rip = const core::mem::offset_of!(TrapFrame, rip) - core::mem::offset_of!(TrapFrame, vector),
    r_cs = const core::mem::offset_of!(TrapFrame, cs) - core::mem::offset_of!(TrapFrame, rip),
);

extern "C" {
    static arch_trap_stubs: u8;
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        attributes: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// A present, DPL-0, 64-bit interrupt gate (interrupts stay disabled in handlers).
    fn interrupt(handler: u64, selector: u16, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector,
            ist,
            attributes: 0x8E,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: Once<Idt> = Once::new();

/// Local APIC vectors with a gate, and their entry stub's slot in `arch_trap_stubs`.
const APIC_GATES: [(usize, u64); 5] = [
    (crate::apic::PING_VECTOR as usize, 48),
    (crate::apic::SPURIOUS_VECTOR as usize, 49),
    (crate::apic::RESCHED_VECTOR as usize, 50),
    (crate::apic::TLB_VECTOR as usize, 51),
    (crate::apic::TIMER_VECTOR as usize, 52),
];

/// Installs the IDT with a handler for every CPU exception, the 16 PIC interrupt vectors
/// (32..=47) and the local APIC's ping and spurious vectors, and loads it on this CPU. Call after
/// [`crate::gdt::init`]; the other CPUs load the same table with [`load`].
pub fn init() {
    let cs = crate::gdt::selectors().kernel_code.0;
    IDT.call_once(|| {
        let base = (&raw const arch_trap_stubs) as u64;
        let mut gates = [Gate::MISSING; 256];
        for (v, gate) in gates.iter_mut().enumerate().take(48) {
            let ist = match v {
                2 => IST_NMI,
                8 => IST_DOUBLE_FAULT,
                18 => IST_MACHINE_CHECK,
                _ => 0,
            };
            *gate = Gate::interrupt(base + v as u64 * STUB_SIZE, cs, ist);
        }
        for (v, slot) in APIC_GATES {
            gates[v] = Gate::interrupt(base + slot * STUB_SIZE, cs, 0);
        }
        Idt(gates)
    });
    load();
}

/// Loads the IDT built by [`init`] on the running CPU.
pub fn load() {
    let idt = IDT.get().expect("trap::init has not run");
    let ptr = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::from_ptr(idt),
    };
    // SAFETY: `ptr` describes a 'static, fully initialized IDT whose gates point at our entry
    // stubs in the kernel code segment with IST slots that every CPU's TSS configures
    // (`gdt::init`, `gdt::load_ap`).
    unsafe { lidt(&ptr) };
}

static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);
static KERNEL_STACK: Once<(u64, u64)> = Once::new();

/// Number of `#BP` exceptions handled (and returned from) so far.
pub fn breakpoint_count() -> u64 {
    BREAKPOINTS.load(Ordering::SeqCst)
}

/// Tells the fault handlers where the boot kernel stack is: `[bottom, bottom + len)`, with the
/// unmapped guard page directly below `bottom`.
pub fn set_kernel_stack(bottom: u64, len: u64) {
    KERNEL_STACK.call_once(|| (bottom, len));
}

fn guard_page_hit(addr: u64) -> Option<(u64, u64)> {
    if let Some(stack) = crate::kstack::guard_hit(addr) {
        return Some(stack);
    }
    let &(bottom, len) = KERNEL_STACK.get()?;
    (addr >= bottom.wrapping_sub(4096) && addr < bottom).then_some((bottom, bottom + len))
}

/// Handler of an exception raised in ring 3 that the kernel did not resolve (page faults reach it
/// only when the page-fault hook failed); it owns the thread's fate (kill the thread and never
/// return, or rewrite the frame into a context that is safe to resume). The [`UserFault`]
/// argument describes the fault.
pub type UserExceptionHook = fn(&mut TrapFrame, &UserFault);
/// Handler of a hardware interrupt `irq` (0..=15), called after the EOI, with the interrupted
/// frame; may switch threads.
pub type IrqHook = fn(irq: u8, &mut TrapFrame);

static USER_EXCEPTION_HOOK: Once<UserExceptionHook> = Once::new();
static IRQ_HOOK: Once<IrqHook> = Once::new();

/// Registers the handler for every unresolved exception from user mode. Without one, a user
/// exception is reported and fatal like a kernel one.
pub fn set_user_exception_hook(hook: UserExceptionHook) {
    USER_EXCEPTION_HOOK.call_once(|| hook);
}

/// Registers the handler for hardware interrupts (see [`crate::irq`]).
pub fn set_irq_hook(hook: IrqHook) {
    IRQ_HOOK.call_once(|| hook);
}

/// The kind of access a page fault reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAccess {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Execute,
}

/// `#PF` error-code bits.
pub mod pf_error {
    /// The page was present (a protection violation), else not present.
    pub const PRESENT: u64 = 1 << 0;
    /// A write access.
    pub const WRITE: u64 = 1 << 1;
    /// The access came from ring 3.
    pub const USER: u64 = 1 << 2;
    /// A reserved bit was set in a paging entry (corrupt page table).
    pub const RESERVED: u64 = 1 << 3;
    /// An instruction fetch.
    pub const FETCH: u64 = 1 << 4;
}

/// A decoded page fault, as the hooks see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFaultInfo {
    /// The faulting linear address (CR2).
    pub vaddr: u64,
    /// What the access was.
    pub access: FaultAccess,
    /// True when the fault came from ring 3 (false: a kernel fault-safe copy).
    pub user_mode: bool,
    /// True when the page was present (a protection violation), false when not present.
    pub protection: bool,
    /// The faulting instruction.
    pub rip: u64,
    /// The raw error code ([`pf_error`]).
    pub error_code: u64,
}

impl PageFaultInfo {
    /// Decodes the fault from the trap frame and CR2.
    pub fn new(frame: &TrapFrame, cr2: u64) -> PageFaultInfo {
        let e = frame.error_code;
        let access = if e & pf_error::FETCH != 0 {
            FaultAccess::Execute
        } else if e & pf_error::WRITE != 0 {
            FaultAccess::Write
        } else {
            FaultAccess::Read
        };
        PageFaultInfo {
            vaddr: cr2,
            access,
            user_mode: frame.from_user(),
            protection: e & pf_error::PRESENT != 0,
            rip: frame.rip,
            error_code: e,
        }
    }

    /// The access as `AddressSpace::fault` takes it: READ, WRITE or EXECUTE, plus USER for a
    /// ring-3 access.
    pub fn mmu_access(&self) -> MmuFlags {
        let a = match self.access {
            FaultAccess::Read => MmuFlags::READ,
            FaultAccess::Write => MmuFlags::WRITE,
            FaultAccess::Execute => MmuFlags::EXECUTE,
        };
        if self.user_mode {
            a | MmuFlags::USER
        } else {
            a
        }
    }
}

/// Resolves a page fault on a user address (demand paging); `Err` = cannot be resolved.
pub type PageFaultHook = fn(&PageFaultInfo) -> Result<(), Status>;

/// An exception raised by user code that the kernel will not resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserFault {
    /// Exception vector (14 for a page fault).
    pub vector: u64,
    /// Error code pushed by the CPU (0 when the vector has none).
    pub error_code: u64,
    /// Faulting user instruction.
    pub rip: u64,
    /// For `#PF`: the fault and why it was not resolved (the hook's status; `ERR_ACCESS_DENIED`
    /// for a kernel address, `ERR_NOT_FOUND` when no hook is installed, `ERR_INTERNAL` when the
    /// hook kept "resolving" the same fault without effect).
    pub page_fault: Option<(PageFaultInfo, Status)>,
}

static PAGE_FAULT_HOOK: Mutex<Option<PageFaultHook>> = Mutex::new(None);

/// Installs the page-fault hook (replacing and returning the previous one; `None` removes it).
/// It is called for faults on user addresses from ring 3 and from the kernel's fault-safe copies
/// (never for instruction fetches by the kernel), with interrupts disabled.
pub fn set_page_fault_hook(hook: Option<PageFaultHook>) -> Option<PageFaultHook> {
    core::mem::replace(&mut *PAGE_FAULT_HOOK.lock(), hook)
}

/// How many times in a row the same fault may be "resolved" before it counts as unresolvable
/// (a livelock guard against a hook that returns `Ok` without fixing the page tables).
const MAX_SAME_FAULT: u32 = 1000;
static LAST_FAULT_KEY: AtomicU64 = AtomicU64::new(0);
static SAME_FAULT_COUNT: AtomicU32 = AtomicU32::new(0);

fn resolve(info: &PageFaultInfo) -> Result<(), Status> {
    let hook = (*PAGE_FAULT_HOOK.lock()).ok_or(Status::ERR_NOT_FOUND)?;
    hook(info)?;
    let key = info.vaddr
        ^ info.rip.rotate_left(21)
        ^ info.error_code.rotate_left(42)
        ^ crate::cpu::cr3().rotate_left(7);
    if LAST_FAULT_KEY.swap(key, Ordering::Relaxed) == key {
        if SAME_FAULT_COUNT.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_SAME_FAULT {
            SAME_FAULT_COUNT.store(0, Ordering::Relaxed);
            LAST_FAULT_KEY.store(0, Ordering::Relaxed);
            return Err(Status::ERR_INTERNAL);
        }
    } else {
        SAME_FAULT_COUNT.store(0, Ordering::Relaxed);
    }
    Ok(())
}

fn page_fault(frame: &mut TrapFrame) {
    let info = PageFaultInfo::new(frame, crate::cpu::cr2());
    if info.error_code & pf_error::RESERVED != 0 {
        fatal(frame, None); // A corrupt page table: a kernel bug whoever touched it.
    }
    let user_addr = info.vaddr < USER_END;
    if frame.from_user() {
        let status = if user_addr {
            resolve(&info)
        } else {
            Err(Status::ERR_ACCESS_DENIED)
        };
        if let Err(status) = status {
            user_fault(
                frame,
                UserFault {
                    vector: 14,
                    error_code: frame.error_code,
                    rip: frame.rip,
                    page_fault: Some((info, status)),
                },
            );
        }
        return;
    }
    if let Some(fixup) = crate::extable::fixup_for(frame.rip) {
        if user_addr
            && info.access != FaultAccess::Execute
            && !crate::extable::is_nohook(frame.rip)
            && resolve(&info).is_ok()
        {
            return;
        }
        frame.rip = fixup;
        return;
    }
    fatal(frame, None);
}

fn user_fault(frame: &mut TrapFrame, fault: UserFault) {
    match USER_EXCEPTION_HOOK.get() {
        Some(hook) => hook(frame, &fault),
        None => {
            let mut out = crate::serial::emergency();
            let _ = writeln!(out);
            let _ = write_user_fault_summary(&mut out, &fault);
            let _ = writeln!(out);
            fatal(frame, None)
        }
    }
}

/// One line describing a user fault, e.g. `user fault: #PF (Page Fault) at rip 0x... : write
/// to 0x... (not present): ZX_ERR_NOT_FOUND`. For kill reports.
pub fn write_user_fault_summary(out: &mut dyn Write, fault: &UserFault) -> core::fmt::Result {
    let (mnemonic, name) = exception_name(fault.vector);
    write!(
        out,
        "user fault: {mnemonic} ({name}) at rip {:#x}, error code {:#x}",
        fault.rip, fault.error_code
    )?;
    if let Some((pf, status)) = fault.page_fault {
        let what = match pf.access {
            FaultAccess::Read => "read of",
            FaultAccess::Write => "write to",
            FaultAccess::Execute => "execute at",
        };
        let present = if pf.protection {
            "protection violation"
        } else {
            "not present"
        };
        write!(out, ": {what} {:#x} ({present}): {status:?}", pf.vaddr)?;
    }
    Ok(())
}

extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        32..=47 => {
            let irq = (frame.vector - 32) as u8;
            if crate::irq::acknowledge(irq) {
                if let Some(hook) = IRQ_HOOK.get() {
                    hook(irq, frame);
                }
            }
        }
        v if v == u64::from(crate::apic::PING_VECTOR) => crate::apic::on_ping(),
        v if v == u64::from(crate::apic::TLB_VECTOR) => {
            crate::tlb::poll();
            crate::apic::eoi();
        }
        // The local APIC timer and the reschedule IPI: EOI first (the hook may switch threads).
        v if v == u64::from(crate::apic::TIMER_VECTOR) => {
            crate::apic::eoi();
            if let Some(hook) = IRQ_HOOK.get() {
                hook(crate::irq::IRQ_LAPIC_TIMER, frame);
            }
        }
        v if v == u64::from(crate::apic::RESCHED_VECTOR) => {
            crate::apic::eoi();
            if let Some(hook) = IRQ_HOOK.get() {
                hook(crate::irq::IRQ_RESCHED, frame);
            }
        }
        // A spurious local-APIC interrupt: no EOI, nothing to do.
        v if v == u64::from(crate::apic::SPURIOUS_VECTOR) => {}
        3 if !frame.from_user() => {
            BREAKPOINTS.fetch_add(1, Ordering::SeqCst);
        }
        // Double fault, NMI and machine check are fatal whatever the mode.
        2 | 8 | 18 => {
            let cr2 = crate::cpu::cr2();
            match guard_page_hit(cr2) {
                Some(stack) if frame.vector == 8 => fatal(frame, Some(stack)),
                _ => fatal(frame, None),
            }
        }
        14 => page_fault(frame),
        v if frame.from_user() => {
            let fault = UserFault {
                vector: v,
                error_code: frame.error_code,
                rip: frame.rip,
                page_fault: None,
            };
            user_fault(frame, fault);
        }
        _ => fatal(frame, None),
    }
}

/// Reports an unexpected exception and ends the run. `overflow` is the kernel stack range when
/// the fault is a stack overflow into the guard page.
fn fatal(frame: &TrapFrame, overflow: Option<(u64, u64)>) -> ! {
    let mut out = crate::serial::emergency();
    let (mnemonic, name) = exception_name(frame.vector);
    let cr2 = crate::cpu::cr2();
    let _ = writeln!(out);
    if let Some((bottom, top)) = overflow {
        let _ = writeln!(
            out,
            "FATAL: kernel stack overflow: CR2 {cr2:#018x} is in the guard page below the kernel \
             stack [{bottom:#x}, {top:#x})"
        );
    }
    let _ = writeln!(
        out,
        "FATAL: unexpected exception: vector {} {} ({}) error code {:#x}{}",
        frame.vector,
        mnemonic,
        name,
        frame.error_code,
        if frame.from_user() {
            " from user mode"
        } else {
            " in kernel mode"
        }
    );
    let _ = writeln!(
        out,
        "  RIP {:#018x}  CS {:#x}  RFLAGS {:#x}",
        frame.rip, frame.cs, frame.rflags
    );
    if frame.vector == 14 || frame.vector == 8 {
        print_cr2(&mut out, frame, cr2);
    }
    let _ = writeln!(out, "  RSP {:#018x}  SS {:#x}", frame.rsp, frame.ss);
    print_registers(&mut out, frame);
    let _ = writeln!(out, "  backtrace:");
    let _ = writeln!(out, "    #0 {:#018x}", frame.rip);
    crate::backtrace::print_from(&mut out, frame.rbp, 1);
    qemu::exit(ExitCode::Exception)
}

/// The CR2 line of a `#PF` or `#DF` report, with the `#PF` error code decoded.
fn print_cr2(out: &mut impl Write, frame: &TrapFrame, cr2: u64) {
    let _ = write!(out, "  CR2 {cr2:#018x}");
    if frame.vector == 14 {
        let e = frame.error_code;
        let _ = write!(
            out,
            " ({}, {}, {}{})",
            if e & 1 != 0 {
                "protection violation"
            } else {
                "not present"
            },
            if e & 2 != 0 { "write" } else { "read" },
            if e & 4 != 0 { "user" } else { "supervisor" },
            if e & 16 != 0 {
                ", instruction fetch"
            } else {
                ""
            },
        );
    }
    let _ = writeln!(out);
}

/// The 15 general-purpose registers of `frame`, three per line.
fn print_registers(out: &mut impl Write, frame: &TrapFrame) {
    let regs = [
        ("RAX", frame.rax),
        ("RBX", frame.rbx),
        ("RCX", frame.rcx),
        ("RDX", frame.rdx),
        ("RSI", frame.rsi),
        ("RDI", frame.rdi),
        ("RBP", frame.rbp),
        ("R8 ", frame.r8),
        ("R9 ", frame.r9),
        ("R10", frame.r10),
        ("R11", frame.r11),
        ("R12", frame.r12),
        ("R13", frame.r13),
        ("R14", frame.r14),
        ("R15", frame.r15),
    ];
    for row in regs.chunks(3) {
        let _ = write!(out, " ");
        for (n, v) in row {
            let _ = write!(out, " {n} {v:#018x}");
        }
        let _ = writeln!(out);
    }
}

/// True when `[addr, addr + len)` lies inside a stack we know is mapped (the boot kernel stack or
/// an IST stack): the backtrace walker only reads such memory.
pub(crate) fn on_known_stack(addr: u64, len: u64) -> bool {
    let end = match addr.checked_add(len) {
        Some(e) => e,
        None => return false,
    };
    let in_range = |lo: u64, hi: u64| addr >= lo && end <= hi;
    if let Some((lo, hi)) = crate::percpu::kernel_stack() {
        if in_range(lo, hi) {
            return true;
        }
    }
    if let Some(&(bottom, size)) = KERNEL_STACK.get() {
        if in_range(bottom, bottom + size) {
            return true;
        }
    }
    crate::gdt::ist_stacks().any(|(_, lo, hi)| in_range(lo, hi))
}
