//! Host tests over a small static-PIE image written by hand (so every field can be corrupted on
//! purpose). The real user programs are checked by `tests/tests/programs.rs`.

use super::*;

// Layout of the hand-made image (file offsets equal link addresses).
const PHOFF: usize = 0x40;
const PHENT: usize = 56;
const RELA_AT: u64 = 0x200;
const TEXT_AT: u64 = 0x1000;
const DATA_AT: u64 = 0x2000;
const DYN_AT: u64 = 0x2100;
const FILE_LEN: usize = 0x2140;
const TEXT: [u8; 16] = [0xcc; 16];

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Field offsets in an `Elf64_Phdr`.
mod ph {
    pub const TYPE: usize = 0;
    pub const FLAGS: usize = 4;
    pub const OFFSET: usize = 8;
    pub const VADDR: usize = 16;
    pub const FILESZ: usize = 32;
    pub const MEMSZ: usize = 40;
    pub const ALIGN: usize = 48;
}

fn phdr_at(i: usize, field: usize) -> usize {
    PHOFF + i * PHENT + field
}

#[allow(clippy::too_many_arguments)]
fn put_phdr(b: &mut [u8], i: usize, ty: u32, flags: u32, off: u64, filesz: u64, memsz: u64) {
    put32(b, phdr_at(i, ph::TYPE), ty);
    put32(b, phdr_at(i, ph::FLAGS), flags);
    put64(b, phdr_at(i, ph::OFFSET), off);
    put64(b, phdr_at(i, ph::VADDR), off);
    put64(b, phdr_at(i, 24), off);
    put64(b, phdr_at(i, ph::FILESZ), filesz);
    put64(b, phdr_at(i, ph::MEMSZ), memsz);
    put64(b, phdr_at(i, ph::ALIGN), 0x1000);
}

/// Three relocations (two RELATIVE, one NONE) in an R segment, code in an RX segment, data and
/// `.dynamic` in an RW segment with `.bss`, plus `PT_DYNAMIC` and `PT_GNU_STACK`.
fn image() -> Vec<u8> {
    let mut b = vec![0u8; FILE_LEN];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // little-endian
    b[6] = 1; // EV_CURRENT
    put16(&mut b, 16, ET_DYN);
    put16(&mut b, 18, EM_X86_64);
    put32(&mut b, 20, 1);
    put64(&mut b, 24, TEXT_AT); // e_entry
    put64(&mut b, 32, PHOFF as u64);
    put64(&mut b, 40, 0); // no section headers
    put16(&mut b, 52, 64);
    put16(&mut b, 54, PHENT as u16);
    put16(&mut b, 56, 5);
    put16(&mut b, 58, 64);
    put_phdr(&mut b, 0, PT_LOAD, PF_R, 0, 0x300, 0x300);
    put_phdr(&mut b, 1, PT_LOAD, PF_R | PF_X, TEXT_AT, 0x10, 0x10);
    put_phdr(&mut b, 2, PT_LOAD, PF_R | PF_W, DATA_AT, 0x140, 0x3000);
    put_phdr(&mut b, 3, PT_DYNAMIC, PF_R | PF_W, DYN_AT, 0x40, 0x40);
    put_phdr(&mut b, 4, PT_GNU_STACK, PF_R | PF_W, 0, 0, 0);
    // Relocations: *0x2000 = base + 0x1000, *0x2008 = base + 0x2010, and an R_X86_64_NONE.
    let relas: [(u64, u64, i64); 3] = [
        (0x2000, R_X86_64_RELATIVE as u64, 0x1000),
        (0x2008, R_X86_64_RELATIVE as u64, 0x2010),
        (0, R_X86_64_NONE as u64, 0),
    ];
    for (i, (off, info, addend)) in relas.iter().enumerate() {
        let at = RELA_AT as usize + i * 24;
        put64(&mut b, at, *off);
        put64(&mut b, at + 8, *info);
        put64(&mut b, at + 16, *addend as u64);
    }
    b[TEXT_AT as usize..TEXT_AT as usize + 16].copy_from_slice(&TEXT);
    b[DATA_AT as usize + 0x10..DATA_AT as usize + 0x14].copy_from_slice(b"data");
    let dynamic: [(i64, u64); 4] = [
        (DT_RELA, RELA_AT),
        (DT_RELASZ, 72),
        (DT_RELAENT, 24),
        (DT_NULL, 0),
    ];
    for (i, (tag, val)) in dynamic.iter().enumerate() {
        let at = DYN_AT as usize + i * 16;
        put64(&mut b, at, *tag as u64);
        put64(&mut b, at + 8, *val);
    }
    b
}

