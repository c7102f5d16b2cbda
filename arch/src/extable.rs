//! Exception fixup ("extable") and fault-safe copies.
//!
//! Assembly that may fault on purpose registers `(faulting instruction -> fixup)` pairs in the
//! `extable` linker section (two PC-relative `i32`s per entry, so no dynamic relocations in the
//! position-independent kernel). When a kernel-mode page fault hits a listed instruction, the
//! trap handler resumes at the fixup instead of reporting a crash ([`fixup_for`]).
//!
//! [`copy_from_user`] / [`copy_to_user`] build on one such routine: 64-byte blocks of 8-byte
//! moves, then a `rep movsb` for the rest. A fault inside a block resumes at the `rep movsb` from
//! the block's start, and its fault ends the copy with the exact number of bytes not copied.
//! Every user pointer goes through them. A second instance of the routine, [`copy_nohook`],
//! skips the page-fault hook: for copies made under a lock the hook may need.
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

/// Every registered `(faulting instruction, fixup)` pair, and the address ranges `[start, end)`
/// of the two copy routines (for the ktest that checks the table holds exactly their pairs).
#[allow(clippy::type_complexity)]
pub(crate) fn pairs_and_copy_routines() -> (alloc::vec::Vec<(u64, u64)>, [(u64, u64); 2]) {
    let pairs = entries()
        .iter()
        .map(|e| (e.insn_addr(), e.fixup_addr()))
        .collect();
    let fallible = (
        arch_copy_fallible as *const () as u64,
        (&raw const arch_copy_fallible_end) as u64,
    );
    let nohook = (
        arch_copy_nohook as *const () as u64,
        (&raw const arch_copy_nohook_end) as u64,
    );
    (pairs, [fallible, nohook])
}

/// The fixup address for a fault at `rip`, if `rip` is a registered faulting instruction.
pub fn fixup_for(rip: u64) -> Option<u64> {
    entries()
        .iter()
        .find(|e| e.insn_addr() == rip)
        .map(|e| e.fixup_addr())
}

