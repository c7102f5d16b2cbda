//! Static-PIE ELF loading, shared by the kernel (first program) and user space (children).
//!
//! Two steps, in Zircon's style (the loader maps segments into a fresh VMAR; nothing interprets
//! the program at run time):
//!
//! 1. [`LoadPlan::parse`] validates an x86_64 little-endian `ET_DYN` image without a program
//!    interpreter or TLS and produces a plan: the page-rounded *span* covering every `PT_LOAD`
//!    segment, each segment (file range, offset in the span, memory size, permissions; `W+X` is
//!    refused), the `R_X86_64_RELATIVE` relocations from `PT_DYNAMIC`'s `DT_RELA` table (any other
//!    relocation kind is refused) and the entry point, all relative to the span's start.
//! 2. [`load`] drives a [`LoadTarget`]: reserve a region of the span's size at a base the target
//!    chooses (a randomized, kernel-chosen address), then hand over each segment as page-aligned
//!    bytes with the relocations already applied (or, with an image VMO, as image pages plus the
//!    rewritten pages, below), to be placed with its final permissions. So no segment ever has
//!    to be writable just to be relocated, and the target needs no `protect`.
//!
//! The kernel implements [`LoadTarget`] with the vm API, the user library (`zx::process`) with
//! `zx_vmar_allocate` / `zx_vmo_create` / `zx_vmo_write` / `zx_vmo_create_child` /
//! `zx_vmar_map`.
//!
//! A target that holds the image in a VMO at a page-aligned offset ([`LoadTarget::has_image`]:
//! the boot ramdisk pads every file to pages) is not handed bytes for most segments but told how
//! to map the image itself ([`LoadPlan::placement`]), so starting a program costs page faults,
//! not copies:
//!
//! - a segment without write permission, relocations or zero-fill ([`Placement::Shared`]) maps
//!   the image's pages directly, read-only (text, rodata);
//! - any other segment with file bytes ([`Placement::Cow`]): a copy-on-write child of the image
//!   pages holding its file part, in which only the pages that differ from the file are
//!   rewritten ([`Patch`]: relocated words, the zeroed `.bss` tail of the last file page), then
//!   fresh zero pages for the rest of its memory size;
//! - a segment whose file offset is not congruent to its address modulo the page size, or which
//!   has no file bytes ([`Placement::Copy`]), gets a fresh VMO as without an image.
//!
//! The bytes of a shared or copy-on-write page outside the segment's own range (before its first
//! byte in its first page, after its file part in its last page when nothing is zero-filled)
//! are the image's neighbouring bytes, as with any loader that maps files by pages.
//!
//! Parsing uses the `elf` crate (no_std, no allocation, no unsafe code, checked arithmetic, fuzzed
//! upstream). Everything read from the file is bounded and overflow-checked here as well: a
//! malformed image is an [`Error`], never a panic (see the corruption tests).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use elf::abi::{
    DT_JMPREL, DT_NEEDED, DT_NULL, DT_PLTRELSZ, DT_REL, DT_RELA, DT_RELAENT, DT_RELASZ, DT_RELSZ,
    EM_X86_64, ET_DYN, PF_R, PF_W, PF_X, PT_DYNAMIC, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_TLS,
};
use elf::dynamic::DynamicTable;
use elf::endian::LittleEndian;
use elf::file::Class;
use elf::relocation::Rela;
use elf::segment::ProgramHeader;
use elf::ElfBytes;

/// Page size of the target.
pub const PAGE_SIZE: u64 = 4096;
/// Most `PT_LOAD` segments accepted.
pub const MAX_SEGMENTS: usize = 16;
/// Most program headers accepted (of any type).
pub const MAX_PROGRAM_HEADERS: usize = 64;
/// Largest span accepted (1 GiB): far more than any program here, far less than the user half.
pub const MAX_SPAN: u64 = 1 << 30;
/// Most relocations accepted.
pub const MAX_RELOCATIONS: usize = 1 << 20;

/// `R_X86_64_NONE`: ignored.
pub const R_X86_64_NONE: u32 = 0;
/// `R_X86_64_RELATIVE`: `*(u64 *)(base + offset) = base + addend`.
pub const R_X86_64_RELATIVE: u32 = 8;
/// `DT_RELR` (packed relative relocations); refused: our linker flags do not produce them.
pub const DT_RELR: i64 = 36;
/// Size of an `Elf64_Rela`.
const RELA_SIZE: u64 = 24;

