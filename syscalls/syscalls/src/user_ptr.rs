//! How `sys_*` handlers touch user memory.
//!
//! The kernel provides one primitive, [`UserMemory`]: copy bytes from / to the current user
//! address space, with fault handling. On top of it, typed pointers ([`UserIn`], [`UserOut`]) and
//! buffers ([`UserInBuffer`], [`UserOutBuffer`], [`UserOutArray`]) validate every address a user
//! passes before the copy, like Zircon's `user_ptr` / `is_user_accessible_range`
//! (`zircon/kernel/lib/user_copy`, `arch/x86/.../user_copy.cc`): a range that overflows or
//! leaves the user half is `ZX_ERR_INVALID_ARGS`, and so is a copy that faults.
//!
//! Checks, all `ZX_ERR_INVALID_ARGS`:
//! - typed pointers: null, misaligned for the type (a choice of this kernel: Zircon itself copies
//!   unaligned values; no Zircon program is known to rely on it), `addr + size` overflows, or the
//!   range ends past the user limit;
//! - buffers: `addr + len` overflows or ends past the limit, or a non-empty buffer at null. An
//!   empty buffer is fine at any user address, null included (Zircon: `(ptr, 0)` is valid), but
//!   not at a kernel address (Zircon checks the start even for length 0).
//!
//! Values cross as bytes through [`abi::wire::Wire`], so no unsafe code is needed here.

use core::marker::PhantomData;

use abi::wire::Wire;
use abi::Status;
use vm::PhysAddr;

/// The current process's user memory, as the kernel sees it.
///
/// Implementations must return `ZX_ERR_INVALID_ARGS` when the copy faults (unmapped, or not
/// readable / writable), as Zircon does; they may have copied part of the range by then.
pub trait UserMemory {
    /// Copies `dst.len()` bytes from user address `addr`.
    fn copy_from_user(&self, addr: usize, dst: &mut [u8]) -> Result<(), Status>;

    /// Copies `src` to user address `addr`.
    fn copy_to_user(&mut self, addr: usize, src: &[u8]) -> Result<(), Status>;

    /// Exclusive upper bound of user addresses: the architecture's (the kernel returns
    /// `arch::extable::USER_END`, the one place that knows it), or what a test chooses.
    fn user_limit(&self) -> usize;

    /// Copies `len` bytes of VMO frame `frame` from `offset` (inside the frame) to user address
    /// `addr`, without resolving page faults: `false` when the copy faulted (some bytes may be
    /// copied) or is not supported. Called under the VMO's lock, which resolving a fault may
    /// need, so the caller redoes the bytes through [`UserMemory::copy_to_user`] after a `false`.
    /// Default: not supported.
    fn frame_to_user_nofault(
        &mut self,
        frame: PhysAddr,
        offset: usize,
        addr: usize,
        len: usize,
    ) -> bool {
        let _ = (frame, offset, addr, len);
        false
    }

    /// Copies `len` bytes from user address `addr` into VMO frame `frame` at `offset`, without
    /// resolving page faults; as [`UserMemory::frame_to_user_nofault`], the other way.
    fn user_to_frame_nofault(
        &mut self,
        addr: usize,
        frame: PhysAddr,
        offset: usize,
        len: usize,
    ) -> bool {
        let _ = (addr, frame, offset, len);
        false
    }

    /// Writes `len` zero bytes at user address `addr` without resolving page faults (for pages
    /// a VMO has not committed); as [`UserMemory::frame_to_user_nofault`].
    fn zeros_to_user_nofault(&mut self, addr: usize, len: usize) -> bool {
        let _ = (addr, len);
        false
    }
}

/// Checks that `[addr, addr + len)` is a user range below `limit` (Zircon's
/// `is_user_accessible_range`: the start must be a user address even when `len` is 0).
pub fn check_user_range(addr: usize, len: usize, limit: usize) -> Result<(), Status> {
    let end = addr.checked_add(len).ok_or(Status::ERR_INVALID_ARGS)?;
    if addr >= limit || end > limit {
        return Err(Status::ERR_INVALID_ARGS);
    }
    Ok(())
}

fn check_typed<T: Wire>(addr: usize, limit: usize) -> Result<(), Status> {
    if addr == 0 || !addr.is_multiple_of(T::ALIGN) {
        return Err(Status::ERR_INVALID_ARGS);
    }
    check_user_range(addr, T::SIZE, limit)
}

