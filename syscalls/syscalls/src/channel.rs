//! Channels: a pair of endpoints, each with a bounded queue of messages (bytes + handles) written
//! by its peer, and the waiter hook that wakes blocked threads when a channel's signals change.
//!
//! [`ChannelEndpoint::create_pair`] makes the two endpoints (their koids point at each other).
//! A message written on one endpoint is queued at the other; reading pops from the endpoint's own
//! queue. When the last reference to an endpoint goes (its handle closed, or the message holding
//! it dropped) the messages queued *to* it are dropped with their handles, and the peer sees
//! `ZX_CHANNEL_PEER_CLOSED` (and loses `ZX_CHANNEL_WRITABLE`), as in Zircon's `ChannelDispatcher`.
//! Those drops run from a work list (`drain_step`), not by recursion, so freeing a chain or
//! tree of endpoints of any depth uses constant kernel stack; past a budget per drop the rest is
//! left to [`drain_pending`], which the syscall layer runs with preemption points.
//!
//! # Bounds (ours; Zircon has none, it raises a policy exception past 3500 queued messages)
//! - per endpoint queue: at most [`MAX_QUEUED_MESSAGES`] messages and [`MAX_QUEUED_BYTES`]
//!   bytes; a write past either is `ZX_ERR_SHOULD_WAIT` and the message (with its handles) is
//!   dropped, like every failed `zx_channel_write`;
//! - per writer: the bytes it has queued and not yet read count against its account's byte
//!   budget ([`crate::account`]); past it `ZX_ERR_NO_RESOURCES`;
//! - kernel-wide: at most [`MAX_TOTAL_QUEUED_BYTES`] bytes in all queues; past it
//!   `ZX_ERR_NO_MEMORY`.
//!
//! Handles inside messages count as live handles (`handle::live_handle_count`), so the
//! kernel-wide handle bound covers them too; they stay charged to the writer's account while
//! queued, as do the message's bytes (see [`crate::account`]).
//!
//! # Waking waiters
//! Blocked `zx_object_wait_one` callers re-check their object's signals when the kernel's waiter
//! hook runs ([`set_wake_hook`]); every change of a channel's signals (and the closing of an
//! exception handle, see [`crate::exception`]) calls it.

use alloc::collections::VecDeque;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use abi::signals::{ZX_CHANNEL_PEER_CLOSED, ZX_CHANNEL_READABLE, ZX_CHANNEL_WRITABLE};
use abi::Status;
use lock_order::SpinMutex as Mutex;
use spin::Once;

use crate::account::{Account, Charge, Resource};
use crate::object::{new_koid, ObjectHandle};

/// Most messages queued at one endpoint.
pub const MAX_QUEUED_MESSAGES: usize = 64;
/// Most message bytes queued at one endpoint (four maximal messages).
pub const MAX_QUEUED_BYTES: usize = 256 * 1024;
/// Most message bytes queued in all channels together.
pub const MAX_TOTAL_QUEUED_BYTES: usize = 8 * 1024 * 1024;

static TOTAL_QUEUED_BYTES: AtomicUsize = AtomicUsize::new(0);
static WAKE_HOOK: Once<fn()> = Once::new();

/// Registers the function that wakes every blocked thread so it re-checks what it waits for
/// (the kernel's `sched::wake_all`). Set once at boot; without it nothing is woken (host tests).
pub fn set_wake_hook(hook: fn()) {
    WAKE_HOOK.call_once(|| hook);
}

/// Runs the wake hook, if any. Must not be called with a channel lock held.
pub(crate) fn wake_waiters() {
    if let Some(hook) = WAKE_HOOK.get() {
        hook();
    }
}

/// Bytes queued in all channels (for tests and diagnostics).
pub fn total_queued_bytes() -> usize {
    TOTAL_QUEUED_BYTES.load(Ordering::SeqCst)
}

