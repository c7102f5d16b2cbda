//! The lock-order table of the kernel and its checker.
//!
//! This crate owns [`Class`] (every checked lock class with its rank: the one table of the
//! lock order) and [`OrderedMutex`], a spin mutex that knows its class. In builds with debug
//! assertions (`cargo test`, `cargo run`: the kernel's dev profile keeps them on) every
//! acquisition is checked against the locks the current context already holds: taking a lock
//! whose rank is not above every held lock's rank panics, naming both locks. Release builds
//! compile the check out.
//!
//! A rank only says "may be taken while holding a lower one": a lock is never taken while a lock
//! of the same or a higher rank is held (two VMO locks at once are an inversion too). The
//! held-lock stack belongs to the execution context: one per thread on the host (any target
//! with an OS), one per CPU in the kernel (`target_os = "none"`, indexed by the function the
//! kernel registers with [`set_cpu_hooks`]; CPU 0 until then). The kernel never holds a lock
//! across a context switch. An interrupt handler that takes a lock runs either where the
//! interrupted code holds none, or inside a halted lock wait, where the interrupted code holds
//! only classes ranked below every class a handler takes; the handler releases what it took
//! before it returns. So the locks a CPU holds are the ones its current context took, and the
//! order holds across the two.
//!
//! Waiting: [`OrderedMutex::lock`] tries `try_lock` and calls the registered wait hook between
//! two attempts; every release calls the release hook with the lock's address. The kernel runs
//! with interrupts off while it holds (or waits for) a lock, so a CPU that waits for a lock
//! whose holder waits for this CPU (a TLB shootdown that needs every target's acknowledgement)
//! must answer from inside the wait: the hook does (`arch::tlb::poll`). After a few attempts the
//! kernel's hook halts the CPU with interrupts on until the release hook wakes it
//! (`task::lockwait`), for locks no interrupt handler takes.
//!
//! Interrupts: the kernel runs with interrupts disabled everywhere except user mode, the idle
//! loop and explicit preemption points, where no lock is held, and the halt of a lock wait for a
//! class no handler takes. So the locks an interrupt handler takes (the "irq" column) are never
//! held with interrupts on; the others would be correct with interrupts on too.
//!
//! # The table
//!
//! | rank | class | what it guards | taken inside it | irq |
//! | ---: | --- | --- | --- | --- |
//! | 20 | [`Class::ProcessHandles`] | a process's handle table | the tree lock of an address space (a handle's VMAR), VMO locks | no |
//! | 30 | [`Class::ProcessInner`] | a process's threads, state and exit code | nothing above | no |
//! | 40 | [`Class::AspaceTree`] | an address space's region arena, gap trees and RNG | VMO locks, its MMU | no (user page faults: an exception, taken from ring 3 or a user copy with no lock held) |
//! | 50 | [`Class::Vmo`] | a VMO's pages, size and back-references | the MMU of each mapping's address space | no (same) |
//! | 60 | [`Class::AspaceMmu`] | an address space's page tables; its TLB shootdown is sent and waited for under it | frames | no (same) |
//! | 70 | [`Class::AspaceList`] | the kernel's list of live address spaces | nothing above | no |
//! | 75 | [`Class::Sched`] | the scheduler's run and blocked queues (one for all CPUs) | the heap (queue growth); it is taken inside the locks above (a wake-up when a handle-table change drops a channel end) | yes: the timer tick of every CPU |
//! | 80 | [`Class::Heap`] | the kernel heap's slabs and page runs | frames (a slab or a page run takes them), the kernel-heap region (a leaf, which shoots down every CPU when it unmaps) | yes: a tick that requeues a thread may grow the run queue |
//! | 90 | [`Class::Frames`] | the physical frame allocator | nothing (its bitmap and stacks never grow) | yes (through the heap) |
//!
//! Locks not in the table are leaves: nothing is locked while one of them is held. The serial
//! console, the page-fault hook slot, thread names and FPU areas, channel queues, exception
//! ports, the kernel-stack and kernel-heap regions, each CPU's scheduler slot (`current`, `prev`,
//! taken only by its own CPU), each CPU's current address space (same), and the TLB shootdown
//! request (`arch::tlb`: its holder waits for the other CPUs, which answer from any lock's spin,
//! see above). Per-CPU data the kernel reaches through GS is written by its own CPU only.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(not(target_os = "none"))]
extern crate std;

use core::ops::{Deref, DerefMut};

