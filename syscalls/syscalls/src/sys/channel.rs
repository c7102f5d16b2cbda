//! `zx_channel_create` / `zx_channel_read` / `zx_channel_write`
//! (`zircon/kernel/lib/syscalls/channel.cc`).
//!
//! Write, in Zircon's order: options (`ZX_ERR_INVALID_ARGS`; `ZX_CHANNEL_WRITE_USE_IOVEC` is
//! known but `ZX_ERR_NOT_SUPPORTED` here), the channel with `ZX_RIGHT_WRITE`, the sizes (more
//! than 65536 bytes or 64 handles: `ZX_ERR_OUT_OF_RANGE`), the bytes (`ZX_ERR_INVALID_ARGS` on
//! a fault), the handle array (same), then each listed handle is *removed* from the caller's
//! table and checked: missing `ZX_ERR_BAD_HANDLE` (so a duplicate in the list fails the second
//! time), no `ZX_RIGHT_TRANSFER` `ZX_ERR_ACCESS_DENIED`, the channel itself
//! `ZX_ERR_NOT_SUPPORTED` (the first error wins). Every listed handle is consumed whatever the
//! outcome (Zircon's `RemoveUserHandles` clean-up on the early errors, the dropped message on the
//! later ones): on failure they are closed. Last, the queueing: the writer's byte budget
//! (`ZX_ERR_NO_RESOURCES`, `crate::account`), `ZX_ERR_PEER_CLOSED`, or our queue bounds
//! (`crate::channel`). Queued handles and bytes stay charged to the writer; a read moves the
//! handles' charge to the reader (its table's account: `ZX_ERR_NO_RESOURCES` at its handle
//! limit, and the message's handles are closed as for a full table).
//!
//! Our addition: writing the channel's *peer* endpoint is `ZX_ERR_NOT_SUPPORTED` like the
//! channel itself (the peer would keep itself alive from its own queue; Zircon accepts it and
//! leaks that endpoint), and so is writing any endpoint whose queued messages hold, through any
//! chain of queued endpoints, the endpoint the message would be queued at: each such write would
//! close an ownership cycle of unreadable endpoints (checked after the per-handle checks; the
//! handles are consumed as for every failed write).
//!
//! Read: the channel with `ZX_RIGHT_READ`, options other than `ZX_CHANNEL_READ_MAY_DISCARD`
//! `ZX_ERR_NOT_SUPPORTED`, empty queue `ZX_ERR_SHOULD_WAIT` / `ZX_ERR_PEER_CLOSED`; the actual
//! sizes are written (when non-null) also for `ZX_ERR_BUFFER_TOO_SMALL`; then the bytes, then
//! the handles (added to the caller's table with the rights they were written with).

use alloc::vec;
use alloc::vec::Vec;

use abi::default_rights::ZX_DEFAULT_CHANNEL_RIGHTS;
use abi::exception::channel::{
    ZX_CHANNEL_MAX_MSG_BYTES, ZX_CHANNEL_MAX_MSG_HANDLES, ZX_CHANNEL_READ_MAY_DISCARD,
    ZX_CHANNEL_WRITE_USE_IOVEC,
};
use abi::rights::{ZX_RIGHT_READ, ZX_RIGHT_TRANSFER, ZX_RIGHT_WRITE};
use abi::{Status, ZxResult};

use super::{add_and_copy_out, lookup, remove_quietly};
use crate::channel::{ChannelEndpoint, Message, ReadError};
use crate::context::{with_table, SyscallContext};
use crate::object::{Object, ObjectHandle};
use crate::user_ptr::{UserInBuffer, UserOut, UserOutBuffer};

/// Most handle values the early-error clean-up of `zx_channel_write` removes (Zircon walks the
/// whole `num_handles` in chunks; a table never holds more than this many).
const MAX_CLEANUP_HANDLES: usize = crate::handle::DEFAULT_LIMIT;

/// `zx_channel_create(options, *out0, *out1)`.
pub fn create(
    ctx: &mut dyn SyscallContext,
    options: u32,
    out0: UserOut<u32>,
    out1: UserOut<u32>,
) -> ZxResult {
    if options != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let (e0, e1) = ChannelEndpoint::create_pair();
    let h0 = Object::Channel(e0).into_handle(ZX_DEFAULT_CHANNEL_RIGHTS);
    let h1 = Object::Channel(e1).into_handle(ZX_DEFAULT_CHANNEL_RIGHTS);
    let v0 = add_and_copy_out(ctx, h0, out0)?;
    if let Err(status) = add_and_copy_out(ctx, h1, out1) {
        remove_quietly(ctx, v0);
        return Err(status);
    }
    Ok(())
}