/// Why an image cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The `elf` crate could not parse a structure (bad magic, truncated table, bad entry size...).
    Malformed(ParseErrorKind),
    /// Not `ELFCLASS64`.
    Not64Bit,
    /// Not little-endian.
    NotLittleEndian,
    /// `e_machine` is not `EM_X86_64`.
    NotX86_64(u16),
    /// `e_type` is not `ET_DYN` (a fixed-address `ET_EXEC`, an object file...): not a static PIE.
    NotPie(u16),
    /// No program header table.
    NoProgramHeaders,
    /// More program headers than [`MAX_PROGRAM_HEADERS`].
    TooManyProgramHeaders(usize),
    /// A `PT_INTERP`: the image wants a dynamic linker.
    HasInterpreter,
    /// A `PT_TLS`: thread-local storage is not supported.
    HasTls,
    /// No `PT_LOAD` segment.
    NoLoadSegments,
    /// More `PT_LOAD` segments than [`MAX_SEGMENTS`].
    TooManySegments,
    /// Segment `index` (among the `PT_LOAD`s) is both writable and executable.
    WriteExecSegment(usize),
    /// Segment `index`: its file range lies outside the file.
    SegmentOutsideFile(usize),
    /// Segment `index`: `p_filesz > p_memsz`.
    FileSizeExceedsMemSize(usize),
    /// Segment `index`: `p_vaddr + p_memsz` overflows.
    SegmentOverflow(usize),
    /// Segment `index`: `p_align` is not 0 or a power of two.
    BadAlignment(usize),
    /// Segment `index` is not after the previous one, or shares a page with it.
    SegmentOverlap(usize),
    /// The segments span more than [`MAX_SPAN`] bytes.
    SpanTooLarge(u64),
    /// The entry point is not inside an executable segment.
    EntryNotExecutable(u64),
    /// More than one `PT_DYNAMIC`.
    MultipleDynamic,
    /// The `PT_DYNAMIC` table is malformed (misaligned size, missing `DT_NULL`...).
    BadDynamic,
    /// A dynamic tag this loader cannot honour (`DT_NEEDED`, `DT_REL`, `DT_RELR`, `DT_JMPREL`...).
    UnsupportedDynamicTag(i64),
    /// `DT_RELAENT` is not 24, or `DT_RELASZ` not a multiple of it, or `DT_RELA` is missing.
    BadRelocationTable,
    /// The relocation table is not inside the file part of a `PT_LOAD` segment.
    RelocationTableOutsideFile,
    /// More relocations than [`MAX_RELOCATIONS`].
    TooManyRelocations(usize),
    /// A relocation of a type other than `R_X86_64_RELATIVE` / `R_X86_64_NONE`.
    UnsupportedRelocation(u32),
    /// A relocation's 8 bytes are not inside one segment.
    RelocationOutOfBounds(u64),
}

/// The kind of a parse error of the `elf` crate (its error type is not `Eq`/`Clone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Not an ELF file (bad magic).
    BadMagic,
    /// Unknown class, endianness or version.
    Unsupported,
    /// A structure runs past the end of the file, or an offset is out of range.
    Truncated,
    /// A table's entry size is not the one the format defines.
    BadEntrySize,
    /// An integer overflowed while computing a range.
    Overflow,
    /// Anything else.
    Other,
}