/// A fake address space: records the reservation and fills a byte image of the span. With
/// `image` (the file, page-padded as the ramdisk holds it) it maps image pages as a VMO-backed
/// target does, and records how each segment was placed in `kinds`.
#[derive(Default)]
struct Fake {
    base: u64,
    memory: Vec<u8>,
    maps: Vec<(u64, u64, Perms)>,
    fail_map: bool,
    image: Option<Vec<u8>>,
    kinds: Vec<&'static str>,
    patched: Vec<u64>,
}

impl Fake {
    fn with_image(img: &[u8]) -> Fake {
        let mut padded = img.to_vec();
        padded.resize(img.len().next_multiple_of(PAGE_SIZE as usize), 0);
        Fake {
            image: Some(padded),
            ..Fake::default()
        }
    }

    /// Copies image pages `[file_offset, file_offset + size)` to `offset` (a shared or
    /// copy-on-write mapping shows the same bytes).
    fn place_image(&mut self, offset: u64, file_offset: u64, size: u64, perms: Perms) {
        let img = self.image.as_ref().expect("map_image without an image");
        assert_eq!(file_offset % PAGE_SIZE, 0);
        assert_eq!(size % PAGE_SIZE, 0);
        let src = &img[file_offset as usize..(file_offset + size) as usize];
        self.memory[offset as usize..(offset + size) as usize].copy_from_slice(src);
        self.maps.push((offset, size, perms));
    }
}

impl LoadTarget for Fake {
    type Error = &'static str;
    fn reserve(&mut self, span: u64) -> Result<u64, &'static str> {
        if span > 1 << 24 {
            return Err("too big for the fake");
        }
        self.base = 0x7f00_0000_0000;
        self.memory = vec![0xee; span as usize];
        Ok(self.base)
    }
    fn map_segment(
        &mut self,
        offset: u64,
        size: u64,
        perms: Perms,
        data: &[u8],
    ) -> Result<(), &'static str> {
        if self.fail_map {
            return Err("map failed");
        }
        assert_eq!(offset % PAGE_SIZE, 0);
        assert_eq!(size % PAGE_SIZE, 0);
        assert!(data.len() as u64 <= size);
        assert!(offset + size <= self.memory.len() as u64);
        for &(o, s, _) in &self.maps {
            assert!(offset >= o + s || offset + size <= o, "overlapping maps");
        }
        let region = &mut self.memory[offset as usize..(offset + size) as usize];
        region.fill(0);
        region[..data.len()].copy_from_slice(data);
        self.maps.push((offset, size, perms));
        self.kinds
            .push(if data.is_empty() { "zero" } else { "copy" });
        Ok(())
    }
    fn has_image(&self) -> bool {
        self.image.is_some()
    }
    fn map_image(
        &mut self,
        offset: u64,
        file_offset: u64,
        size: u64,
        perms: Perms,
    ) -> Result<(), &'static str> {
        assert!(!perms.write, "a shared image page mapped writable");
        self.place_image(offset, file_offset, size, perms);
        self.kinds.push("shared");
        Ok(())
    }
    fn map_image_cow(
        &mut self,
        offset: u64,
        file_offset: u64,
        size: u64,
        perms: Perms,
        patches: &[Patch],
    ) -> Result<(), &'static str> {
        self.place_image(offset, file_offset, size, perms);
        for p in patches {
            assert_eq!(p.at % PAGE_SIZE, 0);
            assert_eq!(p.bytes.len() as u64, PAGE_SIZE);
            assert!(p.at < size, "a patch outside the child");
            let at = (offset + p.at) as usize;
            self.memory[at..at + PAGE_SIZE as usize].copy_from_slice(&p.bytes);
            self.patched.push(offset + p.at);
        }
        self.kinds.push("cow");
        Ok(())
    }
}

fn rd64(m: &[u8], at: u64) -> u64 {
    u64::from_le_bytes(m[at as usize..at as usize + 8].try_into().unwrap())
}