/// Reads `count` handle values from the user array at `addr`.
fn read_handle_values(
    ctx: &mut dyn SyscallContext,
    addr: usize,
    first: usize,
    count: usize,
) -> Result<Vec<u32>, Status> {
    let len = count.checked_mul(4).ok_or(Status::ERR_INVALID_ARGS)?;
    let total = first
        .checked_add(count)
        .and_then(|n| n.checked_mul(4))
        .ok_or(Status::ERR_INVALID_ARGS)?;
    let mut raw = vec![0u8; len];
    UserInBuffer::new(addr, total).read_at(ctx.user_memory(), first * 4, &mut raw)?;
    Ok(raw
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Zircon's `RemoveUserHandles`: removes (closes) every handle listed, in chunks, stopping at
/// the first chunk that cannot be read.
fn remove_user_handles(ctx: &mut dyn SyscallContext, addr: usize, count: usize) {
    let count = count.min(MAX_CLEANUP_HANDLES);
    let chunk = ZX_CHANNEL_MAX_MSG_HANDLES as usize;
    let mut first = 0;
    while first < count {
        let n = (count - first).min(chunk);
        let Ok(values) = read_handle_values(ctx, addr, first, n) else {
            return;
        };
        let removed: Vec<ObjectHandle> = with_table(ctx, |t| {
            values.iter().filter_map(|&v| t.remove(v).ok()).collect()
        });
        drop(removed);
        first += n;
    }
}

/// `zx_channel_write(handle, options, *bytes, num_bytes, *handles, num_handles)`.
pub fn write(
    ctx: &mut dyn SyscallContext,
    handle: u32,
    options: u32,
    bytes: usize,
    num_bytes: u32,
    handles: usize,
    num_handles: u32,
) -> ZxResult {
    let result = write_checked(ctx, handle, options, bytes, num_bytes, num_handles);
    let channel = match result {
        Ok(channel) => channel,
        Err(status) => {
            remove_user_handles(ctx, handles, num_handles as usize);
            return Err(status);
        }
    };
    let (payload, channel) = channel;
    let values = match read_handle_values(ctx, handles, 0, num_handles as usize) {
        Ok(v) => v,
        Err(status) => {
            // Nothing could be read, so nothing can be removed (Zircon's clean-up fails the
            // same way).
            return Err(status);
        }
    };
    let (taken, status, account) = with_table(ctx, |t| {
        let mut taken = Vec::with_capacity(values.len());
        let mut first_error = None;
        for &v in &values {
            let outcome = match t.remove(v) {
                Err(_) => Err(Status::ERR_BAD_HANDLE),
                Ok(h) => {
                    let check = if !h.has_rights(ZX_RIGHT_TRANSFER) {
                        Err(Status::ERR_ACCESS_DENIED)
                    } else {
                        match h.object() {
                            Object::Channel(c)
                                if c.koid() == channel.koid() || c.is_peer_of(&channel) =>
                            {
                                Err(Status::ERR_NOT_SUPPORTED)
                            }
                            _ => Ok(()),
                        }
                    };
                    taken.push(h);
                    check
                }
            };
            if let (Err(e), None) = (outcome, first_error) {
                first_error = Some(e);
            }
        }
        (taken, first_error, t.account().cloned())
    });
    // Ours: an endpoint whose queued messages (transitively) hold the receiving endpoint would
    // close an ownership cycle nobody could break (see `ChannelEndpoint::would_cycle`).
    let status = status.or_else(|| {
        taken.iter().find_map(|h| match h.object() {
            Object::Channel(c) if c.would_cycle(&channel) => Some(Status::ERR_NOT_SUPPORTED),
            _ => None,
        })
    });
    if let Some(status) = status {
        drop(taken);
        return Err(status);
    }
    channel.write(
        Message {
            bytes: payload,
            handles: taken,
            charge: None,
        },
        account.as_ref(),
    )
}

/// The checks before the handles: options, the channel, the sizes and the bytes.
fn write_checked(
    ctx: &mut dyn SyscallContext,
    handle: u32,
    options: u32,
    bytes: usize,
    num_bytes: u32,
    num_handles: u32,
) -> Result<(Vec<u8>, alloc::sync::Arc<ChannelEndpoint>), Status> {
    if options & !ZX_CHANNEL_WRITE_USE_IOVEC != 0 {
        return Err(Status::ERR_INVALID_ARGS);
    }
    let (channel, _) = lookup(ctx, handle, ZX_RIGHT_WRITE, Object::as_channel)?;
    if options & ZX_CHANNEL_WRITE_USE_IOVEC != 0 {
        return Err(Status::ERR_NOT_SUPPORTED);
    }
    if num_bytes > ZX_CHANNEL_MAX_MSG_BYTES || num_handles > ZX_CHANNEL_MAX_MSG_HANDLES {
        return Err(Status::ERR_OUT_OF_RANGE);
    }
    Ok((read_payload(ctx, bytes, num_bytes)?, channel))
}

/// The copy of `MessagePacket::Create` (the sizes are checked by the caller).
fn read_payload(
    ctx: &mut dyn SyscallContext,
    bytes: usize,
    num_bytes: u32,
) -> Result<Vec<u8>, Status> {
    let mut payload = vec![0u8; num_bytes as usize];
    UserInBuffer::new(bytes, payload.len()).read_at(ctx.user_memory(), 0, &mut payload)?;
    Ok(payload)
}

/// `zx_channel_read(handle, options, *bytes, *handles, num_bytes, num_handles, *actual_bytes,
/// *actual_handles)`.
#[allow(clippy::too_many_arguments)]
pub fn read(
    ctx: &mut dyn SyscallContext,
    handle: u32,
    options: u32,
    bytes: usize,
    handles: usize,
    num_bytes: u32,
    num_handles: u32,
    actual_bytes: UserOut<u32>,
    actual_handles: UserOut<u32>,
) -> ZxResult {
    let (channel, _) = lookup(ctx, handle, ZX_RIGHT_READ, Object::as_channel)?;
    if options & !ZX_CHANNEL_READ_MAY_DISCARD != 0 {
        return Err(Status::ERR_NOT_SUPPORTED);
    }
    let may_discard = options & ZX_CHANNEL_READ_MAY_DISCARD != 0;
    let (msg, sizes) = match channel.read(num_bytes, num_handles, may_discard) {
        Ok(msg) => {
            let sizes = (msg.bytes.len() as u32, msg.handles.len() as u32);
            (Some(msg), sizes)
        }
        Err(ReadError::Status(status)) => return Err(status),
        Err(ReadError::TooSmall(nb, nh)) => (None, (nb, nh)),
    };
    actual_bytes.write_if_nonnull(ctx.user_memory(), &sizes.0)?;
    actual_handles.write_if_nonnull(ctx.user_memory(), &sizes.1)?;
    let Some(msg) = msg else {
        return Err(Status::ERR_BUFFER_TOO_SMALL);
    };
    UserOutBuffer::new(bytes, msg.bytes.len()).write_at(ctx.user_memory(), 0, &msg.bytes)?;
    if msg.handles.is_empty() {
        return Ok(());
    }
    // Install the handles, then copy their values out; if either fails the handles are closed
    // (Zircon: the message keeps ownership and drops them).
    let count = msg.handles.len();
    let added = with_table(ctx, |t| {
        let mut values = Vec::with_capacity(count);
        let mut handles = msg.handles.into_iter();
        for h in handles.by_ref() {
            match t.add(h) {
                Ok(v) => values.push(v),
                Err(status) => {
                    let removed: Vec<ObjectHandle> =
                        values.iter().filter_map(|&v| t.remove(v).ok()).collect();
                    return Err((status, removed, handles.collect::<Vec<_>>()));
                }
            }
        }
        Ok(values)
    });
    let values = match added {
        Ok(values) => values,
        Err((status, removed, rest)) => {
            drop(removed);
            drop(rest);
            return Err(status);
        }
    };
    let mut raw = Vec::with_capacity(values.len() * 4);
    for v in &values {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    if let Err(status) = UserOutBuffer::new(handles, raw.len()).write_at(ctx.user_memory(), 0, &raw)
    {
        let removed: Vec<ObjectHandle> = with_table(ctx, |t| {
            values.iter().filter_map(|&v| t.remove(v).ok()).collect()
        });
        drop(removed);
        return Err(status);
    }
    Ok(())
}
