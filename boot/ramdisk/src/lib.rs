//! The boot ramdisk: how the host passes things to the kernel.
//!
//! The bootloader loads one opaque blob (the "ramdisk") next to the kernel. We give it a tiny,
//! extensible archive format so the host can put the kernel command line in it today and user ELF
//! programs tomorrow:
//!
//! ```text
//! header:  magic "ZXRDISK1" (8 bytes) | entry count: u32 LE | reserved: u32 (0)
//! entry:   name length: u32 LE | data length: u32 LE | name (UTF-8) | pad to 4096 | data | pad to 4096
//! ```
//!
//! Offsets and padding count from the archive's first byte. Every file's data starts on a page
//! boundary and owns its pages alone ([`FILE_ALIGN`]): a loader maps a program's pages straight
//! from the archive's VMO (the kernel's `zx::process` loaders), and such a mapping never shows
//! bytes of another file or header. [`Entry::offset`] says where a file's data lies.
//!
//! By convention the entry named [`CMDLINE`] holds the command line: space-separated `key=value`
//! words (or bare `flag` words), parsed by [`Cmdline`]. The crate is `no_std` + `alloc`, contains
//! no unsafe code and is unit-tested on the host.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

/// The 8-byte magic that starts every ramdisk.
pub const MAGIC: &[u8; 8] = b"ZXRDISK1";
/// Name of the entry that carries the kernel command line.
pub const CMDLINE: &str = "cmdline";

const HEADER_LEN: usize = 16;

/// Alignment (and padding) of every file's data in the archive: one page.
pub const FILE_ALIGN: usize = 4096;

/// Why a byte blob is not a valid ramdisk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The blob does not start with [`MAGIC`].
    BadMagic,
    /// An entry runs past the end of the blob.
    Truncated,
    /// An entry name is not UTF-8.
    BadName,
}

/// Builds a ramdisk image (host side, but `alloc` only so the kernel could build one too).
#[derive(Debug, Default, Clone)]
pub struct Builder {
    entries: Vec<(alloc::string::String, Vec<u8>)>,
}

impl Builder {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the entry `name`.
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entries.retain(|(n, _)| n != name);
        self.entries.push((name.into(), data.to_vec()));
        self
    }

    /// Sets the command line entry.
    pub fn cmdline(&mut self, cmdline: &str) -> &mut Self {
        self.file(CMDLINE, cmdline.as_bytes())
    }

    /// Serializes the archive.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for (name, data) in &self.entries {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            pad_page(&mut out);
            out.extend_from_slice(data);
            pad_page(&mut out);
        }
        out
    }
}

fn pad_page(out: &mut Vec<u8>) {
    let len = out.len().next_multiple_of(FILE_ALIGN);
    out.resize(len, 0);
}

fn align_page(n: usize) -> Option<usize> {
    n.checked_add(FILE_ALIGN - 1).map(|n| n & !(FILE_ALIGN - 1))
}

/// One named file of a parsed ramdisk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The file name.
    pub name: &'a str,
    /// The file contents.
    pub data: &'a [u8],
    /// Where `data` starts in the archive (a multiple of [`FILE_ALIGN`]).
    pub offset: usize,
}

/// A validated ramdisk borrowed from memory.
#[derive(Debug, Clone, Copy)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    count: u32,
}

impl<'a> Archive<'a> {
    /// Validates the header and every entry of `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err(Error::BadMagic);
        }
        let count = read_u32(bytes, 8).ok_or(Error::Truncated)?;
        let archive = Self { bytes, count };
        let mut it = archive.raw_iter();
        for _ in 0..count {
            it.next_entry()?;
        }
        Ok(archive)
    }

    fn raw_iter(&self) -> Iter<'a> {
        Iter {
            bytes: self.bytes,
            pos: HEADER_LEN,
            left: self.count,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when the archive has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// All entries in order.
    pub fn entries(&self) -> Iter<'a> {
        self.raw_iter()
    }

    /// The entry named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.entry(name).map(|e| e.data)
    }

    /// The entry named `name` with its offset in the archive, if any.
    pub fn entry(&self, name: &str) -> Option<Entry<'a>> {
        self.entries().find(|e| e.name == name)
    }

    /// Where in the archive's bytes each command-line word with key `key` (`key=...` or bare
    /// `key`) lies: the kernel blanks such words (`nonce=`) in the copy it shares with user
    /// space.
    pub fn cmdline_word_ranges(&self, key: &str) -> Vec<core::ops::Range<usize>> {
        let Some(data) = self.get(CMDLINE) else {
            return Vec::new();
        };
        let Ok(text) = core::str::from_utf8(data) else {
            return Vec::new();
        };
        let base = data.as_ptr() as usize - self.bytes.as_ptr() as usize;
        text.split_ascii_whitespace()
            .filter(|w| w.split_once('=').map_or(*w, |(k, _)| k) == key)
            .map(|w| {
                let at = base + (w.as_ptr() as usize - text.as_ptr() as usize);
                at..at + w.len()
            })
            .collect()
    }

    /// The command line (empty when absent or not UTF-8).
    pub fn cmdline(&self) -> Cmdline<'a> {
        let text = self
            .get(CMDLINE)
            .and_then(|d| core::str::from_utf8(d).ok())
            .unwrap_or("");
        Cmdline::new(text)
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Iterator over the entries of an [`Archive`].
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    bytes: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> Iter<'a> {
    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        let name_len = read_u32(self.bytes, self.pos).ok_or(Error::Truncated)? as usize;
        let data_len = read_u32(self.bytes, self.pos + 4).ok_or(Error::Truncated)? as usize;
        let name_at = self.pos + 8;
        let name_end = name_at.checked_add(name_len).ok_or(Error::Truncated)?;
        let name = self.bytes.get(name_at..name_end).ok_or(Error::Truncated)?;
        let name = core::str::from_utf8(name).map_err(|_| Error::BadName)?;
        let data_at = align_page(name_end).ok_or(Error::Truncated)?;
        let data_end = data_at.checked_add(data_len).ok_or(Error::Truncated)?;
        let data = self.bytes.get(data_at..data_end).ok_or(Error::Truncated)?;
        self.pos = align_page(data_end).ok_or(Error::Truncated)?;
        self.left -= 1;
        Ok(Some(Entry {
            name,
            data,
            offset: data_at,
        }))
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        // The archive was validated in `Archive::parse`, so errors cannot happen here.
        self.next_entry().ok().flatten()
    }
}