impl From<elf::ParseError> for Error {
    fn from(e: elf::ParseError) -> Self {
        use elf::ParseError as P;
        Error::Malformed(match e {
            P::BadMagic(_) => ParseErrorKind::BadMagic,
            P::UnsupportedElfClass(_)
            | P::UnsupportedElfEndianness(_)
            | P::UnsupportedVersion(_) => ParseErrorKind::Unsupported,
            P::BadOffset(_) | P::SliceReadError(_) => ParseErrorKind::Truncated,
            P::BadEntsize(_) => ParseErrorKind::BadEntrySize,
            P::IntegerOverflow | P::TryFromIntError(_) => ParseErrorKind::Overflow,
            _ => ParseErrorKind::Other,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(k) => write!(f, "malformed ELF ({k:?})"),
            Error::Not64Bit => write!(f, "not a 64-bit ELF"),
            Error::NotLittleEndian => write!(f, "not a little-endian ELF"),
            Error::NotX86_64(m) => write!(f, "not an x86_64 ELF (e_machine {m})"),
            Error::NotPie(t) => write!(f, "not a position-independent executable (e_type {t})"),
            Error::NoProgramHeaders => write!(f, "no program headers"),
            Error::TooManyProgramHeaders(n) => write!(f, "{n} program headers (too many)"),
            Error::HasInterpreter => write!(f, "has PT_INTERP (needs a dynamic linker)"),
            Error::HasTls => write!(f, "has PT_TLS (thread-local storage unsupported)"),
            Error::NoLoadSegments => write!(f, "no PT_LOAD segment"),
            Error::TooManySegments => write!(f, "too many PT_LOAD segments"),
            Error::WriteExecSegment(i) => write!(f, "segment {i} is writable and executable"),
            Error::SegmentOutsideFile(i) => write!(f, "segment {i} lies outside the file"),
            Error::FileSizeExceedsMemSize(i) => write!(f, "segment {i}: filesz > memsz"),
            Error::SegmentOverflow(i) => write!(f, "segment {i}: address range overflows"),
            Error::BadAlignment(i) => write!(f, "segment {i}: bad p_align"),
            Error::SegmentOverlap(i) => write!(f, "segment {i} overlaps the previous one"),
            Error::SpanTooLarge(s) => write!(f, "segments span {s:#x} bytes (too large)"),
            Error::EntryNotExecutable(e) => write!(f, "entry {e:#x} is not in executable code"),
            Error::MultipleDynamic => write!(f, "more than one PT_DYNAMIC"),
            Error::BadDynamic => write!(f, "malformed PT_DYNAMIC"),
            Error::UnsupportedDynamicTag(t) => write!(f, "unsupported dynamic tag {t:#x}"),
            Error::BadRelocationTable => write!(f, "malformed DT_RELA table"),
            Error::RelocationTableOutsideFile => write!(f, "DT_RELA table outside the file"),
            Error::TooManyRelocations(n) => write!(f, "{n} relocations (too many)"),
            Error::UnsupportedRelocation(t) => write!(f, "unsupported relocation type {t}"),
            Error::RelocationOutOfBounds(o) => write!(f, "relocation at {o:#x} outside segments"),
        }
    }
}

/// Access permissions of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

impl Perms {
    /// The `ZX_VM_PERM_*` bits for `zx_vmar_map`. An execute-only segment also asks for
    /// `ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED` (x86_64 has no execute-only pages).
    pub fn zx_vm_flags(self) -> u32 {
        use abi::vm_options::*;
        let mut f = 0;
        if self.read {
            f |= ZX_VM_PERM_READ;
        }
        if self.write {
            f |= ZX_VM_PERM_WRITE;
        }
        if self.execute {
            f |= ZX_VM_PERM_EXECUTE;
            if !self.read {
                f |= ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED;
            }
        }
        f
    }

    fn from_p_flags(p_flags: u32) -> Self {
        Perms {
            read: p_flags & PF_R != 0,
            write: p_flags & PF_W != 0,
            execute: p_flags & PF_X != 0,
        }
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |on: bool, ch: char| if on { ch } else { '-' };
        write!(
            f,
            "{}{}{}",
            c(self.read, 'r'),
            c(self.write, 'w'),
            c(self.execute, 'x')
        )
    }
}

/// One `PT_LOAD` segment of a [`LoadPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Offset of the segment's bytes in the file.
    pub file_offset: u64,
    /// Number of bytes taken from the file (the rest up to `mem_size` is zero).
    pub file_size: u64,
    /// Offset of the segment's first byte from the span's start (not necessarily page-aligned).
    pub offset: u64,
    /// Size in memory.
    pub mem_size: u64,
    /// Permissions.
    pub perms: Perms,
}

impl Segment {
    /// Offset of the first page of the segment from the span's start.
    pub fn page_offset(&self) -> u64 {
        self.offset & !(PAGE_SIZE - 1)
    }

    /// Size of the segment's pages (page-rounded, from [`Segment::page_offset`]).
    pub fn page_size(&self) -> u64 {
        // Cannot overflow: `LoadPlan::parse` checked offset + mem_size <= span <= MAX_SPAN.
        page_up(self.offset + self.mem_size) - self.page_offset()
    }
}