macro_rules! classes {
    ($( $(#[$doc:meta])* $name:ident = $rank:literal, )*) => {
        /// A checked lock class; its discriminant is its rank (see the crate docs' table).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Class {
            $( $(#[$doc])* $name = $rank, )*
        }

        impl Class {
            /// Every class, in rank order.
            pub const ALL: &'static [Class] = &[$( Class::$name, )*];

            /// The class's name as a panic message prints it.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Class::$name => stringify!($name), )*
                }
            }
        }
    };
}

classes! {
    /// A process's handle table.
    ProcessHandles = 20,
    /// A process's thread list, state and exit code.
    ProcessInner = 30,
    /// An address space's region tree (Zircon's aspace lock).
    AspaceTree = 40,
    /// A VMO's pages and back-references.
    Vmo = 50,
    /// An address space's page tables.
    AspaceMmu = 60,
    /// The kernel's list of live address spaces.
    AspaceList = 70,
    /// The scheduler's queues.
    Sched = 75,
    /// The kernel heap.
    Heap = 80,
    /// The physical frame allocator.
    Frames = 90,
}

impl Class {
    /// The rank: a lock may be taken only while every held lock has a lower one.
    pub const fn rank(self) -> u8 {
        self as u8
    }
}

/// Most checked locks one context holds at once.
pub const MAX_HELD: usize = 16;

/// The classes a context holds, in acquisition order.
#[derive(Clone, Copy)]
pub struct Held {
    classes: [Option<Class>; MAX_HELD],
    len: usize,
}

impl Held {
    /// Nothing held.
    pub const fn new() -> Held {
        Held {
            classes: [None; MAX_HELD],
            len: 0,
        }
    }

    /// Records taking `class`; the panic message names both locks on an inversion.
    pub fn acquire(&mut self, class: Class) {
        if let Some(top) = self.highest() {
            if top.rank() >= class.rank() {
                panic!(
                    "lock order: taking {} (rank {}) while holding {} (rank {})",
                    class.name(),
                    class.rank(),
                    top.name(),
                    top.rank()
                );
            }
        }
        assert!(
            self.len < MAX_HELD,
            "lock order: more than {MAX_HELD} locks held"
        );
        self.classes[self.len] = Some(class);
        self.len += 1;
    }

    /// Records releasing `class` (guards may drop in any order).
    pub fn release(&mut self, class: Class) {
        let held = &mut self.classes[..self.len];
        if let Some(i) = held.iter().rposition(|c| *c == Some(class)) {
            held.copy_within(i + 1.., i);
            self.len -= 1;
            self.classes[self.len] = None;
        }
    }

    /// The held lock of the highest rank.
    pub fn highest(&self) -> Option<Class> {
        self.classes[..self.len]
            .iter()
            .flatten()
            .copied()
            .max_by_key(|c| c.rank())
    }

    /// How many locks are held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Held {
    fn default() -> Held {
        Held::new()
    }
}

#[cfg(not(target_os = "none"))]
std::thread_local! {
    static HELD: core::cell::RefCell<Held> = const { core::cell::RefCell::new(Held::new()) };
}

/// Most CPUs with a held-lock stack of their own (the kernel's `arch::percpu::MAX_CPUS`).
pub const MAX_CPUS: usize = 64;

#[cfg(target_os = "none")]
static HELD: [spin::Mutex<Held>; MAX_CPUS] = [const { spin::Mutex::new(Held::new()) }; MAX_CPUS];

/// The kernel's hooks: the running CPU's index, the work to do while waiting for a lock, and the
/// note that a lock was released.
struct Hooks {
    // Read by the kernel's per-CPU stacks only; the host's stacks are per thread.
    #[cfg_attr(not(target_os = "none"), allow(dead_code))]
    cpu_index: fn() -> usize,
    wait: fn(&Waiting<'_>),
    released: fn(usize),
}

static HOOKS: spin::Once<Hooks> = spin::Once::new();

/// What a contended [`OrderedMutex::lock`] tells the kernel's wait hook between two attempts.
pub struct Waiting<'a> {
    /// The lock's address: the key under which its release is announced ([`set_cpu_hooks`]).
    pub lock: usize,
    /// Its class.
    pub class: Class,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Whether the lock is still held (the last check before a wait that needs a wake-up).
    pub still_held: &'a dyn Fn() -> bool,
}

/// Registers the kernel's hooks (once; later calls are ignored): `cpu_index` picks the running
/// CPU's held-lock stack (below [`MAX_CPUS`]); `wait` runs between two attempts of a contended
/// [`OrderedMutex::lock`] (it must take no lock of this table); `released` runs after every
/// release with the lock's address, so a waiter that stopped spinning can be woken.
pub fn set_cpu_hooks(cpu_index: fn() -> usize, wait: fn(&Waiting<'_>), released: fn(usize)) {
    HOOKS.call_once(|| Hooks {
        cpu_index,
        wait,
        released,
    });
}

/// The running CPU's index, as the kernel's `cpu_index` hook ([`set_cpu_hooks`]) says; 0 before
/// the hooks are registered (and on the host unless a test registers them).
pub fn cpu_index() -> usize {
    HOOKS.get().map_or(0, |h| (h.cpu_index)())
}

/// A plain spin lock, outside the table: a leaf held for a few instructions, under which nothing
/// waits for another CPU. Its spin calls the hook registered with [`set_spin_hook`] between two
/// attempts (the kernel answers TLB shootdowns there), so a CPU spinning on one never keeps a
/// shootdown (sent by a CPU that holds a lock this one's holder waits for: the kernel heap's,
/// whose frees may unmap pages) from completing.
pub type SpinMutex<T> = spin::mutex::Mutex<T, SpinRelax>;

/// The spin strategy of [`SpinMutex`].
pub struct SpinRelax;

impl spin::RelaxStrategy for SpinRelax {
    fn relax() {
        if let Some(hook) = SPIN_HOOK.get() {
            hook();
        }
        core::hint::spin_loop();
    }
}

static SPIN_HOOK: spin::Once<fn()> = spin::Once::new();

/// Registers what a [`SpinMutex`] spin runs between two attempts (once; later calls are
/// ignored). It must take no lock.
pub fn set_spin_hook(hook: fn()) {
    SPIN_HOOK.call_once(|| hook);
}

/// Runs `f` on the current context's held-lock stack.
fn with_held<R>(f: impl FnOnce(&mut Held) -> R) -> R {
    #[cfg(not(target_os = "none"))]
    {
        HELD.with(|h| f(&mut h.borrow_mut()))
    }
    #[cfg(target_os = "none")]
    {
        let cpu = cpu_index();
        // Only this CPU takes its own stack's mutex, with interrupts off: never contended.
        f(&mut HELD[cpu % MAX_CPUS].lock())
    }
}

/// The classes the current context holds (for tests and diagnostics).
pub fn held() -> Held {
    with_held(|h| *h)
}

/// True when the order is checked in this build.
pub const CHECKED: bool = cfg!(debug_assertions);

/// A spin mutex of a [`Class`]: [`OrderedMutex::lock`] checks the order first (with debug
/// assertions).
pub struct OrderedMutex<T: ?Sized> {
    class: Class,
    inner: spin::Mutex<T>,
}

impl<T> OrderedMutex<T> {
    /// A mutex of `class` holding `value`.
    pub const fn new(class: Class, value: T) -> OrderedMutex<T> {
        OrderedMutex {
            class,
            inner: spin::Mutex::new(value),
        }
    }

    /// The value, when nothing can hold the lock.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> OrderedMutex<T> {
    /// Takes the lock, after checking that every lock the context holds ranks below it.
    pub fn lock(&self) -> OrderedGuard<'_, T> {
        if CHECKED {
            with_held(|h| h.acquire(self.class));
        }
        let mut attempts = 0;
        let guard = loop {
            if let Some(g) = self.inner.try_lock() {
                break g;
            }
            attempts += 1;
            if let Some(h) = HOOKS.get() {
                (h.wait)(&Waiting {
                    lock: self.address(),
                    class: self.class,
                    attempts,
                    still_held: &|| self.inner.is_locked(),
                });
            }
            core::hint::spin_loop();
        };
        OrderedGuard {
            class: self.class,
            lock: self.address(),
            guard: Some(guard),
        }
    }

    /// The key of this lock for the kernel's wait and release hooks.
    fn address(&self) -> usize {
        core::ptr::from_ref(self).cast::<()>() as usize
    }

    /// Takes the lock if it is free, after the same order check as [`OrderedMutex::lock`].
    pub fn try_lock(&self) -> Option<OrderedGuard<'_, T>> {
        let guard = self.inner.try_lock()?;
        if CHECKED {
            with_held(|h| h.acquire(self.class));
        }
        Some(OrderedGuard {
            class: self.class,
            lock: self.address(),
            guard: Some(guard),
        })
    }

    /// Whether the lock is held right now (by anyone: a hint unless the caller knows who could
    /// hold it).
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// The value through `&mut self` (no lock: nothing else can reach it).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// The lock's class.
    pub fn class(&self) -> Class {
        self.class
    }
}

/// The guard of an [`OrderedMutex`]; dropping it records the release and announces it to the
/// kernel's release hook.
pub struct OrderedGuard<'a, T: ?Sized> {
    class: Class,
    lock: usize,
    /// `Some` until the drop releases it.
    guard: Option<spin::MutexGuard<'a, T>>,
}

impl<T: ?Sized> Deref for OrderedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("lock guard used after release")
    }
}

impl<T: ?Sized> DerefMut for OrderedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("lock guard used after release")
    }
}

impl<T: ?Sized> Drop for OrderedGuard<'_, T> {
    fn drop(&mut self) {
        self.guard = None;
        if CHECKED {
            with_held(|h| h.release(self.class));
        }
        if let Some(h) = HOOKS.get() {
            (h.released)(self.lock);
        }
    }
}
