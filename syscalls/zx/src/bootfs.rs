//! The boot ramdisk as user space sees it: the first process receives a read-only VMO holding
//! the whole archive (format: the `ramdisk` crate) and finds programs and its command line in it.
//!
//! [`Ramdisk::map`] maps the VMO read-only into the caller's root VMAR once (falling back to
//! reading it into the heap when the handle lacks `ZX_RIGHT_MAP`) and keeps the bytes for the
//! life of the process. It also keeps an executable duplicate of the VMO handle (read-only,
//! `zx_vmo_replace_as_executable`), so `zx::process::spawn` maps a program's pages straight
//! from the archive ([`Ramdisk::image`]; every file starts on a page, see the `ramdisk` crate).

use alloc::vec;
use core::mem::ManuallyDrop;

use abi::rights::ZX_RIGHT_SAME_RIGHTS;
use abi::vm_options::ZX_VM_PERM_READ;
use abi::{Status, ZxResult};
use ramdisk::{Archive, Cmdline};

use crate::{Handle, Vmar, Vmo};

/// A parsed ramdisk whose bytes live as long as the process.
#[derive(Debug, Clone, Copy)]
pub struct Ramdisk {
    archive: Archive<'static>,
    /// Raw handle of the executable duplicate of the archive VMO (0: none), never closed.
    exec_vmo: u32,
}

/// A program's ELF image in the ramdisk: its bytes, and the archive VMO with the offset of the
/// file in it when the image can be mapped from there.
#[derive(Debug)]
pub struct Image<'a> {
    /// The file's bytes.
    pub bytes: &'a [u8],
    /// The archive VMO (read-only, executable; a handle the [`Ramdisk`] keeps open) and the
    /// page-aligned offset of the file in it.
    pub vmo: Option<(ManuallyDrop<Vmo>, u64)>,
}

const PAGE: u64 = 4096;

impl Ramdisk {
    /// Maps `vmo` read-only into `vmar` (or reads it) and parses it. The mapping is never
    /// removed.
    pub fn map(vmo: &Vmo, vmar: &Vmar) -> ZxResult<Ramdisk> {
        let size = vmo.get_size()?;
        let len = usize::try_from(size).map_err(|_| Status::ERR_OUT_OF_RANGE)?;
        if len == 0 {
            return Err(Status::ERR_IO);
        }
        let map_len = size.checked_add(PAGE - 1).ok_or(Status::ERR_OUT_OF_RANGE)? & !(PAGE - 1);
        let bytes: &'static [u8] = match vmar.map(ZX_VM_PERM_READ, 0, vmo, 0, map_len as usize) {
            // SAFETY: `[addr, addr + len)` was just mapped readable and is never unmapped or
            // re-protected (nothing here keeps the address to do so), so it stays valid for the
            // rest of the process. The kernel hands out the ramdisk VMO read-only and nothing
            // writes it, so the bytes do not change under the shared reference.
            Ok(addr) => unsafe { core::slice::from_raw_parts(addr as *const u8, len) },
            Err(_) => {
                let mut buf = vec![0u8; len];
                vmo.read(&mut buf, 0)?;
                buf.leak()
            }
        };
        let archive = Archive::parse(bytes).map_err(|_| Status::ERR_IO)?;
        // Without DUPLICATE (or where EXECUTE is refused) programs are copied instead.
        let exec_vmo = vmo
            .duplicate(ZX_RIGHT_SAME_RIGHTS)
            .and_then(|v| v.replace_as_executable(&Handle::invalid()))
            .map_or(0, |v| v.into_handle().into_raw());
        Ok(Ramdisk { archive, exec_vmo })
    }

    /// Wraps already-available bytes (host tests, or a copy): programs are copied when spawned.
    pub fn from_bytes(bytes: &'static [u8]) -> ZxResult<Ramdisk> {
        let archive = Archive::parse(bytes).map_err(|_| Status::ERR_IO)?;
        Ok(Ramdisk {
            archive,
            exec_vmo: 0,
        })
    }

    /// The file `name` as an image to load: its bytes and, when this ramdisk keeps the archive
    /// VMO, that VMO and the file's offset in it.
    pub fn image(&self, name: &str) -> Option<Image<'static>> {
        let entry = self.archive.entry(name)?;
        let vmo = (self.exec_vmo != 0).then(|| {
            (
                ManuallyDrop::new(Vmo::from(Handle::from_raw(self.exec_vmo))),
                entry.offset as u64,
            )
        });
        Some(Image {
            bytes: entry.data,
            vmo,
        })
    }

    /// The archive.
    pub fn archive(&self) -> Archive<'static> {
        self.archive
    }

    /// The file `name` (a program's ELF image, for instance).
    pub fn get(&self, name: &str) -> Option<&'static [u8]> {
        self.archive.get(name)
    }

    /// The kernel command line.
    pub fn cmdline(&self) -> Cmdline<'static> {
        self.archive.cmdline()
    }

    /// The program arguments: everything after `args=` on the command line (it is the last key,
    /// so the arguments may contain spaces); empty when absent.
    pub fn args(&self) -> &'static str {
        args_of(self.cmdline().as_str())
    }
}

/// Everything after the first word that starts with `args=`.
pub fn args_of(cmdline: &str) -> &str {
    let mut at = 0;
    for word in cmdline.split(' ') {
        if let Some(rest) = word.strip_prefix("args=") {
            let start = at + "args=".len();
            debug_assert_eq!(&cmdline[start..start + rest.len()], rest);
            return cmdline[start..].trim();
        }
        at += word.len() + 1;
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_take_the_rest_of_the_line() {
        assert_eq!(args_of("mode=run prog=demo args=a b  c"), "a b  c");
        assert_eq!(args_of("args=x"), "x");
        assert_eq!(args_of("mode=run prog=demo"), "");
        assert_eq!(args_of("mode=run xargs=1 args="), "");
        assert_eq!(args_of("mode=run  args=two words"), "two words");
    }

    #[test]
    fn ramdisk_from_bytes() {
        let img = ramdisk::Builder::new()
            .cmdline("mode=run prog=child args=7 8")
            .file("child", b"\x7fELF")
            .build();
        let rd = Ramdisk::from_bytes(img.leak()).unwrap();
        assert_eq!(rd.get("child"), Some(&b"\x7fELF"[..]));
        assert_eq!(rd.cmdline().get("prog"), Some("child"));
        assert_eq!(rd.args(), "7 8");
    }
}
