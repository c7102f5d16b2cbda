//! Channels: [`Channel`] (`zx_channel_create` / `read` / `write`).

use alloc::vec;
use alloc::vec::Vec;

use abi::exception::channel::ZX_CHANNEL_MAX_MSG_HANDLES;
use abi::syscall_numbers as nr;
use abi::{Status, ZxResult};

use crate::raw::{syscall3, syscall6, syscall8};
use crate::{addr_of, ok, status, Handle};

/// One endpoint of a channel.
#[derive(Debug, PartialEq, Eq)]
pub struct Channel(Handle);

impl From<Handle> for Channel {
    fn from(handle: Handle) -> Self {
        Channel(handle)
    }
}

impl From<Channel> for Handle {
    fn from(channel: Channel) -> Self {
        channel.0
    }
}

/// What [`Channel::read_raw`] got: the status and the sizes the kernel reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadResult {
    /// `ZX_OK`, or the error (`BUFFER_TOO_SMALL` comes with the sizes).
    pub status: Status,
    /// `actual_bytes`.
    pub bytes: u32,
    /// `actual_handles`.
    pub handles: u32,
}

impl Channel {
    /// `zx_channel_create(options)`: the two endpoints.
    pub fn create(options: u32) -> ZxResult<(Channel, Channel)> {
        let mut h0 = 0u32;
        let mut h1 = 0u32;
        // SAFETY: the kernel writes two valid, aligned u32s.
        ok(unsafe {
            syscall3(
                nr::ZX_SYS_CHANNEL_CREATE,
                options as usize,
                addr_of(&mut h0),
                addr_of(&mut h1),
            )
        })?;
        Ok((Channel(Handle::from_raw(h0)), Channel(Handle::from_raw(h1))))
    }

    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.0
    }

    /// Gives the handle back.
    pub fn into_handle(self) -> Handle {
        self.0
    }

    /// `zx_channel_write(0, bytes, handles)`: the handles are consumed whatever the outcome (as
    /// in Zircon).
    pub fn write(&self, bytes: &[u8], handles: Vec<Handle>) -> ZxResult {
        let raw: Vec<u32> = handles.into_iter().map(Handle::into_raw).collect();
        self.write_raw(0, bytes, &raw)
    }

    /// `zx_channel_write` with raw handle values (which the kernel consumes) and options.
    pub fn write_raw(&self, options: u32, bytes: &[u8], handles: &[u32]) -> ZxResult {
        // SAFETY: the kernel reads `bytes.len()` bytes and `handles.len()` u32s from valid
        // slices; the handle values it removes are not owned by any `Handle` here.
        ok(unsafe {
            syscall6(
                nr::ZX_SYS_CHANNEL_WRITE,
                self.0.raw() as usize,
                options as usize,
                bytes.as_ptr() as usize,
                bytes.len(),
                handles.as_ptr() as usize,
                handles.len(),
            )
        })
    }

    /// `zx_channel_read(options)` into `bytes` / `handles` (raw values the caller then owns).
    pub fn read_raw(&self, options: u32, bytes: &mut [u8], handles: &mut [u32]) -> ReadResult {
        let mut actual_bytes = 0u32;
        let mut actual_handles = 0u32;
        // SAFETY: the kernel writes at most `bytes.len()` bytes and `handles.len()` u32s into
        // valid slices, and two u32s.
        let r = unsafe {
            syscall8(
                nr::ZX_SYS_CHANNEL_READ,
                self.0.raw() as usize,
                options as usize,
                bytes.as_mut_ptr() as usize,
                handles.as_mut_ptr() as usize,
                bytes.len(),
                handles.len(),
                addr_of(&mut actual_bytes),
                addr_of(&mut actual_handles),
            )
        };
        ReadResult {
            status: status(r),
            bytes: actual_bytes,
            handles: actual_handles,
        }
    }

    /// Reads the next message (any size up to the limits): its bytes and handles.
    pub fn read(&self) -> ZxResult<(Vec<u8>, Vec<Handle>)> {
        let mut bytes = vec![0u8; 4096];
        let mut handles = [0u32; ZX_CHANNEL_MAX_MSG_HANDLES as usize];
        let mut r = self.read_raw(0, &mut bytes, &mut handles);
        if r.status == Status::ERR_BUFFER_TOO_SMALL {
            bytes.resize(r.bytes as usize, 0);
            r = self.read_raw(0, &mut bytes, &mut handles);
        }
        r.status.ok()?;
        bytes.truncate(r.bytes as usize);
        let handles = handles[..r.handles as usize]
            .iter()
            .map(|&h| Handle::from_raw(h))
            .collect();
        Ok((bytes, handles))
    }
}
