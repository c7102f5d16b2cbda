//! `print!` / `println!` over `zx_debug_write`.
//!
//! Each macro call formats into a fixed stack buffer and issues one `zx_debug_write` per full
//! buffer (and one at the end), so a line up to [`LINE_MAX`] bytes reaches the console in one
//! piece even when several processes print at once.

use core::fmt;

/// Bytes buffered before a write is issued.
pub const LINE_MAX: usize = 256;

/// A `fmt::Write` sink that buffers and flushes to `zx_debug_write`.
pub struct DebugWriter {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl DebugWriter {
    /// An empty writer.
    pub const fn new() -> Self {
        DebugWriter {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            let _ = crate::debug_write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Default for DebugWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for DebugWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            if self.len == LINE_MAX {
                self.flush();
            }
            let n = bytes.len().min(LINE_MAX - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

impl Drop for DebugWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let mut w = DebugWriter::new();
    let _ = fmt::write(&mut w, args);
}

/// Prints to the kernel debug log (`zx_debug_write`).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::print::_print(format_args!($($arg)*)) };
}

/// Prints a line to the kernel debug log (`zx_debug_write`).
#[macro_export]
macro_rules! println {
    () => { $crate::print::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::print::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