#[test]
fn plan_of_a_good_image() {
    let plan = LoadPlan::parse(&image()).unwrap();
    assert_eq!(plan.link_base, 0);
    assert_eq!(plan.span, 0x5000);
    assert_eq!(plan.entry, TEXT_AT);
    assert_eq!(plan.stack_size, None);
    assert_eq!(plan.segments.len(), 3);
    let s = &plan.segments[2];
    assert_eq!((s.offset, s.file_size, s.mem_size), (0x2000, 0x140, 0x3000));
    assert_eq!((s.page_offset(), s.page_size()), (0x2000, 0x3000));
    assert_eq!(plan.segments[1].perms.to_string(), "r-x");
    assert_eq!(
        plan.relocations,
        [
            Relocation {
                offset: 0x2000,
                addend: 0x1000,
                segment: 2
            },
            Relocation {
                offset: 0x2008,
                addend: 0x2010,
                segment: 2
            }
        ]
    );
}

#[test]
fn loads_and_relocates() {
    let img = image();
    let plan = LoadPlan::parse(&img).unwrap();
    let mut t = Fake::default();
    let loaded = load(&img, &plan, &mut t).unwrap();
    assert_eq!(loaded.base, t.base);
    assert_eq!(loaded.entry, t.base + TEXT_AT);
    assert_eq!(loaded.bias, t.base);
    let rw = Perms {
        read: true,
        write: true,
        execute: false,
    };
    let rx = Perms {
        read: true,
        write: false,
        execute: true,
    };
    let r = Perms {
        read: true,
        ..Perms::default()
    };
    assert_eq!(
        t.maps,
        [(0, 0x1000, r), (0x1000, 0x1000, rx), (0x2000, 0x3000, rw)]
    );
    let m = &t.memory;
    assert_eq!(&m[0..4], b"\x7fELF");
    assert_eq!(&m[0x1000..0x1010], &TEXT);
    assert!(m[0x1010..0x2000].iter().all(|&b| b == 0));
    assert_eq!(rd64(m, 0x2000), t.base + 0x1000);
    assert_eq!(rd64(m, 0x2008), t.base + 0x2010);
    assert_eq!(&m[0x2010..0x2014], b"data");
    // .bss is zero.
    assert!(m[0x2140..0x5000].iter().all(|&b| b == 0));
}

#[test]
fn nonzero_link_base() {
    // Shift every address by 0x40_0000 (a PIE linked at a non-zero base is still position
    // independent): offsets from the span, entry and relocated values follow the bias.
    let mut b = image();
    let shift = 0x40_0000u64;
    for i in 0..4 {
        let v = u64::from_le_bytes(b[phdr_at(i, ph::VADDR)..][..8].try_into().unwrap());
        put64(&mut b, phdr_at(i, ph::VADDR), v + shift);
    }
    put64(&mut b, 24, TEXT_AT + shift);
    put64(&mut b, RELA_AT as usize, 0x2000 + shift);
    put64(&mut b, RELA_AT as usize + 16, 0x1000 + shift);
    put64(&mut b, RELA_AT as usize + 24, 0x2008 + shift);
    put64(&mut b, RELA_AT as usize + 40, 0x2010 + shift);
    put64(&mut b, DYN_AT as usize + 8, RELA_AT + shift);
    let plan = LoadPlan::parse(&b).unwrap();
    assert_eq!(plan.link_base, shift);
    assert_eq!(plan.entry, TEXT_AT);
    let mut t = Fake::default();
    let loaded = load(&b, &plan, &mut t).unwrap();
    assert_eq!(loaded.bias, t.base - shift);
    assert_eq!(rd64(&t.memory, 0x2000), t.base + 0x1000);
    assert_eq!(rd64(&t.memory, 0x2008), t.base + 0x2010);
}

#[test]
fn rejects_write_exec() {
    let mut b = image();
    put32(&mut b, phdr_at(1, ph::FLAGS), PF_R | PF_W | PF_X);
    assert_eq!(LoadPlan::parse(&b), Err(Error::WriteExecSegment(1)));
}

#[test]
fn rejects_other_relocations() {
    let mut b = image();
    put64(&mut b, RELA_AT as usize + 8, 1 | (3 << 32)); // R_X86_64_64 against symbol 3
    assert_eq!(LoadPlan::parse(&b), Err(Error::UnsupportedRelocation(1)));
    let mut b = image();
    put64(&mut b, RELA_AT as usize + 8, 8 | (1 << 32)); // RELATIVE with a symbol
    assert_eq!(LoadPlan::parse(&b), Err(Error::UnsupportedRelocation(8)));
}

