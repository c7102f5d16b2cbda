//! The user programs as built: each is a static PIE the loader accepts (x86_64, ET_DYN, no
//! interpreter, W^X segments, only relative relocations), and loading one relocates every
//! pointer by the chosen base; mapped from the ramdisk, each one's text and rodata are the
//! image's own pages and only its data is a copy-on-write child.

use elfload::{load, LoadPlan, LoadTarget, Patch, Perms, Placement, PAGE_SIZE};

struct Memory {
    base: u64,
    bytes: Vec<u8>,
    maps: Vec<(u64, u64, Perms)>,
}

impl LoadTarget for Memory {
    type Error = String;
    fn reserve(&mut self, span: u64) -> Result<u64, String> {
        self.bytes = vec![0; span as usize];
        Ok(self.base)
    }
    fn map_segment(
        &mut self,
        off: u64,
        size: u64,
        perms: Perms,
        data: &[u8],
    ) -> Result<(), String> {
        self.bytes[off as usize..off as usize + data.len()].copy_from_slice(data);
        self.maps.push((off, size, perms));
        Ok(())
    }
    fn has_image(&self) -> bool {
        false
    }
    fn map_image(&mut self, _: u64, _: u64, _: u64, _: Perms) -> Result<(), String> {
        Err("no image".into())
    }
    fn map_image_cow(
        &mut self,
        _: u64,
        _: u64,
        _: u64,
        _: Perms,
        _: &[Patch],
    ) -> Result<(), String> {
        Err("no image".into())
    }
}

#[test]
fn every_program_is_a_loadable_static_pie() {
    assert!(boot::USER_PROGRAMS.len() >= 4);
    for (name, path) in boot::USER_PROGRAMS {
        let elf = std::fs::read(path).unwrap();
        let plan = LoadPlan::parse(&elf).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            plan.span > 0 && plan.span.is_multiple_of(PAGE_SIZE),
            "{name}"
        );
        assert!(
            !plan.relocations.is_empty(),
            "{name}: a Rust PIE has relative relocations"
        );
        assert!(plan.segments.iter().any(|s| s.perms.execute), "{name}");
        assert!(
            plan.segments
                .iter()
                .all(|s| !(s.perms.write && s.perms.execute)),
            "{name}"
        );
        // Mapped from the ramdisk: every read-only segment shares the image's pages, every
        // writable one with file bytes is a copy-on-write child (the linker keeps file offsets
        // congruent to addresses).
        for (i, seg) in plan.segments.iter().enumerate() {
            let placement = plan.placement(i).unwrap();
            let expected = match (seg.perms.write, seg.file_size) {
                (_, 0) => matches!(placement, Placement::Copy),
                (false, _) => matches!(placement, Placement::Shared { .. }),
                (true, _) => matches!(placement, Placement::Cow { .. }),
            };
            assert!(
                expected,
                "{name}: segment {i} ({}): {placement:?}",
                seg.perms
            );
        }
        // The stripped copy packed into the ramdisk parses to the same plan.
        let stripped = boot::image::strip_for_image(&elf).unwrap();
        assert_eq!(LoadPlan::parse(&stripped).unwrap(), plan, "{name}");

        for base in [0x1000_0000u64, 0x7f12_3456_7000] {
            let mut m = Memory {
                base,
                bytes: Vec::new(),
                maps: Vec::new(),
            };
            let loaded = load(&stripped, &plan, &mut m).unwrap();
            assert_eq!(loaded.entry, base + plan.entry);
            for r in &plan.relocations {
                let at = r.offset as usize;
                let v = u64::from_le_bytes(m.bytes[at..at + 8].try_into().unwrap());
                assert_eq!(
                    v,
                    base.wrapping_add(r.addend as u64),
                    "{name} reloc at {at:#x}"
                );
            }
        }
    }
}

#[test]
fn programs_are_packed_by_name() {
    let files = boot::image::user_program_files().unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for want in ["demo", "child", "utest", "victim", "fuzz"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for (name, data) in files {
        assert_eq!(&data[..4], b"\x7fELF", "{name}");
    }
}
