//! Disk images: kernel + ramdisk (command line and named files) through bootloader's
//! `DiskImageBuilder`.

use crate::Result;
use bootloader::{BootConfig, DiskImageBuilder};
use bootloader_boot_config::LevelFilter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Which firmware boots the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// Legacy BIOS (SeaBIOS), the default: fastest under TCG.
    Bios,
    /// UEFI (OVMF).
    Uefi,
}

/// What goes into the ramdisk.
#[derive(Debug, Clone, Default)]
pub struct Ramdisk {
    /// The kernel command line, e.g. `mode=run` or `mode=ktest skip_through=NAME`.
    pub cmdline: String,
    /// Extra named files (user ELF programs, test data).
    pub files: Vec<(String, Vec<u8>)>,
}

/// The programs that user programs spawn by name from the ramdisk (besides themselves), packed
/// into every boot by [`Ramdisk::for_boot`].
pub const SPAWNED_PROGRAMS: &[&str] = &["child", "victim"];

/// Named files of a ramdisk.
type Files = Vec<(String, Vec<u8>)>;

/// The user programs as packed into the ramdisk ([`strip_for_image`]), read and stripped once per
/// host process.
pub fn user_program_files() -> Result<&'static [(String, Vec<u8>)]> {
    static FILES: std::sync::OnceLock<std::result::Result<Files, String>> =
        std::sync::OnceLock::new();
    let files = FILES.get_or_init(|| {
        crate::USER_PROGRAMS
            .iter()
            .map(|&(name, path)| {
                let elf = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
                let stripped =
                    strip_for_image(&elf).map_err(|e| format!("stripping {path}: {e}"))?;
                Ok((name.to_string(), stripped))
            })
            .collect()
    });
    files.as_deref().map_err(|e| e.clone().into())
}

impl Ramdisk {
    /// A ramdisk carrying only a command line.
    pub fn with_cmdline(cmdline: impl Into<String>) -> Self {
        Self {
            cmdline: cmdline.into(),
            files: Vec::new(),
        }
    }

    /// A ramdisk with a command line and every user program ([`crate::USER_PROGRAMS`]).
    pub fn with_programs(cmdline: impl Into<String>) -> Result<Self> {
        Ok(Self {
            cmdline: cmdline.into(),
            files: user_program_files()?.to_vec(),
        })
    }

    /// The ramdisk for one boot: the command line, the program it starts (`prog=NAME`; `demo`
    /// without one, as the kernel does) and the programs user code spawns by name
    /// ([`SPAWNED_PROGRAMS`]). The BIOS loader reads the image through real-mode disk calls at
    /// ~1 ms per KiB under TCG, so a boot packs only what it can run (the user-mode suite alone
    /// is ~800 KiB).
    pub fn for_boot(cmdline: impl Into<String>) -> Result<Self> {
        let cmdline = cmdline.into();
        let prog = cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix("prog="))
            .unwrap_or("demo")
            .to_string();
        Ok(Self {
            cmdline,
            files: user_program_files()?
                .iter()
                .filter(|(name, _)| *name == prog || SPAWNED_PROGRAMS.contains(&name.as_str()))
                .cloned()
                .collect(),
        })
    }

    /// The names of the files packed, comma-separated.
    pub fn file_names(&self) -> String {
        self.files
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Serializes to the `ramdisk` crate's archive format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = ramdisk::Builder::new();
        b.cmdline(&self.cmdline);
        for (name, data) in &self.files {
            b.file(name, data);
        }
        b.build()
    }
}

fn boot_config() -> BootConfig {
    let mut c = BootConfig::default();
    // The loader logs to the serial console: keep it to warnings, and skip the framebuffer
    // logger (slow under TCG and invisible with -display none).
    c.log_level = LevelFilter::Warn;
    c.frame_buffer_logging = false;
    c.serial_logging = true;
    c
}

/// An ELF (the kernel or a user program) as it goes into the disk image: without DWARF
/// (`.debug_*`), the static symbol table (`.symtab`, `.strtab`) and `.comment`. Loading needs
/// none of them (the dynamic symbol table and relocations stay), and the BIOS loader reads the
/// kernel and the ramdisk through real-mode disk calls that are slow under TCG, roughly in
/// proportion to their size: a debug kernel shrinks from ~12 MB to ~1.3 MB, a user program to
/// about a tenth. The host keeps the full ELFs for symbolization and gdb, and user-program panics
/// carry their `file:line` in the message (`.rodata`), not in symbols.
pub fn strip_for_image(elf: &[u8]) -> Result<Vec<u8>> {
    let mut builder = object::build::elf::Builder::read(elf)?;
    for section in builder.sections.iter_mut() {
        let name = section.name.as_slice();
        if name.starts_with(b".debug_") || matches!(name, b".comment" | b".symtab" | b".strtab") {
            section.delete = true;
        }
    }
    for symbol in builder.symbols.iter_mut() {
        symbol.delete = true;
    }
    let mut out = Vec::new();
    builder.write(&mut out)?;
    Ok(out)
}

/// Builds a disk image for `firmware` at `out` from the kernel ELF and a ramdisk.
pub fn build(kernel: &Path, ramdisk: &Ramdisk, firmware: Firmware, out: &Path) -> Result<()> {
    let rd_path = out.with_extension("ramdisk");
    std::fs::write(&rd_path, ramdisk.to_bytes())?;
    let stripped = out.with_extension("kernel");
    let elf = std::fs::read(kernel).map_err(|e| format!("reading {}: {e}", kernel.display()))?;
    std::fs::write(&stripped, strip_for_image(&elf)?)?;
    let mut b = DiskImageBuilder::new(stripped.clone());
    b.set_ramdisk(rd_path.clone());
    b.set_boot_config(&boot_config());
    let r = match firmware {
        Firmware::Bios => b.create_bios_image(out),
        Firmware::Uefi => b.create_uefi_image(out),
    };
    let _ = std::fs::remove_file(&rd_path);
    let _ = std::fs::remove_file(&stripped);
    r.map_err(|e| format!("building the {firmware:?} image {}: {e:#}", out.display()).into())
}

/// A disk image that is deleted when dropped.
#[derive(Debug)]
pub struct TempImage {
    path: PathBuf,
}

impl TempImage {
    /// Builds a uniquely named image under [`crate::OUT_DIR`] (`run-PID-N-FIRMWARE.img`), first
    /// removing the images of processes that no longer run (a `boot` killed by a signal cannot
    /// delete its own).
    pub fn build(kernel: &Path, ramdisk: &Ramdisk, firmware: Firmware) -> Result<Self> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(remove_stale_images);
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let fw = match firmware {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        };
        let path =
            PathBuf::from(crate::OUT_DIR).join(format!("run-{}-{n}-{fw}.img", std::process::id()));
        build(kernel, ramdisk, firmware, &path)?;
        Ok(Self { path })
    }

    /// The image file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Deletes `run-PID-*.img` files of [`crate::OUT_DIR`] whose process is gone (Linux: no
/// `/proc/PID`; elsewhere nothing is removed).
fn remove_stale_images() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(dir) = std::fs::read_dir(crate::OUT_DIR) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("run-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Drop for TempImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
