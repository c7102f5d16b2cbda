//! 16550 UART on COM1 (0x3F8), polled, 115200 8N1.
//!
//! Our own ~60-line driver instead of `uart_16550`: we need a lock-free "emergency" writer for the
//! panic / double-fault paths (the normal writer's lock may be held by the code that faulted), and
//! port I/O through the `x86_64` crate is all the driver needs.

use core::fmt;
use spin::Mutex;
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3F8;

/// A polled 16550 UART at a fixed I/O port base.
pub struct SerialPort {
    base: u16,
}

impl SerialPort {
    /// A handle for the UART at `base` (no hardware access yet).
    const fn new(base: u16) -> Self {
        Self { base }
    }

    fn outb(&self, off: u16, v: u8) {
        let mut p: Port<u8> = Port::new(self.base + off);
        // SAFETY: the ports base..base+8 belong to the COM1 UART, which only this module drives;
        // writing its registers has no memory-safety effect.
        unsafe { p.write(v) }
    }

    fn inb(&self, off: u16) -> u8 {
        let mut p: Port<u8> = Port::new(self.base + off);
        // SAFETY: as in `outb`; reading UART registers has no memory-safety effect.
        unsafe { p.read() }
    }

    /// Programs 115200 baud, 8N1, FIFOs on, interrupts off.
    fn init(&self) {
        self.outb(1, 0x00); // no interrupts
        self.outb(3, 0x80); // DLAB on
        self.outb(0, 0x01); // divisor 1 = 115200 baud
        self.outb(1, 0x00);
        self.outb(3, 0x03); // 8N1, DLAB off
        self.outb(2, 0xC7); // FIFO on, clear, 14-byte threshold
        self.outb(4, 0x0B); // DTR, RTS, OUT2
    }

    fn write_byte(&self, b: u8) {
        // Wait for "transmit holding register empty"; bounded so a missing UART cannot hang us.
        for _ in 0..100_000 {
            if self.inb(5) & 0x20 != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        self.outb(0, b);
    }
}

impl fmt::Write for SerialPort {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
}

static SERIAL: Mutex<SerialPort> = Mutex::new(SerialPort::new(COM1));

/// Initializes COM1. Call once, early.
pub fn init() {
    SERIAL.lock().init();
}

/// Writes formatted text to the console under the console lock.
pub fn write_fmt(args: fmt::Arguments) {
    use fmt::Write;
    let _ = SERIAL.lock().write_fmt(args);
}

/// Writes raw bytes (user `zx_debug_write` output) under the console lock; `\n` becomes `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    let port = SERIAL.lock();
    for &b in bytes {
        if b == b'\n' {
            port.write_byte(b'\r');
        }
        port.write_byte(b);
    }
}

/// A writer that bypasses the console lock, for the panic and fatal-exception paths only (the
/// lock may be held by the code that crashed). Output may interleave; it is never lost.
pub fn emergency() -> SerialPort {
    SerialPort::new(COM1)
}

/// Prints to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::serial::write_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the serial console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::serial::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}