/// One channel message.
#[derive(Debug, Default)]
pub struct Message {
    /// The payload.
    pub bytes: Vec<u8>,
    /// The handles it carries (each keeps its rights, and its charge: the writer's account).
    pub handles: Vec<ObjectHandle>,
    /// The writer's charge for the bytes while the message is queued (set by
    /// [`ChannelEndpoint::write`], released when the message is read or dropped).
    pub charge: Option<Charge>,
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Message>,
    bytes: usize,
    /// The endpoint reading this queue is gone.
    closed: bool,
    /// The endpoint (channel, side) in whose queue a message carries the endpoint reading this
    /// queue; `None` while a handle table holds it. A channel handle cannot be duplicated, so an
    /// endpoint is in one place at a time: these links form a forest (see `would_cycle`).
    held_in: Option<(Weak<Shared>, usize)>,
}

/// What two endpoints share: the queue of each (index = the reading endpoint's side).
struct Shared {
    queues: Mutex<[Queue; 2]>,
    /// The next channel on the [`DOOMED`] stack, while this one is on it (see `drain_step`).
    doomed_next: Mutex<Option<Arc<Shared>>>,
}

/// Channels with a closed side whose messages are still to be dropped: an intrusive stack
/// through [`Shared::doomed_next`], so putting a channel on it never allocates.
static DOOMED: Mutex<Option<Arc<Shared>>> = Mutex::new(None);
/// Some call up the stack is draining [`DOOMED`].
static DRAINING: AtomicBool = AtomicBool::new(false);
/// An endpoint closed while a drain step ran: the step wakes the waiters when it ends.
static WAKE_DEFERRED: AtomicBool = AtomicBool::new(false);

/// Work one drain step does before it returns, counted as one per message plus one per handle
/// it carries; what is left stays on `DOOMED` for [`drain_pending`], so no single step keeps
/// interrupts off for long.
pub const DRAIN_STEP_BUDGET: usize = 1024;

/// Drops messages of the channels on [`DOOMED`], one at a time, until `budget` is spent (see
/// [`DRAIN_STEP_BUDGET`]; a message is dropped whole, so a step may end up to one message's
/// handles over it); returns whether
/// work is left. Returns `false` at once when a drain further up the stack is running (it goes on
/// with what this call's caller put on the stack).
///
/// Dropping a message drops its handles, which may be the last references to endpoints whose
/// queues hold more messages, and so on to any depth user space builds (a chain of endpoints,
/// each queued in the one before). An endpoint that goes while a drain runs only puts its
/// channel on the stack (see `Drop for ChannelEndpoint`), and the outermost drain takes it from
/// there, so the kernel stack depth stays constant; the work is one step per message.
fn drain_step(budget: usize) -> bool {
    if DRAINING.swap(true, Ordering::SeqCst) {
        return false;
    }
    let mut left = budget;
    let more = 'channels: loop {
        let shared = {
            let mut head = DOOMED.lock();
            let Some(shared) = head.take() else {
                break false;
            };
            *head = shared.doomed_next.lock().take();
            shared
        };
        // The closed sides' messages; none can be added (writes to a closed side fail).
        loop {
            if left == 0 {
                // Back on top of the stack (it is on it nowhere else), for the next step.
                let mut head = DOOMED.lock();
                *shared.doomed_next.lock() = head.take();
                *head = Some(shared);
                break 'channels true;
            }
            let message = {
                let mut queues = shared.queues.lock();
                queues
                    .iter_mut()
                    .filter(|q| q.closed)
                    .find_map(|q| q.messages.pop_front())
            };
            let Some(message) = message else {
                break;
            };
            left = left.saturating_sub(1 + message.handles.len());
            drop(message);
        }
        drop(shared);
    };
    DRAINING.store(false, Ordering::SeqCst);
    if WAKE_DEFERRED.swap(false, Ordering::SeqCst) {
        wake_waiters();
    }
    more
}

