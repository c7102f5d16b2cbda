//! Byte-exact encoding of the values that cross the user/kernel boundary, without unsafe code.
//!
//! Every type that a syscall copies to or from user memory implements [`Wire`]: a fixed size, the
//! C alignment of the type, and a little-endian encoding whose byte offsets are those of the
//! `#[repr(C)]` layout (padding bytes are written as zero and ignored when read). The kernel's
//! user-pointer helpers and the user library both go through this trait, so the two sides cannot
//! disagree about a layout.

/// A plain value with a fixed little-endian wire encoding.
pub trait Wire: Sized {
    /// Size of the encoding in bytes; equals `size_of::<Self>()` for the `#[repr(C)]` types here.
    const SIZE: usize;
    /// Required alignment of the value in user memory (the C alignment of the type).
    const ALIGN: usize;

    /// Writes the encoding into `out[..Self::SIZE]`.
    ///
    /// # Panics
    /// If `out` is shorter than [`Wire::SIZE`].
    fn encode(&self, out: &mut [u8]);

    /// Reads a value from `bytes[..Self::SIZE]`.
    ///
    /// # Panics
    /// If `bytes` is shorter than [`Wire::SIZE`].
    fn decode(bytes: &[u8]) -> Self;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            const ALIGN: usize = core::mem::align_of::<$t>();
            fn encode(&self, out: &mut [u8]) {
                out[..Self::SIZE].copy_from_slice(&self.to_le_bytes());
            }
            fn decode(bytes: &[u8]) -> Self {
                let mut raw = [0u8; core::mem::size_of::<$t>()];
                raw.copy_from_slice(&bytes[..Self::SIZE]);
                <$t>::from_le_bytes(raw)
            }
        }
    )*};
}

wire_int!(u8, u16, u32, u64, i32, i64, usize);

/// Sequential little-endian writer used by the struct encodings.
pub(crate) struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts writing at offset 0; zeroes the whole destination so padding reads as zero.
    pub(crate) fn new(out: &'a mut [u8], size: usize) -> Self {
        out[..size].fill(0);
        Writer { out, pos: 0 }
    }

    pub(crate) fn put<T: Wire>(&mut self, value: T) -> &mut Self {
        debug_assert_eq!(self.pos % T::ALIGN, 0, "misaligned field");
        value.encode(&mut self.out[self.pos..]);
        self.pos += T::SIZE;
        self
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.out[self.pos..self.pos + value.len()].copy_from_slice(value);
        self.pos += value.len();
        self
    }

    pub(crate) fn pad(&mut self, n: usize) -> &mut Self {
        self.pos += n;
        self
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

/// Sequential little-endian reader, the mirror of [`Writer`].
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub(crate) fn get<T: Wire>(&mut self) -> T {
        let value = T::decode(&self.bytes[self.pos..]);
        self.pos += T::SIZE;
        value
    }

    pub(crate) fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.pos..self.pos + N]);
        self.pos += N;
        out
    }

    pub(crate) fn skip(&mut self, n: usize) {
        self.pos += n;
    }
}

#[cfg(test)]
mod tests {
    use super::Wire;

    #[test]
    fn integers_are_little_endian() {
        let mut buf = [0xffu8; 8];
        0x0102_0304u32.encode(&mut buf);
        assert_eq!(&buf[..4], &[4, 3, 2, 1]);
        assert_eq!(buf[4], 0xff, "only SIZE bytes are written");
        assert_eq!(u32::decode(&buf), 0x0102_0304);
        (-2i64).encode(&mut buf);
        assert_eq!(i64::decode(&buf), -2);
        assert_eq!(<usize as Wire>::SIZE, 8);
        assert_eq!(<u64 as Wire>::ALIGN, 8);
    }
}