/// One relative relocation: the 8 bytes at `offset` (from the span's start) become
/// `base + addend` (base: where the span was placed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocation {
    /// Where, from the span's start.
    pub offset: u64,
    /// The addend (a link-time address, i.e. relative to the span's start plus `link_base`).
    pub addend: i64,
    /// Index of the segment that contains the 8 bytes.
    pub segment: usize,
}

/// What [`LoadPlan::parse`] learns from an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// The lowest segment's link-time address, rounded down to a page (usually 0 for a PIE).
    pub link_base: u64,
    /// Size of the region to reserve: from `link_base` to the highest segment end, page-rounded.
    pub span: u64,
    /// `PT_LOAD` segments in address order.
    pub segments: Vec<Segment>,
    /// Relative relocations.
    pub relocations: Vec<Relocation>,
    /// Entry point, from the span's start.
    pub entry: u64,
    /// `PT_GNU_STACK`'s `p_memsz` if non-zero (a requested stack size).
    pub stack_size: Option<u64>,
}

/// Rounds up to a page; saturates at the last page boundary instead of overflowing.
fn page_up(x: u64) -> u64 {
    page_down(x.saturating_add(PAGE_SIZE - 1))
}

fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

impl LoadPlan {
    /// Validates `image` and computes its load plan: the header, the program headers, the
    /// segments, the entry point, then the relocations.
    pub fn parse(image: &[u8]) -> Result<LoadPlan, Error> {
        let file = ElfBytes::<LittleEndian>::minimal_parse(image)?;
        check_header(&file.ehdr)?;
        let headers = program_headers(&file)?;
        let first = headers.loads.first().ok_or(Error::NoLoadSegments)?;
        let link_base = page_down(first.p_vaddr);
        let (segments, span) = segments(image, &headers.loads, link_base)?;
        let e_entry = file.ehdr.e_entry;
        let entry = e_entry
            .checked_sub(link_base)
            .filter(|&e| {
                segments
                    .iter()
                    .any(|s| s.perms.execute && e >= s.offset && e - s.offset < s.mem_size)
            })
            .ok_or(Error::EntryNotExecutable(e_entry))?;
        let relocations = match headers.dynamic {
            Some(dynamic) => relocations(image, &headers.loads, &segments, link_base, &dynamic)?,
            None => Vec::new(),
        };
        Ok(LoadPlan {
            link_base,
            span,
            segments,
            relocations,
            entry,
            stack_size: headers.stack_size,
        })
    }
}

/// A 64-bit x86_64 position-independent executable, or the error saying what it is instead.
fn check_header(eh: &elf::file::FileHeader<LittleEndian>) -> Result<(), Error> {
    if eh.class != Class::ELF64 {
        return Err(Error::Not64Bit);
    }
    if eh.e_machine != EM_X86_64 {
        return Err(Error::NotX86_64(eh.e_machine));
    }
    if eh.e_type != ET_DYN {
        return Err(Error::NotPie(eh.e_type));
    }
    Ok(())
}

/// What the program headers say: the `PT_LOAD`s in file order, the one `PT_DYNAMIC`, and the
/// stack size of `PT_GNU_STACK`.
struct ProgramHeaders {
    loads: Vec<ProgramHeader>,
    dynamic: Option<ProgramHeader>,
    stack_size: Option<u64>,
}

/// Reads the program headers by index (a truncated entry is an error, not the end).
fn program_headers(file: &ElfBytes<'_, LittleEndian>) -> Result<ProgramHeaders, Error> {
    let phdrs = file.segments().ok_or(Error::NoProgramHeaders)?;
    if phdrs.len() > MAX_PROGRAM_HEADERS {
        return Err(Error::TooManyProgramHeaders(phdrs.len()));
    }
    let mut out = ProgramHeaders {
        loads: Vec::new(),
        dynamic: None,
        stack_size: None,
    };
    for i in 0..phdrs.len() {
        let ph = phdrs.get(i)?;
        match ph.p_type {
            PT_LOAD => {
                if out.loads.len() == MAX_SEGMENTS {
                    return Err(Error::TooManySegments);
                }
                out.loads.push(ph);
            }
            PT_DYNAMIC => {
                if out.dynamic.replace(ph).is_some() {
                    return Err(Error::MultipleDynamic);
                }
            }
            PT_INTERP => return Err(Error::HasInterpreter),
            PT_TLS => return Err(Error::HasTls),
            PT_GNU_STACK => out.stack_size = (ph.p_memsz != 0).then_some(ph.p_memsz),
            _ => {}
        }
    }
    Ok(out)
}