#[test]
fn rejects_bad_headers() {
    let mut b = image();
    put16(&mut b, 16, 2); // ET_EXEC
    assert_eq!(LoadPlan::parse(&b), Err(Error::NotPie(2)));
    let mut b = image();
    put16(&mut b, 18, 3); // EM_386
    assert_eq!(LoadPlan::parse(&b), Err(Error::NotX86_64(3)));
    let mut b = image();
    b[0] = 0;
    assert_eq!(
        LoadPlan::parse(&b),
        Err(Error::Malformed(ParseErrorKind::BadMagic))
    );
    let mut b = image();
    put32(&mut b, phdr_at(4, ph::TYPE), PT_INTERP);
    assert_eq!(LoadPlan::parse(&b), Err(Error::HasInterpreter));
    let mut b = image();
    put32(&mut b, phdr_at(4, ph::TYPE), PT_TLS);
    assert_eq!(LoadPlan::parse(&b), Err(Error::HasTls));
    let mut b = image();
    put64(&mut b, 24, 0x2000); // entry in data
    assert_eq!(LoadPlan::parse(&b), Err(Error::EntryNotExecutable(0x2000)));
    let mut b = image();
    put64(&mut b, 24, 0x1010); // one past the code
    assert_eq!(LoadPlan::parse(&b), Err(Error::EntryNotExecutable(0x1010)));
}

#[test]
fn rejects_bad_segments() {
    let mut b = image();
    put64(&mut b, phdr_at(1, ph::FILESZ), 0x20); // > memsz
    assert_eq!(LoadPlan::parse(&b), Err(Error::FileSizeExceedsMemSize(1)));
    let mut b = image();
    put64(&mut b, phdr_at(2, ph::FILESZ), 0x1000);
    put64(&mut b, phdr_at(2, ph::MEMSZ), 0x1000);
    assert_eq!(LoadPlan::parse(&b), Err(Error::SegmentOutsideFile(2)));
    let mut b = image();
    put64(&mut b, phdr_at(2, ph::OFFSET), u64::MAX - 4);
    assert_eq!(LoadPlan::parse(&b), Err(Error::SegmentOutsideFile(2)));
    let mut b = image();
    put64(&mut b, phdr_at(2, ph::VADDR), u64::MAX - 0x100);
    assert_eq!(LoadPlan::parse(&b), Err(Error::SegmentOverflow(2)));
    let mut b = image();
    put64(&mut b, phdr_at(1, ph::VADDR), 0x800); // shares page 0 with segment 0
    assert_eq!(LoadPlan::parse(&b), Err(Error::SegmentOverlap(1)));
    let mut b = image();
    put64(&mut b, phdr_at(1, ph::ALIGN), 0x1001);
    assert_eq!(LoadPlan::parse(&b), Err(Error::BadAlignment(1)));
    let mut b = image();
    put64(&mut b, phdr_at(2, ph::MEMSZ), MAX_SPAN);
    assert_eq!(
        LoadPlan::parse(&b),
        Err(Error::SpanTooLarge(MAX_SPAN + 0x2000))
    );
    let mut b = image();
    for i in 0..3 {
        put32(&mut b, phdr_at(i, ph::TYPE), 0x6474e550);
    }
    assert_eq!(LoadPlan::parse(&b), Err(Error::NoLoadSegments));
}

#[test]
fn rejects_bad_dynamic() {
    let mut b = image();
    put64(&mut b, DYN_AT as usize + 0x28, 24 + 1); // RELAENT
    assert_eq!(LoadPlan::parse(&b), Err(Error::BadRelocationTable));
    let mut b = image();
    put64(&mut b, DYN_AT as usize + 0x18, 71); // RELASZ not a multiple
    assert_eq!(LoadPlan::parse(&b), Err(Error::BadRelocationTable));
    let mut b = image();
    put64(&mut b, DYN_AT as usize + 0x18, 24 * 1000); // runs past the R segment
    assert_eq!(LoadPlan::parse(&b), Err(Error::RelocationTableOutsideFile));
    let mut b = image();
    put64(&mut b, DYN_AT as usize + 0x30, DT_NEEDED as u64); // DT_NULL -> DT_NEEDED
    assert_eq!(
        LoadPlan::parse(&b),
        Err(Error::UnsupportedDynamicTag(DT_NEEDED))
    );
    let mut b = image();
    put64(&mut b, DYN_AT as usize + 0x30, 0x7777_0000); // no DT_NULL at all
    assert_eq!(LoadPlan::parse(&b), Err(Error::BadDynamic));
    let mut b = image();
    put64(&mut b, RELA_AT as usize, 0x4ffc); // last word straddles the span's end
    assert_eq!(
        LoadPlan::parse(&b),
        Err(Error::RelocationOutOfBounds(0x4ffc))
    );
    let mut b = image();
    put64(&mut b, RELA_AT as usize, 0x1ffc); // straddles two segments
    assert_eq!(
        LoadPlan::parse(&b),
        Err(Error::RelocationOutOfBounds(0x1ffc))
    );
}