/// Drops every message still on `DOOMED`, in steps of [`DRAIN_STEP_BUDGET`] with `preempt`
/// called between two. The syscall layer runs it when a call returns (holding no lock), so the
/// endpoints a close or a drop leaves behind are freed by the thread that caused it, with
/// preemption points, however many there are.
///
/// One thread drains at a time: a call while another thread is between two of its steps
/// returns at once (that thread goes on with everything on the stack), so a thread never
/// pays for work another one left while it is still at it. Nor does a call on another CPU
/// while the work is claimed (`CLAIMED_BY`): the drop that left it is in a call that drains it
/// when it returns, on its own CPU.
pub fn drain_pending(mut preempt: impl FnMut()) {
    let me = lock_order::cpu_index() + 1;
    match CLAIMED_BY.load(Ordering::SeqCst) {
        0 => {}
        claim if claim == me => {
            let _ = CLAIMED_BY.compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
        _ => return,
    }
    if DOOMED.lock().is_none() || DRAINER.swap(true, Ordering::SeqCst) {
        return;
    }
    while drain_step(DRAIN_STEP_BUDGET) {
        preempt();
    }
    DRAINER.store(false, Ordering::SeqCst);
}

/// A thread is in [`drain_pending`] (possibly preempted between two steps).
static DRAINER: AtomicBool = AtomicBool::new(false);

/// The CPU (its index + 1; 0 for none) on which the last drop outside a drain step put a
/// channel on `DOOMED`. The call that dropped runs [`drain_pending`] when it returns, with no
/// preemption point in between on the paths that close handles, so it is still on that CPU;
/// until then [`drain_pending`] on other CPUs leaves the stack alone, so a thread busy with
/// syscalls on another CPU (of a process that has nothing to do with the close) does not take
/// the whole drain in the window between the drop and the dropping call's return. The next
/// [`drain_pending`] on the claiming CPU clears the claim, whoever runs it: the dropping call,
/// or, when that call was preempted and moved on (a teardown with preemption points), the next
/// syscall there or that CPU's idle loop, which its timer wakes every tick. New work comes
/// with a new claim (or inside a running drain step, whose drain takes it).
static CLAIMED_BY: AtomicUsize = AtomicUsize::new(0);

/// One end of a channel.
pub struct ChannelEndpoint {
    shared: Arc<Shared>,
    side: usize,
    koid: u64,
    peer_koid: u64,
}

impl core::fmt::Debug for ChannelEndpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "ChannelEndpoint(koid {}, peer {})",
            self.koid, self.peer_koid
        )
    }
}

/// Why a read returned no message.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// `ZX_ERR_SHOULD_WAIT` or `ZX_ERR_PEER_CLOSED`.
    Status(Status),
    /// The next message needs `(bytes, handles)`; it was left queued unless discarding.
    TooSmall(u32, u32),
}

impl ChannelEndpoint {
    /// A new channel: two endpoints with fresh koids, each other's peer.
    pub fn create_pair() -> (Arc<ChannelEndpoint>, Arc<ChannelEndpoint>) {
        let shared = Arc::new(Shared {
            queues: Mutex::new([Queue::default(), Queue::default()]),
            doomed_next: Mutex::new(None),
        });
        let (k0, k1) = (new_koid(), new_koid());
        (
            Arc::new(ChannelEndpoint {
                shared: shared.clone(),
                side: 0,
                koid: k0,
                peer_koid: k1,
            }),
            Arc::new(ChannelEndpoint {
                shared,
                side: 1,
                koid: k1,
                peer_koid: k0,
            }),
        )
    }

    /// The koid.
    pub fn koid(&self) -> u64 {
        self.koid
    }

    /// The peer's koid (`related_koid`).
    pub fn peer_koid(&self) -> u64 {
        self.peer_koid
    }