/// Checks each `PT_LOAD` (W^X, alignment, sizes, inside the file, no overlap, span bound) and
/// returns the segments relative to `link_base` with the span they cover.
fn segments(
    image: &[u8],
    loads: &[ProgramHeader],
    link_base: u64,
) -> Result<(Vec<Segment>, u64), Error> {
    let mut segments = Vec::with_capacity(loads.len());
    let mut prev_end: Option<u64> = None; // page-rounded end of the previous segment
    let mut span = 0u64;
    for (i, ph) in loads.iter().enumerate() {
        let perms = Perms::from_p_flags(ph.p_flags);
        if perms.write && perms.execute {
            return Err(Error::WriteExecSegment(i));
        }
        if ph.p_align > 1 && !ph.p_align.is_power_of_two() {
            return Err(Error::BadAlignment(i));
        }
        if ph.p_filesz > ph.p_memsz {
            return Err(Error::FileSizeExceedsMemSize(i));
        }
        let file_end = ph
            .p_offset
            .checked_add(ph.p_filesz)
            .ok_or(Error::SegmentOutsideFile(i))?;
        if file_end > image.len() as u64 {
            return Err(Error::SegmentOutsideFile(i));
        }
        let end = ph
            .p_vaddr
            .checked_add(ph.p_memsz)
            .and_then(|e| e.checked_add(PAGE_SIZE - 1))
            .ok_or(Error::SegmentOverflow(i))?;
        let page_end = page_down(end);
        let page_start = page_down(ph.p_vaddr);
        if let Some(prev) = prev_end {
            if page_start < prev {
                return Err(Error::SegmentOverlap(i));
            }
        }
        prev_end = Some(page_end);
        // page_start >= link_base: the first segment defines link_base and later ones are at
        // or above the previous end.
        span = page_end - link_base;
        if span > MAX_SPAN {
            return Err(Error::SpanTooLarge(span));
        }
        segments.push(Segment {
            file_offset: ph.p_offset,
            file_size: ph.p_filesz,
            offset: ph.p_vaddr - link_base,
            mem_size: ph.p_memsz,
            perms,
        });
    }
    Ok((segments, span))
}

/// Where `DT_RELA` points and how large it is (`DT_RELASZ`; 0 without relocations).
struct RelaTable {
    addr: Option<u64>,
    size: u64,
    entry_size: Option<u64>,
}

/// Reads the dynamic section named by `PT_DYNAMIC` up to `DT_NULL`; a tag this loader cannot
/// honour (needed libraries, other relocation formats) is an error.
fn rela_table(image: &[u8], dynamic: &ProgramHeader) -> Result<RelaTable, Error> {
    let start = usize::try_from(dynamic.p_offset).map_err(|_| Error::BadDynamic)?;
    let len = usize::try_from(dynamic.p_filesz).map_err(|_| Error::BadDynamic)?;
    let end = start.checked_add(len).ok_or(Error::BadDynamic)?;
    let bytes = image.get(start..end).ok_or(Error::BadDynamic)?;
    if bytes.len() % 16 != 0 {
        return Err(Error::BadDynamic);
    }
    let table: DynamicTable<'_, LittleEndian> =
        DynamicTable::new(LittleEndian, Class::ELF64, bytes);
    let mut out = RelaTable {
        addr: None,
        size: 0,
        entry_size: None,
    };
    for i in 0..table.len() {
        let d = table.get(i)?;
        match d.d_tag {
            DT_NULL => return Ok(out),
            DT_RELA => out.addr = Some(d.d_ptr()),
            DT_RELASZ => out.size = d.d_val(),
            DT_RELAENT => out.entry_size = Some(d.d_val()),
            DT_NEEDED | DT_RELR => return Err(Error::UnsupportedDynamicTag(d.d_tag)),
            DT_REL | DT_JMPREL => return Err(Error::UnsupportedDynamicTag(d.d_tag)),
            DT_RELSZ | DT_PLTRELSZ if d.d_val() != 0 => {
                return Err(Error::UnsupportedDynamicTag(d.d_tag))
            }
            _ => {}
        }
    }
    // No DT_NULL: the table is not terminated.
    Err(Error::BadDynamic)
}