/// A parsed command line: space-separated `key=value` or bare `flag` words.
#[derive(Debug, Clone, Copy)]
pub struct Cmdline<'a> {
    text: &'a str,
}

impl<'a> Cmdline<'a> {
    /// Wraps a command line string.
    pub fn new(text: &'a str) -> Self {
        Self { text: text.trim() }
    }

    /// The raw text.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// All `(key, value)` pairs in order; a bare word has the value `""`.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.text
            .split_ascii_whitespace()
            .map(|w| w.split_once('=').unwrap_or((w, "")))
    }

    /// The value of the last occurrence of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .last()
    }

    /// True when `key` is present and not `0`/`false`/`no`/`off`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some(v) if !matches!(v, "0" | "false" | "no" | "off"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_word_ranges_find_every_word_with_the_key() {
        let img = Builder::new()
            .file("first", b"nonce=1")
            .cmdline("mode=run nonce=00ab xnonce=1 nonce args=nonce=2")
            .build();
        let ar = Archive::parse(&img).unwrap();
        let words: Vec<_> = ar
            .cmdline_word_ranges("nonce")
            .into_iter()
            .map(|r| core::str::from_utf8(&img[r]).unwrap())
            .collect();
        assert_eq!(words, ["nonce=00ab", "nonce"]);
        let mut blanked = img.clone();
        for r in ar.cmdline_word_ranges("nonce") {
            blanked[r].fill(b' ');
        }
        let ar = Archive::parse(&blanked).unwrap();
        assert_eq!(ar.cmdline().get("nonce"), None);
        assert_eq!(ar.get("first"), Some(&b"nonce=1"[..]));
        assert_eq!(ar.cmdline().get("xnonce"), Some("1"));
    }

    #[test]
    fn roundtrip() {
        let img = Builder::new()
            .cmdline("mode=ktest skip_through=a::b demo_failures=1")
            .file("bin/hello", &[1, 2, 3, 4, 5])
            .file("empty", &[])
            .build();
        assert_eq!(img.len() % FILE_ALIGN, 0);
        let ar = Archive::parse(&img).unwrap();
        assert_eq!(ar.len(), 3);
        // Every file's data starts on its own page, and the rest of its last page is zero.
        for e in ar.entries() {
            assert_eq!(e.offset % FILE_ALIGN, 0, "{}", e.name);
            assert_eq!(&img[e.offset..e.offset + e.data.len()], e.data);
            let end = e.offset + e.data.len();
            assert!(img[end..end.next_multiple_of(FILE_ALIGN)]
                .iter()
                .all(|&b| b == 0));
        }
        assert_eq!(ar.entry("bin/hello").unwrap().offset, 3 * FILE_ALIGN);
        assert_eq!(ar.get("bin/hello"), Some(&[1u8, 2, 3, 4, 5][..]));
        assert_eq!(ar.get("empty"), Some(&[][..]));
        assert_eq!(ar.get("missing"), None);
        let names: Vec<_> = ar.entries().map(|e| e.name).collect();
        assert_eq!(names, ["cmdline", "bin/hello", "empty"]);
        let c = ar.cmdline();
        assert_eq!(c.get("mode"), Some("ktest"));
        assert_eq!(c.get("skip_through"), Some("a::b"));
        assert!(c.flag("demo_failures"));
        assert!(!c.flag("other"));
    }

    #[test]
    fn replace_entry() {
        let img = Builder::new().cmdline("a").cmdline("b").build();
        let ar = Archive::parse(&img).unwrap();
        assert_eq!(ar.len(), 1);
        assert_eq!(ar.cmdline().as_str(), "b");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Archive::parse(b"nope").unwrap_err(), Error::BadMagic);
        let mut img = Builder::new().file("x", &[9; 20]).build();
        img.truncate(FILE_ALIGN + 19);
        assert_eq!(Archive::parse(&img).unwrap_err(), Error::Truncated);
        let mut img = Builder::new().file("x", &[]).build();
        img[24] = 0xff;
        assert_eq!(Archive::parse(&img).unwrap_err(), Error::BadName);
        // A huge length must not overflow.
        let mut img = Builder::new().file("x", &[]).build();
        img[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Archive::parse(&img).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn cmdline_words() {
        let c = Cmdline::new("  mode=run  verbose log=debug flag=0 log=trace ");
        assert_eq!(c.get("mode"), Some("run"));
        assert_eq!(c.get("log"), Some("trace"));
        assert!(c.flag("verbose"));
        assert!(!c.flag("flag"));
        assert_eq!(c.pairs().count(), 5);
    }
}