fn check_buffer(addr: usize, len: usize, limit: usize) -> Result<(), Status> {
    if addr == 0 && len != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    check_user_range(addr, len, limit)
}

/// A user pointer the kernel reads a `T` from (`const T*` argument).
#[derive(Debug)]
pub struct UserIn<T> {
    addr: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for UserIn<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for UserIn<T> {}

impl<T: Wire> UserIn<T> {
    /// Wraps a raw syscall argument.
    pub fn new(addr: usize) -> Self {
        UserIn {
            addr,
            _type: PhantomData,
        }
    }

    /// The raw address.
    pub fn addr(self) -> usize {
        self.addr
    }

    /// Whether the pointer is null.
    pub fn is_null(self) -> bool {
        self.addr == 0
    }

    /// Validates the pointer and reads the value.
    pub fn read<M: UserMemory + ?Sized>(self, mem: &M) -> Result<T, Status> {
        check_typed::<T>(self.addr, mem.user_limit())?;
        let mut buf = [0u8; 256];
        let bytes = scratch(&mut buf, T::SIZE);
        mem.copy_from_user(self.addr, bytes)?;
        Ok(T::decode(bytes))
    }
}

/// A user pointer the kernel writes a `T` to (`T*` out-argument).
#[derive(Debug)]
pub struct UserOut<T> {
    addr: usize,
    _type: PhantomData<fn(T)>,
}

impl<T> Clone for UserOut<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for UserOut<T> {}

impl<T: Wire> UserOut<T> {
    /// Wraps a raw syscall argument.
    pub fn new(addr: usize) -> Self {
        UserOut {
            addr,
            _type: PhantomData,
        }
    }

    /// The raw address.
    pub fn addr(self) -> usize {
        self.addr
    }

    /// Whether the pointer is null.
    pub fn is_null(self) -> bool {
        self.addr == 0
    }

    /// Validates the pointer without writing (to fail before a side effect).
    pub fn check<M: UserMemory + ?Sized>(self, mem: &M) -> Result<(), Status> {
        check_typed::<T>(self.addr, mem.user_limit())
    }

    /// Validates the pointer and writes `value`.
    pub fn write<M: UserMemory + ?Sized>(self, mem: &mut M, value: &T) -> Result<(), Status> {
        check_typed::<T>(self.addr, mem.user_limit())?;
        let mut buf = [0u8; 256];
        let bytes = scratch(&mut buf, T::SIZE);
        value.encode(bytes);
        mem.copy_to_user(self.addr, bytes)
    }

    /// For optional out-arguments (like `actual` / `avail` of `zx_object_get_info`): a null
    /// pointer is skipped, anything else is [`UserOut::write`].
    pub fn write_if_nonnull<M: UserMemory + ?Sized>(
        self,
        mem: &mut M,
        value: &T,
    ) -> Result<(), Status> {
        if self.is_null() {
            Ok(())
        } else {
            self.write(mem, value)
        }
    }
}

/// The encodings here are small fixed records; 256 bytes covers every one (the largest, the
/// 176-byte `zx_info_vmo_t`). A larger type is a programming error.
fn scratch(buf: &mut [u8; 256], size: usize) -> &mut [u8] {
    assert!(
        size <= buf.len(),
        "Wire type too large for a user copy: {size} bytes"
    );
    &mut buf[..size]
}

/// A user buffer the kernel reads (`const void* buffer, size_t len`).
#[derive(Clone, Copy, Debug)]
pub struct UserInBuffer {
    addr: usize,
    len: usize,
}

impl UserInBuffer {
    /// Wraps raw syscall arguments.
    pub fn new(addr: usize, len: usize) -> Self {
        UserInBuffer { addr, len }
    }