/// Reads the `DT_RELA` table named by `PT_DYNAMIC`.
fn relocations(
    image: &[u8],
    loads: &[ProgramHeader],
    segments: &[Segment],
    link_base: u64,
    dynamic: &ProgramHeader,
) -> Result<Vec<Relocation>, Error> {
    let RelaTable {
        addr,
        size: relasz,
        entry_size,
    } = rela_table(image, dynamic)?;
    if relasz == 0 {
        return Ok(Vec::new());
    }
    let rela = addr.ok_or(Error::BadRelocationTable)?;
    if entry_size.unwrap_or(RELA_SIZE) != RELA_SIZE || relasz % RELA_SIZE != 0 {
        return Err(Error::BadRelocationTable);
    }
    let count = (relasz / RELA_SIZE) as usize;
    if count > MAX_RELOCATIONS {
        return Err(Error::TooManyRelocations(count));
    }
    // The table lives in the file part of some PT_LOAD: translate its address to a file offset.
    let rela_end = rela
        .checked_add(relasz)
        .ok_or(Error::RelocationTableOutsideFile)?;
    let file_at = loads
        .iter()
        .find(|ph| {
            rela >= ph.p_vaddr
                && ph
                    .p_vaddr
                    .checked_add(ph.p_filesz)
                    .is_some_and(|e| rela_end <= e)
        })
        .map(|ph| ph.p_offset + (rela - ph.p_vaddr))
        .ok_or(Error::RelocationTableOutsideFile)?;
    // In bounds: the segment's file range was checked against the image.
    let bytes = &image[file_at as usize..(file_at + relasz) as usize];
    let table: elf::parse::ParsingTable<'_, LittleEndian, Rela> =
        elf::parse::ParsingTable::new(LittleEndian, Class::ELF64, bytes);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let r = table.get(i)?;
        match r.r_type {
            R_X86_64_NONE => continue,
            R_X86_64_RELATIVE if r.r_sym == 0 => {}
            t => return Err(Error::UnsupportedRelocation(t)),
        }
        let offset = r
            .r_offset
            .checked_sub(link_base)
            .ok_or(Error::RelocationOutOfBounds(r.r_offset))?;
        let segment = segments
            .iter()
            .position(|s| {
                offset >= s.offset
                    && offset
                        .checked_add(8)
                        .is_some_and(|e| e <= s.offset + s.mem_size)
            })
            .ok_or(Error::RelocationOutOfBounds(r.r_offset))?;
        out.push(Relocation {
            offset,
            addend: r.r_addend,
            segment,
        });
    }
    Ok(out)
}

/// How [`load`] places one segment when the target holds the image as a VMO (see the crate
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A fresh VMO holding the segment's relocated bytes ([`LoadTarget::map_segment`]).
    Copy,
    /// The image's pages from file offset `file_page` (page-aligned), mapped as they are
    /// ([`LoadTarget::map_image`]): [`Segment::page_size`] bytes.
    Shared {
        /// File offset of the segment's first page.
        file_page: u64,
    },
    /// A copy-on-write child of the image's `file_pages` pages from `file_page`
    /// ([`LoadTarget::map_image_cow`]), then zero pages for the rest of
    /// [`Segment::page_size`] ([`LoadTarget::map_segment`] without data).
    Cow {
        /// File offset of the segment's first page.
        file_page: u64,
        /// Pages that hold file bytes of the segment.
        file_pages: u64,
    },
}

/// One page of a copy-on-write segment that differs from the image: written whole into the
/// child (one page copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// Offset of the page from the segment's first page.
    pub at: u64,
    /// The page's contents ([`PAGE_SIZE`] bytes).
    pub bytes: Vec<u8>,
}

