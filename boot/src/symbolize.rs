//! Kernel addresses in serial output -> `function at file:line` (addr2line on the kernel ELF).
//!
//! The kernel is position independent and loaded at a bias; it prints `load bias 0x...` in its
//! first lines ([`Symbolizer::observe`] picks it up) and every other line is scanned for
//! `0x`-prefixed 64-bit hex numbers that fall inside the kernel's executable segments.

use object::{Object, ObjectSegment, SegmentFlags};
use std::fmt::Write;
use std::path::Path;

/// Symbolizes kernel addresses using the DWARF info of the kernel ELF.
pub struct Symbolizer {
    loader: Option<addr2line::Loader>,
    /// Link-time ranges of the executable segments.
    text: Vec<(u64, u64)>,
    bias: u64,
}

impl Symbolizer {
    /// Loads the kernel ELF; a missing or broken file gives a symbolizer that adds nothing.
    pub fn new(elf: &Path) -> Self {
        let mut text = Vec::new();
        if let Ok(data) = std::fs::read(elf) {
            if let Ok(file) = object::File::parse(&*data) {
                for seg in file.segments() {
                    if let SegmentFlags::Elf { p_flags } = seg.flags() {
                        if p_flags & object::elf::PF_X != 0 {
                            text.push((seg.address(), seg.address() + seg.size()));
                        }
                    }
                }
            }
        }
        Self {
            loader: addr2line::Loader::new(elf).ok(),
            text,
            bias: crate::KERNEL_LOAD_BIAS,
        }
    }

    /// The load bias in use.
    pub fn bias(&self) -> u64 {
        self.bias
    }

    /// Learns the load bias from the kernel's `load bias 0x...` line.
    pub fn observe(&mut self, line: &str) {
        if let Some(rest) = line.split("load bias ").nth(1) {
            if let Some(v) = parse_hex(rest.split_whitespace().next().unwrap_or("")) {
                self.bias = v;
            }
        }
    }

    /// `function at file:line` for a runtime address in the kernel's code, else `None`.
    pub fn lookup(&self, runtime: u64) -> Option<String> {
        let loader = self.loader.as_ref()?;
        let addr = runtime.checked_sub(self.bias)?;
        if !self.text.iter().any(|&(s, e)| addr >= s && addr < e) {
            return None;
        }
        let mut out = String::new();
        if let Ok(mut frames) = loader.find_frames(addr) {
            while let Ok(Some(f)) = frames.next() {
                if !out.is_empty() {
                    out.push_str(" inlined into ");
                }
                let name = f
                    .function
                    .as_ref()
                    .and_then(|n| n.demangle().ok().map(|s| s.into_owned()))
                    .unwrap_or_else(|| "??".into());
                let _ = write!(out, "{}", strip_hash(&name));
                if let Some(loc) = f.location {
                    let _ = write!(
                        out,
                        " at {}:{}",
                        loc.file.unwrap_or("??"),
                        loc.line.unwrap_or(0)
                    );
                }
            }
        }
        if out.is_empty() {
            let name = loader.find_symbol(addr)?;
            let name = addr2line::demangle_auto(name.into(), None);
            out = strip_hash(&name).to_string();
            if let Ok(Some(loc)) = loader.find_location(addr) {
                let _ = write!(
                    out,
                    " at {}:{}",
                    loc.file.unwrap_or("??"),
                    loc.line.unwrap_or(0)
                );
            }
        }
        Some(out)
    }

    /// The line with ` [function at file:line]` appended for each kernel address in it.
    ///
    /// In backtrace lines (`#N 0x...` with N > 0) the address is a return address: we look up
    /// the byte before it, which belongs to the call instruction.
    pub fn annotate(&mut self, line: &str) -> String {
        self.observe(line);
        let trimmed = line.trim_start();
        let is_return_addr = trimmed.starts_with('#') && !trimmed.starts_with("#0 ");
        let mut notes = Vec::new();
        for word in line.split(|c: char| !c.is_ascii_alphanumeric()) {
            if word.len() >= 10 {
                if let Some(v) = parse_hex(word) {
                    let probe = if is_return_addr {
                        v.saturating_sub(1)
                    } else {
                        v
                    };
                    if let Some(s) = self.lookup(probe) {
                        notes.push(s);
                    }
                }
            }
        }
        if notes.is_empty() {
            line.to_string()
        } else {
            format!("{line}  [{}]", notes.join("; "))
        }
    }
}

fn strip_hash(name: &str) -> &str {
    // `foo::bar::h0123456789abcdef` -> `foo::bar`
    match name.rfind("::h") {
        Some(i) if name.len() - i == 19 => &name[..i],
        _ => name,
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    let h = s.strip_prefix("0x")?;
    u64::from_str_radix(h, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_hash() {
        assert_eq!(parse_hex("0xffffffff80001000"), Some(0xffff_ffff_8000_1000));
        assert_eq!(parse_hex("1234"), None);
        assert_eq!(strip_hash("a::b::h0123456789abcdef"), "a::b");
        assert_eq!(strip_hash("a::b"), "a::b");
    }

    #[test]
    fn symbolizes_kernel_entry() {
        let mut s = Symbolizer::new(Path::new(crate::KERNEL_ELF));
        s.observe("zxkernel: load bias 0xffffffff80000000");
        assert_eq!(s.bias(), 0xffff_ffff_8000_0000);
        // Non-kernel addresses are left alone.
        assert_eq!(
            s.annotate("CR2 0x0000000000001000"),
            "CR2 0x0000000000001000"
        );
    }
}