/// Emits one copy routine `$name` (and the label `$name_end` after it) with its exception-table
/// entries. The two instances differ only in their addresses, which the page-fault handler uses
/// to tell them apart (see [`is_nohook`]).
macro_rules! copy_routine {
    ($name:literal) => {
        core::arch::global_asm!(
            concat!(".pushsection .text.", $name, ", \"ax\""),
            concat!(".global ", $name),
            ".balign 16",
            // rdi = dst, rsi = src, rdx = len; returns rax = bytes NOT copied (0 on success).
            concat!($name, ":"),
            // With SMAP on, open the user-access window (RFLAGS.AC = 1) for the copy only.
            "test byte ptr [rip + {smap}], 1",
            "jz 2f",
            "stac",
            "2:",
            // 64-byte blocks of 8-byte moves (two rounds of four loads and four stores) while at
            // least 64 bytes are left (a `rep` runs one iteration per pass through QEMU's
            // translated block: slow under TCG, see `crate::mem`). RDX counts the bytes not yet
            // copied, lowered only after a block's stores: a fault inside a block goes to the
            // block fixup, which copies from the block's start with `rep movsb` (the block's
            // first half again, if it was done) and so stops at the exact faulting byte.
            "cmp rdx, 64",
            concat!("jb .L", $name, "_tail"),
            concat!(".L", $name, "_ld0: mov r8, qword ptr [rsi + 0]"),
            concat!(".L", $name, "_ld1: mov r9, qword ptr [rsi + 8]"),
            concat!(".L", $name, "_ld2: mov r10, qword ptr [rsi + 16]"),
            concat!(".L", $name, "_ld3: mov r11, qword ptr [rsi + 24]"),
            concat!(".L", $name, "_st0: mov qword ptr [rdi + 0], r8"),
            concat!(".L", $name, "_st1: mov qword ptr [rdi + 8], r9"),
            concat!(".L", $name, "_st2: mov qword ptr [rdi + 16], r10"),
            concat!(".L", $name, "_st3: mov qword ptr [rdi + 24], r11"),
            concat!(".L", $name, "_ld4: mov r8, qword ptr [rsi + 32]"),
            concat!(".L", $name, "_ld5: mov r9, qword ptr [rsi + 40]"),
            concat!(".L", $name, "_ld6: mov r10, qword ptr [rsi + 48]"),
            concat!(".L", $name, "_ld7: mov r11, qword ptr [rsi + 56]"),
            concat!(".L", $name, "_st4: mov qword ptr [rdi + 32], r8"),
            concat!(".L", $name, "_st5: mov qword ptr [rdi + 40], r9"),
            concat!(".L", $name, "_st6: mov qword ptr [rdi + 48], r10"),
            concat!(".L", $name, "_st7: mov qword ptr [rdi + 56], r11"),
            "add rsi, 64",
            "add rdi, 64",
            "sub rdx, 64",
            "cmp rdx, 64",
            concat!("jae .L", $name, "_ld0"),
            concat!(".L", $name, "_block_fixup:"),
            concat!(".L", $name, "_tail:"),
            "mov rcx, rdx",
            concat!(".L", $name, "_rep:"),
            "rep movsb",
            "xor eax, eax",
            "jmp 3f",
            concat!(".L", $name, "_rep_fixup:"),
            // A fault inside `rep movsb` leaves RCX = bytes still to copy.
            "mov rax, rcx",
            "3:",
            "test byte ptr [rip + {smap}], 1",
            "jz 4f",
            "clac",
            "4:",
            "ret",
            concat!(".global ", $name, "_end"),
            concat!($name, "_end:"),
            ".popsection",
            // "R" = SHF_GNU_RETAIN: the linker keeps the entries although nothing references
            // them by name.
            ".pushsection extable, \"aR\"",
            ".balign 4",
            concat!(".long .L", $name, "_rep - ."),
            concat!(".long .L", $name, "_rep_fixup - ."),
            concat!(".long .L", $name, "_ld0 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_ld1 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_ld2 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_ld3 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_ld4 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_ld5 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_ld6 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_ld7 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_st0 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_st1 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_st2 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_st3 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_st4 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_st5 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_st6 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            concat!(".long .L", $name, "_st7 - ."),
            concat!(".long .L", $name, "_block_fixup - ."),
            ".popsection",
            smap = sym crate::paging::ARCH_SMAP_ON,
        );
    };
}

// The fault-safe copy: a page fault on a user address first goes to the page-fault hook.
copy_routine!("arch_copy_fallible");
// The same copy with the hook bypassed: a fault ends it at once (see `copy_nohook`).
copy_routine!("arch_copy_nohook");

extern "C" {
    fn arch_copy_fallible(dst: *mut u8, src: *const u8, len: usize) -> usize;
    /// The label right after the routine's last instruction (an address only, never read).
    static arch_copy_fallible_end: u8;
    fn arch_copy_nohook(dst: *mut u8, src: *const u8, len: usize) -> usize;
    static arch_copy_nohook_end: u8;
}

/// True when `rip` lies in the copy routine that bypasses the page-fault hook: a fault there
/// goes straight to its fixup (the page-fault handler asks).
pub fn is_nohook(rip: u64) -> bool {
    let start = arch_copy_nohook as *const () as u64;
    let end = (&raw const arch_copy_nohook_end) as u64;
    (start..end).contains(&rip)
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

pub(crate) fn user_range_ok(addr: u64, len: usize) -> bool {
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

/// [`copy_fallible`] with the page-fault hook bypassed: a fault on either side ends the copy at
/// once with `CopyError::Fault` (no demand paging). For copies made while holding a lock that
/// the hook may take (a VMO's, reading or writing its pages straight from or to user memory):
/// the caller falls back to a copy without the lock when this one faults.
///
/// # Safety
///
/// As [`copy_fallible`].
pub unsafe fn copy_nohook(dst: *mut u8, src: *const u8, len: usize) -> Result<(), CopyError> {
    // SAFETY: forwarded to the caller's contract, as in `copy_fallible`.
    let left = unsafe { arch_copy_nohook(dst, src, len) };
    if left == 0 {
        Ok(())
    } else {
        Err(CopyError::Fault { remaining: left })
    }
}

/// Zeros to copy to user memory (a page of them; never written).
static ZEROS: [u8; 4096] = [0; 4096];

/// Writes `len` zero bytes at user address `dst` with the page-fault hook bypassed (see
/// [`copy_nohook`]); `false` when `dst` is not a user range or a fault stopped it (some bytes
/// may be written by then).
pub fn zero_user_nohook(dst: u64, len: usize) -> bool {
    if !user_range_ok(dst, len) {
        return false;
    }
    let mut done = 0;
    while done < len {
        let n = (len - done).min(ZEROS.len());
        // SAFETY: `dst + done` lies in the lower half, which holds no kernel-owned memory (see
        // `copy_from_user`); `ZEROS` is a live static of at least `n` bytes.
        if unsafe { copy_nohook((dst + done as u64) as *mut u8, ZEROS.as_ptr(), n) }.is_err() {
            return false;
        }
        done += n;
    }
    true
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