impl LoadPlan {
    /// How segment `index` is placed when the target maps the image itself (see
    /// [`Placement`]); `None` for an index past the last segment.
    pub fn placement(&self, index: usize) -> Option<Placement> {
        let seg = self.segments.get(index)?;
        let lead = seg.offset - seg.page_offset();
        if seg.file_size == 0 || seg.file_offset % PAGE_SIZE != lead {
            return Some(Placement::Copy);
        }
        let file_page = seg.file_offset - lead;
        let relocated = self.relocations.iter().any(|r| r.segment == index);
        if !seg.perms.write && !relocated && seg.mem_size == seg.file_size {
            return Some(Placement::Shared { file_page });
        }
        // Cannot overflow: parse checked offset + mem_size <= span <= MAX_SPAN.
        let file_end = page_up(seg.offset + seg.file_size);
        if self
            .relocations
            .iter()
            .any(|r| r.segment == index && r.offset + 8 > file_end)
        {
            // A relocated word in the zero-fill pages: they are not the child's.
            return Some(Placement::Copy);
        }
        let file_pages = (file_end - seg.page_offset()) / PAGE_SIZE;
        Some(Placement::Cow {
            file_page,
            file_pages,
        })
    }

    /// The pages of copy-on-write segment `index` that differ from the image once placed at
    /// `base`: each page holding a relocated word, and the last file page when zero-fill starts
    /// inside it. Their contents come from [`segment_image`] (zero outside the segment's file
    /// part).
    pub fn patches(&self, image: &[u8], index: usize, base: u64) -> Result<Vec<Patch>, Error> {
        let seg = self.segments.get(index).ok_or(Error::NoLoadSegments)?;
        let first = seg.page_offset();
        let mut pages: Vec<u64> = Vec::new();
        for r in self.relocations.iter().filter(|r| r.segment == index) {
            pages.push(page_down(r.offset - first));
            pages.push(page_down(r.offset + 7 - first));
        }
        let file_end = seg.offset + seg.file_size - first;
        if seg.mem_size > seg.file_size && file_end % PAGE_SIZE != 0 {
            pages.push(page_down(file_end));
        }
        pages.sort_unstable();
        pages.dedup();
        let data = segment_image(image, self, index, base)?;
        Ok(pages
            .into_iter()
            .map(|at| {
                let mut bytes = vec![0u8; PAGE_SIZE as usize];
                let from = (at as usize).min(data.len());
                let to = (at + PAGE_SIZE).min(data.len() as u64) as usize;
                bytes[..to - from].copy_from_slice(&data[from..to]);
                Patch { at, bytes }
            })
            .collect())
    }
}

/// Where a loaded image ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Address of the span's start (the region [`LoadTarget::reserve`] returned).
    pub base: u64,
    /// Size of the span.
    pub span: u64,
    /// Address of the entry point.
    pub entry: u64,
    /// The load bias: run-time address minus link-time address.
    pub bias: u64,
}

/// The address space a program is loaded into.
///
/// [`load`] calls [`LoadTarget::reserve`] once, then per segment in address order
/// [`LoadTarget::map_segment`] (without an image, or for a [`Placement::Copy`]), or
/// [`LoadTarget::map_image`] / [`LoadTarget::map_image_cow`] (with an image, see
/// [`LoadPlan::placement`]). It stops at the first error and leaves the cleanup (destroying the
/// reserved region) to the target's owner.
pub trait LoadTarget {
    /// The target's error type (a `Status` for both implementations here).
    type Error;

    /// Reserves `span` bytes (a page multiple) at an address the target chooses; returns it.
    /// Segments are then placed at fixed offsets inside that region.
    fn reserve(&mut self, span: u64) -> Result<u64, Self::Error>;

    /// Places one segment: `size` bytes (a page multiple) at `offset` (page-aligned) from the
    /// reserved base, with `perms`. The first `data.len()` bytes (`<= size`) are `data` (file
    /// bytes, relocated); the rest is zero.
    fn map_segment(
        &mut self,
        offset: u64,
        size: u64,
        perms: Perms,
        data: &[u8],
    ) -> Result<(), Self::Error>;

    /// True when the target holds the image being loaded in a VMO, file offset 0 at a
    /// page-aligned VMO offset, with its last page padded by zeros or the file's own bytes:
    /// then [`load`] asks it to map image pages ([`LoadTarget::map_image`],
    /// [`LoadTarget::map_image_cow`]) instead of copying them.
    fn has_image(&self) -> bool;

    /// Maps `size` bytes (a page multiple) of the image from `file_offset` (page-aligned) at
    /// `offset` from the reserved base, with `perms` (never write): the image's own pages,
    /// shared, never copied.
    fn map_image(
        &mut self,
        offset: u64,
        file_offset: u64,
        size: u64,
        perms: Perms,
    ) -> Result<(), Self::Error>;