    /// The length in bytes.
    pub fn len(self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// Validates the whole buffer.
    pub fn check<M: UserMemory + ?Sized>(self, mem: &M) -> Result<(), Status> {
        check_buffer(self.addr, self.len, mem.user_limit())
    }

    /// Reads `dst.len()` bytes starting `offset` bytes into the buffer (for chunked copies).
    /// The chunk must lie inside the buffer, else `ZX_ERR_INVALID_ARGS`.
    pub fn read_at<M: UserMemory + ?Sized>(
        self,
        mem: &M,
        offset: usize,
        dst: &mut [u8],
    ) -> Result<(), Status> {
        self.check(mem)?;
        let end = offset
            .checked_add(dst.len())
            .ok_or(Status::ERR_INVALID_ARGS)?;
        if end > self.len {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if dst.is_empty() {
            return Ok(());
        }
        mem.copy_from_user(self.addr + offset, dst)
    }
}

/// A user buffer the kernel writes (`void* buffer, size_t len`).
#[derive(Clone, Copy, Debug)]
pub struct UserOutBuffer {
    addr: usize,
    len: usize,
}

impl UserOutBuffer {
    /// Wraps raw syscall arguments.
    pub fn new(addr: usize, len: usize) -> Self {
        UserOutBuffer { addr, len }
    }

    /// The length in bytes.
    pub fn len(self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// Validates the whole buffer.
    pub fn check<M: UserMemory + ?Sized>(self, mem: &M) -> Result<(), Status> {
        check_buffer(self.addr, self.len, mem.user_limit())
    }

    /// Writes `src` starting `offset` bytes into the buffer; it must fit, else
    /// `ZX_ERR_INVALID_ARGS`.
    pub fn write_at<M: UserMemory + ?Sized>(
        self,
        mem: &mut M,
        offset: usize,
        src: &[u8],
    ) -> Result<(), Status> {
        self.check(mem)?;
        let end = offset
            .checked_add(src.len())
            .ok_or(Status::ERR_INVALID_ARGS)?;
        if end > self.len {
            return Err(Status::ERR_INVALID_ARGS);
        }
        if src.is_empty() {
            return Ok(());
        }
        mem.copy_to_user(self.addr + offset, src)
    }
}

/// A user array of `T` records the kernel fills (`zx_object_get_info` buffers): `buffer_size`
/// bytes hold `capacity()` whole records.
#[derive(Debug)]
pub struct UserOutArray<T> {
    addr: usize,
    size: usize,
    _type: PhantomData<fn(T)>,
}

impl<T> Clone for UserOutArray<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for UserOutArray<T> {}

impl<T: Wire> UserOutArray<T> {
    /// Wraps a raw `(buffer, buffer_size)` pair.
    pub fn new(addr: usize, size: usize) -> Self {
        UserOutArray {
            addr,
            size,
            _type: PhantomData,
        }
    }

    /// How many whole records fit.
    pub fn capacity(self) -> usize {
        self.size / T::SIZE
    }

    /// Validates the buffer: range as for [`UserOutBuffer`], and aligned for `T` when non-empty.
    pub fn check<M: UserMemory + ?Sized>(self, mem: &M) -> Result<(), Status> {
        check_buffer(self.addr, self.size, mem.user_limit())?;
        if self.size != 0 && !self.addr.is_multiple_of(T::ALIGN) {
            return Err(Status::ERR_INVALID_ARGS);
        }
        Ok(())
    }

    /// Writes record `index`; `ZX_ERR_BUFFER_TOO_SMALL` if it does not fit.
    pub fn write<M: UserMemory + ?Sized>(
        self,
        mem: &mut M,
        index: usize,
        value: &T,
    ) -> Result<(), Status> {
        self.check(mem)?;
        if index >= self.capacity() {
            return Err(Status::ERR_BUFFER_TOO_SMALL);
        }
        let mut buf = [0u8; 256];
        let bytes = scratch(&mut buf, T::SIZE);
        value.encode(bytes);
        mem.copy_to_user(self.addr + index * T::SIZE, bytes)
    }
}

/// A fake user address space for host tests: mapped ranges, some read-only, everything else
/// unmapped. Copies are all-or-nothing.
#[cfg(any(test, feature = "mock"))]
pub mod mock {
    use alloc::vec;
    use alloc::vec::Vec;

    use abi::Status;

    use super::UserMemory;

    /// The x86_64 lower canonical half: the limit [`FakeUserMemory::new`] gives host tests.
    pub const X86_64_USER_LIMIT: usize = 0x0000_8000_0000_0000;
    use alloc::sync::Arc;
    use vm::{PhysAddr, PhysMem};

    struct Region {
        base: usize,
        bytes: Vec<u8>,
        writable: bool,
    }

    /// See the module documentation.
    pub struct FakeUserMemory {
        regions: Vec<Region>,
        limit: usize,
        /// Number of successful copies in either direction (to assert that a failed syscall
        /// touched nothing).
        pub copies: usize,
        /// The frames behind VMO pages: when set, the no-fault copies
        /// ([`UserMemory::frame_to_user_nofault`] and the others) work, as the kernel's do.
        pub frames: Option<Arc<dyn PhysMem>>,
        /// Page addresses the no-fault copies treat as not present yet (they fail there; the
        /// ordinary copies, which resolve faults, work).
        pub not_present: Vec<usize>,
        /// Successful no-fault copies (to tell the fast path from the fallback).
        pub nofault_copies: usize,
    }

    impl Default for FakeUserMemory {
        fn default() -> Self {
            Self::new()
        }
    }

    impl FakeUserMemory {
        /// Nothing mapped; the x86_64 user limit.
        pub fn new() -> Self {
            FakeUserMemory {
                regions: Vec::new(),
                limit: X86_64_USER_LIMIT,
                copies: 0,
                frames: None,
                not_present: Vec::new(),
                nofault_copies: 0,
            }
        }

        /// Nothing mapped; user addresses below `limit`.
        pub fn with_limit(limit: usize) -> Self {
            FakeUserMemory {
                limit,
                ..Self::new()
            }
        }

        /// Maps `len` zeroed bytes at `base`.
        pub fn map(&mut self, base: usize, len: usize, writable: bool) {
            self.regions.push(Region {
                base,
                bytes: vec![0; len],
                writable,
            });
        }

        fn find(&self, addr: usize, len: usize) -> Option<(usize, usize)> {
            let end = addr.checked_add(len)?;
            self.regions.iter().enumerate().find_map(|(i, r)| {
                (addr >= r.base && end <= r.base + r.bytes.len()).then(|| (i, addr - r.base))
            })
        }

        /// Reads mapped memory directly (test side, no permission check).
        pub fn peek(&self, addr: usize, len: usize) -> Vec<u8> {
            let (i, off) = self.find(addr, len).expect("peek outside mapped memory");
            self.regions[i].bytes[off..off + len].to_vec()
        }

        /// Writes mapped memory directly (test side, even read-only ranges).
        pub fn poke(&mut self, addr: usize, data: &[u8]) {
            let (i, off) = self
                .find(addr, data.len())
                .expect("poke outside mapped memory");
            self.regions[i].bytes[off..off + data.len()].copy_from_slice(data);
        }
    }

    impl UserMemory for FakeUserMemory {
        fn copy_from_user(&self, addr: usize, dst: &mut [u8]) -> Result<(), Status> {
            let (i, off) = self.find(addr, dst.len()).ok_or(Status::ERR_INVALID_ARGS)?;
            dst.copy_from_slice(&self.regions[i].bytes[off..off + dst.len()]);
            Ok(())
        }

        fn copy_to_user(&mut self, addr: usize, src: &[u8]) -> Result<(), Status> {
            let (i, off) = self.find(addr, src.len()).ok_or(Status::ERR_INVALID_ARGS)?;
            let region = &mut self.regions[i];
            if !region.writable {
                return Err(Status::ERR_INVALID_ARGS);
            }
            region.bytes[off..off + src.len()].copy_from_slice(src);
            self.copies += 1;
            Ok(())
        }

        fn user_limit(&self) -> usize {
            self.limit
        }

        fn frame_to_user_nofault(
            &mut self,
            frame: PhysAddr,
            offset: usize,
            addr: usize,
            len: usize,
        ) -> bool {
            let Some(frames) = self.frames.clone() else {
                return false;
            };
            let mut bytes = vec![0; len];
            frames.read(frame, offset, &mut bytes);
            self.nofault_to_user(addr, &bytes)
        }

        fn user_to_frame_nofault(
            &mut self,
            addr: usize,
            frame: PhysAddr,
            offset: usize,
            len: usize,
        ) -> bool {
            let Some(frames) = self.frames.clone() else {
                return false;
            };
            let Some((i, off)) = self.find(addr, len).filter(|_| self.present(addr, len)) else {
                return false;
            };
            frames.write(frame, offset, &self.regions[i].bytes[off..off + len]);
            self.nofault_copies += 1;
            true
        }

        fn zeros_to_user_nofault(&mut self, addr: usize, len: usize) -> bool {
            self.frames.is_some() && self.nofault_to_user(addr, &vec![0; len])
        }
    }

    impl FakeUserMemory {
        fn present(&self, addr: usize, len: usize) -> bool {
            let page = abi::PAGE_SIZE;
            let (first, last) = (addr / page, (addr + len.max(1) - 1) / page);
            !self
                .not_present
                .iter()
                .any(|&p| (first..=last).contains(&(p / page)))
        }

        fn nofault_to_user(&mut self, addr: usize, bytes: &[u8]) -> bool {
            if !self.present(addr, bytes.len()) {
                return false;
            }
            let Some((i, off)) = self.find(addr, bytes.len()) else {
                return false;
            };
            let region = &mut self.regions[i];
            if !region.writable {
                return false;
            }
            region.bytes[off..off + bytes.len()].copy_from_slice(bytes);
            self.nofault_copies += 1;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mock::{FakeUserMemory, X86_64_USER_LIMIT};
    use super::*;
    use abi::info::{InfoVmar, InfoVmo};

    const E: Status = Status::ERR_INVALID_ARGS;

    fn mem() -> FakeUserMemory {
        let mut m = FakeUserMemory::new();
        m.map(0x1000, 0x1000, true);
        m.map(0x3000, 0x1000, false);
        m
    }

    #[test]
    fn typed_roundtrip() {
        let mut m = mem();
        UserOut::<u64>::new(0x1008)
            .write(&mut m, &0xdead_beef_u64)
            .unwrap();
        assert_eq!(m.peek(0x1008, 8), 0xdead_beef_u64.to_le_bytes());
        assert_eq!(UserIn::<u64>::new(0x1008).read(&m).unwrap(), 0xdead_beef);
        let info = InfoVmar {
            base: 0x10_0000,
            len: 0x2000,
        };
        UserOut::new(0x1100).write(&mut m, &info).unwrap();
        assert_eq!(UserIn::<InfoVmar>::new(0x1100).read(&m).unwrap(), info);
        // The largest record fits the scratch buffer.
        UserOut::new(0x1200)
            .write(&mut m, &InfoVmo::default())
            .unwrap();
    }

    #[test]
    fn typed_pointer_checks() {
        let mut m = mem();
        assert_eq!(
            UserOut::<u32>::new(0).write(&mut m, &1).err(),
            Some(E),
            "null"
        );
        assert_eq!(UserIn::<u32>::new(0).read(&m).err(), Some(E), "null");
        assert_eq!(
            UserOut::<u64>::new(0x1004).write(&mut m, &1).err(),
            Some(E),
            "misaligned"
        );
        assert_eq!(
            UserIn::<u32>::new(0x1002).read(&m).err(),
            Some(E),
            "misaligned"
        );
        assert_eq!(
            UserIn::<u64>::new(usize::MAX - 7).read(&m).err(),
            Some(E),
            "overflow"
        );
        assert_eq!(
            UserIn::<u64>::new(X86_64_USER_LIMIT).read(&m).err(),
            Some(E),
            "kernel half"
        );
        assert_eq!(
            UserIn::<u64>::new(X86_64_USER_LIMIT - 8 + 8).read(&m).err(),
            Some(E)
        );
        assert_eq!(
            UserIn::<u64>::new(0xffff_8000_0000_0000).read(&m).err(),
            Some(E)
        );
        assert_eq!(
            UserIn::<u64>::new(0x2000).read(&m).err(),
            Some(E),
            "unmapped: fault"
        );
        assert_eq!(
            UserIn::<u64>::new(0x1ffc).read(&m).err(),
            Some(E),
            "misaligned and straddling"
        );
        assert_eq!(
            UserIn::<u32>::new(0x1ffc).read(&m).unwrap(),
            0,
            "last word of a page"
        );
        assert_eq!(
            UserOut::<u32>::new(0x3000).write(&mut m, &1).err(),
            Some(E),
            "read-only: fault"
        );
        assert_eq!(
            UserIn::<u32>::new(0x3000).read(&m).unwrap(),
            0,
            "read-only is readable"
        );
        assert_eq!(m.copies, 0, "no failed write touched memory");
    }

    #[test]
    fn the_user_limit_is_a_parameter() {
        let mut m = FakeUserMemory::with_limit(0x2000);
        m.map(0x1000, 0x2000, true); // mapped past the limit on purpose
        assert!(UserIn::<u64>::new(0x1ff8).read(&m).is_ok());
        assert_eq!(UserIn::<u64>::new(0x2000).read(&m).err(), Some(E));
        assert_eq!(check_user_range(0x1000, 0x1000, 0x2000), Ok(()));
        assert_eq!(check_user_range(0x1000, 0x1001, 0x2000), Err(E));
        assert_eq!(
            check_user_range(0x2000, 0, 0x2000),
            Err(E),
            "start must be a user address"
        );
        assert_eq!(check_user_range(0, 0, 0x2000), Ok(()));
    }

    #[test]
    fn optional_out_pointers() {
        let mut m = mem();
        UserOut::<usize>::new(0)
            .write_if_nonnull(&mut m, &5)
            .unwrap();
        UserOut::<usize>::new(0x1010)
            .write_if_nonnull(&mut m, &5)
            .unwrap();
        assert_eq!(UserIn::<usize>::new(0x1010).read(&m).unwrap(), 5);
        assert_eq!(
            UserOut::<usize>::new(0x1011)
                .write_if_nonnull(&mut m, &5)
                .err(),
            Some(E)
        );
    }

    #[test]
    fn buffers() {
        let mut m = mem();
        m.poke(0x3000, b"hello");
        let b = UserInBuffer::new(0x3000, 5);
        let mut out = [0u8; 5];
        b.read_at(&m, 0, &mut out).unwrap();
        assert_eq!(&out, b"hello");
        let mut two = [0u8; 2];
        b.read_at(&m, 3, &mut two).unwrap();
        assert_eq!(&two, b"lo");
        assert_eq!(
            b.read_at(&m, 4, &mut two).err(),
            Some(E),
            "chunk past the buffer"
        );
        // Empty buffers: fine at null or any user address, not in the kernel half.
        assert!(UserInBuffer::new(0, 0).read_at(&m, 0, &mut []).is_ok());
        assert!(UserInBuffer::new(0x9999_0000, 0).check(&m).is_ok());
        assert_eq!(
            UserInBuffer::new(X86_64_USER_LIMIT, 0).check(&m).err(),
            Some(E)
        );
        assert_eq!(
            UserInBuffer::new(0, 1).check(&m).err(),
            Some(E),
            "null with bytes"
        );
        assert_eq!(
            UserInBuffer::new(0x1000, usize::MAX).check(&m).err(),
            Some(E),
            "overflow"
        );
        assert_eq!(
            UserInBuffer::new(0x2ff0, 0x20)
                .read_at(&m, 0, &mut [0; 0x20])
                .err(),
            Some(E),
            "fault"
        );

        let o = UserOutBuffer::new(0x1800, 8);
        o.write_at(&mut m, 2, b"abc").unwrap();
        assert_eq!(m.peek(0x1800, 8), b"\0\0abc\0\0\0");
        assert_eq!(o.write_at(&mut m, 6, b"abc").err(), Some(E));
        assert_eq!(
            UserOutBuffer::new(0x3000, 4)
                .write_at(&mut m, 0, b"x")
                .err(),
            Some(E),
            "read-only"
        );
        assert_eq!(UserOutBuffer::new(usize::MAX, 2).check(&m).err(), Some(E));
    }

    #[test]
    fn record_arrays() {
        let mut m = mem();
        let arr = UserOutArray::<InfoVmar>::new(0x1000, 40);
        assert_eq!(arr.capacity(), 2);
        arr.write(&mut m, 1, &InfoVmar { base: 7, len: 9 }).unwrap();
        assert_eq!(
            UserIn::<InfoVmar>::new(0x1010).read(&m).unwrap(),
            InfoVmar { base: 7, len: 9 }
        );
        assert_eq!(
            arr.write(&mut m, 2, &InfoVmar::default()).err(),
            Some(Status::ERR_BUFFER_TOO_SMALL)
        );
        assert_eq!(
            UserOutArray::<InfoVmar>::new(0x1004, 16).check(&m).err(),
            Some(E),
            "misaligned"
        );
        assert!(UserOutArray::<InfoVmar>::new(0, 0).check(&m).is_ok());
        assert_eq!(UserOutArray::<InfoVmar>::new(0, 0).capacity(), 0);
    }
}
