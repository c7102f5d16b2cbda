//! Exception fixup ("extable") and fault-safe copies.
//!
//! Assembly that may fault on purpose registers `(faulting instruction -> fixup)` pairs in the
//! `extable` linker section (two PC-relative `i32`s per entry, so no dynamic relocations in the
//! position-independent kernel). When a kernel-mode page fault hits a listed instruction, the
//! trap handler resumes at the fixup instead of reporting a crash ([`fixup_for`]).
//!
//! [`copy_from_user`] / [`copy_to_user`] build on one such routine: 32-byte blocks of 8-byte
//! moves, then a `rep movsb` for the rest. A fault inside a block resumes at the `rep movsb` from
//! the block's start, and its fault ends the copy with the exact number of bytes not copied.
//! Every user pointer goes through them.
//!
//! With SMAP on (see [`crate::paging::init`]) the routine brackets the copy with `stac`/`clac`:
//! it is the only kernel code that may touch user pages. A page fault inside it on a user
//! address first goes to the page-fault hook (demand paging, see [`crate::trap`]); only when
//! the hook cannot resolve it does the fixup end the copy with `CopyError::Fault`.

/// One exception-table entry: offsets relative to the fields themselves.
#[repr(C)]
struct Entry {
    insn: i32,
    fixup: i32,
}

impl Entry {
    fn insn_addr(&self) -> u64 {
        (&raw const self.insn as i64 + self.insn as i64) as u64
    }
    fn fixup_addr(&self) -> u64 {
        (&raw const self.fixup as i64 + self.fixup as i64) as u64
    }
}

extern "C" {
    // Defined by the linker for the `extable` output section (a C-identifier section name).
    static __start_extable: Entry;
    static __stop_extable: Entry;
}

fn entries() -> &'static [Entry] {
    let start = &raw const __start_extable;
    let stop = &raw const __stop_extable;
    let len = (stop as usize - start as usize) / core::mem::size_of::<Entry>();
    // SAFETY: the linker places every `extable` entry contiguously between these two symbols; the
    // section is read-only and lives as long as the kernel image.
    unsafe { core::slice::from_raw_parts(start, len) }
}

/// Number of registered fixups (for tests and boot diagnostics).
pub fn len() -> usize {
    entries().len()
}

/// Every registered `(faulting instruction, fixup)` pair, and the copy routine's address range
/// `[start, end)` (for the ktest that checks the table holds exactly the routine's pairs).
pub(crate) fn pairs_and_copy_routine() -> (alloc::vec::Vec<(u64, u64)>, (u64, u64)) {
    let pairs = entries()
        .iter()
        .map(|e| (e.insn_addr(), e.fixup_addr()))
        .collect();
    let start = arch_copy_fallible as *const () as u64;
    let end = (&raw const arch_copy_fallible_end) as u64;
    (pairs, (start, end))
}

/// The fixup address for a fault at `rip`, if `rip` is a registered faulting instruction.
pub fn fixup_for(rip: u64) -> Option<u64> {
    entries()
        .iter()
        .find(|e| e.insn_addr() == rip)
        .map(|e| e.fixup_addr())
}