    /// Whether `other` is this endpoint's peer.
    pub fn is_peer_of(&self, other: &ChannelEndpoint) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared) && self.side != other.side
    }

    /// Whether a message carrying `self` and queued at `writer`'s peer would make an ownership
    /// cycle: the peer is `self`, or is held (through any chain of endpoints queued in
    /// endpoints) in a message queued at `self`. Such a message would keep the endpoints alive
    /// with nobody able to read them, so `zx_channel_write` refuses it (ours; Zircon accepts and
    /// leaks them).
    ///
    /// Walks up from the peer through the endpoints holding it (`Queue::held_in`) until a handle
    /// table holds one: the cost is the peer's nesting depth, whatever `self` carries below it
    /// (a write of an endpoint with tens of thousands of endpoints beneath is one step).
    pub fn would_cycle(&self, writer: &ChannelEndpoint) -> bool {
        let mut at = (writer.shared.clone(), 1 - writer.side);
        loop {
            if Arc::ptr_eq(&at.0, &self.shared) && at.1 == self.side {
                return true;
            }
            let holder = at.0.queues.lock()[at.1].held_in.clone();
            match holder.and_then(|(shared, side)| Some((shared.upgrade()?, side))) {
                Some(next) => at = next,
                None => return false,
            }
        }
    }

    /// Records in each endpoint `msg` carries where it now is (`None`: taken out of a queue).
    fn set_held_in(msg: &Message, place: Option<(&Arc<Shared>, usize)>) {
        for e in msg.handles.iter().filter_map(|h| h.object().as_channel()) {
            e.shared.queues.lock()[e.side].held_in =
                place.map(|(s, side)| (Arc::downgrade(s), side));
        }
    }

    /// Whether the peer endpoint is gone.
    pub fn peer_closed(&self) -> bool {
        self.shared.queues.lock()[1 - self.side].closed
    }

    /// `ZX_CHANNEL_READABLE` while a message is queued here; `ZX_CHANNEL_WRITABLE` while the peer
    /// lives, `ZX_CHANNEL_PEER_CLOSED` after.
    pub fn signals(&self) -> u32 {
        let queues = self.shared.queues.lock();
        let mut s = 0;
        if !queues[self.side].messages.is_empty() {
            s |= ZX_CHANNEL_READABLE;
        }
        if queues[1 - self.side].closed {
            s |= ZX_CHANNEL_PEER_CLOSED;
        } else {
            s |= ZX_CHANNEL_WRITABLE;
        }
        s
    }

    /// Messages queued at this endpoint.
    pub fn queued_messages(&self) -> usize {
        self.shared.queues.lock()[self.side].messages.len()
    }

    /// Queues `msg` at the peer, its bytes charged to `account` (the writer's; `None` charges
    /// nobody) until read or dropped. Errors, in this order (the message and its handles are
    /// dropped, after the lock): `ZX_ERR_PEER_CLOSED`, `ZX_ERR_SHOULD_WAIT` (the peer's queue
    /// is full), `ZX_ERR_NO_RESOURCES` (the writer's byte budget, see [`crate::account`]),
    /// `ZX_ERR_NO_MEMORY` (the kernel-wide byte bound).
    pub fn write(&self, mut msg: Message, account: Option<&Arc<Account>>) -> Result<(), Status> {
        let len = msg.bytes.len();
        // The carried endpoints are in the peer's queue from now on; if the write fails, the
        // message and they are dropped, so the record never misleads. Set outside this
        // channel's lock (each endpoint's own lock is taken).
        Self::set_held_in(&msg, Some((&self.shared, 1 - self.side)));
        let result = {
            let mut queues = self.shared.queues.lock();
            let peer = &mut queues[1 - self.side];
            let charge = || {
                account
                    .map(|a| a.charge(Resource::ChannelBytes, len))
                    .transpose()
            };
            if peer.closed {
                Err((Status::ERR_PEER_CLOSED, msg))
            } else if peer.messages.len() >= MAX_QUEUED_MESSAGES
                || peer.bytes + len > MAX_QUEUED_BYTES
            {
                Err((Status::ERR_SHOULD_WAIT, msg))
            } else {
                match charge() {
                    Err(status) => Err((status, msg)),
                    Ok(_)
                        if TOTAL_QUEUED_BYTES.fetch_add(len, Ordering::SeqCst) + len
                            > MAX_TOTAL_QUEUED_BYTES =>
                    {
                        TOTAL_QUEUED_BYTES.fetch_sub(len, Ordering::SeqCst);
                        Err((Status::ERR_NO_MEMORY, msg))
                    }
                    Ok(charge) => {
                        msg.charge = charge;
                        peer.bytes += len;
                        peer.messages.push_back(msg);
                        Ok(())
                    }
                }
            }
        };
        match result {
            Ok(()) => {
                wake_waiters();
                Ok(())
            }
            Err((status, msg)) => {
                drop(msg);
                Err(status)
            }
        }
    }

    /// Pops the next message queued here if it fits in `max_bytes` / `max_handles` (Zircon's
    /// `ChannelDispatcher::Read`). Empty queue: `ZX_ERR_PEER_CLOSED` if the peer is gone, else
    /// `ZX_ERR_SHOULD_WAIT`. Too large: [`ReadError::TooSmall`] with its sizes; with
    /// `may_discard` the message is dropped (handles closed), else it stays queued.
    pub fn read(
        &self,
        max_bytes: u32,
        max_handles: u32,
        may_discard: bool,
    ) -> Result<Message, ReadError> {
        let (result, discarded) = {
            let mut queues = self.shared.queues.lock();
            let peer_closed = queues[1 - self.side].closed;
            let own = &mut queues[self.side];
            match own.messages.front() {
                None => {
                    let status = if peer_closed {
                        Status::ERR_PEER_CLOSED
                    } else {
                        Status::ERR_SHOULD_WAIT
                    };
                    (Err(ReadError::Status(status)), None)
                }
                Some(front) => {
                    let nb = front.bytes.len() as u32;
                    let nh = front.handles.len() as u32;
                    let fits = nb <= max_bytes && nh <= max_handles;
                    if !fits && !may_discard {
                        (Err(ReadError::TooSmall(nb, nh)), None)
                    } else {
                        let msg = own.messages.pop_front();
                        if let Some(m) = &msg {
                            own.bytes -= m.bytes.len();
                            TOTAL_QUEUED_BYTES.fetch_sub(m.bytes.len(), Ordering::SeqCst);
                        }
                        match (fits, msg) {
                            (true, Some(m)) => (Ok(m), None),
                            (_, m) => (Err(ReadError::TooSmall(nb, nh)), m),
                        }
                    }
                }
            }
        };
        drop(discarded);
        if let Ok(m) = &result {
            // Its endpoints go to the reader's handle table.
            Self::set_held_in(m, None);
        }
        result
    }
}