#[test]
fn target_errors_pass_through() {
    let img = image();
    let plan = LoadPlan::parse(&img).unwrap();
    let mut t = Fake {
        fail_map: true,
        ..Fake::default()
    };
    assert_eq!(
        load(&img, &plan, &mut t),
        Err(LoadError::Target("map failed"))
    );
    // An image that is not the one the plan came from is an error, not a panic.
    assert!(load(&img[..0x100], &plan, &mut Fake::default()).is_err());
}

#[test]
fn perms_to_zx_flags() {
    use abi::vm_options::*;
    let x = Perms {
        execute: true,
        ..Perms::default()
    };
    assert_eq!(
        x.zx_vm_flags(),
        ZX_VM_PERM_EXECUTE | ZX_VM_PERM_READ_IF_XOM_UNSUPPORTED
    );
    let rw = Perms {
        read: true,
        write: true,
        execute: false,
    };
    assert_eq!(rw.zx_vm_flags(), ZX_VM_PERM_READ | ZX_VM_PERM_WRITE);
}

/// Parses and (when the plan is accepted) loads, with and without an image; must never panic.
fn exercise(bytes: &[u8]) {
    if let Ok(plan) = LoadPlan::parse(bytes) {
        assert!(plan.span <= MAX_SPAN && plan.span % PAGE_SIZE == 0);
        let _ = load(bytes, &plan, &mut Fake::default());
        if plan.span <= 1 << 24 {
            let _ = load(bytes, &plan, &mut Fake::with_image(bytes));
        }
    }
}

/// Loads `img` by copying and by mapping the image; every segment's bytes
/// (`[offset, offset + mem_size)`) must be the same both ways. Returns the image-mapping target.
fn load_both_ways(img: &[u8]) -> Fake {
    let plan = LoadPlan::parse(img).unwrap();
    let mut copied = Fake::default();
    load(img, &plan, &mut copied).unwrap();
    let mut mapped = Fake::with_image(img);
    load(img, &plan, &mut mapped).unwrap();
    for s in &plan.segments {
        let r = s.offset as usize..(s.offset + s.mem_size) as usize;
        assert_eq!(
            copied.memory[r.clone()],
            mapped.memory[r],
            "segment at {:#x}",
            s.offset
        );
    }
    mapped
}

#[test]
fn image_pages_are_mapped_not_copied() {
    // Garbage after the file part of the data segment (as the next sections of a real file):
    // the zero-fill must hide it.
    let mut img = image();
    img.resize(0x3000, 0xab);
    let t = load_both_ways(&img);
    let plan = LoadPlan::parse(&img).unwrap();
    assert_eq!(plan.placement(0), Some(Placement::Shared { file_page: 0 }));
    assert_eq!(
        plan.placement(1),
        Some(Placement::Shared { file_page: 0x1000 })
    );
    assert_eq!(
        plan.placement(2),
        Some(Placement::Cow {
            file_page: 0x2000,
            file_pages: 1
        })
    );
    assert_eq!(plan.placement(3), None);
    // Rodata and text shared, data a child with one page rewritten, .bss fresh zero pages.
    assert_eq!(t.kinds, ["shared", "shared", "cow", "zero"]);
    assert_eq!(t.patched, [0x2000]);
    assert!(t.memory[0x2140..0x5000].iter().all(|&b| b == 0));
    assert_eq!(rd64(&t.memory, 0x2008), t.base + 0x2010);
}

#[test]
fn data_without_relocations_or_bss_is_an_unpatched_child() {
    // No relocations (DT_RELASZ 0) and a data segment without .bss: a child nothing is written
    // into, whose last page shows the file's following bytes past the segment.
    let mut img = image();
    img.resize(0x3000, 0xab);
    put64(&mut img, DYN_AT as usize + 24, 0);
    put64(&mut img, phdr_at(2, ph::MEMSZ), 0x140);
    let t = load_both_ways(&img);
    assert_eq!(t.kinds, ["shared", "shared", "cow"]);
    assert!(t.patched.is_empty());
    assert_eq!(t.memory[0x2140], 0xab);
}