    /// Maps, at `offset` with `perms`, a copy-on-write child of the `size` bytes (a page
    /// multiple) of the image from `file_offset` (page-aligned), after writing each of
    /// `patches` (whole pages, offsets from the child's start) into the child.
    fn map_image_cow(
        &mut self,
        offset: u64,
        file_offset: u64,
        size: u64,
        perms: Perms,
        patches: &[Patch],
    ) -> Result<(), Self::Error>;
}

/// Why [`load`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError<E> {
    /// The image is invalid (also when `image` is not the one `plan` was made from).
    Elf(Error),
    /// The target failed.
    Target(E),
}

impl<E> From<Error> for LoadError<E> {
    fn from(e: Error) -> Self {
        LoadError::Elf(e)
    }
}

impl<E: fmt::Debug> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Elf(e) => write!(f, "{e}"),
            LoadError::Target(e) => write!(f, "loading failed: {e:?}"),
        }
    }
}

/// Builds the initialized bytes of segment `index` (from its first page) with the relocations
/// for a span placed at `base` applied.
pub fn segment_image(
    image: &[u8],
    plan: &LoadPlan,
    index: usize,
    base: u64,
) -> Result<Vec<u8>, Error> {
    let seg = plan.segments.get(index).ok_or(Error::NoLoadSegments)?;
    let lead = (seg.offset - seg.page_offset()) as usize;
    let file = usize::try_from(seg.file_offset)
        .ok()
        .zip(usize::try_from(seg.file_size).ok())
        .and_then(|(at, len)| image.get(at..at.checked_add(len)?))
        .ok_or(Error::SegmentOutsideFile(index))?;
    // Bytes up to the last relocated word or file byte; the rest of the pages stay zero.
    let mut len = lead + file.len();
    for r in plan.relocations.iter().filter(|r| r.segment == index) {
        len = len.max((r.offset + 8 - seg.page_offset()) as usize);
    }
    if len as u64 > seg.page_size() {
        return Err(Error::SegmentOverflow(index));
    }
    let mut data = vec![0u8; len];
    data[lead..lead + file.len()].copy_from_slice(file);
    let bias = base.wrapping_sub(plan.link_base);
    for r in plan.relocations.iter().filter(|r| r.segment == index) {
        let at = (r.offset - seg.page_offset()) as usize;
        // `addend` is a link-time address: its run-time address is addend + bias.
        let value = bias.wrapping_add(r.addend as u64);
        data[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }
    Ok(data)
}

/// Loads `image` (which `plan` was parsed from) into `target`.
pub fn load<T: LoadTarget + ?Sized>(
    image: &[u8],
    plan: &LoadPlan,
    target: &mut T,
) -> Result<Loaded, LoadError<T::Error>> {
    let base = target.reserve(plan.span).map_err(LoadError::Target)?;
    let has_image = target.has_image();
    for (i, seg) in plan.segments.iter().enumerate() {
        let placement = match has_image {
            true => plan.placement(i).ok_or(Error::NoLoadSegments)?,
            false => Placement::Copy,
        };
        let at = seg.page_offset();
        match placement {
            Placement::Copy => {
                let data = segment_image(image, plan, i, base)?;
                // Trailing zeros need no writing (a `.bss`-only segment's leading bytes are
                // all zero): the target's fresh pages are zero already.
                let end = data
                    .iter()
                    .rposition(|&b| b != 0)
                    .map_or(0, |last| last + 1);
                target.map_segment(at, seg.page_size(), seg.perms, &data[..end])
            }
            Placement::Shared { file_page } => {
                target.map_image(at, file_page, seg.page_size(), seg.perms)
            }
            Placement::Cow {
                file_page,
                file_pages,
            } => {
                let patches = plan.patches(image, i, base)?;
                let file_size = file_pages * PAGE_SIZE;
                target
                    .map_image_cow(at, file_page, file_size, seg.perms, &patches)
                    .and_then(|()| match seg.page_size() - file_size {
                        0 => Ok(()),
                        rest => target.map_segment(at + file_size, rest, seg.perms, &[]),
                    })
            }
        }
        .map_err(LoadError::Target)?;
    }
    Ok(Loaded {
        base,
        span: plan.span,
        entry: base.wrapping_add(plan.entry),
        bias: base.wrapping_sub(plan.link_base),
    })
}

#[cfg(test)]
mod tests;