impl Drop for ChannelEndpoint {
    /// Closes this side; its queued messages are dropped by `drain_step` (here, up to a
    /// budget, unless a drain further up the stack is already running; the rest by
    /// [`drain_pending`]), never by a nested call.
    fn drop(&mut self) {
        let doomed = {
            let mut queues = self.shared.queues.lock();
            let own = &mut queues[self.side];
            own.closed = true;
            TOTAL_QUEUED_BYTES.fetch_sub(own.bytes, Ordering::SeqCst);
            own.bytes = 0;
            // On the stack at most once: a channel already there has its other side's
            // messages taken with this side's.
            let other_doomed =
                queues[1 - self.side].closed && !queues[1 - self.side].messages.is_empty();
            !queues[self.side].messages.is_empty() && !other_doomed
        };
        if doomed {
            // This call drains what it puts on the stack when it returns (see `CLAIMED_BY`),
            // claimed first, so no call on another CPU takes it in between; a drop inside a
            // drain step leaves it to that drain.
            if !DRAINING.load(Ordering::SeqCst) {
                CLAIMED_BY.store(lock_order::cpu_index() + 1, Ordering::SeqCst);
            }
            let mut head = DOOMED.lock();
            *self.shared.doomed_next.lock() = head.take();
            *head = Some(self.shared.clone());
        }
        if DRAINING.load(Ordering::SeqCst) {
            // A drain step is dropping messages: it wakes once when it ends (a close of 40 000
            // queued endpoints is one wake per step, not 40 000). Rechecked after the flag is
            // set: a step that ended in between may have missed it, and then this drop wakes.
            WAKE_DEFERRED.store(true, Ordering::SeqCst);
            if !DRAINING.load(Ordering::SeqCst) && WAKE_DEFERRED.swap(false, Ordering::SeqCst) {
                wake_waiters();
            }
        } else {
            wake_waiters();
        }
        drain_step(DRAIN_STEP_BUDGET);
    }
}