core::arch::global_asm!(
    ".pushsection .text.arch_copy_fallible, \"ax\"",
    ".global arch_copy_fallible",
    ".balign 16",
    // rdi = dst, rsi = src, rdx = len; returns rax = bytes NOT copied (0 on success).
    "arch_copy_fallible:",
    // With SMAP on, open the user-access window (RFLAGS.AC = 1) for the copy only.
    "test byte ptr [rip + {smap}], 1",
    "jz 2f",
    "stac",
    "2:",
    // 32-byte blocks of 8-byte moves while at least 32 bytes are left (a `rep` runs one
    // iteration per pass through QEMU's translated block: slow under TCG, see `crate::mem`).
    // RDX counts the bytes not yet copied, lowered only after a block's stores: a fault inside
    // a block goes to `.Lblock_fixup`, which copies from the block's start with `rep movsb` and
    // so stops at the exact faulting byte.
    "cmp rdx, 32",
    "jb .Lcopy_tail",
    ".Lblock_ld0: mov r8, qword ptr [rsi]",
    ".Lblock_ld1: mov r9, qword ptr [rsi + 8]",
    ".Lblock_ld2: mov r10, qword ptr [rsi + 16]",
    ".Lblock_ld3: mov r11, qword ptr [rsi + 24]",
    ".Lblock_st0: mov qword ptr [rdi], r8",
    ".Lblock_st1: mov qword ptr [rdi + 8], r9",
    ".Lblock_st2: mov qword ptr [rdi + 16], r10",
    ".Lblock_st3: mov qword ptr [rdi + 24], r11",
    "add rsi, 32",
    "add rdi, 32",
    "sub rdx, 32",
    "jmp 2b",
    ".Lblock_fixup:",
    ".Lcopy_tail:",
    "mov rcx, rdx",
    ".Lcopy_insn:",
    "rep movsb",
    "xor eax, eax",
    "jmp 3f",
    ".Lcopy_fixup:",
    // A fault inside `rep movsb` leaves RCX = bytes still to copy.
    "mov rax, rcx",
    "3:",
    "test byte ptr [rip + {smap}], 1",
    "jz 4f",
    "clac",
    "4:",
    "ret",
    ".global arch_copy_fallible_end",
    "arch_copy_fallible_end:",
    ".popsection",
    // "R" = SHF_GNU_RETAIN: the linker keeps the entry although nothing references it by name.
    ".pushsection extable, \"aR\"",
    ".balign 4",
    ".long .Lcopy_insn - .",
    ".long .Lcopy_fixup - .",
    ".long .Lblock_ld0 - .",
    ".long .Lblock_fixup - .",
    ".long .Lblock_ld1 - .",
    ".long .Lblock_fixup - .",
    ".long .Lblock_ld2 - .",
    ".long .Lblock_fixup - .",
    ".long .Lblock_ld3 - .",
    ".long .Lblock_fixup - .",
    ".long .Lblock_st0 - .",
    ".long .Lblock_fixup - .",
    ".long .Lblock_st1 - .",
    ".long .Lblock_fixup - .",
    ".long .Lblock_st2 - .",
    ".long .Lblock_fixup - .",
    ".long .Lblock_st3 - .",
    ".long .Lblock_fixup - .",
    ".popsection",
    smap = sym crate::paging::ARCH_SMAP_ON,
);

extern "C" {
    fn arch_copy_fallible(dst: *mut u8, src: *const u8, len: usize) -> usize;
    /// The label right after the routine's last instruction (an address only, never read).
    static arch_copy_fallible_end: u8;
}

/// Exclusive upper end of user virtual addresses (the lower canonical half).
pub const USER_END: u64 = 0x0000_8000_0000_0000;

/// A user copy touched an unmapped or forbidden address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyError {
    /// The range is not entirely inside user space.
    NotUser,
    /// A page fault stopped the copy; this many bytes were not copied.
    Fault {
        /// Bytes left uncopied.
        remaining: usize,
    },
}

fn user_range_ok(addr: u64, len: usize) -> bool {
    match addr.checked_add(len as u64) {
        Some(end) => end <= USER_END,
        None => false,
    }
}

/// Copies `len` bytes from `src` to `dst`, turning a page fault on either side into an error.
///
/// # Safety
///
/// Both ranges may be unmapped (that is the point), but whatever *is* mapped in them must be
/// memory the caller may read (`src`) and write (`dst`) without breaking Rust's aliasing rules:
/// in particular `dst` must not overlap any live Rust reference and neither range may be MMIO.
pub unsafe fn copy_fallible(dst: *mut u8, src: *const u8, len: usize) -> Result<(), CopyError> {
    // SAFETY: forwarded to the caller's contract; the routine only touches `[dst, dst + len)` and
    // `[src, src + len)` and its faults are caught by the exception table.
    let left = unsafe { arch_copy_fallible(dst, src, len) };
    if left == 0 {
        Ok(())
    } else {
        Err(CopyError::Fault { remaining: left })
    }
}

/// Copies `dst.len()` bytes from user address `src` into `dst`. An unmapped source page gives
/// `Err(CopyError::Fault)` instead of a crash; a range outside user space gives `NotUser`.
pub fn copy_from_user(dst: &mut [u8], src: u64) -> Result<(), CopyError> {
    if !user_range_ok(src, dst.len()) {
        return Err(CopyError::NotUser);
    }
    // SAFETY: `dst` is an exclusive Rust slice; `src` lies in the lower half, which holds user
    // mappings only (the bootloader places every kernel mapping in the upper half, see the
    // kernel's `dynamic_range_start`), so reading it cannot alias kernel objects.
    unsafe { copy_fallible(dst.as_mut_ptr(), src as *const u8, dst.len()) }
}

/// Copies `src` to user address `dst`. An unmapped destination page gives `Err(Fault)`.
pub fn copy_to_user(dst: u64, src: &[u8]) -> Result<(), CopyError> {
    if !user_range_ok(dst, src.len()) {
        return Err(CopyError::NotUser);
    }
    // SAFETY: `dst` lies in the lower half, which holds no kernel-owned memory (see
    // `copy_from_user`), so writing it cannot corrupt Rust objects; `src` is a live slice.
    unsafe { copy_fallible(dst as *mut u8, src.as_ptr(), src.len()) }
}