#[test]
fn bss_tail_zeroed_without_relocations() {
    let mut img = image();
    img.resize(0x3000, 0xab);
    put64(&mut img, DYN_AT as usize + 24, 0);
    let t = load_both_ways(&img);
    assert_eq!(t.kinds, ["shared", "shared", "cow", "zero"]);
    assert_eq!(t.patched, [0x2000]);
    assert!(t.memory[0x2140..0x3000].iter().all(|&b| b == 0));
}

#[test]
fn relocated_read_only_segment_is_a_child_mapped_read_only() {
    // Move the relocations into the read-only segment (its bytes 0x100..0x110).
    let mut img = image();
    put64(&mut img, RELA_AT as usize, 0x100);
    put64(&mut img, RELA_AT as usize + 24, 0x108);
    let plan = LoadPlan::parse(&img).unwrap();
    assert_eq!(
        plan.placement(0),
        Some(Placement::Cow {
            file_page: 0,
            file_pages: 1
        })
    );
    let t = load_both_ways(&img);
    assert_eq!(t.kinds, ["cow", "shared", "cow", "zero"]);
    assert_eq!(t.patched, [0, 0x2000]);
    assert!(!t.maps[0].2.write);
    assert_eq!(rd64(&t.memory, 0x108), t.base + 0x2010);
}

#[test]
fn incongruent_segment_is_copied() {
    // Text at file offset 0x1800 but address 0x1000: not mappable from the image.
    let mut img = image();
    img.resize(0x2800, 0);
    img[0x1800..0x1810].copy_from_slice(&TEXT);
    img[0x1000..0x1010].fill(0);
    put64(&mut img, phdr_at(1, ph::OFFSET), 0x1800);
    let plan = LoadPlan::parse(&img).unwrap();
    assert_eq!(plan.placement(1), Some(Placement::Copy));
    let t = load_both_ways(&img);
    assert_eq!(t.kinds, ["shared", "copy", "cow", "zero"]);
    assert_eq!(&t.memory[0x1000..0x1010], &TEXT);
}

#[test]
fn bss_only_segment_and_relocation_in_bss_are_copied() {
    let mut img = image();
    // A segment without file bytes: fresh zero pages.
    put64(&mut img, phdr_at(2, ph::FILESZ), 0);
    put32(&mut img, phdr_at(3, ph::TYPE), 0); // no PT_DYNAMIC: its bytes are gone
    let plan = LoadPlan::parse(&img).unwrap();
    assert_eq!(plan.placement(2), Some(Placement::Copy));
    let t = load_both_ways(&img);
    assert_eq!(t.kinds, ["shared", "shared", "zero"]);
    // A relocation in the zero-fill pages past the file part: the whole segment is copied.
    let mut img = image();
    put64(&mut img, RELA_AT as usize, 0x3000);
    let plan = LoadPlan::parse(&img).unwrap();
    assert_eq!(plan.placement(2), Some(Placement::Copy));
    let t = load_both_ways(&img);
    assert_eq!(t.kinds, ["shared", "shared", "copy"]);
    assert_eq!(rd64(&t.memory, 0x3000), t.base + 0x1000);
}

#[test]
fn truncations_never_panic() {
    let img = image();
    for len in 0..img.len() {
        exercise(&img[..len]);
        // Everything but the tail after the last segment byte is needed.
        assert!(LoadPlan::parse(&img[..len]).is_err(), "len {len}");
    }
}

#[test]
fn corruptions_never_panic() {
    // Deterministic xorshift so a failure is reproducible.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = image();
    // Interesting positions: the headers, the relocations and the dynamic table.
    let hot: Vec<usize> = (0..0x158)
        .chain(RELA_AT as usize..RELA_AT as usize + 72)
        .chain(DYN_AT as usize..DYN_AT as usize + 64)
        .collect();
    let specials = [
        0u64,
        1,
        0x1000,
        0x7fff_ffff,
        u64::MAX,
        u64::MAX - 7,
        1 << 63,
    ];
    for _ in 0..20_000 {
        let mut b = base.clone();
        for _ in 0..(next() % 4 + 1) {
            let at = hot[(next() % hot.len() as u64) as usize];
            match next() % 3 {
                0 => b[at] ^= 1 << (next() % 8),
                1 => b[at] = next() as u8,
                _ => {
                    let at = at.min(b.len() - 8);
                    let v = specials[(next() % specials.len() as u64) as usize];
                    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        exercise(&b);
    }
}
